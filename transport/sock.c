/*
 * SPDX-License-Identifier: MIT
 *
 * The "unix" transport: the dext's user-client primitives served by
 * dextd over an AF_UNIX SOCK_SEQPACKET socket (protocol/dext-wire.h).
 *
 * A connection (one user client) owns a small pool of channels, each a
 * socket attached to the same daemon session.  A call takes an idle
 * channel without locking (an atomic bitmask), does exactly one
 * sendmsg() and one recvmsg() into the channel's own buffers, and gives
 * the channel back, so concurrent callers only ever share a socket when
 * the pool is at its cap.  A channel whose reply cannot be trusted is
 * closed; a daemon that went away marks the whole connection dead.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "apple-dext-client.h"
#include "protocol/dext-wire.h"
#include "support/fds.h"
#include "transport/common.h"
#include "transport/transport.h"

/* Channels per connection; concurrent callers beyond this wait. */
#define UNIX_MAX_CHANNELS 16

/* Room for a few fds so that surplus ones are received and closed. */
#define UNIX_MAX_FDS 4

/* How long close waits for dextd to release the session. */
#define UNIX_CLOSE_TIMEOUT_MS 5000

typedef struct UnixChannel {
    int fd;
    int slot;
    pid_t peer_pid;             /* from SO_PEERCRED */
    uint16_t version;           /* negotiated by this channel's HELLO */
    uint64_t seq;
    uint8_t tx[DEXT_WIRE_MAX_MSG];
    uint8_t rx[DEXT_WIRE_MAX_MSG];
} UnixChannel;

typedef struct UnixConn {
    DextTransport base;
    struct sockaddr_un addr;    /* dextd's socket, for new channels */
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];

    atomic_bool dead;
    atomic_uint idle;           /* bit i: chans[i] is open and free */
    atomic_uint waiters;        /* callers sleeping on @cond */
    atomic_int refs;            /* the transport + each live wake */

    pthread_mutex_t lock;       /* protects the fields below */
    pthread_cond_t cond;
    UnixChannel *chans[UNIX_MAX_CHANNELS];
    uint32_t used;              /* bit i: slot i holds or is getting one */
    unsigned cap;               /* lowered when the daemon refuses more */
    unsigned inflight;          /* wake_destroy round trips running */
    bool closed;

    DextMappingList maps;
} UnixConn;

typedef struct UnixWake {
    DextWake base;
    int peer;                   /* our copy of dextd's end: never a HUP */
    UnixConn *conn;
    uint32_t port;
} UnixWake;

/* ---------------------------------------------------------------------
 * Sockets
 * ------------------------------------------------------------------- */

static IOReturn resolve_path(const char *arg, struct sockaddr_un *sa)
{
    const char *path = (arg != NULL && arg[0] != '\0') ?
                       arg : dext_wire_default_socket_path();
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(sa->sun_path)) {
        return kIOReturnBadArgument;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, len + 1);
    return kIOReturnSuccess;
}

