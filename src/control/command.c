#include "drover/command.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/config.h"
#include "drover/ring.h"

const struct command_spec command_table[CMD__COUNT] = {
    {CMD_STATUS, "status", NEED_OPTIONAL, NEED_NONE, "status [TARGET]",
     "show groups and workers (all by default)"},
    {CMD_START, "start", NEED_REQUIRED, NEED_NONE, "start TARGET",
     "start stopped, exited or fatal workers"},
    {CMD_STOP, "stop", NEED_REQUIRED, NEED_NONE, "stop TARGET",
     "stopsignal, then SIGKILL after stopwaitsecs"},
    {CMD_RESTART, "restart", NEED_REQUIRED, NEED_NONE, "restart TARGET", "stop, then start again"},
    {CMD_PAUSE, "pause", NEED_REQUIRED, NEED_NONE, "pause TARGET",
     "SIGSTOP the worker's process group (state PAUSED)"},
    {CMD_RESUME, "resume", NEED_REQUIRED, NEED_NONE, "resume TARGET",
     "SIGCONT a paused worker's process group"},
    {CMD_KILL, "kill", NEED_REQUIRED, NEED_REQUIRED, "kill TARGET SIGNAL",
     "send a signal (TERM, HUP, USR1, 9, ...)"},
    {CMD_SCALE, "scale", NEED_REQUIRED, NEED_REQUIRED, "scale GROUP N|+N|-N",
     "resize a pool now: grow with the next numbers, shrink from the highest"},
    {CMD_RELOAD, "reload", NEED_NONE, NEED_NONE, "reload",
     "re-read the config and apply only what changed"},
    {CMD_REOPEN, "reopen", NEED_NONE, NEED_NONE, "reopen", "reopen every log file"},
    {CMD_LOG, "log", NEED_REQUIRED, NEED_OPTIONAL, "log WORKER [N]",
     "the worker's last N output lines (default 50)"},
    {CMD_SHUTDOWN, "shutdown", NEED_NONE, NEED_NONE, "shutdown", "stop every worker and exit"},
    {CMD_EVENTS, "events", NEED_NONE, NEED_NONE, "events",
     "stream events as JSON lines until the client hangs up"},
    {CMD_SUBMIT, "submit", NEED_REQUIRED, NEED_NONE, "submit GROUP (tasks in \"tasks\")",
     "queue tasks for a pool; replied once they are durable"},
    {CMD_TASKS, "tasks", NEED_REQUIRED, NEED_OPTIONAL, "tasks GROUP [STATE]",
     "list a pool's tasks (pending running done failed dead cancelled)"},
    {CMD_TASK, "task", NEED_REQUIRED, NEED_NONE, "task ID",
     "one task: state, result, attempts, worker, times"},
    {CMD_CANCEL, "cancel", NEED_REQUIRED, NEED_NONE, "cancel ID|GROUP",
     "cancel a pending task, or all of a pool's"},
    {CMD_RETRY, "retry", NEED_REQUIRED, NEED_NONE, "retry ID|GROUP",
     "put dead (or cancelled) tasks back in the queue"},
    {CMD_WAIT, "wait", NEED_REQUIRED, NEED_NONE, "wait GROUP",
     "block until the pool's queue is drained"},
};

const struct command_spec *command_lookup(const char *name)
{
	for (size_t i = 0; i < CMD__COUNT; i++)
		if (name && !strcmp(command_table[i].name, name))
			return &command_table[i];
	return NULL;
}

static bool parse_int(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

static int parse_arg(struct command *c, const char *arg, char *err, size_t errlen)
{
	long v;
	switch (c->spec->id) {
	case CMD_KILL:
		if (conf_parse_signal(arg, &c->signo) < 0 || c->signo <= 0) {
			snprintf(err, errlen, "kill: unknown signal '%s'", arg);
			return -1;
		}
		return 0;
	case CMD_SCALE:
		c->scale_relative = arg[0] == '+' || arg[0] == '-';
		if (!parse_int(arg, &v)) {
			snprintf(err, errlen, "scale: '%s' is not a number (N, +N or -N)", arg);
			return -1;
		}
		if (!c->scale_relative && (v < 0 || v > SCALE_MAX)) {
			snprintf(err, errlen, "scale: N must be between 0 and %d", SCALE_MAX);
			return -1;
		}
		if (c->scale_relative && (v < -SCALE_MAX || v > SCALE_MAX)) {
			snprintf(err, errlen, "scale: a change must be between -%d and +%d",
			         SCALE_MAX, SCALE_MAX);
			return -1;
		}
		c->scale_n = (int)v;
		return 0;
	case CMD_TASKS:
		snprintf(c->arg, sizeof(c->arg), "%s", arg);
		return 0;
	case CMD_LOG:
		if (!parse_int(arg, &v) || v < 1 || v > RING_LINES) {
			snprintf(err, errlen, "log: N must be between 1 and %d", RING_LINES);
			return -1;
		}
		c->log_lines = (int)v;
		return 0;
	default:
		return 0;
	}
}

int command_parse(const char *name, const char *target, const char *arg, struct command *out,
                  char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->log_lines = LOG_DEFAULT_LINES;
	out->spec = command_lookup(name);
	if (!out->spec) {
		snprintf(err, errlen, "unknown command '%s'", name ? name : "");
		return -1;
	}
	const char *cmd = out->spec->name;
	bool has_target = target && *target, has_arg = arg && *arg;
	if (out->spec->target == NEED_REQUIRED && !has_target) {
		snprintf(err, errlen, "%s: a target is required (usage: %s)", cmd,
		         out->spec->usage);
		return -1;
	}
	if (out->spec->target == NEED_NONE && has_target) {
		snprintf(err, errlen, "%s takes no target (usage: %s)", cmd, out->spec->usage);
		return -1;
	}
	if (out->spec->arg == NEED_REQUIRED && !has_arg) {
		snprintf(err, errlen, "%s: an argument is required (usage: %s)", cmd,
		         out->spec->usage);
		return -1;
	}
	if (out->spec->arg == NEED_NONE && has_arg) {
		snprintf(err, errlen, "%s takes no argument (usage: %s)", cmd, out->spec->usage);
		return -1;
	}
	if (has_target) {
		if (strlen(target) >= sizeof(out->target)) {
			snprintf(err, errlen, "%s: target is too long", cmd);
			return -1;
		}
		snprintf(out->target, sizeof(out->target), "%s", target);
	}
	return has_arg ? parse_arg(out, arg, err, errlen) : 0;
}

void command_split_target(const char *target, char *group, size_t glen, char *name, size_t nlen)
{
	const char *colon = strchr(target, ':');
	if (!colon) {
		snprintf(group, glen, "%s", "");
		snprintf(name, nlen, "%s", target);
		return;
	}
	snprintf(group, glen, "%.*s", (int)(colon - target), target);
	snprintf(name, nlen, "%s", colon + 1);
}
