/* The memory backend: the SQLite semantics without the disk, and without a
 * malloc per task on the hot path (push, take, ack).
 *
 * Tasks live in segments of SEG_TASKS records, found by id (ids are dense:
 * segment (id - 1) >> SEG_BITS, slot (id - 1) & mask). Each segment copies
 * the payloads and results of its tasks into an arena of its own, so a
 * push or an ack is a memcpy, and a segment is freed as a whole: with
 * store_forget_finished (drover map), once all its tasks are finished.
 *
 * Each group keeps:
 * - waiting: an id_queue (store_internal.h) of the tasks to be taken, by
 *   id: the runs of pushed ids, and the ids given back out of order
 *   (requeued, recovered, retried by hand, failed tasks whose not_before
 *   has come);
 * - due: failed tasks waiting for their not_before, a min-heap by time, so a
 *   retry waiting for later never blocks younger pending tasks.
 * take pops the lowest id waiting, so a task given back keeps its place by
 * id. Entries are dropped lazily: a task cancelled while queued keeps its
 * entry, which is skipped when it comes up (or reused as is if the task is
 * retried first: the place by id is the same).
 * t->queued says whether the task has an entry in waiting. */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

#define SEG_BITS  12
#define SEG_TASKS ((size_t)1 << SEG_BITS)
#define ARENA_MIN 4096
#define ARENA_MAX 65536

struct arena {
	struct arena *next;
	size_t used, cap;
	char data[];
};

struct mtask {
	const char *payload; /* in the segment's arena */
	const char *result;  /* in the arena too; NULL = no result */
	char *error;         /* failures are rare: a malloc of its own */
	size_t len;
	uint64_t lease;
	double created, started, finished, not_before;
	int attempts;
	int group;
	int worker;       /* index in store_mem.workers, -1 = none */
	uint32_t due_seq; /* which entry of due is the live one */
	unsigned char state;
	bool queued;
};

struct mseg {
	struct arena *arena;
	size_t unfinished; /* tasks not done, dead or cancelled */
	bool errors;       /* some task here has (had) an error string */
	struct mtask t[SEG_TASKS];
};

struct due {
	double at;
	int64_t id;
	uint32_t seq;
};

struct mgroup {
	long long n[TASK__COUNT];
	struct id_queue waiting;
	struct due *due;
	size_t ndue, duecap;
};

struct store_mem {
	struct mseg **segs; /* NULL: not yet used, or freed once finished */
	size_t segcap;
	struct mseg *spare; /* a forgotten segment kept for the next: no page faults */
	int64_t ntasks;     /* ids 1 .. ntasks have been handed out */
	struct name_map names;
	struct name_map workers;
	uint64_t *sent; /* by worker index: 1 + the highest lease written, 0 = not told */
	size_t sentcap;
	struct mgroup *groups; /* by name index */
	size_t gcap;
	int last_group; /* the group of the last push: pushes come in runs */
	uint64_t last_lease;
	bool forget;
};

static int oom(struct store *s, const char *op)
{
	return store_fail_msg(s, "%s: out of memory", op);
}

/* ---- arenas ---- */

static const char *arena_copy(struct arena **head, const char *p, size_t len)
{
	struct arena *a = *head;
	if (!a || a->cap - a->used < len + 1) {
		size_t cap = a && a->cap < ARENA_MAX ? a->cap * 2 : a ? ARENA_MAX : ARENA_MIN;
		if (cap < len + 1)
			cap = len + 1;
		struct arena *b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->cap = cap;
		b->used = 0;
		if (a && len + 1 > ARENA_MAX / 2) {
			/* a big one gets a block of its own, behind the one
			 * still being filled */
			b->next = a->next;
			a->next = b;
		} else {
			b->next = a;
			*head = b;
		}
		a = b;
	}
	char *d = a->data + a->used;
	if (len)
		memcpy(d, p, len);
	d[len] = '\0';
	a->used += len + 1;
	return d;
}

static void arena_free(struct arena *a)
{
	while (a) {
		struct arena *next = a->next;
		free(a);
		a = next;
	}
}

/* ---- tasks and segments ---- */

static struct mseg *seg_of(const struct store_mem *m, int64_t id)
{
	if (id <= 0 || id > m->ntasks)
		return NULL;
	return m->segs[(size_t)(id - 1) >> SEG_BITS];
}

