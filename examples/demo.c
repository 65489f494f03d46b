/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * demo.c -- a tour of libminiasync: copy, move and set memory through the
 * synchronous and the threads data movers, chain two operations into one
 * future, and let the runtime wait for them.
 *
 * Build and run: make demo
 * (or: cc demo.c $(pkg-config --cflags --libs libminiasync))
 *
 * Exit status 0 when every result was verified, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include <libminiasync.h>

#define SIZE 4096

static int mismatches;

static void
report(const char *mover, const char *what, int ok)
{
	printf("  %-8s %-44s %s\n", mover, what, ok ? "verified" : "MISMATCH");
	if (!ok)
		mismatches++;
}

/* Fills a buffer with a recognisable pattern. */
static void
fill(char *buf, size_t n, char first)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(first + i % 23);
}

/*
 * 1. One future at a time: vdm_memcpy() and friends only describe the work;
 *    the runtime polls the future until the mover has done it.
 */
static void
one_at_a_time(const char *name, struct vdm *vdm, struct runtime *rt)
{
	static char src[SIZE], dst[SIZE], buf[SIZE + 100], expect[SIZE + 100];

	fill(src, SIZE, 'a');
	memset(dst, 0, SIZE);
	struct vdm_operation_future copy = vdm_memcpy(vdm, dst, src, SIZE, 0);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&copy));
	report(name, "memcpy 4096 bytes",
		copy.output.result == VDM_SUCCESS &&
		copy.output.output.memcpy.dest == dst &&
		memcmp(dst, src, SIZE) == 0);

	/* overlapping ranges: memmove is the one that must get this right */
	fill(buf, SIZE + 100, 'A');
	memcpy(expect, buf, SIZE + 100);
	memmove(expect + 100, expect, SIZE);
	struct vdm_operation_future move =
		vdm_memmove(vdm, buf + 100, buf, SIZE, 0);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&move));
	report(name, "memmove 4096 bytes, 100 bytes up (overlap)",
		move.output.result == VDM_SUCCESS &&
		memcmp(buf, expect, SIZE + 100) == 0);

	struct vdm_operation_future set = vdm_memset(vdm, dst, '#', SIZE, 0);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&set));
	memset(expect, '#', SIZE);
	report(name, "memset 4096 bytes to '#'",
		set.output.result == VDM_SUCCESS &&
		set.output.output.memset.str == dst &&
		memcmp(dst, expect, SIZE) == 0);
}

/* 2. Several futures in flight at once, waited for together. */
static void
all_at_once(const char *name, struct vdm *vdm, struct runtime *rt)
{
	static char src[SIZE], a[SIZE], b[SIZE], c[SIZE], d[SIZE];
	static char expect[SIZE];

	fill(src, SIZE, '0');
	fill(b, SIZE, 'k');
	fill(d, SIZE, 'x');

	struct vdm_operation_future futs[3] = {
		vdm_memcpy(vdm, a, src, SIZE, 0),
		vdm_memmove(vdm, c, b, SIZE, 0),
		vdm_memset(vdm, d, 0, SIZE, 0),
	};
	struct future *all[3] = { FUTURE_AS_RUNNABLE(&futs[0]),
		FUTURE_AS_RUNNABLE(&futs[1]), FUTURE_AS_RUNNABLE(&futs[2]) };
	runtime_wait_multiple(rt, all, 3);

	int ok = memcmp(a, src, SIZE) == 0 && memcmp(c, b, SIZE) == 0;
	memset(expect, 0, SIZE);
	ok = ok && memcmp(d, expect, SIZE) == 0;
	for (int i = 0; i < 3; i++)
		ok = ok && futs[i].output.result == VDM_SUCCESS;
	report(name, "memcpy + memmove + memset, waited together", ok);
}

/*
 * 3. A chained future: copy a message, then overwrite its tail. The memset
 *    is created without a destination; the map function that runs when the
 *    copy completes points it at wherever the copy went. A map on the last
 *    entry hands the result to the chain's own output.
 */
