/*
 * SPDX-License-Identifier: MIT
 *
 * Interrupts: DEVICE_GET_IRQ_INFO and DEVICE_SET_IRQS for MSI and MSI-X,
 * one eventfd per vector.  The dext's interrupts are set up when the
 * client first gives trigger eventfds; each notification drains the
 * pending bitmap from the shared page (no round trip) and signals the
 * vectors' eventfds.  Masking is the server's: a masked vector's
 * interrupt is kept pending and signalled on unmask (MSI-X semantics).
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "vfu-server.h"

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
 * Signal a VMM's trigger eventfd without ever blocking: the VMM holds the
 * other end and could keep the counter at its maximum (where a write
 * blocks) or clear O_NONBLOCK, and one blocked write would stop the whole
 * server.  Not writable now means its reader has a wake-up pending.
 */
static void signal_fd(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    uint64_t one = 1;

    if (fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) &&
        write(fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: as full; anything else: the VMM's fd, its problem. */
    }
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
        signal_fd(s->trigger[v]);
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
}

/* Interrupts of the dext, once: StillOpen means they already are. */
static int dext_irqs(VfuSession *s)
{
    uint32_t nvec = 0;
    kern_return_t kr;

    if (s->irqs_setup) {
        return 0;
    }
    kr = apple_dext_setup_interrupts(s->conn, &nvec);
    if (kr != kIOReturnSuccess && kr != kIOReturnStillOpen) {
        vfu_log("setup_interrupts: %s", apple_dext_strerror(kr));
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
                signal_fd(s->trigger[v]);
            }
        } else {
            fire(s, v);
        }
    }
    return 0;
}
