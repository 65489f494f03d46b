//! The runtime: polls a set of futures until every one is complete.
//!
//! Each pass orders the futures (ASYNC-property first, otherwise keeping the
//! previous pass's order: a stable three-way partition in O(n), skipped when
//! the order is already right) and polls the incomplete ones with a fully
//! initialised notifier carrying the runtime's waker. Between passes it
//! spins briefly; then, if every pending future registered the waker, it
//! sleeps on its event count ([`crate::sync::EventCount`]): it announces
//! that it is about to sleep, polls once more and sleeps until a wake
//! claims the announcement: a completion published before the announcement
//! is seen by that last pass, and a wake after it finds the announcement,
//! so no wake is lost (while nobody is about to sleep, a wake costs a
//! fence and one load). Futures that registered no waker, or could not
//! start (IDLE), are re-polled in bursts of 50 us separated by sleeps that
//! double from 1 us to 256 us; any state change restarts at once.

use core::ffi::c_void;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::abi::{future_notifier_type, future_property, future_state, future_waker};
use crate::ffi::runtime_wake;
use crate::ffi::view::{FutureRef, OwnedNotifier, RawEnum};
use crate::sync::{Backoff, EventCount};

/// Time spent re-polling without progress before backing off, when some
/// pending future registered no waker.
const SPIN_BUDGET: Duration = Duration::from_micros(50);
/// Yields after the spin budget, before sleeping.
const YIELDS: u32 = 4;
/// Passes spent spinning before sleeping when every pending future
/// registered the runtime's waker.
const WAKER_SPIN_PASSES: u32 = 2;
/// Longest back-off sleep for futures that cannot wake us.
const MAX_BACKOFF: Duration = Duration::from_micros(256);
/// Upper bound of one sleep even when every future promised a wake, so a
/// future that breaks its promise costs latency, never a hang.
const SAFETY_TIMEOUT: Duration = Duration::from_millis(100);

/// Wake-up state shared with wakers. Lives inside the boxed runtime, so its
/// address (the waker's data) is stable.
#[derive(Default)]
pub struct Runtime {
    /// The waiter announces itself here before its last pass; wakers
    /// touch nothing shared until it has (see `runtime_wake`).
    ev: EventCount,
}

/// Deleted runtimes, kept for reuse: a runtime's memory is never returned,
/// so a worker that calls `runtime_wake` just after the wait returned and
/// the runtime was deleted touches a valid (idle or reused) runtime, whose
/// only reaction is one extra pass. Bounded by the most runtimes alive at
/// once.
static RECYCLED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

impl Runtime {
    /// A runtime for C: recycled when one is available, else allocated.
    pub fn create() -> *mut Runtime {
        let reused = RECYCLED.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.map_or_else(|| Box::into_raw(Box::default()), |p| p as *mut Runtime)
    }

    /// Retires a runtime from `create` for reuse.
    ///
    /// # Safety
    /// `rt` must come from `create`, have no waiter, and not be used by the
    /// caller afterwards (late wakes from movers are fine).
    pub unsafe fn retire(rt: *mut Runtime) {
        RECYCLED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rt as usize);
    }
}

impl Runtime {
    /// A wake from a mover (through [`runtime_wake`], the waker the
    /// runtime offers): wake the waiter if it announced that it is about to
    /// sleep. The mover published the completion before waking; the event
    /// count orders that before its read of the announcement, so either the
    /// waiter's last pass sees the completion or this wake sees the waiter.
    pub(crate) fn wake(&self) {
        self.ev.notify_one();
    }
}

/// Whether a waker function's target stays valid for the whole process,
/// so that a mover may call it after releasing the operation (and after
/// the future completed and the wait returned). True only for
/// [`runtime_wake`]: runtimes are recycled, never freed (see `RECYCLED`).
/// Movers ask this instead of knowing which function the runtime uses; a
/// marker read through the waker's data would not do, since a foreign
/// waker's data may point at anything, or nothing.
pub fn waker_target_is_permanent(wake: *const ()) -> bool {
    core::ptr::eq(wake, runtime_wake as *const ())
}

/// Ordering class of a future for one pass: property > 0 first, 0 next,
/// < 0 (a chain with every entry processed) last.
fn class(f: &FutureRef<'_>) -> u8 {
    match f.property(RawEnum::of(future_property::FUTURE_PROPERTY_ASYNC)) {
        p if p > 0 => 0,
        0 => 1,
        _ => 2,
    }
}

