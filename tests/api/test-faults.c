/*
 * SPDX-License-Identifier: MIT
 *
 * Faults on either side of the socket.
 *
 *  - dextd SIGKILLed (no goodbye, socket left behind) while four threads
 *    of one connection are mid-call and a notification is armed: every
 *    thread's next call fails within a second, nothing hangs, the notify
 *    machinery stops, later calls fail cleanly, and a restarted daemon
 *    serves a new connection.
 *  - The device misbehaving: an interrupt storm of 20,000 messages, and
 *    DMA to bus addresses nobody registered, while another client works:
 *    messages coalesce, faults are counted, memory is untouched.
 *
 * The kill needs a daemon: unix only; the storm runs on both transports.
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "edu.h"
#include "api-util.h"

#define THREADS     4
#define STORM       20000

static io_connect_t shared_conn;
static atomic_bool killed;
static struct timespec kill_time;
static atomic_uint handler_calls;

typedef struct Worker {
    pthread_t tid;
    int index;
    atomic_uint calls;          /* polled by the main thread */
    kern_return_t first_error;
    struct timespec error_time;
    atomic_bool done;
} Worker;

static long ms_between(const struct timespec *a, const struct timespec *b)
{
    return (b->tv_sec - a->tv_sec) * 1000L +
           (b->tv_nsec - a->tv_nsec) / 1000000L;
}

static void *worker_main(void *opaque)
{
    Worker *w = opaque;
    uint8_t buf[64];
    uint64_t v;

    for (;;) {
        kern_return_t kr;

        switch ((atomic_load(&w->calls) + (unsigned)w->index) % 3) {
        case 0:
            kr = apple_dext_mmio_read(shared_conn, 0, EDU_REG_ID, 4, &v);
            break;
        case 1:
            kr = apple_dext_config_read_block(shared_conn, 0, buf,
                                              sizeof(buf));
            break;
        default:
            kr = apple_dext_config_read(shared_conn, 0, 4, &v);
            break;
        }
        atomic_fetch_add(&w->calls, 1);
        if (kr != kIOReturnSuccess) {
            clock_gettime(CLOCK_MONOTONIC, &w->error_time);
            w->first_error = kr;
            break;
        }
    }
    atomic_store(&w->done, true);
    return NULL;
}

static void handler(void *opaque)
{
    atomic_fetch_add(&handler_calls, 1);
}

