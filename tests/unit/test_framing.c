/* The task protocols on the wire (src/queue/framing.c): what a task looks
 * like in each protocol, which tasks are refused, how results are cut into
 * lines (partial lines, many in one read, lines over 16 MiB), and how a
 * json answer is read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drover/framing.h"

/* ---- a line collector ---- */

struct got {
	size_t n, cap;
	char **lines;
	size_t *lens;
	int overflows;
	size_t overflow_at[8]; /* index in lines[] when each overflow came */
};

static void collect(void *arg, const char *line, size_t len, bool overflow)
{
	struct got *g = arg;
	if (overflow) {
		assert_null(line);
		assert_int_equal(len, 0);
		if (g->overflows < 8)
			g->overflow_at[g->overflows] = g->n;
		g->overflows++;
		return;
	}
	assert_non_null(line);
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->lines = realloc(g->lines, g->cap * sizeof(*g->lines));
		g->lens = realloc(g->lens, g->cap * sizeof(*g->lens));
		assert_non_null(g->lines);
		assert_non_null(g->lens);
	}
	g->lines[g->n] = malloc(len + 1);
	assert_non_null(g->lines[g->n]);
	memcpy(g->lines[g->n], line, len);
	g->lines[g->n][len] = '\0';
	g->lens[g->n] = len;
	g->n++;
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->lines[i]);
	free(g->lines);
	free(g->lens);
	memset(g, 0, sizeof(*g));
}

static void feed(struct line_reader *lr, const char *s, size_t n, struct got *g)
{
	assert_int_equal(line_reader_feed(lr, s, n, collect, g), 0);
}

static void feed_str(struct line_reader *lr, const char *s, struct got *g)
{
	feed(lr, s, strlen(s), g);
}

/* ---- frame_check_task ---- */

