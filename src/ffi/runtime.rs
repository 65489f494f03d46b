//! Exports of the runtime.

use core::ffi::c_void;
use core::ptr::NonNull;

use super::view::FutureRef;
use crate::abi::future;
use crate::runtime::Runtime;

/// The waker function the runtime offers to every poll (its data is the
/// runtime): wakes a waiter about to sleep. Its target is never freed
/// (runtimes are recycled), so movers may call it late.
///
/// # Safety
/// `data` must point to a `Runtime` from `runtime_new` (live or retired:
/// its memory is never returned).
pub(crate) unsafe extern "C" fn runtime_wake(data: *mut c_void) {
    // SAFETY: caller's contract: the waker data is a runtime.
    unsafe { &*data.cast::<Runtime>() }.wake();
}

/// Creates a runtime (a recycled one when available).
#[no_mangle]
pub extern "C" fn runtime_new() -> *mut Runtime {
    Runtime::create()
}

/// Releases a runtime; NULL is ignored.
///
/// # Safety
/// `runtime` must be NULL or from `runtime_new`, with no thread waiting on
/// it, and not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn runtime_delete(runtime: Option<NonNull<Runtime>>) {
    if let Some(rt) = runtime {
        // SAFETY: created by runtime_new (caller's contract). Its memory is
        // kept for reuse, so a mover's late wake stays harmless.
        unsafe { Runtime::retire(rt.as_ptr()) };
    }
}

/// Waits until every future of `futs[0..nfuts)` is complete (NULL entries
/// skipped), reordering the array each pass: ASYNC futures first, stable.
/// A NULL runtime or NULL `futs` returns at once.
///
/// # Safety
/// `futs` must be NULL or hold `nfuts` pointers, each NULL or a live future.
#[no_mangle]
pub unsafe extern "C" fn runtime_wait_multiple(
    runtime: Option<&Runtime>,
    futs: Option<NonNull<*mut future>>,
    nfuts: usize,
) {
    let (Some(rt), Some(futs)) = (runtime, futs) else {
        return;
    };
    if nfuts == 0 {
        return;
    }
    // SAFETY: caller's contract: `nfuts` pointers, each NULL or a live
    // future nobody else polls during the wait.
    rt.wait(unsafe { FutureRef::slice(futs, nfuts) });
}

/// Waits for one future. NULL arguments return at once.
///
/// # Safety
/// `fut` must be NULL or a live future.
#[no_mangle]
pub unsafe extern "C" fn runtime_wait(runtime: Option<&Runtime>, fut: Option<NonNull<future>>) {
    if let Some(rt) = runtime {
        // SAFETY: caller's contract: NULL or a live future, for the wait.
        rt.wait(&mut [fut.map(|f| unsafe { FutureRef::new(f) })]);
    }
}

/// Waits for a contiguous array of `nfuts` futures of one type; the stride
/// is `sizeof(struct future) + data_size + output_size` of the first one,
/// rounded up to 8. The array is not reordered. NULL arguments return at
/// once.
///
/// # Safety
/// `futs` must be NULL or point to `nfuts` live futures of equal size laid
/// out back to back.
#[no_mangle]
pub unsafe extern "C" fn runtime_wait_all(
    runtime: Option<&Runtime>,
    futs: Option<NonNull<future>>,
    nfuts: usize,
) {
    let (Some(rt), Some(futs)) = (runtime, futs) else {
        return;
    };
    if nfuts == 0 {
        return;
    }
    let first = futs.as_ptr();
    // SAFETY: caller's contract: the first future is live (its sizes are
    // read field by field: its state may hold any integer).
    let (data, output) = unsafe { ((*first).context.data_size, (*first).context.output_size) };
    let size = core::mem::size_of::<future>()
        .saturating_add(data)
        .saturating_add(output);
    let stride = (size + 7) & !7;
    let mut views: Vec<Option<FutureRef<'_>>> = (0..nfuts)
        // SAFETY: the caller promised `nfuts` live futures of this stride,
        // polled by nobody else during the wait.
        .map(|i| unsafe {
            let p = first.cast::<u8>().add(i * stride).cast::<future>();
            Some(FutureRef::new(NonNull::new_unchecked(p)))
        })
        .collect();
    rt.wait(&mut views);
}
