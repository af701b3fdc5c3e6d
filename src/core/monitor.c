/* Live figures for every worker: one sampler read per tick, turned into
 * per-worker and per-tree CPU% and RSS, acted on by the limits, and written
 * as headless metrics events. Ticks come at `refresh` while someone looks
 * (a console, an event stream, a recent status request) or a limit needs
 * them, and only every metrics_interval otherwise. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "drover/supervisor.h"

#define WATCH_LINGER 30.0 /* seconds a status request keeps the sampler at `refresh` */

static bool any_limits(const struct supervisor *sup)
{
	for (size_t i = 0; i < sup->ngroups; i++) {
		const struct program_config *p = sup->groups[i]->prog;
		if (p->memory_limit || p->cpu_limit > 0)
			return true;
	}
	return false;
}

static double refresh_of(const struct supervisor *sup)
{
	double r = sup->cfg.refresh;
	return r >= 0.1 ? r : 1.0;
}

/* When the next metrics events are due: metrics_interval after the last
 * ones (or after the last tick, if that tick wrote none). */
static double events_due(const struct supervisor *sup)
{
	double every = sup->cfg.metrics_interval;
	double due = sup->last_metrics_event + every;
	return due > sup->last_sample ? due : sup->last_sample + every;
}

/* When the next tick is due (monotonic seconds), or 0 for none: `refresh`
 * after the last tick while someone looks or a limit needs it, else in time
 * for the next metrics events. A `refresh` longer than metrics_interval
 * must not stretch the events' period either. */
static double next_due(const struct supervisor *sup, double now)
{
	double every = sup->cfg.metrics_interval;
	if (sup->watchers > 0 || now < sup->watched_until || any_limits(sup)) {
		double due = sup->last_sample + refresh_of(sup);
		if (every > 0 && every < refresh_of(sup) && events_due(sup) < due)
			due = events_due(sup);
		return due;
	}
	return every > 0 ? events_due(sup) : 0;
}

static void update_worker(struct supervisor *sup, struct worker *w, double now)
{
	struct worker_metrics *m = &w->metrics;
	const struct sampler *s = &sup->sampler;
	int idx = w->pid > 0 ? proc_table_find(&s->table, w->pid) : -1;
	if (idx < 0) {
		m->valid = false;
		return;
	}
	const struct proc_sample *p = &s->table.procs[idx];
	struct tree_sum sum;
	proc_tree_sum(&s->table, idx, &sum);
	m->cpu_self =
	    cpu_track_update(&m->self, p->pid, p->began, p->ticks, now, s->hertz, s->ncpu);
	bool same = m->tree.valid && m->tree.pid == p->pid && m->tree.began == p->began;
	double prev_tree = m->cpu;
	double tree =
	    cpu_track_update(&m->tree, p->pid, p->began, sum.ticks_c, now, s->hertz, s->ncpu);
	/* a member leaving the tree unwaited lowers the sum: keep the last
	 * figure for that tick rather than show none */
	m->cpu = tree < 0 && same && m->valid ? prev_tree : tree;
	m->rss = sum.rss;
	m->rss_self = p->rss;
	m->procs = sum.procs;
	m->threads = p->threads;
	m->kstate = p->state;
	m->start_time = s->boot_wall + (double)p->began / (double)s->hertz;
	m->valid = true;
}

static void restart_for_limit(struct supervisor *sup, struct worker *w, const char *what,
                              double value, double limit)
{
	struct event e;
	event_init(&e, EVENT_WARN, "limit");
	event_str(&e, "worker", w->spec.name);
	event_str(&e, "limit_kind", what);
	if (!strcmp(what, "memory")) {
		event_int(&e, "rss", (long long)value);
		event_int(&e, "limit", (long long)limit);
	} else {
		event_num(&e, "cpu", value);
		event_num(&e, "limit", limit);
	}
	supervisor_emit(sup, &e);
	w->start_after_stop = true;
	worker_event(w, FSM_STOP);
}

/* Time above a limit starts when first seen over it; a restart comes once
 * it lasted limit_grace seconds. */
static bool over_for(double *since, bool over, double now, double grace)
{
	if (!over) {
		*since = 0;
		return false;
	}
	if (*since == 0)
		*since = now;
	return now - *since >= grace;
}

static void check_limits(struct supervisor *sup, struct worker *w, double now)
{
	const struct program_config *p = w->group->prog;
	struct worker_metrics *m = &w->metrics;
	if (!m->valid || w->fsm.state != WORKER_RUNNING) {
		m->over_memory_since = m->over_cpu_since = 0;
		return;
	}
	if (p->memory_limit &&
	    over_for(&m->over_memory_since, m->rss > p->memory_limit, now, p->limit_grace)) {
		m->over_memory_since = 0;
		restart_for_limit(sup, w, "memory", (double)m->rss, (double)p->memory_limit);
		return;
	}
	if (p->cpu_limit > 0 && m->cpu >= 0 &&
	    over_for(&m->over_cpu_since, m->cpu > p->cpu_limit, now, p->limit_grace)) {
		m->over_cpu_since = 0;
		restart_for_limit(sup, w, "cpu", m->cpu, p->cpu_limit);
	}
}

