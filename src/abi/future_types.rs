//! C-visible future, notifier and chain types (`<libminiasync/future.h>`).
//!
//! This file is the single source of truth for these layouts: cbindgen turns
//! it into `include/libminiasync/future_types.h`. It holds no behaviour.
//! Enum-typed fields are written by C code, which may store any `int`, so
//! Rust never reads them as Rust enums: `crate::ffi::view::RawEnum` is the
//! one accessor.

use core::ffi::{c_int, c_void};

/// State of a future: IDLE (not started), COMPLETE, RUNNING.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum future_state {
    FUTURE_STATE_IDLE = 0,
    FUTURE_STATE_COMPLETE = 1,
    FUTURE_STATE_RUNNING = 2,
}

/// Which part of a `struct future_notifier` a future consumed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum future_notifier_type {
    FUTURE_NOTIFIER_NONE = 0,
    FUTURE_NOTIFIER_WAKER = 1,
    FUTURE_NOTIFIER_POLLER = 2,
}

/// Properties a future can be asked about.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum future_property {
    FUTURE_PROPERTY_ASYNC = 0,
}

/// Sizes of the chain-entry marker arrays; never stored at run time.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum future_chain_entry_type {
    FUTURE_CHAIN_ENTRY_REGULAR = 1,
    FUTURE_CHAIN_ENTRY_LAST = 2,
}

/// Header of every future: the data and output bytes follow it directly.
#[repr(C)]
pub struct future_context {
    pub data_size: usize,
    pub output_size: usize,
    pub state: future_state,
    pub padding: u32,
}

/// Called by a future's producer when the future can make progress.
pub type future_waker_wake_fn = Option<unsafe extern "C" fn(data: *mut c_void)>;

/// A callback and its argument.
#[repr(C)]
pub struct future_waker {
    pub data: *mut c_void,
    pub wake: future_waker_wake_fn,
}

/// An address whose value changes when the future can make progress.
#[repr(C)]
pub struct future_poller {
    pub ptr_to_monitor: *mut u64,
}

/// What a poller offers a future, and what the future chose.
#[repr(C)]
pub struct future_notifier {
    pub waker: future_waker,
    pub poller: future_poller,
    pub notifier_used: future_notifier_type,
    pub padding: u32,
}

/// The task that advances a future.
pub type future_task_fn = Option<
    unsafe extern "C" fn(
        context: *mut future_context,
        notifier: *mut future_notifier,
    ) -> future_state,
>;

/// Reports a property of a future (1 has it, 0 has not).
pub type future_has_property_fn =
    Option<unsafe extern "C" fn(future: *mut c_void, property: future_property) -> c_int>;

/// A runnable future: task, property query and context.
#[repr(C)]
pub struct future {
    pub task: future_task_fn,
    pub has_property: future_has_property_fn,
    pub context: future_context,
}

/// Maps the state of a completed chain entry onto the next one.
pub type future_map_fn = Option<
    unsafe extern "C" fn(lhs: *mut future_context, rhs: *mut future_context, arg: *mut c_void),
>;

/// Builds a chain entry's future in place, on first use.
pub type future_init_fn = Option<
    unsafe extern "C" fn(future: *mut c_void, chain_fut: *mut future_context, arg: *mut c_void),
>;

/// Generic view of one entry of a chained future.
#[repr(C)]
pub struct future_chain_entry {
    pub map: future_map_fn,
    pub map_arg: *mut c_void,
    pub init: future_init_fn,
    pub init_arg: *mut c_void,
    pub flags: u64,
    pub future: future,
}

/// Marker type of a regular chain entry's `flags` pointer (`sizeof` 1).
pub type _future_entry_type_regular = [u8; 1];

/// Marker type of the last chain entry's `flags` pointer (`sizeof` 2).
pub type _future_entry_type_last = [u8; 2];
