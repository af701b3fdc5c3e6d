/* The console's state, shared by its files: console.c (life and the event
 * loop), input.c (keys and mouse), draw.c (the main screen), overlay.c
 * (help, dialogs, menus), logpane.c, palette.c (themes on the terminal)
 * and attach.c. Nothing outside src/ui sees it. */
#ifndef DROVER_UI_CONSOLE_INTERNAL_H
#define DROVER_UI_CONSOLE_INTERNAL_H

#include <curses.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "drover/loop.h"
#include "drover/theme.h"
#include "drover/ui_backend.h"
#include "drover/ui_keys.h"
#include "drover/ui_table.h"
#include "drover/ui_view.h"

#define CONSOLE_MIN_COLS   40 /* below this: "terminal too small" */
#define CONSOLE_MIN_ROWS   12
#define CONSOLE_EVENTS_MAX 1000 /* drover's own event log kept for `L` */
#define CONSOLE_SPARK_LEN  60   /* samples of tasks/s: the last minute at 1 s */
#define CONSOLE_LOG_LINES  "200"

enum prompt_kind { PROMPT_FILTER, PROMPT_SEARCH, PROMPT_SCALE };

struct spark {
	char group[128];
	double v[CONSOLE_SPARK_LEN];
	int head, count;
	uint64_t last; /* loop_now() of the last sample */
};

struct console_event {
	char *text; /* "12:03:04 state worker=... from=... to=..." */
	int level;  /* enum event_level */
};

struct console {
	struct loop *loop;
	struct ui_backend be;
	struct supervisor *sup; /* in-process, else NULL */
	const char *config;     /* for theme search and the header */
	SCREEN *screen;
	bool open; /* the terminal is in curses mode */
	bool utf8, color;
	int rows, cols;

	struct loop_watch input;
	int sigfd;
	struct loop_watch sigwatch;
	sigset_t blocked; /* what we blocked for the signalfd, to undo */
	struct loop_timer tick, soon;
	double refresh;
	bool want_data, want_draw, urgent;
	uint64_t last_frame;
	int frames_left;
	FILE *frame_log;
	bool done;          /* leave: attach's loop stops, in-process closes */
	int exit_code;      /* attach */
	char farewell[256]; /* printed after the screen closes */
	char closing[64];   /* in-process: drover is shutting down for this */

	/* what is shown */
	struct ui_snapshot snap;
	bool have_snap;
	char snap_err[256];
	struct ui_view view;
	struct ui_line *lines;
	int nlines, lines_cap;
	int sel, top;
	char sel_name[256];
	bool sel_group;
	int name_want;
	struct ui_layout layout;
	int table_y, table_rows; /* first row line and how many fit */
	int header_y;            /* the column titles */
	int footer_x[24];        /* where each footer entry starts, for clicks */
	int footer_key[24];      /* index into ui_keys */
	int nfooter;

	/* theme */
	struct theme theme;
	attr_t attrs[THEME__COUNT];
	short pairs[THEME__COUNT];
	char **themes; /* names found, "default" first */
	int nthemes, theme_index;

	/* overlays */
	unsigned ctx; /* enum ui_ctx of the keyboard */
	enum prompt_kind prompt_kind;
	char prompt[128];
	struct ui_request pending; /* waiting for confirmation */
	bool pending_quit;
	int menu_sel;
	int help_top;

	char status[512];
	bool status_error;

	/* log pane */
	bool log_open, log_events, log_focus, log_stale;
	int log_y, log_rows; /* where the pane is drawn, for the mouse */
	int log_scroll;      /* lines up from the newest; 0 follows */
	char log_worker[256];
	char **log_lines;
	int nlog;
	char log_err[256];
	struct console_event events[CONSOLE_EVENTS_MAX];
	int ev_head, ev_count;

	struct spark *sparks;
	int nsparks;
};

/* console.c */
void console_request_data(struct console *c); /* fetch a new snapshot, redraw */
void console_request_draw(struct console *c); /* redraw from what is held */
void console_status(struct console *c, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void console_rebuild_lines(struct console *c);
void console_quit(struct console *c); /* in-process: after confirmation */
/* Open curses on the terminal, watch stdin and SIGWINCH on c->loop. */
int console_open(struct console *c, const char *theme, char *err, size_t errlen);
void console_close(struct console *c);
/* attach.c's console: its own loop, over the socket at path. Returns the
 * exit code. */
int console_attached_run(struct loop *loop, const char *path, const char *config, const char *theme,
                         double refresh, int frames);

/* input.c */
void console_input(struct loop *loop, struct loop_watch *w, uint32_t events);
/* The selection as a target for a steering key. */
void console_target(struct console *c, struct ui_target *t);
void console_run(struct console *c, const struct ui_request *r);

/* draw.c */
void console_draw(struct console *c);
void console_put(struct console *c, int y, int x, int width, enum theme_role role, const char *text,
                 bool right);
void console_fill(struct console *c, int y, int x, int width, enum theme_role role);

/* overlay.c */
void overlay_draw(struct console *c);
int overlay_help_lines(struct console *c); /* how many lines the help has */
extern const char *const overlay_signals[];
extern const int overlay_nsignals;

/* logpane.c */
void logpane_event(struct console *c, json_t *ev);
/* "18:27:18 state    worker=squarer_01 from=STARTING to=RUNNING" */
void logpane_event_text(json_t *ev, char *line, size_t len);
void logpane_fetch(struct console *c); /* the selected worker's lines, if the pane wants them */
void logpane_draw(struct console *c, int y, int rows);
void logpane_free(struct console *c);

/* palette.c */
void palette_find_themes(struct console *c);
/* Load a theme by name (or path) and apply it; on error the default is
 * used and the error goes to the status line. */
bool palette_use(struct console *c, const char *name);
void palette_next(struct console *c);
void palette_free(struct console *c);
static inline attr_t role_attr(const struct console *c, enum theme_role r)
{
	return c->attrs[r];
}

#endif
