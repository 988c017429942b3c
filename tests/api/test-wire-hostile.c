/*
 * SPDX-License-Identifier: MIT
 *
 * dextd against a client that speaks the wire protocol by hand: things
 * the library never sends.  Each must be refused without harming the
 * daemon or other clients.
 *
 *  - A wake port that is not a SEQPACKET/DGRAM socket (an eventfd, a
 *    pipe, a stream socket): kIOReturnBadArgument.  Regression test: a
 *    client sharing an eventfd could clear O_NONBLOCK on it and wedge a
 *    daemon thread in write().
 *  - ATTACH with a made-up token: refused (no session is reachable
 *    without the token OPEN handed out).
 *  - Garbage, a header whose length lies, a reply sent to the daemon:
 *    the channel is dropped; the daemon keeps serving.
 *
 * Unix transport only (skipped in process).
 */

#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "protocol/dext-selectors.h"
#include "protocol/dext-wire.h"

static uint8_t msg[DEXT_WIRE_MAX_MSG];
static uint64_t next_seq = 1;

static int raw_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s",
             harness_socket_path());
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Receive one reply into msg within the harness bound; its length. */
static ssize_t raw_recv(int fd, int *rfd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int nfds = 0;
    bool trunc = false;

    if (poll(&p, 1, HARNESS_WAIT_MS) != 1) {
        return -1;
    }
    return dext_wire_recvmsg(fd, msg, sizeof(msg), 0, rfd, rfd ? 1 : 0,
                             &nfds, &trunc);
}

/*
 * HELLO with @features and OPEN the edu: a channel with a session, or
 * -1; the features dextd answered with in @granted.
 */
static int raw_session_with(uint8_t token[DEXT_WIRE_TOKEN_SIZE],
                            uint32_t features, uint32_t *granted)
{
    DextWireHello hello = { 1, 1, features };
    DextWireHelloReply hr;
    DextWireListReply lr;
    DextWireOpenReply orep;
    DextWireOpen op = { 0 };
    DextWireHeader h;
    int fd = raw_connect();
    int n;

    if (!CHECK(fd >= 0)) {
        return -1;
    }
    n = dext_wire_encode_hello(msg, sizeof(msg), next_seq++, &hello);
    dext_wire_sendmsg(fd, msg, (size_t)n, -1);
    n = (int)raw_recv(fd, NULL);
    if (!CHECK(n > 0 && dext_wire_decode_header(msg, (size_t)n, &h) == 0 &&
               dext_wire_decode_hello_reply(msg + DEXT_WIRE_HEADER_SIZE,
                                            h.length, &hr) == 0 &&
               hr.status == kIOReturnSuccess)) {
        close(fd);
        return -1;
    }
    *granted = hr.features;
    n = dext_wire_encode_empty(msg, sizeof(msg), 1, next_seq++,
                               DEXT_WIRE_LIST);
    dext_wire_sendmsg(fd, msg, (size_t)n, -1);
    n = (int)raw_recv(fd, NULL);
    if (!CHECK(n > 0 && dext_wire_decode_header(msg, (size_t)n, &h) == 0 &&
               dext_wire_decode_list_reply(msg + DEXT_WIRE_HEADER_SIZE,
                                           h.length, &lr) == 0 &&
               lr.count >= 1)) {
        close(fd);
        return -1;
    }
    op.service_id = lr.ids[0];
    n = dext_wire_encode_open(msg, sizeof(msg), 1, next_seq++, &op);
    dext_wire_sendmsg(fd, msg, (size_t)n, -1);
    n = (int)raw_recv(fd, NULL);
    if (!CHECK(n > 0 && dext_wire_decode_header(msg, (size_t)n, &h) == 0 &&
               dext_wire_decode_open_reply(msg + DEXT_WIRE_HEADER_SIZE,
                                           h.length, &orep) == 0 &&
               orep.status == kIOReturnSuccess)) {
        close(fd);
        return -1;
    }
    if (token != NULL) {
        memcpy(token, orep.token, DEXT_WIRE_TOKEN_SIZE);
    }
    return fd;
}

/* HELLO (a full channel) and OPEN the edu: a session's channel, or -1. */
static int raw_session(uint8_t token[DEXT_WIRE_TOKEN_SIZE])
{
    uint32_t granted;

    return raw_session_with(token, DEXT_WIRE_FEATURES_V1, &granted);
}

