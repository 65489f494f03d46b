//! The portable fallback: no inline assembly, no intrinsics. It is the
//! implementation on architectures without a module of their own and under
//! Miri, supplies what aarch64 lacks (DSA submission, a wide copy loop),
//! and is compiled on every target in test builds so its tests run
//! everywhere (each item is compiled only where something uses it).
//!
//! There is no cache write-back available here: [`write_back_line`] does
//! nothing and [`write_back_fence`] is a sequentially consistent fence, so
//! `VDM_F_MEM_DURABLE` only orders the stores.

#[cfg(any(test, miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
use super::{Features, WriteBack};

/// No DSA instructions, no write-back instruction; 64-byte steps (unused
/// with [`WriteBack::None`]).
#[cfg(any(test, miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
pub fn detect() -> Features {
    Features {
        movdir64b: false,
        enqcmd: false,
        write_back: WriteBack::None,
        line_size: 64,
    }
}

#[cfg(any(test, miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
std::thread_local! {
    /// One byte per thread; only its address matters.
    static MARK: u8 = const { 0 };
}

/// The address of a per-thread `thread_local!`: distinct for every live
/// thread (each has its own TLS block), stable for the thread's life, and
/// a plain TLS access since the value has a const initialiser and no
/// destructor.
#[cfg(any(test, miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
#[inline(always)]
pub fn thread_pointer() -> usize {
    MARK.with(|m| core::ptr::from_ref(m).addr())
}

/// No cache write-back instruction: nothing to do per line.
///
/// # Safety
/// None needed; `unsafe` only to match the architecture modules.
#[cfg(any(test, miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
#[inline(always)]
pub unsafe fn write_back_line(_kind: WriteBack, _p: *const u8) {}

/// A full fence: orders the operation's stores before the completion is
/// reported.
#[cfg(any(test, miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
#[inline(always)]
pub fn write_back_fence() {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

/// A sequentially consistent fence stands in for SFENCE: it orders every
/// earlier store before the later ones and before a system call.
#[cfg(any(miri, not(target_arch = "x86_64")))]
#[inline(always)]
pub fn store_fence() {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

/// No wide copy loop.
#[cfg(test)]
#[inline]
pub fn has_wide_copy() -> bool {
    false
}

/// A plain non-overlapping copy (the compiler's `memcpy`).
///
/// # Safety
/// As for [`super::copy_wide`].
#[inline]
pub unsafe fn copy_wide(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: caller's contract (readable, writable, no overlap).
    unsafe { core::ptr::copy_nonoverlapping(src, dst, n) };
}

/// MOVDIR64B does not exist here: [`detect`] never reports it, so a caller
/// keeping the contract never gets here. Aborts (the crate is built with
/// `panic = "abort"`).
///
/// # Safety
/// As for [`super::movdir64b`], which cannot be met on this target.
#[cfg(any(miri, not(target_arch = "x86_64")))]
pub unsafe fn movdir64b(_portal: *mut u8, _desc: *const u8) {
    unreachable!("MOVDIR64B called on a CPU without it");
}

/// ENQCMD does not exist here; as for [`movdir64b`].
///
/// # Safety
/// As for [`super::enqcmd`], which cannot be met on this target.
#[cfg(any(miri, not(target_arch = "x86_64")))]
pub unsafe fn enqcmd(_portal: *mut u8, _desc: *const u8) -> bool {
    unreachable!("ENQCMD called on a CPU without it");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_thread_pointer_is_per_thread() {
        let here = thread_pointer();
        assert_eq!(here, thread_pointer());
        let there = std::thread::spawn(thread_pointer).join().unwrap();
        assert_ne!(here, there);
    }

    #[test]
    fn portable_features_offer_nothing() {
        let f = detect();
        assert!(!f.movdir64b && !f.enqcmd && !has_wide_copy());
        assert_eq!(f.write_back, WriteBack::None);
    }

    #[test]
    fn portable_copy_and_write_back() {
        let src = [7u8; 100];
        let mut dst = [0u8; 100];
        // SAFETY: both buffers are 100 bytes and do not overlap.
        unsafe { copy_wide(dst.as_mut_ptr(), src.as_ptr(), 100) };
        // SAFETY: the line is inside `dst`; the fallback touches nothing.
        unsafe { write_back_line(WriteBack::None, dst.as_ptr()) };
        write_back_fence();
        assert_eq!(src, dst);
    }
}
