/*
 * SPDX-License-Identifier: MIT
 *
 * Interrupt storm: ivshmem fires all 256 MSI-X vectors in bursts (its
 * BURST register, so the rate is the device and dext core's, not one
 * round trip per interrupt) while a client thread drains the shared
 * interrupt state page as fast as it can.
 *
 * Proof that no enabled vector firing after a drain is missed: every
 * round fires each vector at least once, then waits until the drainer
 * has completed a whole drain that started after the burst ended, then
 * takes the union of what was drained during the round.  Every one of
 * the 256 bits must be in it; a bit fired after some drain and never
 * seen by a later one would be missing.
 *
 * Baseline: the same protocol between two threads of one process (an
 * atomic OR per interrupt on one side, the drain's atomic exchanges on
 * the other): the limit of the shared-page design on this machine.
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "harness.h"
#include "ivshmem.h"

#define ROUNDS       200
#define BURST        64         /* rounds over all vectors per burst */
#define NVEC         256

typedef struct Drainer {
    io_connect_t c;
    volatile uint64_t *page;    /* baseline only: drain this directly */
    atomic_bool stop;
    atomic_uint_fast64_t seq;   /* completed drains */
    atomic_uint_fast64_t seen[4];
    uint64_t drained_bits;
} Drainer;

static void *drainer(void *opaque)
{
    Drainer *d = opaque;
    uint64_t p[4];
    int i;

    while (!atomic_load(&d->stop)) {
        if (d->page != NULL) {
            for (i = 0; i < 4; i++) {
                p[i] = __atomic_exchange_n((uint64_t *)&d->page[i], 0,
                                           __ATOMIC_SEQ_CST);
            }
        } else if (apple_dext_drain_pending_irqs(d->c, p) != kIOReturnSuccess) {
            abort();
        }
        for (i = 0; i < 4; i++) {
            if (p[i]) {
                atomic_fetch_or(&d->seen[i], p[i]);
                d->drained_bits += (uint64_t)__builtin_popcountll(p[i]);
            }
        }
        atomic_fetch_add(&d->seq, 1);
    }
    return NULL;
}

/* Wait for a full drain that began after now; then take the round's set. */
static unsigned round_misses(Drainer *d)
{
    uint64_t s = atomic_load(&d->seq);
    unsigned miss = 0;
    int i;

    while (atomic_load(&d->seq) < s + 2) {
        sched_yield();
    }
    for (i = 0; i < 4; i++) {
        miss += 64 - (unsigned)__builtin_popcountll(
                         atomic_exchange(&d->seen[i], 0));
    }
    return miss;
}

static double baseline_rate(void)
{
    static uint64_t page[8];
    Drainer d;
    pthread_t th;
    uint64_t t0, fired = 0;
    unsigned r, b, v;

    memset(&d, 0, sizeof(d));
    d.page = page;
    pthread_create(&th, NULL, drainer, &d);
    t0 = bench_now_ns();
    for (r = 0; r < ROUNDS; r++) {
        for (b = 0; b < BURST; b++) {
            for (v = 0; v < NVEC; v++) {
                __atomic_fetch_or(&page[v / 64], 1ull << (v % 64),
                                  __ATOMIC_SEQ_CST);
            }
        }
        fired += BURST * NVEC;
        round_misses(&d);
    }
    t0 = bench_now_ns() - t0;
    atomic_store(&d.stop, true);
    pthread_join(th, NULL);
    return fired / (t0 / 1e9);
}

int main(int argc, char **argv)
{
    volatile uint64_t *page = NULL;
    Drainer d;
    pthread_t th;
    uint64_t t0, elapsed, fired = 0, count0 = 0, count1 = 0;
    unsigned r, misses = 0;
    uint32_t n = 0;
    double rate, base;

    /* One placement for dextd and every baseline peer: see bench.h. */
    bench_pin(0);
    harness_init(argc, argv, "ivshmem");
    memset(&d, 0, sizeof(d));
    d.c = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    if (d.c == IO_OBJECT_NULL || apple_dext_claim(d.c) != kIOReturnSuccess ||
        apple_dext_setup_interrupts(d.c, &n) != kIOReturnSuccess ||
        n != NVEC || apple_dext_map_irq_page(d.c, &page) != kIOReturnSuccess) {
        return harness_finish() ? 1 : 1;
    }
    apple_dext_mmio_read(d.c, IVSHMEM_MEM_REGS, IVSHMEM_FIRE_COUNT, 8,
                         &count0);
    pthread_create(&th, NULL, drainer, &d);
    t0 = bench_now_ns();
    for (r = 0; r < ROUNDS; r++) {
        if (apple_dext_mmio_write(d.c, IVSHMEM_MEM_REGS, IVSHMEM_BURST, 4,
                                  BURST) != kIOReturnSuccess) {
            abort();
        }
        fired += BURST * NVEC;
        misses += round_misses(&d);
    }
    elapsed = bench_now_ns() - t0;
    atomic_store(&d.stop, true);
    pthread_join(th, NULL);
    apple_dext_mmio_read(d.c, IVSHMEM_MEM_REGS, IVSHMEM_FIRE_COUNT, 8,
                         &count1);

    rate = fired / (elapsed / 1e9);
    base = baseline_rate();
    printf("# %llu interrupts fired (device count %llu) in %.3f s; "
           "%llu pending bits drained (coalesced)\n",
           (unsigned long long)fired,
           (unsigned long long)(count1 - count0), elapsed / 1e9,
           (unsigned long long)d.drained_bits);
    bench_report("irq_storm_rate_per_s", rate, "irq/s", base, rate / base,
                 BENCH_INFO, 0);
    bench_report("irq_storm_missed", misses, "vectors", ROUNDS * NVEC,
                 (double)misses, BENCH_AT_MOST, 0);
    apple_dext_disconnect(d.c);
    return harness_finish();
}
