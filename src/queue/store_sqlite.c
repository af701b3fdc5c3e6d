/* The SQLite backend: one WAL database, every statement prepared once at
 * open, a batch (store_begin .. store_commit) is one transaction. This
 * file: the schema, open and close, the rebuild of memory, transactions.
 *
 * Beside the database the backend keeps in memory, rebuilt by one scan at
 * open and after any rollback:
 * - per group, the count of tasks in each state: store_counts and the
 *   "anything to take?" test cost nothing;
 * - per group, its pending tasks by id (an id_queue), which take reads by
 *   id range: the table needs no index of pending tasks;
 * - per group, the ids of failed tasks whose not_before has come (take);
 * - every running task with its group, lease and attempts: ack, fail and
 *   requeue write without reading first, and a stale lease is answered
 *   without touching the database at all.
 * So the backend assumes it is the only writer while drover runs: ops may
 * read the file with the sqlite3 tool at any time, but change it only while
 * drover is stopped.
 *
 * The hot path (push, take, ack: store_sqlite_hot.c) touches no index at
 * all: only failed, dead and cancelled tasks are in the operators' indexes,
 * keyed on the `held` column, which the hot path never writes (docs/store.md
 * has the measurements behind this, the schema and the loss window of each
 * sync mode). Every write is OR FAIL: a single-row statement that fails
 * changes nothing, and SQLite then needs no statement journal, which it
 * would otherwise allocate and free for each statement (that alone halved
 * the throughput). */
#include "store_sqlite_internal.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLS                                                                                       \
	"id, grp, payload, state, attempts, lease, worker, result, error, created, started, "      \
	"finished, not_before"
#define AS_NEW                                                                                     \
	"UPDATE OR FAIL tasks SET state = 'pending', held = NULL, attempts = 0, result = NULL, "   \
	"error = NULL, finished = NULL, not_before = 0 "
#define CANCEL "UPDATE OR FAIL tasks SET state = 'cancelled', held = 'cancelled', finished = ?2 "

/* 2: `held` (the state while failed, dead or cancelled, else NULL) keys
 * the operators' indexes, so that the hot path, which never writes it,
 * never touches them; no index of pending tasks (memory holds them). */
