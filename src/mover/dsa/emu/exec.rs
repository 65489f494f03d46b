//! What the emulated engines do with a descriptor: validate it with the
//! real status codes (DSA.md 8.4), perform its memory effect, stop at the
//! first non-resident operand page or at an injected fault (8.6), run
//! batches and drains (8.3, 8.7) with element records made visible in the
//! configured [`BatchOrder`] (12.3), and write the completion record fields
//! first and status last (8.8).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::device::{wait_older, Count, Shared, SwErrorKind};
use super::pagemap::Cause;
use super::{BatchOrder, FaultAddr};
use crate::mover::dsa::engine::fault::{first_fault, page_size, page_state};
use crate::mover::dsa::hw::{
    fault_info, flag, gencap, opcode, status, CompletionRecord, CrCell, Descriptor,
    PASID_RESERVED_MASK,
};

/// An outcome forced on a descriptor by a test ([`EmuDevice::force`]).
/// Test builds only: in the shipped emulator the type has no values, so
/// every forced branch below is statically unreachable and compiled out.
///
/// [`EmuDevice::force`]: super::EmuDevice::force
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forced {
    /// Complete with this status byte and do nothing.
    Status(u8),
    /// Page fault after `bytes_completed` bytes in processing order (the
    /// bytes before it are really done); `write` picks the operand.
    Fault { bytes_completed: u32, write: bool },
    /// The same, but the record names `addr` as the fault address, as
    /// is (a device whose report matches no operand byte).
    FaultAt {
        bytes_completed: u32,
        write: bool,
        addr: u64,
    },
    /// BATCH: the descriptor list faults at element `k`.
    ListFault(u32),
    /// Run normally (lets a test aim a later forced outcome).
    Pass,
    /// Complete with exactly this record and do nothing.
    Record(CompletionRecord),
    /// Keep the engine on this descriptor until
    /// [`EmuDevice::open_hold`](super::EmuDevice::open_hold)`(id)`, then
    /// run it normally.
    Hold(u32),
    /// BATCH: run the elements normally, then report this status in the
    /// batch record.
    BatchStatus(u8),
}

/// No outcome is ever forced outside the tests.
#[cfg(not(test))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forced {}

/// What a forced outcome means before the descriptor runs.
#[cfg(test)]
enum Before {
    /// The descriptor ends with this record, nothing done.
    End(CompletionRecord),
    /// It runs normally.
    Run,
    /// It runs, and this outcome applies while it does (faults).
    During(Forced),
}

impl Forced {
    #[cfg(test)]
    fn before(self, sh: &Shared) -> Before {
        match self {
            Forced::Status(s) => Before::End(rec(s)),
            Forced::Record(r) => Before::End(r),
            Forced::Hold(id) => {
                sh.wait_hold(id);
                Before::Run
            }
            Forced::Pass => Before::Run,
            f => Before::During(f),
        }
    }

    /// A forced page fault: (bytes completed, write, reported address).
    #[cfg(test)]
    fn fault(self) -> Option<(u32, bool, Option<u64>)> {
        match self {
            Forced::Fault {
                bytes_completed,
                write,
            } => Some((bytes_completed, write, None)),
            Forced::FaultAt {
                bytes_completed,
                write,
                addr,
            } => Some((bytes_completed, write, Some(addr))),
            _ => None,
        }
    }

    /// A forced descriptor-list fault at element `k`.
    #[cfg(test)]
    fn list_fault(self) -> Option<u32> {
        match self {
            Forced::ListFault(k) => Some(k),
            _ => None,
        }
    }

    /// A forced batch status.
    #[cfg(test)]
    fn batch_status(self) -> Option<u8> {
        match self {
            Forced::BatchStatus(s) => Some(s),
            _ => None,
        }
    }

    #[cfg(not(test))]
    fn fault(self) -> Option<(u32, bool, Option<u64>)> {
        match self {}
    }

