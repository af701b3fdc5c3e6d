/* The floor for the start-up benchmark: the least a supervisor could do to
 * start N workers. posix_spawn()s N copies of one command in a burst, with no
 * config, no bookkeeping, no pipes and no per-worker setup, then waits for
 * SIGTERM, kills them all and reaps them.
 *
 *   spawn_floor N /abs/path/to/cmd [args...]
 *
 * Prints one line to stdout once every spawn has returned:
 *   spawned=N elapsed_ns=T
 * where T covers the spawn loop alone (CLOCK_MONOTONIC). glibc's posix_spawn
 * clones with CLONE_VM|CLONE_VFORK, so each call returns only after that
 * child has exec'd (or failed to): the loop's end is the moment all N run
 * the command. bench/run.py also times the burst from the outside, from the
 * moment it starts this program, by the same /proc polling it uses for
 * drover and supervisord.
 *
 * The path is resolved by the caller, once, so the loop does no PATH search.
 * Built by bench/run.py with `cc -O2`; plain C17 + POSIX, no dependencies. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: spawn_floor N /path/to/cmd [args...]\n");
		return 2;
	}
	char *end;
	long n = strtol(argv[1], &end, 10);
	if (*end || n < 1 || n > 1000000) {
		fprintf(stderr, "spawn_floor: bad count '%s'\n", argv[1]);
		return 2;
	}
	pid_t *pids = calloc((size_t)n, sizeof(*pids));
	if (!pids) {
		perror("spawn_floor: calloc");
		return 1;
	}

	/* SIGTERM/SIGINT wait for sigwait(); the children get an empty mask. */
	sigset_t stop, none;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	sigemptyset(&none);
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);

	long spawned = 0;
	int rc = 0;
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int err = posix_spawn(&pids[i], argv[2], NULL, &attr, argv + 2, environ);
		if (err) {
			fprintf(stderr, "spawn_floor: posix_spawn %s: %s\n", argv[2],
			        strerror(err));
			rc = 1;
			break;
		}
		spawned++;
	}
	long long t1 = now_ns();
	printf("spawned=%ld elapsed_ns=%lld\n", spawned, t1 - t0);
	fflush(stdout);

	if (rc == 0) {
		int sig;
		sigwait(&stop, &sig);
	}
	for (long i = 0; i < spawned; i++)
		kill(pids[i], SIGKILL);
	for (long i = 0; i < spawned; i++)
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
	posix_spawnattr_destroy(&attr);
	free(pids);
	return rc;
}
