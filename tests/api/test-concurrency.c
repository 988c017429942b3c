/*
 * SPDX-License-Identifier: MIT
 *
 * Calls on one connection from several threads at once: mixed config
 * reads, MMIO identification reads and liveness write/read pairs, every
 * result checked.  The header promises that such calls run concurrently
 * and each gets its own answer.  Then disconnects racing calls, and
 * stale handles used while their slot (and the connection's memory,
 * which is reused) serves new connections.
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "edu.h"

#define THREADS    4
#define ITERATIONS 2000
/* The disconnect race is a narrow window: run it many times. */
#define DISCONNECT_ROUNDS 50

typedef struct Worker {
    io_connect_t c;
    unsigned id;
    unsigned errors;
    unsigned calls;
    char first_error[160];
} Worker;

/*
 * Liveness values carry their own checksum in the low byte, so a read
 * that returns another thread's write is still recognisably a write
 * (the register is shared), while a torn, stale-garbage or misrouted
 * reply is not.
 */
static uint32_t tag_value(unsigned id, unsigned i)
{
    uint32_t hi = ((uint32_t)id << 20) | (i & 0xfffff);

    return (hi << 8) | ((hi * 0x9e3779b1u) >> 24);
}

static bool tag_valid(uint32_t v)
{
    uint32_t hi = v >> 8;

    return (v & 0xff) == ((hi * 0x9e3779b1u) >> 24) && (hi >> 20) < THREADS;
}

static void worker_error(Worker *w, const char *what, kern_return_t kr,
                         uint64_t v)
{
    if (w->errors++ == 0) {
        snprintf(w->first_error, sizeof(w->first_error),
                 "%s: %s, value 0x%llx", what, apple_dext_strerror(kr),
                 (unsigned long long)v);
    }
}

static void *worker_main(void *opaque)
{
    Worker *w = opaque;
    unsigned i;

    for (i = 0; i < ITERATIONS; i++) {
        uint64_t v = 0;
        kern_return_t kr;

        switch ((i + w->id) % 4) {
        case 0:
            kr = apple_dext_config_read(w->c, 0x00, 4, &v);
            if (kr != kIOReturnSuccess ||
                v != ((EDU_DEVICE_ID << 16) | EDU_VENDOR_ID)) {
                worker_error(w, "config read of the IDs", kr, v);
            }
            w->calls++;
            break;
        case 1:
            kr = apple_dext_config_read(w->c, 0x0b, 1, &v);
            if (kr != kIOReturnSuccess || v != EDU_CLASS_CODE >> 16) {
                worker_error(w, "config read of the base class", kr, v);
            }
            w->calls++;
            break;
        case 2:
            kr = apple_dext_mmio_read(w->c, EDU_MEM_IDX, EDU_REG_ID, 4, &v);
            if (kr != kIOReturnSuccess || v != EDU_ID_VALUE) {
                worker_error(w, "MMIO read of the ID register", kr, v);
            }
            w->calls++;
            break;
        default:
            kr = apple_dext_mmio_write(w->c, EDU_MEM_IDX, EDU_REG_LIVENESS, 4,
                                       tag_value(w->id, i));
            if (kr != kIOReturnSuccess) {
                worker_error(w, "MMIO write of liveness", kr, 0);
            }
            kr = apple_dext_mmio_read(w->c, EDU_MEM_IDX, EDU_REG_LIVENESS, 4,
                                      &v);
            if (kr != kIOReturnSuccess || v > UINT32_MAX ||
                !tag_valid(~(uint32_t)v)) {
                worker_error(w, "MMIO read of liveness", kr, v);
            }
            w->calls += 2;
            break;
        }
    }
    return NULL;
}

/* Calls racing apple_dext_disconnect() on the same handle. */
typedef struct Racer {
    io_connect_t c;
    atomic_uint calls;
    unsigned bad_results;
    bool saw_closed;
    atomic_bool saw_closed_flag;    /* the same, for the main thread */
    kern_return_t odd_kr;
} Racer;

/* Set if a racer has not seen the handle closed long after disconnect. */
static atomic_bool give_up;

