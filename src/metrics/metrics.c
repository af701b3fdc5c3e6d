#include "drover/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

double cpu_track_update(struct cpu_track *t, pid_t pid, unsigned long long began,
                        unsigned long long ticks, double now, long hertz, int ncpu)
{
	double cpu = -1;
	bool same = t->valid && t->pid == pid && t->began == began && ticks >= t->ticks;
	if (same && now > t->when && hertz > 0) {
		cpu = (double)(ticks - t->ticks) / (double)hertz / (now - t->when) * 100.0;
		double max = 100.0 * (ncpu > 0 ? ncpu : 1);
		if (cpu > max) /* sampling jitter: ticks land a little late */
			cpu = max;
	}
	t->pid = pid;
	t->began = began;
	t->ticks = ticks;
	t->when = now;
	t->valid = true;
	return cpu;
}

static size_t slot_of(pid_t pid, size_t nslots)
{
	return ((size_t)pid * 2654435761u) & (nslots - 1);
}

int proc_table_index(struct proc_table *t)
{
	size_t nslots = 64;
	while (nslots < t->count * 2)
		nslots *= 2;
	t->nslots = nslots;
	t->slots = malloc(nslots * sizeof(*t->slots));
	t->first_child = malloc((t->count + 1) * sizeof(int));
	t->next_sibling = malloc((t->count + 1) * sizeof(int));
	if (!t->slots || !t->first_child || !t->next_sibling) {
		proc_table_free_index(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nslots; i++)
		t->slots[i] = -1;
	for (size_t i = 0; i < t->count; i++) {
		size_t s = slot_of(t->procs[i].pid, nslots);
		while (t->slots[s] >= 0)
			s = (s + 1) & (nslots - 1);
		t->slots[s] = (int)i;
		t->first_child[i] = -1;
		t->next_sibling[i] = -1;
	}
	for (size_t i = 0; i < t->count; i++) {
		int parent = proc_table_find(t, t->procs[i].ppid);
		if (parent < 0 || parent == (int)i)
			continue;
		t->next_sibling[i] = t->first_child[parent];
		t->first_child[parent] = (int)i;
	}
	return 0;
}

int proc_table_find(const struct proc_table *t, pid_t pid)
{
	if (!t->nslots || pid <= 0)
		return -1;
	for (size_t s = slot_of(pid, t->nslots); t->slots[s] >= 0; s = (s + 1) & (t->nslots - 1))
		if (t->procs[t->slots[s]].pid == pid)
			return t->slots[s];
	return -1;
}

void proc_table_free_index(struct proc_table *t)
{
	free(t->slots);
	free(t->first_child);
	free(t->next_sibling);
	t->slots = t->first_child = t->next_sibling = NULL;
	t->nslots = 0;
}

void proc_tree_sum(const struct proc_table *t, int root, struct tree_sum *out)
{
	out->ticks_c = 0;
	out->rss = 0;
	out->procs = 0;
	if (root < 0)
		return;
	/* iterative walk: first child, else next sibling, else climb. A pid
	 * reused while /proc was read could link two processes into a loop:
	 * the step budget keeps that from hanging the supervisor. */
	int i = root;
	for (size_t steps = 0; steps <= 2 * t->count; steps++) {
		const struct proc_sample *p = &t->procs[i];
		out->ticks_c += p->ticks_c;
		out->rss += p->rss;
		out->procs++;
		if (t->first_child[i] >= 0) {
			i = t->first_child[i];
			continue;
		}
		while (i != root && i >= 0 && t->next_sibling[i] < 0)
			i = proc_table_find(t, t->procs[i].ppid);
		if (i == root || i < 0)
			return;
		i = t->next_sibling[i];
	}
}

void metrics_format_bytes(unsigned long long bytes, char *buf, size_t len)
{
	static const char units[] = "BKMGTP";
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lluB", bytes);
	else if (v < 9.95)
		snprintf(buf, len, "%.1f%c", v, units[u]);
	else
		snprintf(buf, len, "%.0f%c", v, units[u]);
}
