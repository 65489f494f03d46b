//! Emulated DSA work queue (DSA.md section 8).
//!
//! An in-process model of one DSA work queue behind the same [`Portal`]
//! trait as the real portal, so every engine path runs without hardware:
//! a bounded queue that silently drops descriptors submitted while full
//! (dedicated mode, recorded in a SWERROR-like record) or answers "retry"
//! (shared mode); engine threads that pull FIFO and complete out of order
//! after random delays; descriptor validation with the real status codes;
//! real memory effects; page-fault partial completion where an SVA device
//! would fault (`pagemap.rs`: a page-table entry not present, as for
//! memory mapped but never touched, or read-only for a write, as for the
//! zero page and copy-on-write pages) or at injected random offsets, the
//! address reported exactly, by page or masked, at a configurable cost;
//! descending memmove; BATCH, DRAIN and NOOP; completion records written
//! fields first and status last, element records of a batch made visible
//! before or after the batch record (DSA.md 12.3: no order is
//! guaranteed); and the kernel `write(2)` submission path's checks. It
//! also checks for driver bugs that no device reports (a descriptor
//! overfilling a dedicated WQ, two descriptors in the device naming one
//! completion record, a destination readback asked for data that cache
//! control keeps in the LLC): tests assert none happens, and with `STRICT`
//! the process aborts.
//!
//! It is used only when `MINIASYNC_DSA_EMULATE=1` (or built explicitly by
//! tests through [`EmuDevice::new`]); without it, no emulation is ever
//! used, hardware or not. [`open`] opens it as a process opens a real WQ
//! on the chosen kernel generation: discovery parses the generation's
//! sysfs text, and the mapped portal or `write(2)` is chosen by the real
//! portal's rule (`kernel.rs`). Options (environment, read when a mover
//! opens its engine):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `MINIASYNC_DSA_EMULATE` | unset | `1` selects the emulated WQ |
//! | `MINIASYNC_DSA_EMULATE_MODE` | `dedicated` | or `shared` |
//! | `MINIASYNC_DSA_EMULATE_WQ_SIZE` | 32 | WQ entries (1..=4096) |
//! | `MINIASYNC_DSA_EMULATE_THRESHOLD` | size - 1 | shared mode: limited-portal threshold |
//! | `MINIASYNC_DSA_EMULATE_ENGINES` | 2 | engine threads (1..=16) |
//! | `MINIASYNC_DSA_EMULATE_MAX_TRANSFER` | 2097152 | WQ max_transfer_size (bytes) |
//! | `MINIASYNC_DSA_EMULATE_MAX_BATCH` | 32 | WQ max_batch_size |
//! | `MINIASYNC_DSA_EMULATE_NO_BATCH` | 0 | `1` hides BATCH from op_cap |
//! | `MINIASYNC_DSA_EMULATE_GENCAP` | 0x40915f0107 | GENCAP (overlap, CC, readback) |
//! | `MINIASYNC_DSA_EMULATE_VERSION` | 0x100 | device version |
//! | `MINIASYNC_DSA_EMULATE_FAULT_RATE` | 0 | probability (0..=1) that a descriptor faults at a random offset |
//! | `MINIASYNC_DSA_EMULATE_DELAY_US` | 0 | max random delay per descriptor (µs) |
//! | `MINIASYNC_DSA_EMULATE_STALL` | 0 | `1`: engines wait until the WQ is full or idle for 2 ms |
//! | `MINIASYNC_DSA_EMULATE_WRITE` | 0 | `1`: submit through the emulated `write(2)` (as `MINIASYNC_DSA_FORCE_WRITE=1`) |
//! | `MINIASYNC_DSA_EMULATE_KERNEL` | `6.16` | kernel generation: `5.15`, `6.1`, `6.9` or `6.16` (sysfs text, `mmap`/`write(2)` rules; `kernel.rs`) |
//! | `MINIASYNC_DSA_EMULATE_RAWIO` | 0 | `1`: the process has CAP_SYS_RAWIO (6.9+ then maps the portal) |
//! | `MINIASYNC_DSA_EMULATE_HOSTILE` | 0 | `1`: completion records written slowly, garbage first |
//! | `MINIASYNC_DSA_EMULATE_BATCH_ORDER` | `random` | when element records become visible: `elements-first` (each as its element ends, the batch record last), `batch-first` (the batch record first, every element record up to 50 µs later), `random` (per element, either) |
//! | `MINIASYNC_DSA_EMULATE_SEED` | 1 | random seed |
//! | `MINIASYNC_DSA_EMULATE_STRICT` | 1 | `1`: a driver bug aborts the process (a dropped descriptor, two descriptors in the device naming one completion record, DRDBK with CC) |
//! | `MINIASYNC_DSA_EMULATE_HALT_AFTER` | unset | the device halts when it takes descriptor N+1: no more records, its `state` reads `halted`, `poll(2)` reports the error |
//! | `MINIASYNC_DSA_EMULATE_LOSE_RATE` | 0 | probability (0..=1) that a descriptor's record is never written (the device stays enabled) |
//! | `MINIASYNC_DSA_EMULATE_LATE_RATE` | 0 | probability (0..=1) that a descriptor's record is written late by another thread (DSA 2.0: the kernel writes a record that faulted) |
//! | `MINIASYNC_DSA_EMULATE_LATE_US` | 100000 | how late (µs) |
//! | `MINIASYNC_DSA_EMULATE_FAULT_ADDR` | `exact` | fault address reported: `exact` (the first faulting byte), `page` (the start of its page), `masked` (DSA 2.0: the page, with fault-info "address masked" and the operand id) |
//! | `MINIASYNC_DSA_EMULATE_FAULT_US` | 0 | device time per page fault it reports (µs, at most 1000000) |
//!
//! HALT_AFTER counts the descriptors the engines take from the queue (a
//! batch is one). A halt is published only once no engine touches memory
//! any more: every descriptor in the queue, and every one submitted later,
//! vanishes without a record, and what an engine was executing at that
//! moment gets no record either. LOSE_RATE and LATE_RATE apply to every
//! record: of descriptors taken from the queue (work and batch
//! descriptors) and of the elements inside a batch, each drawn on its own;
//! a lost or late record's descriptor has done its work (the record alone
//! is missing or late, as when the DSA 2.0 kernel handles a
//! completion-record fault).
//!
//! Always on, with no knob: a destination page that is resident but that
//! the device could not write without a fault (the shared zero page after
//! a read, copy-on-write after fork, KSM) faults on a write, as on real
//! hosts (`pagemap.rs`; residency through mincore(2) where
//! `/proc/self/pagemap` cannot be read).

