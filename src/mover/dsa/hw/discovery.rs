//! Work-queue discovery through sysfs (DSA.md section 1).
//!
//! Reads `dsa<m>/` and `wq<m>.<n>/` attributes under the bus directory
//! (default `/sys/bus/dsa/devices`, or `$MINIASYNC_DSA_SYSFS`), picks the
//! usable WQs (device enabled, WQ enabled, WQ type `user`, known mode, a
//! character device under `/dev/dsa` or `$MINIASYNC_DSA_DEV`), and turns
//! each into the [`WqConfig`] the engine runs with. Nothing here opens a
//! device.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

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

/// Attributes of one `dsa<m>` device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: String,
    pub id: u32,
    pub state: String,
    pub version: u32,
    pub numa_node: i32,
    pub max_transfer_size: u64,
    /// 0 when the attribute is absent (no batch support).
    pub max_batch_size: u32,
    pub gen_cap: u64,
    pub op_cap: OpCap,
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
    pub priority: u32,
    /// `None` on kernels without per-WQ `op_config`.
    pub op_config: Option<OpCap>,
    /// `<dev dir>/wq<m>.<n>`.
    pub dev_node: PathBuf,
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
    pub block_on_fault: bool,
    pub gen_cap: u64,
    /// Device `op_cap` restricted by the WQ's `op_config`.
    pub ops: OpCap,
    pub version: u32,
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
            block_on_fault: wq.block_on_fault,
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

fn attr(dir: &Path, name: &str) -> Option<String> {
    fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

fn num(dir: &Path, name: &str) -> Option<u64> {
    attr(dir, name).and_then(|s| parse_u64(&s))
}

fn small(dir: &Path, name: &str) -> u32 {
    num(dir, name).map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// `dsa3` -> 3, `wq3.1` -> (3, 1).
fn parse_dev_name(n: &str) -> Option<u32> {
    n.strip_prefix("dsa")?.parse().ok()
}

fn parse_wq_name(n: &str) -> Option<(u32, u32)> {
    let (d, w) = n.strip_prefix("wq")?.split_once('.')?;
    Some((d.parse().ok()?, w.parse().ok()?))
}

fn read_device(dir: &Path, name: &str, id: u32) -> DeviceInfo {
    DeviceInfo {
        name: name.to_string(),
        id,
        state: attr(dir, "state").unwrap_or_default(),
        version: small(dir, "version"),
        numa_node: attr(dir, "numa_node")
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1),
        max_transfer_size: num(dir, "max_transfer_size").unwrap_or(0),
        max_batch_size: small(dir, "max_batch_size"),
        gen_cap: num(dir, "gen_cap").unwrap_or(0),
        op_cap: attr(dir, "op_cap")
            .and_then(|s| OpCap::parse(&s))
            .unwrap_or_default(),
        pasid_enabled: num(dir, "pasid_enabled") == Some(1),
    }
}

fn read_wq(dir: &Path, name: &str, ids: (u32, u32), dev_dir: &Path) -> WqInfo {
    let mode = match attr(dir, "mode").as_deref() {
        Some("dedicated") => Some(WqMode::Dedicated),
        Some("shared") => Some(WqMode::Shared),
        _ => None,
    };
    let ty = attr(dir, "type").unwrap_or_default();
    WqInfo {
        name: name.to_string(),
        dev_id: ids.0,
        wq_id: ids.1,
        state: attr(dir, "state").unwrap_or_default(),
        mode,
        wq_type: ty.split(':').next().unwrap_or("").to_string(),
        size: small(dir, "size"),
        threshold: small(dir, "threshold"),
        max_transfer_size: num(dir, "max_transfer_size").unwrap_or(0),
        max_batch_size: small(dir, "max_batch_size"),
        block_on_fault: num(dir, "block_on_fault") == Some(1),
        priority: small(dir, "priority"),
        op_config: attr(dir, "op_config").and_then(|s| OpCap::parse(&s)),
        dev_node: dev_dir.join(name),
    }
}

/// Scan the bus directory. A missing directory is an empty result, not an
/// error: it just means no DSA driver is loaded.
pub fn scan(paths: &Paths) -> Discovery {
    let mut d = Discovery::default();
    let Ok(entries) = fs::read_dir(&paths.sysfs) else {
        return d;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for n in &names {
        let dir = paths.sysfs.join(n);
        if let Some(id) = parse_dev_name(n) {
            d.devices.push(read_device(&dir, n, id));
        } else if let Some(ids) = parse_wq_name(n) {
            d.wqs.push(read_wq(&dir, n, ids, &paths.dev));
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
            let why = if dev.state != "enabled" {
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
            } else if !wq.dev_node.exists() {
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
