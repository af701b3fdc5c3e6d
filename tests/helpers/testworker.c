/* A worker with a misbehaviour to order, for drover's integration tests:
 *   sleep                      sleep until killed
 *   exit CODE [MS]             exit with CODE, after MS milliseconds
 *   ignore-term                ignore SIGTERM (and SIGINT), sleep
 *   children N [setsid]        fork N sleeping children (each in its own
 *                              session with "setsid"), then sleep
 *   report FILE                write signal mask, ignored set and open fds
 *                              to FILE, then sleep
 *   print N                    print N numbered lines to stdout, N to stderr,
 *                              then sleep
 *   burn                       spin on one core
 *   alloc MB                   allocate and touch MB megabytes, sleep
 *   burnkids N                 fork N children that each spin on a core;
 *                              the parent sleeps
 *   churn MS                   forever: fork a child that spins for MS
 *                              milliseconds and exits, wait for it (one
 *                              short-lived child after another)
 *   threads N                  start N sleeping threads, then sleep
 *   burnif A B                 burn if the words A and B are equal, else
 *                              sleep (burnif %(process_num)d 1)
 *   burnfile FILE              burn if FILE exists, else sleep
 *   orphans N [GOFILE]         (once GOFILE exists) make N orphans: fork a
 *                              child that forks a grandchild, and both exit at
 *                              once, so each grandchild is reparented to the
 *                              nearest subreaper and reaped there; print
 *                              "orphans made K", then sleep
 *   daemons N                  start N daemons the classic way (fork, setsid,
 *                              fork, parent exits), each printing "daemon PID"
 *                              and sleeping; then sleep
 *   drip N MS                  print N 64-byte lines to stdout, one write
 *                              each, MS milliseconds apart, then sleep
 *   pidfile FILE ...           write own pid to FILE first, then do the rest
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_forever(void)
{
	for (;;)
		pause();
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0)
		;
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *thread_sleep(void *arg)
{
	(void)arg;
	sleep_forever();
	return NULL;
}

static void report(const char *file)
{
	FILE *out = fopen(file, "w");
	if (!out)
		exit(3);
	FILE *st = fopen("/proc/self/status", "r");
	char line[512];
	while (st && fgets(line, sizeof(line), st))
		if (!strncmp(line, "SigBlk:", 7) || !strncmp(line, "SigIgn:", 7))
			fputs(line, out);
	if (st)
		fclose(st);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	fputs("fds:", out);
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) &&
		    atoi(e->d_name) != fileno(out)) /* the report itself */
			fprintf(out, " %s", e->d_name);
	fputs("\n", out);
	if (d)
		closedir(d);
	fclose(out);
}

