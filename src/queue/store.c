/* The store's front: checks the arguments once for every backend, keeps the
 * batch flag, and sends each call to the backend it was opened with. A
 * switch rather than a table of function pointers: two (later three)
 * backends, and every path can be read without chasing pointers. */
#include "store_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const state_names[TASK__COUNT] = {
    [TASK_PENDING] = "pending", [TASK_RUNNING] = "running", [TASK_DONE] = "done",
    [TASK_FAILED] = "failed",   [TASK_DEAD] = "dead",       [TASK_CANCELLED] = "cancelled",
};

const char *task_state_name(enum task_state st)
{
	if ((int)st < 0 || st >= TASK__COUNT)
		return "unknown";
	return state_names[st];
}

int task_state_parse(const char *str, enum task_state *out)
{
	if (!str)
		return -1;
	for (int i = 0; i < TASK__COUNT; i++)
		if (strcmp(str, state_names[i]) == 0) {
			*out = (enum task_state)i;
			return 0;
		}
	return -1;
}

void task_free(struct task *t)
{
	if (!t)
		return;
	free(t->group);
	free(t->payload);
	free(t->worker);
	free(t->result);
	free(t->error);
	*t = (struct task){0};
}

int store_fail_msg(struct store *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return -1;
}

char *store_dup(const char *p, size_t len)
{
	char *d = malloc(len + 1);
	if (!d)
		return NULL;
	if (len)
		memcpy(d, p, len);
	d[len] = '\0';
	return d;
}

double store_wallclock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double store_batch_clock(const struct store *s)
{
	return s->batch ? s->batch_wall : store_wallclock();
}

/* FNV-1a */
static size_t name_hash(const char *name)
{
	size_t h = 14695981039346656037u;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	return h;
}

int name_map_find(const struct name_map *m, const char *name)
{
	if (!m->cap)
		return -1;
	for (size_t i = name_hash(name) & (m->cap - 1); m->slots[i]; i = (i + 1) & (m->cap - 1))
		if (strcmp(m->names[m->slots[i] - 1], name) == 0)
			return m->slots[i] - 1;
	return -1;
}

static void name_map_place(struct name_map *m, int idx)
{
	size_t i = name_hash(m->names[idx]) & (m->cap - 1);
	while (m->slots[i])
		i = (i + 1) & (m->cap - 1);
	m->slots[i] = idx + 1;
}

int name_map_add(struct name_map *m, const char *name)
{
	int idx = name_map_find(m, name);
	if (idx >= 0)
		return idx;
	if ((m->len + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		int *slots = calloc(cap, sizeof(*slots));
		char **names = realloc(m->names, cap / 2 * sizeof(*names));
		if (!slots || !names) {
			free(slots);
			if (names)
				m->names = names;
			return -1;
		}
		free(m->slots);
		m->slots = slots;
		m->names = names;
		m->cap = cap;
		for (size_t k = 0; k < m->len; k++)
			name_map_place(m, (int)k);
	}
	char *copy = strdup(name);
	if (!copy)
		return -1;
	idx = (int)m->len++;
	m->names[idx] = copy;
	name_map_place(m, idx);
	return idx;
}

void name_map_free(struct name_map *m)
{
	for (size_t i = 0; i < m->len; i++)
		free(m->names[i]);
	free(m->names);
	free(m->slots);
	*m = (struct name_map){0};
}

int id_heap_reserve(struct id_heap *h, size_t more)
{
	if (h->len + more <= h->cap)
		return 0;
	size_t cap = h->cap ? h->cap : 64;
	while (cap < h->len + more)
		cap *= 2;
	int64_t *v = realloc(h->v, cap * sizeof(*v));
	if (!v)
		return -1;
	h->v = v;
	h->cap = cap;
	return 0;
}

int id_heap_push(struct id_heap *h, int64_t id)
{
	if (id_heap_reserve(h, 1) < 0)
		return -1;
	size_t i = h->len++;
	while (i > 0 && h->v[(i - 1) / 2] > id) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = id;
	return 0;
}

int64_t id_heap_pop(struct id_heap *h)
{
	int64_t top = h->v[0];
	int64_t last = h->v[--h->len];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->len)
			break;
		if (c + 1 < h->len && h->v[c + 1] < h->v[c])
			c++;
		if (h->v[c] >= last)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->len)
		h->v[i] = last;
	return top;
}

void id_heap_free(struct id_heap *h)
{
	free(h->v);
	*h = (struct id_heap){0};
}

int id_queue_push(struct id_queue *q, int64_t id)
{
	if (q->len) {
		struct id_run *tail = &q->runs[(q->head + q->len - 1) & (q->cap - 1)];
		if (tail->last == id - 1) {
			tail->last = id;
			return 0;
		}
	}
	if (q->len == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 8;
		struct id_run *v = malloc(cap * sizeof(*v));
		if (!v)
			return -1;
		for (size_t i = 0; i < q->len; i++)
			v[i] = q->runs[(q->head + i) & (q->cap - 1)];
		free(q->runs);
		q->runs = v;
		q->cap = cap;
		q->head = 0;
	}
	q->runs[(q->head + q->len++) & (q->cap - 1)] = (struct id_run){id, id};
	return 0;
}

