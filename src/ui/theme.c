/* Theme parsing and role resolution: no I/O, no curses. */
#include "drover/theme.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const role_names[THEME__COUNT] = {
#define THEME_NAME(id, name) name,
    THEME_ROLES(THEME_NAME)
#undef THEME_NAME
};

/* The built-in default, in the file format itself so that there is one
 * format. Roles left out fall back to their parent (log.info -> log ->
 * default), and "-" takes the parent's colour, so `default = ... #002b36`
 * in a theme file gives every role that background. */
static const char default_text[] = "default = default default\n"
                                   "header.title = cyan - bold\n"
                                   "header.label = cyan -\n"
                                   "header.value = - - bold\n"
                                   "group.name = - - bold\n"
                                   "meter.low = green -\n"
                                   "meter.mid = yellow -\n"
                                   "meter.high = red - bold\n"
                                   "spark = cyan -\n"
                                   "table.header = black green\n"
                                   "table.header.sorted = black cyan bold\n"
                                   "row.group = - - bold\n"
                                   "row.selected = black cyan\n"
                                   "row.tagged = yellow - bold\n"
                                   "row.dim = - - dim\n"
                                   "state.stopped = - - dim\n"
                                   "state.starting = cyan -\n"
                                   "state.running = green -\n"
                                   "state.backoff = yellow - bold\n"
                                   "state.stopping = yellow -\n"
                                   "state.exited = magenta -\n"
                                   "state.fatal = red - bold\n"
                                   "state.paused = blue - bold\n"
                                   "log.title = black green\n"
                                   "log.debug = - - dim\n"
                                   "log.warn = yellow -\n"
                                   "log.error = red - bold\n"
                                   "footer.key = - - bold\n"
                                   "footer.label = black cyan\n"
                                   "status.ok = green -\n"
                                   "status.error = red - bold\n"
                                   "dialog = white blue\n"
                                   "dialog.title = yellow - bold\n"
                                   "dialog.selected = black cyan\n"
                                   "prompt = black cyan\n";

static const char *const color_names[16] = {
    "black",      "red",           "green",       "yellow",      "blue",        "magenta",
    "cyan",       "white",         "brightblack", "brightred",   "brightgreen", "brightyellow",
    "brightblue", "brightmagenta", "brightcyan",  "brightwhite",
};

/* xterm's values for the 16 basic colours, for nearest-colour matching. */
static const unsigned basic_rgb[16] = {
    0x000000, 0xcd0000, 0x00cd00, 0xcdcd00, 0x0000ee, 0xcd00cd, 0x00cdcd, 0xe5e5e5,
    0x7f7f7f, 0xff0000, 0x00ff00, 0xffff00, 0x5c5cff, 0xff00ff, 0x00ffff, 0xffffff,
};

static const struct {
	const char *name;
	unsigned bit;
} attr_names[] = {
    {"bold", THEME_BOLD},
    {"dim", THEME_DIM},
    {"underline", THEME_UNDERLINE},
    {"reverse", THEME_REVERSE},
    {"italic", THEME_ITALIC},
    {"blink", THEME_BLINK},
    {"normal", 0},
    {"none", 0},
};

const char *theme_role_name(enum theme_role role)
{
	return role >= 0 && role < THEME__COUNT ? role_names[role] : "?";
}

int theme_role_lookup(const char *name)
{
	for (int i = 0; i < THEME__COUNT; i++)
		if (!strcmp(role_names[i], name))
			return i;
	return -1;
}

enum theme_role theme_role_parent(enum theme_role role)
{
	const char *name = theme_role_name(role);
	const char *dot = strrchr(name, '.');
	if (!dot)
		return THEME_DEFAULT;
	char parent[64];
	snprintf(parent, sizeof(parent), "%.*s", (int)(dot - name), name);
	int p = theme_role_lookup(parent);
	return p < 0 ? THEME_DEFAULT : (enum theme_role)p;
}

static bool parse_color(const char *s, int *out)
{
	if (!strcmp(s, "-")) {
		*out = THEME_COLOR_INHERIT;
		return true;
	}
	if (!strcasecmp(s, "default")) {
		*out = THEME_COLOR_DEFAULT;
		return true;
	}
	if (!strcasecmp(s, "gray") || !strcasecmp(s, "grey")) {
		*out = 8;
		return true;
	}
	for (int i = 0; i < 16; i++)
		if (!strcasecmp(s, color_names[i])) {
			*out = i;
			return true;
		}
	char *end;
	if (s[0] == '#' && strlen(s) == 7) {
		unsigned long v = strtoul(s + 1, &end, 16);
		if (*end || !isxdigit((unsigned char)s[1]))
			return false;
		*out = THEME_COLOR_RGB | (int)v;
		return true;
	}
	if (isdigit((unsigned char)s[0])) {
		long v = strtol(s, &end, 10);
		if (*end || v < 0 || v > 255)
			return false;
		*out = (int)v;
		return true;
	}
	return false;
}

