/* The worker's end of a task pool: the pipe to its stdin, the tasks leased
 * to it (at the worker, or held back as its reserve), and its results.
 *
 * Why a reserve: with a durable store a lease must be committed before its
 * task reaches the pipe, and a commit waits for the disk (~250 us). A
 * worker that holds only `prefetch` tasks then runs dry at every commit,
 * and the pool moves prefetch tasks per commit, whatever the worker's
 * speed. So a fast worker is leased more than it holds: the leases are
 * committed ahead, and as it answers it is written more from the reserve,
 * with no commit in between. The reserve follows its rate (a slow worker
 * gets none, so that tasks are not parked behind it) and is given back
 * whenever the worker cannot take tasks. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "queue_internal.h"

#define PIPE_SIZE    (1 << 20)
#define RESERVE_TIME 0.05 /* seconds of work leased ahead: a few commit intervals */
#define RESERVE_MAX  8192
#define RATE_PERIOD  0.1 /* seconds between rate updates */

/* ---- the ring of leased tasks ---- */

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

/* Take entry i (< written: at the worker) off, keeping order. The caller
 * uses *in before the next append. */
/* The head entry (written: at the worker) off the ring. */
static void inflight_drop_head(struct task_link *l)
{
	l->head = (l->head + 1) & (l->cap - 1);
	l->count--;
	l->written--;
	l->durable--;
}

static struct inflight inflight_take(struct task_link *l, size_t i)
{
	struct inflight out = *inflight_at(l, i);
	for (size_t k = i; k > 0; k--)
		*inflight_at(l, k) = *inflight_at(l, k - 1);
	inflight_drop_head(l);
	return out;
}

/* The tail entry, which was never written, off. */
static struct inflight inflight_pop_tail(struct task_link *l)
{
	struct inflight out = *inflight_at(l, l->count - 1);
	l->count--;
	if (l->durable > l->count)
		l->durable = l->count;
	l->heldlen -= out.frame;
	return out;
}

/* ---- the pipe ---- */

static struct task_link *link_of(const struct worker *w)
{
	return w->tasks;
}

int task_link_inflight(const struct worker *w)
{
	return w->tasks ? (int)w->tasks->written : 0;
}

size_t link_reserved(const struct worker *w)
{
	return w->tasks ? w->tasks->count - w->tasks->written : 0;
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
	l->count = l->head = l->written = l->durable = 0;
	l->marked_lease = UINT64_MAX; /* the store has not been told: tell it */
	l->heldoff = l->heldlen = 0;
	l->draining = false;
	l->rate = 0;
	l->rate_from = l->done;
	l->rate_since = queue_clock.mono;
	l->reader.len = 0;
	l->reader.skipping = false;
	*stdin_child = fds[0];
	return 0;
}

/* ---- leasing and writing ---- */

bool link_usable(const struct worker *w)
{
	const struct task_link *l = w->tasks;
	return l && w->fsm.state == WORKER_RUNNING && !w->retire && !l->draining &&
	       l->in_watch.fd >= 0;
}

void link_update_rate(struct worker *w, double now)
{
	struct task_link *l = w->tasks;
	double span = now - l->rate_since;
	if (span < RATE_PERIOD)
		return;
	double fresh = (double)(l->done - l->rate_from) / span;
	/* rise at once (a reserve late is throughput lost), fall gently */
	l->rate = fresh > l->rate ? fresh : (l->rate + fresh) / 2;
	l->rate_from = l->done;
	l->rate_since = now;
}

int link_reserve(const struct worker *w)
{
	if (!queue_durable(w->sup))
		return 0; /* nothing to wait for between a lease and its write */
	double r = w->tasks->rate * RESERVE_TIME;
	return r < RESERVE_MAX ? (int)r : RESERVE_MAX;
}

int link_room(const struct worker *w)
{
	const struct task_link *l = w->tasks;
	long room = (long)w->group->prog->prefetch + link_reserve(w) - (long)l->count;
	return room > 0 ? (int)room : 0;
}

int link_add(struct worker *w, const struct task_lease *t, bool keep_payload)
{
	struct task_link *l = w->tasks;
	enum task_protocol proto = w->group->prog->tasks;
	if (l->heldoff && l->heldoff >= l->heldlen / 2) {
		/* what was written from the front is dead weight: slide */
		memmove(l->held, l->held + l->heldoff, l->heldlen - l->heldoff);
		l->heldlen -= l->heldoff;
		l->heldoff = 0;
	}
	size_t before = l->heldlen;
	char *payload = NULL;
	struct inflight *in;
	if (keep_payload) {
		payload = malloc(t->len + 1);
		if (!payload)
			return -ENOMEM;
		memcpy(payload, t->payload, t->len);
		payload[t->len] = '\0';
	}
	if (frame_task(proto, t->id, t->payload, t->len, &l->held, &l->heldlen, &l->heldcap) < 0 ||
	    !(in = inflight_append(l))) {
		l->heldlen = before;
		free(payload);
		return -ENOMEM;
	}
	in->id = t->id;
	in->lease = t->lease;
	in->sent = 0;
	in->attempts = t->attempts;
	in->frame = (uint32_t)(l->heldlen - before);
	in->payload = payload;
	in->len = t->len;
	return 0;
}

