//! Completion handling for [`Engine`]: what a written completion record
//! means for an operation (next piece, page-fault resume, failure with
//! the exact remainder), DSA.md 4.2-4.4.

use std::sync::atomic::Ordering;

use super::super::hw::completion::{status, CompletionRecord};
use super::fault;
use super::{DeviceOp, Engine, FailReason, Failure, Job, Phase};

impl Engine {
    pub(super) fn fail(&self, rec: &DeviceOp, job: &mut Job, reason: FailReason, partial: bool) {
        let remaining = job.progress.remainder();
        job.phase = Phase::Failed(Failure {
            reason,
            remaining,
            partial,
        });
        if rec.cr.status() == 0 {
            rec.cr.set_status(status::SW_NOT_EXECUTED);
        }
    }

    /// Act on the written completion record of the current piece.
    pub(super) fn complete_piece(&self, rec: &DeviceOp, job: &mut Job, r: &CompletionRecord) {
        match r.code() {
            status::SUCCESS | status::SUCCESS_PRED => {
                job.repeats = 0;
                job.phase = if job.progress.piece_done() {
                    Phase::Done
                } else {
                    Phase::NeedSubmit
                };
            }
            status::PAGE_FAULT_NOBOF => self.resume_fault(rec, job, r),
            status::SW_PENDING | status::SW_NOT_EXECUTED | status::NONE => {
                job.phase = Phase::NeedSubmit
            }
            status::CRA_XLAT if !job.progress.op.overlaps() => {
                // The record page faulted (DSA 2.0 reports this through the
                // event log); the piece is idempotent, so run it again.
                job.repeats += 1;
                if job.repeats > self.opts.fault_retries {
                    self.fail(
                        rec,
                        job,
                        FailReason::FaultLoop {
                            addr: rec.cr.addr(),
                        },
                        true,
                    );
                } else {
                    let _ = fault::resolve(rec.cr.addr(), true);
                    job.phase = Phase::NeedSubmit;
                }
            }
            c => {
                let partial = !status::is_validation_error(c);
                // A refused page request or a failed translation at an
                // address nothing is mapped at: the CPU would crash too.
                let bad_address = matches!(c, status::PAGE_FAULT_IR | status::TRANSLATION_FAIL)
                    && r.fault_addr != 0
                    && fault::page_state(r.fault_addr).is_none();
                let reason = if bad_address {
                    FailReason::Unresolvable {
                        addr: r.fault_addr,
                        errno: libc::EFAULT,
                    }
                } else {
                    FailReason::Status(r.status)
                };
                self.fail(rec, job, reason, partial);
            }
        }
    }

    /// Status 0x03: account for the bytes done, make the page present,
    /// resubmit the rest (DSA.md 4.4).
    pub(super) fn resume_fault(&self, rec: &DeviceOp, job: &mut Job, r: &CompletionRecord) {
        let piece = job.progress.piece_op();
        let write = r.write_fault();
        let base = if !write && piece.has_source() {
            piece.src
        } else {
            piece.dst
        } as u64;
        let inside = r.fault_addr >= base && r.fault_addr - base < piece.len as u64;
        let bc = u64::from(r.bytes_completed);
        let from_end = piece.has_source() && r.result & 1 == 1;
        if !inside || job.progress.partial(bc, from_end).is_err() {
            self.fail(rec, job, FailReason::Inconsistent, true);
            return;
        }
        if bc == 0 && r.fault_addr == job.last_fault {
            job.repeats += 1;
            if job.repeats > self.opts.fault_retries {
                self.fail(
                    rec,
                    job,
                    FailReason::FaultLoop { addr: r.fault_addr },
                    false,
                );
                return;
            }
        } else {
            job.repeats = 0;
        }
        job.last_fault = r.fault_addr;
        if let Err(errno) = fault::resolve(r.fault_addr, write) {
            self.fail(
                rec,
                job,
                FailReason::Unresolvable {
                    addr: r.fault_addr,
                    errno,
                },
                false,
            );
            return;
        }
        self.n.faults_resolved.fetch_add(1, Ordering::Relaxed);
        job.phase = if job.progress.is_done() {
            Phase::Done
        } else {
            Phase::NeedSubmit
        };
    }
}
