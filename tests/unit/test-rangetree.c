/*
 * SPDX-License-Identifier: MIT
 *
 * Unit test for core/rangetree: AVL and augmentation invariants after
 * every operation, edge cases at both ends of the address space, and a
 * randomized differential test against a sorted-array model.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rangetree.h"

#include "check.h"

/* Sums of two 64-bit ends, without overflow. */
__extension__ typedef unsigned __int128 u128;

/* Fixed-seed generator so every run, and every failure, is reproducible. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

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

typedef struct Item {
    uint64_t tag;           /* keeps the node at a non-zero offset */
    RangeNode node;
} Item;

typedef struct SubtreeInfo {
    int height;
    uint64_t max_len;
    size_t count;
} SubtreeInfo;

/*
 * Recompute height, max_len and size from scratch and compare them with
 * what the tree stores; also check links, key order and AVL balance.
 */
static SubtreeInfo check_subtree(const RangeNode *n, const RangeNode *parent,
                                 const uint64_t *lo, const uint64_t *hi,
                                 bool *ok)
{
    SubtreeInfo info = { 0, 0, 0 };
    SubtreeInfo l, r;

    if (!n) {
        return info;
    }
    if (n->parent != parent || (lo && n->start <= *lo) ||
        (hi && n->start >= *hi)) {
        *ok = false;
        return info;
    }
    l = check_subtree(n->left, n, lo, &n->start, ok);
    r = check_subtree(n->right, n, &n->start, hi, ok);
    info.height = 1 + (l.height > r.height ? l.height : r.height);
    info.max_len = n->len;
    if (l.max_len > info.max_len) {
        info.max_len = l.max_len;
    }
    if (r.max_len > info.max_len) {
        info.max_len = r.max_len;
    }
    info.count = 1 + l.count + r.count;
    if (n->height != info.height || n->max_len != info.max_len ||
        l.height - r.height > 1 || r.height - l.height > 1) {
        *ok = false;
    }
    return info;
}

/* Fewest nodes an AVL tree of height @h can have (a Fibonacci bound). */
static uint64_t avl_min_nodes(int h)
{
    uint64_t a = 0, b = 1;      /* N(0), N(1) */
    int i;

    if (h == 0) {
        return 0;
    }
    for (i = 2; i <= h; i++) {
        uint64_t c = a + b + 1;

        a = b;
        b = c;
    }
    return b;
}

static bool tree_valid(const RangeTree *t)
{
    bool ok = true;
    SubtreeInfo info = check_subtree(t->root, NULL, NULL, NULL, &ok);

    return ok && info.count == t->count &&
           (uint64_t)t->count >= avl_min_nodes(info.height);
}

/* ---- groups ---- */

static void test_empty(void)
{
    RangeTree t;
    uint64_t addr = 42;

    harness_section("empty tree");

    dext_range_tree_init(&t);
    CHECK(tree_valid(&t));
    CHECK(t.count == 0);
    CHECK(dext_range_tree_first(&t) == NULL);
    CHECK(dext_range_tree_last(&t) == NULL);
    CHECK(dext_range_tree_find(&t, 0) == NULL);
    CHECK(dext_range_tree_floor(&t, UINT64_MAX) == NULL);
    CHECK(dext_range_tree_ceil(&t, 0) == NULL);
    CHECK(dext_range_tree_lookup(&t, 0) == NULL);
    CHECK(dext_range_tree_first_fit(&t, 1, 1, &addr) == NULL);
    CHECK(addr == 42);
    dext_range_tree_clear(&t, NULL, NULL);
    CHECK(tree_valid(&t));
}

static void test_entry_macro(void)
{
    Item it;
    RangeNode *none = NULL;

    harness_section("RANGE_NODE_ENTRY");

    CHECK(RANGE_NODE_ENTRY(&it.node, Item, node) == &it);
    CHECK(RANGE_NODE_ENTRY(none, Item, node) == NULL);
}

