//! Data movers: the safe core behind the `struct vdm` callbacks, and what
//! every mover shares, in this one file:
//!
//! - [`Mover`], the trait each mover implements: the callbacks in
//!   `ffi/view.rs` check C's pointers, decode the operation and call it
//!   with Rust values (a decoded [`Op`], a [`Notifier`] view) and get Rust
//!   values back (a `future_state`, a `vdm_operation_result`);
//! - [`Op`], the one decoded operation every mover and the DSA engine work
//!   on, destination first everywhere (`Op::copy(dst, src, ..)`), checked
//!   before any memory is touched; the engine splits it (`sub`) and
//!   resumes it after page faults, the CPU runs it (`cpu::run`);
//! - [`Pool`], the bounded pool of operation records (one record per
//!   operation, one bound, `MINIASYNC_MAX_OPS`, for every mover).
//!
//! The movers: [`sync`] (runs on the polling thread), [`threads`] (worker
//! threads), [`dsa`] (the DSA engine, `libminiasync-vdm-dml`); [`cpu`] is
//! the CPU's copy, fill, flush and durability.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::abi::{future_state, vdm_operation_result};
use crate::arch::thread_pointer;
use crate::ffi::view::Notifier;

pub mod cpu;
pub mod dsa;
pub mod stats;
pub mod sync;
#[cfg(test)]
mod tests;
pub mod threads;

/// What a mover offers the `struct vdm` callbacks (`ffi/view.rs`). The
/// mover's `struct vdm` must be at offset 0 of `Self` (C casts between
/// the two, and the callbacks find the mover from its `struct vdm *`).
pub(crate) trait Mover: Sized {
    /// Per-operation record; its address is the op handle.
    type Op;

    /// `struct vdm` capabilities: the `VDM_F_*` flags the mover honours.
    const CAPABILITIES: u32;

    /// The mover a record belongs to.
    ///
    /// # Safety
    /// `op` must be a record handed out by some mover's [`new_op`] and not
    /// yet deleted (its mover is then alive).
    ///
    /// [`new_op`]: Self::new_op
    unsafe fn owner_of(op: &Self::Op) -> &Self;

    /// Reserves a record, or `None` at the bound of outstanding ops.
    fn new_op(&self) -> Option<&Self::Op>;

    /// Starts the operation (C's `op_start`; called on each poll until it
    /// returns true, then no more): `false` means "not started, poll
    /// again". A refused operation ([`BadOp`]) completes with
    /// `VDM_ERROR_JOB_CORRUPTED` without touching memory. The mover reports
    /// in `n` which notifier its future uses.
    ///
    /// # Safety
    /// `op` must be a live record of this mover, polled by this thread
    /// only; the operation's buffers valid as its type implies until the
    /// future completes.
    unsafe fn start(&self, op: &Self::Op, operation: Result<Op, BadOp>, n: Notifier<'_>) -> bool;

    /// The state of a started operation: IDLE (not started), RUNNING or
    /// COMPLETE.
    ///
    /// # Safety
    /// `op` must be a live record of this mover, polled by this thread only.
    unsafe fn check(&self, op: &Self::Op) -> future_state;

    /// Releases the record (once nothing else touches it) and returns the
    /// operation's result; an operation deleted before it completed reports
    /// `VDM_ERROR_JOB_CORRUPTED`.
    ///
    /// # Safety
    /// `op` must be a live record of this mover, not used afterwards.
    unsafe fn delete(&self, op: &Self::Op) -> vdm_operation_result;
}

/// A result stored in a record's atomic word, back as the enum (anything
/// that is not a success or out-of-memory is a corrupted job).
pub(crate) fn result_of(raw: u32) -> vdm_operation_result {
    match raw {
        r if r == vdm_operation_result::VDM_SUCCESS as u32 => vdm_operation_result::VDM_SUCCESS,
        r if r == vdm_operation_result::VDM_ERROR_OUT_OF_MEMORY as u32 => {
            vdm_operation_result::VDM_ERROR_OUT_OF_MEMORY
        }
        _ => vdm_operation_result::VDM_ERROR_JOB_CORRUPTED,
    }
}

/// `VDM_F_MEM_DURABLE`.
pub const F_MEM_DURABLE: u64 = 1 << 0;
/// `VDM_F_NO_CACHE_HINT`.
pub const F_NO_CACHE_HINT: u64 = 1 << 1;

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// `vdm_memcpy`: source and destination do not overlap.
    Copy,
    /// `vdm_memmove`: they may overlap.
    Move,
    /// Fill with an 8-byte little-endian pattern (`vdm_memset` repeats one
    /// byte).
    Fill,
    /// Write back (and with `no_cache`, invalidate) cache lines.
    Flush,
}

/// The `VDM_F_*` flags an operation's execution depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// `VDM_F_NO_CACHE_HINT`: do not allocate the destination in the LLC.
    pub no_cache: bool,
    /// `VDM_F_MEM_DURABLE`: the data must be durable at completion.
    pub durable: bool,
}

impl Hints {
    /// The hints among `flags`; other bits are ignored, as upstream did.
    pub fn from_flags(flags: u64) -> Hints {
        Hints {
            no_cache: flags & F_NO_CACHE_HINT != 0,
            durable: flags & F_MEM_DURABLE != 0,
        }
    }

