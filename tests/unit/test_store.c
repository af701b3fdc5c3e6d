/* The task store: every test runs against both backends (one cmocka group
 * each), which is how "same semantics" is checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include "drover/store.h"

static const char *backend; /* "memory" or "sqlite": the group being run */

struct fx {
	char dir[64];
	char path[128];
	bool sync_full;
	struct store *s;
};

static struct store *open_store(struct fx *f)
{
	char err[512] = "";
	struct store *s = store_open(backend, f->path, f->sync_full, err, sizeof(err));
	if (!s)
		fail_msg("store_open(%s, %s): %s", backend, f->path, err);
	return s;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/drover-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/tasks.db", f->dir);
	f->sync_full = true;
	f->s = open_store(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	char p[160];
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static bool is_sqlite(void)
{
	return strcmp(backend, "sqlite") == 0;
}

/* sqlite: close and open the same file (what a restart sees); memory: the
 * store stays as it is (it has nothing to come back from). */
static void reopen(struct fx *f)
{
	if (!is_sqlite())
		return;
	store_close(f->s);
	f->s = open_store(f);
}

static int64_t push(struct store *s, const char *group, const char *payload)
{
	int64_t id = 0;
	if (store_push(s, group, payload, strlen(payload), &id) != 0)
		fail_msg("store_push: %s", store_error(s));
	assert_true(id > 0);
	return id;
}

static void get(struct store *s, int64_t id, struct task *t)
{
	int rc = store_get(s, id, t);
	if (rc != 1)
		fail_msg("store_get(%lld) = %d: %s", (long long)id, rc, store_error(s));
}

static enum task_state state_of(struct store *s, int64_t id)
{
	struct task t;
	get(s, id, &t);
	enum task_state st = t.state;
	task_free(&t);
	return st;
}

static void free_tasks(struct task *t, int n)
{
	for (int i = 0; i < n; i++)
		task_free(&t[i]);
}

/* counts of group: pending running done failed dead cancelled */
static void expect_counts(struct store *s, const char *group, long long p, long long r, long long d,
                          long long fl, long long dead, long long c)
{
	struct store_counts n;
	assert_int_equal(store_counts(s, group, &n), 0);
	long long want[TASK__COUNT] = {p, r, d, fl, dead, c};
	for (int i = 0; i < TASK__COUNT; i++)
		if (n.n[i] != want[i])
			fail_msg("%s %s: %lld, expected %lld", group ? group : "(all)",
			         task_state_name((enum task_state)i), n.n[i], want[i]);
}

static void test_state_names(void **state)
{
	(void)state;
	enum task_state st;
	for (int i = 0; i < TASK__COUNT; i++) {
		assert_int_equal(task_state_parse(task_state_name((enum task_state)i), &st), 0);
		assert_int_equal(st, i);
	}
	assert_string_equal(task_state_name(TASK_PENDING), "pending");
	assert_string_equal(task_state_name(TASK_CANCELLED), "cancelled");
	assert_int_equal(task_state_parse("Pending", &st), -1);
	assert_int_equal(task_state_parse("", &st), -1);
	assert_int_equal(task_state_parse(NULL, &st), -1);
}

static void test_open_errors(void **state)
{
	struct fx *f = *state;
	char err[256] = "";
	assert_null(store_open("redis", NULL, true, err, sizeof(err)));
	assert_non_null(strstr(err, "unknown kind"));
	err[0] = '\0';
	assert_null(store_open("sqlite", NULL, true, err, sizeof(err)));
	assert_non_null(strstr(err, "path"));
	char bad[160];
	snprintf(bad, sizeof(bad), "%s/no/such/dir/t.db", f->dir);
	err[0] = '\0';
	assert_null(store_open("sqlite", bad, true, err, sizeof(err)));
	assert_non_null(strstr(err, "unable to open"));
	/* a file that is not a database */
	snprintf(bad, sizeof(bad), "%s/junk.db", f->dir);
	FILE *fp = fopen(bad, "w");
	assert_non_null(fp);
	fputs("this is not an SQLite database, not even close; padding padding padding", fp);
	fputs("padding padding padding padding padding padding padding padding", fp);
	fclose(fp);
	err[0] = '\0';
	assert_null(store_open("sqlite", bad, true, err, sizeof(err)));
	assert_non_null(strstr(err, "not a database"));
	unlink(bad);
}

static void test_push_take_ack(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t id = push(s, "sq", "3");
	expect_counts(s, "sq", 1, 0, 0, 0, 0, 0);
	struct task_lease t[4];
	assert_int_equal(store_take(s, "sq", "sq_00", 100.0, t, 4), 1);
	assert_int_equal(t[0].id, id);
	assert_string_equal(t[0].payload, "3");
	assert_int_equal(t[0].len, 1);
	assert_int_equal(t[0].attempts, 1);
	assert_true(t[0].lease != 0);
	expect_counts(s, "sq", 0, 1, 0, 0, 0, 0);
	/* what take returned is what the store holds */
	struct task g;
	get(s, id, &g);
	assert_string_equal(g.group, "sq");
	assert_int_equal(g.state, TASK_RUNNING);
	assert_int_equal(g.lease, t[0].lease);
	assert_int_equal(g.attempts, 1);
	assert_string_equal(g.worker, "sq_00");
	assert_true(g.started == 100.0);
	assert_true(g.created > 0);
	assert_null(g.result);
	task_free(&g);

	assert_int_equal(store_ack(s, id, t[0].lease, "9", 1, 101.0), 1);
	get(s, id, &g);
	assert_int_equal(g.state, TASK_DONE);
	assert_string_equal(g.result, "9");
	assert_true(g.finished == 101.0);
	assert_string_equal(g.payload, "3");
	task_free(&g);
	expect_counts(s, "sq", 0, 0, 1, 0, 0, 0);
	assert_int_equal(store_take(s, "sq", "sq_00", 102.0, t, 4), 0);
	assert_int_equal(store_take(s, "nobody", "w", 102.0, t, 4), 0);
}

static void test_binary_and_empty(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t a, b;
	assert_int_equal(store_push(s, "g", "x\0y", 3, &a), 0);
	assert_int_equal(store_push(s, "g", NULL, 0, &b), 0);
	assert_int_equal(store_push(s, "g", NULL, 5, &b), -1);
	assert_non_null(strstr(store_error(s), "payload"));
	assert_int_equal(store_push(s, "", "x", 1, &b), -1);
	assert_int_equal(store_push(s, NULL, "x", 1, &b), -1);
	assert_int_equal(store_push(s, "g", "", 0, &b), 0);
	struct task_lease t[3];
	assert_int_equal(store_take(s, "g", NULL, 1.0, t, 3), 3);
	assert_int_equal(t[0].len, 3);
	assert_memory_equal(t[0].payload, "x\0y", 4);
	assert_int_equal(t[1].len, 0);
	assert_string_equal(t[1].payload, "");
	struct task g;
	get(s, t[0].id, &g);
	assert_null(g.worker);
	task_free(&g);
	/* an empty answer is kept as "", no answer at all as NULL */
	assert_int_equal(store_ack(s, t[1].id, t[1].lease, "", 0, 2.0), 1);
	assert_int_equal(store_ack(s, t[2].id, t[2].lease, NULL, 0, 2.0), 1);
	get(s, t[1].id, &g);
	assert_string_equal(g.result, "");
	task_free(&g);
	get(s, t[2].id, &g);
	assert_null(g.result);
	task_free(&g);
	assert_int_equal(store_take(s, "g", "w", 1.0, t, -1), -1);
	assert_int_equal(store_take(s, "g", "w", 1.0, NULL, 0), 0);
}

static void test_take_order_and_max(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t a[10], b[3];
	for (int i = 0; i < 10; i++) {
		char p[8];
		snprintf(p, sizeof(p), "a%d", i);
		a[i] = push(s, "a", p);
		if (i < 3)
			b[i] = push(s, "b", "b");
	}
	struct task_lease t[10];
	assert_int_equal(store_take(s, "a", "a_00", 1.0, t, 3), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(t[i].id, a[i]);
		assert_true(t[i].lease != 0);
		if (i > 0)
			assert_true(t[i].lease > t[i - 1].lease);
	}
	uint64_t last = t[2].lease;
	assert_int_equal(store_take(s, "a", "a_01", 1.0, t, 10), 7);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(t[i].id, a[i + 3]);
		assert_true(t[i].lease > last);
		last = t[i].lease;
	}
	assert_int_equal(store_take(s, "a", "a_01", 1.0, t, 10), 0);
	expect_counts(s, "b", 3, 0, 0, 0, 0, 0);
	assert_int_equal(store_take(s, "b", "b_00", 1.0, t, 10), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(t[i].id, b[i]);
		assert_true(t[i].lease > last);
		last = t[i].lease;
	}
	expect_counts(s, NULL, 0, 13, 0, 0, 0, 0);
}

/* a late result from an old lease changes nothing: the result is recorded once */
static void test_stale_lease(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t id = push(s, "g", "p");
	struct task_lease t;
	assert_int_equal(store_take(s, "g", "w1", 1.0, &t, 1), 1);
	uint64_t first = t.lease;
	assert_int_equal(store_ack(s, id, first + 1, "wrong", 5, 2.0), 0);
	assert_int_equal(store_ack(s, 999, first, "none", 4, 2.0), 0);
	assert_int_equal(store_ack(s, id, 0, "zero", 4, 2.0), 0);
	assert_int_equal(state_of(s, id), TASK_RUNNING);
	/* worker died: requeue, another worker takes it under a new lease */
	assert_int_equal(store_requeue(s, id, first, true), 1);
	assert_int_equal(store_requeue(s, id, first, true), 0);
	assert_int_equal(store_take(s, "g", "w2", 3.0, &t, 1), 1);
	uint64_t second = t.lease;
	assert_true(second > first);
	/* the first worker answers late: a duplicate */
	assert_int_equal(store_ack(s, id, first, "late", 4, 4.0), 0);
	assert_int_equal(store_fail(s, id, first, "late", 3, 0, 4.0), 0);
	assert_int_equal(store_requeue(s, id, first, false), 0);
	assert_int_equal(store_ack(s, id, second, "right", 5, 5.0), 1);
	/* and the second answers twice */
	assert_int_equal(store_ack(s, id, second, "again", 5, 6.0), 0);
	assert_int_equal(store_fail(s, id, second, "again", 3, 0, 6.0), 0);
	struct task g;
	get(s, id, &g);
	assert_int_equal(g.state, TASK_DONE);
	assert_string_equal(g.result, "right");
	assert_true(g.finished == 5.0);
	assert_int_equal(g.lease, second);
	assert_string_equal(g.worker, "w2");
	task_free(&g);
	expect_counts(s, "g", 0, 0, 1, 0, 0, 0);
}

static void test_fail_then_dead(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t id = push(s, "g", "p");
	struct task_lease t;
	double now = 10.0;
	for (int attempt = 1; attempt <= 3; attempt++) {
		assert_int_equal(store_take(s, "g", "w", now, &t, 1), 1);
		assert_int_equal(t.id, id);
		assert_int_equal(t.attempts, attempt);
		char why[32];
		snprintf(why, sizeof(why), "exit %d", attempt);
		assert_int_equal(store_fail(s, id, t.lease, why, 3, now + 5, now), 1);
		if (attempt == 3)
			break;
		struct task g;
		get(s, id, &g);
		assert_int_equal(g.state, TASK_FAILED);
		assert_string_equal(g.error, why);
		assert_true(g.not_before == now + 5);
		assert_true(g.finished == 0);
		task_free(&g);
		expect_counts(s, "g", 0, 0, 0, 1, 0, 0);
		/* not before its time */
		assert_int_equal(store_take(s, "g", "w", now + 4.9, &t, 1), 0);
		now += 5;
	}
	struct task g;
	get(s, id, &g);
	assert_int_equal(g.state, TASK_DEAD);
	assert_string_equal(g.error, "exit 3");
	assert_int_equal(g.attempts, 3);
	assert_true(g.finished == now);
	task_free(&g);
	expect_counts(s, "g", 0, 0, 0, 0, 1, 0);
	assert_int_equal(store_take(s, "g", "w", now + 1000, &t, 1), 0);
	/* by hand: back to pending as new */
	assert_int_equal(store_retry(s, "g", id), 1);
	get(s, id, &g);
	assert_int_equal(g.state, TASK_PENDING);
	assert_int_equal(g.attempts, 0);
	assert_null(g.error);
	assert_null(g.result);
	assert_true(g.finished == 0);
	task_free(&g);
	assert_int_equal(store_take(s, "g", "w", now, &t, 1), 1);
	assert_int_equal(t.attempts, 1);
}

/* a retry waiting for later does not hold up younger tasks, and takes its
 * place by id once its time has come */
static void test_failed_does_not_block(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t a = push(s, "g", "a");
	int64_t b = push(s, "g", "b");
	int64_t c = push(s, "g", "c");
	struct task_lease t[3];
	assert_int_equal(store_take(s, "g", "w", 0.0, t, 1), 1);
	assert_int_equal(t[0].id, a);
	assert_int_equal(store_fail(s, a, t[0].lease, "boom", 5, 100.0, 0.0), 1);
	assert_int_equal(store_take(s, "g", "w", 50.0, t, 1), 1);
	assert_int_equal(t[0].id, b);
	assert_int_equal(store_take(s, "g", "w", 100.0, t, 3), 2);
	assert_int_equal(t[0].id, a);
	assert_int_equal(t[0].attempts, 2);
	struct task g;
	get(s, a, &g);
	assert_string_equal(g.error, "boom"); /* the last error stays visible */
	task_free(&g);
	assert_int_equal(t[1].id, c);
	expect_counts(s, "g", 0, 3, 0, 0, 0, 0);
}

/* retries compete by id with pending tasks, and the clock may step back */
static void test_due_order_and_clock(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t id[6];
	for (int i = 0; i < 6; i++)
		id[i] = push(s, "g", "x");
	struct task_lease t[6];
	assert_int_equal(store_take(s, "g", "w", 0.0, t, 4), 4);
	/* 1 and 3 fail, 0 and 2 come back as pending */
	assert_int_equal(store_fail(s, id[1], t[1].lease, "e", 9, 10.0, 0.0), 1);
	assert_int_equal(store_fail(s, id[3], t[3].lease, "e", 9, 20.0, 0.0), 1);
	assert_int_equal(store_requeue(s, id[2], t[2].lease, false), 1);
	assert_int_equal(store_requeue(s, id[0], t[0].lease, false), 1);
	/* at 15 only 1 is due: 0, 1, 2, 4, 5 in id order */
	assert_int_equal(store_take(s, "g", "w", 15.0, t, 2), 2);
	assert_int_equal(t[0].id, id[0]);
	assert_int_equal(t[1].id, id[1]);
	/* 3 gets promoted at 25 but 2 comes first */
	assert_int_equal(store_take(s, "g", "w", 25.0, t, 1), 1);
	assert_int_equal(t[0].id, id[2]);
	/* the clock steps back to 19: 3 is not due any more */
	assert_int_equal(store_take(s, "g", "w", 19.0, t, 1), 1);
	assert_int_equal(t[0].id, id[4]);
	assert_int_equal(store_take(s, "g", "w", 19.5, t, 6), 1);
	assert_int_equal(t[0].id, id[5]);
	assert_int_equal(store_take(s, "g", "w", 19.9, t, 6), 0);
	assert_int_equal(store_take(s, "g", "w", 20.0, t, 6), 1);
	assert_int_equal(t[0].id, id[3]);
	expect_counts(s, "g", 0, 6, 0, 0, 0, 0);
}

/* a due retry cancelled, retried and failed again is taken once */
static void test_due_requeued_twice(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t x = push(s, "g", "x");
	int64_t a = push(s, "g", "a");
	int64_t y = push(s, "g", "y");
	struct task_lease t[5];
	assert_int_equal(store_take(s, "g", "w", 0.0, t, 3), 3);
	assert_int_equal(store_requeue(s, x, t[0].lease, false), 1);
	assert_int_equal(store_fail(s, a, t[1].lease, "e", 9, 10.0, 0.0), 1);
	assert_int_equal(store_take(s, "g", "w", 20.0, t, 1), 1); /* a is due, x is lower */
	assert_int_equal(t[0].id, x);
	assert_int_equal(store_cancel(s, NULL, a, 20.0), 1);
	assert_int_equal(store_retry(s, NULL, a), 1);
	assert_int_equal(store_take(s, "g", "w", 20.0, t, 1), 1);
	assert_int_equal(t[0].id, a);
	assert_int_equal(store_fail(s, a, t[0].lease, "e", 9, 5.0, 20.0), 1);
	assert_int_equal(store_take(s, "g", "w", 20.0, t, 5), 1);
	assert_int_equal(t[0].id, a);
	assert_int_equal(store_take(s, "g", "w", 30.0, t, 5), 0);
	expect_counts(s, "g", 0, 3, 0, 0, 0, 0);
	(void)y;
}

static void test_requeue(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t id[3];
	for (int i = 0; i < 3; i++)
		id[i] = push(s, "g", "x");
	struct task_lease t[3];
	assert_int_equal(store_take(s, "g", "w", 1.0, t, 2), 2);
	/* not to blame: the attempt is refunded, and it goes back to the head */
	assert_int_equal(store_requeue(s, id[0], t[0].lease, true), 1);
	assert_int_equal(state_of(s, id[0]), TASK_PENDING);
	assert_int_equal(store_take(s, "g", "w", 2.0, t, 1), 1);
	assert_int_equal(t[0].id, id[0]);
	assert_int_equal(t[0].attempts, 1);
	/* to blame: the attempt stays charged */
	assert_int_equal(store_requeue(s, id[0], t[0].lease, false), 1);
	assert_int_equal(store_take(s, "g", "w", 3.0, t, 3), 2);
	assert_int_equal(t[0].id, id[0]);
	assert_int_equal(t[0].attempts, 2);
	assert_int_equal(t[1].id, id[2]);
	expect_counts(s, "g", 0, 3, 0, 0, 0, 0);
}

/* a crash with tasks in flight: after recover they are pending again, with
 * their attempts still charged (persisted before dispatch) */
static void test_recover_after_crash(void **state)
{
	struct fx *f = *state;
	int64_t id[3];
	for (int i = 0; i < 3; i++)
		id[i] = push(f->s, "g", "x");
	struct task_lease t[3];
	assert_int_equal(store_take(f->s, "g", "w", 1.0, t, 2), 2);
	uint64_t old = t[1].lease;
	reopen(f); /* closed without acking */
	expect_counts(f->s, "g", 1, 2, 0, 0, 0, 0);
	assert_int_equal(store_recover(f->s), 2);
	assert_int_equal(store_recover(f->s), 0);
	expect_counts(f->s, "g", 3, 0, 0, 0, 0, 0);
	struct task g;
	get(f->s, id[1], &g);
	assert_int_equal(g.state, TASK_PENDING);
	assert_int_equal(g.attempts, 1);
	task_free(&g);
	assert_int_equal(store_take(f->s, "g", "w", 2.0, t, 3), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(t[i].id, id[i]);
		assert_int_equal(t[i].attempts, i < 2 ? 2 : 1);
		assert_true(t[i].lease > old); /* leases stay unique across restarts */
	}
	assert_int_equal(store_ack(f->s, id[1], old, "stale", 5, 3.0), 0);
}

static void test_counts(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	for (int i = 0; i < 6; i++)
		push(s, "a", "x");
	push(s, "b", "y");
	struct task_lease t[6];
	assert_int_equal(store_take(s, "a", "w", 1.0, t, 5), 5);
	assert_int_equal(store_ack(s, t[0].id, t[0].lease, "r", 1, 2.0), 1);
	assert_int_equal(store_fail(s, t[1].id, t[1].lease, "e", 5, 99.0, 2.0), 1);
	assert_int_equal(store_fail(s, t[2].id, t[2].lease, "e", 1, 99.0, 2.0), 1);
	assert_int_equal(store_cancel(s, "a", t[3].id, 2.0), 1);
	expect_counts(s, "a", 1, 1, 1, 1, 1, 1);
	expect_counts(s, "b", 1, 0, 0, 0, 0, 0);
	expect_counts(s, NULL, 2, 1, 1, 1, 1, 1);
	expect_counts(s, "nobody", 0, 0, 0, 0, 0, 0);
	reopen(f);
	expect_counts(f->s, "a", 1, 1, 1, 1, 1, 1);
	expect_counts(f->s, NULL, 2, 1, 1, 1, 1, 1);
}

static void test_list(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t a[20];
	int na = 0;
	for (int i = 0; i < 30; i++) {
		if (i % 3 == 2)
			push(s, "b", "b");
		else
			a[na++] = push(s, "a", "a");
	}
	struct task_lease l[4];
	assert_int_equal(store_take(s, "a", "w", 1.0, l, 4), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(store_ack(s, l[i].id, l[i].lease, "ok", 2, 2.0), 1);
	struct task t[20];
	/* group a, any state, pages of 8 */
	int64_t after = 0;
	int seen = 0, n;
	while ((n = store_list(s, "a", -1, after, t, 8)) > 0) {
		for (int i = 0; i < n; i++) {
			assert_int_equal(t[i].id, a[seen + i]);
			assert_string_equal(t[i].group, "a");
			assert_int_equal(t[i].state, seen + i < 4 ? TASK_DONE : TASK_PENDING);
		}
		seen += n;
		after = t[n - 1].id;
		free_tasks(t, n);
	}
	assert_int_equal(n, 0);
	assert_int_equal(seen, 20);
	/* state filter */
	assert_int_equal(store_list(s, "a", TASK_DONE, 0, t, 20), 4);
	assert_string_equal(t[3].result, "ok");
	free_tasks(t, 4);
	assert_int_equal(store_list(s, "a", TASK_PENDING, a[10], t, 20), 9);
	assert_int_equal(t[0].id, a[11]);
	free_tasks(t, 9);
	assert_int_equal(store_list(s, "b", TASK_DONE, 0, t, 20), 0);
	/* every group */
	assert_int_equal(store_list(s, NULL, -1, 0, t, 20), 20);
	for (int i = 0; i < 20; i++)
		assert_int_equal(t[i].id, i + 1);
	free_tasks(t, 20);
	assert_int_equal(store_list(s, NULL, TASK_PENDING, 25, t, 20), 5);
	free_tasks(t, 5);
	assert_int_equal(store_list(s, NULL, -1, 30, t, 20), 0);
	assert_int_equal(store_list(s, "nobody", -1, 0, t, 20), 0);
	assert_int_equal(store_list(s, NULL, TASK__COUNT, 0, t, 20), -1);
	assert_int_equal(store_list(s, NULL, -1, 0, t, 0), 0);
}

/* every (group, state) filter, paged 3 at a time, gives exactly what
 * filtering the whole list by hand gives: each backend finds some states
 * through indexes or maps and others by walking, and all must agree */
static void test_list_every_filter(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	static const char *const groups[] = {"a", "b", "c"};
	for (int round = 0; round < 4; round++)
		for (int gi = 0; gi < 3; gi++) {
			struct task_lease t[6];
			for (int i = 0; i < 6; i++)
				push(s, groups[gi], "x");
			/* of the 6 (and what earlier rounds left): done, failed,
			 * dead, cancelled, running; the rest stays pending */
			int n = store_take(s, groups[gi], "w", 1.0, t, 5);
			assert_int_equal(n, 5);
			assert_int_equal(store_ack(s, t[0].id, t[0].lease, "r", 1, 2.0), 1);
			assert_int_equal(store_fail(s, t[1].id, t[1].lease, "e", 9, 1e9, 2.0), 1);
			assert_int_equal(store_fail(s, t[2].id, t[2].lease, "e", 1, 0, 2.0), 1);
			assert_int_equal(store_cancel(s, NULL, t[3].id, 2.0), 1);
		}
	enum { ALL = 4 * 3 * 6 };
	struct task all[ALL];
	assert_int_equal(store_list(s, NULL, -1, 0, all, ALL), ALL);
	for (int g = -1; g < 3; g++)
		for (int st = -1; st < TASK__COUNT; st++) {
			const char *group = g < 0 ? NULL : groups[g];
			int64_t want[ALL];
			int nwant = 0;
			for (int i = 0; i < ALL; i++)
				if ((!group || strcmp(all[i].group, group) == 0) &&
				    (st < 0 || all[i].state == (enum task_state)st))
					want[nwant++] = all[i].id;
			int seen = 0, n;
			int64_t after = 0;
			struct task page[3];
			while ((n = store_list(s, group, st, after, page, 3)) > 0) {
				for (int i = 0; i < n; i++) {
					if (seen + i >= nwant || page[i].id != want[seen + i])
						fail_msg("group %s state %d: got id %lld at %d",
						         group ? group : "*", st,
						         (long long)page[i].id, seen + i);
					if (st >= 0)
						assert_int_equal(page[i].state, st);
				}
				seen += n;
				after = page[n - 1].id;
				free_tasks(page, n);
			}
			assert_int_equal(n, 0);
			if (seen != nwant)
				fail_msg("group %s state %d: %d tasks listed, expected %d",
				         group ? group : "*", st, seen, nwant);
		}
	free_tasks(all, ALL);
}

static void test_cancel_retry(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t id[6];
	for (int i = 0; i < 6; i++)
		id[i] = push(s, "a", "x");
	int64_t b = push(s, "b", "y");
	struct task_lease t[4];
	assert_int_equal(store_take(s, "a", "w", 1.0, t, 4), 4);
	/* 0 done, 1 failed, 2 dead, 3 running, 4 and 5 pending */
	assert_int_equal(store_ack(s, id[0], t[0].lease, "r", 1, 2.0), 1);
	assert_int_equal(store_fail(s, id[1], t[1].lease, "e", 5, 50.0, 2.0), 1);
	assert_int_equal(store_fail(s, id[2], t[2].lease, "e", 1, 50.0, 2.0), 1);
	uint64_t running = t[3].lease;

	/* by id */
	assert_int_equal(store_cancel(s, NULL, id[0], 3.0), 0); /* done stays done */
	assert_int_equal(store_cancel(s, NULL, id[2], 3.0), 0); /* dead stays dead */
	assert_int_equal(store_cancel(s, "b", id[4], 3.0), 0);  /* not in b */
	assert_int_equal(store_cancel(s, NULL, 999, 3.0), 0);
	assert_int_equal(store_cancel(s, "a", id[4], 3.0), 1);
	assert_int_equal(store_cancel(s, "a", id[4], 3.0), 0);
	struct task g;
	get(s, id[4], &g);
	assert_int_equal(g.state, TASK_CANCELLED);
	assert_true(g.finished == 3.0);
	task_free(&g);
	/* a running task is cancelled at once; its late result is a duplicate */
	assert_int_equal(store_cancel(s, NULL, id[3], 3.0), 1);
	assert_int_equal(store_ack(s, id[3], running, "late", 4, 4.0), 0);
	assert_int_equal(store_requeue(s, id[3], running, true), 0);
	get(s, id[3], &g);
	assert_int_equal(g.state, TASK_CANCELLED);
	assert_null(g.result);
	task_free(&g);
	expect_counts(s, "a", 1, 0, 1, 1, 1, 2);

	/* by group: pending and failed go; b is left alone */
	assert_int_equal(store_cancel(s, "a", 0, 5.0), 2);
	assert_int_equal(state_of(s, id[1]), TASK_CANCELLED);
	assert_int_equal(state_of(s, b), TASK_PENDING);
	expect_counts(s, "a", 0, 0, 1, 0, 1, 4);
	assert_int_equal(store_take(s, "a", "w", 100.0, t, 4), 0);

	/* retry by id, then by group: dead and cancelled come back as new */
	assert_int_equal(store_retry(s, NULL, id[0]), 0); /* done: no */
	assert_int_equal(store_retry(s, "b", id[2]), 0);  /* not in b */
	assert_int_equal(store_retry(s, "a", id[2]), 1);
	get(s, id[2], &g);
	assert_int_equal(g.state, TASK_PENDING);
	assert_int_equal(g.attempts, 0);
	assert_null(g.error);
	task_free(&g);
	assert_int_equal(store_retry(s, "a", 0), 4);
	assert_int_equal(store_retry(s, "a", 0), 0);
	expect_counts(s, "a", 5, 0, 1, 0, 0, 0);
	assert_int_equal(store_take(s, "a", "w", 100.0, t, 4), 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(t[i].id, id[i + 1]);
		assert_int_equal(t[i].attempts, 1);
	}
	/* the old lease of the cancelled-while-running task is still stale */
	assert_int_equal(store_ack(s, id[3], running, "late", 4, 101.0), 0);

	/* every group */
	assert_int_equal(store_cancel(s, NULL, 0, 200.0), 6);
	expect_counts(s, NULL, 0, 0, 1, 0, 0, 6);
	assert_int_equal(store_retry(s, NULL, 0), 6);
	expect_counts(s, NULL, 6, 0, 1, 0, 0, 0);
	assert_int_equal(store_cancel(s, NULL, -1, 1.0), -1);
	assert_int_equal(store_cancel(s, "nobody", 0, 1.0), 0);
}

static void test_get(void **state)
{
	struct fx *f = *state;
	struct task t;
	assert_int_equal(store_get(f->s, 1, &t), 0);
	assert_int_equal(store_get(f->s, 0, &t), 0);
	assert_int_equal(store_get(f->s, -5, &t), 0);
	int64_t id = push(f->s, "g", "payload");
	get(f->s, id, &t);
	assert_int_equal(t.id, id);
	assert_string_equal(t.group, "g");
	assert_string_equal(t.payload, "payload");
	assert_int_equal(t.state, TASK_PENDING);
	assert_int_equal(t.attempts, 0);
	assert_int_equal(t.lease, 0);
	assert_null(t.worker);
	assert_null(t.result);
	assert_null(t.error);
	assert_true(t.started == 0 && t.finished == 0 && t.not_before == 0);
	task_free(&t);
	assert_int_equal(store_get(f->s, id + 1, &t), 0);
}

static void test_batch_calls(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	assert_int_equal(store_commit(s), 0); /* nothing open: nothing to do */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_begin(s), -1);
	assert_non_null(strstr(store_error(s), "already open"));
	int64_t id = push(s, "g", "x");
	struct task_lease t;
	assert_int_equal(store_take(s, "g", "w", 1.0, &t, 1), 1);
	assert_int_equal(store_ack(s, id, t.lease, "r", 1, 2.0), 1);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(state_of(s, id), TASK_DONE);
}

/* Inside a batch the sqlite store makes pushes and acks many rows a
 * statement; whatever reads the tasks sees them all the same. */
static void test_batch_reads_its_writes(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	enum { N = 70 }; /* two full multi-row statements and a remainder */
	assert_int_equal(store_begin(s), 0);
	for (int i = 1; i <= N; i++) {
		char p[16];
		snprintf(p, sizeof(p), "p%d", i);
		assert_int_equal(push(s, "g", p), i);
	}
	struct task g;
	get(s, N, &g);
	assert_string_equal(g.payload, "p70");
	task_free(&g);
	struct task_lease t[N];
	assert_int_equal(store_take(s, "g", "w", 1.0, t, N), N);
	for (int i = 0; i < N; i++) {
		char r[16];
		int len = snprintf(r, sizeof(r), "r%lld", (long long)t[i].id);
		/* one with no result at all, one with an empty one */
		const char *res = i == 5 ? NULL : i == 6 ? "" : r;
		size_t rlen = i == 5 || i == 6 ? 0 : (size_t)len;
		assert_int_equal(store_ack(s, t[i].id, t[i].lease, res, rlen, 2.0), 1);
	}
	struct task l[N];
	assert_int_equal(store_list(s, "g", TASK_DONE, 0, l, N), N);
	for (int i = 0; i < N; i++) {
		char r[16];
		snprintf(r, sizeof(r), "r%d", i + 1);
		if (i == 5)
			assert_null(l[i].result);
		else
			assert_string_equal(l[i].result, i == 6 ? "" : r);
		task_free(&l[i]);
	}
	assert_int_equal(store_commit(s), 0);
	reopen(f);
	expect_counts(f->s, "g", 0, 0, N, 0, 0, 0);
	get(f->s, 40, &g);
	assert_string_equal(g.result, "r40");
	assert_true(g.finished == 2.0);
	task_free(&g);
	/* a batch rolled back takes its buffered writes with it */
	assert_int_equal(store_begin(f->s), 0);
	int64_t lost = push(f->s, "g", "lost");
	reopen(f);
	assert_int_equal(store_get(f->s, lost, &g), is_sqlite() ? 0 : 1);
	if (!is_sqlite())
		task_free(&g);
}

static void test_batch_100k(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	enum { N = 100000, TAKE = 64 };
	assert_int_equal(store_begin(s), 0);
	for (int i = 0; i < N; i++) {
		char p[16];
		int len = snprintf(p, sizeof(p), "%d", i);
		int64_t id;
		assert_int_equal(store_push(s, i % 2 ? "odd" : "even", p, (size_t)len, &id), 0);
		assert_int_equal(id, i + 1);
	}
	assert_int_equal(store_commit(s), 0);
	struct task_lease t[TAKE];
	int done = 0;
	int64_t last = 0;
	uint64_t lease = 0;
	assert_int_equal(store_begin(s), 0);
	for (int n; (n = store_take(s, "even", "w", 1.0, t, TAKE)) > 0;) {
		for (int i = 0; i < n; i++) {
			assert_true(t[i].id > last);
			assert_true(t[i].lease > lease);
			last = t[i].id;
			lease = t[i].lease;
			assert_int_equal(atoll(t[i].payload), t[i].id - 1);
			assert_int_equal(
			    store_ack(s, t[i].id, t[i].lease, t[i].payload, t[i].len, 2.0), 1);
		}
		done += n;
		if (done % (TAKE * 100) == 0) { /* a commit every 100 loop turns */
			assert_int_equal(store_commit(s), 0);
			assert_int_equal(store_begin(s), 0);
		}
	}
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(done, N / 2);
	expect_counts(s, "even", 0, 0, N / 2, 0, 0, 0);
	expect_counts(s, "odd", N / 2, 0, 0, 0, 0, 0);
	struct task g;
	get(s, 77777, &g); /* pushed as 77776: even */
	assert_int_equal(g.state, TASK_DONE);
	assert_string_equal(g.result, "77776");
	task_free(&g);
	get(s, 77776, &g);
	assert_int_equal(g.state, TASK_PENDING);
	task_free(&g);
}

/* sqlite only: what was committed survives close and open */
static void test_persistence(void **state)
{
	struct fx *f = *state;
	int64_t id[4];
	for (int i = 0; i < 4; i++)
		id[i] = push(f->s, "g", i == 3 ? "last" : "x");
	struct task_lease t[3];
	assert_int_equal(store_take(f->s, "g", "w", 1.0, t, 3), 3);
	assert_int_equal(store_ack(f->s, id[0], t[0].lease, "answer", 6, 2.0), 1);
	assert_int_equal(store_fail(f->s, id[1], t[1].lease, "oops", 1, 0, 2.0), 1);
	assert_int_equal(store_cancel(f->s, NULL, id[2], 2.0), 1);
	uint64_t max_lease = t[2].lease;
	/* a batch never committed is lost, as in a crash */
	assert_int_equal(store_begin(f->s), 0);
	push(f->s, "g", "uncommitted");
	reopen(f);
	struct task g;
	get(f->s, id[0], &g);
	assert_int_equal(g.state, TASK_DONE);
	assert_string_equal(g.result, "answer");
	assert_true(g.finished == 2.0);
	assert_true(g.started == 1.0);
	assert_string_equal(g.worker, "w");
	task_free(&g);
	get(f->s, id[1], &g);
	assert_int_equal(g.state, TASK_DEAD);
	assert_string_equal(g.error, "oops");
	task_free(&g);
	assert_int_equal(state_of(f->s, id[2]), TASK_CANCELLED);
	get(f->s, id[3], &g);
	assert_int_equal(g.state, TASK_PENDING);
	assert_string_equal(g.payload, "last");
	task_free(&g);
	assert_int_equal(store_get(f->s, id[3] + 1, &g), 0);
	expect_counts(f->s, "g", 1, 0, 1, 0, 1, 1);
	assert_int_equal(store_take(f->s, "g", "w", 3.0, t, 3), 1);
	assert_true(t[0].lease > max_lease);
	/* ids are not reused */
	assert_true(push(f->s, "g", "new") > id[3]);
}

/* sqlite only: the database, -wal and -shm fds do not leak into workers */
static void test_cloexec(void **state)
{
	struct fx *f = *state;
	push(f->s, "g", "x"); /* the -wal and -shm exist once something was written */
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int found = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char link[300], target[256];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, f->path, strlen(f->path)) != 0)
			continue;
		found++;
		int flags = fcntl(atoi(e->d_name), F_GETFD);
		if (!(flags & FD_CLOEXEC))
			fail_msg("%s (fd %s) is open without FD_CLOEXEC", target, e->d_name);
	}
	closedir(d);
	assert_true(found >= 3);
}

