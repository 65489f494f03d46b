//! Bounded waits (DSA.md 12.3). A descriptor may never get its completion
//! record: the device halts or is reset, the WQ is disabled under the
//! process, a software error drops it, a DSA 2.0 kernel fails to copy a
//! record that faulted. So no wait of the engine is unbounded:
//!
//! - **The clock.** A poll that finds its operation where it was counts
//!   itself (`Waiting::idle`); only every [`CHECK_EVERY`]th such poll reads
//!   the clock, so a poll that finds its record written, or one of the
//!   first few that do not, costs no clock read. The first look starts the
//!   clock; progress (a record, a submission) stops it. A wait for a WQ
//!   credit, or for a batch that is still waiting for one, depends on the
//!   other operations: its clock restarts whenever any credit comes back
//!   (`Credits::returned`), so it times out only when the whole WQ is
//!   stuck.
//! - **The error channel.** Once an operation has waited a while
//!   (`STATE_AFTER`, or a quarter of the timeout if shorter), its checks
//!   ask the portal for the device's state ([`Portal::device_state`]:
//!   sysfs `state`, `poll(2)` on the WQ file), at most every
//!   `STATE_EVERY` per engine. A device or WQ that left `enabled` is known
//!   stopped: the engine never submits to it again (sticky; a process
//!   started after the device is enabled again uses it).
//! - **Expiry.** After [`EngineOptions::timeout`] without progress, or as
//!   soon as the device is known stopped, the operation fails with the
//!   exact remainder: [`FailReason::DeviceStopped`] (nothing writes its
//!   memory any more: AUTO may finish it on the CPU) or
//!   [`FailReason::TimedOut`]. An operation that had a descriptor in the
//!   device (on its own, or in a batch that was submitted or, on a device
//!   still enabled, may yet be) is **quarantined**: the device may
//!   still write its completion record, and its destination, at any
//!   time, so its record is never reused ([`Release::Quarantined`]); a
//!   timed-out descriptor also keeps its WQ credit (the WQ entry may still
//!   be occupied: returning it could overfill a dedicated WQ), named by
//!   the quarantined record, so a record written late returns it through
//!   the reclaim scan. On a stopped device its credit is returned.
//!
//! [`Portal::device_state`]: super::super::hw::Portal::device_state
//! [`EngineOptions::timeout`]: super::EngineOptions::timeout

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::super::hw::DeviceState;
use super::op::{DeviceOp, Job, Phase};
use super::{Engine, FailReason, Failure, Poll, Release};
use crate::sync::backoff::{Backoff, FOREVER};

/// Polls without progress between two looks at the clock.
pub const CHECK_EVERY: u32 = 32;
/// Least time between two device-state queries of one engine.
const STATE_EVERY: Duration = Duration::from_millis(10);
/// How long an operation waits before its checks ask the device's state.
const STATE_AFTER: Duration = Duration::from_millis(50);

/// Bits of `Engine::said`: what was logged once.
const SAID_TIMEOUT: u8 = 1;
const SAID_ERROR: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    TimedOut,
    Stopped,
}

impl Engine {
    /// Whether the device is known to have stopped (acquire: whatever it
    /// wrote before is visible).
    #[inline]
    pub(super) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// A poll found `job` waiting (no record yet, no credit, batch not
    /// retired). True if the wait is over: `job` has failed.
    #[inline]
    pub(super) fn overdue(&self, job: &mut Job) -> bool {
        job.wait.idle = job.wait.idle.wrapping_add(1);
        job.wait.idle.is_multiple_of(CHECK_EVERY) && self.check_overdue(job)
    }

    #[cold]
    #[inline(never)]
    fn check_overdue(&self, job: &mut Job) -> bool {
        let now = Instant::now();
        let returned = self.credits.returned();
        let waited = match job.wait.since {
            Some(since) if !(self.queued(job.phase) && returned != job.wait.seen) => {
                now.saturating_duration_since(since)
            }
            _ => {
                job.wait.since = Some(now);
                job.wait.seen = returned;
                Duration::ZERO
            }
        };
        let ask = waited >= STATE_AFTER.min(self.opts.timeout / 4) && self.state_due(now);
        let why = if self.stopped() || (ask && self.ask_device()) {
            Expiry::Stopped
        } else if waited >= self.opts.timeout {
            // One last look: a device known stopped lets AUTO finish.
            if self.ask_device() {
                Expiry::Stopped
            } else {
                Expiry::TimedOut
            }
        } else {
            return false;
        };
        self.expire(job, why);
        true
    }

    /// Whether `phase` waits for a credit (its own, or its batch's).
    fn queued(&self, phase: Phase) -> bool {
        match phase {
            Phase::NeedSubmit => true,
            Phase::InBatch { b, gen } => {
                let rec = &self.batches.recs[b as usize];
                rec.gen() == gen && !rec.in_device(gen)
            }
            _ => false,
        }
    }

