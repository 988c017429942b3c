/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <mach/mach_types.h> (compile
 * check only).  Ports are 32-bit names, VM addresses and sizes 64-bit,
 * as on every 64-bit macOS.
 */

#ifndef LIBDEXT_FAKE_MACH_TYPES_H
#define LIBDEXT_FAKE_MACH_TYPES_H

#include <stdint.h>

#include <mach/kern_return.h>

typedef unsigned int natural_t;
typedef int integer_t;
typedef int boolean_t;

typedef natural_t mach_port_name_t;
typedef mach_port_name_t mach_port_t;
typedef mach_port_t task_t;
typedef task_t task_port_t;

typedef uintptr_t vm_offset_t;
typedef vm_offset_t vm_address_t;
typedef uintptr_t vm_size_t;
typedef uint64_t mach_vm_address_t;
typedef uint64_t mach_vm_size_t;

#define MACH_PORT_NULL ((mach_port_t)0)

#endif /* LIBDEXT_FAKE_MACH_TYPES_H */
