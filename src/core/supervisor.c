/* The supervisor's life: start-up (config, state dir, lock, signals),
 * the single reaper, and an orderly shutdown that leaves nothing behind. */
#include "drover/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover/console.h"
#include "drover/control.h"
#include "drover/map.h"
#include "drover/spawn.h"

#define SHUTDOWN_ORPHAN_GRACE 5.0 /* seconds to wait for leftovers to die */

double supervisor_now(void)
{
	return (double)loop_now() / 1e9;
}

void supervisor_emit(struct supervisor *sup, struct event *e)
{
	event_emit(&sup->bus, e);
}

void supervisor_write_stdout(struct supervisor *sup, const char *s, size_t len)
{
	if (sup->outlen + len > sup->outcap) {
		size_t cap = sup->outcap ? sup->outcap : 65536;
		while (cap < sup->outlen + len)
			cap *= 2;
		char *buf = realloc(sup->outbuf, cap);
		if (!buf)
			return;
		sup->outbuf = buf;
		sup->outcap = cap;
	}
	memcpy(sup->outbuf + sup->outlen, s, len);
	sup->outlen += len;
}

void supervisor_write_line(struct supervisor *sup, const char *s, size_t len)
{
	if (sup->outlen + len + 1 > sup->outcap) {
		supervisor_write_stdout(sup, s, len);
		supervisor_write_stdout(sup, "\n", 1);
		return;
	}
	memcpy(sup->outbuf + sup->outlen, s, len);
	sup->outbuf[sup->outlen + len] = '\n';
	sup->outlen += len + 1;
}

static void flush_stdout(struct supervisor *sup)
{
	size_t off = 0;
	if (sup->opts.console) {
		sup->outlen = 0; /* the console owns the terminal: no --tail echo */
		return;
	}
	while (off < sup->outlen) {
		ssize_t n = write(STDOUT_FILENO, sup->outbuf + off, sup->outlen - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* stdout is gone: keep supervising */
		off += (size_t)n;
	}
	sup->outlen = 0;
}

static void stdout_sink_write(struct event_sink *sink, const char *line, size_t len)
{
	supervisor_write_stdout(sink->arg, line, len);
}

static void stderr_sink_write(struct event_sink *sink, const char *line, size_t len)
{
	(void)sink;
	ssize_t ignored = write(STDERR_FILENO, line, len);
	(void)ignored;
}

static void file_sink_write(struct event_sink *sink, const char *line, size_t len)
{
	struct supervisor *sup = sink->arg;
	logfile_write(&sup->event_log, line, len);
}

struct worker *supervisor_find_worker(struct supervisor *sup, const char *name)
{
	for (size_t i = 0; i < sup->ngroups; i++)
		for (size_t j = 0; j < sup->groups[i]->nworkers; j++)
			if (!strcmp(sup->groups[i]->workers[j]->spec.name, name))
				return sup->groups[i]->workers[j];
	return NULL;
}

/* ---- the reaper ---- */

static int wait_status_of(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	default:
		return si->si_status & 0x7f;
	}
}

/* One reaper for everything: workers and orphans alike. */
static void reap(struct supervisor *sup)
{
	struct worker *last_owner = NULL;
	size_t reaped = 0;
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
			break;
		reaped++;
		struct pidmap_entry *e = pidmap_get(&sup->pids, si.si_pid);
		if (!e)
			continue; /* an orphan that came and went between two scans */
		if (e->kind == PID_WORKER) {
			last_owner = e->ptr;
			worker_reaped(e->ptr, wait_status_of(&si));
		} else if (e->kind == PID_SOURCE) {
			queue_source_reaped(sup, si.si_pid);
		} else {
			orphans_reaped(sup, si.si_pid);
		}
	}
	/* whatever the dead left behind has just been reparented to us */
	if (reaped)
		orphans_scan(sup, reaped == 1 ? last_owner : NULL);
}

/* ---- shutdown ---- */

static bool worker_settled(const struct worker *w)
{
	return !worker_alive(w);
}

void supervisor_shutdown(struct supervisor *sup, const char *why)
{
	if (sup->shutting_down)
		return;
	sup->shutting_down = true;
	sup->shutdown_deadline = 0;
	snprintf(sup->shutdown_why, sizeof(sup->shutdown_why), "%s", why);
	struct event e;
	event_init(&e, EVENT_INFO, "shutdown");
	event_str(&e, "reason", why);
	supervisor_emit(sup, &e);
}

/* Highest priority among groups that still have a live worker, or -1. */
static int highest_live_priority(struct supervisor *sup)
{
	int best = -1;
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		for (size_t j = 0; j < g->nworkers; j++)
			if (!worker_settled(g->workers[j]) && g->prog->priority > best)
				best = g->prog->priority;
	}
	return best;
}

