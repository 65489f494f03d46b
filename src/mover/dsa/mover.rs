//! The DSA mover (`libminiasync-vdm-dml`): SOFTWARE, HARDWARE and AUTO
//! paths over the native DSA engine (`mover::dsa`).
//!
//! - SOFTWARE runs every operation on the CPU during its first poll.
//! - HARDWARE sends every operation to the work queue (queued when the WQ
//!   is full). What the device cannot run at all (an overlapping move
//!   without GENCAP overlap support, an opcode the WQ does not enable) runs
//!   on the CPU; a device error or an unrecoverable fault completes the
//!   future with `VDM_ERROR_JOB_CORRUPTED`.
//! - AUTO uses the device when there is one, the operation has at least
//!   `MINIASYNC_DSA_THRESHOLD` bytes (default 64 KiB) and the WQ has room;
//!   otherwise the CPU. Whatever the device could not finish (page fault it
//!   cannot resolve, device error) is finished on the CPU.
//!
//! Device-path futures report `FUTURE_NOTIFIER_POLLER` with the engine's
//! monitor word (valid until `op_delete`); CPU-path futures report
//! `FUTURE_NOTIFIER_NONE`. Durable writes without device readback are
//! written back from the CPU before the future completes.
//!
//! The process shares one engine (one WQ) between all movers: a dedicated
//! WQ can be opened once, and its credits must be counted in one place.

use core::cell::UnsafeCell;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::{self as dsa, Engine, EngineOptions, Hints, OpHandle, Poll, StartError};
use crate::abi::{future_notifier, vdm, vdm_operation, vdm_operation_output, vdm_operation_result};
use crate::future::{self as fut, COMPLETE, IDLE, NOTIFIER_NONE, NOTIFIER_POLLER, RUNNING};
use crate::mover::cpu;
use crate::mover::pool::{configured_capacity, Pool};
use crate::mover::sync::fill_output;

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
    /// From the C enum value; `None` for anything else.
    pub fn from_raw(v: u32) -> Option<Path> {
        match v {
            0 => Some(Path::Software),
            1 => Some(Path::Hardware),
            2 => Some(Path::Auto),
            _ => None,
        }
    }
}

/// The AUTO threshold from `MINIASYNC_DSA_THRESHOLD` (decimal or 0x hex).
pub fn configured_threshold() -> usize {
    std::env::var(THRESHOLD_ENV)
        .ok()
        .and_then(|v| dsa::discovery::parse_u64(&v))
        .map_or(DEFAULT_THRESHOLD, |v| {
            usize::try_from(v).unwrap_or(usize::MAX)
        })
}

/// An engine, or why none could be opened.
type Opened = Result<Arc<Engine>, String>;

/// Op records of the shared engine (each 256 bytes, allocated up front).
/// When all are in use, HARDWARE operations stay IDLE until one frees up
/// and AUTO operations run on the CPU.
pub const ENGINE_OPS: u32 = 16384;

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
    let opts = EngineOptions {
        max_ops: configured_capacity().min(ENGINE_OPS),
        ..EngineOptions::from_env()
    };
    let r = dsa::open_from_env(opts).map(Arc::new);
    g.pid = pid;
    g.engine = Some(r.clone());
    r
}

const ST_IDLE: u32 = 0;
const ST_DEVICE: u32 = 1;
const ST_DONE: u32 = 2;

/// Per-operation record. Only the thread polling the future touches the
/// cells (vdm contract: one poller at a time).
pub struct DmlOp {
    mover: AtomicPtr<DmlMover>,
    state: AtomicU32,
    result: AtomicU32,
    handle: UnsafeCell<Option<OpHandle>>,
    op: UnsafeCell<Option<cpu::Op>>,
}

// SAFETY: the cells are accessed only by the thread currently polling the
// op's future (op_start/op_check/op_delete are never concurrent for one
// op); everything else is atomic.
unsafe impl Sync for DmlOp {}
// SAFETY: the raw pointers in the decoded op are plain addresses given by
// C with the operation.
unsafe impl Send for DmlOp {}

impl Default for DmlOp {
    fn default() -> Self {
        DmlOp {
            mover: AtomicPtr::new(core::ptr::null_mut()),
            state: AtomicU32::new(ST_IDLE),
            result: AtomicU32::new(0),
            handle: UnsafeCell::new(None),
            op: UnsafeCell::new(None),
        }
    }
}

impl DmlOp {
    pub fn owner(&self) -> *const DmlMover {
        self.mover.load(Ordering::Relaxed)
    }
}

/// A DSA mover. `vdm` must stay the first field (C casts between them).
#[repr(C)]
pub struct DmlMover {
    pub vdm: vdm,
    path: Path,
    engine: Option<Arc<Engine>>,
    threshold: usize,
    pool: Pool<DmlOp>,
}

/// Why a mover could not be made.
#[derive(Debug, PartialEq, Eq)]
pub enum NewError {
    /// HARDWARE without a usable work queue (the reason).
    NoDevice(String),
}

