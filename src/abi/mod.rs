//! `#[repr(C)]` mirrors of every type the public headers define.
//!
//! Each file here is cbindgen's input for one generated header; `layout.rs`
//! pins every size, alignment and offset to the upstream 0.2.1 values
//! (ABI.md section 4) at compile time. Nothing in this module has behaviour.

pub mod compound;
pub mod dml;
pub mod future;
mod layout;
pub mod threads;
pub mod vdm;

pub use compound::*;
pub use dml::*;
pub use future::*;
pub use threads::*;
pub use vdm::*;
