/*
 * SPDX-License-Identifier: MIT
 *
 * Polled call rings (protocol/dext-ring.h): a channel that asked for one
 * with RING is served from shared memory instead of its socket.  The
 * ring is ours: we create the memfd and seal its size before the client
 * gets it, so the client can scribble on the pages but never take them
 * away from under us (a truncated shared page would be a SIGBUS here).
 * Everything in it is the client's word: a length is read once and
 * bounded, the request is copied into the channel's own buffer before
 * it is decoded, and only synchronous CALLs are served.  The channel's
 * socket stays the doorbell and the hang-up: while we sleep, the client
 * rings it; when the client goes, it reads EOF and the channel ends as a
 * socket channel does.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/dextd.h"
#include "protocol/dext-ring.h"

/* A memfd of DEXT_RING_BYTES, mapped at *@out, its size sealed. */
static int ring_memfd(DextRing **out)
{
    void *p;
    int fd = memfd_create("dextd-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0) {
        return -1;
    }
    if (ftruncate(fd, (off_t)DEXT_RING_BYTES) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
              F_SEAL_SEAL) < 0) {
        close(fd);
        return -1;
    }
    p = mmap(NULL, DEXT_RING_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
             0);
    if (p == MAP_FAILED) {
        close(fd);
        return -1;
    }
    *out = p;
    return fd;
}

IOReturn ring_setup(Channel *ch, uint32_t spin_us, int *fd)
{
    Daemon *d = ch->d;
    Session *s = ch->session;
    bool ok;

    *fd = -1;
    if (ch->ring != NULL) {
        return kIOReturnStillOpen;
    }
    dext_mutex_lock(&d->lock);
    ok = s->rings < DEXTD_SESSION_RINGS;
    if (ok) {
        s->rings++;
    }
    dext_mutex_unlock(&d->lock);
    if (!ok) {
        dlog_limited(d, &s->log_rl, DEXT_LOG_WARNING, "pid %d: RING "
                     "refused: the session has %u rings already",
                     (int)ch->pid, DEXTD_SESSION_RINGS);
        return kIOReturnNoResources;
    }
    if (!fd_charge(d, DEXTD_RING_FDS)) {
        dlog_limited(d, &s->log_rl, DEXT_LOG_WARNING, "pid %d: RING "
                     "refused: out of file descriptors", (int)ch->pid);
        goto fail;
    }
    *fd = ring_memfd(&ch->ring);
    if (*fd < 0) {
        fd_release(d, DEXTD_RING_FDS);
        goto fail;
    }
    if (spin_us > DEXTD_RING_SPIN_MAX_US) {
        spin_us = DEXTD_RING_SPIN_MAX_US;
    }
    ch->ring_spin_ns = (uint64_t)spin_us * 1000;
    return kIOReturnSuccess;

fail:
    dext_mutex_lock(&d->lock);
    s->rings--;
    dext_mutex_unlock(&d->lock);
    return kIOReturnNoResources;
}

void ring_release(Channel *ch)
{
    Daemon *d = ch->d;

    if (ch->ring == NULL) {
        return;
    }
    munmap(ch->ring, DEXT_RING_BYTES);
    ch->ring = NULL;
    fd_release(d, DEXTD_RING_FDS);
    dext_mutex_lock(&d->lock);
    ch->session->rings--;
    dext_mutex_unlock(&d->lock);
}

/*
 * Empty the doorbells queued on the socket.  False at EOF or on an
 * error: the client has gone (or hung up to close the session).
 */
static bool drain_doorbells(Channel *ch)
{
    return dext_ring_drain(ch->fd, 64) > 0;
}

/*
 * Sleep until the client rings or goes.  The flag is raised before the
 * last look at the request's seq, and the client publishes a request
 * before it looks at the flag (each with a full fence between): one of
 * us sees the other.  False once the socket says the client is gone.
 */
static bool ring_sleep(Channel *ch, DextRing *r, uint64_t seen)
{
    struct pollfd p = { .fd = ch->fd, .events = POLLIN };
    bool alive = true;

    dext_ring_announce_sleep(&r->server_sleeping);
    if (dext_ring_seq(&r->req) == seen) {
        while (poll(&p, 1, -1) < 0 && errno == EINTR) {
        }
        alive = !(p.revents & (POLLHUP | POLLERR | POLLNVAL)) &&
                drain_doorbells(ch);
    }
    __atomic_store_n(&r->server_sleeping, 0, __ATOMIC_SEQ_CST);
    return alive;
}

