#include "drover/reload.h"

#include <errno.h>
#include <stdlib.h>

static const char *const action_names[] = {
    [RELOAD_UNCHANGED] = "unchanged", [RELOAD_SCALED] = "scaled",   [RELOAD_CHANGED] = "changed",
    [RELOAD_ADDED] = "added",         [RELOAD_REMOVED] = "removed",
};

const char *reload_action_name(enum reload_action a)
{
	return action_names[a];
}

int reload_plan_make(const struct config *old_cfg, const struct config *new_cfg,
                     struct reload_plan *plan)
{
	plan->count = 0;
	plan->items = calloc(old_cfg->nprograms + new_cfg->nprograms + 1, sizeof(*plan->items));
	if (!plan->items)
		return -ENOMEM;
	for (size_t i = 0; i < old_cfg->nprograms; i++) {
		const struct program_config *o = &old_cfg->programs[i];
		const struct program_config *n = config_find_program(new_cfg, o->name);
		struct reload_item *it = &plan->items[plan->count++];
		it->name = o->name;
		it->old_prog = o;
		it->new_prog = n;
		if (!n)
			it->action = RELOAD_REMOVED;
		else if (program_config_equal(o, n, false))
			it->action = RELOAD_UNCHANGED;
		else if (program_config_equal(o, n, true))
			it->action = RELOAD_SCALED;
		else
			it->action = RELOAD_CHANGED;
	}
	for (size_t i = 0; i < new_cfg->nprograms; i++) {
		const struct program_config *n = &new_cfg->programs[i];
		if (config_find_program(old_cfg, n->name))
			continue;
		struct reload_item *it = &plan->items[plan->count++];
		it->name = n->name;
		it->action = RELOAD_ADDED;
		it->new_prog = n;
	}
	return 0;
}

void reload_plan_free(struct reload_plan *plan)
{
	free(plan->items);
	plan->items = NULL;
	plan->count = 0;
}
