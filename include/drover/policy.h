/* The dispatcher's decisions, as pure functions: which worker gets the next
 * tasks, how many, and when a failed task runs again or is dead. */
#ifndef DROVER_POLICY_H
#define DROVER_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#define POLICY_RETRY_BASE 0.5 /* seconds */
#define POLICY_RETRY_CAP  30.0

/* The worker with the fewest tasks in flight among those that can take one
 * (capable and below prefetch); ties go to the lowest index. -1 if none. */
int policy_pick_worker(const int *inflight, const bool *capable, size_t n, int prefetch);

/* How many tasks to give it: a fair share of what is pending, at least one,
 * at most its free room. */
int policy_batch(long long pending, size_t capable_workers, int room);

/* Delay before attempt `attempts` + 1: min(cap, base * 2^(attempts-1)) with
 * full jitter (jitter01 in [0, 1]). */
double policy_retry_delay(int attempts, double jitter01);

/* After a failed attempt: out of retries? */
bool policy_is_dead(int attempts, int task_retries);

#endif