static void daemon_killed_mid_call(void)
{
    Worker w[THREADS];
    AppleDextInterruptNotify *n, *nfd;
    HarnessDeadline d;
    unsigned round = 0;
    uint64_t v;
    io_connect_t c2;
    int i;

    harness_section("dextd SIGKILLed with %d threads mid-call", THREADS);
    shared_conn = harness_connect_edu();
    if (!shared_conn || !CHECK_KR(apple_dext_claim(shared_conn),
                                  kIOReturnSuccess) ||
        !CHECK_KR(apple_dext_setup_interrupts(shared_conn, NULL),
                  kIOReturnSuccess)) {
        return;
    }
    n = apple_dext_interrupt_notify_create(shared_conn, handler, NULL);
    nfd = apple_dext_interrupt_notify_create_fd(shared_conn);
    CHECK(n != NULL);
    CHECK(nfd != NULL);

    memset(w, 0, sizeof(w));
    for (i = 0; i < THREADS; i++) {
        w[i].index = i;
        pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
    }
    /* Let every thread get going, then pull the plug. */
    d = harness_deadline(HARNESS_WAIT_MS);
    for (i = 0; i < THREADS && !harness_expired(&d); ) {
        if (atomic_load(&w[i].calls) >= 50) {
            i++;
        } else {
            harness_backoff(&round);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &kill_time);
    harness_kill_daemon();
    atomic_store(&killed, true);

    d = harness_deadline(HARNESS_WAIT_MS);
    round = 0;
    for (i = 0; i < THREADS; i++) {
        while (!atomic_load(&w[i].done) && !harness_expired(&d)) {
            harness_backoff(&round);
        }
        if (!CHECK_MSG(atomic_load(&w[i].done),
                       "thread %d still in a call %u ms after the kill", i,
                       HARNESS_WAIT_MS)) {
            continue;
        }
        pthread_join(w[i].tid, NULL);
        CHECK_KR(w[i].first_error, kIOReturnNotResponding);
        CHECK_MSG(ms_between(&kill_time, &w[i].error_time) < 1000,
                  "thread %d failed %ld ms after the kill", i,
                  ms_between(&kill_time, &w[i].error_time));
        printf("# thread %d: %u calls, failed %ld ms after the kill\n", i,
               atomic_load(&w[i].calls),
               ms_between(&kill_time, &w[i].error_time));
    }

    /* Later calls fail cleanly; the notify machinery stops. */
    CHECK_KR(apple_dext_mmio_read(shared_conn, 0, EDU_REG_ID, 4, &v),
             kIOReturnNotResponding);
    CHECK_KR(apple_dext_interrupt_notify_rearm(n), kIOReturnNotResponding);
    apple_dext_interrupt_notify_destroy(n);
    apple_dext_interrupt_notify_destroy(nfd);
    apple_dext_disconnect(shared_conn);

    harness_section("a restarted dextd serves a new connection");
    harness_restart_daemon();
    c2 = harness_connect_edu();
    if (c2) {
        CHECK_KR(apple_dext_claim(c2), kIOReturnSuccess);
        CHECK_KR(apple_dext_mmio_read(c2, 0, EDU_REG_ID, 4, &v),
                 kIOReturnSuccess);
        CHECK_EQ(v, 0x010000ed);
        apple_dext_disconnect(c2);
    }
}

static void device_misbehaves(void)
{
    AppleDextStatus before, after;
    io_connect_t a, b;
    uint64_t pend[4], v;
    uint8_t *mem;
    uint64_t bus, len;
    unsigned i, j;
    bool counted;

    harness_section("interrupt storm: %d messages", STORM);
    a = harness_connect_edu();
    b = harness_connect_edu();
    mem = api_dma_alloc(8192);
    if (!a || !b || mem == MAP_FAILED) {
        return;
    }
    memset(mem, 0x3c, 8192);
    CHECK_KR(apple_dext_claim(a), kIOReturnSuccess);
    CHECK_KR(apple_dext_claim(b), kIOReturnSuccess);
    CHECK_KR(apple_dext_setup_interrupts(a, NULL), kIOReturnSuccess);
    /* Over iokit the dext keeps no counters: the storm is checked by
     * its pending bit and by b being served. */
    counted = harness_status(&before);
    for (i = 0; i < STORM; i++) {
        if (apple_dext_mmio_write(a, 0, EDU_REG_IRQ_RAISE, 4, 1) !=
            kIOReturnSuccess) {
            CHECK_MSG(false, "raise %u failed", i);
            break;
        }
        /* The other client keeps being served during the storm. */
        if (i % 1000 == 0) {
            CHECK_KR(apple_dext_config_read(b, 0, 4, &v), kIOReturnSuccess);
        }
    }
    harness_status(&after);
    if (!counted) {
        /* Nothing to compare. */
    } else if (harness_real_devices()) {
        /*
         * A real edu's messages coalesce on their way (the CPU's pending
         * vector, VFIO's eventfd) and arrive after the MMIO calls: the
         * dext sees at least one, within the bound.
         */
        HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
        unsigned round = 0;

        while (after.irqs_raised == before.irqs_raised &&
               !harness_expired(&d) && harness_status(&after)) {
            harness_backoff(&round);
        }
        CHECK_MSG(after.irqs_raised > before.irqs_raised,
                  "no interrupt within %u ms", HARNESS_WAIT_MS);
    } else {
        CHECK_MSG(after.irqs_raised >= before.irqs_raised + STORM / 2,
                  "irqs_raised %llu -> %llu",
                  (unsigned long long)before.irqs_raised,
                  (unsigned long long)after.irqs_raised);
    }
    /* Coalesced: one pending bit, however many messages. */
    CHECK_KR(apple_dext_read_pending_irqs(a, pend), kIOReturnSuccess);
    CHECK_EQ(pend[0], 1);
    CHECK_EQ(pend[1] | pend[2] | pend[3], 0);
    CHECK_KR(apple_dext_mmio_write(a, 0, EDU_REG_IRQ_ACK, 4, ~0u),
             kIOReturnSuccess);

    harness_section("device DMA to unregistered bus addresses");
    CHECK_KR(apple_dext_register_dma(b, 0x10000, (uintptr_t)mem, 4096, &bus,
                                     &len), kIOReturnSuccess);
    counted = harness_status(&before);
    for (j = 0; j < 8; j++) {
        /* Just past b's region, then far away; both directions. */
        uint64_t bad = j < 4 ? bus + 4096 + j * 4096 : 0xfff0000 - j * 4096;

        if (j & 1) {
            edu_dma(a, EDU_DMA_BUF_ADDR, bad, 64, EDU_DMA_TO_RAM);
        } else {
            edu_dma(a, bad, EDU_DMA_BUF_ADDR, 64, 0);
        }
    }
    harness_status(&after);
    /* A real IOMMU's faults go to the kernel's log, not to the dext. */
    if (counted && !harness_real_devices()) {
        CHECK_EQ(after.iommu_faults, before.iommu_faults + 8);
    }
    for (i = 0; i < 8192; i++) {
        if (mem[i] != 0x3c) {
            CHECK_MSG(false, "byte %u of client memory changed", i);
            break;
        }
    }
    CHECK_KR(apple_dext_config_read(b, 0, 4, &v), kIOReturnSuccess);
    apple_dext_disconnect(a);
    apple_dext_disconnect(b);
    munmap(mem, 8192);
}

int main(int argc, char **argv)
{
    harness_init(argc, argv, NULL);
    device_misbehaves();
    if (harness_is_unix()) {
        daemon_killed_mid_call();
    }
    return harness_finish();
}
