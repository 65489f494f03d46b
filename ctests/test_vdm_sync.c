/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_vdm_sync.c -- the inline vdm API of <libminiasync/vdm.h> on the
 * synchronous mover: future construction by vdm_memcpy/memmove/memset/
 * flush, the first poll completing the work, the outputs, the properties,
 * vdm_is_supported, vdm_set_has_property_fn, the mover's struct vdm, edits
 * of the operation before the first poll, and futures moved in memory.
 */
#include <libminiasync.h>
#include <stdint.h>
#include <unistd.h>
#include "test.h"

static void
fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 31 + (i >> 8));
}

static void
mover_struct_vdm(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	CHECK(dms != NULL);
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	CHECK(vdm != NULL);
	CHECK((void *)vdm == (void *)dms); /* struct vdm at offset 0 */
	CHECK(vdm->op_new != NULL);
	CHECK(vdm->op_delete != NULL);
	CHECK(vdm->op_start != NULL);
	CHECK(vdm->op_check != NULL);
	CHECK_EQ(vdm->capabilities, 0);
	CHECK(vdm->has_property == NULL);
	CHECK_EQ(sizeof(struct vdm), 48);
	CHECK_EQ(sizeof(struct vdm_operation_future), 120);
	CHECK_EQ(sizeof(struct vdm_operation_data), 64);
	data_mover_sync_delete(dms);
}

static void
memcpy_future_fields_and_result(void)
{
	unsigned char src[300], dst[300];
	fill_pattern(src, sizeof(src), 1);
	memset(dst, 0, sizeof(dst));
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);

	struct vdm_operation_future f =
		vdm_memcpy(vdm, dst, src, sizeof(src), 0);
	CHECK(f.base.task == vdm_operation_impl);
	CHECK(f.base.has_property == future_has_property_default);
	CHECK_EQ(FUTURE_STATE(&f), FUTURE_STATE_IDLE);
	CHECK_EQ(f.base.context.data_size, sizeof(struct vdm_operation_data));
	CHECK_EQ(f.base.context.output_size,
		sizeof(struct vdm_operation_output));
	CHECK_EQ(f.base.context.padding, 0);
	CHECK(f.data.vdm == vdm);
	CHECK(f.data.data != NULL);
	CHECK_EQ(f.data.operation.type, VDM_OPERATION_MEMCPY);
	CHECK_EQ(f.data.operation.padding, 0);
	CHECK(f.data.operation.data.memcpy.dest == dst);
	CHECK(f.data.operation.data.memcpy.src == src);
	CHECK_EQ(f.data.operation.data.memcpy.n, sizeof(src));
	CHECK_EQ(f.data.operation.data.memcpy.flags, 0);
	CHECK_EQ(f.output.type, VDM_OPERATION_MEMCPY);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(f.output.output.memcpy.dest == NULL);
	/* nothing happens before the first poll */
	CHECK(all_bytes(dst, sizeof(dst), 0));

	/* the synchronous mover finishes during the first poll */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK(memcmp(dst, src, sizeof(src)) == 0);
	CHECK_EQ(f.output.type, VDM_OPERATION_MEMCPY);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(f.output.output.memcpy.dest == dst);
	/* and stays complete */
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_COMPLETE);
	data_mover_sync_delete(dms);
}

static void
memmove_overlapping(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	char buf[32] = "0123456789abcdef";

	/* forward overlap: dest after src */
	struct vdm_operation_future f = vdm_memmove(vdm, buf + 2, buf, 10, 0);
	CHECK_EQ(f.output.type, VDM_OPERATION_MEMMOVE);
	CHECK_EQ(f.data.operation.type, VDM_OPERATION_MEMMOVE);
	CHECK(f.data.operation.data.memmove.dest == buf + 2);
	CHECK(f.data.operation.data.memmove.src == buf);
	CHECK_EQ(f.data.operation.data.memmove.n, 10);
	FUTURE_BUSY_POLL(&f);
	CHECK(memcmp(buf, "010123456789cdef", 16) == 0);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK_EQ(f.output.type, VDM_OPERATION_MEMMOVE);
	CHECK(f.output.output.memmove.dest == buf + 2);

	/* backward overlap: dest before src */
	strcpy(buf, "0123456789abcdef");
	f = vdm_memmove(vdm, buf, buf + 3, 10, 0);
	FUTURE_BUSY_POLL(&f);
	CHECK(memcmp(buf, "3456789abcabcdef", 16) == 0);
	CHECK(f.output.output.memmove.dest == buf);

	/* a large overlapping move */
	size_t n = 1 << 20;
	unsigned char *big = malloc(n + 4096), *ref = malloc(n + 4096);
	CHECK(big != NULL && ref != NULL);
	if (big && ref) {
		fill_pattern(big, n + 4096, 9);
		memcpy(ref, big, n + 4096);
		memmove(ref + 1000, ref + 7, n);
		f = vdm_memmove(vdm, big + 1000, big + 7, n, 0);
		FUTURE_BUSY_POLL(&f);
		CHECK(memcmp(big, ref, n + 4096) == 0);
	}
	free(big);
	free(ref);
	data_mover_sync_delete(dms);
}

