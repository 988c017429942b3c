/*
 * SPDX-License-Identifier: MIT
 *
 * The "unix" transport: the dext's user-client primitives served by
 * dextd over an AF_UNIX SOCK_SEQPACKET socket (protocol/dext-wire.h).
 *
 * This file is the transport's hooks: each turns into the wire messages
 * of the protocol and back.  A connection (one user client) is a pool of
 * channels attached to one daemon session (transport/sock-pool.h); each
 * round trip is one sendmsg() and one recvmsg() on a channel of its own
 * (transport/sock-channel.h).
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apple-dext-client.h"
#include "protocol/dext-selectors.h"
#include "protocol/dext-wire.h"
#include "support/fork.h"
#include "support/locks.h"
#include "support/log.h"
#include "support/shared-mem.h"
#include "transport/common.h"
#include "transport/sock-pool.h"
#include "transport/sock-ring.h"
#include "transport/transport.h"

typedef struct UnixWake UnixWake;

typedef struct UnixConn {
    DextTransport base;
    UnixPool pool;
    UnixRing *ring;             /* the polled ring (",poll"), or NULL */
    int call_ms;                /* the call timeout, for the ring */
    uint16_t version;           /* the session's protocol version */
    int refs;                   /* the transport + each wake (atomic) */
    DextMappingList maps;
    DextMutex wakes_lock;
    UnixWake *wakes DEXT_GUARDED_BY(wakes_lock);    /* the live ones */
    /* The smallest region the device asked the file for (atomic). */
    uint64_t dma_file_min;
} UnixConn;

/*
 * dextd holds the other end of @base.fd: when dextd dies or ends the
 * session, the kernel closes it and @base.fd polls readable with
 * POLLHUP.  When we close the transport ourselves, that hang-up is no
 * news to the caller: unix_close() first swaps @base.fd for a quiet
 * socket (whose peer it keeps in @quiet), so a closed connection's wake
 * stays quiet as an eventfd would.
 */
struct UnixWake {
    DextWake base;
    UnixConn *conn;
    uint32_t port;
    int quiet;                  /* the quiet socket's peer, or -1 */
    UnixWake *next;             /* in conn->wakes */
};

/* ---------------------------------------------------------------------
 * Hooks
 * ------------------------------------------------------------------- */

static UnixConn *conn_of(DextTransport *t)
{
    return (UnixConn *)t;
}

