/*
 * SPDX-License-Identifier: MIT
 *
 * Interrupts: apple_dext_setup_interrupts(), _set_irq_mask(),
 * _read_pending_irqs(), _drain_pending_irqs(), _map_irq_page(), and
 * notification by callback (_interrupt_notify_create()) and by fd
 * (_interrupt_notify_create_fd(), _get_fd()), with _rearm() and
 * _destroy(), driven by edu's MSI.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "harness.h"
#include "edu.h"
#include "api-util.h"

#define ROUNDS 50

static const uint64_t all_on[4] = { 1, 0, 0, 0 };
static const uint64_t all_off[4] = { 0, 0, 0, 0 };

/*
 * Make edu send its MSI: an interrupt status bit, then acknowledge it.
 * Returns once the dext has the message (at once for our edu; a real
 * one's is waited for), so what follows sees it delivered or dropped.
 */
static void raise_irq(io_connect_t c)
{
    api_raise_msi(c, 0x1000);
}

/* Pending bits from CheckInterrupt (one round trip, read-and-clear). */
static uint64_t read_pending(io_connect_t c)
{
    uint64_t p[4] = { ~0ull, ~0ull, ~0ull, ~0ull };

    if (!CHECK_KR(apple_dext_read_pending_irqs(c, p), kIOReturnSuccess)) {
        return ~0ull;
    }
    CHECK_EQ(p[1] | p[2] | p[3], 0);
    return p[0];
}

/* Pending bits from the shared page (no round trip, read-and-clear). */
static uint64_t drain_pending(io_connect_t c)
{
    uint64_t p[4] = { ~0ull, ~0ull, ~0ull, ~0ull };

    if (!CHECK_KR(apple_dext_drain_pending_irqs(c, p), kIOReturnSuccess)) {
        return ~0ull;
    }
    CHECK_EQ(p[1] | p[2] | p[3], 0);
    return p[0];
}

/*
 * Wait (bounded) until vector 0 has been pending, reading and clearing.
 * For interrupts the device sends on its own thread: like a posted MSI
 * write, the message may land after the status register shows done.
 */
static bool wait_pending(io_connect_t c)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;

    while (!harness_expired(&d)) {
        uint64_t p[4] = { 0 };

        if (!CHECK_KR(apple_dext_read_pending_irqs(c, p), kIOReturnSuccess)) {
            return false;
        }
        if (p[0] & 1) {
            return CHECK_EQ(p[0], 1);
        }
        harness_backoff(&round);
    }
    return CHECK_MSG(false, "no interrupt within %u ms", HARNESS_WAIT_MS);
}

/* poll() @fd for POLLIN; @ms 0 only looks. */
static bool fd_readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r;

    do {
        r = poll(&p, 1, ms);
    } while (r < 0 && errno == EINTR);
    return r == 1 && (p.revents & POLLIN);
}

/* ------------------------------------------------------------------ */

static void test_before_setup(io_connect_t c)
{
    volatile uint64_t *page = NULL;
    uint64_t p[4];

    harness_section("interrupt calls before setup");
    CHECK_KR(apple_dext_set_irq_mask(c, all_on), kIOReturnNotReady);
    CHECK_KR(apple_dext_read_pending_irqs(c, p), kIOReturnNotReady);
    CHECK_KR(apple_dext_drain_pending_irqs(c, p), kIOReturnNotReady);
    CHECK_KR(apple_dext_map_irq_page(c, &page), kIOReturnNotReady);
    CHECK(apple_dext_interrupt_notify_create_fd(c) == NULL);
}

static void test_setup(io_connect_t c)
{
    AppleDextDeviceStatus ds;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    uint32_t n = 0;

    harness_section("setup_interrupts");
    CHECK_KR(apple_dext_setup_interrupts(c, &n), kIOReturnSuccess);
    CHECK_EQ(n, 1);
    n = 77;
    CHECK_KR(apple_dext_setup_interrupts(c, &n), kIOReturnStillOpen);
    CHECK_KR(apple_dext_setup_interrupts(c, NULL), kIOReturnStillOpen);
    CHECK_KR(apple_dext_get_device_status(c, &ds), kIOReturnSuccess);
    CHECK_EQ(ds.irq_vectors, 1);
    if (harness_status(&st)) {
        CHECK_EQ(st.irq_sessions, 1);
    }
    /* Nothing pending at first, by either path. */
    CHECK_EQ(read_pending(c), 0);
    CHECK_EQ(drain_pending(c), 0);
    CHECK_KR(apple_dext_set_irq_mask(c, NULL), kIOReturnBadArgument);
    CHECK_KR(apple_dext_read_pending_irqs(c, NULL), kIOReturnBadArgument);
    CHECK_KR(apple_dext_drain_pending_irqs(c, NULL), kIOReturnBadArgument);
    CHECK_KR(apple_dext_map_irq_page(c, NULL), kIOReturnBadArgument);
}

