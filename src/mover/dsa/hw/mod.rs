//! The hardware interface: everything the device and the kernel define
//! that one operation meets on its way through the device, in that order.
//!
//! 1. **Descriptors** (DSA.md sections 3.1-3.5): the 64-byte
//!    [`Descriptor`] layout, every [`opcode`], [`flag`] and [`gencap`] bit
//!    the engine uses, the [`OpCap`] bitmap of enabled operations, the
//!    flag policy ([`data_flags`], [`flush_flags`]) and the builders.
//! 2. **Portals** (section 2): the [`Portal`] trait the engine submits
//!    through and [`HwPortal`], the real one (MOVDIR64B, ENQCMD or
//!    `write(2)`; the instructions themselves are [`crate::arch`]'s).
//! 3. **Completion records** (section 4): the 32-byte
//!    [`CompletionRecord`] layout, the [`status`] codes, and [`CrCell`], the
//!    atomic record the device writes and the engine polls.
//!
//! Work-queue discovery through sysfs (section 1) is [`discovery`], and
//! the choice of submission route (mapped portal or `write(2)`, section 2
//! and 12.2) is `route.rs`, each in its own file: they run when an engine
//! is opened, never per operation.
//!
//! Values are pinned to DSA.md and to the kernel's `linux/idxd.h`
//! (`struct dsa_hw_desc`, `struct dsa_completion_record`,
//! `IDXD_OP_FLAG_*`, `enum dsa_opcode`, `DSA_COMP_*`): the test `idxd_h`
//! compiles a C program against the installed kernel header and compares
//! every value and offset.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

use discovery::WqMode;

pub mod discovery;
mod route;

pub use route::{choose_route, cpu_support, probe_write, CpuSupport, Route, PROBE_TIMEOUT};

// ---------------------------------------------------------------------------
// 1. Descriptors (DSA.md sections 3.1-3.5)
// ---------------------------------------------------------------------------

/// Descriptor opcodes (byte 7 of a descriptor). DSA.md 3.2.
pub mod opcode {
    pub const NOOP: u8 = 0x00;
    pub const BATCH: u8 = 0x01;
    pub const DRAIN: u8 = 0x02;
    pub const MEMMOVE: u8 = 0x03;
    pub const MEMFILL: u8 = 0x04;
    #[cfg(test)]
    pub const COMPARE: u8 = 0x05;
    #[cfg(test)]
    pub const COMPVAL: u8 = 0x06;
    #[cfg(test)]
    pub const CR_DELTA: u8 = 0x07;
    #[cfg(test)]
    pub const AP_DELTA: u8 = 0x08;
    #[cfg(test)]
    pub const DUALCAST: u8 = 0x09;
    #[cfg(test)]
    pub const CRCGEN: u8 = 0x10;
    #[cfg(test)]
    pub const COPY_CRC: u8 = 0x11;
    #[cfg(test)]
    pub const DIF_CHECK: u8 = 0x12;
    #[cfg(test)]
    pub const DIF_INS: u8 = 0x13;
    #[cfg(test)]
    pub const DIF_STRP: u8 = 0x14;
    #[cfg(test)]
    pub const DIF_UPDT: u8 = 0x15;
    pub const CFLUSH: u8 = 0x20;
}

/// Descriptor flags (24-bit field at byte 4). DSA.md 3.3.
pub mod flag {
    pub const FENCE: u32 = 1 << 0;
    pub const BOF: u32 = 1 << 1;
    pub const CRAV: u32 = 1 << 2;
    pub const RCR: u32 = 1 << 3;
    #[cfg(test)]
    pub const RCI: u32 = 1 << 4;
    #[cfg(test)]
    pub const CRSTS: u32 = 1 << 5;
    /// Bit 6 is reserved.
    #[cfg(test)]
    pub const RESERVED_6: u32 = 1 << 6;
    #[cfg(test)]
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
    pub const DEST_READBACK: u64 = 1 << 8;
    #[cfg(test)]
    pub const MAX_XFER_SHIFT: u32 = 16;
    #[cfg(test)]
    pub const MAX_XFER_BITS: u64 = 0x1f;
    #[cfg(test)]
    pub const MAX_BATCH_SHIFT: u32 = 21;
    #[cfg(test)]
    pub const MAX_BATCH_BITS: u64 = 0xf;

