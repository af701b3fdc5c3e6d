/* The SQLite backend: one WAL database, every statement prepared once at
 * open, a batch (store_begin .. store_commit) is one transaction.
 *
 * Beside the database the backend keeps in memory, rebuilt by one scan at
 * open and after any rollback:
 * - per group, the count of tasks in each state: store_counts and the
 *   "anything to take?" test cost nothing;
 * - per group, the ids of failed tasks whose not_before has come (take);
 * - every running task with its group, lease and attempts: ack, fail and
 *   requeue write without reading first, and a stale lease is answered
 *   without touching the database at all.
 * So the backend assumes it is the only writer while drover runs: ops may
 * read the file with the sqlite3 tool at any time, but change it only while
 * drover is stopped.
 *
 * The hot path (push, take, ack) costs one statement per task and touches
 * one index entry per task over its whole life: only pending tasks are in
 * the queue index, only failed/dead/cancelled ones in the operators' index,
 * and running and done tasks in none (docs/store.md has the measurements
 * behind this, the schema and the loss window of each sync mode). Every
 * write is OR FAIL: a single-row statement that fails changes nothing, and
 * SQLite then needs no statement journal, which it would otherwise allocate
 * and free for each statement (that alone halved the throughput). */
#include "store_internal.h"

#include <float.h>
#include <sqlite3.h>
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

/* Leases are reserved in meta this many at a time: unique across restarts
 * without a meta write per take. */
#define LEASE_BLOCK 1048576

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

enum {
	Q_BEGIN,
	Q_COMMIT,
	Q_PUSH_ID,
	Q_PENDING,
	Q_PROMOTE,
	Q_GET,
	Q_DUE_ROW,
	Q_MARK_RANGE,
	Q_MARK,
	Q_LEASE,
	Q_ACK,
	Q_FAIL,
	Q_REQUEUE,
	Q_RECOVER,
	Q_MARK_SENT,
	Q_FORGET_SENT,
	Q_HEAD,
	Q_CANCEL_ID,
	Q_CANCEL_PENDING,
	Q_CANCEL_FAILED,
	Q_RETRY_ID,
	Q_RETRY_DEAD,
	Q_RETRY_CANCELLED,
	Q_SCAN,
	Q_LIST,
	Q_LIST_GROUP,
	Q_LIST_DONE,
	Q_IDS_PENDING,
	Q_IDS_HELD,
	Q__COUNT
};

