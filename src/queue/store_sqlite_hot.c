/* The SQLite backend's hot path: push, take, ack, fail and requeue, and
 * the buffered writes that make pushes and acks many rows a statement.
 * Memory (counts, queues, the running tasks) moves with each call; the
 * table catches up at the flush, before the commit and before any call
 * that might read it. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/framing.h"
#include "store_sqlite_internal.h"

/* ---- buffered writes ----
 *
 * Inside a batch, pushes and acks are not written one statement each but
 * kept, and made WRITE_BATCH rows per statement (a multi-row INSERT, an
 * UPDATE ... FROM VALUES) before the commit and before any other
 * operation, which might read them. Memory (counts, queues, running
 * tasks) follows at once; ids are assigned here, from the largest in the
 * table. A failed flush spoils the batch, as a failed multi-row write
 * always did. */

static int buffer_bytes(struct store *s, const void *p, size_t len, size_t *off)
{
	struct store_sql *q = s->sql;
	if (frame_reserve(&q->wbuf, &q->wcap, q->wlen + len) < 0)
		return -1;
	*off = q->wlen;
	if (len)
		memcpy(q->wbuf + q->wlen, p, len);
	q->wlen += len;
	return 0;
}

static struct buffered *buffer_row(struct buffered **v, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct buffered *grown = realloc(*v, c * sizeof(*grown));
		if (!grown)
			return NULL;
		*v = grown;
		*cap = c;
	}
	return &(*v)[(*n)++];
}

/* "head (row), (row), ... tail" with n rows: the multi-row statements. */
static char *many_rows(const char *head, const char *row, const char *tail, int n)
{
	size_t len = strlen(head) + (size_t)n * (strlen(row) + 1) + strlen(tail) + 1;
	char *sql = malloc(len), *p = sql;
	if (!sql)
		return NULL;
	p += sprintf(p, "%s", head);
	for (int i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? "," : "", row);
	sprintf(p, "%s", tail);
	return sql;
}

int sq_prepare_many(struct store *s)
{
	struct store_sql *q = s->sql;
	char *push =
	    many_rows("INSERT OR FAIL INTO tasks(id, grp, payload, state, created) VALUES ",
	              "(?,?,?,'pending',?)", "", WRITE_BATCH);
	char *ack = many_rows("WITH v(id, lease, r, f) AS (VALUES ", "(?,?,?,?)",
	                      ") UPDATE OR FAIL tasks SET state = 'done', result = v.r,"
	                      " finished = v.f FROM v WHERE tasks.id = v.id AND"
	                      " tasks.lease = v.lease AND tasks.state = 'running'",
	                      WRITE_BATCH);
	int rc = push && ack &&
	                 sqlite3_prepare_v3(q->db, push, -1, SQLITE_PREPARE_PERSISTENT,
	                                    &q->push_many, NULL) == SQLITE_OK &&
	                 sqlite3_prepare_v3(q->db, ack, -1, SQLITE_PREPARE_PERSISTENT, &q->ack_many,
	                                    NULL) == SQLITE_OK
	             ? 0
	             : -1;
	free(push);
	free(ack);
	return rc < 0 ? sq_err(s, "store_open: preparing a statement") : 0;
}

static void bind_push(struct store_sql *q, sqlite3_stmt *st, int at, const struct buffered *b)
{
	sqlite3_bind_int64(st, at, b->id);
	sqlite3_bind_text(st, at + 1, q->names.names[b->group], -1, SQLITE_STATIC);
	sqlite3_bind_blob64(st, at + 2, q->wbuf + b->off, b->len, SQLITE_STATIC);
	sqlite3_bind_double(st, at + 3, b->at);
}

static void bind_ack(struct store_sql *q, sqlite3_stmt *st, int at, const struct buffered *b,
                     int result_at)
{
	sqlite3_bind_int64(st, at, b->id);
	sqlite3_bind_int64(st, at + 1, (sqlite3_int64)b->lease);
	if (b->null)
		sqlite3_bind_null(st, result_at);
	else
		sqlite3_bind_blob64(st, result_at, q->wbuf + b->off, b->len, SQLITE_STATIC);
	sqlite3_bind_double(st, result_at + 1, b->at);
}

