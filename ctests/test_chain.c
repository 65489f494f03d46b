/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_chain.c -- chained futures (the header's chain engine): entry
 * macros and flags, maps handing results on (including setting the next
 * vdm op's dest/src/n before it starts), extra fields after the LAST
 * entry, walks that end at data_size, lazy init entries, entries skipped
 * by a map, future_chain_has_property (first unprocessed entry, -1 when
 * all are processed, lazy inits run), chains on both movers, in the
 * runtime, and moved in memory between polls.
 */
#include <libminiasync.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include "test.h"

static void
fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 29 + (i >> 7));
}

/* ---- a hand-written future: r = a + b after `needed` polls ---- */

struct add_data {
	uint64_t a;
	uint64_t b;
	int needed;
	int done;
};
struct add_output {
	uint64_t r;
};
FUTURE(add_future, struct add_data, struct add_output);

static enum future_state
add_task(struct future_context *ctx, struct future_notifier *n)
{
	(void)n;
	struct add_data *d = future_context_get_data(ctx);
	struct add_output *o = future_context_get_output(ctx);
	if (++d->done < d->needed)
		return FUTURE_STATE_RUNNING;
	o->r = d->a + d->b;
	return FUTURE_STATE_COMPLETE;
}

static int
async_property(void *fut, enum future_property p)
{
	(void)fut;
	return p == FUTURE_PROPERTY_ASYNC;
}

static struct add_future
make_add(uint64_t a, uint64_t b, int needed)
{
	struct add_future f;
	FUTURE_INIT(&f, add_task);
	f.data.a = a;
	f.data.b = b;
	f.data.needed = needed;
	f.data.done = 0;
	f.output.r = 0;
	return f;
}

/* ---- chain 1: two adds, extra fields after the LAST entry ---- */

struct two_add_data {
	FUTURE_CHAIN_ENTRY(struct add_future, first);
	FUTURE_CHAIN_ENTRY_LAST(struct add_future, second);
	uint64_t multiplier;
	uint64_t junk[4];
};
struct two_add_output {
	uint64_t result;
};
FUTURE(two_add_future, struct two_add_data, struct two_add_output);

static int map_calls;
static void *map_last_arg;

/* lhs's result becomes rhs's `a` */
static void
map_add_to_add(struct future_context *lhs, struct future_context *rhs,
	void *arg)
{
	struct add_output *o = future_context_get_output(lhs);
	struct add_data *d = future_context_get_data(rhs);
	d->a = o->r;
	map_calls++;
	map_last_arg = arg;
}

/* the last result times the chain's extra field */
static void
map_add_to_chain(struct future_context *lhs, struct future_context *rhs,
	void *arg)
{
	struct add_output *o = future_context_get_output(lhs);
	struct two_add_data *cd = future_context_get_data(rhs);
	struct two_add_output *co = future_context_get_output(rhs);
	co->result = o->r * cd->multiplier;
	map_calls++;
	map_last_arg = arg;
}

static void
two_add_init(struct two_add_future *c, int needed_first, int *arg)
{
	memset(c, 0xAB, sizeof(*c));
	FUTURE_CHAIN_ENTRY_INIT(&c->data.first, make_add(1, 2, needed_first),
		map_add_to_add, arg);
	FUTURE_CHAIN_ENTRY_INIT(&c->data.second, make_add(0, 10, 1),
		map_add_to_chain, arg + 1);
	c->data.multiplier = 5;
	memset(c->data.junk, 0xFF, sizeof(c->data.junk));
	c->output.result = 0;
	FUTURE_CHAIN_INIT(c);
}

