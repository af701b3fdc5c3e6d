/* The config module: loading, supervisord compatibility, interpolation,
 * includes, every error message, program_expand, equality, drover check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "drover/check.h"
#include "drover/config.h"

#define MAIN "/etc/drover/supervisor.ini"

struct loaded {
	struct config cfg;
	struct conf_msgs warn;
	struct conf_msgs err;
};

static const char *data_dir(void)
{
	const char *d = getenv("DROVER_TEST_DATA");

	assert_non_null(d);
	return d;
}

static void print_msgs(const char *what, const struct conf_msgs *m)
{
	for (size_t i = 0; i < m->count; i++)
		print_message("%s: %s\n", what, m->items[i]);
}

static void loaded_free(struct loaded *l)
{
	config_free(&l->cfg);
	conf_msgs_free(&l->warn);
	conf_msgs_free(&l->err);
}

/* Load text as MAIN; it must load without errors. */
static void load_ok(struct loaded *l, const char *text)
{
	memset(l, 0, sizeof(*l));
	int rc = config_load_string(MAIN, text, &l->cfg, &l->warn, &l->err);
	print_msgs("unexpected error", &l->err);
	assert_int_equal(rc, 0);
	assert_int_equal(l->err.count, 0);
}

/* Load text named "supervisor.ini": it must fail with exactly this error. */
static void expect_error(const char *text, const char *message)
{
	struct loaded l = {0};
	int rc = config_load_string("supervisor.ini", text, &l.cfg, &l.warn, &l.err);

	assert_int_equal(rc, -1);
	if (l.err.count != 1)
		print_msgs("error", &l.err);
	assert_int_equal(l.err.count, 1);
	assert_string_equal(l.err.items[0], message);
	/* a failed load leaves the config zeroed */
	assert_null(l.cfg.programs);
	assert_null(l.cfg.path);
	assert_int_equal(l.cfg.nprograms, 0);
	loaded_free(&l);
}

static bool has_msg(const struct conf_msgs *m, const char *message)
{
	for (size_t i = 0; i < m->count; i++) {
		if (strcmp(m->items[i], message) == 0)
			return true;
	}
	return false;
}

/* Load text named "supervisor.ini": it must load and warn with message. */
static void expect_warning(const char *text, const char *message)
{
	struct loaded l = {0};
	int rc = config_load_string("supervisor.ini", text, &l.cfg, &l.warn, &l.err);

	print_msgs("error", &l.err);
	assert_int_equal(rc, 0);
	if (!has_msg(&l.warn, message)) {
		print_msgs("warning", &l.warn);
		fail_msg("no warning \"%s\"", message);
	}
	loaded_free(&l);
}

static void expand_ok(const struct config *cfg, const char *prog, int num, struct worker_spec *w)
{
	const struct program_config *p = config_find_program(cfg, prog);
	char err[512] = "";

	assert_non_null(p);
	int rc = program_expand(cfg, p, num, w, err, sizeof(err));
	assert_string_equal(err, "");
	assert_int_equal(rc, 0);
}

/* Words of argv in brackets, to compare in one assertion. */
static void argv_str(char *const *argv, char *buf, size_t len)
{
	buf[0] = '\0';
	for (char *const *a = argv; *a != NULL; a++) {
		strncat(buf, "[", len - strlen(buf) - 1);
		strncat(buf, *a, len - strlen(buf) - 1);
		strncat(buf, "]", len - strlen(buf) - 1);
	}
}

static void assert_argv(const struct worker_spec *w, const char *expected)
{
	char buf[1024];

	argv_str(w->argv, buf, sizeof(buf));
	assert_string_equal(buf, expected);
}

/* ---------------------------------------------------------------- values */

