/* Inside the SQLite backend: the handle, the statements by name, and the
 * helpers its three files share (store_sqlite.c: schema, open, reload and
 * transactions; store_sqlite_hot.c: push, take, ack and the buffered
 * writes; store_sqlite_admin.c: recovery and the operators' calls). */
#ifndef DROVER_STORE_SQLITE_INTERNAL_H
#define DROVER_STORE_SQLITE_INTERNAL_H

#include <sqlite3.h>

#include "store_internal.h"

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

/* Leases are reserved in meta this many at a time: unique across restarts
 * without a meta write per take. */
#define LEASE_BLOCK 1048576

/* the statements, by the enum above, prepared at open */
extern const char *const sq_queries[Q__COUNT];

/* The error of the last SQLite call, as the store's sentence; -1. */
int sq_err(struct store *s, const char *op);
/* Step statement qi (no rows), and reset it: 0 or -1. */
int sq_run(struct store *s, int qi, const char *op);
void sq_bind_text(sqlite3_stmt *st, int i, const char *text);
/* Roll the open transaction back, buffered writes and all. */
void sq_rollback(struct store_sql *q);
/* The index of group name, created if new; -1 when out of memory. */
int sq_group_add(struct store_sql *q, const char *name);
void sq_count_move(struct store_sql *q, int gi, enum task_state from, enum task_state to);
/* Rebuild the memory from the database: one pass over every task. */
int sq_reload(struct store *s);
/* Before a push or an ack, which may be buffered: no failed batch, memory
 * up to date. 0 or -1. */
int sq_ready_to_buffer(struct store *s, const char *op);
/* Before any other operation: the same, and the buffered writes made, as
 * it may read what they write. 0 or -1. */
int sq_ready(struct store *s, bool write, const char *op);
/* Multi-statement operations run in a transaction of their own outside a
 * batch (own), inside the batch's otherwise. */
int sq_tx_open(struct store *s, bool *own, const char *op);
int sq_tx_close(struct store *s, bool own, const char *op);
/* After a failed write: undo what can be undone, remember the rest; -1. */
int sq_tx_abort(struct store *s, bool own, bool partial);

/* store_sqlite_hot.c: the buffered writes. */
int sq_prepare_many(struct store *s);
int sq_flush_writes(struct store *s);
int sq_flush_pushes(struct store *s);

#endif