static void test_check_lines(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(frame_check_task(TASKS_LINES, "42", 2, err, sizeof(err)), 0);
	assert_int_equal(frame_check_task(TASKS_LINES, "", 0, err, sizeof(err)), 0);
	/* anything but a newline or a NUL: JSON-looking, spaces, CR, UTF-8 */
	const char *ok[] = {"{not json", "  a b  ", "x\ry", "h\xc3\xa9llo", "\t"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(
		    frame_check_task(TASKS_LINES, ok[i], strlen(ok[i]), err, sizeof(err)), 0);

	err[0] = '\0';
	assert_int_equal(frame_check_task(TASKS_LINES, "a\nb", 3, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "newline"));
	err[0] = '\0';
	assert_int_equal(frame_check_task(TASKS_LINES, "7\n", 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "newline"));
	err[0] = '\0';
	assert_int_equal(frame_check_task(TASKS_LINES, "a\0b", 3, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
	/* the length is what counts, not a NUL terminator */
	assert_int_equal(frame_check_task(TASKS_LINES, "12\n34", 2, err, sizeof(err)), 0);
}

static void test_check_json(void **state)
{
	(void)state;
	char err[256];
	const char *ok[] = {"5",    "-1.5e3",           "\"text\"",      "null",
	                    "true", "[1,2,{\"a\":[]}]", "{\"k\":\"v\"}", " {\"k\" : 1} "};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		err[0] = '\0';
		if (frame_check_task(TASKS_JSON, ok[i], strlen(ok[i]), err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", ok[i], err);
	}
	const char *bad[] = {"", "abc", "{", "[1,]", "{\"a\":1}x", "'single'", "{\"a\":1,\"a\":2}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (frame_check_task(TASKS_JSON, bad[i], strlen(bad[i]), err, sizeof(err)) != -1)
			fail_msg("%s accepted as a json task", bad[i]);
		assert_non_null(strstr(err, "JSON"));
	}
	/* valid JSON over several lines is refused: one task, one line */
	err[0] = '\0';
	const char *multi = "{\"a\":\n1}";
	assert_int_equal(frame_check_task(TASKS_JSON, multi, strlen(multi), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "one line"));
}

static void test_check_err_truncated(void **state)
{
	(void)state;
	char err[8];
	memset(err, 'x', sizeof(err));
	assert_int_equal(frame_check_task(TASKS_LINES, "a\nb", 3, err, sizeof(err)), -1);
	assert_int_equal(err[7], '\0'); /* a short buffer still gets a C string */
}

/* ---- frame_task ---- */

static void test_frame_lines(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	assert_int_equal(frame_task(TASKS_LINES, 1, "12", 2, &buf, &len, &cap), 0);
	assert_int_equal(frame_task(TASKS_LINES, 2, "", 0, &buf, &len, &cap), 0);
	assert_int_equal(frame_task(TASKS_LINES, 3, "a b", 3, &buf, &len, &cap), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(buf, "12\n\na b\n", 8);
	assert_true(cap >= len);
	free(buf);
}

static void test_frame_json(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	assert_int_equal(frame_task(TASKS_JSON, 7, "5", 1, &buf, &len, &cap), 0);
	assert_int_equal(frame_task(TASKS_JSON, INT64_MAX, "{\"a\":[1]}", 9, &buf, &len, &cap), 0);
	const char *want = "{\"id\":\"7\",\"data\":5}\n"
	                   "{\"id\":\"9223372036854775807\",\"data\":{\"a\":[1]}}\n";
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	free(buf);
}

/* Thousands of tasks appended to one buffer (one write's worth), with the
 * buffer growing many times: nothing lost, nothing reordered. */
static void test_frame_many(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	char payload[32];
	for (int i = 1; i <= 20000; i++) {
		int n = snprintf(payload, sizeof(payload), "%d", i);
		assert_int_equal(frame_task(TASKS_LINES, i, payload, (size_t)n, &buf, &len, &cap),
		                 0);
	}
	char *p = buf;
	for (int i = 1; i <= 20000; i++) {
		char *nl = memchr(p, '\n', len - (size_t)(p - buf));
		assert_non_null(nl);
		*nl = '\0';
		assert_int_equal(atoi(p), i);
		p = nl + 1;
	}
	assert_ptr_equal(p, buf + len);
	free(buf);
}

/* A json task frame round-trips through a worker's answer parser view:
 * the id drover writes is the id it reads back. */
static void test_frame_json_id_roundtrip(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	assert_int_equal(frame_task(TASKS_JSON, 123456789012LL, "1", 1, &buf, &len, &cap), 0);
	char answer[128];
	/* a worker echoes the id string it got */
	const char *id = strstr(buf, "\"id\":\"") + 6;
	const char *end = strchr(id, '"');
	int n =
	    snprintf(answer, sizeof(answer), "{\"id\":\"%.*s\",\"result\":1}", (int)(end - id), id);
	struct json_answer a;
	char err[256];
	assert_int_equal(frame_parse_answer(answer, (size_t)n, &a, err, sizeof(err)), 0);
	assert_int_equal(a.id, 123456789012LL);
	free(a.result);
	free(a.error);
	free(buf);
}

/* ---- line_reader ---- */

static void test_reader_whole_lines(void **state)
{
	(void)state;
	struct line_reader lr = {0};
	struct got g = {0};
	feed_str(&lr, "1\n4\n9\n", &g);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.lines[0], "1");
	assert_string_equal(g.lines[1], "4");
	assert_string_equal(g.lines[2], "9");
	line_reader_finish(&lr, collect, &g);
	assert_int_equal(g.n, 3); /* nothing was left over */
	got_free(&g);
	line_reader_free(&lr);
}

static void test_reader_partial(void **state)
{
	(void)state;
	struct line_reader lr = {0};
	struct got g = {0};
	feed_str(&lr, "12", &g);
	assert_int_equal(g.n, 0);
	feed_str(&lr, "34", &g);
	assert_int_equal(g.n, 0);
	feed_str(&lr, "5\n6", &g);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.lines[0], "12345");
	feed_str(&lr, "\n", &g);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.lines[1], "6");
	/* a line split exactly at its newline */
	feed_str(&lr, "78", &g);
	feed_str(&lr, "\n", &g);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.lines[2], "78");
	got_free(&g);
	line_reader_free(&lr);
}

/* The same text fed one byte at a time, and in every 2-way split, gives the
 * same lines as fed at once. */
static void test_reader_any_split(void **state)
{
	(void)state;
	const char *text = "alpha\n\nb\r\n{\"id\":\"1\",\"result\":2}\nlast";
	size_t n = strlen(text);
	struct got whole = {0};
	struct line_reader lr = {0};
	feed(&lr, text, n, &whole);
	line_reader_finish(&lr, collect, &whole);
	line_reader_free(&lr);
	assert_int_equal(whole.n, 5);
	assert_string_equal(whole.lines[1], "");
	assert_string_equal(whole.lines[2], "b\r"); /* CR is data: the worker's to send */
	assert_string_equal(whole.lines[4], "last");

	struct got bytes = {0};
	for (size_t i = 0; i < n; i++)
		feed(&lr, text + i, 1, &bytes);
	line_reader_finish(&lr, collect, &bytes);
	line_reader_free(&lr);
	assert_int_equal(bytes.n, whole.n);
	for (size_t i = 0; i < whole.n; i++)
		assert_string_equal(bytes.lines[i], whole.lines[i]);
	got_free(&bytes);

	for (size_t cut = 0; cut <= n; cut++) {
		struct got two = {0};
		feed(&lr, text, cut, &two);
		feed(&lr, text + cut, n - cut, &two);
		line_reader_finish(&lr, collect, &two);
		line_reader_free(&lr);
		assert_int_equal(two.n, whole.n);
		for (size_t i = 0; i < whole.n; i++)
			assert_string_equal(two.lines[i], whole.lines[i]);
		got_free(&two);
	}
	got_free(&whole);
}

/* Many results in one read: every one is handed out, in order. */
static void test_reader_many_in_one_read(void **state)
{
	(void)state;
	enum { N = 100000 };
	size_t cap = (size_t)N * 24, len = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	for (long long i = 1; i <= N; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%lld\n", i * i);
	struct line_reader lr = {0};
	struct got g = {0};
	/* a partial line before and after the burst */
	feed_str(&lr, "99", &g);
	feed_str(&lr, "9\n", &g);
	feed(&lr, buf, len, &g);
	feed_str(&lr, "tail", &g);
	assert_int_equal(g.n, N + 1);
	assert_string_equal(g.lines[0], "999");
	for (long long i = 1; i <= N; i++) {
		char want[32];
		snprintf(want, sizeof(want), "%lld", i * i);
		if (strcmp(g.lines[i], want))
			fail_msg("line %lld: %s, expected %s", i, g.lines[i], want);
	}
	line_reader_finish(&lr, collect, &g);
	assert_int_equal(g.n, N + 2);
	assert_string_equal(g.lines[N + 1], "tail");
	got_free(&g);
	line_reader_free(&lr);
	free(buf);
}

static void test_reader_finish(void **state)
{
	(void)state;
	struct line_reader lr = {0};
	struct got g = {0};
	line_reader_finish(&lr, collect, &g); /* nothing at all */
	assert_int_equal(g.n, 0);
	feed_str(&lr, "no newline", &g);
	assert_int_equal(g.n, 0);
	line_reader_finish(&lr, collect, &g);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.lines[0], "no newline");
	line_reader_finish(&lr, collect, &g); /* it was handed out once */
	assert_int_equal(g.n, 1);
	/* the reader is usable again after finish (a restarted worker) */
	feed_str(&lr, "again\n", &g);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.lines[1], "again");
	got_free(&g);
	line_reader_free(&lr);
	/* free leaves a reader that works from scratch */
	feed_str(&lr, "x\n", &g);
	assert_int_equal(g.n, 1);
	got_free(&g);
	line_reader_free(&lr);
}

