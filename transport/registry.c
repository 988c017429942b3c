/*
 * SPDX-License-Identifier: MIT
 *
 * Target string -> transport.
 */

#include <string.h>

#include "transport/transport.h"
#if !defined(__APPLE__)
#include "transport/sock-channel.h"
#endif

static const DextTransportOps *const transports[] = {
#if !defined(__APPLE__)
    &dext_transport_unix,
#endif
#if defined(LIBDEXT_HAVE_INPROC)
    &dext_transport_inproc,
#endif
#if defined(LIBDEXT_HAVE_IOKIT)
    &dext_transport_iokit,
#endif
};

const DextTransportOps *dext_transport_lookup(const char *target,
                                              const char **out_arg)
{
    const char *colon;
    size_t len;
    size_t i;

    if (target == NULL) {
        return NULL;
    }
    colon = strchr(target, ':');
    len = colon ? (size_t)(colon - target) : strlen(target);
    for (i = 0; i < sizeof(transports) / sizeof(transports[0]); i++) {
        if (strlen(transports[i]->name) == len &&
            memcmp(transports[i]->name, target, len) == 0) {
            if (out_arg) {
                *out_arg = colon ? colon + 1 : "";
            }
            return transports[i];
        }
    }
    return NULL;
}

IOReturn dext_transport_set_timeouts(int call_ms, int connect_ms)
{
#if !defined(__APPLE__)
    dext_unix_set_default_timeouts(call_ms, connect_ms);
    return kIOReturnSuccess;
#else
    /* Only dextd's socket has waits of ours to bound. */
    (void)call_ms;
    (void)connect_ms;
    return kIOReturnUnsupported;
#endif
}
