#include "drover/fsm.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static const char *const state_names[WORKER__COUNT] = {
    [WORKER_STOPPED] = "STOPPED", [WORKER_STARTING] = "STARTING", [WORKER_RUNNING] = "RUNNING",
    [WORKER_BACKOFF] = "BACKOFF", [WORKER_STOPPING] = "STOPPING", [WORKER_EXITED] = "EXITED",
    [WORKER_FATAL] = "FATAL",     [WORKER_PAUSED] = "PAUSED",
};

const char *fsm_state_name(enum worker_state s)
{
	return s < WORKER__COUNT ? state_names[s] : "UNKNOWN";
}

bool fsm_state_has_process(enum worker_state s)
{
	return s == WORKER_STARTING || s == WORKER_RUNNING || s == WORKER_STOPPING ||
	       s == WORKER_PAUSED;
}

void fsm_describe_status(int wait_status, char *buf, unsigned len)
{
	if (WIFSIGNALED(wait_status)) {
		const char *name = conf_signal_name(WTERMSIG(wait_status));
		if (name)
			snprintf(buf, len, "signal:%s", name);
		else
			snprintf(buf, len, "signal:%d", WTERMSIG(wait_status));
	} else {
		snprintf(buf, len, "exit:%d", WEXITSTATUS(wait_status));
	}
}

void fsm_init(struct fsm *m)
{
	memset(m, 0, sizeof(*m));
	m->state = WORKER_STOPPED;
}

static void go(struct fsm *m, struct fsm_output *out, enum worker_state to, unsigned actions)
{
	out->changed = to != m->state;
	m->state = to;
	out->actions |= actions;
}

static void arm(struct fsm_output *out, double delay)
{
	out->actions |= FSM_ACT_ARM_TIMER;
	out->delay = delay < 0 ? 0 : delay;
}

static bool status_expected(const struct program_config *p, int wait_status)
{
	return WIFEXITED(wait_status) && program_exitcode_expected(p, WEXITSTATUS(wait_status));
}

/* Exits of a RUNNING worker within the fatal_after window, this one included. */
static int record_death(struct fsm *m, const struct program_config *p, double now)
{
	m->deaths[m->death_head] = now;
	m->death_head = (m->death_head + 1) % FSM_TALLY_MAX;
	if (m->ndeaths < FSM_TALLY_MAX)
		m->ndeaths++;
	/* with fatal_after = 0 there is no FATAL, but still a brake */
	double window = p->fatal_after_window > 0 ? p->fatal_after_window : 60;
	int recent = 0;
	for (int i = 0; i < m->ndeaths; i++)
		if (now - m->deaths[i] < window)
			recent++;
	return recent;
}

static void start(struct fsm *m, struct fsm_output *out)
{
	go(m, out, WORKER_STARTING, FSM_ACT_SPAWN);
}

/* An operator's start forgets past failures, as supervisord's does. */
static void fresh_start(struct fsm *m, struct fsm_output *out)
{
	m->backoff = 0;
	m->ndeaths = 0;
	m->death_head = 0;
	start(m, out);
}

static void stop_process(struct fsm *m, const struct program_config *p, struct fsm_output *out)
{
	go(m, out, WORKER_STOPPING, FSM_ACT_SIGNAL_STOP);
	arm(out, p->stopwaitsecs);
}

/* A start attempt failed (exit before startsecs, or spawn error). */
static void start_failed(struct fsm *m, const struct program_config *p, struct fsm_output *out,
                         const char *why)
{
	m->backoff++;
	if (m->backoff > p->startretries) {
		go(m, out, WORKER_FATAL, 0);
		snprintf(out->reason, sizeof(out->reason),
		         "too many start retries too quickly (%s)", why);
		return;
	}
	go(m, out, WORKER_BACKOFF, 0);
	double delay = m->backoff < p->backoff_max ? m->backoff : p->backoff_max;
	arm(out, delay);
	snprintf(out->reason, sizeof(out->reason), "%s; retry %d of %d in %gs", why, m->backoff,
	         p->startretries, delay);
}