uint64_t link_sent_mark(const struct worker *w)
{
	struct task_link *l = w->tasks;
	size_t prefetch = (size_t)w->group->prog->prefetch;
	size_t end = l->count < prefetch ? l->count : prefetch;
	if (end < l->written)
		end = l->written;
	/* leases ascend along the ring (each take's above the last's) */
	return end ? inflight_at(l, end - 1)->lease : 0;
}

void link_committed(struct worker *w)
{
	w->tasks->durable = w->tasks->count;
}

void link_rollback(struct worker *w)
{
	struct task_link *l = w->tasks;
	l->marked_lease = UINT64_MAX; /* the mark was in the batch: say it again */
	while (l->count > l->durable) {
		struct inflight in = inflight_pop_tail(l);
		free(in.payload); /* the rollback made it pending again */
	}
}

void link_release(struct worker *w)
{
	struct task_link *l = link_of(w);
	if (!l || !link_usable(w))
		return;
	size_t prefetch = (size_t)w->group->prog->prefetch;
	size_t end = l->durable < prefetch ? l->durable : prefetch;
	if (l->written < end) {
		size_t bytes = 0;
		for (size_t i = l->written; i < end; i++)
			bytes += inflight_at(l, i)->frame;
		if (frame_reserve(&l->out, &l->outcap, l->outlen + bytes) < 0)
			return; /* they stay held; the next release tries again */
		for (size_t i = l->written; i < end; i++)
			inflight_at(l, i)->sent = queue_clock.mono;
		if (!l->written)
			l->progress = queue_clock.mono;
		memcpy(l->out + l->outlen, l->held + l->heldoff, bytes);
		l->outlen += bytes;
		l->heldoff += bytes;
		if (l->heldoff == l->heldlen)
			l->heldoff = l->heldlen = 0;
		l->written = end;
	}
	if (l->outlen)
		link_flush(w);
}

void link_give_back(struct worker *w)
{
	struct task_link *l = link_of(w);
	while (l && l->count > l->written) {
		struct inflight in = inflight_pop_tail(l);
		queue_task_return(w, &in);
	}
}

void link_fail_head(struct worker *w, const char *why)
{
	struct inflight in = inflight_take(link_of(w), 0);
	queue_task_failed(w, &in, why);
}

/* ---- results ---- */

static void on_result_line(void *arg, const char *line, size_t len, bool overflow)
{
	struct worker *w = arg;
	struct task_link *l = w->tasks;
	l->progress = queue_clock.mono;
	l->stall_warned = false;
	if (overflow) {
		queue_protocol_error(w, "a result line longer than 16 MiB was dropped");
		if (w->group->prog->tasks == TASKS_LINES && l->written)
			link_fail_head(w, "result too long");
		return;
	}
	if (w->group->prog->tasks == TASKS_LINES) {
		if (!l->written) {
			queue_protocol_error(w, "a result line with no task in flight");
			return;
		}
		/* the head is answered in place: no copy on the hot path */
		queue_task_done(w, inflight_at(l, 0), line, len);
		inflight_drop_head(l);
		return;
	}
	struct json_answer a;
	char err[256];
	if (frame_parse_answer(line, len, &a, err, sizeof(err)) < 0) {
		queue_protocol_error(w, err);
		return;
	}
	size_t i = 0;
	while (i < l->written && inflight_at(l, i)->id != a.id)
		i++;
	if (i == l->written) {
		snprintf(err, sizeof(err), "an answer for task %" PRId64 ", which it does not hold",
		         a.id);
		queue_protocol_error(w, err);
	} else {
		struct inflight in = inflight_take(l, i);
		if (a.result)
			queue_task_done(w, &in, a.result, strlen(a.result));
		else
			queue_task_failed(w, &in, a.error);
	}
	free(a.result);
	free(a.error);
}

void task_link_output(struct worker *w, const char *data, size_t n)
{
	queue_clock_refresh();
	if (line_reader_feed(&w->tasks->reader, data, n, on_result_line, w) < 0)
		queue_protocol_error(w, "out of memory reading results");
}

void task_link_drained(struct worker *w)
{
	/* room was made: more now, not at the end of the turn */
	queue_refill(w);
	if (w->tasks->written < w->tasks->durable)
		link_release(w);
}

void task_link_eof(struct worker *w)
{
	queue_clock_refresh();
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
	link_give_back(w); /* never written: not to blame, not an attempt */
	for (size_t i = 0; l->count; i++) {
		struct inflight in = inflight_take(l, 0);
		if (i == 0 && blame) {
			char reason[200];
			snprintf(reason, sizeof(reason), "worker %s died: %s", w->spec.name, why);
			queue_task_failed(w, &in, reason);
		} else {
			queue_task_return(w, &in);
		}
	}
	l->heldoff = l->heldlen = 0;
	l->draining = false;
}

bool task_link_drain(struct worker *w)
{
	struct task_link *l = w->tasks;
	if (!l || !worker_alive(w))
		return false;
	link_give_back(w);
	if (!l->written)
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
	for (size_t i = 0; i < l->count; i++)
		free(inflight_at(l, i)->payload);
	free(l->ring);
	free(l->out);
	free(l->held);
	line_reader_free(&l->reader);
	free(l);
	w->tasks = NULL;
}
