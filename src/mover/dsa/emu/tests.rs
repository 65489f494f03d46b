//! The emulated WQ on its own: raw descriptors in, completion records
//! and memory effects out.

use std::sync::Arc;

use super::*;
use crate::mover::dsa::engine::fault::{page_size, Untouched};
use crate::mover::dsa::hw::{
    flag, gencap, status, CompletionRecord, CrCell, Descriptor, DeviceState, Portal, PortalError,
    Submitted,
};
use crate::mover::dsa::testutil::pattern;

fn dev(cfg: EmuConfig) -> Arc<EmuDevice> {
    EmuDevice::new(cfg)
}

/// Clear the record, submit, and wait for the record.
fn run(d: &EmuDevice, desc: &Descriptor) -> CompletionRecord {
    // SAFETY: the completion address is a live CrCell of the caller.
    let cell = unsafe { CrCell::at(desc.completion_addr) };
    cell.clear();
    // SAFETY: every test descriptor points at live buffers and a live
    // CrCell, all kept until the record is written (waited for here).
    assert_eq!(unsafe { d.submit(desc) }, Ok(Submitted::Accepted));
    while cell.status() == 0 {
        std::thread::yield_now();
    }
    cell.snapshot()
}

fn flags() -> u32 {
    flag::CRAV | flag::RCR
}

#[test]
fn config_from_environment_lookup() {
    let c = EmuConfig::from_lookup(|_| None);
    assert_eq!(
        c,
        EmuConfig {
            strict: true,
            ..EmuConfig::default()
        }
    );
    let c = EmuConfig::from_lookup(|k| {
        let v = match k.strip_prefix("MINIASYNC_DSA_EMULATE_")? {
            "MODE" => "shared",
            "WQ_SIZE" => "64",
            "THRESHOLD" => "1000",
            "ENGINES" => "99",
            "MAX_TRANSFER" => "0x10000",
            "MAX_BATCH" => "8",
            "NO_BATCH" => "1",
            "GENCAP" => "0x3",
            "VERSION" => "0x200",
            "FAULT_RATE" => "2.5",
            "DELAY_US" => "10",
            "STALL" => "1",
            "WRITE" => "1",
            "HOSTILE" => "1",
            "SEED" => "99",
            "STRICT" => "0",
            "KERNEL" => " 5.15 ",
            "RAWIO" => "1",
            "HALT_AFTER" => "5",
            "LOSE_RATE" => "0.5",
            "LATE_RATE" => "nan",
            "LATE_US" => "99999999999",
            "FAULT_ADDR" => "masked",
            "FAULT_US" => "99999999",
            _ => return None,
        };
        Some(v.to_string())
    });
    assert_eq!(c.mode, WqMode::Shared);
    assert_eq!((c.wq_size, c.threshold, c.engines), (64, 64, 16));
    assert_eq!((c.max_transfer_size, c.max_batch_size), (0x10000, 8));
    assert!(!c.ops.has(opcode::BATCH) && c.ops.has(opcode::MEMMOVE));
    assert_eq!(
        (c.gen_cap, c.version, c.fault_rate, c.max_delay_us),
        (3, 0x200, 1.0, 10)
    );
    assert_eq!(c.stall, Stall::UntilFull);
    assert!(c.write_path && c.hostile_cr && !c.strict);
    assert_eq!(c.seed, 99);
    assert_eq!((c.kernel, c.rawio), (Kernel::K5_15, true));
    // The newest generation by default, and for a value that names none.
    assert_eq!(EmuConfig::from_lookup(|_| None).kernel, Kernel::K6_16);
    let bad = EmuConfig::from_lookup(|k| k.ends_with("_KERNEL").then(|| "6.2".to_string()));
    assert_eq!(bad.kernel, Kernel::K6_16);
    for k in Kernel::ALL {
        assert_eq!(Kernel::parse(&k.to_string()), Some(k));
    }
    assert_eq!(c.halt_after, Some(5));
    assert_eq!(
        (c.lose_rate, c.late_rate, c.late_us),
        (0.5, 0.0, 60_000_000)
    );
    assert_eq!((c.fault_addr, c.fault_us), (FaultAddr::Masked, 1_000_000));
    for (text, mode) in [
        ("exact", FaultAddr::Exact),
        ("page", FaultAddr::Page),
        (" masked ", FaultAddr::Masked),
        ("bogus", FaultAddr::Exact),
    ] {
        let c = EmuConfig::from_lookup(|k| {
            (k == "MINIASYNC_DSA_EMULATE_FAULT_ADDR").then(|| text.to_string())
        });
        assert_eq!(c.fault_addr, mode, "{text}");
    }
    let w = c.wq_config();
    assert_eq!((w.mode, w.size, w.threshold), (WqMode::Shared, 64, 64));
    assert!(!w.batch_supported());
}