    /// The `VDM_F_*` bits of these hints.
    pub fn to_flags(self) -> u64 {
        (u64::from(self.durable) * F_MEM_DURABLE) | (u64::from(self.no_cache) * F_NO_CACHE_HINT)
    }
}

/// One operation: addresses in this process's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    /// Destination (Copy, Move, Fill) or the flushed region (Flush).
    pub dst: usize,
    /// Source (Copy and Move only).
    pub src: usize,
    /// Fill pattern: byte `i` of the destination is byte `i % 8` of it.
    pub pattern: u64,
    pub len: usize,
    pub hints: Hints,
    /// The flags exactly as C passed them (custom functions of the threads
    /// mover receive them); `hints` is what the library acts on.
    pub flags: u64,
}

impl Op {
    /// memcpy of `len` bytes from `src` to `dst`.
    pub fn copy(dst: usize, src: usize, len: usize, hints: Hints) -> Op {
        Op {
            kind: OpKind::Copy,
            dst,
            src,
            pattern: 0,
            len,
            hints,
            flags: hints.to_flags(),
        }
    }

    /// memmove of `len` bytes from `src` to `dst`.
    pub fn moving(dst: usize, src: usize, len: usize, hints: Hints) -> Op {
        Op {
            kind: OpKind::Move,
            ..Op::copy(dst, src, len, hints)
        }
    }

    /// memset: `byte` repeated.
    pub fn fill(dst: usize, byte: u8, len: usize, hints: Hints) -> Op {
        Op::fill_pattern(dst, u64::from_ne_bytes([byte; 8]), len, hints)
    }

    pub fn fill_pattern(dst: usize, pattern: u64, len: usize, hints: Hints) -> Op {
        Op {
            kind: OpKind::Fill,
            dst,
            src: 0,
            pattern,
            len,
            hints,
            flags: hints.to_flags(),
        }
    }

    pub fn flush(addr: usize, len: usize, hints: Hints) -> Op {
        Op {
            kind: OpKind::Flush,
            dst: addr,
            src: 0,
            pattern: 0,
            len,
            hints,
            flags: hints.to_flags(),
        }
    }

    /// Copy or Move: the operation has a source.
    pub fn has_source(&self) -> bool {
        matches!(self.kind, OpKind::Copy | OpKind::Move)
    }

    /// Source and destination share at least one byte.
    pub fn overlaps(&self) -> bool {
        self.has_source()
            && self.len != 0
            && self.src < self.dst.wrapping_add(self.len)
            && self.dst < self.src.wrapping_add(self.len)
    }

    /// Address arithmetic of every operand stays in range.
    pub fn in_range(&self) -> bool {
        self.dst.checked_add(self.len).is_some()
            && (!self.has_source() || self.src.checked_add(self.len).is_some())
    }

    /// The bytes `[lo, hi)` of this operation as an operation of its own.
    pub fn sub(&self, lo: u64, hi: u64) -> Op {
        let lo_u = lo as usize;
        let mut o = *self;
        o.dst = self.dst + lo_u;
        o.len = (hi - lo) as usize;
        match self.kind {
            OpKind::Copy | OpKind::Move => o.src = self.src + lo_u,
            // Keep byte i of the sub-range equal to byte (lo + i) % 8.
            OpKind::Fill => o.pattern = self.pattern.rotate_right(8 * (lo % 8) as u32),
            OpKind::Flush => {}
        }
        o
    }
}

/// Why an operation was refused without touching memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadOp {
    /// A NULL address with a non-zero length.
    NullPointer,
    /// `addr + n` wraps around the address space.
    RangeWraps,
    /// The type is not one of the four operations.
    UnknownType,
}

// ---------------------------------------------------------------------------
// The record pool.
// Bounded pools of operation records with stable addresses.
//
// A pool hands out records by pointer (the C side's op handle) and takes
// them back in any order. Records live in chunks allocated on first use and
// kept until the pool is dropped, so a handle never dangles while its mover
// lives. When `capacity` records are out, `alloc` returns `None`, which the
// vdm layer turns into `VDM_ERROR_OUT_OF_MEMORY`.
//
// Two free lists: the *owner* list, used only by the thread that created
// the pool (plain loads and stores, no locked instruction: a locked
// read-modify-write would also drain the store buffer right after the
// operation's copy), and a shared lock-free stack for every other thread,
// whose head carries a tag against ABA. Neither path allocates once the
// records exist.

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
    #[cfg(test)]
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
    pub fn for_each<'a>(&'a mut self, mut f: impl FnMut(&'a T)) {
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

impl<T> Pool<T> {
    /// Gives the pool's memory up for good: its records are never dropped
    /// nor freed, because something outside the process (a device) may
    /// still write them. The memory stays reachable from a process-wide
    /// list, so leak checkers see it as kept, not lost. Returns the bytes
    /// kept.
    pub fn keep_forever(&mut self) -> usize {
        static KEPT: Mutex<Vec<usize>> = Mutex::new(Vec::new());
        let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = 0;
        for c in self.chunks.iter() {
            let p = c.swap(core::ptr::null_mut(), Ordering::AcqRel);
            if !p.is_null() {
                kept.push(p as usize);
                bytes += CHUNK as usize * core::mem::size_of::<Slot<T>>();
            }
        }
        bytes
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
