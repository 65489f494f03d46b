//! Safe views of the C structures, and the four `struct vdm` callbacks that
//! hand them to the movers.
//!
//! `ffi/` is the only code that turns C pointers into Rust values, and this
//! file holds the views through which the core sees C memory:
//! - [`RawEnum`]: a C enum field or argument as the integer C stored (C may
//!   store any `int`; a Rust enum cannot hold it);
//! - [`FutureRef`]: a live `struct future` (state, poll, property), what
//!   the runtime polls;
//! - [`Notifier`] and [`Waker`]: what a poll offers a future and what the
//!   future reports back, what every mover's `start` receives;
//! - [`decode`] and [`fill_output`]: a `struct vdm_operation` in, the
//!   mover-side [`Op`] out, and the output C reads back;
//! - [`op_new`], [`op_start`], [`op_check`], [`op_delete`]: the callbacks,
//!   written once for every [`Mover`]. A mover's op handle is the address
//!   of its record and every record knows its mover, so each callback
//!   checks its pointers, builds the views and calls the mover.
//!
//! One DSA `vdm_memcpy` goes: the header's inline code calls the callbacks
//! here, which call `mover/dsa/mover.rs`, which takes its record from the
//! pool in `mover/mod.rs` and drives the device through
//! `mover/dsa/engine/op.rs` and `mover/dsa/hw/mod.rs`.

use core::ffi::{c_int, c_void};
use core::marker::PhantomData;
use core::ptr::NonNull;

use super::fnptr;
use crate::abi::{
    data_mover_dml_type, future, future_notifier, future_notifier_type, future_poller,
    future_property, future_state, future_waker, vdm, vdm_operation, vdm_operation_output,
    vdm_operation_result, vdm_operation_type,
};
use crate::mover::{BadOp, Hints, Mover, Op};

/// A C enum with a Rust mirror in `abi`.
pub trait CEnum: Copy {
    /// The variant with this value, if any.
    fn from_raw(v: u32) -> Option<Self>;
    /// The value of a variant.
    fn to_raw(self) -> u32;
}

macro_rules! c_enum {
    ($t:ty { $($v:ident),+ $(,)? }) => {
        impl CEnum for $t {
            fn from_raw(v: u32) -> Option<Self> {
                $(if v == <$t>::$v as u32 {
                    return Some(<$t>::$v);
                })+
                None
            }
            fn to_raw(self) -> u32 {
                self as u32
            }
        }
    };
}

c_enum!(future_state {
    FUTURE_STATE_IDLE,
    FUTURE_STATE_COMPLETE,
    FUTURE_STATE_RUNNING
});
c_enum!(future_notifier_type {
    FUTURE_NOTIFIER_NONE,
    FUTURE_NOTIFIER_WAKER,
    FUTURE_NOTIFIER_POLLER
});
c_enum!(future_property {
    FUTURE_PROPERTY_ASYNC
});
c_enum!(vdm_operation_type {
    VDM_OPERATION_MEMCPY,
    VDM_OPERATION_MEMMOVE,
    VDM_OPERATION_MEMSET,
    VDM_OPERATION_FLUSH
});
c_enum!(vdm_operation_result {
    VDM_SUCCESS,
    VDM_ERROR_OUT_OF_MEMORY,
    VDM_ERROR_JOB_CORRUPTED
});
c_enum!(data_mover_dml_type {
    DATA_MOVER_DML_SOFTWARE,
    DATA_MOVER_DML_HARDWARE,
    DATA_MOVER_DML_AUTO
});

/// The value of a C enum field or argument of type `E`, exactly as C
/// stored it: any 32-bit integer. `#[repr(transparent)]` over `u32`, so it
/// can stand for the enum in an `extern "C"` signature.
#[repr(transparent)]
pub struct RawEnum<E> {
    v: u32,
    _e: PhantomData<E>,
}