/* Wait for an interrupted connect() to finish, as connect(2) advises. */
static int connect_finish(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    socklen_t len = sizeof(int);
    int err = 0;

    while (poll(&pfd, 1, -1) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        return -1;
    }
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

static void channel_free(UnixChannel *ch)
{
    if (ch != NULL) {
        if (ch->fd >= 0) {
            close(ch->fd);
        }
        free(ch);
    }
}

/*
 * Finish a receive that returned @n: a reset peer may still have queued
 * a refusal behind the reset (see below).  @fds may be NULL when the
 * caller takes none; any that arrive then are closed.
 */
static ssize_t channel_recv_result(UnixChannel *ch, ssize_t n, int flags,
                                   int *fds, int *nfds, bool *trunc)
{
    int spare[UNIX_MAX_FDS];

    if (n < 0 && errno == ECONNRESET) {
        /*
         * dextd refuses a peer by sending ERROR and closing; if our HELLO
         * was still unread there, the kernel reports the reset first but
         * the ERROR is still queued behind it.  Read it, so a refusal is
         * reported as itself and not as a dead daemon.
         */
        n = dext_wire_recvmsg(ch->fd, ch->rx, sizeof(ch->rx),
                              flags | MSG_DONTWAIT, fds ? fds : spare,
                              UNIX_MAX_FDS, nfds, trunc);
        if (fds == NULL) {
            dext_close_fds(spare, *nfds);
            *nfds = 0;
        }
        return n > 0 ? n : 0;
    }
    if (n < 0) {
        return errno == ENOTCONN ? 0 : -1;
    }
    return n;
}

/*
 * Receive one message into @ch->rx.  Returns its length, 0 for EOF or a
 * reset peer, or -1 for any other failure; fds as dext_wire_recvmsg().
 */
static ssize_t channel_recv(UnixChannel *ch, int flags, int *fds, int *nfds,
                            bool *trunc)
{
    ssize_t n = dext_wire_recvmsg(ch->fd, ch->rx, sizeof(ch->rx), flags, fds,
                                  UNIX_MAX_FDS, nfds, trunc);

    return channel_recv_result(ch, n, flags, fds, nfds, trunc);
}

/*
 * channel_recv() for a reply that may not carry an fd (every CALL): a
 * plain recv() skips the msghdr and control-message work of recvmsg(),
 * a measurable part of a round trip.  An fd a faulty daemon attaches
 * anyway is never installed in our table: without a control buffer the
 * kernel drops it.  MSG_TRUNC makes recv() report the full length, so
 * truncation is still seen.
 */
static ssize_t channel_recv_nofd(UnixChannel *ch, int *nfds, bool *trunc)
{
    ssize_t n;

    do {
        n = recv(ch->fd, ch->rx, sizeof(ch->rx), MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    *nfds = 0;
    *trunc = n > (ssize_t)sizeof(ch->rx);
    if (*trunc) {
        n = sizeof(ch->rx);
    }
    return channel_recv_result(ch, n, 0, NULL, nfds, trunc);
}

/*
 * One request/reply exchange on @ch: the request (@len bytes) is in
 * @ch->tx.  On success the reply of @type is in @ch->rx, its header in
 * *@h, and *@recv_fd holds the fd sent with it (-1 if none; a reply with
 * an fd where @recv_fd is NULL is malformed).
 *
 * Return: kIOReturnSuccess; kIOReturnNotResponding if the daemon is
 * gone; the status of an ERROR reply; kIOReturnIPCError for anything
 * malformed.  After a failure the channel must not be used again.
 */
static IOReturn channel_roundtrip(UnixChannel *ch, size_t len, int send_fd,
                                  uint16_t type, DextWireHeader *h,
                                  int *recv_fd)
{
    uint64_t seq = dext_wire_peek_seq(ch->tx, len);
    uint16_t want_version = type == DEXT_WIRE_HELLO ?
                            DEXT_WIRE_VERSION_HELLO : ch->version;
    int fds[UNIX_MAX_FDS];
    int nfds = 0;
    bool trunc;
    ssize_t n;
    IOReturn ret;

    if (recv_fd != NULL) {
        *recv_fd = -1;
    }
    ret = dext_wire_send(ch->fd, ch->tx, (int)len, send_fd);
    if (ret == kIOReturnNotResponding) {
        /*
         * A daemon that refuses us sends an ERROR and closes at once;
         * pick that up rather than reporting a vanished daemon.
         */
        n = channel_recv(ch, MSG_DONTWAIT, fds, &nfds, &trunc);
        dext_close_fds(fds, nfds);
        if (n > 0 && !trunc && dext_wire_decode_header(ch->rx, n, h) == 0 &&
            h->type == DEXT_WIRE_ERROR &&
            dext_wire_decode_status_only(ch->rx + DEXT_WIRE_HEADER_SIZE,
                                         h->length, &ret) == 0 &&
            ret != kIOReturnSuccess) {
            return ret;
        }
        return kIOReturnNotResponding;
    }
    if (ret != kIOReturnSuccess) {
        return ret;
    }

    n = recv_fd != NULL ? channel_recv(ch, 0, fds, &nfds, &trunc)
                        : channel_recv_nofd(ch, &nfds, &trunc);
    if (n == 0) {
        dext_close_fds(fds, nfds);
        return kIOReturnNotResponding;
    }
    if (n < 0 || trunc || dext_wire_decode_header(ch->rx, n, h) != 0) {
        dext_close_fds(fds, nfds);
        return kIOReturnIPCError;
    }
    if (h->type == DEXT_WIRE_ERROR) {
        dext_close_fds(fds, nfds);
        if ((h->seq != seq && h->seq != 0) ||
            dext_wire_decode_status_only(ch->rx + DEXT_WIRE_HEADER_SIZE,
                                         h->length, &ret) != 0 ||
            ret == kIOReturnSuccess) {
            return kIOReturnIPCError;
        }
        return ret;
    }
    if (h->type != type || h->seq != seq || h->version != want_version ||
        !(h->flags & DEXT_WIRE_FLAG_REPLY) ||
        nfds > (recv_fd != NULL ? 1 : 0)) {
        dext_close_fds(fds, nfds);
        return kIOReturnIPCError;
    }
    if (nfds == 1) {
        *recv_fd = fds[0];
    }
    return kIOReturnSuccess;
}

static const uint8_t *reply_payload(const UnixChannel *ch)
{
    return ch->rx + DEXT_WIRE_HEADER_SIZE;
}

/* Connect to dextd at @sa, check who it is and agree on a version. */
static IOReturn channel_open(const struct sockaddr_un *sa, UnixChannel **out)
{
    DextWireHello hello = {
        .min_version = DEXT_WIRE_VERSION_MIN,
        .max_version = DEXT_WIRE_VERSION_MAX,
        .features = DEXT_WIRE_FEATURES_V1,
    };
    DextWireHelloReply reply;
    DextWireHeader h;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    UnixChannel *ch;
    IOReturn ret;
    int len;

    ch = malloc(sizeof(*ch));
    if (ch == NULL) {
        return kIOReturnNoMemory;
    }
    ch->slot = -1;
    ch->seq = 0;
    ch->version = 0;
    ch->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (ch->fd < 0) {
        free(ch);
        return kIOReturnNoResources;
    }
    if (connect(ch->fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 &&
        (errno != EINTR || connect_finish(ch->fd) < 0)) {
        ret = (errno == EACCES || errno == EPERM) ? kIOReturnNotPermitted
                                                  : kIOReturnNotResponding;
        channel_free(ch);
        return ret;
    }

    /*
     * Anyone may bind a socket at a predictable path: talk only to a
     * daemon run by root or by ourselves.
     */
    if (getsockopt(ch->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
        channel_free(ch);
        return kIOReturnNotResponding;
    }
    if (cred.uid != 0 && cred.uid != geteuid()) {
        channel_free(ch);
        return kIOReturnNotPermitted;
    }
    ch->peer_pid = cred.pid;

    len = dext_wire_encode_hello(ch->tx, sizeof(ch->tx), ++ch->seq, &hello);
    if (len < 0) {
        channel_free(ch);
        return kIOReturnInternalError;
    }
    ret = channel_roundtrip(ch, len, -1, DEXT_WIRE_HELLO, &h, NULL);
    if (ret == kIOReturnSuccess &&
        dext_wire_decode_hello_reply(reply_payload(ch), h.length,
                                     &reply) != 0) {
        ret = kIOReturnIPCError;
    }
    if (ret == kIOReturnSuccess) {
        ret = reply.status;
    }
    if (ret == kIOReturnSuccess &&
        (reply.version < DEXT_WIRE_VERSION_MIN ||
         reply.version > DEXT_WIRE_VERSION_MAX)) {
        ret = kIOReturnIPCError;
    }
    if (ret != kIOReturnSuccess) {
        channel_free(ch);
        return ret;
    }
    ch->version = reply.version;
    *out = ch;
    return kIOReturnSuccess;
}

/* channel_open() on the socket a target argument names ("" = default). */
static IOReturn channel_connect(const char *arg, UnixChannel **out)
{
    struct sockaddr_un sa;
    IOReturn ret = resolve_path(arg, &sa);

    return ret == kIOReturnSuccess ? channel_open(&sa, out) : ret;
}

/* Bind a fresh channel to the session named by @token. */
static IOReturn channel_attach(const struct sockaddr_un *sa,
                               const uint8_t *token, UnixChannel **out)
{
    DextWireAttach m;
    DextWireHeader h;
    UnixChannel *ch;
    IOReturn ret;
    IOReturn status;
    int len;

    ret = channel_open(sa, &ch);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    memcpy(m.token, token, DEXT_WIRE_TOKEN_SIZE);
    len = dext_wire_encode_attach(ch->tx, sizeof(ch->tx), ch->version,
                                  ++ch->seq, &m);
    memset(&m, 0, sizeof(m));
    ret = len < 0 ? kIOReturnInternalError :
          channel_roundtrip(ch, len, -1, DEXT_WIRE_ATTACH, &h, NULL);
    /* The token must not linger in a buffer we keep. */
    memset(ch->tx, 0, DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_ATTACH_SIZE);
    if (ret == kIOReturnSuccess &&
        dext_wire_decode_status_only(reply_payload(ch), h.length,
                                     &status) != 0) {
        ret = kIOReturnIPCError;
    }
    if (ret == kIOReturnSuccess) {
        ret = status;
    }
    if (ret != kIOReturnSuccess) {
        channel_free(ch);
        return ret;
    }
    *out = ch;
    return kIOReturnSuccess;
}

/* ---------------------------------------------------------------------
 * The channel pool
 * ------------------------------------------------------------------- */

static UnixConn *conn_of(DextTransport *t)
{
    return (UnixConn *)t;
}

static int conn_take_idle(UnixConn *c)
{
    unsigned m = atomic_load(&c->idle);

    while (m != 0) {
        unsigned bit = m & -m;

        if (atomic_compare_exchange_weak(&c->idle, &m, m & ~bit)) {
            return __builtin_ctz(bit);
        }
    }
    return -1;
}

/* Slow path of conn_get(): grow the pool or wait for a free channel. */
static IOReturn conn_get_slow(UnixConn *c, UnixChannel **out)
{
    IOReturn ret;
    int slot;

    pthread_mutex_lock(&c->lock);
    /*
     * Count ourselves as a waiter before looking again, so a channel
     * released after that look sees us and wakes us.
     */
    atomic_fetch_add(&c->waiters, 1);
    for (;;) {
        if (atomic_load(&c->dead)) {
            ret = kIOReturnNotResponding;
            break;
        }
        slot = conn_take_idle(c);
        if (slot >= 0) {
            *out = c->chans[slot];
            ret = kIOReturnSuccess;
            break;
        }
        if ((unsigned)__builtin_popcount(c->used) < c->cap) {
            UnixChannel *ch = NULL;

            slot = __builtin_ctz(~c->used);
            c->used |= 1u << slot;
            pthread_mutex_unlock(&c->lock);
            ret = channel_attach(&c->addr, c->token, &ch);
            pthread_mutex_lock(&c->lock);
            if (ret == kIOReturnSuccess) {
                ch->slot = slot;
                c->chans[slot] = ch;
                *out = ch;
                break;
            }
            c->used &= ~(1u << slot);
            pthread_cond_broadcast(&c->cond);
            if (c->used == 0 || ret == kIOReturnNotResponding) {
                /* dextd is gone, or with no channel left so is the session. */
                atomic_store(&c->dead, true);
                ret = kIOReturnNotResponding;
                break;
            }
            /* Make do with the channels we have. */
            c->cap = __builtin_popcount(c->used);
            continue;
        }
        pthread_cond_wait(&c->cond, &c->lock);
    }
    atomic_fetch_sub(&c->waiters, 1);
    pthread_mutex_unlock(&c->lock);
    return ret;
}

static IOReturn conn_get(UnixConn *c, UnixChannel **out)
{
    int slot;

    if (atomic_load(&c->dead)) {
        return kIOReturnNotResponding;
    }
    slot = conn_take_idle(c);
    if (slot >= 0) {
        *out = c->chans[slot];
        return kIOReturnSuccess;
    }
    return conn_get_slow(c, out);
}

static void conn_put(UnixConn *c, UnixChannel *ch)
{
    atomic_fetch_or(&c->idle, 1u << ch->slot);
    if (atomic_load(&c->waiters) != 0) {
        pthread_mutex_lock(&c->lock);
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
    }
}

/* Drop a channel that can no longer be trusted. */
static void conn_kill(UnixConn *c, UnixChannel *ch, IOReturn why)
{
    if (why == kIOReturnNotResponding) {
        atomic_store(&c->dead, true);
    }
    pthread_mutex_lock(&c->lock);
    c->chans[ch->slot] = NULL;
    c->used &= ~(1u << ch->slot);
    if (c->used == 0) {
        /* The last channel held the session; it is gone with it. */
        atomic_store(&c->dead, true);
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    channel_free(ch);
}

/*
 * Exchange the request in @ch->tx on a pooled channel.  On failure the
 * channel is dropped (and the connection marked dead if the daemon is
 * gone); on success the caller decodes the reply and then calls
 * conn_put(), or conn_kill() if the reply does not decode.
 */
static IOReturn conn_exchange(UnixConn *c, UnixChannel *ch, int len,
                              int send_fd, uint16_t type, DextWireHeader *h,
                              int *recv_fd)
{
    IOReturn ret;

    if (len < 0) {
        conn_put(c, ch);
        return kIOReturnInternalError;
    }
    ret = channel_roundtrip(ch, len, send_fd, type, h, recv_fd);
    if (ret != kIOReturnSuccess) {
        conn_kill(c, ch, ret);
    }
    return ret;
}

static void conn_unref(UnixConn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1) {
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->cond);
        memset(c->token, 0, sizeof(c->token));
        free(c);
    }
}

/* ---------------------------------------------------------------------
 * Hooks
 * ------------------------------------------------------------------- */

static IOReturn unix_list_services(const char *arg, uint64_t *ids,
                                   uint32_t max, uint32_t *count)
{
    DextWireListReply *reply;
    DextWireHeader h;
    UnixChannel *ch;
    IOReturn ret;
    uint32_t i;
    int len;

    if (count == NULL || (ids == NULL && max > 0)) {
        return kIOReturnBadArgument;
    }
    ret = channel_connect(arg, &ch);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    /* Too big for the stack of a caller we do not know. */
    reply = malloc(sizeof(*reply));
    if (reply == NULL) {
        channel_free(ch);
        return kIOReturnNoMemory;
    }
    len = dext_wire_encode_empty(ch->tx, sizeof(ch->tx), ch->version,
                                 ++ch->seq, DEXT_WIRE_LIST);
    ret = len < 0 ? kIOReturnInternalError :
          channel_roundtrip(ch, len, -1, DEXT_WIRE_LIST, &h, NULL);
    if (ret == kIOReturnSuccess &&
        dext_wire_decode_list_reply(reply_payload(ch), h.length,
                                    reply) != 0) {
        ret = kIOReturnIPCError;
    }
    if (ret == kIOReturnSuccess) {
        ret = reply->status;
    }
    if (ret == kIOReturnSuccess) {
        for (i = 0; i < reply->count && i < max; i++) {
            ids[i] = reply->ids[i];
        }
        *count = reply->total;
    }
    free(reply);
    channel_free(ch);
    return ret;
}

static IOReturn unix_open(const char *arg, uint64_t id, uint32_t type,
                          DextTransport **out)
{
    DextWireOpen m = { .service_id = id, .type = type };
    DextWireOpenReply reply;
    struct sockaddr_un sa;
    DextWireHeader h;
    UnixChannel *ch;
    UnixConn *c;
    IOReturn ret;
    int len;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    ret = resolve_path(arg, &sa);
    if (ret == kIOReturnSuccess) {
        ret = channel_open(&sa, &ch);
    }
    if (ret != kIOReturnSuccess) {
        return ret;
    }

    /*
     * DMA regions name our memory; dextd reaches it with
     * process_vm_readv/writev, which Yama restricts to declared tracers.
     * EINVAL means Yama is absent and there is nothing to declare.
     */
    if (ch->peer_pid > 0) {
        (void)prctl(PR_SET_PTRACER, (unsigned long)ch->peer_pid, 0, 0, 0);
    }

    len = dext_wire_encode_open(ch->tx, sizeof(ch->tx), ch->version,
                                ++ch->seq, &m);
    ret = len < 0 ? kIOReturnInternalError :
          channel_roundtrip(ch, len, -1, DEXT_WIRE_OPEN, &h, NULL);
    if (ret == kIOReturnSuccess &&
        dext_wire_decode_open_reply(reply_payload(ch), h.length,
                                    &reply) != 0) {
        ret = kIOReturnIPCError;
    }
    if (ret == kIOReturnSuccess) {
        ret = reply.status;
    }
    if (ret != kIOReturnSuccess) {
        channel_free(ch);
        return ret;
    }
    memset(ch->rx, 0, DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_OPEN_REPLY_SIZE);

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        memset(&reply, 0, sizeof(reply));
        channel_free(ch);
        return kIOReturnNoMemory;
    }
    c->base.ops = &dext_transport_unix;
    c->addr = sa;
    memcpy(c->token, reply.token, sizeof(c->token));
    memset(&reply, 0, sizeof(reply));
    atomic_init(&c->dead, false);
    atomic_init(&c->idle, 1u);
    atomic_init(&c->waiters, 0);
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    dext_mappings_init(&c->maps);
    ch->slot = 0;
    c->chans[0] = ch;
    c->used = 1u;
    c->cap = UNIX_MAX_CHANNELS;
    *out = &c->base;
    return kIOReturnSuccess;
}

static IOReturn unix_do_call(UnixConn *c, uint32_t selector, bool async,
                             uint32_t port, const DextCallArgs *args)
{
    DextWireCall m;
    DextWireCallReply reply;
    DextWireHeader h;
    UnixChannel *ch;
    uint32_t out_cap;
    size_t sout_cap;
    IOReturn ret;
    int len;

    if (args == NULL || args->scalar_in_cnt > DEXT_MAX_SCALARS ||
        args->struct_in_size > DEXT_MAX_STRUCT ||
        (args->scalar_in_cnt > 0 && args->scalar_in == NULL) ||
        (args->struct_in_size > 0 && args->struct_in == NULL)) {
        return kIOReturnBadArgument;
    }
    out_cap = args->scalar_out_cnt ? *args->scalar_out_cnt : 0;
    sout_cap = args->struct_out_size ? *args->struct_out_size : 0;
    /* As IOKit: more room than the limit is just the limit. */
    if (out_cap > DEXT_MAX_SCALARS) {
        out_cap = DEXT_MAX_SCALARS;
    }
    if (sout_cap > DEXT_MAX_STRUCT) {
        sout_cap = DEXT_MAX_STRUCT;
    }
    if ((out_cap > 0 && args->scalar_out == NULL) ||
        (sout_cap > 0 && args->struct_out == NULL)) {
        return kIOReturnBadArgument;
    }

    m.port = port;
    m.selector = selector;
    m.scalar_in_cnt = args->scalar_in_cnt;
    m.scalar_out_cap = out_cap;
    m.struct_in_len = (uint32_t)args->struct_in_size;
    m.struct_out_cap = (uint32_t)sout_cap;
    if (args->scalar_in_cnt > 0) {
        memcpy(m.scalar_in, args->scalar_in,
               args->scalar_in_cnt * sizeof(uint64_t));
    }
    m.struct_in = args->struct_in;

    ret = conn_get(c, &ch);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    len = dext_wire_encode_call(ch->tx, sizeof(ch->tx), ch->version,
                                ++ch->seq, async, &m);
    ret = conn_exchange(c, ch, len, -1,
                        async ? DEXT_WIRE_CALL_ASYNC : DEXT_WIRE_CALL, &h,
                        NULL);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (dext_wire_decode_call_reply(reply_payload(ch), h.length,
                                    &reply) != 0 ||
        reply.scalar_out_cnt > out_cap || reply.struct_out_len > sout_cap) {
        conn_kill(c, ch, kIOReturnIPCError);
        return kIOReturnIPCError;
    }
    if (args->scalar_out_cnt != NULL) {
        if (reply.scalar_out_cnt > 0) {
            memcpy(args->scalar_out, reply.scalar_out,
                   reply.scalar_out_cnt * sizeof(uint64_t));
        }
        *args->scalar_out_cnt = reply.scalar_out_cnt;
    }
    if (args->struct_out_size != NULL) {
        if (reply.struct_out_len > 0) {
            memcpy(args->struct_out, reply.struct_out, reply.struct_out_len);
        }
        *args->struct_out_size = reply.struct_out_len;
    }
    conn_put(c, ch);
    return reply.status;
}

static IOReturn unix_call(DextTransport *t, uint32_t selector,
                          const DextCallArgs *args)
{
    if (t == NULL) {
        return kIOReturnBadArgument;
    }
    return unix_do_call(conn_of(t), selector, false, 0, args);
}

static IOReturn unix_call_async(DextTransport *t, uint32_t selector,
                                DextWake *wake, const DextCallArgs *args)
{
    UnixWake *w = (UnixWake *)wake;

    if (t == NULL || w == NULL || w->conn != conn_of(t)) {
        return kIOReturnBadArgument;
    }
    return unix_do_call(conn_of(t), selector, true, w->port, args);
}

/* Each completion is one message; read them all. */
static uint64_t unix_wake_consume(DextWake *wake)
{
    uint64_t v, count = 0;
    ssize_t n;

    for (;;) {
        n = recv(wake->fd, &v, sizeof(v), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return count;
        }
        count++;
    }
}

static void unix_wake_destroy(DextWake *wake)
{
    UnixWake *w = (UnixWake *)wake;
    UnixConn *c = w->conn;
    bool live;

    pthread_mutex_lock(&c->lock);
    live = !c->closed && !atomic_load(&c->dead);
    if (live) {
        c->inflight++;
    }
    pthread_mutex_unlock(&c->lock);

    if (live) {
        DextWireHeader h;
        UnixChannel *ch;
        IOReturn status;

        /* Best effort: the port also goes when the session closes. */
        if (conn_get(c, &ch) == kIOReturnSuccess) {
            int len = dext_wire_encode_wake_unregister(ch->tx, sizeof(ch->tx),
                                                       ch->version, ++ch->seq,
                                                       w->port);

            if (conn_exchange(c, ch, len, -1, DEXT_WIRE_WAKE_UNREGISTER, &h,
                              NULL) == kIOReturnSuccess) {
                if (dext_wire_decode_status_only(reply_payload(ch), h.length,
                                                 &status) == 0) {
                    conn_put(c, ch);
                } else {
                    conn_kill(c, ch, kIOReturnIPCError);
                }
            }
        }
        pthread_mutex_lock(&c->lock);
        c->inflight--;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
    }
    close(w->base.fd);
    close(w->peer);
    free(w);
    conn_unref(c);
}

static const DextWakeOps unix_wake_ops = {
    .consume = unix_wake_consume,
    .destroy = unix_wake_destroy,
};

/*
 * A wake target is one end of a SOCK_SEQPACKET socketpair; the other end
 * is registered once with the session as a numbered port, so each re-arm
 * is a plain CALL_ASYNC naming the port instead of passing the fd again.
 * A socket (not an eventfd) because dextd completes with a per-call
 * MSG_DONTWAIT send that nothing on our side can turn into a block.
 */
static IOReturn unix_wake_create(DextTransport *t, DextWake **out)
{
    UnixConn *c = conn_of(t);
    DextWireWakeReply reply;
    DextWireHeader h;
    UnixChannel *ch;
    int pair[2] = { -1, -1 };
    UnixWake *w;
    IOReturn ret;
    int len;

    if (t == NULL || out == NULL) {
        return kIOReturnBadArgument;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return kIOReturnNoMemory;
    }
    w->peer = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   pair) < 0) {
        free(w);
        return kIOReturnNoResources;
    }
    w->base.ops = &unix_wake_ops;
    w->base.fd = pair[0];
    ret = conn_get(c, &ch);
    if (ret != kIOReturnSuccess) {
        goto fail;
    }
    len = dext_wire_encode_empty(ch->tx, sizeof(ch->tx), ch->version,
                                 ++ch->seq, DEXT_WIRE_WAKE_REGISTER);
    ret = conn_exchange(c, ch, len, pair[1], DEXT_WIRE_WAKE_REGISTER, &h,
                        NULL);
    /*
     * Keep dextd's end open here too: when the session closes or dextd
     * dies, our end must not poll readable (EOF) forever, exactly as an
     * eventfd would stay quiet.
     */
    w->peer = pair[1];
    pair[1] = -1;
    if (ret != kIOReturnSuccess) {
        goto fail;
    }
    if (dext_wire_decode_wake_reply(reply_payload(ch), h.length,
                                    &reply) != 0) {
        conn_kill(c, ch, kIOReturnIPCError);
        ret = kIOReturnIPCError;
        goto fail;
    }
    conn_put(c, ch);
    ret = reply.status;
    if (ret != kIOReturnSuccess) {
        goto fail;
    }
    w->port = reply.port;
    w->conn = c;
    atomic_fetch_add(&c->refs, 1);
    *out = &w->base;
    return kIOReturnSuccess;

fail:
    close(w->base.fd);
    if (pair[1] >= 0) {
        close(pair[1]);
    }
    if (w->peer >= 0) {
        close(w->peer);
    }
    free(w);
    return ret;
}

static IOReturn unix_map(DextTransport *t, uint32_t type, uint32_t options,
                         mach_vm_address_t *addr, mach_vm_size_t *size)
{
    UnixConn *c = conn_of(t);
    DextWireMap m = { .mem_type = type, .options = options };
    DextWireMapReply reply;
    DextWireHeader h;
    UnixChannel *ch;
    IOReturn ret;
    long page = sysconf(_SC_PAGESIZE);
    DextMemory mem;
    int fd;
    int len;

    if (t == NULL || addr == NULL || size == NULL) {
        return kIOReturnBadArgument;
    }
    ret = conn_get(c, &ch);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    len = dext_wire_encode_map(ch->tx, sizeof(ch->tx), ch->version,
                               ++ch->seq, &m);
    ret = conn_exchange(c, ch, len, -1, DEXT_WIRE_MAP, &h, &fd);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    /* Success comes with exactly one fd; failure with none. */
    if (dext_wire_decode_map_reply(reply_payload(ch), h.length,
                                   &reply) != 0 ||
        (reply.status == kIOReturnSuccess) != (fd >= 0) ||
        (page > 0 && reply.offset % (uint64_t)page != 0) ||
        reply.size > SIZE_MAX || reply.offset > (uint64_t)INT64_MAX) {
        if (fd >= 0) {
            close(fd);
        }
        conn_kill(c, ch, kIOReturnIPCError);
        return kIOReturnIPCError;
    }
    conn_put(c, ch);
    if (reply.status != kIOReturnSuccess) {
        return reply.status;
    }

    mem.fd = fd;
    mem.offset = reply.offset;
    mem.size = reply.size;
    mem.writable = (reply.flags & DEXT_WIRE_MAP_WRITABLE) != 0;
    return dext_mappings_map(&c->maps, type, &mem, addr, size);
}

static IOReturn unix_unmap(DextTransport *t, uint32_t type,
                           mach_vm_address_t addr)
{
    if (t == NULL) {
        return kIOReturnBadArgument;
    }
    return dext_mappings_unmap(&conn_of(t)->maps, type, addr);
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
    struct pollfd pfd[UNIX_MAX_CHANNELS];
    struct timespec start, now;
    int idx[UNIX_MAX_CHANNELS];
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

                eof = channel_recv(ch, MSG_DONTWAIT, fds, &nfds, &trunc) == 0
                      || eof;
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
        channel_free(chans[i]);
        chans[i] = NULL;
    }
}