static void test_parse_bool(void **state)
{
	static const char *const yes[] = {"true", "TRUE", "yes", "Yes", "on", "ON", "1"};
	static const char *const no[] = {"false", "False", "no", "NO", "off", "Off", "0"};
	bool b;

	(void)state;
	for (size_t i = 0; i < 7; i++) {
		b = false;
		assert_int_equal(conf_parse_bool(yes[i], &b), 0);
		assert_true(b);
		b = true;
		assert_int_equal(conf_parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	assert_int_equal(conf_parse_bool("", &b), -1);
	assert_int_equal(conf_parse_bool("2", &b), -1);
	assert_int_equal(conf_parse_bool("truth", &b), -1);
}

static void test_parse_signal(void **state)
{
	int sig = 0;

	(void)state;
	/* not static: SIGRTMIN is a function call in glibc */
	const struct {
		const char *s;
		int sig;
	} ok[] = {
	    {"TERM", SIGTERM},
	    {"SIGTERM", SIGTERM},
	    {"term", SIGTERM},
	    {"sigHup", SIGHUP},
	    {"HUP", SIGHUP},
	    {"INT", SIGINT},
	    {"QUIT", SIGQUIT},
	    {"KILL", SIGKILL},
	    {"USR1", SIGUSR1},
	    {"USR2", SIGUSR2},
	    {"WINCH", SIGWINCH},
	    {"15", SIGTERM},
	    {"9", SIGKILL},
	    {"RTMIN", SIGRTMIN},
	    {"RTMIN+2", SIGRTMIN + 2},
	    {"SIGRTMAX-1", SIGRTMAX - 1},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(conf_parse_signal(ok[i].s, &sig), 0);
		assert_int_equal(sig, ok[i].sig);
	}
	static const char *const bad[] = {"",          "0",   "-1",      "999",
	                                  "TERMINATE", "SIG", "RTMIN-1", "15x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(conf_parse_signal(bad[i], &sig), -1);
}

static void test_signal_name(void **state)
{
	(void)state;
	assert_string_equal(conf_signal_name(SIGTERM), "TERM");
	assert_string_equal(conf_signal_name(SIGKILL), "KILL");
	assert_string_equal(conf_signal_name(SIGUSR2), "USR2");
	assert_string_equal(conf_signal_name(SIGCHLD), "CHLD");
	assert_string_equal(conf_signal_name(SIGRTMIN + 3), "RTMIN+3");
	assert_null(conf_signal_name(0));
	assert_null(conf_signal_name(1000));
}

static void test_parse_size(void **state)
{
	long long n = -1;

	(void)state;
	assert_int_equal(conf_parse_size("123", &n), 0);
	assert_int_equal(n, 123);
	assert_int_equal(conf_parse_size("0", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(conf_parse_size("1KB", &n), 0);
	assert_int_equal(n, 1024);
	assert_int_equal(conf_parse_size("50MB", &n), 0);
	assert_int_equal(n, 50LL * 1024 * 1024);
	assert_int_equal(conf_parse_size("2gb", &n), 0);
	assert_int_equal(n, 2LL * 1024 * 1024 * 1024);
	assert_int_equal(conf_parse_size("10 mb", &n), 0);
	assert_int_equal(n, 10LL * 1024 * 1024);
	static const char *const bad[] = {"",     "MB", "-1",  "1.5MB",
	                                  "12TB", "1K", "abc", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(conf_parse_size(bad[i], &n), -1);
}

/* ------------------------------------------------------------- defaults */

static void test_supervisord_defaults(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, "[program:a]\ncommand=/bin/true\n");
	assert_int_equal(l.warn.count, 0);
	assert_int_equal(l.cfg.nprograms, 1);
	const struct program_config *p = &l.cfg.programs[0];
	assert_string_equal(p->name, "a");
	assert_string_equal(p->group, "a");
	assert_string_equal(p->here, "/etc/drover");
	assert_string_equal(p->command, "/bin/true");
	assert_null(p->process_name);
	assert_null(p->environment);
	assert_null(p->directory);
	assert_null(p->user);
	assert_int_equal(p->numprocs, 1);
	assert_int_equal(p->numprocs_start, 0);
	assert_int_equal(p->priority, 999);
	assert_true(p->autostart);
	assert_true(p->startsecs == 1);
	assert_int_equal(p->startretries, 3);
	assert_int_equal(p->autorestart, AUTORESTART_UNEXPECTED);
	assert_true(program_exitcode_expected(p, 0));
	for (int code = 1; code < 256; code++)
		assert_false(program_exitcode_expected(p, code));
	assert_false(program_exitcode_expected(p, -1));
	assert_false(program_exitcode_expected(p, 256));
	assert_int_equal(p->stopsignal, SIGTERM);
	assert_true(p->stopwaitsecs == 10);
	assert_false(p->stopasgroup);
	assert_false(p->killasgroup);
	assert_false(p->redirect_stderr);
	assert_string_equal(p->stdout_log.path, "AUTO");
	assert_int_equal(p->stdout_log.maxbytes, 50LL * 1024 * 1024);
	assert_int_equal(p->stdout_log.backups, 10);
	assert_string_equal(p->stderr_log.path, "AUTO");
	assert_int_equal(p->stderr_log.maxbytes, 50LL * 1024 * 1024);
	assert_int_equal(p->stderr_log.backups, 10);
	assert_false(p->has_umask);
	assert_int_equal(p->fatal_after_count, 10);
	assert_true(p->fatal_after_window == 60);
	assert_true(p->backoff_max == 10);
	/* where values were written: the header and command only */
	assert_string_equal(p->section.file, MAIN);
	assert_int_equal(p->section.line, 1);
	assert_int_equal(p->loc[PK_COMMAND].line, 2);
	assert_string_equal(p->loc[PK_COMMAND].file, MAIN);
	for (int k = 0; k < PK__COUNT; k++) {
		if (k != PK_COMMAND)
			assert_int_equal(p->loc[k].line, 0);
	}

	/* global defaults */
	assert_string_equal(l.cfg.path, MAIN);
	assert_string_equal(l.cfg.here, "/etc/drover");
	assert_int_equal(l.cfg.nfiles, 1);
	assert_string_equal(l.cfg.files[0], MAIN);
	assert_null(l.cfg.logfile);
	assert_null(l.cfg.pidfile);
	assert_false(l.cfg.nodaemon);
	assert_int_equal(l.cfg.umask, 022);
	assert_null(l.cfg.directory);
	assert_null(l.cfg.environment);
	assert_string_equal(l.cfg.identifier, "supervisor");
	assert_string_equal(l.cfg.state_dir, "/etc/drover/.drover");
	assert_int_equal(l.cfg.log_format, LOG_FORMAT_LOGFMT);
	assert_false(l.cfg.tail);
	assert_int_equal(l.cfg.ngroups, 0);
	loaded_free(&l);
}

static void test_every_program_key(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, "[program:web]\n"
	            "command = /bin/web --port %(process_num)d\n"
	            "process_name = w%(process_num)d\n"
	            "numprocs = 3\n"
	            "numprocs_start = 8000\n"
	            "priority = -5\n"
	            "autostart = no\n"
	            "startsecs = 0\n"
	            "startretries = 7\n"
	            "autorestart = true\n"
	            "exitcodes = 0, 2,255\n"
	            "stopsignal = SIGUSR1\n"
	            "stopwaitsecs = 2.5\n"
	            "stopasgroup = on\n"
	            "killasgroup = true\n"
	            "user = www-data\n"
	            "redirect_stderr = 1\n"
	            "stdout_logfile = /var/log/web-%(process_num)d.log\n"
	            "stdout_logfile_maxbytes = 1KB\n"
	            "stdout_logfile_backups = 0\n"
	            "stderr_logfile = none\n"
	            "stderr_logfile_maxbytes = 0\n"
	            "stderr_logfile_backups = 4\n"
	            "environment = A=1,B=\"x, y\"\n"
	            "directory = /srv\n"
	            "umask = 027\n"
	            "fatal_after = 5/2m\n"
	            "backoff_max = 30s\n"
	            "memory_limit = 256MB\n"
	            "cpu_limit = 90%\n"
	            "limit_grace = 5\n"
	            "tasks = json\n"
	            "prefetch = 4\n"
	            "task_timeout = 30\n"
	            "task_retries = 1\n"
	            "task_source = !seq 10\n"
	            "results = /tmp/results.jsonl\n");
	assert_int_equal(l.warn.count, 0);
	const struct program_config *p = config_find_program(&l.cfg, "web");
	assert_non_null(p);
	assert_string_equal(p->command, "/bin/web --port %(process_num)d");
	assert_string_equal(p->process_name, "w%(process_num)d");
	assert_int_equal(p->numprocs, 3);
	assert_int_equal(p->numprocs_start, 8000);
	assert_int_equal(p->priority, -5);
	assert_false(p->autostart);
	assert_true(p->startsecs == 0);
	assert_int_equal(p->startretries, 7);
	assert_int_equal(p->autorestart, AUTORESTART_TRUE);
	assert_true(program_exitcode_expected(p, 0));
	assert_false(program_exitcode_expected(p, 1));
	assert_true(program_exitcode_expected(p, 2));
	assert_true(program_exitcode_expected(p, 255));
	assert_int_equal(p->stopsignal, SIGUSR1);
	assert_true(p->stopwaitsecs == 2.5);
	assert_true(p->stopasgroup);
	assert_true(p->killasgroup);
	assert_string_equal(p->user, "www-data");
	assert_true(p->redirect_stderr);
	assert_string_equal(p->stdout_log.path, "/var/log/web-%(process_num)d.log");
	assert_int_equal(p->stdout_log.maxbytes, 1024);
	assert_int_equal(p->stdout_log.backups, 0);
	assert_string_equal(p->stderr_log.path, "NONE");
	assert_int_equal(p->stderr_log.maxbytes, 0);
	assert_int_equal(p->stderr_log.backups, 4);
	assert_string_equal(p->environment, "A=1,B=\"x, y\"");
	assert_string_equal(p->directory, "/srv");
	assert_true(p->has_umask);
	assert_int_equal(p->umask, 027);
	assert_int_equal(p->fatal_after_count, 5);
	assert_true(p->fatal_after_window == 120);
	assert_true(p->backoff_max == 30);
	assert_int_equal(p->memory_limit, 256ULL << 20);
	assert_true(p->cpu_limit == 90);
	assert_true(p->limit_grace == 5);
	assert_int_equal(p->tasks, TASKS_JSON);
	assert_int_equal(p->prefetch, 4);
	assert_true(p->task_timeout == 30);
	assert_int_equal(p->task_retries, 1);
	assert_string_equal(p->task_source, "!seq 10");
	assert_string_equal(p->results, "/tmp/results.jsonl");
	/* every key knows its line: key k is on line k + 2 */
	for (int k = 0; k < PK__COUNT; k++) {
		assert_string_equal(p->loc[k].file, MAIN);
		assert_int_equal(p->loc[k].line, k + 2);
	}
	loaded_free(&l);
}

static void test_stopasgroup_implies_killasgroup(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, "[program:a]\ncommand=x\nstopasgroup=true\n");
	assert_true(l.cfg.programs[0].stopasgroup);
	assert_true(l.cfg.programs[0].killasgroup);
	loaded_free(&l);
}

static void test_autorestart_and_fatal_after_forms(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, "[program:a]\ncommand=x\nautorestart=Unexpected\nfatal_after=0\n"
	            "[program:b]\ncommand=x\nautorestart=off\nfatal_after=3/10\n"
	            "[program:c]\ncommand=x\nautorestart=yes\nexitcodes=\n");
	const struct program_config *a = config_find_program(&l.cfg, "a");
	const struct program_config *b = config_find_program(&l.cfg, "b");
	const struct program_config *c = config_find_program(&l.cfg, "c");
	assert_int_equal(a->autorestart, AUTORESTART_UNEXPECTED);
	assert_int_equal(a->fatal_after_count, 0);
	assert_int_equal(b->autorestart, AUTORESTART_FALSE);
	assert_int_equal(b->fatal_after_count, 3);
	assert_true(b->fatal_after_window == 10);
	assert_int_equal(c->autorestart, AUTORESTART_TRUE);
	/* an empty exitcodes list expects nothing, as in supervisord */
	assert_false(program_exitcode_expected(c, 0));
	loaded_free(&l);
}

static void test_supervisord_and_drover_sections(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, "[supervisord]\n"
	            "logfile = log/supervisord.log\n"
	            "pidfile = /run/drover.pid\n"
	            "nodaemon = true\n"
	            "umask = 002\n"
	            "directory = %(here)s/..\n"
	            "environment = LANG=\"C.UTF-8\",TZ=UTC\n"
	            "identifier = prod\n"
	            "[drover]\n"
	            "state_dir = state\n"
	            "log_format = JSON\n"
	            "tail = yes\n"
	            "[program:a]\ncommand=x\n");
	assert_int_equal(l.warn.count, 0);
	assert_string_equal(l.cfg.logfile, "/etc/drover/log/supervisord.log");
	assert_string_equal(l.cfg.pidfile, "/run/drover.pid");
	assert_true(l.cfg.nodaemon);
	assert_int_equal(l.cfg.umask, 002);
	assert_string_equal(l.cfg.directory, "/etc");
	assert_string_equal(l.cfg.environment, "LANG=\"C.UTF-8\",TZ=UTC");
	assert_string_equal(l.cfg.identifier, "prod");
	assert_string_equal(l.cfg.state_dir, "/etc/drover/state");
	assert_int_equal(l.cfg.log_format, LOG_FORMAT_JSON);
	assert_true(l.cfg.tail);
	loaded_free(&l);

	load_ok(&l, "[drover]\nstate_dir=/var/lib/../lib/drover/\n");
	assert_string_equal(l.cfg.state_dir, "/var/lib/drover");
	loaded_free(&l);
}

static void test_here_of_relative_main_file(void **state)
{
	struct loaded l = {0};
	char cwd[PATH_MAX];
	char expect[PATH_MAX + 32];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(config_load_string("sub/./x.ini", "", &l.cfg, &l.warn, &l.err), 0);
	snprintf(expect, sizeof(expect), "%s/sub", cwd);
	assert_string_equal(l.cfg.here, expect);
	snprintf(expect, sizeof(expect), "%s/sub/.drover", cwd);
	assert_string_equal(l.cfg.state_dir, expect);
	assert_int_equal(l.cfg.nprograms, 0);
	loaded_free(&l);
}

/* ------------------------------------------------------- INI line rules */

static void test_comments_like_supervisord(void **state)
{
	struct loaded l;
	struct worker_spec w;

	(void)state;
	load_ok(&l, "; leading comment\n"
	            "# hash comment\n"
	            "[program:a] ; header comment\n"
	            "command=/bin/echo a;b c#d ; trailing comment\n"
	            "   ; indented comment\n"
	            "environment=X=1 # hash after a space is a comment too\n");
	const struct program_config *p = &l.cfg.programs[0];
	assert_string_equal(p->command, "/bin/echo a;b c#d");
	assert_int_equal(p->loc[PK_COMMAND].line, 4);
	assert_string_equal(p->environment, "X=1");
	assert_int_equal(p->loc[PK_ENVIRONMENT].line, 6);
	expand_ok(&l.cfg, "a", 0, &w);
	assert_argv(&w, "[/bin/echo][a;b][c#d]");
	worker_spec_free(&w);
	loaded_free(&l);
}

static void test_multiline_values_and_lines(void **state)
{
	struct loaded l;
	struct worker_spec w;

	(void)state;
	load_ok(&l, "[program:a]\n"
	            "command = /bin/prog\n"
	            "    --one ; comment on a continuation\n"
	            "\n"
	            "    --two\n"
	            "environment =\n"
	            "    A=\"1\",\n"
	            "    B=\"2\"\n"
	            "Priority: 3\n");
	const struct program_config *p = &l.cfg.programs[0];
	assert_string_equal(p->command, "/bin/prog\n--one\n--two");
	assert_int_equal(p->loc[PK_COMMAND].line, 2);
	assert_string_equal(p->environment, "A=\"1\",\nB=\"2\"");
	assert_int_equal(p->loc[PK_ENVIRONMENT].line, 6);
	/* keys are case-insensitive and ':' separates too, as in configparser */
	assert_int_equal(p->priority, 3);
	assert_int_equal(p->loc[PK_PRIORITY].line, 9);
	expand_ok(&l.cfg, "a", 0, &w);
	assert_argv(&w, "[/bin/prog][--one][--two]");
	assert_string_equal(w.env_add[3], "A=1");
	assert_string_equal(w.env_add[4], "B=2");
	worker_spec_free(&w);
	loaded_free(&l);
}

/* Debian's inih reads at most 200 bytes a line; longer lines must neither be
 * cut nor shift the line numbers that follow. */
static void test_long_lines(void **state)
{
	struct loaded l;
	char text[4096];
	char arg[1500];

	(void)state;
	memset(arg, 'x', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = '\0';
	snprintf(text, sizeof(text),
	         "[program:a]\ncommand=/bin/echo %s end ; comment\n"
	         "environment=\n  LONG=\"%s\"\npriority=4\n",
	         arg, arg);
	load_ok(&l, text);
	const struct program_config *p = &l.cfg.programs[0];
	assert_int_equal(strlen(p->command), strlen("/bin/echo ") + strlen(arg) + strlen(" end"));
	assert_string_equal(p->command + strlen(p->command) - 4, " end");
	assert_int_equal(strlen(p->environment), strlen(arg) + 7);
	assert_int_equal(p->priority, 4);
	assert_int_equal(p->loc[PK_PRIORITY].line, 5);
	loaded_free(&l);
}

static void test_bom_and_crlf(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, "\xEF\xBB\xBF[program:a]\r\ncommand=/bin/a\r\npriority=1\r\n");
	assert_string_equal(l.cfg.programs[0].command, "/bin/a");
	assert_int_equal(l.cfg.programs[0].priority, 1);
	loaded_free(&l);
}

/* --------------------------------------------------------- interpolation */

static void test_interpolation(void **state)
{
	struct loaded l;
	struct worker_spec w;
	struct utsname u;
	char expect[512];

	(void)state;
	assert_int_equal(uname(&u), 0);
	setenv("DROVER_TEST_VAR", "from env", 1);
	load_ok(&l, "[program:pool]\n"
	            "command = /bin/run %(process_num)03d [%(program_name)-6s] [%(program_name)6s] "
	            "%(program_name).2s %(numprocs)d 100%% %(group_name)s "
	            "%(ENV_DROVER_TEST_VAR)s %(here)s %(host_node_name)s %(process_num)x\n"
	            "process_name = %(program_name)s-%(process_num)d\n"
	            "numprocs = 2\n"
	            "numprocs_start = 10\n");
	expand_ok(&l.cfg, "pool", 11, &w);
	assert_string_equal(w.name, "pool-11");
	assert_int_equal(w.process_num, 11);
	snprintf(expect, sizeof(expect),
	         "[/bin/run][011][[pool][]][[][pool]][po][2][100%%][pool][from][env][/etc/"
	         "drover][%s][b]",
	         u.nodename);
	assert_argv(&w, expect);
	worker_spec_free(&w);
	loaded_free(&l);
	unsetenv("DROVER_TEST_VAR");
}

static void test_interpolation_in_numbers(void **state)
{
	struct loaded l;

	(void)state;
	setenv("DROVER_TEST_PRIO", "42", 1);
	load_ok(&l, "[program:a]\ncommand=x\npriority=%(ENV_DROVER_TEST_PRIO)s\n");
	assert_int_equal(l.cfg.programs[0].priority, 42);
	loaded_free(&l);
	unsetenv("DROVER_TEST_PRIO");
}

static void test_program_environment_feeds_env_names(void **state)
{
	struct loaded l;
	struct worker_spec w;

	(void)state;
	unsetenv("DROVER_TEST_PORT");
	load_ok(&l, "[program:a]\n"
	            "environment=DROVER_TEST_PORT=\"80%(process_num)02d\"\n"
	            "command=/bin/serve --port=%(ENV_DROVER_TEST_PORT)s\n");
	expand_ok(&l.cfg, "a", 3, &w);
	assert_argv(&w, "[/bin/serve][--port=8003]");
	worker_spec_free(&w);
	loaded_free(&l);
}

/* ------------------------------------------------------- program_expand */

static void test_numprocs_naming(void **state)
{
	struct loaded l;
	struct worker_spec w;

	(void)state;
	load_ok(&l, "[program:squarer]\ncommand=/bin/sq\nnumprocs=3\n"
	            "[program:single]\ncommand=/bin/one\n"
	            "[program:offset]\ncommand=/bin/off\nnumprocs=2\nnumprocs_start=7\n"
	            "[program:custom]\ncommand=/bin/c\nnumprocs=2\n"
	            "process_name=job-%(process_num)d\n"
	            "[program:idle]\ncommand=/bin/i\nnumprocs=0\n");
	static const char *const names[] = {"squarer_00", "squarer_01", "squarer_02"};
	for (int i = 0; i < 3; i++) {
		expand_ok(&l.cfg, "squarer", i, &w);
		assert_string_equal(w.name, names[i]);
		worker_spec_free(&w);
	}
	expand_ok(&l.cfg, "single", 0, &w);
	assert_string_equal(w.name, "single");
	worker_spec_free(&w);
	expand_ok(&l.cfg, "offset", 8, &w);
	assert_string_equal(w.name, "offset_08");
	worker_spec_free(&w);
	expand_ok(&l.cfg, "custom", 1, &w);
	assert_string_equal(w.name, "job-1");
	worker_spec_free(&w);
	expand_ok(&l.cfg, "idle", 4, &w);
	assert_string_equal(w.name, "idle_04");
	worker_spec_free(&w);
	assert_int_equal(config_find_program(&l.cfg, "idle")->numprocs, 0);
	loaded_free(&l);
}

static void test_log_paths_and_directory(void **state)
{
	struct loaded l;
	struct worker_spec w;

	(void)state;
	load_ok(&l, "[drover]\nstate_dir=/var/lib/drover\n"
	            "[program:auto]\ncommand=x\nnumprocs=2\n"
	            "[program:rel]\ncommand=x\nstdout_logfile=logs/%(program_name)s.out\n"
	            "stderr_logfile=NONE\ndirectory=work/../run\n"
	            "[program:redir]\ncommand=x\nredirect_stderr=true\n");
	expand_ok(&l.cfg, "auto", 1, &w);
	assert_string_equal(w.stdout_path, "/var/lib/drover/logs/auto_01-stdout.log");
	assert_string_equal(w.stderr_path, "/var/lib/drover/logs/auto_01-stderr.log");
	assert_null(w.directory);
	assert_null(w.user);
	worker_spec_free(&w);
	expand_ok(&l.cfg, "rel", 0, &w);
	assert_string_equal(w.stdout_path, "/etc/drover/logs/rel.out");
	assert_null(w.stderr_path);
	assert_string_equal(w.directory, "/etc/drover/run");
	worker_spec_free(&w);
	expand_ok(&l.cfg, "redir", 0, &w);
	assert_string_equal(w.stdout_path, "/var/lib/drover/logs/redir-stdout.log");
	assert_null(w.stderr_path);
	worker_spec_free(&w);
	loaded_free(&l);
}

static void test_environment_order(void **state)
{
	struct loaded l;
	struct worker_spec w;

	(void)state;
	load_ok(&l, "[supervisord]\nenvironment=G=global,SHARED=from-supervisord\n"
	            "[group:grp]\nprograms=a\n"
	            "[program:a]\ncommand=x\n"
	            "environment=SHARED=\"from program\",SUPERVISOR_ENABLED=yes,P='a,b'\n");
	expand_ok(&l.cfg, "a", 0, &w);
	static const char *const expect[] = {
	    "G=global",
	    "SUPERVISOR_PROCESS_NAME=a",
	    "SUPERVISOR_GROUP_NAME=grp",
	    "SHARED=from program",
	    "SUPERVISOR_ENABLED=yes",
	    "P=a,b",
	    NULL,
	};
	for (size_t i = 0; expect[i] != NULL; i++) {
		assert_non_null(w.env_add[i]);
		assert_string_equal(w.env_add[i], expect[i]);
	}
	assert_null(w.env_add[6]);
	worker_spec_free(&w);
	loaded_free(&l);
}

static void test_expand_error_reports_location(void **state)
{
	struct loaded l;
	struct worker_spec w;
	char err[256];

	(void)state;
	/* loaded while set, expanded after it was unset */
	setenv("DROVER_TEST_LATER", "x", 1);
	load_ok(&l, "[program:a]\ncommand=/bin/%(ENV_DROVER_TEST_LATER)s\n");
	unsetenv("DROVER_TEST_LATER");
	assert_int_equal(program_expand(&l.cfg, &l.cfg.programs[0], 0, &w, err, sizeof(err)), -1);
	assert_string_equal(err,
	                    MAIN ":2: command = \"/bin/%(ENV_DROVER_TEST_LATER)s\": "
	                         "%(ENV_DROVER_TEST_LATER)s: DROVER_TEST_LATER is not set in the "
	                         "environment");
	assert_null(w.name);
	assert_null(w.argv);
	loaded_free(&l);
}

/* ----------------------------------------------------------------- groups */

static void test_groups(void **state)
{
	struct loaded l;
	struct worker_spec w;

	(void)state;
	load_ok(&l, "[program:a]\ncommand=x %(group_name)s\n"
	            "[group:web]\nprograms = a , b\npriority=5\n"
	            "[program:b]\ncommand=x\n"
	            "[program:c]\ncommand=x\n"
	            "[group:empty_later]\nprograms=c\n");
	assert_string_equal(config_find_program(&l.cfg, "a")->group, "web");
	assert_string_equal(config_find_program(&l.cfg, "b")->group, "web");
	assert_string_equal(config_find_program(&l.cfg, "c")->group, "empty_later");
	assert_int_equal(l.cfg.ngroups, 2);
	/* sorted by priority: web (5) before empty_later (999) */
	const struct group_config *g = &l.cfg.groups[0];
	assert_string_equal(g->name, "web");
	assert_int_equal(g->priority, 5);
	assert_int_equal(g->nprograms, 2);
	assert_string_equal(g->programs[0], "a");
	assert_string_equal(g->programs[1], "b");
	assert_null(g->programs[2]);
	assert_int_equal(g->section.line, 3);
	assert_int_equal(g->loc_programs.line, 4);
	assert_int_equal(g->loc_priority.line, 5);
	assert_int_equal(l.cfg.groups[1].priority, 999);
	assert_int_equal(l.cfg.groups[1].loc_priority.line, 0);
	expand_ok(&l.cfg, "a", 0, &w);
	assert_argv(&w, "[x][web]");
	worker_spec_free(&w);
	loaded_free(&l);
}

static void test_programs_sorted_by_priority_then_name(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, "[program:zeta]\ncommand=x\npriority=1\n"
	            "[program:beta]\ncommand=x\n"
	            "[program:alpha]\ncommand=x\n"
	            "[program:omega]\ncommand=x\npriority=1\n"
	            "[program:first]\ncommand=x\npriority=-3\n");
	static const char *const order[] = {"first", "omega", "zeta", "alpha", "beta"};
	assert_int_equal(l.cfg.nprograms, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(l.cfg.programs[i].name, order[i]);
	loaded_free(&l);
}

/* --------------------------------------------------------------- includes */

static void test_includes(void **state)
{
	struct loaded l = {0};
	struct worker_spec w;
	char dir[PATH_MAX], main_path[PATH_MAX + 32], buf[PATH_MAX * 3];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/include", data_dir());
	snprintf(main_path, sizeof(main_path), "%s/supervisor.ini", dir);
	int rc = config_load(main_path, &l.cfg, &l.warn, &l.err);
	print_msgs("error", &l.err);
	assert_int_equal(rc, 0);

	assert_int_equal(l.cfg.nfiles, 3);
	assert_string_equal(l.cfg.files[0], main_path);
	snprintf(buf, sizeof(buf), "%s/conf.d/10-web.ini", dir);
	assert_string_equal(l.cfg.files[1], buf);
	snprintf(buf, sizeof(buf), "%s/conf.d/20-nested.ini", dir);
	assert_string_equal(l.cfg.files[2], buf);

	/* a program from an included file knows that file and line */
	const struct program_config *web = config_find_program(&l.cfg, "web");
	assert_non_null(web);
	assert_string_equal(web->section.file, l.cfg.files[1]);
	assert_int_equal(web->section.line, 3);
	assert_int_equal(web->loc[PK_NUMPROCS].line, 5);
	assert_string_equal(web->group, "front");
	snprintf(buf, sizeof(buf), "%s/conf.d", dir);
	assert_string_equal(web->here, buf);

	/* the group in the included file takes the main file's program */
	assert_string_equal(config_find_program(&l.cfg, "main")->group, "front");

	/* %(here)s is the directory of the file holding the section */
	expand_ok(&l.cfg, "web", 1, &w);
	snprintf(buf, sizeof(buf), "[/bin/web][%s/conf.d]", dir);
	assert_argv(&w, buf);
	snprintf(buf, sizeof(buf), "%s/conf.d/logs/web-1.log", dir);
	assert_string_equal(w.stdout_path, buf);
	assert_string_equal(w.env_add[0], "GLOBAL=yes");
	worker_spec_free(&w);
	expand_ok(&l.cfg, "main", 0, &w);
	snprintf(buf, sizeof(buf), "[/bin/main][--here=%s]", dir);
	assert_argv(&w, buf);
	worker_spec_free(&w);
	expand_ok(&l.cfg, "worker", 0, &w);
	snprintf(buf, sizeof(buf), "%s/conf.d/work", dir);
	assert_string_equal(w.directory, buf);
	worker_spec_free(&w);

	/* warnings name the included file and its lines */
	assert_int_equal(l.warn.count, 3);
	snprintf(buf, sizeof(buf), "%s:6: [include] files: no file matches \"%s/missing/*.ini\"",
	         main_path, dir);
	assert_string_equal(l.warn.items[0], buf);
	snprintf(buf, sizeof(buf),
	         "%s/conf.d/20-nested.ini:1: [include] in an included file is ignored: includes "
	         "do not nest",
	         dir);
	assert_string_equal(l.warn.items[1], buf);
	snprintf(buf, sizeof(buf),
	         "%s/conf.d/20-nested.ini:7: [program:worker] unknown key colour; ignored", dir);
	assert_string_equal(l.warn.items[2], buf);
	loaded_free(&l);
}

static void test_include_error_names_included_file(void **state)
{
	struct loaded l = {0};
	char cwd[PATH_MAX];

	(void)state;
	/* Load by a relative path: messages show paths as the glob made them. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(data_dir()), 0);
	int rc = config_load("include-error/supervisor.ini", &l.cfg, &l.warn, &l.err);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(rc, -1);
	assert_int_equal(l.err.count, 1);
	assert_string_equal(l.err.items[0], "include-error/conf.d/bad.ini:3: numprocs = \"abc\": "
	                                    "expected a positive integer");
	loaded_free(&l);
}

static void test_include_skips_files_already_read(void **state)
{
	char tmpl[] = "/tmp/drover-test-XXXXXX";
	char path[PATH_MAX], buf[PATH_MAX * 3];
	struct loaded l = {0};

	(void)state;
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/supervisor.ini", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("[include]\nfiles = %(here)s/*.ini\n[program:a]\ncommand=x\n", f);
	fclose(f);
	assert_int_equal(config_load(path, &l.cfg, &l.warn, &l.err), 0);
	assert_int_equal(l.cfg.nfiles, 1);
	assert_int_equal(l.warn.count, 1);
	snprintf(buf, sizeof(buf), "%s:2: [include] files: %s is already read", path, path);
	assert_string_equal(l.warn.items[0], buf);
	loaded_free(&l);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_included_file_unreadable(void **state)
{
	char tmpl[] = "/tmp/drover-test-XXXXXX";
	char path[PATH_MAX], inc[PATH_MAX], buf[PATH_MAX * 2];
	struct loaded l = {0};

	(void)state;
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/main.ini", dir);
	snprintf(inc, sizeof(inc), "%s/inc.d", dir);
	assert_int_equal(mkdir(inc, 0700), 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("[include]\nfiles = inc.d\n", f);
	fclose(f);
	/* a directory matches the glob but cannot be read as a file */
	assert_int_equal(config_load(path, &l.cfg, &l.warn, &l.err), -1);
	assert_int_equal(l.err.count, 1);
	snprintf(buf, sizeof(buf), "%s: cannot read: Is a directory", inc);
	assert_string_equal(l.err.items[0], buf);
	loaded_free(&l);
	assert_int_equal(rmdir(inc), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* ------------------------------------------------------- error messages */

static void test_error_numprocs(void **state)
{
	(void)state;
	expect_error("[program:web]\ncommand=x\nnumprocs=abc\n",
	             "supervisor.ini:3: numprocs = \"abc\": expected a positive integer");
	expect_error("[program:web]\ncommand=x\nnumprocs=-2\n",
	             "supervisor.ini:3: numprocs = \"-2\": expected a positive integer");
	expect_error("[program:web]\ncommand=x\nnumprocs=1000000\n",
	             "supervisor.ini:3: numprocs = \"1000000\": expected a positive integer up to "
	             "100000");
}

static void test_error_missing_command(void **state)
{
	(void)state;
	expect_error("\n\n\n\n[program:web]\nnumprocs=2\n",
	             "supervisor.ini:5: [program:web]: command is required");
}

static void test_error_empty_command(void **state)
{
	(void)state;
	expect_error("[program:web]\ncommand=\n",
	             "supervisor.ini:2: command = \"\": expected a program to run, and its "
	             "arguments");
	expect_error("[program:web]\ncommand= ; only a comment\n",
	             "supervisor.ini:2: command = \"\": expected a program to run, and its "
	             "arguments");
}

static void test_error_unterminated_quote(void **state)
{
	(void)state;
	/* supervisord cuts at " ;" too, which leaves the quote open */
	expect_error("[program:web]\ncommand=bash -c 'foo ; bar'\n",
	             "supervisor.ini:2: command = \"bash -c 'foo\": unterminated single quote");
	expect_error("[program:web]\ncommand=echo \"x\n",
	             "supervisor.ini:2: command = \"echo \\\"x\": unterminated double quote");
}

static void test_error_cannot_open(void **state)
{
	struct loaded l = {0};
	char cwd[PATH_MAX];
	char tmpl[] = "/tmp/drover-test-XXXXXX";

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	assert_int_equal(chdir(dir), 0);
	int rc = config_load("supervisor.ini", &l.cfg, &l.warn, &l.err);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(rc, -1);
	assert_int_equal(l.err.count, 1);
	assert_string_equal(l.err.items[0],
	                    "supervisor.ini: cannot open: No such file or directory");
	assert_null(l.cfg.path);
	assert_int_equal(l.cfg.nfiles, 0);
	loaded_free(&l);
}

static void test_error_duplicate_section(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\n\n[program:a]\ncommand=y\n",
	             "supervisor.ini:4: duplicate section [program:a] (first at supervisor.ini:1)");
}

static void test_error_bad_bool(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nautostart=maybe\n",
	             "supervisor.ini:3: autostart = \"maybe\": expected true or false (or yes/no, "
	             "on/off, 1/0)");
}

static void test_error_bad_autorestart(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nautorestart=sometimes\n",
	             "supervisor.ini:3: autorestart = \"sometimes\": expected true, false or "
	             "unexpected");
}

