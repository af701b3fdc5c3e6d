/* The task protocols on the wire, with no I/O.
 * lines: a task is one line to the worker's stdin; its result is the next
 *        line on the worker's stdout (in order).
 * json:  {"id":"ID","data":TASK} per line in; {"id":"ID","result":R} or
 *        {"id":"ID","error":"..."} per line out, in any order. */
#ifndef DROVER_FRAMING_H
#define DROVER_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover/config.h"

#define FRAME_LINE_MAX (16 * 1024 * 1024) /* longest result line kept */

/* Is payload acceptable as a task of this protocol? 0, or -1 with a
 * sentence in err (a newline in a lines task, invalid JSON in a json one). */
int frame_check_task(enum task_protocol proto, const char *payload, size_t len, char *err,
                     size_t errlen);

/* Grow *buf (realloc, doubling from 4 KiB) to hold need bytes: 0 or
 * -ENOMEM. */
int frame_reserve(char **buf, size_t *cap, size_t need);

/* Bytes to write for one task (without NUL): appended to *buf (grown with
 * realloc). Returns 0 or -ENOMEM. */
int frame_task(enum task_protocol proto, int64_t id, const char *payload, size_t len, char **buf,
               size_t *buflen, size_t *bufcap);

/* Accumulates bytes and hands out whole lines. A line longer than
 * FRAME_LINE_MAX is reported once as `overflow` and skipped to its end. */
struct line_reader {
	char *buf;
	size_t len, cap;
	bool skipping;
};

typedef void (*line_fn)(void *arg, const char *line, size_t len, bool overflow);
int line_reader_feed(struct line_reader *lr, const char *data, size_t n, line_fn fn, void *arg);
/* Whatever is left without a newline (at EOF), as one last line. */
void line_reader_finish(struct line_reader *lr, line_fn fn, void *arg);
void line_reader_free(struct line_reader *lr);

/* A json-protocol answer. result/error are malloc'd text (result as compact
 * JSON), one of them NULL. Returns 0, or -1 with a sentence in err. */
struct json_answer {
	int64_t id;
	char *result;
	char *error;
};
int frame_parse_answer(const char *line, size_t len, struct json_answer *out, char *err,
                       size_t errlen);

#endif
