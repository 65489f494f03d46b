//! Bounded pools of operation records with stable addresses.
//!
//! A pool hands out records by pointer (the C side's op handle) and takes
//! them back in any order. Records live in chunks allocated on first use and
//! kept until the pool is dropped, so a handle never dangles while its mover
//! lives. When `capacity` records are out, `alloc` returns `None`, which the
//! vdm layer turns into `VDM_ERROR_OUT_OF_MEMORY`.
//!
//! Two free lists: the *owner* list, used only by the thread that created
//! the pool (plain loads and stores, no locked instruction: a locked
//! read-modify-write would also drain the store buffer right after the
//! operation's copy), and a shared lock-free stack for every other thread,
//! whose head carries a tag against ABA. Neither path allocates once the
//! records exist.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::arch::thread_pointer;

const CHUNK: u32 = 256;
const EMPTY: u32 = u32::MAX;

/// Default bound on outstanding operations per mover.
pub const DEFAULT_CAPACITY: u32 = 65536;
/// Largest accepted `MINIASYNC_MAX_OPS`.
pub const MAX_CAPACITY: u32 = 1 << 24;

/// The per-mover bound: `MINIASYNC_MAX_OPS` when set to a number in
/// `1..=MAX_CAPACITY`, else `DEFAULT_CAPACITY`. Read once per process.
pub fn configured_capacity() -> u32 {
    static CAP: OnceLock<u32> = OnceLock::new();
    *CAP.get_or_init(|| {
        std::env::var("MINIASYNC_MAX_OPS")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|&v| (1..=MAX_CAPACITY).contains(&v))
            .unwrap_or(DEFAULT_CAPACITY)
    })
}

/// One record and its bookkeeping. `value` is first, so a pointer to the
/// slot is a pointer to the value.
#[repr(C)]
struct Slot<T> {
    value: T,
    /// Next index on the shared free list.
    next: AtomicU32,
    index: u32,
    /// Next slot on the owner's free list (a pointer: one load to pop).
    next_owned: AtomicPtr<Slot<T>>,
}

/// A bounded, lock-free pool of `T`.
pub struct Pool<T> {
    chunks: Box<[AtomicPtr<Slot<T>>]>,
    /// The creating thread (its thread pointer), which alone uses
    /// `owner_head`.
    owner: usize,
    /// Owner free-list head (a slot, or NULL). Atomic only so that other
    /// threads may read it for statistics; the owner never uses RMW on it.
    owner_head: AtomicPtr<Slot<T>>,
    /// Free-list head: tag in the high 32 bits, index (or EMPTY) low.
    head: AtomicU64,
    /// Records never handed out yet start at this index.
    fresh: AtomicU32,
    capacity: u32,
    grow: Mutex<()>,
}

// SAFETY: the pool only hands out shared access to records (`&T`), and `T`
// itself is required to be `Sync`; all bookkeeping is atomic.
unsafe impl<T: Send + Sync> Sync for Pool<T> {}
// SAFETY: the pool owns its chunks; moving it moves ownership of `T`s.
unsafe impl<T: Send> Send for Pool<T> {}

