/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_auto.c -- DATA_MOVER_DML_AUTO on the emulated work queue with
 * MINIASYNC_DSA_THRESHOLD=4096: operations below the threshold run on the
 * CPU (FUTURE_NOTIFIER_NONE), the others on the device
 * (FUTURE_NOTIFIER_POLLER); a tiny work queue (4 entries) makes AUTO fall
 * back to the CPU when it is full; injected page faults and untouched
 * memory are resumed or finished on the CPU; nothing is lost.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include "dml_common.h"

static struct vdm *V;

static enum future_notifier_type
by_threshold(size_t n)
{
	return n >= 4096 ? FUTURE_NOTIFIER_POLLER : FUTURE_NOTIFIER_NONE;
}

static void
matrix(void)
{
	dml_matrix(V, by_threshold);
}

static void
many_with_a_full_queue(void)
{
	dml_many(V, test_scale(3000));
}

static void
untouched_buffers(void)
{
	dml_untouched_buffers(V);
}

/* The default mover (no argument) is AUTO and uses the same device. */
static void
default_is_auto(void)
{
	struct data_mover_dml *d = data_mover_dml_new();
	CHECK(d != NULL);
	size_t n = 100000;
	unsigned char *a = (unsigned char *)malloc(n), *b = (unsigned char *)calloc(1, n);
	dml_pattern(a, n, 4);
	struct vdm_operation_future f = vdm_memcpy(data_mover_dml_get_vdm(d), b, a, n,
		MINIASYNC_DML_F_MEM_DURABLE);
	CHECK_EQ(dml_wait(&f), FUTURE_NOTIFIER_POLLER);
	CHECK(memcmp(a, b, n) == 0);
	free(a);
	free(b);
	data_mover_dml_delete(d);
}

int
main(void)
{
	test_prog = "dml_auto";
	setenv("MINIASYNC_DSA_EMULATE", "1", 1);
	setenv("MINIASYNC_DSA_EMULATE_WQ_SIZE", "4", 1);
	setenv("MINIASYNC_DSA_EMULATE_MAX_TRANSFER", "262144", 1);
	setenv("MINIASYNC_DSA_EMULATE_FAULT_RATE", "0.3", 1);
	setenv("MINIASYNC_DSA_THRESHOLD", "4096", 1);
	struct data_mover_dml *dmd = data_mover_dml_new(DATA_MOVER_DML_AUTO);
	CHECK(dmd != NULL);
	if (dmd == NULL)
		TEST_DONE();
	V = data_mover_dml_get_vdm(dmd);
	RUN(matrix);
	RUN(many_with_a_full_queue);
	RUN(untouched_buffers);
	RUN(default_is_auto);
	data_mover_dml_delete(dmd);
	TEST_DONE();
}
