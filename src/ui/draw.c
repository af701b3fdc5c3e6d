/* The main screen: header (drover, meters, one line per group), the table,
 * the status line and the footer. Everything goes to curses' virtual
 * screen; console.c sends it with one doupdate() per frame, so nothing
 * flickers and only what changed reaches the terminal. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "console_internal.h"

#define CELL_MAX 512

static void use(const struct console *c, enum theme_role r)
{
	attr_set(c->attrs[r], c->pairs[r], NULL);
}

void console_put(struct console *c, int y, int x, int width, enum theme_role role, const char *text,
                 bool right)
{
	char buf[CELL_MAX * 4];
	if (width <= 0 || x >= c->cols)
		return;
	if (x + width > c->cols)
		width = c->cols - x;
	int used = ui_fit(text, width, c->utf8, buf, sizeof(buf));
	use(c, role);
	int pad = width - used;
	if (right && pad > 0) {
		mvhline(y, x, ' ', pad);
		mvaddstr(y, x + pad, buf);
	} else {
		mvaddstr(y, x, buf);
		if (pad > 0)
			mvhline(y, x + used, ' ', pad);
	}
}

void console_fill(struct console *c, int y, int x, int width, enum theme_role role)
{
	if (width <= 0)
		return;
	use(c, role);
	mvhline(y, x, ' ', width);
}

/* Text at *x on line y, advancing *x; clipped at the right edge. */
static void seg(struct console *c, int y, int *x, enum theme_role role, const char *text)
{
	if (*x >= c->cols)
		return;
	char buf[CELL_MAX * 4];
	int used = ui_fit(text, c->cols - *x, c->utf8, buf, sizeof(buf));
	use(c, role);
	mvaddstr(y, *x, buf);
	*x += used;
}

static enum theme_role state_role(int state)
{
	switch (state) {
	case WORKER_STOPPED:
		return THEME_STATE_STOPPED;
	case WORKER_STARTING:
		return THEME_STATE_STARTING;
	case WORKER_RUNNING:
		return THEME_STATE_RUNNING;
	case WORKER_BACKOFF:
		return THEME_STATE_BACKOFF;
	case WORKER_STOPPING:
		return THEME_STATE_STOPPING;
	case WORKER_EXITED:
		return THEME_STATE_EXITED;
	case WORKER_FATAL:
		return THEME_STATE_FATAL;
	case WORKER_PAUSED:
		return THEME_STATE_PAUSED;
	default:
		return THEME_STATE;
	}
}

/* CPU [|||||||      12.3%]: the bar in eighths where UTF-8 allows. */
static void meter(struct console *c, int y, int x, int w, const char *label, double frac,
                  const char *text)
{
	static const char *const eighths[8] = {"",       "\u258f", "\u258e", "\u258d",
	                                       "\u258c", "\u258b", "\u258a", "\u2589"};
	int lw = (int)strlen(label);
	int bw = w - lw - 2;
	if (bw < 4)
		return;
	seg(c, y, &x, THEME_HEADER_LABEL, label);
	seg(c, y, &x, THEME_METER, "[");
	enum theme_role role = frac < 0.5   ? THEME_METER_LOW
	                       : frac < 0.8 ? THEME_METER_MID
	                                    : THEME_METER_HIGH;
	int tw = (int)strlen(text);
	int room = bw - tw - 1; /* the bar stops short of the text */
	if (isnan(frac) || frac < 0)
		frac = 0;
	if (frac > 1)
		frac = 1;
	int units = (int)lround(frac * room * (c->utf8 ? 8 : 1));
	int bx = x;
	for (int i = 0; i < room; i++) {
		int fill = c->utf8 ? units - i * 8 : units - i;
		const char *ch = " ";
		if (fill >= (c->utf8 ? 8 : 1))
			ch = c->utf8 ? "\u2588" : "|";
		else if (fill > 0)
			ch = eighths[fill];
		seg(c, y, &bx, fill > 0 ? role : THEME_METER, ch);
	}
	bx = x + room;
	seg(c, y, &bx, THEME_METER, " ");
	seg(c, y, &bx, THEME_HEADER_VALUE, text);
	seg(c, y, &bx, THEME_METER, "]");
}

