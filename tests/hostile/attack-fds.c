/*
 * SPDX-License-Identifier: MIT
 *
 * Hostile suite, family "fds": file descriptors a client passes to dextd
 * and those dextd passes back.
 *
 *  - An fd beside every message type, and 253 at once: dextd keeps none
 *    (only WAKE_REGISTER takes one) and drops the channel.
 *  - Every kind of fd as a wake port: only a connected AF_UNIX SEQPACKET
 *    or DGRAM socket whose peer is not dextd itself is taken (decision
 *    3).  The client's own channel, or a socket with that channel parked
 *    in its queue, must not keep the session alive once the client has
 *    closed everything (finding 3).
 *  - Sealing (finding 1, decision 1): the DMA buffer, the interrupt page
 *    and ivshmem's BAR2 come back as memfds that cannot be shrunk or
 *    grown; after a client's ftruncate() dextd touches each (edu DMA
 *    into the buffer, one interrupt, an MMIO read of BAR2) and lives.
 *  - Shared memory beside RegisterDMARegion (its 4th scalar the offset):
 *    on an emulated device the fd is ignored and closed; several fds,
 *    or one with another selector, drop the channel; an fd without its
 *    offset is BadArgument; hundreds of registrations each with an fd
 *    leave dextd's fd count where it was.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "edu.h"
#include "hostile.h"
#include "hostile-wire.h"
#include "ivshmem.h"
#include "protocol/dext-selectors.h"

#define TOO_MANY_FDS 253        /* SCM_MAX_FD */

/* A session on @bdf, claimed if @claim; NULL (a failed check) if not. */
static RawChan *session_on(uint16_t bdf, bool claim)
{
    RawChan *c = NULL;
    IOReturn st = raw_session(&c, hostile_service(bdf), claim);

    HCHECK(st == kIOReturnSuccess, "session on %02x:%02x.%x: 0x%x",
           bdf >> 8, (bdf >> 3) & 0x1f, bdf & 7, st);
    return c;
}

/* Read until dextd hangs up; true if it did within the bound. */
static bool dropped(RawChan *c)
{
    return raw_dropped(c, HOSTILE_ANSWER_MS, NULL, NULL);
}

static void attack_fd_with_every_type(void)
{
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    int pfd[2], two[2];
    uint16_t t;

    if (!HCHECK(pipe2(pfd, O_CLOEXEC) == 0, "pipe: %s", strerror(errno))) {
        return;
    }
    /* Every type, and the unknown 0 and DEXT_WIRE_TYPE_MAX + 1. */
    for (t = 0; t <= DEXT_WIRE_TYPE_MAX + 1; t++) {
        RawChan *c = t == DEXT_WIRE_HELLO ? raw_connect() :
                     session_on(HOSTILE_EDU_BDF, false);
        int n = raw_encode_any(buf, sizeof(buf), t, 99);

        if (c == NULL) {
            break;
        }
        if (t == DEXT_WIRE_WAKE_REGISTER) {
            /* Its one fd is the point: send two, neither may be kept. */
            two[0] = pfd[0];
            two[1] = pfd[1];
            raw_send(c, buf, (size_t)n, two, 2);
            HCHECK(raw_wait_reply(c, 99, NULL) == kIOReturnSuccess,
                   "WAKE_REGISTER with two fds: no reply");
        } else {
            raw_send(c, buf, (size_t)n, &pfd[0], 1);
            HCHECK(dropped(c), "%s (type %u) with an fd: channel not "
                   "dropped", dext_wire_type_name(t), t);
        }
        raw_close(c);
    }
    close(pfd[0]);
    close(pfd[1]);
}

