/*
 * SPDX-License-Identifier: MIT
 *
 * Hostile suite, family "exhaustion": running dextd out of what it
 * shares between clients.
 *
 *  - 1,021 short-lived clients, each registering its own channel as a
 *    wake port (finding 3): dextd's fds and threads come back.
 *  - Sessions full of wake ports under a low RLIMIT_NOFILE (finding 6):
 *    over the fd budget, WAKE_REGISTER and new connections are answered
 *    with kIOReturnNoResources, never left hanging (decision 6).
 *  - 1,024 channels that never say HELLO, from one process (finding 7):
 *    others are still served; the idle ones are closed after the
 *    handshake timeout (decision 7; dextd --handshake-timeout 1).
 *  - Thousands of tiny regions (finding 9): the bus space one process
 *    may hold is capped, so another client still registers a region and
 *    gets a 4 KiB DMA buffer; the hog gets kIOReturnNoSpace (decision 9).
 *  - Regions, DMA buffers, wake ports and channels at their limits.
 *
 * The hogs run in child processes: the caps are per process, and the
 * parent must be "another client".
 */

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edu.h"
#include "hostile.h"
#include "hostile-wire.h"
#include "protocol/dext-selectors.h"

#define SELF_WAKE_CLIENTS   1021
#define SELF_WAKE_BATCH     32
#define BUDGET_NOFILE       256
#define BUDGET_SESSIONS     16
#define BUDGET_CHANNELS     300
#define IDLE_CHANNELS       1024
#define HANDSHAKE_TIMEOUT_S 1
#define TINY_REGIONS_MAX    20000
#define CHANNEL_HOGS        4
#define CHANNELS_PER_HOG    256
#define HOLD_MS             30000   /* a hog waits this long for release */

/* ------------------------------------------------------------------ */
/* Finding 3: 1,021 clients that leave their channel with dextd         */

static void self_wake_client(void *arg)
{
    RawChan *c = NULL;
    uint8_t accepted = 0;
    IOReturn st;

    (void)arg;
    st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true);
    if (st == kIOReturnSuccess) {
        accepted = raw_wake_register(c, c->fd, NULL) == kIOReturnSuccess;
    }
    hostile_child_send(&accepted, 1);
    /* The client is gone: only dextd may still hold its channel. */
    raw_close(c);
}

static void attack_self_wake_1021(void)
{
    HostileChild kids[SELF_WAKE_BATCH];
    unsigned started = 0, accepted = 0, answered = 0, i, n;
    unsigned lines = hostile_log_lines();

    while (started < SELF_WAKE_CLIENTS && !hostile_failed()) {
        n = SELF_WAKE_CLIENTS - started < SELF_WAKE_BATCH ?
            SELF_WAKE_CLIENTS - started : SELF_WAKE_BATCH;
        for (i = 0; i < n; i++) {
            if (!HCHECK(hostile_child_start(&kids[i], self_wake_client, NULL,
                                            NULL, 0), "fork: %s",
                        strerror(errno))) {
                n = i;
                break;
            }
        }
        for (i = 0; i < n; i++) {
            uint8_t ok = 0;

            if (hostile_child_read(&kids[i], &ok, 1, 2 * HOSTILE_ANSWER_MS)) {
                answered++;
                accepted += ok;
            }
            hostile_child_reap(&kids[i], HOSTILE_ANSWER_MS);
        }
        started += n;
    }
    HCHECK(accepted == 0, "%u of %u clients had their own channel taken as "
           "a wake port", accepted, answered);
    /*
     * Each process has its own log budget; the daemon-wide one must still
     * keep a thousand of them to a few bursts' worth of lines.
     */
    lines = hostile_log_lines() - lines;
    HCHECK(lines <= 4 * 10, "%u clients' refusals took %u log lines",
           started, lines);
    hostile_note("%u clients, %u own-channel wake ports accepted", started,
                 accepted);
}

/* ------------------------------------------------------------------ */
/* Finding 6: the fd budget                                             */

typedef struct BudgetReport {
    unsigned sessions;          /* sessions with all their ports */
    unsigned ports;
    IOReturn port_fail;         /* what stopped the registrations */
    unsigned channels;          /* more channels after HELLO */
    IOReturn channel_fail;      /* what stopped those */
    unsigned top_off;           /* ports taken to fill dextd's table */
    int dextd_fds;              /* dextd's open fds when done */
} BudgetReport;

/* One more wake port on @c; its peer stays open until the hog exits. */
static IOReturn add_port(RawChan *c)
{
    int peer;

    return raw_add_port(c, &peer);
}

