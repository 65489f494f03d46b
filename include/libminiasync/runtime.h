/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * runtime.h -- waits for futures to complete.
 *
 * The runtime polls the futures it is given until every one is COMPLETE.
 * Between passes it spins briefly, then sleeps until a future's waker fires
 * (futures that register no waker are re-polled with a short back-off).
 * One thread should wait on a runtime at a time.
 */

#ifndef RUNTIME_H
#define RUNTIME_H 1

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

struct runtime;

/* A new runtime; never NULL (allocation failure aborts). A runtime serves
 * one waiting thread at a time and must not be re-entered from the task of a
 * future it is polling. */
struct runtime *runtime_new(void);

/* Releases a runtime (NULL is ignored). No thread may be waiting on it. */
void runtime_delete(struct runtime *runtime);

/*
 * Polls `futs[0..nfuts)` until all are complete, futures already complete
 * on entry included. On each pass futures with FUTURE_PROPERTY_ASYNC come
 * first, otherwise in the previous pass's order; the array is reordered in
 * place accordingly, as upstream did. NULL entries are skipped.
 */
void runtime_wait_multiple(struct runtime *runtime, struct future *futs[],
	size_t nfuts);

/* runtime_wait_multiple() of one future. */
void runtime_wait(struct runtime *runtime, struct future *fut);

/*
 * Waits for a contiguous array of `nfuts` futures of one type, e.g.
 * `struct vdm_operation_future tasks[2]; ...;
 * runtime_wait_all(rt, (struct future *)tasks, 2);`. The stride is each
 * future's full size, sizeof(struct future) + data_size + output_size
 * rounded up to 8, read from the first future's context. The array itself
 * is not reordered.
 */
void runtime_wait_all(struct runtime *runtime, struct future *futs,
	size_t nfuts);

#ifdef __cplusplus
}
#endif

#endif /* RUNTIME_H */
