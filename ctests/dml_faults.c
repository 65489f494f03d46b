/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_faults.c -- page faults as real hosts report them, through the C API
 * on the emulated work queue: once per fault-address mode
 * (MINIASYNC_DSA_EMULATE_FAULT_ADDR=exact, page, masked), each in a child
 * process of its own (the engine reads the emulator's configuration once
 * per process), with MINIASYNC_DSA_EMULATE_FAULT_US set and injected
 * faults: memory never touched, memory that only a read touched (the
 * shared zero page: resident, yet a device write faults), copy-on-write
 * pages after fork(), and an overlapping move whose last fault is in the
 * destination's first page, on the HARDWARE and AUTO paths.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
#include "dml_common.h"

static struct vdm *HW, *AUTO;
static size_t PS;

/* Reads every byte of p (maps the zero page into untouched memory). */
static unsigned
read_all(const unsigned char *p, size_t n)
{
	unsigned s = 0;
	for (size_t i = 0; i < n; i += 64)
		s += ((const volatile unsigned char *)p)[i];
	return s;
}

static void
zero_page_destination(void)
{
	size_t n = 64 * PS;
	unsigned char *dst = dml_untouched(n);
	unsigned char *src = (unsigned char *)malloc(n);
	CHECK(dst != NULL && src != NULL);
	if (dst == NULL || src == NULL)
		return;
	CHECK_EQ(read_all(dst, n), 0);
	dml_pattern(src, n, 5);
	struct vdm_operation_future f = vdm_memcpy(HW, dst + 7, src, n - 7, 0);
	CHECK_EQ(dml_wait(&f), FUTURE_NOTIFIER_POLLER);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(memcmp(dst + 7, src, n - 7) == 0);
	munmap(dst, n);
	free(src);
}

/* A descending move whose lowest destination page is the zero page. */
static void
overlapping_move_into_the_zero_page(struct vdm *v)
{
	size_t n = 8 * PS;
	unsigned char *m = dml_untouched(n);
	unsigned char *want = (unsigned char *)malloc(n);
	CHECK(m != NULL && want != NULL);
	if (m == NULL || want == NULL)
		return;
	dml_pattern(m, PS, 1);
	dml_pattern(m + 2 * PS, 4 * PS, 2);
	CHECK_EQ(read_all(m + PS, PS), 0);
	memcpy(want, m, n);
	memmove(want + PS + 200, want + PS - 100, 4 * PS + 100);
	struct vdm_operation_future f =
		vdm_memmove(v, m + PS + 200, m + PS - 100, 4 * PS + 100, 0);
	dml_wait(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(memcmp(m, want, n) == 0);
	munmap(m, n);
	free(want);
}

static void
overlapping_move_hardware(void)
{
	overlapping_move_into_the_zero_page(HW);
}

static void
overlapping_move_auto(void)
{
	overlapping_move_into_the_zero_page(AUTO);
}

/* Pages shared copy-on-write with a child fault on a device write. */
static void
copy_on_write_after_fork(void)
{
	size_t n = 16 * PS;
	unsigned char *dst = dml_untouched(n);
	unsigned char *src = (unsigned char *)malloc(n);
	int fds[2];
	CHECK(dst != NULL && src != NULL && pipe(fds) == 0);
	if (dst == NULL || src == NULL)
		return;
	memset(dst, 1, n);
	dml_pattern(src, n, 8);
	pid_t child = fork();
	if (child == 0) {
		char c;
		(void)!read(fds[0], &c, 1);
		_exit(0);
	}
	CHECK(child > 0);
	struct vdm_operation_future f = vdm_memcpy(HW, dst, src, n, 0);
	dml_wait(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(memcmp(dst, src, n) == 0);
	(void)!write(fds[1], "x", 1);
	if (child > 0)
		waitpid(child, NULL, 0);
	close(fds[0]);
	close(fds[1]);
	munmap(dst, n);
	free(src);
}

/* Memory never touched, both paths; 4 MiB of first-touch memory. */
static void
untouched_memory(void)
{
	dml_untouched_buffers(HW);
	dml_untouched_buffers(AUTO);
	size_t n = 4 << 20;
	unsigned char *dst = dml_untouched(n);
	unsigned char *src = (unsigned char *)malloc(n);
	CHECK(dst != NULL && src != NULL);
	if (dst == NULL || src == NULL)
		return;
	dml_pattern(src, n, 6);
	struct vdm_operation_future f = vdm_memcpy(HW, dst, src, n, 0);
	dml_wait(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(memcmp(dst, src, n) == 0);
	munmap(dst, n);
	free(src);
}

static void
matrix(void)
{
	dml_matrix(HW, NULL);
}

/* One mode, in this (child) process; returns the exit status. */
static int
run_mode(const char *mode)
{
	setenv("MINIASYNC_DSA_EMULATE", "1", 1);
	setenv("MINIASYNC_DSA_EMULATE_FAULT_ADDR", mode, 1);
	setenv("MINIASYNC_DSA_EMULATE_FAULT_US", "2", 1);
	setenv("MINIASYNC_DSA_EMULATE_FAULT_RATE", "0.2", 1);
	setenv("MINIASYNC_DSA_EMULATE_MAX_TRANSFER", "65536", 1);
	setenv("MINIASYNC_DSA_EMULATE_STRICT", "1", 1);
	setenv("MINIASYNC_DSA_THRESHOLD", "0", 1);
	struct data_mover_dml *hw = data_mover_dml_new(DATA_MOVER_DML_HARDWARE);
	struct data_mover_dml *au = data_mover_dml_new(DATA_MOVER_DML_AUTO);
	CHECK(hw != NULL && au != NULL);
	if (hw == NULL || au == NULL)
		return 1;
	HW = data_mover_dml_get_vdm(hw);
	AUTO = data_mover_dml_get_vdm(au);
	printf("# FAULT_ADDR=%s\n", mode);
	RUN(zero_page_destination);
	RUN(overlapping_move_hardware);
	RUN(overlapping_move_auto);
	RUN(copy_on_write_after_fork);
	RUN(untouched_memory);
	if (strcmp(mode, "masked") == 0)
		RUN(matrix);
	data_mover_dml_delete(au);
	data_mover_dml_delete(hw);
	fflush(stdout);
	return test_cases_failed ? 1 : 0;
}

static const char *mode_name;

static void
mode(void)
{
	fflush(stdout);
	pid_t child = fork();
	if (child == 0)
		_exit(run_mode(mode_name));
	CHECK(child > 0);
	int st = 0;
	CHECK(child > 0 && waitpid(child, &st, 0) == child);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int
main(void)
{
	test_prog = "dml_faults";
	long ps = sysconf(_SC_PAGESIZE);
	PS = ps > 0 ? (size_t)ps : 4096;
	static const char *const modes[] = { "exact", "page", "masked" };
	for (size_t i = 0; i < 3; i++) {
		mode_name = modes[i];
		RUN(mode);
	}
	TEST_DONE();
}