static void
memset_fills_and_truncates_c(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	unsigned char buf[100];
	memset(buf, 0x11, sizeof(buf));

	struct vdm_operation_future f = vdm_memset(vdm, buf + 10, 0x5c, 50, 0);
	CHECK_EQ(f.data.operation.type, VDM_OPERATION_MEMSET);
	CHECK(f.data.operation.data.memset.str == buf + 10);
	CHECK_EQ(f.data.operation.data.memset.c, 0x5c);
	CHECK_EQ(f.data.operation.data.memset.n, 50);
	CHECK_EQ(f.output.type, VDM_OPERATION_MEMSET);
	CHECK(f.output.output.memset.str == NULL);
	FUTURE_BUSY_POLL(&f);
	CHECK(all_bytes(buf, 10, 0x11));
	CHECK(all_bytes(buf + 10, 50, 0x5c));
	CHECK(all_bytes(buf + 60, 40, 0x11));
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK_EQ(f.output.type, VDM_OPERATION_MEMSET);
	CHECK(f.output.output.memset.str == buf + 10);

	/* c is converted to unsigned char, as memset does */
	f = vdm_memset(vdm, buf, 0x1A7, 5, 0);
	FUTURE_BUSY_POLL(&f);
	CHECK(all_bytes(buf, 5, 0xA7));
	f = vdm_memset(vdm, buf, -1, 3, 0);
	FUTURE_BUSY_POLL(&f);
	CHECK(all_bytes(buf, 3, 0xFF));
	CHECK_EQ(buf[3], 0xA7);
	data_mover_sync_delete(dms);
}

static void
flush_completes(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	unsigned char buf[1000];
	fill_pattern(buf, sizeof(buf), 3);
	unsigned char ref[1000];
	memcpy(ref, buf, sizeof(buf));

	struct vdm_operation_future f = vdm_flush(vdm, buf + 1, 777, 0);
	CHECK_EQ(f.data.operation.type, VDM_OPERATION_FLUSH);
	CHECK(f.data.operation.data.flush.dest == buf + 1);
	CHECK_EQ(f.data.operation.data.flush.n, 777);
	CHECK_EQ(f.data.operation.data.flush.flags, 0);
	CHECK_EQ(f.output.type, VDM_OPERATION_FLUSH);
	CHECK_EQ(f.output.output.flush.unused, 0);
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), NULL),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK_EQ(f.output.type, VDM_OPERATION_FLUSH);
	CHECK_EQ(f.output.output.flush.unused, 0);
	CHECK(memcmp(buf, ref, sizeof(buf)) == 0); /* data unchanged */
	data_mover_sync_delete(dms);
}

static void
flags_accepted(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	uint64_t flags[] = { VDM_F_MEM_DURABLE, VDM_F_NO_CACHE_HINT,
		VDM_F_VALID_FLAGS, 0xF0F0F0F000000000ULL | VDM_F_MEM_DURABLE };
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		unsigned char src[200], dst[200];
		fill_pattern(src, sizeof(src), (unsigned)i);
		memset(dst, 0, sizeof(dst));
		struct vdm_operation_future f =
			vdm_memcpy(vdm, dst, src, sizeof(src), flags[i]);
		CHECK_EQ(f.data.operation.data.memcpy.flags, flags[i]);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
		CHECK(memcmp(dst, src, sizeof(src)) == 0);

		f = vdm_memset(vdm, dst, 'q', 100, flags[i]);
		CHECK_EQ(f.data.operation.data.memset.flags, flags[i]);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
		CHECK(all_bytes(dst, 100, 'q'));

		f = vdm_memmove(vdm, dst + 1, dst, 150, flags[i]);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
		CHECK(all_bytes(dst + 1, 100, 'q'));
		CHECK(memcmp(dst + 101, src + 100, 50) == 0);

		f = vdm_flush(vdm, dst, sizeof(dst), flags[i]);
		CHECK_EQ(f.data.operation.data.flush.flags, flags[i]);
		FUTURE_BUSY_POLL(&f);
		CHECK_EQ(f.output.result, VDM_SUCCESS);
	}
	data_mover_sync_delete(dms);
}

