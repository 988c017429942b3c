/*
 * SPDX-License-Identifier: MIT
 *
 * The channel pool of one unix-transport connection (one user client).
 *
 * Every channel of a pool is attached to the same dextd session.  A call
 * takes an idle channel without locking (an atomic bitmask), makes its
 * round trip on it alone and gives it back, so concurrent callers only
 * share a socket when the pool is at its cap; the pool grows on demand
 * up to UNIX_MAX_CHANNELS (fewer if dextd refuses more).  A channel
 * whose reply cannot be trusted is dropped; a daemon that went away
 * marks the whole pool dead.
 */

#ifndef LIBDEXT_TRANSPORT_SOCK_POOL_H
#define LIBDEXT_TRANSPORT_SOCK_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include "support/locks.h"
#include "transport/sock-channel.h"

/* Channels per connection; concurrent callers beyond this wait. */
#define UNIX_MAX_CHANNELS 16

/* How long close waits for dextd to release the session. */
#define UNIX_CLOSE_TIMEOUT_MS 5000

/**
 * struct UnixPool - the channels of one session; fields private.
 *
 * @dead, @idle, @full and @waiters are atomics (__atomic builtins), read
 * without the lock; @lock protects the rest and is what @cond waits on.
 * A channel taken from @idle belongs to its taker alone until given
 * back: no lock covers a round trip.
 */
typedef struct UnixPool {
    UnixTarget addr;            /* dextd's socket, for new channels */
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];

    bool dead;
    bool lean;                  /* dextd grants lean channels (fixed) */
    unsigned fork_gen;          /* dext_fork_generation() at init */
    unsigned idle;              /* bit i: chans[i] is open and free */
    unsigned full;              /* bit i: chans[i] is not lean */
    unsigned waiters;           /* callers sleeping on @cond */

    DextMutex lock;
    pthread_cond_t cond;
    UnixChannel *chans[UNIX_MAX_CHANNELS] DEXT_GUARDED_BY(lock);
    uint32_t used DEXT_GUARDED_BY(lock);    /* bit i: slot i is taken */
    unsigned cap DEXT_GUARDED_BY(lock);     /* lowered if dextd refuses */
    unsigned late DEXT_GUARDED_BY(lock);    /* dext_unix_pool_enter()s */
    bool closed DEXT_GUARDED_BY(lock);
} UnixPool;

/**
 * dext_unix_pool_init() - a pool around the channel that opened a session
 * @p: the pool
 * @addr: dextd's socket
 * @token: the session's token, for attaching more channels
 * @first: the channel the session was opened on; the pool owns it now
 *
 * Return: nothing.
 */
void dext_unix_pool_init(UnixPool *p, const UnixTarget *addr,
                         const uint8_t *token, UnixChannel *first);

/**
 * dext_unix_pool_get() - take a channel for one round trip
 * @p: the pool
 * @full: the round trip passes an fd or names our memory, so it needs a
 *        full (not lean) channel; other round trips take a lean one
 * @out: receives the channel; give it back with dext_unix_pool_put() or
 *       dext_unix_pool_kill(), or use dext_unix_pool_exchange()
 *
 * Takes an idle channel without locking; otherwise attaches a new one
 * (a blocking connect and two round trips, with no lock held) or sleeps
 * until one is given back.
 *
 * Return: kIOReturnSuccess, or kIOReturnNotResponding once the pool is
 * dead (dextd gone, or no channel left to hold the session);
 * kIOReturnNoResources for @full when dextd admits no channel for it.
 */
IOReturn dext_unix_pool_get(UnixPool *p, bool full, UnixChannel **out)
    DEXT_EXCLUDES(&p->lock);

/**
 * dext_unix_pool_put() - give back a channel that is fit for more
 * @p: the pool
 * @ch: a channel from dext_unix_pool_get()
 *
 * Return: nothing.
 */
void dext_unix_pool_put(UnixPool *p, UnixChannel *ch)
    DEXT_EXCLUDES(&p->lock);