/* Stop workers in reverse priority order, one level at a time; then kill
 * the orphans; then leave once drover has no child at all. */
static void shutdown_progress(struct supervisor *sup)
{
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		for (size_t j = 0; j < g->nworkers; j++) {
			struct worker *w = g->workers[j];
			/* no restarts while going down */
			if (w->fsm.state == WORKER_EXITED || w->fsm.state == WORKER_BACKOFF)
				worker_event(w, FSM_STOP);
		}
	}
	int level = highest_live_priority(sup);
	if (level >= 0) {
		for (size_t i = 0; i < sup->ngroups; i++) {
			struct group *g = sup->groups[i];
			if (g->prog->priority < level)
				continue;
			for (size_t j = 0; j < g->nworkers; j++) {
				struct worker *w = g->workers[j];
				if (worker_alive(w) && w->fsm.state != WORKER_STOPPING)
					worker_event(w, FSM_STOP);
			}
		}
		return;
	}
	if (sup->shutdown_deadline == 0) {
		sup->shutdown_deadline = supervisor_now() + SHUTDOWN_ORPHAN_GRACE;
		orphans_scan(sup, NULL);
		orphans_kill(sup, NULL);
	}
	if (supervisor_children(sup) == 0 || supervisor_now() > sup->shutdown_deadline) {
		if (supervisor_children(sup)) {
			struct event e;
			event_init(&e, EVENT_ERROR, "leftover");
			event_int(&e, "processes", (long long)supervisor_children(sup));
			supervisor_emit(sup, &e);
		}
		sup->loop.stop = true;
	}
}

static struct loop_timer shutdown_poll;

static void shutdown_poll_fired(struct loop *loop, struct loop_timer *t)
{
	(void)t;
	(void)loop;
}

static void before_sleep(struct loop *loop, void *arg)
{
	struct supervisor *sup = arg;
	supervisor_collect(sup);
	if (sup->opts.map)
		map_turn(sup);
	queue_turn(sup);
	if (sup->shutting_down) {
		shutdown_progress(sup);
		/* orphans are not ours to wait for: look again shortly */
		if (!sup->loop.stop && sup->shutdown_deadline > 0 &&
		    !loop_timer_armed(&shutdown_poll))
			loop_timer_arm(loop, &shutdown_poll, loop_now() + LOOP_NS_PER_SEC / 50);
	}
	flush_stdout(sup);
}

/* ---- signals ---- */

void supervisor_reopen_logs(struct supervisor *sup)
{
	for (size_t i = 0; i < sup->ngroups; i++)
		for (size_t j = 0; j < sup->groups[i]->nworkers; j++)
			worker_reopen_logs(sup->groups[i]->workers[j]);
	if (sup->event_log.fd >= 0)
		logfile_reopen(&sup->event_log);
	struct event e;
	event_init(&e, EVENT_INFO, "reopen");
	supervisor_emit(sup, &e);
}

static void signal_readable(struct loop *loop, struct loop_watch *watch, uint32_t events)
{
	(void)loop;
	(void)events;
	struct supervisor *sup = watch->arg;
	struct signalfd_siginfo si;
	bool child = false;
	while (read(sup->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			child = true;
			break;
		case SIGTERM:
			supervisor_shutdown(sup, "signal:TERM");
			break;
		case SIGINT:
			supervisor_shutdown(sup, "signal:INT");
			break;
		case SIGQUIT:
			supervisor_shutdown(sup, "signal:QUIT");
			break;
		case SIGUSR2:
			supervisor_reopen_logs(sup);
			break;
		case SIGHUP:
			if (!sup->shutting_down)
				json_decref(supervisor_reload(sup));
			break;
		}
	}
	if (child)
		reap(sup);
}

static int setup_signals(struct supervisor *sup)
{
	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR2};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN); /* a closed pipe is an error code, not a death */
	sup->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sup->sigfd < 0)
		return -errno;
	sup->sigwatch.fd = sup->sigfd;
	sup->sigwatch.cb = signal_readable;
	sup->sigwatch.arg = sup;
	return loop_watch_add(&sup->loop, &sup->sigwatch, EPOLLIN);
}