impl DmlMover {
    /// A mover on `path`. HARDWARE needs `engine`; AUTO uses it if given.
    pub fn new(
        vdm: vdm,
        path: Path,
        engine: Result<Arc<Engine>, String>,
        threshold: usize,
    ) -> Result<Box<DmlMover>, NewError> {
        let engine = match (path, engine) {
            (Path::Software, _) => None,
            (Path::Hardware, Err(why)) => return Err(NewError::NoDevice(why)),
            (_, e) => e.ok(),
        };
        Ok(Box::new(DmlMover {
            vdm,
            path,
            engine,
            threshold,
            pool: Pool::new(configured_capacity()),
        }))
    }

    pub fn path(&self) -> Path {
        self.path
    }

    /// Whether operations can go to a device.
    pub fn has_device(&self) -> bool {
        self.engine.is_some()
    }

    /// Reserves a record (`None`: the bound of outstanding ops is reached).
    pub fn op_new(&self) -> Option<&DmlOp> {
        let op = self.pool.alloc()?;
        op.mover
            .store((self as *const DmlMover).cast_mut(), Ordering::Relaxed);
        op.state.store(ST_IDLE, Ordering::Relaxed);
        Some(op)
    }

    /// Starts the operation: on the CPU (done before returning) or on the
    /// device. Returns false when it could not start yet (HARDWARE with no
    /// free op record): the future stays IDLE and the next poll retries.
    ///
    /// # Safety
    /// `op` must be a record of this mover polled by this thread only; the
    /// operation's buffers must be valid as its type implies until the
    /// future completes; `n` must be NULL or valid for writes.
    pub unsafe fn op_start(
        &self,
        op: &DmlOp,
        operation: &vdm_operation,
        n: *mut future_notifier,
    ) -> bool {
        if op.state.load(Ordering::Relaxed) != ST_IDLE {
            return true;
        }
        // SAFETY: caller's contract on `n`.
        unsafe { fut::set_notifier_used(n, NOTIFIER_NONE) };
        let decoded = match cpu::decode(operation) {
            Ok(d) => d,
            Err(_) => {
                self.finish(op, vdm_operation_result::VDM_ERROR_JOB_CORRUPTED);
                return true;
            }
        };
        let len = match decoded {
            cpu::Op::Copy { n, .. } | cpu::Op::Move { n, .. } | cpu::Op::Set { n, .. } => n,
            cpu::Op::Flush { n, .. } => n,
        };
        let engine = match (&self.engine, self.path) {
            (Some(e), Path::Hardware) => Some(e),
            (Some(e), Path::Auto) if len >= self.threshold => Some(e),
            _ => None,
        };
        if let Some(e) = engine {
            let queue = self.path == Path::Hardware;
            // SAFETY: forwarded caller contract: the buffers stay valid
            // until the future completes, and op_delete releases the handle
            // (waiting for the device) before the record is reused.
            match unsafe { e.start(&device_op(&decoded, flush_flags(operation)), queue) } {
                Ok(h) => {
                    let word = e.monitor_addr(&h);
                    // SAFETY: only the polling thread touches the cells
                    // (op_check reads the operation back for device ops).
                    unsafe {
                        *op.handle.get() = Some(h);
                        *op.op.get() = Some(decoded);
                    }
                    op.state.store(ST_DEVICE, Ordering::Relaxed);
                    if !n.is_null() {
                        // SAFETY: `n` is valid for writes (caller's contract).
                        unsafe {
                            fut::set_notifier_used(n, NOTIFIER_POLLER);
                            (*n).poller.ptr_to_monitor = word.cast_mut();
                        }
                    }
                    return true;
                }
                Err(StartError::NoRecord) if self.path == Path::Hardware => return false,
                Err(StartError::Invalid) => {
                    self.finish(op, vdm_operation_result::VDM_ERROR_JOB_CORRUPTED);
                    return true;
                }
                // Busy (AUTO), Unsupported (any path), NoRecord (AUTO): CPU.
                Err(_) => {}
            }
        }
        // SAFETY: forwarded caller contract; `decode` checked the ranges.
        unsafe { cpu::run(&decoded) };
        self.finish(op, vdm_operation_result::VDM_SUCCESS);
        true
    }

    fn finish(&self, op: &DmlOp, r: vdm_operation_result) {
        op.result.store(r as u32, Ordering::Relaxed);
        op.state.store(ST_DONE, Ordering::Release);
    }

