/* The table's columns: what each shows, how narrow it may get, which go
 * first when the terminal is narrow, and the text of every cell. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "drover/ui_table.h"

/* At their minimum widths, all of them fit 80 columns; below that the
 * least kept ones go. */
const struct ui_column ui_columns[UI_COL__COUNT] = {
    [UI_COL_NAME] = {"NAME", "worker (or group) name", 10, false, 1000, false},
    [UI_COL_PID] = {"PID", "process id", 7, true, 1000, false},
    [UI_COL_STATE] = {"STATE", "worker state (group rows: running/wanted)", 8, false, 1000, false},
    [UI_COL_CPU] = {"CPU%", "CPU of the worker's process tree, 100 = one core", 5, true, 80, true},
    [UI_COL_MEM] = {"MEM", "resident memory of the worker's process tree", 5, true, 70, true},
    [UI_COL_MEMPCT] = {"MEM%", "that memory as a share of the machine's", 5, true, 20, true},
    [UI_COL_THREADS] = {"T/P", "threads of the worker / processes in its tree", 5, true, 30, true},
    [UI_COL_UPTIME] = {"UPTIME", "time since the process started", 8, true, 50, true},
    [UI_COL_RESTARTS] = {"RST", "restarts", 3, true, 40, true},
    [UI_COL_TASKS] = {"TASKS", "tasks done", 6, true, 35, true},
    [UI_COL_LAST] = {"LAST EXIT/REASON", "the last exit status, and why the state was entered", 6,
                     false, 60, false},
};

static int total_width(const bool *shown, const int *w)
{
	int total = UI_MARK_WIDTH, n = 0;
	for (int c = 0; c < UI_COL__COUNT; c++)
		if (shown[c]) {
			total += w[c];
			n++;
		}
	return total + (n > 0 ? n - 1 : 0);
}

int ui_layout_make(int width, int name_want, struct ui_layout *out)
{
	memset(out, 0, sizeof(*out));
	for (int c = 0; c < UI_COL__COUNT; c++) {
		out->shown[c] = true;
		out->w[c] = ui_columns[c].min;
	}
	while (total_width(out->shown, out->w) > width) {
		int drop = -1;
		for (int c = 0; c < UI_COL__COUNT; c++)
			if (out->shown[c] && ui_columns[c].keep < 1000 &&
			    (drop < 0 || ui_columns[c].keep < ui_columns[drop].keep))
				drop = c;
		if (drop < 0)
			return -1;
		out->shown[drop] = false;
	}
	int spare = width - total_width(out->shown, out->w);
	int grow = name_want - out->w[UI_COL_NAME];
	if (grow > spare)
		grow = spare;
	if (grow > 0) {
		out->w[UI_COL_NAME] += grow;
		spare -= grow;
	}
	if (out->shown[UI_COL_LAST])
		out->w[UI_COL_LAST] += spare;
	int x = UI_MARK_WIDTH, n = 0;
	for (int c = 0; c < UI_COL__COUNT; c++) {
		if (!out->shown[c])
			continue;
		out->x[c] = x;
		x += out->w[c] + 1;
		n++;
	}
	return n;
}

int ui_layout_column_at(const struct ui_layout *l, int x)
{
	for (int c = 0; c < UI_COL__COUNT; c++)
		if (l->shown[c] && x >= l->x[c] && x <= l->x[c] + l->w[c])
			return c;
	return -1;
}

static void last_text(const char *last_exit, const char *reason, char *buf, size_t len)
{
	if (last_exit && reason)
		snprintf(buf, len, "%s (%s)", last_exit, reason);
	else
		snprintf(buf, len, "%s", last_exit ? last_exit : reason ? reason : "");
}

