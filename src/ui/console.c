/* The console's life inside an event loop: curses on the terminal, stdin
 * and SIGWINCH as two more fds, a refresh timer, and one frame drawn in a
 * before-sleep hook only when something changed. In-process it lives in
 * drover's own loop; `drover attach` gives it a loop of its own. */
#include "drover/console.h"

#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "console_internal.h"
#include "drover/control.h"
#include "drover/supervisor.h"

/* Events can come in thousands a second (a pool of 1000 starting): frames
 * they cause are at least this far apart. Keys draw at once. */
#define MIN_FRAME_NS (LOOP_NS_PER_SEC / 20)

static struct console_options local_opts;
static struct console *local_console;

void console_configure(const struct console_options *opts)
{
	local_opts = *opts;
}

void console_status(struct console *c, bool error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->status, sizeof(c->status), fmt, ap);
	va_end(ap);
	c->status_error = error;
	console_request_draw(c);
}

void console_request_data(struct console *c)
{
	c->want_data = true;
	c->urgent = true;
}

void console_request_draw(struct console *c)
{
	c->want_draw = true;
	c->urgent = true;
}

/* ---- the picture ---- */

static void spark_sample(struct console *c, const struct ui_group *g, uint64_t now)
{
	struct spark *s = NULL;
	for (int i = 0; i < c->nsparks && !s; i++)
		if (!strcmp(c->sparks[i].group, g->name))
			s = &c->sparks[i];
	if (!s) {
		struct spark *grown = realloc(c->sparks, (size_t)(c->nsparks + 1) * sizeof(*grown));
		if (!grown)
			return;
		c->sparks = grown;
		s = &c->sparks[c->nsparks++];
		memset(s, 0, sizeof(*s));
		snprintf(s->group, sizeof(s->group), "%s", g->name);
	}
	if (s->count && now - s->last < LOOP_NS_PER_SEC)
		return;
	s->last = now;
	s->v[s->head] = isnan(g->rate) ? 0 : g->rate;
	s->head = (s->head + 1) % CONSOLE_SPARK_LEN;
	if (s->count < CONSOLE_SPARK_LEN)
		s->count++;
}

static void fetch_snapshot(struct console *c)
{
	json_t *reply = ui_backend_request(&c->be, "status", NULL, NULL);
	struct ui_snapshot next;
	if (ui_snapshot_parse(reply, &next, c->snap_err, sizeof(c->snap_err)) == 0) {
		if (c->have_snap)
			ui_snapshot_free(&c->snap);
		c->snap = next;
		c->have_snap = true;
		c->snap_err[0] = '\0';
		uint64_t now = loop_now();
		for (int i = 0; i < c->snap.ngroups; i++)
			if (c->snap.groups[i].has_queue)
				spark_sample(c, &c->snap.groups[i], now);
	}
	json_decref(reply);
}

/* Lines from the snapshot and the view, keeping the selection on the same
 * group or worker across refreshes, sorts and filters. */
void console_rebuild_lines(struct console *c)
{
	if (!c->have_snap) {
		c->nlines = 0;
		return;
	}
	int need = c->snap.ngroups + c->snap.nworkers;
	if (need > c->lines_cap) {
		struct ui_line *grown = realloc(c->lines, (size_t)need * sizeof(*grown));
		if (!grown)
			return;
		c->lines = grown;
		c->lines_cap = need;
	}
	c->nlines = ui_view_lines(&c->snap, &c->view, c->lines);
	int want = 10;
	for (int i = 0; i < c->snap.nworkers; i++) {
		int n = (int)strlen(c->snap.workers[i].name);
		want = n > want ? n : want;
	}
	c->name_want = want > 32 ? 32 : want;
	int found = -1;
	for (int i = 0; i < c->nlines && found < 0 && c->sel_name[0]; i++) {
		const struct ui_line *l = &c->lines[i];
		const char *name =
		    l->group ? c->snap.groups[l->index].name : c->snap.workers[l->index].name;
		if (l->group == c->sel_group && !strcmp(name, c->sel_name))
			found = i;
	}
	if (found >= 0)
		c->sel = found;
	if (c->sel >= c->nlines)
		c->sel = c->nlines - 1;
	if (c->sel < 0)
		c->sel = 0;
	if (c->nlines) {
		const struct ui_line *l = &c->lines[c->sel];
		c->sel_group = l->group;
		snprintf(c->sel_name, sizeof(c->sel_name), "%s",
		         l->group ? c->snap.groups[l->index].name : c->snap.workers[l->index].name);
	}
}

