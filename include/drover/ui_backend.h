/* How the console reaches a supervisor: in the same process (commands go
 * to supervisor_execute, events come from an event sink on the bus) or
 * over the control socket (the same JSON requests, and a second connection
 * that streams events). Either way a request is (cmd, target, arg) and a
 * reply is the JSON object the control socket would send. */
#ifndef DROVER_UI_BACKEND_H
#define DROVER_UI_BACKEND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "drover/event.h"
#include "drover/loop.h"

struct supervisor;

/* One event as a JSON line (without its newline), or NULL when the event
 * stream ended (the supervisor went away). Called from inside the core in
 *-process: it must not call back into the supervisor. */
typedef void (*ui_event_fn)(void *arg, const char *line, size_t len);

struct ui_backend {
	struct supervisor *sup; /* in-process, else NULL */
	struct event_sink sink;
	bool sink_added;
	/* attached */
	int fd;                   /* requests and replies */
	struct loop_watch events; /* the event stream */
	struct loop *loop;
	char *evbuf, *rbuf;
	size_t evlen, rlen;
	ui_event_fn on_event;
	void *arg;
};

void ui_backend_local(struct ui_backend *b, struct supervisor *sup, ui_event_fn fn, void *arg);
/* Connect twice to the control socket at path; the event stream is
 * watched on loop. 0, or -1 with a sentence in err. */
int ui_backend_connect(struct ui_backend *b, struct loop *loop, const char *path, ui_event_fn fn,
                       void *arg, char *err, size_t errlen);
/* Never NULL: failures come back as {"ok":false,"error":"..."}. */
json_t *ui_backend_request(struct ui_backend *b, const char *cmd, const char *target,
                           const char *arg);
void ui_backend_close(struct ui_backend *b);

#endif
