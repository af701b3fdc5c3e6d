/* The key table, and what a steering key asks of the supervisor. */
#include "drover/ui_keys.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTER_KEYS UI_KEY_ENTER, KEY_ENTER, '\r'
#define NAV        (UI_CTX_TABLE | UI_CTX_LOG | UI_CTX_MENU | UI_CTX_HELP)
#define VIEW       (UI_CTX_TABLE | UI_CTX_LOG)

/* Order matters twice: the footer shows labelled entries in this order
 * (htop's F-key row first), and the first entry that matches a key wins. */
const struct ui_key ui_keys[] = {
    {VIEW, {KEY_F(1), '?'}, "Help", UI_ACT_HELP, "this help"},
    {VIEW, {KEY_F(2), 'T'}, "Theme", UI_ACT_THEME, "next colour theme"},
    {UI_CTX_TABLE, {KEY_F(3)}, "Search", UI_ACT_SEARCH, "jump to a worker by name"},
    {UI_CTX_TABLE,
     {KEY_F(4), '/', '\\'},
     "Filter",
     UI_ACT_FILTER,
     "show only workers whose name, group or state matches"},
    {UI_CTX_TABLE, {KEY_F(5)}, "Fold", UI_ACT_FOLD_ALL, "fold or unfold all groups"},
    {UI_CTX_TABLE, {KEY_F(6), '>', '.'}, "SortBy", UI_ACT_SORT_NEXT, "sort by the next column"},
    {UI_CTX_TABLE, {KEY_F(7), '-'}, "Shrink", UI_ACT_SHRINK, "one worker fewer in the pool"},
    {UI_CTX_TABLE, {KEY_F(8), '+'}, "Grow", UI_ACT_GROW, "one worker more in the pool"},
    {UI_CTX_TABLE, {KEY_F(9), 'k'}, "Kill", UI_ACT_KILL, "send a signal, chosen from a menu"},
    {VIEW,
     {KEY_F(10), 'q'},
     "Quit",
     UI_ACT_QUIT,
     "quit (in-process: stops every worker, after asking; attached: leaves them running)"},
    {UI_CTX_TABLE, {'p'}, "Pause", UI_ACT_PAUSE, "pause (SIGSTOP) or resume (SIGCONT)"},
    {UI_CTX_TABLE,
     {'t'},
     "Stop",
     UI_ACT_TERM,
     "terminate: stopsignal, then SIGKILL after stopwaitsecs"},
    {UI_CTX_TABLE, {'r'}, "Restart", UI_ACT_RESTART, "stop, then start again"},
    {UI_CTX_TABLE, {'s'}, "Start", UI_ACT_START, "start stopped, exited or fatal workers"},
    {UI_CTX_TABLE, {'='}, "Size", UI_ACT_SCALE_TO, "type the pool's size"},
    {UI_CTX_TABLE, {'a'}, "Reload", UI_ACT_RELOAD, "apply the config file (reload)"},
    {UI_CTX_TABLE, {' '}, "Tag", UI_ACT_TAG, "tag a worker: actions then apply to all tagged"},
    {VIEW, {'l'}, "Log", UI_ACT_LOG, "log pane: the selected worker's output"},
    {VIEW, {'L'}, "Events", UI_ACT_EVENTS, "log pane: drover's own event log"},
    {UI_CTX_TABLE, {'U'}, NULL, UI_ACT_UNTAG_ALL, "untag every worker"},
    {UI_CTX_TABLE, {'<', ','}, NULL, UI_ACT_SORT_PREV, "sort by the previous column"},
    {UI_CTX_TABLE, {'I'}, NULL, UI_ACT_SORT_INVERT, "invert the sort order"},
    {UI_CTX_TABLE, {KEY_LEFT}, NULL, UI_ACT_FOLD, "fold the selected group"},
    {UI_CTX_TABLE, {KEY_RIGHT}, NULL, UI_ACT_UNFOLD, "unfold the selected group"},
    {UI_CTX_TABLE,
     {ENTER_KEYS},
     NULL,
     UI_ACT_ENTER,
     "on a worker: open its log; on a group: fold or unfold"},
    {UI_CTX_LOG, {KEY_END}, "Follow", UI_ACT_END, "follow new lines"},
    {VIEW, {UI_KEY_TAB}, NULL, UI_ACT_FOCUS, "keyboard to the log pane and back"},
    {VIEW, {UI_KEY_ESC}, NULL, UI_ACT_CLEAR, "clear the filter, then close the log pane"},
    {VIEW, {UI_KEY_CTRL('l')}, NULL, UI_ACT_REDRAW, "redraw the screen"},
    {NAV, {KEY_UP}, NULL, UI_ACT_UP, "move up (scroll in the log pane)"},
    {NAV, {KEY_DOWN}, NULL, UI_ACT_DOWN, "move down"},
    {NAV, {KEY_PPAGE}, NULL, UI_ACT_PGUP, "a page up"},
    {NAV, {KEY_NPAGE}, NULL, UI_ACT_PGDN, "a page down"},
    {NAV, {KEY_HOME}, NULL, UI_ACT_HOME, "to the top"},
    {NAV & ~UI_CTX_LOG, {KEY_END}, NULL, UI_ACT_END, "to the bottom"},
    {UI_CTX_PROMPT, {ENTER_KEYS}, "Done", UI_ACT_ACCEPT, "keep what was typed"},
    {UI_CTX_PROMPT, {UI_KEY_ESC}, "Clear", UI_ACT_CANCEL, "clear and close"},
    {UI_CTX_CONFIRM, {ENTER_KEYS}, "Confirm", UI_ACT_ACCEPT, "do it"},
    {UI_CTX_CONFIRM, {UI_KEY_ESC, 'n'}, "Cancel", UI_ACT_CANCEL, "do nothing"},
    {UI_CTX_MENU, {ENTER_KEYS}, "Send", UI_ACT_ACCEPT, "send the chosen signal"},
    {UI_CTX_MENU, {UI_KEY_ESC}, "Cancel", UI_ACT_CANCEL, "send nothing"},
    {UI_CTX_HELP, {UI_KEY_ESC, 'q', KEY_F(1)}, "Close", UI_ACT_CANCEL, "close the help"},
    {UI_CTX_HELP, {'?'}, NULL, UI_ACT_CANCEL, "close the help"},
};

