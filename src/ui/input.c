/* What keys and the mouse do to the console. Keys are looked up in the one
 * key table (keys.c); steering keys become requests of the shared command
 * vocabulary, confirmed first when they hit many workers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "console_internal.h"
#include "drover/control.h"

static const struct ui_line *current(const struct console *c)
{
	return c->nlines && c->sel < c->nlines ? &c->lines[c->sel] : NULL;
}

static void remember_selection(struct console *c)
{
	const struct ui_line *l = current(c);
	if (!l)
		return;
	c->sel_group = l->group;
	snprintf(c->sel_name, sizeof(c->sel_name), "%s",
	         l->group ? c->snap.groups[l->index].name : c->snap.workers[l->index].name);
}

static void select_line(struct console *c, int i)
{
	if (i >= c->nlines)
		i = c->nlines - 1;
	if (i < 0)
		i = 0;
	c->sel = i;
	remember_selection(c);
	if (c->log_open && !c->log_events)
		c->log_stale = true; /* the pane follows the selection */
}

static int tagged_count(const struct console *c, int *paused)
{
	int n = 0;
	*paused = 0;
	if (!c->view.tagged.count)
		return 0;
	for (int i = 0; i < c->snap.nworkers; i++)
		if (ui_names_has(&c->view.tagged, c->snap.workers[i].name)) {
			n++;
			*paused += c->snap.workers[i].state_id == WORKER_PAUSED;
		}
	return n;
}

void console_target(struct console *c, struct ui_target *t)
{
	memset(t, 0, sizeof(*t));
	const struct ui_line *l = current(c);
	if (!l)
		return;
	const struct ui_group *g =
	    l->group ? &c->snap.groups[l->index]
	             : (c->snap.workers[l->index].group_index >= 0
	                    ? &c->snap.groups[c->snap.workers[l->index].group_index]
	                    : NULL);
	if (g) {
		t->group = g->name;
		t->wanted = g->wanted;
	}
	int paused;
	int tagged = tagged_count(c, &paused);
	if (tagged) {
		t->kind = UI_TARGET_TAGGED;
		t->count = tagged;
		t->paused = paused;
	} else if (l->group) {
		t->kind = UI_TARGET_GROUP;
		t->name = g->name;
		t->count = g->nworkers;
		t->paused = g->counts[WORKER_PAUSED];
	} else {
		const struct ui_worker *w = &c->snap.workers[l->index];
		t->kind = UI_TARGET_WORKER;
		t->name = w->name;
		t->state = w->state;
		t->count = 1;
		t->paused = w->state_id == WORKER_PAUSED;
	}
}

/* "squarer_01: not running (STOPPED)" from a reply's skipped[] */
static void first_skip(json_t *reply, char *buf, size_t len)
{
	json_t *s = json_array_get(json_object_get(reply, "skipped"), 0);
	buf[0] = '\0';
	if (s)
		snprintf(buf, len, "%s: %s (%s)", json_string_value(json_object_get(s, "worker")),
		         json_string_value(json_object_get(s, "why")),
		         json_string_value(json_object_get(s, "state")));
}

