/* The control socket: newline-delimited JSON over a unix socket. Every
 * client is non-blocking with bounded buffers, so a slow, silent, hostile or
 * simply numerous client can cost drover memory up to a limit and then its
 * connection, never the event loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "drover/control.h"
#include "drover/queue.h"
#include "drover/supervisor.h"

#define REQUEST_MAX   (64 * 1024)       /* longest request line */
#define REPLY_BACKLOG (4 * 1024 * 1024) /* unread output before a client is dropped */
#define CLIENTS_MAX   1024

struct client {
	struct control_server *srv;
	struct loop_watch watch;
	char in[REQUEST_MAX + 1]; /* a full-size request and its newline */
	size_t inlen;
	bool discarding; /* inside an over-long line: skip to its end */
	char *out;
	size_t outlen, outoff, outcap;
	bool want_read, want_write; /* what the watch asks epoll for */
	bool subscribed;            /* streaming events */
	bool closing;               /* close once the output is flushed */
	bool dead;                  /* closed, freed at the end of the loop turn */
	int deferred;               /* replies promised but not yet sent */
	struct client *next;
};

struct control_server {
	struct supervisor *sup;
	struct loop_watch watch;
	char *path;
	struct client *clients;
	size_t nclients;
	struct event_sink sink;
	bool quiet; /* the last replies go out; no further request is read */
};

static void client_kill(struct client *c, const char *why);

static void emit_client_event(struct control_server *srv, enum event_level level, const char *what,
                              long long uid)
{
	struct event e;
	event_init(&e, level, "control");
	event_str(&e, "message", what);
	if (uid >= 0)
		event_int(&e, "uid", uid);
	supervisor_emit(srv->sup, &e);
}

static void update_interest(struct client *c)
{
	/* No reading while a reply is owed: the requests behind it wait in
	 * the socket, not in a buffer that would overflow (back-pressure), and
	 * an EOF is seen only once what came before it is answered. */
	bool want_read = !c->deferred && !c->closing;
	bool want_write = c->outlen > c->outoff;
	if (want_read == c->want_read && want_write == c->want_write)
		return;
	c->want_read = want_read;
	c->want_write = want_write;
	loop_watch_mod(&c->srv->sup->loop, &c->watch,
	               (want_read ? EPOLLIN : 0) | (want_write ? EPOLLOUT : 0));
}

static void client_flush(struct client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n =
		    send(c->watch.fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			client_kill(c, NULL);
			return;
		}
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->outlen) {
		c->outoff = c->outlen = 0;
		if (c->closing) {
			client_kill(c, NULL);
			return;
		}
	}
	update_interest(c);
}

static void client_send(struct client *c, const char *data, size_t len)
{
	if (c->dead)
		return;
	if (c->outlen - c->outoff + len > REPLY_BACKLOG) {
		client_kill(c, "client does not read its replies: dropped");
		return;
	}
	if (c->outlen + len > c->outcap) {
		if (c->outoff) { /* compact before growing */
			memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
			c->outlen -= c->outoff;
			c->outoff = 0;
		}
		size_t cap = c->outcap ? c->outcap : 4096;
		while (cap < c->outlen + len)
			cap *= 2;
		if (cap != c->outcap) {
			char *out = realloc(c->out, cap);
			if (!out) {
				client_kill(c, "out of memory for a client");
				return;
			}
			c->out = out;
			c->outcap = cap;
		}
	}
	memcpy(c->out + c->outlen, data, len);
	c->outlen += len;
	client_flush(c);
}

static void client_reply(struct client *c, json_t *reply)
{
	char *text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	if (!text) {
		client_kill(c, "cannot encode a reply");
		return;
	}
	size_t len = strlen(text);
	text[len] = '\n'; /* replaces the NUL: send len + 1 bytes */
	client_send(c, text, len + 1);
	free(text);
}

static void handle_input(struct client *c);

/* A reply that had to wait (for the commit, or a drained queue). */
static void deferred_reply(void *arg, json_t *reply)
{
	struct client *c = arg;
	c->deferred--;
	client_reply(c, reply);
	if (!c->dead && !c->deferred)
		handle_input(c); /* requests held back to keep replies in order */
	if (!c->dead)
		update_interest(c);
}

