/* The SQLite backend's other calls: recovery at start, and what operators
 * ask (cancel, retry, get, list, counts). None is on the hot path; each
 * makes the buffered writes first (sq_ready), as it may read them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite_internal.h"

/* Copy the current row of st (columns COLS) into out. */
static int read_row(struct store *s, sqlite3_stmt *st, struct task *out, const char *op)
{
	struct task t = {0};
	t.id = sqlite3_column_int64(st, 0);
	enum task_state state;
	if (task_state_parse((const char *)sqlite3_column_text(st, 3), &state) < 0)
		return store_fail_msg(s, "%s: task %lld has an unknown state \"%s\" (%s)", op,
		                      (long long)t.id, sqlite3_column_text(st, 3), s->sql->path);
	t.state = state;
	const char *grp = (const char *)sqlite3_column_text(st, 1);
	t.group = strdup(grp ? grp : "");
	const void *p = sqlite3_column_blob(st, 2);
	t.len = (size_t)sqlite3_column_bytes(st, 2);
	t.payload = store_dup(p ? p : "", t.len);
	t.attempts = sqlite3_column_int(st, 4);
	t.lease = (uint64_t)sqlite3_column_int64(st, 5);
	bool oom = !t.group || !t.payload;
	const char *w = (const char *)sqlite3_column_text(st, 6);
	if (w && !(t.worker = strdup(w)))
		oom = true;
	if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
		const void *r = sqlite3_column_blob(st, 7);
		size_t rlen = (size_t)sqlite3_column_bytes(st, 7);
		if (!(t.result = store_dup(r ? r : "", rlen)))
			oom = true;
	}
	const char *e = (const char *)sqlite3_column_text(st, 8);
	if (e && !(t.error = strdup(e)))
		oom = true;
	t.created = sqlite3_column_double(st, 9);
	t.started = sqlite3_column_double(st, 10);
	t.finished = sqlite3_column_double(st, 11);
	t.not_before = sqlite3_column_double(st, 12);
	if (oom) {
		task_free(&t);
		return store_fail_msg(s, "%s: out of memory reading task %lld", op,
		                      (long long)t.id);
	}
	*out = t;
	return 0;
}

/* The running tasks of group (NULL = all), by id: a copy, as the caller
 * goes on to change the map. Returns the count or -1. */
static int running_ids(struct store *s, const char *group, int64_t after, int64_t **ids)
{
	struct store_sql *q = s->sql;
	int gi = group ? name_map_find(&q->names, group) : -1;
	*ids = NULL;
	if ((group && gi < 0) || !q->running.len)
		return 0;
	int64_t *v = malloc(q->running.len * sizeof(*v));
	if (!v)
		return store_fail_msg(s, "store: out of memory");
	int n = 0;
	for (size_t i = 0; i < q->running.cap; i++) {
		const struct run_entry *e = &q->running.slots[i];
		if (e->id > after && (!group || e->group == gi))
			v[n++] = e->id;
	}
	*ids = v;
	return n;
}

int store_sqlite_recover(struct store *s)
{
	struct store_sql *q = s->sql;
	bool own;
	if (sq_ready(s, true, "store_recover") < 0)
		return -1;
	int64_t *ids;
	int n = running_ids(s, NULL, 0, &ids);
	if (n <= 0)
		return n;
	if (sq_tx_open(s, &own, "store_recover") < 0) {
		free(ids);
		return -1;
	}
	sqlite3_stmt *st = q->q[Q_RECOVER];
	for (int i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		if (sq_run(s, Q_RECOVER, "store_recover") < 0)
			goto fail;
		int gi = run_map_get(&q->running, ids[i])->group;
		sq_count_move(q, gi, TASK_RUNNING, TASK_PENDING);
		run_map_del(&q->running, ids[i]);
		if (id_queue_give_back(&q->groups[gi].waiting, ids[i]) < 0)
			q->stale = true;
	}
	if (sq_run(s, Q_FORGET_SENT, "store_recover") < 0 ||
	    sq_tx_close(s, own, "store_recover") < 0)
		goto fail;
	free(ids);
	return n;
fail:
	free(ids);
	return sq_tx_abort(s, own, true);
}

/* Cancel running task id (known to be in the map). */
static int cancel_running(struct store *s, int64_t id, double now)
{
	struct store_sql *q = s->sql;
	sqlite3_stmt *st = q->q[Q_CANCEL_ID];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_double(st, 2, now);
	if (sq_run(s, Q_CANCEL_ID, "store_cancel") < 0)
		return -1;
	sq_count_move(q, run_map_get(&q->running, id)->group, TASK_RUNNING, TASK_CANCELLED);
	run_map_del(&q->running, id);
	return 1;
}

/* One task by id, if it is in group (when given) and in state a or b:
 * statement qi (?1 = id, ?2 = now) moves it to state to. 1, 0 or -1. */
