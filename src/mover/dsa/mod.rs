//! The DSA mover's one home: the mover (`libminiasync-vdm-dml`'s
//! SOFTWARE, HARDWARE and AUTO paths), the engine that drives a work queue,
//! the hardware access, and the emulated device.
//!
//! - [`mover`]: the `struct vdm` behind `data_mover_dml_*`.
//! - [`engine`]: [`Engine`], which runs operations on one WQ: submission and
//!   credits, batches, completion handling, page-fault resume, splitting.
//! - [`hw`]: the hardware formats and constants (descriptors, completion
//!   records; DSA.md sections 3-4, checked against `linux/idxd.h` by a
//!   test), sysfs discovery (section 1) and the [`Portal`] trait with the
//!   real MOVDIR64B / ENQCMD / `write(2)` portal (section 2).
//! - [`emu`]: the emulated work queue, another [`Portal`]. It depends on
//!   the engine and the hardware formats; neither depends on it.
//!
//! [`open_from_env`] picks the backend: the emulated WQ ([`emu`]) when
//! `MINIASYNC_DSA_EMULATE=1` (configured, like a real one, by discovery
//! on the sysfs text of the emulated kernel generation), otherwise the
//! first usable hardware WQ found under `$MINIASYNC_DSA_SYSFS`
//! (`/sys/bus/dsa/devices`) with its node under `$MINIASYNC_DSA_DEV`
//! (`/dev/dsa`). Either way the submission route is
//! [`hw::choose_route`]'s: the mapped portal, else a probed `write(2)`.
//! `MINIASYNC_DSA_FORCE_WRITE=1` submits through `write(2)` even when
//! the portal could be mapped; `MINIASYNC_DSA_BATCH=0` turns batching
//! off; `MINIASYNC_DSA_TIMEOUT_MS` bounds every wait for the device
//! (`engine/timeout.rs`).

pub mod emu;
pub mod engine;
pub mod hw;
pub mod mover;

// What the mover (mover.rs) uses of the engine.
pub use engine::op::Remainder;
pub use engine::{BatchPolicy, Engine, EngineOptions, Poll, Release, StartError};
pub use hw::discovery;

use std::sync::Arc;

/// Environment switch: `1` submits through `write(2)` only.
pub const FORCE_WRITE_ENV: &str = "MINIASYNC_DSA_FORCE_WRITE";
/// Environment switch: `0` disables BATCH descriptors.
pub const BATCH_ENV: &str = "MINIASYNC_DSA_BATCH";
/// Environment variable: how long (ms) an operation waits for the device
/// without progress before it fails; 0, garbage or unset: the default
/// (5000).
pub const TIMEOUT_ENV: &str = "MINIASYNC_DSA_TIMEOUT_MS";
/// Largest accepted `MINIASYNC_DSA_TIMEOUT_MS`: one day.
const MAX_TIMEOUT_MS: u64 = 86_400_000;

impl EngineOptions {
    /// Defaults adjusted by `MINIASYNC_DSA_BATCH` and
    /// `MINIASYNC_DSA_TIMEOUT_MS`.
    pub fn from_env() -> EngineOptions {
        EngineOptions::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same with an explicit lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> EngineOptions {
        let mut o = EngineOptions::default();
        if get(BATCH_ENV).is_some_and(|v| v.trim() == "0") {
            o.batch = BatchPolicy::Off;
        }
        if let Some(ms) = get(TIMEOUT_ENV)
            .and_then(|v| discovery::parse_u64(&v))
            .filter(|&ms| ms > 0)
        {
            o.timeout = std::time::Duration::from_millis(ms.min(MAX_TIMEOUT_MS));
        }
        o
    }
}

/// Open an engine on the emulated WQ (`MINIASYNC_DSA_EMULATE=1`) or on the
/// first usable hardware WQ. The error explains, in one line, why no WQ
/// could be used.
pub fn open_from_env(opts: EngineOptions) -> Result<Engine, String> {
    let force_write = std::env::var(FORCE_WRITE_ENV).is_ok_and(|v| v.trim() == "1");
    if emu::enabled_from_env() {
        return emu::open(emu::EmuConfig::from_env(), force_write, opts);
    }
    let paths = discovery::Paths::from_env();
    let found = discovery::scan(&paths);
    if found.wqs.is_empty() {
        return Err(format!("no DSA work queue under {}", paths.sysfs.display()));
    }
    let (usable, rejected) = found.select();
    let mut why: Vec<String> = rejected.iter().map(|r| r.to_string()).collect();
    let cpu = hw::cpu_support();
    for cfg in usable {
        match hw::HwPortal::open_with(&cfg.dev_node, cfg.mode, cpu, force_write, hw::PROBE_TIMEOUT)
        {
            Ok(p) => {
                if let Some(note) = cfg.fault_note() {
                    crate::log::warn(&note);
                }
                let p = p.watching(&paths.sysfs, &cfg.name);
                return Ok(Engine::new(cfg, Arc::new(p), opts));
            }
            Err(e) => why.push(format!("{}: {}: {e}", cfg.name, cfg.dev_node.display())),
        }
    }
    Err(format!("no usable DSA work queue ({})", why.join("; ")))
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests;
