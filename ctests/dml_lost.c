/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_lost.c -- an emulated device that never writes some completion
 * records (MINIASYNC_DSA_EMULATE_LOSE_RATE) and writes others a second
 * late from another thread (MINIASYNC_DSA_EMULATE_LATE_RATE and _LATE_US,
 * DSA 2.0's completion-record fault), with MINIASYNC_DSA_TIMEOUT_MS=200:
 * each operation completes, either with VDM_SUCCESS and the right data or
 * with VDM_ERROR_JOB_CORRUPTED once the timeout passed (AUTO too: the
 * device is still enabled and may still write, so the CPU must not race
 * it). Operations keep working while late records land in the records
 * quarantined earlier; deleting the movers afterwards does not hang.
 * alarm() turns a hang into a failure.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <unistd.h>
#include "dml_common.h"

/* Polls without watching the monitor word: a lost record never changes it. */
static void
poll_to_completion(struct vdm_operation_future *f)
{
	struct future_notifier n;
	memset(&n, 0, sizeof(n));
	while (future_poll(FUTURE_AS_RUNNABLE(f), &n) != FUTURE_STATE_COMPLETE)
		sched_yield();
}

/* Runs `count` copies one at a time; returns how many failed. */
static size_t
copies(struct vdm *v, size_t count, unsigned seed)
{
	size_t n = 64 << 10, failed = 0;
	unsigned char *src = (unsigned char *)malloc(n);
	unsigned char *dst = (unsigned char *)malloc(n);
	if (!src || !dst) {
		CHECK(!"out of memory");
		return 0;
	}
	for (size_t i = 0; i < count; i++) {
		dml_pattern(src, n, seed + (unsigned)i);
		memset(dst, 0xee, n);
		struct vdm_operation_future f = vdm_memcpy(v, dst, src, n, 0);
		poll_to_completion(&f);
		if (f.output.result == VDM_ERROR_JOB_CORRUPTED)
			failed++;
		else {
			CHECK_EQ(f.output.result, VDM_SUCCESS);
			CHECK(memcmp(dst, src, n) == 0);
		}
	}
	/*
	 * The emulator does the work before it loses or delays a record, so
	 * nothing writes these buffers any more (a real device might).
	 */
	free(dst);
	free(src);
	return failed;
}

static void
hardware_and_auto_fail_only_the_lost_operations(void)
{
	size_t count = 30;
	struct data_mover_dml *h = data_mover_dml_new(DATA_MOVER_DML_HARDWARE);
	struct data_mover_dml *a = data_mover_dml_new(DATA_MOVER_DML_AUTO);
	CHECK(h != NULL && a != NULL);
	if (h == NULL || a == NULL)
		return;
	size_t fh = copies(data_mover_dml_get_vdm(h), count, 1);
	size_t fa = copies(data_mover_dml_get_vdm(a), count, 100);
	CHECK(fh > 0 && fa > 0);
	CHECK(fh < count && fa < count);
	/* Later operations while the late records land. */
	double until = dml_now() + 1.5;
	while (dml_now() < until)
		copies(data_mover_dml_get_vdm(h), 1, 200);
	data_mover_dml_delete(h);
	data_mover_dml_delete(a);
}

int
main(void)
{
	test_prog = "dml_lost";
	alarm(300);
	setenv("MINIASYNC_DSA_EMULATE", "1", 1);
	setenv("MINIASYNC_DSA_EMULATE_WQ_SIZE", "64", 1);
	/* A mapped portal (6.1): on newer kernels the queue is opened through
	 * a write(2) probe, whose NOOP record may be lost here too, which
	 * rightly makes the queue unusable (the probe has tests of its own). */
	setenv("MINIASYNC_DSA_EMULATE_KERNEL", "6.1", 1);
	setenv("MINIASYNC_DSA_EMULATE_LOSE_RATE", "0.2", 1);
	setenv("MINIASYNC_DSA_EMULATE_LATE_RATE", "0.2", 1);
	setenv("MINIASYNC_DSA_EMULATE_LATE_US", "1000000", 1);
	setenv("MINIASYNC_DSA_EMULATE_SEED", "3", 1);
	setenv("MINIASYNC_DSA_TIMEOUT_MS", "200", 1);
	setenv("MINIASYNC_DSA_THRESHOLD", "4096", 1);
	RUN(hardware_and_auto_fail_only_the_lost_operations);
	TEST_DONE();
}