/* Step st (no rows), reset it; the rows changed, or -1. */
static int step_changes(struct store *s, sqlite3_stmt *st, const char *op)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sq_err(s, op);
	return sqlite3_changes(s->sql->db);
}

static int flush_pushes(struct store *s)
{
	struct store_sql *q = s->sql;
	size_t i = 0;
	for (; i + WRITE_BATCH <= q->npush; i += WRITE_BATCH) {
		for (int k = 0; k < WRITE_BATCH; k++)
			bind_push(q, q->push_many, 4 * k + 1, &q->pushes[i + (size_t)k]);
		if (step_changes(s, q->push_many, "store_push") < 0)
			return -1;
	}
	for (; i < q->npush; i++) {
		bind_push(q, q->q[Q_PUSH_ID], 1, &q->pushes[i]);
		if (step_changes(s, q->q[Q_PUSH_ID], "store_push") < 0)
			return -1;
	}
	return 0;
}

static int flush_acks(struct store *s)
{
	struct store_sql *q = s->sql;
	size_t i = 0;
	int changed = 0, want = 0;
	for (; i + WRITE_BATCH <= q->nack; i += WRITE_BATCH) {
		for (int k = 0; k < WRITE_BATCH; k++)
			bind_ack(q, q->ack_many, 4 * k + 1, &q->acks[i + (size_t)k], 4 * k + 3);
		int n = step_changes(s, q->ack_many, "store_ack");
		if (n < 0)
			return -1;
		changed += n;
		want += WRITE_BATCH;
	}
	for (; i < q->nack; i++) {
		bind_ack(q, q->q[Q_ACK], 1, &q->acks[i], 3);
		int n = step_changes(s, q->q[Q_ACK], "store_ack");
		if (n < 0)
			return -1;
		changed += n;
		want++;
	}
	if (changed != want)
		q->stale = true; /* the file changed under drover: memory is rebuilt */
	return 0;
}

int sq_flush_writes(struct store *s)
{
	struct store_sql *q = s->sql;
	if (!q->npush && !q->nack)
		return 0;
	int rc = q->broken ? 0 : flush_pushes(s) == 0 && flush_acks(s) == 0 ? 0 : -1;
	q->npush = q->nack = q->wlen = 0;
	return rc < 0 ? sq_tx_abort(s, false, true) : 0;
}

int store_sqlite_flush(struct store *s)
{
	return s->batch ? sq_flush_writes(s) : 0;
}

/* A take reads pending rows only, which acks never touch: the pushes go,
 * the acks may keep gathering (their bytes stay where they are in wbuf). */
int sq_flush_pushes(struct store *s)
{
	struct store_sql *q = s->sql;
	if (!q->npush || q->broken)
		return 0;
	int rc = flush_pushes(s);
	q->npush = 0;
	if (!q->nack)
		q->wlen = 0;
	return rc < 0 ? sq_tx_abort(s, false, true) : 0;
}

