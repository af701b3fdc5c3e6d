/* The arithmetic of live metrics, with no I/O: CPU% from tick deltas (keyed
 * on pid and start time, so a reused pid never mixes two processes' ticks),
 * sums over process trees, and the units the front ends print. */
#ifndef DROVER_METRICS_H
#define DROVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One process as read from /proc in one tick. */
struct proc_sample {
	pid_t pid;
	pid_t ppid;
	char state;                 /* R S D T Z ... */
	unsigned long long ticks;   /* utime + stime */
	unsigned long long ticks_c; /* + cutime + cstime (waited-for children) */
	unsigned long long began;   /* start time, ticks since boot */
	unsigned long long rss;     /* bytes */
	int threads;
};

/* What a worker's figures remember between two ticks. */
struct cpu_track {
	pid_t pid;
	unsigned long long began;
	unsigned long long ticks;
	double when; /* monotonic seconds of the sample */
	bool valid;
};

/* CPU% (100 = one core) since the last sample of the same process, then
 * remember this one. Returns -1 when there is no figure: first sample, a
 * different process behind the pid (start time differs), or ticks that went
 * backwards. Clamped to [0, 100 * ncpu]. */
double cpu_track_update(struct cpu_track *t, pid_t pid, unsigned long long began,
                        unsigned long long ticks, double now, long hertz, int ncpu);

/* The process table of one tick, indexed for tree walks. */
struct proc_table {
	struct proc_sample *procs;
	size_t count;
	/* built by proc_table_index: */
	int *first_child, *next_sibling; /* -1 terminated */
	int *slots;                      /* open-addressing pid -> index */
	size_t nslots;
};

/* Build the pid index and the child lists. 0 or -ENOMEM. */
int proc_table_index(struct proc_table *t);
int proc_table_find(const struct proc_table *t, pid_t pid); /* index or -1 */
void proc_table_free_index(struct proc_table *t);

struct tree_sum {
	unsigned long long ticks_c; /* sum of ticks_c over the tree */
	unsigned long long rss;
	int procs;
};

/* Sum over the process at index root and all its descendants. */
void proc_tree_sum(const struct proc_table *t, int root, struct tree_sum *out);

/* "1.2G", "340M", "12K", "512B": one decimal below 10, none above. */
void metrics_format_bytes(unsigned long long bytes, char *buf, size_t len);

#endif
