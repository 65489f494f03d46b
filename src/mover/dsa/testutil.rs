//! Test helpers shared by the DSA and emulator tests: temporary
//! directories, engines on emulated devices, buffers and patterns.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::engine::op::OpCounts;
use super::engine::{DeviceOp, Engine, EngineOptions, Poll, Release, StartError};
use crate::mover::dsa::emu::{EmuConfig, EmuDevice};
use crate::mover::Op;

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "miniasync-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An emulated device and an engine on it.
pub fn rig(cfg: EmuConfig, opts: EngineOptions) -> (Arc<EmuDevice>, Engine) {
    let dev = EmuDevice::new(cfg);
    let eng = Engine::new(dev.wq_config(), dev.clone(), opts);
    (dev, eng)
}

/// Deterministic bytes: position- and seed-dependent, never constant.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A test's own operation record (a mover keeps its records in its pool;
/// tests keep each in a box). Drop releases it, waiting for the device.
pub struct OpHandle {
    rec: Box<DeviceOp>,
    engine: *const Engine,
}

impl core::fmt::Debug for OpHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "OpHandle({:p})", &*self.rec)
    }
}

/// Handles are equal only to themselves (each owns its record), which is
/// all `assert_eq!` on a `Result<OpHandle, _>` needs.
impl PartialEq for OpHandle {
    fn eq(&self, other: &Self) -> bool {
        core::ptr::eq(&*self.rec, &*other.rec)
    }
}

// SAFETY: the record is owned by the handle and used by one thread at a
// time (the handle's holder); the engine pointer is only dereferenced
// while the engine outlives the handle (every test releases its handles
// before dropping the engine).
unsafe impl Send for OpHandle {}

impl Drop for OpHandle {
    fn drop(&mut self) {
        // SAFETY: see the `Send` impl; releasing an unused record does
        // nothing.
        let r = unsafe { (*self.engine).release_op(&self.rec) };
        if r == Release::Quarantined {
            // The device may still write the record: never free it.
            let rec = core::mem::replace(&mut self.rec, Box::new(DeviceOp::default()));
            Box::leak(rec);
        }
    }
}

/// The engine driven through test-owned records, with the handle-based
/// calls the tests are written in.
pub trait Drive {
    /// Starts `op` on a fresh record.
    ///
    /// # Safety
    /// As for [`Engine::start_op`]'s buffer contract.
    unsafe fn start(&self, op: &Op, queue: bool) -> Result<OpHandle, StartError>;
    fn poll(&self, h: &mut OpHandle) -> Poll;
    fn wait(&self, h: &mut OpHandle) -> Poll;
    fn release(&self, h: OpHandle);
    fn monitor_of(&self, h: &OpHandle) -> *const u64;
    /// What the handle's operation met on the device so far.
    fn counts(&self, h: &OpHandle) -> OpCounts;
}

impl Drive for Engine {
    unsafe fn start(&self, op: &Op, queue: bool) -> Result<OpHandle, StartError> {
        let rec = Box::new(DeviceOp::default());
        // SAFETY: a fresh record owned by this thread; the buffers are the
        // caller's contract.
        unsafe { self.start_op(&rec, op, queue) }?;
        Ok(OpHandle { rec, engine: self })
    }

    fn poll(&self, h: &mut OpHandle) -> Poll {
        // SAFETY: the handle owns its started record; `&mut` is exclusive.
        unsafe { self.poll_op(&h.rec) }
    }

    fn wait(&self, h: &mut OpHandle) -> Poll {
        // SAFETY: as for `poll`.
        unsafe { self.wait_op(&h.rec) }
    }

    fn release(&self, h: OpHandle) {
        drop(h);
    }

    fn monitor_of(&self, h: &OpHandle) -> *const u64 {
        self.monitor_addr(&h.rec)
    }

    fn counts(&self, h: &OpHandle) -> OpCounts {
        // SAFETY: as for `poll`: the handle is borrowed, so nobody polls
        // it meanwhile.
        unsafe { self.op_counts(&h.rec) }
    }
}

/// Poll until the op ends, then release it.
pub fn finish(eng: &Engine, mut h: OpHandle) -> Poll {
    let p = eng.wait(&mut h);
    eng.release(h);
    p
}

/// Drive an op the way a `FUTURE_NOTIFIER_POLLER` waiter would: poll only
/// when the monitor word is non-zero. Panics if the word stays 0 for 10 s
/// (the op would never be polled again: a contract violation).
pub fn finish_watching(eng: &Engine, mut h: OpHandle) -> Poll {
    let word = eng.monitor_of(&h);
    loop {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // SAFETY: the monitor word stays valid until `release` below.
        while unsafe { core::ptr::read_volatile(word) } == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "monitor word stuck at 0"
            );
            std::thread::yield_now();
        }
        match eng.poll(&mut h) {
            Poll::Running => continue,
            p => {
                eng.release(h);
                return p;
            }
        }
    }
}
