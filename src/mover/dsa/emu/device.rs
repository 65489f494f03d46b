//! The emulated WQ itself: the bounded queue behind the portal, the
//! engine threads, the SWERROR-like record (with the driver bugs no device
//! reports), the completion records descriptors in the device will still
//! write, and the counters tests assert on. What a descriptor does is in
//! `exec.rs`.

use std::collections::HashSet;
#[cfg(test)]
use std::collections::VecDeque;
#[cfg(test)]
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

#[cfg(test)]
use super::exec::Forced;
use super::exec::{self, Rng};
use super::late::LateWriter;
use super::pagemap::Pagemap;
use super::{EmuConfig, Stall};
#[cfg(test)]
use crate::mover::dsa::hw::discovery::WqConfig;
use crate::mover::dsa::hw::discovery::WqMode;
use crate::mover::dsa::hw::{
    flag, opcode, submit_write, Descriptor, DeviceState, Method, Portal, PortalError, Submitted,
    PASID_RESERVED_MASK,
};
use crate::sync::{backoff, Backoff, EventCount};

/// The PASID an emulated ENQCMD inserts.
pub const EMU_PASID: u32 = 1;
/// `current` value of an engine with nothing in hand.
const IDLE: u64 = u64::MAX;
/// Yields of an engine that found the queue empty, before it parks.
const ENGINE_YIELDS: u32 = 32;

/// What a SWERROR entry reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwErrorKind {
    /// A descriptor arrived at a full dedicated WQ and was dropped.
    Overflow,
    /// A completion address was not 32-byte aligned: no record written.
    CrAlign,
    /// A completion address was not mapped: no record written.
    CrUnmapped,
    /// A descriptor entered the device naming a completion record that
    /// another descriptor still in the device will write (for example a
    /// batch element resubmitted while the original's record is not yet
    /// visible): the records race, and the work may run twice. A driver
    /// bug no device reports.
    SharedRecord,
    /// A write asked for destination readback (durability) with cache
    /// control set: the readback finds the data in the LLC, outside the
    /// persistence domain on ADR platforms, and the record claims a
    /// durability the data lacks (DSA.md 12.3). A driver bug no device
    /// reports.
    NotDurable,
}

/// The software-error record, and the driver bugs no device reports:
/// counts and the first offending descriptor (test builds: the tests
/// assert the driver caused none).
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwError {
    pub overflow: u64,
    pub cr_align: u64,
    pub cr_unmapped: u64,
    pub shared_record: u64,
    pub not_durable: u64,
    pub first: Option<(SwErrorKind, Descriptor)>,
}

#[cfg(test)]
impl SwError {
    pub fn is_empty(&self) -> bool {
        self.overflow == 0
            && self.cr_align == 0
            && self.cr_unmapped == 0
            && self.shared_record == 0
            && self.not_durable == 0
    }
}

/// Counters (test builds).
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmuStats {
    /// Descriptors taken into the WQ.
    pub accepted: u64,
    /// Descriptors finished (record written or not required).
    pub completed: u64,
    /// Most accepted-but-unfinished descriptors ever seen.
    pub max_outstanding: u64,
    /// Most queued (not yet picked up) descriptors ever seen.
    pub max_occupancy: u64,
    /// Shared-mode "retry" answers.
    pub retries: u64,
    pub batches: u64,
    pub faults_injected: u64,
    pub faults_nonresident: u64,
    /// Write faults on resident pages that were not writable (pagemap).
    pub faults_write_protected: u64,
    pub validation_errors: u64,
    /// Records never written (LOSE_RATE, or dropped by a halt).
    pub lost: u64,
    /// Records handed to the late writer (LATE_RATE).
    pub late: u64,
}

pub(crate) struct Queued {
    desc: Descriptor,
}

/// State shared by the portal side and the engine threads.
/// One event the tests count.
#[derive(Clone, Copy)]
pub enum Count {
    /// A descriptor taken into the WQ.
    Accepted,
    /// A descriptor counted as accepted that did not fit after all.
    Refused,
    /// A WQ entry finished.
    Completed,
    /// A shared-mode "retry" answer.
    Retry,
    Batch,
    FaultInjected,
    FaultNonresident,
    FaultWriteProtected,
    ValidationError,
    /// A record that will never be written.
    Lost,
    /// A record that will be written late.
    Late,
}

