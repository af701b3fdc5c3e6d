/* One worker: its process, its state machine, its output. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "drover/spawn.h"
#include "drover/supervisor.h"

static void stream_readable(struct loop *loop, struct loop_watch *watch, uint32_t events);
static void stream_line(struct worker *w, struct worker_stream *s);

static int open_stream_log(struct worker_stream *s, const char *path,
                           const struct logfile_config *lc)
{
	s->log.fd = -1;
	if (!path)
		return 0;
	return logfile_open(&s->log, path, lc->maxbytes, lc->backups);
}

/* Every process of a worker's tree carries the state_dir it belongs to, so a
 * drover started after a crash can find what its predecessor left. */
static int mark_env(struct supervisor *sup, struct worker_spec *spec)
{
	size_t n = 0;
	while (spec->env_add && spec->env_add[n])
		n++;
	char **env = realloc(spec->env_add, (n + 2) * sizeof(*env));
	if (!env)
		return -1;
	spec->env_add = env;
	size_t len = strlen(sup->cfg.state_dir) + sizeof("DROVER_STATE_DIR=");
	env[n] = malloc(len);
	if (!env[n])
		return -1;
	snprintf(env[n], len, "DROVER_STATE_DIR=%s", sup->cfg.state_dir);
	env[n + 1] = NULL;
	return 0;
}

static void open_logs(struct worker *w)
{
	const struct program_config *p = w->group->prog;
	const char *paths[2] = {w->spec.stdout_path, w->spec.stderr_path};
	struct worker_stream *streams[2] = {&w->out, &w->err};
	const struct logfile_config *lcs[2] = {&p->stdout_log, &p->stderr_log};
	for (int i = 0; i < 2; i++) {
		int rc = open_stream_log(streams[i], paths[i], lcs[i]);
		if (rc < 0) {
			struct event e;
			event_init(&e, EVENT_WARN, "log");
			event_str(&e, "worker", w->spec.name);
			event_str(&e, "path", paths[i]);
			event_str(&e, "error", strerror(-rc));
			supervisor_emit(w->sup, &e);
		}
	}
}

static void swap_spec(struct worker *w)
{
	worker_spec_free(&w->spec);
	w->spec = *w->next_spec;
	free(w->next_spec);
	w->next_spec = NULL;
	logfile_close(&w->out.log);
	logfile_close(&w->err.log);
	open_logs(w);
}

void worker_respec(struct worker *w, struct worker_spec *spec)
{
	mark_env(w->sup, spec);
	if (w->next_spec) {
		worker_spec_free(w->next_spec);
		free(w->next_spec);
	}
	w->next_spec = spec;
	if (!worker_alive(w)) {
		swap_spec(w);
		return;
	}
	w->start_after_stop = true;
	if (w->fsm.state != WORKER_STOPPING)
		worker_event(w, FSM_STOP);
}

static void timer_fired(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	struct worker *w = t->arg;
	/* going down: a pending restart becomes a stop */
	bool restart_pending = w->fsm.state == WORKER_EXITED || w->fsm.state == WORKER_BACKOFF;
	worker_event(w, w->sup->shutting_down && restart_pending ? FSM_STOP : FSM_TIMER);
}

struct worker *worker_new(struct supervisor *sup, struct group *g, int index, char *err,
                          size_t errlen)
{
	struct worker *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	const struct program_config *p = g->prog;
	/* a one-worker program is named NAME; grown past one, the newcomers
	 * take NAME_NN so that every name stays unique */
	struct program_config grown;
	if (!p->process_name && p->numprocs == 1 && index > 0) {
		grown = *p;
		grown.numprocs = index + 1;
		p = &grown;
	}
	if (program_expand(&sup->cfg, p, p->numprocs_start + index, &w->spec, err, errlen) < 0) {
		free(w);
		return NULL;
	}
	if (mark_env(sup, &w->spec) < 0) {
		snprintf(err, errlen, "out of memory");
		worker_spec_free(&w->spec);
		free(w);
		return NULL;
	}
	w->sup = sup;
	w->group = g;
	w->index = index;
	w->pidfd = -1;
	w->last_status = -1;
	w->timer.cb = timer_fired;
	w->timer.arg = w;
	w->state_since = supervisor_now();
	fsm_init(&w->fsm);
	w->out.worker = w->err.worker = w;
	w->out.name = "stdout";
	w->err.name = "stderr";
	w->out.watch.fd = w->err.watch.fd = -1;
	open_logs(w);
	return w;
}

