/*
 * SPDX-License-Identifier: MIT
 *
 * An intrusive AVL tree of ranges [start, start + len), keyed by start
 * and augmented with the largest len in every subtree.
 *
 * One structure serves the DMA region table (exact lookup by iova), the
 * bus-address translation table (floor lookup) and the bus-address
 * allocator's free list (first-fit search pruned by max_len).  Every
 * operation is O(log n) so that cost stays flat up to
 * DEXT_MAX_DMA_REGIONS live entries.
 *
 * Nodes are embedded in the caller's structures; the tree never
 * allocates.  Ranges must not extend past the top of the address space
 * (start + len <= 2^64); the tree does not otherwise care whether ranges
 * overlap.  Not thread safe: the owner locks.
 */

#ifndef LIBDEXT_RANGETREE_H
#define LIBDEXT_RANGETREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * struct RangeNode - a tree node, embedded in the caller's structure.
 * @left: subtree of smaller starts
 * @right: subtree of larger starts
 * @parent: NULL at the root
 * @start: the key, unique within a tree; set before insertion
 * @len: length of the range; 0 is allowed for pure keys
 * @max_len: largest @len in the subtree rooted here (maintained by the tree)
 * @height: AVL height of that subtree, 1 for a leaf (maintained by the tree)
 */
typedef struct RangeNode {
    struct RangeNode *left, *right, *parent;
    uint64_t start;
    uint64_t len;
    uint64_t max_len;
    int height;
} RangeNode;

/**
 * struct RangeTree - the tree.
 * @root: NULL when empty
 * @count: number of nodes
 */
typedef struct RangeTree {
    RangeNode *root;
    size_t count;
} RangeTree;

/**
 * range_node_entry_() - implementation of RANGE_NODE_ENTRY()
 * @n: the embedded node, or NULL
 * @offset: offset of the node within the containing structure
 *
 * A function rather than a bare macro so that @n is evaluated once and a
 * NULL lookup result stays NULL.
 */
static inline void *range_node_entry_(RangeNode *n, size_t offset)
{
    return n ? (void *)((char *)n - offset) : NULL;
}

/**
 * RANGE_NODE_ENTRY() - the structure containing a node
 * @ptr: RangeNode pointer, may be NULL (then the result is NULL)
 * @type: the containing structure's type
 * @member: the name of the RangeNode within @type
 */
#define RANGE_NODE_ENTRY(ptr, type, member) \
    ((type *)range_node_entry_((ptr), offsetof(type, member)))

/**
 * dext_range_tree_init() - make @t an empty tree
 * @t: the tree
 */
void dext_range_tree_init(RangeTree *t);

/**
 * dext_range_tree_insert() - add a node
 * @t: the tree
 * @n: node with @start and @len set; its other fields are overwritten
 *
 * Return: true; false (tree unchanged) if a node with the same start is
 * present already.
 */
bool dext_range_tree_insert(RangeTree *t, RangeNode *n);

/**
 * dext_range_tree_remove() - take a node out of the tree
 * @t: the tree
 * @n: a node currently in @t
 *
 * The node's links are cleared; the caller may then free or reuse it.
 */
void dext_range_tree_remove(RangeTree *t, RangeNode *n);

/**
 * dext_range_tree_find() - exact lookup
 * @t: the tree
 * @start: the key
 *
 * Return: the node whose start is @start, or NULL.
 */
RangeNode *dext_range_tree_find(const RangeTree *t, uint64_t start);

/**
 * dext_range_tree_floor() - the node with the greatest start <= @key
 * @t: the tree
 * @key: the bound
 *
 * Return: that node, or NULL if every start is above @key.
 */
RangeNode *dext_range_tree_floor(const RangeTree *t, uint64_t key);

/**
 * dext_range_tree_ceil() - the node with the least start >= @key
 * @t: the tree
 * @key: the bound
 *
 * Return: that node, or NULL if every start is below @key.
 */
RangeNode *dext_range_tree_ceil(const RangeTree *t, uint64_t key);

/**
 * dext_range_tree_lookup() - the node whose range contains an address
 * @t: the tree
 * @addr: the address
 *
 * Only the floor node is examined, so with overlapping ranges a range
 * starting further down that also covers @addr is not found.
 *
 * Return: the floor node of @addr if @addr lies in [start, start + len),
 * else NULL.
 */
RangeNode *dext_range_tree_lookup(const RangeTree *t, uint64_t addr);

/**
 * dext_range_tree_first() - the node with the lowest start
 * @t: the tree
 *
 * Return: that node, or NULL if @t is empty.
 */
RangeNode *dext_range_tree_first(const RangeTree *t);

/**
 * dext_range_tree_last() - the node with the highest start
 * @t: the tree
 *
 * Return: that node, or NULL if @t is empty.
 */
RangeNode *dext_range_tree_last(const RangeTree *t);

/**
 * dext_range_tree_next() - in-order successor
 * @n: a node in a tree
 *
 * Amortised O(1) over a full walk, O(log n) worst case.
 *
 * Return: the node with the next higher start, or NULL.
 */
RangeNode *dext_range_tree_next(const RangeNode *n);

/**
 * dext_range_tree_prev() - in-order predecessor
 * @n: a node in a tree
 *
 * Return: the node with the next lower start, or NULL.
 */
RangeNode *dext_range_tree_prev(const RangeNode *n);

/**
 * dext_range_tree_first_fit() - lowest node with room for an aligned block
 * @t: the tree
 * @len: block size, >= 1
 * @align: block alignment, a power of two (0 is taken as 1)
 * @out_addr: receives the block's address, the lowest aligned address
 *            inside the node (may be NULL)
 *
 * Finds the node with the lowest start whose range [start, start + len)
 * contains an @align-aligned block of @len bytes.  Subtrees whose max_len
 * is below @len are skipped, which makes the search O(log n) when every
 * start is a multiple of @align.  Otherwise misaligned nodes that are just
 * big enough may have to be visited as well; the answer is still exact.
 *
 * Return: the node, or NULL if none fits (or @len is 0 or @align is not
 * a power of two).
 */
RangeNode *dext_range_tree_first_fit(const RangeTree *t, uint64_t len,
                                     uint64_t align, uint64_t *out_addr);

/**
 * dext_range_tree_update_len() - change a node's length in place
 * @t: the tree
 * @n: a node in @t
 * @new_len: the new length
 */
void dext_range_tree_update_len(RangeTree *t, RangeNode *n, uint64_t new_len);

/**
 * dext_range_tree_update_range() - change a node's start and length in place
 * @t: the tree
 * @n: a node in @t
 * @new_start: the new start; must stay above the predecessor's start and
 *             below the successor's (checked by assert()), so the node
 *             keeps its place and no rebalancing is needed
 * @new_len: the new length
 *
 * Lets an allocator grow or shrink a free range at its low end without a
 * remove and re-insert.
 */
void dext_range_tree_update_range(RangeTree *t, RangeNode *n,
                                  uint64_t new_start,
                                  uint64_t new_len);

/**
 * dext_range_tree_clear() - empty the tree, visiting every node once
 * @t: the tree
 * @fn: called with each node after it has been unlinked, children before
 *      parents, so it may free the node; it must not use @t (may be NULL)
 * @opaque: passed to @fn
 *
 * O(n), unlike removing the nodes one by one.
 */
void dext_range_tree_clear(RangeTree *t, void (*fn)(RangeNode *n, void *opaque),
                           void *opaque);

#endif /* LIBDEXT_RANGETREE_H */
