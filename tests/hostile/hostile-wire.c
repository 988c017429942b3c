/*
 * SPDX-License-Identifier: MIT
 *
 * Raw channels to dextd for the hostile suite.  See hostile-wire.h.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "edu.h"
#include "hostile.h"
#include "hostile-wire.h"
#include "protocol/dext-selectors.h"

/* Replies in flight while registering many regions. */
#define REGISTER_WINDOW 32

bool raw_is_answer(IOReturn st)
{
    return st != RAW_NO_ANSWER && st != RAW_HUNG_UP && st != RAW_GARBLED &&
           st != RAW_SEND_FAILED;
}

int raw_socket(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { HOSTILE_ANSWER_MS / 1000,
                          (HOSTILE_ANSWER_MS % 1000) * 1000 };
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    int saved;

    if (fd < 0) {
        return -1;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", hostile_socket_path());
    /*
     * A full backlog blocks connect() for as long as the send timeout,
     * and so does a daemon that stopped reading: bound both.
     */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

RawChan *raw_wrap(int fd)
{
    RawChan *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        abort();
    }
    c->fd = fd;
    c->timeout_ms = HOSTILE_ANSWER_MS;
    return c;
}

RawChan *raw_connect(void)
{
    int fd = raw_socket();

    return fd >= 0 ? raw_wrap(fd) : NULL;
}

void raw_close(RawChan *c)
{
    if (c != NULL) {
        if (c->fd >= 0) {
            close(c->fd);
        }
        free(c);
    }
}

ssize_t raw_send(RawChan *c, const void *buf, size_t len, const int *fds,
                 int nfds)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(253 * sizeof(int))];
    } cm;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n;

    if (nfds > 253) {
        errno = EINVAL;
        return -1;
    }
    if (nfds > 0) {
        memset(&cm, 0, sizeof(cm));
        mh.msg_control = cm.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        cm.h.cmsg_level = SOL_SOCKET;
        cm.h.cmsg_type = SCM_RIGHTS;
        cm.h.cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(&cm.h), fds, (size_t)nfds * sizeof(int));
    }
    do {
        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
}

ssize_t raw_recv(RawChan *c, unsigned ms, int *fd)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    int fds[1] = { -1 };
    int nfds = 0;
    bool trunc = false;
    ssize_t n;
    int r;

    if (fd != NULL) {
        *fd = -1;
    }
    do {
        r = poll(&p, 1, (int)ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return -1;
    }
    if (r < 0) {
        return -2;
    }
    n = dext_wire_recvmsg(c->fd, c->rx, sizeof(c->rx), MSG_DONTWAIT,
                          fd != NULL ? fds : NULL, fd != NULL ? 1 : 0,
                          &nfds, &trunc);
    if (n < 0 && errno == ECONNRESET) {
        /*
         * dextd closed with our request unread: the kernel reports the
         * reset before what dextd sent last (an ERROR, say), which is
         * still queued behind it.
         */
        n = dext_wire_recvmsg(c->fd, c->rx, sizeof(c->rx), MSG_DONTWAIT,
                              fd != NULL ? fds : NULL, fd != NULL ? 1 : 0,
                              &nfds, &trunc);
        if (n < 0 && errno == EAGAIN) {
            n = 0;
        }
    }
    if (n < 0) {
        /* A reset connection is a hang-up too. */
        if (errno == ECONNRESET || errno == EPIPE) {
            c->hung_up = true;
            return 0;
        }
        return errno == EAGAIN ? -1 : -2;
    }
    if (n == 0) {
        c->hung_up = true;
        return 0;
    }
    if (fd != NULL && nfds == 1) {
        *fd = fds[0];
    }
    return n;
}

IOReturn raw_send_request(RawChan *c, int len, int pass_fd)
{
    ssize_t n;

    if (len < 0) {
        return RAW_SEND_FAILED;
    }
    n = raw_send(c, c->tx, (size_t)len, &pass_fd, pass_fd >= 0 ? 1 : 0);
    return n == len ? kIOReturnSuccess : RAW_SEND_FAILED;
}

