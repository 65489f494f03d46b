//! Tests of the DSA mover on the emulated work queue (paths, notifiers,
//! fallbacks, queueing) through its Rust API; the C suite covers the ABI.
use crate::abi::future_state;
use crate::abi::{future_notifier, vdm, vdm_operation, vdm_operation_output, vdm_operation_result};
use crate::abi::{
    future_notifier_type, future_poller, future_waker, vdm_operation_args,
    vdm_operation_data_memcpy, vdm_operation_data_memset, vdm_operation_type,
};
use crate::ffi::view::{self, Notifier, RawEnum};
use crate::mover::dsa::emu::EmuDevice;
use crate::mover::dsa::emu::{EmuConfig, Forced, Stall, DEFAULT_GENCAP};
use crate::mover::dsa::hw::{gencap, opcode};
use crate::mover::dsa::mover::*;
use crate::mover::dsa::testutil::{pattern, rig};
use crate::mover::dsa::{Engine, EngineOptions};
use crate::mover::{configured_capacity, Mover};
use std::sync::Arc;

pub(super) fn blank_vdm() -> vdm {
    vdm {
        op_new: None,
        op_delete: None,
        op_start: None,
        op_check: None,
        capabilities: 3,
        has_property: None,
    }
}

pub(super) fn copy(
    ty: vdm_operation_type,
    dst: *mut u8,
    src: *const u8,
    n: usize,
    flags: u64,
) -> vdm_operation {
    let memcpy = vdm_operation_data_memcpy {
        dest: dst.cast(),
        src: src.cast_mut().cast(),
        n,
        flags,
    };
    vdm_operation {
        data: vdm_operation_args { memcpy },
        r#type: ty,
        padding: 0,
    }
}

pub(super) fn set(dst: *mut u8, c: u8, n: usize, flags: u64) -> vdm_operation {
    let memset = vdm_operation_data_memset {
        str: dst.cast(),
        c: c.into(),
        n,
        flags,
    };
    vdm_operation {
        data: vdm_operation_args { memset },
        r#type: vdm_operation_type::VDM_OPERATION_MEMSET,
        padding: 0,
    }
}

const NOTIFIER_NONE: u32 = future_notifier_type::FUTURE_NOTIFIER_NONE as u32;
const NOTIFIER_POLLER: u32 = future_notifier_type::FUTURE_NOTIFIER_POLLER as u32;
pub(super) const COMPLETE: Option<future_state> = Some(future_state::FUTURE_STATE_COMPLETE);

// The mover is driven here through the `struct vdm` callbacks, exactly as
// C's inline code drives it.

fn handle(op: &DsaOp) -> *mut core::ffi::c_void {
    (op as *const DsaOp).cast_mut().cast()
}

/// `op_start`: true when started.
///
/// # Safety
/// `op` a live record of `m`; the operation's buffers valid.
pub(super) unsafe fn start(
    _m: &DsaMover,
    op: &DsaOp,
    o: &vdm_operation,
    n: &mut future_notifier,
) -> bool {
    // SAFETY: caller's contract.
    unsafe { view::op_start::<DsaMover>(handle(op), o, n) == 0 }
}

/// `op_check`, as the enum.
///
/// # Safety
/// `op` a live, started record.
pub(super) unsafe fn check(_m: &DsaMover, op: &DsaOp) -> Option<future_state> {
    // SAFETY: caller's contract.
    unsafe { view::op_check::<DsaMover>(handle(op), core::ptr::null()) }.known()
}

/// `op_delete`; returns the output's result.
///
/// # Safety
/// `op` a live record, not used afterwards.
pub(super) unsafe fn delete(_m: &DsaMover, op: &DsaOp, o: &vdm_operation) -> u32 {
    // SAFETY: a zeroed output is a valid value to overwrite.
    let mut out: vdm_operation_output = unsafe { core::mem::zeroed() };
    // SAFETY: caller's contract.
    unsafe { view::op_delete::<DsaMover>(handle(op), o, &mut out) };
    out.result as u32
}

