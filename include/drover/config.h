/* The configuration: supervisor.ini (supervisord-compatible) read into an
 * immutable struct in which every value remembers the file and line it came
 * from. Loading is the only I/O (reading the file and its includes); everything
 * else here is pure. */
#ifndef DROVER_CONFIG_H
#define DROVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Where a value was written. `file` points into config.files (stable for the
 * life of the config); line 0 means "not written: the default". */
struct conf_loc {
	const char *file;
	int line;
};

/* A list of human sentences, each already prefixed with "file:line: ". */
struct conf_msgs {
	char **items;
	size_t count;
	size_t cap;
};

enum autorestart {
	AUTORESTART_FALSE,
	AUTORESTART_UNEXPECTED,
	AUTORESTART_TRUE,
};

/* How a pool takes tasks: not at all, one line in / one line out in
 * order, or JSON objects with ids. */
enum task_protocol {
	TASKS_NONE,
	TASKS_LINES,
	TASKS_JSON,
};

enum store_kind {
	STORE_SQLITE,
	STORE_MEMORY,
};

enum log_format {
	LOG_FORMAT_LOGFMT,
	LOG_FORMAT_JSON,
};

/* Every key of [program:x] that drover knows, in config order. Used to index
 * program_config.loc so each value knows where it was written. */
enum program_key {
	PK_COMMAND,
	PK_PROCESS_NAME,
	PK_NUMPROCS,
	PK_NUMPROCS_START,
	PK_PRIORITY,
	PK_AUTOSTART,
	PK_STARTSECS,
	PK_STARTRETRIES,
	PK_AUTORESTART,
	PK_EXITCODES,
	PK_STOPSIGNAL,
	PK_STOPWAITSECS,
	PK_STOPASGROUP,
	PK_KILLASGROUP,
	PK_USER,
	PK_REDIRECT_STDERR,
	PK_STDOUT_LOGFILE,
	PK_STDOUT_LOGFILE_MAXBYTES,
	PK_STDOUT_LOGFILE_BACKUPS,
	PK_STDERR_LOGFILE,
	PK_STDERR_LOGFILE_MAXBYTES,
	PK_STDERR_LOGFILE_BACKUPS,
	PK_ENVIRONMENT,
	PK_DIRECTORY,
	PK_UMASK,
	/* drover's own keys */
	PK_FATAL_AFTER,
	PK_BACKOFF_MAX,
	PK_MEMORY_LIMIT,
	PK_CPU_LIMIT,
	PK_LIMIT_GRACE,
	PK_TASKS,
	PK_PREFETCH,
	PK_TASK_TIMEOUT,
	PK_TASK_RETRIES,
	PK_TASK_SOURCE,
	PK_RESULTS,
	PK__COUNT
};

/* Log destination template of one stream. */
struct logfile_config {
	char *path;         /* template as written; "AUTO" (default) or "NONE" too */
	long long maxbytes; /* 0 = never rotate; default 50MB */
	int backups;        /* default 10 */
};

struct program_config {
	char *name;              /* program name, from [program:NAME] */
	char *group;             /* [group:x] that lists it, else the program name */
	char *here;              /* absolute directory of the file holding the section:
	                            %(here)s, and the base of relative directory and log paths */
	struct conf_loc section; /* the [program:NAME] header */
	struct conf_loc loc[PK__COUNT];

	/* Templates (still holding %(...)s expressions): expanded per worker by
	 * program_expand(). */
	char *command;
	char *process_name; /* NULL = not written (see program_expand) */
	char *environment;  /* NULL = none; supervisord's K="v",K2="v2" */
	char *directory;    /* NULL = inherit */
	char *user;         /* NULL = no switch */

	int numprocs;       /* >= 0 (0 allowed: a pool scaled to nothing) */
	int numprocs_start; /* >= 0 */
	int priority;       /* default 999 */
	bool autostart;
	double startsecs; /* default 1; 0 = RUNNING at once */
	int startretries; /* default 3 */
	enum autorestart autorestart;
	unsigned char exitcodes[256 / 8]; /* bit set of expected exit codes; default {0} */
	int stopsignal;                   /* signal number; default SIGTERM */
	double stopwaitsecs;              /* default 10 */
	bool stopasgroup;
	bool killasgroup; /* true whenever stopasgroup is */
	bool redirect_stderr;
	struct logfile_config stdout_log;
	struct logfile_config stderr_log;
	mode_t umask; /* valid only if has_umask */
	bool has_umask;

	/* fatal_after = N/Ws: N exits of a RUNNING worker within W seconds make
	 * it FATAL. Default 10/60s; N = 0 disables the limit. */
	int fatal_after_count;
	double fatal_after_window;
	/* Cap of the growing restart delay, seconds. Default 10. */
	double backoff_max;

	/* Limits on the worker's tree, acted on after limit_grace seconds above:
	 * a graceful restart. 0 = no limit. */
	unsigned long long memory_limit; /* bytes */
	double cpu_limit;                /* percent of one core */
	double limit_grace;              /* seconds, default 0 */