/// The emulator's counters, for the tests ([`EmuDevice::stats`]). Outside
/// test builds this is an empty stand-in whose methods do nothing: the
/// shipped emulator keeps no counter nobody reads.
#[cfg(test)]
#[derive(Default)]
pub struct Tally {
    accepted: AtomicU64,
    completed: AtomicU64,
    max_outstanding: AtomicU64,
    max_occupancy: AtomicU64,
    retries: AtomicU64,
    batches: AtomicU64,
    faults_injected: AtomicU64,
    faults_nonresident: AtomicU64,
    faults_write_protected: AtomicU64,
    validation_errors: AtomicU64,
    lost: AtomicU64,
    late: AtomicU64,
}

#[cfg(test)]
impl Tally {
    pub fn note(&self, c: Count) {
        let (a, add) = match c {
            Count::Accepted => (&self.accepted, true),
            Count::Refused => (&self.accepted, false),
            Count::Completed => (&self.completed, true),
            Count::Retry => (&self.retries, true),
            Count::Batch => (&self.batches, true),
            Count::FaultInjected => (&self.faults_injected, true),
            Count::FaultNonresident => (&self.faults_nonresident, true),
            Count::FaultWriteProtected => (&self.faults_write_protected, true),
            Count::ValidationError => (&self.validation_errors, true),
            Count::Lost => (&self.lost, true),
            Count::Late => (&self.late, true),
        };
        if add {
            a.fetch_add(1, Ordering::SeqCst);
        } else {
            a.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Updates the maxima after a descriptor was queued (`occupancy` now
    /// waiting): read first, write only when they grow.
    pub fn peaks(&self, occupancy: u64) {
        if occupancy > self.max_occupancy.load(Ordering::Relaxed) {
            self.max_occupancy.fetch_max(occupancy, Ordering::Relaxed);
        }
        let out = self
            .accepted
            .load(Ordering::SeqCst)
            .saturating_sub(self.completed.load(Ordering::SeqCst));
        if out > self.max_outstanding.load(Ordering::SeqCst) {
            self.max_outstanding.fetch_max(out, Ordering::SeqCst);
        }
    }

    fn read(&self) -> EmuStats {
        let r = |a: &AtomicU64| a.load(Ordering::SeqCst);
        EmuStats {
            accepted: r(&self.accepted),
            completed: r(&self.completed),
            max_outstanding: r(&self.max_outstanding),
            max_occupancy: r(&self.max_occupancy),
            retries: r(&self.retries),
            batches: r(&self.batches),
            faults_injected: r(&self.faults_injected),
            faults_nonresident: r(&self.faults_nonresident),
            faults_write_protected: r(&self.faults_write_protected),
            validation_errors: r(&self.validation_errors),
            lost: r(&self.lost),
            late: r(&self.late),
        }
    }
}

/// See the test build's `Tally`.
#[cfg(not(test))]
#[derive(Default)]
pub struct Tally {}

#[cfg(not(test))]
impl Tally {
    #[inline(always)]
    pub fn note(&self, _c: Count) {}

    #[inline(always)]
    pub fn peaks(&self, _occupancy: u64) {}
}

pub(crate) struct Shared {
    pub cfg: EmuConfig,
    queue: ArrayQueue<Queued>,
    pop_lock: Mutex<u64>,
    /// Per engine: sequence number of the descriptor in hand, or IDLE.
    pub current: Box<[AtomicU64]>,
    /// What the tests read back ([`EmuDevice::stats`]).
    pub tally: Tally,
    /// Address of the last fault injected with no progress (never twice
    /// in a row, so injected faults cannot loop forever).
    pub last_zero_fault: AtomicU64,
    /// Where resident pages that a write faults on are found.
    pub pagemap: Pagemap,
    /// Completion records that descriptors in the device will still
    /// write: from submission (batch elements: from when the engine reads
    /// them) until just before the status store.
    records: Mutex<HashSet<u64>>,
    #[cfg(test)]
    swerror: Mutex<SwError>,
    #[cfg(test)]
    forced: Mutex<VecDeque<(u8, Forced)>>,
    #[cfg(test)]
    holds_open: Mutex<Vec<u32>>,
    /// The hold the next batch's late element records wait for.
    #[cfg(test)]
    late_hold: Mutex<Option<u32>>,
    #[cfg(test)]
    forced_n: AtomicUsize,
    stalled: AtomicBool,
    shutdown: AtomicBool,
    /// Set by the engine that takes descriptor HALT_AFTER + 1: from then
    /// on no engine starts a descriptor or writes a record.
    pub halting: AtomicBool,
    /// Published once halting and no engine touches memory any more: what
    /// sysfs `state` (`halted`) reports.
    halted: AtomicBool,
    /// The SWERROR register is valid (what `poll(2)` reports).
    swerr: AtomicBool,
    /// The kernel thread that writes late records (LATE_RATE > 0).
    pub late: Option<LateWriter>,
    /// Idle engines park here; submissions and state changes notify it.
    ev: EventCount,
    epoch: Instant,
    last_submit_us: AtomicU64,
}

impl Shared {
    /// Count a finished WQ entry. Called before the status store, so a
    /// driver that saw the record never sees it counted as outstanding.
    pub fn finished(&self) {
        self.tally.note(Count::Completed);
    }

    pub fn sw_error(&self, kind: SwErrorKind, d: &Descriptor) {
        self.swerr.store(true, Ordering::Release);
        #[cfg(test)]
        {
            let mut e = self.swerror.lock().unwrap_or_else(|p| p.into_inner());
            match kind {
                SwErrorKind::Overflow => e.overflow += 1,
                SwErrorKind::CrAlign => e.cr_align += 1,
                SwErrorKind::CrUnmapped => e.cr_unmapped += 1,
                SwErrorKind::SharedRecord => e.shared_record += 1,
                SwErrorKind::NotDurable => e.not_durable += 1,
            }
            if e.first.is_none() {
                e.first = Some((kind, *d));
            }
        }
        if self.cfg.strict {
            let effect = match kind {
                SwErrorKind::Overflow | SwErrorKind::CrAlign | SwErrorKind::CrUnmapped => {
                    "the driver would hang on real hardware"
                }
                SwErrorKind::SharedRecord => "two descriptors would write one record",
                SwErrorKind::NotDurable => "a durable write would stay in the cache",
            };
            crate::log::warn(&format!(
                "emulated DSA: driver error {kind:?} (opcode {:#x}); {effect}",
                d.opcode()
            ));
            std::process::abort();
        }
    }

    /// Note that `d` will write its completion record (if it has one);
    /// a record another descriptor in the device will still write is a
    /// driver bug.
    pub fn expect_record(&self, d: &Descriptor) {
        if d.flags() & flag::CRAV == 0 {
            return;
        }
        let fresh = self
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(d.completion_addr);
        if !fresh {
            self.sw_error(SwErrorKind::SharedRecord, d);
        }
    }

    /// `d` is about to write its record, or ends without one.
    pub fn record_done(&self, d: &Descriptor) {
        if d.flags() & flag::CRAV != 0 {
            self.records
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&d.completion_addr);
        }
    }

    /// A forced outcome for the next descriptor with `op`, if any.
    #[cfg(test)]
    pub fn take_forced(&self, op: u8) -> Option<Forced> {
        if self.forced_n.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = self.forced.lock().unwrap_or_else(|p| p.into_inner());
        let i = q.iter().position(|(o, _)| *o == op)?;
        self.forced_n.fetch_sub(1, Ordering::AcqRel);
        q.remove(i).map(|(_, f)| f)
    }

    /// Block an engine until hold `id` is opened (or the device shuts
    /// down).
    #[cfg(test)]
    pub fn wait_hold(&self, id: u32) {
        loop {
            let open = self
                .holds_open
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&id);
            if open || self.shutdown.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// If a test asked for it, wait for its hold before writing a batch's
    /// late element records; whether there was one.
    #[cfg(test)]
    pub fn hold_late_records(&self) -> bool {
        let id = self
            .late_hold
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(id) = id {
            self.wait_hold(id);
        }
        id.is_some()
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn may_pick_up(&self) -> bool {
        if self.shutdown.load(Ordering::Acquire) {
            return true;
        }
        if self.stalled.load(Ordering::Acquire) {
            return false;
        }
        match self.cfg.stall {
            Stall::UntilFull => {
                self.queue.is_full()
                    || self
                        .now_us()
                        .saturating_sub(self.last_submit_us.load(Ordering::Relaxed))
                        > 2000
            }
            _ => true,
        }
    }

    /// Sleeps until a submission or a state change, or briefly: the
    /// `UntilFull` stall and hold releases are decided by time, not
    /// announced.
    fn park(&self) {
        let a = self.ev.announce();
        let ready = !self.queue.is_empty() && self.may_pick_up();
        if ready || self.shutdown.load(Ordering::Acquire) {
            self.ev.cancel(a);
            return;
        }
        let wait = if self.cfg.stall == Stall::UntilFull {
            200
        } else {
            1000
        };
        self.ev.wait(a, Duration::from_micros(wait));
    }

    fn wake(&self, all: bool) {
        if all {
            self.ev.notify_all();
        } else {
            self.ev.notify_one();
        }
    }
}

/// An emulated device with one work queue.
pub struct EmuDevice {
    sh: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl EmuDevice {
    /// Start an emulated WQ with `cfg.engines` engine threads.
    pub fn new(cfg: EmuConfig) -> Arc<EmuDevice> {
        let engines = cfg.engines.clamp(1, 64) as usize;
        let sh = Arc::new(Shared {
            queue: ArrayQueue::new(cfg.wq_size.max(1) as usize),
            pop_lock: Mutex::new(0),
            current: (0..engines).map(|_| AtomicU64::new(IDLE)).collect(),
            tally: Tally::default(),
            last_zero_fault: AtomicU64::new(u64::MAX),
            pagemap: Pagemap::open(),
            records: Mutex::new(HashSet::new()),
            #[cfg(test)]
            swerror: Mutex::new(SwError::default()),
            #[cfg(test)]
            forced: Mutex::new(VecDeque::new()),
            #[cfg(test)]
            holds_open: Mutex::new(Vec::new()),
            #[cfg(test)]
            late_hold: Mutex::new(None),
            #[cfg(test)]
            forced_n: AtomicUsize::new(0),
            stalled: AtomicBool::new(cfg.stall == Stall::Manual),
            shutdown: AtomicBool::new(false),
            halting: AtomicBool::new(false),
            halted: AtomicBool::new(false),
            swerr: AtomicBool::new(false),
            late: (cfg.late_rate > 0.0).then(LateWriter::new),
            ev: EventCount::new(),
            epoch: Instant::now(),
            last_submit_us: AtomicU64::new(0),
            cfg,
        });
        let threads = (0..engines)
            .map(|e| {
                let sh = sh.clone();
                std::thread::Builder::new()
                    .name(format!("dsa-emu-{e}"))
                    .spawn(move || engine_loop(&sh, e))
                    .expect("spawn emulated DSA engine")
            })
            .collect();
        Arc::new(EmuDevice {
            sh,
            threads: Mutex::new(threads),
        })
    }

    /// The WQ as the device has it (see [`EmuConfig::wq_config`]).
    #[cfg(test)]
    pub fn wq_config(&self) -> WqConfig {
        self.sh.cfg.wq_config()
    }

    #[cfg(test)]
    pub fn swerror(&self) -> SwError {
        *self.sh.swerror.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    pub fn stats(&self) -> EmuStats {
        self.sh.tally.read()
    }

    /// Descriptors accepted and not yet finished.
    #[cfg(test)]
    pub fn outstanding(&self) -> u64 {
        let s = self.stats();
        s.accepted - s.completed
    }

    /// Whether the device halted (HALT_AFTER), as its sysfs `state` says.
    #[cfg(test)]
    pub fn halted(&self) -> bool {
        self.sh.halted.load(Ordering::Acquire)
    }

    /// Nothing queued and no engine working on a descriptor (its late
    /// records included).
    #[cfg(test)]
    pub fn idle(&self) -> bool {
        let _pop = self.sh.pop_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.sh.queue.is_empty()
            && self
                .sh
                .current
                .iter()
                .all(|c| c.load(Ordering::SeqCst) == IDLE)
    }

    /// Descriptors waiting in the queue.
    #[cfg(test)]
    pub fn occupancy(&self) -> usize {
        self.sh.queue.len()
    }

    /// Stop (or resume) engines picking up descriptors.
    #[cfg(test)]
    pub fn set_stalled(&self, stalled: bool) {
        self.sh.stalled.store(stalled, Ordering::Release);
        self.sh.wake(true);
    }

    /// Let descriptors held by [`Forced::Hold`]`(id)` run.
    #[cfg(test)]
    pub fn open_hold(&self, id: u32) {
        self.sh
            .holds_open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id);
    }

    /// Keep the element records that the next batch makes visible after
    /// its batch record until [`open_hold`](Self::open_hold)`(id)`.
    #[cfg(test)]
    pub fn hold_late_records_of_next_batch(&self, id: u32) {
        *self.sh.late_hold.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
    }

    /// Forced outcomes not yet consumed.
    #[cfg(test)]
    pub fn pending_forced(&self) -> usize {
        self.sh.forced_n.load(Ordering::Acquire)
    }

    /// Make the next descriptor with opcode `op` end with `f`.
    #[cfg(test)]
    pub fn force(&self, op: u8, f: Forced) {
        let mut q = self.sh.forced.lock().unwrap_or_else(|p| p.into_inner());
        q.push_back((op, f));
        self.sh.forced_n.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for EmuDevice {
    fn drop(&mut self) {
        self.sh.shutdown.store(true, Ordering::Release);
        self.sh.stalled.store(false, Ordering::Release);
        self.sh.wake(true);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl EmuDevice {
    /// The kernel's `write(2)` on the WQ file (DSA.md 12.2): EINVAL for
    /// every write before 6.9; otherwise each whole 64-byte descriptor in
    /// turn is checked (EINVAL for a completion address not 32-byte
    /// aligned, and for BATCH where the generation refuses it) and
    /// submitted; a shared WQ that stays full is EAGAIN. Returns the bytes
    /// of the descriptors taken before the first failure, or the failure
    /// when none was taken.
    pub fn write(&self, bytes: &[u8]) -> Result<usize, i32> {
        let c = &self.sh.cfg;
        if !c.kernel.has_write() || bytes.len() < 64 {
            return Err(libc::EINVAL);
        }
        let mut done = 0;
        for chunk in bytes.chunks_exact(64) {
            let mut raw = [0u8; 64];
            raw.copy_from_slice(chunk);
            let d = Descriptor::from_bytes(&raw);
            let refused = if !d.completion_addr.is_multiple_of(32)
                || (d.opcode() == opcode::BATCH && !c.kernel.write_takes_batch(c.version))
            {
                Some(libc::EINVAL)
            } else {
                match self.enqueue(&d) {
                    Submitted::Accepted => None,
                    Submitted::Retry => Some(libc::EAGAIN),
                }
            };
            match refused {
                None => done += 64,
                Some(e) if done == 0 => return Err(e),
                Some(_) => break,
            }
        }
        Ok(done)
    }

    /// A descriptor arriving at the WQ (through the mapped portal, or from
    /// the kernel's `write(2)`).
    fn enqueue(&self, desc: &Descriptor) -> Submitted {
        let s = &self.sh;
        let mut d = *desc;
        if s.halting.load(Ordering::SeqCst) {
            // A halted device takes nothing: the descriptor vanishes.
            return Submitted::Accepted;
        }
        if s.cfg.stall == Stall::UntilFull {
            s.last_submit_us.store(s.now_us(), Ordering::Relaxed);
        }
        if s.cfg.mode == WqMode::Shared {
            if s.queue.len() >= s.cfg.threshold as usize {
                s.tally.note(Count::Retry);
                return Submitted::Retry;
            }
            // ENQCMD inserts the PASID and clears the privilege bit.
            d.pasid_priv = (d.pasid_priv & PASID_RESERVED_MASK) | EMU_PASID;
        }
        s.tally.note(Count::Accepted);
        // Before the push: an engine may finish the descriptor at once.
        s.expect_record(&d);
        if s.queue.push(Queued { desc: d }).is_err() {
            s.record_done(&d);
            s.tally.note(Count::Refused);
            if s.cfg.mode == WqMode::Shared {
                s.tally.note(Count::Retry);
                return Submitted::Retry;
            }
            // A dedicated WQ gives no feedback: the descriptor is gone.
            s.sw_error(SwErrorKind::Overflow, &d);
            return Submitted::Accepted;
        }
        s.tally.peaks(s.queue.len() as u64);
        s.wake(false);
        Submitted::Accepted
    }
}

impl Portal for EmuDevice {
    /// Through the emulated `write(2)` when `write_path` is set (with the
    /// SFENCE of the real write route), else straight into the WQ, as
    /// MOVDIR64B/ENQCMD on a mapped portal.
    unsafe fn submit(&self, desc: &Descriptor) -> Result<Submitted, PortalError> {
        if self.sh.cfg.write_path {
            submit_write(desc, |b| self.write(b))
        } else {
            Ok(self.enqueue(desc))
        }
    }

    fn method(&self) -> Method {
        if self.sh.cfg.write_path {
            Method::Write
        } else {
            Method::Emulated
        }
    }

    /// From the model: `halted` once HALT_AFTER struck (published only
    /// when no engine touches memory any more), an error while the
    /// SWERROR register is valid.
    fn device_state(&self) -> DeviceState {
        if self.sh.halted.load(Ordering::Acquire) {
            DeviceState::Stopped("emulated dsa0 is halted".to_string())
        } else if self.sh.swerr.load(Ordering::Acquire) {
            DeviceState::Error
        } else {
            DeviceState::Running
        }
    }
}

fn engine_loop(sh: &Shared, e: usize) {
    let mut rng = Rng::new(sh.cfg.seed ^ (e as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut scratch = exec::Scratch::default();
    let mut idle = Backoff::new(0, ENGINE_YIELDS);
    loop {
        if sh.shutdown.load(Ordering::Acquire) && sh.queue.is_empty() {
            return;
        }
        if !sh.may_pick_up() {
            sh.park();
            continue;
        }
        // Pop and number under one lock: sequence order is queue order,
        // and `current` is set before any later descriptor is popped, which
        // DRAIN relies on.
        let job = {
            let mut seq = sh.pop_lock.lock().unwrap_or_else(|p| p.into_inner());
            sh.queue.pop().map(|q| {
                *seq += 1;
                sh.current[e].store(*seq, Ordering::SeqCst);
                (q, *seq)
            })
        };
        match job {
            Some((q, seq)) => {
                idle.reset();
                if sh.cfg.halt_after.is_some_and(|n| seq > n) {
                    sh.current[e].store(IDLE, Ordering::SeqCst);
                    halt(sh, e);
                    sh.tally.note(Count::Lost);
                    sh.finished();
                    continue;
                }
                exec::run_top(sh, e, seq, &q.desc, &mut rng, &mut scratch);
                sh.current[e].store(IDLE, Ordering::SeqCst);
            }
            None => {
                if !idle.snooze() {
                    sh.park();
                }
            }
        }
    }
}

/// The device halts (HALT_AFTER): nothing queued or submitted from now
/// on runs, no engine writes a record any more, and once no engine other
/// than `me` (whose descriptor is dropped) touches memory, the state reads
/// `halted` and the SWERROR register is valid.
fn halt(sh: &Shared, me: usize) {
    if sh.halting.swap(true, Ordering::SeqCst) {
        return;
    }
    while sh.queue.pop().is_some() {
        sh.tally.note(Count::Lost);
        sh.finished();
    }
    let mut wait = Backoff::new(0, backoff::FOREVER);
    while sh
        .current
        .iter()
        .enumerate()
        .any(|(i, c)| i != me && c.load(Ordering::SeqCst) != IDLE)
    {
        wait.snooze();
    }
    sh.swerr.store(true, Ordering::Release);
    sh.halted.store(true, Ordering::Release);
    crate::log::warn("emulated DSA: the device halted (MINIASYNC_DSA_EMULATE_HALT_AFTER)");
}

/// Wait until every engine other than `me` has finished all descriptors
/// popped before sequence number `seq` (DRAIN), or the device halts.
pub(crate) fn wait_older(sh: &Shared, me: usize, seq: u64) {
    let mut wait = Backoff::new(0, backoff::FOREVER);
    loop {
        if sh.halting.load(Ordering::SeqCst) {
            return;
        }
        let clear = sh.current.iter().enumerate().all(|(i, c)| {
            let c = c.load(Ordering::SeqCst);
            i == me || c == IDLE || c > seq
        });
        if clear {
            return;
        }
        wait.snooze();
    }
}