static void frame(struct console *c)
{
	uint64_t t0 = loop_now();
	if (c->want_data || !c->have_snap)
		fetch_snapshot(c);
	uint64_t t_fetch = loop_now();
	console_rebuild_lines(c);
	if (c->log_open && !c->log_events && (c->want_data || c->log_stale))
		logpane_fetch(c);
	uint64_t t_lines = loop_now();
	console_draw(c);
	doupdate();
	uint64_t t1 = loop_now();
	if (c->frame_log) {
		/* total, then its parts: the status request and reading it, the
		 * lines (sort, filter, log pane), drawing and sending */
		fprintf(c->frame_log, "%.3f %.3f %.3f %.3f\n", (double)(t1 - t0) / 1e6,
		        (double)(t_fetch - t0) / 1e6, (double)(t_lines - t_fetch) / 1e6,
		        (double)(t1 - t_lines) / 1e6);
		fflush(c->frame_log);
	}
	c->last_frame = t1;
	c->want_data = c->want_draw = c->urgent = false;
	if (c->frames_left > 0 && --c->frames_left == 0) {
		if (c->sup)
			console_quit(c);
		else
			c->done = true;
	} else if (c->frames_left > 0) {
		/* smoke/bench: the next frame on the next loop turn */
		c->want_data = c->urgent = true;
		loop_timer_arm(c->loop, &c->soon, t1);
	}
}

/* ---- loop plumbing ---- */

static void tick_fired(struct loop *loop, struct loop_timer *t)
{
	struct console *c = t->arg;
	c->want_data = true;
	uint64_t next = t->deadline + loop_secs(c->refresh), now = loop_now();
	loop_timer_arm(loop, t, next > now ? next : now + loop_secs(c->refresh));
}

static void soon_fired(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	(void)t; /* the wake-up is the point: the hook draws */
}

static int live_workers(const struct console *c)
{
	int n = 0;
	for (int i = 0; c->have_snap && i < c->snap.nworkers; i++)
		n += c->snap.workers[i].pid > 0;
	return n;
}

static void hook(struct loop *loop, void *arg)
{
	struct console *c = arg;
	if (!c->open)
		return;
	if (c->sup && c->closing[0]) {
		int n = live_workers(c);
		snprintf(c->farewell, sizeof(c->farewell),
		         "drover: shutting down (%s): stopping %d worker%s", c->closing, n,
		         n == 1 ? "" : "s");
		console_close(c);
		return;
	}
	if (c->done) {
		loop->stop = true;
		return;
	}
	if (!c->want_data && !c->want_draw && c->have_snap)
		return;
	uint64_t now = loop_now();
	if (!c->urgent && c->last_frame && now - c->last_frame < MIN_FRAME_NS) {
		if (!loop_timer_armed(&c->soon))
			loop_timer_arm(loop, &c->soon, c->last_frame + MIN_FRAME_NS);
		return;
	}
	frame(c);
	if (c->done && !c->sup)
		loop->stop = true;
}

static void signals_readable(struct loop *loop, struct loop_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	struct console *c = w->arg;
	struct signalfd_siginfo si;
	bool resized = false;
	while (read(c->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGWINCH) {
			resized = true;
		} else if (!c->done) { /* attached: INT, TERM, HUP */
			c->done = true;
			c->exit_code = 128 + (int)si.ssi_signo;
		}
	}
	if (resized && c->open) {
		struct winsize ws;
		if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
			resizeterm(ws.ws_row, ws.ws_col);
			c->rows = ws.ws_row;
			c->cols = ws.ws_col;
		}
		clearok(curscr, TRUE);
		console_request_draw(c);
	}
}

