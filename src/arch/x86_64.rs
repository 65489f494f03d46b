//! x86-64: CPUID, the `%fs:0` thread pointer, CLWB/CLFLUSHOPT/CLFLUSH +
//! SFENCE, the AVX-512F copy loop and MOVDIR64B/ENQCMD.

use core::arch::x86_64::{__cpuid, __cpuid_count, CpuidResult};

use super::{Features, WriteBack};

/// The crate's one CPUID reader: leaf `leaf`, sub-leaf `sub`, or `None`
/// when leaf 0 reports a lower maximum leaf.
fn cpuid(leaf: u32, sub: u32) -> Option<CpuidResult> {
    // CPUID exists on every x86-64 CPU; leaf 0 reports the highest leaf.
    if __cpuid(0).eax < leaf {
        return None;
    }
    Some(__cpuid_count(leaf, sub))
}

/// CPUID.(7,0): EBX bit 24 CLWB, bit 23 CLFLUSHOPT; ECX bit 28 MOVDIR64B,
/// bit 29 ENQCMD. Cache lines are 64 bytes on every x86-64 CPU.
pub fn detect() -> Features {
    let (ebx, ecx) = cpuid(7, 0).map_or((0, 0), |r| (r.ebx, r.ecx));
    let write_back = if ebx & (1 << 24) != 0 {
        WriteBack::Clwb
    } else if ebx & (1 << 23) != 0 {
        WriteBack::Clflushopt
    } else {
        WriteBack::Clflush
    };
    Features {
        movdir64b: ecx >> 28 & 1 != 0,
        enqcmd: ecx >> 29 & 1 != 0,
        write_back,
        line_size: 64,
    }
}

/// The x86-64 ELF TLS ABI puts the thread pointer itself in the first word
/// of the thread control block, at `%fs:0`; reading it is one load, where
/// `pthread_self()` is a call through the PLT.
#[inline(always)]
pub fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: `%fs:0` is always mapped and holds the thread pointer on
    // x86-64 Linux (TLS ABI); the load has no side effects.
    unsafe {
        core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags));
    }
    tp
}

/// Writes back the cache line holding `p`.
///
/// # Safety
/// `p` must point into mapped memory; `kind` must come from [`detect`]
/// (the CPU has the instruction).
#[inline(always)]
pub unsafe fn write_back_line(kind: WriteBack, p: *const u8) {
    match kind {
        // SAFETY: caller's contract; CLWB only writes the line back, it
        // changes no data.
        WriteBack::Clwb => unsafe {
            core::arch::asm!("clwb [{0}]", in(reg) p, options(nostack, preserves_flags));
        },
        // SAFETY: as above; CLFLUSHOPT writes back and invalidates.
        WriteBack::Clflushopt => unsafe {
            core::arch::asm!("clflushopt [{0}]", in(reg) p, options(nostack, preserves_flags));
        },
        // SAFETY: as above; CLFLUSH exists on every x86-64 CPU.
        WriteBack::Clflush => unsafe { core::arch::x86_64::_mm_clflush(p) },
        // `detect` never reports the other kinds on x86-64.
        WriteBack::None => {}
    }
}

/// SFENCE: orders the write-backs (CLWB and CLFLUSHOPT are weakly
/// ordered) before later stores.
#[inline(always)]
pub fn write_back_fence() {
    // SAFETY: SFENCE has no operands and is always available on x86-64.
    unsafe { core::arch::x86_64::_mm_sfence() };
}

/// AVX-512F, as the standard library detects it: unlike a bare CPUID bit
/// this also checks (XGETBV) that the OS saves the ZMM state. The result
/// is cached by the standard library.
#[inline]
pub fn has_wide_copy() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// # Safety
/// As for [`super::copy_wide`].
#[inline]
pub unsafe fn copy_wide(dst: *mut u8, src: *const u8, n: usize) {
    if has_wide_copy() {
        // SAFETY: the CPU has AVX-512F (checked); caller's contract.
        unsafe { copy_avx512(dst, src, n) };
    } else {
        // SAFETY: caller's contract; memcpy handles n == 0.
        unsafe { libc::memcpy(dst.cast(), src.cast(), n) };
    }
}