    /// Device maximum transfer size encoded in bits 20:16 (2^field bytes).
    #[cfg(test)]
    pub fn max_transfer_size(gen_cap: u64) -> u64 {
        1u64 << ((gen_cap >> MAX_XFER_SHIFT) & MAX_XFER_BITS)
    }

    /// Device maximum batch size encoded in bits 24:21 (2^field).
    #[cfg(test)]
    pub fn max_batch_size(gen_cap: u64) -> u64 {
        1u64 << ((gen_cap >> MAX_BATCH_SHIFT) & MAX_BATCH_BITS)
    }
}

/// A 256-bit operation bitmap (`op_cap`, `op_config`): bit n = opcode n.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCap(pub [u64; 4]);

impl OpCap {
    /// Every opcode allowed.
    #[cfg(test)]
    pub const ALL: OpCap = OpCap([u64::MAX; 4]);

    /// A bitmap with exactly `ops` set.
    pub fn of(ops: &[u8]) -> OpCap {
        let mut c = OpCap::default();
        for &op in ops {
            c.0[usize::from(op / 64)] |= 1 << (op % 64);
        }
        c
    }

    /// The DSA 1.0 operations every device has (NOOP, BATCH, DRAIN,
    /// MEMMOVE, MEMFILL, CFLUSH): what discovery assumes when `op_cap` is
    /// missing or in no format a kernel printed (DSA.md 12.1).
    pub fn dsa1_baseline() -> OpCap {
        OpCap::of(&[
            opcode::NOOP,
            opcode::BATCH,
            opcode::DRAIN,
            opcode::MEMMOVE,
            opcode::MEMFILL,
            opcode::CFLUSH,
        ])
    }

    /// Parse the sysfs text in any of the three formats kernels printed
    /// (DSA.md 12.1):
    /// - 5.6 to early 5.11: one `%#llx` word, opcodes 0-63
    ///   (`0x1003f03ff`);
    /// - 5.12 to 6.0 (and 5.10.y/5.11.y backports): four `%#llx` 64-bit
    ///   words separated by spaces, **least** significant first
    ///   (`0x1003f03ff 0x0 0x0 0x0`);
    /// - 6.1 and later (`%*pb`): eight 32-bit hex words separated by
    ///   commas, **most** significant first (`00000000,...,003f03ff`).
    ///
    /// Anything else (another word count, mixed separators, a word too
    /// wide for its format, a non-hex digit) is `None`.
    pub fn parse(text: &str) -> Option<OpCap> {
        let t = text.trim();
        let mut bits = [0u64; 4];
        if t.contains(',') {
            let words: Vec<&str> = t.split(',').collect();
            if words.len() != 8 {
                return None;
            }
            for (i, w) in words.iter().rev().enumerate() {
                bits[i / 2] |= hex_word(w, 8)? << (32 * (i % 2));
            }
        } else {
            let words: Vec<&str> = t.split_ascii_whitespace().collect();
            if !matches!(words.len(), 1 | 4) {
                return None;
            }
            for (i, w) in words.iter().enumerate() {
                let w = w
                    .strip_prefix("0x")
                    .or_else(|| w.strip_prefix("0X"))
                    .unwrap_or(w);
                bits[i] = hex_word(w, 16)?;
            }
        }
        Some(OpCap(bits))
    }

    pub fn has(&self, op: u8) -> bool {
        self.0[usize::from(op / 64)] >> (op % 64) & 1 != 0
    }

    pub fn and(self, o: OpCap) -> OpCap {
        OpCap([
            self.0[0] & o.0[0],
            self.0[1] & o.0[1],
            self.0[2] & o.0[2],
            self.0[3] & o.0[3],
        ])
    }

    pub fn without(self, op: u8) -> OpCap {
        let mut c = self;
        c.0[usize::from(op / 64)] &= !(1 << (op % 64));
        c
    }
}

/// A word of 1 to `digits` hex digits (no sign, no prefix).
fn hex_word(w: &str, digits: usize) -> Option<u64> {
    if w.is_empty() || w.len() > digits || !w.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(w, 16).ok()
}

