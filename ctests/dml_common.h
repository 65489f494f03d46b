/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_common.h -- helpers shared by the DSA mover's C tests: buffers
 * (including mmapped memory the process never touched), a poller-driven
 * wait (poll only when the monitor word says so), and one matrix of
 * operations x sizes x flags x layouts run through a mover, checking data,
 * outputs and which notifier each future chose.
 */
#ifndef MINIASYNC_DML_COMMON_H
#define MINIASYNC_DML_COMMON_H

#include <libminiasync.h>
#include <libminiasync-vdm-dml.h>
#include <stdint.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include "test.h"

static inline void
dml_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8) * 3 + 1);
}

static inline int
dml_all(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* An anonymous mapping the process has never touched (no huge pages). */
static inline unsigned char *
dml_untouched(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, n, MADV_NOHUGEPAGE);
	return (unsigned char *)p;
}

static inline double
dml_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Polls a vdm future to completion the way a FUTURE_NOTIFIER_POLLER waiter
 * would: after each RUNNING poll that chose POLLER, wait until the monitor
 * word is non-zero before polling again. Returns the notifier the first
 * poll chose. A word stuck at 0 for 20 s fails the check (the future would
 * never be polled again).
 */
static inline enum future_notifier_type
dml_wait(struct vdm_operation_future *f)
{
	struct future_notifier n;
	memset(&n, 0, sizeof(n));
	n.notifier_used = FUTURE_NOTIFIER_WAKER; /* must be overwritten */
	enum future_state st = future_poll(FUTURE_AS_RUNNABLE(f), &n);
	enum future_notifier_type first = n.notifier_used;
	if (first == FUTURE_NOTIFIER_POLLER)
		CHECK(n.poller.ptr_to_monitor != NULL);
	while (st != FUTURE_STATE_COMPLETE) {
		if (n.notifier_used == FUTURE_NOTIFIER_POLLER &&
				n.poller.ptr_to_monitor != NULL) {
			double until = dml_now() + 20;
			while (__atomic_load_n(n.poller.ptr_to_monitor,
					__ATOMIC_ACQUIRE) == 0) {
				if (dml_now() > until) {
					CHECK(!"monitor word stuck at 0");
					return first;
				}
				sched_yield();
			}
		}
		st = future_poll(FUTURE_AS_RUNNABLE(f), &n);
	}
	return first;
}

/* Which notifier a future of `n` bytes must choose on this mover. */
typedef enum future_notifier_type (*dml_expect_fn)(size_t n);

static const size_t dml_sizes[] = { 0, 1, 7, 63, 64, 65, 4095, 4096, 4097,
	65535, 65536, 65537, (1 << 20) + 13 };
static const uint64_t dml_flags[] = { 0, VDM_F_MEM_DURABLE,
	VDM_F_NO_CACHE_HINT, VDM_F_MEM_DURABLE | VDM_F_NO_CACHE_HINT,
	0x10000000003ULL };

#define DML_NSIZES (sizeof(dml_sizes) / sizeof(dml_sizes[0]))
#define DML_NFLAGS (sizeof(dml_flags) / sizeof(dml_flags[0]))

/*
 * memcpy, memmove (overlapping both ways), memset and flush at every size
 * and flag combination, at odd offsets; data, outputs and notifiers are
 * checked. `expect` NULL skips the notifier check.
 */
static inline void
dml_matrix(struct vdm *v, dml_expect_fn expect)
{
	size_t max = (1 << 20) + 13;
	size_t cap = max + 4096;
	unsigned char *src = (unsigned char *)malloc(cap);
	unsigned char *dst = (unsigned char *)malloc(cap);
	unsigned char *want = (unsigned char *)malloc(cap);
	if (src == NULL || dst == NULL || want == NULL) {
		CHECK(!"out of memory");
		return;
	}
	/* MINIASYNC_TEST_SCALE (valgrind): sizes up to 64 KiB + 1, 2 flags */
	int small = test_scale(10) < 10;
	for (size_t si = 0; si < DML_NSIZES; si++) {
		size_t n = dml_sizes[si];
		if (small && n > 65537)
			continue;
		for (size_t fi = 0; fi < DML_NFLAGS; fi++) {
			if (small && fi % 3 != 0)
				continue;
			uint64_t fl = dml_flags[fi];
			enum future_notifier_type used;

			/* memcpy, destination at an odd offset */
			dml_pattern(src, cap, (unsigned)(si * 7 + fi));
			memset(dst, 0xee, cap);
			struct vdm_operation_future f =
				vdm_memcpy(v, dst + 3, src + 1, n, fl);
			used = dml_wait(&f);
			CHECK_EQ(f.output.result, VDM_SUCCESS);
			CHECK_EQ(f.output.type, VDM_OPERATION_MEMCPY);
			CHECK(f.output.output.memcpy.dest == dst + 3);
			CHECK(memcmp(dst + 3, src + 1, n) == 0);
			CHECK(dml_all(dst, 3, 0xee) && dst[3 + n] == 0xee);
			if (expect)
				CHECK_EQ(used, expect(n));

			/* memmove with the destination above the source */
			memcpy(want, src, cap);
			memmove(want + 5, want, n);
			f = vdm_memmove(v, src + 5, src, n, fl);
			used = dml_wait(&f);
			CHECK_EQ(f.output.result, VDM_SUCCESS);
			CHECK_EQ(f.output.type, VDM_OPERATION_MEMMOVE);
			CHECK(f.output.output.memmove.dest == src + 5);
			CHECK(memcmp(want, src, n + 5) == 0);
			if (expect)
				CHECK_EQ(used, expect(n));

			/* memmove with the destination below the source */
			memcpy(want, src, cap);
			memmove(want + 1, want + 4000, n);
			f = vdm_memmove(v, src + 1, src + 4000, n, fl);
			dml_wait(&f);
			CHECK_EQ(f.output.result, VDM_SUCCESS);
			CHECK(memcmp(want, src, n + 4000) == 0);

			/* memset */
			memset(dst, 0xee, cap);
			f = vdm_memset(v, dst + 1, 0x3c, n, fl);
			used = dml_wait(&f);
			CHECK_EQ(f.output.result, VDM_SUCCESS);
			CHECK_EQ(f.output.type, VDM_OPERATION_MEMSET);
			CHECK(f.output.output.memset.str == dst + 1);
			CHECK(dml_all(dst + 1, n, 0x3c));
			CHECK(dst[0] == 0xee && dst[1 + n] == 0xee);
			if (expect)
				CHECK_EQ(used, expect(n));

			/* flush */
			f = vdm_flush(v, dst, n, fl);
			dml_wait(&f);
			CHECK_EQ(f.output.result, VDM_SUCCESS);
			CHECK_EQ(f.output.type, VDM_OPERATION_FLUSH);
			CHECK(dml_all(dst + 1, n, 0x3c));
		}
	}
	free(src);
	free(dst);
	free(want);
}

