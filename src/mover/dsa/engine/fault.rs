//! Page residency and fault resolution (DSA.md 4.4).
//!
//! With SVA, DSA reports a partial completion (status 0x03) when an operand
//! page is not present. The engine resumes such an operation
//! (`Engine::resume_fault`, below): it accounts for the bytes done, makes
//! the faulting page present with [`resolve`] from the CPU (the fix ACCFG
//! and DTO apply) without changing its contents, and resubmits the rest.
//! [`first_fault`] finds the first non-resident page of a range with
//! mincore(2), which is how the emulated WQ decides where hardware would
//! fault.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use super::super::hw::CompletionRecord;
use super::op::{DeviceOp, Job, Phase};
use super::{Engine, FailReason};

/// The system page size.
pub fn page_size() -> u64 {
    static PS: OnceLock<u64> = OnceLock::new();
    *PS.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if v > 0 {
            v as u64
        } else {
            4096
        }
    })
}

fn page_of(addr: u64) -> u64 {
    addr & !(page_size() - 1)
}

/// Whether the page holding `addr` is mapped: `Some(resident)` or `None`
/// when nothing is mapped there.
pub fn page_state(addr: u64) -> Option<bool> {
    let mut v = 0u8;
    // SAFETY: mincore only reads the page tables of the given page-aligned
    // range and writes one byte to `v`.
    let r = unsafe {
        libc::mincore(
            page_of(addr) as usize as *mut _,
            page_size() as usize,
            &mut v,
        )
    };
    if r == 0 {
        Some(v & 1 != 0)
    } else {
        None
    }
}

/// Make the page holding `addr` present (and writable when `write`), the
/// way a CPU access would, without changing any byte of it. Fails with an
/// errno when the address is not mapped (or not writable for a write
/// fault): a CPU access there would crash, so the caller must not retry.
pub fn resolve(addr: u64, write: bool) -> Result<(), i32> {
    let page = page_of(addr);
    let advice = if write {
        libc::MADV_POPULATE_WRITE
    } else {
        libc::MADV_POPULATE_READ
    };
    // SAFETY: MADV_POPULATE_* only faults pages in; it never changes the
    // contents or the mapping, and fails cleanly on unmapped ranges.
    let r = unsafe { libc::madvise(page as usize as *mut _, page_size() as usize, advice) };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EFAULT);
    if e != libc::EINVAL {
        return Err(e);
    }
    // Old kernels (< 5.14) or special mappings: touch the byte instead, but
    // only when something is mapped there.
    if page_state(addr).is_none() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the page is mapped (checked above) and `addr` lies inside an
    // operand of the operation being resumed, which the device has stopped
    // working on; an atomic compare-exchange of a byte with itself is a
    // write access that keeps the value.
    let b = unsafe { AtomicU8::from_ptr(addr as usize as *mut u8) };
    if write {
        let v = b.load(Ordering::Relaxed);
        let _ = b.compare_exchange(v, v, Ordering::Relaxed, Ordering::Relaxed);
    } else {
        let _ = b.load(Ordering::Relaxed);
    }
    Ok(())
}

impl Engine {
    /// Status 0x03: account for the bytes done, make the page present,
    /// resubmit the rest (DSA.md 4.4).
    pub(super) fn resume_fault(&self, rec: &DeviceOp, job: &mut Job, r: &CompletionRecord) {
        let piece = job.progress.piece_op();
        let write = r.write_fault();
        let base = if !write && piece.has_source() {
            piece.src
        } else {
            piece.dst
        } as u64;
        let inside = r.fault_addr >= base && r.fault_addr - base < piece.len as u64;
        let bc = u64::from(r.bytes_completed);
        let from_end = piece.has_source() && r.result & 1 == 1;
        if !inside || job.progress.partial(bc, from_end).is_err() {
            self.fail(rec, job, FailReason::Inconsistent, true);
            return;
        }
        if bc == 0 && r.fault_addr == job.last_fault {
            job.repeats += 1;
            if job.repeats > self.opts.fault_retries {
                self.fail(
                    rec,
                    job,
                    FailReason::FaultLoop { addr: r.fault_addr },
                    false,
                );
                return;
            }
        } else {
            job.repeats = 0;
        }
        job.last_fault = r.fault_addr;
        if let Err(errno) = resolve(r.fault_addr, write) {
            self.fail(
                rec,
                job,
                FailReason::Unresolvable {
                    addr: r.fault_addr,
                    errno,
                },
                false,
            );
            return;
        }
        #[cfg(test)]
        self.n.faults_resolved.fetch_add(1, Ordering::Relaxed);
        job.phase = if job.progress.is_done() {
            Phase::Done
        } else {
            Phase::NeedSubmit
        };
    }
}

