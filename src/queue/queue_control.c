/* The queue's control plane: submit, list, inspect, cancel, retry and wait,
 * each answering with a reply object (submit and wait later, through
 * their callback: after the commit, or once the queue is drained). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/framing.h"
#include "queue_internal.h"

static struct group *task_group_or_error(struct supervisor *sup, const char *name, json_t **err)
{
	struct group *g = queue_find_group(sup, name);
	if (!g)
		*err = queue_fail_reply("no such group '%s'", name);
	else if (!g->queue)
		*err = queue_fail_reply("group '%s' does not take tasks (tasks = none)", name);
	return g && g->queue ? g : NULL;
}

/* The reply goes out once the batch is committed (or says it was not):
 * NULL. Without a callback to call then, the reply itself, now. */
static json_t *reply_after_commit(struct supervisor *sup, json_t *reply, queue_reply_fn done,
                                  void *arg)
{
	if (!done)
		return reply;
	struct pending_reply *r = malloc(sizeof(*r));
	if (!r)
		abort();
	*r = (struct pending_reply){.fn = done, .arg = arg, .reply = reply, .next = NULL};
	/* keep order: replies go out in the order the requests came */
	struct pending_reply **tail = &sup->queue->acks;
	while (*tail)
		tail = &(*tail)->next;
	*tail = r;
	return NULL;
}

json_t *queue_submit(struct supervisor *sup, const char *group, json_t *tasks, bool with_ids,
                     queue_reply_fn done, void *arg)
{
	json_t *err = NULL;
	struct group *g = task_group_or_error(sup, group, &err);
	if (!g)
		return err;
	if (!json_is_array(tasks))
		return queue_fail_reply("submit: \"tasks\" must be an array");
	size_t i, n = json_array_size(tasks);
	json_t *v;
	/* check them all first: a submit is all or nothing */
	char msg[300];
	json_array_foreach(tasks, i, v)
	{
		if (!json_is_string(v) && g->prog->tasks == TASKS_LINES)
			return queue_fail_reply("submit: task %zu is not a string", i);
		char *text =
		    json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		const char *s = text ? text : json_string_value(v);
		size_t len = text ? strlen(text) : json_string_length(v);
		int bad = frame_check_task(g->prog->tasks, s, len, msg, sizeof(msg));
		free(text);
		if (bad)
			return queue_fail_reply("submit: task %zu: %s", i, msg);
	}
	queue_batch(sup);
	json_t *ids = with_ids ? json_array() : NULL;
	json_array_foreach(tasks, i, v)
	{
		char *text =
		    json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		const char *s = text ? text : json_string_value(v);
		size_t len = text ? strlen(text) : json_string_length(v);
		int64_t id;
		int rc = store_push(sup->store, g->name, s, len, &id);
		free(text);
		if (rc < 0) {
			json_decref(ids);
			queue_store_trouble(sup, "cannot add a task");
			return queue_fail_reply("submit: the store failed: %s",
			                        store_error(sup->store));
		}
		if (ids)
			json_array_append_new(ids, json_integer(id));
	}
	g->queue->next_take = 0;
	json_t *reply =
	    json_pack("{s:b, s:s, s:I}", "ok", 1, "group", g->name, "count", (json_int_t)n);
	if (ids)
		json_object_set_new(reply, "ids", ids);
	return reply_after_commit(sup, reply, done, arg);
}

static json_t *task_json(const struct task *t)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(t->id));
	json_object_set_new(o, "group", json_string(t->group));
	json_object_set_new(o, "state", json_string(task_state_name(t->state)));
	json_object_set_new(o, "task", json_stringn(t->payload, t->len));
	json_object_set_new(o, "attempts", json_integer(t->attempts));
	json_object_set_new(o, "worker", t->worker ? json_string(t->worker) : json_null());
	json_object_set_new(o, "result", t->result ? json_string(t->result) : json_null());
	json_object_set_new(o, "error", t->error ? json_string(t->error) : json_null());
	json_object_set_new(o, "created", json_real(t->created));
	json_object_set_new(o, "started", t->started > 0 ? json_real(t->started) : json_null());
	json_object_set_new(o, "finished", t->finished > 0 ? json_real(t->finished) : json_null());
	return o;
}

#define LIST_MAX 1000