void console_run(struct console *c, const struct ui_request *r)
{
	if (!r->each_tagged) {
		json_t *reply = ui_backend_request(&c->be, r->cmd, r->target, r->arg);
		const char *msg = json_string_value(json_object_get(reply, "message"));
		const char *err = json_string_value(json_object_get(reply, "error"));
		size_t skipped = json_array_size(json_object_get(reply, "skipped"));
		if (json_is_true(json_object_get(reply, "ok"))) {
			char skip[300];
			first_skip(reply, skip, sizeof(skip));
			if (skipped)
				console_status(c, false, "%s; %zu skipped: %s", msg ? msg : r->cmd,
				               skipped, skip);
			else
				console_status(c, false, "%s", msg ? msg : r->cmd);
		} else {
			console_status(c, true, "%s", err ? err : "failed");
		}
		json_decref(reply);
		console_request_data(c);
		return;
	}
	/* the vocabulary has no lists: one request per tagged worker */
	int sent = 0, done = 0;
	char err[300] = "";
	for (int i = 0; i < c->snap.nworkers; i++) {
		const char *name = c->snap.workers[i].name;
		if (!ui_names_has(&c->view.tagged, name))
			continue;
		sent++;
		json_t *reply = ui_backend_request(&c->be, r->cmd, name, r->arg);
		if (json_is_true(json_object_get(reply, "ok")))
			done++;
		else if (!err[0])
			snprintf(err, sizeof(err), "%s",
			         json_string_value(json_object_get(reply, "error")) ?: "failed");
		json_decref(reply);
	}
	if (done == sent)
		console_status(c, false, "%s: %d tagged worker%s", r->cmd, done,
		               done == 1 ? "" : "s");
	else
		console_status(c, true, "%s: %d of %d tagged workers; %s", r->cmd, done, sent, err);
	console_request_data(c);
}

/* A steering key on the selection: straight to the supervisor, or to the
 * confirmation dialog first. */
static void steer(struct console *c, enum ui_action a, const char *arg)
{
	struct ui_target t;
	struct ui_request r;
	char err[256];
	console_target(c, &t);
	if (ui_action_request(a, &t, arg, &r, err, sizeof(err)) < 0) {
		console_status(c, true, "%s", err);
		return;
	}
	if (r.confirm) {
		c->pending = r;
		c->pending_quit = false;
		c->ctx = UI_CTX_CONFIRM;
		return;
	}
	console_run(c, &r);
}

static void prompt_open(struct console *c, enum prompt_kind kind)
{
	c->ctx = UI_CTX_PROMPT;
	c->prompt_kind = kind;
	c->prompt[0] = '\0';
	if (kind == PROMPT_FILTER)
		snprintf(c->prompt, sizeof(c->prompt), "%s", c->view.filter);
}

static void search(struct console *c, int from)
{
	if (!c->prompt[0] || !c->nlines)
		return;
	for (int k = 0; k < c->nlines; k++) {
		int i = (from + k) % c->nlines;
		const struct ui_line *l = &c->lines[i];
		const char *name =
		    l->group ? c->snap.groups[l->index].name : c->snap.workers[l->index].name;
		if (strcasestr(name, c->prompt)) {
			select_line(c, i);
			return;
		}
	}
	console_status(c, true, "no name matches '%s'", c->prompt);
}

static void prompt_key(struct console *c, int ch)
{
	enum ui_action a = ui_key_action(UI_CTX_PROMPT, ch);
	size_t len = strlen(c->prompt);
	if (a == UI_ACT_ACCEPT) {
		c->ctx = UI_CTX_TABLE;
		if (c->prompt_kind == PROMPT_SCALE)
			steer(c, UI_ACT_SCALE_TO, c->prompt);
		return;
	}
	if (a == UI_ACT_CANCEL) {
		c->ctx = UI_CTX_TABLE;
		if (c->prompt_kind == PROMPT_FILTER)
			c->view.filter[0] = '\0';
		return;
	}
	if (ch == KEY_F(3) && c->prompt_kind == PROMPT_SEARCH) {
		search(c, c->sel + 1);
		return;
	}
	if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
		/* a whole UTF-8 character: drop continuation bytes too */
		while (len && ((unsigned char)c->prompt[len - 1] & 0xc0) == 0x80)
			len--;
		if (len)
			len--;
		c->prompt[len] = '\0';
	} else if (ch >= 0x20 && ch < 0x100 && ch != 0x7f && len + 1 < sizeof(c->prompt)) {
		if (c->prompt_kind == PROMPT_SCALE && (ch < '0' || ch > '9'))
			return;
		c->prompt[len] = (char)ch;
		c->prompt[len + 1] = '\0';
	} else {
		return;
	}
	if (c->prompt_kind == PROMPT_FILTER) {
		snprintf(c->view.filter, sizeof(c->view.filter), "%s", c->prompt);
		console_rebuild_lines(c);
	} else if (c->prompt_kind == PROMPT_SEARCH) {
		search(c, c->sel);
	}
}

