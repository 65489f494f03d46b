//! Spin, then yield, then tell the caller to sleep.
//!
//! Hand-written rather than `crossbeam_utils::Backoff`: that one has fixed
//! limits (doubling runs of PAUSE up to 127 in all, then yields, "completed"
//! after four of them), while our waits need their own measured budgets:
//! an idle worker spins about 1000 PAUSEs (25-60 us) and never yields
//! before sleeping, `op_delete` spins 128 and then yields for as long as
//! it takes, an emulated engine yields 32 times before it parks. One type
//! with the two budgets as parameters covers all of them.

/// A spin-then-yield budget. [`snooze`](Backoff::snooze) spins (one PAUSE
/// per call) `spins` times, then yields the CPU `yields` times, then
/// returns `false`: the caller should sleep (or give up). `reset` starts
/// over, after progress.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    spins: u32,
    yields: u32,
    step: u32,
}

/// `yields` value for a backoff that yields for ever once it has spun.
pub const FOREVER: u32 = u32::MAX;

impl Backoff {
    /// `spins` PAUSEs, then `yields` yields (`FOREVER`: never exhausted).
    pub const fn new(spins: u32, yields: u32) -> Self {
        Backoff {
            spins,
            yields,
            step: 0,
        }
    }

    /// Waits a little; `false` once the budget is spent (nothing was done).
    #[inline]
    pub fn snooze(&mut self) -> bool {
        if self.step < self.spins {
            self.step += 1;
            core::hint::spin_loop();
            return true;
        }
        let yielded = self.step - self.spins;
        if self.yields == FOREVER || yielded < self.yields {
            // Saturates at the first yield of a FOREVER budget.
            self.step = self.step.saturating_add(u32::from(self.yields != FOREVER));
            std::thread::yield_now();
            return true;
        }
        false
    }

    /// Whether the spin part is over (the next snooze yields or fails).
    #[cfg(test)]
    pub fn spun(&self) -> bool {
        self.step >= self.spins
    }

    /// Starts over (call after progress).
    #[inline]
    pub fn reset(&mut self) {
        self.step = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_the_spin_then_the_yield_budget() {
        let mut b = Backoff::new(3, 2);
        for _ in 0..3 {
            assert!(!b.spun());
            assert!(b.snooze());
        }
        assert!(b.spun());
        assert!(b.snooze());
        assert!(b.snooze());
        assert!(!b.snooze(), "exhausted after 3 spins and 2 yields");
        assert!(!b.snooze());
        b.reset();
        assert!(!b.spun());
        assert!(b.snooze());
    }

    #[test]
    fn forever_never_runs_out() {
        let mut b = Backoff::new(1, FOREVER);
        for _ in 0..1000 {
            assert!(b.snooze());
        }
        let mut none = Backoff::new(0, 0);
        assert!(!none.snooze());
    }
}