static const char *const queries[Q__COUNT] = {
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

struct sgroup {
	long long n[TASK__COUNT];
	/* its pending tasks by id: the queue the table no longer indexes */
	struct id_queue waiting;
	/* Failed tasks whose not_before has come, lowest id first: every
	 * failed task with not_before <= promoted is in it (or was taken). */
	struct id_heap due;
	double promoted;
};

/* A push or an ack waiting for flush_writes; its bytes are at wbuf + off. */
struct buffered {
	int64_t id;
	uint64_t lease; /* ack */
	int group;      /* push */
	size_t off, len;
	bool null; /* ack: no result at all */
	double at; /* created, finished */
};

/* Rows per multi-row INSERT or UPDATE: one statement's overhead spread
 * over many tasks (docs/store.md, "Throughput") */
#define WRITE_BATCH 32
/* buffered writes made at once when they reach this many */
#define WRITE_BUFFER 512

/* A task a take is about to mark running; its payload is at scratch + off. */
struct pick {
	int64_t id;
	size_t off, len;
	int attempts; /* before this take */
	bool failed;  /* a retry whose time has come (else pending) */
};

struct store_sql {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *q[Q__COUNT];
	struct name_map names;
	struct sgroup *groups; /* by name index */
	size_t gcap;
	struct run_map running;
	bool stale;  /* the memory above no longer matches the database: reload */
	bool broken; /* the open batch failed part way: commit rolls it back */
	char why[512];
	uint64_t next_lease, lease_limit; /* leases <= lease_limit are reserved */
	/* what the current take picked, and their payloads (the lease's
	 * payload points here until the next call) */
	struct pick *picks;
	size_t pickcap;
	char *scratch;
	size_t scratch_len, scratch_cap;
	/* writes of the open batch not yet made (see flush_writes), their
	 * payloads and results in wbuf */
	struct buffered *pushes, *acks;
	size_t npush, pushcap, nack, ackcap;
	char *wbuf;
	size_t wlen, wcap;
	int64_t next_id;                    /* the id the next push gets */
	sqlite3_stmt *push_many, *ack_many; /* WRITE_BATCH rows each */
};

static int db_err(struct store *s, const char *op)
{
	return store_fail_msg(s, "%s: %s (%s)", op, sqlite3_errmsg(s->sql->db), s->sql->path);
}

/* Step a statement that returns no rows, and reset it. */
static int run(struct store *s, int qi, const char *op)
{
	sqlite3_stmt *st = s->sql->q[qi];
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? 0 : db_err(s, op);
	sqlite3_reset(st);
	return ret;
}

static void bind_text(sqlite3_stmt *st, int i, const char *text)
{
	if (text)
		sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void rollback(struct store_sql *q)
{
	if (!sqlite3_get_autocommit(q->db))
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	q->npush = q->nack = q->wlen = 0; /* they were the batch's */
}

/* The index of group name, created if new; -1 when out of memory. */
static int group_add(struct store_sql *q, const char *name)
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

static void count_move(struct store_sql *q, int gi, enum task_state from, enum task_state to)
{
	q->groups[gi].n[from]--;
	q->groups[gi].n[to]++;
}

/* Rebuild the memory from the database: one pass over every task. */
static int reload(struct store *s)
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
			gi = group_add(q, grp);
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
		db_err(s, "store: reading the tasks");
	sqlite3_reset(st);
	if (msg || rc != SQLITE_DONE)
		return -1;
	q->stale = false;
	return 0;
}

static int flush_writes(struct store *s);
static int prepare_many(struct store *s);
static int flush_pushes_only(struct store *s);

/* Before a push or an ack, which may be buffered: no failed batch, memory
 * up to date. */
static int ready_to_buffer(struct store *s, const char *op)
{
	struct store_sql *q = s->sql;
	if (s->batch && q->broken)
		return store_fail_msg(s, "%s: the batch failed (%s); store_commit rolls it back",
		                      op, q->why);
	if (q->stale && (flush_writes(s) < 0 || reload(s) < 0))
		return -1;
	return 0;
}

/* Before any other operation: the same, and the buffered writes made, as
 * it may read what they write. */
static int ready(struct store *s, bool write, const char *op)
{
	struct store_sql *q = s->sql;
	if (write && s->batch && q->broken)
		return store_fail_msg(s, "%s: the batch failed (%s); store_commit rolls it back",
		                      op, q->why);
	if (flush_writes(s) < 0 || (q->stale && reload(s) < 0))
		return -1;
	return 0;
}

/* Multi-statement operations run in a transaction of their own outside a
 * batch, inside the batch's otherwise. */
static int tx_open(struct store *s, bool *own, const char *op)
{
	*own = !s->batch;
	return *own ? run(s, Q_BEGIN, op) : 0;
}

static int tx_close(struct store *s, bool own, const char *op)
{
	if (!own || run(s, Q_COMMIT, op) == 0)
		return 0;
	rollback(s->sql);
	s->sql->stale = true;
	return -1;
}

/* After a failed write: undo what can be undone, and remember the rest. A
 * failure part way through (partial) spoils the batch, as does SQLite
 * rolling the whole transaction back on its own (disk full, I/O error):
 * the batch can no longer be committed as the caller believes it is. */
static int tx_abort(struct store *s, bool own, bool partial)
{
	struct store_sql *q = s->sql;
	if (own)
		rollback(q);
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
	sqlite3_busy_timeout(q->db, 2000);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return db_err(s, "store_open: setting WAL mode");
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
		return db_err(s, "store_open");
	if (sqlite3_exec(q->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, "store_open: creating the schema");
	sqlite3_int64 version = 0, lease = 0;
	if (sqlite3_prepare_v2(q->db, "SELECT key, value FROM meta", -1, &st, NULL) != SQLITE_OK)
		return db_err(s, "store_open: reading meta");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		if (key && strcmp(key, "schema") == 0)
			version = sqlite3_column_int64(st, 1);
		else if (key && strcmp(key, "lease") == 0)
			lease = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (version == 0 && sqlite3_exec(q->db, fresh_sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, "store_open: creating the schema");
	if (version == 1 && sqlite3_exec(q->db, upgrade_sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, "store_open: upgrading the schema from version 1");
	if (version == 0 || version == 1)
		version = SCHEMA_VERSION;
	if (version != SCHEMA_VERSION)
		return store_fail_msg(s,
		                      "store_open: %s has task schema version %lld, this drover "
		                      "knows %d",
		                      path, (long long)version, SCHEMA_VERSION);
	for (int i = 0; i < Q__COUNT; i++)
		if (sqlite3_prepare_v3(q->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &q->q[i],
		                       NULL) != SQLITE_OK)
			return db_err(s, "store_open: preparing a statement");
	if (prepare_many(s) < 0 || reload(s) < 0)
		return -1;
	/* reserve the first block of leases before any is handed out */
	q->next_lease = (uint64_t)lease + 1;
	q->lease_limit = (uint64_t)lease + LEASE_BLOCK;
	sqlite3_bind_int64(q->q[Q_LEASE], 1, (sqlite3_int64)q->lease_limit);
	if (run(s, Q_LEASE, "store_open: reserving leases") < 0)
		return -1;
	if (sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(s, "store_open");
	return 0;
}

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
	if (q->wlen + len > q->wcap) {
		size_t cap = q->wcap ? q->wcap : 65536;
		while (cap < q->wlen + len)
			cap *= 2;
		char *b = realloc(q->wbuf, cap);
		if (!b)
			return -1;
		q->wbuf = b;
		q->wcap = cap;
	}
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

static int prepare_many(struct store *s)
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
	return rc < 0 ? db_err(s, "store_open: preparing a statement") : 0;
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
		return db_err(s, op);
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

static int flush_writes(struct store *s)
{
	struct store_sql *q = s->sql;
	if (!q->npush && !q->nack)
		return 0;
	int rc = q->broken ? 0 : flush_pushes(s) == 0 && flush_acks(s) == 0 ? 0 : -1;
	q->npush = q->nack = q->wlen = 0;
	return rc < 0 ? tx_abort(s, false, true) : 0;
}

/* A take reads pending rows only, which acks never touch: the pushes go,
 * the acks may keep gathering (their bytes stay where they are in wbuf). */
static int flush_pushes_only(struct store *s)
{
	struct store_sql *q = s->sql;
	if (!q->npush || q->broken)
		return 0;
	int rc = flush_pushes(s);
	q->npush = 0;
	if (!q->nack)
		q->wlen = 0;
	return rc < 0 ? tx_abort(s, false, true) : 0;
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
			db_err(s, "store_open");
		else
			store_fail_msg(s, "store_open: out of memory (%s)", path);
	} else if (setup(s, sync_full) < 0) {
		rc = SQLITE_ERROR;
		rollback(q);
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
	if (q->stale && reload(s) < 0)
		return -1;
	q->broken = false;
	return run(s, Q_BEGIN, "store_begin");
}

int store_sqlite_commit(struct store *s)
{
	struct store_sql *q = s->sql;
	flush_writes(s); /* a failure spoils the batch: rolled back below */
	if (q->broken) {
		rollback(q);
		q->broken = false;
		q->stale = true;
		return store_fail_msg(s, "store_commit: the batch was rolled back: %s", q->why);
	}
	if (run(s, Q_COMMIT, "store_commit") == 0)
		return 0;
	rollback(q);
	q->stale = true;
	return -1;
}

int store_sqlite_push(struct store *s, const char *group, const char *payload, size_t len,
                      int64_t *id)
{
	struct store_sql *q = s->sql;
	if (ready_to_buffer(s, "store_push") < 0)
		return -1;
	int gi = group_add(q, group);
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
		if (q->npush + q->nack >= WRITE_BUFFER && flush_writes(s) < 0)
			return -1;
	} else {
		sqlite3_stmt *st = q->q[Q_PUSH_ID];
		sqlite3_bind_int64(st, 1, b.id);
		sqlite3_bind_text(st, 2, group, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(st, 3, payload, len, SQLITE_STATIC);
		sqlite3_bind_double(st, 4, b.at);
		if (run(s, Q_PUSH_ID, "store_push") < 0)
			return tx_abort(s, false, false);
	}
	*id = q->next_id++;
	if (id_queue_push(&q->groups[gi].waiting, *id) < 0)
		q->stale = true; /* the next call rebuilds the queue from the table */
	q->groups[gi].n[TASK_PENDING]++;
	return 0;
}

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
		return db_err(s, "store_take");
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
			return db_err(s, "store_take");
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
	return run(s, Q_LEASE, "store_take: reserving leases");
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
	int64_t first = 0, last = 0;
	int npending = 0;
	for (int i = 0; i < n; i++)
		if (!picks[i].failed) {
			first = first ? first : picks[i].id;
			last = picks[i].id;
			npending++;
		}
	uint64_t span = npending ? (uint64_t)(last - first) + 1 : 0;
	if (reserve_leases(s, span + (uint64_t)(n - npending)) < 0)
		return -1;
	int64_t base = (int64_t)q->next_lease - first;
	if (npending) {
		sqlite3_stmt *st = q->q[Q_MARK_RANGE];
		sqlite3_bind_int64(st, 1, base);
		bind_text(st, 2, worker);
		sqlite3_bind_double(st, 3, now);
		sqlite3_bind_text(st, 4, q->names.names[gi], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, first);
		sqlite3_bind_int64(st, 6, last);
		if (run(s, Q_MARK_RANGE, "store_take") < 0)
			return -1;
		if (sqlite3_changes(q->db) != npending)
			return store_fail_msg(s, "store_take: %s changed under drover", q->path);
		q->next_lease += span;
	}
	sqlite3_stmt *st = q->q[Q_MARK];
	bind_text(st, 3, worker);
	sqlite3_bind_double(st, 4, now);
	for (int i = 0; i < n; i++) {
		const struct pick *p = &picks[i];
		uint64_t lease;
		if (!p->failed) {
			lease = (uint64_t)(base + p->id);
		} else {
			lease = q->next_lease++;
			sqlite3_bind_int64(st, 1, p->id);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)lease);
			if (run(s, Q_MARK, "store_take") < 0)
				return -1;
		}
		count_move(q, gi, p->failed ? TASK_FAILED : TASK_PENDING, TASK_RUNNING);
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
			struct pick *p = &q->picks[*np];
			*p = (struct pick){.id = sqlite3_column_int64(st, 0),
			                   .attempts = sqlite3_column_int(st, 2)};
			if (scratch_add(s, st, 1, p) < 0)
				break;
			++*np;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			if (rc != SQLITE_ROW)
				db_err(s, "store_take");
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
	if (ready_to_buffer(s, "store_take") < 0 || flush_pushes_only(s) < 0)
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
	if (tx_open(s, &own, "store_take") < 0)
		return -1;
	int n = 0;
	if (g->n[TASK_PENDING] && take_pending(s, g, group, &n, max) < 0)
		goto fail;
	if (!g->n[TASK_FAILED])
		g->due.len = 0; /* nothing failed: whatever is left there is stale */
	else if (promote(s, g, group, now) < 0 || merge_due(s, g, now, &n, max) < 0)
		goto fail;
	if (mark_running(s, gi, worker, now, out, n) < 0 || tx_close(s, own, "store_take") < 0)
		goto fail;
	return n;
fail:
	return tx_abort(s, own, true);
}

/* One UPDATE of a running task under its lease (?1 id, ?2 lease, already
 * bound with the rest). 1 applied; 0 if the database disagrees with
 * memory (changed under drover: memory is rebuilt); -1. */
static int run_leased(struct store *s, int qi, const char *op)
{
	if (run(s, qi, op) < 0)
		return tx_abort(s, false, false);
	if (sqlite3_changes(s->sql->db) == 1)
		return 1;
	s->sql->stale = true;
	return 0;
}

int store_sqlite_ack(struct store *s, int64_t id, uint64_t lease, const char *result, size_t len,
                     double now)
{
	struct store_sql *q = s->sql;
	if (ready_to_buffer(s, "store_ack") < 0)
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
		count_move(q, e->group, TASK_RUNNING, TASK_DONE);
		run_map_del(&q->running, id);
		if (q->npush + q->nack >= WRITE_BUFFER && flush_writes(s) < 0)
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
		count_move(q, gi, TASK_RUNNING, TASK_DONE);
		run_map_del(&q->running, id);
	}
	return rc;
}

int store_sqlite_fail(struct store *s, int64_t id, uint64_t lease, const char *error,
                      int max_attempts, double not_before, double now)
{
	struct store_sql *q = s->sql;
	if (ready(s, true, "store_fail") < 0)
		return -1;
	struct run_entry *e = run_map_get(&q->running, id);
	if (!e || e->lease != lease)
		return 0;
	enum task_state to = e->attempts >= max_attempts ? TASK_DEAD : TASK_FAILED;
	sqlite3_stmt *st = q->q[Q_FAIL];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)lease);
	sqlite3_bind_text(st, 3, task_state_name(to), -1, SQLITE_STATIC);
	bind_text(st, 4, error);
	sqlite3_bind_double(st, 5, not_before);
	if (to == TASK_DEAD)
		sqlite3_bind_double(st, 6, now);
	else
		sqlite3_bind_null(st, 6);
	int gi = e->group, rc = run_leased(s, Q_FAIL, "store_fail");
	if (rc == 1) {
		struct sgroup *g = &q->groups[gi];
		count_move(q, gi, TASK_RUNNING, to);
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
	if (ready(s, true, "store_requeue") < 0)
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
		count_move(q, gi, TASK_RUNNING, TASK_PENDING);
		run_map_del(&q->running, id);
		if (id_queue_give_back(&q->groups[gi].waiting, id) < 0)
			q->stale = true;
	}
	return rc;
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

int store_sqlite_mark_sent(struct store *s, const char *worker, uint64_t lease)
{
	struct store_sql *q = s->sql;
	if (ready(s, true, "store_mark_sent") < 0)
		return -1;
	sqlite3_stmt *st = q->q[Q_MARK_SENT];
	sqlite3_bind_text(st, 1, worker, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)lease);
	if (run(s, Q_MARK_SENT, "store_mark_sent") < 0)
		return tx_abort(s, false, false);
	return 0;
}

