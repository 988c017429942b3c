/*
 * SPDX-License-Identifier: MIT
 *
 * Reaching a client's memory, as the real dext reaches wired client pages.
 *
 * process_vm_readv/writev respect the client's page protections and fail
 * cleanly (EFAULT) on unmapped memory, so a bad address never crashes the
 * core -- also for in-process clients, which use their own pid.  A pidfd
 * taken at open lets us refuse to touch a pid whose process has exited,
 * so a recycled pid is never written.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/core-internal.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

IOReturn dext_client_mem_open(ClientMem *m, pid_t pid)
{
    if (pid <= 0) {
        return kIOReturnBadArgument;
    }
    m->pid = pid;
    m->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (m->pidfd < 0 && errno == ESRCH) {
        return kIOReturnNotAttached;
    }
    return kIOReturnSuccess;
}

void dext_client_mem_close(ClientMem *m)
{
    if (m->pidfd >= 0) {
        close(m->pidfd);
        m->pidfd = -1;
    }
}

static bool client_alive(ClientMem *m)
{
    struct pollfd p = { .fd = m->pidfd, .events = POLLIN };

    if (m->pidfd < 0) {
        return true;
    }
    /* A pidfd polls readable once its process has exited. */
    return poll(&p, 1, 0) == 0;
}

static IOReturn client_mem_xfer(ClientMem *m, uint64_t va, void *buf,
                                size_t len, bool write)
{
    uint8_t *p = buf;

    if (!client_alive(m)) {
        return kIOReturnNotAttached;
    }
    while (len > 0) {
        struct iovec local = { .iov_base = p, .iov_len = len };
        struct iovec remote = { .iov_base = (void *)(uintptr_t)va,
                                .iov_len = len };
        ssize_t n;

        if (write) {
            n = process_vm_writev(m->pid, &local, 1, &remote, 1, 0);
        } else {
            n = process_vm_readv(m->pid, &local, 1, &remote, 1, 0);
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return (n < 0 && errno == ESRCH) ? kIOReturnNotAttached
                                             : kIOReturnVMError;
        }
        p += n;
        va += (uint64_t)n;
        len -= (size_t)n;
    }
    return kIOReturnSuccess;
}

IOReturn dext_client_mem_read(ClientMem *m, uint64_t va, void *buf, size_t len)
{
    return client_mem_xfer(m, va, buf, len, false);
}

IOReturn dext_client_mem_write(ClientMem *m, uint64_t va, const void *buf,
                               size_t len)
{
    return client_mem_xfer(m, va, (void *)buf, len, true);
}
