/*
 * SPDX-License-Identifier: MIT
 *
 * The library against a dextd that misbehaves: the other side of the
 * hostile suite.  A fake dextd (a child process, so that it can die,
 * and so that this process's fd table and limits are the library's
 * alone) listens on a private socket and speaks the wire protocol
 * correctly up to one point, where it does one wrong thing:
 *
 *  - the handshake: a HELLO answered with garbage or not at all, a LIST
 *    of more services than a reply may hold, a short OPEN reply; the
 *    reply to GetIdentity, by which a connect finds its device, empty,
 *    missing or cut off by death;
 *  - the RING reply (",poll"): no memfd, a pipe, a plain file, a memfd
 *    it can still shrink (and does, once the ring is in use), one whose
 *    seals are still open, write-sealed, too small, too large, two
 *    memfds, a memfd on a refusal, a refusal, an ERROR, no answer;
 *  - the reply to one call, through the ring and through the socket:
 *    its length lying, zero, a byte past the largest payload or 1 MiB,
 *    a short header, a message past the largest, an unknown or another
 *    type, no reply flag, a bad magic or version, an old, stale or
 *    future sequence number, more scalars or struct bytes than asked
 *    for or than a reply may hold, an ERROR, fds attached, no answer, a
 *    hang-up, death (SIGKILL) while the caller sleeps on the ring;
 *  - the MAP reply: no fd, an fd on a refusal, two fds, a pipe, a
 *    misaligned offset, unknown flags, a memfd shorter than the size or
 *    the offset it names, size zero, no answer;
 *  - a full fd table here (RLIMIT_NOFILE), so that the ring's memfd
 *    cannot be received (MSG_CTRUNC).
 *
 * And one thing it cannot do: shrink a good ring after handing it over
 * (its seals refuse the daemon's own ftruncate()).
 *
 * Each case asserts the IOReturn the library documents (docs/protocol.md,
 * "On the client side"; docs/transports.md), that it came within a
 * bound (the target's 300 ms call timeout, or promptly), that this
 * process has the fds it had before (a received fd closed, a refused
 * ring's channel hung up), what later calls on the connection answer (a
 * ring that failed leaves the calls to the socket; a socket connection
 * whose only channel failed is dead: kIOReturnNotResponding), and that
 * a new connection to the same daemon, now well-behaved, works.  At the
 * end the real dextd of the harness serves this process as if nothing
 * had happened.  A watchdog turns a hang into a named failure.
 *
 * Unix transport only (exit 77 otherwise).
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "libdext/edu.h"
#include "protocol/dext-ring.h"
#include "protocol/dext-selectors.h"
#include "protocol/dext-wire.h"

/* The call timeout of every target here, and the bound of a prompt error. */
#define CALL_MS 300
#define CONNECT_MS 2000
#define PROMPT_MS 3000
/* A case that has not finished by then hangs. */
#define WATCHDOG_S 20

/* The config offset whose read the fake daemon answers wrongly. */
#define TRIGGER_OFF 0x40
#define TRIGGER_VALUE 0x5a5a5a5au
#define BLOCK_LEN 16
#define EDU_IDS ((uint32_t)EDU_DEVICE_ID << 16 | EDU_VENDOR_ID)
#define SERVICE_ID 0x100000003ull
#define MAP_BYTES 16384
#define MAX_CONNS 16
/* Ring calls of good_connection() over a ring: identity, read, block. */
#define GOOD_RING_CALLS 3

typedef enum Fault {
    FAULT_NONE,
    /* The handshake of the first channel. */
    FAULT_HELLO_GARBAGE,
    FAULT_HELLO_SILENT,
    FAULT_LIST_TOO_MANY,
    FAULT_OPEN_SHORT,
    /* The RING reply. */
    FAULT_RING_NO_FD,
    FAULT_RING_PIPE,
    FAULT_RING_FILE,
    FAULT_RING_UNSEALED,
    FAULT_RING_SHRINKABLE,
    FAULT_RING_SEALS_OPEN,
    FAULT_RING_WRITE_SEALED,
    FAULT_RING_SMALL,
    FAULT_RING_LARGE,
    FAULT_RING_TWO_FDS,
    FAULT_RING_REFUSED_WITH_FD,
    FAULT_RING_REFUSED,
    FAULT_RING_ERROR,
    FAULT_RING_SILENT,
    /* The reply to the trigger call, on whichever path it came. */
    FAULT_LEN_LIE,
    FAULT_LEN_OVER,
    FAULT_LEN_HUGE,
    FAULT_LEN_ZERO,
    FAULT_SHORT_HEADER,
    FAULT_OVERSIZED,
    FAULT_TYPE_UNKNOWN,
    FAULT_TYPE_OTHER,
    FAULT_NOT_REPLY,
    FAULT_BAD_MAGIC,
    FAULT_BAD_VERSION,
    FAULT_SEQ_ZERO,
    FAULT_SEQ_STALE,
    FAULT_SEQ_FUTURE,
    FAULT_SCALARS_OVER_CAP,
    FAULT_SCALARS_OVER_MAX,
    FAULT_STRUCT_OVER_CAP,
    FAULT_STRUCT_OVER_MAX,
    FAULT_ERROR,
    FAULT_ERROR_SUCCESS,
    FAULT_WITH_FDS,
    FAULT_SILENT,
    FAULT_HANG_UP,
    FAULT_DIE,
    /* The MAP reply. */
    FAULT_MAP_NO_FD,
    FAULT_MAP_REFUSED_WITH_FD,
    FAULT_MAP_TWO_FDS,
    FAULT_MAP_PIPE,
    FAULT_MAP_MISALIGNED,
    FAULT_MAP_BAD_FLAGS,
    FAULT_MAP_SHORT_FILE,
    FAULT_MAP_PAST_END,
    FAULT_MAP_ZERO_SIZE,
    FAULT_MAP_SILENT,
} Fault;

/* What the fake daemon saw, sent back when it is stopped. */
typedef struct FakeReport {
    unsigned hellos;
    unsigned socket_calls;
    unsigned ring_calls;
    unsigned rings_sent;        /* RING replies that carried an fd */
    unsigned faults;            /* times it misbehaved: 1 */
    unsigned bad_requests;      /* what the library should never send */
    int truncate_errno;         /* shrinking a good ring: EPERM */
} FakeReport;

/* ------------------------------------------------------------------ */
/* The fake daemon (a child process)                                    */

typedef struct FakeConn {
    int fd;                     /* -1: free */
    bool silent;                /* reads, never answers */
    DextRing *ring;             /* a ring channel's mapping, or NULL */
    size_t ring_len;
    bool ring_bogus;            /* a ring the library must have refused */
    int ring_fd;                /* a bogus ring's memfd, to shrink */
    uint64_t seen;              /* the last request seq looked at */
} FakeConn;

typedef struct FakeDaemon {
    Fault fault;
    bool done;                  /* the fault happened */
    int listen_fd;
    int ctl;
    FakeConn conns[MAX_CONNS];
    FakeReport rep;
} FakeDaemon;

/* The fault hits GetIdentity rather than the read of TRIGGER_OFF. */
static bool fake_hit_identity;

static const uint8_t fake_token[DEXT_WIRE_TOKEN_SIZE] = {
    0xd, 0xe, 0xa, 0xd, 0xb, 0xe, 0xe, 0xf, 1, 2, 3, 4, 5, 6, 7, 8,
};

/* Most fds fake_send() puts beside one message. */
#define FAKE_MAX_FDS 4

/*
 * One message with @nfds fds (SCM_RIGHTS, at most FAKE_MAX_FDS); false if
 * it did not go.  (The wire's dext_wire_sendmsg() carries one fd only.)
 */
