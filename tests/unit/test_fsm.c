/* Every edge of the worker state machine. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "drover/fsm.h"

static struct program_config policy(void)
{
	struct program_config p;
	memset(&p, 0, sizeof(p));
	p.numprocs = 1;
	p.startsecs = 1;
	p.startretries = 3;
	p.autorestart = AUTORESTART_UNEXPECTED;
	p.exitcodes[0] = 1; /* exit code 0 expected */
	p.stopsignal = SIGTERM;
	p.stopwaitsecs = 10;
	p.fatal_after_count = 10;
	p.fatal_after_window = 60;
	p.backoff_max = 10;
	return p;
}

static struct fsm_output step(struct fsm *m, const struct program_config *p, enum fsm_event ev,
                              double now)
{
	struct fsm_input in = {.event = ev, .now = now};
	struct fsm_output out;
	fsm_step(m, p, &in, &out);
	return out;
}

static struct fsm_output exit_with(struct fsm *m, const struct program_config *p, int status,
                                   double now)
{
	struct fsm_input in = {.event = FSM_EXIT, .now = now, .wait_status = status};
	struct fsm_output out;
	fsm_step(m, p, &in, &out);
	return out;
}

#define EXIT_CODE(n) ((n) << 8)

/* STOPPED -> STARTING (spawn) -> (spawned) -> wait startsecs -> RUNNING */
static void test_start_to_running(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m;
	fsm_init(&m);
	struct fsm_output o = step(&m, &p, FSM_START, 0);
	assert_int_equal(m.state, WORKER_STARTING);
	assert_int_equal(o.actions, FSM_ACT_SPAWN);
	assert_true(o.changed);

	o = step(&m, &p, FSM_SPAWNED, 0);
	assert_int_equal(m.state, WORKER_STARTING);
	assert_int_equal(o.actions, FSM_ACT_ARM_TIMER);
	assert_true(o.delay == 1.0);

	o = step(&m, &p, FSM_TIMER, 1);
	assert_int_equal(m.state, WORKER_RUNNING);
	assert_int_equal(m.backoff, 0);
}

static void test_startsecs_zero_runs_at_once(void **state)
{
	(void)state;
	struct program_config p = policy();
	p.startsecs = 0;
	struct fsm m;
	fsm_init(&m);
	step(&m, &p, FSM_START, 0);
	struct fsm_output o = step(&m, &p, FSM_SPAWNED, 0);
	assert_int_equal(m.state, WORKER_RUNNING);
	assert_int_equal(o.actions, 0);
}

/* supervisord: 1, 2, 3 s between attempts, FATAL after startretries */
static void test_backoff_then_fatal(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m;
	fsm_init(&m);
	step(&m, &p, FSM_START, 0);
	for (int attempt = 1; attempt <= 3; attempt++) {
		step(&m, &p, FSM_SPAWNED, 0);
		struct fsm_output o = exit_with(&m, &p, EXIT_CODE(0), 0.1);
		assert_int_equal(m.state, WORKER_BACKOFF);
		assert_int_equal(o.actions, FSM_ACT_ARM_TIMER);
		assert_true(o.delay == (double)attempt);
		assert_non_null(strstr(o.reason, "before startsecs"));
		o = step(&m, &p, FSM_TIMER, 1);
		assert_int_equal(m.state, WORKER_STARTING);
		assert_int_equal(o.actions, FSM_ACT_SPAWN);
	}
	step(&m, &p, FSM_SPAWNED, 0);
	struct fsm_output o = exit_with(&m, &p, EXIT_CODE(1), 0.1);
	assert_int_equal(m.state, WORKER_FATAL);
	assert_int_equal(o.actions, 0);
	assert_non_null(strstr(o.reason, "too many start retries too quickly"));
}

static void test_backoff_is_capped(void **state)
{
	(void)state;
	struct program_config p = policy();
	p.startretries = 10;
	p.backoff_max = 2;
	struct fsm m;
	fsm_init(&m);
	step(&m, &p, FSM_START, 0);
	double delays[4];
	for (int i = 0; i < 4; i++) {
		step(&m, &p, FSM_SPAWNED, 0);
		delays[i] = exit_with(&m, &p, EXIT_CODE(1), 0).delay;
		step(&m, &p, FSM_TIMER, 0);
	}
	assert_true(delays[0] == 1 && delays[1] == 2 && delays[2] == 2 && delays[3] == 2);
}

