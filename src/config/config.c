/* Turning raw INI sections into struct config: supervisord's sections and
 * keys with their defaults, drover's own [drover] section, groups, and the
 * validation that expands every worker once so that a config that loads is a
 * config that can run. Reading files is in reader.c, per-worker expansion in
 * expand.c. */
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
};

/* supervisord program keys for features drover does not have. */
static const char *const program_unused_keys[] = {
    "stdout_capture_maxbytes", "stdout_events_enabled", "stdout_syslog", "stderr_capture_maxbytes",
    "stderr_events_enabled",   "stderr_syslog",         "serverurl",     NULL,
};

static const char *const supervisord_unused_keys[] = {
    "logfile_maxbytes", "logfile_backups", "loglevel",    "minfds",
    "minprocs",         "nocleanup",       "childlogdir", "user",
    "strip_ansi",       "silent",          NULL,
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++) {
		if (strcmp(*list, s) == 0)
			return true;
	}
	return false;
}

/* "file:line: key = "value": " followed by the message. */
static void bad_value(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void bad_value(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                      const char *fmt, ...)
{
	struct sbuf b = {0};
	va_list ap;

	sbuf_addf(&b, "%s:%d: %s = ", sec->file, kv->line, kv->key);
	sbuf_add_quoted(&b, kv->value);
	sbuf_add(&b, ": ");
	va_start(ap, fmt);
	sbuf_vaddf(&b, fmt, ap);
	va_end(ap);
	conf_msgs_add(&ld->errors, "%s", b.s);
	free(b.s);
}

static void warn_key(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                     bool known)
{
	if (known)
		conf_msgs_add(&ld->warnings, "%s:%d: [%s] %s is not used by drover; ignored",
		              sec->file, kv->line, sec->name, kv->key);
	else
		conf_msgs_add(&ld->warnings, "%s:%d: [%s] unknown key %s; ignored", sec->file,
		              kv->line, sec->name, kv->key);
}

/* Expand %(...)s in a value that is not a per-worker template (numbers,
 * booleans, paths of [supervisord] and [drover]). NULL after reporting. */
static char *expand_plain(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                          const struct interp_ctx *ctx)
{
	char err[512];
	char *out;

	if (interp_expand(ctx, kv->value, &out, err, sizeof(err)) < 0) {
		bad_value(ld, sec, kv, "%s", err);
		return NULL;
	}
	return out;
}

/* Expand, then make absolute against the section's directory. */
static char *expand_path(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                         const struct interp_ctx *ctx, const char *what)
{
	char *v = expand_plain(ld, sec, kv, ctx);

	if (v == NULL)
		return NULL;
	if (v[0] == '\0') {
		bad_value(ld, sec, kv, "expected %s", what);
		free(v);
		return NULL;
	}
	char *abs = cfg_path_abs(sec->here, v);
	free(v);
	return abs;
}

static int parse_int_kv(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                        const struct interp_ctx *ctx, long long min, long long max,
                        const char *expected, int *out)
{
	char *v = expand_plain(ld, sec, kv, ctx);
	long long n;

	if (v == NULL)
		return -1;
	int rc = val_parse_int(v, min, max, &n);
	if (rc < 0 && val_parse_int(v, min, LLONG_MAX, &n) == 0)
		bad_value(ld, sec, kv, "expected %s up to %lld", expected, max);
	else if (rc < 0)
		bad_value(ld, sec, kv, "expected %s", expected);
	else
		*out = (int)n;
	free(v);
	return rc;
}

static int parse_bool_kv(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                         const struct interp_ctx *ctx, bool *out)
{
	char *v = expand_plain(ld, sec, kv, ctx);
	int rc = v ? conf_parse_bool(v, out) : -1;

	if (v != NULL && rc < 0)
		bad_value(ld, sec, kv, "expected %s", EXPECT_BOOL);
	free(v);
	return rc;
}

static int parse_seconds_kv(struct loader *ld, const struct raw_section *sec,
                            const struct raw_kv *kv, const struct interp_ctx *ctx, double *out)
{
	char *v = expand_plain(ld, sec, kv, ctx);
	int rc = v ? val_parse_seconds(v, out) : -1;

	if (v != NULL && rc < 0)
		bad_value(ld, sec, kv, "expected %s", EXPECT_SECONDS);
	free(v);
	return rc;
}

static void parse_umask_kv(struct loader *ld, const struct raw_section *sec,
                           const struct raw_kv *kv, const struct interp_ctx *ctx, mode_t *out,
                           bool *has)
{
	char *v = expand_plain(ld, sec, kv, ctx);
	long m;

	if (v != NULL && val_parse_octal(v, 0777, &m) == 0) {
		*out = (mode_t)m;
		if (has != NULL)
			*has = true;
	} else if (v != NULL) {
		bad_value(ld, sec, kv, "expected %s", EXPECT_UMASK);
	}
	free(v);
}

/* An environment list is checked here once its names are expanded; the
 * worker gets it parsed again by program_expand. */
static char *parse_env_kv(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                          const struct interp_ctx *ctx)
{
	char *v = expand_plain(ld, sec, kv, ctx);
	char **env;
	char err[256];

	if (v == NULL)
		return NULL;
	if (val_parse_env(v, &env, err, sizeof(err)) < 0) {
		bad_value(ld, sec, kv, "%s; expected %s", err, EXPECT_ENV);
		free(v);
		return NULL;
	}
	cfg_strv_free(env);
	return v;
}

static void load_supervisord(struct loader *ld, const struct raw_section *sec)
{
	struct config *cfg = ld->cfg;
	struct interp_var vars[] = {
	    {.name = "here", .str = sec->here},
	    {.name = "host_node_name", .str = ld->host_node_name},
	};
	struct interp_ctx ctx = {.vars = vars, .nvars = 2};

	for (size_t i = 0; i < sec->nkvs; i++) {
		const struct raw_kv *kv = &sec->kvs[i];
		char **dst = NULL;
		if (strcmp(kv->key, "logfile") == 0)
			dst = &cfg->logfile;
		else if (strcmp(kv->key, "pidfile") == 0)
			dst = &cfg->pidfile;
		else if (strcmp(kv->key, "directory") == 0)
			dst = &cfg->directory;
		if (dst != NULL) {
			free(*dst);
			*dst = expand_path(ld, sec, kv, &ctx, "a path");
		} else if (strcmp(kv->key, "nodaemon") == 0) {
			parse_bool_kv(ld, sec, kv, &ctx, &cfg->nodaemon);
		} else if (strcmp(kv->key, "umask") == 0) {
			parse_umask_kv(ld, sec, kv, &ctx, &cfg->umask, NULL);
		} else if (strcmp(kv->key, "environment") == 0) {
			free(cfg->environment);
			cfg->environment = parse_env_kv(ld, sec, kv, &ctx);
		} else if (strcmp(kv->key, "identifier") == 0) {
			char *v = expand_plain(ld, sec, kv, &ctx);
			if (v != NULL) {
				free(cfg->identifier);
				cfg->identifier = v;
			}
		} else {
			warn_key(ld, sec, kv, in_list(supervisord_unused_keys, kv->key));
		}
	}
}

static void load_drover(struct loader *ld, const struct raw_section *sec)
{
	struct config *cfg = ld->cfg;
	struct interp_var vars[] = {
	    {.name = "here", .str = sec->here},
	    {.name = "host_node_name", .str = ld->host_node_name},
	};
	struct interp_ctx ctx = {.vars = vars, .nvars = 2};

	for (size_t i = 0; i < sec->nkvs; i++) {
		const struct raw_kv *kv = &sec->kvs[i];
		if (strcmp(kv->key, "state_dir") == 0) {
			free(cfg->state_dir);
			cfg->state_dir = expand_path(ld, sec, kv, &ctx, "a directory");
		} else if (strcmp(kv->key, "log_format") == 0) {
			char *v = expand_plain(ld, sec, kv, &ctx);
			if (v != NULL && strcasecmp(v, "logfmt") == 0)
				cfg->log_format = LOG_FORMAT_LOGFMT;
			else if (v != NULL && strcasecmp(v, "json") == 0)
				cfg->log_format = LOG_FORMAT_JSON;
			else if (v != NULL)
				bad_value(ld, sec, kv, "expected %s", EXPECT_LOG_FORMAT);
			free(v);
		} else if (strcmp(kv->key, "tail") == 0) {
			parse_bool_kv(ld, sec, kv, &ctx, &cfg->tail);
		} else if (strcmp(kv->key, "socket") == 0) {
			free(cfg->socket);
			cfg->socket = expand_path(ld, sec, kv, &ctx, "a socket path");
		} else {
			warn_key(ld, sec, kv, false);
		}
	}
}

/* supervisord's process_or_group_name(): names end up in "group:name"
 * addresses and in log file names. */
static bool valid_name(const char *name)
{
	return name[0] != '\0' && strpbrk(name, " \t:/") == NULL;
}

static void load_group(struct loader *ld, const struct raw_section *sec, const char *name)
{
	struct config *cfg = ld->cfg;
	struct interp_var vars[] = {
	    {.name = "here", .str = sec->here},
	    {.name = "host_node_name", .str = ld->host_node_name},
	    {.name = "group_name", .str = name},
	};
	struct interp_ctx ctx = {.vars = vars, .nvars = 3};
	struct group_config g = {
	    .name = cfg_xstrdup(name),
	    .section = {sec->file, sec->line},
	    .priority = 999,
	};

	g.programs = cfg_xmalloc(sizeof(*g.programs));
	g.programs[0] = NULL;
	for (size_t i = 0; i < sec->nkvs; i++) {
		const struct raw_kv *kv = &sec->kvs[i];
		if (strcmp(kv->key, "priority") == 0) {
			g.loc_priority = (struct conf_loc){sec->file, kv->line};
			parse_int_kv(ld, sec, kv, &ctx, INT_MIN, INT_MAX, EXPECT_INT, &g.priority);
		} else if (strcmp(kv->key, "programs") == 0) {
			g.loc_programs = (struct conf_loc){sec->file, kv->line};
			char *v = expand_plain(ld, sec, kv, &ctx);
			char *save = NULL;
			for (char *p = v ? strtok_r(v, ",", &save) : NULL; p != NULL;
			     p = strtok_r(NULL, ",", &save)) {
				while (*p == ' ' || *p == '\t' || *p == '\n')
					p++;
				size_t n = strlen(p);
				while (n > 0 &&
				       (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n'))
					n--;
				if (n == 0)
					continue;
				g.programs = cfg_xrealloc(g.programs,
				                          (g.nprograms + 2) * sizeof(*g.programs));
				g.programs[g.nprograms++] = cfg_xstrndup(p, n);
				g.programs[g.nprograms] = NULL;
			}
			free(v);
		} else {
			warn_key(ld, sec, kv, false);
		}
	}
	if (g.nprograms == 0 && g.loc_programs.line == 0)
		conf_msgs_add(&ld->errors, "%s:%d: [%s]: programs is required", sec->file,
		              sec->line, sec->name);
	else if (g.nprograms == 0)
		conf_msgs_add(&ld->errors,
		              "%s:%d: programs = \"\": expected a comma-separated list of programs",
		              sec->file, g.loc_programs.line);
	cfg->groups = cfg_xrealloc(cfg->groups, (cfg->ngroups + 1) * sizeof(*cfg->groups));
	cfg->groups[cfg->ngroups++] = g;
}

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
}

/* A log file template: AUTO and NONE are case-insensitive in supervisord;
 * store them in capitals so program_expand compares one spelling. */
static void set_logfile(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                        char **dst)
{
	if (kv->value[0] == '\0') {
		bad_value(ld, sec, kv, "expected %s", EXPECT_LOGFILE);
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
		bad_value(ld, sec, kv, "expected %s", what);
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
		parse_int_kv(ld, sec, kv, ctx, 0, NUMPROCS_MAX, EXPECT_NUMPROCS, &p->numprocs);
		break;
	case PK_NUMPROCS_START:
		parse_int_kv(ld, sec, kv, ctx, 0, INT_MAX - NUMPROCS_MAX, EXPECT_NONNEG_INT,
		             &p->numprocs_start);
		break;
	case PK_PRIORITY:
		parse_int_kv(ld, sec, kv, ctx, INT_MIN, INT_MAX, EXPECT_INT, &p->priority);
		break;
	case PK_STARTRETRIES:
		parse_int_kv(ld, sec, kv, ctx, 0, INT_MAX, EXPECT_NONNEG_INT, &p->startretries);
		break;
	case PK_STDOUT_LOGFILE_BACKUPS:
		parse_int_kv(ld, sec, kv, ctx, 0, INT_MAX, EXPECT_NONNEG_INT,
		             &p->stdout_log.backups);
		break;
	case PK_STDERR_LOGFILE_BACKUPS:
		parse_int_kv(ld, sec, kv, ctx, 0, INT_MAX, EXPECT_NONNEG_INT,
		             &p->stderr_log.backups);
		break;
	case PK_AUTOSTART:
		parse_bool_kv(ld, sec, kv, ctx, &p->autostart);
		break;
	case PK_STOPASGROUP:
		parse_bool_kv(ld, sec, kv, ctx, &p->stopasgroup);
		break;
	case PK_KILLASGROUP:
		parse_bool_kv(ld, sec, kv, ctx, &p->killasgroup);
		break;
	case PK_REDIRECT_STDERR:
		parse_bool_kv(ld, sec, kv, ctx, &p->redirect_stderr);
		break;
	case PK_STARTSECS:
		parse_seconds_kv(ld, sec, kv, ctx, &p->startsecs);
		break;
	case PK_STOPWAITSECS:
		parse_seconds_kv(ld, sec, kv, ctx, &p->stopwaitsecs);
		break;
	case PK_BACKOFF_MAX:
		parse_seconds_kv(ld, sec, kv, ctx, &p->backoff_max);
		break;
	case PK_UMASK:
		parse_umask_kv(ld, sec, kv, ctx, &p->umask, &p->has_umask);
		break;
	case PK_STDOUT_LOGFILE_MAXBYTES:
	case PK_STDERR_LOGFILE_MAXBYTES:
		v = expand_plain(ld, sec, kv, ctx);
		if (v != NULL && conf_parse_size(v, &size) == 0)
			(pk == PK_STDOUT_LOGFILE_MAXBYTES ? &p->stdout_log : &p->stderr_log)
			    ->maxbytes = size;
		else if (v != NULL)
			bad_value(ld, sec, kv, "expected %s", EXPECT_SIZE);
		free(v);
		break;
	case PK_AUTORESTART:
		v = expand_plain(ld, sec, kv, ctx);
		if (v != NULL && val_parse_autorestart(v, &p->autorestart) < 0)
			bad_value(ld, sec, kv, "expected %s", EXPECT_AUTORESTART);
		free(v);
		break;
	case PK_EXITCODES:
		v = expand_plain(ld, sec, kv, ctx);
		if (v != NULL && val_parse_exitcodes(v, p->exitcodes) < 0)
			bad_value(ld, sec, kv, "expected %s", EXPECT_EXITCODES);
		free(v);
		break;
	case PK_STOPSIGNAL:
		v = expand_plain(ld, sec, kv, ctx);
		if (v != NULL && conf_parse_signal(v, &p->stopsignal) < 0)
			bad_value(ld, sec, kv, "expected %s", EXPECT_SIGNAL);
		free(v);
		break;
	case PK_FATAL_AFTER:
		v = expand_plain(ld, sec, kv, ctx);
		if (v != NULL &&
		    val_parse_fatal_after(v, &p->fatal_after_count, &p->fatal_after_window) < 0)
			bad_value(ld, sec, kv, "expected %s", EXPECT_FATAL_AFTER);
		free(v);
		break;
	case PK__COUNT:
		abort();
	}
}

static const struct raw_kv *find_kv(const struct raw_section *sec, const char *key)
{
	for (size_t i = sec->nkvs; i-- > 0;) {
		if (strcmp(sec->kvs[i].key, key) == 0)
			return &sec->kvs[i];
	}
	return NULL;
}

static void load_program(struct loader *ld, const struct raw_section *sec, const char *name,
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
			warn_key(ld, sec, kv, in_list(program_unused_keys, kv->key));
			continue;
		}
		p->loc[pk].line = kv->line;
		load_program_key(ld, sec, kv, (enum program_key)pk, &ctx, p);
	}

	if (p->command == NULL)
		conf_msgs_add(&ld->errors, "%s:%d: [%s]: command is required", sec->file, sec->line,
		              sec->name);
	if (p->stopasgroup) {
		const struct raw_kv *kill = find_kv(sec, "killasgroup");
		if (kill != NULL && !p->killasgroup)
			bad_value(ld, sec, kill,
			          "expected true, because stopasgroup = true "
			          "implies killasgroup");
		p->killasgroup = true;
	}
	if (p->numprocs > 1 && p->process_name != NULL &&
	    strstr(p->process_name, "%(process_num)") == NULL)
		bad_value(ld, sec, find_kv(sec, "process_name"),
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

static void free_program(struct program_config *p)
{
	free(p->name);
	free(p->group);
	free(p->here);
	free(p->command);
	free(p->process_name);
	free(p->environment);
	free(p->directory);
	free(p->user);
	free(p->stdout_log.path);
	free(p->stderr_log.path);
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nprograms; i++)
		free_program(&cfg->programs[i]);
	free(cfg->programs);
	for (size_t i = 0; i < cfg->ngroups; i++) {
		free(cfg->groups[i].name);
		cfg_strv_free(cfg->groups[i].programs);
	}
	free(cfg->groups);
	for (size_t i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i]);
	free(cfg->files);
	free(cfg->path);
	free(cfg->here);
	free(cfg->logfile);
	free(cfg->pidfile);
	free(cfg->directory);
	free(cfg->environment);
	free(cfg->identifier);
	free(cfg->state_dir);
	free(cfg->socket);
	memset(cfg, 0, sizeof(*cfg));
}

