/*
 * SPDX-License-Identifier: MIT
 *
 * dextd's limits against a hostile local client speaking the wire
 * protocol by hand ([reliability] issue 9: findings 3, 6 and 7, and the
 * log flood).  Each section restarts dextd as it needs it and ends by
 * checking that its fds and threads are back where they were.
 *
 *  - Wake ports: only a connected AF_UNIX SEQPACKET or DGRAM socket whose
 *    peer is not dextd.  dextd shuts it for reading (the peer's sends
 *    fail) and discards what was queued on it: a channel parked in it no
 *    longer keeps that channel open.
 *  - Per process: 16 channels before HELLO, 256 in all; the next one is
 *    answered kIOReturnNoResources, and other processes still get in.
 *  - The fd budget (RLIMIT_NOFILE 256): wake ports run into
 *    kIOReturnNoResources before dextd's fds do, and a newcomer is
 *    answered, never left waiting.
 *  - Per user (dextd runs as nobody): nobody's channels stop at 3/4 of
 *    the cap and root still gets in.
 *  - Client-triggered warnings are rate-limited, with a count of the
 *    suppressed ones.
 *  - A connection that never says HELLO is closed after the handshake
 *    timeout; one that did is kept.
 *  - A connection whose pool dextd refused a channel (its budget spent by
 *    the process's other connections) goes on calling, and gets the full
 *    channel a DMA registration needs once the others have gone.
 *
 * Unix transport only (skipped in process).
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "protocol/dext-wire.h"

/* dextd's documented limits (docs/man/dextd.8, RESOURCE LIMITS). */
#define PID_PENDING     16
#define PID_CHANNELS    256
#define LOG_BURST       10

static uint8_t msg[DEXT_WIRE_MAX_MSG];
static uint64_t next_seq = 1;

/* One message from @fd into msg: its length, 0 at EOF, -1 if none came. */
static ssize_t raw_recv(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    bool trunc;
    ssize_t n;
    int nfds;

    if (poll(&p, 1, HARNESS_WAIT_MS) != 1) {
        return -1;
    }
    n = dext_wire_recvmsg(fd, msg, sizeof(msg), MSG_DONTWAIT, NULL, 0, &nfds,
                          &trunc);
    if (n < 0 && errno == ECONNRESET) {
        /*
         * dextd refused us and closed with our request unread: the reset
         * comes first, then the ERROR it sent.
         */
        n = dext_wire_recvmsg(fd, msg, sizeof(msg), MSG_DONTWAIT, NULL, 0,
                              &nfds, &trunc);
    }
    return n;
}

/*
 * The status of the reply to a @type request on @fd, decoded into @out
 * (the reply struct of that type): the reply's own status, an ERROR's,
 * kIOReturnNotResponding if nothing came in time, kIOReturnIPCError for
 * end of file or anything else.
 */
static IOReturn raw_reply(int fd, uint16_t type, void *out)
{
    const uint8_t *p = msg + DEXT_WIRE_HEADER_SIZE;
    IOReturn st = kIOReturnIPCError;
    DextWireHeader h;
    ssize_t n = raw_recv(fd);
    int err = -1;

    if (n < 0) {
        return kIOReturnNotResponding;
    }
    if (n == 0 || dext_wire_decode_header(msg, (size_t)n, &h) != 0) {
        return kIOReturnIPCError;
    }
    if (h.type == DEXT_WIRE_ERROR) {
        err = dext_wire_decode_status_only(p, h.length, &st);
        return err == 0 ? st : kIOReturnIPCError;
    }
    if (h.type != type) {
        return kIOReturnIPCError;
    }
    switch (type) {
    case DEXT_WIRE_HELLO:
        err = dext_wire_decode_hello_reply(p, h.length, out);
        st = ((DextWireHelloReply *)out)->status;
        break;
    case DEXT_WIRE_LIST:
        err = dext_wire_decode_list_reply(p, h.length, out);
        st = ((DextWireListReply *)out)->status;
        break;
    case DEXT_WIRE_OPEN:
        err = dext_wire_decode_open_reply(p, h.length, out);
        st = ((DextWireOpenReply *)out)->status;
        break;
    case DEXT_WIRE_WAKE_REGISTER:
        err = dext_wire_decode_wake_reply(p, h.length, out);
        st = ((DextWireWakeReply *)out)->status;
        break;
    case DEXT_WIRE_STATUS:
        err = dext_wire_decode_status_reply(p, h.length, out);
        st = ((DextWireStatusReply *)out)->status;
        break;
    }
    return err == 0 ? st : kIOReturnIPCError;
}

