/*
 * SPDX-License-Identifier: MIT
 *
 * Channel I/O of the unix transport: one socket to dextd, connected,
 * checked (the peer's credentials) and greeted (HELLO), over which one
 * request and its reply travel at a time.  A channel has no lock: whoever
 * holds it (its pool hands it to one caller at a time) is its only user.
 */

#ifndef LIBDEXT_TRANSPORT_SOCK_CHANNEL_H
#define LIBDEXT_TRANSPORT_SOCK_CHANNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "protocol/dext-wire.h"

/* Room for a few fds so that surplus ones are received and closed. */
#define UNIX_MAX_FDS 4

/* Default bounds of a wait for dextd, in ms (see docs/transports.md). */
#define UNIX_DEFAULT_CALL_TIMEOUT_MS 30000
#define UNIX_DEFAULT_CONNECT_TIMEOUT_MS 5000

/**
 * struct UnixTarget - what a "unix:" target names
 * @sa: dextd's socket
 * @call_ms: the bound of one call's round trip in ms; 0: none
 * @connect_ms: the bound of each step of connecting (connect, HELLO,
 *              OPEN or ATTACH, a LIST's or STATUS's round trip) in ms;
 *              0: none
 * @poll_us: 0, or the spin budget in us of a polled call ring
 *           (transport/sock-ring.h) for connections to this target
 */
typedef struct UnixTarget {
    struct sockaddr_un sa;
    int call_ms;
    int connect_ms;
    int poll_us;
} UnixTarget;

/**
 * struct UnixChannel - one socket to dextd and its message buffers
 * @fd: the SOCK_SEQPACKET socket
 * @call_ms: its target's call timeout (see struct UnixTarget)
 * @slot: its place in a pool, or -1
 * @peer_pid: dextd's pid, from SO_PEERCRED
 * @version: the protocol version this channel's HELLO agreed on
 * @lean: dextd granted DEXT_WIRE_FEAT_LEAN: no fds and no calls naming
 *        our memory on this channel
 * @seq: the sequence number of the last request
 * @tx: the request being sent
 * @rx: the last reply received
 */
typedef struct UnixChannel {
    int fd;
    int call_ms;
    int slot;
    pid_t peer_pid;
    uint16_t version;
    bool lean;
    uint64_t seq;
    uint8_t tx[DEXT_WIRE_MAX_MSG];
    uint8_t rx[DEXT_WIRE_MAX_MSG];
} UnixChannel;

/**
 * dext_unix_set_default_timeouts() - the process's default bounds
 * @call_ms: for calls, 0 = none, -1 = back to $DEXT_TIMEOUT_MS or the
 *           built-in default
 * @connect_ms: for connecting, likewise with $DEXT_CONNECT_TIMEOUT_MS
 *
 * Taken by targets resolved afterwards; a target's own options win.
 *
 * Return: nothing.
 */
void dext_unix_set_default_timeouts(int call_ms, int connect_ms);

/**
 * dext_unix_resolve_path() - the socket, timeouts and polling a target
 * argument names
 * @arg: the target after "unix:":
 *       "PATH[,timeout=MS][,connect-timeout=MS][,poll[=US]]";
 *       a PATH of NULL or "" is the default socket
 * @t: receives the address and the timeouts: the options, else
 *     $DEXT_TIMEOUT_MS and $DEXT_CONNECT_TIMEOUT_MS, else the defaults
 *     (UNIX_DEFAULT_*_TIMEOUT_MS), 0 meaning no bound; and the polled
 *     ring's spin budget: ",poll" (DEXT_RING_SPIN_DEFAULT_US) or
 *     ",poll=US", else $DEXT_POLL_US, else 0 (no ring)
 *
 * Only trailing ",timeout=", ",connect-timeout=" and ",poll" are
 * options; any other comma is part of the path.
 *
 * Return: kIOReturnSuccess, or kIOReturnBadArgument for a path that is
 * empty or too long, an option value that is not a number of ms, or a
 * spin budget outside 1..DEXT_RING_SPIN_MAX_US.
 */
IOReturn dext_unix_resolve_path(const char *arg, UnixTarget *t);

/**
 * dext_unix_channel_open() - connect to dextd, check it and say HELLO
 * @t: dextd's socket and timeouts
 * @lean: ask for a lean channel (DEXT_WIRE_FEAT_LEAN); whether dextd
 *        granted it is in the channel's @lean
 * @out: receives the channel (free with dext_unix_channel_free())
 *
 * Blocks for the connect and one round trip, each for at most
 * @t->connect_ms; the channel's later round trips are bounded by it too
 * until dext_unix_channel_use_call_timeout().  Only a daemon run by root
 * or by our own user is talked to.
 *
 * Return: kIOReturnSuccess; kIOReturnNotPermitted if the socket or the
 * daemon refuses us, or the daemon is not trusted; kIOReturnNotResponding
 * if nobody answers; kIOReturnTimeout if dextd does not answer in time;
 * kIOReturnIPCError for a malformed or incompatible
 * answer; kIOReturnNoMemory / kIOReturnNoResources.
 */
IOReturn dext_unix_channel_open(const UnixTarget *t, bool lean,
                                UnixChannel **out);

