/*
 * SPDX-License-Identifier: MIT
 *
 * dextd's request handlers, one per request type.  Each returns false
 * to drop the channel.
 */

#define _GNU_SOURCE

#include <string.h>
#include <unistd.h>

#include "daemon/dextd.h"

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
static bool channel_violation(Channel *ch, uint64_t seq, IOReturn status,
                              const char *why)
{
    int len;

    dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                 "pid %d: dropping channel: %s", (int)ch->pid, why);
    len = dext_wire_encode_status_only(ch->tx, sizeof(ch->tx),
                                       ch->version ? ch->version
                                                   : DEXT_WIRE_VERSION_HELLO,
                                       seq, DEXT_WIRE_ERROR, status);
    (void)send_msg(ch->fd, ch->tx, len, -1);
    return false;
}

static bool handle_hello(Channel *ch, const DextWireHeader *h,
                         const uint8_t *p)
{
    DextWireHello m;
    DextWireHelloReply r = { 0 };
    int err;

    if (ch->version != 0) {
        return channel_violation(ch, h->seq, kIOReturnBadMessageID,
                                 "second HELLO");
    }
    err = dext_wire_decode_hello(p, h->length, &m);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    r.version = dext_wire_choose_version(&m);
    r.status = r.version ? kIOReturnSuccess : kIOReturnUnsupported;
    r.pid = (uint32_t)getpid();
    r.features = DEXT_WIRE_FEATURES_V1;
    if (!send_msg(ch->fd, ch->tx,
                  dext_wire_encode_hello_reply(ch->tx, sizeof(ch->tx),
                                               h->seq, &r), -1)) {
        return false;
    }
    if (r.version == 0) {
        dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                     "pid %d speaks protocol %u-%u only, we speak %u-%u",
                     (int)ch->pid, m.min_version, m.max_version,
                     DEXT_WIRE_VERSION_MIN, DEXT_WIRE_VERSION_MAX);
        return false;
    }
    ch->version = r.version;
    pthread_mutex_lock(&ch->d->lock);
    ch->greeted = true;
    pthread_mutex_unlock(&ch->d->lock);
    return true;
}

static bool handle_list(Channel *ch, const DextWireHeader *h)
{
    DextWireListReply r;
    uint32_t total;

    total = dext_core_list(ch->d->core, r.ids, DEXT_MAX_SERVICES);
    r.status = kIOReturnSuccess;
    r.total = total;
    r.count = total < DEXT_MAX_SERVICES ? total : DEXT_MAX_SERVICES;
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_list_reply(ch->tx, sizeof(ch->tx),
                                                ch->version, h->seq, &r),
                    -1);
}

static bool handle_status(Channel *ch, const DextWireHeader *h)
{
    Daemon *d = ch->d;
    DextWireStatusReply r = { 0 };
    DextCoreStats st;
    struct timespec now;

    dext_core_stats(d->core, &st);
    clock_gettime(CLOCK_MONOTONIC, &now);
    r.status = kIOReturnSuccess;
    r.version = ch->version;
    r.pid = (uint32_t)getpid();
    r.uptime_ms = (uint64_t)(now.tv_sec - d->start.tv_sec) * 1000 +
                  (uint64_t)(now.tv_nsec / 1000000) -
                  (uint64_t)(d->start.tv_nsec / 1000000);
    pthread_mutex_lock(&d->lock);
    r.channels = d->nchannels;
    pthread_mutex_unlock(&d->lock);
    r.devices = st.devices;
    r.sessions = st.sessions;
    r.claims = st.claims;
    r.dma_regions = st.dma_regions;
    r.dma_region_bytes = st.dma_region_bytes;
    r.dma_buffers = st.dma_buffers;
    r.irq_sessions = st.irq_sessions;
    r.iommu_faults = st.iommu_faults;
    r.irqs_raised = st.irqs_raised;
    r.irqs_dropped = st.irqs_dropped;
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_status_reply(ch->tx, sizeof(ch->tx),
                                                  ch->version, h->seq, &r),
                    -1);
}

