/*
 * SPDX-License-Identifier: MIT
 *
 * One session's interrupt calls from several threads while the device
 * raises interrupts, in rounds on fresh sessions until race_seconds()
 * have passed.  Each round:
 *
 *  - four threads call apple_dext_setup_interrupts() at once while a
 *    fifth makes edu raise its MSI: exactly one call succeeds, the
 *    others answer kIOReturnStillOpen, and all see one vector;
 *  - then, while edu keeps raising: one thread flips the mask with
 *    apple_dext_set_irq_mask() (the enabled word of the state page must
 *    show each mask once the call returns: no other thread sets it); one
 *    reads pending bits with CheckInterrupt and by draining the page (only
 *    vector 0's bit may ever be set); one creates, rearms and destroys
 *    callback notifications whose handler drains and rearms itself; one
 *    does the same with fd notifications, draining and rearming when the
 *    fd is readable.  Every call must succeed.
 *  - afterwards, with the device quiet: every thread mapped the same
 *    state page; a masked vector is dropped; an unmasked one reaches a
 *    new notification within HARNESS_WAIT_MS.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "edu.h"
#include "race.h"

#define WORKERS  4
/* Hammer time of one round; rounds run until race_seconds(). */
#define ROUND_MS 300
/* Notification rearms per create, before destroy. */
#define REARMS   4

enum { ROLE_MASK, ROLE_CHECK, ROLE_NOTIFY, ROLE_NOTIFY_FD };

static const uint64_t all_on[4] = { 1, 0, 0, 0 };
static const uint64_t all_off[4] = { 0, 0, 0, 0 };

typedef struct Worker {
    RaceTally t;
    unsigned role;
    kern_return_t setup_kr;
    uint32_t nvec;
    volatile uint64_t *page;
} Worker;

/* What a callback notification's handler does and counts. */
typedef struct Handler {
    AppleDextInterruptNotify *_Atomic notify;
    atomic_uint calls;
    atomic_uint errors;
    atomic_ullong bad_bits;
} Handler;

static io_connect_t conn;
/* The workers and the raiser start together; the workers then wait for
 * every setup call to have answered. */
static pthread_barrier_t start_barrier;
static pthread_barrier_t setup_barrier;
static atomic_bool stop;
static atomic_bool raiser_stop;
/* Notifications that arrived during the hammering, for the log. */
static atomic_ulong handler_runs;
static atomic_ulong fd_wakes;

/* Make edu send its MSI: raise an interrupt status bit, acknowledge it. */
static bool raise_irq(void)
{
    return apple_dext_mmio_write(conn, EDU_MEM_IDX, EDU_REG_IRQ_RAISE, 4,
                                 0x1000) == kIOReturnSuccess &&
           apple_dext_mmio_write(conn, EDU_MEM_IDX, EDU_REG_IRQ_ACK, 4,
                                 0x1000) == kIOReturnSuccess;
}

/* Only vector 0 exists: any other bit pending is wrong. */
static bool pending_ok(const uint64_t p[4])
{
    return (p[0] & ~1ull) == 0 && (p[1] | p[2] | p[3]) == 0;
}

static void *raiser_main(void *opaque)
{
    RaceTally *t = opaque;

    pthread_barrier_wait(&start_barrier);
    while (!atomic_load(&raiser_stop)) {
        t->calls += 2;
        if (!raise_irq()) {
            race_note(t, "raising edu's interrupt failed");
        }
    }
    return NULL;
}

static void handler_fn(void *opaque)
{
    Handler *h = opaque;
    AppleDextInterruptNotify *n = atomic_load(&h->notify);
    uint64_t p[4] = { 0 };

    if (apple_dext_drain_pending_irqs(conn, p) != kIOReturnSuccess) {
        atomic_fetch_add(&h->errors, 1);
    } else if (!pending_ok(p)) {
        atomic_fetch_or(&h->bad_bits, p[0]);
    }
    /* Before create returned, the creating thread rearms instead. */
    if (n != NULL && apple_dext_interrupt_notify_rearm(n) != kIOReturnSuccess) {
        atomic_fetch_add(&h->errors, 1);
    }
    atomic_fetch_add(&h->calls, 1);
    atomic_fetch_add(&handler_runs, 1);
}

static void role_mask(Worker *w, unsigned long i)
{
    const uint64_t *mask = i % 2 ? all_off : all_on;
    kern_return_t kr = apple_dext_set_irq_mask(conn, mask);

    w->t.calls++;
    if (kr != kIOReturnSuccess) {
        race_note(&w->t, "set_irq_mask: %s", apple_dext_strerror(kr));
    } else if (w->page[4] != mask[0] ||
               (w->page[5] | w->page[6] | w->page[7]) != 0) {
        race_note(&w->t, "after set_irq_mask(0x%llx) the page shows enabled "
                  "0x%llx", (unsigned long long)mask[0],
                  (unsigned long long)w->page[4]);
    }
}

