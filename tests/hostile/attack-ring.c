/*
 * SPDX-License-Identifier: MIT
 *
 * Hostile family "ring": a client that set up a polled call ring
 * (protocol/dext-ring.h) and then abuses the shared memory and the
 * doorbell: lengths past the slot, messages that are not CALLs, a
 * payload that changes while dextd reads it, flags flipped at random,
 * a flood of doorbells, replies never read, death mid-call, more rings
 * than a session may have.  Each time dextd must survive, drop at most
 * that ring's channel, and keep serving the bystander; the runner checks
 * that its fds, threads and memory come back.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edu.h"
#include "hostile.h"
#include "hostile-wire.h"
#include "protocol/dext-ring.h"
#include "protocol/dext-selectors.h"
#include "support/sanitizers.h"

/* Rings a session may have: dextd's DEXTD_SESSION_RINGS. */
#define SESSION_RINGS 4

/* A session's opener and one ring attached to it. */
typedef struct Ring {
    RawChan *opener;
    RawChan *c;                 /* the ring's channel: doorbell, hang-up */
    DextRing *r;
    uint32_t seq;
} Ring;

/* Make @g->c, a channel of a session, a ring (RING, checks, mmap). */
static IOReturn ring_make(Ring *g, uint32_t spin_us)
{
    struct stat st;
    IOReturn ret;
    void *p;
    int fd = -1;

    ret = raw_ring(g->c, spin_us, &fd);
    if (ret != kIOReturnSuccess) {
        HCHECK(fd < 0, "a refused RING came with an fd");
        if (fd >= 0) {
            close(fd);
        }
        return ret;
    }
    /* dextd's promise: the pages cannot be taken away from it. */
    HCHECK(fcntl(fd, F_GET_SEALS) ==
           (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), "ring seals 0x%x",
           fcntl(fd, F_GET_SEALS));
    HCHECK(ftruncate(fd, 4096) < 0 && errno == EPERM,
           "the ring could be truncated");
    HCHECK(fstat(fd, &st) == 0 && (size_t)st.st_size == DEXT_RING_BYTES,
           "ring size");
    p = mmap(NULL, DEXT_RING_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
             0);
    close(fd);
    if (!HCHECK(p != MAP_FAILED, "mmap of the ring: %s", strerror(errno))) {
        return RAW_GARBLED;
    }
    g->r = p;
    g->seq = 0;
    return kIOReturnSuccess;
}

/* Attach a channel to @opener's session (@token) and make it a ring. */
static IOReturn ring_attach(Ring *g, const uint8_t *token, uint32_t spin_us)
{
    IOReturn ret;

    g->c = raw_connect_hello();
    if (g->c == NULL) {
        return RAW_HUNG_UP;
    }
    ret = raw_attach(g->c, token);
    return ret == kIOReturnSuccess ? ring_make(g, spin_us) : ret;
}

/* A session on edu with one ring (@spin_us); false on failure. */
static bool ring_open(Ring *g, uint32_t spin_us)
{
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];
    IOReturn ret;

    memset(g, 0, sizeof(*g));
    g->opener = raw_connect_hello();
    if (!HCHECK(g->opener != NULL, "connect")) {
        return false;
    }
    ret = raw_open(g->opener, hostile_service(HOSTILE_EDU_BDF), token);
    if (ret == kIOReturnSuccess) {
        ret = ring_attach(g, token, spin_us);
    }
    return HCHECK(ret == kIOReturnSuccess, "ring setup: 0x%x", ret);
}

static void ring_close(Ring *g)
{
    if (g->r != NULL) {
        munmap(g->r, DEXT_RING_BYTES);
    }
    raw_close(g->c);
    raw_close(g->opener);
    memset(g, 0, sizeof(*g));
}

/*
 * Publish the message in @msg (@len bytes, its seq field overwritten) as
 * the next request; ring dextd if it sleeps and we still have the
 * ring's socket (@g->c).
 */
