/* The ceiling for drover's task design: the same lines pipelined over pipes
 * to J copies of a worker, results read back, with nothing else in the way
 * (no store, no leases, no per-task bookkeeping, no event loop framework).
 *
 *   pipe_ceiling J INPUT -- WORKER [ARGS...]  > results
 *
 * Reads INPUT (one task per line) into memory, starts J workers with a pipe
 * on stdin and one on stdout, and with poll(2) writes the input to them in
 * chunks of whole lines (round robin, at most WINDOW bytes ahead of each
 * worker's results) while copying their output to stdout. Prints the task
 * count, result count and seconds (from the first write to the last
 * result) on stderr as "tasks=N results=M seconds=S". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXJ   64
#define CHUNK  (64 * 1024)
#define WINDOW (1024 * 1024) /* bytes of tasks in flight per worker, at most */

struct peer {
	pid_t pid;
	int in, out; /* our ends: its stdin, its stdout */
	size_t sent_lines, got_lines;
	size_t sent_bytes, acked_bytes_est;
	const char *next; /* its share of the input: [next, end) */
	const char *end;
	char *rbuf; /* its output: a partial last line stays here */
	size_t rlen;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void out_all(const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(STDOUT_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			perror("pipe_ceiling: stdout");
			exit(1);
		}
		p += w;
		n -= (size_t)w;
	}
}

int main(int argc, char **argv)
{
	if (argc < 5 || strcmp(argv[3], "--")) {
		fprintf(stderr, "usage: pipe_ceiling J INPUT -- WORKER [ARGS...]\n");
		return 2;
	}
	int j = atoi(argv[1]);
	if (j < 1 || j > MAXJ)
		return 2;
	int fd = open(argv[2], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[2]);
		return 1;
	}
	size_t len = (size_t)st.st_size;
	char *data = malloc(len + 1);
	size_t have = 0;
	while (have < len) {
		ssize_t n = read(fd, data + have, len - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	len = have;
	if (len && data[len - 1] != '\n')
		data[len++] = '\n';
	size_t tasks = 0;
	for (const char *p = data; (p = memchr(p, '\n', (size_t)(data + len - p))); p++)
		tasks++;

	signal(SIGPIPE, SIG_IGN);
	struct peer peers[MAXJ];
	/* contiguous shares of whole lines, one per worker */
	const char *cut = data;
	for (int i = 0; i < j; i++) {
		struct peer *pr = &peers[i];
		memset(pr, 0, sizeof(*pr));
		pr->next = cut;
		const char *want = data + len * (size_t)(i + 1) / (size_t)j;
		if (i == j - 1)
			want = data + len;
		else if (want > cut) {
			const char *nl = memchr(want - 1, '\n', (size_t)(data + len - (want - 1)));
			want = nl ? nl + 1 : data + len;
		} else
			want = cut;
		pr->end = want;
		cut = want;
		int in[2], out[2];
		if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
			return 1;
		fcntl(in[1], F_SETPIPE_SZ, 1 << 20);
		pr->pid = fork();
		if (pr->pid == 0) {
			dup2(in[0], 0);
			dup2(out[1], 1);
			execvp(argv[4], argv + 4);
			_exit(127);
		}
		close(in[0]);
		close(out[1]);
		pr->in = in[1];
		pr->out = out[0];
		pr->rbuf = malloc(CHUNK * 4);
		fcntl(pr->in, F_SETFL, O_NONBLOCK);
		fcntl(pr->out, F_SETFL, O_NONBLOCK);
	}

	size_t results = 0;
	int live = j;
	double t0 = now();
	struct pollfd pfd[2 * MAXJ];
	while (live) {
		int n = 0;
		int map[2 * MAXJ];
		for (int i = 0; i < j; i++) {
			struct peer *pr = &peers[i];
			if (pr->out >= 0) {
				pfd[n] = (struct pollfd){.fd = pr->out, .events = POLLIN};
				map[n++] = i;
			}
			/* the input's bytes minus what came back: an estimate of what
			 * the worker holds, kept under WINDOW */
			if (pr->in >= 0 && pr->sent_bytes < pr->acked_bytes_est + WINDOW) {
				pfd[n] = (struct pollfd){.fd = pr->in, .events = POLLOUT};
				map[n++] = i | 0x100;
			}
		}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		for (int k = 0; k < n; k++) {
			if (!pfd[k].revents)
				continue;
			struct peer *pr = &peers[map[k] & 0xff];
			if (map[k] & 0x100) {
				size_t left = (size_t)(pr->end - pr->next);
				size_t take = left < CHUNK ? left : CHUNK;
				if (take < left) { /* whole lines only */
					const char *nl = memrchr(pr->next, '\n', take);
					take = nl ? (size_t)(nl - pr->next) + 1 : take;
				}
				ssize_t w = take ? write(pr->in, pr->next, take) : 0;
				if (w > 0) {
					pr->next += w;
					pr->sent_bytes += (size_t)w;
				}
				if (pr->next == pr->end || (w < 0 && errno != EAGAIN)) {
					close(pr->in);
					pr->in = -1;
				}
				continue;
			}
			ssize_t r = read(pr->out, pr->rbuf + pr->rlen, CHUNK * 4 - pr->rlen);
			if (r > 0) {
				size_t total = pr->rlen + (size_t)r, lines = 0;
				const char *last = NULL;
				for (const char *p = pr->rbuf + pr->rlen;
				     (p = memchr(p, '\n', (size_t)(pr->rbuf + total - p))); p++) {
					lines++;
					last = p;
				}
				pr->got_lines += lines;
				results += lines;
				/* a result line is about as long as its task: good enough
				 * for the window */
				pr->acked_bytes_est += (size_t)r;
				/* whole lines only, or two workers' lines would mix */
				size_t whole = last ? (size_t)(last - pr->rbuf) + 1 : 0;
				if (whole)
					out_all(pr->rbuf, whole);
				pr->rlen = total - whole;
				if (pr->rlen == CHUNK * 4) { /* one giant line: let it through */
					out_all(pr->rbuf, pr->rlen);
					pr->rlen = 0;
				}
				memmove(pr->rbuf, pr->rbuf + whole, pr->rlen);
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(pr->out);
				pr->out = -1;
				live--;
			}
		}
	}
	double t1 = now();
	for (int i = 0; i < j; i++)
		waitpid(peers[i].pid, NULL, 0);
	fprintf(stderr, "tasks=%zu results=%zu seconds=%.6f\n", tasks, results, t1 - t0);
	for (int i = 0; i < j; i++)
		free(peers[i].rbuf);
	free(data);
	return results == tasks ? 0 : 1;
}
