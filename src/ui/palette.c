/* Themes on the terminal: finding *.theme files, loading one, and turning
 * its roles into curses attributes and colour pairs for what the terminal
 * can do (direct colour, 256, 16 or 8 colours, or none at all). */
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console_internal.h"

#define THEME_FILE_MAX (256 * 1024)
#define THEME_DIRS_MAX 8

/* Where themes live, most personal first: $DROVER_THEMES, the user's
 * config, beside the supervisor config, beside the binary (a build tree
 * or an install prefix), then the system. */
static int theme_dirs(const struct console *c, char dirs[][PATH_MAX])
{
	int n = 0;
	const char *env = getenv("DROVER_THEMES");
	if (env && *env)
		snprintf(dirs[n++], PATH_MAX, "%s", env);
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	if (xdg && *xdg)
		snprintf(dirs[n++], PATH_MAX, "%s/drover/themes", xdg);
	else if (home && *home)
		snprintf(dirs[n++], PATH_MAX, "%s/.config/drover/themes", home);
	if (c->config) {
		char copy[PATH_MAX];
		snprintf(copy, sizeof(copy), "%s", c->config);
		snprintf(dirs[n++], PATH_MAX, "%s/themes", dirname(copy));
	}
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len > 0) {
		exe[len] = '\0';
		char *dir = dirname(exe);
		snprintf(dirs[n++], PATH_MAX, "%s/../themes", dir);
		snprintf(dirs[n++], PATH_MAX, "%s/../share/drover/themes", dir);
	}
	snprintf(dirs[n++], PATH_MAX, "/usr/share/drover/themes");
	return n;
}

static bool known(const struct console *c, const char *name)
{
	for (int i = 0; i < c->nthemes; i++)
		if (!strcmp(c->themes[i], name))
			return true;
	return false;
}

static void add_name(struct console *c, const char *name)
{
	if (known(c, name))
		return;
	char **grown = realloc(c->themes, (size_t)(c->nthemes + 1) * sizeof(*grown));
	if (!grown)
		return;
	c->themes = grown;
	if ((c->themes[c->nthemes] = strdup(name)))
		c->nthemes++;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void palette_find_themes(struct console *c)
{
	char dirs[THEME_DIRS_MAX][PATH_MAX];
	int nd = theme_dirs(c, dirs);
	add_name(c, "default");
	for (int i = 0; i < nd; i++) {
		DIR *d = opendir(dirs[i]);
		if (!d)
			continue;
		for (struct dirent *e; (e = readdir(d));) {
			size_t n = strlen(e->d_name);
			if (n > 6 && !strcmp(e->d_name + n - 6, ".theme") && e->d_name[0] != '.') {
				char name[256];
				snprintf(name, sizeof(name), "%.*s", (int)(n - 6), e->d_name);
				add_name(c, name);
			}
		}
		closedir(d);
	}
	if (c->nthemes > 1)
		qsort(c->themes + 1, (size_t)c->nthemes - 1, sizeof(*c->themes), by_name);
}

void palette_free(struct console *c)
{
	for (int i = 0; i < c->nthemes; i++)
		free(c->themes[i]);
	free(c->themes);
	c->themes = NULL;
	c->nthemes = 0;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = malloc(THEME_FILE_MAX + 1);
	size_t n = buf ? fread(buf, 1, THEME_FILE_MAX, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

/* The file of a theme name (or a path given as the name), or NULL. */
static char *theme_text(const struct console *c, const char *name, char *path, size_t plen)
{
	if (strchr(name, '/')) {
		snprintf(path, plen, "%s", name);
		return read_file(path);
	}
	char dirs[THEME_DIRS_MAX][PATH_MAX];
	int nd = theme_dirs(c, dirs);
	for (int i = 0; i < nd; i++) {
		int n = snprintf(path, plen, "%s/%s.theme", dirs[i], name);
		if (n < 0 || (size_t)n >= plen)
			continue; /* a path that long names no file of ours */
		char *text = read_file(path);
		if (text)
			return text;
	}
	return NULL;
}

static attr_t curses_attrs(unsigned a)
{
	attr_t out = A_NORMAL;
	if (a & THEME_BOLD)
		out |= A_BOLD;
	if (a & THEME_DIM)
		out |= A_DIM;
	if (a & THEME_UNDERLINE)
		out |= A_UNDERLINE;
	if (a & THEME_REVERSE)
		out |= A_REVERSE;
	if (a & THEME_ITALIC)
		out |= A_ITALIC;
	if (a & THEME_BLINK)
		out |= A_BLINK;
	return out;
}

static void apply(struct console *c)
{
	for (int r = 0; r < THEME__COUNT; r++) {
		struct theme_style st = theme_resolve(&c->theme, (enum theme_role)r);
		if (!c->color || r + 1 >= COLOR_PAIRS) {
			c->pairs[r] = 0;
			c->attrs[r] = curses_attrs(st.attrs | theme_mono_attrs((enum theme_role)r));
			continue;
		}
		int fg = theme_fit_color(st.fg, COLORS), bg = theme_fit_color(st.bg, COLORS);
		init_extended_pair(r + 1, fg, bg);
		c->pairs[r] = (short)(r + 1);
		c->attrs[r] = curses_attrs(st.attrs);
	}
	/* what erase() fills with: the theme's background, not the terminal's */
	cchar_t blank;
	setcchar(&blank, L" ", c->attrs[THEME_DEFAULT], c->pairs[THEME_DEFAULT], NULL);
	if (c->open) {
		wbkgrndset(stdscr, &blank);
		clearok(curscr, TRUE);
	}
}

bool palette_use(struct console *c, const char *name)
{
	char path[PATH_MAX], err[512];
	char *text = theme_text(c, name, path, sizeof(path));
	bool ok = true;
	if (!text) {
		theme_default(&c->theme);
		ok = !strcmp(name, "default");
		if (!ok)
			console_status(c, true, "theme '%s' not found; using the default", name);
	} else if (theme_parse(path, text, &c->theme, err, sizeof(err)) < 0) {
		console_status(c, true, "%s; using the default theme", err);
		ok = false;
	} else if (!strchr(name, '/')) {
		snprintf(c->theme.name, sizeof(c->theme.name), "%s", name);
	}
	free(text);
	for (int i = 0; ok && i < c->nthemes; i++)
		if (!strcmp(c->themes[i], c->theme.name))
			c->theme_index = i;
	apply(c);
	return ok;
}

void palette_next(struct console *c)
{
	if (!c->nthemes)
		return;
	c->theme_index = (c->theme_index + 1) % c->nthemes;
	if (palette_use(c, c->themes[c->theme_index]))
		console_status(c, false, "theme %s", c->theme.name);
}
