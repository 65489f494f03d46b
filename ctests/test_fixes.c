/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_fixes.c -- one test per upstream bug that ABI.md section 7 says we
 * fix; each test is named after the fix and fails on upstream's behaviour.
 *
 * Strict prototypes are an error here: upstream declared
 * data_mover_threads_default() without `void` (fix 29), which this file
 * would then refuse to compile.
 */
#pragma GCC diagnostic error "-Wstrict-prototypes"
#include <libminiasync.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include "test.h"

static void
fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 11 + i * 7 + (i >> 10));
}

static int gate_open, gate_entered, gate_calls;

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

/* A hand-written future: needs `polls` polls; optionally checks notifiers. */
struct pf_data {
	int polls;
	int done;
	int check_notifier;
	int bad_notifier;
};
struct pf_output {
	int finished;
};
FUTURE(pf_future, struct pf_data, struct pf_output);

static enum future_state
pf_task(struct future_context *ctx, struct future_notifier *n)
{
	struct pf_data *d = future_context_get_data(ctx);
	struct pf_output *o = future_context_get_output(ctx);
	if (d->check_notifier) {
		if (n == NULL || n->notifier_used != FUTURE_NOTIFIER_NONE ||
			n->padding != 0 || n->poller.ptr_to_monitor != NULL ||
			n->waker.wake == NULL)
			d->bad_notifier++;
		if (n != NULL) {
			/* dirty it: the runtime must re-initialise it */
			FUTURE_WAKER_WAKE(&n->waker);
			n->notifier_used = FUTURE_NOTIFIER_POLLER;
			n->padding = 0xdeadbeef;
			n->poller.ptr_to_monitor = (uint64_t *)&d->polls;
		}
	}
	if (++d->done < d->polls)
		return FUTURE_STATE_RUNNING;
	o->finished = 1;
	return FUTURE_STATE_COMPLETE;
}

static void
pf_init(struct pf_future *f, int polls)
{
	FUTURE_INIT(f, pf_task);
	f->data.polls = polls;
	f->data.done = 0;
	f->data.check_notifier = 0;
	f->data.bad_notifier = 0;
	f->output.finished = 0;
}

/* ---- 1: vdm_is_supported uses & ---- */

static void
test_fix_vdm_is_supported(void)
{
	struct vdm v;
	memset(&v, 0, sizeof(v));
	v.capabilities = 0;
	CHECK_EQ(vdm_is_supported(&v, 0), 1);
	CHECK_EQ(vdm_is_supported(&v, VDM_F_MEM_DURABLE), 0);
	CHECK_EQ(vdm_is_supported(&v, VDM_F_NO_CACHE_HINT), 0);
	CHECK_EQ(vdm_is_supported(&v, VDM_F_VALID_FLAGS), 0);
	v.capabilities = VDM_F_NO_CACHE_HINT; /* upstream said DURABLE: 1 */
	CHECK_EQ(vdm_is_supported(&v, VDM_F_MEM_DURABLE), 0);
	CHECK_EQ(vdm_is_supported(&v, VDM_F_NO_CACHE_HINT), 1);
	CHECK_EQ(vdm_is_supported(&v, VDM_F_VALID_FLAGS), 0);
	CHECK_EQ(vdm_is_supported(&v, 0), 1);
	v.capabilities = VDM_F_VALID_FLAGS; /* upstream said 0 for 2 and 3 */
	CHECK_EQ(vdm_is_supported(&v, VDM_F_MEM_DURABLE), 1);
	CHECK_EQ(vdm_is_supported(&v, VDM_F_NO_CACHE_HINT), 1);
	CHECK_EQ(vdm_is_supported(&v, VDM_F_VALID_FLAGS), 1);
	v.capabilities = VDM_F_MEM_DURABLE;
	CHECK_EQ(vdm_is_supported(&v, VDM_F_MEM_DURABLE), 1);
	CHECK_EQ(vdm_is_supported(&v, VDM_F_VALID_FLAGS), 0);

	/* the real movers keep upstream's capabilities (0) */
	struct data_mover_sync *dms = data_mover_sync_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 2, FUTURE_NOTIFIER_NONE);
	CHECK(dms && dmt);
	if (dms && dmt) {
		CHECK_EQ(vdm_is_supported(data_mover_sync_get_vdm(dms),
			VDM_F_MEM_DURABLE), 0);
		CHECK_EQ(vdm_is_supported(data_mover_threads_get_vdm(dmt),
			VDM_F_MEM_DURABLE), 0);
		CHECK_EQ(vdm_is_supported(data_mover_sync_get_vdm(dms), 0), 1);
		CHECK_EQ(vdm_is_supported(data_mover_threads_get_vdm(dmt), 0),
			1);
	}
	data_mover_sync_delete(dms);
	data_mover_threads_delete(dmt);
}

