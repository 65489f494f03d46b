//! Page faults as real hosts report them (DSA.md 12.3): fault addresses
//! that are only page-exact or match no operand byte, write faults on
//! resident pages (the zero page, copy-on-write), one device round trip
//! per piece rather than per page, and memory the CPU could not touch
//! either.

use std::sync::Arc;

use super::mover_tests::{blank_vdm, copy, run};
use crate::abi::{vdm_operation_result, vdm_operation_type};
use crate::mover::dsa::emu::{EmuConfig, EmuDevice, FaultAddr, Forced};
use crate::mover::dsa::engine::fault::{page_size, refuse_populate, Untouched};
use crate::mover::dsa::engine::op::Op;
use crate::mover::dsa::engine::{Engine, EngineOptions, FailReason, Poll};
use crate::mover::dsa::hw::{opcode, Hints};
use crate::mover::dsa::mover::{DsaMover, Path};
use crate::mover::dsa::testutil::{finish, pattern, rig, Drive};

fn h() -> Hints {
    Hints::default()
}

/// Source/destination placements: disjoint, overlapping with the
/// destination below (ascending), overlapping above (descending).
const LAYOUTS: [(usize, usize); 3] = [(0, 20_000), (300, 0), (0, 300)];

#[test]
fn page_granular_fault_addresses_resume_every_layout() {
    // A fault byte in the first page of its operand is reported below the
    // operand when only its page is: for a descending move that is the
    // last fault, after most of the data has moved.
    let len = 9000;
    for mode in [FaultAddr::Exact, FaultAddr::Page, FaultAddr::Masked] {
        let cfg = EmuConfig {
            fault_addr: mode,
            ..Default::default()
        };
        let (dev, eng) = rig(cfg, EngineOptions::default());
        for (s, d) in LAYOUTS {
            for bc in [0u32, 1, 63, 100, 4095, 4096, 6000, 8900, 8999] {
                for write in [false, true] {
                    let mut buf = pattern(30_000, u64::from(bc) + 7);
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
                    let what = format!("{mode:?} layout {s}->{d} bc {bc} write {write}");
                    assert_eq!(finish(&eng, hd.unwrap()), Poll::Done, "{what}");
                    assert!(buf == want, "{what}");
                    assert_eq!(eng.stats().faults_resolved, before + 1, "{what}");
                }
            }
        }
        // Fills and flushes too: the destination's first page.
        let mut dst = vec![0u8; 10_000];
        dev.force(
            opcode::MEMFILL,
            Forced::Fault {
                bytes_completed: 5,
                write: true,
            },
        );
        let at = dst.as_mut_ptr() as usize + 11;
        // SAFETY: `dst` outlives the op.
        let hd = unsafe { eng.start(&Op::fill(at, 0x77, 9000, h()), true) };
        assert_eq!(finish(&eng, hd.unwrap()), Poll::Done, "{mode:?}");
        assert!(dst[11..9011].iter().all(|&b| b == 0x77) && dst[9011] == 0);
        dev.force(
            opcode::CFLUSH,
            Forced::Fault {
                bytes_completed: 3,
                write: false,
            },
        );
        // SAFETY: a flush only reads `dst`.
        let hd = unsafe { eng.start(&Op::flush(at, 9000, h()), true) };
        assert_eq!(finish(&eng, hd.unwrap()), Poll::Done, "{mode:?}");
        assert_eq!(dev.pending_forced(), 0);
    }
}

/// A `vdm_memmove` through the mover's `struct vdm` callbacks, polled to
/// completion; returns the output's result.
fn run_move(m: &DsaMover, dst: *mut u8, src: *const u8, n: usize) -> u32 {
    let o = copy(vdm_operation_type::VDM_OPERATION_MEMMOVE, dst, src, n, 0);
    run(m, &o).0
}

/// An engine whose operations give up after `retries` faults in a row
/// without progress, on a default emulated device.
fn rig_retries(retries: u32) -> (Arc<EmuDevice>, Arc<Engine>) {
    let opts = EngineOptions {
        fault_retries: retries,
        ..Default::default()
    };
    let (dev, eng) = rig(EmuConfig::default(), opts);
    (dev, Arc::new(eng))
}

