//! Work-queue discovery through sysfs (DSA.md section 1).
//!
//! Reads `dsa<m>/` and `wq<m>.<n>/` attributes under the bus directory
//! (default `/sys/bus/dsa/devices`, or `$MINIASYNC_DSA_SYSFS`), picks the
//! usable WQs (device enabled, WQ enabled, WQ type `user`, known mode, a
//! character device under `/dev/dsa` or `$MINIASYNC_DSA_DEV`), and turns
//! each into the [`WqConfig`] the engine runs with. Nothing here opens a
//! device.
//!
//! The text is read as every kernel generation prints it (DSA.md 12.1):
//! `op_cap` in its three formats ([`OpCap::parse`]), the DSA 1.0 baseline
//! when it is missing or unreadable (said once on stderr); `op_config`
//! only where it exists (6.1+); `ats_disable` and `prs_disable` per WQ;
//! `numa_node` -1 (many VMs) meaning "any node". IAA devices (`iax<m>`)
//! share the bus and the `wq<m>.<n>` naming: their queues are listed and
//! skipped with that reason.
//!
//! Discovery reads through a [`Source`]: the directories ([`Paths`]) or
//! the emulator's in-memory tree of a kernel generation, so the emulated
//! queue is configured by this same parser.

use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

// `OpCap`, the operation bitmap this file parses from sysfs, is a hardware
// format (`hw/mod.rs`): the engine tests it on every operation.
use super::{gencap, opcode, OpCap};

/// Environment variable overriding the sysfs bus directory.
pub const SYSFS_ENV: &str = "MINIASYNC_DSA_SYSFS";
/// Environment variable overriding the character-device directory.
pub const DEV_ENV: &str = "MINIASYNC_DSA_DEV";
pub const DEFAULT_SYSFS: &str = "/sys/bus/dsa/devices";
pub const DEFAULT_DEV: &str = "/dev/dsa";

/// Where discovery looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub sysfs: PathBuf,
    pub dev: PathBuf,
}

impl Paths {
    /// The defaults, overridden by `MINIASYNC_DSA_SYSFS` / `MINIASYNC_DSA_DEV`.
    pub fn from_env() -> Paths {
        Paths::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same as [`from_env`](Self::from_env) with an explicit lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Paths {
        let pick = |k: &str, d: &str| {
            PathBuf::from(
                get(k)
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| d.to_string()),
            )
        };
        Paths {
            sysfs: pick(SYSFS_ENV, DEFAULT_SYSFS),
            dev: pick(DEV_ENV, DEFAULT_DEV),
        }
    }
}

/// What discovery reads: the entries of the bus directory, their
/// attributes, and the WQ device nodes.
pub trait Source {
    /// The names in the bus directory (`dsa0`, `wq0.0`, `iax1`, ...).
    fn entries(&self) -> Vec<String>;
    /// The text of attribute `name` of entry `entry`, trimmed; `None`
    /// when it does not exist or cannot be read.
    fn attr(&self, entry: &str, name: &str) -> Option<String>;
    /// The character device of WQ `wq`, and whether it exists.
    fn node(&self, wq: &str) -> (PathBuf, bool);
}

impl Source for Paths {
    fn entries(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.sysfs) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    fn attr(&self, entry: &str, name: &str) -> Option<String> {
        fs::read_to_string(self.sysfs.join(entry).join(name))
            .ok()
            .map(|s| s.trim().to_string())
    }

    fn node(&self, wq: &str) -> (PathBuf, bool) {
        let p = self.dev.join(wq);
        let exists = p.exists();
        (p, exists)
    }
}

/// Dedicated (MOVDIR64B, software flow control) or shared (ENQCMD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WqMode {
    Dedicated,
    Shared,
}

/// Parse a sysfs number: decimal, or hex with `0x`.
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The accelerators the idxd driver puts on the bus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceKind {
    /// `dsa<m>`: a Data Streaming Accelerator.
    #[default]
    Dsa,
    /// `iax<m>`: an In-Memory Analytics Accelerator, whose queues take
    /// IAA descriptors (64-byte records, other opcodes), never DSA's.
    Iax,
}

