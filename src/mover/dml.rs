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

use super::cpu;
use super::dsa::{self, Engine, EngineOptions, Hints, OpHandle, Poll, StartError};
use super::pool::{configured_capacity, Pool};
use super::sync::fill_output;
use crate::abi::{future_notifier, vdm, vdm_operation, vdm_operation_output, vdm_operation_result};
use crate::future::{self as fut, COMPLETE, IDLE, NOTIFIER_NONE, NOTIFIER_POLLER, RUNNING};

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
        // SAFETY: only the polling thread touches the cells.
        unsafe { *op.op.get() = Some(decoded) };
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
                    // SAFETY: only the polling thread touches the cells.
                    unsafe { *op.handle.get() = Some(h) };
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
        // SAFETY: as above.
        unsafe { *op.op.get() = None };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{
        future_notifier_type, future_poller, future_waker, vdm_operation_args,
        vdm_operation_data_memcpy, vdm_operation_data_memset, vdm_operation_type,
    };
    use crate::mover::dsa::descriptor::{gencap, opcode};
    use crate::mover::dsa::testutil::{pattern, rig};
    use crate::mover::emu::{EmuConfig, Forced, Stall, DEFAULT_GENCAP};

    fn blank_vdm() -> vdm {
        vdm {
            op_new: None,
            op_delete: None,
            op_start: None,
            op_check: None,
            capabilities: 3,
            has_property: None,
        }
    }

    fn copy(
        ty: vdm_operation_type,
        dst: *mut u8,
        src: *const u8,
        n: usize,
        flags: u64,
    ) -> vdm_operation {
        let memcpy = vdm_operation_data_memcpy {
            dest: dst.cast(),
            src: src.cast_mut().cast(),
            n,
            flags,
        };
        vdm_operation {
            data: vdm_operation_args { memcpy },
            r#type: ty,
            padding: 0,
        }
    }

    fn set(dst: *mut u8, c: u8, n: usize, flags: u64) -> vdm_operation {
        let memset = vdm_operation_data_memset {
            str: dst.cast(),
            c: c.into(),
            n,
            flags,
        };
        vdm_operation {
            data: vdm_operation_args { memset },
            r#type: vdm_operation_type::VDM_OPERATION_MEMSET,
            padding: 0,
        }
    }

    fn notifier() -> future_notifier {
        future_notifier {
            waker: future_waker {
                data: core::ptr::null_mut(),
                wake: None,
            },
            poller: future_poller {
                ptr_to_monitor: core::ptr::null_mut(),
            },
            notifier_used: future_notifier_type::FUTURE_NOTIFIER_WAKER,
            padding: 0,
        }
    }

    /// Start, poll to completion, delete; returns (result, notifier used,
    /// poller address set).
    fn run(m: &DmlMover, operation: &vdm_operation) -> (u32, u32, bool) {
        let op = m.op_new().unwrap();
        let mut n = notifier();
        // SAFETY: the test's buffers outlive the op, polled on this thread.
        while !unsafe { m.op_start(op, operation, &mut n) } {
            std::thread::yield_now();
        }
        // SAFETY: as above.
        while unsafe { m.op_check(op) } != COMPLETE {
            std::thread::yield_now();
        }
        // SAFETY: a zeroed output is a valid value to overwrite.
        let mut out: vdm_operation_output = unsafe { core::mem::zeroed() };
        // SAFETY: the record is not used afterwards.
        unsafe { m.op_delete(op, operation, &mut out) };
        let r = out.result as u32;
        (
            r,
            fut::notifier_used(&n),
            !n.poller.ptr_to_monitor.is_null(),
        )
    }

    const OK: u32 = vdm_operation_result::VDM_SUCCESS as u32;
    const CORRUPTED: u32 = vdm_operation_result::VDM_ERROR_JOB_CORRUPTED as u32;
    const MEMCPY: vdm_operation_type = vdm_operation_type::VDM_OPERATION_MEMCPY;
    const MEMMOVE: vdm_operation_type = vdm_operation_type::VDM_OPERATION_MEMMOVE;

    fn mover(
        path: Path,
        cfg: Option<EmuConfig>,
        threshold: usize,
    ) -> (Option<Arc<crate::mover::emu::EmuDevice>>, Box<DmlMover>) {
        match cfg {
            Some(c) => {
                let (dev, eng) = rig(c, EngineOptions::default());
                (
                    Some(dev),
                    DmlMover::new(blank_vdm(), path, Ok(Arc::new(eng)), threshold).unwrap(),
                )
            }
            None => (
                None,
                DmlMover::new(blank_vdm(), path, Err("none".into()), threshold).unwrap(),
            ),
        }
    }

    #[test]
    fn hardware_needs_a_device() {
        let r = DmlMover::new(blank_vdm(), Path::Hardware, Err("no wq".into()), 0);
        assert_eq!(r.err(), Some(NewError::NoDevice("no wq".into())));
        assert_eq!(Path::from_raw(3), None);
        assert_eq!(Path::from_raw(2), Some(Path::Auto));
    }

    #[test]
    fn software_and_small_auto_ops_run_on_the_cpu_with_notifier_none() {
        for (path, cfg) in [
            (Path::Software, None),
            (Path::Auto, None),
            (Path::Auto, Some(EmuConfig::default())),
        ] {
            let (dev, m) = mover(path, cfg, 1 << 20);
            let src = pattern(5000, 1);
            let mut dst = vec![0u8; 5000];
            assert_eq!(
                run(&m, &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 5000, 3)),
                (OK, NOTIFIER_NONE, false)
            );
            assert!(dst == src);
            let p = dst.as_mut_ptr();
            assert_eq!(
                run(&m, &copy(MEMMOVE, p.wrapping_add(10), p, 4000, 0)).0,
                OK
            );
            assert_eq!(&dst[10..4010], &src[..4000]);
            assert_eq!(run(&m, &set(p, 7, 5000, 1)).0, OK);
            assert!(dst.iter().all(|&b| b == 7));
            if let Some(d) = dev {
                assert_eq!(
                    d.stats().accepted,
                    0,
                    "below the threshold nothing reaches the device"
                );
            }
        }
    }

    #[test]
    fn device_path_sets_the_poller_and_moves_the_data() {
        for path in [Path::Hardware, Path::Auto] {
            let (dev, m) = mover(
                path,
                Some(EmuConfig {
                    max_transfer_size: 4096,
                    ..Default::default()
                }),
                0,
            );
            let dev = dev.unwrap();
            let src = pattern(100_000, 2);
            let mut dst = vec![0u8; 100_003];
            for flags in 0..4u64 {
                let r = run(
                    &m,
                    &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 100_000, flags),
                );
                assert_eq!(r, (OK, NOTIFIER_POLLER, true), "{path:?} flags {flags}");
                assert!(dst[..100_000] == src[..]);
                dst.fill(0);
            }
            let p = dst.as_mut_ptr();
            let mut want = dst.clone();
            want.copy_within(0..99_000, 3);
            assert_eq!(
                run(&m, &copy(MEMMOVE, p.wrapping_add(3), p, 99_000, 0)).0,
                OK
            );
            assert!(dst == want);
            assert_eq!(run(&m, &set(p, 0x5a, 77_777, 1)).1, NOTIFIER_POLLER);
            assert!(dst[..77_777].iter().all(|&b| b == 0x5a));
            assert_eq!(dst[77_777], want[77_777]);
            assert!(dev.stats().accepted > 0);
            assert!(dev.swerror().is_empty());
        }
    }

    #[test]
    fn device_errors_finish_on_the_cpu_in_auto_and_fail_in_hardware() {
        for (path, want) in [(Path::Auto, OK), (Path::Hardware, CORRUPTED)] {
            let (dev, m) = mover(path, Some(EmuConfig::default()), 0);
            let dev = dev.unwrap();
            let src = pattern(20_000, 3);
            let mut dst = vec![0u8; 20_000];
            dev.force(
                opcode::MEMMOVE,
                Forced::Fault {
                    bytes_completed: 5000,
                    write: true,
                },
            );
            dev.force(
                opcode::MEMMOVE,
                Forced::Status(crate::mover::dsa::completion::status::HW_ERR1),
            );
            let r = run(&m, &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 20_000, 0));
            assert_eq!(r.0, want, "{path:?}");
            assert_eq!(&dst[..5000], &src[..5000], "resumed after the fault");
            if want == OK {
                assert!(dst == src, "the CPU finished the rest");
            }
        }
    }

    #[test]
    fn overlap_without_device_support_runs_on_the_cpu_even_in_hardware() {
        let cfg = EmuConfig {
            gen_cap: DEFAULT_GENCAP & !gencap::OVERLAP_COPY,
            ..Default::default()
        };
        let (dev, m) = mover(Path::Hardware, Some(cfg), 0);
        let mut buf = pattern(10_000, 4);
        let mut want = buf.clone();
        want.copy_within(0..9000, 1000);
        let p = buf.as_mut_ptr();
        assert_eq!(
            run(&m, &copy(MEMMOVE, p.wrapping_add(1000), p, 9000, 0)),
            (OK, NOTIFIER_NONE, false)
        );
        assert!(buf == want);
        assert_eq!(dev.unwrap().stats().accepted, 0);
    }

    #[test]
    fn hardware_queues_when_the_wq_is_full_and_auto_uses_the_cpu() {
        for path in [Path::Hardware, Path::Auto] {
            let cfg = EmuConfig {
                wq_size: 4,
                stall: Stall::Manual,
                ..Default::default()
            };
            let (dev, m) = mover(path, Some(cfg), 0);
            let dev = dev.unwrap();
            let src = pattern(64 * 100, 5);
            let mut dst = vec![0u8; 64 * 100];
            let ops: Vec<(&DmlOp, vdm_operation)> = (0..100)
                .map(|i| {
                    // SAFETY: offsets inside the buffers.
                    let o = unsafe {
                        copy(
                            MEMCPY,
                            dst.as_mut_ptr().add(64 * i),
                            src.as_ptr().add(64 * i),
                            64,
                            0,
                        )
                    };
                    (m.op_new().unwrap(), o)
                })
                .collect();
            let mut cpu_done = 0;
            for (op, o) in &ops {
                let mut n = notifier();
                // SAFETY: buffers outlive the ops; one thread polls.
                assert!(unsafe { m.op_start(op, o, &mut n) });
                cpu_done += usize::from(fut::notifier_used(&n) == NOTIFIER_NONE);
            }
            assert!(dev.swerror().is_empty());
            match path {
                Path::Hardware => assert_eq!(cpu_done, 0),
                _ => assert_eq!(cpu_done, 96, "AUTO: 4 on the device, the rest on the CPU"),
            }
            dev.set_stalled(false);
            for (op, o) in ops {
                // SAFETY: as above.
                while unsafe { m.op_check(op) } != COMPLETE {
                    std::thread::yield_now();
                }
                // SAFETY: a zeroed output is valid; the record dies here.
                let mut out: vdm_operation_output = unsafe { core::mem::zeroed() };
                // SAFETY: as above.
                unsafe { m.op_delete(op, &o, &mut out) };
                assert_eq!(out.result as u32, OK);
            }
            assert!(dst == src);
            assert_eq!(m.outstanding(), 0);
        }
    }

    #[test]
    fn bad_operations_are_refused_without_touching_memory() {
        let (_dev, m) = mover(Path::Hardware, Some(EmuConfig::default()), 0);
        let mut dst = [0u8; 8];
        let r = run(&m, &copy(MEMCPY, dst.as_mut_ptr(), core::ptr::null(), 8, 0));
        assert_eq!(r.0, CORRUPTED);
        assert_eq!(dst, [0; 8]);
    }
}
