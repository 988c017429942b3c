/*
 * SPDX-License-Identifier: MIT
 *
 * Mapped BAR access: 32-bit reads and writes through a mapping of
 * ivshmem's BAR2 (apple_dext_map_bar over dextd) against the same loop
 * over ordinary process memory.  Once mapped, no call is involved: this
 * shows the mapping adds nothing (same page size, same caching) over
 * plain memory.  Runs alternate, and each ratio is the median of the
 * ratios of adjacent runs, as in the other benchmarks: a run is about a
 * millisecond, and drift between runs would otherwise land on one side.
 * A run is short enough for one host tick to move it by several percent,
 * so there are many.
 */

#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "harness.h"
#include "ivshmem.h"

#define RUNS   31
#define SPAN   (64u * 1024)         /* stays in L2: measures the access */
#define PASSES 200

static double run_read(volatile uint32_t *p)
{
    uint64_t t0 = bench_now_ns();
    uint32_t sum = 0;
    unsigned pass, i;

    for (pass = 0; pass < PASSES; pass++) {
        for (i = 0; i < SPAN / 4; i++) {
            sum += p[i];
        }
    }
    __asm__ volatile("" :: "r"(sum));
    return (double)(bench_now_ns() - t0) / ((double)PASSES * SPAN / 4);
}

static double run_write(volatile uint32_t *p)
{
    uint64_t t0 = bench_now_ns();
    unsigned pass, i;

    for (pass = 0; pass < PASSES; pass++) {
        for (i = 0; i < SPAN / 4; i++) {
            p[i] = i + pass;
        }
    }
    return (double)(bench_now_ns() - t0) / ((double)PASSES * SPAN / 4);
}

int main(int argc, char **argv)
{
    double br[RUNS], bw[RUNS], mr[RUNS], mw[RUNS], rr[RUNS], rw[RUNS];
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    volatile uint32_t *bar, *mem;
    io_connect_t c;
    double r1, r2, b1, b2;
    int r;

    /* One placement for dextd and every baseline peer: see bench.h. */
    bench_pin(0);
    harness_init(argc, argv, "ivshmem");
    c = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    if (c == IO_OBJECT_NULL ||
        apple_dext_claim(c) != kIOReturnSuccess ||
        apple_dext_map_bar(c, IVSHMEM_BAR_SHM, &addr, &size, NULL) !=
        kIOReturnSuccess || size < SPAN) {
        fprintf(stderr, "cannot map BAR2\n");
        return harness_finish() ? 1 : 1;
    }
    bar = (volatile uint32_t *)(uintptr_t)addr;
    mem = aligned_alloc(4096, SPAN);
    memset((void *)mem, 0, SPAN);
    /* Fault both in first. */
    run_write(bar);
    run_write(mem);
    for (r = 0; r < RUNS; r++) {
        /* Every other run the other way round: neither side always
         * inherits the caches the other one left. */
        if (r % 2 == 0) {
            br[r] = run_read(bar);
            mr[r] = run_read(mem);
            bw[r] = run_write(bar);
            mw[r] = run_write(mem);
        } else {
            mw[r] = run_write(mem);
            bw[r] = run_write(bar);
            mr[r] = run_read(mem);
            br[r] = run_read(bar);
        }
        rr[r] = br[r] / mr[r];
        rw[r] = bw[r] / mw[r];
    }
    r1 = bench_median(br, RUNS);
    b1 = bench_median(mr, RUNS);
    r2 = bench_median(bw, RUNS);
    b2 = bench_median(mw, RUNS);
    bench_report("mmio_mapped_read32_ns", r1, "ns", b1,
                 bench_median(rr, RUNS), BENCH_AT_MOST, 1.05);
    bench_report("mmio_mapped_write32_ns", r2, "ns", b2,
                 bench_median(rw, RUNS), BENCH_AT_MOST, 1.05);
    free((void *)mem);
    apple_dext_unmap_bar(c, IVSHMEM_BAR_SHM, addr);
    apple_dext_disconnect(c);
    return harness_finish();
}