static void test_pending(io_connect_t c)
{
    AppleDextStatus before, after;
    volatile uint64_t *page = NULL, *again = NULL;

    harness_section("raise -> pending, read-and-clear");
    raise_irq(c);
    CHECK_EQ(read_pending(c), 1);
    CHECK_EQ(read_pending(c), 0);
    raise_irq(c);
    CHECK_EQ(drain_pending(c), 1);
    CHECK_EQ(drain_pending(c), 0);
    CHECK_EQ(read_pending(c), 0);

    harness_section("the interrupt state page");
    if (!CHECK_KR(apple_dext_map_irq_page(c, &page), kIOReturnSuccess) ||
        !CHECK(page != NULL)) {
        return;
    }
    CHECK_KR(apple_dext_map_irq_page(c, &again), kIOReturnSuccess);
    CHECK(again == page);
    /* enabled[0] at 0x20: the one vector. */
    CHECK_EQ(page[4], 1);
    CHECK_EQ(page[5] | page[6] | page[7], 0);
    CHECK_EQ(page[0], 0);
    raise_irq(c);
    /* The dext sets the bit in the shared page... */
    CHECK_EQ(page[0], 1);
    /* ...and CheckInterrupt clears it there. */
    CHECK_EQ(read_pending(c), 1);
    CHECK_EQ(page[0], 0);

    harness_section("pending bits coalesce");
    if (!harness_status(&before)) {
        return;
    }
    raise_irq(c);
    raise_irq(c);
    raise_irq(c);
    CHECK_EQ(drain_pending(c), 1);
    CHECK_EQ(drain_pending(c), 0);
    if (harness_status(&after)) {
        CHECK_EQ(after.irqs_raised, before.irqs_raised + 3);
        CHECK_EQ(after.irqs_dropped, before.irqs_dropped);
    }

    harness_section("a masked vector is dropped, not latched");
    CHECK_KR(apple_dext_set_irq_mask(c, all_off), kIOReturnSuccess);
    CHECK_EQ(page[4], 0);
    if (!harness_status(&before)) {
        return;
    }
    raise_irq(c);
    raise_irq(c);
    CHECK_EQ(page[0], 0);
    CHECK_EQ(read_pending(c), 0);
    CHECK_EQ(drain_pending(c), 0);
    if (harness_status(&after)) {
        CHECK_EQ(after.irqs_raised, before.irqs_raised + 2);
        CHECK_EQ(after.irqs_dropped, before.irqs_dropped + 2);
    }
    /* Unmasking does not bring the dropped ones back... */
    CHECK_KR(apple_dext_set_irq_mask(c, all_on), kIOReturnSuccess);
    CHECK_EQ(page[4], 1);
    CHECK_EQ(read_pending(c), 0);
    /* ...but later ones arrive. */
    raise_irq(c);
    CHECK_EQ(read_pending(c), 1);
    /* The client may write the enabled words in the page directly. */
    page[4] = 0;
    raise_irq(c);
    CHECK_EQ(read_pending(c), 0);
    page[4] = 1;
    raise_irq(c);
    CHECK_EQ(read_pending(c), 1);
    /* Bits past the device's vectors change nothing for vector 0. */
    {
        const uint64_t wide[4] = { ~0ull, ~0ull, ~0ull, ~0ull };

        CHECK_KR(apple_dext_set_irq_mask(c, wide), kIOReturnSuccess);
        raise_irq(c);
        CHECK_EQ(read_pending(c), 1);
        CHECK_KR(apple_dext_set_irq_mask(c, all_on), kIOReturnSuccess);
    }
}