static bool fake_send(int fd, const void *buf, size_t len, const int *fds,
                      int nfds)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(FAKE_MAX_FDS * sizeof(int))];
    } u;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n;

    if (nfds > FAKE_MAX_FDS) {
        return false;
    }
    if (nfds > 0) {
        struct cmsghdr *c;

        memset(&u, 0, sizeof(u));
        m.msg_control = u.buf;
        m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    do {
        n = sendmsg(fd, &m, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)len;
}

/* A memfd of @size bytes with @seals added; -1 on failure. */
static int make_memfd(size_t size, int seals)
{
    int fd = memfd_create("fake-dextd", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0) {
        return -1;
    }
    if (ftruncate(fd, (off_t)size) < 0 ||
        (seals != 0 && fcntl(fd, F_ADD_SEALS, seals) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

#define GOOD_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static void fake_close(FakeConn *c)
{
    if (c->ring != NULL) {
        munmap(c->ring, c->ring_len);
        c->ring = NULL;
    }
    if (c->ring_fd >= 0) {
        close(c->ring_fd);
        c->ring_fd = -1;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

/* Is this the daemon's one misbehaviour, and the first time? */
static bool fake_fault_now(FakeDaemon *d, Fault first, Fault last)
{
    if (d->done || d->fault < first || d->fault > last) {
        return false;
    }
    d->done = true;
    d->rep.faults++;
    return true;
}

/* Tell the parent what happened (before an exit or a death). */
static void fake_report(FakeDaemon *d)
{
    (void)send(d->ctl, &d->rep, sizeof(d->rep), MSG_NOSIGNAL);
}

/* Die as a crashed dextd does: every socket closed by the kernel. */
static void fake_die(FakeDaemon *d)
{
    fake_report(d);
    raise(SIGKILL);
}

static void put_header(uint8_t *b, uint16_t type, uint32_t flags,
                       uint32_t len, uint64_t seq)
{
    dext_wire_put_u32(b, DEXT_WIRE_MAGIC);
    dext_wire_put_u16(b + 4, 1);
    dext_wire_put_u16(b + 6, type);
    dext_wire_put_u32(b + 8, flags);
    dext_wire_put_u32(b + 12, len);
    dext_wire_put_u64(b + 16, seq);
}

/* How the reply to the trigger call goes out. */
typedef enum Deliver {
    DELIVER_SEND,
    DELIVER_SEND_FDS,           /* with two memfds nobody asked for */
    DELIVER_HOLD,               /* never */
    DELIVER_HANG_UP,
    DELIVER_DIE,
} Deliver;

/*
 * Spoil the good reply @rep (@*len bytes) to @m, a call with @seq, as
 * the daemon's fault says.  @rep has room for 8 KiB.
 */
static Deliver spoil_reply(Fault f, uint8_t *rep, size_t *len,
                           const DextWireCall *m, uint64_t seq)
{
    DextWireCallReply r = { .status = kIOReturnSuccess };
    uint32_t plen = (uint32_t)*len - DEXT_WIRE_HEADER_SIZE;
    int n;

    switch (f) {
    case FAULT_LEN_LIE:
        dext_wire_put_u32(rep + 12, plen + 8);
        break;
    case FAULT_LEN_OVER:
        dext_wire_put_u32(rep + 12, DEXT_WIRE_MAX_PAYLOAD + 1);
        break;
    case FAULT_LEN_HUGE:
        dext_wire_put_u32(rep + 12, 1u << 20);
        break;
    case FAULT_LEN_ZERO:
        dext_wire_put_u32(rep + 12, 0);
        *len = DEXT_WIRE_HEADER_SIZE;
        break;
    case FAULT_SHORT_HEADER:
        *len = 10;
        break;
    case FAULT_OVERSIZED:
        /* Consistent, and past the largest message a peer may send. */
        *len = DEXT_WIRE_MAX_MSG + 256;
        memset(rep + DEXT_WIRE_HEADER_SIZE, 0, *len - DEXT_WIRE_HEADER_SIZE);
        put_header(rep, DEXT_WIRE_CALL, DEXT_WIRE_FLAG_REPLY,
                   (uint32_t)*len - DEXT_WIRE_HEADER_SIZE, seq);
        break;
    case FAULT_TYPE_UNKNOWN:
        dext_wire_put_u16(rep + 6, 99);
        break;
    case FAULT_TYPE_OTHER:
        dext_wire_put_u16(rep + 6, DEXT_WIRE_MAP);
        break;
    case FAULT_NOT_REPLY:
        dext_wire_put_u32(rep + 8, 0);
        break;
    case FAULT_BAD_MAGIC:
        rep[0] ^= 0xff;
        break;
    case FAULT_BAD_VERSION:
        dext_wire_put_u16(rep + 4, DEXT_WIRE_VERSION_MAX + 1);
        break;
    case FAULT_SEQ_ZERO:
        dext_wire_put_u64(rep + 16, 0);
        break;
    case FAULT_SEQ_STALE:
        dext_wire_put_u64(rep + 16, seq - 1);
        break;
    case FAULT_SEQ_FUTURE:
        dext_wire_put_u64(rep + 16, seq + 1);
        break;
    case FAULT_SCALARS_OVER_CAP:
        r.scalar_out_cnt = m->scalar_out_cap + 1;
        n = dext_wire_encode_call_reply(rep, 8192, 1, seq, false, &r);
        *len = n > 0 ? (size_t)n : 0;
        break;
    case FAULT_SCALARS_OVER_MAX:
        /* The encoder refuses this: by hand. */
        plen = DEXT_WIRE_CALL_REPLY_FIXED + 8 * (DEXT_MAX_SCALARS + 1);
        put_header(rep, DEXT_WIRE_CALL, DEXT_WIRE_FLAG_REPLY, plen, seq);
        memset(rep + DEXT_WIRE_HEADER_SIZE, 0, plen);
        dext_wire_put_u32(rep + DEXT_WIRE_HEADER_SIZE + 4,
                          DEXT_MAX_SCALARS + 1);
        *len = DEXT_WIRE_HEADER_SIZE + plen;
        break;
    case FAULT_STRUCT_OVER_CAP: {
        static const uint8_t more[BLOCK_LEN + 1];

        r.struct_out_len = m->struct_out_cap + 1;
        r.struct_out = more;
        n = dext_wire_encode_call_reply(rep, 8192, 1, seq, false, &r);
        *len = n > 0 ? (size_t)n : 0;
        break;
    }
    case FAULT_STRUCT_OVER_MAX:
        plen = DEXT_WIRE_CALL_REPLY_FIXED + DEXT_MAX_STRUCT + 1;
        put_header(rep, DEXT_WIRE_CALL, DEXT_WIRE_FLAG_REPLY, plen, seq);
        memset(rep + DEXT_WIRE_HEADER_SIZE, 0, plen);
        dext_wire_put_u32(rep + DEXT_WIRE_HEADER_SIZE + 8,
                          DEXT_MAX_STRUCT + 1);
        *len = DEXT_WIRE_HEADER_SIZE + plen;
        break;
    case FAULT_ERROR:
    case FAULT_ERROR_SUCCESS:
        n = dext_wire_encode_status_only(rep, 8192, 1, seq, DEXT_WIRE_ERROR,
                                         f == FAULT_ERROR
                                         ? kIOReturnBadMessageID
                                         : kIOReturnSuccess);
        *len = n > 0 ? (size_t)n : 0;
        break;
    case FAULT_WITH_FDS:
        return DELIVER_SEND_FDS;
    case FAULT_SILENT:
        return DELIVER_HOLD;
    case FAULT_HANG_UP:
        return DELIVER_HANG_UP;
    case FAULT_DIE:
        return DELIVER_DIE;
    default:
        break;
    }
    return DELIVER_SEND;
}

/* Wait (bounded) until the client sleeps on @r: it polls its socket. */
static void wait_client_asleep(DextRing *r)
{
    struct timespec ms = { 0, 1000000L };
    int i;

    for (i = 0; i < HARNESS_WAIT_MS &&
                !__atomic_load_n(&r->client_sleeping, __ATOMIC_SEQ_CST); i++) {
        nanosleep(&ms, NULL);
    }
}

/* Put a reply in the ring's reply slot and wake the client if it sleeps. */
static void ring_reply(FakeConn *c, const uint8_t *msg, size_t len)
{
    dext_ring_publish(&c->ring->rep, msg, len);
    if (__atomic_load_n(&c->ring->client_sleeping, __ATOMIC_SEQ_CST)) {
        dext_ring_doorbell(c->fd);
    }
}

/* Serve one CALL, through the socket or the ring (@ring). */
static void fake_call(FakeDaemon *d, FakeConn *c, const DextWireHeader *h,
                      const uint8_t *payload, bool ring)
{
    static uint8_t rep[8192];
    static uint8_t block[DEXT_MAX_STRUCT];
    static const uint64_t ident[6] = { 0, 3, 0, EDU_VENDOR_ID, EDU_DEVICE_ID, 0xff00 };
    DextWireCallReply r = { .status = kIOReturnSuccess };
    Deliver how = DELIVER_SEND;
    DextWireCall m;
    size_t len;
    uint32_t i;
    int n;

    if (dext_wire_decode_call(payload, h->length, false, &m) != 0) {
        d->rep.bad_requests++;
        fake_close(c);
        return;
    }
    if (ring) {
        d->rep.ring_calls++;
    } else {
        d->rep.socket_calls++;
    }
    switch (m.selector) {
    case kDextSelectorGetIdentity:
        r.scalar_out_cnt = m.scalar_out_cap < 6 ? m.scalar_out_cap : 6;
        memcpy(r.scalar_out, ident, sizeof(ident));
        break;
    case kDextSelectorConfigRead:
        r.scalar_out_cnt = m.scalar_out_cap < 1 ? m.scalar_out_cap : 1;
        r.scalar_out[0] = m.scalar_in[0] == TRIGGER_OFF ? TRIGGER_VALUE :
                          m.scalar_in[0] == 0 ? EDU_IDS : 0;
        break;
    case kDextSelectorConfigReadBlock:
        if (m.scalar_in_cnt < 2 || m.scalar_in[1] > m.struct_out_cap) {
            d->rep.bad_requests++;
            r.status = kIOReturnBadArgument;
            break;
        }
        for (i = 0; i < m.scalar_in[1]; i++) {
            block[i] = (uint8_t)(m.scalar_in[0] + i);
        }
        r.struct_out_len = (uint32_t)m.scalar_in[1];
        r.struct_out = block;
        break;
    default:
        r.status = kIOReturnUnsupported;
        break;
    }
    n = dext_wire_encode_call_reply(rep, sizeof(rep), 1, h->seq, false, &r);
    if (n < 0) {
        d->rep.bad_requests++;
        return;
    }
    len = (size_t)n;
    if ((fake_hit_identity
         ? m.selector == kDextSelectorGetIdentity
         : (m.selector == kDextSelectorConfigRead ||
            m.selector == kDextSelectorConfigReadBlock) &&
           m.scalar_in_cnt > 0 && m.scalar_in[0] == TRIGGER_OFF) &&
        fake_fault_now(d, FAULT_LEN_LIE, FAULT_DIE)) {
        how = spoil_reply(d->fault, rep, &len, &m, h->seq);
    }
    switch (how) {
    case DELIVER_SEND:
    case DELIVER_SEND_FDS:
        if (ring) {
            ring_reply(c, rep, len);
        } else if (how == DELIVER_SEND) {
            fake_send(c->fd, rep, len, NULL, 0);
        } else {
            int fds[2] = { make_memfd(4096, 0), make_memfd(4096, 0) };

            fake_send(c->fd, rep, len, fds, 2);
            close(fds[0]);
            close(fds[1]);
        }
        break;
    case DELIVER_HOLD:
        break;
    case DELIVER_HANG_UP:
        fake_close(c);
        break;
    case DELIVER_DIE:
        if (ring) {
            wait_client_asleep(c->ring);
        }
        fake_die(d);
        break;
    }
}

/* A RING request: the memfd, or what the fault puts in its place. */
static void fake_ring(FakeDaemon *d, FakeConn *c, const DextWireHeader *h)
{
    uint8_t rep[64];
    IOReturn status = kIOReturnSuccess;
    Fault f = fake_fault_now(d, FAULT_RING_NO_FD, FAULT_RING_SILENT)
              ? d->fault : FAULT_NONE;
    size_t size = DEXT_RING_BYTES;
    int fds[2] = { -1, -1 };
    int nfds = 1, n;
    bool bogus = true;

    switch (f) {
    case FAULT_RING_NO_FD:
        nfds = 0;
        break;
    case FAULT_RING_PIPE:
        if (pipe2(fds, O_CLOEXEC) < 0) {
            fds[0] = fds[1] = -1;
        }
        close(fds[1]);
        fds[1] = -1;
        break;
    case FAULT_RING_FILE: {
        /* A plain file of the right size: nothing stops its shrinking. */
        char path[] = "/tmp/fake-dextd-ring-XXXXXX";

        fds[0] = mkostemp(path, O_CLOEXEC);
        if (fds[0] >= 0) {
            unlink(path);
            if (ftruncate(fds[0], (off_t)size) < 0) {
                close(fds[0]);
                fds[0] = -1;
            }
        }
        break;
    }
    case FAULT_RING_UNSEALED:
        fds[0] = make_memfd(size, 0);
        break;
    case FAULT_RING_SHRINKABLE:
        fds[0] = make_memfd(size, F_SEAL_GROW | F_SEAL_SEAL);
        break;
    case FAULT_RING_SEALS_OPEN:
        fds[0] = make_memfd(size, F_SEAL_SHRINK | F_SEAL_GROW);
        break;
    case FAULT_RING_WRITE_SEALED:
        fds[0] = make_memfd(size, GOOD_SEALS | F_SEAL_WRITE);
        break;
    case FAULT_RING_SMALL:
        size = 4096;
        fds[0] = make_memfd(size, GOOD_SEALS);
        break;
    case FAULT_RING_LARGE:
        size = DEXT_RING_BYTES + 4096;
        fds[0] = make_memfd(size, GOOD_SEALS);
        break;
    case FAULT_RING_TWO_FDS:
        fds[0] = make_memfd(size, GOOD_SEALS);
        fds[1] = make_memfd(size, GOOD_SEALS);
        nfds = 2;
        break;
    case FAULT_RING_REFUSED_WITH_FD:
        status = kIOReturnNoResources;
        fds[0] = make_memfd(size, GOOD_SEALS);
        break;
    case FAULT_RING_REFUSED:
        status = kIOReturnNoResources;
        nfds = 0;
        break;
    case FAULT_RING_ERROR:
        /* What a dextd without rings answers, before it hangs up. */
        n = dext_wire_encode_status_only(rep, sizeof(rep), 1, h->seq,
                                         DEXT_WIRE_ERROR,
                                         kIOReturnBadMessageID);
        fake_send(c->fd, rep, (size_t)n, NULL, 0);
        fake_close(c);
        return;
    case FAULT_RING_SILENT:
        c->silent = true;
        return;
    default:
        bogus = false;
        fds[0] = make_memfd(size, GOOD_SEALS);
        break;
    }
    if (nfds > 0 && fds[0] < 0) {
        d->rep.bad_requests++;      /* the test's own failure */
        fake_close(c);
        return;
    }
    /*
     * Keep a mapping, to serve a good ring and to see a bogus one used
     * (the library must have refused it); a write-sealed one cannot be
     * mapped writable, and the library cannot use it either.
     */
    if (nfds > 0 && f != FAULT_RING_PIPE && f != FAULT_RING_WRITE_SEALED) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0],
                       0);

        if (p != MAP_FAILED) {
            c->ring = p;
            c->ring_len = size;
        }
        /* Always "asleep": the client rings after each request. */
        if (c->ring != NULL && size >= DEXT_RING_BYTES) {
            __atomic_store_n(&c->ring->server_sleeping, 1, __ATOMIC_SEQ_CST);
        }
    }
    c->ring_bogus = bogus;
    n = dext_wire_encode_status_only(rep, sizeof(rep), 1, h->seq,
                                     DEXT_WIRE_RING, status);
    if (fake_send(c->fd, rep, (size_t)n, fds, nfds) && nfds > 0) {
        d->rep.rings_sent++;
    }
    if (f == FAULT_NONE) {
        /* The seals are what keep the pages the client's: try. */
        d->rep.truncate_errno = ftruncate(fds[0], 0) == 0 ? 0 : errno;
    }
    if (bogus && fds[0] >= 0 && nfds == 1) {
        c->ring_fd = fds[0];        /* shrunk once the client uses it */
    } else if (fds[0] >= 0) {
        close(fds[0]);
    }
    if (fds[1] >= 0) {
        close(fds[1]);
    }
}

/*
 * A doorbell on a ring channel: serve the request in the slot, if there
 * is a new one.  False once the client has hung up.
 */
static bool fake_serve_ring(FakeDaemon *d, FakeConn *c)
{
    static uint8_t msg[DEXT_WIRE_MAX_MSG];
    DextWireHeader h;
    uint64_t seq;
    size_t len;

    if (dext_ring_drain(c->fd, 64) <= 0) {
        return false;
    }
    if (c->ring == NULL) {
        return true;
    }
    seq = dext_ring_seq(&c->ring->req);
    if (seq == c->seen) {
        return true;
    }
    c->seen = seq;
    if (c->ring_bogus) {
        /*
         * The library calls through a ring it should have refused: what
         * it would meet next, the ring shrunk under it (SIGBUS), it
         * meets now where the daemon can shrink it.
         */
        d->rep.bad_requests++;
        munmap(c->ring, c->ring_len);
        c->ring = NULL;
        if (c->ring_fd >= 0 && ftruncate(c->ring_fd, 0) == 0) {
            dext_ring_doorbell(c->fd);
        }
        return true;
    }
    len = dext_ring_copy_out(&c->ring->req, msg);
    if (len == 0 || dext_wire_decode_header(msg, len, &h) != 0 ||
        h.type != DEXT_WIRE_CALL || (h.flags & DEXT_WIRE_FLAG_REPLY)) {
        d->rep.bad_requests++;
        return false;
    }
    fake_call(d, c, &h, msg + DEXT_WIRE_HEADER_SIZE, true);
    return c->fd >= 0;
}

/* A MAP request: a sealed memfd, or what the fault puts in its place. */
static bool fake_map(FakeDaemon *d, FakeConn *c, const DextWireHeader *h)
{
    DextWireMapReply r = { .status = kIOReturnSuccess,
                           .flags = DEXT_WIRE_MAP_WRITABLE,
                           .size = MAP_BYTES };
    Fault f = fake_fault_now(d, FAULT_MAP_NO_FD, FAULT_MAP_SILENT)
              ? d->fault : FAULT_NONE;
    uint8_t rep[64];
    int fds[2] = { make_memfd(MAP_BYTES, GOOD_SEALS), -1 };
    int nfds = 1;
    bool bad_flags = false;
    int n;

    switch (f) {
    case FAULT_MAP_NO_FD:
        nfds = 0;
        break;
    case FAULT_MAP_REFUSED_WITH_FD:
        r = (DextWireMapReply) { .status = kIOReturnNotReady };
        break;
    case FAULT_MAP_TWO_FDS:
        fds[1] = make_memfd(MAP_BYTES, GOOD_SEALS);
        nfds = 2;
        break;
    case FAULT_MAP_PIPE: {
        int p[2];

        if (pipe2(p, O_CLOEXEC) == 0) {
            close(fds[0]);
            close(p[1]);
            fds[0] = p[0];
        }
        break;
    }
    case FAULT_MAP_MISALIGNED:
        r.offset = 100;
        break;
    case FAULT_MAP_BAD_FLAGS:
        bad_flags = true;
        break;
    case FAULT_MAP_SHORT_FILE:
        r.size = 1 << 20;           /* 16 KiB of it in the memfd */
        break;
    case FAULT_MAP_PAST_END:
        r.offset = MAP_BYTES;
        break;
    case FAULT_MAP_ZERO_SIZE:
        r.size = 0;
        break;
    case FAULT_MAP_SILENT:
        close(fds[0]);
        c->silent = true;
        return true;
    default:
        break;
    }
    n = dext_wire_encode_map_reply(rep, sizeof(rep), 1, h->seq, &r);
    if (bad_flags && n > 0) {
        dext_wire_put_u32(rep + DEXT_WIRE_HEADER_SIZE + 4, 0x2);
    }
    if (n < 0 || fds[0] < 0) {
        d->rep.bad_requests++;
    } else {
        fake_send(c->fd, rep, (size_t)n, fds, nfds);
    }
    close(fds[0]);
    if (fds[1] >= 0) {
        close(fds[1]);
    }
    return true;
}

/* A message on a socket channel.  False to close the channel. */
static bool fake_serve_socket(FakeDaemon *d, FakeConn *c)
{
    static uint8_t msg[DEXT_WIRE_MAX_MSG];
    static uint8_t rep[DEXT_WIRE_MAX_MSG + 4096];
    DextWireHeader h;
    int fds[4], nfds = 0, n = -1;
    bool trunc = false;
    ssize_t got;

    got = dext_wire_recvmsg(c->fd, msg, sizeof(msg), MSG_DONTWAIT, fds, 4,
                            &nfds, &trunc);
    while (nfds > 0) {
        close(fds[--nfds]);
        d->rep.bad_requests++;      /* nothing here sends fds */
    }
    if (got == 0) {
        return false;
    }
    if (got < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    if (c->silent) {
        return true;
    }
    if (trunc || dext_wire_decode_header(msg, (size_t)got, &h) != 0 ||
        (h.flags & DEXT_WIRE_FLAG_REPLY)) {
        d->rep.bad_requests++;
        return false;
    }
    switch (h.type) {
    case DEXT_WIRE_HELLO: {
        DextWireHelloReply r = { .version = 1, .pid = (uint32_t)getpid() };
        DextWireHello m;

        d->rep.hellos++;
        if (dext_wire_decode_hello(msg + DEXT_WIRE_HEADER_SIZE, h.length,
                                   &m) != 0) {
            d->rep.bad_requests++;
            return false;
        }
        if (fake_fault_now(d, FAULT_HELLO_GARBAGE, FAULT_HELLO_SILENT)) {
            if (d->fault == FAULT_HELLO_SILENT) {
                c->silent = true;
                return true;
            }
            fake_send(c->fd, "garbage", 7, NULL, 0);
            return true;
        }
        r.features = DEXT_WIRE_FEATURES_V1 | (m.features & DEXT_WIRE_FEAT_LEAN);
        n = dext_wire_encode_hello_reply(rep, sizeof(rep), h.seq, &r);
        break;
    }
    case DEXT_WIRE_LIST: {
        DextWireListReply r = { .total = 1, .count = 1,
                                .ids = { SERVICE_ID } };
        uint32_t i, count = DEXT_MAX_SERVICES + 1;

        if (fake_fault_now(d, FAULT_LIST_TOO_MANY, FAULT_LIST_TOO_MANY)) {
            /* More IDs than a reply may hold: the encoder refuses it. */
            put_header(rep, DEXT_WIRE_LIST, DEXT_WIRE_FLAG_REPLY,
                       DEXT_WIRE_LIST_REPLY_FIXED + 8 * count, h.seq);
            dext_wire_put_u32(rep + 24, kIOReturnSuccess);
            dext_wire_put_u32(rep + 28, count);
            dext_wire_put_u32(rep + 32, count);
            for (i = 0; i < count; i++) {
                dext_wire_put_u64(rep + 36 + 8 * i, SERVICE_ID + i);
            }
            n = DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_LIST_REPLY_FIXED +
                8 * (int)count;
            break;
        }
        n = dext_wire_encode_list_reply(rep, sizeof(rep), 1, h.seq, &r);
        break;
    }
    case DEXT_WIRE_OPEN:
    case DEXT_WIRE_ATTACH: {
        DextWireOpenReply r = { .status = kIOReturnSuccess };
        DextWireAttach a;

        if (h.type == DEXT_WIRE_ATTACH) {
            if (dext_wire_decode_attach(msg + DEXT_WIRE_HEADER_SIZE,
                                        h.length, &a) != 0 ||
                memcmp(a.token, fake_token, sizeof(fake_token)) != 0) {
                d->rep.bad_requests++;
                return false;
            }
            n = dext_wire_encode_status_only(rep, sizeof(rep), 1, h.seq,
                                             DEXT_WIRE_ATTACH,
                                             kIOReturnSuccess);
            break;
        }
        memcpy(r.token, fake_token, sizeof(fake_token));
        n = dext_wire_encode_open_reply(rep, sizeof(rep), 1, h.seq, &r);
        if (n > 0 && fake_fault_now(d, FAULT_OPEN_SHORT, FAULT_OPEN_SHORT)) {
            /* A header that agrees with a payload four bytes short. */
            n -= 4;
            dext_wire_put_u32(rep + 12, (uint32_t)n - DEXT_WIRE_HEADER_SIZE);
        }
        break;
    }
    case DEXT_WIRE_CALL:
        fake_call(d, c, &h, msg + DEXT_WIRE_HEADER_SIZE, false);
        return c->fd >= 0;
    case DEXT_WIRE_MAP:
        return fake_map(d, c, &h);
    case DEXT_WIRE_RING:
        fake_ring(d, c, &h);
        return c->fd >= 0;
    default:
        d->rep.bad_requests++;
        return false;
    }
    if (n < 0) {
        d->rep.bad_requests++;
        return false;
    }
    fake_send(c->fd, rep, (size_t)n, NULL, 0);
    return true;
}

/* The daemon's life: serve until the parent says stop, then report. */
static void __attribute__((noreturn)) fake_main(int listen_fd, int ctl,
                                                Fault fault)
{
    static FakeDaemon d;
    struct pollfd p[2 + MAX_CONNS];
    int which[2 + MAX_CONNS];
    int i, np;

    d.fault = fault;
    d.listen_fd = listen_fd;
    d.ctl = ctl;
    for (i = 0; i < MAX_CONNS; i++) {
        d.conns[i].fd = -1;
        d.conns[i].ring_fd = -1;
    }
    for (;;) {
        np = 0;
        p[np++] = (struct pollfd) { .fd = ctl, .events = POLLIN };
        p[np++] = (struct pollfd) { .fd = listen_fd, .events = POLLIN };
        for (i = 0; i < MAX_CONNS; i++) {
            if (d.conns[i].fd >= 0) {
                which[np] = i;
                p[np++] = (struct pollfd) { .fd = d.conns[i].fd,
                                            .events = POLLIN };
            }
        }
        if (poll(p, (nfds_t)np, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (p[0].revents) {
            char b;

            /* Read it: a socket closed with data unread resets the peer. */
            (void)recv(ctl, &b, 1, MSG_DONTWAIT);
            break;                  /* stop, or the parent is gone */
        }
        if (p[1].revents & POLLIN) {
            int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

            for (i = 0; fd >= 0 && i < MAX_CONNS; i++) {
                if (d.conns[i].fd < 0) {
                    d.conns[i] = (FakeConn) { .fd = fd, .ring_fd = -1 };
                    fd = -1;
                }
            }
            if (fd >= 0) {
                close(fd);          /* full: the library sees a hang-up */
            }
        }
        for (i = 2; i < np; i++) {
            FakeConn *c = &d.conns[which[i]];
            bool keep;

            if (!p[i].revents || c->fd != p[i].fd) {
                continue;
            }
            keep = c->ring != NULL || c->ring_bogus
                   ? fake_serve_ring(&d, c) : fake_serve_socket(&d, c);
            if (!keep) {
                fake_close(c);
            }
        }
    }
    fake_report(&d);
    _exit(0);
}

/* ------------------------------------------------------------------ */
/* The parent's side of a fake daemon                                   */

typedef struct Fake {
    pid_t pid;
    int ctl;
} Fake;

static char fake_dir[64];
static char fake_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static volatile pid_t fake_pid = -1;
static const char *volatile current_case = "";

/* A case still running after WATCHDOG_S: name it, clean up and die. */
static void watchdog(int sig)
{
    static const char msg[] = "FAIL: watchdog: this case hangs: ";

    (void)sig;
    (void)!write(2, msg, sizeof(msg) - 1);
    (void)!write(2, current_case, strlen(current_case));
    (void)!write(2, "\n", 1);
    if (fake_pid > 0) {
        kill(fake_pid, SIGKILL);
    }
    unlink(fake_path);
    rmdir(fake_dir);
    /* The harness's handler takes dextd down and dies of it. */
    raise(SIGTERM);
}

/* Start a fake dextd that misbehaves as @fault says, listening already. */
static bool fake_start(Fake *f, Fault fault)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int sv[2], lfd;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fake_path);
    unlink(fake_path);
    lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (!CHECK(lfd >= 0) ||
        !CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0) ||
        !CHECK(listen(lfd, MAX_CONNS) == 0) ||
        !CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
                          sv) == 0)) {
        if (lfd >= 0) {
            close(lfd);
        }
        return false;
    }
    f->pid = fork();
    if (f->pid == 0) {
        close(sv[0]);
        fake_main(lfd, sv[1], fault);
    }
    close(lfd);
    close(sv[1]);
    if (!CHECK(f->pid > 0)) {
        close(sv[0]);
        return false;
    }
    f->ctl = sv[0];
    fake_pid = f->pid;
    return true;
}

/*
 * Stop the fake daemon and read its report; false if it sent none.
 * *@killed tells whether it died of SIGKILL (its own, for FAULT_DIE).
 */
static bool fake_stop(Fake *f, FakeReport *out, bool *killed)
{
    struct pollfd p = { .fd = f->ctl, .events = POLLIN };
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;
    int status = 0;
    bool got = false;
    pid_t w;

    memset(out, 0, sizeof(*out));
    (void)send(f->ctl, "s", 1, MSG_NOSIGNAL);
    if (poll(&p, 1, HARNESS_WAIT_MS) == 1) {
        got = recv(f->ctl, out, sizeof(*out), 0) == (ssize_t)sizeof(*out);
    }
    close(f->ctl);
    while ((w = waitpid(f->pid, &status, WNOHANG)) == 0 &&
           !harness_expired(&d)) {
        harness_backoff(&round);
    }
    if (!CHECK_MSG(w == f->pid, "the fake dextd did not exit")) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, &status, 0);
    }
    CHECK_MSG((WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
              (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL),
              "the fake dextd ended with status 0x%x", (unsigned)status);
    *killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    fake_pid = -1;
    unlink(fake_path);
    return got;
}

