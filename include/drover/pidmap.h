/* pid -> owner lookup for the reaper: open addressing with backward-shift
 * deletion, so 10,000 exits a second cost a probe each. */
#ifndef DROVER_PIDMAP_H
#define DROVER_PIDMAP_H

#include <stddef.h>
#include <sys/types.h>

struct pidmap_entry {
	pid_t pid; /* 0 = empty */
	int kind;
	void *ptr;
};

struct pidmap {
	struct pidmap_entry *slots;
	size_t cap; /* power of two */
	size_t len;
};

/* 0 or -ENOMEM. Replaces an existing entry for pid. */
int pidmap_put(struct pidmap *m, pid_t pid, int kind, void *ptr);
/* The entry for pid, or NULL. */
struct pidmap_entry *pidmap_get(const struct pidmap *m, pid_t pid);
void pidmap_del(struct pidmap *m, pid_t pid);
void pidmap_free(struct pidmap *m);

#endif
