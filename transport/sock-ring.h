/*
 * SPDX-License-Identifier: MIT
 *
 * The polled call ring of a unix-transport connection (the target option
 * ",poll"): a channel of its own, attached to the connection's session,
 * that dextd serves from shared memory (protocol/dext-ring.h).  One
 * synchronous call at a time goes through it; a caller that finds it
 * busy, or a call that names memory or carries an fd, uses the channel
 * pool as before.  A ring that fails is dead for good: the connection's
 * calls go through the pool from then on.
 */

#ifndef LIBDEXT_TRANSPORT_SOCK_RING_H
#define LIBDEXT_TRANSPORT_SOCK_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/dext-ring.h"
#include "transport/sock-channel.h"

/**
 * struct UnixRing - a connection's polled ring; fields private.
 *
 * @busy and @dead are atomics.  The rest belongs to whoever took the
 * ring (dext_unix_ring_take()) until it puts it back.
 */
typedef struct UnixRing {
    int busy;
    bool dead;
    unsigned fork_gen;          /* the process's fork count at setup */
    UnixChannel *ch;            /* its socket: doorbell and hang-up */
    DextRing *ring;             /* the shared mapping */
    uint64_t spin_ns;
    uint64_t seq;               /* the last request's */
    uint8_t tx[DEXT_WIRE_MAX_MSG];  /* the request, before it is published */
    uint8_t rx[DEXT_WIRE_MAX_MSG];  /* the reply, copied out */
} UnixRing;

/**
 * dext_unix_ring_open() - attach a channel to a session and make it a
 * polled ring
 * @t: dextd's socket, timeouts and the spin budget (@t->poll_us > 0)
 * @token: the session's token
 * @out: receives the ring
 *
 * Blocks for the connect and three round trips.
 *
 * Return: kIOReturnSuccess; the status dextd refused the RING with
 * (kIOReturnBadMessageID in the ERROR of a dextd without rings,
 * kIOReturnNoResources from one whose session has its rings); as
 * dext_unix_channel_attach(); kIOReturnIPCError if the ring it sent is
 * not one (no fd or more than one, not a memfd, wrong size, size not
 * sealed, not mappable writable); kIOReturnNoMemory if there is no room
 * to map it.
 */
IOReturn dext_unix_ring_open(const UnixTarget *t, const uint8_t *token,
                             UnixRing **out);

/**
 * dext_unix_ring_take() - take the ring for one call, without waiting
 * @r: the ring, or NULL
 *
 * Return: true if the caller now holds it (then dext_unix_ring_call()
 * and dext_unix_ring_put()); false if there is none, it is dead, or
 * another thread holds it.  (A forked child's calls never get here:
 * dext_conn_enter() refuses them.)
 */
bool dext_unix_ring_take(UnixRing *r);

/**
 * dext_unix_ring_call() - one round trip through a held ring
 * @r: the ring, held
 * @m: the CALL request
 * @version: the protocol version of the session
 * @call_ms: the bound of the wait in ms (0: none)
 * @h: receives the reply's header; its payload is at @r->rx +
 *     DEXT_WIRE_HEADER_SIZE until dext_unix_ring_put()
 *
 * Polls for the reply for the ring's spin budget, then sleeps on the
 * ring's socket.
 *
 * Return: kIOReturnSuccess; the status of an ERROR reply;
 * kIOReturnTimeout if dextd did not answer within @call_ms (it may still
 * be executing the call); kIOReturnNotResponding if dextd hung up;
 * kIOReturnIPCError for a malformed reply.  After any failure the ring
 * is dead.
 */
IOReturn dext_unix_ring_call(UnixRing *r, const DextWireCall *m,
                             uint16_t version, int call_ms,
                             DextWireHeader *h);

/**
 * dext_unix_ring_kill() - mark a held ring dead (a reply that does not
 * decode) and hang up its channel
 * @r: the ring, held
 *
 * Return: nothing.
 */
void dext_unix_ring_kill(UnixRing *r);

/**
 * dext_unix_ring_put() - give the ring back after a call
 * @r: the ring, held
 *
 * Return: nothing.
 */
void dext_unix_ring_put(UnixRing *r);

/**
 * dext_unix_ring_close() - unmap and free a ring (NULL is ignored)
 * @r: the ring; nobody holds it
 *
 * Return: its channel if it is still open, for the caller to hang up
 * with the session's other channels (dext_unix_pool_close()); NULL if
 * there is none, or in a forked child (which only closes its copy).
 */
UnixChannel *dext_unix_ring_close(UnixRing *r);

#endif /* LIBDEXT_TRANSPORT_SOCK_RING_H */
