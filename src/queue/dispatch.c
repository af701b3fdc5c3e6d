/* The dispatcher: store -> worker stdin, worker stdout -> store. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "drover/map.h"
#include "drover/policy.h"
#include "drover/queue.h"
#include "drover/supervisor.h"

#define TAKE_BATCH    256  /* tasks per store_take call at most */
#define EMPTY_RECHECK 0.25 /* seconds before asking an empty queue again */
#define STALL_WARNING 10.0 /* seconds without a result before saying so */
#define PIPE_SIZE     (1 << 20)

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
	bool failed_batch;
	struct pending_reply *acks; /* submits waiting for the commit */
	struct waiter *waiters;     /* `wait` requests waiting for a drained queue */
	struct loop_timer tick;
	struct loop_timer kick; /* an immediate turn for work left over */
};

/* The hot path reads the clocks once per batch of results, not per task
 * (clock_gettime was 17% of drover's time at a million tasks a second). */
static struct {
	double mono, wall;
} clock_now;

static double wall_now(void);

static void clock_refresh(void)
{
	clock_now.mono = supervisor_now();
	clock_now.wall = wall_now();
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *fail_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *fail_reply(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", buf);
}

static void store_trouble(struct supervisor *sup, const char *what)
{
	struct event e;
	event_init(&e, EVENT_ERROR, "store");
	event_str(&e, "error", what);
	event_str(&e, "detail", store_error(sup->store));
	supervisor_emit(sup, &e);
}

/* Every store write between two loop turns is one transaction. */
static void batch(struct supervisor *sup)
{
	struct queue_state *qs = sup->queue;
	if (qs->in_batch)
		return;
	if (store_begin(sup->store) == 0)
		qs->in_batch = true;
	else
		store_trouble(sup, "cannot begin a transaction");
}

static struct group *find_task_group(struct supervisor *sup, const char *name)
{
	for (size_t i = 0; i < sup->ngroups; i++)
		if (!sup->groups[i]->removing && !strcmp(sup->groups[i]->name, name))
			return sup->groups[i];
	return NULL;
}

static void resync_counts(struct supervisor *sup, struct group *g)
{
	/* the store keeps its counts in memory: asking is cheap and exact */
	if (g->queue && store_counts(sup->store, g->name, &g->queue->counts) < 0)
		store_trouble(sup, "cannot count tasks");
}

/* ---- results file ---- */

static void results_append(struct group_queue *q, const char *s, size_t n)
{
	if (q->results_len + n > q->results_cap) {
		size_t cap = q->results_cap ? q->results_cap : 65536;
		while (cap < q->results_len + n)
			cap *= 2;
		char *b = realloc(q->results_buf, cap);
		if (!b)
			return;
		q->results_buf = b;
		q->results_cap = cap;
	}
	memcpy(q->results_buf + q->results_len, s, n);
	q->results_len += n;
}

/* {"id":N,"task":T,"result":R} or {"id":N,"task":T,"error":E}: lines pools
 * give strings, json pools their JSON as it was. */
static void results_line(struct group *g, int64_t id, const char *task, size_t tlen,
                         const char *result, size_t rlen, const char *error)
{
	struct group_queue *q = g->queue;
	if (!q || q->results_fd < 0)
		return;
	bool json = g->prog->tasks == TASKS_JSON;
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(id));
	json_t *t = json ? json_loadb(task, tlen, JSON_DECODE_ANY, NULL) : NULL;
	json_object_set_new(o, "task", t ? t : json_stringn(task, tlen));
	if (error) {
		json_object_set_new(o, "error", json_string(error));
	} else {
		json_t *r = json ? json_loadb(result, rlen, JSON_DECODE_ANY, NULL) : NULL;
		json_object_set_new(o, "result", r ? r : json_stringn(result, rlen));
	}
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return;
	size_t len = strlen(text);
	text[len] = '\n';
	results_append(q, text, len + 1);
	free(text);
}

