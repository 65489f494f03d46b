/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_runtime.c -- runtime_wait, runtime_wait_multiple and
 * runtime_wait_all: the polling order of ABI.md 5.9 (each pass a stable
 * partition, ASYNC futures first, then property 0, then -1), the caller's
 * array reordered in place, NULL entries skipped, nfuts == 0, contiguous
 * arrays of futures of several sizes, wakers that put the runtime to sleep
 * and wake it, and several runtimes used at once.
 */
#include <libminiasync.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include "test.h"

static void
sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* ---- futures that log their polls and report a chosen property ---- */

enum { LOG_MAX = 256 };
static int poll_log[LOG_MAX];
static int poll_log_len;

struct ord_data {
	int id;
	int polls_needed;
	int polls_done;
	int prop_before;
	int prop_after;
	int flip_after; /* polls after which prop_after applies */
};
struct ord_output {
	int completed_at; /* poll_log_len at completion */
};
FUTURE(ord_future, struct ord_data, struct ord_output);

static enum future_state
ord_task(struct future_context *ctx, struct future_notifier *n)
{
	(void)n;
	struct ord_data *d = future_context_get_data(ctx);
	struct ord_output *o = future_context_get_output(ctx);
	if (poll_log_len < LOG_MAX)
		poll_log[poll_log_len++] = d->id;
	if (++d->polls_done < d->polls_needed)
		return FUTURE_STATE_RUNNING;
	o->completed_at = poll_log_len;
	return FUTURE_STATE_COMPLETE;
}

static int
ord_property(void *future, enum future_property p)
{
	struct ord_future *f = future;
	if (p != FUTURE_PROPERTY_ASYNC)
		return 0;
	return f->data.polls_done >= f->data.flip_after ? f->data.prop_after :
		f->data.prop_before;
}

static void
ord_init(struct ord_future *f, int id, int polls, int prop)
{
	FUTURE_INIT_EXT(f, ord_task, ord_property);
	f->data.id = id;
	f->data.polls_needed = polls;
	f->data.polls_done = 0;
	f->data.prop_before = prop;
	f->data.prop_after = prop;
	f->data.flip_after = 1 << 30;
	f->output.completed_at = -1;
}

static void
log_reset(void)
{
	poll_log_len = 0;
	memset(poll_log, 0, sizeof(poll_log));
}

static int
log_equals(const int *expected, int n)
{
	if (poll_log_len != n)
		goto bad;
	for (int i = 0; i < n; i++)
		if (poll_log[i] != expected[i])
			goto bad;
	return 1;
bad:
	fprintf(stderr, "poll order:");
	for (int i = 0; i < poll_log_len; i++)
		fprintf(stderr, " %d", poll_log[i]);
	fprintf(stderr, "\nexpected:  ");
	for (int i = 0; i < n; i++)
		fprintf(stderr, " %d", expected[i]);
	fprintf(stderr, "\n");
	return 0;
}

/* No ASYNC future: the caller's order is kept. */
static void
order_plain_sequence(void)
{
	struct runtime *rt = runtime_new();
	struct ord_future a, b, c;
	ord_init(&a, 1, 1, 0);
	ord_init(&b, 2, 1, 0);
	ord_init(&c, 3, 1, 0);
	struct future *futs[] = { FUTURE_AS_RUNNABLE(&a),
		FUTURE_AS_RUNNABLE(&b), FUTURE_AS_RUNNABLE(&c) };
	log_reset();
	runtime_wait_multiple(rt, futs, 3);
	static const int expected[] = { 1, 2, 3 };
	CHECK(log_equals(expected, 3));
	CHECK(futs[0] == &a.base && futs[1] == &b.base && futs[2] == &c.base);
	runtime_delete(rt);
}

/*
 * Caller's order [A1 p0 x2, B2 p1 x1, C3 p0 x1, D4 p1 x3] (id, property,
 * polls needed).
 *   pass 1: partition -> [B D A C]; polls B(done) D A C(done)  : 2 4 1 3
 *   pass 2: classes B1 D1 A0 C0, order kept; polls D A(done)   : 4 1
 *   pass 3: polls D(done)                                      : 4
 * Complete futures still take part in the partition (B stays first).
 */