#[test]
fn memory_effects_and_success_records() {
    let d = dev(EmuConfig::default());
    let cr = CrCell::default();
    let src = pattern(5000, 1);
    let mut dst = vec![0u8; 5000];
    let r = run(
        &d,
        &Descriptor::memmove(
            dst.as_mut_ptr() as u64,
            src.as_ptr() as u64,
            5000,
            cr.addr(),
            flags(),
        ),
    );
    assert_eq!(r.status, status::SUCCESS);
    assert!(dst == src);
    let r = run(
        &d,
        &Descriptor::memfill(
            dst.as_mut_ptr() as u64 + 1,
            0x0807_0605_0403_0201,
            17,
            cr.addr(),
            flags(),
        ),
    );
    assert_eq!(r.status, status::SUCCESS);
    assert_eq!(
        &dst[1..18],
        &[1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1]
    );
    assert_eq!(
        run(
            &d,
            &Descriptor::cflush(dst.as_ptr() as u64, 5000, cr.addr(), flags())
        )
        .status,
        1
    );
    assert_eq!(run(&d, &Descriptor::noop(cr.addr())).status, 1);
    let s = d.stats();
    assert_eq!((s.accepted, s.completed), (4, 4));
}

#[test]
fn validation_uses_the_real_status_codes() {
    let cfg = EmuConfig {
        gen_cap: DEFAULT_GENCAP & !gencap::OVERLAP_COPY,
        max_transfer_size: 4096,
        max_batch_size: 4,
        ..Default::default()
    };
    let d = dev(cfg);
    let cr = CrCell::default();
    let mut buf = vec![0u8; 8192];
    let b = buf.as_mut_ptr() as u64;
    let mv = |f: u32, n: u32| Descriptor::memmove(b + 4096, b, n, cr.addr(), f);
    let mut reserved = mv(flags(), 8);
    reserved.pasid_priv = 1 << 20;
    let mut privileged = mv(flags(), 8);
    privileged.pasid_priv = 1 << 31;
    let mut rsvd16 = mv(flags(), 8);
    rsvd16.rsvd = 1;
    let mut opspec = mv(flags(), 8);
    opspec.op_specific[3] = 1;
    let mut bad_op = mv(flags(), 8);
    bad_op.set_opcode(opcode::COMPARE);
    let list = vec![Descriptor::noop(cr.addr()); 8];
    let cases: Vec<(Descriptor, u8)> = vec![
        (reserved, status::NOZERO_RESERVE),
        (privileged, status::PRIV_BAD),
        (bad_op, status::BAD_OPCODE),
        (mv(flags() | flag::RCI, 8), status::INVALID_FLAGS),
        (mv(flags() | flag::BOF, 8), status::INVALID_FLAGS),
        (mv(flags() | flag::RESERVED_6, 8), status::INVALID_FLAGS),
        (mv(flags() | 0x10000, 8), status::INVALID_FLAGS),
        (mv(flags() | flag::FENCE, 8), status::INVALID_FLAGS),
        (rsvd16, status::NOZERO_RESERVE),
        (opspec, status::NOZERO_RESERVE),
        (mv(flags(), 0), status::XFER_ERANGE),
        (mv(flags(), 4097), status::XFER_ERANGE),
        (
            Descriptor::memmove(b + 8, b, 100, cr.addr(), flags()),
            status::OVERLAP_BUFFERS,
        ),
        (
            Descriptor::memmove(b, u64::MAX - 10, 100, cr.addr(), flags()),
            status::TRANSLATION_FAIL,
        ),
        (
            Descriptor::batch(list.as_ptr() as u64, 1, cr.addr()),
            status::DESC_CNT_ERANGE,
        ),
        (
            Descriptor::batch(list.as_ptr() as u64, 5, cr.addr()),
            status::DESC_CNT_ERANGE,
        ),
        (
            Descriptor::batch(list.as_ptr() as u64 + 8, 2, cr.addr()),
            status::DESCLIST_ALIGN,
        ),
    ];
    for (desc, want) in cases {
        let r = run(&d, &desc);
        assert_eq!(r.status, want, "{desc:?}");
        if want == status::INVALID_FLAGS {
            assert_eq!(
                r.invalid_flags(),
                desc.flags() & !(flags() | flag::CC),
                "{desc:?}"
            );
        }
    }
    assert!(buf.iter().all(|&x| x == 0), "nothing executed");
    // DRDBK and CC are valid only with their GENCAP bits.
    let bare = dev(EmuConfig {
        gen_cap: 0,
        ..Default::default()
    });
    let r = run(
        &bare,
        &Descriptor::memmove(b + 4096, b, 8, cr.addr(), flags() | flag::DRDBK | flag::CC),
    );
    assert_eq!(
        (r.status, r.invalid_flags()),
        (status::INVALID_FLAGS, flag::DRDBK | flag::CC)
    );
    let full = dev(EmuConfig::default());
    let r = run(
        &full,
        &Descriptor::memmove(b + 4096, b, 8, cr.addr(), flags() | flag::DRDBK | flag::CC),
    );
    assert_eq!(r.status, status::SUCCESS);
    // BOF is accepted where the WQ enables it.
    let bof = dev(EmuConfig {
        block_on_fault: true,
        ..Default::default()
    });
    assert_eq!(
        run(
            &bof,
            &Descriptor::memmove(b + 4096, b, 8, cr.addr(), flags() | flag::BOF)
        )
        .status,
        1
    );
}

