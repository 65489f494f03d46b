/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_symbols_inline.c -- the real exported symbols behind the header's
 * static inline API (future_poll, future_has_property,
 * future_context_get_*, vdm_memcpy/memmove/memset/flush, vdm_is_supported)
 * and the extensions vdm_synchronous_new/delete and runtime_wait_all. The
 * header's inline functions shadow these names in C, so they are looked up
 * with dlsym(RTLD_DEFAULT, ...) the way an FFI user would reach them. Also
 * checks that upstream's 14 functions are bound at LIBMINIASYNC_1.0.
 */
#define _GNU_SOURCE
#include <libminiasync.h>
#include <dlfcn.h>
#include <stdint.h>
#include <unistd.h>
#include "test.h"

typedef enum future_state (*poll_fn_t)(struct future *,
	struct future_notifier *);
typedef int (*prop_fn_t)(struct future *, enum future_property);
typedef void *(*ctx_ptr_fn_t)(struct future_context *);
typedef size_t (*ctx_size_fn_t)(struct future_context *);
typedef struct vdm_operation_future (*copy_fn_t)(struct vdm *, void *,
	void *, size_t, uint64_t);
typedef struct vdm_operation_future (*set_fn_t)(struct vdm *, void *, int,
	size_t, uint64_t);
typedef struct vdm_operation_future (*flush_fn_t)(struct vdm *, void *,
	size_t, uint64_t);
typedef int (*supported_fn_t)(struct vdm *, unsigned);
typedef struct vdm *(*sync_new_fn_t)(void);
typedef void (*sync_delete_fn_t)(struct vdm *);
typedef void (*wait_all_fn_t)(struct runtime *, struct future *, size_t);

static poll_fn_t x_future_poll;
static prop_fn_t x_future_has_property;
static ctx_ptr_fn_t x_get_data, x_get_output;
static ctx_size_fn_t x_get_size;
static copy_fn_t x_vdm_memcpy, x_vdm_memmove;
static set_fn_t x_vdm_memset;
static flush_fn_t x_vdm_flush;
static supported_fn_t x_vdm_is_supported;
static sync_new_fn_t x_vdm_synchronous_new;
static sync_delete_fn_t x_vdm_synchronous_delete;
static wait_all_fn_t x_runtime_wait_all;

static void *
lookup(const char *name)
{
	void *p = dlsym(RTLD_DEFAULT, name);
	if (p == NULL) {
		fprintf(stderr, "dlsym(%s) failed\n", name);
		return NULL;
	}
	Dl_info info;
	if (!dladdr(p, &info) || info.dli_fname == NULL ||
		strstr(info.dli_fname, "libminiasync") == NULL) {
		fprintf(stderr, "%s does not come from libminiasync\n", name);
		return NULL;
	}
	return p;
}

static int resolved;

static void
symbols_resolve(void)
{
	x_future_poll = (poll_fn_t)lookup("future_poll");
	x_future_has_property = (prop_fn_t)lookup("future_has_property");
	x_get_data = (ctx_ptr_fn_t)lookup("future_context_get_data");
	x_get_output = (ctx_ptr_fn_t)lookup("future_context_get_output");
	x_get_size = (ctx_size_fn_t)lookup("future_context_get_size");
	x_vdm_memcpy = (copy_fn_t)lookup("vdm_memcpy");
	x_vdm_memmove = (copy_fn_t)lookup("vdm_memmove");
	x_vdm_memset = (set_fn_t)lookup("vdm_memset");
	x_vdm_flush = (flush_fn_t)lookup("vdm_flush");
	x_vdm_is_supported = (supported_fn_t)lookup("vdm_is_supported");
	x_vdm_synchronous_new = (sync_new_fn_t)lookup("vdm_synchronous_new");
	x_vdm_synchronous_delete =
		(sync_delete_fn_t)lookup("vdm_synchronous_delete");
	x_runtime_wait_all = (wait_all_fn_t)lookup("runtime_wait_all");
	resolved = x_future_poll && x_future_has_property && x_get_data &&
		x_get_output && x_get_size && x_vdm_memcpy && x_vdm_memmove &&
		x_vdm_memset && x_vdm_flush && x_vdm_is_supported &&
		x_vdm_synchronous_new && x_vdm_synchronous_delete &&
		x_runtime_wait_all;
	CHECK(resolved);
	/* the declared (non-inline) extensions are the same functions */
	CHECK((void *)x_vdm_synchronous_new == (void *)vdm_synchronous_new);
	CHECK((void *)x_runtime_wait_all == (void *)runtime_wait_all);
}