int id_queue_give_back(struct id_queue *q, int64_t id)
{
	return id_heap_push(&q->back, id);
}

bool id_queue_empty(const struct id_queue *q)
{
	return !q->len && !q->back.len;
}

/* Is the lowest waiting id the head of the first run (not a given-back one)? */
static bool run_first(const struct id_queue *q)
{
	return q->len && (!q->back.len || q->runs[q->head].first < q->back.v[0]);
}

size_t id_queue_pop_run(struct id_queue *q, size_t max, int64_t *first)
{
	if (!run_first(q) || !max)
		return 0;
	struct id_run *r = &q->runs[q->head];
	uint64_t avail = (uint64_t)(r->last - r->first) + 1;
	if (q->back.len && (uint64_t)(q->back.v[0] - r->first) < avail)
		avail = (uint64_t)(q->back.v[0] - r->first); /* a given-back id comes first */
	size_t n = avail < max ? (size_t)avail : max;
	*first = r->first;
	r->first += (int64_t)n;
	if (r->first > r->last) {
		q->head = (q->head + 1) & (q->cap - 1);
		q->len--;
	}
	return n;
}

int64_t id_queue_pop(struct id_queue *q)
{
	int64_t id;
	if (run_first(q))
		id_queue_pop_run(q, 1, &id);
	else if (q->back.len)
		id = id_heap_pop(&q->back);
	else
		id = 0;
	return id;
}

void id_queue_clear(struct id_queue *q)
{
	q->head = q->len = 0;
	q->back.len = 0;
}

void id_queue_free(struct id_queue *q)
{
	free(q->runs);
	id_heap_free(&q->back);
	*q = (struct id_queue){0};
}

static size_t run_slot(const struct run_map *m, int64_t id)
{
	return ((uint64_t)id * 0x9E3779B97F4A7C15u >> 20) & (m->cap - 1);
}

static void run_place(struct run_map *m, struct run_entry e)
{
	size_t i = run_slot(m, e.id);
	while (m->slots[i].id && m->slots[i].id != e.id)
		i = (i + 1) & (m->cap - 1);
	if (!m->slots[i].id)
		m->len++;
	m->slots[i] = e;
}

int run_map_reserve(struct run_map *m, size_t more)
{
	if ((m->len + more) * 2 <= m->cap)
		return 0;
	size_t cap = m->cap ? m->cap : 64;
	while ((m->len + more) * 2 > cap)
		cap *= 2;
	struct run_entry *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	struct run_map old = *m;
	*m = (struct run_map){.slots = slots, .cap = cap};
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].id)
			run_place(m, old.slots[i]);
	free(old.slots);
	return 0;
}

struct run_entry *run_map_get(const struct run_map *m, int64_t id)
{
	if (!m->cap || id <= 0)
		return NULL;
	for (size_t i = run_slot(m, id); m->slots[i].id; i = (i + 1) & (m->cap - 1))
		if (m->slots[i].id == id)
			return &m->slots[i];
	return NULL;
}

void run_map_put(struct run_map *m, struct run_entry e)
{
	run_place(m, e);
}

void run_map_del(struct run_map *m, int64_t id)
{
	struct run_entry *e = run_map_get(m, id);
	if (!e)
		return;
	size_t i = (size_t)(e - m->slots);
	m->slots[i].id = 0;
	m->len--;
	/* backward shift: pull later members of the run into the hole */
	for (size_t j = (i + 1) & (m->cap - 1); m->slots[j].id; j = (j + 1) & (m->cap - 1)) {
		size_t home = run_slot(m, m->slots[j].id);
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->slots[i] = m->slots[j];
			m->slots[j].id = 0;
			i = j;
		}
	}
}

void run_map_free(struct run_map *m)
{
	free(m->slots);
	*m = (struct run_map){0};
}

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

struct store *store_open(const char *kind, const char *path, bool sync_full, char *err,
                         size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s) {
		set_err(err, errlen, "store: out of memory");
		return NULL;
	}
	int rc;
	if (kind && strcmp(kind, "memory") == 0) {
		s->backend = BACKEND_MEMORY;
		rc = store_memory_open(s);
	} else if (kind && strcmp(kind, "sqlite") == 0) {
		s->backend = BACKEND_SQLITE;
		if (!path || !*path)
			rc = store_fail_msg(s, "store: the sqlite store needs a database path");
		else
			rc = store_sqlite_open(s, path, sync_full);
	} else {
		rc = store_fail_msg(s, "store: unknown kind \"%s\" (expected memory or sqlite)",
		                    kind ? kind : "");
	}
	if (rc < 0) {
		set_err(err, errlen, s->err);
		free(s); /* a failed backend open has released what it took */
		return NULL;
	}
	return s;
}

void store_forget_finished(struct store *s)
{
	if (s->backend == BACKEND_MEMORY)
		store_memory_forget(s);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->backend == BACKEND_SQLITE)
		store_sqlite_close(s);
	else
		store_memory_close(s);
	free(s);
}