    #[cfg(not(test))]
    fn list_fault(self) -> Option<u32> {
        match self {}
    }

    #[cfg(not(test))]
    fn batch_status(self) -> Option<u8> {
        match self {}
    }
}

/// xorshift64*: deterministic per seed, cheap.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Most time between a batch record and the element records it
/// overtook.
const LATE_RECORDS_US: u64 = 50;

/// An engine's reusable buffers.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Residency bytes (mincore).
    pages: Vec<u8>,
    /// Element records to write after the batch record: the element
    /// descriptor and its record.
    late: Vec<(Descriptor, CompletionRecord)>,
}

struct Ctx<'a> {
    sh: &'a Shared,
    engine: usize,
    seq: u64,
    rng: &'a mut Rng,
    scratch: &'a mut Scratch,
}

/// Spin (yielding) for a random time of at most `max_us`.
fn pause(rng: &mut Rng, max_us: u64) {
    let until = Instant::now() + Duration::from_micros(rng.below(max_us + 1));
    while Instant::now() < until {
        std::thread::yield_now();
    }
}

/// Run a descriptor taken from the WQ and write its record (for a batch,
/// then the element records that come after it).
pub(crate) fn run_top(
    sh: &Shared,
    engine: usize,
    seq: u64,
    d: &Descriptor,
    rng: &mut Rng,
    scratch: &mut Scratch,
) {
    if sh.cfg.max_delay_us > 0 {
        pause(rng, u64::from(sh.cfg.max_delay_us));
    }
    let mut cx = Ctx {
        sh,
        engine,
        seq,
        rng,
        scratch,
    };
    if halting(sh) {
        sh.tally.note(Count::Lost);
        sh.finished();
        return;
    }
    let r = execute(&mut cx, d, false);
    write_cr(&mut cx, d, r, true);
    if cx.scratch.late.is_empty() {
        return;
    }
    #[cfg(test)]
    let held = sh.hold_late_records();
    #[cfg(not(test))]
    let held = false;
    if !held {
        pause(cx.rng, LATE_RECORDS_US);
    }
    let mut late = std::mem::take(&mut cx.scratch.late);
    for (e, r) in late.drain(..) {
        write_cr(&mut cx, &e, r, false);
    }
    cx.scratch.late = late;
}

/// Whether the device is halting: nothing starts, no record is written.
fn halting(sh: &Shared) -> bool {
    sh.halting.load(Ordering::SeqCst)
}

fn rec(st: u8) -> CompletionRecord {
    CompletionRecord {
        status: st,
        ..Default::default()
    }
}

fn invalid_flags(bits: u32) -> CompletionRecord {
    let mut r = rec(status::INVALID_FLAGS);
    r.op_specific[..3].copy_from_slice(&bits.to_le_bytes()[..3]);
    r
}

