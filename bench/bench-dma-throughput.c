/*
 * SPDX-License-Identifier: MIT
 *
 * Device DMA throughput: ivshmem's DMA engine copying 4 MiB from its
 * shared memory (BAR2) into registered client memory, and back, against
 * memcpy() of the same size in the client, in the same run.  Each
 * transfer is one MMIO write (the command register) whose reply comes
 * once the copy is done, so the figure includes one round trip.
 *
 * Three paths:
 *  - "unix_shared": the client's memory is a memfd; dextd maps the file
 *    at registration and copies with memcpy() (core/dma.c).  Target:
 *    at least 0.9x memcpy, warm and cold (evicted: reported).
 *  - "unix_private": anonymous private memory; dextd copies with
 *    process_vm_writev/readv, the fallback.
 *  - "inproc_private": the same call on our own pid, in-process.
 *
 * Three cache states, each run alternating DMA and memcpy:
 *  - warm: the transfer repeated back to back (both 4 MiB ends fit the
 *    last-level cache);
 *  - cold: before each transfer (and each memcpy) both ends of the copy
 *    are flushed from every cache level (clflush: BAR2 through our own
 *    mapping of it, which is the same memory), so the data comes from
 *    DRAM while the code and the call path stay as they were;
 *  - evicted: before each, the client writes a buffer four times the
 *    last-level cache, which also evicts the code and data of the call
 *    path (the MMIO call's hand-off to dextd and back).
 * The ratio is the median of the ratios of adjacent runs (DMA, then
 * memcpy).  Then the fixed cost per transfer: 4 KiB transfers against an
 * MMIO read (the bare round trip).
 *
 * A transfer is one call, so its ratio can reach at most
 * memcpy / (memcpy + one call), the call made right after a copy of
 * 4 MiB went through the caches: where such a call costs 24 us and
 * memcpy of 4 MiB 90 us, 0.79.  Each run times one MMIO read after its
 * memcpy, and for the target's path a "_vs_call_cap" line (target none)
 * gives that bound (baseline) and how much of it the transfer reaches
 * (ratio).
 *
 * Each DMA is a hand-off to dextd and back; on a machine that is not
 * quiet every hand-off is a chance to lose the CPU to another task for a
 * time slice, which memcpy() never risks.  So each figure of the mapped
 * path is followed by a "_best" line (target none): the fastest DMA run
 * against the fastest memcpy run, what each path can do when nothing
 * else gets in the way.
 */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>
#endif

#include "bench.h"
#include "harness.h"
#include "ivshmem.h"

#define RUNS_WARM 15
#define RUNS_COLD 15
#define REPS_WARM 10
#define SIZE (4u << 20)
#define EVICT (128u << 20)
#define IOVA 0x40000000ull

typedef enum CacheState { WARM, COLD, EVICTED } CacheState;

static const char *const state_names[] = { "warm", "cold", "evicted" };

static uint8_t *evict_buf;
static uint8_t *bar2;           /* the unix connection's BAR2, mapped */
static uint8_t *bar2_inproc;    /* the in-process device's */

/* Push both ends of the next copy out of every cache level. */
static void evict(void)
{
    size_t i;

    for (i = 0; i < EVICT; i += 64) {
        evict_buf[i]++;
    }
    __asm__ volatile("" ::: "memory");
}

/* Flush [p, p + SIZE) from every cache level; evict() where no clflush. */
static void flush(const uint8_t *p)
{
#if defined(__x86_64__) || defined(__i386__)
    size_t i;

    for (i = 0; i < SIZE; i += 64) {
        _mm_clflush(p + i);
    }
    _mm_mfence();
#else
    (void)p;
    evict();
#endif
}

/* Mean ns of one MMIO read call: the bare hand-off of a transfer. */
static double run_call(io_connect_t c, int reps)
{
    uint64_t v, t0 = bench_now_ns();
    int i;

    for (i = 0; i < reps; i++) {
        apple_dext_mmio_read(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4, &v);
    }
    return (double)(bench_now_ns() - t0) / reps;
}

static double run_dma(io_connect_t c, uint32_t cmd, int reps)
{
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < reps; i++) {
        if (apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4,
                                  cmd) != kIOReturnSuccess) {
            abort();
        }
    }
    return (double)(bench_now_ns() - t0) / reps;
}

/*
 * One direction in one cache state: @to says BAR2 -> client (memcpy from
 * @other into @buf) or client -> BAR2 (memcpy from @buf into @other).
 * @shm is BAR2 as this process maps it (for COLD).
 */