/* A CALL of @selector with @in, passing @pass_fd; the reply's status. */
static IOReturn raw_call(int fd, uint32_t selector, const uint64_t *in,
                         uint32_t nin, int pass_fd, uint64_t *out)
{
    DextWireCall m = { .selector = selector, .scalar_in_cnt = nin,
                       .scalar_out_cap = out ? 1 : 0 };
    DextWireCallReply r = { .status = kIOReturnIPCError };
    DextWireHeader h;
    int n;

    memcpy(m.scalar_in, in, nin * sizeof(*in));
    n = dext_wire_encode_call(msg, sizeof(msg), 1, next_seq++, false, &m);
    if (dext_wire_sendmsg(fd, msg, (size_t)n, pass_fd) != n) {
        return kIOReturnIPCError;
    }
    n = (int)raw_recv(fd, NULL);
    if (n <= 0 || dext_wire_decode_header(msg, (size_t)n, &h) != 0 ||
        dext_wire_decode_call_reply(msg + DEXT_WIRE_HEADER_SIZE, h.length,
                                    &r) != 0) {
        return kIOReturnIPCError;
    }
    if (out != NULL && r.scalar_out_cnt == 1) {
        *out = r.scalar_out[0];
    }
    return r.status;
}

/* WAKE_REGISTER passing @port_fd; the reply's status (and port). */
static IOReturn wake_register_port(int fd, int port_fd, uint32_t *port)
{
    DextWireWakeReply wr = { .status = kIOReturnError };
    DextWireHeader h;
    int n;

    n = dext_wire_encode_empty(msg, sizeof(msg), 1, next_seq++,
                               DEXT_WIRE_WAKE_REGISTER);
    if (dext_wire_sendmsg(fd, msg, (size_t)n, port_fd) != n) {
        return kIOReturnIPCError;
    }
    n = (int)raw_recv(fd, NULL);
    if (n <= 0 || dext_wire_decode_header(msg, (size_t)n, &h) != 0 ||
        dext_wire_decode_wake_reply(msg + DEXT_WIRE_HEADER_SIZE, h.length,
                                    &wr) != 0) {
        return kIOReturnIPCError;
    }
    if (port != NULL) {
        *port = wr.port;
    }
    return wr.status;
}

static IOReturn wake_register(int fd, int port_fd)
{
    return wake_register_port(fd, port_fd, NULL);
}

/* WAKE_UNREGISTER of @port; the reply's status. */
static IOReturn wake_unregister(int fd, uint32_t port)
{
    IOReturn st = kIOReturnIPCError;
    DextWireHeader h;
    int n;

    n = dext_wire_encode_wake_unregister(msg, sizeof(msg), 1, next_seq++,
                                         port);
    dext_wire_sendmsg(fd, msg, (size_t)n, -1);
    n = (int)raw_recv(fd, NULL);
    if (n > 0 && dext_wire_decode_header(msg, (size_t)n, &h) == 0) {
        dext_wire_decode_status_only(msg + DEXT_WIRE_HEADER_SIZE, h.length,
                                     &st);
    }
    return st;
}

/*
 * Open fds of dextd once its asynchronous clean-up is down to @want (it
 * closes finished channels on its own time, so a count taken earlier may
 * still include some from before).
 */
static int daemon_fds_settled(int want)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;
    int n;

    while ((n = harness_count_fds(harness_server_pid())) > want &&
           !harness_expired(&d)) {
        harness_backoff(&round);
    }
    return n;
}

/* HELLO then ATTACH @token on a new channel; the reply's status. */
static IOReturn attach_with(const uint8_t token[DEXT_WIRE_TOKEN_SIZE])
{
    DextWireHello hello = { 1, 1, DEXT_WIRE_FEATURES_V1 };
    IOReturn st = kIOReturnNotResponding;
    DextWireAttach at;
    DextWireHeader h;
    int fd = raw_connect();
    int n;

    if (fd < 0) {
        return kIOReturnNotResponding;
    }
    memcpy(at.token, token, sizeof(at.token));
    n = dext_wire_encode_hello(msg, sizeof(msg), next_seq++, &hello);
    dext_wire_sendmsg(fd, msg, (size_t)n, -1);
    if (raw_recv(fd, NULL) > 0) {
        n = dext_wire_encode_attach(msg, sizeof(msg), 1, next_seq++, &at);
        dext_wire_sendmsg(fd, msg, (size_t)n, -1);
        n = (int)raw_recv(fd, NULL);
        if (n > 0 && dext_wire_decode_header(msg, (size_t)n, &h) == 0) {
            dext_wire_decode_status_only(msg + DEXT_WIRE_HEADER_SIZE,
                                         h.length, &st);
        }
    }
    close(fd);
    return st;
}