/* Ascending and descending inserts are the worst case for a plain BST. */
static void test_sequential(void)
{
    enum { N = 300 };
    static Item items[N];
    Item dup;
    RangeTree t;
    RangeNode *n;
    int i;

    harness_section("sequential insert/remove, walks, lookups");

    dext_range_tree_init(&t);
    for (i = 0; i < N; i++) {
        items[i].node.start = (uint64_t)i * 0x1000;
        items[i].node.len = (uint64_t)(i % 7) * 0x1000;
        CHECK(dext_range_tree_insert(&t, &items[i].node));
        CHECK(tree_valid(&t));
    }
    CHECK(t.count == N);
    dup.node.start = 5 * 0x1000;
    dup.node.len = 1;
    CHECK(!dext_range_tree_insert(&t, &dup.node));
    CHECK(t.count == N && tree_valid(&t));
    CHECK(t.root->max_len == 6 * 0x1000);

    /* Forward and backward walks see every key once, in order. */
    i = 0;
    for (n = dext_range_tree_first(&t); n; n = dext_range_tree_next(n)) {
        CHECK(n == &items[i].node);
        i++;
    }
    CHECK(i == N);
    for (n = dext_range_tree_last(&t); n; n = dext_range_tree_prev(n)) {
        i--;
        CHECK(n == &items[i].node);
    }
    CHECK(i == 0);

    CHECK(dext_range_tree_find(&t, 7 * 0x1000) == &items[7].node);
    CHECK(dext_range_tree_find(&t, 7 * 0x1000 + 1) == NULL);
    CHECK(dext_range_tree_floor(&t, 7 * 0x1000 + 5) == &items[7].node);
    CHECK(dext_range_tree_ceil(&t, 7 * 0x1000 + 5) == &items[8].node);
    CHECK(dext_range_tree_ceil(&t, (uint64_t)N * 0x1000) == NULL);
    CHECK(dext_range_tree_lookup(&t, 3 * 0x1000 + 0xfff) == &items[3].node);
    CHECK(dext_range_tree_lookup(&t, 7 * 0x1000) == NULL);   /* len 0 */

    /* Remove from the root down, exercising the two-children case. */
    while (t.root) {
        n = t.root;
        dext_range_tree_remove(&t, n);
        CHECK(n->left == NULL && n->right == NULL && n->parent == NULL);
        CHECK(tree_valid(&t));
    }
    CHECK(t.count == 0);

    for (i = N - 1; i >= 0; i--) {
        CHECK(dext_range_tree_insert(&t, &items[i].node));
        CHECK(tree_valid(&t));
    }
    for (i = 0; i < N; i += 2) {
        dext_range_tree_remove(&t, &items[i].node);
        CHECK(tree_valid(&t));
    }
    for (i = N - 1; i >= 0; i -= 2) {
        dext_range_tree_remove(&t, &items[i].node);
        CHECK(tree_valid(&t));
    }
    CHECK(t.count == 0 && t.root == NULL);
}