/* ---- 4: futures already complete on entry ---- */

static void
test_fix_runtime_wait_complete_on_entry(void)
{
	struct runtime *rt = runtime_new();
	CHECK(rt != NULL);
	struct pf_future c;
	FUTURE_INIT_COMPLETE(&c);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&c)); /* upstream: hangs */

	struct data_mover_sync *dms = data_mover_sync_new();
	char s[4] = "abc", d[4] = { 0 };
	struct vdm_operation_future f =
		vdm_memcpy(data_mover_sync_get_vdm(dms), d, s, 4, 0);
	FUTURE_BUSY_POLL(&f);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));
	CHECK(memcmp(d, "abc", 4) == 0);

	struct pf_future p1, p2;
	pf_init(&p1, 1);
	pf_init(&p2, 1);
	FUTURE_BUSY_POLL(&p1);
	FUTURE_BUSY_POLL(&p2);
	struct future *all_done[] = { FUTURE_AS_RUNNABLE(&p1),
		FUTURE_AS_RUNNABLE(&f), FUTURE_AS_RUNNABLE(&p2) };
	runtime_wait_multiple(rt, all_done, 3);
	CHECK_EQ(p1.data.done, 1);
	CHECK_EQ(p2.data.done, 1);

	/* one complete, one pending */
	struct pf_future q;
	pf_init(&q, 4);
	struct future *mixed[] = { FUTURE_AS_RUNNABLE(&p1),
		FUTURE_AS_RUNNABLE(&q) };
	runtime_wait_multiple(rt, mixed, 2);
	CHECK_EQ(FUTURE_STATE(&q), FUTURE_STATE_COMPLETE);
	CHECK_EQ(q.data.done, 4);
	CHECK_EQ(p1.data.done, 1);
	data_mover_sync_delete(dms);
	runtime_delete(rt);
}

/* ---- 6: NULL has_property with n >= 2 ---- */

static void
test_fix_runtime_null_has_property(void)
{
	struct runtime *rt = runtime_new();
	struct pf_future c1, c2, p;
	FUTURE_INIT_COMPLETE(&c1);
	FUTURE_INIT_COMPLETE(&c2);
	pf_init(&p, 3);
	struct future *futs[] = { FUTURE_AS_RUNNABLE(&c1),
		FUTURE_AS_RUNNABLE(&p), FUTURE_AS_RUNNABLE(&c2) };
	runtime_wait_multiple(rt, futs, 3); /* upstream: NULL call */
	CHECK_EQ(p.data.done, 3);
	CHECK_EQ(p.output.finished, 1);
	struct future *two[] = { FUTURE_AS_RUNNABLE(&c1),
		FUTURE_AS_RUNNABLE(&c2) };
	runtime_wait_multiple(rt, two, 2);
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&c1),
		FUTURE_PROPERTY_ASYNC), 0);
	runtime_delete(rt);
}

/* ---- 7: the runtime's notifier is fully initialised for every poll ---- */

