/*
 * SPDX-License-Identifier: MIT
 *
 * Probe: CFSTR() takes a string literal only; a char pointer must not
 * compile, as with the SDK's macro.
 */

#include <CoreFoundation/CoreFoundation.h>

CFStringRef probe(const char *name);

CFStringRef probe(const char *name)
{
#ifdef PROBE_BAD
    return CFSTR(name);
#else
    (void)name;
    return CFSTR("IOUserClass");
#endif
}