/* sqlite only: NORMAL sync opens and works the same way */
static void test_sync_normal(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	f->sync_full = false;
	f->s = open_store(f);
	int64_t id = push(f->s, "g", "x");
	reopen(f);
	assert_int_equal(state_of(f->s, id), TASK_PENDING);
}

/* sqlite only: someone changed the file under drover (which they should
 * not): the store notices when a write misses, and believes the file */
static void test_changed_under_drover(void **state)
{
	struct fx *f = *state;
	int64_t id = push(f->s, "g", "x");
	struct task_lease t;
	assert_int_equal(store_take(f->s, "g", "w", 1.0, &t, 1), 1);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, "UPDATE tasks SET state = 'pending'", NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_ack(f->s, id, t.lease, "r", 1, 2.0), 0);
	expect_counts(f->s, "g", 1, 0, 0, 0, 0, 0);
	assert_int_equal(store_take(f->s, "g", "w", 3.0, &t, 1), 1);
	assert_int_equal(t.attempts, 2);
	assert_int_equal(store_ack(f->s, id, t.lease, "r", 1, 4.0), 1);
	expect_counts(f->s, "g", 0, 0, 1, 0, 0, 0);
}

/* Forgetting (drover map): finished tasks go, by whole segments; what is
 * still pending, running or waiting for a retry stays, with its payload. */
