/* drover check: the config as drover reads it, so a user can see defaults,
 * where each value was written, and the exact command line of every worker
 * before anything runs. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/check.h"
#include "drover/config.h"

/* Quote a word for a POSIX shell only when it needs it. A command's first
 * word with '=' would be taken for an assignment, so it is quoted too. */
static void put_shell_word(FILE *out, const char *w, bool first)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                           "0123456789_@%+=:,./-";

	if (w[0] != '\0' && strspn(w, safe) == strlen(w) && !(first && strchr(w, '=') != NULL)) {
		fputs(w, out);
		return;
	}
	fputc('\'', out);
	for (const char *p = w; *p != '\0'; p++) {
		if (*p == '\'')
			fputs("'\\''", out);
		else
			fputc(*p, out);
	}
	fputc('\'', out);
}

static void put_shell_words(FILE *out, char *const *words, bool command)
{
	for (char *const *w = words; *w != NULL; w++) {
		if (w != words)
			fputc(' ', out);
		put_shell_word(out, *w, command && w == words);
	}
}

/* A multi-line value is shown on one line, as the words it splits into. */
static void put_value(FILE *out, const char *v)
{
	for (const char *p = v; *p != '\0'; p++)
		fputc(*p == '\n' ? ' ' : *p, out);
}

static void put_size(FILE *out, long long n)
{
	static const struct {
		const char *unit;
		long long size;
	} units[] = {{"GB", 1024LL * 1024 * 1024}, {"MB", 1024LL * 1024}, {"KB", 1024}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (n != 0 && n % units[i].size == 0) {
			fprintf(out, "%lld%s", n / units[i].size, units[i].unit);
			return;
		}
	}
	fprintf(out, "%lld", n);
}

static void put_loc(FILE *out, struct conf_loc loc)
{
	if (loc.line > 0)
		fprintf(out, "  ; %s:%d", loc.file, loc.line);
	fputc('\n', out);
}

static const char *bool_str(bool b)
{
	return b ? "true" : "false";
}

