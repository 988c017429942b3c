/*
 * SPDX-License-Identifier: MIT
 *
 * The channel pool of the unix transport (transport/sock-pool.h).
 */

#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "support/fds.h"
#include "support/fork.h"
#include "transport/sock-pool.h"

void dext_unix_pool_init(UnixPool *p, const UnixTarget *addr,
                         const uint8_t *token, UnixChannel *first)
{
    p->addr = *addr;
    memcpy(p->token, token, sizeof(p->token));
    p->dead = false;
    p->fork_gen = dext_fork_generation();
    p->idle = 1u;
    p->waiters = 0;
    dext_mutex_init(&p->lock);
    pthread_cond_init(&p->cond, NULL);
    memset(p->chans, 0, sizeof(p->chans));
    first->slot = 0;
    p->chans[0] = first;
    p->used = 1u;
    /* dextd answers every HELLO of a session alike. */
    p->lean = first->lean;
    p->full = first->lean ? 0u : 1u;
    p->cap = UNIX_MAX_CHANNELS;
    p->late = 0;
    p->closed = false;
}

/* Take an idle channel among @mask's; its slot, or -1. */
static int take_idle_of(UnixPool *p, unsigned mask)
{
    unsigned m = __atomic_load_n(&p->idle, __ATOMIC_SEQ_CST);

    while ((m & mask) != 0) {
        unsigned bit = (m & mask) & -(m & mask);

        if (__atomic_compare_exchange_n(&p->idle, &m, m & ~bit, true,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
            return __builtin_ctz(bit);
        }
    }
    return -1;
}

/*
 * Take an idle channel fit for a caller who needs a full one (@full) or
 * not.  Lean callers keep off full channels, which few need, so a DMA
 * call does not wait behind a ConfigRead; where dextd grants no lean
 * channels every channel is full and fits anyone.
 */
static int take_idle(UnixPool *p, bool full)
{
    unsigned fullm = __atomic_load_n(&p->full, __ATOMIC_SEQ_CST);

    return take_idle_of(p, full || !p->lean ? fullm : ~fullm);
}

/*
 * Give up @slot (its channel, if any, is the caller's to free); with no
 * channel left the session has gone too.  Wakes the waiters either way:
 * one of them may attach a channel in the slot.
 */
static void drop_slot(UnixPool *p, int slot) DEXT_REQUIRES(&p->lock)
{
    p->chans[slot] = NULL;
    p->used &= ~(1u << slot);
    __atomic_fetch_and(&p->full, ~(1u << slot), __ATOMIC_SEQ_CST);
    if (p->used == 0) {
        /* The last channel held the session; it is gone with it. */
        __atomic_store_n(&p->dead, true, __ATOMIC_SEQ_CST);
    }
    pthread_cond_broadcast(&p->cond);
}

/* Slow path of dext_unix_pool_get(): grow the pool or wait for a channel. */
static IOReturn get_slow(UnixPool *p, bool full, UnixChannel **out)
    DEXT_EXCLUDES(&p->lock)
{
    unsigned room, fullm;
    bool have_full;
    IOReturn ret;
    int slot;

    dext_mutex_lock(&p->lock);
    /*
     * Count ourselves as a waiter before looking again, so a channel
     * released after that look sees us and wakes us.
     */
    __atomic_fetch_add(&p->waiters, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        if (__atomic_load_n(&p->dead, __ATOMIC_SEQ_CST)) {
            ret = kIOReturnNotResponding;
            break;
        }
        slot = take_idle(p, full);
        if (slot >= 0) {
            *out = p->chans[slot];
            ret = kIOReturnSuccess;
            break;
        }
        fullm = __atomic_load_n(&p->full, __ATOMIC_SEQ_CST) & p->used;
        have_full = fullm != 0;
        /*
         * Lean channels leave a slot for the first full one.  That one
         * is tried whenever it is needed, past a cap lowered by an
         * earlier refusal: the refusal may have been another
         * connection's channels, since closed.
         */
        room = full && !have_full ? UNIX_MAX_CHANNELS :
               p->cap - (have_full || !p->lean ? 0 : 1);
        if ((unsigned)__builtin_popcount(p->used) < room) {
            UnixChannel *ch = NULL;

            slot = __builtin_ctz(~p->used);
            p->used |= 1u << slot;
            dext_mutex_unlock(&p->lock);
            ret = dext_unix_channel_attach(&p->addr, p->token, !full, &ch);
            dext_mutex_lock(&p->lock);
            if (ret == kIOReturnSuccess) {
                ch->slot = slot;
                p->chans[slot] = ch;
                if (!ch->lean) {
                    __atomic_fetch_or(&p->full, 1u << slot, __ATOMIC_SEQ_CST);
                }
                *out = ch;
                break;
            }
            drop_slot(p, slot);
            if (ret == kIOReturnTimeout && p->used != 0) {
                break;          /* dextd is slow, not refusing: say so */
            }
            if (p->used == 0 || ret == kIOReturnNotResponding) {
                /* dextd is gone, or with no channel left so is the session. */
                __atomic_store_n(&p->dead, true, __ATOMIC_SEQ_CST);
                ret = kIOReturnNotResponding;
                break;
            }
            if (full && !have_full) {
                /* dextd admits no channel for it now: this call fails. */
                ret = kIOReturnNoResources;
                break;
            }
            /* Make do with the channels we have. */
            p->cap = __builtin_popcount(p->used);
            continue;
        }
        if (!full && p->used == fullm) {
            /* Only full channels, and no more: a lean call takes one. */
            slot = take_idle_of(p, fullm);
            if (slot >= 0) {
                *out = p->chans[slot];
                ret = kIOReturnSuccess;
                break;
            }
        }
        dext_cond_wait(&p->cond, &p->lock);
    }
    __atomic_fetch_sub(&p->waiters, 1, __ATOMIC_SEQ_CST);
    dext_mutex_unlock(&p->lock);
    return ret;
}

IOReturn dext_unix_pool_get(UnixPool *p, bool full, UnixChannel **out)
{
    int slot;

    if (__atomic_load_n(&p->dead, __ATOMIC_SEQ_CST)) {
        return kIOReturnNotResponding;
    }
    slot = take_idle(p, full);
    if (slot >= 0) {
        *out = p->chans[slot];
        return kIOReturnSuccess;
    }
    return get_slow(p, full, out);
}

void dext_unix_pool_put(UnixPool *p, UnixChannel *ch)
{
    __atomic_fetch_or(&p->idle, 1u << ch->slot, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->waiters, __ATOMIC_SEQ_CST) != 0) {
        dext_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->cond);
        dext_mutex_unlock(&p->lock);
    }
}