#define FORGET_N 20000

static void test_forget_finished(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	store_forget_finished(s);
	for (int i = 1; i <= FORGET_N; i++) {
		char p[16];
		snprintf(p, sizeof(p), "%d", i);
		assert_int_equal(push(s, "g", p), i);
	}
	struct task_lease t[256];
	int64_t kept = 0, retried = 0;
	uint64_t kept_lease = 0;
	int n;
	while ((n = store_take(s, "g", "w", 1.0, t, 256)) > 0)
		for (int i = 0; i < n; i++) {
			char want[16];
			snprintf(want, sizeof(want), "%lld", (long long)t[i].id);
			assert_string_equal(t[i].payload, want);
			if (t[i].id == 7) { /* stays running */
				kept = t[i].id;
				kept_lease = t[i].lease;
			} else if (t[i].id == 9000) { /* fails, to be retried */
				retried = t[i].id;
				assert_int_equal(
				    store_fail(s, t[i].id, t[i].lease, "e", 3, 5.0, 1.0), 1);
			} else {
				assert_int_equal(store_ack(s, t[i].id, t[i].lease, "r", 1, 2.0), 1);
			}
		}
	expect_counts(s, "g", 0, 1, FORGET_N - 2, 1, 0, 0);
	struct task g;
	/* a segment with no unfinished task is gone; one that holds a running
	 * or failed task stays whole */
	assert_int_equal(store_get(s, 5000, &g), 0);
	get(s, 8, &g);
	assert_int_equal(g.state, TASK_DONE);
	assert_null(g.result); /* results are not kept: nobody asks */
	task_free(&g);
	get(s, kept, &g);
	assert_int_equal(g.state, TASK_RUNNING);
	task_free(&g);
	/* the retry comes back with its payload */
	assert_int_equal(store_take(s, "g", "w", 10.0, t, 4), 1);
	assert_int_equal(t[0].id, retried);
	assert_string_equal(t[0].payload, "9000");
	assert_int_equal(store_ack(s, retried, t[0].lease, "r", 1, 11.0), 1);
	assert_int_equal(store_ack(s, kept, kept_lease, "r", 1, 11.0), 1);
	assert_int_equal(store_get(s, kept, &g), 0);
	assert_int_equal(store_get(s, retried, &g), 0);
	expect_counts(s, "g", 0, 0, FORGET_N, 0, 0, 0);
}

