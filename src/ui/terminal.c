/* Can this terminal run the console at all? Asked before drover starts
 * anything, so that a dumb terminal gets one clear line instead of a
 * garbled screen. Apart from console.c because <term.h> defines macros
 * (lines, columns) that clash with ordinary names. */
#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <unistd.h>

#include "drover/console.h"

bool console_terminal_ok(char *err, size_t errlen)
{
	const char *term = getenv("TERM");
	if (!term || !*term || !strcmp(term, "dumb")) {
		snprintf(err, errlen,
		         "this terminal (TERM=%s) cannot run the console; watch with `drover ctl "
		         "top`, or run `drover --headless`",
		         term && *term ? term : "");
		return false;
	}
	int errret = 0;
	if (setupterm(NULL, STDOUT_FILENO, &errret) != OK) {
		snprintf(err, errlen,
		         "unknown terminal type TERM=%s; watch with `drover ctl top`, or run "
		         "`drover --headless`",
		         term);
		return false;
	}
	const char *cup = tigetstr("cup");
	bool ok = cup && cup != (char *)-1;
	del_curterm(cur_term);
	if (!ok)
		snprintf(err, errlen,
		         "this terminal (TERM=%s) cannot move the cursor; watch with `drover ctl "
		         "top`, or run `drover --headless`",
		         term);
	return ok;
}
