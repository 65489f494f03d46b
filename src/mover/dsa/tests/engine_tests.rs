//! Engine behaviour on the emulated WQ: data movement, credits, splitting,
//! batching, many operations in flight, out-of-order completion, monitor
//! addresses, and the descriptors it builds (through a recording portal).

use std::sync::{Arc, Mutex};

use crate::mover::dsa::emu::{EmuConfig, Forced, Stall, DEFAULT_GENCAP};
use crate::mover::dsa::engine::op::Op;
use crate::mover::dsa::engine::{BatchPolicy, Engine, EngineOptions, Poll, StartError};
use crate::mover::dsa::hw::discovery::WqMode;
use crate::mover::dsa::hw::{
    flag, gencap, opcode, status, CompletionRecord, CrCell, Descriptor, Hints, Method, Portal,
    PortalError, Submitted,
};
use crate::mover::dsa::testutil::{finish, finish_watching, pattern, rig, Drive};

fn h() -> Hints {
    Hints::default()
}

fn opts() -> EngineOptions {
    EngineOptions::default()
}

#[test]
fn copies_fills_and_flushes_at_odd_sizes_and_offsets() {
    let (dev, eng) = rig(
        EmuConfig {
            max_transfer_size: 1 << 14,
            ..Default::default()
        },
        opts(),
    );
    for (i, &len) in [1usize, 3, 63, 64, 65, 4095, 4097, 50_000]
        .iter()
        .enumerate()
    {
        let src = pattern(len + 13, i as u64);
        let mut dst = vec![0u8; len + 29];
        let op = Op::copy(
            dst.as_mut_ptr() as usize + 7,
            src.as_ptr() as usize + 5,
            len,
            h(),
        );
        // SAFETY: both buffers outlive the op, which `finish` completes.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        assert_eq!(finish(&eng, hd), Poll::Done);
        assert_eq!(&dst[7..7 + len], &src[5..5 + len]);
        assert!(
            dst[..7].iter().chain(&dst[7 + len..]).all(|&b| b == 0),
            "no stray writes"
        );

        let op = Op::fill(dst.as_mut_ptr() as usize + 3, 0xa5, len, h());
        // SAFETY: as above.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        assert_eq!(finish(&eng, hd), Poll::Done);
        assert!(dst[3..3 + len].iter().all(|&b| b == 0xa5));
        assert_eq!(dst[2], 0);

        let op = Op::flush(dst.as_ptr() as usize, len, h());
        // SAFETY: as above.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        assert_eq!(finish(&eng, hd), Poll::Done);
    }
    assert!(dev.swerror().is_empty());
    assert_eq!(dev.stats().validation_errors, 0);
}

#[test]
fn fill_with_a_multibyte_pattern_keeps_its_phase_across_pieces() {
    let (_dev, eng) = rig(
        EmuConfig {
            max_transfer_size: 100,
            ..Default::default()
        },
        opts(),
    );
    let pat = u64::from_le_bytes(*b"ABCDEFGH");
    let mut dst = vec![0u8; 1001];
    let op = Op::fill_pattern(dst.as_mut_ptr() as usize, pat, 1001, h());
    // SAFETY: `dst` outlives the op.
    let hd = unsafe { eng.start(&op, true) }.unwrap();
    assert_eq!(finish(&eng, hd), Poll::Done);
    for (i, &b) in dst.iter().enumerate() {
        assert_eq!(b, b"ABCDEFGH"[i % 8], "byte {i}");
    }
}

#[test]
fn trivial_operations_complete_without_the_device() {
    let (dev, eng) = rig(EmuConfig::default(), opts());
    let mut buf = vec![1u8; 64];
    let p = buf.as_mut_ptr() as usize;
    for op in [
        Op::copy(p, p, 64, h()),
        Op::copy(p, p + 8, 0, h()),
        Op::fill(p, 0, 0, h()),
    ] {
        // SAFETY: nothing is accessed.
        let mut hd = unsafe { eng.start(&op, false) }.unwrap();
        // SAFETY: the monitor word is valid until release.
        assert_ne!(unsafe { *eng.monitor_of(&hd) }, 0);
        assert_eq!(eng.poll(&mut hd), Poll::Done);
        eng.release(hd);
    }
    assert_eq!(dev.stats().accepted, 0);
    // SAFETY: the range wraps: rejected before any access.
    let r = unsafe { eng.start(&Op::fill(usize::MAX - 3, 0, 8, h()), true) };
    assert_eq!(r, Err(StartError::Invalid));
}

