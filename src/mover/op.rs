//! The one decoded operation every mover and the DSA engine work on, with
//! destination first everywhere (`Op::copy(dst, src, ..)`), decoded once
//! from the C `struct vdm_operation` and checked before any memory is
//! touched. The engine splits it (`sub`) and resumes it after page faults;
//! the CPU runs it (`mover::cpu::run`).

use core::ffi::c_void;

use crate::abi::{vdm_operation, vdm_operation_output, vdm_operation_result, vdm_operation_type};

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

#[inline]
fn check_range(p: *const c_void, n: usize) -> Result<usize, BadOp> {
    if n == 0 {
        return Ok(p as usize);
    }
    if p.is_null() {
        return Err(BadOp::NullPointer);
    }
    (p as usize)
        .checked_add(n)
        .map(|_| p as usize)
        .ok_or(BadOp::RangeWraps)
}

/// Decodes and checks an operation: NULL buffers with a non-zero size,
/// ranges that wrap, and unknown types are refused.
#[inline]
pub fn decode(op: &vdm_operation) -> Result<Op, BadOp> {
    decode_hints(op).map(|(o, flags)| Op { flags, ..o })
}

#[inline(always)]
fn decode_hints(op: &vdm_operation) -> Result<(Op, u64), BadOp> {
    // Each union read below is sound: every member of the union is
    // plain data (pointers and integers) valid for any bit pattern, and the
    // member read is the one the type field selects.
    match raw_type(op) {
        MEMCPY => {
            // SAFETY: plain-data union member selected by the type field.
            let a = unsafe { op.data.memcpy };
            let (dst, src) = (check_range(a.dest, a.n)?, check_range(a.src, a.n)?);
            Ok((Op::copy(dst, src, a.n, Hints::from_flags(a.flags)), a.flags))
        }
        MEMMOVE => {
            // SAFETY: plain-data union member selected by the type field.
            let a = unsafe { op.data.memmove };
            let (dst, src) = (check_range(a.dest, a.n)?, check_range(a.src, a.n)?);
            Ok((
                Op::moving(dst, src, a.n, Hints::from_flags(a.flags)),
                a.flags,
            ))
        }
        MEMSET => {
            // SAFETY: plain-data union member selected by the type field.
            let a = unsafe { op.data.memset };
            let dst = check_range(a.str, a.n)?;
            Ok((
                Op::fill(dst, a.c as u8, a.n, Hints::from_flags(a.flags)),
                a.flags,
            ))
        }
        FLUSH => {
            // SAFETY: plain-data union member selected by the type field.
            let a = unsafe { op.data.flush };
            let dst = check_range(a.dest, a.n)?;
            Ok((Op::flush(dst, a.n, Hints::from_flags(a.flags)), a.flags))
        }
        _ => Err(BadOp::UnknownType),
    }
}

/// Where an operation writes: the pointer the output reports.
#[inline]
fn dest_of(op: &vdm_operation) -> *mut c_void {
    // SAFETY: every union member starts with the destination pointer at
    // offset 0 (memcpy/memmove `dest`, memset `str`, flush `dest`), and a
    // pointer is valid for any bit pattern.
    unsafe { op.data.memcpy.dest }
}

/// Writes type, result and the destination pointer into an output, as every
/// mover's `op_delete` must: `dest` (memcpy/memmove) or `str` (memset) on
/// success, NULL on failure; a flush output is zeroed.
#[inline]
pub fn fill_output(operation: &vdm_operation, output: &mut vdm_operation_output, result: u32) {
    let ty = raw_type(operation);
    let ok = result == vdm_operation_result::VDM_SUCCESS as u32;
    let dest = if ok && ty != FLUSH {
        dest_of(operation)
    } else {
        core::ptr::null_mut::<c_void>()
    };
    // SAFETY: the two enum fields are 4-byte slots written as u32 (the
    // type is copied from the operation exactly as C stored it); the union
    // slot is a plain pointer-sized word.
    unsafe {
        core::ptr::addr_of_mut!(output.r#type)
            .cast::<u32>()
            .write(ty);
        core::ptr::addr_of_mut!(output.result)
            .cast::<u32>()
            .write(result);
        core::ptr::addr_of_mut!(output.output)
            .cast::<*mut c_void>()
            .write(dest);
    }
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
                    flags: F_MEM_DURABLE | 1 << 40,
                },
            },
            r#type: vdm_operation_type::VDM_OPERATION_MEMCPY,
            padding: 0,
        }
    }

    #[test]
    fn decodes_destination_first() {
        let src = [1u8; 8];
        let mut dst = [0u8; 8];
        let op = decode(&copy_op(dst.as_mut_ptr(), src.as_ptr(), 8)).unwrap();
        assert_eq!(op.kind, OpKind::Copy);
        assert_eq!(op.dst, dst.as_ptr() as usize);
        assert_eq!(op.src, src.as_ptr() as usize);
        assert_eq!(op.len, 8);
        assert_eq!(op.flags, F_MEM_DURABLE | 1 << 40, "raw flags kept");
        assert_eq!(
            op.hints,
            Hints {
                durable: true,
                no_cache: false
            }
        );
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
    fn fill_pattern_rotates_with_the_offset() {
        let pat = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let op = Op::fill_pattern(0x1000, pat, 100, Hints::default());
        for lo in 0..20u64 {
            let b = op.sub(lo, 100).pattern.to_le_bytes();
            for (i, &x) in b.iter().enumerate() {
                assert_eq!(u64::from(x), (lo + i as u64) % 8);
            }
        }
    }

    #[test]
    fn overlap_and_range_checks() {
        let h = Hints::default();
        assert!(Op::copy(10, 0, 11, h).overlaps());
        assert!(Op::moving(10, 0, 11, h).overlaps());
        assert!(!Op::copy(10, 0, 10, h).overlaps());
        assert!(Op::copy(0, 10, 11, h).overlaps());
        assert!(Op::copy(5, 5, 1, h).overlaps());
        assert!(!Op::fill(0, 0, 100, h).overlaps());
        assert!(!Op::copy(usize::MAX - 1, 0, 4, h).in_range());
        assert!(Op::copy(0x1000, 0x2000, 4, h).in_range());
    }
}
