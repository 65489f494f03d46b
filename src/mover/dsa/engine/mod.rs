//! The DSA engine: runs operations on one work queue through a [`Portal`].
//!
//! It owns the WQ credits and the batch records. It owns no per-operation
//! records: each operation's state and completion record is a [`DeviceOp`]
//! that lives inside the mover's own op record (one record per operation,
//! one bound: the mover's), at a stable address from `start_op` until
//! `release_op` returns. An operation is
//! split into pieces of at most the WQ's max transfer size; each piece is
//! one descriptor, submitted directly when a credit is free or appended to
//! a batch when the WQ is full. Polling an op observes its completion
//! record (acquire), returns credits, resumes page-fault partial
//! completions (make the page present, and the rest of the piece on its
//! first fault; resubmit the rest, direction-aware) and
//! submits the next piece. Anything the device cannot finish comes back as
//! [`Poll::Failed`] with the exact remaining work.
//!
//! Credits name the `DeviceOp` holding them by address (see the credits
//! section of `op.rs`), so any thread can return the credit of a
//! descriptor whose record is written. Those reads of other operations'
//! records happen under the engine's scan lock; a mover frees its records
//! only after [`Engine::quiesce`], which waits out every scan that may
//! still hold one of their addresses.
//!
//! The files: [`op`] is one operation's life (start, submit, poll,
//! complete, release), with its pieces and the credit pool; everything a
//! single operation on a free WQ runs is there. Beside it, off that path:
//! [`batch`] (batches, used when the WQ is full), `reclaim.rs` (returning
//! other operations' credits when none is free), [`fault`] (page-fault
//! resume) and this file (the [`Engine`] itself: options, capabilities,
//! counters, construction and teardown).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::mover::dsa::hw::discovery::{WqConfig, WqMode};
use crate::mover::dsa::hw::{opcode, Method, Portal};
use batch::Batches;
use op::{Credits, Remainder};

pub use op::DeviceOp;

pub mod batch;
pub mod fault;
pub mod op;
mod reclaim;
mod timeout;

/// When to use BATCH descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchPolicy {
    /// Never.
    Off,
    /// When no WQ credit is free: queued operations share one WQ entry.
    WhenBusy,
}

/// Engine tuning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    pub batch: BatchPolicy,
    /// Elements per batch (capped by the WQ's max_batch_size and 64).
    pub batch_elements: u32,
    /// Consecutive page faults at the same address with no progress
    /// before an operation fails.
    pub fault_retries: u32,
    /// How long an operation waits without progress (no completion
    /// record, no WQ credit) before it fails (`MINIASYNC_DSA_TIMEOUT_MS`).
    pub timeout: Duration,
}

/// Default [`EngineOptions::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            batch: BatchPolicy::WhenBusy,
            batch_elements: 32,
            fault_retries: 64,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Why [`Engine::start`] did not take an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The WQ cannot run this operation (opcode not enabled, or an
    /// overlapping copy without GENCAP overlap support): use the CPU.
    Unsupported,
    /// Address range wraps around.
    Invalid,
    /// No credit free and queueing was not requested.
    Busy,
    /// The device stopped (halted, or the device or WQ disabled): nothing
    /// is submitted to it any more.
    Stopped,
}

/// Why an operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// An unrecoverable completion status (full status byte).
    Status(u8),
    /// A faulting address could not be made present (not mapped, or not
    /// writable for a write): a CPU access would crash too.
    Unresolvable { addr: u64, errno: i32 },
    /// The same page kept faulting without progress.
    FaultLoop { addr: u64 },
    /// The completion record contradicts the descriptor.
    Inconsistent,
    /// The portal refused the descriptor (errno of `write(2)`).
    Submit(i32),
    /// No progress for [`EngineOptions::timeout`] while the device stayed
    /// enabled. With `in_device`, a descriptor of the operation may still
    /// be in the device, which may still write its destination and its
    /// record: the record is quarantined (see [`Release`]).
    TimedOut { in_device: bool },
    /// The device stopped (halted, or the device or WQ disabled) before
    /// the operation ended: it writes nothing any more.
    DeviceStopped,
}

/// A failed operation: why, and exactly what is left to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailReason,
    /// Left-over work, in order (piece remainder, then the rest).
    pub remaining: Remainder,
    /// The device may have written part of the first remaining piece
    /// (an error after execution started).
    pub partial: bool,
}

impl Failure {
    /// Whether running `remaining` on the CPU gives the right result: not
    /// when a source may already have been overwritten by the device
    /// (overlapping copy after an execution error), nor when the memory
    /// is not accessible at all.
    pub fn cpu_can_finish(&self) -> bool {
        let overlapping = self.remaining.ops().any(|o| o.overlaps());
        let unreachable = matches!(self.reason, FailReason::Unresolvable { .. });
        // The device may still write: the CPU would race it.
        let racing = matches!(self.reason, FailReason::TimedOut { in_device: true });
        !(unreachable || racing || self.partial && overlapping)
    }
}

/// What [`Engine::release_op`] did with a record.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// The engine is done with it: it may be started again or freed
    /// (after [`Engine::quiesce`]).
    Reusable,
    /// Its operation timed out while a descriptor of it may still be in
    /// the device, which may write the record at any time: it must never
    /// be reused nor freed (a bounded, deliberate leak).
    Quarantined,
}

/// The state of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    Running,
    Done,
    Failed(Failure),
}

/// What the engine can do, for a mover choosing paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub copy: bool,
    pub fill: bool,
    pub flush: bool,
    /// Overlapping copies run on the device.
    pub overlap: bool,
    /// DRDBK makes durable writes durable at completion; otherwise the
    /// caller must write the destination back itself.
    pub durable_by_device: bool,
    pub method: Method,
}