/* ------------------------------------------------------------------ */
/* The client's side: this process, through the public API             */

/* The code of the last "no polled ring" line the library logged, or 0. */
static IOReturn ring_refused_with;

static void log_handler(void *opaque, int level, const char *msg)
{
    const char *p = strstr(msg, "no polled ring (0x");
    unsigned code;

    if (p != NULL && sscanf(p, "no polled ring (0x%x)", &code) == 1) {
        ring_refused_with = (IOReturn)code;
    }
    fprintf(stderr, "libdext: %d: %s\n", level, msg);
}

static int count_fds(void)
{
    return harness_count_fds(getpid());
}

/* The target of the fake daemon: a short call timeout, a ring if @poll. */
static const char *fake_target(bool poll, int connect_ms)
{
    static char t[sizeof(fake_path) + 96];

    snprintf(t, sizeof(t), "unix:%s,timeout=%d,connect-timeout=%d%s",
             fake_path, CALL_MS, connect_ms, poll ? ",poll=1" : "");
    return t;
}

static io_connect_t fake_connect(bool poll)
{
    io_connect_t c = IO_OBJECT_NULL;

    CHECK_KR(apple_dext_connect_target(fake_target(poll, CONNECT_MS),
                                       EDU_BUS, EDU_DEV, EDU_FN, &c),
             kIOReturnSuccess);
    return c;
}

