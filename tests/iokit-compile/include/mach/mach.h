/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <mach/mach.h> umbrella (compile
 * check only), reduced to the parts the IOKit transport reaches.
 */

#ifndef LIBDEXT_FAKE_MACH_H
#define LIBDEXT_FAKE_MACH_H

#include <mach/error.h>
#include <mach/kern_return.h>
#include <mach/mach_init.h>
#include <mach/mach_types.h>
#include <mach/message.h>

#endif /* LIBDEXT_FAKE_MACH_H */