static void *racer_main(void *opaque)
{
    Racer *r = opaque;

    while (!atomic_load(&give_up)) {
        uint64_t v = 0;
        kern_return_t kr = apple_dext_mmio_read(r->c, EDU_MEM_IDX, EDU_REG_ID,
                                                4, &v);

        atomic_fetch_add(&r->calls, 1);
        if (kr == kIOReturnBadArgument) {
            /* The handle is gone: from now on always refused. */
            r->saw_closed = true;
            atomic_store(&r->saw_closed_flag, true);
            kr = apple_dext_config_read(r->c, 0, 4, &v);
            if (kr != kIOReturnBadArgument) {
                r->bad_results++;
                r->odd_kr = kr;
            }
            break;
        }
        if (kr != kIOReturnSuccess || v != EDU_ID_VALUE) {
            r->bad_results++;
            r->odd_kr = kr;
        }
    }
    return NULL;
}

static void disconnect_race_round(void)
{
    Racer racers[THREADS];
    pthread_t threads[THREADS];
    unsigned i, round = 0;
    HarnessDeadline d;
    io_connect_t c;
    bool started;

    atomic_store(&give_up, false);
    c = harness_connect_edu();
    if (c == IO_OBJECT_NULL ||
        !CHECK_KR(apple_dext_claim(c), kIOReturnSuccess)) {
        return;
    }
    memset(racers, 0, sizeof(racers));
    for (i = 0; i < THREADS; i++) {
        racers[i].c = c;
        if (!CHECK_EQ(pthread_create(&threads[i], NULL, racer_main,
                                     &racers[i]), 0)) {
            apple_dext_disconnect(c);
            while (i-- > 0) {
                pthread_join(threads[i], NULL);
            }
            return;
        }
    }
    /* Let every thread get going, so the disconnect lands mid-call. */
    d = harness_deadline(HARNESS_WAIT_MS);
    do {
        started = true;
        for (i = 0; i < THREADS; i++) {
            started &= atomic_load(&racers[i].calls) >= 50;
        }
        if (!started) {
            harness_backoff(&round);
        }
    } while (!started && !harness_expired(&d));
    CHECK(started);
    apple_dext_disconnect(c);
    /* Every racer must notice within the bound, however it is scheduled. */
    d = harness_deadline(HARNESS_WAIT_MS);
    round = 0;
    for (;;) {
        bool all = true;

        for (i = 0; i < THREADS; i++) {
            all &= racers[i].saw_closed_flag;
        }
        if (all || harness_expired(&d)) {
            break;
        }
        harness_backoff(&round);
    }
    atomic_store(&give_up, true);
    for (i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        CHECK_MSG(racers[i].saw_closed, "thread %u never saw the handle "
                  "closed", i);
        CHECK_MSG(racers[i].bad_results == 0, "thread %u: %u bad results, "
                  "last %s", i, racers[i].bad_results,
                  apple_dext_strerror(racers[i].odd_kr));
    }
}

static void test_disconnect_race(void)
{
    cpu_set_t all, one;
    unsigned n;

    harness_section("disconnect while %d threads call, %d rounds", THREADS,
                    DISCONNECT_ROUNDS);
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (sched_getaffinity(0, sizeof(all), &all) != 0) {
        CPU_ZERO(&all);
    }
    for (n = 0; n < DISCONNECT_ROUNDS; n++) {
        /*
         * Half the rounds with every thread on one CPU: then a racer is
         * often preempted inside a call, the window a disconnect must
         * not close the transport under (threads inherit the mask).
         */
        if (n % 2 == 1 && CPU_COUNT(&all) > 0) {
            sched_setaffinity(0, sizeof(one), &one);
        }
        disconnect_race_round();
        if (CPU_COUNT(&all) > 0) {
            sched_setaffinity(0, sizeof(all), &all);
        }
    }
}

/*
 * Threads calling with a handle already disconnected while the main
 * thread connects and disconnects over and over: calls look handles up
 * without a lock, and a connection's memory is reused by the next one,
 * so each call must tell the stale handle from the slot's new owner.
 * Every stale call answers kIOReturnBadArgument; the new connections
 * keep working.
 */
#define REUSE_ROUNDS 100

typedef struct StaleCaller {
    io_connect_t stale;
    atomic_uint calls;
    atomic_uint wrong;
    kern_return_t odd_kr;
} StaleCaller;

static atomic_bool reuse_done;

