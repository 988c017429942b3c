/*
 * SPDX-License-Identifier: MIT
 *
 * Fuzz target: dextd's request handling, in process.  A Daemon with a
 * dext core serving one emulated edu device, and up to four channels
 * that have no socket: handle_request() works on buffers, so the target
 * hands it what a channel thread would have received and looks at the
 * reply it would have sent.
 *
 * The input starts with two bytes of set-up: the fd budget beyond the
 * four channels' share (low 6 bits), whether dextd's own pid is ours
 * (bit 6: every socket made here is then "dextd itself" and refused as a
 * wake port), and core policies (second byte: bit 0 contract-only, bit
 * 1 unclaimed writes).  Then a script of operations, each a byte: the
 * channel (low 2 bits) and what to do (the rest, modulo 8):
 *
 *   0-4  a request: a flags byte, a u16-prefixed message, then a byte
 *        per fd saying what kind of fd goes with it (FD_*).  Flags:
 *        bits 0-2 how many fds (more than DEXTD_MAX_FDS: truncated, as
 *        the kernel would drop the rest), bit 3 sent by another process,
 *        bit 4 sender unknown, bit 5 an ATTACH carries the last token an
 *        OPEN handed out, bit 6 the header's magic, version and length
 *        are set right, bit 7 the message was truncated;
 *   5    the channel hangs up (its session reference goes);
 *   6    the channel's process "dies": its pidfd is one of an exited
 *        process, so ATTACH must refuse it and client memory reads fail;
 *   7    the wake ports are drained.
 *
 * Invariants checked (abort() = a finding):
 *  - every request gets exactly one well-formed reply, of its own type or
 *    ERROR, with its sequence number, and an fd only with a successful
 *    MAP;
 *  - the fd budget's charge always equals what is held: six a channel,
 *    five a session, one a wake port; the core counts as many sessions as
 *    dextd holds;
 *  - once every channel is gone, no session, charge or fd is left.
 *
 * Client memory is this process, so RegisterDMARegion addresses are
 * folded into a private arena (as in fuzz-core.c): otherwise the device
 * model would DMA into the fuzzer itself, which no client of dextd can
 * make it do.
 */

#define _GNU_SOURCE

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/backend.h"
#include "daemon/dextd.h"
#include "fuzz/fuzz-script.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define NCHANNELS   4
#define ARENA_SIZE  (256 * 1024)
#define MAX_OPS     128
#define MAX_PEERS   256

/* What goes with a request as its fds. */
enum {
    FD_SEQPACKET,           /* a connected SEQPACKET socket: a wake port */
    FD_DGRAM,               /* a connected DGRAM socket: a wake port */
    FD_STREAM,              /* a STREAM socket: refused */
    FD_EVENTFD,             /* not a socket: refused */
    FD_STUFFED,             /* SEQPACKET with messages and fds queued */
    FD_UNCONNECTED,         /* refused */
    FD_LISTENING,           /* refused */
    FD_INET,                /* not AF_UNIX: refused */
};

typedef struct Fuzz {
    Daemon d;
    Channel *ch[NCHANNELS];
    int peers[MAX_PEERS];       /* the other ends of sockets handed over */
    int npeers;
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];
    bool have_token;
} Fuzz;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *arena;
static int dead_pidfd = -1;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz-dextd: %s\n", what);
    abort();
}

/* Once: the arena, and a pidfd of a process that has exited. */
static void setup_once(void)
{
    pid_t child;

    arena = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED) {
        fail("no arena");
    }
    child = fork();
    if (child == 0) {
        _exit(0);
    }
    if (child < 0) {
        fail("fork");
    }
    dead_pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    waitpid(child, NULL, 0);
    if (dead_pidfd < 0) {
        fail("pidfd_open");
    }
}

/*
 * A channel as accept_one() makes it, admitted and charged to the
 * budget; NULL where the listener refuses the connection instead
 * (channel_admit_locked(): here the channel cap, or no room in the fd
 * budget for a channel's fds, since the channels are never linked into
 * the daemon's list and root's are exempt from the per-user cap).
 */
static Channel *channel_open(Fuzz *f)
{
    struct ucred cred = { .pid = getpid(), .uid = geteuid(),
                          .gid = getegid() };
    const char *refused;
    Channel *ch;

    dext_mutex_lock(&f->d.lock);
    refused = channel_admit_locked(&f->d, &cred);
    dext_mutex_unlock(&f->d.lock);
    if (refused != NULL) {
        return NULL;
    }
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        fail("out of memory");
    }
    ch->d = &f->d;
    ch->fd = -1;
    ch->pid = getpid();
    ch->uid = geteuid();
    ch->pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (ch->pidfd < 0) {
        fail("pidfd_open");
    }
    return ch;
}

