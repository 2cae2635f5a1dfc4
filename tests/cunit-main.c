/* Shared main() of the CUnit suites: each tests/test-<module>.c defines
 * test_register(), which adds its suite(s).  Exits non-zero on any failure. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testlib.h"

/* TEST_ONLY=substring registers the matching tests only (while debugging;
 * HP_TEST_ONLY, its older name, too). */
void test_add(struct CU_Suite *s, const char *name, void (*fn)(void))
{
	const char *only = getenv("TEST_ONLY");
	if (!only)
		only = getenv("HP_TEST_ONLY");
	if (!only || strstr(name, only))
		CU_add_test(s, name, fn);
}

int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	if (test_register() != 0) {
		fprintf(stderr, "suite registration failed\n");
		CU_cleanup_registry();
		return 2;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	/* a suite whose set-up failed runs none of its tests: that is a failure
	 * too, never a quiet pass */
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
			  CU_get_number_of_suites_failed();
	unsigned ran = CU_get_number_of_tests_run();
	CU_cleanup_registry();
	return (failed || ran == 0) ? 1 : 0;
}