IOReturn raw_wait_reply(RawChan *c, uint64_t seq, int *fd)
{
    double end = hostile_now_ms() + c->timeout_ms;
    IOReturn st;

    for (;;) {
        double left = end - hostile_now_ms();
        int rfd = -1;
        ssize_t n;

        if (left <= 0) {
            return RAW_NO_ANSWER;
        }
        n = raw_recv(c, (unsigned)left + 1, fd != NULL ? &rfd : NULL);
        if (n == 0) {
            return RAW_HUNG_UP;
        }
        if (n == -1) {
            return RAW_NO_ANSWER;
        }
        if (n < 0 ||
            dext_wire_decode_header(c->rx, (size_t)n, &c->h) != 0) {
            if (rfd >= 0) {
                close(rfd);
            }
            return RAW_GARBLED;
        }
        if (c->h.seq != seq && !(c->h.type == DEXT_WIRE_ERROR &&
                                 c->h.seq == 0)) {
            /* A late answer to an earlier request. */
            if (rfd >= 0) {
                close(rfd);
            }
            continue;
        }
        if (fd != NULL) {
            *fd = rfd;
        } else if (rfd >= 0) {
            close(rfd);
        }
        if (c->h.type == DEXT_WIRE_ERROR) {
            if (dext_wire_decode_status_only(c->rx + DEXT_WIRE_HEADER_SIZE,
                                             c->h.length, &st) != 0) {
                return RAW_GARBLED;
            }
            c->error = st;
            /* An ERROR that says "success" would still be no reply. */
            return st != kIOReturnSuccess ? st : RAW_GARBLED;
        }
        return kIOReturnSuccess;
    }
}

/* raw_roundtrip() with @nfds fds passed beside the request. */
static IOReturn roundtrip_fds(RawChan *c, int len, const int *fds, int nfds,
                              int *fd)
{
    IOReturn st = RAW_SEND_FAILED;

    if (len >= 0 && raw_send(c, c->tx, (size_t)len, fds, nfds) == len) {
        st = kIOReturnSuccess;
    }
    if (fd != NULL) {
        *fd = -1;
    }
    if (st != kIOReturnSuccess) {
        /*
         * dextd may have refused the channel and closed it before the
         * request went out: its ERROR is still queued, and is the answer.
         */
        unsigned saved = c->timeout_ms;
        IOReturn why;

        c->timeout_ms = 50;
        why = raw_wait_reply(c, c->seq, NULL);
        c->timeout_ms = saved;
        return c->error != 0 ? why : st;
    }
    return raw_wait_reply(c, c->seq, fd);
}

IOReturn raw_roundtrip(RawChan *c, int len, int pass_fd, int *fd)
{
    return roundtrip_fds(c, len, &pass_fd, pass_fd >= 0 ? 1 : 0, fd);
}

/* The version to frame a request with: 1 before HELLO, for the tests. */
static uint16_t ver(RawChan *c)
{
    return c->version ? c->version : 1;
}

IOReturn raw_hello(RawChan *c)
{
    DextWireHello m = { 1, 1, DEXT_WIRE_FEATURES_V1 };
    DextWireHelloReply r;
    IOReturn st;

    st = raw_roundtrip(c, dext_wire_encode_hello(c->tx, sizeof(c->tx),
                                                 ++c->seq, &m), -1, NULL);
    if (st != kIOReturnSuccess) {
        return st;
    }
    if (c->h.type != DEXT_WIRE_HELLO ||
        dext_wire_decode_hello_reply(c->rx + DEXT_WIRE_HEADER_SIZE,
                                     c->h.length, &r) != 0) {
        return RAW_GARBLED;
    }
    if (r.status == kIOReturnSuccess) {
        c->version = r.version;
    }
    return r.status;
}

RawChan *raw_connect_hello(void)
{
    RawChan *c = raw_connect();

    if (c != NULL && raw_hello(c) != kIOReturnSuccess) {
        raw_close(c);
        c = NULL;
    }
    return c;
}

IOReturn raw_open(RawChan *c, uint64_t service, uint8_t *token)
{
    DextWireOpen m = { .service_id = service, .type = 0 };
    DextWireOpenReply r;
    IOReturn st;

    st = raw_roundtrip(c, dext_wire_encode_open(c->tx, sizeof(c->tx), ver(c),
                                                ++c->seq, &m), -1, NULL);
    if (st != kIOReturnSuccess) {
        return st;
    }
    if (c->h.type != DEXT_WIRE_OPEN ||
        dext_wire_decode_open_reply(c->rx + DEXT_WIRE_HEADER_SIZE,
                                    c->h.length, &r) != 0) {
        return RAW_GARBLED;
    }
    if (token != NULL) {
        memcpy(token, r.token, DEXT_WIRE_TOKEN_SIZE);
    }
    return r.status;
}