/// PASID field (bits 19:0 of the first dword).
#[cfg(test)]
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
/// the caller asked for no cache hint or a durable write (and only when
/// GENCAP bit 2 says the device has cache control for memory ops); DRDBK
/// for durable writes only when GENCAP bit 8 says the device has
/// destination readback. A durable write never sets CC: CC allocates the
/// destination in the LLC, which is outside the persistence domain on ADR
/// platforms, so the readback would find the data there (DSA.md 12.3).
/// Bit 15 (DSTS) is never set.
pub fn data_flags(gen_cap: u64, hints: Hints) -> u32 {
    let mut f = flag::ALWAYS;
    if !hints.no_cache && !hints.durable && gen_cap & gencap::CACHE_CONTROL_MEM != 0 {
        f |= flag::CC;
    }
    if hints.durable && gen_cap & gencap::DEST_READBACK != 0 {
        f |= flag::DRDBK;
    }
    f
}

/// Flags for a CFLUSH descriptor: CRAV|RCR, plus CC (write back and keep
/// the lines, like CLWB) unless the caller asked for no cache hint, when
/// GENCAP bit 3 allows it (it varies by part: Sapphire Rapids devices
/// report both 0x40915f0107, without it, and 0x40915f010f, with it).
/// Without CC the lines are also invalidated. Either way the lines are
/// written back, so a flush is durable with or without CC.
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
    #[cfg(test)]
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

    /// NOOP that asks for no completion record (no CRAV, no RCR): the
    /// element that pads a one-element batch. Its result is in the batch
    /// record; a record of its own could be written after the batch record
    /// (DSA.md 12.3), when the batch memory may already be reused.
    pub fn noop_without_record() -> Self {
        Self::with(opcode::NOOP, 0, 0)
    }

    /// DRAIN: completes after every descriptor submitted before it.
    #[cfg(test)]
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

// ---------------------------------------------------------------------------
// 2. Portals (DSA.md section 2)
//
// `HwPortal` opens `/dev/dsa/wq<m>.<n>`, maps its 4 KiB portal
// (`PROT_WRITE`, `MAP_SHARED | MAP_POPULATE`) and submits with MOVDIR64B
// (dedicated WQ) or ENQCMD (shared WQ) after an SFENCE, rotating the target
// cache line per submission. When the kernel refuses the mapping with EPERM
// (devices that are not "user submission safe", Linux 6.9.1+ without
// CAP_SYS_RAWIO) or the CPU lacks the instruction (always, off x86-64; for
// ENQCMD also when the kernel hides its `enqcmd` flag), descriptors go
// through `write(2)`, after an SFENCE, but only once a NOOP probe showed
// the kernel has that path (6.9.1+; before, every write is EINVAL).
// `choose_route` decides; the emulated WQ decides with it too. The
// instructions themselves live in `crate::arch`.
// ---------------------------------------------------------------------------

/// Portal size: one page; the kernel rejects larger mappings.
pub const PORTAL_SIZE: usize = 4096;

/// What a submission did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// The WQ took the descriptor (for a dedicated WQ this only means the
    /// posted write happened: flow control is the caller's job).
    Accepted,
    /// Shared WQ full (ENQCMD ZF=1, `write(2)` EAGAIN): try again later.
    Retry,
}

/// A submission the WQ refused outright (`write(2)` errors such as EINVAL
/// for a misaligned completion address or BATCH on a v1 device).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortalError {
    pub errno: i32,
}

/// How a portal submits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Movdir64b,
    Enqcmd,
    Write,
    Emulated,
}

/// Something descriptors can be submitted to: a real WQ portal or the
/// emulated work queue.
pub trait Portal: Send + Sync {
    /// Submit one descriptor. The 64 bytes are consumed before this
    /// returns; `desc` may be reused immediately.
    ///
    /// # Safety
    /// The device will access memory on the descriptor's behalf until it
    /// writes the completion record: every address in `desc` (source,
    /// destination, batch list and, for a batch, every address in each
    /// listed descriptor) must be valid for the accesses its opcode implies
    /// until then, and every completion address must be 32-byte aligned
    /// memory that stays allocated and is accessed only atomically by
    /// others until the record is written.
    unsafe fn submit(&self, desc: &Descriptor) -> Result<Submitted, PortalError>;

    /// The submission method in use.
    fn method(&self) -> Method;

