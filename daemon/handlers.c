/*
 * SPDX-License-Identifier: MIT
 *
 * dextd's request handlers, one per request type.  They work on buffers,
 * never on the channel's socket: a handler gets the decoded header, the
 * payload and the fd that came with it, encodes its reply into
 * DextdReply (with at most one fd), and returns false to have the
 * channel dropped once that reply is sent.  The channel thread does the
 * I/O (channel.c); the fuzzer drives the same code in-process
 * (fuzz/fuzz-dextd.c).
 */

#define _GNU_SOURCE

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/dextd.h"

/* A request past the header checks, as a handler sees it. */
typedef struct Request {
    DextWireHeader h;
    const uint8_t *p;           /* the payload, h.length bytes */
    int fd;                     /* WAKE_REGISTER's one fd, or -1 */
    pid_t sender;               /* as the kernel vouches, or -1 */
} Request;

static IOReturn codec_status(int err)
{
    switch (err) {
    case DEXT_WIRE_ETYPE:
        return kIOReturnBadMessageID;
    case DEXT_WIRE_EVERSION:
        return kIOReturnUnsupported;
    case DEXT_WIRE_ELIMIT:
        return kIOReturnMessageTooLarge;
    default:
        return kIOReturnIPCError;
    }
}

/*
 * Where a channel's warnings are counted: its session's bucket, or the
 * one all clients without a session share (a channel is cheap to make,
 * so a bucket of its own would limit nothing).
 */
static DextRateLimit *channel_log_rl(Channel *ch)
{
    return ch->session != NULL ? &ch->session->log_rl : &ch->d->log_rl;
}

/* Answer a request that breaks the protocol, and drop the channel. */
static bool channel_violation(Channel *ch, DextdReply *rep, uint64_t seq,
                              IOReturn status, const char *why)
{
    dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                 "pid %d: dropping channel: %s", (int)ch->pid, why);
    rep->len = dext_wire_encode_status_only(rep->buf, rep->cap,
                                            ch->version ? ch->version
                                                : DEXT_WIRE_VERSION_HELLO,
                                            seq, DEXT_WIRE_ERROR, status);
    return false;
}

/* A payload the codec refused: answer why, and drop the channel. */
static bool codec_violation(Channel *ch, const Request *rq, DextdReply *rep,
                            int err)
{
    return channel_violation(ch, rep, rq->h.seq, codec_status(err),
                             dext_wire_strerror(err));
}

static bool handle_hello(Channel *ch, const Request *rq, DextdReply *rep)
    DEXT_EXCLUDES(ch->d->lock)
{
    DextWireHello m;
    DextWireHelloReply r = { 0 };
    int err;

    if (ch->version != 0) {
        return channel_violation(ch, rep, rq->h.seq, kIOReturnBadMessageID,
                                 "second HELLO");
    }
    err = dext_wire_decode_hello(rq->p, rq->h.length, &m);
    if (err != 0) {
        return codec_violation(ch, rq, rep, err);
    }
    r.version = dext_wire_choose_version(&m);
    r.status = r.version ? kIOReturnSuccess : kIOReturnUnsupported;
    r.pid = (uint32_t)ch->d->pid;
    r.features = DEXT_WIRE_FEATURES_V1;
    if (m.features & DEXT_WIRE_FEAT_LEAN) {
        ch->lean = true;
        r.features |= DEXT_WIRE_FEAT_LEAN;
    } else {
        /*
         * From here on every message says which process sent it
         * (sender_may_name_memory).  Set before the reply goes, so
         * whatever the client sends after reading it carries that.
         */
        int on = 1;

        (void)setsockopt(ch->fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
    }
    rep->len = dext_wire_encode_hello_reply(rep->buf, rep->cap, rq->h.seq,
                                            &r);
    if (r.version == 0) {
        dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                     "pid %d speaks protocol %u-%u only, we speak %u-%u",
                     (int)ch->pid, m.min_version, m.max_version,
                     DEXT_WIRE_VERSION_MIN, DEXT_WIRE_VERSION_MAX);
        return false;
    }
    ch->version = r.version;
    dext_mutex_lock(&ch->d->lock);
    ch->greeted = true;
    dext_mutex_unlock(&ch->d->lock);
    return true;
}

