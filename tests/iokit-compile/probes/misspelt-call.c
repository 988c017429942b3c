/*
 * SPDX-License-Identifier: MIT
 *
 * Probe: a misspelt IOKit function is an implicit declaration, which
 * must not compile.
 */

#include <IOKit/IOKitLib.h>

kern_return_t probe(io_connect_t c);

kern_return_t probe(io_connect_t c)
{
#ifdef PROBE_BAD
    return IOConnectUnMapMemory64(c, 1, mach_task_self(), 0);
#else
    return IOConnectUnmapMemory64(c, 1, mach_task_self(), 0);
#endif
}
