/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <IOKit/IOTypes.h> (compile check
 * only): object handle types and the IOConnectMapMemory64 option bits.
 */

#ifndef LIBDEXT_FAKE_IOKIT_IOTYPES_H
#define LIBDEXT_FAKE_IOKIT_IOTYPES_H

#include <stdint.h>

#include <mach/mach_types.h>
#include <IOKit/IOReturn.h>

typedef uint32_t UInt32;
typedef UInt32 IOOptionBits;

/* Outside the kernel every IOKit object is a Mach port name. */
typedef mach_port_t io_object_t;
typedef io_object_t io_connect_t;
typedef io_object_t io_iterator_t;
typedef io_object_t io_registry_entry_t;
typedef io_object_t io_service_t;

#define IO_OBJECT_NULL ((io_object_t)0)

/* A registry name or interest type (the SDK's <device/device_types.h>). */
typedef char io_name_t[128];

/* Cache modes, placed in bits 11:8 of the map options. */
enum {
    kIODefaultCache = 0,
    kIOInhibitCache = 1,
    kIOWriteThruCache = 2,
    kIOCopybackCache = 3,
    kIOWriteCombineCache = 4,
};

enum {
    kIOMapAnywhere = 0x00000001,
    kIOMapCacheShift = 8,
    kIOMapDefaultCache = kIODefaultCache << kIOMapCacheShift,
    kIOMapInhibitCache = kIOInhibitCache << kIOMapCacheShift,
    kIOMapWriteThruCache = kIOWriteThruCache << kIOMapCacheShift,
    kIOMapCopybackCache = kIOCopybackCache << kIOMapCacheShift,
    kIOMapWriteCombineCache = kIOWriteCombineCache << kIOMapCacheShift,
    kIOMapReadOnly = 0x00001000,
};

#endif /* LIBDEXT_FAKE_IOKIT_IOTYPES_H */
