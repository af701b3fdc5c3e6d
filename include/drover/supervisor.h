/* The core: one event loop that owns every group and worker. It reads the
 * config, spawns and reaps, drives each worker's state machine, captures
 * output, and emits events. Front ends see it only through events, the
 * snapshot and commands. */
#ifndef DROVER_SUPERVISOR_H
#define DROVER_SUPERVISOR_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "drover/config.h"
#include "drover/event.h"
#include "drover/fsm.h"
#include "drover/logfile.h"
#include "drover/loop.h"
#include "drover/pidmap.h"
#include "drover/queue.h"
#include "drover/ring.h"
#include "drover/sampler.h"

struct supervisor;
struct group;

/* A worker's figures from the last tick, and what the limits remember. */
struct worker_metrics {
	bool valid; /* the process was seen in the last tick */
	struct cpu_track self, tree;
	double cpu, cpu_self; /* -1 = no figure yet */
	unsigned long long rss, rss_self;
	int threads, procs;
	char kstate;
	double start_time;                        /* wall-clock seconds */
	double over_memory_since, over_cpu_since; /* monotonic, 0 = under */
};

/* One output pipe of a worker (stdout or stderr). */
struct worker_stream {
	struct loop_watch watch;
	struct worker *worker;
	const char *name;   /* "stdout" / "stderr" */
	struct logfile log; /* log.fd < 0: no file (NONE) */
	char *partial;      /* RING_LINE_MAX bytes, allocated at the first output */
	size_t plen;
};

struct worker {
	struct supervisor *sup;
	struct group *group;
	int index; /* position in the group; process_num = numprocs_start + index */
	struct worker_spec spec;
	struct fsm fsm;
	pid_t pid;     /* 0 when there is no process */
	pid_t session; /* the last process's session id (its pid): orphans keep it */
	int pidfd;
	struct loop_timer timer;
	double state_since; /* monotonic seconds */
	double started_at;  /* monotonic seconds of the last spawn */
	double started_wall;
	unsigned spawns;
	int last_status; /* wait status of the last exit, -1 = none yet */
	char reason[160];
	struct worker_stream out, err;
	struct ring ring;
	struct worker_metrics metrics;
	struct task_link *tasks;       /* NULL unless the program takes tasks */
	struct worker_spec *next_spec; /* reload: the spec to run once STOPPED */
	bool start_after_stop;         /* restart: start again once STOPPED */
	bool retire;                   /* scaled away: free once STOPPED */
};

/* The pool made from one program: numprocs workers, resizable at run time. */
struct group {
	struct supervisor *sup;
	char *name;
	const struct program_config *prog;
	struct worker **workers; /* in index order */
	size_t nworkers;
	size_t cap;
	int wanted;                /* workers asked for (numprocs, or the last scale) */
	bool removing;             /* gone from the config: freed once its workers are */
	struct group_queue *queue; /* NULL unless the program takes tasks */
};

struct supervisor_options {
	const char *config_path;
	bool tail;           /* echo worker output (also [drover] tail) */
	bool log_format_set; /* --log-format given: overrides [drover] */
	enum log_format log_format;
	const char *store_kind; /* overrides [drover] store ("memory" for drover map) */
	bool console;           /* the curses console owns the terminal (no stdout log) */
	const char *theme;      /* console theme name, NULL = default */
	struct map_run *map;    /* drover map: stdin tasks, stdout results, no socket */
};

struct supervisor {
	struct loop loop;
	struct config cfg;
	struct supervisor_options opts;
	struct event_bus bus;
	struct group **groups;
	size_t ngroups;
	struct pidmap pids;
	struct config **retired_cfgs; /* replaced by reloads, still used by removed groups */
	size_t nretired;
	struct control_server *control;
	struct store *store; /* NULL until some program takes tasks */
	struct queue_state *queue;
	struct sampler sampler;
	bool sampler_ok;
	struct loop_timer sample_timer;
	double last_sample; /* monotonic seconds, 0 = never */
	double last_metrics_event;
	double watched_until; /* a front end looked recently: sample at refresh */
	int watchers;         /* consoles and event streams attached */
	pid_t self;
	int devnull;
	int lockfd;
	bool unclean_start; /* the last drover on this state_dir died without cleaning up */
	int sigfd;
	struct loop_watch sigwatch;
	double started; /* monotonic seconds */
	bool shutting_down;
	double shutdown_deadline;
	int exit_code;
	char shutdown_why[32];