#[test]
fn completion_record_rules() {
    let d = dev(EmuConfig::default());
    let mut buf = vec![0u8; 64];
    let b = buf.as_mut_ptr() as u64;
    // RCR clear: no record on success, a record on error.
    let cr = CrCell::default();
    let desc = Descriptor::memfill(b, 0x1111_1111_1111_1111, 8, cr.addr(), flag::CRAV);
    // SAFETY: `buf` and `cr` outlive the operation (waited for below).
    assert_eq!(unsafe { d.submit(&desc) }, Ok(Submitted::Accepted));
    while d.outstanding() > 0 {
        std::thread::yield_now();
    }
    assert_eq!(buf[0], 0x11);
    assert_eq!(cr.status(), 0, "no record for a success without RCR");
    let r = run(&d, &Descriptor::memfill(b, 0, 0, cr.addr(), flag::CRAV));
    assert_eq!(
        r.status,
        status::XFER_ERANGE,
        "errors are reported without RCR"
    );
    // No CRAV: nothing written at all.
    let never = CrCell::default();
    // SAFETY: as above.
    let _ = unsafe {
        d.submit(&Descriptor::memfill(
            b,
            0x2222_2222_2222_2222,
            8,
            never.addr(),
            flag::RCR,
        ))
    };
    while d.outstanding() > 0 {
        std::thread::yield_now();
    }
    assert_eq!((buf[0], never.status()), (0x22, 0));
    assert!(d.swerror().is_empty());
    // A misaligned record address: no record, a software error.
    let space = [CrCell::default(), CrCell::default()];
    let odd = space[0].addr() + 8;
    // SAFETY: as above; nothing is written at the odd address.
    let _ = unsafe { d.submit(&Descriptor::noop(odd)) };
    while d.outstanding() > 0 {
        std::thread::yield_now();
    }
    let e = d.swerror();
    assert_eq!(e.cr_align, 1);
    assert_eq!(e.first.map(|f| f.0), Some(SwErrorKind::CrAlign));
    assert_eq!(space[0].snapshot(), CompletionRecord::default());
}

#[test]
fn full_dedicated_wq_drops_silently_and_records_it() {
    let d = dev(EmuConfig {
        wq_size: 4,
        stall: Stall::Manual,
        ..Default::default()
    });
    let crs: Vec<CrCell> = (0..5).map(|_| CrCell::default()).collect();
    for c in &crs {
        // SAFETY: NOOPs touch only their records, which outlive the device.
        let r = unsafe { d.submit(&Descriptor::noop(c.addr())) };
        assert_eq!(r, Ok(Submitted::Accepted));
    }
    let e = d.swerror();
    assert_eq!(e.overflow, 1);
    assert_eq!(
        e.first.map(|f| (f.0, f.1.completion_addr)),
        Some((SwErrorKind::Overflow, crs[4].addr()))
    );
    d.set_stalled(false);
    while d.outstanding() > 0 {
        std::thread::yield_now();
    }
    assert!(crs[..4].iter().all(|c| c.status() == status::SUCCESS));
    assert_eq!(crs[4].status(), 0, "a dropped descriptor never completes");
    let s = d.stats();
    assert_eq!((s.accepted, s.max_occupancy), (4, 4));
}

#[test]
fn shared_wq_answers_retry_at_its_threshold() {
    let d = dev(EmuConfig {
        mode: WqMode::Shared,
        wq_size: 8,
        threshold: 3,
        stall: Stall::Manual,
        ..Default::default()
    });
    let crs: Vec<CrCell> = (0..4).map(|_| CrCell::default()).collect();
    let got: Vec<_> = crs
        .iter()
        // SAFETY: NOOPs touch only their records.
        .map(|c| unsafe { d.submit(&Descriptor::noop(c.addr())) })
        .collect();
    assert_eq!(got[..3], [Ok(Submitted::Accepted); 3]);
    assert_eq!(got[3], Ok(Submitted::Retry));
    assert!(d.swerror().is_empty());
    // ENQCMD clears the privilege bit: a privileged descriptor is fine.
    let mut p = Descriptor::noop(crs[3].addr());
    p.pasid_priv = 1 << 31;
    d.set_stalled(false);
    while d.outstanding() > 0 {
        std::thread::yield_now();
    }
    assert_eq!(run(&d, &p).status, status::SUCCESS);
    assert_eq!(d.stats().retries, 1);
}

#[test]
fn write_path_checks() {
    let v1 = dev(EmuConfig {
        write_path: true,
        version: 0x100,
        ..Default::default()
    });
    let list = [Descriptor::zeroed(); 2];
    let cr = CrCell::default();
    // SAFETY: refused before anything runs.
    let r = unsafe { v1.submit(&Descriptor::noop(cr.addr() + 4)) };
    assert_eq!(
        r,
        Err(PortalError {
            errno: libc::EINVAL
        })
    );
    // SAFETY: as above.
    let r = unsafe { v1.submit(&Descriptor::batch(list.as_ptr() as u64, 2, cr.addr())) };
    assert_eq!(
        r,
        Err(PortalError {
            errno: libc::EINVAL
        })
    );
    let v2 = dev(EmuConfig {
        write_path: true,
        version: 0x200,
        ..Default::default()
    });
    let els: Vec<CrCell> = (0..2).map(|_| CrCell::default()).collect();
    let list = [
        Descriptor::noop(els[0].addr()),
        Descriptor::noop(els[1].addr()),
    ];
    assert_eq!(
        run(&v2, &Descriptor::batch(list.as_ptr() as u64, 2, cr.addr())).status,
        1
    );
    // The element records may follow the batch record.
    wait_records(&els);
    assert!(els.iter().all(|e| e.status() == status::SUCCESS));
}

