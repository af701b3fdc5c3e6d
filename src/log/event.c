#include "drover/event.h"

#include "drover/utf8.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void event_init(struct event *e, enum event_level level, const char *name)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	e->ts_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	e->level = level;
	e->name = name;
	e->nfields = 0;
}

static struct event_field *add(struct event *e, const char *key, enum event_field_type type)
{
	if (e->nfields == EVENT_MAX_FIELDS)
		return NULL;
	struct event_field *f = &e->fields[e->nfields++];
	f->key = key;
	f->type = type;
	return f;
}

void event_str(struct event *e, const char *key, const char *value)
{
	struct event_field *f = value ? add(e, key, EF_STR) : NULL;
	if (f)
		f->v.s = value;
}

void event_int(struct event *e, const char *key, long long value)
{
	struct event_field *f = add(e, key, EF_INT);
	if (f)
		f->v.i = value;
}

void event_num(struct event *e, const char *key, double value)
{
	struct event_field *f = add(e, key, EF_NUM);
	if (f)
		f->v.d = value;
}

void event_bool(struct event *e, const char *key, bool value)
{
	struct event_field *f = add(e, key, EF_BOOL);
	if (f)
		f->v.b = value;
}

/* A bounded appender: writes what fits, always NUL-terminated, and keeps
 * counting so the caller can tell how much was cut. */
struct out {
	char *buf;
	size_t len, cap;
	size_t need; /* what the whole line takes, cut or not */
};

static void put(struct out *o, const char *s, size_t n)
{
	o->need += n;
	if (o->len + 1 < o->cap) {
		size_t room = o->cap - 1 - o->len;
		memcpy(o->buf + o->len, s, n < room ? n : room);
		o->len += n < room ? n : room;
	}
	o->buf[o->len] = '\0';
}

static void putc_(struct out *o, char c)
{
	put(o, &c, 1);
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct out *o, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void put_ts(struct out *o, long long ts_ms)
{
	time_t secs = (time_t)(ts_ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char buf[40];
	size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	put(o, buf, n);
	putf(o, ".%03dZ", (int)(ts_ms % 1000));
}

/* Workers print anything; what we write stays valid UTF-8 (JSON requires
 * it): a byte that starts no valid sequence becomes U+FFFD. */
static void put_escaped(struct out *o, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x80) {
			size_t n = utf8_seq_len((const unsigned char *)s, strlen(s));
			if (n == 0) {
				put(o, "\xef\xbf\xbd", 3);
			} else {
				put(o, s, n);
				s += n - 1;
			}
			continue;
		}
		switch (c) {
		case '"':
			put(o, "\\\"", 2);
			break;
		case '\\':
			put(o, "\\\\", 2);
			break;
		case '\n':
			put(o, "\\n", 2);
			break;
		case '\r':
			put(o, "\\r", 2);
			break;
		case '\t':
			put(o, "\\t", 2);
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				putf(o, "\\u%04x", c);
			else
				putc_(o, (char)c);
		}
	}
}

static bool logfmt_needs_quotes(const char *s)
{
	if (!*s)
		return true;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == '"' || *s == '=' || *s == '\\' ||
		    (unsigned char)*s >= 0x7f)
			return true; /* quoted values are escaped: control and non-UTF-8 bytes */
	return false;
}

static void put_number(struct out *o, double d)
{
	if (d != d || d - d != 0) /* NaN or infinite: not representable in JSON */
		put(o, "null", 4);
	else
		putf(o, "%.6g", d);
}

