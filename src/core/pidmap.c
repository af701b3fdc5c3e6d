#include "drover/pidmap.h"

#include <errno.h>
#include <stdlib.h>

static size_t slot_of(const struct pidmap *m, pid_t pid)
{
	return ((size_t)pid * 2654435761u) & (m->cap - 1);
}

static int grow(struct pidmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	struct pidmap_entry *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	struct pidmap old = *m;
	m->slots = slots;
	m->cap = cap;
	m->len = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].pid)
			pidmap_put(m, old.slots[i].pid, old.slots[i].kind, old.slots[i].ptr);
	free(old.slots);
	return 0;
}

int pidmap_put(struct pidmap *m, pid_t pid, int kind, void *ptr)
{
	if ((m->len + 1) * 2 > m->cap && grow(m) < 0)
		return -ENOMEM;
	size_t i = slot_of(m, pid);
	while (m->slots[i].pid && m->slots[i].pid != pid)
		i = (i + 1) & (m->cap - 1);
	if (!m->slots[i].pid)
		m->len++;
	m->slots[i] = (struct pidmap_entry){.pid = pid, .kind = kind, .ptr = ptr};
	return 0;
}

struct pidmap_entry *pidmap_get(const struct pidmap *m, pid_t pid)
{
	if (!m->cap || pid <= 0)
		return NULL;
	for (size_t i = slot_of(m, pid); m->slots[i].pid; i = (i + 1) & (m->cap - 1))
		if (m->slots[i].pid == pid)
			return &m->slots[i];
	return NULL;
}

void pidmap_del(struct pidmap *m, pid_t pid)
{
	struct pidmap_entry *e = pidmap_get(m, pid);
	if (!e)
		return;
	size_t i = (size_t)(e - m->slots);
	m->slots[i].pid = 0;
	m->len--;
	/* backward shift: pull later members of the run into the hole */
	for (size_t j = (i + 1) & (m->cap - 1); m->slots[j].pid; j = (j + 1) & (m->cap - 1)) {
		size_t home = slot_of(m, m->slots[j].pid);
		/* move j into the hole i unless its home lies cyclically in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			m->slots[i] = m->slots[j];
			m->slots[j].pid = 0;
			i = j;
		}
	}
}

void pidmap_free(struct pidmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->len = 0;
}
