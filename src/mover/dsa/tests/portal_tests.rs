//! Unit tests of `HwPortal` and the route choice (`hw/mod.rs`) without a
//! device: the open error, the `write(2)` submission, the probe, ENQCMD
//! from the kernel's flag.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::mover::dsa::hw::discovery::WqMode;
use crate::mover::dsa::hw::{
    choose_route, probe_write, CpuSupport, Descriptor, DeviceState, HwPortal, Method, Portal,
    Route, Submitted,
};
use crate::mover::dsa::testutil::TempDir;

const NONE: CpuSupport = CpuSupport {
    movdir64b: false,
    enqcmd: false,
};
const BOTH: CpuSupport = CpuSupport {
    movdir64b: true,
    enqcmd: true,
};

/// A plain file standing in for a WQ node.
fn plain_file(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.path().join("wq0.0");
    std::fs::write(&path, b"").unwrap();
    path
}

#[test]
fn missing_device_node_is_an_error() {
    let e = HwPortal::open(Path::new("/nonexistent/dsa/wq9.9"), WqMode::Dedicated);
    assert_eq!(e.err().and_then(|e| e.raw_os_error()), Some(libc::ENOENT));
}

#[test]
fn write_submission_sends_the_64_descriptor_bytes() {
    let dir = TempDir::new("portal");
    let path = plain_file(&dir);
    let p = HwPortal::open_write_unprobed(&path).unwrap();
    assert_eq!(p.method(), Method::Write);
    let d = Descriptor::noop(0x1000);
    // SAFETY: a NOOP written to a plain file touches no memory.
    assert_eq!(unsafe { p.submit(&d) }, Ok(Submitted::Accepted));
    drop(p);
    let mut got = Vec::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert_eq!(got.as_slice(), d.as_bytes());
}

#[test]
fn write_submissions_fence_first() {
    // The kernel's write path does not fence: the portal must, as before
    // MOVDIR64B/ENQCMD (DSA.md 12.2).
    let dir = TempDir::new("portal-fence");
    let p = HwPortal::open_write_unprobed(&plain_file(&dir)).unwrap();
    let before = crate::arch::fences_on_this_thread();
    // SAFETY: a NOOP written to a plain file touches no memory.
    let r = unsafe { p.submit(&Descriptor::noop(0x1000)) };
    assert_eq!(r, Ok(Submitted::Accepted));
    assert_eq!(crate::arch::fences_on_this_thread(), before + 1);
}

#[test]
fn write_is_probed_before_it_is_relied_on() {
    // A file that takes the bytes but never completes the probe NOOP:
    // without a mapping the WQ is unusable, and the error says why, for
    // both routes.
    let dir = TempDir::new("portal-probe");
    let path = plain_file(&dir);
    for (mode, cpu, force, why) in [
        (WqMode::Dedicated, NONE, false, "MOVDIR64B"),
        (WqMode::Shared, NONE, false, "ENQCMD"),
        (WqMode::Dedicated, BOTH, true, "forced"),
    ] {
        let e = HwPortal::open_with(&path, mode, cpu, force, Duration::from_millis(20))
            .err()
            .expect("a WQ whose write(2) never completes a NOOP is not usable");
        let msg = e.to_string();
        assert!(msg.contains(why) && msg.contains("write(2)"), "{msg}");
        assert!(msg.contains("did not come within 20 ms"), "{msg}");
    }
}

#[test]
fn the_route_follows_the_kernel_rules() {
    let mapped = || Ok::<u32, i32>(7);
    let ok = || Ok(());
    let einval = || probe_write(&|_| Err(libc::EINVAL), Duration::ZERO);
    let never = || -> Result<(), String> { panic!("not probed when the mapping works") };
    // The instruction and the mapping: no write(2) probe at all.
    let r = choose_route(WqMode::Dedicated, BOTH, false, mapped, never);
    assert_eq!(r, Ok(Route::Mapped(7, Method::Movdir64b)));
    let r = choose_route(WqMode::Shared, BOTH, false, mapped, never);
    assert_eq!(r, Ok(Route::Mapped(7, Method::Enqcmd)));
    // 6.9.1+ without CAP_SYS_RAWIO: EPERM, then write(2) once probed.
    let eperm = || Err::<u32, i32>(libc::EPERM);
    assert_eq!(
        choose_route(WqMode::Dedicated, BOTH, false, eperm, ok),
        Ok(Route::Write)
    );
    // Before 6.9.1 there is no write(2): EPERM cannot happen there, but a
    // CPU without the instruction (or FORCE_WRITE) leaves no route.
    for (cpu, force, not_mapped) in [
        (NONE, false, "no MOVDIR64B"),
        (BOTH, true, "write(2) is forced"),
    ] {
        let e = choose_route(WqMode::Dedicated, cpu, force, mapped, einval).unwrap_err();
        assert!(e.contains(not_mapped), "{e}");
        assert!(e.contains("EINVAL") && e.contains("6.9.1"), "{e}");
    }
    let e = choose_route(WqMode::Shared, NONE, false, mapped, einval).unwrap_err();
    assert!(e.contains("enqcmd") && e.contains("5.18"), "{e}");
    // Both refused: both reasons.
    let e = choose_route(WqMode::Dedicated, BOTH, false, eperm, einval).unwrap_err();
    assert!(e.contains("CAP_SYS_RAWIO") && e.contains("EINVAL"), "{e}");
    // Another mmap error is reported as such, and write(2) still tried.
    let enodev = || Err::<u32, i32>(libc::ENODEV);
    assert_eq!(
        choose_route(WqMode::Dedicated, BOTH, false, enodev, ok),
        Ok(Route::Write)
    );
}