static void
order_async_first(void)
{
	struct runtime *rt = runtime_new();
	struct ord_future a, b, c, d;
	ord_init(&a, 1, 2, 0);
	ord_init(&b, 2, 1, 1);
	ord_init(&c, 3, 1, 0);
	ord_init(&d, 4, 3, 1);
	struct future *futs[] = { FUTURE_AS_RUNNABLE(&a),
		FUTURE_AS_RUNNABLE(&b), FUTURE_AS_RUNNABLE(&c),
		FUTURE_AS_RUNNABLE(&d) };
	log_reset();
	runtime_wait_multiple(rt, futs, 4);
	static const int expected[] = { 2, 4, 1, 3, 4, 1, 4 };
	CHECK(log_equals(expected, 7));
	/* completion order 2, 3, 1, 4 */
	CHECK(b.output.completed_at < c.output.completed_at);
	CHECK(c.output.completed_at < a.output.completed_at);
	CHECK(a.output.completed_at < d.output.completed_at);
	/* the caller's array is left in the last pass's order */
	CHECK(futs[0] == &b.base);
	CHECK(futs[1] == &d.base);
	CHECK(futs[2] == &a.base);
	CHECK(futs[3] == &c.base);
	runtime_delete(rt);
}

/*
 * Properties that change while polling. Caller's order
 * [G7 p0 x2, E5 p0->1 after 1 poll x3, F6 p1->0 after 1 poll x2].
 *   pass 1: classes G0 E0 F1 -> [F G E]; polls F G E           : 6 7 5
 *   pass 2: classes F0 G0 E1 -> [E F G]; polls E F(done) G(done): 5 6 7
 *   pass 3: order kept; polls E(done)                          : 5
 */
static void
order_properties_change(void)
{
	struct runtime *rt = runtime_new();
	struct ord_future g, e, f;
	ord_init(&g, 7, 2, 0);
	ord_init(&e, 5, 3, 0);
	e.data.prop_after = 1;
	e.data.flip_after = 1;
	ord_init(&f, 6, 2, 1);
	f.data.prop_after = 0;
	f.data.flip_after = 1;
	struct future *futs[] = { FUTURE_AS_RUNNABLE(&g),
		FUTURE_AS_RUNNABLE(&e), FUTURE_AS_RUNNABLE(&f) };
	log_reset();
	runtime_wait_multiple(rt, futs, 3);
	static const int expected[] = { 6, 7, 5, 5, 6, 7, 5 };
	CHECK(log_equals(expected, 7));
	CHECK(futs[0] == &e.base && futs[1] == &f.base && futs[2] == &g.base);
	runtime_delete(rt);
}

/*
 * Property -1 goes last, NULL has_property counts as 0, NULL entries are
 * skipped. Caller's order [H8 p-1 x2, NULL, I9 p0 x1, X (complete, NULL
 * property), J10 p1 x2].
 *   pass 1: classes H:-1 I:0 X:0 J:1 -> J I X H; polls J I(done) H : 10 9 8
 *   pass 2: polls J(done) H(done)                               : 10 8
 */
static void
order_negative_null_and_complete(void)
{
	struct runtime *rt = runtime_new();
	struct ord_future h, i, x, j;
	ord_init(&h, 8, 2, -1);
	ord_init(&i, 9, 1, 0);
	FUTURE_INIT_COMPLETE(&x);
	ord_init(&j, 10, 2, 1);
	struct future *futs[] = { FUTURE_AS_RUNNABLE(&h), NULL,
		FUTURE_AS_RUNNABLE(&i), FUTURE_AS_RUNNABLE(&x),
		FUTURE_AS_RUNNABLE(&j) };
	log_reset();
	runtime_wait_multiple(rt, futs, 5);
	static const int expected[] = { 10, 9, 8, 10, 8 };
	CHECK(log_equals(expected, 5));
	/* the non-NULL entries are in partition order; the NULL is kept */
	struct future *nonnull[5];
	int k = 0, nulls = 0;
	for (int m = 0; m < 5; m++) {
		if (futs[m] == NULL)
			nulls++;
		else
			nonnull[k++] = futs[m];
	}
	CHECK_EQ(nulls, 1);
	CHECK_EQ(k, 4);
	if (k == 4) {
		CHECK(nonnull[0] == &j.base);
		CHECK(nonnull[1] == &i.base);
		CHECK(nonnull[2] == &x.base);
		CHECK(nonnull[3] == &h.base);
	}
	runtime_delete(rt);
}

