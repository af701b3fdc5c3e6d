/* drover map -j N [--ordered] [--json] -- COMMAND ARGS... < tasks > results */
#include "drover/map.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "drover/control.h"
#include "drover/queue.h"
#include "drover/supervisor.h"

#define MAP_WINDOW_MIN 4096 /* tasks read ahead of the results, at least */

struct map_run {
	int jobs;
	bool ordered, json, progress;
	int retries;
	double timeout;
	struct supervisor *sup;
	struct group *group;
	struct loop_watch in;
	bool reading, eof;
	struct line_reader reader;
	long long lineno;
	long long submitted, finished, dead, bad;
	long long window;
	/* --ordered: results waiting for their predecessors, by id - next_id */
	char **held;
	size_t *held_len;
	size_t held_cap, held_head;
	int64_t next_id;
	double started, last_draw;
	int exit_code;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: drover map [-j N] [--ordered] [--json] [--retries N] [--timeout S] "
	           "-- COMMAND [ARGS...]\n"
	           "Runs N copies of COMMAND (default: the number of CPUs) as a pool: each line "
	           "of stdin\nis a task written to a worker's stdin, each line it answers a result "
	           "on stdout.\nWorkers must flush each result (e.g. fflush, python3 -u, mawk -W "
	           "interactive).\n");
}

/* Quote for drover's word splitting: '...' with ' written as '\'' */
static char *shell_join(char **argv)
{
	size_t len = 1;
	for (char **a = argv; *a; a++)
		len += 4 * strlen(*a) + 3;
	char *out = malloc(len), *p = out;
	if (!out)
		return NULL;
	for (char **a = argv; *a; a++) {
		if (a != argv)
			*p++ = ' ';
		*p++ = '\'';
		for (const char *s = *a; *s; s++) {
			if (*s == '\'') {
				memcpy(p, "'\\''", 4);
				p += 4;
			} else {
				*p++ = *s;
			}
		}
		*p++ = '\'';
	}
	*p = '\0';
	return out;
}

static void emit(struct map_run *m, const char *s, size_t len)
{
	supervisor_write_line(m->sup, s, len);
}

/* --ordered keeps early results in a ring indexed by id - next_id. */
static size_t ring_slot(const struct map_run *m, size_t offset)
{
	return (m->held_head + offset) & (m->held_cap - 1); /* a power of two */
}

static void hold(struct map_run *m, int64_t id, const char *s, size_t len)
{
	size_t offset = (size_t)(id - m->next_id);
	if (offset >= m->held_cap) {
		size_t cap = m->held_cap ? m->held_cap : 1024;
		while (cap <= offset)
			cap *= 2;
		char **held = calloc(cap, sizeof(*held));
		size_t *lens = calloc(cap, sizeof(*lens));
		if (!held || !lens)
			abort();
		for (size_t i = 0; i < m->held_cap; i++) {
			held[i] = m->held[ring_slot(m, i)];
			lens[i] = m->held_len[ring_slot(m, i)];
		}
		free(m->held);
		free(m->held_len);
		m->held = held;
		m->held_len = lens;
		m->held_cap = cap;
		m->held_head = 0;
	}
	size_t slot = ring_slot(m, offset);
	m->held[slot] = malloc(len + 1);
	if (!m->held[slot])
		abort();
	memcpy(m->held[slot], s ? s : "", len);
	m->held[slot][len] = '\0';
	m->held_len[slot] = s ? len : (size_t)-1; /* -1: a dead task, nothing to print */
}

/* Print the held results that are now next in line. */
static void release(struct map_run *m)
{
	while (m->held_cap && m->held[m->held_head]) {
		size_t slot = m->held_head;
		if (m->held_len[slot] != (size_t)-1)
			emit(m, m->held[slot], m->held_len[slot]);
		free(m->held[slot]);
		m->held[slot] = NULL;
		m->held_head = (m->held_head + 1) & (m->held_cap - 1);
		m->next_id++;
	}
}