static void conn_unref(UnixConn *c)
{
    if (__atomic_fetch_sub(&c->refs, 1, __ATOMIC_SEQ_CST) == 1) {
        bool inherited = dext_forked_since(c->pool.fork_gen);

        dext_unix_pool_destroy(&c->pool);
        /* Not in a forked child: a parent thread may have held it. */
        if (!inherited) {
            dext_mutex_destroy(&c->wakes_lock);
        }
        free(c);
    }
}

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
    ret = dext_unix_channel_connect(arg, &ch);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    dext_unix_channel_use_call_timeout(ch);
    /* Too big for the stack of a caller we do not know. */
    reply = malloc(sizeof(*reply));
    if (reply == NULL) {
        dext_unix_channel_free(ch);
        return kIOReturnNoMemory;
    }
    len = dext_wire_encode_empty(ch->tx, sizeof(ch->tx), ch->version,
                                 ++ch->seq, DEXT_WIRE_LIST);
    ret = dext_unix_channel_roundtrip(ch, len, -1, DEXT_WIRE_LIST, &h, NULL);
    if (ret == kIOReturnSuccess &&
        dext_wire_decode_list_reply(dext_unix_channel_payload(ch), h.length,
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
    dext_unix_channel_free(ch);
    return ret;
}

static IOReturn unix_open(const char *arg, uint64_t id, uint32_t type,
                          DextTransport **out)
{
    DextWireOpen m = { .service_id = id, .type = type };
    DextWireOpenReply reply;
    UnixTarget sa;
    DextWireHeader h;
    UnixChannel *ch;
    UnixConn *c;
    IOReturn ret;
    int len;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    ret = dext_unix_resolve_path(arg, &sa);
    if (ret == kIOReturnSuccess) {
        ret = dext_unix_channel_open(&sa, true, &ch);
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
    ret = dext_unix_channel_roundtrip(ch, len, -1, DEXT_WIRE_OPEN, &h, NULL);
    if (ret == kIOReturnSuccess &&
        dext_wire_decode_open_reply(dext_unix_channel_payload(ch), h.length,
                                    &reply) != 0) {
        ret = kIOReturnIPCError;
    }
    if (ret == kIOReturnSuccess) {
        ret = reply.status;
    }
    if (ret != kIOReturnSuccess) {
        dext_unix_channel_free(ch);
        return ret;
    }
    memset(ch->rx, 0, DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_OPEN_REPLY_SIZE);
    dext_unix_channel_use_call_timeout(ch);

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        memset(&reply, 0, sizeof(reply));
        dext_unix_channel_free(ch);
        return kIOReturnNoMemory;
    }
    c->base.ops = &dext_transport_unix;
    c->call_ms = sa.call_ms;
    c->version = ch->version;
    dext_unix_pool_init(&c->pool, &sa, reply.token, ch);
    if (sa.poll_us > 0) {
        /* Without a ring, calls take the socket: slower, as good. */
        ret = dext_unix_ring_open(&sa, reply.token, &c->ring);
        if (ret != kIOReturnSuccess) {
            dext_log(DEXT_LOG_INFO, "no polled ring (0x%x): calls go "
                     "through the socket", (unsigned)ret);
            c->ring = NULL;
        }
    }
    memset(&reply, 0, sizeof(reply));
    c->refs = 1;
    dext_mappings_init(&c->maps);
    dext_mutex_init(&c->wakes_lock);
    c->wakes = NULL;
    c->dma_file_min = UINT64_MAX;
    *out = &c->base;
    return kIOReturnSuccess;
}

/* Hand a CALL reply's outputs to the caller, if they fit the request. */
static IOReturn call_outputs(const uint8_t *payload, uint32_t len,
                             uint32_t out_cap, size_t sout_cap,
                             const DextCallArgs *args, IOReturn *status)
{
    DextWireCallReply reply;

    if (dext_wire_decode_call_reply(payload, len, &reply) != 0 ||
        reply.scalar_out_cnt > out_cap || reply.struct_out_len > sout_cap) {
        return kIOReturnIPCError;
    }
    if (args->scalar_out_cnt != NULL) {
        uint32_t i;

        /* Word by word, as unix_do_call() copies the inputs. */
        for (i = 0; i < reply.scalar_out_cnt; i++) {
            args->scalar_out[i] = reply.scalar_out[i];
        }
        *args->scalar_out_cnt = reply.scalar_out_cnt;
    }
    if (args->struct_out_size != NULL) {
        if (reply.struct_out_len > 0) {
            memcpy(args->struct_out, reply.struct_out, reply.struct_out_len);
        }
        *args->struct_out_size = reply.struct_out_len;
    }
    *status = reply.status;
    return kIOReturnSuccess;
}

/*
 * A synchronous call through the polled ring.  False if the ring cannot
 * take it (none, busy, dead, a call that names memory or carries an fd):
 * then the pool does.
 */
static bool ring_do_call(UnixConn *c, uint32_t selector, bool async,
                         const DextWireCall *m, uint32_t out_cap,
                         size_t sout_cap, const DextCallArgs *args,
                         IOReturn *ret)
{
    DextWireHeader h;
    IOReturn status = kIOReturnSuccess;

    if (async || args->in_fd != NULL || dext_selector_names_memory(selector) ||
        !dext_unix_ring_take(c->ring)) {
        return false;
    }
    *ret = dext_unix_ring_call(c->ring, m, c->version, c->call_ms, &h);
    if (*ret == kIOReturnSuccess) {
        *ret = call_outputs(c->ring->rx + DEXT_WIRE_HEADER_SIZE, h.length,
                            out_cap, sout_cap, args, &status);
        if (*ret != kIOReturnSuccess) {
            dext_unix_ring_kill(c->ring);
        } else {
            *ret = status;
        }
    }
    dext_unix_ring_put(c->ring);
    return true;
}

/*
 * Whether a call must go on a full channel: one that passes an fd, or
 * one that names our memory, which dextd serves only with the sender
 * vouched for by the kernel (daemon/handlers.c, sender_may_name_memory).
 */
static bool call_needs_full(uint32_t selector, bool async,
                            const DextCallArgs *args)
{
    return args->in_fd != NULL ||
           (!async && dext_selector_names_memory(selector));
}

static IOReturn unix_do_call(UnixConn *c, uint32_t selector, bool async,
                             uint32_t port, const DextCallArgs *args)
{
    DextWireCall m;
    DextWireHeader h;
    UnixChannel *ch;
    uint32_t out_cap;
    size_t sout_cap;
    uint32_t i;
    IOReturn ret, status = kIOReturnSuccess;
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
    /* Word by word: a variable memcpy here is a rep movs, whose
     * start-up a polled call of a few scalars notices. */
    for (i = 0; i < args->scalar_in_cnt; i++) {
        m.scalar_in[i] = args->scalar_in[i];
    }
    m.struct_in = args->struct_in;

    if (ring_do_call(c, selector, async, &m, out_cap, sout_cap, args,
                     &ret)) {
        return ret;
    }
    ret = dext_unix_pool_get(&c->pool, call_needs_full(selector, async, args),
                             &ch);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    len = dext_wire_encode_call(ch->tx, sizeof(ch->tx), ch->version,
                                ++ch->seq, async, &m);
    ret = dext_unix_pool_exchange(&c->pool, ch, len,
                                  args->in_fd ? *args->in_fd : -1,
                                  async ? DEXT_WIRE_CALL_ASYNC
                                        : DEXT_WIRE_CALL, &h, NULL);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (call_outputs(dext_unix_channel_payload(ch), h.length, out_cap,
                     sout_cap, args, &status) != kIOReturnSuccess) {
        dext_unix_pool_kill(&c->pool, ch, kIOReturnIPCError);
        return kIOReturnIPCError;
    }
    dext_unix_pool_put(&c->pool, ch);
    return status;
}

/*
 * RegisterDMARegion names memory by our address, which dextd reaches only
 * by copying (process_vm_*).  A device behind a real IOMMU needs the
 * pages themselves, and an emulated device copies faster through a
 * mapping of its own (memcpy instead of a system call per transfer), so
 * shared memory travels as its file: the fd beside the call, its offset
 * as a fourth scalar.
 *
 * Finding the file costs a walk of /proc/self/maps (tens of
 * microseconds), so it is done only for what the device asks for: a
 * registration first goes with a fourth scalar and no fd, which dextd
 * answers with a quiet kIOReturnUnsupported when it wants the file (a
 * device behind a real IOMMU: every region; an emulated one: regions of
 * DEXT_DMA_MAP_MIN bytes and more), and the call is repeated with the
 * file.  The connection remembers the smallest size asked for and looks
 * the file up first from that size on.  Private memory is then
 * registered without the file, which only a device behind a real IOMMU
 * refuses, with the reason logged here and by dextd.
 */
static IOReturn unix_register_dma(UnixConn *c, uint32_t selector,
                                  const DextCallArgs *args)
{
    /* RegisterDMARegionAt has the bus address before the offset. */
    uint32_t n = selector == kDextSelectorRegisterDMARegion ? 3 : 4;
    uint64_t in[5], offset = 0, min;
    DextCallArgs a = *args;
    uint32_t room = args->scalar_out_cnt ? *args->scalar_out_cnt : 0;
    IOReturn ret;
    int fd;

    memcpy(in, args->scalar_in, n * sizeof(in[0]));
    in[n] = 0;
    a.scalar_in = in;
    if (in[2] < __atomic_load_n(&c->dma_file_min, __ATOMIC_RELAXED)) {
        a.scalar_in_cnt = n + 1;
        ret = unix_do_call(c, selector, false, 0, &a);
        if (ret != kIOReturnUnsupported) {
            return ret;
        }
        /* The refusal set the output count: the retry has the room again. */
        if (args->scalar_out_cnt) {
            *args->scalar_out_cnt = room;
        }
    }
    fd = dext_shared_mem_fd(in[1], in[2], &offset);
    if (fd < 0) {
        /* Private memory, or a device without DMA: dextd says which. */
        a.scalar_in_cnt = n;
        ret = unix_do_call(c, selector, false, 0, &a);
        if (ret == kIOReturnUnsupported) {
            dext_log(DEXT_LOG_WARNING, "register_dma: refused: through "
                     "dextd a device behind a real IOMMU reaches only "
                     "shared memory (memfd_create(), shm_open(), a "
                     "MAP_SHARED file), and 0x%llx is not; or the device "
                     "has no DMA at all", (unsigned long long)in[1]);
        }
        return ret;
    }
    in[n] = offset;
    a.scalar_in_cnt = n + 1;
    a.in_fd = &fd;
    ret = unix_do_call(c, selector, false, 0, &a);
    close(fd);
    if (ret != kIOReturnUnsupported) {
        /* The device wants the file: look it up first from now on. */
        min = __atomic_load_n(&c->dma_file_min, __ATOMIC_RELAXED);
        while (in[2] < min &&
               !__atomic_compare_exchange_n(&c->dma_file_min, &min, in[2],
                                            false, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED)) {
        }
    }
    return ret;
}

static IOReturn unix_call(DextTransport *t, uint32_t selector,
                          const DextCallArgs *args)
{
    if (t == NULL) {
        return kIOReturnBadArgument;
    }
    if (args != NULL && args->in_fd == NULL && args->scalar_in != NULL &&
        ((selector == kDextSelectorRegisterDMARegion &&
          args->scalar_in_cnt == 3) ||
         (selector == kDextSelectorRegisterDMARegionAt &&
          args->scalar_in_cnt == 4))) {
        return unix_register_dma(conn_of(t), selector, args);
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
    /*
     * In a forked child of the connection's opener the port is the
     * parent's, and a parent thread may have held @wakes_lock at the
     * fork: close our copies of the fds and nothing else.  The list goes
     * stale, but only unix_close() reads it, which never runs here.
     */
    bool inherited = dext_forked_since(c->pool.fork_gen);

    /* Best effort: the port also goes when the session closes. */
    if (!inherited && dext_unix_pool_enter(&c->pool)) {
        DextWireHeader h;
        UnixChannel *ch;
        IOReturn status;

        if (dext_unix_pool_get(&c->pool, false, &ch) == kIOReturnSuccess) {
            int len = dext_wire_encode_wake_unregister(ch->tx, sizeof(ch->tx),
                                                       ch->version, ++ch->seq,
                                                       w->port);

            if (dext_unix_pool_exchange(&c->pool, ch, len, -1,
                                        DEXT_WIRE_WAKE_UNREGISTER, &h,
                                        NULL) == kIOReturnSuccess) {
                if (dext_wire_decode_status_only(
                        dext_unix_channel_payload(ch), h.length,
                        &status) == 0) {
                    dext_unix_pool_put(&c->pool, ch);
                } else {
                    dext_unix_pool_kill(&c->pool, ch, kIOReturnIPCError);
                }
            }
        }
        dext_unix_pool_leave(&c->pool);
    }
    if (!inherited) {
        dext_mutex_lock(&c->wakes_lock);
        for (UnixWake **pp = &c->wakes; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == w) {
                *pp = w->next;
                break;
            }
        }
        dext_mutex_unlock(&c->wakes_lock);
    }
    close(w->base.fd);
    if (w->quiet >= 0) {
        close(w->quiet);
    }
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
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   pair) < 0) {
        free(w);
        return kIOReturnNoResources;
    }
    w->base.ops = &unix_wake_ops;
    w->base.fd = pair[0];
    ret = dext_unix_pool_get(&c->pool, true, &ch);
    if (ret != kIOReturnSuccess) {
        goto fail;
    }
    len = dext_wire_encode_empty(ch->tx, sizeof(ch->tx), ch->version,
                                 ++ch->seq, DEXT_WIRE_WAKE_REGISTER);
    ret = dext_unix_pool_exchange(&c->pool, ch, len, pair[1],
                                  DEXT_WIRE_WAKE_REGISTER, &h, NULL);
    /*
     * dextd's end is dextd's alone: when dextd dies (or ends the session)
     * the kernel closes it and our end polls readable with POLLHUP, which
     * is how a caller's event loop learns that no completion will come.
     */
    close(pair[1]);
    pair[1] = -1;
    if (ret != kIOReturnSuccess) {
        goto fail;
    }
    if (dext_wire_decode_wake_reply(dext_unix_channel_payload(ch), h.length,
                                    &reply) != 0) {
        dext_unix_pool_kill(&c->pool, ch, kIOReturnIPCError);
        ret = kIOReturnIPCError;
        goto fail;
    }
    dext_unix_pool_put(&c->pool, ch);
    ret = reply.status;
    if (ret != kIOReturnSuccess) {
        goto fail;
    }
    w->port = reply.port;
    w->conn = c;
    w->quiet = -1;
    __atomic_fetch_add(&c->refs, 1, __ATOMIC_SEQ_CST);
    dext_mutex_lock(&c->wakes_lock);
    w->next = c->wakes;
    c->wakes = w;
    dext_mutex_unlock(&c->wakes_lock);
    *out = &w->base;
    return kIOReturnSuccess;

