/* drover submit [-c FILE | -s SOCKET] [-q] GROUP TASK...
 * drover submit [-c FILE | -s SOCKET] [-q] GROUP -f FILE|-
 * Streams tasks in batches, one request in flight at a time: drover replies
 * once a batch is durable, which paces the client, so ten million lines
 * need one batch of memory, not ten million tasks. */
#include "drover/submit.h"

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/client.h"
#include "drover/ctl.h"

#define BATCH 2000

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
	if (s->count > 0)
		fprintf(stderr,
		        "drover submit: %lld tasks before it were accepted and stay queued\n",
		        s->count);
}

/* Send one batch and wait until drover has made it durable. lines: the
 * input line of each task (NULL for tasks from the command line). */
static int send_batch(struct sender *s, json_t *tasks, const char *name, const long long *lines)
{
	json_t *req =
	    json_pack("{s:s, s:s, s:O}", "cmd", "submit", "target", s->group, "tasks", tasks);
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
			if (!s->quiet)
				printf("%" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
			s->count++;
		}
	}
	json_decref(reply);
	return rc;
}

static int from_stream(struct sender *s, FILE *f, const char *name)
{
	json_t *tasks = json_array();
	long long lines[BATCH];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long long lineno = 0;
	int rc = 0;
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0)
			continue; /* blank lines are not tasks */
		json_t *t = json_stringn(line, (size_t)n);
		if (!t) {
			fprintf(stderr, "drover submit: %s:%lld: not valid UTF-8\n", name, lineno);
			rc = -1;
			break;
		}
		lines[json_array_size(tasks)] = lineno;
		json_array_append_new(tasks, t);
		if (json_array_size(tasks) == BATCH) {
			rc = send_batch(s, tasks, name, lines);
			json_array_clear(tasks);
		}
	}
	if (rc == 0 && json_array_size(tasks))
		rc = send_batch(s, tasks, name, lines);
	free(line);
	json_decref(tasks);
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
	FILE *src = NULL;
	if (file) {
		src = strcmp(file, "-") ? fopen(file, "re") : stdin;
		if (!src) {
			fprintf(stderr, "drover submit: %s: cannot open\n", file);
			return 1;
		}
	}
	struct sender s = {.group = argv[optind], .quiet = quiet};
	s.fd = client_connect(path);
	if (s.fd < 0) {
		if (src && src != stdin)
			fclose(src);
		return 1;
	}
	s.in = fdopen(s.fd, "r");
	int rc;
	if (src) {
		rc = from_stream(&s, src, strcmp(file, "-") ? file : "stdin");
		if (src != stdin)
			fclose(src);
	} else {
		json_t *tasks = json_array();
		for (int i = optind + 1; i < argc; i++)
			json_array_append_new(tasks, json_string(argv[i]));
		rc = send_batch(&s, tasks, "", NULL);
		json_decref(tasks);
	}
	if (quiet && rc == 0)
		printf("%lld\n", s.count);
	fclose(s.in);
	return rc == 0 ? 0 : 1;
}
