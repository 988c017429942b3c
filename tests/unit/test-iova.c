/*
 * SPDX-License-Identifier: MIT
 *
 * Unit test for core/iova: argument checks, lowest-first placement,
 * alignment, fragmentation versus exhaustion, coalescing, ignored double
 * frees, windows reaching 2^64, a randomized differential test against a
 * page bitmap, and 65,536 live allocations.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/iova.h"

#include "check.h"

/* Fixed-seed generator so every run, and every failure, is reproducible. */
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t n)
{
    return rng() % n;
}

/* ---- invariant checker ---- */

/* AVL shape and augmentation, recomputed from scratch; returns height. */
static int avl_check(const RangeNode *n, const RangeNode *parent,
                     uint64_t *max_len, bool *ok)
{
    uint64_t ml = 0, mr = 0;
    int hl, hr;

    *max_len = 0;
    if (!n) {
        return 0;
    }
    if (n->parent != parent) {
        *ok = false;
    }
    hl = avl_check(n->left, n, &ml, ok);
    hr = avl_check(n->right, n, &mr, ok);
    *max_len = n->len;
    if (ml > *max_len) {
        *max_len = ml;
    }
    if (mr > *max_len) {
        *max_len = mr;
    }
    if (n->max_len != *max_len || hl - hr > 1 || hr - hl > 1 ||
        n->height != 1 + (hl > hr ? hl : hr)) {
        *ok = false;
    }
    return n->height;
}

/*
 * Free ranges: page aligned, non-empty, inside the window, sorted and
 * never touching (fully coalesced), summing to free_bytes.
 */
static bool space_valid(const IovaSpace *s)
{
    const RangeNode *n, *prev = NULL;
    uint64_t sum = 0, max_len;
    size_t count = 0;
    bool ok = true;

    avl_check(s->free.root, NULL, &max_len, &ok);
    for (n = dext_range_tree_first(&s->free); n; n = dext_range_tree_next(n)) {
        if (n->len == 0 || (n->start | n->len) & (s->page - 1) ||
            n->start < s->base || n->len - 1 > s->last - n->start) {
            ok = false;
        }
        /* prev ends at or past n's start - 1: overlapping or touching */
        if (prev && n->start - prev->start <= prev->len) {
            ok = false;
        }
        sum += n->len;
        count++;
        prev = n;
    }
    return ok && count == s->free.count && sum == s->free_bytes &&
           s->free_bytes == dext_iova_free_bytes(s) &&
           s->free_bytes <= s->total_bytes;
}

/* True when the whole window is one free range again. */
static bool fully_free(const IovaSpace *s)
{
    const RangeNode *n = dext_range_tree_first(&s->free);

    return s->free.count == 1 && n->start == s->base &&
           n->len == s->total_bytes && s->free_bytes == s->total_bytes;
}

/* ---- groups ---- */

static void test_init_args(void)
{
    IovaSpace s;

    harness_section("init argument checks and window trimming");

    CHECK(dext_iova_space_init(&s, 0, 0xffff, 0) == kIOReturnBadArgument);
    CHECK(dext_iova_space_init(&s, 0, 0xffff, 0x3000) == kIOReturnBadArgument);
    CHECK(dext_iova_space_init(&s, 0x800, 0xffff, 0x1000) ==
          kIOReturnBadArgument);
    CHECK(dext_iova_space_init(&s, 0x2000, 0x1fff, 0x1000) ==
          kIOReturnBadArgument);
    /* Less than one whole page between base and limit. */
    CHECK(dext_iova_space_init(&s, 0x1000, 0x1ffe, 0x1000) ==
          kIOReturnBadArgument);
    dext_iova_space_destroy(&s);     /* harmless after a failed init */

    CHECK(dext_iova_space_init(&s, 0x1000, 0x1fff, 0x1000) == kIOReturnSuccess);
    CHECK(s.total_bytes == 0x1000 && fully_free(&s) && space_valid(&s));
    dext_iova_space_destroy(&s);

    /* A partial page under the limit is not used. */
    CHECK(dext_iova_space_init(&s, 0, 0x10002fff, 0x4000) == kIOReturnSuccess);
    CHECK(s.total_bytes == 0x10000000 && s.last == 0x0fffffff);
    CHECK(fully_free(&s) && space_valid(&s));
    dext_iova_space_destroy(&s);

    /* Page size 1 is a legal power of two. */
    CHECK(dext_iova_space_init(&s, 3, 9, 1) == kIOReturnSuccess);
    CHECK(s.total_bytes == 7 && space_valid(&s));
    dext_iova_space_destroy(&s);
}

