/*
 * SPDX-License-Identifier: MIT
 *
 * A bus-address (IOVA) allocator in the manner of Apple's DART: addresses
 * are handed out in whole pages from a window [base, limit], lowest
 * address first, and freed ranges coalesce with their neighbours.
 *
 * The free space is a RangeTree of maximal free ranges, so allocation
 * (first fit), free (with coalescing) and double-free detection are all
 * O(log n) in the number of free ranges.
 *
 * Not thread safe: the owner locks.
 */

#ifndef LIBDEXT_IOVA_H
#define LIBDEXT_IOVA_H

#include <stdint.h>

#include "libdext/ioreturn.h"
#include "core/rangetree.h"

/**
 * struct IovaSpace - one bus address space.
 * @free: maximal free ranges, never adjacent to each other
 * @base: lowest address of the window
 * @limit: highest address of the window, inclusive, as given to init
 * @page: allocation granularity
 * @free_bytes: sum of the free ranges' lengths
 * @last: highest usable address, inclusive: @limit trimmed to a page end
 * @total_bytes: usable size of the window
 */
typedef struct IovaSpace {
    RangeTree free;
    uint64_t base, limit, page;
    uint64_t free_bytes;
    uint64_t last;
    uint64_t total_bytes;
} IovaSpace;

/**
 * dext_iova_space_init() - set up an empty window
 * @s: the space
 * @base: first address, a multiple of @page
 * @limit: last address, inclusive (e.g. the device's DMA mask); a partial
 *         page at the top is not used
 * @page: granularity, a power of two
 *
 * A window covering all 2^64 addresses loses its top page, so that every
 * size stays representable in 64 bits.
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a bad @page, an
 * unaligned @base, or a window holding no whole page; kIOReturnNoMemory
 * if the first free range cannot be allocated.
 */
IOReturn dext_iova_space_init(IovaSpace *s, uint64_t base, uint64_t limit,
                              uint64_t page);

/**
 * dext_iova_space_destroy() - free the allocator's own memory
 * @s: the space; outstanding allocations are simply forgotten
 */
void dext_iova_space_destroy(IovaSpace *s);

/**
 * dext_iova_alloc() - allocate bus addresses, lowest fit first
 * @s: the space
 * @size: bytes, rounded up to whole pages
 * @align: alignment, a power of two; 0 or anything below the page size
 *         means page alignment
 * @out_addr: receives the address
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a zero @size or an
 * @align that is not a power of two; kIOReturnNoResources if fewer than
 * the rounded size bytes are free in all (or memory is short);
 * kIOReturnNotAligned if enough bytes are free but no free range holds
 * an aligned block of that size.
 */
IOReturn dext_iova_alloc(IovaSpace *s, uint64_t size, uint64_t align,
                         uint64_t *out_addr);

/**
 * dext_iova_alloc_at() - allocate given bus addresses
 * @s: the space
 * @addr: first address, a multiple of the page size
 * @size: bytes, rounded up to whole pages
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a zero @size or an
 * unaligned @addr; kIOReturnNoResources if the range leaves the window
 * (or memory is short); kIOReturnBusy if any of its pages is allocated.
 */
IOReturn dext_iova_alloc_at(IovaSpace *s, uint64_t addr, uint64_t size);

/**
 * dext_iova_free() - return bus addresses to the space
 * @s: the space
 * @addr: address from dext_iova_alloc()
 * @size: size as given to dext_iova_alloc() (rounded the same way)
 *
 * Frees may split or join allocations freely.  A free that overlaps free
 * space (a double free), leaves the window or is not page aligned is
 * ignored.  If memory for a new free range cannot be allocated the pages
 * stay allocated: leaked, but never handed out twice.
 */
void dext_iova_free(IovaSpace *s, uint64_t addr, uint64_t size);

/**
 * dext_iova_free_bytes() - bytes currently free
 * @s: the space
 *
 * Return: the free byte count.
 */
uint64_t dext_iova_free_bytes(const IovaSpace *s);

#endif /* LIBDEXT_IOVA_H */
