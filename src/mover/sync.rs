//! The synchronous mover: every operation runs on the polling thread during
//! the first poll of its future (in `op_start`).

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use super::cpu;
use super::op::{self, fill_output};
use super::pool::{configured_capacity, Pool};
use crate::abi::{vdm, vdm_operation, vdm_operation_output, vdm_operation_result};
use crate::future::{COMPLETE, IDLE};

/// `result` value of a record whose operation has not run yet.
const NOT_RUN: u32 = u32::MAX;

/// Per-operation record.
pub struct SyncOp {
    owner: AtomicPtr<SyncMover>,
    result: AtomicU32,
}

impl Default for SyncOp {
    fn default() -> Self {
        SyncOp {
            owner: AtomicPtr::new(core::ptr::null_mut()),
            result: AtomicU32::new(NOT_RUN),
        }
    }
}

impl SyncOp {
    /// The mover this record belongs to.
    pub fn owner(&self) -> *const SyncMover {
        self.owner.load(Ordering::Relaxed)
    }
}

/// A synchronous mover. `vdm` must stay the first field: C code casts the
/// `struct vdm *` back to the mover, and the callbacks find the mover from
/// the `struct vdm *` they are given.
#[repr(C)]
pub struct SyncMover {
    pub vdm: vdm,
    pool: Pool<SyncOp>,
}

impl SyncMover {
    /// A mover whose `struct vdm` holds the given callbacks.
    pub fn new(vdm: vdm) -> Box<SyncMover> {
        Box::new(SyncMover {
            vdm,
            pool: Pool::new(configured_capacity()),
        })
    }

    /// Reserves a record (`None`: the bound of outstanding ops is reached).
    #[inline]
    pub fn op_new(&self) -> Option<&SyncOp> {
        let op = self.pool.alloc()?;
        op.owner
            .store((self as *const SyncMover).cast_mut(), Ordering::Relaxed);
        op.result.store(NOT_RUN, Ordering::Relaxed);
        Some(op)
    }

    /// Runs the operation now. Bad operations (NULL buffers, wrapping
    /// ranges, unknown types) touch no memory and end in
    /// `VDM_ERROR_JOB_CORRUPTED`.
    ///
    /// # Safety
    /// The operation's buffers must be valid as its type implies.
    #[inline]
    pub unsafe fn op_start(&self, op: &SyncOp, operation: &vdm_operation) {
        let result = match op::decode(operation) {
            Ok(decoded) => {
                // SAFETY: forwarded caller contract.
                unsafe { cpu::run(&decoded) };
                vdm_operation_result::VDM_SUCCESS
            }
            Err(_) => vdm_operation_result::VDM_ERROR_JOB_CORRUPTED,
        };
        op.result.store(result as u32, Ordering::Release);
    }

    /// COMPLETE once started, IDLE before.
    #[inline]
    pub fn op_check(&self, op: &SyncOp) -> u32 {
        if op.result.load(Ordering::Acquire) == NOT_RUN {
            IDLE
        } else {
            COMPLETE
        }
    }

    /// Fills the output and releases the record.
    ///
    /// # Safety
    /// `op` must be a record of this mover that is not used afterwards.
    #[inline]
    pub unsafe fn op_delete(
        &self,
        op: &SyncOp,
        operation: &vdm_operation,
        output: &mut vdm_operation_output,
    ) {
        let result = op.result.load(Ordering::Acquire);
        let result = if result == NOT_RUN {
            // Deleted without having run: report it, nothing was written.
            vdm_operation_result::VDM_ERROR_JOB_CORRUPTED as u32
        } else {
            result
        };
        fill_output(operation, output, result);
        // SAFETY: forwarded caller contract.
        unsafe { self.pool.free(op) };
    }

    /// Outstanding records (for tests).
    pub fn outstanding(&self) -> u32 {
        self.pool.outstanding()
    }
}
