/* The dispatcher: store -> worker stdin, worker stdout -> store.
 *
 * Every loop turn it leases pending tasks to the workers with the fewest
 * (link.c frames and holds them), commits the store's batch when something
 * waits for it, then lets the links write what is committed. With a
 * durable store a commit waits for the disk, so it is not made every turn:
 * only when a submit waits for its reply, an operator's change was made, a
 * worker has nothing committed left to be written, a `wait` may be
 * answered, or the batch is COMMIT_INTERVAL old. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drover/map.h"
#include "drover/policy.h"
#include "queue_internal.h"

#define TAKE_BATCH      256   /* tasks per store_take call at most */
#define EMPTY_RECHECK   0.25  /* seconds before asking an empty queue again */
#define STALL_WARNING   10.0  /* seconds without a result before saying so */
#define COMMIT_INTERVAL 0.010 /* seconds an open batch may wait for its commit */
#define REST_FIRST      0.05  /* seconds without new leases after a failed commit */
#define REST_MAX        2.0   /* ... doubling with each failure in a row, up to this */

struct queue_clock queue_clock;

double queue_wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void queue_clock_refresh(void)
{
	queue_clock.mono = supervisor_now();
	queue_clock.wall = queue_wall_now();
}

json_t *queue_fail_reply(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", buf);
}

void queue_store_trouble(struct supervisor *sup, const char *what)
{
	struct queue_state *qs = sup->queue;
	if (qs && qs->in_batch && store_batch_spoilt(sup->store)) {
		/* every later write in a spoilt batch fails the same way: one
		 * line says it (a write that fails alone is told each time) */
		if (qs->trouble_told)
			return;
		qs->trouble_told = true;
	}
	struct event e;
	event_init(&e, EVENT_ERROR, "store");
	event_str(&e, "error", what);
	event_str(&e, "detail", store_error(sup->store));
	supervisor_emit(sup, &e);
}

void queue_protocol_error(struct worker *w, const char *what)
{
	struct event e;
	event_init(&e, EVENT_WARN, "protocol");
	event_str(&e, "worker", w->spec.name);
	event_str(&e, "error", what);
	supervisor_emit(w->sup, &e);
}

/* The store failed to begin or commit a batch, or to write what became
 * of a task. What failed may fail again at once (the same task's result, a
 * full disk): rest rather than spin, holding the write lock, thousands of
 * times a second. A failure within a second of the last rest's end is one
 * more in a row, though small commits between them may succeed; one
 * during a rest changes nothing. */
static void rest_after_failure(struct queue_state *qs)
{
	double now = supervisor_now();
	if (now < qs->resting_until)
		return;
	bool in_a_row = qs->rest > 0 && now - qs->resting_until < 1.0;
	qs->rest = in_a_row ? qs->rest * 2 : REST_FIRST;
	if (qs->rest > REST_MAX)
		qs->rest = REST_MAX;
	qs->resting_until = now + qs->rest;
}

/* A write about a task that no worker holds any more failed: the store
 * still has it running. After the rest, reclaim gives it back. (In a
 * spoilt batch the failed commit does both.) */
static void task_orphaned(struct supervisor *sup)
{
	if (sup->queue->in_batch && store_batch_spoilt(sup->store))
		return;
	sup->queue->reclaim_due = true;
	rest_after_failure(sup->queue);
}

void queue_batch(struct supervisor *sup)
{
	struct queue_state *qs = sup->queue;
	if (qs->in_batch)
		return;
	if (store_begin(sup->store) == 0) {
		qs->in_batch = true;
		qs->trouble_told = false;
		qs->batch_opened = supervisor_now();
	} else {
		queue_store_trouble(sup, "cannot begin a transaction");
		rest_after_failure(qs);
	}
}

bool queue_durable(const struct supervisor *sup)
{
	return sup->cfg.store == STORE_SQLITE && !sup->opts.store_kind;
}