/// The central flow-control property: with engines stalled, the driver
/// fills the WQ exactly and never submits beyond it (a dedicated WQ would
/// drop the descriptor silently), whatever the batching policy.
#[test]
fn credits_never_overfill_a_stalled_dedicated_wq() {
    for policy in [BatchPolicy::WhenBusy, BatchPolicy::Off] {
        let cfg = EmuConfig {
            wq_size: 8,
            stall: Stall::Manual,
            max_batch_size: 16,
            ..Default::default()
        };
        let (dev, eng) = rig(
            cfg,
            EngineOptions {
                batch: policy,
                ..opts()
            },
        );
        let n = 300;
        let src = pattern(n * 256, 3);
        let mut dst = vec![0u8; n * 256];
        let mut hs = Vec::new();
        for i in 0..n {
            let op = Op::copy(
                dst.as_mut_ptr() as usize + i * 256,
                src.as_ptr() as usize + i * 256,
                256,
                h(),
            );
            // SAFETY: the buffers outlive every op (all finished below).
            hs.push(unsafe { eng.start(&op, true) }.unwrap());
        }
        // Poll everything a few times while stalled: nothing may go out.
        for _ in 0..3 {
            for hd in hs.iter_mut() {
                assert_eq!(eng.poll(hd), Poll::Running);
            }
        }
        assert_eq!(dev.occupancy(), 8, "{policy:?}: the WQ is exactly full");
        assert_eq!(dev.outstanding(), 8);
        assert_eq!(eng.credits_in_use(), 8);
        assert!(dev.swerror().is_empty(), "{policy:?}: {:?}", dev.swerror());
        if policy == BatchPolicy::WhenBusy {
            assert!(eng.stats().batched_ops > 0);
        }
        // Starting without queueing now fails instead of overfilling.
        let mut one = [0u8; 8];
        let op = Op::fill(one.as_mut_ptr() as usize, 1, 8, h());
        // SAFETY: refused before any access.
        assert_eq!(unsafe { eng.start(&op, false) }, Err(StartError::Busy));
        dev.set_stalled(false);
        for hd in hs {
            assert_eq!(finish_watching(&eng, hd), Poll::Done);
        }
        assert_eq!(dst, src, "{policy:?}");
        let st = dev.stats();
        assert!(dev.swerror().is_empty());
        assert!(st.max_outstanding <= 8 && st.max_occupancy <= 8, "{st:?}");
        assert_eq!(st.accepted, st.completed);
        assert_eq!(eng.credits_in_use(), 0);
        assert_eq!(one, [0; 8]);
    }
}

#[test]
fn queue_false_reports_busy_and_keeps_nothing() {
    let cfg = EmuConfig {
        wq_size: 2,
        stall: Stall::Manual,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, opts());
    let mut b = vec![0u8; 3 * 64];
    let mut hs = Vec::new();
    for i in 0..2 {
        // SAFETY: `b` outlives the ops.
        hs.push(
            unsafe {
                eng.start(
                    &Op::fill(b.as_mut_ptr() as usize + i * 64, 7, 64, h()),
                    false,
                )
            }
            .unwrap(),
        );
    }
    // SAFETY: refused before any access.
    let third = unsafe { eng.start(&Op::fill(b.as_mut_ptr() as usize + 128, 7, 64, h()), false) };
    assert_eq!(third, Err(StartError::Busy));
    dev.set_stalled(false);
    for hd in hs {
        assert_eq!(finish(&eng, hd), Poll::Done);
    }
    assert!(b[..128].iter().all(|&x| x == 7) && b[128..].iter().all(|&x| x == 0));
}

#[test]
fn operations_above_max_transfer_size_are_split() {
    let cfg = EmuConfig {
        max_transfer_size: 4096,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, opts());
    let len = 100_000;
    let src = pattern(len, 9);
    let mut dst = vec![0u8; len];
    let op = Op::copy(dst.as_mut_ptr() as usize, src.as_ptr() as usize, len, h());
    // SAFETY: buffers outlive the op.
    let hd = unsafe { eng.start(&op, true) }.unwrap();
    assert_eq!(finish(&eng, hd), Poll::Done);
    assert_eq!(dst, src);
    // One descriptor per 4 KiB piece, plus one per resumed page fault
    // (`vec![0; n]` may hand out pages the process never touched).
    let st = eng.stats();
    assert_eq!(
        st.descriptors,
        len.div_ceil(4096) as u64 + st.faults_resolved
    );
    // The device never saw an oversized descriptor.
    assert_eq!(dev.stats().validation_errors, 0);
}