impl Runtime {
    /// Polls `futs` until all are complete, partitioning the slice in place
    /// each pass (upstream's visible behaviour). `None` entries (NULL in
    /// C's array) are skipped.
    pub(crate) fn wait(&self, futs: &mut [Option<FutureRef<'_>>]) {
        let n = futs.len();
        if n == 0 {
            return;
        }
        let waker = future_waker {
            data: self as *const Runtime as *mut c_void,
            wake: Some(runtime_wake),
        };
        // Per future (kept in step with `futs` by the partition): its
        // ordering class, and whether its pending operation registered our
        // waker (a task reports the notifier only on the poll that starts
        // work).
        let mut slots: Vec<Slot> = vec![Slot::default(); n];
        let mut scratch: Vec<(Option<FutureRef<'_>>, Slot)> = Vec::new();
        let mut idle = Idle::default();
        // Before sleeping, the waiter announces it and polls everything
        // once more: a completion published before a waker looked for the
        // announcement is seen by that pass, and any later wake claims the
        // announcement, so no wake is lost.
        let mut announced = None;
        loop {
            if n > 1 {
                partition(futs, &mut slots, &mut scratch);
            }
            let mut pending = 0usize;
            let mut progressed = false;
            let mut all_wake = true;
            for (f, slot) in futs.iter_mut().zip(slots.iter_mut()) {
                let Some(f) = f else { continue };
                if f.state().is(future_state::FUTURE_STATE_COMPLETE) {
                    continue;
                }
                let mut notifier = OwnedNotifier::with_waker(future_waker { ..waker });
                let mut n = notifier.view();
                let st = f.poll(&mut n);
                if st.is(future_state::FUTURE_STATE_COMPLETE) {
                    progressed = true;
                    continue;
                }
                if !f.has_task() {
                    continue; // cannot progress: not waited for
                }
                pending += 1;
                let used = n.used().and_then(RawEnum::known);
                match (st.known(), used) {
                    (
                        Some(future_state::FUTURE_STATE_RUNNING),
                        Some(future_notifier_type::FUTURE_NOTIFIER_WAKER),
                    ) => slot.waker = true,
                    // nothing new reported
                    (
                        Some(future_state::FUTURE_STATE_RUNNING),
                        Some(future_notifier_type::FUTURE_NOTIFIER_NONE),
                    ) => {}
                    _ => slot.waker = false,
                }
                all_wake &= slot.waker;
            }
            if pending == 0 {
                if let Some(a) = announced {
                    self.ev.cancel(a);
                }
                return;
            }
            if progressed {
                idle = Idle::default();
            }
            if all_wake {
                // Everything pending will wake us: a few quick passes catch
                // very short operations, then sleep instead of competing
                // with the threads doing the work.
                if idle.passes < WAKER_SPIN_PASSES {
                    idle.passes += 1;
                    core::hint::spin_loop();
                    continue;
                }
                match announced.take() {
                    // one more pass before sleeping
                    None => announced = Some(self.ev.announce()),
                    Some(a) => {
                        self.ev.wait(a, SAFETY_TIMEOUT);
                        idle = Idle::default();
                    }
                }
            } else {
                if let Some(a) = announced.take() {
                    self.ev.cancel(a);
                }
                idle.wait_without_waker();
            }
        }
    }
}

/// How long the runtime has gone without progress, and what it does next
/// when some pending future cannot wake it: bursts of immediate re-polls
/// (`SPIN_BUDGET` each) separated by sleeps that double from 1 us up to
/// `MAX_BACKOFF` (a few yields come before the first sleep). So a future
/// that needs many polls and never wakes anyone still gets most of a core,
/// and one that waits on something slow costs little CPU. Any state change
/// of a future starts over.
struct Idle {
    passes: u32,
    since: Option<Instant>,
    /// The yields between the first burst and the first sleep (the burst
    /// itself is timed, not counted: passes differ in length).
    yields: Backoff,
    sleep: Duration,
}

impl Default for Idle {
    fn default() -> Self {
        Idle {
            passes: 0,
            since: None,
            yields: Backoff::new(0, YIELDS),
            sleep: Duration::ZERO,
        }
    }
}

impl Idle {
    #[inline(never)]
    fn wait_without_waker(&mut self) {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() < SPIN_BUDGET {
            core::hint::spin_loop();
        } else if self.yields.snooze() {
            // yielded
        } else {
            self.sleep = (self.sleep * 2).clamp(Duration::from_micros(1), MAX_BACKOFF);
            std::thread::sleep(self.sleep);
            self.since = None; // next burst
        }
    }
}

/// What the runtime keeps per future during one wait.
#[derive(Clone, Copy, Default)]
struct Slot {
    class: u8,
    waker: bool,
}

/// Stable three-way partition of `futs` (and `slots` with them) by class,
/// in O(n). Skips the move when the slice is already ordered.
/// Classes are read from every future at the start of each pass, complete
/// ones included, as upstream did.
fn partition<'a>(
    futs: &mut [Option<FutureRef<'a>>],
    slots: &mut [Slot],
    scratch: &mut Vec<(Option<FutureRef<'a>>, Slot)>,
) {
    let mut sorted = true;
    let mut prev = 0u8;
    for (f, slot) in futs.iter().zip(slots.iter_mut()) {
        slot.class = f.as_ref().map_or(1, class);
        sorted &= slot.class >= prev;
        prev = slot.class;
    }
    if sorted {
        return;
    }
    scratch.clear();
    for want in 0..3u8 {
        for (f, s) in futs.iter_mut().zip(slots.iter()) {
            if s.class == want {
                scratch.push((f.take(), *s));
            }
        }
    }
    for ((f, s), (nf, ns)) in futs.iter_mut().zip(slots.iter_mut()).zip(scratch.drain(..)) {
        *f = nf;
        *s = ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{future, future_context, future_notifier, future_state};
    use crate::ffi::fnptr;
    use core::ffi::c_int;
    use core::ptr::NonNull;

    #[repr(C)]
    struct Counted {
        base: future,
        polls_left: u64,
        id: u64,
        order: *mut Vec<u64>,
        asyncp: c_int,
    }

    unsafe extern "C" fn task(
        ctx: *mut future_context,
        _n: *mut future_notifier,
    ) -> RawEnum<future_state> {
        // SAFETY: the context belongs to a `Counted`, right after `task` and
        // `has_property`.
        let c = unsafe { &mut *(ctx.cast::<u8>().sub(16).cast::<Counted>()) };
        // SAFETY: the test owns the vector for the whole wait.
        unsafe { (*c.order).push(c.id) };
        c.polls_left -= 1;
        RawEnum::of(if c.polls_left == 0 {
            future_state::FUTURE_STATE_COMPLETE
        } else {
            future_state::FUTURE_STATE_RUNNING
        })
    }

    unsafe extern "C" fn prop(f: *mut c_void, _p: RawEnum<future_property>) -> c_int {
        // SAFETY: only called on `Counted` futures.
        unsafe { (*f.cast::<Counted>()).asyncp }
    }

    fn counted(
        id: u64,
        polls: u64,
        asyncp: c_int,
        order: *mut Vec<u64>,
        state: future_state,
    ) -> Counted {
        Counted {
            base: future {
                task: fnptr::task_fn(task),
                has_property: fnptr::has_property_fn(prop),
                context: future_context {
                    data_size: 24,
                    output_size: 4,
                    state,
                    padding: 0,
                },
            },
            polls_left: polls,
            id,
            order,
            asyncp,
        }
    }

    #[test]
    fn async_first_stable_and_complete_on_entry_counts() {
        let rt = Runtime::default();
        let mut order = Vec::new();
        // One raw pointer shared by the four futures (each task appends).
        let o: *mut Vec<u64> = &mut order;
        let mut a = counted(1, 2, 0, o, future_state::FUTURE_STATE_IDLE);
        let mut b = counted(2, 1, 1, o, future_state::FUTURE_STATE_IDLE);
        let mut c = counted(3, 1, 0, o, future_state::FUTURE_STATE_COMPLETE);
        let mut d = counted(4, 1, 1, o, future_state::FUTURE_STATE_IDLE);
        let (pb, pd) = (
            core::ptr::addr_of_mut!(b).cast::<future>(),
            core::ptr::addr_of_mut!(d).cast::<future>(),
        );
        let mut futs: Vec<Option<FutureRef<'_>>> = [&mut a, &mut b, &mut c, &mut d]
            .into_iter()
            // SAFETY: all four futures live on this stack frame, and only
            // the wait below uses them. The pointer covers the whole
            // `Counted` (the task reads past the `struct future`), and
            // `base` is its first field.
            .map(|f| Some(unsafe { FutureRef::new(NonNull::from(f).cast::<future>()) }))
            .collect();
        rt.wait(&mut futs);
        assert_eq!(
            order,
            vec![2, 4, 1, 1],
            "ASYNC first, stable, complete ones never polled"
        );
        let ptr = |f: &Option<FutureRef<'_>>| f.as_ref().unwrap().as_ptr();
        assert_eq!(ptr(&futs[0]), pb);
        assert_eq!(ptr(&futs[1]), pd);
    }
}
