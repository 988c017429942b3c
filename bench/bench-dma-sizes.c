/*
 * SPDX-License-Identifier: MIT
 *
 * Device DMA throughput by transfer size, 4 KiB to 64 MiB, for each path
 * into client memory, against memcpy() of the same size in the same run
 * (warm caches: each transfer repeated back to back).  For the plot in
 * docs/performance.md; bench-dma-throughput has the 4 MiB targets.
 *
 * Each point registers a region of exactly the transfer's size, so the
 * path is the one a client registering that much gets:
 *  - unix_shared: a memfd; dextd maps regions of DEXT_DMA_MAP_MIN
 *    (64 KiB) and more and copies with memcpy(), smaller ones go through
 *    process_vm_writev() like private memory;
 *  - unix_private: anonymous private memory (process_vm_writev());
 *  - inproc_private: the same in process.
 * Every transfer is one MMIO write whose reply comes once the copy is
 * done, so small sizes show the round trip and large ones the copy.
 */

#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "harness.h"
#include "ivshmem.h"

#define MAX_SIZE (64u << 20)
#define DEVICE   "ivshmem,size=64M"
#define IOVA     0x40000000ull
#define RUNS     5
#define BYTES_PER_RUN (128ull << 20)    /* copied per run and size */
#define MAX_REPS 4000

typedef struct Path {
    const char *name;
    io_connect_t c;
    uint8_t *buf;
} Path;

static double run_dma(io_connect_t c, int reps)
{
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < reps; i++) {
        if (apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4,
                                  IVSHMEM_DMA_RUN | IVSHMEM_DMA_TO_BUS) !=
            kIOReturnSuccess) {
            abort();
        }
    }
    return (double)(bench_now_ns() - t0) / reps;
}

/* Point the DMA engine at a fresh region of @size at the start of @buf. */
static bool setup(io_connect_t c, uint8_t *buf, size_t size)
{
    uint64_t bus = 0, cmd = 0;

    if (apple_dext_register_dma(c, IOVA, (uintptr_t)buf, size, &bus,
                                NULL) != kIOReturnSuccess) {
        return false;
    }
    apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_SHM, 8, 0);
    apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_BUS, 8, bus);
    apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_LEN, 8, size);
    run_dma(c, 2);
    apple_dext_mmio_read(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4, &cmd);
    return !(cmd & IVSHMEM_DMA_ERROR);
}

static void *map_anon(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static void *map_memfd(size_t size)
{
    int fd = memfd_create("bench-dma-sizes", MFD_CLOEXEC);
    void *p = MAP_FAILED;

    if (fd >= 0 && ftruncate(fd, (off_t)size) == 0) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_POPULATE, fd, 0);
    }
    if (fd >= 0) {
        close(fd);
    }
    return p == MAP_FAILED ? NULL : p;
}

static void measure(const Path *p, uint8_t *other, FILE *dat)
{
    size_t size;

    for (size = 4096; size <= MAX_SIZE; size *= 4) {
        uint64_t want = BYTES_PER_RUN / size;
        int reps = want > MAX_REPS ? MAX_REPS : (int)want;
        double d[RUNS], m[RUNS], ratio[RUNS], dm, mm;
        int r;

        if (!setup(p->c, p->buf, size)) {
            fprintf(stderr, "%s: cannot DMA %zu bytes\n", p->name, size);
            abort();
        }
        for (r = 0; r < RUNS; r++) {
            d[r] = run_dma(p->c, reps);
            m[r] = bench_memcpy_ns(p->buf, other, size, reps);
            ratio[r] = m[r] / d[r];
        }
        apple_dext_unregister_dma(p->c, IOVA);
        dm = size / bench_median(d, RUNS) * 1e3;
        mm = size / bench_median(m, RUNS) * 1e3;
        if (dat != NULL) {
            fprintf(dat, "%s %zu %.1f %.1f\n", p->name, size, dm, mm);
        }
        if (size == 4096 || size == (64u << 10) || size == (1u << 20) ||
            size == MAX_SIZE) {
            char name[96];

            snprintf(name, sizeof(name), "dma_sizes_%s_%zuKiB_MBps",
                     p->name, size >> 10);
            bench_report(name, dm, "MB/s", mm, bench_median(ratio, RUNS),
                         BENCH_INFO, 0);
        }
    }
}

int main(int argc, char **argv)
{
    uint8_t *priv, *shared, *other;
    io_connect_t c, ci = IO_OBJECT_NULL;
    FILE *dat;

    /* One placement for dextd and every baseline peer: see bench.h. */
    bench_pin(0);
    harness_init(argc, argv, DEVICE);
    priv = map_anon(MAX_SIZE);
    other = map_anon(MAX_SIZE);
    shared = map_memfd(MAX_SIZE);
    c = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    if (priv == NULL || other == NULL || shared == NULL ||
        c == IO_OBJECT_NULL ||
        apple_dext_connect_target("inproc:" DEVICE, IVSHMEM_BUS,
                                  IVSHMEM_DEV, IVSHMEM_FN, &ci) !=
        kIOReturnSuccess ||
        apple_dext_claim(c) != kIOReturnSuccess ||
        apple_dext_claim(ci) != kIOReturnSuccess) {
        return harness_finish();
    }
    memset(other, 0x5a, MAX_SIZE);
    dat = bench_data("dma-sizes.dat");
    {
        const Path paths[] = {
            { "unix_shared", c, shared },
            { "unix_private", c, priv },
            { "inproc_private", ci, priv },
        };
        size_t i;

        for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            measure(&paths[i], other, dat);
        }
    }
    if (dat != NULL) {
        fclose(dat);
    }
    apple_dext_disconnect(ci);
    apple_dext_disconnect(c);
    return harness_finish();
}
