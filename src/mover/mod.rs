//! Data movers: the safe core behind the `struct vdm` callbacks.

pub mod cpu;
pub mod dsa;
pub mod op;
pub mod pool;
pub mod sync;
pub mod threads;
