/*
 * SPDX-License-Identifier: MIT
 *
 * Full 4 KiB config space read: the seed's one ConfigRead call per dword
 * (1024 round trips) against one ConfigReadBlock call, over dextd.  Also
 * the same over the in-process transport, for reference.
 */

#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "harness.h"
#include "ivshmem.h"

#define RUNS 9
#define SPACE 4096u

static uint8_t buf[SPACE];

static double per_dword(io_connect_t c, int reps)
{
    uint64_t t0 = bench_now_ns();
    uint64_t v;
    uint32_t off;
    int i;

    for (i = 0; i < reps; i++) {
        for (off = 0; off < SPACE; off += 4) {
            if (apple_dext_config_read(c, off, 4, &v) != kIOReturnSuccess) {
                abort();
            }
            memcpy(buf + off, &v, 4);
        }
    }
    return (double)(bench_now_ns() - t0) / reps;
}

static double block(io_connect_t c, int reps)
{
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < reps; i++) {
        if (apple_dext_config_read_block(c, 0, buf, SPACE) !=
            kIOReturnSuccess) {
            abort();
        }
    }
    return (double)(bench_now_ns() - t0) / reps;
}

static void measure(const char *name, io_connect_t c, int dword_reps,
                    int block_reps, BenchTarget kind)
{
    double d[RUNS], b[RUNS], md, mb;
    int r;

    per_dword(c, 1);
    block(c, 10);
    for (r = 0; r < RUNS; r++) {
        d[r] = per_dword(c, dword_reps);
        b[r] = block(c, block_reps);
    }
    md = bench_median(d, RUNS);
    mb = bench_median(b, RUNS);
    /* The ratio is the speed-up of the block call. */
    bench_report(name, mb, "ns", md, md / mb, kind, 50);
}

int main(int argc, char **argv)
{
    io_connect_t c, ci = IO_OBJECT_NULL;

    /* One placement for dextd and every baseline peer: see bench.h. */
    bench_pin(0);
    harness_init(argc, argv, "ivshmem");
    c = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    if (c == IO_OBJECT_NULL ||
        apple_dext_connect_target("inproc:ivshmem", IVSHMEM_BUS, IVSHMEM_DEV,
                                  IVSHMEM_FN, &ci) != kIOReturnSuccess) {
        return harness_finish();
    }
    measure("config_4k_block_unix_ns", c, 3, 300, BENCH_AT_LEAST);
    measure("config_4k_block_inproc_ns", ci, 50, 2000, BENCH_INFO);
    apple_dext_disconnect(ci);
    apple_dext_disconnect(c);
    return harness_finish();
}
