//! Real-symbol versions of the header's inline future functions, for
//! callers without a C preprocessor (plain FFI).

use core::ffi::{c_int, c_void};

use crate::abi::{future, future_context, future_notifier, future_state};
use crate::future as fut;

/// `future_poll(fut, notifier)`: polls once unless complete; returns the
/// state. A NULL `fut` returns FUTURE_STATE_COMPLETE and does nothing.
///
/// # Safety
/// `fut` must be NULL or a live future; `notifier` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn future_poll(
    fut: *mut future,
    notifier: *mut future_notifier,
) -> future_state {
    if fut.is_null() {
        return future_state::FUTURE_STATE_COMPLETE;
    }
    // SAFETY: caller's contract.
    let st = unsafe { fut::poll(fut, notifier) };
    match st {
        fut::IDLE => future_state::FUTURE_STATE_IDLE,
        fut::RUNNING => future_state::FUTURE_STATE_RUNNING,
        _ => future_state::FUTURE_STATE_COMPLETE,
    }
}

/// `future_has_property(fut, property)`: 0 for a NULL future or a NULL
/// property function, else what the future's function returns. The
/// property is C's `enum future_property` taken as a plain integer and
/// passed on unchanged (C may pass any value; a Rust enum cannot hold it).
///
/// # Safety
/// `fut` must be NULL or a live future.
#[no_mangle]
pub unsafe extern "C" fn future_has_property(fut: *mut future, property: u32) -> c_int {
    if fut.is_null() {
        return 0;
    }
    // SAFETY: caller's contract.
    let Some(f) = (unsafe { (*fut).has_property }) else {
        return 0;
    };
    // SAFETY: the enum is passed as a C int; a function type taking u32
    // in its place is ABI-identical.
    let raw: unsafe extern "C" fn(*mut c_void, u32) -> c_int = unsafe { core::mem::transmute(f) };
    // SAFETY: the future's own property function, given the future.
    unsafe { raw(fut.cast(), property) }
}

/// `future_context_get_data(ctx)`: the data right after the context (NULL
/// for NULL).
///
/// # Safety
/// `ctx` must be NULL or point to a future's context.
#[no_mangle]
pub unsafe extern "C" fn future_context_get_data(ctx: *mut future_context) -> *mut c_void {
    if ctx.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: a context is always followed by its data (caller's contract).
    unsafe { ctx.add(1).cast() }
}

/// `future_context_get_output(ctx)`: the output right after the data (NULL
/// for NULL).
///
/// # Safety
/// As for `future_context_get_data`.
#[no_mangle]
pub unsafe extern "C" fn future_context_get_output(ctx: *mut future_context) -> *mut c_void {
    if ctx.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: caller's contract: data_size bytes of data follow the context.
    unsafe { ctx.add(1).cast::<u8>().add((*ctx).data_size).cast() }
}

/// `future_context_get_size(ctx)`: data plus output bytes (0 for NULL).
///
/// # Safety
/// `ctx` must be NULL or a readable context.
#[no_mangle]
pub unsafe extern "C" fn future_context_get_size(ctx: *mut future_context) -> usize {
    if ctx.is_null() {
        return 0;
    }
    // SAFETY: caller's contract.
    unsafe { (*ctx).data_size.wrapping_add((*ctx).output_size) }
}
