//! Where an SVA device faults, from the page tables themselves
//! (DSA.md 12.3). The device walks the process's page tables (through the
//! IOMMU), so it faults where an entry is not present, and on a write
//! where the entry is present but read-only: the shared zero page mapped
//! by a read of fresh anonymous memory, a copy-on-write page after fork,
//! a KSM-merged page. Residency (mincore) predicts neither those, nor
//! file pages that are cached but not mapped. `/proc/self/pagemap` shows
//! both, and its flags are readable without privileges (the frame numbers
//! are not): a page faults on any access when it is not present (bit 63
//! clear), and on a write when it is present, private anonymous (bit 61
//! clear: not a file page or shared anonymous memory) and not exclusively
//! mapped (bit 56, Linux 4.2+). One read per operand per descriptor, the
//! cost of the mincore call it replaces.
//!
//! Not modelled: the huge zero page (pagemap calls it a file page),
//! private file mappings not yet copied, NUMA-balancing hint entries.
//! Without a readable pagemap, or one whose flags fail a check when the
//! device opens it (`flags_work`), the emulator falls back to residency
//! (mincore) and reports no write faults on resident pages.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::mover::dsa::engine::fault::page_size;

const PRESENT: u64 = 1 << 63;
const FILE_OR_SHARED: u64 = 1 << 61;
const EXCLUSIVE: u64 = 1 << 56;

/// Why a device access to a page faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Nothing present in the page table.
    NotPresent,
    /// Present, but a write needs the kernel first (zero page, COW, KSM).
    WriteProtected,
}

/// The process's pagemap, opened once per emulated device.
pub struct Pagemap {
    /// `None` when it cannot be read or its flags do not mean what the
    /// model needs (kernels before 4.2 lack the exclusive bit).
    file: Option<File>,
}

impl Pagemap {
    pub fn open() -> Pagemap {
        let file = File::open("/proc/self/pagemap").ok().filter(flags_work);
        Pagemap { file }
    }

    /// The first byte of `[addr, addr + len)`, in processing order
    /// (ascending from `addr`, or descending from `addr + len - 1`), that
    /// a device access (a write when `write`) faults on: its offset and
    /// why. `Some(None)` when none does; `None` when pagemap cannot tell
    /// (use residency instead). `scratch` is reused between calls.
    pub fn first_fault(
        &self,
        addr: u64,
        len: u64,
        descending: bool,
        write: bool,
        scratch: &mut Vec<u8>,
    ) -> Option<Option<(u64, Cause)>> {
        let file = self.file.as_ref()?;
        if len == 0 {
            return Some(None);
        }
        let ps = page_size();
        let end = addr.checked_add(len)?;
        let first = addr / ps;
        let last = (end - 1) / ps;
        let npages = usize::try_from(last - first + 1).ok()?;
        scratch.clear();
        scratch.resize(npages * 8, 0);
        let n = file.read_at(scratch, first * 8).ok()?;
        // Entries past a short read (addresses beyond user space) stay 0:
        // not present.
        let cause = |i: usize| {
            let b = &scratch[i * 8..i * 8 + 8];
            let e = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            if i >= n / 8 || e & PRESENT == 0 {
                Some(Cause::NotPresent)
            } else if write && e & (FILE_OR_SHARED | EXCLUSIVE) == 0 {
                Some(Cause::WriteProtected)
            } else {
                None
            }
        };
        let hit = (0..npages)
            .map(|k| if descending { npages - 1 - k } else { k })
            .find_map(|i| cause(i).map(|c| (i, c)));
        Some(hit.map(|(i, c)| {
            let start = (first + i as u64) * ps;
            let offset = if descending {
                (start + ps).min(end) - 1 - addr
            } else {
                start.max(addr) - addr
            };
            (offset, c)
        }))
    }
}

/// Whether pagemap tells a written private page (present, exclusive)
/// from the zero page mapped by a read (present, not exclusive), on two
/// pages mapped for the test.
fn flags_work(f: &File) -> bool {
    let ps = page_size() as usize;
    // SAFETY: a fresh private anonymous mapping chosen by the kernel.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            2 * ps,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return false;
    }
    let p = p.cast::<u8>();
    // SAFETY: both pages belong to the mapping just made, which nothing
    // else knows of: write the first, read the second (the zero page).
    unsafe {
        libc::madvise(p.cast(), 2 * ps, libc::MADV_NOHUGEPAGE);
        core::ptr::write_volatile(p, 1);
        core::ptr::read_volatile(p.add(ps));
    }
    let mut b = [0u8; 16];
    let ok = f
        .read_at(&mut b, p as u64 / ps as u64 * 8)
        .is_ok_and(|n| n == 16);
    // SAFETY: unmapping the mapping made above; no reference outlives it.
    unsafe { libc::munmap(p.cast(), 2 * ps) };
    let e = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let written = e(0);
    let zero = e(1);
    ok && written & (PRESENT | EXCLUSIVE | FILE_OR_SHARED) == PRESENT | EXCLUSIVE
        && zero & (PRESENT | EXCLUSIVE | FILE_OR_SHARED) == PRESENT
}