    /// What the device's error channel says (DSA.md 12.3): asked only
    /// when a completion record is overdue, never per operation. A portal
    /// without an error channel knows nothing: [`DeviceState::Running`].
    fn device_state(&self) -> DeviceState {
        DeviceState::Running
    }
}

/// The state of the device behind a portal, as far as it can be known
/// from user space: `poll(2)` on the WQ file and the sysfs `state` files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceState {
    /// Enabled, no error reported.
    Running,
    /// Enabled, but the device reported a software error (`poll(2)`
    /// returns `POLLIN` while its SWERROR register is valid): some
    /// descriptor may never get a record. The device still works, and may
    /// still write any record late.
    Error,
    /// The device or the WQ left the `enabled` state (`halted`,
    /// `disabled`, ...): it writes nothing any more. The text says which,
    /// and what its state is.
    Stopped(String),
}

/// Submits one descriptor through `write`, a `write(2)` on the WQ file:
/// SFENCE first (the kernel's write path does not fence), then the 64
/// bytes. EAGAIN (a full shared WQ after the kernel's own retries), EINTR
/// and a write that took nothing mean "retry"; other errors refuse the
/// descriptor.
pub fn submit_write(
    desc: &Descriptor,
    write: impl FnOnce(&[u8]) -> Result<usize, i32>,
) -> Result<Submitted, PortalError> {
    crate::arch::store_fence();
    match write(desc.as_bytes()) {
        Ok(64) => Ok(Submitted::Accepted),
        Ok(_) | Err(libc::EAGAIN | libc::EINTR) => Ok(Submitted::Retry),
        Err(errno) => Err(PortalError { errno }),
    }
}

/// A real work-queue portal.
pub struct HwPortal {
    fd: OwnedFd,
    page: Option<NonNull<u8>>,
    method: Method,
    line: AtomicUsize,
    /// The sysfs `state` files of the device and the WQ, with their
    /// names ([`watching`](Self::watching)); empty: not consulted.
    state_files: Vec<(String, std::path::PathBuf)>,
}

// SAFETY: the mapping is a device portal page that only receives whole
// 64-byte MOVDIR64B/ENQCMD writes, which the device serialises; the file
// descriptor is thread-safe for write(2). Nothing else is shared.
unsafe impl Send for HwPortal {}
// SAFETY: see the `Send` impl; `line` is atomic.
unsafe impl Sync for HwPortal {}

impl HwPortal {
    /// Open the WQ character device and pick the submission method.
    #[cfg(test)]
    pub fn open(path: &Path, mode: WqMode) -> io::Result<HwPortal> {
        HwPortal::open_with(path, mode, cpu_support(), false, PROBE_TIMEOUT)
    }

    /// [`open`](Self::open) with explicit CPU support, an option to skip
    /// the mapping (`MINIASYNC_DSA_FORCE_WRITE`) and the bound of the
    /// `write(2)` probe ([`choose_route`]). The error is the OS error of
    /// `open`, or (kind `Other`) why neither route works.
    pub fn open_with(
        path: &Path,
        mode: WqMode,
        cpu: CpuSupport,
        force_write: bool,
        probe_timeout: std::time::Duration,
    ) -> io::Result<HwPortal> {
        let fd = open_wq(path)?;
        let route = choose_route(
            mode,
            cpu,
            force_write,
            || map_portal(&fd),
            || probe_write(&|b| write_fd(&fd, b), probe_timeout),
        )
        .map_err(io::Error::other)?;
        let (page, method) = match route {
            Route::Mapped(p, m) => (Some(p), m),
            Route::Write => (None, Method::Write),
        };
        Ok(HwPortal {
            fd,
            page,
            method,
            line: AtomicUsize::new(0),
            state_files: Vec::new(),
        })
    }

    /// A portal that writes to `path` without mapping or probing it (tests
    /// of the bytes a `write(2)` submission sends).
    #[cfg(test)]
    pub fn open_write_unprobed(path: &Path) -> io::Result<HwPortal> {
        Ok(HwPortal {
            fd: open_wq(path)?,
            page: None,
            method: Method::Write,
            line: AtomicUsize::new(0),
            state_files: Vec::new(),
        })
    }

