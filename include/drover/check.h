/* `drover check -c FILE`: load a config, report its warnings and errors, and
 * show the configuration as drover will run it. */
#ifndef DROVER_CHECK_H
#define DROVER_CHECK_H

#include <stdio.h>

/* Warnings and errors go to err, one per line ("warning: file:line: ...",
 * "error: file:line: ..."). If the config is valid, the expanded config goes
 * to out: the global settings, the groups, then each program in priority
 * order with every setting and each worker's final argv (shell-quoted, so it
 * can be pasted), environment additions and log paths. Returns 0 when the
 * config is valid, 1 when it is not. */
int check_run(const char *config_path, FILE *out, FILE *err);

#endif