/// # Safety
/// As for [`super::copy_wide`], and the CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn copy_avx512(dst: *mut u8, src: *const u8, n: usize) {
    use core::arch::x86_64::{_mm512_loadu_si512, _mm512_storeu_si512};
    let mut i = 0;
    while i + 256 <= n {
        // SAFETY: `i + 256 <= n`, so all four 64-byte loads and stores stay
        // inside the caller's buffers; unaligned access is allowed.
        unsafe {
            let a = _mm512_loadu_si512(src.add(i).cast());
            let b = _mm512_loadu_si512(src.add(i + 64).cast());
            let c = _mm512_loadu_si512(src.add(i + 128).cast());
            let d = _mm512_loadu_si512(src.add(i + 192).cast());
            _mm512_storeu_si512(dst.add(i).cast(), a);
            _mm512_storeu_si512(dst.add(i + 64).cast(), b);
            _mm512_storeu_si512(dst.add(i + 128).cast(), c);
            _mm512_storeu_si512(dst.add(i + 192).cast(), d);
        }
        i += 256;
    }
    // SAFETY: the tail `[i, n)` lies inside the caller's buffers.
    unsafe { libc::memcpy(dst.add(i).cast(), src.add(i).cast(), n - i) };
}

/// SFENCE alone: orders every earlier store, non-temporal ones included,
/// before later stores (the fence of a `write(2)` submission).
#[inline(always)]
pub fn store_fence() {
    // SAFETY: SFENCE exists on every x86-64 CPU (SSE is part of the
    // baseline); it only orders stores and touches no memory.
    unsafe { core::arch::asm!("sfence", options(nostack, preserves_flags)) };
}

/// SFENCE + MOVDIR64B: `crate::arch::movdir64b` itself (re-exported, so
/// the portal's submission calls it directly).
///
/// # Safety
/// As documented on the re-export [`super::movdir64b`]: the CPU has
/// MOVDIR64B, `portal` is a 64-byte-aligned address inside a mapped WQ
/// portal and `desc` a readable, 64-byte-aligned 64-byte descriptor whose
/// addresses satisfy the device's contract.
#[inline]
pub unsafe fn movdir64b(portal: *mut u8, desc: *const u8) {
    // SAFETY: the caller guarantees the CPU feature and both addresses.
    // SFENCE makes the descriptor and the source data written by earlier
    // (possibly non-temporal) stores globally visible before the device
    // reads them. The bytes encode `movdir64b rax, [rdx]` (66 0F 38 F8 /r,
    // ModRM 0x02), as the assembler may not know the mnemonic.
    unsafe {
        core::arch::asm!(
            "sfence",
            ".byte 0x66, 0x0f, 0x38, 0xf8, 0x02",
            in("rax") portal,
            in("rdx") desc,
            options(nostack, preserves_flags),
        );
    }
}

/// SFENCE + ENQCMD: `crate::arch::enqcmd` itself (re-exported like
/// [`movdir64b`]); true when the shared WQ accepted the descriptor.
///
/// # Safety
/// As documented on the re-export [`super::enqcmd`]: as for
/// [`movdir64b`], with ENQCMD and a shared-WQ portal.
#[inline]
pub unsafe fn enqcmd(portal: *mut u8, desc: *const u8) -> bool {
    let retry: u8;
    // SAFETY: as for `movdir64b`. The bytes encode `enqcmd rax, [rdx]`
    // (F2 0F 38 F8 /r); ZF=1 means the WQ did not accept the descriptor.
    unsafe {
        core::arch::asm!(
            "sfence",
            ".byte 0xf2, 0x0f, 0x38, 0xf8, 0x02",
            "setz {r}",
            r = out(reg_byte) retry,
            in("rax") portal,
            in("rdx") desc,
            options(nostack),
        );
    }
    retry == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPUID bits agree with the kernel's view in /proc/cpuinfo,
    /// except ENQCMD: the kernel hides its `enqcmd` flag when it does not
    /// support PASIDs for user space (before 5.18, or without SVA), so the
    /// flag implies the CPUID bit and not the reverse. (The DSA portal
    /// takes ENQCMD from the flag: `mover/dsa/hw/mod.rs`.)
    #[test]
    fn cpuid_agrees_with_proc_cpuinfo() {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let Some(flags) = info.lines().find(|l| l.starts_with("flags")) else {
            eprintln!("SKIP: no flags line in /proc/cpuinfo to compare CPUID with");
            return;
        };
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        let f = detect();
        assert_eq!(f.movdir64b, has("movdir64b"));
        assert!(f.enqcmd || !has("enqcmd"));
        let expected = if has("clwb") {
            WriteBack::Clwb
        } else if has("clflushopt") {
            WriteBack::Clflushopt
        } else {
            WriteBack::Clflush
        };
        assert_eq!(f.write_back, expected);
        if has_wide_copy() {
            assert!(has("avx512f"));
        }
    }

    #[test]
    fn thread_pointer_points_to_itself() {
        // The TLS ABI: the word at the thread pointer is the thread pointer.
        let tp = thread_pointer();
        // SAFETY: `tp` is this thread's TCB, mapped for the thread's life.
        assert_eq!(unsafe { *(tp as *const usize) }, tp);
    }
}
