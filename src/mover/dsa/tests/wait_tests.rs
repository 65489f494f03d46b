//! Bounded waits (issue 7, defects 5 and 8) on the emulated WQ: records
//! that never come (`LOSE_RATE`), a device that halts (`HALT_AFTER`),
//! records written late from another thread (`LATE_RATE`), the timeout
//! setting, the real portal's error channel, and deleting movers with
//! operations in flight.
//!
//! Every test that could hang on a defect runs its body under
//! [`guarded`], which fails the test instead. Buffers are written before
//! use: an untouched page would fault on the device, and each resumed
//! piece is one more descriptor whose record may be lost.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use super::mover_tests::{
    blank_vdm, check, copy, delete, notifier, run, set, start, start_all, COMPLETE, CORRUPTED,
    MEMCPY, OK,
};
use crate::mover::dsa::emu::{EmuConfig, EmuDevice};
use crate::mover::dsa::engine::FailReason;
use crate::mover::dsa::mover::{DsaMover, Path};
use crate::mover::dsa::testutil::{pattern, rig, Drive};
use crate::mover::dsa::{Engine, EngineOptions, Poll, TIMEOUT_ENV};
use crate::mover::{Hints, Mover, Op};

/// How long a guarded body may take before the test calls it hung.
const GUARD: Duration = Duration::from_secs(120);

/// Runs `f` on its own thread; fails the test if it does not return
/// within [`GUARD`] (the thread is left behind, hung).
fn guarded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(GUARD) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: hung for {GUARD:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

fn opts(timeout_ms: u64) -> EngineOptions {
    EngineOptions {
        timeout: Duration::from_millis(timeout_ms),
        ..EngineOptions::default()
    }
}

/// An emulated device, an engine on it with `timeout_ms`, and a mover on
/// `path` (threshold 0: AUTO sends everything to the device).
fn mover_on(
    cfg: EmuConfig,
    timeout_ms: u64,
    path: Path,
) -> (Arc<EmuDevice>, Arc<Engine>, Box<DsaMover>) {
    let (dev, eng) = rig(cfg, opts(timeout_ms));
    let eng = Arc::new(eng);
    let m = DsaMover::new(blank_vdm(), path, Ok(eng.clone()), 0).unwrap();
    (dev, eng, m)
}

fn copy_op(dst: &mut [u8], src: &[u8]) -> Op {
    Op::copy(
        dst.as_mut_ptr() as usize,
        src.as_ptr() as usize,
        src.len(),
        Hints::default(),
    )
}

#[test]
fn the_timeout_comes_from_the_environment_with_a_default() {
    let with = |v: Option<&str>| {
        EngineOptions::from_lookup(|k| (k == TIMEOUT_ENV).then(|| v.map(str::to_string))?).timeout
    };
    let default = Duration::from_millis(5000);
    assert_eq!(EngineOptions::default().timeout, default);
    assert_eq!(with(None), default);
    assert_eq!(with(Some("0")), default, "0 means the default");
    assert_eq!(with(Some("soon")), default, "garbage means the default");
    assert_eq!(with(Some("-5")), default);
    assert_eq!(with(Some(" 250 ")), Duration::from_millis(250));
    assert_eq!(with(Some("0x10")), Duration::from_millis(16));
    assert_eq!(
        with(Some("99999999999999999")),
        Duration::from_secs(86_400),
        "capped at a day"
    );
}

/// Defect 5, `wait_op`: a descriptor whose record never comes used to be
/// waited for for ever.
#[test]
fn a_record_that_never_comes_fails_the_operation_after_the_timeout() {
    let cfg = EmuConfig {
        lose_rate: 1.0,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, opts(100));
    let eng = Arc::new(eng);
    let e = eng.clone();
    let (p, dst, src) = guarded("wait_op", move || {
        let src = pattern(70_000, 1);
        let mut dst = vec![0xeeu8; 70_000];
        // SAFETY: the buffers are returned (kept alive) and never touched
        // until the op ended; the emulator did the work before it lost
        // the record, so nothing writes them later.
        let mut h = unsafe { e.start(&copy_op(&mut dst, &src), true) }.unwrap();
        let p = e.wait(&mut h);
        e.release(h);
        (p, dst, src)
    });
    let Poll::Failed(f) = p else { panic!("{p:?}") };
    assert_eq!(f.reason, FailReason::TimedOut { in_device: true });
    assert!(
        !f.cpu_can_finish(),
        "the device may still write: no CPU race"
    );
    let s = eng.stats();
    assert_eq!((s.timeouts, s.quarantined), (1, 1));
    assert_eq!(dev.stats().lost, 1);
    assert_eq!(
        eng.credits_in_use(),
        1,
        "the quarantined descriptor keeps its WQ entry"
    );
    assert!(
        dst == src,
        "the emulator did the work, only the record is lost"
    );
    assert!(dev.swerror().is_empty());
}

/// Defect 5, `release_op` from `op_delete`: deleting a running
/// operation whose record never comes used to hang.
#[test]
fn deleting_an_operation_whose_record_never_comes_is_bounded() {
    let cfg = EmuConfig {
        lose_rate: 1.0,
        ..Default::default()
    };
    let (dev, _eng, m) = mover_on(cfg, 100, Path::Hardware);
    let (r, m) = guarded("op_delete", move || {
        let src = pattern(70_000, 2);
        let mut dst = vec![0xeeu8; 70_000];
        let o = copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 70_000, 0);
        let op = m.new_op().unwrap();
        let mut n = notifier();
        // SAFETY: the buffers outlive the op (leaked below); one thread.
        assert!(unsafe { start(&m, op, &o, &mut n) });
        // SAFETY: the record is not used afterwards.
        let r = unsafe { delete(&m, op, &o) };
        // The device may write a quarantined operation's buffers late.
        core::mem::forget((src, dst));
        (r, m)
    });
    assert_eq!(r, CORRUPTED);
    assert_eq!((m.quarantined(), m.outstanding()), (1, 1));
    assert_eq!(dev.stats().lost, 1);
    guarded("mover drop", move || drop(m));
}