/// Wait until every record in `crs` is written.
fn wait_records(crs: &[CrCell]) {
    while crs.iter().any(|c| c.status() == 0) {
        std::thread::yield_now();
    }
}

#[test]
fn batch_orders_decide_when_element_records_become_visible() {
    assert_eq!(EmuConfig::default().batch_order, BatchOrder::Random);
    for (name, order) in [
        ("elements-first", BatchOrder::ElementsFirst),
        ("batch-first", BatchOrder::BatchFirst),
        ("random", BatchOrder::Random),
    ] {
        assert_eq!(BatchOrder::parse(name), Some(order));
        let c = EmuConfig::from_lookup(|k| {
            (k == "MINIASYNC_DSA_EMULATE_BATCH_ORDER").then(|| name.to_string())
        });
        assert_eq!(c.batch_order, order);
    }
    assert_eq!(BatchOrder::parse("sometimes"), None);
    for order in [BatchOrder::ElementsFirst, BatchOrder::BatchFirst] {
        let d = dev(EmuConfig {
            batch_order: order,
            ..Default::default()
        });
        let els: Vec<CrCell> = (0..8).map(|_| CrCell::default()).collect();
        let list: Vec<Descriptor> = els.iter().map(|e| Descriptor::noop(e.addr())).collect();
        let cr = CrCell::default();
        d.hold_late_records_of_next_batch(1);
        let r = run(&d, &Descriptor::batch(list.as_ptr() as u64, 8, cr.addr()));
        assert_eq!((r.status, r.bytes_completed), (status::SUCCESS, 8));
        let seen = els.iter().filter(|e| e.status() != 0).count();
        assert_eq!(
            seen,
            if order == BatchOrder::BatchFirst {
                0
            } else {
                8
            }
        );
        d.open_hold(1);
        wait_records(&els);
        assert!(els.iter().all(|e| e.status() == status::SUCCESS));
        assert!(d.swerror().is_empty());
    }
}

#[test]
fn two_descriptors_in_the_device_naming_one_record_are_a_driver_error() {
    let d = dev(EmuConfig {
        stall: Stall::Manual,
        ..Default::default()
    });
    let cr = CrCell::default();
    // SAFETY: NOOPs touch only `cr`, which outlives them (waited for).
    unsafe {
        assert_eq!(
            d.submit(&Descriptor::noop(cr.addr())),
            Ok(Submitted::Accepted)
        );
        assert_eq!(
            d.submit(&Descriptor::noop(cr.addr())),
            Ok(Submitted::Accepted)
        );
    }
    let e = d.swerror();
    assert_eq!(e.shared_record, 1);
    assert_eq!(e.first.map(|f| f.0), Some(SwErrorKind::SharedRecord));
    d.set_stalled(false);
    while d.outstanding() > 0 {
        std::thread::yield_now();
    }
    // Once a record is written, it may be named again.
    assert_eq!(
        run(&d, &Descriptor::noop(cr.addr())).status,
        status::SUCCESS
    );
    assert_eq!(d.swerror().shared_record, 1);
}

#[test]
fn readback_of_cached_data_is_flagged_as_not_durable() {
    let d = dev(EmuConfig::default());
    let cr = CrCell::default();
    let src = pattern(256, 9);
    let mut dst = vec![0u8; 256];
    let (s, t) = (src.as_ptr() as u64, dst.as_mut_ptr() as u64);
    for (f, bad) in [
        (flags() | flag::DRDBK, false),
        (flags() | flag::CC, false),
        (flags() | flag::CC | flag::DRDBK, true),
    ] {
        let before = d.swerror().not_durable;
        let mv = Descriptor::memmove(t, s, 256, cr.addr(), f);
        assert_eq!(run(&d, &mv).status, status::SUCCESS);
        let fill = Descriptor::memfill(t, 7, 256, cr.addr(), f);
        assert_eq!(run(&d, &fill).status, status::SUCCESS);
        assert_eq!(
            d.swerror().not_durable - before,
            if bad { 2 } else { 0 },
            "{f:#x}"
        );
    }
    assert_eq!(
        d.swerror().first.map(|f| f.0),
        Some(SwErrorKind::NotDurable)
    );
}

#[test]
fn a_record_page_that_is_not_resident_still_gets_the_real_record() {
    // DSA 2.0: the kernel resolves a completion-record fault and writes
    // the record; user space never reads CRA_XLAT (0x1a).
    let d = dev(EmuConfig::default());
    let m = Untouched::new(page_size() as usize);
    assert_eq!(
        crate::mover::dsa::engine::fault::page_state(m.as_ptr() as u64),
        Some(false)
    );
    let src = pattern(100, 4);
    let mut dst = vec![0u8; 100];
    let desc = Descriptor::memmove(
        dst.as_mut_ptr() as u64,
        src.as_ptr() as u64,
        100,
        m.as_ptr() as u64,
        flags(),
    );
    // SAFETY: the record lies in the test's own mapping, alive until the
    // record is seen; the buffers outlive the descriptor.
    let cell = unsafe { CrCell::at(m.as_ptr() as u64) };
    // SAFETY: as above.
    assert_eq!(unsafe { d.submit(&desc) }, Ok(Submitted::Accepted));
    // Not a byte of the page is read before the device is done with it
    // (the count drops just before the status store).
    while d.outstanding() > 0 {
        std::thread::yield_now();
    }
    while cell.status() == 0 {
        std::thread::yield_now();
    }
    assert_eq!(cell.snapshot().status, status::SUCCESS);
    assert!(dst == src);
    assert!(d.swerror().is_empty());
}

