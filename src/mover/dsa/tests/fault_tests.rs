//! Partial completions, page faults and error statuses: resume at
//! arbitrary offsets in both memmove directions, untouched mmapped
//! buffers, injected faults under hostile record ordering, every error
//! status, batch-level failures.

use crate::mover::dsa::emu::{EmuConfig, Forced, Stall};
use crate::mover::dsa::engine::fault::{page_size, Untouched};
use crate::mover::dsa::engine::op::{Op, OpKind};
use crate::mover::dsa::engine::{BatchPolicy, EngineOptions, FailReason, Poll};
use crate::mover::dsa::hw::{opcode, status, CompletionRecord, Hints};
use crate::mover::dsa::testutil::{finish, finish_watching, pattern, rig, Drive};

fn h() -> Hints {
    Hints::default()
}

/// Run `remaining` on the CPU, as a mover's fallback would.
fn cpu_finish(ops: impl Iterator<Item = Op>) {
    for o in ops {
        // SAFETY: the remainder lies inside the test's own buffers.
        unsafe {
            match o.kind {
                OpKind::Copy | OpKind::Move => {
                    core::ptr::copy(o.src as *const u8, o.dst as *mut u8, o.len)
                }
                OpKind::Fill => {
                    let p = o.pattern.to_le_bytes();
                    for i in 0..o.len {
                        *(o.dst as *mut u8).add(i) = p[i % 8];
                    }
                }
                OpKind::Flush => {}
            }
        }
    }
}

/// Source/destination placements: disjoint, overlapping with the
/// destination below (ascending), overlapping above (descending).
const LAYOUTS: [(usize, usize); 3] = [(0, 20_000), (300, 0), (0, 300)];

#[test]
fn page_fault_resume_at_arbitrary_offsets_both_directions() {
    let (dev, eng) = rig(EmuConfig::default(), EngineOptions::default());
    let len = 9000;
    for (s, d) in LAYOUTS {
        for bc in [0u32, 1, 7, 63, 64, 100, 4095, 4096, 4097, 6000, 8999] {
            for write in [false, true] {
                let mut buf = pattern(30_000, u64::from(bc));
                let mut want = buf.clone();
                want.copy_within(s..s + len, d);
                let base = buf.as_mut_ptr() as usize;
                dev.force(
                    opcode::MEMMOVE,
                    Forced::Fault {
                        bytes_completed: bc,
                        write,
                    },
                );
                let before = eng.stats().faults_resolved;
                // SAFETY: `buf` outlives the op.
                let hd = unsafe { eng.start(&Op::copy(base + d, base + s, len, h()), true) };
                assert_eq!(finish(&eng, hd.unwrap()), Poll::Done);
                assert!(buf == want, "layout {s}->{d} bc {bc} write {write}");
                assert_eq!(eng.stats().faults_resolved, before + 1);
            }
        }
    }
    assert_eq!(dev.pending_forced(), 0);
}

#[test]
fn fill_and_flush_resume_after_faults_across_pieces() {
    let cfg = EmuConfig {
        max_transfer_size: 4096,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, EngineOptions::default());
    for bc in [0u32, 1, 9, 2048, 4095] {
        let mut dst = vec![0u8; 10_000];
        let pat = u64::from_le_bytes(*b"01234567");
        // A fault in the first piece, then one in the second.
        dev.force(
            opcode::MEMFILL,
            Forced::Fault {
                bytes_completed: bc,
                write: true,
            },
        );
        dev.force(opcode::MEMFILL, Forced::Pass);
        dev.force(
            opcode::MEMFILL,
            Forced::Fault {
                bytes_completed: bc / 2 + 1,
                write: true,
            },
        );
        let op = Op::fill_pattern(dst.as_mut_ptr() as usize + 1, pat, 9999, h());
        // SAFETY: `dst` outlives the op.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        assert_eq!(finish(&eng, hd), Poll::Done);
        assert_eq!(dst[0], 0);
        for (i, &b) in dst[1..].iter().enumerate() {
            assert_eq!(b, b"01234567"[i % 8], "bc {bc} byte {i}");
        }
        dev.force(
            opcode::CFLUSH,
            Forced::Fault {
                bytes_completed: bc,
                write: false,
            },
        );
        // SAFETY: a flush only reads `dst`.
        let hd = unsafe { eng.start(&Op::flush(dst.as_ptr() as usize, 10_000, h()), true) };
        assert_eq!(finish(&eng, hd.unwrap()), Poll::Done);
    }
}

