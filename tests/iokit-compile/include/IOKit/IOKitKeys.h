/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <IOKit/IOKitKeys.h> (compile check
 * only): the registry keys and interest types libdext names, with the
 * SDK's spelling.
 */

#ifndef LIBDEXT_FAKE_IOKIT_IOKITKEYS_H
#define LIBDEXT_FAKE_IOKIT_IOKITKEYS_H

/* The interest type of IOServiceAddInterestNotification for IOMessage.h's. */
#define kIOGeneralInterest "IOGeneralInterest"

#endif /* LIBDEXT_FAKE_IOKIT_IOKITKEYS_H */
