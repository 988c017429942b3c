/*
 * SPDX-License-Identifier: MIT
 *
 * Log levels and the log sink type, one for every layer: devices, the
 * core, dextd and the library's public log handler all speak syslog's
 * numbers (the public APPLE_DEXT_LOG_* values are the same).
 *
 * The process's log handler lives here too, at the bottom, so that every
 * layer of the library reaches the one the application installed
 * (apple_dext_set_log_handler()): the client code through dext_log(),
 * and a core made by the in-process transport through dext_log_sink().
 */

#ifndef LIBDEXT_SUPPORT_LOG_H
#define LIBDEXT_SUPPORT_LOG_H

enum {
    DEXT_LOG_ERROR = 3,
    DEXT_LOG_WARNING = 4,
    DEXT_LOG_INFO = 6,
    DEXT_LOG_DEBUG = 7,
};

/** Log sink: @level is DEXT_LOG_*, @msg one line without newline. */
typedef void DextLogFn(void *opaque, int level, const char *msg);

/**
 * dext_log_set_handler() - where the library's log lines go
 * @fn: the handler, or NULL for nowhere
 * @opaque: passed to @fn
 *
 * Once this returns the previous handler is not called any more: lines
 * are handed over under the lock this takes.
 *
 * Return: nothing.
 */
void dext_log_set_handler(DextLogFn *fn, void *opaque);

/**
 * dext_log_sink() - a DextLogFn that passes one line to the handler
 * @opaque: unused (NULL)
 * @level: DEXT_LOG_*
 * @msg: one line, no newline
 *
 * For code that logs through a sink it was given (the core).  DEBUG
 * lines pass only when $DEXT_DEBUG is set.  The handler runs on the
 * caller's thread with the handler lock held, under whatever locks the
 * caller holds: it must not call back into the library.
 *
 * Return: nothing.
 */
void dext_log_sink(void *opaque, int level, const char *msg);

/**
 * dext_log() - format one line and pass it to the handler
 * @level: DEXT_LOG_*
 * @fmt: printf format; the result is cut at 511 bytes
 *
 * As dext_log_sink().
 *
 * Return: nothing.
 */
void dext_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * dext_log_detail() - the last line logged at DEXT_LOG_WARNING or more
 * severe on the calling thread since dext_log_clear_detail()
 *
 * Lines are kept whether or not a handler is installed.
 *
 * Return: the line (thread-local storage), or "" if none.
 */
const char *dext_log_detail(void);

/**
 * dext_log_clear_detail() - forget the calling thread's dext_log_detail()
 *
 * Return: nothing.
 */
void dext_log_clear_detail(void);

#endif /* LIBDEXT_SUPPORT_LOG_H */
