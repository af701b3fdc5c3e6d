/* Shared between the files of the config module only: the raw INI model the
 * reader fills, the loader state, value parsers that report an "expected"
 * phrase, interpolation, and small string and path helpers. */
#ifndef DROVER_CONFIG_INTERNAL_H
#define DROVER_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "drover/config.h"

/* Growable string. Allocation failure aborts: config is start-up code. */
struct sbuf {
	char *s;
	size_t len;
	size_t cap;
};

void sbuf_addn(struct sbuf *b, const char *s, size_t n);
void sbuf_add(struct sbuf *b, const char *s);
void sbuf_addc(struct sbuf *b, char c);
void sbuf_addf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_vaddf(struct sbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Append s in double quotes, escaping ", \ and control characters. */
void sbuf_add_quoted(struct sbuf *b, const char *s);
/* Hand over the string (never NULL) and reset the buffer. */
char *sbuf_take(struct sbuf *b);

void *cfg_xmalloc(size_t n);
void *cfg_xrealloc(void *p, size_t n);
char *cfg_xstrdup(const char *s);
char *cfg_xstrndup(const char *s, size_t n);
void cfg_vmsgs_add(struct conf_msgs *msgs, const char *fmt, va_list ap);

/* uname's node name, as supervisord's platform.node(). */
void cfg_host_node_name(char *buf, size_t len);

/* Free a NULL-terminated array of strings. */
void cfg_strv_free(char **v);

/* Paths. Both return a lexically normalised absolute path (like Python's
 * os.path.abspath: no symlink resolution), malloc'd. */
char *cfg_path_abs(const char *base, const char *path);
char *cfg_path_dir_abs(const char *file);

/* --- the raw INI model, filled by reader.c, read by config.c ------------ */

struct raw_kv {
	char *key; /* lowercased, as configparser does */
	char *value;
	int line;
};

struct raw_section {
	char *name;
	const char *file; /* points into config.files */
	char *here;       /* absolute directory of file */
	int line;
	bool included; /* read from an [include]d file */
	bool ignored;  /* a duplicate: reported, its keys dropped */
	struct raw_kv *kvs;
	size_t nkvs;
	size_t cap;
};

struct loader {
	struct config *cfg;
	struct conf_msgs warnings;
	struct conf_msgs errors;
	struct raw_section *secs;
	size_t nsecs;
	size_t capsecs;
	char host_node_name[256];
};

/* Read one file (path as given) or text (name used in messages) into raw
 * sections. Errors go to ld->errors. */
void reader_read_file(struct loader *ld, const char *path, bool included);
void reader_read_text(struct loader *ld, const char *name, const char *text, size_t len,
                      bool included);
/* Process the [include] section of the main file, if any. */
void reader_includes(struct loader *ld);
void reader_free(struct loader *ld);

const char *raw_get(const struct raw_section *sec, const char *key, int *line);

/* --- value parsers: 0 on success, -1 when not valid ------------------------ */

#define EXPECT_BOOL        "true or false (or yes/no, on/off, 1/0)"
#define EXPECT_NUMPROCS    "a positive integer"
#define EXPECT_NONNEG_INT  "a non-negative integer"
#define EXPECT_INT         "an integer"
#define EXPECT_SECONDS     "a non-negative number of seconds"
#define EXPECT_AUTORESTART "true, false or unexpected"
#define EXPECT_EXITCODES   "a comma-separated list of exit codes from 0 to 255"
#define EXPECT_SIGNAL      "a signal name or number (TERM, HUP, INT, QUIT, KILL, USR1, USR2, ...)"
#define EXPECT_SIZE        "a size in bytes with an optional KB, MB or GB suffix"
#define EXPECT_UMASK       "an octal umask such as 022"
#define EXPECT_FATAL_AFTER "N/W: N exits within W seconds, e.g. 10/60s or 5/2m (0 disables)"
#define EXPECT_LOG_FORMAT  "logfmt or json"
#define EXPECT_LOGFILE     "a path, AUTO or NONE"
#define EXPECT_ENV         "KEY=value pairs separated by commas (quote values that contain commas)"

int val_parse_int(const char *s, long long min, long long max, long long *out);
/* Seconds: "1", "0.5", "30s", "2m". */
int val_parse_seconds(const char *s, double *out);
int val_parse_octal(const char *s, long max, long *out);
int val_parse_autorestart(const char *s, enum autorestart *out);
int val_parse_exitcodes(const char *s, unsigned char set[256 / 8]);
int val_parse_fatal_after(const char *s, int *count, double *window);
/* supervisord's K="v",K2=v2. On success *out is a NULL-terminated array of
 * "K=V" strings in the order written (a repeated key: the later one wins and
 * takes the later place). */
int val_parse_env(const char *s, char ***out, char *err, size_t errlen);
/* Set or replace K in a NULL-terminated "K=V" array (reallocates *env). */
void val_env_set(char ***env, size_t *n, const char *kv);

/* --- interpolation: %(name)s ---------------------------------------------- */

struct interp_var {
	const char *name;
	const char *str; /* NULL: the variable is the number num */
	long long num;
};

struct interp_ctx {
	const struct interp_var *vars;
	size_t nvars;
	/* "K=V" entries consulted for %(ENV_K)s before the process
	 * environment (supervisord lets a program's environment feed its own
	 * later keys); may be NULL. */
	char *const *env;
};

/* Expand tmpl into *out (malloc'd). On failure returns -1 and writes what is
 * wrong (no file:line prefix) to err. */
int interp_expand(const struct interp_ctx *ctx, const char *tmpl, char **out, char *err,
                  size_t errlen);

#endif