struct group *queue_find_group(struct supervisor *sup, const char *name)
{
	for (size_t i = 0; i < sup->ngroups; i++)
		if (!sup->groups[i]->removing && !strcmp(sup->groups[i]->name, name))
			return sup->groups[i];
	return NULL;
}

void queue_resync_counts(struct supervisor *sup, struct group *g)
{
	/* the store keeps its counts in memory: asking is cheap and exact */
	if (g->queue && store_counts(sup->store, g->name, &g->queue->counts) < 0)
		queue_store_trouble(sup, "cannot count tasks");
}

/* ---- groups ---- */

void queue_group_init(struct supervisor *sup, struct group *g)
{
	if (g->prog->tasks == TASKS_NONE || g->queue || !sup->store)
		return;
	struct group_queue *q = calloc(1, sizeof(*q));
	if (!q)
		abort();
	q->results_fd = -1;
	g->queue = q;
	if (g->prog->results) {
		q->results_fd =
		    open(g->prog->results, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (q->results_fd < 0) {
			struct event e;
			event_init(&e, EVENT_ERROR, "results");
			event_str(&e, "group", g->name);
			event_str(&e, "path", g->prog->results);
			event_str(&e, "error", strerror(errno));
			supervisor_emit(sup, &e);
		} else {
			results_reconcile(sup, g);
		}
	}
	queue_resync_counts(sup, g);
	if (g->prog->task_source)
		queue_source_start(sup, g);
}

void queue_group_free(struct group *g)
{
	struct group_queue *q = g->queue;
	if (!q)
		return;
	if (q->results_fd >= 0) {
		results_flush(q);
		close(q->results_fd);
	}
	free(q->results_buf);
	free(q);
	g->queue = NULL;
}

/* ---- what became of a task ---- */

static double retry_delay(int attempts)
{
	return policy_retry_delay(attempts, (double)rand() / RAND_MAX);
}

static void count_done(struct group *g, double latency)
{
	struct group_queue *q = g->queue;
	long long sec = (long long)queue_clock.mono;
	if (sec != q->rate_second) {
		/* clear the slots of the seconds that passed without results */
		for (long long s = q->rate_second + 1;
		     s <= sec && s <= q->rate_second + QUEUE_RATE_SLOTS; s++) {
			q->done_per_sec[s % QUEUE_RATE_SLOTS] = 0;
			q->latency_per_sec[s % QUEUE_RATE_SLOTS] = 0;
		}
		q->rate_second = sec;
	}
	q->done_per_sec[sec % QUEUE_RATE_SLOTS]++;
	q->latency_per_sec[sec % QUEUE_RATE_SLOTS] += latency;
}

/* A task failed an attempt: retry later, or dead after task_retries. */
void queue_task_failed(struct worker *w, struct inflight *in, const char *why)
{
	struct supervisor *sup = w->sup;
	struct group *g = w->group;
	int max = g->prog->task_retries + 1;
	queue_batch(sup);
	queue_clock_refresh();
	int rc = store_fail(sup->store, in->id, in->lease, why, max,
	                    queue_clock.wall + retry_delay(in->attempts), queue_clock.wall);
	if (rc < 0) {
		queue_store_trouble(sup, "cannot record a failed task");
		task_orphaned(sup);
	}
	if (rc == 1) {
		bool dead = policy_is_dead(in->attempts, g->prog->task_retries);
		g->queue->next_take = 0;
		if (dead) {
			struct event e;
			event_init(&e, EVENT_WARN, "task");
			event_str(&e, "group", g->name);
			event_int(&e, "id", in->id);
			event_str(&e, "state", "dead");
			event_int(&e, "attempts", in->attempts);
			event_str(&e, "error", why);
			supervisor_emit(sup, &e);
			results_line(g, in->id, in->payload, in->len, NULL, 0, why);
			if (sup->opts.map)
				map_result(sup, in->id, NULL, 0, why);
		}
	}
	free(in->payload);
	in->payload = NULL;
}

void queue_task_done(struct worker *w, struct inflight *in, const char *result, size_t len)
{
	struct supervisor *sup = w->sup;
	queue_batch(sup);
	int rc = store_ack(sup->store, in->id, in->lease, result, len, queue_clock.wall);
	if (rc < 0) {
		queue_store_trouble(sup, "cannot record a result");
		task_orphaned(sup);
	}
	if (rc == 1) {
		count_done(w->group, queue_clock.mono - in->sent);
		w->tasks->done++;
		results_line(w->group, in->id, in->payload, in->len, result, len, NULL);
		if (sup->opts.map)
			map_result(sup, in->id, result, len, NULL);
	}
	free(in->payload);
	in->payload = NULL;
}

/* Back to the head of the queue, the attempt refunded: not its fault. */
void queue_task_return(struct worker *w, struct inflight *in)
{
	struct supervisor *sup = w->sup;
	queue_batch(sup);
	int rc = store_requeue(sup->store, in->id, in->lease, true);
	if (rc == 1 && w->group->queue)
		w->group->queue->next_take = 0;
	if (rc < 0) {
		queue_store_trouble(sup, "cannot give a task back");
		task_orphaned(sup);
	}
	free(in->payload);
	in->payload = NULL;
}

/* ---- dispatch ---- */

/* A worker is leased more once half its room is free, not after every
 * result: fewer, larger takes and writes. */
static bool wants_more(const struct worker *w)
{
	if (!link_usable(w))
		return false;
	int full = w->group->prog->prefetch + link_reserve(w);
	return link_room(w) >= (full + 1) / 2;
}

/* The tail of a queue: a worker with nothing to do while others sit on
 * reserves. Those go back, to be shared out again. */
static void rebalance(struct group *g)
{
	bool idle = false, held = false;
	for (size_t i = 0; i < g->nworkers; i++) {
		struct worker *w = g->workers[i];
		if (!w->tasks)
			continue;
		idle |= link_usable(w) && w->tasks->count == 0;
		held |= link_reserved(w) > 0;
	}
	if (idle && held)
		for (size_t i = 0; i < g->nworkers; i++)
			link_give_back(g->workers[i]);
}

/* Lease up to want tasks of g to w: how many it got (0: the queue had
 * none to give, or the store failed). */
static int lease_to(struct supervisor *sup, struct group *g, struct worker *w, int want, double now)
{
	struct group_queue *q = g->queue;
	struct task_lease got[TAKE_BATCH];
	queue_batch(sup);
	int n = store_take(sup->store, g->name, w->spec.name, queue_clock.wall, got, want);
	if (n < 0)
		queue_store_trouble(sup, "cannot take tasks");
	if (n < want)
		q->next_take = now + EMPTY_RECHECK; /* empty, or only retries not yet due */
	if (n <= 0)
		return 0;
	bool keep_payload = q->results_fd >= 0; /* the results file names the task */
	int lost = 0;
	for (int i = 0; i < n; i++)
		if (link_add(w, &got[i], keep_payload) < 0)
			got[lost++] = got[i]; /* cannot hold it: given back below */
	for (int i = 0; i < lost; i++)
		if (store_requeue(sup->store, got[i].id, got[i].lease, true) < 0) {
			queue_store_trouble(sup, "cannot give a task back");
			task_orphaned(sup);
		}
	if (!queue_durable(sup))
		link_committed(w); /* nothing to wait for */
	return n;
}

static long long pending_of(const struct group_queue *q)
{
	return q->counts.n[TASK_PENDING] + q->counts.n[TASK_FAILED];
}

/* How many to lease to w now: a fair share of what is pending. */
static int share(const struct group_queue *q, size_t capable, const struct worker *w)
{
	int want = policy_batch(pending_of(q), capable, link_room(w));
	return want < TAKE_BATCH ? want : TAKE_BATCH;
}

/* Lease pending tasks to the workers with the fewest. */
static void dispatch_group(struct supervisor *sup, struct group *g, double now)
{
	struct group_queue *q = g->queue;
	if (!q)
		return;
	size_t n_workers = g->nworkers;
	for (size_t i = 0; i < n_workers; i++) {
		struct worker *w = g->workers[i];
		if (w->tasks) {
			link_update_rate(w, now);
			if (!link_usable(w))
				link_give_back(w); /* paused, leaving: the reserve is not theirs */
		}
	}
	queue_resync_counts(sup, g);
	if (pending_of(q) == 0)
		rebalance(g);
	if (now < q->next_take || now < sup->queue->resting_until || !n_workers)
		return;
	int *held = calloc(n_workers, sizeof(*held));
	bool *capable = calloc(n_workers, sizeof(*capable));
	size_t ncapable = 0;
	for (size_t i = 0; held && capable && i < n_workers; i++) {
		capable[i] = wants_more(g->workers[i]);
		held[i] = capable[i] ? (int)g->workers[i]->tasks->count : 0;
		ncapable += capable[i];
	}
	for (int pick; held && capable &&
	               (pick = policy_pick_worker(held, capable, n_workers, INT_MAX)) >= 0;) {
		struct worker *best = g->workers[pick];
		int want = share(q, ncapable, best);
		int n = lease_to(sup, g, best, want, now);
		queue_resync_counts(sup, g);
		held[pick] = (int)best->tasks->count;
		capable[pick] = link_room(best) > 0;
		if (n < want)
			break;
	}
	free(held);
	free(capable);
}

void queue_refill(struct worker *w)
{
	struct supervisor *sup = w->sup;
	struct group_queue *q = w->group->queue;
	if (queue_durable(sup) || !q || sup->shutting_down || !wants_more(w) ||
	    queue_clock.mono < q->next_take || queue_clock.mono < sup->queue->resting_until)
		return;
	size_t capable = 0;
	for (size_t i = 0; i < w->group->nworkers; i++)
		capable += link_usable(w->group->workers[i]);
	queue_resync_counts(sup, w->group);
	for (int want; link_room(w) > 0 && (want = share(q, capable, w)) > 0;) {
		int n = lease_to(sup, w->group, w, want, queue_clock.mono);
		queue_resync_counts(sup, w->group);
		if (n < want)
			break;
	}
}

/* Timeouts and drains; the tick also keeps counters honest. */
static void check_workers(struct group *g, double now)
{
	double timeout = g->prog->task_timeout;
	for (size_t i = 0; i < g->nworkers; i++) {
		struct worker *w = g->workers[i];
		struct task_link *l = w->tasks;
		if (!l || !worker_alive(w))
			continue;
		if (l->draining && (!l->written || now >= l->drain_deadline)) {
			l->draining = false;
			if (w->fsm.state != WORKER_STOPPING)
				worker_event(w, FSM_STOP);
			continue;
		}
		if (w->fsm.state == WORKER_PAUSED) {
			/* the operator holds it: its tasks wait, and the time
			 * paused does not count against task_timeout */
			l->progress = now;
			continue;
		}
		if (timeout <= 0 && l->written && now - l->progress > STALL_WARNING &&
		    !l->stall_warned) {
			/* no task_timeout to act on it: at least say what is wrong */
			l->stall_warned = true;
			queue_protocol_error(w, "no result for 10s with tasks in flight: does the "
			                        "worker flush each result (and read its input "
			                        "without buffering)?");
		}
		if (timeout > 0 && l->written && now - l->progress > timeout &&
		    w->fsm.state == WORKER_RUNNING) {
			/* a stuck task, or a worker that holds its results back */
			char why[128];
			snprintf(why, sizeof(why), "no result within task_timeout=%gs", timeout);
			link_fail_head(w, why);
			queue_protocol_error(w, why);
			w->start_after_stop = true;
			worker_event(w, FSM_STOP);
		}
	}
}

static bool queue_drained(const struct group_queue *q)
{
	/* a task_source command still feeding the queue: more is coming */
	return q->counts.n[TASK_PENDING] == 0 && q->counts.n[TASK_RUNNING] == 0 &&
	       q->counts.n[TASK_FAILED] == 0 && q->source_pid == 0;
}

/* Answer the `wait` requests whose queue is drained (after the commit:
 * "drained" must not be said of uncommitted acks). */
static void release_waiters(struct supervisor *sup)
{
	struct queue_state *qs = sup->queue;
	for (struct waiter **p = &qs->waiters; *p;) {
		struct waiter *wt = *p;
		struct group *g = queue_find_group(sup, wt->group);
		if (g && g->queue && !queue_drained(g->queue)) {
			p = &wt->next;
			continue;
		}
		*p = wt->next;
		json_t *reply;
		if (!g || !g->queue)
			reply = queue_fail_reply("group '%s' went away", wt->group);
		else
			reply = json_pack("{s:b, s:s, s:I, s:I, s:I}", "ok", 1, "group", wt->group,
			                  "done", (json_int_t)g->queue->counts.n[TASK_DONE], "dead",
			                  (json_int_t)g->queue->counts.n[TASK_DEAD], "cancelled",
			                  (json_int_t)g->queue->counts.n[TASK_CANCELLED]);
		wt->fn(wt->arg, reply);
		free(wt->group);
		free(wt);
	}
}

static bool waiter_answerable(struct supervisor *sup)
{
	for (struct waiter *wt = sup->queue->waiters; wt; wt = wt->next) {
		struct group *g = queue_find_group(sup, wt->group);
		if (!g || !g->queue || queue_drained(g->queue))
			return true;
	}
	return false;
}

static void tick_fired(struct loop *loop, struct loop_timer *t)
{
	struct supervisor *sup = t->arg;
	double now = supervisor_now();
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		if (!g->queue)
			continue;
		check_workers(g, now);
		queue_resync_counts(sup, g);
	}
	loop_timer_arm(loop, t, loop_now() + LOOP_NS_PER_SEC / 2);
}

