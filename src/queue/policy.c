#include "drover/policy.h"

int policy_pick_worker(const int *inflight, const bool *capable, size_t n, int prefetch)
{
	int best = -1;
	for (size_t i = 0; i < n; i++) {
		if (!capable[i] || inflight[i] >= prefetch)
			continue;
		if (best < 0 || inflight[i] < inflight[best])
			best = (int)i;
	}
	return best;
}

int policy_batch(long long pending, size_t capable_workers, int room)
{
	if (room <= 0)
		return 0;
	if (capable_workers == 0)
		capable_workers = 1;
	long long share = (pending + (long long)capable_workers - 1) / (long long)capable_workers;
	if (share < 1)
		share = 1;
	return share < room ? (int)share : room;
}

double policy_retry_delay(int attempts, double jitter01)
{
	double d = POLICY_RETRY_BASE;
	for (int i = 1; i < attempts && d < POLICY_RETRY_CAP; i++)
		d *= 2;
	if (d > POLICY_RETRY_CAP)
		d = POLICY_RETRY_CAP;
	if (jitter01 < 0)
		jitter01 = 0;
	if (jitter01 > 1)
		jitter01 = 1;
	return d * jitter01;
}

bool policy_is_dead(int attempts, int task_retries)
{
	return attempts >= task_retries + 1;
}