static bool handle_open(Channel *ch, const DextWireHeader *h,
                        const uint8_t *p)
{
    DextWireOpen m;
    DextWireOpenReply r = { 0 };
    DextSession *cs = NULL;
    Session *s = NULL;
    bool ok;
    int err;

    err = dext_wire_decode_open(p, h->length, &m);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
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
            r.status = session_new(ch->d, ch, cs, &s);
            if (r.status != kIOReturnSuccess) {
                dext_session_close(cs);
            }
        }
        if (r.status == kIOReturnSuccess) {
            ch->session = s;
            memcpy(r.token, s->token, sizeof(r.token));
            dlog(ch->d, DEXT_LOG_DEBUG, "pid %d opened service 0x%llx",
                 (int)ch->pid, (unsigned long long)m.service_id);
        } else {
            fd_release(ch->d, DEXTD_SESSION_FDS);
        }
    }
    ok = send_msg(ch->fd, ch->tx,
                  dext_wire_encode_open_reply(ch->tx, sizeof(ch->tx),
                                              ch->version, h->seq, &r), -1);
    memset(&r, 0, sizeof(r));
    memset(ch->tx, 0, DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_OPEN_REPLY_SIZE);
    return ok;
}

static bool handle_attach(Channel *ch, const DextWireHeader *h,
                          const uint8_t *p)
{
    Daemon *d = ch->d;
    DextWireAttach m;
    IOReturn status = kIOReturnNotPermitted;
    Session *s;
    int err;

    err = dext_wire_decode_attach(p, h->length, &m);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    if (ch->session != NULL) {
        status = kIOReturnStillOpen;
    } else {
        pthread_mutex_lock(&d->lock);
        for (s = d->sessions; s != NULL; s = s->next) {
            if (token_equal(s->token, m.token)) {
                break;
            }
        }
        /*
         * A token alone is not enough: only the opening process may add
         * channels, so a leaked token is useless elsewhere.  Equal pids
         * mean the same process only while both pidfds say it lives: a
         * process that reused the opener's pid is someone else.
         */
        if (s != NULL && s->pid == ch->pid && s->uid == ch->uid &&
            pidfd_alive(s->pidfd) && pidfd_alive(ch->pidfd)) {
            s->refs++;
            ch->session = s;
            status = kIOReturnSuccess;
        }
        pthread_mutex_unlock(&d->lock);
        if (status != kIOReturnSuccess) {
            dlog_limited(d, channel_log_rl(ch), DEXT_LOG_WARNING,
                         "pid %d: ATTACH refused", (int)ch->pid);
        }
    }
    memset(&m, 0, sizeof(m));
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_status_only(ch->tx, sizeof(ch->tx),
                                                 ch->version, h->seq,
                                                 DEXT_WIRE_ATTACH, status),
                    -1);
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
static bool sender_may_name_memory(Channel *ch, uint32_t selector)
{
    Session *s = ch->session;

    if (selector != kDextSelectorRegisterDMARegion &&
        selector != kDextSelectorProbeDMARegion) {
        return true;
    }
    if (ch->sender > 0 && ch->sender == s->pid) {
        return true;
    }
    dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                 "pid %d: DMA call on the session of pid %d refused: "
                 "regions name the opener's memory", (int)ch->sender,
                 (int)s->pid);
    return false;
}

