//! One operation's life on the device, in the order it happens; this file
//! reads top to bottom in that order.
//!
//! 1. **The record.** Each operation's device state is a [`DeviceOp`] that
//!    lives inside the mover's own op record, at a stable address from
//!    `start_op` until `release_op` returns: its completion record (whose
//!    address goes into every descriptor of the operation) and its progress
//!    (`Job`). The engine never allocates one.
//! 2. **Start** ([`Engine::start_op`]): an operation the WQ cannot run is
//!    refused (the mover runs it on the CPU); a zero-length one, or a copy
//!    onto itself, is done at once. Otherwise a [`Progress`] splits it
//!    into pieces of at most the WQ's max transfer size, and the first
//!    piece is submitted.
//! 3. **Submit** (`submit_current`): each piece is one descriptor
//!    (`build`), tagged with the record's address and the next sequence
//!    number. The record is cleared, a WQ credit is taken from the
//!    [`Credits`] pool (`acquire`) and the portal takes the descriptor.
//!    With no credit free, even after a reclaim scan (`reclaim.rs`), the
//!    record reads `SW_PENDING` and the piece joins a batch (`batch.rs`)
//!    when the caller asked to queue, or waits for the next poll. Once the
//!    batch's record is written, the batch record says whether the
//!    element ran; if it did, the piece waits for its own record, which
//!    may come later, and is never submitted again.
//! 4. **Wait**: the record's first word ([`Engine::monitor_addr`]) stays 0
//!    while the piece is in the device; a waiter may sleep on it.
//! 5. **Poll** ([`Engine::poll_op`]): once the record is written, the
//!    credit goes back and `complete_piece` acts on the record: success
//!    moves on to the next piece (back to 3) or ends the operation
//!    ([`Poll::Done`]); a page-fault partial completion is resumed
//!    (`fault.rs`: populate the page, and the rest of the piece on its
//!    first fault; resubmit the rest, direction-aware);
//!    anything else `fail`s with the exact [`Remainder`] left to do.
//! 6. **Release** ([`Engine::release_op`]): a running operation is driven
//!    to its end (`wait_op`), then the record may be started again.
//!
//! Every wait is bounded (`timeout.rs`): a poll that finds nothing new
//! counts itself, and every [`CHECK_EVERY`](super::timeout::CHECK_EVERY)th
//! such poll consults the clock; after the engine's timeout without
//! progress, or once the device is known to have stopped, the operation
//! fails, and a record the device may still write is quarantined (never
//! reused: [`Release::Quarantined`]).
//!
//! After the life come its two tools: the pieces ([`Progress`]) and the
//! credit pool ([`Credits`]).
//!
//! ## Pieces
//!
//! [`Progress`] is the bookkeeping of how much of an operation ([`Op`]) is
//! done: splitting at the WQ's max transfer size, the order pieces run in
//! (descending for a memmove whose destination overlaps above its source),
//! and resuming after a partial completion (DSA.md 4.4). Invariant: what is
//! left of an operation is always the current piece's remaining bytes
//! followed by `rest`, and running those two parts in that order (on the
//! device or the CPU) gives the same result as running the whole
//! operation.
//!
//! ## Credits
//!
//! WQ credits are the flow control a dedicated WQ needs (DSA.md 2.4). A
//! dedicated WQ silently drops a descriptor submitted while it is full,
//! and a dropped descriptor never writes its completion record. The engine
//! therefore holds one credit per descriptor it has submitted and whose
//! completion record it has not yet observed; there are exactly WQ `size`
//! credits. Each credit is a registry slot holding a tag that names what
//! holds it (an operation's record by address, or a batch by index) and a
//! sequence number, so any thread can find completed descriptors and
//! return their credits even when their owners do not poll (the reclaim
//! scan in `reclaim.rs`). Tags make stale releases fail: a slot is freed
//! only by a compare-exchange on the exact tag it was taken with.
//!
//! Tag layout: bit 63 clear, an operation: bits 0-41 the record address
//! divided by 64 (records are 64-byte aligned and below 2^48), bits 42-62
//! the sequence (1..=[`MAX_SEQ`]). Bit 63 set, a batch: bits 0-31 its
//! index, bits 32-62 its generation. Neither is ever 0 (a free slot) or
//! [`CLAIMED`].

