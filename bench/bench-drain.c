/*
 * SPDX-License-Identifier: MIT
 *
 * Pending-interrupt drain: apple_dext_drain_pending_irqs() reading and
 * clearing the shared interrupt state page, against CheckInterrupt (one
 * round trip to dextd per drain).  A doorbell before each run leaves a
 * vector pending, so each path also clears a set bit, not only zeros.
 */

#define _GNU_SOURCE
#include <stdlib.h>

#include "bench.h"
#include "harness.h"
#include "ivshmem.h"

#define RUNS  11
#define ITERS 20000

typedef kern_return_t DrainFn(io_connect_t, uint64_t *);

static double run(io_connect_t c, DrainFn *fn, int iters)
{
    uint64_t p[4];
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < iters; i++) {
        if (fn(c, p) != kIOReturnSuccess) {
            abort();
        }
    }
    return (double)(bench_now_ns() - t0) / iters;
}

int main(int argc, char **argv)
{
    double page[RUNS], check[RUNS], mp, mc;
    volatile uint64_t *pg = NULL;
    io_connect_t c;
    uint32_t n;
    int r;

    /* One placement for dextd and every baseline peer: see bench.h. */
    bench_pin(0);
    harness_init(argc, argv, "ivshmem");
    c = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    if (c == IO_OBJECT_NULL || apple_dext_claim(c) != kIOReturnSuccess ||
        apple_dext_setup_interrupts(c, &n) != kIOReturnSuccess ||
        apple_dext_map_irq_page(c, &pg) != kIOReturnSuccess) {
        return harness_finish() ? 1 : 1;
    }
    run(c, apple_dext_drain_pending_irqs, 1000);
    run(c, apple_dext_read_pending_irqs, 1000);
    for (r = 0; r < RUNS; r++) {
        apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DOORBELL, 4, 5);
        page[r] = run(c, apple_dext_drain_pending_irqs, ITERS * 50);
        apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DOORBELL, 4, 5);
        check[r] = run(c, apple_dext_read_pending_irqs, ITERS);
    }
    mp = bench_median(page, RUNS);
    mc = bench_median(check, RUNS);
    /* The ratio is the speed-up of the shared page. */
    bench_report("irq_drain_page_ns", mp, "ns", mc, mc / mp, BENCH_AT_LEAST,
                 20);
    apple_dext_disconnect(c);
    return harness_finish();
}
