/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <CoreFoundation/CFString.h>
 * (compile check only).
 */

#ifndef LIBDEXT_FAKE_CFSTRING_H
#define LIBDEXT_FAKE_CFSTRING_H

#include <CoreFoundation/CFBase.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef UInt32 CFStringEncoding;
#define kCFStringEncodingUTF8 0x08000100

/* A CFOptionFlags-valued option set in the SDK (CF_OPTIONS). */
typedef CFOptionFlags CFStringCompareFlags;
enum {
    kCFCompareCaseInsensitive = 1,
};

/* CFSTR("...") without the compiler builtin: a constant CFString. */
CFStringRef __CFStringMakeConstantString(const char *cStr);
#define CFSTR(cStr) __CFStringMakeConstantString("" cStr "")

CFTypeID CFStringGetTypeID(void);
CFStringRef CFStringCreateWithCString(CFAllocatorRef alloc,
                                      const char *cStr,
                                      CFStringEncoding encoding);
CFComparisonResult CFStringCompare(CFStringRef theString1,
                                   CFStringRef theString2,
                                   CFStringCompareFlags compareOptions);
Boolean CFStringGetCString(CFStringRef theString, char *buffer,
                           CFIndex bufferSize, CFStringEncoding encoding);

#ifdef __cplusplus
}
#endif

#endif /* LIBDEXT_FAKE_CFSTRING_H */
