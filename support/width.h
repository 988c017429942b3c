/*
 * SPDX-License-Identifier: MIT
 *
 * Splitting a byte range into naturally aligned accesses, as the dext
 * splits a block of config space: shared by the core (block config
 * access) and the library (the per-access fallback for dexts without it).
 */

#ifndef LIBDEXT_SUPPORT_WIDTH_H
#define LIBDEXT_SUPPORT_WIDTH_H

#include <stdint.h>

/**
 * dext_access_width() - the widest aligned access at @off within @len
 * @off: offset of the next access
 * @len: bytes left, at least 1
 * @max: the widest access allowed, a power of two (4 for config space)
 *
 * Return: a power of two <= @max and <= @len that divides @off.
 */
static inline uint32_t dext_access_width(uint64_t off, uint64_t len,
                                         uint32_t max)
{
    uint32_t width = max;

    while ((off & (width - 1)) != 0 || width > len) {
        width >>= 1;
    }
    return width;
}

#endif /* LIBDEXT_SUPPORT_WIDTH_H */