impl<T: Default> Pool<T> {
    /// A pool of at most `capacity` records (at least 1); nothing is
    /// allocated until the first `alloc`.
    pub fn new(capacity: u32) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        let nchunks = capacity.div_ceil(CHUNK) as usize;
        Pool {
            chunks: (0..nchunks)
                .map(|_| AtomicPtr::new(core::ptr::null_mut()))
                .collect(),
            owner: thread_pointer(),
            owner_head: AtomicPtr::new(core::ptr::null_mut()),
            head: AtomicU64::new(EMPTY as u64),
            fresh: AtomicU32::new(0),
            capacity,
            grow: Mutex::new(()),
        }
    }

    /// The bound this pool was created with.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    #[inline(always)]
    fn slot(&self, index: u32) -> *mut Slot<T> {
        let chunk = self.chunks[(index / CHUNK) as usize].load(Ordering::Acquire);
        debug_assert!(!chunk.is_null());
        // SAFETY: `index` was handed out, so its chunk exists and has CHUNK
        // slots; the offset stays inside that allocation.
        unsafe { chunk.add((index % CHUNK) as usize) }
    }

    fn chunk_ready(&self, index: u32) -> bool {
        let c = &self.chunks[(index / CHUNK) as usize];
        if !c.load(Ordering::Acquire).is_null() {
            return true;
        }
        let _g = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        if !c.load(Ordering::Acquire).is_null() {
            return true;
        }
        let base = index - index % CHUNK;
        let mut v: Vec<Slot<T>> = Vec::new();
        if v.try_reserve_exact(CHUNK as usize).is_err() {
            return false;
        }
        v.extend((0..CHUNK).map(|i| Slot {
            value: T::default(),
            next: AtomicU32::new(EMPTY),
            index: base + i,
            next_owned: AtomicPtr::new(core::ptr::null_mut()),
        }));
        let raw = Box::into_raw(v.into_boxed_slice()).cast::<Slot<T>>();
        // `free` gets back to a slot from a `&T`, whose provenance covers
        // only the value: exposing the chunk's provenance here lets `free`
        // recover a pointer valid for the whole slot (no code is emitted).
        let _ = raw.expose_provenance();
        c.store(raw, Ordering::Release);
        true
    }

    /// Takes a record, or `None` when `capacity` records are out (or memory
    /// for a new chunk cannot be had). The record keeps whatever state its
    /// previous user left; callers reset what they use.
    #[inline]
    pub fn alloc(&self) -> Option<&T> {
        if self.is_owner() {
            let head = self.owner_head.load(Ordering::Relaxed);
            if !head.is_null() {
                // SAFETY: slots on the owner list are live slots of this
                // pool, and only this (the owner) thread reads or writes
                // that list.
                let slot = unsafe { &*head };
                self.owner_head
                    .store(slot.next_owned.load(Ordering::Relaxed), Ordering::Relaxed);
                return Some(&slot.value);
            }
        }
        self.alloc_shared()
    }

    /// The shared free list, then a never-used record: kept out of line so
    /// the owner's fast path stays a few instructions.
    #[cold]
    #[inline(never)]
    fn alloc_shared(&self) -> Option<&T> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let index = head as u32;
            if index == EMPTY {
                break;
            }
            // SAFETY: an index on the free list was handed out before, so
            // its slot exists; `next` is atomic, and a stale value is caught
            // by the tagged compare-exchange below.
            let next = unsafe { (*self.slot(index)).next.load(Ordering::Relaxed) };
            let tag = (head >> 32).wrapping_add(1);
            match self.head.compare_exchange_weak(
                head,
                (tag << 32) | next as u64,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                // SAFETY: we own the popped slot until it is freed; chunks
                // live as long as `self`.
                Ok(_) => return Some(unsafe { &(*self.slot(index)).value }),
                Err(h) => head = h,
            }
        }
        let mut fresh = self.fresh.load(Ordering::Relaxed);
        loop {
            if fresh >= self.capacity {
                return None;
            }
            match self.fresh.compare_exchange_weak(
                fresh,
                fresh + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(f) => fresh = f,
            }
        }
        if !self.chunk_ready(fresh) {
            // No memory for the chunk: this index is given up (the bound
            // shrinks by one) rather than risk handing it out twice.
            return None;
        }
        // SAFETY: the chunk of `fresh` exists now and the index is ours.
        Some(unsafe { &(*self.slot(fresh)).value })
    }

    /// Returns a record to the pool.
    ///
    /// # Safety
    /// `value` must have come from `alloc` on this pool and not have been
    /// freed since; nobody may use it afterwards.
    #[inline]
    pub unsafe fn free(&self, value: &T) {
        // `value` is the first field of its slot, so the addresses are equal;
        // the pointer must take the chunk's provenance (exposed in
        // `chunk_ready`), as the reference's covers only the value.
        let slot = core::ptr::with_exposed_provenance::<Slot<T>>(core::ptr::from_ref(value).addr());
        // SAFETY: `slot` is a live slot of this pool (see above).
        let (index, next, next_owned) =
            unsafe { ((*slot).index, &(*slot).next, &(*slot).next_owned) };
        if self.is_owner() {
            next_owned.store(self.owner_head.load(Ordering::Relaxed), Ordering::Relaxed);
            self.owner_head.store(slot.cast_mut(), Ordering::Relaxed);
            return;
        }
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            next.store(head as u32, Ordering::Relaxed);
            let tag = (head >> 32).wrapping_add(1);
            match self.head.compare_exchange_weak(
                head,
                (tag << 32) | index as u64,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    #[inline(always)]
    fn is_owner(&self) -> bool {
        thread_pointer() == self.owner
    }

    /// Records currently handed out: an exact count when no other thread
    /// uses the pool meanwhile (for tests and statistics).
    pub fn outstanding(&self) -> u32 {
        let mut free = 0;
        let mut i = self.head.load(Ordering::Acquire) as u32;
        while i != EMPTY && free <= self.capacity {
            free += 1;
            // SAFETY: indices on a free list have live slots.
            i = unsafe { (*self.slot(i)).next.load(Ordering::Relaxed) };
        }
        let mut p = self.owner_head.load(Ordering::Acquire);
        while !p.is_null() && free <= self.capacity {
            free += 1;
            // SAFETY: slots on the owner list are live slots of this pool.
            p = unsafe { (*p).next_owned.load(Ordering::Relaxed) };
        }
        self.fresh.load(Ordering::Relaxed).saturating_sub(free)
    }
}

impl<T> Pool<T> {
    /// Calls `f` on every record ever handed out, free or not (for a
    /// mover's drop, which must find records still in use).
    pub fn for_each(&mut self, mut f: impl FnMut(&T)) {
        let fresh = self.fresh.load(Ordering::Relaxed);
        for c in self.chunks.iter() {
            let p = c.load(Ordering::Acquire);
            if p.is_null() {
                continue;
            }
            for i in 0..CHUNK as usize {
                // SAFETY: `p` is a live chunk of CHUNK slots, and `&mut
                // self` keeps every other user away.
                let slot = unsafe { &*p.add(i) };
                if slot.index < fresh {
                    f(&slot.value);
                }
            }
        }
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        for c in self.chunks.iter() {
            let p = c.load(Ordering::Acquire);
            if !p.is_null() {
                let slice = core::ptr::slice_from_raw_parts_mut(p, CHUNK as usize);
                // SAFETY: `p` came from `Box::into_raw` of a CHUNK-long boxed
                // slice in `chunk_ready` and is dropped exactly once here.
                drop(unsafe { Box::from_raw(slice) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Rec {
        v: AtomicUsize,
    }

    #[test]
    fn bounded_and_reusable_in_any_order() {
        let pool: Pool<Rec> = Pool::new(600);
        let mut held: Vec<&Rec> = (0..600).map(|_| pool.alloc().unwrap()).collect();
        assert!(pool.alloc().is_none(), "the 601st record must be refused");
        assert_eq!(pool.outstanding(), 600);
        // Free from the middle, not in allocation order.
        let r = held.remove(300);
        // SAFETY: `r` came from this pool and is not used again.
        unsafe { pool.free(r) };
        let again = pool.alloc().expect("a freed record is reusable");
        assert!(pool.alloc().is_none());
        held.push(again);
        let addrs: std::collections::HashSet<usize> =
            held.iter().map(|r| *r as *const Rec as usize).collect();
        assert_eq!(addrs.len(), 600, "no record handed out twice");
        for r in held {
            // SAFETY: each record came from this pool once.
            unsafe { pool.free(r) };
        }
        assert_eq!(pool.outstanding(), 0);
    }

    #[test]
    fn records_move_between_owner_and_other_threads() {
        let pool: Pool<Rec> = Pool::new(8);
        // Allocated by the owner, freed elsewhere, reused by the owner.
        let held: Vec<usize> = (0..8)
            .map(|_| pool.alloc().unwrap() as *const Rec as usize)
            .collect();
        assert!(pool.alloc().is_none());
        std::thread::scope(|s| {
            s.spawn(|| {
                for &a in &held[..4] {
                    // SAFETY: each address is a record of `pool`, freed once.
                    unsafe { pool.free(&*(a as *const Rec)) };
                }
                assert_eq!(pool.outstanding(), 4);
                let r = pool.alloc().expect("freed by this thread, reusable here");
                // SAFETY: `r` came from this pool.
                unsafe { pool.free(r) };
            });
        });
        for &a in &held[4..] {
            // SAFETY: as above.
            unsafe { pool.free(&*(a as *const Rec)) };
        }
        assert_eq!(pool.outstanding(), 0);
        let again: Vec<&Rec> = (0..8)
            .map(|_| pool.alloc().expect("all 8 reusable"))
            .collect();
        assert!(pool.alloc().is_none());
        assert_eq!(again.len(), 8);
    }

    #[test]
    fn concurrent_alloc_free_never_shares_a_record() {
        let pool: Pool<Rec> = Pool::new(64);
        // Miri interprets every step: fewer rounds still interleave threads.
        let rounds = if cfg!(miri) { 500 } else { 20_000 };
        std::thread::scope(|s| {
            for t in 0..4usize {
                let pool = &pool;
                s.spawn(move || {
                    for i in 0..rounds {
                        if let Some(r) = pool.alloc() {
                            let tag = t * 1_000_000 + i + 1;
                            r.v.store(tag, Ordering::Relaxed);
                            std::hint::spin_loop();
                            assert_eq!(r.v.load(Ordering::Relaxed), tag, "record shared");
                            // SAFETY: `r` came from this pool.
                            unsafe { pool.free(r) };
                        }
                    }
                });
            }
        });
        assert_eq!(pool.outstanding(), 0);
    }
}