static void unix_close(DextTransport *t)
{
    UnixConn *c = conn_of(t);

    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    while (c->inflight > 0) {
        pthread_cond_wait(&c->cond, &c->lock);
    }
    /* Closing the sockets is what tells dextd to end the session. */
    close_channels_sync(c->chans, UNIX_MAX_CHANNELS);
    c->used = 0;
    atomic_store(&c->idle, 0);
    atomic_store(&c->dead, true);
    pthread_mutex_unlock(&c->lock);

    dext_mappings_destroy(&c->maps);
    conn_unref(c);
}

/* ---------------------------------------------------------------------
 * Tools
 * ------------------------------------------------------------------- */

/* The counters of the dextd at @path ("" or NULL: the default socket). */
static IOReturn query_status(const char *path, DextWireStatusReply *out)
{
    DextWireHeader h;
    UnixChannel *ch;
    IOReturn ret;
    int len;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    ret = channel_connect(path, &ch);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    len = dext_wire_encode_empty(ch->tx, sizeof(ch->tx), ch->version,
                                 ++ch->seq, DEXT_WIRE_STATUS);
    ret = len < 0 ? kIOReturnInternalError :
          channel_roundtrip(ch, len, -1, DEXT_WIRE_STATUS, &h, NULL);
    if (ret == kIOReturnSuccess &&
        dext_wire_decode_status_reply(reply_payload(ch), h.length,
                                      out) != 0) {
        ret = kIOReturnIPCError;
    }
    if (ret == kIOReturnSuccess) {
        ret = out->status;
    }
    channel_free(ch);
    return ret;
}

static IOReturn unix_status(const char *arg, AppleDextStatus *out)
{
    DextWireStatusReply st;
    IOReturn ret;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    ret = query_status(arg, &st);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    memset(out, 0, sizeof(*out));
    out->protocol_version = st.version;
    out->server_pid = st.pid;
    out->devices = st.devices;
    out->sessions = st.sessions;
    out->claims = st.claims;
    out->dma_regions = st.dma_regions;
    out->dma_region_bytes = st.dma_region_bytes;
    out->dma_buffers = st.dma_buffers;
    out->irq_sessions = st.irq_sessions;
    out->iommu_faults = st.iommu_faults;
    out->irqs_raised = st.irqs_raised;
    out->irqs_dropped = st.irqs_dropped;
    out->channels = st.channels;
    return kIOReturnSuccess;
}

const DextTransportOps dext_transport_unix = {
    .name = "unix",
    .list_services = unix_list_services,
    .status = unix_status,
    .open = unix_open,
    .call = unix_call,
    .call_async = unix_call_async,
    .wake_create = unix_wake_create,
    .map = unix_map,
    .unmap = unix_unmap,
    .close = unix_close,
};
