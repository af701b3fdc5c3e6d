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
struct cfg_buf {
	char *s;
	size_t len;
	size_t cap;
};

void cfg_buf_addn(struct cfg_buf *b, const char *s, size_t n);
void cfg_buf_add(struct cfg_buf *b, const char *s);
void cfg_buf_addc(struct cfg_buf *b, char c);
void cfg_buf_addf(struct cfg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cfg_buf_vaddf(struct cfg_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Append s in double quotes, escaping ", \ and control characters. */
void cfg_buf_add_quoted(struct cfg_buf *b, const char *s);
/* Hand over the string (never NULL) and reset the buffer. */
char *cfg_buf_take(struct cfg_buf *b);

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
void cfg_read_file(struct loader *ld, const char *path, bool included);
void cfg_read_text(struct loader *ld, const char *name, const char *text, size_t len,
                   bool included);
/* Process the [include] section of the main file, if any. */
void cfg_read_includes(struct loader *ld);
void cfg_reader_free(struct loader *ld);

const char *cfg_raw_get(const struct raw_section *sec, const char *key, int *line);

/* --- one key of a raw section (keys.c) ----------------------------------- */

struct interp_ctx;

bool cfg_in_list(const char *const *list, const char *s);
/* supervisord's process_or_group_name(): names end up in "group:name"
 * addresses and in log file names, so no spaces, ':' or '/'. */
bool cfg_valid_name(const char *name);
const struct raw_kv *cfg_find_kv(const struct raw_section *sec, const char *key);
/* An error "file:line: key = "value": " followed by the formatted message. */
void cfg_kv_error(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A warning for a key drover ignores: known to supervisord, or unknown. */
void cfg_kv_warn(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                 bool known);
/* Each of these expands the value with ctx, parses it and reports a bad
 * value through cfg_kv_error. The char * ones return NULL after reporting;
 * cfg_kv_path makes the result absolute against the section's directory. */
char *cfg_kv_expand(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                    const struct interp_ctx *ctx);
char *cfg_kv_path(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                  const struct interp_ctx *ctx, const char *what);
int cfg_kv_int(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
               const struct interp_ctx *ctx, long long min, long long max, const char *expected,
               int *out);
int cfg_kv_bool(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                const struct interp_ctx *ctx, bool *out);
int cfg_kv_seconds(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                   const struct interp_ctx *ctx, double *out);
void cfg_kv_umask(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                  const struct interp_ctx *ctx, mode_t *out, bool *has);
char *cfg_kv_env(struct loader *ld, const struct raw_section *sec, const struct raw_kv *kv,
                 const struct interp_ctx *ctx);

/* --- programs (program.c) and cross-worker checks (validate.c) ------------ */

/* Fill *p from a [program:NAME] section whose group is `group`. */
void cfg_program_load(struct loader *ld, const struct raw_section *sec, const char *name,
                      const char *group, struct program_config *p);
void cfg_program_free(struct program_config *p);
/* Expand every worker of every program once; bad[i] marks programs whose
 * errors were already reported. */
void cfg_validate_workers(struct loader *ld, const bool *bad);

/* --- value parsers: 0 on success, -1 when not valid ------------------------ */

int cfg_parse_percent(const char *s, double *out); /* "90%", "90", "150%" */

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
#define EXPECT_PERCENT     "a percentage of one core such as 90% (more than 100% for several cores)"
#define EXPECT_TASKS       "none, lines or json"
#define EXPECT_PREFETCH    "an integer from 1 to 100000"
#define EXPECT_REFRESH     "a number of seconds from 0.1 to 60"
#define EXPECT_STORE       "sqlite or memory"
#define EXPECT_STORE_SYNC  "full or normal"
#define EXPECT_ENV         "KEY=value pairs separated by commas (quote values that contain commas)"

int cfg_parse_int(const char *s, long long min, long long max, long long *out);
/* Seconds: "1", "0.5", "30s", "2m". */
int cfg_parse_seconds(const char *s, double *out);
int cfg_parse_octal(const char *s, long max, long *out);
int cfg_parse_autorestart(const char *s, enum autorestart *out);
int cfg_parse_exitcodes(const char *s, unsigned char set[256 / 8]);
int cfg_parse_fatal_after(const char *s, int *count, double *window);
/* supervisord's K="v",K2=v2. On success *out is a NULL-terminated array of
 * "K=V" strings in the order written (a repeated key: the later one wins and
 * takes the later place). */
int cfg_parse_env(const char *s, char ***out, char *err, size_t errlen);
/* Set or replace K in a NULL-terminated "K=V" array (reallocates *env). */
void cfg_env_set(char ***env, size_t *n, const char *kv);

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
int cfg_interp_expand(const struct interp_ctx *ctx, const char *tmpl, char **out, char *err,
                      size_t errlen);

#endif
