/* Inside the task store: the handle that store.c validates and dispatches,
 * the helpers both backends share, and each backend's entry points. Only
 * src/queue/store*.c include this. */
#ifndef DROVER_STORE_INTERNAL_H
#define DROVER_STORE_INTERNAL_H

#include "drover/store.h"

enum store_backend {
	BACKEND_MEMORY,
	BACKEND_SQLITE,
};

struct store_mem;
struct store_sql;

struct store {
	enum store_backend backend;
	bool batch;        /* between store_begin and store_commit */
	double batch_wall; /* wall clock at store_begin */
	struct store_mem *mem;
	struct store_sql *sql;
	char err[512];
};

/* Record the last error (a sentence) and return -1. */
int store_fail_msg(struct store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* len bytes of p as a fresh NUL-terminated string; NULL when out of memory. */
char *store_dup(const char *p, size_t len);

/* Wall-clock seconds (CLOCK_REALTIME): a pushed task's created time. */
double store_wallclock(void);
/* The same, read once per batch: the time of a loop turn is close enough for
 * `created`, and a push then costs no clock read. */
double store_batch_clock(const struct store *s);

/* Group names interned to small indexes 0, 1, 2 ... in order of arrival:
 * each backend keeps its per-group records in an array by that index. */
struct name_map {
	char **names; /* by index */
	size_t len;
	int *slots; /* open addressing: index + 1, 0 = empty */
	size_t cap; /* power of two */
};

/* The index of name, or -1. */
int name_map_find(const struct name_map *m, const char *name);
/* The index of name, added if new; -1 when out of memory. */
int name_map_add(struct name_map *m, const char *name);
void name_map_free(struct name_map *m);

/* A min-heap of task ids: the ready tasks of a group, lowest id first. */
struct id_heap {
	int64_t *v;
	size_t len, cap;
};

int id_heap_push(struct id_heap *h, int64_t id); /* 0 or -1 (out of memory) */
int id_heap_reserve(struct id_heap *h, size_t more);
int64_t id_heap_pop(struct id_heap *h); /* the lowest id; h must not be empty */
void id_heap_free(struct id_heap *h);

/* The tasks of a group waiting to be taken, lowest id first: runs of
 * consecutive ids in push order (pushes append, so one group alone is one
 * run), and a min-heap of ids given back out of order (requeued, recovered,
 * retried). Both backends keep one per group; entries may be stale (a task
 * cancelled while queued): the backend skips them when they come up. */
struct id_run {
	int64_t first, last;
};

struct id_queue {
	struct id_run *runs; /* a ring; cap is a power of two */
	size_t head, len, cap;
	struct id_heap back;
};

int id_queue_push(struct id_queue *q, int64_t id); /* ids ascend; 0 or -1 */
int id_queue_give_back(struct id_queue *q, int64_t id);
bool id_queue_empty(const struct id_queue *q);
/* The lowest id waiting, off the queue; 0 when empty. */
int64_t id_queue_pop(struct id_queue *q);
/* Up to max consecutive ids from the lowest, off the queue, if the lowest
 * is the head of a run: how many, the first in *first; 0 when the lowest
 * was given back (take it with id_queue_pop) or nothing waits. */
size_t id_queue_pop_run(struct id_queue *q, size_t max, int64_t *first);
void id_queue_clear(struct id_queue *q);
void id_queue_free(struct id_queue *q);

/* The running tasks of the SQLite backend by id: what ack, fail and
 * requeue need (group, lease, attempts) without a read from the database. */
struct run_entry {
	int64_t id; /* 0 = empty slot */
	uint64_t lease;
	int group;
	int attempts;
};

struct run_map {
	struct run_entry *slots;
	size_t cap; /* power of two */
	size_t len;
};

int run_map_reserve(struct run_map *m, size_t more); /* 0 or -1 (out of memory) */
struct run_entry *run_map_get(const struct run_map *m, int64_t id);
void run_map_put(struct run_map *m, struct run_entry e); /* room reserved before */
void run_map_del(struct run_map *m, int64_t id);
void run_map_free(struct run_map *m);

/* The backends: the same operations as store.h, arguments already checked
 * by store.c (group and strings non-NULL where required, max > 0, ...). */
int store_memory_open(struct store *s);
void store_memory_close(struct store *s);
int store_memory_push(struct store *s, const char *group, const char *payload, size_t len,
                      int64_t *id);
int store_memory_take(struct store *s, const char *group, const char *worker, double now,
                      struct task_lease *out, int max);
void store_memory_forget(struct store *s);
int store_memory_ack(struct store *s, int64_t id, uint64_t lease, const char *result, size_t len,
                     double now);
int store_memory_fail(struct store *s, int64_t id, uint64_t lease, const char *error,
                      int max_attempts, double not_before, double now);
int store_memory_requeue(struct store *s, int64_t id, uint64_t lease, bool refund);
int store_memory_mark_sent(struct store *s, const char *worker, uint64_t lease);
int store_memory_recover(struct store *s);
int store_memory_cancel(struct store *s, const char *group, int64_t id, double now);
int store_memory_retry(struct store *s, const char *group, int64_t id);
int store_memory_get(struct store *s, int64_t id, struct task *out);
int store_memory_list(struct store *s, const char *group, int state, int64_t after,
                      struct task *out, int max);
int store_memory_counts(struct store *s, const char *group, struct store_counts *out);

int store_sqlite_open(struct store *s, const char *path, bool sync_full);
void store_sqlite_close(struct store *s);
int store_sqlite_begin(struct store *s);
int store_sqlite_commit(struct store *s);
int store_sqlite_flush(struct store *s);
bool store_sqlite_spoilt(const struct store *s);
int store_sqlite_push(struct store *s, const char *group, const char *payload, size_t len,
                      int64_t *id);
int store_sqlite_take(struct store *s, const char *group, const char *worker, double now,
                      struct task_lease *out, int max);
int store_sqlite_ack(struct store *s, int64_t id, uint64_t lease, const char *result, size_t len,
                     double now);
int store_sqlite_fail(struct store *s, int64_t id, uint64_t lease, const char *error,
                      int max_attempts, double not_before, double now);
int store_sqlite_requeue(struct store *s, int64_t id, uint64_t lease, bool refund);
int store_sqlite_mark_sent(struct store *s, const char *worker, uint64_t lease);
int store_sqlite_recover(struct store *s);
int store_sqlite_cancel(struct store *s, const char *group, int64_t id, double now);
int store_sqlite_retry(struct store *s, const char *group, int64_t id);
int store_sqlite_get(struct store *s, int64_t id, struct task *out);
int store_sqlite_list(struct store *s, const char *group, int state, int64_t after,
                      struct task *out, int max);
int store_sqlite_counts(struct store *s, const char *group, struct store_counts *out);

#endif