static void fold(struct console *c, const char *group, bool folded)
{
	if (folded)
		ui_names_add(&c->view.folded, group);
	else
		ui_names_remove(&c->view.folded, group);
	if (folded && !c->sel_group) { /* the selection moves to the group row */
		c->sel_group = true;
		snprintf(c->sel_name, sizeof(c->sel_name), "%s", group);
	}
	console_rebuild_lines(c);
}

static void fold_all(struct console *c)
{
	bool any_open = false;
	for (int i = 0; i < c->snap.ngroups; i++)
		any_open |= !ui_names_has(&c->view.folded, c->snap.groups[i].name);
	const struct ui_line *l = current(c);
	if (l && !l->group && any_open) {
		c->sel_group = true;
		snprintf(c->sel_name, sizeof(c->sel_name), "%s", c->snap.workers[l->index].group);
	}
	for (int i = 0; i < c->snap.ngroups; i++) {
		if (any_open)
			ui_names_add(&c->view.folded, c->snap.groups[i].name);
		else
			ui_names_remove(&c->view.folded, c->snap.groups[i].name);
	}
	console_rebuild_lines(c);
}

static void tag(struct console *c)
{
	const struct ui_line *l = current(c);
	if (!l)
		return;
	if (l->group) { /* a group row tags (or untags) all its workers */
		const struct ui_group *g = &c->snap.groups[l->index];
		bool all = true;
		for (int i = g->first; i >= 0 && i < g->first + g->nworkers; i++)
			all &= ui_names_has(&c->view.tagged, c->snap.workers[i].name);
		for (int i = g->first; i >= 0 && i < g->first + g->nworkers; i++) {
			if (all)
				ui_names_remove(&c->view.tagged, c->snap.workers[i].name);
			else
				ui_names_add(&c->view.tagged, c->snap.workers[i].name);
		}
	} else {
		const char *name = c->snap.workers[l->index].name;
		if (ui_names_has(&c->view.tagged, name))
			ui_names_remove(&c->view.tagged, name);
		else
			ui_names_add(&c->view.tagged, name);
	}
	select_line(c, c->sel + 1); /* htop: Space tags and moves on */
}

static void open_log(struct console *c, bool events)
{
	c->log_open = true;
	c->log_events = events;
	c->log_scroll = 0;
	c->log_stale = true;
}

static void navigate(struct console *c, enum ui_action a)
{
	int page = c->table_rows > 1 ? c->table_rows - 1 : 1;
	if (c->log_focus && c->log_open) {
		int step = a == UI_ACT_UP     ? 1
		           : a == UI_ACT_DOWN ? -1
		           : a == UI_ACT_PGUP ? page
		           : a == UI_ACT_PGDN ? -page
		                              : 0;
		c->log_scroll += step;
		if (a == UI_ACT_HOME)
			c->log_scroll = 1 << 20; /* clamped when drawn */
		if (a == UI_ACT_END || c->log_scroll < 0)
			c->log_scroll = 0;
		return;
	}
	switch (a) {
	case UI_ACT_UP:
		select_line(c, c->sel - 1);
		break;
	case UI_ACT_DOWN:
		select_line(c, c->sel + 1);
		break;
	case UI_ACT_PGUP:
		select_line(c, c->sel - page);
		break;
	case UI_ACT_PGDN:
		select_line(c, c->sel + page);
		break;
	case UI_ACT_HOME:
		select_line(c, 0);
		break;
	default:
		select_line(c, c->nlines - 1);
	}
}