/* What channel_thread() does when a channel ends. */
static void channel_close(Fuzz *f, int i)
{
    Channel *ch = f->ch[i];

    if (ch == NULL) {
        return;
    }
    ring_release(ch);
    if (ch->session != NULL) {
        session_unref(&f->d, ch->session);
    }
    close(ch->pidfd);
    channel_unadmit(&f->d);
    free(ch);
    f->ch[i] = NULL;
}

static void keep_peer(Fuzz *f, int fd)
{
    if (f->npeers < MAX_PEERS) {
        f->peers[f->npeers++] = fd;
    } else {
        close(fd);
    }
}

/* A socket pair of @type: one end returned, the other kept here. */
static int make_pair(Fuzz *f, int type)
{
    int sv[2];

    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0) {
        return -1;
    }
    keep_peer(f, sv[1]);
    return sv[0];
}

/*
 * A SEQPACKET socket with a message carrying an fd and an empty message
 * queued: sealing it as a wake port must empty it and close that fd.
 */
static int make_stuffed(Fuzz *f)
{
    int sv[2], inner[2];

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, inner) == 0) {
        (void)dext_wire_sendmsg(sv[1], "x", 1, inner[0]);
        close(inner[0]);
        close(inner[1]);
    }
    (void)send(sv[1], "", 0, MSG_DONTWAIT);
    keep_peer(f, sv[1]);
    return sv[0];
}

static int make_fd(Fuzz *f, int kind)
{
    int fd;

    switch (kind % 8) {
    case FD_SEQPACKET:
        return make_pair(f, SOCK_SEQPACKET);
    case FD_DGRAM:
        return make_pair(f, SOCK_DGRAM);
    case FD_STREAM:
        return make_pair(f, SOCK_STREAM);
    case FD_EVENTFD:
        return eventfd(0, EFD_CLOEXEC);
    case FD_STUFFED:
        return make_stuffed(f);
    case FD_UNCONNECTED:
        return socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    case FD_LISTENING: {
        int on = 1;

        /* SO_PASSCRED lets listen() autobind an abstract name. */
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            (void)setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
            (void)listen(fd, 1);
        }
        return fd;
    }
    default:
        return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
}

static void drain_peers(Fuzz *f)
{
    char buf[64];
    int i;

    for (i = 0; i < f->npeers; i++) {
        while (recv(f->peers[i], buf, sizeof(buf), MSG_DONTWAIT) > 0) {
        }
    }
}

/* Point a RegisterDMARegion at the arena, in the message itself. */
static void fold_into_arena(uint8_t *msg, size_t len)
{
    DextWireHeader h;
    DextWireCall c;
    uint8_t *scalars = msg + DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_CALL_FIXED;

    if (dext_wire_decode_header(msg, len, &h) != 0 ||
        h.type != DEXT_WIRE_CALL ||
        dext_wire_decode_call(msg + DEXT_WIRE_HEADER_SIZE, h.length, false,
                              &c) != 0 ||
        c.scalar_in_cnt < 3) {
        return;
    }
    fuzz_fold_into_arena(&c, arena, ARENA_SIZE);
    dext_wire_put_u64(scalars + 8, c.scalar_in[1]);
    dext_wire_put_u64(scalars + 16, c.scalar_in[2]);
}

/* Set magic, version and length right, so mutations get past them. */
static void normalize_header(Channel *ch, uint8_t *msg, size_t len)
{
    uint16_t type;

    if (len < DEXT_WIRE_HEADER_SIZE) {
        return;
    }
    type = dext_wire_get_u16(msg + 6);
    dext_wire_put_u32(msg, DEXT_WIRE_MAGIC);
    dext_wire_put_u16(msg + 4, type == DEXT_WIRE_HELLO || ch->version == 0 ?
                               DEXT_WIRE_VERSION_HELLO : ch->version);
    dext_wire_put_u32(msg + 12, (uint32_t)(len - DEXT_WIRE_HEADER_SIZE));
}