/* capabilities 0: only the empty capability set is supported. */
static void
is_supported_on_sync(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	CHECK_EQ(vdm_is_supported(vdm, 0), 1);
	CHECK_EQ(vdm_is_supported(vdm, VDM_F_MEM_DURABLE), 0);
	CHECK_EQ(vdm_is_supported(vdm, VDM_F_NO_CACHE_HINT), 0);
	CHECK_EQ(vdm_is_supported(vdm, VDM_F_VALID_FLAGS), 0);
	data_mover_sync_delete(dms);
}

static int custom_prop_calls;

static int
custom_prop(void *fut, enum future_property p)
{
	(void)fut;
	custom_prop_calls++;
	return p == FUTURE_PROPERTY_ASYNC ? 1 : 0;
}

static void
set_has_property_fn(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	char a[8] = "abcdefg", b[8] = { 0 };
	struct vdm_operation_future f = vdm_memcpy(vdm, b, a, 8, 0);
	/* the sync vdm has no property function: the default says 0 */
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), 0);
	vdm_set_has_property_fn(&f, NULL); /* NULL leaves it alone */
	CHECK(f.base.has_property == future_has_property_default);
	vdm_set_has_property_fn(&f, custom_prop);
	CHECK(f.base.has_property == custom_prop);
	custom_prop_calls = 0;
	CHECK_EQ(future_has_property(FUTURE_AS_RUNNABLE(&f),
		FUTURE_PROPERTY_ASYNC), 1);
	CHECK_EQ(custom_prop_calls, 1);
	FUTURE_BUSY_POLL(&f);
	CHECK(memcmp(a, b, 8) == 0);
	data_mover_sync_delete(dms);
}

/* op_start writes notifier_used = NONE on a non-NULL notifier. */
static void
notifier_used_none(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	char a[16] = "notifier test", b[16] = { 0 };
	struct vdm_operation_future f = vdm_memcpy(vdm, b, a, 16, 0);
	struct future_notifier n;
	memset(&n, 0, sizeof(n));
	n.notifier_used = FUTURE_NOTIFIER_POLLER;
	CHECK_EQ(future_poll(FUTURE_AS_RUNNABLE(&f), &n),
		FUTURE_STATE_COMPLETE);
	CHECK_EQ(n.notifier_used, FUTURE_NOTIFIER_NONE);
	CHECK(memcmp(a, b, 16) == 0);
	data_mover_sync_delete(dms);
}

/*
 * The user may edit the operation between vdm_memcpy() and the first poll:
 * the mover must use the fields as they are at the poll.
 */
static void
edit_operation_before_first_poll(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	unsigned char s1[64], s2[64], d1[64], d2[64];
	fill_pattern(s1, 64, 1);
	fill_pattern(s2, 64, 77);
	memset(d1, 0, 64);
	memset(d2, 0, 64);

	struct vdm_operation_future f = vdm_memcpy(vdm, d1, s1, 10, 0);
	f.data.operation.data.memcpy.dest = d2;
	f.data.operation.data.memcpy.src = s2;
	f.data.operation.data.memcpy.n = 40;
	FUTURE_BUSY_POLL(&f);
	CHECK_EQ(f.output.result, VDM_SUCCESS);
	CHECK(all_bytes(d1, 64, 0));
	CHECK(memcmp(d2, s2, 40) == 0);
	CHECK(all_bytes(d2 + 40, 24, 0));
	CHECK(f.output.output.memcpy.dest == d2);

	/* a memset whose value and length change before the poll */
	f = vdm_memset(vdm, d1, 'x', 4, 0);
	f.data.operation.data.memset.c = 'y';
	f.data.operation.data.memset.n = 20;
	f.data.operation.data.memset.str = d1 + 2;
	FUTURE_BUSY_POLL(&f);
	CHECK(all_bytes(d1, 2, 0));
	CHECK(all_bytes(d1 + 2, 20, 'y'));
	CHECK(all_bytes(d1 + 22, 42, 0));
	CHECK(f.output.output.memset.str == d1 + 2);
	data_mover_sync_delete(dms);
}