static void *stale_caller_main(void *opaque)
{
    StaleCaller *sc = opaque;

    while (!atomic_load(&reuse_done)) {
        uint64_t v = 0;
        kern_return_t kr = apple_dext_config_read(sc->stale, 0, 4, &v);

        if (kr != kIOReturnBadArgument) {
            sc->odd_kr = kr;
            atomic_fetch_add(&sc->wrong, 1);
        }
        atomic_fetch_add(&sc->calls, 1);
        /* Under valgrind one thread runs at a time: let the main one on. */
        sched_yield();
    }
    return NULL;
}

static void test_stale_handle_reuse(void)
{
    StaleCaller callers[THREADS];
    pthread_t threads[THREADS];
    unsigned i, n, failures = 0;
    io_connect_t stale = harness_connect_edu();

    harness_section("stale handles while their slot is reused, %d rounds",
                    REUSE_ROUNDS);
    if (stale == IO_OBJECT_NULL) {
        return;
    }
    apple_dext_disconnect(stale);
    atomic_store(&reuse_done, false);
    for (i = 0; i < THREADS; i++) {
        callers[i].stale = stale;
        atomic_init(&callers[i].calls, 0);
        atomic_init(&callers[i].wrong, 0);
        callers[i].odd_kr = kIOReturnSuccess;
        CHECK_EQ(pthread_create(&threads[i], NULL, stale_caller_main,
                                &callers[i]), 0);
    }
    for (n = 0; n < REUSE_ROUNDS; n++) {
        io_connect_t c = IO_OBJECT_NULL;
        uint64_t v = 0;

        if (apple_dext_connect_target(harness_target(), EDU_BUS, EDU_DEV,
                                      EDU_FN, &c) != kIOReturnSuccess ||
            apple_dext_config_read(c, 0, 4, &v) != kIOReturnSuccess ||
            v != ((EDU_DEVICE_ID << 16) | EDU_VENDOR_ID)) {
            failures++;
        }
        apple_dext_disconnect(c);
    }
    atomic_store(&reuse_done, true);
    for (i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        CHECK_MSG(atomic_load(&callers[i].wrong) == 0, "thread %u: %u of "
                  "%u stale calls not refused (last: %s)", i,
                  atomic_load(&callers[i].wrong),
                  atomic_load(&callers[i].calls),
                  apple_dext_strerror(callers[i].odd_kr));
    }
    CHECK_MSG(failures == 0, "%u of %d new connections failed", failures,
              REUSE_ROUNDS);
}

int main(int argc, char **argv)
{
    Worker workers[THREADS];
    pthread_t threads[THREADS];
    unsigned i, total = 0;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    io_connect_t c;

    harness_init(argc, argv, NULL);
    c = harness_connect_edu();
    if (c == IO_OBJECT_NULL ||
        !CHECK_KR(apple_dext_claim(c), kIOReturnSuccess)) {
        return harness_finish();
    }
    /* The tag check itself must be able to fail. */
    CHECK(tag_valid(tag_value(3, 12345)));
    CHECK(!tag_valid(tag_value(3, 12345) ^ 0x100));
    CHECK(!tag_valid(0xffffffff));

    harness_section("%d threads x %d calls on one connection", THREADS,
                    ITERATIONS);
    memset(workers, 0, sizeof(workers));
    for (i = 0; i < THREADS; i++) {
        workers[i].c = c;
        workers[i].id = i;
        CHECK_EQ(pthread_create(&threads[i], NULL, worker_main, &workers[i]),
                 0);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        CHECK_MSG(workers[i].errors == 0, "thread %u: %u wrong results, "
                  "first: %s", i, workers[i].errors, workers[i].first_error);
        total += workers[i].calls;
    }
    CHECK_EQ(total, THREADS * (ITERATIONS / 4) * 5);

    /* The connection is still sound afterwards. */
    edu_write32(c, EDU_REG_LIVENESS, 0x5555aaaa);
    CHECK_EQ(edu_read32(c, EDU_REG_LIVENESS), 0xaaaa5555);
    apple_dext_disconnect(c);
    test_disconnect_race();
    test_stale_handle_reuse();
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, 0);
        CHECK_EQ(st.claims, 0);
    }
    return harness_finish();
}