#[test]
fn overlapping_moves_split_in_the_right_order_both_directions() {
    for gap in [1usize, 7, 100, 4096, 5000] {
        for up in [true, false] {
            let cfg = EmuConfig {
                max_transfer_size: 1000,
                ..Default::default()
            };
            let (_dev, eng) = rig(cfg, opts());
            let len = 12_345;
            let mut buf = pattern(len + gap, gap as u64);
            let mut want = buf.clone();
            let (s, d) = if up { (0, gap) } else { (gap, 0) };
            want.copy_within(s..s + len, d);
            let base = buf.as_mut_ptr() as usize;
            let op = Op::copy(base + d, base + s, len, h());
            // SAFETY: `buf` outlives the op.
            let hd = unsafe { eng.start(&op, true) }.unwrap();
            assert_eq!(finish(&eng, hd), Poll::Done);
            assert!(buf == want, "gap {gap} up {up}");
        }
    }
}

#[test]
fn overlap_without_device_support_is_left_to_the_cpu() {
    let cfg = EmuConfig {
        gen_cap: DEFAULT_GENCAP & !gencap::OVERLAP_COPY,
        ..Default::default()
    };
    let (_dev, eng) = rig(cfg, opts());
    assert!(!eng.caps().overlap);
    let mut buf = vec![0u8; 100];
    let p = buf.as_mut_ptr() as usize;
    // SAFETY: refused before any access.
    let r = unsafe { eng.start(&Op::copy(p + 1, p, 50, h()), true) };
    assert_eq!(r, Err(StartError::Unsupported));
    // Non-overlapping copies still go to the device.
    // SAFETY: `buf` outlives the op.
    let hd = unsafe { eng.start(&Op::copy(p + 50, p, 50, h()), true) }.unwrap();
    assert_eq!(finish(&eng, hd), Poll::Done);
}

#[test]
fn thousands_in_flight_with_batches_and_out_of_order_completion() {
    let cfg = EmuConfig {
        wq_size: 16,
        engines: 3,
        max_delay_us: 5,
        seed: 42,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, opts());
    let n = 5000;
    let sz = 512;
    let src = pattern(n * sz, 5);
    let mut dst = vec![0u8; n * sz];
    let mut hs: Vec<_> = (0..n)
        .map(|i| {
            let op = Op::copy(
                dst.as_mut_ptr() as usize + i * sz,
                src.as_ptr() as usize + i * sz,
                sz,
                h(),
            );
            // SAFETY: buffers outlive every op.
            Some(unsafe { eng.start(&op, true) }.unwrap())
        })
        .collect();
    let mut left = n;
    let mut spins = 0u64;
    while left > 0 {
        for slot in hs.iter_mut() {
            if let Some(hd) = slot {
                match eng.poll(hd) {
                    Poll::Running => {}
                    Poll::Done => {
                        eng.release(slot.take().unwrap());
                        left -= 1;
                    }
                    Poll::Failed(f) => panic!("{f:?}"),
                }
            }
        }
        spins += 1;
        assert!(spins < 10_000_000);
    }
    assert!(dst == src);
    let (es, ds) = (eng.stats(), dev.stats());
    assert!(es.batches > 0 && es.batched_ops > 0, "{es:?}");
    assert!(dev.swerror().is_empty());
    assert!(ds.max_outstanding <= 16);
    assert_eq!(ds.accepted, ds.completed);
}

