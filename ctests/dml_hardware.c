/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_hardware.c -- DATA_MOVER_DML_HARDWARE on the emulated work queue
 * (MINIASYNC_DSA_EMULATE=1, set here before the first mover) of the 6.1
 * kernel generation (a mapped portal, BATCH offered): a small
 * dedicated WQ (16 entries, so batching and flow control are exercised),
 * 64 KiB transfers (so large operations are split), page faults injected at
 * random offsets on a fifth of the descriptors, and a strict emulator that
 * aborts the process if the driver ever overfills the queue. Every future
 * is device-backed (FUTURE_NOTIFIER_POLLER) and driven by a poller that
 * polls only when the monitor word says so.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "dml_common.h"

static struct vdm *V;

static enum future_notifier_type
device_only(size_t n)
{
	(void)n;
	return FUTURE_NOTIFIER_POLLER;
}

static void
matrix(void)
{
	dml_matrix(V, device_only);
}

static void
thousands_in_flight(void)
{
	dml_many(V, test_scale(3000));
}

static void
untouched_buffers(void)
{
	dml_untouched_buffers(V);
}

/* Overlapping moves at many distances, both directions, split in pieces. */
static void
overlapping_moves(void)
{
	size_t n = 300000, cap = n + 200000;
	unsigned char *buf = (unsigned char *)malloc(cap);
	unsigned char *want = (unsigned char *)malloc(cap);
	static const size_t dist[] = { 1, 3, 64, 4095, 4096, 65536, 65537, 150000 };
	for (size_t i = 0; i < sizeof(dist) / sizeof(dist[0]); i++) {
		for (int up = 0; up < 2; up++) {
			size_t s = up ? 0 : dist[i], d = up ? dist[i] : 0;
			dml_pattern(buf, cap, (unsigned)i);
			memcpy(want, buf, cap);
			memmove(want + d, want + s, n);
			struct vdm_operation_future f =
				vdm_memmove(V, buf + d, buf + s, n, up);
			CHECK_EQ(dml_wait(&f), FUTURE_NOTIFIER_POLLER);
			CHECK_EQ(f.output.result, VDM_SUCCESS);
			CHECK(memcmp(buf, want, cap) == 0);
		}
	}
	free(buf);
	free(want);
}

/* Futures moved in memory between polls keep working. */
static void
moved_while_running(void)
{
	size_t n = 1 << 20;
	unsigned char *src = (unsigned char *)malloc(n);
	unsigned char *dst = (unsigned char *)calloc(1, n);
	dml_pattern(src, n, 5);
	struct vdm_operation_future a = vdm_memcpy(V, dst, src, n, 0), b;
	struct future_notifier nt;
	memset(&nt, 0, sizeof(nt));
	enum future_state st = future_poll(FUTURE_AS_RUNNABLE(&a), &nt);
	int flip = 0;
	while (st != FUTURE_STATE_COMPLETE) {
		if (flip) {
			a = b;
			st = future_poll(FUTURE_AS_RUNNABLE(&a), &nt);
		} else {
			b = a;
			memset(&a, 0xaa, sizeof(a));
			st = future_poll(FUTURE_AS_RUNNABLE(&b), &nt);
		}
		flip = !flip;
	}
	struct vdm_operation_future *done = flip ? &b : &a;
	CHECK_EQ(done->output.result, VDM_SUCCESS);
	CHECK(memcmp(dst, src, n) == 0);
	free(src);
	free(dst);
}

/*
 * A child created by fork() gets a work queue of its own (the parent's
 * cannot be used from it) and copies through the device.
 */
static void
child_after_fork(void)
{
	const char *pre = getenv("LD_PRELOAD");
	if (pre != NULL && strstr(pre, "vgpreload") != NULL) {
		/* valgrind reports the parent's thread-owned memory as lost in
		 * the child (those threads do not exist there) */
		printf("# child_after_fork skipped under valgrind\n");
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		alarm(30);
		size_t n = 300000;
		unsigned char *a = (unsigned char *)malloc(n);
		unsigned char *b = (unsigned char *)calloc(1, n);
		dml_pattern(a, n, 8);
		struct data_mover_dml *d = data_mover_dml_new(DATA_MOVER_DML_HARDWARE);
		if (d == NULL)
			_exit(2);
		struct vdm_operation_future f =
			vdm_memcpy(data_mover_dml_get_vdm(d), b, a, n, 0);
		if (dml_wait(&f) != FUTURE_NOTIFIER_POLLER)
			_exit(3);
		_exit(f.output.result == VDM_SUCCESS && memcmp(a, b, n) == 0 ? 0 : 4);
	}
	int status = 0;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

int
main(void)
{
	test_prog = "dml_hardware";
	setenv("MINIASYNC_DSA_EMULATE", "1", 1);
	setenv("MINIASYNC_DSA_EMULATE_KERNEL", "6.1", 1);
	setenv("MINIASYNC_DSA_EMULATE_WQ_SIZE", "16", 1);
	setenv("MINIASYNC_DSA_EMULATE_ENGINES", "2", 1);
	setenv("MINIASYNC_DSA_EMULATE_MAX_TRANSFER", "65536", 1);
	setenv("MINIASYNC_DSA_EMULATE_FAULT_RATE", "0.2", 1);
	setenv("MINIASYNC_DSA_EMULATE_STRICT", "1", 1);
	struct data_mover_dml *dmd = data_mover_dml_new(DATA_MOVER_DML_HARDWARE);
	CHECK(dmd != NULL);
	if (dmd == NULL)
		TEST_DONE();
	V = data_mover_dml_get_vdm(dmd);
	RUN(matrix);
	RUN(thousands_in_flight);
	RUN(untouched_buffers);
	RUN(overlapping_moves);
	RUN(moved_while_running);
	RUN(child_after_fork);
	data_mover_dml_delete(dmd);
	TEST_DONE();
}