/*
 * Fill dextd's fd table as a client can: sessions full of wake ports,
 * then bare channels, then -- peeking at /proc as any attacker could
 * find the edge by trial -- wake ports on a spare session until the
 * table is full, so that not even accept() has an fd left.  Channels
 * and sockets stay open (leaked on purpose) until the child exits.
 */
static void budget_hog(void *arg)
{
    BudgetReport r = { .port_fail = kIOReturnSuccess,
                       .channel_fail = kIOReturnSuccess };
    RawChan *spare = NULL;
    unsigned s, p;
    IOReturn st;

    (void)arg;
    for (s = 0; s < BUDGET_SESSIONS && r.port_fail == kIOReturnSuccess;
         s++) {
        RawChan *c = NULL;

        st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), false);
        if (st != kIOReturnSuccess) {
            r.port_fail = st;
            break;
        }
        for (p = 0; p < DEXT_WIRE_MAX_PORTS; p++) {
            st = add_port(c);
            if (st != kIOReturnSuccess) {
                r.port_fail = st;
                break;
            }
            r.ports++;
        }
        r.sessions += r.port_fail == kIOReturnSuccess;
    }
    raw_session(&spare, hostile_service(HOSTILE_EDU_BDF), false);
    for (s = 0; s < BUDGET_CHANNELS; s++) {
        RawChan *c = raw_connect();

        st = c != NULL ? raw_hello(c) : RAW_HUNG_UP;
        if (st != kIOReturnSuccess) {
            r.channel_fail = st;
            raw_close(c);
            break;
        }
        r.channels++;
    }
    while (spare != NULL &&
           harness_count_fds(hostile_dextd_pid()) < BUDGET_NOFILE &&
           add_port(spare) == kIOReturnSuccess) {
        r.top_off++;
    }
    r.dextd_fds = harness_count_fds(hostile_dextd_pid());
    hostile_child_send(&r, sizeof(r));
    hostile_child_wait_release(HOLD_MS);
}

static void attack_fd_budget(void)
{
    BudgetReport r;
    HostileChild hog;
    RawChan *c;
    IOReturn st;
    double t0;

    if (!HCHECK(hostile_child_start(&hog, budget_hog, NULL, NULL, 0),
                "fork: %s", strerror(errno))) {
        return;
    }
    if (HCHECK(hostile_child_read(&hog, &r, sizeof(r), 60000),
               "the hog did not report")) {
        hostile_note("hog: %u sessions, %u ports (stopped by 0x%x), %u more "
                     "channels (stopped by 0x%x), %u more ports; dextd at "
                     "%d fds of %u", r.sessions, r.ports, r.port_fail,
                     r.channels, r.channel_fail, r.top_off, r.dextd_fds,
                     BUDGET_NOFILE);
        HCHECK(r.port_fail == kIOReturnNoResources, "WAKE_REGISTER over the "
               "fd budget: want kIOReturnNoResources, got 0x%x",
               r.port_fail);
        HCHECK(r.channel_fail != kIOReturnSuccess &&
               raw_is_answer(r.channel_fail), "a channel over the fd budget: "
               "want an ERROR, got 0x%x (%s)", r.channel_fail,
               r.channel_fail == RAW_NO_ANSWER ? "HELLO never answered" :
               "no refusal");
        /* A newcomer from another process: answered either way. */
        t0 = hostile_now_ms();
        c = raw_connect();
        if (!HCHECK(c != NULL, "a new client cannot connect: %s",
                    strerror(errno))) {
            hostile_child_release(&hog);
            hostile_child_reap(&hog, HOSTILE_ANSWER_MS);
            return;
        }
        st = raw_hello(c);
        HCHECK(raw_is_answer(st),
               "a new client got no answer to HELLO within %u ms (0x%x)",
               HOSTILE_ANSWER_MS, st);
        hostile_note("newcomer: 0x%x after %.0f ms", st,
                     hostile_now_ms() - t0);
        raw_close(c);
    }
    hostile_child_release(&hog);
    hostile_child_reap(&hog, HOSTILE_ANSWER_MS);
}

/* ------------------------------------------------------------------ */
/* Finding 7: idle channels                                             */

typedef struct IdleReport {
    unsigned connected;         /* connect() worked */
    unsigned still_open;        /* not closed by dextd in time */
    double last_close_ms;       /* after the last connect */
} IdleReport;

