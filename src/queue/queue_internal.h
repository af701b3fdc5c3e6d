/* Inside the queue: what the dispatcher (dispatch.c), the worker's end
 * (link.c) and the control plane (queue_control.c) share. Only
 * src/queue/ includes this. */
#ifndef DROVER_QUEUE_INTERNAL_H
#define DROVER_QUEUE_INTERNAL_H

#include "drover/queue.h"
#include "drover/supervisor.h"

struct pending_reply {
	queue_reply_fn fn;
	void *arg;
	json_t *reply;
	struct pending_reply *next;
};

struct waiter {
	char *group;
	queue_reply_fn fn;
	void *arg;
	struct waiter *next;
};

struct queue_state {
	bool in_batch;
	double batch_opened;        /* monotonic: when the open batch began */
	bool commit_soon;           /* an operator's change: commit this turn */
	struct pending_reply *acks; /* replies waiting for the commit (submit, cancel, retry) */
	/* after a failed commit (a full disk, a trigger, a lock): no new
	 * leases until then, so the store is not hammered, the log not
	 * flooded, and an operator can get at the database */
	double resting_until;
	double rest;
	bool reclaim_due;       /* after a rollback: tasks nobody holds show as running */
	bool trouble_told;      /* the open batch failed and the log says so */
	struct waiter *waiters; /* `wait` requests waiting for a drained queue */
	struct loop_timer tick;
	struct loop_timer kick; /* a turn for work left over, or a due commit */
};

/* The hot path reads the clocks once per batch of results, not per task
 * (clock_gettime was 17% of drover's time at a million tasks a second). */
struct queue_clock {
	double mono, wall;
};
extern struct queue_clock queue_clock;
void queue_clock_refresh(void);
double queue_wall_now(void);

/* Every store write between two commits is one transaction: call before
 * each write. */
void queue_batch(struct supervisor *sup);
/* An error event naming what failed, with the store's sentence. */
void queue_store_trouble(struct supervisor *sup, const char *what);
/* A warning event about a worker that broke the protocol. */
void queue_protocol_error(struct worker *w, const char *what);
json_t *queue_fail_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct group *queue_find_group(struct supervisor *sup, const char *name);
void queue_resync_counts(struct supervisor *sup, struct group *g);
/* Does the store make writes durable at commit (so that leases must be
 * committed before their tasks are written)? */
bool queue_durable(const struct supervisor *sup);

/* What became of a task the worker held (the entry is the caller's to
 * drop): answered, failed an attempt, or given back without running. */
void queue_task_done(struct worker *w, struct inflight *in, const char *result, size_t len);
void queue_task_failed(struct worker *w, struct inflight *in, const char *why);
void queue_task_return(struct worker *w, struct inflight *in);

/* The worker answered and has room: without a commit to wait for (the
 * memory store), lease it more at once, not at the end of the turn. Two
 * workers refilled in the same turn compute in step and answer in step,
 * and the dispatcher then waits for both while both wait for it. */
void queue_refill(struct worker *w);

/* ---- the results file (results.c) ---- */

/* Queue {"id":N,"task":T,"result":R} (or "error") for the group's file. */
void results_line(struct group *g, int64_t id, const char *task, size_t tlen, const char *result,
                  size_t rlen, const char *error);
/* Write what is queued: after the commit that recorded those results. */
void results_flush(struct group_queue *q);
/* qsort/bsearch order of task ids (int64_t). */
int queue_cmp_id(const void *a, const void *b);
/* At start: append what the store finished and the file lacks. */
void results_reconcile(struct supervisor *sup, struct group *g);

/* ---- the worker's end (link.c) ---- */

/* May the worker be given tasks (RUNNING, not paused, leaving or drained,
 * stdin open)? */
bool link_usable(const struct worker *w);
/* Tasks it may still be leased: prefetch at the worker plus its reserve,
 * minus what it holds. */
int link_room(const struct worker *w);
/* Lease one more task to it: framed and held until written. 0 or -ENOMEM. */
int link_add(struct worker *w, const struct task_lease *t, bool keep_payload);
/* The sent mark for the commit being made: the lease of the last task the
 * worker will have been written once that commit is done and its leases
 * released (so a crash after it charges those, and refunds the rest). */
uint64_t link_sent_mark(const struct worker *w);
/* Everything leased so far is committed: it may be written. */
void link_committed(struct worker *w);
/* The commit failed: the leases since the last one are void. */
void link_rollback(struct worker *w);
/* Write held tasks while the worker has room for them, then flush. */
void link_release(struct worker *w);
/* Give back what was leased but never written (the reserve). */
void link_give_back(struct worker *w);
/* Tasks held back, leased but not written. */
size_t link_reserved(const struct worker *w);
/* The oldest task at the worker failed (a timeout): take it off. */
void link_fail_head(struct worker *w, const char *why);
/* Results per second, smoothed, and the reserve it earns: enough leases,
 * committed ahead, to keep it busy until the next commit. */
void link_update_rate(struct worker *w, double now);
int link_reserve(const struct worker *w);

#endif