/* HELLO on @fd; the answer's status. */
static IOReturn raw_hello(int fd)
{
    DextWireHello hello = { 1, 1, DEXT_WIRE_FEATURES_V1 };
    DextWireHelloReply r;
    int n = dext_wire_encode_hello(msg, sizeof(msg), next_seq++, &hello);

    /* A refused connection may be closed already: its ERROR still reads. */
    (void)dext_wire_sendmsg(fd, msg, (size_t)n, -1);
    return raw_reply(fd, DEXT_WIRE_HELLO, &r);
}

/* A new connection that said HELLO, or -1 with the status in *@st. */
static int raw_greeted(IOReturn *st)
{
    int fd = harness_raw_connect();

    *st = fd >= 0 ? raw_hello(fd) : kIOReturnNotResponding;
    if (fd >= 0 && *st != kIOReturnSuccess) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* A channel with a session on the edu, or -1 with the status in *@st. */
static int raw_session(IOReturn *st)
{
    DextWireListReply lr;
    DextWireOpenReply orep;
    DextWireOpen op = { 0 };
    int fd = raw_greeted(st);
    int n;

    if (fd < 0) {
        return -1;
    }
    n = dext_wire_encode_empty(msg, sizeof(msg), 1, next_seq++,
                               DEXT_WIRE_LIST);
    (void)dext_wire_sendmsg(fd, msg, (size_t)n, -1);
    *st = raw_reply(fd, DEXT_WIRE_LIST, &lr);
    if (*st == kIOReturnSuccess && lr.count >= 1) {
        op.service_id = lr.ids[0];
        n = dext_wire_encode_open(msg, sizeof(msg), 1, next_seq++, &op);
        (void)dext_wire_sendmsg(fd, msg, (size_t)n, -1);
        *st = raw_reply(fd, DEXT_WIRE_OPEN, &orep);
    }
    if (*st != kIOReturnSuccess) {
        close(fd);
        return -1;
    }
    return fd;
}

/* WAKE_REGISTER of @port_fd on the session channel @fd; the status. */
static IOReturn wake_register(int fd, int port_fd)
{
    DextWireWakeReply wr;
    int n = dext_wire_encode_empty(msg, sizeof(msg), 1, next_seq++,
                                   DEXT_WIRE_WAKE_REGISTER);

    if (dext_wire_sendmsg(fd, msg, (size_t)n, port_fd) != n) {
        return kIOReturnIPCError;
    }
    return raw_reply(fd, DEXT_WIRE_WAKE_REGISTER, &wr);
}

/* Channels dextd has open (this one included), asked on @fd; or -1. */
static int daemon_channels(int fd)
{
    DextWireStatusReply r;
    int n = dext_wire_encode_empty(msg, sizeof(msg), 1, next_seq++,
                                   DEXT_WIRE_STATUS);

    (void)dext_wire_sendmsg(fd, msg, (size_t)n, -1);
    return raw_reply(fd, DEXT_WIRE_STATUS, &r) == kIOReturnSuccess ?
           (int)r.channels : -1;
}

/* Wait (bounded) until @ctl is dextd's only channel. */
static void wait_only_channel(int ctl)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;

    while (daemon_channels(ctl) != 1 && !harness_expired(&d)) {
        harness_backoff(&round);
    }
}

/*
 * A well-behaved client, through the public API, is served.  (The library
 * talks only to a dextd run by root or by its own user.)
 */
