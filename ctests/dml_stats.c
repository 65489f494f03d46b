/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_stats.c -- the movers' statistics through the C API: what each of
 * the three movers counts (operations by type, bytes, device/CPU, AUTO's
 * fallbacks, errors), the size handshake of the growable structs, the work
 * queue record of a DSA mover, and the exit report (MINIASYNC_STATS=json
 * with MINIASYNC_STATS_FILE) holding movers of both libraries.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "dml_common.h"

static struct data_mover_stats
dml_stats(struct data_mover_dml *d)
{
	struct data_mover_stats s;
	memset(&s, 0xee, sizeof(s));
	s.size = sizeof(s);
	CHECK_EQ(data_mover_dml_get_stats(d, &s), 0);
	CHECK_EQ(s.size, sizeof(s));
	return s;
}

static void
run(struct vdm *v, struct vdm_operation_future f)
{
	(void)v;
	dml_wait(&f);
}

/* AUTO with a 4096-byte threshold: a small copy on the CPU (a "small"
 * fallback), a large one on the device, a memset and a flush; a refused
 * operation is an error. */
static void
auto_counts_where_each_operation_ran(void)
{
	struct data_mover_dml *d = data_mover_dml_new(DATA_MOVER_DML_AUTO);
	CHECK(d != NULL);
	struct vdm *v = data_mover_dml_get_vdm(d);
	size_t big = 65536;
	unsigned char *a = (unsigned char *)malloc(big), *b = (unsigned char *)malloc(big);
	dml_pattern(a, big, 1);
	run(v, vdm_memcpy(v, b, a, 100, 0));
	run(v, vdm_memcpy(v, b, a, big, 0));
	run(v, vdm_memset(v, b, 7, big, 0));
	run(v, vdm_flush(v, b, 64, 0));
	run(v, vdm_memmove(v, NULL, a, 10, 0)); /* NULL destination: refused */
	struct data_mover_stats s = dml_stats(d);
	CHECK_EQ(s.ops, 5);
	CHECK_EQ(s.ops_memcpy, 2);
	CHECK_EQ(s.ops_memset, 1);
	CHECK_EQ(s.ops_flush, 1);
	CHECK_EQ(s.ops_memmove, 0); /* the refused one has no type */
	CHECK_EQ(s.bytes, 100 + big + big + 64);
	CHECK_EQ(s.device_ops, 2);
	CHECK_EQ(s.cpu_ops, 2);
	CHECK_EQ(s.fallback_small, 2); /* the small copy and the flush */
	CHECK_EQ(s.errors, 1);
	CHECK_EQ(s.mixed_ops, 0);
	CHECK_EQ(s.queues, 1);

	struct data_mover_queue_stats q;
	memset(&q, 0, sizeof(q));
	q.size = sizeof(q);
	CHECK_EQ(data_mover_dml_get_queue_stats(d, 0, &q), 0);
	CHECK_EQ(q.size, sizeof(q));
	CHECK(q.name[0] != '\0');
	CHECK_EQ(q.ops, 2);
	CHECK_EQ(q.bytes, 2 * big);
	CHECK_EQ(data_mover_dml_get_queue_stats(d, 1, &q), -1);
	free(a);
	free(b);
	data_mover_dml_delete(d);
}

/* A caller built against a shorter struct gets exactly its bytes. */
static void
a_shorter_struct_is_filled_up_to_its_size(void)
{
	struct data_mover_dml *d = data_mover_dml_new(DATA_MOVER_DML_SOFTWARE);
	struct vdm *v = data_mover_dml_get_vdm(d);
	unsigned char x[8] = {0}, y[8];
	run(v, vdm_memcpy(v, y, x, 8, 0));
	struct data_mover_stats s;
	memset(&s, 0xee, sizeof(s));
	s.size = offsetof(struct data_mover_stats, ops_memcpy);
	CHECK_EQ(data_mover_dml_get_stats(d, &s), 0);
	CHECK_EQ(s.size, offsetof(struct data_mover_stats, ops_memcpy));
	CHECK_EQ(s.ops, 1);
	CHECK_EQ(s.ops_memcpy, 0xeeeeeeeeeeeeeeeeULL); /* not written */
	/* A larger size than ours: ours is filled and reported. */
	unsigned char big[sizeof(s) + 64];
	struct data_mover_stats *p = (struct data_mover_stats *)(void *)big;
	memset(big, 0, sizeof(big));
	p->size = sizeof(big);
	CHECK_EQ(data_mover_dml_get_stats(d, p), 0);
	CHECK_EQ(p->size, sizeof(s));
	CHECK_EQ(p->cpu_ops, 1);
	/* Bad arguments. */
	s.size = 4;
	CHECK_EQ(data_mover_dml_get_stats(d, &s), -1);
	CHECK_EQ(data_mover_dml_get_stats(d, NULL), -1);
	CHECK_EQ(data_mover_dml_get_stats(NULL, p), -1);
	CHECK_EQ(data_mover_dml_get_queue_stats(d, 0, (struct data_mover_queue_stats *)(void *)big), -1);
	CHECK_EQ(data_mover_dml_get_queue_stats(NULL, 0, NULL), -1);
	data_mover_dml_delete(d);
}