static bool handle_list(Channel *ch, const Request *rq, DextdReply *rep)
{
    DextWireListReply r;
    uint32_t total;
    int err;

    err = dext_wire_decode_empty(rq->p, rq->h.length);
    if (err != 0) {
        return codec_violation(ch, rq, rep, err);
    }
    total = dext_core_list(ch->d->core, r.ids, DEXT_MAX_SERVICES);
    r.status = kIOReturnSuccess;
    r.total = total;
    r.count = total < DEXT_MAX_SERVICES ? total : DEXT_MAX_SERVICES;
    rep->len = dext_wire_encode_list_reply(rep->buf, rep->cap, ch->version,
                                           rq->h.seq, &r);
    return true;
}

static bool handle_status(Channel *ch, const Request *rq, DextdReply *rep)
    DEXT_EXCLUDES(ch->d->lock)
{
    Daemon *d = ch->d;
    DextWireStatusReply r = { 0 };
    DextCoreStats st;
    struct timespec now;
    int err;

    err = dext_wire_decode_empty(rq->p, rq->h.length);
    if (err != 0) {
        return codec_violation(ch, rq, rep, err);
    }
    dext_core_stats(d->core, &st);
    clock_gettime(CLOCK_MONOTONIC, &now);
    r.status = kIOReturnSuccess;
    r.version = ch->version;
    r.pid = (uint32_t)d->pid;
    r.uptime_ms = (uint64_t)(now.tv_sec - d->start.tv_sec) * 1000 +
                  (uint64_t)(now.tv_nsec / 1000000) -
                  (uint64_t)(d->start.tv_nsec / 1000000);
    dext_mutex_lock(&d->lock);
    r.channels = d->nchannels;
    dext_mutex_unlock(&d->lock);
    APPLE_DEXT_STATUS_COUNTERS(APPLE_DEXT_STATUS_COPY, &r, &st)
    rep->len = dext_wire_encode_status_reply(rep->buf, rep->cap, ch->version,
                                             rq->h.seq, &r);
    return true;
}

static bool handle_open(Channel *ch, const Request *rq, DextdReply *rep)
{
    DextWireOpen m;
    DextWireOpenReply r = { 0 };
    DextSession *cs = NULL;
    Session *s = NULL;
    int err;

    err = dext_wire_decode_open(rq->p, rq->h.length, &m);
    if (err != 0) {
        return codec_violation(ch, rq, rep, err);
    }
    if (ch->session != NULL) {
        r.status = kIOReturnStillOpen;
    } else if (ch->pid <= 0) {
        /* A peer in a pid namespace we cannot see: no DMA possible. */
        r.status = kIOReturnNotPermitted;
    } else if (!fd_charge(ch->d, DEXTD_SESSION_FDS)) {
        r.status = kIOReturnNoResources;
        dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                     "pid %d: OPEN refused: out of file descriptors",
                     (int)ch->pid);
    } else {
        r.status = dext_core_open(ch->d->core, m.service_id, m.type, ch->pid,
                                  ch->pidfd, &cs);
        if (r.status == kIOReturnSuccess) {
            r.status = session_new(ch->d, ch, cs, m.service_id, &s);
            if (r.status != kIOReturnSuccess) {
                dext_session_close(cs);
            }
        }
        if (r.status == kIOReturnSuccess) {
            ch->session = s;
            memcpy(r.token, s->token, sizeof(r.token));
            dlog_limited(ch->d, &s->log_rl, DEXT_LOG_INFO,
                         "pid %d uid %u opened service 0x%llx", (int)ch->pid,
                         (unsigned)ch->uid,
                         (unsigned long long)m.service_id);
        } else {
            fd_release(ch->d, DEXTD_SESSION_FDS);
        }
    }
    rep->len = dext_wire_encode_open_reply(rep->buf, rep->cap, ch->version,
                                           rq->h.seq, &r);
    rep->secret = true;
    memset(&r, 0, sizeof(r));
    return true;
}