#[test]
fn batches_run_elements_with_their_own_records() {
    let d = dev(EmuConfig {
        batch_order: BatchOrder::ElementsFirst,
        ..Default::default()
    });
    let els: Vec<CrCell> = (0..4).map(|_| CrCell::default()).collect();
    let mut buf = vec![0u8; 256];
    let b = buf.as_mut_ptr() as u64;
    let inner = [
        Descriptor::noop(els[3].addr()),
        Descriptor::noop(els[3].addr()),
    ];
    let list = [
        Descriptor::memfill(
            b,
            0x0101_0101_0101_0101,
            64,
            els[0].addr(),
            flags() | flag::FENCE,
        ),
        Descriptor::batch(inner.as_ptr() as u64, 2, els[1].addr()),
        Descriptor::memfill(b + 64, 0x0202_0202_0202_0202, 0, els[2].addr(), flags()),
    ];
    let cr = CrCell::default();
    let r = run(&d, &Descriptor::batch(list.as_ptr() as u64, 3, cr.addr()));
    assert_eq!(
        (r.status, r.result, r.bytes_completed),
        (status::BATCH_FAIL, 1, 3)
    );
    assert_eq!(els[0].status(), status::SUCCESS);
    assert_eq!(els[1].status(), status::BAD_OPCODE, "no nested batches");
    assert_eq!(els[2].status(), status::XFER_ERANGE);
    assert_eq!(els[3].status(), 0);
    assert!(buf[..64].iter().all(|&x| x == 1) && buf[64..].iter().all(|&x| x == 0));
    // A list in memory the process never touched: the device faults on it.
    let ps = page_size() as usize;
    let m = Untouched::new(ps);
    let r = run(&d, &Descriptor::batch(m.as_ptr() as u64, 2, cr.addr()));
    assert_eq!(
        (r.status, r.bytes_completed, r.fault_addr),
        (status::BATCH_PAGE_FAULT, 0, m.as_ptr() as u64)
    );
}

#[test]
fn drain_waits_for_everything_before_it() {
    let d = dev(EmuConfig {
        engines: 3,
        ..Default::default()
    });
    let a = CrCell::default();
    let dr = CrCell::default();
    d.force(opcode::NOOP, Forced::Hold(7));
    // SAFETY: NOOPs and DRAIN touch only their records.
    unsafe {
        assert_eq!(
            d.submit(&Descriptor::noop(a.addr())),
            Ok(Submitted::Accepted)
        );
        while d.pending_forced() > 0 {
            std::thread::yield_now();
        }
        assert_eq!(
            d.submit(&Descriptor::drain(dr.addr())),
            Ok(Submitted::Accepted)
        );
    }
    // The drain was picked up by another engine; it must not finish while
    // the held NOOP has not.
    for _ in 0..200 {
        std::thread::yield_now();
        assert_eq!(dr.status(), 0);
    }
    d.open_hold(7);
    while dr.status() == 0 {
        std::thread::yield_now();
    }
    assert_eq!(
        a.status(),
        status::SUCCESS,
        "earlier descriptor finished first"
    );
}

#[test]
fn residency_faults_in_both_directions() {
    let ps = page_size();
    let d = dev(EmuConfig::default());
    let cr = CrCell::default();
    let m = Untouched::new(4 * ps as usize);
    let base = m.as_ptr() as u64;
    let data = pattern(ps as usize, 3);
    // SAFETY: writes (and so touches) the first page only.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), m.as_ptr(), ps as usize) };
    // Ascending into untouched page 2: nothing done, write fault at dst.
    let r = run(
        &d,
        &Descriptor::memmove(base + 2 * ps, base, 100, cr.addr(), flags()),
    );
    assert_eq!(
        (r.status, r.result, r.bytes_completed, r.fault_addr),
        (0x83, 0, 0, base + 2 * ps)
    );
    // Overlapping, destination above: descending; the top 100 bytes land in
    // untouched page 1, the rest in page 0 (resident): the device stops at
    // the highest untouched byte, having done nothing.
    let r = run(
        &d,
        &Descriptor::memmove(base + 100, base, ps as u32, cr.addr(), flags()),
    );
    assert_eq!((r.status, r.result, r.bytes_completed), (0x83, 1, 0));
    assert_eq!(r.fault_addr, base + 100 + ps - 1);
    // Read fault: untouched source page 3 into resident page 0.
    let r = run(
        &d,
        &Descriptor::memmove(base, base + 3 * ps + 8, 64, cr.addr(), flags()),
    );
    assert_eq!(
        (r.status, r.bytes_completed, r.fault_addr),
        (0x03, 0, base + 3 * ps + 8)
    );
    // Straddling, disjoint: the destination runs from resident page 0 into
    // untouched page 1; the first 300 bytes are done.
    let r = run(
        &d,
        &Descriptor::memmove(base + ps - 300, base, 1000, cr.addr(), flags()),
    );
    assert_eq!(
        (r.status, r.result, r.bytes_completed, r.fault_addr),
        (0x83, 0, 300, base + ps)
    );
    // SAFETY: page 0 is mapped and resident.
    let done = unsafe { std::slice::from_raw_parts(m.as_ptr().add(ps as usize - 300), 300) };
    assert_eq!(done, &data[..300]);
}