json_t *queue_tasks(struct supervisor *sup, const char *group, const char *state)
{
	json_t *err = NULL;
	struct group *g = task_group_or_error(sup, group, &err);
	if (!g)
		return err;
	int st = -1;
	if (state && *state) {
		enum task_state s;
		if (task_state_parse(state, &s) < 0)
			return queue_fail_reply(
			    "tasks: unknown state '%s' (pending, running, done, failed, "
			    "dead, cancelled)",
			    state);
		st = (int)s;
	}
	struct task *page = calloc(LIST_MAX, sizeof(*page));
	if (!page)
		return queue_fail_reply("out of memory");
	int n = store_list(sup->store, g->name, st, 0, page, LIST_MAX);
	if (n < 0) {
		free(page);
		return queue_fail_reply("tasks: %s", store_error(sup->store));
	}
	json_t *list = json_array();
	for (int i = 0; i < n; i++) {
		json_array_append_new(list, task_json(&page[i]));
		task_free(&page[i]);
	}
	free(page);
	queue_resync_counts(sup, g);
	json_t *counts = json_object();
	for (int s = 0; s < TASK__COUNT; s++)
		json_object_set_new(counts, task_state_name((enum task_state)s),
		                    json_integer(g->queue->counts.n[s]));
	return json_pack("{s:b, s:s, s:o, s:o, s:b}", "ok", 1, "group", g->name, "counts", counts,
	                 "tasks", list, "truncated", n == LIST_MAX);
}

static bool parse_id(const char *s, int64_t *id)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v <= 0)
		return false;
	*id = v;
	return true;
}

json_t *queue_task(struct supervisor *sup, const char *id_text)
{
	int64_t id;
	if (!sup->store)
		return queue_fail_reply("no group takes tasks");
	if (!parse_id(id_text, &id))
		return queue_fail_reply("task: '%s' is not a task id", id_text);
	struct task t;
	int rc = store_get(sup->store, id, &t);
	if (rc < 0)
		return queue_fail_reply("task: %s", store_error(sup->store));
	if (rc == 0)
		return queue_fail_reply("no task %" PRId64, id);
	json_t *reply = json_pack("{s:b, s:o}", "ok", 1, "task", task_json(&t));
	task_free(&t);
	return reply;
}

/* cancel / retry: by id, or every task of a group. */
static json_t *operate(struct supervisor *sup, const char *target, bool cancel, queue_reply_fn done,
                       void *arg)
{
	const char *verb = cancel ? "cancel" : "retry";
	if (!sup->store)
		return queue_fail_reply("no group takes tasks");
	int64_t id = 0;
	const char *group = NULL;
	struct group *g = NULL;
	json_t *err = NULL;
	if (!parse_id(target, &id)) {
		g = task_group_or_error(sup, target, &err);
		if (!g)
			return err;
		group = g->name;
	}
	queue_batch(sup);
	int n = cancel ? store_cancel(sup->store, group, id, queue_wall_now())
	               : store_retry(sup->store, group, id);
	if (n < 0)
		return queue_fail_reply("%s: %s", verb, store_error(sup->store));
	if (n == 0 && id)
		return queue_fail_reply("%s: task %" PRId64 " is not %s", verb, id,
		                        cancel ? "pending or failed" : "dead or cancelled");
	for (size_t i = 0; i < sup->ngroups; i++)
		if (sup->groups[i]->queue && (!g || sup->groups[i] == g))
			sup->groups[i]->queue->next_take = 0;
	sup->queue->commit_soon = true; /* the reply says it is done */
	char msg[128];
	snprintf(msg, sizeof(msg), "%s: %d task%s", verb, n, n == 1 ? "" : "s");
	/* counters catch up after the commit */
	return reply_after_commit(
	    sup, json_pack("{s:b, s:s, s:i}", "ok", 1, "message", msg, "count", n), done, arg);
}

json_t *queue_cancel(struct supervisor *sup, const char *target, queue_reply_fn done, void *arg)
{
	return operate(sup, target, true, done, arg);
}

json_t *queue_retry(struct supervisor *sup, const char *target, queue_reply_fn done, void *arg)
{
	return operate(sup, target, false, done, arg);
}

json_t *queue_wait(struct supervisor *sup, const char *group, queue_reply_fn done, void *arg)
{
	json_t *err = NULL;
	struct group *g = task_group_or_error(sup, group, &err);
	if (!g)
		return err;
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w || !(w->group = strdup(g->name))) {
		free(w);
		return queue_fail_reply("out of memory");
	}
	w->fn = done;
	w->arg = arg;
	w->next = sup->queue->waiters;
	sup->queue->waiters = w;
	return NULL;
}

void queue_forget(struct supervisor *sup, void *arg)
{
	struct queue_state *qs = sup->queue;
	if (!qs)
		return;
	for (struct waiter **p = &qs->waiters; *p;) {
		struct waiter *w = *p;
		if (w->arg == arg) {
			*p = w->next;
			free(w->group);
			free(w);
		} else {
			p = &w->next;
		}
	}
	for (struct pending_reply *r = qs->acks; r; r = r->next)
		if (r->arg == arg)
			r->fn = NULL; /* its client is gone: still committed, no reply */
}
