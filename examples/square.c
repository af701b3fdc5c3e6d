/* square: a drover task worker in C (also the integration tests' task
 * worker, built from this file as drover-taskworker).
 *
 * Reads one task per line on stdin, answers one result per line on stdout:
 *
 *   lines mode (default): the task is an integer N, the result N*N
 *                         (exact, up to 64-bit inputs).
 *   --json:               the task is {"id":"ID","data":N}, the answer
 *                         {"id":"ID","result":N*N}, or {"id":"ID","error":"..."}
 *                         when data is not an integer.
 *
 * How it stays fast and cannot deadlock a pipelined pool: it reads big
 * chunks with read(2), answers every whole line into an output buffer, and
 * writes that buffer out when its input runs dry (poll(2) with a zero
 * timeout says no more bytes are waiting), or when the buffer gets large.
 * So under load one write carries thousands of results, and the last
 * result of a burst is never held back while drover waits for it. A worker
 * that buffers its results until its input ENDS (the stdio default when
 * stdout is a pipe) deadlocks a pipelined protocol: drover waits for
 * results, the worker waits for more input.
 *
 * Misbehaviour to order, for tests (K is the task's integer):
 *   --crash-every N  exit(3) on reading a task with K % N == 0, after
 *                    writing the results of the tasks before it (so that
 *                    task is the head of the line and takes the blame)
 *   --hang-every N   on a task with K % N == 0: write what is done, then
 *                    stop answering (sleep until killed)
 *   --error-every N  (--json) answer {"error":...} for K % N == 0
 *   --garbage-every N  before answering K % N == 0, write a line that is
 *                    not JSON and an answer for an id that was never sent
 *                    (in lines mode: nothing, as any line is a result)
 *   --reverse        (--json) answer each burst of tasks in reverse order
 *   --sleep-ms MS    sleep MS milliseconds per task (a slow worker; it
 *                    writes what it has before each sleep: a worker whose
 *                    tasks take long should not sit on finished results)
 *   --burn-ms MS     spend MS milliseconds of CPU time per task (time
 *                    stopped by SIGSTOP does not count), writing what it
 *                    has before each task as --sleep-ms does
 *   --exit-after N   exit(0) after answering N tasks (flushed)
 *   --pidfile FILE   append "PID\n" to FILE at start
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IN_SIZE   (1 << 20)
#define OUT_FLUSH (1 << 20) /* write out before the buffer grows past this */

static char *out;
static size_t outlen, outcap;

static bool json_mode, reverse;
static long long crash_every, hang_every, error_every, garbage_every, exit_after, sleep_ms, burn_ms;
static long long answered;

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			exit(0); /* drover went away: nothing left to do */
		p += w;
		n -= (size_t)w;
	}
}

static void flush_out(void)
{
	if (outlen)
		write_all(STDOUT_FILENO, out, outlen);
	outlen = 0;
}

static void reserve(size_t more)
{
	if (outlen + more <= outcap)
		return;
	size_t cap = outcap ? outcap : 65536;
	while (cap < outlen + more)
		cap *= 2;
	char *b = realloc(out, cap);
	if (!b) {
		perror("square: realloc");
		exit(1);
	}
	out = b;
	outcap = cap;
}

static void put(const char *s, size_t n)
{
	reserve(n);
	memcpy(out + outlen, s, n);
	outlen += n;
}