static void
test_fix_runtime_notifier_initialised(void)
{
	struct runtime *rt = runtime_new();
	struct pf_future a, b;
	pf_init(&a, 5);
	pf_init(&b, 3);
	a.data.check_notifier = 1;
	b.data.check_notifier = 1;
	struct future *futs[] = { FUTURE_AS_RUNNABLE(&a),
		FUTURE_AS_RUNNABLE(&b) };
	runtime_wait_multiple(rt, futs, 2);
	CHECK_EQ(a.data.done, 5);
	CHECK_EQ(b.data.done, 3);
	CHECK_EQ(a.data.bad_notifier, 0);
	CHECK_EQ(b.data.bad_notifier, 0);
	pf_init(&a, 4);
	a.data.check_notifier = 1;
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&a));
	CHECK_EQ(a.data.bad_notifier, 0);
	CHECK_EQ(a.data.done, 4);
	runtime_delete(rt);
}

/* ---- 8: runtime_new/delete release everything (valgrind/asan) ---- */

static void
test_fix_runtime_delete_releases(void)
{
	size_t n = test_scale(2000);
	for (size_t i = 0; i < n; i++) {
		struct runtime *rt = runtime_new();
		CHECK(rt != NULL);
		if (i % 100 == 0) {
			struct pf_future p;
			pf_init(&p, 2);
			runtime_wait(rt, FUTURE_AS_RUNNABLE(&p));
			CHECK_EQ(p.output.finished, 1);
		}
		runtime_delete(rt);
	}
}

/* ---- 9: completion is published before the waker runs ---- */

struct wake_probe {
	struct vdm *vdm;
	void *handle;
	struct vdm_operation op;
	int state_in_wake;
	int woken;
};

static void
probe_wake(void *data)
{
	struct wake_probe *w = data;
	w->state_in_wake = w->vdm->op_check(w->handle, &w->op);
	__atomic_add_fetch(&w->woken, 1, __ATOMIC_RELEASE);
}

static void
test_fix_wake_after_completion(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	size_t rounds = test_scale(200);
	for (size_t r = 0; r < rounds; r++) {
		unsigned char s[64], d[64];
		fill_pattern(s, 64, (unsigned)r);
		memset(d, 0, 64);
		struct vdm_operation_future f = vdm_memcpy(vdm, d, s, 64, 0);
		struct wake_probe w;
		memset(&w, 0, sizeof(w));
		w.vdm = vdm;
		w.handle = f.data.data;
		w.op = f.data.operation;
		w.state_in_wake = -1;
		struct future_notifier n;
		memset(&n, 0, sizeof(n));
		n.waker.data = &w;
		n.waker.wake = probe_wake;
		if (future_poll(FUTURE_AS_RUNNABLE(&f), &n) !=
			FUTURE_STATE_COMPLETE) {
			CHECK(wait_at_least(&w.woken, 1));
			CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
				FUTURE_STATE_COMPLETE);
		}
		CHECK_EQ(w.woken, 1);
		CHECK_EQ(w.state_in_wake, FUTURE_STATE_COMPLETE);
		CHECK(memcmp(s, d, 64) == 0);
	}
	data_mover_threads_delete(dmt);
}

/* ---- 10: the POLLER word is valid until the op is deleted ---- */

static void
test_fix_poller_valid_until_delete(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 8, FUTURE_NOTIFIER_POLLER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	enum { N = 8 };
	unsigned char s[N][128], d[N][128];
	struct vdm_operation_future f[N];
	uint64_t *mon[N];
	for (int i = 0; i < N; i++) {
		fill_pattern(s[i], 128, (unsigned)i);
		memset(d[i], 0, 128);
		f[i] = vdm_memcpy(vdm, d[i], s[i], 128, 0);
		struct future_notifier n;
		memset(&n, 0, sizeof(n));
		enum future_state st = future_poll(FUTURE_AS_RUNNABLE(&f[i]),
			&n);
		mon[i] = NULL;
		if (st == FUTURE_STATE_RUNNING) {
			CHECK_EQ(n.notifier_used, FUTURE_NOTIFIER_POLLER);
			mon[i] = n.poller.ptr_to_monitor;
			CHECK(mon[i] != NULL);
		}
	}
	/* wait on all words without polling; they stay set */
	for (int i = 0; i < N; i++) {
		if (mon[i] == NULL)
			continue;
		while (__atomic_load_n(mon[i], __ATOMIC_ACQUIRE) == 0)
			short_sleep();
	}
	short_sleep();
	for (int i = 0; i < N; i++) {
		if (mon[i] != NULL)
			CHECK(__atomic_load_n(mon[i], __ATOMIC_ACQUIRE) != 0);
		CHECK(memcmp(s[i], d[i], 128) == 0);
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[i]), NULL),
			FUTURE_STATE_COMPLETE);
		CHECK_EQ(f[i].output.result, VDM_SUCCESS);
	}
	data_mover_threads_delete(dmt);
}