fail:
    close(w->base.fd);
    if (pair[1] >= 0) {
        close(pair[1]);
    }
    free(w);
    return ret;
}

/*
 * Does @fd hold the @size bytes at @offset that a MAP reply names?  A
 * file past whose end the memory reached would give the caller a SIGBUS
 * at its first touch there, far from the reply that caused it.  Only
 * files have a size to check (dextd's memfds, a sysfs resource file);
 * another fd is left to mmap().
 */
static bool map_fd_holds(int fd, uint64_t offset, uint64_t size)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        return false;
    }
    return !S_ISREG(st.st_mode) ||
           (offset <= (uint64_t)st.st_size &&
            size <= (uint64_t)st.st_size - offset);
}

/* One MAP round trip: the memory's fd and where it lies in it. */
static IOReturn unix_map_fd(DextTransport *t, uint32_t type, uint32_t options,
                            DextMemory *out)
{
    UnixConn *c = conn_of(t);
    DextWireMap m = { .mem_type = type, .options = options };
    DextWireMapReply reply;
    DextWireHeader h;
    UnixChannel *ch;
    IOReturn ret;
    long page = sysconf(_SC_PAGESIZE);
    int fd;
    int len;

    if (t == NULL || out == NULL) {
        return kIOReturnBadArgument;
    }
    ret = dext_unix_pool_get(&c->pool, false, &ch);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    len = dext_wire_encode_map(ch->tx, sizeof(ch->tx), ch->version,
                               ++ch->seq, &m);
    ret = dext_unix_pool_exchange(&c->pool, ch, len, -1, DEXT_WIRE_MAP, &h,
                                  &fd);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    /*
     * Success comes with exactly one fd, holding the memory; failure
     * with none.
     */
    if (dext_wire_decode_map_reply(dext_unix_channel_payload(ch), h.length,
                                   &reply) != 0 ||
        (reply.status == kIOReturnSuccess) != (fd >= 0) ||
        (page > 0 && reply.offset % (uint64_t)page != 0) ||
        reply.size > SIZE_MAX || reply.offset > (uint64_t)INT64_MAX ||
        (fd >= 0 && !map_fd_holds(fd, reply.offset, reply.size))) {
        if (fd >= 0) {
            close(fd);
        }
        dext_unix_pool_kill(&c->pool, ch, kIOReturnIPCError);
        return kIOReturnIPCError;
    }
    dext_unix_pool_put(&c->pool, ch);
    if (reply.status != kIOReturnSuccess) {
        return reply.status;
    }

    out->fd = fd;
    out->offset = reply.offset;
    out->size = reply.size;
    out->writable = (reply.flags & DEXT_WIRE_MAP_WRITABLE) != 0;
    out->local_only = false;
    return kIOReturnSuccess;
}

