/*
 * SPDX-License-Identifier: MIT
 *
 * apple_dext_strerror(): IOReturn codes as names and Apple's descriptions
 * (the table is support/ioreturn-names.c, dextd's too).
 */

#include <stdio.h>

#include "client/client-internal.h"
#include "support/ioreturn-names.h"

const char *apple_dext_strerror(kern_return_t kr)
{
    static __thread char unknown[48];
    const char *text = dext_ioreturn_text(kr);

    if (text != NULL) {
        return text;
    }
    snprintf(unknown, sizeof(unknown), "unknown error 0x%08x", (unsigned)kr);
    return unknown;
}

const char *apple_dext_last_error_detail(void)
{
    return dext_log_detail();
}
