//! The DSA mover (`libminiasync-vdm-dml`): SOFTWARE, HARDWARE and AUTO
//! paths over the native DSA engine (`mover::dsa`).
//!
//! - SOFTWARE runs every operation on the CPU during its first poll.
//! - HARDWARE sends every operation to the work queue (queued when the WQ
//!   is full). What the device cannot run at all (an overlapping move
//!   without GENCAP overlap support, an opcode the WQ does not enable) runs
//!   on the CPU; a device error, an unrecoverable fault, a stopped device
//!   or a timeout completes the future with `VDM_ERROR_JOB_CORRUPTED`.
//! - AUTO uses the device when there is one, the operation has at least
//!   `MINIASYNC_DSA_THRESHOLD` bytes (default 64 KiB) and the WQ has room;
//!   otherwise the CPU. Whatever the device could not finish (page fault it
//!   cannot resolve, device error, device stopped) is finished on the CPU;
//!   not after a timeout with the device still enabled, which may still
//!   write (`VDM_ERROR_JOB_CORRUPTED`).
//!
//! Device-path futures report `FUTURE_NOTIFIER_POLLER` with the engine's
//! monitor word (valid until `op_delete`); CPU-path futures report
//! `FUTURE_NOTIFIER_NONE`. Durable writes without device readback are
//! written back from the CPU before the future completes.
//!
//! The process shares one engine (one WQ) between all movers: a dedicated
//! WQ can be opened once, and its credits must be counted in one place.
//!
//! Each operation has one record, taken from the mover's pool (bounded by
//! `MINIASYNC_MAX_OPS`, as for every mover); its device state (completion
//! record, progress) is the [`DeviceOp`] inside it. A record the engine
//! quarantined (the device may still write it) never goes back to the
//! pool, and a mover deleted with one keeps its pool for good.

use core::cell::UnsafeCell;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::engine::DeviceOp;
use super::engine::FailReason;
use super::{Engine, EngineOptions, Poll, Release, Remainder, StartError};
use crate::abi::{data_mover_dml_type, future_state, vdm, vdm_operation_result};
use crate::ffi::view::{Notifier, RawEnum};
use crate::mover::stats::{Counter, Kind, MoverStats, QueueInfo};
use crate::mover::{
    configured_capacity, cpu, result_of, BadOp, Hints, Mover, Op, OpKind, Pool, F_MEM_DURABLE,
    F_NO_CACHE_HINT,
};

/// Environment variable: smallest operation (bytes) AUTO sends to the
/// device.
pub const THRESHOLD_ENV: &str = "MINIASYNC_DSA_THRESHOLD";
/// Default AUTO threshold: 64 KiB (DTO's default, DSA.md 6).
pub const DEFAULT_THRESHOLD: usize = 64 << 10;

/// `DATA_MOVER_DML_SOFTWARE` / `_HARDWARE` / `_AUTO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Software,
    Hardware,
    Auto,
}

impl Path {
    /// As the statistics name it.
    pub fn name(self) -> &'static str {
        match self {
            Path::Software => "software",
            Path::Hardware => "hardware",
            Path::Auto => "auto",
        }
    }

    /// From the C enum value; `None` for anything else.
    pub fn from_raw(v: RawEnum<data_mover_dml_type>) -> Option<Path> {
        Some(match v.known()? {
            data_mover_dml_type::DATA_MOVER_DML_SOFTWARE => Path::Software,
            data_mover_dml_type::DATA_MOVER_DML_HARDWARE => Path::Hardware,
            data_mover_dml_type::DATA_MOVER_DML_AUTO => Path::Auto,
        })
    }
}

/// The AUTO threshold from `MINIASYNC_DSA_THRESHOLD` (decimal or 0x hex).
pub fn configured_threshold() -> usize {
    std::env::var(THRESHOLD_ENV)
        .ok()
        .and_then(|v| super::discovery::parse_u64(&v))
        .map_or(DEFAULT_THRESHOLD, |v| {
            usize::try_from(v).unwrap_or(usize::MAX)
        })
}