/* ---- the turn ---- */

/* A worker whose committed leases are all written while it holds newer
 * ones: it waits for this commit. */
static bool someone_starves(struct supervisor *sup)
{
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		for (size_t j = 0; g->queue && j < g->nworkers; j++) {
			const struct task_link *l = g->workers[j]->tasks;
			if (l && l->durable < l->count && l->written == l->durable &&
			    l->written < (size_t)g->prog->prefetch && link_usable(g->workers[j]))
				return true;
		}
	}
	return false;
}

static bool commit_due(struct supervisor *sup, double now)
{
	struct queue_state *qs = sup->queue;
	if (!qs->in_batch)
		return false;
	return !queue_durable(sup) || qs->acks || qs->commit_soon || sup->shutting_down ||
	       now - qs->batch_opened >= COMMIT_INTERVAL || someone_starves(sup) ||
	       (qs->waiters && waiter_answerable(sup));
}

/* Tell the store how far each worker was written, so that a crash does not
 * charge an attempt to the tasks it held back. */
static void mark_sent(struct supervisor *sup)
{
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		for (size_t j = 0; g->queue && j < g->nworkers; j++) {
			struct worker *w = g->workers[j];
			struct task_link *l = w->tasks;
			if (!l || !l->count)
				continue;
			uint64_t mark = link_sent_mark(w);
			if (mark == l->marked_lease)
				continue;
			if (store_mark_sent(sup->store, w->spec.name, mark) < 0)
				queue_store_trouble(sup, "cannot record what was sent");
			else
				l->marked_lease = mark;
		}
	}
}

