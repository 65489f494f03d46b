//! Per-mover statistics: what each mover did, read from C through
//! `data_mover_*_get_stats` and dumped at exit with `MINIASYNC_STATS`.
//!
//! Counting must cost the operation path no locked instruction (the sync
//! mover's whole operation is a few dozen instructions). So each thread
//! that counts for a mover gets a counter block of its own, which only it
//! writes (a relaxed load and a plain store per counter, no read-modify-
//! write); readers add the blocks up with relaxed loads. A small
//! thread-local cache maps the mover (by a serial number unique for the
//! process's life, so a new mover at a reused address never finds an old
//! block) to the thread's block; only the first count of a thread for a
//! mover takes the mover's lock. Blocks live as long as the mover, so the
//! counts of threads that exited stay in the totals.
//!
//! A reader running while operations are counted sees each counter at
//! some recent value; counters are not a consistent snapshot of each
//! other (`ops` may already include an operation whose `cpu_ops` is not
//! counted yet).

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;

use super::{Op, OpKind};

/// What is counted. The discriminant is the counter's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    /// Operations started, of every type.
    Ops,
    OpsMemcpy,
    OpsMemmove,
    OpsMemset,
    OpsFlush,
    /// Bytes of the started operations.
    Bytes,
    /// Completed on the device.
    DeviceOps,
    /// Run on the CPU.
    CpuOps,
    /// Started on the device, finished on the CPU.
    MixedOps,
    /// Bytes the device moved (device and mixed operations' device part
    /// counted whole).
    DeviceBytes,
    /// Fallbacks to the CPU, by reason.
    FallbackSmall,
    FallbackBusy,
    FallbackFault,
    FallbackError,
    FallbackUnsupported,
    FallbackFork,
    FallbackHalted,
    PageFaults,
    Batches,
    Retries,
    /// Operations that ended with an error result.
    Errors,
    Timeouts,
}

const N: usize = Counter::Timeouts as usize + 1;

/// One thread's counters for one mover. Cache-line aligned so that two
/// threads' blocks never share a line.
#[repr(align(64))]
struct Block {
    c: [AtomicU64; N],
}

impl Block {
    fn new() -> Block {
        Block {
            c: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Only the block's thread calls this: load and store, no RMW.
    #[inline(always)]
    fn add(&self, c: Counter, n: u64) {
        let a = &self.c[c as usize];
        a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }
}

/// Which mover, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Sync,
    Threads,
    Dsa,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sync => "sync",
            Kind::Threads => "threads",
            Kind::Dsa => "dsa",
        }
    }
}

/// A work queue a mover used: identity (from discovery) and what went
/// through it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueueInfo {
    pub name: String,
    pub device: String,
    pub numa_node: i32,
}

/// The totals at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub kind: Kind,
    /// The DSA mover's path (`software`, `hardware`, `auto`).
    pub path: Option<&'static str>,
    c: [u64; N],
    pub queues: Vec<(QueueInfo, u64, u64)>,
}

impl Snapshot {
    /// One counter's total.
    pub fn get(&self, c: Counter) -> u64 {
        self.c[c as usize]
    }
}

/// The statistics of one mover.
pub(crate) struct MoverStats {
    serial: u64,
    kind: Kind,
    path: Option<&'static str>,
    /// The queue its device operations go to (one for now).
    queue: Option<QueueInfo>,
    blocks: Mutex<Vec<(ThreadId, Box<Block>)>>,
}

/// Entries of the per-thread cache: (mover serial, block).
const CACHE: usize = 4;

std::thread_local! {
    static BLOCKS: Cell<[(u64, *const Block); CACHE]> =
        const { Cell::new([(0, core::ptr::null()); CACHE]) };
}

impl MoverStats {
    pub fn new(kind: Kind, path: Option<&'static str>, queue: Option<QueueInfo>) -> MoverStats {
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        let s = MoverStats {
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            kind,
            path,
            queue,
            blocks: Mutex::new(Vec::new()),
        };
        report::enable_from_env();
        s
    }