static void
entry_macros(void)
{
	int args[2];
	struct two_add_future c;
	two_add_init(&c, 2, args);
	CHECK_EQ((uintptr_t)c.data.first.flags, 0);
	CHECK_EQ((uintptr_t)c.data.second.flags, FUTURE_CHAIN_FLAG_ENTRY_LAST);
	CHECK_EQ(sizeof(*c.data.first.flags), FUTURE_CHAIN_ENTRY_REGULAR);
	CHECK_EQ(sizeof(*c.data.second.flags), FUTURE_CHAIN_ENTRY_LAST);
	CHECK(c.data.first.init == NULL && c.data.first.init_arg == NULL);
	CHECK(c.data.second.init == NULL && c.data.second.init_arg == NULL);
	CHECK(c.data.first.map == map_add_to_add);
	CHECK(c.data.first.map_arg == &args[0]);
	CHECK(c.data.second.map == map_add_to_chain);
	CHECK(c.data.second.map_arg == &args[1]);
	CHECK_EQ(c.data.first.fut.data.a, 1); /* copied by value */
	CHECK_EQ(c.data.second.fut.data.b, 10);
	CHECK(c.base.task == async_chain_impl);
	CHECK(c.base.has_property == future_chain_has_property);
	CHECK_EQ(c.base.context.state, FUTURE_STATE_IDLE);
	CHECK_EQ(c.base.context.data_size, sizeof(struct two_add_data));
	CHECK_EQ(c.base.context.output_size, sizeof(struct two_add_output));
	CHECK_EQ(c.base.context.padding, 0);
	/* a macro entry is the generic entry: 40-byte header + future */
	CHECK_EQ((char *)&c.data.second - (char *)&c.data.first,
		sizeof(struct future_chain_entry) + sizeof(struct add_data) +
		sizeof(struct add_output));
	CHECK_EQ(offsetof(struct future_chain_entry, future), 40);

	struct future_chain_entry *e1 =
		(struct future_chain_entry *)&c.data.first;
	struct future_chain_entry *e2 =
		(struct future_chain_entry *)&c.data.second;
	CHECK(!FUTURE_CHAIN_ENTRY_IS_LAST(e1));
	CHECK(FUTURE_CHAIN_ENTRY_IS_LAST(e2));
	CHECK(!FUTURE_CHAIN_ENTRY_IS_PROCESSED(e1));
	CHECK(FUTURE_CHAIN_ENTRY_IS_INITIALIZED(e1));
	CHECK(FUTURE_CHAIN_ENTRY_HAS_FLAG(e2, FUTURE_CHAIN_FLAG_ENTRY_LAST));
	CHECK(!FUTURE_CHAIN_ENTRY_HAS_FLAG(e2, FUTURE_CHAIN_VALID_FLAGS));

	FUTURE_BUSY_POLL(&c);
	CHECK(FUTURE_CHAIN_ENTRY_IS_PROCESSED(e1));
	CHECK(FUTURE_CHAIN_ENTRY_IS_PROCESSED(e2));
	CHECK(!FUTURE_CHAIN_ENTRY_IS_LAST(e1));
	CHECK(FUTURE_CHAIN_ENTRY_HAS_FLAG(e2, FUTURE_CHAIN_VALID_FLAGS));
	CHECK_EQ(e1->flags, FUTURE_CHAIN_FLAG_ENTRY_PROCESSED);
	CHECK_EQ(e2->flags, FUTURE_CHAIN_VALID_FLAGS);
}

static void
maps_and_extra_fields(void)
{
	int args[2];
	struct two_add_future c;
	two_add_init(&c, 3, args);
	map_calls = 0;
	/* first needs 3 polls: the chain is RUNNING until then */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&c), NULL),
		FUTURE_STATE_RUNNING);
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&c), NULL),
		FUTURE_STATE_RUNNING);
	CHECK_EQ(map_calls, 0);
	CHECK_EQ(c.data.second.fut.data.done, 0);
	/* third poll: first completes, its map runs, second runs at once */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&c), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(map_calls, 2);
	CHECK(map_last_arg == &args[1]);
	CHECK_EQ(c.data.first.fut.output.r, 3);
	CHECK_EQ(c.data.second.fut.data.a, 3);
	CHECK_EQ(c.data.second.fut.output.r, 13);
	CHECK_EQ(c.output.result, 65);
	CHECK_EQ(c.data.first.fut.data.done, 3);
	CHECK_EQ(c.data.second.fut.data.done, 1);
	/* complete: further polls do nothing */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&c), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(map_calls, 2);
	CHECK_EQ(c.data.multiplier, 5);
}

/* ---- chain 2: no LAST entry, the walk ends at data_size ---- */

struct no_last_data {
	FUTURE_CHAIN_ENTRY(struct add_future, x);
	FUTURE_CHAIN_ENTRY(struct add_future, y);
	FUTURE_CHAIN_ENTRY(struct add_future, z);
};
struct no_last_output {
	uint64_t result;
};
FUTURE(no_last_future, struct no_last_data, struct no_last_output);

