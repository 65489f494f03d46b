//! DSA work descriptors: the 64-byte hardware layout, every opcode, flag and
//! GENCAP bit the engine uses, and builders for the descriptors it submits.
//!
//! Values are pinned to DSA.md sections 3.1-3.5 (kernel `linux/idxd.h`,
//! `struct dsa_hw_desc`, `IDXD_OP_FLAG_*`, `enum dsa_opcode`); the test
//! `idxd_h` compiles a C program against the installed kernel header and
//! compares every value and offset. The completion record lives in
//! `completion.rs`.

use core::mem::{offset_of, size_of};

/// Descriptor opcodes (byte 7 of a descriptor). DSA.md 3.2.
pub mod opcode {
    pub const NOOP: u8 = 0x00;
    pub const BATCH: u8 = 0x01;
    pub const DRAIN: u8 = 0x02;
    pub const MEMMOVE: u8 = 0x03;
    pub const MEMFILL: u8 = 0x04;
    pub const COMPARE: u8 = 0x05;
    pub const COMPVAL: u8 = 0x06;
    pub const CR_DELTA: u8 = 0x07;
    pub const AP_DELTA: u8 = 0x08;
    pub const DUALCAST: u8 = 0x09;
    pub const TRANSL_FETCH: u8 = 0x0a;
    pub const CRCGEN: u8 = 0x10;
    pub const COPY_CRC: u8 = 0x11;
    pub const DIF_CHECK: u8 = 0x12;
    pub const DIF_INS: u8 = 0x13;
    pub const DIF_STRP: u8 = 0x14;
    pub const DIF_UPDT: u8 = 0x15;
    pub const DIX_GEN: u8 = 0x17;
    pub const CFLUSH: u8 = 0x20;
    pub const UPDATE_WIN: u8 = 0x21;
}

/// Descriptor flags (24-bit field at byte 4). DSA.md 3.3.
pub mod flag {
    pub const FENCE: u32 = 1 << 0;
    pub const BOF: u32 = 1 << 1;
    pub const CRAV: u32 = 1 << 2;
    pub const RCR: u32 = 1 << 3;
    pub const RCI: u32 = 1 << 4;
    pub const CRSTS: u32 = 1 << 5;
    /// Bit 6 is reserved.
    pub const RESERVED_6: u32 = 1 << 6;
    pub const CHECK_RESULT: u32 = 1 << 7;
    pub const CC: u32 = 1 << 8;
    pub const ADDR1_TCS: u32 = 1 << 9;
    pub const ADDR2_TCS: u32 = 1 << 10;
    pub const ADDR3_TCS: u32 = 1 << 11;
    pub const CR_TCS: u32 = 1 << 12;
    pub const STORD: u32 = 1 << 13;
    /// Destination readback: the durability flag (GENCAP bit 8).
    pub const DRDBK: u32 = 1 << 14;
    /// Destination steering-tag selector. Never used for durability.
    pub const DSTS: u32 = 1 << 15;
    /// Operation-specific bits 16..=23.
    pub const OP_SPECIFIC_MASK: u32 = 0x00ff_0000;
    /// The whole 24-bit flag field.
    pub const MASK: u32 = 0x00ff_ffff;
    /// Set on every descriptor the engine builds.
    pub const ALWAYS: u32 = CRAV | RCR;
}

/// GENCAP register bits (sysfs `gen_cap`). DSA.md 3.5.
pub mod gencap {
    pub const BLOCK_ON_FAULT: u64 = 1 << 0;
    pub const OVERLAP_COPY: u64 = 1 << 1;
    pub const CACHE_CONTROL_MEM: u64 = 1 << 2;
    pub const CACHE_CONTROL_CFLUSH: u64 = 1 << 3;
    pub const COMMAND_CAP: u64 = 1 << 4;
    pub const DEST_READBACK: u64 = 1 << 8;
    pub const DRAIN_READBACK: u64 = 1 << 9;
    pub const MAX_XFER_SHIFT: u32 = 16;
    pub const MAX_XFER_BITS: u64 = 0x1f;
    pub const MAX_BATCH_SHIFT: u32 = 21;
    pub const MAX_BATCH_BITS: u64 = 0xf;

    /// Device maximum transfer size encoded in bits 20:16 (2^field bytes).
    pub fn max_transfer_size(gen_cap: u64) -> u64 {
        1u64 << ((gen_cap >> MAX_XFER_SHIFT) & MAX_XFER_BITS)
    }

    /// Device maximum batch size encoded in bits 24:21 (2^field).
    pub fn max_batch_size(gen_cap: u64) -> u64 {
        1u64 << ((gen_cap >> MAX_BATCH_SHIFT) & MAX_BATCH_BITS)
    }
}

