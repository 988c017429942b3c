/*
 * SPDX-License-Identifier: MIT
 *
 * One load or store of exactly the requested width on a mapped BAR:
 * device registers care about the width (a 64-bit register read as two
 * halves, or a 16-bit access widened to 32, is another access), so these
 * are volatile and never split or merged.  For backends that reach real
 * BARs through a mapping (host-sysfs, vfio).
 */

#ifndef LIBDEXT_BACKENDS_MMIO_ACCESS_H
#define LIBDEXT_BACKENDS_MMIO_ACCESS_H

#include <stdint.h>

/* Load @width (1, 2, 4 or 8) bytes at @p, naturally aligned. */
static inline uint64_t dext_mmio_load(volatile uint8_t *p, uint32_t width)
{
    switch (width) {
    case 1:
        return *(volatile uint8_t *)p;
    case 2:
        return *(volatile uint16_t *)p;
    case 4:
        return *(volatile uint32_t *)p;
    default:
        return *(volatile uint64_t *)p;
    }
}

/* Store the low @width (1, 2, 4 or 8) bytes of @val at @p. */
static inline void dext_mmio_store(volatile uint8_t *p, uint32_t width,
                                   uint64_t val)
{
    switch (width) {
    case 1:
        *(volatile uint8_t *)p = (uint8_t)val;
        break;
    case 2:
        *(volatile uint16_t *)p = (uint16_t)val;
        break;
    case 4:
        *(volatile uint32_t *)p = (uint32_t)val;
        break;
    default:
        *(volatile uint64_t *)p = val;
        break;
    }
}

#endif /* LIBDEXT_BACKENDS_MMIO_ACCESS_H */