/* As measured upstream: {sync, threads} comes back as {threads, sync}. */
static void
array_reordered_sync_threads(void)
{
	struct runtime *rt = runtime_new();
	struct data_mover_sync *dms = data_mover_sync_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	char s[32] = "reordered", d1[32] = { 0 }, d2[32] = { 0 };
	struct vdm_operation_future fs =
		vdm_memcpy(data_mover_sync_get_vdm(dms), d1, s, 32, 0);
	struct vdm_operation_future ft =
		vdm_memcpy(data_mover_threads_get_vdm(dmt), d2, s, 32, 0);
	struct future *futs[] = { FUTURE_AS_RUNNABLE(&fs),
		FUTURE_AS_RUNNABLE(&ft) };
	runtime_wait_multiple(rt, futs, 2);
	CHECK(futs[0] == &ft.base);
	CHECK(futs[1] == &fs.base);
	CHECK(memcmp(s, d1, 32) == 0);
	CHECK(memcmp(s, d2, 32) == 0);
	data_mover_threads_delete(dmt);
	data_mover_sync_delete(dms);
	runtime_delete(rt);
}

static void
nfuts_zero_and_single(void)
{
	struct runtime *rt = runtime_new();
	struct ord_future a;
	ord_init(&a, 1, 1000000, 0); /* would take very long */
	struct future *futs[] = { FUTURE_AS_RUNNABLE(&a) };
	log_reset();
	runtime_wait_multiple(rt, futs, 0);
	runtime_wait_all(rt, FUTURE_AS_RUNNABLE(&a), 0);
	CHECK_EQ(poll_log_len, 0);
	CHECK_EQ(a.data.polls_done, 0);

	ord_init(&a, 1, 5, 1);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&a));
	CHECK_EQ(a.data.polls_done, 5);
	CHECK_EQ(FUTURE_STATE(&a), FUTURE_STATE_COMPLETE);
	runtime_delete(rt);
}

/* ---- runtime_wait_all over contiguous arrays of several sizes ---- */

static int wa_polls;

#define WAIT_ALL_FUTURE(name, dtype, otype) \
	FUTURE(name, dtype, otype); \
	static enum future_state name##_task(struct future_context *ctx, \
		struct future_notifier *n) \
	{ \
		(void)n; \
		dtype *d = future_context_get_data(ctx); \
		otype *o = future_context_get_output(ctx); \
		wa_polls++; \
		if (d->left > 0) { \
			d->left--; \
			return FUTURE_STATE_RUNNING; \
		} \
		o->v = (unsigned char)(d->id * 3 + 1); \
		return FUTURE_STATE_COMPLETE; \
	}

struct d4 {
	uint8_t id;
	uint8_t left;
	uint16_t pad;
};
struct o4 {
	uint8_t v;
	uint8_t pad[3];
};
struct o1 {
	uint8_t v;
};
struct d1 {
	uint8_t id;
	uint8_t left;
};
struct dbig {
	uint8_t id;
	uint8_t left;
	uint8_t blob[3999];
};
struct obig {
	uint8_t v;
	uint8_t tail[2];
};

WAIT_ALL_FUTURE(fut44, struct d4, struct o4)
WAIT_ALL_FUTURE(fut41, struct d4, struct o1)
WAIT_ALL_FUTURE(fut11, struct d1, struct o1)
WAIT_ALL_FUTURE(futbig, struct dbig, struct obig)

