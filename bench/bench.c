/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench.c -- `make bench`: one Markdown table of speed ratios, each measured
 * against its baseline in the same process and in the same rounds.
 *
 * Every row compares a baseline (plain memcpy, a hand-written poll loop, the
 * sync mover) with our code doing the same work. A round times the baseline
 * and ours back to back (the order alternates from round to round) and
 * yields one ratio, baseline time / our time, so higher is better and 1.0
 * means "as fast as the baseline". A row reports the median ratio over
 * ROUNDS rounds with the lowest and highest ratio seen, next to the goal
 * and to the figure upstream libminiasync 0.2.1 got on the same benchmark.
 * Absolute medians follow in a second table, for context only.
 *
 * BENCH_ONLY=word runs only the row groups whose name contains it (see
 * GROUPS[]); BENCH_VERBOSE=1 prints every round's times.
 *
 * Benchmarks report; they never fail: the program exits 0 whatever the
 * numbers are, and a mover that cannot be created turns its rows into
 * "n/a".
 *
 * Adding rows: write a group function (see "Row groups" below) that sets up
 * what it needs, calls measure_row() once per row with two round functions,
 * and tears down; then list it in GROUPS[]. The DSA-emulator group is meant
 * to go there (its mover lives in libminiasync-vdm-dml, linked through
 * BENCH_LDLIBS; see the comment at GROUPS[]).
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <libminiasync.h>

/* Rounds per row; the reported figure is the median ratio. */
#define ROUNDS 11
#define MAX_ROWS 32

/* ------------------------------------------------------------------------
 * Timing and baselines
 */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * The plain memcpy every row is compared with: glibc's memcpy, called
 * through a volatile pointer so the compiler can neither inline it into a
 * few moves nor drop it (the library's own memcpy is a real call too).
 */
static void *(*volatile plain_memcpy)(void *, const void *, size_t) = memcpy;

/* Tells the compiler the buffers were read and written: nothing is elided. */
#define CLOBBER(_dst, _src) \
	__asm__ __volatile__("" : : "r"(_dst), "r"(_src) : "memory")

static void *
xalloc(size_t size)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, size) != 0)
		return NULL;
	/* pre-fault every page and make the source non-zero */
	memset(p, 0x5a, size);
	return p;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* BENCH_VERBOSE=1 in the environment: every round's times on stderr. */
static int verbose;

/* Results that came back wrong (counted, reported, never fatal). */
static unsigned long bad_results;

/* ------------------------------------------------------------------------
 * Rows
 */

/*
 * One round of one side of a row: does the work and returns the time of
 * one unit of it in seconds (per copy, per poll, per operation...).
 */
typedef double (*round_fn)(void *arg);

struct row {
	const char *what;	/* the row's name in the table */
	const char *base_name;	/* the baseline, for the absolute table */
	const char *ours_name;
	const char *unit;	/* unit of the absolute medians */
	double unit_scale;	/* seconds -> unit */
	double goal;		/* ratio goal (>=); < 0: a reference row */
	double upstream;	/* upstream 0.2.1's ratio */
	int measured;		/* 0: n/a (set-up failed) */
	double ratio_med, ratio_min, ratio_max;
	double base_med, ours_med;
};

static struct row rows[MAX_ROWS];
static int nrows;

/*
 * Measures a row: one warm-up round of each side, then ROUNDS rounds, each
 * timing both sides back to back (alternating which goes first) and giving
 * one ratio base/ours. `base` or `ours` NULL records the row as n/a.
 */
static void
measure_row(struct row spec, round_fn base, round_fn ours, void *arg)
{
	double ratio[ROUNDS], tb[ROUNDS], to[ROUNDS];
	struct row *r;

	if (nrows == MAX_ROWS)
		return;
	r = &rows[nrows++];
	*r = spec;
	r->measured = 0;
	if (base == NULL || ours == NULL)
		return;

	(void)base(arg);
	(void)ours(arg);
	for (int i = 0; i < ROUNDS; i++) {
		if (i % 2 == 0) {
			tb[i] = base(arg);
			to[i] = ours(arg);
		} else {
			to[i] = ours(arg);
			tb[i] = base(arg);
		}
		ratio[i] = tb[i] / to[i];
		if (verbose)
			fprintf(stderr, "  row %d round %d: base %.4g ours %.4g "
				"ratio %.3f\n", nrows, i, tb[i], to[i],
				ratio[i]);
	}
	r->ratio_min = r->ratio_max = ratio[0];
	for (int i = 1; i < ROUNDS; i++) {
		if (ratio[i] < r->ratio_min)
			r->ratio_min = ratio[i];
		if (ratio[i] > r->ratio_max)
			r->ratio_max = ratio[i];
	}
	r->ratio_med = median(ratio, ROUNDS);
	r->base_med = median(tb, ROUNDS);
	r->ours_med = median(to, ROUNDS);
	r->measured = 1;
}

/* ------------------------------------------------------------------------
 * Row group: the sync mover against plain memcpy
 */

struct copy_arg {
	struct vdm *vdm;
	char *dst;
	char *src;
	size_t n;
	long iters;
};

static double
round_plain_copy(void *p)
{
	struct copy_arg *a = p;
	double t0 = now();

	for (long i = 0; i < a->iters; i++) {
		plain_memcpy(a->dst, a->src, a->n);
		CLOBBER(a->dst, a->src);
	}
	return (now() - t0) / (double)a->iters;
}

/* Create a sync vdm_memcpy future and busy-poll it, as a user would. */
static double
round_vdm_copy(void *p)
{
	struct copy_arg *a = p;
	unsigned long bad = 0;
	double t0 = now();

	for (long i = 0; i < a->iters; i++) {
		struct vdm_operation_future f =
			vdm_memcpy(a->vdm, a->dst, a->src, a->n, 0);
		FUTURE_BUSY_POLL(&f);
		bad += FUTURE_OUTPUT(&f)->result != VDM_SUCCESS;
		CLOBBER(a->dst, a->src);
	}
	double t = now() - t0;
	bad_results += bad;
	return t / (double)a->iters;
}

