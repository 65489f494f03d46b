/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_oom.c -- the out-of-memory contract (ABI.md 0.4, 5.8, decision 19)
 * with a small bound: MINIASYNC_MAX_OPS=64 is set before the first mover
 * is created (it is read once per process). Un-polled futures are created
 * until one comes back complete with VDM_ERROR_OUT_OF_MEMORY, which must
 * happen at exactly 64 outstanding; after any outstanding op completes
 * (oldest or not) the next vdm_* call succeeds again. Both movers, each
 * mover with its own bound, OOM futures in the runtime.
 */
#define _GNU_SOURCE
#include <libminiasync.h>
#include <dlfcn.h>
#include <stdint.h>
#include <unistd.h>
#include "test.h"

#define BOUND 64

static unsigned char bufs[BOUND + 8][32];
static struct vdm_operation_future futs[BOUND + 8];

/* Creates memsets until one is OOM; returns how many succeeded. */
static int
fill_until_oom(struct vdm *vdm, struct vdm_operation_future *oom)
{
	int n = 0;
	for (;;) {
		struct vdm_operation_future f =
			vdm_memset(vdm, bufs[n], n + 1, 32, 0);
		if (FUTURE_STATE(&f) == FUTURE_STATE_COMPLETE) {
			*oom = f;
			return n;
		}
		futs[n++] = f;
		if (n == BOUND + 8)
			return n; /* no bound at all */
	}
}

static void
check_oom_future(struct vdm_operation_future *f, struct vdm *vdm)
{
	CHECK_EQ(FUTURE_STATE(f), FUTURE_STATE_COMPLETE);
	CHECK_EQ(f->output.result, VDM_ERROR_OUT_OF_MEMORY);
	CHECK_EQ(f->output.type, VDM_OPERATION_MEMSET);
	CHECK(f->data.data == NULL);
	CHECK(f->base.task == NULL);
	CHECK(f->base.has_property == vdm->has_property);
	CHECK_EQ(f->base.context.data_size, sizeof(struct vdm_operation_data));
	/* polling it is harmless: it is complete */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(f), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(f->output.result, VDM_ERROR_OUT_OF_MEMORY);
}

static void
oom_contract_on(struct vdm *vdm)
{
	memset(bufs, 0, sizeof(bufs));
	struct vdm_operation_future oom;
	int n = fill_until_oom(vdm, &oom);
	CHECK_EQ(n, BOUND);
	if (n != BOUND)
		return;
	check_oom_future(&oom, vdm);
	/* still exhausted */
	struct vdm_operation_future again = vdm_memcpy(vdm, bufs[0], bufs[1],
		1, 0);
	CHECK_EQ(again.output.result, VDM_ERROR_OUT_OF_MEMORY);
	CHECK_EQ(again.output.type, VDM_OPERATION_MEMCPY);
	CHECK(all_bytes(bufs[0], 32, 0)); /* nothing ran yet */

	/* the oldest completes: the next call succeeds on its first poll */
	FUTURE_BUSY_POLL(&futs[0]);
	CHECK_EQ(futs[0].output.result, VDM_SUCCESS);
	CHECK(all_bytes(bufs[0], 32, 1));
	futs[0] = vdm_memset(vdm, bufs[BOUND], 0x77, 32, 0);
	CHECK_EQ(FUTURE_STATE(&futs[0]), FUTURE_STATE_IDLE);
	CHECK(futs[0].data.data != NULL);
	struct vdm_operation_future full = vdm_memset(vdm, bufs[0], 0, 1, 0);
	CHECK_EQ(full.output.result, VDM_ERROR_OUT_OF_MEMORY);

	/* one in the middle completes (out of order): room for one more */
	FUTURE_BUSY_POLL(&futs[37]);
	CHECK(all_bytes(bufs[37], 32, 38));
	futs[37] = vdm_memset(vdm, bufs[BOUND + 1], 0x78, 32, 0);
	CHECK_EQ(FUTURE_STATE(&futs[37]), FUTURE_STATE_IDLE);
	full = vdm_memmove(vdm, bufs[0], bufs[1], 1, 0);
	CHECK_EQ(full.output.result, VDM_ERROR_OUT_OF_MEMORY);
	CHECK_EQ(full.output.type, VDM_OPERATION_MEMMOVE);

	/* the newest completes */
	FUTURE_BUSY_POLL(&futs[BOUND - 1]);
	futs[BOUND - 1] = vdm_flush(vdm, bufs[2], 32, 0);
	CHECK_EQ(FUTURE_STATE(&futs[BOUND - 1]), FUTURE_STATE_IDLE);
	full = vdm_flush(vdm, bufs[0], 1, 0);
	CHECK_EQ(full.output.result, VDM_ERROR_OUT_OF_MEMORY);
	CHECK_EQ(full.output.output.flush.unused, 0);

	/* complete everything, in reverse */
	for (int i = BOUND - 1; i >= 0; i--) {
		FUTURE_BUSY_POLL(&futs[i]);
		CHECK_EQ(futs[i].output.result, VDM_SUCCESS);
	}
	CHECK(all_bytes(bufs[BOUND], 32, 0x77));
	CHECK(all_bytes(bufs[BOUND + 1], 32, 0x78));
	for (int i = 1; i < BOUND - 1; i++)
		if (i != 37)
			CHECK(all_bytes(bufs[i], 32, (unsigned char)(i + 1)));

	/* the whole bound is usable again, twice over */
	for (int round = 0; round < 2; round++) {
		n = fill_until_oom(vdm, &oom);
		CHECK_EQ(n, BOUND);
		check_oom_future(&oom, vdm);
		for (int i = 0; i < n; i++)
			FUTURE_BUSY_POLL(&futs[i]);
	}
}

