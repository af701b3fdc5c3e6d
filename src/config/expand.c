/* One worker of a program: every template expanded for its process_num, the
 * command split into argv, the environment assembled in supervisord's order,
 * AUTO log paths placed under the state directory. Pure apart from reading
 * the process environment (%(ENV_X)s) and the node name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "drover/words.h"

struct expander {
	const struct program_config *prog;
	struct interp_ctx ctx;
	char *err;
	size_t errlen;
};

/* "file:line: key = "template": what went wrong", at the key's line, or at
 * the section header when the key was not written (a default template). */
static int expand_fail(struct expander *x, enum program_key pk, const char *key, const char *value,
                       const char *msg)
{
	const struct program_config *p = x->prog;
	struct conf_loc loc = p->loc[pk].line > 0 ? p->loc[pk] : p->section;
	struct cfg_buf b = {0};

	cfg_buf_addf(&b, "%s:%d: ", loc.file, loc.line);
	if (p->loc[pk].line > 0) {
		cfg_buf_addf(&b, "%s = ", key);
		cfg_buf_add_quoted(&b, value);
	} else {
		cfg_buf_addf(&b, "[program:%s] %s", p->name, key);
	}
	cfg_buf_addf(&b, ": %s", msg);
	snprintf(x->err, x->errlen, "%s", b.s);
	free(b.s);
	return -1;
}

static int expand_key(struct expander *x, enum program_key pk, const char *key, const char *tmpl,
                      char **out)
{
	char msg[512];

	if (cfg_interp_expand(&x->ctx, tmpl, out, msg, sizeof(msg)) < 0)
		return expand_fail(x, pk, key, tmpl, msg);
	return 0;
}

/* Relative paths are relative to the directory of the file that holds the
 * program, the same base %(here)s names. */
static int expand_path(struct expander *x, enum program_key pk, const char *key, const char *tmpl,
                       char **out)
{
	char *v;

	if (expand_key(x, pk, key, tmpl, &v) < 0)
		return -1;
	if (v[0] == '\0') {
		free(v);
		return expand_fail(x, pk, key, tmpl, "expands to an empty path");
	}
	*out = cfg_path_abs(x->prog->here, v);
	free(v);
	return 0;
}

static int expand_log(struct expander *x, const struct config *cfg, enum program_key pk,
                      const struct logfile_config *log, const char *worker, const char *stream,
                      char **out)
{
	*out = NULL;
	if (strcmp(log->path, "NONE") == 0)
		return 0;
	if (strcmp(log->path, "AUTO") == 0) {
		struct cfg_buf b = {0};
		cfg_buf_addf(&b, "%s/logs/%s-%s.log", cfg->state_dir, worker, stream);
		*out = cfg_buf_take(&b);
		return 0;
	}
	return expand_path(x, pk, pk == PK_STDOUT_LOGFILE ? "stdout_logfile" : "stderr_logfile",
	                   log->path, out);
}

void worker_spec_free(struct worker_spec *spec)
{
	if (spec == NULL)
		return;
	free(spec->name);
	cfg_strv_free(spec->argv);
	cfg_strv_free(spec->env_add);
	free(spec->directory);
	free(spec->user);
	free(spec->stdout_path);
	free(spec->stderr_path);
	memset(spec, 0, sizeof(*spec));
}

static void env_add(char ***env, size_t *n, const char *key, const char *value)
{
	struct cfg_buf b = {0};

	cfg_buf_addf(&b, "%s=%s", key, value);
	cfg_env_set(env, n, b.s);
	free(b.s);
}

int program_expand(const struct config *cfg, const struct program_config *prog, int process_num,
                   struct worker_spec *out, char *err, size_t errlen)
{
	char host[256];
	char msg[512];
	char **prog_env = NULL;
	char *tmp = NULL;
	size_t nenv = 0;

	memset(out, 0, sizeof(*out));
	cfg_host_node_name(host, sizeof(host));
	struct interp_var vars[] = {
	    {.name = "program_name", .str = prog->name},
	    {.name = "process_num", .num = process_num},
	    {.name = "group_name", .str = prog->group},
	    {.name = "host_node_name", .str = host},
	    {.name = "here", .str = prog->here},
	    {.name = "numprocs", .num = prog->numprocs},
	};
	struct expander x = {
	    .prog = prog,
	    .ctx = {.vars = vars, .nvars = sizeof(vars) / sizeof(vars[0])},
	    .err = err,
	    .errlen = errlen,
	};
	out->process_num = process_num;