/// Validation before execution, in the order DSA.md 8.4 lists it.
fn validate(cx: &Ctx<'_>, d: &Descriptor, in_batch: bool) -> Option<CompletionRecord> {
    let c = &cx.sh.cfg;
    let op = d.opcode();
    let f = d.flags();
    if d.pasid_priv & PASID_RESERVED_MASK != 0 {
        return Some(rec(status::NOZERO_RESERVE));
    }
    if d.privileged() {
        return Some(rec(status::PRIV_BAD));
    }
    if !c.ops.has(op)
        || !super::implemented_ops().has(op)
        || (in_batch && (op == opcode::BATCH || op == opcode::DRAIN))
    {
        return Some(rec(status::BAD_OPCODE));
    }
    let data = matches!(op, opcode::MEMMOVE | opcode::MEMFILL | opcode::CFLUSH);
    let mut allowed = flag::CRAV
        | flag::RCR
        | flag::ADDR1_TCS
        | flag::ADDR2_TCS
        | flag::ADDR3_TCS
        | flag::CR_TCS
        | flag::STORD
        | flag::DSTS;
    if in_batch {
        allowed |= flag::FENCE;
    }
    if data && c.block_on_fault && c.gen_cap & gencap::BLOCK_ON_FAULT != 0 {
        allowed |= flag::BOF;
    }
    match op {
        opcode::MEMMOVE | opcode::MEMFILL => {
            if c.gen_cap & gencap::CACHE_CONTROL_MEM != 0 {
                allowed |= flag::CC;
            }
            if c.gen_cap & gencap::DEST_READBACK != 0 {
                allowed |= flag::DRDBK;
            }
        }
        opcode::CFLUSH if c.gen_cap & gencap::CACHE_CONTROL_CFLUSH != 0 => allowed |= flag::CC,
        _ => {}
    }
    if f & !allowed != 0 {
        return Some(invalid_flags(f & !allowed));
    }
    if d.rsvd != 0 || d.int_handle != 0 || d.op_specific != [0; 24] {
        return Some(rec(status::NOZERO_RESERVE));
    }
    let size = u64::from(d.xfer_size);
    if data && (size == 0 || size > c.max_transfer_size) {
        return Some(rec(status::XFER_ERANGE));
    }
    if op == opcode::BATCH {
        if size < 2 || size > u64::from(c.max_batch_size) {
            return Some(rec(status::DESC_CNT_ERANGE));
        }
        if !d.src.is_multiple_of(64) {
            return Some(rec(status::DESCLIST_ALIGN));
        }
    }
    let wraps = |a: u64| a.checked_add(size).is_none();
    if (op == opcode::MEMMOVE && (wraps(d.src) || wraps(d.dst))) || (data && wraps(d.dst)) {
        return Some(rec(status::TRANSLATION_FAIL));
    }
    if op == opcode::MEMMOVE && overlaps(d) && c.gen_cap & gencap::OVERLAP_COPY == 0 {
        return Some(rec(status::OVERLAP_BUFFERS));
    }
    None
}

fn overlaps(d: &Descriptor) -> bool {
    let n = u64::from(d.xfer_size);
    d.src < d.dst + n && d.dst < d.src + n
}

fn execute(cx: &mut Ctx<'_>, d: &Descriptor, in_batch: bool) -> CompletionRecord {
    if let Some(r) = validate(cx, d, in_batch) {
        cx.sh.tally.note(Count::ValidationError);
        return r;
    }
    #[cfg(test)]
    let forced = match cx.sh.take_forced(d.opcode()).map(|f| f.before(cx.sh)) {
        Some(Before::End(r)) => return r,
        Some(Before::During(f)) => Some(f),
        Some(Before::Run) | None => None,
    };
    #[cfg(not(test))]
    let forced: Option<Forced> = None;
    match d.opcode() {
        opcode::NOOP => rec(status::SUCCESS),
        opcode::DRAIN => {
            wait_older(cx.sh, cx.engine, cx.seq);
            rec(status::SUCCESS)
        }
        opcode::BATCH => batch(cx, d, forced),
        _ => data_op(cx, d, forced),
    }
}

/// Where a data descriptor stops: the first faulting byte in processing
/// order.
#[derive(Clone, Copy)]
struct Stop {
    /// Offset of the byte in the operands.
    offset: u64,
    /// A write (destination) fault.
    write: bool,
    /// The address a forced fault reports instead of the byte's.
    report: Option<u64>,
}