    /// Counts `n` for `c` (from any thread).
    #[inline]
    pub fn add(&self, c: Counter, n: u64) {
        self.block().add(c, n);
    }

    /// Counts a started operation: its type and bytes.
    #[inline]
    pub fn started(&self, op: &Op) {
        Self::count_start(self.block(), op);
    }

    /// Counts an operation started and run on the CPU (one block lookup).
    #[inline]
    pub fn started_on_cpu(&self, op: &Op) {
        let b = self.block();
        Self::count_start(b, op);
        b.add(Counter::CpuOps, 1);
    }

    #[inline(always)]
    fn count_start(b: &Block, op: &Op) {
        b.add(Counter::Ops, 1);
        b.add(
            match op.kind {
                OpKind::Copy => Counter::OpsMemcpy,
                OpKind::Move => Counter::OpsMemmove,
                OpKind::Fill => Counter::OpsMemset,
                OpKind::Flush => Counter::OpsFlush,
            },
            1,
        );
        b.add(Counter::Bytes, op.len as u64);
    }

    #[inline]
    fn block(&self) -> &Block {
        let cache = BLOCKS.with(Cell::get);
        for (s, b) in cache {
            if s == self.serial {
                // SAFETY: the entry was stored by `block_slow` for this
                // mover (serials are never reused), whose blocks live as
                // long as it does; the caller holds a reference to it.
                return unsafe { &*b };
            }
        }
        self.block_slow()
    }

    #[cold]
    #[inline(never)]
    fn block_slow(&self) -> &Block {
        let me = std::thread::current().id();
        let mut v = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        let p: *const Block = match v.iter().find(|(t, _)| *t == me) {
            Some((_, b)) => &**b,
            None => {
                v.push((me, Box::new(Block::new())));
                &*v[v.len() - 1].1
            }
        };
        drop(v);
        BLOCKS.with(|c| {
            let mut a = c.get();
            a.rotate_right(1);
            a[0] = (self.serial, p);
            c.set(a);
        });
        // SAFETY: the block is boxed (its address is stable) and owned by
        // `self.blocks`, which only grows while `self` lives.
        unsafe { &*p }
    }

    /// The totals now.
    pub fn snapshot(&self) -> Snapshot {
        let mut c = [0u64; N];
        for (_, b) in self.blocks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            for (t, a) in c.iter_mut().zip(b.c.iter()) {
                *t = t.wrapping_add(a.load(Ordering::Relaxed));
            }
        }
        let queues = self.queue.iter().map(|q| {
            let ops = c[Counter::DeviceOps as usize] + c[Counter::MixedOps as usize];
            (q.clone(), ops, c[Counter::DeviceBytes as usize])
        });
        Snapshot {
            kind: self.kind,
            path: self.path,
            c,
            queues: queues.collect(),
        }
    }

    /// Registers the mover for the exit report (when `MINIASYNC_STATS` is
    /// set). The mover must call [`unregister`](Self::unregister) before
    /// it is freed, and must not move in between.
    pub fn register(&self) {
        report::register(self);
    }

    /// Takes the mover out of the exit report, keeping its final totals.
    pub fn unregister(&self) {
        report::unregister(self);
    }
}

