/* The console's table: the `status` reply read into rows, the columns and
 * how wide each may be, and the text of every cell. Pure: JSON in, strings
 * out, so that both console modes draw the same thing and tests can check
 * it without a terminal. */
#ifndef DROVER_UI_TABLE_H
#define DROVER_UI_TABLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "drover/fsm.h"

/* One worker of the snapshot. Strings point into the JSON reply, which the
 * snapshot keeps. Missing figures: NAN for doubles, -1 for counts. */
struct ui_worker {
	const char *name, *group, *state;
	const char *last_exit, *reason; /* NULL when none */
	int state_id;                   /* enum worker_state, -1 if unknown */
	long pid;                       /* 0 = no process */
	double since, uptime;
	long restarts;
	double cpu, mem_pct;
	long long rss;
	int threads, procs;
	long long tasks_done;
	int tasks_inflight;
	int group_index;
	int order; /* position in the reply: group order, then index */
};

struct ui_group {
	const char *name;
	int wanted, actual;
	int counts[WORKER__COUNT];
	double cpu;
	long long rss; /* -1 = no figure */
	bool has_queue;
	long long pending, running, done, failed, dead;
	double rate, latency;
	int first, nworkers; /* its workers: snapshot.workers[first .. first+n) */
};

struct ui_snapshot {
	json_t *root;
	const char *version, *config;
	long pid;
	double uptime;
	bool shutting_down;
	bool has_system;
	double sys_cpu, load[3];
	long long mem_used, mem_total;
	int ncpu;
	struct ui_group *groups;
	int ngroups;
	struct ui_worker *workers;
	int nworkers;
};

/* Read a status reply. Takes its own reference to root. 0, or -1 with a
 * sentence in err (the reply was an error, or not a snapshot). */
int ui_snapshot_parse(json_t *root, struct ui_snapshot *out, char *err, size_t errlen);
void ui_snapshot_free(struct ui_snapshot *s);
/* The group or worker named, or -1. */
int ui_snapshot_group(const struct ui_snapshot *s, const char *name);
int ui_snapshot_worker(const struct ui_snapshot *s, const char *name);

/* ---- formatting ---- */

/* "512B" "12K" "340M" "1.2G"; "-" when bytes < 0. */
void ui_fmt_bytes(long long bytes, char *buf, size_t len);
/* "0:07" "12:34" "1:02:03" "3d04h" "812d"; "-" when negative or NAN. */
void ui_fmt_duration(double secs, char *buf, size_t len);
/* "0.0" "12.3" "100" "250"; "-" for NAN. */
void ui_fmt_pct(double pct, char *buf, size_t len);
/* "999" "12345" "123K" "12.3M"; "-" when negative. Fits 5 columns. */
void ui_fmt_count(long long n, char *buf, size_t len);

/* Copy at most `cols` display columns of src into dst (NUL-terminated,
 * dstlen bytes): control characters become '?', and text that does not
 * fit ends in an ellipsis ("…" in UTF-8, '~' otherwise). Without utf8,
 * bytes above 0x7f become '?'. Returns the columns used. */
int ui_fit(const char *src, int cols, bool utf8, char *dst, size_t dstlen);

/* ---- columns ---- */

enum ui_col {
	UI_COL_NAME,
	UI_COL_PID,
	UI_COL_STATE,
	UI_COL_CPU,
	UI_COL_MEM,
	UI_COL_MEMPCT,
	UI_COL_THREADS,
	UI_COL_UPTIME,
	UI_COL_RESTARTS,
	UI_COL_TASKS,
	UI_COL_LAST,
	UI_COL__COUNT
};

struct ui_column {
	const char *title;
	const char *about; /* for the help screen */
	int min;           /* narrowest it is drawn */
	bool right;        /* numbers align right */
	int keep;          /* when the terminal is too narrow, the lowest goes first */
	bool desc;         /* sorts descending first (biggest CPU on top) */
};

extern const struct ui_column ui_columns[UI_COL__COUNT];

#define UI_MARK_WIDTH 1 /* the tag mark before the name */

struct ui_layout {
	bool shown[UI_COL__COUNT];
	int x[UI_COL__COUNT], w[UI_COL__COUNT];
};

/* Lay the columns out in `width` columns, the name column wanting
 * name_want: every column at its minimum first, dropping the least kept
 * ones while they do not fit, then the spare room to the name (up to
 * name_want) and the last-exit column. Returns the number of columns
 * shown, or -1 when not even name, PID and state fit. */
int ui_layout_make(int width, int name_want, struct ui_layout *out);
/* The column at screen x, or -1. */
int ui_layout_column_at(const struct ui_layout *l, int x);

/* The text of one cell of a worker row, or of a group row (sums, counts). */
void ui_cell_worker(const struct ui_worker *w, enum ui_col col, char *buf, size_t len);
void ui_cell_group(const struct ui_snapshot *s, const struct ui_group *g, enum ui_col col,
                   char *buf, size_t len);

#endif