static void attack_too_many_fds(void)
{
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    int fds[TOO_MANY_FDS];
    int pfd[2], i, n;
    RawChan *c;

    if (!HCHECK(pipe2(pfd, O_CLOEXEC) == 0, "pipe: %s", strerror(errno))) {
        return;
    }
    for (i = 0; i < TOO_MANY_FDS; i++) {
        fds[i] = i % 2 ? pfd[1] : pfd[0];
    }
    /* With a request that takes none, one that takes one, and garbage. */
    c = session_on(HOSTILE_EDU_BDF, false);
    if (c != NULL) {
        n = dext_wire_encode_empty(buf, sizeof(buf), 1, 5, DEXT_WIRE_STATUS);
        HCHECK(raw_send(c, buf, (size_t)n, fds, TOO_MANY_FDS) == n,
               "sendmsg with %d fds: %s", TOO_MANY_FDS, strerror(errno));
        HCHECK(dropped(c), "STATUS with %d fds: channel not dropped",
               TOO_MANY_FDS);
        raw_close(c);
    }
    c = session_on(HOSTILE_EDU_BDF, false);
    if (c != NULL) {
        n = dext_wire_encode_empty(buf, sizeof(buf), 1, 5,
                                   DEXT_WIRE_WAKE_REGISTER);
        raw_send(c, buf, (size_t)n, fds, TOO_MANY_FDS);
        HCHECK(dropped(c) || raw_wait_reply(c, 5, NULL) == kIOReturnSuccess,
               "WAKE_REGISTER with %d fds: neither answered nor dropped",
               TOO_MANY_FDS);
        raw_close(c);
    }
    c = raw_connect();
    if (HCHECK(c != NULL, "no channel")) {
        memset(buf, 0x5a, 64);
        raw_send(c, buf, 64, fds, TOO_MANY_FDS);
        HCHECK(dropped(c), "garbage with %d fds: channel not dropped",
               TOO_MANY_FDS);
        raw_close(c);
    }
    close(pfd[0]);
    close(pfd[1]);
}

/* A listening AF_UNIX SEQPACKET socket on an abstract address. */
static int listening_socket(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "hostile-%d",
             (int)getpid());
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
                    listen(fd, 1) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* A UDP socket, connected to another on the loopback if @connected. */
static int udp_socket(bool connected, int *peer)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    *peer = -1;
    if (fd < 0 || !connected) {
        return fd;
    }
    *peer = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (*peer < 0 || bind(*peer, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(*peer, (struct sockaddr *)&sa, &len) != 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

typedef struct WakeKind {
    const char *what;
    int fd;
    int extra[2];               /* closed with it */
    bool take;                  /* a legitimate wake port */
} WakeKind;

static void attack_wake_port_kinds(void)
{
    WakeKind k[20];
    RawChan *c = session_on(HOSTILE_EDU_BDF, true);
    RawChan *other = raw_connect_hello();
    unsigned nk = 0, i, refused = 0;
    int sp[2], pfd[2];

    if (c == NULL || !HCHECK(other != NULL, "no second channel")) {
        raw_close(c);
        raw_close(other);
        return;
    }
    memset(k, 0, sizeof(k));
#define KIND(w, f, t) \
    do { k[nk].what = (w); k[nk].fd = (f); k[nk].extra[0] = -1; \
         k[nk].extra[1] = -1; k[nk].take = (t); nk++; } while (0)
    KIND("eventfd", eventfd(0, EFD_CLOEXEC), false);
    if (pipe2(pfd, O_CLOEXEC) == 0) {
        KIND("pipe read end", pfd[0], false);
        KIND("pipe write end", pfd[1], false);
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0) {
        KIND("AF_UNIX stream socket", sp[0], false);
        k[nk - 1].extra[0] = sp[1];
    }
    KIND("unconnected UDP socket", udp_socket(false, &pfd[0]), false);
    KIND("connected UDP socket", udp_socket(true, &pfd[0]), false);
    k[nk - 1].extra[0] = pfd[0];
    KIND("netlink socket", socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
                                  NETLINK_ROUTE), false);
    KIND("listening AF_UNIX SEQPACKET socket", listening_socket(), false);
    KIND("unconnected AF_UNIX DGRAM socket",
         socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), false);
    KIND("/dev/null", open("/dev/null", O_RDWR | O_CLOEXEC), false);
    KIND("memfd", memfd_create("hostile", MFD_CLOEXEC), false);
    /* Finding 3: a socket whose peer is dextd keeps a session alive. */
    KIND("the client's own channel to dextd", dup(c->fd), false);
    KIND("another channel to dextd", dup(other->fd), false);
    /* The controls: what the library itself registers. */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0) {
        KIND("connected SEQPACKET socketpair end", sp[0], true);
        k[nk - 1].extra[0] = sp[1];
    }
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp) == 0) {
        KIND("connected DGRAM socketpair end", sp[0], true);
        k[nk - 1].extra[0] = sp[1];
    }