IOReturn raw_session(RawChan **out, uint64_t service, bool claim)
{
    RawChan *c = raw_connect();
    IOReturn st;

    *out = NULL;
    if (c == NULL) {
        return RAW_HUNG_UP;
    }
    st = raw_hello(c);
    if (st == kIOReturnSuccess) {
        st = raw_open(c, service, NULL);
    }
    if (st == kIOReturnSuccess && claim) {
        st = raw_claim(c);
    }
    if (st != kIOReturnSuccess) {
        raw_close(c);
        return st;
    }
    *out = c;
    return kIOReturnSuccess;
}

IOReturn raw_call_reply(RawChan *c, uint64_t *out, uint32_t nout)
{
    DextWireCallReply r;
    uint32_t i;

    if ((c->h.type != DEXT_WIRE_CALL && c->h.type != DEXT_WIRE_CALL_ASYNC) ||
        dext_wire_decode_call_reply(c->rx + DEXT_WIRE_HEADER_SIZE,
                                    c->h.length, &r) != 0) {
        return RAW_GARBLED;
    }
    for (i = 0; out != NULL && i < nout; i++) {
        out[i] = i < r.scalar_out_cnt ? r.scalar_out[i] : 0;
    }
    return r.status;
}

IOReturn raw_call_full(RawChan *c, bool async, const DextWireCall *m,
                       DextWireCallReply *r)
{
    IOReturn st;

    st = raw_roundtrip(c, dext_wire_encode_call(c->tx, sizeof(c->tx), ver(c),
                                                ++c->seq, async, m), -1,
                       NULL);
    if (st != kIOReturnSuccess) {
        return st;
    }
    if (c->h.type != (async ? DEXT_WIRE_CALL_ASYNC : DEXT_WIRE_CALL)) {
        return RAW_GARBLED;
    }
    if (r != NULL) {
        if (dext_wire_decode_call_reply(c->rx + DEXT_WIRE_HEADER_SIZE,
                                        c->h.length, r) != 0) {
            return RAW_GARBLED;
        }
        return r->status;
    }
    return raw_call_reply(c, NULL, 0);
}

static void fill_call(DextWireCall *m, uint32_t sel, const uint64_t *in,
                      uint32_t nin, uint32_t nout)
{
    memset(m, 0, sizeof(*m));
    m->selector = sel;
    m->scalar_in_cnt = nin;
    m->scalar_out_cap = nout;
    if (nin > 0) {
        memcpy(m->scalar_in, in, nin * sizeof(in[0]));
    }
}

IOReturn raw_call_fds(RawChan *c, uint32_t sel, const uint64_t *in,
                      uint32_t nin, uint64_t *out, uint32_t nout,
                      const int *fds, int nfds)
{
    DextWireCall m;
    IOReturn st;

    fill_call(&m, sel, in, nin, nout);
    st = roundtrip_fds(c, dext_wire_encode_call(c->tx, sizeof(c->tx), ver(c),
                                                ++c->seq, false, &m),
                       fds, nfds, NULL);
    if (st != kIOReturnSuccess) {
        return st;
    }
    return raw_call_reply(c, out, nout);
}

IOReturn raw_call(RawChan *c, uint32_t sel, const uint64_t *in, uint32_t nin,
                  uint64_t *out, uint32_t nout)
{
    return raw_call_fds(c, sel, in, nin, out, nout, NULL, 0);
}

uint64_t raw_send_call(RawChan *c, uint32_t sel, const uint64_t *in,
                       uint32_t nin, uint32_t nout)
{
    DextWireCall m;

    fill_call(&m, sel, in, nin, nout);
    if (raw_send_request(c, dext_wire_encode_call(c->tx, sizeof(c->tx),
                                                  ver(c), ++c->seq, false,
                                                  &m), -1) !=
        kIOReturnSuccess) {
        return 0;
    }
    return c->seq;
}

IOReturn raw_map(RawChan *c, uint32_t type, DextWireMapReply *r, int *fd)
{
    DextWireMap m = { .mem_type = type, .options = 0 };
    IOReturn st;

    *fd = -1;
    memset(r, 0, sizeof(*r));
    st = raw_roundtrip(c, dext_wire_encode_map(c->tx, sizeof(c->tx), ver(c),
                                               ++c->seq, &m), -1, fd);
    if (st != kIOReturnSuccess) {
        return st;
    }
    if (c->h.type != DEXT_WIRE_MAP ||
        dext_wire_decode_map_reply(c->rx + DEXT_WIRE_HEADER_SIZE,
                                   c->h.length, r) != 0) {
        return RAW_GARBLED;
    }
    return r->status;
}

