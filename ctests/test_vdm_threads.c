/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_vdm_threads.c -- the threads mover: every operation type with its
 * output, the ASYNC property, the three notifier types (WAKER: exactly one
 * wake per op, after completion is visible; POLLER: a monitor word that
 * turns non-zero and stays readable until the op is deleted; NONE), futures
 * moved in memory while their op runs, edits of the operation before the
 * first poll, the ring-full retry (IDLE, then re-submitted), and the
 * replaceable memcpy/memmove/memset functions with their flags.
 */
#include <libminiasync.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include "test.h"

/* Waits (up to ~20 s) until *p >= v. */
static void
fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 7 + i * 13 + (i >> 9));
}

/* ---- a gated memcpy: workers block in it until the gate opens ---- */

static int gate_open;
static int gate_entered;
static int gate_calls;

static void
gate_reset(void)
{
	__atomic_store_n(&gate_open, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&gate_entered, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&gate_calls, 0, __ATOMIC_SEQ_CST);
}

static void *
gated_memcpy(void *dst, const void *src, size_t n, unsigned flags)
{
	(void)flags;
	__atomic_add_fetch(&gate_entered, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&gate_open, __ATOMIC_ACQUIRE))
		short_sleep();
	memcpy(dst, src, n);
	__atomic_add_fetch(&gate_calls, 1, __ATOMIC_SEQ_CST);
	return dst;
}

/* ---- tests ---- */

static void
mover_struct_vdm(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 16, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	CHECK((void *)vdm == (void *)dmt);
	CHECK(vdm->op_new && vdm->op_delete && vdm->op_start && vdm->op_check);
	CHECK_EQ(vdm->capabilities, 0);
	CHECK(vdm->has_property != NULL);
	CHECK_EQ(vdm_is_supported(vdm, 0), 1);
	CHECK_EQ(vdm_is_supported(vdm, VDM_F_MEM_DURABLE), 0);
	CHECK_EQ(vdm_is_supported(vdm, VDM_F_NO_CACHE_HINT), 0);

	char s[8] = "prop", d[8];
	struct vdm_operation_future f = vdm_memcpy(vdm, d, s, 8, 0);
	CHECK(f.base.task == vdm_operation_impl);
	CHECK(f.base.has_property == vdm->has_property);
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), 1);
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f),
		(enum future_property)1), 0);
	FUTURE_BUSY_POLL(&f);
	/* still ASYNC after completion */
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), 1);
	CHECK(memcmp(s, d, 5) == 0);
	data_mover_threads_delete(dmt);
}

static void
all_operations(void)
{
	struct runtime *rt = runtime_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(3, 32, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL && rt != NULL);
	if (dmt == NULL || rt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	size_t n = 1 << 20;
	unsigned char *src = malloc(n), *dst = malloc(n + 64);
	CHECK(src && dst);
	if (!src || !dst)
		return;
	fill_pattern(src, n, 1);
	memset(dst, 0, n + 64);

	struct vdm_operation_future f = vdm_memcpy(vdm, dst, src, n, 0);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_IDLE);
	CHECK(f.data.data != NULL);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.output.type, VDM_OPERATION_MEMCPY);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(f.output.output.memcpy.dest == dst);
	CHECK(memcmp(dst, src, n) == 0);

	f = vdm_memmove(vdm, dst + 64, dst, n, 0);
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(f.output.type, VDM_OPERATION_MEMMOVE);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(f.output.output.memmove.dest == dst + 64);
	CHECK(memcmp(dst + 64, src, n) == 0);

	f = vdm_memset(vdm, dst + 3, 0x2e5, 1000, 0);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));
	CHECK_EQ(f.output.type, VDM_OPERATION_MEMSET);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(f.output.output.memset.str == dst + 3);
	CHECK(all_bytes(dst + 3, 1000, 0xe5));
	CHECK(memcmp(dst + 1003, src + 1003 - 64, 100) == 0);

	f = vdm_flush(vdm, dst, n, 0);
	CHECK_EQ(f.output.output.flush.unused, 0);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));
	CHECK_EQ(f.output.type, VDM_OPERATION_FLUSH);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK_EQ(f.output.output.flush.unused, 0);
	CHECK(all_bytes(dst + 3, 1000, 0xe5));

	f = vdm_memcpy(vdm, dst, src, 4096, VDM_F_MEM_DURABLE);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(memcmp(dst, src, 4096) == 0);

	free(src);
	free(dst);
	data_mover_threads_delete(dmt);
	runtime_delete(rt);
}

