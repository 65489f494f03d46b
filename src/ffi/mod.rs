//! The C boundary: every `#[no_mangle]` export and every callback stored in
//! a `struct vdm`.
//!
//! Each function here checks its pointers (NULL is handled as each contract
//! says, never dereferenced), converts, and calls the safe core. Panics
//! cannot cross into C: the library is built with `panic = "abort"` (a
//! `compile_error!` in lib.rs guards it), so a bug aborts the process
//! instead of unwinding through C frames.

pub mod future;
pub mod runtime;
pub mod sync;
pub mod threads;
pub mod vdm;

/// Writes a one-line diagnostic to stderr (best effort, never panics).
pub(crate) fn warn(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "libminiasync: {msg}");
}
