//! The C boundary: every `#[no_mangle]` export and every callback stored in
//! a `struct vdm`.
//!
//! Each function here checks its pointers (NULL is handled as each contract
//! says, never dereferenced), converts, and calls the safe core. Panics
//! cannot cross into C: the library is built with `panic = "abort"` (a
//! `compile_error!` in lib.rs guards it), so a bug aborts the process
//! instead of unwinding through C frames.

mod callbacks;
pub mod dml;
pub mod future;
pub mod runtime;
pub mod sync;
pub mod threads;
pub mod vdm;

/// An `op_new` callback whose type argument is a plain integer, as the
/// `struct vdm` field's type. C may pass any `int` as the enum; a Rust enum
/// parameter holding a value outside its variants would be undefined
/// behaviour, so our callbacks never take the enum.
pub(crate) fn op_new_fn(f: RawOpNew) -> crate::abi::vdm_operation_new {
    // SAFETY: `enum vdm_operation_type` is passed as a C int; a function
    // taking u32 in its place has the same ABI.
    Some(unsafe { core::mem::transmute::<RawOpNew, TypedOpNew>(f) })
}

type RawOpNew = unsafe extern "C" fn(*mut crate::abi::vdm, u32) -> *mut core::ffi::c_void;
type TypedOpNew = unsafe extern "C" fn(
    *mut crate::abi::vdm,
    crate::abi::vdm_operation_type,
) -> *mut core::ffi::c_void;

pub(crate) use crate::log::warn;