static void sparkline(struct console *c, int y, int *x, const char *group, int width)
{
	static const char *const utf8[9] = {" ",      "\u2581", "\u2582", "\u2583", "\u2584",
	                                    "\u2585", "\u2586", "\u2587", "\u2588"};
	static const char ascii[] = " .:-=+*#@";
	const struct spark *s = NULL;
	for (int i = 0; i < c->nsparks && !s; i++)
		if (!strcmp(c->sparks[i].group, group))
			s = &c->sparks[i];
	if (!s || !s->count || width < 4)
		return;
	int per = (CONSOLE_SPARK_LEN + width - 1) / width; /* samples per character */
	double max = 0, v[CONSOLE_SPARK_LEN];
	int n = 0;
	for (int k = s->count; k > 0; k -= per) { /* newest last */
		double sum = 0;
		int m = 0;
		for (int j = k - per; j < k; j++)
			if (j >= 0) {
				sum += s->v[(s->head - s->count + j + CONSOLE_SPARK_LEN) %
				            CONSOLE_SPARK_LEN];
				m++;
			}
		v[n++] = m ? sum / m : 0;
	}
	for (int i = 0; i < n; i++)
		max = v[i] > max ? v[i] : max;
	seg(c, y, x, THEME_GROUP, " ");
	for (int i = n - 1; i >= 0; i--) {
		int level = max > 0 ? (int)lround(v[i] / max * 8) : 0;
		char ch[2] = {ascii[level], 0};
		seg(c, y, x, THEME_SPARK, c->utf8 ? utf8[level] : ch);
	}
}

static void group_line(struct console *c, int y, const struct ui_group *g, int name_w)
{
	char buf[128];
	int x = 1;
	console_fill(c, y, 0, c->cols, THEME_GROUP);
	char name[128];
	snprintf(name, sizeof(name), "%-*s ", name_w, g->name);
	seg(c, y, &x, THEME_GROUP_NAME, name);
	snprintf(buf, sizeof(buf), "%d/%d", g->counts[WORKER_RUNNING], g->wanted);
	seg(c, y, &x, THEME_HEADER_VALUE, buf);
	seg(c, y, &x, THEME_HEADER_LABEL, " running");
	if (g->counts[WORKER_PAUSED]) {
		snprintf(buf, sizeof(buf), " %d paused", g->counts[WORKER_PAUSED]);
		seg(c, y, &x, THEME_STATE_PAUSED, buf);
	}
	if (g->counts[WORKER_FATAL] || g->counts[WORKER_BACKOFF]) {
		snprintf(buf, sizeof(buf), " %d failing",
		         g->counts[WORKER_FATAL] + g->counts[WORKER_BACKOFF]);
		seg(c, y, &x, THEME_STATE_FATAL, buf);
	}
	ui_cell_group(&c->snap, g, UI_COL_CPU, buf, sizeof(buf));
	seg(c, y, &x, THEME_HEADER_LABEL, "  cpu ");
	seg(c, y, &x, THEME_HEADER_VALUE, buf);
	ui_cell_group(&c->snap, g, UI_COL_MEM, buf, sizeof(buf));
	seg(c, y, &x, THEME_HEADER_LABEL, "  mem ");
	seg(c, y, &x, THEME_HEADER_VALUE, buf);
	if (!g->has_queue) {
		seg(c, y, &x, THEME_ROW_DIM, "  no tasks");
		return;
	}
	const struct {
		long long n;
		const char *what;
	} q[] = {{g->pending, " pending "},
	         {g->running, " running "},
	         {g->done, " done "},
	         {g->failed, " failed"}};
	seg(c, y, &x, THEME_HEADER_LABEL, "  queue ");
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		ui_fmt_count(q[i].n, buf, sizeof(buf));
		seg(c, y, &x, i == 3 && q[i].n ? THEME_STATUS_ERROR : THEME_HEADER_VALUE, buf);
		seg(c, y, &x, THEME_HEADER_LABEL, q[i].what);
	}
	if (isnan(g->rate))
		snprintf(buf, sizeof(buf), "  -/s");
	else
		snprintf(buf, sizeof(buf), "  %.1f/s", g->rate);
	seg(c, y, &x, THEME_HEADER_VALUE, buf);
	sparkline(c, y, &x, g->name, c->cols - x - 1 < 20 ? c->cols - x - 1 : 20);
}

