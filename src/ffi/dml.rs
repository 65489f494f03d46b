//! Exports of the DSA mover (`libminiasync-vdm-dml.so`).
//!
//! Besides `data_mover_dml_new/get_vdm/delete`, three names upstream
//! exported by accident are kept with their upstream signatures:
//! `data_mover_dml_operation_start` and `data_mover_dml_operation_check`
//! (the mover's `op_start`/`op_check` callbacks) and `has_property_dmd`
//! (its property function).

use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use super::fnptr;
use super::view::{self, vdm_of, RawEnum};
use crate::abi::{
    data_mover_dml_type, data_mover_queue_stats, data_mover_stats, future_notifier,
    future_property, future_state, vdm, vdm_operation,
};
use crate::mover::dsa::mover::{DsaMover, NewError, Path};

/// The mover's `op_start` (exported under upstream's accidental name):
/// 0 when the operation started (or already completed on the CPU), 1 when
/// it could not start yet (the next poll tries again).
///
/// # Safety
/// `data` must be NULL or an op handle of a DSA mover, `operation` NULL or
/// the future's operation, `n` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn data_mover_dml_operation_start(
    data: *mut c_void,
    operation: *const vdm_operation,
    n: *mut future_notifier,
) -> c_int {
    // SAFETY: forwarded caller contract.
    unsafe { view::op_start::<DsaMover>(data, operation, n) }
}

/// The mover's `op_check` (exported under upstream's accidental name).
///
/// # Safety
/// `data` must be NULL or an op handle of a DSA mover.
#[no_mangle]
pub unsafe extern "C" fn data_mover_dml_operation_check(
    data: *mut c_void,
    operation: *const vdm_operation,
) -> RawEnum<future_state> {
    // SAFETY: forwarded caller contract.
    unsafe { view::op_check::<DsaMover>(data, operation) }
}

/// Property function of DSA-mover futures (exported under upstream's
/// accidental name): 1 for `FUTURE_PROPERTY_ASYNC`, 0 otherwise (C may
/// pass any value: the raw integer is compared).
///
/// # Safety
/// Always safe to call; `unsafe` only for the C ABI type.
#[no_mangle]
pub unsafe extern "C" fn has_property_dmd(
    _future: *mut c_void,
    property: RawEnum<future_property>,
) -> c_int {
    c_int::from(property.is(future_property::FUTURE_PROPERTY_ASYNC))
}

fn warn_once(msg: &str) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        super::warn(msg);
    }
}

/// Creates a DSA mover for `type_`. Returns NULL for an unknown type, or
/// for `DATA_MOVER_DML_HARDWARE` when no usable work queue exists (saying
/// why on stderr, once per process).
#[no_mangle]
pub extern "C" fn data_mover_dml_new(type_: RawEnum<data_mover_dml_type>) -> *mut DsaMover {
    let Some(path) = Path::from_raw(type_) else {
        return core::ptr::null_mut();
    };
    let vdm = vdm_of::<DsaMover>(fnptr::has_property_fn(has_property_dmd));
    match DsaMover::create(vdm, path) {
        Ok(m) => Box::into_raw(m),
        Err(NewError::NoDevice(why)) => {
            warn_once(&format!(
                "data_mover_dml_new(DATA_MOVER_DML_HARDWARE): {why}"
            ));
            core::ptr::null_mut()
        }
    }
}

/// The mover's `struct vdm` (same address as the mover); NULL for NULL.
///
/// # Safety
/// `dmd` must be NULL or a live DSA mover.
#[no_mangle]
pub unsafe extern "C" fn data_mover_dml_get_vdm(dmd: Option<NonNull<DsaMover>>) -> *mut vdm {
    dmd.map_or(core::ptr::null_mut(), |m| {
        // SAFETY: caller's contract: a live mover.
        unsafe { core::ptr::addr_of_mut!((*m.as_ptr()).vdm) }
    })
}

/// Releases a DSA mover; NULL is ignored. Its futures must be complete.
///
/// # Safety
/// `dmd` must be NULL or a live DSA mover not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn data_mover_dml_delete(dmd: Option<NonNull<DsaMover>>) {
    if let Some(m) = dmd {
        // SAFETY: created by Box::into_raw in data_mover_dml_new.
        drop(unsafe { Box::from_raw(m.as_ptr()) });
    }
}

/// As `data_mover_sync_get_stats`, for a DSA mover (`stats->queues` says
/// how many work queues `data_mover_dml_get_queue_stats` describes).
///
/// # Safety
/// `dmd` NULL or a live DSA mover; `stats` NULL or writable for the size
/// it states.
#[no_mangle]
pub unsafe extern "C" fn data_mover_dml_get_stats(
    dmd: Option<&DsaMover>,
    stats: Option<NonNull<data_mover_stats>>,
) -> c_int {
    let Some(m) = dmd else { return -1 };
    // SAFETY: forwarded caller contract.
    unsafe { super::stats::get_stats(&m.stats, stats) }
}

/// Fills `q` with work queue `index` of those the mover used: 0, or -1 for
/// a NULL argument, a size below that of the size field, or an index not
/// below `stats.queues`.
///
/// # Safety
/// `dmd` NULL or a live DSA mover; `q` NULL or writable for the size it
/// states.
#[no_mangle]
pub unsafe extern "C" fn data_mover_dml_get_queue_stats(
    dmd: Option<&DsaMover>,
    index: usize,
    q: Option<NonNull<data_mover_queue_stats>>,
) -> c_int {
    let Some(m) = dmd else { return -1 };
    // SAFETY: forwarded caller contract.
    unsafe { super::stats::get_queue_stats(&m.stats, index, q) }
}