static void
group_sync(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct copy_arg a = { NULL, xalloc(4096), xalloc(4096), 0, 0 };
	int ok = dms != NULL && a.dst != NULL && a.src != NULL;

	if (ok)
		a.vdm = data_mover_sync_get_vdm(dms);

	a.n = 64;
	a.iters = 4000000;
	measure_row((struct row){
			.what = "sync `vdm_memcpy` 64 B: memcpy / (create + busy-poll)",
			.base_name = "plain memcpy 64 B",
			.ours_name = "vdm_memcpy + FUTURE_BUSY_POLL, sync mover",
			.unit = "ns/copy", .unit_scale = 1e9,
			.goal = 0.25, .upstream = 0.044 },
		ok ? round_plain_copy : NULL, round_vdm_copy, &a);

	a.n = 4096;
	a.iters = 400000;
	measure_row((struct row){
			.what = "sync `vdm_memcpy` 4 KiB: memcpy / (create + busy-poll)",
			.base_name = "plain memcpy 4 KiB",
			.ours_name = "vdm_memcpy + FUTURE_BUSY_POLL, sync mover",
			.unit = "ns/copy", .unit_scale = 1e9,
			.goal = 0.9, .upstream = 0.49 },
		ok ? round_plain_copy : NULL, round_vdm_copy, &a);

	data_mover_sync_delete(dms);
	free(a.dst);
	free(a.src);
}

/* ------------------------------------------------------------------------
 * Row group: the runtime against a hand-written poll loop
 */

#define NFUTS 1000
#define POLLS_EACH 10
#define WAIT_REPS 300

struct counted_data {
	unsigned polls;
	unsigned target;
};

FUTURE(counted_future, struct counted_data, unsigned);

/* RUNNING until its POLLS_EACH-th poll, then COMPLETE. Uses no notifier. */
static enum future_state
counted_task(struct future_context *ctx, struct future_notifier *notifier)
{
	struct counted_data *d = future_context_get_data(ctx);

	(void)notifier;
	if (++d->polls < d->target)
		return FUTURE_STATE_RUNNING;
	*(unsigned *)future_context_get_output(ctx) = d->polls;
	return FUTURE_STATE_COMPLETE;
}

struct wait_arg {
	struct runtime *rt;
	struct counted_future *futs;
	struct future **ptrs;
};

static void
counted_init(struct wait_arg *a)
{
	for (size_t i = 0; i < NFUTS; i++) {
		struct counted_future *f = &a->futs[i];

		f->data.polls = 0;
		f->data.target = POLLS_EACH;
		f->output = 0;
		FUTURE_INIT(f, counted_task);
		a->ptrs[i] = FUTURE_AS_RUNNABLE(f);
	}
}

static void
counted_check(struct wait_arg *a)
{
	for (size_t i = 0; i < NFUTS; i++)
		if (a->futs[i].output != POLLS_EACH ||
			FUTURE_STATE(&a->futs[i]) != FUTURE_STATE_COMPLETE)
			bad_results++;
}

/* The baseline: poll every future that is not complete until none is. */
static __attribute__((noinline)) void
hand_wait(struct future **futs, size_t n)
{
	size_t pending;

	do {
		pending = 0;
		for (size_t i = 0; i < n; i++)
			if (future_poll(futs[i], NULL) !=
				FUTURE_STATE_COMPLETE)
				pending++;
	} while (pending != 0);
}

static double
round_hand_wait(void *p)
{
	struct wait_arg *a = p;
	double t = 0;

	for (int r = 0; r < WAIT_REPS; r++) {
		counted_init(a);
		double t0 = now();
		hand_wait(a->ptrs, NFUTS);
		t += now() - t0;
		counted_check(a);
	}
	return t / ((double)WAIT_REPS * NFUTS * POLLS_EACH);
}

static double
round_runtime_wait(void *p)
{
	struct wait_arg *a = p;
	double t = 0;

	for (int r = 0; r < WAIT_REPS; r++) {
		counted_init(a);
		double t0 = now();
		runtime_wait_multiple(a->rt, a->ptrs, NFUTS);
		t += now() - t0;
		counted_check(a);
	}
	return t / ((double)WAIT_REPS * NFUTS * POLLS_EACH);
}

static void
group_runtime(void)
{
	struct wait_arg a = {
		runtime_new(),
		calloc(NFUTS, sizeof(struct counted_future)),
		calloc(NFUTS, sizeof(struct future *)),
	};
	int ok = a.rt != NULL && a.futs != NULL && a.ptrs != NULL;

	measure_row((struct row){
			.what = "1000 futures x 10 polls: hand poll loop / `runtime_wait_multiple`",
			.base_name = "hand-written future_poll loop",
			.ours_name = "runtime_wait_multiple",
			.unit = "ns/poll", .unit_scale = 1e9,
			.goal = 0.5, .upstream = 0.080 },
		ok ? round_hand_wait : NULL, round_runtime_wait, &a);

	runtime_delete(a.rt);
	free(a.futs);
	free(a.ptrs);
}

/* ------------------------------------------------------------------------
 * Row group: the threads mover (against the sync mover and plain memcpy)
 */

#define BATCH_OPS 256
#define BATCH_SIZE 4096
#define BATCHES 100
#define BIG (64UL << 20)
#define BIG_REPS 4

struct batch_arg {
	struct runtime *rt;
	struct vdm *vdm;
	char *dst;
	char *src;
	size_t size;		/* bytes per operation */
	size_t nops;		/* operations in flight */
	int batches;
	struct vdm_operation_future *futs;
	struct future **ptrs;
};

/* `batches` times: create `nops` copies, wait for all of them. */
static double
round_batches(struct batch_arg *a, struct vdm *vdm)
{
	unsigned long bad = 0;
	double t0 = now();

	for (int b = 0; b < a->batches; b++) {
		for (size_t i = 0; i < a->nops; i++) {
			a->futs[i] = vdm_memcpy(vdm, a->dst + i * a->size,
				a->src + i * a->size, a->size, 0);
			a->ptrs[i] = FUTURE_AS_RUNNABLE(&a->futs[i]);
		}
		runtime_wait_multiple(a->rt, a->ptrs, a->nops);
		for (size_t i = 0; i < a->nops; i++)
			bad += FUTURE_OUTPUT(&a->futs[i])->result !=
				VDM_SUCCESS;
	}
	double t = now() - t0;
	bad_results += bad;
	return t / ((double)a->batches * (double)a->nops);
}

