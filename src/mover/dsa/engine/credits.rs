//! WQ credits: the flow control a dedicated WQ needs (DSA.md 2.4).
//!
//! A dedicated WQ silently drops a descriptor submitted while it is full,
//! and a dropped descriptor never writes its completion record. The engine
//! therefore holds one credit per descriptor it has submitted and whose
//! completion record it has not yet observed; there are exactly WQ `size`
//! credits. Each credit is a registry slot holding a tag that names what
//! holds it (an operation's record by address, or a batch by index) and a
//! sequence number, so any thread can find completed descriptors and
//! return their credits even when their owners do not poll (the reclaim
//! scan in `submit.rs`). Tags make stale releases fail: a slot is freed
//! only by a compare-exchange on the exact tag it was taken with.
//!
//! Tag layout: bit 63 clear, an operation: bits 0-41 the record address
//! divided by 64 (records are 64-byte aligned and below 2^48), bits 42-62
//! the sequence (1..=[`MAX_SEQ`]). Bit 63 set, a batch: bits 0-31 its
//! index, bits 32-62 its generation. Neither is ever 0 (a free slot) or
//! [`CLAIMED`].

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

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
    free: AtomicU32,
    hint: AtomicU32,
}

impl Credits {
    /// `n` credits (at least 1).
    pub fn new(n: u32) -> Credits {
        let n = n.max(1);
        Credits {
            slots: (0..n).map(|_| AtomicU64::new(0)).collect(),
            free: AtomicU32::new(n),
            hint: AtomicU32::new(0),
        }
    }

    /// Total credits (the WQ size).
    pub fn capacity(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Credits currently held.
    pub fn in_use(&self) -> u32 {
        self.capacity() - self.free.load(Ordering::Acquire)
    }

    /// Take a credit for `tag`; `None` when all are held.
    pub fn try_acquire(&self, tag: u64) -> Option<u32> {
        let mut f = self.free.load(Ordering::Acquire);
        loop {
            if f == 0 {
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
            self.free.fetch_add(1, Ordering::AcqRel);
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
        self.free.fetch_add(1, Ordering::AcqRel);
    }

    /// The tag held at each position (0 = free, [`CLAIMED`] = retiring).
    pub fn tags(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32, s.load(Ordering::Acquire)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn never_more_than_capacity_and_stale_releases_fail() {
        let c = Credits::new(3);
        let t: Vec<u64> = (1..=4).map(|s| tag_op(7 * 64, s).unwrap()).collect();
        let a = c.try_acquire(t[0]).unwrap();
        let b = c.try_acquire(t[1]).unwrap();
        let d = c.try_acquire(t[2]).unwrap();
        assert_eq!(c.try_acquire(t[3]), None);
        assert_eq!(c.in_use(), 3);
        assert!(!c.release(a, t[1]), "wrong tag");
        assert!(c.release(a, t[0]));
        assert!(!c.release(a, t[0]), "double release");
        let e = c.try_acquire(t[3]).unwrap();
        assert_eq!(e, a);
        assert!(c.claim(b, t[1]));
        assert!(!c.release(b, t[1]), "claimed slots cannot be released");
        assert_eq!(c.tags().filter(|x| x.1 == CLAIMED).count(), 1);
        c.finish_claim(b);
        assert!(c.release(d, t[2]));
        assert!(c.release(e, t[3]));
        assert_eq!(c.in_use(), 0);
    }

    #[test]
    fn tags_name_their_holder_and_are_never_free_or_claimed() {
        let addr = 0x7fff_ffff_ffc0usize;
        for seq in [1, 2, MAX_SEQ] {
            let t = tag_op(addr, seq).unwrap();
            assert!(t != 0 && t != CLAIMED);
            assert_eq!(holder(t), Holder::Op(addr));
        }
        assert_ne!(tag_op(addr, 1), tag_op(addr, 2));
        assert_eq!(tag_op(addr + 8, 1), None, "unaligned");
        assert_eq!(tag_op(1 << 48, 1), None, "above 2^48");
        for (b, gen) in [(0, 1), (5, 77), (u32::MAX - 1, MAX_BATCH_GEN)] {
            let t = tag_batch(b, gen);
            assert!(t != 0 && t != CLAIMED);
            assert_eq!(holder(t), Holder::Batch(b));
            assert_eq!(batch_gen(t), gen);
        }
    }

    #[test]
    fn concurrent_acquire_release_keeps_the_bound() {
        let c = Arc::new(Credits::new(4));
        let held = Arc::new(AtomicU32::new(0));
        let max = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4u32)
            .map(|th| {
                let (c, held, max) = (c.clone(), held.clone(), max.clone());
                std::thread::spawn(move || {
                    let mut seq = 1;
                    for _ in 0..20_000 {
                        let t = tag_op(64 * (th as usize + 1), seq).unwrap();
                        seq = seq % 1000 + 1;
                        if let Some(p) = c.try_acquire(t) {
                            let h = held.fetch_add(1, Ordering::SeqCst) + 1;
                            max.fetch_max(h, Ordering::SeqCst);
                            held.fetch_sub(1, Ordering::SeqCst);
                            assert!(c.release(p, t));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(max.load(Ordering::SeqCst) <= 4);
        assert_eq!(c.in_use(), 0);
    }
}