/* True if the daemon hung up on @fd (EOF, perhaps after an ERROR). */
static bool dropped(int fd)
{
    int i;

    for (i = 0; i < 2; i++) {
        ssize_t n = raw_recv(fd, NULL);

        if (n == 0) {
            return true;
        }
        if (n < 0) {
            return false;
        }
    }
    return false;
}

static void still_serving(void)
{
    io_connect_t c = harness_connect_edu();
    uint64_t v = 0;

    if (c) {
        CHECK_KR(apple_dext_config_read(c, 0, 4, &v), kIOReturnSuccess);
        CHECK_EQ(v, 0x11e81234);
        apple_dext_disconnect(c);
    }
}

int main(int argc, char **argv)
{
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];
    int fd, efd, pfd[2], sp[2], n;

    harness_init(argc, argv, NULL);
    if (!harness_is_unix()) {
        harness_skip("hand-made wire messages need dextd: unix only");
    }

    harness_section("wake ports must be message sockets");
    fd = raw_session(token);
    if (fd < 0) {
        return harness_finish();
    }
    efd = eventfd(0, EFD_CLOEXEC);
    CHECK_KR(wake_register(fd, efd), kIOReturnBadArgument);
    close(efd);
    if (CHECK(pipe2(pfd, O_CLOEXEC) == 0)) {
        CHECK_KR(wake_register(fd, pfd[0]), kIOReturnBadArgument);
        CHECK_KR(wake_register(fd, pfd[1]), kIOReturnBadArgument);
        close(pfd[0]);
        close(pfd[1]);
    }
    if (CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0)) {
        CHECK_KR(wake_register(fd, sp[0]), kIOReturnBadArgument);
        close(sp[0]);
        close(sp[1]);
    }
    CHECK_KR(wake_register(fd, -1), kIOReturnBadArgument);
    if (CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
                         sp) == 0)) {
        CHECK_KR(wake_register(fd, sp[0]), kIOReturnSuccess);
        close(sp[0]);
        close(sp[1]);
    }

    harness_section("ATTACH needs the session's token");
    {
        DextWireAttach at;
        DextWireHeader h;
        IOReturn st = kIOReturnSuccess;
        int fd2 = raw_connect();
        DextWireHello hello = { 1, 1, DEXT_WIRE_FEATURES_V1 };

        memcpy(at.token, token, sizeof(at.token));
        at.token[0] ^= 1;
        n = dext_wire_encode_hello(msg, sizeof(msg), next_seq++, &hello);
        dext_wire_sendmsg(fd2, msg, (size_t)n, -1);
        CHECK(raw_recv(fd2, NULL) > 0);
        n = dext_wire_encode_attach(msg, sizeof(msg), 1, next_seq++, &at);
        dext_wire_sendmsg(fd2, msg, (size_t)n, -1);
        n = (int)raw_recv(fd2, NULL);
        if (n > 0 && dext_wire_decode_header(msg, (size_t)n, &h) == 0) {
            dext_wire_decode_status_only(msg + DEXT_WIRE_HEADER_SIZE,
                                         h.length, &st);
        }
        CHECK_MSG(n <= 0 || st != kIOReturnSuccess,
                  "ATTACH with a wrong token succeeded");
        close(fd2);
    }
    close(fd);

    harness_section("a stolen token from another process is refused");
    fd = raw_session(token);
    if (fd >= 0) {
        pid_t child;
        int status = 0;

        /* The owner itself may attach more channels... */
        CHECK_KR(attach_with(token), kIOReturnSuccess);
        /* ...another process holding the right token may not. */
        child = fork();
        if (child == 0) {
            _exit(attach_with(token) == kIOReturnSuccess ? 1 : 0);
        }
        CHECK(child > 0 && waitpid(child, &status, 0) == child &&
              WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(fd);
    }

    harness_section("wake ports are capped per session, and given back");
    {
        int before = harness_count_fds(harness_server_pid());
        uint32_t ports[DEXT_WIRE_MAX_PORTS];
        unsigned i, ok = 0;

        fd = raw_session(NULL);
        for (i = 0; fd >= 0 && i < DEXT_WIRE_MAX_PORTS; i++) {
            if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
                           sp) != 0) {
                break;
            }
            ok += wake_register_port(fd, sp[0], &ports[i]) ==
                  kIOReturnSuccess;
            close(sp[0]);
            close(sp[1]);
        }
        CHECK_EQ(ok, DEXT_WIRE_MAX_PORTS);
        if (fd >= 0 && CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET |
                                        SOCK_CLOEXEC, 0, sp) == 0)) {
            CHECK_KR(wake_register(fd, sp[0]), kIOReturnNoSpace);
            CHECK_KR(wake_unregister(fd, ports[0]), kIOReturnSuccess);
            CHECK_KR(wake_unregister(fd, ports[0]), kIOReturnNotFound);
            CHECK_KR(wake_register(fd, sp[0]), kIOReturnSuccess);
            close(sp[0]);
            close(sp[1]);
        }
        if (fd >= 0) {
            close(fd);
        }
        /* Every port's fd went with the session: no growth. */
        if (before >= 0) {
            int after = daemon_fds_settled(before);

            CHECK_MSG(after <= before, "dextd fds %d -> %d", before, after);
        }
    }

    harness_section("a lean channel takes no fds and names no memory");
    {
        int before = harness_count_fds(harness_server_pid());
        uint32_t granted = 0;
        uint64_t v = 0;

        fd = raw_session_with(NULL, DEXT_WIRE_FEATURES_V1 |
                              DEXT_WIRE_FEAT_LEAN, &granted);
        CHECK(granted & DEXT_WIRE_FEAT_LEAN);
        if (fd >= 0 && CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET |
                                        SOCK_CLOEXEC, 0, sp) == 0)) {
            /* The kernel drops the fd: dextd sees a WAKE_REGISTER without. */
            CHECK_KR(wake_register(fd, sp[0]), kIOReturnBadArgument);
            close(sp[1]);
        }
        if (fd >= 0) {
            static uint8_t page[4096] __attribute__((aligned(4096)));
            uint64_t in[4] = { 0x1000, (uintptr_t)page, sizeof(page), 0 };
            uint64_t cr[2] = { 0, 4 };
            int mfd = memfd_create("lean", MFD_CLOEXEC);

            /* Even the opener's own DMA calls need a full channel... */
            CHECK_KR(raw_call(fd, kDextSelectorRegisterDMARegion, in, 3, -1,
                              NULL), kIOReturnNotPermitted);
            CHECK_KR(raw_call(fd, kDextSelectorRegisterDMARegion, in, 4, mfd,
                              NULL), kIOReturnNotPermitted);
            CHECK_KR(raw_call(fd, kDextSelectorProbeDMARegion, in, 2, -1,
                              NULL), kIOReturnNotPermitted);
            /* ...and an fd beside any other call is dropped unseen. */
            CHECK_KR(raw_call(fd, kDextSelectorConfigRead, cr, 2, sp[0], &v),
                     kIOReturnSuccess);
            CHECK_EQ(v, 0x11e81234);
            if (mfd >= 0) {
                close(mfd);
            }
            close(sp[0]);
            /* A message longer than any request drops the channel. */
            {
                static uint8_t big[DEXT_WIRE_MAX_MSG + 64];

                dext_wire_encode_empty(big, sizeof(big), 1, next_seq++,
                                       DEXT_WIRE_STATUS);
                CHECK(send(fd, big, sizeof(big), 0) == (ssize_t)sizeof(big));
                CHECK(dropped(fd));
            }
            close(fd);
        }
        if (before >= 0) {
            int after = daemon_fds_settled(before);

            CHECK_MSG(after <= before, "dextd fds %d -> %d", before, after);
        }
        /* A full channel is what a client gets unless it asks. */
        fd = raw_session_with(NULL, DEXT_WIRE_FEATURES_V1, &granted);
        CHECK(!(granted & DEXT_WIRE_FEAT_LEAN));
        if (fd >= 0) {
            close(fd);
        }
    }

    harness_section("malformed messages drop the channel, nothing else");
    fd = raw_session(NULL);
    if (fd >= 0) {
        memset(msg, 0xff, 64);
        send(fd, msg, 64, 0);
        CHECK(dropped(fd));
        close(fd);
    }
    fd = raw_session(NULL);
    if (fd >= 0) {
        /* A header promising more payload than was sent. */
        n = dext_wire_encode_empty(msg, sizeof(msg), 1, next_seq++,
                                   DEXT_WIRE_STATUS);
        dext_wire_put_u32(msg + 12, 0x7fffffff);
        send(fd, msg, (size_t)n, 0);
        CHECK(dropped(fd));
        close(fd);
    }
    fd = raw_session(NULL);
    if (fd >= 0) {
        n = dext_wire_encode_status_only(msg, sizeof(msg), 1, next_seq++,
                                         DEXT_WIRE_ERROR, kIOReturnSuccess);
        send(fd, msg, (size_t)n, 0);
        CHECK(dropped(fd));
        close(fd);
    }
    still_serving();
    return harness_finish();
}
