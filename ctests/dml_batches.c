/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_batches.c -- DATA_MOVER_DML_HARDWARE on the emulated work queue in
 * each batch order the emulator models (MINIASYNC_DSA_EMULATE_BATCH_ORDER):
 * element records before the batch record, after it, or either at random.
 * A 4-entry queue puts most operations into batches; the strict emulator
 * aborts the process on a driver bug (an element submitted again while its
 * first run is still in the device, a queue overfilled, a durable write
 * left in the cache). The engine is opened once per process, so each
 * order runs in a child of its own; the parent never opens one.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "dml_common.h"

/* Small copies and fills, all in flight at once, half of them durable. */
static void
small_ops(struct vdm *v, size_t count)
{
	size_t sz = 256;
	unsigned char *src = (unsigned char *)malloc(count * sz);
	unsigned char *dst = (unsigned char *)calloc(count, sz);
	struct vdm_operation_future *fs = (struct vdm_operation_future *)
		calloc(count, sizeof(*fs));
	struct future **ptrs = (struct future **)calloc(count, sizeof(*ptrs));
	struct runtime *r = runtime_new();
	if (!src || !dst || !fs || !ptrs || !r) {
		CHECK(!"out of memory");
		return;
	}
	dml_pattern(src, count * sz, 3);
	for (size_t i = 0; i < count; i++) {
		uint64_t flags = i % 2 ? VDM_F_MEM_DURABLE : 0;
		if (i % 3 == 2)
			fs[i] = vdm_memset(v, dst + i * sz, (int)(i % 251), sz,
				flags);
		else
			fs[i] = vdm_memcpy(v, dst + i * sz, src + i * sz, sz,
				flags);
		ptrs[i] = FUTURE_AS_RUNNABLE(&fs[i]);
	}
	runtime_wait_multiple(r, ptrs, count);
	size_t bad = 0;
	for (size_t i = 0; i < count; i++) {
		int ok = i % 3 == 2 ?
			dml_all(dst + i * sz, sz, (unsigned char)(i % 251)) :
			memcmp(dst + i * sz, src + i * sz, sz) == 0;
		if (fs[i].output.result != VDM_SUCCESS || !ok)
			bad++;
	}
	CHECK_EQ(bad, 0);
	runtime_delete(r);
	free(ptrs);
	free(fs);
	free(src);
	free(dst);
}

/* Runs the operations in a child whose emulator uses `order`. */
static void
in_order(const char *order)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(120);
		setenv("MINIASYNC_DSA_EMULATE", "1", 1);
		/* a kernel that shows BATCH for a version 1 device */
		setenv("MINIASYNC_DSA_EMULATE_KERNEL", "6.1", 1);
		setenv("MINIASYNC_DSA_EMULATE_WQ_SIZE", "4", 1);
		setenv("MINIASYNC_DSA_EMULATE_ENGINES", "3", 1);
		setenv("MINIASYNC_DSA_EMULATE_MAX_BATCH", "16", 1);
		setenv("MINIASYNC_DSA_EMULATE_DELAY_US", "3", 1);
		setenv("MINIASYNC_DSA_EMULATE_FAULT_RATE", "0.05", 1);
		setenv("MINIASYNC_DSA_EMULATE_STRICT", "1", 1);
		setenv("MINIASYNC_DSA_EMULATE_BATCH_ORDER", order, 1);
		struct data_mover_dml *d =
			data_mover_dml_new(DATA_MOVER_DML_HARDWARE);
		if (d == NULL)
			_exit(2);
		struct vdm *v = data_mover_dml_get_vdm(d);
		small_ops(v, test_scale(4000));
		dml_many(v, test_scale(1000));
		/* The statistics saw the batches and the faults (FAULT_RATE). */
		struct data_mover_stats s;
		memset(&s, 0, sizeof(s));
		s.size = sizeof(s);
		CHECK_EQ(data_mover_dml_get_stats(d, &s), 0);
		CHECK(s.batches > 0);
		CHECK(s.page_faults > 0);
		data_mover_dml_delete(d);
		fflush(stderr);
		_exit(test_failed_checks ? 3 : 0);
	}
	int status = 0;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status))
		fprintf(stderr, "%s: child killed by signal %d\n", order,
			WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

static void
elements_first(void)
{
	in_order("elements-first");
}

static void
batch_first(void)
{
	in_order("batch-first");
}

static void
random_order(void)
{
	in_order("random");
}

int
main(void)
{
	test_prog = "dml_batches";
	RUN(elements_first);
	RUN(batch_first);
	RUN(random_order);
	TEST_DONE();
}
