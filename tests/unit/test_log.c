/* Events, log rotation, the output ring, the loop's timers. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "drover/event.h"
#include "drover/logfile.h"
#include "drover/loop.h"
#include "drover/ring.h"

static struct event sample(void)
{
	struct event e;
	event_init(&e, EVENT_INFO, "state");
	e.ts_ms = 1795341600123LL; /* 2026-11-22T10:00:00.123Z */
	event_str(&e, "worker", "web_00");
	event_str(&e, "from", "STARTING");
	event_str(&e, "to", "RUNNING");
	event_int(&e, "pid", 4242);
	return e;
}

static void test_logfmt(void **state)
{
	(void)state;
	char buf[512];
	struct event e = sample();
	event_str(&e, "reason", "exit:1 \"bad\" x=y");
	event_bool(&e, "expected", false);
	event_num(&e, "uptime", 1.5);
	event_format(&e, LOG_FORMAT_LOGFMT, buf, sizeof(buf));
	assert_string_equal(buf,
	                    "ts=2026-11-22T10:00:00.123Z level=info event=state worker=web_00 "
	                    "from=STARTING to=RUNNING pid=4242 reason=\"exit:1 \\\"bad\\\" x=y\" "
	                    "expected=false uptime=1.5\n");
}

static void test_logfmt_empty_value_quoted(void **state)
{
	(void)state;
	char buf[256];
	struct event e;
	event_init(&e, EVENT_WARN, "x");
	e.ts_ms = 0;
	event_str(&e, "a", "");
	event_str(&e, "skipped", NULL);
	event_format(&e, LOG_FORMAT_LOGFMT, buf, sizeof(buf));
	assert_string_equal(buf, "ts=1970-01-01T00:00:00.000Z level=warn event=x a=\"\"\n");
}

static void test_json(void **state)
{
	(void)state;
	char buf[512];
	struct event e = sample();
	event_str(&e, "line", "tab\there\nnl \x01");
	event_format(&e, LOG_FORMAT_JSON, buf, sizeof(buf));
	assert_string_equal(buf,
	                    "{\"ts\":\"2026-11-22T10:00:00.123Z\",\"level\":\"info\",\"event\":"
	                    "\"state\",\"worker\":\"web_00\",\"from\":\"STARTING\",\"to\":"
	                    "\"RUNNING\",\"pid\":4242,\"line\":\"tab\\there\\nnl \\u0001\"}\n");
}

static void test_truncation_keeps_newline(void **state)
{
	(void)state;
	char buf[40];
	struct event e = sample();
	size_t n = event_format(&e, LOG_FORMAT_LOGFMT, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_true(n < sizeof(buf));
	assert_int_equal(buf[n - 1], '\n');
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/drover-unit-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The live file, its backups 1..backups and the directory: gone. */
static void remove_logs(char *dir, const char *path, int backups)
{
	char name[600];
	for (int i = 1; i <= backups; i++) {
		logfile_backup_name(path, i, name, sizeof(name));
		unlink(name);
	}
	unlink(path);
	rmdir(dir);
	free(dir);
}

static void test_rotation(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char path[256], name[300];
	snprintf(path, sizeof(path), "%s/w-stdout.log", dir);
	struct logfile lf;
	assert_int_equal(logfile_open(&lf, path, 100, 2), 0);
	char chunk[60];
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 5; i++)
		assert_int_equal(logfile_write(&lf, chunk, sizeof(chunk)), 0);
	logfile_close(&lf);
	/* 5 writes of 60 into files of at most 100: live + .1 + .2, older dropped */
	assert_int_equal(file_size(path), 60);
	logfile_backup_name(path, 1, name, sizeof(name));
	assert_int_equal(file_size(name), 60);
	logfile_backup_name(path, 2, name, sizeof(name));
	assert_int_equal(file_size(name), 60);
	logfile_backup_name(path, 3, name, sizeof(name));
	assert_int_equal(file_size(name), -1);
	remove_logs(dir, path, 2);
}

static void test_rotation_without_backups_truncates(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char path[256], name[300];
	snprintf(path, sizeof(path), "%s/w.log", dir);
	struct logfile lf;
	assert_int_equal(logfile_open(&lf, path, 100, 0), 0);
	char chunk[70];
	memset(chunk, 'y', sizeof(chunk));
	logfile_write(&lf, chunk, sizeof(chunk));
	logfile_write(&lf, chunk, sizeof(chunk));
	logfile_close(&lf);
	assert_int_equal(file_size(path), 70);
	logfile_backup_name(path, 1, name, sizeof(name));
	assert_string_equal(name + strlen(path), ".1");
	assert_int_equal(file_size(name), -1);
	remove_logs(dir, path, 0);
}

/* One write holding many lines (a worker's burst read at once): the lines
 * that fit stay in the file, the rest go to the next, none is cut, and no
 * file passes maxbytes. */
static void test_rotation_splits_a_burst_at_line_ends(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char path[256], name[300];
	snprintf(path, sizeof(path), "%s/burst.log", dir);
	struct logfile lf;
	assert_int_equal(logfile_open(&lf, path, 100, 2), 0);
	char line[31];
	memset(line, 'a', 29);
	line[29] = '\n';
	assert_int_equal(logfile_write(&lf, line, 30), 0);
	char burst[4 * 30 + 1];
	for (int i = 0; i < 4; i++)
		memcpy(burst + 30 * i, line, 30);
	assert_int_equal(logfile_write(&lf, burst, 4 * 30), 0);
	/* 30 + 60 fit in the first file; the last 60 go to the next */
	logfile_backup_name(path, 1, name, sizeof(name));
	assert_int_equal(file_size(name), 90);
	assert_int_equal(file_size(path), 60);
	/* a burst of 9 lines (270 bytes) into a file of 60: 30 more fit, then
	 * 3 lines per file */
	char big[9 * 30];
	for (int i = 0; i < 9; i++)
		memcpy(big + 30 * i, line, 30);
	assert_int_equal(logfile_write(&lf, big, sizeof(big)), 0);
	logfile_close(&lf);
	logfile_backup_name(path, 2, name, sizeof(name));
	assert_int_equal(file_size(name), 90);
	logfile_backup_name(path, 1, name, sizeof(name));
	assert_int_equal(file_size(name), 90);
	assert_int_equal(file_size(path), 60);
	remove_logs(dir, path, 2);
}

/* A log path that is a device (here a symlink to /dev/null; as root a
 * stdout_logfile = /dev/null) is never rotated: a rename would move the
 * device node itself. */
static void test_a_device_is_not_rotated(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char path[256], name[300];
	snprintf(path, sizeof(path), "%s/null.log", dir);
	assert_int_equal(symlink("/dev/null", path), 0);
	struct logfile lf;
	assert_int_equal(logfile_open(&lf, path, 100, 2), 0);
	char chunk[70];
	memset(chunk, 'z', sizeof(chunk));
	for (int i = 0; i < 4; i++)
		assert_int_equal(logfile_write(&lf, chunk, sizeof(chunk)), 0);
	logfile_close(&lf);
	char target[64];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, "/dev/null");
	logfile_backup_name(path, 1, name, sizeof(name));
	assert_int_equal(file_size(name), -1);
	remove_logs(dir, path, 0);
}