/* Returns the first line below the header. */
static int draw_header(struct console *c)
{
	const struct ui_snapshot *s = &c->snap;
	char buf[256];
	int x = 0, y = 0;
	console_fill(c, y, 0, c->cols, THEME_HEADER);
	snprintf(buf, sizeof(buf), " drover %s ", c->have_snap ? s->version : "");
	seg(c, y, &x, THEME_HEADER_TITLE, buf);
	seg(c, y, &x, THEME_HEADER_LABEL, " config ");
	seg(c, y, &x, THEME_HEADER_VALUE, c->have_snap ? s->config : c->config ? c->config : "?");
	ui_fmt_duration(s->uptime, buf, sizeof(buf));
	seg(c, y, &x, THEME_HEADER_LABEL, "  up ");
	seg(c, y, &x, THEME_HEADER_VALUE, buf);
	snprintf(buf, sizeof(buf), "%ld", s->pid);
	seg(c, y, &x, THEME_HEADER_LABEL, "  pid ");
	seg(c, y, &x, THEME_HEADER_VALUE, buf);
	snprintf(buf, sizeof(buf), "%d", s->nworkers);
	seg(c, y, &x, THEME_HEADER_LABEL, "  workers ");
	seg(c, y, &x, THEME_HEADER_VALUE, buf);
	if (!c->sup)
		seg(c, y, &x, THEME_HEADER_LABEL, "  (attached)");
	if (s->shutting_down)
		seg(c, y, &x, THEME_STATUS_ERROR, "  SHUTTING DOWN");

	y++;
	console_fill(c, y, 0, c->cols, THEME_HEADER);
	char load[64], cpu[32], mem[64], used[16], total[16];
	if (s->has_system && !isnan(s->load[0]))
		snprintf(load, sizeof(load), " load %.2f %.2f %.2f", s->load[0], s->load[1],
		         s->load[2]);
	else
		snprintf(load, sizeof(load), " load -");
	ui_fmt_pct(s->has_system ? s->sys_cpu : NAN, cpu, sizeof(cpu));
	if (strcmp(cpu, "-"))
		strcat(cpu, "%");
	ui_fmt_bytes(s->mem_used, used, sizeof(used));
	ui_fmt_bytes(s->mem_total, total, sizeof(total));
	snprintf(mem, sizeof(mem), "%s/%s", used, total);
	int lw = (int)strlen(load), mw = (c->cols - lw - 3) / 2;
	meter(c, y, 1, mw, "CPU", s->sys_cpu / 100.0, cpu);
	meter(c, y, 2 + mw, mw, "Mem",
	      s->mem_total > 0 ? (double)s->mem_used / (double)s->mem_total : NAN, mem);
	x = 2 + 2 * mw;
	seg(c, y, &x, THEME_HEADER_LABEL, load);
	y++;

	/* one line per group, as many as leave the table 8 rows */
	int room = c->rows - y - 3 - 8;
	int shown = s->ngroups < room ? s->ngroups : room > 1 ? room : 1;
	if (shown > 8)
		shown = 8;
	int name_w = 4;
	for (int i = 0; i < s->ngroups; i++) {
		int n = (int)strlen(s->groups[i].name);
		name_w = n > name_w ? n : name_w;
	}
	name_w = name_w > 20 ? 20 : name_w;
	for (int i = 0; i < shown && i < s->ngroups; i++) {
		if (i == shown - 1 && s->ngroups > shown) {
			console_fill(c, y, 0, c->cols, THEME_GROUP);
			snprintf(buf, sizeof(buf), " ... and %d more groups (F5 folds the table)",
			         s->ngroups - i);
			console_put(c, y, 0, c->cols, THEME_ROW_DIM, buf, false);
		} else {
			group_line(c, y, &s->groups[i], name_w);
		}
		y++;
	}
	return y;
}