static void format_logfmt(const struct event *e, struct out *o)
{
	put(o, "ts=", 3);
	put_ts(o, e->ts_ms);
	putf(o, " level=%s event=", level_names[e->level]);
	put(o, e->name, strlen(e->name));
	for (int i = 0; i < e->nfields; i++) {
		const struct event_field *f = &e->fields[i];
		putc_(o, ' ');
		put(o, f->key, strlen(f->key));
		putc_(o, '=');
		switch (f->type) {
		case EF_STR:
			if (logfmt_needs_quotes(f->v.s)) {
				putc_(o, '"');
				put_escaped(o, f->v.s);
				putc_(o, '"');
			} else {
				put(o, f->v.s, strlen(f->v.s));
			}
			break;
		case EF_INT:
			putf(o, "%lld", f->v.i);
			break;
		case EF_NUM:
			put_number(o, f->v.d);
			break;
		case EF_BOOL:
			put(o, f->v.b ? "true" : "false", f->v.b ? 4 : 5);
			break;
		}
	}
}

static void format_json(const struct event *e, struct out *o)
{
	put(o, "{\"ts\":\"", 7);
	put_ts(o, e->ts_ms);
	putf(o, "\",\"level\":\"%s\",\"event\":\"", level_names[e->level]);
	put_escaped(o, e->name);
	putc_(o, '"');
	for (int i = 0; i < e->nfields; i++) {
		const struct event_field *f = &e->fields[i];
		put(o, ",\"", 2);
		put_escaped(o, f->key);
		put(o, "\":", 2);
		switch (f->type) {
		case EF_STR:
			putc_(o, '"');
			put_escaped(o, f->v.s);
			putc_(o, '"');
			break;
		case EF_INT:
			putf(o, "%lld", f->v.i);
			break;
		case EF_NUM:
			put_number(o, f->v.d);
			break;
		case EF_BOOL:
			put(o, f->v.b ? "true" : "false", f->v.b ? 4 : 5);
			break;
		}
	}
	putc_(o, '}');
}

size_t event_format(const struct event *e, enum log_format fmt, char *buf, size_t len)
{
	return event_format_need(e, fmt, buf, len, NULL);
}

size_t event_format_need(const struct event *e, enum log_format fmt, char *buf, size_t len,
                         size_t *need)
{
	struct out o = {.buf = buf, .len = 0, .cap = len};
	if (len < 2)
		return 0;
	/* keep room for the newline whatever was cut */
	o.cap = len - 1;
	if (fmt == LOG_FORMAT_JSON)
		format_json(e, &o);
	else
		format_logfmt(e, &o);
	buf[o.len++] = '\n';
	buf[o.len] = '\0';
	if (need)
		*need = o.need + 2;
	return o.len;
}

void event_bus_add(struct event_bus *bus, struct event_sink *sink)
{
	if (bus->nsinks < EVENT_MAX_SINKS)
		bus->sinks[bus->nsinks++] = sink;
}

void event_bus_remove(struct event_bus *bus, struct event_sink *sink)
{
	for (size_t i = 0; i < bus->nsinks; i++)
		if (bus->sinks[i] == sink) {
			bus->sinks[i] = bus->sinks[--bus->nsinks];
			return;
		}
}

void event_emit(struct event_bus *bus, struct event *e)
{
	/* most events fit the stack; a long escaped output line gets the heap.
	 * A sink may emit while we emit (a dropped client), so nothing static. */
	char small[2][4096];
	char *line[2] = {small[0], small[1]};
	size_t len[2] = {0, 0};
	for (size_t i = 0; i < bus->nsinks; i++) {
		struct event_sink *s = bus->sinks[i];
		int f = s->format == LOG_FORMAT_JSON;
		if (e->level < s->min_level)
			continue;
		if (!len[f]) {
			size_t need = 0;
			len[f] = event_format_need(e, s->format, line[f], sizeof(small[f]), &need);
			char *big = need > sizeof(small[f]) ? malloc(need) : NULL;
			if (big) {
				line[f] = big;
				len[f] = event_format(e, s->format, big, need);
			}
		}
		s->write(s, line[f], len[f]);
	}
	for (int f = 0; f < 2; f++)
		if (line[f] != small[f])
			free(line[f]);
}