    /// Consult `<sysfs>/dsa<m>/state` and `<sysfs>/wq<m>.<n>/state` (for
    /// the WQ named `wq`) in [`Portal::device_state`].
    pub fn watching(mut self, sysfs: &Path, wq: &str) -> HwPortal {
        let dev = wq
            .strip_prefix("wq")
            .and_then(|r| r.split_once('.'))
            .map(|(d, _)| format!("dsa{d}"));
        self.state_files = dev
            .into_iter()
            .chain([wq.to_string()])
            .map(|n| {
                let p = sysfs.join(&n).join("state");
                (n, p)
            })
            .collect();
        self
    }

    fn next_line(&self) -> *mut u8 {
        let page = self.page.expect("instruction methods have a mapping");
        let off = self.line.fetch_add(64, Ordering::Relaxed) % PORTAL_SIZE;
        // SAFETY: `off` is a multiple of 64 below the page size, so the
        // result stays inside the mapped portal page.
        unsafe { page.as_ptr().add(off) }
    }
}

fn open_wq(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a NUL-terminated path; open has no other inputs.
    let raw = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `write(2)` of `b` to `fd`: the bytes taken, or the errno.
fn write_fd(fd: &OwnedFd, b: &[u8]) -> Result<usize, i32> {
    // SAFETY: the kernel reads `b.len()` bytes from the live slice `b`.
    let n = unsafe { libc::write(fd.as_raw_fd(), b.as_ptr().cast(), b.len()) };
    usize::try_from(n).map_err(|_| {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    })
}

/// Maps the portal page, or the errno of `mmap`.
fn map_portal(fd: &OwnedFd) -> Result<NonNull<u8>, i32> {
    // SAFETY: a fresh shared mapping of one page of `fd`; the kernel
    // chooses the address, so no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            PORTAL_SIZE,
            libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    NonNull::new(p.cast::<u8>()).ok_or(libc::EIO)
}

impl Drop for HwPortal {
    fn drop(&mut self) {
        if let Some(p) = self.page {
            // SAFETY: `p` is the page mapped in `open_with` and nothing
            // refers to it after the portal is dropped.
            unsafe { libc::munmap(p.as_ptr().cast(), PORTAL_SIZE) };
        }
    }
}

/// The descriptor's 64 bytes as the instructions read them.
fn desc_ptr(desc: &Descriptor) -> *const u8 {
    core::ptr::from_ref(desc).cast()
}

impl Portal for HwPortal {
    unsafe fn submit(&self, desc: &Descriptor) -> Result<Submitted, PortalError> {
        match self.method {
            Method::Movdir64b => {
                // SAFETY: the method is only chosen when the CPU has
                // MOVDIR64B and the portal is mapped; `desc` is 64 bytes,
                // 64-byte aligned by type; the caller vouches for its
                // addresses.
                unsafe { crate::arch::movdir64b(self.next_line(), desc_ptr(desc)) };
                Ok(Submitted::Accepted)
            }
            Method::Enqcmd => {
                // SAFETY: as above, for ENQCMD on a shared WQ.
                let ok = unsafe { crate::arch::enqcmd(self.next_line(), desc_ptr(desc)) };
                Ok(if ok {
                    Submitted::Accepted
                } else {
                    Submitted::Retry
                })
            }
            Method::Write | Method::Emulated => submit_write(desc, |b| write_fd(&self.fd, b)),
        }
    }

    fn method(&self) -> Method {
        self.method
    }

    /// The sysfs `state` of the device and the WQ (anything but `enabled`
    /// is stopped; `quiescing`, the kernel draining the queue, is not yet;
    /// an unreadable file says nothing), then `poll(2)` on the WQ file:
    /// `POLLIN` means the device's SWERROR register is valid; `POLLERR`,
    /// `POLLHUP` or `POLLNVAL` (a file this process may no longer use)
    /// are reported the same way.
    fn device_state(&self) -> DeviceState {
        let mut error = false;
        for (name, path) in &self.state_files {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            match text.trim() {
                "" | "enabled" => {}
                "quiescing" => error = true,
                s => return DeviceState::Stopped(format!("{name} is {s}")),
            }
        }
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a zero timeout never blocks.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        let bad = libc::POLLIN | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
        if error || (n > 0 && p.revents & bad != 0) {
            DeviceState::Error
        } else {
            DeviceState::Running
        }
    }
}

// ---------------------------------------------------------------------------
// 3. Completion records (DSA.md section 4)
//
// Ordering contract (DSA.md 4.3): whoever writes a record writes bytes 1..32
// first and stores the status byte last with release ordering; a reader
// loads the status with acquire ordering and reads the other fields only
// after it saw a non-zero status. `CrCell::publish` and `CrCell::status` +
// `CrCell::snapshot` implement the two sides.
// ---------------------------------------------------------------------------

/// Completion status codes (byte 0, bits 6:0). DSA.md 4.2.
pub mod status {
    pub const NONE: u8 = 0x00;
    pub const SUCCESS: u8 = 0x01;
    pub const SUCCESS_PRED: u8 = 0x02;
    pub const PAGE_FAULT_NOBOF: u8 = 0x03;
    pub const PAGE_FAULT_IR: u8 = 0x04;
    pub const BATCH_FAIL: u8 = 0x05;
    pub const BATCH_PAGE_FAULT: u8 = 0x06;
    #[cfg(test)]
    pub const DR_OFFSET_NOINC: u8 = 0x07;
    #[cfg(test)]
    pub const DR_OFFSET_ERANGE: u8 = 0x08;
    #[cfg(test)]
    pub const DIF_ERR: u8 = 0x09;
    pub const BAD_OPCODE: u8 = 0x10;
    pub const INVALID_FLAGS: u8 = 0x11;
    pub const NOZERO_RESERVE: u8 = 0x12;
    pub const XFER_ERANGE: u8 = 0x13;
    pub const DESC_CNT_ERANGE: u8 = 0x14;
    #[cfg(test)]
    pub const DR_ERANGE: u8 = 0x15;
    pub const OVERLAP_BUFFERS: u8 = 0x16;
    #[cfg(test)]
    pub const DCAST_ERR: u8 = 0x17;
    pub const DESCLIST_ALIGN: u8 = 0x18;
    #[cfg(test)]
    pub const INT_HANDLE_INVAL: u8 = 0x19;
    /// Reported in SWERROR, never in a record user space sees: on DSA 2.0
    /// the kernel resolves a record fault and writes the real record.
    pub const CRA_XLAT: u8 = 0x1a;
    #[cfg(test)]
    pub const CRA_ALIGN: u8 = 0x1b;
    #[cfg(test)]
    pub const ADDR_ALIGN: u8 = 0x1c;
    pub const PRIV_BAD: u8 = 0x1d;
    pub const TRAFFIC_CLASS_CONF: u8 = 0x1e;
    #[cfg(test)]
    pub const PFAULT_RDBA: u8 = 0x1f;
    #[cfg(test)]
    pub const HW_ERR1: u8 = 0x20;
    #[cfg(test)]
    pub const HW_ERR_DRB: u8 = 0x21;
    pub const TRANSLATION_FAIL: u8 = 0x22;
    #[cfg(test)]
    pub const BATCH_EVL_ERR: u8 = 0x27;

    /// Mask of the code in the status byte (`DSA_COMP_STATUS_MASK`).
    pub const MASK: u8 = 0x7f;
    /// Bit 7: the page fault was on a write (`DSA_COMP_STATUS_WRITE`).
    pub const WRITE_FAULT: u8 = 0x80;

    /// Software-only: the op waits for a WQ credit, or is an element of a
    /// batch (the device overwrites it with the element's real status; an
    /// element still reading it after its batch was retired never ran).
    /// Never written by hardware (0x7f is an unused code); it keeps the
    /// op's monitor word non-zero so pollers come back.
    pub const SW_PENDING: u8 = 0x7f;
    /// Software-only: set on an op that failed before reaching the device,
    /// so its monitor word is non-zero.
    pub const SW_NOT_EXECUTED: u8 = 0x7e;

    /// Codes reported before any memory was touched (descriptor
    /// validation): re-running the whole piece on the CPU is safe.
    pub fn is_validation_error(code: u8) -> bool {
        (BAD_OPCODE..=TRAFFIC_CLASS_CONF).contains(&(code & MASK)) && code & MASK != CRA_XLAT
    }
}

/// The fault-info byte of a completion record (byte 2; DSA 2.0, 0 on
/// DSA 1.0). DSA.md 4.1. The engine matches fault addresses by page
/// whatever these say; the emulator reports them.
pub mod fault_info {
    /// Bit 0: the fault address is masked (only its page is reported).
    pub const ADDR_MASKED: u8 = 1 << 0;
    /// Bits 3:1: the operand that faulted.
    pub const OPERAND_SHIFT: u32 = 1;
}

/// A 32-byte DSA completion record (`struct dsa_completion_record`),
/// 32-byte aligned. Plain data: a snapshot or a value to publish.
#[repr(C, align(32))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompletionRecord {
    /// Bits 6:0 status code, bit 7 write-fault indicator.
    pub status: u8,
    /// Memmove partial completion: 0 ascending, 1 descending. Batch: 1 if
    /// an element failed. Compare: 0 equal.
    pub result: u8,
    /// DSA 2.0 fault info; 0 on DSA 1.0.
    pub fault_info: u8,
    pub rsvd: u8,
    /// Bytes completed (work descriptors) or descriptors completed (batch).
    pub bytes_completed: u32,
    /// Faulting address for page-fault statuses.
    pub fault_addr: u64,
    /// Invalid flags (24 bits) for status 0x11, CRC value, delta size...
    pub op_specific: [u8; 16],
}