/// An engine, or why none could be opened.
type Opened = Result<Arc<Engine>, String>;

/// The process's engine, opened on first use (emulated with
/// `MINIASYNC_DSA_EMULATE=1`), or why there is none. A child created by
/// fork(2) opens its own: the parent's queue (and the emulator's threads)
/// cannot be used from it, so the inherited engine is set aside, never
/// dropped (dropping would wait for its in-flight descriptors).
pub fn shared_engine() -> Result<Arc<Engine>, String> {
    struct Shared {
        pid: u32,
        engine: Option<Opened>,
        /// Engines inherited through fork(): kept reachable, never used.
        inherited: Vec<Opened>,
    }
    static ENGINE: Mutex<Shared> = Mutex::new(Shared {
        pid: 0,
        engine: None,
        inherited: Vec::new(),
    });
    let pid = std::process::id();
    let mut g = ENGINE.lock().unwrap_or_else(|p| p.into_inner());
    if g.pid == pid {
        if let Some(r) = &g.engine {
            return r.clone();
        }
    } else if let Some(old) = g.engine.take() {
        g.inherited.push(old);
    }
    let r = super::open_from_env(EngineOptions::from_env()).map(Arc::new);
    g.pid = pid;
    g.engine = Some(r.clone());
    r
}

const ST_IDLE: u32 = 0;
const ST_DEVICE: u32 = 1;
const ST_DONE: u32 = 2;

/// The record of one operation: its state, its result, the decoded
/// operation and its device state. Only the thread polling the future
/// touches `op` and `dev` (vdm contract: one poller at a time).
pub struct DsaOp {
    mover: AtomicPtr<DsaMover>,
    state: AtomicU32,
    result: AtomicU32,
    op: UnsafeCell<Op>,
    dev: DeviceOp,
}

// SAFETY: `op` and `dev`'s private state are accessed only by the thread
// currently polling the op's future (op_start/op_check/op_delete are never
// concurrent for one op), or by the mover's drop, which has exclusive
// access; everything else is atomic.
unsafe impl Sync for DsaOp {}
// SAFETY: the addresses in the decoded op are plain integers given by C
// with the operation.
unsafe impl Send for DsaOp {}

impl Default for DsaOp {
    fn default() -> Self {
        DsaOp {
            mover: AtomicPtr::new(core::ptr::null_mut()),
            state: AtomicU32::new(ST_IDLE),
            result: AtomicU32::new(0),
            op: UnsafeCell::new(Op::fill(0, 0, 0, Hints::default())),
            dev: DeviceOp::default(),
        }
    }
}

/// A DSA mover. `vdm` must stay the first field (C casts between them).
#[repr(C)]
pub struct DsaMover {
    pub vdm: vdm,
    path: Path,
    engine: Option<Arc<Engine>>,
    threshold: usize,
    pool: Pool<DsaOp>,
    pub stats: MoverStats,
    /// Records kept out of the pool for ever: their operations timed out
    /// while the device might still write them.
    quarantined: AtomicU32,
}

/// Why a mover could not be made.
#[derive(Debug, PartialEq, Eq)]
pub enum NewError {
    /// HARDWARE without a usable work queue (the reason).
    NoDevice(String),
}

impl DsaMover {
    /// `data_mover_dml_new`: a mover on `path` over the process's engine
    /// (none for SOFTWARE), with the configured AUTO threshold and bound
    /// of outstanding operations.
    pub fn create(vdm: vdm, path: Path) -> Result<Box<DsaMover>, NewError> {
        let engine = match path {
            Path::Software => Err(String::new()),
            _ => shared_engine(),
        };
        Self::new(vdm, path, engine, configured_threshold())
    }

    /// A mover on `path` with the per-mover bound of outstanding
    /// operations. HARDWARE needs `engine`; AUTO uses it if given.
    pub fn new(
        vdm: vdm,
        path: Path,
        engine: Result<Arc<Engine>, String>,
        threshold: usize,
    ) -> Result<Box<DsaMover>, NewError> {
        Self::with_capacity(vdm, path, engine, threshold, configured_capacity())
    }

