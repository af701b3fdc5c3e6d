/* Reading INI files into raw sections with inih, and following [include].
 *
 * inih is driven through ini_parse_stream() with our own reader callback, and
 * the callback does more than hand over lines:
 *  - it counts physical lines, so every key knows its line (Debian builds
 *    inih without line numbers in the handler);
 *  - it strips comments the way supervisord's configparser does: ';' or '#'
 *    at the start of a line or after whitespace, so "command=x ; note" works
 *    and "a=b;c" keeps its ';' (inih alone knows only ';');
 *  - it classifies each line the way inih will, so that every malformed line
 *    is reported (inih only returns the first) and section headers are seen
 *    even when the section has no keys (inih reports only key=value pairs);
 *  - it passes lines longer than inih's fixed buffer (200 bytes in Debian's
 *    build) as a short stand-in and keeps the real value aside: inih would
 *    otherwise cut the line and read the rest as a new, broken line. */
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define SEC_NONE    (-1) /* before the first header */
#define SEC_DROPPED (-2) /* a broken or duplicate header: drop its keys */

struct reader {
	struct loader *ld;
	const char *file; /* points into config.files */
	char *here;
	bool included;
	const char *text;
	size_t len;
	size_t pos;
	int line; /* physical line last handed to inih */
	long cur; /* index in ld->secs, or SEC_NONE / SEC_DROPPED */
	/* Mirrors inih's prev_name: an indented line continues a value. */
	bool have_key;
	bool cont;   /* the line handed over continues the previous value */
	char *stash; /* the real value of an over-long line, else NULL */
};

const char *cfg_raw_get(const struct raw_section *sec, const char *key, int *line)
{
	for (size_t i = sec->nkvs; i-- > 0;) {
		if (strcmp(sec->kvs[i].key, key) == 0) {
			if (line != NULL)
				*line = sec->kvs[i].line;
			return sec->kvs[i].value;
		}
	}
	return NULL;
}