const size_t ui_nkeys = sizeof(ui_keys) / sizeof(ui_keys[0]);

static enum ui_action find(unsigned ctx, int key)
{
	for (size_t i = 0; i < ui_nkeys; i++) {
		if (!(ui_keys[i].ctx & ctx))
			continue;
		for (size_t k = 0; k < 3 && ui_keys[i].keys[k]; k++)
			if (ui_keys[i].keys[k] == key)
				return ui_keys[i].action;
	}
	return UI_ACT_NONE;
}

enum ui_action ui_key_action(unsigned ctx, int key)
{
	enum ui_action a = find(ctx, key);
	if (a == UI_ACT_NONE && ctx == UI_CTX_LOG)
		a = find(UI_CTX_TABLE, key);
	return a;
}

const char *ui_key_name(int key, char *buf, size_t len)
{
	static const struct {
		int key;
		const char *name;
	} names[] = {
	    {UI_KEY_ENTER, "Enter"}, {KEY_ENTER, "Enter"}, {'\r', "Enter"},
	    {UI_KEY_ESC, "Esc"},     {UI_KEY_TAB, "Tab"},  {' ', "Space"},
	    {KEY_UP, "Up"},          {KEY_DOWN, "Down"},   {KEY_LEFT, "Left"},
	    {KEY_RIGHT, "Right"},    {KEY_PPAGE, "PgUp"},  {KEY_NPAGE, "PgDn"},
	    {KEY_HOME, "Home"},      {KEY_END, "End"},     {KEY_BACKSPACE, "Bksp"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].key == key) {
			snprintf(buf, len, "%s", names[i].name);
			return buf;
		}
	if (key >= KEY_F(1) && key <= KEY_F(24))
		snprintf(buf, len, "F%d", key - KEY_F0);
	else if (key > 0 && key < 0x20)
		snprintf(buf, len, "^%c", key + '@');
	else if (key > 0x20 && key < 0x7f)
		snprintf(buf, len, "%c", key);
	else
		snprintf(buf, len, "#%d", key);
	return buf;
}