fn notifier_used(n: &mut future_notifier) -> u32 {
    // SAFETY: a notifier of this test, read through the view.
    unsafe { Notifier::from_c(n) }
        .used()
        .map_or(u32::MAX, RawEnum::raw)
}

pub(super) fn notifier() -> future_notifier {
    future_notifier {
        waker: future_waker {
            data: core::ptr::null_mut(),
            wake: None,
        },
        poller: future_poller {
            ptr_to_monitor: core::ptr::null_mut(),
        },
        notifier_used: future_notifier_type::FUTURE_NOTIFIER_WAKER,
        padding: 0,
    }
}

/// Start, poll to completion, delete; returns (result, notifier used,
/// poller address set).
pub(super) fn run(m: &DsaMover, operation: &vdm_operation) -> (u32, u32, bool) {
    let op = m.new_op().unwrap();
    let mut n = notifier();
    // SAFETY: the test's buffers outlive the op, polled on this thread.
    while !unsafe { start(m, op, operation, &mut n) } {
        std::thread::yield_now();
    }
    // SAFETY: as above.
    while unsafe { check(m, op) } != COMPLETE {
        std::thread::yield_now();
    }
    // SAFETY: the record is not used afterwards.
    let r = unsafe { delete(m, op, operation) };
    (r, notifier_used(&mut n), !n.poller.ptr_to_monitor.is_null())
}

pub(super) const OK: u32 = vdm_operation_result::VDM_SUCCESS as u32;
pub(super) const CORRUPTED: u32 = vdm_operation_result::VDM_ERROR_JOB_CORRUPTED as u32;
pub(super) const MEMCPY: vdm_operation_type = vdm_operation_type::VDM_OPERATION_MEMCPY;
const MEMMOVE: vdm_operation_type = vdm_operation_type::VDM_OPERATION_MEMMOVE;

fn mover(
    path: Path,
    cfg: Option<EmuConfig>,
    threshold: usize,
) -> (
    Option<Arc<crate::mover::dsa::emu::EmuDevice>>,
    Box<DsaMover>,
) {
    match cfg {
        Some(c) => {
            let (dev, eng) = rig(c, EngineOptions::default());
            (
                Some(dev),
                DsaMover::new(blank_vdm(), path, Ok(Arc::new(eng)), threshold).unwrap(),
            )
        }
        None => (
            None,
            DsaMover::new(blank_vdm(), path, Err("none".into()), threshold).unwrap(),
        ),
    }
}

#[test]
fn hardware_needs_a_device() {
    let r = DsaMover::new(blank_vdm(), Path::Hardware, Err("no wq".into()), 0);
    assert_eq!(r.err(), Some(NewError::NoDevice("no wq".into())));
    assert_eq!(Path::from_raw(RawEnum::from_raw(3)), None);
    assert_eq!(Path::from_raw(RawEnum::from_raw(2)), Some(Path::Auto));
}

#[test]
fn software_and_small_auto_ops_run_on_the_cpu_with_notifier_none() {
    for (path, cfg) in [
        (Path::Software, None),
        (Path::Auto, None),
        (Path::Auto, Some(EmuConfig::default())),
    ] {
        let (dev, m) = mover(path, cfg, 1 << 20);
        let src = pattern(5000, 1);
        let mut dst = vec![0u8; 5000];
        assert_eq!(
            run(&m, &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 5000, 3)),
            (OK, NOTIFIER_NONE, false)
        );
        assert!(dst == src);
        let p = dst.as_mut_ptr();
        assert_eq!(
            run(&m, &copy(MEMMOVE, p.wrapping_add(10), p, 4000, 0)).0,
            OK
        );
        assert_eq!(&dst[10..4010], &src[..4000]);
        assert_eq!(run(&m, &set(p, 7, 5000, 1)).0, OK);
        assert!(dst.iter().all(|&b| b == 7));
        if let Some(d) = dev {
            assert_eq!(
                d.stats().accepted,
                0,
                "below the threshold nothing reaches the device"
            );
        }
    }
}

