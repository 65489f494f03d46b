//! Page residency and fault resolution (DSA.md 4.4, 12.3).
//!
//! With SVA, DSA reports a partial completion (status 0x03) when an operand
//! page is not present, or not writable for a write. The engine resumes
//! such an operation (`Engine::resume_fault`, below): `bytes_completed`
//! says how far the device got, direction-aware; the fault address says
//! which page stopped it, but only to the page: DSA 2.0 may mask the
//! address ("fault address masked", fault-info bit 0), so it is matched by
//! page against both operands of the piece, and an address that matches
//! neither makes the engine resolve the next page of each operand instead.
//! On a piece's first fault the rest of the piece (at most
//! [`POPULATE_AHEAD`] bytes) is populated too, so that first-touch memory
//! costs one device round trip per piece rather than one per page.
//! [`populate`] makes pages present (and writable) from the CPU the way an
//! access would, without changing a byte: `MADV_POPULATE_READ/WRITE`
//! (Linux 5.14+), or touching each page where madvise cannot (older
//! kernels, some mappings), after checking in `/proc/self/maps` that the
//! access is allowed, so that memory the CPU could not access either fails
//! the operation instead of crashing the process. [`first_fault`] finds
//! the first non-resident page of a range with mincore(2); the emulated
//! WQ uses it for batch lists, and for operands where it cannot read the
//! page tables themselves (`emu/pagemap.rs`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use super::super::hw::CompletionRecord;
use super::op::{DeviceOp, Job, Op, OpKind, Phase};
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

/// Most bytes of a piece populated at one fault.
pub const POPULATE_AHEAD: u64 = 32 << 20;

/// Memory that could not be made present: where, and the errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreachable {
    pub addr: u64,
    pub errno: i32,
}

/// Make every page of `[addr, addr + len)` present, and writable when
/// `write`, as CPU accesses would, without changing any byte. Fails when
/// a page is not mapped, or does not allow the access: a CPU access there
/// would crash, so the caller must not retry.
pub fn populate(addr: u64, len: u64, write: bool) -> Result<(), Unreachable> {
    let Some(end) = addr.checked_add(len).filter(|_| len > 0) else {
        return Ok(());
    };
    let ps = page_size();
    let lo = page_of(addr);
    let hi = page_of(end - 1).saturating_add(ps);
    let advice = if write {
        libc::MADV_POPULATE_WRITE
    } else {
        libc::MADV_POPULATE_READ
    };
    // SAFETY: MADV_POPULATE_* only faults pages in; it never changes the
    // contents or the mapping, and fails cleanly on unmapped ranges.
    let r = unsafe { libc::madvise(lo as usize as *mut _, (hi - lo) as usize, advice) };
    #[cfg(test)]
    let r = if REFUSED.get() { -1 } else { r };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EFAULT);
    #[cfg(test)]
    let e = if REFUSED.get() { libc::EINVAL } else { e };
    match e {
        // Kernels before 5.14 (EINVAL, or ENOSYS from a filter), and
        // mappings madvise will not populate or whose protection forbids
        // the access (EINVAL): touch the pages where that is allowed.
        libc::EINVAL | libc::ENOSYS => touch(addr, end, write),
        // ENOMEM: part of the range is not mapped.
        libc::ENOMEM => Err(Unreachable {
            addr,
            errno: libc::EFAULT,
        }),
        errno => Err(Unreachable { addr, errno }),
    }
}

/// Make the page holding `addr` present (and writable when `write`), the
/// way a CPU access would, without changing any byte of it; the errno
/// when that is not possible.
#[cfg(test)]
pub fn resolve(addr: u64, write: bool) -> Result<(), i32> {
    populate(addr, 1, write).map_err(|u| u.errno)
}

/// One mapping of `/proc/self/maps`: `[lo, hi)` and whether it may be
/// read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mapping {
    lo: u64,
    hi: u64,
    read: bool,
    write: bool,
}

/// The mappings of `/proc/self/maps` text that overlap `[lo, hi)`, in
/// address order. Lines that do not parse are skipped.
fn mappings(text: &str, lo: u64, hi: u64) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let (a, b) = f.next()?.split_once('-')?;
            let perms = f.next()?.as_bytes();
            Some(Mapping {
                lo: u64::from_str_radix(a, 16).ok()?,
                hi: u64::from_str_radix(b, 16).ok()?,
                read: perms.first() == Some(&b'r'),
                write: perms.get(1) == Some(&b'w'),
            })
        })
        .filter(|m| m.lo < hi && lo < m.hi)
        .collect()
}

