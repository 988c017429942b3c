/*
 * SPDX-License-Identifier: MIT
 *
 * What every backend uses: logging through the device's host, sealed
 * shared memory, the option parser, and freeing a device.  Backends call
 * these and nothing of backend.c, which calls them (no circle).
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

/* The item the last failed walk of this thread stopped at. */
static __thread char bad_option[128];

const char *dext_device_bad_option(void)
{
    return bad_option;
}

/* Why this thread's last device creation failed, in the operator's terms. */
static __thread char create_error[1024];

void dext_device_set_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(create_error, sizeof(create_error), fmt, ap);
    va_end(ap);
}

const char *dext_device_error(void)
{
    return create_error;
}

IOReturn dext_device_for_each_option(const char *options,
                                     IOReturn (*apply)(void *opaque,
                                                       const char *key,
                                                       const char *value),
                                     void *opaque)
{
    char *copy, *item, *save = NULL;
    IOReturn ret = kIOReturnSuccess;

    bad_option[0] = '\0';
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
            snprintf(bad_option, sizeof(bad_option), "%s", item);
            ret = kIOReturnBadArgument;
            break;
        }
        *value++ = '\0';
        ret = apply(opaque, item, value);
        if (ret != kIOReturnSuccess) {
            if (ret == kIOReturnBadArgument) {
                snprintf(bad_option, sizeof(bad_option), "%s=%s", item,
                         value);
            }
            break;
        }
    }
    free(copy);
    return ret;
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

IOReturn dext_errno_ioreturn(int err)
{
    switch (err) {
    case EACCES:
    case EPERM:
        return kIOReturnNotPrivileged;
    case ENOENT:
    case ENOTTY:
    case EOPNOTSUPP:
        return kIOReturnUnsupported;
    case ENODEV:
    case ENXIO:
        return kIOReturnNoDevice;
    case ENOMEM:
        return kIOReturnNoMemory;
    case ENOSPC:
        return kIOReturnNoResources;
    case EINVAL:
        return kIOReturnBadArgument;
    case EBUSY:
        return kIOReturnBusy;
    default:
        return kIOReturnIOError;
    }
}
