//! miniasync-rs: a Rust implementation of libminiasync 0.2.1 and
//! libminiasync-vdm-dml behind their exact C ABI.
//!
//! # Layers
//! - [`abi`]: `#[repr(C)]` mirrors of the public C types, with layout pins;
//!   cbindgen generates the C definitions from them. No behaviour.
//! - [`ffi`]: every `#[no_mangle]` export and every callback stored in a
//!   `struct vdm`, and the safe views through which the core sees C memory.
//!   Each one checks its pointers, builds the views and calls the core.
//! - everything else ([`runtime`], [`mover`]) is the safe core;
//!   [`arch`] holds its architecture-specific instructions (inline assembly,
//!   CPUID) behind a portable API, so nothing else needs `cfg(target_arch)`.
//!   [`sync`] holds its concurrency primitives (event count, backoff).
//!
//! # What ships
//! The product is the C ABI: every module is private, and the exports are
//! reachable only as the `#[no_mangle]` symbols of `libminiasync` and
//! `libminiasync-vdm-dml`. There is no public Rust API yet. Code that only
//! the tests need (the emulator's fault-injection hooks and counters, the
//! fake sysfs writer, the engine's counters, inspection helpers) is
//! compiled under `cfg(test)` and absent from the shipped libraries; the
//! emulated work queue itself ships (`MINIASYNC_DSA_EMULATE=1`). The
//! compiler's dead-code lint covers the whole crate, so a shipped item
//! nothing uses fails `make check-lint`.
//!
//! # Safety vocabulary
//! The `# Safety` sections of this crate use these terms:
//! - *valid for reads/writes*: as in `core::ptr`, for the stated size;
//! - *a live future*: a pointer to a `struct future` followed by
//!   `context.data_size + context.output_size` bytes that the caller owns
//!   and nobody else touches for the duration of the call; the pointer must
//!   be valid for all of them (in Rust: derived from the whole future, not
//!   from a reference to its `struct future` header);
//! - *an op handle*: a pointer returned by one of our `op_new` callbacks and
//!   not yet passed to `op_delete`; it points to a record owned by a pool
//!   that lives as long as its mover.

#[cfg(all(not(test), not(panic = "abort")))]
compile_error!("miniasync must be built with panic = \"abort\": panics must never unwind into C");

mod abi;
mod arch;
mod ffi;
mod log;
mod mover;
mod runtime;
mod sync;