mod device;
mod exec;
mod kernel;
mod late;
mod pagemap;
pub mod sysfs;

pub use device::EmuDevice;
#[cfg(test)]
pub use device::SwErrorKind;
#[cfg(test)]
pub use exec::Forced;
#[cfg(test)]
pub use kernel::open_device;
pub use kernel::{open, Kernel};

#[cfg(test)]
use std::path::PathBuf;

#[cfg(test)]
use crate::mover::dsa::hw::discovery::WqConfig;
use crate::mover::dsa::hw::discovery::{parse_u64, WqMode};
use crate::mover::dsa::hw::{opcode, OpCap};

/// The switch.
pub const EMULATE_ENV: &str = "MINIASYNC_DSA_EMULATE";

/// Default GENCAP: the Sapphire Rapids value of DSA.md 1.2 (block on
/// fault, overlapping copy, cache control, destination readback; 2 GiB
/// transfers, 1024-descriptor batches).
pub const DEFAULT_GENCAP: u64 = 0x40_915f_0107;

/// When engines pick up descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// As soon as they can.
    Never,
    /// Not until [`EmuDevice::set_stalled`]`(false)`.
    Manual,
    /// Only when the queue is full or no descriptor arrived for 2 ms.
    UntilFull,
}

/// How a page fault's address is reported in the completion record.
/// Hardware does not promise the exact faulting byte (DSA.md 12.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAddr {
    /// The first faulting byte in processing order.
    Exact,
    /// The start of the page holding it (fault info 0, as DSA 1.0).
    Page,
    /// DSA 2.0 style: the start of the page, with fault-info bit 0
    /// ("fault address masked") and the operand id in bits 3:1.
    Masked,
}

