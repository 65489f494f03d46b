//! aarch64: the `tpidr_el0` thread pointer and the `dc cvac` + `dsb ish`
//! cache write-back. There is no DSA submission instruction and no wide
//! copy loop: those come from [`super::portable`].
//!
//! Write-back: `dc cvac` cleans the data cache line holding an address to
//! the point of coherency (the memory system every observer, including
//! DMA, sees), keeping the line valid, like x86 CLWB. The `dsb ish` after
//! the loop waits until every clean has completed before any later memory
//! access, as SFENCE does on x86. Armv8.2 `dc cvap` (clean to the point of
//! persistence) is optional and not used: where the point of persistence
//! lies beyond the point of coherency, `VDM_F_MEM_DURABLE` here only
//! guarantees the data reached the point of coherency.

pub use super::portable::{copy_wide, enqcmd, movdir64b, store_fence};
use super::{Features, WriteBack};

/// The smallest data cache line from CTR_EL0 (DminLine, bits 19:16, is
/// log2 of the line size in 4-byte words). Linux lets EL0 read CTR_EL0
/// (SCTLR_EL1.UCT, or the kernel emulates the read).
fn dcache_line() -> usize {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects and is permitted at EL0
    // on Linux; it touches no memory.
    unsafe {
        core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags));
    }
    4 << ((ctr >> 16) & 0xf)
}

pub fn detect() -> Features {
    Features {
        movdir64b: false,
        enqcmd: false,
        write_back: WriteBack::DcCvac,
        line_size: dcache_line(),
    }
}

/// TPIDR_EL0 holds the thread pointer (the TCB address the aarch64 ELF
/// TLS ABI defines), which the C library sets per thread.
#[inline(always)]
pub fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: reading TPIDR_EL0 has no side effects and touches no memory.
    unsafe {
        core::arch::asm!("mrs {}, tpidr_el0", out(reg) tp, options(nomem, nostack, preserves_flags));
    }
    tp
}

/// Cleans the data cache line holding `p` to the point of coherency.
///
/// # Safety
/// `p` must point into mapped memory of this process.
#[inline(always)]
pub unsafe fn write_back_line(kind: WriteBack, p: *const u8) {
    if kind == WriteBack::DcCvac {
        // SAFETY: caller's contract; `dc cvac` writes the line back and
        // changes no data (a fault on an unmapped address is excluded).
        unsafe {
            core::arch::asm!("dc cvac, {0}", in(reg) p, options(nostack, preserves_flags));
        }
    }
}

/// `dsb ish`: every clean above completes before later memory accesses.
#[inline(always)]
pub fn write_back_fence() {
    // SAFETY: a barrier has no operands and no effect but ordering.
    unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
}
