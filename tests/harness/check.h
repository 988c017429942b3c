/*
 * SPDX-License-Identifier: MIT
 *
 * Counted checks: the one assertion dialect of every test program.
 *
 * The API tests get these through harness.h; a unit test, which has no
 * transport and no daemon, includes this file alone and links only
 * check.c (and libdext, for apple_dext_strerror()).
 *
 * Checks never abort: a failed one prints "FAIL file:line: what" on
 * stderr, with the values (IOReturn codes by name), is counted and
 * returns false, so a test can skip what depends on it.  Only the first
 * HARNESS_MAX_PRINTED failures are printed, so one bug in a loop does
 * not bury the rest; every one is counted.  harness_finish() prints
 * "N passed, N failed" and returns the exit status.  Checks may run on
 * any thread.
 */

#ifndef LIBDEXT_TESTS_CHECK_H
#define LIBDEXT_TESTS_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "apple-dext-client.h"

/* Failures printed; later ones are only counted. */
#define HARNESS_MAX_PRINTED 100

/**
 * harness_check() - count a check and report it if it failed
 * @ok: whether it passed
 * @file: source file of the check
 * @line: source line of the check
 * @fmt: printf format of what was checked, printed on failure
 *
 * Use CHECK() or CHECK_MSG().
 *
 * Return: @ok.
 */
bool harness_check(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * harness_check_eq() - check that two integers are equal
 * @got: the value found
 * @want: the value expected
 * @file: source file of the check
 * @line: source line of the check
 * @got_expr: the expression of @got
 * @want_expr: the expression of @want
 *
 * Use CHECK_EQ(); a failure prints both values in hex and decimal.
 *
 * Return: true if @got == @want.
 */
bool harness_check_eq(uint64_t got, uint64_t want, const char *file, int line,
                      const char *got_expr, const char *want_expr);

/**
 * harness_check_kr() - check an IOReturn
 * @got: the code returned
 * @want: the code expected
 * @file: source file of the check
 * @line: source line of the check
 * @expr: the expression that returned @got
 *
 * Use CHECK_KR(); a failure names both codes.
 *
 * Return: true if @got == @want.
 */
bool harness_check_kr(kern_return_t got, kern_return_t want, const char *file,
                      int line, const char *expr);

/**
 * harness_failures() - failed checks so far, e.g. to stop a loop early
 *
 * Return: the number of checks that failed.
 */
unsigned harness_failures(void);

/**
 * harness_section() - print a "# ..." heading into the test log
 * @fmt: printf format of the heading
 */
void harness_section(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/**
 * harness_at_finish() - run @fn first thing in harness_finish()
 * @fn: e.g. the harness's stop of its daemon, whose checks count
 *
 * One function; a later call replaces it.
 */
void harness_at_finish(void (*fn)(void));

/**
 * harness_finish() - print the summary, after harness_at_finish()'s call
 *
 * Return: the process exit status: 0 if every check passed (and at
 * least one ran), else 1.
 */
int harness_finish(void);

/* Each returns true if the check passed. */
#define CHECK(cond) \
    harness_check(!!(cond), __FILE__, __LINE__, "%s", #cond)
#define CHECK_MSG(cond, ...) \
    harness_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_EQ(got, want) \
    harness_check_eq((uint64_t)(got), (uint64_t)(want), __FILE__, __LINE__, \
                     #got, #want)
#define CHECK_KR(expr, want) \
    harness_check_kr((expr), (want), __FILE__, __LINE__, #expr)

#endif /* LIBDEXT_TESTS_CHECK_H */
