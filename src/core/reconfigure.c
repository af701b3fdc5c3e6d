/* Applying a reload: re-read the config and change only what differs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/control.h"
#include "drover/reload.h"
#include "drover/supervisor.h"

static struct group *find_pool(struct supervisor *sup, const char *name)
{
	for (size_t i = 0; i < sup->ngroups; i++)
		if (!sup->groups[i]->removing && !strcmp(sup->groups[i]->name, name))
			return sup->groups[i];
	return NULL;
}

/* Every worker of g runs the new program: re-expanded, and restarted if it
 * has a process. */
static void respec_group(struct supervisor *sup, struct group *g, json_t *errors)
{
	for (size_t i = 0; i < g->nworkers; i++) {
		struct worker *w = g->workers[i];
		char err[256];
		struct worker_spec *spec = calloc(1, sizeof(*spec));
		if (!spec || program_expand(&sup->cfg, g->prog, g->prog->numprocs_start + w->index,
		                            spec, err, sizeof(err)) < 0) {
			json_array_append_new(errors, json_string(spec ? err : "out of memory"));
			free(spec);
			continue;
		}
		worker_respec(w, spec);
	}
}

static void apply_item(struct supervisor *sup, const struct reload_item *it, json_t *errors)
{
	struct group *g = it->action == RELOAD_ADDED ? NULL : find_pool(sup, it->name);
	char err[256];
	switch (it->action) {
	case RELOAD_REMOVED:
		if (g) {
			g->removing = true;
			group_scale(g, 0, err, sizeof(err));
		}
		break;
	case RELOAD_UNCHANGED:
		if (g)
			g->prog = it->new_prog;
		break;
	case RELOAD_SCALED:
	case RELOAD_CHANGED:
		if (!g)
			break;
		g->prog = it->new_prog;
		if (it->action == RELOAD_CHANGED)
			respec_group(sup, g, errors);
		if (group_scale(g, it->new_prog->numprocs, err, sizeof(err)) < 0)
			json_array_append_new(errors, json_string(err));
		break;
	case RELOAD_ADDED: {
		if (queue_open(sup, false, err, sizeof(err)) < 0)
			json_array_append_new(errors, json_string(err));
		struct group *ng = group_new(sup, it->new_prog);
		struct group **groups =
		    ng ? realloc(sup->groups, (sup->ngroups + 1) * sizeof(*groups)) : NULL;
		if (!groups) {
			if (ng)
				group_free(ng);
			json_array_append_new(errors, json_string("out of memory"));
			break;
		}
		sup->groups = groups;
		sup->groups[sup->ngroups++] = ng;
		if (ng->prog->autostart)
			for (size_t j = 0; j < ng->nworkers; j++)
				worker_event(ng->workers[j], FSM_START);
		break;
	}
	}
}

json_t *supervisor_reload(struct supervisor *sup)
{
	struct conf_msgs warnings = {0}, errors = {0};
	struct config *next = calloc(1, sizeof(*next));
	struct event e;
	if (!next)
		return json_pack("{s:b, s:s}", "ok", 0, "error", "out of memory");
	if (config_load(sup->cfg.path, next, &warnings, &errors) < 0) {
		json_t *list = json_array();
		for (size_t i = 0; i < errors.count; i++)
			json_array_append_new(list, json_string(errors.items[i]));
		char msg[600];
		snprintf(msg, sizeof(msg), "reload refused, nothing changed: %s%s",
		         errors.count ? errors.items[0] : "cannot load the config",
		         errors.count > 1 ? " (and more)" : "");
		event_init(&e, EVENT_ERROR, "reload");
		event_str(&e, "error", msg);
		supervisor_emit(sup, &e);
		conf_msgs_free(&warnings);
		conf_msgs_free(&errors);
		free(next);
		return json_pack("{s:b, s:s, s:o}", "ok", 0, "error", msg, "errors", list);
	}
	conf_msgs_free(&errors);

	struct reload_plan plan;
	if (reload_plan_make(&sup->cfg, next, &plan) < 0) {
		config_free(next);
		free(next);
		conf_msgs_free(&warnings);
		return json_pack("{s:b, s:s}", "ok", 0, "error", "out of memory");
	}

	/* the old config stays alive while removed groups still stop */
	struct config **retired =
	    realloc(sup->retired_cfgs, (sup->nretired + 1) * sizeof(*retired));
	if (!retired)
		abort();
	sup->retired_cfgs = retired;
	struct config *old = malloc(sizeof(*old));
	if (!old)
		abort();
	*old = sup->cfg;
	sup->retired_cfgs[sup->nretired++] = old;
	if (strcmp(old->state_dir, next->state_dir)) {
		event_init(&e, EVENT_WARN, "reload");
		event_str(&e, "message", "state_dir changed: it takes effect at the next start");
		supervisor_emit(sup, &e);
	}
	sup->cfg = *next;
	free(next);

	json_t *reply = json_pack("{s:b}", "ok", 1), *errs = json_array();
	const char *keys[] = {"unchanged", "scaled", "changed", "added", "removed"};
	json_t *lists[5];
	for (int i = 0; i < 5; i++) {
		lists[i] = json_array();
		json_object_set_new(reply, keys[i], lists[i]);
	}
	for (size_t i = 0; i < plan.count; i++) {
		const struct reload_item *it = &plan.items[i];
		apply_item(sup, it, errs);
		json_array_append_new(lists[it->action], json_string(it->name));
	}
	char msg[256];
	snprintf(msg, sizeof(msg),
	         "reloaded: %zu added, %zu removed, %zu changed, %zu scaled, %zu unchanged",
	         json_array_size(lists[RELOAD_ADDED]), json_array_size(lists[RELOAD_REMOVED]),
	         json_array_size(lists[RELOAD_CHANGED]), json_array_size(lists[RELOAD_SCALED]),
	         json_array_size(lists[RELOAD_UNCHANGED]));
	json_object_set_new(reply, "message", json_string(msg));
	json_object_set_new(reply, "errors", errs);
	reload_plan_free(&plan);

	monitor_schedule(sup); /* a limit may have appeared */
	event_init(&e, EVENT_INFO, "reload");
	event_str(&e, "message", msg);
	supervisor_emit(sup, &e);
	for (size_t i = 0; i < warnings.count; i++) {
		event_init(&e, EVENT_WARN, "config");
		event_str(&e, "message", warnings.items[i]);
		supervisor_emit(sup, &e);
	}
	conf_msgs_free(&warnings);
	return reply;
}
