/* [program:x]: supervisord's keys and defaults, drover's own keys, and the
 * checks that need the whole section (command required, stopasgroup implies
 * killasgroup, numprocs > 1 needs %(process_num) in the name). */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

/* Enough for any pool on one host; a typo like 1000000 would otherwise
 * make validation expand a million workers. */
#define NUMPROCS_MAX 100000

static const char *const program_key_names[PK__COUNT] = {
    [PK_COMMAND] = "command",
    [PK_PROCESS_NAME] = "process_name",
    [PK_NUMPROCS] = "numprocs",
    [PK_NUMPROCS_START] = "numprocs_start",
    [PK_PRIORITY] = "priority",
    [PK_AUTOSTART] = "autostart",
    [PK_STARTSECS] = "startsecs",
    [PK_STARTRETRIES] = "startretries",
    [PK_AUTORESTART] = "autorestart",
    [PK_EXITCODES] = "exitcodes",
    [PK_STOPSIGNAL] = "stopsignal",
    [PK_STOPWAITSECS] = "stopwaitsecs",
    [PK_STOPASGROUP] = "stopasgroup",
    [PK_KILLASGROUP] = "killasgroup",
    [PK_USER] = "user",
    [PK_REDIRECT_STDERR] = "redirect_stderr",
    [PK_STDOUT_LOGFILE] = "stdout_logfile",
    [PK_STDOUT_LOGFILE_MAXBYTES] = "stdout_logfile_maxbytes",
    [PK_STDOUT_LOGFILE_BACKUPS] = "stdout_logfile_backups",
    [PK_STDERR_LOGFILE] = "stderr_logfile",
    [PK_STDERR_LOGFILE_MAXBYTES] = "stderr_logfile_maxbytes",
    [PK_STDERR_LOGFILE_BACKUPS] = "stderr_logfile_backups",
    [PK_ENVIRONMENT] = "environment",
    [PK_DIRECTORY] = "directory",
    [PK_UMASK] = "umask",
    [PK_FATAL_AFTER] = "fatal_after",
    [PK_BACKOFF_MAX] = "backoff_max",
    [PK_MEMORY_LIMIT] = "memory_limit",
    [PK_CPU_LIMIT] = "cpu_limit",
    [PK_LIMIT_GRACE] = "limit_grace",
    [PK_TASKS] = "tasks",
    [PK_PREFETCH] = "prefetch",
    [PK_TASK_TIMEOUT] = "task_timeout",
    [PK_TASK_RETRIES] = "task_retries",
    [PK_TASK_SOURCE] = "task_source",
    [PK_RESULTS] = "results",
};

/* supervisord program keys for features drover does not have. */
static const char *const program_unused_keys[] = {
    "stdout_capture_maxbytes", "stdout_events_enabled", "stdout_syslog", "stderr_capture_maxbytes",
    "stderr_events_enabled",   "stderr_syslog",         "serverurl",     NULL,
};

static void set_defaults(struct program_config *p)
{
	p->numprocs = 1;
	p->priority = 999;
	p->autostart = true;
	p->startsecs = 1;
	p->startretries = 3;
	p->autorestart = AUTORESTART_UNEXPECTED;
	memset(p->exitcodes, 0, sizeof(p->exitcodes));
	p->exitcodes[0] = 1; /* {0} */
	p->stopsignal = SIGTERM;
	p->stopwaitsecs = 10;
	p->stdout_log = (struct logfile_config){cfg_xstrdup("AUTO"), 50LL * 1024 * 1024, 10};
	p->stderr_log = (struct logfile_config){cfg_xstrdup("AUTO"), 50LL * 1024 * 1024, 10};
	p->fatal_after_count = 10;
	p->fatal_after_window = 60;
	p->backoff_max = 10;
	p->tasks = TASKS_NONE;
	p->prefetch = 16;
	p->task_retries = 3;
}

/* A log file template: AUTO and NONE are case-insensitive in supervisord;
 * store them in capitals so program_expand compares one spelling. */
static void set_logfile(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                        char **dst)
{
	if (kv->value[0] == '\0') {
		cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_LOGFILE);
		return;
	}
	free(*dst);
	if (strcasecmp(kv->value, "AUTO") == 0)
		*dst = cfg_xstrdup("AUTO");
	else if (strcasecmp(kv->value, "NONE") == 0)
		*dst = cfg_xstrdup("NONE");
	else
		*dst = cfg_xstrdup(kv->value);
}

