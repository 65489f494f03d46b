//! An event count: announce, re-check, sleep; a notify wakes one sleeper
//! that no earlier notify has claimed.
//!
//! The protocol, for a waiter and a notifier that share some condition
//! (work queued, an operation complete):
//!
//! 1. the waiter [`announce`](EventCount::announce)s that it is about to
//!    sleep, then checks the condition once more;
//! 2. if the condition holds it [`cancel`](EventCount::cancel)s, else it
//!    [`wait`](EventCount::wait)s, for at most a given time;
//! 3. the notifier makes the condition true, then calls
//!    [`notify_one`](EventCount::notify_one) (or `notify_all`).
//!
//! No wake is lost: the announcement and the notifier's publication are
//! both followed by a SeqCst fence, so either the waiter's re-check sees
//! the condition or the notifier sees the announcement. A notify *claims*
//! one announced waiter (a decrement of `unclaimed`) and posts one wake to
//! it; a second notify, made before the first woken waiter has run, claims
//! another waiter if there is one. So as many waiters are woken as there
//! were notifies, up to the number asleep, whatever the scheduler does. A
//! notify with nobody announced is a fence and a load: no lock, no write
//! to shared memory.
//!
//! Every wait is bounded by its timeout, so a notifier that breaks the
//! protocol costs latency, never a hang.
//!
//! Hand-written rather than `crossbeam_utils::sync::Parker`: a `Parker`
//! belongs to one thread and is unparked by name, which needs a list of
//! idle threads to pick from, and the runtime is waited on by whichever
//! thread calls `runtime_wait` (its waker's data is the runtime, not a
//! thread). An event count over one `Mutex`/`Condvar` serves one waiter
//! (the runtime) and a pool (workers, emulated engines) alike, and its
//! claim counter is what lets each notify wake a *different* sleeper, where
//! a single "wake pending" flag lets notifies made before the woken thread
//! runs wake nobody.

use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// See the module documentation.
pub struct EventCount {
    /// Announced waiters that no notify has claimed yet.
    unclaimed: AtomicUsize,
    /// Wakes posted and not yet taken, minus claims whose waiter left
    /// before the post arrived (it may go below zero for that moment).
    posts: Mutex<isize>,
    cv: Condvar,
}

/// Proof of an announcement; [`EventCount::wait`] or
/// [`EventCount::cancel`] ends it.
#[must_use = "an announcement must end with wait() or cancel()"]
pub struct Announced(());

impl Default for EventCount {
    fn default() -> Self {
        Self::new()
    }
}

