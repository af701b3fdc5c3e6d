/* Starting one worker process: a vfork-style clone that only makes
 * async-signal-safe calls before execve, so start-up cost stays flat as drover
 * grows. The child gets its own session, default signal dispositions, an
 * empty signal mask, PR_SET_PDEATHSIG, and exactly fds 0-2. */
#ifndef DROVER_SPAWN_H
#define DROVER_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct spawn_request {
	char *const *argv;     /* argv[0] may be a bare name: searched on PATH */
	char *const *env_add;  /* "K=V" entries laid over drover's environment */
	const char *directory; /* NULL = inherit */
	const char *user;      /* NULL = no switch */
	bool has_umask;
	mode_t umask;
	int stdin_fd;  /* dup'd to 0 in the child */
	int stdout_fd; /* dup'd to 1 */
	int stderr_fd; /* dup'd to 2 */
};

struct spawn_result {
	pid_t pid;
	int pidfd;
	/* On failure: */
	int err;        /* errno of the failed step */
	bool permanent; /* retrying will not help (not found, no such user, ...) */
	char why[200];  /* "cannot exec 'foo': No such file or directory" */
};

/* Returns 0 with pid and pidfd set, or -1 with err/permanent/why set. */
int spawn_process(const struct spawn_request *req, struct spawn_result *res);

/* Restore in children the fd limit drover had at start-up (drover raises its
 * own soft limit to hold many workers' pipes). */
void spawn_set_child_nofile(unsigned long soft);

#endif