static void
sync_bound(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	CHECK(dms != NULL);
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	oom_contract_on(vdm);
	/* a sync OOM future has no property function */
	struct vdm_operation_future oom;
	int n = fill_until_oom(vdm, &oom);
	CHECK_EQ(n, BOUND);
	CHECK(oom.base.has_property == NULL);
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&oom),
		FUTURE_PROPERTY_ASYNC), 0);
	for (int i = 0; i < n; i++)
		FUTURE_BUSY_POLL(&futs[i]);
	data_mover_sync_delete(dms);
}

static void
threads_bound(void)
{
	enum future_notifier_type kinds[] = { FUTURE_NOTIFIER_WAKER,
		FUTURE_NOTIFIER_POLLER };
	for (int k = 0; k < 2; k++) {
		struct data_mover_threads *dmt =
			data_mover_threads_new(2, 16, kinds[k]);
		CHECK(dmt != NULL);
		if (dmt == NULL)
			return;
		struct vdm *vdm = data_mover_threads_get_vdm(dmt);
		oom_contract_on(vdm);
		/* a threads OOM future keeps the mover's property */
		struct vdm_operation_future oom;
		int n = fill_until_oom(vdm, &oom);
		CHECK_EQ(n, BOUND);
		CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&oom),
			FUTURE_PROPERTY_ASYNC), 1);
		struct runtime *rt = runtime_new();
		runtime_wait(rt, FUTURE_AS_RUNNABLE(&futs[10]));
		CHECK(all_bytes(bufs[10], 32, 11));
		struct vdm_operation_future ok =
			vdm_memset(vdm, bufs[BOUND], 1, 32, 0);
		CHECK_EQ(FUTURE_STATE(&ok), FUTURE_STATE_IDLE);
		futs[10] = ok;
		struct future *all[BOUND];
		for (int i = 0; i < n; i++)
			all[i] = FUTURE_AS_RUNNABLE(&futs[i]);
		runtime_wait_multiple(rt, all, (size_t)n);
		for (int i = 0; i < n; i++)
			CHECK_EQ(futs[i].output.result, VDM_SUCCESS);
		runtime_delete(rt);
		data_mover_threads_delete(dmt);
	}
}

/* Started, still running ops hold their records too. */
static int gate_open, gate_entered;

static void *
gated_memcpy(void *dst, const void *src, size_t n, unsigned flags)
{
	(void)flags;
	__atomic_add_fetch(&gate_entered, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&gate_open, __ATOMIC_ACQUIRE))
		usleep(50);
	return memcpy(dst, src, n);
}

