/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <IOKit/IOMessage.h> (compile check
 * only): the messages an interest notification delivers that libdext
 * names, with the SDK's values (the iokit system, the common subsystem,
 * the message).
 */

#ifndef LIBDEXT_FAKE_IOKIT_IOMESSAGE_H
#define LIBDEXT_FAKE_IOKIT_IOMESSAGE_H

#include <stdint.h>

#include <IOKit/IOReturn.h>

typedef uint32_t IOMessage;

#define iokit_common_msg(message) \
    ((uint32_t)(sys_iokit | sub_iokit_common | (message)))

#define kIOMessageServiceIsTerminated iokit_common_msg(0x010)

#endif /* LIBDEXT_FAKE_IOKIT_IOMESSAGE_H */
