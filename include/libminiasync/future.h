/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * future.h -- futures, notifiers and chained futures.
 *
 * A future is a `struct future` (task, property query, context) followed in
 * memory by its data and then its output. Polling calls the task, which
 * moves the state from IDLE to RUNNING to COMPLETE. Futures may be moved in
 * memory between polls. A chain is a future whose data is a packed sequence
 * of entries, each a future with a map function that hands its result to
 * the next entry; the chain engine below is compiled into the program.
 *
 * The types are generated from the library's Rust definitions into
 * <libminiasync/future_types.h>; everything else here is written by hand.
 * Chain entries must not need an alignment stronger than 8 bytes: the engine
 * steps from entry to entry in multiples of 8.
 */

#ifndef FUTURE_H
#define FUTURE_H 1

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__amd64__) || defined(_M_X64) || \
	defined(_M_AMD64)
#include <emmintrin.h>
#define __FUTURE_WAIT() _mm_pause()
#else
#include <sched.h>
#define __FUTURE_WAIT() sched_yield()
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct future_context;
struct future_notifier;
struct future;

#include "future_types.h"

/* The data of a future starts right after its context. */
static inline void *
future_context_get_data(struct future_context *context)
{
	return (char *)context + sizeof(struct future_context);
}

/* The output of a future starts right after its data. */
static inline void *
future_context_get_output(struct future_context *context)
{
	return (char *)future_context_get_data(context) + context->data_size;
}

/* Bytes of data and output together. */
static inline size_t
future_context_get_size(struct future_context *context)
{
	return context->data_size + context->output_size;
}

#define FUTURE_WAKER_WAKE(_wakerp) ((_wakerp)->wake((_wakerp)->data))

/* Declares `struct _name`: a future with the given data and output types. */
#define FUTURE(_name, _data_type, _output_type) \
	struct _name { \
		struct future base; \
		_data_type data; \
		_output_type output; \
	}

#define FUTURE_INIT_EXT(_futurep, _taskfn, _propertyfn) \
	do { \
		(_futurep)->base.task = (_taskfn); \
		(_futurep)->base.has_property = (_propertyfn); \
		(_futurep)->base.context.state = FUTURE_STATE_IDLE; \
		(_futurep)->base.context.data_size = \
			sizeof((_futurep)->data); \
		(_futurep)->base.context.output_size = \
			sizeof((_futurep)->output); \
		(_futurep)->base.context.padding = 0; \
	} while (0)

#define FUTURE_INIT(_futurep, _taskfn) \
	FUTURE_INIT_EXT((_futurep), (_taskfn), future_has_property_default)

/* An already finished future: nothing to run and no property function. */
#define FUTURE_INIT_COMPLETE(_futurep) \
	do { \
		(_futurep)->base.task = NULL; \
		(_futurep)->base.has_property = NULL; \
		(_futurep)->base.context.state = FUTURE_STATE_COMPLETE; \
		(_futurep)->base.context.data_size = \
			sizeof((_futurep)->data); \
		(_futurep)->base.context.output_size = \
			sizeof((_futurep)->output); \
		(_futurep)->base.context.padding = 0; \
	} while (0)

#define FUTURE_AS_RUNNABLE(_futurep) (&(_futurep)->base)
#define FUTURE_OUTPUT(_futurep) (&(_futurep)->output)
#define FUTURE_DATA(_futurep) (&(_futurep)->data)
#define FUTURE_STATE(_futurep) ((_futurep)->base.context.state)

#define FUTURE_CHAIN_FLAG_ENTRY_LAST (((uint64_t)1) << 0)
#define FUTURE_CHAIN_FLAG_ENTRY_PROCESSED (((uint64_t)1) << 1)
#define FUTURE_CHAIN_VALID_FLAGS \
	(FUTURE_CHAIN_FLAG_ENTRY_LAST | FUTURE_CHAIN_FLAG_ENTRY_PROCESSED)

/*
 * A chain entry as the user declares it. `flags` is a pointer only so that
 * the size of what it points to tells a regular entry (1) from the last (2);
 * at run time it holds the FUTURE_CHAIN_FLAG_* bits, exactly like
 * `struct future_chain_entry`.
 */
