//! The sysfs text of an emulated device (DSA.md 8.9, 12.1), as the kernel
//! generation of its [`EmuConfig`] prints it: `dsa<m>/` with `state`,
//! `version`, `numa_node`, `max_transfer_size`, `max_batch_size`,
//! `gen_cap`, `op_cap`, `pasid_enabled`, and `wq<m>.<n>/` with `state`,
//! `mode`, `type`, `size`, `threshold`, `max_transfer_size`,
//! `max_batch_size`, `block_on_fault`, `ats_disable`, `priority`, `name`,
//! and where the generation has them `op_config`, `prs_disable` and
//! `driver_name`.
//!
//! [`EmuTree`] holds it in memory as a discovery [`Source`]: opening the
//! emulated WQ runs the real parser on it (`kernel.rs`). Test builds can
//! also write it to a directory, with the `/dev/dsa/wq<m>.<n>` node as an
//! empty file, to test discovery on files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{EmuConfig, Kernel};
use crate::mover::dsa::hw::discovery::{Source, WqMode};
use crate::mover::dsa::hw::{opcode, OpCap};

/// `op_cap` / `op_config` text as `kernel` prints it: four space-separated
/// `%#llx` 64-bit words, least significant first (5.12 to 6.0; the
/// kernel's `%#llx` prints 0 as `0x0`), or eight comma-separated 32-bit
/// words, most significant first (6.1+).
pub fn op_cap_text(kernel: Kernel, c: &OpCap) -> String {
    if kernel < Kernel::K6_1 {
        let words: Vec<String> = c.0.iter().map(|w| format!("{w:#x}")).collect();
        return words.join(" ");
    }
    let mut words = Vec::new();
    for i in (0..8).rev() {
        let w = (c.0[i / 2] >> (32 * (i % 2))) as u32;
        words.push(format!("{w:08x}"));
    }
    words.join(",")
}

/// One device and one WQ of an emulated host, as sysfs text.
pub struct EmuTree {
    entries: BTreeMap<String, BTreeMap<&'static str, String>>,
}

impl EmuTree {
    /// `dsa<dev>/` and `wq<dev>.<wq>/` for `cfg`.
    pub fn new(cfg: &EmuConfig, dev: u32, wq: u32) -> EmuTree {
        let k = cfg.kernel;
        let shown = if k.hides_batch(cfg.version) {
            cfg.ops.without(opcode::BATCH)
        } else {
            cfg.ops
        };
        let mut d = BTreeMap::new();
        d.insert("state", "enabled".to_string());
        d.insert("version", format!("{:#x}", cfg.version));
        d.insert("numa_node", "0".to_string());
        d.insert("max_transfer_size", (1u64 << 31).to_string());
        d.insert("max_batch_size", "1024".to_string());
        d.insert("gen_cap", format!("{:#x}", cfg.gen_cap));
        d.insert("op_cap", op_cap_text(k, &shown));
        d.insert("pasid_enabled", "1".to_string());
        d.insert("max_work_queues", "8".to_string());
        let mut w = BTreeMap::new();
        w.insert("state", "enabled".to_string());
        let mode = match cfg.mode {
            WqMode::Shared => "shared",
            WqMode::Dedicated => "dedicated",
        };
        w.insert("mode", mode.to_string());
        w.insert("type", "user".to_string());
        w.insert("size", cfg.wq_size.to_string());
        w.insert("threshold", cfg.threshold.to_string());
        w.insert("max_transfer_size", cfg.max_transfer_size.to_string());
        w.insert("max_batch_size", cfg.max_batch_size.to_string());
        w.insert("block_on_fault", u8::from(cfg.block_on_fault).to_string());
        w.insert("ats_disable", "0".to_string());
        w.insert("priority", "10".to_string());
        w.insert("name", "app1".to_string());
        if k.has_op_config() {
            w.insert("op_config", op_cap_text(k, &shown));
        }
        if k.has_prs_disable() {
            w.insert("prs_disable", "0".to_string());
            w.insert("driver_name", "user".to_string());
        }
        let mut entries = BTreeMap::new();
        entries.insert(format!("dsa{dev}"), d);
        entries.insert(format!("wq{dev}.{wq}"), w);
        EmuTree { entries }
    }

    /// Writes the tree under `sysfs` (one directory per entry, one file
    /// per attribute, with a newline as the kernel ends them) and each
    /// WQ's node under `dev_dir`.
    #[cfg(test)]
    pub fn write(&self, sysfs: &std::path::Path, dev_dir: &std::path::Path) -> std::io::Result<()> {
        for (entry, attrs) in &self.entries {
            let dir = sysfs.join(entry);
            std::fs::create_dir_all(&dir)?;
            for (name, text) in attrs {
                std::fs::write(dir.join(name), format!("{text}\n"))?;
            }
            if entry.starts_with("wq") {
                std::fs::create_dir_all(dev_dir)?;
                std::fs::write(dev_dir.join(entry), b"")?;
            }
        }
        Ok(())
    }
}

impl Source for EmuTree {
    fn entries(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    fn attr(&self, entry: &str, name: &str) -> Option<String> {
        self.entries.get(entry)?.get(name).cloned()
    }

    /// The emulated node exists for every WQ of the tree.
    fn node(&self, wq: &str) -> (PathBuf, bool) {
        (
            PathBuf::from("/dev/dsa").join(wq),
            self.entries.contains_key(wq),
        )
    }
}

/// Writes `dsa<dev>/` and `wq<dev>.<wq>/` for `cfg` under `sysfs`, and the
/// device node under `dev_dir` (test builds).
#[cfg(test)]
pub fn write_tree(
    sysfs: &std::path::Path,
    dev_dir: &std::path::Path,
    cfg: &EmuConfig,
    dev: u32,
    wq: u32,
) -> std::io::Result<()> {
    EmuTree::new(cfg, dev, wq).write(sysfs, dev_dir)
}
