/* drover ctl: send one command to a running drover and show the reply. */
#include "drover/ctl.h"

#include "drover/client.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "drover/command.h"
#include "drover/config.h"
#include "drover/metrics.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: drover ctl [-c FILE | -s SOCKET] [--json] COMMAND [TARGET] [ARG]\n\n");
	for (size_t i = 0; i < CMD__COUNT; i++)
		fprintf(f, "  %-22s %s\n", command_table[i].usage, command_table[i].help);
	fprintf(f, "  %-22s %s\n", "top [-d SECS] [-n N]",
	        "a refreshing table of workers sorted by CPU");
	fprintf(f, "\nTARGET: all, a group, a worker (squarer_03), or GROUP:NAME / GROUP:*\n");
}

void ctl_socket_path(const char *socket_opt, const char *config_path, char *out,
                     unsigned long outlen)
{
	if (socket_opt) {
		snprintf(out, outlen, "%s", socket_opt);
		return;
	}
	struct config cfg;
	if (config_load(config_path, &cfg, NULL, NULL) == 0) {
		if (cfg.socket)
			snprintf(out, outlen, "%s", cfg.socket);
		else
			snprintf(out, outlen, "%s/drover.sock", cfg.state_dir);
		config_free(&cfg);
		return;
	}
	char *copy = strdup(config_path);
	snprintf(out, outlen, "%s/.drover/drover.sock", copy ? dirname(copy) : ".");
	free(copy);
}

static void format_duration(double secs, char *buf, size_t len)
{
	long s = (long)secs;
	if (s >= 86400)
		snprintf(buf, len, "%ldd %02ld:%02ld:%02ld", s / 86400, s % 86400 / 3600,
		         s % 3600 / 60, s % 60);
	else
		snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s % 3600 / 60, s % 60);
}

static void format_cpu(json_t *v, char *buf, size_t len)
{
	if (json_is_number(v))
		snprintf(buf, len, "%.1f", json_number_value(v));
	else
		snprintf(buf, len, "-");
}

static void format_rss(json_t *v, char *buf, size_t len)
{
	if (json_is_integer(v))
		metrics_format_bytes((unsigned long long)json_integer_value(v), buf, len);
	else
		snprintf(buf, len, "-");
}

/* One row per worker, in the order given. */
static void print_workers(json_t *workers, json_t **order, size_t n)
{
	size_t width = 4;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(json_string_value(json_object_get(order[i], "name")));
		width = len > width ? len : width;
	}
	(void)workers;
	printf("%-*s  %-8s  %7s  %6s  %6s  %10s  %8s  %s\n", (int)width, "NAME", "STATE", "PID",
	       "CPU%", "RSS", "UPTIME", "RESTARTS", "INFO");
	for (size_t i = 0; i < n; i++) {
		json_t *w = order[i];
		char pid[16] = "-", uptime[32] = "-", cpu[16], rss[16];
		json_t *jpid = json_object_get(w, "pid");
		if (json_is_integer(jpid)) {
			snprintf(pid, sizeof(pid), "%" JSON_INTEGER_FORMAT,
			         json_integer_value(jpid));
			format_duration(json_number_value(json_object_get(w, "uptime")), uptime,
			                sizeof(uptime));
		}
		format_cpu(json_object_get(w, "cpu"), cpu, sizeof(cpu));
		format_rss(json_object_get(w, "rss"), rss, sizeof(rss));
		const char *reason = json_string_value(json_object_get(w, "reason"));
		const char *last = json_string_value(json_object_get(w, "last_exit"));
		printf("%-*s  %-8s  %7s  %6s  %6s  %10s  %8" JSON_INTEGER_FORMAT "  %s\n",
		       (int)width, json_string_value(json_object_get(w, "name")),
		       json_string_value(json_object_get(w, "state")), pid, cpu, rss, uptime,
		       json_integer_value(json_object_get(w, "restarts")),
		       reason ? reason
		       : last ? last
		              : "");
	}
}