/// Defect 5, the mover's drop: deleting a mover whose device lost the
/// records of its operations used to hang; now the wait is bounded and
/// the quarantined records are kept (the mover's pool is leaked).
#[test]
fn deleting_a_mover_whose_records_never_come_is_bounded() {
    let cfg = EmuConfig {
        lose_rate: 1.0,
        ..Default::default()
    };
    let (dev, eng, m) = mover_on(cfg, 100, Path::Hardware);
    let buf: &'static mut [u8] = Vec::leak(vec![0xeeu8; 64 * 10]);
    let base = buf.as_mut_ptr() as usize;
    guarded("mover drop", move || {
        let ops = (0..10)
            .map(|i| set((base + 64 * i) as *mut u8, 9, 64, 0))
            .collect();
        let started = start_all(&m, ops);
        // The futures are abandoned, the mover deleted.
        drop(started);
        drop(m);
    });
    assert_eq!(eng.stats().quarantined, 10);
    assert_eq!(dev.stats().lost, 10);
    assert!(buf.iter().all(|&b| b == 9));
}

/// HALT_AFTER: the device halts part-way through a stream of operations.
/// AUTO finishes what the device did not on the CPU (the device is known
/// to have stopped, so nothing races the CPU) and is correct; HARDWARE
/// fails; nothing waits for the timeout, which is far beyond the guard.
#[test]
fn a_halted_device_fails_hardware_and_auto_finishes_on_the_cpu() {
    let cfg = EmuConfig {
        halt_after: Some(12),
        wq_size: 16,
        max_transfer_size: 16 << 10,
        ..Default::default()
    };
    let (dev, eng, auto) = mover_on(cfg, 3_600_000, Path::Auto);
    let hw = DsaMover::new(blank_vdm(), Path::Hardware, Ok(eng.clone()), 0).unwrap();
    let dev2 = dev.clone();
    guarded("halt", move || {
        // 20 in flight at once when the device halts, then one at a time.
        let n = 20;
        let src = pattern(64 << 10, 3);
        let mut dsts = vec![vec![0xeeu8; 64 << 10]; n];
        let ops = dsts
            .iter_mut()
            .map(|d| copy(MEMCPY, d.as_mut_ptr(), src.as_ptr(), 64 << 10, 0))
            .collect();
        let started = start_all(&auto, ops);
        for (op, o) in &started {
            // SAFETY: live records of `auto`, polled by this thread.
            while unsafe { check(&auto, op) } != COMPLETE {
                std::thread::yield_now();
            }
            // SAFETY: the record dies here.
            assert_eq!(unsafe { delete(&auto, op, o) }, OK);
        }
        assert!(dsts.iter().all(|d| *d == src), "AUTO: every byte right");
        assert!(dev2.halted(), "the device halted part-way");
        let mut dst = vec![0xeeu8; 64 << 10];
        for _ in 0..5 {
            dst.fill(0);
            let r = run(
                &auto,
                &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 64 << 10, 0),
            );
            assert_eq!(r.0, OK);
            assert!(dst == src);
            let r = run(
                &hw,
                &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 64 << 10, 0),
            );
            assert_eq!(r.0, CORRUPTED, "HARDWARE: the device is gone");
        }
        let r = run(&hw, &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 0, 0));
        assert_eq!(r.0, OK, "n == 0 still succeeds");
        drop(auto);
        drop(hw);
    });
    assert!(dev.stats().lost > 0);
    let s = eng.stats();
    assert!(s.timeouts > 0 && s.quarantined <= s.timeouts, "{s:?}");
}