/// The JSON object of one mover (the format of README's "Statistics").
fn json(s: &Snapshot, out: &mut String) {
    use Counter::*;
    let g = |c| s.get(c);
    let _ = write!(out, "{{\"kind\": \"{}\", \"path\": ", s.kind.name());
    match s.path {
        Some(p) => {
            let _ = write!(out, "\"{p}\"");
        }
        None => out.push_str("null"),
    }
    let _ = write!(
        out,
        ", \"ops\": {}, \"ops_by_type\": {{\"memcpy\": {}, \"memmove\": {}, \"memset\": {}, \
         \"flush\": {}}}, \"bytes\": {}, \"device_ops\": {}, \"cpu_ops\": {}, \"mixed_ops\": {}, \
         \"fallbacks\": {{\"small\": {}, \"busy\": {}, \"fault\": {}, \"error\": {}, \
         \"unsupported\": {}, \"fork\": {}, \"halted\": {}}}, \"page_faults\": {}, \
         \"batches\": {}, \"retries\": {}, \"errors\": {}, \"timeouts\": {}, \"queues\": [",
        g(Ops),
        g(OpsMemcpy),
        g(OpsMemmove),
        g(OpsMemset),
        g(OpsFlush),
        g(Bytes),
        g(DeviceOps),
        g(CpuOps),
        g(MixedOps),
        g(FallbackSmall),
        g(FallbackBusy),
        g(FallbackFault),
        g(FallbackError),
        g(FallbackUnsupported),
        g(FallbackFork),
        g(FallbackHalted),
        g(PageFaults),
        g(Batches),
        g(Retries),
        g(Errors),
        g(Timeouts),
    );
    for (i, (q, ops, bytes)) in s.queues.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(
            out,
            "{{\"name\": \"{}\", \"device\": \"{}\", \"numa_node\": {}, \"ops\": {ops}, \
             \"bytes\": {bytes}}}",
            escape(&q.name),
            escape(&q.device),
            q.numa_node
        );
    }
    out.push_str("]}");
}

/// A JSON string body: quotes, backslashes and control characters escaped.
fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// One mover as text: one line of `name=value` pairs (zeros left out).
fn text(s: &Snapshot, out: &mut String) {
    use Counter::*;
    let _ = write!(out, "libminiasync: {} mover", s.kind.name());
    if let Some(p) = s.path {
        let _ = write!(out, " ({p})");
    }
    let names = [
        (Ops, "ops"),
        (OpsMemcpy, "memcpy"),
        (OpsMemmove, "memmove"),
        (OpsMemset, "memset"),
        (OpsFlush, "flush"),
        (Bytes, "bytes"),
        (DeviceOps, "device_ops"),
        (CpuOps, "cpu_ops"),
        (MixedOps, "mixed_ops"),
        (FallbackSmall, "fallback_small"),
        (FallbackBusy, "fallback_busy"),
        (FallbackFault, "fallback_fault"),
        (FallbackError, "fallback_error"),
        (FallbackUnsupported, "fallback_unsupported"),
        (FallbackFork, "fallback_fork"),
        (FallbackHalted, "fallback_halted"),
        (PageFaults, "page_faults"),
        (Batches, "batches"),
        (Retries, "retries"),
        (Errors, "errors"),
        (Timeouts, "timeouts"),
    ];
    for (c, n) in names {
        let v = s.get(c);
        if v != 0 || c == Ops {
            let _ = write!(out, " {n}={v}");
        }
    }
    for (q, ops, bytes) in &s.queues {
        let _ = write!(
            out,
            " queue={}/{}/numa{} queue_ops={ops} queue_bytes={bytes}",
            q.device, q.name, q.numa_node
        );
    }
    out.push('\n');
}

/// The exit report: `MINIASYNC_STATS=json` or `=text` writes every mover's
/// totals (live ones and deleted ones) at exit to `MINIASYNC_STATS_FILE`,
/// or to stderr.
mod report {
    use super::*;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Format {
        Json,
        Text,
    }

    struct Registry {
        /// Live movers' statistics, by address.
        live: Vec<usize>,
        /// Totals of the movers deleted so far.
        retired: Vec<Snapshot>,
    }