static const char *section_suffix(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(name, prefix, n) == 0 ? name + n : NULL;
}

static int cmp_programs(const void *a, const void *b)
{
	const struct program_config *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_groups(const void *a, const void *b)
{
	const struct group_config *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The group each program belongs to, after checking every [group:x] list. */
static const char *group_of(struct loader *ld, const char *program)
{
	for (size_t i = 0; i < ld->cfg->ngroups; i++) {
		const struct group_config *g = &ld->cfg->groups[i];
		for (size_t j = 0; j < g->nprograms; j++) {
			if (strcmp(g->programs[j], program) == 0)
				return g->name;
		}
	}
	return program;
}

static void check_groups(struct loader *ld)
{
	struct config *cfg = ld->cfg;

	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct group_config *g = &cfg->groups[i];
		for (size_t j = 0; j < g->nprograms; j++) {
			const char *name = g->programs[j];
			bool found = false;
			for (size_t s = 0; s < ld->nsecs && !found; s++) {
				const char *pn = section_suffix(ld->secs[s].name, "program:");
				found = pn != NULL && strcmp(pn, name) == 0;
			}
			const char *owner = group_of(ld, name);
			int line = g->loc_programs.line;
			if (!found)
				conf_msgs_add(
				    &ld->errors,
				    "%s:%d: [group:%s] programs: no [program:%s] to put in "
				    "this group",
				    g->section.file, line, g->name, name);
			else if (strcmp(owner, g->name) != 0)
				conf_msgs_add(&ld->errors,
				              "%s:%d: [group:%s] programs: %s is already in "
				              "[group:%s]",
				              g->section.file, line, g->name, name, owner);
		}
		/* A group named like a program it does not hold would give two
		 * groups one name. */
		for (size_t p = 0; p < cfg->nprograms; p++) {
			const struct program_config *prog = &cfg->programs[p];
			if (strcmp(prog->name, g->name) == 0 && strcmp(prog->group, g->name) != 0)
				conf_msgs_add(&ld->errors,
				              "%s:%d: [group:%s]: the name is also [program:%s] "
				              "(%s:%d), which is not in this group",
				              g->section.file, g->section.line, g->name, prog->name,
				              prog->section.file, prog->section.line);
		}
	}
}

static const char *const ignored_sections[] = {"unix_http_server", "inet_http_server",
                                               "supervisorctl", NULL};
static const char *const ignored_prefixes[] = {"rpcinterface:", "ctlplugin:", NULL};
static const char *const unsupported_prefixes[] = {"eventlistener:", "fcgi-program:", NULL};

static bool has_prefix_in(const char *name, const char *const *prefixes)
{
	for (; *prefixes != NULL; prefixes++) {
		if (section_suffix(name, *prefixes) != NULL)
			return true;
	}
	return false;
}

static void validate_workers(struct loader *ld, const bool *bad);

/* Sections in file order; programs are loaded after all groups are known,
 * because a program's group_name may come from a later [group:x]. */
static void interpret(struct loader *ld)
{
	struct config *cfg = ld->cfg;

	for (size_t i = 0; i < ld->nsecs; i++) {
		const struct raw_section *sec = &ld->secs[i];
		const char *name = sec->name;
		const char *suffix;
		if (strcmp(name, "supervisord") == 0) {
			load_supervisord(ld, sec);
		} else if (strcmp(name, "drover") == 0) {
			load_drover(ld, sec);
		} else if (strcmp(name, "include") == 0) {
			if (sec->included) {
				conf_msgs_add(&ld->warnings,
				              "%s:%d: [include] in an included file is ignored: "
				              "includes do not nest",
				              sec->file, sec->line);
				continue;
			}
			for (size_t k = 0; k < sec->nkvs; k++) {
				if (strcmp(sec->kvs[k].key, "files") != 0)
					warn_key(ld, sec, &sec->kvs[k], false);
			}
		} else if ((suffix = section_suffix(name, "group:")) != NULL) {
			if (!valid_name(suffix))
				conf_msgs_add(&ld->errors,
				              "%s:%d: [%s]: expected a group name without spaces, "
				              "':' or '/'",
				              sec->file, sec->line, name);
			else
				load_group(ld, sec, suffix);
		} else if ((suffix = section_suffix(name, "program:")) != NULL) {
			if (!valid_name(suffix))
				conf_msgs_add(
				    &ld->errors,
				    "%s:%d: [%s]: expected a program name without spaces, "
				    "':' or '/'",
				    sec->file, sec->line, name);
		} else if (in_list(ignored_sections, name) ||
		           has_prefix_in(name, ignored_prefixes)) {
			conf_msgs_add(&ld->warnings, "%s:%d: [%s] is not used by drover; ignored",
			              sec->file, sec->line, name);
		} else if (has_prefix_in(name, unsupported_prefixes)) {
			conf_msgs_add(&ld->warnings,
			              "%s:%d: [%s] is not supported by drover; ignored, its "
			              "processes will not run",
			              sec->file, sec->line, name);
		} else {
			conf_msgs_add(&ld->warnings, "%s:%d: unknown section [%s]; ignored",
			              sec->file, sec->line, name);
		}
	}

	if (cfg->state_dir == NULL)
		cfg->state_dir = cfg_path_abs(cfg->here, ".drover");

	bool *bad = cfg_xmalloc(ld->nsecs * sizeof(*bad));
	for (size_t i = 0; i < ld->nsecs; i++) {
		const struct raw_section *sec = &ld->secs[i];
		const char *pname = section_suffix(sec->name, "program:");
		if (pname == NULL || !valid_name(pname))
			continue;
		size_t nerr = ld->errors.count;
		cfg->programs =
		    cfg_xrealloc(cfg->programs, (cfg->nprograms + 1) * sizeof(*cfg->programs));
		load_program(ld, sec, pname, group_of(ld, pname), &cfg->programs[cfg->nprograms]);
		bad[cfg->nprograms++] = ld->errors.count > nerr;
	}
	check_groups(ld);
	validate_workers(ld, bad);
	free(bad);
	if (cfg->nprograms > 0)
		qsort(cfg->programs, cfg->nprograms, sizeof(*cfg->programs), cmp_programs);
	if (cfg->ngroups > 0)
		qsort(cfg->groups, cfg->ngroups, sizeof(*cfg->groups), cmp_groups);
}

struct worker_ref {
	char *key; /* worker name or log path */
	const struct program_config *prog;
	const char *worker; /* the worker's name (for paths) */
	int pk;             /* the key that produced it */
};

static int cmp_refs(const void *a, const void *b)
{
	const struct worker_ref *x = a, *y = b;

	return strcmp(x->key, y->key);
}

static void ref_add(struct worker_ref **refs, size_t *n, size_t *cap, char *key,
                    const struct program_config *prog, const char *worker, int pk)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*refs = cfg_xrealloc(*refs, *cap * sizeof(**refs));
	}
	(*refs)[(*n)++] = (struct worker_ref){key, prog, worker, pk};
}

