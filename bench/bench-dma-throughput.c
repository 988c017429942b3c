/*
 * SPDX-License-Identifier: MIT
 *
 * Device DMA throughput: ivshmem's DMA engine copying from its shared
 * memory (BAR2) into registered client memory, and back, against memcpy
 * of the same size in the client.  Each transfer is one MMIO write (the
 * command register) whose reply comes once the copy is done, so the
 * figure includes one round trip per transfer.  Over dextd the copy is a
 * process_vm_writev/readv into the client; in-process it is the same
 * call on our own pid.
 */

#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"
#include "harness.h"
#include "ivshmem.h"

#define RUNS 7
#define SIZE (4u << 20)
#define IOVA 0x40000000ull

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

static double run_memcpy(uint8_t *dst, const uint8_t *src, int reps)
{
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < reps; i++) {
        memcpy(dst, src, SIZE);
        __asm__ volatile("" ::: "memory");
    }
    return (double)(bench_now_ns() - t0) / reps;
}

static void measure(const char *tag, io_connect_t c, uint8_t *buf,
                    const uint8_t *src)
{
    double to[RUNS], from[RUNS], mc[RUNS], t, f, m;
    uint64_t bus = 0, cmd = 0;
    char name[64];
    int r;

    if (apple_dext_claim(c) != kIOReturnSuccess ||
        apple_dext_register_dma(c, IOVA, (uintptr_t)buf, SIZE, &bus, NULL) !=
        kIOReturnSuccess) {
        abort();
    }
    apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_SHM, 8, 0);
    apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_BUS, 8, bus);
    apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_LEN, 8, SIZE);
    run_dma(c, IVSHMEM_DMA_RUN | IVSHMEM_DMA_TO_BUS, 3);
    apple_dext_mmio_read(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4, &cmd);
    if (cmd & IVSHMEM_DMA_ERROR) {
        abort();
    }
    for (r = 0; r < RUNS; r++) {
        to[r] = run_dma(c, IVSHMEM_DMA_RUN | IVSHMEM_DMA_TO_BUS, 20);
        from[r] = run_dma(c, IVSHMEM_DMA_RUN, 20);
        mc[r] = run_memcpy(buf, src, 20);
    }
    t = SIZE / bench_median(to, RUNS) * 1e9 / 1e6;
    f = SIZE / bench_median(from, RUNS) * 1e9 / 1e6;
    m = SIZE / bench_median(mc, RUNS) * 1e9 / 1e6;
    snprintf(name, sizeof(name), "dma_to_client_4MiB_%s_MBps", tag);
    bench_report(name, t, "MB/s", m, t / m, BENCH_INFO, 0);
    snprintf(name, sizeof(name), "dma_from_client_4MiB_%s_MBps", tag);
    bench_report(name, f, "MB/s", m, f / m, BENCH_INFO, 0);
    apple_dext_unregister_dma(c, IOVA);
}

int main(int argc, char **argv)
{
    io_connect_t c, ci = IO_OBJECT_NULL;
    uint8_t *buf, *src;

    /* One placement for dextd and every baseline peer: see bench.h. */
    bench_pin(0);
    harness_init(argc, argv, "ivshmem");
    buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    src = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    c = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    if (buf == MAP_FAILED || src == MAP_FAILED || c == IO_OBJECT_NULL ||
        apple_dext_connect_target("inproc:ivshmem", IVSHMEM_BUS, IVSHMEM_DEV,
                                  IVSHMEM_FN, &ci) != kIOReturnSuccess) {
        return harness_finish();
    }
    memset(src, 0x5a, SIZE);
    measure("unix", c, buf, src);
    measure("inproc", ci, buf, src);
    apple_dext_disconnect(ci);
    apple_dext_disconnect(c);
    return harness_finish();
}
