/* The memory backend: the SQLite semantics without the disk.
 *
 * Tasks live in one array indexed by id - 1 (ids are dense and no task is
 * ever deleted, so the array is a perfect hash). Each group keeps:
 * - ids[]: every task of the group in id order. Pushes append, so
 *   ids[next..] is the FIFO of tasks never offered yet;
 * - ready: a min-heap of ids given back out of order (requeued, recovered,
 *   retried by hand, failed tasks whose not_before has come);
 * - due: failed tasks waiting for their not_before, a min-heap by time, so a
 *   retry waiting for later never blocks younger pending tasks.
 * take pops the lower of the FIFO head and the ready top, so a task given
 * back keeps its place by id. Entries are dropped lazily: a task cancelled
 * while queued keeps its entry, which is skipped when it comes up (or
 * reused as is if the task is retried first: the place by id is the same).
 * t->queued says whether the task has an entry in the FIFO or in ready. */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

struct mtask {
	char *payload;
	char *worker;
	char *result;
	char *error;
	size_t len;
	uint64_t lease;
	double created, started, finished, not_before;
	int attempts;
	int group;
	uint32_t due_seq; /* which entry of due is the live one */
	enum task_state state;
	bool queued;
};

struct due {
	double at;
	int64_t id;
	uint32_t seq;
};

struct mgroup {
	long long n[TASK__COUNT];
	int64_t *ids;
	size_t nids, idcap;
	size_t next;
	struct id_heap ready;
	struct due *due;
	size_t ndue, duecap;
};

struct store_mem {
	struct mtask *tasks;
	size_t ntasks, cap;
	struct name_map names;
	struct mgroup *groups; /* by name index */
	size_t gcap;
	uint64_t last_lease;
};

static int oom(struct store *s, const char *op)
{
	return store_fail_msg(s, "%s: out of memory", op);
}

static struct mtask *task_at(struct store_mem *m, int64_t id)
{
	if (id <= 0 || (uint64_t)id > m->ntasks)
		return NULL;
	return &m->tasks[id - 1];
}

static struct mgroup *group_of(struct store_mem *m, const struct mtask *t)
{
	return &m->groups[t->group];
}

static void move(struct store_mem *m, struct mtask *t, enum task_state to)
{
	struct mgroup *g = group_of(m, t);
	g->n[t->state]--;
	g->n[to]++;
	t->state = to;
}

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

/* Give a task its place by id among the ready ones (if it has none yet). */
static int make_ready(struct mgroup *g, struct mtask *t, int64_t id)
{
	if (t->queued)
		return 0;
	if (id_heap_push(&g->ready, id) < 0)
		return -1;
	t->queued = true;
	return 0;
}

int store_memory_open(struct store *s)
{
	s->mem = calloc(1, sizeof(*s->mem));
	if (!s->mem)
		return oom(s, "store_open");
	return 0;
}

void store_memory_close(struct store *s)
{
	struct store_mem *m = s->mem;
	if (!m)
		return;
	for (size_t i = 0; i < m->ntasks; i++) {
		free(m->tasks[i].payload);
		free(m->tasks[i].worker);
		free(m->tasks[i].result);
		free(m->tasks[i].error);
	}
	free(m->tasks);
	for (size_t i = 0; i < m->names.len; i++) {
		free(m->groups[i].ids);
		id_heap_free(&m->groups[i].ready);
		free(m->groups[i].due);
	}
	free(m->groups);
	name_map_free(&m->names);
	free(m);
	s->mem = NULL;
}

/* The group's index, created on first use when create; -1 if none. */
static int group_index(struct store *s, const char *name, bool create)
{
	struct store_mem *m = s->mem;
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
	return gi;
}

int store_memory_push(struct store *s, const char *group, const char *payload, size_t len,
                      int64_t *id)
{
	struct store_mem *m = s->mem;
	int gi = group_index(s, group, true);
	if (gi < 0)
		return -1;
	struct mgroup *g = &m->groups[gi];
	if (m->ntasks == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 1024;
		struct mtask *v = realloc(m->tasks, cap * sizeof(*v));
		if (!v)
			return oom(s, "store_push");
		m->tasks = v;
		m->cap = cap;
	}
	if (g->nids == g->idcap) {
		size_t cap = g->idcap ? g->idcap * 2 : 256;
		int64_t *v = realloc(g->ids, cap * sizeof(*v));
		if (!v)
			return oom(s, "store_push");
		g->ids = v;
		g->idcap = cap;
	}
	char *copy = store_dup(payload, len);
	if (!copy)
		return store_fail_msg(s, "store_push: out of memory for a %zu-byte payload", len);
	*id = (int64_t)++m->ntasks;
	m->tasks[*id - 1] = (struct mtask){
	    .payload = copy,
	    .len = len,
	    .created = store_wallclock(),
	    .group = gi,
	    .state = TASK_PENDING,
	    .queued = true, /* ids[next..] is the FIFO */
	};
	g->ids[g->nids++] = *id;
	g->n[TASK_PENDING]++;
	return 0;
}

