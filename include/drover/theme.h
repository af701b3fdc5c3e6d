/* Console colour schemes: a small text format, one `role = fg bg [attrs]`
 * per line, over a built-in default. Roles are dotted and fall back to their
 * parent (state.fatal -> state -> default), so a theme lists only what it
 * changes. Pure: text in, styles out; curses never appears here. */
#ifndef DROVER_THEME_H
#define DROVER_THEME_H

#include <stdbool.h>
#include <stddef.h>

#define THEME_ROLES(X)                                                                             \
	X(DEFAULT, "default")                                                                      \
	X(HEADER, "header")                                                                        \
	X(HEADER_TITLE, "header.title")                                                            \
	X(HEADER_LABEL, "header.label")                                                            \
	X(HEADER_VALUE, "header.value")                                                            \
	X(GROUP, "group")                                                                          \
	X(GROUP_NAME, "group.name")                                                                \
	X(METER, "meter")                                                                          \
	X(METER_LOW, "meter.low")                                                                  \
	X(METER_MID, "meter.mid")                                                                  \
	X(METER_HIGH, "meter.high")                                                                \
	X(SPARK, "spark")                                                                          \
	X(TABLE_HEADER, "table.header")                                                            \
	X(TABLE_HEADER_SORTED, "table.header.sorted")                                              \
	X(ROW, "row")                                                                              \
	X(ROW_GROUP, "row.group")                                                                  \
	X(ROW_SELECTED, "row.selected")                                                            \
	X(ROW_TAGGED, "row.tagged")                                                                \
	X(ROW_DIM, "row.dim")                                                                      \
	X(STATE, "state")                                                                          \
	X(STATE_STOPPED, "state.stopped")                                                          \
	X(STATE_STARTING, "state.starting")                                                        \
	X(STATE_RUNNING, "state.running")                                                          \
	X(STATE_BACKOFF, "state.backoff")                                                          \
	X(STATE_STOPPING, "state.stopping")                                                        \
	X(STATE_EXITED, "state.exited")                                                            \
	X(STATE_FATAL, "state.fatal")                                                              \
	X(STATE_PAUSED, "state.paused")                                                            \
	X(LOG, "log")                                                                              \
	X(LOG_TITLE, "log.title")                                                                  \
	X(LOG_DEBUG, "log.debug")                                                                  \
	X(LOG_INFO, "log.info")                                                                    \
	X(LOG_WARN, "log.warn")                                                                    \
	X(LOG_ERROR, "log.error")                                                                  \
	X(FOOTER, "footer")                                                                        \
	X(FOOTER_KEY, "footer.key")                                                                \
	X(FOOTER_LABEL, "footer.label")                                                            \
	X(STATUS, "status")                                                                        \
	X(STATUS_OK, "status.ok")                                                                  \
	X(STATUS_ERROR, "status.error")                                                            \
	X(DIALOG, "dialog")                                                                        \
	X(DIALOG_TITLE, "dialog.title")                                                            \
	X(DIALOG_SELECTED, "dialog.selected")                                                      \
	X(PROMPT, "prompt")

enum theme_role {
#define THEME_ENUM(id, name) THEME_##id,
	THEME_ROLES(THEME_ENUM)
#undef THEME_ENUM
	    THEME__COUNT
};

/* Colours: the terminal's own, an index 0-255, or 24-bit #rrggbb. */
#define THEME_COLOR_DEFAULT (-1)
#define THEME_COLOR_INHERIT (-2)      /* "-": the parent role's colour */
#define THEME_COLOR_RGB     0x1000000 /* flag; the low 24 bits are 0xrrggbb */

enum theme_attr {
	THEME_BOLD = 1 << 0,
	THEME_DIM = 1 << 1,
	THEME_UNDERLINE = 1 << 2,
	THEME_REVERSE = 1 << 3,
	THEME_ITALIC = 1 << 4,
	THEME_BLINK = 1 << 5,
};

struct theme_style {
	bool set; /* written by the built-in default or the theme file */
	int fg, bg;
	unsigned attrs;
};

struct theme {
	char name[64];
	struct theme_style styles[THEME__COUNT];
};

const char *theme_role_name(enum theme_role role);
/* The role named, or -1. */
int theme_role_lookup(const char *name);
/* The role a dotted role falls back to; DEFAULT for top-level roles. */
enum theme_role theme_role_parent(enum theme_role role);

/* The built-in default, named "default". */
void theme_default(struct theme *t);

/* Parse a .theme file's text over the built-in default. Returns 0, or -1
 * with "FILE:LINE: role 'x': what is wrong" in err, leaving t the plain
 * default. `file` names the text in messages; the theme is named after its
 * base name without ".theme". */
int theme_parse(const char *file, const char *text, struct theme *t, char *err, size_t errlen);

/* The style a role is drawn with: its own where set, the rest from its
 * parents; never INHERIT. */
struct theme_style theme_resolve(const struct theme *t, enum theme_role role);

/* Attributes a role needs when there is no colour at all (NO_COLOR, a
 * monochrome terminal), so that selection, headers and grave states still
 * stand out: state is always text too. */
unsigned theme_mono_attrs(enum theme_role role);

/* The xterm-256 index nearest to 0xrrggbb (colour cube and grey ramp). */
int theme_nearest_256(unsigned rgb);
/* A colour (index or RGB flag) on a terminal with ncolors colours (8, 16,
 * 88, 256): itself when it fits, else the nearest of the basic palette. */
int theme_fit_color(int color, int ncolors);

#endif