/**
 * dext_unix_channel_use_call_timeout() - bound @ch's later round trips
 * by its target's call timeout instead of the connect timeout
 * @ch: the channel, connected
 *
 * Return: nothing.
 */
void dext_unix_channel_use_call_timeout(UnixChannel *ch);

/**
 * dext_unix_channel_connect() - dext_unix_channel_open() on the socket a
 * target argument names, asking for a lean channel
 * @arg: as dext_unix_resolve_path()
 * @out: receives the channel
 *
 * Return: as dext_unix_resolve_path() and dext_unix_channel_open().
 */
IOReturn dext_unix_channel_connect(const char *arg, UnixChannel **out);

/**
 * dext_unix_channel_attach() - a new channel bound to an open session
 * @t: dextd's socket and timeouts
 * @token: the session's token (DEXT_WIRE_TOKEN_SIZE bytes), from OPEN
 * @lean: as dext_unix_channel_open()
 * @out: receives the channel
 *
 * Blocks for the connect and two round trips.  The token is wiped from
 * the channel's buffers before this returns.
 *
 * Return: as dext_unix_channel_open(), or the status dextd refused the
 * ATTACH with.
 */
IOReturn dext_unix_channel_attach(const UnixTarget *t,
                                  const uint8_t *token, bool lean,
                                  UnixChannel **out);

/**
 * dext_unix_channel_roundtrip() - send the request in @ch->tx, receive
 * its reply
 * @ch: the channel
 * @len: the request's length as its encoder returned it (negative: the
 *       encoding failed, nothing is sent)
 * @send_fd: an fd to pass with the request, or -1
 * @type: the reply type expected (the request's)
 * @h: receives the reply's header
 * @recv_fd: receives the fd sent with the reply (-1 if none); NULL if
 *           the reply may carry none (a reply with one is malformed)
 *
 * Blocks until the reply arrives or the daemon goes, or the channel's
 * timeout passes.  On success the reply's payload is at
 * dext_unix_channel_payload().
 *
 * Return: kIOReturnSuccess; kIOReturnInternalError for a negative @len
 * (the channel is still usable); kIOReturnNotResponding if the daemon is
 * gone; kIOReturnTimeout if it did not answer in time (it may still be
 * executing the request: the channel must be dropped, so that its late
 * reply is never taken for another's); the status of an ERROR reply; kIOReturnIPCError for anything
 * malformed.  After any other failure the channel must not be used
 * again.
 */
IOReturn dext_unix_channel_roundtrip(UnixChannel *ch, int len, int send_fd,
                                     uint16_t type, DextWireHeader *h,
                                     int *recv_fd);

/**
 * dext_unix_channel_status() - the answer of a round trip whose reply is
 * just an IOReturn (ATTACH, RING)
 * @ch: the channel
 * @ret: what dext_unix_channel_roundtrip() returned
 * @h: the reply's header it filled in
 *
 * Return: @ret if the round trip failed; else the reply's status, or
 * kIOReturnIPCError if the payload is not one.
 */
IOReturn dext_unix_channel_status(const UnixChannel *ch, IOReturn ret,
                                  const DextWireHeader *h);

/**
 * dext_unix_reply_check() - check the header of a reply received whole
 * @buf: the message
 * @n: its length
 * @seq: the request's sequence number
 * @type: the request's type
 * @version: the protocol version the reply must carry
 * @h: receives the header
 *
 * Return: kIOReturnSuccess for the reply to that request; the status of
 * an ERROR reply to it; kIOReturnIPCError for anything else.
 */
IOReturn dext_unix_reply_check(const uint8_t *buf, size_t n, uint64_t seq,
                               uint16_t type, uint16_t version,
                               DextWireHeader *h);

/**
 * dext_unix_channel_recv() - receive one message into @ch->rx
 * @ch: the channel
 * @flags: extra recvmsg() flags (MSG_DONTWAIT, say)
 * @fds: receives up to UNIX_MAX_FDS fds sent with it; NULL to take none
 *       (any that come are closed)
 * @nfds: receives how many were stored in @fds
 * @trunc: set if the message or its fds did not fit
 *
 * A reset peer's last message is still read: dextd refuses a client by
 * sending ERROR and closing at once.
 *
 * Return: the message's length; 0 for EOF or a reset peer with nothing
 * queued; -1 for any other failure.
 */
ssize_t dext_unix_channel_recv(UnixChannel *ch, int flags, int *fds,
                               int *nfds, bool *trunc);

/**
 * dext_unix_channel_free() - close and free a channel (NULL is ignored)
 * @ch: the channel
 *
 * Return: nothing.
 */
void dext_unix_channel_free(UnixChannel *ch);

/**
 * dext_unix_channel_payload() - the payload of the reply in @ch->rx
 * @ch: the channel, after a successful dext_unix_channel_roundtrip()
 *
 * Return: a pointer into @ch->rx, past the header.
 */
static inline const uint8_t *dext_unix_channel_payload(const UnixChannel *ch)
{
    return ch->rx + DEXT_WIRE_HEADER_SIZE;
}

#endif /* LIBDEXT_TRANSPORT_SOCK_CHANNEL_H */