static void
upstream_version_node(void)
{
	static const char *const names[] = { "runtime_new", "runtime_delete",
		"runtime_wait_multiple", "runtime_wait", "data_mover_sync_new",
		"data_mover_sync_get_vdm", "data_mover_sync_delete",
		"data_mover_threads_new", "data_mover_threads_default",
		"data_mover_threads_get_vdm",
		"data_mover_threads_set_memcpy_fn",
		"data_mover_threads_set_memmove_fn",
		"data_mover_threads_set_memset_fn",
		"data_mover_threads_delete" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		void *v = dlvsym(RTLD_DEFAULT, names[i], "LIBMINIASYNC_1.0");
		void *d = dlsym(RTLD_DEFAULT, names[i]);
		if (v == NULL)
			fprintf(stderr, "%s not at LIBMINIASYNC_1.0\n", names[i]);
		CHECK(v != NULL);
		CHECK(v == d);
	}
	CHECK((void *)dlsym(RTLD_DEFAULT, "runtime_wait") ==
		(void *)runtime_wait);
}

/* ---- future functions ---- */

struct cnt_data {
	int polls;
	int needed;
	struct future_notifier *seen;
	int prop;
	unsigned last_prop_asked;
};
struct cnt_output {
	int out;
};
FUTURE(cnt_future, struct cnt_data, struct cnt_output);

static enum future_state
cnt_task(struct future_context *ctx, struct future_notifier *n)
{
	struct cnt_data *d = future_context_get_data(ctx);
	d->seen = n;
	if (++d->polls < d->needed)
		return FUTURE_STATE_RUNNING;
	((struct cnt_output *)future_context_get_output(ctx))->out = 7;
	return FUTURE_STATE_COMPLETE;
}

static int
cnt_prop(void *fut, enum future_property p)
{
	struct cnt_future *f = fut;
	unsigned raw;
	memcpy(&raw, &p, sizeof(raw));
	f->data.last_prop_asked = raw;
	return f->data.prop;
}

static void
exported_future_poll(void)
{
	if (!resolved)
		return;
	struct cnt_future f;
	FUTURE_INIT_EXT(&f, cnt_task, cnt_prop);
	memset(&f.data, 0, sizeof(f.data));
	f.data.needed = 3;
	f.output.out = 0;
	struct future_notifier n;
	memset(&n, 0, sizeof(n));
	CHECK_EQ(x_future_poll(FUTURE_AS_RUNNABLE(&f), &n),
		FUTURE_STATE_RUNNING);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_RUNNING);
	CHECK(f.data.seen == &n);
	CHECK_EQ(x_future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_RUNNING);
	CHECK(f.data.seen == NULL);
	CHECK_EQ(x_future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.output.out, 7);
	CHECK_EQ(x_future_poll(FUTURE_AS_RUNNABLE(&f), &n),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.data.polls, 3);

	/* a complete future with a NULL task, and NULL itself */
	struct cnt_future c;
	FUTURE_INIT_COMPLETE(&c);
	CHECK_EQ(x_future_poll(FUTURE_AS_RUNNABLE(&c), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(x_future_poll(NULL, NULL), FUTURE_STATE_COMPLETE);
	/* an incomplete future without a task is left alone */
	struct cnt_future t;
	FUTURE_INIT(&t, NULL);
	CHECK_EQ(x_future_poll(FUTURE_AS_RUNNABLE(&t), NULL),
		FUTURE_STATE_IDLE);
}

static void
exported_future_has_property(void)
{
	if (!resolved)
		return;
	struct cnt_future f;
	FUTURE_INIT_EXT(&f, cnt_task, cnt_prop);
	memset(&f.data, 0, sizeof(f.data));
	f.data.prop = 1;
	CHECK_EQ(x_future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), 1);
	CHECK_EQ(f.data.last_prop_asked, FUTURE_PROPERTY_ASYNC);
	f.data.prop = -1;
	CHECK_EQ(x_future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), -1);
	/* the property value is passed through unchanged */
	enum future_property five;
	unsigned raw5 = 5;
	memcpy(&five, &raw5, sizeof(five));
	f.data.prop = 0;
	CHECK_EQ(x_future_has_property(FUTURE_AS_RUNNABLE(&f), five), 0);
	CHECK_EQ(f.data.last_prop_asked, 5);

	FUTURE_INIT(&f, cnt_task);
	CHECK_EQ(x_future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), 0);
	FUTURE_INIT_COMPLETE(&f); /* NULL property function */
	CHECK_EQ(x_future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), 0);
	CHECK_EQ(x_future_has_property(NULL, FUTURE_PROPERTY_ASYNC), 0);
}