static void test_spawn_failure_permanent_is_fatal(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m;
	fsm_init(&m);
	step(&m, &p, FSM_START, 0);
	struct fsm_input in = {.event = FSM_SPAWN_FAILED,
	                       .permanent = true,
	                       .why = "cannot exec 'x': command not found on PATH"};
	struct fsm_output o;
	fsm_step(&m, &p, &in, &o);
	assert_int_equal(m.state, WORKER_FATAL);
	assert_string_equal(o.reason, "cannot exec 'x': command not found on PATH");
}

static void test_spawn_failure_transient_backs_off(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m;
	fsm_init(&m);
	step(&m, &p, FSM_START, 0);
	struct fsm_input in = {.event = FSM_SPAWN_FAILED, .permanent = false, .why = "cannot fork"};
	struct fsm_output o;
	fsm_step(&m, &p, &in, &o);
	assert_int_equal(m.state, WORKER_BACKOFF);
	assert_int_equal(o.actions, FSM_ACT_ARM_TIMER);
}

static struct fsm running(const struct program_config *p)
{
	struct fsm m;
	fsm_init(&m);
	step(&m, p, FSM_START, 0);
	step(&m, p, FSM_SPAWNED, 0);
	step(&m, p, FSM_TIMER, 1);
	assert_int_equal(m.state, WORKER_RUNNING);
	return m;
}

static void test_running_expected_exit_not_restarted(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m = running(&p);
	struct fsm_output o = exit_with(&m, &p, EXIT_CODE(0), 100);
	assert_int_equal(m.state, WORKER_EXITED);
	assert_true(o.expected);
	assert_int_equal(o.actions, 0);
}

static void test_running_unexpected_exit_restarts_at_once(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m = running(&p);
	struct fsm_output o = exit_with(&m, &p, EXIT_CODE(2), 100);
	assert_int_equal(m.state, WORKER_EXITED);
	assert_false(o.expected);
	assert_int_equal(o.actions, FSM_ACT_ARM_TIMER);
	assert_true(o.delay == 0);
	o = step(&m, &p, FSM_TIMER, 100);
	assert_int_equal(m.state, WORKER_STARTING);
	assert_int_equal(o.actions, FSM_ACT_SPAWN);
}

static void test_killed_by_signal_is_unexpected(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m = running(&p);
	struct fsm_output o = exit_with(&m, &p, SIGKILL, 100);
	assert_false(o.expected);
	assert_int_equal(o.actions, FSM_ACT_ARM_TIMER);
	assert_non_null(strstr(o.reason, "signal:KILL"));
}

static void test_autorestart_true_and_false(void **state)
{
	(void)state;
	struct program_config p = policy();
	p.autorestart = AUTORESTART_TRUE;
	struct fsm m = running(&p);
	assert_int_equal(exit_with(&m, &p, EXIT_CODE(0), 100).actions, FSM_ACT_ARM_TIMER);

	p.autorestart = AUTORESTART_FALSE;
	m = running(&p);
	assert_int_equal(exit_with(&m, &p, EXIT_CODE(9), 100).actions, 0);
	assert_int_equal(m.state, WORKER_EXITED);
}

/* after RUNNING: 0 s, then 1 s, 2 s ... and FATAL at fatal_after exits */
static void test_running_crash_loop_rate_limited(void **state)
{
	(void)state;
	struct program_config p = policy();
	p.startsecs = 0;
	p.autorestart = AUTORESTART_TRUE;
	p.fatal_after_count = 4;
	p.fatal_after_window = 30;
	struct fsm m;
	fsm_init(&m);
	step(&m, &p, FSM_START, 0);
	double now = 0;
	for (int i = 0; i < 3; i++) {
		step(&m, &p, FSM_SPAWNED, now);
		struct fsm_output o = exit_with(&m, &p, EXIT_CODE(1), now + 0.05);
		assert_int_equal(m.state, WORKER_EXITED);
		assert_true(o.delay == (double)i);
		now += 0.05 + o.delay;
		step(&m, &p, FSM_TIMER, now);
	}
	step(&m, &p, FSM_SPAWNED, now);
	struct fsm_output o = exit_with(&m, &p, EXIT_CODE(1), now + 0.05);
	assert_int_equal(m.state, WORKER_FATAL);
	assert_non_null(strstr(o.reason, "exited 4 times within 30s"));
}