int store_begin(struct store *s)
{
	if (s->batch)
		return store_fail_msg(s, "store_begin: a batch is already open");
	if (s->backend == BACKEND_SQLITE && store_sqlite_begin(s) < 0)
		return -1;
	s->batch = true;
	s->batch_wall = store_wallclock();
	return 0;
}

/* Outside a batch there is nothing to commit: 0, so that the loop can call
 * this once per turn unconditionally. */
int store_commit(struct store *s)
{
	if (!s->batch)
		return 0;
	/* the backend commits while the batch is still open: a write it makes
	 * first (the sqlite one's buffered rows) must be able to spoil it */
	int rc = s->backend == BACKEND_SQLITE ? store_sqlite_commit(s) : 0;
	s->batch = false;
	return rc;
}

int store_flush(struct store *s)
{
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_flush(s);
	return 0;
}

bool store_batch_spoilt(const struct store *s)
{
	return s->batch && s->backend == BACKEND_SQLITE && store_sqlite_spoilt(s);
}

const char *store_error(struct store *s)
{
	return s && s->err[0] ? s->err : "no error";
}

int store_push(struct store *s, const char *group, const char *payload, size_t len, int64_t *id)
{
	if (!group || !*group)
		return store_fail_msg(s, "store_push: the task has no group");
	if (!payload && len)
		return store_fail_msg(s, "store_push: no payload for %zu bytes", len);
	if (!payload)
		payload = "";
	int64_t dummy;
	if (!id)
		id = &dummy;
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_push(s, group, payload, len, id);
	return store_memory_push(s, group, payload, len, id);
}

int store_take(struct store *s, const char *group, const char *worker, double now,
               struct task_lease *out, int max)
{
	if (!group || !*group)
		return store_fail_msg(s, "store_take: no group given");
	if (max < 0 || (max > 0 && !out))
		return store_fail_msg(s, "store_take: max = %d with %s output array", max,
		                      out ? "an" : "no");
	if (max == 0)
		return 0;
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_take(s, group, worker, now, out, max);
	return store_memory_take(s, group, worker, now, out, max);
}

int store_ack(struct store *s, int64_t id, uint64_t lease, const char *result, size_t len,
              double now)
{
	if (!result && len)
		return store_fail_msg(s, "store_ack: no result for %zu bytes", len);
	if (id <= 0 || lease == 0)
		return 0;
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_ack(s, id, lease, result, len, now);
	return store_memory_ack(s, id, lease, result, len, now);
}

int store_fail(struct store *s, int64_t id, uint64_t lease, const char *error, int max_attempts,
               double not_before, double now)
{
	if (id <= 0 || lease == 0)
		return 0;
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_fail(s, id, lease, error, max_attempts, not_before, now);
	return store_memory_fail(s, id, lease, error, max_attempts, not_before, now);
}

int store_requeue(struct store *s, int64_t id, uint64_t lease, bool refund)
{
	if (id <= 0 || lease == 0)
		return 0;
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_requeue(s, id, lease, refund);
	return store_memory_requeue(s, id, lease, refund);
}

int store_mark_sent(struct store *s, const char *worker, uint64_t lease)
{
	if (!worker || !*worker)
		return store_fail_msg(s, "store_mark_sent: no worker given");
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_mark_sent(s, worker, lease);
	return store_memory_mark_sent(s, worker, lease);
}

int store_recover(struct store *s)
{
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_recover(s);
	return store_memory_recover(s);
}

int store_cancel(struct store *s, const char *group, int64_t id, double now)
{
	if (id < 0)
		return store_fail_msg(s, "store_cancel: bad task id %lld", (long long)id);
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_cancel(s, group, id, now);
	return store_memory_cancel(s, group, id, now);
}

int store_retry(struct store *s, const char *group, int64_t id)
{
	if (id < 0)
		return store_fail_msg(s, "store_retry: bad task id %lld", (long long)id);
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_retry(s, group, id);
	return store_memory_retry(s, group, id);
}

int store_get(struct store *s, int64_t id, struct task *out)
{
	if (!out)
		return store_fail_msg(s, "store_get: no output task");
	if (id <= 0)
		return 0;
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_get(s, id, out);
	return store_memory_get(s, id, out);
}

int store_list(struct store *s, const char *group, int state, int64_t after, struct task *out,
               int max)
{
	if (state < -1 || state >= TASK__COUNT)
		return store_fail_msg(s, "store_list: bad state %d", state);
	if (max < 0 || (max > 0 && !out))
		return store_fail_msg(s, "store_list: max = %d with %s output array", max,
		                      out ? "an" : "no");
	if (max == 0)
		return 0;
	if (after < 0)
		after = 0;
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_list(s, group, state, after, out, max);
	return store_memory_list(s, group, state, after, out, max);
}

int store_counts(struct store *s, const char *group, struct store_counts *out)
{
	if (!out)
		return store_fail_msg(s, "store_counts: no output");
	*out = (struct store_counts){0};
	if (s->backend == BACKEND_SQLITE)
		return store_sqlite_counts(s, group, out);
	return store_memory_counts(s, group, out);
}
