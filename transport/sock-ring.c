/*
 * SPDX-License-Identifier: MIT
 *
 * The polled call ring of the unix transport (transport/sock-ring.h).
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/fork.h"
#include "support/log.h"
#include "transport/sock-ring.h"

/*
 * Map the memfd dextd sent, if it is a ring that cannot shrink.  One we
 * may not map writable (write-sealed, or open read-only) is no ring
 * either: dextd's error, not our memory's.
 */
static IOReturn map_ring(int fd, DextRing **out)
{
    int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    void *p;

    if (seals < 0 || (seals & need) != need || fstat(fd, &st) < 0 ||
        (uint64_t)st.st_size != DEXT_RING_BYTES) {
        return kIOReturnIPCError;
    }
    p = mmap(NULL, DEXT_RING_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
             0);
    if (p == MAP_FAILED) {
        return errno == ENOMEM ? kIOReturnNoMemory : kIOReturnIPCError;
    }
    *out = p;
    return kIOReturnSuccess;
}

IOReturn dext_unix_ring_open(const UnixTarget *t, const uint8_t *token,
                             UnixRing **out)
{
    DextWireHeader h;
    UnixChannel *ch;
    UnixRing *r;
    IOReturn ret;
    int fd = -1;
    int len;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return kIOReturnNoMemory;
    }
    ret = dext_unix_channel_attach(t, token, true, &ch);
    if (ret != kIOReturnSuccess) {
        free(r);
        return ret;
    }
    len = dext_wire_encode_ring(ch->tx, sizeof(ch->tx), ch->version,
                                ++ch->seq, (uint32_t)t->poll_us);
    ret = dext_unix_channel_roundtrip(ch, len, -1, DEXT_WIRE_RING, &h, &fd);
    ret = dext_unix_channel_status(ch, ret, &h);
    if (ret == kIOReturnSuccess) {
        ret = fd >= 0 ? map_ring(fd, &r->ring) : kIOReturnIPCError;
    }
    if (fd >= 0) {
        close(fd);
    }
    if (ret != kIOReturnSuccess) {
        dext_unix_channel_free(ch);
        free(r);
        return ret;
    }
    r->ch = ch;
    r->spin_ns = (uint64_t)t->poll_us * 1000;
    /* A forked child's close releases its copies only: dext_unix_ring_close(). */
    r->fork_gen = dext_fork_generation();
    r->seq = 0;                         /* dextd's memfd starts zeroed */
    dext_log(DEXT_LOG_DEBUG, "polled ring set up, spin budget %d us",
             t->poll_us);
    *out = r;
    return kIOReturnSuccess;
}

bool dext_unix_ring_take(UnixRing *r)
{
    if (r == NULL || __atomic_load_n(&r->dead, __ATOMIC_ACQUIRE) ||
        __atomic_exchange_n(&r->busy, 1, __ATOMIC_ACQUIRE) != 0) {
        return false;
    }
    if (__atomic_load_n(&r->dead, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&r->busy, 0, __ATOMIC_RELEASE);
        return false;
    }
    return true;
}

void dext_unix_ring_put(UnixRing *r)
{
    __atomic_store_n(&r->busy, 0, __ATOMIC_RELEASE);
}

void dext_unix_ring_kill(UnixRing *r)
{
    __atomic_store_n(&r->dead, true, __ATOMIC_RELEASE);
    /* dextd reads EOF and ends the ring's channel. */
    dext_unix_channel_free(r->ch);
    r->ch = NULL;
}

/* Wake dextd if it sleeps: the request is published already. */
static void ring_doorbell(UnixRing *r)
{
    if (__atomic_load_n(&r->ring->server_sleeping, __ATOMIC_SEQ_CST)) {
        dext_ring_doorbell(r->ch->fd);
    }
}

/*
 * Sleep until dextd publishes the reply to the last request (the reply
 * slot's seq moves off @prev), hangs up, or @deadline_ns (0: none)
 * passes.  The flag is raised before the last look at the slot, and
 * dextd publishes before it looks at the flag (each with a full fence
 * between), so a reply published meanwhile is either seen here or rung
 * for.
 */