#define FUTURE_CHAIN_ENTRY(_future_type, _name) \
	struct { \
		future_map_fn map; \
		void *map_arg; \
		future_init_fn init; \
		void *init_arg; \
		_future_entry_type_regular *flags; \
		_future_type fut; \
	} _name

#define FUTURE_CHAIN_ENTRY_LAST(_future_type, _name) \
	struct { \
		future_map_fn map; \
		void *map_arg; \
		future_init_fn init; \
		void *init_arg; \
		_future_entry_type_last *flags; \
		_future_type fut; \
	} _name

/* Converts the flag bits to the entry's `flags` pointer type (C and C++). */
#ifdef __cplusplus
#define _MINIASYNC_ENTRY_FLAGS(_entry, _bits) \
	((decltype((_entry)->flags))(uintptr_t)(_bits))
#else
#define _MINIASYNC_ENTRY_FLAGS(_entry, _bits) ((void *)(uintptr_t)(_bits))
#endif

#define FUTURE_CHAIN_ENTRY_INIT(_entry, _fut, _map, _map_arg) \
	do { \
		(_entry)->fut = (_fut); \
		(_entry)->map = (_map); \
		(_entry)->map_arg = (_map_arg); \
		(_entry)->init = NULL; \
		(_entry)->init_arg = NULL; \
		(_entry)->flags = _MINIASYNC_ENTRY_FLAGS((_entry), \
			sizeof(*(_entry)->flags) == FUTURE_CHAIN_ENTRY_LAST ? \
			FUTURE_CHAIN_FLAG_ENTRY_LAST : 0); \
	} while (0)

/* Like FUTURE_CHAIN_ENTRY_INIT, but `_init` builds the future on first use. */
#define FUTURE_CHAIN_ENTRY_LAZY_INIT(_entry, _init, _init_arg, _map, \
	_map_arg) \
	do { \
		(_entry)->map = (_map); \
		(_entry)->map_arg = (_map_arg); \
		(_entry)->init = (_init); \
		(_entry)->init_arg = (_init_arg); \
		(_entry)->flags = _MINIASYNC_ENTRY_FLAGS((_entry), \
			sizeof(*(_entry)->flags) == FUTURE_CHAIN_ENTRY_LAST ? \
			FUTURE_CHAIN_FLAG_ENTRY_LAST : 0); \
	} while (0)

#define FUTURE_CHAIN_ENTRY_HAS_FLAG(_entry, _flag) \
	(((_entry)->flags & (_flag)) == (_flag))

#define FUTURE_CHAIN_ENTRY_IS_LAST(_entry) \
	FUTURE_CHAIN_ENTRY_HAS_FLAG((_entry), FUTURE_CHAIN_FLAG_ENTRY_LAST)

#define FUTURE_CHAIN_ENTRY_IS_PROCESSED(_entry) \
	FUTURE_CHAIN_ENTRY_HAS_FLAG((_entry), FUTURE_CHAIN_FLAG_ENTRY_PROCESSED)

#define FUTURE_CHAIN_ENTRY_IS_INITIALIZED(_entry) ((_entry)->init == NULL)

/*
 * Advances a future: runs its task unless it is already complete, stores
 * and returns the new state. `notifier` may be NULL.
 */
static inline enum future_state
future_poll(struct future *fut, struct future_notifier *notifier)
{
	if (fut->context.state != FUTURE_STATE_COMPLETE)
		fut->context.state = fut->task(&fut->context, notifier);

	return fut->context.state;
}

/* Polls until complete, without a notifier. */
#define FUTURE_BUSY_POLL(_futurep) \
	while (future_poll(FUTURE_AS_RUNNABLE(_futurep), NULL) != \
		FUTURE_STATE_COMPLETE) { \
		__FUTURE_WAIT(); \
	}

/*
 * Asks a future for a property. A future without a property function
 * (FUTURE_INIT_COMPLETE) has no properties: this returns 0 for it where
 * upstream called through NULL.
 */