#[test]
fn injected_faults_hit_offset_zero_and_mid_page() {
    let d = dev(EmuConfig {
        engines: 1,
        fault_rate: 1.0,
        seed: 3,
        ..Default::default()
    });
    let src = pattern(20_000, 1);
    let mut dst = vec![0u8; 20_000];
    let cr = CrCell::default();
    let mut offsets = Vec::new();
    for _ in 0..200 {
        let r = run(
            &d,
            &Descriptor::memmove(
                dst.as_mut_ptr() as u64,
                src.as_ptr() as u64,
                20_000,
                cr.addr(),
                flags(),
            ),
        );
        if r.code() == status::PAGE_FAULT_NOBOF {
            offsets.push(r.bytes_completed);
            let n = r.bytes_completed as usize;
            assert_eq!(&dst[..n], &src[..n], "bytes before the fault are done");
        }
        dst.fill(0);
    }
    assert!(offsets.contains(&0));
    assert!(offsets.iter().any(|&o| o % 4096 != 0), "mid-page offsets");
    assert!(
        offsets.iter().any(|&o| o != 0 && o % 4096 == 0),
        "page-boundary offsets"
    );
    assert!(d.stats().faults_injected >= 150);
}

#[test]
fn stall_until_full_mode_still_completes() {
    let d = dev(EmuConfig {
        wq_size: 4,
        stall: Stall::UntilFull,
        ..Default::default()
    });
    let crs: Vec<CrCell> = (0..3).map(|_| CrCell::default()).collect();
    for c in &crs {
        // SAFETY: NOOPs touch only their records.
        unsafe { d.submit(&Descriptor::noop(c.addr())) }.unwrap();
    }
    // Not full: the engines wait for the queue to go idle, then drain it.
    while crs.iter().any(|c| c.status() == 0) {
        std::thread::yield_now();
    }
    assert_eq!(d.stats().max_occupancy, 3);
}

/// Spins until `done`, failing the test after 60 s instead of hanging.
fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: never happened"
        );
        std::thread::yield_now();
    }
}

#[test]
fn halt_after_n_descriptors_writes_no_more_records_and_reports_halted() {
    let d = dev(EmuConfig {
        halt_after: Some(3),
        ..Default::default()
    });
    let crs: Vec<CrCell> = (0..6).map(|_| CrCell::default()).collect();
    for c in &crs[..3] {
        assert_eq!(run(&d, &Descriptor::noop(c.addr())).status, status::SUCCESS);
    }
    assert_eq!(d.device_state(), DeviceState::Running);
    for c in &crs[3..5] {
        // SAFETY: NOOPs touch only their records, which outlive the device.
        let r = unsafe { d.submit(&Descriptor::noop(c.addr())) };
        assert_eq!(r, Ok(Submitted::Accepted));
    }
    until("halt", || d.halted());
    assert!(matches!(d.device_state(), DeviceState::Stopped(s) if s.contains("halted")));
    let src = pattern(4096, 3);
    let mut dst = vec![0u8; 4096];
    let m = Descriptor::memmove(
        dst.as_mut_ptr() as u64,
        src.as_ptr() as u64,
        4096,
        crs[5].addr(),
        flags(),
    );
    // SAFETY: live buffers and record, kept past the device's drop.
    assert_eq!(unsafe { d.submit(&m) }, Ok(Submitted::Accepted));
    until("idle", || d.outstanding() == 0);
    drop(d);
    assert!(
        crs[3..].iter().all(|c| c.status() == 0),
        "no record after the halt"
    );
    assert!(dst.iter().all(|&b| b == 0), "a halted device moves nothing");
}

#[test]
fn lose_rate_one_does_the_work_and_writes_no_record() {
    let d = dev(EmuConfig {
        lose_rate: 1.0,
        ..Default::default()
    });
    let cr = CrCell::default();
    let src = pattern(5000, 4);
    let mut dst = vec![0u8; 5000];
    let m = Descriptor::memmove(
        dst.as_mut_ptr() as u64,
        src.as_ptr() as u64,
        5000,
        cr.addr(),
        flags(),
    );
    // SAFETY: live buffers and record, kept past the device's drop.
    assert_eq!(unsafe { d.submit(&m) }, Ok(Submitted::Accepted));
    until("finished", || d.outstanding() == 0);
    drop(d);
    assert_eq!(cr.status(), 0, "the record never comes");
    assert!(dst == src, "the work was done");
}

