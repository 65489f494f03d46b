//! `#[repr(C)]` mirrors of every type the public headers define.
//!
//! Each `*_types.rs` file is cbindgen's input for the generated header of
//! the same name (`include/libminiasync/future_types.h`, ...); `layout.rs`,
//! generated from `abi/layout.tsv` by `tools/abi.py` (`make abi`), pins
//! every size, alignment and offset to the upstream 0.2.1 values (ABI.md
//! section 4) at compile time. Nothing in this module has behaviour.

pub mod compound;
pub mod dml_types;
pub mod future_types;
mod layout;
pub mod stats_types;
pub mod threads_types;
pub mod vdm_types;

pub use compound::*;
pub use dml_types::*;
pub use future_types::*;
pub use stats_types::*;
pub use threads_types::*;
pub use vdm_types::*;