    /// COMPLETE, RUNNING (on the device) or IDLE (not started). Finishes
    /// device operations: CPU write-back for durability without device
    /// readback, CPU completion of failed work on the AUTO path.
    ///
    /// # Safety
    /// As for [`op_start`](Self::op_start).
    pub unsafe fn op_check(&self, op: &DmlOp) -> u32 {
        match op.state.load(Ordering::Acquire) {
            ST_DONE => return COMPLETE,
            ST_IDLE => return IDLE,
            _ => {}
        }
        let e = self.engine.as_ref().expect("device op without an engine");
        // SAFETY: only the polling thread touches the cells.
        let (h, decoded) = unsafe { (&mut *op.handle.get(), (*op.op.get()).expect("started op")) };
        let h = h.as_mut().expect("device op has a handle");
        let result = match e.poll(h) {
            Poll::Running => return RUNNING,
            Poll::Done => {
                if !e.caps().durable_by_device {
                    // SAFETY: the destination was just written by the device.
                    unsafe { durable_writeback(&decoded) };
                }
                vdm_operation_result::VDM_SUCCESS
            }
            Poll::Failed(f) if self.path == Path::Auto && f.cpu_can_finish() => {
                // SAFETY: the remainder lies inside the operation's buffers,
                // which the device no longer touches.
                unsafe { run_remainder(&f.remaining, &decoded) };
                vdm_operation_result::VDM_SUCCESS
            }
            Poll::Failed(_) => vdm_operation_result::VDM_ERROR_JOB_CORRUPTED,
        };
        self.finish(op, result);
        COMPLETE
    }

    /// Fills the output and releases the record (after the device is done
    /// with the operation, if it was still running).
    ///
    /// # Safety
    /// `op` must be a record of this mover that is not used afterwards.
    pub unsafe fn op_delete(
        &self,
        op: &DmlOp,
        operation: &vdm_operation,
        output: &mut vdm_operation_output,
    ) {
        // SAFETY: only the polling thread touches the cells.
        let h = unsafe { (*op.handle.get()).take() };
        let result = match op.state.load(Ordering::Acquire) {
            ST_DONE => op.result.load(Ordering::Relaxed),
            _ => vdm_operation_result::VDM_ERROR_JOB_CORRUPTED as u32,
        };
        if let (Some(h), Some(e)) = (h, self.engine.as_ref()) {
            e.release(h);
        }
        fill_output(operation, output, result);
        // SAFETY: forwarded caller contract.
        unsafe { self.pool.free(op) };
    }

    /// Outstanding records (for tests).
    pub fn outstanding(&self) -> u32 {
        self.pool.outstanding()
    }
}

/// The engine's view of a decoded operation. `flush_flags` are the flags
/// of a flush (which `cpu::Op::Flush` does not carry).
fn device_op(op: &cpu::Op, flush_flags: u64) -> dsa::Op {
    let hints = |flags: u64| Hints {
        durable: flags & cpu::F_MEM_DURABLE != 0,
        no_cache: flags & cpu::F_NO_CACHE_HINT != 0,
    };
    match *op {
        cpu::Op::Copy { dst, src, n, flags } | cpu::Op::Move { dst, src, n, flags } => {
            dsa::Op::copy(dst as usize, src as usize, n, hints(flags))
        }
        cpu::Op::Set {
            dst,
            byte,
            n,
            flags,
        } => dsa::Op::fill(dst as usize, byte, n, hints(flags)),
        // As upstream: a flush keeps the lines cached (CC, "don't
        // invalidate") unless VDM_F_NO_CACHE_HINT asks otherwise.
        cpu::Op::Flush { dst, n } => dsa::Op::flush(dst as usize, n, hints(flush_flags)),
    }
}

/// The flags of a flush operation (0 for other types).
fn flush_flags(operation: &vdm_operation) -> u64 {
    if cpu::raw_type(operation) == crate::abi::vdm_operation_type::VDM_OPERATION_FLUSH as u32 {
        // SAFETY: plain-data union member selected by the type field.
        unsafe { operation.data.flush.flags }
    } else {
        0
    }
}

/// CPU write-back of a durable operation's destination.
///
/// # Safety
/// The destination range must be mapped.
unsafe fn durable_writeback(op: &cpu::Op) {
    match *op {
        cpu::Op::Copy { dst, n, flags, .. }
        | cpu::Op::Move { dst, n, flags, .. }
        | cpu::Op::Set { dst, n, flags, .. } => {
            // SAFETY: caller's contract.
            unsafe { cpu::durable(dst, n, flags) }
        }
        cpu::Op::Flush { .. } => {}
    }
}

/// Run what the device left on the CPU, then make it durable if asked.
///
/// # Safety
/// The remainder must lie inside `whole`'s buffers, valid as its type
/// implies, and no longer be touched by the device.
unsafe fn run_remainder(rem: &dsa::Remainder, whole: &cpu::Op) {
    for part in rem.ops() {
        // SAFETY: caller's contract for each part.
        unsafe {
            match part.kind {
                dsa::OpKind::Copy => {
                    libc::memmove(part.dst as *mut _, part.src as *const _, part.len);
                }
                dsa::OpKind::Fill => {
                    libc::memset(part.dst as *mut _, i32::from(part.pattern as u8), part.len);
                }
                dsa::OpKind::Flush => cpu::flush(part.dst as *const u8, part.len),
            }
        }
    }
    // SAFETY: caller's contract.
    unsafe { durable_writeback(whole) };
}