/* Start a case: its heading and its watchdog. */
static void case_begin(const char *what, const char *name, bool poll)
{
    static char title[128];

    snprintf(title, sizeof(title), "%s%s", what, name);
    harness_section("%s%s", title, poll ? " (ring)" : "");
    current_case = title;
    ring_refused_with = kIOReturnSuccess;
    alarm(WATCHDOG_S);
}

/*
 * A well-behaved session with the fake daemon once its fault is spent:
 * identity (by connecting), a config read, a block read, and with @map
 * the DMA buffer mapped, written and read.  Three calls through the
 * ring with @poll.
 */
static void good_connection(bool poll, bool map)
{
    uint8_t block[BLOCK_LEN];
    io_connect_t c = fake_connect(poll);
    uint64_t v = 0;
    int i;

    if (c == IO_OBJECT_NULL) {
        return;
    }
    CHECK_KR(apple_dext_config_read(c, 0, 4, &v), kIOReturnSuccess);
    CHECK_EQ(v, EDU_IDS);
    CHECK_KR(apple_dext_config_read_block(c, 8, block, sizeof(block)),
             kIOReturnSuccess);
    for (i = 0; i < BLOCK_LEN && block[i] == (uint8_t)(8 + i); i++) {
    }
    CHECK_EQ(i, BLOCK_LEN);
    if (map) {
        mach_vm_address_t addr = 0;
        mach_vm_size_t size = 0;

        if (CHECK_KR(apple_dext_map_dma_buffer(c, &addr, &size),
                     kIOReturnSuccess)) {
            volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)addr;

            CHECK_EQ(size, MAP_BYTES);
            p[0] = 1;
            p[size - 1] = 2;
            CHECK_EQ(p[0] + p[size - 1], 3);
            CHECK_KR(apple_dext_unmap_dma_buffer(c, addr), kIOReturnSuccess);
        }
    }
    apple_dext_disconnect(c);
}