#define CHECK_WAIT_ALL(name, N) \
	do { \
		struct runtime *rt = runtime_new(); \
		struct name *arr = calloc(N, sizeof(struct name)); \
		CHECK(arr != NULL); \
		if (arr == NULL) \
			break; \
		int expected_polls = 0; \
		for (int i = 0; i < (N); i++) { \
			if (i == 2) { \
				FUTURE_INIT_COMPLETE(&arr[i]); \
			} else { \
				FUTURE_INIT(&arr[i], name##_task); \
				expected_polls += 1 + i % 4; \
			} \
			arr[i].data.id = (uint8_t)i; \
			arr[i].data.left = (uint8_t)(i % 4); \
			arr[i].output.v = 0; \
		} \
		wa_polls = 0; \
		runtime_wait_all(rt, FUTURE_AS_RUNNABLE(&arr[0]), (N)); \
		CHECK_EQ(wa_polls, expected_polls); \
		for (int i = 0; i < (N); i++) { \
			CHECK_EQ(FUTURE_STATE(&arr[i]), FUTURE_STATE_COMPLETE); \
			CHECK_EQ(arr[i].data.id, i); /* not reordered */ \
			if (i != 2) \
				CHECK_EQ(arr[i].output.v, \
					(unsigned char)(i * 3 + 1)); \
			else \
				CHECK_EQ(arr[i].output.v, 0); \
		} \
		free(arr); \
		runtime_delete(rt); \
	} while (0)

static void
wait_all_strides(void)
{
	/* sizes of the whole future: 48 (40+4+4), 48 (40+4+1 rounded up),
	 * 48 (40+1+1 rounded up), 4048 (40+4001+3 rounded up) */
	CHECK_EQ(sizeof(struct fut44), 48);
	CHECK_EQ(sizeof(struct fut41), 48);
	CHECK_EQ(sizeof(struct fut11), 48);
	CHECK_EQ(sizeof(struct futbig), 4048);
	CHECK_WAIT_ALL(fut44, 9);
	CHECK_WAIT_ALL(fut41, 10);
	CHECK_WAIT_ALL(fut11, 7);
	CHECK_WAIT_ALL(futbig, 6);
}

static void
wait_all_vdm_futures(void)
{
	struct runtime *rt = runtime_new();
	struct data_mover_sync *dms = data_mover_sync_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 8, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	enum { N = 12 };
	unsigned char src[N][100], dst[N][100];
	struct vdm_operation_future f[N];
	for (int i = 0; i < N; i++) {
		memset(src[i], i + 1, 100);
		memset(dst[i], 0, 100);
		struct vdm *vdm = i % 2 ? data_mover_threads_get_vdm(dmt) :
			data_mover_sync_get_vdm(dms);
		f[i] = vdm_memcpy(vdm, dst[i], src[i], 100, 0);
	}
	runtime_wait_all(rt, FUTURE_AS_RUNNABLE(&f[0]), N);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(FUTURE_STATE(&f[i]), FUTURE_STATE_COMPLETE);
		CHECK(f[i].output.output.memcpy.dest == dst[i]);
		CHECK(memcmp(src[i], dst[i], 100) == 0);
	}
	data_mover_threads_delete(dmt);
	data_mover_sync_delete(dms);
	runtime_delete(rt);
}

/* ---- a custom future that registers the waker and is woken later ---- */

struct wk_shared {
	int ready;
	int armed;
	struct future_waker waker;
	pthread_t th;
};
struct wk_data {
	struct wk_shared *sh;
	int polls;
};
struct wk_output {
	int done;
};
FUTURE(wk_future, struct wk_data, struct wk_output);

static void *
wk_thread(void *arg)
{
	struct wk_shared *sh = arg;
	sleep_us(20000);
	__atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
	FUTURE_WAKER_WAKE(&sh->waker);
	return NULL;
}

static enum future_state
wk_task(struct future_context *ctx, struct future_notifier *n)
{
	struct wk_data *d = future_context_get_data(ctx);
	struct wk_output *o = future_context_get_output(ctx);
	d->polls++;
	if (__atomic_load_n(&d->sh->ready, __ATOMIC_ACQUIRE)) {
		o->done = 1;
		return FUTURE_STATE_COMPLETE;
	}
	if (n != NULL) {
		n->notifier_used = FUTURE_NOTIFIER_WAKER;
		if (!d->sh->armed) {
			d->sh->armed = 1;
			d->sh->waker = n->waker; /* copy: n dies with the call */
			if (pthread_create(&d->sh->th, NULL, wk_thread, d->sh))
				d->sh->armed = 2;
		}
	}
	return FUTURE_STATE_RUNNING;
}