static bool handle_call(Channel *ch, const DextWireHeader *h,
                        const uint8_t *p, bool async)
{
    DextWireCall m;
    DextWireCallReply r = { 0 };
    uint32_t scalar_cnt;
    size_t struct_size;
    DextCallArgs args;
    Session *s = ch->session;
    int err;

    err = dext_wire_decode_call(p, h->length, async, &m);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
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

    if (s == NULL) {
        r.status = kIOReturnNotAttached;
        scalar_cnt = 0;
        struct_size = 0;
    } else if (!async && !sender_may_name_memory(ch, m.selector)) {
        r.status = kIOReturnNotPermitted;
        scalar_cnt = 0;
        struct_size = 0;
    } else if (!async) {
        r.status = dext_session_call(s->cs, m.selector, &args);
    } else {
        int i;

        r.status = kIOReturnBadArgument;
        pthread_mutex_lock(&s->port_lock);
        for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
            if (s->ports[i].id != 0 && s->ports[i].id == m.port) {
                break;
            }
        }
        /*
         * Held across the call so an UNREGISTER cannot close the fd
         * before the core has taken its own copy.
         */
        if (i < DEXT_WIRE_MAX_PORTS) {
            r.status = dext_session_call_async(s->cs, m.selector,
                                               s->ports[i].fd, &args);
        } else {
            scalar_cnt = 0;
            struct_size = 0;
        }
        pthread_mutex_unlock(&s->port_lock);
    }
    /* The core is trusted, but the wire limits are not negotiable. */
    r.scalar_out_cnt = scalar_cnt <= m.scalar_out_cap ? scalar_cnt : 0;
    r.struct_out_len = struct_size <= m.struct_out_cap ?
                       (uint32_t)struct_size : 0;
    r.struct_out = ch->sout;
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_call_reply(ch->tx, sizeof(ch->tx),
                                                ch->version, h->seq, async,
                                                &r), -1);
}

static bool handle_wake_register(Channel *ch, const DextWireHeader *h,
                                 const uint8_t *p, int fd)
{
    DextWireWakeReply r = { .status = kIOReturnBadArgument };
    Session *s = ch->session;
    Daemon *d = ch->d;
    bool charged = false;
    const char *why;
    int err;
    int i;

    err = dext_wire_decode_empty(p, h->length);
    if (err != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    if (s == NULL) {
        r.status = kIOReturnNotAttached;
    } else if (fd < 0) {
        /* None or several fds: BadArgument. */
    } else if ((why = wake_port_refusal(fd)) != NULL) {
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
        r.status = kIOReturnNoSpace;
        pthread_mutex_lock(&s->port_lock);
        for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
            if (s->ports[i].id == 0) {
                if (++s->next_port == 0) {
                    s->next_port = 1;
                }
                s->ports[i].id = s->next_port;
                s->ports[i].fd = fd;
                fd = -1;
                r.port = s->ports[i].id;
                r.status = kIOReturnSuccess;
                break;
            }
        }
        pthread_mutex_unlock(&s->port_lock);
    }
    if (fd >= 0) {
        close(fd);
        if (charged) {
            fd_release(d, 1);
        }
    }
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_wake_reply(ch->tx, sizeof(ch->tx),
                                                ch->version, h->seq, &r),
                    -1);
}

static bool handle_wake_unregister(Channel *ch, const DextWireHeader *h,
                                   const uint8_t *p)
{
    IOReturn status = kIOReturnNotFound;
    Session *s = ch->session;
    uint32_t port;
    int fd = -1;
    int err;
    int i;

    err = dext_wire_decode_wake_unregister(p, h->length, &port);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    if (s == NULL) {
        status = kIOReturnNotAttached;
    } else if (port != 0) {
        pthread_mutex_lock(&s->port_lock);
        for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
            if (s->ports[i].id == port) {
                fd = s->ports[i].fd;
                s->ports[i].id = 0;
                s->ports[i].fd = -1;
                status = kIOReturnSuccess;
                break;
            }
        }
        pthread_mutex_unlock(&s->port_lock);
    }
    if (fd >= 0) {
        close(fd);
        fd_release(ch->d, 1);
    }
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_status_only(ch->tx, sizeof(ch->tx),
                                                 ch->version, h->seq,
                                                 DEXT_WIRE_WAKE_UNREGISTER,
                                                 status), -1);
}

