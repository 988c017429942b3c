/*
 * SPDX-License-Identifier: MIT
 *
 * pidfds (support/pidfd.h).
 */

#include <errno.h>
#include <poll.h>

#include "support/pidfd.h"

bool dext_pidfd_alive(int pidfd)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    int n;

    if (pidfd < 0) {
        return false;
    }
    do {
        n = poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    return n == 0;
}
