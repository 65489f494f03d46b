//! The threads mover: operations are queued on a bounded lock-free queue
//! and executed by worker threads that sleep when there is nothing to do.
//!
//! Waking (issue 12): an idle worker spins briefly, then announces itself
//! on the mover's event count ([`crate::sync::EventCount`]), re-checks the
//! queue and sleeps (at most `WORKER_SLEEP`). Every push notifies the
//! event count, and each notify claims a different sleeping worker: an
//! operation queued while some worker sleeps unclaimed always wakes one,
//! even if the workers woken before it have not run yet. While every
//! worker is awake a push costs a fence and a load (no lock, no system
//! call).
//!
//! Ownership: the poller thread owns a record from `op_new` to `op_delete`;
//! a worker only touches it between dequeuing it and publishing completion,
//! then (for a WAKER) calls the waker from copies and finally clears
//! `worker_busy`; `op_delete` waits for that flag, so neither the record nor
//! the waker's target can be released while a worker still uses them.

use core::ffi::{c_int, c_uint, c_void};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use super::stats::{Counter, Kind, MoverStats};
use super::{configured_capacity, cpu, result_of, BadOp, Hints, Mover, Op, OpKind, Pool};
use crate::abi::{
    future_notifier_type, future_state, memcpy_fn, memmove_fn, memset_fn, vdm, vdm_operation_result,
};
use crate::ffi::fnptr;
use crate::ffi::view::{Notifier, RawEnum, Waker};
use crate::sync::{backoff, Backoff, EventCount};

const ST_IDLE: u32 = 0;
const ST_QUEUED: u32 = 1;
const ST_DONE: u32 = 2;

/// Largest accepted queue size (slots).
pub const MAX_RING: usize = 1 << 24;
/// Largest accepted worker count.
pub const MAX_THREADS: usize = 4096;
/// `data_mover_threads_default()`: workers, as upstream.
pub const DEFAULT_THREADS: usize = 12;
/// `data_mover_threads_default()`: queue slots, as upstream.
pub const DEFAULT_RING: usize = 128;
/// `data_mover_threads_default()`: the notifier of its futures.
pub const DEFAULT_NOTIFIER: future_notifier_type = future_notifier_type::FUTURE_NOTIFIER_WAKER;

/// Spins of an idle worker before it sleeps (about 25-60 us of PAUSE on
/// current x86 cores): long enough to catch the next operation of a burst
/// without a futex round trip, short enough that an idle mover costs no CPU.
const WORKER_SPINS: u32 = 1000;
/// Longest sleep of an idle worker. Wakes are never lost, so this is a
/// safety net only: a broken wake costs latency, never a hang.
const WORKER_SLEEP: Duration = Duration::from_millis(100);
/// `op_delete` waiting for a worker to let go of a record: spins, then
/// yields to a worker that may have been preempted.
const DELETE_SPINS: u32 = 128;

/// Per-operation record.
pub struct ThreadsOp {
    mover: AtomicPtr<ThreadsMover>,
    state: AtomicU32,
    result: AtomicU32,
    /// Becomes 1 on completion: the FUTURE_NOTIFIER_POLLER address.
    complete_word: AtomicU64,
    /// A worker holds the record (from dequeue to after the wake).
    worker_busy: AtomicBool,
    /// The queued work: written by the poller before the push, read by the
    /// worker after the pop.
    job: UnsafeCell<Job>,
}

/// What a worker needs of a queued operation.
#[derive(Clone, Copy)]
struct Job {
    op: Op,
    notify: Notify,
}

/// How the worker tells the future it completed.
#[derive(Clone, Copy)]
enum Notify {
    /// Nothing: the future polls (FUTURE_NOTIFIER_NONE).
    None,
    /// Call the waker (FUTURE_NOTIFIER_WAKER); a waker with a NULL
    /// function is reported as used and never called.
    Waker(Option<Waker>),
    /// Write the record's word (FUTURE_NOTIFIER_POLLER).
    Poller,
}

impl Default for ThreadsOp {
    fn default() -> Self {
        ThreadsOp {
            mover: AtomicPtr::new(core::ptr::null_mut()),
            state: AtomicU32::new(ST_IDLE),
            result: AtomicU32::new(0),
            complete_word: AtomicU64::new(0),
            worker_busy: AtomicBool::new(false),
            job: UnsafeCell::new(Job {
                op: Op::fill(0, 0, 0, Hints::default()),
                notify: Notify::None,
            }),
        }
    }
}

