/*
 * SPDX-License-Identifier: MIT
 *
 * Client processes, calls and fake config space for unit tests of the
 * dext core (core-clients.h).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core-clients.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

pid_t spawn_idle(int *pidfd)
{
    pid_t pid = fork();

    if (pid == 0) {
        /* A test that exits early must not leave it behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
            pause();
        }
    }
    *pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    return pid;
}

void reap(pid_t pid, int pidfd)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(pidfd);
}

bool have_pidfds(void)
{
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

    if (fd < 0) {
        printf("# pidfd_open: %s: sessions of other processes not tested\n",
               strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

IOReturn call(DextSession *s, uint32_t sel, const uint64_t *in, uint32_t nin,
              uint64_t *out, uint32_t nout)
{
    uint32_t cnt = nout;
    DextCallArgs a = {
        .scalar_in = in, .scalar_in_cnt = nin,
        .scalar_out = out, .scalar_out_cnt = out ? &cnt : NULL,
    };

    return dext_session_call(s, sel, &a);
}

DextSession *open_claimed(DextCore *core, uint64_t id, pid_t pid, int pidfd)
{
    DextSession *s = NULL;

    if (!CHECK_KR(dext_core_open(core, id, 0, pid, pidfd, &s),
                  kIOReturnSuccess)) {
        return NULL;
    }
    CHECK_KR(call(s, kDextSelectorClaim, NULL, 0, NULL, 0), kIOReturnSuccess);
    return s;
}

uint32_t cfg_get(const uint8_t *cfg, uint32_t off, uint32_t width)
{
    uint32_t val = 0;

    for (uint32_t i = 0; i < width; i++) {
        val |= (uint32_t)cfg[off + i] << (8 * i);
    }
    return val;
}

void cfg_set(uint8_t *cfg, uint32_t off, uint32_t width, uint32_t val)
{
    for (uint32_t i = 0; i < width; i++) {
        cfg[off + i] = (uint8_t)(val >> (8 * i));
    }
}