/// Attributes of one `dsa<m>` (or `iax<m>`) device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: String,
    pub kind: DeviceKind,
    pub id: u32,
    pub state: String,
    pub version: u32,
    /// -1 when the device has no NUMA affinity (many VMs) or the
    /// attribute is missing: "any node".
    pub numa_node: i32,
    pub max_transfer_size: u64,
    /// 0 when the attribute is absent (no batch support).
    pub max_batch_size: u32,
    pub gen_cap: u64,
    /// The DSA 1.0 baseline when `op_cap` is missing or unreadable
    /// (then `op_cap_note` says why).
    pub op_cap: OpCap,
    /// Why `op_cap` was replaced by the baseline, if it was.
    pub op_cap_note: Option<String>,
    pub pasid_enabled: bool,
}

/// Attributes of one `wq<m>.<n>` work queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WqInfo {
    pub name: String,
    pub dev_id: u32,
    pub wq_id: u32,
    pub state: String,
    /// `None` for an unknown mode string.
    pub mode: Option<WqMode>,
    /// Text before an optional `:` (`user`, `kernel`, `none`).
    pub wq_type: String,
    pub size: u32,
    pub threshold: u32,
    pub max_transfer_size: u64,
    pub max_batch_size: u32,
    pub block_on_fault: bool,
    /// `ats_disable`: the WQ's accesses are not translated through ATS.
    pub ats_disable: bool,
    /// `prs_disable` (6.4+): no page requests, which overrides
    /// `block_on_fault`.
    pub prs_disable: bool,
    pub priority: u32,
    /// `None` on kernels without per-WQ `op_config` (before 6.1), or
    /// when its text is unreadable (the device's `op_cap` then applies).
    pub op_config: Option<OpCap>,
    /// `<dev dir>/wq<m>.<n>`.
    pub dev_node: PathBuf,
    /// Whether `dev_node` exists.
    pub node_exists: bool,
}

/// Everything the engine needs about the WQ it drives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WqConfig {
    /// `wq<m>.<n>` (or `emu<k>` for an emulated queue).
    pub name: String,
    pub dev_node: PathBuf,
    pub mode: WqMode,
    /// WQ entries: the dedicated-WQ credit limit.
    pub size: u32,
    /// Shared WQ: entries usable through the limited portal.
    pub threshold: u32,
    /// Bytes per descriptor (WQ limit, capped by the device's).
    pub max_transfer_size: u64,
    /// Descriptors per batch; below 2 means no batches.
    pub max_batch_size: u32,
    /// The WQ may block on faults: `block_on_fault` and PRS not disabled
    /// (`prs_disable` overrides it).
    pub block_on_fault: bool,
    /// `ats_disable`: the device cannot cache translations for this WQ,
    /// so a page the process has not made present cannot be reported as
    /// a resumable page fault (see [`WqConfig::fault_note`]).
    pub ats_disabled: bool,
    /// `prs_disable`: the device cannot ask the OS to resolve a fault.
    /// Faults still come back as partial completions, which the engine
    /// resolves from the CPU (it never asks for block-on-fault).
    pub prs_disabled: bool,
    pub gen_cap: u64,
    /// Device `op_cap` restricted by the WQ's `op_config`.
    pub ops: OpCap,
    pub version: u32,
    /// -1: any node (the device reports no affinity).
    pub numa_node: i32,
    pub pasid_enabled: bool,
}

impl WqConfig {
    /// Combine a device and one of its WQs.
    pub fn from_sysfs(dev: &DeviceInfo, wq: &WqInfo) -> Option<WqConfig> {
        let mode = wq.mode?;
        let mut mts = wq.max_transfer_size;
        if dev.max_transfer_size != 0 && (mts == 0 || dev.max_transfer_size < mts) {
            mts = dev.max_transfer_size;
        }
        let mut mbs = wq.max_batch_size;
        if dev.max_batch_size != 0 && dev.max_batch_size < mbs {
            mbs = dev.max_batch_size;
        }
        Some(WqConfig {
            name: wq.name.clone(),
            dev_node: wq.dev_node.clone(),
            mode,
            size: wq.size,
            threshold: wq.threshold,
            max_transfer_size: mts,
            max_batch_size: mbs,
            block_on_fault: wq.block_on_fault && !wq.prs_disable,
            ats_disabled: wq.ats_disable,
            prs_disabled: wq.prs_disable,
            gen_cap: dev.gen_cap,
            ops: match wq.op_config {
                Some(c) => dev.op_cap.and(c),
                None => dev.op_cap,
            },
            version: dev.version,
            numa_node: dev.numa_node,
            pasid_enabled: dev.pasid_enabled,
        })
    }

