/*
 * SPDX-License-Identifier: MIT
 *
 * The host backend's constructors in a libdext built without it
 * (-Dhost_backend=disabled, see meson_options.txt): a "host" spec names
 * a backend this build does not carry.  dextd always links the real one
 * (host-sysfs.c).
 */

#include "backends/backend.h"

IOReturn dext_host_create(const char *options, DextDevice **out)
{
    if (out != NULL) {
        *out = NULL;
    }
    return kIOReturnUnsupported;
}

IOReturn dext_host_create_each(const char *options, DextDeviceSink *sink,
                               void *opaque)
{
    return kIOReturnUnsupported;
}