/*
 * Two bare pthreads that each copy one half of the 64 MiB when released:
 * what the machine can do with two threads and no library at all, the
 * ceiling for the 2 x 32 MiB row.
 */
struct bare_pair {
	pthread_t thread[2];
	pthread_barrier_t start;
	pthread_barrier_t done;
	char *dst;
	char *src;
	int stop;
	int running;
};

struct bare_half {
	struct bare_pair *pair;
	size_t half;
};

static struct bare_half bare_halves[2];

static void *
bare_worker(void *p)
{
	struct bare_half *h = p;
	struct bare_pair *b = h->pair;

	for (;;) {
		pthread_barrier_wait(&b->start);
		if (b->stop)
			return NULL;
		plain_memcpy(b->dst + h->half * (BIG / 2),
			b->src + h->half * (BIG / 2), BIG / 2);
		pthread_barrier_wait(&b->done);
	}
}

static int
bare_start(struct bare_pair *b, char *dst, char *src)
{
	b->dst = dst;
	b->src = src;
	b->stop = 0;
	b->running = 0;
	if (pthread_barrier_init(&b->start, NULL, 3) != 0)
		return -1;
	if (pthread_barrier_init(&b->done, NULL, 3) != 0) {
		pthread_barrier_destroy(&b->start);
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		bare_halves[i].pair = b;
		bare_halves[i].half = (size_t)i;
		if (pthread_create(&b->thread[i], NULL, bare_worker,
				&bare_halves[i]) != 0) {
			/* a thread that cannot start: stop the one that did */
			if (i == 1) {
				b->stop = 1;
				pthread_barrier_wait(&b->start);
				pthread_join(b->thread[0], NULL);
			}
			return -1;
		}
	}
	b->running = 1;
	return 0;
}

static void
bare_stop(struct bare_pair *b)
{
	if (!b->running)
		return;
	b->stop = 1;
	pthread_barrier_wait(&b->start);
	for (int i = 0; i < 2; i++)
		pthread_join(b->thread[i], NULL);
	pthread_barrier_destroy(&b->start);
	pthread_barrier_destroy(&b->done);
	b->running = 0;
}

struct threads_arg {
	struct batch_arg small;	/* 256 x 4 KiB */
	struct vdm *sync_vdm;
	char *big_dst;
	char *big_src;
	struct vdm_operation_future big_futs[2];
	struct bare_pair bare;
};

static double
round_small_sync(void *p)
{
	struct threads_arg *a = p;

	return round_batches(&a->small, a->sync_vdm);
}

static double
round_small_threads(void *p)
{
	struct threads_arg *a = p;

	return round_batches(&a->small, a->small.vdm);
}

static double
round_big_plain(void *p)
{
	struct threads_arg *a = p;
	double t0 = now();

	for (int r = 0; r < BIG_REPS; r++) {
		plain_memcpy(a->big_dst, a->big_src, BIG);
		CLOBBER(a->big_dst, a->big_src);
	}
	return (now() - t0) / BIG_REPS;
}

/* Two halves of the same 64 MiB copy in flight at once, one per worker. */
static double
round_big_threads(void *p)
{
	struct threads_arg *a = p;
	struct future *ptrs[2];
	double t0 = now();

	for (int r = 0; r < BIG_REPS; r++) {
		for (int h = 0; h < 2; h++) {
			a->big_futs[h] = vdm_memcpy(a->small.vdm,
				a->big_dst + h * (BIG / 2),
				a->big_src + h * (BIG / 2), BIG / 2, 0);
			ptrs[h] = FUTURE_AS_RUNNABLE(&a->big_futs[h]);
		}
		runtime_wait_multiple(a->small.rt, ptrs, 2);
		CLOBBER(a->big_dst, a->big_src);
	}
	double t = now() - t0;
	for (int h = 0; h < 2; h++)
		bad_results += FUTURE_OUTPUT(&a->big_futs[h])->result !=
			VDM_SUCCESS;
	return t / BIG_REPS;
}

static double
round_big_bare(void *p)
{
	struct threads_arg *a = p;
	double t0 = now();

	for (int r = 0; r < BIG_REPS; r++) {
		pthread_barrier_wait(&a->bare.start);
		pthread_barrier_wait(&a->bare.done);
		CLOBBER(a->big_dst, a->big_src);
	}
	return (now() - t0) / BIG_REPS;
}

static void
group_threads(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 256, FUTURE_NOTIFIER_WAKER);
	struct data_mover_sync *dms = data_mover_sync_new();
	struct threads_arg a;
	int ok;

	memset(&a, 0, sizeof(a));
	a.small.rt = runtime_new();
	a.small.size = BATCH_SIZE;
	a.small.nops = BATCH_OPS;
	a.small.batches = BATCHES;
	a.small.dst = xalloc(BATCH_OPS * BATCH_SIZE);
	a.small.src = xalloc(BATCH_OPS * BATCH_SIZE);
	a.small.futs = calloc(BATCH_OPS, sizeof(*a.small.futs));
	a.small.ptrs = calloc(BATCH_OPS, sizeof(*a.small.ptrs));
	a.big_dst = xalloc(BIG);
	a.big_src = xalloc(BIG);
	ok = dmt != NULL && dms != NULL && a.small.rt != NULL &&
		a.small.dst != NULL && a.small.src != NULL &&
		a.small.futs != NULL && a.small.ptrs != NULL;
	if (ok) {
		a.small.vdm = data_mover_threads_get_vdm(dmt);
		a.sync_vdm = data_mover_sync_get_vdm(dms);
	} else if (dmt == NULL) {
		fprintf(stderr, "bench: data_mover_threads_new failed\n");
	}

	measure_row((struct row){
			.what = "threads mover, 256 x 4 KiB in flight: ops/s vs sync mover",
			.base_name = "sync mover, runtime_wait_multiple",
			.ours_name = "threads mover (2 workers, WAKER)",
			.unit = "ns/op", .unit_scale = 1e9,
			.goal = 0.8, .upstream = 0.44 },
		ok ? round_small_sync : NULL, round_small_threads, &a);

	ok = ok && a.big_dst != NULL && a.big_src != NULL;
	measure_row((struct row){
			.what = "threads mover, 2 x 32 MiB in flight: one 64 MiB memcpy / ours",
			.base_name = "plain memcpy 64 MiB",
			.ours_name = "threads mover, 2 x 32 MiB",
			.unit = "ms/64 MiB", .unit_scale = 1e3,
			.goal = 1.7, .upstream = 1.49 },
		ok ? round_big_plain : NULL, round_big_threads, &a);

	/* what two threads can get out of this machine at all */
	int bare_ok = a.big_dst != NULL && a.big_src != NULL &&
		bare_start(&a.bare, a.big_dst, a.big_src) == 0;
	measure_row((struct row){
			.what = "reference, no library: one 64 MiB memcpy / 2 bare pthreads x 32 MiB (the machine's ceiling for the row above)",
			.base_name = "plain memcpy 64 MiB",
			.ours_name = "2 bare pthreads x 32 MiB",
			.unit = "ms/64 MiB", .unit_scale = 1e3,
			.goal = -1, .upstream = -1 },
		bare_ok ? round_big_plain : NULL, round_big_bare, &a);
	bare_stop(&a.bare);

	data_mover_threads_delete(dmt);
	data_mover_sync_delete(dms);
	runtime_delete(a.small.rt);
	free(a.small.dst);
	free(a.small.src);
	free(a.small.futs);
	free(a.small.ptrs);
	free(a.big_dst);
	free(a.big_src);
}

