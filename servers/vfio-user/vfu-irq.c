/*
 * SPDX-License-Identifier: MIT
 *
 * Interrupts: DEVICE_GET_IRQ_INFO and DEVICE_SET_IRQS for MSI and MSI-X,
 * one eventfd per vector.  The dext's interrupts are set up when the
 * client first gives trigger eventfds; each notification drains the
 * pending bitmap from the shared page (no round trip) and signals the
 * vectors' eventfds, a client that makes such a write block being
 * dropped (signal_fd()).  Masking is the server's: a masked vector's
 * interrupt is kept pending and signalled on unmask (MSI-X semantics).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vfu-server.h"

/* glibc before 2.38 names the field only by its union member. */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* How long a write to a trigger eventfd may block: see signal_fd(). */
#define VFU_TRIGGER_TIMEOUT_NS  (100 * 1000 * 1000)

static uint32_t irq_count(VfuSession *s, uint32_t index)
{
    switch (index) {
    case VFU_PCI_MSI_IRQ:
        return s->msi_count;
    case VFU_PCI_MSIX_IRQ:
        return s->msix_count;
    default:
        return 0;
    }
}

int vfu_irq_info(VfuSession *s, const uint8_t *p, size_t n, VfuReply *rep)
{
    VfuIrqInfo in, out = { 0 };

    if (n < sizeof(in)) {
        rep->err = EINVAL;
        return 0;
    }
    memcpy(&in, p, sizeof(in));
    if (in.argsz < sizeof(out) || in.index >= VFU_PCI_NUM_IRQS) {
        rep->err = EINVAL;
        return 0;
    }
    out.argsz = sizeof(out);
    out.index = in.index;
    out.count = irq_count(s, in.index);
    if (out.count != 0) {
        out.flags = VFU_IRQ_INFO_EVENTFD;
        if (in.index == VFU_PCI_MSIX_IRQ) {
            out.flags |= VFU_IRQ_INFO_MASKABLE;
        } else {
            out.flags |= VFU_IRQ_INFO_NORESIZE;
        }
    }
    memcpy(rep->payload, &out, sizeof(out));
    rep->len = sizeof(out);
    return 0;
}

/*
 * The guard timer's signal: the first real-time signal, which neither
 * the server (SIGINT, SIGTERM, SIGPIPE) nor libdext (SIGBUS) uses.  Its
 * handler does nothing; being installed without SA_RESTART, it makes a
 * write it interrupts return EINTR.
 */
static void on_guard_signal(int sig)
{
    (void)sig;
}

static int guard_install(void)
{
    static bool installed;
    struct sigaction sa = { .sa_handler = on_guard_signal }, old;

    if (installed) {
        return 0;
    }
    if (sigaction(SIGRTMIN, NULL, &old) != 0) {
        return errno;
    }
    /* Ignored (inherited across exec) is as good as free. */
    if ((old.sa_flags & SA_SIGINFO) ||
        (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN &&
         old.sa_handler != on_guard_signal)) {
        vfu_log("signal %d is taken: no trigger eventfds", SIGRTMIN);
        return EBUSY;
    }
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGRTMIN, &sa, NULL) != 0) {
        return errno;
    }
    installed = true;
    return 0;
}

/* The session's guard timer, aimed at the calling thread. */
static int guard_create(VfuSession *s)
{
    struct sigevent ev = { .sigev_notify = SIGEV_THREAD_ID };
    sigset_t unblock;
    int err;

    if (s->guard_made) {
        return 0;
    }
    /* A mask blocking it survives exec: a blocked guard never fires. */
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGRTMIN);
    err = pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    if (err != 0) {
        return err;
    }
    err = guard_install();
    if (err != 0) {
        return err;
    }
    ev.sigev_signo = SIGRTMIN;
    ev.sigev_notify_thread_id = gettid();
    if (timer_create(CLOCK_MONOTONIC, &ev, &s->guard) != 0) {
        err = errno;
        vfu_log("timer_create: %s", strerror(err));
        return err;
    }
    s->guard_made = true;
    return 0;
}

/* Arm the guard for a batch of trigger writes: false if it cannot be. */
static bool guard_arm(VfuSession *s)
{
    const struct itimerspec every = {
        .it_value = { 0, VFU_TRIGGER_TIMEOUT_NS },
        .it_interval = { 0, VFU_TRIGGER_TIMEOUT_NS },
    };

    if (!s->guard_armed) {
        s->guard_armed = s->guard_made &&
                         timer_settime(s->guard, 0, &every, NULL) == 0;
        if (!s->guard_armed && !s->guard_failed_said) {
            /* An unbounded write is not risked: the interrupt is lost. */
            vfu_log("cannot arm the trigger guard (%s): interrupts are "
                    "not signalled", s->guard_made ? strerror(errno)
                                                   : "no timer");
            s->guard_failed_said = true;
        }
    }
    return s->guard_armed;
}

