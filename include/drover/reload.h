/* What a reload changes, decided purely from the old and the new config:
 * like `supervisorctl update`, but a program whose only change is numprocs
 * is scaled in place instead of restarted. */
#ifndef DROVER_RELOAD_H
#define DROVER_RELOAD_H

#include <stddef.h>

#include "drover/config.h"

enum reload_action {
	RELOAD_UNCHANGED, /* same program: workers keep running, same PIDs */
	RELOAD_SCALED,    /* only numprocs changed: scale in place */
	RELOAD_CHANGED,   /* anything else changed: restart its workers */
	RELOAD_ADDED,     /* new program: start it (if autostart) */
	RELOAD_REMOVED,   /* gone from the config: stop its workers */
};

struct reload_item {
	const char *name; /* program name (points into old or new config) */
	enum reload_action action;
	const struct program_config *old_prog; /* NULL when ADDED */
	const struct program_config *new_prog; /* NULL when REMOVED */
};

struct reload_plan {
	struct reload_item *items;
	size_t count;
};

/* 0, or -ENOMEM. Items: every old program (in old order), then the added. */
int reload_plan_make(const struct config *old_cfg, const struct config *new_cfg,
                     struct reload_plan *plan);
void reload_plan_free(struct reload_plan *plan);
const char *reload_action_name(enum reload_action a); /* "unchanged", ... */

#endif
