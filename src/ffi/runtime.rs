//! Exports of the runtime.

use crate::abi::future;
use crate::runtime::Runtime;

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
pub unsafe extern "C" fn runtime_delete(runtime: *mut Runtime) {
    if !runtime.is_null() {
        // SAFETY: created by runtime_new (caller's contract). Its memory is
        // kept for reuse, so a mover's late wake stays harmless.
        unsafe { Runtime::retire(runtime) };
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
    runtime: *mut Runtime,
    futs: *mut *mut future,
    nfuts: usize,
) {
    if runtime.is_null() || futs.is_null() || nfuts == 0 {
        return;
    }
    // SAFETY: caller's contract.
    let slice = unsafe { core::slice::from_raw_parts_mut(futs, nfuts) };
    // SAFETY: caller's contract.
    unsafe { (*runtime).wait(slice) };
}

/// Waits for one future. NULL arguments return at once.
///
/// # Safety
/// `fut` must be NULL or a live future.
#[no_mangle]
pub unsafe extern "C" fn runtime_wait(runtime: *mut Runtime, fut: *mut future) {
    let mut one = fut;
    // SAFETY: `one` is a one-element array.
    unsafe { runtime_wait_multiple(runtime, &mut one, 1) };
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
pub unsafe extern "C" fn runtime_wait_all(runtime: *mut Runtime, futs: *mut future, nfuts: usize) {
    if runtime.is_null() || futs.is_null() || nfuts == 0 {
        return;
    }
    // SAFETY: caller's contract: the first future is live.
    let ctx = unsafe { &(*futs).context };
    let size = core::mem::size_of::<future>()
        .saturating_add(ctx.data_size)
        .saturating_add(ctx.output_size);
    let stride = (size + 7) & !7;
    let mut ptrs: Vec<*mut future> = (0..nfuts)
        // SAFETY: the caller promised `nfuts` futures of this stride.
        .map(|i| unsafe { futs.cast::<u8>().add(i * stride).cast::<future>() })
        .collect();
    // SAFETY: caller's contract.
    unsafe { (*runtime).wait(&mut ptrs) };
}
