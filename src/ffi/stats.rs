//! The statistics exports: `data_mover_{sync,threads,dml}_get_stats` and
//! `data_mover_dml_get_queue_stats` fill the caller's struct up to the
//! size it says it has.

use core::ffi::{c_char, c_int};
use core::ptr::NonNull;

use crate::abi::{data_mover_queue_stats, data_mover_stats};
use crate::mover::stats::{Counter, MoverStats, Snapshot};

/// Copies `full` into `out`, at most `out->size` bytes, and writes back the
/// bytes filled; -1 (nothing written) when `out->size` cannot even hold the
/// size field.
///
/// # Safety
/// `out` must be valid for reads of its `size` field and for writes of the
/// `size` bytes it states.
unsafe fn fill<T>(out: NonNull<T>, full: &T) -> c_int {
    let p = out.as_ptr().cast::<u8>();
    // SAFETY: caller's contract: every stats struct starts with a size_t.
    let want = unsafe { p.cast::<usize>().read_unaligned() };
    if want < core::mem::size_of::<usize>() {
        return -1;
    }
    let n = want.min(core::mem::size_of::<T>());
    // SAFETY: `full` is `size_of::<T>()` readable bytes, the caller's
    // struct has room for `want >= n` bytes, and the two do not overlap.
    unsafe {
        core::ptr::copy_nonoverlapping((full as *const T).cast::<u8>(), p, n);
        p.cast::<usize>().write_unaligned(n);
    }
    0
}

fn c_stats(s: &Snapshot) -> data_mover_stats {
    use Counter::*;
    data_mover_stats {
        size: core::mem::size_of::<data_mover_stats>(),
        ops: s.get(Ops),
        ops_memcpy: s.get(OpsMemcpy),
        ops_memmove: s.get(OpsMemmove),
        ops_memset: s.get(OpsMemset),
        ops_flush: s.get(OpsFlush),
        bytes: s.get(Bytes),
        device_ops: s.get(DeviceOps),
        cpu_ops: s.get(CpuOps),
        mixed_ops: s.get(MixedOps),
        fallback_small: s.get(FallbackSmall),
        fallback_busy: s.get(FallbackBusy),
        fallback_fault: s.get(FallbackFault),
        fallback_error: s.get(FallbackError),
        fallback_unsupported: s.get(FallbackUnsupported),
        fallback_fork: s.get(FallbackFork),
        fallback_halted: s.get(FallbackHalted),
        page_faults: s.get(PageFaults),
        batches: s.get(Batches),
        retries: s.get(Retries),
        errors: s.get(Errors),
        timeouts: s.get(Timeouts),
        queues: s.queues.len() as u64,
    }
}

/// A NUL-terminated copy of `s`, cut to fit.
fn c_name(s: &str) -> [c_char; 32] {
    let mut a = [0 as c_char; 32];
    for (d, &b) in a.iter_mut().zip(s.as_bytes().iter().take(31)) {
        *d = b as c_char;
    }
    a
}

/// `data_mover_*_get_stats` for any mover's statistics.
///
/// # Safety
/// `out` NULL or as for [`fill`].
pub(super) unsafe fn get_stats(
    stats: &MoverStats,
    out: Option<NonNull<data_mover_stats>>,
) -> c_int {
    let Some(out) = out else { return -1 };
    // SAFETY: forwarded caller contract.
    unsafe { fill(out, &c_stats(&stats.snapshot())) }
}

/// `data_mover_dml_get_queue_stats` for any mover's statistics.
///
/// # Safety
/// `out` NULL or as for [`fill`].
pub(super) unsafe fn get_queue_stats(
    stats: &MoverStats,
    index: usize,
    out: Option<NonNull<data_mover_queue_stats>>,
) -> c_int {
    let Some(out) = out else { return -1 };
    let snap = stats.snapshot();
    let Some((q, ops, bytes)) = snap.queues.get(index) else {
        return -1;
    };
    let full = data_mover_queue_stats {
        size: core::mem::size_of::<data_mover_queue_stats>(),
        name: c_name(&q.name),
        device: c_name(&q.device),
        numa_node: q.numa_node,
        padding: 0,
        ops: *ops,
        bytes: *bytes,
    };
    // SAFETY: forwarded caller contract.
    unsafe { fill(out, &full) }
}
