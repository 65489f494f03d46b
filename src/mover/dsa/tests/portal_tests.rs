//! Unit tests of `HwPortal` (`hw/mod.rs`) without a device: the open
//! error and the `write(2)` fallback.

use std::io::Read;
use std::path::Path;

use crate::mover::dsa::hw::discovery::WqMode;
use crate::mover::dsa::hw::{
    cpu_support, CpuSupport, Descriptor, DeviceState, HwPortal, Method, Portal, Submitted,
};

#[test]
fn missing_device_node_is_an_error() {
    let e = HwPortal::open(Path::new("/nonexistent/dsa/wq9.9"), WqMode::Dedicated);
    assert_eq!(e.err().and_then(|e| e.raw_os_error()), Some(libc::ENOENT));
}

#[test]
fn write_fallback_sends_the_64_descriptor_bytes() {
    // A regular file stands in for the WQ node: without the CPU
    // instruction (or when forced) the portal writes raw descriptors.
    let dir = crate::mover::dsa::testutil::TempDir::new("portal");
    let path = dir.path().join("wq0.0");
    std::fs::write(&path, b"").unwrap();
    let none = CpuSupport {
        movdir64b: false,
        enqcmd: false,
    };
    for (mode, cpu, force) in [
        (WqMode::Dedicated, none, false),
        (WqMode::Shared, none, false),
        (WqMode::Dedicated, cpu_support(), true),
    ] {
        std::fs::write(&path, b"").unwrap();
        let p = HwPortal::open_with(&path, mode, cpu, force).unwrap();
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
    let none = CpuSupport {
        movdir64b: false,
        enqcmd: false,
    };
    let p = HwPortal::open_with(&node, WqMode::Dedicated, none, true).unwrap();
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