use core::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::sync::backoff::{Backoff, FOREVER};

use super::super::hw::{
    data_flags, flush_flags, opcode, status, CompletionRecord, CrLine, Descriptor, Submitted,
};
use super::fault;
use super::{Caps, Engine, FailReason, Failure, Poll, Release, StartError};

pub use crate::mover::{Op, OpKind};

// ---------------------------------------------------------------------------
// 1. The record
// ---------------------------------------------------------------------------

/// One operation's device state: its completion record (whose address
/// goes into every descriptor of the operation), alone in its cache line,
/// and its progress. It lives in the mover's op record; the engine never
/// allocates one.
#[repr(C, align(64))]
#[derive(Default)]
pub struct DeviceOp {
    pub(super) cr: CrLine,
    pub(super) owned: UnsafeCell<Owned>,
}

// The device writes the record's line; the owner writes `owned`.
const _: () = {
    use core::mem::{align_of, offset_of};
    assert!(align_of::<DeviceOp>() == 64);
    assert!(offset_of!(DeviceOp, cr) == 0);
    assert!(offset_of!(DeviceOp, owned) == 64);
};

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

/// What the record's owner (the thread with exclusive use) keeps.
#[derive(Default)]
pub(super) struct Owned {
    seq: u32,
    pub(super) job: Option<Job>,
}

/// A started operation.
pub(super) struct Job {
    pub(super) progress: Progress,
    pub(super) phase: Phase,
    pub(super) queue: bool,
    /// Consecutive faults (or record faults) without progress.
    pub(super) repeats: u32,
    /// Op offsets `[lo, hi)` last populated after a fault (`fault.rs`).
    pub(super) populated: (u64, u64),
    /// How long the current wait has lasted (`timeout.rs`).
    pub(super) wait: Waiting,
    /// The operation failed while a descriptor of it may still be in the
    /// device: the record is never reused.
    pub(super) quarantined: bool,
    /// What the operation cost the device so far ([`OpCounts`]).
    pub(super) counts: OpCounts,
}

/// What one operation met on the device, for the mover's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Page faults the device reported (records with status 0x03).
    pub page_faults: u32,
    /// BATCH descriptors that polls of this operation submitted (with
    /// its piece and the pieces of other operations).
    pub batches: u32,
    /// Submissions tried again: the WQ refused one (shared WQ full,
    /// `write(2)` EAGAIN), or the batch record said the piece did not run.
    pub retries: u32,
}

/// Polls without progress, and the clock of the current wait: started at
/// the first check, restarted by progress.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Waiting {
    pub(super) idle: u32,
    pub(super) since: Option<std::time::Instant>,
    /// Credits returned engine-wide when the clock (re)started.
    pub(super) seen: u32,
}

/// Where an operation stands: its current piece waits for a credit, is in
/// the device on its own or in a batch, or its batch is retired and its
/// own record decides; or the operation has ended.
#[derive(Clone, Copy, Debug)]
pub(super) enum Phase {
    NeedSubmit,
    InFlight {
        pos: u32,
        tag: u64,
    },
    InBatch {
        b: u32,
        gen: u32,
    },
    /// The batch record was written. The element's record reads
    /// `SW_NOT_EXECUTED` if the batch says it did not run, `SW_PENDING`
    /// while the record of an element that ran is still to come (it may
    /// follow the batch record, DSA.md 12.3), and the device's status once
    /// written.
    BatchRetired,
    Done,
    Failed(Failure),
}