static void idle_hog(void *arg)
{
    static int fds[IDLE_CHANNELS];
    static struct pollfd pf[IDLE_CHANNELS];
    IdleReport r = { 0 };
    double t0, end;
    unsigned i, open;
    char buf[DEXT_WIRE_MAX_MSG];

    (void)arg;
    for (i = 0; i < IDLE_CHANNELS; i++) {
        fds[i] = raw_socket();
        r.connected += fds[i] >= 0;
    }
    hostile_child_ready();
    /* Then every channel must be closed by dextd: refused or timed out. */
    t0 = hostile_now_ms();
    end = t0 + HANDSHAKE_TIMEOUT_S * 1000 + 3000;
    open = r.connected;
    while (open > 0 && hostile_now_ms() < end) {
        unsigned n = 0;

        for (i = 0; i < IDLE_CHANNELS; i++) {
            if (fds[i] >= 0) {
                pf[n].fd = fds[i];
                pf[n].events = POLLIN;
                pf[n].revents = 0;
                n++;
            }
        }
        if (poll(pf, n, 100) <= 0) {
            continue;
        }
        for (i = 0; i < n; i++) {
            ssize_t got;

            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            got = recv(pf[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (got <= 0 && !(got < 0 && errno == EAGAIN)) {
                unsigned j;

                for (j = 0; j < IDLE_CHANNELS; j++) {
                    if (fds[j] == pf[i].fd) {
                        close(fds[j]);
                        fds[j] = -1;
                    }
                }
                open--;
                r.last_close_ms = hostile_now_ms() - t0;
            }
        }
    }
    r.still_open = open;
    hostile_child_send(&r, sizeof(r));
}

static const char *const handshake_args[] = {
    "--handshake-timeout", "1", NULL,
};

static void attack_idle_1024(void)
{
    HostileChild hog;
    IdleReport r;
    RawChan *c = NULL;
    IOReturn st;

    if (!HCHECK(hostile_child_start(&hog, idle_hog, NULL, NULL, 0),
                "fork: %s", strerror(errno))) {
        return;
    }
    if (HCHECK(hostile_child_wait_ready(&hog, 60000),
               "the hog did not connect")) {
        /* While they sit there, another process opens a session. */
        st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), false);
        HCHECK(st == kIOReturnSuccess, "another client was not served "
               "while one process held %u idle channels: 0x%x",
               IDLE_CHANNELS, st);
        raw_close(c);
    }
    if (HCHECK(hostile_child_read(&hog, &r, sizeof(r), 30000),
               "the hog did not report")) {
        HCHECK(r.still_open == 0, "%u of %u idle channels still open %u s "
               "after the handshake timeout", r.still_open, r.connected, 3);
        hostile_note("%u idle channels connected, %u left open; last closed "
                     "%.0f ms after they were all there", r.connected,
                     r.still_open, r.last_close_ms);
    }
    hostile_child_reap(&hog, HOSTILE_ANSWER_MS);
}

/* ------------------------------------------------------------------ */
/* Finding 9: bus space                                                 */

typedef struct TinyReport {
    unsigned regions;
    IOReturn fail;
} TinyReport;

static uint8_t tiny[4096] __attribute__((aligned(4096)));

static void tiny_hog(void *arg)
{
    TinyReport r = { 0, kIOReturnSuccess };
    RawChan *c = NULL;
    IOReturn st;

    (void)arg;
    st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true);
    if (st == kIOReturnSuccess) {
        memset(tiny, 1, sizeof(tiny));
        r.regions = raw_register_many(c, 0x10000000ull, 64,
                                      (uint64_t)(uintptr_t)tiny, 64,
                                      TINY_REGIONS_MAX, &r.fail);
    } else {
        r.fail = st;
    }
    hostile_child_send(&r, sizeof(r));
    /* Hold them while the parent tries. */
    hostile_child_wait_release(HOLD_MS);
    raw_close(c);
}

