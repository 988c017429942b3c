/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <CoreFoundation/CFDictionary.h>
 * (compile check only): only the reference types IOKitLib uses.
 */

#ifndef LIBDEXT_FAKE_CFDICTIONARY_H
#define LIBDEXT_FAKE_CFDICTIONARY_H

#include <CoreFoundation/CFBase.h>

typedef const struct __CFDictionary *CFDictionaryRef;
typedef struct __CFDictionary *CFMutableDictionaryRef;

#endif /* LIBDEXT_FAKE_CFDICTIONARY_H */