static void ring_post(Ring *g, uint8_t *msg, size_t len)
{
    dext_wire_put_u64(msg + 16, ++g->seq);
    dext_ring_publish(&g->r->req, msg, len);
    if (g->c != NULL &&
        __atomic_load_n(&g->r->server_sleeping, __ATOMIC_SEQ_CST)) {
        raw_send(g->c, "", 1, NULL, 0);
    }
}

/* Wait (polling, bounded) for the reply to the last request. */
static bool ring_answered(Ring *g, unsigned ms)
{
    double end = hostile_now_ms() + ms;

    while (dext_ring_seq(&g->r->rep) != g->seq) {
        if (hostile_now_ms() > end) {
            return false;
        }
        usleep(50);
    }
    return true;
}

/* A CALL of @sel through the ring; its status, or a RAW_* outcome. */
static IOReturn ring_call(Ring *g, uint32_t sel, const uint64_t *in,
                          uint32_t nin, uint64_t *out, uint32_t nout)
{
    DextWireCall m = { .selector = sel, .scalar_in_cnt = nin,
                       .scalar_out_cap = nout };
    DextWireCallReply rep;
    DextWireHeader h;
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    size_t len;
    int n;

    memcpy(m.scalar_in, in, nin * sizeof(in[0]));
    n = dext_wire_encode_call(buf, sizeof(buf), 1, 0, false, &m);
    ring_post(g, buf, (size_t)n);
    if (!ring_answered(g, HOSTILE_ANSWER_MS)) {
        return RAW_NO_ANSWER;
    }
    len = dext_ring_copy_out(&g->r->rep, buf);
    if (dext_wire_decode_header(buf, len, &h) != 0) {
        return RAW_GARBLED;
    }
    if (h.type == DEXT_WIRE_ERROR) {
        IOReturn st = RAW_GARBLED;

        dext_wire_decode_status_only(buf + DEXT_WIRE_HEADER_SIZE, h.length,
                                     &st);
        return st;
    }
    if (h.type != DEXT_WIRE_CALL || h.seq != g->seq ||
        dext_wire_decode_call_reply(buf + DEXT_WIRE_HEADER_SIZE, h.length,
                                    &rep) != 0 ||
        rep.scalar_out_cnt > nout) {
        return RAW_GARBLED;
    }
    memcpy(out, rep.scalar_out, rep.scalar_out_cnt * sizeof(out[0]));
    return rep.status;
}

/* edu's ID register through the ring. */
static IOReturn ring_edu_id(Ring *g, uint64_t *id)
{
    uint64_t in[3] = { EDU_MEM_IDX, EDU_REG_ID, 4 };

    *id = 0;
    return ring_call(g, kDextSelectorMMIORead, in, 3, id, 1);
}

/* The ring works; the channel is dropped after @what. */
static void expect_ring_dropped(Ring *g, const char *what)
{
    HCHECK(raw_dropped(g->c, HOSTILE_ANSWER_MS, NULL, NULL),
           "%s: the ring's channel was not dropped", what);
    /* The opener's channel, and so the session, is untouched. */
    HCHECK(raw_claim(g->opener) == kIOReturnSuccess,
           "%s: the session went with the ring", what);
}

static void attack_setup(void)
{
    Ring g, more[SESSION_RINGS + 1];
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];
    RawChan *c;
    uint64_t id;
    IOReturn st;
    int fd, i;

    /* No session, no ring. */
    c = raw_connect_hello();
    if (HCHECK(c != NULL, "connect")) {
        st = raw_ring(c, 100, &fd);
        HCHECK(st == kIOReturnNotAttached && fd < 0,
               "RING without a session: 0x%x", st);
        raw_close(c);
    }
    if (!ring_open(&g, 100)) {
        return;
    }
    st = ring_edu_id(&g, &id);
    HCHECK(st == kIOReturnSuccess && (uint32_t)id == EDU_ID_VALUE,
           "MMIO read through the ring: 0x%x, id 0x%llx", st,
           (unsigned long long)id);
    /* A session's rings are bounded. */
    raw_close(g.opener);
    g.opener = raw_connect_hello();
    if (HCHECK(g.opener != NULL, "connect") &&
        raw_open(g.opener, hostile_service(HOSTILE_EDU_BDF), token) ==
        kIOReturnSuccess) {
        for (i = 0; i <= SESSION_RINGS; i++) {
            memset(&more[i], 0, sizeof(more[i]));
            st = ring_attach(&more[i], token, 1);
            HCHECK(i < SESSION_RINGS ? st == kIOReturnSuccess :
                   st == kIOReturnNoResources, "ring %d of a session: 0x%x",
                   i + 1, st);
        }
        for (i = 0; i <= SESSION_RINGS; i++) {
            more[i].opener = NULL;
            ring_close(&more[i]);
        }
    }
    ring_close(&g);
}

