#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "drover/pidmap.h"

static void test_put_get_del(void **state)
{
	(void)state;
	struct pidmap m = {0};
	int a, b;
	assert_int_equal(pidmap_put(&m, 42, 1, &a), 0);
	assert_int_equal(pidmap_put(&m, 43, 2, &b), 0);
	assert_ptr_equal(pidmap_get(&m, 42)->ptr, &a);
	assert_int_equal(pidmap_get(&m, 43)->kind, 2);
	assert_null(pidmap_get(&m, 44));
	pidmap_put(&m, 42, 3, &b); /* replace */
	assert_int_equal(m.len, 2);
	assert_int_equal(pidmap_get(&m, 42)->kind, 3);
	pidmap_del(&m, 42);
	assert_null(pidmap_get(&m, 42));
	assert_non_null(pidmap_get(&m, 43));
	assert_int_equal(m.len, 1);
	pidmap_free(&m);
}

/* deletions in the middle of collision runs must keep every other key */
static void test_many_with_deletes(void **state)
{
	(void)state;
	struct pidmap m = {0};
	enum { N = 20000 };
	for (int i = 1; i <= N; i++)
		assert_int_equal(pidmap_put(&m, i * 7, i % 5, NULL), 0);
	for (int i = 1; i <= N; i += 3)
		pidmap_del(&m, i * 7);
	for (int i = 1; i <= N; i++) {
		struct pidmap_entry *e = pidmap_get(&m, i * 7);
		if ((i - 1) % 3 == 0)
			assert_null(e);
		else {
			assert_non_null(e);
			assert_int_equal(e->kind, i % 5);
		}
	}
	pidmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get_del),
	    cmocka_unit_test(test_many_with_deletes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
