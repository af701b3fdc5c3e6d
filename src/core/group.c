/* A pool of workers from one program, and resizing it at run time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/supervisor.h"

static int group_reserve(struct group *g, size_t n)
{
	if (n <= g->cap)
		return 0;
	size_t cap = g->cap ? g->cap : 8;
	while (cap < n)
		cap *= 2;
	struct worker **workers = realloc(g->workers, cap * sizeof(*workers));
	if (!workers)
		return -1;
	g->workers = workers;
	g->cap = cap;
	return 0;
}

/* Insert keeping index order (a grow may land between retiring workers). */
static int group_insert(struct group *g, struct worker *w)
{
	if (group_reserve(g, g->nworkers + 1) < 0)
		return -1;
	size_t at = g->nworkers;
	while (at > 0 && g->workers[at - 1]->index > w->index)
		at--;
	memmove(&g->workers[at + 1], &g->workers[at], (g->nworkers - at) * sizeof(*g->workers));
	g->workers[at] = w;
	g->nworkers++;
	return 0;
}

static struct worker *group_worker_at(struct group *g, int index)
{
	for (size_t i = 0; i < g->nworkers; i++)
		if (g->workers[i]->index == index)
			return g->workers[i];
	return NULL;
}

struct group *group_new(struct supervisor *sup, const struct program_config *prog)
{
	struct group *g = calloc(1, sizeof(*g));
	if (!g || !(g->name = strdup(prog->name))) {
		free(g);
		return NULL;
	}
	g->sup = sup;
	g->prog = prog;
	g->wanted = prog->numprocs;
	for (int i = 0; i < prog->numprocs; i++) {
		char err[256];
		struct worker *w = worker_new(sup, g, i, err, sizeof(err));
		if (!w || group_insert(g, w) < 0) {
			struct event e;
			event_init(&e, EVENT_ERROR, "error");
			event_str(&e, "group", g->name);
			event_str(&e, "error", w ? "out of memory" : err);
			supervisor_emit(sup, &e);
			worker_free(w);
		}
	}
	queue_group_init(sup, g);
	return g;
}

void group_free(struct group *g)
{
	for (size_t i = 0; i < g->nworkers; i++) {
		orphans_forget_owner(g->workers[i]->sup, g->workers[i]);
		worker_free(g->workers[i]);
	}
	free(g->workers);
	queue_group_free(g);
	free(g->name);
	free(g);
}

/* Take a worker out of service: stop it if it runs, forget a pending
 * restart, and let supervisor_collect free it. */
static void retire(struct worker *w)
{
	w->retire = true;
	w->start_after_stop = false;
	if (task_link_drain(w))
		return; /* stops once its tasks are done, or at stopwaitsecs */
	if (w->fsm.state != WORKER_STOPPING)
		worker_event(w, FSM_STOP);
}

/* Bring a retiring worker back, as if it had never been scaled away. */
static void unretire(struct worker *w)
{
	w->retire = false;
	if (w->tasks)
		w->tasks->draining = false;
	if (w->fsm.state == WORKER_STOPPING)
		w->start_after_stop = true;
	else if (!worker_alive(w))
		worker_event(w, FSM_START);
}

int group_scale(struct group *g, int n, char *err, size_t errlen)
{
	g->wanted = n;
	for (int i = 0; i < n; i++) {
		struct worker *w = group_worker_at(g, i);
		if (w) {
			if (w->retire)
				unretire(w);
			continue;
		}
		w = worker_new(g->sup, g, i, err, errlen);
		if (!w)
			return -1;
		if (supervisor_find_worker(g->sup, w->spec.name)) {
			snprintf(err, errlen, "a worker named '%s' exists already", w->spec.name);
			worker_free(w);
			return -1;
		}
		if (group_insert(g, w) < 0) {
			worker_free(w);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		worker_event(w, FSM_START);
	}
	for (size_t i = 0; i < g->nworkers; i++)
		if (g->workers[i]->index >= n && !g->workers[i]->retire)
			retire(g->workers[i]);
	return 0;
}

static bool collectable(const struct worker *w)
{
	return w->retire && !worker_alive(w) && w->fsm.state != WORKER_STOPPING;
}

void supervisor_collect(struct supervisor *sup)
{
	for (size_t i = 0; i < sup->ngroups;) {
		struct group *g = sup->groups[i];
		size_t kept = 0;
		for (size_t j = 0; j < g->nworkers; j++) {
			struct worker *w = g->workers[j];
			if (collectable(w)) {
				orphans_forget_owner(sup, w);
				worker_free(w);
			} else {
				g->workers[kept++] = w;
			}
		}
		g->nworkers = kept;
		if (g->removing && g->nworkers == 0) {
			group_free(g);
			memmove(&sup->groups[i], &sup->groups[i + 1],
			        (sup->ngroups - i - 1) * sizeof(*sup->groups));
			sup->ngroups--;
			continue;
		}
		i++;
	}
	bool removing = false;
	for (size_t i = 0; i < sup->ngroups; i++)
		removing |= sup->groups[i]->removing;
	if (!removing && sup->nretired) {
		for (size_t i = 0; i < sup->nretired; i++) {
			config_free(sup->retired_cfgs[i]);
			free(sup->retired_cfgs[i]);
		}
		sup->nretired = 0;
	}
}