static void test_error_bad_exitcodes(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nexitcodes=0,256\n",
	             "supervisor.ini:3: exitcodes = \"0,256\": expected a comma-separated list of "
	             "exit codes from 0 to 255");
	expect_error("[program:a]\ncommand=x\nexitcodes=0,\n",
	             "supervisor.ini:3: exitcodes = \"0,\": expected a comma-separated list of "
	             "exit codes from 0 to 255");
}

static void test_error_bad_signal(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nstopsignal=TERMINATE\n",
	             "supervisor.ini:3: stopsignal = \"TERMINATE\": expected a signal name or "
	             "number (TERM, HUP, INT, QUIT, KILL, USR1, USR2, ...)");
}

static void test_error_bad_size(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nstdout_logfile_maxbytes=50 megabytes\n",
	             "supervisor.ini:3: stdout_logfile_maxbytes = \"50 megabytes\": expected a "
	             "size in bytes with an optional KB, MB or GB suffix");
}

static void test_error_bad_integers_and_seconds(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\npriority=high\n",
	             "supervisor.ini:3: priority = \"high\": expected an integer");
	expect_error("[program:a]\ncommand=x\nstartretries=-1\n",
	             "supervisor.ini:3: startretries = \"-1\": expected a non-negative integer");
	expect_error("[program:a]\ncommand=x\nstdout_logfile_backups=ten\n",
	             "supervisor.ini:3: stdout_logfile_backups = \"ten\": expected a non-negative "
	             "integer");
	expect_error("[program:a]\ncommand=x\nstartsecs=-1\n",
	             "supervisor.ini:3: startsecs = \"-1\": expected a non-negative number of "
	             "seconds");
	expect_error("[program:a]\ncommand=x\nstopwaitsecs=inf\n",
	             "supervisor.ini:3: stopwaitsecs = \"inf\": expected a non-negative number of "
	             "seconds");
	expect_error("[program:a]\ncommand=x\nbackoff_max=10h\n",
	             "supervisor.ini:3: backoff_max = \"10h\": expected a non-negative number of "
	             "seconds");
}