static void attack_bus_space(void)
{
    static uint8_t mine[4096] __attribute__((aligned(4096)));
    HostileChild hog;
    TinyReport r;
    RawChan *c = NULL;
    uint64_t bus;
    IOReturn st;

    if (!HCHECK(hostile_child_start(&hog, tiny_hog, NULL, NULL, 0),
                "fork: %s", strerror(errno))) {
        return;
    }
    if (HCHECK(hostile_child_read(&hog, &r, sizeof(r), 60000),
               "the hog did not report")) {
        hostile_note("hog: %u 64-byte regions, then 0x%x", r.regions,
                     r.fail);
        HCHECK(r.fail == kIOReturnNoSpace, "the hog's refusal: want "
               "kIOReturnNoSpace, got 0x%x after %u regions", r.fail,
               r.regions);
        st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true);
        if (HCHECK(st == kIOReturnSuccess, "second client's session: 0x%x",
                   st)) {
            memset(mine, 2, sizeof(mine));
            st = raw_register(c, 0x1000, mine, sizeof(mine), &bus);
            HCHECK(st == kIOReturnSuccess, "second client's "
                   "RegisterDMARegion: 0x%x", st);
            st = raw_alloc_buffer(c, 4096, &bus);
            HCHECK(st == kIOReturnSuccess, "second client's 4 KiB "
                   "AllocateDMABuffer: 0x%x", st);
        }
        raw_close(c);
    }
    hostile_child_release(&hog);
    hostile_child_reap(&hog, HOSTILE_SETTLE_MS);
}

/* ------------------------------------------------------------------ */
/* Limits                                                               */

static void attack_regions_limit(void)
{
    RawChan *c = NULL;
    unsigned n;
    IOReturn st, fail;

    st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true);
    if (!HCHECK(st == kIOReturnSuccess, "session: 0x%x", st)) {
        return;
    }
    memset(tiny, 3, sizeof(tiny));
    n = raw_register_many(c, 0, 64, (uint64_t)(uintptr_t)tiny, 64,
                          DEXT_MAX_DMA_REGIONS, &fail);
    HCHECK(n == DEXT_MAX_DMA_REGIONS, "registered %u of %u regions (0x%x)",
           n, DEXT_MAX_DMA_REGIONS, fail);
    if (n == DEXT_MAX_DMA_REGIONS) {
        st = raw_register(c, 1ull << 40, tiny, 64, NULL);
        HCHECK(st == kIOReturnNoSpace, "region %u: want kIOReturnNoSpace, "
               "got 0x%x", n + 1, st);
        st = raw_register(c, 0, tiny, 64, NULL);
        HCHECK(st == kIOReturnStillOpen, "a key registered twice: 0x%x", st);
    }
    hostile_note("%u regions", n);
    /* All of them go with the session: the runner checks. */
    raw_close(c);
}

static void attack_dma_buffer_limits(void)
{
    static const struct {
        uint64_t size, align;
        const char *what;
    } bad[] = {
        { 0, 0, "size 0" },
        { DEXT_DMA_BUFFER_MAX + 1, 0, "1.5 GiB + 1" },
        { ~0ull, 0, "2^64-1 bytes" },
        { 4096, 3, "alignment 3" },
        { 4096, 1ull << 63, "alignment 2^63" },
        { DEXT_DMA_BUFFER_MAX, 0, "1.5 GiB on a 28-bit device" },
    };
    uint64_t in[2], out[6];
    RawChan *c = NULL;
    unsigned i;
    IOReturn st;

    st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true);
    if (!HCHECK(st == kIOReturnSuccess, "session: 0x%x", st)) {
        return;
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in[0] = bad[i].size;
        in[1] = bad[i].align;
        st = raw_call(c, kDextSelectorAllocateDMABuffer, in, 2, out, 6);
        HCHECK(st != kIOReturnSuccess && raw_is_answer(st),
               "AllocateDMABuffer of %s: 0x%x", bad[i].what, st);
    }
    /* Each allocation replaces the last: nothing may pile up. */
    for (i = 0; i < 100; i++) {
        st = raw_alloc_buffer(c, 65536, NULL);
        if (!HCHECK(st == kIOReturnSuccess, "64 KiB buffer #%u: 0x%x", i,
                    st)) {
            break;
        }
    }
    st = raw_call(c, kDextSelectorFreeDMABuffer, NULL, 0, NULL, 0);
    HCHECK(st == kIOReturnSuccess, "FreeDMABuffer: 0x%x", st);
    st = raw_call(c, kDextSelectorFreeDMABuffer, NULL, 0, NULL, 0);
    HCHECK(raw_is_answer(st), "second FreeDMABuffer: 0x%x", st);
    raw_close(c);
}