    /// Whether BATCH descriptors may be used (op_cap bit 1, room for 2).
    pub fn batch_supported(&self) -> bool {
        self.ops.has(opcode::BATCH) && self.max_batch_size >= 2
    }

    /// Whether the device copies overlapping buffers (GENCAP bit 1).
    pub fn overlap_supported(&self) -> bool {
        self.gen_cap & gencap::OVERLAP_COPY != 0
    }

    /// Whether DRDBK makes writes durable (GENCAP bit 8).
    pub fn readback_supported(&self) -> bool {
        self.gen_cap & gencap::DEST_READBACK != 0
    }

    /// What a user of this WQ should know about page faults, if anything
    /// differs from the normal case (ATS and PRS on, faults resumed).
    /// With ATS disabled the device's accesses are translated by the
    /// IOMMU one by one and a missing page comes back as a translation
    /// error rather than a resumable page fault: the queue is used, but
    /// operations on memory the process has not touched fail on the
    /// device (AUTO finishes them on the CPU; HARDWARE reports
    /// `VDM_ERROR_JOB_CORRUPTED`).
    pub fn fault_note(&self) -> Option<String> {
        self.ats_disabled.then(|| {
            format!(
                "{}: ats_disable is 1, so the device cannot resume page faults on this queue: \
                 buffers must be resident (touched) before an operation, or it fails on the device",
                self.name
            )
        })
    }
}

/// The result of a sysfs scan.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    pub devices: Vec<DeviceInfo>,
    pub wqs: Vec<WqInfo>,
}

/// Why a WQ was not selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub wq: String,
    pub why: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.wq, self.why)
    }
}

fn num(src: &dyn Source, e: &str, name: &str) -> Option<u64> {
    src.attr(e, name).and_then(|s| parse_u64(&s))
}

fn small(src: &dyn Source, e: &str, name: &str) -> u32 {
    num(src, e, name).map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// `dsa3` -> (DSA, 3), `iax1` -> (IAA, 1); `wq3.1` -> (3, 1). The idxd
/// driver numbers DSA and IAA devices from one counter, so a WQ's device
/// number names exactly one of them.
fn parse_dev_name(n: &str) -> Option<(DeviceKind, u32)> {
    let (kind, id) = if let Some(id) = n.strip_prefix("dsa") {
        (DeviceKind::Dsa, id)
    } else {
        (DeviceKind::Iax, n.strip_prefix("iax")?)
    };
    Some((kind, id.parse().ok()?))
}

fn parse_wq_name(n: &str) -> Option<(u32, u32)> {
    let (d, w) = n.strip_prefix("wq")?.split_once('.')?;
    Some((d.parse().ok()?, w.parse().ok()?))
}

/// Set once the baseline warning was printed: it is said once per
/// process.
static BASELINE_SAID: AtomicBool = AtomicBool::new(false);

/// The device's `op_cap`, or the DSA 1.0 baseline and why.
fn read_op_cap(src: &dyn Source, e: &str) -> (OpCap, Option<String>) {
    let note = match src.attr(e, "op_cap") {
        Some(t) => match OpCap::parse(&t) {
            Some(c) => return (c, None),
            None => format!("{e}: op_cap {t:?} is in no format a kernel prints"),
        },
        None => format!("{e}: op_cap is missing"),
    };
    let note = format!(
        "{note}; assuming the DSA 1.0 operations (NOOP, BATCH, DRAIN, MEMMOVE, MEMFILL, CFLUSH)"
    );
    if !BASELINE_SAID.swap(true, Ordering::Relaxed) {
        crate::log::warn(&note);
    }
    (OpCap::dsa1_baseline(), Some(note))
}

fn read_device(src: &dyn Source, e: &str, kind: DeviceKind, id: u32) -> DeviceInfo {
    let (op_cap, op_cap_note) = match kind {
        DeviceKind::Dsa => read_op_cap(src, e),
        // IAA queues are never used: their opcodes do not matter.
        DeviceKind::Iax => (OpCap::default(), None),
    };
    DeviceInfo {
        name: e.to_string(),
        kind,
        id,
        state: src.attr(e, "state").unwrap_or_default(),
        version: small(src, e, "version"),
        numa_node: src
            .attr(e, "numa_node")
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1),
        max_transfer_size: num(src, e, "max_transfer_size").unwrap_or(0),
        max_batch_size: small(src, e, "max_batch_size"),
        gen_cap: num(src, e, "gen_cap").unwrap_or(0),
        op_cap,
        op_cap_note,
        pasid_enabled: num(src, e, "pasid_enabled") == Some(1),
    }
}