/* Commit now: 0, or -1 (the batch was rolled back). */
static int commit(struct supervisor *sup)
{
	struct queue_state *qs = sup->queue;
	if (queue_durable(sup))
		mark_sent(sup);
	qs->in_batch = false;
	qs->commit_soon = false;
	if (store_commit(sup->store) == 0)
		return 0;
	queue_store_trouble(sup, "commit failed");
	rest_after_failure(qs);
	return -1;
}

static void answer_after_commit(struct supervisor *sup, bool ok)
{
	struct queue_state *qs = sup->queue;
	/* detach first: a reply may let its client send the next submit,
	 * which belongs to the next batch */
	struct pending_reply *acks = qs->acks;
	qs->acks = NULL;
	while (acks) {
		struct pending_reply *r = acks;
		acks = r->next;
		if (!ok) {
			json_decref(r->reply);
			r->reply = queue_fail_reply("the store could not commit: %s",
			                            store_error(sup->store));
		}
		if (r->fn)
			r->fn(r->arg, r->reply);
		else
			json_decref(r->reply);
		free(r);
	}
}

/* The ids of the tasks the workers hold, of every group (a pool removed
 * and added again under its name may still have workers finishing),
 * sorted; NULL with *n = 0 if none (or out of memory: *n = SIZE_MAX). */