static void attack_wake_port_limit(void)
{
    uint32_t ports[DEXT_WIRE_MAX_PORTS];
    RawChan *c = NULL;
    unsigned i, ok = 0;
    int sp[2];
    IOReturn st;

    st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), false);
    if (!HCHECK(st == kIOReturnSuccess, "session: 0x%x", st)) {
        return;
    }
    for (i = 0; i <= DEXT_WIRE_MAX_PORTS; i++) {
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
            break;
        }
        st = raw_wake_register(c, sp[0], i < DEXT_WIRE_MAX_PORTS ?
                               &ports[i] : NULL);
        close(sp[0]);
        close(sp[1]);
        if (i < DEXT_WIRE_MAX_PORTS) {
            ok += st == kIOReturnSuccess;
        } else {
            HCHECK(st == kIOReturnNoSpace, "wake port %u: want "
                   "kIOReturnNoSpace, got 0x%x", i + 1, st);
        }
    }
    HCHECK(ok == DEXT_WIRE_MAX_PORTS, "%u of %u wake ports registered", ok,
           DEXT_WIRE_MAX_PORTS);
    if (ok > 0) {
        HCHECK(raw_wake_unregister(c, ports[0]) == kIOReturnSuccess,
               "unregistering a port");
        HCHECK(raw_wake_unregister(c, ports[0]) == kIOReturnNotFound,
               "unregistering it twice");
    }
    raw_close(c);
}

typedef struct ChannelReport {
    unsigned ok;
    unsigned refused;           /* an ERROR, then closed */
    unsigned silent;            /* no answer within the bound */
} ChannelReport;

static void channel_hog(void *arg)
{
    ChannelReport r = { 0 };
    unsigned i;

    (void)arg;
    for (i = 0; i < CHANNELS_PER_HOG; i++) {
        RawChan *c = raw_connect();
        IOReturn st = c != NULL ? raw_hello(c) : RAW_HUNG_UP;

        if (st == kIOReturnSuccess) {
            /* Held open until we exit. */
            r.ok++;
            continue;
        }
        if (st == RAW_NO_ANSWER) {
            r.silent++;
        } else {
            r.refused++;
        }
        raw_close(c);
    }
    hostile_child_send(&r, sizeof(r));
    hostile_child_wait_release(HOLD_MS);
}

static void attack_channel_limit(void)
{
    HostileChild hogs[CHANNEL_HOGS];
    ChannelReport r, sum = { 0 };
    RawChan *c;
    IOReturn st;
    int i, n = 0;

    for (i = 0; i < CHANNEL_HOGS; i++) {
        if (!HCHECK(hostile_child_start(&hogs[i], channel_hog, NULL, NULL, 0),
                    "fork: %s", strerror(errno))) {
            break;
        }
        n++;
    }
    for (i = 0; i < n; i++) {
        if (HCHECK(hostile_child_read(&hogs[i], &r, sizeof(r), 60000),
                   "hog %d did not report", i)) {
            sum.ok += r.ok;
            sum.refused += r.refused;
            sum.silent += r.silent;
        }
    }
    HCHECK(sum.silent == 0, "%u channels got no answer to HELLO", sum.silent);
    HCHECK(sum.ok + 2 <= 1024, "%u channels open at once, over the cap of "
           "1024", sum.ok + 2);
    /* At the cap a newcomer is told so. */
    c = raw_connect();
    st = c != NULL ? raw_hello(c) : RAW_HUNG_UP;
    HCHECK(st != RAW_NO_ANSWER, "a newcomer at the cap got no answer");
    raw_close(c);
    hostile_note("%u channels open, %u refused, %u unanswered", sum.ok,
                 sum.refused, sum.silent);
    for (i = 0; i < n; i++) {
        hostile_child_release(&hogs[i]);
    }
    for (i = 0; i < n; i++) {
        hostile_child_reap(&hogs[i], HOSTILE_ANSWER_MS);
    }
}

static const HostileAttack attacks[] = {
    { .name = "exhaustion/self-wake-1021", .finding = "F3",
      .run = attack_self_wake_1021 },
    { .name = "exhaustion/fd-budget", .finding = "F6",
      .run = attack_fd_budget, .nofile = BUDGET_NOFILE },
    { .name = "exhaustion/idle-1024", .finding = "F7",
      .run = attack_idle_1024, .args = handshake_args },
    { .name = "exhaustion/bus-space", .finding = "F9",
      .run = attack_bus_space },
    { .name = "exhaustion/regions-limit", .run = attack_regions_limit,
      .devices = "edu,dma_mask=0xffffffffff+ivshmem" },
    { .name = "exhaustion/dma-buffer-limits", .run = attack_dma_buffer_limits },
    { .name = "exhaustion/wake-port-limit", .run = attack_wake_port_limit },
    { .name = "exhaustion/channel-limit", .run = attack_channel_limit },
};

int main(int argc, char **argv)
{
    return hostile_main(argc, argv, attacks,
                        sizeof(attacks) / sizeof(attacks[0]));
}