/* A copy of task id for the caller; -1 when out of memory (out untouched). */
static int copy_out(struct store_mem *m, int64_t id, struct task *out)
{
	const struct mtask *t = &m->tasks[id - 1];
	struct task c = {
	    .id = id,
	    .group = strdup(m->names.names[t->group]),
	    .payload = store_dup(t->payload, t->len),
	    .len = t->len,
	    .state = t->state,
	    .attempts = t->attempts,
	    .lease = t->lease,
	    .worker = t->worker ? strdup(t->worker) : NULL,
	    .result = t->result ? strdup(t->result) : NULL,
	    .error = t->error ? strdup(t->error) : NULL,
	    .created = t->created,
	    .started = t->started,
	    .finished = t->finished,
	    .not_before = t->not_before,
	};
	if (!c.group || !c.payload || (t->worker && !c.worker) || (t->result && !c.result) ||
	    (t->error && !c.error)) {
		task_free(&c);
		return -1;
	}
	*out = c;
	return 0;
}

/* Failed tasks whose time has come join the ready ones. */
static int promote(struct store_mem *m, struct mgroup *g, double now)
{
	while (g->ndue && g->due[0].at <= now) {
		struct due e = due_pop(g);
		struct mtask *t = &m->tasks[e.id - 1];
		if (t->state == TASK_FAILED && t->due_seq == e.seq && make_ready(g, t, e.id) < 0) {
			due_push(g, e); /* there is room: we just popped it */
			return -1;
		}
	}
	return 0;
}

int store_memory_take(struct store *s, const char *group, const char *worker, double now,
                      struct task *out, int max)
{
	struct store_mem *m = s->mem;
	int gi = group_index(s, group, false);
	if (gi < 0)
		return 0;
	struct mgroup *g = &m->groups[gi];
	if (promote(m, g, now) < 0)
		return oom(s, "store_take");
	int n = 0;
	while (n < max) {
		bool in_fifo = g->next < g->nids;
		bool from_ready = g->ready.len && (!in_fifo || g->ready.v[0] < g->ids[g->next]);
		int64_t id;
		if (from_ready)
			id = id_heap_pop(&g->ready);
		else if (in_fifo)
			id = g->ids[g->next++];
		else
			break;
		struct mtask *t = &m->tasks[id - 1];
		t->queued = false;
		if (t->state == TASK_FAILED && t->not_before > now) {
			/* promoted, then the clock went back: wait again */
			if (wait_due(g, t, id) < 0)
				goto undo;
			continue;
		}
		if (t->state != TASK_PENDING && t->state != TASK_FAILED)
			continue; /* cancelled (or taken) since it was queued */
		char *w = NULL;
		if (worker && !(w = strdup(worker)))
			goto undo;
		struct mtask saved = *t;
		enum task_state from = t->state;
		t->worker = w;
		t->lease = ++m->last_lease;
		t->attempts++;
		t->started = now;
		move(m, t, TASK_RUNNING);
		if (copy_out(m, id, &out[n]) < 0) {
			move(m, t, from);
			*t = saved;
			free(w);
			goto undo;
		}
		free(saved.worker);
		n++;
		continue;
	undo:
		/* give the entry back: its slot was just freed, so this cannot fail */
		if (from_ready)
			id_heap_push(&g->ready, id);
		else
			g->next--;
		t->queued = true;
		if (n > 0)
			return n;
		return oom(s, "store_take");
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
	struct mtask *t = leased(s->mem, id, lease);
	if (!t)
		return 0;
	char *r = NULL;
	if (result && !(r = store_dup(result, len)))
		return store_fail_msg(s, "store_ack: out of memory for a %zu-byte result", len);
	free(t->result);
	t->result = r;
	t->finished = now;
	move(s->mem, t, TASK_DONE);
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
	t->finished = dead ? now : 0;
	move(m, t, dead ? TASK_DEAD : TASK_FAILED);
	return 1;
}

int store_memory_requeue(struct store *s, int64_t id, uint64_t lease, bool refund)
{
	struct store_mem *m = s->mem;
	struct mtask *t = leased(m, id, lease);
	if (!t)
		return 0;
	if (make_ready(group_of(m, t), t, id) < 0)
		return oom(s, "store_requeue");
	if (refund && t->attempts > 0)
		t->attempts--;
	move(m, t, TASK_PENDING);
	return 1;
}

int store_memory_recover(struct store *s)
{
	struct store_mem *m = s->mem;
	for (size_t gi = 0; gi < m->names.len; gi++) {
		struct mgroup *g = &m->groups[gi];
		if (id_heap_reserve(&g->ready, (size_t)g->n[TASK_RUNNING]) < 0)
			return oom(s, "store_recover");
	}
	int n = 0;
	for (size_t i = 0; i < m->ntasks; i++) {
		struct mtask *t = &m->tasks[i];
		if (t->state != TASK_RUNNING)
			continue;
		make_ready(group_of(m, t), t, (int64_t)i + 1); /* reserved above */
		move(m, t, TASK_PENDING);
		n++;
	}
	return n;
}

static int cancel_one(struct store_mem *m, struct mtask *t, double now)
{
	if (t->state != TASK_PENDING && t->state != TASK_FAILED && t->state != TASK_RUNNING)
		return 0;
	t->finished = now;
	move(m, t, TASK_CANCELLED);
	return 1;
}

/* dead or cancelled -> pending, as new; the caller has reserved room in
 * the ready heap. */
static int retry_one(struct store_mem *m, struct mtask *t, int64_t id)
{
	if (t->state != TASK_DEAD && t->state != TASK_CANCELLED)
		return 0;
	if (make_ready(group_of(m, t), t, id) < 0)
		return -1;
	t->attempts = 0;
	free(t->result);
	free(t->error);
	t->result = t->error = NULL;
	t->finished = 0;
	t->not_before = 0;
	move(m, t, TASK_PENDING);
	return 1;
}

/* The tasks one operator action is about: id > 0 alone (in group, if
 * given), else every task of group, or of every group when group is NULL. */
static int select_groups(struct store *s, const char *group, size_t *first, size_t *end)
{
	struct store_mem *m = s->mem;
	*first = 0;
	*end = m->names.len;
	if (group) {
		int gi = name_map_find(&m->names, group);
		if (gi < 0)
			return -1;
		*first = (size_t)gi;
		*end = (size_t)gi + 1;
	}
	return 0;
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
		return t && in_group(m, t, group) ? cancel_one(m, t, now) : 0;
	}
	size_t first, end;
	if (select_groups(s, group, &first, &end) < 0)
		return 0;
	int n = 0;
	for (size_t gi = first; gi < end; gi++) {
		struct mgroup *g = &m->groups[gi];
		if (!g->n[TASK_PENDING] && !g->n[TASK_FAILED] && !g->n[TASK_RUNNING])
			continue;
		for (size_t i = 0; i < g->nids; i++)
			n += cancel_one(m, &m->tasks[g->ids[i] - 1], now);
	}
	return n;
}