static IOReturn ring_sleep(UnixRing *r, uint64_t prev, uint64_t deadline_ns)
{
    struct pollfd p = { .fd = r->ch->fd, .events = POLLIN };
    IOReturn ret = kIOReturnSuccess;

    for (;;) {
        int ms = -1;
        int rc;

        dext_ring_announce_sleep(&r->ring->client_sleeping);
        if (dext_ring_seq(&r->ring->rep) != prev) {
            break;
        }
        if (deadline_ns != 0) {
            uint64_t now = dext_ring_now_ns();

            if (now >= deadline_ns) {
                ret = kIOReturnTimeout;
                break;
            }
            ms = (int)((deadline_ns - now + 999999) / 1000000);
        }
        rc = poll(&p, 1, ms);
        if (rc < 0 && errno != EINTR) {
            ret = kIOReturnNotResponding;
            break;
        }
        if (rc > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
            ret = kIOReturnNotResponding;
            break;
        }
        /* Doorbells, stale ones too; dextd never sends an empty one. */
        if (rc > 0 && dext_ring_drain(r->ch->fd, 64) == 0) {
            ret = kIOReturnNotResponding;
        }
        if (ret != kIOReturnSuccess) {
            break;
        }
    }
    __atomic_store_n(&r->ring->client_sleeping, 0, __ATOMIC_SEQ_CST);
    return ret;
}

IOReturn dext_unix_ring_call(UnixRing *r, const DextWireCall *m,
                             uint16_t version, int call_ms,
                             DextWireHeader *h)
{
    DextRing *ring = r->ring;
    uint64_t deadline = 0;
    uint64_t prev = r->seq;
    uint64_t seq = prev + 1;
    IOReturn ret;
    size_t len;
    int n;

    n = dext_wire_encode_call(r->tx, sizeof(r->tx), version, seq, false, m);
    if (n < 0) {
        return kIOReturnInternalError;      /* nothing sent: still good */
    }
    r->seq = seq;
    dext_ring_publish(&ring->req, r->tx, (size_t)n);
    ring_doorbell(r);

    if (dext_ring_spin(&ring->rep, prev, r->spin_ns,
                       dext_ring_same_cpu(&ring->client_cpu,
                                          &ring->server_cpu)) != prev) {
        ret = kIOReturnSuccess;
    } else {
        /*
         * The bound counts from here: a clock read per call costs more
         * than a fast round trip, and the spin was at most its budget.
         */
        if (call_ms > 0) {
            deadline = dext_ring_now_ns() + (uint64_t)call_ms * 1000000;
        }
        ret = ring_sleep(r, prev, deadline);
    }
    if (ret == kIOReturnSuccess) {
        len = dext_ring_copy_out(&ring->rep, r->rx);
        ret = len == 0 ? kIOReturnIPCError :
              dext_unix_reply_check(r->rx, len, seq, DEXT_WIRE_CALL, version,
                                    h);
    }
    if (ret != kIOReturnSuccess) {
        /* A late reply, or none: the ring cannot answer another call. */
        dext_log(DEXT_LOG_DEBUG, "polled ring: call failed (0x%x): calls "
                 "go through the socket from now on", (unsigned)ret);
        dext_unix_ring_kill(r);
    }
    return ret;
}

UnixChannel *dext_unix_ring_close(UnixRing *r)
{
    UnixChannel *ch;

    if (r == NULL) {
        return NULL;
    }
    ch = r->ch;
    if (ch != NULL &&
        dext_forked_since(r->fork_gen)) {
        /*
         * A forked child closing what it inherited: closing our copy of
         * the socket leaves the parent's ring alone, a hang-up would not.
         */
        dext_unix_channel_free(ch);
        ch = NULL;
    }
    munmap(r->ring, DEXT_RING_BYTES);
    free(r);
    return ch;
}