/* The reply to the request @msg must be one well-formed answer to it. */
static void check_reply(Fuzz *f, const uint8_t *msg, size_t len,
                        const DextdReply *rep)
{
    DextWireHeader rq, h;
    bool rq_ok = dext_wire_decode_header(msg, len, &rq) == 0;

    if (rep->len <= 0 || (size_t)rep->len > rep->cap) {
        fail("no reply, or one that failed to encode");
    }
    if (dext_wire_decode_header(rep->buf, (size_t)rep->len, &h) != 0 ||
        !(h.flags & DEXT_WIRE_FLAG_REPLY)) {
        fail("malformed reply");
    }
    if (h.seq != dext_wire_peek_seq(msg, len)) {
        fail("reply with another sequence number");
    }
    if (h.type != DEXT_WIRE_ERROR && (!rq_ok || h.type != rq.type)) {
        fail("reply of another type");
    }
    if (rep->fd >= 0) {
        const uint8_t *p = rep->buf + DEXT_WIRE_HEADER_SIZE;
        DextWireMapReply m;
        IOReturn st;

        /* A successful MAP passes the memory, a successful RING its ring. */
        if (h.type == DEXT_WIRE_MAP ?
            dext_wire_decode_map_reply(p, h.length, &m) != 0 ||
            m.status != kIOReturnSuccess :
            h.type != DEXT_WIRE_RING ||
            dext_wire_decode_status_only(p, h.length, &st) != 0 ||
            st != kIOReturnSuccess) {
            fail("an fd with a reply that is no successful MAP or RING");
        }
    }
    if (h.type == DEXT_WIRE_OPEN) {
        DextWireOpenReply o;

        if (!rep->secret) {
            fail("an OPEN reply not marked secret");
        }
        if (dext_wire_decode_open_reply(rep->buf + DEXT_WIRE_HEADER_SIZE,
                                        h.length, &o) == 0 &&
            o.status == kIOReturnSuccess) {
            memcpy(f->token, o.token, sizeof(f->token));
            f->have_token = true;
        }
    }
}

/* The budget's charge is exactly what is held; the core agrees. */
static void check_books(Fuzz *f)
{
    unsigned channels = 0, sessions = 0, ports = 0, rings = 0;
    DextCoreStats st;
    Session *s;
    int i;

    for (i = 0; i < NCHANNELS; i++) {
        channels += f->ch[i] != NULL;
        rings += f->ch[i] != NULL && f->ch[i]->ring != NULL;
    }
    /* Only this thread handles requests: the port tables hold still. */
    dext_mutex_lock(&f->d.lock);
    for (s = f->d.sessions; s != NULL; s = s->next) {
        sessions++;
        for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
            ports += s->ports[i].id != 0;
        }
    }
    if (f->d.nchannels != channels ||
        f->d.fd_charged != channels * DEXTD_CHANNEL_FDS +
                           sessions * DEXTD_SESSION_FDS + ports +
                           rings * DEXTD_RING_FDS ||
        f->d.fd_charged > f->d.fd_budget) {
        fprintf(stderr, "charged %u for %u channels, %u sessions, %u ports, "
                "%u rings (dextd counts %u channels; budget %u)\n",
                f->d.fd_charged, channels, sessions, ports, rings,
                f->d.nchannels, f->d.fd_budget);
        fail("the fd budget's books do not balance");
    }
    dext_mutex_unlock(&f->d.lock);
    dext_core_stats(f->d.core, &st);
    if (st.sessions != sessions) {
        fail("the core counts other sessions than dextd holds");
    }
}

static void do_request(Fuzz *f, int i, FuzzScript *s)
{
    int fds[DEXTD_MAX_FDS];
    DextdRequest req = { .fds = fds, .sender = getpid() };
    DextdReply rep = { .fd = -1 };
    int flags = fuzz_take_u8(s);
    const uint8_t *blob;
    uint8_t *msg;
    size_t len;
    bool keep;
    int want, k;

    blob = fuzz_take_blob(s, &len);
    if (flags < 0 || blob == NULL) {
        return;
    }
    if (f->ch[i] == NULL) {
        f->ch[i] = channel_open(f);
        if (f->ch[i] == NULL) {
            /* Refused at accept: the fds it would have sent go unread. */
            for (k = 0; k < (flags & 7) && k < DEXTD_MAX_FDS; k++) {
                (void)fuzz_take_u8(s);
            }
            return;
        }
    }
    /* Where the channel thread receives it. */
    msg = f->ch[i]->rx;
    req.buf = msg;
    if (len > sizeof(f->ch[i]->rx)) {
        len = sizeof(f->ch[i]->rx);
        req.trunc = true;
    }
    memcpy(msg, blob, len);
    req.len = len;
    if (flags & 0x40) {
        normalize_header(f->ch[i], msg, len);
    }
    if ((flags & 0x20) && f->have_token &&
        len >= DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_TOKEN_SIZE &&
        dext_wire_get_u16(msg + 6) == DEXT_WIRE_ATTACH) {
        memcpy(msg + DEXT_WIRE_HEADER_SIZE, f->token, DEXT_WIRE_TOKEN_SIZE);
    }
    fold_into_arena(msg, len);
    if (flags & 0x08) {
        req.sender = (flags & 0x10) ? 0 : getppid();
    } else if (flags & 0x10) {
        req.sender = -1;
    }
    req.trunc |= (flags & 0x80) != 0;
    want = flags & 7;
    if (want > DEXTD_MAX_FDS) {
        want = DEXTD_MAX_FDS;
        req.trunc = true;
    }
    for (k = 0; k < want; k++) {
        int kind = fuzz_take_u8(s);
        int fd = make_fd(f, kind < 0 ? 0 : kind);

        if (fd >= 0) {
            fds[req.nfds++] = fd;
        }
    }

    rep.buf = f->ch[i]->tx;
    rep.cap = sizeof(f->ch[i]->tx);
    keep = handle_request(f->ch[i], &req, &rep);
    check_reply(f, msg, len, &rep);
    reply_done(&rep);
    if (f->ch[i]->version > DEXT_WIRE_VERSION_MAX) {
        fail("a channel speaks a version nobody offered");
    }
    if (!keep) {
        channel_close(f, i);
    }
}

