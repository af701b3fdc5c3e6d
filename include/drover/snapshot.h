/* One read-only view of everything a front end shows, built in one place.
 * Front ends read this (or its JSON form over the socket); they never touch
 * the core's structs. */
#ifndef DROVER_SNAPSHOT_H
#define DROVER_SNAPSHOT_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "drover/fsm.h"

struct supervisor;

struct snapshot_worker {
	char *name;
	char *group;
	pid_t pid;              /* 0 = no process */
	enum worker_state state;
	double since;           /* seconds in this state */
	double uptime;          /* seconds since the process started, 0 if none */
	unsigned restarts;
	char *last_exit;        /* "exit:1", "signal:KILL", NULL if none yet */
	char *reason;           /* why the state was entered, NULL if plain */
};

struct snapshot_group {
	char *name;
	int priority;
	int wanted;  /* numprocs now asked for */
	int actual;  /* workers with a live process */
	int counts[WORKER__COUNT];
};

struct snapshot {
	char *version;
	pid_t pid;
	char *config;
	char *state_dir;
	double uptime;
	bool shutting_down;
	struct snapshot_group *groups;
	int ngroups;
	struct snapshot_worker *workers; /* grouped, in group order then index */
	int nworkers;
};

void snapshot_build(struct supervisor *sup, struct snapshot *out);
void snapshot_free(struct snapshot *snap);
json_t *snapshot_to_json(const struct snapshot *snap);

#endif