static void attack_bad_length(void)
{
    /* Past a message's bounds, and in bounds but not the CALL's. */
    static const uint32_t lens[] = { DEXT_WIRE_MAX_PAYLOAD + 1, 0x7fffffff,
                                     0xffffffff, 0, 3,
                                     DEXT_WIRE_MAX_PAYLOAD };
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    unsigned i;
    Ring g;
    int n;

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        DextWireCall m = { .selector = kDextSelectorGetIdentity,
                           .scalar_out_cap = 6 };

        if (!ring_open(&g, 50)) {
            return;
        }
        n = dext_wire_encode_call(buf, sizeof(buf), 1, 0, false, &m);
        dext_wire_put_u32(buf + 12, lens[i]);
        ring_post(&g, buf, (size_t)n);
        expect_ring_dropped(&g, "a request length that is not the CALL's");
        ring_close(&g);
    }
}

static void attack_not_a_call(void)
{
    static const uint16_t types[] = { DEXT_WIRE_HELLO, DEXT_WIRE_OPEN,
                                      DEXT_WIRE_ATTACH, DEXT_WIRE_CALL_ASYNC,
                                      DEXT_WIRE_MAP, DEXT_WIRE_STATUS,
                                      DEXT_WIRE_RING, DEXT_WIRE_ERROR, 0 };
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    unsigned i;
    Ring g;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int n = raw_encode_any(buf, sizeof(buf), types[i], 1);

        if (!ring_open(&g, 50)) {
            return;
        }
        ring_post(&g, buf, (size_t)n);
        expect_ring_dropped(&g, dext_wire_type_name(types[i]));
        ring_close(&g);
    }
    /* A malformed CALL: its codec error is answered in the ring. */
    if (!ring_open(&g, 50)) {
        return;
    }
    memset(buf, 0xa5, sizeof(buf));
    ring_post(&g, buf, 200);
    expect_ring_dropped(&g, "garbage");
    ring_close(&g);
}

/* Calls that name memory need a sender the kernel vouches for. */
static void attack_dma_naming(void)
{
    static uint8_t page[4096] __attribute__((aligned(4096)));
    uint64_t in[4] = { 0x100000, (uintptr_t)page, sizeof(page), 0 };
    uint64_t out[4], id;
    IOReturn st;
    Ring g;

    if (!ring_open(&g, 50)) {
        return;
    }
    HCHECK(raw_claim(g.opener) == kIOReturnSuccess, "claim");
    st = ring_call(&g, kDextSelectorRegisterDMARegion, in, 3, out, 4);
    HCHECK(st == kIOReturnNotPermitted, "RegisterDMARegion in the ring: "
           "0x%x", st);
    st = ring_call(&g, kDextSelectorRegisterDMARegionAt, in, 4, out, 4);
    HCHECK(st == kIOReturnNotPermitted, "RegisterDMARegionAt in the ring: "
           "0x%x", st);
    st = ring_call(&g, kDextSelectorProbeDMARegion, in, 2, out, 1);
    HCHECK(st == kIOReturnNotPermitted, "ProbeDMARegion in the ring: 0x%x",
           st);
    /* Refused, not dropped: the ring still serves. */
    st = ring_edu_id(&g, &id);
    HCHECK(st == kIOReturnSuccess, "the ring after the refusals: 0x%x", st);
    ring_close(&g);
}