/// Where a data descriptor stops, if it does.
fn fault_point(
    cx: &mut Ctx<'_>,
    d: &Descriptor,
    desc: bool,
    forced: Option<Forced>,
) -> Option<Stop> {
    let len = u64::from(d.xfer_size);
    let at_bc = |bc: u64| if desc { len - 1 - bc } else { bc };
    if let Some((bytes_completed, write, report)) = forced.and_then(Forced::fault) {
        return Some(Stop {
            offset: at_bc(u64::from(bytes_completed).min(len - 1)),
            write,
            report,
        });
    }
    let op = d.opcode();
    // The page tables, as an SVA device walks them: reads of the source
    // (memmove), writes of the destination (memmove, fill), reads for a
    // flush.
    let written = op != opcode::CFLUSH;
    let src_fault = if op == opcode::MEMMOVE {
        operand_fault(cx, d.src, len, desc, false)
    } else {
        None
    };
    let dst_fault = operand_fault(cx, d.dst, len, desc, written);
    let mut best: Option<(u64, bool)> = None;
    consider(&mut best, desc, src_fault.map(|f| f.0), false);
    consider(&mut best, desc, dst_fault.map(|f| f.0), written);
    // Count the fault that stops the descriptor, by its cause.
    let stop = match best {
        Some((_, true)) => dst_fault,
        Some(_) => src_fault.or(dst_fault),
        None => None,
    };
    if let Some((_, cause)) = stop {
        cx.sh.tally.note(match cause {
            Cause::NotPresent => Count::FaultNonresident,
            Cause::WriteProtected => Count::FaultWriteProtected,
        });
    }
    if cx.rng.chance(cx.sh.cfg.fault_rate) {
        let bc = match cx.rng.below(4) {
            0 => 0,
            1 => (cx.rng.below(len) & !4095).min(len - 1),
            _ => cx.rng.below(len),
        };
        let write = match op {
            opcode::MEMMOVE => cx.rng.below(2) == 1,
            opcode::MEMFILL => true,
            _ => false,
        };
        let o = at_bc(bc);
        let addr = if write || op != opcode::MEMMOVE {
            d.dst
        } else {
            d.src
        } + o;
        let repeat = bc == 0 && cx.sh.last_zero_fault.swap(addr, Ordering::Relaxed) == addr;
        if !repeat {
            cx.sh.tally.note(Count::FaultInjected);
            consider(&mut best, desc, Some(o), write);
        }
    }
    best.map(|(offset, write)| Stop {
        offset,
        write,
        report: None,
    })
}

/// The first byte of one operand, in processing order, that the device
/// faults on (a write when `write`), and why: from the page tables when
/// pagemap can tell, from residency (mincore) otherwise.
fn operand_fault(
    cx: &mut Ctx<'_>,
    addr: u64,
    len: u64,
    desc: bool,
    write: bool,
) -> Option<(u64, Cause)> {
    match cx
        .sh
        .pagemap
        .first_fault(addr, len, desc, write, &mut cx.scratch.pages)
    {
        Some(f) => f,
        None => first_fault(addr, len, desc, &mut cx.scratch.pages).map(|o| (o, Cause::NotPresent)),
    }
}

/// Keep the fault that comes first in processing order (a read before a
/// write at the same offset: the device reads the source first).
fn consider(best: &mut Option<(u64, bool)>, desc: bool, o: Option<u64>, write: bool) {
    let Some(o) = o else { return };
    let better = match *best {
        None => true,
        Some((b, _)) if desc => o > b,
        Some((b, _)) => o < b,
    };
    if better {
        *best = Some((o, write));
    }
}