static bool handle_attach(Channel *ch, const Request *rq, DextdReply *rep)
{
    DextWireAttach m;
    IOReturn status;
    int err;

    err = dext_wire_decode_attach(rq->p, rq->h.length, &m);
    if (err != 0) {
        return codec_violation(ch, rq, rep, err);
    }
    if (ch->session != NULL) {
        status = kIOReturnStillOpen;
    } else {
        status = session_attach(ch->d, ch, m.token);
        if (status != kIOReturnSuccess) {
            dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                         "pid %d: ATTACH refused", (int)ch->pid);
        }
    }
    memset(&m, 0, sizeof(m));
    rep->len = dext_wire_encode_status_only(rep->buf, rep->cap, ch->version,
                                            rq->h.seq, DEXT_WIRE_ATTACH,
                                            status);
    return true;
}

/*
 * A region's addresses are the opening process's: the core reads and
 * writes that process's memory.  A channel can outlive its opener's
 * hold on it -- a forked child inherits it, a process can pass it on --
 * and such a holder must not make dextd touch the opener's memory in its
 * name (a child that may not ptrace its parent could read it through
 * us).  So calls that name client memory must come from the opener
 * itself, as the kernel vouches for each message (SO_PASSCRED).
 */
static bool sender_may_name_memory(Channel *ch, pid_t sender,
                                   uint32_t selector)
{
    Session *s = ch->session;

    if (!dext_selector_names_memory(selector)) {
        return true;
    }
    if (sender > 0 && sender == s->pid) {
        return true;
    }
    if (sender <= 0) {
        /* A lean channel or a polled ring: no message has a sender. */
        dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                     "pid %d: DMA call refused: this channel carries no "
                     "sender (a lean channel or a polled ring)",
                     (int)ch->pid);
        return false;
    }
    dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                 "pid %d: DMA call on the session of pid %d refused: "
                 "regions name the opener's memory", (int)sender,
                 (int)s->pid);
    return false;
}