static void test_error_bad_umask(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\numask=089\n",
	             "supervisor.ini:3: umask = \"089\": expected an octal umask such as 022");
	expect_error("[supervisord]\numask=1777\n",
	             "supervisor.ini:2: umask = \"1777\": expected an octal umask such as 022");
}

static void test_error_bad_fatal_after(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nfatal_after=10\n",
	             "supervisor.ini:3: fatal_after = \"10\": expected N/W: N exits within W "
	             "seconds, e.g. 10/60s or 5/2m (0 disables)");
	expect_error("[program:a]\ncommand=x\nfatal_after=3/0s\n",
	             "supervisor.ini:3: fatal_after = \"3/0s\": expected N/W: N exits within W "
	             "seconds, e.g. 10/60s or 5/2m (0 disables)");
}

static void test_error_bad_log_format(void **state)
{
	(void)state;
	expect_error("[drover]\nlog_format=xml\n",
	             "supervisor.ini:2: log_format = \"xml\": expected logfmt or json");
}

static void test_error_bad_environment(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nenvironment=A=1,B\n",
	             "supervisor.ini:3: environment = \"A=1,B\": expected '=' after B");
	expect_error("[program:a]\ncommand=x\nenvironment=A=\"1\n",
	             "supervisor.ini:3: environment = \"A=\\\"1\": unterminated \" quote in the "
	             "value of A");
	expect_error("[supervisord]\nenvironment=A=\"1\"x\n",
	             "supervisor.ini:2: environment = \"A=\\\"1\\\"x\": expected ',' after the "
	             "quoted value of A; expected KEY=value pairs separated by commas (quote "
	             "values that contain commas)");
}