/* edu's own interrupt sources: factorial done and DMA done. */
static void test_device_sources(io_connect_t c)
{
    uint32_t result;

    harness_section("factorial completion interrupt");
    edu_write32(c, EDU_REG_STATUS, EDU_STATUS_IRQFACT);
    if (edu_factorial(c, 6, &result)) {
        CHECK_EQ(result, 720);
        CHECK_EQ(edu_read32(c, EDU_REG_IRQ_STATUS) & EDU_IRQ_FACT,
                 EDU_IRQ_FACT);
        wait_pending(c);
    }
    edu_write32(c, EDU_REG_IRQ_ACK, EDU_IRQ_FACT);
    CHECK_EQ(edu_read32(c, EDU_REG_IRQ_STATUS), 0);
    edu_write32(c, EDU_REG_STATUS, 0);
    if (edu_factorial(c, 4, &result)) {
        CHECK_EQ(result, 24);
        CHECK_EQ(edu_read32(c, EDU_REG_IRQ_STATUS), 0);
        CHECK_EQ(read_pending(c), 0);
    }

    harness_section("DMA completion interrupt");
    {
        uint8_t *mem = api_dma_alloc(4096);
        uint64_t bus = 0;

        if (CHECK(mem != MAP_FAILED) &&
            CHECK_KR(apple_dext_register_dma(c, 0x10000,
                                             (uint64_t)(uintptr_t)mem,
                                             4096, &bus, NULL),
                     kIOReturnSuccess)) {
            if (edu_dma(c, bus, EDU_DMA_BUF_ADDR, 64, EDU_DMA_IRQ)) {
                CHECK_EQ(edu_read32(c, EDU_REG_IRQ_STATUS) & EDU_IRQ_DMA,
                         EDU_IRQ_DMA);
                wait_pending(c);
            }
            edu_write32(c, EDU_REG_IRQ_ACK, EDU_IRQ_DMA);
            CHECK_KR(apple_dext_unregister_dma(c, 0x10000), kIOReturnSuccess);
        }
        if (mem != MAP_FAILED) {
            munmap(mem, 4096);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Callback notification                                                */

typedef struct Counter {
    atomic_uint calls;
    io_connect_t conn;
    /* Atomic: the handler thread reads what the creator stores after
     * create returns, ordered only through the device otherwise. */
    AppleDextInterruptNotify *_Atomic notify;
    /* Handler modes. */
    bool drain_and_rearm;
    bool destroy_self;
    atomic_uint rearm_failures;
    atomic_ullong drained;
} Counter;

static void count_handler(void *opaque)
{
    Counter *k = opaque;

    if (k->drain_and_rearm) {
        uint64_t p[4] = { 0 };

        if (apple_dext_drain_pending_irqs(k->conn, p) == kIOReturnSuccess) {
            atomic_fetch_or(&k->drained, p[0]);
        }
        if (apple_dext_interrupt_notify_rearm(k->notify) != kIOReturnSuccess) {
            atomic_fetch_add(&k->rearm_failures, 1);
        }
    }
    if (k->destroy_self) {
        apple_dext_interrupt_notify_destroy(k->notify);
    }
    /* Last: once the count moves the test may go on. */
    atomic_fetch_add(&k->calls, 1);
}

/* Wait until @k has seen @n calls; false after HARNESS_WAIT_MS. */
static bool wait_calls(Counter *k, unsigned n)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;

    while (atomic_load(&k->calls) < n) {
        if (harness_expired(&d)) {
            return CHECK_MSG(false, "handler ran %u times, expected %u "
                             "within %u ms", atomic_load(&k->calls), n,
                             HARNESS_WAIT_MS);
        }
        harness_backoff(&round);
    }
    return CHECK_EQ(atomic_load(&k->calls), n);
}

static void test_notify_callback(io_connect_t c)
{
    Counter k = { .conn = c };
    unsigned i;

    harness_section("notify by callback: %d rounds", ROUNDS);
    drain_pending(c);
    k.notify = apple_dext_interrupt_notify_create(c, count_handler, &k);
    if (!CHECK(k.notify != NULL)) {
        return;
    }
    CHECK_EQ(apple_dext_interrupt_notify_get_fd(k.notify), -1);
    for (i = 1; i <= ROUNDS; i++) {
        raise_irq(c);
        if (!wait_calls(&k, i)) {
            break;
        }
        if (!CHECK_EQ(drain_pending(c), 1)) {
            break;
        }
        CHECK_KR(apple_dext_interrupt_notify_rearm(k.notify), kIOReturnSuccess);
    }

    harness_section("an interrupt between drain and rearm is not lost");
    raise_irq(c);
    if (wait_calls(&k, i)) {
        CHECK_EQ(drain_pending(c), 1);
        raise_irq(c);               /* after the drain, before the rearm */
        CHECK_KR(apple_dext_interrupt_notify_rearm(k.notify),
                 kIOReturnSuccess);
        if (wait_calls(&k, i + 1)) {
            CHECK_EQ(drain_pending(c), 1);
        }
        CHECK_KR(apple_dext_interrupt_notify_rearm(k.notify),
                 kIOReturnSuccess);
    }
    apple_dext_interrupt_notify_destroy(k.notify);

    harness_section("handler that drains and rearms itself");
    memset(&k, 0, sizeof(k));
    k.conn = c;
    k.drain_and_rearm = true;
    /* Nothing is pending at create, so the handler cannot run before
     * k.notify is set. */
    drain_pending(c);
    k.notify = apple_dext_interrupt_notify_create(c, count_handler, &k);
    if (!CHECK(k.notify != NULL)) {
        return;
    }
    for (i = 1; i <= ROUNDS; i++) {
        raise_irq(c);
        if (!wait_calls(&k, i)) {
            break;
        }
    }
    CHECK_EQ(atomic_load(&k.drained), 1);
    CHECK_EQ(atomic_load(&k.rearm_failures), 0);
    apple_dext_interrupt_notify_destroy(k.notify);

    harness_section("destroy from inside the handler");
    memset(&k, 0, sizeof(k));
    k.conn = c;
    k.destroy_self = true;
    drain_pending(c);
    k.notify = apple_dext_interrupt_notify_create(c, count_handler, &k);
    if (CHECK(k.notify != NULL)) {
        raise_irq(c);
        wait_calls(&k, 1);
        CHECK_EQ(drain_pending(c), 1);
    }
    /* Later notifications on the same connection still work. */
    memset(&k, 0, sizeof(k));
    k.conn = c;
    k.notify = apple_dext_interrupt_notify_create(c, count_handler, &k);
    if (CHECK(k.notify != NULL)) {
        raise_irq(c);
        wait_calls(&k, 1);
        CHECK_EQ(drain_pending(c), 1);
        apple_dext_interrupt_notify_destroy(k.notify);
    }

    harness_section("pending at create: completes at once");
    memset(&k, 0, sizeof(k));
    k.conn = c;
    raise_irq(c);
    k.notify = apple_dext_interrupt_notify_create(c, count_handler, &k);
    if (CHECK(k.notify != NULL)) {
        wait_calls(&k, 1);
        CHECK_EQ(drain_pending(c), 1);
        /* Destroy while armed with nothing pending: no handler runs. */
        CHECK_KR(apple_dext_interrupt_notify_rearm(k.notify),
                 kIOReturnSuccess);
        apple_dext_interrupt_notify_destroy(k.notify);
        raise_irq(c);
        CHECK_EQ(drain_pending(c), 1);
        CHECK_EQ(atomic_load(&k.calls), 1);
    }
}

/* A handler that stays inside until told to leave (bounded). */
typedef struct Blocker {
    atomic_bool entered;
    atomic_bool release;
    atomic_bool exited;
    atomic_bool calling_destroy;
    bool exited_when_destroy_returned;
    AppleDextInterruptNotify *notify;
} Blocker;

static void blocking_handler(void *opaque)
{
    Blocker *b = opaque;
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;

    atomic_store(&b->entered, true);
    while (!atomic_load(&b->release) && !harness_expired(&d)) {
        harness_backoff(&round);
    }
    atomic_store(&b->exited, true);
}

static void *destroy_thread(void *opaque)
{
    Blocker *b = opaque;

    atomic_store(&b->calling_destroy, true);
    apple_dext_interrupt_notify_destroy(b->notify);
    b->exited_when_destroy_returned = atomic_load(&b->exited);
    return NULL;
}

/* Wait until the dext counts @n sessions; false after HARNESS_WAIT_MS. */
static bool wait_sessions(uint32_t n)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };

    while (harness_status(&st) && st.sessions != n) {
        if (harness_expired(&d)) {
            return CHECK_EQ(st.sessions, n);
        }
        harness_backoff(&round);
    }
    return true;
}