static void test_deaths_outside_window_forgotten(void **state)
{
	(void)state;
	struct program_config p = policy();
	p.autorestart = AUTORESTART_TRUE;
	p.fatal_after_count = 2;
	p.fatal_after_window = 10;
	struct fsm m = running(&p);
	exit_with(&m, &p, EXIT_CODE(1), 100);
	step(&m, &p, FSM_TIMER, 100);
	step(&m, &p, FSM_SPAWNED, 100);
	step(&m, &p, FSM_TIMER, 101);
	struct fsm_output o = exit_with(&m, &p, EXIT_CODE(1), 200); /* 100 s later */
	assert_int_equal(m.state, WORKER_EXITED);
	assert_true(o.delay == 0);
}

static void test_fatal_after_zero_disables(void **state)
{
	(void)state;
	struct program_config p = policy();
	p.autorestart = AUTORESTART_TRUE;
	p.fatal_after_count = 0;
	struct fsm m = running(&p);
	for (int i = 0; i < 100; i++) {
		exit_with(&m, &p, EXIT_CODE(1), 100);
		assert_int_equal(m.state, WORKER_EXITED);
		step(&m, &p, FSM_TIMER, 100);
		step(&m, &p, FSM_SPAWNED, 100);
		step(&m, &p, FSM_TIMER, 101);
	}
}

static void test_stop_escalation(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m = running(&p);
	struct fsm_output o = step(&m, &p, FSM_STOP, 5);
	assert_int_equal(m.state, WORKER_STOPPING);
	assert_int_equal(o.actions, FSM_ACT_SIGNAL_STOP | FSM_ACT_ARM_TIMER);
	assert_true(o.delay == 10);
	o = step(&m, &p, FSM_TIMER, 15);
	assert_int_equal(m.state, WORKER_STOPPING);
	assert_int_equal(o.actions, FSM_ACT_SIGNAL_KILL);
	o = exit_with(&m, &p, SIGKILL, 15);
	assert_int_equal(m.state, WORKER_STOPPED);
	assert_true(o.changed);
}

static void test_stop_while_starting(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m;
	fsm_init(&m);
	step(&m, &p, FSM_START, 0);
	step(&m, &p, FSM_SPAWNED, 0);
	struct fsm_output o = step(&m, &p, FSM_STOP, 0.5);
	assert_int_equal(m.state, WORKER_STOPPING);
	assert_int_equal(o.actions, FSM_ACT_SIGNAL_STOP | FSM_ACT_ARM_TIMER);
}

static void test_stop_in_backoff_and_exited_has_no_process(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m;
	fsm_init(&m);
	step(&m, &p, FSM_START, 0);
	step(&m, &p, FSM_SPAWNED, 0);
	exit_with(&m, &p, EXIT_CODE(1), 0);
	assert_int_equal(m.state, WORKER_BACKOFF);
	struct fsm_output o = step(&m, &p, FSM_STOP, 0);
	assert_int_equal(m.state, WORKER_STOPPED);
	assert_int_equal(o.actions, 0);

	m = running(&p);
	exit_with(&m, &p, EXIT_CODE(1), 50);
	assert_int_equal(m.state, WORKER_EXITED);
	o = step(&m, &p, FSM_STOP, 50);
	assert_int_equal(m.state, WORKER_STOPPED);
}

