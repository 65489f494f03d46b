//! A fake sysfs tree for an emulated device (DSA.md 8.9), so discovery is
//! tested on the same attributes the kernel exposes: `dsa0/` and
//! `wq0.0/` with `state`, `mode`, `type`, `size`, `threshold`,
//! `max_transfer_size`, `max_batch_size`, `block_on_fault`, `numa_node`,
//! `gen_cap`, `op_cap`/`op_config`, `version`, `pasid_enabled`, plus the
//! `/dev/dsa/wq0.0` node (an empty file).

use std::fs;
use std::io;
use std::path::Path;

use super::EmuConfig;
use crate::mover::dsa::hw::discovery::WqMode;
use crate::mover::dsa::hw::OpCap;

/// `op_cap` text as the kernel prints it: eight 32-bit hex words, most
/// significant first.
pub fn op_cap_text(c: &OpCap) -> String {
    let mut words = Vec::new();
    for i in (0..8).rev() {
        let w = (c.0[i / 2] >> (32 * (i % 2))) as u32;
        words.push(format!("{w:08x}"));
    }
    words.join(",")
}

fn put(dir: &Path, name: &str, value: impl std::fmt::Display) -> io::Result<()> {
    fs::write(dir.join(name), format!("{value}\n"))
}

/// Write `dsa<dev>/` and `wq<dev>.<wq>/` for `cfg` under `sysfs`, and the
/// device node under `dev_dir`.
pub fn write_tree(
    sysfs: &Path,
    dev_dir: &Path,
    cfg: &EmuConfig,
    dev: u32,
    wq: u32,
) -> io::Result<()> {
    let d = sysfs.join(format!("dsa{dev}"));
    fs::create_dir_all(&d)?;
    put(&d, "state", "enabled")?;
    put(&d, "version", format!("{:#x}", cfg.version))?;
    put(&d, "numa_node", 0)?;
    put(&d, "max_transfer_size", 1u64 << 31)?;
    put(&d, "max_batch_size", 1024)?;
    put(&d, "gen_cap", format!("{:#x}", cfg.gen_cap))?;
    put(&d, "op_cap", op_cap_text(&cfg.ops))?;
    put(&d, "pasid_enabled", 1)?;
    put(&d, "max_work_queues", 8)?;
    let name = format!("wq{dev}.{wq}");
    let w = sysfs.join(&name);
    fs::create_dir_all(&w)?;
    put(&w, "state", "enabled")?;
    put(
        &w,
        "mode",
        if cfg.mode == WqMode::Shared {
            "shared"
        } else {
            "dedicated"
        },
    )?;
    put(&w, "type", "user")?;
    put(&w, "size", cfg.wq_size)?;
    put(&w, "threshold", cfg.threshold)?;
    put(&w, "max_transfer_size", cfg.max_transfer_size)?;
    put(&w, "max_batch_size", cfg.max_batch_size)?;
    put(&w, "block_on_fault", u8::from(cfg.block_on_fault))?;
    put(&w, "priority", 10)?;
    put(&w, "op_config", op_cap_text(&cfg.ops))?;
    put(&w, "name", "app1")?;
    fs::create_dir_all(dev_dir)?;
    fs::write(dev_dir.join(&name), b"")?;
    Ok(())
}