static struct mtask *task_at(const struct store_mem *m, int64_t id)
{
	struct mseg *seg = seg_of(m, id);
	return seg ? &seg->t[(size_t)(id - 1) & (SEG_TASKS - 1)] : NULL;
}

static void seg_free(struct mseg *seg)
{
	for (size_t i = 0; i < SEG_TASKS; i++)
		free(seg->t[i].error);
	arena_free(seg->arena);
	free(seg);
}

/* Forgetting: a segment whose ids are all handed out and all finished. It
 * becomes the spare (its records are rewritten whole at push: only what
 * they own is let go). */
static void seg_maybe_release(struct store_mem *m, size_t si)
{
	struct mseg *seg = m->segs[si];
	if (!m->forget || !seg || seg->unfinished || (size_t)m->ntasks < (si + 1) * SEG_TASKS)
		return;
	m->segs[si] = NULL;
	if (m->spare) {
		seg_free(seg);
		return;
	}
	for (size_t i = 0; seg->errors && i < SEG_TASKS; i++) {
		free(seg->t[i].error);
		seg->t[i].error = NULL;
	}
	seg->errors = false;
	/* keep the first arena block, emptied */
	struct arena *a = seg->arena;
	if (a) {
		arena_free(a->next);
		a->next = NULL;
		a->used = 0;
	}
	m->spare = seg;
}

static bool is_finished(enum task_state st)
{
	return st == TASK_DONE || st == TASK_DEAD || st == TASK_CANCELLED;
}

static struct mgroup *group_of(struct store_mem *m, const struct mtask *t)
{
	return &m->groups[t->group];
}

/* Change state; the counts, and the segment's unfinished tally, follow.
 * May free the task's segment (forgetting): t is not to be used after a
 * move to a finished state. */
static void move(struct store_mem *m, int64_t id, struct mtask *t, enum task_state to)
{
	struct mgroup *g = group_of(m, t);
	enum task_state from = t->state;
	g->n[from]--;
	g->n[to]++;
	t->state = (unsigned char)to;
	bool was = is_finished(from), is = is_finished(to);
	if (was == is)
		return;
	size_t si = (size_t)(id - 1) >> SEG_BITS;
	struct mseg *seg = m->segs[si];
	if (was)
		seg->unfinished++;
	else if (--seg->unfinished == 0)
		seg_maybe_release(m, si);
}

/* ---- the queue structures of a group ---- */

static bool due_before(const struct due *a, const struct due *b)
{
	return a->at < b->at || (a->at == b->at && a->id < b->id);
}

static int due_push(struct mgroup *g, struct due e)
{
	if (g->ndue == g->duecap) {
		size_t cap = g->duecap ? g->duecap * 2 : 64;
		struct due *v = realloc(g->due, cap * sizeof(*v));
		if (!v)
			return -1;
		g->due = v;
		g->duecap = cap;
	}
	size_t i = g->ndue++;
	while (i > 0 && due_before(&e, &g->due[(i - 1) / 2])) {
		g->due[i] = g->due[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	g->due[i] = e;
	return 0;
}

static struct due due_pop(struct mgroup *g)
{
	struct due top = g->due[0];
	struct due last = g->due[--g->ndue];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= g->ndue)
			break;
		if (c + 1 < g->ndue && due_before(&g->due[c + 1], &g->due[c]))
			c++;
		if (!due_before(&g->due[c], &last))
			break;
		g->due[i] = g->due[c];
		i = c;
	}
	if (g->ndue)
		g->due[i] = last;
	return top;
}

/* A failed task starts waiting for its not_before. */
static int wait_due(struct mgroup *g, struct mtask *t, int64_t id)
{
	t->due_seq++;
	return due_push(g, (struct due){.at = t->not_before, .id = id, .seq = t->due_seq});
}

/* Give a task its place by id among the waiting ones (if it has none yet). */
static int make_waiting(struct mgroup *g, struct mtask *t, int64_t id)
{
	if (t->queued)
		return 0;
	if (id_queue_give_back(&g->waiting, id) < 0)
		return -1;
	t->queued = true;
	return 0;
}

/* ---- open / close ---- */

int store_memory_open(struct store *s)
{
	s->mem = calloc(1, sizeof(*s->mem));
	if (!s->mem)
		return oom(s, "store_open");
	return 0;
}