static void set_template(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                         char **dst, const char *what)
{
	free(*dst);
	*dst = NULL;
	if (kv->value[0] == '\0' && what != NULL)
		cfg_kv_error(ld, sec, kv, "expected %s", what);
	else if (kv->value[0] != '\0')
		*dst = cfg_xstrdup(kv->value);
}

static void load_program_key(struct loader *ld, const struct raw_section *sec,
                             const struct raw_kv *kv, enum program_key pk,
                             const struct interp_ctx *ctx, struct program_config *p)
{
	char *v;
	long long size;

	switch (pk) {
	case PK_COMMAND:
		/* empty is caught with a better message when split */
		free(p->command);
		p->command = cfg_xstrdup(kv->value);
		break;
	case PK_PROCESS_NAME:
		free(p->process_name);
		p->process_name = cfg_xstrdup(kv->value);
		break;
	case PK_ENVIRONMENT:
		set_template(ld, sec, kv, &p->environment, NULL);
		break;
	case PK_DIRECTORY:
		set_template(ld, sec, kv, &p->directory, "a directory");
		break;
	case PK_USER:
		set_template(ld, sec, kv, &p->user, "a user name or id");
		break;
	case PK_STDOUT_LOGFILE:
		set_logfile(ld, sec, kv, &p->stdout_log.path);
		break;
	case PK_STDERR_LOGFILE:
		set_logfile(ld, sec, kv, &p->stderr_log.path);
		break;
	case PK_NUMPROCS:
		cfg_kv_int(ld, sec, kv, ctx, 0, NUMPROCS_MAX, EXPECT_NUMPROCS, &p->numprocs);
		break;
	case PK_NUMPROCS_START:
		cfg_kv_int(ld, sec, kv, ctx, 0, INT_MAX - NUMPROCS_MAX, EXPECT_NONNEG_INT,
		           &p->numprocs_start);
		break;
	case PK_PRIORITY:
		cfg_kv_int(ld, sec, kv, ctx, INT_MIN, INT_MAX, EXPECT_INT, &p->priority);
		break;
	case PK_STARTRETRIES:
		cfg_kv_int(ld, sec, kv, ctx, 0, INT_MAX, EXPECT_NONNEG_INT, &p->startretries);
		break;
	case PK_STDOUT_LOGFILE_BACKUPS:
		cfg_kv_int(ld, sec, kv, ctx, 0, INT_MAX, EXPECT_NONNEG_INT, &p->stdout_log.backups);
		break;
	case PK_STDERR_LOGFILE_BACKUPS:
		cfg_kv_int(ld, sec, kv, ctx, 0, INT_MAX, EXPECT_NONNEG_INT, &p->stderr_log.backups);
		break;
	case PK_AUTOSTART:
		cfg_kv_bool(ld, sec, kv, ctx, &p->autostart);
		break;
	case PK_STOPASGROUP:
		cfg_kv_bool(ld, sec, kv, ctx, &p->stopasgroup);
		break;
	case PK_KILLASGROUP:
		cfg_kv_bool(ld, sec, kv, ctx, &p->killasgroup);
		break;
	case PK_REDIRECT_STDERR:
		cfg_kv_bool(ld, sec, kv, ctx, &p->redirect_stderr);
		break;
	case PK_STARTSECS:
		cfg_kv_seconds(ld, sec, kv, ctx, &p->startsecs);
		break;
	case PK_STOPWAITSECS:
		cfg_kv_seconds(ld, sec, kv, ctx, &p->stopwaitsecs);
		break;
	case PK_BACKOFF_MAX:
		cfg_kv_seconds(ld, sec, kv, ctx, &p->backoff_max);
		break;
	case PK_UMASK:
		cfg_kv_umask(ld, sec, kv, ctx, &p->umask, &p->has_umask);
		break;
	case PK_STDOUT_LOGFILE_MAXBYTES:
	case PK_STDERR_LOGFILE_MAXBYTES:
		v = cfg_kv_expand(ld, sec, kv, ctx);
		if (v != NULL && conf_parse_size(v, &size) == 0)
			(pk == PK_STDOUT_LOGFILE_MAXBYTES ? &p->stdout_log : &p->stderr_log)
			    ->maxbytes = size;
		else if (v != NULL)
			cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_SIZE);
		free(v);
		break;
	case PK_AUTORESTART:
		v = cfg_kv_expand(ld, sec, kv, ctx);
		if (v != NULL && cfg_parse_autorestart(v, &p->autorestart) < 0)
			cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_AUTORESTART);
		free(v);
		break;
	case PK_EXITCODES:
		v = cfg_kv_expand(ld, sec, kv, ctx);
		if (v != NULL && cfg_parse_exitcodes(v, p->exitcodes) < 0)
			cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_EXITCODES);
		free(v);
		break;
	case PK_STOPSIGNAL:
		v = cfg_kv_expand(ld, sec, kv, ctx);
		if (v != NULL && conf_parse_signal(v, &p->stopsignal) < 0)
			cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_SIGNAL);
		free(v);
		break;
	case PK_FATAL_AFTER:
		v = cfg_kv_expand(ld, sec, kv, ctx);
		if (v != NULL &&
		    cfg_parse_fatal_after(v, &p->fatal_after_count, &p->fatal_after_window) < 0)
			cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_FATAL_AFTER);
		free(v);
		break;
	case PK_MEMORY_LIMIT:
		v = cfg_kv_expand(ld, sec, kv, ctx);
		if (v != NULL && conf_parse_size(v, &size) == 0 && size >= 0)
			p->memory_limit = (unsigned long long)size;
		else if (v != NULL)
			cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_SIZE);
		free(v);
		break;
	case PK_CPU_LIMIT:
		/* read as written: "90%" is a percentage, not an expression */
		if (cfg_parse_percent(kv->value, &p->cpu_limit) < 0)
			cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_PERCENT);
		break;
	case PK_LIMIT_GRACE:
		cfg_kv_seconds(ld, sec, kv, ctx, &p->limit_grace);
		break;
	case PK_TASKS:
		v = cfg_kv_expand(ld, sec, kv, ctx);
		if (v != NULL && strcasecmp(v, "none") == 0)
			p->tasks = TASKS_NONE;
		else if (v != NULL && strcasecmp(v, "lines") == 0)
			p->tasks = TASKS_LINES;
		else if (v != NULL && strcasecmp(v, "json") == 0)
			p->tasks = TASKS_JSON;
		else if (v != NULL)
			cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_TASKS);
		free(v);
		break;
	case PK_PREFETCH:
		cfg_kv_int(ld, sec, kv, ctx, 1, 100000, EXPECT_PREFETCH, &p->prefetch);
		break;
	case PK_TASK_TIMEOUT:
		cfg_kv_seconds(ld, sec, kv, ctx, &p->task_timeout);
		break;
	case PK_TASK_RETRIES:
		cfg_kv_int(ld, sec, kv, ctx, 0, 1000, EXPECT_NONNEG_INT, &p->task_retries);
		break;
	case PK_TASK_SOURCE:
		free(p->task_source);
		p->task_source = NULL;
		v = cfg_kv_expand(ld, sec, kv, ctx);
		if (v != NULL && v[0] == '!')
			p->task_source = v; /* a command: run in the program's directory */
		else if (v != NULL) {
			free(v);
			p->task_source = cfg_kv_path(ld, sec, kv, ctx, "a file or !command");
		}
		break;
	case PK_RESULTS:
		free(p->results);
		p->results = cfg_kv_path(ld, sec, kv, ctx, "a file");
		break;
	case PK__COUNT:
		abort();
	}
}

