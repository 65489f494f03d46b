//! Credit reclaim: when no WQ credit is free, return the credits of every
//! descriptor whose completion record is already written, whoever owns it
//! (the credit registry is in `op.rs`). Only a full WQ, and the engine's
//! drop, get here; a single operation on a free WQ never does.

use super::op::{self, DeviceOp};
use super::Engine;

impl Engine {
    /// Return the credits of every descriptor whose completion record is
    /// written, whoever owns it, retiring finished batches. True if any
    /// credit came back.
    pub(super) fn reclaim(&self) -> bool {
        // Records named by credits are read under the scan lock: their
        // owners free them only after `quiesce`, which waits for it.
        let _scan = self.scan.read().unwrap_or_else(|e| e.into_inner());
        let mut any = false;
        for (pos, t) in self.credits.tags() {
            if t == 0 || t == op::CLAIMED {
                continue;
            }
            match op::holder(t) {
                op::Holder::Op(addr) => {
                    // SAFETY: a credit holding an op tag names a live
                    // `DeviceOp`: its owner releases the credit before it
                    // releases the record, and frees the record only after
                    // `quiesce`, which cannot pass while this scan holds
                    // the lock; a quarantined record, which keeps its
                    // credit, is never freed. If the credit was released and the record
                    // reused since `tags()` read it, `status` reads a live
                    // record and the release below fails on the tag.
                    let rec = unsafe { &*(addr as *const DeviceOp) };
                    if rec.cr.status() != 0 && self.credits.release(pos, t) {
                        any = true;
                    }
                }
                op::Holder::Batch(b) => {
                    if self.batches.recs[b as usize].cr.status() != 0 && self.credits.claim(pos, t)
                    {
                        self.retire_batch(b, op::batch_gen(t));
                        self.credits.finish_claim(pos);
                        any = true;
                    }
                }
            }
        }
        any
    }
}
