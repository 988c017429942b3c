/*
 * SPDX-License-Identifier: MIT
 *
 * Probe: IOServiceOpen returns the connection through a pointer; passing
 * it by value must not compile.
 */

#include <IOKit/IOKitLib.h>

kern_return_t probe(io_service_t s);

kern_return_t probe(io_service_t s)
{
    io_connect_t c = IO_OBJECT_NULL;

#ifdef PROBE_BAD
    return IOServiceOpen(s, mach_task_self(), 0, c);
#else
    return IOServiceOpen(s, mach_task_self(), 0, &c);
#endif
}
