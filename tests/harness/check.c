/*
 * SPDX-License-Identifier: MIT
 *
 * Counted checks and the summary.  See check.h.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "check.h"

static atomic_uint checks_passed;
static atomic_uint checks_failed;
static void (*finish_fn)(void);

static void report_failure(const char *file, int line, const char *fmt,
                           va_list ap) __attribute__((format(printf, 3, 0)));

static void report_failure(const char *file, int line, const char *fmt,
                           va_list ap)
{
    unsigned before = atomic_fetch_add(&checks_failed, 1);
    char msg[1024];

    if (before > HARNESS_MAX_PRINTED) {
        return;
    }
    if (before == HARNESS_MAX_PRINTED) {
        fprintf(stderr, "FAIL %s:%d: %u failures printed, later ones only "
                "counted\n", file, line, HARNESS_MAX_PRINTED);
        fflush(stderr);
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* One write per failure so lines from several threads do not mix. */
    fprintf(stderr, "FAIL %s:%d: %s\n", file, line, msg);
    fflush(stderr);
}

static bool check_failed(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool check_failed(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report_failure(file, line, fmt, ap);
    va_end(ap);
    return false;
}

bool harness_check(bool ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    if (ok) {
        atomic_fetch_add(&checks_passed, 1);
        return true;
    }
    va_start(ap, fmt);
    report_failure(file, line, fmt, ap);
    va_end(ap);
    return false;
}

bool harness_check_eq(uint64_t got, uint64_t want, const char *file, int line,
                      const char *got_expr, const char *want_expr)
{
    if (got == want) {
        atomic_fetch_add(&checks_passed, 1);
        return true;
    }
    return check_failed(file, line,
                        "%s == %s: got 0x%" PRIx64 " (%" PRId64 "), "
                        "expected 0x%" PRIx64 " (%" PRId64 ")",
                        got_expr, want_expr, got, (int64_t)got, want,
                        (int64_t)want);
}

bool harness_check_kr(kern_return_t got, kern_return_t want, const char *file,
                      int line, const char *expr)
{
    char got_name[128];

    if (got == want) {
        atomic_fetch_add(&checks_passed, 1);
        return true;
    }
    /* apple_dext_strerror() may use one buffer for unknown codes. */
    snprintf(got_name, sizeof(got_name), "%s", apple_dext_strerror(got));
    return check_failed(file, line, "%s: got %s, expected %s", expr,
                        got_name, apple_dext_strerror(want));
}

unsigned harness_failures(void)
{
    return atomic_load(&checks_failed);
}

void harness_section(const char *fmt, ...)
{
    va_list ap;

    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

void harness_at_finish(void (*fn)(void))
{
    finish_fn = fn;
}

int harness_finish(void)
{
    unsigned passed, failed;

    if (finish_fn != NULL) {
        finish_fn();
    }
    passed = atomic_load(&checks_passed);
    failed = atomic_load(&checks_failed);
    printf("%u passed, %u failed\n", passed, failed);
    if (passed == 0 && failed == 0) {
        printf("no check ran: counted as a failure\n");
        return 1;
    }
    return failed == 0 ? 0 : 1;
}
