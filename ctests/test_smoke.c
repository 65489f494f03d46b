/* SPDX-License-Identifier: BSD-3-Clause */
/* test_smoke.c -- one copy through each mover, waited on by the runtime. */
#include <libminiasync.h>
#include "test.h"

static void
sync_copy(void)
{
	char src[64] = "hello, sync mover", dst[64] = { 0 };
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	struct vdm_operation_future f = vdm_memcpy(vdm, dst, src, 64, 0);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_IDLE);
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(f.output.output.memcpy.dest == dst);
	CHECK(memcmp(src, dst, 64) == 0);
	data_mover_sync_delete(dms);
}

static void
threads_copy(void)
{
	char src[4096], dst[4096];
	memset(src, 7, sizeof(src));
	memset(dst, 0, sizeof(dst));
	struct runtime *rt = runtime_new();
	struct data_mover_threads *dmt = data_mover_threads_default();
	CHECK(dmt != NULL);
	struct vdm_operation_future f = vdm_memcpy(
		data_mover_threads_get_vdm(dmt), dst, src, sizeof(src), 0);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(memcmp(src, dst, sizeof(src)) == 0);
	data_mover_threads_delete(dmt);
	runtime_delete(rt);
}

int
main(void)
{
	test_prog = "test_smoke";
	RUN(sync_copy);
	RUN(threads_copy);
	TEST_DONE();
}
