//! DSA completion records: the 32-byte hardware layout, status codes, and
//! [`CrCell`], the atomic twin the engine and the emulator share.
//!
//! Ordering contract (DSA.md 4.3): whoever writes a record writes bytes
//! 1..32 first and stores the status byte last with release ordering; a
//! reader loads the status with acquire ordering and reads the other fields
//! only after it saw a non-zero status. [`CrCell::publish`] and
//! [`CrCell::status`] + [`CrCell::snapshot`] implement the two sides.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Completion status codes (byte 0, bits 6:0). DSA.md 4.2.
pub mod status {
    pub const NONE: u8 = 0x00;
    pub const SUCCESS: u8 = 0x01;
    pub const SUCCESS_PRED: u8 = 0x02;
    pub const PAGE_FAULT_NOBOF: u8 = 0x03;
    pub const PAGE_FAULT_IR: u8 = 0x04;
    pub const BATCH_FAIL: u8 = 0x05;
    pub const BATCH_PAGE_FAULT: u8 = 0x06;
    pub const DR_OFFSET_NOINC: u8 = 0x07;
    pub const DR_OFFSET_ERANGE: u8 = 0x08;
    pub const DIF_ERR: u8 = 0x09;
    pub const BAD_OPCODE: u8 = 0x10;
    pub const INVALID_FLAGS: u8 = 0x11;
    pub const NOZERO_RESERVE: u8 = 0x12;
    pub const XFER_ERANGE: u8 = 0x13;
    pub const DESC_CNT_ERANGE: u8 = 0x14;
    pub const DR_ERANGE: u8 = 0x15;
    pub const OVERLAP_BUFFERS: u8 = 0x16;
    pub const DCAST_ERR: u8 = 0x17;
    pub const DESCLIST_ALIGN: u8 = 0x18;
    pub const INT_HANDLE_INVAL: u8 = 0x19;
    pub const CRA_XLAT: u8 = 0x1a;
    pub const CRA_ALIGN: u8 = 0x1b;
    pub const ADDR_ALIGN: u8 = 0x1c;
    pub const PRIV_BAD: u8 = 0x1d;
    pub const TRAFFIC_CLASS_CONF: u8 = 0x1e;
    pub const PFAULT_RDBA: u8 = 0x1f;
    pub const HW_ERR1: u8 = 0x20;
    pub const HW_ERR_DRB: u8 = 0x21;
    pub const TRANSLATION_FAIL: u8 = 0x22;
    pub const DRAIN_EVL: u8 = 0x26;
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
    pub fn invalid_flags(&self) -> u32 {
        u32::from_le_bytes([
            self.op_specific[0],
            self.op_specific[1],
            self.op_specific[2],
            0,
        ])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_and_snapshot_round_trip() {
        let c = CrCell::default();
        assert_eq!(c.status(), 0);
        let mut r = CompletionRecord {
            status: status::PAGE_FAULT_NOBOF | status::WRITE_FAULT,
            result: 1,
            bytes_completed: 12345,
            fault_addr: 0xdead_b000,
            ..Default::default()
        };
        r.op_specific[0..3].copy_from_slice(&[0x40, 0x02, 0x01]);
        c.publish(&r);
        assert_eq!(c.status(), 0x83);
        let s = c.snapshot();
        assert_eq!(s, r);
        assert_eq!(s.code(), status::PAGE_FAULT_NOBOF);
        assert!(s.write_fault());
        assert_eq!(s.invalid_flags(), 0x01_0240);
        // SAFETY: `c` is a live, aligned CrCell for this scope.
        assert_ne!(unsafe { *c.monitor_word() }, 0);
        c.clear();
        assert_eq!(c.snapshot(), CompletionRecord::default());
        // SAFETY: as above.
        assert_eq!(unsafe { *c.monitor_word() }, 0);
        // SAFETY: `c.addr()` is the address of the live CrCell `c`.
        let same = unsafe { CrCell::at(c.addr()) };
        same.set_status(status::SUCCESS);
        assert_eq!(c.status(), 1);
        assert!(!c.replace_status(0, status::SW_NOT_EXECUTED));
        assert!(c.replace_status(1, 0));
    }

    #[test]
    fn validation_errors_are_the_pre_execution_codes() {
        for c in 0u8..=0x7f {
            let v = status::is_validation_error(c);
            let expect = (0x10..=0x1e).contains(&c) && c != 0x1a;
            assert_eq!(v, expect, "code {c:#x}");
        }
        assert!(!status::is_validation_error(status::HW_ERR1));
    }

    #[test]
    fn software_statuses_are_unused_hardware_codes() {
        for s in [status::SW_PENDING, status::SW_NOT_EXECUTED] {
            assert!(s & status::WRITE_FAULT == 0);
            assert!(s > status::BATCH_EVL_ERR);
        }
    }
}
