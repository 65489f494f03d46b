//! DSA engine: descriptors, completion records, discovery, portals, submission.
//!
//! - [`descriptor`], [`completion`]: the hardware formats and constants
//!   (DSA.md sections 3-4), checked against `linux/idxd.h` by a test.
//! - [`discovery`]: sysfs scan and WQ selection (section 1).
//! - [`portal`]: the [`Portal`] trait and the real MOVDIR64B / ENQCMD /
//!   `write(2)` portal (section 2).
//! - [`credits`], [`batch`], [`op`], [`fault`]: flow control, batches,
//!   splitting and partial-completion bookkeeping, page touching.
//! - [`engine`]: [`Engine`], which runs operations on one WQ.
//!
//! [`open_from_env`] picks the backend: the emulated WQ
//! (`crate::mover::emu`) when `MINIASYNC_DSA_EMULATE=1`, otherwise the
//! first usable hardware WQ found under `$MINIASYNC_DSA_SYSFS`
//! (`/sys/bus/dsa/devices`) with its node under `$MINIASYNC_DSA_DEV`
//! (`/dev/dsa`). `MINIASYNC_DSA_FORCE_WRITE=1` submits through `write(2)`
//! even when the portal could be mapped; `MINIASYNC_DSA_BATCH=0` turns
//! batching off.

pub mod batch;
pub mod completion;
pub mod credits;
pub mod descriptor;
pub mod discovery;
pub mod engine;
pub mod fault;
pub mod op;
pub mod portal;

pub use descriptor::{Descriptor, Hints};
pub use engine::{
    BatchPolicy, Caps, Engine, EngineOptions, FailReason, Failure, OpHandle, Poll, StartError,
    Stats,
};
pub use op::{Op, OpKind, Remainder};
pub use portal::Portal;

use std::sync::Arc;

use crate::mover::emu;

/// Environment switch: `1` submits through `write(2)` only.
pub const FORCE_WRITE_ENV: &str = "MINIASYNC_DSA_FORCE_WRITE";
/// Environment switch: `0` disables BATCH descriptors.
pub const BATCH_ENV: &str = "MINIASYNC_DSA_BATCH";

impl EngineOptions {
    /// Defaults adjusted by `MINIASYNC_DSA_BATCH`.
    pub fn from_env() -> EngineOptions {
        let mut o = EngineOptions::default();
        if std::env::var(BATCH_ENV).is_ok_and(|v| v.trim() == "0") {
            o.batch = BatchPolicy::Off;
        }
        o
    }
}

/// Open an engine on the emulated WQ (`MINIASYNC_DSA_EMULATE=1`) or on the
/// first usable hardware WQ. The error explains, in one line, why no WQ
/// could be used.
pub fn open_from_env(opts: EngineOptions) -> Result<Engine, String> {
    if emu::enabled_from_env() {
        let dev = emu::EmuDevice::from_env();
        let cfg = dev.wq_config();
        return Ok(Engine::new(cfg, dev, opts));
    }
    let paths = discovery::Paths::from_env();
    let found = discovery::scan(&paths);
    if found.wqs.is_empty() {
        return Err(format!("no DSA work queue under {}", paths.sysfs.display()));
    }
    let (usable, rejected) = found.select();
    let force_write = std::env::var(FORCE_WRITE_ENV).is_ok_and(|v| v.trim() == "1");
    let mut why: Vec<String> = rejected.iter().map(|r| r.to_string()).collect();
    for cfg in usable {
        match portal::HwPortal::open_with(
            &cfg.dev_node,
            cfg.mode,
            portal::cpu_support(),
            force_write,
        ) {
            Ok(p) => return Ok(Engine::new(cfg, Arc::new(p), opts)),
            Err(e) => why.push(format!("{}: {}: {e}", cfg.name, cfg.dev_node.display())),
        }
    }
    Err(format!("no usable DSA work queue ({})", why.join("; ")))
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests;
