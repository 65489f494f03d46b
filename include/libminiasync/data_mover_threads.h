/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * data_mover_threads.h -- a mover that runs operations on a pool of worker
 * threads fed through a bounded lock-free queue.
 */

#ifndef DATA_MOVER_THREADS_H
#define DATA_MOVER_THREADS_H 1

#include "vdm.h"
#include "data_mover_stats.h"

#ifdef __cplusplus
extern "C" {
#endif

struct data_mover_threads;

#include "data_mover_threads_types.h"

/*
 * A mover with `nthreads` workers and a queue of `ringbuf_size` slots
 * (operations, not bytes; rounded up to a power of two). Its futures use
 * `desired_notifier` (NONE, WAKER or POLLER). Returns NULL when `nthreads`
 * or `ringbuf_size` is 0, the notifier type is unknown, or memory or threads
 * cannot be had.
 */
struct data_mover_threads *data_mover_threads_new(size_t nthreads,
	size_t ringbuf_size, enum future_notifier_type desired_notifier);

/* data_mover_threads_new(12, 128, FUTURE_NOTIFIER_WAKER). */
struct data_mover_threads *data_mover_threads_default(void);

/* The mover's `struct vdm`, at the same address as the mover. */
struct vdm *data_mover_threads_get_vdm(struct data_mover_threads *dmt);

/*
 * Replace the functions the workers use for each operation type; NULL
 * restores the built-in one. Applies to operations a worker starts after
 * the call. The `flags` argument carries the operation's VDM_F_* flags.
 */
void data_mover_threads_set_memcpy_fn(struct data_mover_threads *dmt,
	memcpy_fn op_memcpy);
void data_mover_threads_set_memmove_fn(struct data_mover_threads *dmt,
	memmove_fn op_memmove);
void data_mover_threads_set_memset_fn(struct data_mover_threads *dmt,
	memset_fn op_memset);

/*
 * Stops the workers and releases the mover (NULL is ignored). Operations
 * already queued are executed first; operations not yet started must not
 * be polled afterwards.
 */
void data_mover_threads_delete(struct data_mover_threads *dmt);

/*
 * Extension: fills `stats` (its `size` set by the caller) with what the
 * mover did; 0, or -1 for a NULL argument or a `size` below that of the
 * `size` field. See data_mover_dml_get_stats(3).
 */
int data_mover_threads_get_stats(struct data_mover_threads *dmt,
	struct data_mover_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* DATA_MOVER_THREADS_H */