impl Engine {
    // -----------------------------------------------------------------------
    // 2. Start
    // -----------------------------------------------------------------------

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
        if tag_op(rec.addr(), 1).is_none() {
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
            repeats: 0,
            wait: Waiting::default(),
            quarantined: false,
            populated: (0, 0),
            counts: OpCounts::default(),
        });
        if trivial {
            rec.cr.clear();
            rec.cr.set_status(status::SUCCESS);
        } else if self.stopped() {
            owned.job = None;
            return Err(StartError::Stopped);
        } else {
            self.submit_current(rec, owned);
            if matches!(owned.job.as_ref().map(|j| j.phase), Some(Phase::NeedSubmit)) && !queue {
                owned.job = None;
                return Err(StartError::Busy);
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // 3. Submit
    // -----------------------------------------------------------------------

    /// Submit the current piece of the op in `rec`, directly or into a
    /// batch.
    fn submit_current(&self, rec: &DeviceOp, owned: &mut Owned) {
        owned.seq = next_seq(owned.seq);
        let Some(job) = owned.job.as_mut() else {
            return;
        };
        // `start_op` admits only records whose address fits a tag.
        let Some(tag) = tag_op(rec.addr(), owned.seq) else {
            self.fail(rec, job, FailReason::Inconsistent, false);
            return;
        };
        let d = self.build(&job.progress.piece_op(), rec.cr.addr());
        rec.cr.clear();
        if self.stopped() {
            // A stopped device takes nothing: the piece waits, outside the
            // device, until its wait expires (`timeout.rs`).
            rec.cr.set_status(status::SW_PENDING);
            job.phase = Phase::NeedSubmit;
            return;
        }
        if let Some(pos) = self.acquire(tag) {
            // SAFETY: the piece lies inside the operation whose memory the
            // caller of `start_op` vouched for until the op ends; the
            // record is the caller's until `release_op`, which waits for
            // the device.
            match unsafe { self.portal.submit(&d) } {
                Ok(Submitted::Accepted) => {
                    #[cfg(test)]
                    self.n.descriptors.fetch_add(1, Ordering::Relaxed);
                    job.phase = Phase::InFlight { pos, tag };
                    job.wait = Waiting::default();
                    return;
                }
                Ok(Submitted::Retry) => {
                    self.credits.release(pos, tag);
                    job.counts.retries += 1;
                }
                Err(e) => {
                    self.credits.release(pos, tag);
                    self.fail(rec, job, FailReason::Submit(e.errno), false);
                    return;
                }
            }
        }
        #[cfg(test)]
        self.n.busy.fetch_add(1, Ordering::Relaxed);
        rec.cr.set_status(status::SW_PENDING);
        if job.queue && self.batching() {
            if let Some((b, gen)) = self.batches.append(&d) {
                #[cfg(test)]
                self.n.batched_ops.fetch_add(1, Ordering::Relaxed);
                job.phase = Phase::InBatch { b, gen };
                job.wait = Waiting::default();
                return;
            }
        }
        job.phase = Phase::NeedSubmit;
    }

    /// The descriptor for one piece, its completion record at `cr`.
    fn build(&self, op: &Op, cr: u64) -> Descriptor {
        let len = op.len as u32;
        match op.kind {
            OpKind::Copy | OpKind::Move => Descriptor::memmove(
                op.dst as u64,
                op.src as u64,
                len,
                cr,
                data_flags(self.cfg.gen_cap, op.hints),
            ),
            OpKind::Fill => Descriptor::memfill(
                op.dst as u64,
                op.pattern,
                len,
                cr,
                data_flags(self.cfg.gen_cap, op.hints),
            ),
            OpKind::Flush => Descriptor::cflush(
                op.dst as u64,
                len,
                cr,
                flush_flags(self.cfg.gen_cap, op.hints),
            ),
        }
    }

    /// Take a credit, reclaiming completed ones when none is free.
    pub(super) fn acquire(&self, tag: u64) -> Option<u32> {
        self.credits.try_acquire(tag).or_else(|| {
            if self.reclaim() {
                self.credits.try_acquire(tag)
            } else {
                None
            }
        })
    }

    // -----------------------------------------------------------------------
    // 4. Wait
    // -----------------------------------------------------------------------

    /// The op's monitor word: 0 only while one of its descriptors is in
    /// the device on its own; non-zero whenever a poll may make progress
    /// (a piece completed, the op waits for a credit or sits in a batch,
    /// or it is finished). A waiter may sleep while it reads 0 and must
    /// poll when it reads non-zero. It is part of `rec`, so it is valid as
    /// long as the record.
    pub fn monitor_addr(&self, rec: &DeviceOp) -> *const u64 {
        rec.cr.monitor_word()
    }

    // -----------------------------------------------------------------------
    // 5. Poll
    // -----------------------------------------------------------------------

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
                    match owned.job.as_mut() {
                        Some(j) if matches!(j.phase, Phase::Failed(_)) => continue,
                        Some(j) if matches!(j.phase, Phase::NeedSubmit) => {
                            if self.overdue(j) {
                                continue;
                            }
                            return Poll::Running;
                        }
                        _ => return Poll::Running,
                    }
                }
                Phase::InFlight { pos, tag } => {
                    if rec.cr.status() == 0 {
                        if self.overdue(job) {
                            continue;
                        }
                        return Poll::Running;
                    }
                    self.credits.release(pos, tag);
                    let r = rec.cr.snapshot();
                    self.complete_piece(rec, job, &r);
                }
                Phase::InBatch { b, gen } => {
                    // The batch record is the authority: retiring the
                    // batch marks the elements that did not run.
                    if !self.try_retire(b, gen) {
                        match self.try_submit_batch(b, gen) {
                            Some(Submitted::Accepted) => job.counts.batches += 1,
                            Some(Submitted::Retry) => job.counts.retries += 1,
                            None => {}
                        }
                        if self.overdue(job) {
                            continue;
                        }
                        return Poll::Running;
                    }
                    // Retirement is progress: the element's own wait starts.
                    job.phase = Phase::BatchRetired;
                    job.wait = Waiting::default();
                }
                Phase::BatchRetired => {
                    // The element ran (or may have): wait for its own
                    // record, never submit it again. A record that never
                    // comes is the case of a descriptor in flight whose
                    // record never comes, and takes the same bound.
                    if rec.cr.status() == status::SW_PENDING {
                        if self.overdue(job) {
                            continue;
                        }
                        return Poll::Running;
                    }
                    let r = rec.cr.snapshot();
                    self.complete_piece(rec, job, &r);
                }
            }
        }
    }

    /// What the operation on `rec` met on the device so far (zero for a
    /// record not in use).
    ///
    /// # Safety
    /// As for [`poll_op`](Self::poll_op).
    pub unsafe fn op_counts(&self, rec: &DeviceOp) -> OpCounts {
        // SAFETY: caller's contract: exclusive use of the record.
        let owned = unsafe { &*rec.owned.get() };
        owned.job.as_ref().map(|j| j.counts).unwrap_or_default()
    }

    /// Act on the written completion record of the current piece.
    fn complete_piece(&self, rec: &DeviceOp, job: &mut Job, r: &CompletionRecord) {
        match r.code() {
            status::SUCCESS | status::SUCCESS_PRED => {
                job.repeats = 0;
                job.phase = if job.progress.piece_done() {
                    Phase::Done
                } else {
                    Phase::NeedSubmit
                };
            }
            status::PAGE_FAULT_NOBOF => self.resume_fault(rec, job, r),
            // A batch element that its batch says never ran.
            status::SW_NOT_EXECUTED => {
                job.counts.retries += 1;
                job.phase = Phase::NeedSubmit;
            }
            // Anything else, CRA_XLAT (0x1a) included (user space never
            // sees it: the kernel writes the real record), ends the op.
            c => {
                let partial = !status::is_validation_error(c);
                // A refused page request or a failed translation at an
                // address nothing is mapped at: the CPU would crash too.
                let bad_address = matches!(c, status::PAGE_FAULT_IR | status::TRANSLATION_FAIL)
                    && r.fault_addr != 0
                    && fault::page_state(r.fault_addr).is_none();
                let reason = if bad_address {
                    FailReason::Unresolvable {
                        addr: r.fault_addr,
                        errno: libc::EFAULT,
                    }
                } else {
                    FailReason::Status(r.status)
                };
                self.fail(rec, job, reason, partial);
            }
        }
    }

    /// End the operation with `reason`; what is left is the exact
    /// remainder. The record reads non-zero afterwards, so waiters come
    /// back.
    pub(super) fn fail(&self, rec: &DeviceOp, job: &mut Job, reason: FailReason, partial: bool) {
        let remaining = job.progress.remainder();
        job.phase = Phase::Failed(Failure {
            reason,
            remaining,
            partial,
        });
        if rec.cr.status() == 0 {
            rec.cr.set_status(status::SW_NOT_EXECUTED);
        }
    }

    /// What the engine can do (fixed when it was made). The mover asks
    /// after every completed operation whether durability is left to the
    /// CPU ([`Caps::durable_by_device`]).
    pub fn caps(&self) -> Caps {
        self.caps
    }

    // -----------------------------------------------------------------------
    // 6. Release
    // -----------------------------------------------------------------------

    /// Poll until the operation is no longer running.
    ///
    /// # Safety
    /// As for [`poll_op`](Self::poll_op).
    pub unsafe fn wait_op(&self, rec: &DeviceOp) -> Poll {
        // SAFETY: forwarded caller contract.
        match unsafe { self.poll_op(rec) } {
            Poll::Running => {}
            p => return p,
        }
        let mut backoff = Backoff::new(128, FOREVER);
        loop {
            backoff.snooze();
            // SAFETY: forwarded caller contract.
            match unsafe { self.poll_op(rec) } {
                Poll::Running => {}
                p => return p,
            }
        }
    }

    /// Ends the engine's use of `rec`: a running operation is first driven
    /// to its end (the device may still be using its memory; the wait is
    /// bounded by the timeout). Afterwards the record may be started again;
    /// to free its memory, call [`quiesce`](Self::quiesce) first. Unless it
    /// comes back [`Release::Quarantined`]: then it must never be started
    /// again nor freed. Releasing a record that is not in use does nothing;
    /// releasing a quarantined one again says so again.
    ///
    /// # Safety
    /// As for [`poll_op`](Self::poll_op), except that `rec` may also be
    /// unused.
    pub unsafe fn release_op(&self, rec: &DeviceOp) -> Release {
        // SAFETY: caller's contract: exclusive use of the record.
        match unsafe { &(*rec.owned.get()).job } {
            None => return Release::Reusable,
            Some(j) if j.quarantined => return Release::Quarantined,
            Some(_) => {}
        }
        // SAFETY: forwarded caller contract.
        let _ = unsafe { self.wait_op(rec) };
        // SAFETY: as above.
        let owned = unsafe { &mut *rec.owned.get() };
        if owned.job.as_ref().is_some_and(|j| j.quarantined) {
            return Release::Quarantined;
        }
        // The device is done with the record.
        owned.job = None;
        Release::Reusable
    }
}

