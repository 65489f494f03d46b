//! Batches on the emulated WQ, with element records made visible before
//! or after the batch record (DSA.md 12.3): the batch record is the
//! authority. Elements it says ran are waited for and never resubmitted;
//! only those it says did not run are submitted again.

use crate::mover::dsa::emu::{BatchOrder, EmuConfig, EmuDevice, Forced, Stall};
use crate::mover::dsa::engine::op::Op;
use crate::mover::dsa::engine::{Engine, EngineOptions, FailReason, Poll};
use crate::mover::dsa::hw::{opcode, status, Hints};
use crate::mover::dsa::testutil::{finish, pattern, rig, Drive, OpHandle};

const HOLD: u32 = 7;

/// A dedicated WQ of 2 entries whose engines wait for the test: two
/// operations go to the device on their own, the next ones into a batch
/// of at most 8. The batch record is written before the element records.
fn batch_first(engines: u32) -> EmuConfig {
    EmuConfig {
        wq_size: 2,
        engines,
        stall: Stall::Manual,
        max_batch_size: 8,
        batch_order: BatchOrder::BatchFirst,
        ..Default::default()
    }
}

/// Start `n` 64-byte copies from `src` to `dst`, queued.
fn start_copies(eng: &Engine, dst: &mut [u8], src: &[u8], n: usize) -> Vec<OpHandle> {
    (0..n)
        .map(|i| {
            let op = Op::copy(
                dst.as_mut_ptr() as usize + i * 64,
                src.as_ptr() as usize + i * 64,
                64,
                Hints::default(),
            );
            // SAFETY: the callers' buffers outlive every op.
            unsafe { eng.start(&op, true) }.unwrap()
        })
        .collect()
}

/// Poll every op once; returns the states.
fn poll_all(eng: &Engine, hs: &mut [OpHandle]) -> Vec<Poll> {
    hs.iter_mut().map(|h| eng.poll(h)).collect()
}

/// Poll until the engine submitted its first batch and either got its
/// credit back (the batch record was seen and the batch retired) or
/// submitted more descriptors than the two plain ones and the batch.
fn poll_until_the_batch_retires(eng: &Engine, hs: &mut [OpHandle]) {
    loop {
        poll_all(eng, hs);
        let s = eng.stats();
        if s.batches == 1 && (eng.credits_in_use() == 0 || s.descriptors > 3) {
            return;
        }
        std::thread::yield_now();
    }
}

/// Poll everything a while longer; whether every batched op (all but the
/// first two) kept running.
fn keep_polling(eng: &Engine, hs: &mut [OpHandle]) -> bool {
    (0..100).all(|_| poll_all(eng, hs)[2..].iter().all(|p| *p == Poll::Running))
}

/// Let the held records go and wait until the device is idle. If `ok`
/// is false, fail: the records are leaked first, because a duplicate the
/// engine left behind may still be written into them (the defect these
/// tests catch) after their handles would have freed them.
fn settle(dev: &EmuDevice, hs: Vec<OpHandle>, ok: bool, why: &str) -> Vec<OpHandle> {
    dev.open_hold(HOLD);
    while !dev.idle() {
        std::thread::yield_now();
    }
    if !ok {
        std::mem::forget(hs);
        panic!("{why}");
    }
    hs
}

fn finish_all(eng: &Engine, hs: Vec<OpHandle>) {
    for h in hs {
        assert_eq!(finish(eng, h), Poll::Done);
    }
}

#[test]
fn batch_elements_whose_records_come_after_the_batch_record_are_not_resubmitted() {
    let (dev, eng) = rig(batch_first(1), EngineOptions::default());
    let n = 10;
    let src = pattern(n * 64, 1);
    let mut dst = vec![0u8; n * 64];
    let mut hs = start_copies(&eng, &mut dst, &src, n);
    assert_eq!(eng.stats().batched_ops, 8);
    dev.hold_late_records_of_next_batch(HOLD);
    dev.set_stalled(false);
    poll_until_the_batch_retires(&eng, &mut hs);
    // Every element ran (the batch record says so) and its record is on
    // its way: the elements wait for it, nothing is submitted again.
    let waiting = keep_polling(&eng, &mut hs);
    let (descriptors, errors) = (eng.stats().descriptors, dev.swerror());
    let hs = settle(
        &dev,
        hs,
        waiting && descriptors == 3 && errors.is_empty(),
        &format!(
            "the elements must wait for their records ({waiting}) and \
             never be submitted again: {descriptors} descriptors \
             (want 2 plain and 1 batch), {errors:?}"
        ),
    );
    finish_all(&eng, hs);
    assert!(dst == src);
    assert_eq!(eng.stats().descriptors, 3);
    assert_eq!(dev.stats().accepted, 3);
    assert!(dev.swerror().is_empty(), "{:?}", dev.swerror());
    assert_eq!(eng.credits_in_use(), 0);
}

