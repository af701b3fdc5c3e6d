/* The operations console: a curses front end that draws the snapshot and
 * sends commands from the shared vocabulary. It runs inside drover's own
 * event loop (in-process) or in its own loop over the control socket
 * (`drover attach`); both speak the same requests, so the screen and the
 * keys are the same. */
#ifndef DROVER_CONSOLE_H
#define DROVER_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

struct supervisor;

/* What main() takes from the command line for the in-process console (the
 * theme comes with supervisor_options). */
struct console_options {
	/* > 0: draw this many frames back to back, then shut down (htop's -n:
	 * smoke tests and the benchmark). With DROVER_FRAME_LOG=FILE in the
	 * environment, each frame appends "total fetch lines draw" in ms. */
	int frames;
};

void console_configure(const struct console_options *opts);

/* Can this terminal run the console? false with a sentence in err when it
 * cannot address the cursor (TERM=dumb, unknown TERM). */
bool console_terminal_ok(char *err, size_t errlen);

/* Open the console on drover's terminal inside its loop: 0 or -1 (with a
 * sentence on stderr). console_stop is safe to call when it never started. */
int console_start(struct supervisor *sup);
void console_stop(struct supervisor *sup);

/* `drover attach [-c FILE | -s SOCKET] [--theme NAME]`: the console on a
 * drover that runs elsewhere. argv[0] is "attach". Returns the exit code. */
int console_attach_main(int argc, char **argv);

#endif