// ---------------------------------------------------------------------------
// Pieces: how much of an operation is done
// ---------------------------------------------------------------------------

/// What is left of an operation, in the order it must run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remainder {
    parts: [Option<Op>; 2],
}

impl Remainder {
    pub fn empty() -> Remainder {
        Remainder {
            parts: [None, None],
        }
    }

    /// The parts, to be run one after the other.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.parts.iter().flatten()
    }

    /// Total bytes left.
    pub fn bytes(&self) -> u64 {
        self.ops().map(|o| o.len as u64).sum()
    }
}

/// A partial completion that does not fit the piece it reports on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inconsistent;

/// Progress of one operation through its pieces.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub op: Op,
    /// Pieces run from the end towards the start.
    pub descending: bool,
    /// Remaining bytes of the current piece, as offsets `[lo, hi)`.
    pub piece: (u64, u64),
    /// Bytes not started yet: above the piece when ascending, below it
    /// when descending.
    pub rest: (u64, u64),
    max_piece: u64,
}

impl Progress {
    /// Start an operation whose pieces are at most `max_piece` bytes.
    pub fn new(op: Op, max_piece: u64) -> Progress {
        let descending = op.overlaps() && op.dst > op.src;
        let mut p = Progress {
            op,
            descending,
            piece: (0, 0),
            rest: (0, op.len as u64),
            max_piece: max_piece.max(1),
        };
        p.next_piece();
        p
    }