/* ---- WAKER ---- */

struct wake_ctx {
	int calls;
	int flag;
	int state_in_wake;
	struct vdm *vdm;
	void *handle;
	struct vdm_operation op;
};

static void
ctx_wake(void *data)
{
	struct wake_ctx *c = data;
	/* the op must already report completion when the waker runs */
	c->state_in_wake = c->vdm->op_check(c->handle, &c->op);
	__atomic_add_fetch(&c->calls, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&c->flag, 1, __ATOMIC_RELEASE);
}

static void
notifier_waker_one_wake_after_completion(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 64, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	enum { N = 48 };
	static unsigned char src[N][256], dst[N][256];
	static struct vdm_operation_future f[N];
	static struct wake_ctx ctx[N];
	size_t rounds = test_scale(20);
	for (size_t r = 0; r < rounds; r++) {
		for (int i = 0; i < N; i++) {
			fill_pattern(src[i], 256, (unsigned)(i + r));
			memset(dst[i], 0, 256);
			f[i] = vdm_memcpy(vdm, dst[i], src[i], 256, 0);
			memset(&ctx[i], 0, sizeof(ctx[i]));
			ctx[i].vdm = vdm;
			ctx[i].handle = f[i].data.data;
			ctx[i].op = f[i].data.operation;
			ctx[i].state_in_wake = -1;
		}
		int used_waker = 0;
		for (int i = 0; i < N; i++) {
			struct future_notifier n;
			memset(&n, 0, sizeof(n));
			n.waker.data = &ctx[i];
			n.waker.wake = ctx_wake;
			n.notifier_used = FUTURE_NOTIFIER_POLLER; /* overwritten */
			enum future_state s =
				future_poll(FUTURE_AS_RUNNABLE(&f[i]), &n);
			CHECK(s == FUTURE_STATE_RUNNING ||
				s == FUTURE_STATE_COMPLETE);
			CHECK_EQ(n.notifier_used, FUTURE_NOTIFIER_WAKER);
			if (s == FUTURE_STATE_RUNNING)
				used_waker++;
		}
		for (int i = 0; i < N; i++) {
			if (FUTURE_STATE(&f[i]) != FUTURE_STATE_COMPLETE) {
				/* no poll until the wake: then one poll ends it */
				CHECK(wait_at_least(&ctx[i].flag, 1));
				CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[i]),
					NULL), FUTURE_STATE_COMPLETE);
			}
			CHECK_EQ(__atomic_load_n(&ctx[i].calls,
				__ATOMIC_SEQ_CST), 1);
			CHECK_EQ(ctx[i].state_in_wake, FUTURE_STATE_COMPLETE);
			CHECK_EQ(f[i].output.result, VDM_SUCCESS);
			CHECK(memcmp(src[i], dst[i], 256) == 0);
		}
		(void)used_waker;
	}
	data_mover_threads_delete(dmt);
}

static int count_only_calls;

static void
count_only_wake(void *data)
{
	(void)data;
	__atomic_add_fetch(&count_only_calls, 1, __ATOMIC_SEQ_CST);
}

/* The waker fires once per op also when an op is polled many times. */
static void
waker_count_with_repeated_polls(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	enum { N = 16 };
	unsigned char src[N][64], dst[N][64];
	struct vdm_operation_future f[N];
	__atomic_store_n(&count_only_calls, 0, __ATOMIC_SEQ_CST);
	for (int i = 0; i < N; i++) {
		fill_pattern(src[i], 64, (unsigned)i);
		memset(dst[i], 0, 64);
		f[i] = vdm_memcpy(vdm, dst[i], src[i], 64, 0);
	}
	/*
	 * Poll all of them round-robin with the same waker until all are
	 * complete; with 4 slots some start only on a later poll.
	 */
	int done = 0;
	while (done < N) {
		done = 0;
		for (int i = 0; i < N; i++) {
			struct future_notifier n;
			memset(&n, 0, sizeof(n));
			n.waker.data = NULL;
			n.waker.wake = count_only_wake;
			if (future_poll(FUTURE_AS_RUNNABLE(&f[i]), &n) ==
				FUTURE_STATE_COMPLETE)
				done++;
		}
	}
	CHECK_EQ(__atomic_load_n(&count_only_calls, __ATOMIC_SEQ_CST), N);
	for (int i = 0; i < N; i++)
		CHECK(memcmp(src[i], dst[i], 64) == 0);
	data_mover_threads_delete(dmt);
}