static inline int
future_has_property(struct future *fut, enum future_property property)
{
	if (fut->has_property == NULL)
		return 0;
	return fut->has_property(fut, property);
}

/*
 * Runs the pending lazy init of `entry`, accounts for its size in
 * `*used_data` and returns the entry after it, or NULL when `entry` is the
 * last one (flagged LAST, or the chain's data is used up).
 */
static inline struct future_chain_entry *
get_next_future_chain_entry(struct future_context *ctx,
	struct future_chain_entry *entry, uint8_t *data, size_t *used_data)
{
#define _MINIASYNC_PTRSIZE sizeof(void *)
#define _MINIASYNC_ALIGN_UP(_size) \
	(((_size) + _MINIASYNC_PTRSIZE - 1) & ~(_MINIASYNC_PTRSIZE - 1))
	if (entry->init != NULL) {
		entry->init(&entry->future, ctx, entry->init_arg);
		entry->init = NULL;
	}
	*used_data += _MINIASYNC_ALIGN_UP(sizeof(struct future_chain_entry) +
		future_context_get_size(&entry->future.context));
#undef _MINIASYNC_PTRSIZE
#undef _MINIASYNC_ALIGN_UP
	if (FUTURE_CHAIN_ENTRY_IS_LAST(entry) || *used_data == ctx->data_size)
		return NULL;
	return (struct future_chain_entry *)(data + *used_data);
}

/*
 * The task of a chained future: polls the first unprocessed entry; each
 * entry that completes has its map run (after the next entry's lazy init)
 * and the walk goes on to the next entry in the same poll.
 */
static inline enum future_state
async_chain_impl(struct future_context *ctx, struct future_notifier *notifier)
{
	uint8_t *data = (uint8_t *)future_context_get_data(ctx);
	struct future_chain_entry *entry = (struct future_chain_entry *)data;
	size_t used_data = 0;

	while (entry != NULL) {
		struct future_chain_entry *next = get_next_future_chain_entry(
			ctx, entry, data, &used_data);
		if (!FUTURE_CHAIN_ENTRY_IS_PROCESSED(entry)) {
			if (future_poll(&entry->future, notifier) !=
				FUTURE_STATE_COMPLETE)
				return FUTURE_STATE_RUNNING;
			if (entry->map != NULL) {
				if (next != NULL && next->init != NULL) {
					next->init(&next->future, ctx,
						next->init_arg);
					next->init = NULL;
				}
				entry->map(&entry->future.context,
					next != NULL ? &next->future.context :
					ctx, entry->map_arg);
			}
			entry->flags |= FUTURE_CHAIN_FLAG_ENTRY_PROCESSED;
		}
		entry = next;
	}

	return FUTURE_STATE_COMPLETE;
}

/* The property function FUTURE_INIT gives a future: no properties. */
static inline int
future_has_property_default(void *future, enum future_property property)
{
	(void)future;
	(void)property;
	return 0;
}

/*
 * The property of a chain is that of its first unprocessed entry (1 or 0);
 * -1 once every entry is processed. Runs pending lazy inits on the way.
 */
static inline int
future_chain_has_property(void *future, enum future_property property)
{
	struct future *fut = (struct future *)future;
	struct future_context *ctx = &fut->context;
	uint8_t *data = (uint8_t *)future_context_get_data(ctx);
	struct future_chain_entry *entry = (struct future_chain_entry *)data;
	size_t used_data = 0;

	while (entry != NULL) {
		struct future_chain_entry *next = get_next_future_chain_entry(
			ctx, entry, data, &used_data);
		if (!FUTURE_CHAIN_ENTRY_IS_PROCESSED(entry))
			return future_has_property(&entry->future, property) ?
				1 : 0;
		entry = next;
	}

	return -1;
}

#define FUTURE_CHAIN_INIT(_futurep) \
	FUTURE_INIT_EXT((_futurep), async_chain_impl, \
		future_chain_has_property)

#ifdef __cplusplus
}
#endif

#endif /* FUTURE_H */