/* One line per pool that takes tasks. */
static void print_queues(json_t *reply)
{
	json_t *g;
	size_t i;
	bool header = false;
	json_array_foreach(json_object_get(reply, "groups"), i, g)
	{
		json_t *q = json_object_get(g, "queue");
		if (!json_is_object(q))
			continue;
		if (!header)
			printf("\n%-16s  %9s  %9s  %11s  %7s  %7s  %9s  %9s\n", "QUEUE", "PENDING",
			       "RUNNING", "DONE", "FAILED", "DEAD", "TASKS/S", "LATENCY");
		header = true;
		printf("%-16s  %9" JSON_INTEGER_FORMAT "  %9" JSON_INTEGER_FORMAT
		       "  %11" JSON_INTEGER_FORMAT "  %7" JSON_INTEGER_FORMAT
		       "  %7" JSON_INTEGER_FORMAT "  %9.1f  %8.3fs\n",
		       json_string_value(json_object_get(g, "name")),
		       json_integer_value(json_object_get(q, "pending")),
		       json_integer_value(json_object_get(q, "running")),
		       json_integer_value(json_object_get(q, "done")),
		       json_integer_value(json_object_get(q, "failed")),
		       json_integer_value(json_object_get(q, "dead")),
		       json_number_value(json_object_get(q, "rate")),
		       json_number_value(json_object_get(q, "latency")));
	}
}

static void print_status(json_t *reply)
{
	json_t *workers = json_object_get(reply, "workers");
	size_t n = json_array_size(workers);
	json_t **order = calloc(n ? n : 1, sizeof(*order));
	for (size_t i = 0; i < n; i++)
		order[i] = json_array_get(workers, i);
	print_workers(workers, order, n);
	free(order);
	print_queues(reply);
}

static double cpu_of(json_t *w)
{
	json_t *v = json_object_get(w, "cpu");
	return json_is_number(v) ? json_number_value(v) : -1;
}

static int by_cpu_desc(const void *a, const void *b)
{
	double x = cpu_of(*(json_t *const *)a), y = cpu_of(*(json_t *const *)b);
	return x < y ? 1 : x > y ? -1 : 0;
}

/* The system line and one line per group, top style. */
static void print_top_header(json_t *reply)
{
	json_t *sys = json_object_get(reply, "system");
	char used[16], total[16];
	if (json_is_object(sys)) {
		json_t *load = json_object_get(sys, "load");
		format_rss(json_object_get(sys, "mem_used"), used, sizeof(used));
		format_rss(json_object_get(sys, "mem_total"), total, sizeof(total));
		printf("drover %s  pid %" JSON_INTEGER_FORMAT "  load %.2f %.2f %.2f  cpu %.1f%%  "
		       "mem %s / %s\n",
		       json_string_value(json_object_get(reply, "version")),
		       json_integer_value(json_object_get(reply, "pid")),
		       json_number_value(json_array_get(load, 0)),
		       json_number_value(json_array_get(load, 1)),
		       json_number_value(json_array_get(load, 2)),
		       json_number_value(json_object_get(sys, "cpu")), used, total);
	}
	json_t *g;
	size_t i;
	json_array_foreach(json_object_get(reply, "groups"), i, g)
	{
		char cpu[16], rss[16];
		format_cpu(json_object_get(g, "cpu"), cpu, sizeof(cpu));
		format_rss(json_object_get(g, "rss"), rss, sizeof(rss));
		const char *busiest = json_string_value(json_object_get(g, "busiest"));
		printf("  %-16s %3" JSON_INTEGER_FORMAT "/%-3" JSON_INTEGER_FORMAT
		       " running  cpu %6s%%  rss %6s  busiest %s\n",
		       json_string_value(json_object_get(g, "name")),
		       json_integer_value(json_object_get(g, "actual")),
		       json_integer_value(json_object_get(g, "wanted")), cpu, rss,
		       busiest ? busiest : "-");
	}
	printf("\n");
}

static void print_top(json_t *reply)
{
	json_t *workers = json_object_get(reply, "workers");
	size_t n = json_array_size(workers);
	json_t **order = calloc(n ? n : 1, sizeof(*order));
	for (size_t i = 0; i < n; i++)
		order[i] = json_array_get(workers, i);
	qsort(order, n, sizeof(*order), by_cpu_desc);
	print_top_header(reply);
	print_workers(workers, order, n);
	free(order);
}

static const char *str_or(json_t *v, const char *dflt)
{
	return json_is_string(v) ? json_string_value(v) : dflt;
}

