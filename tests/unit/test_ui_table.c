/* The console's table: the status reply read into rows, units, cutting to
 * width, and which columns survive a narrow terminal. */
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "drover/ui_table.h"

static const char status_json[] =
    "{\"ok\":true,\"version\":\"0.1.0\",\"pid\":42,\"config\":\"sup.ini\",\"uptime\":75.5,"
    "\"shutting_down\":false,"
    "\"system\":{\"load\":[0.5,0.25,0.125],\"cpu\":12.5,\"mem_used\":1073741824,"
    "\"mem_total\":8589934592,\"ncpu\":4},"
    "\"groups\":[{\"name\":\"squarer\",\"wanted\":2,\"actual\":2,\"states\":{\"RUNNING\":1,"
    "\"PAUSED\":1},\"cpu\":30.0,\"rss\":367001600,\"busiest\":\"squarer_00\","
    "\"queue\":{\"pending\":12,\"running\":2,\"done\":1234,\"failed\":1,\"dead\":0,"
    "\"rate\":56.7,\"latency\":0.02}},"
    "{\"name\":\"web\",\"wanted\":1,\"actual\":0,\"states\":{\"FATAL\":1},\"cpu\":0,\"rss\":0,"
    "\"busiest\":null,\"queue\":null}],"
    "\"workers\":[{\"name\":\"squarer_00\",\"group\":\"squarer\",\"state\":\"RUNNING\","
    "\"pid\":101,\"since\":3.0,\"uptime\":3723.0,\"restarts\":2,\"last_exit\":\"exit:1\","
    "\"reason\":null,\"kstate\":\"S\",\"cpu\":25.04,\"cpu_self\":20.0,\"rss\":356515840,"
    "\"rss_self\":1000,\"mem_pct\":4.15,\"threads\":4,\"procs\":3,\"start_time\":1.0,"
    "\"tasks_done\":123456,\"tasks_inflight\":1},"
    "{\"name\":\"squarer_01\",\"group\":\"squarer\",\"state\":\"PAUSED\",\"pid\":102,"
    "\"since\":1.0,\"uptime\":7.0,\"restarts\":0,\"last_exit\":null,\"reason\":null,"
    "\"kstate\":null,\"cpu\":null,\"cpu_self\":null,\"rss\":null,\"rss_self\":null,"
    "\"mem_pct\":null,\"threads\":null,\"procs\":null,\"start_time\":null,\"tasks_done\":0,"
    "\"tasks_inflight\":0},"
    "{\"name\":\"web\",\"group\":\"web\",\"state\":\"FATAL\",\"pid\":null,\"since\":9.0,"
    "\"uptime\":0,\"restarts\":5,\"last_exit\":\"exit:127\",\"reason\":\"command not found\","
    "\"kstate\":null,\"cpu\":null,\"cpu_self\":null,\"rss\":null,\"rss_self\":null,"
    "\"mem_pct\":null,\"threads\":null,\"procs\":null,\"start_time\":null,\"tasks_done\":0,"
    "\"tasks_inflight\":0}]}";

static void load(struct ui_snapshot *s)
{
	char err[256];
	json_t *root = json_loads(status_json, 0, NULL);
	assert_non_null(root);
	assert_int_equal(ui_snapshot_parse(root, s, err, sizeof(err)), 0);
	json_decref(root); /* the snapshot holds its own reference */
}

static void test_parse_status(void **state)
{
	(void)state;
	struct ui_snapshot s;
	load(&s);
	assert_string_equal(s.version, "0.1.0");
	assert_int_equal(s.pid, 42);
	assert_true(s.has_system);
	assert_true(s.sys_cpu == 12.5);
	assert_int_equal(s.ngroups, 2);
	assert_int_equal(s.nworkers, 3);
	assert_int_equal(s.groups[0].first, 0);
	assert_int_equal(s.groups[0].nworkers, 2);
	assert_int_equal(s.groups[1].first, 2);
	assert_int_equal(s.groups[0].counts[WORKER_PAUSED], 1);
	assert_true(s.groups[0].has_queue);
	assert_int_equal(s.groups[0].done, 1234);
	assert_false(s.groups[1].has_queue);
	assert_int_equal(s.workers[1].state_id, WORKER_PAUSED);
	assert_true(isnan(s.workers[1].cpu));
	assert_int_equal(s.workers[1].rss, -1);
	assert_int_equal(s.workers[2].pid, 0);
	assert_int_equal(s.workers[2].group_index, 1);
	assert_int_equal(ui_snapshot_worker(&s, "web"), 2);
	assert_int_equal(ui_snapshot_group(&s, "nope"), -1);
	ui_snapshot_free(&s);
}

