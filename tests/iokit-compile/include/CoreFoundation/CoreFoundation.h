/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <CoreFoundation/CoreFoundation.h>
 * umbrella (compile check only).
 */

#ifndef LIBDEXT_FAKE_COREFOUNDATION_H
#define LIBDEXT_FAKE_COREFOUNDATION_H

#include <CoreFoundation/CFBase.h>
#include <CoreFoundation/CFDictionary.h>
#include <CoreFoundation/CFString.h>

#endif /* LIBDEXT_FAKE_COREFOUNDATION_H */