static void run(Fuzz *f, FuzzScript *s)
{
    int op, nops = 0;

    while ((op = fuzz_take_u8(s)) >= 0 && nops++ < MAX_OPS) {
        int i = op & (NCHANNELS - 1);

        switch ((op >> 2) % 8) {
        case 5:
            channel_close(f, i);
            break;
        case 6:
            if (f->ch[i] == NULL) {
                f->ch[i] = channel_open(f);
                if (f->ch[i] == NULL) {
                    break;      /* refused at accept */
                }
            }
            close(f->ch[i]->pidfd);
            f->ch[i]->pidfd = fcntl(dead_pidfd, F_DUPFD_CLOEXEC, 0);
            break;
        case 7:
            drain_peers(f);
            break;
        default:
            do_request(f, i, s);
            break;
        }
        check_books(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static Fuzz f;
    FuzzScript s = { data, size };
    DextDevice *dev;
    uint64_t id;
    int setup, policy, fds_before;
    int i;

    if (arena == NULL) {
        setup_once();
    }
    setup = fuzz_take_u8(&s);
    policy = fuzz_take_u8(&s);
    if (policy < 0) {
        return 0;
    }
    fds_before = count_open_fds();

    memset(&f, 0, sizeof(f));
    f.d = (Daemon) {
        .log_level = DEXT_LOG_ERROR,
        .listen_fd = -1,
        .sig_fd = -1,
        .reap_fd = -1,
        .spare_fd = -1,
        .euid = geteuid(),
        /* Not us unless asked: our socket pairs may then be wake ports. */
        .pid = (setup & 0x40) ? getpid() : 1,
        .handshake_ms = DEXTD_HANDSHAKE_S * 1000,
        .fd_budget = NCHANNELS * DEXTD_CHANNEL_FDS + (unsigned)(setup & 63),
        .max_channels = NCHANNELS,
        .uid_channels = NCHANNELS,
    };
    dext_mutex_init(&f.d.lock);
    clock_gettime(CLOCK_MONOTONIC, &f.d.start);
    f.d.core = dext_core_new(daemon_log, &f.d);
    if (f.d.core == NULL || dext_device_create("edu", &dev) != kIOReturnSuccess ||
        dext_core_add_device(f.d.core, dev, &id) != kIOReturnSuccess) {
        fail("cannot serve an edu device");
    }
    dext_core_set_contract_only(f.d.core, policy & 1);
    dext_core_set_policy(f.d.core, (policy & 2) ? DEXT_POLICY_UNCLAIMED_WRITES
                                                : 0);

    run(&f, &s);

    for (i = 0; i < NCHANNELS; i++) {
        channel_close(&f, i);
    }
    check_books(&f);
    if (f.d.sessions != NULL || f.d.fd_charged != 0 || f.d.nchannels != 0) {
        fail("state left after every channel closed");
    }
    dext_core_free(f.d.core);
    for (i = 0; i < f.npeers; i++) {
        close(f.peers[i]);
    }
    dext_mutex_destroy(&f.d.lock);
    if (fds_before >= 0 && count_open_fds() != fds_before) {
        fprintf(stderr, "%d fds open before, %d after\n", fds_before,
                count_open_fds());
        fail("an fd leaked");
    }
    return 0;
}