    fn next_piece(&mut self) {
        let (lo, hi) = self.rest;
        let n = (hi - lo).min(self.max_piece);
        if self.descending {
            self.piece = (hi - n, hi);
            self.rest = (lo, hi - n);
        } else {
            self.piece = (lo, lo + n);
            self.rest = (lo + n, hi);
        }
    }

    /// Nothing is left.
    pub fn is_done(&self) -> bool {
        self.piece.0 == self.piece.1 && self.rest.0 == self.rest.1
    }

    /// The current piece's remaining bytes as an operation.
    pub fn piece_op(&self) -> Op {
        self.op.sub(self.piece.0, self.piece.1)
    }

    pub fn piece_len(&self) -> u64 {
        self.piece.1 - self.piece.0
    }

    /// The current piece completed: move to the next one. Returns whether
    /// the whole operation is done.
    pub fn piece_done(&mut self) -> bool {
        self.piece = (self.piece.1, self.piece.1);
        if self.rest.0 != self.rest.1 {
            self.next_piece();
        }
        self.is_done()
    }

    /// The device completed `bc` bytes of the current piece before a page
    /// fault, working from the piece's end when `from_end` (memmove result
    /// byte 1) and from its start otherwise.
    pub fn partial(&mut self, bc: u64, from_end: bool) -> Result<(), Inconsistent> {
        if bc > self.piece_len() || (from_end && !self.op.has_source()) {
            return Err(Inconsistent);
        }
        if from_end {
            self.piece.1 -= bc;
        } else {
            self.piece.0 += bc;
        }
        if self.piece_len() == 0 {
            self.piece_done();
        }
        Ok(())
    }