IOReturn raw_wake_register(RawChan *c, int port_fd, uint32_t *port)
{
    DextWireWakeReply r;
    IOReturn st;

    st = raw_roundtrip(c, dext_wire_encode_empty(c->tx, sizeof(c->tx),
                                                 ver(c), ++c->seq,
                                                 DEXT_WIRE_WAKE_REGISTER),
                       port_fd, NULL);
    if (st != kIOReturnSuccess) {
        return st;
    }
    if (c->h.type != DEXT_WIRE_WAKE_REGISTER ||
        dext_wire_decode_wake_reply(c->rx + DEXT_WIRE_HEADER_SIZE,
                                    c->h.length, &r) != 0) {
        return RAW_GARBLED;
    }
    if (port != NULL) {
        *port = r.port;
    }
    return r.status;
}

IOReturn raw_add_port(RawChan *c, int *peer)
{
    IOReturn st;
    int sp[2];

    *peer = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
        return RAW_SEND_FAILED;
    }
    st = raw_wake_register(c, sp[0], NULL);
    close(sp[0]);
    if (st != kIOReturnSuccess) {
        close(sp[1]);
    } else {
        *peer = sp[1];
    }
    return st;
}

/* A reply that is one IOReturn, of @type. */
static IOReturn status_reply(RawChan *c, uint16_t type)
{
    IOReturn st;

    if (c->h.type != type ||
        dext_wire_decode_status_only(c->rx + DEXT_WIRE_HEADER_SIZE,
                                     c->h.length, &st) != 0) {
        return RAW_GARBLED;
    }
    return st;
}

IOReturn raw_wake_unregister(RawChan *c, uint32_t port)
{
    IOReturn st;

    st = raw_roundtrip(c, dext_wire_encode_wake_unregister(c->tx,
                                                           sizeof(c->tx),
                                                           ver(c), ++c->seq,
                                                           port), -1, NULL);
    return st != kIOReturnSuccess ? st
                                  : status_reply(c, DEXT_WIRE_WAKE_UNREGISTER);
}

IOReturn raw_attach(RawChan *c, const uint8_t *token)
{
    DextWireAttach m;
    IOReturn st;

    memcpy(m.token, token, sizeof(m.token));
    st = raw_roundtrip(c, dext_wire_encode_attach(c->tx, sizeof(c->tx),
                                                  ver(c), ++c->seq, &m), -1,
                       NULL);
    return st != kIOReturnSuccess ? st : status_reply(c, DEXT_WIRE_ATTACH);
}

IOReturn raw_ring(RawChan *c, uint32_t spin_us, int *fd)
{
    IOReturn st;

    *fd = -1;
    st = raw_roundtrip(c, dext_wire_encode_ring(c->tx, sizeof(c->tx), ver(c),
                                                ++c->seq, spin_us), -1, fd);
    return st != kIOReturnSuccess ? st : status_reply(c, DEXT_WIRE_RING);
}

IOReturn raw_status(RawChan *c, DextWireStatusReply *r)
{
    IOReturn st;

    memset(r, 0, sizeof(*r));
    st = raw_roundtrip(c, dext_wire_encode_empty(c->tx, sizeof(c->tx), ver(c),
                                                 ++c->seq, DEXT_WIRE_STATUS),
                       -1, NULL);
    if (st != kIOReturnSuccess) {
        return st;
    }
    if (c->h.type != DEXT_WIRE_STATUS ||
        dext_wire_decode_status_reply(c->rx + DEXT_WIRE_HEADER_SIZE,
                                      c->h.length, r) != 0) {
        return RAW_GARBLED;
    }
    return r->status;
}

IOReturn raw_list(RawChan *c, DextWireListReply *r)
{
    IOReturn st;

    memset(r, 0, sizeof(*r));
    st = raw_roundtrip(c, dext_wire_encode_empty(c->tx, sizeof(c->tx), ver(c),
                                                 ++c->seq, DEXT_WIRE_LIST),
                       -1, NULL);
    if (st != kIOReturnSuccess) {
        return st;
    }
    if (c->h.type != DEXT_WIRE_LIST ||
        dext_wire_decode_list_reply(c->rx + DEXT_WIRE_HEADER_SIZE,
                                    c->h.length, r) != 0) {
        return RAW_GARBLED;
    }
    return r->status;
}