static json_t *error_reply(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

/* "arg" may be a string or a number ({"cmd":"scale","arg":8}). */
static bool arg_text(json_t *v, char *buf, size_t len)
{
	if (!v || json_is_null(v))
		buf[0] = '\0';
	else if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		return false;
	return true;
}

/* Requests whose reply waits: for the commit (submit, cancel, retry) or
 * for a drained queue (wait). */
static bool replies_later(enum command_id id)
{
	return id == CMD_SUBMIT || id == CMD_WAIT || id == CMD_CANCEL || id == CMD_RETRY;
}

/* The reply now, or NULL: it comes through deferred_reply. */
static json_t *deferred_request(struct client *c, const struct command *cmd, json_t *req)
{
	struct supervisor *sup = c->srv->sup;
	switch (cmd->spec->id) {
	case CMD_SUBMIT:
		return queue_submit(sup, cmd->target, json_object_get(req, "tasks"),
		                    !json_is_false(json_object_get(req, "ids")), deferred_reply, c);
	case CMD_WAIT:
		return queue_wait(sup, cmd->target, deferred_reply, c);
	case CMD_CANCEL:
		return queue_cancel(sup, cmd->target, deferred_reply, c);
	default:
		return queue_retry(sup, cmd->target, deferred_reply, c);
	}
}

static void handle_request(struct client *c, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	char msg[512];
	if (!req) {
		snprintf(msg, sizeof(msg), "invalid JSON at column %d: %s", jerr.column, jerr.text);
		client_reply(c, error_reply(msg));
		return;
	}
	json_t *cmd = json_object_get(req, "cmd");
	char target[512], arg[512];
	if (!json_is_object(req) || !json_is_string(cmd)) {
		client_reply(c, error_reply("a request is a JSON object with a \"cmd\" string, "
		                            "e.g. {\"cmd\":\"status\"}"));
	} else if (!arg_text(json_object_get(req, "target"), target, sizeof(target)) ||
	           !arg_text(json_object_get(req, "arg"), arg, sizeof(arg))) {
		client_reply(c, error_reply("\"target\" and \"arg\" must be strings or numbers"));
	} else {
		struct command command;
		if (command_parse(json_string_value(cmd), target, arg, &command, msg, sizeof(msg)) <
		    0) {
			client_reply(c, error_reply(msg));
		} else if (replies_later(command.spec->id)) {
			json_t *now = deferred_request(c, &command, req);
			if (now)
				client_reply(c, now);
			else
				c->deferred++;
		} else if (command.spec->id == CMD_EVENTS) {
			c->subscribed = true;
			c->srv->sup->watchers++;
			monitor_schedule(c->srv->sup);
			client_reply(c, json_pack("{s:b, s:s}", "ok", 1, "message",
			                          "streaming events as JSON lines"));
		} else {
			client_reply(c, supervisor_execute(c->srv->sup, &command));
		}
	}
	json_decref(req);
}

/* Take every complete line out of the input buffer. */
static void handle_input(struct client *c)
{
	if (c->srv->quiet)
		return; /* drover is exiting: what it has not read stays unread */
	size_t start = 0;
	for (;;) {
		if (c->deferred)
			break; /* one reply per request, in order: wait for it */
		char *nl = memchr(c->in + start, '\n', c->inlen - start);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (c->in + start));
		if (c->discarding)
			c->discarding = false;
		else if (len && !c->subscribed)
			handle_request(c, c->in + start, len);
		start += len + 1;
		if (c->dead)
			return;
	}
	memmove(c->in, c->in + start, c->inlen - start);
	c->inlen -= start;
	if (c->inlen == sizeof(c->in)) { /* no newline within REQUEST_MAX + 1 bytes */
		if (!c->discarding) {
			char msg[96];
			snprintf(msg, sizeof(msg), "request longer than %d bytes: ignored",
			         REQUEST_MAX);
			client_reply(c, error_reply(msg));
		}
		c->discarding = true;
		c->inlen = 0;
	}
}

