/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_bad_args.c -- our NULL and bad-argument policy: NULL movers and
 * runtimes are ignored (or give NULL), NULL buffers with a non-zero length,
 * wrapping ranges and unknown operation types complete with
 * VDM_ERROR_JOB_CORRUPTED without touching memory, zero-length operations
 * succeed, junk flag bits are accepted, out-of-range constructor arguments
 * give NULL, and an unknown property is answered with 0.
 */
#include <libminiasync.h>
#include <stdint.h>
#include <unistd.h>
#include "test.h"

/* A future that never completes by itself, counting its polls. */
struct stuck_data {
	int polls;
};
struct stuck_output {
	int unused;
};
FUTURE(stuck_future, struct stuck_data, struct stuck_output);

static enum future_state
stuck_task(struct future_context *ctx, struct future_notifier *n)
{
	(void)n;
	struct stuck_data *d = future_context_get_data(ctx);
	d->polls++;
	return FUTURE_STATE_RUNNING;
}

static void *
dummy_memcpy(void *d, const void *s, size_t n, unsigned f)
{
	(void)f;
	return memcpy(d, s, n);
}

static void *
dummy_memset(void *d, int c, size_t n, unsigned f)
{
	(void)f;
	return memset(d, c, n);
}

static void
null_movers(void)
{
	data_mover_sync_delete(NULL);
	data_mover_threads_delete(NULL);
	vdm_synchronous_delete(NULL);
	CHECK(data_mover_sync_get_vdm(NULL) == NULL);
	CHECK(data_mover_threads_get_vdm(NULL) == NULL);
	data_mover_threads_set_memcpy_fn(NULL, dummy_memcpy);
	data_mover_threads_set_memmove_fn(NULL, dummy_memcpy);
	data_mover_threads_set_memset_fn(NULL, dummy_memset);
	data_mover_threads_set_memcpy_fn(NULL, NULL);
}

static void
null_runtime_and_arrays(void)
{
	struct stuck_future s;
	FUTURE_INIT(&s, stuck_task);
	s.data.polls = 0;
	struct future *futs[] = { FUTURE_AS_RUNNABLE(&s) };

	runtime_delete(NULL);
	runtime_wait(NULL, FUTURE_AS_RUNNABLE(&s));
	runtime_wait_multiple(NULL, futs, 1);
	runtime_wait_all(NULL, FUTURE_AS_RUNNABLE(&s), 1);
	CHECK_EQ(s.data.polls, 0);

	struct runtime *rt = runtime_new();
	CHECK(rt != NULL);
	runtime_wait(rt, NULL);
	runtime_wait_multiple(rt, NULL, 4);
	runtime_wait_all(rt, NULL, 4);
	runtime_wait_multiple(rt, futs, 0);
	runtime_wait_all(rt, FUTURE_AS_RUNNABLE(&s), 0);
	CHECK_EQ(s.data.polls, 0);

	/* NULL entries among real ones are skipped */
	struct stuck_future done;
	FUTURE_INIT_COMPLETE(&done);
	struct future *with_null[] = { NULL, FUTURE_AS_RUNNABLE(&done), NULL };
	runtime_wait_multiple(rt, with_null, 3);
	runtime_delete(rt);
}

/*
 * An incomplete future without a task cannot progress: the runtime does
 * not call through NULL (and does not wait for it forever).
 */
static void
runtime_null_task(void)
{
	struct runtime *rt = runtime_new();
	struct stuck_future s;
	FUTURE_INIT(&s, NULL);
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&s));
	CHECK_EQ(FUTURE_STATE(&s), FUTURE_STATE_IDLE);
	runtime_delete(rt);
}

