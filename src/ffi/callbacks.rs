//! The four `struct vdm` callbacks (`op_new`, `op_start`, `op_check`,
//! `op_delete`), written once for every mover.
//!
//! A mover's op handle is a pointer to its record, and every record knows
//! its mover, so each callback only checks its pointers, finds the pair and
//! calls the mover through [`Mover`].

use core::ffi::{c_int, c_void};

use crate::abi::*;
use crate::future as fut;

/// What a mover offers the callbacks. The mover's `struct vdm` must be at
/// offset 0 of `Self`.
pub(crate) trait Mover: Sized {
    /// Per-operation record; its address is the op handle.
    type Op;

    /// The mover a record belongs to.
    fn owner_of(op: &Self::Op) -> *const Self;

    /// Reserves a record, or `None` at the bound of outstanding ops.
    fn new_op(&self) -> Option<&Self::Op>;

    /// Starts the operation; `false` means "not started, poll again".
    ///
    /// # Safety
    /// `op` must be a live record of this mover, the operation's buffers
    /// valid as its type implies, `n` NULL or writable.
    unsafe fn start(
        &self,
        op: &Self::Op,
        operation: &vdm_operation,
        n: *mut future_notifier,
    ) -> bool;

    /// `FUTURE_STATE_*` of a started operation, as an integer.
    ///
    /// # Safety
    /// `op` must be a live record of this mover.
    unsafe fn check(&self, op: &Self::Op) -> u32;

    /// Fills the output and releases the record.
    ///
    /// # Safety
    /// `op` must be a live record of this mover, not used afterwards.
    unsafe fn delete(
        &self,
        op: &Self::Op,
        operation: &vdm_operation,
        out: &mut vdm_operation_output,
    );
}

/// # Safety
/// `data` must be an op handle of an `M` mover.
unsafe fn record<'a, M: Mover>(data: *mut c_void) -> (&'a M, &'a M::Op) {
    // SAFETY: caller's contract: a live record whose mover outlives it.
    unsafe {
        let op = &*data.cast::<M::Op>();
        (&*M::owner_of(op), op)
    }
}

/// `op_new`: a record of the mover behind `v`, or NULL. The type argument
/// is taken as an integer (C may pass any value) and not needed.
///
/// # Safety
/// `v` must be NULL or the `struct vdm` of an `M` mover.
pub(crate) unsafe extern "C" fn op_new<M: Mover>(v: *mut vdm, _type: u32) -> *mut c_void {
    if v.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: caller's contract; the vdm is the mover's first field.
    let m = unsafe { &*v.cast::<M>() };
    m.new_op().map_or(core::ptr::null_mut(), |op| {
        (op as *const M::Op).cast_mut().cast()
    })
}

/// `op_start`: 0 started (or finished), 1 not started (NULL handle or
/// operation, or no room yet; the next poll retries).
///
/// # Safety
/// `data` NULL or an op handle of an `M` mover; `op` NULL or the future's
/// operation; `n` NULL or writable.
pub(crate) unsafe extern "C" fn op_start<M: Mover>(
    data: *mut c_void,
    op: *const vdm_operation,
    n: *mut future_notifier,
) -> c_int {
    if data.is_null() || op.is_null() {
        return 1;
    }
    // SAFETY: caller's contract.
    let started = unsafe {
        let (m, rec) = record::<M>(data);
        m.start(rec, &*op, n)
    };
    c_int::from(!started)
}

/// `op_check`: the state of a started operation (COMPLETE for NULL).
///
/// # Safety
/// `data` NULL or an op handle of an `M` mover.
pub(crate) unsafe extern "C" fn op_check<M: Mover>(
    data: *mut c_void,
    _op: *const vdm_operation,
) -> future_state {
    if data.is_null() {
        return future_state::FUTURE_STATE_COMPLETE;
    }
    // SAFETY: caller's contract.
    let st = unsafe {
        let (m, rec) = record::<M>(data);
        m.check(rec)
    };
    match st {
        fut::COMPLETE => future_state::FUTURE_STATE_COMPLETE,
        fut::RUNNING => future_state::FUTURE_STATE_RUNNING,
        _ => future_state::FUTURE_STATE_IDLE,
    }
}

/// `op_delete`: fills the output and releases the handle (nothing for
/// NULL arguments).
///
/// # Safety
/// `data` NULL or an op handle of an `M` mover, deleted once; `op` and
/// `out` NULL or the future's operation and output.
pub(crate) unsafe extern "C" fn op_delete<M: Mover>(
    data: *mut c_void,
    op: *const vdm_operation,
    out: *mut vdm_operation_output,
) {
    if data.is_null() || op.is_null() || out.is_null() {
        return;
    }
    // SAFETY: caller's contract.
    unsafe {
        let (m, rec) = record::<M>(data);
        m.delete(rec, &*op, &mut *out);
    }
}

/// The `struct vdm` of an `M` mover.
pub(crate) fn vdm_of<M: Mover>(capabilities: u32, has_property: future_has_property_fn) -> vdm {
    vdm {
        op_new: super::op_new_fn(op_new::<M>),
        op_delete: Some(op_delete::<M>),
        op_start: Some(op_start::<M>),
        op_check: Some(op_check::<M>),
        capabilities,
        has_property,
    }
}
