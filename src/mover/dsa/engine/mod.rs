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
//! completions (touch the page, resubmit the rest, direction-aware) and
//! submits the next piece. Anything the device cannot finish comes back as
//! [`Poll::Failed`] with the exact remaining work.
//!
//! Credits name the `DeviceOp` holding them by address (see
//! `credits.rs`), so any thread can return the credit of a descriptor whose
//! record is written. Those reads of other operations' records happen
//! under the engine's scan lock; a mover frees its records only after
//! [`Engine::quiesce`], which waits out every scan that may still hold one
//! of their addresses.

use core::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::sync::backoff::{Backoff, FOREVER};

use crate::mover::dsa::hw::completion::{status, CrCell};
use crate::mover::dsa::hw::descriptor::opcode;
use crate::mover::dsa::hw::discovery::{WqConfig, WqMode};
use crate::mover::dsa::hw::portal::{Method, Portal};
use batch::Batches;
use credits::Credits;
use progress::{Op, OpKind, Progress, Remainder};

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
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            batch: BatchPolicy::WhenBusy,
            batch_elements: 32,
            fault_retries: 64,
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
        !(unreachable || self.partial && overlapping)
    }
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

/// Counters (relaxed; for tests and diagnostics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub descriptors: u64,
    pub batches: u64,
    pub batched_ops: u64,
    pub faults_resolved: u64,
    pub busy: u64,
}

#[derive(Default)]
struct Counters {
    descriptors: AtomicU64,
    batches: AtomicU64,
    batched_ops: AtomicU64,
    faults_resolved: AtomicU64,
    busy: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    NeedSubmit,
    InFlight { pos: u32, tag: u64 },
    InBatch { b: u32, gen: u32 },
    Done,
    Failed(Failure),
}

struct Job {
    progress: Progress,
    phase: Phase,
    queue: bool,
    last_fault: u64,
    repeats: u32,
}

#[derive(Default)]
struct Owned {
    seq: u32,
    job: Option<Job>,
}

/// One operation's device state: its completion record (whose address
/// goes into every descriptor of the operation) and its progress. It lives
/// in the mover's op record; the engine never allocates one.
#[repr(C, align(64))]
#[derive(Default)]
pub struct DeviceOp {
    cr: CrCell,
    owned: UnsafeCell<Owned>,
}

// SAFETY: `owned` is only accessed through the engine's `*_op` methods,
// whose contract gives one thread at a time exclusive use of a record;
// other threads only read `cr`, which is atomic.
unsafe impl Sync for DeviceOp {}

impl DeviceOp {
    /// The record's address as credits and batches store it.
    fn addr(&self) -> usize {
        self as *const DeviceOp as usize
    }
}

pub mod batch;
mod complete;
pub mod credits;
pub mod fault;
pub mod progress;
mod submit;

