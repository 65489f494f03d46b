/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * abi_probe.c -- prints the C layout our headers produce, one fact per
 * line, in the format of abi-expected.tsv:
 *
 *   size    <type>  -        <sizeof> <alignof>
 *   offset  <type>  <member> <offsetof> <sizeof member>
 *   value   <name>  -        <integer value>
 *
 * `make check-abi` runs it and tests/compare_abi.py compares the output with
 * the table measured on upstream libminiasync 0.2.1 (ABI.md section 4).
 * Every fact is one line below, written out by hand; nothing is derived
 * from the expected table, so a missing or renamed fact shows up as a
 * difference.
 */
#include <stdio.h>
#include <stddef.h>

#include <libminiasync.h>
#include <libminiasync-vdm-dml.h>

/* A user-declared chain: a regular entry followed by the last one. */
typedef struct {
	FUTURE_CHAIN_ENTRY(struct vdm_operation_future, a);
	FUTURE_CHAIN_ENTRY_LAST(struct vdm_operation_future, b);
} chain_pair;

#define SIZE(_type) \
	printf("size\t%s\t-\t%zu\t%zu\n", #_type, sizeof(_type), \
		(size_t)_Alignof(_type))

#define OFFSET(_type, _member) \
	printf("offset\t%s\t%s\t%zu\t%zu\n", #_type, #_member, \
		offsetof(_type, _member), sizeof(((_type *)0)->_member))