static bool parse_attr(const char *s, unsigned *attrs)
{
	for (size_t i = 0; i < sizeof(attr_names) / sizeof(attr_names[0]); i++)
		if (!strcasecmp(s, attr_names[i].name)) {
			*attrs |= attr_names[i].bit;
			return true;
		}
	return false;
}

static void basename_of(const char *file, char *out, size_t len)
{
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	size_t n = strlen(base);
	if (n > 6 && !strcmp(base + n - 6, ".theme"))
		n -= 6;
	snprintf(out, len, "%.*s", (int)n, base);
}

/* One line: "role = fg bg [attrs]". Returns 0, or -1 with the error (no
 * file:line prefix) in err. */
static int parse_line(char *line, struct theme *t, char *err, size_t errlen)
{
	char *eq = strchr(line, '=');
	if (!eq) {
		snprintf(err, errlen, "expected 'role = fg bg [attrs]'");
		return -1;
	}
	*eq = '\0';
	char *role = strtok(line, " \t");
	if (!role || strtok(NULL, " \t")) {
		snprintf(err, errlen, "expected one role name before '='");
		return -1;
	}
	int r = theme_role_lookup(role);
	if (r < 0) {
		snprintf(err, errlen, "role '%s': unknown role", role);
		return -1;
	}
	struct theme_style st = {.set = true};
	char *words[2] = {strtok(eq + 1, " \t,"), NULL};
	words[1] = words[0] ? strtok(NULL, " \t,") : NULL;
	if (!words[1]) {
		snprintf(err, errlen, "role '%s': expected a foreground and a background colour",
		         role);
		return -1;
	}
	int *colors[2] = {&st.fg, &st.bg};
	for (int i = 0; i < 2; i++)
		if (!parse_color(words[i], colors[i])) {
			snprintf(err, errlen,
			         "role '%s': unknown colour '%s' (a name, 0-255, #rrggbb, "
			         "default or -)",
			         role, words[i]);
			return -1;
		}
	for (char *a; (a = strtok(NULL, " \t,"));)
		if (!parse_attr(a, &st.attrs)) {
			snprintf(err, errlen,
			         "role '%s': unknown attribute '%s' (bold dim underline reverse "
			         "italic blink)",
			         role, a);
			return -1;
		}
	t->styles[r] = st;
	return 0;
}

/* Comments: a line starting with '#' or ';', or the rest of a line from
 * ';' or from a '#' followed by a blank ('#' followed by a hex digit is
 * a colour). CR of CRLF files goes too. */
static void strip_comment(char *s)
{
	if (*s == '#') {
		*s = '\0';
		return;
	}
	for (char *p = s; *p; p++)
		if (*p == ';' || *p == '\r' ||
		    (*p == '#' && (!p[1] || isspace((unsigned char)p[1])))) {
			*p = '\0';
			return;
		}
}

static int parse_into(const char *file, const char *text, struct theme *t, char *err, size_t errlen)
{
	int lineno = 0;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		lineno++;
		char line[512], why[384];
		snprintf(line, sizeof(line), "%.*s", (int)len, p);
		p += len + (nl ? 1 : 0);
		char *s = line + strspn(line, " \t\r");
		strip_comment(s);
		if (!*s || strspn(s, " \t") == strlen(s))
			continue;
		if (parse_line(s, t, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%d: %s", file, lineno, why);
			return -1;
		}
	}
	return 0;
}

void theme_default(struct theme *t)
{
	char err[64];
	memset(t, 0, sizeof(*t));
	if (parse_into("built-in", default_text, t, err, sizeof(err)) < 0)
		abort(); /* the built-in text is broken: a bug, caught by the tests */
	snprintf(t->name, sizeof(t->name), "default");
}

int theme_parse(const char *file, const char *text, struct theme *t, char *err, size_t errlen)
{
	theme_default(t);
	if (parse_into(file, text, t, err, errlen) < 0) {
		theme_default(t);
		return -1;
	}
	basename_of(file, t->name, sizeof(t->name));
	return 0;
}