static void test_top_of_space(void)
{
    RangeTree t;
    Item top, last, low, big;
    uint64_t addr = 0;

    harness_section("top and bottom of the address space");

    dext_range_tree_init(&t);
    top.node.start = UINT64_MAX - 0xfff;     /* ends exactly at 2^64 */
    top.node.len = 0x1000;
    last.node.start = UINT64_MAX;            /* the very last byte */
    last.node.len = 1;
    low.node.start = 0;
    low.node.len = 0x10;
    CHECK(dext_range_tree_insert(&t, &top.node) && tree_valid(&t));
    CHECK(dext_range_tree_insert(&t, &low.node) && tree_valid(&t));

    CHECK(dext_range_tree_lookup(&t, UINT64_MAX) == &top.node);
    CHECK(dext_range_tree_lookup(&t, UINT64_MAX - 0x1000) == NULL);
    CHECK(dext_range_tree_floor(&t, UINT64_MAX) == &top.node);
    CHECK(dext_range_tree_ceil(&t, UINT64_MAX - 0xffe) == NULL);
    CHECK(dext_range_tree_first_fit(&t, 0x1000, 0x1000, &addr) == &top.node);
    CHECK(addr == UINT64_MAX - 0xfff);
    /* Rounding the start up to 8 KiB would wrap: must report no fit. */
    CHECK(dext_range_tree_first_fit(&t, 0x1000, 0x2000, &addr) == NULL);
    CHECK(dext_range_tree_first_fit(&t, 1, 1ull << 63, &addr) == &low.node);
    CHECK(addr == 0);
    CHECK(dext_range_tree_first_fit(&t, 0x11, 1, &addr) == &top.node);

    dext_range_tree_remove(&t, &top.node);
    CHECK(dext_range_tree_insert(&t, &last.node) && tree_valid(&t));
    CHECK(dext_range_tree_lookup(&t, UINT64_MAX) == &last.node);
    CHECK(dext_range_tree_first_fit(&t, 1, 1ull << 63, &addr) == &low.node);
    dext_range_tree_remove(&t, &low.node);
    CHECK(dext_range_tree_first_fit(&t, 1, 1ull << 63, &addr) == NULL);
    CHECK(dext_range_tree_first_fit(&t, 1, 1, &addr) == &last.node);
    CHECK(addr == UINT64_MAX);
    CHECK(dext_range_tree_first_fit(&t, 2, 1, &addr) == NULL);

    /* A node covering all but the last byte of the space. */
    big.node.start = 0;
    big.node.len = UINT64_MAX;
    CHECK(dext_range_tree_insert(&t, &big.node) && tree_valid(&t));
    CHECK(t.root->max_len == UINT64_MAX);
    CHECK(dext_range_tree_first_fit(&t, 1ull << 63, 1ull << 63, &addr) ==
          &big.node);
    CHECK(addr == 0);
    dext_range_tree_update_range(&t, &big.node, 1, UINT64_MAX - 1);
    CHECK(tree_valid(&t));
    CHECK(dext_range_tree_first_fit(&t, 1ull << 62, 1ull << 63, &addr) ==
          &big.node);
    CHECK(addr == 1ull << 63);
    CHECK(dext_range_tree_first_fit(&t, 1ull << 63, 1ull << 63, &addr) == NULL);
    CHECK(dext_range_tree_first_fit(&t, UINT64_MAX - 1, 1, &addr) == &big.node);
    CHECK(dext_range_tree_first_fit(&t, UINT64_MAX, 1, &addr) == NULL);
    CHECK(dext_range_tree_lookup(&t, 0) == NULL);
    CHECK(dext_range_tree_lookup(&t, UINT64_MAX - 1) == &big.node);
    CHECK(dext_range_tree_lookup(&t, UINT64_MAX) == &last.node);
}