const _: () = {
    assert!(size_of::<CompletionRecord>() == 32);
    assert!(core::mem::align_of::<CompletionRecord>() == 32);
    assert!(offset_of!(CompletionRecord, status) == 0);
    assert!(offset_of!(CompletionRecord, result) == 1);
    assert!(offset_of!(CompletionRecord, fault_info) == 2);
    assert!(offset_of!(CompletionRecord, rsvd) == 3);
    assert!(offset_of!(CompletionRecord, bytes_completed) == 4);
    assert!(offset_of!(CompletionRecord, fault_addr) == 8);
    assert!(offset_of!(CompletionRecord, op_specific) == 16);
};

impl CompletionRecord {
    /// The status code without the write-fault bit.
    pub fn code(&self) -> u8 {
        self.status & status::MASK
    }

    /// Whether a page fault was on a write (bit 7).
    pub fn write_fault(&self) -> bool {
        self.status & status::WRITE_FAULT != 0
    }

    /// The offending flag bits of an INVALID_FLAGS record (bytes 16..19).
    #[cfg(test)]
    pub fn invalid_flags(&self) -> u32 {
        u32::from_le_bytes([
            self.op_specific[0],
            self.op_specific[1],
            self.op_specific[2],
            0,
        ])
    }
}

/// A completion record alone in its 64-byte cache line. The device writes
/// the record while the CPU writes its owner's bookkeeping; in one line
/// they would contend, and the device's 32-byte write would be a partial
/// line write (read-modify-write) racing the CPU's stores. Dereferences to
/// the record.
#[repr(C, align(64))]
#[derive(Default)]
pub struct CrLine {
    cr: CrCell,
}

