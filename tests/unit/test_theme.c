/* Console themes: the format, dotted fallback, errors that name line and
 * role, colour matching, and every shipped theme parsing cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drover/theme.h"

static struct theme_style style(const struct theme *t, const char *role)
{
	int r = theme_role_lookup(role);
	assert_true(r >= 0);
	return theme_resolve(t, (enum theme_role)r);
}

static void test_roles_and_parents(void **state)
{
	(void)state;
	assert_int_equal(theme_role_lookup("state.fatal"), THEME_STATE_FATAL);
	assert_int_equal(theme_role_lookup("nope"), -1);
	assert_string_equal(theme_role_name(THEME_TABLE_HEADER_SORTED), "table.header.sorted");
	assert_int_equal(theme_role_parent(THEME_STATE_FATAL), THEME_STATE);
	assert_int_equal(theme_role_parent(THEME_STATE), THEME_DEFAULT);
	assert_int_equal(theme_role_parent(THEME_TABLE_HEADER_SORTED), THEME_TABLE_HEADER);
	assert_int_equal(theme_role_parent(THEME_DEFAULT), THEME_DEFAULT);
	for (int r = 0; r < THEME__COUNT; r++) /* every parent is a role of its own */
		assert_true(theme_role_parent((enum theme_role)r) < THEME__COUNT);
}

static void test_builtin_default(void **state)
{
	(void)state;
	struct theme t;
	theme_default(&t);
	assert_string_equal(t.name, "default");
	struct theme_style s = style(&t, "state.fatal");
	assert_int_equal(s.fg, 1); /* red */
	assert_int_equal(s.bg, THEME_COLOR_DEFAULT);
	assert_int_equal(s.attrs, THEME_BOLD);
	s = style(&t, "log.info"); /* not in the default: log -> default */
	assert_int_equal(s.fg, THEME_COLOR_DEFAULT);
	assert_int_equal(s.attrs, 0);
	s = style(&t, "row.selected");
	assert_int_equal(s.fg, 0);
	assert_int_equal(s.bg, 6);
}

static void test_file_changes_only_what_it_lists(void **state)
{
	(void)state;
	struct theme t;
	char err[256];
	const char *text = "# a comment\n"
	                   "; another\n"
	                   "\n"
	                   "default = white #002b36\n"
	                   "log = yellow black   # inline comment\n"
	                   "state.running = 82 - underline, bold ; and another\r\n";
	assert_int_equal(theme_parse("themes/ocean.theme", text, &t, err, sizeof(err)), 0);
	assert_string_equal(t.name, "ocean");
	/* "-" backgrounds follow the new default background */
	struct theme_style s = style(&t, "header.title");
	assert_int_equal(s.fg, 6);
	assert_int_equal(s.bg, THEME_COLOR_RGB | 0x002b36);
	/* log.info is unset: it takes log's */
	s = style(&t, "log.info");
	assert_int_equal(s.fg, 3);
	assert_int_equal(s.bg, 0);
	s = style(&t, "state.running");
	assert_int_equal(s.fg, 82);
	assert_int_equal(s.bg, THEME_COLOR_RGB | 0x002b36);
	assert_int_equal(s.attrs, THEME_UNDERLINE | THEME_BOLD);
	/* untouched roles keep the built-in */
	s = style(&t, "state.fatal");
	assert_int_equal(s.fg, 1);
	assert_int_equal(s.attrs, THEME_BOLD);
}

