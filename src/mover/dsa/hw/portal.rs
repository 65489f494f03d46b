//! Submission portals: the [`Portal`] trait the engine submits through, and
//! [`HwPortal`], the real one (DSA.md section 2).
//!
//! `HwPortal` opens `/dev/dsa/wq<m>.<n>`, maps its 4 KiB portal
//! (`PROT_WRITE`, `MAP_SHARED | MAP_POPULATE`) and submits with MOVDIR64B
//! (dedicated WQ) or ENQCMD (shared WQ) after an SFENCE, rotating the
//! target cache line per submission. When the kernel refuses the mapping
//! with EPERM (devices that are not "user submission safe", Linux 6.9.1+)
//! or the CPU lacks the instruction (always, off x86-64), descriptors go
//! through `write(2)`. The instructions themselves live in [`crate::arch`].

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::descriptor::Descriptor;
use super::discovery::WqMode;

/// Portal size: one page; the kernel rejects larger mappings.
pub const PORTAL_SIZE: usize = 4096;

/// What a submission did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// The WQ took the descriptor (for a dedicated WQ this only means the
    /// posted write happened: flow control is the caller's job).
    Accepted,
    /// Shared WQ full (ENQCMD ZF=1, `write(2)` EAGAIN): try again later.
    Retry,
}

/// A submission the WQ refused outright (`write(2)` errors such as EINVAL
/// for a misaligned completion address or BATCH on a v1 device).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortalError {
    pub errno: i32,
}

/// How a portal submits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Movdir64b,
    Enqcmd,
    Write,
    Emulated,
}

/// Something descriptors can be submitted to: a real WQ portal or the
/// emulated work queue.
pub trait Portal: Send + Sync {
    /// Submit one descriptor. The 64 bytes are consumed before this
    /// returns; `desc` may be reused immediately.
    ///
    /// # Safety
    /// The device will access memory on the descriptor's behalf until it
    /// writes the completion record: every address in `desc` (source,
    /// destination, batch list and, for a batch, every address in each
    /// listed descriptor) must be valid for the accesses its opcode implies
    /// until then, and every completion address must be 32-byte aligned
    /// memory that stays allocated and is accessed only atomically by
    /// others until the record is written.
    unsafe fn submit(&self, desc: &Descriptor) -> Result<Submitted, PortalError>;

    /// The submission method in use.
    fn method(&self) -> Method;
}

/// CPU support for the submission instructions (CPUID.(7,0):ECX).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuSupport {
    pub movdir64b: bool,
    pub enqcmd: bool,
}

/// What [`crate::arch::features`] reports (on x86-64 CPUID leaf 7 ECX
/// bits 28 and 29; never either elsewhere).
pub fn cpu_support() -> CpuSupport {
    let f = crate::arch::features();
    CpuSupport {
        movdir64b: f.movdir64b,
        enqcmd: f.enqcmd,
    }
}

/// A real work-queue portal.
pub struct HwPortal {
    fd: OwnedFd,
    page: Option<NonNull<u8>>,
    method: Method,
    line: AtomicUsize,
}

// SAFETY: the mapping is a device portal page that only receives whole
// 64-byte MOVDIR64B/ENQCMD writes, which the device serialises; the file
// descriptor is thread-safe for write(2). Nothing else is shared.
unsafe impl Send for HwPortal {}
// SAFETY: see the `Send` impl; `line` is atomic.
unsafe impl Sync for HwPortal {}

impl HwPortal {
    /// Open the WQ character device and pick the submission method.
    pub fn open(path: &Path, mode: WqMode) -> io::Result<HwPortal> {
        HwPortal::open_with(path, mode, cpu_support(), false)
    }

    /// [`open`](Self::open) with explicit CPU support and an option to skip
    /// the mapping (tests, and `MINIASYNC_DSA_FORCE_WRITE`).
    pub fn open_with(
        path: &Path,
        mode: WqMode,
        cpu: CpuSupport,
        force_write: bool,
    ) -> io::Result<HwPortal> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `c` is a NUL-terminated path; open has no other inputs.
        let raw = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let instr = match mode {
            WqMode::Dedicated if cpu.movdir64b => Some(Method::Movdir64b),
            WqMode::Shared if cpu.enqcmd => Some(Method::Enqcmd),
            _ => None,
        };
        let (page, method) = match instr {
            Some(m) if !force_write => match map_portal(&fd) {
                Ok(p) => (Some(p), m),
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => (None, Method::Write),
                Err(e) => return Err(e),
            },
            _ => (None, Method::Write),
        };
        Ok(HwPortal {
            fd,
            page,
            method,
            line: AtomicUsize::new(0),
        })
    }

    fn next_line(&self) -> *mut u8 {
        let page = self.page.expect("instruction methods have a mapping");
        let off = self.line.fetch_add(64, Ordering::Relaxed) % PORTAL_SIZE;
        // SAFETY: `off` is a multiple of 64 below the page size, so the
        // result stays inside the mapped portal page.
        unsafe { page.as_ptr().add(off) }
    }
}

fn map_portal(fd: &OwnedFd) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh shared mapping of one page of `fd`; the kernel
    // chooses the address, so no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            PORTAL_SIZE,
            libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from(io::ErrorKind::Other))
}

impl Drop for HwPortal {
    fn drop(&mut self) {
        if let Some(p) = self.page {
            // SAFETY: `p` is the page mapped in `open_with` and nothing
            // refers to it after the portal is dropped.
            unsafe { libc::munmap(p.as_ptr().cast(), PORTAL_SIZE) };
        }
    }
}

/// The descriptor's 64 bytes as the instructions read them.
fn desc_ptr(desc: &Descriptor) -> *const u8 {
    core::ptr::from_ref(desc).cast()
}

impl Portal for HwPortal {
    unsafe fn submit(&self, desc: &Descriptor) -> Result<Submitted, PortalError> {
        match self.method {
            Method::Movdir64b => {
                // SAFETY: the method is only chosen when the CPU has
                // MOVDIR64B and the portal is mapped; `desc` is 64 bytes,
                // 64-byte aligned by type; the caller vouches for its
                // addresses.
                unsafe { crate::arch::movdir64b(self.next_line(), desc_ptr(desc)) };
                Ok(Submitted::Accepted)
            }
            Method::Enqcmd => {
                // SAFETY: as above, for ENQCMD on a shared WQ.
                let ok = unsafe { crate::arch::enqcmd(self.next_line(), desc_ptr(desc)) };
                Ok(if ok {
                    Submitted::Accepted
                } else {
                    Submitted::Retry
                })
            }
            Method::Write | Method::Emulated => {
                let bytes = desc.as_bytes();
                // SAFETY: the kernel copies 64 readable bytes from `bytes`.
                // Like the instructions, the syscall orders earlier stores.
                let n = unsafe { libc::write(self.fd.as_raw_fd(), bytes.as_ptr().cast(), 64) };
                if n == 64 {
                    Ok(Submitted::Accepted)
                } else if n >= 0 {
                    Ok(Submitted::Retry)
                } else {
                    match io::Error::last_os_error()
                        .raw_os_error()
                        .unwrap_or(libc::EIO)
                    {
                        libc::EAGAIN | libc::EINTR => Ok(Submitted::Retry),
                        e => Err(PortalError { errno: e }),
                    }
                }
            }
        }
    }

    fn method(&self) -> Method {
        self.method
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

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
}