#undef KIND

    for (i = 0; i < nk; i++) {
        IOReturn st;

        if (!HCHECK(k[i].fd >= 0, "cannot make a %s: %s", k[i].what,
                    strerror(errno))) {
            continue;
        }
        st = raw_wake_register(c, k[i].fd, NULL);
        if (k[i].take) {
            HCHECK(st == kIOReturnSuccess, "%s refused as a wake port: 0x%x",
                   k[i].what, st);
        } else {
            HCHECK(st == kIOReturnBadArgument, "%s as a wake port: want "
                   "kIOReturnBadArgument, got 0x%x", k[i].what, st);
            refused += st == kIOReturnBadArgument;
        }
        if (st == RAW_HUNG_UP || st == RAW_NO_ANSWER) {
            break;
        }
    }
    for (i = 0; i < nk; i++) {
        if (k[i].fd >= 0) {
            close(k[i].fd);
        }
        if (k[i].extra[0] >= 0) {
            close(k[i].extra[0]);
        }
    }
    hostile_note("%u of %u bad kinds refused", refused, nk - 2);
    raw_close(other);
    raw_close(c);
}

/*
 * Finding 3 as a client would do it by accident or on purpose: register
 * the channel itself, close everything.  The session must end.
 */
static void attack_wake_own_channel(void)
{
    RawChan *c = session_on(HOSTILE_EDU_BDF, true);
    uint64_t bus;
    static uint8_t page[4096] __attribute__((aligned(4096)));
    IOReturn st;

    if (c == NULL) {
        return;
    }
    raw_alloc_buffer(c, 4096, &bus);
    raw_register(c, 0x1000, page, sizeof(page), &bus);
    st = raw_wake_register(c, c->fd, NULL);
    HCHECK(st == kIOReturnBadArgument, "own channel as a wake port: 0x%x",
           st);
    /* The runner then requires the session, its fds and thread gone. */
    raw_close(c);
}

/*
 * A socket whose queue holds the client's channel (SCM_RIGHTS in flight)
 * keeps that channel open for as long as dextd holds the socket.  dextd
 * must not let that keep a session alive: it refuses the port or drops
 * what is queued on it, before or after the registration (decision 3).
 */
static void parked(int type, bool park_first)
{
    RawChan *c = session_on(HOSTILE_EDU_BDF, true);
    int sp[2];
    IOReturn st;

    if (c == NULL) {
        return;
    }
    if (!HCHECK(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sp) == 0,
                "socketpair: %s", strerror(errno))) {
        raw_close(c);
        return;
    }
    if (park_first) {
        /* Into sp[0]'s queue, then sp[0] goes to dextd. */
        HCHECK(raw_pass_fd(sp[1], c->fd), "cannot park the channel: %s",
               strerror(errno));
        st = raw_wake_register(c, sp[0], NULL);
    } else {
        /* sp[1] goes to dextd, then the channel into its queue. */
        st = raw_wake_register(c, sp[1], NULL);
        if (st == kIOReturnSuccess && !raw_pass_fd(sp[0], c->fd)) {
            hostile_note("parking after registration refused: %s",
                         strerror(errno));
        }
    }
    hostile_note("%s pair, parked %s: WAKE_REGISTER 0x%x",
                 type == SOCK_DGRAM ? "DGRAM" : "SEQPACKET",
                 park_first ? "before" : "after", st);
    close(sp[0]);
    close(sp[1]);
    raw_close(c);
}

static void attack_wake_parked_channel(void)
{
    /* Each variant's session must be gone: the runner checks all four. */
    parked(SOCK_DGRAM, true);
    parked(SOCK_DGRAM, false);
    parked(SOCK_SEQPACKET, true);
    parked(SOCK_SEQPACKET, false);
}

/* Seals of @fd as text, for the result line. */
static const char *seals_text(int fd)
{
    static char buf[64];
    int s = fcntl(fd, F_GET_SEALS);

    if (s < 0) {
        snprintf(buf, sizeof(buf), "no seals (%s)", strerror(errno));
    } else {
        snprintf(buf, sizeof(buf), "seals%s%s%s%s", s & F_SEAL_SEAL ?
                 " SEAL" : "", s & F_SEAL_SHRINK ? " SHRINK" : "",
                 s & F_SEAL_GROW ? " GROW" : "", s & F_SEAL_WRITE ?
                 " WRITE" : "");
    }
    return buf;
}

/*
 * The client's ftruncate() of a memfd dextd handed out must fail, to 0
 * and to twice the size (decision 1).  What it tries is all a hostile
 * client would try; the caller then makes dextd touch the memory.
 */
