#include "drover/ring.h"

#include "drover/utf8.h"

#include <stdlib.h>
#include <string.h>

void ring_push(struct ring *r, const char *line, size_t len)
{
	if (!r->lines && !(r->lines = calloc(RING_LINES, sizeof(*r->lines))))
		return;
	if (len > RING_LINE_MAX)
		len = RING_LINE_MAX;
	/* the ring feeds JSON replies and the console: keep it valid UTF-8 */
	char *copy = malloc(3 * len + 1);
	if (!copy)
		return; /* losing a display line beats losing the supervisor */
	utf8_sanitize(line, len, copy);
	free(r->lines[r->head]);
	r->lines[r->head] = copy;
	r->head = (r->head + 1) % RING_LINES;
	if (r->count < RING_LINES)
		r->count++;
	r->total++;
}

const char *ring_get(const struct ring *r, size_t i)
{
	if (i >= r->count)
		return NULL;
	return r->lines[(r->head + RING_LINES - 1 - i) % RING_LINES];
}

void ring_free(struct ring *r)
{
	for (size_t i = 0; r->lines && i < RING_LINES; i++)
		free(r->lines[i]);
	free(r->lines);
	memset(r, 0, sizeof(*r));
}