static void emit_metrics(struct supervisor *sup)
{
	for (size_t i = 0; i < sup->ngroups; i++) {
		struct group *g = sup->groups[i];
		double cpu = 0;
		unsigned long long rss = 0;
		int procs = 0, live = 0;
		for (size_t j = 0; j < g->nworkers; j++) {
			struct worker *w = g->workers[j];
			const struct worker_metrics *m = &w->metrics;
			if (!m->valid)
				continue;
			struct event e;
			event_init(&e, EVENT_INFO, "metrics");
			event_str(&e, "worker", w->spec.name);
			event_int(&e, "pid", w->pid);
			if (m->cpu >= 0)
				event_num(&e, "cpu", round(m->cpu * 10) / 10);
			event_int(&e, "rss", (long long)m->rss);
			event_int(&e, "threads", m->threads);
			event_int(&e, "procs", m->procs);
			supervisor_emit(sup, &e);
			cpu += m->cpu > 0 ? m->cpu : 0;
			rss += m->rss;
			procs += m->procs;
			live++;
		}
		struct event e;
		event_init(&e, EVENT_INFO, "metrics");
		event_str(&e, "group", g->name);
		event_int(&e, "workers", live);
		event_num(&e, "cpu", round(cpu * 10) / 10);
		event_int(&e, "rss", (long long)rss);
		event_int(&e, "procs", procs);
		supervisor_emit(sup, &e);
	}
}

static void tick(struct supervisor *sup)
{
	char err[256];
	if (sampler_read(&sup->sampler, err, sizeof(err)) < 0) {
		struct event e;
		event_init(&e, EVENT_WARN, "metrics");
		event_str(&e, "error", err);
		supervisor_emit(sup, &e);
	}
	/* the same clock as supervisor_now (CLOCK_MONOTONIC) */
	double now = sup->sampler.when;
	sup->last_sample = now;
	for (size_t i = 0; i < sup->ngroups; i++)
		for (size_t j = 0; j < sup->groups[i]->nworkers; j++)
			update_worker(sup, sup->groups[i]->workers[j], now);
	if (!sup->shutting_down)
		for (size_t i = 0; i < sup->ngroups; i++)
			for (size_t j = 0; j < sup->groups[i]->nworkers; j++)
				check_limits(sup, sup->groups[i]->workers[j], now);
	double every = sup->cfg.metrics_interval;
	if (every > 0 && now - sup->last_metrics_event >= every - 0.05 && !sup->shutting_down) {
		sup->last_metrics_event = now;
		emit_metrics(sup);
		queue_emit_events(sup);
	}
}

static void tick_fired(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	struct supervisor *sup = t->arg;
	tick(sup);
	monitor_schedule(sup);
}

void monitor_schedule(struct supervisor *sup)
{
	if (!sup->sampler_ok)
		return;
	double now = supervisor_now();
	double due = next_due(sup, now);
	if (due <= 0) {
		loop_timer_cancel(&sup->loop, &sup->sample_timer);
		return;
	}
	if (due < now)
		due = now;
	/* always re-arm: after a tick that a status request made, the old
	 * deadline may be due in this very loop turn, and a second tick a few
	 * milliseconds later gives CPU% over a sliver of time (0 %, 130 %) */
	loop_timer_arm(&sup->loop, &sup->sample_timer, loop_secs(due));
}

void monitor_watch(struct supervisor *sup)
{
	if (!sup->sampler_ok)
		return;
	double now = supervisor_now();
	sup->watched_until = now + WATCH_LINGER;
	if (now - sup->last_sample >= refresh_of(sup))
		tick(sup);
	monitor_schedule(sup);
}

void monitor_start(struct supervisor *sup)
{
	char err[256];
	sup->sample_timer.cb = tick_fired;
	sup->sample_timer.arg = sup;
	if (sampler_open(&sup->sampler, err, sizeof(err)) < 0) {
		struct event e;
		event_init(&e, EVENT_WARN, "metrics");
		event_str(&e, "error", err);
		supervisor_emit(sup, &e);
		return;
	}
	sup->sampler_ok = true;
	sup->last_metrics_event = supervisor_now();
	tick(sup); /* a baseline, so the first scheduled tick has CPU% */
	monitor_schedule(sup);
}

void monitor_stop(struct supervisor *sup)
{
	loop_timer_cancel(&sup->loop, &sup->sample_timer);
	if (sup->sampler_ok)
		sampler_close(&sup->sampler);
	sup->sampler_ok = false;
}
