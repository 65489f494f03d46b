//! Memory operations on the CPU, shared by every mover: copy, move, fill,
//! cache write-back and the durability fence.
//!
//! Durability (`VDM_F_MEM_DURABLE`) on the CPU means: after the stores, the
//! destination's cache lines are written back (on x86-64 CLWB, else
//! CLFLUSHOPT, else CLFLUSH) and a fence (SFENCE) orders the write-back
//! before the operation is reported complete. The instructions live in
//! [`crate::arch`], which chooses them once per process.

use super::{Op, OpKind};

/// Writes back every cache line overlapping `[addr, addr + len)` and fences
/// ([`crate::arch::write_back`]).
///
/// # Safety
/// The range must be mapped memory of this process (readable).
#[inline]
pub unsafe fn flush(addr: *const u8, len: usize) {
    // SAFETY: forwarded caller contract; a mapped range does not wrap.
    unsafe { crate::arch::write_back(addr, len) }
}

/// Runs a decoded operation on this thread, including the durability
/// write-back it asks for.
///
/// # Safety
/// The operation's buffers must be valid for the reads and writes it
/// implies (`Copy` must not overlap), as the C caller promised.
#[inline]
pub unsafe fn run(op: &Op) {
    let (dst, src, n) = (op.dst as *mut u8, op.src as *const u8, op.len);
    match op.kind {
        // SAFETY: caller's contract.
        OpKind::Copy => unsafe { copy(dst, src, n) },
        // SAFETY: caller's contract; memmove allows overlap.
        OpKind::Move => unsafe {
            libc::memmove(dst.cast(), src.cast(), n);
        },
        // SAFETY: caller's contract.
        OpKind::Fill => unsafe { fill(dst, op.pattern, n) },
        // SAFETY: caller's contract (the range is mapped).
        OpKind::Flush => return unsafe { flush(dst, n) },
    }
    if op.hints.durable {
        // SAFETY: dst..dst+n was just written, so it is mapped.
        unsafe { flush(dst, n) };
    }
}

/// Fills `n` bytes at `dst` with the 8-byte little-endian `pattern`.
///
/// # Safety
/// `dst` writable for `n` bytes.
#[inline]
unsafe fn fill(dst: *mut u8, pattern: u64, n: usize) {
    let bytes = pattern.to_le_bytes();
    if bytes.iter().all(|&b| b == bytes[0]) {
        // SAFETY: caller's contract.
        unsafe { libc::memset(dst.cast(), bytes[0].into(), n) };
        return;
    }
    for i in 0..n {
        // SAFETY: `i < n`, inside the caller's buffer.
        unsafe { *dst.add(i) = bytes[i % 8] };
    }
}

/// Sizes copied with the AVX-512 loop: at these sizes (cache-resident
/// buffers) it beats glibc's `rep movsb` path; outside them glibc wins.
const WIDE_COPY: core::ops::RangeInclusive<usize> = 2048..=16384;

/// Copies `n` bytes (no overlap): the architecture's wide loop (AVX-512 on
/// x86-64, when the CPU has it) for the mid sizes where it is faster, libc
/// `memcpy` otherwise.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, not overlapping.
#[inline]
pub unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
    if n <= 64 {
        // SAFETY: caller's contract.
        return unsafe { copy_small(dst, src, n) };
    }
    if WIDE_COPY.contains(&n) {
        // SAFETY: caller's contract; `copy_wide` checks the CPU feature.
        unsafe { crate::arch::copy_wide(dst, src, n) };
    } else {
        // SAFETY: caller's contract; memcpy handles n == 0.
        unsafe { libc::memcpy(dst.cast(), src.cast(), n) };
    }
}

