/*
 * SPDX-License-Identifier: MIT
 *
 * Whether this translation unit is built with ThreadSanitizer, for the
 * code and tests that must behave differently under it: TSan delivers a
 * fault's SIGBUS to no handler of ours, so dextd never maps a client's
 * file there (core/guarded-copy.c), and tests that race their own
 * process on purpose step aside.  GCC says so with __SANITIZE_THREAD__,
 * clang with __has_feature(thread_sanitizer).  And whether it is built
 * with AddressSanitizer, whose allocator (GCC 12's at least: its libasan
 * has no fork() interceptor) is not locked around fork(): a test that
 * forks while its threads call malloc() steps aside there.
 */

#ifndef LIBDEXT_SUPPORT_SANITIZERS_H
#define LIBDEXT_SUPPORT_SANITIZERS_H

#if defined(__SANITIZE_THREAD__)
#define DEXT_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DEXT_UNDER_TSAN 1
#endif
#endif
#ifndef DEXT_UNDER_TSAN
#define DEXT_UNDER_TSAN 0
#endif

/* AddressSanitizer likewise (GCC: __SANITIZE_ADDRESS__). */
#if defined(__SANITIZE_ADDRESS__)
#define DEXT_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEXT_UNDER_ASAN 1
#endif
#endif
#ifndef DEXT_UNDER_ASAN
#define DEXT_UNDER_ASAN 0
#endif

#endif /* LIBDEXT_SUPPORT_SANITIZERS_H */