static void expect_error(const char *text, const char *want)
{
	struct theme t;
	char err[256];
	assert_int_equal(theme_parse("bad.theme", text, &t, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	assert_string_equal(t.name, "default"); /* falls back whole */
	assert_int_equal(style(&t, "state.fatal").fg, 1);
}

static void test_errors_name_line_and_role(void **state)
{
	(void)state;
	expect_error("default = white black\n\nstate.fatl = red default\n",
	             "bad.theme:3: role 'state.fatl': unknown role");
	expect_error("state.fatal = crimson default\n",
	             "bad.theme:1: role 'state.fatal': unknown colour 'crimson' (a name, 0-255, "
	             "#rrggbb, default or -)");
	expect_error("state.fatal = 256 default\n",
	             "bad.theme:1: role 'state.fatal': unknown colour '256' (a name, 0-255, "
	             "#rrggbb, default or -)");
	expect_error("state.fatal = #12345 default\n",
	             "bad.theme:1: role 'state.fatal': unknown colour '#12345' (a name, 0-255, "
	             "#rrggbb, default or -)");
	expect_error("row.dim = red\n",
	             "bad.theme:1: role 'row.dim': expected a foreground and a background colour");
	expect_error("row.dim = red black shiny\n",
	             "bad.theme:1: role 'row.dim': unknown attribute 'shiny' (bold dim underline "
	             "reverse italic blink)");
	expect_error("row.dim red black\n", "bad.theme:1: expected 'role = fg bg [attrs]'");
	expect_error("row dim = red black\n", "bad.theme:1: expected one role name before '='");
}

static void test_nearest_colours(void **state)
{
	(void)state;
	assert_int_equal(theme_nearest_256(0xff0000), 196);
	assert_int_equal(theme_nearest_256(0x000000), 16);
	assert_int_equal(theme_nearest_256(0xffffff), 231);
	assert_int_equal(theme_nearest_256(0x808080), 244);
	assert_int_equal(theme_nearest_256(0x002b36), 234); /* solarized base03 */
	assert_int_equal(theme_nearest_256(0x268bd2), 32);  /* solarized blue */
	/* fitting to what the terminal has */
	assert_int_equal(theme_fit_color(THEME_COLOR_DEFAULT, 8), THEME_COLOR_DEFAULT);
	assert_int_equal(theme_fit_color(3, 8), 3);
	assert_int_equal(theme_fit_color(196, 256), 196);
	assert_int_equal(theme_fit_color(196, 8), 1);
	assert_int_equal(theme_fit_color(THEME_COLOR_RGB | 0x00ff00, 16), 10);
	assert_int_equal(theme_fit_color(THEME_COLOR_RGB | 0x00ff00, 8), 2);
	assert_int_equal(theme_fit_color(THEME_COLOR_RGB | 0xff0000, 256), 196);
	assert_int_equal(theme_fit_color(THEME_COLOR_RGB | 0x123456, 0x1000000), 0x123456);
	assert_int_equal(theme_fit_color(196, 0x1000000), 0xff0000);
}

static void test_mono_keeps_things_apart(void **state)
{
	(void)state;
	assert_int_equal(theme_mono_attrs(THEME_ROW_SELECTED), THEME_REVERSE);
	assert_int_equal(theme_mono_attrs(THEME_TABLE_HEADER), THEME_REVERSE);
	assert_true(theme_mono_attrs(THEME_STATE_FATAL) & THEME_BOLD);
	assert_int_equal(theme_mono_attrs(THEME_STATE_RUNNING), 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void test_shipped_themes_parse(void **state)
{
	(void)state;
	const char *data = getenv("DROVER_TEST_DATA");
	assert_non_null(data);
	const char *names[] = {"default", "mono", "solarized-dark", "high-contrast"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[1024], err[256] = "";
		snprintf(path, sizeof(path), "%s/../../themes/%s.theme", data, names[i]);
		char *text = slurp(path);
		if (!text)
			fail_msg("%s: cannot read", path);
		struct theme t;
		if (theme_parse(path, text, &t, err, sizeof(err)) < 0)
			fail_msg("%s", err);
		assert_string_equal(t.name, names[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roles_and_parents),
	    cmocka_unit_test(test_builtin_default),
	    cmocka_unit_test(test_file_changes_only_what_it_lists),
	    cmocka_unit_test(test_errors_name_line_and_role),
	    cmocka_unit_test(test_nearest_colours),
	    cmocka_unit_test(test_mono_keeps_things_apart),
	    cmocka_unit_test(test_shipped_themes_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