	/* headless stdout: events and tail lines, flushed once per loop turn */
	struct event_sink stdout_sink;
	char *outbuf;
	size_t outlen, outcap;
	struct event_sink file_sink;   /* [supervisord] logfile */
	struct event_sink stderr_sink; /* drover map: warnings and errors only */
	struct logfile event_log;
};

/* Run drover in the foreground until shut down; returns the exit code. */
int supervisor_main(const struct supervisor_options *opts);

/* --- inside the core (worker.c, supervisor.c, orphans.c) --- */

double supervisor_now(void); /* monotonic seconds */
void supervisor_emit(struct supervisor *sup, struct event *e);
/* Append raw text to the headless stdout buffer. */
void supervisor_write_stdout(struct supervisor *sup, const char *s, size_t len);
/* The same, and a newline. */
void supervisor_write_line(struct supervisor *sup, const char *s, size_t len);
struct worker *supervisor_find_worker(struct supervisor *sup, const char *name);

struct worker *worker_new(struct supervisor *sup, struct group *g, int index, char *err,
                          size_t errlen);
void worker_free(struct worker *w);
/* Feed one event to the worker's state machine and carry out the actions. */
void worker_event(struct worker *w, enum fsm_event ev);
/* The process was reaped with this wait status. */
void worker_reaped(struct worker *w, int wait_status);
void worker_reopen_logs(struct worker *w);
/* Run with a new spec: now if there is no process, else after a restart. */
void worker_respec(struct worker *w, struct worker_spec *spec);
void supervisor_reopen_logs(struct supervisor *sup);
bool worker_alive(const struct worker *w);
/* Send sig to the worker (its process group when `group`). 0 or -errno. */
int worker_signal(struct worker *w, int sig, bool group);

struct group *group_new(struct supervisor *sup, const struct program_config *prog);
void group_free(struct group *g);
/* Resize to n workers: indexes 0..n-1 run, higher ones stop and go. Returns
 * 0 or -1 with a sentence in err. */
int group_scale(struct group *g, int n, char *err, size_t errlen);
/* Free workers (and groups) that were scaled or reloaded away and have
 * stopped. Runs once per loop turn, never inside a worker's own event. */
void supervisor_collect(struct supervisor *sup);

/* Metrics: start the sampler (a missing /proc is a warning, not an error). */
void monitor_start(struct supervisor *sup);
void monitor_stop(struct supervisor *sup);
/* A front end is looking: sample at `refresh` for a while, and now if the
 * figures are older than that. */
void monitor_watch(struct supervisor *sup);
/* Re-plan the next tick (after watchers or limits changed). */
void monitor_schedule(struct supervisor *sup);

/* Orphans: processes reparented to drover (the subreaper). */
enum pid_kind { PID_WORKER = 1, PID_ORPHAN, PID_SOURCE };
void orphans_scan(struct supervisor *sup, struct worker *fallback_owner);
void orphans_reaped(struct supervisor *sup, pid_t pid);
/* Kill the orphans that came from w (all orphans when w is NULL). */
void orphans_kill(struct supervisor *sup, struct worker *w);
size_t orphans_count(const struct supervisor *sup);
void orphans_forget_owner(struct supervisor *sup, struct worker *w);
void orphans_sweep_leftovers(struct supervisor *sup);
/* drover's live children, workers and orphans (reads /proc). */
size_t supervisor_children(struct supervisor *sup);

#endif
