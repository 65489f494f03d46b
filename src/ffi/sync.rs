//! Exports of the synchronous mover and the callbacks of its `struct vdm`.

use super::callbacks::{vdm_of, Mover};
use crate::abi::*;
use crate::future::{self as fut, NOTIFIER_NONE};
use crate::mover::sync::{SyncMover, SyncOp};

/// The `struct vdm` of a synchronous mover: capabilities 0 and no property
/// function, as upstream.
pub(crate) fn sync_vdm() -> vdm {
    vdm_of::<SyncMover>(0, None)
}

impl Mover for SyncMover {
    type Op = SyncOp;

    fn owner_of(op: &SyncOp) -> *const SyncMover {
        op.owner()
    }

    fn new_op(&self) -> Option<&SyncOp> {
        self.op_new()
    }

    unsafe fn start(
        &self,
        op: &SyncOp,
        operation: &vdm_operation,
        n: *mut future_notifier,
    ) -> bool {
        // SAFETY: caller's contract on `n` (NULL or writable).
        unsafe { fut::set_notifier_used(n, NOTIFIER_NONE) };
        // SAFETY: caller's contract on the operation's buffers.
        unsafe { self.op_start(op, operation) };
        true
    }

    unsafe fn check(&self, op: &SyncOp) -> u32 {
        self.op_check(op)
    }

    unsafe fn delete(
        &self,
        op: &SyncOp,
        operation: &vdm_operation,
        out: &mut vdm_operation_output,
    ) {
        // SAFETY: forwarded caller contract.
        unsafe { self.op_delete(op, operation, out) }
    }
}

/// Creates a synchronous mover. Never NULL: if its memory cannot be
/// allocated the process aborts (Rust's out-of-memory handling).
#[no_mangle]
pub extern "C" fn data_mover_sync_new() -> *mut SyncMover {
    Box::into_raw(SyncMover::new(sync_vdm()))
}

/// The mover's `struct vdm` (same address as the mover); NULL for NULL.
///
/// # Safety
/// `dms` must be NULL or a live sync mover.
#[no_mangle]
pub unsafe extern "C" fn data_mover_sync_get_vdm(dms: *mut SyncMover) -> *mut vdm {
    if dms.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: caller's contract.
    unsafe { core::ptr::addr_of_mut!((*dms).vdm) }
}

/// Releases a sync mover; NULL is ignored. Futures of the mover that are
/// not complete must not be polled afterwards.
///
/// # Safety
/// `dms` must be NULL or a live sync mover not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn data_mover_sync_delete(dms: *mut SyncMover) {
    if !dms.is_null() {
        // SAFETY: created by Box::into_raw in data_mover_sync_new.
        drop(unsafe { Box::from_raw(dms) });
    }
}

/// A synchronous mover known only by its `struct vdm` (declared but never
/// defined upstream). Never NULL (allocation failure aborts).
#[no_mangle]
pub extern "C" fn vdm_synchronous_new() -> *mut vdm {
    data_mover_sync_new().cast()
}

/// Releases a mover from `vdm_synchronous_new`; NULL is ignored.
///
/// # Safety
/// `v` must be NULL or come from `vdm_synchronous_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn vdm_synchronous_delete(v: *mut vdm) {
    // SAFETY: the vdm is at offset 0 of the mover (caller's contract).
    unsafe { data_mover_sync_delete(v.cast()) }
}
