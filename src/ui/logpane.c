/* The log pane: the selected worker's recent output (the `log` command, so
 * both console modes read the same ring), or drover's own event log as it
 * arrived on the event feed. It follows new lines unless scrolled back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console_internal.h"
#include "drover/event.h"

static void free_lines(struct console *c)
{
	for (int i = 0; i < c->nlog; i++)
		free(c->log_lines[i]);
	free(c->log_lines);
	c->log_lines = NULL;
	c->nlog = 0;
}

void logpane_free(struct console *c)
{
	free_lines(c);
	for (int i = 0; i < CONSOLE_EVENTS_MAX; i++)
		free(c->events[i].text);
	memset(c->events, 0, sizeof(c->events));
	c->ev_count = c->ev_head = 0;
}

static int level_of(const char *s)
{
	if (!s)
		return EVENT_INFO;
	if (!strcmp(s, "debug"))
		return EVENT_DEBUG;
	if (!strcmp(s, "warn"))
		return EVENT_WARN;
	if (!strcmp(s, "error"))
		return EVENT_ERROR;
	return EVENT_INFO;
}

/* "2026-11-24T18:27:18.123Z" (UTC) -> "18:27:18" local */
static void local_time(const char *ts, char *buf, size_t len)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!ts || sscanf(ts, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
		snprintf(buf, len, "--:--:--");
		return;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	localtime_r(&t, &tm);
	strftime(buf, len, "%H:%M:%S", &tm);
}

void logpane_event_text(json_t *ev, char *line, size_t len)
{
	char when[16];
	const char *name = json_string_value(json_object_get(ev, "event"));
	local_time(json_string_value(json_object_get(ev, "ts")), when, sizeof(when));
	int off = snprintf(line, len, "%s %-8s", when, name ? name : "?");
	const char *key;
	json_t *v;
	json_object_foreach(ev, key, v)
	{
		if (off >= (int)len || !strcmp(key, "ts") || !strcmp(key, "event") ||
		    !strcmp(key, "level"))
			continue;
		char *val = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY);
		const char *text = val ? val : json_string_value(v);
		bool quote = json_is_string(v) && strchr(text, ' ');
		off += snprintf(line + off, len - (size_t)off, quote ? " %s=\"%s\"" : " %s=%s", key,
		                text);
		free(val);
	}
}

void logpane_event(struct console *c, json_t *ev)
{
	char line[1024];
	logpane_event_text(ev, line, sizeof(line));
	struct console_event *slot = &c->events[c->ev_head];
	free(slot->text);
	slot->text = strdup(line);
	slot->level = level_of(json_string_value(json_object_get(ev, "level")));
	c->ev_head = (c->ev_head + 1) % CONSOLE_EVENTS_MAX;
	if (c->ev_count < CONSOLE_EVENTS_MAX)
		c->ev_count++;
}

/* The worker under the cursor, or NULL on a group row. */
static const char *selected_worker(const struct console *c)
{
	if (!c->nlines || c->sel >= c->nlines || c->lines[c->sel].group)
		return NULL;
	return c->snap.workers[c->lines[c->sel].index].name;
}

void logpane_fetch(struct console *c)
{
	const char *name = selected_worker(c);
	c->log_stale = false;
	if (!name) {
		free_lines(c);
		c->log_worker[0] = '\0';
		snprintf(c->log_err, sizeof(c->log_err), "select a worker to see its output");
		return;
	}
	if (strcmp(name, c->log_worker))
		c->log_scroll = 0;
	snprintf(c->log_worker, sizeof(c->log_worker), "%s", name);
	json_t *reply = ui_backend_request(&c->be, "log", name, CONSOLE_LOG_LINES);
	json_t *lines = json_object_get(reply, "lines");
	if (!json_is_true(json_object_get(reply, "ok")) || !json_is_array(lines)) {
		const char *err = json_string_value(json_object_get(reply, "error"));
		snprintf(c->log_err, sizeof(c->log_err), "%s", err ? err : "no log");
		free_lines(c);
		json_decref(reply);
		return;
	}
	c->log_err[0] = '\0';
	free_lines(c);
	size_t n = json_array_size(lines);
	c->log_lines = calloc(n ? n : 1, sizeof(*c->log_lines));
	for (size_t i = 0; c->log_lines && i < n; i++) {
		const char *s = json_string_value(json_array_get(lines, i));
		c->log_lines[c->nlog] = strdup(s ? s : "");
		if (c->log_lines[c->nlog])
			c->nlog++;
	}
	json_decref(reply);
}

static enum theme_role level_role(int level)
{
	switch (level) {
	case EVENT_DEBUG:
		return THEME_LOG_DEBUG;
	case EVENT_WARN:
		return THEME_LOG_WARN;
	case EVENT_ERROR:
		return THEME_LOG_ERROR;
	default:
		return THEME_LOG_INFO;
	}
}

void logpane_draw(struct console *c, int y, int rows)
{
	int body = rows - 1, total = c->log_events ? c->ev_count : c->nlog;
	int max_scroll = total - body > 0 ? total - body : 0;
	if (c->log_scroll > max_scroll)
		c->log_scroll = max_scroll;
	char title[400];
	const char *follow = c->log_scroll ? "scrolled back: End follows" : "following";
	const char *focus = c->log_focus ? "Tab: back to the table" : "Tab: scroll";
	if (c->log_events)
		snprintf(title, sizeof(title), " Events: drover's own log  (%s, %s)", follow,
		         focus);
	else if (c->log_worker[0])
		snprintf(title, sizeof(title), " Log: %s  (%s, %s)", c->log_worker, follow, focus);
	else
		snprintf(title, sizeof(title), " Log");
	console_put(c, y, 0, c->cols, THEME_LOG_TITLE, title, false);
	for (int i = 0; i < body; i++)
		console_fill(c, y + 1 + i, 0, c->cols, THEME_LOG);
	if (!c->log_events && c->log_err[0]) {
		console_put(c, y + 1, 1, c->cols - 1, THEME_ROW_DIM, c->log_err, false);
		return;
	}
	if (!total) {
		/* a task pool's stdout is its results: only stderr lands here */
		console_put(c, y + 1, 1, c->cols - 1, THEME_ROW_DIM,
		            c->log_events ? "no events yet" : "no output yet", false);
		return;
	}
	int end = total - c->log_scroll, start = end - body > 0 ? end - body : 0;
	for (int i = start; i < end; i++) {
		int row = y + 1 + (i - start);
		if (c->log_events) {
			/* the ring, oldest first */
			int slot = (c->ev_head - c->ev_count + i + CONSOLE_EVENTS_MAX) %
			           CONSOLE_EVENTS_MAX;
			const struct console_event *e = &c->events[slot];
			console_put(c, row, 1, c->cols - 1, level_role(e->level),
			            e->text ? e->text : "", false);
		} else {
			console_put(c, row, 1, c->cols - 1, THEME_LOG, c->log_lines[i], false);
		}
	}
}