static IOReturn unix_map(DextTransport *t, uint32_t type, uint32_t options,
                         mach_vm_address_t *addr, mach_vm_size_t *size)
{
    DextMemory mem;
    IOReturn ret;

    if (t == NULL || addr == NULL || size == NULL) {
        return kIOReturnBadArgument;
    }
    ret = unix_map_fd(t, type, options, &mem);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    return dext_mappings_map(&conn_of(t)->maps, type, &mem, addr, size);
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
 * Before we hang up: put a quiet socket in each live wake's fd number
 * (dup2() swaps it atomically), so the hang-up dextd answers with does
 * not reach the caller as the death of the dext.  None of these calls
 * blocks.
 */
static void quiet_wakes(UnixConn *c) DEXT_EXCLUDES(&c->wakes_lock)
{
    dext_mutex_lock(&c->wakes_lock);
    for (UnixWake *w = c->wakes; w != NULL; w = w->next) {
        int q[2];

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK |
                       SOCK_CLOEXEC, 0, q) < 0) {
            continue;   /* then the caller sees the hang-up: harmless */
        }
        if (dup3(q[0], w->base.fd, O_CLOEXEC) < 0) {
            close(q[1]);
        } else {
            w->quiet = q[1];
        }
        close(q[0]);
    }
    dext_mutex_unlock(&c->wakes_lock);
}