/*
 * End a case: the daemon's report (it misbehaved once, and the library
 * sent nothing it should not have), this process's fds as before.
 */
static void case_end(Fake *f, int fds_before, bool dies, FakeReport *rep)
{
    bool killed = false;
    bool got;

    CHECK_EQ(count_fds(), fds_before);
    got = fake_stop(f, rep, &killed);

    CHECK_MSG(got, "the fake dextd sent no report");
    CHECK_EQ(rep->faults, 1);
    CHECK_EQ(rep->bad_requests, 0);
    CHECK_MSG(killed == dies, "the fake dextd %s",
              dies ? "did not die" : "was killed");
    alarm(0);
}

/* How long a failed call took, against what its kind allows. */
static void check_took(double t0, IOReturn want)
{
    double took = harness_now_ms() - t0;

    if (want == kIOReturnTimeout) {
        CHECK_MSG(took >= CALL_MS - 5 && took < CALL_MS + PROMPT_MS,
                  "a %d ms timeout took %.0f ms", CALL_MS, took);
    } else {
        CHECK_MSG(took < PROMPT_MS, "took %.0f ms", took);
    }
}

/* ------------------------------------------------------------------ */
/* Cases                                                                */

/*
 * Connecting goes wrong: the first channel's handshake (@identity
 * false), or the reply to GetIdentity, which is how a connect finds its
 * device (@identity, through the ring with @poll).  The connect answers
 * @want, a timeout after @bound_ms, rather than that no such device is
 * served; no fd is left; the next connection works.
 */
