//! Memory operations on the CPU, shared by every mover: copy, move, fill,
//! cache write-back and the durability fence.
//!
//! Durability (`VDM_F_MEM_DURABLE`) on the CPU means: after the stores, the
//! destination's cache lines are written back (on x86-64 CLWB, else
//! CLFLUSHOPT, else CLFLUSH) and a fence (SFENCE) orders the write-back
//! before the operation is reported complete. The instructions live in
//! [`crate::arch`], which chooses them once per process.

use core::ffi::c_void;

use crate::abi::{vdm_operation, vdm_operation_type};

/// `VDM_F_MEM_DURABLE`.
pub const F_MEM_DURABLE: u64 = 1 << 0;
/// `VDM_F_NO_CACHE_HINT`.
pub const F_NO_CACHE_HINT: u64 = 1 << 1;

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

/// The operation's type as a raw integer (C may store any value there).
#[inline]
pub fn raw_type(op: &vdm_operation) -> u32 {
    // SAFETY: `type` is a 4-byte field of `op`; reading it as u32 never
    // creates an invalid enum value.
    unsafe { core::ptr::addr_of!(op.r#type).cast::<u32>().read() }
}

const MEMCPY: u32 = vdm_operation_type::VDM_OPERATION_MEMCPY as u32;
const MEMMOVE: u32 = vdm_operation_type::VDM_OPERATION_MEMMOVE as u32;
const MEMSET: u32 = vdm_operation_type::VDM_OPERATION_MEMSET as u32;
const FLUSH: u32 = vdm_operation_type::VDM_OPERATION_FLUSH as u32;

/// One operation, decoded and checked.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Copy {
        dst: *mut u8,
        src: *const u8,
        n: usize,
        flags: u64,
    },
    Move {
        dst: *mut u8,
        src: *const u8,
        n: usize,
        flags: u64,
    },
    Set {
        dst: *mut u8,
        byte: u8,
        n: usize,
        flags: u64,
    },
    Flush {
        dst: *const u8,
        n: usize,
    },
}

#[inline]
fn check_range(p: *const c_void, n: usize) -> Result<(), BadOp> {
    if n == 0 {
        return Ok(());
    }
    if p.is_null() {
        return Err(BadOp::NullPointer);
    }
    (p as usize)
        .checked_add(n)
        .map(|_| ())
        .ok_or(BadOp::RangeWraps)
}

/// Decodes and checks an operation: NULL buffers with a non-zero size,
/// ranges that wrap, and unknown types are refused. Flag bits other than
/// `VDM_F_*` are ignored, as upstream did.
#[inline]
pub fn decode(op: &vdm_operation) -> Result<Op, BadOp> {
    // Each union read below is sound: every member of the union is
    // plain data (pointers and integers) valid for any bit pattern, and the
    // member read is the one the type field selects.
    match raw_type(op) {
        MEMCPY => {
            // SAFETY: plain-data union member selected by the type field.
            let a = unsafe { op.data.memcpy };
            check_range(a.dest, a.n)?;
            check_range(a.src, a.n)?;
            Ok(Op::Copy {
                dst: a.dest.cast(),
                src: a.src.cast(),
                n: a.n,
                flags: a.flags,
            })
        }
        MEMMOVE => {
            // SAFETY: plain-data union member selected by the type field.
            let a = unsafe { op.data.memmove };
            check_range(a.dest, a.n)?;
            check_range(a.src, a.n)?;
            Ok(Op::Move {
                dst: a.dest.cast(),
                src: a.src.cast(),
                n: a.n,
                flags: a.flags,
            })
        }
        MEMSET => {
            // SAFETY: plain-data union member selected by the type field.
            let a = unsafe { op.data.memset };
            check_range(a.str, a.n)?;
            Ok(Op::Set {
                dst: a.str.cast(),
                byte: a.c as u8,
                n: a.n,
                flags: a.flags,
            })
        }
        FLUSH => {
            // SAFETY: plain-data union member selected by the type field.
            let a = unsafe { op.data.flush };
            check_range(a.dest, a.n)?;
            Ok(Op::Flush {
                dst: a.dest.cast(),
                n: a.n,
            })
        }
        _ => Err(BadOp::UnknownType),
    }
}

