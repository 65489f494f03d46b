/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_halt.c -- the emulated device halts after 40 descriptors
 * (MINIASYNC_DSA_EMULATE_HALT_AFTER=40) while operations are in flight:
 * DATA_MOVER_DML_AUTO completes every one of them with the right data
 * (what the device did not finish runs on the CPU, which is safe because
 * the device is known to have stopped); afterwards
 * DATA_MOVER_DML_HARDWARE operations fail with VDM_ERROR_JOB_CORRUPTED.
 * The halt is found through the device's state, not the timeout, which is
 * set to an hour (MINIASYNC_DSA_TIMEOUT_MS); alarm() turns a hang into a
 * failure.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <unistd.h>
#include "dml_common.h"

static struct vdm *Auto, *Hw;

/* Polls without watching the monitor word: a halted device never writes it. */
static void
wait_all(struct vdm_operation_future *fs, size_t n)
{
	struct runtime *r = runtime_new();
	struct future **ptrs = (struct future **)calloc(n, sizeof(*ptrs));
	if (r == NULL || ptrs == NULL) {
		CHECK(!"out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++)
		ptrs[i] = FUTURE_AS_RUNNABLE(&fs[i]);
	runtime_wait_multiple(r, ptrs, n);
	runtime_delete(r);
	free(ptrs);
}

static void
auto_finishes_everything_across_the_halt(void)
{
	size_t count = 64, n = 256 << 10;
	unsigned char *src = (unsigned char *)malloc(n);
	unsigned char *dst = (unsigned char *)malloc(count * n);
	struct vdm_operation_future *fs = (struct vdm_operation_future *)
		calloc(count, sizeof(*fs));
	if (!src || !dst || !fs) {
		CHECK(!"out of memory");
		return;
	}
	dml_pattern(src, n, 5);
	memset(dst, 0xee, count * n);
	for (size_t i = 0; i < count; i++)
		fs[i] = vdm_memcpy(Auto, dst + i * n, src, n, 0);
	wait_all(fs, count);
	size_t bad = 0;
	for (size_t i = 0; i < count; i++)
		if (fs[i].output.result != VDM_SUCCESS ||
				memcmp(dst + i * n, src, n) != 0)
			bad++;
	CHECK_EQ(bad, 0);
	free(fs);
	free(dst);
	free(src);
}

static void
hardware_fails_once_the_device_halted(void)
{
	size_t n = 100000;
	unsigned char *src = (unsigned char *)malloc(n);
	unsigned char *dst = (unsigned char *)malloc(n);
	if (!src || !dst) {
		CHECK(!"out of memory");
		return;
	}
	dml_pattern(src, n, 6);
	/* The device halts after HALT_AFTER descriptors in all; how many of
	 * them the AUTO test used depends on timing (AUTO takes the CPU when
	 * the queue is full), so reach the halt here first: operations before
	 * it complete normally, the first one it catches fails. */
	int halted = 0;
	for (int i = 0; i < 100 && !halted; i++) {
		struct vdm_operation_future h = vdm_memcpy(Hw, dst, src, n, 0);
		wait_all(&h, 1);
		halted = h.output.result == VDM_ERROR_JOB_CORRUPTED;
		if (!halted)
			CHECK(memcmp(dst, src, n) == 0);
	}
	CHECK(halted);
	struct vdm_operation_future f[3];
	f[0] = vdm_memcpy(Hw, dst, src, n, 0);
	f[1] = vdm_memset(Hw, dst, 7, n, 0);
	f[2] = vdm_memcpy(Hw, dst, src, 0, 0);
	wait_all(f, 3);
	CHECK_EQ(f[0].output.result, VDM_ERROR_JOB_CORRUPTED);
	CHECK_EQ(f[1].output.result, VDM_ERROR_JOB_CORRUPTED);
	CHECK_EQ(f[2].output.result, VDM_SUCCESS);
	/* AUTO keeps working, on the CPU. */
	struct vdm_operation_future g = vdm_memcpy(Auto, dst, src, n, 0);
	CHECK_EQ(dml_wait(&g), FUTURE_NOTIFIER_NONE);
	CHECK_EQ(g.output.result, VDM_SUCCESS);
	CHECK(memcmp(dst, src, n) == 0);
	free(dst);
	free(src);
}

int
main(void)
{
	test_prog = "dml_halt";
	alarm(300);
	setenv("MINIASYNC_DSA_EMULATE", "1", 1);
	setenv("MINIASYNC_DSA_EMULATE_WQ_SIZE", "8", 1);
	setenv("MINIASYNC_DSA_EMULATE_MAX_TRANSFER", "65536", 1);
	setenv("MINIASYNC_DSA_EMULATE_HALT_AFTER", "40", 1);
	setenv("MINIASYNC_DSA_TIMEOUT_MS", "3600000", 1);
	setenv("MINIASYNC_DSA_THRESHOLD", "4096", 1);
	struct data_mover_dml *a = data_mover_dml_new(DATA_MOVER_DML_AUTO);
	struct data_mover_dml *h = data_mover_dml_new(DATA_MOVER_DML_HARDWARE);
	CHECK(a != NULL && h != NULL);
	if (a == NULL || h == NULL)
		TEST_DONE();
	Auto = data_mover_dml_get_vdm(a);
	Hw = data_mover_dml_get_vdm(h);
	RUN(auto_finishes_everything_across_the_halt);
	RUN(hardware_fails_once_the_device_halted);
	data_mover_dml_delete(h);
	data_mover_dml_delete(a);
	TEST_DONE();
}