/* ---- POLLER ---- */

static int poller_wake_calls;

static void
poller_wake(void *data)
{
	(void)data;
	__atomic_add_fetch(&poller_wake_calls, 1, __ATOMIC_SEQ_CST);
}

static void
notifier_poller(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 8, FUTURE_NOTIFIER_POLLER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	unsigned char src[512], dst[512];
	fill_pattern(src, sizeof(src), 3);
	memset(dst, 0, sizeof(dst));
	poller_wake_calls = 0;

	/* a gated op: the monitor word is 0 while it runs */
	gate_reset();
	data_mover_threads_set_memcpy_fn(dmt, gated_memcpy);
	struct vdm_operation_future f = vdm_memcpy(vdm, dst, src, 512, 0);
	struct future_notifier n;
	memset(&n, 0, sizeof(n));
	n.waker.wake = poller_wake;
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), &n),
		FUTURE_STATE_RUNNING);
	CHECK_EQ(n.notifier_used, FUTURE_NOTIFIER_POLLER);
	uint64_t *mon = n.poller.ptr_to_monitor;
	CHECK(mon != NULL);
	if (mon == NULL) {
		__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
		FUTURE_BUSY_POLL(&f);
		data_mover_threads_delete(dmt);
		return;
	}
	CHECK(wait_at_least(&gate_entered, 1));
	CHECK_EQ(__atomic_load_n(mon, __ATOMIC_ACQUIRE), 0);
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_RUNNING);
	__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
	long spins = 0;
	while (__atomic_load_n(mon, __ATOMIC_ACQUIRE) == 0 && spins < 4000000) {
		short_sleep();
		spins++;
	}
	CHECK(__atomic_load_n(mon, __ATOMIC_ACQUIRE) != 0);
	/* still readable (and still set) until the op is deleted */
	short_sleep();
	CHECK(__atomic_load_n(mon, __ATOMIC_ACQUIRE) != 0);
	/* the word says complete: the next poll finishes the future */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK(memcmp(src, dst, 512) == 0);
	CHECK(f.output.output.memcpy.dest == dst);
	data_mover_threads_set_memcpy_fn(dmt, NULL);

	/* ungated: watch the word, then one poll must complete */
	size_t rounds = test_scale(300);
	for (size_t r = 0; r < rounds; r++) {
		dst[0] = 0;
		src[0] = (unsigned char)(r | 1);
		f = vdm_memcpy(vdm, dst, src, 64, 0);
		memset(&n, 0, sizeof(n));
		n.waker.wake = poller_wake;
		enum future_state s = future_poll(FUTURE_AS_RUNNABLE(&f), &n);
		if (s == FUTURE_STATE_COMPLETE)
			continue;
		CHECK_EQ(s, FUTURE_STATE_RUNNING);
		mon = n.poller.ptr_to_monitor;
		CHECK(mon != NULL);
		if (mon == NULL)
			break;
		while (__atomic_load_n(mon, __ATOMIC_ACQUIRE) == 0)
			__FUTURE_WAIT();
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
			FUTURE_STATE_COMPLETE);
		CHECK_EQ(dst[0], src[0]);
	}
	CHECK_EQ(__atomic_load_n(&poller_wake_calls, __ATOMIC_SEQ_CST), 0);

	/* the runtime also finishes POLLER futures */
	struct runtime *rt = runtime_new();
	f = vdm_memset(vdm, dst, 9, 100, 0);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));
	CHECK(all_bytes(dst, 100, 9));
	runtime_delete(rt);
	data_mover_threads_delete(dmt);
}

