//! C-visible statistics types (`<libminiasync/data_mover_stats.h>`), our
//! extension: what `data_mover_sync_get_stats`, `data_mover_threads_get_stats`
//! and `data_mover_dml_get_stats` fill. cbindgen turns this file into
//! `include/libminiasync/data_mover_stats_types.h`.
//!
//! Both structs start with their size, so they can grow: the caller sets
//! `size` to the `sizeof` it was compiled with, the library fills at most
//! that many bytes and writes back how many it filled.

use core::ffi::c_char;

/// What a mover did since it was created. Counts are totals over every
/// thread that used the mover; read while operations run, each counter is
/// recent but the counters are not a consistent snapshot of each other.
#[repr(C)]
pub struct data_mover_stats {
    /// In: `sizeof(struct data_mover_stats)`. Out: the bytes filled.
    pub size: usize,
    /// Operations started, of every type.
    pub ops: u64,
    pub ops_memcpy: u64,
    pub ops_memmove: u64,
    pub ops_memset: u64,
    pub ops_flush: u64,
    /// Bytes of the operations started.
    pub bytes: u64,
    /// Operations completed on a device.
    pub device_ops: u64,
    /// Operations run on the CPU.
    pub cpu_ops: u64,
    /// Operations started on a device and finished on the CPU.
    pub mixed_ops: u64,
    /// CPU fallbacks of the DSA mover, by reason: too small for the AUTO
    /// threshold, work queue full, a page fault the device could not get
    /// past, a device error, an operation the queue does not support, a
    /// process that is not the engine's (after `fork`), a halted device.
    pub fallback_small: u64,
    pub fallback_busy: u64,
    pub fallback_fault: u64,
    pub fallback_error: u64,
    pub fallback_unsupported: u64,
    pub fallback_fork: u64,
    pub fallback_halted: u64,
    /// Page faults the device reported for the mover's operations.
    pub page_faults: u64,
    /// BATCH descriptors the mover's operations submitted (a batch
    /// carries pieces of every operation waiting on its queue).
    pub batches: u64,
    /// Submissions tried again: the work queue refused one (full), or a
    /// batch record said the piece did not run.
    pub retries: u64,
    /// Operations that completed with an error result.
    pub errors: u64,
    /// Operations failed because their device never answered in time.
    pub timeouts: u64,
    /// Work queues the mover used (`data_mover_dml_get_queue_stats`).
    pub queues: u64,
}

/// One work queue a DSA mover used.
#[repr(C)]
pub struct data_mover_queue_stats {
    /// In: `sizeof(struct data_mover_queue_stats)`. Out: the bytes filled.
    pub size: usize,
    /// The queue's name (`wq0.0`), NUL-terminated.
    pub name: [c_char; 32],
    /// Its device (`dsa0`), NUL-terminated.
    pub device: [c_char; 32],
    /// The device's NUMA node; -1 when the kernel does not say.
    pub numa_node: i32,
    pub padding: u32,
    /// Operations the queue ran (wholly or in part).
    pub ops: u64,
    /// Bytes it moved.
    pub bytes: u64,
}