void cfg_program_load(struct loader *ld, const struct raw_section *sec, const char *name,
                      const char *group, struct program_config *p)
{
	struct interp_var vars[] = {
	    {.name = "program_name", .str = name},
	    {.name = "group_name", .str = group},
	    {.name = "host_node_name", .str = ld->host_node_name},
	    {.name = "here", .str = sec->here},
	};
	struct interp_ctx ctx = {.vars = vars, .nvars = 4};

	memset(p, 0, sizeof(*p));
	p->name = cfg_xstrdup(name);
	p->group = cfg_xstrdup(group);
	p->here = cfg_xstrdup(sec->here);
	p->section = (struct conf_loc){sec->file, sec->line};
	for (int k = 0; k < PK__COUNT; k++)
		p->loc[k].file = sec->file;
	set_defaults(p);

	for (size_t i = 0; i < sec->nkvs; i++) {
		const struct raw_kv *kv = &sec->kvs[i];
		int pk = 0;
		while (pk < PK__COUNT && strcmp(program_key_names[pk], kv->key) != 0)
			pk++;
		if (pk == PK__COUNT) {
			cfg_kv_warn(ld, sec, kv, cfg_in_list(program_unused_keys, kv->key));
			continue;
		}
		p->loc[pk].line = kv->line;
		load_program_key(ld, sec, kv, (enum program_key)pk, &ctx, p);
	}

	if (p->command == NULL)
		conf_msgs_add(&ld->errors, "%s:%d: [%s]: command is required", sec->file, sec->line,
		              sec->name);
	if (p->stopasgroup) {
		const struct raw_kv *kill = cfg_find_kv(sec, "killasgroup");
		if (kill != NULL && !p->killasgroup)
			cfg_kv_error(ld, sec, kill,
			             "expected true, because stopasgroup = true "
			             "implies killasgroup");
		p->killasgroup = true;
	}
	if (p->numprocs > 1 && p->process_name != NULL &&
	    strstr(p->process_name, "%(process_num)") == NULL)
		cfg_kv_error(ld, sec, cfg_find_kv(sec, "process_name"),
		             "expected %%(process_num) in the name, because numprocs = %d would "
		             "give every worker the same name",
		             p->numprocs);
	if (p->redirect_stderr && p->loc[PK_STDERR_LOGFILE].line > 0 &&
	    strcmp(p->stderr_log.path, "AUTO") != 0 && strcmp(p->stderr_log.path, "NONE") != 0)
		conf_msgs_add(
		    &ld->warnings,
		    "%s:%d: [%s] stderr_logfile is ignored because redirect_stderr = true",
		    sec->file, p->loc[PK_STDERR_LOGFILE].line, sec->name);
	struct logfile_config *logs[] = {&p->stdout_log, &p->stderr_log};
	for (int i = 0; i < 2; i++) {
		if (i == 1 && p->redirect_stderr)
			break;
		int pk = i ? PK_STDERR_LOGFILE_MAXBYTES : PK_STDOUT_LOGFILE_MAXBYTES;
		if (strcmp(logs[i]->path, "AUTO") == 0 && logs[i]->maxbytes == 0)
			conf_msgs_add(&ld->warnings,
			              "%s:%d: [%s] %s_logfile is AUTO with %s = 0: the log "
			              "grows without limit",
			              sec->file, p->loc[pk].line ? p->loc[pk].line : sec->line,
			              sec->name, i ? "stderr" : "stdout", program_key_names[pk]);
	}
}