/// Runs a decoded operation on this thread, including the durability
/// write-back it asks for.
///
/// # Safety
/// The operation's buffers must be valid for the reads and writes it
/// implies (`Copy` must not overlap), as the C caller promised.
#[inline]
pub unsafe fn run(op: &Op) {
    match *op {
        Op::Copy { dst, src, n, flags } => {
            // SAFETY: caller's contract.
            unsafe { copy(dst, src, n) };
            // SAFETY: dst..dst+n was just written, so it is mapped.
            unsafe { durable(dst, n, flags) };
        }
        Op::Move { dst, src, n, flags } => {
            // SAFETY: caller's contract; memmove allows overlap.
            unsafe { libc::memmove(dst.cast(), src.cast(), n) };
            // SAFETY: as above.
            unsafe { durable(dst, n, flags) };
        }
        Op::Set {
            dst,
            byte,
            n,
            flags,
        } => {
            // SAFETY: caller's contract.
            unsafe { libc::memset(dst.cast(), byte.into(), n) };
            // SAFETY: as above.
            unsafe { durable(dst, n, flags) };
        }
        // SAFETY: caller's contract (the range is mapped).
        Op::Flush { dst, n } => unsafe { flush(dst, n) },
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

/// Writes `[dst, dst + n)` back when `flags` asks for durability.
///
/// # Safety
/// The range must be mapped.
#[inline]
pub unsafe fn durable(dst: *const u8, n: usize, flags: u64) {
    if flags & F_MEM_DURABLE != 0 {
        // SAFETY: forwarded caller contract.
        unsafe { flush(dst, n) };
    }
}

/// Where an operation writes: the pointer the output reports.
#[inline]
pub fn dest_of(op: &vdm_operation) -> *mut c_void {
    // SAFETY: every union member starts with the destination pointer at
    // offset 0 (memcpy/memmove `dest`, memset `str`, flush `dest`), and a
    // pointer is valid for any bit pattern.
    unsafe { op.data.memcpy.dest }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{vdm_operation_args, vdm_operation_data_memcpy};

    fn copy_op(dst: *mut u8, src: *const u8, n: usize) -> vdm_operation {
        vdm_operation {
            data: vdm_operation_args {
                memcpy: vdm_operation_data_memcpy {
                    dest: dst.cast(),
                    src: src.cast_mut().cast(),
                    n,
                    flags: F_MEM_DURABLE,
                },
            },
            r#type: vdm_operation_type::VDM_OPERATION_MEMCPY,
            padding: 0,
        }
    }

    #[test]
    fn copies_and_flushes() {
        let src: Vec<u8> = (0..200u8).collect();
        let mut dst = vec![0u8; 200];
        let op = decode(&copy_op(dst.as_mut_ptr(), src.as_ptr(), 200)).unwrap();
        // SAFETY: both buffers are 200 bytes and do not overlap.
        unsafe { run(&op) };
        assert_eq!(src, dst);
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
    fn refuses_null_and_wrapping_ranges() {
        let mut dst = [0u8; 4];
        let null = decode(&copy_op(dst.as_mut_ptr(), core::ptr::null(), 4));
        assert_eq!(null.unwrap_err(), BadOp::NullPointer);
        let wrap = decode(&copy_op(dst.as_mut_ptr(), usize::MAX as *const u8, 4));
        assert_eq!(wrap.unwrap_err(), BadOp::RangeWraps);
        assert!(decode(&copy_op(core::ptr::null_mut(), core::ptr::null(), 0)).is_ok());
        let mut bad = copy_op(dst.as_mut_ptr(), dst.as_ptr(), 4);
        // SAFETY: writing an out-of-range value through a u32 view, as C may.
        unsafe { core::ptr::addr_of_mut!(bad.r#type).cast::<u32>().write(9) };
        assert_eq!(decode(&bad).unwrap_err(), BadOp::UnknownType);
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