static int64_t *held_ids(struct supervisor *sup, size_t *n)
{
	size_t cap = 0;
	int64_t *held = NULL;
	*n = 0;
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		for (size_t j = 0; j < g->nworkers; j++) {
			const struct task_link *l = g->workers[j]->tasks;
			for (size_t k = 0; l && k < l->count; k++) {
				if (*n == cap) {
					cap = cap ? cap * 2 : 256;
					int64_t *v = realloc(held, cap * sizeof(*v));
					if (!v) {
						free(held);
						*n = SIZE_MAX;
						return NULL;
					}
					held = v;
				}
				held[(*n)++] = l->ring[(l->head + k) & (l->cap - 1)].id;
			}
		}
	}
	if (*n)
		qsort(held, *n, sizeof(*held), queue_cmp_id);
	return held;
}

/* g's running tasks that no worker holds, back to the queue: false if the
 * store failed. */
static bool reclaim_group(struct supervisor *sup, struct group *g, const int64_t *held, size_t n)
{
	struct task page[256];
	int64_t after = 0;
	bool ok = true;
	int got;
	while (ok && (got = store_list(sup->store, g->name, TASK_RUNNING, after, page, 256)) != 0) {
		if (got < 0) {
			queue_store_trouble(sup, "cannot list the running tasks");
			return false;
		}
		for (int i = 0; i < got; i++) {
			after = page[i].id;
			if (ok &&
			    (!n || !bsearch(&page[i].id, held, n, sizeof(*held), queue_cmp_id))) {
				queue_batch(sup);
				if (!sup->queue->in_batch ||
				    store_requeue(sup->store, page[i].id, page[i].lease, true) <
				        0) {
					queue_store_trouble(sup, "cannot give a task back");
					ok = false;
				}
				g->queue->next_take = 0;
			}
			task_free(&page[i]);
		}
	}
	return ok;
}