impl<E> Clone for RawEnum<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for RawEnum<E> {}
impl<E> PartialEq for RawEnum<E> {
    fn eq(&self, o: &Self) -> bool {
        self.v == o.v
    }
}
impl<E> core::fmt::Debug for RawEnum<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RawEnum({})", self.v)
    }
}

impl<E: CEnum> RawEnum<E> {
    /// The value of a variant.
    #[inline]
    pub fn of(e: E) -> Self {
        Self::from_raw(e.to_raw())
    }

    /// Any integer, as C may pass it.
    #[inline]
    pub fn from_raw(v: u32) -> Self {
        RawEnum { v, _e: PhantomData }
    }

    /// The integer.
    #[inline]
    #[cfg(test)]
    pub fn raw(self) -> u32 {
        self.v
    }

    /// The variant, or `None` for a value no variant has.
    #[inline]
    pub fn known(self) -> Option<E> {
        E::from_raw(self.v)
    }

    /// Whether the value is `e`'s.
    #[inline]
    pub fn is(self, e: E) -> bool {
        self.v == e.to_raw()
    }

    /// Reads an enum-typed field without asserting that it holds a variant.
    ///
    /// # Safety
    /// `p` must be valid for reads of 4 bytes and aligned.
    #[inline]
    unsafe fn read(p: *const E) -> Self {
        // SAFETY: caller's contract; the field is read as the u32 it is.
        Self::from_raw(unsafe { p.cast::<u32>().read() })
    }

    /// Writes the value into an enum-typed field (which may then hold a
    /// value no variant has, as C allows).
    ///
    /// # Safety
    /// `p` must be valid for writes of 4 bytes and aligned, and never be
    /// read as a Rust `E` afterwards (only through [`read`](Self::read)).
    #[inline]
    unsafe fn write(self, p: *mut E) {
        // SAFETY: caller's contract.
        unsafe { p.cast::<u32>().write(self.v) }
    }
}

/// A live C future: a `struct future` followed by its data and output.
/// Made only from a pointer its creator vouches for. It holds a pointer,
/// not a reference, so two views of one future (C may list a future twice
/// in `runtime_wait_multiple`'s array) alias nothing Rust assumes unique.
#[repr(transparent)]
pub struct FutureRef<'a> {
    p: NonNull<future>,
    _life: PhantomData<&'a mut future>,
}

impl<'a> FutureRef<'a> {
    /// # Safety
    /// `p` must point to a live future (see the crate's safety vocabulary)
    /// for `'a`, which nobody else polls or modifies meanwhile.
    #[inline]
    pub unsafe fn new(p: NonNull<future>) -> Self {
        FutureRef {
            p,
            _life: PhantomData,
        }
    }