static void test_connect(const char *name, Fault fault, bool identity,
                         bool poll, IOReturn want, int bound_ms)
{
    io_connect_t c = IO_OBJECT_NULL;
    bool dies = fault == FAULT_DIE;
    FakeReport rep;
    Fake f;
    double t0;
    int fds;

    case_begin(identity ? "identity: " : "handshake: ", name, poll);
    fake_hit_identity = identity;
    if (!fake_start(&f, fault)) {
        return;
    }
    fds = count_fds();
    t0 = harness_now_ms();
    CHECK_KR(apple_dext_connect_target(fake_target(poll, identity
                                                   ? CONNECT_MS : bound_ms),
                                       EDU_BUS, EDU_DEV, EDU_FN, &c), want);
    if (want == kIOReturnTimeout) {
        CHECK_MSG(harness_now_ms() - t0 >= bound_ms - 5 &&
                  harness_now_ms() - t0 < bound_ms + PROMPT_MS,
                  "a %d ms timeout took %.0f ms", bound_ms, harness_now_ms() - t0);
    } else {
        check_took(t0, want);
    }
    CHECK_EQ(c, IO_OBJECT_NULL);
    CHECK_EQ(count_fds(), fds);
    if (!dies) {
        good_connection(poll, false);
    }
    case_end(&f, fds, dies, &rep);
    fake_hit_identity = false;
}

/*
 * The RING reply is not a ring: the library says why in its log, hangs
 * up the ring's channel, keeps no fd it came with, and the connection
 * works through its socket.  A second connection gets a good ring.
 */
static void test_ring_setup(const char *name, Fault fault, IOReturn why)
{
    FakeReport rep;
    io_connect_t c;
    uint64_t v = 0;
    Fake f;
    double t0;
    int fds;

    case_begin("ring setup: ", name, true);
    if (!fake_start(&f, fault)) {
        return;
    }
    fds = count_fds();
    t0 = harness_now_ms();
    c = fake_connect(true);
    check_took(t0, why == kIOReturnTimeout ? kIOReturnTimeout
                                          : kIOReturnSuccess);
    CHECK_KR(ring_refused_with, why);
    /* The pool's channel only: the ring's is hung up, its fds closed. */
    CHECK_EQ(count_fds(), fds + 1);
    CHECK_KR(apple_dext_config_read(c, 0, 4, &v), kIOReturnSuccess);
    CHECK_EQ(v, EDU_IDS);
    apple_dext_disconnect(c);
    CHECK_EQ(count_fds(), fds);
    good_connection(true, false);
    case_end(&f, fds, false, &rep);
    CHECK_EQ(rep.ring_calls, GOOD_RING_CALLS);
    CHECK_EQ(rep.socket_calls, 2);
}

/* Which call meets the fault. */
typedef enum Hit {
    HIT_READ,                   /* ConfigRead: 1 scalar out */
    HIT_BLOCK,                  /* ConfigReadBlock: BLOCK_LEN bytes out */
    HIT_MAP,                    /* MAP of the DMA buffer: an fd */
} Hit;

/*
 * The reply to one call goes wrong: the call answers @want within its
 * bound, and the connection's next call @next: through a ring, the ring
 * is dropped and the socket answers; through the socket, the call's
 * channel is closed, and with it the connection's session.  No fd the
 * reply carried is kept.
 */