static void still_serving(void)
{
    io_connect_t c = harness_connect_edu();
    uint64_t id = 0;

    if (c != IO_OBJECT_NULL) {
        CHECK_KR(apple_dext_config_read(c, 0, 4, &id), kIOReturnSuccess);
        CHECK_EQ(id, 0x11e81234);
        apple_dext_disconnect(c);
    }
}

typedef struct Usage {
    int fds;
    int threads;
} Usage;

/*
 * dextd's fds and threads at rest, after a warm-up session: the least
 * seen over a moment (it reaps finished channels on its own time).
 */
static Usage daemon_at_rest(void)
{
    HarnessDeadline d;
    Usage u = { INT_MAX, INT_MAX };
    pid_t pid = harness_server_pid();
    unsigned round = 0;
    IOReturn st;
    int fd = raw_session(&st);

    if (CHECK_KR(st, kIOReturnSuccess)) {
        close(fd);
    }
    d = harness_deadline(200);
    do {
        int f = harness_count_fds(pid);
        int t = harness_count_threads(pid);

        u.fds = f >= 0 && f < u.fds ? f : u.fds;
        u.threads = t >= 0 && t < u.threads ? t : u.threads;
        harness_backoff(&round);
    } while (!harness_expired(&d));
    return u;
}

/* Wait (bounded) for dextd to be back at @rest, and check it is. */
static void check_at_rest(const Usage *rest, const char *after)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    pid_t pid = harness_server_pid();
    unsigned round = 0;
    int f, t;

    for (;;) {
        f = harness_count_fds(pid);
        t = harness_count_threads(pid);
        if ((f <= rest->fds && t <= rest->threads) || harness_expired(&d)) {
            break;
        }
        harness_backoff(&round);
    }
    printf("# after %s: dextd fds %d (%d before), threads %d (%d before)\n",
           after, f, rest->fds, t, rest->threads);
    CHECK_MSG(f <= rest->fds, "after %s: dextd holds %d fds, %d before",
              after, f, rest->fds);
    CHECK_MSG(t <= rest->threads, "after %s: dextd runs %d threads, %d "
              "before", after, t, rest->threads);
}

/*
 * Restart dextd with $HARNESS_DEXTD_@name set to @value, and @name2 to
 * @value2 if not NULL (the harness reads them at each start).
 */
static void restart_with(const char *name, const char *value,
                         const char *name2, const char *value2)
{
    static const char *const names[] = { "ARGS", "NOFILE", "LOG", "UID" };
    char var[64];
    unsigned i;

    harness_stop_daemon();
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(var, sizeof(var), "HARNESS_DEXTD_%s", names[i]);
        if (strcmp(names[i], name) == 0) {
            setenv(var, value, 1);
        } else if (name2 != NULL && strcmp(names[i], name2) == 0) {
            setenv(var, value2, 1);
        } else {
            unsetenv(var);
        }
    }
    harness_restart_daemon();
}