    /// Views `len` C pointers, each NULL or a future, as optional views
    /// (the C array is reordered through it).
    ///
    /// # Safety
    /// `futs` must be valid for reads and writes of `len` pointers for
    /// `'a`; each non-NULL one must satisfy [`new`](Self::new)'s contract.
    #[inline]
    pub unsafe fn slice(futs: NonNull<*mut future>, len: usize) -> &'a mut [Option<FutureRef<'a>>] {
        // SAFETY: `Option<FutureRef>` is a nullable non-null pointer
        // (`repr(transparent)` over `NonNull`), laid out as `*mut future`
        // with NULL as `None`; the rest is the caller's contract.
        unsafe { core::slice::from_raw_parts_mut(futs.as_ptr().cast(), len) }
    }

    /// The future's address (for comparisons).
    #[inline]
    #[cfg(test)]
    pub fn as_ptr(&self) -> *mut future {
        self.p.as_ptr()
    }

    /// The state as stored.
    #[inline]
    pub fn state(&self) -> RawEnum<future_state> {
        // SAFETY: a live future (`new`'s contract); the field is 4 bytes.
        unsafe { RawEnum::read(core::ptr::addr_of!((*self.p.as_ptr()).context.state)) }
    }

    /// Whether the future has a task (one that has none cannot progress).
    #[inline]
    pub fn has_task(&self) -> bool {
        // SAFETY: a live future.
        unsafe { (*self.p.as_ptr()).task.is_some() }
    }

    /// Polls once, as the header's `future_poll`: runs the task unless the
    /// future is complete, stores and returns the state. A future that is
    /// not complete but has no task is left alone.
    #[inline]
    pub fn poll(&mut self, notifier: &mut Notifier<'_>) -> RawEnum<future_state> {
        let st = self.state();
        if st.is(future_state::FUTURE_STATE_COMPLETE) {
            return st;
        }
        let f = self.p.as_ptr();
        // SAFETY: a live future.
        let Some(task) = (unsafe { (*f).task }) else {
            return st;
        };
        let n = notifier.n.map_or(core::ptr::null_mut(), NonNull::as_ptr);
        // SAFETY: the future's own task, given its own context and a
        // notifier that is NULL or valid for the call.
        let new = unsafe { fnptr::raw_task(task)(core::ptr::addr_of_mut!((*f).context), n) };
        // SAFETY: a live future, exclusively ours (`&mut self`).
        unsafe { new.write(core::ptr::addr_of_mut!((*f).context.state)) };
        new
    }

    /// Asks for a property: 0 when the future has no property function.
    #[inline]
    pub fn property(&self, p: RawEnum<future_property>) -> c_int {
        let f = self.p.as_ptr();
        // SAFETY: a live future.
        match unsafe { (*f).has_property } {
            None => 0,
            // SAFETY: the future's own property function, given the future.
            Some(has) => unsafe { fnptr::raw_has_property(has)(f.cast(), p) },
        }
    }
}

/// A waker offered by a poll: the function and its data, to be called
/// (once) when the future can make progress.
#[derive(Clone, Copy, Debug)]
pub struct Waker {
    data: *mut c_void,
    wake: unsafe extern "C" fn(*mut c_void),
}

// SAFETY: a waker is a C callback and its argument, made to be called from
// whichever thread completes the work (the vdm contract).
unsafe impl Send for Waker {}
// SAFETY: as above; calling it needs no exclusive access.
unsafe impl Sync for Waker {}

impl Waker {
    /// Calls the waker.
    ///
    /// # Safety
    /// The waker's target must still be valid: the future it was offered
    /// for is not yet complete and deleted, or [`is_permanent`] holds.
    ///
    /// [`is_permanent`]: Self::is_permanent
    #[inline]
    pub unsafe fn wake(self) {
        // SAFETY: caller's contract.
        unsafe { (self.wake)(self.data) }
    }

    /// Whether the target stays valid for the whole process (the
    /// runtime's waker: see `runtime::waker_target_is_permanent`), so it
    /// may be called after the future completed.
    #[inline]
    pub fn is_permanent(&self) -> bool {
        crate::runtime::waker_target_is_permanent(self.wake as *const ())
    }
}

/// What a poll offers a future (a waker, maybe) and where the future
/// reports which notifier it chose: absent when C passed NULL.
///
/// Held as a pointer, not a reference: C may have stored any integer in
/// its enum field, and a reference would assert a valid value.
pub struct Notifier<'a> {
    n: Option<NonNull<future_notifier>>,
    _life: PhantomData<&'a mut future_notifier>,
}

