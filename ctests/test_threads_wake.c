/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_threads_wake.c -- the threads mover's wake protocol (issue 12): an
 * operation queued while a worker sleeps reaches a worker, even when other
 * workers are held busy or were woken and have not run yet.
 *
 * Every wait here is bounded (about 20 s, far above any real latency) and
 * nothing is timed: a failure means an operation was not picked up at all.
 * The deterministic check that each push wakes its own sleeping worker,
 * before any woken worker runs, is the Rust test
 * each_push_wakes_its_own_sleeping_worker in src/mover/threads.rs.
 */
#include <libminiasync.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include "test.h"

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- a memcpy that holds its worker: on one buffer, or in a rendezvous */

static char held_buf[64];
static int gate_open;
static int held_entered;
static int rendezvous;		/* memcpys entered in this round */
static int rendezvous_need;	/* 0: no rendezvous */
static int rendezvous_timeouts;

static void *
holding_memcpy(void *dst, const void *src, size_t n, unsigned flags)
{
	(void)flags;
	if (dst == held_buf) {
		__atomic_store_n(&held_entered, 1, __ATOMIC_RELEASE);
		(void)wait_at_least(&gate_open, 1);
	}
	int need = __atomic_load_n(&rendezvous_need, __ATOMIC_ACQUIRE);
	if (need > 0) {
		__atomic_add_fetch(&rendezvous, 1, __ATOMIC_SEQ_CST);
		/* every operation of the round must be running at once */
		if (!wait_at_least(&rendezvous, need))
			__atomic_add_fetch(&rendezvous_timeouts, 1,
				__ATOMIC_SEQ_CST);
	}
	memcpy(dst, src, n);
	return dst;
}

/* Polls until complete, up to ~20 s; 1 if it completed. */
static int
poll_until_complete(struct vdm_operation_future *f)
{
	for (long i = 0; i < 400000; i++) {
		if (future_poll(FUTURE_AS_RUNNABLE(f), NULL) ==
			FUTURE_STATE_COMPLETE)
			return 1;
		short_sleep();
	}
	return 0;
}

/*
 * One worker held in a memcpy, the other asleep: a new operation must
 * still run (on the sleeping worker).
 */
static void
held_worker_and_sleeper(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 16, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	data_mover_threads_set_memcpy_fn(dmt, holding_memcpy);
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	char src[64] = "held", dst[64];

	__atomic_store_n(&gate_open, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&held_entered, 0, __ATOMIC_SEQ_CST);
	struct vdm_operation_future held =
		vdm_memcpy(vdm, held_buf, src, sizeof(src), 0);
	(void)future_poll(FUTURE_AS_RUNNABLE(&held), NULL);
	CHECK(wait_at_least(&held_entered, 1));
	/* let the other worker's spin run out: it sleeps now */
	sleep_ms(20);

	for (int i = 0; i < 3; i++) {
		struct vdm_operation_future f =
			vdm_memcpy(vdm, dst, src, sizeof(src), 0);
		CHECK(poll_until_complete(&f));
		CHECK_EQ(f.output.result, VDM_SUCCESS);
		CHECK(memcmp(dst, src, sizeof(src)) == 0);
		sleep_ms(5);
	}

	__atomic_store_n(&gate_open, 1, __ATOMIC_SEQ_CST);
	CHECK(poll_until_complete(&held));
	CHECK(memcmp(held_buf, src, sizeof(src)) == 0);
	data_mover_threads_delete(dmt);
}

/*
 * Several polling threads, more workers than CPUs: in each round every
 * thread starts one operation while all workers sleep, and each memcpy
 * waits until all of the round's memcpys are running, so the round ends
 * only if every push reached its own worker.
 */
#define POLLERS 4

struct poller {
	struct vdm *vdm;
	struct runtime *rt;
	pthread_barrier_t *go;
	pthread_barrier_t *done;
	int rounds;
	int bad;
	char src[256];
	char dst[256];
};

static void *
poller_thread(void *p)
{
	struct poller *t = p;

	for (int r = 0; r < t->rounds; r++) {
		pthread_barrier_wait(t->go);
		struct vdm_operation_future f = vdm_memcpy(t->vdm, t->dst,
			t->src, sizeof(t->src), 0);
		struct future *ptr = FUTURE_AS_RUNNABLE(&f);
		runtime_wait_multiple(t->rt, &ptr, 1);
		t->bad += f.output.result != VDM_SUCCESS ||
			memcmp(t->dst, t->src, sizeof(t->src)) != 0;
		pthread_barrier_wait(t->done);
	}
	return NULL;
}

static void
polling_threads_wake_every_worker(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(POLLERS, 64, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	data_mover_threads_set_memcpy_fn(dmt, holding_memcpy);
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	pthread_barrier_t go, done;
	pthread_t th[POLLERS];
	static struct poller t[POLLERS];
	int rounds = (int)test_scale(40);

	pthread_barrier_init(&go, NULL, POLLERS + 1);
	pthread_barrier_init(&done, NULL, POLLERS + 1);
	__atomic_store_n(&rendezvous_timeouts, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&rendezvous_need, POLLERS, __ATOMIC_SEQ_CST);
	for (int i = 0; i < POLLERS; i++) {
		t[i].vdm = vdm;
		t[i].rt = runtime_new();
		t[i].go = &go;
		t[i].done = &done;
		t[i].rounds = rounds;
		t[i].bad = 0;
		memset(t[i].src, 'a' + i, sizeof(t[i].src));
		CHECK(t[i].rt != NULL);
		CHECK_EQ(pthread_create(&th[i], NULL, poller_thread, &t[i]), 0);
	}
	for (int r = 0; r < rounds; r++) {
		__atomic_store_n(&rendezvous, 0, __ATOMIC_SEQ_CST);
		/* every worker's spin runs out: they all sleep */
		sleep_ms(3);
		pthread_barrier_wait(&go);
		pthread_barrier_wait(&done);
	}
	for (int i = 0; i < POLLERS; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(t[i].bad, 0);
		runtime_delete(t[i].rt);
	}
	CHECK_EQ(__atomic_load_n(&rendezvous_timeouts, __ATOMIC_SEQ_CST), 0);
	__atomic_store_n(&rendezvous_need, 0, __ATOMIC_SEQ_CST);
	pthread_barrier_destroy(&go);
	pthread_barrier_destroy(&done);
	data_mover_threads_delete(dmt);
}

int
main(void)
{
	test_prog = "test_threads_wake";
	alarm(600);
	RUN(held_worker_and_sleeper);
	RUN(polling_threads_wake_every_worker);
	TEST_DONE();
}
