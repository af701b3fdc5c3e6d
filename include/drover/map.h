/* `drover map`: a one-shot pool, like Pool.map, xargs -P or GNU parallel.
 * The same core as a supervisor, with the memory store, no socket, tasks
 * from stdin (read only as fast as the pool works them off) and results to
 * stdout. */
#ifndef DROVER_MAP_H
#define DROVER_MAP_H

#include <stddef.h>
#include <stdint.h>

struct supervisor;
struct map_run;

/* argv[0] is "map". Returns the process exit code. */
int map_main(int argc, char **argv);

/* Hooks from the core, used only when supervisor_options.map is set. */
int map_attach(struct supervisor *sup);
void map_result(struct supervisor *sup, int64_t id, const char *result, size_t len,
                const char *error);
void map_turn(struct supervisor *sup);
void map_detach(struct supervisor *sup);

#endif
