/* Events are the spine: spawned, exited, state changed, ... Each is a name, a
 * level and a short list of typed fields, rendered once per format (logfmt or
 * JSON lines) for every sink that wants it: the headless log on stdout,
 * [supervisord] logfile, and (later) subscribed control clients. */
#ifndef DROVER_EVENT_H
#define DROVER_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "drover/config.h"

#define EVENT_MAX_FIELDS 16

enum event_level { EVENT_DEBUG, EVENT_INFO, EVENT_WARN, EVENT_ERROR };

enum event_field_type { EF_STR, EF_INT, EF_NUM, EF_BOOL };

struct event_field {
	const char *key;
	enum event_field_type type;
	union {
		const char *s;
		long long i;
		double d;
		bool b;
	} v;
};

struct event {
	long long ts_ms; /* wall-clock milliseconds since the epoch */
	enum event_level level;
	const char *name;
	struct event_field fields[EVENT_MAX_FIELDS];
	int nfields;
};

void event_init(struct event *e, enum event_level level, const char *name);
void event_str(struct event *e, const char *key, const char *value); /* NULL: skipped */
void event_int(struct event *e, const char *key, long long value);
void event_num(struct event *e, const char *key, double value);
void event_bool(struct event *e, const char *key, bool value);

/* Render one line (with '\n') into buf; returns its length (truncated to
 * fit). Pure. */
size_t event_format(const struct event *e, enum log_format fmt, char *buf, size_t len);
/* The same, and *need receives the buffer size the whole line takes. */
size_t event_format_need(const struct event *e, enum log_format fmt, char *buf, size_t len,
                         size_t *need);

/* A destination for rendered events. */
struct event_sink {
	enum log_format format;
	enum event_level min_level; /* events below are not written */
	void (*write)(struct event_sink *sink, const char *line, size_t len);
	void *arg;
};

#define EVENT_MAX_SINKS 8

struct event_bus {
	struct event_sink *sinks[EVENT_MAX_SINKS];
	size_t nsinks;
};

void event_bus_add(struct event_bus *bus, struct event_sink *sink);
void event_bus_remove(struct event_bus *bus, struct event_sink *sink);
void event_emit(struct event_bus *bus, struct event *e);

#endif