impl EventCount {
    pub const fn new() -> Self {
        EventCount {
            unclaimed: AtomicUsize::new(0),
            posts: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    fn posts(&self) -> MutexGuard<'_, isize> {
        self.posts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Step 1: from now on notifies will wake this waiter. Check the
    /// condition after this, then `wait` or `cancel`.
    pub fn announce(&self) -> Announced {
        self.unclaimed.fetch_add(1, Ordering::SeqCst);
        // Orders the announcement before the re-check of the condition
        // (paired with the fence in `notify_one`).
        fence(Ordering::SeqCst);
        Announced(())
    }

    /// Withdraws an announcement without sleeping (the condition holds).
    pub fn cancel(&self, a: Announced) {
        let Announced(()) = a;
        if !self.unclaim() {
            // A notify claimed us and its post is (or will be) counted:
            // take it, so the count stays exact.
            *self.posts() -= 1;
        }
    }

    /// Takes back one unclaimed announcement; false if every one was
    /// claimed already (a post is on its way for ours).
    fn unclaim(&self) -> bool {
        self.unclaimed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Sleeps until a notify claims this waiter or `timeout` passes.
    /// Returns true when woken by a notify.
    pub fn wait(&self, a: Announced, timeout: Duration) -> bool {
        let Announced(()) = a;
        let deadline = Instant::now() + timeout;
        let mut posts = self.posts();
        loop {
            if *posts > 0 {
                *posts -= 1;
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            posts = self
                .cv
                .wait_timeout(posts, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if !self.unclaim() {
            // Claimed just as the time ran out: the post is ours.
            *posts -= 1;
        }
        false
    }

    /// Step 3: wakes one announced waiter that no other notify claimed.
    /// Returns whether one was claimed. Call it after publishing the
    /// condition.
    #[inline]
    pub fn notify_one(&self) -> bool {
        // Orders the caller's publication before the read of `unclaimed`
        // (paired with the fence in `announce`).
        fence(Ordering::SeqCst);
        if self.unclaimed.load(Ordering::Relaxed) == 0 {
            return false;
        }
        if !self.unclaim() {
            return false;
        }
        self.post(1);
        true
    }

    /// Wakes every announced waiter; returns how many were claimed.
    pub fn notify_all(&self) -> usize {
        fence(Ordering::SeqCst);
        if self.unclaimed.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let n = self.unclaimed.swap(0, Ordering::SeqCst);
        if n > 0 {
            self.post(n);
        }
        n
    }

    #[cold]
    fn post(&self, n: usize) {
        let mut posts = self.posts();
        *posts += n as isize;
        if n == 1 {
            self.cv.notify_one();
        } else {
            self.cv.notify_all();
        }
    }

    /// Announced waiters not claimed yet (for tests).
    #[cfg(test)]
    pub fn unclaimed(&self) -> usize {
        self.unclaimed.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    const LONG: Duration = Duration::from_secs(20);

    /// Spins (bounded) until `f` holds.
    fn until(what: &str, f: impl Fn() -> bool) {
        let t0 = Instant::now();
        while !f() {
            assert!(t0.elapsed() < LONG, "timed out waiting for {what}");
            std::thread::yield_now();
        }
    }

    #[test]
    fn notify_before_wait_is_not_lost() {
        let ev = EventCount::new();
        let a = ev.announce();
        assert!(ev.notify_one());
        // The post arrived before the wait: it returns at once, woken.
        assert!(ev.wait(a, LONG));
        assert!(!ev.notify_one(), "nobody announced");
        assert_eq!(*ev.posts(), 0);
    }

    #[test]
    fn cancel_after_a_claim_keeps_the_count_exact() {
        let ev = EventCount::new();
        let a = ev.announce();
        assert!(ev.notify_one());
        ev.cancel(a);
        assert_eq!(*ev.posts(), 0);
        // A later waiter is not woken by the stale post.
        let b = ev.announce();
        assert!(!ev.wait(b, Duration::from_millis(5)));
        assert_eq!(ev.unclaimed(), 0);
        assert_eq!(*ev.posts(), 0);
    }

    #[test]
    fn wait_is_bounded() {
        let ev = EventCount::new();
        let t0 = Instant::now();
        let a = ev.announce();
        assert!(!ev.wait(a, Duration::from_millis(20)));
        assert!(t0.elapsed() >= Duration::from_millis(20));
        assert_eq!(ev.unclaimed(), 0);
    }

    /// The property the threads mover needs (issue 12): notifies made
    /// before any woken waiter has run each claim a *different* sleeper.
    /// A single "wake pending" flag, cleared by the woken thread when it
    /// runs, claims one and makes the second notify a no-op.
    #[test]
    fn each_notify_claims_a_different_sleeper() {
        let ev = Arc::new(EventCount::new());
        let woken = Arc::new(AtomicUsize::new(0));
        let sleepers: Vec<_> = (0..2)
            .map(|_| {
                let (ev, woken) = (ev.clone(), woken.clone());
                std::thread::spawn(move || {
                    let a = ev.announce();
                    if ev.wait(a, LONG) {
                        woken.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        until("two announced sleepers", || ev.unclaimed() == 2);
        // Back to back, before either sleeper can have run.
        assert!(ev.notify_one(), "first notify claims a sleeper");
        assert!(ev.notify_one(), "second notify claims the other sleeper");
        assert!(!ev.notify_one(), "nobody left to claim");
        for s in sleepers {
            s.join().unwrap();
        }
        assert_eq!(
            woken.load(Ordering::SeqCst),
            2,
            "both woken, none timed out"
        );
    }

    #[test]
    fn notify_all_wakes_everyone() {
        let ev = Arc::new(EventCount::new());
        let stop = Arc::new(AtomicBool::new(false));
        let sleepers: Vec<_> = (0..3)
            .map(|_| {
                let (ev, stop) = (ev.clone(), stop.clone());
                std::thread::spawn(move || {
                    let a = ev.announce();
                    if stop.load(Ordering::SeqCst) {
                        ev.cancel(a);
                        true
                    } else {
                        ev.wait(a, LONG)
                    }
                })
            })
            .collect();
        until("three announced sleepers", || ev.unclaimed() == 3);
        stop.store(true, Ordering::SeqCst);
        assert_eq!(ev.notify_all(), 3);
        for s in sleepers {
            assert!(s.join().unwrap());
        }
        assert_eq!(*ev.posts(), 0);
    }

    /// Many notifiers against waiters that re-check a counter: every
    /// published item is seen, no waiter sleeps through one (the timeout
    /// is long, so a lost wake would show as a stuck test, caught by the
    /// bound in `until`).
    #[test]
    fn no_lost_wake_under_contention() {
        const ITEMS: usize = 20_000;
        let ev = Arc::new(EventCount::new());
        let items = Arc::new(AtomicUsize::new(0));
        let taken = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (ev, items, taken) = (ev.clone(), items.clone(), taken.clone());
                std::thread::spawn(move || loop {
                    let t = taken.load(Ordering::SeqCst);
                    if t == ITEMS {
                        return;
                    }
                    if t < items.load(Ordering::SeqCst) {
                        let _ =
                            taken.compare_exchange(t, t + 1, Ordering::SeqCst, Ordering::SeqCst);
                        continue;
                    }
                    let a = ev.announce();
                    let t = taken.load(Ordering::SeqCst);
                    if t == ITEMS || t < items.load(Ordering::SeqCst) {
                        ev.cancel(a);
                    } else {
                        ev.wait(a, LONG);
                    }
                })
            })
            .collect();
        let t0 = Instant::now();
        for _ in 0..ITEMS {
            items.fetch_add(1, Ordering::SeqCst);
            ev.notify_one();
        }
        until("every item taken", || taken.load(Ordering::SeqCst) == ITEMS);
        ev.notify_all();
        for w in waiters {
            w.join().unwrap();
        }
        assert!(
            t0.elapsed() < LONG,
            "a wake was lost (waiters slept through)"
        );
        assert_eq!(*ev.posts(), 0);
        assert_eq!(ev.unclaimed(), 0);
    }
}