/**
 * dext_unix_pool_kill() - drop a channel that can no longer be trusted
 * @p: the pool
 * @ch: a channel from dext_unix_pool_get(); it is closed and freed
 * @why: the failure; kIOReturnNotResponding marks the pool dead
 *
 * Return: nothing.
 */
void dext_unix_pool_kill(UnixPool *p, UnixChannel *ch, IOReturn why)
    DEXT_EXCLUDES(&p->lock);

/**
 * dext_unix_pool_exchange() - dext_unix_channel_roundtrip() on a pooled
 * channel
 * @p: the pool
 * @ch: a channel from dext_unix_pool_get(), request in @ch->tx
 * @len: as dext_unix_channel_roundtrip()
 * @send_fd: as dext_unix_channel_roundtrip()
 * @type: as dext_unix_channel_roundtrip()
 * @h: as dext_unix_channel_roundtrip()
 * @recv_fd: as dext_unix_channel_roundtrip()
 *
 * On failure the channel is given back (an encoding failure) or dropped
 * (anything else).  On success the caller decodes the reply, then calls
 * dext_unix_pool_put(), or dext_unix_pool_kill() if it does not decode.
 *
 * Return: as dext_unix_channel_roundtrip().
 */
IOReturn dext_unix_pool_exchange(UnixPool *p, UnixChannel *ch, int len,
                                 int send_fd, uint16_t type,
                                 DextWireHeader *h, int *recv_fd)
    DEXT_EXCLUDES(&p->lock);

/**
 * dext_unix_pool_enter() - announce a round trip that may run beside
 * dext_unix_pool_close()
 * @p: the pool
 *
 * For hooks that may run while the transport closes (wake_destroy):
 * close waits for every such user to leave before it hangs up.
 *
 * Return: true if the pool is open and alive (then call
 * dext_unix_pool_leave() when done); false if it is closing or dead, or
 * if this is a forked child of the process that set it up.
 */
bool dext_unix_pool_enter(UnixPool *p)
    DEXT_EXCLUDES(&p->lock);

/**
 * dext_unix_pool_leave() - the round trip of dext_unix_pool_enter() is over
 * @p: the pool
 *
 * Return: nothing.
 */
void dext_unix_pool_leave(UnixPool *p)
    DEXT_EXCLUDES(&p->lock);

/**
 * dext_unix_pool_close() - hang up every channel and wait for dextd to
 * release the session
 * @p: the pool
 * @also: a channel of the session outside the pool (a polled ring's),
 *        hung up, waited for and freed with the others; or NULL
 *
 * For the transport's close hook: no other user of the pool may be
 * running or start, except those of dext_unix_pool_enter(), which close
 * waits out first (on the condition variable, so not holding the lock).
 * It then takes every channel out of the pool and marks the pool dead,
 * under the lock; and only then, with no lock held, hangs the channels
 * up and waits until dextd has hung up each of them, for at most
 * UNIX_CLOSE_TIMEOUT_MS in all.
 *
 * Meanwhile the pool is dead: dext_unix_pool_enter() fails at once (so
 * a wake destroyed now skips its best-effort unregister and never
 * blocks) and dext_unix_pool_get() returns kIOReturnNotResponding.
 * dextd counts the session until it has seen every channel go, so its
 * status may still show it until close returns.
 *
 * In a forked child of the process that set the pool up, the sockets
 * are the parent's too: the channels are closed (our copies of the fds)
 * and freed without a hang-up, so the parent's session goes on, and
 * without the lock or a wait, which a parent thread may have held or
 * been in at the fork.
 *
 * Return: nothing.
 */
void dext_unix_pool_close(UnixPool *p, UnixChannel *also)
    DEXT_EXCLUDES(&p->lock);

/**
 * dext_unix_pool_destroy() - free what a closed pool still holds
 * @p: the pool, after dext_unix_pool_close()
 *
 * In a forked child the lock and the condition variable are left as
 * they are (a parent thread may have held or waited on them).
 *
 * Return: nothing.
 */
void dext_unix_pool_destroy(UnixPool *p);

#endif /* LIBDEXT_TRANSPORT_SOCK_POOL_H */