static void running_exit(struct fsm *m, const struct program_config *p, const struct fsm_input *in,
                         struct fsm_output *out)
{
	char status[32];
	fsm_describe_status(in->wait_status, status, sizeof(status));
	bool restart = p->autorestart == AUTORESTART_TRUE ||
	               (p->autorestart == AUTORESTART_UNEXPECTED && !out->expected);
	if (!restart) {
		go(m, out, WORKER_EXITED, 0);
		snprintf(out->reason, sizeof(out->reason), "%s, %s; not restarted", status,
		         out->expected ? "expected" : "unexpected");
		return;
	}
	int recent = record_death(m, p, in->now);
	if (p->fatal_after_count > 0 && recent >= p->fatal_after_count) {
		go(m, out, WORKER_FATAL, 0);
		snprintf(out->reason, sizeof(out->reason), "%s; exited %d times within %gs", status,
		         recent, p->fatal_after_window);
		return;
	}
	/* the first exit in a window restarts at once (a crash after hours of
	 * work should cost nothing); each further one waits a second longer */
	double delay = recent - 1;
	if (delay > p->backoff_max)
		delay = p->backoff_max;
	go(m, out, WORKER_EXITED, 0);
	arm(out, delay);
	if (delay > 0)
		snprintf(out->reason, sizeof(out->reason),
		         "%s; restart in %gs (%d exits within %gs)", status, delay, recent,
		         p->fatal_after_window);
	else
		snprintf(out->reason, sizeof(out->reason), "%s; restarting", status);
}

void fsm_step(struct fsm *m, const struct program_config *p, const struct fsm_input *in,
              struct fsm_output *out)
{
	memset(out, 0, sizeof(*out));
	out->from = m->state;
	if (in->event == FSM_EXIT)
		out->expected = status_expected(p, in->wait_status);

	switch (m->state) {
	case WORKER_STOPPED:
	case WORKER_FATAL:
		if (in->event == FSM_START)
			fresh_start(m, out);
		else
			out->rejected = true;
		break;

	case WORKER_EXITED:
	case WORKER_BACKOFF:
		if (in->event == FSM_TIMER)
			start(m, out);
		else if (in->event == FSM_START)
			fresh_start(m, out);
		else if (in->event == FSM_STOP)
			go(m, out, WORKER_STOPPED, 0);
		else
			out->rejected = true;
		break;

	case WORKER_STARTING:
		switch (in->event) {
		case FSM_SPAWNED:
			if (p->startsecs <= 0) {
				m->backoff = 0;
				go(m, out, WORKER_RUNNING, 0);
			} else {
				arm(out, p->startsecs);
			}
			break;
		case FSM_TIMER:
			m->backoff = 0;
			go(m, out, WORKER_RUNNING, 0);
			break;
		case FSM_SPAWN_FAILED:
			if (in->permanent) {
				go(m, out, WORKER_FATAL, 0);
				snprintf(out->reason, sizeof(out->reason), "%s",
				         in->why ? in->why : "cannot start");
			} else {
				start_failed(m, p, out, in->why ? in->why : "cannot start");
			}
			break;
		case FSM_EXIT: {
			char status[32], why[64];
			fsm_describe_status(in->wait_status, status, sizeof(status));
			snprintf(why, sizeof(why), "%s before startsecs=%g", status, p->startsecs);
			start_failed(m, p, out, why);
			break;
		}
		case FSM_STOP:
			stop_process(m, p, out);
			break;
		default:
			out->rejected = true;
		}
		break;

	case WORKER_RUNNING:
	case WORKER_PAUSED:
		switch (in->event) {
		case FSM_EXIT:
			running_exit(m, p, in, out);
			break;
		case FSM_STOP:
			stop_process(m, p, out);
			break;
		case FSM_PAUSE:
			if (m->state == WORKER_RUNNING)
				go(m, out, WORKER_PAUSED, FSM_ACT_SIGSTOP);
			else
				out->rejected = true;
			break;
		case FSM_RESUME:
			if (m->state == WORKER_PAUSED)
				go(m, out, WORKER_RUNNING, FSM_ACT_SIGCONT);
			else
				out->rejected = true;
			break;
		default:
			out->rejected = true;
		}
		break;

	case WORKER_STOPPING:
		if (in->event == FSM_EXIT)
			go(m, out, WORKER_STOPPED, 0);
		else if (in->event == FSM_TIMER) {
			out->actions |= FSM_ACT_SIGNAL_KILL;
			snprintf(out->reason, sizeof(out->reason),
			         "still running %gs after the stop signal: SIGKILL",
			         p->stopwaitsecs);
		} else
			out->rejected = true;
		break;

	case WORKER__COUNT:
		out->rejected = true;
	}
}