/* ------------------------------------------------------------------------
 * Row group: many small operations from several polling threads on an
 * oversubscribed CPU (issue 12: pmemstream's concurrent_async_wait), the
 * threads mover against an upstream-style mover that signals a condition
 * variable on every push
 *
 * The baseline is a complete little mover written here, not a mode of the
 * library: the product ships no benchmark-only knob, and this way the
 * baseline is exactly upstream's design (a mutex-protected ring, one
 * pthread_cond_signal per push, malloc per operation, a WAKER called after
 * completion), whatever our threads mover becomes.
 */

#define NP_WORKERS 4
#define NP_RING 256
#define NP_POLLERS 4
#define NP_OPS 4		/* operations in flight per polling thread */
#define NP_SIZE 1024
#define NP_ITERS 500		/* batches per polling thread per round */

struct np_mover;

struct np_op {
	struct np_mover *m;
	struct vdm_operation op;
	struct future_waker waker;
	int use_waker;
	int done;		/* atomic: the copy is complete */
	int busy;		/* atomic: a worker still holds the record */
};

struct np_mover {
	struct vdm vdm;		/* first: the vdm is the mover */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct np_op *ring[NP_RING];
	unsigned head, tail;	/* under lock */
	int stop;		/* under lock */
	pthread_t workers[NP_WORKERS];
	int nworkers;
};

static void *
np_op_new(struct vdm *vdm, enum vdm_operation_type type)
{
	struct np_op *op = calloc(1, sizeof(*op));

	(void)type;
	if (op != NULL)
		op->m = (struct np_mover *)vdm;
	return op;
}

static int
np_op_start(void *data, const struct vdm_operation *operation,
	struct future_notifier *n)
{
	struct np_op *op = data;
	struct np_mover *m = op->m;

	op->op = *operation;
	op->use_waker = n != NULL;
	if (n != NULL)
		op->waker = n->waker;
	__atomic_store_n(&op->busy, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&m->lock);
	if (m->tail - m->head == NP_RING) {
		pthread_mutex_unlock(&m->lock);
		__atomic_store_n(&op->busy, 0, __ATOMIC_RELAXED);
		if (n != NULL)
			n->notifier_used = FUTURE_NOTIFIER_NONE;
		return 1;	/* full: poll again */
	}
	if (n != NULL)
		n->notifier_used = FUTURE_NOTIFIER_WAKER;
	m->ring[m->tail++ % NP_RING] = op;
	pthread_cond_signal(&m->cond);	/* on every push, as upstream */
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static enum future_state
np_op_check(void *data, const struct vdm_operation *operation)
{
	struct np_op *op = data;

	(void)operation;
	return __atomic_load_n(&op->done, __ATOMIC_ACQUIRE) ?
		FUTURE_STATE_COMPLETE : FUTURE_STATE_RUNNING;
}

static void
np_op_delete(void *data, const struct vdm_operation *operation,
	struct vdm_operation_output *output)
{
	struct np_op *op = data;