/* After a rollback: acks and give-backs of the batch were undone, so tasks
 * that no worker holds show as running again. Back to the queue with them
 * (their attempt refunded: they did not fail); if the store fails again,
 * once more after the next rest. */
static void reclaim(struct supervisor *sup)
{
	struct queue_state *qs = sup->queue;
	qs->reclaim_due = false;
	size_t n;
	int64_t *held = held_ids(sup, &n);
	bool ok = n != SIZE_MAX;
	if (!ok)
		queue_store_trouble(sup, "out of memory reclaiming tasks");
	for (size_t i = 0; ok && i < sup->ngroups; i++)
		if (sup->groups[i]->queue)
			ok = reclaim_group(sup, sup->groups[i], held, n);
	free(held);
	if (!ok)
		task_orphaned(sup);
}

/* After a commit (ok) or its rollback: replies, results, and the links
 * learn which of their leases are committed or void. */
static void settle(struct supervisor *sup, bool ok)
{
	answer_after_commit(sup, ok);
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		if (!g->queue)
			continue;
		if (ok && g->queue->results_len)
			results_flush(g->queue);
		else if (!ok)
			g->queue->results_len = 0; /* their acks were undone */
		for (size_t j = 0; j < g->nworkers; j++) {
			struct worker *w = g->workers[j];
			if (w->tasks && ok)
				link_committed(w);
			else if (w->tasks)
				link_rollback(w); /* rolled back: those tasks are pending again */
		}
	}
	/* not at once: in the rest, so that on a full disk the give-back does
	 * not fail and roll back every COMMIT_INTERVAL */
	if (!ok)
		sup->queue->reclaim_due = true;
}