static void role_check(Worker *w, unsigned long i)
{
    uint64_t p[4] = { ~0ull, ~0ull, ~0ull, ~0ull };
    kern_return_t kr;

    kr = i % 2 ? apple_dext_read_pending_irqs(conn, p)
               : apple_dext_drain_pending_irqs(conn, p);
    w->t.calls++;
    if (kr != kIOReturnSuccess) {
        race_note(&w->t, "%s: %s", i % 2 ? "read_pending_irqs" :
                  "drain_pending_irqs", apple_dext_strerror(kr));
    } else if (!pending_ok(p)) {
        race_note(&w->t, "pending bits 0x%llx 0x%llx 0x%llx 0x%llx",
                  (unsigned long long)p[0], (unsigned long long)p[1],
                  (unsigned long long)p[2], (unsigned long long)p[3]);
    }
}

static void rearm(Worker *w, AppleDextInterruptNotify *n)
{
    kern_return_t kr = apple_dext_interrupt_notify_rearm(n);

    w->t.calls++;
    if (kr != kIOReturnSuccess) {
        race_note(&w->t, "interrupt_notify_rearm: %s",
                  apple_dext_strerror(kr));
    }
}

static void role_notify(Worker *w)
{
    Handler h;
    AppleDextInterruptNotify *n;
    unsigned r;

    memset(&h, 0, sizeof(h));
    n = apple_dext_interrupt_notify_create(conn, handler_fn, &h);
    w->t.calls++;
    if (n == NULL) {
        race_note(&w->t, "interrupt_notify_create failed");
        return;
    }
    atomic_store(&h.notify, n);
    for (r = 0; r < REARMS; r++) {
        rearm(w, n);
    }
    /* Waits for a running handler: none may run after this. */
    apple_dext_interrupt_notify_destroy(n);
    w->t.calls++;
    if (atomic_load(&h.errors) != 0 || atomic_load(&h.bad_bits) != 0) {
        race_note(&w->t, "handler: %u failed drains or rearms, bits 0x%llx",
                  atomic_load(&h.errors),
                  (unsigned long long)atomic_load(&h.bad_bits));
    }
}

static void role_notify_fd(Worker *w)
{
    AppleDextInterruptNotify *n;
    unsigned r;
    int fd;

    n = apple_dext_interrupt_notify_create_fd(conn);
    w->t.calls++;
    if (n == NULL) {
        race_note(&w->t, "interrupt_notify_create_fd failed");
        return;
    }
    fd = apple_dext_interrupt_notify_get_fd(n);
    if (fd < 0) {
        race_note(&w->t, "interrupt_notify_get_fd: %d", fd);
    }
    for (r = 0; r < REARMS && fd >= 0; r++) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        uint64_t p[4] = { 0 };
        kern_return_t kr;

        if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN)) {
            atomic_fetch_add(&fd_wakes, 1);
            kr = apple_dext_drain_pending_irqs(conn, p);
            w->t.calls++;
            if (kr != kIOReturnSuccess || !pending_ok(p)) {
                race_note(&w->t, "drain_pending_irqs: %s, bits 0x%llx",
                          apple_dext_strerror(kr), (unsigned long long)p[0]);
            }
        }
        rearm(w, n);
    }
    apple_dext_interrupt_notify_destroy(n);
    w->t.calls++;
}

static void *worker_main(void *opaque)
{
    Worker *w = opaque;
    unsigned long i;
    kern_return_t kr;

    pthread_barrier_wait(&start_barrier);
    w->setup_kr = apple_dext_setup_interrupts(conn, &w->nvec);
    w->t.calls++;
    /* Every setup has answered: one of them made the state. */
    pthread_barrier_wait(&setup_barrier);
    kr = apple_dext_map_irq_page(conn, &w->page);
    w->t.calls++;
    if (kr != kIOReturnSuccess) {
        race_note(&w->t, "map_irq_page: %s", apple_dext_strerror(kr));
        return NULL;
    }
    for (i = 0; !atomic_load(&stop); i++) {
        switch (w->role) {
        case ROLE_MASK:
            role_mask(w, i);
            break;
        case ROLE_CHECK:
            role_check(w, i);
            break;
        case ROLE_NOTIFY:
            role_notify(w);
            break;
        default:
            role_notify_fd(w);
            break;
        }
    }
    return NULL;
}

/* Pending bits read and cleared by CheckInterrupt; ~0 on failure. */
static uint64_t read_pending(void)
{
    uint64_t p[4] = { ~0ull, ~0ull, ~0ull, ~0ull };

    if (!CHECK_KR(apple_dext_read_pending_irqs(conn, p), kIOReturnSuccess)) {
        return ~0ull;
    }
    CHECK_EQ(p[1] | p[2] | p[3], 0);
    return p[0];
}

