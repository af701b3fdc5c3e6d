/* The task store: every task of every group with its state, behind one small
 * interface so that the dispatcher never knows which backend it talks to.
 * Backends: "memory" (same semantics, no durability) and "sqlite" (WAL, one
 * transaction per loop turn). A Redis backend can follow behind the same
 * operations.
 *
 * The contract (shared/RELIABILITY.md):
 * - push is durable once store_commit() returned (group commit);
 * - take moves pending -> running, increments attempts and records the
 *   lease (worker, lease id, deadline) BEFORE the task reaches a worker;
 * - ack / fail apply only if the lease still matches (a late result from a
 *   reassigned lease is reported as a duplicate and changes nothing);
 * - requeue gives a running task back (worker died, drover stopped it),
 *   optionally refunding the attempt (the task was not to blame);
 * - recover (at start) returns every running task to pending: at least once.
 */
#ifndef DROVER_STORE_H
#define DROVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum task_state {
	TASK_PENDING,
	TASK_RUNNING,
	TASK_DONE,
	TASK_FAILED, /* failed an attempt, waiting for its retry (not_before) */
	TASK_DEAD,   /* out of retries: kept, visible, retryable by hand */
	TASK_CANCELLED,
	TASK__COUNT
};

const char *task_state_name(enum task_state s);            /* "pending" ... */
int task_state_parse(const char *s, enum task_state *out); /* 0 or -1 */

struct task {
	int64_t id; /* > 0, unique per store, increasing */
	char *group;
	char *payload; /* NUL-terminated; len excludes the NUL */
	size_t len;
	enum task_state state;
	int attempts;      /* attempts started (charged) so far */
	uint64_t lease;    /* lease id of the current or last run, 0 = none */
	char *worker;      /* worker of the current or last run, NULL = none */
	char *result;      /* done: the worker's answer (NUL-terminated) */
	char *error;       /* failed/dead: the last error */
	double created;    /* wall-clock seconds */
	double started;    /* last take, 0 = never */
	double finished;   /* done/dead/cancelled, 0 = not yet */
	double not_before; /* failed: not to be taken before this time */
};

void task_free(struct task *t); /* frees the members, not t */

struct store_counts {
	long long n[TASK__COUNT];
};

struct store;

/* Open a backend. kind: "memory" or "sqlite"; path: the database file for
 * sqlite (created, WAL), ignored for memory; sync_full: SQLite synchronous
 * FULL (true) or NORMAL. Returns NULL with a sentence in err. */
struct store *store_open(const char *kind, const char *path, bool sync_full, char *err,
                         size_t errlen);
void store_close(struct store *s);

/* From now on finished tasks (done, dead, cancelled) may be dropped rather
 * than kept for get and list: a one-shot stream (drover map) then needs
 * memory for the tasks in flight, not for its whole history. The memory
 * backend drops them; the sqlite backend keeps its file as it is. */
void store_forget_finished(struct store *s);

/* Batching: every write between begin and commit is one transaction. The
 * core calls begin lazily and commit once per loop turn. Calls outside a
 * batch are each their own transaction. 0 or -1 (see store_error). */
int store_begin(struct store *s);
int store_commit(struct store *s);
/* Inside a batch a backend may keep writes and make them together (the
 * sqlite one does, for pushes and acks), before the commit or any call
 * that reads them. This makes them now: the dispatcher says when it has
 * a moment (its workers fed), so that the work does not fall in the middle
 * of reading their results. 0 or -1 (the batch is then spoilt). */
int store_flush(struct store *s);
/* Has the open batch failed part way? Then store_commit rolls it back,
 * and every later write in it fails the same way. */
bool store_batch_spoilt(const struct store *s);
const char *store_error(struct store *s); /* the last error, a sentence */

/* Add a pending task; *id receives its id. */
int store_push(struct store *s, const char *group, const char *payload, size_t len, int64_t *id);

/* What take hands out: what the dispatcher needs to frame a task and to
 * answer for its lease. payload is the store's, not the caller's: it stays
 * valid until the next call on the store, so copy what must live longer. */
struct task_lease {
	int64_t id;
	uint64_t lease;
	int attempts;        /* including this one */
	const char *payload; /* NUL-terminated; len excludes the NUL */
	size_t len;
};

/* Take up to max tasks of group that are pending (or failed with
 * not_before <= now), oldest first (retries keep their place by id), mark
 * them running under a new lease for worker, attempts + 1, started = now.
 * Fills out[] and returns the count, or -1. */
int store_take(struct store *s, const char *group, const char *worker, double now,
               struct task_lease *out, int max);

/* running -> done with result, only if lease matches. Returns 1 applied,
 * 0 duplicate/stale (nothing changed), -1 error. */
int store_ack(struct store *s, int64_t id, uint64_t lease, const char *result, size_t len,
              double now);

/* running -> failed (to be retried at not_before) or dead (when attempts >=
 * max_attempts), with error; lease must match. Returns 1, 0 (stale), -1. */
int store_fail(struct store *s, int64_t id, uint64_t lease, const char *error, int max_attempts,
               double not_before, double now);

/* running -> pending (head of the queue: its id keeps its place), lease must
 * match; refund: attempts - 1 (the task was not to blame). 1, 0, -1. */
int store_requeue(struct store *s, int64_t id, uint64_t lease, bool refund);

/* The tasks leased to worker up to lease (leases grow, so this is a
 * prefix of its leases) have been written to it. A dispatcher that leases
 * ahead says so before each commit: what was leased beyond the mark never
 * reached the worker. */
int store_mark_sent(struct store *s, const char *worker, uint64_t lease);

/* At start: every running task -> pending, its attempt still charged
 * (persisted before dispatch), unless its worker has a sent mark and it was
 * leased beyond it: then it did not run, and gets its attempt back. The
 * marks are forgotten. Returns how many, or -1. */
int store_recover(struct store *s);

/* Operator actions. id > 0: that task; id == 0: every task of group in the
 * states concerned. cancel: pending/failed -> cancelled (a running task is
 * cancelled when its result comes back: it is marked and its result kept
 * out). retry: dead (and cancelled) -> pending with attempts = 0. Return
 * how many changed, or -1. */
int store_cancel(struct store *s, const char *group, int64_t id, double now);
int store_retry(struct store *s, const char *group, int64_t id);

/* One task by id: 1 found, 0 none, -1 error. */
int store_get(struct store *s, int64_t id, struct task *out);
/* Tasks of group (NULL = all groups) in state (-1 = any), newest last,
 * at most max, with id > after (paging). Returns count or -1. */
int store_list(struct store *s, const char *group, int state, int64_t after, struct task *out,
               int max);
/* Count per state for group (NULL = all). 0 or -1. */
int store_counts(struct store *s, const char *group, struct store_counts *out);

#endif
