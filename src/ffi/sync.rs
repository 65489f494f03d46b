//! Exports of the synchronous mover (`<libminiasync/data_mover_sync.h>`).

use core::ptr::NonNull;

use super::view::vdm_of;
use crate::abi::{data_mover_stats, vdm};
use crate::mover::sync::SyncMover;

/// Creates a synchronous mover (capabilities 0 and no property function,
/// as upstream). Never NULL: if its memory cannot be allocated the process
/// aborts (Rust's out-of-memory handling).
#[no_mangle]
pub extern "C" fn data_mover_sync_new() -> *mut SyncMover {
    Box::into_raw(SyncMover::new(vdm_of::<SyncMover>(None)))
}

/// The mover's `struct vdm` (same address as the mover); NULL for NULL.
///
/// # Safety
/// `dms` must be NULL or a live sync mover.
#[no_mangle]
pub unsafe extern "C" fn data_mover_sync_get_vdm(dms: Option<NonNull<SyncMover>>) -> *mut vdm {
    dms.map_or(core::ptr::null_mut(), |m| {
        // SAFETY: caller's contract: a live mover.
        unsafe { core::ptr::addr_of_mut!((*m.as_ptr()).vdm) }
    })
}

/// Releases a sync mover; NULL is ignored. Futures of the mover that are
/// not complete must not be polled afterwards.
///
/// # Safety
/// `dms` must be NULL or a live sync mover not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn data_mover_sync_delete(dms: Option<NonNull<SyncMover>>) {
    if let Some(m) = dms {
        // SAFETY: created by Box::into_raw in data_mover_sync_new.
        drop(unsafe { Box::from_raw(m.as_ptr()) });
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
pub unsafe extern "C" fn vdm_synchronous_delete(v: Option<NonNull<vdm>>) {
    // SAFETY: the vdm is at offset 0 of the mover (caller's contract).
    unsafe { data_mover_sync_delete(v.map(NonNull::cast)) }
}

/// Fills `stats` with what the mover did (`stats->size` set by the caller:
/// at most that many bytes are written, and the count written back). 0, or
/// -1 for a NULL argument or a size below that of the size field.
///
/// # Safety
/// `dms` NULL or a live sync mover; `stats` NULL or writable for the size
/// it states.
#[no_mangle]
pub unsafe extern "C" fn data_mover_sync_get_stats(
    dms: Option<&SyncMover>,
    stats: Option<NonNull<data_mover_stats>>,
) -> core::ffi::c_int {
    let Some(m) = dms else { return -1 };
    // SAFETY: forwarded caller contract.
    unsafe { super::stats::get_stats(&m.stats, stats) }
}
