/*
 * SPDX-License-Identifier: MIT
 *
 * DART-like bus address allocator over a RangeTree of free ranges.
 *
 * Invariant: the tree holds the free space as maximal ranges, page
 * aligned, inside [base, last], no two touching.  Keeping them maximal is
 * what lets a double free be caught by looking at two neighbours only.
 */

#include <stdlib.h>

#include "core/iova.h"

/* A free range.  Its own struct so the allocator can grow fields later. */
typedef struct IovaRange {
    RangeNode node;
} IovaRange;

static RangeNode *range_new(uint64_t start, uint64_t len)
{
    IovaRange *r = malloc(sizeof(*r));

    if (!r) {
        return NULL;
    }
    r->node.start = start;
    r->node.len = len;
    return &r->node;
}

static void range_delete(RangeNode *n, void *opaque)
{
    (void)opaque;
    free(RANGE_NODE_ENTRY(n, IovaRange, node));
}

static bool is_pow2(uint64_t x)
{
    return x && !(x & (x - 1));
}

/* Round @size up to whole pages; false if that passes 2^64. */
static bool round_to_page(const IovaSpace *s, uint64_t size, uint64_t *out)
{
    if (size > UINT64_MAX - (s->page - 1)) {
        return false;
    }
    *out = (size + s->page - 1) & ~(s->page - 1);
    return true;
}

IOReturn dext_iova_space_init(IovaSpace *s, uint64_t base, uint64_t limit,
                              uint64_t page)
{
    uint64_t span_m1, total;
    RangeNode *n;

    dext_range_tree_init(&s->free);
    s->base = base;
    s->limit = limit;
    s->page = page;
    s->free_bytes = 0;
    s->last = 0;
    s->total_bytes = 0;

    if (!is_pow2(page) || (base & (page - 1)) || limit < base) {
        return kIOReturnBadArgument;
    }
    /* limit - base is the span minus one, so a full window cannot wrap. */
    span_m1 = limit - base;
    if (span_m1 < page - 1) {
        return kIOReturnBadArgument;
    }
    total = (span_m1 - (page - 1)) / page * page + page;
    if (total == 0) {
        /* All 2^64 bytes: drop the top page so lengths fit in 64 bits. */
        total -= page;
    }
    n = range_new(base, total);
    if (!n) {
        return kIOReturnNoMemory;
    }
    dext_range_tree_insert(&s->free, n);
    s->last = base + (total - 1);
    s->total_bytes = total;
    s->free_bytes = total;
    return kIOReturnSuccess;
}

void dext_iova_space_destroy(IovaSpace *s)
{
    dext_range_tree_clear(&s->free, range_delete, NULL);
    s->free_bytes = 0;
}

/*
 * Take [addr, addr + rounded) out of the free range @n, which holds it:
 * what is left of @n before and after stays free.
 */
static IOReturn carve(IovaSpace *s, RangeNode *n, uint64_t addr,
                      uint64_t rounded)
{
    uint64_t head, tail;
    RangeNode *tail_node = NULL;

    head = addr - n->start;
    tail = n->len - head - rounded;
    if (head && tail) {
        /* Allocate before touching the tree so failure changes nothing. */
        tail_node = range_new(addr + rounded, tail);
        if (!tail_node) {
            return kIOReturnNoResources;
        }
    }

    if (head) {
        dext_range_tree_update_len(&s->free, n, head);
        if (tail_node) {
            dext_range_tree_insert(&s->free, tail_node);
        }
    } else if (tail) {
        /* Shrinking from below keeps n between its neighbours. */
        dext_range_tree_update_range(&s->free, n, addr + rounded, tail);
    } else {
        dext_range_tree_remove(&s->free, n);
        range_delete(n, NULL);
    }
    s->free_bytes -= rounded;
    return kIOReturnSuccess;
}

IOReturn dext_iova_alloc(IovaSpace *s, uint64_t size, uint64_t align,
                         uint64_t *out_addr)
{
    uint64_t rounded, addr;
    RangeNode *n;
    IOReturn ret;

    if (size == 0 || (align != 0 && !is_pow2(align))) {
        return kIOReturnBadArgument;
    }
    /* Every free range starts on a page, so finer alignment is free. */
    if (align < s->page) {
        align = s->page;
    }
    if (!round_to_page(s, size, &rounded) || rounded > s->free_bytes) {
        return kIOReturnNoResources;
    }
    n = dext_range_tree_first_fit(&s->free, rounded, align, &addr);
    if (!n) {
        return kIOReturnNotAligned;
    }

    ret = carve(s, n, addr, rounded);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    *out_addr = addr;
    return kIOReturnSuccess;
}

IOReturn dext_iova_alloc_at(IovaSpace *s, uint64_t addr, uint64_t size)
{
    uint64_t rounded;
    RangeNode *n;

    if (size == 0 || (addr & (s->page - 1))) {
        return kIOReturnBadArgument;
    }
    /* Inclusive ends, so a range reaching 2^64 does not wrap. */
    if (!round_to_page(s, size, &rounded) || addr < s->base ||
        addr > s->last || rounded - 1 > s->last - addr) {
        return kIOReturnNoResources;
    }
    n = dext_range_tree_floor(&s->free, addr);
    if (n == NULL || addr - n->start >= n->len ||
        rounded > n->len - (addr - n->start)) {
        return kIOReturnBusy;
    }
    return carve(s, n, addr, rounded);
}

void dext_iova_free(IovaSpace *s, uint64_t addr, uint64_t size)
{
    uint64_t rounded, end_m1;
    RangeNode *prev, *next;
    bool join_prev, join_next;

    if (size == 0 || (addr & (s->page - 1)) || !round_to_page(s, size,
                                                              &rounded)) {
        return;
    }
    /* Inclusive end, so a range ending at 2^64 does not wrap to 0. */
    if (addr < s->base || addr > s->last || rounded - 1 > s->last - addr) {
        return;
    }
    end_m1 = addr + (rounded - 1);

    prev = dext_range_tree_floor(&s->free, addr);
    next = prev ? dext_range_tree_next(prev) : dext_range_tree_first(&s->free);

    /* Any overlap with free space means this was freed already. */
    if (prev && addr - prev->start < prev->len) {
        return;
    }
    if (next && next->start <= end_m1) {
        return;
    }

    join_prev = prev && addr - prev->start == prev->len;
    join_next = next && next->start - 1 == end_m1;

    if (join_prev && join_next) {
        uint64_t merged = prev->len + rounded + next->len;

        dext_range_tree_remove(&s->free, next);
        range_delete(next, NULL);
        dext_range_tree_update_len(&s->free, prev, merged);
    } else if (join_prev) {
        dext_range_tree_update_len(&s->free, prev, prev->len + rounded);
    } else if (join_next) {
        /* Growing downwards stays above prev's end, so order holds. */
        dext_range_tree_update_range(&s->free, next, addr, next->len + rounded);
    } else {
        RangeNode *n = range_new(addr, rounded);

        if (!n) {
            return;
        }
        dext_range_tree_insert(&s->free, n);
    }
    s->free_bytes += rounded;
}

uint64_t dext_iova_free_bytes(const IovaSpace *s)
{
    return s->free_bytes;
}
