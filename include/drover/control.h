/* Carrying out commands in the core, and the control socket that brings
 * them in from `drover ctl`, scripts and attached consoles. */
#ifndef DROVER_CONTROL_H
#define DROVER_CONTROL_H

#include <jansson.h>
#include <stddef.h>

#include "drover/command.h"

struct supervisor;
struct control_server;

/* Carry out a validated command. Returns a JSON object for the reply
 * ({"ok":true,...} or {"ok":false,"error":"..."}); the caller owns it. */
json_t *supervisor_execute(struct supervisor *sup, const struct command *cmd);

/* Begin an orderly shutdown (the same as SIGTERM). */
void supervisor_shutdown(struct supervisor *sup, const char *why);
/* Re-read the config and apply the difference (the same as SIGHUP). */
json_t *supervisor_reload(struct supervisor *sup);

/* The unix socket: 0600 in a 0700 dir, same-uid peers only, newline-delimited
 * JSON. Returns NULL with a sentence in err. */
struct control_server *control_server_start(struct supervisor *sup, const char *path, char *err,
                                            size_t errlen);
/* Before the last commit: the replies it releases go out, but no request
 * after them is read (it could open a batch nobody commits or answers). */
void control_server_quiesce(struct control_server *srv);
void control_server_stop(struct control_server *srv);

#endif