#[test]
fn late_records_are_written_later_by_another_thread() {
    let d = dev(EmuConfig {
        late_rate: 1.0,
        late_us: 20_000,
        hostile_cr: true,
        ..Default::default()
    });
    let cr = CrCell::default();
    let src = pattern(5000, 5);
    let mut dst = vec![0u8; 5000];
    let m = Descriptor::memmove(
        dst.as_mut_ptr() as u64,
        src.as_ptr() as u64,
        5000,
        cr.addr(),
        flags(),
    );
    // SAFETY: live buffers and record, kept until the record is written.
    assert_eq!(unsafe { d.submit(&m) }, Ok(Submitted::Accepted));
    until("finished", || d.outstanding() == 0);
    assert_eq!(d.stats().late, 1);
    until("late record", || cr.status() != 0);
    let r = cr.snapshot();
    assert_eq!(
        r,
        CompletionRecord {
            status: status::SUCCESS,
            ..Default::default()
        }
    );
    assert!(dst == src);
    assert_eq!(d.device_state(), DeviceState::Running);
}

#[test]
fn fault_addresses_are_reported_as_configured() {
    use crate::mover::dsa::hw::fault_info;
    let ps = page_size();
    let src = pattern(3 * ps as usize, 5);
    let mut dst = vec![0u8; 3 * ps as usize];
    let cr = CrCell::default();
    // Offsets from the start of the operands at which to fault.
    let s = src.as_ptr() as u64 + 10;
    let t = dst.as_mut_ptr() as u64 + 20;
    for mode in [FaultAddr::Exact, FaultAddr::Page, FaultAddr::Masked] {
        let d = dev(EmuConfig {
            fault_addr: mode,
            ..Default::default()
        });
        for (bc, write) in [
            (0u32, false),
            (5, true),
            (ps as u32 + 7, false),
            (2 * ps as u32, true),
        ] {
            d.force(
                opcode::MEMMOVE,
                Forced::Fault {
                    bytes_completed: bc,
                    write,
                },
            );
            let r = run(
                &d,
                &Descriptor::memmove(t, s, 2 * ps as u32 + 100, cr.addr(), flags()),
            );
            let byte = if write { t } else { s } + u64::from(bc);
            let page = byte & !(ps - 1);
            let (addr, info) = match mode {
                FaultAddr::Exact => (byte, 0),
                FaultAddr::Page => (page, 0),
                FaultAddr::Masked => (
                    page,
                    fault_info::ADDR_MASKED | u8::from(write) << fault_info::OPERAND_SHIFT,
                ),
            };
            assert_eq!(r.code(), status::PAGE_FAULT_NOBOF, "{mode:?}");
            assert_eq!(r.write_fault(), write);
            assert_eq!(
                (r.bytes_completed, r.fault_addr, r.fault_info),
                (bc, addr, info),
                "{mode:?} {bc}"
            );
        }
    }
}

#[test]
fn fault_cost_delays_only_fault_records() {
    // No timing asserted: the knob must not change what is reported.
    let d = dev(EmuConfig {
        fault_us: 200,
        ..Default::default()
    });
    let m = Untouched::new(2 * page_size() as usize);
    let src = pattern(64, 1);
    let cr = CrCell::default();
    let r = run(
        &d,
        &Descriptor::memmove(
            m.as_ptr() as u64,
            src.as_ptr() as u64,
            64,
            cr.addr(),
            flags(),
        ),
    );
    assert_eq!(
        (r.status, r.bytes_completed, r.fault_addr),
        (0x83, 0, m.as_ptr() as u64)
    );
    let mut dst = vec![0u8; 64];
    let r = run(
        &d,
        &Descriptor::memmove(
            dst.as_mut_ptr() as u64,
            src.as_ptr() as u64,
            64,
            cr.addr(),
            flags(),
        ),
    );
    assert_eq!(r.status, status::SUCCESS);
    assert!(dst == src);
}

/// Submit a 64-byte copy into `dst` and return its record.
fn copy_into(d: &EmuDevice, dst: u64, src: &[u8]) -> CompletionRecord {
    let cr = CrCell::default();
    run(
        d,
        &Descriptor::memmove(
            dst,
            src.as_ptr() as u64,
            src.len() as u32,
            cr.addr(),
            flags(),
        ),
    )
}