static void draw_table_header(struct console *c, int y)
{
	console_fill(c, y, 0, c->cols, THEME_TABLE_HEADER);
	for (int col = 0; col < UI_COL__COUNT; col++) {
		if (!c->layout.shown[col])
			continue;
		bool sorted = c->view.sort_col == col;
		char title[64];
		snprintf(title, sizeof(title), "%s%s", ui_columns[col].title,
		         !sorted             ? ""
		         : c->view.sort_desc ? (c->utf8 ? "\u25bc" : "v")
		                             : (c->utf8 ? "\u25b2" : "^"));
		console_put(c, y, c->layout.x[col], c->layout.w[col],
		            sorted ? THEME_TABLE_HEADER_SORTED : THEME_TABLE_HEADER, title,
		            ui_columns[col].right);
	}
}

static void draw_row(struct console *c, int y, const struct ui_line *l, bool selected)
{
	const struct ui_snapshot *s = &c->snap;
	const struct ui_worker *w = l->group ? NULL : &s->workers[l->index];
	const struct ui_group *g = l->group ? &s->groups[l->index] : NULL;
	bool tagged = w && ui_names_has(&c->view.tagged, w->name);
	enum theme_role base = selected ? THEME_ROW_SELECTED
	                       : tagged ? THEME_ROW_TAGGED
	                       : g      ? THEME_ROW_GROUP
	                                : THEME_ROW;
	console_fill(c, y, 0, c->cols, base);
	const char *mark = " ";
	if (g) {
		bool folded = ui_names_has(&c->view.folded, g->name);
		mark = c->utf8 ? (folded ? "\u25b8" : "\u25be") : (folded ? "+" : "-");
	} else if (tagged) {
		mark = "*";
	}
	console_put(c, y, 0, UI_MARK_WIDTH, base, mark, false);
	char cell[CELL_MAX];
	for (int col = 0; col < UI_COL__COUNT; col++) {
		if (!c->layout.shown[col])
			continue;
		if (g)
			ui_cell_group(s, g, (enum ui_col)col, cell, sizeof(cell));
		else
			ui_cell_worker(w, (enum ui_col)col, cell, sizeof(cell));
		enum theme_role role = base;
		if (!selected && w && col == UI_COL_STATE)
			role = state_role(w->state_id);
		else if (!selected && !strcmp(cell, "-"))
			role = THEME_ROW_DIM;
		console_put(c, y, c->layout.x[col], c->layout.w[col], role, cell,
		            ui_columns[col].right);
	}
}

static void draw_table(struct console *c)
{
	if (c->sel < c->top)
		c->top = c->sel;
	if (c->sel >= c->top + c->table_rows)
		c->top = c->sel - c->table_rows + 1;
	if (c->top > c->nlines - c->table_rows)
		c->top = c->nlines - c->table_rows;
	if (c->top < 0)
		c->top = 0;
	draw_table_header(c, c->header_y);
	for (int i = 0; i < c->table_rows; i++) {
		int li = c->top + i;
		if (li >= c->nlines)
			break;
		draw_row(c, c->table_y + i, &c->lines[li], li == c->sel);
	}
	const char *empty = NULL;
	char buf[256];
	if (!c->have_snap) {
		empty = c->snap_err[0] ? c->snap_err : "waiting for drover...";
	} else if (!c->nlines && c->view.filter[0]) {
		snprintf(buf, sizeof(buf), "no worker matches '%s' (Esc clears the filter)",
		         c->view.filter);
		empty = buf;
	} else if (!c->nlines) {
		empty = "no programs in the config";
	}
	if (empty)
		console_put(c, c->table_y, 2, c->cols - 2, THEME_ROW_DIM, empty, false);
}

