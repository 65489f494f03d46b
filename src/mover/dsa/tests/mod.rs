//! Engine and mover tests on the emulated WQ, and the `linux/idxd.h` pin.

mod engine_tests;
mod fault_tests;
mod idxd_h;

mod mover_tests;