    /// Claims this engine's next device-state query, at most one per
    /// `STATE_EVERY`.
    fn state_due(&self, now: Instant) -> bool {
        let t = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let last = self.state_at.load(Ordering::Relaxed);
        t >= last + STATE_EVERY.as_millis() as u64
            && self
                .state_at
                .compare_exchange(last, t, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Asks the portal; true if the device is known stopped (then for
    /// good).
    fn ask_device(&self) -> bool {
        match self.portal.device_state() {
            DeviceState::Stopped(why) => {
                if !self.stopped.swap(true, Ordering::AcqRel) {
                    crate::log::warn(&format!(
                        "DSA {}: {why}: the device is no longer used by this process \
                         (AUTO runs on the CPU, HARDWARE operations fail)",
                        self.cfg.name
                    ));
                }
                true
            }
            DeviceState::Error => {
                if self.said.fetch_or(SAID_ERROR, Ordering::Relaxed) & SAID_ERROR == 0 {
                    crate::log::warn(&format!(
                        "DSA {}: the device reports a software error (poll(2) on its \
                         work queue); operations whose records do not come fail after {} ms",
                        self.cfg.name,
                        self.opts.timeout.as_millis()
                    ));
                }
                false
            }
            DeviceState::Running => false,
        }
    }

    /// Fail `job`'s operation; quarantine its record if a descriptor of it
    /// may be in the device.
    fn expire(&self, job: &mut Job, why: Expiry) {
        // A batch still waiting for a credit may yet be submitted, unless
        // the device stopped (nothing is submitted to it any more).
        let in_device = match job.phase {
            // An element the batch record says ran, whose own record has
            // not come: the device may still write it.
            Phase::InFlight { .. } | Phase::BatchRetired => true,
            Phase::InBatch { .. } => why == Expiry::TimedOut || !self.queued(job.phase),
            _ => false,
        };
        if let (Phase::InFlight { pos, tag }, Expiry::Stopped) = (job.phase, why) {
            // Its WQ entry went with the device.
            self.credits.release(pos, tag);
        }
        job.phase = Phase::Failed(Failure {
            reason: match why {
                Expiry::Stopped => FailReason::DeviceStopped,
                Expiry::TimedOut => FailReason::TimedOut { in_device },
            },
            remaining: job.progress.remainder(),
            partial: in_device,
        });
        // A record without a descriptor in the device reads SW_PENDING
        // already (non-zero); a quarantined one is left to the device.
        job.quarantined = in_device;
        self.timeouts.fetch_add(1, Ordering::Relaxed);
        let kept = if in_device {
            self.quarantined.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.quarantined.load(Ordering::Relaxed)
        };
        if why == Expiry::TimedOut
            && self.said.fetch_or(SAID_TIMEOUT, Ordering::Relaxed) & SAID_TIMEOUT == 0
        {
            crate::log::warn(&format!(
                "DSA {}: no progress for {} ms with the device enabled: the operation fails; \
                 the device may still write its destination, and its completion record is \
                 kept out of use ({kept} so far; this message is shown once)",
                self.cfg.name,
                self.opts.timeout.as_millis()
            ));
        }
    }

    /// Releases every record of `recs` (a mover's drop), waiting for all of
    /// them together: one timeout without progress (no operation ending,
    /// no credit returned) for the whole set, not one per record. Returns
    /// how many are quarantined (by now or before): those must never be
    /// reused nor freed.
    ///
    /// # Safety
    /// As for [`release_op`](Self::release_op), for each record.
    pub unsafe fn release_all(&self, recs: &[&DeviceOp]) -> usize {
        let mut running: Vec<&DeviceOp> = recs
            .iter()
            .copied()
            // SAFETY: caller's contract: exclusive use of every record.
            .filter(|r| unsafe { job_of(r) }.is_some_and(|j| !j.quarantined))
            .collect();
        let mut since = Instant::now();
        let mut seen = self.credits.returned();
        let mut backoff = Backoff::new(128, FOREVER);
        while !running.is_empty() {
            let before = running.len();
            // SAFETY: caller's contract.
            running.retain(|r| matches!(unsafe { self.poll_op(r) }, Poll::Running));
            let now = Instant::now();
            let returned = self.credits.returned();
            if running.len() < before || returned != seen {
                since = now;
                seen = returned;
                backoff.reset();
            } else if now.saturating_duration_since(since) >= self.opts.timeout {
                let why = if self.stopped() || self.ask_device() {
                    Expiry::Stopped
                } else {
                    Expiry::TimedOut
                };
                for r in &running {
                    // SAFETY: caller's contract.
                    if let Some(j) = unsafe { job_of(r) } {
                        self.expire(j, why);
                    }
                }
                break;
            }
            backoff.snooze();
        }
        recs.iter()
            // SAFETY: caller's contract; every record has ended now.
            .filter(|r| unsafe { self.release_op(r) } == Release::Quarantined)
            .count()
    }
}

/// The job of a record.
///
/// # Safety
/// The caller has exclusive use of the record for the returned borrow.
#[allow(clippy::mut_from_ref)]
unsafe fn job_of(r: &DeviceOp) -> Option<&mut Job> {
    // SAFETY: caller's contract.
    unsafe { (*r.owned.get()).job.as_mut() }
}
