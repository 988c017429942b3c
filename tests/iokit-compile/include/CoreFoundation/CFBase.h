/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <CoreFoundation/CFBase.h>
 * (compile check only): the base types, the allocator and the
 * polymorphic functions, with the SDK's signatures.
 */

#ifndef LIBDEXT_FAKE_CFBASE_H
#define LIBDEXT_FAKE_CFBASE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned char Boolean;
typedef uint32_t UInt32;
typedef long CFIndex;
typedef unsigned long CFTypeID;
typedef unsigned long CFOptionFlags;

typedef const void *CFTypeRef;
typedef const struct __CFString *CFStringRef;
typedef struct __CFString *CFMutableStringRef;
typedef const struct __CFAllocator *CFAllocatorRef;

/* Ownership annotations: no-ops for the compile check. */
#define CF_RETURNS_RETAINED
#define CF_RELEASES_ARGUMENT

/* A CFIndex-valued enumeration in the SDK (CF_ENUM). */
typedef CFIndex CFComparisonResult;
enum {
    kCFCompareLessThan = -1L,
    kCFCompareEqualTo = 0,
    kCFCompareGreaterThan = 1,
};

extern const CFAllocatorRef kCFAllocatorDefault;

CFTypeID CFGetTypeID(CFTypeRef cf);
CFTypeRef CFRetain(CFTypeRef cf);
void CFRelease(CFTypeRef cf);

#ifdef __cplusplus
}
#endif

#endif /* LIBDEXT_FAKE_CFBASE_H */