int main(int argc, char **argv)
{
	int a = 1;
	if (a + 1 < argc && !strcmp(argv[a], "pidfile")) {
		FILE *f = fopen(argv[a + 1], "w");
		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
		a += 2;
	}
	if (a >= argc) {
		fprintf(stderr, "usage: drover-testworker MODE ...\n");
		return 2;
	}
	const char *mode = argv[a];
	if (!strcmp(mode, "sleep")) {
		sleep_forever();
	} else if (!strcmp(mode, "exit") && a + 1 < argc) {
		if (a + 2 < argc)
			sleep_ms(atol(argv[a + 2]));
		return atoi(argv[a + 1]);
	} else if (!strcmp(mode, "ignore-term")) {
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		sleep_forever();
	} else if (!strcmp(mode, "children") && a + 1 < argc) {
		int n = atoi(argv[a + 1]);
		int own_session = a + 2 < argc && !strcmp(argv[a + 2], "setsid");
		for (int i = 0; i < n; i++) {
			pid_t pid = fork();
			if (pid == 0) {
				if (own_session)
					setsid();
				sleep_forever();
			}
			printf("child %d\n", (int)pid);
		}
		fflush(stdout);
		sleep_forever();
	} else if (!strcmp(mode, "report") && a + 1 < argc) {
		report(argv[a + 1]);
		sleep_forever();
	} else if (!strcmp(mode, "print") && a + 1 < argc) {
		int n = atoi(argv[a + 1]);
		for (int i = 1; i <= n; i++) {
			printf("out line %d\n", i);
			fprintf(stderr, "err line %d\n", i);
		}
		fflush(stdout);
		sleep_forever();
	} else if (!strcmp(mode, "burn")) {
		for (volatile unsigned long x = 0;; x++)
			;
	} else if (!strcmp(mode, "orphans") && a + 1 < argc) {
		int n = atoi(argv[a + 1]), made = 0;
		struct stat st;
		while (a + 2 < argc && stat(argv[a + 2], &st) < 0)
			sleep_ms(5);
		for (int i = 0; i < n; i++) {
			pid_t pid = fork();
			if (pid == 0)
				_exit(fork() < 0 ? 1 : 0); /* child and grandchild both leave */
			int status;
			if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
			    WEXITSTATUS(status) == 0)
				made++;
		}
		printf("orphans made %d\n", made);
		fflush(stdout);
		sleep_forever();
	} else if (!strcmp(mode, "daemons") && a + 1 < argc) {
		int n = atoi(argv[a + 1]);
		for (int i = 0; i < n; i++) {
			pid_t pid = fork();
			if (pid == 0) {
				setsid();
				if (fork() == 0) {
					printf("daemon %d\n", (int)getpid());
					fflush(stdout);
					sleep_forever();
				}
				_exit(0);
			}
			if (pid > 0)
				waitpid(pid, NULL, 0);
		}
		sleep_forever();
	} else if (!strcmp(mode, "drip") && a + 2 < argc) {
		int n = atoi(argv[a + 1]);
		long ms = atol(argv[a + 2]);
		for (int i = 1; i <= n; i++) {
			char line[64];
			int k = snprintf(line, sizeof(line), "drip %06d ", i % 1000000);
			memset(line + k, '.', sizeof(line) - 1 - (size_t)k);
			line[sizeof(line) - 1] = '\n';
			if (write(STDOUT_FILENO, line, sizeof(line)) != (ssize_t)sizeof(line))
				return 4;
			sleep_ms(ms);
		}
		sleep_forever();
	} else if (!strcmp(mode, "alloc") && a + 1 < argc) {
		size_t bytes = (size_t)atol(argv[a + 1]) << 20;
		char *p = malloc(bytes);
		for (size_t i = 0; p && i < bytes; i += 4096)
			p[i] = 1;
		sleep_forever();
	} else if ((!strcmp(mode, "burnif") && a + 2 < argc) ||
	           (!strcmp(mode, "burnfile") && a + 1 < argc)) {
		struct stat st;
		int hot = !strcmp(mode, "burnif") ? !strcmp(argv[a + 1], argv[a + 2])
		                                  : stat(argv[a + 1], &st) == 0;
		if (!hot)
			sleep_forever();
		for (volatile unsigned long x = 0;; x++)
			;
	} else if (!strcmp(mode, "burnkids") && a + 1 < argc) {
		int n = atoi(argv[a + 1]);
		for (int i = 0; i < n; i++)
			if (fork() == 0)
				for (volatile unsigned long x = 0;; x++)
					;
		sleep_forever();
	} else if (!strcmp(mode, "churn") && a + 1 < argc) {
		double secs = (double)atol(argv[a + 1]) / 1000.0;
		for (;;) {
			pid_t pid = fork();
			if (pid == 0) {
				double end = mono() + secs;
				while (mono() < end)
					;
				_exit(0);
			}
			if (pid < 0)
				sleep_ms(10);
			else
				waitpid(pid, NULL, 0);
		}
	} else if (!strcmp(mode, "threads") && a + 1 < argc) {
		int n = atoi(argv[a + 1]);
		for (int i = 0; i < n; i++) {
			pthread_t t;
			if (pthread_create(&t, NULL, thread_sleep, NULL) != 0)
				return 5;
		}
		printf("threads %d\n", n);
		fflush(stdout);
		sleep_forever();
	}
	fprintf(stderr, "drover-testworker: bad mode '%s'\n", mode);
	return 2;
}