static void try_resize(int fd, uint64_t size, const char *what)
{
    int r0, e0, r2, e2;

    /* Shrinking last: on a daemon without seals the memory stays gone. */
    r2 = ftruncate(fd, (off_t)size * 2);
    e2 = errno;
    r0 = ftruncate(fd, 0);
    e0 = errno;
    hostile_note("%s: %s", what, seals_text(fd));
    HCHECK(r0 != 0, "%s: the client's ftruncate(fd, 0) succeeded", what);
    HCHECK(r2 != 0, "%s: the client's ftruncate(fd, 2 * size) succeeded",
           what);
    if (r0 != 0) {
        hostile_note("ftruncate to 0: %s", strerror(e0));
    }
    if (r2 != 0 && e2 != e0) {
        hostile_note("ftruncate to 2x: %s", strerror(e2));
    }
    /* Another client's mapping must stay writable: no seal may be added. */
    HCHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0,
           "%s: the client could add F_SEAL_FUTURE_WRITE", what);
}

static void attack_seal_dma_buffer(void)
{
    RawChan *c = session_on(HOSTILE_EDU_BDF, true);
    DextWireMapReply mr;
    uint64_t bus = 0;
    IOReturn st;
    int fd = -1;

    if (c == NULL) {
        return;
    }
    st = raw_alloc_buffer(c, 4096, &bus);
    if (HCHECK(st == kIOReturnSuccess, "AllocateDMABuffer: 0x%x", st)) {
        st = raw_map(c, kDextMemoryTypeDMABuffer, &mr, &fd);
    }
    if (HCHECK(st == kIOReturnSuccess && fd >= 0, "MAP of the DMA buffer: "
               "0x%x", st)) {
        try_resize(fd, mr.size, "DMA buffer");
        /* Now dextd writes into it: the device copies its buffer out. */
        st = raw_edu_dma(c, EDU_DMA_BUF_ADDR, bus, 4096, true, true);
        HCHECK(st == kIOReturnSuccess, "edu DMA into the DMA buffer: 0x%x",
               st);
        st = raw_edu_dma(c, bus, EDU_DMA_BUF_ADDR, 4096, false, true);
        HCHECK(st == kIOReturnSuccess || !hostile_dextd_alive(),
               "edu DMA from the DMA buffer: 0x%x", st);
        close(fd);
    }
    raw_close(c);
}

static void attack_seal_irq_page(void)
{
    RawChan *c = session_on(HOSTILE_EDU_BDF, true);
    DextWireMapReply mr;
    uint64_t nvec = 0, pending[4] = { 0 };
    double end;
    IOReturn st;
    int fd = -1;

    if (c == NULL) {
        return;
    }
    st = raw_setup_interrupts(c, &nvec);
    if (HCHECK(st == kIOReturnSuccess, "SetupInterrupts: 0x%x", st)) {
        st = raw_map(c, kDextMemoryTypeInterruptPage, &mr, &fd);
    }
    if (HCHECK(st == kIOReturnSuccess && fd >= 0, "MAP of the interrupt "
               "page: 0x%x", st)) {
        try_resize(fd, mr.size, "interrupt page");
        /* One interrupt: dextd sets its pending bit in the page. */
        st = raw_edu_raise_irq(c);
        HCHECK(st == kIOReturnSuccess, "edu IRQ raise: 0x%x", st);
        end = hostile_now_ms() + HOSTILE_ANSWER_MS;
        do {
            st = raw_call(c, kDextSelectorCheckInterrupt, NULL, 0, pending,
                          4);
        } while (st == kIOReturnSuccess && pending[0] == 0 &&
                 hostile_now_ms() < end);
        HCHECK(st == kIOReturnSuccess && pending[0] != 0,
               "the interrupt was not delivered (0x%x)", st);
        raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_IRQ_ACK, 4, 0xffffffff);
        close(fd);
    }
    raw_close(c);
}

static void attack_seal_ivshmem_bar2(void)
{
    RawChan *c = session_on(HOSTILE_IVSHMEM_BDF, true);
    DextWireMapReply mr;
    uint64_t v = 0;
    IOReturn st;
    int fd = -1;

    if (c == NULL) {
        return;
    }
    st = raw_map(c, kDextMemoryTypeBAR0 + IVSHMEM_BAR_SHM, &mr, &fd);
    if (HCHECK(st == kIOReturnSuccess && fd >= 0, "MAP of BAR2: 0x%x", st)) {
        try_resize(fd, mr.offset + mr.size, "ivshmem BAR2");
        /* dextd reads its own mapping of the memfd. */
        st = raw_mmio_read(c, IVSHMEM_MEM_SHM, 0, 4, &v);
        HCHECK(st == kIOReturnSuccess, "MMIO read of BAR2 at 0: 0x%x", st);
        if (hostile_dextd_alive()) {
            st = raw_mmio_read(c, IVSHMEM_MEM_SHM, IVSHMEM_DEFAULT_SIZE - 8,
                               8, &v);
            HCHECK(st == kIOReturnSuccess, "MMIO read at the end of BAR2: "
                   "0x%x", st);
        }
        close(fd);
    }
    raw_close(c);
}