#[test]
fn the_probe_reads_every_answer_of_write() {
    // A full shared WQ (EAGAIN) has the write path; other errors do not.
    assert_eq!(probe_write(&|_| Err(libc::EAGAIN), Duration::ZERO), Ok(()));
    let e = probe_write(&|_| Err(libc::EPERM), Duration::ZERO).unwrap_err();
    assert!(e.contains("refused"), "{e}");
    // A write that takes the NOOP but never completes it.
    let e = probe_write(&|b| Ok(b.len()), Duration::from_millis(1)).unwrap_err();
    assert!(e.contains("did not come"), "{e}");
}

#[test]
fn enqcmd_is_taken_from_the_kernel_flag_not_cpuid() {
    // A CPU with ENQCMD under a kernel that hides the flag (it does not
    // support PASIDs for user space: before 5.18, or no SVA): ENQCMD there
    // would fault, so the shared WQ must not use it.
    let cpu = crate::arch::Features {
        movdir64b: true,
        enqcmd: true,
        ..crate::arch::features()
    };
    let hidden = "processor\t: 0\nflags\t\t: fpu sse2 movdiri movdir64b\n";
    let shown = "processor\t: 0\nflags\t\t: fpu sse2 movdiri movdir64b enqcmd\n";
    let s = CpuSupport::from_parts(cpu, hidden);
    assert!(s.movdir64b && !s.enqcmd, "{s:?}");
    assert!(CpuSupport::from_parts(cpu, shown).enqcmd);
    // The flag without the CPUID bit (a confused hypervisor) is not enough,
    // nor is a cpuinfo that cannot be read.
    let no_cpu = crate::arch::Features {
        enqcmd: false,
        ..cpu
    };
    assert!(!CpuSupport::from_parts(no_cpu, shown).enqcmd);
    assert!(!CpuSupport::from_parts(cpu, "").enqcmd);
    // Only the first flags line counts, and only whole words.
    let partial = "flags\t\t: fpu enqcmdx\nflags\t\t: enqcmd\n";
    assert!(!CpuSupport::from_parts(cpu, partial).enqcmd);
}

/// The error channel (DSA.md 12.3): sysfs `state` of the device and the
/// WQ, and `poll(2)` on the WQ file. A FIFO stands in for the WQ node: it
/// polls readable once a byte is in it, as the WQ file does while the
/// device's SWERROR register is valid.
#[test]
fn device_state_reads_sysfs_state_and_polls_the_wq_file() {
    let dir = crate::mover::dsa::testutil::TempDir::new("state");
    let (sysfs, dev) = (dir.path().join("sys"), dir.path().join("dev"));
    let cfg = crate::mover::dsa::emu::EmuConfig::default();
    crate::mover::dsa::emu::sysfs::write_tree(&sysfs, &dev, &cfg, 0, 0).unwrap();
    let node = dev.join("wq0.0");
    std::fs::remove_file(&node).unwrap();
    let c = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let p = HwPortal::open_write_unprobed(&node).unwrap();
    assert_eq!(
        p.device_state(),
        DeviceState::Running,
        "no state files given"
    );
    let p = p.watching(&sysfs, "wq0.0");
    assert_eq!(p.device_state(), DeviceState::Running);
    let set = |what: &str, state: &str| {
        std::fs::write(sysfs.join(what).join("state"), format!("{state}\n")).unwrap()
    };
    set("dsa0", "halted");
    assert_eq!(
        p.device_state(),
        DeviceState::Stopped("dsa0 is halted".into())
    );
    set("dsa0", "enabled");
    set("wq0.0", "disabled");
    assert_eq!(
        p.device_state(),
        DeviceState::Stopped("wq0.0 is disabled".into())
    );
    set("wq0.0", "quiescing");
    assert_eq!(
        p.device_state(),
        DeviceState::Error,
        "draining is not stopped"
    );
    std::fs::remove_file(sysfs.join("wq0.0").join("state")).unwrap();
    assert_eq!(
        p.device_state(),
        DeviceState::Running,
        "unreadable: unknown"
    );
    let mut w = std::fs::OpenOptions::new().write(true).open(&node).unwrap();
    std::io::Write::write_all(&mut w, b"!").unwrap();
    assert_eq!(
        p.device_state(),
        DeviceState::Error,
        "POLLIN: SWERROR valid"
    );
}
