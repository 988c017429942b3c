/*
 * SPDX-License-Identifier: MIT
 *
 * Hostile suite, family "faults": clients that die, stop or stall at
 * the worst moment.
 *
 *  - kill -9 in loops while clients are in the middle of calls: during
 *    edu DMA into and out of their regions and probes of them, and while
 *    arming, raising and taking interrupts.
 *  - SIGSTOP of a claimer holding regions, an interrupt setup and an
 *    armed wait: others claim, DMA, take interrupts and reset the device
 *    meanwhile, each call answered within HOSTILE_ANSWER_MS.
 *  - A claimer with an armed wait that floods requests and never reads
 *    a reply, while interrupts keep coming.
 *
 * Afterwards the runner requires every session, claim, region, buffer,
 * fd and thread of the dead clients gone.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edu.h"
#include "hostile.h"
#include "hostile-wire.h"
#include "ivshmem.h"
#include "protocol/dext-selectors.h"

#define PAGE        4096
#define KILL_ROUNDS 12
#define KILL_KIDS   3
#define STOP_MS     1000

/*
 * A claimed edu session with one interrupt armed on a wake port; the
 * port's other end in *@port_peer, its ID in *@port.
 */
static RawChan *armed_session(int *port_peer, uint32_t *port)
{
    DextWireCall call = { .selector = kDextSelectorWaitInterrupt };
    RawChan *c = NULL;
    uint64_t nvec;
    int sp[2];

    *port_peer = -1;
    if (raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true) !=
        kIOReturnSuccess) {
        return NULL;
    }
    if (raw_setup_interrupts(c, &nvec) != kIOReturnSuccess ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
        raw_close(c);
        return NULL;
    }
    *port = 0;
    if (raw_wake_register(c, sp[0], port) == kIOReturnSuccess) {
        call.port = *port;
        raw_call_full(c, true, &call, NULL);
    }
    close(sp[0]);
    *port_peer = sp[1];
    return c;
}

/* ------------------------------------------------------------------ */
/* kill -9 mid-call                                                     */

static void dma_forever(void *arg)
{
    uint8_t *mem = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    RawChan *c = NULL;
    uint64_t bus = 0, v;

    (void)arg;
    if (mem == MAP_FAILED ||
        raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true) !=
        kIOReturnSuccess ||
        raw_register(c, 0x1000, mem, 2 * PAGE, &bus) != kIOReturnSuccess) {
        return;
    }
    raw_alloc_buffer(c, 2 * PAGE, NULL);
    hostile_child_ready();
    for (;;) {
        raw_edu_dma(c, bus, EDU_DMA_BUF_ADDR, PAGE, false, true);
        raw_edu_dma(c, EDU_DMA_BUF_ADDR, bus + PAGE, PAGE, true, true);
        raw_probe(c, 0x1000, 8, &v);
        raw_register(c, 0x100000, mem, PAGE, NULL);
        raw_unregister(c, 0x100000);
    }
}

static void irq_forever(void *arg)
{
    DextWireCall call = { .selector = kDextSelectorWaitInterrupt };
    uint64_t pending[4];
    RawChan *c;
    char buf[64];
    uint32_t port;
    int peer;

    (void)arg;
    c = armed_session(&peer, &port);
    if (c == NULL) {
        return;
    }
    hostile_child_ready();
    for (;;) {
        struct pollfd p = { .fd = peer, .events = POLLIN };

        raw_edu_raise_irq(c);
        if (poll(&p, 1, 50) == 1) {
            recv(peer, buf, sizeof(buf), MSG_DONTWAIT);
        }
        raw_call(c, kDextSelectorCheckInterrupt, NULL, 0, pending, 4);
        raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_IRQ_ACK, 4, 0xffffffff);
        call.port = port;
        raw_call_full(c, true, &call, NULL);
    }
}