static void
exported_context_getters(void)
{
	if (!resolved)
		return;
	struct cnt_future f;
	FUTURE_INIT(&f, cnt_task);
	struct future_context *ctx = &f.base.context;
	CHECK(x_get_data(ctx) == future_context_get_data(ctx));
	CHECK(x_get_data(ctx) == (void *)&f.data);
	CHECK(x_get_output(ctx) == future_context_get_output(ctx));
	CHECK(x_get_output(ctx) == (void *)&f.output);
	CHECK_EQ(x_get_size(ctx), future_context_get_size(ctx));
	CHECK_EQ(x_get_size(ctx), sizeof(f.data) + sizeof(f.output));
	ctx->data_size = 3;
	ctx->output_size = 9;
	CHECK(x_get_output(ctx) == (void *)((char *)&f.data + 3));
	CHECK_EQ(x_get_size(ctx), 12);
	CHECK(x_get_data(NULL) == NULL);
	CHECK(x_get_output(NULL) == NULL);
	CHECK_EQ(x_get_size(NULL), 0);
}

/* ---- vdm functions ---- */

static void
compare_with_inline(struct vdm_operation_future *x,
	struct vdm_operation_future *in)
{
	CHECK_EQ(x->base.context.state, in->base.context.state);
	CHECK_EQ(x->base.context.data_size, in->base.context.data_size);
	CHECK_EQ(x->base.context.output_size, in->base.context.output_size);
	CHECK_EQ(x->base.context.padding, 0);
	CHECK(x->data.vdm == in->data.vdm);
	CHECK((x->data.data == NULL) == (in->data.data == NULL));
	CHECK_EQ(x->data.operation.type, in->data.operation.type);
	CHECK_EQ(x->data.operation.padding, 0);
	switch (in->data.operation.type) {
	case VDM_OPERATION_MEMCPY:
	case VDM_OPERATION_MEMMOVE:
		CHECK(x->data.operation.data.memcpy.dest ==
			in->data.operation.data.memcpy.dest);
		CHECK(x->data.operation.data.memcpy.src ==
			in->data.operation.data.memcpy.src);
		CHECK_EQ(x->data.operation.data.memcpy.n,
			in->data.operation.data.memcpy.n);
		CHECK_EQ(x->data.operation.data.memcpy.flags,
			in->data.operation.data.memcpy.flags);
		break;
	case VDM_OPERATION_MEMSET:
		CHECK(x->data.operation.data.memset.str ==
			in->data.operation.data.memset.str);
		CHECK_EQ(x->data.operation.data.memset.c,
			in->data.operation.data.memset.c);
		CHECK_EQ(x->data.operation.data.memset.n,
			in->data.operation.data.memset.n);
		CHECK_EQ(x->data.operation.data.memset.flags,
			in->data.operation.data.memset.flags);
		break;
	default:
		CHECK(x->data.operation.data.flush.dest ==
			in->data.operation.data.flush.dest);
		CHECK_EQ(x->data.operation.data.flush.n,
			in->data.operation.data.flush.n);
		CHECK_EQ(x->data.operation.data.flush.flags,
			in->data.operation.data.flush.flags);
	}
	CHECK_EQ(x->output.type, in->output.type);
	CHECK_EQ(x->output.result, in->output.result);
	CHECK(x->output.output.memcpy.dest == in->output.output.memcpy.dest);
	CHECK(x->base.task != NULL);
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(x),
		FUTURE_PROPERTY_ASYNC),
		future_has_property(FUTURE_AS_RUNNABLE(in),
			FUTURE_PROPERTY_ASYNC));
}

