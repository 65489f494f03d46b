/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_nodev.c -- no DSA device and no emulation (MINIASYNC_DSA_SYSFS points
 * at an empty directory): DATA_MOVER_DML_HARDWARE returns NULL and says why
 * on stderr exactly once per process; AUTO and SOFTWARE work on the CPU
 * with FUTURE_NOTIFIER_NONE, whatever the size.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <unistd.h>
#include "dml_common.h"

static enum future_notifier_type
cpu_only(size_t n)
{
	(void)n;
	return FUTURE_NOTIFIER_NONE;
}

/* Runs data_mover_dml_new(HARDWARE) with stderr captured into `buf`. */
static struct data_mover_dml *
hardware_capturing_stderr(char *buf, size_t len)
{
	char path[] = "/tmp/miniasync-dml-nodev-XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(2);
	fflush(stderr);
	dup2(fd, 2);
	struct data_mover_dml *d = data_mover_dml_new(DATA_MOVER_DML_HARDWARE);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return d;
}

static void
hardware_refuses_once(void)
{
	char msg[1024];
	CHECK(hardware_capturing_stderr(msg, sizeof(msg)) == NULL);
	CHECK(strstr(msg, "DATA_MOVER_DML_HARDWARE") != NULL);
	CHECK(strstr(msg, "/nonexistent") != NULL); /* says where it looked */
	CHECK(hardware_capturing_stderr(msg, sizeof(msg)) == NULL);
	CHECK_EQ(strlen(msg), 0); /* only once */
}

static void
auto_and_software_use_the_cpu(void)
{
	struct data_mover_dml *a = data_mover_dml_new(DATA_MOVER_DML_AUTO);
	struct data_mover_dml *s = data_mover_dml_new(DATA_MOVER_DML_SOFTWARE);
	CHECK(a != NULL && s != NULL);
	dml_matrix(data_mover_dml_get_vdm(a), cpu_only);
	dml_many(data_mover_dml_get_vdm(a), test_scale(500));
	dml_untouched_buffers(data_mover_dml_get_vdm(s));
	data_mover_dml_delete(a);
	data_mover_dml_delete(s);
}

int
main(void)
{
	test_prog = "dml_nodev";
	unsetenv("MINIASYNC_DSA_EMULATE");
	setenv("MINIASYNC_DSA_SYSFS", "/nonexistent/miniasync-test/sys", 1);
	setenv("MINIASYNC_DSA_DEV", "/nonexistent/miniasync-test/dev", 1);
	RUN(hardware_refuses_once);
	RUN(auto_and_software_use_the_cpu);
	TEST_DONE();
}