/* Rounds of children running @fn, each killed at a random moment. */
static void kill_loop(void (*fn)(void *))
{
    unsigned seed = 12345, killed = 0, r, i;
    HostileChild kids[KILL_KIDS];

    for (r = 0; r < KILL_ROUNDS && hostile_dextd_alive(); r++) {
        unsigned started = 0;

        for (i = 0; i < KILL_KIDS; i++) {
            if (!HCHECK(hostile_child_start(&kids[i], fn, NULL, NULL, 0),
                        "fork: %s", strerror(errno))) {
                break;
            }
            started++;
        }
        for (i = 0; i < started; i++) {
            HCHECK(hostile_child_wait_ready(&kids[i], HOSTILE_ANSWER_MS * 2),
                   "child %u of round %u not ready", i, r);
        }
        hostile_sleep_ms(1 + rand_r(&seed) % 30);
        for (i = 0; i < started; i++) {
            kill(kids[i].pid, SIGKILL);
            hostile_child_reap(&kids[i], HOSTILE_ANSWER_MS);
            killed++;
        }
    }
    hostile_note("%u clients killed mid-call", killed);
}

static void attack_kill9_dma(void)
{
    kill_loop(dma_forever);
}

static void attack_kill9_irq(void)
{
    kill_loop(irq_forever);
}

/* ------------------------------------------------------------------ */
/* SIGSTOP of a claimer                                                 */

static void stopped_claimer(void *arg)
{
    static uint8_t mem[4 * PAGE] __attribute__((aligned(PAGE)));
    RawChan *c;
    uint64_t v;
    uint32_t port;
    int peer, i;

    (void)arg;
    c = armed_session(&peer, &port);
    if (c == NULL) {
        return;
    }
    for (i = 0; i < 4; i++) {
        raw_register(c, 0x1000 * (i + 1), mem + i * PAGE, PAGE, NULL);
    }
    raw_alloc_buffer(c, PAGE, NULL);
    hostile_child_ready();
    for (;;) {
        raw_probe(c, 0x1000, 0, &v);
    }
}

/* Work another client does while the claimer is stopped. */
static void others_work(void)
{
    static uint8_t a[PAGE] __attribute__((aligned(PAGE)));
    static uint8_t b[PAGE] __attribute__((aligned(PAGE)));
    RawChan *c, *iv = NULL;
    uint64_t bus_a = 0, bus_b = 0, v;
    char buf[64];
    uint32_t port;
    int peer, i;
    IOReturn st;
    double t0 = hostile_now_ms();

    c = armed_session(&peer, &port);
    if (!HCHECK(c != NULL, "another claimer's session, interrupts and "
                "armed wait")) {
        return;
    }
    memset(a, 0x77, sizeof(a));
    memset(b, 0, sizeof(b));
    st = raw_register(c, 0x1000, a, PAGE, &bus_a);
    HCHECK(st == kIOReturnSuccess, "register: 0x%x", st);
    st = raw_register(c, 0x2000, b, PAGE, &bus_b);
    HCHECK(st == kIOReturnSuccess, "register: 0x%x", st);
    st = raw_alloc_buffer(c, PAGE, NULL);
    HCHECK(st == kIOReturnSuccess, "AllocateDMABuffer: 0x%x", st);
    st = raw_edu_dma(c, bus_a, EDU_DMA_BUF_ADDR, PAGE, false, true);
    if (st == kIOReturnSuccess) {
        st = raw_edu_dma(c, EDU_DMA_BUF_ADDR, bus_b, PAGE, true, true);
    }
    HCHECK(st == kIOReturnSuccess && b[0] == 0x77 && b[PAGE - 1] == 0x77,
           "DMA round trip while a claimer is stopped: 0x%x", st);
    for (i = 0; i < 20; i++) {
        struct pollfd p = { .fd = peer, .events = POLLIN };
        DextWireCall call = { .selector = kDextSelectorWaitInterrupt,
                              .port = port };

        st = raw_edu_raise_irq(c);
        if (!HCHECK(st == kIOReturnSuccess, "IRQ raise: 0x%x", st)) {
            break;
        }
        HCHECK(poll(&p, 1, HOSTILE_ANSWER_MS) == 1, "interrupt %d not "
               "delivered while a claimer is stopped", i);
        recv(peer, buf, sizeof(buf), MSG_DONTWAIT);
        raw_call(c, kDextSelectorCheckInterrupt, NULL, 0, NULL, 0);
        raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_IRQ_ACK, 4, 0xffffffff);
        raw_call_full(c, true, &call, NULL);
    }
    st = raw_session(&iv, hostile_service(HOSTILE_IVSHMEM_BDF), true);
    if (HCHECK(st == kIOReturnSuccess, "ivshmem session: 0x%x", st)) {
        st = raw_mmio_read(iv, IVSHMEM_MEM_SHM, 0, 8, &v);
        HCHECK(st == kIOReturnSuccess, "ivshmem BAR2 read: 0x%x", st);
    }
    st = raw_call(c, kDextSelectorResetDevice, NULL, 0, NULL, 0);
    HCHECK(st == kIOReturnSuccess, "ResetDevice while a claimer is "
           "stopped: 0x%x", st);
    close(peer);
    raw_close(iv);
    raw_close(c);
    hostile_note("others' work took %.0f ms", hostile_now_ms() - t0);
}

