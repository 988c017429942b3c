/*
 * SPDX-License-Identifier: MIT
 *
 * Probe: IOConnectCallMethod takes ten arguments; nine must not compile.
 * Built once as is (must compile) and once with PROBE_BAD (must fail).
 */

#include <IOKit/IOKitLib.h>

kern_return_t probe(io_connect_t c);

kern_return_t probe(io_connect_t c)
{
    uint64_t out[1];
    uint32_t n = 1;

#ifdef PROBE_BAD
    return IOConnectCallMethod(c, 0, NULL, 0, NULL, 0, out, &n, NULL);
#else
    return IOConnectCallMethod(c, 0, NULL, 0, NULL, 0, out, &n, NULL, NULL);
#endif
}