struct theme_style theme_resolve(const struct theme *t, enum theme_role role)
{
	struct theme_style st = t->styles[role];
	if (!st.set) {
		if (role == THEME_DEFAULT)
			return (struct theme_style){true, THEME_COLOR_DEFAULT, THEME_COLOR_DEFAULT,
			                            0};
		return theme_resolve(t, theme_role_parent(role));
	}
	if (st.fg == THEME_COLOR_INHERIT || st.bg == THEME_COLOR_INHERIT) {
		struct theme_style parent =
		    role == THEME_DEFAULT
		        ? (struct theme_style){true, THEME_COLOR_DEFAULT, THEME_COLOR_DEFAULT, 0}
		        : theme_resolve(t, theme_role_parent(role));
		if (st.fg == THEME_COLOR_INHERIT)
			st.fg = parent.fg;
		if (st.bg == THEME_COLOR_INHERIT)
			st.bg = parent.bg;
	}
	return st;
}

unsigned theme_mono_attrs(enum theme_role role)
{
	switch (role) {
	case THEME_HEADER_TITLE:
	case THEME_HEADER_VALUE:
	case THEME_GROUP_NAME:
	case THEME_ROW_GROUP:
	case THEME_METER_HIGH:
	case THEME_STATE_FATAL:
	case THEME_STATE_BACKOFF:
	case THEME_LOG_ERROR:
	case THEME_STATUS_ERROR:
	case THEME_DIALOG_TITLE:
	case THEME_FOOTER_KEY:
		return THEME_BOLD;
	case THEME_ROW_TAGGED:
		return THEME_BOLD | THEME_UNDERLINE;
	case THEME_TABLE_HEADER:
	case THEME_ROW_SELECTED:
	case THEME_LOG_TITLE:
	case THEME_FOOTER_LABEL:
	case THEME_DIALOG_SELECTED:
	case THEME_PROMPT:
		return THEME_REVERSE;
	case THEME_TABLE_HEADER_SORTED:
		return THEME_REVERSE | THEME_BOLD;
	case THEME_ROW_DIM:
	case THEME_STATE_STOPPED:
	case THEME_LOG_DEBUG:
		return THEME_DIM;
	default:
		return 0;
	}
}

static unsigned long dist2(unsigned a, unsigned b)
{
	long dr = (long)(a >> 16 & 0xff) - (long)(b >> 16 & 0xff);
	long dg = (long)(a >> 8 & 0xff) - (long)(b >> 8 & 0xff);
	long db = (long)(a & 0xff) - (long)(b & 0xff);
	return (unsigned long)(dr * dr + dg * dg + db * db);
}

static const unsigned cube_levels[6] = {0, 95, 135, 175, 215, 255};

static unsigned rgb_of_index(int i)
{
	if (i < 16)
		return basic_rgb[i];
	if (i < 232) {
		int n = i - 16;
		return cube_levels[n / 36] << 16 | cube_levels[n / 6 % 6] << 8 | cube_levels[n % 6];
	}
	unsigned g = 8 + 10 * (unsigned)(i - 232);
	return g << 16 | g << 8 | g;
}

int theme_nearest_256(unsigned rgb)
{
	/* 16-255 only: the first 16 are whatever the user's palette says */
	int best = 16;
	unsigned long best_d = (unsigned long)-1;
	for (int i = 16; i < 256; i++) {
		unsigned long d = dist2(rgb, rgb_of_index(i));
		if (d < best_d) {
			best_d = d;
			best = i;
		}
	}
	return best;
}

static int nearest_basic(unsigned rgb, int n)
{
	int best = 0;
	unsigned long best_d = (unsigned long)-1;
	for (int i = 0; i < n; i++) {
		unsigned long d = dist2(rgb, basic_rgb[i]);
		if (d < best_d) {
			best_d = d;
			best = i;
		}
	}
	return best;
}

int theme_fit_color(int color, int ncolors)
{
	if (color < 0)
		return color;
	bool rgb = color & THEME_COLOR_RGB;
	unsigned value = (unsigned)color & 0xffffff;
	if (ncolors >= 0x1000000) {
		/* direct colour: 0-7 are still the ANSI colours, the rest is RGB */
		if (rgb)
			return value < 8 ? 8 : (int)value;
		return color < 8 ? color : (int)rgb_of_index(color);
	}
	if (!rgb && color < ncolors)
		return color;
	if (rgb && ncolors >= 256)
		return theme_nearest_256(value);
	return nearest_basic(rgb ? value : rgb_of_index(color), ncolors >= 16 ? 16 : 8);
}
