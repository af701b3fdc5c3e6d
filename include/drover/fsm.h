/* The worker lifecycle as a pure function: (state, event, now, policy) ->
 * (new state, actions). supervisord's states and meanings, plus PAUSED, plus
 * a capped growing backoff and a death-rate limit after RUNNING. No I/O: the
 * supervisor performs the actions. */
#ifndef DROVER_FSM_H
#define DROVER_FSM_H

#include <stdbool.h>

#include "drover/config.h"

enum worker_state {
	WORKER_STOPPED,
	WORKER_STARTING,
	WORKER_RUNNING,
	WORKER_BACKOFF,
	WORKER_STOPPING,
	WORKER_EXITED,
	WORKER_FATAL,
	WORKER_PAUSED,
	WORKER__COUNT
};

enum fsm_event {
	FSM_START,        /* operator or autostart asks for the worker */
	FSM_STOP,         /* operator or shutdown asks it to stop */
	FSM_SPAWNED,      /* the process exec'd */
	FSM_SPAWN_FAILED, /* it could not be started; see fsm_input.permanent */
	FSM_EXIT,         /* the process was reaped; see fsm_input.status */
	FSM_TIMER,        /* the worker's one timer fired */
	FSM_PAUSE,
	FSM_RESUME,
};

enum fsm_action {
	FSM_ACT_SPAWN = 1 << 0,       /* start the process */
	FSM_ACT_SIGNAL_STOP = 1 << 1, /* stopsignal then SIGCONT (group if stopasgroup) */
	FSM_ACT_SIGNAL_KILL = 1 << 2, /* SIGKILL (group if killasgroup) */
	FSM_ACT_ARM_TIMER = 1 << 3,   /* (re)arm the timer at now + delay */
	FSM_ACT_SIGSTOP = 1 << 4,     /* pause the process group */
	FSM_ACT_SIGCONT = 1 << 5,     /* resume the process group */
};

#define FSM_TALLY_MAX 64

/* What the machine remembers about one worker between events. */
struct fsm {
	enum worker_state state;
	int backoff;                  /* serial start failures (supervisord's) */
	double deaths[FSM_TALLY_MAX]; /* times of recent exits from RUNNING, ring */
	int ndeaths;
	int death_head;
};

struct fsm_input {
	enum fsm_event event;
	double now;      /* monotonic seconds */
	int wait_status; /* FSM_EXIT: as from waitpid (exit code or signal) */
	bool permanent;  /* FSM_SPAWN_FAILED: retrying cannot help (not found, ...) */
	const char *why; /* FSM_SPAWN_FAILED: the reason, copied into the output */
};

struct fsm_output {
	bool changed;  /* state differs from before */
	bool rejected; /* the event makes no sense in this state */
	enum worker_state from;
	unsigned actions; /* enum fsm_action bits */
	double delay;     /* FSM_ACT_ARM_TIMER: seconds from now */
	char reason[160]; /* why the new state was entered, "" if plain */
	bool expected;    /* FSM_EXIT: exit status listed in exitcodes */
};

void fsm_init(struct fsm *m);
void fsm_step(struct fsm *m, const struct program_config *policy, const struct fsm_input *in,
              struct fsm_output *out);

const char *fsm_state_name(enum worker_state s); /* "RUNNING" */
/* Is the process alive in this state (there is a pid to signal)? */
bool fsm_state_has_process(enum worker_state s);
/* Describe a wait status: "exit:3" or "signal:KILL". */
void fsm_describe_status(int wait_status, char *buf, unsigned len);

#endif