/// The order in which a batch's element records and its own record
/// become visible. DSA.md 12.3: no spec text guarantees element records
/// before the batch record, so a driver must take the batch record as the
/// authority and wait for the record of each element it says ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOrder {
    /// Each element's record as the element ends; the batch record last.
    ElementsFirst,
    /// The batch record first; the element records afterwards (up to
    /// 50 µs later).
    BatchFirst,
    /// Per element, at random, one or the other.
    Random,
}

impl BatchOrder {
    /// The knob's value (`elements-first`, `batch-first`, `random`).
    pub fn parse(s: &str) -> Option<BatchOrder> {
        Some(match s {
            "elements-first" => BatchOrder::ElementsFirst,
            "batch-first" => BatchOrder::BatchFirst,
            "random" => BatchOrder::Random,
            _ => return None,
        })
    }
}

/// Emulated device and WQ configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct EmuConfig {
    pub mode: WqMode,
    pub wq_size: u32,
    pub threshold: u32,
    pub engines: u32,
    pub max_transfer_size: u64,
    pub max_batch_size: u32,
    pub gen_cap: u64,
    /// Opcodes accepted (op_cap restricted by op_config).
    pub ops: OpCap,
    pub version: u32,
    pub block_on_fault: bool,
    /// Probability that a data descriptor faults at a random offset.
    pub fault_rate: f64,
    pub max_delay_us: u32,
    pub stall: Stall,
    /// Descriptors arrive through the emulated `write(2)`, with the
    /// kernel's checks: EINVAL for every write before 6.9, for a
    /// misaligned completion address, and for BATCH where the generation
    /// refuses it (`Kernel::write_takes_batch`). Otherwise they arrive
    /// through the emulated mapped portal.
    pub write_path: bool,
    /// The kernel generation modelled (sysfs text, submission rules).
    pub kernel: Kernel,
    /// The emulated process has CAP_SYS_RAWIO (6.9+ maps the portal).
    pub rawio: bool,
    pub hostile_cr: bool,
    pub batch_order: BatchOrder,
    pub seed: u64,
    /// Abort the process on a driver bug: a dropped descriptor (which
    /// would otherwise hang it), two descriptors in the device naming one
    /// completion record, a durable write left in the cache.
    pub strict: bool,
    /// Halt when an engine takes descriptor `n + 1`.
    pub halt_after: Option<u64>,
    /// Probability that a record is never written.
    pub lose_rate: f64,
    /// Probability that a record is written `late_us` late, from another
    /// thread.
    pub late_rate: f64,
    pub late_us: u64,
    /// How fault addresses are reported.
    pub fault_addr: FaultAddr,
    /// Device time spent on each page fault it reports, in µs (the
    /// translation miss and page request a real device pays).
    pub fault_us: u32,
}

impl Default for EmuConfig {
    fn default() -> Self {
        EmuConfig {
            mode: WqMode::Dedicated,
            wq_size: 32,
            threshold: 31,
            engines: 2,
            max_transfer_size: 2 << 20,
            max_batch_size: 32,
            gen_cap: DEFAULT_GENCAP,
            ops: implemented_ops(),
            version: 0x100,
            block_on_fault: false,
            fault_rate: 0.0,
            max_delay_us: 0,
            stall: Stall::Never,
            write_path: false,
            kernel: Kernel::default(),
            rawio: false,
            hostile_cr: false,
            batch_order: BatchOrder::Random,
            seed: 1,
            strict: false,
            halt_after: None,
            lose_rate: 0.0,
            late_rate: 0.0,
            late_us: 100_000,
            fault_addr: FaultAddr::Exact,
            fault_us: 0,
        }
    }
}

/// The opcodes the emulator executes: exactly the DSA 1.0 baseline.
pub fn implemented_ops() -> OpCap {
    OpCap::dsa1_baseline()
}

/// Whether `MINIASYNC_DSA_EMULATE=1`.
pub fn enabled_from_env() -> bool {
    std::env::var(EMULATE_ENV).is_ok_and(|v| v.trim() == "1")
}

