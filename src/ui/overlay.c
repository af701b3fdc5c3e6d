/* What is drawn over the table: the help screen (generated from the key
 * table), the confirmation dialog and the signal menu. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console_internal.h"

const char *const overlay_signals[] = {"TERM", "HUP",  "INT",  "QUIT", "KILL",
                                       "USR1", "USR2", "STOP", "CONT"};
const int overlay_nsignals = (int)(sizeof(overlay_signals) / sizeof(overlay_signals[0]));

#define HELP_MAX 128

struct help_line {
	char text[256];
	enum theme_role role;
};

static void frame_box(struct console *c, int y, int x, int h, int w, const char *title)
{
	for (int i = 0; i < h; i++)
		console_fill(c, y + i, x, w, THEME_DIALOG);
	attr_set(c->attrs[THEME_DIALOG], c->pairs[THEME_DIALOG], NULL);
	mvhline(y, x + 1, ACS_HLINE, w - 2);
	mvhline(y + h - 1, x + 1, ACS_HLINE, w - 2);
	mvvline(y + 1, x, ACS_VLINE, h - 2);
	mvvline(y + 1, x + w - 1, ACS_VLINE, h - 2);
	mvaddch(y, x, ACS_ULCORNER);
	mvaddch(y, x + w - 1, ACS_URCORNER);
	mvaddch(y + h - 1, x, ACS_LLCORNER);
	mvaddch(y + h - 1, x + w - 1, ACS_LRCORNER);
	if (title) {
		char t[200];
		snprintf(t, sizeof(t), " %s ", title);
		console_put(c, y, x + 2, (int)strlen(t) < w - 4 ? (int)strlen(t) : w - 4,
		            THEME_DIALOG_TITLE, t, false);
	}
}

static int add(struct help_line *lines, int n, enum theme_role role, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int add(struct help_line *lines, int n, enum theme_role role, const char *fmt, ...)
{
	if (n >= HELP_MAX)
		return n;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(lines[n].text, sizeof(lines[n].text), fmt, ap);
	va_end(ap);
	lines[n].role = role;
	return n + 1;
}

/* Entries of the key table that belong to ctx and to none of `not`. */
static int add_keys(struct help_line *lines, int n, unsigned ctx, unsigned not )
{
	for (size_t i = 0; i < ui_nkeys; i++) {
		const struct ui_key *k = &ui_keys[i];
		if (!(k->ctx & ctx) || (k->ctx & not ))
			continue;
		char keys[64] = "", name[16];
		for (size_t j = 0; j < 3 && k->keys[j]; j++) {
			ui_key_name(k->keys[j], name, sizeof(name));
			if (strstr(keys, name))
				continue; /* Enter has three codes */
			if (keys[0])
				strncat(keys, " ", sizeof(keys) - strlen(keys) - 1);
			strncat(keys, name, sizeof(keys) - strlen(keys) - 1);
		}
		n = add(lines, n, THEME_DIALOG, "  %-14s %-8s %s", keys, k->label ? k->label : "",
		        k->help);
	}
	return n;
}

static int help_build(struct console *c, struct help_line *lines)
{
	int n = 0;
	n = add(lines, n, THEME_DIALOG_TITLE, "Table: keys act on the selected worker, or on the");
	n = add(lines, n, THEME_DIALOG_TITLE,
	        "whole group on a group row, or on all tagged workers");
	n = add_keys(lines, n, UI_CTX_TABLE, 0);
	n = add(lines, n, THEME_DIALOG, " ");
	n = add(lines, n, THEME_DIALOG_TITLE, "Log pane (Tab gives it the keyboard)");
	n = add_keys(lines, n, UI_CTX_LOG, UI_CTX_TABLE);
	n = add(lines, n, THEME_DIALOG, " ");
	n = add(lines, n, THEME_DIALOG_TITLE, "Prompts, dialogs and menus");
	n = add_keys(lines, n, UI_CTX_PROMPT | UI_CTX_CONFIRM | UI_CTX_MENU,
	             UI_CTX_TABLE | UI_CTX_LOG);
	n = add(lines, n, THEME_DIALOG, " ");
	n = add(lines, n, THEME_DIALOG_TITLE, "Mouse");
	n = add(lines, n, THEME_DIALOG,
	        "  click a row to select it, a column title to sort by it (again: reverse),");
	n = add(lines, n, THEME_DIALOG, "  a footer key to press it; the wheel scrolls");
	n = add(lines, n, THEME_DIALOG, " ");
	n = add(lines, n, THEME_DIALOG_TITLE, "Columns");
	for (int col = 0; col < UI_COL__COUNT; col++)
		n = add(lines, n, THEME_DIALOG, "  %-17s %s", ui_columns[col].title,
		        ui_columns[col].about);
	n = add(lines, n, THEME_DIALOG, " ");
	char names[200] = "";
	for (int i = 0; i < c->nthemes; i++) {
		if (i)
			strncat(names, " ", sizeof(names) - strlen(names) - 1);
		strncat(names, c->themes[i], sizeof(names) - strlen(names) - 1);
	}
	n = add(lines, n, THEME_DIALOG_TITLE, "Themes (F2 or T): %s; now %s", names, c->theme.name);
	n = add(lines, n, THEME_DIALOG, "  NO_COLOR=1 draws with attributes only");
	return n;
}