/// HALT_AFTER under a full WQ: HARDWARE operations queued in batches and
/// waiting for credits when the device halts all end (done before the
/// halt, or failed), without waiting for the timeout.
#[test]
fn a_device_that_halts_under_queued_operations_ends_them_all() {
    let cfg = EmuConfig {
        halt_after: Some(6),
        wq_size: 4,
        ..Default::default()
    };
    let (dev, _eng, m) = mover_on(cfg, 3_600_000, Path::Hardware);
    let (ok, failed) = guarded("halt under load", move || {
        let n = 300;
        let mut dst = vec![0xeeu8; 4096 * n];
        let base = dst.as_mut_ptr() as usize;
        let ops = (0..n)
            .map(|i| set((base + 4096 * i) as *mut u8, (i % 200) as u8 + 1, 4096, 0))
            .collect();
        let mut left = start_all(&m, ops);
        let (mut ok, mut failed) = (0, 0);
        while !left.is_empty() {
            left.retain(|(op, o)| {
                // SAFETY: live records of `m`, polled by this thread only.
                if unsafe { check(&m, op) } != COMPLETE {
                    return true;
                }
                // SAFETY: the record dies here.
                match unsafe { delete(&m, op, o) } {
                    OK => ok += 1,
                    CORRUPTED => failed += 1,
                    x => panic!("result {x}"),
                }
                false
            });
        }
        for (i, chunk) in dst.chunks(4096).enumerate() {
            let v = (i % 200) as u8 + 1;
            assert!(chunk.iter().all(|&b| b == v || b == 0xee), "op {i}: torn");
        }
        // Failed operations' buffers may still be written by the device.
        core::mem::forget(dst);
        drop(m);
        (ok, failed)
    });
    assert!(dev.halted());
    assert!(ok > 0 && failed > 0, "{ok} {failed}");
}

/// LOSE_RATE: each lost record fails its operation after the timeout
/// (HARDWARE and AUTO alike: the device is still enabled, so AUTO must not
/// race it on the CPU), its record is quarantined, and the operations
/// around it work.
#[test]
fn lost_records_fail_their_operations_and_the_others_work() {
    for path in [Path::Hardware, Path::Auto] {
        let cfg = EmuConfig {
            lose_rate: 0.25,
            wq_size: 64,
            seed: 7,
            ..Default::default()
        };
        let (dev, eng, m) = mover_on(cfg, 100, path);
        let dev2 = dev.clone();
        let (ok, failed, ok_after_failure, m) = guarded("lost records", move || {
            let (mut ok, mut failed, mut ok_after_failure) = (0u32, 0u32, false);
            for i in 0..40u64 {
                let src = pattern(80_000, i);
                let mut dst = vec![0xeeu8; 80_000];
                let r = run(&m, &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 80_000, 0));
                match r.0 {
                    OK => {
                        assert!(dst == src, "op {i}");
                        ok += 1;
                        ok_after_failure |= failed > 0;
                    }
                    CORRUPTED => failed += 1,
                    x => panic!("op {i}: result {x}"),
                }
                // The device may write a failed operation's buffers late.
                core::mem::forget((src, dst));
            }
            assert_eq!(u64::from(failed), dev2.stats().lost, "{path:?}");
            (ok, failed, ok_after_failure, m)
        });
        assert!(
            failed > 0 && ok > 0 && ok_after_failure,
            "{path:?}: {ok} {failed}"
        );
        assert_eq!(m.quarantined(), failed);
        assert_eq!(m.outstanding(), failed, "quarantined records stay out");
        assert_eq!(eng.stats().quarantined, u64::from(failed));
        guarded("mover drop", move || drop(m));
    }
}

