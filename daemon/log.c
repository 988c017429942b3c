/*
 * SPDX-License-Identifier: MIT
 *
 * dextd's log: timestamped lines on stderr, the core's included, and
 * the rate limit on lines a client can cause.
 */

#define _GNU_SOURCE

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "daemon/dextd.h"

static const char *level_name(int level)
{
    switch (level) {
    case DEXT_LOG_ERROR:
        return "error";
    case DEXT_LOG_WARNING:
        return "warning";
    case DEXT_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* The core's log sink; also used for the daemon's own lines. */
void daemon_log(void *opaque, int level, const char *msg)
{
    Daemon *d = opaque;
    struct timespec ts;
    struct tm tm;
    char when[32];

    if (level > d->log_level) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    /* One fprintf per line: stdio's lock keeps threads' lines whole. */
    fprintf(stderr, "%s.%03ld dextd[%d]: %s: %s\n", when,
            ts.tv_nsec / 1000000, (int)getpid(), level_name(level), msg);
}

static void vdlog(Daemon *d, int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vdlog(Daemon *d, int level, const char *fmt, va_list ap)
{
    char msg[512];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    daemon_log(d, level, msg);
}

void dlog(Daemon *d, int level, const char *fmt, ...)
{
    va_list ap;

    if (level > d->log_level) {
        return;
    }
    va_start(ap, fmt);
    vdlog(d, level, fmt, ap);
    va_end(ap);
}

/* Past the burst, lines are counted and reported with the next one. */
void dlog_limited(Daemon *d, DextRateLimit *rl, int level,
                  const char *fmt, ...)
{
    unsigned suppressed, also;
    va_list ap;

    if (level > d->log_level || !dext_ratelimit_take(rl, &suppressed)) {
        return;
    }
    /*
     * And the daemon-wide budget: a thousand processes get a thousand
     * budgets of their own, but the log must not take a thousand bursts.
     */
    if (!dext_ratelimit_take(&d->all_clients_rl, &also)) {
        __atomic_fetch_add(&rl->suppressed, suppressed + 1, __ATOMIC_RELAXED);
        return;
    }
    suppressed += also;
    if (suppressed > 0) {
        dlog(d, level, "%u messages suppressed", suppressed);
    }
    va_start(ap, fmt);
    vdlog(d, level, fmt, ap);
    va_end(ap);
}