#[test]
fn a_later_operation_completes_while_an_earlier_one_is_held() {
    let cfg = EmuConfig {
        engines: 2,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, opts());
    let src = pattern(2 * 4096, 1);
    let mut dst = vec![0u8; 2 * 4096];
    let (dp, sp) = (dst.as_mut_ptr() as usize, src.as_ptr() as usize);
    dev.force(opcode::MEMMOVE, Forced::Hold(1));
    let op = |i: usize| Op::copy(dp + i * 4096, sp + i * 4096, 4096, h());
    // SAFETY: buffers outlive both ops.
    let mut a = unsafe { eng.start(&op(0), true) }.unwrap();
    // Only start B once an engine holds A.
    while dev.pending_forced() > 0 {
        std::thread::yield_now();
    }
    // SAFETY: as above.
    let b = unsafe { eng.start(&op(1), true) }.unwrap();
    assert_eq!(finish(&eng, b), Poll::Done, "B completes while A is held");
    assert_eq!(&dst[4096..], &src[4096..]);
    assert_eq!(eng.poll(&mut a), Poll::Running);
    // SAFETY: A's record is live.
    let word = unsafe { *eng.monitor_of(&a) };
    assert_eq!(word, 0, "monitor word 0 while the device works");
    dev.open_hold(1);
    let mon = eng.monitor_of(&a);
    assert_eq!(eng.wait(&mut a), Poll::Done);
    // SAFETY: valid until release.
    assert_ne!(unsafe { *mon }, 0, "monitor word changed on completion");
    eng.release(a);
    assert!(dst == src);
}

#[test]
fn release_waits_for_a_running_operation() {
    let cfg = EmuConfig {
        stall: Stall::Manual,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, opts());
    let eng = Arc::new(eng);
    let src = pattern(8192, 2);
    let mut dst = vec![0u8; 8192];
    let op = Op::copy(dst.as_mut_ptr() as usize, src.as_ptr() as usize, 8192, h());
    // SAFETY: both buffers outlive `release`, which waits for the device.
    let hd = unsafe { eng.start(&op, true) }.unwrap();
    let e2 = eng.clone();
    let t = std::thread::spawn(move || e2.release(hd));
    dev.set_stalled(false);
    t.join().unwrap();
    assert!(dst == src);
    assert_eq!(eng.credits_in_use(), 0);
}

#[test]
fn shared_wq_retry_is_handled() {
    let cfg = EmuConfig {
        mode: WqMode::Shared,
        wq_size: 8,
        threshold: 4,
        stall: Stall::Manual,
        ..Default::default()
    };
    let (dev, eng) = rig(
        cfg,
        EngineOptions {
            batch: BatchPolicy::Off,
            ..opts()
        },
    );
    let n = 50;
    let src = pattern(n * 100, 4);
    let mut dst = vec![0u8; n * 100];
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let op = Op::copy(
                dst.as_mut_ptr() as usize + i * 100,
                src.as_ptr() as usize + i * 100,
                100,
                h(),
            );
            // SAFETY: buffers outlive every op.
            unsafe { eng.start(&op, true) }.unwrap()
        })
        .collect();
    assert!(dev.occupancy() <= 4);
    dev.set_stalled(false);
    for hd in hs {
        assert_eq!(finish(&eng, hd), Poll::Done);
    }
    assert!(dst == src);
    assert!(dev.swerror().is_empty());
}

/// A portal that records descriptors and completes them at once without
/// touching memory: checks what the engine builds, even for sizes no test
/// could allocate.
#[derive(Default)]
struct Recorder {
    descs: Mutex<Vec<Descriptor>>,
}

impl Portal for Recorder {
    unsafe fn submit(&self, d: &Descriptor) -> Result<Submitted, PortalError> {
        self.descs.lock().unwrap().push(*d);
        let ok = CompletionRecord {
            status: status::SUCCESS,
            ..Default::default()
        };
        // SAFETY: the engine's completion records are live CrCells.
        unsafe { CrCell::at(d.completion_addr) }.publish(&ok);
        Ok(Submitted::Accepted)
    }

    fn method(&self) -> Method {
        Method::Emulated
    }
}

#[test]
fn a_6_gib_copy_becomes_2_gib_descriptors_without_truncation() {
    let rec = Arc::new(Recorder::default());
    let cfg = EmuConfig {
        max_transfer_size: 1 << 31,
        ..Default::default()
    }
    .wq_config();
    let eng = Engine::new(cfg, rec.clone(), opts());
    let len = (6usize << 30) + 12345;
    let op = Op::copy(0x7000_0000_0000, 0x1000_0000_0000, len, h());
    // SAFETY: the recorder never touches memory.
    let hd = unsafe { eng.start(&op, true) }.unwrap();
    assert_eq!(finish(&eng, hd), Poll::Done);
    let d = rec.descs.lock().unwrap().clone();
    let sizes: Vec<u64> = d.iter().map(|x| u64::from(x.xfer_size)).collect();
    assert_eq!(sizes, vec![1 << 31, 1 << 31, 1 << 31, 12345]);
    for (i, x) in d.iter().enumerate() {
        let off = (i as u64) << 31;
        assert_eq!(
            (x.opcode(), x.src, x.dst),
            (
                opcode::MEMMOVE,
                0x1000_0000_0000 + off,
                0x7000_0000_0000 + off
            )
        );
    }
    assert_eq!(sizes.iter().sum::<u64>(), len as u64);
}

