/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test.h -- minimal test harness for the C suite. Each test program runs
 * its cases with RUN(), checks with CHECK()/CHECK_EQ(), and ends with
 * TEST_DONE(), which prints "<prog>: N passed, N failed" and sets the
 * exit status. ctests/run.sh runs every program and prints the total.
 */
#ifndef MINIASYNC_CTEST_H
#define MINIASYNC_CTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int test_failed_checks;
static int test_cases_passed;
static int test_cases_failed;
static const char *test_prog = "test";

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond); \
			test_failed_checks++; \
		} \
	} while (0)

#define CHECK_EQ(a, b) \
	do { \
		long long _a = (long long)(a), _b = (long long)(b); \
		if (_a != _b) { \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", \
				__FILE__, __LINE__, #a, #b, _a, _b); \
			test_failed_checks++; \
		} \
	} while (0)

#define RUN(fn) \
	do { \
		int _before = test_failed_checks; \
		fn(); \
		if (test_failed_checks == _before) { \
			test_cases_passed++; \
			printf("ok - %s\n", #fn); \
		} else { \
			test_cases_failed++; \
			printf("not ok - %s\n", #fn); \
		} \
		fflush(stdout); \
	} while (0)

#define TEST_DONE() \
	do { \
		printf("%s: %d passed, %d failed\n", test_prog, \
			test_cases_passed, test_cases_failed); \
		return test_cases_failed ? 1 : 0; \
	} while (0)

/* Scales loop counts down under valgrind (MINIASYNC_TEST_SCALE=10). */
static inline size_t
test_scale(size_t n)
{
	const char *s = getenv("MINIASYNC_TEST_SCALE");
	size_t div = s ? (size_t)strtoul(s, NULL, 10) : 1;
	if (div == 0)
		div = 1;
	return n / div ? n / div : 1;
}

/* Sleeps 50 us (polling loops in tests). */
static inline void
short_sleep(void)
{
	struct timespec ts = { 0, 50 * 1000 };
	nanosleep(&ts, NULL);
}

/* Waits up to ~20 s for *p >= v (acquire); 1 if reached, 0 on time-out. */
static inline int
wait_at_least(int *p, int v)
{
	for (long i = 0; i < 400000; i++) {
		if (__atomic_load_n(p, __ATOMIC_ACQUIRE) >= v)
			return 1;
		short_sleep();
	}
	return 0;
}

/* 1 if all n bytes at p equal v. */
static inline int
all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

#endif