#[test]
fn multi_piece_overlapping_move_with_many_successive_faults() {
    let cfg = EmuConfig {
        max_transfer_size: 1024,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, EngineOptions::default());
    for (s, d) in [(0usize, 5usize), (5, 0), (0, 1500), (1500, 0)] {
        let len = 5000;
        let mut buf = pattern(8000, 77);
        let mut want = buf.clone();
        want.copy_within(s..s + len, d);
        for k in 0..6u32 {
            dev.force(
                opcode::MEMMOVE,
                Forced::Fault {
                    bytes_completed: k * 150 + 3,
                    write: k % 2 == 0,
                },
            );
        }
        let base = buf.as_mut_ptr() as usize;
        // SAFETY: `buf` outlives the op.
        let hd = unsafe { eng.start(&Op::copy(base + d, base + s, len, h()), true) }.unwrap();
        assert_eq!(finish(&eng, hd), Poll::Done);
        assert!(buf == want, "{s}->{d}");
        assert_eq!(dev.pending_forced(), 0);
    }
}

#[test]
fn untouched_mmapped_buffers_fault_and_resume() {
    let ps = page_size() as usize;
    let (dev, eng) = rig(EmuConfig::default(), EngineOptions::default());
    // Destination never touched.
    let dst = Untouched::new(16 * ps);
    let src = pattern(16 * ps - 100, 1);
    let op = Op::copy(
        dst.as_ptr() as usize + 50,
        src.as_ptr() as usize,
        src.len(),
        h(),
    );
    // SAFETY: both mappings outlive the op.
    let hd = unsafe { eng.start(&op, true) }.unwrap();
    assert_eq!(finish(&eng, hd), Poll::Done);
    // SAFETY: the mapping is live and this range was just written.
    let got = unsafe { std::slice::from_raw_parts(dst.as_ptr().add(50), src.len()) };
    assert!(got == src.as_slice());
    // One round trip: the first fault populates the rest of the piece.
    assert_eq!(eng.stats().faults_resolved, 1, "{:?}", eng.stats());
    assert_eq!(dev.stats().faults_nonresident, 1);
    // Source never touched: reads as zeros.
    let zsrc = Untouched::new(8 * ps);
    let mut out = vec![0xffu8; 8 * ps];
    let op = Op::copy(
        out.as_mut_ptr() as usize,
        zsrc.as_ptr() as usize,
        8 * ps,
        h(),
    );
    // SAFETY: as above.
    let hd = unsafe { eng.start(&op, true) }.unwrap();
    assert_eq!(finish(&eng, hd), Poll::Done);
    assert!(out.iter().all(|&b| b == 0));
    // Fill into untouched memory.
    let fdst = Untouched::new(5 * ps);
    // SAFETY: as above.
    let hd = unsafe {
        eng.start(
            &Op::fill(fdst.as_ptr() as usize + 1, 0x3c, 5 * ps - 2, h()),
            true,
        )
    };
    assert_eq!(finish(&eng, hd.unwrap()), Poll::Done);
    // SAFETY: the mapping is live.
    let f = unsafe { std::slice::from_raw_parts(fdst.as_ptr(), 5 * ps) };
    assert!(f[0] == 0 && f[5 * ps - 1] == 0 && f[1..5 * ps - 1].iter().all(|&b| b == 0x3c));
}

