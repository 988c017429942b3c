/*
 * SPDX-License-Identifier: MIT
 *
 * The notification fd tells the truth about dextd: a dextd that is
 * merely stopped (SIGSTOP) leaves the fd quiet, a killed one (SIGKILL)
 * makes it poll readable with POLLHUP, after which rearm answers
 * kIOReturnNotResponding; a callback notification runs its handler once.
 * Over dextd and over iokit, where the model's dext crashes and the
 * kernel terminates its service (an in-process dext cannot die apart
 * from us).  Stopping is dextd's only: the model's dext is this process.
 */

#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "harness.h"

static atomic_uint handler_calls;

static void handler(void *opaque)
{
    atomic_fetch_add(&handler_calls, 1);
}

/* poll() @fd for @ms; returns its revents (0 on a timeout). */
static short poll_fd(int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    if (poll(&pfd, 1, ms) <= 0) {
        return 0;
    }
    return pfd.revents;
}

int main(int argc, char **argv)
{
    AppleDextInterruptNotify *fdn, *cbn;
    HarnessDeadline d;
    unsigned round = 0;
    io_connect_t c;
    short rev;
    int fd;

    harness_init(argc, argv, NULL);
    if (!harness_is_unix() && !harness_is_iokit()) {
        harness_skip("an in-process dext cannot go away: unix and iokit "
                     "transports only");
    }

    harness_section("an armed notification is quiet");
    c = harness_connect_edu();
    if (c == IO_OBJECT_NULL) {
        return harness_finish();
    }
    CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
    CHECK_KR(apple_dext_setup_interrupts(c, NULL), kIOReturnSuccess);
    fdn = apple_dext_interrupt_notify_create_fd(c);
    cbn = apple_dext_interrupt_notify_create(c, handler, NULL);
    if (!CHECK(fdn != NULL && cbn != NULL)) {
        return harness_finish();
    }
    fd = apple_dext_interrupt_notify_get_fd(fdn);
    CHECK(fd >= 0);
    CHECK_EQ(poll_fd(fd, 0), 0);

    if (harness_is_unix()) {
        harness_section("a stopped dextd is not a dead one");
        harness_pause_daemon();
        CHECK_EQ(poll_fd(fd, 300), 0);
        CHECK_EQ(atomic_load(&handler_calls), 0);
        harness_resume_daemon();
        CHECK_EQ(poll_fd(fd, 0), 0);
    }
    CHECK_KR(apple_dext_interrupt_notify_rearm(fdn), kIOReturnSuccess);

    harness_section("a killed dextd makes the fd readable with POLLHUP");
    harness_kill_daemon();
    rev = poll_fd(fd, HARNESS_WAIT_MS);
    CHECK_MSG(rev & POLLHUP, "revents 0x%x after SIGKILL", rev);
    CHECK(rev & POLLIN);
    /* It stays so: a level, not an edge. */
    CHECK(poll_fd(fd, 0) & POLLHUP);
    CHECK_KR(apple_dext_interrupt_notify_rearm(fdn), kIOReturnNotResponding);
    CHECK(poll_fd(fd, 0) & POLLHUP);

    harness_section("a callback notification runs its handler once");
    d = harness_deadline(HARNESS_WAIT_MS);
    while (atomic_load(&handler_calls) == 0 && !harness_expired(&d)) {
        harness_backoff(&round);
    }
    CHECK_EQ(atomic_load(&handler_calls), 1);
    CHECK_KR(apple_dext_interrupt_notify_rearm(cbn), kIOReturnNotResponding);
    {
        struct timespec ts = { 0, 100 * 1000 * 1000 };

        nanosleep(&ts, NULL);
    }
    CHECK_EQ(atomic_load(&handler_calls), 1);

    apple_dext_interrupt_notify_destroy(fdn);
    apple_dext_interrupt_notify_destroy(cbn);
    apple_dext_disconnect(c);
    return harness_finish();
}