struct copy_then_wipe_data {
	FUTURE_CHAIN_ENTRY(struct vdm_operation_future, copy);
	FUTURE_CHAIN_ENTRY_LAST(struct vdm_operation_future, wipe);
};

struct copy_then_wipe_output {
	char *result;
};

FUTURE(copy_then_wipe_future, struct copy_then_wipe_data,
	struct copy_then_wipe_output);

/* copy done -> wipe starts at copy's destination + *(size_t *)keep */
static void
copy_to_wipe(struct future_context *copy_ctx, struct future_context *wipe_ctx,
	void *keep)
{
	struct vdm_operation_output *copied =
		future_context_get_output(copy_ctx);
	struct vdm_operation_data *wipe = future_context_get_data(wipe_ctx);

	wipe->operation.data.memset.str =
		(char *)copied->output.memcpy.dest + *(size_t *)keep;
}

/* wipe done -> the chain's output */
static void
wipe_to_result(struct future_context *wipe_ctx,
	struct future_context *chain_ctx, void *keep)
{
	struct vdm_operation_output *wiped =
		future_context_get_output(wipe_ctx);
	struct copy_then_wipe_output *out = future_context_get_output(chain_ctx);

	out->result = (char *)wiped->output.memset.str - *(size_t *)keep;
}

static struct copy_then_wipe_future
copy_then_wipe(struct vdm *vdm, char *dst, char *src, size_t n, size_t *keep)
{
	struct copy_then_wipe_future f;

	FUTURE_CHAIN_ENTRY_INIT(&f.data.copy, vdm_memcpy(vdm, dst, src, n, 0),
		copy_to_wipe, keep);
	FUTURE_CHAIN_ENTRY_INIT(&f.data.wipe,
		vdm_memset(vdm, NULL, '.', n - *keep - 1, 0),
		wipe_to_result, keep);
	f.output.result = NULL;
	FUTURE_CHAIN_INIT(&f);
	return f;
}

static void
chained(const char *name, struct vdm *vdm, struct runtime *rt)
{
	char src[] = "miniasync-rs: copied by a chain, then wiped";
	char dst[sizeof(src)];
	size_t keep = 12; /* strlen("miniasync-rs") */
	char expect[sizeof(src)];

	memset(dst, 0, sizeof(dst));
	struct copy_then_wipe_future f =
		copy_then_wipe(vdm, dst, src, sizeof(src), &keep);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));

	memcpy(expect, src, sizeof(src));
	memset(expect + keep, '.', sizeof(src) - keep - 1);
	int ok = f.output.result == dst && memcmp(dst, expect, sizeof(src)) == 0;
	report(name, "chain: memcpy, then memset its tail (map)", ok);
	printf("  %-8s   \"%s\" -> \"%s\"\n", "", src, dst);
}

int
main(void)
{
	struct runtime *rt = runtime_new();
	struct data_mover_sync *dms = data_mover_sync_new();
	/* 12 worker threads, 128 queue slots, wake the runtime when done */
	struct data_mover_threads *dmt = data_mover_threads_default();

	if (rt == NULL || dms == NULL || dmt == NULL) {
		fprintf(stderr, "demo: cannot create the runtime or a mover\n");
		return 1;
	}

	struct {
		const char *name;
		struct vdm *vdm;
	} movers[] = {
		{ "sync", data_mover_sync_get_vdm(dms) },
		{ "threads", data_mover_threads_get_vdm(dmt) },
	};

	printf("libminiasync demo: the sync mover works on the polling thread, "
		"the threads mover on worker threads\n");
	for (size_t i = 0; i < sizeof(movers) / sizeof(movers[0]); i++) {
		one_at_a_time(movers[i].name, movers[i].vdm, rt);
		all_at_once(movers[i].name, movers[i].vdm, rt);
		chained(movers[i].name, movers[i].vdm, rt);
	}

	data_mover_threads_delete(dmt);
	data_mover_sync_delete(dms);
	runtime_delete(rt);

	if (mismatches != 0) {
		printf("demo: %d result(s) did NOT verify\n", mismatches);
		return 1;
	}
	printf("demo: all results verified\n");
	return 0;
}