#[test]
fn descriptor_flags_follow_hints_and_gencap() {
    // Both GENCAP values seen on Sapphire Rapids (DSA.md 12.3): without and
    // with cache control for CFLUSH (bit 3); each with and without
    // destination readback (bit 8).
    for base in [
        DEFAULT_GENCAP,
        DEFAULT_GENCAP | gencap::CACHE_CONTROL_CFLUSH,
    ] {
        for readback in [true, false] {
            let rec = Arc::new(Recorder::default());
            let mut cfg = EmuConfig::default().wq_config();
            cfg.gen_cap = base;
            if !readback {
                cfg.gen_cap &= !gencap::DEST_READBACK;
            }
            let cc_flush = base & gencap::CACHE_CONTROL_CFLUSH != 0;
            let eng = Engine::new(cfg, rec.clone(), opts());
            assert_eq!(eng.caps().durable_by_device, readback);
            for no_cache in [false, true] {
                for durable in [false, true] {
                    let hints = Hints { no_cache, durable };
                    for op in [
                        Op::copy(0x10000, 0x20000, 100, hints),
                        Op::fill(0x10000, 3, 100, hints),
                        Op::flush(0x10000, 100, hints),
                    ] {
                        // SAFETY: the recorder never touches memory.
                        let hd = unsafe { eng.start(&op, true) }.unwrap();
                        assert_eq!(finish(&eng, hd), Poll::Done);
                        let d = *rec.descs.lock().unwrap().last().unwrap();
                        let f = d.flags();
                        assert_eq!(f & (flag::CRAV | flag::RCR), flag::CRAV | flag::RCR);
                        assert_eq!(f & flag::DSTS, 0, "bit 15 is never used for durability");
                        let is_flush = d.opcode() == opcode::CFLUSH;
                        // Cache control keeps a durable write in the LLC,
                        // outside the persistence domain: never for those.
                        // A flush writes back either way.
                        let cc = if is_flush {
                            !no_cache && cc_flush
                        } else {
                            !no_cache && !durable
                        };
                        assert_eq!(f & flag::CC != 0, cc, "{op:?} {base:#x}");
                        assert_eq!(
                            f & flag::DRDBK != 0,
                            durable && readback && !is_flush,
                            "{op:?}"
                        );
                        assert_eq!(d.pasid_priv, 0);
                    }
                }
            }
        }
    }
}

/// Durable writes on the emulated device, which flags a readback of data
/// that cache control left in the LLC: none, for every hint, both Sapphire
/// Rapids GENCAP values, with and without readback; and the emulator
/// accepts every descriptor (CC on CFLUSH only where GENCAP bit 3 allows).
#[test]
fn durable_writes_reach_the_persistence_domain_on_every_gencap() {
    for base in [
        DEFAULT_GENCAP,
        DEFAULT_GENCAP | gencap::CACHE_CONTROL_CFLUSH,
    ] {
        for gen_cap in [base, base & !gencap::DEST_READBACK] {
            let (dev, eng) = rig(
                EmuConfig {
                    gen_cap,
                    ..Default::default()
                },
                opts(),
            );
            let src = pattern(8192, 6);
            let mut dst = vec![0u8; 8192];
            for no_cache in [false, true] {
                for durable in [false, true] {
                    let hints = Hints { no_cache, durable };
                    let (d, s) = (dst.as_mut_ptr() as usize, src.as_ptr() as usize);
                    for op in [
                        Op::copy(d, s, 8192, hints),
                        Op::fill(d, 0x42, 8192, hints),
                        Op::flush(d, 8192, hints),
                    ] {
                        // SAFETY: buffers outlive the op.
                        let hd = unsafe { eng.start(&op, true) }.unwrap();
                        assert_eq!(finish(&eng, hd), Poll::Done, "{op:?} {gen_cap:#x}");
                    }
                }
            }
            assert!(dst.iter().all(|&b| b == 0x42));
            assert_eq!(dev.stats().validation_errors, 0, "{gen_cap:#x}");
            assert!(
                dev.swerror().is_empty(),
                "{gen_cap:#x}: {:?}",
                dev.swerror()
            );
        }
    }
}
