//! Memory operations on the CPU, shared by every mover: copy, move, fill,
//! cache write-back and the durability fence.
//!
//! Durability (`VDM_F_MEM_DURABLE`) on the CPU means: after the stores, the
//! destination's cache lines are written back (CLWB, else CLFLUSHOPT, else
//! CLFLUSH) and an SFENCE orders the write-back before the operation is
//! reported complete. The instruction is chosen once from CPUID.

use core::ffi::c_void;
use std::sync::OnceLock;

use crate::abi::{vdm_operation, vdm_operation_type};

/// `VDM_F_MEM_DURABLE`.
pub const F_MEM_DURABLE: u64 = 1 << 0;
/// `VDM_F_NO_CACHE_HINT`.
pub const F_NO_CACHE_HINT: u64 = 1 << 1;

const CACHE_LINE: usize = 64;

/// Which cache write-back instruction this CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushKind {
    Clwb,
    Clflushopt,
    Clflush,
}

/// The best write-back instruction of this CPU (CPUID leaf 7, EBX bits 24
/// and 23), decided once.
pub fn flush_kind() -> FlushKind {
    static KIND: OnceLock<FlushKind> = OnceLock::new();
    *KIND.get_or_init(|| {
        // CPUID exists on every x86-64 CPU; leaf 0 reports the highest leaf.
        let max = core::arch::x86_64::__cpuid(0).eax;
        if max < 7 {
            return FlushKind::Clflush;
        }
        let ebx = core::arch::x86_64::__cpuid_count(7, 0).ebx;
        if ebx & (1 << 24) != 0 {
            FlushKind::Clwb
        } else if ebx & (1 << 23) != 0 {
            FlushKind::Clflushopt
        } else {
            FlushKind::Clflush
        }
    })
}

/// Writes back every cache line overlapping `[addr, addr + len)` and fences.
///
/// # Safety
/// The range must be mapped memory of this process (readable).
pub unsafe fn flush(addr: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    let start = addr as usize & !(CACHE_LINE - 1);
    let end = addr as usize + len;
    let kind = flush_kind();
    let mut line = start;
    while line < end {
        let p = line as *const u8;
        match kind {
            // SAFETY: `p` lies in a cache line of the caller's mapped range;
            // CLWB only writes the line back, it changes no data. The CPU
            // has the instruction (CPUID checked in `flush_kind`).
            FlushKind::Clwb => unsafe {
                core::arch::asm!("clwb [{0}]", in(reg) p, options(nostack, preserves_flags));
            },
            // SAFETY: as above; CLFLUSHOPT writes back and invalidates.
            FlushKind::Clflushopt => unsafe {
                core::arch::asm!("clflushopt [{0}]", in(reg) p, options(nostack, preserves_flags));
            },
            // SAFETY: as above; CLFLUSH exists on every x86-64 CPU.
            FlushKind::Clflush => unsafe { core::arch::x86_64::_mm_clflush(p) },
        }
        line += CACHE_LINE;
    }
    // SAFETY: SFENCE has no operands and is always available on x86-64.
    unsafe { core::arch::x86_64::_mm_sfence() };
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
pub fn decode(op: &vdm_operation) -> Result<Op, BadOp> {
    // SAFETY (for each union read below): every member of the union is
    // plain data (pointers and integers) valid for any bit pattern, and the
    // member read is the one the type field selects.
    match raw_type(op) {
        MEMCPY => {
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
pub unsafe fn run(op: &Op) {
    match *op {
        Op::Copy { dst, src, n, flags } => {
            // SAFETY: caller's contract; libc memcpy handles n == 0.
            unsafe { libc::memcpy(dst.cast(), src.cast(), n) };
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

/// Writes `[dst, dst + n)` back when `flags` asks for durability.
///
/// # Safety
/// The range must be mapped.
pub unsafe fn durable(dst: *const u8, n: usize, flags: u64) {
    if flags & F_MEM_DURABLE != 0 {
        // SAFETY: forwarded caller contract.
        unsafe { flush(dst, n) };
    }
}

/// Where an operation writes: the pointer the output reports.
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
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let has = |f: &str| cpuinfo.split_whitespace().any(|w| w == f);
        let expected = if has("clwb") {
            FlushKind::Clwb
        } else if has("clflushopt") {
            FlushKind::Clflushopt
        } else {
            FlushKind::Clflush
        };
        if !cpuinfo.is_empty() {
            assert_eq!(flush_kind(), expected);
        }
    }
}
