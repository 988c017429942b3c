/*
 * SPDX-License-Identifier: MIT
 *
 * edu register helpers for the API tests.  See edu.h.
 */

#include <inttypes.h>

#include "edu.h"

uint32_t edu_read32_at(io_connect_t c, uint64_t off, const char *file,
                       int line)
{
    uint64_t v = 0;

    if (!harness_check_kr(apple_dext_mmio_read(c, EDU_MEM_IDX, off, 4, &v),
                          kIOReturnSuccess, file, line, "edu_read32")) {
        return 0xdeadbeef;
    }
    return (uint32_t)v;
}

void edu_write32_at(io_connect_t c, uint64_t off, uint32_t val,
                    const char *file, int line)
{
    harness_check_kr(apple_dext_mmio_write(c, EDU_MEM_IDX, off, 4, val),
                     kIOReturnSuccess, file, line, "edu_write32");
}

uint64_t edu_read64_at(io_connect_t c, uint64_t off, const char *file,
                       int line)
{
    uint64_t v = 0;

    if (!harness_check_kr(apple_dext_mmio_read(c, EDU_MEM_IDX, off, 8, &v),
                          kIOReturnSuccess, file, line, "edu_read64")) {
        return 0xdeadbeefdeadbeefull;
    }
    return v;
}

void edu_write64_at(io_connect_t c, uint64_t off, uint64_t val,
                    const char *file, int line)
{
    harness_check_kr(apple_dext_mmio_write(c, EDU_MEM_IDX, off, 8, val),
                     kIOReturnSuccess, file, line, "edu_write64");
}

bool edu_wait_clear_at(io_connect_t c, uint64_t off, uint64_t width,
                       uint64_t mask, const char *file, int line)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;
    uint64_t v = 0;

    for (;;) {
        kern_return_t kr = apple_dext_mmio_read(c, EDU_MEM_IDX, off, width,
                                                &v);

        if (kr != kIOReturnSuccess) {
            return harness_check_kr(kr, kIOReturnSuccess, file, line,
                                    "edu_wait_clear: mmio read");
        }
        if ((v & mask) == 0) {
            return harness_check(true, file, line, "edu_wait_clear");
        }
        if (harness_expired(&d)) {
            return harness_check(false, file, line,
                                 "register 0x%" PRIx64 " still 0x%" PRIx64
                                 " (mask 0x%" PRIx64 ") after %u ms", off, v,
                                 mask, HARNESS_WAIT_MS);
        }
        harness_backoff(&round);
    }
}

bool edu_factorial_at(io_connect_t c, uint32_t n, uint32_t *result,
                      const char *file, int line)
{
    edu_write32_at(c, EDU_REG_FACTORIAL, n, file, line);
    if (!edu_wait_clear_at(c, EDU_REG_STATUS, 4, EDU_STATUS_COMPUTING, file,
                           line)) {
        return false;
    }
    *result = edu_read32_at(c, EDU_REG_FACTORIAL, file, line);
    return true;
}

bool edu_dma_at(io_connect_t c, uint64_t src, uint64_t dst, uint64_t count,
                uint64_t cmd, const char *file, int line)
{
    /* A transfer still running would make the engine ignore these. */
    if (!edu_wait_clear_at(c, EDU_REG_DMA_CMD, 8, EDU_DMA_RUN, file, line)) {
        return false;
    }
    edu_write64_at(c, EDU_REG_DMA_SRC, src, file, line);
    edu_write64_at(c, EDU_REG_DMA_DST, dst, file, line);
    edu_write64_at(c, EDU_REG_DMA_COUNT, count, file, line);
    edu_write64_at(c, EDU_REG_DMA_CMD, cmd | EDU_DMA_RUN, file, line);
    return edu_wait_clear_at(c, EDU_REG_DMA_CMD, 8, EDU_DMA_RUN, file, line);
}