static void
map_add_to_nolast(struct future_context *lhs, struct future_context *rhs,
	void *arg)
{
	(void)arg;
	struct add_output *o = future_context_get_output(lhs);
	struct no_last_output *co = future_context_get_output(rhs);
	co->result = o->r;
}

static void
walk_ends_at_data_size(void)
{
	struct no_last_future c;
	FUTURE_CHAIN_ENTRY_INIT(&c.data.x, make_add(4, 4, 1), map_add_to_add,
		NULL);
	FUTURE_CHAIN_ENTRY_INIT(&c.data.y, make_add(0, 100, 2),
		map_add_to_add, NULL);
	FUTURE_CHAIN_ENTRY_INIT(&c.data.z, make_add(0, 1000, 1),
		map_add_to_nolast, NULL);
	c.output.result = 0;
	FUTURE_CHAIN_INIT(&c);
	CHECK_EQ((uintptr_t)c.data.z.flags, 0);
	FUTURE_BUSY_POLL(&c);
	CHECK_EQ(c.output.result, 1108);
	CHECK_EQ(c.data.y.fut.data.done, 2);
}

/* ---- chain 3: vdm ops whose maps set the next op's dest/src/n ---- */

struct vdm_chain_data {
	FUTURE_CHAIN_ENTRY(struct vdm_operation_future, copy);
	FUTURE_CHAIN_ENTRY(struct vdm_operation_future, move);
	FUTURE_CHAIN_ENTRY_LAST(struct vdm_operation_future, set);
	size_t n;      /* extra fields after the LAST entry */
	uint64_t tag;
};
struct vdm_chain_output {
	void *final;
	int result;
	uint64_t tag;
};
FUTURE(vdm_chain_future, struct vdm_chain_data, struct vdm_chain_output);

static int vmap_calls;

/* memcpy done: move its destination 7 bytes up, n - 7 bytes */
static void
map_copy_to_move(struct future_context *lhs, struct future_context *rhs,
	void *arg)
{
	struct vdm_operation_output *o = future_context_get_output(lhs);
	struct vdm_operation_data *d = future_context_get_data(rhs);
	size_t *n = arg;
	d->operation.data.memmove.dest = (char *)o->output.memcpy.dest + 7;
	d->operation.data.memmove.src = o->output.memcpy.dest;
	d->operation.data.memmove.n = *n - 7;
	vmap_calls++;
}

/* memmove done: set the first 3 bytes of the buffer to 'z' */
static void
map_move_to_set(struct future_context *lhs, struct future_context *rhs,
	void *arg)
{
	(void)arg;
	struct vdm_operation_output *o = future_context_get_output(lhs);
	struct vdm_operation_data *d = future_context_get_data(rhs);
	d->operation.data.memset.str = (char *)o->output.memmove.dest - 7;
	d->operation.data.memset.c = 'z';
	d->operation.data.memset.n = 3;
	vmap_calls++;
}

static void
map_set_to_chain(struct future_context *lhs, struct future_context *rhs,
	void *arg)
{
	(void)arg;
	struct vdm_operation_output *o = future_context_get_output(lhs);
	struct vdm_chain_data *cd = future_context_get_data(rhs);
	struct vdm_chain_output *co = future_context_get_output(rhs);
	co->final = o->output.memset.str;
	co->result = (int)o->result;
	co->tag = cd->tag;
	vmap_calls++;
}

static size_t vchain_n;

static void
vdm_chain_init(struct vdm_chain_future *c, struct vdm *vdm,
	unsigned char *buf, unsigned char *pattern, size_t n)
{
	vchain_n = n;
	FUTURE_CHAIN_ENTRY_INIT(&c->data.copy,
		vdm_memcpy(vdm, buf, pattern, n, 0), map_copy_to_move,
		&vchain_n);
	FUTURE_CHAIN_ENTRY_INIT(&c->data.move,
		vdm_memmove(vdm, NULL, NULL, 0, 0), map_move_to_set, NULL);
	FUTURE_CHAIN_ENTRY_INIT(&c->data.set, vdm_memset(vdm, NULL, 0, 0, 0),
		map_set_to_chain, NULL);
	c->data.n = n;
	c->data.tag = 0x1234567890ULL;
	c->output.final = NULL;
	c->output.result = -1;
	c->output.tag = 0;
	FUTURE_CHAIN_INIT(c);
}

