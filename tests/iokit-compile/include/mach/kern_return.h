/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <mach/kern_return.h>, for the
 * IOKit transport compile check on Linux (tests/iokit-compile).  Types
 * and values as in the macOS SDK; nothing here is ever linked or run.
 */

#ifndef LIBDEXT_FAKE_MACH_KERN_RETURN_H
#define LIBDEXT_FAKE_MACH_KERN_RETURN_H

typedef int kern_return_t;

#define KERN_SUCCESS 0

#endif /* LIBDEXT_FAKE_MACH_KERN_RETURN_H */