/* "all 4 workers of squarer" / "3 tagged workers" / "squarer_03" */
static void describe(const struct ui_target *t, char *buf, size_t len)
{
	switch (t->kind) {
	case UI_TARGET_GROUP:
		if (t->count == 1)
			snprintf(buf, len, "the one worker of %s", t->name);
		else
			snprintf(buf, len, "all %d workers of %s", t->count, t->name);
		break;
	case UI_TARGET_TAGGED:
		snprintf(buf, len, "%d tagged worker%s", t->count, t->count == 1 ? "" : "s");
		break;
	default:
		snprintf(buf, len, "%s", t->name ? t->name : "?");
	}
}

static int ask(struct ui_request *out, const char *what, const struct ui_target *t,
               const char *tail)
{
	char who[200];
	describe(t, who, sizeof(who));
	out->confirm = t->kind == UI_TARGET_GROUP || t->kind == UI_TARGET_TAGGED;
	snprintf(out->question, sizeof(out->question), "%s %s%s?", what, who, tail);
	return 0;
}

static int scale_request(struct ui_request *out, const struct ui_target *t, const char *arg, int to,
                         char *err, size_t errlen)
{
	if (!t->group) {
		snprintf(err, errlen, "select a worker or a group to scale its pool");
		return -1;
	}
	out->cmd = "scale";
	out->each_tagged = false;
	snprintf(out->target, sizeof(out->target), "%s", t->group);
	snprintf(out->arg, sizeof(out->arg), "%s", arg);
	if (to == 0 && t->wanted > 0) {
		out->confirm = true;
		snprintf(out->question, sizeof(out->question),
		         "Scale %s to 0 (stop all its workers)?", t->group);
	}
	return 0;
}

int ui_action_request(enum ui_action a, const struct ui_target *t, const char *arg,
                      struct ui_request *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (a == UI_ACT_RELOAD) {
		out->cmd = "reload";
		out->confirm = true;
		snprintf(out->question, sizeof(out->question),
		         "Reload the config? Changed programs restart, removed ones stop.");
		return 0;
	}
	if (t->kind == UI_TARGET_NONE) {
		snprintf(err, errlen, "nothing selected");
		return -1;
	}
	if (t->kind != UI_TARGET_TAGGED)
		snprintf(out->target, sizeof(out->target), "%s", t->name);
	out->each_tagged = t->kind == UI_TARGET_TAGGED; /* scaling clears it */
	switch (a) {
	case UI_ACT_PAUSE: {
		/* one key for both: a paused selection resumes */
		bool resume = t->kind == UI_TARGET_WORKER ? t->state && !strcmp(t->state, "PAUSED")
		                                          : t->count > 0 && t->paused == t->count;
		out->cmd = resume ? "resume" : "pause";
		return 0;
	}
	case UI_ACT_TERM:
		out->cmd = "stop";
		return ask(out, "Stop", t, "");
	case UI_ACT_RESTART:
		out->cmd = "restart";
		return ask(out, "Restart", t, "");
	case UI_ACT_START:
		out->cmd = "start";
		return 0;
	case UI_ACT_KILL: {
		if (!arg || !*arg) {
			snprintf(err, errlen, "kill: which signal?");
			return -1;
		}
		out->cmd = "kill";
		snprintf(out->arg, sizeof(out->arg), "%s", arg);
		char what[48];
		snprintf(what, sizeof(what), "Send SIG%s to", arg);
		return ask(out, what, t, "");
	}
	case UI_ACT_GROW:
		return scale_request(out, t, "+1", t->wanted + 1, err, errlen);
	case UI_ACT_SHRINK:
		if (t->wanted <= 0) {
			snprintf(err, errlen, "%s has no workers to stop",
			         t->group ? t->group : "?");
			return -1;
		}
		return scale_request(out, t, "-1", t->wanted - 1, err, errlen);
	case UI_ACT_SCALE_TO: {
		char *end;
		long n = arg ? strtol(arg, &end, 10) : -1;
		if (!arg || !*arg || *end || n < 0) {
			snprintf(err, errlen, "'%s' is not a pool size", arg ? arg : "");
			return -1;
		}
		return scale_request(out, t, arg, (int)n, err, errlen);
	}
	default:
		snprintf(err, errlen, "not a command");
		return -1;
	}
}
