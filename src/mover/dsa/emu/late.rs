//! Completion records written late, from another thread: what a DSA 2.0
//! kernel does after a completion-record page fault (DSA.md 12.3). The
//! device reports the fault through its event log instead of writing the
//! record, and the kernel writes the real record some time later (fields
//! first, status last), from its own thread; user space never sees 0x1a.
//! Records still pending when the device is dropped are never written.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::mover::dsa::hw::{CompletionRecord, CrCell};

struct Late {
    at: Instant,
    addr: u64,
    rec: CompletionRecord,
}

#[derive(Default)]
struct Pending {
    shutdown: bool,
    due: Vec<Late>,
}

#[derive(Default)]
struct Inner {
    pending: Mutex<Pending>,
    cv: Condvar,
}

/// The "kernel" thread that writes late records.
pub struct LateWriter {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl LateWriter {
    pub fn new() -> LateWriter {
        let inner = Arc::new(Inner::default());
        let i = inner.clone();
        let thread = std::thread::Builder::new()
            .name("dsa-emu-late".into())
            .spawn(move || run(&i))
            .expect("spawn emulated DSA late-record thread");
        LateWriter {
            inner,
            thread: Some(thread),
        }
    }

    /// Write `rec` at `addr` after `delay`.
    ///
    /// # Safety
    /// `addr` is a completion address the device was given: 32-byte
    /// aligned, mapped, and (the submitter's promise, `Portal::submit`)
    /// allocated and accessed only atomically until its record is written.
    pub unsafe fn push(&self, addr: u64, rec: CompletionRecord, delay: Duration) {
        let mut p = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.due.push(Late {
            at: Instant::now() + delay,
            addr,
            rec,
        });
        self.inner.cv.notify_one();
    }
}

impl Drop for LateWriter {
    fn drop(&mut self) {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shutdown = true;
        self.inner.cv.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(inner: &Inner) {
    let mut p = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if p.shutdown {
            return;
        }
        let now = Instant::now();
        let next = p
            .due
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| l.at)
            .map(|(i, l)| (i, l.at));
        p = match next {
            Some((i, at)) if at <= now => {
                let l = p.due.swap_remove(i);
                drop(p);
                // SAFETY: `push`'s contract: the record is still allocated
                // and accessed only atomically until this write.
                let cell = unsafe { CrCell::at(l.addr) };
                cell.publish_fields(&l.rec);
                cell.set_status(l.rec.status);
                inner.pending.lock().unwrap_or_else(|e| e.into_inner())
            }
            Some((_, at)) => {
                inner
                    .cv
                    .wait_timeout(p, at - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => inner.cv.wait(p).unwrap_or_else(|e| e.into_inner()),
        };
    }
}