    /// As [`new`](Self::new), with at most `capacity` outstanding
    /// operations.
    pub fn with_capacity(
        vdm: vdm,
        path: Path,
        engine: Result<Arc<Engine>, String>,
        threshold: usize,
        capacity: u32,
    ) -> Result<Box<DsaMover>, NewError> {
        let engine = match (path, engine) {
            (Path::Software, _) => None,
            (Path::Hardware, Err(why)) => return Err(NewError::NoDevice(why)),
            (_, e) => e.ok(),
        };
        let queue = engine.as_ref().map(|e| {
            let name = e.queue_name().to_string();
            QueueInfo {
                // The device of `wq<d>.<q>` is `dsa<d>`.
                device: name
                    .strip_prefix("wq")
                    .and_then(|r| r.split('.').next())
                    .map_or_else(|| name.clone(), |d| format!("dsa{d}")),
                name,
                numa_node: e.numa_node(),
            }
        });
        let m = Box::new(DsaMover {
            vdm,
            path,
            engine,
            threshold,
            pool: Pool::new(capacity),
            stats: MoverStats::new(Kind::Dsa, Some(path.name()), queue),
            quarantined: AtomicU32::new(0),
        });
        m.stats.register();
        Ok(m)
    }

    fn finish(&self, op: &DsaOp, r: vdm_operation_result) {
        op.result.store(r as u32, Ordering::Relaxed);
        op.state.store(ST_DONE, Ordering::Release);
    }

    /// Outstanding records (for tests).
    #[cfg(test)]
    pub fn outstanding(&self) -> u32 {
        self.pool.outstanding()
    }

    /// Records quarantined by `op_delete` (for tests).
    #[cfg(test)]
    pub fn quarantined(&self) -> u32 {
        self.quarantined.load(Ordering::Relaxed)
    }
}

impl Mover for DsaMover {
    type Op = DsaOp;

    /// `VDM_F_MEM_DURABLE | VDM_F_NO_CACHE_HINT`, as upstream.
    const CAPABILITIES: u32 = (F_MEM_DURABLE | F_NO_CACHE_HINT) as u32;

    unsafe fn owner_of(op: &DsaOp) -> &DsaMover {
        // SAFETY: caller's contract: a live record, whose `op_new` stored
        // its (living) mover.
        unsafe { &*op.mover.load(Ordering::Relaxed) }
    }

    fn new_op(&self) -> Option<&DsaOp> {
        let op = self.pool.alloc()?;
        op.mover
            .store((self as *const DsaMover).cast_mut(), Ordering::Relaxed);
        op.state.store(ST_IDLE, Ordering::Relaxed);
        Some(op)
    }

