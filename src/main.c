/* drover's command line: run the supervisor, or one of its subcommands. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/check.h"
#include "drover/console.h"
#include "drover/ctl.h"
#include "drover/map.h"
#include "drover/submit.h"
#include "drover/supervisor.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: drover [-c FILE] [--headless] [--theme NAME] [--tail]\n"
	           "              [--log-format logfmt|json]\n"
	           "       drover check [-c FILE]\n"
	           "       drover ctl [-c FILE | -s SOCKET] [--json] COMMAND [TARGET] [ARG]\n"
	           "       drover attach [-c FILE | -s SOCKET] [--theme NAME]\n"
	           "       drover --version\n"
	           "\n"
	           "Runs the programs of FILE (default ./supervisor.ini) and keeps them alive.\n"
	           "On a terminal it opens the console (F1 lists its keys); otherwise, or with\n"
	           "--headless, events go to stdout, one per line (logfmt, or JSON).\n"
	           "  -c, --config FILE     the config (supervisord-compatible INI)\n"
	           "  --headless            no console: write events to stdout\n"
	           "  --theme NAME          console colours: themes/NAME.theme (F2 cycles)\n"
	           "  --frames N            draw N console frames, then shut down (smoke tests)\n"
	           "  --tail                also echo every worker's output, prefixed by its name\n"
	           "  --log-format FORMAT   logfmt (default) or json\n"
	           "\n"
	           "  check                 validate the config and print every worker it makes\n"
	           "  ctl                   steer a running drover (drover ctl --help)\n"
	           "  attach                the console on a drover running elsewhere\n");
}

/* Workers get fds 0-2 by dup2; if drover itself was started without them,
 * pipes would land there and be clobbered. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", O_RDWR);
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
}

static int cmd_check(int argc, char **argv)
{
	const char *config = "supervisor.ini";
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'h':
			fprintf(stdout, "usage: drover check [-c FILE]\n");
			return 0;
		default:
			fprintf(stderr, "usage: drover check [-c FILE]\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "drover check: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return check_run(config, stdout, stderr);
}

int main(int argc, char **argv)
{
	ensure_std_fds();
	if (argc > 1 && !strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "attach"))
		return console_attach_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "submit"))
		return submit_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "map"))
		return map_main(argc - 1, argv + 1);

	struct supervisor_options opts = {.config_path = "supervisor.ini"};
	struct console_options console = {0};
	bool headless = false;
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"headless", no_argument, NULL, 'H'},
	    {"theme", required_argument, NULL, 'T'},
	    {"frames", required_argument, NULL, 'n'},
	    {"tail", no_argument, NULL, 't'},
	    {"log-format", required_argument, NULL, 'f'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			opts.config_path = optarg;
			break;
		case 'H':
			headless = true;
			break;
		case 'T':
			opts.theme = optarg;
			break;
		case 'n':
			console.frames = atoi(optarg);
			if (console.frames <= 0) {
				fprintf(stderr, "drover: --frames wants a positive number\n");
				return 2;
			}
			break;
		case 't':
			opts.tail = true;
			break;
		case 'f':
			opts.log_format_set = true;
			if (!strcmp(optarg, "json")) {
				opts.log_format = LOG_FORMAT_JSON;
			} else if (!strcmp(optarg, "logfmt")) {
				opts.log_format = LOG_FORMAT_LOGFMT;
			} else {
				fprintf(stderr,
				        "drover: --log-format '%s': expected logfmt or json\n",
				        optarg);
				return 2;
			}
			break;
		case 'V':
			printf("drover %s\n", DROVER_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "drover: unknown command '%s' (try drover --help)\n", argv[optind]);
		return 2;
	}
	/* the console when a person is watching; --tail means a stream of lines */
	opts.console = !headless && !opts.tail && isatty(STDOUT_FILENO);
	if (opts.console) {
		char err[512];
		if (!console_terminal_ok(err, sizeof(err))) {
			fprintf(stderr, "drover: %s\n", err);
			return 2;
		}
		console_configure(&console);
	}
	return supervisor_main(&opts);
}
