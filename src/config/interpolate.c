/* %(name)s expansion with Python's %-format rules as supervisord applies them
 * to config values: named conversions with flags, width and precision
 * (%(process_num)02d, %(x)-10s), %% for a literal percent sign, and any other
 * % is an error (Python raises one, so supervisord configs never rely on it). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

/* A width or precision beyond this is a typo, not a layout. */
#define INTERP_MAX_FIELD 4096

static const char *env_lookup(const struct interp_ctx *ctx, const char *name, size_t len)
{
	if (ctx->env != NULL) {
		/* The last entry wins, like the environment it becomes. */
		const char *found = NULL;
		for (char *const *e = ctx->env; *e != NULL; e++) {
			if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
				found = *e + len + 1;
		}
		if (found != NULL)
			return found;
	}
	char *key = cfg_xstrndup(name, len);
	const char *v = getenv(key);
	free(key);
	return v;
}

static void known_names(const struct interp_ctx *ctx, struct cfg_buf *b)
{
	for (size_t i = 0; i < ctx->nvars; i++)
		cfg_buf_addf(b, "%s%s", i ? ", " : "", ctx->vars[i].name);
	cfg_buf_addf(b, "%sENV_*", ctx->nvars ? ", " : "");
}

/* Keep only the flags that C's printf accepts for the conversion, so the
 * built format is always well defined ("%05s" is padded with spaces in
 * Python, undefined in C). */
static void add_flags(struct cfg_buf *fmt, const char *flags, size_t n, const char *allowed)
{
	for (size_t i = 0; i < n; i++) {
		if (strchr(allowed, flags[i]) != NULL)
			cfg_buf_addc(fmt, flags[i]);
	}
}

static int expand_one(const struct interp_ctx *ctx, const char **pp, struct cfg_buf *out, char *err,
                      size_t errlen)
{
	const char *start = *pp; /* at '%' */
	const char *p = start + 2;
	const char *name = p;
	const char *close = strchr(p, ')');

	if (close == NULL) {
		snprintf(err, errlen, "unterminated %%( at \"%.20s\": expected %%(name)s", start);
		return -1;
	}
	size_t nlen = (size_t)(close - name);
	p = close + 1;
	const char *flags = p;
	while (*p != '\0' && strchr("-+ #0", *p) != NULL)
		p++;
	size_t nflags = (size_t)(p - flags);
	long width = -1, prec = -1;
	if (isdigit((unsigned char)*p))
		width = strtol(p, (char **)&p, 10);
	if (*p == '.') {
		p++;
		prec = isdigit((unsigned char)*p) ? strtol(p, (char **)&p, 10) : 0;
	}
	while (*p == 'h' || *p == 'l' || *p == 'L') /* Python ignores lengths */
		p++;
	char conv = *p;
	int spec_len = (int)(p - start) + (conv != '\0');
	if (conv == '\0' || strchr("sdiuxXor", conv) == NULL) {
		snprintf(err, errlen, "bad format %.*s: expected a conversion such as s or d",
		         spec_len, start);
		return -1;
	}
	if (width > INTERP_MAX_FIELD || prec > INTERP_MAX_FIELD) {
		snprintf(err, errlen, "bad format %.*s: width or precision too large", spec_len,
		         start);
		return -1;
	}

	const struct interp_var *var = NULL;
	const char *str = NULL;
	for (size_t i = 0; i < ctx->nvars; i++) {
		if (strlen(ctx->vars[i].name) == nlen &&
		    strncmp(ctx->vars[i].name, name, nlen) == 0)
			var = &ctx->vars[i];
	}
	if (var != NULL) {
		str = var->str;
	} else if (nlen > 4 && strncmp(name, "ENV_", 4) == 0) {
		str = env_lookup(ctx, name + 4, nlen - 4);
		if (str == NULL) {
			snprintf(err, errlen, "%.*s: %.*s is not set in the environment", spec_len,
			         start, (int)(nlen - 4), name + 4);
			return -1;
		}
	} else {
		struct cfg_buf k = {0};
		known_names(ctx, &k);
		snprintf(err, errlen, "unknown name %.*s: expected one of %s", spec_len, start,
		         k.s);
		free(k.s);
		return -1;
	}

	struct cfg_buf fmt = {0};
	cfg_buf_addc(&fmt, '%');
	bool is_str_conv = conv == 's' || conv == 'r';
	if (is_str_conv)
		add_flags(&fmt, flags, nflags, "-");
	else if (conv == 'x' || conv == 'X' || conv == 'o')
		add_flags(&fmt, flags, nflags, "-#0");
	else
		add_flags(&fmt, flags, nflags, "-+ 0");
	if (width >= 0)
		cfg_buf_addf(&fmt, "%ld", width);
	if (prec >= 0)
		cfg_buf_addf(&fmt, ".%ld", prec);

	char numbuf[32];
	if (is_str_conv) {
		const char *v = str;
		if (v == NULL) {
			snprintf(numbuf, sizeof(numbuf), "%lld", var->num);
			v = numbuf;
		}
		struct cfg_buf val = {0};
		if (conv == 'r' && str != NULL) {
			cfg_buf_addf(&val, "'%s'", str); /* Python's repr() of a str */
			v = val.s;
		}
		cfg_buf_addc(&fmt, 's');
		cfg_buf_addf(out, fmt.s, v);
		free(val.s);
	} else {
		if (str != NULL) {
			snprintf(err, errlen, "%.*s needs a number, but %.*s is text", spec_len,
			         start, (int)nlen, name);
			free(fmt.s);
			return -1;
		}
		if (conv == 'd' || conv == 'i' || conv == 'u') {
			cfg_buf_add(&fmt, "lld");
			cfg_buf_addf(out, fmt.s, var->num);
		} else {
			/* Our numbers (process_num, numprocs) are never negative. */
			cfg_buf_addf(&fmt, "ll%c", conv);
			cfg_buf_addf(out, fmt.s, (unsigned long long)var->num);
		}
	}
	free(fmt.s);
	*pp = p + 1;
	return 0;
}

int cfg_interp_expand(const struct interp_ctx *ctx, const char *tmpl, char **out, char *err,
                      size_t errlen)
{
	struct cfg_buf b = {0};
	const char *p = tmpl;

	while (*p != '\0') {
		const char *pct = strchr(p, '%');
		if (pct == NULL) {
			cfg_buf_add(&b, p);
			break;
		}
		cfg_buf_addn(&b, p, (size_t)(pct - p));
		if (pct[1] == '%') {
			cfg_buf_addc(&b, '%');
			p = pct + 2;
		} else if (pct[1] == '(') {
			p = pct;
			if (expand_one(ctx, &p, &b, err, errlen) < 0) {
				free(b.s);
				return -1;
			}
		} else {
			snprintf(err, errlen,
			         "lone %% before \"%.10s\": expected %%(name)s, or %%%% for a "
			         "literal %%",
			         pct + 1);
			free(b.s);
			return -1;
		}
	}
	*out = cfg_buf_take(&b);
	return 0;
}