static void reader_error(struct reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reader_error(struct reader *r, const char *fmt, ...)
{
	struct cfg_buf b = {0};
	va_list ap;

	cfg_buf_addf(&b, "%s:%d: ", r->file, r->line);
	cfg_buf_add(&b, fmt);
	va_start(ap, fmt);
	cfg_vmsgs_add(&r->ld->errors, b.s, ap);
	va_end(ap);
	free(b.s);
}

static void reader_begin_section(struct reader *r, const char *name, size_t n)
{
	struct loader *ld = r->ld;
	char *sname = cfg_xstrndup(name, n);

	/* An included [include] is kept only to be warned about (includes do
	 * not nest), so it is no duplicate of the main file's. */
	bool nested_include = r->included && strcmp(sname, "include") == 0;
	for (size_t i = 0; i < ld->nsecs && !nested_include; i++) {
		if (strcmp(ld->secs[i].name, sname) == 0) {
			reader_error(r, "duplicate section [%s] (first at %s:%d)", sname,
			             ld->secs[i].file, ld->secs[i].line);
			free(sname);
			r->cur = SEC_DROPPED;
			return;
		}
	}
	if (ld->nsecs == ld->capsecs) {
		ld->capsecs = ld->capsecs ? ld->capsecs * 2 : 16;
		ld->secs = cfg_xrealloc(ld->secs, ld->capsecs * sizeof(*ld->secs));
	}
	struct raw_section *sec = &ld->secs[ld->nsecs];
	*sec = (struct raw_section){
	    .name = sname,
	    .file = r->file,
	    .here = cfg_xstrdup(r->here),
	    .line = r->line,
	    .included = r->included,
	};
	r->cur = (long)ld->nsecs++;
}

/* key is already lowercased, as configparser's keys are. */
static void section_add_kv(struct raw_section *sec, const char *key, const char *value, int line)
{
	/* A repeated key replaces the earlier one, as configparser's
	 * non-strict mode (supervisord's) does. */
	for (size_t i = 0; i < sec->nkvs; i++) {
		if (strcmp(sec->kvs[i].key, key) == 0) {
			free(sec->kvs[i].key);
			free(sec->kvs[i].value);
			memmove(&sec->kvs[i], &sec->kvs[i + 1],
			        (sec->nkvs - i - 1) * sizeof(*sec->kvs));
			sec->nkvs--;
			break;
		}
	}
	if (sec->nkvs == sec->cap) {
		sec->cap = sec->cap ? sec->cap * 2 : 8;
		sec->kvs = cfg_xrealloc(sec->kvs, sec->cap * sizeof(*sec->kvs));
	}
	sec->kvs[sec->nkvs++] =
	    (struct raw_kv){.key = cfg_xstrdup(key), .value = cfg_xstrdup(value), .line = line};
}

static int reader_handler(void *user, const char *section, const char *name, const char *value)
{
	struct reader *r = user;
	const char *v = r->stash != NULL ? r->stash : value;

	(void)section; /* r->cur already knows, including broken headers */
	if (r->cur < 0)
		return 1;
	struct raw_section *sec = &r->ld->secs[r->cur];
	if (r->cont && sec->nkvs > 0) {
		/* configparser joins continuation lines with newlines */
		struct raw_kv *kv = &sec->kvs[sec->nkvs - 1];
		struct cfg_buf b = {0};
		cfg_buf_add(&b, kv->value);
		if (b.len > 0)
			cfg_buf_addc(&b, '\n');
		cfg_buf_add(&b, v);
		free(kv->value);
		kv->value = cfg_buf_take(&b);
		return 1;
	}
	char *key = cfg_xstrdup(name);
	for (char *p = key; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	int first = 0;
	if (cfg_raw_get(sec, key, &first) != NULL)
		conf_msgs_add(
		    &r->ld->warnings,
		    "%s:%d: [%s] %s is set again (first at line %d); the later value wins", r->file,
		    r->line, sec->name, key, first);
	section_add_kv(sec, key, v, r->line);
	free(key);
	return 1;
}

/* supervisord's inline comments: ';' or '#' at the start or after
 * whitespace ends the line's content. */
static void strip_comment(char *line)
{
	for (char *p = line; *p != '\0'; p++) {
		if ((*p == ';' || *p == '#') && (p == line || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			break;
		}
	}
	size_t n = strlen(line);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
}

static char *hand_over(char *buf, int num, const char *s)
{
	snprintf(buf, (size_t)num, "%s\n", s);
	return buf;
}

static char *reader_next(char *buf, int num, void *stream)
{
	struct reader *r = stream;
	size_t room = num > 2 ? (size_t)num - 2 : 0; /* '\n' and NUL */

	r->cont = false;
	free(r->stash);
	r->stash = NULL;
	if (r->pos >= r->len)
		return NULL;
	const char *s = r->text + r->pos;
	const char *nl = memchr(s, '\n', r->len - r->pos);
	size_t n = nl ? (size_t)(nl - s) : r->len - r->pos;
	r->pos += n + (nl != NULL);
	r->line++;

	char *line = cfg_xstrndup(s, n);
	if (r->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		memmove(line, line + 3, strlen(line + 3) + 1);
	strip_comment(line);
	char *t = line;
	while (isspace((unsigned char)*t))
		t++;

	char *out = buf;
	if (*t == '\0') {
		hand_over(buf, num, "");
	} else if (r->have_key && t > line) {
		r->cont = true;
		if (strlen(line) <= room) {
			hand_over(buf, num, line);
		} else {
			r->stash = cfg_xstrdup(t);
			hand_over(buf, num, " -");
		}
	} else if (*t == '[') {
		char *close = strchr(t, ']');
		if (close == NULL) {
			reader_error(r, "\"%s\": expected ']' to close the section header", t);
			r->cur = SEC_DROPPED;
		} else {
			reader_begin_section(r, t + 1, (size_t)(close - t - 1));
		}
		/* A tiny header keeps inih's idea of the section in step. */
		hand_over(buf, num, "[s]");
		r->have_key = false;
	} else {
		size_t klen = strcspn(t, "=:");
		size_t kend = klen;
		while (kend > 0 && isspace((unsigned char)t[kend - 1]))
			kend--;
		if (t[klen] == '\0') {
			reader_error(
			    r, "\"%s\": expected key = value, a [section] header or a comment", t);
			hand_over(buf, num, "");
		} else if (kend == 0) {
			reader_error(r, "\"%s\": expected a key name before '%c'", t, t[klen]);
			hand_over(buf, num, "");
		} else if (r->cur == SEC_NONE) {
			reader_error(r, "\"%s\": expected a [section] header before the first key",
			             t);
			hand_over(buf, num, "");
		} else if (strlen(line) <= room) {
			hand_over(buf, num, line);
			r->have_key = true;
		} else if (kend + 1 <= room) {
			const char *v = t + klen + 1;
			while (isspace((unsigned char)*v))
				v++;
			r->stash = cfg_xstrdup(v);
			t[kend] = '\0';
			struct cfg_buf b = {0};
			cfg_buf_addf(&b, "%s=", t);
			hand_over(buf, num, b.s);
			free(b.s);
			r->have_key = true;
		} else {
			reader_error(r, "key too long (more than %zu bytes)", room);
			hand_over(buf, num, "");
		}
	}
	free(line);
	return out;
}

static const char *add_file(struct loader *ld, const char *path)
{
	struct config *cfg = ld->cfg;

	cfg->files = cfg_xrealloc(cfg->files, (cfg->nfiles + 1) * sizeof(*cfg->files));
	cfg->files[cfg->nfiles] = cfg_xstrdup(path);
	return cfg->files[cfg->nfiles++];
}

void cfg_read_text(struct loader *ld, const char *name, const char *text, size_t len, bool included)
{
	struct reader r = {
	    .ld = ld,
	    .file = add_file(ld, name),
	    .here = cfg_path_dir_abs(name),
	    .included = included,
	    .text = text,
	    .len = len,
	    .cur = SEC_NONE,
	};

	/* Every line is checked by reader_next, which hands inih only lines it
	 * accepts, so inih's own error return carries nothing new. */
	(void)ini_parse_stream(reader_next, &r, reader_handler, &r);
	free(r.stash);
	free(r.here);
}

void cfg_read_file(struct loader *ld, const char *path, bool included)
{
	FILE *f = fopen(path, "r");
	struct cfg_buf b = {0};
	char chunk[8192];
	size_t n;

	if (f == NULL) {
		conf_msgs_add(&ld->errors, "%s: cannot open: %s", path, strerror(errno));
		return;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		cfg_buf_addn(&b, chunk, n);
	if (ferror(f)) {
		conf_msgs_add(&ld->errors, "%s: cannot read: %s", path, strerror(errno));
		fclose(f);
		free(b.s);
		return;
	}
	fclose(f);
	cfg_read_text(ld, path, b.s ? b.s : "", b.len, included);
	free(b.s);
}

static bool already_read(const struct loader *ld, const char *path)
{
	char *real = realpath(path, NULL);
	bool found = false;

	if (real == NULL)
		return false;
	for (size_t i = 0; i < ld->cfg->nfiles && !found; i++) {
		char *other = realpath(ld->cfg->files[i], NULL);
		found = other != NULL && strcmp(other, real) == 0;
		free(other);
	}
	free(real);
	return found;
}

/* One pattern of [include] files, relative to the including file's directory
 * as that file was named, so messages show paths the way the user wrote them. */
static void include_pattern(struct loader *ld, const struct raw_section *inc, int line,
                            const char *pattern)
{
	struct cfg_buf b = {0};
	const char *slash = strrchr(inc->file, '/');
	glob_t g;

	if (pattern[0] != '/' && slash != NULL)
		cfg_buf_addn(&b, inc->file, (size_t)(slash - inc->file + 1));
	cfg_buf_add(&b, pattern);
	int rc = glob(b.s, 0, NULL, &g);
	if (rc != 0) {
		conf_msgs_add(&ld->warnings, "%s:%d: [include] files: no file matches \"%s\"",
		              inc->file, line, b.s);
		if (rc != GLOB_NOMATCH)
			globfree(&g);
		free(b.s);
		return;
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		if (already_read(ld, g.gl_pathv[i]))
			conf_msgs_add(&ld->warnings, "%s:%d: [include] files: %s is already read",
			              inc->file, line, g.gl_pathv[i]);
		else
			cfg_read_file(ld, g.gl_pathv[i], true);
	}
	globfree(&g);
	free(b.s);
}

void cfg_read_includes(struct loader *ld)
{
	size_t inc_idx = ld->nsecs;

	for (size_t i = 0; i < ld->nsecs; i++) {
		if (!ld->secs[i].included && strcmp(ld->secs[i].name, "include") == 0)
			inc_idx = i;
	}
	if (inc_idx == ld->nsecs)
		return;
	/* Copy what we need: reading includes grows (moves) ld->secs. */
	const struct raw_section *inc = &ld->secs[inc_idx];
	int line = 0;
	const char *files = cfg_raw_get(inc, "files", &line);
	if (files == NULL) {
		conf_msgs_add(&ld->errors, "%s:%d: [include]: files is required", inc->file,
		              inc->line);
		return;
	}
	struct raw_section copy = {.file = inc->file, .line = inc->line};
	struct interp_var vars[] = {
	    {.name = "here", .str = inc->here},
	    {.name = "host_node_name", .str = ld->host_node_name},
	};
	struct interp_ctx ctx = {.vars = vars, .nvars = 2};
	char *expanded;
	char err[512];
	if (cfg_interp_expand(&ctx, files, &expanded, err, sizeof(err)) < 0) {
		struct cfg_buf b = {0};
		cfg_buf_add_quoted(&b, files);
		conf_msgs_add(&ld->errors, "%s:%d: files = %s: %s", inc->file, line, b.s, err);
		free(b.s);
		return;
	}
	char *save = NULL;
	for (char *pat = strtok_r(expanded, " \t\n", &save); pat != NULL;
	     pat = strtok_r(NULL, " \t\n", &save))
		include_pattern(ld, &copy, line, pat);
	free(expanded);
}

void cfg_reader_free(struct loader *ld)
{
	for (size_t i = 0; i < ld->nsecs; i++) {
		struct raw_section *sec = &ld->secs[i];
		for (size_t j = 0; j < sec->nkvs; j++) {
			free(sec->kvs[j].key);
			free(sec->kvs[j].value);
		}
		free(sec->kvs);
		free(sec->name);
		free(sec->here);
	}
	free(ld->secs);
	ld->secs = NULL;
	ld->nsecs = ld->capsecs = 0;
}