/* The event feed: drover's events, one JSON line each. */
static void on_event(void *arg, const char *line, size_t len)
{
	struct console *c = arg;
	if (!line) {
		if (!c->done) {
			c->done = true;
			c->exit_code = 1;
			snprintf(c->farewell, sizeof(c->farewell),
			         "drover attach: the connection to drover was lost");
		}
		return;
	}
	/* metrics figures come one event per worker: at 1000 workers, skip
	 * them before paying for a JSON parse (the refresh shows the figures,
	 * and in the event log they would drown everything else) */
	static const char metrics_info[] = "\"level\":\"info\",\"event\":\"metrics\"";
	if (c->open && memmem(line, len, metrics_info, sizeof(metrics_info) - 1))
		return;
	json_t *ev = json_loadb(line, len, 0, NULL);
	if (!ev)
		return;
	const char *name = json_string_value(json_object_get(ev, "event"));
	const char *worker = json_string_value(json_object_get(ev, "worker"));
	const char *level = json_string_value(json_object_get(ev, "level"));
	name = name ? name : "";
	if (!c->open) {
		/* in-process, after the screen closed: the shutdown's last words */
		char text[1024];
		logpane_event_text(ev, text, sizeof(text));
		if (!strcmp(name, "stopped"))
			printf("drover: stopped\n");
		else if (level && !strcmp(level, "error"))
			fprintf(stderr, "drover: %s\n", text);
		json_decref(ev);
		return;
	}
	if (!strcmp(name, "metrics") && level && !strcmp(level, "info")) {
		json_decref(ev); /* the same, if the JSON was spelled differently */
		return;
	}
	logpane_event(c, ev);
	bool about_log = worker && c->log_open && !c->log_events && !strcmp(worker, c->log_worker);
	if (!strcmp(name, "output")) {
		c->log_stale |= about_log; /* --tail in JSON: no new snapshot needed */
	} else {
		c->want_data = true;
		c->log_stale |= about_log;
	}
	if (c->log_open && c->log_events)
		c->want_draw = true;
	const char *reason = json_string_value(json_object_get(ev, "reason"));
	if (!strcmp(name, "shutdown")) {
		if (c->sup)
			snprintf(c->closing, sizeof(c->closing), "%s", reason ? reason : "?");
		else
			console_status(c, true, "drover is shutting down (%s)",
			               reason ? reason : "?");
	} else if (!strcmp(name, "stopped") && !c->sup) {
		c->done = true;
		snprintf(c->farewell, sizeof(c->farewell), "drover attach: drover stopped (%s)",
		         reason ? reason : "?");
	}
	json_decref(ev);
}

int console_open(struct console *c, const char *theme, char *err, size_t errlen)
{
	c->sigfd = -1;
	c->input.fd = -1;
	setlocale(LC_ALL, "");
	setlocale(LC_NUMERIC, "C"); /* configs and JSON keep their decimal point */
	c->utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	ui_view_init(&c->view);
	c->view.sort_col = UI_SORT_NONE;
	c->ctx = UI_CTX_TABLE;

	/* SIGWINCH through a signalfd: curses never sees it (and the core's
	 * loop never runs a handler); attached, quitting signals come too */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	if (!c->sup) {
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGHUP);
	}
	sigprocmask(SIG_BLOCK, &set, &old);
	sigemptyset(&c->blocked);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&set, s) == 1 && sigismember(&old, s) == 0)
			sigaddset(&c->blocked, s);
	c->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (c->sigfd < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		return -1;
	}

	c->screen = newterm(NULL, stdout, stdin);
	if (!c->screen) {
		snprintf(err, errlen, "cannot open the terminal (TERM=%s)", getenv("TERM"));
		return -1;
	}
	set_term(c->screen);
	set_escdelay(25); /* Esc alone must feel instant */
	c->open = true;
	cbreak(); /* Ctrl-C stays a signal: in-process it shuts drover down as headless */
	noecho();
	nonl();
	intrflush(stdscr, FALSE);
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	curs_set(0);
	mousemask(BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
	mouseinterval(0);
	const char *no_color = getenv("NO_COLOR");
	c->color = has_colors() && !(no_color && *no_color);
	if (c->color) {
		start_color();
		use_default_colors();
	}
	getmaxyx(stdscr, c->rows, c->cols);

	c->input = (struct loop_watch){.fd = STDIN_FILENO, .cb = console_input, .arg = c};
	c->sigwatch = (struct loop_watch){.fd = c->sigfd, .cb = signals_readable, .arg = c};
	if (loop_watch_add(c->loop, &c->input, EPOLLIN) < 0 ||
	    loop_watch_add(c->loop, &c->sigwatch, EPOLLIN) < 0) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		return -1;
	}
	palette_find_themes(c);
	palette_use(c, theme && *theme ? theme : "default");
	c->tick = (struct loop_timer){.cb = tick_fired, .arg = c};
	c->soon = (struct loop_timer){.cb = soon_fired, .arg = c};
	loop_timer_arm(c->loop, &c->tick, loop_now() + loop_secs(c->refresh));
	loop_add_hook(c->loop, hook, c);
	console_request_data(c);
	return 0;
}

