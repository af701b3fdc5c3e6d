#include "drover/snapshot.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/supervisor.h"

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

void snapshot_build(struct supervisor *sup, struct snapshot *out)
{
	memset(out, 0, sizeof(*out));
	double now = supervisor_now();
	out->version = strdup(DROVER_VERSION);
	out->pid = getpid();
	out->config = strdup(sup->cfg.path);
	out->state_dir = strdup(sup->cfg.state_dir);
	out->uptime = now - sup->started;
	out->shutting_down = sup->shutting_down;
	if (sup->sampler_ok && sup->last_sample > 0) {
		struct snapshot_system *sys = &out->system;
		sys->has_metrics = true;
		memcpy(sys->load, sup->sampler.load, sizeof(sys->load));
		sys->cpu = sup->sampler.cpu;
		sys->mem_used = sup->sampler.mem_used;
		sys->mem_total = sup->sampler.mem_total;
		sys->ncpu = sup->sampler.ncpu;
	}

	size_t nworkers = 0;
	for (size_t i = 0; i < sup->ngroups; i++)
		nworkers += sup->groups[i]->nworkers;
	out->groups = calloc(sup->ngroups ? sup->ngroups : 1, sizeof(*out->groups));
	out->workers = calloc(nworkers ? nworkers : 1, sizeof(*out->workers));
	if (!out->groups || !out->workers)
		abort(); /* a front end without a picture is worse than a restart */

	for (size_t i = 0; i < sup->ngroups; i++) {
		const struct group *g = sup->groups[i];
		struct snapshot_group *sg = &out->groups[out->ngroups++];
		sg->name = strdup(g->name);
		sg->priority = g->prog->priority;
		sg->wanted = g->wanted;
		double busiest = 0;
		if (g->queue) {
			const struct store_counts *c = &g->queue->counts;
			sg->has_queue = true;
			sg->pending = c->n[TASK_PENDING];
			sg->running = c->n[TASK_RUNNING];
			sg->done = c->n[TASK_DONE];
			sg->failed = c->n[TASK_FAILED];
			sg->dead = c->n[TASK_DEAD];
			sg->rate = queue_rate(g->queue, now);
			sg->latency = queue_latency(g->queue, now);
		}
		for (size_t j = 0; j < g->nworkers; j++) {
			const struct worker *w = g->workers[j];
			struct snapshot_worker *sw = &out->workers[out->nworkers++];
			sw->name = strdup(w->spec.name);
			sw->group = strdup(g->name);
			sw->pid = w->pid;
			sw->state = w->fsm.state;
			sw->since = now - w->state_since;
			sw->uptime = w->pid > 0 ? now - w->started_at : 0;
			sw->restarts = w->spawns > 1 ? w->spawns - 1 : 0;
			if (w->last_status >= 0) {
				char status[32];
				fsm_describe_status(w->last_status, status, sizeof(status));
				sw->last_exit = strdup(status);
			}
			sw->reason = dup_or_null(w->reason);
			const struct worker_metrics *m = &w->metrics;
			sw->has_metrics = m->valid && w->pid > 0;
			sw->kstate = sw->has_metrics ? m->kstate : '-';
			sw->cpu = sw->has_metrics ? m->cpu : -1;
			sw->cpu_self = sw->has_metrics ? m->cpu_self : -1;
			if (sw->has_metrics) {
				sw->rss = m->rss;
				sw->rss_self = m->rss_self;
				sw->threads = m->threads;
				sw->procs = m->procs;
				sw->start_time = m->start_time;
				if (sup->sampler.mem_total)
					sw->mem_pct =
					    (double)m->rss * 100.0 / (double)sup->sampler.mem_total;
				sg->rss += m->rss;
				if (m->cpu > 0)
					sg->cpu += m->cpu;
				if (m->cpu > busiest) {
					busiest = m->cpu;
					free(sg->busiest);
					sg->busiest = strdup(w->spec.name);
				}
			}
			sg->counts[w->fsm.state]++;
			if (w->tasks) {
				sw->tasks_done = w->tasks->done;
				sw->tasks_inflight = task_link_inflight(w);
			}
			if (w->pid > 0)
				sg->actual++;
		}
	}
}

void snapshot_free(struct snapshot *snap)
{
	for (int i = 0; i < snap->ngroups; i++) {
		free(snap->groups[i].name);
		free(snap->groups[i].busiest);
	}
	for (int i = 0; i < snap->nworkers; i++) {
		struct snapshot_worker *w = &snap->workers[i];
		free(w->name);
		free(w->group);
		free(w->last_exit);
		free(w->reason);
	}
	free(snap->groups);
	free(snap->workers);
	free(snap->version);
	free(snap->config);
	free(snap->state_dir);
	memset(snap, 0, sizeof(*snap));
}