bool raw_dropped(RawChan *c, unsigned ms, IOReturn *error, unsigned *others)
{
    double end = hostile_now_ms() + ms;
    DextWireHeader h;
    IOReturn st;

    if (error != NULL) {
        *error = 0;
    }
    if (others != NULL) {
        *others = 0;
    }
    for (;;) {
        double left = end - hostile_now_ms();
        ssize_t n;

        if (left <= 0) {
            return false;
        }
        n = raw_recv(c, (unsigned)left + 1, NULL);
        if (n == 0) {
            return true;
        }
        if (n < 0) {
            return false;
        }
        if (dext_wire_decode_header(c->rx, (size_t)n, &h) != 0 ||
            h.type != DEXT_WIRE_ERROR) {
            if (others != NULL) {
                (*others)++;
            }
        } else if (error != NULL && *error == 0 &&
                   dext_wire_decode_status_only(c->rx +
                                                DEXT_WIRE_HEADER_SIZE,
                                                h.length, &st) == 0) {
            *error = st;
        }
    }
}

int raw_encode_any(uint8_t *buf, size_t cap, uint16_t type, uint64_t seq)
{
    DextWireHello hello = { 1, 1, DEXT_WIRE_FEATURES_V1 };
    DextWireOpen op = { .service_id = hostile_service(HOSTILE_EDU_BDF) };
    DextWireAttach at = { { 0 } };
    DextWireCall call = { .selector = kDextSelectorGetIdentity,
                          .scalar_out_cap = 6, .port = 1 };
    DextWireMap map = { 0 };
    int n;

    switch (type) {
    case DEXT_WIRE_HELLO:
        return dext_wire_encode_hello(buf, cap, seq, &hello);
    case DEXT_WIRE_OPEN:
        return dext_wire_encode_open(buf, cap, 1, seq, &op);
    case DEXT_WIRE_ATTACH:
        return dext_wire_encode_attach(buf, cap, 1, seq, &at);
    case DEXT_WIRE_CALL:
    case DEXT_WIRE_CALL_ASYNC:
        return dext_wire_encode_call(buf, cap, 1, seq,
                                     type == DEXT_WIRE_CALL_ASYNC, &call);
    case DEXT_WIRE_WAKE_UNREGISTER:
        return dext_wire_encode_wake_unregister(buf, cap, 1, seq, 1);
    case DEXT_WIRE_RING:
        return dext_wire_encode_ring(buf, cap, 1, seq, 1);
    case DEXT_WIRE_MAP:
        return dext_wire_encode_map(buf, cap, 1, seq, &map);
    case DEXT_WIRE_ERROR:
        return dext_wire_encode_status_only(buf, cap, 1, seq, type,
                                            kIOReturnError);
    default:
        /* LIST, STATUS, WAKE_REGISTER; unknown types framed like them. */
        n = dext_wire_encode_empty(buf, cap, 1, seq, DEXT_WIRE_LIST);
        dext_wire_put_u16(buf + 6, type);
        return n;
    }
}

unsigned raw_register_many(RawChan *c, uint64_t iova0, uint64_t stride,
                           uint64_t va, uint64_t size, unsigned max,
                           IOReturn *fail)
{
    uint64_t seqs[REGISTER_WINDOW];
    unsigned sent = 0, done = 0, ok = 0;
    bool stop = false;

    *fail = kIOReturnSuccess;
    while (done < sent || (!stop && sent < max)) {
        /* Keep the window full until the first refusal. */
        while (!stop && sent < max && sent - done < REGISTER_WINDOW) {
            uint64_t in[3] = { iova0 + sent * stride, va, size };
            uint64_t seq = raw_send_call(c, kDextSelectorRegisterDMARegion,
                                         in, 3, 3);

            if (seq == 0) {
                *fail = RAW_SEND_FAILED;
                stop = true;
                break;
            }
            seqs[sent % REGISTER_WINDOW] = seq;
            sent++;
        }
        if (done < sent) {
            IOReturn st = raw_wait_reply(c, seqs[done % REGISTER_WINDOW],
                                         NULL);

            if (st == kIOReturnSuccess) {
                st = raw_call_reply(c, NULL, 0);
            }
            if (st == kIOReturnSuccess) {
                ok++;
            } else if (*fail == kIOReturnSuccess) {
                *fail = st;
                stop = true;
            }
            if (st == RAW_NO_ANSWER || st == RAW_HUNG_UP) {
                break;
            }
            done++;
        }
    }
    return ok;
}

