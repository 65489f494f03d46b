/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * abi_probe.c -- measures the C layout our headers produce and compares it
 * with abi/layout.tsv, the layout measured on upstream libminiasync 0.2.1
 * (ABI.md section 4).
 *
 * The list of facts and their expected values is ctests/abi_facts.h,
 * generated from the table by tools/abi.py (`make abi`); `make check-abi`
 * fails when that file is stale, then runs this probe. Each difference is
 * printed as "not ok ..."; the last line is "abi: N passed, N failed" and the
 * exit status is 1 on any failure. A fact naming a type, member or constant
 * our headers lack fails the build of the probe.
 */
#include <stdio.h>
#include <stddef.h>

#include <libminiasync.h>
#include <libminiasync-vdm-dml.h>

/* A user-declared chain: a regular entry followed by the last one. */
typedef struct {
	FUTURE_CHAIN_ENTRY(struct vdm_operation_future, a);
	FUTURE_CHAIN_ENTRY_LAST(struct vdm_operation_future, b);
} chain_pair;

static unsigned passed;
static unsigned failed;

static void
check(const char *kind, const char *name, const char *member,
	long long got0, long long got1, long long want0, long long want1,
	int nvalues)
{
	if (got0 == want0 && (nvalues < 2 || got1 == want1)) {
		passed++;
		return;
	}
	failed++;
	printf("not ok different: %s %s%s%s: expected %lld", kind, name,
		member[0] ? " ." : "", member, want0);
	if (nvalues == 2)
		printf(" %lld", want1);
	printf(", got %lld", got0);
	if (nvalues == 2)
		printf(" %lld", got1);
	printf("\n");
}

#define ABI_SIZE(_type, _size, _align) \
	check("size", #_type, "", (long long)sizeof(_type), \
		(long long)_Alignof(_type), (_size), (_align), 2);

#define ABI_OFFSET(_type, _member, _off, _size) \
	check("offset", #_type, #_member, \
		(long long)offsetof(_type, _member), \
		(long long)sizeof(((_type *)0)->_member), (_off), (_size), 2);

#define ABI_VALUE(_expr, _value) \
	check("value", #_expr, "", (long long)(_expr), 0, (_value), 0, 1);

int
main(void)
{
#include "abi_facts.h"
	if (passed + failed != ABI_FACTS) {
		printf("not ok %u facts checked, abi_facts.h lists %d\n",
			passed + failed, ABI_FACTS);
		failed++;
	}
	printf("abi: %u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
