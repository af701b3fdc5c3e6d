/* The console's key table and what steering keys ask of the supervisor. */
#include <curses.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "drover/command.h"
#include "drover/ui_keys.h"

static void test_dispatch(void **state)
{
	(void)state;
	assert_int_equal(ui_key_action(UI_CTX_TABLE, 'p'), UI_ACT_PAUSE);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, 'k'), UI_ACT_KILL);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, KEY_F(9)), UI_ACT_KILL);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, '+'), UI_ACT_GROW);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, KEY_F(8)), UI_ACT_GROW);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, '-'), UI_ACT_SHRINK);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, KEY_F(7)), UI_ACT_SHRINK);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, '/'), UI_ACT_FILTER);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, KEY_F(5)), UI_ACT_FOLD_ALL);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, KEY_LEFT), UI_ACT_FOLD);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, ' '), UI_ACT_TAG);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, 'q'), UI_ACT_QUIT);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, KEY_F(10)), UI_ACT_QUIT);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, '?'), UI_ACT_HELP);
	assert_int_equal(ui_key_action(UI_CTX_TABLE, 'Z'), UI_ACT_NONE);
	/* the pane takes its own keys, the rest fall to the table */
	assert_int_equal(ui_key_action(UI_CTX_LOG, KEY_END), UI_ACT_END);
	assert_int_equal(ui_key_action(UI_CTX_LOG, 'p'), UI_ACT_PAUSE);
	/* prompts and dialogs take only theirs */
	assert_int_equal(ui_key_action(UI_CTX_PROMPT, UI_KEY_ESC), UI_ACT_CANCEL);
	assert_int_equal(ui_key_action(UI_CTX_PROMPT, '\r'), UI_ACT_ACCEPT);
	assert_int_equal(ui_key_action(UI_CTX_PROMPT, 'p'), UI_ACT_NONE);
	assert_int_equal(ui_key_action(UI_CTX_CONFIRM, UI_KEY_ENTER), UI_ACT_ACCEPT);
	assert_int_equal(ui_key_action(UI_CTX_CONFIRM, 'q'), UI_ACT_NONE);
	assert_int_equal(ui_key_action(UI_CTX_HELP, UI_KEY_ESC), UI_ACT_CANCEL);
	assert_int_equal(ui_key_action(UI_CTX_MENU, KEY_DOWN), UI_ACT_DOWN);
}

/* Help and footer come from the table, so the table itself must be sound:
 * no key bound twice where it can be pressed, every entry explained. */
static void test_table_is_consistent(void **state)
{
	(void)state;
	const unsigned ctxs[] = {UI_CTX_TABLE,   UI_CTX_LOG,  UI_CTX_PROMPT,
	                         UI_CTX_CONFIRM, UI_CTX_MENU, UI_CTX_HELP};
	for (size_t c = 0; c < sizeof(ctxs) / sizeof(ctxs[0]); c++)
		for (size_t i = 0; i < ui_nkeys; i++)
			for (size_t j = i + 1; j < ui_nkeys; j++) {
				if (!(ui_keys[i].ctx & ctxs[c]) || !(ui_keys[j].ctx & ctxs[c]))
					continue;
				for (size_t a = 0; a < 3 && ui_keys[i].keys[a]; a++)
					for (size_t b = 0; b < 3 && ui_keys[j].keys[b]; b++)
						if (ui_keys[i].keys[a] == ui_keys[j].keys[b])
							fail_msg("key %d bound twice (%s / %s)",
							         ui_keys[i].keys[a],
							         ui_keys[i].help, ui_keys[j].help);
			}
	for (size_t i = 0; i < ui_nkeys; i++) {
		assert_non_null(ui_keys[i].help);
		assert_true(ui_keys[i].keys[0] != 0);
		assert_true(ui_keys[i].action != UI_ACT_NONE);
	}
}

static void test_key_names(void **state)
{
	(void)state;
	char b[16];
	assert_string_equal(ui_key_name(KEY_F(9), b, sizeof(b)), "F9");
	assert_string_equal(ui_key_name(KEY_F(10), b, sizeof(b)), "F10");
	assert_string_equal(ui_key_name(' ', b, sizeof(b)), "Space");
	assert_string_equal(ui_key_name(UI_KEY_CTRL('l'), b, sizeof(b)), "^L");
	assert_string_equal(ui_key_name('k', b, sizeof(b)), "k");
	assert_string_equal(ui_key_name(KEY_ENTER, b, sizeof(b)), "Enter");
}

static const struct ui_target worker_running = {
    UI_TARGET_WORKER, "squarer_01", "squarer", "RUNNING", 1, 0, 4};
static const struct ui_target worker_paused = {
    UI_TARGET_WORKER, "squarer_01", "squarer", "PAUSED", 1, 1, 4};
static const struct ui_target group = {UI_TARGET_GROUP, "squarer", "squarer", NULL, 4, 1, 4};
static const struct ui_target group_paused = {UI_TARGET_GROUP, "squarer", "squarer", NULL, 4, 4, 4};
static const struct ui_target tagged = {UI_TARGET_TAGGED, NULL, "squarer", NULL, 3, 0, 4};
static const struct ui_target nothing = {UI_TARGET_NONE, NULL, NULL, NULL, 0, 0, 0};