static void
vdm_chain_expected(unsigned char *ref, const unsigned char *pattern,
	size_t n)
{
	memcpy(ref, pattern, n);
	memmove(ref + 7, ref, n - 7);
	memset(ref, 'z', 3);
}

static void
vdm_chain_sync(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	enum { N = 1000 };
	unsigned char pattern[N], buf[N + 16], ref[N];
	fill_pattern(pattern, N, 3);
	memset(buf, 0, sizeof(buf));
	vdm_chain_expected(ref, pattern, N);
	struct vdm_chain_future c;
	vdm_chain_init(&c, vdm, buf, pattern, N);
	vmap_calls = 0;
	/* a chain of sync ops completes in one poll */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&c), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(vmap_calls, 3);
	CHECK(memcmp(buf, ref, N) == 0);
	CHECK(all_bytes(buf + N, 16, 0));
	CHECK(c.output.final == buf);
	CHECK_EQ(c.output.result, VDM_SUCCESS);
	CHECK_EQ(c.output.tag, 0x1234567890ULL);
	CHECK(c.data.move.fut.output.output.memmove.dest == buf + 7);
	CHECK_EQ(c.data.move.fut.output.result, VDM_SUCCESS);
	/* chains of sync ops report no ASYNC property until all done */
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&c),
		FUTURE_PROPERTY_ASYNC), -1);
	data_mover_sync_delete(dms);
}

static void
vdm_chain_threads(void)
{
	struct runtime *rt = runtime_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 8, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	struct vdm *vdm = data_mover_threads_get_vdm(dmt);
	enum { N = 100000 };
	unsigned char *pattern = malloc(N), *buf = malloc(N), *ref = malloc(N);
	fill_pattern(pattern, N, 8);
	vdm_chain_expected(ref, pattern, N);
	for (int mode = 0; mode < 3; mode++) {
		memset(buf, 0, N);
		struct vdm_chain_future c;
		vdm_chain_init(&c, vdm, buf, pattern, N);
		vmap_calls = 0;
		if (mode == 0) {
			runtime_wait(rt, FUTURE_AS_RUNNABLE(&c));
		} else if (mode == 1) {
			FUTURE_BUSY_POLL(&c);
		} else {
			/* moved in memory between polls */
			struct vdm_chain_future *h = malloc(sizeof(*h));
			memcpy(h, &c, sizeof(c));
			memset(&c, 0xCD, sizeof(c));
			future_poll(FUTURE_AS_RUNNABLE(h), NULL);
			memcpy(&c, h, sizeof(c));
			memset(h, 0xCD, sizeof(*h));
			future_poll(FUTURE_AS_RUNNABLE(&c), NULL);
			memcpy(h, &c, sizeof(c));
			memset(&c, 0xCD, sizeof(c));
			FUTURE_BUSY_POLL(h);
			memcpy(&c, h, sizeof(c));
			free(h);
		}
		CHECK_EQ(FUTURE_STATE(&c), FUTURE_STATE_COMPLETE);
		CHECK_EQ(vmap_calls, 3);
		CHECK(memcmp(buf, ref, N) == 0);
		CHECK(c.output.final == buf);
		CHECK_EQ(c.output.result, VDM_SUCCESS);
		CHECK_EQ(c.output.tag, 0x1234567890ULL);
	}
	free(pattern);
	free(buf);
	free(ref);
	data_mover_threads_delete(dmt);
	runtime_delete(rt);
}

/* ---- chain 4: lazy init ---- */

struct lazy_params {
	struct vdm *vdm;
	unsigned char *dst;
	unsigned char *src;
	int init_calls;
	struct future_context *chain_ctx_seen;
	uint64_t n_seen;
};

struct lazy_data {
	FUTURE_CHAIN_ENTRY(struct add_future, size);
	FUTURE_CHAIN_ENTRY_LAST(struct vdm_operation_future, copy);
};
struct lazy_output {
	void *dest;
};
FUTURE(lazy_future, struct lazy_data, struct lazy_output);

/* builds the copy with the length computed by the first entry */
static void
lazy_copy_init(void *future, struct future_context *chain_ctx, void *arg)
{
	struct lazy_params *p = arg;
	struct lazy_data *cd = future_context_get_data(chain_ctx);
	p->init_calls++;
	p->chain_ctx_seen = chain_ctx;
	p->n_seen = cd->size.fut.output.r;
	*(struct vdm_operation_future *)future =
		vdm_memcpy(p->vdm, p->dst, p->src, cd->size.fut.output.r, 0);
}

