/*
 * SPDX-License-Identifier: MIT
 *
 * Log levels and the log sink type, one for every layer: devices, the
 * core, dextd and the library's public log handler all speak syslog's
 * numbers (the public APPLE_DEXT_LOG_* values are the same).
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

#endif /* LIBDEXT_SUPPORT_LOG_H */