/* ---- 11: ring full: IDLE, retried on the next poll ---- */

static void
test_fix_op_start_ring_full(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 1, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	gate_reset();
	data_mover_threads_set_memcpy_fn(dmt, gated_memcpy);
	unsigned char s[3][32], d[3][32];
	struct vdm_operation_future f[3];
	for (int i = 0; i < 3; i++) {
		fill_pattern(s[i], 32, (unsigned)i + 1);
		memset(d[i], 0, 32);
		f[i] = vdm_memcpy(vdm, d[i], s[i], 32, 0);
	}
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[0]), NULL),
		FUTURE_STATE_RUNNING);
	CHECK(wait_at_least(&gate_entered, 1));
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[1]), NULL),
		FUTURE_STATE_RUNNING);
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[2]), NULL),
		FUTURE_STATE_IDLE);
	__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 3; i++) {
		FUTURE_BUSY_POLL(&f[i]);
		CHECK(memcmp(s[i], d[i], 32) == 0);
	}
	CHECK_EQ(gate_calls, 3);
	data_mover_threads_delete(dmt);
}

/* ---- 12: ring sizes: 0 refused, others rounded up to a power of 2 ---- */

static void
test_fix_ringbuf_size_zero_null(void)
{
	CHECK(data_mover_threads_new(1, 0, FUTURE_NOTIFIER_WAKER) == NULL);
	CHECK(data_mover_threads_new(4, 0, FUTURE_NOTIFIER_NONE) == NULL);
}

/* Blocks the only worker, then counts how many ops fit in the queue. */
static void
check_ring_capacity(size_t requested, int expected)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, requested, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	gate_reset();
	data_mover_threads_set_memcpy_fn(dmt, gated_memcpy);
	int total = expected + 3;
	unsigned char *s = malloc((size_t)total * 16);
	unsigned char *d = calloc((size_t)total, 16);
	struct vdm_operation_future *f = malloc(sizeof(*f) * (size_t)total);
	CHECK(s && d && f);
	if (!s || !d || !f)
		return;
	fill_pattern(s, (size_t)total * 16, (unsigned)requested);
	for (int i = 0; i < total; i++)
		f[i] = vdm_memcpy(vdm, d + i * 16, s + i * 16, 16, 0);
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[0]), NULL),
		FUTURE_STATE_RUNNING);
	CHECK(wait_at_least(&gate_entered, 1));
	int running = 1, idle = 0;
	for (int i = 1; i < total; i++) {
		enum future_state st =
			future_poll(FUTURE_AS_RUNNABLE(&f[i]), NULL);
		if (st == FUTURE_STATE_RUNNING)
			running++;
		else if (st == FUTURE_STATE_IDLE)
			idle++;
	}
	/* one op in the worker, `expected` queued, the rest IDLE */
	CHECK_EQ(running, expected + 1);
	CHECK_EQ(idle, total - expected - 1);
	__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < total; i++)
		FUTURE_BUSY_POLL(&f[i]);
	CHECK(memcmp(s, d, (size_t)total * 16) == 0);
	CHECK_EQ(gate_calls, total);
	free(s);
	free(d);
	free(f);
	data_mover_threads_delete(dmt);
}

static void
test_fix_ringbuf_size_rounded_up(void)
{
	check_ring_capacity(3, 4);
	check_ring_capacity(100, 128);
	check_ring_capacity(129, 256);
	check_ring_capacity(1, 1);
	check_ring_capacity(2, 2);
	check_ring_capacity(64, 64);
}

