/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_chain_skip.c -- decision 19 of ABI.md: "a skipped chain entry must
 * not leak forever". A map may skip the next entry of a chain by setting
 * its state to COMPLETE (the hashmap example does); the skipped vdm op was
 * created (op_new) but is never polled, so op_delete never runs for it.
 * With a small bound (MINIASYNC_MAX_OPS=16, set before the first mover)
 * many such chains run one after the other on one mover; every op they
 * create must still get a record, i.e. skipped entries must not use up the
 * bound. A control runs the same chains without skipping.
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

static void
skipped_entries_do_not_exhaust_sync(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	int failed = -1;
	int ok = run_chains(data_mover_sync_get_vdm(dms), 10 * BOUND, 1,
		&failed);
	if (!ok)
		fprintf(stderr, "sync mover: skip-chain %d of %d failed "
			"(bound %d): skipped entries leak their records\n",
			failed, 10 * BOUND, BOUND);
	CHECK(ok);
	data_mover_sync_delete(dms);
}

static void
skipped_entries_do_not_exhaust_threads(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	int failed = -1;
	int ok = run_chains(data_mover_threads_get_vdm(dmt), 10 * BOUND, 1,
		&failed);
	if (!ok)
		fprintf(stderr, "threads mover: skip-chain %d of %d failed "
			"(bound %d): skipped entries leak their records\n",
			failed, 10 * BOUND, BOUND);
	CHECK(ok);
	data_mover_threads_delete(dmt);
}

/* The workaround available today: the skipping map releases the op. */
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
	RUN(skipped_entries_do_not_exhaust_sync);
	RUN(skipped_entries_do_not_exhaust_threads);
	TEST_DONE();
}