/* The request must be a valid command of the shared vocabulary. */
static void assert_valid(const struct ui_request *r)
{
	struct command c;
	char err[256];
	const char *target = r->each_tagged ? "squarer_00" : r->target;
	if (command_parse(r->cmd, target, r->arg, &c, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

static void test_pause_toggles(void **state)
{
	(void)state;
	struct ui_request r;
	char err[128];
	assert_int_equal(ui_action_request(UI_ACT_PAUSE, &worker_running, NULL, &r, err, 128), 0);
	assert_string_equal(r.cmd, "pause");
	assert_string_equal(r.target, "squarer_01");
	assert_false(r.confirm);
	assert_valid(&r);
	ui_action_request(UI_ACT_PAUSE, &worker_paused, NULL, &r, err, 128);
	assert_string_equal(r.cmd, "resume");
	ui_action_request(UI_ACT_PAUSE, &group, NULL, &r, err, 128); /* some paused: pause */
	assert_string_equal(r.cmd, "pause");
	assert_string_equal(r.target, "squarer");
	ui_action_request(UI_ACT_PAUSE, &group_paused, NULL, &r, err, 128);
	assert_string_equal(r.cmd, "resume");
}

static void test_destructive_on_many_asks(void **state)
{
	(void)state;
	struct ui_request r;
	char err[128];
	assert_int_equal(ui_action_request(UI_ACT_TERM, &worker_running, NULL, &r, err, 128), 0);
	assert_string_equal(r.cmd, "stop");
	assert_false(r.confirm);
	assert_int_equal(ui_action_request(UI_ACT_TERM, &group, NULL, &r, err, 128), 0);
	assert_true(r.confirm);
	assert_string_equal(r.question, "Stop all 4 workers of squarer?");
	assert_valid(&r);
	assert_int_equal(ui_action_request(UI_ACT_RESTART, &tagged, NULL, &r, err, 128), 0);
	assert_string_equal(r.cmd, "restart");
	assert_true(r.each_tagged);
	assert_string_equal(r.target, "");
	assert_true(r.confirm);
	assert_string_equal(r.question, "Restart 3 tagged workers?");
	assert_valid(&r);
	assert_int_equal(ui_action_request(UI_ACT_KILL, &group, "KILL", &r, err, 128), 0);
	assert_string_equal(r.cmd, "kill");
	assert_string_equal(r.arg, "KILL");
	assert_string_equal(r.question, "Send SIGKILL to all 4 workers of squarer?");
	assert_valid(&r);
	assert_int_equal(ui_action_request(UI_ACT_KILL, &worker_running, "HUP", &r, err, 128), 0);
	assert_false(r.confirm);
	assert_int_equal(ui_action_request(UI_ACT_KILL, &worker_running, NULL, &r, err, 128), -1);
	assert_string_equal(err, "kill: which signal?");
	/* starting is not destructive */
	ui_action_request(UI_ACT_START, &group, NULL, &r, err, 128);
	assert_string_equal(r.cmd, "start");
	assert_false(r.confirm);
	/* reload always asks: it may restart changed programs */
	ui_action_request(UI_ACT_RELOAD, &nothing, NULL, &r, err, 128);
	assert_string_equal(r.cmd, "reload");
	assert_true(r.confirm);
	assert_valid(&r);
}

static void test_scaling(void **state)
{
	(void)state;
	struct ui_request r;
	char err[128];
	/* from a worker row, the pool it belongs to; tags do not change that */
	assert_int_equal(ui_action_request(UI_ACT_GROW, &worker_running, NULL, &r, err, 128), 0);
	assert_string_equal(r.cmd, "scale");
	assert_string_equal(r.target, "squarer");
	assert_string_equal(r.arg, "+1");
	assert_false(r.confirm);
	assert_valid(&r);
	ui_action_request(UI_ACT_SHRINK, &tagged, NULL, &r, err, 128);
	assert_string_equal(r.target, "squarer");
	assert_string_equal(r.arg, "-1");
	assert_false(r.each_tagged);
	assert_valid(&r);
	struct ui_target one = group;
	one.wanted = 1;
	ui_action_request(UI_ACT_SHRINK, &one, NULL, &r, err, 128);
	assert_true(r.confirm); /* to zero: everything stops */
	one.wanted = 0;
	assert_int_equal(ui_action_request(UI_ACT_SHRINK, &one, NULL, &r, err, 128), -1);
	assert_int_equal(ui_action_request(UI_ACT_SCALE_TO, &group, "8", &r, err, 128), 0);
	assert_string_equal(r.arg, "8");
	assert_false(r.confirm);
	assert_valid(&r);
	assert_int_equal(ui_action_request(UI_ACT_SCALE_TO, &group, "0", &r, err, 128), 0);
	assert_true(r.confirm);
	assert_int_equal(ui_action_request(UI_ACT_SCALE_TO, &group, "x8", &r, err, 128), -1);
	assert_string_equal(err, "'x8' is not a pool size");
	assert_int_equal(ui_action_request(UI_ACT_PAUSE, &nothing, NULL, &r, err, 128), -1);
	assert_string_equal(err, "nothing selected");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dispatch),
	    cmocka_unit_test(test_table_is_consistent),
	    cmocka_unit_test(test_key_names),
	    cmocka_unit_test(test_pause_toggles),
	    cmocka_unit_test(test_destructive_on_many_asks),
	    cmocka_unit_test(test_scaling),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