static void test_error_unknown_interpolation(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=/bin/a %(nope)s\n",
	             "supervisor.ini:2: command = \"/bin/a %(nope)s\": unknown name %(nope)s: "
	             "expected one of program_name, process_num, group_name, host_node_name, "
	             "here, numprocs, ENV_*");
	/* numbers are expanded once per program: no process_num there */
	expect_error("[program:a]\ncommand=x\npriority=%(process_num)d\n",
	             "supervisor.ini:3: priority = \"%(process_num)d\": unknown name "
	             "%(process_num)d: expected one of program_name, group_name, host_node_name, "
	             "here, ENV_*");
	unsetenv("DROVER_TEST_UNSET");
	expect_error("[program:a]\ncommand=%(ENV_DROVER_TEST_UNSET)s\n",
	             "supervisor.ini:2: command = \"%(ENV_DROVER_TEST_UNSET)s\": "
	             "%(ENV_DROVER_TEST_UNSET)s: DROVER_TEST_UNSET is not set in the environment");
}

static void test_error_bad_format(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=date +%s\n",
	             "supervisor.ini:2: command = \"date +%s\": lone % before \"s\": expected "
	             "%(name)s, or %% for a literal %");
	expect_error("[program:a]\ncommand=x %(program_name)q\n",
	             "supervisor.ini:2: command = \"x %(program_name)q\": bad format "
	             "%(program_name)q: expected a conversion such as s or d");
	expect_error("[program:a]\ncommand=x %(program_name\n",
	             "supervisor.ini:2: command = \"x %(program_name\": unterminated %( at "
	             "\"%(program_name\": expected %(name)s");
	expect_error("[program:a]\ncommand=x %(program_name)d\n",
	             "supervisor.ini:2: command = \"x %(program_name)d\": %(program_name)d needs a "
	             "number, but program_name is text");
}