/// LATE_RATE (DSA 2.0's completion-record fault): records arrive long
/// after the timeout. The late write lands in a quarantined record,
/// which no later operation uses, so nothing is corrupted: operations that
/// run while the late records land (each slowed by the device) see only
/// their own records.
#[test]
fn late_records_land_in_quarantined_records_and_corrupt_nothing() {
    let cfg = EmuConfig {
        late_rate: 0.4,
        late_us: 300_000,
        max_delay_us: 3000,
        wq_size: 64,
        seed: 11,
        ..Default::default()
    };
    let (dev, _eng, m) = mover_on(cfg, 30, Path::Hardware);
    let (failed, m) = guarded("late records", move || {
        let mut failed = 0u32;
        let mut late_seen_at = None;
        let mut i = 0u64;
        // Run until every late record has had time to land during later
        // operations: at least 200 operations after the first late one
        // (each takes up to 3 ms in the device).
        while late_seen_at.is_none_or(|at| i < at + 200) {
            let src = pattern(8192, i);
            let mut dst = vec![0xeeu8; 8192];
            let r = run(&m, &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 8192, 0));
            match r.0 {
                OK => assert!(dst == src, "op {i}: completed early"),
                CORRUPTED => {
                    failed += 1;
                    late_seen_at.get_or_insert(i);
                }
                x => panic!("op {i}: result {x}"),
            }
            core::mem::forget((src, dst));
            i += 1;
            assert!(i < 100_000, "no late record ever timed out");
        }
        (failed, m)
    });
    assert!(failed > 0);
    assert!(dev.stats().late >= u64::from(failed));
    assert_eq!(m.quarantined(), failed);
    guarded("mover drop", move || drop(m));
}

/// Defect 8: deleting a mover with device operations in flight used to
/// leak their engine records; after 16384 deletions every HARDWARE
/// operation stayed IDLE for ever. The records are the mover's own now
/// and its drop waits for them: many such deletions leak nothing.
#[test]
fn deleting_movers_with_operations_in_flight_leaks_nothing() {
    let (dev, eng) = rig(EmuConfig::default(), opts(5000));
    let eng = Arc::new(eng);
    let e = eng.clone();
    guarded("17000 deletions", move || {
        let mut buf = vec![0xeeu8; 128];
        let base = buf.as_mut_ptr() as usize;
        for i in 0..17_000u32 {
            let m = DsaMover::new(blank_vdm(), Path::Hardware, Ok(e.clone()), 0).unwrap();
            let ops = (0..2)
                .map(|k| set((base + 64 * k) as *mut u8, (i % 250) as u8 + 1, 64, 0))
                .collect();
            let started = start_all(&m, ops);
            drop(started);
            drop(m);
        }
        assert!(buf.iter().all(|&b| b == (16_999 % 250) as u8 + 1));
        let m = DsaMover::new(blank_vdm(), Path::Hardware, Ok(e.clone()), 0).unwrap();
        let src = pattern(100_000, 5);
        let mut dst = vec![0xeeu8; 100_000];
        let r = run(
            &m,
            &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 100_000, 0),
        );
        assert_eq!(r.0, OK);
        assert!(dst == src);
    });
    assert_eq!(eng.credits_in_use(), 0);
    assert_eq!(dev.outstanding(), 0);
    assert_eq!(eng.stats().quarantined, 0);
    assert!(dev.swerror().is_empty());
}
