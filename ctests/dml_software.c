/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_software.c -- DATA_MOVER_DML_SOFTWARE: every operation, size and flag
 * on the CPU (notifier NONE), the mover's contract values, futures moved
 * and edited before their first poll, several movers at once, the bounded
 * number of outstanding operations (MINIASYNC_MAX_OPS=64), and
 * constructor arguments (unknown types, the no-argument form = AUTO).
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include "dml_common.h"

static enum future_notifier_type
cpu_only(size_t n)
{
	(void)n;
	return FUTURE_NOTIFIER_NONE;
}

static void
software_matrix(void)
{
	struct data_mover_dml *dmd = data_mover_dml_new(DATA_MOVER_DML_SOFTWARE);
	CHECK(dmd != NULL);
	if (dmd == NULL)
		return;
	dml_matrix(data_mover_dml_get_vdm(dmd), cpu_only);
	data_mover_dml_delete(dmd);
}

static void
contract_values(void)
{
	struct data_mover_dml *dmd = data_mover_dml_new(DATA_MOVER_DML_SOFTWARE);
	struct vdm *v = data_mover_dml_get_vdm(dmd);
	CHECK(v == (struct vdm *)dmd);
	CHECK_EQ(v->capabilities, VDM_F_MEM_DURABLE | VDM_F_NO_CACHE_HINT);
	CHECK(v->has_property != NULL);
	CHECK_EQ(MINIASYNC_DML_F_MEM_DURABLE, VDM_F_MEM_DURABLE);
	char a[16] = "0123456789abcde", b[16];
	struct vdm_operation_future f = vdm_memcpy(v, b, a, 16, 0);
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f), FUTURE_PROPERTY_ASYNC), 1);
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f), (enum future_property)7), 0);
	FUTURE_BUSY_POLL(&f);
	CHECK(memcmp(a, b, 16) == 0);
	data_mover_dml_delete(dmd);
	CHECK(data_mover_dml_get_vdm(NULL) == NULL);
	data_mover_dml_delete(NULL);
	CHECK(data_mover_dml_new((enum data_mover_dml_type)3) == NULL);
	CHECK(data_mover_dml_new((enum data_mover_dml_type)-1) == NULL);
	/* No argument: AUTO, which always exists (the CPU is its fallback). */
	struct data_mover_dml *automatic = data_mover_dml_new();
	CHECK(automatic != NULL);
	data_mover_dml_delete(automatic);
}

static void
moved_and_edited_futures(void)
{
	struct data_mover_dml *dmd = data_mover_dml_new(DATA_MOVER_DML_SOFTWARE);
	struct vdm *v = data_mover_dml_get_vdm(dmd);
	unsigned char a[300], b[300], c[300];
	dml_pattern(a, sizeof(a), 1);
	memset(b, 0, sizeof(b));
	memset(c, 0, sizeof(c));
	struct vdm_operation_future f = vdm_memcpy(v, b, a, 100, 0);
	/* edit the operation before the first poll: copy 300 bytes into c */
	f.data.operation.data.memcpy.dest = c;
	f.data.operation.data.memcpy.n = 300;
	struct vdm_operation_future moved = f; /* and move the future */
	memset(&f, 0, sizeof(f));
	FUTURE_BUSY_POLL(&moved);
	CHECK_EQ(moved.output.result, VDM_SUCCESS);
	CHECK(moved.output.output.memcpy.dest == c);
	CHECK(memcmp(a, c, 300) == 0);
	CHECK(dml_all(b, 300, 0));
	data_mover_dml_delete(dmd);
}

static void
several_movers(void)
{
	struct data_mover_dml *m[4];
	for (int i = 0; i < 4; i++)
		m[i] = data_mover_dml_new(DATA_MOVER_DML_SOFTWARE);
	unsigned char src[4096], dst[4][4096];
	dml_pattern(src, sizeof(src), 2);
	struct vdm_operation_future f[4];
	for (int i = 0; i < 4; i++)
		f[i] = vdm_memcpy(data_mover_dml_get_vdm(m[i]), dst[i], src,
			4096, 0);
	for (int i = 3; i >= 0; i--) {
		FUTURE_BUSY_POLL(&f[i]);
		CHECK(memcmp(dst[i], src, 4096) == 0);
	}
	for (int i = 0; i < 4; i++)
		data_mover_dml_delete(m[i]);
}

/* MINIASYNC_MAX_OPS=64 (set in main): the 65th outstanding op fails. */
static void
bounded_outstanding_ops(void)
{
	struct data_mover_dml *dmd = data_mover_dml_new(DATA_MOVER_DML_SOFTWARE);
	struct vdm *v = data_mover_dml_get_vdm(dmd);
	static struct vdm_operation_future f[65];
	char a[8] = "abcdefg", b[65][8];
	for (int i = 0; i < 65; i++)
		f[i] = vdm_memcpy(v, b[i], a, 8, 0);
	/* 64 created; the 65th came back complete with OUT_OF_MEMORY */
	CHECK_EQ(FUTURE_STATE(&f[64]), FUTURE_STATE_COMPLETE);
	CHECK_EQ(f[64].output.result, VDM_ERROR_OUT_OF_MEMORY);
	FUTURE_BUSY_POLL(&f[0]);
	struct vdm_operation_future again = vdm_memcpy(v, b[64], a, 8, 0);
	FUTURE_BUSY_POLL(&again);
	CHECK_EQ(again.output.result, VDM_SUCCESS);
	for (int i = 1; i < 64; i++) {
		FUTURE_BUSY_POLL(&f[i]);
		CHECK_EQ(f[i].output.result, VDM_SUCCESS);
	}
	CHECK(memcmp(b[63], a, 8) == 0 && memcmp(b[64], a, 8) == 0);
	data_mover_dml_delete(dmd);
}

static void
bad_operations(void)
{
	struct data_mover_dml *dmd = data_mover_dml_new(DATA_MOVER_DML_SOFTWARE);
	struct vdm *v = data_mover_dml_get_vdm(dmd);
	char b[8];
	struct vdm_operation_future f = vdm_memcpy(v, b, NULL, 8, 0);
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(f.output.result, VDM_ERROR_JOB_CORRUPTED);
	CHECK(f.output.output.memcpy.dest == NULL);
	data_mover_dml_delete(dmd);
}

int
main(void)
{
	test_prog = "dml_software";
	setenv("MINIASYNC_MAX_OPS", "64", 1);
	/* no device of any kind: AUTO falls back to the CPU */
	setenv("MINIASYNC_DSA_SYSFS", "/nonexistent/miniasync-test", 1);
	unsetenv("MINIASYNC_DSA_EMULATE");
	RUN(software_matrix);
	RUN(contract_values);
	RUN(moved_and_edited_futures);
	RUN(several_movers);
	RUN(bounded_outstanding_ops);
	RUN(bad_operations);
	TEST_DONE();
}