static void stream_close(struct worker *w, struct worker_stream *s)
{
	if (s->watch.fd < 0)
		return;
	if (s->plen)
		stream_line(w, s); /* a last line without its newline */
	if (s == &w->out && w->tasks)
		task_link_eof(w);
	loop_watch_del(&w->sup->loop, &s->watch);
	close(s->watch.fd);
	s->watch.fd = -1;
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	loop_timer_cancel(&w->sup->loop, &w->timer);
	stream_close(w, &w->out);
	stream_close(w, &w->err);
	if (w->pidfd >= 0)
		close(w->pidfd);
	logfile_close(&w->out.log);
	logfile_close(&w->err.log);
	ring_free(&w->ring);
	free(w->out.partial);
	free(w->err.partial);
	task_link_free(w);
	worker_spec_free(&w->spec);
	if (w->next_spec) {
		worker_spec_free(w->next_spec);
		free(w->next_spec);
	}
	free(w);
}

bool worker_alive(const struct worker *w)
{
	return w->pid > 0;
}

int worker_signal(struct worker *w, int sig, bool group)
{
	if (w->pid <= 0)
		return -ESRCH;
	/* The leader is not reaped yet (we are the only reaper), so its pid
	 * still names this process group and cannot have been reused. */
	if (group && killpg(w->pid, sig) == 0)
		return 0;
	if (syscall(SYS_pidfd_send_signal, w->pidfd, sig, NULL, 0) < 0)
		return -errno;
	return 0;
}

static enum log_format stdout_format(const struct supervisor *sup)
{
	return sup->opts.log_format_set ? sup->opts.log_format : sup->cfg.log_format;
}

/* A whole line of output: into the ring, and to stdout with --tail. */
static void stream_line(struct worker *w, struct worker_stream *s)
{
	struct supervisor *sup = w->sup;
	s->partial[s->plen] = '\0';
	ring_push(&w->ring, s->partial, s->plen);
	if (sup->opts.tail || sup->cfg.tail) {
		if (stdout_format(sup) == LOG_FORMAT_JSON) {
			struct event e;
			event_init(&e, EVENT_INFO, "output");
			event_str(&e, "worker", w->spec.name);
			event_str(&e, "stream", s->name);
			event_str(&e, "line", s->partial);
			supervisor_emit(sup, &e);
		} else {
			supervisor_write_stdout(sup, w->spec.name, strlen(w->spec.name));
			supervisor_write_stdout(sup, " | ", 3);
			supervisor_write_stdout(sup, s->partial, s->plen);
			supervisor_write_stdout(sup, "\n", 1);
		}
	}
	s->plen = 0;
}

/* Split what a read returned into lines; an over-long line is cut into
 * pieces of RING_LINE_MAX bytes. */
static void stream_lines(struct worker *w, struct worker_stream *s, const char *buf, size_t len)
{
	/* most workers of a big pool never print: no buffer until one does */
	if (!s->partial && !(s->partial = malloc(RING_LINE_MAX)))
		return;
	while (len) {
		const char *nl = memchr(buf, '\n', len);
		size_t take = nl ? (size_t)(nl - buf) : len;
		size_t room = RING_LINE_MAX - 1 - s->plen;
		bool full = take > room;
		if (full)
			take = room;
		memcpy(s->partial + s->plen, buf, take);
		s->plen += take;
		buf += take;
		len -= take;
		if (!full && nl) {
			buf++;
			len--;
		}
		if (full || nl)
			stream_line(w, s);
	}
}

/* Read what the pipe holds now; returns false at EOF or error. A read
 * shorter than the buffer emptied the pipe: no second read to hear EAGAIN
 * (the watch is level-triggered, so later bytes wake the loop again). */