static void
exported_vdm_on(struct vdm *vdm)
{
	enum { N = 3000 };
	static unsigned char src[N], dst[N + 16], ref[N + 16];
	for (int i = 0; i < N; i++)
		src[i] = (unsigned char)(i * 7 + 1);
	memset(dst, 0, sizeof(dst));

	/* memcpy: same future as the inline one, polled both ways */
	struct vdm_operation_future x = x_vdm_memcpy(vdm, dst, src, N, 0);
	struct vdm_operation_future in = vdm_memcpy(vdm, dst, src, N, 0);
	compare_with_inline(&x, &in);
	FUTURE_BUSY_POLL(&in);
	memset(dst, 0, sizeof(dst));
	while (x_future_poll(FUTURE_AS_RUNNABLE(&x), NULL) !=
		FUTURE_STATE_COMPLETE)
		__FUTURE_WAIT();
	CHECK_EQ(x.output.result, VDM_SUCCESS);
	CHECK_EQ(x.output.type, VDM_OPERATION_MEMCPY);
	CHECK(x.output.output.memcpy.dest == dst);
	CHECK(memcmp(dst, src, N) == 0);

	/* memmove, moved in memory and polled by the header's future_poll */
	memcpy(ref, dst, sizeof(dst));
	memmove(ref + 16, ref, N);
	x = x_vdm_memmove(vdm, dst + 16, dst, N, VDM_F_MEM_DURABLE);
	in = vdm_memmove(vdm, dst + 16, dst, N, VDM_F_MEM_DURABLE);
	compare_with_inline(&x, &in);
	struct vdm_operation_future *h = malloc(sizeof(*h));
	memcpy(h, &x, sizeof(x));
	memset(&x, 0xEE, sizeof(x));
	FUTURE_BUSY_POLL(h);
	CHECK_EQ(h->output.type, VDM_OPERATION_MEMMOVE);
	CHECK_EQ(h->output.result, VDM_SUCCESS);
	CHECK(h->output.output.memmove.dest == dst + 16);
	CHECK(memcmp(dst, ref, N + 16) == 0);
	free(h);
	/* the inline future is deliberately run on a copy of the data */
	FUTURE_BUSY_POLL(&in);

	/* memset, with the value edited before the first poll */
	x = x_vdm_memset(vdm, dst, 0x41, 100, 0);
	in = vdm_memset(vdm, dst, 0x41, 100, 0);
	compare_with_inline(&x, &in);
	FUTURE_BUSY_POLL(&in);
	x.data.operation.data.memset.c = 0x42;
	x.data.operation.data.memset.n = 200;
	FUTURE_BUSY_POLL(&x);
	CHECK_EQ(x.output.type, VDM_OPERATION_MEMSET);
	CHECK(x.output.output.memset.str == dst);
	CHECK(all_bytes(dst, 200, 0x42));

	/* flush: output zeroed before and after */
	x = x_vdm_flush(vdm, dst, N, 0);
	in = vdm_flush(vdm, dst, N, 0);
	compare_with_inline(&x, &in);
	CHECK_EQ(x.output.output.flush.unused, 0);
	FUTURE_BUSY_POLL(&in);
	struct runtime *rt = runtime_new();
	runtime_wait(rt, FUTURE_AS_RUNNABLE(&x));
	runtime_delete(rt);
	CHECK_EQ(x.output.type, VDM_OPERATION_FLUSH);
	CHECK_EQ(x.output.result, VDM_SUCCESS);
	CHECK_EQ(x.output.output.flush.unused, 0);

	/* NULL buffers: JOB_CORRUPTED, as with the inline functions */
	x = x_vdm_memcpy(vdm, dst, NULL, 5, 0);
	FUTURE_BUSY_POLL(&x);
	CHECK_EQ(x.output.result, VDM_ERROR_JOB_CORRUPTED);
}