impl EmuConfig {
    /// The configuration from the environment (see the module table).
    pub fn from_env() -> EmuConfig {
        EmuConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same with an explicit lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> EmuConfig {
        let v = |k: &str| get(&format!("{EMULATE_ENV}_{k}")).map(|s| s.trim().to_string());
        let n = |k: &str| v(k).and_then(|s| parse_u64(&s));
        let flag = |k: &str| v(k).is_some_and(|s| s == "1");
        let mut c = EmuConfig {
            strict: true,
            ..EmuConfig::default()
        };
        if v("MODE").as_deref() == Some("shared") {
            c.mode = WqMode::Shared;
        }
        if let Some(s) = n("WQ_SIZE") {
            c.wq_size = s.clamp(1, 4096) as u32;
        }
        c.threshold = n("THRESHOLD").map_or(c.wq_size.saturating_sub(1).max(1), |t| {
            t.clamp(1, u64::from(c.wq_size)) as u32
        });
        if let Some(e) = n("ENGINES") {
            c.engines = e.clamp(1, 16) as u32;
        }
        if let Some(m) = n("MAX_TRANSFER") {
            c.max_transfer_size = m.clamp(1, 1 << 31);
        }
        if let Some(m) = n("MAX_BATCH") {
            c.max_batch_size = m.clamp(0, 1024) as u32;
        }
        if flag("NO_BATCH") {
            c.ops = c.ops.without(opcode::BATCH);
        }
        if let Some(g) = n("GENCAP") {
            c.gen_cap = g;
        }
        if let Some(x) = n("VERSION") {
            c.version = x as u32;
        }
        let rate = |k: &str| {
            v(k).and_then(|s| s.parse::<f64>().ok()).map(|r| {
                if r.is_finite() {
                    r.clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
        };
        if let Some(r) = rate("FAULT_RATE") {
            c.fault_rate = r;
        }
        if let Some(d) = n("DELAY_US") {
            c.max_delay_us = d.min(1_000_000) as u32;
        }
        if flag("STALL") {
            c.stall = Stall::UntilFull;
        }
        c.write_path = flag("WRITE");
        if let Some(k) = v("KERNEL") {
            match Kernel::parse(&k) {
                Some(k) => c.kernel = k,
                None => crate::log::warn(&format!(
                    "{EMULATE_ENV}_KERNEL={k:?} is not one of 5.15, 6.1, 6.9, 6.16; \
                     emulating {}",
                    c.kernel
                )),
            }
        }
        c.rawio = flag("RAWIO");
        c.hostile_cr = flag("HOSTILE");
        if let Some(o) = v("BATCH_ORDER").and_then(|s| BatchOrder::parse(&s)) {
            c.batch_order = o;
        }
        if let Some(s) = n("SEED") {
            c.seed = s;
        }
        if v("STRICT").as_deref() == Some("0") {
            c.strict = false;
        }
        c.halt_after = n("HALT_AFTER");
        if let Some(r) = rate("LOSE_RATE") {
            c.lose_rate = r;
        }
        if let Some(r) = rate("LATE_RATE") {
            c.late_rate = r;
        }
        if let Some(us) = n("LATE_US") {
            c.late_us = us.min(60_000_000);
        }
        match v("FAULT_ADDR").as_deref() {
            Some("page") => c.fault_addr = FaultAddr::Page,
            Some("masked") => c.fault_addr = FaultAddr::Masked,
            _ => {}
        }
        if let Some(us) = n("FAULT_US") {
            c.fault_us = us.min(1_000_000) as u32;
        }
        c
    }

    /// The WQ as the device has it, whatever the kernel hides (test rigs
    /// drive the device directly, as through a mapped portal; [`open`]
    /// instead goes through the generation's sysfs text).
    #[cfg(test)]
    pub fn wq_config(&self) -> WqConfig {
        WqConfig {
            name: "emu0.0".to_string(),
            dev_node: PathBuf::new(),
            mode: self.mode,
            size: self.wq_size,
            threshold: self.threshold,
            max_transfer_size: self.max_transfer_size,
            max_batch_size: self.max_batch_size,
            block_on_fault: self.block_on_fault,
            ats_disabled: false,
            prs_disabled: false,
            gen_cap: self.gen_cap,
            ops: self.ops,
            version: self.version,
            numa_node: 0,
            pasid_enabled: true,
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
