/* The dispatcher's choices: which worker, how many, retry delays, dead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "drover/policy.h"

static void test_pick_fewest_in_flight(void **state)
{
	(void)state;
	int inflight[] = {5, 2, 2, 0};
	bool capable[] = {true, true, true, false};
	/* worker 3 has none but cannot take (paused, starting...); tie -> lowest */
	assert_int_equal(policy_pick_worker(inflight, capable, 4, 16), 1);
	capable[3] = true;
	assert_int_equal(policy_pick_worker(inflight, capable, 4, 16), 3);
}

static void test_pick_respects_prefetch(void **state)
{
	(void)state;
	int inflight[] = {4, 4};
	bool capable[] = {true, true};
	assert_int_equal(policy_pick_worker(inflight, capable, 2, 4), -1);
	inflight[1] = 3;
	assert_int_equal(policy_pick_worker(inflight, capable, 2, 4), 1);
	assert_int_equal(policy_pick_worker(inflight, capable, 0, 4), -1);
}

static void test_batch_is_a_fair_share(void **state)
{
	(void)state;
	assert_int_equal(policy_batch(100, 4, 16), 16); /* room limits */
	assert_int_equal(policy_batch(10, 4, 16), 3);   /* ceil(10 / 4) */
	assert_int_equal(policy_batch(0, 4, 16), 1);    /* retries may be due */
	assert_int_equal(policy_batch(5, 0, 16), 5);
	assert_int_equal(policy_batch(5, 2, 0), 0);
}

static void test_retry_delay_grows_capped_with_jitter(void **state)
{
	(void)state;
	assert_true(policy_retry_delay(1, 1.0) == 0.5);
	assert_true(policy_retry_delay(2, 1.0) == 1.0);
	assert_true(policy_retry_delay(3, 1.0) == 2.0);
	assert_true(policy_retry_delay(20, 1.0) == POLICY_RETRY_CAP);
	assert_true(policy_retry_delay(3, 0.5) == 1.0);
	assert_true(policy_retry_delay(3, 0.0) == 0.0);
	assert_true(policy_retry_delay(3, 7.0) == 2.0); /* jitter clamped */
}

static void test_dead_after_retries(void **state)
{
	(void)state;
	/* task_retries = 3: attempts 1..3 fail and retry, the 4th is the last */
	assert_false(policy_is_dead(1, 3));
	assert_false(policy_is_dead(3, 3));
	assert_true(policy_is_dead(4, 3));
	assert_true(policy_is_dead(1, 0)); /* no retries: the first failure is final */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pick_fewest_in_flight),
	    cmocka_unit_test(test_pick_respects_prefetch),
	    cmocka_unit_test(test_batch_is_a_fair_share),
	    cmocka_unit_test(test_retry_delay_grows_capped_with_jitter),
	    cmocka_unit_test(test_dead_after_retries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
