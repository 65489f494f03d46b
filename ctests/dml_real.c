/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_real.c -- DATA_MOVER_DML_HARDWARE on a real DSA work queue. Skips
 * (exit status 77, automake's SKIP, and "SKIP" on stdout; ctests/run.sh
 * counts it as skipped) when this machine has no usable queue under
 * /sys/bus/dsa and /dev/dsa; the emulation is switched off here.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
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

int
main(void)
{
	test_prog = "dml_real";
	unsetenv("MINIASYNC_DSA_EMULATE");
	unsetenv("MINIASYNC_DSA_SYSFS");
	unsetenv("MINIASYNC_DSA_DEV");
	struct data_mover_dml *dmd = data_mover_dml_new(DATA_MOVER_DML_HARDWARE);
	if (dmd == NULL) {
		printf("dml_real: SKIP (no usable DSA work queue on this machine)\n");
		return 77;
	}
	V = data_mover_dml_get_vdm(dmd);
	RUN(matrix);
	RUN(thousands_in_flight);
	RUN(untouched_buffers);
	data_mover_dml_delete(dmd);
	TEST_DONE();
}