void dext_unix_pool_kill(UnixPool *p, UnixChannel *ch, IOReturn why)
{
    if (why == kIOReturnNotResponding) {
        __atomic_store_n(&p->dead, true, __ATOMIC_SEQ_CST);
    }
    dext_mutex_lock(&p->lock);
    drop_slot(p, ch->slot);
    dext_mutex_unlock(&p->lock);
    dext_unix_channel_free(ch);
}

IOReturn dext_unix_pool_exchange(UnixPool *p, UnixChannel *ch, int len,
                                 int send_fd, uint16_t type,
                                 DextWireHeader *h, int *recv_fd)
{
    IOReturn ret;

    if (len < 0) {
        /* Nothing was sent: the channel is as good as before. */
        dext_unix_pool_put(p, ch);
        return kIOReturnInternalError;
    }
    ret = dext_unix_channel_roundtrip(ch, len, send_fd, type, h, recv_fd);
    if (ret != kIOReturnSuccess) {
        dext_unix_pool_kill(p, ch, ret);
    }
    return ret;
}

bool dext_unix_pool_enter(UnixPool *p)
{
    bool live;

    /* A forked child must not unregister its parent's wake ports. */
    if (dext_forked_since(p->fork_gen)) {
        return false;
    }
    dext_mutex_lock(&p->lock);
    live = !p->closed && !__atomic_load_n(&p->dead, __ATOMIC_SEQ_CST);
    if (live) {
        p->late++;
    }
    dext_mutex_unlock(&p->lock);
    return live;
}

void dext_unix_pool_leave(UnixPool *p)
{
    dext_mutex_lock(&p->lock);
    p->late--;
    pthread_cond_broadcast(&p->cond);
    dext_mutex_unlock(&p->lock);
}

/*
 * Hang up every channel and wait until dextd has hung up too.  Its
 * channel threads release their hold on the session before closing their
 * end, so once every channel reads EOF the user client is closed, as
 * IOServiceClose has finished when it returns.  A daemon that does not
 * answer in time is not waited for any longer.
 */