    /// Starts the operation: on the CPU (done before returning) or on the
    /// device. Always returns true (started); a HARDWARE operation that
    /// finds the WQ full waits inside the engine and is submitted by a
    /// later poll.
    unsafe fn start(&self, op: &DsaOp, operation: Result<Op, BadOp>, mut n: Notifier<'_>) -> bool {
        if op.state.load(Ordering::Relaxed) != ST_IDLE {
            return true;
        }
        n.use_none();
        let Ok(decoded) = operation else {
            self.stats.add(Counter::Ops, 1);
            self.stats.add(Counter::Errors, 1);
            self.finish(op, vdm_operation_result::VDM_ERROR_JOB_CORRUPTED);
            return true;
        };
        self.stats.started(&decoded);
        let engine = match (&self.engine, self.path) {
            (Some(e), Path::Hardware) => Some(e),
            (Some(e), Path::Auto) if decoded.len >= self.threshold => Some(e),
            (Some(_), Path::Auto) => {
                self.stats.add(Counter::FallbackSmall, 1);
                None
            }
            _ => None,
        };
        if let Some(e) = engine {
            let queue = self.path == Path::Hardware;
            // SAFETY: the record is this mover's and only this thread
            // polls it (caller's contract); it stays in the pool, which
            // the mover's drop frees only after releasing it from the
            // engine. The buffers stay valid until the future completes,
            // and delete releases the record (waiting for the device)
            // before it is reused.
            match unsafe { e.start_op(&op.dev, &decoded, queue) } {
                Ok(()) => {
                    // SAFETY: only the polling thread touches the cell.
                    unsafe { *op.op.get() = decoded };
                    op.state.store(ST_DEVICE, Ordering::Relaxed);
                    n.use_poller(e.monitor_addr(&op.dev));
                    return true;
                }
                Err(StartError::Invalid) => {
                    self.stats.add(Counter::Errors, 1);
                    self.finish(op, vdm_operation_result::VDM_ERROR_JOB_CORRUPTED);
                    return true;
                }
                // HARDWARE runs on the device only.
                Err(StartError::Stopped) if self.path == Path::Hardware => {
                    self.stats.add(Counter::Errors, 1);
                    self.finish(op, vdm_operation_result::VDM_ERROR_JOB_CORRUPTED);
                    return true;
                }
                // Busy and Stopped (AUTO), Unsupported (any path): the CPU.
                Err(StartError::Busy) => self.stats.add(Counter::FallbackBusy, 1),
                Err(StartError::Stopped) => self.stats.add(Counter::FallbackHalted, 1),
                Err(StartError::Unsupported) => self.stats.add(Counter::FallbackUnsupported, 1),
            }
        }
        // SAFETY: caller's contract on the buffers; decoded and checked.
        unsafe { cpu::run(&decoded) };
        self.stats.add(Counter::CpuOps, 1);
        self.finish(op, vdm_operation_result::VDM_SUCCESS);
        true
    }

    /// COMPLETE, RUNNING (on the device) or IDLE (not started). Finishes
    /// device operations: CPU write-back for durability without device
    /// readback, CPU completion of failed work on the AUTO path.
    unsafe fn check(&self, op: &DsaOp) -> future_state {
        match op.state.load(Ordering::Acquire) {
            ST_DONE => return future_state::FUTURE_STATE_COMPLETE,
            ST_IDLE => return future_state::FUTURE_STATE_IDLE,
            _ => {}
        }
        let Some(e) = self.engine.as_ref() else {
            // A device state without an engine cannot happen; report it
            // rather than wait for ever.
            self.finish(op, vdm_operation_result::VDM_ERROR_JOB_CORRUPTED);
            return future_state::FUTURE_STATE_COMPLETE;
        };
        // SAFETY: only the polling thread touches the cell.
        let decoded = unsafe { *op.op.get() };
        // SAFETY: a started record of this mover, polled by this thread.
        let polled = unsafe { e.poll_op(&op.dev) };
        if polled != Poll::Running {
            // SAFETY: as for `poll_op`.
            let n = unsafe { e.op_counts(&op.dev) };
            self.stats.add(Counter::PageFaults, n.page_faults.into());
            self.stats.add(Counter::Batches, n.batches.into());
            self.stats.add(Counter::Retries, n.retries.into());
        }
        let result = match polled {
            Poll::Running => return future_state::FUTURE_STATE_RUNNING,
            Poll::Done => {
                if !e.caps().durable_by_device {
                    // SAFETY: the destination was just written by the device.
                    unsafe { durable_writeback(&decoded) };
                }
                self.stats.add(Counter::DeviceOps, 1);
                self.stats.add(Counter::DeviceBytes, decoded.len as u64);
                vdm_operation_result::VDM_SUCCESS
            }
            Poll::Failed(f) if self.path == Path::Auto && f.cpu_can_finish() => {
                // SAFETY: the remainder lies inside the operation's buffers,
                // which the device no longer touches.
                unsafe { run_remainder(&f.remaining, &decoded) };
                self.stats.add(Counter::MixedOps, 1);
                self.stats.add(
                    Counter::DeviceBytes,
                    (decoded.len as u64).saturating_sub(f.remaining.bytes()),
                );
                self.stats.add(
                    match f.reason {
                        FailReason::Unresolvable { .. } | FailReason::FaultLoop { .. } => {
                            Counter::FallbackFault
                        }
                        FailReason::DeviceStopped => Counter::FallbackHalted,
                        _ => Counter::FallbackError,
                    },
                    1,
                );
                vdm_operation_result::VDM_SUCCESS
            }
            Poll::Failed(f) => {
                self.stats.add(Counter::Errors, 1);
                if matches!(f.reason, FailReason::TimedOut { .. }) {
                    self.stats.add(Counter::Timeouts, 1);
                }
                vdm_operation_result::VDM_ERROR_JOB_CORRUPTED
            }
        };
        self.finish(op, result);
        future_state::FUTURE_STATE_COMPLETE
    }