static struct conf_loc key_loc(const struct program_config *p, int pk)
{
	return p->loc[pk].line > 0 ? p->loc[pk] : p->section;
}

/* Expand every worker once: bad templates, unterminated quotes and names that
 * two workers would share are load errors, not surprises at spawn time. Two
 * workers writing one log file is legal (supervisord allows it) but rotation
 * would fight over it, so that is a warning. */
static void validate_workers(struct loader *ld, const bool *bad)
{
	const struct config *cfg = ld->cfg;
	struct worker_ref *names = NULL, *paths = NULL;
	size_t nnames = 0, capnames = 0, npaths = 0, cappaths = 0;
	char err[1024];

	for (size_t i = 0; i < cfg->nprograms; i++) {
		const struct program_config *p = &cfg->programs[i];
		if (bad[i]) /* already reported; expanding would only repeat it */
			continue;
		/* With numprocs = 0 the templates are still checked once. */
		int count = p->numprocs > 0 ? p->numprocs : 1;
		for (int k = 0; k < count; k++) {
			struct worker_spec w;
			if (program_expand(cfg, p, p->numprocs_start + k, &w, err, sizeof(err)) <
			    0) {
				conf_msgs_add(&ld->errors, "%s", err);
				break;
			}
			if (p->numprocs > 0) {
				char *name = w.name;
				ref_add(&names, &nnames, &capnames, name, p, name, PK_PROCESS_NAME);
				w.name = NULL;
				if (w.stdout_path != NULL &&
				    strncmp(w.stdout_path, "/dev/", 5) != 0) {
					ref_add(&paths, &npaths, &cappaths, w.stdout_path, p, name,
					        PK_STDOUT_LOGFILE);
					w.stdout_path = NULL;
				}
				if (w.stderr_path != NULL &&
				    strncmp(w.stderr_path, "/dev/", 5) != 0) {
					ref_add(&paths, &npaths, &cappaths, w.stderr_path, p, name,
					        PK_STDERR_LOGFILE);
					w.stderr_path = NULL;
				}
			}
			worker_spec_free(&w);
		}
	}
	if (nnames > 1)
		qsort(names, nnames, sizeof(*names), cmp_refs);
	for (size_t i = 1; i < nnames; i++) {
		if (strcmp(names[i - 1].key, names[i].key) != 0)
			continue;
		const struct worker_ref *a = &names[i - 1], *b = &names[i];
		/* report at the later definition in the file */
		if (b->prog->section.line < a->prog->section.line && a->prog != b->prog) {
			const struct worker_ref *t = a;
			a = b;
			b = t;
		}
		struct conf_loc loc = key_loc(b->prog, PK_PROCESS_NAME);
		if (a->prog == b->prog)
			conf_msgs_add(&ld->errors,
			              "%s:%d: [program:%s]: two workers are named %s; expected "
			              "%%(process_num) in process_name",
			              loc.file, loc.line, b->prog->name, b->key);
		else
			conf_msgs_add(&ld->errors,
			              "%s:%d: [program:%s]: worker name %s is also a worker of "
			              "[program:%s] (%s:%d)",
			              loc.file, loc.line, b->prog->name, b->key, a->prog->name,
			              a->prog->section.file, a->prog->section.line);
	}
	if (npaths > 1)
		qsort(paths, npaths, sizeof(*paths), cmp_refs);
	for (size_t i = 1; i < npaths; i++) {
		if (strcmp(paths[i - 1].key, paths[i].key) != 0 ||
		    (i > 1 && strcmp(paths[i - 2].key, paths[i].key) == 0))
			continue;
		struct conf_loc loc = key_loc(paths[i].prog, paths[i].pk);
		conf_msgs_add(&ld->warnings,
		              "%s:%d: [program:%s] workers %s and %s both log to %s; rotation "
		              "will conflict",
		              loc.file, loc.line, paths[i].prog->name, paths[i - 1].worker,
		              paths[i].worker, paths[i].key);
	}
	for (size_t i = 0; i < npaths; i++)
		free(paths[i].key);
	for (size_t i = 0; i < nnames; i++)
		free(names[i].key);
	free(paths);
	free(names);
}