	while (__atomic_load_n(&op->busy, __ATOMIC_ACQUIRE))
		sched_yield();
	output->type = operation->type;
	output->result = VDM_SUCCESS;
	output->output.memcpy.dest = operation->data.memcpy.dest;
	free(op);
}

static int
np_has_property(void *future, enum future_property property)
{
	(void)future;
	return property == FUTURE_PROPERTY_ASYNC;
}

static void *
np_worker(void *p)
{
	struct np_mover *m = p;

	for (;;) {
		pthread_mutex_lock(&m->lock);
		while (m->head == m->tail && !m->stop)
			pthread_cond_wait(&m->cond, &m->lock);
		if (m->head == m->tail) {
			pthread_mutex_unlock(&m->lock);
			return NULL;
		}
		struct np_op *op = m->ring[m->head++ % NP_RING];
		pthread_mutex_unlock(&m->lock);

		memcpy(op->op.data.memcpy.dest, op->op.data.memcpy.src,
			op->op.data.memcpy.n);
		__atomic_store_n(&op->done, 1, __ATOMIC_RELEASE);
		if (op->use_waker && op->waker.wake != NULL)
			op->waker.wake(op->waker.data);
		__atomic_store_n(&op->busy, 0, __ATOMIC_RELEASE);
	}
}

static void np_delete(struct np_mover *m);

static struct np_mover *
np_new(void)
{
	struct np_mover *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->vdm.op_new = np_op_new;
	m->vdm.op_delete = np_op_delete;
	m->vdm.op_start = np_op_start;
	m->vdm.op_check = np_op_check;
	m->vdm.has_property = np_has_property;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	for (int i = 0; i < NP_WORKERS; i++) {
		if (pthread_create(&m->workers[i], NULL, np_worker, m) != 0) {
			np_delete(m);
			return NULL;
		}
		m->nworkers++;
	}
	return m;
}

static void
np_delete(struct np_mover *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = 1;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	for (int i = 0; i < m->nworkers; i++)
		pthread_join(m->workers[i], NULL);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

struct np_poller {
	struct vdm *vdm;
	struct runtime *rt;
	char *dst;
	char *src;
	pthread_barrier_t *go;
	unsigned long bad;
};

/* One polling thread: NP_ITERS times, NP_OPS copies, then wait for them. */
static void *
np_poll_thread(void *p)
{
	struct np_poller *t = p;
	struct vdm_operation_future futs[NP_OPS];
	struct future *ptrs[NP_OPS];

	pthread_barrier_wait(t->go);
	for (int it = 0; it < NP_ITERS; it++) {
		for (int i = 0; i < NP_OPS; i++) {
			futs[i] = vdm_memcpy(t->vdm, t->dst + i * NP_SIZE,
				t->src + i * NP_SIZE, NP_SIZE, 0);
			ptrs[i] = FUTURE_AS_RUNNABLE(&futs[i]);
		}
		runtime_wait_multiple(t->rt, ptrs, NP_OPS);
		for (int i = 0; i < NP_OPS; i++)
			t->bad += futs[i].output.result != VDM_SUCCESS;
	}
	return NULL;
}

struct np_arg {
	struct vdm *ours;
	struct vdm *base;
	struct np_poller pollers[NP_POLLERS];
};

static double
np_round(struct np_arg *a, struct vdm *vdm)
{
	pthread_t th[NP_POLLERS];
	pthread_barrier_t go;
	int started = 0;
	double t0;

	pthread_barrier_init(&go, NULL, NP_POLLERS + 1);
	for (int i = 0; i < NP_POLLERS; i++) {
		a->pollers[i].vdm = vdm;
		a->pollers[i].go = &go;
		a->pollers[i].bad = 0;
		if (pthread_create(&th[i], NULL, np_poll_thread,
				&a->pollers[i]) != 0) {
			fprintf(stderr, "bench: cannot start a polling thread\n");
			exit(1);
		}
		started++;
	}
	t0 = now();
	pthread_barrier_wait(&go);
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		bad_results += a->pollers[i].bad;
	}
	double t = now() - t0;
	pthread_barrier_destroy(&go);
	return t / ((double)NP_POLLERS * NP_ITERS * NP_OPS);
}

static double
round_np_base(void *p)
{
	struct np_arg *a = p;

	return np_round(a, a->base);
}

static double
round_np_ours(void *p)
{
	struct np_arg *a = p;

	return np_round(a, a->ours);
}

static void
group_pollers(void)
{
	struct data_mover_threads *dmt = data_mover_threads_new(NP_WORKERS,
		NP_RING, FUTURE_NOTIFIER_WAKER);
	struct np_mover *np = np_new();
	struct np_arg a;
	int ok = dmt != NULL && np != NULL;

	memset(&a, 0, sizeof(a));
	for (int i = 0; i < NP_POLLERS; i++) {
		struct np_poller *t = &a.pollers[i];

		t->rt = runtime_new();
		t->dst = xalloc(NP_OPS * NP_SIZE);
		t->src = xalloc(NP_OPS * NP_SIZE);
		ok = ok && t->rt != NULL && t->dst != NULL && t->src != NULL;
	}
	if (ok) {
		a.ours = data_mover_threads_get_vdm(dmt);
		a.base = &np->vdm;
	}
	measure_row((struct row){
			.what = "4 polling threads x 4 x 1 KiB in flight, 4 workers (8 threads on this machine's CPUs): upstream-style notify-per-push mover / threads mover",
			.base_name = "mutex ring, cond_signal per push (in bench.c)",
			.ours_name = "threads mover (4 workers, WAKER)",
			.unit = "ns/op", .unit_scale = 1e9,
			.goal = 1.0, .upstream = 0 },
		ok ? round_np_base : NULL, round_np_ours, &a);

	for (int i = 0; i < NP_POLLERS; i++) {
		runtime_delete(a.pollers[i].rt);
		free(a.pollers[i].dst);
		free(a.pollers[i].src);
	}
	np_delete(np);
	data_mover_threads_delete(dmt);
}

/* ------------------------------------------------------------------------
 * Row group: the DSA mover (libminiasync-vdm-dml) on the emulated work
 * queue, and its CPU path against plain memcpy
 */

#include <libminiasync-vdm-dml.h>

/* CPU time of this thread, in seconds. */
static double
thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the submitting thread per 4 KiB operation (not a ratio). */
struct cpu_row {
	const char *what;
	double goal_ns;
	int measured;
	double med_ns, min_ns, max_ns;
};

static struct cpu_row cpu_rows[8];
static int ncpu_rows;

#define DSA_OPS 1024
#define DSA_SIZE 4096

struct dsa_arg {
	struct vdm *vdm;
	char *dst;
	char *src;
	struct vdm_operation_future *futs;
	uint64_t **monitor;
};

/* Waits, off the clock, until the operation's monitor word says a poll can
 * make progress (or briefly, for a future that reported no poller). */
static void
dsa_wait_word(uint64_t *word)
{
	while (word != NULL && __atomic_load_n(word, __ATOMIC_ACQUIRE) == 0)
		sched_yield();
}

/* Polls one future; returns its state and records its poller word. */
static enum future_state
dsa_poll(struct vdm_operation_future *f, uint64_t **word)
{
	struct future_notifier n;

	memset(&n, 0, sizeof(n));
	enum future_state st = future_poll(FUTURE_AS_RUNNABLE(f), &n);
	if (n.notifier_used == FUTURE_NOTIFIER_POLLER)
		*word = n.poller.ptr_to_monitor;
	return st;
}

/* Cost of one now() call, subtracted from each interval timed with it. */
static double clock_cost;

static void
calibrate_clock(void)
{
	double t0 = now();
	for (int i = 0; i < 1000; i++)
		(void)now();
	clock_cost = (now() - t0) / 1001;
}

/*
 * One operation at a time: vdm_memcpy() plus its first poll (submission),
 * then, once the device is done, the poll that completes it. Both are timed
 * with the vDSO clock (a thread-CPU clock is a system call costing more than
 * what is measured); the waiting in between is not counted.
 */
static double
dsa_one_round(struct dsa_arg *a)
{
	double cpu = 0;

	for (int i = 0; i < DSA_OPS; i++) {
		double t0 = now();
		a->monitor[i] = NULL;
		a->futs[i] = vdm_memcpy(a->vdm, a->dst + (size_t)i * DSA_SIZE,
			a->src + (size_t)i * DSA_SIZE, DSA_SIZE, 0);
		enum future_state st = dsa_poll(&a->futs[i], &a->monitor[i]);
		cpu += now() - t0 - clock_cost;
		while (st != FUTURE_STATE_COMPLETE) {
			dsa_wait_word(a->monitor[i]);
			t0 = now();
			st = dsa_poll(&a->futs[i], &a->monitor[i]);
			cpu += now() - t0 - clock_cost;
		}
		if (a->futs[i].output.result != VDM_SUCCESS)
			bad_results++;
	}
	return cpu / DSA_OPS;
}

/*
 * DSA_OPS operations started back to back (each created and polled once),
 * then polled until all are complete. The thread's CPU time is read at the
 * edges of each phase of polling; waiting for the device between phases
 * is not counted. Re-polls of operations the full queue left IDLE are.
 */
static double
dsa_many_round(struct dsa_arg *a, int submit_only)
{
	double cpu, c0 = thread_cpu();
	int pending = DSA_OPS;
	static char done[DSA_OPS];

	for (int i = 0; i < DSA_OPS; i++) {
		a->monitor[i] = NULL;
		done[i] = 0;
		a->futs[i] = vdm_memcpy(a->vdm, a->dst + (size_t)i * DSA_SIZE,
			a->src + (size_t)i * DSA_SIZE, DSA_SIZE, 0);
		(void)dsa_poll(&a->futs[i], &a->monitor[i]);
	}
	cpu = thread_cpu() - c0;
	if (submit_only) {
		double sub = cpu;
		while (pending > 0) {
			pending = 0;
			for (int i = 0; i < DSA_OPS; i++)
				pending += dsa_poll(&a->futs[i], &a->monitor[i]) !=
					FUTURE_STATE_COMPLETE;
		}
		return sub / DSA_OPS;
	}
	while (pending > 0) {
		for (int i = 0; i < DSA_OPS; i++)
			if (!done[i])
				dsa_wait_word(a->monitor[i]);
		c0 = thread_cpu();
		for (int i = 0; i < DSA_OPS; i++) {
			if (done[i])
				continue;
			if (dsa_poll(&a->futs[i], &a->monitor[i]) ==
				FUTURE_STATE_COMPLETE) {
				done[i] = 1;
				pending--;
				if (a->futs[i].output.result != VDM_SUCCESS)
					bad_results++;
			}
		}
		cpu += thread_cpu() - c0;
	}
	return cpu / DSA_OPS;
}

static double
dsa_cpu_round(struct dsa_arg *a, int inflight)
{
	return inflight == 1 ? dsa_one_round(a) :
		dsa_many_round(a, inflight < 0);
}

static void
measure_cpu_row(const char *what, double goal_ns, struct dsa_arg *a,
	int inflight)
{
	struct cpu_row *r = &cpu_rows[ncpu_rows++];
	double v[ROUNDS];

	r->what = what;
	r->goal_ns = goal_ns;
	r->measured = a->vdm != NULL;
	if (!r->measured)
		return;
	(void)dsa_cpu_round(a, inflight);
	for (int i = 0; i < ROUNDS; i++)
		v[i] = dsa_cpu_round(a, inflight) * 1e9;
	r->min_ns = r->max_ns = v[0];
	for (int i = 1; i < ROUNDS; i++) {
		if (v[i] < r->min_ns)
			r->min_ns = v[i];
		if (v[i] > r->max_ns)
			r->max_ns = v[i];
	}
	r->med_ns = median(v, ROUNDS);
}

/*
 * A copy into memory the process never touched, on the emulated queue
 * with a device cost per page fault (MINIASYNC_DSA_EMULATE_FAULT_US, set
 * in group_dsa), against the same copy into memory already touched. With
 * one device round trip per page a first-touch copy is tens of times
 * slower; populating the rest of a piece on its first fault leaves one
 * round trip per piece (2 MiB) plus the kernel's cost of providing the
 * pages, which the pre-touched baseline does not pay.
 */
#define TOUCH_SIZE (16 << 20)

struct touch_arg {
	struct vdm *vdm;
	char *src;
	char *warm;
};

/* One vdm_memcpy waited for; its wall time. */
static double
touch_copy(struct vdm *v, char *dst, const char *src)
{
	uint64_t *word = NULL;
	double t0 = now();
	struct vdm_operation_future f = vdm_memcpy(v, dst, (void *)src,
		TOUCH_SIZE, 0);

	while (dsa_poll(&f, &word) != FUTURE_STATE_COMPLETE)
		dsa_wait_word(word);
	double t = now() - t0;
	if (f.output.result != VDM_SUCCESS ||
			memcmp(dst + TOUCH_SIZE - 4096, src + TOUCH_SIZE - 4096,
				4096) != 0)
		bad_results++;
	return t;
}

static double
round_warm_copy(void *p)
{
	struct touch_arg *a = p;

	return touch_copy(a->vdm, a->warm, a->src);
}

/* A fresh mapping of TOUCH_SIZE bytes in 4 KiB pages (no huge pages: one
 * fault each), or NULL (counted as a bad result). */
static char *
fresh_pages(void)
{
	char *dst = mmap(NULL, TOUCH_SIZE, PROT_READ | PROT_WRITE,
		MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (dst == MAP_FAILED) {
		bad_results++;
		return NULL;
	}
	madvise(dst, TOUCH_SIZE, MADV_NOHUGEPAGE);
	return dst;
}

/* Into a fresh mapping. */
static double
round_first_touch_copy(void *p)
{
	struct touch_arg *a = p;
	char *dst = fresh_pages();

	if (dst == NULL)
		return 1;
	double t = touch_copy(a->vdm, dst, a->src);
	munmap(dst, TOUCH_SIZE);
	return t;
}

/* The same two copies by the CPU alone: the machine's ceiling for the
 * first-touch row (providing fresh pages costs the kernel as much as the
 * copy, or more, in a VM). */
static double
round_warm_memcpy(void *p)
{
	struct touch_arg *a = p;
	double t0 = now();

	plain_memcpy(a->warm, a->src, TOUCH_SIZE);
	CLOBBER(a->warm, a->src);
	return now() - t0;
}

static double
round_first_touch_memcpy(void *p)
{
	struct touch_arg *a = p;
	char *dst = fresh_pages();

	if (dst == NULL)
		return 1;
	double t0 = now();
	plain_memcpy(dst, a->src, TOUCH_SIZE);
	CLOBBER(dst, a->src);
	double t = now() - t0;
	munmap(dst, TOUCH_SIZE);
	return t;
}

static void
group_dsa(void)
{
	/* the emulated work queue: 32 entries, 2 engines (its defaults), on
	 * the 6.1 kernel generation: a mapped portal and BATCH offered, as in
	 * the published rows (the newest generation hides BATCH on a version
	 * 1 device and submits through write(2)); a device cost per page
	 * fault, which only the first-touch row meets (every other buffer is
	 * touched before it is used) */
	setenv("MINIASYNC_DSA_EMULATE", "1", 1);
	setenv("MINIASYNC_DSA_EMULATE_KERNEL", "6.1", 1);
	setenv("MINIASYNC_DSA_EMULATE_FAULT_US", "2", 1);
	calibrate_clock();

	struct data_mover_dml *hw = data_mover_dml_new(DATA_MOVER_DML_HARDWARE);
	struct data_mover_dml *sw = data_mover_dml_new(DATA_MOVER_DML_SOFTWARE);
	struct dsa_arg a = { NULL, xalloc((size_t)DSA_OPS * DSA_SIZE),
		xalloc((size_t)DSA_OPS * DSA_SIZE),
		calloc(DSA_OPS, sizeof(struct vdm_operation_future)),
		calloc(DSA_OPS, sizeof(uint64_t *)) };
	int ok = a.dst && a.src && a.futs && a.monitor;

	if (ok && hw != NULL)
		a.vdm = data_mover_dml_get_vdm(hw);
	measure_cpu_row("DSA (emulated queue), one 4 KiB `vdm_memcpy` at a "
		"time: submitting thread's CPU per op", 300, &a, 1);
	measure_cpu_row("DSA (emulated queue), 1024 x 4 KiB started back to "
		"back (batched once the queue is full): CPU per op to start "
		"(create + first poll)", 100, &a, -1);
	measure_cpu_row("DSA (emulated queue), the same, start plus every "
		"poll until all complete (batched operations are polled while "
		"they wait)", 1e9, &a, DSA_OPS);

	static const size_t sizes[] = { 4096, 65536, 1 << 20 };
	static const char *const names[] = {
		"DSA mover, SOFTWARE path, 4 KiB: memcpy / (create + busy-poll)",
		"DSA mover, SOFTWARE path, 64 KiB: memcpy / (create + busy-poll)",
		"DSA mover, SOFTWARE path, 1 MiB: memcpy / (create + busy-poll)",
	};
	struct copy_arg c = { sw ? data_mover_dml_get_vdm(sw) : NULL,
		xalloc(1 << 20), xalloc(1 << 20), 0, 0 };
	for (size_t i = 0; i < 3; i++) {
		c.n = sizes[i];
		c.iters = (long)((64 << 20) / sizes[i]);
		measure_row((struct row){
				.what = names[i],
				.base_name = "plain memcpy",
				.ours_name = "DSA mover, SOFTWARE path",
				.unit = "ns/copy", .unit_scale = 1e9,
				.goal = 0.9, .upstream = 0 },
			c.vdm && c.dst && c.src ? round_plain_copy : NULL,
			round_vdm_copy, &c);
	}

	struct touch_arg t = { ok ? a.vdm : NULL, xalloc(TOUCH_SIZE),
		xalloc(TOUCH_SIZE) };
	measure_row((struct row){
			.what = "DSA (emulated queue, 2 us per fault), 16 MiB copy "
				"into first-touch 4 KiB pages: pre-touched copy / "
				"first-touch copy",
			.base_name = "DSA copy into touched memory",
			.ours_name = "DSA copy into first-touch memory",
			.unit = "ms/copy", .unit_scale = 1e3,
			.goal = 0.25, .upstream = 0 },
		t.vdm && t.src && t.warm ? round_warm_copy : NULL,
		round_first_touch_copy, &t);
	measure_row((struct row){
			.what = "reference, no library: the same with plain memcpy "
				"(the machine's ceiling for the row above)",
			.base_name = "memcpy into touched memory",
			.ours_name = "memcpy into first-touch memory",
			.unit = "ms/copy", .unit_scale = 1e3,
			.goal = -1, .upstream = -1 },
		t.src && t.warm ? round_warm_memcpy : NULL,
		round_first_touch_memcpy, &t);
	free(t.src);
	free(t.warm);

	data_mover_dml_delete(hw);
	data_mover_dml_delete(sw);
	free(a.dst);
	free(a.src);
	free(a.futs);
	free(a.monitor);
	free(c.dst);
	free(c.src);
}

static void
print_cpu_table(void)
{
	if (ncpu_rows == 0)
		return;
	printf("\nDSA engine on the emulated work queue (CPU time of the "
		"submitting thread, ns per 4 KiB operation; lower is better):"
		"\n\n");
	printf("| benchmark | median | min - max | goal | meets goal |\n");
	printf("|---|---:|---:|---:|:---:|\n");
	for (int i = 0; i < ncpu_rows; i++) {
		struct cpu_row *r = &cpu_rows[i];

		if (!r->measured) {
			printf("| %s | n/a | n/a | <= %.0f | n/a |\n", r->what,
				r->goal_ns);
			continue;
		}
		if (r->goal_ns >= 1e9) {
			printf("| %s | **%.0f** | %.0f - %.0f | - | "
				"(context) |\n", r->what, r->med_ns, r->min_ns,
				r->max_ns);
			continue;
		}
		printf("| %s | **%.0f** | %.0f - %.0f | <= %.0f | %s |\n",
			r->what, r->med_ns, r->min_ns, r->max_ns, r->goal_ns,
			r->med_ns <= r->goal_ns ? "yes" : "**no**");
	}
}

/* ------------------------------------------------------------------------
 * Row groups
 *
 * Each group measures its rows with measure_row() and cleans up after
 * itself; a group whose mover cannot be created records n/a rows.
 *
 * The DSA group links libminiasync-vdm-dml (the Makefile's bench target
 * does) and runs the HARDWARE path on the emulated work queue.
 */
struct group {
	const char *name;
	void (*run)(void);
};

static const struct group GROUPS[] = {
	{ "sync mover", group_sync },
	{ "runtime", group_runtime },
	{ "threads mover", group_threads },
	{ "polling threads", group_pollers },
	{ "DSA mover", group_dsa },
};

/* ------------------------------------------------------------------------
 * Report
 */

static void
cpu_model(char *buf, size_t len, int *virtualised)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096];