static void test_error_process_name_needs_process_num(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nnumprocs=2\nprocess_name=worker\n",
	             "supervisor.ini:4: process_name = \"worker\": expected %(process_num) in the "
	             "name, because numprocs = 2 would give every worker the same name");
}

static void test_error_bad_worker_name(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nprocess_name=a/b\n",
	             "supervisor.ini:3: process_name = \"a/b\": worker name \"a/b\": expected a "
	             "name without spaces, ':' or '/'");
	expect_error("[program:a b]\ncommand=x\n",
	             "supervisor.ini:1: [program:a b]: expected a program name without spaces, "
	             "':' or '/'");
	expect_error("[group:]\nprograms=x\n",
	             "supervisor.ini:1: [group:]: expected a group name without spaces, ':' or "
	             "'/'");
}

static void test_error_duplicate_worker_names(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nnumprocs=2\n"
	             "[program:a_01]\ncommand=y\n",
	             "supervisor.ini:4: [program:a_01]: worker name a_01 is also a worker of "
	             "[program:a] (supervisor.ini:1)");
	expect_error("[program:a]\ncommand=x\n"
	             "[program:b]\ncommand=y\nprocess_name=a\n",
	             "supervisor.ini:5: [program:b]: worker name a is also a worker of "
	             "[program:a] (supervisor.ini:1)");
}

static void test_error_killasgroup_contradiction(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nstopasgroup=true\nkillasgroup=false\n",
	             "supervisor.ini:4: killasgroup = \"false\": expected true, because "
	             "stopasgroup = true implies killasgroup");
}

static void test_error_group_membership(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\n[group:g]\nprograms=a,ghost\n",
	             "supervisor.ini:4: [group:g] programs: no [program:ghost] to put in this "
	             "group");
	expect_error("[program:a]\ncommand=x\n[group:g]\nprograms=a\n[group:h]\nprograms=a\n",
	             "supervisor.ini:6: [group:h] programs: a is already in [group:g]");
	expect_error("[program:a]\ncommand=x\n[group:g]\npriority=1\n",
	             "supervisor.ini:3: [group:g]: programs is required");
	expect_error("[program:a]\ncommand=x\n[program:b]\ncommand=x\n[group:a]\nprograms=b\n",
	             "supervisor.ini:5: [group:a]: the name is also [program:a] "
	             "(supervisor.ini:1), which is not in this group");
}

static void test_error_malformed_lines(void **state)
{
	(void)state;
	expect_error("[program:a\ncommand=x\n",
	             "supervisor.ini:1: \"[program:a\": expected ']' to close the section header");
	expect_error("[program:a]\ncommand=x\njust words\n",
	             "supervisor.ini:3: \"just words\": expected key = value, a [section] header "
	             "or a comment");
	expect_error("command=x\n",
	             "supervisor.ini:1: \"command=x\": expected a [section] header before the "
	             "first key");
	expect_error("[program:a]\ncommand=x\n= value\n",
	             "supervisor.ini:3: \"= value\": expected a key name before '='");
}

static void test_error_include_without_files(void **state)
{
	(void)state;
	expect_error("[include]\nfile=x.ini\n", "supervisor.ini:1: [include]: files is required");
}

static void test_error_empty_paths(void **state)
{
	(void)state;
	expect_error("[program:a]\ncommand=x\nstdout_logfile=\n",
	             "supervisor.ini:3: stdout_logfile = \"\": expected a path, AUTO or NONE");
	expect_error("[program:a]\ncommand=x\ndirectory=\n",
	             "supervisor.ini:3: directory = \"\": expected a directory");
	expect_error("[program:a]\ncommand=x\nuser=\n",
	             "supervisor.ini:3: user = \"\": expected a user name or id");
	expect_error("[drover]\nstate_dir=\n",
	             "supervisor.ini:2: state_dir = \"\": expected a directory");
}

static void test_all_errors_are_collected(void **state)
{
	struct loaded l = {0};

	(void)state;
	int rc = config_load_string("supervisor.ini",
	                            "[program:a]\n"
	                            "numprocs=x\n"
	                            "priority=y\n"
	                            "garbage\n"
	                            "[program:b]\n"
	                            "command=%(nope)s\n"
	                            "[drover]\n"
	                            "tail=sure\n",
	                            &l.cfg, &l.warn, &l.err);
	assert_int_equal(rc, -1);
	static const char *const expect[] = {
	    "supervisor.ini:4: \"garbage\": expected key = value, a [section] header or a "
	    "comment",
	    "supervisor.ini:8: tail = \"sure\": expected true or false (or yes/no, on/off, 1/0)",
	    "supervisor.ini:2: numprocs = \"x\": expected a positive integer",
	    "supervisor.ini:3: priority = \"y\": expected an integer",
	    "supervisor.ini:1: [program:a]: command is required",
	    "supervisor.ini:6: command = \"%(nope)s\": unknown name %(nope)s: expected one of "
	    "program_name, process_num, group_name, host_node_name, here, numprocs, ENV_*",
	};
	if (l.err.count != 6)
		print_msgs("error", &l.err);
	assert_int_equal(l.err.count, 6);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(l.err.items[i], expect[i]);
	loaded_free(&l);
}

