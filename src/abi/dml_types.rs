//! C-visible DSA mover types (`<libminiasync-vdm-dml/data_mover_dml.h>`).
//!
//! cbindgen turns this file into
//! `include/libminiasync-vdm-dml/data_mover_dml_types.h`.

/// Which path a DSA mover uses.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum data_mover_dml_type {
    DATA_MOVER_DML_SOFTWARE = 0,
    DATA_MOVER_DML_HARDWARE = 1,
    DATA_MOVER_DML_AUTO = 2,
}