static void test_call(const char *name, Fault fault, bool poll, Hit hit,
                      IOReturn want, IOReturn next)
{
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    uint8_t block[BLOCK_LEN];
    bool dies = fault == FAULT_DIE;
    FakeReport rep;
    io_connect_t c;
    uint64_t v = 0;
    Fake f;
    double t0;
    IOReturn ret;
    int fds;

    case_begin(hit == HIT_MAP ? "map reply: " : "call reply: ", name, poll);
    if (!fake_start(&f, fault)) {
        return;
    }
    fds = count_fds();
    c = fake_connect(poll);
    /* A ring that came up: its channel beside the pool's. */
    CHECK_EQ(count_fds(), fds + (poll ? 2 : 1));
    t0 = harness_now_ms();
    switch (hit) {
    case HIT_READ:
        ret = apple_dext_config_read(c, TRIGGER_OFF, 4, &v);
        break;
    case HIT_BLOCK:
        ret = apple_dext_config_read_block(c, TRIGGER_OFF, block,
                                           sizeof(block));
        break;
    default:
        ret = apple_dext_map_dma_buffer(c, &addr, &size);
        if (ret == kIOReturnSuccess) {
            apple_dext_unmap_dma_buffer(c, addr);
        }
        break;
    }
    CHECK_KR(ret, want);
    check_took(t0, want);
    if (ret == kIOReturnSuccess && hit == HIT_READ) {
        CHECK_EQ(v, TRIGGER_VALUE);
    }
    v = 0;
    CHECK_KR(apple_dext_config_read(c, 0, 4, &v), next);
    if (next == kIOReturnSuccess) {
        CHECK_EQ(v, EDU_IDS);
    }
    /* The pool's channel while the session lives; no ring, no other fd. */
    CHECK_EQ(count_fds(), fds + (next == kIOReturnSuccess ? 1 : 0));
    apple_dext_disconnect(c);
    CHECK_EQ(count_fds(), fds);
    if (dies) {
        /* Nobody listens any more: refused, promptly. */
        c = IO_OBJECT_NULL;
        CHECK_KR(apple_dext_connect_target(fake_target(poll, CONNECT_MS),
                                           EDU_BUS, EDU_DEV, EDU_FN, &c),
                 kIOReturnNotResponding);
    } else {
        good_connection(poll, hit == HIT_MAP);
    }
    case_end(&f, fds, dies, &rep);
    if (poll) {
        /* Identity and the call hit went through the ring, no more. */
        CHECK_EQ(rep.ring_calls, 2 + (dies ? 0 : GOOD_RING_CALLS));
    } else {
        CHECK_EQ(rep.ring_calls, 0);
    }
}

/* The highest fd open in this process. */
static int highest_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int top = -1;

    while (d != NULL && (e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);

        if (e->d_name[0] != '.' && fd != dirfd(d) && fd > top) {
            top = fd;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return top;
}

/* Does valgrind run us?  It keeps RLIMIT_NOFILE to itself. */
static bool under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");

    return p != NULL && strstr(p, "vgpreload") != NULL;
}

/*
 * A full fd table: RLIMIT_NOFILE leaves @room fds free.  With 2, the
 * ring's channel gets the last one and its memfd cannot be received:
 * the kernel drops it and says MSG_CTRUNC.  Whatever the room, the
 * connect succeeds, calls work (through the ring only with room for
 * it), and no fd is left behind.  @rep receives what the daemon saw.
 *
 * Return: whether the limit could be set (not under valgrind).
 */
static bool nofile_round(int room, FakeReport *rep)
{
    struct rlimit old, low;
    int filled[256], nfilled = 0;
    io_connect_t c = IO_OBJECT_NULL;
    uint64_t v = 0;
    IOReturn ret, rd = kIOReturnError;
    int fds, top, fd, nul;
    bool limited;
    Fake f;

    memset(rep, 0, sizeof(*rep));
    if (!fake_start(&f, FAULT_NONE)) {
        return false;
    }
    fds = count_fds();
    nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    top = highest_fd();
    /* Every fd below the limit is taken but @room at the top. */
    for (fd = 0; fd < top && nfilled < 256; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF &&
            dup3(nul, fd, O_CLOEXEC) == fd) {
            filled[nfilled++] = fd;
        }
    }
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    low = old;
    low.rlim_cur = (rlim_t)(top + 1 + room);
    limited = setrlimit(RLIMIT_NOFILE, &low) == 0;
    /* valgrind keeps the limit to itself and refuses to change it. */
    CHECK(limited || under_valgrind());

    ret = apple_dext_connect_target(fake_target(true, CONNECT_MS), EDU_BUS,
                                    EDU_DEV, EDU_FN, &c);
    if (ret == kIOReturnSuccess) {
        rd = apple_dext_config_read(c, 0, 4, &v);
        apple_dext_disconnect(c);
    }

    if (limited) {
        CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    }
    while (nfilled > 0) {
        close(filled[--nfilled]);
    }
    close(nul);
    CHECK_KR(ret, kIOReturnSuccess);
    CHECK_KR(rd, kIOReturnSuccess);
    CHECK_EQ(v, EDU_IDS);
    CHECK_EQ(count_fds(), fds);
    {
        bool killed;

        CHECK(fake_stop(&f, rep, &killed));
        CHECK_EQ(rep->bad_requests, 0);
    }
    return limited;
}

static void test_nofile(void)
{
    unsigned failures = harness_failures();
    bool ctrunc = false;
    FakeReport rep;
    int room;

    case_begin("", "a full fd table: the ring's memfd cannot be received",
               true);
    for (room = 1; room <= 4 && harness_failures() == failures; room++) {
        ring_refused_with = kIOReturnSuccess;
        if (!nofile_round(room, &rep)) {
            break;
        }
        printf("# room for %d fds: RING %s, %u calls through the ring, "
               "refused with 0x%x\n", room,
               rep.rings_sent ? "answered with a memfd" : "not asked",
               rep.ring_calls, (unsigned)ring_refused_with);
        if (rep.rings_sent == 1 && rep.ring_calls == 0) {
            /* The memfd went and never arrived: MSG_CTRUNC. */
            CHECK_KR(ring_refused_with, kIOReturnIPCError);
            ctrunc = true;
        }
        if (rep.rings_sent == 1 && rep.ring_calls > 0) {
            break;                  /* room enough for all */
        }
    }
    if (!ctrunc && under_valgrind()) {
        printf("# SKIP the MSG_CTRUNC check: valgrind keeps "
               "RLIMIT_NOFILE to itself\n");
    } else {
        CHECK_MSG(ctrunc, "no room left the RING's memfd unreceived");
    }
    alarm(0);
}