void cfg_program_free(struct program_config *p)
{
	free(p->name);
	free(p->group);
	free(p->here);
	free(p->task_source);
	free(p->results);
	free(p->command);
	free(p->process_name);
	free(p->environment);
	free(p->directory);
	free(p->user);
	free(p->stdout_log.path);
	free(p->stderr_log.path);
}

bool program_exitcode_expected(const struct program_config *prog, int code)
{
	if (code < 0 || code > 255)
		return false;
	return (prog->exitcodes[code / 8] >> (code % 8)) & 1;
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool log_eq(const struct logfile_config *a, const struct logfile_config *b)
{
	return str_eq(a->path, b->path) && a->maxbytes == b->maxbytes && a->backups == b->backups;
}

bool program_config_equal(const struct program_config *a, const struct program_config *b,
                          bool ignore_numprocs)
{
	return str_eq(a->name, b->name) && str_eq(a->group, b->group) && str_eq(a->here, b->here) &&
	       str_eq(a->command, b->command) && str_eq(a->process_name, b->process_name) &&
	       str_eq(a->environment, b->environment) && str_eq(a->directory, b->directory) &&
	       str_eq(a->user, b->user) && (ignore_numprocs || a->numprocs == b->numprocs) &&
	       a->numprocs_start == b->numprocs_start && a->priority == b->priority &&
	       a->autostart == b->autostart && a->startsecs == b->startsecs &&
	       a->startretries == b->startretries && a->autorestart == b->autorestart &&
	       memcmp(a->exitcodes, b->exitcodes, sizeof(a->exitcodes)) == 0 &&
	       a->stopsignal == b->stopsignal && a->stopwaitsecs == b->stopwaitsecs &&
	       a->stopasgroup == b->stopasgroup && a->killasgroup == b->killasgroup &&
	       a->redirect_stderr == b->redirect_stderr && log_eq(&a->stdout_log, &b->stdout_log) &&
	       log_eq(&a->stderr_log, &b->stderr_log) && a->has_umask == b->has_umask &&
	       (!a->has_umask || a->umask == b->umask) &&
	       a->fatal_after_count == b->fatal_after_count &&
	       a->fatal_after_window == b->fatal_after_window && a->backoff_max == b->backoff_max &&
	       a->memory_limit == b->memory_limit && a->cpu_limit == b->cpu_limit &&
	       a->limit_grace == b->limit_grace && a->tasks == b->tasks &&
	       a->prefetch == b->prefetch && a->task_timeout == b->task_timeout &&
	       a->task_retries == b->task_retries && str_eq(a->task_source, b->task_source) &&
	       str_eq(a->results, b->results);
}
