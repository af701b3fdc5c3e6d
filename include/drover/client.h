/* Talking to a running drover over its control socket. */
#ifndef DROVER_CLIENT_H
#define DROVER_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Connect; on failure print one line ("no drover is running on ...") to
 * stderr and return -1. */
int client_connect(const char *path);
int client_send_all(int fd, const char *buf, size_t len);
/* One line (malloc'd, with its newline), or NULL at EOF. */
char *client_read_line(FILE *in);
/* Send one request and read its reply; NULL when drover went away. */
json_t *client_roundtrip(int fd, FILE *in, json_t *req);

#endif