#[test]
fn device_path_sets_the_poller_and_moves_the_data() {
    for path in [Path::Hardware, Path::Auto] {
        let (dev, m) = mover(
            path,
            Some(EmuConfig {
                max_transfer_size: 4096,
                ..Default::default()
            }),
            0,
        );
        let dev = dev.unwrap();
        let src = pattern(100_000, 2);
        let mut dst = vec![0u8; 100_003];
        for flags in 0..4u64 {
            let r = run(
                &m,
                &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 100_000, flags),
            );
            assert_eq!(r, (OK, NOTIFIER_POLLER, true), "{path:?} flags {flags}");
            assert!(dst[..100_000] == src[..]);
            dst.fill(0);
        }
        let p = dst.as_mut_ptr();
        let mut want = dst.clone();
        want.copy_within(0..99_000, 3);
        assert_eq!(
            run(&m, &copy(MEMMOVE, p.wrapping_add(3), p, 99_000, 0)).0,
            OK
        );
        assert!(dst == want);
        assert_eq!(run(&m, &set(p, 0x5a, 77_777, 1)).1, NOTIFIER_POLLER);
        assert!(dst[..77_777].iter().all(|&b| b == 0x5a));
        assert_eq!(dst[77_777], want[77_777]);
        assert!(dev.stats().accepted > 0);
        assert!(dev.swerror().is_empty());
    }
}

/// A durable write is durable at completion: made so by the device
/// (destination readback, without cache control) when GENCAP bit 8 says
/// it can, otherwise written back from the CPU before the future
/// completes. The emulator flags a readback of data left in the cache.
#[test]
fn durable_writes_are_written_back_by_the_cpu_unless_the_device_reads_back() {
    for readback in [true, false] {
        let gen_cap = if readback {
            DEFAULT_GENCAP
        } else {
            DEFAULT_GENCAP & !gencap::DEST_READBACK
        };
        let cfg = EmuConfig {
            gen_cap,
            max_transfer_size: 4096,
            ..Default::default()
        };
        let (dev, m) = mover(Path::Hardware, Some(cfg), 0);
        let dev = dev.unwrap();
        let n = 50_000;
        let src = pattern(n, 7);
        let mut dst = vec![0u8; n];
        for flags in 0..4u64 {
            WRITTEN_BACK.with(|w| w.borrow_mut().clear());
            let op = copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), n, flags);
            assert_eq!(run(&m, &op), (OK, NOTIFIER_POLLER, true));
            assert!(dst == src);
            let durable = flags & 1 != 0;
            let want = if durable && !readback {
                vec![(dst.as_ptr() as usize, n)]
            } else {
                Vec::new()
            };
            assert_eq!(
                WRITTEN_BACK.with(|w| w.borrow().clone()),
                want,
                "readback {readback}, flags {flags}"
            );
            dst.fill(0);
        }
        assert!(dev.swerror().is_empty(), "{:?}", dev.swerror());
    }
}

#[test]
fn device_errors_finish_on_the_cpu_in_auto_and_fail_in_hardware() {
    for (path, want) in [(Path::Auto, OK), (Path::Hardware, CORRUPTED)] {
        let (dev, m) = mover(path, Some(EmuConfig::default()), 0);
        let dev = dev.unwrap();
        let src = pattern(20_000, 3);
        let mut dst = vec![0u8; 20_000];
        dev.force(
            opcode::MEMMOVE,
            Forced::Fault {
                bytes_completed: 5000,
                write: true,
            },
        );
        dev.force(
            opcode::MEMMOVE,
            Forced::Status(crate::mover::dsa::hw::status::HW_ERR1),
        );
        let r = run(&m, &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 20_000, 0));
        assert_eq!(r.0, want, "{path:?}");
        assert_eq!(&dst[..5000], &src[..5000], "resumed after the fault");
        if want == OK {
            assert!(dst == src, "the CPU finished the rest");
        }
    }
}