/// The offset in `[0, len)` of the first byte, in processing order
/// (ascending from `addr`, or descending from `addr + len - 1`), that lies
/// in a page that is not resident or not mapped; `None` when every page is
/// resident. `scratch` is reused between calls.
pub fn first_fault(addr: u64, len: u64, descending: bool, scratch: &mut Vec<u8>) -> Option<u64> {
    if len == 0 {
        return None;
    }
    let ps = page_size();
    let end = addr.checked_add(len)?;
    let first = page_of(addr);
    let last = page_of(end - 1);
    let npages = ((last - first) / ps + 1) as usize;
    scratch.clear();
    scratch.resize(npages, 0);
    // SAFETY: mincore reads page tables for the page-aligned range and
    // writes one byte per page into `scratch`, which has `npages` bytes.
    let r = unsafe {
        libc::mincore(
            first as usize as *mut _,
            npages * ps as usize,
            scratch.as_mut_ptr(),
        )
    };
    let resident = |i: usize, scratch: &[u8]| -> bool {
        if r == 0 {
            scratch[i] & 1 != 0
        } else {
            // Part of the range is unmapped: probe page by page.
            page_state(first + i as u64 * ps) == Some(true)
        }
    };
    let offset_of_page = |i: usize| -> u64 {
        let start = first + i as u64 * ps;
        if descending {
            (start + ps).min(end) - 1 - addr
        } else {
            start.max(addr) - addr
        }
    };
    if descending {
        (0..npages)
            .rev()
            .find(|&i| !resident(i, scratch))
            .map(offset_of_page)
    } else {
        (0..npages)
            .find(|&i| !resident(i, scratch))
            .map(offset_of_page)
    }
}

/// A private anonymous mapping that the process has never touched: every
/// page is non-resident until something accesses it. The tests use it to
/// reproduce what SVA hardware sees.
#[cfg(test)]
pub struct Untouched {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value.
#[cfg(test)]
unsafe impl Send for Untouched {}
// SAFETY: shared access only hands out the base address.
#[cfg(test)]
unsafe impl Sync for Untouched {}

#[cfg(test)]
impl Untouched {
    /// Map `len` bytes (rounded up to pages), or panic.
    pub fn new(len: usize) -> Untouched {
        let len = (len as u64).div_ceil(page_size()).max(1) * page_size();
        // SAFETY: a fresh anonymous mapping chosen by the kernel.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap failed");
        // Keep transparent huge pages out of it so every 4 KiB page faults
        // on its own.
        // SAFETY: advice on the mapping just created.
        unsafe { libc::madvise(p, len as usize, libc::MADV_NOHUGEPAGE) };
        Untouched {
            ptr: p.cast(),
            len: len as usize,
        }
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
impl Drop for Untouched {
    fn drop(&mut self) {
        // SAFETY: unmapping the region created in `new`; no references
        // into it outlive `self`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_pages_are_not_resident_until_resolved() {
        let ps = page_size();
        let m = Untouched::new(4 * ps as usize);
        let a = m.as_ptr() as u64;
        let mut s = Vec::new();
        assert_eq!(page_state(a), Some(false));
        assert_eq!(first_fault(a + 10, 3 * ps, false, &mut s), Some(0));
        assert_eq!(first_fault(a + 10, 3 * ps, true, &mut s), Some(3 * ps - 1));
        resolve(a + ps + 5, true).unwrap();
        assert_eq!(page_state(a + ps), Some(true));
        // Page 1 is now resident, page 0 not: ascending from page 1 faults
        // at page 2, descending from the middle of page 1 faults in page 0.
        assert_eq!(first_fault(a + ps, 2 * ps, false, &mut s), Some(ps));
        assert_eq!(first_fault(a + 100, ps, true, &mut s), Some(ps - 100 - 1));
        resolve(a, false).unwrap();
        resolve(a + 2 * ps, true).unwrap();
        resolve(a + 3 * ps, true).unwrap();
        assert_eq!(first_fault(a, 4 * ps, false, &mut s), None);
        // Contents were not changed by resolving.
        // SAFETY: the mapping is live and 4 pages long.
        let all = unsafe { std::slice::from_raw_parts(m.as_ptr(), m.len()) };
        assert!(all.iter().all(|&b| b == 0));
    }

    #[test]
    fn resolve_keeps_contents_and_rejects_unmapped_memory() {
        let ps = page_size();
        let mut v = vec![7u8; 3 * ps as usize];
        let a = v.as_mut_ptr() as u64 + ps;
        resolve(a, true).unwrap();
        resolve(a, false).unwrap();
        assert!(v.iter().all(|&b| b == 7));
        // A page nothing maps: the second page of the address space, below
        // vm.mmap_min_addr. (A freshly unmapped page would do too, but a
        // test running in parallel may map the address again at once.)
        let gone = ps;
        assert_eq!(page_state(gone), None);
        assert!(resolve(gone, true).is_err());
        let mut s = Vec::new();
        assert_eq!(first_fault(gone, 8, false, &mut s), Some(0));
    }
}
