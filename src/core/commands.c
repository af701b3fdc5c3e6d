/* The core side of the command vocabulary: resolve a target to workers and
 * act on them. Every front end's request ends here. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/control.h"
#include "drover/queue.h"
#include "drover/reload.h"
#include "drover/snapshot.h"
#include "drover/supervisor.h"

struct targets {
	struct worker **items;
	size_t count, cap;
	struct group *group; /* the one pool named, if the target named one */
};

static void targets_add(struct targets *t, struct worker *w)
{
	if (w->retire)
		return; /* on its way out: not addressable */
	if (t->count == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		struct worker **items = realloc(t->items, t->cap * sizeof(*items));
		if (!items)
			abort();
		t->items = items;
	}
	t->items[t->count++] = w;
}

static void targets_add_group(struct targets *t, struct group *g)
{
	for (size_t j = 0; j < g->nworkers; j++)
		targets_add(t, g->workers[j]);
}

static struct group *find_group(struct supervisor *sup, const char *name)
{
	for (size_t i = 0; i < sup->ngroups; i++)
		if (!sup->groups[i]->removing && !strcmp(sup->groups[i]->name, name))
			return sup->groups[i];
	return NULL;
}

/* A pool by its program name, or the pools of a [group:x] by its name. */
static bool add_named_group(struct supervisor *sup, const char *name, struct targets *t)
{
	struct group *g = find_group(sup, name);
	if (g) {
		t->group = g;
		targets_add_group(t, g);
		return true;
	}
	bool found = false;
	for (size_t i = 0; i < sup->ngroups; i++)
		if (!sup->groups[i]->removing && !strcmp(sup->groups[i]->prog->group, name)) {
			targets_add_group(t, sup->groups[i]);
			found = true;
		}
	return found;
}

/* all | GROUP | WORKER | GROUP:* | GROUP:WORKER */
static int resolve(struct supervisor *sup, const char *target, struct targets *t, char *err,
                   size_t errlen)
{
	memset(t, 0, sizeof(*t));
	if (!*target || !strcmp(target, "all")) {
		for (size_t i = 0; i < sup->ngroups; i++)
			targets_add_group(t, sup->groups[i]);
		return 0;
	}
	char group[256], name[256];
	command_split_target(target, group, sizeof(group), name, sizeof(name));
	if (group[0]) {
		struct targets in_group;
		memset(&in_group, 0, sizeof(in_group));
		if (!add_named_group(sup, group, &in_group)) {
			snprintf(err, errlen, "no such group '%s'", group);
			return -1;
		}
		if (!strcmp(name, "*")) {
			*t = in_group;
			return 0;
		}
		for (size_t i = 0; i < in_group.count; i++)
			if (!strcmp(in_group.items[i]->spec.name, name))
				targets_add(t, in_group.items[i]);
		free(in_group.items);
		if (!t->count) {
			snprintf(err, errlen, "no worker '%.200s' in group '%.200s'", name, group);
			return -1;
		}
		return 0;
	}
	if (add_named_group(sup, name, t))
		return 0;
	struct worker *w = supervisor_find_worker(sup, name);
	if (w && !w->retire) {
		targets_add(t, w);
		return 0;
	}
	snprintf(err, errlen, "no such group or worker '%s'", name);
	return -1;
}

static json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *fail(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", buf);
}

static json_t *ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *ok(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 1, "message", buf);
}

/* What one command does to one worker; returns false (with why) when the
 * worker's state does not allow it. */
