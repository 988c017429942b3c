/*
 * SPDX-License-Identifier: MIT
 *
 * Intrusive augmented AVL tree of ranges.
 *
 * Every structural change walks from the lowest touched node up to the
 * root, rebalancing and recomputing height and max_len on the way.  The
 * walk always reaches the root, even once heights stop changing, because
 * max_len can change all the way up; it is O(log n) either way.
 */

#include <assert.h>

#include "core/rangetree.h"

static inline int node_height(const RangeNode *n)
{
    return n ? n->height : 0;
}

static inline uint64_t node_max_len(const RangeNode *n)
{
    return n ? n->max_len : 0;
}

/* Recompute @n's augmentation from its children, which must be current. */
static void node_update(RangeNode *n)
{
    int hl = node_height(n->left);
    int hr = node_height(n->right);
    uint64_t m = n->len;

    n->height = 1 + (hl > hr ? hl : hr);
    if (node_max_len(n->left) > m) {
        m = node_max_len(n->left);
    }
    if (node_max_len(n->right) > m) {
        m = node_max_len(n->right);
    }
    n->max_len = m;
}

/* Make @new take @old's place under @parent (or as the root). */
static void replace_child(RangeTree *t, RangeNode *parent, RangeNode *old,
                          RangeNode *new)
{
    if (!parent) {
        t->root = new;
    } else if (parent->left == old) {
        parent->left = new;
    } else {
        parent->right = new;
    }
    if (new) {
        new->parent = parent;
    }
}

static RangeNode *rotate_left(RangeTree *t, RangeNode *x)
{
    RangeNode *y = x->right;

    x->right = y->left;
    if (y->left) {
        y->left->parent = x;
    }
    replace_child(t, x->parent, x, y);
    y->left = x;
    x->parent = y;
    node_update(x);
    node_update(y);
    return y;
}

static RangeNode *rotate_right(RangeTree *t, RangeNode *x)
{
    RangeNode *y = x->left;

    x->left = y->right;
    if (y->right) {
        y->right->parent = x;
    }
    replace_child(t, x->parent, x, y);
    y->right = x;
    x->parent = y;
    node_update(x);
    node_update(y);
    return y;
}

/*
 * Restore the AVL property at @n, whose subtrees are balanced and current.
 * Returns the node now at @n's position.
 */
static RangeNode *rebalance_node(RangeTree *t, RangeNode *n)
{
    int balance = node_height(n->left) - node_height(n->right);

    if (balance > 1) {
        RangeNode *l = n->left;

        if (node_height(l->left) < node_height(l->right)) {
            rotate_left(t, l);
        }
        return rotate_right(t, n);
    }
    if (balance < -1) {
        RangeNode *r = n->right;

        if (node_height(r->right) < node_height(r->left)) {
            rotate_right(t, r);
        }
        return rotate_left(t, n);
    }
    node_update(n);
    return n;
}

static void rebalance_up(RangeTree *t, RangeNode *n)
{
    while (n) {
        n = rebalance_node(t, n)->parent;
    }
}

/* Only max_len can have changed: no rotations needed. */
static void update_max_up(RangeNode *n)
{
    while (n) {
        node_update(n);
        n = n->parent;
    }
}

void dext_range_tree_init(RangeTree *t)
{
    t->root = NULL;
    t->count = 0;
}

bool dext_range_tree_insert(RangeTree *t, RangeNode *n)
{
    RangeNode *parent = NULL;
    RangeNode **link = &t->root;

    while (*link) {
        parent = *link;
        if (n->start < parent->start) {
            link = &parent->left;
        } else if (n->start > parent->start) {
            link = &parent->right;
        } else {
            return false;
        }
    }
    n->left = n->right = NULL;
    n->parent = parent;
    n->height = 1;
    n->max_len = n->len;
    *link = n;
    t->count++;
    rebalance_up(t, parent);
    return true;
}

void dext_range_tree_remove(RangeTree *t, RangeNode *n)
{
    RangeNode *fix;

    if (n->left && n->right) {
        /* Splice the successor, which has no left child, into n's place. */
        RangeNode *s = n->right;

        while (s->left) {
            s = s->left;
        }
        if (s->parent == n) {
            fix = s;
        } else {
            fix = s->parent;
            fix->left = s->right;
            if (s->right) {
                s->right->parent = fix;
            }
            s->right = n->right;
            s->right->parent = s;
        }
        s->left = n->left;
        s->left->parent = s;
        replace_child(t, n->parent, n, s);
    } else {
        fix = n->parent;
        replace_child(t, n->parent, n, n->left ? n->left : n->right);
    }
    rebalance_up(t, fix);
    t->count--;
    n->left = n->right = n->parent = NULL;
}

RangeNode *dext_range_tree_find(const RangeTree *t, uint64_t start)
{
    RangeNode *n = t->root;

    while (n && n->start != start) {
        n = start < n->start ? n->left : n->right;
    }
    return n;
}