impl<'a> Notifier<'a> {
    /// No notifier (C passed NULL).
    #[cfg(test)]
    pub fn absent() -> Notifier<'static> {
        Notifier {
            n: None,
            _life: PhantomData,
        }
    }

    /// A notifier C passed.
    ///
    /// # Safety
    /// `n` must be NULL or valid for reads and writes for `'a`, and not
    /// used by anyone else meanwhile.
    pub unsafe fn from_c(n: *mut future_notifier) -> Self {
        Notifier {
            n: NonNull::new(n),
            _life: PhantomData,
        }
    }

    /// Whether C passed one.
    #[inline]
    pub fn is_present(&self) -> bool {
        self.n.is_some()
    }

    /// The waker on offer, if a notifier with a non-NULL function is.
    #[inline]
    pub fn waker(&self) -> Option<Waker> {
        let n = self.n?.as_ptr();
        // SAFETY: valid for reads (`from_c`'s contract); both fields are
        // valid for any value C stored (a pointer, an optional function).
        let w = unsafe { core::ptr::addr_of!((*n).waker).read() };
        w.wake.map(|wake| Waker { data: w.data, wake })
    }

    /// Reports FUTURE_NOTIFIER_NONE: no wake will come, poll again.
    #[inline]
    pub fn use_none(&mut self) {
        self.set_used(future_notifier_type::FUTURE_NOTIFIER_NONE);
    }

    /// Reports FUTURE_NOTIFIER_WAKER: the waker on offer will be called.
    #[inline]
    pub fn use_waker(&mut self) {
        self.set_used(future_notifier_type::FUTURE_NOTIFIER_WAKER);
    }

    /// Reports FUTURE_NOTIFIER_POLLER with the word whose change means
    /// "poll again".
    #[inline]
    pub fn use_poller(&mut self, word: *const u64) {
        if let Some(n) = self.n {
            // SAFETY: valid for writes (`from_c`'s contract).
            unsafe {
                core::ptr::addr_of_mut!((*n.as_ptr()).poller.ptr_to_monitor).write(word.cast_mut())
            };
        }
        self.set_used(future_notifier_type::FUTURE_NOTIFIER_POLLER);
    }

    #[inline]
    fn set_used(&mut self, kind: future_notifier_type) {
        if let Some(n) = self.n {
            // SAFETY: valid for writes (`from_c`'s contract); a 4-byte field.
            unsafe {
                RawEnum::of(kind).write(core::ptr::addr_of_mut!((*n.as_ptr()).notifier_used))
            };
        }
    }

    /// The notifier reported so far, as stored.
    #[inline]
    pub fn used(&self) -> Option<RawEnum<future_notifier_type>> {
        let n = self.n?.as_ptr();
        // SAFETY: valid for reads (`from_c`'s contract); a 4-byte field.
        Some(unsafe { RawEnum::read(core::ptr::addr_of!((*n).notifier_used)) })
    }
}

/// A notifier that Rust code owns and offers to the futures it polls (the
/// runtime). The future may store any integer in its `notifier_used`, so
/// the struct is never handed out: it is read back only through the
/// [`Notifier`] view ([`Notifier::used`]).
pub struct OwnedNotifier(future_notifier);

impl OwnedNotifier {
    /// The notifier the runtime hands to every poll: the given waker, no
    /// poller address, `notifier_used` NONE, padding 0.
    pub fn with_waker(waker: future_waker) -> Self {
        OwnedNotifier(future_notifier {
            waker,
            poller: future_poller {
                ptr_to_monitor: core::ptr::null_mut(),
            },
            notifier_used: future_notifier_type::FUTURE_NOTIFIER_NONE,
            padding: 0,
        })
    }

    /// The view a poll takes.
    pub fn view(&mut self) -> Notifier<'_> {
        Notifier {
            n: Some(NonNull::from(&mut self.0)),
            _life: PhantomData,
        }
    }
}