    /// Everything not yet confirmed done.
    pub fn remainder(&self) -> Remainder {
        let part = |(lo, hi): (u64, u64)| (lo != hi).then(|| self.op.sub(lo, hi));
        Remainder {
            parts: [part(self.piece), part(self.rest)],
        }
    }
}

// ---------------------------------------------------------------------------
// Credits: the WQ's flow control
// ---------------------------------------------------------------------------

/// Slot value while a thread retires a batch found in it.
pub const CLAIMED: u64 = u64::MAX;

/// Largest operation sequence number in a tag.
pub const MAX_SEQ: u32 = (1 << 21) - 1;

const BATCH: u64 = 1 << 63;
const ADDR_BITS: u32 = 42;

/// The tag of an operation record at `addr` (64-byte aligned) for its
/// descriptor number `seq` (`1..=MAX_SEQ`); `None` for an address a tag
/// cannot hold.
pub fn tag_op(addr: usize, seq: u32) -> Option<u64> {
    debug_assert!((1..=MAX_SEQ).contains(&seq));
    let a = addr as u64;
    if !a.is_multiple_of(64) || a >> 6 >= 1 << ADDR_BITS {
        return None;
    }
    Some(u64::from(seq) << ADDR_BITS | a >> 6)
}

/// Submission sequence numbers of an op's descriptors, in `1..=MAX_SEQ`.
fn next_seq(s: u32) -> u32 {
    if s >= MAX_SEQ {
        1
    } else {
        s + 1
    }
}

/// Largest batch generation in a tag.
pub const MAX_BATCH_GEN: u32 = 0x7fff_ffff;

/// The tag of batch `index` in generation `gen` (`1..=MAX_BATCH_GEN`).
pub fn tag_batch(index: u32, gen: u32) -> u64 {
    debug_assert!((1..=MAX_BATCH_GEN).contains(&gen));
    BATCH | u64::from(gen & MAX_BATCH_GEN) << 32 | u64::from(index)
}

