/* drover submit [-c FILE | -s SOCKET] [-q] GROUP TASK...
 * drover submit [-c FILE | -s SOCKET] [-q] GROUP -f FILE|-
 * Streams tasks in batches, one request in flight at a time: drover replies
 * once a batch is durable, which paces the client, so ten million lines
 * need one batch of memory, not ten million tasks. A request holds up to
 * BATCH tasks and REQUEST_BUDGET bytes (drover reads request lines of up
 * to 64 KiB), and goes out early when the input runs dry. */
#include "drover/submit.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/client.h"
#include "drover/ctl.h"
#include "drover/framing.h"

#define BATCH          10000       /* tasks per request at most */
#define REQUEST_BUDGET (60 * 1024) /* bytes of tasks per request: drover reads lines of 64 KiB */

static void usage(FILE *f)
{
	fprintf(f, "usage: drover submit [-c FILE | -s SOCKET] [-q] GROUP TASK...\n"
	           "       drover submit [-c FILE | -s SOCKET] [-q] GROUP -f FILE|-\n"
	           "Prints the new tasks' ids, one per line (with -q: only their count).\n");
}

struct sender {
	int fd;
	FILE *in;
	const char *group;
	bool quiet;
	long long count;
};

static void accepted_before(const struct sender *s)
{
	if (s->count > 0)
		fprintf(stderr,
		        "drover submit: %lld tasks before it were accepted and stay queued\n",
		        s->count);
}

/* A refused batch: drover names the task by its index in the batch
 * ("submit: task N: why"); say which input line that was, and how many
 * tasks earlier batches got in (those stay queued). */
static void refused(const struct sender *s, const char *err, const char *name,
                    const long long *lines, size_t nlines)
{
	size_t idx;
	int off = 0;
	if (lines && sscanf(err, "submit: task %zu: %n", &idx, &off) == 1 && off > 0 &&
	    idx < nlines)
		fprintf(stderr, "drover submit: %s:%lld: %s\n", name, lines[idx], err + off);
	else
		fprintf(stderr, "drover submit: %s\n", err);
	accepted_before(s);
}

/* Send one batch and wait until drover has made it durable. lines: the
 * input line of each task (NULL for tasks from the command line). */
static int send_batch(struct sender *s, json_t *tasks, const char *name, const long long *lines)
{
	json_t *req = json_pack("{s:s, s:s, s:O, s:b}", "cmd", "submit", "target", s->group,
	                        "tasks", tasks, "ids", !s->quiet);
	json_t *reply = client_roundtrip(s->fd, s->in, req);
	json_decref(req);
	if (!reply) {
		fprintf(stderr, "drover submit: drover went away after %lld tasks\n", s->count);
		return -1;
	}
	int rc = 0;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *err = json_string_value(json_object_get(reply, "error"));
		refused(s, err ? err : "refused", name, lines, json_array_size(tasks));
		rc = -1;
	} else {
		json_t *v;
		size_t i;
		json_array_foreach(json_object_get(reply, "ids"), i, v)
		{
			printf("%" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
		}
		s->count += json_integer_value(json_object_get(reply, "count"));
	}
	json_decref(reply);
	return rc;
}

/* Bytes of text as a JSON string in the request (quotes, comma, escapes:
 * jansson writes a control character as at most 6, '"' and '\\' as 2). */
static size_t json_size(const char *text, size_t n)
{
	size_t size = 3;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)text[i];
		size += ch < 0x20 ? 6 : ch == '"' || ch == '\\' ? 2 : 1;
	}
	return size;
}

/* The tasks of the next request, and where each came from. */
struct batch {
	json_t *tasks;
	long long lines[BATCH];
	size_t bytes;
	const char *name; /* the file, "stdin", or NULL for the command line */
};

static int batch_flush(struct sender *s, struct batch *b)
{
	if (!json_array_size(b->tasks))
		return 0;
	int rc = send_batch(s, b->tasks, b->name ? b->name : "", b->name ? b->lines : NULL);
	json_array_clear(b->tasks);
	b->bytes = 0;
	return rc;
}

/* One task more (line: where it came from, 0 for the command line): sent
 * with the others once a request is full. */