static void
sync_and_threads_count_too(void)
{
	unsigned char x[256], y[256];
	memset(x, 3, sizeof(x));
	struct data_mover_sync *s = data_mover_sync_new();
	struct vdm *sv = data_mover_sync_get_vdm(s);
	struct data_mover_threads *t = data_mover_threads_new(2, 16, FUTURE_NOTIFIER_POLLER);
	CHECK(t != NULL);
	struct vdm *tv = data_mover_threads_get_vdm(t);
	for (int i = 0; i < 10; i++) {
		struct vdm_operation_future f = vdm_memcpy(sv, y, x, sizeof(x), 0);
		FUTURE_BUSY_POLL(&f);
		struct vdm_operation_future g = vdm_memset(tv, y, 1, 100, 0);
		dml_wait(&g);
	}
	struct data_mover_stats st;
	st.size = sizeof(st);
	CHECK_EQ(data_mover_sync_get_stats(s, &st), 0);
	CHECK_EQ(st.ops, 10);
	CHECK_EQ(st.ops_memcpy, 10);
	CHECK_EQ(st.bytes, 10 * sizeof(x));
	CHECK_EQ(st.cpu_ops, 10);
	CHECK_EQ(st.device_ops, 0);
	CHECK_EQ(st.queues, 0);
	st.size = sizeof(st);
	CHECK_EQ(data_mover_threads_get_stats(t, &st), 0);
	CHECK_EQ(st.ops, 10);
	CHECK_EQ(st.ops_memset, 10);
	CHECK_EQ(st.bytes, 1000);
	CHECK_EQ(data_mover_sync_get_stats(NULL, &st), -1);
	CHECK_EQ(data_mover_threads_get_stats(t, NULL), -1);
	data_mover_threads_delete(t);
	data_mover_sync_delete(s);
}

static const char *self_path;

/* Run as `dml_stats --child`, with MINIASYNC_STATS set from the start: a
 * sync mover (libminiasync.so), deleted, and a DSA mover
 * (libminiasync-vdm-dml.so), still alive at exit. */
static int
stats_child(void)
{
	unsigned char x[64] = {0}, y[64];
	struct data_mover_sync *s = data_mover_sync_new();
	struct vdm *sv = data_mover_sync_get_vdm(s);
	struct vdm_operation_future f = vdm_memcpy(sv, y, x, 64, 0);
	FUTURE_BUSY_POLL(&f);
	data_mover_sync_delete(s);
	struct data_mover_dml *d = data_mover_dml_new(DATA_MOVER_DML_SOFTWARE);
	struct vdm *dv = data_mover_dml_get_vdm(d);
	struct vdm_operation_future g = vdm_memset(dv, y, 1, 64, 0);
	FUTURE_BUSY_POLL(&g);
	return 0;
}

/* The exit report of a process holds the movers of both libraries. */
static void
the_exit_report_holds_both_libraries_movers(void)
{
	char path[] = "/tmp/miniasync-stats-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	close(fd);
	pid_t pid = fork();
	if (pid == 0) {
		/* A fresh process: the variables are read once per process. */
		setenv("MINIASYNC_STATS", "json", 1);
		setenv("MINIASYNC_STATS_FILE", path, 1);
		execl(self_path, self_path, "--child", (char *)NULL);
		_exit(127);
	}
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char buf[8192] = {0};
	FILE *fp = fopen(path, "r");
	CHECK(fp != NULL);
	if (fp != NULL) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
		CHECK(n > 0);
		fclose(fp);
	}
	unlink(path);
	CHECK(strncmp(buf, "{\"pid\": ", 8) == 0);
	CHECK(strstr(buf, "\"kind\": \"sync\", \"path\": null, \"ops\": 1,") != NULL);
	CHECK(strstr(buf, "\"kind\": \"dsa\", \"path\": \"software\", \"ops\": 1,") != NULL);
	CHECK(strstr(buf, "\"memset\": 1") != NULL);
	size_t len = strlen(buf);
	CHECK(len > 3 && strcmp(buf + len - 3, "]}\n") == 0);
}

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--child") == 0)
		return stats_child();
	test_prog = "dml_stats";
	self_path = argv[0];
	setenv("MINIASYNC_DSA_EMULATE", "1", 1);
	setenv("MINIASYNC_DSA_THRESHOLD", "4096", 1);
	RUN(auto_counts_where_each_operation_ran);
	RUN(a_shorter_struct_is_filled_up_to_its_size);
	RUN(sync_and_threads_count_too);
	RUN(the_exit_report_holds_both_libraries_movers);
	TEST_DONE();
}
