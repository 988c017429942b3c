/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <mach/mach_init.h> (compile
 * check only).  In the SDK mach_task_self() is a macro reading a global.
 */

#ifndef LIBDEXT_FAKE_MACH_INIT_H
#define LIBDEXT_FAKE_MACH_INIT_H

#include <mach/mach_types.h>

extern mach_port_t mach_task_self_;
#define mach_task_self() mach_task_self_

#endif /* LIBDEXT_FAKE_MACH_INIT_H */
