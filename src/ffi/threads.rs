//! Exports of the threads mover (`<libminiasync/data_mover_threads.h>`).

use core::ffi::{c_int, c_void};
use core::ptr::NonNull;

use super::fnptr;
use super::view::{vdm_of, RawEnum};
use crate::abi::{
    data_mover_stats, future_notifier_type, future_property, memcpy_fn, memmove_fn, memset_fn, vdm,
};
use crate::mover::threads::{self, NewError, ThreadsMover};

/// Property function of threads-mover futures: 1 for ASYNC, 0 for any
/// other value (C may pass any value: the raw integer is compared).
unsafe extern "C" fn threads_has_property(_f: *mut c_void, p: RawEnum<future_property>) -> c_int {
    c_int::from(p.is(future_property::FUTURE_PROPERTY_ASYNC))
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
    desired_notifier: RawEnum<future_notifier_type>,
) -> *mut ThreadsMover {
    let vdm = vdm_of::<ThreadsMover>(fnptr::has_property_fn(threads_has_property));
    match ThreadsMover::new(vdm, nthreads, ringbuf_size, desired_notifier) {
        Ok(m) => Box::into_raw(m),
        Err(e) => {
            if e == NewError::ThreadSpawn {
                super::warn("data_mover_threads_new: cannot create worker threads");
            }
            core::ptr::null_mut()
        }
    }
}

/// `data_mover_threads_new(12, 128, FUTURE_NOTIFIER_WAKER)`, as upstream.
#[no_mangle]
pub extern "C" fn data_mover_threads_default() -> *mut ThreadsMover {
    data_mover_threads_new(
        threads::DEFAULT_THREADS,
        threads::DEFAULT_RING,
        RawEnum::of(threads::DEFAULT_NOTIFIER),
    )
}

/// The mover's `struct vdm` (same address as the mover); NULL for NULL.
///
/// # Safety
/// `dmt` must be NULL or a live threads mover.
#[no_mangle]
pub unsafe extern "C" fn data_mover_threads_get_vdm(
    dmt: Option<NonNull<ThreadsMover>>,
) -> *mut vdm {
    dmt.map_or(core::ptr::null_mut(), |m| {
        // SAFETY: caller's contract: a live mover.
        unsafe { core::ptr::addr_of_mut!((*m.as_ptr()).vdm) }
    })
}

/// Sets the workers' memcpy function (NULL: the built-in one). NULL mover
/// is ignored.
///
/// # Safety
/// `dmt` must be NULL or a live threads mover.
#[no_mangle]
pub unsafe extern "C" fn data_mover_threads_set_memcpy_fn(
    dmt: Option<&ThreadsMover>,
    op_memcpy: memcpy_fn,
) {
    if let Some(m) = dmt {
        m.set_memcpy(op_memcpy);
    }
}

/// Sets the workers' memmove function (NULL: the built-in one).
///
/// # Safety
/// As for `data_mover_threads_set_memcpy_fn`.
#[no_mangle]
pub unsafe extern "C" fn data_mover_threads_set_memmove_fn(
    dmt: Option<&ThreadsMover>,
    op_memmove: memmove_fn,
) {
    if let Some(m) = dmt {
        m.set_memmove(op_memmove);
    }
}

/// Sets the workers' memset function (NULL: the built-in one).
///
/// # Safety
/// As for `data_mover_threads_set_memcpy_fn`.
#[no_mangle]
pub unsafe extern "C" fn data_mover_threads_set_memset_fn(
    dmt: Option<&ThreadsMover>,
    op_memset: memset_fn,
) {
    if let Some(m) = dmt {
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
pub unsafe extern "C" fn data_mover_threads_delete(dmt: Option<NonNull<ThreadsMover>>) {
    if let Some(m) = dmt {
        // SAFETY: created by Box::into_raw in data_mover_threads_new.
        drop(unsafe { Box::from_raw(m.as_ptr()) });
    }
}

/// As `data_mover_sync_get_stats`, for a threads mover.
///
/// # Safety
/// `dmt` NULL or a live threads mover; `stats` NULL or writable for the
/// size it states.
#[no_mangle]
pub unsafe extern "C" fn data_mover_threads_get_stats(
    dmt: Option<&ThreadsMover>,
    stats: Option<NonNull<data_mover_stats>>,
) -> c_int {
    let Some(m) = dmt else { return -1 };
    // SAFETY: forwarded caller contract.
    unsafe { super::stats::get_stats(&m.stats, stats) }
}
