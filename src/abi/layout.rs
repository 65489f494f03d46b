//! Compile-time layout pins: a wrong size or offset fails the build.
//! The C side is checked separately by `ctests/abi_probe.c`.

use core::mem::{align_of, offset_of, size_of};

use super::*;

macro_rules! pin_size {
    ($t:ty, $size:expr, $align:expr) => {
        const _: () = assert!(size_of::<$t>() == $size && align_of::<$t>() == $align);
    };
}

macro_rules! pin_offset {
    ($t:ty, $field:ident, $off:expr) => {
        const _: () = assert!(offset_of!($t, $field) == $off);
    };
}

pin_size!(future_state, 4, 4);
pin_size!(future_notifier_type, 4, 4);
pin_size!(future_property, 4, 4);
pin_size!(future_chain_entry_type, 4, 4);
pin_size!(vdm_operation_type, 4, 4);
pin_size!(vdm_operation_result, 4, 4);
pin_size!(data_mover_dml_type, 4, 4);
pin_size!(future_context, 24, 8);
pin_size!(future_waker, 16, 8);
pin_size!(future_poller, 8, 8);
pin_size!(future_notifier, 32, 8);
pin_size!(future, 40, 8);
pin_size!(future_chain_entry, 80, 8);
pin_size!(vdm_operation_data_memcpy, 32, 8);
pin_size!(vdm_operation_data_memmove, 32, 8);
pin_size!(vdm_operation_data_memset, 32, 8);
pin_size!(vdm_operation_data_flush, 24, 8);
pin_size!(vdm_operation_args, 40, 8);
pin_size!(vdm_operation, 48, 8);
pin_size!(vdm_operation_data, 64, 8);
pin_size!(vdm_operation_output_memcpy, 8, 8);
pin_size!(vdm_operation_output_memmove, 8, 8);
pin_size!(vdm_operation_output_memset, 8, 8);
pin_size!(vdm_operation_output_flush, 8, 8);
pin_size!(vdm_operation_output, 16, 8);
pin_size!(vdm, 48, 8);
pin_size!(future_task_fn, 8, 8);
pin_size!(future_has_property_fn, 8, 8);
pin_size!(future_map_fn, 8, 8);
pin_size!(future_init_fn, 8, 8);
pin_size!(future_waker_wake_fn, 8, 8);
pin_size!(vdm_operation_new, 8, 8);
pin_size!(vdm_operation_start, 8, 8);
pin_size!(vdm_operation_check, 8, 8);
pin_size!(vdm_operation_delete, 8, 8);

pin_offset!(future_context, data_size, 0);
pin_offset!(future_context, output_size, 8);
pin_offset!(future_context, state, 16);
pin_offset!(future_context, padding, 20);
pin_offset!(future_waker, data, 0);
pin_offset!(future_waker, wake, 8);
pin_offset!(future_poller, ptr_to_monitor, 0);
pin_offset!(future_notifier, waker, 0);
pin_offset!(future_notifier, poller, 16);
pin_offset!(future_notifier, notifier_used, 24);
pin_offset!(future_notifier, padding, 28);
pin_offset!(future, task, 0);
pin_offset!(future, has_property, 8);
pin_offset!(future, context, 16);
pin_offset!(future_chain_entry, map, 0);
pin_offset!(future_chain_entry, map_arg, 8);
pin_offset!(future_chain_entry, init, 16);
pin_offset!(future_chain_entry, init_arg, 24);
pin_offset!(future_chain_entry, flags, 32);
pin_offset!(future_chain_entry, future, 40);
pin_offset!(vdm_operation_data_memcpy, dest, 0);
pin_offset!(vdm_operation_data_memcpy, src, 8);
pin_offset!(vdm_operation_data_memcpy, n, 16);
pin_offset!(vdm_operation_data_memcpy, flags, 24);
pin_offset!(vdm_operation_data_memmove, dest, 0);
pin_offset!(vdm_operation_data_memmove, src, 8);
pin_offset!(vdm_operation_data_memmove, n, 16);
pin_offset!(vdm_operation_data_memmove, flags, 24);
pin_offset!(vdm_operation_data_memset, str, 0);
pin_offset!(vdm_operation_data_memset, c, 8);
pin_offset!(vdm_operation_data_memset, n, 16);
pin_offset!(vdm_operation_data_memset, flags, 24);
pin_offset!(vdm_operation_data_flush, dest, 0);
pin_offset!(vdm_operation_data_flush, n, 8);
pin_offset!(vdm_operation_data_flush, flags, 16);
pin_offset!(vdm_operation, data, 0);
pin_offset!(vdm_operation, r#type, 40);
pin_offset!(vdm_operation, padding, 44);
pin_offset!(vdm_operation_data, data, 0);
pin_offset!(vdm_operation_data, vdm, 8);
pin_offset!(vdm_operation_data, operation, 16);
pin_offset!(vdm_operation_output_memcpy, dest, 0);
pin_offset!(vdm_operation_output_memmove, dest, 0);
pin_offset!(vdm_operation_output_memset, str, 0);
pin_offset!(vdm_operation_output_flush, unused, 0);
pin_offset!(vdm_operation_output, r#type, 0);
pin_offset!(vdm_operation_output, result, 4);
pin_offset!(vdm_operation_output, output, 8);
pin_offset!(vdm, op_new, 0);
pin_offset!(vdm, op_delete, 8);
pin_offset!(vdm, op_start, 16);
pin_offset!(vdm, op_check, 24);
pin_offset!(vdm, capabilities, 32);
pin_offset!(vdm, has_property, 40);
pin_size!(vdm_operation_future, 120, 8);
pin_offset!(vdm_operation_future, base, 0);
pin_offset!(vdm_operation_future, data, 40);
pin_offset!(vdm_operation_future, output, 104);
pin_size!(_future_entry_type_regular, 1, 1);
pin_size!(_future_entry_type_last, 2, 1);
pin_size!(memcpy_fn, 8, 8);
pin_size!(memmove_fn, 8, 8);
pin_size!(memset_fn, 8, 8);
