//! The kernel generations the emulator models (`MINIASYNC_DSA_EMULATE_KERNEL`,
//! DSA.md 12.1-12.2), and opening the emulated WQ the way a process opens
//! a real one: discovery parses the generation's sysfs text (`sysfs.rs`),
//! then [`hw::choose_route`] picks the mapped portal or `write(2)` under
//! that generation's rules.
//!
//! | generation | `op_cap` text | BATCH in `op_cap` | `op_config` | `prs_disable` | portal mapping | `write(2)` | ENQCMD flag |
//! |---|---|---|---|---|---|---|---|
//! | 5.15 | four `%#llx` words, spaces, least significant first | shown | absent | absent | allowed | EINVAL for every write | hidden (no user PASID before 5.18) |
//! | 6.1 | eight 32-bit words, commas, most significant first | shown | present | absent | allowed | EINVAL for every write | shown |
//! | 6.9 (6.9.1+) | as 6.1 | hidden | present | present | EPERM unless CAP_SYS_RAWIO | yes; BATCH refused (EINVAL) | shown |
//! | 6.16 | as 6.1 | hidden on version 1 devices | present | present | EPERM unless CAP_SYS_RAWIO | yes; BATCH refused on version 1 devices | shown |
//!
//! The emulated process has CAP_SYS_RAWIO only with
//! `MINIASYNC_DSA_EMULATE_RAWIO=1`, so on 6.9 and 6.16 `write(2)` is the
//! path unless that is set. Hiding BATCH is the kernel's doing: the
//! emulated device still executes a BATCH that reaches it through a
//! mapped portal.

use std::fmt;
use std::sync::Arc;

use super::{EmuConfig, EmuDevice};
use crate::mover::dsa::engine::{Engine, EngineOptions};
use crate::mover::dsa::hw::discovery::{self, WqConfig};
use crate::mover::dsa::hw::{self, CpuSupport, Route};

/// An idxd driver generation whose user interface the emulator
/// reproduces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kernel {
    /// 5.12 to 6.0, e.g. Ubuntu 22.04.
    K5_15,
    /// 6.1 to 6.9.0.
    K6_1,
    /// 6.9.1 (INTEL-SA-01084) to 6.15.
    K6_9,
    /// 6.16 and later.
    #[default]
    K6_16,
}

impl Kernel {
    /// Every generation, oldest first.
    pub const ALL: [Kernel; 4] = [Kernel::K5_15, Kernel::K6_1, Kernel::K6_9, Kernel::K6_16];

    /// `5.15`, `6.1`, `6.9` or `6.16`.
    pub fn parse(s: &str) -> Option<Kernel> {
        Kernel::ALL.into_iter().find(|k| k.to_string() == s.trim())
    }

    /// Whether the `op_cap` (and `op_config`) text hides BATCH on a device
    /// of `version`: from 6.9.1 on devices whose user submissions are not
    /// safe, narrowed in 6.16 to version 1 devices.
    pub fn hides_batch(self, version: u32) -> bool {
        match self {
            Kernel::K5_15 | Kernel::K6_1 => false,
            Kernel::K6_9 => true,
            Kernel::K6_16 => version < 0x200,
        }
    }

    /// Whether `write(2)` submits descriptors (6.9.1+).
    pub fn has_write(self) -> bool {
        self >= Kernel::K6_9
    }

    /// Whether `write(2)` takes a BATCH descriptor on a device of
    /// `version`: from 6.16, on version 2 and later.
    pub fn write_takes_batch(self, version: u32) -> bool {
        self >= Kernel::K6_16 && version >= 0x200
    }

    /// Whether WQs have `op_config` (6.1+, where WQCAP reports it).
    pub fn has_op_config(self) -> bool {
        self >= Kernel::K6_1
    }

    /// Whether WQs have `prs_disable` (6.4+).
    pub fn has_prs_disable(self) -> bool {
        self >= Kernel::K6_9
    }

    /// `mmap` of the portal: refused (EPERM) from 6.9.1 unless the process
    /// has CAP_SYS_RAWIO.
    pub fn map_portal(self, rawio: bool) -> Result<(), i32> {
        if self >= Kernel::K6_9 && !rawio {
            Err(libc::EPERM)
        } else {
            Ok(())
        }
    }

    /// The instructions of an emulated Intel host under this kernel:
    /// MOVDIR64B always; ENQCMD only where the kernel shows its flag
    /// (user PASIDs, 5.18+).
    pub fn cpu(self) -> CpuSupport {
        CpuSupport {
            movdir64b: true,
            enqcmd: self >= Kernel::K6_1,
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kernel::K5_15 => "5.15",
            Kernel::K6_1 => "6.1",
            Kernel::K6_9 => "6.9",
            Kernel::K6_16 => "6.16",
        })
    }
}

/// Opens an engine on an emulated WQ configured by `cfg`, as on a host
/// running `cfg.kernel`: the WQ's configuration is what discovery parses
/// from that generation's sysfs text, and the submission route is chosen
/// by the same rule as for a real portal (`force_write`, or
/// `cfg.write_path`, skips the mapping). The error says why the queue is
/// unusable.
pub fn open(cfg: EmuConfig, force_write: bool, opts: EngineOptions) -> Result<Engine, String> {
    let (wq, dev) = open_device(cfg, force_write)?;
    Ok(Engine::new(wq, dev, opts))
}

/// [`open`] without the engine: what discovery made of the WQ, and the
/// device with the route chosen (its `write_path` set when the route is
/// `write(2)`).
pub fn open_device(
    cfg: EmuConfig,
    force_write: bool,
) -> Result<(WqConfig, Arc<EmuDevice>), String> {
    let k = cfg.kernel;
    let tree = super::sysfs::EmuTree::new(&cfg, 0, 0);
    let (usable, rejected) = discovery::scan_source(&tree).select();
    let Some(wq) = usable.into_iter().next() else {
        let why: Vec<String> = rejected.iter().map(|r| r.to_string()).collect();
        return Err(format!(
            "emulated DSA work queue (kernel {k}) unusable: {}",
            why.join("; ")
        ));
    };
    let mut probed = None;
    let route = hw::choose_route(
        wq.mode,
        k.cpu(),
        force_write || cfg.write_path,
        || k.map_portal(cfg.rawio),
        || {
            let dev = EmuDevice::new(EmuConfig {
                write_path: true,
                ..cfg.clone()
            });
            let r = hw::probe_write(&|b| dev.write(b), hw::PROBE_TIMEOUT);
            probed = Some(dev);
            r
        },
    )
    .map_err(|why| format!("emulated DSA {} (kernel {k}): {why}", wq.name))?;
    let dev = match (route, probed) {
        (Route::Write, Some(dev)) => dev,
        (route, _) => EmuDevice::new(EmuConfig {
            write_path: route == Route::Write,
            ..cfg
        }),
    };
    Ok((wq, dev))
}