static void move_msgs(struct conf_msgs *to, struct conf_msgs *from)
{
	for (size_t i = 0; to != NULL && i < from->count; i++)
		conf_msgs_add(to, "%s", from->items[i]);
	conf_msgs_free(from);
}

/* Both entry points: text == NULL means read `file` from disk. */
static int load(const char *file, const char *text, struct config *out, struct conf_msgs *warnings,
                struct conf_msgs *errors)
{
	struct config cfg = {0};
	struct loader ld = {.cfg = &cfg};

	memset(out, 0, sizeof(*out));
	cfg_host_node_name(ld.host_node_name, sizeof(ld.host_node_name));
	cfg.path = cfg_xstrdup(file);
	cfg.here = cfg_path_dir_abs(file);
	cfg.umask = 022;
	cfg.identifier = cfg_xstrdup("supervisor");
	cfg.log_format = LOG_FORMAT_LOGFMT;

	if (text != NULL)
		reader_read_text(&ld, file, text, strlen(text), false);
	else
		reader_read_file(&ld, file, false);
	if (cfg.nfiles > 0) { /* the main file could be read */
		reader_includes(&ld);
		interpret(&ld);
	}
	reader_free(&ld);

	int rc = ld.errors.count > 0 ? -1 : 0;
	move_msgs(warnings, &ld.warnings);
	move_msgs(errors, &ld.errors);
	if (rc < 0)
		config_free(&cfg);
	else
		*out = cfg;
	return rc;
}

int config_load(const char *file, struct config *out, struct conf_msgs *warnings,
                struct conf_msgs *errors)
{
	return load(file, NULL, out, warnings, errors);
}

int config_load_string(const char *name, const char *text, struct config *out,
                       struct conf_msgs *warnings, struct conf_msgs *errors)
{
	return load(name, text, out, warnings, errors);
}

const struct program_config *config_find_program(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nprograms; i++) {
		if (strcmp(cfg->programs[i].name, name) == 0)
			return &cfg->programs[i];
	}
	return NULL;
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
	       a->fatal_after_window == b->fatal_after_window && a->backoff_max == b->backoff_max;
}