static void close_channels_sync(UnixChannel **chans, int n)
{
    struct pollfd pfd[UNIX_MAX_CHANNELS + 1];
    struct timespec start, now;
    int idx[UNIX_MAX_CHANNELS + 1];
    int left = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (chans[i] != NULL && shutdown(chans[i]->fd, SHUT_WR) == 0) {
            pfd[left].fd = chans[i]->fd;
            pfd[left].events = POLLIN;
            idx[left++] = i;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (left > 0) {
        long ms;
        int rc;

        clock_gettime(CLOCK_MONOTONIC, &now);
        ms = (now.tv_sec - start.tv_sec) * 1000 +
             (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms >= UNIX_CLOSE_TIMEOUT_MS) {
            break;
        }
        rc = poll(pfd, left, (int)(UNIX_CLOSE_TIMEOUT_MS - ms));
        if (rc < 0 && errno != EINTR) {
            break;
        }
        for (i = 0; rc > 0 && i < left; i++) {
            UnixChannel *ch = chans[idx[i]];
            bool eof = (pfd[i].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;

            if (pfd[i].revents & POLLIN) {
                /* Nothing is in flight; anything here is stray: drop it. */
                int fds[UNIX_MAX_FDS];
                int nfds;
                bool trunc;

                eof = dext_unix_channel_recv(ch, MSG_DONTWAIT, fds, &nfds,
                                             &trunc) == 0 || eof;
                dext_close_fds(fds, nfds);
            }
            if (eof) {
                pfd[i] = pfd[left - 1];
                idx[i] = idx[left - 1];
                left--;
                i--;
            }
        }
    }
    for (i = 0; i < n; i++) {
        dext_unix_channel_free(chans[i]);
        chans[i] = NULL;
    }
}

/*
 * dext_unix_pool_close() in a forked child: the sockets are its parent's
 * too, and a hang-up (shutdown() acts on the socket, not on our copy of
 * its fd) would end the parent's session.  A parent thread may also have
 * held the lock at the fork, or been in a round trip of
 * dext_unix_pool_enter() that close would wait for.  So no lock: close
 * our copies of the fds, which leaves the sockets alone.  Nothing else in
 * this process uses the pool (the client refuses its calls here).
 */
static void close_inherited(UnixPool *p, UnixChannel *also)
    DEXT_NO_THREAD_SAFETY_ANALYSIS
{
    int i;

    __atomic_store_n(&p->dead, true, __ATOMIC_SEQ_CST);
    __atomic_store_n(&p->idle, 0, __ATOMIC_SEQ_CST);
    for (i = 0; i < UNIX_MAX_CHANNELS; i++) {
        dext_unix_channel_free(p->chans[i]);
        p->chans[i] = NULL;
    }
    p->used = 0;
    p->closed = true;
    dext_unix_channel_free(also);
}

void dext_unix_pool_close(UnixPool *p, UnixChannel *also)
{
    UnixChannel *chans[UNIX_MAX_CHANNELS + 1];

    if (dext_forked_since(p->fork_gen)) {
        close_inherited(p, also);
        return;
    }
    dext_mutex_lock(&p->lock);
    p->closed = true;
    /* A wake_destroy() round trip may still hold a channel: let it end. */
    while (p->late > 0) {
        dext_cond_wait(&p->cond, &p->lock);
    }
    /*
     * Take every channel out of the pool and mark it dead, so nothing
     * can reach a channel any more; then hang up and wait for dextd
     * with no lock held.
     */
    memcpy(chans, p->chans, sizeof(p->chans));
    chans[UNIX_MAX_CHANNELS] = also;
    memset(p->chans, 0, sizeof(p->chans));
    p->used = 0;
    __atomic_store_n(&p->idle, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&p->dead, true, __ATOMIC_SEQ_CST);
    dext_mutex_unlock(&p->lock);

    /* Closing the sockets is what tells dextd to end the session. */
    close_channels_sync(chans, UNIX_MAX_CHANNELS + 1);
}

void dext_unix_pool_destroy(UnixPool *p)
{
    /*
     * In a forked child a parent thread may have held the lock, or
     * waited on the condition, at the fork: pthread_cond_destroy() would
     * wait for that waiter forever.  Leave both to go with the memory.
     */
    if (!dext_forked_since(p->fork_gen)) {
        dext_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
    }
    memset(p->token, 0, sizeof(p->token));
}
