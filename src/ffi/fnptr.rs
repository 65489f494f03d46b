//! Every function-pointer cast of the crate, in one place.
//!
//! The C signatures of the `struct future` and `struct vdm` fields take and
//! return C enums. C may pass or return any `int` there, and a Rust enum
//! holding a value outside its variants is undefined behaviour, so:
//! - every function of ours stored in such a field is written with
//!   [`RawEnum`] in place of the enum (a `#[repr(transparent)]` `u32`,
//!   ABI-identical to the C `int` the enum is passed as) and typed for the
//!   field by one of the `*_fn` functions here;
//! - every call through such a field (whose function may be C's) goes
//!   through the raw type, obtained with one of the `raw_*` functions here.
//!
//! So a function is always called through exactly the type it was defined
//! with when both sides are Rust (which is what Miri checks), and a value C
//! returns is only ever read as an integer.
//!
//! The threads mover's custom memory functions are stored in atomic
//! pointers; the conversions between a function and its pointer are here
//! too.

use core::ffi::{c_int, c_uint, c_void};

use super::view::RawEnum;
use crate::abi::{
    future_context, future_has_property_fn, future_notifier, future_property, future_state,
    future_task_fn, vdm, vdm_operation, vdm_operation_check, vdm_operation_new, vdm_operation_type,
};

/// A future's task, with the state as C returns it.
pub(crate) type RawTask =
    unsafe extern "C" fn(*mut future_context, *mut future_notifier) -> RawEnum<future_state>;
/// A future's property function, with the property as C passes it.
pub(crate) type RawHasProperty =
    unsafe extern "C" fn(*mut c_void, RawEnum<future_property>) -> c_int;
/// A mover's `op_new`, with the type as C passes it.
pub(crate) type RawOpNew =
    unsafe extern "C" fn(*mut vdm, RawEnum<vdm_operation_type>) -> *mut c_void;
/// A mover's `op_check`, with the state as C returns it.
pub(crate) type RawOpCheck =
    unsafe extern "C" fn(*mut c_void, *const vdm_operation) -> RawEnum<future_state>;

type TypedTask = unsafe extern "C" fn(*mut future_context, *mut future_notifier) -> future_state;
type TypedHasProperty = unsafe extern "C" fn(*mut c_void, future_property) -> c_int;
type TypedOpNew = unsafe extern "C" fn(*mut vdm, vdm_operation_type) -> *mut c_void;
type TypedOpCheck = unsafe extern "C" fn(*mut c_void, *const vdm_operation) -> future_state;

/// The pair of conversions between a raw and a typed signature. They
/// differ only in a C enum slot, `RawEnum` (a transparent `u32`) on one
/// side and the `#[repr(C)]` enum on the other. Rust's rules do not promise
/// that these two are ABI-compatible, so neither direction relies on it
/// between Rust functions: every Rust function stored in a C field is
/// defined with `RawEnum` and called only through the raw type. Between
/// Rust and C it holds on every target we build for: the C enum is passed
/// as a 32-bit integer in the same register or stack slot as a `u32`
/// (GCC and Clang give these non-negative enums `unsigned int`).
macro_rules! casts {
    ($to_typed:ident, $to_raw:ident, $raw:ty, $typed:ty, $field:ty) => {
        /// Types a raw-signature function for its C field.
        pub(crate) fn $to_typed(f: $raw) -> $field {
            // SAFETY: see the macro's comment: one ABI.
            Some(unsafe { core::mem::transmute::<$raw, $typed>(f) })
        }

        /// The raw-signature view of a C field's function, to call it.
        pub(crate) fn $to_raw(f: $typed) -> $raw {
            // SAFETY: see the macro's comment: one ABI.
            unsafe { core::mem::transmute::<$typed, $raw>(f) }
        }
    };
}

casts!(task_fn, raw_task, RawTask, TypedTask, future_task_fn);
casts!(
    has_property_fn,
    raw_has_property,
    RawHasProperty,
    TypedHasProperty,
    future_has_property_fn
);
casts!(
    op_new_fn,
    raw_op_new,
    RawOpNew,
    TypedOpNew,
    vdm_operation_new
);
casts!(
    op_check_fn,
    raw_op_check,
    RawOpCheck,
    TypedOpCheck,
    vdm_operation_check
);

/// `memcpy_fn` / `memmove_fn` without the `Option`.
pub(crate) type CopyFn =
    unsafe extern "C" fn(*mut c_void, *const c_void, usize, c_uint) -> *mut c_void;
/// `memset_fn` without the `Option`.
pub(crate) type SetFn = unsafe extern "C" fn(*mut c_void, c_int, usize, c_uint) -> *mut c_void;

/// A copy function as a pointer, for an `AtomicPtr` (keeps its
/// provenance, unlike an integer).
pub(crate) fn copy_fn_ptr(f: CopyFn) -> *mut () {
    f as *mut ()
}

/// The copy function a pointer from [`copy_fn_ptr`] holds.
///
/// # Safety
/// `p` must come from [`copy_fn_ptr`].
pub(crate) unsafe fn copy_fn_of(p: *mut ()) -> CopyFn {
    // SAFETY: caller's contract: `p` is a `CopyFn` cast to a pointer.
    unsafe { core::mem::transmute::<*mut (), CopyFn>(p) }
}

/// A set function as a pointer, for an `AtomicPtr`.
pub(crate) fn set_fn_ptr(f: SetFn) -> *mut () {
    f as *mut ()
}

/// The set function a pointer from [`set_fn_ptr`] holds.
///
/// # Safety
/// `p` must come from [`set_fn_ptr`].
pub(crate) unsafe fn set_fn_of(p: *mut ()) -> SetFn {
    // SAFETY: caller's contract: `p` is a `SetFn` cast to a pointer.
    unsafe { core::mem::transmute::<*mut (), SetFn>(p) }
}
