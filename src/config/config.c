/* Loading a config: read the files (reader.c), interpret each section
 * ([supervisord], [drover], [group:x] here; [program:x] in program.c), check
 * group membership, then expand every worker once (validate.c) so that a
 * config that loads is a config that can run. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

static const char *const supervisord_unused_keys[] = {
    "logfile_maxbytes", "logfile_backups", "loglevel",    "minfds",
    "minprocs",         "nocleanup",       "childlogdir", "user",
    "strip_ansi",       "silent",          NULL,
};

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
			*dst = cfg_kv_path(ld, sec, kv, &ctx, "a path");
		} else if (strcmp(kv->key, "nodaemon") == 0) {
			cfg_kv_bool(ld, sec, kv, &ctx, &cfg->nodaemon);
		} else if (strcmp(kv->key, "umask") == 0) {
			cfg_kv_umask(ld, sec, kv, &ctx, &cfg->umask, NULL);
		} else if (strcmp(kv->key, "environment") == 0) {
			free(cfg->environment);
			cfg->environment = cfg_kv_env(ld, sec, kv, &ctx);
		} else if (strcmp(kv->key, "identifier") == 0) {
			char *v = cfg_kv_expand(ld, sec, kv, &ctx);
			if (v != NULL) {
				free(cfg->identifier);
				cfg->identifier = v;
			}
		} else {
			cfg_kv_warn(ld, sec, kv, cfg_in_list(supervisord_unused_keys, kv->key));
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
			cfg->state_dir = cfg_kv_path(ld, sec, kv, &ctx, "a directory");
		} else if (strcmp(kv->key, "log_format") == 0) {
			char *v = cfg_kv_expand(ld, sec, kv, &ctx);
			if (v != NULL && strcasecmp(v, "logfmt") == 0)
				cfg->log_format = LOG_FORMAT_LOGFMT;
			else if (v != NULL && strcasecmp(v, "json") == 0)
				cfg->log_format = LOG_FORMAT_JSON;
			else if (v != NULL)
				cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_LOG_FORMAT);
			free(v);
		} else if (strcmp(kv->key, "tail") == 0) {
			cfg_kv_bool(ld, sec, kv, &ctx, &cfg->tail);
		} else if (strcmp(kv->key, "socket") == 0) {
			free(cfg->socket);
			cfg->socket = cfg_kv_path(ld, sec, kv, &ctx, "a socket path");
		} else if (strcmp(kv->key, "theme") == 0) {
			free(cfg->theme);
			cfg->theme = cfg_kv_expand(ld, sec, kv, &ctx);
		} else if (strcmp(kv->key, "refresh") == 0) {
			double r = cfg->refresh;
			if (cfg_kv_seconds(ld, sec, kv, &ctx, &r) == 0) {
				if (r < 0.1 || r > 60)
					cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_REFRESH);
				else
					cfg->refresh = r;
			}
		} else if (strcmp(kv->key, "metrics_interval") == 0) {
			cfg_kv_seconds(ld, sec, kv, &ctx, &cfg->metrics_interval);
		} else if (strcmp(kv->key, "store") == 0) {
			char *v = cfg_kv_expand(ld, sec, kv, &ctx);
			if (v != NULL && strcasecmp(v, "sqlite") == 0)
				cfg->store = STORE_SQLITE;
			else if (v != NULL && strcasecmp(v, "memory") == 0)
				cfg->store = STORE_MEMORY;
			else if (v != NULL)
				cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_STORE);
			free(v);
		} else if (strcmp(kv->key, "store_sync") == 0) {
			char *v = cfg_kv_expand(ld, sec, kv, &ctx);
			if (v != NULL && strcasecmp(v, "full") == 0)
				cfg->store_sync_full = true;
			else if (v != NULL && strcasecmp(v, "normal") == 0)
				cfg->store_sync_full = false;
			else if (v != NULL)
				cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_STORE_SYNC);
			free(v);
		} else {
			cfg_kv_warn(ld, sec, kv, false);
		}
	}
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
			cfg_kv_int(ld, sec, kv, &ctx, INT_MIN, INT_MAX, EXPECT_INT, &g.priority);
		} else if (strcmp(kv->key, "programs") == 0) {
			g.loc_programs = (struct conf_loc){sec->file, kv->line};
			char *v = cfg_kv_expand(ld, sec, kv, &ctx);
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
			cfg_kv_warn(ld, sec, kv, false);
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

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nprograms; i++)
		cfg_program_free(&cfg->programs[i]);
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
	free(cfg->theme);
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
		bool holds_namesake = false;
		for (size_t j = 0; j < g->nprograms; j++)
			holds_namesake |= strcmp(g->programs[j], g->name) == 0;
		for (size_t p = 0; p < cfg->nprograms && !holds_namesake; p++) {
			const struct program_config *prog = &cfg->programs[p];
			if (strcmp(prog->name, g->name) == 0)
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
					cfg_kv_warn(ld, sec, &sec->kvs[k], false);
			}
		} else if ((suffix = section_suffix(name, "group:")) != NULL) {
			if (!cfg_valid_name(suffix))
				conf_msgs_add(&ld->errors,
				              "%s:%d: [%s]: expected a group name without spaces, "
				              "':' or '/'",
				              sec->file, sec->line, name);
			else
				load_group(ld, sec, suffix);
		} else if ((suffix = section_suffix(name, "program:")) != NULL) {
			if (!cfg_valid_name(suffix))
				conf_msgs_add(
				    &ld->errors,
				    "%s:%d: [%s]: expected a program name without spaces, "
				    "':' or '/'",
				    sec->file, sec->line, name);
		} else if (cfg_in_list(ignored_sections, name) ||
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
		if (pname == NULL || !cfg_valid_name(pname))
			continue;
		size_t nerr = ld->errors.count;
		cfg->programs =
		    cfg_xrealloc(cfg->programs, (cfg->nprograms + 1) * sizeof(*cfg->programs));
		cfg_program_load(ld, sec, pname, group_of(ld, pname),
		                 &cfg->programs[cfg->nprograms]);
		bad[cfg->nprograms++] = ld->errors.count > nerr;
	}
	check_groups(ld);
	cfg_validate_workers(ld, bad);
	free(bad);
	if (cfg->nprograms > 0)
		qsort(cfg->programs, cfg->nprograms, sizeof(*cfg->programs), cmp_programs);
	if (cfg->ngroups > 0)
		qsort(cfg->groups, cfg->ngroups, sizeof(*cfg->groups), cmp_groups);
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
	cfg.refresh = 1.0;
	cfg.metrics_interval = 0; /* off: a line per worker is opt-in */
	cfg.store = STORE_SQLITE;
	cfg.store_sync_full = true;

	if (text != NULL)
		cfg_read_text(&ld, file, text, strlen(text), false);
	else
		cfg_read_file(&ld, file, false);
	if (cfg.nfiles > 0) { /* the main file could be read */
		cfg_read_includes(&ld);
		interpret(&ld);
	}
	cfg_reader_free(&ld);

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
