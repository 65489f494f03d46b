//! Every architecture-specific instruction of the crate, behind one
//! portable API.
//!
//! This module owns the inline assembly and the `core::arch` intrinsics:
//! the CPU feature reader (on x86-64 the crate's only CPUID reader), the
//! thread-pointer read the op pools use to recognise their owner thread,
//! the cache write-back behind `VDM_F_MEM_DURABLE` and `VDM_OPERATION_FLUSH`,
//! the wide (AVX-512) copy loop, and the MOVDIR64B/ENQCMD submission of DSA
//! descriptors. Keeping them here means the rest of the crate has no
//! `cfg(target_arch)`: callers ask [`features`] what the CPU has and call
//! the functions below, and the crate builds and runs everywhere.
//!
//! | | x86-64 | aarch64 | others, and Miri |
//! |---|---|---|---|
//! | [`thread_pointer`] | `%fs:0` | `mrs tpidr_el0` | address of a `thread_local!` |
//! | [`write_back`] | CLWB / CLFLUSHOPT / CLFLUSH, SFENCE | `dc cvac`, `dsb ish` | full fence only |
//! | [`copy_wide`] | AVX-512F loop | `memcpy` | `memcpy` |
//! | [`movdir64b`], [`enqcmd`] | SFENCE + instruction | not available | not available |
//! | [`store_fence`] | SFENCE | full fence | full fence |
//!
//! [`movdir64b`] and [`enqcmd`] are re-exports of the architecture's
//! functions rather than wrappers: a DSA submission goes from the portal
//! (`mover/dsa/hw/mod.rs`) straight to `x86_64.rs`. Their contract is
//! documented here, on the re-exports.
//!
//! Only the DSA device path needs x86-64 (the device is an x86 part, and
//! without MOVDIR64B/ENQCMD the portal falls back to `write(2)`); the
//! emulated work queue and every other mover work on any architecture.
//!
//! Under Miri, which cannot run inline assembly or most intrinsics, the
//! portable implementation (`portable.rs`) is used on every architecture.

use std::sync::OnceLock;

// The fallback: the implementation on other architectures and under
// Miri; aarch64 borrows its stubs; its own tests run everywhere.
#[cfg(any(test, miri, not(target_arch = "x86_64")))]
mod portable;

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", not(miri)))]
use x86_64 as imp;

#[cfg(all(target_arch = "aarch64", not(miri)))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", not(miri)))]
use aarch64 as imp;

#[cfg(any(miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
use portable as imp;

/// How this CPU writes a cache line back to memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteBack {
    /// x86 CLWB: write back, keep the line cached.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    Clwb,
    /// x86 CLFLUSHOPT: write back and invalidate, weakly ordered.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    Clflushopt,
    /// x86 CLFLUSH: write back and invalidate (every x86-64 CPU has it).
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    Clflush,
    /// aarch64 `dc cvac`: clean by virtual address to the point of
    /// coherency.
    #[cfg(all(target_arch = "aarch64", not(miri)))]
    DcCvac,
    /// No cache write-back instruction is available (other architectures,
    /// Miri): [`write_back`] only issues a full memory fence.
    None,
}

/// What the CPU offers, detected once per process (see [`features`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// MOVDIR64B (x86 CPUID.(7,0):ECX bit 28).
    pub movdir64b: bool,
    /// ENQCMD (x86 CPUID.(7,0):ECX bit 29).
    pub enqcmd: bool,
    /// The cache write-back instruction [`write_back`] uses.
    pub write_back: WriteBack,
    /// The step, in bytes, between write-back instructions: the smallest
    /// data cache line size (a power of two).
    pub line_size: usize,
}

/// The CPU's features, read once and cached.
#[inline]
pub fn features() -> Features {
    static F: OnceLock<Features> = OnceLock::new();
    *F.get_or_init(imp::detect)
}

/// This thread's thread pointer: unique among live threads and cheap to
/// read (one instruction on x86-64 and aarch64). A thread that exits may
/// leave its value to a thread created later.
///
/// `fn thread_pointer() -> usize`, re-exported from the architecture's
/// module (it runs on every record allocation).
pub use imp::thread_pointer;

