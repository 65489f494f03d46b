//! Real-symbol versions of the header's inline future functions, for
//! callers without a C preprocessor (plain FFI).

use core::ffi::{c_int, c_void};
use core::ptr::NonNull;

use super::view::{FutureRef, Notifier, RawEnum};
use crate::abi::{future, future_context, future_notifier, future_property, future_state};

/// `future_poll(fut, notifier)`: polls once unless complete; returns the
/// state as the task stored it. A NULL `fut` returns FUTURE_STATE_COMPLETE
/// and does nothing.
///
/// # Safety
/// `fut` must be NULL or a live future; `notifier` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn future_poll(
    fut: Option<NonNull<future>>,
    notifier: *mut future_notifier,
) -> RawEnum<future_state> {
    let Some(fut) = fut else {
        return RawEnum::of(future_state::FUTURE_STATE_COMPLETE);
    };
    // SAFETY: caller's contract: a live future and a notifier NULL or
    // writable, both for this call.
    unsafe { FutureRef::new(fut).poll(&mut Notifier::from_c(notifier)) }
}

/// `future_has_property(fut, property)`: 0 for a NULL future or a NULL
/// property function, else what the future's function returns. The
/// property is passed on exactly as C gave it.
///
/// # Safety
/// `fut` must be NULL or a live future.
#[no_mangle]
pub unsafe extern "C" fn future_has_property(
    fut: Option<NonNull<future>>,
    property: RawEnum<future_property>,
) -> c_int {
    // SAFETY: caller's contract: a live future, for this call.
    fut.map_or(0, |f| unsafe { FutureRef::new(f) }.property(property))
}

/// `future_context_get_data(ctx)`: the data right after the context (NULL
/// for NULL).
///
/// # Safety
/// `ctx` must be NULL or point to a future's context.
#[no_mangle]
pub unsafe extern "C" fn future_context_get_data(
    ctx: Option<NonNull<future_context>>,
) -> *mut c_void {
    // SAFETY: a context is always followed by its data (caller's contract).
    ctx.map_or(core::ptr::null_mut(), |c| unsafe {
        c.as_ptr().add(1).cast()
    })
}

/// `future_context_get_output(ctx)`: the output right after the data (NULL
/// for NULL).
///
/// # Safety
/// As for `future_context_get_data`.
#[no_mangle]
pub unsafe extern "C" fn future_context_get_output(
    ctx: Option<NonNull<future_context>>,
) -> *mut c_void {
    ctx.map_or(core::ptr::null_mut(), |c| {
        let c = c.as_ptr();
        // SAFETY: caller's contract: data_size bytes of data follow the
        // context, then the output.
        unsafe { c.add(1).cast::<u8>().add((*c).data_size).cast() }
    })
}

/// `future_context_get_size(ctx)`: data plus output bytes (0 for NULL).
///
/// # Safety
/// `ctx` must be NULL or a readable context.
#[no_mangle]
pub unsafe extern "C" fn future_context_get_size(ctx: Option<NonNull<future_context>>) -> usize {
    ctx.map_or(0, |c| {
        let c = c.as_ptr();
        // SAFETY: caller's contract: a readable context (its sizes are
        // read field by field: its state may hold any integer).
        unsafe { (*c).data_size.wrapping_add((*c).output_size) }
    })
}