static void test_null_message_lists(void **state)
{
	struct config cfg;

	(void)state;
	assert_int_equal(config_load_string("x.ini", "[program:a]\n", &cfg, NULL, NULL), -1);
	assert_int_equal(
	    config_load_string("x.ini", "[program:a]\ncommand=x\nbogus=1\n", &cfg, NULL, NULL), 0);
	config_free(&cfg);
}

/* --------------------------------------------------------------- warnings */

static void test_warnings(void **state)
{
	(void)state;
	expect_warning("[program:a]\ncommand=x\ncolour=red\n",
	               "supervisor.ini:3: [program:a] unknown key colour; ignored");
	expect_warning("[program:a]\ncommand=x\nstdout_events_enabled=true\n",
	               "supervisor.ini:3: [program:a] stdout_events_enabled is not used by drover; "
	               "ignored");
	expect_warning("[program:a]\ncommand=x\nserverurl=AUTO\n",
	               "supervisor.ini:3: [program:a] serverurl is not used by drover; ignored");
	expect_warning("[supervisord]\nloglevel=debug\n",
	               "supervisor.ini:2: [supervisord] loglevel is not used by drover; ignored");
	expect_warning("[drover]\ncolour=dark\n",
	               "supervisor.ini:2: [drover] unknown key colour; ignored");
	expect_warning("\n[inet_http_server]\nport=:9001\n",
	               "supervisor.ini:2: [inet_http_server] is not used by drover; ignored");
	expect_warning(
	    "[rpcinterface:supervisor]\nx=y\n",
	    "supervisor.ini:1: [rpcinterface:supervisor] is not used by drover; ignored");
	expect_warning("[eventlistener:mem]\ncommand=memmon\n",
	               "supervisor.ini:1: [eventlistener:mem] is not supported by drover; ignored, "
	               "its processes will not run");
	expect_warning("[fcgi-program:f]\ncommand=x\n",
	               "supervisor.ini:1: [fcgi-program:f] is not supported by drover; ignored, "
	               "its processes will not run");
	expect_warning("[wat]\n", "supervisor.ini:1: unknown section [wat]; ignored");
	expect_warning("[program:a]\ncommand=x\ncommand=y\n",
	               "supervisor.ini:3: [program:a] command is set again (first at line 2); the "
	               "later value wins");
	expect_warning("[program:a]\ncommand=x\nstdout_logfile_maxbytes=0\n",
	               "supervisor.ini:3: [program:a] stdout_logfile is AUTO with "
	               "stdout_logfile_maxbytes = 0: the log grows without limit");
	expect_warning("[program:a]\ncommand=x\nredirect_stderr=true\nstderr_logfile=/tmp/e\n",
	               "supervisor.ini:4: [program:a] stderr_logfile is ignored because "
	               "redirect_stderr = true");
	expect_warning("[program:a]\ncommand=x\nnumprocs=2\nstdout_logfile=/tmp/shared.log\n"
	               "process_name=%(process_num)d\n",
	               "supervisor.ini:4: [program:a] workers 0 and 1 both log to /tmp/shared.log; "
	               "rotation will conflict");
}

static void test_later_duplicate_key_wins(void **state)
{
	struct loaded l;

	(void)state;
	load_ok(&l, "[program:a]\ncommand=x\npriority=1\npriority=2\n");
	assert_int_equal(l.cfg.programs[0].priority, 2);
	assert_int_equal(l.cfg.programs[0].loc[PK_PRIORITY].line, 4);
	loaded_free(&l);
}

/* ------------------------------------------------- supervisord's sample */

static void test_supervisord_sample_loads_with_warnings_only(void **state)
{
	struct loaded l = {0};
	char path[PATH_MAX];
	struct worker_spec w;

	(void)state;
	snprintf(path, sizeof(path), "%s/supervisord-sample.conf", data_dir());
	int rc = config_load(path, &l.cfg, &l.warn, &l.err);
	print_msgs("error", &l.err);
	assert_int_equal(rc, 0);
	assert_int_equal(l.err.count, 0);
	/* the sections and keys drover has no use for, each named once */
	static const char *const expect[] = {
	    ":22: [unix_http_server] is not used by drover; ignored",
	    ":46: [supervisord] logfile_maxbytes is not used by drover; ignored",
	    ":47: [supervisord] logfile_backups is not used by drover; ignored",
	    ":48: [supervisord] loglevel is not used by drover; ignored",
	    ":51: [supervisord] silent is not used by drover; ignored",
	    ":52: [supervisord] minfds is not used by drover; ignored",
	    ":53: [supervisord] minprocs is not used by drover; ignored",
	    ":67: [rpcinterface:supervisor] is not used by drover; ignored",
	    ":74: [supervisorctl] is not used by drover; ignored",
	    ":191: [program:web] stdout_capture_maxbytes is not used by drover; ignored",
	    ":192: [program:web] stdout_events_enabled is not used by drover; ignored",
	    ":194: [program:web] serverurl is not used by drover; ignored",
	    ":200: [program:cat] stderr_syslog is not used by drover; ignored",
	};
	size_t n = sizeof(expect) / sizeof(expect[0]);
	if (l.warn.count != n)
		print_msgs("warning", &l.warn);
	assert_int_equal(l.warn.count, n);
	for (size_t i = 0; i < n; i++) {
		char buf[PATH_MAX + 200];
		snprintf(buf, sizeof(buf), "%s%s", path, expect[i]);
		assert_string_equal(l.warn.items[i], buf);
	}

	assert_string_equal(l.cfg.logfile, "/tmp/supervisord.log");
	assert_string_equal(l.cfg.pidfile, "/tmp/supervisord.pid");
	assert_false(l.cfg.nodaemon);
	assert_int_equal(l.cfg.nprograms, 2);
	assert_string_equal(l.cfg.programs[0].name, "cat"); /* priority 5 */
	assert_string_equal(l.cfg.programs[1].name, "web");
	const struct program_config *web = &l.cfg.programs[1];
	assert_string_equal(web->group, "frontend");
	assert_int_equal(web->stopsignal, SIGQUIT);
	assert_true(web->killasgroup);
	expand_ok(&l.cfg, "web", 1, &w);
	assert_string_equal(w.name, "web_01");
	assert_argv(&w, "[/usr/bin/python3][-m][http.server][8001]");
	assert_string_equal(w.stdout_path, "/tmp/web-1.log");
	assert_null(w.stderr_path);
	assert_string_equal(w.user, "nobody");
	worker_spec_free(&w);
	loaded_free(&l);
}

/* ------------------------------------------------- program_config_equal */

static void test_program_config_equal(void **state)
{
	static const char base[] = "[program:a]\ncommand=/bin/a\nnumprocs=2\n"
	                           "process_name=%(program_name)s-%(process_num)d\n";
	static const char *const changes[] = {
	    "command=/bin/b\n",
	    "environment=A=1\n",
	    "directory=/tmp\n",
	    "user=nobody\n",
	    "numprocs_start=1\n",
	    "priority=1\n",
	    "autostart=false\n",
	    "startsecs=2\n",
	    "startretries=1\n",
	    "autorestart=true\n",
	    "exitcodes=0,1\n",
	    "stopsignal=INT\n",
	    "stopwaitsecs=3\n",
	    "killasgroup=true\n",
	    "stopasgroup=true\n",
	    "redirect_stderr=true\n",
	    "stdout_logfile=/tmp/x\n",
	    "stdout_logfile_maxbytes=1KB\n",
	    "stdout_logfile_backups=1\n",
	    "stderr_logfile=NONE\n",
	    "stderr_logfile_maxbytes=1KB\n",
	    "stderr_logfile_backups=1\n",
	    "umask=077\n",
	    "fatal_after=1/1s\n",
	    "backoff_max=1\n",
	};
	struct loaded a, b;
	char text[512];

	(void)state;
	load_ok(&a, base);
	/* same values at other lines, with comments: still equal */
	load_ok(&b, "; moved\n\n[program:a]\n\ncommand = /bin/a ; x\nnumprocs=2\n"
	            "process_name=%(program_name)s-%(process_num)d\n");
	assert_true(program_config_equal(&a.cfg.programs[0], &b.cfg.programs[0], false));
	loaded_free(&b);

	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", base, changes[i]);
		load_ok(&b, text);
		if (program_config_equal(&a.cfg.programs[0], &b.cfg.programs[0], false))
			fail_msg("equal despite %s", changes[i]);
		loaded_free(&b);
	}

	/* numprocs alone: different, unless told to ignore it */
	load_ok(&b, "[program:a]\ncommand=/bin/a\nnumprocs=5\n"
	            "process_name=%(program_name)s-%(process_num)d\n");
	assert_false(program_config_equal(&a.cfg.programs[0], &b.cfg.programs[0], false));
	assert_true(program_config_equal(&a.cfg.programs[0], &b.cfg.programs[0], true));
	loaded_free(&b);

	/* the group, and the default process_name (NULL) vs a written one */
	load_ok(&b, "[program:a]\ncommand=/bin/a\nnumprocs=2\n"
	            "process_name=%(program_name)s-%(process_num)d\n[group:g]\nprograms=a\n");
	assert_false(program_config_equal(&a.cfg.programs[0], &b.cfg.programs[0], false));
	loaded_free(&b);
	load_ok(&b, "[program:a]\ncommand=/bin/a\nnumprocs=2\n");
	assert_false(program_config_equal(&a.cfg.programs[0], &b.cfg.programs[0], false));
	assert_true(program_config_equal(&b.cfg.programs[0], &b.cfg.programs[0], false));
	loaded_free(&b);
	loaded_free(&a);
}