static void test_notify_lifetime(io_connect_t c)
{
    AppleDextInterruptNotify *fdn;
    Blocker b;
    pthread_t t;
    unsigned round = 0;
    HarnessDeadline d;
    Counter k;
    io_connect_t other;

    harness_section("destroy waits for a running handler");
    memset(&b, 0, sizeof(b));
    drain_pending(c);
    b.notify = apple_dext_interrupt_notify_create(c, blocking_handler, &b);
    if (!CHECK(b.notify != NULL)) {
        return;
    }
    raise_irq(c);
    d = harness_deadline(HARNESS_WAIT_MS);
    while (!atomic_load(&b.entered) && !harness_expired(&d)) {
        harness_backoff(&round);
    }
    if (!CHECK(atomic_load(&b.entered))) {
        atomic_store(&b.release, true);
        apple_dext_interrupt_notify_destroy(b.notify);
        return;
    }
    if (!CHECK_EQ(pthread_create(&t, NULL, destroy_thread, &b), 0)) {
        atomic_store(&b.release, true);
        apple_dext_interrupt_notify_destroy(b.notify);
        return;
    }
    /* Give destroy a chance to be inside before the handler may leave;
     * if it is not yet, the check below passes trivially, never falsely. */
    round = 0;
    while (!atomic_load(&b.calling_destroy)) {
        harness_backoff(&round);
    }
    for (round = 0; round < 80; ) {
        harness_backoff(&round);
    }
    atomic_store(&b.release, true);
    pthread_join(t, NULL);
    CHECK(b.exited_when_destroy_returned);
    CHECK_EQ(drain_pending(c), 1);

    harness_section("disconnect stops wake-ups");
    other = harness_connect_edu();
    if (other == IO_OBJECT_NULL ||
        !CHECK_KR(apple_dext_claim(other), kIOReturnSuccess) ||
        !CHECK_KR(apple_dext_setup_interrupts(other, NULL),
                  kIOReturnSuccess)) {
        apple_dext_disconnect(other);
        return;
    }
    memset(&k, 0, sizeof(k));
    k.conn = other;
    k.notify = apple_dext_interrupt_notify_create(other, count_handler, &k);
    fdn = apple_dext_interrupt_notify_create_fd(other);
    CHECK(k.notify != NULL);
    CHECK(fdn != NULL);
    apple_dext_disconnect(other);
    /* A daemon closes the session on its own time: wait for that. */
    wait_sessions(1);
    raise_irq(c);
    CHECK_EQ(drain_pending(c), 1);
    CHECK_MSG(atomic_load(&k.calls) == 0, "handler ran %u times after "
              "disconnect", atomic_load(&k.calls));
    if (fdn != NULL) {
        CHECK_MSG(!fd_readable(apple_dext_interrupt_notify_get_fd(fdn), 0),
                  "notify fd readable after disconnect");
    }
    /* Destroy after the connection went: still required, still safe. */
    apple_dext_interrupt_notify_destroy(k.notify);
    apple_dext_interrupt_notify_destroy(fdn);
}

