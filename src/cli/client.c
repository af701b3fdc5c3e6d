/* The client side of the control socket, shared by drover ctl, drover
 * submit and drover attach. */
#include "drover/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int client_connect(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "drover: socket path too long: %s\n", path);
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "drover: no drover is running on %s (%s)\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int client_send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One reply line, grown as needed. NULL at EOF. */
char *client_read_line(FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, in);
	if (n <= 0) {
		free(line);
		return NULL;
	}
	return line;
}

/* Send one request line and read its reply line. NULL when drover is gone. */
json_t *client_roundtrip(int fd, FILE *in, json_t *req)
{
	char *text = json_dumps(req, JSON_COMPACT);
	size_t len = strlen(text);
	text[len] = '\n';
	int rc = client_send_all(fd, text, len + 1);
	free(text);
	char *line = rc == 0 ? client_read_line(in) : NULL;
	json_t *reply = line ? json_loads(line, 0, NULL) : NULL;
	free(line);
	return reply;
}