fn read_wq(src: &dyn Source, e: &str, ids: (u32, u32)) -> WqInfo {
    let mode = match src.attr(e, "mode").as_deref() {
        Some("dedicated") => Some(WqMode::Dedicated),
        Some("shared") => Some(WqMode::Shared),
        _ => None,
    };
    let ty = src.attr(e, "type").unwrap_or_default();
    let (dev_node, node_exists) = src.node(e);
    WqInfo {
        name: e.to_string(),
        dev_id: ids.0,
        wq_id: ids.1,
        state: src.attr(e, "state").unwrap_or_default(),
        mode,
        wq_type: ty.split(':').next().unwrap_or("").to_string(),
        size: small(src, e, "size"),
        threshold: small(src, e, "threshold"),
        max_transfer_size: num(src, e, "max_transfer_size").unwrap_or(0),
        max_batch_size: small(src, e, "max_batch_size"),
        block_on_fault: num(src, e, "block_on_fault") == Some(1),
        ats_disable: num(src, e, "ats_disable") == Some(1),
        prs_disable: num(src, e, "prs_disable") == Some(1),
        priority: small(src, e, "priority"),
        op_config: src.attr(e, "op_config").and_then(|s| OpCap::parse(&s)),
        dev_node,
        node_exists,
    }
}

/// Scan the bus directory. A missing directory is an empty result, not an
/// error: it just means no DSA driver is loaded.
pub fn scan(paths: &Paths) -> Discovery {
    scan_source(paths)
}

/// Scan any [`Source`].
pub fn scan_source(src: &dyn Source) -> Discovery {
    let mut d = Discovery::default();
    let mut names = src.entries();
    names.sort();
    for n in &names {
        if let Some((kind, id)) = parse_dev_name(n) {
            d.devices.push(read_device(src, n, kind, id));
        } else if let Some(ids) = parse_wq_name(n) {
            d.wqs.push(read_wq(src, n, ids));
        }
    }
    d.devices.sort_by_key(|x| x.id);
    d.wqs.sort_by_key(|w| (w.dev_id, w.wq_id));
    d
}

impl Discovery {
    /// Usable WQs in preference order (higher priority first, then device
    /// and WQ number), plus the reason each other WQ was skipped.
    pub fn select(&self) -> (Vec<WqConfig>, Vec<Rejected>) {
        let mut ok: Vec<(u32, WqConfig)> = Vec::new();
        let mut rejected = Vec::new();
        for wq in &self.wqs {
            let reject = |why: String| Rejected {
                wq: wq.name.clone(),
                why,
            };
            let Some(dev) = self.devices.iter().find(|d| d.id == wq.dev_id) else {
                rejected.push(reject(format!("no device dsa{}", wq.dev_id)));
                continue;
            };
            let why = if dev.kind == DeviceKind::Iax {
                Some(format!(
                    "belongs to {}, an IAA (In-Memory Analytics Accelerator) device, \
                     which does not run DSA operations",
                    dev.name
                ))
            } else if dev.state != "enabled" {
                Some(format!("device {} is {}", dev.name, or_unknown(&dev.state)))
            } else if wq.state != "enabled" {
                Some(format!("state is {}", or_unknown(&wq.state)))
            } else if wq.wq_type != "user" {
                Some(format!("type is {}, not user", or_unknown(&wq.wq_type)))
            } else if wq.mode.is_none() {
                Some("unknown mode".to_string())
            } else if wq.size == 0 {
                Some("size is 0".to_string())
            } else if wq.max_transfer_size == 0 && dev.max_transfer_size == 0 {
                Some("max_transfer_size is 0".to_string())
            } else if !wq.node_exists {
                Some(format!("{} does not exist", wq.dev_node.display()))
            } else {
                None
            };
            match (why, WqConfig::from_sysfs(dev, wq)) {
                (None, Some(cfg)) => ok.push((wq.priority, cfg)),
                (Some(w), _) => rejected.push(reject(w)),
                (None, None) => rejected.push(reject("unusable".to_string())),
            }
        }
        ok.sort_by_key(|x| std::cmp::Reverse(x.0));
        (ok.into_iter().map(|(_, c)| c).collect(), rejected)
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

#[cfg(test)]
#[path = "../tests/discovery_tests.rs"]
mod tests;