static void
test_fix_nthreads_zero_null(void)
{
	CHECK(data_mover_threads_new(0, 8, FUTURE_NOTIFIER_WAKER) == NULL);
	CHECK(data_mover_threads_new(0, 128, FUTURE_NOTIFIER_NONE) == NULL);
}

static void
test_fix_bad_notifier_null(void)
{
	unsigned bad[] = { 3, 4, 100, 0x7fffffff, 0xffffffffu };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum future_notifier_type t;
		memcpy(&t, &bad[i], sizeof(t));
		struct data_mover_threads *dmt = data_mover_threads_new(1, 4, t);
		CHECK(dmt == NULL);
		if (dmt != NULL)
			data_mover_threads_delete(dmt);
	}
	/* the three valid types are accepted */
	for (int t = 0; t < 3; t++) {
		struct data_mover_threads *dmt = data_mover_threads_new(1, 4,
			(enum future_notifier_type)t);
		CHECK(dmt != NULL);
		data_mover_threads_delete(dmt);
	}
}

/* ---- 14: FLUSH works (upstream exit(1)) ---- */

static void
test_fix_flush_sync(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	unsigned char buf[8192], ref[8192];
	fill_pattern(buf, sizeof(buf), 4);
	memcpy(ref, buf, sizeof(buf));
	size_t offs[] = { 0, 1, 63, 64, 100 };
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		struct vdm_operation_future f = vdm_flush(vdm, buf + offs[i],
			sizeof(buf) - offs[i], 0);
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
			FUTURE_STATE_COMPLETE);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
		CHECK_EQ(f.output.type, VDM_OPERATION_FLUSH);
		CHECK_EQ(f.output.output.flush.unused, 0);
	}
	struct vdm_operation_future f = vdm_flush(vdm, buf, 1, VDM_F_VALID_FLAGS);
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(memcmp(buf, ref, sizeof(buf)) == 0);
	data_mover_sync_delete(dms);
}

static void
test_fix_flush_threads(void)
{
	struct runtime *rt = runtime_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 8, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	unsigned char *buf = malloc(1 << 20), *ref = malloc(1 << 20);
	fill_pattern(buf, 1 << 20, 5);
	memcpy(ref, buf, 1 << 20);
	struct vdm_operation_future f[4];
	f[0] = vdm_flush(vdm, buf, 1 << 20, 0);
	f[1] = vdm_flush(vdm, buf + 3, 1000, VDM_F_MEM_DURABLE);
	f[2] = vdm_flush(vdm, buf + 4096, 64, VDM_F_NO_CACHE_HINT);
	f[3] = vdm_flush(vdm, buf, 0, 0);
	struct future *futs[4];
	for (int i = 0; i < 4; i++)
		futs[i] = FUTURE_AS_RUNNABLE(&f[i]);
	runtime_wait_multiple(rt, futs, 4);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(FUTURE_STATE(&f[i]), FUTURE_STATE_COMPLETE);
		CHECK_EQ(f[i].output.result, VDM_SUCCESS);
		CHECK_EQ(f[i].output.type, VDM_OPERATION_FLUSH);
		CHECK_EQ(f[i].output.output.flush.unused, 0);
	}
	CHECK(memcmp(buf, ref, 1 << 20) == 0);
	free(buf);
	free(ref);
	data_mover_threads_delete(dmt);
	runtime_delete(rt);
}

/* ---- 14: VDM_F_MEM_DURABLE is honoured without failing ---- */

static void
durable_ops_on(struct vdm *vdm)
{
	unsigned char s[5000], d[5000];
	fill_pattern(s, sizeof(s), 6);
	memset(d, 0, sizeof(d));
	struct vdm_operation_future f =
		vdm_memcpy(vdm, d, s, sizeof(s), VDM_F_MEM_DURABLE);
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(memcmp(s, d, sizeof(s)) == 0);
	f = vdm_memmove(vdm, d + 7, d, 4000, VDM_F_MEM_DURABLE);
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(memcmp(s, d + 7, 4000) == 0);
	f = vdm_memset(vdm, d + 1, 0xAA, 999,
		VDM_F_MEM_DURABLE | VDM_F_NO_CACHE_HINT);
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(all_bytes(d + 1, 999, 0xAA));
	CHECK_EQ(d[0], s[0]);
}

