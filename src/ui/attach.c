/* `drover attach`: the console on a drover that runs elsewhere (headless,
 * under systemd), over its control socket. Same screen, same keys;
 * quitting leaves the supervisor running. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console_internal.h"
#include "drover/config.h"
#include "drover/console.h"
#include "drover/ctl.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: drover attach [-c FILE | -s SOCKET] [--theme NAME] [--frames N]\n"
	           "\n"
	           "Opens the console on a running drover through its control socket.\n"
	           "  -c, --config FILE   the drover's config (default ./supervisor.ini)\n"
	           "  -s, --socket PATH   its control socket, instead of the config's\n"
	           "  --theme NAME        a console theme (themes/NAME.theme)\n"
	           "  --frames N          draw N frames, then leave (smoke tests, benchmarks)\n");
}

int console_attach_main(int argc, char **argv)
{
	const char *config = "supervisor.ini", *socket_path = NULL, *theme = NULL;
	int frames = 0;
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'}, {"socket", required_argument, NULL, 's'},
	    {"theme", required_argument, NULL, 'T'},  {"frames", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},         {0},
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'T':
			theme = optarg;
			break;
		case 'n':
			frames = atoi(optarg);
			if (frames <= 0) {
				fprintf(stderr,
				        "drover attach: --frames wants a positive number\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "drover attach: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	char err[512];
	if (!isatty(STDOUT_FILENO)) {
		fprintf(stderr, "drover attach: stdout is not a terminal; for scripts use `drover "
		                "ctl status` or `drover ctl events`\n");
		return 2;
	}
	if (!console_terminal_ok(err, sizeof(err))) {
		fprintf(stderr, "drover attach: %s\n", err);
		return 2;
	}
	char path[4096];
	ctl_socket_path(socket_path, config, path, sizeof(path));
	double refresh = 1.0;
	struct config cfg;
	if (!socket_path && config_load(config, &cfg, NULL, NULL) == 0) {
		refresh = cfg.refresh;
		config_free(&cfg);
	}
	signal(SIGPIPE, SIG_IGN); /* a drover that went away is an error code */
	struct loop loop;
	if (loop_init(&loop) < 0) {
		perror("drover attach: epoll");
		return 1;
	}
	int rc =
	    console_attached_run(&loop, path, socket_path ? NULL : config, theme, refresh, frames);
	loop_free(&loop);
	return rc;
}