	/* The program's environment first: supervisord lets its entries feed
	 * %(ENV_X)s in the keys that follow. */
	if (prog->environment != NULL) {
		if (expand_key(&x, PK_ENVIRONMENT, "environment", prog->environment, &tmp) < 0)
			goto fail;
		if (cfg_parse_env(tmp, &prog_env, msg, sizeof(msg)) < 0) {
			expand_fail(&x, PK_ENVIRONMENT, "environment", prog->environment, msg);
			goto fail;
		}
		free(tmp);
		tmp = NULL;
		x.ctx.env = prog_env;
	}

	/* Only a single worker goes by the bare program name; a pool scaled to
	 * zero is still a pool, named NAME_NN when it grows. */
	const char *name_tmpl = prog->process_name;
	if (name_tmpl == NULL)
		name_tmpl =
		    prog->numprocs != 1 ? "%(program_name)s_%(process_num)02d" : "%(program_name)s";
	if (expand_key(&x, PK_PROCESS_NAME, "process_name", name_tmpl, &out->name) < 0)
		goto fail;
	if (out->name[0] == '\0' || strpbrk(out->name, " \t\n:/") != NULL) {
		snprintf(msg, sizeof(msg),
		         "worker name \"%s\": expected a name without spaces, ':' or '/'",
		         out->name);
		expand_fail(&x, PK_PROCESS_NAME, "process_name", name_tmpl, msg);
		goto fail;
	}

	if (prog->command == NULL) {
		snprintf(err, errlen, "%s:%d: [program:%s]: command is required",
		         prog->section.file, prog->section.line, prog->name);
		goto fail;
	}
	if (expand_key(&x, PK_COMMAND, "command", prog->command, &tmp) < 0)
		goto fail;
	if (words_split(tmp, &out->argv, msg, sizeof(msg)) < 0) {
		expand_fail(&x, PK_COMMAND, "command", prog->command, msg);
		goto fail;
	}
	if (out->argv[0] == NULL) {
		expand_fail(&x, PK_COMMAND, "command", prog->command,
		            "expected a program to run, and its arguments");
		goto fail;
	}
	free(tmp);
	tmp = NULL;

	/* Later entries win: [supervisord] environment, then supervisord's
	 * SUPERVISOR_* variables, then the program's own environment. */
	out->env_add = cfg_xmalloc(sizeof(*out->env_add));
	out->env_add[0] = NULL;
	if (cfg->environment != NULL) {
		char **global;
		if (cfg_parse_env(cfg->environment, &global, msg, sizeof(msg)) == 0) {
			for (char **e = global; *e != NULL; e++)
				cfg_env_set(&out->env_add, &nenv, *e);
			cfg_strv_free(global);
		}
	}
	env_add(&out->env_add, &nenv, "SUPERVISOR_ENABLED", "1");
	env_add(&out->env_add, &nenv, "SUPERVISOR_PROCESS_NAME", out->name);
	env_add(&out->env_add, &nenv, "SUPERVISOR_GROUP_NAME", prog->group);
	for (char **e = prog_env; e != NULL && *e != NULL; e++)
		cfg_env_set(&out->env_add, &nenv, *e);

	if (prog->directory != NULL &&
	    expand_path(&x, PK_DIRECTORY, "directory", prog->directory, &out->directory) < 0)
		goto fail;
	if (prog->user != NULL) {
		if (expand_key(&x, PK_USER, "user", prog->user, &out->user) < 0)
			goto fail;
		if (out->user[0] == '\0') {
			expand_fail(&x, PK_USER, "user", prog->user,
			            "expands to an empty user name");
			goto fail;
		}
	}
	if (expand_log(&x, cfg, PK_STDOUT_LOGFILE, &prog->stdout_log, out->name, "stdout",
	               &out->stdout_path) < 0)
		goto fail;
	if (!prog->redirect_stderr && expand_log(&x, cfg, PK_STDERR_LOGFILE, &prog->stderr_log,
	                                         out->name, "stderr", &out->stderr_path) < 0)
		goto fail;
	cfg_strv_free(prog_env);
	return 0;
fail:
	free(tmp);
	cfg_strv_free(prog_env);
	worker_spec_free(out);
	return -1;
}