void console_close(struct console *c)
{
	bool was_open = c->open;
	if (c->open) {
		erase();
		refresh();
		endwin();
		c->open = false;
	}
	if (c->screen) {
		/* before printing: curses may still hold the switch back from the
		 * alternate screen, and our line would vanish with it */
		delscreen(c->screen);
		c->screen = NULL;
	}
	if (was_open && c->farewell[0]) {
		printf("%s\n", c->farewell);
		fflush(stdout);
	}
	if (c->input.fd >= 0) {
		loop_watch_del(c->loop, &c->input);
		c->input.fd = -1;
	}
	if (c->sigfd >= 0) {
		loop_watch_del(c->loop, &c->sigwatch);
		close(c->sigfd);
		c->sigfd = -1;
		sigprocmask(SIG_UNBLOCK, &c->blocked, NULL);
	}
	loop_timer_cancel(c->loop, &c->tick);
	loop_timer_cancel(c->loop, &c->soon);
}

static void console_free(struct console *c)
{
	console_close(c);
	ui_backend_close(&c->be);
	if (c->have_snap)
		ui_snapshot_free(&c->snap);
	ui_view_free(&c->view);
	free(c->lines);
	free(c->sparks);
	logpane_free(c);
	palette_free(c);
	if (c->frame_log)
		fclose(c->frame_log);
	free(c);
}

/* In-process quit, once confirmed: drover stops everything and exits; the
 * screen goes now so the shutdown's last words reach the terminal. */
void console_quit(struct console *c)
{
	int n = live_workers(c);
	supervisor_shutdown(c->sup, "console:quit");
	c->closing[0] = '\0';
	snprintf(c->farewell, sizeof(c->farewell), "drover: stopping %d worker%s (console:quit)", n,
	         n == 1 ? "" : "s");
	console_close(c);
}

static struct console *console_new(struct loop *loop, double refresh)
{
	struct console *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->loop = loop;
	c->refresh = refresh >= 0.1 ? refresh : 1.0;
	c->frames_left = local_opts.frames;
	c->sigfd = c->input.fd = -1;
	const char *log = getenv("DROVER_FRAME_LOG");
	if (log && *log)
		c->frame_log = fopen(log, "ae");
	return c;
}

int console_start(struct supervisor *sup)
{
	struct console *c = console_new(&sup->loop, sup->cfg.refresh);
	if (!c) {
		fprintf(stderr, "drover: console: out of memory\n");
		return -1;
	}
	c->sup = sup;
	c->config = sup->cfg.path;
	ui_backend_local(&c->be, sup, on_event, c);
	char err[512];
	const char *theme = sup->opts.theme ? sup->opts.theme : sup->cfg.theme;
	if (console_open(c, theme, err, sizeof(err)) < 0) {
		console_free(c);
		fprintf(stderr, "drover: console: %s\n", err);
		return -1;
	}
	local_console = c;
	return 0;
}

void console_stop(struct supervisor *sup)
{
	(void)sup;
	if (!local_console)
		return;
	console_free(local_console);
	local_console = NULL;
}

int console_attached_run(struct loop *loop, const char *path, const char *config, const char *theme,
                         double refresh, int frames)
{
	local_opts.frames = frames;
	struct console *c = console_new(loop, refresh);
	if (!c) {
		fprintf(stderr, "drover attach: out of memory\n");
		return 1;
	}
	c->config = config;
	char err[512];
	if (ui_backend_connect(&c->be, loop, path, on_event, c, err, sizeof(err)) < 0 ||
	    console_open(c, theme, err, sizeof(err)) < 0) {
		console_free(c);
		fprintf(stderr, "drover attach: %s\n", err);
		return 1;
	}
	loop_run(loop);
	int code = c->exit_code;
	console_free(c);
	return code;
}
