/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_future.c -- the future machinery of <libminiasync/future.h>: the
 * FUTURE() layout, FUTURE_INIT/_EXT/_COMPLETE, the accessor macros,
 * future_context_get_*, future_poll, FUTURE_BUSY_POLL, FUTURE_WAKER_WAKE
 * and future_has_property, exercised with hand-written futures.
 */
#include <libminiasync.h>
#include <stdint.h>
#include <unistd.h>
#include "test.h"

/* A future that needs `polls_needed` polls and then sums its inputs. */
struct count_data {
	uint64_t a;
	uint64_t b;
	unsigned polls_needed;
	unsigned polls_done;
	struct future_context *last_ctx;
	struct future_notifier *last_notifier;
	int ret_idle_once; /* first poll returns IDLE instead of RUNNING */
};
struct count_output {
	uint64_t sum;
	uint64_t polls_seen;
};
FUTURE(count_future, struct count_data, struct count_output);

static enum future_state
count_task(struct future_context *ctx, struct future_notifier *notifier)
{
	struct count_data *d = future_context_get_data(ctx);
	struct count_output *o = future_context_get_output(ctx);
	d->last_ctx = ctx;
	d->last_notifier = notifier;
	d->polls_done++;
	o->polls_seen = d->polls_done;
	if (d->polls_done == 1 && d->ret_idle_once)
		return FUTURE_STATE_IDLE;
	if (d->polls_done < d->polls_needed)
		return FUTURE_STATE_RUNNING;
	o->sum = d->a + d->b;
	return FUTURE_STATE_COMPLETE;
}

static int prop_calls;
static void *prop_last_future;
static enum future_property prop_last_property;
static int prop_value = 1;

static int
count_property(void *future, enum future_property property)
{
	prop_calls++;
	prop_last_future = future;
	prop_last_property = property;
	return prop_value;
}

static void
count_init(struct count_future *f, uint64_t a, uint64_t b, unsigned polls)
{
	memset(f, 0xA5, sizeof(*f)); /* junk everywhere the macro must set */
	FUTURE_INIT(f, count_task);
	f->data.a = a;
	f->data.b = b;
	f->data.polls_needed = polls;
	f->data.polls_done = 0;
	f->data.ret_idle_once = 0;
	f->output.sum = 0;
	f->output.polls_seen = 0;
}

/* FUTURE() lays out base, data, output in that order without gaps. */
static void
future_macro_layout(void)
{
	struct count_future f;
	CHECK_EQ(offsetof(struct count_future, base), 0);
	CHECK_EQ(offsetof(struct count_future, data), sizeof(struct future));
	CHECK_EQ(offsetof(struct count_future, output),
		sizeof(struct future) + sizeof(struct count_data));
	CHECK_EQ(sizeof(f.base), sizeof(struct future));
	CHECK_EQ(sizeof(struct future), 40);
	CHECK_EQ(sizeof(struct future_context), 24);
	CHECK_EQ(sizeof(struct future_notifier), 32);
}

static void
future_init_sets_every_field(void)
{
	struct count_future f;
	count_init(&f, 1, 2, 1);
	CHECK(f.base.task == count_task);
	CHECK(f.base.has_property == future_has_property_default);
	CHECK_EQ(f.base.context.state, FUTURE_STATE_IDLE);
	CHECK_EQ(f.base.context.data_size, sizeof(struct count_data));
	CHECK_EQ(f.base.context.output_size, sizeof(struct count_output));
	CHECK_EQ(f.base.context.padding, 0);
	/* the default property function says "no" to everything */
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), 0);
	CHECK_EQ(future_has_property_default(&f, FUTURE_PROPERTY_ASYNC), 0);
}

static void
future_init_ext_sets_property_fn(void)
{
	struct count_future f;
	memset(&f, 0x5A, sizeof(f));
	FUTURE_INIT_EXT(&f, count_task, count_property);
	CHECK(f.base.task == count_task);
	CHECK(f.base.has_property == count_property);
	CHECK_EQ(f.base.context.state, FUTURE_STATE_IDLE);
	CHECK_EQ(f.base.context.data_size, sizeof(struct count_data));
	CHECK_EQ(f.base.context.output_size, sizeof(struct count_output));
	CHECK_EQ(f.base.context.padding, 0);

	prop_calls = 0;
	prop_value = 1;
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), 1);
	CHECK_EQ(prop_calls, 1);
	CHECK(prop_last_future == (void *)&f.base);
	CHECK_EQ(prop_last_property, FUTURE_PROPERTY_ASYNC);
	prop_value = 0;
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), 0);
	CHECK_EQ(prop_calls, 2);
	prop_value = 1;
}