void map_result(struct supervisor *sup, int64_t id, const char *result, size_t len,
                const char *error)
{
	struct map_run *m = sup->opts.map;
	m->finished++;
	if (error) {
		m->dead++;
		fprintf(stderr, "drover map: task %lld failed: %s\n", (long long)id, error);
	}
	if (!m->ordered) {
		if (!error)
			emit(m, result, len);
		return;
	}
	if (id == m->next_id && (!m->held_cap || !m->held[m->held_head])) {
		/* the common case: next in line, no copy */
		if (!error)
			emit(m, result, len);
		m->next_id++;
		if (m->held_cap)
			m->held_head = (m->held_head + 1) & (m->held_cap - 1);
		release(m);
		return;
	}
	hold(m, id, error ? NULL : result, error ? 0 : len);
	release(m);
}

static void push_line(void *arg, const char *line, size_t len, bool overflow)
{
	struct map_run *m = arg;
	char err[300];
	m->lineno++;
	if (overflow) {
		fprintf(stderr, "drover map: stdin line %lld: longer than 16 MiB, skipped\n",
		        m->lineno);
		m->bad++;
		return;
	}
	if (queue_push(m->sup, m->group, line, len, err, sizeof(err)) < 0) {
		fprintf(stderr, "drover map: stdin line %lld: %s\n", m->lineno, err);
		m->bad++;
		return;
	}
	m->submitted++;
}

static void set_reading(struct map_run *m, bool on)
{
	if (on == m->reading || m->eof)
		return;
	m->reading = on;
	if (on)
		loop_watch_add(&m->sup->loop, &m->in, EPOLLIN);
	else
		loop_watch_del(&m->sup->loop, &m->in);
}

/* One read of stdin: its lines become tasks. */
static void read_stdin(struct map_run *m)
{
	char buf[65536];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	if (n > 0) {
		line_reader_feed(&m->reader, buf, (size_t)n, push_line, m);
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		line_reader_finish(&m->reader, push_line, m);
		set_reading(m, false);
		m->eof = true;
	}
}

static bool window_open(const struct map_run *m)
{
	return m->submitted - m->finished < m->window;
}

static void stdin_readable(struct loop *loop, struct loop_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	/* one read per wake-up: the window is checked again before the next */
	read_stdin(w->arg);
}

static void draw_progress(struct map_run *m, bool last)
{
	double now = supervisor_now();
	if (!m->progress || (!last && now - m->last_draw < 0.2))
		return;
	m->last_draw = now;
	double elapsed = now - m->started;
	double rate = elapsed > 0 ? (double)m->finished / elapsed : 0;
	long long total = m->submitted;
	int width = 30,
	    filled = total ? (int)((double)width * (double)m->finished / (double)total) : 0;
	char bar[64];
	for (int i = 0; i < width; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[width] = '\0';
	char eta[32] = "?";
	if (m->eof && rate > 0)
		snprintf(eta, sizeof(eta), "%.0fs", (double)(total - m->finished) / rate);
	fprintf(stderr, "\r[%s] %lld/%lld%s  %.0f/s  ETA %s  dead %lld ", bar, m->finished, total,
	        m->eof ? "" : "+", rate, eta, m->dead);
	if (last)
		fputc('\n', stderr);
}

void map_turn(struct supervisor *sup)
{
	struct map_run *m = sup->opts.map;
	if (!m || !m->group || sup->shutting_down)
		return;
	if (m->in.fd < 0) {
		/* a regular file cannot be polled, and is always readable: read
		 * while the window has room, a chunk at a time */
		while (!m->eof && window_open(m))
			read_stdin(m);
	} else {
		set_reading(m, window_open(m));
	}
	draw_progress(m, false);
	if (m->eof && m->finished == m->submitted) {
		draw_progress(m, true);
		m->exit_code = m->dead || m->bad ? 1 : 0;
		sup->exit_code = m->exit_code;
		supervisor_shutdown(sup, "map:done");
		return;
	}
	bool all_fatal = m->group->nworkers > 0;
	for (size_t i = 0; i < m->group->nworkers; i++)
		all_fatal &= m->group->workers[i]->fsm.state == WORKER_FATAL;
	if (all_fatal) {
		const char *why = m->group->workers[0]->reason;
		fprintf(stderr, "drover map: the workers cannot run: %s\n", why[0] ? why : "FATAL");
		sup->exit_code = 2;
		supervisor_shutdown(sup, "map:fatal");
	}
}

int map_attach(struct supervisor *sup)
{
	struct map_run *m = sup->opts.map;
	m->sup = sup;
	m->group = sup->ngroups ? sup->groups[0] : NULL;
	if (!m->group || !m->group->queue)
		return -1;
	m->next_id = 1; /* the memory store numbers tasks from 1, in push order */
	m->started = supervisor_now();
	/* enough read ahead that no worker waits for stdin, and no more: the
	 * tasks between the reader and the workers are memory to walk through */
	m->window = (long long)m->jobs * m->group->prog->prefetch * 2;
	if (m->window < MAP_WINDOW_MIN)
		m->window = MAP_WINDOW_MIN;
	m->in.fd = STDIN_FILENO;
	m->in.cb = stdin_readable;
	m->in.arg = m;
	int fl = fcntl(STDIN_FILENO, F_GETFL);
	fcntl(STDIN_FILENO, F_SETFL, fl | O_NONBLOCK);
	if (loop_watch_add(&sup->loop, &m->in, EPOLLIN) < 0)
		m->in.fd = -1; /* a regular file (EPERM): map_turn reads it */
	else
		m->reading = true;
	return 0;
}

void map_detach(struct supervisor *sup)
{
	struct map_run *m = sup->opts.map;
	if (!m)
		return;
	if (m->reading)
		loop_watch_del(&sup->loop, &m->in);
	m->reading = false;
	line_reader_free(&m->reader);
	for (size_t i = 0; i < m->held_cap; i++)
		free(m->held[i]);
	free(m->held);
	free(m->held_len);
	m->held = NULL;
	m->held_cap = 0;
}

static void remove_tree(const char *dir)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/logs", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/drover.lock", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/map.ini", dir);
	unlink(path);
	rmdir(dir);
}