static void
test_fix_durable_accepted(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	durable_ops_on(data_mover_sync_get_vdm(dms));
	data_mover_sync_delete(dms);
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 4, FUTURE_NOTIFIER_NONE);
	CHECK(dmt != NULL);
	if (dmt)
		durable_ops_on(data_mover_threads_get_vdm(dmt));
	data_mover_threads_delete(dmt);
}

/* ---- 17: delete with queued ops runs them and does not hang ---- */

static void *
open_gate_later(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 30 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
test_fix_delete_with_queued_ops(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 8, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	gate_reset();
	data_mover_threads_set_memcpy_fn(dmt, gated_memcpy);
	enum { N = 6 };
	unsigned char s[N][100], d[N][100];
	struct vdm_operation_future f[N + 1];
	for (int i = 0; i < N; i++) {
		fill_pattern(s[i], 100, (unsigned)i + 9);
		memset(d[i], 0, 100);
		f[i] = vdm_memcpy(vdm, d[i], s[i], 100, 0);
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[i]), NULL),
			FUTURE_STATE_RUNNING);
		if (i == 0)
			CHECK(wait_at_least(&gate_entered, 1));
	}
	/* one more, never started */
	unsigned char never[16] = { 0 };
	f[N] = vdm_memset(vdm, never, 1, 16, 0);
	CHECK_EQ(__atomic_load_n(&gate_entered, __ATOMIC_SEQ_CST), 1);

	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, open_gate_later, NULL), 0);
	data_mover_threads_delete(dmt); /* upstream: hangs with 0 workers */
	pthread_join(th, NULL);
	CHECK_EQ(__atomic_load_n(&gate_calls, __ATOMIC_SEQ_CST), N);
	for (int i = 0; i < N; i++)
		CHECK(memcmp(s[i], d[i], 100) == 0);
	CHECK(all_bytes(never, 16, 0));

	/* more workers than upstream's 1024 wake-ups */
	size_t nthreads = test_scale(1030);
	struct data_mover_threads *big =
		data_mover_threads_new(nthreads, 4, FUTURE_NOTIFIER_NONE);
	CHECK(big != NULL);
	if (big) {
		char a[8] = "workers", b[8] = { 0 };
		struct vdm_operation_future g =
			vdm_memcpy(data_mover_threads_get_vdm(big), b, a, 8, 0);
		FUTURE_BUSY_POLL(&g);
		CHECK(memcmp(a, b, 8) == 0);
		data_mover_threads_delete(big);
	}
}

/* ---- 28: vdm_synchronous_new/delete are defined ---- */

static void
test_fix_vdm_synchronous(void)
{
	struct vdm *vdm = vdm_synchronous_new();
	CHECK(vdm != NULL);
	if (vdm == NULL)
		return;
	CHECK(vdm->op_new && vdm->op_start && vdm->op_check && vdm->op_delete);
	CHECK_EQ(vdm->capabilities, 0);
	unsigned char s[300], d[300];
	fill_pattern(s, 300, 8);
	memset(d, 0, 300);
	struct vdm_operation_future f = vdm_memcpy(vdm, d, s, 300, 0);
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(f.output.output.memcpy.dest == d);
	CHECK(memcmp(s, d, 300) == 0);
	f = vdm_memset(vdm, d, 0, 300, 0);
	FUTURE_BUSY_POLL(&f);
	CHECK(all_bytes(d, 300, 0));
	f = vdm_flush(vdm, d, 300, 0);
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	vdm_synchronous_delete(vdm);
	vdm_synchronous_delete(NULL);
}

/* ---- 29: data_mover_threads_default(void): 12 workers, 128 slots ---- */

