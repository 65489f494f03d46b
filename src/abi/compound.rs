//! Types the C headers build with macros rather than declare directly.
//! Not cbindgen input: `FUTURE(vdm_operation_future, ...)` in `vdm.h`
//! defines the C side, and `layout.rs` pins both to the same layout.

use super::future_types::future;
use super::vdm_types::{vdm_operation_data, vdm_operation_output};

/// `FUTURE(vdm_operation_future, struct vdm_operation_data,
/// struct vdm_operation_output)`.
#[repr(C)]
pub struct vdm_operation_future {
    pub base: future,
    pub data: vdm_operation_data,
    pub output: vdm_operation_output,
}