static void measure_one(const char *tag, io_connect_t c, uint8_t *buf,
                        uint8_t *other, const uint8_t *shm, bool to,
                        CacheState cs, BenchTarget kind)
{
    uint32_t cmd = IVSHMEM_DMA_RUN | (to ? IVSHMEM_DMA_TO_BUS : 0);
    int runs = cs == WARM ? RUNS_WARM : RUNS_COLD;
    int reps = cs == WARM ? REPS_WARM : 1;
    double d[RUNS_WARM], m[RUNS_WARM], ratio[RUNS_WARM], dm, mm;
    double cap[RUNS_WARM], of_cap[RUNS_WARM];
    double db = 0, mb = 0;
    char name[96];
    int r;

    for (r = 0; r < runs; r++) {
        if (cs == COLD) {
            flush(shm);
            flush(buf);
        } else if (cs == EVICTED) {
            evict();
        }
        d[r] = run_dma(c, cmd, reps);
        if (cs == COLD) {
            flush(other);
            flush(buf);
        } else if (cs == EVICTED) {
            evict();
        }
        m[r] = to ? bench_memcpy_ns(buf, other, SIZE, reps)
                  : bench_memcpy_ns(other, buf, SIZE, reps);
        ratio[r] = m[r] / d[r];
        /*
         * What one synchronous call per transfer allows at best: the
         * copy at memcpy's speed plus one call that copies nothing, made
         * right after the memcpy as a transfer's call comes right after
         * its copy (8 MiB through the caches costs a call ~50 % more
         * than a warm one).  Last, so the next run's flush follows.
         */
        if (kind != BENCH_INFO) {
            cap[r] = m[r] / (m[r] + run_call(c, 1));
            of_cap[r] = ratio[r] / cap[r];
        }
        db = r == 0 || d[r] < db ? d[r] : db;
        mb = r == 0 || m[r] < mb ? m[r] : mb;
    }
    dm = SIZE / bench_median(d, runs) * 1e9 / 1e6;
    mm = SIZE / bench_median(m, runs) * 1e9 / 1e6;
    snprintf(name, sizeof(name), "dma_%s_client_4MiB_%s_%s_MBps",
             to ? "to" : "from", tag, state_names[cs]);
    bench_report(name, dm, "MB/s", mm, bench_median(ratio, runs),
                 cs == EVICTED ? BENCH_INFO : kind,
                 kind == BENCH_INFO || cs == EVICTED ? 0 : 0.9);
    if (kind == BENCH_INFO) {
        return;
    }
    if (cs != EVICTED) {
        snprintf(name, sizeof(name), "dma_%s_client_4MiB_%s_%s_vs_call_cap",
                 to ? "to" : "from", tag, state_names[cs]);
        bench_report(name, bench_median(ratio, runs), "ratio",
                     bench_median(cap, runs), bench_median(of_cap, runs),
                     BENCH_INFO, 0);
    }
    snprintf(name, sizeof(name), "dma_%s_client_4MiB_%s_%s_best_MBps",
             to ? "to" : "from", tag, state_names[cs]);
    bench_report(name, SIZE / db * 1e3, "MB/s", SIZE / mb * 1e3, mb / db,
                 BENCH_INFO, 0);
}

/*
 * The fixed cost of one transfer: 4 KiB to the client, warm, per
 * transfer, against an MMIO read's round trip (a call that copies
 * nothing) in the same runs.
 */
static void measure_small(const char *tag, io_connect_t c)
{
    double d[RUNS_WARM], rt[RUNS_WARM];
    char name[96];
    int r;

    apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_LEN, 8, 4096);
    for (r = 0; r < RUNS_WARM; r++) {
        d[r] = run_dma(c, IVSHMEM_DMA_RUN | IVSHMEM_DMA_TO_BUS, 1000);
        rt[r] = run_call(c, 1000);
    }
    apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_LEN, 8, SIZE);
    snprintf(name, sizeof(name), "dma_to_client_4KiB_%s_ns", tag);
    bench_report(name, bench_median(d, RUNS_WARM), "ns",
                 bench_median(rt, RUNS_WARM),
                 bench_median(d, RUNS_WARM) / bench_median(rt, RUNS_WARM),
                 BENCH_INFO, 0);
}