#define SCHEMA_VERSION 2

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS tasks(id INTEGER PRIMARY KEY, grp TEXT NOT NULL,"
    " payload BLOB NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " lease INTEGER NOT NULL DEFAULT 0, worker TEXT, result BLOB, error TEXT, created REAL,"
    " started REAL, finished REAL, not_before REAL NOT NULL DEFAULT 0, held TEXT);"
    "CREATE TABLE IF NOT EXISTS sent(worker TEXT PRIMARY KEY, lease INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO meta VALUES('lease', 0);";

#define INDEXES_SQL                                                                                \
	"CREATE INDEX IF NOT EXISTS tasks_due ON tasks(grp, not_before) WHERE held = 'failed';"    \
	"CREATE INDEX IF NOT EXISTS tasks_held ON tasks(grp, held, id) WHERE held IS NOT NULL;"

static const char fresh_sql[] = INDEXES_SQL "INSERT INTO meta VALUES('schema', 2);";

/* From schema 1: the column, and the indexes on it instead of on state. */
static const char upgrade_sql[] =
    "ALTER TABLE tasks ADD COLUMN held TEXT;"
    "UPDATE tasks SET held = state WHERE state IN ('failed', 'dead', 'cancelled');"
    "DROP INDEX IF EXISTS tasks_pending;"
    "DROP INDEX IF EXISTS tasks_due;"
    "DROP INDEX IF EXISTS tasks_held;" INDEXES_SQL
    "UPDATE meta SET value = 2 WHERE key = 'schema';";

const char *const sq_queries[Q__COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_PUSH_ID] = "INSERT OR FAIL INTO tasks(id, grp, payload, state, created)"
                  " VALUES(?1, ?2, ?3, 'pending', ?4)",
    /* a run of ids the group's queue says are pending (some may have been
     * cancelled since) */
    [Q_PENDING] = "SELECT id, payload, attempts FROM tasks WHERE id BETWEEN ?1 AND ?2"
                  " AND grp = ?3 AND state = 'pending'",
    [Q_DUE_ROW] = "SELECT state, not_before, payload, attempts FROM tasks WHERE id = ?1",
    [Q_PROMOTE] = "SELECT id FROM tasks INDEXED BY tasks_due WHERE grp = ?1 AND held = 'failed'"
                  " AND not_before > ?2 AND not_before <= ?3",
    [Q_GET] = "SELECT " COLS " FROM tasks WHERE id = ?1",
    /* the first pending tasks of a group, lease = ?1 + id */
    [Q_MARK_RANGE] = "UPDATE OR FAIL tasks SET state = 'running', attempts = attempts + 1,"
                     " lease = ?1 + id, worker = ?2, started = ?3"
                     " WHERE grp = ?4 AND state = 'pending' AND id BETWEEN ?5 AND ?6",
    [Q_MARK] = "UPDATE OR FAIL tasks SET state = 'running', held = NULL, attempts = attempts + 1,"
               " lease = ?2, worker = ?3, started = ?4 WHERE id = ?1 AND state = 'failed'",
    [Q_LEASE] = "UPDATE meta SET value = ?1 WHERE key = 'lease'",
    [Q_ACK] = "UPDATE OR FAIL tasks SET state = 'done', result = ?3, finished = ?4"
              " WHERE id = ?1 AND lease = ?2 AND state = 'running'",
    [Q_FAIL] = "UPDATE OR FAIL tasks SET state = ?3, held = ?3, error = ?4, not_before = ?5,"
               " finished = ?6"
               " WHERE id = ?1 AND lease = ?2 AND state = 'running'",
    [Q_REQUEUE] = "UPDATE OR FAIL tasks SET state = 'pending', attempts = ?3"
                  " WHERE id = ?1 AND lease = ?2 AND state = 'running'",
    /* leased beyond its worker's sent mark: it never ran, the attempt
     * is given back */
    [Q_RECOVER] = "UPDATE OR FAIL tasks SET state = 'pending', attempts = max(0, attempts -"
                  " coalesce(lease > (SELECT lease FROM sent WHERE sent.worker = tasks.worker),"
                  " 0)) WHERE id = ?1 AND state = 'running'",
    [Q_MARK_SENT] = "INSERT OR REPLACE INTO sent(worker, lease) VALUES(?1, ?2)",
    [Q_FORGET_SENT] = "DELETE FROM sent",
    [Q_HEAD] = "SELECT grp, state FROM tasks WHERE id = ?1",
    [Q_CANCEL_ID] = CANCEL "WHERE id = ?1",
    [Q_CANCEL_PENDING] = CANCEL "WHERE grp = ?1 AND state = 'pending'",
    [Q_CANCEL_FAILED] = CANCEL "WHERE grp = ?1 AND held = 'failed'",
    [Q_RETRY_ID] = AS_NEW "WHERE id = ?1",
    [Q_RETRY_DEAD] = AS_NEW "WHERE grp = ?1 AND held = 'dead' RETURNING id",
    [Q_RETRY_CANCELLED] = AS_NEW "WHERE grp = ?1 AND held = 'cancelled' RETURNING id",
    [Q_SCAN] = "SELECT id, grp, state, lease, attempts FROM tasks",
    [Q_LIST] = "SELECT " COLS " FROM tasks WHERE id > ?1 ORDER BY id LIMIT ?2",
    [Q_LIST_GROUP] = "SELECT " COLS " FROM tasks WHERE id > ?1 AND grp = ?3 ORDER BY id"
                     " LIMIT ?2",
    [Q_LIST_DONE] = "SELECT " COLS " FROM tasks WHERE id > ?1 AND state = 'done'"
                    " AND (?3 IS NULL OR grp = ?3) ORDER BY id LIMIT ?2",
    [Q_IDS_PENDING] = "SELECT id FROM tasks WHERE grp = ?3 AND state = 'pending' AND id > ?1"
                      " ORDER BY id LIMIT ?2",
    [Q_IDS_HELD] = "SELECT id FROM tasks WHERE grp = ?3 AND held = ?4 AND id > ?1"
                   " ORDER BY id LIMIT ?2",
};

