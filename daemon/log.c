/*
 * SPDX-License-Identifier: MIT
 *
 * dextd's log: lines on stderr, the core's included, timestamped, or
 * with syslog priorities when stderr is the journal; and the rate limit
 * on lines a client can cause.
 */

#define _GNU_SOURCE

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
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

static int level_priority(int level)
{
    switch (level) {
    case DEXT_LOG_ERROR:
        return LOG_ERR;
    case DEXT_LOG_WARNING:
        return LOG_WARNING;
    case DEXT_LOG_INFO:
        return LOG_INFO;
    default:
        return LOG_DEBUG;
    }
}

/* $JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected. */
void log_setup(Daemon *d)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    d->journal = js != NULL &&
                 sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
                 fstat(STDERR_FILENO, &st) == 0 &&
                 (unsigned long long)st.st_dev == dev &&
                 (unsigned long long)st.st_ino == ino;
}

void dlog_plain(Daemon *d, const char *fmt, ...)
{
    va_list ap;

    if (d->journal) {
        fprintf(stderr, "<%d>", LOG_INFO);
    }
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
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
    if (d->journal) {
        /* The journal stamps and tags the line itself. */
        fprintf(stderr, "<%d>%s: %s\n", level_priority(level),
                level_name(level), msg);
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
