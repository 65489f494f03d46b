/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * install_consumer.c -- a program built only from an installed
 * libminiasync (through pkg-config or find_package(libminiasync)), the way
 * a user would: one memcpy through the sync mover and one through the
 * threads mover, each waited for by the runtime, data verified.
 * tests/check_install.sh builds and runs it.
 */
#include <stdio.h>
#include <string.h>

#include <libminiasync.h>

#define N 8192

static int
copy_and_check(const char *name, struct runtime *rt, struct vdm *vdm)
{
	static char src[N], dst[N];

	for (size_t i = 0; i < N; i++)
		src[i] = (char)(i * 31 + 7);
	memset(dst, 0, N);

	struct vdm_operation_future f = vdm_memcpy(vdm, dst, src, N, 0);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));

	if (FUTURE_STATE(&f) != FUTURE_STATE_COMPLETE ||
		f.output.result != VDM_SUCCESS ||
		f.output.output.memcpy.dest != dst || memcmp(src, dst, N) != 0) {
		printf("consumer: %s mover: copy FAILED\n", name);
		return 1;
	}
	printf("consumer: %s mover: copied and verified %d bytes\n", name, N);
	return 0;
}

int
main(void)
{
	struct runtime *rt = runtime_new();
	struct data_mover_sync *dms = data_mover_sync_new();
	struct data_mover_threads *dmt = data_mover_threads_default();
	int failed = 0;

	if (rt == NULL || dms == NULL || dmt == NULL) {
		printf("consumer: cannot create the runtime or a mover\n");
		return 1;
	}

	failed += copy_and_check("sync", rt, data_mover_sync_get_vdm(dms));
	failed += copy_and_check("threads", rt, data_mover_threads_get_vdm(dmt));

	data_mover_threads_delete(dmt);
	data_mover_sync_delete(dms);
	runtime_delete(rt);
	return failed ? 1 : 0;
}