static void measure(const char *tag, io_connect_t c, uint8_t *buf,
                    uint8_t *other, const uint8_t *shm, BenchTarget kind)
{
    uint64_t bus = 0, cmd = 0;
    CacheState cs;

    if (apple_dext_register_dma(c, IOVA, (uintptr_t)buf, SIZE, &bus, NULL) !=
        kIOReturnSuccess) {
        abort();
    }
    apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_SHM, 8, 0);
    apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_BUS, 8, bus);
    apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_LEN, 8, SIZE);
    run_dma(c, IVSHMEM_DMA_RUN | IVSHMEM_DMA_TO_BUS, 3);
    run_dma(c, IVSHMEM_DMA_RUN, 3);
    apple_dext_mmio_read(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4, &cmd);
    if (cmd & IVSHMEM_DMA_ERROR) {
        abort();
    }
    for (cs = WARM; cs <= EVICTED; cs++) {
        measure_one(tag, c, buf, other, shm, true, cs, kind);
        measure_one(tag, c, buf, other, shm, false, cs, kind);
    }
    measure_small(tag, c);
    apple_dext_unregister_dma(c, IOVA);
}

/*
 * The mapped path once more over the polled call ring, the client on
 * CPU 0 and every dextd thread on CPU 1 (as bench-poll places them):
 * each transfer's hand-off then costs a cache-line round trip instead of
 * two context switches, which tells the copy's own cost from the call
 * path's.  Information only: the target stays the socket path's, the
 * one every client gets.
 */
static void measure_polled(uint8_t *shared, uint8_t *other)
{
    pid_t server = harness_server_pid();
    char target[600];
    io_connect_t cp;

    if (!harness_is_unix() || !bench_pin_process(server, 1)) {
        printf("# polled cross-CPU DMA not measured: needs unix and two "
               "CPUs\n");
        return;
    }
    snprintf(target, sizeof(target), "%s%s", harness_target(),
             harness_is_polled() ? "" : ",poll");
    if (apple_dext_connect_target(target, IVSHMEM_BUS, IVSHMEM_DEV,
                                  IVSHMEM_FN, &cp) != kIOReturnSuccess ||
        apple_dext_claim(cp) != kIOReturnSuccess) {
        abort();
    }
    /* The ring's thread exists now: every dextd thread to CPU 1. */
    bench_pin_process(server, 1);
    measure("poll_shared_cross_cpu", cp, shared, other, bar2, BENCH_INFO);
    apple_dext_disconnect(cp);
    bench_pin_process(server, 0);
}

static void *map_anon(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

/* 4 MiB of a memfd, mapped shared: what dextd maps for itself. */
static void *map_shared(void)
{
    int fd = memfd_create("bench-dma", MFD_CLOEXEC);
    void *p;

    if (fd < 0 || ftruncate(fd, SIZE) != 0) {
        return NULL;
    }
    p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
             fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv)
{
    io_connect_t c, ci = IO_OBJECT_NULL;
    uint8_t *priv, *shared, *other;
    mach_vm_address_t a = 0, ai = 0;
    mach_vm_size_t n = 0, ni = 0;

    /* One placement for dextd and every baseline peer: see bench.h. */
    bench_pin(0);
    harness_init(argc, argv, "ivshmem");
    priv = map_anon(SIZE);
    other = map_anon(SIZE);
    evict_buf = map_anon(EVICT);
    shared = map_shared();
    c = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    if (priv == NULL || other == NULL || evict_buf == NULL ||
        shared == NULL || c == IO_OBJECT_NULL ||
        apple_dext_connect_target("inproc:ivshmem", IVSHMEM_BUS, IVSHMEM_DEV,
                                  IVSHMEM_FN, &ci) != kIOReturnSuccess ||
        apple_dext_claim(c) != kIOReturnSuccess ||
        apple_dext_claim(ci) != kIOReturnSuccess ||
        apple_dext_map_bar(c, IVSHMEM_MEM_SHM, &a, &n, NULL) !=
        kIOReturnSuccess ||
        apple_dext_map_bar(ci, IVSHMEM_MEM_SHM, &ai, &ni, NULL) !=
        kIOReturnSuccess || n < SIZE || ni < SIZE) {
        return harness_finish();
    }
    bar2 = (uint8_t *)(uintptr_t)a;
    bar2_inproc = (uint8_t *)(uintptr_t)ai;
    memset(other, 0x5a, SIZE);
    memset(shared, 0xa5, SIZE);
    measure("unix_shared", c, shared, other, bar2, BENCH_AT_LEAST);
    measure("unix_private", c, priv, other, bar2, BENCH_INFO);
    measure("inproc_private", ci, priv, other, bar2_inproc, BENCH_INFO);
    measure_polled(shared, other);
    apple_dext_disconnect(ci);
    apple_dext_disconnect(c);
    return harness_finish();
}