static void test_basic(void)
{
    IovaSpace s;
    uint64_t a = 0, b = 0, c = 0, d = 0;

    harness_section("basic alloc/free, rounding, alignment, bad arguments");

    /* A 28-bit device (DMA mask 0x0FFFFFFF) with 16 KiB DART pages. */
    CHECK(dext_iova_space_init(&s, 0, 0x0fffffff, 0x4000) == kIOReturnSuccess);
    CHECK(dext_iova_free_bytes(&s) == 0x10000000);

    CHECK(dext_iova_alloc(&s, 0, 0, &a) == kIOReturnBadArgument);
    CHECK(dext_iova_alloc(&s, 1, 3, &a) == kIOReturnBadArgument);
    CHECK(dext_iova_alloc(&s, 1, 0x6000, &a) == kIOReturnBadArgument);
    CHECK(dext_iova_alloc(&s, UINT64_MAX, 0, &a) == kIOReturnNoResources);
    CHECK(dext_iova_alloc(&s, 0x10000001, 0, &a) == kIOReturnNoResources);
    CHECK(space_valid(&s) && fully_free(&s));

    /* Lowest first, sizes rounded to pages, small aligns mean a page. */
    CHECK(dext_iova_alloc(&s, 1, 0, &a) == kIOReturnSuccess && a == 0);
    CHECK(dext_iova_alloc(&s, 0x4001, 1,
                          &b) == kIOReturnSuccess && b == 0x4000);
    CHECK(dext_iova_alloc(&s, 0x4000, 0x1000, &c) == kIOReturnSuccess &&
          c == 0xc000);
    CHECK(dext_iova_free_bytes(&s) == 0x10000000 - 4 * 0x4000);
    CHECK(space_valid(&s));

    /* Alignment above the page is honoured; the gap stays free. */
    CHECK(dext_iova_alloc(&s, 0x4000, 0x100000, &d) == kIOReturnSuccess &&
          d == 0x100000);
    CHECK(space_valid(&s) && s.free.count == 2);
    CHECK(dext_iova_alloc(&s, 0x8000, 0x8000, &a) == kIOReturnSuccess &&
          a == 0x10000);
    CHECK(space_valid(&s));

    /* Freeing everything in any order rebuilds the single range. */
    dext_iova_free(&s, d, 0x4000);
    CHECK(space_valid(&s));
    dext_iova_free(&s, 0, 1);
    CHECK(space_valid(&s));
    dext_iova_free(&s, c, 0x4000);
    CHECK(space_valid(&s));
    dext_iova_free(&s, a, 0x8000);
    CHECK(space_valid(&s));
    dext_iova_free(&s, b, 0x4001);
    CHECK(space_valid(&s) && fully_free(&s));

    /* The whole window in one allocation, then nothing more. */
    CHECK(dext_iova_alloc(&s, 0x10000000, 0x10000000, &a) == kIOReturnSuccess &&
          a == 0);
    CHECK(space_valid(&s) && s.free.count == 0 && dext_iova_free_bytes(&s) == 0);
    CHECK(dext_iova_alloc(&s, 1, 0, &b) == kIOReturnNoResources);
    dext_iova_free(&s, a, 0x10000000);
    CHECK(space_valid(&s) && fully_free(&s));

    /* Freeing part of an allocation, and the rest later, is allowed. */
    CHECK(dext_iova_alloc(&s, 0x10000, 0, &a) == kIOReturnSuccess && a == 0);
    dext_iova_free(&s, 0x4000, 0x8000);
    CHECK(space_valid(&s) && s.free.count == 2);
    CHECK(dext_iova_alloc(&s, 0x8000, 0,
                          &b) == kIOReturnSuccess && b == 0x4000);
    dext_iova_free(&s, 0, 0x10000);
    CHECK(space_valid(&s) && fully_free(&s));
    dext_iova_space_destroy(&s);
}

