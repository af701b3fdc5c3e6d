/* Placeholder until the console lands: main() never selects it yet. */
#include "drover/console.h"

#include <stdio.h>

static struct console_options options;

void console_configure(const struct console_options *opts)
{
	options = *opts;
}

bool console_terminal_ok(char *err, size_t errlen)
{
	snprintf(err, errlen, "the console is not built yet: use --headless");
	return false;
}

int console_start(struct supervisor *sup)
{
	(void)sup;
	fprintf(stderr, "drover: the console is not built yet: use --headless\n");
	return -1;
}

void console_stop(struct supervisor *sup)
{
	(void)sup;
}

int console_attach_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "drover attach: the console is not built yet\n");
	return 2;
}