static bool handle_call(Channel *ch, const Request *rq, DextdReply *rep,
                        bool async)
{
    DextWireCall m;
    /*
     * Not cleared: clearing all DEXT_MAX_SCALARS outputs (rep stos) was
     * a tenth of a polled call.  Every field but the outputs is set
     * below, only the first scalar_out_cnt outputs are encoded, and the
     * core writes every one it counts.
     */
    DextWireCallReply r;
    uint32_t scalar_cnt;
    size_t struct_size;
    DextCallArgs args;
    Session *s = ch->session;
    int err;

    err = dext_wire_decode_call(rq->p, rq->h.length, async, &m);
    if (err != 0) {
        if (rq->fd >= 0) {
            close(rq->fd);
        }
        return codec_violation(ch, rq, rep, err);
    }
    if (rq->fd >= 0 && m.selector != kDextSelectorRegisterDMARegion &&
        m.selector != kDextSelectorRegisterDMARegionAt) {
        close(rq->fd);
        return channel_violation(ch, rep, rq->h.seq, kIOReturnBadArgument,
                                 "unexpected fds");
    }
    scalar_cnt = m.scalar_out_cap;
    struct_size = m.struct_out_cap;
    args.scalar_in = m.scalar_in;
    args.scalar_in_cnt = m.scalar_in_cnt;
    args.struct_in = m.struct_in;
    args.struct_in_size = m.struct_in_len;
    args.scalar_out = r.scalar_out;
    args.scalar_out_cnt = &scalar_cnt;
    args.struct_out = ch->sout;
    args.struct_out_size = &struct_size;
    args.in_fd = rq->fd >= 0 ? &rq->fd : NULL;

    if (s == NULL) {
        r.status = kIOReturnNotAttached;
    } else if (!async && !sender_may_name_memory(ch, rq->sender,
                                                 m.selector)) {
        r.status = kIOReturnNotPermitted;
    } else if (!async) {
        r.status = dext_session_call(s->cs, m.selector, &args);
        if (m.selector == kDextSelectorClaim && r.status == kIOReturnSuccess &&
            !__atomic_exchange_n(&s->claimed, true, __ATOMIC_RELAXED)) {
            dlog_limited(ch->d, &s->log_rl, DEXT_LOG_INFO, "pid %d uid %u "
                         "claimed service 0x%llx", (int)s->pid,
                         (unsigned)s->uid,
                         (unsigned long long)s->service_id);
        }
    } else if (!wake_port_call_async(s, m.port, m.selector, &args,
                                     &r.status)) {
        r.status = kIOReturnBadArgument;
    }
    /* A failed call answers no outputs (and none of r's unset words). */
    if (r.status != kIOReturnSuccess) {
        scalar_cnt = 0;
        struct_size = 0;
    }
    /* The core is trusted, but the wire limits are not negotiable. */
    r.scalar_out_cnt = scalar_cnt <= m.scalar_out_cap ? scalar_cnt : 0;
    r.struct_out_len = struct_size <= m.struct_out_cap ?
                       (uint32_t)struct_size : 0;
    r.struct_out = ch->sout;
    rep->len = dext_wire_encode_call_reply(rep->buf, rep->cap, ch->version,
                                           rq->h.seq, async, &r);
    if (rq->fd >= 0) {
        close(rq->fd);      /* the core maps what it keeps */
    }
    return true;
}

static bool handle_call_sync(Channel *ch, const Request *rq, DextdReply *rep)
{
    return handle_call(ch, rq, rep, false);
}

static bool handle_call_async(Channel *ch, const Request *rq,
                              DextdReply *rep)
{
    return handle_call(ch, rq, rep, true);
}

static bool handle_wake_register(Channel *ch, const Request *rq,
                                 DextdReply *rep)
{
    DextWireWakeReply r = { .status = kIOReturnBadArgument };
    Session *s = ch->session;
    Daemon *d = ch->d;
    bool charged = false;
    const char *why;
    int fd = rq->fd;
    int err;

    err = dext_wire_decode_empty(rq->p, rq->h.length);
    if (err != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return codec_violation(ch, rq, rep, err);
    }
    if (s == NULL) {
        r.status = kIOReturnNotAttached;
    } else if (fd < 0) {
        /* None or several fds: BadArgument. */
    } else if ((why = wake_port_refusal(d, fd)) != NULL) {
        dlog_limited(d, &s->log_rl, DEXT_LOG_WARNING,
                     "pid %d: wake port refused: %s", (int)ch->pid, why);
    } else if (!(charged = fd_charge(d, 1))) {
        r.status = kIOReturnNoResources;
        dlog_limited(d, &s->log_rl, DEXT_LOG_WARNING,
                     "pid %d: wake port refused: out of file descriptors",
                     (int)ch->pid);
    } else if (!wake_port_seal(fd)) {
        dlog_limited(d, &s->log_rl, DEXT_LOG_WARNING,
                     "pid %d: wake port refused: cannot shut it for reading "
                     "and empty it", (int)ch->pid);
    } else {
        r.status = wake_port_add(s, fd, &r.port);
        if (r.status == kIOReturnSuccess) {
            fd = -1;
        }
    }
    if (fd >= 0) {
        close(fd);
        if (charged) {
            fd_release(d, 1);
        }
    }
    rep->len = dext_wire_encode_wake_reply(rep->buf, rep->cap, ch->version,
                                           rq->h.seq, &r);
    return true;
}

