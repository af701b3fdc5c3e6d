/* Orphans: as child subreaper, drover inherits every process its workers
 * leave behind (a daemonizing grandchild, a pipeline stage whose parent
 * died). Each is remembered with the worker it came from, reaped when it
 * exits, and killed when that worker is stopped or drover shuts down, even
 * if it called setsid() and escaped the worker's process group. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "drover/supervisor.h"

struct orphan {
	pid_t pid;
	int pidfd;
	struct worker *owner; /* NULL: nobody we can tell */
};

static ssize_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t n = read(fd, buf + got, len - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

/* Field 6 of /proc/PID/stat: the session id. */
static pid_t session_of(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	const char *p = strrchr(buf, ')'); /* comm may hold spaces and parens */
	int ppid, pgrp, sid;
	char state;
	if (!p || sscanf(p + 1, " %c %d %d %d", &state, &ppid, &pgrp, &sid) != 4)
		return 0;
	return sid;
}

/* The worker named in the orphan's inherited SUPERVISOR_PROCESS_NAME. */
static struct worker *owner_from_environ(struct supervisor *sup, pid_t pid)
{
	char path[64];
	static char buf[65536];
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	ssize_t n = read_file(path, buf, sizeof(buf));
	static const char key[] = "SUPERVISOR_PROCESS_NAME=";
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
		if (!strncmp(buf + i, key, sizeof(key) - 1))
			return supervisor_find_worker(sup, buf + i + sizeof(key) - 1);
	return NULL;
}

/* The worker whose session the process is in (it did not setsid). The
 * worker itself may be reaped already, so match sessions, not live pids. */
static struct worker *owner_from_session(struct supervisor *sup, pid_t pid)
{
	pid_t sid = session_of(pid);
	if (sid <= 0)
		return NULL;
	for (size_t i = 0; i < sup->ngroups; i++)
		for (size_t j = 0; j < sup->groups[i]->nworkers; j++)
			if (sup->groups[i]->workers[j]->session == sid)
				return sup->groups[i]->workers[j];
	return NULL;
}

static struct worker *attribute(struct supervisor *sup, pid_t pid, struct worker *fallback)
{
	struct worker *w = owner_from_session(sup, pid);
	if (!w)
		w = owner_from_environ(sup, pid);
	return w ? w : fallback;
}

static bool owner_wants_it_dead(const struct supervisor *sup, const struct worker *w)
{
	return sup->shutting_down || !w || w->fsm.state == WORKER_STOPPED;
}

static void kill_orphan(struct orphan *o)
{
	syscall(SYS_pidfd_send_signal, o->pidfd, SIGKILL, NULL, 0);
}

/* Our children the slow way: every /proc/PID/stat whose ppid is us, written
 * as the children file would be ("12 34 "). */
static ssize_t children_from_stat(pid_t self, char *out, size_t len)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	size_t used = 0;
	struct dirent *de;
	char path[64], stat[512];
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		if (read_file(path, stat, sizeof(stat)) <= 0)
			continue;
		const char *p = strrchr(stat, ')');
		int ppid;
		char state;
		if (p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && ppid == self &&
		    used + 16 < len)
			used += (size_t)snprintf(out + used, len - used, "%ld ", pid);
	}
	closedir(d);
	return (ssize_t)used;
}

/* Our children, from /proc/self/task/TID/children (drover is one thread). */
static size_t list_children(pid_t self, pid_t **out)
{
	char path[64];
	static char buf[1 << 20];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", self, self);
	ssize_t n = read_file(path, buf, sizeof(buf));
	if (n < 0)
		n = children_from_stat(self, buf, sizeof(buf)); /* no CONFIG_PROC_CHILDREN */
	size_t count = 0, cap = 0;
	pid_t *pids = NULL;
	char *p = buf, *end;
	while (n > 0) {
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			pid_t *grown = realloc(pids, cap * sizeof(*pids));
			if (!grown)
				break;
			pids = grown;
		}
		pids[count++] = (pid_t)v;
		p = end;
	}
	*out = pids;
	return count;
}