/// PASID field (bits 19:0 of the first dword).
pub const PASID_MASK: u32 = 0x000f_ffff;
/// Reserved bits 30:20 of the first dword.
pub const PASID_RESERVED_MASK: u32 = 0x7ff0_0000;
/// Privilege bit (bit 31 of the first dword).
pub const PRIV_BIT: u32 = 1 << 31;

/// A 64-byte DSA work descriptor (`struct dsa_hw_desc`), 64-byte aligned
/// as MOVDIR64B/ENQCMD sources and batch lists require.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Bits 19:0 PASID, 30:20 reserved, 31 privilege. Always 0 from us.
    pub pasid_priv: u32,
    /// Bits 23:0 flags, 31:24 opcode.
    pub flags_opcode: u32,
    /// Completion record address (32-byte aligned).
    pub completion_addr: u64,
    /// Source address, fill pattern, batch list address or readback 1.
    pub src: u64,
    /// Destination address (also the CFLUSH region) or readback 2.
    pub dst: u64,
    /// Transfer size in bytes, or the batch descriptor count.
    pub xfer_size: u32,
    /// Completion interrupt handle (unused from user space).
    pub int_handle: u16,
    /// Reserved (IAA operation flags).
    pub rsvd: u16,
    /// Operation-specific bytes 0x28..0x40.
    pub op_specific: [u8; 24],
}

const _: () = {
    assert!(size_of::<Descriptor>() == 64);
    assert!(core::mem::align_of::<Descriptor>() == 64);
    assert!(offset_of!(Descriptor, pasid_priv) == 0x00);
    assert!(offset_of!(Descriptor, flags_opcode) == 0x04);
    assert!(offset_of!(Descriptor, completion_addr) == 0x08);
    assert!(offset_of!(Descriptor, src) == 0x10);
    assert!(offset_of!(Descriptor, dst) == 0x18);
    assert!(offset_of!(Descriptor, xfer_size) == 0x20);
    assert!(offset_of!(Descriptor, int_handle) == 0x24);
    assert!(offset_of!(Descriptor, rsvd) == 0x26);
    assert!(offset_of!(Descriptor, op_specific) == 0x28);
};

/// What the caller asked for ([`Hints`]) is turned into descriptor flags
/// by [`data_flags`] and [`flush_flags`] according to the device's GENCAP.
pub use crate::mover::Hints;

/// Flags for a MEMMOVE or MEMFILL descriptor: always CRAV|RCR; CC unless
/// the caller asked for no cache hint (and only when GENCAP bit 2 says the
/// device has cache control for memory ops); DRDBK for durable writes only
/// when GENCAP bit 8 says the device has destination readback. Bit 15
/// (DSTS) is never set.
pub fn data_flags(gen_cap: u64, hints: Hints) -> u32 {
    let mut f = flag::ALWAYS;
    if !hints.no_cache && gen_cap & gencap::CACHE_CONTROL_MEM != 0 {
        f |= flag::CC;
    }
    if hints.durable && gen_cap & gencap::DEST_READBACK != 0 {
        f |= flag::DRDBK;
    }
    f
}

/// Flags for a CFLUSH descriptor: CRAV|RCR, plus CC (write back and keep
/// the lines, like CLWB) unless the caller asked for no cache hint, when
/// GENCAP bit 3 allows it. Without CC the lines are also invalidated.
pub fn flush_flags(gen_cap: u64, hints: Hints) -> u32 {
    let mut f = flag::ALWAYS;
    if !hints.no_cache && gen_cap & gencap::CACHE_CONTROL_CFLUSH != 0 {
        f |= flag::CC;
    }
    f
}

impl Default for Descriptor {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl Descriptor {
    /// An all-zero descriptor (opcode NOOP, no flags).
    pub const fn zeroed() -> Self {
        Descriptor {
            pasid_priv: 0,
            flags_opcode: 0,
            completion_addr: 0,
            src: 0,
            dst: 0,
            xfer_size: 0,
            int_handle: 0,
            rsvd: 0,
            op_specific: [0; 24],
        }
    }

    fn with(op: u8, flags: u32, cr: u64) -> Self {
        let mut d = Self::zeroed();
        d.set_opcode(op);
        d.set_flags(flags);
        d.completion_addr = cr;
        d
    }

    /// The opcode (byte 7).
    pub fn opcode(&self) -> u8 {
        (self.flags_opcode >> 24) as u8
    }

    /// The 24-bit flag field.
    pub fn flags(&self) -> u32 {
        self.flags_opcode & flag::MASK
    }