/// What a tag names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// The operation record at this address.
    Op(usize),
    /// The batch with this index.
    Batch(u32),
}

/// The holder named by a tag that is neither 0 nor [`CLAIMED`].
pub fn holder(t: u64) -> Holder {
    if t & BATCH != 0 {
        Holder::Batch(t as u32)
    } else {
        Holder::Op(((t & ((1 << ADDR_BITS) - 1)) << 6) as usize)
    }
}

/// The generation in a batch tag.
pub fn batch_gen(t: u64) -> u32 {
    ((t & !BATCH) >> 32) as u32
}

/// A fixed set of credits.
pub struct Credits {
    slots: Box<[AtomicU64]>,
    /// Low 32 bits: credits free. High 32 bits: credits returned so far
    /// (wrapping), the engine's sign of progress for waits that depend on
    /// other operations; counted by the same atomic add that frees them.
    free: AtomicU64,
    hint: AtomicU32,
}

/// One credit freed, one more returned.
const RETURNED: u64 = 1 << 32 | 1;
const FREE_MASK: u64 = 0xffff_ffff;

impl Credits {
    /// `n` credits (at least 1).
    pub fn new(n: u32) -> Credits {
        let n = n.max(1);
        Credits {
            slots: (0..n).map(|_| AtomicU64::new(0)).collect(),
            free: AtomicU64::new(u64::from(n)),
            hint: AtomicU32::new(0),
        }
    }

    /// Total credits (the WQ size).
    pub fn capacity(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Credits currently held.
    pub fn in_use(&self) -> u32 {
        self.capacity() - (self.free.load(Ordering::Acquire) & FREE_MASK) as u32
    }

    /// How many credits were returned so far (wrapping): a change means
    /// some descriptor completed.
    pub fn returned(&self) -> u32 {
        (self.free.load(Ordering::Acquire) >> 32) as u32
    }

    /// Take a credit for `tag`; `None` when all are held.
    pub fn try_acquire(&self, tag: u64) -> Option<u32> {
        let mut f = self.free.load(Ordering::Acquire);
        loop {
            if f & FREE_MASK == 0 {
                return None;
            }
            match self
                .free
                .compare_exchange_weak(f, f - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => f = now,
            }
        }
        // A reservation guarantees a free slot: releases clear the slot
        // before they increment `free`, so free slots >= reservations.
        let n = self.slots.len();
        let start = self.hint.fetch_add(1, Ordering::Relaxed) as usize;
        let mut i = start;
        loop {
            let s = &self.slots[i % n];
            if s.load(Ordering::Relaxed) == 0
                && s.compare_exchange(0, tag, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                return Some((i % n) as u32);
            }
            i = i.wrapping_add(1);
            if i.wrapping_sub(start).is_multiple_of(n) {
                std::hint::spin_loop();
            }
        }
    }

    /// Return the credit at `pos` if it still holds `tag`. Exactly one of
    /// several racing releases of the same credit succeeds.
    pub fn release(&self, pos: u32, tag: u64) -> bool {
        let ok = self.slots[pos as usize]
            .compare_exchange(tag, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if ok {
            self.free.fetch_add(RETURNED, Ordering::AcqRel);
        }
        ok
    }

    /// Take exclusive charge of the credit at `pos` (still holding `tag`)
    /// to retire what it stands for; finish with [`finish_claim`].
    ///
    /// [`finish_claim`]: Self::finish_claim
    pub fn claim(&self, pos: u32, tag: u64) -> bool {
        self.slots[pos as usize]
            .compare_exchange(tag, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Return a claimed credit.
    pub fn finish_claim(&self, pos: u32) {
        let prev = self.slots[pos as usize].swap(0, Ordering::AcqRel);
        debug_assert_eq!(prev, CLAIMED);
        self.free.fetch_add(RETURNED, Ordering::AcqRel);
    }

    /// The tag held at each position (0 = free, [`CLAIMED`] = retiring).
    pub fn tags(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32, s.load(Ordering::Acquire)))
    }
}