/* A cancel of a whole group frees segments while it walks them. */
static void test_forget_while_cancelling(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	for (int i = 0; i < FORGET_N; i++)
		push(s, "g", "x");
	push(s, "other", "y");
	store_forget_finished(s);
	assert_int_equal(store_cancel(s, "g", 0, 1.0), FORGET_N);
	expect_counts(s, "g", 0, 0, 0, 0, 0, FORGET_N);
	struct task_lease t[4];
	assert_int_equal(store_take(s, "g", "w", 2.0, t, 4), 0);
	assert_int_equal(store_take(s, "other", "w", 2.0, t, 4), 1);
	assert_string_equal(t[0].payload, "y");
	struct task g;
	assert_int_equal(store_get(s, 1, &g), 0);
}

/* A dispatcher that leases ahead marks how far each worker was written: a
 * crash charges no attempt to the tasks beyond the mark (they never ran). */
static void test_recover_refunds_unsent(void **state)
{
	struct fx *f = *state;
	int64_t id[5];
	for (int i = 0; i < 5; i++)
		id[i] = push(f->s, "g", "x");
	struct task_lease a[3], b[2];
	assert_int_equal(store_take(f->s, "g", "w1", 1.0, a, 3), 3);
	assert_int_equal(store_take(f->s, "g", "w2", 1.0, b, 2), 2);
	/* w1 was written its first two, w2 nothing (mark 0); w3 never told */
	struct task_lease c[1];
	int64_t last = push(f->s, "g", "x");
	assert_int_equal(store_take(f->s, "g", "w3", 1.0, c, 1), 1);
	assert_int_equal(store_mark_sent(f->s, "w1", a[1].lease), 0);
	assert_int_equal(store_mark_sent(f->s, "w1", a[1].lease), 0); /* again: same */
	assert_int_equal(store_mark_sent(f->s, "w2", 0), 0);
	assert_int_equal(store_mark_sent(f->s, "", a[1].lease), -1);
	reopen(f);
	assert_int_equal(store_recover(f->s), 6);
	assert_int_equal(state_of(f->s, last), TASK_PENDING);
	struct task u;
	get(f->s, last, &u);
	assert_int_equal(u.attempts, 1); /* no mark: charged, as ever */
	task_free(&u);
	int want[5] = {1, 1, 0, 0, 0};
	for (int i = 0; i < 5; i++) {
		struct task g;
		get(f->s, id[i], &g);
		assert_int_equal(g.state, TASK_PENDING);
		if (g.attempts != want[i])
			fail_msg("task %d: attempts %d, expected %d", i, g.attempts, want[i]);
		task_free(&g);
	}
	/* the marks were for that run: a second crash goes by new marks */
	assert_int_equal(store_take(f->s, "g", "w1", 2.0, a, 3), 3);
	assert_int_equal(a[0].id, id[0]);
	assert_int_equal(store_mark_sent(f->s, "w1", a[0].lease - 1), 0);
	reopen(f);
	assert_int_equal(store_recover(f->s), 3);
	struct task g;
	get(f->s, id[0], &g);
	assert_int_equal(g.attempts, 1); /* taken again, never written: refunded */
	task_free(&g);
}