void queue_turn(struct supervisor *sup)
{
	struct queue_state *qs = sup->queue;
	if (!qs)
		return;
	queue_clock_refresh();
	double now = queue_clock.mono;
	if (qs->reclaim_due && now >= qs->resting_until)
		reclaim(sup);
	if (!sup->shutting_down)
		for (size_t i = 0; i < sup->ngroups; i++)
			dispatch_group(sup, sup->groups[i], now);
	/* durable before anyone hears of it: leases before bytes reach a
	 * pipe, submits before their reply */
	bool committed = commit_due(sup, now);
	if (committed)
		settle(sup, commit(sup) == 0);
	else if (!qs->in_batch)
		settle(sup, true); /* no batch (store_begin failed): each write was its own */
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		if (!g->queue)
			continue;
		for (size_t j = 0; j < g->nworkers; j++)
			link_release(g->workers[j]);
		queue_resync_counts(sup, g);
	}
	/* the workers are fed: the store's kept writes now, while they work */
	if (qs->in_batch && store_flush(sup->store) < 0)
		queue_store_trouble(sup, "cannot write the batch");
	if (qs->waiters && !qs->in_batch)
		release_waiters(sup);
	/* work that arrived during this turn must not wait for an fd to wake
	 * us, nor a batch for its commit, nor leases for the end of a rest */
	uint64_t wake = UINT64_MAX;
	if (qs->acks || (qs->in_batch && committed))
		wake = 0; /* at once: no clock read */
	else if (qs->in_batch)
		wake = (uint64_t)((qs->batch_opened + COMMIT_INTERVAL) * 1e9);
	else if (now < qs->resting_until)
		wake = (uint64_t)(qs->resting_until * 1e9);
	if (wake != UINT64_MAX && (!loop_timer_armed(&qs->kick) || wake < qs->kick.deadline))
		loop_timer_arm(&sup->loop, &qs->kick, wake);
}

static void kick_fired(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	(void)t; /* the turn's hook does the work */
}

/* ---- open / close ---- */

static bool wants_tasks(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nprograms; i++)
		if (cfg->programs[i].tasks != TASKS_NONE)
			return true;
	return false;
}

int queue_open(struct supervisor *sup, bool force, char *err, size_t errlen)
{
	if (sup->store || (!force && !wants_tasks(&sup->cfg)))
		return 0;
	char path[4096];
	snprintf(path, sizeof(path), "%s/tasks.db", sup->cfg.state_dir);
	const char *kind = sup->cfg.store == STORE_MEMORY ? "memory" : "sqlite";
	if (sup->opts.store_kind)
		kind = sup->opts.store_kind;
	sup->store = store_open(kind, path, sup->cfg.store_sync_full, err, errlen);
	if (!sup->store)
		return -1;
	if (sup->opts.map)
		store_forget_finished(sup->store); /* a stream: nobody asks about it later */
	int recovered = store_recover(sup->store);
	if (recovered > 0) {
		struct event e;
		event_init(&e, EVENT_WARN, "recover");
		event_int(&e, "tasks", recovered);
		event_str(&e, "message",
		          "tasks that were running when drover stopped are pending again");
		supervisor_emit(sup, &e);
	}
	sup->queue = calloc(1, sizeof(*sup->queue));
	if (!sup->queue)
		abort();
	sup->queue->kick.cb = kick_fired;
	sup->queue->tick.cb = tick_fired;
	sup->queue->tick.arg = sup;
	loop_timer_arm(&sup->loop, &sup->queue->tick, loop_now() + LOOP_NS_PER_SEC / 2);
	return 0;
}