static void test_pause_resume(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m = running(&p);
	struct fsm_output o = step(&m, &p, FSM_PAUSE, 5);
	assert_int_equal(m.state, WORKER_PAUSED);
	assert_int_equal(o.actions, FSM_ACT_SIGSTOP);
	assert_true(step(&m, &p, FSM_PAUSE, 5).rejected);
	o = step(&m, &p, FSM_RESUME, 6);
	assert_int_equal(m.state, WORKER_RUNNING);
	assert_int_equal(o.actions, FSM_ACT_SIGCONT);
	assert_true(step(&m, &p, FSM_RESUME, 6).rejected);

	/* a paused worker can be stopped: the stop action sends SIGCONT too */
	step(&m, &p, FSM_PAUSE, 7);
	o = step(&m, &p, FSM_STOP, 8);
	assert_int_equal(m.state, WORKER_STOPPING);
	assert_true(o.actions & FSM_ACT_SIGNAL_STOP);
}

static void test_start_from_fatal_resets(void **state)
{
	(void)state;
	struct program_config p = policy();
	p.startretries = 0;
	struct fsm m;
	fsm_init(&m);
	step(&m, &p, FSM_START, 0);
	step(&m, &p, FSM_SPAWNED, 0);
	exit_with(&m, &p, EXIT_CODE(1), 0);
	assert_int_equal(m.state, WORKER_FATAL);
	assert_true(step(&m, &p, FSM_STOP, 0).rejected);
	struct fsm_output o = step(&m, &p, FSM_START, 1);
	assert_int_equal(m.state, WORKER_STARTING);
	assert_int_equal(o.actions, FSM_ACT_SPAWN);
	assert_int_equal(m.backoff, 0);
}

static void test_rejections(void **state)
{
	(void)state;
	struct program_config p = policy();
	struct fsm m;
	fsm_init(&m);
	assert_true(step(&m, &p, FSM_STOP, 0).rejected);
	assert_true(step(&m, &p, FSM_PAUSE, 0).rejected);
	assert_true(step(&m, &p, FSM_TIMER, 0).rejected);
	m = running(&p);
	assert_true(step(&m, &p, FSM_START, 0).rejected);
	step(&m, &p, FSM_STOP, 0);
	assert_true(step(&m, &p, FSM_START, 0).rejected);
	assert_true(step(&m, &p, FSM_STOP, 0).rejected);
	assert_int_equal(m.state, WORKER_STOPPING);
}

static void test_names_and_status(void **state)
{
	(void)state;
	char buf[32];
	assert_string_equal(fsm_state_name(WORKER_BACKOFF), "BACKOFF");
	assert_string_equal(fsm_state_name(WORKER_PAUSED), "PAUSED");
	fsm_describe_status(EXIT_CODE(3), buf, sizeof(buf));
	assert_string_equal(buf, "exit:3");
	fsm_describe_status(SIGKILL, buf, sizeof(buf));
	assert_string_equal(buf, "signal:KILL");
	assert_true(fsm_state_has_process(WORKER_PAUSED));
	assert_false(fsm_state_has_process(WORKER_BACKOFF));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_start_to_running),
	    cmocka_unit_test(test_startsecs_zero_runs_at_once),
	    cmocka_unit_test(test_backoff_then_fatal),
	    cmocka_unit_test(test_backoff_is_capped),
	    cmocka_unit_test(test_spawn_failure_permanent_is_fatal),
	    cmocka_unit_test(test_spawn_failure_transient_backs_off),
	    cmocka_unit_test(test_running_expected_exit_not_restarted),
	    cmocka_unit_test(test_running_unexpected_exit_restarts_at_once),
	    cmocka_unit_test(test_killed_by_signal_is_unexpected),
	    cmocka_unit_test(test_autorestart_true_and_false),
	    cmocka_unit_test(test_running_crash_loop_rate_limited),
	    cmocka_unit_test(test_deaths_outside_window_forgotten),
	    cmocka_unit_test(test_fatal_after_zero_disables),
	    cmocka_unit_test(test_stop_escalation),
	    cmocka_unit_test(test_stop_while_starting),
	    cmocka_unit_test(test_stop_in_backoff_and_exited_has_no_process),
	    cmocka_unit_test(test_pause_resume),
	    cmocka_unit_test(test_start_from_fatal_resets),
	    cmocka_unit_test(test_rejections),
	    cmocka_unit_test(test_names_and_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