static void
exported_vdm_functions(void)
{
	if (!resolved)
		return;
	struct data_mover_sync *dms = data_mover_sync_new();
	exported_vdm_on(data_mover_sync_get_vdm(dms));
	data_mover_sync_delete(dms);
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 8, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt)
		exported_vdm_on(data_mover_threads_get_vdm(dmt));
	data_mover_threads_delete(dmt);

	/* a NULL mover gives a complete JOB_CORRUPTED future */
	char c = 0;
	struct vdm_operation_future f = x_vdm_memset(NULL, &c, 1, 1, 0);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.output.result, VDM_ERROR_JOB_CORRUPTED);
	CHECK_EQ(f.output.type, VDM_OPERATION_MEMSET);
	CHECK_EQ(c, 0);
	f = x_vdm_flush(NULL, &c, 1, 0);
	CHECK_EQ(f.output.result, VDM_ERROR_JOB_CORRUPTED);
	CHECK_EQ(x_future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_COMPLETE);
}

static void
exported_vdm_is_supported(void)
{
	if (!resolved)
		return;
	struct vdm v;
	memset(&v, 0, sizeof(v));
	for (unsigned caps = 0; caps < 4; caps++) {
		v.capabilities = caps;
		for (unsigned q = 0; q < 4; q++) {
			int expect = (caps & q) == q;
			CHECK_EQ(x_vdm_is_supported(&v, q), expect);
			CHECK_EQ(vdm_is_supported(&v, q), expect);
		}
	}
	CHECK_EQ(x_vdm_is_supported(NULL, 0), 0);
	struct data_mover_sync *dms = data_mover_sync_new();
	CHECK_EQ(x_vdm_is_supported(data_mover_sync_get_vdm(dms), 0), 1);
	CHECK_EQ(x_vdm_is_supported(data_mover_sync_get_vdm(dms),
		VDM_F_MEM_DURABLE), 0);
	data_mover_sync_delete(dms);
}

static void
exported_vdm_synchronous(void)
{
	if (!resolved)
		return;
	struct vdm *vdm = x_vdm_synchronous_new();
	CHECK(vdm != NULL);
	if (vdm == NULL)
		return;
	char s[10] = "synchron", d[10] = { 0 };
	struct vdm_operation_future f = x_vdm_memcpy(vdm, d, s, 10, 0);
	CHECK_EQ(x_future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK(memcmp(s, d, 10) == 0);
	CHECK(f.output.output.memcpy.dest == d);
	x_vdm_synchronous_delete(vdm);
	x_vdm_synchronous_delete(NULL);
}

static void
exported_runtime_wait_all(void)
{
	if (!resolved)
		return;
	struct runtime *rt = runtime_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	enum { N = 9 };
	unsigned char s[N][64], d[N][64];
	struct vdm_operation_future f[N];
	for (int i = 0; i < N; i++) {
		memset(s[i], i + 1, 64);
		memset(d[i], 0, 64);
		f[i] = x_vdm_memcpy(data_mover_threads_get_vdm(dmt), d[i], s[i],
			64, 0);
	}
	x_runtime_wait_all(rt, FUTURE_AS_RUNNABLE(&f[0]), N);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(FUTURE_STATE(&f[i]), FUTURE_STATE_COMPLETE);
		CHECK(memcmp(s[i], d[i], 64) == 0);
	}
	struct cnt_future c[3];
	for (int i = 0; i < 3; i++) {
		FUTURE_INIT(&c[i], cnt_task);
		memset(&c[i].data, 0, sizeof(c[i].data));
		c[i].data.needed = 2 + i;
		c[i].output.out = 0;
	}
	x_runtime_wait_all(rt, FUTURE_AS_RUNNABLE(&c[0]), 3);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(c[i].data.polls, 2 + i);
		CHECK_EQ(c[i].output.out, 7);
	}
	data_mover_threads_delete(dmt);
	runtime_delete(rt);
}

int
main(void)
{
	test_prog = "test_symbols_inline";
	alarm(300);
	RUN(symbols_resolve);
	RUN(upstream_version_node);
	RUN(exported_future_poll);
	RUN(exported_future_has_property);
	RUN(exported_context_getters);
	RUN(exported_vdm_functions);
	RUN(exported_vdm_is_supported);
	RUN(exported_vdm_synchronous);
	RUN(exported_runtime_wait_all);
	TEST_DONE();
}