void queue_close(struct supervisor *sup)
{
	struct queue_state *qs = sup->queue;
	if (qs) {
		if (qs->in_batch && store_commit(sup->store) < 0)
			queue_store_trouble(sup, "final commit failed");
		while (qs->acks) {
			struct pending_reply *r = qs->acks;
			qs->acks = r->next;
			json_decref(r->reply);
			free(r);
		}
		while (qs->waiters) {
			struct waiter *w = qs->waiters;
			qs->waiters = w->next;
			free(w->group);
			free(w);
		}
		loop_timer_cancel(&sup->loop, &qs->tick);
		loop_timer_cancel(&sup->loop, &qs->kick);
		free(qs);
		sup->queue = NULL;
	}
	if (sup->store)
		store_close(sup->store);
	sup->store = NULL;
}

int queue_push(struct supervisor *sup, struct group *g, const char *text, size_t len, char *err,
               size_t errlen)
{
	if (frame_check_task(g->prog->tasks, text, len, err, errlen) < 0)
		return -1;
	queue_batch(sup);
	int64_t id;
	if (store_push(sup->store, g->name, text, len, &id) < 0) {
		snprintf(err, errlen, "the store failed: %s", store_error(sup->store));
		return -1;
	}
	g->queue->next_take = 0;
	return 0;
}

int queue_commit_now(struct supervisor *sup)
{
	struct queue_state *qs = sup->queue;
	if (qs && qs->reclaim_due)
		reclaim(sup); /* the last chance to refund their attempts */
	if (!qs || !qs->in_batch)
		return 0;
	int rc = commit(sup);
	settle(sup, rc == 0);
	return rc;
}

/* ---- figures ---- */

double queue_rate(const struct group_queue *q, double now)
{
	long long sec = (long long)now, sum = 0;
	for (int i = 0; i < QUEUE_RATE_SLOTS; i++) {
		long long s = sec - i;
		if (s <= q->rate_second && s > q->rate_second - QUEUE_RATE_SLOTS)
			sum += q->done_per_sec[s % QUEUE_RATE_SLOTS];
	}
	return (double)sum / QUEUE_RATE_SLOTS;
}

double queue_latency(const struct group_queue *q, double now)
{
	long long sec = (long long)now, n = 0;
	double total = 0;
	for (int i = 0; i < QUEUE_RATE_SLOTS; i++) {
		long long s = sec - i;
		if (s <= q->rate_second && s > q->rate_second - QUEUE_RATE_SLOTS) {
			n += q->done_per_sec[s % QUEUE_RATE_SLOTS];
			total += q->latency_per_sec[s % QUEUE_RATE_SLOTS];
		}
	}
	return n ? total / (double)n : 0;
}

void queue_emit_events(struct supervisor *sup)
{
	double now = supervisor_now();
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		if (!g->queue)
			continue;
		const struct store_counts *c = &g->queue->counts;
		struct event e;
		event_init(&e, EVENT_INFO, "queue");
		event_str(&e, "group", g->name);
		event_int(&e, "pending", c->n[TASK_PENDING]);
		event_int(&e, "running", c->n[TASK_RUNNING]);
		event_int(&e, "done", c->n[TASK_DONE]);
		event_int(&e, "failed", c->n[TASK_FAILED]);
		event_int(&e, "dead", c->n[TASK_DEAD]);
		event_num(&e, "rate", queue_rate(g->queue, now));
		event_num(&e, "latency", queue_latency(g->queue, now));
		supervisor_emit(sup, &e);
	}
}