/* A rotation whose rename fails leaves the same file open; the write goes
 * on into it, whole, instead of rotating again and again. Here the backup's
 * name is one byte longer than NAME_MAX (a failure root cannot bypass, as
 * it bypasses a directory's mode). */
static void test_a_rotation_that_cannot_rename_writes_on(void **state)
{
	(void)state;
	char *dir = tmpdir();
	char path[512], name[600];
	char base[NAME_MAX - 1 + 1];
	memset(base, 'n', NAME_MAX - 1);
	base[NAME_MAX - 1] = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, base);
	struct logfile lf;
	assert_int_equal(logfile_open(&lf, path, 100, 2), 0);
	char line[30];
	memset(line, 'a', 29);
	line[29] = '\n';
	char burst[10 * 30];
	for (int i = 0; i < 10; i++)
		memcpy(burst + 30 * i, line, 30);
	assert_int_equal(logfile_write(&lf, burst, 60), 0);
	assert_int_equal(logfile_write(&lf, burst, sizeof(burst)), 0);
	logfile_close(&lf);
	assert_int_equal(file_size(path), 60 + (long long)sizeof(burst));
	logfile_backup_name(path, 1, name, sizeof(name));
	assert_int_equal(file_size(name), -1);
	remove_logs(dir, path, 0);
}

static void test_ring(void **state)
{
	(void)state;
	struct ring r;
	memset(&r, 0, sizeof(r));
	assert_null(ring_get(&r, 0));
	char line[32];
	for (int i = 0; i < RING_LINES + 5; i++) {
		int n = snprintf(line, sizeof(line), "line %d", i);
		ring_push(&r, line, (size_t)n);
	}
	assert_int_equal(r.count, RING_LINES);
	snprintf(line, sizeof(line), "line %d", RING_LINES + 4);
	assert_string_equal(ring_get(&r, 0), line);
	assert_string_equal(ring_get(&r, RING_LINES - 1), "line 5");
	assert_null(ring_get(&r, RING_LINES));
	ring_free(&r);
}

static int fired_order[8], nfired;

static void on_timer(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	fired_order[nfired++] = (int)(intptr_t)t->arg;
}

static void test_timers_fire_in_deadline_order(void **state)
{
	(void)state;
	struct loop loop;
	assert_int_equal(loop_init(&loop), 0);
	struct loop_timer t[5];
	uint64_t now = loop_now();
	uint64_t offsets[5] = {5, 1, 4, 2, 3}; /* milliseconds */
	for (int i = 0; i < 5; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].cb = on_timer;
		t[i].arg = (void *)(intptr_t)i;
		loop_timer_arm(&loop, &t[i], now + offsets[i] * 1000000);
	}
	loop_timer_cancel(&loop, &t[2]); /* the 4 ms one */
	assert_false(loop_timer_armed(&t[2]));
	nfired = 0;
	while (nfired < 4)
		loop_turn(&loop);
	assert_int_equal(fired_order[0], 1);
	assert_int_equal(fired_order[1], 3);
	assert_int_equal(fired_order[2], 4);
	assert_int_equal(fired_order[3], 0);
	loop_free(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_logfmt),
	    cmocka_unit_test(test_logfmt_empty_value_quoted),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_truncation_keeps_newline),
	    cmocka_unit_test(test_rotation),
	    cmocka_unit_test(test_rotation_without_backups_truncates),
	    cmocka_unit_test(test_rotation_splits_a_burst_at_line_ends),
	    cmocka_unit_test(test_a_device_is_not_rotated),
	    cmocka_unit_test(test_a_rotation_that_cannot_rename_writes_on),
	    cmocka_unit_test(test_ring),
	    cmocka_unit_test(test_timers_fire_in_deadline_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