static bool act(const struct command *cmd, struct worker *w, const char **why)
{
	enum worker_state s = w->fsm.state;
	const struct program_config *p = w->group->prog;
	switch (cmd->spec->id) {
	case CMD_START:
		if (s == WORKER_STOPPING) {
			w->start_after_stop = true;
			return true;
		}
		if (worker_alive(w)) {
			*why = "already running";
			return false;
		}
		worker_event(w, FSM_START);
		return true;
	case CMD_STOP:
		w->start_after_stop = false;
		if (s == WORKER_STOPPED || s == WORKER_FATAL ||
		    (s == WORKER_EXITED && !loop_timer_armed(&w->timer))) {
			*why = "not running";
			return false;
		}
		if (s != WORKER_STOPPING)
			worker_event(w, FSM_STOP);
		return true;
	case CMD_RESTART:
		if (worker_alive(w)) {
			w->start_after_stop = true;
			if (s != WORKER_STOPPING)
				worker_event(w, FSM_STOP);
		} else {
			worker_event(w, FSM_START);
		}
		return true;
	case CMD_PAUSE:
		if (s != WORKER_RUNNING) {
			*why = s == WORKER_PAUSED ? "already paused" : "not running";
			return false;
		}
		worker_event(w, FSM_PAUSE);
		return true;
	case CMD_RESUME:
		if (s != WORKER_PAUSED) {
			*why = "not paused";
			return false;
		}
		worker_event(w, FSM_RESUME);
		return true;
	case CMD_KILL:
		if (!worker_alive(w)) {
			*why = "not running";
			return false;
		}
		if (worker_signal(w, cmd->signo, p->stopasgroup) < 0) {
			*why = "signal failed";
			return false;
		}
		return true;
	default:
		*why = "not a worker command";
		return false;
	}
}

static json_t *on_workers(struct supervisor *sup, const struct command *cmd)
{
	char err[512];
	struct targets t;
	if (resolve(sup, cmd->target, &t, err, sizeof(err)) < 0)
		return fail("%s", err);
	json_t *done = json_array(), *skipped = json_array();
	const char *why = "";
	for (size_t i = 0; i < t.count; i++) {
		struct worker *w = t.items[i];
		const char *this_why = NULL;
		if (act(cmd, w, &this_why)) {
			json_array_append_new(done, json_string(w->spec.name));
		} else {
			why = this_why;
			json_array_append_new(
			    skipped, json_pack("{s:s, s:s, s:s}", "worker", w->spec.name, "state",
			                       fsm_state_name(w->fsm.state), "why", this_why));
		}
	}
	size_t ndone = json_array_size(done);
	json_t *reply;
	if (ndone == 0 && t.count == 1)
		reply = fail("%s: %s (%s)", t.items[0]->spec.name, why,
		             fsm_state_name(t.items[0]->fsm.state));
	else if (ndone == 0 && t.count > 0)
		reply = fail("%s: no worker could %s (%s)", cmd->target, cmd->spec->name, why);
	else if (t.count == 0)
		reply = fail("%s: no workers", cmd->target);
	else
		reply = ok("%s: %s %zu worker%s", cmd->target[0] ? cmd->target : "all",
		           cmd->spec->name, ndone, ndone == 1 ? "" : "s");
	json_object_set_new(reply, "workers", done);
	json_object_set_new(reply, "skipped", skipped);
	free(t.items);
	return reply;
}

static json_t *on_scale(struct supervisor *sup, const struct command *cmd)
{
	struct group *g = find_group(sup, cmd->target);
	if (!g)
		return fail("no such group '%s'", cmd->target);
	int from = g->wanted;
	int to = cmd->scale_relative ? from + cmd->scale_n : cmd->scale_n;
	if (to < 0 || to > SCALE_MAX)
		return fail("scale: N must be between 0 and %d (%s has %d)", SCALE_MAX, g->name,
		            from);
	char err[256];
	if (group_scale(g, to, err, sizeof(err)) < 0)
		return fail("scale %s: %s", g->name, err);
	struct event e;
	event_init(&e, EVENT_INFO, "scale");
	event_str(&e, "group", g->name);
	event_int(&e, "from", from);
	event_int(&e, "to", to);
	supervisor_emit(sup, &e);
	json_t *reply = ok("%s: %d \u2192 %d workers", g->name, from, to);
	json_object_set_new(reply, "group", json_string(g->name));
	json_object_set_new(reply, "from", json_integer(from));
	json_object_set_new(reply, "to", json_integer(to));
	return reply;
}