#[test]
fn descending_move_into_untouched_pages_reports_direction() {
    // Source pages touched, destination pages above them untouched: the
    // device copies from the end and faults with result = 1.
    let ps = page_size() as usize;
    let (dev, eng) = rig(EmuConfig::default(), EngineOptions::default());
    let m = Untouched::new(8 * ps);
    let p = m.as_ptr();
    let data = pattern(3 * ps, 5);
    // SAFETY: the mapping has 8 pages; this writes (and touches) 3.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p, 3 * ps) };
    let op = Op::copy(p as usize + 2 * ps + 123, p as usize, 3 * ps, h());
    // SAFETY: the mapping outlives the op.
    let hd = unsafe { eng.start(&op, true) }.unwrap();
    assert_eq!(finish(&eng, hd), Poll::Done);
    // SAFETY: the range was written by the op.
    let got = unsafe { std::slice::from_raw_parts(p.add(2 * ps + 123), 3 * ps) };
    assert!(got == data.as_slice());
    assert_eq!(dev.stats().faults_nonresident, 1);
    assert_eq!(eng.stats().faults_resolved, 1);
}

#[test]
fn injected_faults_with_hostile_record_ordering() {
    let cfg = EmuConfig {
        engines: 2,
        fault_rate: 0.5,
        hostile_cr: true,
        max_transfer_size: 8192,
        max_delay_us: 3,
        seed: 7,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, EngineOptions::default());
    let n = 200;
    let mut bufs: Vec<Vec<u8>> = (0..n).map(|i| pattern(30_000, i as u64)).collect();
    let mut wants = bufs.clone();
    let mut hs = Vec::new();
    for (i, b) in bufs.iter_mut().enumerate() {
        let len = 1 + (i * 7919) % 20_000;
        let (s, d) = [(0, 9000), (0, 17), (17, 0), (5000, 0)][i % 4];
        let base = b.as_mut_ptr() as usize;
        let op = if i % 5 == 4 {
            wants[i][d..d + len].fill(0xe1);
            Op::fill(base + d, 0xe1, len, h())
        } else {
            wants[i].copy_within(s..s + len, d);
            Op::copy(base + d, base + s, len, h())
        };
        // SAFETY: every buffer outlives its op (all finished below).
        hs.push(unsafe { eng.start(&op, true) }.unwrap());
    }
    for hd in hs {
        assert_eq!(finish(&eng, hd), Poll::Done);
    }
    for i in 0..n {
        assert!(bufs[i] == wants[i], "op {i}");
    }
    assert!(eng.stats().faults_resolved > 50, "{:?}", eng.stats());
    assert!(dev.swerror().is_empty());
}

const ERRORS: [u8; 16] = [
    status::PAGE_FAULT_IR,
    status::DIF_ERR,
    status::BAD_OPCODE,
    status::INVALID_FLAGS,
    status::NOZERO_RESERVE,
    status::XFER_ERANGE,
    status::OVERLAP_BUFFERS,
    status::DESCLIST_ALIGN,
    status::ADDR_ALIGN,
    status::PRIV_BAD,
    status::TRAFFIC_CLASS_CONF,
    status::PFAULT_RDBA,
    status::HW_ERR1,
    status::HW_ERR_DRB,
    status::TRANSLATION_FAIL,
    0x30,
];

#[test]
fn every_error_status_fails_with_the_exact_remainder() {
    let cfg = EmuConfig {
        max_transfer_size: 4096,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, EngineOptions::default());
    for code in ERRORS {
        let src = pattern(10_000, u64::from(code));
        let mut dst = vec![0u8; 10_000];
        dev.force(
            opcode::MEMMOVE,
            Forced::Fault {
                bytes_completed: 1000,
                write: true,
            },
        );
        dev.force(opcode::MEMMOVE, Forced::Status(code));
        let op = Op::copy(
            dst.as_mut_ptr() as usize,
            src.as_ptr() as usize,
            10_000,
            h(),
        );
        // SAFETY: buffers outlive the op.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        let Poll::Failed(f) = finish(&eng, hd) else {
            panic!("{code:#x} did not fail")
        };
        assert_eq!(f.reason, FailReason::Status(code));
        assert_eq!(f.remaining.bytes(), 9000, "{code:#x}");
        let parts: Vec<Op> = f.remaining.ops().copied().collect();
        assert_eq!(parts[0], op.sub(1000, 4096));
        assert_eq!(parts[1], op.sub(4096, 10_000));
        assert_eq!(f.partial, !status::is_validation_error(code), "{code:#x}");
        assert!(f.cpu_can_finish());
        assert_eq!(
            &dst[..1000],
            &src[..1000],
            "work before the failure is kept"
        );
        assert!(dst[1000..].iter().all(|&b| b == 0));
        cpu_finish(f.remaining.ops().copied());
        assert!(dst == src);
    }
}