#define VALUE(_expr) \
	printf("value\t%s\t-\t%lld\n", #_expr, (long long)(_expr))

static void
print_sizes(void)
{
	SIZE(enum future_state);
	SIZE(enum future_notifier_type);
	SIZE(enum future_property);
	SIZE(enum future_chain_entry_type);
	SIZE(enum vdm_operation_type);
	SIZE(enum vdm_operation_result);
	SIZE(enum data_mover_dml_type);
	SIZE(struct future_context);
	SIZE(struct future_waker);
	SIZE(struct future_poller);
	SIZE(struct future_notifier);
	SIZE(struct future);
	SIZE(struct future_chain_entry);
	SIZE(struct vdm_operation_data_memcpy);
	SIZE(struct vdm_operation_data_memmove);
	SIZE(struct vdm_operation_data_memset);
	SIZE(struct vdm_operation_data_flush);
	SIZE(struct vdm_operation);
	SIZE(struct vdm_operation_data);
	SIZE(struct vdm_operation_output_memcpy);
	SIZE(struct vdm_operation_output_memmove);
	SIZE(struct vdm_operation_output_memset);
	SIZE(struct vdm_operation_output_flush);
	SIZE(struct vdm_operation_output);
	SIZE(struct vdm_operation_future);
	SIZE(struct vdm);
	SIZE(_future_entry_type_regular);
	SIZE(_future_entry_type_last);
	SIZE(chain_pair);
	SIZE(future_task_fn);
	SIZE(future_has_property_fn);
	SIZE(future_map_fn);
	SIZE(future_init_fn);
	SIZE(future_waker_wake_fn);
	SIZE(vdm_operation_new);
	SIZE(vdm_operation_start);
	SIZE(vdm_operation_check);
	SIZE(vdm_operation_delete);
	SIZE(memcpy_fn);
	SIZE(memmove_fn);
	SIZE(memset_fn);
}

static void
print_future_offsets(void)
{
	OFFSET(struct future_context, data_size);
	OFFSET(struct future_context, output_size);
	OFFSET(struct future_context, state);
	OFFSET(struct future_context, padding);
	OFFSET(struct future_waker, data);
	OFFSET(struct future_waker, wake);
	OFFSET(struct future_poller, ptr_to_monitor);
	OFFSET(struct future_notifier, waker);
	OFFSET(struct future_notifier, poller);
	OFFSET(struct future_notifier, notifier_used);
	OFFSET(struct future_notifier, padding);
	OFFSET(struct future, task);
	OFFSET(struct future, has_property);
	OFFSET(struct future, context);
	OFFSET(struct future_chain_entry, map);
	OFFSET(struct future_chain_entry, map_arg);
	OFFSET(struct future_chain_entry, init);
	OFFSET(struct future_chain_entry, init_arg);
	OFFSET(struct future_chain_entry, flags);
	OFFSET(struct future_chain_entry, future);
}

static void
print_vdm_offsets(void)
{
	OFFSET(struct vdm_operation_data_memcpy, dest);
	OFFSET(struct vdm_operation_data_memcpy, src);
	OFFSET(struct vdm_operation_data_memcpy, n);
	OFFSET(struct vdm_operation_data_memcpy, flags);
	OFFSET(struct vdm_operation_data_memmove, dest);
	OFFSET(struct vdm_operation_data_memmove, src);
	OFFSET(struct vdm_operation_data_memmove, n);
	OFFSET(struct vdm_operation_data_memmove, flags);
	OFFSET(struct vdm_operation_data_memset, str);
	OFFSET(struct vdm_operation_data_memset, c);
	OFFSET(struct vdm_operation_data_memset, n);
	OFFSET(struct vdm_operation_data_memset, flags);
	OFFSET(struct vdm_operation_data_flush, dest);
	OFFSET(struct vdm_operation_data_flush, n);
	OFFSET(struct vdm_operation_data_flush, flags);
	OFFSET(struct vdm_operation, data);
	OFFSET(struct vdm_operation, data.memcpy);
	OFFSET(struct vdm_operation, data.memset);
	OFFSET(struct vdm_operation, data.flush);
	OFFSET(struct vdm_operation, data.data);
	OFFSET(struct vdm_operation, type);
	OFFSET(struct vdm_operation, padding);
	OFFSET(struct vdm_operation_data, data);
	OFFSET(struct vdm_operation_data, vdm);
	OFFSET(struct vdm_operation_data, operation);
	OFFSET(struct vdm_operation_output_memcpy, dest);
	OFFSET(struct vdm_operation_output_memmove, dest);
	OFFSET(struct vdm_operation_output_memset, str);
	OFFSET(struct vdm_operation_output_flush, unused);
	OFFSET(struct vdm_operation_output, type);
	OFFSET(struct vdm_operation_output, result);
	OFFSET(struct vdm_operation_output, output);
	OFFSET(struct vdm_operation_output, output.memcpy.dest);
	OFFSET(struct vdm_operation_future, base);
	OFFSET(struct vdm_operation_future, data);
	OFFSET(struct vdm_operation_future, output);
	OFFSET(struct vdm_operation_future, base.context);
	OFFSET(struct vdm_operation_future, data.operation.type);
	OFFSET(struct vdm, op_new);
	OFFSET(struct vdm, op_delete);
	OFFSET(struct vdm, op_start);
	OFFSET(struct vdm, op_check);
	OFFSET(struct vdm, capabilities);
	OFFSET(struct vdm, has_property);
}

static void
print_chain_offsets(void)
{
	OFFSET(chain_pair, a);
	OFFSET(chain_pair, a.map);
	OFFSET(chain_pair, a.map_arg);
	OFFSET(chain_pair, a.init);
	OFFSET(chain_pair, a.init_arg);
	OFFSET(chain_pair, a.flags);
	OFFSET(chain_pair, a.fut);
	OFFSET(chain_pair, b);
	OFFSET(chain_pair, b.flags);
	OFFSET(chain_pair, b.fut);
}

static void
print_values(void)
{
	VALUE(FUTURE_STATE_IDLE);
	VALUE(FUTURE_STATE_COMPLETE);
	VALUE(FUTURE_STATE_RUNNING);
	VALUE(FUTURE_NOTIFIER_NONE);
	VALUE(FUTURE_NOTIFIER_WAKER);
	VALUE(FUTURE_NOTIFIER_POLLER);
	VALUE(FUTURE_PROPERTY_ASYNC);
	VALUE(FUTURE_CHAIN_ENTRY_REGULAR);
	VALUE(FUTURE_CHAIN_ENTRY_LAST);
	VALUE(FUTURE_CHAIN_FLAG_ENTRY_LAST);
	VALUE(FUTURE_CHAIN_FLAG_ENTRY_PROCESSED);
	VALUE(FUTURE_CHAIN_VALID_FLAGS);
	VALUE(VDM_OPERATION_MEMCPY);
	VALUE(VDM_OPERATION_MEMMOVE);
	VALUE(VDM_OPERATION_MEMSET);
	VALUE(VDM_OPERATION_FLUSH);
	VALUE(VDM_SUCCESS);
	VALUE(VDM_ERROR_OUT_OF_MEMORY);
	VALUE(VDM_ERROR_JOB_CORRUPTED);
	VALUE(VDM_OPERATION_DATA_MAX_SIZE);
	VALUE(VDM_F_MEM_DURABLE);
	VALUE(VDM_F_NO_CACHE_HINT);
	VALUE(VDM_F_VALID_FLAGS);
	VALUE(DATA_MOVER_DML_SOFTWARE);
	VALUE(DATA_MOVER_DML_HARDWARE);
	VALUE(DATA_MOVER_DML_AUTO);
	/* the marker pointee sizes that tell a regular entry from the last */
	VALUE(sizeof(*((chain_pair *)0)->a.flags));
	VALUE(sizeof(*((chain_pair *)0)->b.flags));
}

int
main(void)
{
	print_sizes();
	print_future_offsets();
	print_vdm_offsets();
	print_chain_offsets();
	print_values();
	return 0;
}
