//! Exports of the DSA mover (`libminiasync-vdm-dml.so`) and the callbacks
//! of its `struct vdm`.
//!
//! Besides `data_mover_dml_new/get_vdm/delete`, three names upstream
//! exported by accident are kept with their upstream signatures:
//! `data_mover_dml_operation_start` and `data_mover_dml_operation_check`
//! (the mover's `op_start`/`op_check` callbacks) and `has_property_dmd`
//! (its property function).

use core::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use super::callbacks::{self, vdm_of, Mover};
use crate::abi::*;
use crate::mover::dsa::mover::{self as dml, DsaMover, DsaOp, NewError, Path};

/// `VDM_F_MEM_DURABLE | VDM_F_NO_CACHE_HINT`, as upstream.
const CAPABILITIES: u32 = 3;

impl Mover for DsaMover {
    type Op = DsaOp;

    fn owner_of(op: &DsaOp) -> *const DsaMover {
        op.owner()
    }

    fn new_op(&self) -> Option<&DsaOp> {
        self.op_new()
    }

    unsafe fn start(&self, op: &DsaOp, operation: &vdm_operation, n: *mut future_notifier) -> bool {
        // SAFETY: forwarded caller contract.
        unsafe { self.op_start(op, operation, n) }
    }

    unsafe fn check(&self, op: &DsaOp) -> u32 {
        // SAFETY: forwarded caller contract.
        unsafe { self.op_check(op) }
    }

    unsafe fn delete(&self, op: &DsaOp, operation: &vdm_operation, out: &mut vdm_operation_output) {
        // SAFETY: forwarded caller contract.
        unsafe { self.op_delete(op, operation, out) }
    }
}

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
    unsafe { callbacks::op_start::<DsaMover>(data, operation, n) }
}

/// The mover's `op_check` (exported under upstream's accidental name).
///
/// # Safety
/// `data` must be NULL or an op handle of a DSA mover.
#[no_mangle]
pub unsafe extern "C" fn data_mover_dml_operation_check(
    data: *mut c_void,
    operation: *const vdm_operation,
) -> future_state {
    // SAFETY: forwarded caller contract.
    unsafe { callbacks::op_check::<DsaMover>(data, operation) }
}

/// Property function of DSA-mover futures (exported under upstream's
/// accidental name): 1 for `FUTURE_PROPERTY_ASYNC`, 0 otherwise. The
/// property is read as a plain integer: C may pass any value.
///
/// # Safety
/// Always safe to call; `unsafe` only for the C ABI type.
#[no_mangle]
pub unsafe extern "C" fn has_property_dmd(_future: *mut c_void, property: u32) -> c_int {
    c_int::from(property == future_property::FUTURE_PROPERTY_ASYNC as u32)
}

fn dml_vdm() -> vdm {
    // SAFETY: `enum future_property` is passed as a C int; a function
    // taking u32 in its place has the same ABI.
    let has_property = unsafe {
        core::mem::transmute::<
            unsafe extern "C" fn(*mut c_void, u32) -> c_int,
            unsafe extern "C" fn(*mut c_void, future_property) -> c_int,
        >(has_property_dmd)
    };
    vdm_of::<DsaMover>(CAPABILITIES, Some(has_property))
}

fn warn_once(msg: &str) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        super::warn(msg);
    }
}

/// Creates a DSA mover for `type_` (`enum data_mover_dml_type`, read as a
/// plain integer). Returns NULL for an unknown type, or for
/// `DATA_MOVER_DML_HARDWARE` when no usable work queue exists (saying why
/// on stderr, once per process).
#[no_mangle]
pub extern "C" fn data_mover_dml_new(type_: u32) -> *mut DsaMover {
    let Some(path) = Path::from_raw(type_) else {
        return core::ptr::null_mut();
    };
    let engine = match path {
        Path::Software => Err(String::new()),
        _ => dml::shared_engine(),
    };
    match DsaMover::new(dml_vdm(), path, engine, dml::configured_threshold()) {
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
pub unsafe extern "C" fn data_mover_dml_get_vdm(dmd: *mut DsaMover) -> *mut vdm {
    if dmd.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: caller's contract.
    unsafe { core::ptr::addr_of_mut!((*dmd).vdm) }
}

/// Releases a DSA mover; NULL is ignored. Its futures must be complete.
///
/// # Safety
/// `dmd` must be NULL or a live DSA mover not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn data_mover_dml_delete(dmd: *mut DsaMover) {
    if !dmd.is_null() {
        // SAFETY: created by Box::into_raw in data_mover_dml_new.
        drop(unsafe { Box::from_raw(dmd) });
    }
}