void ui_cell_worker(const struct ui_worker *w, enum ui_col col, char *buf, size_t len)
{
	switch (col) {
	case UI_COL_NAME:
		snprintf(buf, len, "%s", w->name);
		break;
	case UI_COL_PID:
		if (w->pid > 0)
			snprintf(buf, len, "%ld", w->pid);
		else
			snprintf(buf, len, "-");
		break;
	case UI_COL_STATE:
		snprintf(buf, len, "%s", w->state);
		break;
	case UI_COL_CPU:
		ui_fmt_pct(w->cpu, buf, len);
		break;
	case UI_COL_MEM:
		ui_fmt_bytes(w->rss, buf, len);
		break;
	case UI_COL_MEMPCT:
		ui_fmt_pct(w->mem_pct, buf, len);
		break;
	case UI_COL_THREADS:
		if (w->threads < 0)
			snprintf(buf, len, "-");
		else
			snprintf(buf, len, "%d/%d", w->threads, w->procs < 0 ? 0 : w->procs);
		break;
	case UI_COL_UPTIME:
		ui_fmt_duration(w->pid > 0 ? w->uptime : -1, buf, len);
		break;
	case UI_COL_RESTARTS:
		snprintf(buf, len, "%ld", w->restarts);
		break;
	case UI_COL_TASKS:
		ui_fmt_count(w->tasks_done, buf, len);
		break;
	case UI_COL_LAST:
		last_text(w->last_exit, w->reason, buf, len);
		break;
	case UI_COL__COUNT:
		buf[0] = '\0';
		break;
	}
}

/* "3 RUNNING, 1 PAUSED" */
static void state_counts(const struct ui_group *g, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (int s = 0; s < WORKER__COUNT && off < len; s++) {
		if (!g->counts[s])
			continue;
		int n = snprintf(buf + off, len - off, "%s%d %s", off ? ", " : "", g->counts[s],
		                 fsm_state_name((enum worker_state)s));
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

void ui_cell_group(const struct ui_snapshot *s, const struct ui_group *g, enum ui_col col,
                   char *buf, size_t len)
{
	long long threads = -1, procs = 0, tasks = -1;
	long restarts = 0;
	for (int i = g->first; i >= 0 && i < g->first + g->nworkers; i++) {
		const struct ui_worker *w = &s->workers[i];
		if (w->threads >= 0) {
			threads = (threads < 0 ? 0 : threads) + w->threads;
			procs += w->procs > 0 ? w->procs : 0;
		}
		if (w->tasks_done >= 0)
			tasks = (tasks < 0 ? 0 : tasks) + w->tasks_done;
		restarts += w->restarts;
	}
	bool metrics = threads >= 0; /* some worker has been sampled */
	switch (col) {
	case UI_COL_NAME:
		snprintf(buf, len, "%s", g->name);
		break;
	case UI_COL_STATE:
		snprintf(buf, len, "%d/%d", g->counts[WORKER_RUNNING], g->wanted);
		break;
	case UI_COL_CPU:
		ui_fmt_pct(metrics ? g->cpu : NAN, buf, len);
		break;
	case UI_COL_MEM:
		ui_fmt_bytes(metrics ? g->rss : -1, buf, len);
		break;
	case UI_COL_MEMPCT:
		ui_fmt_pct(metrics && s->mem_total > 0
		               ? (double)g->rss * 100.0 / (double)s->mem_total
		               : NAN,
		           buf, len);
		break;
	case UI_COL_THREADS:
		if (metrics)
			snprintf(buf, len, "%lld/%lld", threads, procs);
		else
			snprintf(buf, len, "-");
		break;
	case UI_COL_RESTARTS:
		snprintf(buf, len, "%ld", restarts);
		break;
	case UI_COL_TASKS:
		ui_fmt_count(g->has_queue ? g->done : tasks, buf, len);
		break;
	case UI_COL_LAST:
		state_counts(g, buf, len);
		break;
	case UI_COL_PID:
	case UI_COL_UPTIME:
	case UI_COL__COUNT:
		buf[0] = '\0';
		break;
	}
}