static void test_fragmentation(void)
{
    enum { PAGES = 16 };
    IovaSpace s;
    uint64_t page = 0x1000, base = 0x40000;
    uint64_t addr[PAGES];
    uint64_t a = 0;
    int i;

    harness_section("fragmentation (NotAligned) versus exhaustion "
                    "(NoResources)");

    CHECK(dext_iova_space_init(&s, base, base + PAGES * page - 1, page) ==
          kIOReturnSuccess);
    for (i = 0; i < PAGES; i++) {
        CHECK(dext_iova_alloc(&s, page, 0, &addr[i]) == kIOReturnSuccess);
        CHECK(addr[i] == base + (uint64_t)i * page);
        CHECK(space_valid(&s));
    }
    CHECK(dext_iova_alloc(&s, page, 0, &a) == kIOReturnNoResources);

    /* Free the odd pages: half the space free, no two pages together. */
    for (i = 1; i < PAGES; i += 2) {
        dext_iova_free(&s, addr[i], page);
        CHECK(space_valid(&s));
    }
    CHECK(dext_iova_free_bytes(&s) == PAGES / 2 * page);
    CHECK(s.free.count == PAGES / 2);
    CHECK(dext_iova_alloc(&s, 2 * page, 0, &a) == kIOReturnNotAligned);
    /* One page, but 8 KiB aligned: every free page is at an odd index. */
    CHECK(dext_iova_alloc(&s, page, 2 * page, &a) == kIOReturnNotAligned);
    CHECK(dext_iova_alloc(&s, (PAGES / 2 + 1) * page, 0, &a) ==
          kIOReturnNoResources);
    CHECK(space_valid(&s));

    /* Freeing page 2 joins pages 1-3 into a 3-page range. */
    dext_iova_free(&s, addr[2], page);
    CHECK(space_valid(&s) && s.free.count == PAGES / 2 - 1);
    CHECK(dext_iova_alloc(&s, 3 * page, 0, &a) == kIOReturnSuccess &&
          a == addr[1]);
    CHECK(dext_iova_alloc(&s, page, 0, &a) == kIOReturnSuccess && a == addr[5]);
    CHECK(space_valid(&s));

    dext_iova_free(&s, addr[1], 3 * page);
    dext_iova_free(&s, addr[5], page);
    for (i = 0; i < PAGES; i += 2) {
        if (i != 2) {
            dext_iova_free(&s, addr[i], page);
        }
        CHECK(space_valid(&s));
    }
    CHECK(fully_free(&s));
    dext_iova_space_destroy(&s);
}

