/* The results file of a pool (`results = FILE`): one JSON line per finished
 * task, appended after the commit that recorded it, and completed after a
 * crash from the store, so that every finished task is in it once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/framing.h"
#include "queue_internal.h"

static void results_append(struct group_queue *q, const char *s, size_t n)
{
	if (frame_reserve(&q->results_buf, &q->results_cap, q->results_len + n) < 0)
		return;
	memcpy(q->results_buf + q->results_len, s, n);
	q->results_len += n;
}

/* {"id":N,"task":T,"result":R} or {"id":N,"task":T,"error":E}: lines pools
 * give strings, json pools their JSON as it was. */
void results_line(struct group *g, int64_t id, const char *task, size_t tlen, const char *result,
                  size_t rlen, const char *error)
{
	struct group_queue *q = g->queue;
	if (!q || q->results_fd < 0)
		return;
	bool json = g->prog->tasks == TASKS_JSON;
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(id));
	json_t *t = json ? json_loadb(task, tlen, JSON_DECODE_ANY, NULL) : NULL;
	json_object_set_new(o, "task", t ? t : json_stringn(task, tlen));
	if (error) {
		json_object_set_new(o, "error", json_string(error));
	} else {
		json_t *r = json ? json_loadb(result, rlen, JSON_DECODE_ANY, NULL) : NULL;
		json_object_set_new(o, "result", r ? r : json_stringn(result, rlen));
	}
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return;
	size_t len = strlen(text);
	text[len] = '\n';
	results_append(q, text, len + 1);
	free(text);
}

void results_flush(struct group_queue *q)
{
	size_t off = 0;
	while (off < q->results_len) {
		ssize_t n = write(q->results_fd, q->results_buf + off, q->results_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	q->results_len = 0;
}

int queue_cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* After a crash the store may know results the file does not (written
 * after the commit): append those, once, so every done task is in the file
 * exactly once. A torn last line is cut off first. */
void results_reconcile(struct supervisor *sup, struct group *g)
{
	struct group_queue *q = g->queue;
	FILE *f = fopen(g->prog->results, "re");
	int64_t *ids = NULL;
	size_t nids = 0, cap = 0;
	if (f) {
		char *line = NULL;
		size_t lcap = 0;
		ssize_t n;
		long good = 0;
		while ((n = getline(&line, &lcap, f)) > 0) {
			if (line[n - 1] != '\n')
				break;
			good = ftell(f);
			json_t *o = json_loadb(line, (size_t)n, 0, NULL);
			json_t *id = o ? json_object_get(o, "id") : NULL;
			if (json_is_integer(id)) {
				if (nids == cap) {
					cap = cap ? cap * 2 : 1024;
					int64_t *grown = realloc(ids, cap * sizeof(*ids));
					if (!grown)
						break;
					ids = grown;
				}
				ids[nids++] = json_integer_value(id);
			}
			json_decref(o);
		}
		free(line);
		fclose(f);
		if (ftruncate(q->results_fd, good) < 0)
			queue_store_trouble(sup, "cannot repair the results file");
		if (nids)
			qsort(ids, nids, sizeof(*ids), queue_cmp_id);
	}
	struct task page[256];
	int states[2] = {TASK_DONE, TASK_DEAD};
	for (int s = 0; s < 2; s++) {
		int64_t after = 0;
		int n;
		while ((n = store_list(sup->store, g->name, states[s], after, page, 256)) > 0) {
			for (int i = 0; i < n; i++) {
				struct task *t = &page[i];
				after = t->id;
				if (!nids ||
				    !bsearch(&t->id, ids, nids, sizeof(*ids), queue_cmp_id))
					results_line(g, t->id, t->payload, t->len, t->result,
					             t->result ? strlen(t->result) : 0,
					             s ? (t->error ? t->error : "dead") : NULL);
				task_free(t);
			}
			results_flush(q);
		}
	}
	free(ids);
}