static void
map_lazy_to_chain(struct future_context *lhs, struct future_context *rhs,
	void *arg)
{
	(void)arg;
	struct vdm_operation_output *o = future_context_get_output(lhs);
	struct lazy_output *co = future_context_get_output(rhs);
	co->dest = o->output.memcpy.dest;
}

static int seen_data_size_in_map;

/* the next entry is initialised before this map runs */
static void
map_size_checks_next(struct future_context *lhs, struct future_context *rhs,
	void *arg)
{
	(void)lhs;
	(void)arg;
	seen_data_size_in_map = (int)rhs->data_size;
}

static void
lazy_init_entries(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	unsigned char src[200], dst[200];
	fill_pattern(src, 200, 1);
	for (int with_map = 0; with_map < 2; with_map++) {
		memset(dst, 0, 200);
		struct lazy_params p = { data_mover_threads_get_vdm(dmt), dst,
			src, 0, NULL, 0 };
		struct lazy_future c;
		memset(&c, 0xAB, sizeof(c)); /* the lazy future is junk */
		FUTURE_CHAIN_ENTRY_INIT(&c.data.size, make_add(60, 40, 3),
			with_map ? map_size_checks_next : NULL, NULL);
		FUTURE_CHAIN_ENTRY_LAZY_INIT(&c.data.copy, lazy_copy_init, &p,
			map_lazy_to_chain, NULL);
		CHECK(c.data.copy.init == lazy_copy_init);
		CHECK(c.data.copy.init_arg == &p);
		CHECK_EQ((uintptr_t)c.data.copy.flags,
			FUTURE_CHAIN_FLAG_ENTRY_LAST);
		CHECK(!FUTURE_CHAIN_ENTRY_IS_INITIALIZED(
			(struct future_chain_entry *)&c.data.copy));
		c.output.dest = NULL;
		FUTURE_CHAIN_INIT(&c);
		seen_data_size_in_map = 0;

		/* not initialised while the first entry runs */
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&c), NULL),
			FUTURE_STATE_RUNNING);
		CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&c), NULL),
			FUTURE_STATE_RUNNING);
		CHECK_EQ(p.init_calls, 0);
		FUTURE_BUSY_POLL(&c);
		CHECK_EQ(p.init_calls, 1);
		CHECK(p.chain_ctx_seen == &c.base.context);
		CHECK_EQ(p.n_seen, 100);
		CHECK(c.data.copy.init == NULL);
		CHECK(memcmp(dst, src, 100) == 0);
		CHECK(all_bytes(dst + 100, 100, 0));
		CHECK(c.output.dest == dst);
		if (with_map)
			CHECK_EQ(seen_data_size_in_map,
				sizeof(struct vdm_operation_data));
		/* never again */
		future_poll(FUTURE_AS_RUNNABLE(&c), NULL);
		CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&c),
			FUTURE_PROPERTY_ASYNC), -1);
		CHECK_EQ(p.init_calls, 1);
	}
	data_mover_threads_delete(dmt);
}

/* ---- future_chain_has_property ---- */

struct prop_chain_data {
	FUTURE_CHAIN_ENTRY(struct add_future, a);
	FUTURE_CHAIN_ENTRY(struct vdm_operation_future, b);
	FUTURE_CHAIN_ENTRY_LAST(struct add_future, c);
};
struct prop_chain_output {
	int unused;
};
FUTURE(prop_chain_future, struct prop_chain_data, struct prop_chain_output);

static int gate_open, gate_entered;

static void *
gated_memcpy(void *dst, const void *src, size_t n, unsigned flags)
{
	(void)flags;
	__atomic_add_fetch(&gate_entered, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&gate_open, __ATOMIC_ACQUIRE))
		short_sleep();
	return memcpy(dst, src, n);
}