static void
bad_buffers_on(struct vdm *vdm, const char *name)
{
	unsigned char buf[64];
	memset(buf, 0x3C, sizeof(buf));
	struct vdm_operation_future f[6];
	f[0] = vdm_memcpy(vdm, buf, NULL, 16, 0);
	f[1] = vdm_memcpy(vdm, NULL, buf, 16, 0);
	f[2] = vdm_memmove(vdm, NULL, buf, 16, 0);
	f[3] = vdm_memmove(vdm, buf, NULL, 16, 0);
	f[4] = vdm_memset(vdm, NULL, 0, 16, 0);
	f[5] = vdm_flush(vdm, NULL, 16, 0);
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(FUTURE_STATE(&f[i]), FUTURE_STATE_IDLE);
		FUTURE_BUSY_POLL(&f[i]);
		if (f[i].output.result != VDM_ERROR_JOB_CORRUPTED)
			fprintf(stderr, "%s: op %d\n", name, i);
		CHECK_EQ(f[i].output.result, VDM_ERROR_JOB_CORRUPTED);
	}
	CHECK(f[0].output.output.memcpy.dest == NULL);
	CHECK(f[3].output.output.memmove.dest == NULL);
	CHECK_EQ(f[0].output.type, VDM_OPERATION_MEMCPY);
	CHECK_EQ(f[2].output.type, VDM_OPERATION_MEMMOVE);
	CHECK_EQ(f[4].output.type, VDM_OPERATION_MEMSET);
	CHECK_EQ(f[5].output.type, VDM_OPERATION_FLUSH);
	CHECK(all_bytes(buf, sizeof(buf), 0x3C));

	/* ranges that wrap around the address space */
	void *top = (void *)(UINTPTR_MAX - 8);
	struct vdm_operation_future w = vdm_memcpy(vdm, buf, top, 64, 0);
	FUTURE_BUSY_POLL(&w);
	CHECK_EQ(w.output.result, VDM_ERROR_JOB_CORRUPTED);
	w = vdm_memset(vdm, top, 1, 64, 0);
	FUTURE_BUSY_POLL(&w);
	CHECK_EQ(w.output.result, VDM_ERROR_JOB_CORRUPTED);
	CHECK(all_bytes(buf, sizeof(buf), 0x3C));

	/* zero length: NULL is fine and nothing is written */
	struct vdm_operation_future z[5];
	z[0] = vdm_memcpy(vdm, NULL, NULL, 0, 0);
	z[1] = vdm_memmove(vdm, NULL, NULL, 0, 0);
	z[2] = vdm_memset(vdm, NULL, 7, 0, 0);
	z[3] = vdm_flush(vdm, NULL, 0, 0);
	z[4] = vdm_memset(vdm, buf, 7, 0, 0);
	for (int i = 0; i < 5; i++) {
		FUTURE_BUSY_POLL(&z[i]);
		CHECK_EQ(z[i].output.result, VDM_SUCCESS);
	}
	CHECK(z[4].output.output.memset.str == buf);
	CHECK(all_bytes(buf, sizeof(buf), 0x3C));
}

static void
null_buffers_sync(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	bad_buffers_on(data_mover_sync_get_vdm(dms), "sync");
	data_mover_sync_delete(dms);
}

static void
null_buffers_threads(void)
{
	enum future_notifier_type kinds[] = { FUTURE_NOTIFIER_WAKER,
		FUTURE_NOTIFIER_POLLER, FUTURE_NOTIFIER_NONE };
	for (int k = 0; k < 3; k++) {
		struct data_mover_threads *dmt =
			data_mover_threads_new(2, 4, kinds[k]);
		CHECK(dmt != NULL);
		if (dmt == NULL)
			return;
		bad_buffers_on(data_mover_threads_get_vdm(dmt), "threads");
		data_mover_threads_delete(dmt);
	}
}

/* operation.type set to a value outside the enum before the first poll */
static void
unknown_type_on(struct vdm *vdm, struct runtime *rt)
{
	unsigned bad[] = { 4, 7, 0x7fffffff, 0xffffffffu };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char src[32], dst[32];
		memset(src, 1, 32);
		memset(dst, 2, 32);
		struct vdm_operation_future f = vdm_memcpy(vdm, dst, src, 32, 0);
		memcpy(&f.data.operation.type, &bad[i], sizeof(bad[i]));
		if (i % 2)
			runtime_wait(rt, FUTURE_AS_RUNNABLE(&f));
		else
			FUTURE_BUSY_POLL(&f);
		CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_COMPLETE);
		CHECK_EQ(f.output.result, VDM_ERROR_JOB_CORRUPTED);
		CHECK(all_bytes(dst, 32, 2));
	}
}