static void test_first_fit_align(void)
{
    enum { N = 64 };
    static Item items[N];
    RangeTree t;
    uint64_t addr = 0;
    int i;

    harness_section("first fit with alignment, update_len/update_range");

    dext_range_tree_init(&t);
    /* Ranges at odd pages, growing: 1 page at page 1, 2 at page 5, ... */
    for (i = 0; i < N; i++) {
        items[i].node.start = ((uint64_t)i * 0x100 + 1) * 0x1000;
        items[i].node.len = (uint64_t)(i + 1) * 0x1000;
        CHECK(dext_range_tree_insert(&t, &items[i].node));
    }
    CHECK(tree_valid(&t));

    CHECK(dext_range_tree_first_fit(&t, 0x1000, 0, &addr) == &items[0].node);
    CHECK(addr == 0x1000);
    /* 8 KiB aligned needs a range of at least 2 pages + 1 page padding. */
    CHECK(dext_range_tree_first_fit(&t, 0x1000, 0x2000,
                                    &addr) == &items[1].node);
    CHECK(addr == 0x102000);
    CHECK(dext_range_tree_first_fit(&t, 0x2000, 0x2000,
                                    &addr) == &items[2].node);
    CHECK(addr == 0x202000);
    /* 1 MiB aligned: every start is 1 page past a 1 MiB line. */
    CHECK(dext_range_tree_first_fit(&t, 0x1000, 0x100000, &addr) == NULL);
    CHECK(dext_range_tree_first_fit(&t, (uint64_t)N * 0x1000, 1, &addr) ==
          &items[N - 1].node);
    CHECK(dext_range_tree_first_fit(&t, (uint64_t)N * 0x1000 + 1, 1, &addr) ==
          NULL);
    CHECK(dext_range_tree_first_fit(&t, 0, 1, &addr) == NULL);
    CHECK(dext_range_tree_first_fit(&t, 1, 3, &addr) == NULL);

    /* Growing a range in place makes it the first fit. */
    dext_range_tree_update_len(&t, &items[3].node, 0x100000);
    CHECK(tree_valid(&t));
    CHECK(t.root->max_len == 0x100000);
    CHECK(dext_range_tree_first_fit(&t, 0x80000, 0x1000,
                                    &addr) == &items[3].node);
    CHECK(addr == items[3].node.start);
    dext_range_tree_update_len(&t, &items[3].node, 0);
    CHECK(tree_valid(&t));
    CHECK(dext_range_tree_first_fit(&t, 0x80000, 0x1000, &addr) == NULL);

    /* Moving a start within its neighbours keeps the order. */
    dext_range_tree_update_range(&t, &items[10].node, items[9].node.start + 1,
                                 5);
    CHECK(tree_valid(&t));
    CHECK(dext_range_tree_find(&t, items[9].node.start + 1) == &items[10].node);
    CHECK(dext_range_tree_next(&items[9].node) == &items[10].node);
    dext_range_tree_update_range(&t, &items[10].node, items[11].node.start - 1,
                                 0x1000);
    CHECK(tree_valid(&t));
    CHECK(dext_range_tree_prev(&items[11].node) == &items[10].node);
}

typedef struct ClearLog {
    size_t count;
    bool bad;
} ClearLog;

static void count_cleared(RangeNode *n, void *opaque)
{
    ClearLog *log = opaque;

    /* Children go first, so by now this node must be a detached leaf. */
    if (n->left || n->right || n->parent) {
        log->bad = true;
    }
    log->count++;
}

static void test_clear(void)
{
    enum { N = 1000 };
    static Item items[N];
    RangeTree t;
    ClearLog log = { 0, false };
    size_t live;
    int i;

    harness_section("clear visits each node once, leaves first");

    dext_range_tree_init(&t);
    for (i = 0; i < N; i++) {
        items[i].node.start = rng();
        items[i].node.len = 1;
        dext_range_tree_insert(&t, &items[i].node);
    }
    CHECK(tree_valid(&t));
    CHECK(t.count > 0);
    live = t.count;
    dext_range_tree_clear(&t, count_cleared, &log);
    CHECK(log.count == live && !log.bad);
    CHECK(t.root == NULL && t.count == 0 && tree_valid(&t));
}

/* ---- differential test ---- */

enum { POOL = 1024 };

typedef struct Model {
    Item *items[POOL];      /* live items sorted by start */
    size_t n;
} Model;

static Item pool[POOL];

/* Index of the first model entry with start >= key. */
static size_t model_lower(const Model *m, uint64_t key)
{
    size_t lo = 0, hi = m->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (m->items[mid]->node.start < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Brute-force first fit, in 128-bit arithmetic so it cannot wrap. */
static Item *model_first_fit(const Model *m, uint64_t len, uint64_t align,
                             uint64_t *out)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        u128 s = m->items[i]->node.start;
        u128 end = s + m->items[i]->node.len;
        u128 a = (s + align - 1) / align * align;

        if (a + len <= end) {
            *out = (uint64_t)a;
            return m->items[i];
        }
    }
    return NULL;
}