static void attack_sigstop_claimer(void)
{
    HostileChild kid;

    if (!HCHECK(hostile_child_start(&kid, stopped_claimer, NULL, NULL, 0),
                "fork: %s", strerror(errno))) {
        return;
    }
    if (HCHECK(hostile_child_wait_ready(&kid, HOSTILE_ANSWER_MS * 2),
               "the claimer did not get ready")) {
        kill(kid.pid, SIGSTOP);
        others_work();
        /* Stay stopped a while longer with the bystander running. */
        hostile_sleep_ms(STOP_MS);
        kill(kid.pid, SIGCONT);
    }
    kill(kid.pid, SIGKILL);
    hostile_child_reap(&kid, HOSTILE_ANSWER_MS);
}

/* ------------------------------------------------------------------ */
/* A claimer that never reads                                           */

static void deaf_claimer(void *arg)
{
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    DextWireCall call;
    RawChan *c;
    unsigned sent = 0;
    uint32_t port;
    int peer, n;

    (void)arg;
    c = armed_session(&peer, &port);
    if (c == NULL) {
        return;
    }
    memset(&call, 0, sizeof(call));
    call.selector = kDextSelectorMMIORead;
    call.scalar_in_cnt = 3;
    call.scalar_out_cap = 1;
    call.scalar_in[0] = EDU_MEM_IDX;
    call.scalar_in[1] = EDU_REG_ID;
    call.scalar_in[2] = 4;
    n = dext_wire_encode_call(buf, sizeof(buf), 1, 1000, false, &call);
    while (sent < 100000 &&
           send(c->fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) == n) {
        sent++;
    }
    hostile_child_send(&sent, sizeof(sent));
    /* Never read anything again. */
    for (;;) {
        pause();
    }
}

static void attack_deaf_claimer(void)
{
    DextWireStatusReply sr;
    HostileChild kid;
    RawChan *c = NULL, *other;
    unsigned sent = 0;
    IOReturn st;
    int i;

    if (!HCHECK(hostile_child_start(&kid, deaf_claimer, NULL, NULL, 0),
                "fork: %s", strerror(errno))) {
        return;
    }
    if (HCHECK(hostile_child_read(&kid, &sent, sizeof(sent), 10000),
               "the deaf claimer did not report")) {
        st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true);
        HCHECK(st == kIOReturnSuccess, "another claimer: 0x%x", st);
        for (i = 0; c != NULL && i < 50; i++) {
            st = raw_edu_raise_irq(c);
            if (!HCHECK(st == kIOReturnSuccess, "IRQ raise %d: 0x%x", i,
                        st)) {
                break;
            }
            raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_IRQ_ACK, 4, 0xffffffff);
        }
        other = raw_connect_hello();
        st = other != NULL ? raw_status(other, &sr) : RAW_HUNG_UP;
        HCHECK(st == kIOReturnSuccess && raw_is_answer(st),
               "a newcomer's STATUS while a claimer never reads: 0x%x", st);
        raw_close(other);
        raw_close(c);
        hostile_note("%u requests left unread", sent);
    }
    kill(kid.pid, SIGKILL);
    hostile_child_reap(&kid, HOSTILE_ANSWER_MS);
}

static const HostileAttack attacks[] = {
    { .name = "faults/kill9-during-dma", .run = attack_kill9_dma },
    { .name = "faults/kill9-during-irq", .run = attack_kill9_irq },
    { .name = "faults/sigstop-claimer", .run = attack_sigstop_claimer,
      .flags = HOSTILE_DISTURBS_DEVICE },
    { .name = "faults/deaf-claimer", .run = attack_deaf_claimer },
};

int main(int argc, char **argv)
{
    return hostile_main(argc, argv, attacks,
                        sizeof(attacks) / sizeof(attacks[0]));
}