	/* Tasks */
	enum task_protocol tasks; /* default none */
	int prefetch;             /* tasks in flight per worker, default 16 */
	double task_timeout;      /* seconds, 0 = none */
	int task_retries;         /* retries after the first attempt, default 3 */
	char *task_source;        /* NULL, a file, or "!command" */
	char *results;            /* NULL, or a file results are appended to */
};

/* A [group:x] section: programs that form one named group. */
struct group_config {
	char *name;
	struct conf_loc section;      /* the [group:NAME] header */
	struct conf_loc loc_programs; /* programs = ... */
	struct conf_loc loc_priority; /* line 0 when not written */
	int priority;                 /* default 999 */
	char **programs;              /* member program names as listed, NULL-terminated */
	size_t nprograms;
};

struct config {
	char *path;   /* the main file as given */
	char *here;   /* absolute directory of the main file (%(here)s) */
	char **files; /* every file read (main first, then includes), owned */
	size_t nfiles;

	/* [supervisord] keys that apply */
	char *logfile;     /* NULL = none */
	char *pidfile;     /* NULL = none */
	bool nodaemon;     /* accepted; drover never daemonizes */
	mode_t umask;      /* default 022 */
	char *directory;   /* NULL = stay */
	char *environment; /* NULL = none; K="v" list, applied to every program */
	char *identifier;  /* default "supervisor" */

	/* [drover] */
	char *state_dir; /* absolute; default "<here>/.drover" */
	char *socket;    /* absolute; NULL = <state_dir>/drover.sock */
	enum log_format log_format;
	bool tail;
	double refresh;          /* metrics tick, seconds, 0.1 - 60, default 1 */
	double metrics_interval; /* headless metrics events, seconds, 0 = off (default) */
	enum store_kind store;   /* default sqlite */
	char *theme;             /* console theme; NULL = default (--theme wins) */
	bool store_sync_full;    /* store_sync = full (default) | normal */

	struct program_config *programs; /* sorted by (priority, name) */
	size_t nprograms;
	struct group_config *groups; /* [group:x] sections, sorted by (priority, name) */
	size_t ngroups;
};

/* Load FILE and its includes. On success returns 0 and fills *out; warnings
 * (unknown sections and keys, ...) are appended to *warnings. On failure
 * returns -1, appends every error found to *errors and leaves *out zeroed.
 * Both message lists may be passed as NULL. */
int config_load(const char *file, struct config *out, struct conf_msgs *warnings,
                struct conf_msgs *errors);

/* Same as config_load, from text in memory: `name` is the file name used in
 * messages and %(here)s is the directory part of `name`. Includes are read
 * from disk relative to that directory. */
int config_load_string(const char *name, const char *text, struct config *out,
                       struct conf_msgs *warnings, struct conf_msgs *errors);

void config_free(struct config *cfg);

const struct program_config *config_find_program(const struct config *cfg, const char *name);

/* Is code listed in the program's exitcodes? */
bool program_exitcode_expected(const struct program_config *prog, int code);

/* One worker of a program with every template expanded. */
struct worker_spec {
	char *name;        /* process_name, e.g. "squarer_03" */
	int process_num;   /* numprocs_start + index */
	char **argv;       /* split command, NULL-terminated */
	char **env_add;    /* "K=V" entries to add, NULL-terminated: [supervisord]
	                      environment, then SUPERVISOR_ENABLED=1,
	                      SUPERVISOR_PROCESS_NAME, SUPERVISOR_GROUP_NAME, then
	                      the program's environment (later wins) */
	char *directory;   /* NULL = inherit; absolute */
	char *user;        /* NULL = no switch */
	char *stdout_path; /* NULL = NONE; AUTO -> <state_dir>/logs/<name>-stdout.log */
	char *stderr_path; /* NULL = NONE or redirect_stderr; AUTO -> ...-stderr.log */
};

/* Expand program `prog` for process number `process_num` (numprocs_start +
 * index). When process_name was not written it is "%(program_name)s" for
 * numprocs == 1 and "%(program_name)s_%(process_num)02d" otherwise.
 * Returns 0, or -1 with one sentence in err ("file:line: ..."). */
int program_expand(const struct config *cfg, const struct program_config *prog, int process_num,
                   struct worker_spec *out, char *err, size_t errlen);

void worker_spec_free(struct worker_spec *spec);

/* True when two programs would run the same workers: every value equal,
 * ignoring where they were written. With ignore_numprocs, numprocs is
 * ignored too (a change of numprocs alone can be applied by scaling). */
bool program_config_equal(const struct program_config *a, const struct program_config *b,
                          bool ignore_numprocs);

/* Message lists */
void conf_msgs_add(struct conf_msgs *msgs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void conf_msgs_free(struct conf_msgs *msgs);

/* Parsers for single values, shared with the command line and the control
 * plane. Each returns 0, or -1 when `s` is not valid (the caller words what
 * was expected). Bools take true/false, yes/no, on/off, 1/0 in any case;
 * sizes take an optional KB, MB or GB suffix (powers of 1024). */
int conf_parse_bool(const char *s, bool *out);
int conf_parse_signal(const char *s, int *out);     /* "TERM", "SIGTERM", "15" */
int conf_parse_size(const char *s, long long *out); /* "50MB", "1KB", "123" */
const char *conf_signal_name(int sig);              /* "TERM"; NULL if unknown */

#endif