#[test]
fn a_fault_address_matching_no_operand_is_resumed_from_bytes_completed() {
    let (dev, eng) = rig_retries(64);
    for (s, d) in LAYOUTS {
        for bogus in [0x1234u64, u64::MAX - 4095, 0] {
            let len = 9000;
            let mut buf = pattern(30_000, bogus ^ s as u64);
            let mut want = buf.clone();
            want.copy_within(s..s + len, d);
            let base = buf.as_mut_ptr() as usize;
            dev.force(
                opcode::MEMMOVE,
                Forced::FaultAt {
                    bytes_completed: 3001,
                    write: true,
                    addr: bogus,
                },
            );
            // SAFETY: `buf` outlives the op.
            let hd = unsafe { eng.start(&Op::copy(base + d, base + s, len, h()), true) };
            assert_eq!(finish(&eng, hd.unwrap()), Poll::Done, "{s}->{d} {bogus:#x}");
            assert!(buf == want, "{s}->{d} {bogus:#x}");
        }
    }
}

#[test]
fn auto_finishes_an_overlapping_move_the_device_gave_up_on_exactly() {
    // The device moves part of an overlapping buffer, then keeps
    // reporting faults at an address that matches neither operand and
    // makes no progress: the engine gives up with the exact remainder and
    // AUTO finishes it on the CPU, in the right direction.
    let retries = 3;
    for (s, d) in [(0usize, 700usize), (700, 0)] {
        let (dev, eng) = rig_retries(retries);
        let m = DsaMover::new(blank_vdm(), Path::Auto, Ok(eng), 0).unwrap();
        let len = 50_000;
        let mut buf = pattern(60_000, s as u64);
        let mut want = buf.clone();
        want.copy_within(s..s + len, d);
        let base = buf.as_mut_ptr();
        dev.force(
            opcode::MEMMOVE,
            Forced::FaultAt {
                bytes_completed: 20_001,
                write: false,
                addr: 0x1234,
            },
        );
        for _ in 0..=retries {
            dev.force(
                opcode::MEMMOVE,
                Forced::FaultAt {
                    bytes_completed: 0,
                    write: false,
                    addr: 0x1234,
                },
            );
        }
        let r = run_move(&m, base.wrapping_add(d), base.wrapping_add(s), len);
        assert_eq!(r, vdm_operation_result::VDM_SUCCESS as u32, "{s}->{d}");
        assert!(buf == want, "{s}->{d}: finished exactly");
        assert_eq!(dev.pending_forced(), 0);
        assert_eq!(m.outstanding(), 0);
    }
}