/* Fork a child that says HELLO on a new connection; true if it could. */
static bool other_process_gets_in(void)
{
    int status = 0;
    pid_t child = fork();

    if (child == 0) {
        IOReturn st;
        int fd = raw_greeted(&st);

        _exit(fd >= 0 ? 0 : 1);
    }
    return child > 0 && waitpid(child, &status, 0) == child &&
           WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_wake_ports(void)
{
    static const int types[] = { SOCK_SEQPACKET, SOCK_DGRAM };
    Usage rest = daemon_at_rest();
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(9) };
    sa_family_t unnamed = AF_UNIX;
    IOReturn st;
    int fd, other, s, sp[2], before;
    unsigned i;

    harness_section("wake ports: connected AF_UNIX message sockets, not "
                    "dextd, shut for reading");
    fd = raw_session(&st);
    if (!CHECK_KR(st, kIOReturnSuccess)) {
        return;
    }
    /* Its own channel: dextd would hold itself open (finding 3). */
    CHECK_KR(wake_register(fd, fd), kIOReturnBadArgument);
    other = raw_greeted(&st);
    if (other >= 0) {
        CHECK_KR(wake_register(fd, other), kIOReturnBadArgument);
        close(other);
    }
    /* A datagram socket of another family. */
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (CHECK(s >= 0 && connect(s, (struct sockaddr *)&in, sizeof(in)) == 0)) {
        CHECK_KR(wake_register(fd, s), kIOReturnBadArgument);
    }
    close(s);
    /* Not connected; listening. */
    s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK_KR(wake_register(fd, s), kIOReturnBadArgument);
    close(s);
    s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (CHECK(s >= 0 && bind(s, (struct sockaddr *)&unnamed,
                             sizeof(unnamed)) == 0 && listen(s, 1) == 0)) {
        CHECK_KR(wake_register(fd, s), kIOReturnBadArgument);
    }
    close(s);

    /* Accepted, and then nothing can be queued on dextd's end. */
    for (i = 0; i < 2; i++) {
        if (!CHECK(socketpair(AF_UNIX, types[i] | SOCK_CLOEXEC, 0,
                              sp) == 0)) {
            continue;
        }
        if (CHECK_KR(wake_register(fd, sp[0]), kIOReturnSuccess)) {
            ssize_t n = send(sp[1], "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);

            CHECK_MSG(n < 0 && errno == EPIPE, "%s: the peer could still "
                      "send to a registered wake port (%zd, %s)",
                      i == 0 ? "SEQPACKET" : "DGRAM", n,
                      n < 0 ? strerror(errno) : "sent");
        }
        close(sp[0]);
        close(sp[1]);
    }

    /*
     * A channel parked in a wake port's queue: once the client lets go
     * of it, dextd must see it close.  Only the port itself stays.
     */
    wait_only_channel(fd);
    before = harness_count_fds(harness_server_pid());
    other = raw_greeted(&st);
    if (other >= 0 && CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET |
                                       SOCK_CLOEXEC, 0, sp) == 0)) {
        HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
        unsigned round = 0;
        int now;

        CHECK(dext_wire_sendmsg(sp[1], "x", 1, other) == 1);
        CHECK_KR(wake_register(fd, sp[0]), kIOReturnSuccess);
        close(other);
        close(sp[0]);
        close(sp[1]);
        while ((now = harness_count_fds(harness_server_pid())) > before + 1 &&
               !harness_expired(&d)) {
            harness_backoff(&round);
        }
        CHECK_MSG(now <= before + 1, "a channel parked in a wake port stays "
                  "open: dextd fds %d -> %d", before, now);
    }
    close(fd);
    check_at_rest(&rest, "the wake ports");
}

static void test_pid_caps(void)
{
    int idle[PID_PENDING];
    int open_fds[PID_CHANNELS];
    DextWireHelloReply hr;
    struct rlimit rl;
    unsigned n = 0;
    Usage rest;
    IOReturn st = kIOReturnSuccess;
    int ctl, extra, i;

    /* Enough fds for dextd's global cap to be above the process cap. */
    restart_with("NOFILE", "4096", NULL, NULL);
    rest = daemon_at_rest();
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024 &&
        rl.rlim_max >= 1024) {
        rl.rlim_cur = 1024;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    harness_section("per process: %d channels before HELLO", PID_PENDING);
    ctl = raw_greeted(&st);
    if (!CHECK_KR(st, kIOReturnSuccess)) {
        return;
    }
    wait_only_channel(ctl);
    for (i = 0; i < PID_PENDING; i++) {
        idle[i] = harness_raw_connect();
        CHECK(idle[i] >= 0);
    }
    /* Refused before it says anything: the ERROR is already there. */
    extra = harness_raw_connect();
    CHECK_KR(raw_reply(extra, DEXT_WIRE_HELLO, &hr), kIOReturnNoResources);
    close(extra);
    CHECK_MSG(other_process_gets_in(), "another process was locked out");
    /* The ones waiting were not harmed. */
    CHECK_KR(raw_hello(idle[0]), kIOReturnSuccess);
    for (i = 0; i < PID_PENDING; i++) {
        close(idle[i]);
    }

    harness_section("per process: %d channels in all", PID_CHANNELS);
    wait_only_channel(ctl);
    /* @ctl is one of them. */
    while (n < PID_CHANNELS) {
        int fd = raw_greeted(&st);

        if (fd < 0) {
            break;
        }
        open_fds[n++] = fd;
    }
    printf("# %u channels from this process, then: %s\n", n + 1,
           apple_dext_strerror(st));
    CHECK_EQ(n + 1, PID_CHANNELS);
    CHECK_KR(st, kIOReturnNoResources);
    CHECK_MSG(other_process_gets_in(), "another process was locked out");
    while (n > 0) {
        close(open_fds[--n]);
    }
    close(ctl);
    check_at_rest(&rest, "the per-process caps");
}

