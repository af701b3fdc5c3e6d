/* The console's two ways to a supervisor, behind one request function. */
#include "drover/ui_backend.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "drover/command.h"
#include "drover/control.h"
#include "drover/supervisor.h"

/* A request waits this long for its reply before the console gives up on
 * the supervisor (it answers from its loop, so only a hung drover is this
 * slow). */
#define REPLY_TIMEOUT_MS 5000
#define LINE_MAX_BYTES   (64 * 1024 * 1024)

static json_t *error_reply(const char *fmt, const char *a, const char *b)
{
	char msg[512];
	snprintf(msg, sizeof(msg), fmt, a, b);
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static void sink_write(struct event_sink *sink, const char *line, size_t len)
{
	struct ui_backend *b = sink->arg;
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	b->on_event(b->arg, line, len);
}

void ui_backend_local(struct ui_backend *b, struct supervisor *sup, ui_event_fn fn, void *arg)
{
	memset(b, 0, sizeof(*b));
	b->fd = -1;
	b->events.fd = -1;
	b->sup = sup;
	b->on_event = fn;
	b->arg = arg;
	b->sink = (struct event_sink){.format = LOG_FORMAT_JSON, .write = sink_write, .arg = b};
	event_bus_add(&sup->bus, &b->sink);
	b->sink_added = true;
}

/* ---- attached ---- */

static int dial(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		snprintf(err, errlen, "no drover is running on %s (%s)", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int send_line(int fd, const char *text)
{
	size_t len = strlen(text);
	char *buf = malloc(len + 1);
	if (!buf)
		return -1;
	memcpy(buf, text, len);
	buf[len++] = '\n';
	int rc = 0;
	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = -1;
			break;
		}
		off += (size_t)w;
	}
	free(buf);
	return rc;
}

/* Append what fd has to *buf; 0 at EOF, -1 on error, else bytes read. */
static ssize_t read_more(int fd, char **buf, size_t *len)
{
	char chunk[65536];
	ssize_t n;
	do
		n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? -2 : n;
	if (*len + (size_t)n > LINE_MAX_BYTES)
		return -1;
	char *grown = realloc(*buf, *len + (size_t)n + 1);
	if (!grown)
		return -1;
	memcpy(grown + *len, chunk, (size_t)n);
	*buf = grown;
	*len += (size_t)n;
	(*buf)[*len] = '\0';
	return n;
}

static void events_readable(struct loop *loop, struct loop_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	struct ui_backend *b = w->arg;
	for (;;) {
		ssize_t n = read_more(b->events.fd, &b->evbuf, &b->evlen);
		if (n == -2)
			break;
		if (n <= 0) {
			loop_watch_del(b->loop, &b->events);
			close(b->events.fd);
			b->events.fd = -1;
			b->on_event(b->arg, NULL, 0);
			return;
		}
	}
	size_t start = 0;
	for (char *nl; (nl = memchr(b->evbuf + start, '\n', b->evlen - start));) {
		size_t len = (size_t)(nl - (b->evbuf + start));
		b->on_event(b->arg, b->evbuf + start, len);
		start += len + 1;
	}
	memmove(b->evbuf, b->evbuf + start, b->evlen - start);
	b->evlen -= start;
}

/* Wait for one whole line on fd into *buf; returns its length or -1. */
static ssize_t wait_line(int fd, char **buf, size_t *len)
{
	for (;;) {
		char *nl = *buf ? memchr(*buf, '\n', *len) : NULL;
		if (nl)
			return nl - *buf;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, REPLY_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t n = read_more(fd, buf, len);
		if (n == 0 || n == -1)
			return -1;
	}
}

static json_t *take_reply(int fd, char **buf, size_t *len)
{
	ssize_t n = wait_line(fd, buf, len);
	if (n < 0)
		return NULL;
	json_t *reply = json_loadb(*buf, (size_t)n, 0, NULL);
	memmove(*buf, *buf + n + 1, *len - (size_t)n - 1);
	*len -= (size_t)n + 1;
	return reply;
}

static json_t *remote_request(struct ui_backend *b, const char *cmd, const char *target,
                              const char *arg)
{
	if (b->fd < 0)
		return error_reply("not connected to drover%s%s", "", "");
	json_t *req = json_pack("{s:s}", "cmd", cmd);
	if (target && *target)
		json_object_set_new(req, "target", json_string(target));
	if (arg && *arg)
		json_object_set_new(req, "arg", json_string(arg));
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	int rc = text ? send_line(b->fd, text) : -1;
	free(text);
	json_t *reply = rc < 0 ? NULL : take_reply(b->fd, &b->rbuf, &b->rlen);
	if (!json_is_object(reply)) {
		json_decref(reply);
		close(b->fd);
		b->fd = -1;
		return error_reply("lost the connection to drover%s%s", "", "");
	}
	return reply;
}

int ui_backend_connect(struct ui_backend *b, struct loop *loop, const char *path, ui_event_fn fn,
                       void *arg, char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	b->loop = loop;
	b->on_event = fn;
	b->arg = arg;
	b->events.fd = -1;
	b->fd = dial(path, err, errlen);
	if (b->fd < 0)
		return -1;
	int evfd = dial(path, err, errlen);
	if (evfd < 0) {
		ui_backend_close(b);
		return -1;
	}
	json_t *reply = NULL;
	if (send_line(evfd, "{\"cmd\":\"events\"}") == 0)
		reply = take_reply(evfd, &b->evbuf, &b->evlen);
	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *why = json_string_value(json_object_get(reply, "error"));
		snprintf(err, errlen, "%s: %s", path, why ? why : "no reply to the events request");
		json_decref(reply);
		close(evfd);
		ui_backend_close(b);
		return -1;
	}
	json_decref(reply);
	b->events = (struct loop_watch){.fd = evfd, .cb = events_readable, .arg = b};
	if (loop_watch_add(loop, &b->events, EPOLLIN) < 0) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		ui_backend_close(b);
		return -1;
	}
	return 0;
}

/* ---- both ---- */

json_t *ui_backend_request(struct ui_backend *b, const char *cmd, const char *target,
                           const char *arg)
{
	if (!b->sup)
		return remote_request(b, cmd, target, arg);
	struct command c;
	char err[512];
	if (command_parse(cmd, target, arg, &c, err, sizeof(err)) < 0)
		return error_reply("%s%s", err, "");
	json_t *reply = supervisor_execute(b->sup, &c);
	return reply ? reply : error_reply("%s: no reply%s", cmd, "");
}

void ui_backend_close(struct ui_backend *b)
{
	if (b->sink_added) {
		event_bus_remove(&b->sup->bus, &b->sink);
		b->sink_added = false;
	}
	if (b->events.fd >= 0) {
		if (b->loop)
			loop_watch_del(b->loop, &b->events);
		close(b->events.fd);
		b->events.fd = -1;
	}
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	free(b->evbuf);
	free(b->rbuf);
	b->evbuf = b->rbuf = NULL;
	b->evlen = b->rlen = 0;
}
