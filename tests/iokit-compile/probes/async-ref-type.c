/*
 * SPDX-License-Identifier: MIT
 *
 * Probe: the async reference of IOConnectCallAsyncMethod is an array of
 * 64-bit words; an array of pointers must not compile.
 */

#include <IOKit/IOKitLib.h>

kern_return_t probe(io_connect_t c, mach_port_t wake);

kern_return_t probe(io_connect_t c, mach_port_t wake)
{
#ifdef PROBE_BAD
    void *ref[kOSAsyncRef64Count] = { 0 };
#else
    uint64_t ref[kOSAsyncRef64Count] = { 0 };
#endif

    return IOConnectCallAsyncMethod(c, 15, wake, ref, kIOAsyncCalloutCount,
                                    NULL, 0, NULL, 0, NULL, NULL, NULL, NULL);
}