int map_main(int argc, char **argv)
{
	struct map_run m = {.jobs = (int)sysconf(_SC_NPROCESSORS_ONLN), .retries = 3};
	static const struct option longopts[] = {
	    {"jobs", required_argument, NULL, 'j'},
	    {"ordered", no_argument, NULL, 'k'},
	    {"json", no_argument, NULL, 'J'},
	    {"retries", required_argument, NULL, 'r'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+j:kh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			m.jobs = atoi(optarg);
			if (m.jobs < 1 || m.jobs > 1024) {
				fprintf(stderr, "drover map: -j must be between 1 and 1024\n");
				return 2;
			}
			break;
		case 'k':
			m.ordered = true;
			break;
		case 'J':
			m.json = true;
			break;
		case 'r':
			m.retries = atoi(optarg);
			break;
		case 't':
			m.timeout = atof(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (m.jobs < 1)
		m.jobs = 1;
	m.progress = isatty(STDERR_FILENO);
	char *command = shell_join(argv + optind);
	char dir[] = "/tmp/drover-map-XXXXXX";
	if (!command || !mkdtemp(dir)) {
		fprintf(stderr, "drover map: cannot make a temporary directory: %s\n",
		        strerror(errno));
		free(command);
		return 2;
	}
	/* the command reaches the config through the environment, so that no
	 * INI rule (comments, %) can touch it */
	setenv("DROVER_MAP_COMMAND", command, 1);
	free(command);
	char path[4200];
	snprintf(path, sizeof(path), "%s/map.ini", dir);
	FILE *f = fopen(path, "we");
	if (!f) {
		fprintf(stderr, "drover map: %s: %s\n", path, strerror(errno));
		rmdir(dir);
		return 2;
	}
	fprintf(f,
	        "[drover]\nstate_dir = %s\nmetrics_interval = 0\nstore = memory\n"
	        "[program:map]\ncommand = %%(ENV_DROVER_MAP_COMMAND)s\nnumprocs = %d\n"
	        "startsecs = 0\nautorestart = true\nfatal_after = 0\nstartretries = 3\n"
	        /* a one-shot stream wants its tasks done: a crashed worker is
	         * back within a second, however often it crashes */
	        "backoff_max = 1\n"
	        "stopwaitsecs = 2\ntasks = %s\nprefetch = 4096\ntask_retries = %d\n"
	        "task_timeout = %g\n"
	        "stdout_logfile = NONE\nstderr_logfile = /dev/stderr\n"
	        "stderr_logfile_maxbytes = 0\n",
	        dir, m.jobs, m.json ? "json" : "lines", m.retries, m.timeout);
	fclose(f);

	struct supervisor_options opts = {
	    .config_path = path,
	    .store_kind = "memory",
	    .map = &m,
	};
	int rc = supervisor_main(&opts);
	remove_tree(dir);
	return rc;
}
