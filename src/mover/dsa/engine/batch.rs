//! Batch records: descriptor lists that let one WQ entry (one credit)
//! carry many operations (DSA.md section 5).
//!
//! The engine batches when the WQ has no free credit: operations are
//! appended to the open batch, and the batch is submitted as one BATCH
//! descriptor as soon as a credit frees up (or it is full). This file owns
//! the records and the lock-free protocol for filling them (first), then
//! the engine's submission and retirement of batches, which need credits
//! and the portal (after [`Batches`]).
//!
//! State word: `gen << 32 | phase << 24 | writers << 16 | count`.
//! FREE -> OPEN (appends) -> SEALED (full, waiting for a credit) ->
//! CLAIMED (one thread prepares the submission) -> SUBMITTED -> retired:
//! generation + 1, FREE. Appenders reserve an index with a CAS that also
//! counts them as writers; whoever claims the batch waits for writers to
//! reach zero before reading the list.
//!
//! The batch record is the authority on its elements (DSA.md 12.3):
//! SUCCESS or BATCH_FAIL says every element ran, BATCH_PAGE_FAULT that
//! elements from `descs_completed` on did not and those below did; no
//! element record is guaranteed to be visible before the batch record.
//! Retiring a batch marks the records of the elements that did not run
//! `SW_NOT_EXECUTED` (their owners submit them again); every other element
//! keeps `SW_PENDING` until the device writes its own record, which its
//! owner waits for. An element is never submitted twice.

use core::cell::UnsafeCell;

use crate::sync::backoff::{Backoff, FOREVER};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use super::super::hw::{status, CrCell, CrLine, Descriptor, Submitted};
use super::op::{tag_batch, MAX_BATCH_GEN};
use super::Engine;

/// Most elements per batch (the list is 4 KiB).
pub const MAX_ELEMENTS: usize = 64;

pub const FREE: u64 = 0;
pub const OPEN: u64 = 1;
pub const SEALED: u64 = 2;
pub const CLAIMED: u64 = 3;
pub const SUBMITTED: u64 = 4;

/// Decoded state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    pub gen: u32,
    pub phase: u64,
    pub writers: u64,
    pub count: u64,
}

impl State {
    pub fn decode(w: u64) -> State {
        State {
            gen: (w >> 32) as u32,
            phase: w >> 24 & 0xff,
            writers: w >> 16 & 0xff,
            count: w & 0xffff,
        }
    }

    pub fn encode(&self) -> u64 {
        (u64::from(self.gen) << 32) | self.phase << 24 | self.writers << 16 | self.count
    }
}

/// One batch: its descriptor list, and its own completion record in a
/// cache line of its own.
#[repr(C, align(64))]
pub struct BatchRec {
    pub list: [UnsafeCell<Descriptor>; MAX_ELEMENTS],
    pub cr: CrLine,
    pub state: AtomicU64,
    /// Credit slot of the submitted batch.
    pub credit_pos: AtomicU32,
}

const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(BatchRec, cr) % 64 == 0);
    assert!(offset_of!(BatchRec, state) >= offset_of!(BatchRec, cr) + 64);
};

// SAFETY: `list` entries are written only by the appender that reserved
// the index (exclusive by the state CAS) and read only by the claimer after
// every writer finished; all other fields are atomic.
unsafe impl Sync for BatchRec {}

impl Default for BatchRec {
    fn default() -> Self {
        BatchRec {
            list: core::array::from_fn(|_| UnsafeCell::new(Descriptor::zeroed())),
            cr: CrLine::default(),
            state: AtomicU64::new(
                State {
                    gen: 1,
                    phase: FREE,
                    writers: 0,
                    count: 0,
                }
                .encode(),
            ),
            credit_pos: AtomicU32::new(0),
        }
    }
}

impl BatchRec {
    pub fn load(&self) -> State {
        State::decode(self.state.load(Ordering::Acquire))
    }

    pub fn list_addr(&self) -> u64 {
        self.list.as_ptr() as u64
    }

    /// Generation that is current now.
    pub fn gen(&self) -> u32 {
        self.load().gen
    }

    /// Whether generation `gen` of this batch is in the device (submitted
    /// and not yet retired).
    pub fn in_device(&self, gen: u32) -> bool {
        let st = self.load();
        st.gen == gen && st.phase == SUBMITTED
    }
}

/// The pool of batch records and the currently open batch.
pub struct Batches {
    pub recs: Box<[BatchRec]>,
    free: ArrayQueue<u32>,
    /// `gen << 32 | (index + 1)`, or 0 when no batch is open.
    open: AtomicU64,
    /// Elements per batch.
    pub cap: u64,
}