int sq_err(struct store *s, const char *op)
{
	return store_fail_msg(s, "%s: %s (%s)", op, sqlite3_errmsg(s->sql->db), s->sql->path);
}

/* Step a statement that returns no rows, and reset it. */
int sq_run(struct store *s, int qi, const char *op)
{
	sqlite3_stmt *st = s->sql->q[qi];
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? 0 : sq_err(s, op);
	sqlite3_reset(st);
	return ret;
}

void sq_bind_text(sqlite3_stmt *st, int i, const char *text)
{
	if (text)
		sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

void sq_rollback(struct store_sql *q)
{
	if (!sqlite3_get_autocommit(q->db))
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	q->npush = q->nack = q->wlen = 0; /* they were the batch's */
}

/* The index of group name, created if new; -1 when out of memory. */
int sq_group_add(struct store_sql *q, const char *name)
{
	int gi = name_map_add(&q->names, name);
	if (gi < 0 || (size_t)gi < q->gcap)
		return gi;
	size_t cap = q->gcap ? q->gcap * 2 : 8;
	struct sgroup *v = realloc(q->groups, cap * sizeof(*v));
	if (!v)
		return -1;
	memset(v + q->gcap, 0, (cap - q->gcap) * sizeof(*v));
	for (size_t i = q->gcap; i < cap; i++)
		v[i].promoted = -DBL_MAX;
	q->groups = v;
	q->gcap = cap;
	return gi;
}

void sq_count_move(struct store_sql *q, int gi, enum task_state from, enum task_state to)
{
	q->groups[gi].n[from]--;
	q->groups[gi].n[to]++;
}

/* Rebuild the memory from the database: one pass over every task. */
int sq_reload(struct store *s)
{
	struct store_sql *q = s->sql;
	for (size_t i = 0; i < q->names.len; i++) {
		memset(q->groups[i].n, 0, sizeof(q->groups[i].n));
		id_queue_clear(&q->groups[i].waiting);
		q->groups[i].due.len = 0;
		q->groups[i].promoted = -DBL_MAX;
	}
	run_map_free(&q->running);
	/* A rollback may have undone the last reservation of leases, which
	 * were handed out since: reserve again, with the next take. */
	if (q->next_lease)
		q->lease_limit = q->next_lease - 1;
	sqlite3_stmt *st = q->q[Q_SCAN];
	int rc, gi = -1;
	const char *msg = NULL;
	q->next_id = 1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_int64(st, 0) >= q->next_id)
			q->next_id = sqlite3_column_int64(st, 0) + 1;
		enum task_state state;
		const char *grp = (const char *)sqlite3_column_text(st, 1);
		if (!grp || task_state_parse((const char *)sqlite3_column_text(st, 2), &state) < 0)
			continue; /* not drover's: leave it alone */
		/* tasks come in runs of one group: skip the hash when we can */
		if (gi < 0 || strcmp(q->names.names[gi], grp) != 0)
			gi = sq_group_add(q, grp);
		if (gi < 0) {
			msg = "out of memory";
			break;
		}
		q->groups[gi].n[state]++;
		if (state == TASK_PENDING &&
		    id_queue_push(&q->groups[gi].waiting, sqlite3_column_int64(st, 0)) < 0) {
			msg = "out of memory";
			break;
		}
		if (state != TASK_RUNNING)
			continue;
		if (run_map_reserve(&q->running, 1) < 0) {
			msg = "out of memory";
			break;
		}
		run_map_put(&q->running, (struct run_entry){
		                             .id = sqlite3_column_int64(st, 0),
		                             .lease = (uint64_t)sqlite3_column_int64(st, 3),
		                             .group = gi,
		                             .attempts = sqlite3_column_int(st, 4),
		                         });
	}
	if (msg)
		store_fail_msg(s, "store: %s reading the tasks of %s", msg, q->path);
	else if (rc != SQLITE_DONE)
		sq_err(s, "store: reading the tasks");
	sqlite3_reset(st);
	if (msg || rc != SQLITE_DONE)
		return -1;
	q->stale = false;
	return 0;
}

