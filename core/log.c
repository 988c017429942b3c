/*
 * SPDX-License-Identifier: MIT
 *
 * The core's log: lines to the sink given to dext_core_new(), plain or
 * under a rate limit, and the DextDeviceHost.log upcall of every device.
 * Its own file so that every part of the core (services, DMA,
 * interrupts) logs without calling back into core.c.
 */

#include <stdarg.h>
#include <stdio.h>

#include "core/core-internal.h"

void dext_core_logf(DextCore *core, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (core == NULL || core->log == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    core->log(core->log_opaque, level, msg);
}

void dext_core_ratelimited(DextCore *core, DextRateLimit *rl, int level,
                           const char *fmt, ...)
{
    unsigned dropped = 0;
    char msg[512];
    va_list ap;

    if (core == NULL || core->log == NULL ||
        !dext_ratelimit_take(rl, &dropped)) {
        return;
    }
    if (dropped > 0) {
        dext_core_logf(core, level, "%u messages suppressed", dropped);
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    core->log(core->log_opaque, level, msg);
}

void dext_core_device_log(void *opaque, int level, const char *msg)
{
    CoreDevice *cd = opaque;

    dext_core_ratelimited(cd->core, &cd->log_limit, level, "%s: %s",
                          cd->dev->name, msg);
}
