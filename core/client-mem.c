/*
 * SPDX-License-Identifier: MIT
 *
 * Reaching a client's memory, as the real dext reaches wired client pages.
 *
 * process_vm_readv/writev respect the client's page protections and fail
 * cleanly (EFAULT) on unmapped memory, so a bad address never crashes the
 * core -- also for in-process clients, which use their own pid.
 *
 * They name the process by number, and numbers are recycled once a
 * process is reaped.  The session therefore holds a pidfd of the client,
 * taken by whoever proved the peer's identity (dextd: SO_PEERPIDFD at
 * accept).  Every access is bracketed: the pidfd must report the process
 * alive before the access and again after it.  A process cannot exit and
 * come back, so "alive after" means the number named that process for the
 * whole access; otherwise a read's bytes are thrown away and the access
 * fails with kIOReturnNotAttached.  The one window left, between the
 * first look and the kernel's pid lookup inside the syscall, would need
 * the client to exit, be reaped and its number be handed out again within
 * a few instructions (docs/reliability.md).
 *
 * No core lock may be held around these calls: a page of the client's
 * can stall for ever (userfaultfd), and only that client may wait for it.
 */

#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/core-internal.h"
#include "support/pidfd.h"

IOReturn dext_client_mem_new(pid_t pid, int pidfd, ClientMem **out)
{
    ClientMem *m;

    if (pid <= 0) {
        return kIOReturnBadArgument;
    }
    /* Only our own process needs no proof. */
    if (pidfd < 0 && pid != getpid()) {
        return kIOReturnNotPermitted;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return kIOReturnNoMemory;
    }
    m->refs = 1;
    m->pid = pid;
    m->pidfd = -1;
    m->self = pidfd < 0;
    if (!m->self) {
        m->pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
        if (m->pidfd < 0) {
            IOReturn ret = errno == EBADF ? kIOReturnBadArgument
                                          : kIOReturnNoResources;

            free(m);
            return ret;
        }
        if (!dext_client_mem_alive(m)) {
            dext_client_mem_unref(m);
            return kIOReturnNotAttached;
        }
    }
    *out = m;
    return kIOReturnSuccess;
}

ClientMem *dext_client_mem_ref(ClientMem *m)
{
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void dext_client_mem_unref(ClientMem *m)
{
    if (m == NULL || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0) {
        return;
    }
    if (m->pidfd >= 0) {
        close(m->pidfd);
    }
    free(m);
}

bool dext_client_mem_alive(ClientMem *m)
{
    return m->self || dext_pidfd_alive(m->pidfd);
}

__thread unsigned dext_core_locks_held;

static IOReturn client_mem_xfer(ClientMem *m, uint64_t va, void *buf,
                                size_t len, bool write)
{
    uint8_t *p = buf;

    /* The rule this file's header states, checked on every access. */
    assert(dext_core_locks_held == 0);

    if (!dext_client_mem_alive(m)) {
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
    if (!dext_client_mem_alive(m)) {
        if (!write) {
            memset(buf, 0, (size_t)(p - (uint8_t *)buf));
        }
        return kIOReturnNotAttached;
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
