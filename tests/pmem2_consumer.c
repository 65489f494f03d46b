/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pmem2_consumer.c -- libpmem2's asynchronous API running on our library.
 *
 * Debian's libpmem2 1.12.1 was compiled against upstream miniasync headers:
 * pmem2_memcpy_async() and friends return a `struct pmem2_future` (a chain
 * of a vdm operation and, when the mapping needs it, a persist future)
 * whose tasks are libpmem2's inlined copies of the chain and vdm code. This
 * program is compiled against OUR headers (<libpmem2/async.h> includes
 * <libminiasync/vdm.h>), so it checks both directions at once: our layouts
 * agree with what libpmem2 returns by value, and our movers' `struct vdm`
 * callbacks work when driven by upstream-compiled inline code.
 *
 * For each forced store granularity (PMEM2_FORCE_GRANULARITY = BYTE,
 * CACHE_LINE, PAGE) it maps a file under DIR (default /dev/shm) three
 * times: with libpmem2's default mover (no pmem2_config_set_vdm), with our
 * sync mover and with our threads mover. Through each it runs memcpy,
 * memmove (overlapping) and memset, once waited with FUTURE_BUSY_POLL and
 * once with runtime_wait, plus three futures at once with
 * runtime_wait_multiple, and verifies the bytes in the mapping, the outputs
 * and which persist path libpmem2 chose for the mover's capabilities.
 *
 * Usage: pmem2_consumer [DIR]. Prints "ok"/"not ok" per check and
 * "pmem2 consumer: N passed, N failed" last; exit status 1 on failure.
 */
#ifndef PMEM2_USE_MINIASYNC
#define PMEM2_USE_MINIASYNC 1
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpmem2.h>
#include <libminiasync.h>

#define MAP_SIZE (4u << 20)
#define OP_SIZE (64u * 1024 + 123) /* spans pages, unaligned end */

enum mover_kind { MOVER_DEFAULT, MOVER_SYNC, MOVER_THREADS, MOVER_COUNT };
static const char *const mover_names[] = { "default", "sync", "threads" };

enum waiter { WAIT_BUSY_POLL, WAIT_RUNTIME };
static const char *const waiter_names[] = { "FUTURE_BUSY_POLL",
	"runtime_wait" };

static const char *const granularities[] = { "BYTE", "CACHE_LINE", "PAGE" };
static const enum pmem2_granularity gran_values[] = {
	PMEM2_GRANULARITY_BYTE, PMEM2_GRANULARITY_CACHE_LINE,
	PMEM2_GRANULARITY_PAGE };

static int passed, failed;
static struct runtime *rt;
static char *src_buf, *expect_buf;

static int
check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s - ", ok ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		passed++;
	else
		failed++;
	return ok;
}

static void
wait_for(struct pmem2_future *f, enum waiter w)
{
	/* braces: FUTURE_BUSY_POLL is a bare while statement, as upstream */
	if (w == WAIT_BUSY_POLL) {
		FUTURE_BUSY_POLL(f);
	} else {
		runtime_wait(rt, FUTURE_AS_RUNNABLE(f));
	}
}

/*
 * libpmem2 ends the chain after the vdm operation (no persist future) when
 * the mapping is byte-granular, or cache-line granular with a mover whose
 * capabilities include VDM_F_MEM_DURABLE (its own default mover: 1; ours:
 * 0, as upstream's). Page granularity always persists.
 */
static int
expect_persist_entry(enum pmem2_granularity g, enum mover_kind m)
{
	switch (g) {
	case PMEM2_GRANULARITY_BYTE:
		return 0;
	case PMEM2_GRANULARITY_CACHE_LINE:
		return m != MOVER_DEFAULT;
	default:
		return 1;
	}
}

/* The output and chain facts every finished pmem2 future must show. */
static int
future_ok(struct pmem2_future *f, enum vdm_operation_type type, void *dest,
	int want_persist)
{
	struct vdm_operation_future *op = &f->data.op.fut;
	int has_persist = !((uintptr_t)f->data.op.flags &
		FUTURE_CHAIN_FLAG_ENTRY_LAST);
	void *out = type == VDM_OPERATION_MEMSET ?
		op->output.output.memset.str : op->output.output.memcpy.dest;
	int ok = 1;

	if (FUTURE_STATE(f) != FUTURE_STATE_COMPLETE) {
		printf("    chain state %d, not COMPLETE\n", FUTURE_STATE(f));
		ok = 0;
	}
	if (FUTURE_STATE(op) != FUTURE_STATE_COMPLETE ||
		op->output.result != VDM_SUCCESS ||
		op->output.type != type || out != dest) {
		printf("    vdm op: state %d result %d type %d dest %p (want %p)\n",
			FUTURE_STATE(op), op->output.result, op->output.type,
			out, dest);
		ok = 0;
	}
	if (f->output.dest != dest) {
		printf("    pmem2 output dest %p, want %p\n", f->output.dest,
			dest);
		ok = 0;
	}
	if (has_persist != want_persist) {
		printf("    libpmem2 %s a persist entry, expected %s\n",
			has_persist ? "added" : "did not add",
			want_persist ? "one" : "none");
		ok = 0;
	}
	if (has_persist && FUTURE_STATE(&f->data.fin.fut.persist) !=
		FUTURE_STATE_COMPLETE) {
		printf("    persist entry not complete\n");
		ok = 0;
	}
	return ok;
}