/* ---- NONE ---- */

static void
notifier_none(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 8, FUTURE_NOTIFIER_NONE);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	unsigned char src[4096], dst[4096];
	poller_wake_calls = 0;
	size_t rounds = test_scale(100);
	for (size_t r = 0; r < rounds; r++) {
		fill_pattern(src, sizeof(src), (unsigned)r);
		memset(dst, 0, sizeof(dst));
		struct vdm_operation_future f =
			vdm_memcpy(vdm, dst, src, sizeof(src), 0);
		struct future_notifier n;
		memset(&n, 0, sizeof(n));
		n.waker.wake = poller_wake;
		n.notifier_used = FUTURE_NOTIFIER_WAKER;
		future_poll(FUTURE_AS_RUNNABLE(&f), &n);
		CHECK_EQ(n.notifier_used, FUTURE_NOTIFIER_NONE);
		FUTURE_BUSY_POLL(&f);
		CHECK(memcmp(src, dst, sizeof(src)) == 0);
	}
	CHECK_EQ(__atomic_load_n(&poller_wake_calls, __ATOMIC_SEQ_CST), 0);

	struct runtime *rt = runtime_new();
	struct vdm_operation_future g = vdm_memset(vdm, dst, 0x42, 999, 0);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&g));
	CHECK(all_bytes(dst, 999, 0x42));
	runtime_delete(rt);
	data_mover_threads_delete(dmt);
}

/*
 * A future may move while its op runs: the worker never writes into the
 * future; the output lands in the copy that is polled.
 */
static void
future_moved_while_running(void)
{
	enum future_notifier_type kinds[] = { FUTURE_NOTIFIER_WAKER,
		FUTURE_NOTIFIER_POLLER, FUTURE_NOTIFIER_NONE };
	for (int k = 0; k < 3; k++) {
		struct data_mover_threads *dmt =
			data_mover_threads_new(1, 4, kinds[k]);
		CHECK(dmt != NULL);
		if (dmt == NULL)
			return;
		struct vdm *vdm = data_mover_threads_get_vdm(dmt);
		gate_reset();
		data_mover_threads_set_memcpy_fn(dmt, gated_memcpy);
		unsigned char src[1000], dst[1000];
		fill_pattern(src, sizeof(src), (unsigned)k + 40);
		memset(dst, 0, sizeof(dst));

		struct vdm_operation_future *a = malloc(sizeof(*a));
		struct vdm_operation_future *b = malloc(sizeof(*b));
		CHECK(a && b);
		if (!a || !b)
			return;
		*a = vdm_memcpy(vdm, dst, src, sizeof(src), 0);
		struct wake_ctx ctx;
		memset(&ctx, 0, sizeof(ctx));
		ctx.vdm = vdm;
		ctx.handle = a->data.data;
		ctx.op = a->data.operation;
		struct future_notifier n;
		memset(&n, 0, sizeof(n));
		n.waker.data = &ctx;
		n.waker.wake = ctx_wake;
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(a), &n),
			FUTURE_STATE_RUNNING);
		CHECK(wait_at_least(&gate_entered, 1));

		memcpy(b, a, sizeof(*a));
		memset(a, 0xCD, sizeof(*a));
		__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
		FUTURE_BUSY_POLL(b);
		CHECK_EQ(b->output.result, VDM_SUCCESS);
		CHECK(b->output.output.memcpy.dest == dst);
		CHECK(memcmp(src, dst, sizeof(src)) == 0);
		/* nothing was written into the old location */
		CHECK(all_bytes((unsigned char *)a, sizeof(*a), 0xCD));
		if (kinds[k] == FUTURE_NOTIFIER_WAKER)
			CHECK_EQ(__atomic_load_n(&ctx.calls,
				__ATOMIC_SEQ_CST), 1);
		else
			CHECK_EQ(__atomic_load_n(&ctx.calls,
				__ATOMIC_SEQ_CST), 0);

		/* moved between creation and the first poll, then again */
		gate_reset();
		memset(dst, 0, sizeof(dst));
		*a = vdm_memcpy(vdm, dst, src, 500, 0);
		memcpy(b, a, sizeof(*a));
		memset(a, 0xAB, sizeof(*a));
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(b), NULL),
			FUTURE_STATE_RUNNING);
		memcpy(a, b, sizeof(*a));
		memset(b, 0xAB, sizeof(*b));
		__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
		FUTURE_BUSY_POLL(a);
		CHECK(memcmp(src, dst, 500) == 0);
		CHECK(all_bytes(dst + 500, 500, 0));
		CHECK(all_bytes((unsigned char *)b, sizeof(*b), 0xAB));
		free(a);
		free(b);
		data_mover_threads_delete(dmt);
	}
}