/// Copies up to 64 bytes without a call: two possibly overlapping
/// unaligned loads and stores of the largest power-of-two size that fits.
///
/// # Safety
/// As for `copy`, with `n <= 64`.
#[inline(always)]
unsafe fn copy_small(dst: *mut u8, src: *const u8, n: usize) {
    use core::ptr::{read_unaligned as rd, write_unaligned as wr};
    // SAFETY: in every arm the head load/store covers [0, k) and the tail
    // covers [n - k, n) with k <= n, so both stay inside the caller's
    // buffers; all loads happen before the stores (no overlap anyway).
    unsafe {
        match n {
            33..=64 => {
                let (a, b) = (
                    rd(src.cast::<[u8; 32]>()),
                    rd(src.add(n - 32).cast::<[u8; 32]>()),
                );
                wr(dst.cast::<[u8; 32]>(), a);
                wr(dst.add(n - 32).cast::<[u8; 32]>(), b);
            }
            17..=32 => {
                let (a, b) = (rd(src.cast::<u128>()), rd(src.add(n - 16).cast::<u128>()));
                wr(dst.cast::<u128>(), a);
                wr(dst.add(n - 16).cast::<u128>(), b);
            }
            8..=16 => {
                let (a, b) = (rd(src.cast::<u64>()), rd(src.add(n - 8).cast::<u64>()));
                wr(dst.cast::<u64>(), a);
                wr(dst.add(n - 8).cast::<u64>(), b);
            }
            4..=7 => {
                let (a, b) = (rd(src.cast::<u32>()), rd(src.add(n - 4).cast::<u32>()));
                wr(dst.cast::<u32>(), a);
                wr(dst.add(n - 4).cast::<u32>(), b);
            }
            1..=3 => {
                for i in 0..n {
                    *dst.add(i) = *src.add(i);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mover::Hints;

    #[test]
    fn copies_and_flushes() {
        let src: Vec<u8> = (0..200u8).collect();
        let mut dst = vec![0u8; 200];
        let durable = Hints {
            durable: true,
            no_cache: false,
        };
        let op = Op::copy(
            dst.as_mut_ptr() as usize,
            src.as_ptr() as usize,
            200,
            durable,
        );
        // SAFETY: both buffers are 200 bytes and do not overlap.
        unsafe { run(&op) };
        assert_eq!(src, dst);
    }

    #[test]
    fn fills_bytes_and_rotated_patterns() {
        let mut dst = vec![0u8; 40];
        let h = Hints::default();
        // SAFETY: the ranges are inside `dst`.
        unsafe { run(&Op::fill(dst.as_mut_ptr() as usize, 0xab, 40, h)) };
        assert!(dst.iter().all(|&b| b == 0xab));
        let pat = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let op = Op::fill_pattern(dst.as_mut_ptr() as usize, pat, 40, h).sub(3, 40);
        // SAFETY: as above.
        unsafe { run(&op) };
        assert!(dst[3..]
            .iter()
            .enumerate()
            .all(|(i, &b)| b as usize == (i + 3) % 8));
    }

    #[test]
    fn copy_is_exact_at_every_size_class() {
        for n in [
            0usize, 1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 2047, 2048, 2049,
            4096, 5000, 16383, 16384, 16385, 70000,
        ] {
            let src: Vec<u8> = (0..n + 3).map(|i| (i * 7 + 1) as u8).collect();
            let mut dst = vec![0u8; n + 6];
            // SAFETY: both buffers hold n bytes past the offsets used.
            unsafe { copy(dst.as_mut_ptr().add(3), src.as_ptr().add(1), n) };
            assert_eq!(&dst[3..3 + n], &src[1..1 + n], "size {n}");
            assert!(
                dst[..3].iter().chain(&dst[3 + n..]).all(|&b| b == 0),
                "no overrun at {n}"
            );
        }
    }

    #[test]
    fn flush_of_any_alignment_is_safe() {
        let buf = vec![1u8; 300];
        for off in [0usize, 1, 63, 64, 65] {
            // SAFETY: the range is inside `buf`.
            unsafe { flush(buf.as_ptr().add(off), 300 - off) };
        }
    }
}