/* ------------------------------------------------------------------ */
/* fd notification                                                      */

static void test_notify_fd(io_connect_t c)
{
    AppleDextInterruptNotify *n;
    int fd, i;

    harness_section("notify by fd: %d rounds", ROUNDS);
    drain_pending(c);
    n = apple_dext_interrupt_notify_create_fd(c);
    if (!CHECK(n != NULL)) {
        return;
    }
    fd = apple_dext_interrupt_notify_get_fd(n);
    if (!CHECK(fd >= 0)) {
        apple_dext_interrupt_notify_destroy(n);
        return;
    }
    CHECK(!fd_readable(fd, 0));
    for (i = 0; i < ROUNDS; i++) {
        raise_irq(c);
        if (!CHECK_MSG(fd_readable(fd, HARNESS_WAIT_MS),
                       "round %d: fd not readable within %u ms", i,
                       HARNESS_WAIT_MS)) {
            break;
        }
        /* Readiness stays until the rearm, however often one polls. */
        CHECK(fd_readable(fd, 0));
        if (!CHECK_EQ(drain_pending(c), 1)) {
            break;
        }
        CHECK_KR(apple_dext_interrupt_notify_rearm(n), kIOReturnSuccess);
        if (!CHECK_MSG(!fd_readable(fd, 0),
                       "round %d: fd readable after rearm, nothing pending",
                       i)) {
            break;
        }
    }

    harness_section("fd: an interrupt between drain and rearm is not lost");
    raise_irq(c);
    if (CHECK(fd_readable(fd, HARNESS_WAIT_MS))) {
        CHECK_EQ(drain_pending(c), 1);
        raise_irq(c);
        CHECK_KR(apple_dext_interrupt_notify_rearm(n), kIOReturnSuccess);
        CHECK(fd_readable(fd, HARNESS_WAIT_MS));
        CHECK_EQ(drain_pending(c), 1);
        CHECK_KR(apple_dext_interrupt_notify_rearm(n), kIOReturnSuccess);
        CHECK(!fd_readable(fd, 0));
    }

    harness_section("fd: a masked vector does not wake");
    CHECK_KR(apple_dext_set_irq_mask(c, all_off), kIOReturnSuccess);
    raise_irq(c);
    /* The dext has taken the message when raise_irq() returns; a wake
     * would already be queued. */
    CHECK_EQ(read_pending(c), 0);
    CHECK(!fd_readable(fd, 0));
    CHECK_KR(apple_dext_set_irq_mask(c, all_on), kIOReturnSuccess);
    raise_irq(c);
    CHECK(fd_readable(fd, HARNESS_WAIT_MS));
    CHECK_EQ(drain_pending(c), 1);
    apple_dext_interrupt_notify_destroy(n);
}

