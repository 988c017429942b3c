/*
 * SPDX-License-Identifier: MIT
 *
 * DMA region table scaling: the cost of one RegisterDMARegion plus one
 * UnregisterDMARegion while 1 .. 65,536 regions are live on the same
 * user client.  The real dext scans a 65,536-slot array per call; our
 * core keeps regions in range trees (O(log n)), so the cost should stay
 * flat.  Measured in-process (the core's own cost, nothing hides it) and
 * over dextd (what a client sees).
 *
 * For scale, the real dext's design is modelled too: a flat table of
 * 65,536 slots scanned for a duplicate iova and a free slot on register,
 * and for the iova on unregister (no device, no call: the scan alone).
 */

#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>

#include "bench.h"
#include "harness.h"
#include "ivshmem.h"

#define RUNS      7
#define MAX_LIVE  65536u
#define SLOT      4096u
#define SLOTS     16u
#define PROBE_IOVA 0xf00000000000ull

static const uint32_t live_points[] = { 1, 16, 64, 256, 4096, 16384, 65536 };
#define NPOINTS (sizeof(live_points) / sizeof(live_points[0]))

static uint8_t *mem;

static double op_cost(io_connect_t c, int iters)
{
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < iters; i++) {
        if (apple_dext_register_dma(c, PROBE_IOVA, (uintptr_t)mem, SLOT, NULL,
                                    NULL) != kIOReturnSuccess ||
            apple_dext_unregister_dma(c, PROBE_IOVA) != kIOReturnSuccess) {
            abort();
        }
    }
    return (double)(bench_now_ns() - t0) / iters;
}

/* Grow the filler regions to @n; they stay until the connection closes. */
static void fill_to(io_connect_t c, uint32_t *have, uint32_t n)
{
    for (; *have < n; (*have)++) {
        uint32_t i = *have;

        if (apple_dext_register_dma(c, (uint64_t)i * 0x10000,
                                    (uintptr_t)mem + (i % SLOTS) * SLOT, SLOT,
                                    NULL, NULL) != kIOReturnSuccess) {
            abort();
        }
    }
}

/*
 * The curve grows one connection's regions step by step; the target's
 * pair (64 against 65,536 live) then alternates between that connection
 * and a second one holding 64, run by run, and takes the median of the
 * paired ratios, so that load from elsewhere hits both sides alike.
 */
static double measure(const char *tag, io_connect_t c, io_connect_t c64,
                      int iters, FILE *data)
{
    double pair[RUNS], big[RUNS], small[RUNS];
    uint32_t have64 = 0;
    double cost[NPOINTS], runs[RUNS];
    uint32_t have = 0;
    size_t p;
    char name[64];
    int r;

    apple_dext_claim(c);
    op_cost(c, 100);
    for (p = 0; p < NPOINTS; p++) {
        /* The probe region is one of the live ones while it exists. */
        fill_to(c, &have, live_points[p] - 1);
        for (r = 0; r < RUNS; r++) {
            runs[r] = op_cost(c, iters);
        }
        cost[p] = bench_median(runs, RUNS);
        printf("# %s: %u live regions: %.0f ns per register+unregister\n",
               tag, live_points[p], cost[p]);
        if (data != NULL) {
            fprintf(data, "%s %u %.1f\n", tag, live_points[p], cost[p]);
        }
    }
    apple_dext_claim(c64);
    fill_to(c64, &have64, 63);
    for (r = 0; r < RUNS; r++) {
        small[r] = op_cost(c64, iters);
        big[r] = op_cost(c, iters);
        pair[r] = big[r] / small[r];
    }
    snprintf(name, sizeof(name), "dma_table_65536_vs_64_%s_ns", tag);
    bench_report(name, bench_median(big, RUNS), "ns",
                 bench_median(small, RUNS), bench_median(pair, RUNS),
                 BENCH_AT_MOST, 1.5);
    return bench_median(big, RUNS);
}

typedef struct Slot {
    uint64_t iova, va, size;
    bool used;
} Slot;

static double linear_scan_cost(void)
{
    Slot *t = calloc(MAX_LIVE, sizeof(*t));
    double runs[RUNS];
    uint32_t i;
    int r, k;

    for (i = 0; i + 1 < MAX_LIVE; i++) {
        t[i] = (Slot){ (uint64_t)i * 0x10000, 0x1000, SLOT, true };
    }
    for (r = 0; r < RUNS; r++) {
        uint64_t t0 = bench_now_ns();

        for (k = 0; k < 200; k++) {
            volatile uint64_t iova = PROBE_IOVA;
            int64_t free_slot = -1;

            /* Register: refuse a duplicate, take the first free slot. */
            for (i = 0; i < MAX_LIVE; i++) {
                if (t[i].used && t[i].iova == iova) {
                    abort();
                }
                if (!t[i].used && free_slot < 0) {
                    free_slot = i;
                }
            }
            t[free_slot] = (Slot){ iova, 0x1000, SLOT, true };
            /* Unregister: find it. */
            for (i = 0; i < MAX_LIVE; i++) {
                if (t[i].used && t[i].iova == iova) {
                    t[i].used = false;
                    break;
                }
            }
        }
        runs[r] = (double)(bench_now_ns() - t0) / 200;
    }
    free(t);
    return bench_median(runs, RUNS);
}

int main(int argc, char **argv)
{
    io_connect_t c, c64, ci = IO_OBJECT_NULL, ci64 = IO_OBJECT_NULL;
    FILE *data;
    double ours;

    /* One placement for dextd and every baseline peer: see bench.h. */
    bench_pin(0);
    harness_init(argc, argv, "ivshmem");
    mem = mmap(NULL, SLOT * SLOTS, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    c = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    c64 = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    if (mem == MAP_FAILED || c == IO_OBJECT_NULL || c64 == IO_OBJECT_NULL ||
        apple_dext_connect_target("inproc:ivshmem", IVSHMEM_BUS, IVSHMEM_DEV,
                                  IVSHMEM_FN, &ci) != kIOReturnSuccess ||
        apple_dext_connect_target("inproc:ivshmem", IVSHMEM_BUS, IVSHMEM_DEV,
                                  IVSHMEM_FN, &ci64) != kIOReturnSuccess) {
        return harness_finish();
    }
    data = bench_data("dma-table.dat");
    ours = measure("inproc", ci, ci64, 20000, data);
    measure("unix", c, c64, 3000, data);
    if (data != NULL) {
        fclose(data);
    }
    {
        double scan = linear_scan_cost();

        /* How much the flat table would cost at 65,536 live regions. */
        bench_report("dma_table_linear_scan_65536_ns", scan, "ns", ours,
                     scan / ours, BENCH_INFO, 0);
    }
    apple_dext_disconnect(ci64);
    apple_dext_disconnect(ci);
    apple_dext_disconnect(c64);
    apple_dext_disconnect(c);
    return harness_finish();
}
