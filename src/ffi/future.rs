//! Real-symbol versions of the header's inline future functions, for
//! callers without a C preprocessor (plain FFI).

use core::ffi::{c_int, c_void};
use core::ptr::NonNull;

use super::view::{FutureRef, Notifier, RawEnum};
use crate::abi::{future, future_context, future_notifier, future_property, future_state};

/// `future_poll(fut, notifier)`: polls once unless complete and returns
/// the state: IDLE or RUNNING as the task returned them, COMPLETE for
/// anything else (the state field keeps exactly what the task returned). A
/// NULL `fut` returns FUTURE_STATE_COMPLETE and does nothing.
///
/// # Safety
/// `fut` must be NULL or a live future; `notifier` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn future_poll(
    fut: Option<NonNull<future>>,
    notifier: *mut future_notifier,
) -> future_state {
    let Some(fut) = fut else {
        return future_state::FUTURE_STATE_COMPLETE;
    };
    // SAFETY: caller's contract: a live future and a notifier NULL or
    // writable, both for this call.
    let st = unsafe { FutureRef::new(fut).poll(&mut Notifier::from_c(notifier)) };
    match st.known() {
        Some(s @ (future_state::FUTURE_STATE_IDLE | future_state::FUTURE_STATE_RUNNING)) => s,
        _ => future_state::FUTURE_STATE_COMPLETE,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::future_context;
    use crate::ffi::fnptr;

    /// A task returning a value no `enum future_state` variant has, as C may.
    unsafe extern "C" fn odd_task(
        _ctx: *mut future_context,
        _n: *mut future_notifier,
    ) -> RawEnum<future_state> {
        RawEnum::from_raw(7)
    }

    unsafe extern "C" fn running_task(
        _ctx: *mut future_context,
        _n: *mut future_notifier,
    ) -> RawEnum<future_state> {
        RawEnum::of(future_state::FUTURE_STATE_RUNNING)
    }

    fn fut(task: crate::abi::future_task_fn) -> future {
        future {
            task,
            has_property: None,
            context: future_context {
                data_size: 0,
                output_size: 0,
                state: future_state::FUTURE_STATE_IDLE,
                padding: 0,
            },
        }
    }

    /// The state as the integer it holds (through a pointer: a reference
    /// to a future with an odd state would assert a valid enum).
    fn stored(f: *const future) -> u32 {
        // SAFETY: a live local future.
        unsafe { core::ptr::addr_of!((*f).context.state).cast::<u32>().read() }
    }

    #[test]
    fn poll_returns_idle_or_running_as_is_and_complete_for_anything_else() {
        let mut f = fut(fnptr::task_fn(running_task));
        // SAFETY: a local future with no data; no notifier.
        let st = unsafe { future_poll(Some(NonNull::from(&mut f)), core::ptr::null_mut()) };
        assert_eq!(st, future_state::FUTURE_STATE_RUNNING);

        let mut f = fut(fnptr::task_fn(odd_task));
        // SAFETY: as above.
        let st = unsafe { future_poll(Some(NonNull::from(&mut f)), core::ptr::null_mut()) };
        assert_eq!(
            st,
            future_state::FUTURE_STATE_COMPLETE,
            "7 reads as complete"
        );
        assert_eq!(stored(&f), 7, "the state keeps what the task returned");

        // No task, an odd state: nothing runs, the state reads as complete.
        let mut f = fut(None);
        let p = core::ptr::addr_of_mut!(f);
        // SAFETY: writing an out-of-range state through a u32 view, as C
        // may; the future is only read through `p` and `stored` afterwards.
        let st = unsafe {
            core::ptr::addr_of_mut!((*p).context.state)
                .cast::<u32>()
                .write(5);
            future_poll(NonNull::new(p), core::ptr::null_mut())
        };
        assert_eq!(st, future_state::FUTURE_STATE_COMPLETE);
        assert_eq!(stored(p), 5);

        // SAFETY: NULL is allowed.
        let st = unsafe { future_poll(None, core::ptr::null_mut()) };
        assert_eq!(st, future_state::FUTURE_STATE_COMPLETE);
    }
}
