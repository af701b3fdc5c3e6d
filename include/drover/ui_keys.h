/* The console's one key table: dispatch, the footer and the help screen are
 * all read from it, so they cannot drift. And the pure half of acting on a
 * key: which command of the shared vocabulary it becomes, on what target,
 * and whether it needs confirming. */
#ifndef DROVER_UI_KEYS_H
#define DROVER_UI_KEYS_H

#include <stdbool.h>
#include <stddef.h>

/* Where the keyboard is: a bit each, so one entry can serve several. */
enum ui_ctx {
	UI_CTX_TABLE = 1 << 0,
	UI_CTX_LOG = 1 << 1, /* the log pane has the focus; other keys fall to TABLE */
	UI_CTX_PROMPT = 1 << 2,
	UI_CTX_CONFIRM = 1 << 3,
	UI_CTX_MENU = 1 << 4,
	UI_CTX_HELP = 1 << 5,
};

enum ui_action {
	UI_ACT_NONE,
	/* moving */
	UI_ACT_UP,
	UI_ACT_DOWN,
	UI_ACT_PGUP,
	UI_ACT_PGDN,
	UI_ACT_HOME,
	UI_ACT_END,
	/* looking */
	UI_ACT_HELP,
	UI_ACT_THEME,
	UI_ACT_SEARCH,
	UI_ACT_FILTER,
	UI_ACT_FOLD_ALL,
	UI_ACT_FOLD,
	UI_ACT_UNFOLD,
	UI_ACT_SORT_NEXT,
	UI_ACT_SORT_PREV,
	UI_ACT_SORT_INVERT,
	UI_ACT_TAG,
	UI_ACT_UNTAG_ALL,
	UI_ACT_LOG,
	UI_ACT_ENTER,
	UI_ACT_EVENTS,
	UI_ACT_FOCUS,
	UI_ACT_CLEAR,
	UI_ACT_REDRAW,
	/* steering: these become commands */
	UI_ACT_PAUSE,
	UI_ACT_TERM,
	UI_ACT_KILL,
	UI_ACT_RESTART,
	UI_ACT_START,
	UI_ACT_GROW,
	UI_ACT_SHRINK,
	UI_ACT_SCALE_TO,
	UI_ACT_RELOAD,
	UI_ACT_QUIT,
	/* answers in prompts, menus and dialogs */
	UI_ACT_ACCEPT,
	UI_ACT_CANCEL,
};

#define UI_KEY_ESC     27
#define UI_KEY_ENTER   '\n'
#define UI_KEY_TAB     '\t'
#define UI_KEY_CTRL(c) ((c)&0x1f)

struct ui_key {
	unsigned ctx;      /* enum ui_ctx bits */
	int keys[3];       /* the first is the one the footer shows; 0 ends */
	const char *label; /* footer label, NULL = help screen only */
	enum ui_action action;
	const char *help;
};

extern const struct ui_key ui_keys[];
extern const size_t ui_nkeys;

/* What a key does where the keyboard is (UI_ACT_NONE: nothing). In the log
 * pane, keys the pane does not take act on the table. */
enum ui_action ui_key_action(unsigned ctx, int key);
/* "F9", "k", "Space", "Enter", "Up", "^L" ... */
const char *ui_key_name(int key, char *buf, size_t len);

/* What the selection is when a steering key is pressed. */
enum ui_target_kind {
	UI_TARGET_NONE,
	UI_TARGET_WORKER,
	UI_TARGET_GROUP,  /* a group row, or a folded group */
	UI_TARGET_TAGGED, /* the tagged workers (one request each) */
};

struct ui_target {
	enum ui_target_kind kind;
	const char *name;  /* the worker or group */
	const char *group; /* the group the selection is in (scaling) */
	const char *state; /* a worker's state */
	int count;         /* workers covered */
	int paused;        /* of which PAUSED */
	int wanted;        /* the group's size now */
};

struct ui_request {
	const char *cmd;  /* a name from command_table */
	char target[256]; /* "" for TAGGED: the caller sends one per worker */
	char arg[32];
	bool each_tagged; /* send once per tagged worker, with its name as target */
	bool confirm;     /* destructive on many: ask first */
	char question[256];
};

/* The command a steering action becomes. arg: the signal for KILL ("TERM",
 * "9"), the size for SCALE_TO. Returns 0, or -1 with a sentence in err
 * (nothing selected, a number that is not one, ...). */
int ui_action_request(enum ui_action a, const struct ui_target *t, const char *arg,
                      struct ui_request *out, char *err, size_t errlen);

#endif