#[test]
fn overlapping_move_after_an_execution_error_is_not_redone_on_the_cpu() {
    let (dev, eng) = rig(EmuConfig::default(), EngineOptions::default());
    let mut buf = pattern(1000, 1);
    let base = buf.as_mut_ptr() as usize;
    for (code, ok) in [(status::HW_ERR1, false), (status::BAD_OPCODE, true)] {
        dev.force(opcode::MEMMOVE, Forced::Status(code));
        // SAFETY: `buf` outlives the op.
        let hd = unsafe { eng.start(&Op::copy(base + 10, base, 900, h()), true) }.unwrap();
        let Poll::Failed(f) = finish(&eng, hd) else {
            panic!()
        };
        assert_eq!(f.cpu_can_finish(), ok, "{code:#x}");
    }
}

#[test]
fn unmapped_memory_fails_without_touching_it() {
    let (_dev, eng) = rig(EmuConfig::default(), EngineOptions::default());
    let mut dst = vec![0u8; 4096];
    // Page 0x1000 is below mmap_min_addr: never mapped.
    let op = Op::copy(dst.as_mut_ptr() as usize, 0x1000, 4096, h());
    // SAFETY: the emulator checks residency before reading; the engine
    // fails instead of touching the address.
    let hd = unsafe { eng.start(&op, true) }.unwrap();
    let Poll::Failed(f) = finish(&eng, hd) else {
        panic!()
    };
    assert!(
        matches!(f.reason, FailReason::Unresolvable { addr: 0x1000, .. }),
        "{f:?}"
    );
    assert!(!f.cpu_can_finish());
    assert_eq!(f.remaining.bytes(), 4096);
    assert!(dst.iter().all(|&b| b == 0));
}

#[test]
fn a_fault_that_never_resolves_gives_up() {
    let opts = EngineOptions {
        fault_retries: 3,
        ..Default::default()
    };
    let (dev, eng) = rig(EmuConfig::default(), opts);
    let mut dst = vec![0u8; 100];
    for _ in 0..5 {
        dev.force(
            opcode::MEMFILL,
            Forced::Fault {
                bytes_completed: 0,
                write: true,
            },
        );
    }
    // SAFETY: `dst` outlives the op.
    let hd = unsafe { eng.start(&Op::fill(dst.as_mut_ptr() as usize, 1, 100, h()), true) };
    let Poll::Failed(f) = finish(&eng, hd.unwrap()) else {
        panic!()
    };
    assert_eq!(
        f.reason,
        FailReason::FaultLoop {
            addr: dst.as_ptr() as u64
        }
    );
    assert_eq!(f.remaining.bytes(), 100);
    while dev.pending_forced() > 0 {
        // Consume the leftover forced fault so the device is clean.
        // SAFETY: `dst` outlives the op.
        let hd = unsafe { eng.start(&Op::fill(dst.as_mut_ptr() as usize, 1, 100, h()), true) };
        let _ = finish(&eng, hd.unwrap());
    }
}