static void results_flush(struct group_queue *q)
{
	size_t off = 0;
	while (off < q->results_len) {
		ssize_t n = write(q->results_fd, q->results_buf + off, q->results_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	q->results_len = 0;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* After a crash the store may know results the file does not (written
 * after the commit): append those, once, so every done task is in the file
 * exactly once. A torn last line is cut off first. */
static void results_reconcile(struct supervisor *sup, struct group *g)
{
	struct group_queue *q = g->queue;
	FILE *f = fopen(g->prog->results, "re");
	int64_t *ids = NULL;
	size_t nids = 0, cap = 0;
	if (f) {
		char *line = NULL;
		size_t lcap = 0;
		ssize_t n;
		long good = 0;
		while ((n = getline(&line, &lcap, f)) > 0) {
			if (line[n - 1] != '\n')
				break;
			good = ftell(f);
			json_t *o = json_loadb(line, (size_t)n, 0, NULL);
			json_t *id = o ? json_object_get(o, "id") : NULL;
			if (json_is_integer(id)) {
				if (nids == cap) {
					cap = cap ? cap * 2 : 1024;
					int64_t *grown = realloc(ids, cap * sizeof(*ids));
					if (!grown)
						break;
					ids = grown;
				}
				ids[nids++] = json_integer_value(id);
			}
			json_decref(o);
		}
		free(line);
		fclose(f);
		if (ftruncate(q->results_fd, good) < 0)
			store_trouble(sup, "cannot repair the results file");
		if (nids)
			qsort(ids, nids, sizeof(*ids), cmp_id);
	}
	struct task page[256];
	int states[2] = {TASK_DONE, TASK_DEAD};
	for (int s = 0; s < 2; s++) {
		int64_t after = 0;
		int n;
		while ((n = store_list(sup->store, g->name, states[s], after, page, 256)) > 0) {
			for (int i = 0; i < n; i++) {
				struct task *t = &page[i];
				after = t->id;
				if (!nids || !bsearch(&t->id, ids, nids, sizeof(*ids), cmp_id))
					results_line(g, t->id, t->payload, t->len, t->result,
					             t->result ? strlen(t->result) : 0,
					             s ? (t->error ? t->error : "dead") : NULL);
				task_free(t);
			}
			results_flush(q);
		}
	}
	free(ids);
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
	resync_counts(sup, g);
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

/* ---- the worker's end ---- */

static struct task_link *link_of(const struct worker *w)
{
	return w->tasks;
}

int task_link_inflight(const struct worker *w)
{
	return w->tasks ? (int)w->tasks->count : 0;
}

static void link_close_stdin(struct worker *w)
{
	struct task_link *l = link_of(w);
	if (l->in_watch.fd < 0)
		return;
	if (l->want_write)
		loop_watch_del(&w->sup->loop, &l->in_watch);
	close(l->in_watch.fd);
	l->in_watch.fd = -1;
	l->want_write = false;
	l->outlen = l->outoff = 0;
}

static void link_flush(struct worker *w);

static void link_writable(struct loop *loop, struct loop_watch *watch, uint32_t events)
{
	(void)loop;
	(void)events;
	link_flush(watch->arg);
}

/* Write what is queued; on a full pipe, wait for EPOLLOUT. */
static void link_flush(struct worker *w)
{
	struct task_link *l = link_of(w);
	while (l->outoff < l->outlen && l->in_watch.fd >= 0) {
		ssize_t n = write(l->in_watch.fd, l->out + l->outoff, l->outlen - l->outoff);
		if (n > 0) {
			l->outoff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!l->want_write) {
				l->in_watch.cb = link_writable;
				l->in_watch.arg = w;
				if (loop_watch_add(&w->sup->loop, &l->in_watch, EPOLLOUT) == 0)
					l->want_write = true;
			}
			return;
		}
		/* EPIPE: the worker closed its stdin; what it holds comes back
		 * when it exits */
		link_close_stdin(w);
		return;
	}
	l->outoff = l->outlen = 0;
	if (l->want_write) {
		loop_watch_del(&w->sup->loop, &l->in_watch);
		l->want_write = false;
	}
}

int task_link_pipes(struct worker *w, int *stdin_child)
{
	if (!w->tasks) {
		w->tasks = calloc(1, sizeof(*w->tasks));
		if (!w->tasks)
			return -ENOMEM;
		w->tasks->worker = w;
		w->tasks->in_watch.fd = -1;
	}
	struct task_link *l = w->tasks;
	link_close_stdin(w);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	fcntl(fds[0], F_SETFL, 0); /* the worker's end blocks, as stdin should */
	fcntl(fds[1], F_SETPIPE_SZ, PIPE_SIZE);
	l->in_watch.fd = fds[1];
	l->count = l->head = 0;
	l->draining = false;
	l->reader.len = 0;
	l->reader.skipping = false;
	*stdin_child = fds[0];
	return 0;
}

static struct inflight *inflight_at(struct task_link *l, size_t i)
{
	return &l->ring[(l->head + i) & (l->cap - 1)]; /* cap is a power of two */
}

/* A new entry at the tail, for the caller to fill in place (a struct built
 * on the stack and copied in cost a store-forwarding stall per task); NULL
 * when out of memory. */
static struct inflight *inflight_append(struct task_link *l)
{
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct inflight *ring = malloc(cap * sizeof(*ring));
		if (!ring)
			return NULL;
		for (size_t i = 0; i < l->count; i++)
			ring[i] = *inflight_at(l, i);
		free(l->ring);
		l->ring = ring;
		l->cap = cap;
		l->head = 0;
	}
	return inflight_at(l, l->count++);
}

/* Forget the head entry (its task was answered or given back). */
static void inflight_drop_head(struct task_link *l)
{
	l->head = (l->head + 1) & (l->cap - 1);
	l->count--;
}

/* Remove entry i (0 = head), keeping order. */
static struct inflight inflight_remove(struct task_link *l, size_t i)
{
	struct inflight out = *inflight_at(l, i);
	for (size_t k = i; k > 0; k--)
		*inflight_at(l, k) = *inflight_at(l, k - 1);
	l->head = (l->head + 1) & (l->cap - 1);
	l->count--;
	return out;
}

static double retry_delay(int attempts)
{
	return policy_retry_delay(attempts, (double)rand() / RAND_MAX);
}

static void protocol_error(struct worker *w, const char *what)
{
	struct event e;
	event_init(&e, EVENT_WARN, "protocol");
	event_str(&e, "worker", w->spec.name);
	event_str(&e, "error", what);
	supervisor_emit(w->sup, &e);
}

static void count_done(struct group *g, double latency)
{
	struct group_queue *q = g->queue;
	long long sec = (long long)clock_now.mono;
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
static void fail_task(struct worker *w, struct inflight *in, const char *why)
{
	struct supervisor *sup = w->sup;
	struct group *g = w->group;
	int max = g->prog->task_retries + 1;
	batch(sup);
	clock_refresh();
	int rc = store_fail(sup->store, in->id, in->lease, why, max,
	                    clock_now.wall + retry_delay(in->attempts), clock_now.wall);
	if (rc < 0)
		store_trouble(sup, "cannot record a failed task");
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

static void ack_task(struct worker *w, struct inflight *in, const char *result, size_t len)
{
	struct supervisor *sup = w->sup;
	batch(sup);
	int rc = store_ack(sup->store, in->id, in->lease, result, len, clock_now.wall);
	if (rc < 0)
		store_trouble(sup, "cannot record a result");
	if (rc == 1) {
		count_done(w->group, clock_now.mono - in->sent);
		w->tasks->done++;
		results_line(w->group, in->id, in->payload, in->len, result, len, NULL);
		if (sup->opts.map)
			map_result(sup, in->id, result, len, NULL);
	}
	free(in->payload);
	in->payload = NULL;
}

static void on_result_line(void *arg, const char *line, size_t len, bool overflow)
{
	struct worker *w = arg;
	struct task_link *l = w->tasks;
	l->progress = clock_now.mono;
	l->stall_warned = false;
	if (overflow) {
		protocol_error(w, "a result line longer than 16 MiB was dropped");
		if (w->group->prog->tasks == TASKS_LINES && l->count) {
			struct inflight in = inflight_remove(l, 0);
			fail_task(w, &in, "result too long");
		}
		return;
	}
	if (w->group->prog->tasks == TASKS_LINES) {
		if (!l->count) {
			protocol_error(w, "a result line with no task in flight");
			return;
		}
		ack_task(w, inflight_at(l, 0), line, len);
		inflight_drop_head(l);
		return;
	}
	struct json_answer a;
	char err[256];
	if (frame_parse_answer(line, len, &a, err, sizeof(err)) < 0) {
		protocol_error(w, err);
		return;
	}
	size_t i = 0;
	while (i < l->count && inflight_at(l, i)->id != a.id)
		i++;
	if (i == l->count) {
		snprintf(err, sizeof(err), "an answer for task %" PRId64 ", which it does not hold",
		         a.id);
		protocol_error(w, err);
	} else {
		struct inflight in = inflight_remove(l, i);
		if (a.result)
			ack_task(w, &in, a.result, strlen(a.result));
		else
			fail_task(w, &in, a.error);
	}
	free(a.result);
	free(a.error);
}

void task_link_output(struct worker *w, const char *data, size_t n)
{
	clock_refresh();
	if (line_reader_feed(&w->tasks->reader, data, n, on_result_line, w) < 0)
		protocol_error(w, "out of memory reading results");
}

void task_link_eof(struct worker *w)
{
	clock_refresh();
	if (w->tasks)
		line_reader_finish(&w->tasks->reader, on_result_line, w);
}

void task_link_exited(struct worker *w, bool blame, const char *why)
{
	struct task_link *l = w->tasks;
	if (!l)
		return;
	task_link_eof(w);
	link_close_stdin(w);
	struct supervisor *sup = w->sup;
	struct group_queue *q = w->group->queue;
	for (size_t i = 0; l->count; i++) {
		struct inflight in = inflight_remove(l, 0);
		if (i == 0 && blame) {
			char reason[200];
			snprintf(reason, sizeof(reason), "worker %s died: %s", w->spec.name, why);
			fail_task(w, &in, reason);
			continue;
		}
		batch(sup);
		if (store_requeue(sup->store, in.id, in.lease, true) == 1 && q)
			q->next_take = 0;
		free(in.payload);
	}
	l->draining = false;
}

bool task_link_drain(struct worker *w)
{
	struct task_link *l = w->tasks;
	if (!l || !l->count || !worker_alive(w))
		return false;
	l->draining = true;
	l->drain_deadline = supervisor_now() + w->group->prog->stopwaitsecs;
	return true;
}

void task_link_free(struct worker *w)
{
	struct task_link *l = w->tasks;
	if (!l)
		return;
	link_close_stdin(w);
	while (l->count) {
		struct inflight in = inflight_remove(l, 0);
		free(in.payload);
	}
	free(l->ring);
	free(l->out);
	line_reader_free(&l->reader);
	free(l);
	w->tasks = NULL;
}

/* ---- dispatch ---- */

static char *copy_bytes(const char *p, size_t len)
{
	char *d = malloc(len + 1);
	if (d) {
		memcpy(d, p, len);
		d[len] = '\0';
	}
	return d;
}

/* A worker is refilled once half its window is free, not after every
 * result: fewer, larger writes, and it still has work while the next
 * leases commit. */
static bool can_take(const struct worker *w)
{
	const struct task_link *l = w->tasks;
	return l && w->fsm.state == WORKER_RUNNING && !w->retire && !l->draining &&
	       l->in_watch.fd >= 0 && (int)l->count <= w->group->prog->prefetch / 2;
}

/* Hand pending tasks to the workers with the fewest in flight. */
static void dispatch_group(struct supervisor *sup, struct group *g, double now)
{
	struct group_queue *q = g->queue;
	if (!q || now < q->next_take)
		return;
	struct task_lease got[TAKE_BATCH];
	bool keep_payload = q->results_fd >= 0; /* the results file names the task */
	long long pending = q->counts.n[TASK_PENDING] + q->counts.n[TASK_FAILED];
	size_t n_workers = g->nworkers;
	int *inflight = calloc(n_workers ? n_workers : 1, sizeof(*inflight));
	bool *capable = calloc(n_workers ? n_workers : 1, sizeof(*capable));
	size_t ncapable = 0;
	for (size_t i = 0; inflight && capable && i < n_workers; i++) {
		capable[i] = can_take(g->workers[i]);
		inflight[i] = capable[i] ? (int)g->workers[i]->tasks->count : 0;
		ncapable += capable[i];
	}
	for (;;) {
		int pick = inflight && capable
		               ? policy_pick_worker(inflight, capable, n_workers, g->prog->prefetch)
		               : -1;
		if (pick < 0)
			break;
		struct worker *best = g->workers[pick];
		int want = policy_batch(pending, ncapable, g->prog->prefetch - inflight[pick]);
		if (want > TAKE_BATCH)
			want = TAKE_BATCH;
		batch(sup);
		int n = store_take(sup->store, g->name, best->spec.name, clock_now.wall, got, want);
		if (n < 0)
			store_trouble(sup, "cannot take tasks");
		if (n <= 0) {
			q->next_take = now + EMPTY_RECHECK; /* empty, or only retries not yet due */
			break;
		}
		struct task_link *l = best->tasks;
		if (!l->count)
			l->progress = now;
		if (!l->staged) { /* remember what was committed before this turn */
			l->staged = true;
			l->committed_len = l->outlen;
			l->committed_count = l->count;
		}
		int lost = 0;
		for (int i = 0; i < n; i++) {
			const struct task_lease *t = &got[i];
			size_t outlen = l->outlen;
			char *payload = NULL;
			struct inflight *in = NULL;
			if ((keep_payload && !(payload = copy_bytes(t->payload, t->len))) ||
			    frame_task(g->prog->tasks, t->id, t->payload, t->len, &l->out,
			               &l->outlen, &l->outcap) < 0 ||
			    !(in = inflight_append(l))) {
				l->outlen = outlen;
				free(payload);
				got[lost++] = *t; /* cannot hold it: given back below */
				continue;
			}
			in->id = t->id;
			in->lease = t->lease;
			in->sent = now;
			in->attempts = t->attempts;
			in->payload = payload;
			in->len = t->len;
		}
		for (int i = 0; i < lost; i++)
			store_requeue(sup->store, got[i].id, got[i].lease, true);
		pending -= n;
		inflight[pick] = (int)l->count;
		if (n < want) {
			q->next_take = now + EMPTY_RECHECK;
			break;
		}
	}
	free(inflight);
	free(capable);
}

/* Timeouts and drains; the tick also keeps counters honest. */
static void check_workers(struct supervisor *sup, struct group *g, double now)
{
	double timeout = g->prog->task_timeout;
	for (size_t i = 0; i < g->nworkers; i++) {
		struct worker *w = g->workers[i];
		struct task_link *l = w->tasks;
		if (!l || !worker_alive(w))
			continue;
		if (l->draining && (!l->count || now >= l->drain_deadline)) {
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
		if (timeout <= 0 && l->count && now - l->progress > STALL_WARNING &&
		    !l->stall_warned) {
			/* no task_timeout to act on it: at least say what is wrong */
			l->stall_warned = true;
			protocol_error(w,
			               "no result for 10s with tasks in flight: does the worker "
			               "flush each result (and read its input without buffering)?");
		}
		if (timeout > 0 && l->count && now - l->progress > timeout &&
		    w->fsm.state == WORKER_RUNNING) {
			/* a stuck task, or a worker that holds its results back */
			struct inflight in = inflight_remove(l, 0);
			char why[128];
			snprintf(why, sizeof(why), "no result within task_timeout=%gs", timeout);
			fail_task(w, &in, why);
			protocol_error(w, why);
			w->start_after_stop = true;
			worker_event(w, FSM_STOP);
		}
	}
	(void)sup;
}

static bool queue_drained(const struct group_queue *q)
{
	/* a task_source command still feeding the queue: more is coming */
	return q->counts.n[TASK_PENDING] == 0 && q->counts.n[TASK_RUNNING] == 0 &&
	       q->counts.n[TASK_FAILED] == 0 && q->source_pid == 0;
}

static void release_waiters(struct supervisor *sup)
{
	struct queue_state *qs = sup->queue;
	for (struct waiter **p = &qs->waiters; *p;) {
		struct waiter *wt = *p;
		struct group *g = find_task_group(sup, wt->group);
		if (g && g->queue && !queue_drained(g->queue)) {
			p = &wt->next;
			continue;
		}
		*p = wt->next;
		json_t *reply;
		if (!g || !g->queue)
			reply = fail_reply("group '%s' went away", wt->group);
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

static void tick_fired(struct loop *loop, struct loop_timer *t)
{
	struct supervisor *sup = t->arg;
	double now = supervisor_now();
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		if (!g->queue)
			continue;
		check_workers(sup, g, now);
		resync_counts(sup, g);
	}
	/* waiters are released by queue_turn, after the commit and the
	 * results flush: "drained" must not be said of uncommitted acks */
	loop_timer_arm(loop, t, loop_now() + LOOP_NS_PER_SEC / 2);
}

/* Forget the frames and leases of a batch that did not commit. */
static void unstage(struct task_link *l)
{
	l->outlen = l->committed_len;
	if (l->outoff > l->outlen)
		l->outoff = l->outlen;
	while (l->count > l->committed_count) {
		struct inflight *in = inflight_at(l, l->count - 1);
		free(in->payload);
		l->count--;
	}
}

void queue_turn(struct supervisor *sup)
{
	struct queue_state *qs = sup->queue;
	if (!qs)
		return;
	clock_refresh();
	double now = clock_now.mono;
	if (!sup->shutting_down)
		for (size_t i = 0; i < sup->ngroups; i++)
			dispatch_group(sup, sup->groups[i], now);
	/* durable before anyone hears of it: leases before bytes reach a
	 * pipe, submits before their reply */
	bool ok = true;
	if (qs->in_batch) {
		qs->in_batch = false;
		if (store_commit(sup->store) < 0) {
			store_trouble(sup, "commit failed");
			ok = false;
		}
	}
	/* detach first: a reply may let its client send the next submit,
	 * which belongs to the next batch */
	struct pending_reply *acks = qs->acks;
	qs->acks = NULL;
	while (acks) {
		struct pending_reply *r = acks;
		acks = r->next;
		if (!ok) {
			json_decref(r->reply);
			r->reply =
			    fail_reply("the store could not commit: %s", store_error(sup->store));
		}
		if (r->fn)
			r->fn(r->arg, r->reply);
		else
			json_decref(r->reply);
		free(r);
	}
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		if (!g->queue)
			continue;
		if (ok && g->queue->results_len)
			results_flush(g->queue);
		for (size_t j = 0; j < g->nworkers; j++) {
			struct task_link *l = g->workers[j]->tasks;
			if (l && l->staged && !ok)
				unstage(l); /* rolled back: those tasks are pending again */
			if (l)
				l->staged = false;
			if (l && l->outlen)
				link_flush(g->workers[j]);
		}
		resync_counts(sup, g);
	}
	if (qs->waiters)
		release_waiters(sup);
	/* work that arrived during this turn must not wait for an fd to wake us */
	if ((qs->acks || qs->in_batch) && !loop_timer_armed(&qs->kick))
		loop_timer_arm(&sup->loop, &qs->kick, loop_now());
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
			store_trouble(sup, "final commit failed");
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
	batch(sup);
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
	if (!qs || !qs->in_batch)
		return 0;
	qs->in_batch = false;
	return store_commit(sup->store);
}

/* ---- control plane ---- */

static struct group *task_group_or_error(struct supervisor *sup, const char *name, json_t **err)
{
	struct group *g = find_task_group(sup, name);
	if (!g)
		*err = fail_reply("no such group '%s'", name);
	else if (!g->queue)
		*err = fail_reply("group '%s' does not take tasks (tasks = none)", name);
	return g && g->queue ? g : NULL;
}

json_t *queue_submit(struct supervisor *sup, const char *group, json_t *tasks, queue_reply_fn done,
                     void *arg)
{
	json_t *err = NULL;
	struct group *g = task_group_or_error(sup, group, &err);
	if (!g)
		return err;
	if (!json_is_array(tasks))
		return fail_reply("submit: \"tasks\" must be an array");
	size_t i, n = json_array_size(tasks);
	json_t *v;
	/* check them all first: a submit is all or nothing */
	char msg[300];
	json_array_foreach(tasks, i, v)
	{
		if (!json_is_string(v) && g->prog->tasks == TASKS_LINES)
			return fail_reply("submit: task %zu is not a string", i);
		char *text =
		    json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		const char *s = text ? text : json_string_value(v);
		size_t len = text ? strlen(text) : json_string_length(v);
		int bad = frame_check_task(g->prog->tasks, s, len, msg, sizeof(msg));
		free(text);
		if (bad)
			return fail_reply("submit: task %zu: %s", i, msg);
	}
	batch(sup);
	json_t *ids = json_array();
	json_array_foreach(tasks, i, v)
	{
		char *text =
		    json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		const char *s = text ? text : json_string_value(v);
		size_t len = text ? strlen(text) : json_string_length(v);
		int64_t id;
		int rc = store_push(sup->store, g->name, s, len, &id);
		free(text);
		if (rc < 0) {
			json_decref(ids);
			store_trouble(sup, "cannot add a task");
			return fail_reply("submit: the store failed: %s", store_error(sup->store));
		}
		json_array_append_new(ids, json_integer(id));
	}
	g->queue->next_take = 0;
	json_t *reply = json_pack("{s:b, s:s, s:I, s:o}", "ok", 1, "group", g->name, "count",
	                          (json_int_t)n, "ids", ids);
	struct pending_reply *r = malloc(sizeof(*r));
	if (!r)
		abort();
	*r = (struct pending_reply){.fn = done, .arg = arg, .reply = reply, .next = NULL};
	/* keep order: replies go out in the order the requests came */
	struct pending_reply **tail = &sup->queue->acks;
	while (*tail)
		tail = &(*tail)->next;
	*tail = r;
	return NULL;
}

static json_t *task_json(const struct task *t)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(t->id));
	json_object_set_new(o, "group", json_string(t->group));
	json_object_set_new(o, "state", json_string(task_state_name(t->state)));
	json_object_set_new(o, "task", json_stringn(t->payload, t->len));
	json_object_set_new(o, "attempts", json_integer(t->attempts));
	json_object_set_new(o, "worker", t->worker ? json_string(t->worker) : json_null());
	json_object_set_new(o, "result", t->result ? json_string(t->result) : json_null());
	json_object_set_new(o, "error", t->error ? json_string(t->error) : json_null());
	json_object_set_new(o, "created", json_real(t->created));
	json_object_set_new(o, "started", t->started > 0 ? json_real(t->started) : json_null());
	json_object_set_new(o, "finished", t->finished > 0 ? json_real(t->finished) : json_null());
	return o;
}

#define LIST_MAX 1000

json_t *queue_tasks(struct supervisor *sup, const char *group, const char *state)
{
	json_t *err = NULL;
	struct group *g = task_group_or_error(sup, group, &err);
	if (!g)
		return err;
	int st = -1;
	if (state && *state) {
		enum task_state s;
		if (task_state_parse(state, &s) < 0)
			return fail_reply(
			    "tasks: unknown state '%s' (pending, running, done, failed, "
			    "dead, cancelled)",
			    state);
		st = (int)s;
	}
	struct task *page = calloc(LIST_MAX, sizeof(*page));
	if (!page)
		return fail_reply("out of memory");
	int n = store_list(sup->store, g->name, st, 0, page, LIST_MAX);
	if (n < 0) {
		free(page);
		return fail_reply("tasks: %s", store_error(sup->store));
	}
	json_t *list = json_array();
	for (int i = 0; i < n; i++) {
		json_array_append_new(list, task_json(&page[i]));
		task_free(&page[i]);
	}
	free(page);
	resync_counts(sup, g);
	json_t *counts = json_object();
	for (int s = 0; s < TASK__COUNT; s++)
		json_object_set_new(counts, task_state_name((enum task_state)s),
		                    json_integer(g->queue->counts.n[s]));
	return json_pack("{s:b, s:s, s:o, s:o, s:b}", "ok", 1, "group", g->name, "counts", counts,
	                 "tasks", list, "truncated", n == LIST_MAX);
}

static bool parse_id(const char *s, int64_t *id)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v <= 0)
		return false;
	*id = v;
	return true;
}

json_t *queue_task(struct supervisor *sup, const char *id_text)
{
	int64_t id;
	if (!sup->store)
		return fail_reply("no group takes tasks");
	if (!parse_id(id_text, &id))
		return fail_reply("task: '%s' is not a task id", id_text);
	struct task t;
	int rc = store_get(sup->store, id, &t);
	if (rc < 0)
		return fail_reply("task: %s", store_error(sup->store));
	if (rc == 0)
		return fail_reply("no task %" PRId64, id);
	json_t *reply = json_pack("{s:b, s:o}", "ok", 1, "task", task_json(&t));
	task_free(&t);
	return reply;
}

/* cancel / retry: by id, or every task of a group. */
static json_t *operate(struct supervisor *sup, const char *target, bool cancel)
{
	const char *verb = cancel ? "cancel" : "retry";
	if (!sup->store)
		return fail_reply("no group takes tasks");
	int64_t id = 0;
	const char *group = NULL;
	struct group *g = NULL;
	json_t *err = NULL;
	if (!parse_id(target, &id)) {
		g = task_group_or_error(sup, target, &err);
		if (!g)
			return err;
		group = g->name;
	}
	batch(sup);
	int n = cancel ? store_cancel(sup->store, group, id, wall_now())
	               : store_retry(sup->store, group, id);
	if (n < 0)
		return fail_reply("%s: %s", verb, store_error(sup->store));
	if (n == 0 && id)
		return fail_reply("%s: task %" PRId64 " is not %s", verb, id,
		                  cancel ? "pending or failed" : "dead or cancelled");
	for (size_t i = 0; i < sup->ngroups; i++)
		if (sup->groups[i]->queue && (!g || sup->groups[i] == g))
			sup->groups[i]->queue->next_take = 0;
	char msg[128];
	snprintf(msg, sizeof(msg), "%s: %d task%s", verb, n, n == 1 ? "" : "s");
	/* counters catch up after the commit */
	return json_pack("{s:b, s:s, s:i}", "ok", 1, "message", msg, "count", n);
}

json_t *queue_cancel(struct supervisor *sup, const char *target)
{
	return operate(sup, target, true);
}

json_t *queue_retry(struct supervisor *sup, const char *target)
{
	return operate(sup, target, false);
}

json_t *queue_wait(struct supervisor *sup, const char *group, queue_reply_fn done, void *arg)
{
	json_t *err = NULL;
	struct group *g = task_group_or_error(sup, group, &err);
	if (!g)
		return err;
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w || !(w->group = strdup(g->name))) {
		free(w);
		return fail_reply("out of memory");
	}
	w->fn = done;
	w->arg = arg;
	w->next = sup->queue->waiters;
	sup->queue->waiters = w;
	return NULL;
}

void queue_forget(struct supervisor *sup, void *arg)
{
	struct queue_state *qs = sup->queue;
	if (!qs)
		return;
	for (struct waiter **p = &qs->waiters; *p;) {
		struct waiter *w = *p;
		if (w->arg == arg) {
			*p = w->next;
			free(w->group);
			free(w);
		} else {
			p = &w->next;
		}
	}
	for (struct pending_reply *r = qs->acks; r; r = r->next)
		if (r->arg == arg)
			r->fn = NULL; /* its client is gone: still committed, no reply */
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
