//! Engine and mover tests on the emulated WQ, the `linux/idxd.h` pin, and
//! the unit tests of the hardware formats, the portal, operation progress
//! and credits. (Discovery's tests, `discovery_tests.rs`, are included by
//! `hw/discovery.rs` itself.)

mod batch_tests;
mod credits_tests;
mod engine_tests;
mod fault_report_tests;
mod fault_tests;
mod hw_tests;
mod idxd_h;
mod kernel_tests;
mod portal_tests;
mod progress_tests;

mod mover_tests;
mod wait_tests;