static uint64_t random_key(void)
{
    switch (rng_below(4)) {
    case 0:
        return rng_below(2048) * 16;                 /* dense, collides */
    case 1:
        return UINT64_MAX - rng_below(2048) * 16;    /* at the top */
    case 2:
        return rng_below(1u << 20) * 0x1000;
    default:
        return rng();
    }
}

/* A length keeping start + len <= 2^64. */
static uint64_t random_len(uint64_t start)
{
    uint64_t room = start ? 0 - start : UINT64_MAX;
    uint64_t len;

    switch (rng_below(4)) {
    case 0:
        len = 0;
        break;
    case 1:
        len = rng_below(256) * 16;
        break;
    case 2:
        len = rng_below(1u << 16);
        break;
    default:
        len = rng();
        break;
    }
    return len > room ? room : len;
}

static uint64_t random_align(void)
{
    switch (rng_below(4)) {
    case 0:
        return 1ull << 63;
    case 1:
        return 0;
    default:
        return 1ull << rng_below(24);
    }
}

static void test_differential(void)
{
    enum { OPS = 20000 };
    unsigned before = harness_failures();
    Model m = { .n = 0 };
    RangeTree t;
    Item *free_list[POOL];
    size_t nfree = 0;
    int op;
    size_t i;

    harness_section("randomized differential test against a sorted array");

    dext_range_tree_init(&t);
    for (i = 0; i < POOL; i++) {
        free_list[nfree++] = &pool[i];
    }

    for (op = 0; op < OPS && harness_failures() == before; op++) {
        /* Alternate growing and shrinking phases: full and near-empty. */
        unsigned ins_limit = (op / 2500) % 2 ? 10 : 45;
        unsigned kind = (unsigned)rng_below(100);
        uint64_t key = random_key();
        size_t pos = model_lower(&m, key);
        bool present = pos < m.n && m.items[pos]->node.start == key;

        if (kind < ins_limit && nfree > 0) {
            Item *it = free_list[nfree - 1];

            it->node.start = key;
            it->node.len = random_len(key);
            CHECK(dext_range_tree_insert(&t, &it->node) == !present);
            if (!present) {
                nfree--;
                memmove(&m.items[pos + 1], &m.items[pos],
                        (m.n - pos) * sizeof(m.items[0]));
                m.items[pos] = it;
                m.n++;
            }
        } else if (kind < 55 && m.n > 0) {
            size_t victim = (size_t)rng_below(m.n);
            Item *it = m.items[victim];

            dext_range_tree_remove(&t, &it->node);
            memmove(&m.items[victim], &m.items[victim + 1],
                    (m.n - victim - 1) * sizeof(m.items[0]));
            m.n--;
            free_list[nfree++] = it;
        } else if (kind < 65) {
            RangeNode *want = present ? &m.items[pos]->node : NULL;

            if (m.n > 0 && rng_below(2)) {
                want = &m.items[rng_below(m.n)]->node;
                key = want->start;
            }
            CHECK(dext_range_tree_find(&t, key) == want);
        } else if (kind < 75) {
            /* floor, ceil and lookup of the same key */
            RangeNode *floor = present ? &m.items[pos]->node :
                               pos > 0 ? &m.items[pos - 1]->node : NULL;
            RangeNode *ceil = pos < m.n ? &m.items[pos]->node : NULL;
            RangeNode *hit = floor && key - floor->start < floor->len ?
                             floor : NULL;

            CHECK(dext_range_tree_floor(&t, key) == floor);
            CHECK(dext_range_tree_ceil(&t, key) == ceil);
            CHECK(dext_range_tree_lookup(&t, key) == hit);
        } else if (kind < 90) {
            uint64_t len = rng_below(3) ? rng_below(1u << 16) + 1 :
                           rng() | 1;
            uint64_t align = random_align();
            uint64_t got = 0, want_addr = 0;
            Item *want = model_first_fit(&m, len, align ? align : 1,
                                         &want_addr);
            RangeNode *n = dext_range_tree_first_fit(&t, len, align, &got);

            CHECK(n == (want ? &want->node : NULL));
            CHECK(!want || got == want_addr);
        } else if (kind < 97 && m.n > 0) {
            Item *it = m.items[rng_below(m.n)];

            dext_range_tree_update_len(&t, &it->node,
                                       random_len(it->node.start));
        } else if (m.n > 0) {
            /* Move a start strictly between its neighbours' starts. */
            size_t k = (size_t)rng_below(m.n);
            uint64_t lo = k > 0 ? m.items[k - 1]->node.start + 1 : 0;
            uint64_t hi = k + 1 < m.n ? m.items[k + 1]->node.start - 1 :
                          UINT64_MAX;
            uint64_t start = lo + rng_below(hi - lo == UINT64_MAX ?
                                            UINT64_MAX : hi - lo + 1);

            dext_range_tree_update_range(&t, &m.items[k]->node, start,
                                         random_len(start));
        }

        CHECK(tree_valid(&t));
        CHECK(t.count == m.n);
        if (op % 97 == 0) {
            RangeNode *n = dext_range_tree_first(&t);

            for (i = 0; i < m.n && n; i++, n = dext_range_tree_next(n)) {
                CHECK(n == &m.items[i]->node);
            }
            CHECK(i == m.n && n == NULL);
            n = dext_range_tree_last(&t);
            for (i = m.n; i > 0 && n; i--, n = dext_range_tree_prev(n)) {
                CHECK(n == &m.items[i - 1]->node);
            }
            CHECK(i == 0 && n == NULL);
        }
    }
    if (harness_failures() != before) {
        fprintf(stderr, "differential test stopped at op %d\n", op - 1);
    }
    dext_range_tree_clear(&t, NULL, NULL);
}