static void test_bad_frees(void)
{
    IovaSpace s;
    uint64_t page = 0x1000, a = 0, b = 0, c = 0, free_before;

    harness_section("double and bogus frees are ignored");

    CHECK(dext_iova_space_init(&s, 0x100000, 0x1fffff,
                               page) == kIOReturnSuccess);
    CHECK(dext_iova_alloc(&s, 4 * page, 0, &a) == kIOReturnSuccess);
    CHECK(dext_iova_alloc(&s, 4 * page, 0, &b) == kIOReturnSuccess);
    CHECK(dext_iova_alloc(&s, 4 * page, 0, &c) == kIOReturnSuccess);
    dext_iova_free(&s, b, 4 * page);
    free_before = dext_iova_free_bytes(&s);
    CHECK(space_valid(&s));

    dext_iova_free(&s, b, 4 * page);                 /* exact double free */
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == free_before);
    dext_iova_free(&s, b + page, page);              /* inside a free range */
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == free_before);
    dext_iova_free(&s, a + 3 * page, 2 * page);      /* straddles into it */
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == free_before);
    dext_iova_free(&s, c - page, 2 * page);          /* straddles out of it */
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == free_before);
    dext_iova_free(&s, a, 12 * page);                /* covers it */
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == free_before);
    dext_iova_free(&s, c + 4 * page, page);          /* never allocated */
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == free_before);
    dext_iova_free(&s, 0x200000 - page, 2 * page);   /* past the limit */
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == free_before);
    dext_iova_free(&s, 0x100000 - page, page);       /* below the base */
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == free_before);
    dext_iova_free(&s, a + 1, page);                 /* unaligned */
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == free_before);
    dext_iova_free(&s, a, 0);                        /* empty */
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == free_before);
    dext_iova_free(&s, UINT64_MAX - page + 1, UINT64_MAX);
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == free_before);

    dext_iova_free(&s, a, 4 * page);
    dext_iova_free(&s, c, 4 * page);
    CHECK(space_valid(&s) && fully_free(&s));
    dext_iova_free(&s, a, 4 * page);                 /* into a full window */
    CHECK(space_valid(&s) && fully_free(&s));
    dext_iova_space_destroy(&s);
}

static void test_top_of_space(void)
{
    IovaSpace s;
    uint64_t page = 0x4000, a = 0, b = 0, c = 0;
    const RangeNode *last;

    harness_section("windows reaching the top of the 64-bit space");

    /* The full 64-bit window above 1 MiB. */
    CHECK(dext_iova_space_init(&s, 0x100000, UINT64_MAX, page) ==
          kIOReturnSuccess);
    CHECK(s.total_bytes == 0 - 0x100000ull && s.last == UINT64_MAX);
    CHECK(space_valid(&s) && fully_free(&s));

    CHECK(dext_iova_alloc(&s, page, 0,
                          &a) == kIOReturnSuccess && a == 0x100000);
    CHECK(dext_iova_alloc(&s, 1ull << 63, 1ull << 63, &b) == kIOReturnSuccess &&
          b == 1ull << 63);
    CHECK(space_valid(&s));
    CHECK(dext_iova_free_bytes(&s) == s.total_bytes - page - (1ull << 63));
    CHECK(dext_iova_alloc(&s, 1ull << 63, 0, &c) == kIOReturnNoResources);
    CHECK(dext_iova_alloc(&s, 1ull << 62, 1ull << 62, &c) == kIOReturnSuccess &&
          c == 1ull << 62);
    /* Enough bytes below 2^62 remain, but no 2^62-aligned place. */
    CHECK(dext_iova_alloc(&s, 1ull << 61, 1ull << 62,
                          &c) == kIOReturnNotAligned);
    dext_iova_free(&s, 1ull << 62, 1ull << 62);
    CHECK(space_valid(&s));

    /* Freeing the top half coalesces into a range ending at 2^64. */
    dext_iova_free(&s, b, 1ull << 63);
    CHECK(space_valid(&s) && s.free.count == 1);
    last = dext_range_tree_last(&s.free);
    CHECK(last->start == 0x100000 + page && last->len == 0 - last->start);

    /* The very top page, found by alignment; then the rest below it. */
    CHECK(dext_iova_alloc(&s, page, 1ull << 63, &b) == kIOReturnSuccess &&
          b == 1ull << 63);
    dext_iova_free(&s, b, page);
    CHECK(dext_iova_alloc(&s, s.total_bytes - page, 0,
                          &b) == kIOReturnSuccess &&
          b == 0x100000 + page);
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == 0);
    CHECK(dext_iova_alloc(&s, 1, 0, &c) == kIOReturnNoResources);
    dext_iova_free(&s, UINT64_MAX - page + 1, page);
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == page);
    CHECK(dext_iova_alloc(&s, 1, 0, &c) == kIOReturnSuccess &&
          c == UINT64_MAX - page + 1);
    dext_iova_free(&s, c, page);
    dext_iova_free(&s, b, s.total_bytes - 2 * page);
    dext_iova_free(&s, a, page);
    CHECK(space_valid(&s) && fully_free(&s));
    dext_iova_space_destroy(&s);

    /* All 2^64 bytes asked for: the top page is dropped. */
    CHECK(dext_iova_space_init(&s, 0, UINT64_MAX, page) == kIOReturnSuccess);
    CHECK(s.total_bytes == 0 - page && s.last == UINT64_MAX - page);
    CHECK(space_valid(&s) && fully_free(&s));
    CHECK(dext_iova_alloc(&s, s.total_bytes, 0,
                          &a) == kIOReturnSuccess && a == 0);
    CHECK(space_valid(&s) && dext_iova_free_bytes(&s) == 0);
    dext_iova_free(&s, a, s.total_bytes);
    CHECK(space_valid(&s) && fully_free(&s));
    dext_iova_space_destroy(&s);
}