/// Submission sequence numbers of an op's descriptors, in
/// `1..=credits::MAX_SEQ`.
fn next_seq(s: u32) -> u32 {
    if s >= credits::MAX_SEQ {
        1
    } else {
        s + 1
    }
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
        Engine {
            portal,
            opts,
            max_piece,
            scan: RwLock::new(()),
            credits: Credits::new(credits),
            batches: Batches::new(nbatches, elements.max(2)),
            batching: AtomicBool::new(batching),
            n: Counters::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &WqConfig {
        &self.cfg
    }

    pub fn caps(&self) -> Caps {
        Caps {
            copy: self.cfg.ops.has(opcode::MEMMOVE),
            fill: self.cfg.ops.has(opcode::MEMFILL),
            flush: self.cfg.ops.has(opcode::CFLUSH),
            overlap: self.cfg.overlap_supported(),
            durable_by_device: self.cfg.readback_supported(),
            method: self.portal.method(),
        }
    }

    /// Whether BATCH descriptors are in use (may turn off after the device
    /// or kernel rejected one).
    pub fn batching(&self) -> bool {
        self.batching.load(Ordering::Relaxed)
    }

    /// Credits currently held (descriptors whose record was not observed).
    pub fn credits_in_use(&self) -> u32 {
        self.credits.in_use()
    }

    /// Largest piece per descriptor.
    pub fn max_piece(&self) -> u64 {
        self.max_piece
    }

    pub fn stats(&self) -> Stats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            descriptors: r(&self.n.descriptors),
            batches: r(&self.n.batches),
            batched_ops: r(&self.n.batched_ops),
            faults_resolved: r(&self.n.faults_resolved),
            busy: r(&self.n.busy),
        }
    }

    /// Start an operation on `rec`. With `queue`, an operation that finds
    /// the WQ full is kept (in a batch, or for a later poll) instead of
    /// failing with [`StartError::Busy`].
    ///
    /// # Safety
    /// - `rec` is not in use by the engine (never started, or released
    ///   since), and the caller has exclusive use of it for this call and
    ///   every later `poll_op`/`wait_op`/`release_op` on it; it stays at
    ///   its address, alive, until `release_op` returns.
    /// - Until [`poll_op`](Self::poll_op) reports `Done` or `Failed`, or
    ///   [`release_op`](Self::release_op) returns, the device may read the
    ///   source and write the destination at any time: they must stay
    ///   valid for those accesses and must not be accessed by anyone else
    ///   (except concurrent reads of a source).
    pub unsafe fn start_op(&self, rec: &DeviceOp, op: &Op, queue: bool) -> Result<(), StartError> {
        if !op.in_range() {
            return Err(StartError::Invalid);
        }
        let supported = match op.kind {
            OpKind::Copy | OpKind::Move => {
                self.cfg.ops.has(opcode::MEMMOVE)
                    && (!op.overlaps() || op.dst == op.src || self.cfg.overlap_supported())
            }
            OpKind::Fill => self.cfg.ops.has(opcode::MEMFILL),
            OpKind::Flush => self.cfg.ops.has(opcode::CFLUSH),
        };
        if !supported {
            return Err(StartError::Unsupported);
        }
        if credits::tag_op(rec.addr(), 1).is_none() {
            // An address credits cannot name (never seen on Linux, whose
            // user space ends below 2^47): the CPU runs it.
            return Err(StartError::Unsupported);
        }
        // SAFETY: caller's contract: exclusive use of the record.
        let owned = unsafe { &mut *rec.owned.get() };
        debug_assert!(owned.job.is_none(), "record started twice");
        let trivial = op.len == 0 || (op.has_source() && op.dst == op.src);
        owned.job = Some(Job {
            progress: Progress::new(*op, self.max_piece),
            phase: if trivial {
                Phase::Done
            } else {
                Phase::NeedSubmit
            },
            queue,
            last_fault: 0,
            repeats: 0,
        });
        if trivial {
            rec.cr.clear();
            rec.cr.set_status(status::SUCCESS);
        } else {
            self.submit_current(rec, owned);
            if matches!(owned.job.as_ref().map(|j| j.phase), Some(Phase::NeedSubmit)) && !queue {
                owned.job = None;
                return Err(StartError::Busy);
            }
        }
        Ok(())
    }

    /// The op's monitor word: 0 only while one of its descriptors is in
    /// the device on its own; non-zero whenever a poll may make progress
    /// (a piece completed, the op waits for a credit or sits in a batch,
    /// or it is finished). A waiter may sleep while it reads 0 and must
    /// poll when it reads non-zero. It is part of `rec`, so it is valid as
    /// long as the record.
    pub fn monitor_addr(&self, rec: &DeviceOp) -> *const u64 {
        rec.cr.monitor_word()
    }

    /// Advance an operation and report its state.
    ///
    /// # Safety
    /// `rec` was started with [`start_op`](Self::start_op) on this engine
    /// and not released; the caller has exclusive use of it.
    pub unsafe fn poll_op(&self, rec: &DeviceOp) -> Poll {
        // SAFETY: caller's contract: exclusive use of the record.
        let owned = unsafe { &mut *rec.owned.get() };
        loop {
            let Some(job) = owned.job.as_mut() else {
                // Not started (or released): nothing the device can do.
                return Poll::Failed(Failure {
                    reason: FailReason::Inconsistent,
                    remaining: Remainder::empty(),
                    partial: false,
                });
            };
            match job.phase {
                Phase::Done => return Poll::Done,
                Phase::Failed(f) => return Poll::Failed(f),
                Phase::NeedSubmit => {
                    self.submit_current(rec, owned);
                    match owned.job.as_ref().map(|j| j.phase) {
                        Some(Phase::Failed(_)) => continue,
                        _ => return Poll::Running,
                    }
                }
                Phase::InFlight { pos, tag } => {
                    if rec.cr.status() == 0 {
                        return Poll::Running;
                    }
                    self.credits.release(pos, tag);
                    let r = rec.cr.snapshot();
                    self.complete_piece(rec, job, &r);
                }
                Phase::InBatch { b, gen } => {
                    // The element's record is final only once the batch
                    // is retired; until then it reads SW_PENDING.
                    if !self.try_retire(b, gen) {
                        self.try_submit_batch(b, gen);
                        return Poll::Running;
                    }
                    let r = rec.cr.snapshot();
                    self.complete_piece(rec, job, &r);
                }
            }
        }
    }

    /// Poll until the operation is no longer running.
    ///
    /// # Safety
    /// As for [`poll_op`](Self::poll_op).
    pub unsafe fn wait_op(&self, rec: &DeviceOp) -> Poll {
        let mut backoff = Backoff::new(128, FOREVER);
        loop {
            // SAFETY: forwarded caller contract.
            match unsafe { self.poll_op(rec) } {
                Poll::Running => {
                    backoff.snooze();
                }
                p => return p,
            }
        }
    }

    /// Ends the engine's use of `rec`: a running operation is first driven
    /// to its end (the device may still be using its memory). Afterwards
    /// the record may be started again; to free its memory, call
    /// [`quiesce`](Self::quiesce) first. Releasing a record that is not in
    /// use does nothing.
    ///
    /// # Safety
    /// As for [`poll_op`](Self::poll_op), except that `rec` may also be
    /// unused.
    pub unsafe fn release_op(&self, rec: &DeviceOp) {
        // SAFETY: caller's contract: exclusive use of the record.
        if unsafe { (*rec.owned.get()).job.is_none() } {
            return;
        }
        // SAFETY: forwarded caller contract.
        let _ = unsafe { self.wait_op(rec) };
        // SAFETY: as above; the device is done with the record.
        unsafe { (*rec.owned.get()).job = None };
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
    /// the device: wait until every credit came back. If the device never
    /// answers, leak the tables rather than free memory it may write.
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.credits.in_use() > 0 {
            self.reclaim();
            if self.credits.in_use() == 0 {
                break;
            }
            if std::time::Instant::now() > deadline {
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
