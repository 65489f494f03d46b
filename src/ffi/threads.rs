//! Exports of the threads mover and the callbacks of its `struct vdm`.

use core::ffi::{c_int, c_void};

use crate::abi::*;
use crate::future as fut;
use crate::mover::threads::{ThreadsMover, ThreadsOp};

/// # Safety
/// `data` must be an op handle of a threads mover.
unsafe fn record<'a>(data: *mut c_void) -> (&'a ThreadsMover, &'a ThreadsOp) {
    // SAFETY: caller's contract: a live record whose mover outlives it.
    unsafe {
        let op = &*data.cast::<ThreadsOp>();
        (&*op.owner(), op)
    }
}

unsafe extern "C" fn threads_op_new(v: *mut vdm, _t: u32) -> *mut c_void {
    if v.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: only reachable through a threads mover's vdm (offset 0).
    let m = unsafe { &*v.cast::<ThreadsMover>() };
    m.op_new().map_or(core::ptr::null_mut(), |op| {
        (op as *const ThreadsOp).cast_mut().cast()
    })
}

unsafe extern "C" fn threads_op_start(
    data: *mut c_void,
    op: *const vdm_operation,
    n: *mut future_notifier,
) -> c_int {
    if data.is_null() || op.is_null() {
        return 1;
    }
    // SAFETY: our handle; the future's operation; `n` NULL or writable.
    let started = unsafe {
        let (m, rec) = record(data);
        m.op_start(rec, &*op, n)
    };
    c_int::from(!started)
}

unsafe extern "C" fn threads_op_check(
    data: *mut c_void,
    _op: *const vdm_operation,
) -> future_state {
    if data.is_null() {
        return future_state::FUTURE_STATE_COMPLETE;
    }
    // SAFETY: our handle.
    let (m, rec) = unsafe { record(data) };
    match m.op_check(rec) {
        fut::COMPLETE => future_state::FUTURE_STATE_COMPLETE,
        fut::RUNNING => future_state::FUTURE_STATE_RUNNING,
        _ => future_state::FUTURE_STATE_IDLE,
    }
}

unsafe extern "C" fn threads_op_delete(
    data: *mut c_void,
    op: *const vdm_operation,
    out: *mut vdm_operation_output,
) {
    if data.is_null() || op.is_null() || out.is_null() {
        return;
    }
    // SAFETY: our handle, deleted once; the future's operation and output.
    unsafe {
        let (m, rec) = record(data);
        m.op_delete(rec, &*op, &mut *out);
    }
}

/// Property function of threads-mover futures: 1 for ASYNC, 0 for any
/// other value. The property is taken as a plain integer: C may pass any
/// value, and a Rust enum parameter holding a value outside its variants
/// is undefined behaviour (with one variant, the compare folded to 1).
unsafe extern "C" fn threads_has_property(_f: *mut c_void, p: u32) -> c_int {
    c_int::from(p == future_property::FUTURE_PROPERTY_ASYNC as u32)
}

/// `threads_has_property` as the `struct vdm` field's type.
fn threads_has_property_fn() -> future_has_property_fn {
    // SAFETY: `enum future_property` is passed as a C int; a function
    // taking u32 in its place has the same ABI.
    Some(unsafe {
        core::mem::transmute::<
            unsafe extern "C" fn(*mut c_void, u32) -> c_int,
            unsafe extern "C" fn(*mut c_void, future_property) -> c_int,
        >(threads_has_property)
    })
}

fn threads_vdm() -> vdm {
    vdm {
        op_new: super::op_new_fn(threads_op_new),
        op_delete: Some(threads_op_delete),
        op_start: Some(threads_op_start),
        op_check: Some(threads_op_check),
        capabilities: 0,
        has_property: threads_has_property_fn(),
    }
}

/// Creates a threads mover: `nthreads` workers, a queue of `ringbuf_size`
/// operations (rounded up to a power of two), futures using
/// `desired_notifier`. Returns NULL when `nthreads` is 0 or above 4096,
/// `ringbuf_size` is 0 or above 2^24, the notifier type is unknown, or a
/// thread cannot be created.
#[no_mangle]
pub extern "C" fn data_mover_threads_new(
    nthreads: usize,
    ringbuf_size: usize,
    desired_notifier: u32,
) -> *mut ThreadsMover {
    // `desired_notifier` is C's `enum future_notifier_type`, taken as a
    // plain integer: C may pass any value, which a Rust enum cannot hold.
    match ThreadsMover::new(threads_vdm(), nthreads, ringbuf_size, desired_notifier) {
        Ok(m) => Box::into_raw(m),
        Err(e) => {
            if e == crate::mover::threads::NewError::ThreadSpawn {
                super::warn("data_mover_threads_new: cannot create worker threads");
            }
            core::ptr::null_mut()
        }
    }
}

/// `data_mover_threads_new(12, 128, FUTURE_NOTIFIER_WAKER)`.
#[no_mangle]
pub extern "C" fn data_mover_threads_default() -> *mut ThreadsMover {
    data_mover_threads_new(12, 128, fut::NOTIFIER_WAKER)
}

/// The mover's `struct vdm` (same address as the mover); NULL for NULL.
///
/// # Safety
/// `dmt` must be NULL or a live threads mover.
#[no_mangle]
pub unsafe extern "C" fn data_mover_threads_get_vdm(dmt: *mut ThreadsMover) -> *mut vdm {
    if dmt.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: caller's contract.
    unsafe { core::ptr::addr_of_mut!((*dmt).vdm) }
}

/// Sets the workers' memcpy function (NULL: the built-in one). NULL mover
/// is ignored.
///
/// # Safety
/// `dmt` must be NULL or a live threads mover.
#[no_mangle]
pub unsafe extern "C" fn data_mover_threads_set_memcpy_fn(
    dmt: *mut ThreadsMover,
    op_memcpy: memcpy_fn,
) {
    // SAFETY: caller's contract.
    if let Some(m) = unsafe { dmt.as_ref() } {
        m.set_memcpy(op_memcpy);
    }
}

/// Sets the workers' memmove function (NULL: the built-in one).
///
/// # Safety
/// As for `data_mover_threads_set_memcpy_fn`.
#[no_mangle]
pub unsafe extern "C" fn data_mover_threads_set_memmove_fn(
    dmt: *mut ThreadsMover,
    op_memmove: memmove_fn,
) {
    // SAFETY: caller's contract.
    if let Some(m) = unsafe { dmt.as_ref() } {
        m.set_memmove(op_memmove);
    }
}

/// Sets the workers' memset function (NULL: the built-in one).
///
/// # Safety
/// As for `data_mover_threads_set_memcpy_fn`.
#[no_mangle]
pub unsafe extern "C" fn data_mover_threads_set_memset_fn(
    dmt: *mut ThreadsMover,
    op_memset: memset_fn,
) {
    // SAFETY: caller's contract.
    if let Some(m) = unsafe { dmt.as_ref() } {
        m.set_memset(op_memset);
    }
}

/// Stops the workers (after they execute everything already queued) and
/// releases the mover; NULL is ignored. Futures not yet started must not be
/// polled afterwards.
///
/// # Safety
/// `dmt` must be NULL or a live threads mover not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn data_mover_threads_delete(dmt: *mut ThreadsMover) {
    if !dmt.is_null() {
        // SAFETY: created by Box::into_raw in data_mover_threads_new.
        drop(unsafe { Box::from_raw(dmt) });
    }
}