static void
future_init_complete(void)
{
	struct count_future f;
	memset(&f, 0x77, sizeof(f));
	FUTURE_INIT_COMPLETE(&f);
	CHECK(f.base.task == NULL);
	CHECK(f.base.has_property == NULL);
	CHECK_EQ(f.base.context.state, FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.base.context.data_size, sizeof(struct count_data));
	CHECK_EQ(f.base.context.output_size, sizeof(struct count_output));
	CHECK_EQ(f.base.context.padding, 0);
	/* polling a complete future never calls the (NULL) task */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_COMPLETE);
	FUTURE_BUSY_POLL(&f);
	/* our header: a NULL property function means "no properties" */
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), 0);
}

static void
accessor_macros(void)
{
	struct count_future f;
	count_init(&f, 3, 4, 1);
	CHECK(FUTURE_AS_RUNNABLE(&f) == &f.base);
	CHECK(FUTURE_DATA(&f) == &f.data);
	CHECK(FUTURE_OUTPUT(&f) == &f.output);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_IDLE);
	/* FUTURE_STATE is an lvalue */
	FUTURE_STATE(&f) = FUTURE_STATE_RUNNING;
	CHECK_EQ(f.base.context.state, FUTURE_STATE_RUNNING);
	FUTURE_STATE(&f) = FUTURE_STATE_IDLE;
	FUTURE_DATA(&f)->a = 40;
	FUTURE_DATA(&f)->b = 2;
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(FUTURE_OUTPUT(&f)->sum, 42);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_COMPLETE);
}

static void
context_accessors(void)
{
	struct count_future f;
	count_init(&f, 0, 0, 1);
	struct future_context *ctx = &f.base.context;
	CHECK(future_context_get_data(ctx) == (void *)&f.data);
	CHECK(future_context_get_data(ctx) ==
		(void *)((char *)ctx + sizeof(struct future_context)));
	CHECK(future_context_get_output(ctx) == (void *)&f.output);
	CHECK_EQ(future_context_get_size(ctx),
		sizeof(struct count_data) + sizeof(struct count_output));
	/* the accessors follow the sizes stored in the context */
	ctx->data_size = 8;
	CHECK(future_context_get_output(ctx) ==
		(void *)((char *)&f.data + 8));
	ctx->output_size = 3;
	CHECK_EQ(future_context_get_size(ctx), 11);
}

static void
poll_runs_task_until_complete(void)
{
	struct count_future f;
	count_init(&f, 5, 6, 3);
	struct future_notifier n;
	memset(&n, 0, sizeof(n));

	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), &n),
		FUTURE_STATE_RUNNING);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_RUNNING);
	CHECK_EQ(f.data.polls_done, 1);
	CHECK(f.data.last_ctx == &f.base.context);
	CHECK(f.data.last_notifier == &n);

	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_RUNNING);
	CHECK(f.data.last_notifier == NULL);
	CHECK_EQ(f.output.sum, 0);

	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), &n),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.data.polls_done, 3);
	CHECK_EQ(f.output.sum, 11);

	/* never calls the task of a complete future */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), &n),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.data.polls_done, 3);
}

/* The state is whatever the task returns, IDLE included. */
static void
poll_stores_idle(void)
{
	struct count_future f;
	count_init(&f, 1, 1, 2);
	f.data.ret_idle_once = 1;
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL), FUTURE_STATE_IDLE);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_IDLE);
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.output.sum, 2);
}

static void
busy_poll_loops_with_null_notifier(void)
{
	struct count_future f;
	count_init(&f, 100, 23, 7);
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.data.polls_done, 7);
	CHECK_EQ(f.output.polls_seen, 7);
	CHECK_EQ(f.output.sum, 123);
	CHECK(f.data.last_notifier == NULL);
}

static int wake_calls;
static void *wake_data;

static void
count_wake(void *data)
{
	wake_calls++;
	wake_data = data;
}