/// Touch one byte of each page of `[addr, end)` (the first byte of the
/// range in its first page), reading it, or writing it back unchanged for
/// `write`, after checking that the mapping allows that access.
fn touch(addr: u64, end: u64, write: bool) -> Result<(), Unreachable> {
    let refused = |addr| Unreachable {
        addr,
        errno: libc::EFAULT,
    };
    let text = std::fs::read_to_string("/proc/self/maps").map_err(|e| Unreachable {
        addr,
        errno: e.raw_os_error().unwrap_or(libc::ENOSYS),
    })?;
    let maps = mappings(&text, addr, end);
    let mut at = addr;
    let mut it = maps.iter().peekable();
    while at < end {
        while it.peek().is_some_and(|m| m.hi <= at) {
            it.next();
        }
        match it.peek() {
            Some(m) if m.lo <= at && m.read && (m.write || !write) => {}
            _ => return Err(refused(at)),
        }
        // SAFETY: `at` lies in a mapping that allows this access (checked
        // above), inside an operand of the operation being resumed, which
        // the device has stopped working on and which the caller of
        // `start_op` vouched nobody else writes meanwhile (or inside its
        // completion record, which everyone accesses atomically). Reading
        // a byte, or a compare-exchange of a byte with itself (a write
        // access that keeps the value), changes nothing.
        let b = unsafe { AtomicU8::from_ptr(at as usize as *mut u8) };
        if write {
            for _ in 0..16 {
                let v = b.load(Ordering::Relaxed);
                if b.compare_exchange(v, v, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    break;
                }
            }
        } else {
            core::hint::black_box(b.load(Ordering::Relaxed));
        }
        at = page_of(at).saturating_add(page_size());
    }
    Ok(())
}

/// The byte of `[base, base + len)` nearest `addr` in `addr`'s page, or
/// `None` when that page holds no byte of the range.
fn byte_in_page(addr: u64, base: u64, len: u64) -> Option<u64> {
    let end = base.checked_add(len).filter(|_| len > 0)?;
    let page = page_of(addr);
    let page_end = page.saturating_add(page_size());
    if page_end <= base || page >= end {
        return None;
    }
    Some(addr.clamp(base.max(page), end.min(page_end) - 1))
}

/// The operands of `op`: (address, whether the op writes it).
fn operands(op: &Op) -> [Option<(u64, bool)>; 2] {
    let src = op.has_source().then_some((op.src as u64, false));
    [src, Some((op.dst as u64, op.kind != OpKind::Flush))]
}

/// Which operand byte of `piece` a fault reported at `addr` (a write
/// fault when `write`) is about: the byte of the operand whose pages hold
/// `addr`, trying the one the write bit names first, and the access that
/// operand needs (a destination is written, a source read). `None` when
/// neither operand has a byte in that page.
fn locate(piece: &Op, addr: u64, write: bool) -> Option<(u64, bool)> {
    let [src, dst] = operands(piece);
    let order = if write { [dst, src] } else { [src, dst] };
    order
        .into_iter()
        .flatten()
        .find_map(|(base, w)| byte_in_page(addr, base, piece.len as u64).map(|b| (b, w)))
}

/// Whether the device runs `piece` from its end.
fn descending(piece: &Op) -> bool {
    piece.overlaps() && piece.dst > piece.src
}

impl Engine {
    /// Status 0x03: account for the bytes done, make the page present
    /// (and the rest of the piece on its first fault), resubmit the rest
    /// (DSA.md 4.4).
    pub(super) fn resume_fault(&self, rec: &DeviceOp, job: &mut Job, r: &CompletionRecord) {
        let piece = job.progress.piece_op();
        let bc = u64::from(r.bytes_completed);
        let from_end = piece.has_source() && r.result & 1 == 1;
        if job.progress.partial(bc, from_end).is_err() {
            self.fail(rec, job, FailReason::Inconsistent, true);
            return;
        }
        // From here on the remainder is exact: the device did the bytes it
        // reported and nothing after them.
        if bc == 0 {
            job.repeats += 1;
            if job.repeats > self.opts.fault_retries {
                let reason = FailReason::FaultLoop { addr: r.fault_addr };
                self.fail(rec, job, reason, false);
                return;
            }
        } else {
            job.repeats = 0;
        }
        #[cfg(test)]
        self.n.faults_resolved.fetch_add(1, Ordering::Relaxed);
        job.counts.page_faults += 1;
        if job.progress.is_done() {
            job.phase = Phase::Done;
            return;
        }
        // The page the device named, or, when it names no operand's page,
        // the next page of each operand of what is left.
        let targets = match locate(&piece, r.fault_addr, r.write_fault()) {
            Some(t) => [Some(t), None],
            None => {
                let rest = job.progress.piece_op();
                let next = if descending(&rest) {
                    rest.len as u64 - 1
                } else {
                    0
                };
                operands(&rest).map(|o| o.map(|(base, w)| (base + next, w)))
            }
        };
        for (addr, write) in targets.into_iter().flatten() {
            if let Err(u) = populate(addr, 1, write) {
                let reason = FailReason::Unresolvable {
                    addr: u.addr,
                    errno: u.errno,
                };
                self.fail(rec, job, reason, false);
                return;
            }
        }
        populate_ahead(job);
        job.phase = Phase::NeedSubmit;
    }
}

