//! The emulated WQ on each kernel generation (`MINIASYNC_DSA_EMULATE_KERNEL`,
//! `emu/kernel.rs`): opened as a process opens a real WQ, through the
//! generation's sysfs text and the route rule, then driven by the engine.

use std::sync::Arc;

use crate::mover::dsa::emu::{open_device, EmuConfig, EmuDevice, Kernel};
use crate::mover::dsa::engine::op::Op;
use crate::mover::dsa::engine::{Engine, EngineOptions, Poll};
use crate::mover::dsa::hw::discovery::WqMode;
use crate::mover::dsa::hw::{CrCell, Descriptor, Hints, Method};
use crate::mover::dsa::testutil::{finish, pattern, Drive};

fn open(cfg: EmuConfig, force_write: bool) -> Result<(Arc<EmuDevice>, Engine), String> {
    let (wq, dev) = open_device(cfg, force_write)?;
    let eng = Engine::new(wq, dev.clone(), EngineOptions::default());
    Ok((dev, eng))
}

/// Copies, fills and flushes through `eng`, first one at a time, then 100
/// started while the device is stalled (so the WQ fills and, where BATCH
/// is offered, operations share batches). Every one must run on the
/// device.
fn run_on_the_device(dev: &EmuDevice, eng: &Engine) {
    let len = 3 << 20;
    let src = pattern(len, 7);
    let mut dst = vec![0u8; len];
    let ops = [
        Op::copy(
            dst.as_mut_ptr() as usize,
            src.as_ptr() as usize,
            len,
            Hints::default(),
        ),
        Op::fill(dst.as_mut_ptr() as usize, 0x5a, 4096, Hints::default()),
        Op::flush(dst.as_ptr() as usize, len, Hints::default()),
    ];
    for op in &ops {
        // SAFETY: both buffers outlive the op, which `finish` completes.
        let hd = unsafe { eng.start(op, true) }.unwrap();
        assert_eq!(finish(eng, hd), Poll::Done);
    }
    assert!(dst[..4096].iter().all(|&b| b == 0x5a));
    assert_eq!(&dst[4096..], &src[4096..]);
    dev.set_stalled(true);
    let mut hs = Vec::new();
    for i in 0..100 {
        let op = Op::copy(
            dst.as_mut_ptr() as usize + i * 64,
            src.as_ptr() as usize + i * 64,
            64,
            Hints::default(),
        );
        // SAFETY: as above.
        hs.push(unsafe { eng.start(&op, true) }.unwrap());
    }
    dev.set_stalled(false);
    for hd in hs {
        assert_eq!(finish(eng, hd), Poll::Done);
    }
    assert_eq!(dst, src);
    assert!(dev.swerror().is_empty(), "{:?}", dev.swerror());
}

#[test]
fn every_kernel_generation_runs_operations_on_the_device() {
    for kernel in Kernel::ALL {
        for version in [0x100, 0x200] {
            let what = format!("kernel {kernel}, version {version:#x}");
            let cfg = EmuConfig {
                kernel,
                version,
                ..Default::default()
            };
            let (dev, eng) = open(cfg, false).unwrap_or_else(|e| panic!("{what}: {e}"));
            // The whole opcode set the generation shows: on 5.15 too (its
            // op_cap is four space-separated words), never a CPU fallback.
            let caps = eng.caps();
            assert!(caps.copy && caps.fill && caps.flush, "{what}: {caps:?}");
            // The portal is mapped before 6.9; from 6.9 mapping needs
            // CAP_SYS_RAWIO, so write(2) is the path.
            let want = if kernel < Kernel::K6_9 {
                Method::Emulated
            } else {
                Method::Write
            };
            assert_eq!(caps.method, want, "{what}");
            // BATCH is hidden from 6.9 on, and again offered on version 2
            // devices from 6.16.
            let batches = kernel < Kernel::K6_9 || kernel == Kernel::K6_16 && version >= 0x200;
            assert_eq!(eng.batching(), batches, "{what}");
            let before = eng.stats();
            run_on_the_device(&dev, &eng);
            let s = eng.stats();
            let on_device = s.descriptors + s.batched_ops;
            assert!(
                on_device > before.descriptors + before.batched_ops + 100,
                "{what}: {s:?}"
            );
            assert_eq!(s.batches > 0, batches, "{what}: {s:?}");
            // The write(2) route refused nothing: no BATCH reached it where
            // the generation refuses one.
            assert_eq!(eng.batching(), batches, "{what}");
        }
    }
}

#[test]
fn cap_sys_rawio_maps_the_portal_from_6_9() {
    for kernel in [Kernel::K6_9, Kernel::K6_16] {
        let cfg = EmuConfig {
            kernel,
            rawio: true,
            ..Default::default()
        };
        let (dev, eng) = open(cfg, false).unwrap();
        assert_eq!(eng.caps().method, Method::Emulated, "kernel {kernel}");
        // op_cap still hides BATCH on a version 1 device.
        assert!(!eng.batching());
        run_on_the_device(&dev, &eng);
        // Forcing write(2) is still possible there.
        let cfg = EmuConfig {
            kernel,
            rawio: true,
            ..Default::default()
        };
        let (_, eng) = open(cfg, true).unwrap();
        assert_eq!(eng.caps().method, Method::Write);
    }
}

