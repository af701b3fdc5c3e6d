/* How the operator looks at the snapshot: the sort column, the filter,
 * folded groups and tagged workers, turned into the lines the table shows.
 * Pure; the view outlives snapshots, so it names groups and workers rather
 * than pointing at rows. */
#ifndef DROVER_UI_VIEW_H
#define DROVER_UI_VIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "drover/ui_table.h"

#define UI_SORT_NONE (-1) /* config order: groups by priority, workers by number */

struct ui_names {
	char **items; /* sorted */
	size_t count, cap;
};

bool ui_names_has(const struct ui_names *n, const char *name);
/* 0, or -1 when out of memory. */
int ui_names_add(struct ui_names *n, const char *name);
void ui_names_remove(struct ui_names *n, const char *name);
void ui_names_clear(struct ui_names *n);

struct ui_view {
	int sort_col; /* enum ui_col, or UI_SORT_NONE */
	bool sort_desc;
	char filter[128];
	struct ui_names folded; /* group names */
	struct ui_names tagged; /* worker names */
};

void ui_view_init(struct ui_view *v);
void ui_view_free(struct ui_view *v);

/* Choose the sort column: the same one again flips the direction, a new
 * one starts in its natural direction (biggest first for figures). */
void ui_view_sort_by(struct ui_view *v, int col);
/* The next (+1) or previous (-1) sort column, htop's < and >; "config
 * order" is one step of the cycle. */
void ui_view_sort_step(struct ui_view *v, int step, const bool *shown);

/* Does a worker pass the filter? Case-insensitive substring of its name,
 * its group or its state; an empty filter passes everything. */
bool ui_view_match(const struct ui_worker *w, const char *filter);

struct ui_line {
	bool group; /* a group row */
	int index;  /* into snapshot groups or workers */
};

/* The lines to show: each group that has matching workers (or whose name
 * matches) as one row, followed unless folded by its matching workers in
 * sort order. out must hold ngroups + nworkers lines; returns the count. */
int ui_view_lines(const struct ui_snapshot *s, const struct ui_view *v, struct ui_line *out);

/* Compare two workers on a column, in the view's direction; missing
 * figures sort last either way. For qsort-like use and tests. */
int ui_view_compare(const struct ui_worker *a, const struct ui_worker *b, int col, bool desc);

#endif
