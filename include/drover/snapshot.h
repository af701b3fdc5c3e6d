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
	pid_t pid; /* 0 = no process */
	enum worker_state state;
	double since;  /* seconds in this state */
	double uptime; /* seconds since the process started, 0 if none */
	unsigned restarts;
	char *last_exit; /* "exit:1", "signal:KILL", NULL if none yet */
	char *reason;    /* why the state was entered, NULL if plain */
	/* metrics (the sampler's last tick); has_metrics false until sampled */
	bool has_metrics;
	char kstate;            /* kernel state R S D T Z, '-' without a process */
	double cpu;             /* tree CPU% (100 = one core), -1 = no figure yet */
	double cpu_self;        /* the worker process alone */
	unsigned long long rss; /* tree RSS, bytes */
	unsigned long long rss_self;
	double mem_pct;    /* tree RSS as % of total memory */
	int threads;       /* the worker process's threads */
	int procs;         /* processes in its tree, itself included */
	double start_time; /* wall-clock seconds the process started */
	/* tasks */
	long long tasks_done;
	int tasks_inflight;
};

struct snapshot_group {
	char *name;
	int priority;
	int wanted; /* numprocs now asked for */
	int actual; /* workers with a live process */
	int counts[WORKER__COUNT];
	/* metrics: sums over the group's workers */
	double cpu;
	unsigned long long rss;
	char *busiest; /* worker with the highest CPU%, NULL if none */
	/* queue (groups with tasks); has_queue false for tasks = none */
	bool has_queue;
	long long pending, running, done, failed, dead;
	double rate;    /* tasks/s over the last 10 s */
	double latency; /* mean seconds per task over the last 10 s */
};

struct snapshot_system {
	bool has_metrics;
	double load[3];
	double cpu;                  /* busy % of all CPUs (100 = all busy) */
	unsigned long long mem_used; /* bytes */
	unsigned long long mem_total;
	int ncpu;
};

struct snapshot {
	char *version;
	pid_t pid;
	char *config;
	char *state_dir;
	double uptime;
	bool shutting_down;
	struct snapshot_system system;
	struct snapshot_group *groups;
	int ngroups;
	struct snapshot_worker *workers; /* grouped, in group order then index */
	int nworkers;
};

void snapshot_build(struct supervisor *sup, struct snapshot *out);
void snapshot_free(struct snapshot *snap);
json_t *snapshot_to_json(const struct snapshot *snap);

#endif