#[test]
fn the_first_fault_of_a_piece_populates_the_rest_of_it() {
    let ps = page_size() as usize;
    for refused in [false, true] {
        // One piece: one device round trip for 64 untouched pages (source
        // and destination both), not 64 or 128.
        let (dev, eng) = rig(EmuConfig::default(), EngineOptions::default());
        let _g = refuse_populate(refused);
        let src = Untouched::new(64 * ps);
        let dst = Untouched::new(64 * ps);
        let op = Op::copy(
            dst.as_ptr() as usize + 10,
            src.as_ptr() as usize + 20,
            64 * ps - 30,
            h(),
        );
        // SAFETY: both mappings outlive the op.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        assert_eq!(finish(&eng, hd), Poll::Done);
        // SAFETY: the mapping is live.
        let got = unsafe { std::slice::from_raw_parts(dst.as_ptr(), 64 * ps) };
        assert!(got.iter().all(|&b| b == 0));
        assert_eq!(eng.stats().faults_resolved, 1, "refused {refused}");
        assert_eq!(dev.stats().faults_nonresident, 1, "refused {refused}");

        // Pieces of 16 pages: one round trip per piece, for a copy, a
        // descending move and a fill.
        let cfg = EmuConfig {
            max_transfer_size: 16 * ps as u64,
            ..Default::default()
        };
        let (_dev, eng) = rig(cfg, EngineOptions::default());
        let data = pattern(64 * ps, 9);
        let dst = Untouched::new(64 * ps);
        let op = Op::copy(dst.as_ptr() as usize, data.as_ptr() as usize, 64 * ps, h());
        // SAFETY: both outlive the op.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        assert_eq!(finish(&eng, hd), Poll::Done);
        // SAFETY: the mapping is live.
        let got = unsafe { std::slice::from_raw_parts(dst.as_ptr(), 64 * ps) };
        assert!(got == data.as_slice());
        assert_eq!(eng.stats().faults_resolved, 4, "refused {refused}");

        let m = Untouched::new(80 * ps);
        // SAFETY: the mapping has 80 pages; this writes the first 16.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), m.as_ptr(), 16 * ps) };
        let before = eng.stats().faults_resolved;
        let op = Op::copy(
            m.as_ptr() as usize + 3 * ps,
            m.as_ptr() as usize,
            60 * ps,
            h(),
        );
        // SAFETY: the mapping outlives the op.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        assert_eq!(finish(&eng, hd), Poll::Done);
        // SAFETY: the mapping is live.
        let got = unsafe { std::slice::from_raw_parts(m.as_ptr().add(3 * ps), 16 * ps) };
        assert!(got == &data[..16 * ps]);
        let faults = eng.stats().faults_resolved - before;
        assert!(
            faults <= 4,
            "descending move: {faults} faults, refused {refused}"
        );

        let f = Untouched::new(64 * ps);
        let before = eng.stats().faults_resolved;
        // SAFETY: the mapping outlives the op.
        let hd = unsafe { eng.start(&Op::fill(f.as_ptr() as usize, 0xa5, 64 * ps, h()), true) };
        assert_eq!(finish(&eng, hd.unwrap()), Poll::Done);
        // SAFETY: the mapping is live.
        let got = unsafe { std::slice::from_raw_parts(f.as_ptr(), 64 * ps) };
        assert!(got.iter().all(|&b| b == 0xa5));
        assert_eq!(eng.stats().faults_resolved - before, 4, "refused {refused}");
    }
}

/// A mapping of `pages` pages with protection `prot`, never touched.
struct Mapping(*mut u8, usize);

impl Mapping {
    fn new(pages: usize, prot: i32) -> Mapping {
        let len = pages * page_size() as usize;
        // SAFETY: a fresh anonymous mapping chosen by the kernel.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        Mapping(p.cast(), len)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, not referred to afterwards.
        unsafe { libc::munmap(self.0.cast(), self.1) };
    }
}

#[test]
fn memory_the_cpu_cannot_write_either_fails_without_a_crash() {
    let ps = page_size() as usize;
    for refused in [false, true] {
        let (_dev, eng) = rig(EmuConfig::default(), EngineOptions::default());
        let _g = refuse_populate(refused);
        let src = pattern(4 * ps, 1);
        // A read-only destination, never touched: the device write-faults;
        // a CPU write there would crash, so the engine must not try one.
        let ro = Mapping::new(4, libc::PROT_READ);
        let op = Op::copy(ro.0 as usize + 8, src.as_ptr() as usize, 3 * ps, h());
        // SAFETY: the emulator checks residency before it writes; the
        // engine fails rather than write the page itself.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        let Poll::Failed(f) = finish(&eng, hd) else {
            panic!("refused {refused}")
        };
        assert!(
            matches!(f.reason, FailReason::Unresolvable { .. }),
            "refused {refused}: {f:?}"
        );
        assert!(!f.cpu_can_finish());
        // An inaccessible source: no read either.
        let none = Mapping::new(2, libc::PROT_NONE);
        let mut dst = vec![1u8; 2 * ps];
        let op = Op::copy(dst.as_mut_ptr() as usize, none.0 as usize, 2 * ps, h());
        // SAFETY: as above, for reads.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        let Poll::Failed(f) = finish(&eng, hd) else {
            panic!("refused {refused}")
        };
        assert!(
            matches!(f.reason, FailReason::Unresolvable { .. }),
            "refused {refused}: {f:?}"
        );
        assert!(dst.iter().all(|&b| b == 1));
    }
}

