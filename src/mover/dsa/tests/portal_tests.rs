//! Unit tests of `HwPortal` (`hw/mod.rs`) without a device: the open
//! error and the `write(2)` fallback.

use std::io::Read;
use std::path::Path;

use crate::mover::dsa::hw::discovery::WqMode;
use crate::mover::dsa::hw::{
    cpu_support, CpuSupport, Descriptor, HwPortal, Method, Portal, Submitted,
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
