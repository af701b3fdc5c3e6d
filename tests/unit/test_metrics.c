/* CPU% from tick deltas, tree sums over a fake process table, units. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "drover/metrics.h"

#define HZ 100

static void test_first_sample_has_no_figure(void **state)
{
	(void)state;
	struct cpu_track t;
	memset(&t, 0, sizeof(t));
	assert_true(cpu_track_update(&t, 42, 1000, 500, 10.0, HZ, 2) < 0);
	/* one core busy for 1 s: 100 ticks */
	double cpu = cpu_track_update(&t, 42, 1000, 600, 11.0, HZ, 2);
	assert_true(cpu > 99.9 && cpu < 100.1);
	/* half a core over 2 s */
	cpu = cpu_track_update(&t, 42, 1000, 700, 13.0, HZ, 2);
	assert_true(cpu > 49.9 && cpu < 50.1);
}

static void test_pid_reuse_resets(void **state)
{
	(void)state;
	struct cpu_track t;
	memset(&t, 0, sizeof(t));
	cpu_track_update(&t, 42, 1000, 500, 10.0, HZ, 2);
	/* same pid, another start time: another process, never mix ticks */
	assert_true(cpu_track_update(&t, 42, 2000, 10, 11.0, HZ, 2) < 0);
	double cpu = cpu_track_update(&t, 42, 2000, 60, 12.0, HZ, 2);
	assert_true(cpu > 49.9 && cpu < 50.1);
	/* another pid: reset as well */
	assert_true(cpu_track_update(&t, 43, 2000, 100, 13.0, HZ, 2) < 0);
}

static void test_ticks_backwards_and_clamp(void **state)
{
	(void)state;
	struct cpu_track t;
	memset(&t, 0, sizeof(t));
	cpu_track_update(&t, 1, 5, 1000, 1.0, HZ, 2);
	assert_true(cpu_track_update(&t, 1, 5, 900, 2.0, HZ, 2) < 0);
	/* jitter: 300 ticks in 1 s on 2 cpus is clamped to 200% */
	double cpu = cpu_track_update(&t, 1, 5, 1200, 3.0, HZ, 2);
	assert_true(cpu == 200.0);
	/* a stopped process: no ticks, 0% */
	cpu = cpu_track_update(&t, 1, 5, 1200, 4.0, HZ, 2);
	assert_true(cpu == 0.0);
}

static struct proc_sample proc(pid_t pid, pid_t ppid, unsigned long long ticks_c,
                               unsigned long long rss)
{
	struct proc_sample p;
	memset(&p, 0, sizeof(p));
	p.pid = pid;
	p.ppid = ppid;
	p.ticks_c = ticks_c;
	p.rss = rss;
	p.state = 'S';
	return p;
}

static void test_tree_sum(void **state)
{
	(void)state;
	/* 1 -> 10 -> {11 -> 13, 12}; 20 unrelated; 14 child of 13 */
	struct proc_sample procs[] = {
	    proc(1, 0, 1, 1),      proc(10, 1, 100, 1000), proc(11, 10, 10, 100),
	    proc(12, 10, 20, 200), proc(13, 11, 30, 300),  proc(20, 1, 5000, 50000),
	    proc(14, 13, 40, 400),
	};
	struct proc_table t;
	memset(&t, 0, sizeof(t));
	t.procs = procs;
	t.count = sizeof(procs) / sizeof(procs[0]);
	assert_int_equal(proc_table_index(&t), 0);
	struct tree_sum sum;
	proc_tree_sum(&t, proc_table_find(&t, 10), &sum);
	assert_int_equal(sum.procs, 5);
	assert_int_equal(sum.ticks_c, 200);
	assert_int_equal(sum.rss, 2000);
	proc_tree_sum(&t, proc_table_find(&t, 13), &sum);
	assert_int_equal(sum.procs, 2);
	assert_int_equal(sum.rss, 700);
	proc_tree_sum(&t, proc_table_find(&t, 20), &sum);
	assert_int_equal(sum.procs, 1);
	proc_tree_sum(&t, proc_table_find(&t, 99), &sum);
	assert_int_equal(sum.procs, 0);
	proc_table_free_index(&t);
}

static void test_tree_loop_does_not_hang(void **state)
{
	(void)state;
	/* pid reuse during a scan can make two processes each other's parent */
	struct proc_sample procs[] = {proc(5, 6, 1, 1), proc(6, 5, 1, 1)};
	struct proc_table t;
	memset(&t, 0, sizeof(t));
	t.procs = procs;
	t.count = 2;
	assert_int_equal(proc_table_index(&t), 0);
	struct tree_sum sum;
	proc_tree_sum(&t, 0, &sum);
	assert_true(sum.procs >= 1 && sum.procs <= 5);
	proc_table_free_index(&t);
}

static void test_format_bytes(void **state)
{
	(void)state;
	char buf[16];
	metrics_format_bytes(1288490189ULL, buf, sizeof(buf)); /* 1.2 GiB */
	assert_string_equal(buf, "1.2G");
	metrics_format_bytes(340ULL << 20, buf, sizeof(buf));
	assert_string_equal(buf, "340M");
	metrics_format_bytes(12 * 1024, buf, sizeof(buf));
	assert_string_equal(buf, "12K");
	metrics_format_bytes(512, buf, sizeof(buf));
	assert_string_equal(buf, "512B");
	metrics_format_bytes(5ULL << 40, buf, sizeof(buf));
	assert_string_equal(buf, "5.0T");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_sample_has_no_figure),
	    cmocka_unit_test(test_pid_reuse_resets),
	    cmocka_unit_test(test_ticks_backwards_and_clamp),
	    cmocka_unit_test(test_tree_sum),
	    cmocka_unit_test(test_tree_loop_does_not_hang),
	    cmocka_unit_test(test_format_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