/// On the first fault of a piece (the device resumes outside what was
/// populated before), populate the next [`POPULATE_AHEAD`] bytes of it in
/// processing order, both operands, so its other pages do not each cost a
/// device round trip. Best effort: a page that cannot be populated faults
/// again and is resolved (or refused) on its own.
fn populate_ahead(job: &mut Job) {
    let p = &job.progress;
    let (lo, hi) = p.piece;
    if lo == hi {
        return;
    }
    let desc = descending(&p.piece_op());
    let (wlo, whi) = job.populated;
    let covered = if desc {
        wlo < hi && hi <= whi
    } else {
        wlo <= lo && lo < whi
    };
    if covered {
        return;
    }
    let n = (hi - lo).min(POPULATE_AHEAD);
    let window = if desc { (hi - n, hi) } else { (lo, lo + n) };
    job.populated = window;
    let chunk = p.op.sub(window.0, window.1);
    for (base, write) in operands(&chunk).into_iter().flatten() {
        let _ = populate(base, n, write);
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

#[cfg(test)]
thread_local! {
    static REFUSED: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Until the guard is dropped, `MADV_POPULATE_*` calls made by this
/// thread fail with EINVAL when `refused`, as on kernels before 5.14.
#[cfg(test)]
pub fn refuse_populate(refused: bool) -> impl Drop {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            REFUSED.set(self.0);
        }
    }
    Restore(REFUSED.replace(refused))
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
    fn fault_addresses_are_matched_by_page() {
        let ps = page_size();
        let h = crate::mover::Hints::default();
        // Source in pages 10-11, destination in pages 20-21 (mid-page).
        let op = Op::copy(
            (20 * ps + 100) as usize,
            (10 * ps + 50) as usize,
            ps as usize,
            h,
        );
        let (s, d) = (10 * ps + 50, 20 * ps + 100);
        // Exact, page-masked and last-byte addresses, each operand.
        assert_eq!(locate(&op, d + 7, true), Some((d + 7, true)));
        assert_eq!(locate(&op, 20 * ps, true), Some((d, true)));
        assert_eq!(locate(&op, 21 * ps, true), Some((21 * ps, true)));
        assert_eq!(locate(&op, 21 * ps + 99, false), Some((21 * ps + 99, true)));
        assert_eq!(locate(&op, 10 * ps, false), Some((s, false)));
        // The write bit names the destination, but the page holds only
        // source bytes: resolved as the source needs (a read).
        assert_eq!(locate(&op, 11 * ps + 8, true), Some((11 * ps + 8, false)));
        // Past either operand, or nowhere near.
        assert_eq!(locate(&op, 21 * ps + 100, true), Some((21 * ps + 99, true)));
        assert_eq!(locate(&op, 22 * ps, true), None);
        assert_eq!(locate(&op, 0x1234, false), None);
        assert_eq!(locate(&op, u64::MAX, false), None);
        // Source and destination in one page: the write bit decides.
        let o = Op::copy(100, 10, 50, h);
        assert_eq!(locate(&o, 0, true), Some((100, true)));
        assert_eq!(locate(&o, 0, false), Some((10, false)));
        // A flush only reads its range.
        let f = Op::flush(ps as usize, 10, h);
        assert_eq!(locate(&f, ps, true), Some((ps, false)));
    }

    #[test]
    fn maps_lines_give_ranges_and_permissions() {
        let text = "00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/x\n\
                    00651000-00652000 rw-p 00051000 08:02 173521 /usr/bin/x\n\
                    garbage line\n\
                    7f00-8000 ---p 00000000 00:00 0\n";
        assert_eq!(
            mappings(text, 0x400000, 0x700000),
            [
                Mapping {
                    lo: 0x400000,
                    hi: 0x452000,
                    read: true,
                    write: false
                },
                Mapping {
                    lo: 0x651000,
                    hi: 0x652000,
                    read: true,
                    write: true
                },
            ]
        );
        assert!(!mappings(text, 0x7f00, 0x7f01)[0].read);
        assert!(mappings(text, 0x452000, 0x651000).is_empty());
    }

    #[test]
    fn touching_checks_the_mapping_first() {
        let ps = page_size();
        let m = Untouched::new(3 * ps as usize);
        let a = m.as_ptr() as u64;
        touch(a + 5, a + 2 * ps, true).unwrap();
        assert_eq!(page_state(a), Some(true));
        assert_eq!(page_state(a + ps), Some(true));
        assert_eq!(page_state(a + 2 * ps), Some(false));
        // SAFETY: the mapping is live.
        let all = unsafe { std::slice::from_raw_parts(m.as_ptr(), m.len()) };
        assert!(all.iter().all(|&b| b == 0));
        // SAFETY: making the third page read-only, inside our mapping.
        let r = unsafe {
            libc::mprotect(
                m.as_ptr().add(2 * ps as usize).cast(),
                ps as usize,
                libc::PROT_READ,
            )
        };
        assert_eq!(r, 0);
        assert_eq!(
            touch(a, a + 3 * ps, true),
            Err(Unreachable {
                addr: a + 2 * ps,
                errno: libc::EFAULT
            })
        );
        touch(a + 2 * ps, a + 3 * ps, false).unwrap();
        assert_eq!(touch(ps, ps + 1, false).map_err(|u| u.addr), Err(ps));
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