/*
 * `count` 4 KiB-ish copies (odd sizes) all created before any is polled,
 * then waited for together with runtime_wait_multiple().
 */
static inline void
dml_many(struct vdm *v, size_t count)
{
	size_t stride = 4096 + 64;
	unsigned char *src = (unsigned char *)malloc(count * stride);
	unsigned char *dst = (unsigned char *)calloc(count, stride);
	struct vdm_operation_future *fs = (struct vdm_operation_future *)
		calloc(count, sizeof(*fs));
	struct future **ptrs = (struct future **)calloc(count, sizeof(*ptrs));
	struct runtime *r = runtime_new();
	if (!src || !dst || !fs || !ptrs || !r) {
		CHECK(!"out of memory");
		return;
	}
	dml_pattern(src, count * stride, 11);
	for (size_t i = 0; i < count; i++) {
		size_t n = 4096 - (i % 61);
		fs[i] = vdm_memcpy(v, dst + i * stride, src + i * stride, n,
			i % 4);
		ptrs[i] = FUTURE_AS_RUNNABLE(&fs[i]);
	}
	runtime_wait_multiple(r, ptrs, count);
	size_t bad = 0;
	for (size_t i = 0; i < count; i++) {
		size_t n = 4096 - (i % 61);
		if (fs[i].output.result != VDM_SUCCESS ||
				memcmp(dst + i * stride, src + i * stride, n) != 0 ||
				!dml_all(dst + i * stride + n, stride - n, 0))
			bad++;
	}
	CHECK_EQ(bad, 0);
	runtime_delete(r);
	free(ptrs);
	free(fs);
	free(src);
	free(dst);
}

/* Copies into and out of memory the process never touched. */
static inline void
dml_untouched_buffers(struct vdm *v)
{
	size_t n = 64 * 4096;
	unsigned char *src = (unsigned char *)malloc(n);
	unsigned char *dst = dml_untouched(n);
	unsigned char *zero = dml_untouched(n);
	unsigned char *out = (unsigned char *)malloc(n);
	unsigned char *fill = dml_untouched(n);
	if (!src || !dst || !zero || !out || !fill) {
		CHECK(!"out of memory");
		return;
	}
	dml_pattern(src, n, 3);
	struct vdm_operation_future f = vdm_memcpy(v, dst + 100, src, n - 200,
		VDM_F_MEM_DURABLE);
	dml_wait(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(memcmp(dst + 100, src, n - 200) == 0);
	CHECK(dml_all(dst, 100, 0));

	memset(out, 0xff, n);
	f = vdm_memcpy(v, out, zero, n, 0);
	dml_wait(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(dml_all(out, n, 0));

	f = vdm_memset(v, fill + 1, 0x77, n - 2, 0);
	dml_wait(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(fill[0] == 0 && fill[n - 1] == 0 && dml_all(fill + 1, n - 2, 0x77));

	/* an overlapping move inside a half-touched mapping */
	unsigned char *m = dml_untouched(n);
	dml_pattern(m, n / 2, 9);
	memcpy(out, m, n / 2);
	f = vdm_memmove(v, m + n / 4 + 5, m, n / 2, 0);
	dml_wait(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(memcmp(m + n / 4 + 5, out, n / 2) == 0);

	munmap(m, n);
	munmap(dst, n);
	munmap(zero, n);
	munmap(fill, n);
	free(src);
	free(out);
}

#endif
