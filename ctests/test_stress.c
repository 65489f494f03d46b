/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_stress.c -- many threads creating and polling operations at once on
 * one threads mover and one sync mover, thousands of operations in flight,
 * every byte verified; and a long run of tiny operations that checks no
 * completion is ever lost (a future that stays RUNNING for seconds after
 * its copy finished counts as lost instead of hanging the test).
 */
#include <libminiasync.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include "test.h"

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 131 + i * 17 + (i >> 8));
}

/* Polls without a notifier; gives up after `limit` seconds. */
static int
poll_with_deadline(struct vdm_operation_future *f, double limit)
{
	double t0 = now_s();
	unsigned spins = 0;
	while (future_poll(FUTURE_AS_RUNNABLE(f), NULL) !=
		FUTURE_STATE_COMPLETE) {
		if ((++spins & 63) == 0) {
			if (now_s() - t0 > limit)
				return 0;
			sched_yield();
		}
	}
	return 1;
}

/* ---- no completion is lost ---- */

struct lost_args {
	struct vdm *vdm;
	size_t iters;
	int lost;
	int bad_data;
};

static void *
lost_worker(void *arg)
{
	struct lost_args *a = arg;
	unsigned char s[16], d[16];
	for (size_t i = 0; i < a->iters; i++) {
		memset(s, (int)(i & 0xff), sizeof(s));
		memset(d, 0xff ^ (int)(i & 0xff), sizeof(d));
		struct vdm_operation_future f = vdm_memcpy(a->vdm, d, s, 16, 0);
		if (!poll_with_deadline(&f, 3.0)) {
			a->lost++;
			if (a->lost > 3)
				break;
			continue;
		}
		if (memcmp(s, d, 16) != 0)
			a->bad_data++;
	}
	return NULL;
}

static void
threads_no_lost_completion(void)
{
	enum future_notifier_type kinds[] = { FUTURE_NOTIFIER_NONE,
		FUTURE_NOTIFIER_POLLER };
	for (int k = 0; k < 2; k++) {
		struct data_mover_threads *dmt =
			data_mover_threads_new(1, 64, kinds[k]);
		CHECK(dmt != NULL);
		if (dmt == NULL)
			return;
		enum { T = 4 };
		pthread_t th[T];
		struct lost_args args[T];
		for (int i = 0; i < T; i++) {
			args[i].vdm = data_mover_threads_get_vdm(dmt);
			args[i].iters = test_scale(40000);
			args[i].lost = 0;
			args[i].bad_data = 0;
			CHECK_EQ(pthread_create(&th[i], NULL, lost_worker,
				&args[i]), 0);
		}
		for (int i = 0; i < T; i++) {
			pthread_join(th[i], NULL);
			CHECK_EQ(args[i].lost, 0);
			CHECK_EQ(args[i].bad_data, 0);
		}
		data_mover_threads_delete(dmt);
	}
}

/* ---- many threads, two shared movers, mixed ops and wait styles ---- */

static struct vdm *shared_threads_vdm;
static struct vdm *shared_sync_vdm;

enum { BATCH = 48, OPSZ = 200 };

struct mix_args {
	unsigned id;
	size_t rounds;
	int errors;
};

static void *
mix_worker(void *arg)
{
	struct mix_args *a = arg;
	struct runtime *rt = runtime_new();
	unsigned char (*src)[OPSZ] = malloc(BATCH * OPSZ);
	unsigned char (*dst)[OPSZ + 8] = malloc(BATCH * (OPSZ + 8));
	struct vdm_operation_future *f = malloc(BATCH * sizeof(*f));
	struct future *futs[BATCH];
	if (!rt || !src || !dst || !f) {
		a->errors++;
		goto out;
	}
	for (size_t r = 0; r < a->rounds; r++) {
		unsigned seed = a->id * 1000003u + (unsigned)r * 7919u;
		for (int i = 0; i < BATCH; i++) {
			struct vdm *vdm = ((i + (int)r) % 3 == 0) ?
				shared_sync_vdm : shared_threads_vdm;
			fill_pattern(src[i], OPSZ, seed + (unsigned)i);
			memset(dst[i], 0, OPSZ + 8);
			switch ((i + (int)a->id) % 3) {
			case 0:
				f[i] = vdm_memcpy(vdm, dst[i], src[i], OPSZ, 0);
				break;
			case 1:
				memcpy(dst[i], src[i], OPSZ);
				f[i] = vdm_memmove(vdm, dst[i] + 8, dst[i],
					OPSZ, 0);
				break;
			default:
				f[i] = vdm_memset(vdm, dst[i], src[i][0], OPSZ,
					0);
			}
			if (f[i].output.result != VDM_SUCCESS ||
				FUTURE_STATE(&f[i]) != FUTURE_STATE_IDLE)
				a->errors++;
			futs[i] = FUTURE_AS_RUNNABLE(&f[i]);
		}
		switch (r % 4) {
		case 0:
			runtime_wait_multiple(rt, futs, BATCH);
			break;
		case 1:
			runtime_wait_all(rt, FUTURE_AS_RUNNABLE(&f[0]), BATCH);
			break;
		case 2:
			for (int i = BATCH - 1; i >= 0; i--)
				FUTURE_BUSY_POLL(&f[i]);
			break;
		default: {
			int done = 0;
			while (done < BATCH) {
				done = 0;
				for (int i = 0; i < BATCH; i++)
					if (future_poll(futs[i], NULL) ==
						FUTURE_STATE_COMPLETE)
						done++;
			}
		}
		}
		for (int i = 0; i < BATCH; i++) {
			int ok = FUTURE_STATE(&f[i]) == FUTURE_STATE_COMPLETE &&
				f[i].output.result == VDM_SUCCESS;
			switch ((i + (int)a->id) % 3) {
			case 0:
				ok = ok && memcmp(dst[i], src[i], OPSZ) == 0 &&
					f[i].output.output.memcpy.dest ==
						dst[i];
				break;
			case 1:
				ok = ok && memcmp(dst[i] + 8, src[i], OPSZ) ==
					0 && memcmp(dst[i], src[i], 8) == 0;
				break;
			default:
				ok = ok && all_bytes(dst[i], OPSZ, src[i][0]) &&
					all_bytes(dst[i] + OPSZ, 8, 0);
			}
			if (!ok)
				a->errors++;
		}
	}
out:
	free(src);
	free(dst);
	free(f);
	runtime_delete(rt);
	return NULL;
}

