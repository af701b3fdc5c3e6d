#include "drover/framing.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int frame_check_task(enum task_protocol proto, const char *payload, size_t len, char *err,
                     size_t errlen)
{
	if (proto == TASKS_LINES) {
		if (memchr(payload, '\n', len)) {
			snprintf(err, errlen, "a task of a lines pool cannot contain a newline");
			return -1;
		}
		if (memchr(payload, '\0', len)) {
			snprintf(err, errlen, "a task cannot contain a NUL byte");
			return -1;
		}
		return 0;
	}
	json_error_t jerr;
	json_t *v = json_loadb(payload, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!v) {
		snprintf(err, errlen, "a task of a json pool must be JSON: %s (column %d)",
		         jerr.text, jerr.column);
		return -1;
	}
	json_decref(v);
	if (memchr(payload, '\n', len)) {
		snprintf(err, errlen, "a json task must be written on one line");
		return -1;
	}
	return 0;
}

int frame_reserve(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 4096;
	while (c < need)
		c *= 2;
	char *b = realloc(*buf, c);
	if (!b)
		return -ENOMEM;
	*buf = b;
	*cap = c;
	return 0;
}

int frame_task(enum task_protocol proto, int64_t id, const char *payload, size_t len, char **buf,
               size_t *buflen, size_t *bufcap)
{
	char head[48];
	int hlen = 0;
	if (proto == TASKS_JSON)
		hlen = snprintf(head, sizeof(head), "{\"id\":\"%" PRId64 "\",\"data\":", id);
	size_t need = *buflen + (size_t)hlen + len + 2;
	if (frame_reserve(buf, bufcap, need) < 0)
		return -ENOMEM;
	char *p = *buf + *buflen;
	memcpy(p, head, (size_t)hlen);
	p += hlen;
	memcpy(p, payload, len);
	p += len;
	if (proto == TASKS_JSON)
		*p++ = '}';
	*p++ = '\n';
	*buflen = (size_t)(p - *buf);
	return 0;
}

int line_reader_feed(struct line_reader *lr, const char *data, size_t n, line_fn fn, void *arg)
{
	while (n) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;
		if (lr->skipping) {
			if (nl)
				lr->skipping = false;
		} else if (lr->len + take > FRAME_LINE_MAX) {
			fn(arg, NULL, 0, true);
			lr->len = 0;
			lr->skipping = !nl;
		} else if (nl && lr->len == 0) {
			fn(arg, data, take, false); /* the common case: no copy */
		} else {
			if (frame_reserve(&lr->buf, &lr->cap, lr->len + take + 1) < 0)
				return -ENOMEM;
			memcpy(lr->buf + lr->len, data, take);
			lr->len += take;
			if (nl) {
				lr->buf[lr->len] = '\0';
				fn(arg, lr->buf, lr->len, false);
				lr->len = 0;
			}
		}
		if (!nl)
			break;
		data = nl + 1;
		n -= take + 1;
	}
	return 0;
}

void line_reader_finish(struct line_reader *lr, line_fn fn, void *arg)
{
	if (lr->len && !lr->skipping)
		fn(arg, lr->buf, lr->len, false);
	lr->len = 0;
	lr->skipping = false;
}

void line_reader_free(struct line_reader *lr)
{
	free(lr->buf);
	memset(lr, 0, sizeof(*lr));
}

int frame_parse_answer(const char *line, size_t len, struct json_answer *out, char *err,
                       size_t errlen)
{
	memset(out, 0, sizeof(*out));
	json_error_t jerr;
	json_t *v = json_loadb(line, len, 0, &jerr);
	if (!v) {
		snprintf(err, errlen, "answer is not JSON: %s (column %d)", jerr.text, jerr.column);
		return -1;
	}
	int rc = -1;
	json_t *id = json_object_get(v, "id");
	json_t *result = json_object_get(v, "result");
	json_t *error = json_object_get(v, "error");
	char *end = NULL;
	long long n = 0;
	if (json_is_string(id)) {
		errno = 0;
		n = strtoll(json_string_value(id), &end, 10);
		if (errno || !end || *end || n <= 0)
			end = NULL;
	} else if (json_is_integer(id) && json_integer_value(id) > 0) {
		n = json_integer_value(id);
		end = (char *)"";
	}
	if (!json_is_object(v)) {
		snprintf(err, errlen, "answer is not a JSON object");
	} else if (!end) {
		snprintf(err, errlen, "answer has no valid \"id\"");
	} else if (!result == !error) {
		snprintf(err, errlen, "answer %lld needs exactly one of \"result\" or \"error\"",
		         n);
	} else {
		out->id = n;
		if (result)
			out->result = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
		else
			out->error = json_is_string(error)
			                 ? strdup(json_string_value(error))
			                 : json_dumps(error, JSON_COMPACT | JSON_ENCODE_ANY);
		rc = (out->result || out->error) ? 0 : -1;
		if (rc < 0)
			snprintf(err, errlen, "out of memory");
	}
	json_decref(v);
	return rc;
}