static void test_fd_budget(void)
{
    static const char limit[] = "256";
    int sessions[64];
    int nsessions = 0;
    unsigned ports = 0;
    bool full = false;
    IOReturn st = kIOReturnSuccess;
    Usage rest;
    int fd, i;

    restart_with("NOFILE", limit, NULL, NULL);
    rest = daemon_at_rest();
    harness_section("fd budget: sessions x wake ports against RLIMIT_NOFILE "
                    "%s", limit);
    /*
     * Register wake ports until dextd says no, or until its fds are
     * really spent (what finding 6 did: accept then failed and the next
     * client was never answered).
     */
    while (nsessions < 64 && !full && st != kIOReturnNoResources) {
        fd = raw_session(&st);
        if (fd < 0) {
            break;
        }
        sessions[nsessions++] = fd;
        for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
            int sp[2];

            if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
                           sp) != 0) {
                break;
            }
            st = wake_register(fd, sp[0]);
            close(sp[0]);
            close(sp[1]);
            if (st != kIOReturnSuccess) {
                break;
            }
            ports++;
            if (harness_count_fds(harness_server_pid()) >= atoi(limit)) {
                full = true;
                break;
            }
        }
    }
    printf("# %u wake ports in %d sessions, then: %s%s\n", ports, nsessions,
           apple_dext_strerror(st), full ? " (dextd's fds all spent)" : "");
    CHECK_KR(st, kIOReturnNoResources);

    /* Whatever dextd holds, a newcomer is answered. */
    fd = harness_raw_connect();
    if (CHECK(fd >= 0)) {
        st = raw_hello(fd);
        printf("# a new connection now: %s\n", apple_dext_strerror(st));
        CHECK_MSG(st == kIOReturnNoResources || st == kIOReturnSuccess,
                  "a new connection got %s (never answered: the bug)",
                  apple_dext_strerror(st));
        close(fd);
    }
    while (nsessions > 0) {
        close(sessions[--nsessions]);
    }
    check_at_rest(&rest, "the fd budget");
    still_serving();
}