#[test]
fn writes_into_zero_page_memory_fault_and_are_resolved() {
    // Reading fresh anonymous memory maps the shared zero page: resident,
    // so mincore sees nothing to fault on, but a device write faults.
    let ps = page_size() as usize;
    for mode in [FaultAddr::Exact, FaultAddr::Masked] {
        let cfg = EmuConfig {
            fault_addr: mode,
            ..Default::default()
        };
        let (dev, eng) = rig(cfg, EngineOptions::default());
        let m = Untouched::new(32 * ps);
        // SAFETY: the mapping is live; reading maps the zero page.
        let zeros = unsafe { std::slice::from_raw_parts(m.as_ptr(), 32 * ps) };
        assert!(zeros.iter().all(|&b| b == 0));
        let data = pattern(30 * ps, 3);
        let op = Op::copy(
            m.as_ptr() as usize + ps + 5,
            data.as_ptr() as usize,
            data.len(),
            h(),
        );
        // SAFETY: both outlive the op.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        assert_eq!(finish(&eng, hd), Poll::Done);
        // SAFETY: the mapping is live and was written by the op.
        let got = unsafe { std::slice::from_raw_parts(m.as_ptr().add(ps + 5), data.len()) };
        assert!(got == data.as_slice());
        assert!(dev.stats().faults_write_protected >= 1, "{:?}", dev.stats());
        assert!(eng.stats().faults_resolved >= 1);
        assert_eq!(dev.stats().faults_nonresident, 0);

        // A descending move whose lowest destination page is still the
        // zero page: the write fault comes last, below the destination
        // start when only the page is reported.
        let m = Untouched::new(8 * ps);
        let data = pattern(4 * ps, 4);
        // SAFETY: the mapping has 8 pages; page 0 and pages 2.. are written.
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), m.as_ptr(), ps);
            core::ptr::copy_nonoverlapping(data.as_ptr(), m.as_ptr().add(2 * ps), 4 * ps);
        }
        // SAFETY: page 1 is read: the zero page.
        assert_eq!(unsafe { *m.as_ptr().add(ps) }, 0);
        // SAFETY: the mapping is live.
        let mut want = unsafe { std::slice::from_raw_parts(m.as_ptr(), 8 * ps) }.to_vec();
        want.copy_within(ps - 100..5 * ps, ps + 200);
        let op = Op::copy(
            m.as_ptr() as usize + ps + 200,
            m.as_ptr() as usize + ps - 100,
            4 * ps + 100,
            h(),
        );
        let before = dev.stats().faults_write_protected;
        // SAFETY: the mapping outlives the op.
        let hd = unsafe { eng.start(&op, true) }.unwrap();
        assert_eq!(finish(&eng, hd), Poll::Done, "{mode:?}");
        // SAFETY: the mapping is live.
        let got = unsafe { std::slice::from_raw_parts(m.as_ptr(), 8 * ps) };
        assert!(got == want.as_slice(), "{mode:?}");
        assert!(dev.stats().faults_write_protected > before);
    }
}

#[test]
fn fault_cost_knob_still_completes_everything() {
    let cfg = EmuConfig {
        fault_us: 20,
        fault_rate: 0.5,
        fault_addr: FaultAddr::Masked,
        seed: 5,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, EngineOptions::default());
    for i in 0..40u64 {
        let len = 1000 + (i as usize * 7919) % 15_000;
        let mut buf = pattern(40_000, i);
        let mut want = buf.clone();
        let (s, d) = LAYOUTS[i as usize % 3];
        want.copy_within(s..s + len, d);
        let base = buf.as_mut_ptr() as usize;
        // SAFETY: `buf` outlives the op.
        let hd = unsafe { eng.start(&Op::copy(base + d, base + s, len, h()), true) };
        assert_eq!(finish(&eng, hd.unwrap()), Poll::Done);
        assert!(buf == want, "op {i}");
    }
    assert!(dev.stats().faults_injected > 5);
}