static bool handle_map(Channel *ch, const DextWireHeader *h,
                       const uint8_t *p)
{
    DextWireMap m;
    DextWireMapReply r = { 0 };
    DextMemory mem = { .fd = -1 };
    bool ok;
    int err;

    err = dext_wire_decode_map(p, h->length, &m);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
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
    if (r.status == kIOReturnSuccess) {
        r.flags = mem.writable ? DEXT_WIRE_MAP_WRITABLE : 0;
        r.offset = mem.offset;
        r.size = mem.size;
    }
    ok = send_msg(ch->fd, ch->tx,
                  dext_wire_encode_map_reply(ch->tx, sizeof(ch->tx),
                                             ch->version, h->seq, &r),
                  r.status == kIOReturnSuccess ? mem.fd : -1);
    if (mem.fd >= 0) {
        close(mem.fd);
    }
    return ok;
}

/* Handle the @n-byte message in @ch->rx; false drops the channel. */
bool channel_handle(Channel *ch, size_t n, int *fds, int nfds,
                    bool trunc)
{
    uint64_t seq = dext_wire_peek_seq(ch->rx, n);
    const uint8_t *p = ch->rx + DEXT_WIRE_HEADER_SIZE;
    DextWireHeader h;
    int fd = -1;
    int err;

    if (trunc) {
        close_fds(fds, nfds);
        return channel_violation(ch, seq, kIOReturnMessageTooLarge,
                                 "message or fds truncated");
    }
    err = dext_wire_decode_header(ch->rx, n, &h);
    if (err != 0) {
        close_fds(fds, nfds);
        return channel_violation(ch, seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    if (h.type == DEXT_WIRE_WAKE_REGISTER) {
        if (nfds == 1) {
            fd = fds[0];
        } else {
            /* Zero or several fds: reply BadArgument, keep none. */
            close_fds(fds, nfds);
        }
    } else if (nfds > 0) {
        close_fds(fds, nfds);
        return channel_violation(ch, h.seq, kIOReturnBadArgument,
                                 "unexpected fds");
    }
    if (h.flags & DEXT_WIRE_FLAG_REPLY) {
        if (fd >= 0) {
            close(fd);
        }
        return channel_violation(ch, h.seq, kIOReturnIPCError,
                                 "reply sent to the daemon");
    }
    if (h.type == DEXT_WIRE_HELLO ? h.version != DEXT_WIRE_VERSION_HELLO
                                  : h.version != ch->version) {
        if (fd >= 0) {
            close(fd);
        }
        return channel_violation(ch, h.seq,
                                 ch->version ? kIOReturnUnsupported
                                             : kIOReturnNotReady,
                                 ch->version ? "wrong protocol version"
                                             : "request before HELLO");
    }

    switch (h.type) {
    case DEXT_WIRE_HELLO:
        return handle_hello(ch, &h, p);
    case DEXT_WIRE_LIST:
    case DEXT_WIRE_STATUS:
        err = dext_wire_decode_empty(p, h.length);
        if (err != 0) {
            return channel_violation(ch, h.seq, codec_status(err),
                                     dext_wire_strerror(err));
        }
        return h.type == DEXT_WIRE_LIST ? handle_list(ch, &h)
                                        : handle_status(ch, &h);
    case DEXT_WIRE_OPEN:
        return handle_open(ch, &h, p);
    case DEXT_WIRE_ATTACH:
        return handle_attach(ch, &h, p);
    case DEXT_WIRE_CALL:
        return handle_call(ch, &h, p, false);
    case DEXT_WIRE_CALL_ASYNC:
        return handle_call(ch, &h, p, true);
    case DEXT_WIRE_WAKE_REGISTER:
        return handle_wake_register(ch, &h, p, fd);
    case DEXT_WIRE_WAKE_UNREGISTER:
        return handle_wake_unregister(ch, &h, p);
    case DEXT_WIRE_MAP:
        return handle_map(ch, &h, p);
    default:
        /* ERROR is reply-only; the header check let it through as one. */
        return channel_violation(ch, h.seq, kIOReturnBadMessageID,
                                 "unexpected message type");
    }
}