static int change_one(struct store *s, int qi, const char *group, int64_t id, enum task_state a,
                      enum task_state b, enum task_state to, double now, const char *op)
{
	struct store_sql *q = s->sql;
	sqlite3_stmt *st = q->q[Q_HEAD];
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st), gi = -1;
	enum task_state state = TASK__COUNT;
	if (rc == SQLITE_ROW) {
		const char *grp = (const char *)sqlite3_column_text(st, 0);
		if (grp && (!group || strcmp(group, grp) == 0) &&
		    task_state_parse((const char *)sqlite3_column_text(st, 1), &state) == 0)
			gi = name_map_find(&q->names, grp);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_err(s, op);
	if (gi < 0 || (state != a && state != b))
		return 0;
	st = q->q[qi];
	sqlite3_bind_int64(st, 1, id);
	if (qi == Q_CANCEL_ID)
		sqlite3_bind_double(st, 2, now);
	if (sq_run(s, qi, op) < 0)
		return -1;
	sq_count_move(q, gi, state, to);
	if (to == TASK_PENDING && id_queue_give_back(&q->groups[gi].waiting, id) < 0)
		q->stale = true;
	return 1;
}

/* Statement qi (?1 = group, ?2 = now) on every selected group that has
 * tasks in state from; they move to state to. */
static int change_groups(struct store *s, int qi, const char *group, enum task_state from,
                         enum task_state to, double now, const char *op)
{
	struct store_sql *q = s->sql;
	sqlite3_stmt *st = q->q[qi];
	int total = 0;
	for (size_t gi = 0; gi < q->names.len; gi++) {
		const char *name = q->names.names[gi];
		struct sgroup *g = &q->groups[gi];
		if ((group && strcmp(group, name) != 0) || !g->n[from])
			continue;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (qi == Q_CANCEL_PENDING || qi == Q_CANCEL_FAILED)
			sqlite3_bind_double(st, 2, now);
		int changed = 0;
		if (to == TASK_PENDING) {
			/* RETURNING id: they join the group's queue */
			int rc;
			while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
				if (id_queue_give_back(&g->waiting, sqlite3_column_int64(st, 0)) <
				    0)
					q->stale = true;
				changed++;
			}
			sqlite3_reset(st);
			if (rc != SQLITE_DONE)
				return sq_err(s, op);
		} else if (sq_run(s, qi, op) < 0) {
			return -1;
		} else {
			changed = sqlite3_changes(q->db);
		}
		g->n[from] -= changed;
		g->n[to] += changed;
		total += changed;
	}
	return total;
}

static int cancel_many(struct store *s, const char *group, double now)
{
	int a = change_groups(s, Q_CANCEL_PENDING, group, TASK_PENDING, TASK_CANCELLED, now,
	                      "store_cancel");
	int b = a < 0 ? -1
	              : change_groups(s, Q_CANCEL_FAILED, group, TASK_FAILED, TASK_CANCELLED, now,
	                              "store_cancel");
	if (b < 0)
		return -1;
	int64_t *ids;
	int n = running_ids(s, group, 0, &ids);
	for (int i = 0; i < n; i++)
		if (cancel_running(s, ids[i], now) < 0) {
			n = -1;
			break;
		}
	free(ids);
	return n < 0 ? -1 : a + b + n;
}

int store_sqlite_cancel(struct store *s, const char *group, int64_t id, double now)
{
	struct store_sql *q = s->sql;
	bool own;
	if (sq_ready(s, true, "store_cancel") < 0 || sq_tx_open(s, &own, "store_cancel") < 0)
		return -1;
	int n;
	struct run_entry *e = id > 0 ? run_map_get(&q->running, id) : NULL;
	if (e)
		n = !group || strcmp(group, q->names.names[e->group]) == 0
		        ? cancel_running(s, id, now)
		        : 0;
	else if (id > 0)
		n = change_one(s, Q_CANCEL_ID, group, id, TASK_PENDING, TASK_FAILED, TASK_CANCELLED,
		               now, "store_cancel");
	else
		n = cancel_many(s, group, now);
	if (n < 0 || sq_tx_close(s, own, "store_cancel") < 0)
		return sq_tx_abort(s, own, true);
	return n;
}

int store_sqlite_retry(struct store *s, const char *group, int64_t id)
{
	bool own;
	if (sq_ready(s, true, "store_retry") < 0 || sq_tx_open(s, &own, "store_retry") < 0)
		return -1;
	int n;
	if (id > 0) {
		n = change_one(s, Q_RETRY_ID, group, id, TASK_DEAD, TASK_CANCELLED, TASK_PENDING, 0,
		               "store_retry");
	} else {
		n = change_groups(s, Q_RETRY_DEAD, group, TASK_DEAD, TASK_PENDING, 0,
		                  "store_retry");
		int k = n < 0 ? -1
		              : change_groups(s, Q_RETRY_CANCELLED, group, TASK_CANCELLED,
		                              TASK_PENDING, 0, "store_retry");
		n = k < 0 ? -1 : n + k;
	}
	if (n < 0 || sq_tx_close(s, own, "store_retry") < 0)
		return sq_tx_abort(s, own, true);
	return n;
}