static void
chain_has_property(void)
{
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	data_mover_threads_set_memcpy_fn(dmt, gated_memcpy);
	__atomic_store_n(&gate_open, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&gate_entered, 0, __ATOMIC_SEQ_CST);
	char s[16] = "property", d[16] = { 0 };
	struct prop_chain_future c;
	FUTURE_CHAIN_ENTRY_INIT(&c.data.a, make_add(1, 1, 2), NULL, NULL);
	FUTURE_CHAIN_ENTRY_INIT(&c.data.b,
		vdm_memcpy(data_mover_threads_get_vdm(dmt), d, s, 16, 0), NULL,
		NULL);
	FUTURE_CHAIN_ENTRY_INIT(&c.data.c, make_add(2, 2, 2), NULL, NULL);
	FUTURE_CHAIN_INIT(&c);
	struct future *cf = FUTURE_AS_RUNNABLE(&c);

	/* first unprocessed entry: a (default property, 0) */
	CHECK_EQ(future_has_property(cf, FUTURE_PROPERTY_ASYNC), 0);
	CHECK_EQ(future_chain_has_property(cf, FUTURE_PROPERTY_ASYNC), 0);
	CHECK_EQ(future_poll(cf, NULL), FUTURE_STATE_RUNNING);
	CHECK_EQ(future_has_property(cf, FUTURE_PROPERTY_ASYNC), 0);
	/* a completes, b (threads mover, ASYNC) starts and blocks */
	CHECK_EQ(future_poll(cf, NULL), FUTURE_STATE_RUNNING);
	CHECK(wait_at_least(&gate_entered, 1));
	CHECK_EQ(future_has_property(cf, FUTURE_PROPERTY_ASYNC), 1);
	CHECK_EQ(future_poll(cf, NULL), FUTURE_STATE_RUNNING);
	CHECK_EQ(future_has_property(cf, FUTURE_PROPERTY_ASYNC), 1);
	__atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
	/* b completes; c needs two polls: property back to 0 */
	while (!FUTURE_CHAIN_ENTRY_IS_PROCESSED(
		(struct future_chain_entry *)&c.data.b))
		CHECK_EQ(future_poll(cf, NULL), FUTURE_STATE_RUNNING);
	CHECK_EQ(c.data.c.fut.data.done, 1);
	CHECK_EQ(future_has_property(cf, FUTURE_PROPERTY_ASYNC), 0);
	CHECK_EQ(future_poll(cf, NULL), FUTURE_STATE_COMPLETE);
	/* every entry processed: -1 */
	CHECK_EQ(future_has_property(cf, FUTURE_PROPERTY_ASYNC), -1);
	CHECK_EQ(c.data.c.fut.output.r, 4);
	CHECK(memcmp(s, d, 16) == 0);
	data_mover_threads_delete(dmt);
}

/* has_property of a chain runs a pending lazy init of its first entry */
struct lazy_prop_data {
	FUTURE_CHAIN_ENTRY_LAST(struct add_future, only);
};
struct lazy_prop_output {
	uint64_t r;
};
FUTURE(lazy_prop_future, struct lazy_prop_data, struct lazy_prop_output);

static int lazy_prop_inits;

static void
lazy_async_add_init(void *future, struct future_context *chain_ctx,
	void *arg)
{
	(void)chain_ctx;
	struct add_future *f = future;
	lazy_prop_inits++;
	*f = make_add(20, 22, 1);
	f->base.has_property = async_property;
	f->data.b = (uint64_t)(uintptr_t)arg;
}

static void
map_only_to_chain(struct future_context *lhs, struct future_context *rhs,
	void *arg)
{
	(void)arg;
	struct add_output *o = future_context_get_output(lhs);
	struct lazy_prop_output *co = future_context_get_output(rhs);
	co->r = o->r;
}

static void
chain_has_property_runs_lazy_init(void)
{
	struct lazy_prop_future c;
	memset(&c, 0xAB, sizeof(c));
	FUTURE_CHAIN_ENTRY_LAZY_INIT(&c.data.only, lazy_async_add_init,
		(void *)(uintptr_t)22, map_only_to_chain, NULL);
	FUTURE_CHAIN_INIT(&c);
	c.output.r = 0;
	lazy_prop_inits = 0;
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&c),
		FUTURE_PROPERTY_ASYNC), 1);
	CHECK_EQ(lazy_prop_inits, 1);
	CHECK(c.data.only.init == NULL);
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&c),
		FUTURE_PROPERTY_ASYNC), 1);
	CHECK_EQ(lazy_prop_inits, 1);
	FUTURE_BUSY_POLL(&c);
	CHECK_EQ(lazy_prop_inits, 1);
	CHECK_EQ(c.output.r, 42);
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&c),
		FUTURE_PROPERTY_ASYNC), -1);
}

/* ---- an entry skipped by a map that marks it COMPLETE ---- */