static bool handle_wake_unregister(Channel *ch, const Request *rq,
                                   DextdReply *rep)
{
    IOReturn status = kIOReturnNotFound;
    Session *s = ch->session;
    uint32_t port;
    int fd = -1;
    int err;

    err = dext_wire_decode_wake_unregister(rq->p, rq->h.length, &port);
    if (err != 0) {
        return codec_violation(ch, rq, rep, err);
    }
    if (s == NULL) {
        status = kIOReturnNotAttached;
    } else if (port != 0) {
        fd = wake_port_remove(s, port);
    }
    if (fd >= 0) {
        close(fd);
        fd_release(ch->d, 1);
        status = kIOReturnSuccess;
    }
    rep->len = dext_wire_encode_status_only(rep->buf, rep->cap, ch->version,
                                            rq->h.seq,
                                            DEXT_WIRE_WAKE_UNREGISTER, status);
    return true;
}

static bool handle_map(Channel *ch, const Request *rq, DextdReply *rep)
{
    DextWireMap m;
    DextWireMapReply r = { 0 };
    DextMemory mem = { .fd = -1 };
    int err;

    err = dext_wire_decode_map(rq->p, rq->h.length, &m);
    if (err != 0) {
        return codec_violation(ch, rq, rep, err);
    }
    /* @m.options (cache mode) cannot be honoured by mmap; ignored. */
    if (ch->session == NULL) {
        r.status = kIOReturnNotAttached;
    } else {
        r.status = dext_session_map(ch->session->cs, m.mem_type, &mem);
    }
    if (r.status == kIOReturnSuccess && (mem.fd < 0 || mem.size == 0)) {
        dlog(ch->d, DEXT_LOG_ERROR, "core mapped type %u without memory",
             m.mem_type);
        r.status = kIOReturnInternalError;
    }
    if (r.status == kIOReturnSuccess && mem.local_only) {
        /* The core refuses these to us; never pass a VFIO device fd on. */
        r.status = kIOReturnUnsupported;
    }
    if (r.status == kIOReturnSuccess) {
        r.flags = mem.writable ? DEXT_WIRE_MAP_WRITABLE : 0;
        r.offset = mem.offset;
        r.size = mem.size;
        rep->fd = mem.fd;
    } else if (mem.fd >= 0) {
        close(mem.fd);
    }
    rep->len = dext_wire_encode_map_reply(rep->buf, rep->cap, ch->version,
                                          rq->h.seq, &r);
    return true;
}

static bool handle_ring(Channel *ch, const Request *rq, DextdReply *rep)
{
    IOReturn status;
    uint32_t spin_us;
    int err;

    err = dext_wire_decode_ring(rq->p, rq->h.length, &spin_us);
    if (err != 0) {
        return codec_violation(ch, rq, rep, err);
    }
    if (ch->session == NULL) {
        status = kIOReturnNotAttached;
    } else {
        status = ring_setup(ch, spin_us, &rep->fd);
    }
    rep->len = dext_wire_encode_status_only(rep->buf, rep->cap, ch->version,
                                            rq->h.seq, DEXT_WIRE_RING,
                                            status);
    return true;
}

static bool handle_unexpected(Channel *ch, const Request *rq,
                              DextdReply *rep)
{
    /* ERROR is reply-only; the header check let it through as one. */
    return channel_violation(ch, rep, rq->h.seq, kIOReturnBadMessageID,
                             "unexpected message type");
}

/*
 * The checks every request passes before its handler: a whole message
 * with a valid header, fds only with WAKE_REGISTER (its one fd goes to
 * @rq->fd, any other are closed) or one with a CALL (to @rq->fd;
 * handle_call() drops the channel unless the method is
 * RegisterDMARegion), a request and not a reply, and the channel's
 * protocol version.  False, with the violation answered in
 * @rep, if the channel must be dropped.
 */
