/* Sorting, filtering and folding the snapshot into the table's lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "drover/ui_view.h"

/* Two groups: pool (4 workers, some without figures) and web (1). */
static void load(struct ui_snapshot *s)
{
	const char *text =
	    "{\"groups\":[{\"name\":\"pool\",\"wanted\":4,\"states\":{\"RUNNING\":3,"
	    "\"PAUSED\":1}},{\"name\":\"web\",\"wanted\":1,\"states\":{\"RUNNING\":1}}],"
	    "\"workers\":["
	    "{\"name\":\"pool_9\",\"group\":\"pool\",\"state\":\"RUNNING\",\"pid\":9,"
	    "\"cpu\":5.0,\"rss\":300,\"uptime\":50},"
	    "{\"name\":\"pool_10\",\"group\":\"pool\",\"state\":\"PAUSED\",\"pid\":10,"
	    "\"cpu\":null,\"rss\":null,\"uptime\":40},"
	    "{\"name\":\"pool_2\",\"group\":\"pool\",\"state\":\"RUNNING\",\"pid\":2,"
	    "\"cpu\":80.0,\"rss\":100,\"uptime\":60},"
	    "{\"name\":\"pool_1\",\"group\":\"pool\",\"state\":\"RUNNING\",\"pid\":1,"
	    "\"cpu\":20.0,\"rss\":200,\"uptime\":70},"
	    "{\"name\":\"web\",\"group\":\"web\",\"state\":\"RUNNING\",\"pid\":20,"
	    "\"cpu\":1.0,\"rss\":50,\"uptime\":10}]}";
	char err[256];
	json_t *root = json_loads(text, 0, NULL);
	assert_non_null(root);
	assert_int_equal(ui_snapshot_parse(root, s, err, sizeof(err)), 0);
	json_decref(root);
}

/* The lines as "[pool] pool_9 pool_10 ..." for compact assertions. */
static const char *render(const struct ui_snapshot *s, const struct ui_view *v)
{
	static char out[512];
	struct ui_line lines[16];
	int n = ui_view_lines(s, v, lines);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		char item[64];
		if (lines[i].group)
			snprintf(item, sizeof(item), "%s[%s]", i ? " " : "",
			         s->groups[lines[i].index].name);
		else
			snprintf(item, sizeof(item), " %s", s->workers[lines[i].index].name);
		strncat(out, item, sizeof(out) - strlen(out) - 1);
	}
	return out;
}

static void test_config_order(void **state)
{
	(void)state;
	struct ui_snapshot s;
	struct ui_view v;
	load(&s);
	ui_view_init(&v);
	assert_string_equal(render(&s, &v), "[pool] pool_9 pool_10 pool_2 pool_1 [web] web");
	ui_view_free(&v);
	ui_snapshot_free(&s);
}

static void test_sort(void **state)
{
	(void)state;
	struct ui_snapshot s;
	struct ui_view v;
	load(&s);
	ui_view_init(&v);
	/* CPU starts biggest first; the worker without a figure goes last */
	ui_view_sort_by(&v, UI_COL_CPU);
	assert_true(v.sort_desc);
	assert_string_equal(render(&s, &v), "[pool] pool_2 pool_1 pool_9 pool_10 [web] web");
	/* again: reversed, and still missing figures last */
	ui_view_sort_by(&v, UI_COL_CPU);
	assert_false(v.sort_desc);
	assert_string_equal(render(&s, &v), "[pool] pool_9 pool_1 pool_2 pool_10 [web] web");
	/* names in version order: 9 before 10 */
	ui_view_sort_by(&v, UI_COL_NAME);
	assert_false(v.sort_desc);
	assert_string_equal(render(&s, &v), "[pool] pool_1 pool_2 pool_9 pool_10 [web] web");
	ui_view_sort_by(&v, UI_COL_MEM);
	assert_string_equal(render(&s, &v), "[pool] pool_9 pool_1 pool_2 pool_10 [web] web");
	ui_view_sort_by(&v, UI_COL_STATE);
	assert_string_equal(render(&s, &v), "[pool] pool_10 pool_9 pool_2 pool_1 [web] web");
	ui_view_free(&v);
	ui_snapshot_free(&s);
}

static void test_sort_step_cycles_shown_columns(void **state)
{
	(void)state;
	struct ui_view v;
	ui_view_init(&v);
	bool shown[UI_COL__COUNT];
	for (int c = 0; c < UI_COL__COUNT; c++)
		shown[c] = c != UI_COL_PID;
	ui_view_sort_step(&v, 1, shown);
	assert_int_equal(v.sort_col, UI_COL_NAME);
	ui_view_sort_step(&v, 1, shown);
	assert_int_equal(v.sort_col, UI_COL_STATE); /* PID is hidden: skipped */
	ui_view_sort_step(&v, -1, shown);
	ui_view_sort_step(&v, -1, shown);
	assert_int_equal(v.sort_col, UI_SORT_NONE);
	ui_view_sort_step(&v, -1, shown);
	assert_int_equal(v.sort_col, UI_COL_LAST);
	ui_view_free(&v);
}

static void test_filter(void **state)
{
	(void)state;
	struct ui_snapshot s;
	struct ui_view v;
	load(&s);
	ui_view_init(&v);
	snprintf(v.filter, sizeof(v.filter), "POOL_1");
	assert_string_equal(render(&s, &v), "[pool] pool_10 pool_1");
	snprintf(v.filter, sizeof(v.filter), "paused"); /* states match too */
	assert_string_equal(render(&s, &v), "[pool] pool_10");
	snprintf(v.filter, sizeof(v.filter), "web"); /* a group name shows the group */
	assert_string_equal(render(&s, &v), "[web] web");
	snprintf(v.filter, sizeof(v.filter), "nothing");
	assert_string_equal(render(&s, &v), "");
	v.filter[0] = '\0';
	assert_string_equal(render(&s, &v), "[pool] pool_9 pool_10 pool_2 pool_1 [web] web");
	ui_view_free(&v);
	ui_snapshot_free(&s);
}

static void test_fold(void **state)
{
	(void)state;
	struct ui_snapshot s;
	struct ui_view v;
	load(&s);
	ui_view_init(&v);
	ui_names_add(&v.folded, "pool");
	assert_string_equal(render(&s, &v), "[pool] [web] web");
	snprintf(v.filter, sizeof(v.filter), "pool_2"); /* a folded group stays one row */
	assert_string_equal(render(&s, &v), "[pool]");
	ui_view_free(&v);
	ui_snapshot_free(&s);
}

static void test_names(void **state)
{
	(void)state;
	struct ui_names n = {0};
	assert_int_equal(ui_names_add(&n, "b"), 0);
	assert_int_equal(ui_names_add(&n, "a"), 0);
	assert_int_equal(ui_names_add(&n, "c"), 0);
	assert_int_equal(ui_names_add(&n, "a"), 0);
	assert_int_equal((int)n.count, 3);
	assert_string_equal(n.items[0], "a");
	assert_string_equal(n.items[2], "c");
	assert_true(ui_names_has(&n, "b"));
	ui_names_remove(&n, "b");
	assert_false(ui_names_has(&n, "b"));
	assert_int_equal((int)n.count, 2);
	ui_names_clear(&n);
	assert_int_equal((int)n.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_order),
	    cmocka_unit_test(test_sort),
	    cmocka_unit_test(test_sort_step_cycles_shown_columns),
	    cmocka_unit_test(test_filter),
	    cmocka_unit_test(test_fold),
	    cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