#define DMA_FD_SIZE 65536

/* Client memory as libdext sends it for DMA: a memfd, mapped shared. */
static uint8_t *dma_fd_memory(int *fd)
{
    uint8_t *p;

    *fd = memfd_create("hostile-dma", MFD_CLOEXEC);
    if (!HCHECK(*fd >= 0 && ftruncate(*fd, DMA_FD_SIZE) == 0,
                "memfd: %s", strerror(errno))) {
        return NULL;
    }
    p = mmap(NULL, DMA_FD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (!HCHECK(p != MAP_FAILED, "mmap: %s", strerror(errno))) {
        close(*fd);
        return NULL;
    }
    memset(p, 0x3c, DMA_FD_SIZE);
    return p;
}

/* RegisterDMARegion of @size at @off into @mem, @fds beside it. */
static IOReturn register_with(RawChan *c, uint64_t iova, uint8_t *mem,
                              uint64_t off, uint64_t size, uint32_t nin,
                              const int *fds, int nfds)
{
    uint64_t in[4] = { iova, (uintptr_t)(mem + off), size, off };
    uint64_t out[3];

    return raw_call_fds(c, kDextSelectorRegisterDMARegion, in, nin, out, 3,
                        fds, nfds);
}

/* Wait (bounded) until dextd holds at most @want fds; the count. */
static int dextd_fds_settle(int want)
{
    double end = hostile_now_ms() + HOSTILE_SETTLE_MS;
    int n;

    while ((n = harness_count_fds(hostile_dextd_pid())) > want &&
           hostile_now_ms() < end) {
        hostile_sleep_ms(10);
    }
    return n;
}

/*
 * One RegisterDMARegion on edu with a memfd beside it and @nin scalars:
 * it answers @want, the channel goes on, dextd keeps no fd.
 */
static void dma_fd_once(uint32_t nin, IOReturn want)
{
    RawChan *c = session_on(HOSTILE_EDU_BDF, true);
    int fd, base, n;
    uint8_t *mem;
    IOReturn st;

    if (c == NULL || (mem = dma_fd_memory(&fd)) == NULL) {
        raw_close(c);
        return;
    }
    base = harness_count_fds(hostile_dextd_pid());
    st = register_with(c, 0x10000, mem, 4096, 8192, nin, &fd, 1);
    HCHECK(st == want, "RegisterDMARegion with an fd and %u scalars: 0x%x",
           nin, st);
    n = dextd_fds_settle(base);
    HCHECK(n == base, "dextd holds %d fds, %d before the call", n, base);
    st = raw_unregister(c, 0x10000);
    HCHECK(st == (want == kIOReturnSuccess ? kIOReturnSuccess
                                           : kIOReturnNotFound),
           "UnregisterDMARegion: 0x%x", st);
    st = raw_call(c, kDextSelectorGetIdentity, NULL, 0, NULL, 6);
    HCHECK(st == kIOReturnSuccess, "GetIdentity after it: 0x%x", st);
    munmap(mem, DMA_FD_SIZE);
    close(fd);
    raw_close(c);
}

/* edu's DMA goes through dextd: the fd is not needed, nor kept. */
static void attack_dma_fd_emulated(void)
{
    dma_fd_once(4, kIOReturnSuccess);
}

/* An fd without the offset into it. */
static void attack_dma_fd_three_scalars(void)
{
    dma_fd_once(3, kIOReturnBadArgument);
}

static void attack_dma_several_fds(void)
{
    RawChan *c = session_on(HOSTILE_EDU_BDF, true);
    int fd, fds[3];
    uint8_t *mem;

    if (c == NULL || (mem = dma_fd_memory(&fd)) == NULL) {
        raw_close(c);
        return;
    }
    fds[0] = fds[1] = fds[2] = fd;
    register_with(c, 0x10000, mem, 0, 4096, 4, fds, 3);
    HCHECK(dropped(c), "RegisterDMARegion with 3 fds: channel not dropped");
    raw_close(c);
    munmap(mem, DMA_FD_SIZE);
    close(fd);
}

static void attack_fd_with_other_selector(void)
{
    static const uint32_t sels[] = {
        kDextSelectorUnregisterDMARegion, kDextSelectorProbeDMARegion,
        kDextSelectorAllocateDMABuffer, kDextSelectorConfigRead,
        kDextSelectorClaim,
    };
    uint64_t in[4] = { 0x10000, 0, 4096, 0 };
    unsigned i;
    int fd;
    uint8_t *mem = dma_fd_memory(&fd);

    if (mem == NULL) {
        return;
    }
    for (i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
        RawChan *c = session_on(HOSTILE_EDU_BDF, true);

        if (c == NULL) {
            break;
        }
        raw_call_fds(c, sels[i], in, 4, NULL, 6, &fd, 1);
        HCHECK(dropped(c), "selector %u with an fd: channel not dropped",
               sels[i]);
        raw_close(c);
    }
    munmap(mem, DMA_FD_SIZE);
    close(fd);
}

#define DMA_FD_ROUNDS 600

static void attack_dma_fd_many(void)
{
    RawChan *c = session_on(HOSTILE_EDU_BDF, true);
    int fd, pfd[2], base, n;
    unsigned i, ok = 0;
    uint8_t *mem;
    IOReturn st;

    if (c == NULL || (mem = dma_fd_memory(&fd)) == NULL) {
        raw_close(c);
        return;
    }
    if (!HCHECK(pipe2(pfd, O_CLOEXEC) == 0, "pipe: %s", strerror(errno))) {
        munmap(mem, DMA_FD_SIZE);
        close(fd);
        raw_close(c);
        return;
    }
    base = harness_count_fds(hostile_dextd_pid());
    /* Each call's fd arrives as a new one in dextd: regions that stay,
     * and calls refused, with the memfd and with a pipe. */
    for (i = 0; i < DMA_FD_ROUNDS; i++) {
        const int *what = i % 3 == 2 ? &pfd[0] : &fd;

        st = register_with(c, 0x10000 * (i + 1), mem, (i % 16) * 4096, 4096,
                           i % 5 == 4 ? 3 : 4, what, 1);
        ok += st == kIOReturnSuccess;
        if (!HCHECK(raw_is_answer(st), "round %u: no answer (0x%x)", i, st)) {
            break;
        }
    }
    hostile_note("%u of %d registrations taken", ok, DMA_FD_ROUNDS);
    n = dextd_fds_settle(base);
    HCHECK(n == base, "dextd holds %d fds with %u regions, %d before", n, ok,
           base);
    for (i = 0; i < DMA_FD_ROUNDS; i++) {
        raw_unregister(c, 0x10000 * (i + 1));
    }
    n = dextd_fds_settle(base);
    HCHECK(n == base, "dextd holds %d fds after unregistering, %d before", n,
           base);
    close(pfd[0]);
    close(pfd[1]);
    munmap(mem, DMA_FD_SIZE);
    close(fd);
    raw_close(c);
}

static const HostileAttack attacks[] = {
    { .name = "fds/fd-with-every-type", .run = attack_fd_with_every_type },
    { .name = "fds/too-many-fds", .run = attack_too_many_fds },
    { .name = "fds/wake-port-kinds", .finding = "F3",
      .run = attack_wake_port_kinds },
    { .name = "fds/wake-own-channel", .finding = "F3",
      .run = attack_wake_own_channel },
    { .name = "fds/wake-parked-channel", .finding = "F3",
      .run = attack_wake_parked_channel },
    { .name = "fds/seal-dma-buffer", .finding = "F1",
      .run = attack_seal_dma_buffer },
    { .name = "fds/seal-irq-page", .finding = "F1",
      .run = attack_seal_irq_page },
    { .name = "fds/seal-ivshmem-bar2", .finding = "F1",
      .run = attack_seal_ivshmem_bar2 },
    { .name = "fds/dma-fd-emulated", .run = attack_dma_fd_emulated },
    { .name = "fds/dma-several-fds", .run = attack_dma_several_fds },
    { .name = "fds/dma-fd-three-scalars",
      .run = attack_dma_fd_three_scalars },
    { .name = "fds/fd-with-other-selector",
      .run = attack_fd_with_other_selector },
    { .name = "fds/dma-fd-many", .run = attack_dma_fd_many },
};

int main(int argc, char **argv)
{
    return hostile_main(argc, argv, attacks,
                        sizeof(attacks) / sizeof(attacks[0]));
}