    pub fn set_opcode(&mut self, op: u8) {
        self.flags_opcode = (self.flags_opcode & flag::MASK) | (u32::from(op) << 24);
    }

    pub fn set_flags(&mut self, flags: u32) {
        self.flags_opcode = (self.flags_opcode & !flag::MASK) | (flags & flag::MASK);
    }

    /// The PASID field (ignored by dedicated WQs, set by ENQCMD).
    pub fn pasid(&self) -> u32 {
        self.pasid_priv & PASID_MASK
    }

    /// The privilege bit.
    pub fn privileged(&self) -> bool {
        self.pasid_priv & PRIV_BIT != 0
    }

    /// MEMMOVE `size` bytes from `src` to `dst` (overlap allowed when GENCAP
    /// bit 1 is set). `flags` should come from [`data_flags`].
    pub fn memmove(dst: u64, src: u64, size: u32, cr: u64, flags: u32) -> Self {
        let mut d = Self::with(opcode::MEMMOVE, flags, cr);
        d.src = src;
        d.dst = dst;
        d.xfer_size = size;
        d
    }

    /// MEMFILL `size` bytes at `dst` with the 8-byte `pattern` (byte `i` of
    /// the destination gets byte `i % 8` of the little-endian pattern).
    pub fn memfill(dst: u64, pattern: u64, size: u32, cr: u64, flags: u32) -> Self {
        let mut d = Self::with(opcode::MEMFILL, flags, cr);
        d.src = pattern;
        d.dst = dst;
        d.xfer_size = size;
        d
    }

    /// CFLUSH the cache lines of `[addr, addr + size)`. `flags` should come
    /// from [`flush_flags`].
    pub fn cflush(addr: u64, size: u32, cr: u64, flags: u32) -> Self {
        let mut d = Self::with(opcode::CFLUSH, flags, cr);
        d.dst = addr;
        d.xfer_size = size;
        d
    }

    /// NOOP: only writes a completion record.
    pub fn noop(cr: u64) -> Self {
        Self::with(opcode::NOOP, flag::ALWAYS, cr)
    }

    /// DRAIN: completes after every descriptor submitted before it.
    pub fn drain(cr: u64) -> Self {
        Self::with(opcode::DRAIN, flag::ALWAYS, cr)
    }

    /// BATCH of `count` descriptors at the 64-byte-aligned `list`.
    pub fn batch(list: u64, count: u32, cr: u64) -> Self {
        let mut d = Self::with(opcode::BATCH, flag::ALWAYS, cr);
        d.src = list;
        d.xfer_size = count;
        d
    }

    /// The 64 raw bytes, as MOVDIR64B/ENQCMD/`write(2)` send them.
    pub fn as_bytes(&self) -> &[u8; 64] {
        // SAFETY: `Descriptor` is `repr(C)`, exactly 64 bytes (asserted
        // above) with no padding: every field is an integer or byte array
        // and the offsets are contiguous, so all 64 bytes are initialised.
        unsafe { &*(self as *const Descriptor).cast::<[u8; 64]>() }
    }