/* ---- differential test against a page bitmap ---- */

enum { MPAGES = 512, MAX_LIVE = 256 };

typedef struct Alloc {
    uint64_t addr, size;
} Alloc;

typedef struct PageModel {
    bool used[MPAGES];
    uint64_t base, page;
    size_t free_pages;
} PageModel;

static IOReturn model_alloc(PageModel *m, uint64_t size, uint64_t align,
                            uint64_t *out)
{
    uint64_t pages = (size + m->page - 1) / m->page;
    uint64_t i, j;

    if (align < m->page) {
        align = m->page;
    }
    if (pages > m->free_pages) {
        return kIOReturnNoResources;
    }
    for (i = 0; i + pages <= MPAGES; i++) {
        uint64_t addr = m->base + i * m->page;

        if (addr % align) {
            continue;
        }
        for (j = 0; j < pages && !m->used[i + j]; j++) {
        }
        if (j == pages) {
            for (j = 0; j < pages; j++) {
                m->used[i + j] = true;
            }
            m->free_pages -= pages;
            *out = addr;
            return kIOReturnSuccess;
        }
    }
    return kIOReturnNotAligned;
}

/* Does the allocator's free list equal the bitmap's free runs? */
static bool model_matches(const PageModel *m, const IovaSpace *s)
{
    const RangeNode *n = dext_range_tree_first(&s->free);
    uint64_t i = 0;

    while (i < MPAGES) {
        uint64_t run;

        if (m->used[i]) {
            i++;
            continue;
        }
        for (run = 0; i + run < MPAGES && !m->used[i + run]; run++) {
        }
        if (!n || n->start != m->base + i * m->page ||
            n->len != run * m->page) {
            return false;
        }
        n = dext_range_tree_next(n);
        i += run;
    }
    return n == NULL && s->free_bytes == m->free_pages * m->page;
}