/* ---- start-up ---- */

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* One drover per state_dir: an flock'ed file that names its holder. */
static int take_lock(struct supervisor *sup, FILE *err)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/drover.lock", sup->cfg.state_dir);
	sup->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sup->lockfd < 0) {
		fprintf(err, "drover: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (flock(sup->lockfd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "";
		ssize_t n = pread(sup->lockfd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		fprintf(err, "drover: another drover (pid %s) is running on %s\n",
		        pid[0] ? pid : "?", sup->cfg.state_dir);
		close(sup->lockfd);
		sup->lockfd = -1;
		return -1;
	}
	/* a pid left in the file means its drover did not exit cleanly: look
	 * for what it left running (cleanup() empties the file) */
	char old[32];
	sup->unclean_start = pread(sup->lockfd, old, sizeof(old), 0) > 0;
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(sup->lockfd, 0) < 0 || pwrite(sup->lockfd, pid, (size_t)len, 0) != len) {
		fprintf(err, "drover: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void write_pidfile(const char *path)
{
	FILE *f = fopen(path, "we");
	if (f) {
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
}

/* Room for thousands of workers' pipes; children get the old limit back. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	unsigned long old = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		spawn_set_child_nofile(old);
}

static void emit_config_messages(struct supervisor *sup, struct conf_msgs *warnings)
{
	for (size_t i = 0; i < warnings->count; i++) {
		struct event e;
		event_init(&e, EVENT_WARN, "config");
		event_str(&e, "message", warnings->items[i]);
		supervisor_emit(sup, &e);
	}
}

static void cleanup(struct supervisor *sup)
{
	flush_stdout(sup);
	if (sup->opts.console)
		console_stop(sup);
	if (sup->opts.map)
		map_detach(sup);
	monitor_stop(sup);
	/* the last batch before the groups go: their results files are
	 * written after the commit that recorded those results, never before */
	if (sup->control)
		control_server_quiesce(sup->control);
	if (queue_commit_now(sup) < 0)
		fprintf(stderr, "drover: the last commit of the task store failed\n");
	for (size_t i = 0; i < sup->ngroups; i++)
		group_free(sup->groups[i]);
	free(sup->groups);
	queue_close(sup);
	for (size_t i = 0; i < sup->pids.cap; i++)
		if (sup->pids.slots[i].pid && sup->pids.slots[i].kind == PID_ORPHAN)
			orphans_reaped(sup, sup->pids.slots[i].pid);
	pidmap_free(&sup->pids);
	for (size_t i = 0; i < sup->nretired; i++) {
		config_free(sup->retired_cfgs[i]);
		free(sup->retired_cfgs[i]);
	}
	free(sup->retired_cfgs);
	if (sup->control)
		control_server_stop(sup->control);
	if (sup->sigfd >= 0)
		close(sup->sigfd);
	if (sup->devnull >= 0)
		close(sup->devnull);
	if (sup->cfg.pidfile)
		unlink(sup->cfg.pidfile);
	if (sup->lockfd >= 0) {
		if (ftruncate(sup->lockfd, 0) < 0) /* a clean exit: nothing to sweep */
			perror("drover: lock file");
		close(sup->lockfd); /* the lock goes with it; the file may stay */
	}
	if (sup->event_log.path)
		logfile_close(&sup->event_log);
	loop_free(&sup->loop);
	config_free(&sup->cfg);
	free(sup->outbuf);
}

static int start_up(struct supervisor *sup, const struct supervisor_options *opts)
{
	struct conf_msgs warnings = {0}, errors = {0};
	if (config_load(opts->config_path, &sup->cfg, &warnings, &errors) < 0) {
		for (size_t i = 0; i < errors.count; i++)
			fprintf(stderr, "%s\n", errors.items[i]);
		fprintf(stderr, "drover: %s: %zu error%s, not started\n", opts->config_path,
		        errors.count, errors.count == 1 ? "" : "s");
		conf_msgs_free(&warnings);
		conf_msgs_free(&errors);
		return -1;
	}
	conf_msgs_free(&errors);

	struct config *cfg = &sup->cfg;
	umask(cfg->umask);
	if (cfg->directory && chdir(cfg->directory) < 0) {
		fprintf(stderr, "drover: [supervisord] directory = %s: %s\n", cfg->directory,
		        strerror(errno));
		conf_msgs_free(&warnings);
		return -1;
	}
	char logs[4096];
	snprintf(logs, sizeof(logs), "%s/logs", cfg->state_dir);
	int rc = mkdir_p(cfg->state_dir, 0700);
	if (rc == 0)
		rc = mkdir_p(logs, 0755);
	if (rc < 0) {
		fprintf(stderr, "drover: state_dir %s: %s\n", cfg->state_dir, strerror(-rc));
		conf_msgs_free(&warnings);
		return -1;
	}
	if (take_lock(sup, stderr) < 0) {
		conf_msgs_free(&warnings);
		return -1;
	}

	enum log_format fmt = opts->log_format_set ? opts->log_format : cfg->log_format;
	sup->stdout_sink =
	    (struct event_sink){.format = fmt, .write = stdout_sink_write, .arg = sup};
	if (opts->map) { /* stdout is for results */
		sup->stderr_sink = (struct event_sink){.format = LOG_FORMAT_LOGFMT,
		                                       .min_level = EVENT_WARN,
		                                       .write = stderr_sink_write};
		event_bus_add(&sup->bus, &sup->stderr_sink);
	} else if (!opts->console) { /* the console owns the terminal */
		event_bus_add(&sup->bus, &sup->stdout_sink);
	}
	if (cfg->logfile) {
		if (logfile_open(&sup->event_log, cfg->logfile, 50 * 1024 * 1024, 10) == 0) {
			sup->file_sink = (struct event_sink){
			    .format = fmt, .write = file_sink_write, .arg = sup};
			event_bus_add(&sup->bus, &sup->file_sink);
		} else {
			fprintf(stderr, "drover: [supervisord] logfile = %s: %s\n", cfg->logfile,
			        strerror(errno));
		}
	}
	if (cfg->pidfile)
		write_pidfile(cfg->pidfile);

	raise_nofile();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (setup_signals(sup) < 0) {
		fprintf(stderr, "drover: signals: %s\n", strerror(errno));
		conf_msgs_free(&warnings);
		return -1;
	}
	sup->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

	char sock[4096], err[512];
	if (cfg->socket)
		snprintf(sock, sizeof(sock), "%s", cfg->socket);
	else
		snprintf(sock, sizeof(sock), "%s/drover.sock", cfg->state_dir);
	/* drover map is a one-shot pool: nobody steers it */
	sup->control = opts->map ? NULL : control_server_start(sup, sock, err, sizeof(err));
	if (!sup->control && !opts->map) {
		fprintf(stderr, "drover: %s\n", err);
		conf_msgs_free(&warnings);
		return -1;
	}

	struct event e;
	event_init(&e, EVENT_INFO, "start");
	event_str(&e, "version", DROVER_VERSION);
	event_int(&e, "pid", getpid());
	event_str(&e, "config", cfg->path);
	event_str(&e, "state_dir", cfg->state_dir);
	event_str(&e, "socket", sock);
	event_str(&e, "identifier", cfg->identifier);
	event_int(&e, "programs", (long long)cfg->nprograms);
	supervisor_emit(sup, &e);
	emit_config_messages(sup, &warnings);
	conf_msgs_free(&warnings);

	sup->groups = calloc(cfg->nprograms ? cfg->nprograms : 1, sizeof(*sup->groups));
	if (!sup->groups)
		return -1;
	if (sup->unclean_start)
		orphans_sweep_leftovers(sup);
	if (queue_open(sup, false, err, sizeof(err)) < 0) {
		fprintf(stderr, "drover: task store: %s\n", err);
		return -1;
	}
	for (size_t i = 0; i < cfg->nprograms; i++) {
		struct group *g = group_new(sup, &cfg->programs[i]);
		if (g)
			sup->groups[sup->ngroups++] = g;
	}
	monitor_start(sup);
	if (opts->map && map_attach(sup) < 0) {
		fprintf(stderr, "drover map: cannot set up the pool\n");
		return -1;
	}
	/* before any spawn, so that a console that cannot open leaves nothing */
	if (opts->console && console_start(sup) < 0)
		return -1;
	/* programs are sorted by priority: lower starts first */
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		if (!g->prog->autostart)
			continue;
		for (size_t j = 0; j < g->nworkers; j++)
			worker_event(g->workers[j], FSM_START);
	}
	return 0;
}

int supervisor_main(const struct supervisor_options *opts)
{
	struct supervisor sup;
	memset(&sup, 0, sizeof(sup));
	sup.opts = *opts;
	sup.self = getpid();
	sup.lockfd = sup.sigfd = sup.devnull = -1;
	sup.event_log.fd = -1;
	sup.started = supervisor_now();
	shutdown_poll.cb = shutdown_poll_fired;
	if (loop_init(&sup.loop) < 0) {
		fprintf(stderr, "drover: epoll: %s\n", strerror(errno));
		return 1;
	}
	loop_add_hook(&sup.loop, before_sleep, &sup);
	if (start_up(&sup, opts) < 0) {
		cleanup(&sup);
		return 1;
	}
	loop_run(&sup.loop);

	struct event e;
	event_init(&e, EVENT_INFO, "stopped");
	event_str(&e, "reason", sup.shutdown_why);
	event_num(&e, "uptime", supervisor_now() - sup.started);
	supervisor_emit(&sup, &e);
	cleanup(&sup);
	return sup.exit_code;
}
