#include "drover/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

uint64_t loop_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * LOOP_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

int loop_init(struct loop *loop)
{
	memset(loop, 0, sizeof(*loop));
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		return -errno;
	loop->pending = calloc(LOOP_MAX_EVENTS, sizeof(struct epoll_event));
	if (!loop->pending) {
		close(loop->epfd);
		return -ENOMEM;
	}
	return 0;
}

void loop_free(struct loop *loop)
{
	if (loop->epfd >= 0)
		close(loop->epfd);
	free(loop->heap);
	free(loop->pending);
	memset(loop, 0, sizeof(*loop));
	loop->epfd = -1;
}

int loop_watch_add(struct loop *loop, struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0 ? -errno : 0;
}

int loop_watch_mod(struct loop *loop, struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? -errno : 0;
}

void loop_watch_del(struct loop *loop, struct loop_watch *w)
{
	struct epoll_event *pending = loop->pending;

	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	for (int i = 0; i < loop->npending; i++)
		if (pending[i].data.ptr == w)
			pending[i].data.ptr = NULL;
}

/* min-heap on deadline, 1-based, each timer knows its slot */
static void heap_swap(struct loop *loop, size_t a, size_t b)
{
	struct loop_timer *t = loop->heap[a];
	loop->heap[a] = loop->heap[b];
	loop->heap[b] = t;
	loop->heap[a]->heap_index = a;
	loop->heap[b]->heap_index = b;
}

static void heap_up(struct loop *loop, size_t i)
{
	while (i > 1 && loop->heap[i / 2]->deadline > loop->heap[i]->deadline) {
		heap_swap(loop, i, i / 2);
		i /= 2;
	}
}

static void heap_down(struct loop *loop, size_t i)
{
	for (;;) {
		size_t l = 2 * i, r = l + 1, m = i;
		if (l <= loop->heap_len && loop->heap[l]->deadline < loop->heap[m]->deadline)
			m = l;
		if (r <= loop->heap_len && loop->heap[r]->deadline < loop->heap[m]->deadline)
			m = r;
		if (m == i)
			return;
		heap_swap(loop, i, m);
		i = m;
	}
}

void loop_timer_cancel(struct loop *loop, struct loop_timer *t)
{
	size_t i = t->heap_index;
	if (!i)
		return;
	if (i != loop->heap_len)
		heap_swap(loop, i, loop->heap_len);
	loop->heap_len--;
	t->heap_index = 0;
	if (i <= loop->heap_len) {
		heap_up(loop, i);
		heap_down(loop, i);
	}
}

void loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t deadline)
{
	loop_timer_cancel(loop, t);
	if (loop->heap_len + 1 >= loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct loop_timer **heap = realloc(loop->heap, cap * sizeof(*heap));
		if (!heap)
			abort(); /* a timer we cannot keep is a worker we cannot stop */
		loop->heap = heap;
		loop->heap_cap = cap;
	}
	t->deadline = deadline;
	t->heap_index = ++loop->heap_len;
	loop->heap[t->heap_index] = t;
	heap_up(loop, t->heap_index);
}

void loop_add_hook(struct loop *loop, loop_hook_fn fn, void *arg)
{
	if (loop->nhooks == sizeof(loop->hooks) / sizeof(loop->hooks[0]))
		abort();
	loop->hooks[loop->nhooks].fn = fn;
	loop->hooks[loop->nhooks].arg = arg;
	loop->nhooks++;
}

static void run_hooks(struct loop *loop)
{
	for (size_t i = 0; i < loop->nhooks; i++)
		loop->hooks[i].fn(loop, loop->hooks[i].arg);
}

static void run_due_timers(struct loop *loop)
{
	uint64_t now = loop_now();
	while (loop->heap_len && loop->heap[1]->deadline <= now) {
		struct loop_timer *t = loop->heap[1];
		loop_timer_cancel(loop, t);
		t->cb(loop, t);
	}
}

static int next_timeout_ms(struct loop *loop)
{
	if (!loop->heap_len)
		return -1;
	uint64_t now = loop_now(), deadline = loop->heap[1]->deadline;
	if (deadline <= now)
		return 0;
	/* round up: waking a little late is fine, waking early spins */
	uint64_t ms = (deadline - now + 999999) / 1000000;
	return ms > 60000 ? 60000 : (int)ms;
}

void loop_turn(struct loop *loop)
{
	struct epoll_event *events = loop->pending;

	int n = epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, next_timeout_ms(loop));
	if (n < 0)
		n = 0; /* EINTR: only from a debugger, signals come via signalfd */
	loop->npending = n;
	for (int i = 0; i < n; i++) {
		struct loop_watch *w = events[i].data.ptr;
		if (w)
			w->cb(loop, w, events[i].events);
	}
	loop->npending = 0;
	run_due_timers(loop);
	run_hooks(loop);
}

void loop_run(struct loop *loop)
{
	run_hooks(loop);
	while (!loop->stop)
		loop_turn(loop);
}