// SAFETY: `job` is written only by the owning poller thread while the record
// is not queued, and read by a worker only after the queue hand-off (which
// orders the write before the read); everything else is atomic.
unsafe impl Sync for ThreadsOp {}
// SAFETY: the job's addresses are plain integers handed over by C with the
// operation, and a waker may be called from any thread.
unsafe impl Send for ThreadsOp {}

/// State shared by the mover handle and its workers.
struct Shared {
    queue: ArrayQueue<usize>,
    pool: Pool<ThreadsOp>,
    notifier: future_notifier_type,
    memcpy: AtomicPtr<()>,
    memmove: AtomicPtr<()>,
    memset: AtomicPtr<()>,
    /// Idle workers sleep here; every push notifies it.
    ev: EventCount,
    stop: AtomicBool,
}

/// A threads mover. `vdm` must stay the first field (see `SyncMover`).
#[repr(C)]
pub struct ThreadsMover {
    pub vdm: vdm,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    pub stats: MoverStats,
}

/// Why a threads mover could not be made.
#[derive(Debug, PartialEq, Eq)]
pub enum NewError {
    BadArgument,
    ThreadSpawn,
}

unsafe extern "C" fn default_memcpy(
    dst: *mut c_void,
    src: *const c_void,
    n: usize,
    flags: c_uint,
) -> *mut c_void {
    // SAFETY: the worker only calls this with a decoded, checked memcpy
    // whose buffers the C caller vouched for.
    unsafe {
        cpu::run(&Op::copy(
            dst as usize,
            src as usize,
            n,
            Hints::from_flags(flags.into()),
        ))
    };
    dst
}

unsafe extern "C" fn default_memmove(
    dst: *mut c_void,
    src: *const c_void,
    n: usize,
    flags: c_uint,
) -> *mut c_void {
    // SAFETY: as for `default_memcpy`.
    unsafe {
        cpu::run(&Op::moving(
            dst as usize,
            src as usize,
            n,
            Hints::from_flags(flags.into()),
        ))
    };
    dst
}

unsafe extern "C" fn default_memset(
    dst: *mut c_void,
    c: c_int,
    n: usize,
    flags: c_uint,
) -> *mut c_void {
    // SAFETY: as for `default_memcpy`.
    unsafe {
        cpu::run(&Op::fill(
            dst as usize,
            c as u8,
            n,
            Hints::from_flags(flags.into()),
        ))
    };
    dst
}