static void test_differential(void)
{
    enum { OPS = 8000 };
    unsigned before = harness_failures();
    static PageModel m;
    static Alloc live[MAX_LIVE];
    size_t nlive = 0;
    IovaSpace s;
    int op;

    harness_section("randomized differential test against a page bitmap");

    /* A base off any large alignment so aligned blocks need padding. */
    m.page = 0x1000;
    m.base = 0x3000;
    m.free_pages = MPAGES;
    CHECK(dext_iova_space_init(&s, m.base, m.base + MPAGES * m.page - 1,
                               m.page) == kIOReturnSuccess);

    for (op = 0; op < OPS && harness_failures() == before; op++) {
        unsigned kind = (unsigned)rng_below(100);
        /* Allocate more in the first half of each cycle, free more later. */
        unsigned alloc_limit = (op / 1000) % 2 ? 35 : 65;

        if (kind < alloc_limit && nlive < MAX_LIVE) {
            uint64_t size = rng_below(4) ? rng_below(16 * m.page) + 1 :
                            rng_below(96 * m.page) + 1;
            uint64_t align = rng_below(3) ? 0 : 1ull << rng_below(19);
            uint64_t got = 0, want = 0;
            IOReturn rg = dext_iova_alloc(&s, size, align, &got);
            IOReturn rw = model_alloc(&m, size, align, &want);

            CHECK(rg == rw);
            if (rg == kIOReturnSuccess && rw == kIOReturnSuccess) {
                CHECK(got == want);
                live[nlive].addr = got;
                live[nlive].size = size;
                nlive++;
            }
        } else if (kind < 95 && nlive > 0) {
            size_t k = (size_t)rng_below(nlive);
            uint64_t first = (live[k].addr - m.base) / m.page;
            uint64_t pages = (live[k].size + m.page - 1) / m.page;
            uint64_t j;

            dext_iova_free(&s, live[k].addr, live[k].size);
            for (j = 0; j < pages; j++) {
                m.used[first + j] = false;
            }
            m.free_pages += pages;
            /* Sometimes free it twice; the repeat must change nothing. */
            if (rng_below(4) == 0) {
                dext_iova_free(&s, live[k].addr, live[k].size);
            }
            live[k] = live[--nlive];
        } else {
            /* A random free touching free space: must be ignored. */
            uint64_t first = rng_below(MPAGES);
            uint64_t pages = 1 + rng_below(8);
            uint64_t j;
            bool touches_free = false;

            for (j = 0; j < pages && first + j < MPAGES; j++) {
                touches_free |= !m.used[first + j];
            }
            if (touches_free || first + pages > MPAGES) {
                dext_iova_free(&s, m.base + first * m.page, pages * m.page);
            }
        }
        CHECK(space_valid(&s));
        CHECK(model_matches(&m, &s));
    }
    if (harness_failures() != before) {
        fprintf(stderr, "differential test stopped at op %d\n", op - 1);
    }
    while (nlive > 0) {
        nlive--;
        dext_iova_free(&s, live[nlive].addr, live[nlive].size);
    }
    CHECK(space_valid(&s) && fully_free(&s));
    dext_iova_space_destroy(&s);
}

/* ---- scale ---- */

static void shuffle(uint64_t *v, size_t n)
{
    size_t i;

    for (i = n - 1; i > 0; i--) {
        size_t j = (size_t)rng_below(i + 1);
        uint64_t tmp = v[i];

        v[i] = v[j];
        v[j] = tmp;
    }
}

static void test_alloc_at(void)
{
    IovaSpace s;
    uint64_t a = 0;

    harness_section("allocation at a given address");
    CHECK(dext_iova_space_init(&s, 0x100000, 0x0fffffff,
                               0x4000) == kIOReturnSuccess);
    CHECK(dext_iova_alloc_at(&s, 0x200000, 0) == kIOReturnBadArgument);
    CHECK(dext_iova_alloc_at(&s, 0x201000, 1) == kIOReturnBadArgument);
    /* Below the base, past the top, across the top, wrapping. */
    CHECK(dext_iova_alloc_at(&s, 0xfc000, 0x4000) == kIOReturnNoResources);
    CHECK(dext_iova_alloc_at(&s, 0x10000000, 1) == kIOReturnNoResources);
    CHECK(dext_iova_alloc_at(&s, 0x0fffc000, 0x4001) == kIOReturnNoResources);
    CHECK(dext_iova_alloc_at(&s, 0xffffffffffffc000ull,
                             0x8000) == kIOReturnNoResources);
    CHECK(space_valid(&s) && fully_free(&s));

    /* In the middle (splits), at either end of a free range, rounded. */
    CHECK(dext_iova_alloc_at(&s, 0x200000, 0x4001) == kIOReturnSuccess);
    CHECK(space_valid(&s) && s.free.count == 2);
    CHECK(dext_iova_alloc_at(&s, 0x204000, 0x4000) == kIOReturnBusy);
    CHECK(dext_iova_alloc_at(&s, 0x1fc000, 0x8000) == kIOReturnBusy);
    CHECK(dext_iova_alloc_at(&s, 0x1fc000, 0x4000) == kIOReturnSuccess);
    CHECK(dext_iova_alloc_at(&s, 0x208000, 0x4000) == kIOReturnSuccess);
    CHECK(dext_iova_alloc_at(&s, 0x100000, 0x4000) == kIOReturnSuccess);
    CHECK(dext_iova_alloc_at(&s, 0x0fffc000, 0x4000) == kIOReturnSuccess);
    CHECK(space_valid(&s));
    /* First fit goes around them. */
    CHECK(dext_iova_alloc(&s, 0x4000, 0, &a) == kIOReturnSuccess &&
          a == 0x104000);
    CHECK(dext_iova_free_bytes(&s) == 0x0ff00000 - 7 * 0x4000);
    dext_iova_free(&s, 0x200000, 0x8000);
    dext_iova_free(&s, 0x1fc000, 0x4000);
    dext_iova_free(&s, 0x208000, 0x4000);
    dext_iova_free(&s, 0x100000, 0x4000);
    dext_iova_free(&s, 0x0fffc000, 0x4000);
    dext_iova_free(&s, a, 0x4000);
    CHECK(space_valid(&s) && fully_free(&s));
    dext_iova_space_destroy(&s);
}