    static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
        live: Vec::new(),
        retired: Vec::new(),
    });

    fn format() -> Option<Format> {
        static F: OnceLock<Option<Format>> = OnceLock::new();
        *F.get_or_init(|| match std::env::var("MINIASYNC_STATS").ok()?.trim() {
            "json" => Some(Format::Json),
            "text" | "1" => Some(Format::Text),
            _ => None,
        })
    }

    /// Installs the exit hook once, if a report is asked for.
    pub(super) fn enable_from_env() {
        static HOOK: OnceLock<()> = OnceLock::new();
        if format().is_some() {
            HOOK.get_or_init(|| {
                // SAFETY: registering a function with the C signature
                // `void (*)(void)` that does not unwind (panic = abort).
                unsafe { libc::atexit(at_exit) };
            });
        }
    }

    pub(super) fn register(s: &MoverStats) {
        if format().is_some() {
            let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            r.live.push(s as *const MoverStats as usize);
        }
    }

    pub(super) fn unregister(s: &MoverStats) {
        if format().is_some() {
            let snap = s.snapshot();
            let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            let me = s as *const MoverStats as usize;
            if let Some(i) = r.live.iter().position(|&p| p == me) {
                r.live.swap_remove(i);
                r.retired.push(snap);
            }
        }
    }

    /// Every mover's totals: the deleted ones, then the live ones.
    fn collect() -> Vec<Snapshot> {
        let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<Snapshot> = r.retired.clone();
        for &p in &r.live {
            // SAFETY: a live mover's statistics: movers unregister (under
            // this lock) before they are freed.
            all.push(unsafe { &*(p as *const MoverStats) }.snapshot());
        }
        all
    }

    /// The first line of a text report of process `pid`.
    fn text_header(pid: u32) -> String {
        format!("libminiasync: statistics of process {pid}\n")
    }

    /// The report of `movers`, merged into `existing` when that is this
    /// process's report already (libminiasync.so and libminiasync-vdm-dml.so
    /// each hold their own movers and write their own part at exit).
    fn render(f: Format, pid: u32, movers: &[Snapshot], existing: &str) -> String {
        match f {
            Format::Json => {
                let head = format!("{{\"pid\": {pid}, \"movers\": [");
                let mut out = String::new();
                let mut first = true;
                match existing
                    .strip_prefix(head.as_str())
                    .and_then(|r| r.strip_suffix("]}\n"))
                {
                    Some(prev) => {
                        out.push_str(&head);
                        out.push_str(prev);
                        first = prev.is_empty();
                    }
                    None => out.push_str(&head),
                }
                for s in movers {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    json(s, &mut out);
                }
                out.push_str("]}\n");
                out
            }
            Format::Text => {
                let head = text_header(pid);
                let mut out = if existing.starts_with(head.as_str()) {
                    existing.to_string()
                } else {
                    head
                };
                movers.iter().for_each(|s| text(s, &mut out));
                out
            }
        }
    }

    /// Writes (or merges) the report into `path`, under an exclusive
    /// `flock` so the two libraries of one process do not interleave.
    fn write_file(path: &std::ffi::OsStr, f: Format, movers: &[Snapshot]) -> std::io::Result<()> {
        use std::io::{Read as _, Seek as _, Write as _};
        use std::os::fd::AsRawFd as _;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // SAFETY: flock on a descriptor this function owns; released when
        // the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut existing = String::new();
        // A file that is not text is simply replaced.
        let _ = file.read_to_string(&mut existing);
        let out = render(f, std::process::id(), movers, &existing);
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(out.as_bytes())
    }

    extern "C" fn at_exit() {
        let Some(f) = format() else { return };
        let movers = collect();
        match std::env::var_os("MINIASYNC_STATS_FILE") {
            Some(path) if !path.is_empty() => {
                if let Err(e) = write_file(&path, f, &movers) {
                    crate::log::warn(&format!(
                        "MINIASYNC_STATS_FILE={}: {e}",
                        path.to_string_lossy()
                    ));
                }
            }
            _ => {
                use std::io::Write as _;
                let out = render(f, std::process::id(), &movers, "");
                let _ = std::io::stderr().write_all(out.as_bytes());
            }
        }
    }

    #[cfg(test)]
    pub(super) fn render_for_test(json: bool, movers: &[Snapshot], existing: &str) -> String {
        render(
            if json { Format::Json } else { Format::Text },
            42,
            movers,
            existing,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mover::Hints;

    #[test]
    fn counts_from_many_threads_add_up_and_outlive_the_threads() {
        let s = MoverStats::new(Kind::Sync, None, None);
        let op = Op::copy(0x1000, 0x2000, 100, Hints::default());
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    for _ in 0..10_000 {
                        s.started(&op);
                        s.add(Counter::CpuOps, 1);
                    }
                });
            }
        });
        let snap = s.snapshot();
        assert_eq!(snap.get(Counter::Ops), 40_000);
        assert_eq!(snap.get(Counter::OpsMemcpy), 40_000);
        assert_eq!(snap.get(Counter::OpsMemset), 0);
        assert_eq!(snap.get(Counter::Bytes), 4_000_000);
        assert_eq!(snap.get(Counter::CpuOps), 40_000);
    }

    #[test]
    fn a_new_mover_never_sees_an_old_movers_block() {
        // The thread caches (serial, block) pairs: more movers than cache
        // entries, created and dropped in turn (addresses may repeat).
        for round in 0..(3 * CACHE as u64) {
            let s = MoverStats::new(Kind::Threads, None, None);
            s.add(Counter::Errors, round + 1);
            assert_eq!(s.snapshot().get(Counter::Errors), round + 1);
        }
    }

    #[test]
    fn json_and_text_name_every_counter() {
        let q = QueueInfo {
            name: "wq0.0".into(),
            device: "dsa0".into(),
            numa_node: -1,
        };
        let s = MoverStats::new(Kind::Dsa, Some("auto"), Some(q));
        s.add(Counter::DeviceOps, 2);
        s.add(Counter::DeviceBytes, 8192);
        s.add(Counter::FallbackSmall, 3);
        let mut j = String::new();
        json(&s.snapshot(), &mut j);
        assert!(
            j.starts_with("{\"kind\": \"dsa\", \"path\": \"auto\", \"ops\": 0"),
            "{j}"
        );
        assert!(j.contains("\"device_ops\": 2"), "{j}");
        assert!(j.contains("\"small\": 3"), "{j}");
        assert!(j.contains(
            "\"queues\": [{\"name\": \"wq0.0\", \"device\": \"dsa0\", \"numa_node\": -1, \
             \"ops\": 2, \"bytes\": 8192}]"
        ));
        let mut t = String::new();
        text(&s.snapshot(), &mut t);
        assert!(t.contains("dsa mover (auto) ops=0 device_ops=2"), "{t}");
        assert!(t.contains("fallback_small=3"), "{t}");
        assert_eq!(escape("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
    }

    #[test]
    fn the_two_libraries_reports_merge_into_one() {
        let a = MoverStats::new(Kind::Sync, None, None);
        a.add(Counter::Ops, 1);
        let b = MoverStats::new(Kind::Dsa, Some("hardware"), None);
        b.add(Counter::Ops, 2);
        let (sa, sb) = (a.snapshot(), b.snapshot());
        let first = report::render_for_test(true, core::slice::from_ref(&sa), "");
        assert!(first.starts_with("{\"pid\": 42, \"movers\": [{\"kind\": \"sync\""));
        let both = report::render_for_test(true, core::slice::from_ref(&sb), &first);
        assert_eq!(both.matches("\"kind\"").count(), 2, "{both}");
        assert!(both.contains("}, {\"kind\": \"dsa\", \"path\": \"hardware\", \"ops\": 2"));
        assert!(both.ends_with("]}\n"));
        // Another process's report (or anything else) is replaced.
        let other = first.replace("\"pid\": 42", "\"pid\": 7");
        let fresh = report::render_for_test(true, core::slice::from_ref(&sb), &other);
        assert_eq!(fresh.matches("\"kind\"").count(), 1, "{fresh}");
        // An empty first part merges without a stray comma.
        let empty = report::render_for_test(true, &[], "");
        let one = report::render_for_test(true, core::slice::from_ref(&sa), &empty);
        assert!(one.starts_with("{\"pid\": 42, \"movers\": [{"), "{one}");
        // Text: one header, then a line per mover from both parts.
        let t1 = report::render_for_test(false, core::slice::from_ref(&sa), "");
        let t2 = report::render_for_test(false, core::slice::from_ref(&sb), &t1);
        assert_eq!(t2.lines().count(), 3, "{t2}");
        assert!(t2.starts_with("libminiasync: statistics of process 42\n"));
    }
}