fn data_op(cx: &mut Ctx<'_>, d: &Descriptor, forced: Option<Forced>) -> CompletionRecord {
    let op = d.opcode();
    let len = u64::from(d.xfer_size);
    let desc = op == opcode::MEMMOVE && overlaps(d) && d.dst > d.src;
    let fault = fault_point(cx, d, desc, forced);
    // The range done before the fault, in offsets.
    let (lo, hi) = match fault {
        None => (0, len),
        Some(s) if desc => (s.offset + 1, len),
        Some(s) => (0, s.offset),
    };
    if hi > lo && !halting(cx.sh) {
        // SAFETY: the submitter of the descriptor vouched (Portal::submit)
        // that its operands are valid for the opcode's accesses until the
        // record is written; [lo, hi) lies inside them.
        unsafe {
            match op {
                opcode::MEMMOVE => core::ptr::copy(
                    (d.src + lo) as usize as *const u8,
                    (d.dst + lo) as usize as *mut u8,
                    (hi - lo) as usize,
                ),
                opcode::MEMFILL => {
                    fill(d.dst + lo, d.src.rotate_right(8 * (lo % 8) as u32), hi - lo)
                }
                _ => {}
            }
        }
    }
    if hi > lo && d.flags() & flag::DRDBK != 0 && d.flags() & flag::CC != 0 {
        // The readback finds the written lines where cache control put
        // them, in the LLC: outside the persistence domain on ADR
        // platforms, yet the record will say the readback is done.
        cx.sh.sw_error(SwErrorKind::NotDurable, d);
    }
    let Some(stop) = fault else {
        return rec(status::SUCCESS);
    };
    // Operand ids number the descriptor's address fields: 0 for the one
    // at 0x10 (a memmove's source), 1 for the one at 0x18 (every
    // destination). The numbering is this emulator's; the engine does not
    // rely on it.
    let src_fault = !stop.write && op == opcode::MEMMOVE;
    let byte = if src_fault { d.src } else { d.dst } + stop.offset;
    let page = byte & !(page_size() - 1);
    let (fault_addr, fault_info) = match (stop.report, cx.sh.cfg.fault_addr) {
        (Some(a), _) => (a, 0),
        (None, FaultAddr::Exact) => (byte, 0),
        (None, FaultAddr::Page) => (page, 0),
        (None, FaultAddr::Masked) => (
            page,
            fault_info::ADDR_MASKED | u8::from(!src_fault) << fault_info::OPERAND_SHIFT,
        ),
    };
    if cx.sh.cfg.fault_us > 0 {
        // What resolving the translation costs the device before it
        // gives up on the descriptor.
        let until = Instant::now() + Duration::from_micros(u64::from(cx.sh.cfg.fault_us));
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
    CompletionRecord {
        status: status::PAGE_FAULT_NOBOF | if stop.write { status::WRITE_FAULT } else { 0 },
        result: u8::from(desc),
        fault_info,
        bytes_completed: (hi - lo) as u32,
        fault_addr,
        ..Default::default()
    }
}

/// Fill `n` bytes at `dst`: byte `i` gets byte `i % 8` of `pattern`.
///
/// # Safety
/// `[dst, dst + n)` must be valid for writes.
unsafe fn fill(dst: u64, pattern: u64, n: u64) {
    let p = pattern.to_le_bytes();
    let mut chunk = [0u8; 64];
    for (i, b) in chunk.iter_mut().enumerate() {
        *b = p[i % 8];
    }
    let mut off = 0;
    while off < n {
        let k = (n - off).min(64);
        // SAFETY: `off + k <= n`, inside the range the caller vouched for;
        // the chunk starts at a multiple of 8 so its phase is right.
        unsafe {
            core::ptr::copy_nonoverlapping(
                chunk.as_ptr(),
                (dst + off) as usize as *mut u8,
                k as usize,
            )
        };
        off += k;
    }
}

/// Run a batch's elements in order. Each element's record is written as
/// the element ends, or kept for after the batch record, as the batch
/// order says.
fn batch(cx: &mut Ctx<'_>, d: &Descriptor, forced: Option<Forced>) -> CompletionRecord {
    cx.sh.tally.note(Count::Batch);
    let n = d.xfer_size;
    let mut failed = false;
    for i in 0..n {
        if halting(cx.sh) {
            // No element starts, no record is written any more.
            return rec(status::BATCH_FAIL);
        }
        let ea = d.src + 64 * u64::from(i);
        let list_fault = match forced.and_then(Forced::list_fault) {
            Some(k) => i >= k,
            None => first_fault(ea, 64, false, &mut cx.scratch.pages).is_some(),
        };
        if list_fault {
            return CompletionRecord {
                status: status::BATCH_PAGE_FAULT,
                result: u8::from(failed),
                bytes_completed: i,
                fault_addr: ea,
                ..Default::default()
            };
        }
        // SAFETY: the list page is resident (checked above) and the
        // submitter vouched for `count` descriptors at the list address.
        let bytes = unsafe { core::ptr::read_volatile(ea as usize as *const [u8; 64]) };
        let e = Descriptor::from_bytes(&bytes);
        cx.sh.expect_record(&e);
        let r = execute(cx, &e, true);
        failed |= r.code() != status::SUCCESS;
        let late = match cx.sh.cfg.batch_order {
            BatchOrder::ElementsFirst => false,
            BatchOrder::BatchFirst => true,
            BatchOrder::Random => cx.rng.below(2) == 0,
        };
        if late {
            cx.scratch.late.push((e, r));
        } else {
            write_cr(cx, &e, r, false);
        }
    }
    CompletionRecord {
        status: forced.and_then(Forced::batch_status).unwrap_or(if failed {
            status::BATCH_FAIL
        } else {
            status::SUCCESS
        }),
        result: u8::from(failed),
        bytes_completed: n,
        ..Default::default()
    }
}

/// Write a completion record the way DSA does: only with CRAV, only on
/// error without RCR, never at a misaligned or unmapped address (SWERROR
/// instead), fields first, status last. A record page that is mapped but
/// not resident gets the real record too: on DSA 2.0 the kernel resolves
/// the fault and writes the record itself, fields first and status last;
/// user space never sees CRA_XLAT (0x1a) (DSA.md 12.3).
fn write_cr(cx: &mut Ctx<'_>, d: &Descriptor, r: CompletionRecord, top: bool) {
    cx.sh.record_done(d);
    let f = d.flags();
    let addr = d.completion_addr;
    let skip = f & flag::CRAV == 0 || (r.code() == status::SUCCESS && f & flag::RCR == 0);
    let target = if skip {
        None
    } else if !addr.is_multiple_of(32) {
        cx.sh.sw_error(SwErrorKind::CrAlign, d);
        None
    } else {
        match page_state(addr) {
            None => {
                cx.sh.sw_error(SwErrorKind::CrUnmapped, d);
                None
            }
            // SAFETY: aligned and mapped (checked); the submitter vouched
            // that the record is accessed only atomically.
            Some(_) => Some(unsafe { CrCell::at(addr) }),
        }
    };
    let Some(cell) = target else {
        if top {
            cx.sh.finished();
        }
        return;
    };
    if halting(cx.sh) {
        if top {
            cx.sh.tally.note(Count::Lost);
            cx.sh.finished();
        }
        return;
    }
    // Lost and late records: those of descriptors taken from the queue and
    // of the elements of a batch alike.
    if cx.rng.chance(cx.sh.cfg.lose_rate) {
        cx.sh.tally.note(Count::Lost);
        if top {
            cx.sh.finished();
        }
        return;
    }
    if let Some(late) = cx.sh.late.as_ref() {
        if cx.rng.chance(cx.sh.cfg.late_rate) {
            cx.sh.tally.note(Count::Late);
            if top {
                cx.sh.finished();
            }
            // SAFETY: aligned and mapped (checked above); the submitter
            // vouched that the record stays allocated, and is accessed
            // only atomically, until it is written.
            unsafe { late.push(addr, r, std::time::Duration::from_micros(cx.sh.cfg.late_us)) };
            return;
        }
    }
    if cx.sh.cfg.hostile_cr {
        let garbage = CompletionRecord {
            result: 0xee,
            bytes_completed: u32::MAX,
            fault_addr: u64::MAX,
            op_specific: [0xee; 16],
            ..Default::default()
        };
        cell.publish_fields(&garbage);
        std::thread::yield_now();
        cell.publish_fields(&r);
        if cx.rng.below(2) == 0 {
            std::thread::yield_now();
        }
    } else {
        cell.publish_fields(&r);
    }
    if top {
        cx.sh.finished();
    }
    cell.set_status(r.status);
}