/* The harness's dextd, after all that: both ways, as ever. */
static void test_real_dextd(void)
{
    char target[512];
    io_connect_t c;
    uint64_t v = 0;
    int i;

    case_begin("", "the real dextd serves this process as before", false);
    for (i = 0; i < 2; i++) {
        snprintf(target, sizeof(target), "%s%s", harness_target(),
                 i ? ",poll" : "");
        c = IO_OBJECT_NULL;
        if (!CHECK_KR(apple_dext_connect_target(target, EDU_BUS, EDU_DEV,
                                                EDU_FN, &c),
                      kIOReturnSuccess)) {
            continue;
        }
        CHECK_KR(apple_dext_config_read(c, 0, 4, &v), kIOReturnSuccess);
        CHECK_EQ(v, EDU_IDS);
        apple_dext_disconnect(c);
    }
    alarm(0);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        Fault fault;
        IOReturn why;
    } rings[] = {
        { "no fd", FAULT_RING_NO_FD, kIOReturnIPCError },
        { "a pipe, not a memfd", FAULT_RING_PIPE, kIOReturnIPCError },
        { "a plain file, not a memfd", FAULT_RING_FILE, kIOReturnIPCError },
        { "an unsealed memfd", FAULT_RING_UNSEALED, kIOReturnIPCError },
        { "a memfd that can shrink", FAULT_RING_SHRINKABLE,
          kIOReturnIPCError },
        { "a memfd whose seals are not sealed", FAULT_RING_SEALS_OPEN,
          kIOReturnIPCError },
        { "a write-sealed memfd", FAULT_RING_WRITE_SEALED,
          kIOReturnIPCError },
        { "a memfd of 4 KiB", FAULT_RING_SMALL, kIOReturnIPCError },
        { "a memfd a page too large", FAULT_RING_LARGE, kIOReturnIPCError },
        { "two memfds", FAULT_RING_TWO_FDS, kIOReturnIPCError },
        { "a memfd with a refusal", FAULT_RING_REFUSED_WITH_FD,
          kIOReturnNoResources },
        { "refused", FAULT_RING_REFUSED, kIOReturnNoResources },
        { "an ERROR, as from a dextd without rings", FAULT_RING_ERROR,
          kIOReturnBadMessageID },
        { "no answer", FAULT_RING_SILENT, kIOReturnTimeout },
    };
    static const struct {
        const char *name;
        Fault fault;
        Hit hit;
        IOReturn ring, sock;    /* what the call answers each way; 0: n/a */
        IOReturn sock_next;     /* the next call, after @sock */
    } calls[] = {
        { "length says 8 bytes more", FAULT_LEN_LIE, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "length a byte past the largest payload", FAULT_LEN_OVER, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "length 1 MiB", FAULT_LEN_HUGE, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "length zero", FAULT_LEN_ZERO, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "10 bytes of header", FAULT_SHORT_HEADER, HIT_READ,
          0, kIOReturnIPCError, kIOReturnNotResponding },
        { "a message past MAX_MSG", FAULT_OVERSIZED, HIT_READ,
          0, kIOReturnIPCError, kIOReturnNotResponding },
        { "an unknown type", FAULT_TYPE_UNKNOWN, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "a MAP reply", FAULT_TYPE_OTHER, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "no reply flag", FAULT_NOT_REPLY, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "a bad magic", FAULT_BAD_MAGIC, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "an unknown version", FAULT_BAD_VERSION, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "sequence number 0", FAULT_SEQ_ZERO, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        /* In the ring the last reply's number is no reply at all. */
        { "the last call's sequence number", FAULT_SEQ_STALE, HIT_READ,
          kIOReturnTimeout, kIOReturnIPCError, kIOReturnNotResponding },
        { "the next call's sequence number", FAULT_SEQ_FUTURE, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "a scalar more than asked for", FAULT_SCALARS_OVER_CAP, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "17 scalars", FAULT_SCALARS_OVER_MAX, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "a struct byte more than asked for", FAULT_STRUCT_OVER_CAP, HIT_BLOCK,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "a 4097-byte struct", FAULT_STRUCT_OVER_MAX, HIT_BLOCK,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "an ERROR", FAULT_ERROR, HIT_READ,
          kIOReturnBadMessageID, kIOReturnBadMessageID,
          kIOReturnNotResponding },
        { "an ERROR saying success", FAULT_ERROR_SUCCESS, HIT_READ,
          kIOReturnIPCError, kIOReturnIPCError, kIOReturnNotResponding },
        { "two fds attached", FAULT_WITH_FDS, HIT_READ,
          0, kIOReturnSuccess, kIOReturnSuccess },
        { "no answer", FAULT_SILENT, HIT_READ,
          kIOReturnTimeout, kIOReturnTimeout, kIOReturnNotResponding },
        { "a hang-up", FAULT_HANG_UP, HIT_READ,
          kIOReturnNotResponding, kIOReturnNotResponding,
          kIOReturnNotResponding },
        { "dextd killed", FAULT_DIE, HIT_READ,
          kIOReturnNotResponding, kIOReturnNotResponding,
          kIOReturnNotResponding },
        { "success without an fd", FAULT_MAP_NO_FD, HIT_MAP,
          0, kIOReturnIPCError, kIOReturnNotResponding },
        { "a refusal with an fd", FAULT_MAP_REFUSED_WITH_FD, HIT_MAP,
          0, kIOReturnIPCError, kIOReturnNotResponding },
        { "two fds", FAULT_MAP_TWO_FDS, HIT_MAP,
          0, kIOReturnIPCError, kIOReturnNotResponding },
        /* The reply is well-formed; mmap() refuses the fd. */
        { "a pipe", FAULT_MAP_PIPE, HIT_MAP,
          0, kIOReturnVMError, kIOReturnSuccess },
        { "an offset not page aligned", FAULT_MAP_MISALIGNED, HIT_MAP,
          0, kIOReturnIPCError, kIOReturnNotResponding },
        { "unknown flags", FAULT_MAP_BAD_FLAGS, HIT_MAP,
          0, kIOReturnIPCError, kIOReturnNotResponding },
        /* A mapping whose touch past the file's end would be a SIGBUS. */
        { "a memfd of 16 KiB for 1 MiB", FAULT_MAP_SHORT_FILE, HIT_MAP,
          0, kIOReturnIPCError, kIOReturnNotResponding },
        { "an offset at the memfd's end", FAULT_MAP_PAST_END, HIT_MAP,
          0, kIOReturnIPCError, kIOReturnNotResponding },
        { "size zero", FAULT_MAP_ZERO_SIZE, HIT_MAP,
          0, kIOReturnIPCError, kIOReturnNotResponding },
        { "no answer", FAULT_MAP_SILENT, HIT_MAP,
          0, kIOReturnTimeout, kIOReturnNotResponding },
    };
    char dir[] = "/tmp/fake-dextd-XXXXXX";
    int fds_at_start;
    size_t i;

    harness_init(argc, argv, NULL);
    if (!harness_is_unix()) {
        harness_skip("a fake dextd is reached over the unix transport only");
    }
    if (!CHECK(mkdtemp(dir) != NULL)) {
        return harness_finish();
    }
    snprintf(fake_dir, sizeof(fake_dir), "%s", dir);
    snprintf(fake_path, sizeof(fake_path), "%s/dextd.sock", dir);
    apple_dext_set_log_handler(log_handler, NULL);
    signal(SIGALRM, watchdog);
    fds_at_start = count_fds();

    test_connect("HELLO answered with garbage", FAULT_HELLO_GARBAGE, false,
                 false, kIOReturnIPCError, CONNECT_MS);
    test_connect("HELLO not answered", FAULT_HELLO_SILENT, false, false,
                 kIOReturnTimeout, CALL_MS);
    test_connect("LIST of 257 services", FAULT_LIST_TOO_MANY, false, false,
                 kIOReturnIPCError, CONNECT_MS);
    test_connect("OPEN reply 4 bytes short", FAULT_OPEN_SHORT, false, false,
                 kIOReturnIPCError, CONNECT_MS);
    for (i = 0; i < 2; i++) {
        test_connect("reply of length zero", FAULT_LEN_ZERO, true, i,
                     kIOReturnIPCError, CALL_MS);
        test_connect("no answer", FAULT_SILENT, true, i, kIOReturnTimeout,
                     CALL_MS);
        test_connect("dextd killed", FAULT_DIE, true, i,
                     kIOReturnNotResponding, CALL_MS);
    }

    for (i = 0; i < sizeof(rings) / sizeof(rings[0]); i++) {
        test_ring_setup(rings[i].name, rings[i].fault, rings[i].why);
    }
    {
        /* A good ring's seals hold: the daemon cannot shrink it. */
        FakeReport rep;
        bool killed;
        Fake f;
        int fds;

        case_begin("", "a good ring cannot be shrunk by dextd", true);
        if (fake_start(&f, FAULT_NONE)) {
            fds = count_fds();
            good_connection(true, true);
            CHECK_EQ(count_fds(), fds);
            CHECK(fake_stop(&f, &rep, &killed));
            CHECK_EQ(rep.ring_calls, GOOD_RING_CALLS);
            CHECK_EQ(rep.truncate_errno, EPERM);
            CHECK_EQ(rep.bad_requests, 0);
        }
        alarm(0);
    }

    for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        if (calls[i].ring != 0) {
            /* A ring that failed leaves the calls to the socket. */
            test_call(calls[i].name, calls[i].fault, true, calls[i].hit,
                      calls[i].ring, calls[i].fault == FAULT_DIE
                      ? kIOReturnNotResponding : kIOReturnSuccess);
        }
        test_call(calls[i].name, calls[i].fault, false, calls[i].hit,
                  calls[i].sock, calls[i].sock_next);
    }

    test_nofile();
    test_real_dextd();

    CHECK_EQ(count_fds(), fds_at_start);
    rmdir(fake_dir);
    return harness_finish();
}