#[test]
fn a_batch_page_fault_resubmits_only_the_elements_that_did_not_run() {
    // Two engines: one stays in the batch until the hold opens, the other
    // runs what is resubmitted meanwhile.
    let (dev, eng) = rig(batch_first(2), EngineOptions::default());
    let n = 10;
    let k = 3;
    let src = pattern(n * 64, 2);
    let mut dst = vec![0u8; n * 64];
    let mut hs = start_copies(&eng, &mut dst, &src, n);
    dev.force(opcode::BATCH, Forced::ListFault(k));
    dev.hold_late_records_of_next_batch(HOLD);
    dev.set_stalled(false);
    // Elements k.. never ran: they are submitted again and finish while
    // the first k, which ran, wait for their records.
    let ran = 2..2 + k as usize;
    let states = loop {
        let states = poll_all(&eng, &mut hs);
        let others_done = (ran.end..n).all(|i| states[i] == Poll::Done);
        if others_done || ran.clone().any(|i| states[i] != Poll::Running) {
            break states;
        }
        std::thread::yield_now();
    };
    let errors = dev.swerror();
    let hs = settle(
        &dev,
        hs,
        ran.clone().all(|i| states[i] == Poll::Running) && errors.is_empty(),
        &format!("the elements that ran wait for their records: {states:?}, {errors:?}"),
    );
    let mut hs = hs;
    for h in hs.iter_mut() {
        assert_eq!(eng.wait(h), Poll::Done);
    }
    // The operations' counts: the elements submitted again are retries,
    // the batch is counted once, for the operation whose poll submitted it.
    let counts: Vec<_> = hs.iter().map(|h| eng.counts(h)).collect();
    for (i, c) in counts.iter().enumerate() {
        let again = u32::from(i >= ran.end);
        assert_eq!(c.retries, again, "op {i}: {c:?}");
        assert_eq!(c.page_faults, 0, "op {i}");
    }
    let batches: u32 = counts.iter().map(|c| c.batches).sum();
    assert_eq!(u64::from(batches), eng.stats().batches);
    drop(hs);
    assert!(dst == src);
    assert!(dev.swerror().is_empty(), "{:?}", dev.swerror());
    assert!(eng.batching(), "a list fault keeps batching on");
}

#[test]
fn a_batch_error_that_does_not_say_what_ran_resubmits_nothing() {
    let (dev, eng) = rig(batch_first(1), EngineOptions::default());
    let n = 10;
    let src = pattern(n * 64, 3);
    let mut dst = vec![0u8; n * 64];
    let mut hs = start_copies(&eng, &mut dst, &src, n);
    dev.force(opcode::BATCH, Forced::BatchStatus(status::HW_ERR1));
    dev.hold_late_records_of_next_batch(HOLD);
    dev.set_stalled(false);
    poll_until_the_batch_retires(&eng, &mut hs);
    let waiting = keep_polling(&eng, &mut hs);
    let descriptors = eng.stats().descriptors;
    let hs = settle(
        &dev,
        hs,
        waiting && descriptors == 3,
        &format!(
            "the elements must wait for their records ({waiting}) and \
             never be submitted again: {descriptors} descriptors"
        ),
    );
    finish_all(&eng, hs);
    assert!(dst == src);
    assert_eq!(dev.stats().accepted, 3);
    assert!(dev.swerror().is_empty(), "{:?}", dev.swerror());
    assert!(!eng.batching(), "a batch-level error turns batching off");
}