int store_sqlite_recover(struct store *s)
{
	struct store_sql *q = s->sql;
	bool own;
	if (ready(s, true, "store_recover") < 0)
		return -1;
	int64_t *ids;
	int n = running_ids(s, NULL, 0, &ids);
	if (n <= 0)
		return n;
	if (tx_open(s, &own, "store_recover") < 0) {
		free(ids);
		return -1;
	}
	sqlite3_stmt *st = q->q[Q_RECOVER];
	for (int i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		if (run(s, Q_RECOVER, "store_recover") < 0)
			goto fail;
		int gi = run_map_get(&q->running, ids[i])->group;
		count_move(q, gi, TASK_RUNNING, TASK_PENDING);
		run_map_del(&q->running, ids[i]);
		if (id_queue_give_back(&q->groups[gi].waiting, ids[i]) < 0)
			q->stale = true;
	}
	if (run(s, Q_FORGET_SENT, "store_recover") < 0 || tx_close(s, own, "store_recover") < 0)
		goto fail;
	free(ids);
	return n;
fail:
	free(ids);
	return tx_abort(s, own, true);
}

/* Cancel running task id (known to be in the map). */
static int cancel_running(struct store *s, int64_t id, double now)
{
	struct store_sql *q = s->sql;
	sqlite3_stmt *st = q->q[Q_CANCEL_ID];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_double(st, 2, now);
	if (run(s, Q_CANCEL_ID, "store_cancel") < 0)
		return -1;
	count_move(q, run_map_get(&q->running, id)->group, TASK_RUNNING, TASK_CANCELLED);
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
		return db_err(s, op);
	if (gi < 0 || (state != a && state != b))
		return 0;
	st = q->q[qi];
	sqlite3_bind_int64(st, 1, id);
	if (qi == Q_CANCEL_ID)
		sqlite3_bind_double(st, 2, now);
	if (run(s, qi, op) < 0)
		return -1;
	count_move(q, gi, state, to);
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
				return db_err(s, op);
		} else if (run(s, qi, op) < 0) {
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
	if (ready(s, true, "store_cancel") < 0 || tx_open(s, &own, "store_cancel") < 0)
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
	if (n < 0 || tx_close(s, own, "store_cancel") < 0)
		return tx_abort(s, own, true);
	return n;
}