	snprintf(buf, len, "unknown");
	*virtualised = 0;
	if (f == NULL)
		return;
	int have_model = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':');

		if (colon == NULL)
			continue;
		if (!have_model && strncmp(line, "model name", 10) == 0) {
			char *s = colon + 1;

			while (*s == ' ' || *s == '\t')
				s++;
			s[strcspn(s, "\n")] = '\0';
			snprintf(buf, len, "%s", s);
			have_model = 1;
		}
		if (strncmp(line, "flags", 5) == 0 &&
			strstr(colon, " hypervisor") != NULL)
			*virtualised = 1;
	}
	fclose(f);
}

/* Busy and total jiffies of all CPUs from /proc/stat; 0 on success. */
static int
cpu_jiffies(unsigned long long *busy, unsigned long long *total)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (f == NULL)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		&v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 5)
		return -1;
	*total = 0;
	for (int i = 0; i < 8; i++)
		*total += v[i];
	*busy = *total - v[3] - v[4];	/* minus idle and iowait */
	return 0;
}

/*
 * How busy the machine is before we start: the share of all CPUs that
 * other processes used over 200 ms (we sleep meanwhile), or -1.
 */
static double
machine_busy(void)
{
	unsigned long long b0, t0, b1, t1;
	struct timespec pause = { 0, 200000000 };

	if (cpu_jiffies(&b0, &t0) != 0)
		return -1;
	nanosleep(&pause, NULL);
	if (cpu_jiffies(&b1, &t1) != 0 || t1 == t0)
		return -1;
	return 100.0 * (double)(b1 - b0) / (double)(t1 - t0);
}