void store_memory_forget(struct store *s)
{
	struct store_mem *m = s->mem;
	m->forget = true;
	for (size_t si = 0; si < m->segcap; si++)
		seg_maybe_release(m, si);
}

void store_memory_close(struct store *s)
{
	struct store_mem *m = s->mem;
	if (!m)
		return;
	for (size_t si = 0; si < m->segcap; si++)
		if (m->segs[si])
			seg_free(m->segs[si]);
	if (m->spare)
		seg_free(m->spare);
	free(m->segs);
	for (size_t i = 0; i < m->names.len; i++) {
		id_queue_free(&m->groups[i].waiting);
		free(m->groups[i].due);
	}
	free(m->groups);
	name_map_free(&m->names);
	name_map_free(&m->workers);
	free(m->sent);
	free(m);
	s->mem = NULL;
}

/* strcmp without a call: group names are short, and every push asks. */
static bool same_name(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

/* The group's index, created on first use when create; -1 if none. */
static int group_index(struct store *s, const char *name, bool create)
{
	struct store_mem *m = s->mem;
	if (m->names.len && same_name(m->names.names[m->last_group], name))
		return m->last_group;
	if (!create)
		return name_map_find(&m->names, name);
	int gi = name_map_add(&m->names, name);
	if (gi < 0)
		return oom(s, "store_push");
	if ((size_t)gi >= m->gcap) {
		size_t cap = m->gcap ? m->gcap * 2 : 8;
		struct mgroup *v = realloc(m->groups, cap * sizeof(*v));
		if (!v)
			return oom(s, "store_push");
		memset(v + m->gcap, 0, (cap - m->gcap) * sizeof(*v));
		m->groups = v;
		m->gcap = cap;
	}
	m->last_group = gi;
	return gi;
}

/* The segment the next id goes to, allocated if need be. */
static struct mseg *next_seg(struct store_mem *m)
{
	size_t si = (size_t)m->ntasks >> SEG_BITS;
	if (si >= m->segcap) {
		size_t cap = m->segcap ? m->segcap * 2 : 16;
		struct mseg **v = realloc(m->segs, cap * sizeof(*v));
		if (!v)
			return NULL;
		memset(v + m->segcap, 0, (cap - m->segcap) * sizeof(*v));
		m->segs = v;
		m->segcap = cap;
	}
	if (!m->segs[si]) {
		m->segs[si] = m->spare ? m->spare : calloc(1, sizeof(struct mseg));
		m->spare = NULL;
	}
	return m->segs[si];
}

/* ---- the hot path ---- */

int store_memory_push(struct store *s, const char *group, const char *payload, size_t len,
                      int64_t *id)
{
	struct store_mem *m = s->mem;
	int gi = group_index(s, group, true);
	if (gi < 0)
		return -1;
	struct mgroup *g = &m->groups[gi];
	struct mseg *seg = next_seg(m);
	if (!seg)
		return oom(s, "store_push");
	const char *copy = arena_copy(&seg->arena, payload, len);
	if (!copy)
		return store_fail_msg(s, "store_push: out of memory for a %zu-byte payload", len);
	int64_t nid = m->ntasks + 1;
	if (id_queue_push(&g->waiting, nid) < 0)
		return oom(s, "store_push"); /* the copy stays in the arena, unused */
	m->ntasks = nid;
	/* field by field: a compound literal is a rep stos of the whole
	 * record first, a tenth of a push */
	struct mtask *t = &seg->t[(size_t)(nid - 1) & (SEG_TASKS - 1)];
	t->payload = copy;
	t->result = NULL;
	t->error = NULL;
	t->len = len;
	t->lease = 0;
	t->created = store_batch_clock(s);
	t->started = t->finished = t->not_before = 0;
	t->attempts = 0;
	t->group = gi;
	t->worker = -1;
	t->due_seq = 0;
	t->state = TASK_PENDING;
	t->queued = true;
	seg->unfinished++;
	g->n[TASK_PENDING]++;
	*id = nid;
	return 0;
}

/* Failed tasks whose time has come join the waiting ones. */
static int promote(struct store_mem *m, struct mgroup *g, double now)
{
	while (g->ndue && g->due[0].at <= now) {
		struct due e = due_pop(g);
		struct mtask *t = task_at(m, e.id);
		if (t && t->state == TASK_FAILED && t->due_seq == e.seq &&
		    make_waiting(g, t, e.id) < 0) {
			due_push(g, e); /* there is room: we just popped it */
			return -1;
		}
	}
	return 0;
}

int store_memory_take(struct store *s, const char *group, const char *worker, double now,
                      struct task_lease *out, int max)
{
	struct store_mem *m = s->mem;
	int gi = group_index(s, group, false);
	if (gi < 0)
		return 0;
	struct mgroup *g = &m->groups[gi];
	if (promote(m, g, now) < 0)
		return oom(s, "store_take");
	int wi = -1;
	if (worker && (wi = name_map_add(&m->workers, worker)) < 0)
		return oom(s, "store_take");
	int n = 0;
	while (n < max) {
		int64_t id = id_queue_pop(&g->waiting);
		if (!id)
			break;
		struct mtask *t = task_at(m, id);
		if (!t)
			continue; /* cancelled while queued, and forgotten since */
		t->queued = false;
		if (t->state == TASK_FAILED && t->not_before > now) {
			/* promoted, then the clock went back: wait again */
			if (wait_due(g, t, id) == 0)
				continue;
			t->queued = id_queue_give_back(&g->waiting, id) == 0;
			return n > 0 ? n : oom(s, "store_take");
		}
		if (t->state != TASK_PENDING && t->state != TASK_FAILED)
			continue; /* cancelled (or taken) since it was queued */
		t->worker = wi;
		t->lease = ++m->last_lease;
		t->attempts++;
		t->started = now;
		move(m, id, t, TASK_RUNNING);
		out[n++] = (struct task_lease){
		    .id = id,
		    .lease = t->lease,
		    .attempts = t->attempts,
		    .payload = t->payload,
		    .len = t->len,
		};
	}
	return n;
}

/* The running task id under lease, or NULL (stale: nothing to change). */
static struct mtask *leased(struct store_mem *m, int64_t id, uint64_t lease)
{
	struct mtask *t = task_at(m, id);
	if (!t || t->state != TASK_RUNNING || t->lease != lease)
		return NULL;
	return t;
}

int store_memory_ack(struct store *s, int64_t id, uint64_t lease, const char *result, size_t len,
                     double now)
{
	struct store_mem *m = s->mem;
	struct mtask *t = leased(m, id, lease);
	if (!t)
		return 0;
	const char *r = NULL;
	if (result && !m->forget) {
		r = arena_copy(&seg_of(m, id)->arena, result, len);
		if (!r)
			return store_fail_msg(s, "store_ack: out of memory for a %zu-byte result",
			                      len);
	}
	t->result = r;
	t->finished = now;
	move(m, id, t, TASK_DONE);
	return 1;
}

int store_memory_fail(struct store *s, int64_t id, uint64_t lease, const char *error,
                      int max_attempts, double not_before, double now)
{
	struct store_mem *m = s->mem;
	struct mtask *t = leased(m, id, lease);
	if (!t)
		return 0;
	char *e = NULL;
	if (error && !(e = strdup(error)))
		return oom(s, "store_fail");
	bool dead = t->attempts >= max_attempts;
	double old_not_before = t->not_before;
	t->not_before = not_before;
	if (!dead && wait_due(group_of(m, t), t, id) < 0) {
		t->not_before = old_not_before;
		free(e);
		return oom(s, "store_fail");
	}
	free(t->error);
	t->error = e;
	seg_of(m, id)->errors |= e != NULL;
	t->finished = dead ? now : 0;
	move(m, id, t, dead ? TASK_DEAD : TASK_FAILED);
	return 1;
}

int store_memory_requeue(struct store *s, int64_t id, uint64_t lease, bool refund)
{
	struct store_mem *m = s->mem;
	struct mtask *t = leased(m, id, lease);
	if (!t)
		return 0;
	if (make_waiting(group_of(m, t), t, id) < 0)
		return oom(s, "store_requeue");
	if (refund && t->attempts > 0)
		t->attempts--;
	move(m, id, t, TASK_PENDING);
	return 1;
}

/* ---- whole-store walks: recovery and operators ---- */

/* Calls fn on every task that still exists, in id order, while fn returns
 * 0; returns the first non-zero return of fn, or 0. */
typedef int (*task_fn)(struct store_mem *m, int64_t id, struct mtask *t, void *arg);

static int each_task(struct store_mem *m, int64_t after, task_fn fn, void *arg)
{
	for (int64_t id = after + 1; id <= m->ntasks;) {
		struct mseg *seg = seg_of(m, id);
		size_t slot = (size_t)(id - 1) & (SEG_TASKS - 1);
		if (!seg) {
			id += (int64_t)(SEG_TASKS - slot);
			continue;
		}
		size_t si = (size_t)(id - 1) >> SEG_BITS;
		for (; slot < SEG_TASKS && id <= m->ntasks; slot++, id++) {
			int rc = fn(m, id, &seg->t[slot], arg);
			if (rc)
				return rc;
			if (m->segs[si] != seg) { /* forgotten: its tasks are all finished */
				id += (int64_t)(SEG_TASKS - slot - 1);
				break;
			}
		}
	}
	return 0;
}

struct walk {
	int group; /* -1 = every group */
	double now;
	int count;
};

int store_memory_mark_sent(struct store *s, const char *worker, uint64_t lease)
{
	struct store_mem *m = s->mem;
	int wi = name_map_add(&m->workers, worker);
	if (wi < 0)
		return oom(s, "store_mark_sent");
	if ((size_t)wi >= m->sentcap) {
		size_t cap = m->sentcap ? m->sentcap * 2 : 16;
		while (cap <= (size_t)wi)
			cap *= 2;
		uint64_t *v = realloc(m->sent, cap * sizeof(*v));
		if (!v)
			return oom(s, "store_mark_sent");
		memset(v + m->sentcap, 0, (cap - m->sentcap) * sizeof(*v));
		m->sent = v;
		m->sentcap = cap;
	}
	m->sent[wi] = lease + 1;
	return 0;
}

static int recover_one(struct store_mem *m, int64_t id, struct mtask *t, void *arg)
{
	struct walk *w = arg;
	if (t->state != TASK_RUNNING)
		return 0;
	uint64_t mark = t->worker >= 0 && (size_t)t->worker < m->sentcap ? m->sent[t->worker] : 0;
	if (mark && t->lease > mark - 1 && t->attempts > 0)
		t->attempts--;               /* leased ahead, never written: it did not run */
	make_waiting(group_of(m, t), t, id); /* room reserved by the caller */
	move(m, id, t, TASK_PENDING);
	w->count++;
	return 0;
}

int store_memory_recover(struct store *s)
{
	struct store_mem *m = s->mem;
	for (size_t gi = 0; gi < m->names.len; gi++) {
		struct mgroup *g = &m->groups[gi];
		if (id_heap_reserve(&g->waiting.back, (size_t)g->n[TASK_RUNNING]) < 0)
			return oom(s, "store_recover");
	}
	struct walk w = {.group = -1};
	each_task(m, 0, recover_one, &w);
	if (m->sentcap)
		memset(m->sent, 0, m->sentcap * sizeof(*m->sent));
	return w.count;
}

static int cancel_one(struct store_mem *m, int64_t id, struct mtask *t, double now)
{
	if (t->state != TASK_PENDING && t->state != TASK_FAILED && t->state != TASK_RUNNING)
		return 0;
	t->finished = now;
	move(m, id, t, TASK_CANCELLED);
	return 1;
}

/* dead or cancelled -> pending, as new; the caller has reserved room in
 * the waiting queue. */
static int retry_one(struct store_mem *m, int64_t id, struct mtask *t)
{
	if (t->state != TASK_DEAD && t->state != TASK_CANCELLED)
		return 0;
	if (make_waiting(group_of(m, t), t, id) < 0)
		return -1;
	t->attempts = 0;
	t->result = NULL; /* its bytes stay in the arena until the segment goes */
	free(t->error);
	t->error = NULL;
	t->finished = 0;
	t->not_before = 0;
	move(m, id, t, TASK_PENDING);
	return 1;
}

static int cancel_walk(struct store_mem *m, int64_t id, struct mtask *t, void *arg)
{
	struct walk *w = arg;
	if (w->group < 0 || t->group == w->group)
		w->count += cancel_one(m, id, t, w->now);
	return 0;
}

static int retry_walk(struct store_mem *m, int64_t id, struct mtask *t, void *arg)
{
	struct walk *w = arg;
	if (w->group < 0 || t->group == w->group)
		w->count += retry_one(m, id, t);
	return 0;
}

/* The group an operator action is about: -1 for every group, -2 if the
 * named group has no tasks at all. */
static int walk_group(struct store_mem *m, const char *group)
{
	if (!group)
		return -1;
	int gi = name_map_find(&m->names, group);
	return gi < 0 ? -2 : gi;
}

static bool in_group(struct store_mem *m, const struct mtask *t, const char *group)
{
	return !group || strcmp(m->names.names[t->group], group) == 0;
}

int store_memory_cancel(struct store *s, const char *group, int64_t id, double now)
{
	struct store_mem *m = s->mem;
	if (id > 0) {
		struct mtask *t = task_at(m, id);
		return t && in_group(m, t, group) ? cancel_one(m, id, t, now) : 0;
	}
	struct walk w = {.group = walk_group(m, group), .now = now};
	if (w.group == -2)
		return 0;
	each_task(m, 0, cancel_walk, &w);
	return w.count;
}

int store_memory_retry(struct store *s, const char *group, int64_t id)
{
	struct store_mem *m = s->mem;
	if (id > 0) {
		struct mtask *t = task_at(m, id);
		if (!t || !in_group(m, t, group))
			return 0;
		int rc = retry_one(m, id, t);
		return rc < 0 ? oom(s, "store_retry") : rc;
	}
	struct walk w = {.group = walk_group(m, group)};
	if (w.group == -2)
		return 0;
	for (size_t gi = 0; gi < m->names.len; gi++) {
		struct mgroup *g = &m->groups[gi];
		if ((w.group < 0 || (int)gi == w.group) &&
		    id_heap_reserve(&g->waiting.back,
		                    (size_t)(g->n[TASK_DEAD] + g->n[TASK_CANCELLED])) < 0)
			return oom(s, "store_retry");
	}
	each_task(m, 0, retry_walk, &w);
	return w.count;
}

/* A copy of task id for the caller; -1 when out of memory (out untouched). */
static int copy_out(struct store_mem *m, int64_t id, const struct mtask *t, struct task *out)
{
	const char *worker = t->worker >= 0 ? m->workers.names[t->worker] : NULL;
	struct task c = {
	    .id = id,
	    .group = strdup(m->names.names[t->group]),
	    .payload = store_dup(t->payload, t->len),
	    .len = t->len,
	    .state = (enum task_state)t->state,
	    .attempts = t->attempts,
	    .lease = t->lease,
	    .worker = worker ? strdup(worker) : NULL,
	    .result = t->result ? strdup(t->result) : NULL,
	    .error = t->error ? strdup(t->error) : NULL,
	    .created = t->created,
	    .started = t->started,
	    .finished = t->finished,
	    .not_before = t->not_before,
	};
	if (!c.group || !c.payload || (worker && !c.worker) || (t->result && !c.result) ||
	    (t->error && !c.error)) {
		task_free(&c);
		return -1;
	}
	*out = c;
	return 0;
}

int store_memory_get(struct store *s, int64_t id, struct task *out)
{
	struct store_mem *m = s->mem;
	struct mtask *t = task_at(m, id);
	if (!t)
		return 0;
	if (copy_out(m, id, t, out) < 0)
		return oom(s, "store_get");
	return 1;
}

struct list_walk {
	int group, state;
	struct task *out;
	int n, max;
};

static int list_one(struct store_mem *m, int64_t id, struct mtask *t, void *arg)
{
	struct list_walk *w = arg;
	if ((w->group >= 0 && t->group != w->group) || (w->state >= 0 && t->state != w->state))
		return 0;
	if (copy_out(m, id, t, &w->out[w->n]) < 0)
		return -1;
	return ++w->n == w->max;
}

int store_memory_list(struct store *s, const char *group, int state, int64_t after,
                      struct task *out, int max)
{
	struct store_mem *m = s->mem;
	struct list_walk w = {
	    .group = walk_group(m, group), .state = state, .out = out, .max = max};
	if (w.group == -2)
		return 0;
	if (each_task(m, after, list_one, &w) < 0) {
		while (w.n > 0)
			task_free(&out[--w.n]);
		return oom(s, "store_list");
	}
	return w.n;
}

int store_memory_counts(struct store *s, const char *group, struct store_counts *out)
{
	struct store_mem *m = s->mem;
	int only = walk_group(m, group);
	for (size_t gi = 0; gi < m->names.len; gi++)
		if (only == -1 || (int)gi == only)
			for (int st = 0; st < TASK__COUNT; st++)
				out->n[st] += m->groups[gi].n[st];
	return 0;
}
