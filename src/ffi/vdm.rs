//! Real-symbol versions of the header's inline vdm functions (the same
//! semantics as `<libminiasync/vdm.h>`, callable through plain FFI), and the
//! vdm future task they install.

use core::ffi::{c_int, c_uint, c_void};
use core::ptr::NonNull;

use super::fnptr;
use super::view::RawEnum;
use crate::abi::*;

/// The task of vdm futures built by the exported `vdm_*` functions; the
/// same steps as the header's `vdm_operation_impl`, calling the mover's
/// callbacks (which may be C's) through their raw signatures.
///
/// # Safety
/// `ctx` must be the context of a live `vdm_operation_future` whose `vdm`
/// is a live mover; `n` NULL or writable.
unsafe extern "C" fn vdm_operation_task(
    ctx: *mut future_context,
    n: *mut future_notifier,
) -> RawEnum<future_state> {
    // SAFETY: caller's contract: the vdm data follows the context. Fields
    // are reached through the pointer (the operation's type may hold any
    // integer C stored).
    let data = unsafe { ctx.add(1).cast::<vdm_operation_data>() };
    // SAFETY: as above.
    let (handle, vdm, op) = unsafe {
        (
            (*data).data,
            &*(*data).vdm,
            core::ptr::addr_of!((*data).operation),
        )
    };
    // SAFETY: caller's contract; a 4-byte field of the context.
    let state: RawEnum<future_state> = unsafe {
        core::ptr::addr_of!((*ctx).state)
            .cast::<RawEnum<future_state>>()
            .read()
    };
    if state.is(future_state::FUTURE_STATE_IDLE) {
        if let Some(start) = vdm.op_start {
            // SAFETY: the mover's own callback with its own handle.
            if unsafe { start(handle, op, n) } != 0 {
                return RawEnum::of(future_state::FUTURE_STATE_IDLE);
            }
        }
    }
    let Some(check) = vdm.op_check else {
        return RawEnum::of(future_state::FUTURE_STATE_RUNNING);
    };
    // SAFETY: the mover's own callback with its own handle.
    let st = unsafe { fnptr::raw_op_check(check)(handle, op) };
    if st.is(future_state::FUTURE_STATE_COMPLETE) {
        if let Some(delete) = vdm.op_delete {
            // SAFETY: the output follows the data (caller's contract).
            let out = unsafe {
                ctx.add(1)
                    .cast::<u8>()
                    .add((*ctx).data_size)
                    .cast::<vdm_operation_output>()
            };
            // SAFETY: the mover's own callback; the handle dies here.
            unsafe { delete(handle, op, out) };
        }
        return st;
    }
    if st.is(future_state::FUTURE_STATE_RUNNING) {
        st
    } else {
        RawEnum::of(future_state::FUTURE_STATE_IDLE)
    }
}

/// Builds a vdm future around `operation` (the header's
/// `vdm_generic_operation`). A NULL mover gives a complete future with
/// `VDM_ERROR_JOB_CORRUPTED`.
///
/// # Safety
/// `vdm` must be NULL or a live mover.
unsafe fn generic(vdm: Option<NonNull<vdm>>, operation: vdm_operation) -> vdm_operation_future {
    let ty = operation.r#type;
    // SAFETY: an all-zero future is valid plain data (NULL pointers, zero
    // sizes, enum value 0 in every enum field).
    let mut f: vdm_operation_future = unsafe { core::mem::zeroed() };
    f.data.vdm = vdm.map_or(core::ptr::null_mut(), NonNull::as_ptr);
    f.data.operation = operation;
    f.output.r#type = ty;
    f.output.result = vdm_operation_result::VDM_SUCCESS;
    f.base.context.data_size = core::mem::size_of::<vdm_operation_data>();
    f.base.context.output_size = core::mem::size_of::<vdm_operation_output>();
    // SAFETY: caller's contract: NULL or a live mover.
    let mover = vdm.map(|v| unsafe { v.as_ref() });
    let handle = match mover.and_then(|v| v.op_new) {
        // SAFETY: the mover's own callback, given its own vdm.
        Some(new) => unsafe { fnptr::raw_op_new(new)(f.data.vdm, RawEnum::of(ty)) },
        None => {
            f.output.result = vdm_operation_result::VDM_ERROR_JOB_CORRUPTED;
            f.base.context.state = future_state::FUTURE_STATE_COMPLETE;
            return f;
        }
    };
    f.data.data = handle;
    if handle.is_null() {
        f.output.result = vdm_operation_result::VDM_ERROR_OUT_OF_MEMORY;
        f.base.context.state = future_state::FUTURE_STATE_COMPLETE;
    } else {
        f.base.task = fnptr::task_fn(vdm_operation_task);
        f.base.has_property = fnptr::has_property_fn(default_property);
        f.base.context.state = future_state::FUTURE_STATE_IDLE;
    }
    if let Some(p) = mover.and_then(|v| v.has_property) {
        f.base.has_property = Some(p);
    }
    f
}