static void test_parse_errors(void **state)
{
	(void)state;
	struct ui_snapshot s;
	char err[256];
	json_t *bad = json_pack("{s:b, s:s}", "ok", 0, "error", "no such group 'x'");
	assert_int_equal(ui_snapshot_parse(bad, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "status: no such group 'x'");
	json_decref(bad);
	bad = json_pack("{s:b}", "ok", 1);
	assert_int_equal(ui_snapshot_parse(bad, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "status: the reply has no groups and workers");
	json_decref(bad);
}

static void test_units(void **state)
{
	(void)state;
	char b[32];
	ui_fmt_bytes(1288490188LL, b, sizeof(b));
	assert_string_equal(b, "1.2G");
	ui_fmt_bytes(356515840LL, b, sizeof(b));
	assert_string_equal(b, "340M");
	ui_fmt_bytes(12288, b, sizeof(b));
	assert_string_equal(b, "12K");
	ui_fmt_bytes(512, b, sizeof(b));
	assert_string_equal(b, "512B");
	ui_fmt_bytes(-1, b, sizeof(b));
	assert_string_equal(b, "-");
	ui_fmt_duration(7, b, sizeof(b));
	assert_string_equal(b, "0:07");
	ui_fmt_duration(754.9, b, sizeof(b));
	assert_string_equal(b, "12:34");
	ui_fmt_duration(3723, b, sizeof(b));
	assert_string_equal(b, "1:02:03");
	ui_fmt_duration(3 * 86400 + 4 * 3600 + 59, b, sizeof(b));
	assert_string_equal(b, "3d04h");
	ui_fmt_duration(812 * 86400.0, b, sizeof(b));
	assert_string_equal(b, "812d");
	ui_fmt_duration(NAN, b, sizeof(b));
	assert_string_equal(b, "-");
	ui_fmt_pct(12.34, b, sizeof(b));
	assert_string_equal(b, "12.3");
	ui_fmt_pct(99.96, b, sizeof(b));
	assert_string_equal(b, "100");
	ui_fmt_pct(250.4, b, sizeof(b));
	assert_string_equal(b, "250");
	ui_fmt_pct(NAN, b, sizeof(b));
	assert_string_equal(b, "-");
	ui_fmt_count(99999, b, sizeof(b));
	assert_string_equal(b, "99999");
	ui_fmt_count(123456, b, sizeof(b));
	assert_string_equal(b, "123K");
	ui_fmt_count(1234567, b, sizeof(b));
	assert_string_equal(b, "1.2M");
	ui_fmt_count(12345678, b, sizeof(b));
	assert_string_equal(b, "12M");
	ui_fmt_count(-1, b, sizeof(b));
	assert_string_equal(b, "-");
}

static void test_fit(void **state)
{
	(void)state;
	char b[64];
	assert_int_equal(ui_fit("squarer_with_a_long_name", 12, true, b, sizeof(b)), 12);
	assert_string_equal(b, "squarer_wit\u2026");
	assert_int_equal(ui_fit("squarer_with_a_long_name", 12, false, b, sizeof(b)), 12);
	assert_string_equal(b, "squarer_wit~");
	assert_int_equal(ui_fit("exactly_12ch", 12, true, b, sizeof(b)), 12);
	assert_string_equal(b, "exactly_12ch");
	assert_int_equal(ui_fit("tab\there\x1b[31m", 40, true, b, sizeof(b)), 13);
	assert_string_equal(b, "tab?here?[31m");
	assert_int_equal(ui_fit("abc", 0, true, b, sizeof(b)), 0);
	assert_string_equal(b, "");
	/* multibyte: counted in columns, never cut inside a character */
	assert_int_equal(ui_fit("caf\u00e9 \u00e9t\u00e9", 6, true, b, sizeof(b)), 6);
	assert_string_equal(b, "caf\u00e9 \u2026");
	assert_int_equal(ui_fit("caf\u00e9", 10, false, b, sizeof(b)), 5);
	assert_string_equal(b, "caf??");
	/* a small destination never overflows */
	char tiny[4];
	ui_fit("abcdefgh", 8, true, tiny, sizeof(tiny));
	assert_true(strlen(tiny) < sizeof(tiny));
}

static int layout_width(const struct ui_layout *l)
{
	int right = 0;
	for (int c = 0; c < UI_COL__COUNT; c++)
		if (l->shown[c] && l->x[c] + l->w[c] > right)
			right = l->x[c] + l->w[c];
	return right;
}

static void test_layout(void **state)
{
	(void)state;
	struct ui_layout l;
	assert_int_equal(ui_layout_make(120, 14, &l), UI_COL__COUNT);
	assert_int_equal(l.w[UI_COL_NAME], 14);
	assert_int_equal(layout_width(&l), 120);
	assert_int_equal(l.x[UI_COL_NAME], UI_MARK_WIDTH);
	/* 80 columns: everything, at minimum widths */
	assert_int_equal(ui_layout_make(80, 14, &l), UI_COL__COUNT);
	assert_true(layout_width(&l) <= 80);
	/* narrower: MEM% goes first, then threads/procs */
	assert_int_equal(ui_layout_make(75, 14, &l), UI_COL__COUNT - 1);
	assert_false(l.shown[UI_COL_MEMPCT]);
	assert_true(l.shown[UI_COL_THREADS]);
	assert_int_equal(ui_layout_make(68, 14, &l), UI_COL__COUNT - 2);
	assert_false(l.shown[UI_COL_THREADS]);
	/* name, PID and state stay to the end */
	assert_int_equal(ui_layout_make(28, 14, &l), 3);
	assert_true(l.shown[UI_COL_NAME] && l.shown[UI_COL_PID] && l.shown[UI_COL_STATE]);
	assert_int_equal(ui_layout_make(27, 14, &l), -1);
	ui_layout_make(120, 14, &l);
	assert_int_equal(ui_layout_column_at(&l, l.x[UI_COL_CPU] + 1), UI_COL_CPU);
	assert_int_equal(ui_layout_column_at(&l, 0), -1);
}

static void test_cells(void **state)
{
	(void)state;
	struct ui_snapshot s;
	load(&s);
	char b[128];
	const struct ui_worker *w = &s.workers[0];
	ui_cell_worker(w, UI_COL_PID, b, sizeof(b));
	assert_string_equal(b, "101");
	ui_cell_worker(w, UI_COL_CPU, b, sizeof(b));
	assert_string_equal(b, "25.0");
	ui_cell_worker(w, UI_COL_MEM, b, sizeof(b));
	assert_string_equal(b, "340M");
	ui_cell_worker(w, UI_COL_THREADS, b, sizeof(b));
	assert_string_equal(b, "4/3");
	ui_cell_worker(w, UI_COL_UPTIME, b, sizeof(b));
	assert_string_equal(b, "1:02:03");
	ui_cell_worker(w, UI_COL_TASKS, b, sizeof(b));
	assert_string_equal(b, "123K");
	ui_cell_worker(w, UI_COL_LAST, b, sizeof(b));
	assert_string_equal(b, "exit:1");
	/* no figures yet: "-" */
	ui_cell_worker(&s.workers[1], UI_COL_CPU, b, sizeof(b));
	assert_string_equal(b, "-");
	ui_cell_worker(&s.workers[1], UI_COL_MEM, b, sizeof(b));
	assert_string_equal(b, "-");
	ui_cell_worker(&s.workers[1], UI_COL_THREADS, b, sizeof(b));
	assert_string_equal(b, "-");
	ui_cell_worker(&s.workers[2], UI_COL_PID, b, sizeof(b));
	assert_string_equal(b, "-");
	ui_cell_worker(&s.workers[2], UI_COL_UPTIME, b, sizeof(b));
	assert_string_equal(b, "-");
	ui_cell_worker(&s.workers[2], UI_COL_LAST, b, sizeof(b));
	assert_string_equal(b, "exit:127 (command not found)");
	/* group rows: sums and counts */
	ui_cell_group(&s, &s.groups[0], UI_COL_STATE, b, sizeof(b));
	assert_string_equal(b, "1/2");
	ui_cell_group(&s, &s.groups[0], UI_COL_CPU, b, sizeof(b));
	assert_string_equal(b, "30.0");
	ui_cell_group(&s, &s.groups[0], UI_COL_MEM, b, sizeof(b));
	assert_string_equal(b, "350M");
	ui_cell_group(&s, &s.groups[0], UI_COL_TASKS, b, sizeof(b));
	assert_string_equal(b, "1234");
	ui_cell_group(&s, &s.groups[0], UI_COL_RESTARTS, b, sizeof(b));
	assert_string_equal(b, "2");
	ui_cell_group(&s, &s.groups[0], UI_COL_LAST, b, sizeof(b));
	assert_string_equal(b, "1 RUNNING, 1 PAUSED");
	ui_cell_group(&s, &s.groups[1], UI_COL_CPU, b, sizeof(b));
	assert_string_equal(b, "-"); /* no worker of web was ever sampled */
	ui_snapshot_free(&s);
}

int main(void)
{
	setlocale(LC_CTYPE, "C.UTF-8"); /* the UTF-8 cases of ui_fit */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_status), cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_units),        cmocka_unit_test(test_fit),
	    cmocka_unit_test(test_layout),       cmocka_unit_test(test_cells),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