static void test_uid_cap(void)
{
    static const char nobody[] = "65534";
    int report[2], done[2];
    IOReturn got[2] = { 0, kIOReturnSuccess };
    struct pollfd p;
    Usage rest;
    IOReturn st;
    pid_t child;
    int fd, status = 0;
    char go = 0;

    harness_section("per user: 3/4 of the channels, root always gets in");
    if (geteuid() != 0) {
        printf("# not root: cannot run dextd as another user, skipped\n");
        return;
    }
    restart_with("UID", nobody, "NOFILE", "256");
    rest = daemon_at_rest();
    if (!CHECK(pipe(report) == 0 && pipe(done) == 0)) {
        return;
    }
    child = fork();
    if (child == 0) {
        uid_t uid = (uid_t)atoi(nobody);

        /* As nobody, open channels until dextd says no; then hold them. */
        if (setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) {
            _exit(1);
        }
        while (got[0] < 1000 && raw_greeted(&got[1]) >= 0) {
            got[0]++;
        }
        (void)!write(report[1], got, sizeof(got));
        (void)!read(done[0], &go, 1);
        _exit(0);
    }
    close(report[1]);
    close(done[0]);
    p = (struct pollfd){ .fd = report[0], .events = POLLIN };
    /* Each refusal or timeout of the child's is bounded by the harness. */
    if (CHECK(child > 0 && poll(&p, 1, 4 * HARNESS_WAIT_MS) == 1 &&
              read(report[0], got, sizeof(got)) == sizeof(got))) {
        printf("# nobody got %d channels, then: %s\n", got[0],
               apple_dext_strerror(got[1]));
        CHECK(got[0] >= 1);
        CHECK_KR(got[1], kIOReturnNoResources);
        /* Root is never held to the user's share. */
        fd = raw_session(&st);
        if (CHECK_KR(st, kIOReturnSuccess)) {
            close(fd);
        }
    }
    (void)!write(done[1], &go, 1);
    close(done[1]);
    close(report[0]);
    if (child > 0) {
        waitpid(child, &status, 0);
    }
    check_at_rest(&rest, "the per-user cap");
}

/* Lines of @path that contain @what. */
static unsigned count_lines(const char *path, const char *what)
{
    char line[1024];
    unsigned n = 0;
    FILE *f = fopen(path, "r");

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, what) != NULL;
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

/* A connection that sends garbage; true once dextd has dropped it. */
static bool one_violation(void)
{
    int fd = harness_raw_connect();
    ssize_t n = -1;

    if (fd >= 0) {
        memset(msg, 0xff, 64);
        (void)send(fd, msg, 64, MSG_NOSIGNAL);
        /* An ERROR, then end of file. */
        while ((n = raw_recv(fd)) > 0) {
        }
        close(fd);
    }
    return n == 0;
}

static void test_log_rate(void)
{
    const unsigned flood = 60;
    char path[] = "/tmp/libdext-limits-log-XXXXXX";
    struct timespec pause = { 1, 100000000L };
    HarnessDeadline d;
    uint64_t elapsed_ms;
    double start;
    unsigned i, lines, allowed, round = 0;
    Usage rest;
    int fd = mkstemp(path);

    if (!CHECK(fd >= 0)) {
        return;
    }
    close(fd);
    restart_with("LOG", path, NULL, NULL);
    rest = daemon_at_rest();
    harness_section("client-triggered warnings are rate-limited");
    start = harness_now_ms();
    for (i = 0; i < flood; i++) {
        CHECK(one_violation());
    }
    elapsed_ms = (uint64_t)(harness_now_ms() - start);
    /* A burst, then one a second (and one more for a partial second). */
    allowed = LOG_BURST + (unsigned)(elapsed_ms / 1000) + 1;
    lines = count_lines(path, "dropping channel");
    printf("# %u violations in %llu ms: %u warnings logged (at most %u)\n",
           flood, (unsigned long long)elapsed_ms, lines, allowed);
    CHECK_MSG(lines <= allowed, "%u warnings for %u violations in %llu ms",
              lines, flood, (unsigned long long)elapsed_ms);
    /* Once a token is back, the next warning says what was dropped. */
    nanosleep(&pause, NULL);
    CHECK(one_violation());
    d = harness_deadline(HARNESS_WAIT_MS);
    while (count_lines(path, "messages suppressed") == 0 &&
           !harness_expired(&d)) {
        harness_backoff(&round);
    }
    CHECK_MSG(count_lines(path, "messages suppressed") >= 1,
              "no \"messages suppressed\" line in dextd's log");
    check_at_rest(&rest, "the log flood");
    unlink(path);
}