/// Counters (relaxed), kept in test builds only: the tests check what
/// the engine did; the product pays for no shared counter on its path.
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub descriptors: u64,
    pub batches: u64,
    pub batched_ops: u64,
    pub faults_resolved: u64,
    pub busy: u64,
    /// Operations failed by the timeout or a stopped device.
    pub timeouts: u64,
    /// Records quarantined.
    pub quarantined: u64,
}

#[cfg(test)]
#[derive(Default)]
struct Counters {
    descriptors: AtomicU64,
    batches: AtomicU64,
    batched_ops: AtomicU64,
    faults_resolved: AtomicU64,
    busy: AtomicU64,
}

/// A DSA work queue driver.
pub struct Engine {
    cfg: WqConfig,
    portal: Arc<dyn Portal>,
    opts: EngineOptions,
    max_piece: u64,
    /// Held (shared) by every reclaim scan, which reads the records that
    /// credits name; taken exclusively by [`Engine::quiesce`].
    scan: RwLock<()>,
    credits: Credits,
    batches: Batches,
    batching: AtomicBool,
    /// Fixed at construction: the configuration and the portal's method
    /// do not change.
    caps: Caps,
    /// Operations failed by the timeout or a stopped device, and records
    /// quarantined (slow path only; for the log and the tests).
    timeouts: AtomicU64,
    quarantined: AtomicU64,
    /// The device is known to have stopped: nothing is submitted to it any
    /// more (`timeout.rs`).
    stopped: AtomicBool,
    /// When the device's state was last asked (ms since `epoch`).
    state_at: AtomicU64,
    epoch: Instant,
    /// What was logged once (`timeout.rs`).
    said: AtomicU8,
    #[cfg(test)]
    n: Counters,
}

impl Engine {
    /// Drive the WQ described by `cfg` through `portal`.
    pub fn new(cfg: WqConfig, portal: Arc<dyn Portal>, opts: EngineOptions) -> Engine {
        let credits = match cfg.mode {
            WqMode::Shared if cfg.threshold > 0 && cfg.threshold < cfg.size => cfg.threshold,
            _ => cfg.size,
        }
        .max(1);
        let elements = opts
            .batch_elements
            .min(cfg.max_batch_size)
            .min(batch::MAX_ELEMENTS as u32);
        let batching = opts.batch != BatchPolicy::Off && cfg.batch_supported() && elements >= 2;
        let nbatches = if batching { credits * 2 + 16 } else { 1 };
        let max_piece = cfg.max_transfer_size.clamp(1, 1 << 31);
        let caps = Caps {
            copy: cfg.ops.has(opcode::MEMMOVE),
            fill: cfg.ops.has(opcode::MEMFILL),
            flush: cfg.ops.has(opcode::CFLUSH),
            overlap: cfg.overlap_supported(),
            durable_by_device: cfg.readback_supported(),
            method: portal.method(),
        };
        Engine {
            portal,
            opts,
            max_piece,
            scan: RwLock::new(()),
            credits: Credits::new(credits),
            batches: Batches::new(nbatches, elements.max(2)),
            batching: AtomicBool::new(batching),
            caps,
            timeouts: AtomicU64::new(0),
            quarantined: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            state_at: AtomicU64::new(0),
            epoch: Instant::now(),
            said: AtomicU8::new(0),
            #[cfg(test)]
            n: Counters::default(),
            cfg,
        }
    }

    /// The work queue's name (`wq0.0`, or the emulator's).
    pub fn queue_name(&self) -> &str {
        &self.cfg.name
    }

    /// The work queue's NUMA node (-1: unknown).
    pub fn numa_node(&self) -> i32 {
        self.cfg.numa_node
    }

    /// Whether BATCH descriptors are in use (may turn off after the device
    /// or kernel rejected one).
    pub fn batching(&self) -> bool {
        self.batching.load(Ordering::Relaxed)
    }

    /// Credits currently held (descriptors whose record was not observed).
    #[cfg(test)]
    pub fn credits_in_use(&self) -> u32 {
        self.credits.in_use()
    }

    #[cfg(test)]
    pub fn stats(&self) -> Stats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            descriptors: r(&self.n.descriptors),
            batches: r(&self.n.batches),
            batched_ops: r(&self.n.batched_ops),
            faults_resolved: r(&self.n.faults_resolved),
            busy: r(&self.n.busy),
            timeouts: r(&self.timeouts),
            quarantined: r(&self.quarantined),
        }
    }

    /// Waits until no reclaim scan that may have read the address of a
    /// released record is still running. Call it after releasing records
    /// and before freeing their memory.
    pub fn quiesce(&self) {
        drop(self.scan.write().unwrap_or_else(|e| e.into_inner()));
    }
}

impl Drop for Engine {
    /// Completion records and batch lists may still be written or read by
    /// the device: wait until every credit came back, for as long as the
    /// device makes progress (the timeout, restarted by every credit
    /// returned). If the device stops answering (or stopped), leak the
    /// tables rather than free memory it may write.
    fn drop(&mut self) {
        let mut since = Instant::now();
        let mut seen = self.credits.returned();
        while self.credits.in_use() > 0 {
            self.reclaim();
            if self.credits.in_use() == 0 {
                break;
            }
            let returned = self.credits.returned();
            if returned != seen {
                (since, seen) = (Instant::now(), returned);
            } else if self.stopped() || since.elapsed() > self.opts.timeout {
                crate::log::warn(&format!(
                    "DSA {}: {} descriptors never completed; leaking their memory",
                    self.cfg.name,
                    self.credits.in_use()
                ));
                std::mem::forget(std::mem::take(&mut self.batches.recs));
                return;
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }
}