static void
print_ratio_table(void)
{
	printf("| # | benchmark (ratio = baseline time / our time) | "
		"ratio, median | min - max | goal | upstream 0.2.1 | "
		"meets goal |\n");
	printf("|---|---|---:|---:|---:|---:|:---:|\n");
	for (int i = 0; i < nrows; i++) {
		struct row *r = &rows[i];

		char goal[32], upstream[32];

		if (r->goal < 0) {
			snprintf(goal, sizeof(goal), "-");
			snprintf(upstream, sizeof(upstream), "-");
		} else {
			snprintf(goal, sizeof(goal), ">= %.2f", r->goal);
			if (r->upstream > 0)
				snprintf(upstream, sizeof(upstream), "%.3g",
					r->upstream);
			else	/* upstream had no such figure */
				snprintf(upstream, sizeof(upstream), "-");
		}
		if (!r->measured) {
			printf("| %d | %s | n/a | n/a | %s | %s | n/a |\n",
				i + 1, r->what, goal, upstream);
			continue;
		}
		printf("| %d | %s | **%.3f** | %.3f - %.3f | %s | %s | %s |\n",
			i + 1, r->what, r->ratio_med, r->ratio_min,
			r->ratio_max, goal, upstream,
			r->goal < 0 ? "(reference)" :
			r->ratio_med >= r->goal ? "yes" : "**no**");
	}
}