bool raw_pass_fd(int via, int fd)
{
    RawChan tmp = { .fd = via };
    uint8_t b = 0;

    return raw_send(&tmp, &b, 1, &fd, 1) == 1;
}

int raw_take_fd(int via, unsigned ms)
{
    RawChan tmp = { .fd = via };
    int fd = -1;

    return raw_recv(&tmp, ms, &fd) > 0 ? fd : -1;
}

IOReturn raw_claim(RawChan *c)
{
    return raw_call(c, kDextSelectorClaim, NULL, 0, NULL, 0);
}

IOReturn raw_register(RawChan *c, uint64_t iova, const void *va,
                      uint64_t size, uint64_t *bus)
{
    uint64_t in[3] = { iova, (uint64_t)(uintptr_t)va, size };
    uint64_t out[3];
    IOReturn st = raw_call(c, kDextSelectorRegisterDMARegion, in, 3, out, 3);

    if (bus != NULL) {
        *bus = st == kIOReturnSuccess ? out[1] : 0;
    }
    return st;
}

IOReturn raw_unregister(RawChan *c, uint64_t iova)
{
    return raw_call(c, kDextSelectorUnregisterDMARegion, &iova, 1, NULL, 0);
}

IOReturn raw_probe(RawChan *c, uint64_t iova, uint64_t offset,
                   uint64_t *value)
{
    uint64_t in[2] = { iova, offset };

    return raw_call(c, kDextSelectorProbeDMARegion, in, 2, value, 1);
}

IOReturn raw_alloc_buffer(RawChan *c, uint64_t size, uint64_t *bus)
{
    uint64_t in[2] = { size, 0 };
    uint64_t out[6];
    IOReturn st = raw_call(c, kDextSelectorAllocateDMABuffer, in, 2, out, 6);

    if (bus != NULL) {
        *bus = st == kIOReturnSuccess ? out[3] : 0;
    }
    return st;
}

IOReturn raw_mmio_read(RawChan *c, uint32_t mem_idx, uint64_t off,
                       uint32_t width, uint64_t *value)
{
    uint64_t in[3] = { mem_idx, off, width };

    return raw_call(c, kDextSelectorMMIORead, in, 3, value, 1);
}

IOReturn raw_mmio_write(RawChan *c, uint32_t mem_idx, uint64_t off,
                        uint32_t width, uint64_t value)
{
    uint64_t in[4] = { mem_idx, off, width, value };

    return raw_call(c, kDextSelectorMMIOWrite, in, 4, NULL, 0);
}

IOReturn raw_config_write(RawChan *c, uint32_t off, uint32_t width,
                          uint32_t value)
{
    uint64_t in[3] = { off, width, value };

    return raw_call(c, kDextSelectorConfigWrite, in, 3, NULL, 0);
}

IOReturn raw_setup_interrupts(RawChan *c, uint64_t *nvec)
{
    return raw_call(c, kDextSelectorSetupInterrupts, NULL, 0, nvec, 1);
}

IOReturn raw_edu_wait_idle(RawChan *c)
{
    double end = hostile_now_ms() + c->timeout_ms;
    uint64_t cmd = 0;
    IOReturn st;

    for (;;) {
        st = raw_mmio_read(c, EDU_MEM_IDX, EDU_REG_DMA_CMD, 8, &cmd);
        if (st != kIOReturnSuccess || !(cmd & EDU_DMA_RUN)) {
            return st;
        }
        if (hostile_now_ms() > end) {
            return kIOReturnTimeout;
        }
        hostile_sleep_ms(0);
    }
}

IOReturn raw_edu_dma(RawChan *c, uint64_t src, uint64_t dst, uint64_t count,
                     bool to_ram, bool wait)
{
    IOReturn st;

    st = raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_DMA_SRC, 8, src);
    if (st == kIOReturnSuccess) {
        st = raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_DMA_DST, 8, dst);
    }
    if (st == kIOReturnSuccess) {
        st = raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_DMA_COUNT, 8, count);
    }
    if (st == kIOReturnSuccess) {
        st = raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_DMA_CMD, 8,
                            EDU_DMA_RUN | (to_ram ? EDU_DMA_TO_RAM : 0));
    }
    return st == kIOReturnSuccess && wait ? raw_edu_wait_idle(c) : st;
}

IOReturn raw_edu_raise_irq(RawChan *c)
{
    return raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_IRQ_RAISE, 4, 1);
}
