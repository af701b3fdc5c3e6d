/* The event loop: epoll over fds, a min-heap of absolute CLOCK_MONOTONIC
 * deadlines, and before-sleep hooks. One loop owns all of drover's state;
 * nothing here blocks except epoll_wait. */
#ifndef DROVER_LOOP_H
#define DROVER_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

/* An fd the loop watches. The owner embeds it and keeps it alive until
 * loop_watch_del(); events already fetched for a deleted watch are dropped. */
struct loop_watch {
	int fd;
	void (*cb)(struct loop *loop, struct loop_watch *w, uint32_t events);
	void *arg;
};

/* A one-shot timer at an absolute monotonic deadline (nanoseconds). */
struct loop_timer {
	uint64_t deadline;
	size_t heap_index; /* 0 = not armed */
	void (*cb)(struct loop *loop, struct loop_timer *t);
	void *arg;
};

typedef void (*loop_hook_fn)(struct loop *loop, void *arg);

struct loop {
	int epfd;
	bool stop;
	struct loop_timer **heap; /* 1-based min-heap */
	size_t heap_len;
	size_t heap_cap;
	struct loop_hook {
		loop_hook_fn fn;
		void *arg;
	} hooks[8];
	size_t nhooks;
	/* events fetched by the current epoll_wait, so that deleting a watch can
	 * cancel its pending events */
	void *pending;
	int npending;
};

int loop_init(struct loop *loop);
void loop_free(struct loop *loop);

/* Returns 0 or -errno. */
int loop_watch_add(struct loop *loop, struct loop_watch *w, uint32_t events);
int loop_watch_mod(struct loop *loop, struct loop_watch *w, uint32_t events);
void loop_watch_del(struct loop *loop, struct loop_watch *w);

void loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t deadline);
void loop_timer_cancel(struct loop *loop, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return t->heap_index != 0;
}

/* Run once per loop turn, before sleeping: flush buffers, commit batches. */
void loop_add_hook(struct loop *loop, loop_hook_fn fn, void *arg);

/* One turn: wait for fds or the next deadline, dispatch, run hooks. */
void loop_turn(struct loop *loop);
/* Turn until loop->stop is set. */
void loop_run(struct loop *loop);

uint64_t loop_now(void); /* CLOCK_MONOTONIC in nanoseconds */

#define LOOP_NS_PER_SEC 1000000000ULL
static inline uint64_t loop_secs(double s)
{
	return s <= 0 ? 0 : (uint64_t)(s * 1e9);
}

#endif