static void put_program_settings(FILE *out, const struct program_config *p)
{
	static const char *const autorestart[] = {"false", "unexpected", "true"};
	const struct conf_loc *l = p->loc;

	fprintf(out, "[program:%s]", p->name);
	put_loc(out, p->section);
	fprintf(out, "group = %s\n", p->group);
	fputs("command = ", out);
	put_value(out, p->command);
	put_loc(out, l[PK_COMMAND]);
	if (p->process_name != NULL)
		fprintf(out, "process_name = %s", p->process_name);
	else
		fprintf(out, "process_name = %s",
		        p->numprocs != 1 ? "%(program_name)s_%(process_num)02d"
		                         : "%(program_name)s");
	put_loc(out, l[PK_PROCESS_NAME]);
	fprintf(out, "numprocs = %d", p->numprocs);
	put_loc(out, l[PK_NUMPROCS]);
	fprintf(out, "numprocs_start = %d", p->numprocs_start);
	put_loc(out, l[PK_NUMPROCS_START]);
	fprintf(out, "priority = %d", p->priority);
	put_loc(out, l[PK_PRIORITY]);
	fprintf(out, "autostart = %s", bool_str(p->autostart));
	put_loc(out, l[PK_AUTOSTART]);
	fprintf(out, "startsecs = %g", p->startsecs);
	put_loc(out, l[PK_STARTSECS]);
	fprintf(out, "startretries = %d", p->startretries);
	put_loc(out, l[PK_STARTRETRIES]);
	fprintf(out, "autorestart = %s", autorestart[p->autorestart]);
	put_loc(out, l[PK_AUTORESTART]);
	fputs("exitcodes = ", out);
	for (int code = 0, n = 0; code < 256; code++) {
		if (program_exitcode_expected(p, code))
			fprintf(out, "%s%d", n++ ? "," : "", code);
	}
	put_loc(out, l[PK_EXITCODES]);
	const char *sig = conf_signal_name(p->stopsignal);
	if (sig != NULL)
		fprintf(out, "stopsignal = %s", sig);
	else
		fprintf(out, "stopsignal = %d", p->stopsignal);
	put_loc(out, l[PK_STOPSIGNAL]);
	fprintf(out, "stopwaitsecs = %g", p->stopwaitsecs);
	put_loc(out, l[PK_STOPWAITSECS]);
	fprintf(out, "stopasgroup = %s", bool_str(p->stopasgroup));
	put_loc(out, l[PK_STOPASGROUP]);
	fprintf(out, "killasgroup = %s", bool_str(p->killasgroup));
	put_loc(out, l[PK_KILLASGROUP]);
	fprintf(out, "user = %s", p->user ? p->user : "(none)");
	put_loc(out, l[PK_USER]);
	fprintf(out, "directory = %s", p->directory ? p->directory : "(inherit)");
	put_loc(out, l[PK_DIRECTORY]);
	if (p->has_umask)
		fprintf(out, "umask = %03o", (unsigned)p->umask);
	else
		fputs("umask = (inherit)", out);
	put_loc(out, l[PK_UMASK]);
	fputs("environment = ", out);
	put_value(out, p->environment ? p->environment : "(none)");
	put_loc(out, l[PK_ENVIRONMENT]);
	fprintf(out, "redirect_stderr = %s", bool_str(p->redirect_stderr));
	put_loc(out, l[PK_REDIRECT_STDERR]);
	const struct logfile_config *logs[] = {&p->stdout_log, &p->stderr_log};
	for (int i = 0; i < 2; i++) {
		const char *s = i ? "stderr" : "stdout";
		int base = i ? PK_STDERR_LOGFILE : PK_STDOUT_LOGFILE;
		fprintf(out, "%s_logfile = %s", s, logs[i]->path);
		put_loc(out, l[base]);
		fprintf(out, "%s_logfile_maxbytes = ", s);
		put_size(out, logs[i]->maxbytes);
		put_loc(out, l[base + 1]);
		fprintf(out, "%s_logfile_backups = %d", s, logs[i]->backups);
		put_loc(out, l[base + 2]);
	}
	if (p->fatal_after_count > 0)
		fprintf(out, "fatal_after = %d/%gs", p->fatal_after_count, p->fatal_after_window);
	else
		fputs("fatal_after = 0", out);
	put_loc(out, l[PK_FATAL_AFTER]);
	fprintf(out, "backoff_max = %g", p->backoff_max);
	put_loc(out, l[PK_BACKOFF_MAX]);
	if (p->memory_limit) {
		fputs("memory_limit = ", out);
		put_size(out, (long long)p->memory_limit);
		put_loc(out, l[PK_MEMORY_LIMIT]);
	}
	if (p->cpu_limit > 0) {
		fprintf(out, "cpu_limit = %g%%", p->cpu_limit);
		put_loc(out, l[PK_CPU_LIMIT]);
	}
	if (p->memory_limit || p->cpu_limit > 0) {
		fprintf(out, "limit_grace = %g", p->limit_grace);
		put_loc(out, l[PK_LIMIT_GRACE]);
	}
	static const char *const protocols[] = {"none", "lines", "json"};
	fprintf(out, "tasks = %s", protocols[p->tasks]);
	put_loc(out, l[PK_TASKS]);
	if (p->tasks != TASKS_NONE) {
		fprintf(out, "prefetch = %d", p->prefetch);
		put_loc(out, l[PK_PREFETCH]);
		fprintf(out, "task_timeout = %g", p->task_timeout);
		put_loc(out, l[PK_TASK_TIMEOUT]);
		fprintf(out, "task_retries = %d", p->task_retries);
		put_loc(out, l[PK_TASK_RETRIES]);
		if (p->task_source) {
			fprintf(out, "task_source = %s", p->task_source);
			put_loc(out, l[PK_TASK_SOURCE]);
		}
		if (p->results) {
			fprintf(out, "results = %s", p->results);
			put_loc(out, l[PK_RESULTS]);
		}
	}
}

