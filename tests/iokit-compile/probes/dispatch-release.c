/*
 * SPDX-License-Identifier: MIT
 *
 * Probe: dispatch_release() takes any dispatch object (a transparent
 * union in C), but not an unrelated pointer.
 */

#include <IOKit/IOKitLib.h>
#include <dispatch/dispatch.h>

void probe(dispatch_queue_t q, IONotificationPortRef port);

void probe(dispatch_queue_t q, IONotificationPortRef port)
{
#ifdef PROBE_BAD
    (void)q;
    dispatch_release(port);
#else
    (void)port;
    dispatch_release(q);
#endif
}