static void print_tasks(json_t *reply)
{
	json_t *counts = json_object_get(reply, "counts"), *v;
	const char *key;
	printf("%s:", json_string_value(json_object_get(reply, "group")));
	json_object_foreach(counts, key, v)
	    printf(" %s=%" JSON_INTEGER_FORMAT, key, json_integer_value(v));
	printf("\n%-10s  %-9s  %8s  %-14s  %-24s  %s\n", "ID", "STATE", "ATTEMPTS", "WORKER",
	       "TASK", "RESULT / ERROR");
	size_t i;
	json_array_foreach(json_object_get(reply, "tasks"), i, v)
	{
		/* a done task that failed before shows its result, not the old error */
		bool done = !strcmp(str_or(json_object_get(v, "state"), ""), "done");
		const char *err = done ? NULL : str_or(json_object_get(v, "error"), NULL);
		printf("%-10" JSON_INTEGER_FORMAT "  %-9s  %8" JSON_INTEGER_FORMAT
		       "  %-14s  %-24.24s  %s\n",
		       json_integer_value(json_object_get(v, "id")),
		       str_or(json_object_get(v, "state"), "?"),
		       json_integer_value(json_object_get(v, "attempts")),
		       str_or(json_object_get(v, "worker"), "-"),
		       str_or(json_object_get(v, "task"), ""),
		       err ? err : str_or(json_object_get(v, "result"), ""));
	}
	if (json_is_true(json_object_get(reply, "truncated")))
		printf("(the first %zu shown)\n", json_array_size(json_object_get(reply, "tasks")));
}

static void print_task(json_t *reply)
{
	json_t *t = json_object_get(reply, "task");
	const char *keys[] = {"id",     "group", "state",   "attempts", "worker",  "task",
	                      "result", "error", "created", "started",  "finished"};
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		json_t *v = json_object_get(t, keys[k]);
		if (json_is_string(v))
			printf("%-9s %s\n", keys[k], json_string_value(v));
		else if (json_is_integer(v))
			printf("%-9s %" JSON_INTEGER_FORMAT "\n", keys[k], json_integer_value(v));
		else if (json_is_real(v)) {
			time_t secs = (time_t)json_real_value(v);
			struct tm tm;
			char when[64];
			gmtime_r(&secs, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			printf("%-9s %s\n", keys[k], when);
		} else
			printf("%-9s -\n", keys[k]);
	}
}

static void print_reply(const struct command *cmd, json_t *reply)
{
	json_t *v;
	size_t i;
	switch (cmd->spec->id) {
	case CMD_TASKS:
		print_tasks(reply);
		break;
	case CMD_TASK:
		print_task(reply);
		break;
	case CMD_WAIT:
		printf("%s: drained: %" JSON_INTEGER_FORMAT " done, %" JSON_INTEGER_FORMAT
		       " dead, %" JSON_INTEGER_FORMAT " cancelled\n",
		       json_string_value(json_object_get(reply, "group")),
		       json_integer_value(json_object_get(reply, "done")),
		       json_integer_value(json_object_get(reply, "dead")),
		       json_integer_value(json_object_get(reply, "cancelled")));
		break;
	case CMD_STATUS:
		print_status(reply);
		break;
	case CMD_LOG:
		json_array_foreach(json_object_get(reply, "lines"), i, v)
		    printf("%s\n", json_string_value(v));
		break;
	default:
		v = json_object_get(reply, "message");
		if (json_is_string(v))
			printf("%s\n", json_string_value(v));
		json_array_foreach(json_object_get(reply, "skipped"), i, v)
		    printf("  %s: %s (%s)\n", json_string_value(json_object_get(v, "worker")),
		           json_string_value(json_object_get(v, "why")),
		           json_string_value(json_object_get(v, "state")));
	}
}

/* After `events`: copy every line to stdout until drover hangs up. */
static int stream_events(FILE *in)
{
	char *line;
	while ((line = client_read_line(in))) {
		fputs(line, stdout);
		fflush(stdout);
		free(line);
	}
	return 0;
}

/* drover ctl top: the status table sorted by CPU, redrawn every interval. */
static int run_top(const char *path, double interval, long frames)
{
	int fd = client_connect(path);
	if (fd < 0)
		return 1;
	FILE *in = fdopen(fd, "r");
	if (!in) {
		close(fd);
		return 1;
	}
	bool tty = isatty(STDOUT_FILENO);
	json_t *req = json_pack("{s:s}", "cmd", "status");
	int status = 0;
	for (long frame = 0; frames <= 0 || frame < frames; frame++) {
		json_t *reply = client_roundtrip(fd, in, req);
		if (!reply) {
			fprintf(stderr, "drover ctl top: drover went away\n");
			status = 1;
			break;
		}
		if (tty)
			fputs("\033[H\033[2J", stdout);
		print_top(reply);
		fflush(stdout);
		json_decref(reply);
		if (frames <= 0 || frame + 1 < frames) {
			struct timespec ts = {(time_t)interval,
			                      (long)((interval - (double)(time_t)interval) * 1e9)};
			nanosleep(&ts, NULL);
		}
	}
	json_decref(req);
	fclose(in);
	return status;
}