/* Before a push or an ack, which may be buffered: no failed batch, memory
 * up to date. */
int sq_ready_to_buffer(struct store *s, const char *op)
{
	struct store_sql *q = s->sql;
	if (s->batch && q->broken)
		return store_fail_msg(s, "%s: the batch failed (%s); store_commit rolls it back",
		                      op, q->why);
	if (q->stale && (sq_flush_writes(s) < 0 || sq_reload(s) < 0))
		return -1;
	return 0;
}

/* Before any other operation: the same, and the buffered writes made, as
 * it may read what they write. */
int sq_ready(struct store *s, bool write, const char *op)
{
	struct store_sql *q = s->sql;
	if (write && s->batch && q->broken)
		return store_fail_msg(s, "%s: the batch failed (%s); store_commit rolls it back",
		                      op, q->why);
	if (sq_flush_writes(s) < 0 || (q->stale && sq_reload(s) < 0))
		return -1;
	return 0;
}

/* Multi-statement operations run in a transaction of their own outside a
 * batch, inside the batch's otherwise. */
int sq_tx_open(struct store *s, bool *own, const char *op)
{
	*own = !s->batch;
	return *own ? sq_run(s, Q_BEGIN, op) : 0;
}

int sq_tx_close(struct store *s, bool own, const char *op)
{
	if (!own || sq_run(s, Q_COMMIT, op) == 0)
		return 0;
	sq_rollback(s->sql);
	s->sql->stale = true;
	return -1;
}

/* After a failed write: undo what can be undone, and remember the rest. A
 * failure part way through (partial) spoils the batch, as does SQLite
 * rolling the whole transaction back on its own (disk full, I/O error):
 * the batch can no longer be committed as the caller believes it is. */
int sq_tx_abort(struct store *s, bool own, bool partial)
{
	struct store_sql *q = s->sql;
	if (own)
		sq_rollback(q);
	if (!own && s->batch && !q->broken && (partial || sqlite3_get_autocommit(q->db))) {
		q->broken = true;
		snprintf(q->why, sizeof(q->why), "%s", s->err);
	}
	if (own || partial || q->broken)
		q->stale = true;
	return -1;
}