#[test]
fn overlap_without_device_support_runs_on_the_cpu_even_in_hardware() {
    let cfg = EmuConfig {
        gen_cap: DEFAULT_GENCAP & !gencap::OVERLAP_COPY,
        ..Default::default()
    };
    let (dev, m) = mover(Path::Hardware, Some(cfg), 0);
    let mut buf = pattern(10_000, 4);
    let mut want = buf.clone();
    want.copy_within(0..9000, 1000);
    let p = buf.as_mut_ptr();
    assert_eq!(
        run(&m, &copy(MEMMOVE, p.wrapping_add(1000), p, 9000, 0)),
        (OK, NOTIFIER_NONE, false)
    );
    assert!(buf == want);
    assert_eq!(dev.unwrap().stats().accepted, 0);
}

#[test]
fn hardware_queues_when_the_wq_is_full_and_auto_uses_the_cpu() {
    for path in [Path::Hardware, Path::Auto] {
        let cfg = EmuConfig {
            wq_size: 4,
            stall: Stall::Manual,
            ..Default::default()
        };
        let (dev, m) = mover(path, Some(cfg), 0);
        let dev = dev.unwrap();
        let src = pattern(64 * 100, 5);
        let mut dst = vec![0u8; 64 * 100];
        let ops: Vec<(&DsaOp, vdm_operation)> = (0..100)
            .map(|i| {
                // SAFETY: offsets inside the buffers.
                let o = unsafe {
                    copy(
                        MEMCPY,
                        dst.as_mut_ptr().add(64 * i),
                        src.as_ptr().add(64 * i),
                        64,
                        0,
                    )
                };
                (m.new_op().unwrap(), o)
            })
            .collect();
        let mut cpu_done = 0;
        for (op, o) in &ops {
            let mut n = notifier();
            // SAFETY: buffers outlive the ops; one thread polls.
            assert!(unsafe { start(&m, op, o, &mut n) });
            cpu_done += usize::from(notifier_used(&mut n) == NOTIFIER_NONE);
        }
        assert!(dev.swerror().is_empty());
        match path {
            Path::Hardware => assert_eq!(cpu_done, 0),
            _ => assert_eq!(cpu_done, 96, "AUTO: 4 on the device, the rest on the CPU"),
        }
        dev.set_stalled(false);
        for (op, o) in ops {
            // SAFETY: as above.
            while unsafe { check(&m, op) } != COMPLETE {
                std::thread::yield_now();
            }
            // SAFETY: the record dies here.
            assert_eq!(unsafe { delete(&m, op, &o) }, OK);
        }
        assert!(dst == src);
        assert_eq!(m.outstanding(), 0);
    }
}

#[test]
fn bad_operations_are_refused_without_touching_memory() {
    let (_dev, m) = mover(Path::Hardware, Some(EmuConfig::default()), 0);
    let mut dst = [0u8; 8];
    let r = run(&m, &copy(MEMCPY, dst.as_mut_ptr(), core::ptr::null(), 8, 0));
    assert_eq!(r.0, CORRUPTED);
    assert_eq!(dst, [0; 8]);
}

/// Starts every operation on `m` (asserting each started) and returns the
/// records with their operations.
pub(super) fn start_all(m: &DsaMover, ops: Vec<vdm_operation>) -> Vec<(&DsaOp, vdm_operation)> {
    ops.into_iter()
        .map(|o| {
            let op = m.new_op().expect("within the mover's bound");
            let mut n = notifier();
            // SAFETY: the caller's buffers outlive the ops; one thread polls.
            assert!(unsafe { start(m, op, &o, &mut n) }, "started");
            (op, o)
        })
        .collect()
}

/// A HARDWARE mover of `capacity` records on a 4-entry emulated WQ whose
/// engines wait for `set_stalled(false)`.
fn stalled_hardware_mover(capacity: u32) -> (Arc<EmuDevice>, Arc<Engine>, Box<DsaMover>) {
    let cfg = EmuConfig {
        wq_size: 4,
        stall: Stall::Manual,
        ..Default::default()
    };
    let (dev, eng) = rig(cfg, EngineOptions::default());
    let eng = Arc::new(eng);
    let m =
        DsaMover::with_capacity(blank_vdm(), Path::Hardware, Ok(eng.clone()), 0, capacity).unwrap();
    (dev, eng, m)
}