    /// Rebuild a descriptor from 64 raw bytes (the emulator's view of a
    /// portal write or a batch list entry).
    pub fn from_bytes(b: &[u8; 64]) -> Self {
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| u64::from(u32_at(o)) | (u64::from(u32_at(o + 4)) << 32);
        let mut op_specific = [0u8; 24];
        op_specific.copy_from_slice(&b[0x28..0x40]);
        Descriptor {
            pasid_priv: u32_at(0),
            flags_opcode: u32_at(4),
            completion_addr: u64_at(8),
            src: u64_at(0x10),
            dst: u64_at(0x18),
            xfer_size: u32_at(0x20),
            int_handle: u16::from_le_bytes([b[0x24], b[0x25]]),
            rsvd: u16::from_le_bytes([b[0x26], b[0x27]]),
            op_specific,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_opcode_operands_and_flags() {
        let d = Descriptor::memmove(0x2000, 0x1000, 4096, 0x3000, flag::ALWAYS | flag::CC);
        assert_eq!(d.opcode(), opcode::MEMMOVE);
        assert_eq!(d.flags(), 0x10c);
        assert_eq!(
            (d.src, d.dst, d.xfer_size, d.completion_addr),
            (0x1000, 0x2000, 4096, 0x3000)
        );
        assert_eq!(d.as_bytes()[7], 0x03);
        assert_eq!(&d.as_bytes()[4..7], &[0x0c, 0x01, 0x00]);

        let f = Descriptor::memfill(0x2000, 0xabab_abab_abab_abab, 10, 0x40, flag::ALWAYS);
        assert_eq!(
            (f.opcode(), f.src, f.dst, f.xfer_size),
            (opcode::MEMFILL, 0xabab_abab_abab_abab, 0x2000, 10)
        );

        let c = Descriptor::cflush(0x5000, 64, 0x40, flag::ALWAYS);
        assert_eq!(
            (c.opcode(), c.src, c.dst, c.xfer_size),
            (opcode::CFLUSH, 0, 0x5000, 64)
        );

        let b = Descriptor::batch(0x8000, 5, 0x60);
        assert_eq!(
            (b.opcode(), b.src, b.xfer_size, b.flags()),
            (opcode::BATCH, 0x8000, 5, 0xc)
        );
        assert_eq!(Descriptor::noop(0x20).opcode(), opcode::NOOP);
        assert_eq!(Descriptor::drain(0x20).opcode(), opcode::DRAIN);
        assert_eq!(Descriptor::drain(0x20).flags(), flag::CRAV | flag::RCR);
        for d in [d, f, c, b] {
            assert_eq!(d.pasid_priv, 0, "user descriptors carry PASID 0 and priv 0");
            assert_eq!(d.rsvd, 0);
            assert_eq!(d.op_specific, [0; 24]);
            assert_eq!(Descriptor::from_bytes(d.as_bytes()), d);
        }
    }

    #[test]
    fn flag_policy_follows_gencap() {
        let all = gencap::CACHE_CONTROL_MEM | gencap::CACHE_CONTROL_CFLUSH | gencap::DEST_READBACK;
        let h = |no_cache, durable| Hints { no_cache, durable };
        assert_eq!(
            data_flags(all, h(false, false)),
            flag::CRAV | flag::RCR | flag::CC
        );
        assert_eq!(data_flags(all, h(true, false)), flag::CRAV | flag::RCR);
        assert_eq!(
            data_flags(all, h(false, true)),
            flag::CRAV | flag::RCR | flag::CC | flag::DRDBK
        );
        // No readback capability: durability is left to the CPU, bit 15 is
        // never used as a substitute.
        assert_eq!(
            data_flags(gencap::CACHE_CONTROL_MEM, h(false, true)),
            flag::CRAV | flag::RCR | flag::CC
        );
        assert_eq!(data_flags(0, h(false, true)), flag::CRAV | flag::RCR);
        for g in [0, all, u64::MAX] {
            for nc in [false, true] {
                for du in [false, true] {
                    assert_eq!(data_flags(g, h(nc, du)) & flag::DSTS, 0);
                    assert_eq!(data_flags(g, h(nc, du)) & flag::ALWAYS, flag::ALWAYS);
                }
            }
        }
        assert_eq!(flush_flags(all, h(false, false)), flag::ALWAYS | flag::CC);
        assert_eq!(flush_flags(all, h(true, false)), flag::ALWAYS);
        assert_eq!(
            flush_flags(gencap::CACHE_CONTROL_MEM, h(false, false)),
            flag::ALWAYS
        );
    }

    #[test]
    fn gencap_decoding_matches_the_spr_example() {
        // DSA.md 1.2: gen_cap 0x40915f0107 -> 2 GiB transfers, 1024 per batch.
        let g = 0x40_915f_0107u64;
        assert_eq!(gencap::max_transfer_size(g), 1 << 31);
        assert_eq!(gencap::max_batch_size(g), 1024);
        assert_ne!(g & gencap::BLOCK_ON_FAULT, 0);
        assert_ne!(g & gencap::OVERLAP_COPY, 0);
        assert_ne!(g & gencap::CACHE_CONTROL_MEM, 0);
        assert_ne!(g & gencap::DEST_READBACK, 0);
    }

    #[test]
    fn flag_and_opcode_values_match_dsa_md() {
        assert_eq!(
            [
                flag::FENCE,
                flag::BOF,
                flag::CRAV,
                flag::RCR,
                flag::RCI,
                flag::CRSTS,
                flag::CHECK_RESULT,
                flag::CC
            ],
            [0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x80, 0x100]
        );
        assert_eq!(
            [
                flag::ADDR1_TCS,
                flag::ADDR2_TCS,
                flag::ADDR3_TCS,
                flag::CR_TCS,
                flag::STORD,
                flag::DRDBK,
                flag::DSTS
            ],
            [0x200, 0x400, 0x800, 0x1000, 0x2000, 0x4000, 0x8000]
        );
        assert_eq!(
            [
                opcode::NOOP,
                opcode::BATCH,
                opcode::DRAIN,
                opcode::MEMMOVE,
                opcode::MEMFILL,
                opcode::CFLUSH
            ],
            [0, 1, 2, 3, 4, 0x20]
        );
    }
}
