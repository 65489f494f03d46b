/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_chain_skip.c -- chain entries skipped by a map (ABI.md 5.2 and
 * decision 19). A map may skip the next entry of a chain by setting its
 * state to COMPLETE (upstream's hashmap example does); the skipped vdm op
 * was created (op_new) but is never polled, so op_delete never runs for it.
 * A mover cannot tell such an op from one not polled yet (and the OOM
 * contract needs un-polled ops to count), so the documented behaviour is:
 * - a skipped op holds exactly one slot until its mover is deleted, and
 *   nothing else (no head-of-line blocking as upstream: the slots of every
 *   later op are reused normally);
 * - deleting the mover releases it; a map that skips an op can release it
 *   at once through the public `vdm->op_delete` (never-started op).
 * MINIASYNC_MAX_OPS=16 is set before the first mover.
 */
#include <libminiasync.h>
#include <stdint.h>
#include <unistd.h>
#include "test.h"

#define BOUND 16

struct skip_data {
	FUTURE_CHAIN_ENTRY(struct vdm_operation_future, a);
	FUTURE_CHAIN_ENTRY(struct vdm_operation_future, b);
	FUTURE_CHAIN_ENTRY_LAST(struct vdm_operation_future, c);
};
struct skip_output {
	int unused;
};
FUTURE(skip_future, struct skip_data, struct skip_output);

static void
map_skip_next(struct future_context *lhs, struct future_context *rhs,
	void *arg)
{
	(void)lhs;
	(void)arg;
	rhs->state = FUTURE_STATE_COMPLETE;
}

/*
 * A map that skips the next entry and also releases its op through the
 * public struct vdm (op_delete of a never-started op), as user code can.
 */
static void
map_skip_and_release_next(struct future_context *lhs,
	struct future_context *rhs, void *arg)
{
	(void)lhs;
	(void)arg;
	struct vdm_operation_data *d = future_context_get_data(rhs);
	struct vdm_operation_output *o = future_context_get_output(rhs);
	d->vdm->op_delete(d->data, &d->operation, o);
	rhs->state = FUTURE_STATE_COMPLETE;
}

/* Runs `rounds` chains a -> b -> c; returns the first failing round. */
static int
run_chains(struct vdm *vdm, int rounds, int skip, int *failed_round)
{
	for (int r = 0; r < rounds; r++) {
		unsigned char s[32], a[32], b[32], c[32];
		memset(s, r + 1, 32);
		memset(a, 0, 32);
		memset(b, 0, 32);
		memset(c, 0, 32);
		struct skip_future f;
		FUTURE_CHAIN_ENTRY_INIT(&f.data.a, vdm_memcpy(vdm, a, s, 32, 0),
			skip == 2 ? map_skip_and_release_next :
			skip ? map_skip_next : NULL, NULL);
		FUTURE_CHAIN_ENTRY_INIT(&f.data.b, vdm_memcpy(vdm, b, s, 32, 0),
			NULL, NULL);
		FUTURE_CHAIN_ENTRY_INIT(&f.data.c,
			vdm_memset(vdm, c, r + 2, 32, 0), NULL, NULL);
		FUTURE_CHAIN_INIT(&f);
		int created = f.data.a.fut.data.data != NULL &&
			f.data.b.fut.data.data != NULL &&
			f.data.c.fut.data.data != NULL;
		FUTURE_BUSY_POLL(&f);
		int ok = created && memcmp(a, s, 32) == 0 &&
			f.data.a.fut.output.result == VDM_SUCCESS &&
			f.data.c.fut.output.result == VDM_SUCCESS &&
			c[0] == (unsigned char)(r + 2) &&
			(skip ? b[0] == 0 : memcmp(b, s, 32) == 0);
		if (!ok) {
			*failed_round = r;
			return 0;
		}
	}
	return 1;
}

static void
control_without_skip(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	int failed = -1;
	CHECK(run_chains(data_mover_sync_get_vdm(dms), 10 * BOUND, 0,
		&failed));
	data_mover_sync_delete(dms);
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt)
		CHECK(run_chains(data_mover_threads_get_vdm(dmt), 10 * BOUND, 0,
			&failed));
	data_mover_threads_delete(dmt);
}

/*
 * Each skip-chain leaks one slot (b) while a and c are freed: before round
 * r, r slots are held, and round r needs 3 free ones, so round BOUND - 2 is
 * the first to fail. A new mover starts with all slots free again.
 */
static void
skipped_entry_holds_one_slot(struct vdm *(*make)(void **),
	void (*destroy)(void *))
{
	void *m;
	int failed = -1;
	CHECK(!run_chains(make(&m), 10 * BOUND, 1, &failed));
	CHECK_EQ(failed, BOUND - 2);
	destroy(m);
	/* Deleting the mover released the held slots. */
	failed = -1;
	CHECK(run_chains(make(&m), BOUND - 2, 1, &failed));
	CHECK_EQ(failed, -1);
	destroy(m);
}

static struct vdm *
make_sync(void **m)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	*m = dms;
	return data_mover_sync_get_vdm(dms);
}

static void
destroy_sync(void *m)
{
	data_mover_sync_delete(m);
}

static struct vdm *
make_threads(void **m)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	*m = dmt;
	return data_mover_threads_get_vdm(dmt);
}

static void
destroy_threads(void *m)
{
	data_mover_threads_delete(m);
}

static void
skipped_entry_holds_one_slot_sync(void)
{
	skipped_entry_holds_one_slot(make_sync, destroy_sync);
}

static void
skipped_entry_holds_one_slot_threads(void)
{
	skipped_entry_holds_one_slot(make_threads, destroy_threads);
}

/* A skipping map that releases the op it skips never runs out. */
static void
skip_with_explicit_release(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	int failed = -1;
	CHECK(run_chains(data_mover_sync_get_vdm(dms), 10 * BOUND, 2,
		&failed));
	data_mover_sync_delete(dms);
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt)
		CHECK(run_chains(data_mover_threads_get_vdm(dmt), 10 * BOUND, 2,
			&failed));
	data_mover_threads_delete(dmt);
}

int
main(void)
{
	setenv("MINIASYNC_MAX_OPS", "16", 1);
	test_prog = "test_chain_skip";
	alarm(300);
	RUN(control_without_skip);
	RUN(skip_with_explicit_release);
	RUN(skipped_entry_holds_one_slot_sync);
	RUN(skipped_entry_holds_one_slot_threads);
	TEST_DONE();
}