static void
test_fix_threads_default_void(void)
{
	struct data_mover_threads *(*ctor)(void) = data_mover_threads_default;
	struct data_mover_threads *dmt = ctor();
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	gate_reset();
	data_mover_threads_set_memcpy_fn(dmt, gated_memcpy);
	enum { W = 12, SLOTS = 128, TOTAL = W + SLOTS + 1 };
	static unsigned char s[TOTAL][8], d[TOTAL][8];
	static struct vdm_operation_future f[TOTAL];
	for (int i = 0; i < TOTAL; i++) {
		fill_pattern(s[i], 8, (unsigned)i);
		memset(d[i], 0, 8);
		f[i] = vdm_memcpy(vdm, d[i], s[i], 8, 0);
	}
	/* the WAKER notifier is the default */
	struct future_notifier n;
	memset(&n, 0, sizeof(n));
	n.notifier_used = FUTURE_NOTIFIER_POLLER;
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[0]), &n),
		FUTURE_STATE_RUNNING);
	CHECK_EQ(n.notifier_used, FUTURE_NOTIFIER_WAKER);
	/* 12 workers take one op each */
	for (int i = 1; i < W; i++)
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[i]), NULL),
			FUTURE_STATE_RUNNING);
	CHECK(wait_at_least(&gate_entered, W));
	/* 128 more are queued */
	for (int i = W; i < W + SLOTS; i++)
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[i]), NULL),
			FUTURE_STATE_RUNNING);
	/* no 13th worker picks one up */
	for (int i = 0; i < 20; i++)
		short_sleep();
	CHECK_EQ(__atomic_load_n(&gate_entered, __ATOMIC_SEQ_CST), W);
	/* and the queue is full */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f[TOTAL - 1]), NULL),
		FUTURE_STATE_IDLE);
	__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < TOTAL; i++) {
		FUTURE_BUSY_POLL(&f[i]);
		CHECK(memcmp(s[i], d[i], 8) == 0);
	}
	CHECK_EQ(gate_calls, TOTAL);
	data_mover_threads_delete(dmt);
}

/* ---- 30: vdm_flush zero-initialises its output ---- */

static __attribute__((noinline)) void
dirty_stack(void)
{
	volatile unsigned char junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = 0xEE;
}

static __attribute__((noinline)) void
make_flush(struct vdm *vdm, void *p, struct vdm_operation_future *out)
{
	*out = vdm_flush(vdm, p, 64, 0);
}

static void
test_fix_flush_output_zeroed(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_NONE);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdms[2] = { data_mover_sync_get_vdm(dms),
		data_mover_threads_get_vdm(dmt) };
	char buf[64] = { 1 };
	for (int i = 0; i < 2; i++) {
		struct vdm_operation_future f;
		memset(&f, 0xEE, sizeof(f));
		dirty_stack();
		make_flush(vdms[i], buf, &f);
		CHECK_EQ(f.output.output.flush.unused, 0);
		CHECK_EQ(f.output.type, VDM_OPERATION_FLUSH);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(f.output.output.flush.unused, 0);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
	}
	data_mover_sync_delete(dms);
	data_mover_threads_delete(dmt);
}

int
main(void)
{
	test_prog = "test_fixes";
	alarm(600);
	RUN(test_fix_vdm_is_supported);
	RUN(test_fix_runtime_wait_complete_on_entry);
	RUN(test_fix_runtime_null_has_property);
	RUN(test_fix_runtime_notifier_initialised);
	RUN(test_fix_runtime_delete_releases);
	RUN(test_fix_wake_after_completion);
	RUN(test_fix_poller_valid_until_delete);
	RUN(test_fix_op_start_ring_full);
	RUN(test_fix_ringbuf_size_zero_null);
	RUN(test_fix_ringbuf_size_rounded_up);
	RUN(test_fix_nthreads_zero_null);
	RUN(test_fix_bad_notifier_null);
	RUN(test_fix_flush_sync);
	RUN(test_fix_flush_threads);
	RUN(test_fix_durable_accepted);
	RUN(test_fix_delete_with_queued_ops);
	RUN(test_fix_vdm_synchronous);
	RUN(test_fix_threads_default_void);
	RUN(test_fix_flush_output_zeroed);
	TEST_DONE();
}