typedef struct Scribbler {
    Ring *g;
    bool lengths;               /* the length and dextd's words too */
    bool stop;
} Scribbler;

/* Rewrite the request's payload and dextd's flag without pause. */
static void *scribble(void *opaque)
{
    Scribbler *s = opaque;
    DextRing *r = s->g->r;
    uint32_t x = 12345;

    while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
        x = x * 1103515245u + 12345u;
        r->req.rest[x % 40] ^= (uint8_t)(x >> 16);
        __atomic_store_n(&r->server_sleeping, x & 1, __ATOMIC_RELAXED);
        if (s->lengths && (x & 0xf00) == 0) {
            dext_wire_put_u32(r->req.head + 12, x);
            __atomic_store_n(&r->rep.seq, x, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

/* Calls while a thread scribbles; how many were answered. */
static unsigned scribbled_calls(bool lengths)
{
    Scribbler s = { .lengths = lengths };
    pthread_t t;
    uint64_t id;
    unsigned i, served = 0;
    Ring g;

    if (!ring_open(&g, 200)) {
        return 0;
    }
    s.g = &g;
    if (!HCHECK(pthread_create(&t, NULL, scribble, &s) == 0, "thread")) {
        ring_close(&g);
        return 0;
    }
    for (i = 0; i < 2000; i++) {
        /* Any answer will do, garbage too; only silence ends it. */
        if (ring_edu_id(&g, &id) == RAW_NO_ANSWER) {
            break;
        }
        served++;
    }
    __atomic_store_n(&s.stop, true, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
    ring_close(&g);
    return served;
}

/* The request changes while dextd copies and decodes it. */
static void attack_scribble(void)
{
    unsigned a, b;

    if (DEXT_UNDER_TSAN) {
        /* Racing our own writes to the ring is the point: TSan stops it. */
        hostile_skip("the scribbler races with this process on purpose");
        return;
    }
    a = scribbled_calls(false);
    b = scribbled_calls(true);

    hostile_note("%u calls answered under a payload scribbler, %u with "
                 "lengths scribbled too", a, b);
}

typedef struct Ringer {
    int fd;
    bool stop;
    unsigned long sent;
} Ringer;

static void *ring_bell(void *opaque)
{
    Ringer *b = opaque;
    char junk[512] = { 0 };

    while (!__atomic_load_n(&b->stop, __ATOMIC_RELAXED)) {
        if (send(b->fd, junk, (b->sent & 1) ? 1 : sizeof(junk),
                 MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
            b->sent++;
        } else {
            sched_yield();
        }
    }
    return NULL;
}

/* Doorbells without end, from two threads, while calls go on. */
static void attack_doorbell_flood(void)
{
    Ringer b[2] = { { 0 }, { 0 } };
    pthread_t t[2];
    double end;
    uint64_t id;
    unsigned calls = 0;
    IOReturn st = kIOReturnSuccess;
    Ring g;
    int i;

    if (!ring_open(&g, 20)) {
        return;
    }
    for (i = 0; i < 2; i++) {
        b[i].fd = g.c->fd;
        pthread_create(&t[i], NULL, ring_bell, &b[i]);
    }
    end = hostile_now_ms() + 1000;
    while (hostile_now_ms() < end && st == kIOReturnSuccess) {
        st = ring_edu_id(&g, &id);
        calls++;
        usleep(200);
    }
    for (i = 0; i < 2; i++) {
        __atomic_store_n(&b[i].stop, true, __ATOMIC_RELAXED);
        pthread_join(t[i], NULL);
    }
    HCHECK(st == kIOReturnSuccess, "a ring call under the flood: 0x%x", st);
    hostile_note("%u ring calls among %lu doorbells", calls,
                 b[0].sent + b[1].sent);
    ring_close(&g);
}

/*
 * Asleep for ever and never reading: dextd's doorbells fill the socket,
 * and its sends must not block on it.
 */
static void attack_never_reads(void)
{
    uint64_t id;
    IOReturn st = kIOReturnSuccess;
    unsigned i;
    Ring g;

    if (!ring_open(&g, 1)) {
        return;
    }
    __atomic_store_n(&g.r->client_sleeping, 1, __ATOMIC_SEQ_CST);
    for (i = 0; i < 20000 && st == kIOReturnSuccess; i++) {
        st = ring_edu_id(&g, &id);
    }
    HCHECK(st == kIOReturnSuccess, "call %u through a ring whose client "
           "never reads: 0x%x", i, st);
    ring_close(&g);
}

/* A child posts a call and dies; its session must go. */
static void die_mid_call(void *arg)
{
    Ring g;
    uint64_t in[3] = { EDU_MEM_IDX, EDU_REG_ID, 4 };
    DextWireCall m = { .selector = kDextSelectorMMIORead, .scalar_in_cnt = 3,
                       .scalar_out_cap = 1 };
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    int i, n;

    (void)arg;
    if (!ring_open(&g, 1000)) {
        return;
    }
    memcpy(m.scalar_in, in, sizeof(in));
    for (i = 0; i < 1000; i++) {
        n = dext_wire_encode_call(buf, sizeof(buf), 1, 0, false, &m);
        ring_post(&g, buf, (size_t)n);
    }
    hostile_child_ready();
    hostile_child_wait_release(HOSTILE_ANSWER_MS);
    kill(getpid(), SIGKILL);
}

static void attack_dies_mid_call(void)
{
    HostileChild kid;
    int i;

    for (i = 0; i < 4; i++) {
        if (!HCHECK(hostile_child_start(&kid, die_mid_call, NULL, NULL, 0),
                    "fork")) {
            return;
        }
        HCHECK(hostile_child_wait_ready(&kid, HOSTILE_ANSWER_MS),
               "the child did not set up its ring");
        hostile_child_release(&kid);
        hostile_child_reap(&kid, HOSTILE_ANSWER_MS);
    }
}

/* dextd's CPU time so far (all threads), in ms; -1 if unreadable. */
static long dextd_cpu_ms(void)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)hostile_dextd_pid());
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    /* Fields 14 and 15, counted after the ")" that ends the name. */
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
                            "%*u %*u %lu %lu", &ut, &st) != 2) {
        return -1;
    }
    return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

/*
 * A call now and then on more rings than the machine has CPUs, each ring
 * asking for the longest spin: after every call dextd would poll each
 * ring for 10 ms, so a client paying almost nothing would have dextd
 * spin on every CPU.  dextd lets only the CPUs less one poll at once (at
 * least one), and the other rings sleep on their sockets: every call is
 * still answered, and dextd's CPU stays within that many CPUs.
 */
static void attack_spin_amplifier(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned max = cpus > 2 ? (unsigned)cpus - 1 : 1;
    unsigned nrings = max + 3, i, rounds = 0, late = 0;
    Ring *g = calloc(nrings, sizeof(*g));
    double start, window;
    long cpu0, cpu1;
    uint64_t id;

    if (!HCHECK(g != NULL, "calloc")) {
        return;
    }
    for (i = 0; i < nrings; i++) {
        if (!ring_open(&g[i], 10000)) {
            nrings = i;
            break;
        }
    }
    cpu0 = dextd_cpu_ms();
    start = hostile_now_ms();
    while (hostile_now_ms() - start < 600) {
        for (i = 0; i < nrings; i++) {
            late += ring_edu_id(&g[i], &id) != kIOReturnSuccess;
        }
        rounds++;
        usleep(8000);
    }
    window = hostile_now_ms() - start;
    cpu1 = dextd_cpu_ms();
    HCHECK(late == 0, "%u of %u ring calls failed", late, rounds * nrings);
    if (cpu0 >= 0 && cpu1 >= 0) {
        hostile_note("%u rings, dextd used %.2f CPUs over %.0f ms (at most "
                     "%u may poll)", nrings, (cpu1 - cpu0) / window, window,
                     max);
        HCHECK((cpu1 - cpu0) <= (max + 0.5) * window,
               "dextd used %.2f CPUs for %u sparse rings (at most %u may "
               "poll)", (cpu1 - cpu0) / window, nrings, max);
    }
    for (i = 0; i < nrings; i++) {
        ring_close(&g[i]);
    }
    free(g);
}

/*
 * A client that hangs up the ring's socket and goes on publishing calls
 * so fast that dextd never gets to sleep (where poll() would see the
 * hang-up): dextd must still notice within 256 calls (poll-ring.c)
 * and end the channel, not serve a closed channel for as long as the
 * stream lasts.
 */
#define RING_HUP_CHECK 256
#define RING_STREAM_MAX 4000

static void attack_hangup_while_streaming(void)
{
    uint64_t in[3] = { EDU_MEM_IDX, EDU_REG_ID, 4 };
    DextWireCall m = { .selector = kDextSelectorMMIORead,
                       .scalar_in_cnt = 3, .scalar_out_cap = 1 };
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    unsigned i, before = 0, after = 0;
    Ring g;
    int n;

    /* The longest spin: dextd polls the ring for a second after a call. */
    if (!ring_open(&g, 1000000)) {
        return;
    }
    memcpy(m.scalar_in, in, sizeof(in));
    n = dext_wire_encode_call(buf, sizeof(buf), 1, 0, false, &m);
    for (i = 0; i < 50; i++) {
        ring_post(&g, buf, (size_t)n);
        before += ring_answered(&g, HOSTILE_ANSWER_MS);
    }
    HCHECK(before == 50, "%u of 50 ring calls answered before the hang-up",
           before);
    /* Hang up; the ring's pages stay mapped here. */
    raw_close(g.c);
    g.c = NULL;
    for (i = 0; i < RING_STREAM_MAX; i++) {
        ring_post(&g, buf, (size_t)n);
        if (!ring_answered(&g, 300)) {
            break;
        }
        after++;
    }
    hostile_note("%u calls answered after the hang-up", after);
    HCHECK(after <= RING_HUP_CHECK, "dextd served %u calls of a hung-up "
           "ring (at most %u expected)", after, RING_HUP_CHECK);
    /* The opener's channel, and so the session, is untouched. */
    HCHECK(raw_claim(g.opener) == kIOReturnSuccess,
           "the session went with the ring");
    ring_close(&g);
}

/* dextd's fds for the fd-budget attack: as the exhaustion family's. */
#define RING_BUDGET_NOFILE 256
#define RING_BUDGET_SESSIONS 16

/*
 * Fill dextd's fd budget with wake ports on sessions of our own, then ask
 * a channel of another session for a ring: refused (kIOReturnNoResources)
 * as often as asked, with the channel still serving calls on its socket
 * and the session's ring count untouched -- once the fds come back, the
 * session gets all DEXTD_SESSION_RINGS rings and not one more.
 */
static void attack_fd_budget(void)
{
    static int peers[RING_BUDGET_SESSIONS * DEXT_WIRE_MAX_PORTS + 64];
    RawChan *hogs[RING_BUDGET_SESSIONS] = { NULL };
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];
    Ring g, more[SESSION_RINGS];
    unsigned nhogs = 0, npeers = 0, ports, i;
    IOReturn st = kIOReturnSuccess;
    double end;
    uint64_t id;

    memset(&g, 0, sizeof(g));
    memset(more, 0, sizeof(more));
    g.opener = raw_connect_hello();
    if (!HCHECK(g.opener != NULL, "connect") ||
        !HCHECK(raw_open(g.opener, hostile_service(HOSTILE_EDU_BDF),
                         token) == kIOReturnSuccess, "OPEN")) {
        ring_close(&g);
        return;
    }
    g.c = raw_connect_hello();
    if (!HCHECK(g.c != NULL && raw_attach(g.c, token) == kIOReturnSuccess,
                "ATTACH")) {
        ring_close(&g);
        return;
    }
    /* Sessions full of ports while sessions can be had, then the opener. */
    while (st == kIOReturnSuccess && nhogs < RING_BUDGET_SESSIONS &&
           raw_session(&hogs[nhogs], hostile_service(HOSTILE_EDU_BDF),
                       false) == kIOReturnSuccess) {
        for (ports = 0; ports < DEXT_WIRE_MAX_PORTS; ports++) {
            st = raw_add_port(hogs[nhogs], &peers[npeers]);
            if (st != kIOReturnSuccess) {
                break;
            }
            npeers++;
        }
        nhogs++;
    }
    for (ports = 0; st == kIOReturnSuccess && ports < DEXT_WIRE_MAX_PORTS;
         ports++) {
        st = raw_add_port(g.opener, &peers[npeers]);
        npeers += st == kIOReturnSuccess;
    }
    hostile_note("%u sessions and %u ports filled the budget", nhogs,
                 npeers);
    if (!HCHECK(st == kIOReturnNoResources, "the last port: want "
                "kIOReturnNoResources, got 0x%x", st)) {
        goto out;
    }
    for (i = 0; i <= SESSION_RINGS; i++) {
        st = ring_make(&g, 100);
        HCHECK(st == kIOReturnNoResources, "RING %u with no fd left: want "
               "kIOReturnNoResources, got 0x%x", i + 1, st);
        if (st == kIOReturnSuccess) {
            goto out;
        }
    }
    /* Refused, not dropped: the channel still serves on its socket. */
    st = raw_mmio_read(g.c, EDU_MEM_IDX, EDU_REG_ID, 4, &id);
    HCHECK(st == kIOReturnSuccess && (uint32_t)id == EDU_ID_VALUE,
           "a call after the refusals: 0x%x", st);

    /* The fds come back as the hogs' sessions end. */
    for (i = 0; i < nhogs; i++) {
        raw_close(hogs[i]);
        hogs[i] = NULL;
    }
    end = hostile_now_ms() + HOSTILE_SETTLE_MS;
    do {
        st = ring_make(&g, 100);
    } while (st == kIOReturnNoResources && hostile_now_ms() < end &&
             usleep(20000) == 0);
    if (!HCHECK(st == kIOReturnSuccess, "RING once fds are back: 0x%x",
                st)) {
        goto out;
    }
    st = ring_edu_id(&g, &id);
    HCHECK(st == kIOReturnSuccess && (uint32_t)id == EDU_ID_VALUE,
           "MMIO read through the ring: 0x%x", st);
    /* The refusals took none of the session's rings. */
    for (i = 0; i < SESSION_RINGS; i++) {
        st = ring_attach(&more[i], token, 1);
        HCHECK(i + 1 < SESSION_RINGS ? st == kIOReturnSuccess :
               st == kIOReturnNoResources, "ring %u of the session after "
               "the refusals: 0x%x", i + 2, st);
    }
out:
    for (i = 0; i < SESSION_RINGS; i++) {
        ring_close(&more[i]);
    }
    for (i = 0; i < nhogs; i++) {
        raw_close(hogs[i]);
    }
    for (i = 0; i < npeers; i++) {
        close(peers[i]);
    }
    ring_close(&g);
}

static const HostileAttack attacks[] = {
    { .name = "ring/setup-and-limit", .run = attack_setup },
    { .name = "ring/bad-length", .run = attack_bad_length },
    { .name = "ring/not-a-call", .run = attack_not_a_call },
    { .name = "ring/dma-naming", .run = attack_dma_naming },
    { .name = "ring/scribble", .run = attack_scribble },
    { .name = "ring/doorbell-flood", .run = attack_doorbell_flood },
    { .name = "ring/never-reads", .run = attack_never_reads },
    { .name = "ring/dies-mid-call", .run = attack_dies_mid_call },
    { .name = "ring/spin-amplifier", .run = attack_spin_amplifier },
    { .name = "ring/hangup-while-streaming",
      .run = attack_hangup_while_streaming },
    { .name = "ring/fd-budget", .run = attack_fd_budget,
      .nofile = RING_BUDGET_NOFILE },
};

int main(int argc, char **argv)
{
    return hostile_main(argc, argv, attacks,
                        sizeof(attacks) / sizeof(attacks[0]));
}
