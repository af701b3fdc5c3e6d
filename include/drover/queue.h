/* Task queues for worker pools: the dispatcher between the store and the
 * workers' pipes. Every loop turn it leases pending tasks to the RUNNING,
 * non-paused workers with the fewest (up to `prefetch` at each, and a
 * reserve beyond it for a fast worker with a durable store), commits the
 * store's batch when something waits for it (so a lease is durable before
 * its bytes reach a pipe, and a submit is acknowledged only once durable),
 * then writes. */
#ifndef DROVER_QUEUE_H
#define DROVER_QUEUE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover/framing.h"
#include "drover/loop.h"
#include "drover/store.h"

struct supervisor;
struct worker;
struct group;

struct inflight {
	int64_t id;
	uint64_t lease;
	double sent; /* monotonic seconds it was written; 0 = held back */
	int attempts;
	uint32_t frame; /* bytes of its frame on the wire */
	char *payload;  /* for the results file; NULL without one */
	size_t len;
};

/* The task side of one worker: its stdin pipe and what it was leased. The
 * ring holds those tasks in order:
 *   [0, written)        framed into out: at the worker, or on their way;
 *   [written, durable)  leased and committed, held back: the reserve,
 *                       written as the worker answers, with no commit;
 *   [durable, count)    leased in the open batch: not to reach the pipe
 *                       before the commit.
 * The frames of [written, count) wait in held, in order. */
struct task_link {
	struct worker *worker;
	struct loop_watch in_watch; /* drover's end of the worker's stdin */
	bool want_write;
	char *out;
	size_t outlen, outoff, outcap;
	char *held;
	size_t heldoff, heldlen, heldcap;
	struct inflight *ring;
	size_t head, count, cap;
	size_t written, durable;
	uint64_t marked_lease; /* the sent mark the store was last told of */
	struct line_reader reader;
	double progress; /* last result, or when the first task went out */
	long long done;
	long long rate_from; /* done at rate_since */
	double rate_since, rate;
	bool draining;     /* scaled away: no new tasks, stop once empty */
	bool stall_warned; /* told the log this worker holds results back */
	double drain_deadline;
};

/* Per group: counters kept in step with the store, the rate window, and
 * where results go. */
#define QUEUE_RATE_SLOTS 10
struct group_queue {
	struct store_counts counts;
	long long done_per_sec[QUEUE_RATE_SLOTS];
	double latency_per_sec[QUEUE_RATE_SLOTS];
	long long rate_second; /* the second the slot [rate_second % N] holds */
	int results_fd;        /* -1 = no results file */
	char *results_buf;     /* lines waiting for the commit */
	size_t results_len, results_cap;
	double next_take; /* monotonic: don't ask an empty queue before this */
	/* task_source = !command: its output feeds the queue */
	pid_t source_pid;
	struct loop_watch source_watch;
	struct line_reader source_reader;
	long long source_line, source_pushed;
	struct group *group;
};

/* Open the store when some program takes tasks (or always with force).
 * 0, or -1 with a sentence in err. */
int queue_open(struct supervisor *sup, bool force, char *err, size_t errlen);
void queue_close(struct supervisor *sup);
/* A group was created (start or reload): counters, results file, source. */
void queue_group_init(struct supervisor *sup, struct group *g);
void queue_group_free(struct group *g);

/* Feed the queue from task_source (a file now, or a command's output as it
 * comes), once per state_dir: a marker file remembers it was done. */
void queue_source_start(struct supervisor *sup, struct group *g);
/* The source command (a child of drover) was reaped. */
void queue_source_reaped(struct supervisor *sup, pid_t pid);

/* Add one task to group g now (inside the current batch). 0, or -1 with a
 * sentence in err (bad task, store failure). */
int queue_push(struct supervisor *sup, struct group *g, const char *text, size_t len, char *err,
               size_t errlen);
/* Commit the current batch now (before a marker says it is done). */
int queue_commit_now(struct supervisor *sup);

/* Worker hooks (worker.c): pipes before spawn, results, exit. */
int task_link_pipes(struct worker *w, int *stdin_child);
void task_link_output(struct worker *w, const char *data, size_t n);
/* Its stdout is empty for now: a good moment to give it more. */
void task_link_drained(struct worker *w);
void task_link_eof(struct worker *w);
/* The process is gone: give back what it held. blame: the head of the line
 * takes an attempt (it died on its own), else everything is requeued free. */
void task_link_exited(struct worker *w, bool blame, const char *why);
void task_link_free(struct worker *w);
int task_link_inflight(const struct worker *w);
/* Drain before stopping: true if the worker holds tasks and will be stopped
 * once they are done (or at stopwaitsecs). */
bool task_link_drain(struct worker *w);

/* Once per loop turn (before sleeping). */
void queue_turn(struct supervisor *sup);

/* Control plane. Each returns a reply object; submit and wait may instead
 * return NULL and call done(arg, reply) later (after the commit, or when
 * the queue is drained). */
typedef void (*queue_reply_fn)(void *arg, json_t *reply);
/* with_ids: the reply lists the new tasks' ids (else only their count) */
json_t *queue_submit(struct supervisor *sup, const char *group, json_t *tasks, bool with_ids,
                     queue_reply_fn done, void *arg);
json_t *queue_tasks(struct supervisor *sup, const char *group, const char *state);
json_t *queue_task(struct supervisor *sup, const char *id);
/* cancel / retry: with a callback (done), a reply that says it was done
 * waits for the commit, like a submit's, and NULL is returned; errors,
 * and every reply without a callback, are returned at once. */
json_t *queue_cancel(struct supervisor *sup, const char *target, queue_reply_fn done, void *arg);
json_t *queue_retry(struct supervisor *sup, const char *target, queue_reply_fn done, void *arg);
json_t *queue_wait(struct supervisor *sup, const char *group, queue_reply_fn done, void *arg);
/* A client went away: forget its pending replies. */
void queue_forget(struct supervisor *sup, void *arg);

/* Figures for the snapshot and the headless log. */
double queue_rate(const struct group_queue *q, double now);
double queue_latency(const struct group_queue *q, double now);
void queue_emit_events(struct supervisor *sup);

#endif