impl ThreadsMover {
    /// A mover with `nthreads` workers, a queue of `ring` slots (rounded up
    /// to a power of two) and the given notifier type for its futures.
    pub fn new(
        vdm: vdm,
        nthreads: usize,
        ring: usize,
        notifier: RawEnum<future_notifier_type>,
    ) -> Result<Box<ThreadsMover>, NewError> {
        if nthreads == 0 || nthreads > MAX_THREADS || ring == 0 || ring > MAX_RING {
            return Err(NewError::BadArgument);
        }
        let Some(notifier) = notifier.known() else {
            return Err(NewError::BadArgument);
        };
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(ring.next_power_of_two()),
            pool: Pool::new(configured_capacity()),
            notifier,
            memcpy: AtomicPtr::new(fnptr::copy_fn_ptr(default_memcpy)),
            memmove: AtomicPtr::new(fnptr::copy_fn_ptr(default_memmove)),
            memset: AtomicPtr::new(fnptr::set_fn_ptr(default_memset)),
            ev: EventCount::new(),
            stop: AtomicBool::new(false),
        });
        let mut mover = Box::new(ThreadsMover {
            vdm,
            shared,
            workers: Vec::with_capacity(nthreads),
            stats: MoverStats::new(Kind::Threads, None, None),
        });
        for i in 0..nthreads {
            let shared = Arc::clone(&mover.shared);
            match std::thread::Builder::new()
                .name(format!("miniasync-w{i}"))
                .spawn(move || worker(&shared))
            {
                Ok(h) => mover.workers.push(h),
                Err(_) => {
                    mover.shutdown();
                    return Err(NewError::ThreadSpawn);
                }
            }
        }
        mover.stats.register();
        Ok(mover)
    }

    /// Replaces the memcpy function (None restores the built-in one).
    pub fn set_memcpy(&self, f: memcpy_fn) {
        self.shared.memcpy.store(
            fnptr::copy_fn_ptr(f.unwrap_or(default_memcpy)),
            Ordering::Release,
        );
    }

    /// Replaces the memmove function (None restores the built-in one).
    pub fn set_memmove(&self, f: memmove_fn) {
        self.shared.memmove.store(
            fnptr::copy_fn_ptr(f.unwrap_or(default_memmove)),
            Ordering::Release,
        );
    }

    /// Replaces the memset function (None restores the built-in one).
    pub fn set_memset(&self, f: memset_fn) {
        self.shared.memset.store(
            fnptr::set_fn_ptr(f.unwrap_or(default_memset)),
            Ordering::Release,
        );
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.ev.notify_all();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for ThreadsMover {
    /// Workers execute everything already queued, then exit and are joined.
    fn drop(&mut self) {
        self.shutdown();
        self.stats.unregister();
    }
}

fn worker(shared: &Shared) {
    let mut idle = Backoff::new(WORKER_SPINS, 0);
    loop {
        if let Some(p) = shared.queue.pop() {
            idle.reset();
            // SAFETY: only records of this mover's pool are queued, and a
            // queued record stays allocated until its op_delete, which waits
            // for `worker_busy` to clear.
            execute(shared, unsafe { &*(p as *const ThreadsOp) });
            continue;
        }
        if shared.stop.load(Ordering::Acquire) {
            // Stop only once the queue is empty: queued work is executed.
            if shared.queue.is_empty() {
                return;
            }
            continue;
        }
        if idle.snooze() {
            continue;
        }
        // Announce, re-check, sleep: a push after the announcement claims
        // this worker (or another sleeper), one before it is seen here.
        let a = shared.ev.announce();
        if !shared.queue.is_empty() || shared.stop.load(Ordering::SeqCst) {
            shared.ev.cancel(a);
        } else {
            shared.ev.wait(a, WORKER_SLEEP);
        }
        idle.reset();
    }
}

fn execute(shared: &Shared, op: &ThreadsOp) {
    // SAFETY: the queue hand-off orders the poller's write of the job
    // before this read, and the poller does not touch it while queued.
    let Job { op: d, notify } = unsafe { *op.job.get() };
    let (dst, src, n, flags) = (d.dst as *mut c_void, d.src as *const c_void, d.len, d.flags);
    // SAFETY: in all arms the operation was checked by `decode`, the
    // buffers are the C caller's promise, and the stored words hold
    // functions of the C signatures of `memcpy_fn` and friends.
    unsafe {
        match d.kind {
            OpKind::Copy => {
                fnptr::copy_fn_of(shared.memcpy.load(Ordering::Acquire))(
                    dst,
                    src,
                    n,
                    flags as c_uint,
                );
            }
            OpKind::Move => {
                fnptr::copy_fn_of(shared.memmove.load(Ordering::Acquire))(
                    dst,
                    src,
                    n,
                    flags as c_uint,
                );
            }
            OpKind::Fill => {
                fnptr::set_fn_of(shared.memset.load(Ordering::Acquire))(
                    dst,
                    (d.pattern as u8).into(),
                    n,
                    flags as c_uint,
                );
            }
            OpKind::Flush => cpu::flush(dst as *const u8, n),
        }
    }
    let waker = match notify {
        Notify::Waker(w) => w,
        _ => None,
    };
    // Must the record (and the waker's target) outlive the publication?
    // For a POLLER the monitored word is written after DONE, so that a
    // poller seeing it polls COMPLETE; a waker's target may be released
    // as soon as the future completes, so it is called while op_delete
    // still waits, unless the waker says its target is never released
    // (the runtime's: then the poller need not wait for the wake, which
    // on an oversubscribed CPU can mean waiting for a preempted worker).
    let hold = matches!(notify, Notify::Poller) || waker.is_some_and(|w| !w.is_permanent());
    op.result
        .store(vdm_operation_result::VDM_SUCCESS as u32, Ordering::Relaxed);
    if hold {
        op.state.store(ST_DONE, Ordering::Release);
        op.complete_word.store(1, Ordering::Release);
    } else {
        op.complete_word.store(1, Ordering::Relaxed);
        op.worker_busy.store(false, Ordering::Relaxed);
        // The last touch of the record: op_delete may free it right after.
        op.state.store(ST_DONE, Ordering::Release);
    }
    if let Some(w) = waker {
        // SAFETY: the waker was supplied with the poll that queued this op.
        // It is valid until the future is complete and deleted, which
        // op_delete holds back until `worker_busy` clears below, or its
        // target is permanent (`Waker::is_permanent`).
        unsafe { w.wake() };
    }
    if hold {
        op.worker_busy.store(false, Ordering::Release);
    }
}

impl Mover for ThreadsMover {
    type Op = ThreadsOp;

    /// None, as upstream: the workers run the memory functions, which
    /// offer no durability or cache control.
    const CAPABILITIES: u32 = 0;

    unsafe fn owner_of(op: &ThreadsOp) -> &ThreadsMover {
        // SAFETY: caller's contract: a live record, whose `op_new` stored
        // its (living) mover.
        unsafe { &*op.mover.load(Ordering::Relaxed) }
    }

    fn new_op(&self) -> Option<&ThreadsOp> {
        let op = self.shared.pool.alloc()?;
        op.mover
            .store((self as *const ThreadsMover).cast_mut(), Ordering::Relaxed);
        op.state.store(ST_IDLE, Ordering::Relaxed);
        op.complete_word.store(0, Ordering::Relaxed);
        Some(op)
    }

    /// Queues the operation; its future uses the mover's notifier type
    /// (NONE without a notifier). Returns false when the queue is full:
    /// the operation stays IDLE, the notifier is marked NONE (no wake will
    /// come) and the next poll tries again. A refused operation completes
    /// at once with `VDM_ERROR_JOB_CORRUPTED`.
    unsafe fn start(
        &self,
        op: &ThreadsOp,
        operation: Result<Op, BadOp>,
        mut n: Notifier<'_>,
    ) -> bool {
        if op.state.load(Ordering::Relaxed) != ST_IDLE {
            return true;
        }
        let Ok(decoded) = operation else {
            self.stats.add(Counter::Ops, 1);
            self.stats.add(Counter::Errors, 1);
            // Refused without touching memory; complete right away.
            op.result.store(
                vdm_operation_result::VDM_ERROR_JOB_CORRUPTED as u32,
                Ordering::Relaxed,
            );
            op.state.store(ST_DONE, Ordering::Release);
            op.complete_word.store(1, Ordering::Release);
            n.use_none();
            return true;
        };
        let notify = match self.shared.notifier {
            _ if !n.is_present() => Notify::None,
            future_notifier_type::FUTURE_NOTIFIER_NONE => Notify::None,
            future_notifier_type::FUTURE_NOTIFIER_WAKER => Notify::Waker(n.waker()),
            future_notifier_type::FUTURE_NOTIFIER_POLLER => Notify::Poller,
        };
        // SAFETY: the record is not queued, so only this thread touches it.
        unsafe {
            *op.job.get() = Job {
                op: decoded,
                notify,
            }
        };
        op.worker_busy.store(true, Ordering::Relaxed);
        // QUEUED must be stored before the push: once the record is on the
        // queue a worker may run it and store DONE at any moment, and a
        // later QUEUED store would overwrite DONE (the future would stay
        // RUNNING forever). The push orders this store before the worker's.
        op.state.store(ST_QUEUED, Ordering::Relaxed);
        if self
            .shared
            .queue
            .push(op as *const ThreadsOp as usize)
            .is_err()
        {
            // Not queued: no worker has seen the record.
            op.state.store(ST_IDLE, Ordering::Relaxed);
            op.worker_busy.store(false, Ordering::Relaxed);
            n.use_none();
            return false;
        }
        match notify {
            Notify::None => n.use_none(),
            Notify::Waker(_) => n.use_waker(),
            Notify::Poller => n.use_poller(op.complete_word.as_ptr()),
        }
        // A sleeping worker that no earlier push claimed, if any.
        self.shared.ev.notify_one();
        self.stats.started_on_cpu(&decoded);
        true
    }

    /// COMPLETE, RUNNING (queued or executing) or IDLE (not queued).
    unsafe fn check(&self, op: &ThreadsOp) -> future_state {
        match op.state.load(Ordering::Acquire) {
            ST_DONE => future_state::FUTURE_STATE_COMPLETE,
            ST_QUEUED => future_state::FUTURE_STATE_RUNNING,
            _ => future_state::FUTURE_STATE_IDLE,
        }
    }

    /// Releases the record once no worker holds it.
    unsafe fn delete(&self, op: &ThreadsOp) -> vdm_operation_result {
        let result = match op.state.load(Ordering::Acquire) {
            ST_DONE => result_of(op.result.load(Ordering::Relaxed)),
            _ => vdm_operation_result::VDM_ERROR_JOB_CORRUPTED,
        };
        // A worker may still be calling a foreign waker or setting the
        // POLLER word; it may also have been preempted, so spin only briefly
        // before giving it the CPU.
        let mut wait = Backoff::new(DELETE_SPINS, backoff::FOREVER);
        while op.worker_busy.load(Ordering::Acquire) {
            wait.snooze();
        }
        // SAFETY: caller's contract; no worker holds the record.
        unsafe { self.shared.pool.free(op) };
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{
        vdm_operation, vdm_operation_args, vdm_operation_data_memcpy, vdm_operation_type,
    };
    use crate::ffi::view::decode;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    static GATE_OPEN: AtomicBool = AtomicBool::new(false);
    static ENTERED: AtomicUsize = AtomicUsize::new(0);

    /// A memcpy that holds its worker until the test opens the gate
    /// (bounded: it gives up after 20 s, which fails the test below).
    unsafe extern "C" fn gated(
        dst: *mut c_void,
        _src: *const c_void,
        _n: usize,
        _flags: c_uint,
    ) -> *mut c_void {
        ENTERED.fetch_add(1, Ordering::SeqCst);
        let t0 = Instant::now();
        while !GATE_OPEN.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(1));
        }
        dst
    }

    fn until(what: &str, f: impl Fn() -> bool) {
        let t0 = Instant::now();
        while !f() {
            assert!(t0.elapsed() < Duration::from_secs(20), "timed out: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Issue 12: two pushes made back to back while both workers sleep
    /// wake both, before either woken worker has run (the old single
    /// "wake pending" flag made the second push wake nobody; its worker
    /// then waited for the first one to run and chain the wake).
    #[test]
    fn each_push_wakes_its_own_sleeping_worker() {
        let vdm = vdm {
            op_new: None,
            op_delete: None,
            op_start: None,
            op_check: None,
            capabilities: 0,
            has_property: None,
        };
        let m = ThreadsMover::new(
            vdm,
            2,
            8,
            RawEnum::of(future_notifier_type::FUTURE_NOTIFIER_NONE),
        )
        .unwrap();
        m.set_memcpy(Some(gated));
        until("both workers asleep", || m.shared.ev.unclaimed() == 2);
        let mut buf = [0u8; 8];
        let operation = vdm_operation {
            data: vdm_operation_args {
                memcpy: vdm_operation_data_memcpy {
                    dest: buf.as_mut_ptr().cast(),
                    src: buf.as_mut_ptr().cast(),
                    n: 0,
                    flags: 0,
                },
            },
            r#type: vdm_operation_type::VDM_OPERATION_MEMCPY,
            padding: 0,
        };
        let ops = [m.new_op().unwrap(), m.new_op().unwrap()];
        for op in ops {
            // SAFETY: a record of this mover; no notifier.
            assert!(unsafe {
                m.start(
                    op,
                    decode(core::ptr::NonNull::from(&operation)),
                    Notifier::absent(),
                )
            });
        }
        // The workers are held in `gated` once they run, so none can have
        // announced itself again: both announcements were claimed by the
        // two pushes themselves.
        let unclaimed = m.shared.ev.unclaimed();
        until("both operations picked up", || {
            ENTERED.load(Ordering::SeqCst) == 2
        });
        GATE_OPEN.store(true, Ordering::SeqCst);
        for op in ops {
            // SAFETY: a record of this mover, polled by this thread.
            until(
                "completion",
                || unsafe { m.check(op) } == future_state::FUTURE_STATE_COMPLETE,
            );
            // SAFETY: a completed record of this mover, not used after.
            let r = unsafe { m.delete(op) };
            assert_eq!(r, vdm_operation_result::VDM_SUCCESS);
        }
        assert_eq!(unclaimed, 0, "the second push left a worker asleep");
    }
}