/// Many small copies and fills through a small queue, so most go into
/// batches; random delays and injected faults.
fn stress(order: BatchOrder, seed: u64) -> (std::sync::Arc<EmuDevice>, Engine) {
    let cfg = EmuConfig {
        wq_size: 4,
        engines: 3,
        max_batch_size: 16,
        max_delay_us: 3,
        fault_rate: 0.05,
        batch_order: order,
        seed,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, EngineOptions::default());
    let n = 3000;
    let sz = 256;
    let src = pattern(n * sz, seed);
    let mut dst = vec![0u8; n * sz];
    let mut hs: Vec<Option<OpHandle>> = (0..n)
        .map(|i| {
            let d = dst.as_mut_ptr() as usize + i * sz;
            let op = if i % 5 == 4 {
                Op::fill(d, (i % 200) as u8, sz, Hints::default())
            } else {
                Op::copy(d, src.as_ptr() as usize + i * sz, sz, Hints::default())
            };
            // SAFETY: buffers outlive every op.
            Some(unsafe { eng.start(&op, true) }.unwrap())
        })
        .collect();
    let mut left = n;
    while left > 0 {
        for slot in hs.iter_mut() {
            if let Some(h) = slot {
                match eng.poll(h) {
                    Poll::Running => {}
                    Poll::Done => {
                        eng.release(slot.take().unwrap());
                        left -= 1;
                    }
                    Poll::Failed(f) => panic!("{order:?}: {f:?}"),
                }
            }
        }
    }
    for i in 0..n {
        let got = &dst[i * sz..(i + 1) * sz];
        if i % 5 == 4 {
            assert!(
                got.iter().all(|&b| b == (i % 200) as u8),
                "{order:?} op {i}"
            );
        } else {
            assert!(got == &src[i * sz..(i + 1) * sz], "{order:?} op {i}");
        }
    }
    (dev, eng)
}

#[test]
fn every_batch_order_completes_everything_exactly_once() {
    for (order, seed) in [
        (BatchOrder::ElementsFirst, 11),
        (BatchOrder::BatchFirst, 12),
        (BatchOrder::Random, 13),
    ] {
        let (dev, eng) = stress(order, seed);
        assert!(eng.stats().batches > 0, "{order:?}");
        assert!(dev.swerror().is_empty(), "{order:?}: {:?}", dev.swerror());
        assert_eq!(eng.credits_in_use(), 0);
        let s = dev.stats();
        assert_eq!(s.accepted, s.completed);
    }
}

/// Element records that never come after their batch record (the
/// element ran: the batch says so) are waited for as long as any record
/// is, and no longer: each element fails with the timeout, its record
/// quarantined because the device may still write it, and nothing is
/// submitted again.
#[test]
fn element_records_that_never_come_after_the_batch_record_time_out() {
    let opts = EngineOptions {
        timeout: std::time::Duration::from_millis(100),
        ..EngineOptions::default()
    };
    let (dev, eng) = rig(batch_first(1), opts);
    let n = 10;
    let src = pattern(n * 64, 2);
    let mut dst = vec![0u8; n * 64];
    let mut hs = start_copies(&eng, &mut dst, &src, n);
    assert_eq!(eng.stats().batched_ops, 8);
    dev.hold_late_records_of_next_batch(HOLD);
    dev.set_stalled(false);
    poll_until_the_batch_retires(&eng, &mut hs);
    // Far past the timeout; a wait that is not bounded stays Running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut states = poll_all(&eng, &mut hs);
    while states[2..].contains(&Poll::Running) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
        states = poll_all(&eng, &mut hs);
    }
    let timed_out = states[2..].iter().all(
        |p| matches!(p, Poll::Failed(f) if f.reason == FailReason::TimedOut { in_device: true }),
    );
    let descriptors = eng.stats().descriptors;
    let hs = settle(
        &dev,
        hs,
        timed_out && descriptors == 3,
        &format!("the batched elements must time out in the device: {states:?}, {descriptors} descriptors"),
    );
    assert_eq!(eng.stats().quarantined, 8);
    assert!(dev.swerror().is_empty(), "{:?}", dev.swerror());
    // The two plain copies were done; the quarantined records are kept.
    assert!(dst[..128] == src[..128]);
    drop(hs);
}