unsafe extern "C" fn default_property(_f: *mut c_void, _p: RawEnum<future_property>) -> c_int {
    0
}

fn op(ty: vdm_operation_type, args: vdm_operation_args) -> vdm_operation {
    vdm_operation {
        data: args,
        r#type: ty,
        padding: 0,
    }
}

/// `vdm_memcpy`: a future copying `n` bytes from `src` to `dest`.
///
/// # Safety
/// `vdm` NULL or a live mover; the buffers valid until the future completes.
#[no_mangle]
pub unsafe extern "C" fn vdm_memcpy(
    vdm: Option<NonNull<vdm>>,
    dest: *mut c_void,
    src: *mut c_void,
    n: usize,
    flags: u64,
) -> vdm_operation_future {
    let args = vdm_operation_args {
        memcpy: vdm_operation_data_memcpy {
            dest,
            src,
            n,
            flags,
        },
    };
    // SAFETY: caller's contract.
    unsafe { generic(vdm, op(vdm_operation_type::VDM_OPERATION_MEMCPY, args)) }
}

/// `vdm_memmove`: a future moving `n` possibly overlapping bytes.
///
/// # Safety
/// As for `vdm_memcpy`.
#[no_mangle]
pub unsafe extern "C" fn vdm_memmove(
    vdm: Option<NonNull<vdm>>,
    dest: *mut c_void,
    src: *mut c_void,
    n: usize,
    flags: u64,
) -> vdm_operation_future {
    let args = vdm_operation_args {
        memmove: vdm_operation_data_memmove {
            dest,
            src,
            n,
            flags,
        },
    };
    // SAFETY: caller's contract.
    unsafe { generic(vdm, op(vdm_operation_type::VDM_OPERATION_MEMMOVE, args)) }
}

/// `vdm_memset`: a future setting `n` bytes at `str` to `c`.
///
/// # Safety
/// As for `vdm_memcpy`.
#[no_mangle]
pub unsafe extern "C" fn vdm_memset(
    vdm: Option<NonNull<vdm>>,
    str: *mut c_void,
    c: c_int,
    n: usize,
    flags: u64,
) -> vdm_operation_future {
    let args = vdm_operation_args {
        memset: vdm_operation_data_memset { str, c, n, flags },
    };
    // SAFETY: caller's contract.
    unsafe { generic(vdm, op(vdm_operation_type::VDM_OPERATION_MEMSET, args)) }
}

/// `vdm_flush`: a future writing back the cache lines of `n` bytes.
///
/// # Safety
/// As for `vdm_memcpy`.
#[no_mangle]
pub unsafe extern "C" fn vdm_flush(
    vdm: Option<NonNull<vdm>>,
    dest: *mut c_void,
    n: usize,
    flags: u64,
) -> vdm_operation_future {
    let args = vdm_operation_args {
        flush: vdm_operation_data_flush { dest, n, flags },
    };
    // SAFETY: caller's contract.
    unsafe { generic(vdm, op(vdm_operation_type::VDM_OPERATION_FLUSH, args)) }
}

/// `vdm_is_supported`: 1 if every bit of `capability` is among the mover's
/// capabilities (bitwise, unlike upstream's `&&`); 0 for a NULL mover.
///
/// # Safety
/// `vdm` must be NULL or a live mover.
#[no_mangle]
pub unsafe extern "C" fn vdm_is_supported(vdm: Option<&vdm>, capability: c_uint) -> c_int {
    vdm.map_or(0, |v| {
        c_int::from(v.capabilities & capability == capability)
    })
}