static void
fill(char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)((i * 131 + seed * 17 + (i >> 8)) & 0xff);
}

/* Bytes [lo, hi) of the mapping outside the op must keep `guard`. */
static int
guards_ok(const char *base, size_t lo, size_t hi, char guard)
{
	return base[lo - 1] == guard && base[hi] == guard;
}

static void
run_ops(struct pmem2_map *map, const char *gran, enum pmem2_granularity g,
	enum mover_kind m, enum waiter w, unsigned seed)
{
	char *base = pmem2_map_get_address(map);
	int want = expect_persist_entry(g, m);
	const char *mn = mover_names[m], *wn = waiter_names[w];
	size_t off = 4096 * (1 + seed % 64) + 17;
	char *dest = base + off;

	/* memcpy from DRAM into the mapping */
	fill(src_buf, OP_SIZE, seed);
	memset(base + off - 64, 0x11, OP_SIZE + 128);
	struct pmem2_future f = pmem2_memcpy_async(map, dest, src_buf,
		OP_SIZE, 0);
	wait_for(&f, w);
	check(future_ok(&f, VDM_OPERATION_MEMCPY, dest, want) &&
		memcmp(dest, src_buf, OP_SIZE) == 0 &&
		guards_ok(base, off, off + OP_SIZE, 0x11),
		"%s / %s mover / pmem2_memcpy_async / %s", gran, mn, wn);

	/* memmove within the mapping, overlapping forwards */
	size_t shift = OP_SIZE / 3;
	fill(base + off, OP_SIZE + shift, seed + 1);
	memcpy(expect_buf, base + off, OP_SIZE + shift);
	memmove(expect_buf + shift, expect_buf, OP_SIZE);
	f = pmem2_memmove_async(map, dest + shift, dest, OP_SIZE, 0);
	wait_for(&f, w);
	check(future_ok(&f, VDM_OPERATION_MEMMOVE, dest + shift, want) &&
		memcmp(base + off, expect_buf, OP_SIZE + shift) == 0,
		"%s / %s mover / pmem2_memmove_async (overlapping) / %s",
		gran, mn, wn);

	/* memset in the mapping; c is taken as unsigned char */
	int c = 0x100 | (0x40 + (int)(seed % 64));
	memset(base + off - 64, 0x22, OP_SIZE + 128);
	f = pmem2_memset_async(map, dest, c, OP_SIZE, 0);
	wait_for(&f, w);
	memset(expect_buf, c & 0xff, OP_SIZE);
	check(future_ok(&f, VDM_OPERATION_MEMSET, dest, want) &&
		memcmp(dest, expect_buf, OP_SIZE) == 0 &&
		guards_ok(base, off, off + OP_SIZE, 0x22),
		"%s / %s mover / pmem2_memset_async / %s", gran, mn, wn);
}

/* Three futures of one map in flight together. */
static void
run_multiple(struct pmem2_map *map, const char *gran,
	enum pmem2_granularity g, enum mover_kind m)
{
	char *base = pmem2_map_get_address(map);
	int want = expect_persist_entry(g, m);
	char *a = base + (1u << 20) + 5, *b = base + (2u << 20) + 9;
	char *c = base + (3u << 20) + 3;

	fill(src_buf, OP_SIZE, 99);
	memset(a, 0, OP_SIZE);
	fill(b, OP_SIZE, 7);
	memcpy(expect_buf, b, OP_SIZE);

	struct pmem2_future fa = pmem2_memcpy_async(map, a, src_buf,
		OP_SIZE, 0);
	struct pmem2_future fb = pmem2_memmove_async(map, c, b, OP_SIZE, 0);
	struct pmem2_future fc = pmem2_memset_async(map, b, 0x5c, OP_SIZE, 0);
	struct future *futs[] = { FUTURE_AS_RUNNABLE(&fa),
		FUTURE_AS_RUNNABLE(&fb), FUTURE_AS_RUNNABLE(&fc) };

	/*
	 * fb reads b and fc writes it: poll fb to completion first so the
	 * result does not depend on the order the movers run them.
	 */
	FUTURE_BUSY_POLL(&fb);
	runtime_wait_multiple(rt, futs, 3);

	int ok = future_ok(&fa, VDM_OPERATION_MEMCPY, a, want) &&
		future_ok(&fb, VDM_OPERATION_MEMMOVE, c, want) &&
		future_ok(&fc, VDM_OPERATION_MEMSET, b, want) &&
		memcmp(a, src_buf, OP_SIZE) == 0 &&
		memcmp(c, expect_buf, OP_SIZE) == 0;
	memset(expect_buf, 0x5c, OP_SIZE);
	ok = ok && memcmp(b, expect_buf, OP_SIZE) == 0;
	check(ok, "%s / %s mover / 3 futures / runtime_wait_multiple",
		gran, mover_names[m]);
}

