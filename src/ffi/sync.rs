//! Exports of the synchronous mover and the callbacks of its `struct vdm`.

use core::ffi::{c_int, c_void};

use crate::abi::*;
use crate::future::{self as fut, NOTIFIER_NONE};
use crate::mover::sync::{SyncMover, SyncOp};

/// The `struct vdm` of a synchronous mover: capabilities 0 and no property
/// function, as upstream.
pub(crate) fn sync_vdm() -> vdm {
    vdm {
        op_new: super::op_new_fn(sync_op_new),
        op_delete: Some(sync_op_delete),
        op_start: Some(sync_op_start),
        op_check: Some(sync_op_check),
        capabilities: 0,
        has_property: None,
    }
}

/// # Safety
/// `data` must be an op handle of a sync mover.
unsafe fn record<'a>(data: *mut c_void) -> (&'a SyncMover, &'a SyncOp) {
    // SAFETY: caller's contract: the handle is a live record whose owner
    // outlives it.
    unsafe {
        let op = &*data.cast::<SyncOp>();
        (&*op.owner(), op)
    }
}

unsafe extern "C" fn sync_op_new(v: *mut vdm, _t: u32) -> *mut c_void {
    if v.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: this callback is only reachable through a sync mover's vdm,
    // which is the mover's first field.
    let m = unsafe { &*v.cast::<SyncMover>() };
    m.op_new().map_or(core::ptr::null_mut(), |op| {
        (op as *const SyncOp).cast_mut().cast()
    })
}

unsafe extern "C" fn sync_op_start(
    data: *mut c_void,
    op: *const vdm_operation,
    n: *mut future_notifier,
) -> c_int {
    if data.is_null() || op.is_null() {
        return 1;
    }
    // SAFETY: caller's contract on `n` (NULL or writable).
    unsafe { fut::set_notifier_used(n, NOTIFIER_NONE) };
    // SAFETY: `data` is our handle; `op` is the future's operation, whose
    // buffers the C caller vouched for.
    unsafe {
        let (m, rec) = record(data);
        m.op_start(rec, &*op);
    }
    0
}

unsafe extern "C" fn sync_op_check(data: *mut c_void, _op: *const vdm_operation) -> future_state {
    if data.is_null() {
        return future_state::FUTURE_STATE_COMPLETE;
    }
    // SAFETY: `data` is our handle.
    let (m, rec) = unsafe { record(data) };
    if m.op_check(rec) == fut::COMPLETE {
        future_state::FUTURE_STATE_COMPLETE
    } else {
        future_state::FUTURE_STATE_IDLE
    }
}

unsafe extern "C" fn sync_op_delete(
    data: *mut c_void,
    op: *const vdm_operation,
    out: *mut vdm_operation_output,
) {
    if data.is_null() || op.is_null() || out.is_null() {
        return;
    }
    // SAFETY: `data` is our handle, deleted exactly once by the vdm task;
    // `op` and `out` are the future's.
    unsafe {
        let (m, rec) = record(data);
        m.op_delete(rec, &*op, &mut *out);
    }
}

/// Creates a synchronous mover. Returns NULL when out of memory.
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
/// defined upstream). NULL when out of memory.
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
