#include "drover/sampler.h"

#include <errno.h>
#include <fcntl.h>
#include <libproc2/meminfo.h>
#include <libproc2/misc.h>
#include <libproc2/pids.h>
#include <libproc2/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Items served by /proc/PID/stat alone (see shared/LIBPROC2.md), and an enum
 * parallel to them: stacks hold results in item order. */
static enum pids_item items[] = {
    PIDS_ID_PID,     PIDS_ID_PPID,    PIDS_STATE, PIDS_TICS_ALL,
    PIDS_TICS_ALL_C, PIDS_TICS_BEGAN, PIDS_RSS,   PIDS_NLWP,
};
enum rel_item { I_PID, I_PPID, I_STATE, I_TICS, I_TICS_C, I_BEGAN, I_RSS, I_NLWP, I__COUNT };
_Static_assert(sizeof(items) / sizeof(items[0]) == I__COUNT, "items and rel_item differ");

static enum stat_item stat_items[] = {STAT_TIC_SUM_DELTA_BUSY, STAT_TIC_SUM_DELTA_TOTAL};

/* libproc2 ends the process when /proc is missing (fatal_proc_unmounted):
 * look first, and say so ourselves. */
static bool proc_mounted(void)
{
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int sampler_open(struct sampler *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->cpu = -1;
	if (!proc_mounted()) {
		snprintf(err, errlen, "/proc is not mounted: no metrics");
		return -1;
	}
	int rc = procps_pids_new(&s->pids, items, I__COUNT);
	if (rc < 0) {
		snprintf(err, errlen, "libproc2 pids: %s", strerror(-rc));
		return -1;
	}
	if (procps_meminfo_new(&s->mem) < 0 || procps_stat_new(&s->stat) < 0) {
		snprintf(err, errlen, "libproc2 meminfo/stat: cannot open");
		sampler_close(s);
		return -1;
	}
	s->hertz = procps_hertz_get();
	s->ncpu = (int)procps_cpu_count();
	s->page_size = sysconf(_SC_PAGESIZE);
	double up = 0, idle = 0;
	procps_uptime(&up, &idle);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	s->boot_wall = (double)now.tv_sec + (double)now.tv_nsec / 1e9 - up;
	return 0;
}

static void read_system(struct sampler *s)
{
	procps_loadavg(&s->load[0], &s->load[1], &s->load[2]);
	/* the select forms re-read every call (the GET forms cache a second) */
	enum meminfo_item mitems[] = {MEMINFO_MEM_TOTAL, MEMINFO_MEM_USED};
	struct meminfo_stack *m = procps_meminfo_select(s->mem, mitems, 2);
	if (m) {
		s->mem_total = (unsigned long long)m->head[0].result.ul_int * 1024;
		s->mem_used = (unsigned long long)m->head[1].result.ul_int * 1024;
	}
	struct stat_stack *st = procps_stat_select(s->stat, stat_items, 2);
	if (st) {
		long busy = st->head[0].result.sl_int, total = st->head[1].result.sl_int;
		/* the deltas run from the previous read, and procps_stat_new already
		 * read once: the first tick's window is the few milliseconds since
		 * sampler_open, a jiffy or two that reads 0, 33, 50 or 100 % and
		 * would stand until the next tick. Take a figure only over at least
		 * 50 ms of every CPU (refresh >= 0.1 s gives twice that). */
		if (total > 0 && total * 20 >= (long)s->ncpu * s->hertz)
			s->cpu = (double)busy * 100.0 / (double)total;
	}
}

static double monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int sampler_read(struct sampler *s, char *err, size_t errlen)
{
	s->when = monotonic();
	proc_table_free_index(&s->table);
	s->table.count = 0;
	if (!proc_mounted()) {
		snprintf(err, errlen, "/proc is not mounted: no metrics");
		return -1;
	}
	double began = s->when;
	struct pids_fetch *f = procps_pids_reap(s->pids, PIDS_FETCH_TASKS_ONLY);
	/* Each process's counters were read somewhere inside the reap, which
	 * takes milliseconds, more when drover is descheduled in the middle of
	 * it: its midpoint errs by at most half of that, where the start would
	 * count all of it against the interval. With drover frozen at random
	 * (5-300 ms) a burner read at most 185 % from the start, 126 % from the
	 * midpoint. */
	s->when = (began + monotonic()) / 2;
	if (!f) {
		snprintf(err, errlen, "libproc2 reap: %s", strerror(errno));
		return -1;
	}
	size_t n = (size_t)f->counts->total;
	if (n > s->cap) {
		size_t cap = n + n / 4 + 64;
		struct proc_sample *procs = realloc(s->table.procs, cap * sizeof(*procs));
		if (!procs) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		s->table.procs = procs;
		s->cap = cap;
	}
	/* copy out: the stacks belong to the library until the next reap */
	size_t count = 0;
	for (size_t i = 0; i < n && f->stacks[i]; i++) {
		struct pids_result *r = f->stacks[i]->head;
		struct proc_sample *p = &s->table.procs[count++];
		p->pid = r[I_PID].result.s_int;
		p->ppid = r[I_PPID].result.s_int;
		p->state = (char)r[I_STATE].result.s_ch;
		p->ticks = r[I_TICS].result.ull_int;
		p->ticks_c = r[I_TICS_C].result.ull_int;
		p->began = r[I_BEGAN].result.ull_int;
		p->rss =
		    (unsigned long long)r[I_RSS].result.ul_int * (unsigned long long)s->page_size;
		p->threads = r[I_NLWP].result.s_int;
	}
	s->table.count = count;
	if (proc_table_index(&s->table) < 0) {
		s->table.count = 0;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	read_system(s);
	return 0;
}

void sampler_close(struct sampler *s)
{
	proc_table_free_index(&s->table);
	free(s->table.procs);
	if (s->pids)
		procps_pids_unref(&s->pids);
	if (s->mem)
		procps_meminfo_unref(&s->mem);
	if (s->stat)
		procps_stat_unref(&s->stat);
	memset(s, 0, sizeof(*s));
}
