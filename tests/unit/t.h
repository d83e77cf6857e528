/*
 * t.h: the smallest table-driven test harness that does the job.
 *
 * A test program runs named cases; each prints one line, "PASS name" or
 * "FAIL name: why", which scripts/test counts. T_CHECK records a failure
 * with file:line and goes on, so one run shows every broken expectation.
 */
#ifndef DR_T_H
#define DR_T_H

#include <stdio.h>
#include <string.h>

static int t_failed_now;
static int t_total_failed;

#define T_CHECK(cond)                                                  \
	do {                                                           \
		if (!(cond)) {                                         \
			if (!t_failed_now)                             \
				printf("FAIL %s: %s:%d: %s\n", t_name, \
				    __FILE__, __LINE__, #cond);        \
			t_failed_now = 1;                              \
		}                                                      \
	} while (0)

/* Record a failure with its reason: a precondition not met, a table row
 * that does not hold. */
#define T_FAIL(why)                                                      \
	do {                                                             \
		if (!t_failed_now)                                       \
			printf("FAIL %s: %s:%d: %s\n", t_name, __FILE__, \
			    __LINE__, why);                              \
		t_failed_now = 1;                                        \
	} while (0)

#define T_STREQ(a, b)                                                          \
	do {                                                                   \
		const char *t_a_ = (a), *t_b_ = (b);                           \
		if (t_a_ == NULL || t_b_ == NULL || strcmp(t_a_, t_b_) != 0) { \
			if (!t_failed_now)                                     \
				printf("FAIL %s: %s:%d: \"%s\" != \"%s\"\n",   \
				    t_name, __FILE__, __LINE__,                \
				    t_a_ ? t_a_ : "(null)",                    \
				    t_b_ ? t_b_ : "(null)");                   \
			t_failed_now = 1;                                      \
		}                                                              \
	} while (0)

static const char *t_name = "";

/* Run one case: fn() uses T_CHECK; prints PASS/FAIL. */
#define T_RUN(fn)                                    \
	do {                                         \
		t_name = #fn;                        \
		t_failed_now = 0;                    \
		fn();                                \
		if (!t_failed_now)                   \
			printf("PASS %s\n", t_name); \
		else                                 \
			t_total_failed++;            \
		fflush(stdout);                      \
	} while (0)

#define T_EXIT() return t_total_failed == 0 ? 0 : 1

#endif