int store_sqlite_push(struct store *s, const char *group, const char *payload, size_t len,
                      int64_t *id)
{
	struct store_sql *q = s->sql;
	if (sq_ready_to_buffer(s, "store_push") < 0)
		return -1;
	int gi = sq_group_add(q, group);
	if (gi < 0)
		return store_fail_msg(s, "store_push: out of memory");
	struct buffered b = {.id = q->next_id, .group = gi, .len = len, .at = store_batch_clock(s)};
	if (s->batch) {
		struct buffered *slot;
		if (buffer_bytes(s, payload, len, &b.off) < 0 ||
		    !(slot = buffer_row(&q->pushes, &q->npush, &q->pushcap)))
			return store_fail_msg(s, "store_push: out of memory for a %zu-byte payload",
			                      len);
		*slot = b;
		if (q->npush + q->nack >= WRITE_BUFFER && sq_flush_writes(s) < 0)
			return -1;
	} else {
		sqlite3_stmt *st = q->q[Q_PUSH_ID];
		sqlite3_bind_int64(st, 1, b.id);
		sqlite3_bind_text(st, 2, group, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(st, 3, payload, len, SQLITE_STATIC);
		sqlite3_bind_double(st, 4, b.at);
		if (sq_run(s, Q_PUSH_ID, "store_push") < 0)
			return sq_tx_abort(s, false, false);
	}
	*id = q->next_id++;
	if (id_queue_push(&q->groups[gi].waiting, *id) < 0)
		q->stale = true; /* the next call rebuilds the queue from the table */
	q->groups[gi].n[TASK_PENDING]++;
	return 0;
}

/* Failed tasks of g whose not_before is in (g->promoted, now] join g->due.
 * Each failed task is read here once per wait, however many takes ask. */
static int promote(struct store *s, struct sgroup *g, const char *group, double now)
{
	if (now < g->promoted) { /* the clock went back: start over */
		g->due.len = 0;
		g->promoted = -DBL_MAX;
	}
	if (now == g->promoted)
		return 0;
	sqlite3_stmt *st = s->sql->q[Q_PROMOTE];
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 2, g->promoted);
	sqlite3_bind_double(st, 3, now);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (id_heap_push(&g->due, sqlite3_column_int64(st, 0)) < 0) {
			sqlite3_reset(st);
			return store_fail_msg(s, "store_take: out of memory");
		}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sq_err(s, "store_take");
	g->promoted = now;
	return 0;
}

/* Copy a payload column into the scratch buffer; its offset in *off. */
static int scratch_add(struct store *s, sqlite3_stmt *st, int col, struct pick *p)
{
	struct store_sql *q = s->sql;
	const void *data = sqlite3_column_blob(st, col);
	size_t len = (size_t)sqlite3_column_bytes(st, col);
	if (q->scratch_len + len + 1 > q->scratch_cap) {
		size_t cap = q->scratch_cap ? q->scratch_cap : 4096;
		while (cap < q->scratch_len + len + 1)
			cap *= 2;
		char *b = realloc(q->scratch, cap);
		if (!b)
			return store_fail_msg(s, "store_take: out of memory for a %zu-byte payload",
			                      len);
		q->scratch = b;
		q->scratch_cap = cap;
	}
	p->off = q->scratch_len;
	p->len = len;
	if (len)
		memcpy(q->scratch + p->off, data, len);
	q->scratch[p->off + len] = '\0';
	q->scratch_len += len + 1;
	return 0;
}

/* Put due tasks of g (lowest id first) among the *np pending ones already
 * in picks[], keeping id order and at most max. 0 or -1. */
static int merge_due(struct store *s, struct sgroup *g, double now, int *np, int max)
{
	struct store_sql *q = s->sql;
	sqlite3_stmt *get = q->q[Q_DUE_ROW];
	struct pick *picks = q->picks;
	int j = 0;
	int64_t last = 0;
	while (g->due.len) {
		int64_t id = g->due.v[0];
		while (j < *np && picks[j].id < id)
			j++;
		if (j == max)
			break;
		id_heap_pop(&g->due);
		if (id == last)
			continue; /* queued twice: failed again before its first turn */
		last = id;
		sqlite3_bind_int64(get, 1, id);
		int rc = sqlite3_step(get);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(get);
			if (rc == SQLITE_DONE)
				continue;
			return sq_err(s, "store_take");
		}
		const char *state = (const char *)sqlite3_column_text(get, 0);
		if (!state || strcmp(state, "failed") != 0 || sqlite3_column_double(get, 1) > now) {
			sqlite3_reset(get); /* cancelled, or failed again for later */
			continue;
		}
		struct pick p = {.id = id, .attempts = sqlite3_column_int(get, 3), .failed = true};
		int err = scratch_add(s, get, 2, &p);
		sqlite3_reset(get);
		if (err < 0)
			return -1;
		if (*np == max && id_queue_give_back(&g->waiting, picks[--*np].id) < 0)
			q->stale = true; /* the last pending one waits for the next take */
		memmove(&picks[j + 1], &picks[j], (size_t)(*np - j) * sizeof(*picks));
		picks[j++] = p;
		++*np;
	}
	return 0;
}