int store_sqlite_retry(struct store *s, const char *group, int64_t id)
{
	bool own;
	if (ready(s, true, "store_retry") < 0 || tx_open(s, &own, "store_retry") < 0)
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
	if (n < 0 || tx_close(s, own, "store_retry") < 0)
		return tx_abort(s, own, true);
	return n;
}

int store_sqlite_get(struct store *s, int64_t id, struct task *out)
{
	if (ready(s, false, "store_get") < 0)
		return -1;
	sqlite3_stmt *st = s->sql->q[Q_GET];
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_ROW)
		ret = read_row(s, st, out, "store_get") < 0 ? -1 : 1;
	else if (rc != SQLITE_DONE)
		ret = db_err(s, "store_get");
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
			db_err(s, "store_list");
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
		bind_text(st, 3, group);
	int n = 0, rc = SQLITE_DONE;
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (read_row(s, st, &out[n], "store_list") < 0)
			break;
		n++;
	}
	sqlite3_reset(st);
	if (n < max && rc != SQLITE_DONE) {
		if (rc != SQLITE_ROW)
			db_err(s, "store_list");
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
	if (ready(s, false, "store_list") < 0)
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
				db_err(s, "store_list");
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
	if (ready(s, false, "store_counts") < 0)
		return -1;
	for (size_t gi = 0; gi < q->names.len; gi++) {
		if (group && strcmp(group, q->names.names[gi]) != 0)
			continue;
		for (int st = 0; st < TASK__COUNT; st++)
			out->n[st] += q->groups[gi].n[st];
	}
	return 0;
}