RangeNode *dext_range_tree_floor(const RangeTree *t, uint64_t key)
{
    RangeNode *n = t->root;
    RangeNode *best = NULL;

    while (n) {
        if (n->start <= key) {
            best = n;
            n = n->right;
        } else {
            n = n->left;
        }
    }
    return best;
}

RangeNode *dext_range_tree_ceil(const RangeTree *t, uint64_t key)
{
    RangeNode *n = t->root;
    RangeNode *best = NULL;

    while (n) {
        if (n->start >= key) {
            best = n;
            n = n->left;
        } else {
            n = n->right;
        }
    }
    return best;
}

RangeNode *dext_range_tree_lookup(const RangeTree *t, uint64_t addr)
{
    RangeNode *n = dext_range_tree_floor(t, addr);

    /* Written as a difference so start + len == 2^64 cannot wrap. */
    return n && addr - n->start < n->len ? n : NULL;
}

RangeNode *dext_range_tree_first(const RangeTree *t)
{
    RangeNode *n = t->root;

    while (n && n->left) {
        n = n->left;
    }
    return n;
}

RangeNode *dext_range_tree_last(const RangeTree *t)
{
    RangeNode *n = t->root;

    while (n && n->right) {
        n = n->right;
    }
    return n;
}

RangeNode *dext_range_tree_next(const RangeNode *n)
{
    if (n->right) {
        n = n->right;
        while (n->left) {
            n = n->left;
        }
        return (RangeNode *)n;
    }
    while (n->parent && n->parent->right == n) {
        n = n->parent;
    }
    return n->parent;
}

RangeNode *dext_range_tree_prev(const RangeNode *n)
{
    if (n->left) {
        n = n->left;
        while (n->right) {
            n = n->right;
        }
        return (RangeNode *)n;
    }
    while (n->parent && n->parent->left == n) {
        n = n->parent;
    }
    return n->parent;
}

/*
 * Does @n hold an @align-aligned block of @len bytes?  The padding is
 * computed from the low bits rather than by rounding start up, which
 * could wrap past 2^64.
 */
static bool node_fits(const RangeNode *n, uint64_t len, uint64_t align,
                      uint64_t *out_addr)
{
    uint64_t mis = n->start & (align - 1);
    uint64_t pad = mis ? align - mis : 0;

    if (pad > n->len || n->len - pad < len) {
        return false;
    }
    *out_addr = n->start + pad;
    return true;
}

/*
 * In-order search, skipping subtrees that cannot hold @len bytes at all.
 * When every candidate fits once it is long enough, the first subtree we
 * descend into always yields the answer, so only one root-to-leaf path is
 * walked.  Recursion only follows left children, so its depth is bounded
 * by the tree height (at most about 1.44 log2 n).
 */
static RangeNode *first_fit_in(RangeNode *n, uint64_t len, uint64_t align,
                               uint64_t *out_addr)
{
    while (n && n->max_len >= len) {
        RangeNode *found = first_fit_in(n->left, len, align, out_addr);

        if (found) {
            return found;
        }
        if (node_fits(n, len, align, out_addr)) {
            return n;
        }
        n = n->right;
    }
    return NULL;
}

RangeNode *dext_range_tree_first_fit(const RangeTree *t, uint64_t len,
                                     uint64_t align, uint64_t *out_addr)
{
    uint64_t addr = 0;
    RangeNode *n;

    if (align == 0) {
        align = 1;
    }
    if (len == 0 || (align & (align - 1)) != 0) {
        return NULL;
    }
    n = first_fit_in(t->root, len, align, &addr);
    if (n && out_addr) {
        *out_addr = addr;
    }
    return n;
}

void dext_range_tree_update_len(RangeTree *t, RangeNode *n, uint64_t new_len)
{
    (void)t;
    n->len = new_len;
    update_max_up(n);
}

void dext_range_tree_update_range(RangeTree *t, RangeNode *n,
                                  uint64_t new_start,
                                  uint64_t new_len)
{
#ifndef NDEBUG
    RangeNode *p = dext_range_tree_prev(n);
    RangeNode *s = dext_range_tree_next(n);

    assert(!p || p->start < new_start);
    assert(!s || s->start > new_start);
#endif
    (void)t;
    n->start = new_start;
    n->len = new_len;
    update_max_up(n);
}

void dext_range_tree_clear(RangeTree *t, void (*fn)(RangeNode *n, void *opaque),
                           void *opaque)
{
    RangeNode *n = t->root;

    /* Post-order without a stack: descend to a leaf, cut it off, go up. */
    while (n) {
        RangeNode *parent;

        if (n->left) {
            n = n->left;
            continue;
        }
        if (n->right) {
            n = n->right;
            continue;
        }
        parent = n->parent;
        if (parent) {
            if (parent->left == n) {
                parent->left = NULL;
            } else {
                parent->right = NULL;
            }
        }
        n->parent = NULL;
        if (fn) {
            fn(n, opaque);
        }
        n = parent;
    }
    t->root = NULL;
    t->count = 0;
}
