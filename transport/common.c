/*
 * SPDX-License-Identifier: MIT
 *
 * Mapping bookkeeping and eventfd wakes for fd-based transports.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "transport/common.h"

struct DextMapping {
    DextMapping *next;
    uint32_t type;
    void *addr;
    size_t size;
};

void dext_mappings_init(DextMappingList *l)
{
    dext_mutex_init(&l->lock);
    l->head = NULL;
}

IOReturn dext_mappings_map(DextMappingList *l, uint32_t type, DextMemory *mem,
                           mach_vm_address_t *addr, mach_vm_size_t *size)
{
    DextMapping *m = malloc(sizeof(*m));
    int prot = PROT_READ | (mem->writable ? PROT_WRITE : 0);
    void *p = MAP_FAILED;

    if (m != NULL && mem->size > 0 && mem->size <= SIZE_MAX) {
        p = mmap(NULL, (size_t)mem->size, prot, MAP_SHARED, mem->fd,
                 (off_t)mem->offset);
    }
    close(mem->fd);
    mem->fd = -1;
    if (p == MAP_FAILED) {
        free(m);
        return m == NULL ? kIOReturnNoMemory : kIOReturnVMError;
    }
    m->type = type;
    m->addr = p;
    m->size = (size_t)mem->size;
    dext_mutex_lock(&l->lock);
    m->next = l->head;
    l->head = m;
    dext_mutex_unlock(&l->lock);
    *addr = (mach_vm_address_t)(uintptr_t)p;
    *size = mem->size;
    return kIOReturnSuccess;
}

IOReturn dext_mappings_unmap(DextMappingList *l, uint32_t type,
                             mach_vm_address_t addr)
{
    DextMapping **pp, *m = NULL;

    dext_mutex_lock(&l->lock);
    for (pp = &l->head; *pp; pp = &(*pp)->next) {
        if ((*pp)->type == type && (uintptr_t)(*pp)->addr == addr) {
            m = *pp;
            *pp = m->next;
            break;
        }
    }
    dext_mutex_unlock(&l->lock);
    if (m == NULL) {
        return kIOReturnBadArgument;
    }
    munmap(m->addr, m->size);
    free(m);
    return kIOReturnSuccess;
}

void dext_mappings_release(DextMappingList *l) DEXT_NO_THREAD_SAFETY_ANALYSIS
{
    DextMapping *m;

    while ((m = l->head) != NULL) {
        l->head = m->next;
        munmap(m->addr, m->size);
        free(m);
    }
}

void dext_mappings_destroy(DextMappingList *l)
{
    dext_mappings_release(l);
    dext_mutex_destroy(&l->lock);
}

static uint64_t eventfd_wake_consume(DextWake *wake)
{
    uint64_t v = 0;

    if (read(wake->fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
        return 0;
    }
    return v;
}

static void eventfd_wake_destroy(DextWake *wake)
{
    close(wake->fd);
    free(wake);
}

static const DextWakeOps eventfd_wake_ops = {
    .consume = eventfd_wake_consume,
    .destroy = eventfd_wake_destroy,
};

IOReturn dext_eventfd_wake_create(DextWake **out)
{
    DextWake *w = malloc(sizeof(*w));

    if (w == NULL) {
        return kIOReturnNoMemory;
    }
    w->ops = &eventfd_wake_ops;
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0) {
        free(w);
        return kIOReturnNoResources;
    }
    *out = w;
    return kIOReturnSuccess;
}