static void table_action(struct console *c, enum ui_action a)
{
	const struct ui_line *l = current(c);
	switch (a) {
	case UI_ACT_UP:
	case UI_ACT_DOWN:
	case UI_ACT_PGUP:
	case UI_ACT_PGDN:
	case UI_ACT_HOME:
	case UI_ACT_END:
		navigate(c, a);
		break;
	case UI_ACT_HELP:
		c->ctx = UI_CTX_HELP;
		c->help_top = 0;
		break;
	case UI_ACT_THEME:
		palette_next(c);
		break;
	case UI_ACT_SEARCH:
		prompt_open(c, PROMPT_SEARCH);
		break;
	case UI_ACT_FILTER:
		prompt_open(c, PROMPT_FILTER);
		break;
	case UI_ACT_FOLD_ALL:
		fold_all(c);
		break;
	case UI_ACT_FOLD:
	case UI_ACT_UNFOLD:
		if (l)
			fold(c,
			     l->group ? c->snap.groups[l->index].name
			              : c->snap.workers[l->index].group,
			     a == UI_ACT_FOLD);
		break;
	case UI_ACT_SORT_NEXT:
	case UI_ACT_SORT_PREV:
		ui_view_sort_step(&c->view, a == UI_ACT_SORT_NEXT ? 1 : -1, c->layout.shown);
		break;
	case UI_ACT_SORT_INVERT:
		c->view.sort_desc = !c->view.sort_desc;
		break;
	case UI_ACT_TAG:
		tag(c);
		break;
	case UI_ACT_UNTAG_ALL:
		ui_names_clear(&c->view.tagged);
		break;
	case UI_ACT_LOG:
		if (c->log_open && !c->log_events)
			c->log_open = c->log_focus = false;
		else
			open_log(c, false);
		break;
	case UI_ACT_EVENTS:
		if (c->log_open && c->log_events)
			c->log_open = c->log_focus = false;
		else
			open_log(c, true);
		break;
	case UI_ACT_ENTER:
		if (l && l->group)
			fold(c, c->snap.groups[l->index].name,
			     !ui_names_has(&c->view.folded, c->snap.groups[l->index].name));
		else if (l)
			open_log(c, false);
		break;
	case UI_ACT_FOCUS:
		c->log_focus = c->log_open && !c->log_focus;
		break;
	case UI_ACT_CLEAR:
		if (c->view.filter[0]) {
			c->view.filter[0] = '\0';
			console_rebuild_lines(c);
		} else if (c->log_open) {
			c->log_open = c->log_focus = false;
		}
		break;
	case UI_ACT_REDRAW:
		clearok(curscr, TRUE);
		break;
	case UI_ACT_KILL: {
		struct ui_target t;
		console_target(c, &t);
		if (t.kind == UI_TARGET_NONE) {
			console_status(c, true, "nothing selected");
		} else {
			c->ctx = UI_CTX_MENU;
			c->menu_sel = 0;
		}
		break;
	}
	case UI_ACT_SCALE_TO: {
		struct ui_target t;
		console_target(c, &t);
		prompt_open(c, PROMPT_SCALE);
		if (t.group)
			snprintf(c->prompt, sizeof(c->prompt), "%d", t.wanted);
		break;
	}
	case UI_ACT_QUIT:
		if (!c->sup) {
			c->done = true;
			snprintf(c->farewell, sizeof(c->farewell),
			         "drover attach: detached; drover keeps running");
		} else {
			c->pending_quit = true;
			c->ctx = UI_CTX_CONFIRM;
		}
		break;
	case UI_ACT_PAUSE:
	case UI_ACT_TERM:
	case UI_ACT_RESTART:
	case UI_ACT_START:
	case UI_ACT_GROW:
	case UI_ACT_SHRINK:
	case UI_ACT_RELOAD:
		steer(c, a, NULL);
		break;
	default:
		break;
	}
}