static void
waker_wakes_runtime(void)
{
	struct runtime *rt = runtime_new();
	struct wk_shared sh;
	memset(&sh, 0, sizeof(sh));
	struct wk_future f;
	FUTURE_INIT(&f, wk_task);
	f.data.sh = &sh;
	f.data.polls = 0;
	f.output.done = 0;
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));
	CHECK_EQ(sh.armed, 1);
	CHECK_EQ(f.output.done, 1);
	CHECK(sh.waker.wake != NULL);
	if (sh.armed == 1)
		pthread_join(sh.th, NULL);
	runtime_delete(rt);
}

/* ---- threads-mover ops that take a while: the runtime sleeps ---- */

static int slow_open;

static void *
slow_memcpy(void *d, const void *s, size_t n, unsigned flags)
{
	(void)flags;
	while (!__atomic_load_n(&slow_open, __ATOMIC_ACQUIRE))
		sleep_us(100);
	return memcpy(d, s, n);
}

static void *
open_later(void *arg)
{
	(void)arg;
	sleep_us(30000);
	__atomic_store_n(&slow_open, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
runtime_sleeps_and_wakes(void)
{
	struct runtime *rt = runtime_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 8, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	data_mover_threads_set_memcpy_fn(dmt, slow_memcpy);
	__atomic_store_n(&slow_open, 0, __ATOMIC_SEQ_CST);
	char s[3][16] = { "one", "two", "three" }, d[3][16];
	memset(d, 0, sizeof(d));
	struct vdm_operation_future f[3];
	struct future *futs[3];
	for (int i = 0; i < 3; i++) {
		f[i] = vdm_memcpy(data_mover_threads_get_vdm(dmt), d[i], s[i],
			16, 0);
		futs[i] = FUTURE_AS_RUNNABLE(&f[i]);
	}
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, open_later, NULL), 0);
	runtime_wait_multiple(rt, futs, 3);
	pthread_join(th, NULL);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(FUTURE_STATE(&f[i]), FUTURE_STATE_COMPLETE);
		CHECK(memcmp(s[i], d[i], 16) == 0);
	}
	data_mover_threads_delete(dmt);
	runtime_delete(rt);
}

/* ---- several runtimes at once, and one runtime reused ---- */

struct rt_args {
	struct vdm *vdm;
	int errors;
};

static void *
rt_worker(void *arg)
{
	struct rt_args *a = arg;
	struct runtime *rt = runtime_new();
	size_t rounds = test_scale(200);
	for (size_t r = 0; r < rounds; r++) {
		unsigned char s[256], d[256];
		memset(s, (int)r, sizeof(s));
		memset(d, ~(int)r, sizeof(d));
		struct vdm_operation_future f = vdm_memcpy(a->vdm, d, s, 256, 0);
		runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));
		if (memcmp(s, d, 256) != 0 ||
			FUTURE_STATE(&f) != FUTURE_STATE_COMPLETE)
			a->errors++;
	}
	runtime_delete(rt);
	return NULL;
}

static void
runtimes_in_parallel(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 32, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	enum { T = 4 };
	pthread_t th[T];
	struct rt_args args[T];
	for (int i = 0; i < T; i++) {
		args[i].vdm = data_mover_threads_get_vdm(dmt);
		args[i].errors = 0;
		CHECK_EQ(pthread_create(&th[i], NULL, rt_worker, &args[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(args[i].errors, 0);
	}
	data_mover_threads_delete(dmt);
}

int
main(void)
{
	test_prog = "test_runtime";
	alarm(600);
	RUN(order_plain_sequence);
	RUN(order_async_first);
	RUN(order_properties_change);
	RUN(order_negative_null_and_complete);
	RUN(array_reordered_sync_threads);
	RUN(nfuts_zero_and_single);
	RUN(wait_all_strides);
	RUN(wait_all_vdm_futures);
	RUN(waker_wakes_runtime);
	RUN(runtime_sleeps_and_wakes);
	RUN(runtimes_in_parallel);
	TEST_DONE();
}