/* ------------------------------------------------------------ drover check */

static char *run_check(const char *file, int *rc, char **err_text)
{
	char path[PATH_MAX];
	char *out_buf = NULL, *err_buf = NULL;
	size_t out_len = 0, err_len = 0;

	snprintf(path, sizeof(path), "%s/%s", data_dir(), file);
	FILE *out = open_memstream(&out_buf, &out_len);
	FILE *err = open_memstream(&err_buf, &err_len);
	assert_non_null(out);
	assert_non_null(err);
	*rc = check_run(path, out, err);
	fclose(out);
	fclose(err);
	*err_text = err_buf;
	return out_buf;
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle) == NULL)
		fail_msg("output lacks \"%s\" in:\n%s", needle, haystack);
}

static void test_check_valid(void **state)
{
	int rc;
	char *err;
	char line[PATH_MAX + 200];

	(void)state;
	char *out = run_check("check-ok.ini", &rc, &err);
	assert_int_equal(rc, 0);
	assert_string_equal(err, "");
	snprintf(line, sizeof(line),
	         "; %s/check-ok.ini is valid: 2 programs, 3 workers, 0 warnings\n", data_dir());
	assert_contains(out, line);
	assert_contains(out, "\n[drover]\nstate_dir = /var/lib/drover-test\nlog_format = logfmt\n"
	                     "tail = false\n");
	assert_contains(out, "\n[supervisord]\nlogfile = (none)\n");
	/* priority order: squarer (10) before solo (999) */
	char *squarer = strstr(out, "[program:squarer]");
	char *solo = strstr(out, "[program:solo]");
	assert_non_null(squarer);
	assert_non_null(solo);
	assert_true(squarer < solo);
	snprintf(line, sizeof(line), "[program:squarer]  ; %s/check-ok.ini:5\ngroup = squarer\n",
	         data_dir());
	assert_contains(out, line);
	snprintf(line, sizeof(line), "numprocs = 2  ; %s/check-ok.ini:7\n", data_dir());
	assert_contains(out, line);
	assert_contains(out, "startretries = 3\n");
	assert_contains(out, "stdout_logfile_maxbytes = 50MB\n");
	assert_contains(out, "process_name = %(program_name)s_%(process_num)02d\n");
	/* each worker, its argv quoted for a shell, its environment and logs */
	assert_contains(out, "worker squarer_02:\n"
	                     "    process_num = 2\n"
	                     "    argv = /usr/bin/awk '{ print $1 * $1; fflush() }' 'it'\\''s'\n"
	                     "    env = SUPERVISOR_ENABLED=1 SUPERVISOR_PROCESS_NAME=squarer_02 "
	                     "SUPERVISOR_GROUP_NAME=squarer\n"
	                     "    stdout = /var/lib/drover-test/logs/squarer_02-stdout.log\n"
	                     "    stderr = (none)\n");
	assert_contains(out, "worker solo:\n    process_num = 0\n    argv = /bin/sleep 60\n"
	                     "    env = SUPERVISOR_ENABLED=1 SUPERVISOR_PROCESS_NAME=solo "
	                     "SUPERVISOR_GROUP_NAME=solo 'GREETING=hello world'\n");
	assert_contains(out, "    stdout = (none)\n    stderr = /tmp/solo.err\n");
	assert_null(strstr(out, "squarer_00"));
	free(out);
	free(err);
}

static void test_check_invalid(void **state)
{
	int rc;
	char *err;
	char expect[PATH_MAX * 2 + 200];

	(void)state;
	char *out = run_check("check-bad.ini", &rc, &err);
	assert_int_equal(rc, 1);
	assert_string_equal(out, "");
	snprintf(expect, sizeof(expect),
	         "error: %s/check-bad.ini:3: numprocs = \"many\": expected a positive integer\n"
	         "%s/check-bad.ini: not valid: 1 error\n",
	         data_dir(), data_dir());
	assert_string_equal(err, expect);
	free(out);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_bool),
	    cmocka_unit_test(test_parse_signal),
	    cmocka_unit_test(test_signal_name),
	    cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_supervisord_defaults),
	    cmocka_unit_test(test_every_program_key),
	    cmocka_unit_test(test_stopasgroup_implies_killasgroup),
	    cmocka_unit_test(test_autorestart_and_fatal_after_forms),
	    cmocka_unit_test(test_supervisord_and_drover_sections),
	    cmocka_unit_test(test_here_of_relative_main_file),
	    cmocka_unit_test(test_comments_like_supervisord),
	    cmocka_unit_test(test_multiline_values_and_lines),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_bom_and_crlf),
	    cmocka_unit_test(test_interpolation),
	    cmocka_unit_test(test_interpolation_in_numbers),
	    cmocka_unit_test(test_program_environment_feeds_env_names),
	    cmocka_unit_test(test_numprocs_naming),
	    cmocka_unit_test(test_log_paths_and_directory),
	    cmocka_unit_test(test_environment_order),
	    cmocka_unit_test(test_expand_error_reports_location),
	    cmocka_unit_test(test_groups),
	    cmocka_unit_test(test_programs_sorted_by_priority_then_name),
	    cmocka_unit_test(test_includes),
	    cmocka_unit_test(test_include_error_names_included_file),
	    cmocka_unit_test(test_include_skips_files_already_read),
	    cmocka_unit_test(test_included_file_unreadable),
	    cmocka_unit_test(test_error_numprocs),
	    cmocka_unit_test(test_error_missing_command),
	    cmocka_unit_test(test_error_empty_command),
	    cmocka_unit_test(test_error_unterminated_quote),
	    cmocka_unit_test(test_error_cannot_open),
	    cmocka_unit_test(test_error_duplicate_section),
	    cmocka_unit_test(test_error_bad_bool),
	    cmocka_unit_test(test_error_bad_autorestart),
	    cmocka_unit_test(test_error_bad_exitcodes),
	    cmocka_unit_test(test_error_bad_signal),
	    cmocka_unit_test(test_error_bad_size),
	    cmocka_unit_test(test_error_bad_integers_and_seconds),
	    cmocka_unit_test(test_error_bad_umask),
	    cmocka_unit_test(test_error_bad_fatal_after),
	    cmocka_unit_test(test_error_bad_log_format),
	    cmocka_unit_test(test_error_bad_environment),
	    cmocka_unit_test(test_error_unknown_interpolation),
	    cmocka_unit_test(test_error_bad_format),
	    cmocka_unit_test(test_error_process_name_needs_process_num),
	    cmocka_unit_test(test_error_bad_worker_name),
	    cmocka_unit_test(test_error_duplicate_worker_names),
	    cmocka_unit_test(test_error_killasgroup_contradiction),
	    cmocka_unit_test(test_error_group_membership),
	    cmocka_unit_test(test_error_malformed_lines),
	    cmocka_unit_test(test_error_include_without_files),
	    cmocka_unit_test(test_error_empty_paths),
	    cmocka_unit_test(test_all_errors_are_collected),
	    cmocka_unit_test(test_null_message_lists),
	    cmocka_unit_test(test_warnings),
	    cmocka_unit_test(test_later_duplicate_key_wins),
	    cmocka_unit_test(test_supervisord_sample_loads_with_warnings_only),
	    cmocka_unit_test(test_program_config_equal),
	    cmocka_unit_test(test_check_valid),
	    cmocka_unit_test(test_check_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
