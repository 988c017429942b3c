/*
 * SPDX-License-Identifier: MIT
 *
 * The process's log handler (support/log.h): the library never prints on
 * its own; every line goes to what the application installed.
 */

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "support/locks.h"
#include "support/log.h"

static DextMutex handler_lock = DEXT_MUTEX_INITIALIZER;
static DextLogFn *handler_fn;       /* DEXT_GUARDED_BY(handler_lock) */
static void *handler_opaque;        /* DEXT_GUARDED_BY(handler_lock) */
/* This thread holds @handler_lock: it is running the handler. */
static __thread bool in_handler;
/* fork() took @handler_lock: set and read by the forking thread only. */
static bool fork_took_lock;

/*
 * A fork() while another thread runs the handler would leave the child
 * @handler_lock held by a thread it does not have, and its first line
 * would wait forever.  So fork() waits for the handler to return, and
 * the parent and the child each release their copy of the lock -- but
 * not when the handler itself forks: that thread holds the lock and goes
 * on to release it in the child as in the parent.  Installed as the
 * library loads.
 */
static void log_fork_prepare(void) DEXT_NO_THREAD_SAFETY_ANALYSIS
{
    fork_took_lock = !in_handler;
    if (fork_took_lock) {
        dext_mutex_lock(&handler_lock);
    }
}

static void log_fork_release(void) DEXT_NO_THREAD_SAFETY_ANALYSIS
{
    if (fork_took_lock) {
        dext_mutex_unlock(&handler_lock);
    }
}

__attribute__((constructor)) static void log_watch_forks(void)
{
    (void)pthread_atfork(log_fork_prepare, log_fork_release,
                         log_fork_release);
}

void dext_log_set_handler(DextLogFn *fn, void *opaque)
{
    dext_mutex_lock(&handler_lock);
    handler_fn = fn;
    handler_opaque = opaque;
    dext_mutex_unlock(&handler_lock);
}

static bool level_wanted(int level)
{
    return level < DEXT_LOG_DEBUG || getenv("DEXT_DEBUG") != NULL;
}

/*
 * Called with the lock held so that a handler being replaced (or its
 * opaque freed) is never called after dext_log_set_handler() returns.
 */
static __thread char detail[512];

const char *dext_log_detail(void)
{
    return detail;
}

void dext_log_clear_detail(void)
{
    detail[0] = '\0';
}

static void emit(int level, const char *msg)
{
    if (level <= DEXT_LOG_WARNING) {
        snprintf(detail, sizeof(detail), "%s", msg);
    }
    dext_mutex_lock(&handler_lock);
    if (handler_fn != NULL) {
        in_handler = true;
        handler_fn(handler_opaque, level, msg);
        in_handler = false;
    }
    dext_mutex_unlock(&handler_lock);
}

void dext_log_sink(void *opaque, int level, const char *msg)
{
    (void)opaque;
    if (level_wanted(level)) {
        emit(level, msg);
    }
}

void dext_log(int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!level_wanted(level)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit(level, msg);
}