const _: () = {
    assert!(size_of::<CrLine>() == 64);
    assert!(core::mem::align_of::<CrLine>() == 64);
    assert!(offset_of!(CrLine, cr) == 0);
};

impl core::ops::Deref for CrLine {
    type Target = CrCell;

    fn deref(&self) -> &CrCell {
        &self.cr
    }
}

/// A completion record as shared memory: the device (or the emulator)
/// writes it while the engine polls it, so every field is an atomic of the
/// hardware width. Same layout as [`CompletionRecord`].
#[repr(C, align(32))]
#[derive(Default)]
pub struct CrCell {
    status: AtomicU8,
    result: AtomicU8,
    fault_info: AtomicU8,
    rsvd: AtomicU8,
    bytes_completed: AtomicU32,
    fault_addr: AtomicU64,
    op_specific: [AtomicU32; 4],
}

const _: () = {
    assert!(size_of::<CrCell>() == 32);
    assert!(core::mem::align_of::<CrCell>() == 32);
    assert!(offset_of!(CrCell, status) == offset_of!(CompletionRecord, status));
    assert!(offset_of!(CrCell, result) == offset_of!(CompletionRecord, result));
    assert!(offset_of!(CrCell, bytes_completed) == offset_of!(CompletionRecord, bytes_completed));
    assert!(offset_of!(CrCell, fault_addr) == offset_of!(CompletionRecord, fault_addr));
    assert!(offset_of!(CrCell, op_specific) == offset_of!(CompletionRecord, op_specific));
};

