/* Reading the figures: one libproc2 reap of every process per tick (the
 * /proc/PID/stat items only, the cheapest path measured), plus the system
 * line (load, CPU, memory). The core turns the table into per-worker
 * figures with the pure functions of metrics.h. */
#ifndef DROVER_SAMPLER_H
#define DROVER_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>

#include "drover/metrics.h"

struct pids_info;
struct meminfo_info;
struct stat_info;

struct sampler {
	struct pids_info *pids;
	struct meminfo_info *mem;
	struct stat_info *stat;
	long hertz;
	int ncpu;
	long page_size;
	double boot_wall;        /* wall-clock seconds at boot, for start times */
	struct proc_table table; /* the last tick's processes */
	size_t cap;
	double when; /* monotonic seconds of the last read (the reap's midpoint) */
	/* system line */
	double load[3];
	double cpu;                             /* busy % of all CPUs, -1 before two reads */
	unsigned long long mem_used, mem_total; /* bytes */
};

/* 0, or -1 with a sentence in err (e.g. /proc is not mounted). */
int sampler_open(struct sampler *s, char *err, size_t errlen);
/* One tick, stamped in `when`. 0, or -1 with a sentence in err; the table
 * is then empty. */
int sampler_read(struct sampler *s, char *err, size_t errlen);
void sampler_close(struct sampler *s);

#endif