static void test_scale(void)
{
    enum { N = 65536 };
    uint64_t *addr = calloc(N, sizeof(*addr));
    uint64_t *size = calloc(N, sizeof(*size));
    uint64_t a = 0;
    IovaSpace s;
    size_t i;

    harness_section("65536 live allocations, freed in random order");

    if (!addr || !size) {
        CHECK(!"out of memory");
        free(addr);
        free(size);
        return;
    }

    /* Exactly 65,536 pages of 4 KiB under a 28-bit mask: fill, drain. */
    CHECK(dext_iova_space_init(&s, 0, 0x0fffffff, 0x1000) == kIOReturnSuccess);
    for (i = 0; i < N; i++) {
        CHECK(dext_iova_alloc(&s, 0x1000, 0, &addr[i]) == kIOReturnSuccess);
        CHECK(addr[i] == (uint64_t)i * 0x1000);
    }
    CHECK(dext_iova_alloc(&s, 1, 0, &a) == kIOReturnNoResources);
    CHECK(space_valid(&s) && s.free.count == 0);
    shuffle(addr, N);
    for (i = 0; i < N; i++) {
        dext_iova_free(&s, addr[i], 0x1000);
        if (i == N / 2) {
            /* Random order leaves many separate ranges half way. */
            CHECK(space_valid(&s) && s.free.count > N / 8);
        }
    }
    CHECK(space_valid(&s) && fully_free(&s));
    dext_iova_space_destroy(&s);

    /* 65,536 live mixed-size allocations in a 40-bit window. */
    CHECK(dext_iova_space_init(&s, 0x100000, (1ull << 40) - 1, 0x4000) ==
          kIOReturnSuccess);
    for (i = 0; i < N; i++) {
        size[i] = (1 + rng_below(16)) * 0x4000 - rng_below(0x4000);
        CHECK(dext_iova_alloc(&s, size[i], rng_below(8) ? 0 : 0x10000,
                              &addr[i]) == kIOReturnSuccess);
        /* Churn: free and reallocate an earlier one now and then. */
        if (i > 0 && rng_below(4) == 0) {
            size_t k = (size_t)rng_below(i);

            dext_iova_free(&s, addr[k], size[k]);
            CHECK(dext_iova_alloc(&s, size[k], 0,
                                  &addr[k]) == kIOReturnSuccess);
        }
    }
    CHECK(space_valid(&s));
    for (i = 0; i < N; i += 2) {
        dext_iova_free(&s, addr[i], size[i]);
    }
    CHECK(space_valid(&s) && s.free.count > N / 4);
    for (i = 1; i < N; i += 2) {
        dext_iova_free(&s, addr[i], size[i]);
    }
    CHECK(space_valid(&s) && fully_free(&s));
    dext_iova_space_destroy(&s);

    free(addr);
    free(size);
}

int main(void)
{
    /* Keep the headings in order with failure messages. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_init_args();
    test_basic();
    test_fragmentation();
    test_bad_frees();
    test_top_of_space();
    test_alloc_at();
    test_differential();
    test_scale();
    return harness_finish();
}