static void test_notify_args(io_connect_t c)
{
    AppleDextInterruptNotify *n;
    io_connect_t stale;
    Counter k = { .conn = c };

    harness_section("notify argument errors");
    apple_dext_interrupt_notify_destroy(NULL);
    CHECK_KR(apple_dext_interrupt_notify_rearm(NULL), kIOReturnBadArgument);
    CHECK_EQ(apple_dext_interrupt_notify_get_fd(NULL), -1);
    CHECK(apple_dext_interrupt_notify_create(c, NULL, NULL) == NULL);
    CHECK(apple_dext_interrupt_notify_create(IO_OBJECT_NULL, count_handler,
                                             &k) == NULL);
    CHECK(apple_dext_interrupt_notify_create_fd(IO_OBJECT_NULL) == NULL);
    stale = harness_connect_edu();
    apple_dext_disconnect(stale);
    CHECK(apple_dext_interrupt_notify_create(stale, count_handler, &k) ==
          NULL);
    CHECK(apple_dext_interrupt_notify_create_fd(stale) == NULL);
    CHECK_EQ(atomic_load(&k.calls), 0);

    harness_section("a notification outlives its connection");
    stale = harness_connect_edu();
    if (stale == IO_OBJECT_NULL ||
        !CHECK_KR(apple_dext_claim(stale), kIOReturnSuccess) ||
        !CHECK_KR(apple_dext_setup_interrupts(stale, NULL),
                  kIOReturnSuccess)) {
        apple_dext_disconnect(stale);
        return;
    }
    n = apple_dext_interrupt_notify_create_fd(stale);
    if (CHECK(n != NULL)) {
        apple_dext_disconnect(stale);
        CHECK(apple_dext_interrupt_notify_rearm(n) != kIOReturnSuccess);
        CHECK(apple_dext_interrupt_notify_get_fd(n) >= 0);
        apple_dext_interrupt_notify_destroy(n);
    } else {
        apple_dext_disconnect(stale);
    }
}

int main(int argc, char **argv)
{
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    io_connect_t c;
    uint32_t n = 0;

    harness_init(argc, argv, NULL);
    c = harness_connect_edu();
    if (c == IO_OBJECT_NULL) {
        return harness_finish();
    }
    CHECK_KR(apple_dext_setup_interrupts(c, &n), kIOReturnNotOpen);
    test_before_setup(c);
    if (!CHECK_KR(apple_dext_claim(c), kIOReturnSuccess)) {
        return harness_finish();
    }
    /* Claimed but not set up: still not ready. */
    test_before_setup(c);
    test_setup(c);
    test_pending(c);
    test_device_sources(c);
    test_notify_callback(c);
    test_notify_lifetime(c);
    test_notify_fd(c);
    test_notify_args(c);
    apple_dext_disconnect(c);
    if (harness_status(&st)) {
        CHECK_EQ(st.irq_sessions, 0);
        CHECK_EQ(st.sessions, 0);
    }
    return harness_finish();
}