/* Reserve leases in meta up to at least next_lease + n - 1. */
static int reserve_leases(struct store *s, uint64_t n)
{
	struct store_sql *q = s->sql;
	if (q->next_lease + n - 1 <= q->lease_limit)
		return 0;
	q->lease_limit = q->next_lease + n - 1 + LEASE_BLOCK;
	sqlite3_bind_int64(q->q[Q_LEASE], 1, (sqlite3_int64)q->lease_limit);
	return sq_run(s, Q_LEASE, "store_take: reserving leases");
}

/* Mark picks[0..n) running and fill out[]. The pending ones are the first
 * of the group by id: one UPDATE takes them all, each with lease = base +
 * id (unique, above every earlier lease; the gaps cost nothing in 63
 * bits). The due ones, if any, are marked one by one. */
static int mark_running(struct store *s, int gi, const char *worker, double now,
                        struct task_lease *out, int n)
{
	struct store_sql *q = s->sql;
	const struct pick *picks = q->picks;
	if (!n)
		return 0;
	/* picks ascend by id, so leases base + id ascend in the order the
	 * worker gets them, retries among them: how far it was written is a
	 * prefix of its leases (store_mark_sent) */
	int64_t first = picks[0].id, last = picks[n - 1].id, pfirst = 0, plast = 0;
	int npending = 0;
	for (int i = 0; i < n; i++)
		if (!picks[i].failed) {
			pfirst = pfirst ? pfirst : picks[i].id;
			plast = picks[i].id;
			npending++;
		}
	uint64_t span = (uint64_t)(last - first) + 1;
	if (reserve_leases(s, span) < 0)
		return -1;
	int64_t base = (int64_t)q->next_lease - first;
	if (npending) {
		sqlite3_stmt *st = q->q[Q_MARK_RANGE];
		sqlite3_bind_int64(st, 1, base);
		sq_bind_text(st, 2, worker);
		sqlite3_bind_double(st, 3, now);
		sqlite3_bind_text(st, 4, q->names.names[gi], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, pfirst);
		sqlite3_bind_int64(st, 6, plast);
		if (sq_run(s, Q_MARK_RANGE, "store_take") < 0)
			return -1;
		if (sqlite3_changes(q->db) != npending)
			return store_fail_msg(s, "store_take: %s changed under drover", q->path);
	}
	q->next_lease += span;
	sqlite3_stmt *st = q->q[Q_MARK];
	sq_bind_text(st, 3, worker);
	sqlite3_bind_double(st, 4, now);
	for (int i = 0; i < n; i++) {
		const struct pick *p = &picks[i];
		uint64_t lease = (uint64_t)(base + p->id);
		if (p->failed) {
			sqlite3_bind_int64(st, 1, p->id);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)lease);
			if (sq_run(s, Q_MARK, "store_take") < 0)
				return -1;
		}
		sq_count_move(q, gi, p->failed ? TASK_FAILED : TASK_PENDING, TASK_RUNNING);
		out[i] = (struct task_lease){.id = p->id,
		                             .lease = lease,
		                             .attempts = p->attempts + 1,
		                             .payload = q->scratch + p->off,
		                             .len = p->len};
		run_map_put(&q->running, (struct run_entry){.id = p->id,
		                                            .lease = lease,
		                                            .group = gi,
		                                            .attempts = p->attempts + 1});
	}
	return 0;
}

/* The lowest pending tasks of g, up to max, into picks[]: runs of ids from
 * its queue, each read with one range SELECT (entries cancelled since are
 * not pending any more, and are left out). 0 or -1. */