fn pack(i: u32, gen: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(i + 1)
}

impl Batches {
    /// `n` records of at most `cap` elements (2..=MAX_ELEMENTS).
    pub fn new(n: u32, cap: u32) -> Batches {
        let n = n.max(1);
        let free = ArrayQueue::new(n as usize);
        for i in 0..n {
            let _ = free.push(i);
        }
        Batches {
            recs: (0..n).map(|_| BatchRec::default()).collect(),
            free,
            open: AtomicU64::new(0),
            cap: u64::from(cap.clamp(2, MAX_ELEMENTS as u32)),
        }
    }

    /// Append `desc`; returns the batch index and generation, or `None`
    /// when no batch record is available.
    pub fn append(&self, desc: &Descriptor) -> Option<(u32, u32)> {
        loop {
            let o = self.open.load(Ordering::Acquire);
            if o == 0 {
                let b = self.free.pop()?;
                let rec = &self.recs[b as usize];
                let st = rec.load();
                debug_assert_eq!(st.phase, FREE);
                rec.cr.clear();
                let open = State {
                    gen: st.gen,
                    phase: OPEN,
                    writers: 0,
                    count: 0,
                };
                rec.state.store(open.encode(), Ordering::Release);
                if self
                    .open
                    .compare_exchange(0, pack(b, st.gen), Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    rec.state.store(
                        State {
                            phase: FREE,
                            ..open
                        }
                        .encode(),
                        Ordering::Release,
                    );
                    let _ = self.free.push(b);
                }
                continue;
            }
            let (b, gen) = ((o as u32) - 1, (o >> 32) as u32);
            let rec = &self.recs[b as usize];
            let w = rec.state.load(Ordering::Acquire);
            let st = State::decode(w);
            if st.gen != gen || st.phase != OPEN || st.count >= self.cap {
                let _ = self
                    .open
                    .compare_exchange(o, 0, Ordering::AcqRel, Ordering::Acquire);
                continue;
            }
            let reserved = State {
                count: st.count + 1,
                writers: st.writers + 1,
                ..st
            };
            if rec
                .state
                .compare_exchange(w, reserved.encode(), Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let i = st.count as usize;
            // SAFETY: index `i` was reserved by the CAS above, so this is
            // the only writer of `list[i]`, and nobody reads it before the
            // writer count drops back (below).
            unsafe { *rec.list[i].get() = *desc };
            rec.state.fetch_sub(1 << 16, Ordering::Release);
            if reserved.count == self.cap {
                let _ = self
                    .open
                    .compare_exchange(o, 0, Ordering::AcqRel, Ordering::Acquire);
                self.seal(b, gen);
            }
            return Some((b, gen));
        }
    }

    /// Close an open batch to further appends (it stays unsubmitted).
    pub fn seal(&self, b: u32, gen: u32) {
        let rec = &self.recs[b as usize];
        let mut w = rec.state.load(Ordering::Acquire);
        loop {
            let st = State::decode(w);
            if st.gen != gen || st.phase != OPEN {
                return;
            }
            let sealed = State {
                phase: SEALED,
                ..st
            }
            .encode();
            match rec
                .state
                .compare_exchange(w, sealed, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => w = now,
            }
        }
    }

    /// Take exclusive charge of an OPEN or SEALED, non-empty batch for
    /// submission. Returns the element count once every writer is done.
    pub fn claim(&self, b: u32, gen: u32) -> Option<u64> {
        let rec = &self.recs[b as usize];
        let mut w = rec.state.load(Ordering::Acquire);
        loop {
            let st = State::decode(w);
            if st.gen != gen || !(st.phase == OPEN || st.phase == SEALED) || st.count == 0 {
                return None;
            }
            let claimed = State {
                phase: CLAIMED,
                ..st
            }
            .encode();
            match rec
                .state
                .compare_exchange(w, claimed, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        let _ = self
            .open
            .compare_exchange(pack(b, gen), 0, Ordering::AcqRel, Ordering::Acquire);
        // Writers that reserved before the claim finish a 64-byte copy.
        let mut backoff = Backoff::new(64, FOREVER);
        loop {
            let st = rec.load();
            if st.writers == 0 {
                return Some(st.count);
            }
            backoff.snooze();
        }
    }

    /// Move a claimed batch to `phase` (SUBMITTED, or SEALED to retry).
    pub fn set_phase(&self, b: u32, gen: u32, phase: u64) {
        let rec = &self.recs[b as usize];
        let st = rec.load();
        debug_assert!(st.gen == gen && st.writers == 0);
        rec.state
            .store(State { phase, ..st }.encode(), Ordering::Release);
    }

    /// Retire a batch: next generation, back to the pool.
    pub fn recycle(&self, b: u32, gen: u32) {
        let rec = &self.recs[b as usize];
        // The record is only written after a submission; a batch that is
        // open, sealed or claimed always has a zeroed one.
        rec.cr.clear();
        // Generations double as credit-tag sequences: keep them in
        // 1..=MAX_BATCH_GEN.
        let g = if gen >= MAX_BATCH_GEN { 1 } else { gen + 1 };
        let next = State {
            gen: g,
            phase: FREE,
            writers: 0,
            count: 0,
        };
        rec.state.store(next.encode(), Ordering::Release);
        let _ = self.free.push(b);
    }

    /// Mark the records of elements `from..` of the claimed or submitted
    /// batch `b` as never run (`SW_PENDING` -> `SW_NOT_EXECUTED`), so that
    /// their owners submit them again. A record the device already wrote
    /// keeps its status.
    fn mark_not_run(&self, b: u32, from: u64) {
        let rec = &self.recs[b as usize];
        let count = rec.load().count;
        for i in from..count {
            // SAFETY: the batch is claimed or submitted: no appender
            // writes the list any more, and nothing does until it is
            // recycled.
            let cr = unsafe { (*rec.list[i as usize].get()).completion_addr };
            // SAFETY: an element's record is the `DeviceOp` of an op in
            // `Phase::InBatch` for this batch and generation: its owner
            // cannot release it before the batch is recycled (after this
            // call), and every access to it is atomic.
            let cell = unsafe { CrCell::at(cr) };
            cell.replace_status(status::SW_PENDING, status::SW_NOT_EXECUTED);
        }
    }

    /// The descriptors appended to batch `b` so far (tests only: the
    /// list is read without claiming the batch).
    #[cfg(test)]
    pub fn elements(&self, b: u32) -> Vec<Descriptor> {
        let rec = &self.recs[b as usize];
        let n = rec.load().count as usize;
        // SAFETY: test callers read only batches no thread appends to.
        (0..n).map(|i| unsafe { *rec.list[i].get() }).collect()
    }
}

/// Submission and retirement of batches: the engine's side, with credits
/// and the portal.
impl Engine {
    /// Submit batch `b` if it is still waiting and a credit is free; what
    /// the WQ answered, if it was tried.
    pub(super) fn try_submit_batch(&self, b: u32, gen: u32) -> Option<Submitted> {
        let rec = &self.batches.recs[b as usize];
        let st = rec.load();
        if st.gen != gen || !(st.phase == OPEN || st.phase == SEALED) || self.stopped() {
            return None;
        }
        // The batch record is zero here (cleared when the batch opened or
        // was recycled); clearing it now could erase the record of a
        // submission another thread just made.
        let tag = tag_batch(b, gen);
        let pos = self.acquire(tag)?;
        let Some(count) = self.batches.claim(b, gen) else {
            self.credits.release(pos, tag);
            return None;
        };
        let mut n = count as u32;
        if n == 1 {
            // The minimum batch is 2: pad with a NOOP that writes no
            // record of its own.
            // SAFETY: the batch is claimed and has no writers left; index 1
            // is beyond its one element.
            unsafe { *rec.list[1].get() = Descriptor::noop_without_record() };
            n = 2;
        }
        // Element records keep SW_PENDING until the device overwrites it
        // with a real status, or retirement marks them as never run.
        // (Their monitor words stay non-zero meanwhile.)
        rec.credit_pos.store(pos, Ordering::Relaxed);
        self.batches.set_phase(b, gen, SUBMITTED);
        let d = Descriptor::batch(rec.list_addr(), n, rec.cr.addr());
        // SAFETY: the list belongs to the claimed batch and stays untouched
        // until the batch is retired after its record is written; each
        // element covers memory its operation's `start` caller vouched for.
        match unsafe { self.portal.submit(&d) } {
            Ok(Submitted::Accepted) => {
                #[cfg(test)]
                self.n.descriptors.fetch_add(1, Ordering::Relaxed);
                #[cfg(test)]
                self.n.batches.fetch_add(1, Ordering::Relaxed);
                Some(Submitted::Accepted)
            }
            Ok(Submitted::Retry) => {
                self.credits.release(pos, tag);
                self.batches.set_phase(b, gen, SEALED);
                Some(Submitted::Retry)
            }
            Err(_) => {
                // E.g. EINVAL from write(2) for BATCH on a v1 device: stop
                // batching; the members, which never reached the device,
                // resubmit on their own.
                self.batching.store(false, Ordering::Relaxed);
                self.credits.release(pos, tag);
                self.batches.mark_not_run(b, 0);
                self.batches.recycle(b, gen);
                None
            }
        }
    }

    /// Whether batch `b` of generation `gen` is retired, retiring it now
    /// if its record is written.
    pub(super) fn try_retire(&self, b: u32, gen: u32) -> bool {
        let rec = &self.batches.recs[b as usize];
        let st = rec.load();
        if st.gen != gen {
            return true;
        }
        if st.phase != SUBMITTED || rec.cr.status() == 0 {
            return false;
        }
        let pos = rec.credit_pos.load(Ordering::Relaxed);
        let tag = tag_batch(b, gen);
        if self.credits.claim(pos, tag) {
            self.retire_batch(b, gen);
            self.credits.finish_claim(pos);
            return true;
        }
        rec.gen() != gen
    }

    /// The batch record is written: mark the elements it says did not
    /// run, then recycle the batch. SUCCESS and BATCH_FAIL: all ran.
    /// BATCH_PAGE_FAULT: those from `descs_completed` on did not. A
    /// validation error of the batch descriptor: none ran. Any other
    /// status does not say which ran, so none is marked: each waits for
    /// its own record. A batch-level error other than a list fault turns
    /// batching off.
    pub(super) fn retire_batch(&self, b: u32, gen: u32) {
        let r = self.batches.recs[b as usize].cr.snapshot();
        match r.code() {
            status::SUCCESS | status::BATCH_FAIL => {}
            status::BATCH_PAGE_FAULT => {
                self.batches.mark_not_run(b, u64::from(r.bytes_completed));
            }
            c => {
                self.batching.store(false, Ordering::Relaxed);
                if status::is_validation_error(c) {
                    self.batches.mark_not_run(b, 0);
                }
            }
        }
        self.batches.recycle(b, gen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn state_word_round_trips() {
        let s = State {
            gen: 0xdead_beef,
            phase: SUBMITTED,
            writers: 3,
            count: 64,
        };
        assert_eq!(State::decode(s.encode()), s);
    }

    #[test]
    fn append_fills_then_seals_and_opens_a_new_batch() {
        let bs = Batches::new(3, 4);
        let d = |m: u64| Descriptor::noop(0x40 * (m + 1));
        let mut got = Vec::new();
        for m in 0..9 {
            got.push(bs.append(&d(m)).unwrap());
        }
        // 4 + 4 + 1 elements in three batches; the first two sealed.
        assert!(got[..4].iter().all(|&x| x == got[0]));
        assert!(got[4..8].iter().all(|&x| x == got[4]));
        assert_ne!(got[0], got[4]);
        assert_ne!(got[8], got[4]);
        let (b0, g0) = got[0];
        assert_eq!(bs.recs[b0 as usize].load().phase, SEALED);
        let addrs: Vec<u64> = bs.elements(b0).iter().map(|e| e.completion_addr).collect();
        assert_eq!(addrs, vec![0x40, 0x80, 0xc0, 0x100]);
        // No record left once the third batch fills up.
        for m in 9..12 {
            assert!(bs.append(&d(m)).is_some());
        }
        assert!(bs.append(&d(12)).is_none());
        assert_eq!(bs.claim(b0, g0), Some(4));
        assert_eq!(bs.claim(b0, g0), None, "claimed once");
        bs.set_phase(b0, g0, SUBMITTED);
        bs.recycle(b0, g0);
        assert_eq!(bs.recs[b0 as usize].gen(), g0 + 1);
        assert_eq!(bs.claim(b0, g0), None, "stale generation");
        assert!(bs.append(&d(12)).is_some());
    }

    #[test]
    fn concurrent_appends_lose_nothing() {
        let bs = Arc::new(Batches::new(512, 64));
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let bs = bs.clone();
                std::thread::spawn(move || {
                    let mut placed = Vec::new();
                    for i in 0..2000u32 {
                        let m = t * 10_000 + i;
                        let d = Descriptor::noop(u64::from(m) * 32);
                        placed.push((m, bs.append(&d).unwrap()));
                    }
                    placed
                })
            })
            .collect();
        let mut all: Vec<(u32, (u32, u32))> = Vec::new();
        for t in threads {
            all.extend(t.join().unwrap());
        }
        // Every member appears exactly once in the batch it was told, with
        // its own descriptor.
        let mut seen = std::collections::HashSet::new();
        for b in 0..bs.recs.len() as u32 {
            for d in bs.elements(b) {
                assert_eq!(d.completion_addr % 32, 0);
                assert!(seen.insert(d.completion_addr / 32));
            }
        }
        assert_eq!(seen.len(), all.len());
        for (m, (b, _)) in all {
            let addr = u64::from(m) * 32;
            assert!(bs.elements(b).iter().any(|d| d.completion_addr == addr));
        }
    }
}