/* The batch is over: no signal comes after this returns. */
static void guard_disarm(VfuSession *s)
{
    const struct itimerspec off = { { 0, 0 }, { 0, 0 } };

    if (s->guard_armed) {
        timer_settime(s->guard, 0, &off, NULL);
        s->guard_armed = false;
    }
}

/*
 * Signal a VMM's trigger eventfd; the write may wait for
 * VFU_TRIGGER_TIMEOUT_NS at most.
 *
 * The VMM holds the other end and shares the open file description, so
 * it can clear the O_NONBLOCK set at SET_IRQS and keep the counter at
 * its maximum, where a write of 1 blocks -- one blocked write would
 * stop the whole single-threaded server, for every later client too.
 * poll() skips a counter that is full now (its reader has a wake-up
 * pending), but the VMM can fill it between that poll() and the
 * write().  Neither the server's own O_NONBLOCK (shared), nor
 * RWF_NOWAIT (eventfds have no write_iter: EOPNOTSUPP), nor a reopen of
 * /proc/self/fd (ENXIO for an eventfd) gives a write that cannot block;
 * so the write is bounded instead: the guard timer, armed around the
 * batch of writes, sends the serving thread a signal whose handler is
 * installed without SA_RESTART, and a blocked write returns EINTR.
 *
 * A write fails with EINTR only if it waited (eventfd_write() looks
 * for signals nowhere else), and only a VMM that raced us can make it
 * wait: such a client is dropped, as one that stops reading its replies
 * is, and the rest of the batch is skipped.  The timer is periodic, so
 * a write that starts after an expiry (the server preempted meanwhile)
 * still gets the next one.  Nothing else runs while it is armed but the
 * poll() (retried) and write() here (the drop is logged once the client
 * is let go, vfu_serve_client()), and a signal due at disarming is
 * taken on the way out of timer_settime(): no other call of the main
 * loop, nor of libdext, sees EINTR from it.  The cost is one
 * timer_settime() pair a batch (vfu_irq_deliver()'s drain, a SET_IRQS),
 * not a write: about 2 us a notification.
 */
static void signal_fd(VfuSession *s, int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    uint64_t one = 1;
    int r;

    if (fd < 0 || s->trigger_blocked) {
        return;
    }
    do {
        r = poll(&p, 1, 0);
    } while (r < 0 && errno == EINTR);
    if (r != 1 || !(p.revents & POLLOUT) || !guard_arm(s)) {
        return;     /* full now: its reader has a wake-up pending */
    }
    if (write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
        s->trigger_blocked = true;  /* said once the guard is off */
    }
    /* EAGAIN: as full; anything else: the VMM's fd, its problem. */
}

/* Is @fd an eventfd?  A trigger must be one (see signal_fd()). */
static bool is_eventfd(int fd)
{
    char path[32], link[32];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0) {
        return false;
    }
    link[n] = '\0';
    return strcmp(link, "anon_inode:[eventfd]") == 0;
}

static void fire(VfuSession *s, uint32_t v)
{
    if (s->masked[v]) {
        s->pending[v] = true;
    } else {
        signal_fd(s, s->trigger[v]);
    }
}

/* Close every eventfd of the index and forget the state. */
static void disable_all(VfuSession *s)
{
    unsigned i;

    for (i = 0; i < VFU_MAX_VECTORS; i++) {
        if (s->trigger[i] >= 0) {
            close(s->trigger[i]);
        }
        s->trigger[i] = -1;
        s->masked[i] = false;
        s->pending[i] = false;
    }
    s->irq_index = 0;
}

void vfu_irq_teardown(VfuSession *s)
{
    if (s->notify != NULL) {
        apple_dext_interrupt_notify_destroy(s->notify);
        s->notify = NULL;
    }
    disable_all(s);
    if (s->guard_made) {
        guard_disarm(s);
        timer_delete(s->guard);
        s->guard_made = false;
    }
}

/* Interrupts of the dext, once: StillOpen means they already are. */
static int dext_irqs(VfuSession *s)
{
    uint32_t nvec = 0;
    kern_return_t kr;
    int err;

    if (s->irqs_setup) {
        return 0;
    }
    err = guard_create(s);
    if (err != 0) {
        return err;
    }
    kr = apple_dext_setup_interrupts(s->conn, &nvec);
    if (kr != kIOReturnSuccess && kr != kIOReturnStillOpen) {
        vfu_log_client("setup_interrupts: %s", apple_dext_strerror(kr));
        return vfu_errno(kr);
    }
    s->notify = apple_dext_interrupt_notify_create_fd(s->conn);
    if (s->notify == NULL) {
        return EIO;
    }
    s->irqs_setup = true;
    return 0;
}

int vfu_irq_poll_fd(VfuSession *s)
{
    return s->notify ? apple_dext_interrupt_notify_get_fd(s->notify) : -1;
}