static void
threads_running_ops_count(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 128, FUTURE_NOTIFIER_NONE);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	data_mover_threads_set_memcpy_fn(dmt, gated_memcpy);
	static unsigned char src[32];
	memset(src, 0x3D, sizeof(src));
	memset(bufs, 0, sizeof(bufs));
	for (int i = 0; i < BOUND; i++) {
		futs[i] = vdm_memcpy(vdm, bufs[i], src, 32, 0);
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&futs[i]), NULL),
			FUTURE_STATE_RUNNING);
	}
	struct vdm_operation_future oom = vdm_memset(vdm, bufs[0], 0, 1, 0);
	CHECK_EQ(oom.output.result, VDM_ERROR_OUT_OF_MEMORY);
	__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
	/* finished by the worker, but a record is released only by the poll
	 * that sees completion (op_delete) */
	while (__atomic_load_n(&gate_entered, __ATOMIC_SEQ_CST) < BOUND)
		usleep(100);
	usleep(2000);
	oom = vdm_memset(vdm, bufs[0], 0, 1, 0);
	CHECK_EQ(oom.output.result, VDM_ERROR_OUT_OF_MEMORY);
	FUTURE_BUSY_POLL(&futs[20]);
	struct vdm_operation_future again = vdm_memset(vdm, bufs[BOUND], 6,
		32, 0);
	CHECK_EQ(FUTURE_STATE(&again), FUTURE_STATE_IDLE);
	FUTURE_BUSY_POLL(&again);
	CHECK(all_bytes(bufs[BOUND], 32, 6));
	for (int i = 0; i < BOUND; i++) {
		FUTURE_BUSY_POLL(&futs[i]);
		CHECK(all_bytes(bufs[i], 32, 0x3D));
	}
	data_mover_threads_set_memcpy_fn(dmt, NULL);
	data_mover_threads_delete(dmt);
}

static void
bound_is_per_mover(void)
{
	struct data_mover_sync *a = data_mover_sync_new();
	struct data_mover_sync *b = data_mover_sync_new();
	struct vdm_operation_future held[BOUND];
	unsigned char buf[BOUND];
	for (int i = 0; i < BOUND; i++) {
		held[i] = vdm_memset(data_mover_sync_get_vdm(a), &buf[i], i, 1,
			0);
		CHECK_EQ(FUTURE_STATE(&held[i]), FUTURE_STATE_IDLE);
	}
	struct vdm_operation_future x =
		vdm_memset(data_mover_sync_get_vdm(a), buf, 0, 1, 0);
	CHECK_EQ(x.output.result, VDM_ERROR_OUT_OF_MEMORY);
	/* b is untouched by a's exhaustion */
	struct vdm_operation_future oom;
	memset(bufs, 0, sizeof(bufs));
	CHECK_EQ(fill_until_oom(data_mover_sync_get_vdm(b), &oom), BOUND);
	for (int i = 0; i < BOUND; i++)
		FUTURE_BUSY_POLL(&futs[i]);
	for (int i = 0; i < BOUND; i++)
		FUTURE_BUSY_POLL(&held[i]);
	for (int i = 0; i < BOUND; i++)
		CHECK_EQ(buf[i], (unsigned char)i);
	data_mover_sync_delete(a);
	data_mover_sync_delete(b);
}

/* The bound is read once: changing the variable later has no effect. */
static void
bound_read_once(void)
{
	setenv("MINIASYNC_MAX_OPS", "4", 1);
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm_operation_future oom;
	CHECK_EQ(fill_until_oom(data_mover_sync_get_vdm(dms), &oom), BOUND);
	for (int i = 0; i < BOUND; i++)
		FUTURE_BUSY_POLL(&futs[i]);
	data_mover_sync_delete(dms);
	setenv("MINIASYNC_MAX_OPS", "64", 1);
}