/* Edits of the operation after vdm_memcpy() and before the first poll. */
static void
edit_operation_before_first_poll(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 8, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	unsigned char s1[256], s2[256], d1[256], d2[256];
	fill_pattern(s1, 256, 1);
	fill_pattern(s2, 256, 2);
	memset(d1, 0, 256);
	memset(d2, 0, 256);

	struct vdm_operation_future f = vdm_memcpy(vdm, d1, s1, 16, 0);
	f.data.operation.data.memcpy.dest = d2 + 8;
	f.data.operation.data.memcpy.src = s2;
	f.data.operation.data.memcpy.n = 200;
	FUTURE_BUSY_POLL(&f);
	CHECK(all_bytes(d1, 256, 0));
	CHECK(all_bytes(d2, 8, 0));
	CHECK(memcmp(d2 + 8, s2, 200) == 0);
	CHECK(all_bytes(d2 + 208, 48, 0));
	CHECK(f.output.output.memcpy.dest == d2 + 8);

	f = vdm_memmove(vdm, d1, s1, 0, 0);
	f.data.operation.data.memmove.n = 100;
	FUTURE_BUSY_POLL(&f);
	CHECK(memcmp(d1, s1, 100) == 0);
	CHECK(all_bytes(d1 + 100, 156, 0));

	f = vdm_memset(vdm, d1, 1, 1, 0);
	f.data.operation.data.memset.c = 0x77;
	f.data.operation.data.memset.n = 256;
	FUTURE_BUSY_POLL(&f);
	CHECK(all_bytes(d1, 256, 0x77));
	data_mover_threads_delete(dmt);
}

/*
 * Ring full: 1 worker busy with op 0, 2 slots hold ops 1 and 2, ops 3-5
 * cannot be queued: their poll returns IDLE and a later poll submits them.
 */
static void
ring_full_retry(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 2, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	gate_reset();
	data_mover_threads_set_memcpy_fn(dmt, gated_memcpy);
	enum { N = 6 };
	unsigned char src[N][300], dst[N][300];
	struct vdm_operation_future f[N];
	for (int i = 0; i < N; i++) {
		fill_pattern(src[i], 300, (unsigned)i + 100);
		memset(dst[i], 0, 300);
		f[i] = vdm_memcpy(vdm, dst[i], src[i], 300, 0);
	}
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[0]), NULL),
		FUTURE_STATE_RUNNING);
	CHECK(wait_at_least(&gate_entered, 1));
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[1]), NULL),
		FUTURE_STATE_RUNNING);
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[2]), NULL),
		FUTURE_STATE_RUNNING);
	for (int i = 3; i < N; i++) {
		struct future_notifier n;
		memset(&n, 0, sizeof(n));
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[i]), &n),
			FUTURE_STATE_IDLE);
		CHECK_EQ(FUTURE_STATE(&f[i]), FUTURE_STATE_IDLE);
	}
	/* still full: a second poll is still IDLE, nothing was copied */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[3]), NULL),
		FUTURE_STATE_IDLE);
	for (int i = 0; i < N; i++)
		CHECK(all_bytes(dst[i], 300, 0));
	CHECK_EQ(__atomic_load_n(&gate_entered, __ATOMIC_SEQ_CST), 1);

	__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
	int done = 0;
	while (done < N) {
		done = 0;
		for (int i = 0; i < N; i++)
			if (future_poll(FUTURE_AS_RUNNABLE(&f[i]), NULL) ==
				FUTURE_STATE_COMPLETE)
				done++;
	}
	for (int i = 0; i < N; i++) {
		CHECK_EQ(f[i].output.result, VDM_SUCCESS);
		CHECK(f[i].output.output.memcpy.dest == dst[i]);
		CHECK(memcmp(src[i], dst[i], 300) == 0);
	}
	CHECK_EQ(__atomic_load_n(&gate_calls, __ATOMIC_SEQ_CST), N);

	/* the same through the runtime: IDLE futures are retried */
	gate_reset();
	for (int i = 0; i < N; i++) {
		memset(dst[i], 0, 300);
		f[i] = vdm_memcpy(vdm, dst[i], src[i], 300, 0);
	}
	__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
	struct runtime *rt = runtime_new();
	struct future *futs[N];
	for (int i = 0; i < N; i++)
		futs[i] = FUTURE_AS_RUNNABLE(&f[i]);
	runtime_wait_multiple(rt, futs, N);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(FUTURE_STATE(&f[i]), FUTURE_STATE_COMPLETE);
		CHECK(memcmp(src[i], dst[i], 300) == 0);
	}
	runtime_delete(rt);
	data_mover_threads_delete(dmt);
}