static void test_handshake_timeout(void)
{
    DextWireHelloReply hr;
    Usage rest;
    IOReturn st;
    int idle, greeted;

    restart_with("ARGS", "--handshake-timeout 1", NULL, NULL);
    rest = daemon_at_rest();
    harness_section("a connection that never says HELLO is closed");
    idle = harness_raw_connect();
    greeted = raw_greeted(&st);
    CHECK_KR(st, kIOReturnSuccess);
    if (CHECK(idle >= 0)) {
        /* Closed, with nothing said: end of file, within the bound. */
        CHECK_KR(raw_reply(idle, DEXT_WIRE_HELLO, &hr), kIOReturnIPCError);
        close(idle);
    }
    if (greeted >= 0) {
        CHECK_MSG(daemon_channels(greeted) >= 1, "a channel past HELLO was "
                  "closed too");
        close(greeted);
    }
    check_at_rest(&rest, "the handshake timeout");
}

/* 2000 ConfigReads on the connection at @arg; NULL if all succeeded. */
static void *config_reads(void *arg)
{
    io_connect_t c = *(const io_connect_t *)arg;
    uint64_t v;
    int i;

    for (i = 0; i < 2000; i++) {
        if (apple_dext_config_read(c, 0, 4, &v) != kIOReturnSuccess) {
            return arg;
        }
    }
    return NULL;
}

/*
 * A refusal lowers how many channels a pool asks dextd for, not whether
 * it may have its first full channel: that one is asked for whenever a
 * call needs it, for the refusal may have been the process's other
 * connections, since closed.  (The pool used to answer kIOReturnNoResources
 * for every DMA call for the rest of the connection.)
 */
static void test_pool_after_refusal(void)
{
    static uint8_t page[4096] __attribute__((aligned(4096)));
    io_connect_t a = IO_OBJECT_NULL, fill[32];
    pthread_t t[2];
    void *res[2] = { NULL, NULL };
    uint64_t bus = 0;
    unsigned n = 0;
    IOReturn st = kIOReturnSuccess;
    Usage rest;
    int i;

    /* Room for about four channels with their sessions. */
    restart_with("NOFILE", "100", NULL, NULL);
    rest = daemon_at_rest();
    harness_section("a pool refused a channel still gets its full one "
                    "once dextd has room");
    if (!CHECK_KR(apple_dext_connect_target(harness_target(), EDU_BUS,
                                            EDU_DEV, EDU_FN, &a),
                  kIOReturnSuccess) ||
        !CHECK_KR(apple_dext_claim(a), kIOReturnSuccess)) {
        apple_dext_disconnect(a);
        return;
    }
    /* Our other connections take the rest of dextd's fds. */
    while (n < sizeof(fill) / sizeof(fill[0])) {
        st = apple_dext_connect_target(harness_target(), EDU_BUS, EDU_DEV,
                                       EDU_FN, &fill[n]);
        if (st != kIOReturnSuccess) {
            break;
        }
        n++;
    }
    printf("# %u more connections, then: %s\n", n, apple_dext_strerror(st));
    CHECK_KR(st, kIOReturnNoResources);
    /* Two callers at once: the pool asks for a second channel, refused. */
    for (i = 0; i < 2; i++) {
        CHECK(pthread_create(&t[i], NULL, config_reads, &a) == 0);
    }
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], &res[i]);
        CHECK_MSG(res[i] == NULL, "caller %d: a call failed", i);
    }
    while (n > 0) {
        apple_dext_disconnect(fill[--n]);
    }
    /* Names our memory: a full channel, which dextd can give now. */
    CHECK_KR(apple_dext_register_dma(a, 0x10000, (uintptr_t)page,
                                     sizeof(page), &bus, NULL),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_unregister_dma(a, 0x10000), kIOReturnSuccess);
    apple_dext_disconnect(a);
    check_at_rest(&rest, "a pool's refusal");
}

int main(int argc, char **argv)
{
    harness_init(argc, argv, NULL);
    if (!harness_is_unix()) {
        harness_skip("hand-made wire messages need dextd: unix only");
    }
    test_wake_ports();
    test_pid_caps();
    test_fd_budget();
    test_log_rate();
    test_uid_cap();
    test_pool_after_refusal();
    /* Last: a dextd without the option cannot even start. */
    test_handshake_timeout();
    return harness_finish();
}
