/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <dispatch/dispatch.h> as seen
 * from plain C (compile check only): objects are pointers to opaque
 * structs, and the generic object functions take a transparent union of
 * them, so any queue, source, group... converts implicitly.  Only the
 * function-pointer (_f) variants: libdext uses no blocks.
 */

#ifndef LIBDEXT_FAKE_DISPATCH_H
#define LIBDEXT_FAKE_DISPATCH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dispatch_queue_s *dispatch_queue_t;
typedef struct dispatch_queue_attr_s *dispatch_queue_attr_t;

#ifndef __cplusplus
typedef union {
    struct dispatch_object_s *_do;
    struct dispatch_queue_s *_dq;
    struct dispatch_queue_attr_s *_dqa;
    struct dispatch_source_s *_ds;
    struct dispatch_group_s *_dg;
} dispatch_object_t __attribute__((__transparent_union__));
#else
typedef struct dispatch_object_s *dispatch_object_t;
#endif

typedef void (*dispatch_function_t)(void *context);

/* A serial queue is asked for with no attributes. */
#define DISPATCH_QUEUE_SERIAL NULL

dispatch_queue_t dispatch_queue_create(const char *label,
                                       dispatch_queue_attr_t attr);
void dispatch_async_f(dispatch_queue_t queue, void *context,
                      dispatch_function_t work);
void dispatch_sync_f(dispatch_queue_t queue, void *context,
                     dispatch_function_t work);
void dispatch_retain(dispatch_object_t object);
void dispatch_release(dispatch_object_t object);

#ifdef __cplusplus
}
#endif

#endif /* LIBDEXT_FAKE_DISPATCH_H */