static struct pmem2_map *
map_file(int fd, const char *gran, struct vdm *vdm,
	struct pmem2_config **cfg, struct pmem2_source **src)
{
	struct pmem2_map *map = NULL;
	int ret;

	/* read by every pmem2_map_new() call (libpmem2(7)) */
	setenv("PMEM2_FORCE_GRANULARITY", gran, 1);

	if ((ret = pmem2_config_new(cfg)) != 0)
		goto err;
	/* PAGE is the weakest requirement: any forced value satisfies it */
	if ((ret = pmem2_config_set_required_store_granularity(*cfg,
			PMEM2_GRANULARITY_PAGE)) != 0)
		goto err;
	if (vdm != NULL && (ret = pmem2_config_set_vdm(*cfg, vdm)) != 0)
		goto err;
	if ((ret = pmem2_source_from_fd(src, fd)) != 0)
		goto err;
	if ((ret = pmem2_map_new(&map, *cfg, *src)) != 0)
		goto err;
	return map;
err:
	printf("    libpmem2 error %d: %s\n", ret, pmem2_errormsg());
	return NULL;
}

int
main(int argc, char *argv[])
{
	const char *dir = argc > 1 ? argv[1] : "/dev/shm";
	char path[4096];

	/*
	 * sizeof(struct pmem2_future) as libpmem2 1.12.1 returns it by value:
	 * 40 (future) + 160 (vdm op entry: 40 + 120) + 112 (persist entry:
	 * 40 + 72) + 8 (output). A different size here would corrupt memory
	 * on every call.
	 */
	check(sizeof(struct pmem2_future) == 320 &&
		offsetof(struct pmem2_future, data.fin) == 200 &&
		sizeof(union pmem2_finalize_future) == 72,
		"layout: sizeof(struct pmem2_future) %zu == 320, fin at %zu == 200",
		sizeof(struct pmem2_future),
		offsetof(struct pmem2_future, data.fin));

	snprintf(path, sizeof(path), "%s/miniasync-pmem2-XXXXXX", dir);
	int fd = mkstemp(path);
	if (!check(fd >= 0, "create a file under %s", dir)) {
		printf("    %s: %s\n", path, strerror(errno));
		goto out;
	}
	unlink(path); /* cleaned up on exit whatever happens */
	if (!check(ftruncate(fd, MAP_SIZE) == 0, "size it to %u bytes",
			MAP_SIZE))
		goto out_fd;

	rt = runtime_new();
	struct data_mover_sync *dms = data_mover_sync_new();
	struct data_mover_threads *dmt = data_mover_threads_default();
	src_buf = malloc(MAP_SIZE);
	expect_buf = malloc(MAP_SIZE);
	if (!check(rt && dms && dmt && src_buf && expect_buf,
			"create the runtime, the sync and the threads movers"))
		goto out_movers;

	struct vdm *vdms[MOVER_COUNT] = { NULL,
		data_mover_sync_get_vdm(dms), data_mover_threads_get_vdm(dmt) };
	unsigned seed = 0;

	for (size_t gi = 0; gi < sizeof(granularities) / sizeof(*granularities);
		gi++) {
		const char *gran = granularities[gi];
		for (int m = 0; m < MOVER_COUNT; m++) {
			struct pmem2_config *cfg = NULL;
			struct pmem2_source *src = NULL;
			struct pmem2_map *map = map_file(fd, gran, vdms[m],
				&cfg, &src);
			if (check(map != NULL, "%s / %s mover: pmem2_map_new",
					gran, mover_names[m]) &&
				check(pmem2_map_get_store_granularity(map) ==
					gran_values[gi],
					"%s / %s mover: the map has the forced "
					"granularity", gran, mover_names[m])) {
				run_ops(map, gran, gran_values[gi],
					(enum mover_kind)m, WAIT_BUSY_POLL,
					seed++);
				run_ops(map, gran, gran_values[gi],
					(enum mover_kind)m, WAIT_RUNTIME,
					seed++);
				run_multiple(map, gran, gran_values[gi],
					(enum mover_kind)m);
			}
			if (map != NULL)
				pmem2_map_delete(&map);
			if (src != NULL)
				pmem2_source_delete(&src);
			if (cfg != NULL)
				pmem2_config_delete(&cfg);
		}
	}
	unsetenv("PMEM2_FORCE_GRANULARITY");

out_movers:
	free(expect_buf);
	free(src_buf);
	if (dmt != NULL)
		data_mover_threads_delete(dmt);
	if (dms != NULL)
		data_mover_sync_delete(dms);
	if (rt != NULL)
		runtime_delete(rt);
out_fd:
	close(fd);
out:
	printf("pmem2 consumer: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
