/*
 * SPDX-License-Identifier: MIT
 *
 * Backend helpers: device logging and creation of a device from a spec
 * string "NAME[,OPTIONS][@BB:DD.F]".
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backends/backend.h"

/* Longest log line a device produces; longer ones are truncated. */
#define DEXT_LOG_LINE_MAX 256

typedef IOReturn DextBackendCreateFn(const char *options, DextDevice **out);

typedef struct DextBackendEntry {
    const char *name;
    DextBackendCreateFn *create;
} DextBackendEntry;

static const DextBackendEntry backend_table[] = {
    { "edu", dext_edu_create },
    { "host", dext_host_create },
    { "ivshmem", dext_ivshmem_create },
};

int dext_memfd_create(const char *name, uint64_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int saved;

    if (fd < 0) {
        return -1;
    }
    if (size > (uint64_t)INT64_MAX || ftruncate(fd, (off_t)size) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

void dext_device_logf(DextDevice *dev, int level, const char *fmt, ...)
{
    char line[DEXT_LOG_LINE_MAX];
    size_t len;
    va_list ap;

    if (dev == NULL || dev->host.log == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* The host wants one line without its terminator. */
    len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
        line[--len] = '\0';
    }
    dev->host.log(dev->host.opaque, level, line);
}

IOReturn dext_device_for_each_option(const char *options,
                                     IOReturn (*apply)(void *opaque,
                                                       const char *key,
                                                       const char *value),
                                     void *opaque)
{
    char *copy, *item, *save = NULL;
    IOReturn ret = kIOReturnSuccess;

    if (options == NULL || *options == '\0') {
        return kIOReturnSuccess;
    }
    copy = strdup(options);
    if (copy == NULL) {
        return kIOReturnNoMemory;
    }
    for (item = strtok_r(copy, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        char *value = strchr(item, '=');

        if (value == NULL) {
            ret = kIOReturnBadArgument;
            break;
        }
        *value++ = '\0';
        ret = apply(opaque, item, value);
        if (ret != kIOReturnSuccess) {
            break;
        }
    }
    free(copy);
    return ret;
}

IOReturn dext_device_create(const char *spec, DextDevice **out)
{
    const DextBackendEntry *entry = NULL;
    const char *at, *name_end, *opts, *bdf;
    size_t name_len, opts_len, size, i;
    char *options;
    IOReturn ret;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    *out = NULL;
    if (spec == NULL) {
        return kIOReturnBadArgument;
    }
    name_end = spec + strcspn(spec, ",@");
    name_len = (size_t)(name_end - spec);
    if (name_len == 0) {
        return kIOReturnBadArgument;
    }
    for (i = 0; i < sizeof(backend_table) / sizeof(backend_table[0]); i++) {
        if (strlen(backend_table[i].name) == name_len &&
            memcmp(backend_table[i].name, spec, name_len) == 0) {
            entry = &backend_table[i];
            break;
        }
    }
    if (entry == NULL) {
        return kIOReturnNotFound;
    }

    /*
     * "@BB:DD.F" is shorthand for a trailing "bdf=BB:DD.F" option, so
     * every backend validates addresses the same way and one that cannot
     * be relocated (a host device) rejects it as an unknown option.
     */
    at = strrchr(name_end, '@');
    opts = *name_end == ',' ? name_end + 1 : name_end;
    opts_len = at ? (size_t)(at - opts) : strlen(opts);
    bdf = at ? at + 1 : NULL;
    size = opts_len + (bdf ? strlen(",bdf=") + strlen(bdf) : 0) + 1;
    options = malloc(size);
    if (options == NULL) {
        return kIOReturnNoMemory;
    }
    memcpy(options, opts, opts_len);
    options[opts_len] = '\0';
    if (bdf != NULL) {
        snprintf(options + opts_len, size - opts_len, "%sbdf=%s",
                 opts_len ? "," : "", bdf);
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
    DextDevice *dev;
    IOReturn ret;

    if (spec == NULL || sink == NULL) {
        return kIOReturnBadArgument;
    }
    /* Only a host spec can name several devices ("host", "bdf=all"). */
    if (strncmp(spec, "host", 4) == 0 && (spec[4] == '\0' || spec[4] == ',')) {
        return dext_host_create_each(spec[4] ? spec + 5 : "", sink, opaque);
    }
    ret = dext_device_create(spec, &dev);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    return sink(opaque, dev);
}

void dext_device_free(DextDevice *dev)
{
    if (dev == NULL) {
        return;
    }
    if (dev->ops != NULL && dev->ops->destroy != NULL) {
        dev->ops->destroy(dev);
    }
    free(dev);
}
