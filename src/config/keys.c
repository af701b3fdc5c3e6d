/* Reading one key's value: %(...)s expansion for values that are not
 * per-worker templates, parsing, and errors in the one shape every message
 * has: file:line: key = "value": what was expected. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

bool cfg_in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++) {
		if (strcmp(*list, s) == 0)
			return true;
	}
	return false;
}

void cfg_kv_error(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                  const char *fmt, ...)
{
	struct cfg_buf b = {0};
	va_list ap;

	cfg_buf_addf(&b, "%s:%d: %s = ", sec->file, kv->line, kv->key);
	cfg_buf_add_quoted(&b, kv->value);
	cfg_buf_add(&b, ": ");
	va_start(ap, fmt);
	cfg_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	conf_msgs_add(&ld->errors, "%s", b.s);
	free(b.s);
}

void cfg_kv_warn(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
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
char *cfg_kv_expand(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                    const struct interp_ctx *ctx)
{
	char err[512];
	char *out;

	if (cfg_interp_expand(ctx, kv->value, &out, err, sizeof(err)) < 0) {
		cfg_kv_error(ld, sec, kv, "%s", err);
		return NULL;
	}
	return out;
}

/* Expand, then make absolute against the section's directory. */
char *cfg_kv_path(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                  const struct interp_ctx *ctx, const char *what)
{
	char *v = cfg_kv_expand(ld, sec, kv, ctx);

	if (v == NULL)
		return NULL;
	if (v[0] == '\0') {
		cfg_kv_error(ld, sec, kv, "expected %s", what);
		free(v);
		return NULL;
	}
	char *abs = cfg_path_abs(sec->here, v);
	free(v);
	return abs;
}

int cfg_kv_int(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
               const struct interp_ctx *ctx, long long min, long long max, const char *expected,
               int *out)
{
	char *v = cfg_kv_expand(ld, sec, kv, ctx);
	long long n;

	if (v == NULL)
		return -1;
	int rc = cfg_parse_int(v, min, max, &n);
	if (rc < 0 && cfg_parse_int(v, min, LLONG_MAX, &n) == 0)
		cfg_kv_error(ld, sec, kv, "expected %s up to %lld", expected, max);
	else if (rc < 0)
		cfg_kv_error(ld, sec, kv, "expected %s", expected);
	else
		*out = (int)n;
	free(v);
	return rc;
}

int cfg_kv_bool(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                const struct interp_ctx *ctx, bool *out)
{
	char *v = cfg_kv_expand(ld, sec, kv, ctx);
	int rc = v ? conf_parse_bool(v, out) : -1;

	if (v != NULL && rc < 0)
		cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_BOOL);
	free(v);
	return rc;
}

int cfg_kv_seconds(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                   const struct interp_ctx *ctx, double *out)
{
	char *v = cfg_kv_expand(ld, sec, kv, ctx);
	int rc = v ? cfg_parse_seconds(v, out) : -1;

	if (v != NULL && rc < 0)
		cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_SECONDS);
	free(v);
	return rc;
}

void cfg_kv_umask(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                  const struct interp_ctx *ctx, mode_t *out, bool *has)
{
	char *v = cfg_kv_expand(ld, sec, kv, ctx);
	long m;

	if (v != NULL && cfg_parse_octal(v, 0777, &m) == 0) {
		*out = (mode_t)m;
		if (has != NULL)
			*has = true;
	} else if (v != NULL) {
		cfg_kv_error(ld, sec, kv, "expected %s", EXPECT_UMASK);
	}
	free(v);
}

/* An environment list is checked here once its names are expanded; the
 * worker gets it parsed again by program_expand. */
char *cfg_kv_env(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                 const struct interp_ctx *ctx)
{
	char *v = cfg_kv_expand(ld, sec, kv, ctx);
	char **env;
	char err[256];

	if (v == NULL)
		return NULL;
	if (cfg_parse_env(v, &env, err, sizeof(err)) < 0) {
		cfg_kv_error(ld, sec, kv, "%s; expected %s", err, EXPECT_ENV);
		free(v);
		return NULL;
	}
	cfg_strv_free(env);
	return v;
}

bool cfg_valid_name(const char *name)
{
	return name[0] != '\0' && strpbrk(name, " \t:/") == NULL;
}

const struct raw_kv *cfg_find_kv(const struct raw_section *sec, const char *key)
{
	for (size_t i = sec->nkvs; i-- > 0;) {
		if (strcmp(sec->kvs[i].key, key) == 0)
			return &sec->kvs[i];
	}
	return NULL;
}