static int take_pending(struct store *s, struct sgroup *g, const char *group, int *np, int max)
{
	struct store_sql *q = s->sql;
	sqlite3_stmt *st = q->q[Q_PENDING];
	while (*np < max) {
		int64_t first;
		size_t k = id_queue_pop_run(&g->waiting, (size_t)(max - *np), &first);
		if (!k && (first = id_queue_pop(&g->waiting)))
			k = 1;
		if (!k)
			break;
		sqlite3_bind_int64(st, 1, first);
		sqlite3_bind_int64(st, 2, first + (int64_t)k - 1);
		sqlite3_bind_text(st, 3, group, -1, SQLITE_STATIC);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(st, 0);
			/* an id may be queued twice (cancelled while queued, then
			 * retried): it comes up twice in a row, and is taken once */
			if (*np && id <= q->picks[*np - 1].id)
				continue;
			struct pick *p = &q->picks[*np];
			*p = (struct pick){.id = id, .attempts = sqlite3_column_int(st, 2)};
			if (scratch_add(s, st, 1, p) < 0)
				break;
			++*np;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			if (rc != SQLITE_ROW)
				sq_err(s, "store_take");
			return -1; /* the queue is off now: the abort rebuilds it */
		}
	}
	if (!*np && id_queue_empty(&g->waiting))
		q->stale = true; /* counted pending, yet none queued: rebuild */
	return 0;
}

/* Pending tasks come from the group's queue in id order; failed tasks whose
 * time has come wait in g->due, also by id; the two are merged. */
int store_sqlite_take(struct store *s, const char *group, const char *worker, double now,
                      struct task_lease *out, int max)
{
	struct store_sql *q = s->sql;
	if (sq_ready_to_buffer(s, "store_take") < 0 || sq_flush_pushes(s) < 0)
		return -1;
	int gi = name_map_find(&q->names, group);
	if (gi < 0)
		return 0;
	struct sgroup *g = &q->groups[gi];
	if (!g->n[TASK_PENDING] && !g->n[TASK_FAILED])
		return 0;
	if (run_map_reserve(&q->running, (size_t)max) < 0)
		return store_fail_msg(s, "store_take: out of memory");
	if ((size_t)max > q->pickcap) {
		struct pick *v = realloc(q->picks, (size_t)max * sizeof(*v));
		if (!v)
			return store_fail_msg(s, "store_take: out of memory");
		q->picks = v;
		q->pickcap = (size_t)max;
	}
	q->scratch_len = 0;
	bool own;
	if (sq_tx_open(s, &own, "store_take") < 0)
		return -1;
	int n = 0;
	if (g->n[TASK_PENDING] && take_pending(s, g, group, &n, max) < 0)
		goto fail;
	if (!g->n[TASK_FAILED])
		g->due.len = 0; /* nothing failed: whatever is left there is stale */
	else if (promote(s, g, group, now) < 0 || merge_due(s, g, now, &n, max) < 0)
		goto fail;
	if (mark_running(s, gi, worker, now, out, n) < 0 || sq_tx_close(s, own, "store_take") < 0)
		goto fail;
	return n;
fail:
	return sq_tx_abort(s, own, true);
}

/* One UPDATE of a running task under its lease (?1 id, ?2 lease, already
 * bound with the rest). 1 applied; 0 if the database disagrees with
 * memory (changed under drover: memory is rebuilt); -1. */
static int run_leased(struct store *s, int qi, const char *op)
{
	if (sq_run(s, qi, op) < 0)
		return sq_tx_abort(s, false, false);
	if (sqlite3_changes(s->sql->db) == 1)
		return 1;
	s->sql->stale = true;
	return 0;
}

