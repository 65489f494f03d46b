/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vdm.h -- virtual data movers: asynchronous memcpy, memmove, memset and
 * cache flush expressed as futures.
 *
 * A mover is a `struct vdm` of callbacks. vdm_memcpy() and friends build a
 * `struct vdm_operation_future` by value (the mover reserves a per-operation
 * handle through op_new); polling it starts the operation (op_start), checks
 * it (op_check) and, once complete, fills the output and releases the
 * handle (op_delete). A future whose handle could not be reserved is
 * returned already complete with VDM_ERROR_OUT_OF_MEMORY.
 */

#ifndef VDM_H
#define VDM_H 1

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vdm;
struct vdm_operation;
struct vdm_operation_output;

#include "vdm_types.h"

/* Size of the operation argument union. */
#define VDM_OPERATION_DATA_MAX_SIZE 40

FUTURE(vdm_operation_future, struct vdm_operation_data,
	struct vdm_operation_output);

/* The written data must be durable when the future completes. */
#define VDM_F_MEM_DURABLE (1U << 0)
/* Hint: keep the written data out of the CPU cache. */
#define VDM_F_NO_CACHE_HINT (1U << 1)
#define VDM_F_VALID_FLAGS (VDM_F_MEM_DURABLE | VDM_F_NO_CACHE_HINT)

/*
 * A synchronous mover that is not tied to a data_mover_sync object; release
 * it with vdm_synchronous_delete(). Never NULL (allocation failure aborts).
 * (Declared but never defined upstream; implemented here.)
 */
struct vdm *vdm_synchronous_new(void);
void vdm_synchronous_delete(struct vdm *vdm);

/* The task of every vdm future. */
static inline enum future_state
vdm_operation_impl(struct future_context *context, struct future_notifier *n)
{
	struct vdm_operation_data *data =
		(struct vdm_operation_data *)future_context_get_data(context);
	struct vdm *vdm = data->vdm;
	enum future_state state;

	if (context->state == FUTURE_STATE_IDLE &&
		vdm->op_start(data->data, &data->operation, n) != 0)
		return FUTURE_STATE_IDLE;

	state = vdm->op_check(data->data, &data->operation);
	if (state == FUTURE_STATE_COMPLETE) {
		/* the handle is released here: data->data is dead after it */
		vdm->op_delete(data->data, &data->operation,
			(struct vdm_operation_output *)
			future_context_get_output(context));
	}

	return state;
}

/* 1 if every bit of `capability` is among the mover's capabilities. */
static inline int
vdm_is_supported(struct vdm *vdm, unsigned capability)
{
	return (vdm->capabilities & capability) == capability;
}

/* Replaces the future's property function, unless `has_property` is NULL. */
static inline void
vdm_set_has_property_fn(struct vdm_operation_future *future,
	future_has_property_fn has_property)
{
	if (has_property != NULL)
		future->base.has_property = has_property;
}

/* Reserves the mover's handle and initialises the future around it. */
static inline void
vdm_generic_operation(struct vdm *vdm, struct vdm_operation_future *future)
{
	future->data.vdm = vdm;
	future->data.data = vdm->op_new(vdm, future->data.operation.type);
	if (future->data.data == NULL) {
		future->output.result = VDM_ERROR_OUT_OF_MEMORY;
		FUTURE_INIT_COMPLETE(future);
	} else {
		FUTURE_INIT(future, vdm_operation_impl);
	}
	vdm_set_has_property_fn(future, vdm->has_property);
}

/* A future that copies `n` bytes from `src` to `dest` (no overlap). */
static inline struct vdm_operation_future
vdm_memcpy(struct vdm *vdm, void *dest, void *src, size_t n, uint64_t flags)
{
	struct vdm_operation_future future;

	future.data.operation.type = VDM_OPERATION_MEMCPY;
	future.data.operation.padding = 0;
	future.data.operation.data.memcpy.dest = dest;
	future.data.operation.data.memcpy.src = src;
	future.data.operation.data.memcpy.n = n;
	future.data.operation.data.memcpy.flags = flags;
	future.output.type = VDM_OPERATION_MEMCPY;
	future.output.result = VDM_SUCCESS;
	future.output.output.memcpy.dest = NULL;
	vdm_generic_operation(vdm, &future);

	return future;
}

/* A future that moves `n` bytes from `src` to `dest` (overlap allowed). */
static inline struct vdm_operation_future
vdm_memmove(struct vdm *vdm, void *dest, void *src, size_t n,
	uint64_t flags)
{
	struct vdm_operation_future future;

	future.data.operation.type = VDM_OPERATION_MEMMOVE;
	future.data.operation.padding = 0;
	future.data.operation.data.memmove.dest = dest;
	future.data.operation.data.memmove.src = src;
	future.data.operation.data.memmove.n = n;
	future.data.operation.data.memmove.flags = flags;
	future.output.type = VDM_OPERATION_MEMMOVE;
	future.output.result = VDM_SUCCESS;
	future.output.output.memmove.dest = NULL;
	vdm_generic_operation(vdm, &future);

	return future;
}

/* A future that sets `n` bytes at `str` to the byte `c`. */
static inline struct vdm_operation_future
vdm_memset(struct vdm *vdm, void *str, int c, size_t n, uint64_t flags)
{
	struct vdm_operation_future future;

	future.data.operation.type = VDM_OPERATION_MEMSET;
	future.data.operation.padding = 0;
	future.data.operation.data.memset.str = str;
	future.data.operation.data.memset.c = c;
	future.data.operation.data.memset.n = n;
	future.data.operation.data.memset.flags = flags;
	future.output.type = VDM_OPERATION_MEMSET;
	future.output.result = VDM_SUCCESS;
	future.output.output.memset.str = NULL;
	vdm_generic_operation(vdm, &future);

	return future;
}

/* A future that writes the cache lines of `n` bytes at `dest` back. */
static inline struct vdm_operation_future
vdm_flush(struct vdm *vdm, void *dest, size_t n, uint64_t flags)
{
	struct vdm_operation_future future;

	future.data.operation.type = VDM_OPERATION_FLUSH;
	future.data.operation.padding = 0;
	future.data.operation.data.flush.dest = dest;
	future.data.operation.data.flush.n = n;
	future.data.operation.data.flush.flags = flags;
	future.output.type = VDM_OPERATION_FLUSH;
	future.output.result = VDM_SUCCESS;
	future.output.output.flush.unused = 0;
	vdm_generic_operation(vdm, &future);

	return future;
}

#ifdef __cplusplus
}
#endif

#endif /* VDM_H */