#[test]
fn inconsistent_records_fail_instead_of_corrupting() {
    let (dev, eng) = rig(EmuConfig::default(), EngineOptions::default());
    let mut dst = vec![0u8; 100];
    let src = pattern(100, 3);
    let bad = [
        // More bytes completed than the piece has.
        CompletionRecord {
            status: status::PAGE_FAULT_NOBOF | status::WRITE_FAULT,
            bytes_completed: 101,
            fault_addr: dst.as_ptr() as u64,
            ..Default::default()
        },
        // Descending for a piece the device runs ascending is fine, but
        // not more bytes than it has from that end either.
        CompletionRecord {
            status: status::PAGE_FAULT_NOBOF,
            result: 1,
            bytes_completed: 1000,
            fault_addr: src.as_ptr() as u64,
            ..Default::default()
        },
    ];
    // (A fault address outside both operands is not inconsistent: the
    // device only promises its page, if that; `fault_report_tests.rs`.)
    for r in bad {
        dev.force(opcode::MEMMOVE, Forced::Record(r));
        let op = Op::copy(dst.as_mut_ptr() as usize, src.as_ptr() as usize, 100, h());
        // SAFETY: buffers outlive the op.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        let Poll::Failed(f) = finish(&eng, hd) else {
            panic!()
        };
        assert_eq!(f.reason, FailReason::Inconsistent);
        assert!(f.partial);
    }
}

/// A record reading CRA_XLAT (0x1a) is never seen on a real host (the
/// kernel writes the real record, DSA.md 12.3); should one come, the piece
/// fails with its exact remainder: it is not run again.
#[test]
fn a_completion_record_fault_status_fails_the_piece_without_rerunning_it() {
    let (dev, eng) = rig(EmuConfig::default(), EngineOptions::default());
    let src = pattern(5000, 4);
    let mut dst = vec![0u8; 5000];
    dev.force(opcode::MEMMOVE, Forced::Status(status::CRA_XLAT));
    let op = Op::copy(dst.as_mut_ptr() as usize, src.as_ptr() as usize, 5000, h());
    // SAFETY: buffers outlive the op.
    let hd = unsafe { eng.start(&op, true) }.unwrap();
    let Poll::Failed(f) = finish(&eng, hd) else {
        panic!()
    };
    assert_eq!(f.reason, FailReason::Status(status::CRA_XLAT));
    assert_eq!(f.remaining.bytes(), 5000);
    assert!(f.cpu_can_finish());
    assert_eq!(eng.stats().descriptors, 1);
    assert_eq!(dev.stats().accepted, 1);
}

/// Fill the WQ so later ops go into batches, then make the batch fail in
/// `how`; every op must still complete with the right data.
fn batch_failure(how: Forced, cfg: EmuConfig, expect_batching_after: bool) {
    let (dev, eng) = rig(
        cfg,
        EngineOptions {
            batch: BatchPolicy::WhenBusy,
            ..Default::default()
        },
    );
    assert!(eng.batching());
    let n = 40;
    let src = pattern(n * 64, 8);
    let mut dst = vec![0u8; n * 64];
    let mut hs = Vec::new();
    for i in 0..n {
        let op = Op::copy(
            dst.as_mut_ptr() as usize + i * 64,
            src.as_ptr() as usize + i * 64,
            64,
            h(),
        );
        // SAFETY: buffers outlive every op.
        hs.push(unsafe { eng.start(&op, true) }.unwrap());
    }
    assert!(eng.stats().batched_ops > 0);
    dev.force(opcode::BATCH, how);
    dev.set_stalled(false);
    for hd in hs {
        assert_eq!(finish_watching(&eng, hd), Poll::Done);
    }
    assert!(dst == src, "{how:?}");
    assert_eq!(eng.batching(), expect_batching_after, "{how:?}");
    assert!(dev.swerror().is_empty());
    assert_eq!(eng.credits_in_use(), 0);
}

fn stalled() -> EmuConfig {
    EmuConfig {
        wq_size: 2,
        stall: Stall::Manual,
        max_batch_size: 8,
        ..Default::default()
    }
}

#[test]
fn batch_list_fault_resubmits_the_unexecuted_elements() {
    for k in [0, 1, 5] {
        batch_failure(Forced::ListFault(k), stalled(), true);
    }
}