static void
unknown_type_rejected(void)
{
	struct runtime *rt = runtime_new();
	struct data_mover_sync *dms = data_mover_sync_new();
	unknown_type_on(data_mover_sync_get_vdm(dms), rt);
	data_mover_sync_delete(dms);
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt)
		unknown_type_on(data_mover_threads_get_vdm(dmt), rt);
	data_mover_threads_delete(dmt);
	runtime_delete(rt);
}

static void
junk_flags_on(struct vdm *vdm)
{
	uint64_t flags[] = { ~0ULL, 0xF0ULL, 1ULL << 63, 0x12345678ULL << 8 };
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		unsigned char s[100], d[100];
		memset(s, (int)i + 1, sizeof(s));
		memset(d, 0, sizeof(d));
		struct vdm_operation_future f = vdm_memcpy(vdm, d, s, 100,
			flags[i]);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
		CHECK(memcmp(s, d, 100) == 0);
		f = vdm_memset(vdm, d, 0x55, 50, flags[i]);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
		CHECK(all_bytes(d, 50, 0x55));
		f = vdm_memmove(vdm, d + 1, d, 60, flags[i]);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
		CHECK(all_bytes(d + 1, 50, 0x55));
		f = vdm_flush(vdm, d, 100, flags[i]);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
	}
}

static void
junk_flags_accepted(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	junk_flags_on(data_mover_sync_get_vdm(dms));
	data_mover_sync_delete(dms);
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 4, FUTURE_NOTIFIER_NONE);
	CHECK(dmt != NULL);
	if (dmt)
		junk_flags_on(data_mover_threads_get_vdm(dmt));
	data_mover_threads_delete(dmt);
}

static void
threads_new_limits(void)
{
	CHECK(data_mover_threads_new(4097, 8, FUTURE_NOTIFIER_WAKER) == NULL);
	CHECK(data_mover_threads_new(SIZE_MAX, 8, FUTURE_NOTIFIER_WAKER) ==
		NULL);
	CHECK(data_mover_threads_new(1, ((size_t)1 << 24) + 1,
		FUTURE_NOTIFIER_WAKER) == NULL);
	CHECK(data_mover_threads_new(1, SIZE_MAX, FUTURE_NOTIFIER_WAKER) ==
		NULL);
	CHECK(data_mover_threads_new(1, (size_t)1 << 32,
		FUTURE_NOTIFIER_WAKER) == NULL);
	CHECK(data_mover_threads_new(0, 0, FUTURE_NOTIFIER_WAKER) == NULL);
}

/* Properties other than ASYNC are answered with 0, not 1. */
static void
unknown_property(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	char a[4] = "abc", b[4];
	struct vdm_operation_future f = vdm_memcpy(vdm, b, a, 4, 0);
	unsigned props[] = { 1, 2, 100, 0xffffffffu };
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
		enum future_property p;
		memcpy(&p, &props[i], sizeof(p));
		CHECK_EQ(vdm->has_property(&f, p), 0);
		CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f), p), 0);
	}
	CHECK_EQ(vdm->has_property(&f, FUTURE_PROPERTY_ASYNC), 1);
	FUTURE_BUSY_POLL(&f);
	CHECK(memcmp(a, b, 4) == 0);
	data_mover_threads_delete(dmt);
}

int
main(void)
{
	test_prog = "test_bad_args";
	alarm(300);
	RUN(null_movers);
	RUN(null_runtime_and_arrays);
	RUN(runtime_null_task);
	RUN(null_buffers_sync);
	RUN(null_buffers_threads);
	RUN(unknown_type_rejected);
	RUN(junk_flags_accepted);
	RUN(threads_new_limits);
	RUN(unknown_property);
	TEST_DONE();
}
