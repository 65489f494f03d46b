/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * data_mover_dml.h -- a mover that offloads to Intel Data Streaming
 * Accelerator work queues, with a CPU path. The "dml" names are kept from
 * libminiasync-vdm-dml; the engine is native and needs no Intel DML.
 */

#ifndef VDM_DML_H
#define VDM_DML_H 1

#include <libminiasync.h>

#ifdef __cplusplus
extern "C" {
#endif

struct data_mover_dml;

#include "data_mover_dml_types.h"

/* Same bit as VDM_F_MEM_DURABLE, under the name the old manual used. */
#define MINIASYNC_DML_F_MEM_DURABLE VDM_F_MEM_DURABLE

/*
 * A DSA mover using the given path, or NULL (HARDWARE with no usable work
 * queue, an unknown type, no memory). `data_mover_dml_new()` with no
 * argument means DATA_MOVER_DML_AUTO.
 */
#ifdef __cplusplus
struct data_mover_dml *data_mover_dml_new(
	enum data_mover_dml_type type = DATA_MOVER_DML_AUTO);
#else
struct data_mover_dml *(data_mover_dml_new)(enum data_mover_dml_type type);
/* Picks the argument if there is one, DATA_MOVER_DML_AUTO otherwise. */
#define data_mover_dml_new(...) \
	(data_mover_dml_new)(((enum data_mover_dml_type[]){ \
		DATA_MOVER_DML_AUTO, __VA_ARGS__ }) \
		[sizeof((int[]){ 0, __VA_ARGS__ }) / sizeof(int) - 1])
#endif

/* The mover's `struct vdm`, at the same address as the mover. */
struct vdm *data_mover_dml_get_vdm(struct data_mover_dml *dmd);

/* Releases the mover (NULL is ignored). Its futures must be finished. */
void data_mover_dml_delete(struct data_mover_dml *dmd);

/*
 * Extension: fills `stats` (its `size` set by the caller) with what the
 * mover did; 0, or -1 for a NULL argument or a `size` below that of the
 * `size` field. See data_mover_dml_get_stats(3).
 */
int data_mover_dml_get_stats(struct data_mover_dml *dmd,
	struct data_mover_stats *stats);

/*
 * Extension: fills `q` (its `size` set by the caller) with work queue
 * `index` of those the mover used (`stats.queues` of them); 0, or -1 for a
 * NULL argument, a too small `size` or an index out of range.
 */
int data_mover_dml_get_queue_stats(struct data_mover_dml *dmd, size_t index,
	struct data_mover_queue_stats *q);

#ifdef __cplusplus
}
#endif

#endif /* VDM_DML_H */
