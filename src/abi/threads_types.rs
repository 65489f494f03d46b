//! C-visible types of `<libminiasync/data_mover_threads.h>`: the pluggable
//! memory functions of the threads mover. cbindgen turns this file into
//! `include/libminiasync/data_mover_threads_types.h`.

use core::ffi::{c_int, c_uint, c_void};

/// Copies `n` bytes; `flags` are the operation's `VDM_F_*` flags.
pub type memcpy_fn = Option<
    unsafe extern "C" fn(
        dst: *mut c_void,
        src: *const c_void,
        n: usize,
        flags: c_uint,
    ) -> *mut c_void,
>;

/// Moves `n` possibly overlapping bytes; `flags` as for `memcpy_fn`.
pub type memmove_fn = Option<
    unsafe extern "C" fn(
        dst: *mut c_void,
        src: *const c_void,
        n: usize,
        flags: c_uint,
    ) -> *mut c_void,
>;

/// Fills `n` bytes with `c`; `flags` as for `memcpy_fn`.
pub type memset_fn = Option<
    unsafe extern "C" fn(str: *mut c_void, c: c_int, n: usize, flags: c_uint) -> *mut c_void,
>;