#[test]
fn batch_level_errors_turn_batching_off_and_lose_nothing() {
    // Validation errors of the batch descriptor: no element ran, all are
    // submitted again. (A status that does not say what ran leaves the
    // elements waiting for their own records: `batch_tests.rs`.)
    for code in [
        status::BAD_OPCODE,
        status::DESC_CNT_ERANGE,
        status::DESCLIST_ALIGN,
    ] {
        batch_failure(Forced::Status(code), stalled(), false);
    }
    // An element failing inside a batch (BATCH_FAIL) is an ordinary
    // per-op completion; batching stays on. One engine: the two plain
    // descriptors run first, the third fill is the first batch element.
    let cfg = EmuConfig {
        engines: 1,
        ..stalled()
    };
    let (dev, eng) = rig(cfg, EngineOptions::default());
    let mut dst = vec![0u8; 40 * 64];
    let mut hs = Vec::new();
    for i in 0..40 {
        // SAFETY: `dst` outlives every op.
        hs.push(
            unsafe {
                eng.start(
                    &Op::fill(dst.as_mut_ptr() as usize + 64 * i, 9, 64, h()),
                    true,
                )
            }
            .unwrap(),
        );
    }
    dev.force(opcode::MEMFILL, Forced::Pass);
    dev.force(opcode::MEMFILL, Forced::Pass);
    dev.force(
        opcode::MEMFILL,
        Forced::Fault {
            bytes_completed: 5,
            write: true,
        },
    );
    dev.set_stalled(false);
    for hd in hs {
        assert_eq!(finish(&eng, hd), Poll::Done);
    }
    assert!(dst.iter().all(|&b| b == 9));
    assert!(eng.batching());
}

#[test]
fn write_path_refusing_batch_on_a_v1_device_falls_back() {
    let cfg = EmuConfig {
        write_path: true,
        version: 0x100,
        ..stalled()
    };
    let (dev, eng) = rig(cfg, EngineOptions::default());
    let src = pattern(30 * 64, 2);
    let mut dst = vec![0u8; 30 * 64];
    let mut hs = Vec::new();
    for i in 0..30 {
        let op = Op::copy(
            dst.as_mut_ptr() as usize + i * 64,
            src.as_ptr() as usize + i * 64,
            64,
            h(),
        );
        // SAFETY: buffers outlive every op.
        hs.push(unsafe { eng.start(&op, true) }.unwrap());
    }
    dev.set_stalled(false);
    for hd in hs {
        assert_eq!(finish(&eng, hd), Poll::Done);
    }
    assert!(dst == src);
    assert!(!eng.batching(), "EINVAL on BATCH turns batches off");
    // A v2 device takes batches through write(2).
    batch_failure(
        Forced::Pass,
        EmuConfig {
            write_path: true,
            version: 0x200,
            ..stalled()
        },
        true,
    );
}

#[test]
fn refused_page_requests_at_unmapped_addresses_are_not_left_to_the_cpu() {
    let (dev, eng) = rig(EmuConfig::default(), EngineOptions::default());
    let src = pattern(100, 1);
    let mut dst = vec![0u8; 100];
    for (addr, unmapped) in [(0x1000u64, true), (src.as_ptr() as u64, false)] {
        let r = CompletionRecord {
            status: status::PAGE_FAULT_IR,
            fault_addr: addr,
            ..Default::default()
        };
        dev.force(opcode::MEMMOVE, Forced::Record(r));
        let op = Op::copy(dst.as_mut_ptr() as usize, src.as_ptr() as usize, 100, h());
        // SAFETY: buffers outlive the op.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        let Poll::Failed(f) = finish(&eng, hd) else {
            panic!()
        };
        assert_eq!(
            matches!(f.reason, FailReason::Unresolvable { .. }),
            unmapped,
            "{f:?}"
        );
        assert_eq!(f.cpu_can_finish(), !unmapped);
    }
}