static int batch_add(struct sender *s, struct batch *b, const char *text, size_t n, long long line,
                     bool overlong)
{
	char where[4200] = "";
	if (b->name)
		snprintf(where, sizeof(where), "%s:%lld: ", b->name, line);
	size_t size = overlong ? SIZE_MAX : json_size(text, n);
	if (size > REQUEST_BUDGET) {
		if (overlong)
			fprintf(stderr, "drover submit: %sa line longer than 16 MiB\n", where);
		else
			fprintf(stderr,
			        "drover submit: %sa task of %zu bytes is longer than a request may "
			        "carry (%d KiB of JSON)\n",
			        where, n, REQUEST_BUDGET / 1024);
		accepted_before(s);
		return -1;
	}
	json_t *t = json_stringn(text, n);
	if (!t) {
		fprintf(stderr, "drover submit: %snot valid UTF-8\n", where);
		accepted_before(s);
		return -1;
	}
	if (b->bytes + size > REQUEST_BUDGET && batch_flush(s, b) < 0) {
		json_decref(t);
		return -1;
	}
	b->lines[json_array_size(b->tasks)] = line;
	json_array_append_new(b->tasks, t);
	b->bytes += size;
	return json_array_size(b->tasks) == BATCH ? batch_flush(s, b) : 0;
}

/* Lines of the input, as they come. */
struct reading {
	struct sender *s;
	struct batch *b;
	long long lineno;
	int rc;
};

static void input_line(void *arg, const char *line, size_t len, bool overflow)
{
	struct reading *r = arg;
	r->lineno++;
	if (r->rc < 0 || (len == 0 && !overflow))
		return; /* after an error, or a blank line: not a task */
	r->rc = batch_add(r->s, r->b, line, len, r->lineno, overflow);
}

static bool input_waiting(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

/* Tasks go out a request at a time, and also whenever the input runs dry:
 * a pipe that pauses (tail -f | drover submit -f -) does not leave tasks
 * sitting in the client. */
static int from_stream(struct sender *s, int fd, const char *name)
{
	struct batch b = {.tasks = json_array(), .name = name};
	struct reading r = {.s = s, .b = &b};
	struct line_reader lr = {0};
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "drover submit: %s: %s\n", name, strerror(errno));
			r.rc = -1;
		}
		if (n <= 0)
			break;
		line_reader_feed(&lr, buf, (size_t)n, input_line, &r);
		if (r.rc < 0)
			break;
		if (!input_waiting(fd) && (r.rc = batch_flush(s, &b)) < 0)
			break;
	}
	if (r.rc == 0)
		line_reader_finish(&lr, input_line, &r);
	if (r.rc == 0)
		r.rc = batch_flush(s, &b);
	line_reader_free(&lr);
	json_decref(b.tasks);
	return r.rc;
}

static int from_args(struct sender *s, char **args, int n)
{
	struct batch b = {.tasks = json_array()};
	int rc = 0;
	for (int i = 0; rc == 0 && i < n; i++)
		rc = batch_add(s, &b, args[i], strlen(args[i]), 0, false);
	if (rc == 0)
		rc = batch_flush(s, &b);
	json_decref(b.tasks);
	return rc;
}

int submit_main(int argc, char **argv)
{
	const char *config = "supervisor.ini", *socket_path = NULL, *file = NULL;
	bool quiet = false;
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'}, {"socket", required_argument, NULL, 's'},
	    {"file", required_argument, NULL, 'f'},   {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},         {0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:s:f:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || (!file && optind + 1 >= argc) || (file && optind + 1 < argc)) {
		usage(stderr);
		return 2;
	}
	char path[4096];
	ctl_socket_path(socket_path, config, path, sizeof(path));
	int src = -1;
	if (file) {
		src = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
		if (src < 0) {
			fprintf(stderr, "drover submit: %s: %s\n", file, strerror(errno));
			return 1;
		}
	}
	struct sender s = {.group = argv[optind], .quiet = quiet};
	s.fd = client_connect(path);
	if (s.fd < 0) {
		if (src > STDIN_FILENO)
			close(src);
		return 1;
	}
	s.in = fdopen(s.fd, "r");
	int rc;
	if (src >= 0) {
		rc = from_stream(&s, src, strcmp(file, "-") ? file : "stdin");
		if (src > STDIN_FILENO)
			close(src);
	} else {
		rc = from_args(&s, argv + optind + 1, argc - optind - 1);
	}
	if (quiet && rc == 0)
		printf("%lld\n", s.count);
	fclose(s.in);
	return rc == 0 ? 0 : 1;
}
