/* drover's one command vocabulary. Every front end (drover ctl, the control
 * socket, the console, later the HTTP API) translates into these, and help
 * text is generated from the same table, so it cannot drift. Parsing and
 * validation are pure; carrying a command out is the core's business. */
#ifndef DROVER_COMMAND_H
#define DROVER_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

enum command_id {
	CMD_STATUS,
	CMD_START,
	CMD_STOP,
	CMD_RESTART,
	CMD_PAUSE,
	CMD_RESUME,
	CMD_KILL,
	CMD_SCALE,
	CMD_RELOAD,
	CMD_REOPEN,
	CMD_LOG,
	CMD_SHUTDOWN,
	CMD_EVENTS,
	CMD_SUBMIT,
	CMD_TASKS,
	CMD_TASK,
	CMD_CANCEL,
	CMD_RETRY,
	CMD_WAIT,
	CMD__COUNT
};

enum command_need { NEED_NONE, NEED_OPTIONAL, NEED_REQUIRED };

struct command_spec {
	enum command_id id;
	const char *name;
	enum command_need target;
	enum command_need arg;
	const char *usage; /* "scale GROUP N|+N|-N" */
	const char *help;  /* one line */
};

extern const struct command_spec command_table[CMD__COUNT];

#define SCALE_MAX         1024
#define LOG_DEFAULT_LINES 50

struct command {
	const struct command_spec *spec;
	char target[256]; /* "" when none was given */
	/* the argument, validated: */
	int signo;   /* kill */
	int scale_n; /* scale: the number, or the delta with scale_relative */
	bool scale_relative;
	int log_lines; /* log */
	char arg[64];  /* tasks: the state filter, as given */
};

const struct command_spec *command_lookup(const char *name);

/* Validate a command as a front end received it. Returns 0, or -1 with a
 * sentence in err ("scale: N must be between 0 and 1024"). target and arg
 * may be NULL or "". */
int command_parse(const char *name, const char *target, const char *arg, struct command *out,
                  char *err, size_t errlen);

/* Split "GROUP:NAME" (supervisorctl's spelling). Without a colon, group is
 * "" and name is the whole target. "GROUP:*" gives name "*". */
void command_split_target(const char *target, char *group, size_t glen, char *name, size_t nlen);

#endif
