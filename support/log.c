/*
 * SPDX-License-Identifier: MIT
 *
 * The process's log handler (support/log.h): the library never prints on
 * its own; every line goes to what the application installed.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "support/locks.h"
#include "support/log.h"

static DextMutex handler_lock = DEXT_MUTEX_INITIALIZER;
static DextLogFn *handler_fn;       /* DEXT_GUARDED_BY(handler_lock) */
static void *handler_opaque;        /* DEXT_GUARDED_BY(handler_lock) */

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
        handler_fn(handler_opaque, level, msg);
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
