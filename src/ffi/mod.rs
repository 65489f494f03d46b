//! The C boundary: every `#[no_mangle]` export, every callback stored in a
//! `struct vdm`, and the only code that turns C pointers into Rust values.
//!
//! - [`view`]: the safe views (a future, a notifier, a vdm operation, a C
//!   enum's raw value) and the four `struct vdm` callbacks;
//! - [`fnptr`]: every function-pointer cast;
//! - one file of exports per header: `future.rs`, `runtime.rs`, `vdm.rs`,
//!   `sync.rs`, `threads.rs`, `dml.rs` (`libminiasync-vdm-dml`).
//!
//! Each export takes its pointers as `Option<NonNull<T>>` (or `Option<&T>`
//! where the contract gives a reference), handles NULL as its contract
//! says, builds the views and calls the safe core. Policy (capabilities,
//! defaults, engine choice) lives with the movers. Panics cannot cross into
//! C: the library is built with `panic = "abort"` (a `compile_error!` in
//! lib.rs guards it), so a bug aborts the process instead of unwinding
//! through C frames.

mod dml;
pub(crate) mod fnptr;
mod future;
mod runtime;
mod stats;
mod sync;
mod threads;
mod vdm;
pub(crate) mod view;

pub(crate) use runtime::runtime_wake;

use crate::log::warn;