#[test]
fn one_record_per_operation_the_movers_bound_is_the_only_bound() {
    // More device operations in flight than the engine's own record table
    // used to hold (16384): the mover's pool is the only bound now.
    const N: usize = 20_000;
    let (dev, eng, m) = stalled_hardware_mover(N as u32);
    let mut dst = vec![0u8; 64 * N];
    let base = dst.as_mut_ptr() as usize;
    let ops = (0..N)
        .map(|i| set((base + 64 * i) as *mut u8, (i % 251) as u8 + 1, 64, 0))
        .collect();
    let ops = start_all(&m, ops);
    assert_eq!(m.outstanding(), N as u32);
    assert!(m.new_op().is_none(), "the mover's bound holds");
    dev.set_stalled(false);
    let mut left: Vec<_> = ops;
    while !left.is_empty() {
        left.retain(|(op, o)| {
            // SAFETY: the records are live and polled by this thread only.
            if unsafe { check(&m, op) } != COMPLETE {
                return true;
            }
            // SAFETY: the record dies here.
            assert_eq!(unsafe { delete(&m, op, o) }, OK);
            false
        });
    }
    assert!(dev.swerror().is_empty());
    for (i, chunk) in dst.chunks(64).enumerate() {
        assert!(chunk.iter().all(|&b| b == (i % 251) as u8 + 1), "op {i}");
    }
    assert_eq!(m.outstanding(), 0);
    assert_eq!(eng.credits_in_use(), 0);
}

#[test]
fn deleting_a_mover_with_device_operations_in_flight_waits_for_the_device() {
    let (dev, eng, m) = stalled_hardware_mover(configured_capacity());
    let mut dst = vec![0u8; 64 * 100];
    let base = dst.as_mut_ptr() as usize;
    let ops = (0..100)
        .map(|i| set((base + 64 * i) as *mut u8, 7, 64, 0))
        .collect();
    let started = start_all(&m, ops);
    assert!(eng.credits_in_use() > 0, "descriptors are in the device");
    // The futures are abandoned; the device resumes only after the delete
    // has begun, so the delete must wait for it.
    drop(started);
    let resume = {
        let dev = dev.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            dev.set_stalled(false);
        })
    };
    drop(m);
    assert_eq!(eng.credits_in_use(), 0, "nothing left in the device");
    resume.join().unwrap();
    assert!(dev.swerror().is_empty());
    assert!(
        dst.iter().all(|&b| b == 7),
        "every abandoned operation ran to its end"
    );
}

/// The mover's statistics add up what its operations met on the device:
/// every page fault the engine resolved for them is counted once.
#[test]
fn page_faults_of_device_operations_are_counted_once() {
    use crate::mover::stats::Counter;
    let (dev, eng) = rig(
        EmuConfig {
            fault_rate: 0.5,
            max_transfer_size: 8192,
            seed: 5,
            ..Default::default()
        },
        EngineOptions::default(),
    );
    let eng = Arc::new(eng);
    let m = DsaMover::new(blank_vdm(), Path::Hardware, Ok(eng.clone()), 0).unwrap();
    let src = pattern(40_000, 9);
    let mut dst = vec![0u8; 40_000];
    for _ in 0..20 {
        let r = run(&m, &copy(MEMCPY, dst.as_mut_ptr(), src.as_ptr(), 40_000, 0));
        assert_eq!(r.0, OK);
        assert!(dst == src);
        dst.fill(0);
    }
    let s = m.stats.snapshot();
    let faults = s.get(Counter::PageFaults);
    assert!(faults > 0);
    assert_eq!(faults, eng.stats().faults_resolved);
    assert!(dev.stats().accepted > 20);
    assert_eq!(s.get(Counter::Batches), 0, "one at a time: no batch");
}
