/* The `status` reply read into rows. The reply is the snapshot's JSON in
 * both console modes (in-process and attached), so this is the console's
 * only view of the supervisor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/ui_table.h"

static const char *str_or_null(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static double num_or_nan(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static long long int_or(json_t *o, const char *key, long long dflt)
{
	json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return dflt;
}

static int state_id(const char *name)
{
	for (int s = 0; name && s < WORKER__COUNT; s++)
		if (!strcmp(fsm_state_name((enum worker_state)s), name))
			return s;
	return -1;
}

static void read_group(json_t *o, struct ui_group *g)
{
	g->name = str_or_null(o, "name");
	if (!g->name)
		g->name = "?";
	g->wanted = (int)int_or(o, "wanted", 0);
	g->actual = (int)int_or(o, "actual", 0);
	json_t *states = json_object_get(o, "states");
	for (int s = 0; s < WORKER__COUNT; s++)
		g->counts[s] = (int)int_or(states, fsm_state_name((enum worker_state)s), 0);
	g->cpu = num_or_nan(o, "cpu");
	g->rss = int_or(o, "rss", -1);
	json_t *q = json_object_get(o, "queue");
	g->has_queue = json_is_object(q);
	if (g->has_queue) {
		g->pending = int_or(q, "pending", 0);
		g->running = int_or(q, "running", 0);
		g->done = int_or(q, "done", 0);
		g->failed = int_or(q, "failed", 0);
		g->dead = int_or(q, "dead", 0);
		g->rate = num_or_nan(q, "rate");
		g->latency = num_or_nan(q, "latency");
	}
}

static void read_worker(json_t *o, struct ui_worker *w)
{
	w->name = str_or_null(o, "name");
	if (!w->name)
		w->name = "?";
	w->group = str_or_null(o, "group");
	if (!w->group)
		w->group = "";
	w->state = str_or_null(o, "state");
	if (!w->state)
		w->state = "?";
	w->state_id = state_id(w->state);
	w->last_exit = str_or_null(o, "last_exit");
	w->reason = str_or_null(o, "reason");
	w->pid = (long)int_or(o, "pid", 0);
	w->since = num_or_nan(o, "since");
	w->uptime = num_or_nan(o, "uptime");
	w->restarts = (long)int_or(o, "restarts", 0);
	w->cpu = num_or_nan(o, "cpu");
	w->mem_pct = num_or_nan(o, "mem_pct");
	w->rss = int_or(o, "rss", -1);
	w->threads = (int)int_or(o, "threads", -1);
	w->procs = (int)int_or(o, "procs", -1);
	w->tasks_done = int_or(o, "tasks_done", -1);
	w->tasks_inflight = (int)int_or(o, "tasks_inflight", -1);
}

int ui_snapshot_parse(json_t *root, struct ui_snapshot *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!json_is_object(root)) {
		snprintf(err, errlen, "status: the reply is not an object");
		return -1;
	}
	json_t *ok = json_object_get(root, "ok");
	if (ok && !json_is_true(ok)) {
		snprintf(err, errlen, "status: %s", str_or_null(root, "error") ?: "failed");
		return -1;
	}
	json_t *groups = json_object_get(root, "groups"),
	       *workers = json_object_get(root, "workers");
	if (!json_is_array(groups) || !json_is_array(workers)) {
		snprintf(err, errlen, "status: the reply has no groups and workers");
		return -1;
	}
	out->root = json_incref(root);
	out->version = str_or_null(root, "version") ?: "?";
	out->config = str_or_null(root, "config") ?: "?";
	out->pid = (long)int_or(root, "pid", 0);
	out->uptime = num_or_nan(root, "uptime");
	out->shutting_down = json_is_true(json_object_get(root, "shutting_down"));
	json_t *sys = json_object_get(root, "system");
	out->has_system = json_is_object(sys);
	out->sys_cpu = out->load[0] = out->load[1] = out->load[2] = NAN;
	out->mem_used = out->mem_total = -1;
	if (out->has_system) {
		out->sys_cpu = num_or_nan(sys, "cpu");
		json_t *load = json_object_get(sys, "load");
		for (size_t i = 0; i < 3; i++) {
			json_t *v = json_array_get(load, i);
			if (json_is_number(v))
				out->load[i] = json_number_value(v);
		}
		out->mem_used = int_or(sys, "mem_used", -1);
		out->mem_total = int_or(sys, "mem_total", -1);
		out->ncpu = (int)int_or(sys, "ncpu", 0);
	}

	size_t ng = json_array_size(groups), nw = json_array_size(workers);
	out->groups = calloc(ng ? ng : 1, sizeof(*out->groups));
	out->workers = calloc(nw ? nw : 1, sizeof(*out->workers));
	if (!out->groups || !out->workers) {
		ui_snapshot_free(out);
		snprintf(err, errlen, "status: out of memory");
		return -1;
	}
	for (size_t i = 0; i < ng; i++) {
		read_group(json_array_get(groups, i), &out->groups[i]);
		out->groups[i].first = -1;
	}
	out->ngroups = (int)ng;
	/* workers come grouped, in group order: each group is one run */
	int gi = -1;
	for (size_t i = 0; i < nw; i++) {
		struct ui_worker *w = &out->workers[i];
		read_worker(json_array_get(workers, i), w);
		w->order = (int)i;
		if (gi < 0 || strcmp(out->groups[gi].name, w->group))
			gi = ui_snapshot_group(out, w->group);
		w->group_index = gi;
		if (gi >= 0) {
			struct ui_group *g = &out->groups[gi];
			if (g->first < 0)
				g->first = (int)i;
			g->nworkers++;
		}
	}
	out->nworkers = (int)nw;
	return 0;
}

void ui_snapshot_free(struct ui_snapshot *s)
{
	free(s->groups);
	free(s->workers);
	if (s->root)
		json_decref(s->root);
	memset(s, 0, sizeof(*s));
}

int ui_snapshot_group(const struct ui_snapshot *s, const char *name)
{
	for (int i = 0; i < s->ngroups; i++)
		if (!strcmp(s->groups[i].name, name))
			return i;
	return -1;
}

int ui_snapshot_worker(const struct ui_snapshot *s, const char *name)
{
	for (int i = 0; i < s->nworkers; i++)
		if (!strcmp(s->workers[i].name, name))
			return i;
	return -1;
}