/// Writes back every cache line overlapping `[addr, addr + len)` and
/// orders the write-back before later stores: the CPU side of
/// `VDM_F_MEM_DURABLE`. Without a write-back instruction
/// ([`WriteBack::None`]) this is a full memory fence. Does nothing when
/// `len` is 0.
///
/// # Safety
/// The range must be mapped memory of this process (readable) and must not
/// wrap around the address space.
pub unsafe fn write_back(addr: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    let f = features();
    if f.write_back != WriteBack::None {
        let step = f.line_size;
        // Walk the lines by offset from the first line start, derived from
        // `addr` so every pointer keeps its provenance. `head + len` cannot
        // overflow: the range does not wrap and `head <= addr`.
        let head = addr.addr() & (step - 1);
        let first = addr.wrapping_sub(head);
        for off in (0..head + len).step_by(step) {
            // SAFETY: `first + off` starts a cache line that overlaps the
            // caller's mapped range; the kind was detected on this CPU.
            unsafe { imp::write_back_line(f.write_back, first.wrapping_add(off)) };
        }
    }
    imp::write_back_fence();
}

/// Copies `n` bytes with the widest vector loop the CPU has (the AVX-512F
/// loop on x86-64 CPUs that have AVX-512F, else `memcpy`).
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, not overlapping.
#[inline]
pub unsafe fn copy_wide(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { imp::copy_wide(dst, src, n) }
}

/// SFENCE on x86-64 (a full fence elsewhere): makes the descriptor and
/// the data written by earlier (possibly non-temporal) stores globally
/// visible before what follows. A `write(2)` submission of DSA
/// descriptors needs it as much as MOVDIR64B does: the kernel's write path
/// does not fence before it submits (DSA.md 12.2).
#[inline]
pub fn store_fence() {
    #[cfg(test)]
    FENCES.with(|n| n.set(n.get() + 1));
    imp::store_fence();
}

/// Store fences issued by this thread through [`store_fence`] (test
/// builds: a test checks that a submission path fences).
#[cfg(test)]
pub fn fences_on_this_thread() -> u64 {
    FENCES.with(|n| n.get())
}

#[cfg(test)]
std::thread_local! {
    static FENCES: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// SFENCE, then MOVDIR64B of the 64 bytes at `desc` to `portal`: the
/// posted write that submits a descriptor to a dedicated DSA work queue.
/// The SFENCE makes the descriptor and the data written by earlier
/// (possibly non-temporal) stores visible before the device reads them.
///
/// `unsafe fn movdir64b(portal: *mut u8, desc: *const u8)`, re-exported
/// from the architecture's module: no wrapper runs on a submission.
///
/// # Safety
/// [`features`] must report `movdir64b` (never on other architectures: the
/// fallback aborts). `portal` must be a 64-byte-aligned address inside a
/// mapped WQ portal and `desc` a readable, 64-byte-aligned 64-byte
/// descriptor whose addresses satisfy the device's contract.
pub use imp::movdir64b;

/// SFENCE, then ENQCMD of the 64 bytes at `desc` to `portal` (a shared
/// DSA work queue); true when the queue accepted the descriptor, false
/// when it was full (retry later).
///
/// `unsafe fn enqcmd(portal: *mut u8, desc: *const u8) -> bool`,
/// re-exported from the architecture's module like [`movdir64b`].
///
/// # Safety
/// As for [`movdir64b`], with `enqcmd` reported by [`features`] and a
/// shared-WQ portal.
pub use imp::enqcmd;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_stable_and_sane() {
        let f = features();
        assert_eq!(f, features());
        assert!(f.line_size.is_power_of_two() && f.line_size >= 16);
        if cfg!(any(miri, not(target_arch = "x86_64"))) {
            assert!(!f.movdir64b && !f.enqcmd);
        }
    }

    #[test]
    fn thread_pointer_is_per_thread() {
        let here = thread_pointer();
        assert_eq!(here, thread_pointer());
        assert_ne!(here, 0);
        let there = std::thread::spawn(thread_pointer).join().unwrap();
        assert_ne!(here, there);
    }

    #[test]
    fn write_back_of_any_alignment_and_length() {
        let buf = vec![1u8; 300];
        for off in [0usize, 1, 15, 63, 64, 65, 127, 128, 129] {
            for len in [0usize, 1, 2, 63, 64, 65, 300 - off] {
                // SAFETY: the range is inside `buf`.
                unsafe { write_back(buf.as_ptr().add(off), len.min(300 - off)) };
            }
        }
        assert!(buf.iter().all(|&b| b == 1));
    }

    #[test]
    fn copy_wide_is_exact() {
        for n in [0usize, 1, 255, 256, 257, 2048, 4095, 16384] {
            let src: Vec<u8> = (0..n + 1).map(|i| (i * 13 + 5) as u8).collect();
            let mut dst = vec![0u8; n + 2];
            // SAFETY: both buffers hold n bytes past the offsets used.
            unsafe { copy_wide(dst.as_mut_ptr().add(1), src.as_ptr().add(1), n) };
            assert_eq!(&dst[1..1 + n], &src[1..1 + n], "size {n}");
            assert_eq!((dst[0], dst[n + 1]), (0, 0), "no overrun at {n}");
        }
    }
}