/* Decimal text of a signed 128-bit value. */
static void put_i128(__int128 v)
{
	char tmp[48];
	char *p = tmp + sizeof(tmp);
	unsigned __int128 u = v < 0 ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
	do {
		*--p = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	put(p, (size_t)(tmp + sizeof(tmp) - p));
}

/* An integer that fills [s, s+n) (spaces around it allowed). */
static bool parse_int(const char *s, size_t n, long long *v)
{
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	if (!n)
		return false;
	bool neg = false;
	size_t i = 0;
	if (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return false;
	unsigned long long acc = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (acc > (ULLONG_MAX - d) / 10)
			return false;
		acc = acc * 10 + d;
	}
	if (acc > (unsigned long long)INT64_MAX + (neg ? 1u : 0u))
		return false;
	*v = neg ? (long long)(0 - acc) : (long long)acc;
	return true;
}

static void sleep_ms_now(long long ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void misbehave(long long k)
{
	if (crash_every > 0 && k % crash_every == 0) {
		flush_out();
		exit(3);
	}
	if (hang_every > 0 && k % hang_every == 0) {
		flush_out();
		for (;;)
			pause();
	}
	if (sleep_ms > 0) {
		/* a slow task: the results so far go out before it, or drover
		 * would see nothing for prefetch x MS (task_timeout counts from
		 * the last result) */
		flush_out();
		sleep_ms_now(sleep_ms);
	}
	if (burn_ms > 0) {
		flush_out();
		double until = cpu_now() + (double)burn_ms / 1000;
		while (cpu_now() < until)
			;
	}
}

static void after_answer(void)
{
	answered++;
	if (exit_after > 0 && answered >= exit_after) {
		flush_out();
		exit(0);
	}
}

static void lines_task(const char *line, size_t n)
{
	long long k;
	if (!parse_int(line, n, &k)) {
		static const char bad[] = "error: not an integer\n";
		put(bad, sizeof(bad) - 1);
		after_answer();
		return;
	}
	misbehave(k);
	put_i128((__int128)k * k);
	put("\n", 1);
	after_answer();
}

/* --json: the value of "key": in line, as [*v, *v + *vn) (a string's
 * quotes stripped). Good enough for what drover writes. */
static bool json_field(const char *line, size_t n, const char *key, const char **v, size_t *vn)
{
	size_t klen = strlen(key);
	for (size_t i = 0; i + klen + 3 <= n; i++) {
		if (line[i] != '"' || memcmp(line + i + 1, key, klen) || line[i + 1 + klen] != '"')
			continue;
		size_t j = i + klen + 2;
		while (j < n && (line[j] == ' ' || line[j] == ':'))
			j++;
		if (j >= n)
			return false;
		if (line[j] == '"') {
			size_t e = j + 1;
			while (e < n && line[e] != '"')
				e++;
			*v = line + j + 1;
			*vn = e - j - 1;
			return true;
		}
		size_t e = j;
		while (e < n && line[e] != ',' && line[e] != '}')
			e++;
		*v = line + j;
		*vn = e - j;
		return true;
	}
	return false;
}

static void json_task(const char *line, size_t n)
{
	const char *id, *data;
	size_t idn, datan;
	if (!json_field(line, n, "id", &id, &idn)) {
		fprintf(stderr, "square: a task without an id: %.*s\n", (int)(n > 200 ? 200 : n),
		        line);
		return;
	}
	long long k = 0;
	bool ok = json_field(line, n, "data", &data, &datan) && parse_int(data, datan, &k);
	if (ok)
		misbehave(k);
	if (ok && garbage_every > 0 && k % garbage_every == 0) {
		static const char junk[] = "this line is not JSON\n"
		                           "{\"id\":\"987654321\",\"result\":0}\n";
		put(junk, sizeof(junk) - 1);
	}
	put("{\"id\":\"", 7);
	put(id, idn);
	if (!ok) {
		static const char e[] = "\",\"error\":\"data is not an integer\"}\n";
		put(e, sizeof(e) - 1);
	} else if (error_every > 0 && k % error_every == 0) {
		static const char e[] = "\",\"error\":\"refused: a multiple of the error step\"}\n";
		put(e, sizeof(e) - 1);
	} else {
		put("\",\"result\":", 11);
		put_i128((__int128)k * k);
		put("}\n", 2);
	}
	after_answer();
}

static void one_task(const char *line, size_t n)
{
	if (json_mode)
		json_task(line, n);
	else
		lines_task(line, n);
}

/* --reverse: the lines of one burst, answered last first. */
static void answer_burst(char *buf, size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		count += buf[i] == '\n';
	const char **starts = malloc((count + 1) * sizeof(*starts));
	size_t *lens = malloc((count + 1) * sizeof(*lens));
	if (!starts || !lens)
		exit(1);
	size_t k = 0, from = 0;
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			starts[k] = buf + from;
			lens[k++] = i - from;
			from = i + 1;
		}
	}
	while (k--)
		one_task(starts[k], lens[k]);
	free(starts);
	free(lens);
}

static bool input_waiting(void)
{
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
	int r;
	while ((r = poll(&p, 1, 0)) < 0 && errno == EINTR)
		;
	return r > 0;
}

static long long num_arg(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc) {
		fprintf(stderr, "square: %s needs a number\n", argv[*i]);
		exit(2);
	}
	return atoll(argv[++*i]);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json"))
			json_mode = true;
		else if (!strcmp(a, "--reverse"))
			reverse = true;
		else if (!strcmp(a, "--crash-every"))
			crash_every = num_arg(argc, argv, &i);
		else if (!strcmp(a, "--hang-every"))
			hang_every = num_arg(argc, argv, &i);
		else if (!strcmp(a, "--error-every"))
			error_every = num_arg(argc, argv, &i);
		else if (!strcmp(a, "--garbage-every"))
			garbage_every = num_arg(argc, argv, &i);
		else if (!strcmp(a, "--exit-after"))
			exit_after = num_arg(argc, argv, &i);
		else if (!strcmp(a, "--sleep-ms"))
			sleep_ms = num_arg(argc, argv, &i);
		else if (!strcmp(a, "--burn-ms"))
			burn_ms = num_arg(argc, argv, &i);
		else if (!strcmp(a, "--pidfile") && i + 1 < argc) {
			FILE *f = fopen(argv[++i], "a");
			if (f) {
				fprintf(f, "%d\n", (int)getpid());
				fclose(f);
			}
		} else {
			fprintf(
			    stderr,
			    "usage: square [--json] [--reverse] [--crash-every N] [--hang-every N]"
			    " [--error-every N] [--garbage-every N] [--exit-after N]"
			    " [--sleep-ms MS] [--burn-ms MS] [--pidfile FILE]\n");
			return 2;
		}
	}
	char *in = malloc(IN_SIZE);
	if (!in)
		return 1;
	size_t have = 0; /* bytes of an unfinished line at the start of in */
	for (;;) {
		if (have == IN_SIZE) {
			/* a line longer than the buffer: not a task we can answer */
			fprintf(stderr, "square: a line longer than %d bytes, dropped\n", IN_SIZE);
			have = 0;
		}
		ssize_t n = read(STDIN_FILENO, in + have, IN_SIZE - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		char *end = memrchr(in, '\n', have);
		if (end) {
			size_t whole = (size_t)(end - in) + 1;
			if (reverse) {
				answer_burst(in, whole);
			} else {
				char *p = in, *stop = in + whole;
				while (p < stop) {
					char *nl = memchr(p, '\n', (size_t)(stop - p));
					one_task(p, (size_t)(nl - p));
					p = nl + 1;
				}
			}
			have -= whole;
			memmove(in, in + whole, have);
		}
		/* input ran dry (or the buffer is big): results go out now */
		if (outlen >= OUT_FLUSH || !input_waiting())
			flush_out();
	}
	if (have)
		one_task(in, have); /* a last line without its newline */
	flush_out();
	free(in);
	free(out);
	return 0;
}