/* ---- replaceable functions and their flags ---- */

static int cpy_calls, mov_calls, set_calls;
static unsigned cpy_flags, mov_flags, set_flags;
static int set_c;
static size_t set_n;

static void *
my_memcpy(void *d, const void *s, size_t n, unsigned flags)
{
	cpy_flags = flags;
	__atomic_add_fetch(&cpy_calls, 1, __ATOMIC_SEQ_CST);
	return memcpy(d, s, n);
}

static void *
my_memmove(void *d, const void *s, size_t n, unsigned flags)
{
	mov_flags = flags;
	__atomic_add_fetch(&mov_calls, 1, __ATOMIC_SEQ_CST);
	return memmove(d, s, n);
}

static void *
my_memset(void *d, int c, size_t n, unsigned flags)
{
	set_flags = flags;
	set_c = c;
	set_n = n;
	__atomic_add_fetch(&set_calls, 1, __ATOMIC_SEQ_CST);
	return memset(d, c, n);
}

static void
custom_functions_and_flags(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 8, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	data_mover_threads_set_memcpy_fn(dmt, my_memcpy);
	data_mover_threads_set_memmove_fn(dmt, my_memmove);
	data_mover_threads_set_memset_fn(dmt, my_memset);
	cpy_calls = mov_calls = set_calls = 0;

	uint64_t flags[] = { 0, VDM_F_MEM_DURABLE, VDM_F_NO_CACHE_HINT,
		VDM_F_VALID_FLAGS, 0x10000000000ULL | VDM_F_VALID_FLAGS,
		0xFFFF000000000000ULL | VDM_F_NO_CACHE_HINT };
	int nflags = (int)(sizeof(flags) / sizeof(flags[0]));
	unsigned char src[128], dst[256];
	for (int i = 0; i < nflags; i++) {
		fill_pattern(src, 128, (unsigned)i);
		memset(dst, 0, sizeof(dst));
		struct vdm_operation_future f =
			vdm_memcpy(vdm, dst, src, 128, flags[i]);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
		CHECK(memcmp(dst, src, 128) == 0);
		CHECK_EQ(cpy_calls, i + 1);
		CHECK_EQ(cpy_flags & VDM_F_VALID_FLAGS,
			flags[i] & VDM_F_VALID_FLAGS);
		if (flags[i] <= 0xFFFFFFFFu)
			CHECK_EQ(cpy_flags, flags[i]);

		f = vdm_memmove(vdm, dst + 5, dst, 128, flags[i]);
		FUTURE_BUSY_POLL(&f);
		CHECK(memcmp(dst + 5, src, 128) == 0);
		CHECK_EQ(mov_calls, i + 1);
		CHECK_EQ(mov_flags & VDM_F_VALID_FLAGS,
			flags[i] & VDM_F_VALID_FLAGS);

		f = vdm_memset(vdm, dst + 1, 0x60 + i, 77, flags[i]);
		FUTURE_BUSY_POLL(&f);
		CHECK(all_bytes(dst + 1, 77, (unsigned char)(0x60 + i)));
		CHECK_EQ(set_calls, i + 1);
		CHECK_EQ(set_c & 0xff, 0x60 + i);
		CHECK_EQ(set_n, 77);
		CHECK_EQ(set_flags & VDM_F_VALID_FLAGS,
			flags[i] & VDM_F_VALID_FLAGS);
	}

	/* NULL restores the built-in functions */
	data_mover_threads_set_memcpy_fn(dmt, NULL);
	data_mover_threads_set_memmove_fn(dmt, NULL);
	data_mover_threads_set_memset_fn(dmt, NULL);
	fill_pattern(src, 128, 99);
	memset(dst, 0, sizeof(dst));
	struct vdm_operation_future f = vdm_memcpy(vdm, dst, src, 128, 1);
	FUTURE_BUSY_POLL(&f);
	CHECK(memcmp(dst, src, 128) == 0);
	f = vdm_memmove(vdm, dst + 100, dst, 128, 0);
	FUTURE_BUSY_POLL(&f);
	CHECK(memcmp(dst + 100, src, 128) == 0);
	f = vdm_memset(vdm, dst, 3, 50, 0);
	FUTURE_BUSY_POLL(&f);
	CHECK(all_bytes(dst, 50, 3));
	CHECK_EQ(cpy_calls, nflags);
	CHECK_EQ(mov_calls, nflags);
	CHECK_EQ(set_calls, nflags);

	/* each mover has its own function table */
	struct data_mover_threads *other =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_NONE);
	CHECK(other != NULL);
	if (other) {
		data_mover_threads_set_memcpy_fn(dmt, my_memcpy);
		f = vdm_memcpy(data_mover_threads_get_vdm(other), dst, src,
			10, 0);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(cpy_calls, nflags);
		f = vdm_memcpy(vdm, dst, src, 10, 0);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(cpy_calls, nflags + 1);
		data_mover_threads_delete(other);
	}
	data_mover_threads_delete(dmt);
}