static int top_main(int argc, char **argv, const char *path)
{
	double interval = 1.0;
	long frames = 0;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "d:n:")) != -1) {
		switch (c) {
		case 'd':
			interval = atof(optarg);
			if (interval < 0.1 || interval > 60) {
				fprintf(stderr, "drover ctl top: -d must be between 0.1 and 60\n");
				return 2;
			}
			break;
		case 'n':
			frames = atol(optarg);
			break;
		default:
			fprintf(stderr, "usage: drover ctl top [-d SECONDS] [-n FRAMES]\n");
			return 2;
		}
	}
	return run_top(path, interval, frames);
}

int ctl_main(int argc, char **argv)
{
	const char *config = "supervisor.ini", *socket_path = NULL;
	bool raw = false;
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c;
	optind = 1;
	/* '+': options end at the command, so "kill w -9"-style args pass through */
	while ((c = getopt_long(argc, argv, "+c:s:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'j':
			raw = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	int nargs = argc - optind;
	if (nargs >= 1 && !strcmp(argv[optind], "top")) {
		char top_path[4096];
		ctl_socket_path(socket_path, config, top_path, sizeof(top_path));
		return top_main(argc - optind, argv + optind, top_path);
	}
	if (nargs < 1 || nargs > 4 || (nargs == 4 && strcmp(argv[optind], "tasks"))) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind];
	const char *target = nargs > 1 ? argv[optind + 1] : NULL;
	const char *arg = nargs > 2 ? argv[optind + 2] : NULL;
	/* tasks GROUP --state S reads better than a bare third word */
	if (nargs == 4 && !strcmp(name, "tasks") && !strcmp(argv[optind + 2], "--state"))
		arg = argv[optind + 3];
	/* "scale GROUP N" and "kill TARGET SIG" read naturally; "log W N" too */
	struct command cmd;
	char err[512];
	if (command_parse(name, target, arg, &cmd, err, sizeof(err)) < 0) {
		fprintf(stderr, "drover ctl: %s\n", err);
		return 2;
	}

	char path[4096];
	ctl_socket_path(socket_path, config, path, sizeof(path));
	int fd = client_connect(path);
	if (fd < 0)
		return 1;

	json_t *req = json_pack("{s:s}", "cmd", name);
	if (target)
		json_object_set_new(req, "target", json_string(target));
	if (arg)
		json_object_set_new(req, "arg", json_string(arg));
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	size_t len = strlen(text);
	text[len] = '\n';
	int rc = client_send_all(fd, text, len + 1);
	free(text);
	FILE *in = fdopen(fd, "r");
	if (rc < 0 || !in) {
		fprintf(stderr, "drover ctl: %s: %s\n", path, strerror(errno));
		if (in)
			fclose(in);
		else
			close(fd);
		return 1;
	}
	char *line = client_read_line(in);
	if (!line) {
		fprintf(stderr, "drover ctl: drover closed the connection without a reply\n");
		fclose(in);
		return 1;
	}
	json_error_t jerr;
	json_t *reply = json_loads(line, 0, &jerr);
	int status = 1;
	if (!reply) {
		fprintf(stderr, "drover ctl: unreadable reply: %s\n", jerr.text);
	} else if (!json_is_true(json_object_get(reply, "ok"))) {
		if (raw)
			fputs(line, stdout);
		fprintf(stderr, "drover ctl: %s\n",
		        json_string_value(json_object_get(reply, "error")) ?: "failed");
		json_t *v;
		size_t i;
		json_array_foreach(json_object_get(reply, "errors"), i, v)
		    fprintf(stderr, "  %s\n", json_string_value(v));
	} else {
		status = 0;
		if (raw)
			fputs(line, stdout);
		else
			print_reply(&cmd, reply);
		fflush(stdout); /* a pipe reader sees the confirmation at once */
		if (cmd.spec->id == CMD_EVENTS)
			status = stream_events(in);
		if (cmd.spec->id == CMD_WAIT &&
		    json_integer_value(json_object_get(reply, "dead")) > 0)
			status = 3; /* drained, but some tasks ended dead */
	}
	json_decref(reply);
	free(line);
	fclose(in);
	return status;
}