static void
many_threads_two_movers(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(3, 128, FUTURE_NOTIFIER_WAKER);
	struct data_mover_sync *dms = data_mover_sync_new();
	CHECK(dmt && dms);
	if (!dmt || !dms)
		return;
	shared_threads_vdm = data_mover_threads_get_vdm(dmt);
	shared_sync_vdm = data_mover_sync_get_vdm(dms);
	enum { T = 6 };
	pthread_t th[T];
	struct mix_args args[T];
	for (int i = 0; i < T; i++) {
		args[i].id = (unsigned)i;
		args[i].rounds = test_scale(60);
		args[i].errors = 0;
		CHECK_EQ(pthread_create(&th[i], NULL, mix_worker, &args[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(args[i].errors, 0);
	}
	data_mover_threads_delete(dmt);
	data_mover_sync_delete(dms);
}

/* ---- thousands in flight ---- */

struct flight_args {
	struct vdm *vdm;
	size_t n;
	unsigned seed;
	int errors;
};

static void *
flight_worker(void *arg)
{
	struct flight_args *a = arg;
	size_t n = a->n;
	unsigned char *src = malloc(n * 64), *dst = calloc(n, 64);
	struct vdm_operation_future *f = malloc(n * sizeof(*f));
	struct future **futs = malloc(n * sizeof(*futs));
	struct runtime *rt = runtime_new();
	if (!src || !dst || !f || !futs || !rt) {
		a->errors++;
		goto out;
	}
	fill_pattern(src, n * 64, a->seed);
	for (size_t i = 0; i < n; i++) {
		f[i] = vdm_memcpy(a->vdm, dst + i * 64, src + i * 64, 64, 0);
		if (FUTURE_STATE(&f[i]) != FUTURE_STATE_IDLE)
			a->errors++;
		futs[i] = FUTURE_AS_RUNNABLE(&f[i]);
	}
	/* start as many as fit; the rest stay IDLE until the runtime */
	for (size_t i = 0; i < n; i += 3)
		future_poll(futs[i], NULL);
	runtime_wait_multiple(rt, futs, n);
	for (size_t i = 0; i < n; i++) {
		if (FUTURE_STATE(&f[i]) != FUTURE_STATE_COMPLETE ||
			f[i].output.result != VDM_SUCCESS ||
			f[i].output.output.memcpy.dest != dst + i * 64)
			a->errors++;
	}
	if (memcmp(src, dst, n * 64) != 0)
		a->errors++;
out:
	free(src);
	free(dst);
	free(f);
	free(futs);
	runtime_delete(rt);
	return NULL;
}

static void
thousands_in_flight(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 64, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct flight_args one = { data_mover_threads_get_vdm(dmt),
		test_scale(8192), 1, 0 };
	flight_worker(&one);
	CHECK_EQ(one.errors, 0);

	enum { T = 4 };
	pthread_t th[T];
	struct flight_args args[T];
	for (int i = 0; i < T; i++) {
		args[i].vdm = data_mover_threads_get_vdm(dmt);
		args[i].n = test_scale(2048);
		args[i].seed = (unsigned)i + 10;
		args[i].errors = 0;
		CHECK_EQ(pthread_create(&th[i], NULL, flight_worker, &args[i]),
			0);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(args[i].errors, 0);
	}
	data_mover_threads_delete(dmt);

	/* the same on a sync mover: thousands outstanding, any order */
	struct data_mover_sync *dms = data_mover_sync_new();
	struct flight_args s = { data_mover_sync_get_vdm(dms),
		test_scale(10000), 3, 0 };
	flight_worker(&s);
	CHECK_EQ(s.errors, 0);
	data_mover_sync_delete(dms);
}

/* ---- one sync mover, many threads creating and completing at once ---- */

struct sync_args {
	struct vdm *vdm;
	unsigned id;
	size_t rounds;
	int errors;
};

static void *
sync_worker(void *arg)
{
	struct sync_args *a = arg;
	enum { K = 40 };
	unsigned char src[K][24], dst[K][24];
	struct vdm_operation_future f[K];
	for (size_t r = 0; r < a->rounds; r++) {
		for (int i = 0; i < K; i++) {
			fill_pattern(src[i], 24, a->id * 77 + (unsigned)(r + i));
			memset(dst[i], 0, 24);
			f[i] = vdm_memcpy(a->vdm, dst[i], src[i], 24, 0);
			if (f[i].data.data == NULL)
				a->errors++;
		}
		for (int i = K - 1; i >= 0; i--) {
			if (future_poll(FUTURE_AS_RUNNABLE(&f[i]), NULL) !=
				FUTURE_STATE_COMPLETE)
				a->errors++;
			if (memcmp(src[i], dst[i], 24) != 0)
				a->errors++;
		}
	}
	return NULL;
}

static void
sync_mover_many_threads(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	enum { T = 8 };
	pthread_t th[T];
	struct sync_args args[T];
	for (int i = 0; i < T; i++) {
		args[i].vdm = data_mover_sync_get_vdm(dms);
		args[i].id = (unsigned)i;
		args[i].rounds = test_scale(500);
		args[i].errors = 0;
		CHECK_EQ(pthread_create(&th[i], NULL, sync_worker, &args[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(args[i].errors, 0);
	}
	data_mover_sync_delete(dms);
}

/* ---- movers created and deleted from many threads ---- */

static void *
churn_worker(void *arg)
{
	int *errors = arg;
	size_t n = test_scale(30);
	for (size_t i = 0; i < n; i++) {
		struct data_mover_threads *dmt = data_mover_threads_new(1 + i % 3,
			4, (enum future_notifier_type)(i % 3));
		struct data_mover_sync *dms = data_mover_sync_new();
		if (!dmt || !dms) {
			(*errors)++;
			data_mover_threads_delete(dmt);
			data_mover_sync_delete(dms);
			continue;
		}
		char s[32] = "churning movers", d1[32] = { 0 }, d2[32] = { 0 };
		struct vdm_operation_future a =
			vdm_memcpy(data_mover_threads_get_vdm(dmt), d1, s, 32, 0);
		struct vdm_operation_future b =
			vdm_memcpy(data_mover_sync_get_vdm(dms), d2, s, 32, 0);
		FUTURE_BUSY_POLL(&a);
		FUTURE_BUSY_POLL(&b);
		if (memcmp(s, d1, 32) || memcmp(s, d2, 32))
			(*errors)++;
		data_mover_threads_delete(dmt);
		data_mover_sync_delete(dms);
	}
	return NULL;
}

static void
movers_churn(void)
{
	enum { T = 4 };
	pthread_t th[T];
	int errors[T] = { 0 };
	for (int i = 0; i < T; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, churn_worker, &errors[i]),
			0);
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(errors[i], 0);
	}
}

/*
 * Without MINIASYNC_MAX_OPS the bound is still finite (upstream's tests
 * create un-polled futures until one is OOM), and freeing one op makes
 * room again.
 */
static void
default_bound_is_finite(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 8, FUTURE_NOTIFIER_NONE);
	CHECK(dms && dmt);
	if (!dms || !dmt)
		return;
	struct vdm *vdms[2] = { data_mover_sync_get_vdm(dms),
		data_mover_threads_get_vdm(dmt) };
	size_t limit = (size_t)1 << 21;
	struct vdm_operation_future *f = malloc(limit * sizeof(*f));
	CHECK(f != NULL);
	if (f == NULL)
		return;
	static unsigned char byte[2];
	for (int m = 0; m < 2; m++) {
		size_t n = 0;
		for (; n < limit; n++) {
			f[n] = vdm_memset(vdms[m], &byte[m], 1 + m, 1, 0);
			if (FUTURE_STATE(&f[n]) == FUTURE_STATE_COMPLETE)
				break;
		}
		CHECK(n > 1000 && n < limit);
		if (n == limit)
			n--;
		CHECK_EQ(f[n].output.result, VDM_ERROR_OUT_OF_MEMORY);
		FUTURE_BUSY_POLL(&f[0]);
		f[0] = vdm_memset(vdms[m], &byte[m], 1 + m, 1, 0);
		CHECK_EQ(FUTURE_STATE(&f[0]), FUTURE_STATE_IDLE);
		for (size_t i = 0; i < n; i++)
			FUTURE_BUSY_POLL(&f[i]);
		CHECK_EQ(byte[m], 1 + m);
	}
	free(f);
	data_mover_threads_delete(dmt);
	data_mover_sync_delete(dms);
}

int
main(void)
{
	unsetenv("MINIASYNC_MAX_OPS"); /* the default bound */
	test_prog = "test_stress";
	alarm(900);
	RUN(threads_no_lost_completion);
	RUN(many_threads_two_movers);
	RUN(thousands_in_flight);
	RUN(sync_mover_many_threads);
	RUN(movers_churn);
	RUN(default_bound_is_finite);
	TEST_DONE();
}