void vfu_irq_deliver(VfuSession *s)
{
    uint64_t pending[4] = { 0 };
    unsigned v;

    if (s->notify == NULL) {
        return;
    }
    if (apple_dext_drain_pending_irqs(s->conn, pending) == kIOReturnSuccess &&
        s->irq_index != 0) {
        uint32_t count = irq_count(s, s->irq_index);

        for (v = 0; v < count && v < VFU_MAX_VECTORS; v++) {
            if (pending[v / 64] & (1ull << (v % 64))) {
                fire(s, v);
            }
        }
        guard_disarm(s);
    }
    apple_dext_interrupt_notify_rearm(s->notify);
}

int vfu_set_irqs(VfuSession *s, const uint8_t *p, size_t n, int *fds,
                 unsigned nfds, VfuReply *rep)
{
    VfuIrqSet set;
    uint32_t data, action, count, i;
    const uint8_t *bools = NULL;

    if (n < sizeof(set)) {
        vfu_close_fds(fds, nfds);
        rep->err = EINVAL;
        return 0;
    }
    memcpy(&set, p, sizeof(set));
    data = set.flags & VFU_IRQ_SET_DATA_MASK;
    action = set.flags & VFU_IRQ_SET_ACTION_MASK_ALL;
    count = irq_count(s, set.index);
    /* One data kind, one action, nothing else; the range inside. */
    if (set.index >= VFU_PCI_NUM_IRQS ||
        (set.flags & ~(VFU_IRQ_SET_DATA_MASK | VFU_IRQ_SET_ACTION_MASK_ALL)) ||
        __builtin_popcount(data) != 1 || __builtin_popcount(action) != 1 ||
        set.argsz != n || set.start > count || set.count > count - set.start ||
        (data != VFU_IRQ_SET_DATA_EVENTFD && nfds != 0) ||
        (data == VFU_IRQ_SET_DATA_EVENTFD && nfds != 0 &&
         nfds != set.count) ||
        (data == VFU_IRQ_SET_DATA_BOOL ?
         n - sizeof(set) != set.count : n != sizeof(set))) {
        vfu_close_fds(fds, nfds);
        rep->err = EINVAL;
        return 0;
    }
    if (data == VFU_IRQ_SET_DATA_BOOL) {
        bools = p + sizeof(set);
    }
    /* Another index than the one in use: that one goes first. */
    if (s->irq_index != 0 && s->irq_index != set.index &&
        set.count != 0) {
        if (action != VFU_IRQ_SET_ACTION_TRIGGER) {
            vfu_close_fds(fds, nfds);
            rep->err = EINVAL;
            return 0;
        }
        disable_all(s);
    }

    if (action == VFU_IRQ_SET_ACTION_TRIGGER &&
        data == VFU_IRQ_SET_DATA_EVENTFD) {
        if (nfds == 0 && set.count == 0) {
            /* Only the index in use has anything to disable. */
            if (s->irq_index == set.index) {
                disable_all(s);
            }
            return 0;
        }
        for (i = 0; i < nfds; i++) {
            if (fds[i] >= 0 && !is_eventfd(fds[i])) {
                vfu_close_fds(fds, nfds);
                rep->err = EINVAL;
                return 0;
            }
            /* Ours to keep from blocking too (signal_fd() checks). */
            if (fds[i] >= 0) {
                fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
            }
        }
        if (nfds > 0) {
            rep->err = dext_irqs(s);
            if (rep->err != 0) {
                vfu_close_fds(fds, nfds);
                return 0;
            }
        }
        s->irq_index = set.index;
        for (i = 0; i < set.count; i++) {
            uint32_t v = set.start + i;

            if (s->trigger[v] >= 0) {
                close(s->trigger[v]);
            }
            /* No fd (or -1): the vector is de-assigned. */
            s->trigger[v] = nfds > 0 ? fds[i] : -1;
            if (nfds > 0) {
                fds[i] = -1;
            }
        }
        return 0;
    }
    if (data == VFU_IRQ_SET_DATA_EVENTFD) {
        /* Mask/unmask notification eventfds are not offered. */
        vfu_close_fds(fds, nfds);
        rep->err = ENOTSUP;
        return 0;
    }
    if (data == VFU_IRQ_SET_DATA_NONE && set.count == 0 &&
        action == VFU_IRQ_SET_ACTION_TRIGGER) {
        if (s->irq_index == set.index) {
            disable_all(s);
        }
        return 0;
    }
    for (i = 0; i < set.count; i++) {
        uint32_t v = set.start + i;

        if (bools != NULL && !bools[i]) {
            continue;
        }
        if (action == VFU_IRQ_SET_ACTION_MASK) {
            s->masked[v] = true;
        } else if (action == VFU_IRQ_SET_ACTION_UNMASK) {
            s->masked[v] = false;
            if (s->pending[v]) {
                s->pending[v] = false;
                signal_fd(s, s->trigger[v]);
            }
        } else {
            fire(s, v);
        }
    }
    guard_disarm(s);
    return 0;
}