impl CrCell {
    /// The address the device writes (a descriptor's completion address).
    pub fn addr(&self) -> u64 {
        self as *const CrCell as u64
    }

    /// The status byte, acquire: after a non-zero result every other field
    /// (and the operation's destination data) is visible.
    #[inline]
    pub fn status(&self) -> u8 {
        self.status.load(Ordering::Acquire)
    }

    /// The first 8 bytes as one word: 0 while the device works on the
    /// current descriptor, non-zero once a status was written. This is the
    /// address handed out for `FUTURE_NOTIFIER_POLLER`.
    pub fn monitor_word(&self) -> *const u64 {
        (self as *const CrCell).cast::<u64>()
    }

    /// All fields. Call only after [`status`](Self::status) returned
    /// non-zero; the acquire there orders these relaxed loads.
    pub fn snapshot(&self) -> CompletionRecord {
        let mut op_specific = [0u8; 16];
        for (i, w) in self.op_specific.iter().enumerate() {
            op_specific[i * 4..i * 4 + 4].copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        CompletionRecord {
            status: self.status.load(Ordering::Acquire),
            result: self.result.load(Ordering::Relaxed),
            fault_info: self.fault_info.load(Ordering::Relaxed),
            rsvd: self.rsvd.load(Ordering::Relaxed),
            bytes_completed: self.bytes_completed.load(Ordering::Relaxed),
            fault_addr: self.fault_addr.load(Ordering::Relaxed),
            op_specific,
        }
    }

    /// Zero the whole record before a submission (DML zeroes it too). The
    /// submission's fence/queue hand-off orders these stores before the
    /// device's writes.
    pub fn clear(&self) {
        self.result.store(0, Ordering::Relaxed);
        self.fault_info.store(0, Ordering::Relaxed);
        self.rsvd.store(0, Ordering::Relaxed);
        self.bytes_completed.store(0, Ordering::Relaxed);
        self.fault_addr.store(0, Ordering::Relaxed);
        for w in &self.op_specific {
            w.store(0, Ordering::Relaxed);
        }
        self.status.store(0, Ordering::Release);
    }

    /// Store only the status byte (software statuses).
    pub fn set_status(&self, s: u8) {
        self.status.store(s, Ordering::Release);
    }

    /// Replace the status only if it is still `old` (software marking
    /// racing with a device write).
    pub fn replace_status(&self, old: u8, new: u8) -> bool {
        self.status
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Write a whole record the way hardware and the kernel do: bytes 1..32
    /// first, then a release store of the status.
    #[cfg(test)]
    pub fn publish(&self, r: &CompletionRecord) {
        self.publish_fields(r);
        self.status.store(r.status, Ordering::Release);
    }

    /// Bytes 1..32 only (the emulator's hostile mode delays the status).
    pub fn publish_fields(&self, r: &CompletionRecord) {
        self.result.store(r.result, Ordering::Relaxed);
        self.fault_info.store(r.fault_info, Ordering::Relaxed);
        self.rsvd.store(r.rsvd, Ordering::Relaxed);
        self.bytes_completed
            .store(r.bytes_completed, Ordering::Relaxed);
        self.fault_addr.store(r.fault_addr, Ordering::Relaxed);
        for (i, w) in self.op_specific.iter().enumerate() {
            let b = &r.op_specific[i * 4..i * 4 + 4];
            w.store(
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                Ordering::Relaxed,
            );
        }
    }

    /// View the record at a raw completion address.
    ///
    /// # Safety
    /// `addr` must be 32-byte aligned, point to 32 bytes that stay
    /// allocated for the lifetime `'a`, and be accessed by everyone else
    /// only atomically (it is a `CrCell` or equivalent device memory).
    pub unsafe fn at<'a>(addr: u64) -> &'a CrCell {
        // SAFETY: alignment, size, lifetime and atomic-only access are the
        // caller's obligations; `CrCell` has no invalid bit patterns.
        unsafe { &*(addr as usize as *const CrCell) }
    }
}
