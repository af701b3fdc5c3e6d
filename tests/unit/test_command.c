/* The command vocabulary: parsing, validation, targets; reload planning. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "drover/command.h"
#include "drover/reload.h"

static void test_parse_ok(void **state)
{
	(void)state;
	struct command c;
	char err[256];
	assert_int_equal(command_parse("status", NULL, NULL, &c, err, sizeof(err)), 0);
	assert_int_equal(c.spec->id, CMD_STATUS);
	assert_string_equal(c.target, "");
	assert_int_equal(command_parse("scale", "squarer", "8", &c, err, sizeof(err)), 0);
	assert_int_equal(c.scale_n, 8);
	assert_false(c.scale_relative);
	assert_int_equal(command_parse("scale", "squarer", "+2", &c, err, sizeof(err)), 0);
	assert_int_equal(c.scale_n, 2);
	assert_true(c.scale_relative);
	assert_int_equal(command_parse("scale", "squarer", "-1", &c, err, sizeof(err)), 0);
	assert_int_equal(c.scale_n, -1);
	assert_true(c.scale_relative);
	assert_int_equal(command_parse("kill", "w", "HUP", &c, err, sizeof(err)), 0);
	assert_int_equal(c.signo, SIGHUP);
	assert_int_equal(command_parse("kill", "w", "9", &c, err, sizeof(err)), 0);
	assert_int_equal(c.signo, SIGKILL);
	assert_int_equal(command_parse("kill", "w", "SIGUSR1", &c, err, sizeof(err)), 0);
	assert_int_equal(c.signo, SIGUSR1);
	assert_int_equal(command_parse("log", "w", NULL, &c, err, sizeof(err)), 0);
	assert_int_equal(c.log_lines, LOG_DEFAULT_LINES);
	assert_int_equal(command_parse("log", "w", "5", &c, err, sizeof(err)), 0);
	assert_int_equal(c.log_lines, 5);
}

static void expect_error(const char *name, const char *target, const char *arg, const char *message)
{
	struct command c;
	char err[256];
	assert_int_equal(command_parse(name, target, arg, &c, err, sizeof(err)), -1);
	assert_string_equal(err, message);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_error("frobnicate", NULL, NULL, "unknown command 'frobnicate'");
	expect_error("scale", "squarer", "2000", "scale: N must be between 0 and 1024");
	expect_error("scale", "squarer", "-0x", "scale: '-0x' is not a number (N, +N or -N)");
	expect_error("scale", "squarer", NULL,
	             "scale: an argument is required (usage: scale GROUP N|+N|-N)");
	expect_error("start", NULL, NULL, "start: a target is required (usage: start TARGET)");
	expect_error("reload", "x", NULL, "reload takes no target (usage: reload)");
	expect_error("stop", "x", "y", "stop takes no argument (usage: stop TARGET)");
	expect_error("kill", "w", "NOPE", "kill: unknown signal 'NOPE'");
	expect_error("log", "w", "0", "log: N must be between 1 and 200");
}

static void test_split_target(void **state)
{
	(void)state;
	char g[64], n[64];
	command_split_target("squarer:squarer_03", g, sizeof(g), n, sizeof(n));
	assert_string_equal(g, "squarer");
	assert_string_equal(n, "squarer_03");
	command_split_target("web:*", g, sizeof(g), n, sizeof(n));
	assert_string_equal(g, "web");
	assert_string_equal(n, "*");
	command_split_target("squarer_03", g, sizeof(g), n, sizeof(n));
	assert_string_equal(g, "");
	assert_string_equal(n, "squarer_03");
}

static void test_table_is_complete(void **state)
{
	(void)state;
	for (int i = 0; i < CMD__COUNT; i++) {
		assert_int_equal(command_table[i].id, i);
		assert_ptr_equal(command_lookup(command_table[i].name), &command_table[i]);
		assert_non_null(strstr(command_table[i].usage, command_table[i].name));
	}
}

static const char *const base_ini = "[program:a]\ncommand=sleep 1\n"
                                    "[program:b]\ncommand=sleep 2\nnumprocs=2\n"
                                    "[program:c]\ncommand=sleep 3\n";

static void test_reload_plan(void **state)
{
	(void)state;
	struct config old_cfg, new_cfg;
	assert_int_equal(config_load_string("/tmp/x.ini", base_ini, &old_cfg, NULL, NULL), 0);
	/* a unchanged, b scaled, c changed, d added, (nothing removed yet) */
	const char *next = "[program:a]\ncommand=sleep 1\n"
	                   "[program:b]\ncommand=sleep 2\nnumprocs=5\n"
	                   "[program:c]\ncommand=sleep 30\n"
	                   "[program:d]\ncommand=sleep 4\n";
	assert_int_equal(config_load_string("/tmp/x.ini", next, &new_cfg, NULL, NULL), 0);
	struct reload_plan plan;
	assert_int_equal(reload_plan_make(&old_cfg, &new_cfg, &plan), 0);
	assert_int_equal(plan.count, 4);
	const char *expect[][2] = {
	    {"a", "unchanged"}, {"b", "scaled"}, {"c", "changed"}, {"d", "added"}};
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(plan.items[i].name, expect[i][0]);
		assert_string_equal(reload_action_name(plan.items[i].action), expect[i][1]);
	}
	reload_plan_free(&plan);

	/* reversed: d removed, and c changed back */
	assert_int_equal(reload_plan_make(&new_cfg, &old_cfg, &plan), 0);
	assert_int_equal(plan.count, 4);
	assert_string_equal(plan.items[3].name, "d");
	assert_int_equal(plan.items[3].action, RELOAD_REMOVED);
	assert_null(plan.items[3].new_prog);
	reload_plan_free(&plan);
	config_free(&old_cfg);
	config_free(&new_cfg);
}

static void test_reload_numprocs_and_other_change_is_changed(void **state)
{
	(void)state;
	struct config old_cfg, new_cfg;
	assert_int_equal(config_load_string("/tmp/x.ini", base_ini, &old_cfg, NULL, NULL), 0);
	const char *next = "[program:a]\ncommand=sleep 1\n"
	                   "[program:b]\ncommand=sleep 2\nnumprocs=3\nstopwaitsecs=3\n"
	                   "[program:c]\ncommand=sleep 3\n";
	assert_int_equal(config_load_string("/tmp/x.ini", next, &new_cfg, NULL, NULL), 0);
	struct reload_plan plan;
	assert_int_equal(reload_plan_make(&old_cfg, &new_cfg, &plan), 0);
	assert_int_equal(plan.items[1].action, RELOAD_CHANGED);
	assert_int_equal(plan.items[0].action, RELOAD_UNCHANGED);
	assert_int_equal(plan.items[2].action, RELOAD_UNCHANGED);
	reload_plan_free(&plan);
	config_free(&old_cfg);
	config_free(&new_cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ok),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_split_target),
	    cmocka_unit_test(test_table_is_complete),
	    cmocka_unit_test(test_reload_plan),
	    cmocka_unit_test(test_reload_numprocs_and_other_change_is_changed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