int store_memory_retry(struct store *s, const char *group, int64_t id)
{
	struct store_mem *m = s->mem;
	if (id > 0) {
		struct mtask *t = task_at(m, id);
		if (!t || !in_group(m, t, group))
			return 0;
		int rc = retry_one(m, t, id);
		return rc < 0 ? oom(s, "store_retry") : rc;
	}
	size_t first, end;
	if (select_groups(s, group, &first, &end) < 0)
		return 0;
	for (size_t gi = first; gi < end; gi++) {
		struct mgroup *g = &m->groups[gi];
		if (id_heap_reserve(&g->ready, (size_t)(g->n[TASK_DEAD] + g->n[TASK_CANCELLED])) <
		    0)
			return oom(s, "store_retry");
	}
	int n = 0;
	for (size_t gi = first; gi < end; gi++) {
		struct mgroup *g = &m->groups[gi];
		if (!g->n[TASK_DEAD] && !g->n[TASK_CANCELLED])
			continue;
		for (size_t i = 0; i < g->nids; i++)
			n += retry_one(m, &m->tasks[g->ids[i] - 1], g->ids[i]);
	}
	return n;
}

int store_memory_get(struct store *s, int64_t id, struct task *out)
{
	struct store_mem *m = s->mem;
	if (!task_at(m, id))
		return 0;
	if (copy_out(m, id, out) < 0)
		return oom(s, "store_get");
	return 1;
}

/* The first index in ids[0..n) holding an id > after (ids ascend). */
static size_t first_after(const int64_t *ids, size_t n, int64_t after)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ids[mid] <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int store_memory_list(struct store *s, const char *group, int state, int64_t after,
                      struct task *out, int max)
{
	struct store_mem *m = s->mem;
	const int64_t *ids = NULL;
	size_t nids = m->ntasks, i = (size_t)after;
	if (group) {
		int gi = name_map_find(&m->names, group);
		if (gi < 0)
			return 0;
		ids = m->groups[gi].ids;
		nids = m->groups[gi].nids;
		i = first_after(ids, nids, after);
	}
	int n = 0;
	for (; i < nids && n < max; i++) {
		int64_t id = ids ? ids[i] : (int64_t)i + 1;
		if (state >= 0 && m->tasks[id - 1].state != (enum task_state)state)
			continue;
		if (copy_out(m, id, &out[n]) < 0) {
			while (n > 0)
				task_free(&out[--n]);
			return oom(s, "store_list");
		}
		n++;
	}
	return n;
}

int store_memory_counts(struct store *s, const char *group, struct store_counts *out)
{
	struct store_mem *m = s->mem;
	size_t first, end;
	if (select_groups(s, group, &first, &end) < 0)
		return 0;
	for (size_t gi = first; gi < end; gi++)
		for (int st = 0; st < TASK__COUNT; st++)
			out->n[st] += m->groups[gi].n[st];
	return 0;
}