/* OOM futures (NULL or real property functions) in runtime_wait_multiple */
static void
oom_futures_in_runtime(void)
{
	struct runtime *rt = runtime_new();
	struct data_mover_sync *dms = data_mover_sync_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 8, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	static struct vdm_operation_future hs[BOUND], ht[BOUND];
	static unsigned char b[2][BOUND];
	for (int i = 0; i < BOUND; i++) {
		hs[i] = vdm_memset(data_mover_sync_get_vdm(dms), &b[0][i], 1, 1,
			0);
		ht[i] = vdm_memset(data_mover_threads_get_vdm(dmt), &b[1][i], 2,
			1, 0);
	}
	struct vdm_operation_future os = vdm_memset(
		data_mover_sync_get_vdm(dms), b[0], 0, 1, 0);
	struct vdm_operation_future os2 = vdm_memset(
		data_mover_sync_get_vdm(dms), b[0], 0, 1, 0);
	struct vdm_operation_future ot = vdm_memset(
		data_mover_threads_get_vdm(dmt), b[1], 0, 1, 0);
	CHECK_EQ(os.output.result, VDM_ERROR_OUT_OF_MEMORY);
	CHECK_EQ(os2.output.result, VDM_ERROR_OUT_OF_MEMORY);
	CHECK_EQ(ot.output.result, VDM_ERROR_OUT_OF_MEMORY);
	struct future *mix[] = { FUTURE_AS_RUNNABLE(&os),
		FUTURE_AS_RUNNABLE(&hs[0]), FUTURE_AS_RUNNABLE(&os2),
		FUTURE_AS_RUNNABLE(&ot), FUTURE_AS_RUNNABLE(&ht[0]) };
	runtime_wait_multiple(rt, mix, 5);
	CHECK_EQ(FUTURE_STATE(&hs[0]), FUTURE_STATE_COMPLETE);
	CHECK_EQ(FUTURE_STATE(&ht[0]), FUTURE_STATE_COMPLETE);
	CHECK_EQ(b[0][0], 1);
	CHECK_EQ(b[1][0], 2);
	struct future *all[2 * BOUND];
	for (int i = 0; i < BOUND; i++) {
		all[2 * i] = FUTURE_AS_RUNNABLE(&hs[i]);
		all[2 * i + 1] = FUTURE_AS_RUNNABLE(&ht[i]);
	}
	runtime_wait_multiple(rt, all, 2 * BOUND);
	CHECK(all_bytes(b[0], BOUND, 1));
	CHECK(all_bytes(b[1], BOUND, 2));
	data_mover_threads_delete(dmt);
	data_mover_sync_delete(dms);
	runtime_delete(rt);
}

/* The exported vdm_memset reports OOM the same way. */
typedef struct vdm_operation_future (*memset_sym_t)(struct vdm *, void *,
	int, size_t, uint64_t);

static void
exported_symbol_oom(void)
{
	memset_sym_t sym = (memset_sym_t)dlsym(RTLD_DEFAULT, "vdm_memset");
	CHECK(sym != NULL);
	if (sym == NULL)
		return;
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	struct vdm_operation_future oom;
	CHECK_EQ(fill_until_oom(vdm, &oom), BOUND);
	unsigned char c = 0;
	struct vdm_operation_future f = sym(vdm, &c, 1, 1, 0);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.output.result, VDM_ERROR_OUT_OF_MEMORY);
	CHECK(f.data.data == NULL);
	FUTURE_BUSY_POLL(&futs[5]);
	f = sym(vdm, &c, 9, 1, 0);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_IDLE);
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(c, 9);
	for (int i = 0; i < BOUND; i++)
		FUTURE_BUSY_POLL(&futs[i]);
	data_mover_sync_delete(dms);
}

int
main(void)
{
	/* before the first mover: the bound is read once per process */
	setenv("MINIASYNC_MAX_OPS", "64", 1);
	test_prog = "test_oom";
	alarm(300);
	RUN(sync_bound);
	RUN(threads_bound);
	RUN(threads_running_ops_count);
	RUN(bound_is_per_mover);
	RUN(bound_read_once);
	RUN(oom_futures_in_runtime);
	RUN(exported_symbol_oom);
	TEST_DONE();
}