/* Is the socket still open?  Checked now and then while calls stream. */
static bool socket_alive(Channel *ch)
{
    struct pollfd p = { .fd = ch->fd, .events = POLLIN };

    if (poll(&p, 1, 0) <= 0) {
        return true;
    }
    return !(p.revents & (POLLHUP | POLLERR | POLLNVAL)) &&
           drain_doorbells(ch);
}

/* A ring that breaks the protocol ends its channel. */
static void ring_violation(Channel *ch, const char *why)
{
    dlog_limited(ch->d, &ch->session->log_rl, DEXT_LOG_WARNING,
                 "pid %d: dropping ring channel: %s", (int)ch->pid, why);
}

/*
 * Serve the request the client published: copy it out (its length read
 * once and bounded), check it is a CALL, handle it as a socket request
 * without a kernel-vouched sender (so no DMA-naming call passes), and
 * publish the reply.  False if the channel must end.
 */
static bool ring_serve_one(Channel *ch, DextRing *r)
{
    DextdReply rep = { .buf = ch->tx, .cap = sizeof(ch->tx), .fd = -1 };
    DextdRequest req = { .buf = ch->rx, .sender = -1 };
    bool keep;

    req.len = dext_ring_copy_out(&r->req, ch->rx);
    if (req.len == 0) {
        ring_violation(ch, "request length out of bounds");
        return false;
    }
    /* The type only: handle_request() checks the rest of the header. */
    if (dext_wire_get_u16(ch->rx + 6) != DEXT_WIRE_CALL) {
        ring_violation(ch, "not a CALL");
        return false;
    }
    keep = handle_request(ch, &req, &rep);
    if (rep.len >= DEXT_WIRE_HEADER_SIZE) {
        dext_ring_publish(&r->rep, ch->tx, (size_t)rep.len);
        if (__atomic_load_n(&r->client_sleeping, __ATOMIC_SEQ_CST)) {
            dext_ring_doorbell(ch->fd);
        }
    } else {
        /* As a socket channel whose reply cannot be sent: it ends, so
         * the client's call ends too rather than wait for its timeout. */
        keep = false;
    }
    reply_done(&rep);
    return keep;
}

/*
 * Take one of the daemon's busy-polling places; false if all are taken
 * (then the ring sleeps at once, and the client rings its doorbell).
 */
static bool spin_take(Daemon *d)
{
    unsigned max = d->ring_spinners_max ? d->ring_spinners_max : 1;
    unsigned n = __atomic_load_n(&d->ring_spinners, __ATOMIC_RELAXED);

    while (n < max) {
        if (__atomic_compare_exchange_n(&d->ring_spinners, &n, n + 1, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            return true;
        }
    }
    return false;
}

static void spin_put(Daemon *d)
{
    __atomic_fetch_sub(&d->ring_spinners, 1, __ATOMIC_RELAXED);
}

void ring_serve(Channel *ch)
{
    DextRing *r = ch->ring;
    /* A fresh ring: the client may have published request 1 already. */
    uint64_t seen = 0;
    unsigned streak = 0;
    /* A place among the spinners, kept while calls stream. */
    bool spinning = false;

    dlog(ch->d, DEXT_LOG_DEBUG, "pid %d: channel serves a polled ring",
         (int)ch->pid);
    for (;;) {
        uint64_t seq;

        if (!spinning) {
            spinning = spin_take(ch->d);
        }
        seq = dext_ring_spin(&r->req, seen,
                             spinning ? ch->ring_spin_ns : 0,
                             dext_ring_same_cpu(&r->server_cpu,
                                                &r->client_cpu));
        if (seq == seen) {
            streak = 0;
            if (spinning) {
                spin_put(ch->d);
                spinning = false;
            }
            if (!ring_sleep(ch, r, seen)) {
                return;
            }
            continue;
        }
        /*
         * Calls that never let us sleep must not hide a hang-up.  (The
         * busy-polling place is kept while they stream: given back here,
         * it was taken again on the next pass before any other ring
         * could, and a ring without one is still served, rung awake.)
         */
        if (++streak % 256 == 0 && !socket_alive(ch)) {
            break;
        }
        if (!ring_serve_one(ch, r)) {
            break;
        }
        seen = seq;
    }
    if (spinning) {
        spin_put(ch->d);
    }
}