int store_sqlite_ack(struct store *s, int64_t id, uint64_t lease, const char *result, size_t len,
                     double now)
{
	struct store_sql *q = s->sql;
	if (sq_ready_to_buffer(s, "store_ack") < 0)
		return -1;
	struct run_entry *e = run_map_get(&q->running, id);
	if (!e || e->lease != lease)
		return 0;
	if (s->batch) {
		struct buffered b = {.id = id,
		                     .lease = lease,
		                     .len = len,
		                     .null = !result,
		                     .at = now},
		                *slot;
		if (buffer_bytes(s, result, result ? len : 0, &b.off) < 0 ||
		    !(slot = buffer_row(&q->acks, &q->nack, &q->ackcap)))
			return store_fail_msg(s, "store_ack: out of memory for a %zu-byte result",
			                      len);
		*slot = b;
		sq_count_move(q, e->group, TASK_RUNNING, TASK_DONE);
		run_map_del(&q->running, id);
		if (q->npush + q->nack >= WRITE_BUFFER && sq_flush_writes(s) < 0)
			return -1;
		return 1;
	}
	sqlite3_stmt *st = q->q[Q_ACK];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)lease);
	if (result)
		sqlite3_bind_blob64(st, 3, result, len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_double(st, 4, now);
	int gi = e->group, rc = run_leased(s, Q_ACK, "store_ack");
	if (rc == 1) {
		sq_count_move(q, gi, TASK_RUNNING, TASK_DONE);
		run_map_del(&q->running, id);
	}
	return rc;
}

int store_sqlite_fail(struct store *s, int64_t id, uint64_t lease, const char *error,
                      int max_attempts, double not_before, double now)
{
	struct store_sql *q = s->sql;
	if (sq_ready(s, true, "store_fail") < 0)
		return -1;
	struct run_entry *e = run_map_get(&q->running, id);
	if (!e || e->lease != lease)
		return 0;
	enum task_state to = e->attempts >= max_attempts ? TASK_DEAD : TASK_FAILED;
	sqlite3_stmt *st = q->q[Q_FAIL];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)lease);
	sqlite3_bind_text(st, 3, task_state_name(to), -1, SQLITE_STATIC);
	sq_bind_text(st, 4, error);
	sqlite3_bind_double(st, 5, not_before);
	if (to == TASK_DEAD)
		sqlite3_bind_double(st, 6, now);
	else
		sqlite3_bind_null(st, 6);
	int gi = e->group, rc = run_leased(s, Q_FAIL, "store_fail");
	if (rc == 1) {
		struct sgroup *g = &q->groups[gi];
		sq_count_move(q, gi, TASK_RUNNING, to);
		run_map_del(&q->running, id);
		/* promotion has gone past its time: queue it now */
		if (to == TASK_FAILED && not_before <= g->promoted && id_heap_push(&g->due, id) < 0)
			q->stale = true;
	}
	return rc;
}

int store_sqlite_requeue(struct store *s, int64_t id, uint64_t lease, bool refund)
{
	struct store_sql *q = s->sql;
	if (sq_ready(s, true, "store_requeue") < 0)
		return -1;
	struct run_entry *e = run_map_get(&q->running, id);
	if (!e || e->lease != lease)
		return 0;
	sqlite3_stmt *st = q->q[Q_REQUEUE];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)lease);
	sqlite3_bind_int(st, 3, refund && e->attempts > 0 ? e->attempts - 1 : e->attempts);
	int gi = e->group, rc = run_leased(s, Q_REQUEUE, "store_requeue");
	if (rc == 1) {
		sq_count_move(q, gi, TASK_RUNNING, TASK_PENDING);
		run_map_del(&q->running, id);
		if (id_queue_give_back(&q->groups[gi].waiting, id) < 0)
			q->stale = true;
	}
	return rc;
}

int store_sqlite_mark_sent(struct store *s, const char *worker, uint64_t lease)
{
	struct store_sql *q = s->sql;
	if (sq_ready(s, true, "store_mark_sent") < 0)
		return -1;
	sqlite3_stmt *st = q->q[Q_MARK_SENT];
	sqlite3_bind_text(st, 1, worker, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)lease);
	if (sq_run(s, Q_MARK_SENT, "store_mark_sent") < 0)
		return sq_tx_abort(s, false, false);
	return 0;
}