static json_t *worker_json(const struct snapshot_worker *w)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(w->name));
	json_object_set_new(o, "group", json_string(w->group));
	json_object_set_new(o, "state", json_string(fsm_state_name(w->state)));
	json_object_set_new(o, "pid", w->pid > 0 ? json_integer(w->pid) : json_null());
	json_object_set_new(o, "since", json_real(w->since));
	json_object_set_new(o, "uptime", json_real(w->uptime));
	json_object_set_new(o, "restarts", json_integer(w->restarts));
	json_object_set_new(o, "last_exit", w->last_exit ? json_string(w->last_exit) : json_null());
	json_object_set_new(o, "reason", w->reason ? json_string(w->reason) : json_null());
	if (w->has_metrics && w->pid > 0) {
		char ks[2] = {w->kstate, 0};
		json_object_set_new(o, "kstate", json_string(ks));
		json_object_set_new(o, "cpu", w->cpu >= 0 ? json_real(w->cpu) : json_null());
		json_object_set_new(o, "cpu_self",
		                    w->cpu_self >= 0 ? json_real(w->cpu_self) : json_null());
		json_object_set_new(o, "rss", json_integer((json_int_t)w->rss));
		json_object_set_new(o, "rss_self", json_integer((json_int_t)w->rss_self));
		json_object_set_new(o, "mem_pct", json_real(w->mem_pct));
		json_object_set_new(o, "threads", json_integer(w->threads));
		json_object_set_new(o, "procs", json_integer(w->procs));
		json_object_set_new(o, "start_time", json_real(w->start_time));
	} else {
		const char *keys[] = {"kstate",  "cpu",     "cpu_self", "rss",       "rss_self",
		                      "mem_pct", "threads", "procs",    "start_time"};
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			json_object_set_new(o, keys[k], json_null());
	}
	json_object_set_new(o, "tasks_done", json_integer(w->tasks_done));
	json_object_set_new(o, "tasks_inflight", json_integer(w->tasks_inflight));
	return o;
}

json_t *snapshot_to_json(const struct snapshot *snap)
{
	json_t *root = json_object(), *groups = json_array(), *workers = json_array();
	json_object_set_new(root, "version", json_string(snap->version));
	json_object_set_new(root, "pid", json_integer(snap->pid));
	json_object_set_new(root, "config", json_string(snap->config));
	json_object_set_new(root, "state_dir", json_string(snap->state_dir));
	json_object_set_new(root, "uptime", json_real(snap->uptime));
	json_object_set_new(root, "shutting_down", json_boolean(snap->shutting_down));
	const struct snapshot_system *sys = &snap->system;
	if (sys->has_metrics)
		json_object_set_new(
		    root, "system",
		    json_pack("{s:[f,f,f], s:f, s:I, s:I, s:i}", "load", sys->load[0], sys->load[1],
		              sys->load[2], "cpu", sys->cpu, "mem_used", (json_int_t)sys->mem_used,
		              "mem_total", (json_int_t)sys->mem_total, "ncpu", sys->ncpu));
	else
		json_object_set_new(root, "system", json_null());
	if (sys->has_metrics && sys->cpu < 0) /* no figure before two reads */
		json_object_set_new(json_object_get(root, "system"), "cpu", json_null());
	for (int i = 0; i < snap->ngroups; i++) {
		const struct snapshot_group *g = &snap->groups[i];
		json_t *o = json_object(), *counts = json_object();
		json_object_set_new(o, "name", json_string(g->name));
		json_object_set_new(o, "priority", json_integer(g->priority));
		json_object_set_new(o, "wanted", json_integer(g->wanted));
		json_object_set_new(o, "actual", json_integer(g->actual));
		for (int s = 0; s < WORKER__COUNT; s++)
			if (g->counts[s])
				json_object_set_new(counts, fsm_state_name((enum worker_state)s),
				                    json_integer(g->counts[s]));
		json_object_set_new(o, "states", counts);
		json_object_set_new(o, "cpu", json_real(g->cpu));
		json_object_set_new(o, "rss", json_integer((json_int_t)g->rss));
		json_object_set_new(o, "busiest",
		                    g->busiest ? json_string(g->busiest) : json_null());
		if (g->has_queue)
			json_object_set_new(
			    o, "queue",
			    json_pack("{s:I, s:I, s:I, s:I, s:I, s:f, s:f}", "pending",
			              (json_int_t)g->pending, "running", (json_int_t)g->running,
			              "done", (json_int_t)g->done, "failed", (json_int_t)g->failed,
			              "dead", (json_int_t)g->dead, "rate", g->rate, "latency",
			              g->latency));
		else
			json_object_set_new(o, "queue", json_null());
		json_array_append_new(groups, o);
	}
	for (int i = 0; i < snap->nworkers; i++)
		json_array_append_new(workers, worker_json(&snap->workers[i]));
	json_object_set_new(root, "groups", groups);
	json_object_set_new(root, "workers", workers);
	return root;
}