static bool request_check(Channel *ch, const DextdRequest *req,
                          Request *rq, DextdReply *rep)
{
    uint64_t seq = dext_wire_peek_seq(req->buf, req->len);
    int err;

    if (req->trunc) {
        dext_close_fds(req->fds, req->nfds);
        return channel_violation(ch, rep, seq, kIOReturnMessageTooLarge,
                                 "message or fds truncated");
    }
    err = dext_wire_decode_header(req->buf, req->len, &rq->h);
    if (err != 0) {
        dext_close_fds(req->fds, req->nfds);
        return channel_violation(ch, rep, seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    rq->p = req->buf + DEXT_WIRE_HEADER_SIZE;
    rq->sender = req->sender;
    rq->fd = -1;
    if (rq->h.type == DEXT_WIRE_WAKE_REGISTER) {
        if (req->nfds == 1) {
            rq->fd = req->fds[0];
        } else {
            /* Zero or several fds: reply BadArgument, keep none. */
            dext_close_fds(req->fds, req->nfds);
        }
    } else if (rq->h.type == DEXT_WIRE_CALL && req->nfds == 1) {
        /* Shared memory beside RegisterDMARegion(At); handle_call()
         * drops the channel for any other method. */
        rq->fd = req->fds[0];
    } else if (req->nfds > 0) {
        dext_close_fds(req->fds, req->nfds);
        return channel_violation(ch, rep, rq->h.seq, kIOReturnBadArgument,
                                 "unexpected fds");
    }
    if (rq->h.flags & DEXT_WIRE_FLAG_REPLY) {
        if (rq->fd >= 0) {
            close(rq->fd);
        }
        return channel_violation(ch, rep, rq->h.seq, kIOReturnIPCError,
                                 "reply sent to the daemon");
    }
    if (rq->h.type == DEXT_WIRE_HELLO ?
        rq->h.version != DEXT_WIRE_VERSION_HELLO :
        rq->h.version != ch->version) {
        if (rq->fd >= 0) {
            close(rq->fd);
        }
        return channel_violation(ch, rep, rq->h.seq,
                                 ch->version ? kIOReturnUnsupported
                                             : kIOReturnNotReady,
                                 ch->version ? "wrong protocol version"
                                             : "request before HELLO");
    }
    return true;
}

bool handle_request(Channel *ch, const DextdRequest *req, DextdReply *rep)
{
    Request rq;

    if (!request_check(ch, req, &rq, rep)) {
        return false;
    }
    switch (rq.h.type) {
    case DEXT_WIRE_HELLO:
        return handle_hello(ch, &rq, rep);
    case DEXT_WIRE_LIST:
        return handle_list(ch, &rq, rep);
    case DEXT_WIRE_STATUS:
        return handle_status(ch, &rq, rep);
    case DEXT_WIRE_OPEN:
        return handle_open(ch, &rq, rep);
    case DEXT_WIRE_ATTACH:
        return handle_attach(ch, &rq, rep);
    case DEXT_WIRE_CALL:
        return handle_call_sync(ch, &rq, rep);
    case DEXT_WIRE_CALL_ASYNC:
        return handle_call_async(ch, &rq, rep);
    case DEXT_WIRE_WAKE_REGISTER:
        return handle_wake_register(ch, &rq, rep);
    case DEXT_WIRE_WAKE_UNREGISTER:
        return handle_wake_unregister(ch, &rq, rep);
    case DEXT_WIRE_MAP:
        return handle_map(ch, &rq, rep);
    case DEXT_WIRE_RING:
        return handle_ring(ch, &rq, rep);
    default:
        return handle_unexpected(ch, &rq, rep);
    }
}

void reply_done(DextdReply *rep)
{
    if (rep->fd >= 0) {
        close(rep->fd);
        rep->fd = -1;
    }
    if (rep->secret && rep->len > 0) {
        memset(rep->buf, 0, (size_t)rep->len);
    }
    rep->secret = false;
}