static void draw_status(struct console *c, int y)
{
	static const char *const prompts[] = {"Filter: ", "Search: ", "Pool size: "};
	console_fill(c, y, 0, c->cols, THEME_STATUS);
	int x = 0;
	if (c->ctx == UI_CTX_PROMPT) {
		seg(c, y, &x, THEME_PROMPT, prompts[c->prompt_kind]);
		seg(c, y, &x, THEME_STATUS, c->prompt);
		seg(c, y, &x, THEME_PROMPT, " ");
		return;
	}
	char info[256] = "";
	size_t off = 0;
	if (c->view.filter[0])
		off += (size_t)snprintf(info + off, sizeof(info) - off, "filter '%s'  ",
		                        c->view.filter);
	if (c->view.tagged.count && off < sizeof(info))
		off += (size_t)snprintf(info + off, sizeof(info) - off, "%zu tagged  ",
		                        c->view.tagged.count);
	if (off < sizeof(info))
		snprintf(info + off, sizeof(info) - off, "theme %s ", c->theme.name);
	int iw = (int)strlen(info);
	seg(c, y, &x, c->status_error ? THEME_STATUS_ERROR : THEME_STATUS_OK, " ");
	console_put(c, y, 1, c->cols - iw - 2,
	            c->status_error ? THEME_STATUS_ERROR : THEME_STATUS_OK, c->status, false);
	if (c->cols - iw > 20)
		console_put(c, y, c->cols - iw, iw, THEME_STATUS, info, true);
}

static void draw_footer(struct console *c, int y)
{
	unsigned ctx = c->ctx == UI_CTX_TABLE && c->log_focus ? UI_CTX_LOG : c->ctx;
	console_fill(c, y, 0, c->cols, THEME_FOOTER);
	int x = 0;
	c->nfooter = 0;
	for (size_t i = 0; i < ui_nkeys; i++) {
		const struct ui_key *k = &ui_keys[i];
		if (!(k->ctx & ctx) || !k->label)
			continue;
		char name[16], label[32];
		ui_key_name(k->keys[0], name, sizeof(name));
		snprintf(label, sizeof(label), "%s ", k->label);
		if (x + (int)(strlen(name) + strlen(label)) > c->cols)
			break;
		if (c->nfooter < (int)(sizeof(c->footer_x) / sizeof(c->footer_x[0]))) {
			c->footer_x[c->nfooter] = x;
			c->footer_key[c->nfooter++] = (int)i;
		}
		seg(c, y, &x, THEME_FOOTER_KEY, name);
		seg(c, y, &x, THEME_FOOTER_LABEL, label);
	}
	if (ctx != UI_CTX_TABLE && ctx != UI_CTX_LOG)
		c->nfooter = 0; /* clicks on dialog footers mean nothing */
}

void console_draw(struct console *c)
{
	erase();
	if (c->cols < CONSOLE_MIN_COLS || c->rows < CONSOLE_MIN_ROWS) {
		char buf[128];
		snprintf(buf, sizeof(buf), "%dx%d, needs %dx%d", c->cols, c->rows, CONSOLE_MIN_COLS,
		         CONSOLE_MIN_ROWS);
		console_put(c, c->rows / 2 - 1, 0, c->cols, THEME_STATUS_ERROR,
		            "terminal too small", false);
		console_put(c, c->rows / 2, 0, c->cols, THEME_STATUS, buf, false);
		wnoutrefresh(stdscr);
		return;
	}
	if (ui_layout_make(c->cols, c->name_want, &c->layout) < 0)
		memset(&c->layout, 0, sizeof(c->layout));
	int y = draw_header(c);
	int avail = c->rows - 2 - y; /* table header, rows and log pane */
	c->log_rows = 0;
	if (c->log_open) {
		c->log_rows = avail * 2 / 5 > 5 ? avail * 2 / 5 : 5;
		if (avail - c->log_rows < 4)
			c->log_rows = avail - 4;
	}
	c->header_y = y;
	c->table_y = y + 1;
	c->table_rows = avail - 1 - c->log_rows;
	draw_table(c);
	c->log_y = c->table_y + c->table_rows;
	if (c->log_open)
		logpane_draw(c, c->log_y, c->log_rows);
	draw_status(c, c->rows - 2);
	draw_footer(c, c->rows - 1);
	overlay_draw(c);
	wnoutrefresh(stdscr);
}
