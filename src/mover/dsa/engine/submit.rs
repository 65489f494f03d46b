//! Submission and flow control for [`Engine`]: descriptors for pieces,
//! WQ credits (taken per descriptor, returned when its completion record
//! is observed, reclaimed from any op by a scan), direct submission, and
//! batches (filled when the WQ is full, submitted when a credit frees up,
//! retired when their record is written).

use std::sync::atomic::Ordering;

use super::super::hw::completion::status;
use super::super::hw::descriptor::{data_flags, flush_flags, Descriptor};
use super::super::hw::portal::Submitted;
use super::batch;
use super::credits;
use super::progress::{Op, OpKind};
use super::{next_seq, DeviceOp, Engine, FailReason, Owned, Phase};

impl Engine {
    pub(super) fn build(&self, op: &Op, cr: u64) -> Descriptor {
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

    /// Return the credits of every descriptor whose completion record is
    /// written, whoever owns it, retiring finished batches. True if any
    /// credit came back.
    pub(super) fn reclaim(&self) -> bool {
        // Records named by credits are read under the scan lock: their
        // owners free them only after `quiesce`, which waits for it.
        let _scan = self.scan.read().unwrap_or_else(|e| e.into_inner());
        let mut any = false;
        for (pos, t) in self.credits.tags() {
            if t == 0 || t == credits::CLAIMED {
                continue;
            }
            match credits::holder(t) {
                credits::Holder::Op(addr) => {
                    // SAFETY: a credit holding an op tag names a live
                    // `DeviceOp`: its owner releases the credit before it
                    // releases the record, and frees the record only after
                    // `quiesce`, which cannot pass while this scan holds
                    // the lock. If the credit was released and the record
                    // reused since `tags()` read it, `status` reads a live
                    // record and the release below fails on the tag.
                    let rec = unsafe { &*(addr as *const DeviceOp) };
                    if rec.cr.status() != 0 && self.credits.release(pos, t) {
                        any = true;
                    }
                }
                credits::Holder::Batch(b) => {
                    if self.batches.recs[b as usize].cr.status() != 0 && self.credits.claim(pos, t)
                    {
                        self.retire_batch(b, credits::batch_gen(t));
                        self.credits.finish_claim(pos);
                        any = true;
                    }
                }
            }
        }
        any
    }

    /// Submit the current piece of the op in `rec`, directly or into a
    /// batch.
    pub(super) fn submit_current(&self, rec: &DeviceOp, owned: &mut Owned) {
        owned.seq = next_seq(owned.seq);
        let Some(job) = owned.job.as_mut() else {
            return;
        };
        // `start_op` admits only records whose address fits a tag.
        let Some(tag) = credits::tag_op(rec.addr(), owned.seq) else {
            self.fail(rec, job, FailReason::Inconsistent, false);
            return;
        };
        let d = self.build(&job.progress.piece_op(), rec.cr.addr());
        rec.cr.clear();
        if let Some(pos) = self.acquire(tag) {
            // SAFETY: the piece lies inside the operation whose memory the
            // caller of `start_op` vouched for until the op ends; the
            // record is the caller's until `release_op`, which waits for
            // the device.
            match unsafe { self.portal.submit(&d) } {
                Ok(Submitted::Accepted) => {
                    self.n.descriptors.fetch_add(1, Ordering::Relaxed);
                    job.phase = Phase::InFlight { pos, tag };
                    return;
                }
                Ok(Submitted::Retry) => {
                    self.credits.release(pos, tag);
                }
                Err(e) => {
                    self.credits.release(pos, tag);
                    self.fail(rec, job, FailReason::Submit(e.errno), false);
                    return;
                }
            }
        }
        self.n.busy.fetch_add(1, Ordering::Relaxed);
        rec.cr.set_status(status::SW_PENDING);
        if job.queue && self.batching() {
            if let Some((b, gen)) = self.batches.append(&d) {
                self.n.batched_ops.fetch_add(1, Ordering::Relaxed);
                job.phase = Phase::InBatch { b, gen };
                return;
            }
        }
        job.phase = Phase::NeedSubmit;
    }

    /// Submit batch `b` if it is still waiting and a credit is free.
    pub(super) fn try_submit_batch(&self, b: u32, gen: u32) {
        let rec = &self.batches.recs[b as usize];
        let st = rec.load();
        if st.gen != gen || !(st.phase == batch::OPEN || st.phase == batch::SEALED) {
            return;
        }
        // The batch record is zero here (cleared when the batch opened or
        // was recycled); clearing it now could erase the record of a
        // submission another thread just made.
        let tag = credits::tag_batch(b, gen);
        let Some(pos) = self.acquire(tag) else { return };
        let Some(count) = self.batches.claim(b, gen) else {
            self.credits.release(pos, tag);
            return;
        };
        let mut n = count as u32;
        if n == 1 {
            // The minimum batch is 2: pad with a NOOP.
            rec.pad_cr.clear();
            // SAFETY: the batch is claimed and has no writers left; index 1
            // is beyond its one element.
            unsafe { *rec.list[1].get() = Descriptor::noop(rec.pad_cr.addr()) };
            n = 2;
        }
        // Element records keep SW_PENDING: the device overwrites it with
        // a real status; one still pending after the batch is retired
        // never ran. (Their monitor words stay non-zero meanwhile.)
        rec.credit_pos.store(pos, Ordering::Relaxed);
        self.batches.set_phase(b, gen, batch::SUBMITTED);
        let d = Descriptor::batch(rec.list_addr(), n, rec.cr.addr());
        // SAFETY: the list belongs to the claimed batch and stays untouched
        // until the batch is retired after its record is written; each
        // element covers memory its operation's `start` caller vouched for.
        match unsafe { self.portal.submit(&d) } {
            Ok(Submitted::Accepted) => {
                self.n.descriptors.fetch_add(1, Ordering::Relaxed);
                self.n.batches.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Submitted::Retry) => {
                self.credits.release(pos, tag);
                self.batches.set_phase(b, gen, batch::SEALED);
            }
            Err(_) => {
                // E.g. EINVAL from write(2) for BATCH on a v1 device: stop
                // batching; the members resubmit on their own.
                self.batching.store(false, Ordering::Relaxed);
                self.credits.release(pos, tag);
                self.batches.recycle(b, gen);
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
        if st.phase != batch::SUBMITTED || rec.cr.status() == 0 {
            return false;
        }
        let pos = rec.credit_pos.load(Ordering::Relaxed);
        let tag = credits::tag_batch(b, gen);
        if self.credits.claim(pos, tag) {
            self.retire_batch(b, gen);
            self.credits.finish_claim(pos);
            return true;
        }
        rec.gen() != gen
    }

    /// The batch record is written: recycle the batch. Elements that
    /// never ran (list fault, batch-level error) still read SW_PENDING and
    /// their owners resubmit them. A batch-level error other than a list
    /// fault turns batching off.
    pub(super) fn retire_batch(&self, b: u32, gen: u32) {
        let code = self.batches.recs[b as usize].cr.status() & status::MASK;
        if !matches!(
            code,
            status::SUCCESS | status::BATCH_FAIL | status::BATCH_PAGE_FAULT
        ) {
            self.batching.store(false, Ordering::Relaxed);
        }
        self.batches.recycle(b, gen);
    }
}
