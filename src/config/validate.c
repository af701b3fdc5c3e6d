/* Checks across workers, made once at load by expanding every worker. */
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

struct worker_ref {
	char *key; /* worker name or log path */
	const struct program_config *prog;
	const char *worker; /* the worker's name (for paths) */
	int pk;             /* the key that produced it */
};

static int cmp_refs(const void *a, const void *b)
{
	const struct worker_ref *x = a, *y = b;

	return strcmp(x->key, y->key);
}

static void ref_add(struct worker_ref **refs, size_t *n, size_t *cap, char *key,
                    const struct program_config *prog, const char *worker, int pk)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*refs = cfg_xrealloc(*refs, *cap * sizeof(**refs));
	}
	(*refs)[(*n)++] = (struct worker_ref){key, prog, worker, pk};
}

static struct conf_loc key_loc(const struct program_config *p, int pk)
{
	return p->loc[pk].line > 0 ? p->loc[pk] : p->section;
}

/* Expand every worker once: bad templates, unterminated quotes and names that
 * two workers would share are load errors, not surprises at spawn time. Two
 * workers writing one log file is legal (supervisord allows it) but rotation
 * would fight over it, so that is a warning. */
void cfg_validate_workers(struct loader *ld, const bool *bad)
{
	const struct config *cfg = ld->cfg;
	struct worker_ref *names = NULL, *paths = NULL;
	size_t nnames = 0, capnames = 0, npaths = 0, cappaths = 0;
	char err[1024];

	for (size_t i = 0; i < cfg->nprograms; i++) {
		const struct program_config *p = &cfg->programs[i];
		if (bad[i]) /* already reported; expanding would only repeat it */
			continue;
		/* With numprocs = 0 the templates are still checked once. */
		int count = p->numprocs > 0 ? p->numprocs : 1;
		for (int k = 0; k < count; k++) {
			struct worker_spec w;
			if (program_expand(cfg, p, p->numprocs_start + k, &w, err, sizeof(err)) <
			    0) {
				conf_msgs_add(&ld->errors, "%s", err);
				break;
			}
			if (p->numprocs > 0) {
				char *name = w.name;
				ref_add(&names, &nnames, &capnames, name, p, name, PK_PROCESS_NAME);
				w.name = NULL;
				if (w.stdout_path != NULL &&
				    strncmp(w.stdout_path, "/dev/", 5) != 0) {
					ref_add(&paths, &npaths, &cappaths, w.stdout_path, p, name,
					        PK_STDOUT_LOGFILE);
					w.stdout_path = NULL;
				}
				if (w.stderr_path != NULL &&
				    strncmp(w.stderr_path, "/dev/", 5) != 0) {
					ref_add(&paths, &npaths, &cappaths, w.stderr_path, p, name,
					        PK_STDERR_LOGFILE);
					w.stderr_path = NULL;
				}
			}
			worker_spec_free(&w);
		}
	}
	if (nnames > 1)
		qsort(names, nnames, sizeof(*names), cmp_refs);
	for (size_t i = 1; i < nnames; i++) {
		if (strcmp(names[i - 1].key, names[i].key) != 0)
			continue;
		const struct worker_ref *a = &names[i - 1], *b = &names[i];
		/* report at the later definition in the file */
		if (b->prog->section.line < a->prog->section.line && a->prog != b->prog) {
			const struct worker_ref *t = a;
			a = b;
			b = t;
		}
		struct conf_loc loc = key_loc(b->prog, PK_PROCESS_NAME);
		if (a->prog == b->prog)
			conf_msgs_add(&ld->errors,
			              "%s:%d: [program:%s]: two workers are named %s; expected "
			              "%%(process_num) in process_name",
			              loc.file, loc.line, b->prog->name, b->key);
		else
			conf_msgs_add(&ld->errors,
			              "%s:%d: [program:%s]: worker name %s is also a worker of "
			              "[program:%s] (%s:%d)",
			              loc.file, loc.line, b->prog->name, b->key, a->prog->name,
			              a->prog->section.file, a->prog->section.line);
	}
	if (npaths > 1)
		qsort(paths, npaths, sizeof(*paths), cmp_refs);
	for (size_t i = 1; i < npaths; i++) {
		if (strcmp(paths[i - 1].key, paths[i].key) != 0 ||
		    (i > 1 && strcmp(paths[i - 2].key, paths[i].key) == 0))
			continue;
		struct conf_loc loc = key_loc(paths[i].prog, paths[i].pk);
		conf_msgs_add(&ld->warnings,
		              "%s:%d: [program:%s] workers %s and %s both log to %s; rotation "
		              "will conflict",
		              loc.file, loc.line, paths[i].prog->name, paths[i - 1].worker,
		              paths[i].worker, paths[i].key);
	}
	for (size_t i = 0; i < npaths; i++)
		free(paths[i].key);
	for (size_t i = 0; i < nnames; i++)
		free(names[i].key);
	free(paths);
	free(names);
}
