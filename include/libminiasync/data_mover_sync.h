/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * data_mover_sync.h -- a mover that does every operation on the calling
 * thread, during the first poll of its future.
 */

#ifndef DATA_MOVER_SYNC_H
#define DATA_MOVER_SYNC_H 1

#include "vdm.h"
#include "data_mover_stats.h"

#ifdef __cplusplus
extern "C" {
#endif

struct data_mover_sync;

/* A new synchronous mover; never NULL (allocation failure aborts). */
struct data_mover_sync *data_mover_sync_new(void);

/* The mover's `struct vdm`, at the same address as the mover. */
struct vdm *data_mover_sync_get_vdm(struct data_mover_sync *dms);

/* Releases the mover (NULL is ignored). Its futures must be finished. */
void data_mover_sync_delete(struct data_mover_sync *dms);

/*
 * Extension: fills `stats` (its `size` set by the caller) with what the
 * mover did; 0, or -1 for a NULL argument or a `size` below that of the
 * `size` field. See data_mover_dml_get_stats(3).
 */
int data_mover_sync_get_stats(struct data_mover_sync *dms,
	struct data_mover_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* DATA_MOVER_SYNC_H */
