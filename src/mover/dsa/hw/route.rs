//! How descriptors will reach a work queue, decided once when it is
//! opened (DSA.md 12.2), for the real portal (`HwPortal::open_with`) and
//! the emulated one (`emu/kernel.rs`) alike: which instructions the CPU
//! and kernel offer ([`cpu_support`]), the mapped portal or `write(2)`
//! ([`choose_route`]), and the NOOP that shows `write(2)` works before it
//! is relied on ([`probe_write`]). Nothing here runs per operation.

use std::io;

use super::discovery::WqMode;
use super::{status, submit_write, CrCell, Descriptor, Method, PortalError, Submitted};

/// Which submission instructions this process may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuSupport {
    pub movdir64b: bool,
    pub enqcmd: bool,
}

/// What this CPU and kernel offer: MOVDIR64B from CPUID, ENQCMD only when
/// the kernel also lists `enqcmd` in `/proc/cpuinfo`.
pub fn cpu_support() -> CpuSupport {
    CpuSupport::from_parts(crate::arch::features(), &cpuinfo_flags())
}

/// The first `flags` line of `/proc/cpuinfo` (empty when unreadable).
fn cpuinfo_flags() -> String {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open("/proc/cpuinfo") else {
        return String::new();
    };
    io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default()
}

impl CpuSupport {
    /// MOVDIR64B when CPUID has it (it needs nothing from the kernel).
    /// ENQCMD when CPUID has it **and** the kernel's `flags` line in
    /// `cpuinfo` lists `enqcmd`: the kernel hides the flag when it cannot
    /// give user space a PASID (before Linux 5.18, or without SVA), and ENQCMD
    /// then faults. Only the first `flags` line is read (every CPU's line
    /// is the same); an unreadable cpuinfo means no ENQCMD.
    pub fn from_parts(f: crate::arch::Features, cpuinfo: &str) -> CpuSupport {
        let kernel_enqcmd = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .and_then(|l| l.split_once(':'))
            .is_some_and(|(_, v)| v.split_ascii_whitespace().any(|w| w == "enqcmd"));
        CpuSupport {
            movdir64b: f.movdir64b,
            enqcmd: f.enqcmd && kernel_enqcmd,
        }
    }
}

/// How descriptors reach a WQ, chosen once when it is opened
/// ([`choose_route`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Route<M> {
    /// Through the mapped portal `M`, with MOVDIR64B or ENQCMD.
    Mapped(M, Method),
    /// Through `write(2)` on the WQ file, which answered a probe.
    Write,
}

/// How long [`probe_write`] waits for its NOOP's record when a portal is
/// opened.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Picks how to submit to a WQ opened in `mode` (DSA.md 12.2): the mapped
/// portal when the CPU (and, for ENQCMD, the kernel) has the instruction
/// and `map` succeeds; otherwise `write(2)` when `probe_write` shows that
/// the kernel takes descriptors that way (it does from 6.9.1; before,
/// every write fails with EINVAL; from 6.9.1 mapping needs CAP_SYS_RAWIO,
/// EPERM otherwise). `force_write` skips the mapping. When neither works
/// the error says why, for both.
pub fn choose_route<M>(
    mode: WqMode,
    cpu: CpuSupport,
    force_write: bool,
    map: impl FnOnce() -> Result<M, i32>,
    probe_write: impl FnOnce() -> Result<(), String>,
) -> Result<Route<M>, String> {
    let instr = match mode {
        WqMode::Dedicated if cpu.movdir64b => Ok(Method::Movdir64b),
        WqMode::Shared if cpu.enqcmd => Ok(Method::Enqcmd),
        WqMode::Dedicated => Err("the CPU has no MOVDIR64B".to_string()),
        WqMode::Shared => Err("the kernel offers no ENQCMD (no `enqcmd` flag in \
             /proc/cpuinfo: the CPU lacks it, or the kernel gives user space no PASID, \
             as before Linux 5.18)"
            .to_string()),
    };
    let not_mapped = match instr {
        Ok(_) if force_write => "the mapping is skipped (write(2) is forced)".to_string(),
        Ok(m) => match map() {
            Ok(p) => return Ok(Route::Mapped(p, m)),
            Err(libc::EPERM) => "mapping the portal needs CAP_SYS_RAWIO on this kernel \
                 (EPERM: Linux 6.9.1 and later, INTEL-SA-01084)"
                .to_string(),
            Err(e) => format!(
                "mapping the portal failed ({})",
                io::Error::from_raw_os_error(e)
            ),
        },
        Err(why) => why,
    };
    match probe_write() {
        Ok(()) => Ok(Route::Write),
        Err(why) => Err(format!("{not_mapped}, and write(2) {why}")),
    }
}

/// Shows whether `write` submits descriptors, as DTO does before relying
/// on it: one NOOP, whose record must say SUCCESS within `timeout`. A
/// shared WQ that answers EAGAIN has the write path (it is only full). If
/// the record never comes its memory is leaked, since the device may
/// still write it.
pub fn probe_write(
    write: &dyn Fn(&[u8]) -> Result<usize, i32>,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let cr = Box::new(CrCell::default());
    match submit_write(&Descriptor::noop(cr.addr()), write) {
        Ok(Submitted::Retry) => return Ok(()),
        Ok(Submitted::Accepted) => {}
        Err(PortalError {
            errno: libc::EINVAL,
        }) => {
            return Err(
                "is refused (EINVAL): this kernel has no write(2) submission \
                 (Linux before 6.9.1)"
                    .to_string(),
            )
        }
        Err(PortalError { errno }) => {
            return Err(format!(
                "is refused ({})",
                io::Error::from_raw_os_error(errno)
            ))
        }
    }
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match cr.status() {
            status::NONE => {}
            status::SUCCESS => return Ok(()),
            s => return Err(format!("took a NOOP that completed with status {s:#04x}")),
        }
        if std::time::Instant::now() >= deadline {
            Box::leak(cr);
            return Err(format!(
                "took a NOOP whose completion record did not come within {} ms",
                timeout.as_millis()
            ));
        }
        std::thread::sleep(std::time::Duration::from_micros(20));
    }
}