/* A line of exactly FRAME_LINE_MAX bytes is kept; one byte more is an
 * overflow, reported once, and the reader picks up at the next line. */
static void test_reader_limit_exact(void **state)
{
	(void)state;
	size_t n = FRAME_LINE_MAX;
	char *big = malloc(n + 2);
	assert_non_null(big);
	memset(big, 'a', n + 1);
	big[n] = '\n';
	struct line_reader lr = {0};
	struct got g = {0};
	feed(&lr, big, n + 1, &g); /* in one read */
	assert_int_equal(g.overflows, 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.lens[0], n);
	got_free(&g);

	/* in pieces: 1 MiB at a time, then the newline */
	for (size_t off = 0; off < n; off += 1 << 20)
		feed(&lr, big + off, 1 << 20, &g);
	assert_int_equal(g.n, 0);
	feed_str(&lr, "\n", &g);
	assert_int_equal(g.overflows, 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.lens[0], n);
	got_free(&g);

	/* one byte over, in one read */
	big[n] = 'a';
	big[n + 1] = '\n';
	feed(&lr, big, n + 2, &g);
	assert_int_equal(g.overflows, 1);
	assert_int_equal(g.n, 0);
	feed_str(&lr, "next\n", &g);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.lines[0], "next");
	got_free(&g);
	line_reader_free(&lr);
	free(big);
}