static bool stream_drain(struct worker *w, struct worker_stream *s)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(s->watch.fd, buf, sizeof(buf));
		if (n > 0) {
			if (s == &w->out && w->tasks) {
				task_link_output(w, buf, (size_t)n); /* results, not log */
			} else {
				if (s->log.fd >= 0)
					logfile_write(&s->log, buf, (size_t)n);
				stream_lines(w, s, buf, (size_t)n);
			}
			if ((size_t)n == sizeof(buf))
				continue;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			return false;
		}
		return true;
	}
}

static void stream_readable(struct loop *loop, struct loop_watch *watch, uint32_t events)
{
	(void)loop;
	(void)events;
	struct worker_stream *s = watch->arg;
	struct worker *w = s->worker;
	if (!stream_drain(w, s))
		stream_close(w, s);
	else if (s == &w->out && w->tasks)
		task_link_drained(w); /* a live worker answered: give it more (not at reap) */
}

static int stream_pipe(struct worker *w, struct worker_stream *s, int *child_end)
{
	int fds[2];
	stream_close(w, s); /* output of a previous incarnation's leftovers */
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	/* the child's end must block: workers are not written for EAGAIN */
	fcntl(fds[1], F_SETFL, 0);
	s->watch.fd = fds[0];
	s->watch.cb = stream_readable;
	s->watch.arg = s;
	s->plen = 0;
	int rc = loop_watch_add(&w->sup->loop, &s->watch, EPOLLIN);
	if (rc < 0) {
		close(fds[0]);
		close(fds[1]);
		s->watch.fd = -1;
		return rc;
	}
	*child_end = fds[1];
	return 0;
}

static void emit_state(struct worker *w, const struct fsm_output *o)
{
	struct event e;
	enum worker_state to = w->fsm.state;
	event_init(&e, to == WORKER_FATAL ? EVENT_ERROR : EVENT_INFO, "state");
	event_str(&e, "worker", w->spec.name);
	event_str(&e, "group", w->group->name);
	event_str(&e, "from", fsm_state_name(o->from));
	event_str(&e, "to", fsm_state_name(to));
	if (w->pid > 0)
		event_int(&e, "pid", w->pid);
	if (o->reason[0])
		event_str(&e, "reason", o->reason);
	supervisor_emit(w->sup, &e);
}

/* Start the process; returns false with a reason when it could not start. */
static bool do_spawn(struct worker *w, struct spawn_result *res)
{
	const struct program_config *p = w->group->prog;
	int out_child = -1, err_child = -1, in_child = -1;
	memset(res, 0, sizeof(*res));
	int rc = 0;
	if (p->tasks != TASKS_NONE && w->sup->store)
		rc = task_link_pipes(w, &in_child);
	if (rc == 0)
		rc = stream_pipe(w, &w->out, &out_child);
	if (rc == 0 && !p->redirect_stderr)
		rc = stream_pipe(w, &w->err, &err_child);
	if (rc < 0) {
		if (out_child >= 0)
			close(out_child);
		if (in_child >= 0)
			close(in_child);
		snprintf(res->why, sizeof(res->why), "cannot make output pipes: %s", strerror(-rc));
		res->permanent = false;
		return false;
	}
	struct spawn_request req = {
	    .argv = w->spec.argv,
	    .env_add = w->spec.env_add,
	    .directory = w->spec.directory,
	    .user = w->spec.user,
	    .has_umask = p->has_umask,
	    .umask = p->umask,
	    .stdin_fd = in_child >= 0 ? in_child : w->sup->devnull,
	    .stdout_fd = out_child,
	    .stderr_fd = p->redirect_stderr ? out_child : err_child,
	};
	rc = spawn_process(&req, res);
	close(out_child);
	if (in_child >= 0)
		close(in_child);
	if (err_child >= 0)
		close(err_child);
	if (rc < 0)
		return false;
	w->pid = res->pid;
	w->session = res->pid;
	w->pidfd = res->pidfd;
	w->started_at = supervisor_now();
	w->started_wall = (double)time(NULL);
	w->spawns++;
	w->metrics.valid = false; /* the last figures were another process's */
	pidmap_put(&w->sup->pids, w->pid, PID_WORKER, w);
	return true;
}

static void apply(struct worker *w, const struct fsm_output *o);

static void feed(struct worker *w, const struct fsm_input *in)
{
	struct fsm_output o;
	fsm_step(&w->fsm, w->group->prog, in, &o);
	if (!o.rejected)
		apply(w, &o);
}

