//! C-visible virtual data mover types (`<libminiasync/vdm.h>`).
//!
//! Single source of truth for these layouts: cbindgen turns this file into
//! `include/libminiasync/vdm_types.h`. No behaviour lives here.

use core::ffi::{c_int, c_uint, c_void};

use super::future_types::{future_has_property_fn, future_notifier, future_state};

/// The kind of work an operation does.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum vdm_operation_type {
    VDM_OPERATION_MEMCPY = 0,
    VDM_OPERATION_MEMMOVE = 1,
    VDM_OPERATION_MEMSET = 2,
    VDM_OPERATION_FLUSH = 3,
}

/// How an operation ended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum vdm_operation_result {
    VDM_SUCCESS = 0,
    VDM_ERROR_OUT_OF_MEMORY = 1,
    VDM_ERROR_JOB_CORRUPTED = 2,
}

/// Arguments of a memcpy.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct vdm_operation_data_memcpy {
    pub dest: *mut c_void,
    pub src: *mut c_void,
    pub n: usize,
    pub flags: u64,
}

/// Arguments of a memmove.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct vdm_operation_data_memmove {
    pub dest: *mut c_void,
    pub src: *mut c_void,
    pub n: usize,
    pub flags: u64,
}

/// Arguments of a memset.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct vdm_operation_data_memset {
    pub str: *mut c_void,
    pub c: c_int,
    pub n: usize,
    pub flags: u64,
}

/// Arguments of a cache flush.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct vdm_operation_data_flush {
    pub dest: *mut c_void,
    pub n: usize,
    pub flags: u64,
}

/// The arguments of any operation (upstream declares this union without a
/// tag; the tag is our only addition and changes no layout).
#[repr(C)]
#[derive(Clone, Copy)]
pub union vdm_operation_args {
    pub memcpy: vdm_operation_data_memcpy,
    pub memmove: vdm_operation_data_memmove,
    pub memset: vdm_operation_data_memset,
    pub flush: vdm_operation_data_flush,
    pub data: [u8; 40],
}

/// One operation: arguments and type.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct vdm_operation {
    pub data: vdm_operation_args,
    pub r#type: vdm_operation_type,
    pub padding: u32,
}

/// Data of a vdm future: the mover's per-op handle, the mover, the operation.
#[repr(C)]
pub struct vdm_operation_data {
    pub data: *mut c_void,
    pub vdm: *mut vdm,
    pub operation: vdm_operation,
}

/// Output of a memcpy.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct vdm_operation_output_memcpy {
    pub dest: *mut c_void,
}

/// Output of a memmove.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct vdm_operation_output_memmove {
    pub dest: *mut c_void,
}

/// Output of a memset.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct vdm_operation_output_memset {
    pub str: *mut c_void,
}

/// Output of a flush (nothing useful).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct vdm_operation_output_flush {
    pub unused: u64,
}

/// The output of any operation (untagged upstream, see `vdm_operation_args`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union vdm_operation_outputs {
    pub memcpy: vdm_operation_output_memcpy,
    pub memmove: vdm_operation_output_memmove,
    pub memset: vdm_operation_output_memset,
    pub flush: vdm_operation_output_flush,
}

/// Output of a vdm future.
#[repr(C)]
pub struct vdm_operation_output {
    pub r#type: vdm_operation_type,
    pub result: vdm_operation_result,
    pub output: vdm_operation_outputs,
}

/// Reserves a per-operation handle; NULL means no resources.
pub type vdm_operation_new =
    Option<unsafe extern "C" fn(vdm: *mut vdm, r#type: vdm_operation_type) -> *mut c_void>;

/// Releases a handle after filling the output.
pub type vdm_operation_delete = Option<
    unsafe extern "C" fn(
        data: *mut c_void,
        operation: *const vdm_operation,
        output: *mut vdm_operation_output,
    ),
>;

/// Starts an operation; non-zero means "not started, poll again".
pub type vdm_operation_start = Option<
    unsafe extern "C" fn(
        data: *mut c_void,
        operation: *const vdm_operation,
        n: *mut future_notifier,
    ) -> c_int,
>;

/// Reports the state of a started operation.
pub type vdm_operation_check = Option<
    unsafe extern "C" fn(data: *mut c_void, operation: *const vdm_operation) -> future_state,
>;

/// A virtual data mover: the callbacks that user-compiled inline code calls.
#[repr(C)]
pub struct vdm {
    pub op_new: vdm_operation_new,
    pub op_delete: vdm_operation_delete,
    pub op_start: vdm_operation_start,
    pub op_check: vdm_operation_check,
    pub capabilities: c_uint,
    pub has_property: future_has_property_fn,
}
