/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <IOKit/OSMessageNotification.h>
 * (compile check only): the layout of an async reference array.  Slot 0
 * is reserved for the kernel; the callout and its refcon follow.
 */

#ifndef LIBDEXT_FAKE_IOKIT_OSMESSAGENOTIFICATION_H
#define LIBDEXT_FAKE_IOKIT_OSMESSAGENOTIFICATION_H

#include <stdint.h>

typedef uint64_t io_user_reference_t;

enum {
    kIOAsyncReservedIndex = 0,
    kIOAsyncReservedCount,

    kIOAsyncCalloutFuncIndex = kIOAsyncReservedCount,
    kIOAsyncCalloutRefconIndex,
    kIOAsyncCalloutCount,
};

enum {
    kOSAsyncRef64Count = 8,
    kOSAsyncRef64Size = kOSAsyncRef64Count * ((int)sizeof(io_user_reference_t)),
};

typedef io_user_reference_t OSAsyncReference64[kOSAsyncRef64Count];

#endif /* LIBDEXT_FAKE_IOKIT_OSMESSAGENOTIFICATION_H */
