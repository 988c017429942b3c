/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <mach/error.h> (compile check
 * only): the system/subsystem fields of a Mach error code.
 */

#ifndef LIBDEXT_FAKE_MACH_ERROR_H
#define LIBDEXT_FAKE_MACH_ERROR_H

#include <mach/kern_return.h>

/* Bits 31:26 system, 25:14 subsystem, 13:0 code; signed as in the SDK. */
#define err_system(x)   ((signed)((((unsigned)(x)) & 0x3f) << 26))
#define err_sub(x)      (((x) & 0xfff) << 14)

#endif /* LIBDEXT_FAKE_MACH_ERROR_H */
