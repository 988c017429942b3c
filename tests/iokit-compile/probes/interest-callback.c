/*
 * SPDX-License-Identifier: MIT
 *
 * Probe: an interest notification's callout takes the service and the
 * message (IOServiceInterestCallback); an async completion's callout
 * must not compile in its place.
 */

#include <IOKit/IOKitLib.h>

kern_return_t probe(IONotificationPortRef port, io_service_t s);

#ifdef PROBE_BAD
static void callout(void *refcon, IOReturn result)
{
}
#else
static void callout(void *refcon, io_service_t service, uint32_t type,
                    void *arg)
{
}
#endif

kern_return_t probe(IONotificationPortRef port, io_service_t s)
{
    io_object_t n = IO_OBJECT_NULL;

    return IOServiceAddInterestNotification(port, s, kIOGeneralInterest,
                                            callout, NULL, &n);
}