/* Many workers run many ops at once; every result is right. */
static void
many_workers_many_ops(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(4, 16, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	struct runtime *rt = runtime_new();
	enum { N = 200 };
	static unsigned char src[N][512], dst[N][512];
	static struct vdm_operation_future f[N];
	struct future *futs[N];
	for (int i = 0; i < N; i++) {
		fill_pattern(src[i], 512, (unsigned)i * 3);
		memset(dst[i], 0, 512);
		switch (i % 3) {
		case 0:
			f[i] = vdm_memcpy(vdm, dst[i], src[i], 512, 0);
			break;
		case 1:
			memcpy(dst[i], src[i], 512);
			f[i] = vdm_memmove(vdm, dst[i] + 1, dst[i], 511, 0);
			break;
		default:
			f[i] = vdm_memset(vdm, dst[i], i, 512, 0);
		}
		futs[i] = FUTURE_AS_RUNNABLE(&f[i]);
	}
	runtime_wait_multiple(rt, futs, N);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(FUTURE_STATE(&f[i]), FUTURE_STATE_COMPLETE);
		CHECK_EQ(f[i].output.result, VDM_SUCCESS);
		switch (i % 3) {
		case 0:
			CHECK(memcmp(dst[i], src[i], 512) == 0);
			break;
		case 1:
			CHECK_EQ(dst[i][0], src[i][0]);
			CHECK(memcmp(dst[i] + 1, src[i], 511) == 0);
			break;
		default:
			CHECK(all_bytes(dst[i], 512, (unsigned char)i));
		}
	}
	runtime_delete(rt);
	data_mover_threads_delete(dmt);
}

int
main(void)
{
	test_prog = "test_vdm_threads";
	alarm(600);
	RUN(mover_struct_vdm);
	RUN(all_operations);
	RUN(notifier_waker_one_wake_after_completion);
	RUN(waker_count_with_repeated_polls);
	RUN(notifier_poller);
	RUN(notifier_none);
	RUN(future_moved_while_running);
	RUN(edit_operation_before_first_poll);
	RUN(ring_full_retry);
	RUN(custom_functions_and_flags);
	RUN(many_workers_many_ops);
	TEST_DONE();
}