#[test]
fn resident_zero_page_faults_on_a_device_write() {
    let ps = page_size();
    let d = dev(EmuConfig::default());
    let m = Untouched::new(3 * ps as usize);
    let base = m.as_ptr() as u64;
    // SAFETY: the mapping is live; reading maps the shared zero page.
    let z = unsafe { core::ptr::read_volatile(m.as_ptr().add(ps as usize + 9)) };
    assert_eq!(z, 0);
    assert_eq!(
        crate::mover::dsa::engine::fault::page_state(base + ps),
        Some(true)
    );
    let src = pattern(64, 2);
    // Resident, so not a residency fault: a write fault, nothing done.
    let r = copy_into(&d, base + ps + 100, &src);
    assert_eq!(
        (r.status, r.bytes_completed, r.fault_addr),
        (0x83, 0, base + ps + 100)
    );
    let s = d.stats();
    assert_eq!((s.faults_write_protected, s.faults_nonresident), (1, 0));
    // Read faults do not care: the zero page reads fine.
    let mut out = vec![1u8; 64];
    let cr = CrCell::default();
    let r = run(
        &d,
        &Descriptor::memmove(out.as_mut_ptr() as u64, base + ps, 64, cr.addr(), flags()),
    );
    assert_eq!(r.status, status::SUCCESS);
    assert!(out.iter().all(|&b| b == 0));
    // Once the CPU has written the page, the device writes it too.
    crate::mover::dsa::engine::fault::resolve(base + ps, true).unwrap();
    let r = copy_into(&d, base + ps + 100, &src);
    assert_eq!(r.status, status::SUCCESS);
    // SAFETY: the mapping is live and was just written.
    let got = unsafe { std::slice::from_raw_parts(m.as_ptr().add(ps as usize + 100), 64) };
    assert_eq!(got, src.as_slice());
    // A fill and a descending move stop there too; a flush does not.
    // SAFETY: reading page 2 maps the zero page.
    let _ = unsafe { core::ptr::read_volatile(m.as_ptr().add(2 * ps as usize)) };
    let cr = CrCell::default();
    let r = run(
        &d,
        &Descriptor::memfill(base + 2 * ps - 8, 7, 100, cr.addr(), flags()),
    );
    assert_eq!(
        (r.status, r.bytes_completed, r.fault_addr),
        (0x83, 8, base + 2 * ps)
    );
    let r = run(
        &d,
        &Descriptor::cflush(base + 2 * ps, 100, cr.addr(), flags()),
    );
    assert_eq!(r.status, status::SUCCESS);
    let r = run(
        &d,
        &Descriptor::memmove(
            base + 2 * ps + 50,
            base + 2 * ps - 200,
            400,
            cr.addr(),
            flags(),
        ),
    );
    assert_eq!((r.status, r.result, r.bytes_completed), (0x83, 1, 0));
    assert_eq!(r.fault_addr, base + 2 * ps + 449);
}

#[test]
fn copy_on_write_pages_after_fork_fault_on_a_device_write() {
    let ps = page_size() as usize;
    let d = dev(EmuConfig::default());
    // A mapping of our own, written: private, exclusive. (Whether fork
    // shares a page or copies it at once is the kernel's choice; pagemap
    // says which, and for plain anonymous mappings it shares them.)
    let m = Untouched::new(2 * ps);
    let data = pattern(2 * ps, 3);
    // SAFETY: the mapping has two pages.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), m.as_ptr(), 2 * ps) };
    let buf = m.as_ptr();
    let src = pattern(64, 4);
    assert_eq!(copy_into(&d, buf as u64, &src).status, status::SUCCESS);
    let mut fds = [0i32; 2];
    // SAFETY: a pipe into a two-int array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only blocks in read(2) and leaves with _exit(2),
    // both async-signal-safe, so forking a threaded process is fine.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let mut b = 0u8;
        // SAFETY: reads one byte into `b`, then leaves without unwinding.
        unsafe {
            libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    assert!(child > 0);
    // The parent's pages are now shared with the child, copy-on-write.
    let r = copy_into(&d, buf as u64 + 8, &src);
    // SAFETY: wakes and reaps the child.
    unsafe {
        libc::write(fds[1], b"x".as_ptr().cast(), 1);
        libc::waitpid(child, core::ptr::null_mut(), 0);
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    assert_eq!((r.status, r.bytes_completed), (0x83, 0));
    assert_eq!(r.fault_addr, buf as u64 + 8);
    assert!(d.stats().faults_write_protected >= 1);
}

/// LOSE_RATE and LATE_RATE draw for each element record of a batch too:
/// the batch record can say every element ran while some element records
/// never come, or come late.
#[test]
fn lost_and_late_records_include_batch_elements() {
    for (lose, late) in [(0.3, 0.0), (0.0, 0.3)] {
        let mut seen = false;
        for seed in 1..50 {
            let d = dev(EmuConfig {
                lose_rate: lose,
                late_rate: late,
                late_us: 1000,
                batch_order: BatchOrder::ElementsFirst,
                seed,
                ..Default::default()
            });
            let els: Vec<CrCell> = (0..16).map(|_| CrCell::default()).collect();
            let list: Vec<Descriptor> = els.iter().map(|e| Descriptor::noop(e.addr())).collect();
            let cr = CrCell::default();
            let b = Descriptor::batch(list.as_ptr() as u64, 16, cr.addr());
            // SAFETY: the list and records live until the device is dropped.
            assert_eq!(unsafe { d.submit(&b) }, Ok(Submitted::Accepted));
            until("finished", || d.outstanding() == 0);
            if cr.status() != status::SUCCESS {
                continue; // the batch record itself was lost or is late
            }
            let missing = els.iter().filter(|e| e.status() == 0).count();
            if missing == 0 {
                continue;
            }
            seen = true;
            if late > 0.0 {
                assert!(d.stats().late as usize >= missing);
                wait_records(&els);
                assert!(els.iter().all(|e| e.status() == status::SUCCESS));
            } else {
                assert!(d.stats().lost as usize >= missing);
                drop(d);
                assert!(els.iter().filter(|e| e.status() == 0).count() == missing);
            }
            break;
        }
        assert!(
            seen,
            "lose {lose}, late {late}: no element record went missing"
        );
    }
}
