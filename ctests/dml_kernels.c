/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_kernels.c -- DATA_MOVER_DML_HARDWARE on the emulated work queue of
 * every kernel generation (MINIASYNC_DSA_EMULATE_KERNEL = 5.15, 6.1, 6.9,
 * 6.16), each case in a child process of its own (the variables are read
 * when a process opens its engine). On each generation the queue is
 * usable and every operation runs on the device (FUTURE_NOTIFIER_POLLER),
 * whatever its op_cap format and submission route (mapped portal before
 * 6.9, write(2) from 6.9 unless MINIASYNC_DSA_EMULATE_RAWIO=1). Where no
 * route exists (write(2) forced before 6.9, a shared queue on 5.15) the
 * mover is NULL and its message says why.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "dml_common.h"

/* Copies, moves both ways, fills and flushes, then many copies in flight
 * (the queue fills; batches where the generation offers BATCH). */
static int
exercise(struct vdm *v)
{
	static const size_t sizes[] = { 1, 64, 4097, 65536, (1 << 20) + 13 };
	size_t cap = (2 << 20) + 8192;
	unsigned char *a = (unsigned char *)malloc(cap);
	unsigned char *b = (unsigned char *)malloc(cap);
	unsigned char *want = (unsigned char *)malloc(cap);
	if (a == NULL || b == NULL || want == NULL)
		return 10;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		dml_pattern(a, cap, (unsigned)i);
		memset(b, 0, cap);
		struct vdm_operation_future f = vdm_memcpy(v, b + 3, a + 1, n, 0);
		if (dml_wait(&f) != FUTURE_NOTIFIER_POLLER)
			return 11;
		if (f.output.result != VDM_SUCCESS || memcmp(b + 3, a + 1, n))
			return 12;
		memcpy(want, a, cap);
		memmove(want + 5, want, n);
		f = vdm_memmove(v, a + 5, a, n, 0);
		if (dml_wait(&f) != FUTURE_NOTIFIER_POLLER)
			return 13;
		if (f.output.result != VDM_SUCCESS || memcmp(want, a, cap))
			return 14;
		f = vdm_memset(v, b + 1, 0x3c, n, VDM_F_MEM_DURABLE);
		if (dml_wait(&f) != FUTURE_NOTIFIER_POLLER)
			return 15;
		if (f.output.result != VDM_SUCCESS || !dml_all(b + 1, n, 0x3c))
			return 16;
		f = vdm_flush(v, b, n, 0);
		if (dml_wait(&f) != FUTURE_NOTIFIER_POLLER)
			return 17;
		if (f.output.result != VDM_SUCCESS)
			return 18;
	}
	free(a);
	free(b);
	free(want);
	int before = test_failed_checks;
	dml_many(v, test_scale(300));
	return test_failed_checks == before ? 0 : 19;
}

/*
 * Runs one case in a child with MINIASYNC_DSA_EMULATE_KERNEL=kernel and
 * the extra variable `var`=`val` (if any). `usable`: the HARDWARE mover
 * exists and works; otherwise it is NULL and its message (stderr) holds
 * `why`.
 */
static void
run_case(const char *kernel, const char *var, const char *val, int usable,
	const char *why)
{
	int pipefd[2];
	CHECK(pipe(pipefd) == 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(60);
		close(pipefd[0]);
		dup2(pipefd[1], 2);
		setenv("MINIASYNC_DSA_EMULATE_KERNEL", kernel, 1);
		if (var != NULL)
			setenv(var, val, 1);
		struct data_mover_dml *d =
			data_mover_dml_new(DATA_MOVER_DML_HARDWARE);
		if (!usable)
			_exit(d == NULL ? 0 : 2);
		if (d == NULL)
			_exit(3);
		int rc = exercise(data_mover_dml_get_vdm(d));
		data_mover_dml_delete(d);
		_exit(rc);
	}
	close(pipefd[1]);
	char msg[4096];
	size_t len = 0;
	ssize_t r;
	while ((r = read(pipefd[0], msg + len, sizeof(msg) - 1 - len)) > 0)
		len += (size_t)r;
	msg[len] = '\0';
	close(pipefd[0]);
	int status = 0;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	char what[256];
	snprintf(what, sizeof(what), "kernel %s%s%s%s%s", kernel,
		var ? ", " : "", var ? var : "", var ? "=" : "", var ? val : "");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
			(why && !strstr(msg, why))) {
		fprintf(stderr, "%s: exit status %d, stderr: %s\n", what,
			WIFEXITED(status) ? WEXITSTATUS(status) : -1, msg);
		CHECK(!"case failed");
	} else {
		printf("# %s: %s%s", what, usable ? "device used\n" : msg,
			usable || len ? "" : "\n");
	}
}

static void
kernel_5_15(void)
{
	run_case("5.15", NULL, NULL, 1, NULL);
}

static void
kernel_6_1(void)
{
	run_case("6.1", NULL, NULL, 1, NULL);
	run_case("6.1", "MINIASYNC_DSA_EMULATE_MODE", "shared", 1, NULL);
}

static void
kernel_6_9(void)
{
	run_case("6.9", NULL, NULL, 1, NULL);
	run_case("6.9", "MINIASYNC_DSA_EMULATE_RAWIO", "1", 1, NULL);
	run_case("6.9", "MINIASYNC_DSA_EMULATE_MODE", "shared", 1, NULL);
}

static void
kernel_6_16(void)
{
	run_case("6.16", NULL, NULL, 1, NULL);
	run_case("6.16", "MINIASYNC_DSA_EMULATE_VERSION", "0x200", 1, NULL);
	/* an unknown generation: a warning, then the newest */
	run_case("4.0", NULL, NULL, 1, "not one of");
}

static void
no_route_before_6_9(void)
{
	run_case("5.15", "MINIASYNC_DSA_FORCE_WRITE", "1", 0, "EINVAL");
	run_case("6.1", "MINIASYNC_DSA_EMULATE_WRITE", "1", 0, "6.9.1");
	run_case("5.15", "MINIASYNC_DSA_EMULATE_MODE", "shared", 0, "enqcmd");
}

int
main(void)
{
	test_prog = "dml_kernels";
	setenv("MINIASYNC_DSA_EMULATE", "1", 1);
	setenv("MINIASYNC_DSA_EMULATE_WQ_SIZE", "16", 1);
	setenv("MINIASYNC_DSA_EMULATE_STRICT", "1", 1);
	RUN(kernel_5_15);
	RUN(kernel_6_1);
	RUN(kernel_6_9);
	RUN(kernel_6_16);
	RUN(no_route_before_6_9);
	TEST_DONE();
}
