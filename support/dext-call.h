/*
 * SPDX-License-Identifier: MIT
 *
 * One method call's arguments and the limits on them: what the client
 * library, every transport, the wire protocol and the dext core pass
 * between each other.  The bottom layer: includes nothing of ours but
 * the public IOReturn codes.
 */

#ifndef LIBDEXT_SUPPORT_DEXT_CALL_H
#define LIBDEXT_SUPPORT_DEXT_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libdext/ioreturn.h"

/* Limits shared by every layer (IOKit's own limits for inband data). */
#define DEXT_MAX_SCALARS     16
#define DEXT_MAX_STRUCT      4096
#define DEXT_MAX_SERVICES    256

/* Options for mapping memory, as IOKit's kIOMap* bits. */
#define DEXT_MAP_WRITE_COMBINE  0x400u

/**
 * DextCallArgs - the arguments of one method call, as IOConnectCallMethod.
 * @scalar_in: @scalar_in_cnt inputs (<= DEXT_MAX_SCALARS)
 * @struct_in: @struct_in_size bytes (<= DEXT_MAX_STRUCT), may be NULL if 0
 * @scalar_out: room for *@scalar_out_cnt outputs; on return the count
 *              written.  @scalar_out_cnt may be NULL for no outputs.
 * @struct_out: room for *@struct_out_size bytes; on return the size
 *              written.  @struct_out_size may be NULL for none.
 * @in_fd: NULL, or an fd sent beside the call for the method to use
 *         (RegisterDMARegion: shared memory backing the region, with its
 *         offset as a fourth scalar).  The caller keeps it.
 */
typedef struct DextCallArgs {
    const uint64_t *scalar_in;
    const void *struct_in;
    size_t struct_in_size;
    uint64_t *scalar_out;
    uint32_t *scalar_out_cnt;
    void *struct_out;
    size_t *struct_out_size;
    const int *in_fd;
    /*
     * Last, so no padding sits between the 8-byte fields: with a hole
     * after it, GCC cleared a "= { ... }" with 16-byte stores straddling
     * two fields, and the callee's load of one of them could not be
     * forwarded from the store buffer (a stall the in-process call paid
     * on every call, 17 % of its profile).
     */
    uint32_t scalar_in_cnt;
} DextCallArgs;

/**
 * struct DextMemory - memory a client may map: @size bytes at @offset of
 * file @fd, which the receiver of a DextMemory owns.
 * @writable: false for a read-only mapping (and an fd that refuses one
 *            that is not)
 * @local_only: @fd grants more than this memory (a VFIO device fd): it
 *              may be mapped in the process that got it, never handed on
 */
typedef struct DextMemory {
    int fd;
    uint64_t offset;
    uint64_t size;
    bool writable;
    bool local_only;
} DextMemory;

#endif /* LIBDEXT_SUPPORT_DEXT_CALL_H */