/* A database of schema 1 (drover before the `held` column) is upgraded at
 * open: the same tasks, states, counts and queues, the old indexes gone. */
static void test_upgrade_from_schema_1(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	unlink(f->path);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	const char *v1 =
	    "PRAGMA journal_mode = WAL;"
	    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	    "CREATE TABLE tasks(id INTEGER PRIMARY KEY, grp TEXT NOT NULL, payload BLOB NOT NULL,"
	    " state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
	    " lease INTEGER NOT NULL DEFAULT 0, worker TEXT, result BLOB, error TEXT, created REAL,"
	    " started REAL, finished REAL, not_before REAL NOT NULL DEFAULT 0);"
	    "CREATE INDEX tasks_pending ON tasks(grp, id) WHERE state = 'pending';"
	    "CREATE INDEX tasks_due ON tasks(grp, not_before) WHERE state = 'failed';"
	    "CREATE INDEX tasks_held ON tasks(grp, state, id) WHERE (state = 'failed' OR"
	    " state = 'dead' OR state = 'cancelled');"
	    "INSERT INTO meta VALUES('schema', 1), ('lease', 1048576);"
	    "INSERT INTO tasks(grp, payload, state, attempts, lease, result, error, not_before)"
	    " VALUES ('g', 'p1', 'pending', 0, 0, NULL, NULL, 0),"
	    " ('g', 'p2', 'done', 1, 7, 'r2', NULL, 0),"
	    " ('g', 'p3', 'failed', 1, 8, NULL, 'e3', 5.0),"
	    " ('g', 'p4', 'dead', 3, 9, NULL, 'e4', 0),"
	    " ('g', 'p5', 'cancelled', 0, 0, NULL, NULL, 0),"
	    " ('g', 'p6', 'running', 1, 10, NULL, NULL, 0);";
	assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	f->s = open_store(f);
	expect_counts(f->s, "g", 1, 1, 1, 1, 1, 1);
	assert_int_equal(store_recover(f->s), 1);
	struct task_lease t[4];
	/* pending 1 and recovered 6, then the retry of 3 once it is due */
	assert_int_equal(store_take(f->s, "g", "w", 1.0, t, 4), 2);
	assert_int_equal(t[0].id, 1);
	assert_int_equal(t[1].id, 6);
	assert_true(t[0].lease > 1048576);
	assert_int_equal(store_take(f->s, "g", "w", 6.0, t, 4), 1);
	assert_int_equal(t[0].id, 3);
	struct task l[4];
	assert_int_equal(store_list(f->s, "g", TASK_DEAD, 0, l, 4), 1);
	assert_int_equal(l[0].id, 4);
	task_free(&l[0]);
	assert_int_equal(store_retry(f->s, "g", 0), 2); /* dead 4, cancelled 5 */
	expect_counts(f->s, "g", 2, 3, 1, 0, 0, 0);
	store_close(f->s);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT (SELECT value FROM meta WHERE key = 'schema'),"
	                                    " (SELECT count(*) FROM sqlite_master WHERE"
	                                    " name = 'tasks_pending'),"
	                                    " (SELECT count(*) FROM tasks WHERE held IS NOT NULL)",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 2);
	assert_int_equal(sqlite3_column_int(st, 1), 0);
	assert_int_equal(sqlite3_column_int(st, 2), 0); /* none failed, dead or cancelled now */
	sqlite3_finalize(st);
	/* a schema from a newer drover is refused, by number */
	assert_int_equal(
	    sqlite3_exec(db, "UPDATE meta SET value = 3 WHERE key = 'schema'", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	char err[512] = "";
	f->s = store_open("sqlite", f->path, true, err, sizeof(err));
	assert_null(f->s);
	assert_non_null(strstr(err, "version 3"));
	f->s = store_open("memory", NULL, true, err, sizeof(err)); /* for the teardown */
}

/* Cancelled while queued, then retried: the task is queued twice, and must
 * be taken once (the sqlite store once failed the whole take). */
static void test_cancel_retry_take_once(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	for (int i = 0; i < 3; i++)
		push(s, "g", "x");
	assert_int_equal(store_cancel(s, "g", 2, 1.0), 1);
	assert_int_equal(store_retry(s, "g", 2), 1);
	assert_int_equal(store_cancel(s, "g", 0, 1.0), 3);
	assert_int_equal(store_retry(s, "g", 0), 3);
	struct task_lease t[10];
	assert_int_equal(store_take(s, "g", "w", 2.0, t, 10), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(t[i].id, i + 1);
	assert_int_equal(store_take(s, "g", "w", 2.0, t, 10), 0);
	expect_counts(s, "g", 0, 3, 0, 0, 0, 0);
}

/* One take of retries and pending tasks hands out leases that ascend with
 * the ids, the order a worker gets them in (a sent mark is a prefix). */
static void test_take_leases_ascend(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s;
	int64_t a = push(s, "g", "a");
	push(s, "g", "b");
	struct task_lease t[4];
	assert_int_equal(store_take(s, "g", "w", 0.0, t, 1), 1);
	assert_int_equal(store_fail(s, a, t[0].lease, "e", 5, 1.0, 0.0), 1);
	push(s, "g", "c");
	assert_int_equal(store_take(s, "g", "w", 2.0, t, 4), 3);
	assert_int_equal(t[0].id, a);
	for (int i = 1; i < 3; i++) {
		assert_true(t[i].id > t[i - 1].id);
		assert_true(t[i].lease > t[i - 1].lease);
	}
}

/* A buffered write that fails at the commit spoils the batch: the commit
 * rolls it all back and says so (it once committed the rest). */
static void test_commit_fails_with_its_writes(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db,
	                              "CREATE TRIGGER boom BEFORE INSERT ON tasks WHEN"
	                              " CAST(NEW.payload AS TEXT) = 'bad' BEGIN"
	                              " SELECT RAISE(FAIL, 'boom'); END;",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);
	struct store *s = f->s;
	assert_int_equal(store_begin(s), 0);
	push(s, "g", "1");
	push(s, "g", "bad");
	push(s, "g", "3");
	assert_int_equal(store_commit(s), -1);
	assert_non_null(strstr(store_error(s), "boom"));
	reopen(f);
	struct task g;
	assert_int_equal(store_get(f->s, 1, &g), 0);
	expect_counts(f->s, "g", 0, 0, 0, 0, 0, 0);
	/* and the store goes on */
	assert_int_equal(push(f->s, "g", "4"), 1);
}

#define BOTH(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest common[] = {
	    cmocka_unit_test(test_state_names),
	    BOTH(test_push_take_ack),
	    BOTH(test_binary_and_empty),
	    BOTH(test_take_order_and_max),
	    BOTH(test_stale_lease),
	    BOTH(test_fail_then_dead),
	    BOTH(test_failed_does_not_block),
	    BOTH(test_due_order_and_clock),
	    BOTH(test_due_requeued_twice),
	    BOTH(test_requeue),
	    BOTH(test_cancel_retry_take_once),
	    BOTH(test_take_leases_ascend),
	    BOTH(test_recover_after_crash),
	    BOTH(test_recover_refunds_unsent),
	    BOTH(test_counts),
	    BOTH(test_list),
	    BOTH(test_list_every_filter),
	    BOTH(test_cancel_retry),
	    BOTH(test_get),
	    BOTH(test_batch_calls),
	    BOTH(test_batch_reads_its_writes),
	    BOTH(test_batch_100k),
	};
	const struct CMUnitTest sqlite_only[] = {
	    BOTH(test_open_errors),
	    BOTH(test_persistence),
	    BOTH(test_cloexec),
	    BOTH(test_sync_normal),
	    BOTH(test_changed_under_drover),
	    BOTH(test_upgrade_from_schema_1),
	    BOTH(test_commit_fails_with_its_writes),
	};
	const struct CMUnitTest memory_only[] = {
	    BOTH(test_forget_finished),
	    BOTH(test_forget_while_cancelling),
	};
	int failed = 0;
	backend = "memory";
	failed += cmocka_run_group_tests_name("store memory", common, NULL, NULL);
	failed += cmocka_run_group_tests_name("store memory only", memory_only, NULL, NULL);
	backend = "sqlite";
	failed += cmocka_run_group_tests_name("store sqlite", common, NULL, NULL);
	failed += cmocka_run_group_tests_name("store sqlite only", sqlite_only, NULL, NULL);
	return failed;
}
