//! The synchronous mover: every operation runs on the polling thread during
//! the first poll of its future (in `op_start`).

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use super::stats::{Counter, Kind, MoverStats};
use super::{configured_capacity, cpu, result_of, BadOp, Mover, Op, Pool};
use crate::abi::{future_state, vdm, vdm_operation_result};
use crate::ffi::view::Notifier;

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

/// A synchronous mover. `vdm` must stay the first field: C code casts the
/// `struct vdm *` back to the mover, and the callbacks find the mover from
/// the `struct vdm *` they are given.
#[repr(C)]
pub struct SyncMover {
    pub vdm: vdm,
    pool: Pool<SyncOp>,
    pub stats: MoverStats,
}

impl SyncMover {
    /// A mover whose `struct vdm` holds the given callbacks.
    pub fn new(vdm: vdm) -> Box<SyncMover> {
        let m = Box::new(SyncMover {
            vdm,
            pool: Pool::new(configured_capacity()),
            stats: MoverStats::new(Kind::Sync, None, None),
        });
        m.stats.register();
        m
    }
}

impl Mover for SyncMover {
    type Op = SyncOp;

    /// None: upstream's synchronous mover has capabilities 0.
    const CAPABILITIES: u32 = 0;

    unsafe fn owner_of(op: &SyncOp) -> &SyncMover {
        // SAFETY: caller's contract: a live record, whose `op_new` stored
        // its (living) mover.
        unsafe { &*op.owner.load(Ordering::Relaxed) }
    }

    #[inline]
    fn new_op(&self) -> Option<&SyncOp> {
        let op = self.pool.alloc()?;
        op.owner
            .store((self as *const SyncMover).cast_mut(), Ordering::Relaxed);
        op.result.store(NOT_RUN, Ordering::Relaxed);
        Some(op)
    }

    /// Runs the operation now, on this thread; its future needs no
    /// notifier (NONE). A refused operation touches no memory and ends in
    /// `VDM_ERROR_JOB_CORRUPTED`.
    #[inline]
    unsafe fn start(&self, op: &SyncOp, operation: Result<Op, BadOp>, mut n: Notifier<'_>) -> bool {
        n.use_none();
        let result = match operation {
            Ok(decoded) => {
                // SAFETY: caller's contract on the buffers; decoded and
                // checked.
                unsafe { cpu::run(&decoded) };
                self.stats.started_on_cpu(&decoded);
                vdm_operation_result::VDM_SUCCESS
            }
            Err(_) => {
                self.stats.add(Counter::Ops, 1);
                self.stats.add(Counter::Errors, 1);
                vdm_operation_result::VDM_ERROR_JOB_CORRUPTED
            }
        };
        op.result.store(result as u32, Ordering::Release);
        true
    }

    /// COMPLETE once started, IDLE before.
    #[inline]
    unsafe fn check(&self, op: &SyncOp) -> future_state {
        if op.result.load(Ordering::Acquire) == NOT_RUN {
            future_state::FUTURE_STATE_IDLE
        } else {
            future_state::FUTURE_STATE_COMPLETE
        }
    }

    /// A record deleted without having run reports a corrupted job
    /// (nothing was written).
    #[inline]
    unsafe fn delete(&self, op: &SyncOp) -> vdm_operation_result {
        let result = match op.result.load(Ordering::Acquire) {
            NOT_RUN => vdm_operation_result::VDM_ERROR_JOB_CORRUPTED,
            r => result_of(r),
        };
        // SAFETY: caller's contract: a live record, not used afterwards.
        unsafe { self.pool.free(op) };
        result
    }
}

impl Drop for SyncMover {
    fn drop(&mut self) {
        self.stats.unregister();
    }
}
