//! Safe(r) views of C futures: raw state access, polling and properties.
//!
//! C code may store any `int` in enum-typed fields, so state and notifier
//! type are read and written here as `u32`, never as Rust enums.

use core::ffi::c_int;

use crate::abi::{future, future_notifier, future_property};

/// `FUTURE_STATE_IDLE`.
pub const IDLE: u32 = 0;
/// `FUTURE_STATE_COMPLETE`.
pub const COMPLETE: u32 = 1;
/// `FUTURE_STATE_RUNNING`.
pub const RUNNING: u32 = 2;

/// `FUTURE_NOTIFIER_NONE`.
pub const NOTIFIER_NONE: u32 = 0;
/// `FUTURE_NOTIFIER_WAKER`.
pub const NOTIFIER_WAKER: u32 = 1;
/// `FUTURE_NOTIFIER_POLLER`.
pub const NOTIFIER_POLLER: u32 = 2;

/// The task signature with the state returned as a plain integer.
type RawTask = unsafe extern "C" fn(*mut crate::abi::future_context, *mut future_notifier) -> u32;
/// The property signature with the property passed as a plain integer.
type RawHasProperty = unsafe extern "C" fn(*mut core::ffi::c_void, u32) -> c_int;

/// Reads a future's state.
///
/// # Safety
/// `fut` must point to a live future.
#[inline]
pub unsafe fn state(fut: *const future) -> u32 {
    // SAFETY: caller's contract; the field is 4 bytes, read as u32.
    unsafe {
        core::ptr::addr_of!((*fut).context.state)
            .cast::<u32>()
            .read()
    }
}

/// Polls a future once, like the header's `future_poll`: runs the task
/// unless the future is complete, stores and returns the state. A future
/// that is not complete but has no task cannot progress: it is left alone
/// and its state returned.
///
/// # Safety
/// `fut` must point to a live future; `notifier` must be NULL or valid for
/// writes for the duration of the call.
#[inline]
pub unsafe fn poll(fut: *mut future, notifier: *mut future_notifier) -> u32 {
    // SAFETY: caller's contract.
    let st = unsafe { state(fut) };
    if st == COMPLETE {
        return st;
    }
    // SAFETY: caller's contract.
    let Some(task) = (unsafe { (*fut).task }) else {
        return st;
    };
    // SAFETY: caller's contract; `task` is the future's own.
    unsafe { run_task(fut, task, notifier) }
}

/// Runs a future's task once, unconditionally, and stores the new state
/// (the core of `poll`, for callers that already checked the state).
///
/// # Safety
/// As for `poll`, and `task` must be the future's own task.
#[inline(always)]
pub unsafe fn run_task(
    fut: *mut future,
    task: unsafe extern "C" fn(
        *mut crate::abi::future_context,
        *mut future_notifier,
    ) -> crate::abi::future_state,
    notifier: *mut future_notifier,
) -> u32 {
    // SAFETY: the C signature returns `enum future_state`, an `int`-sized
    // value in the same register as a u32: the two function types are
    // ABI-identical, and reading it as u32 accepts any value C returns.
    let raw: RawTask = unsafe { core::mem::transmute(task) };
    // SAFETY: the task is the future's own, called with its context.
    let new = unsafe { raw(core::ptr::addr_of_mut!((*fut).context), notifier) };
    // SAFETY: caller's contract.
    unsafe {
        core::ptr::addr_of_mut!((*fut).context.state)
            .cast::<u32>()
            .write(new)
    };
    new
}

/// Asks a future for a property; a NULL property function means "none".
///
/// # Safety
/// `fut` must point to a live future.
#[inline]
pub unsafe fn has_property(fut: *mut future, property: future_property) -> c_int {
    // SAFETY: caller's contract.
    match unsafe { (*fut).has_property } {
        None => 0,
        Some(f) => {
            // SAFETY: `enum future_property` is passed as an int; the types
            // are ABI-identical.
            let raw: RawHasProperty = unsafe { core::mem::transmute(f) };
            // SAFETY: the future's own property function, given the future.
            unsafe { raw(fut.cast(), property as u32) }
        }
    }
}

/// A notifier as the runtime hands it to every poll: the given waker, no
/// poller address, `notifier_used` NONE, padding 0.
pub fn notifier_with_waker(waker: crate::abi::future_waker) -> future_notifier {
    future_notifier {
        waker,
        poller: crate::abi::future_poller {
            ptr_to_monitor: core::ptr::null_mut(),
        },
        notifier_used: crate::abi::future_notifier_type::FUTURE_NOTIFIER_NONE,
        padding: 0,
    }
}

/// Reads which notifier a future chose.
#[inline]
pub fn notifier_used(n: &future_notifier) -> u32 {
    // SAFETY: a 4-byte field of `n`, read as u32 (C may store any value).
    unsafe { core::ptr::addr_of!(n.notifier_used).cast::<u32>().read() }
}

/// Writes which notifier a future chose.
///
/// # Safety
/// `n` must be NULL or valid for writes.
#[inline]
pub unsafe fn set_notifier_used(n: *mut future_notifier, kind: u32) {
    if !n.is_null() {
        // SAFETY: caller's contract.
        unsafe {
            core::ptr::addr_of_mut!((*n).notifier_used)
                .cast::<u32>()
                .write(kind)
        };
    }
}