static void unix_close(DextTransport *t)
{
    UnixConn *c = conn_of(t);

    if (t == NULL) {
        return;
    }
    quiet_wakes(c);
    dext_unix_pool_close(&c->pool, dext_unix_ring_close(c->ring));
    c->ring = NULL;
    dext_mappings_destroy(&c->maps);
    conn_unref(c);
}

/*
 * In a forked child, of a connection its parent opened: close our copies
 * of the channels' and the ring's fds and unmap our copies of the
 * mappings (the ring's too), with no lock taken and no word to dextd
 * (dext_unix_pool_close() and dext_unix_ring_close() see the fork).  The
 * wakes are left as they are: quieting them would take @wakes_lock.
 */
static void unix_close_inherited(DextTransport *t)
{
    UnixConn *c = conn_of(t);

    dext_unix_pool_close(&c->pool, dext_unix_ring_close(c->ring));
    c->ring = NULL;
    dext_mappings_release(&c->maps);
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
    ret = dext_unix_channel_connect(path, &ch);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    dext_unix_channel_use_call_timeout(ch);
    len = dext_wire_encode_empty(ch->tx, sizeof(ch->tx), ch->version,
                                 ++ch->seq, DEXT_WIRE_STATUS);
    ret = dext_unix_channel_roundtrip(ch, len, -1, DEXT_WIRE_STATUS, &h,
                                      NULL);
    if (ret == kIOReturnSuccess &&
        dext_wire_decode_status_reply(dext_unix_channel_payload(ch), h.length,
                                      out) != 0) {
        ret = kIOReturnIPCError;
    }
    if (ret == kIOReturnSuccess) {
        ret = out->status;
    }
    dext_unix_channel_free(ch);
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
    out->protocol_version = st.version;
    out->server_pid = st.pid;
    APPLE_DEXT_STATUS_COUNTERS(APPLE_DEXT_STATUS_COPY, out, &st)
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
    .map_fd = unix_map_fd,
    .unmap = unix_unmap,
    .close = unix_close,
    .close_inherited = unix_close_inherited,
};