static void key(struct console *c, int ch)
{
	enum ui_action a;
	switch (c->ctx) {
	case UI_CTX_PROMPT:
		prompt_key(c, ch);
		break;
	case UI_CTX_CONFIRM:
		a = ui_key_action(UI_CTX_CONFIRM, ch);
		if (a == UI_ACT_ACCEPT) {
			c->ctx = UI_CTX_TABLE;
			if (c->pending_quit)
				console_quit(c);
			else
				console_run(c, &c->pending);
		} else if (a == UI_ACT_CANCEL) {
			c->ctx = UI_CTX_TABLE;
			console_status(c, false, "cancelled");
		}
		break;
	case UI_CTX_MENU:
		a = ui_key_action(UI_CTX_MENU, ch);
		if (a == UI_ACT_UP && c->menu_sel > 0)
			c->menu_sel--;
		else if (a == UI_ACT_DOWN && c->menu_sel + 1 < overlay_nsignals)
			c->menu_sel++;
		else if (a == UI_ACT_CANCEL)
			c->ctx = UI_CTX_TABLE;
		else if (a == UI_ACT_ACCEPT) {
			c->ctx = UI_CTX_TABLE;
			steer(c, UI_ACT_KILL, overlay_signals[c->menu_sel]);
		}
		break;
	case UI_CTX_HELP:
		a = ui_key_action(UI_CTX_HELP, ch);
		if (a == UI_ACT_CANCEL)
			c->ctx = UI_CTX_TABLE;
		else if (a == UI_ACT_UP || a == UI_ACT_PGUP)
			c->help_top -= a == UI_ACT_UP ? 1 : c->rows / 2;
		else if (a == UI_ACT_DOWN || a == UI_ACT_PGDN)
			c->help_top += a == UI_ACT_DOWN ? 1 : c->rows / 2;
		else if (a == UI_ACT_HOME)
			c->help_top = 0;
		else if (a == UI_ACT_END)
			c->help_top = overlay_help_lines(c);
		if (c->help_top < 0)
			c->help_top = 0;
		break;
	default:
		table_action(c, ui_key_action(c->log_focus ? UI_CTX_LOG : UI_CTX_TABLE, ch));
	}
}

static void mouse(struct console *c)
{
	MEVENT ev;
	if (getmouse(&ev) != OK || c->ctx != UI_CTX_TABLE)
		return;
	bool in_log = c->log_open && ev.y >= c->log_y && ev.y < c->log_y + c->log_rows;
	if (ev.bstate & (BUTTON4_PRESSED | BUTTON5_PRESSED)) {
		int step = ev.bstate & BUTTON4_PRESSED ? 3 : -3;
		if (in_log) {
			c->log_scroll += step;
			if (c->log_scroll < 0)
				c->log_scroll = 0;
		} else {
			select_line(c, c->sel - step);
		}
		return;
	}
	if (!(ev.bstate & BUTTON1_PRESSED))
		return;
	if (ev.y == c->header_y) {
		int col = ui_layout_column_at(&c->layout, ev.x);
		if (col >= 0)
			ui_view_sort_by(&c->view, col);
	} else if (ev.y >= c->table_y && ev.y < c->table_y + c->table_rows) {
		int i = c->top + ev.y - c->table_y;
		if (i < c->nlines)
			select_line(c, i);
	} else if (ev.y == c->rows - 1) { /* htop: the footer's keys are buttons */
		for (int i = c->nfooter - 1; i >= 0; i--)
			if (ev.x >= c->footer_x[i]) {
				table_action(c, ui_keys[c->footer_key[i]].action);
				break;
			}
	} else if (in_log) {
		c->log_focus = true;
	}
}

/* The terminal went away under us. */
static void hangup(struct console *c)
{
	loop_watch_del(c->loop, &c->input);
	c->input.fd = -1;
	if (c->sup) {
		supervisor_shutdown(c->sup, "console:hangup");
		c->closing[0] = '\0';
		console_close(c);
	} else {
		c->done = true;
	}
}

void console_input(struct loop *loop, struct loop_watch *w, uint32_t events)
{
	(void)loop;
	struct console *c = w->arg;
	if (events & (EPOLLHUP | EPOLLERR)) {
		hangup(c);
		return;
	}
	int ch;
	while (c->open && (ch = getch()) != ERR) {
		if (ch == KEY_RESIZE)
			continue; /* the signalfd reports resizes */
		if (ch == KEY_MOUSE)
			mouse(c);
		else
			key(c, ch);
		console_request_draw(c);
	}
}