/* A vdm future copied to another address before its first poll. */
static void
future_moved_before_poll(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	unsigned char src[128], dst[128];
	fill_pattern(src, 128, 5);
	memset(dst, 0, 128);
	struct vdm_operation_future *heap = malloc(sizeof(*heap));
	CHECK(heap != NULL);
	if (heap == NULL)
		return;
	{
		struct vdm_operation_future f =
			vdm_memcpy(vdm, dst, src, 128, 0);
		memcpy(heap, &f, sizeof(f));
		memset(&f, 0xCD, sizeof(f));
	}
	FUTURE_BUSY_POLL(heap);
	CHECK_EQ(heap->output.result, VDM_SUCCESS);
	CHECK(heap->output.output.memcpy.dest == dst);
	CHECK(memcmp(src, dst, 128) == 0);
	free(heap);
	data_mover_sync_delete(dms);
}

/* Many outstanding futures completed in reverse order of creation. */
static void
many_outstanding_any_order(void)
{
	struct data_mover_sync *dms = data_mover_sync_new();
	struct vdm *vdm = data_mover_sync_get_vdm(dms);
	enum { N = 256 };
	static unsigned char src[N][32], dst[N][32];
	static struct vdm_operation_future f[N];
	for (int i = 0; i < N; i++) {
		fill_pattern(src[i], 32, (unsigned)i);
		memset(dst[i], 0, 32);
		f[i] = vdm_memcpy(vdm, dst[i], src[i], 32, 0);
		CHECK(f[i].data.data != NULL);
	}
	/* every handle is distinct */
	for (int i = 1; i < N; i++)
		CHECK(f[i].data.data != f[i - 1].data.data);
	for (int i = N - 1; i >= 0; i -= 2)
		FUTURE_BUSY_POLL(&f[i]);
	for (int i = 0; i < N; i += 2)
		FUTURE_BUSY_POLL(&f[i]);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(f[i].output.result, VDM_SUCCESS);
		CHECK(memcmp(src[i], dst[i], 32) == 0);
	}
	data_mover_sync_delete(dms);
}

/* Two movers are independent objects with their own struct vdm. */
static void
two_movers(void)
{
	struct data_mover_sync *a = data_mover_sync_new();
	struct data_mover_sync *b = data_mover_sync_new();
	CHECK(a != NULL && b != NULL && a != b);
	CHECK(data_mover_sync_get_vdm(a) != data_mover_sync_get_vdm(b));
	char s[4] = "xyz", d[4] = { 0 };
	struct vdm_operation_future fa =
		vdm_memcpy(data_mover_sync_get_vdm(a), d, s, 2, 0);
	struct vdm_operation_future fb =
		vdm_memcpy(data_mover_sync_get_vdm(b), d + 2, s + 2, 2, 0);
	FUTURE_BUSY_POLL(&fb);
	FUTURE_BUSY_POLL(&fa);
	CHECK(memcmp(d, "xyz", 4) == 0);
	data_mover_sync_delete(a);
	data_mover_sync_delete(b);
}

static void
enum_and_macro_values(void)
{
	CHECK_EQ(VDM_OPERATION_MEMCPY, 0);
	CHECK_EQ(VDM_OPERATION_MEMMOVE, 1);
	CHECK_EQ(VDM_OPERATION_MEMSET, 2);
	CHECK_EQ(VDM_OPERATION_FLUSH, 3);
	CHECK_EQ(VDM_SUCCESS, 0);
	CHECK_EQ(VDM_ERROR_OUT_OF_MEMORY, 1);
	CHECK_EQ(VDM_ERROR_JOB_CORRUPTED, 2);
	CHECK_EQ(VDM_F_MEM_DURABLE, 1);
	CHECK_EQ(VDM_F_NO_CACHE_HINT, 2);
	CHECK_EQ(VDM_F_VALID_FLAGS, 3);
	CHECK_EQ(VDM_OPERATION_DATA_MAX_SIZE, 40);
	CHECK_EQ(sizeof(((struct vdm_operation *)0)->data),
		VDM_OPERATION_DATA_MAX_SIZE);
}

int
main(void)
{
	test_prog = "test_vdm_sync";
	alarm(300);
	RUN(mover_struct_vdm);
	RUN(memcpy_future_fields_and_result);
	RUN(memmove_overlapping);
	RUN(memset_fills_and_truncates_c);
	RUN(flush_completes);
	RUN(flags_accepted);
	RUN(is_supported_on_sync);
	RUN(set_has_property_fn);
	RUN(notifier_used_none);
	RUN(edit_operation_before_first_poll);
	RUN(future_moved_before_poll);
	RUN(many_outstanding_any_order);
	RUN(two_movers);
	RUN(enum_and_macro_values);
	TEST_DONE();
}