#[test]
fn before_6_9_write_is_refused_so_only_the_mapping_works() {
    for kernel in [Kernel::K5_15, Kernel::K6_1] {
        // Forcing write(2) leaves no route: the WQ is unusable, and says
        // why, instead of an engine whose every submission fails.
        for write in [false, true] {
            let cfg = EmuConfig {
                kernel,
                write_path: write,
                ..Default::default()
            };
            let e = open(cfg, !write).err().expect("no route");
            assert!(e.contains("EINVAL") && e.contains("6.9.1"), "{e}");
            assert!(e.contains(&format!("kernel {kernel}")), "{e}");
        }
    }
    // A shared WQ on 5.15: the kernel shows no `enqcmd` flag (user PASIDs
    // came in 5.18) and has no write(2).
    let cfg = EmuConfig {
        kernel: Kernel::K5_15,
        mode: WqMode::Shared,
        ..Default::default()
    };
    let e = open(cfg, false).err().expect("no route");
    assert!(e.contains("enqcmd") && e.contains("EINVAL"), "{e}");
    // From 6.1 it uses ENQCMD on the mapped portal.
    let cfg = EmuConfig {
        kernel: Kernel::K6_1,
        mode: WqMode::Shared,
        threshold: 8,
        ..Default::default()
    };
    let (dev, eng) = open(cfg, false).unwrap();
    assert_eq!(eng.caps().method, Method::Emulated);
    run_on_the_device(&dev, &eng);
}

#[test]
fn shared_wqs_take_write_from_6_9() {
    for kernel in [Kernel::K6_9, Kernel::K6_16] {
        let cfg = EmuConfig {
            kernel,
            mode: WqMode::Shared,
            threshold: 8,
            ..Default::default()
        };
        let (dev, eng) = open(cfg, false).unwrap();
        assert_eq!(eng.caps().method, Method::Write);
        run_on_the_device(&dev, &eng);
    }
}

#[test]
fn the_emulated_write_follows_each_generation() {
    let crs: Vec<CrCell> = (0..4).map(|_| CrCell::default()).collect();
    let list = [
        Descriptor::noop(crs[2].addr()),
        Descriptor::noop(crs[3].addr()),
    ];
    let batch = Descriptor::batch(list.as_ptr() as u64, 2, crs[1].addr());
    let noop = Descriptor::noop(crs[0].addr());
    let mut two = [0u8; 128];
    two[..64].copy_from_slice(noop.as_bytes());
    two[64..].copy_from_slice(batch.as_bytes());
    for kernel in Kernel::ALL {
        for version in [0x100, 0x200] {
            let dev = EmuDevice::new(EmuConfig {
                kernel,
                version,
                ..Default::default()
            });
            let what = format!("kernel {kernel}, version {version:#x}");
            if !kernel.has_write() {
                assert_eq!(dev.write(noop.as_bytes()), Err(libc::EINVAL), "{what}");
                continue;
            }
            for c in &crs {
                c.clear();
            }
            let misaligned = Descriptor::noop(crs[0].addr() + 8);
            assert_eq!(dev.write(misaligned.as_bytes()), Err(libc::EINVAL));
            assert_eq!(dev.write(&two[..63]), Err(libc::EINVAL));
            let takes_batch = kernel.write_takes_batch(version);
            assert_eq!(takes_batch, kernel == Kernel::K6_16 && version >= 0x200);
            // N x 64 bytes: the bytes taken before the first refusal.
            let want = if takes_batch { 128 } else { 64 };
            assert_eq!(dev.write(&two), Ok(want), "{what}");
            let expect_batch = u8::from(takes_batch);
            wait_for(|| crs[0].status() != 0 && crs[1].status() == expect_batch);
            if !takes_batch {
                assert_eq!(dev.write(batch.as_bytes()), Err(libc::EINVAL), "{what}");
            }
            assert_eq!(crs[0].snapshot().code(), 1);
        }
    }
    // A shared WQ at its threshold: EAGAIN.
    let dev = EmuDevice::new(EmuConfig {
        mode: WqMode::Shared,
        threshold: 1,
        stall: crate::mover::dsa::emu::Stall::Manual,
        ..Default::default()
    });
    let cr = CrCell::default();
    assert_eq!(dev.write(Descriptor::noop(cr.addr()).as_bytes()), Ok(64));
    assert_eq!(
        dev.write(Descriptor::noop(crs[0].addr()).as_bytes()),
        Err(libc::EAGAIN)
    );
    dev.set_stalled(false);
    wait_for(|| cr.status() != 0);
}

/// Spins until `done`; 20 s is a hang guard, not a timing assertion.
fn wait_for(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "no record");
        std::thread::yield_now();
    }
}