static void client_io(struct loop *loop, struct loop_watch *w, uint32_t events)
{
	(void)loop;
	struct client *c = w->arg;
	if (events & EPOLLOUT)
		client_flush(c);
	if (c->dead || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = recv(c->watch.fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
		if (n > 0) {
			c->inlen += (size_t)n;
			handle_input(c);
			if (c->dead)
				return;
			if (c->deferred) {
				update_interest(c); /* deferred_reply reads on */
				return;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* hung up (a half-written request dies with it) or broken; after
		 * EPOLLHUP the peer shut both ways: nothing owed can reach it, and
		 * waiting to send it would spin on the HUP */
		if (c->outlen > c->outoff && n == 0 && !(events & (EPOLLHUP | EPOLLERR))) {
			c->closing = true;
			update_interest(c);
		} else {
			client_kill(c, NULL);
		}
		return;
	}
}

static void client_kill(struct client *c, const char *why)
{
	if (c->dead)
		return;
	c->dead = true; /* first: the event below must not come back to it */
	if (c->deferred)
		queue_forget(c->srv->sup, c);
	if (c->subscribed)
		c->srv->sup->watchers--;
	loop_watch_del(&c->srv->sup->loop, &c->watch);
	close(c->watch.fd);
	c->watch.fd = -1;
	if (why)
		emit_client_event(c->srv, EVENT_WARN, why, -1);
}

/* Free the clients closed during this loop turn. */
static void reap_clients(struct loop *loop, void *arg)
{
	(void)loop;
	struct control_server *srv = arg;
	for (struct client **p = &srv->clients; *p;) {
		struct client *c = *p;
		if (!c->dead) {
			p = &c->next;
			continue;
		}
		*p = c->next;
		srv->nclients--;
		free(c->out);
		free(c);
	}
}

static void accept_clients(struct loop *loop, struct loop_watch *w, uint32_t events)
{
	(void)events;
	struct control_server *srv = w->arg;
	for (;;) {
		int fd = accept4(srv->watch.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or out of fds: try again on the next wake-up */
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    (cred.uid != getuid() && cred.uid != 0)) {
			static const char refused[] =
			    "{\"ok\":false,\"error\":\"permission denied: not drover's user\"}\n";
			ssize_t ignored = send(fd, refused, sizeof(refused) - 1, MSG_NOSIGNAL);
			(void)ignored;
			close(fd);
			emit_client_event(srv, EVENT_WARN, "refused a client of another user",
			                  (long long)cred.uid);
			continue;
		}
		if (srv->nclients >= CLIENTS_MAX) {
			static const char busy[] =
			    "{\"ok\":false,\"error\":\"too many clients\"}\n";
			ssize_t ignored = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL);
			(void)ignored;
			close(fd);
			continue;
		}
		struct client *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = srv;
		c->watch.fd = fd;
		c->watch.cb = client_io;
		c->watch.arg = c;
		c->want_read = true;
		if (loop_watch_add(loop, &c->watch, EPOLLIN) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = srv->clients;
		srv->clients = c;
		srv->nclients++;
	}
}

/* Events fan out to every subscribed client, as JSON lines. */
static void sink_write(struct event_sink *sink, const char *line, size_t len)
{
	struct control_server *srv = sink->arg;
	for (struct client *c = srv->clients; c; c = c->next)
		if (c->subscribed && !c->dead)
			client_send(c, line, len);
}

/* Is a drover answering on path? */
static bool socket_alive(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool alive = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
	close(fd);
	return alive;
}

struct control_server *control_server_start(struct supervisor *sup, const char *path, char *err,
                                            size_t errlen)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(err, errlen,
		         "socket path %s is longer than %zu bytes: set [drover] socket", path,
		         sizeof(addr.sun_path) - 1);
		return NULL;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);

	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			return NULL;
		}
		if (socket_alive(&addr)) {
			snprintf(err, errlen, "another drover is running on %s", path);
			return NULL;
		}
		unlink(path); /* stale: its drover is gone */
	}

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return NULL;
	}
	/* born 0600: no window in which another user could connect */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old);
	if (rc < 0 || listen(fd, 128) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	struct control_server *srv = calloc(1, sizeof(*srv));
	if (!srv || !(srv->path = strdup(path))) {
		free(srv);
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->sup = sup;
	srv->watch.fd = fd;
	srv->watch.cb = accept_clients;
	srv->watch.arg = srv;
	loop_watch_add(&sup->loop, &srv->watch, EPOLLIN);
	loop_add_hook(&sup->loop, reap_clients, srv);
	srv->sink = (struct event_sink){.format = LOG_FORMAT_JSON, .write = sink_write, .arg = srv};
	event_bus_add(&sup->bus, &srv->sink);
	return srv;
}

void control_server_quiesce(struct control_server *srv)
{
	srv->quiet = true;
}

void control_server_stop(struct control_server *srv)
{
	for (struct client *c = srv->clients; c; c = c->next) {
		if (!c->dead) {
			/* last words (the shutdown events) go out if the client reads */
			if (c->outlen > c->outoff) {
				ssize_t ignored =
				    send(c->watch.fd, c->out + c->outoff, c->outlen - c->outoff,
				         MSG_NOSIGNAL | MSG_DONTWAIT);
				(void)ignored;
			}
			client_kill(c, NULL);
		}
	}
	reap_clients(NULL, srv);
	event_bus_remove(&srv->sup->bus, &srv->sink);
	loop_watch_del(&srv->sup->loop, &srv->watch);
	close(srv->watch.fd);
	unlink(srv->path);
	free(srv->path);
	free(srv);
}
