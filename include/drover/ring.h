/* The last lines a worker printed, kept in memory for the console and
 * `drover ctl log`. A fixed number of lines, each cut to a maximum length. */
#ifndef DROVER_RING_H
#define DROVER_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_LINES    200
#define RING_LINE_MAX 1024

struct ring {
	char **lines;   /* RING_LINES slots, allocated at the first line */
	size_t head;    /* next slot to write */
	size_t count;   /* lines held, <= RING_LINES */
	uint64_t total; /* lines ever pushed */
};

void ring_push(struct ring *r, const char *line, size_t len);
/* The i-th most recent line held (0 = newest), or NULL. */
const char *ring_get(const struct ring *r, size_t i);
void ring_free(struct ring *r);

#endif