/* A huge line arriving over many reads: one overflow, its tail is skipped
 * (including a tail that holds no newline for many reads), and the lines
 * around it come through intact. */
static void test_reader_huge_in_pieces(void **state)
{
	(void)state;
	size_t chunk = 1 << 20;
	char *junk = malloc(chunk);
	assert_non_null(junk);
	memset(junk, 'z', chunk);
	struct line_reader lr = {0};
	struct got g = {0};
	feed_str(&lr, "before\nhuge:", &g);
	for (int i = 0; i < 40; i++) /* 40 MiB: well past the limit */
		feed(&lr, junk, chunk, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.overflows, 1); /* reported once, not once per read */
	assert_int_equal(g.overflow_at[0], 1);
	/* memory stays bounded while skipping */
	assert_true(lr.cap <= 2 * (size_t)FRAME_LINE_MAX + 4096);
	feed_str(&lr, "zzz\nafter\n", &g);
	assert_int_equal(g.overflows, 1);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.lines[0], "before");
	assert_string_equal(g.lines[1], "after");
	got_free(&g);

	/* two huge lines in a row: two overflows */
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < 17; i++)
			feed(&lr, junk, chunk, &g);
		feed_str(&lr, "\n", &g);
	}
	assert_int_equal(g.overflows, 2);
	assert_int_equal(g.n, 0);
	/* an overflowing last line without a newline: nothing at finish */
	for (int i = 0; i < 17; i++)
		feed(&lr, junk, chunk, &g);
	assert_int_equal(g.overflows, 3);
	line_reader_finish(&lr, collect, &g);
	assert_int_equal(g.n, 0);
	/* and the reader is clean afterwards */
	feed_str(&lr, "ok\n", &g);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.lines[0], "ok");
	got_free(&g);
	line_reader_free(&lr);
	free(junk);
}

/* A huge line inside one big read, between normal lines. */
static void test_reader_huge_in_one_read(void **state)
{
	(void)state;
	size_t huge = FRAME_LINE_MAX + 100;
	size_t len = 0;
	char *buf = malloc(huge + 64);
	assert_non_null(buf);
	len += (size_t)sprintf(buf, "a\n");
	memset(buf + len, 'h', huge);
	len += huge;
	len += (size_t)sprintf(buf + len, "\nb\n");
	struct line_reader lr = {0};
	struct got g = {0};
	feed(&lr, buf, len, &g);
	assert_int_equal(g.overflows, 1);
	assert_int_equal(g.overflow_at[0], 1);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.lines[0], "a");
	assert_string_equal(g.lines[1], "b");
	got_free(&g);
	line_reader_free(&lr);
	free(buf);
}

/* ---- frame_parse_answer ---- */

static void parse_ok(const char *line, int64_t id, const char *result, const char *error)
{
	struct json_answer a;
	char err[256] = "";
	if (frame_parse_answer(line, strlen(line), &a, err, sizeof(err)) != 0)
		fail_msg("%s: refused: %s", line, err);
	assert_int_equal(a.id, id);
	if (result) {
		assert_non_null(a.result);
		assert_string_equal(a.result, result);
		assert_null(a.error);
	} else {
		assert_null(a.result);
		assert_non_null(a.error);
		assert_string_equal(a.error, error);
	}
	free(a.result);
	free(a.error);
}