static void
print_absolute_table(void)
{
	printf("| # | baseline | median | ours | median |\n");
	printf("|---|---|---:|---|---:|\n");
	for (int i = 0; i < nrows; i++) {
		struct row *r = &rows[i];

		if (!r->measured) {
			printf("| %d | %s | n/a | %s | n/a |\n", i + 1,
				r->base_name, r->ours_name);
			continue;
		}
		printf("| %d | %s | %.4g %s | %s | %.4g %s |\n", i + 1,
			r->base_name, r->base_med * r->unit_scale, r->unit,
			r->ours_name, r->ours_med * r->unit_scale, r->unit);
	}
}

int
main(void)
{
	char model[256];
	int virtualised;
	cpu_set_t set;
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int usable = (int)online;
	double t0 = now();
	double busy;
	const char *only;

	verbose = getenv("BENCH_VERBOSE") != NULL;
	only = getenv("BENCH_ONLY");
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		usable = CPU_COUNT(&set);
	cpu_model(model, sizeof(model), &virtualised);
	busy = machine_busy();

	for (size_t g = 0; g < sizeof(GROUPS) / sizeof(GROUPS[0]); g++) {
		if (only != NULL && strstr(GROUPS[g].name, only) == NULL)
			continue;
		fprintf(stderr, "bench: %s...\n", GROUPS[g].name);
		GROUPS[g].run();
	}

	printf("\n## miniasync-rs benchmark\n\n");
	printf("Machine: %s, nproc %d (%ld online)%s. %d interleaved rounds "
		"per row; higher ratios are better.\n\n", model, usable,
		online, virtualised ? ", virtualised" : "", ROUNDS);
	if (busy >= 0)
		printf("Other processes kept %.0f%% of the CPUs busy just before "
			"the run%s.\n\n", busy, busy > 10 ? " -- a busy machine: "
			"rows that use threads are unreliable" : "");
	print_ratio_table();
	print_cpu_table();
	printf("\nAbsolute medians (context only):\n\n");
	print_absolute_table();
	if (bad_results != 0)
		printf("\nWARNING: %lu operations returned a wrong result.\n",
			bad_results);
	printf("\nTotal run time: %.1f s.\n", now() - t0);
	return 0;
}
