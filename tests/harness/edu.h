/*
 * SPDX-License-Identifier: MIT
 *
 * Driving the emulated QEMU "edu" device through the public MMIO calls.
 *
 * Register layout from QEMU docs/specs/edu.rst.  Every helper checks the
 * IOReturn of each access (a failure is reported at the caller's line)
 * and every wait for the device's worker thread is bounded by
 * HARNESS_WAIT_MS.
 */

#ifndef LIBDEXT_TESTS_EDU_H
#define LIBDEXT_TESTS_EDU_H

#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "libdext/edu.h"

/* GetBARInfo's memory index of BAR0 (the only BAR). */
#define EDU_MEM_IDX        0

uint32_t edu_read32_at(io_connect_t c, uint64_t off, const char *file,
                       int line);
void edu_write32_at(io_connect_t c, uint64_t off, uint32_t val,
                    const char *file, int line);
uint64_t edu_read64_at(io_connect_t c, uint64_t off, const char *file,
                       int line);
void edu_write64_at(io_connect_t c, uint64_t off, uint64_t val,
                    const char *file, int line);
bool edu_wait_clear_at(io_connect_t c, uint64_t off, uint64_t width,
                       uint64_t mask, const char *file, int line);
bool edu_factorial_at(io_connect_t c, uint32_t n, uint32_t *result,
                      const char *file, int line);
bool edu_dma_at(io_connect_t c, uint64_t src, uint64_t dst, uint64_t count,
                uint64_t cmd, const char *file, int line);

/* A 4-byte register read; 0xdeadbeef after a failed (reported) call. */
#define edu_read32(c, off) edu_read32_at((c), (off), __FILE__, __LINE__)
#define edu_write32(c, off, val) \
    edu_write32_at((c), (off), (val), __FILE__, __LINE__)
#define edu_read64(c, off) edu_read64_at((c), (off), __FILE__, __LINE__)
#define edu_write64(c, off, val) \
    edu_write64_at((c), (off), (val), __FILE__, __LINE__)

/* Poll until (register & @mask) == 0, for at most HARNESS_WAIT_MS. */
#define edu_wait_clear(c, off, width, mask) \
    edu_wait_clear_at((c), (off), (width), (mask), __FILE__, __LINE__)

/* Compute n! on the device, polling the status register. */
#define edu_factorial(c, n, result) \
    edu_factorial_at((c), (n), (result), __FILE__, __LINE__)

/*
 * Program one transfer and poll the command register until the device
 * clears EDU_DMA_RUN.  @cmd: EDU_DMA_RUN is added; EDU_DMA_TO_RAM for
 * device buffer -> RAM.  @src/@dst: bus addresses on the RAM side.
 */
#define edu_dma(c, src, dst, count, cmd) \
    edu_dma_at((c), (src), (dst), (count), (cmd), __FILE__, __LINE__)

#endif /* LIBDEXT_TESTS_EDU_H */
