/*
 * SPDX-License-Identifier: MIT
 *
 * Probe: IOConnectMapMemory64 reports a 64-bit mach_vm_size_t; a 32-bit
 * size variable must not compile.
 */

#include <IOKit/IOKitLib.h>

kern_return_t probe(io_connect_t c);

kern_return_t probe(io_connect_t c)
{
    mach_vm_address_t addr = 0;
#ifdef PROBE_BAD
    uint32_t size = 0;
#else
    mach_vm_size_t size = 0;
#endif

    return IOConnectMapMemory64(c, 1, mach_task_self(), &addr, &size,
                                kIOMapAnywhere);
}
