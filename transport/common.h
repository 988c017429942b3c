/*
 * SPDX-License-Identifier: MIT
 *
 * Pieces shared by the fd-based transports (unix socket and in-process):
 * bookkeeping of memory mapped from DextMemory fds, and eventfd wakes.
 */

#ifndef LIBDEXT_TRANSPORT_COMMON_H
#define LIBDEXT_TRANSPORT_COMMON_H

#include "support/locks.h"
#include "transport/transport.h"

typedef struct DextMapping DextMapping;

/** The mappings one user client made; all fields private. */
typedef struct DextMappingList {
    DextMutex lock;
    DextMapping *head DEXT_GUARDED_BY(lock);
} DextMappingList;

/** dext_mappings_init() - an empty list */
void dext_mappings_init(DextMappingList *l);

/**
 * dext_mappings_map() - mmap @mem (shared) and remember it as @type
 * @l: the list
 * @type: memory type, for dext_mappings_unmap()
 * @mem: memory to map; its fd is closed in every case
 * @addr: receives the address
 * @size: receives the size
 *
 * Return: kIOReturnSuccess or kIOReturnVMError / kIOReturnNoMemory.
 */
IOReturn dext_mappings_map(DextMappingList *l, uint32_t type, DextMemory *mem,
                           mach_vm_address_t *addr, mach_vm_size_t *size)
    DEXT_EXCLUDES(&l->lock);

/**
 * dext_mappings_unmap() - munmap the mapping of @type at @addr
 * Return: kIOReturnSuccess, or kIOReturnBadArgument if there is none.
 */
IOReturn dext_mappings_unmap(DextMappingList *l, uint32_t type,
                             mach_vm_address_t addr)
    DEXT_EXCLUDES(&l->lock);

/**
 * dext_mappings_release() - munmap everything left, keep the lock
 *
 * Takes no lock and leaves @l's lock as it is: for a forked child's
 * copy of its parent's list, whose lock a parent thread may have held at
 * the fork (destroying a held mutex is undefined).
 */
void dext_mappings_release(DextMappingList *l);

/**
 * dext_mappings_destroy() - munmap everything left and destroy the lock
 *
 * Takes no lock: for a close, when nothing else uses @l any more.
 */
void dext_mappings_destroy(DextMappingList *l);

/**
 * dext_eventfd_wake_create() - a wake backed by a non-blocking eventfd
 * @out: receives the wake; its ops read and reset the counter, and close
 *
 * Return: kIOReturnSuccess, kIOReturnNoMemory or kIOReturnNoResources.
 */
IOReturn dext_eventfd_wake_create(DextWake **out);

#endif /* LIBDEXT_TRANSPORT_COMMON_H */
