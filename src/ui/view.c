/* Sorting, filtering and folding the snapshot into table lines. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "drover/ui_view.h"

static size_t names_pos(const struct ui_names *n, const char *name, bool *found)
{
	size_t lo = 0, hi = n->count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(n->items[mid], name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

bool ui_names_has(const struct ui_names *n, const char *name)
{
	bool found;
	names_pos(n, name, &found);
	return found;
}

int ui_names_add(struct ui_names *n, const char *name)
{
	bool found;
	size_t at = names_pos(n, name, &found);
	if (found)
		return 0;
	if (n->count == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 16;
		char **items = realloc(n->items, cap * sizeof(*items));
		if (!items)
			return -1;
		n->items = items;
		n->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return -1;
	memmove(n->items + at + 1, n->items + at, (n->count - at) * sizeof(*n->items));
	n->items[at] = copy;
	n->count++;
	return 0;
}

void ui_names_remove(struct ui_names *n, const char *name)
{
	bool found;
	size_t at = names_pos(n, name, &found);
	if (!found)
		return;
	free(n->items[at]);
	memmove(n->items + at, n->items + at + 1, (n->count - at - 1) * sizeof(*n->items));
	n->count--;
}

void ui_names_clear(struct ui_names *n)
{
	for (size_t i = 0; i < n->count; i++)
		free(n->items[i]);
	free(n->items);
	memset(n, 0, sizeof(*n));
}

void ui_view_init(struct ui_view *v)
{
	memset(v, 0, sizeof(*v));
	v->sort_col = UI_SORT_NONE;
}

void ui_view_free(struct ui_view *v)
{
	ui_names_clear(&v->folded);
	ui_names_clear(&v->tagged);
}

void ui_view_sort_by(struct ui_view *v, int col)
{
	if (col == v->sort_col && col != UI_SORT_NONE) {
		v->sort_desc = !v->sort_desc;
		return;
	}
	v->sort_col = col;
	v->sort_desc = col >= 0 && col < UI_COL__COUNT && ui_columns[col].desc;
}

void ui_view_sort_step(struct ui_view *v, int step, const bool *shown)
{
	/* the cycle: none, then each shown column */
	int col = v->sort_col;
	for (int i = 0; i <= UI_COL__COUNT; i++) {
		col += step;
		if (col < UI_SORT_NONE)
			col = UI_COL__COUNT - 1;
		if (col >= UI_COL__COUNT)
			col = UI_SORT_NONE;
		if (col == UI_SORT_NONE || !shown || shown[col])
			break;
	}
	v->sort_col = col;
	v->sort_desc = col >= 0 && ui_columns[col].desc;
}

bool ui_view_match(const struct ui_worker *w, const char *filter)
{
	if (!filter || !*filter)
		return true;
	return strcasestr(w->name, filter) || strcasestr(w->group, filter) ||
	       strcasestr(w->state, filter);
}

static int cmp_num(double a, double b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

/* A figure for the column, or NAN when the worker has none. */
static double figure(const struct ui_worker *w, int col)
{
	switch (col) {
	case UI_COL_PID:
		return w->pid > 0 ? (double)w->pid : NAN;
	case UI_COL_CPU:
		return w->cpu;
	case UI_COL_MEM:
		return w->rss >= 0 ? (double)w->rss : NAN;
	case UI_COL_MEMPCT:
		return w->mem_pct;
	case UI_COL_THREADS:
		return w->threads >= 0 ? (double)w->threads : NAN;
	case UI_COL_UPTIME:
		return w->pid > 0 ? w->uptime : NAN;
	case UI_COL_RESTARTS:
		return (double)w->restarts;
	case UI_COL_TASKS:
		return w->tasks_done >= 0 ? (double)w->tasks_done : NAN;
	default:
		return NAN;
	}
}

int ui_view_compare(const struct ui_worker *a, const struct ui_worker *b, int col, bool desc)
{
	int c = 0;
	switch (col) {
	case UI_SORT_NONE:
		return a->order - b->order;
	case UI_COL_NAME:
		c = strverscmp(a->name, b->name); /* squarer_9 before squarer_10 */
		break;
	case UI_COL_STATE:
		c = strcmp(a->state, b->state);
		break;
	case UI_COL_LAST: {
		const char *x = a->last_exit ? a->last_exit : a->reason ? a->reason : "";
		const char *y = b->last_exit ? b->last_exit : b->reason ? b->reason : "";
		if (!*x != !*y)
			return *x ? -1 : 1; /* empty last */
		c = strcmp(x, y);
		break;
	}
	default: {
		double x = figure(a, col), y = figure(b, col);
		if (isnan(x) || isnan(y)) {
			if (isnan(x) && isnan(y))
				break;
			return isnan(x) ? 1 : -1; /* missing last, whatever the direction */
		}
		c = cmp_num(x, y);
	}
	}
	if (desc)
		c = -c;
	return c ? c : a->order - b->order; /* stable: ties keep config order */
}

/* qsort has no context argument in C17: the sort runs on one thread. */
static const struct ui_snapshot *sort_snap;
static int sort_col;
static bool sort_desc;

static int cmp_lines(const void *pa, const void *pb)
{
	const struct ui_line *a = pa, *b = pb;
	return ui_view_compare(&sort_snap->workers[a->index], &sort_snap->workers[b->index],
	                       sort_col, sort_desc);
}

int ui_view_lines(const struct ui_snapshot *s, const struct ui_view *v, struct ui_line *out)
{
	int n = 0;
	for (int gi = 0; gi < s->ngroups; gi++) {
		const struct ui_group *g = &s->groups[gi];
		bool group_matches = v->filter[0] && strcasestr(g->name, v->filter);
		int head = n++;
		out[head] = (struct ui_line){true, gi};
		int first = n;
		for (int i = g->first; i >= 0 && i < g->first + g->nworkers; i++)
			if (group_matches || ui_view_match(&s->workers[i], v->filter))
				out[n++] = (struct ui_line){false, i};
		int matched = n - first;
		if (v->filter[0] && !matched && !group_matches) {
			n = head; /* nothing of this group passes the filter */
			continue;
		}
		if (ui_names_has(&v->folded, g->name)) {
			n = first;
			continue;
		}
		if (v->sort_col != UI_SORT_NONE && matched > 1) {
			sort_snap = s;
			sort_col = v->sort_col;
			sort_desc = v->sort_desc;
			qsort(out + first, (size_t)matched, sizeof(*out), cmp_lines);
		}
	}
	return n;
}