static int setup(struct store *s, bool sync_full)
{
	struct store_sql *q = s->sql;
	const char *path = q->path;
	/* another writer (an operator's sqlite3) holds the lock: wait a
	 * little, inside the event loop, then fail; the dispatcher rests and
	 * tries again, and supervising goes on meanwhile */
	sqlite3_busy_timeout(q->db, 250);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return sq_err(s, "store_open: setting WAL mode");
	}
	const char *mode = (const char *)sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "wal") != 0) {
		store_fail_msg(s, "store_open: %s cannot use WAL mode (journal_mode stays %s)",
		               path, mode ? mode : "?");
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	const char *sync = sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
	if (sqlite3_exec(q->db, sync, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return sq_err(s, "store_open");
	if (sqlite3_exec(q->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_err(s, "store_open: creating the schema");
	sqlite3_int64 version = 0, lease = 0;
	if (sqlite3_prepare_v2(q->db, "SELECT key, value FROM meta", -1, &st, NULL) != SQLITE_OK)
		return sq_err(s, "store_open: reading meta");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		if (key && strcmp(key, "schema") == 0)
			version = sqlite3_column_int64(st, 1);
		else if (key && strcmp(key, "lease") == 0)
			lease = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (version == 0 && sqlite3_exec(q->db, fresh_sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_err(s, "store_open: creating the schema");
	if (version == 1 && sqlite3_exec(q->db, upgrade_sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_err(s, "store_open: upgrading the schema from version 1");
	if (version == 0 || version == 1)
		version = SCHEMA_VERSION;
	if (version != SCHEMA_VERSION)
		return store_fail_msg(s,
		                      "store_open: %s has task schema version %lld, this drover "
		                      "knows %d",
		                      path, (long long)version, SCHEMA_VERSION);
	for (int i = 0; i < Q__COUNT; i++)
		if (sqlite3_prepare_v3(q->db, sq_queries[i], -1, SQLITE_PREPARE_PERSISTENT,
		                       &q->q[i], NULL) != SQLITE_OK)
			return sq_err(s, "store_open: preparing a statement");
	if (sq_prepare_many(s) < 0 || sq_reload(s) < 0)
		return -1;
	/* reserve the first block of leases before any is handed out */
	q->next_lease = (uint64_t)lease + 1;
	q->lease_limit = (uint64_t)lease + LEASE_BLOCK;
	sqlite3_bind_int64(q->q[Q_LEASE], 1, (sqlite3_int64)q->lease_limit);
	if (sq_run(s, Q_LEASE, "store_open: reserving leases") < 0)
		return -1;
	if (sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return sq_err(s, "store_open");
	return 0;
}

int store_sqlite_open(struct store *s, const char *path, bool sync_full)
{
	struct store_sql *q = calloc(1, sizeof(*q));
	if (!q || !(q->path = strdup(path))) {
		free(q);
		return store_fail_msg(s, "store_open: out of memory");
	}
	s->sql = q;
	/* before SQLite starts: no global memory statistics (a mutex and
	 * counters on every allocation, ~8% of a task) */
	static bool configured;
	if (!configured) {
		sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
		configured = true;
	}
	/* The unix VFS opens the database, -wal and -shm with O_CLOEXEC
	 * (tests/unit/test_store.c checks). NOMUTEX: one thread uses it. */
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
	            SQLITE_OPEN_EXRESCODE;
	int rc = sqlite3_open_v2(path, &q->db, flags, NULL);
	if (rc != SQLITE_OK) {
		if (q->db)
			sq_err(s, "store_open");
		else
			store_fail_msg(s, "store_open: out of memory (%s)", path);
	} else if (setup(s, sync_full) < 0) {
		rc = SQLITE_ERROR;
		sq_rollback(q);
	}
	if (rc != SQLITE_OK) {
		store_sqlite_close(s);
		return -1;
	}
	return 0;
}

void store_sqlite_close(struct store *s)
{
	struct store_sql *q = s->sql;
	if (!q)
		return;
	for (int i = 0; i < Q__COUNT; i++)
		sqlite3_finalize(q->q[i]);
	sqlite3_finalize(q->push_many);
	sqlite3_finalize(q->ack_many);
	/* an open batch is rolled back, as a crash would (buffered writes too) */
	sqlite3_close(q->db);
	for (size_t i = 0; i < q->names.len; i++) {
		id_heap_free(&q->groups[i].due);
		id_queue_free(&q->groups[i].waiting);
	}
	free(q->groups);
	name_map_free(&q->names);
	run_map_free(&q->running);
	free(q->picks);
	free(q->scratch);
	free(q->pushes);
	free(q->acks);
	free(q->wbuf);
	free(q->path);
	free(q);
	s->sql = NULL;
}

int store_sqlite_begin(struct store *s)
{
	struct store_sql *q = s->sql;
	if (q->stale && sq_reload(s) < 0)
		return -1;
	q->broken = false;
	return sq_run(s, Q_BEGIN, "store_begin");
}

bool store_sqlite_spoilt(const struct store *s)
{
	return s->sql->broken;
}

int store_sqlite_commit(struct store *s)
{
	struct store_sql *q = s->sql;
	if (sq_flush_writes(s) < 0 && !q->broken) {
		/* spoilt (sq_tx_abort marks it so): roll back, never commit */
		q->broken = true;
		snprintf(q->why, sizeof(q->why), "%s", s->err);
	}
	if (q->broken) {
		sq_rollback(q);
		q->broken = false;
		q->stale = true;
		return store_fail_msg(s, "store_commit: the batch was rolled back: %s", q->why);
	}
	if (sq_run(s, Q_COMMIT, "store_commit") == 0)
		return 0;
	sq_rollback(q);
	q->stale = true;
	return -1;
}