int store_sqlite_get(struct store *s, int64_t id, struct task *out)
{
	if (sq_ready(s, false, "store_get") < 0)
		return -1;
	sqlite3_stmt *st = s->sql->q[Q_GET];
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_ROW)
		ret = read_row(s, st, out, "store_get") < 0 ? -1 : 1;
	else if (rc != SQLITE_DONE)
		ret = sq_err(s, "store_get");
	sqlite3_reset(st);
	return ret;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The ids after `after` of the selected groups in a pending, failed, dead
 * or cancelled state: one index range per group. Returns the count or -1. */
static int indexed_ids(struct store *s, const char *group, int state, int64_t after, int max,
                       int64_t **idsp)
{
	struct store_sql *q = s->sql;
	int qi = state == TASK_PENDING ? Q_IDS_PENDING : Q_IDS_HELD;
	sqlite3_stmt *st = q->q[qi];
	struct id_heap ids = {0}; /* used as a plain growable array here */
	int rc = SQLITE_DONE;
	for (size_t gi = 0; gi < q->names.len && rc == SQLITE_DONE; gi++) {
		if ((group && strcmp(group, q->names.names[gi]) != 0) || !q->groups[gi].n[state])
			continue;
		sqlite3_bind_int64(st, 1, after);
		sqlite3_bind_int(st, 2, max);
		sqlite3_bind_text(st, 3, q->names.names[gi], -1, SQLITE_STATIC);
		if (qi == Q_IDS_HELD)
			sqlite3_bind_text(st, 4, task_state_name((enum task_state)state), -1,
			                  SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && id_heap_reserve(&ids, 1) == 0)
			ids.v[ids.len++] = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	if (rc != SQLITE_DONE) {
		if (rc == SQLITE_ROW)
			store_fail_msg(s, "store_list: out of memory");
		else
			sq_err(s, "store_list");
		id_heap_free(&ids);
		return -1;
	}
	*idsp = ids.v;
	return (int)ids.len;
}

/* Rows by a statement that walks the table by id (?1 after, ?2 max, ?3
 * group or NULL). */
static int list_scan(struct store *s, int qi, const char *group, int64_t after, struct task *out,
                     int max)
{
	sqlite3_stmt *st = s->sql->q[qi];
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int(st, 2, max);
	if (qi != Q_LIST)
		sq_bind_text(st, 3, group);
	int n = 0, rc = SQLITE_DONE;
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (read_row(s, st, &out[n], "store_list") < 0)
			break;
		n++;
	}
	sqlite3_reset(st);
	if (n < max && rc != SQLITE_DONE) {
		if (rc != SQLITE_ROW)
			sq_err(s, "store_list");
		while (n > 0)
			task_free(&out[--n]);
		return -1;
	}
	return n;
}

/* Pending, running, failed, dead and cancelled tasks are found through an
 * index or the running map, by id, then read one by one; done tasks (and
 * "any state") by walking the table from `after`, where most rows match. */
int store_sqlite_list(struct store *s, const char *group, int state, int64_t after,
                      struct task *out, int max)
{
	if (sq_ready(s, false, "store_list") < 0)
		return -1;
	if (state < 0)
		return list_scan(s, group ? Q_LIST_GROUP : Q_LIST, group, after, out, max);
	if (state == TASK_DONE)
		return list_scan(s, Q_LIST_DONE, group, after, out, max);
	int64_t *ids = NULL;
	int nids = state == TASK_RUNNING ? running_ids(s, group, after, &ids)
	                                 : indexed_ids(s, group, state, after, max, &ids);
	if (nids < 0)
		return -1;
	if (nids > 1)
		qsort(ids, (size_t)nids, sizeof(*ids), cmp_id);
	if (nids > max)
		nids = max;
	sqlite3_stmt *st = s->sql->q[Q_GET];
	int n = 0;
	for (int i = 0; i < nids; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		int rc = sqlite3_step(st);
		if (rc != SQLITE_ROW || read_row(s, st, &out[n], "store_list") < 0) {
			if (rc != SQLITE_ROW)
				sq_err(s, "store_list");
			sqlite3_reset(st);
			free(ids);
			while (n > 0)
				task_free(&out[--n]);
			return -1;
		}
		sqlite3_reset(st);
		n++;
	}
	free(ids);
	return n;
}

int store_sqlite_counts(struct store *s, const char *group, struct store_counts *out)
{
	struct store_sql *q = s->sql;
	/* memory counts what is buffered too: no flush (the dispatcher asks
	 * every turn), only a rebuild if memory is off */
	if (q->stale && sq_ready(s, false, "store_counts") < 0)
		return -1;
	for (size_t gi = 0; gi < q->names.len; gi++) {
		if (group && strcmp(group, q->names.names[gi]) != 0)
			continue;
		for (int st = 0; st < TASK__COUNT; st++)
			out->n[st] += q->groups[gi].n[st];
	}
	return 0;
}
