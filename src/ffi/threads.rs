//! Exports of the threads mover and the callbacks of its `struct vdm`.

use core::ffi::{c_int, c_void};

use super::callbacks::{vdm_of, Mover};
use crate::abi::*;
use crate::future as fut;
use crate::mover::threads::{ThreadsMover, ThreadsOp};

impl Mover for ThreadsMover {
    type Op = ThreadsOp;

    fn owner_of(op: &ThreadsOp) -> *const ThreadsMover {
        op.owner()
    }

    fn new_op(&self) -> Option<&ThreadsOp> {
        self.op_new()
    }

    unsafe fn start(
        &self,
        op: &ThreadsOp,
        operation: &vdm_operation,
        n: *mut future_notifier,
    ) -> bool {
        // SAFETY: forwarded caller contract.
        unsafe { self.op_start(op, operation, n) }
    }

    unsafe fn check(&self, op: &ThreadsOp) -> u32 {
        self.op_check(op)
    }

    unsafe fn delete(
        &self,
        op: &ThreadsOp,
        operation: &vdm_operation,
        out: &mut vdm_operation_output,
    ) {
        // SAFETY: forwarded caller contract.
        unsafe { self.op_delete(op, operation, out) }
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
    vdm_of::<ThreadsMover>(0, threads_has_property_fn())
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
