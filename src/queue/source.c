/* task_source: feed a group's queue at start from a file, or from the
 * output of a command as it comes. With a durable store it happens once per
 * state_dir (a marker file remembers), so a restarted drover does not feed
 * the same tasks twice. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "drover/spawn.h"
#include "drover/supervisor.h"
#include "queue_internal.h"

static void marker_path(struct supervisor *sup, struct group *g, char *out, size_t len)
{
	snprintf(out, len, "%s/source-%s.loaded", sup->cfg.state_dir, g->name);
}

static void source_event(struct supervisor *sup, struct group *g, enum event_level level,
                         const char *key, const char *value, long long count)
{
	struct event e;
	event_init(&e, level, "source");
	event_str(&e, "group", g->name);
	event_str(&e, "source", g->prog->task_source);
	if (key)
		event_str(&e, key, value);
	if (count >= 0)
		event_int(&e, "tasks", count);
	supervisor_emit(sup, &e);
}

static void source_done(struct supervisor *sup, struct group *g, long long count)
{
	if (queue_commit_now(sup) < 0) {
		source_event(sup, g, EVENT_ERROR, "error", "commit failed", count);
		return;
	}
	if (queue_durable(sup)) {
		char path[4096];
		marker_path(sup, g, path, sizeof(path));
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	}
	source_event(sup, g, EVENT_INFO, NULL, NULL, count);
}

struct line_ctx {
	struct supervisor *sup;
	struct group *g;
	long long line, pushed;
};

static void push_line(void *arg, const char *line, size_t len, bool overflow)
{
	struct line_ctx *c = arg;
	char err[300], where[400];
	c->line++;
	if (overflow || len == 0)
		return; /* blank lines are not tasks */
	if (queue_push(c->sup, c->g, line, len, err, sizeof(err)) == 0) {
		c->pushed++;
		return;
	}
	snprintf(where, sizeof(where), "line %lld: %s", c->line, err);
	source_event(c->sup, c->g, EVENT_WARN, "error", where, -1);
}

static void from_file(struct supervisor *sup, struct group *g)
{
	int fd = open(g->prog->task_source, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		source_event(sup, g, EVENT_ERROR, "error", strerror(errno), -1);
		return;
	}
	struct line_ctx ctx = {.sup = sup, .g = g};
	struct line_reader lr = {0};
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		line_reader_feed(&lr, buf, (size_t)n, push_line, &ctx);
	line_reader_finish(&lr, push_line, &ctx);
	line_reader_free(&lr);
	close(fd);
	source_done(sup, g, ctx.pushed);
}

static void source_close(struct supervisor *sup, struct group_queue *q)
{
	if (q->source_watch.fd < 0)
		return;
	loop_watch_del(&sup->loop, &q->source_watch);
	close(q->source_watch.fd);
	q->source_watch.fd = -1;
}

static void source_readable(struct loop *loop, struct loop_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	struct group_queue *q = w->arg;
	struct group *g = q->group;
	struct supervisor *sup = g->sup;
	struct line_ctx ctx = {
	    .sup = sup, .g = g, .line = q->source_line, .pushed = q->source_pushed};
	char buf[65536];
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n > 0) {
			line_reader_feed(&q->source_reader, buf, (size_t)n, push_line, &ctx);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		line_reader_finish(&q->source_reader, push_line, &ctx);
		line_reader_free(&q->source_reader);
		source_close(sup, q);
		break;
	}
	q->source_line = ctx.line;
	q->source_pushed = ctx.pushed;
}

static void from_command(struct supervisor *sup, struct group *g)
{
	struct group_queue *q = g->queue;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		source_event(sup, g, EVENT_ERROR, "error", strerror(errno), -1);
		return;
	}
	fcntl(fds[1], F_SETFL, 0);
	char *argv[] = {"/bin/sh", "-c", g->prog->task_source + 1, NULL};
	struct spawn_request req = {
	    .argv = argv,
	    .directory = g->prog->here,
	    .stdin_fd = sup->devnull,
	    .stdout_fd = fds[1],
	    .stderr_fd = STDERR_FILENO,
	};
	struct spawn_result res;
	int rc = spawn_process(&req, &res);
	close(fds[1]);
	if (rc < 0) {
		close(fds[0]);
		source_event(sup, g, EVENT_ERROR, "error", res.why, -1);
		return;
	}
	close(res.pidfd);
	q->source_pid = res.pid;
	pidmap_put(&sup->pids, res.pid, PID_SOURCE, g);
	q->source_watch.fd = fds[0];
	q->source_watch.cb = source_readable;
	q->source_watch.arg = q;
	q->source_line = q->source_pushed = 0;
	loop_watch_add(&sup->loop, &q->source_watch, EPOLLIN);
}

void queue_source_start(struct supervisor *sup, struct group *g)
{
	struct group_queue *q = g->queue;
	q->group = g;
	q->source_watch.fd = -1;
	if (queue_durable(sup)) {
		char path[4096];
		marker_path(sup, g, path, sizeof(path));
		if (access(path, F_OK) == 0)
			return; /* fed by an earlier run: the store has them */
	}
	if (g->prog->task_source[0] == '!')
		from_command(sup, g);
	else
		from_file(sup, g);
}

void queue_source_reaped(struct supervisor *sup, pid_t pid)
{
	struct pidmap_entry *e = pidmap_get(&sup->pids, pid);
	if (!e || e->kind != PID_SOURCE)
		return;
	struct group *g = e->ptr;
	pidmap_del(&sup->pids, pid);
	struct group_queue *q = g->queue;
	if (!q)
		return;
	q->source_pid = 0;
	/* its last output is still in the pipe: read it before declaring done */
	if (q->source_watch.fd >= 0)
		source_readable(&sup->loop, &q->source_watch, EPOLLIN);
	source_close(sup, q);
	source_done(sup, g, q->source_pushed);
}