/* ---- scale ---- */

static void test_scale(void)
{
    enum { N = 65536 };
    Item *items = calloc(N, sizeof(*items));
    uint32_t *order = calloc(N, sizeof(*order));
    RangeTree t;
    uint64_t addr;
    uint32_t i;

    harness_section("65536 nodes inserted, looked up and removed");

    if (!items || !order) {
        CHECK(!"out of memory");
        free(items);
        free(order);
        return;
    }
    dext_range_tree_init(&t);
    for (i = 0; i < N; i++) {
        order[i] = i;
    }
    for (i = N - 1; i > 0; i--) {
        uint32_t j = (uint32_t)rng_below(i + 1);
        uint32_t tmp = order[i];

        order[i] = order[j];
        order[j] = tmp;
    }
    /* Keys are 64 KiB apart; lengths 4 KiB to 32 KiB, 4 KiB granular. */
    for (i = 0; i < N; i++) {
        Item *it = &items[order[i]];

        it->node.start = (uint64_t)order[i] << 16;
        it->node.len = (1 + order[i] % 8) * 0x1000ull;
        CHECK(dext_range_tree_insert(&t, &it->node));
    }
    CHECK(tree_valid(&t));
    CHECK(t.count == N);
    for (i = 0; i < N; i++) {
        uint64_t key = ((uint64_t)i << 16) + 0xabc;

        CHECK(dext_range_tree_floor(&t, key) == &items[i].node);
        CHECK(dext_range_tree_lookup(&t, key) == &items[i].node);
    }
    CHECK(dext_range_tree_first_fit(&t, 0x8000, 0x1000,
                                    &addr) == &items[7].node);
    CHECK(addr == 7ull << 16);
    for (i = 0; i < N; i++) {
        dext_range_tree_remove(&t, &items[i].node);
        if (i % 4096 == 0) {
            CHECK(tree_valid(&t));
        }
    }
    CHECK(t.count == 0 && t.root == NULL);
    free(items);
    free(order);
}

int main(void)
{
    /* Keep the headings in order with failure messages. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_empty();
    test_entry_macro();
    test_sequential();
    test_top_of_space();
    test_first_fit_align();
    test_clear();
    test_differential();
    test_scale();
    return harness_finish();
}
