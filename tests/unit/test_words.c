/* Word splitting of command lines (words.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "drover/words.h"

/* Split line and compare with the expected words, each in brackets, so a
 * failure message shows every word and where it ends. */
static void check_split(const char *line, const char *expected)
{
	char **argv = NULL;
	char err[128] = "";
	char joined[1024] = "";

	assert_int_equal(words_split(line, &argv, err, sizeof(err)), 0);
	assert_non_null(argv);
	for (char **w = argv; *w != NULL; w++) {
		strcat(joined, "[");
		strcat(joined, *w);
		strcat(joined, "]");
	}
	assert_string_equal(joined, expected);
	words_free(argv);
}

static size_t count_words(const char *line)
{
	char **argv = NULL;
	char err[128];
	size_t n = 0;

	assert_int_equal(words_split(line, &argv, err, sizeof(err)), 0);
	while (argv[n] != NULL)
		n++;
	words_free(argv);
	return n;
}

static void check_error(const char *line, const char *message)
{
	char **argv = (char **)1;
	char err[128] = "";

	assert_int_equal(words_split(line, &argv, err, sizeof(err)), -1);
	assert_null(argv);
	assert_string_equal(err, message);
}

static void test_plain_words(void **state)
{
	(void)state;
	check_split("/usr/bin/python3 -u worker.py", "[/usr/bin/python3][-u][worker.py]");
	check_split("  leading\tand   trailing  ", "[leading][and][trailing]");
	check_split("one", "[one]");
}

static void test_empty_and_blank(void **state)
{
	(void)state;
	assert_int_equal(count_words(""), 0);
	assert_int_equal(count_words("   \t \n "), 0);
}

static void test_single_quotes_are_literal(void **state)
{
	(void)state;
	check_split("echo 'a b' 'c\\d' '$HOME'", "[echo][a b][c\\d][$HOME]");
	check_split("'it'\\''s'", "[it's]");
}

static void test_double_quotes(void **state)
{
	(void)state;
	check_split("sh -c \"echo \\\"hi\\\" \\$X \\`y\\` \\\\\"",
	            "[sh][-c][echo \"hi\" $X `y` \\]");
	/* other backslashes stay, as in sh */
	check_split("\"a\\nb\"", "[a\\nb]");
	check_split("\"two words\" x", "[two words][x]");
}

static void test_backslash_outside_quotes(void **state)
{
	(void)state;
	check_split("a\\ b c\\\"d \\'", "[a b][c\"d][']");
	/* backslash-newline joins lines and makes no word */
	check_split("a \\\n b", "[a][b]");
	check_split("ab\\\ncd", "[abcd]");
}

static void test_empty_words_from_quotes(void **state)
{
	(void)state;
	check_split("a '' \"\" b", "[a][][][b]");
	assert_int_equal(count_words("''"), 1);
}

static void test_adjacent_parts_make_one_word(void **state)
{
	(void)state;
	check_split("--name='my app'\"!\"x", "[--name=my app!x]");
}

static void test_no_expansion_no_operators(void **state)
{
	(void)state;
	check_split("echo $HOME ~ * a|b c;d #x", "[echo][$HOME][~][*][a|b][c;d][#x]");
}

static void test_newlines_separate(void **state)
{
	(void)state;
	check_split("\nprog\n  --flag\n", "[prog][--flag]");
}

static void test_errors(void **state)
{
	(void)state;
	check_error("echo 'abc", "unterminated single quote");
	check_error("echo \"abc", "unterminated double quote");
	check_error("echo \"abc\\\"", "unterminated double quote");
	check_error("echo abc\\", "trailing backslash");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_words),
	    cmocka_unit_test(test_empty_and_blank),
	    cmocka_unit_test(test_single_quotes_are_literal),
	    cmocka_unit_test(test_double_quotes),
	    cmocka_unit_test(test_backslash_outside_quotes),
	    cmocka_unit_test(test_empty_words_from_quotes),
	    cmocka_unit_test(test_adjacent_parts_make_one_word),
	    cmocka_unit_test(test_no_expansion_no_operators),
	    cmocka_unit_test(test_newlines_separate),
	    cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