static void apply(struct worker *w, const struct fsm_output *o)
{
	struct supervisor *sup = w->sup;
	const struct program_config *p = w->group->prog;
	struct spawn_result res;
	bool spawned = false;

	if (o->changed) {
		loop_timer_cancel(&sup->loop, &w->timer);
		w->state_since = supervisor_now();
		snprintf(w->reason, sizeof(w->reason), "%s", o->reason);
	}
	if (o->actions & FSM_ACT_SPAWN)
		spawned = do_spawn(w, &res);
	if (o->changed || o->reason[0])
		emit_state(w, o);
	if (o->actions & FSM_ACT_SIGNAL_STOP) {
		worker_signal(w, p->stopsignal, p->stopasgroup);
		worker_signal(w, SIGCONT, p->stopasgroup);
	}
	if (o->actions & FSM_ACT_SIGNAL_KILL)
		worker_signal(w, SIGKILL, p->killasgroup);
	if (o->actions & FSM_ACT_SIGSTOP)
		worker_signal(w, SIGSTOP, true);
	if (o->actions & FSM_ACT_SIGCONT)
		worker_signal(w, SIGCONT, true);
	if (o->actions & FSM_ACT_ARM_TIMER)
		loop_timer_arm(&sup->loop, &w->timer, loop_now() + loop_secs(o->delay));

	if (o->actions & FSM_ACT_SPAWN) {
		struct fsm_input in = {.now = supervisor_now()};
		if (spawned) {
			in.event = FSM_SPAWNED;
		} else {
			in.event = FSM_SPAWN_FAILED;
			in.permanent = res.permanent;
			in.why = res.why;
		}
		feed(w, &in);
		return;
	}
	if (o->changed && w->fsm.state == WORKER_STOPPED) {
		orphans_kill(sup, w);
		if (w->next_spec)
			swap_spec(w);
		if (w->start_after_stop && !sup->shutting_down) {
			w->start_after_stop = false;
			worker_event(w, FSM_START);
		}
	}
}

void worker_event(struct worker *w, enum fsm_event ev)
{
	struct fsm_input in = {.event = ev, .now = supervisor_now()};
	feed(w, &in);
}

void worker_reaped(struct worker *w, int wait_status)
{
	struct supervisor *sup = w->sup;
	char status[32];

	/* the last words a worker wrote come before the news of its death */
	if (w->out.watch.fd >= 0 && !stream_drain(w, &w->out))
		stream_close(w, &w->out);
	if (w->err.watch.fd >= 0 && !stream_drain(w, &w->err))
		stream_close(w, &w->err);

	pidmap_del(&sup->pids, w->pid);
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = -1;
	pid_t pid = w->pid;
	w->pid = 0;
	w->last_status = wait_status;
	if (w->tasks) {
		/* died on its own: the head of its line takes the blame; stopped
		 * by drover: everything goes back free */
		char st[32];
		fsm_describe_status(wait_status, st, sizeof(st));
		task_link_exited(w, w->fsm.state != WORKER_STOPPING, st);
	}

	struct event e;
	fsm_describe_status(wait_status, status, sizeof(status));
	bool expected = (wait_status & 0x7f) == 0 &&
	                program_exitcode_expected(w->group->prog, (wait_status >> 8) & 0xff);
	/* an exit drover asked for (a stop) is news, not a warning */
	bool asked = w->fsm.state == WORKER_STOPPING;
	event_init(&e, expected || asked ? EVENT_INFO : EVENT_WARN, "exit");
	event_str(&e, "worker", w->spec.name);
	event_int(&e, "pid", pid);
	event_str(&e, "status", status);
	event_bool(&e, "expected", expected);
	event_num(&e, "uptime", supervisor_now() - w->started_at);
	supervisor_emit(sup, &e);

	struct fsm_input in = {
	    .event = FSM_EXIT, .now = supervisor_now(), .wait_status = wait_status};
	feed(w, &in);
}

void worker_reopen_logs(struct worker *w)
{
	if (w->out.log.fd >= 0)
		logfile_reopen(&w->out.log);
	if (w->err.log.fd >= 0)
		logfile_reopen(&w->err.log);
}