int overlay_help_lines(struct console *c)
{
	struct help_line *lines = calloc(HELP_MAX, sizeof(*lines));
	int n = lines ? help_build(c, lines) : 0;
	free(lines);
	return n;
}

static void draw_help(struct console *c)
{
	struct help_line *lines = calloc(HELP_MAX, sizeof(*lines));
	if (!lines)
		return;
	int n = help_build(c, lines);
	int h = c->rows - 2, w = c->cols - 4 < 100 ? c->cols - 4 : 100;
	int y = 1, x = (c->cols - w) / 2;
	int body = h - 2;
	if (c->help_top > n - body)
		c->help_top = n - body > 0 ? n - body : 0;
	frame_box(c, y, x, h, w, "drover console: every key (Esc closes, arrows scroll)");
	for (int i = 0; i < body && c->help_top + i < n; i++) {
		const struct help_line *l = &lines[c->help_top + i];
		console_put(c, y + 1 + i, x + 2, w - 4, l->role, l->text, false);
	}
	free(lines);
}

static void draw_confirm(struct console *c)
{
	char question[300];
	if (c->pending_quit) {
		int live = 0;
		for (int i = 0; i < c->snap.nworkers; i++)
			live += c->snap.workers[i].pid > 0;
		snprintf(question, sizeof(question),
		         "Quit drover? It stops all %d running worker%s and exits.", live,
		         live == 1 ? "" : "s");
	} else {
		snprintf(question, sizeof(question), "%s", c->pending.question);
	}
	int w = (int)strlen(question) + 6;
	if (w < 44)
		w = 44;
	if (w > c->cols - 2)
		w = c->cols - 2;
	int h = 6, y = (c->rows - h) / 2, x = (c->cols - w) / 2;
	frame_box(c, y, x, h, w, "Confirm");
	console_put(c, y + 2, x + 3, w - 6, THEME_DIALOG, question, false);
	console_put(c, y + 4, x + 3, w - 6, THEME_DIALOG_TITLE, "Enter confirms    Esc cancels",
	            false);
}

static void draw_menu(struct console *c)
{
	struct ui_target t;
	console_target(c, &t);
	char title[200], who[160];
	if (t.kind == UI_TARGET_TAGGED)
		snprintf(who, sizeof(who), "%d tagged", t.count);
	else
		snprintf(who, sizeof(who), "%s", t.name ? t.name : "?");
	snprintf(title, sizeof(title), "Send a signal to %s", who);
	int w = (int)strlen(title) + 6;
	if (w < 30)
		w = 30;
	if (w > c->cols - 2)
		w = c->cols - 2;
	int h = overlay_nsignals + 2;
	if (h > c->rows - 2)
		h = c->rows - 2;
	int y = (c->rows - h) / 2, x = (c->cols - w) / 2;
	frame_box(c, y, x, h, w, title);
	for (int i = 0; i < overlay_nsignals && i < h - 2; i++) {
		char line[64];
		snprintf(line, sizeof(line), " SIG%s", overlay_signals[i]);
		console_put(c, y + 1 + i, x + 1, w - 2,
		            i == c->menu_sel ? THEME_DIALOG_SELECTED : THEME_DIALOG, line, false);
	}
}

void overlay_draw(struct console *c)
{
	switch (c->ctx) {
	case UI_CTX_HELP:
		draw_help(c);
		break;
	case UI_CTX_CONFIRM:
		draw_confirm(c);
		break;
	case UI_CTX_MENU:
		draw_menu(c);
		break;
	default:
		break;
	}
}