struct skip_data {
	FUTURE_CHAIN_ENTRY(struct vdm_operation_future, a);
	FUTURE_CHAIN_ENTRY(struct vdm_operation_future, skipped);
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

static void
skip_on(struct vdm *vdm)
{
	unsigned char s[64], a[64], b[64], c[64];
	fill_pattern(s, 64, 4);
	memset(a, 0, 64);
	memset(b, 0, 64);
	memset(c, 0, 64);
	struct skip_future f;
	FUTURE_CHAIN_ENTRY_INIT(&f.data.a, vdm_memcpy(vdm, a, s, 64, 0),
		map_skip_next, NULL);
	FUTURE_CHAIN_ENTRY_INIT(&f.data.skipped, vdm_memcpy(vdm, b, s, 64, 0),
		NULL, NULL);
	FUTURE_CHAIN_ENTRY_INIT(&f.data.c, vdm_memset(vdm, c, 0x11, 64, 0),
		NULL, NULL);
	FUTURE_CHAIN_INIT(&f);
	FUTURE_BUSY_POLL(&f);
	CHECK(memcmp(a, s, 64) == 0);
	CHECK(all_bytes(b, 64, 0)); /* never ran */
	CHECK(all_bytes(c, 64, 0x11));
	CHECK(f.data.skipped.fut.output.output.memcpy.dest == NULL);
	CHECK(FUTURE_CHAIN_ENTRY_IS_PROCESSED(
		(struct future_chain_entry *)&f.data.skipped));
	CHECK(f.data.c.fut.output.output.memset.str == c);
}

static void
entry_skipped_by_map(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	skip_on(data_mover_sync_get_vdm(dms));
	data_mover_sync_delete(dms);
	struct data_mover_threads *dmt =
		data_mover_threads_new(1, 4, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt)
		skip_on(data_mover_threads_get_vdm(dmt));
	data_mover_threads_delete(dmt);
}

/* ---- chains and plain futures waited on together ---- */

static void
chains_in_runtime(void)
{
	struct runtime *rt = runtime_new();
	struct data_mover_sync *dms = data_mover_sync_new();
	struct data_mover_threads *dmt =
		data_mover_threads_new(2, 8, FUTURE_NOTIFIER_WAKER);
	CHECK(dmt != NULL);
	if (dmt == NULL)
		return;
	enum { N = 400 };
	unsigned char pat[N], b1[N], b2[N], ref[N], s[N], d[N];
	fill_pattern(pat, N, 21);
	fill_pattern(s, N, 22);
	memset(d, 0, N);
	memset(b1, 0, N);
	memset(b2, 0, N);
	vdm_chain_expected(ref, pat, N);
	struct vdm_chain_future c1, c2;
	vdm_chain_init(&c1, data_mover_threads_get_vdm(dmt), b1, pat, N);
	vdm_chain_init(&c2, data_mover_sync_get_vdm(dms), b2, pat, N);
	int args[2];
	struct two_add_future c3;
	two_add_init(&c3, 4, args);
	struct vdm_operation_future plain =
		vdm_memcpy(data_mover_threads_get_vdm(dmt), d, s, N, 0);
	struct future *futs[] = { FUTURE_AS_RUNNABLE(&c1),
		FUTURE_AS_RUNNABLE(&c2), FUTURE_AS_RUNNABLE(&c3),
		FUTURE_AS_RUNNABLE(&plain) };
	runtime_wait_multiple(rt, futs, 4);
	CHECK(memcmp(b1, ref, N) == 0);
	CHECK(memcmp(b2, ref, N) == 0);
	CHECK(memcmp(s, d, N) == 0);
	CHECK_EQ(c3.output.result, 65);
	CHECK_EQ(c1.output.result, VDM_SUCCESS);
	data_mover_threads_delete(dmt);
	data_mover_sync_delete(dms);
	runtime_delete(rt);
}

int
main(void)
{
	test_prog = "test_chain";
	alarm(600);
	RUN(entry_macros);
	RUN(maps_and_extra_fields);
	RUN(walk_ends_at_data_size);
	RUN(vdm_chain_sync);
	RUN(vdm_chain_threads);
	RUN(lazy_init_entries);
	RUN(chain_has_property);
	RUN(chain_has_property_runs_lazy_init);
	RUN(entry_skipped_by_map);
	RUN(chains_in_runtime);
	TEST_DONE();
}