static json_t *on_log(struct supervisor *sup, const struct command *cmd)
{
	char err[512];
	struct targets t;
	if (resolve(sup, cmd->target, &t, err, sizeof(err)) < 0)
		return fail("%s", err);
	if (t.count != 1) {
		free(t.items);
		return fail("log: '%s' names %zu workers; name one", cmd->target, t.count);
	}
	struct worker *w = t.items[0];
	free(t.items);
	json_t *lines = json_array();
	size_t n = (size_t)cmd->log_lines < w->ring.count ? (size_t)cmd->log_lines : w->ring.count;
	for (size_t i = n; i-- > 0;)
		json_array_append_new(lines, json_string(ring_get(&w->ring, i)));
	json_t *reply =
	    json_pack("{s:b, s:s, s:o}", "ok", 1, "worker", w->spec.name, "lines", lines);
	return reply;
}

static json_t *on_status(struct supervisor *sup, const struct command *cmd)
{
	struct snapshot snap;
	monitor_watch(sup);
	snapshot_build(sup, &snap);
	json_t *reply = snapshot_to_json(&snap);
	snapshot_free(&snap);
	if (cmd->target[0]) {
		char err[512];
		struct targets t;
		if (resolve(sup, cmd->target, &t, err, sizeof(err)) < 0) {
			json_decref(reply);
			return fail("%s", err);
		}
		/* keep only the workers named, and their groups */
		json_t *workers = json_object_get(reply, "workers"), *kept = json_array();
		json_t *groups = json_object_get(reply, "groups"), *kept_groups = json_array();
		size_t i;
		json_t *v;
		json_array_foreach(workers, i, v)
		{
			const char *name = json_string_value(json_object_get(v, "name"));
			for (size_t k = 0; k < t.count; k++)
				if (!strcmp(t.items[k]->spec.name, name)) {
					json_array_append(kept, v);
					break;
				}
		}
		json_array_foreach(groups, i, v)
		{
			const char *name = json_string_value(json_object_get(v, "name"));
			for (size_t k = 0; k < t.count; k++)
				if (!strcmp(t.items[k]->group->name, name)) {
					json_array_append(kept_groups, v);
					break;
				}
		}
		json_object_set_new(reply, "workers", kept);
		json_object_set_new(reply, "groups", kept_groups);
		free(t.items);
	}
	json_object_set_new(reply, "ok", json_true());
	return reply;
}

json_t *supervisor_execute(struct supervisor *sup, const struct command *cmd)
{
	switch (cmd->spec->id) {
	case CMD_STATUS:
		return on_status(sup, cmd);
	case CMD_START:
	case CMD_STOP:
	case CMD_RESTART:
	case CMD_PAUSE:
	case CMD_RESUME:
	case CMD_KILL:
		if (sup->shutting_down && cmd->spec->id != CMD_STOP && cmd->spec->id != CMD_KILL)
			return fail("drover is shutting down");
		return on_workers(sup, cmd);
	case CMD_SCALE:
		if (sup->shutting_down)
			return fail("drover is shutting down");
		return on_scale(sup, cmd);
	case CMD_RELOAD:
		if (sup->shutting_down)
			return fail("drover is shutting down");
		return supervisor_reload(sup);
	case CMD_REOPEN:
		supervisor_reopen_logs(sup);
		return ok("log files reopened");
	case CMD_LOG:
		return on_log(sup, cmd);
	case CMD_SHUTDOWN:
		supervisor_shutdown(sup, "command:shutdown");
		return ok("shutting down");
	case CMD_TASKS:
		return queue_tasks(sup, cmd->target, cmd->arg);
	case CMD_TASK:
		return queue_task(sup, cmd->target);
	case CMD_CANCEL:
		/* in process, the reply now; the server has its wait for the commit */
		return queue_cancel(sup, cmd->target, NULL, NULL);
	case CMD_RETRY:
		return queue_retry(sup, cmd->target, NULL, NULL);
	case CMD_SUBMIT: /* need the request's tasks: the server calls queue_submit */
	case CMD_WAIT:   /* replies later: the server calls queue_wait */
	case CMD_EVENTS:
	case CMD__COUNT:
		break;
	}
	return fail("%s cannot be run here", cmd->spec->name);
}