/* Processes a previous drover on this state_dir left running (it was
 * killed too hard to stop them): they would be duplicates of the workers we
 * are about to start. The lock says that drover is gone. */
void orphans_sweep_leftovers(struct supervisor *sup)
{
	char want[4200], path[64];
	static char env[65536];
	int wlen = snprintf(want, sizeof(want), "DROVER_STATE_DIR=%s", sup->cfg.state_dir);
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 1 || pid == sup->self)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
		ssize_t n = read_file(path, env, sizeof(env));
		bool ours = false;
		for (ssize_t i = 0; i < n && !ours; i += (ssize_t)strlen(env + i) + 1)
			ours = !strncmp(env + i, want, (size_t)wlen + 1);
		if (!ours)
			continue;
		int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
		if (pidfd < 0)
			continue;
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		close(pidfd);
		struct event e;
		event_init(&e, EVENT_WARN, "leftover");
		event_int(&e, "pid", pid);
		event_str(&e, "message", "left by a drover that died on this state_dir: killed");
		supervisor_emit(sup, &e);
	}
	closedir(d);
}

size_t supervisor_children(struct supervisor *sup)
{
	pid_t *pids;
	size_t n = list_children(sup->self, &pids);
	free(pids);
	return n;
}

void orphans_scan(struct supervisor *sup, struct worker *fallback)
{
	pid_t *pids;
	size_t n = list_children(sup->self, &pids);
	for (size_t i = 0; i < n; i++) {
		if (pidmap_get(&sup->pids, pids[i]))
			continue;
		/* our child and not yet reaped: the pid cannot be reused under us */
		int pidfd = (int)syscall(SYS_pidfd_open, pids[i], 0);
		if (pidfd < 0)
			continue;
		struct orphan *o = malloc(sizeof(*o));
		if (!o) {
			close(pidfd);
			continue;
		}
		o->pid = pids[i];
		o->pidfd = pidfd;
		o->owner = attribute(sup, pids[i], fallback);
		pidmap_put(&sup->pids, o->pid, PID_ORPHAN, o);

		struct event e;
		event_init(&e, EVENT_INFO, "orphan");
		event_int(&e, "pid", o->pid);
		event_str(&e, "worker", o->owner ? o->owner->spec.name : NULL);
		supervisor_emit(sup, &e);
		if (owner_wants_it_dead(sup, o->owner))
			kill_orphan(o);
	}
	free(pids);
}

void orphans_reaped(struct supervisor *sup, pid_t pid)
{
	struct pidmap_entry *e = pidmap_get(&sup->pids, pid);
	if (!e || e->kind != PID_ORPHAN)
		return;
	struct orphan *o = e->ptr;
	pidmap_del(&sup->pids, pid);
	close(o->pidfd);
	free(o);
}

/* Orphans whose owner is w (every orphan when w is NULL). */
void orphans_kill(struct supervisor *sup, struct worker *w)
{
	for (size_t i = 0; i < sup->pids.cap; i++) {
		struct pidmap_entry *e = &sup->pids.slots[i];
		if (e->pid && e->kind == PID_ORPHAN) {
			struct orphan *o = e->ptr;
			if (!w || o->owner == w)
				kill_orphan(o);
		}
	}
}

size_t orphans_count(const struct supervisor *sup)
{
	size_t n = 0;
	for (size_t i = 0; i < sup->pids.cap; i++)
		if (sup->pids.slots[i].pid && sup->pids.slots[i].kind == PID_ORPHAN)
			n++;
	return n;
}

/* A worker is going away: its orphans lose their owner. */
void orphans_forget_owner(struct supervisor *sup, struct worker *w)
{
	for (size_t i = 0; i < sup->pids.cap; i++) {
		struct pidmap_entry *e = &sup->pids.slots[i];
		if (e->pid && e->kind == PID_ORPHAN && ((struct orphan *)e->ptr)->owner == w)
			((struct orphan *)e->ptr)->owner = NULL;
	}
}