    /// Releases the record (after the device is done with the operation,
    /// if it was still running).
    unsafe fn delete(&self, op: &DsaOp) -> vdm_operation_result {
        let result = match op.state.load(Ordering::Acquire) {
            ST_DONE => result_of(op.result.load(Ordering::Relaxed)),
            _ => vdm_operation_result::VDM_ERROR_JOB_CORRUPTED,
        };
        let released = match self.engine.as_ref() {
            // SAFETY: the record is this mover's, used by this thread only;
            // releasing an unused record does nothing.
            Some(e) => unsafe { e.release_op(&op.dev) },
            None => Release::Reusable,
        };
        op.state.store(ST_IDLE, Ordering::Relaxed);
        match released {
            // SAFETY: caller's contract: a live record, not used afterwards.
            Release::Reusable => unsafe { self.pool.free(op) },
            Release::Quarantined => {
                self.quarantined.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }
}

impl Drop for DsaMover {
    /// Futures should be complete before their mover is deleted; those that
    /// are not may still have descriptors in the device, which writes their
    /// records. Wait for them (the engine drives each to its end; one
    /// timeout without progress for all of them together), then let every
    /// reclaim scan that may hold a record's address finish, and only then
    /// free the records. If any record is quarantined (the device may still
    /// write it), the pool is kept for the life of the process instead.
    fn drop(&mut self) {
        self.stats.unregister();
        let Some(e) = self.engine.clone() else {
            return;
        };
        let mut recs = Vec::new();
        self.pool.for_each(|op| recs.push(&op.dev));
        // SAFETY: `&mut self`: no thread polls this mover's futures any
        // more, so this thread has exclusive use of every record.
        let quarantined = unsafe { e.release_all(&recs) };
        drop(recs);
        e.quiesce();
        if quarantined > 0 {
            let bytes = self.pool.keep_forever();
            crate::log::warn(&format!(
                "DSA mover deleted with {quarantined} quarantined operation records \
                 (kept from reuse: the device might still write them): its {} KiB of \
                 records are kept for the life of the process",
                bytes.div_ceil(1024)
            ));
        }
    }
}

#[cfg(test)]
thread_local! {
    /// The destinations this thread wrote back for durability (tests).
    pub static WRITTEN_BACK: core::cell::RefCell<Vec<(usize, usize)>> =
        const { core::cell::RefCell::new(Vec::new()) };
}

/// CPU write-back of a durable operation's destination.
///
/// # Safety
/// The destination range must be mapped.
unsafe fn durable_writeback(op: &Op) {
    if op.hints.durable && op.kind != OpKind::Flush {
        #[cfg(test)]
        WRITTEN_BACK.with(|w| w.borrow_mut().push((op.dst, op.len)));
        // SAFETY: caller's contract.
        unsafe { cpu::flush(op.dst as *const u8, op.len) }
    }
}

/// Run what the device left on the CPU, then make the whole destination
/// durable if asked.
///
/// # Safety
/// The remainder must lie inside `whole`'s buffers, valid as its type
/// implies, and no longer be touched by the device.
unsafe fn run_remainder(rem: &Remainder, whole: &Op) {
    for part in rem.ops() {
        let mut part = *part;
        // An overlapping remainder runs as a move; durability is handled
        // once for the whole destination below.
        if part.kind == OpKind::Copy && part.overlaps() {
            part.kind = OpKind::Move;
        }
        part.hints.durable = false;
        // SAFETY: caller's contract for each part.
        unsafe { cpu::run(&part) };
    }
    // SAFETY: caller's contract.
    unsafe { durable_writeback(whole) };
}