/* With the device quiet: masking, and delivery to a new notification. */
static void check_after_round(void)
{
    AppleDextDeviceStatus ds;
    HarnessDeadline d;
    unsigned round = 0;
    Handler h;

    CHECK_KR(apple_dext_get_device_status(conn, &ds), kIOReturnSuccess);
    CHECK_EQ(ds.irq_vectors, 1);
    CHECK_KR(apple_dext_set_irq_mask(conn, all_off), kIOReturnSuccess);
    read_pending();
    CHECK(raise_irq());
    CHECK_EQ(read_pending(), 0);
    CHECK_KR(apple_dext_set_irq_mask(conn, all_on), kIOReturnSuccess);

    memset(&h, 0, sizeof(h));
    h.notify = apple_dext_interrupt_notify_create(conn, handler_fn, &h);
    if (!CHECK(h.notify != NULL)) {
        return;
    }
    CHECK(raise_irq());
    d = harness_deadline(HARNESS_WAIT_MS);
    while (atomic_load(&h.calls) == 0 && !harness_expired(&d)) {
        harness_backoff(&round);
    }
    CHECK_MSG(atomic_load(&h.calls) > 0, "no notification within %u ms",
              HARNESS_WAIT_MS);
    apple_dext_interrupt_notify_destroy(h.notify);
    CHECK_EQ(atomic_load(&h.errors), 0);
    CHECK_EQ(atomic_load(&h.bad_bits), 0);
}

/* One round on a fresh session; false once something failed. */
static bool run_round(unsigned n, unsigned ms)
{
    static const char *const names[WORKERS] = {
        "set_irq_mask", "check/drain", "notify callback", "notify fd",
    };
    Worker w[WORKERS];
    RaceTally raiser = { .name = "raise" };
    pthread_t threads[WORKERS], raiser_thread;
    unsigned i, won = 0, still_open = 0;

    conn = harness_connect_edu();
    if (conn == IO_OBJECT_NULL ||
        !CHECK_KR(apple_dext_claim(conn), kIOReturnSuccess)) {
        return false;
    }
    atomic_store(&stop, false);
    atomic_store(&raiser_stop, false);
    memset(w, 0, sizeof(w));
    pthread_barrier_init(&start_barrier, NULL, WORKERS + 1);
    pthread_barrier_init(&setup_barrier, NULL, WORKERS);
    CHECK_EQ(pthread_create(&raiser_thread, NULL, raiser_main, &raiser), 0);
    for (i = 0; i < WORKERS; i++) {
        w[i].t.name = names[i];
        w[i].role = i;
        CHECK_EQ(pthread_create(&threads[i], NULL, worker_main, &w[i]), 0);
    }
    race_run_for(ms, &stop);
    for (i = 0; i < WORKERS; i++) {
        pthread_join(threads[i], NULL);
    }
    atomic_store(&raiser_stop, true);
    pthread_join(raiser_thread, NULL);
    pthread_barrier_destroy(&start_barrier);
    pthread_barrier_destroy(&setup_barrier);

    for (i = 0; i < WORKERS; i++) {
        if (w[i].setup_kr == kIOReturnSuccess) {
            won++;
            CHECK_EQ(w[i].nvec, 1);
        } else if (CHECK_KR(w[i].setup_kr, kIOReturnStillOpen)) {
            still_open++;
        }
        CHECK_MSG(w[i].page == w[0].page, "%s mapped the state page at %p, "
                  "%s at %p", names[i], (void *)w[i].page, names[0],
                  (void *)w[0].page);
    }
    CHECK_EQ(won, 1);
    CHECK_EQ(still_open, WORKERS - 1);
    /* The tallies of the first round and of any failing one. */
    for (i = 0; i < WORKERS; i++) {
        if (n == 0 || w[i].t.errors != 0) {
            race_report(&w[i].t);
        }
    }
    if (n == 0 || raiser.errors != 0) {
        race_report(&raiser);
    }
    check_after_round();
    apple_dext_disconnect(conn);
    return harness_failures() == 0;
}

int main(int argc, char **argv)
{
    unsigned secs = race_seconds(), rounds = 0;
    HarnessDeadline d;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };

    harness_init(argc, argv, NULL);
    harness_section("rounds of: %d threads set up interrupts at once, then "
                    "mask, check, notify (callback and fd) for %d ms while "
                    "edu raises; %u s", WORKERS, ROUND_MS, secs);
    d = harness_deadline(secs * 1000);
    do {
        if (!run_round(rounds, ROUND_MS)) {
            break;
        }
        rounds++;
    } while (!harness_expired(&d));
    printf("# %u rounds, %lu handler runs, %lu fd wake-ups\n", rounds,
           atomic_load(&handler_runs), atomic_load(&fd_wakes));
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, 0);
        CHECK_EQ(st.irq_sessions, 0);
        CHECK_EQ(st.claims, 0);
    }
    return harness_finish();
}