static void parse_bad(const char *line, const char *why)
{
	struct json_answer a;
	char err[256] = "";
	if (frame_parse_answer(line, strlen(line), &a, err, sizeof(err)) != -1)
		fail_msg("%s: accepted", line);
	assert_null(a.result);
	assert_null(a.error);
	if (!strstr(err, why))
		fail_msg("%s: error '%s' does not say '%s'", line, err, why);
}

static void test_answer_ok(void **state)
{
	(void)state;
	parse_ok("{\"id\":\"1\",\"result\":25}", 1, "25", NULL);
	parse_ok("{\"result\":\"x\",\"id\":\"42\"}", 42, "\"x\"", NULL);
	parse_ok("{\"id\":7,\"result\":{\"a\": [1, 2]}}", 7, "{\"a\":[1,2]}", NULL);
	parse_ok("{\"id\":\"3\",\"result\":null}", 3, "null", NULL);
	parse_ok("{\"id\":\"3\",\"result\":false}", 3, "false", NULL);
	parse_ok("  {\"id\":\"9\", \"error\":\"boom\"}  ", 9, NULL, "boom");
	parse_ok("{\"id\":\"9\",\"error\":{\"code\":5}}", 9, NULL, "{\"code\":5}");
	parse_ok("{\"id\":\"9223372036854775807\",\"result\":1}", INT64_MAX, "1", NULL);
	parse_ok("{\"id\":\"5\",\"result\":1,\"extra\":\"ignored\"}", 5, "1", NULL);
	/* the length counts, not a NUL: trailing bytes after len are ignored */
	struct json_answer a;
	char err[256];
	const char *line = "{\"id\":\"2\",\"result\":4}GARBAGE";
	size_t len = strlen(line) - strlen("GARBAGE");
	assert_int_equal(frame_parse_answer(line, len, &a, err, sizeof(err)), 0);
	assert_string_equal(a.result, "4");
	free(a.result);
}

static void test_answer_errors(void **state)
{
	(void)state;
	parse_bad("", "not JSON");
	parse_bad("this line is not JSON", "not JSON");
	parse_bad("{\"id\":\"1\",\"result\":", "not JSON");
	parse_bad("{\"id\":\"1\",\"result\":1}{}", "not JSON");
	parse_bad("[1,2]", "not a JSON object");
	parse_bad("\"text\"", "not");
	parse_bad("{\"result\":1}", "id");
	parse_bad("{\"id\":\"\",\"result\":1}", "id");
	parse_bad("{\"id\":\"0\",\"result\":1}", "id");
	parse_bad("{\"id\":\"-4\",\"result\":1}", "id");
	parse_bad("{\"id\":\"12x\",\"result\":1}", "id");
	parse_bad("{\"id\":\"abc\",\"result\":1}", "id");
	parse_bad("{\"id\":\"99999999999999999999\",\"result\":1}", "id");
	parse_bad("{\"id\":0,\"result\":1}", "id");
	parse_bad("{\"id\":1.5,\"result\":1}", "id");
	parse_bad("{\"id\":null,\"result\":1}", "id");
	parse_bad("{\"id\":\"1\"}", "exactly one");
	parse_bad("{\"id\":\"1\",\"result\":1,\"error\":\"e\"}", "exactly one");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_lines),
	    cmocka_unit_test(test_check_json),
	    cmocka_unit_test(test_check_err_truncated),
	    cmocka_unit_test(test_frame_lines),
	    cmocka_unit_test(test_frame_json),
	    cmocka_unit_test(test_frame_many),
	    cmocka_unit_test(test_frame_json_id_roundtrip),
	    cmocka_unit_test(test_reader_whole_lines),
	    cmocka_unit_test(test_reader_partial),
	    cmocka_unit_test(test_reader_any_split),
	    cmocka_unit_test(test_reader_many_in_one_read),
	    cmocka_unit_test(test_reader_finish),
	    cmocka_unit_test(test_reader_limit_exact),
	    cmocka_unit_test(test_reader_huge_in_pieces),
	    cmocka_unit_test(test_reader_huge_in_one_read),
	    cmocka_unit_test(test_answer_ok),
	    cmocka_unit_test(test_answer_errors),
	};
	return cmocka_run_group_tests_name("framing", tests, NULL, NULL);
}
