/*
 * SPDX-License-Identifier: MIT
 *
 * The backends by name: creating the devices a spec string
 * "NAME[,OPTIONS][@BB:DD.F]" names.  Above every backend (it calls their
 * constructors); the helpers backends share are device.c's.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"

typedef IOReturn DextBackendCreateFn(const char *options, DextDevice **out);
typedef IOReturn DextBackendCreateEachFn(const char *options,
                                         DextDeviceSink *sink, void *opaque);

/*
 * The backends by name.  @create_each is for a backend whose one spec may
 * name several devices (the host's "bdf=all"); without it a spec names
 * one device.
 */
typedef struct DextBackendEntry {
    const char *name;
    DextBackendCreateFn *create;
    DextBackendCreateEachFn *create_each;
} DextBackendEntry;

static const DextBackendEntry backend_table[] = {
    { "dump", dext_dump_create, NULL },
    { "edu", dext_edu_create, NULL },
    { "host", dext_host_create, dext_host_create_each },
    { "ivshmem", dext_ivshmem_create, NULL },
#ifdef LIBDEXT_HAVE_VFIO
    { "vfio", dext_vfio_create, NULL },
#endif
};

/*
 * Split @spec into its backend and options: "@BB:DD.F" is shorthand for
 * a trailing "bdf=BB:DD.F" option, so every backend validates addresses
 * the same way and one that cannot be relocated (a host device) rejects
 * it as an unknown option.  *@options is malloc()ed.
 */
static IOReturn parse_spec(const char *spec, const DextBackendEntry **entry,
                           char **options)
{
    const char *at, *name_end, *opts, *bdf;
    size_t name_len, opts_len, size, i;

    name_end = spec + strcspn(spec, ",@");
    name_len = (size_t)(name_end - spec);
    if (name_len == 0) {
        return kIOReturnBadArgument;
    }
    *entry = NULL;
    for (i = 0; i < sizeof(backend_table) / sizeof(backend_table[0]); i++) {
        if (strlen(backend_table[i].name) == name_len &&
            memcmp(backend_table[i].name, spec, name_len) == 0) {
            *entry = &backend_table[i];
            break;
        }
    }
    if (*entry == NULL) {
        return kIOReturnNotFound;
    }
    at = strrchr(name_end, '@');
    opts = *name_end == ',' ? name_end + 1 : name_end;
    opts_len = at ? (size_t)(at - opts) : strlen(opts);
    bdf = at ? at + 1 : NULL;
    size = opts_len + (bdf ? strlen(",bdf=") + strlen(bdf) : 0) + 1;
    *options = malloc(size);
    if (*options == NULL) {
        return kIOReturnNoMemory;
    }
    memcpy(*options, opts, opts_len);
    (*options)[opts_len] = '\0';
    if (bdf != NULL) {
        snprintf(*options + opts_len, size - opts_len, "%sbdf=%s",
                 opts_len ? "," : "", bdf);
    }
    return kIOReturnSuccess;
}

IOReturn dext_device_create(const char *spec, DextDevice **out)
{
    const DextBackendEntry *entry;
    char *options;
    IOReturn ret;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    *out = NULL;
    if (spec == NULL) {
        return kIOReturnBadArgument;
    }
    dext_device_set_error("%s", "");
    ret = parse_spec(spec, &entry, &options);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    ret = entry->create(options, out);
    free(options);
    if (ret != kIOReturnSuccess) {
        *out = NULL;
    }
    return ret;
}

IOReturn dext_device_create_each(const char *spec, DextDeviceSink *sink,
                                 void *opaque)
{
    const DextBackendEntry *entry;
    DextDevice *dev = NULL;
    char *options;
    IOReturn ret;

    if (spec == NULL || sink == NULL) {
        return kIOReturnBadArgument;
    }
    dext_device_set_error("%s", "");
    ret = parse_spec(spec, &entry, &options);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (entry->create_each != NULL) {
        ret = entry->create_each(options, sink, opaque);
        free(options);
        return ret;
    }
    ret = entry->create(options, &dev);
    free(options);
    return ret == kIOReturnSuccess ? sink(opaque, dev) : ret;
}
