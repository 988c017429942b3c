/*
 * SPDX-License-Identifier: MIT
 *
 * What the script-driven fuzz targets (fuzz-core.c, fuzz-dextd.c) share:
 * reading the script, and keeping client memory in a private arena.
 */

#ifndef LIBDEXT_FUZZ_SCRIPT_H
#define LIBDEXT_FUZZ_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/dext-selectors.h"
#include "protocol/dext-wire.h"

/** struct FuzzScript - the unread rest of a fuzz input. */
typedef struct FuzzScript {
    const uint8_t *p;
    size_t left;
} FuzzScript;

/**
 * fuzz_take_u8() - the next byte of @s
 * @s: the script
 *
 * Return: the byte, or -1 when the script has run out.
 */
static inline int fuzz_take_u8(FuzzScript *s)
{
    if (s->left == 0) {
        return -1;
    }
    s->left--;
    return *s->p++;
}

/**
 * fuzz_take_blob() - a blob of @s, after its u16 length (little endian)
 * @s: the script
 * @len: receives its length, cut to what is left
 *
 * Return: the blob, or NULL when the script has run out.
 */
static inline const uint8_t *fuzz_take_blob(FuzzScript *s, size_t *len)
{
    const uint8_t *b;
    size_t n;

    if (s->left < 2) {
        return NULL;
    }
    n = (size_t)s->p[0] | (size_t)s->p[1] << 8;
    s->p += 2;
    s->left -= 2;
    if (n > s->left) {
        n = s->left;
    }
    b = s->p;
    s->p += n;
    s->left -= n;
    *len = n;
    return b;
}

/**
 * fuzz_fold_into_arena() - point a RegisterDMARegion into @arena
 * @c: a decoded call; other selectors are left alone
 * @arena: memory of the fuzzer's own that the device may DMA into
 * @size: its size
 *
 * Client memory is the fuzzer itself: a region anywhere else would let
 * the device model write over the fuzzer, which no real client can make
 * it do to dextd.  Size 0 and wrapping sizes are kept, to be refused as
 * given.
 *
 * Return: nothing.
 */
static inline void fuzz_fold_into_arena(DextWireCall *c, uint8_t *arena,
                                        uint64_t size)
{
    uint64_t off, room;

    if (c->selector != kDextSelectorRegisterDMARegion ||
        c->scalar_in_cnt < 3 || c->scalar_in[1] == 0) {
        return;
    }
    off = c->scalar_in[1] % size;
    room = size - off;
    c->scalar_in[1] = (uint64_t)(uintptr_t)arena + off;
    if (c->scalar_in[1] + c->scalar_in[2] >= c->scalar_in[1] &&
        c->scalar_in[2] > room) {
        c->scalar_in[2] = room;
    }
}

#endif /* LIBDEXT_FUZZ_SCRIPT_H */