static void put_worker(FILE *out, const struct worker_spec *w)
{
	fprintf(out, "worker %s:\n", w->name);
	fprintf(out, "    process_num = %d\n", w->process_num);
	fputs("    argv = ", out);
	put_shell_words(out, w->argv, true);
	fputs("\n    env = ", out);
	put_shell_words(out, w->env_add, false);
	fputc('\n', out);
	if (w->directory != NULL)
		fprintf(out, "    directory = %s\n", w->directory);
	if (w->user != NULL)
		fprintf(out, "    user = %s\n", w->user);
	fprintf(out, "    stdout = %s\n", w->stdout_path ? w->stdout_path : "(none)");
	fprintf(out, "    stderr = %s\n", w->stderr_path ? w->stderr_path : "(none)");
}

static void put_globals(FILE *out, const struct config *cfg)
{
	fputs("[drover]\n", out);
	fprintf(out, "state_dir = %s\n", cfg->state_dir);
	fprintf(out, "log_format = %s\n", cfg->log_format == LOG_FORMAT_JSON ? "json" : "logfmt");
	fprintf(out, "tail = %s\n\n", bool_str(cfg->tail));
	fputs("[supervisord]\n", out);
	fprintf(out, "logfile = %s\n", cfg->logfile ? cfg->logfile : "(none)");
	fprintf(out, "pidfile = %s\n", cfg->pidfile ? cfg->pidfile : "(none)");
	fprintf(out, "nodaemon = %s\n", bool_str(cfg->nodaemon));
	fprintf(out, "umask = %03o\n", (unsigned)cfg->umask);
	fprintf(out, "directory = %s\n", cfg->directory ? cfg->directory : "(stay)");
	fputs("environment = ", out);
	put_value(out, cfg->environment ? cfg->environment : "(none)");
	fprintf(out, "\nidentifier = %s\n", cfg->identifier);
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct group_config *g = &cfg->groups[i];
		fprintf(out, "\n[group:%s]", g->name);
		put_loc(out, g->section);
		fputs("programs = ", out);
		for (size_t j = 0; j < g->nprograms; j++)
			fprintf(out, "%s%s", j ? "," : "", g->programs[j]);
		put_loc(out, g->loc_programs);
		fprintf(out, "priority = %d", g->priority);
		put_loc(out, g->loc_priority);
	}
}

int check_run(const char *config_path, FILE *out, FILE *err)
{
	struct config cfg;
	struct conf_msgs warnings = {0}, errors = {0};
	int rc = config_load(config_path, &cfg, &warnings, &errors);

	for (size_t i = 0; i < warnings.count; i++)
		fprintf(err, "warning: %s\n", warnings.items[i]);
	for (size_t i = 0; i < errors.count; i++)
		fprintf(err, "error: %s\n", errors.items[i]);
	if (rc < 0) {
		fprintf(err, "%s: not valid: %zu error%s\n", config_path, errors.count,
		        errors.count == 1 ? "" : "s");
		conf_msgs_free(&warnings);
		conf_msgs_free(&errors);
		return 1;
	}

	long workers = 0;
	for (size_t i = 0; i < cfg.nprograms; i++)
		workers += cfg.programs[i].numprocs;
	fprintf(out, "; %s is valid: %zu program%s, %ld worker%s, %zu warning%s\n", config_path,
	        cfg.nprograms, cfg.nprograms == 1 ? "" : "s", workers, workers == 1 ? "" : "s",
	        warnings.count, warnings.count == 1 ? "" : "s");
	fputs("; files read:", out);
	for (size_t i = 0; i < cfg.nfiles; i++)
		fprintf(out, " %s", cfg.files[i]);
	fputs("\n\n", out);
	put_globals(out, &cfg);

	int status = 0;
	for (size_t i = 0; i < cfg.nprograms && status == 0; i++) {
		const struct program_config *p = &cfg.programs[i];
		fputc('\n', out);
		put_program_settings(out, p);
		for (int k = 0; k < p->numprocs; k++) {
			struct worker_spec w;
			char msg[1024];
			/* config_load expanded every worker already, so this
			 * only fails if the environment changed under us */
			if (program_expand(&cfg, p, p->numprocs_start + k, &w, msg, sizeof(msg)) <
			    0) {
				fprintf(err, "error: %s\n", msg);
				status = 1;
				break;
			}
			put_worker(out, &w);
			worker_spec_free(&w);
		}
	}
	config_free(&cfg);
	conf_msgs_free(&warnings);
	conf_msgs_free(&errors);
	return status;
}