/// The operation's type as stored.
///
/// # Safety
/// `op` must be valid for reads.
#[inline]
pub(crate) unsafe fn op_type(op: NonNull<vdm_operation>) -> RawEnum<vdm_operation_type> {
    // SAFETY: caller's contract; a 4-byte field.
    unsafe { RawEnum::read(core::ptr::addr_of!((*op.as_ptr()).r#type)) }
}

#[inline]
fn check_range(p: *const c_void, n: usize) -> Result<usize, BadOp> {
    if n == 0 {
        return Ok(p as usize);
    }
    if p.is_null() {
        return Err(BadOp::NullPointer);
    }
    (p as usize)
        .checked_add(n)
        .map(|_| p as usize)
        .ok_or(BadOp::RangeWraps)
}

/// Decodes and checks an operation, destination first: NULL buffers with a
/// non-zero size, ranges that wrap and unknown types are refused before
/// any memory is touched. The flags are kept exactly as C passed them.
///
/// # Safety
/// `op` must be valid for reads (C may have stored any integer in its
/// type: it is read as one).
#[inline]
pub(crate) unsafe fn decode(op: NonNull<vdm_operation>) -> Result<Op, BadOp> {
    // SAFETY: caller's contract.
    let ty = unsafe { op_type(op) };
    let args = op.as_ptr();
    // Each union read below is sound: the operation is valid for reads,
    // every member of the union is plain data (pointers and integers)
    // valid for any bit pattern, and the member read is the one the type
    // field selects.
    let o = match ty.known() {
        Some(vdm_operation_type::VDM_OPERATION_MEMCPY) => {
            // SAFETY: see above.
            let a = unsafe { core::ptr::addr_of!((*args).data.memcpy).read() };
            let (dst, src) = (check_range(a.dest, a.n)?, check_range(a.src, a.n)?);
            (Op::copy(dst, src, a.n, Hints::from_flags(a.flags)), a.flags)
        }
        Some(vdm_operation_type::VDM_OPERATION_MEMMOVE) => {
            // SAFETY: see above.
            let a = unsafe { core::ptr::addr_of!((*args).data.memmove).read() };
            let (dst, src) = (check_range(a.dest, a.n)?, check_range(a.src, a.n)?);
            (
                Op::moving(dst, src, a.n, Hints::from_flags(a.flags)),
                a.flags,
            )
        }
        Some(vdm_operation_type::VDM_OPERATION_MEMSET) => {
            // SAFETY: see above.
            let a = unsafe { core::ptr::addr_of!((*args).data.memset).read() };
            let dst = check_range(a.str, a.n)?;
            (
                Op::fill(dst, a.c as u8, a.n, Hints::from_flags(a.flags)),
                a.flags,
            )
        }
        Some(vdm_operation_type::VDM_OPERATION_FLUSH) => {
            // SAFETY: see above.
            let a = unsafe { core::ptr::addr_of!((*args).data.flush).read() };
            let dst = check_range(a.dest, a.n)?;
            (Op::flush(dst, a.n, Hints::from_flags(a.flags)), a.flags)
        }
        None => return Err(BadOp::UnknownType),
    };
    Ok(Op { flags: o.1, ..o.0 })
}

/// Writes type, result and the destination pointer into an output, as every
/// `op_delete` must: `dest` (memcpy/memmove) or `str` (memset) on success,
/// NULL on failure; a flush output is zeroed. The type is copied from the
/// operation exactly as C stored it.
///
/// # Safety
/// `operation` must be valid for reads, `output` for writes.
#[inline]
pub(crate) unsafe fn fill_output(
    operation: NonNull<vdm_operation>,
    output: NonNull<vdm_operation_output>,
    result: vdm_operation_result,
) {
    // SAFETY: caller's contract.
    let ty = unsafe { op_type(operation) };
    let dest = if result == vdm_operation_result::VDM_SUCCESS
        && !ty.is(vdm_operation_type::VDM_OPERATION_FLUSH)
    {
        // SAFETY: valid for reads; every union member starts with the
        // destination pointer at offset 0 (memcpy/memmove `dest`, memset
        // `str`, flush `dest`), and a pointer is valid for any bit pattern.
        unsafe { core::ptr::addr_of!((*operation.as_ptr()).data.memcpy.dest).read() }
    } else {
        core::ptr::null_mut()
    };
    let out = output.as_ptr();
    // SAFETY: valid for writes (caller's contract): two 4-byte enum slots
    // and a pointer-sized union slot.
    unsafe {
        ty.write(core::ptr::addr_of_mut!((*out).r#type));
        RawEnum::of(result).write(core::ptr::addr_of_mut!((*out).result));
        core::ptr::addr_of_mut!((*out).output.memcpy.dest).write(dest);
    }
}

/// # Safety
/// `data` must be an op handle of an `M` mover.
#[inline(always)]
unsafe fn record<'a, M: Mover>(data: NonNull<c_void>) -> (&'a M, &'a M::Op) {
    // SAFETY: caller's contract: a live record whose mover outlives it.
    unsafe {
        let op = &*data.as_ptr().cast::<M::Op>();
        (M::owner_of(op), op)
    }
}

/// `op_new`: a record of the mover behind `v`, or NULL at the mover's
/// bound of outstanding operations. The type is not needed (the operation
/// comes again with `op_start`).
///
/// # Safety
/// `v` must be NULL or the `struct vdm` of an `M` mover.
unsafe extern "C" fn op_new<M: Mover>(
    v: *mut vdm,
    _type: RawEnum<vdm_operation_type>,
) -> *mut c_void {
    let Some(v) = NonNull::new(v) else {
        return core::ptr::null_mut();
    };
    // SAFETY: caller's contract; the vdm is the mover's first field.
    let m = unsafe { v.cast::<M>().as_ref() };
    m.new_op().map_or(core::ptr::null_mut(), |op| {
        (op as *const M::Op).cast_mut().cast()
    })
}

/// `op_start`: 0 started (or finished), 1 not started (NULL handle or
/// operation, or no room yet; the next poll retries).
///
/// # Safety
/// `data` NULL or an op handle of an `M` mover polled by this thread only;
/// `op` NULL or the future's operation, its buffers valid as its type
/// implies until the future completes; `n` NULL or writable.
pub(crate) unsafe extern "C" fn op_start<M: Mover>(
    data: *mut c_void,
    op: *const vdm_operation,
    n: *mut future_notifier,
) -> c_int {
    let (Some(data), Some(op)) = (NonNull::new(data), NonNull::new(op.cast_mut())) else {
        return 1;
    };
    // SAFETY: caller's contract: each pointer valid (or `n` NULL), the
    // handle this mover's, polled by this thread only.
    let started = unsafe {
        let n = Notifier::from_c(n);
        let (m, rec) = record::<M>(data);
        m.start(rec, decode(op), n)
    };
    c_int::from(!started)
}

/// `op_check`: the state of a started operation (COMPLETE for NULL).
///
/// # Safety
/// `data` NULL or an op handle of an `M` mover polled by this thread only.
pub(crate) unsafe extern "C" fn op_check<M: Mover>(
    data: *mut c_void,
    _op: *const vdm_operation,
) -> RawEnum<future_state> {
    let Some(data) = NonNull::new(data) else {
        return RawEnum::of(future_state::FUTURE_STATE_COMPLETE);
    };
    // SAFETY: caller's contract.
    RawEnum::of(unsafe {
        let (m, rec) = record::<M>(data);
        m.check(rec)
    })
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
    let (Some(data), Some(op), Some(out)) = (
        NonNull::new(data),
        NonNull::new(op.cast_mut()),
        NonNull::new(out),
    ) else {
        return;
    };
    // SAFETY: caller's contract: a live handle of this mover, deleted
    // once; the operation valid for reads, the output for writes.
    unsafe {
        let (m, rec) = record::<M>(data);
        let result = m.delete(rec);
        fill_output(op, out, result);
    }
}

/// The `struct vdm` of an `M` mover: the four callbacks above, the
/// mover's capabilities, and `has_property` (NULL, as upstream's sync
/// mover, or a function typed by [`fnptr::has_property_fn`]).
pub(crate) fn vdm_of<M: Mover>(has_property: crate::abi::future_has_property_fn) -> vdm {
    vdm {
        op_new: fnptr::op_new_fn(op_new::<M>),
        op_delete: Some(op_delete::<M>),
        op_start: Some(op_start::<M>),
        op_check: fnptr::op_check_fn(op_check::<M>),
        capabilities: M::CAPABILITIES,
        has_property,
    }
}