static void
waker_wake_macro(void)
{
	int token = 0;
	struct future_waker w = { &token, count_wake };
	wake_calls = 0;
	FUTURE_WAKER_WAKE(&w);
	CHECK_EQ(wake_calls, 1);
	CHECK(wake_data == &token);

	struct future_notifier n;
	memset(&n, 0, sizeof(n));
	n.waker.data = &n;
	n.waker.wake = count_wake;
	FUTURE_WAKER_WAKE(&n.waker);
	CHECK_EQ(wake_calls, 2);
	CHECK(wake_data == &n);
}

/*
 * A future is a value: it may be copied to another address between polls
 * and the copy continues where the original stopped.
 */
static void
future_moved_between_polls(void)
{
	struct count_future a;
	count_init(&a, 9, 10, 3);
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&a), NULL),
		FUTURE_STATE_RUNNING);

	struct count_future *b = malloc(sizeof(*b));
	CHECK(b != NULL);
	if (b == NULL)
		return;
	memcpy(b, &a, sizeof(a));
	memset(&a, 0xEE, sizeof(a));
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(b), NULL),
		FUTURE_STATE_RUNNING);
	CHECK(b->data.last_ctx == &b->base.context);

	struct count_future c = *b;
	free(b);
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&c), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(c.data.polls_done, 3);
	CHECK_EQ(c.output.sum, 19);
}

/* A future with an odd-sized data and output still finds its output. */
struct tiny_data {
	uint8_t v;
};
struct tiny_output {
	uint8_t w;
};
FUTURE(tiny_future, struct tiny_data, struct tiny_output);

static enum future_state
tiny_task(struct future_context *ctx, struct future_notifier *n)
{
	(void)n;
	struct tiny_data *d = future_context_get_data(ctx);
	struct tiny_output *o = future_context_get_output(ctx);
	o->w = (uint8_t)(d->v * 3);
	return FUTURE_STATE_COMPLETE;
}

static void
small_future(void)
{
	struct tiny_future t;
	FUTURE_INIT(&t, tiny_task);
	CHECK_EQ(t.base.context.data_size, 1);
	CHECK_EQ(t.base.context.output_size, 1);
	t.data.v = 7;
	t.output.w = 0;
	FUTURE_BUSY_POLL(&t);
	CHECK_EQ(t.output.w, 21);
	CHECK(future_context_get_output(&t.base.context) == &t.output);
}

static void
enum_and_flag_values(void)
{
	CHECK_EQ(FUTURE_STATE_IDLE, 0);
	CHECK_EQ(FUTURE_STATE_COMPLETE, 1);
	CHECK_EQ(FUTURE_STATE_RUNNING, 2);
	CHECK_EQ(FUTURE_NOTIFIER_NONE, 0);
	CHECK_EQ(FUTURE_NOTIFIER_WAKER, 1);
	CHECK_EQ(FUTURE_NOTIFIER_POLLER, 2);
	CHECK_EQ(FUTURE_PROPERTY_ASYNC, 0);
	CHECK_EQ(FUTURE_CHAIN_ENTRY_REGULAR, 1);
	CHECK_EQ(FUTURE_CHAIN_ENTRY_LAST, 2);
	CHECK_EQ(FUTURE_CHAIN_FLAG_ENTRY_LAST, 1);
	CHECK_EQ(FUTURE_CHAIN_FLAG_ENTRY_PROCESSED, 2);
	CHECK_EQ(FUTURE_CHAIN_VALID_FLAGS, 3);
	CHECK_EQ(sizeof(_future_entry_type_regular), 1);
	CHECK_EQ(sizeof(_future_entry_type_last), 2);
}

int
main(void)
{
	test_prog = "test_future";
	alarm(300);
	RUN(future_macro_layout);
	RUN(future_init_sets_every_field);
	RUN(future_init_ext_sets_property_fn);
	RUN(future_init_complete);
	RUN(accessor_macros);
	RUN(context_accessors);
	RUN(poll_runs_task_until_complete);
	RUN(poll_stores_idle);
	RUN(busy_poll_loops_with_null_notifier);
	RUN(waker_wake_macro);
	RUN(future_moved_between_polls);
	RUN(small_future);
	RUN(enum_and_flag_values);
	TEST_DONE();
}
