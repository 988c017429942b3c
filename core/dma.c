/*
 * SPDX-License-Identifier: MIT
 *
 * DMA: the per-session region table, the DMA buffer, and device DMA
 * through the IOMMU model.
 *
 * Each device has one bus address space (its DART), shared by all its
 * sessions: bus addresses are handed out by an IovaSpace within the
 * device's DMA mask, and a translation tree maps them back to chunks.
 * Each session keys its regions by the caller's iova.  All lookups are
 * O(log n) trees, never scans, so cost stays flat up to 65,536 regions.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core-internal.h"

IOReturn dext_dma_device_init(CoreDevice *cd)
{
    uint64_t limit = cd->dev->dma_mask;

    dext_range_tree_init(&cd->xlate);
    if (limit < DEXT_DART_BASE + DEXT_DART_PAGE - 1) {
        return kIOReturnBadArgument;
    }
    return dext_iova_space_init(&cd->iova, DEXT_DART_BASE, limit,
                                DEXT_DART_PAGE);
}

void dext_dma_device_destroy(CoreDevice *cd)
{
    dext_iova_space_destroy(&cd->iova);
}

/*
 * Enter [bus, bus + len) -> (@va or @host) in the translation tree;
 * dma_lock held for writing.  The bus range itself comes from the
 * IovaSpace and belongs to the region or buffer, not the chunk.
 */
static IOReturn chunk_insert(CoreDevice *cd, DmaChunk *c, DextSession *owner,
                             uint64_t va, uint8_t *host, uint64_t bus,
                             uint64_t len)
{
    c->owner = owner;
    c->va = va;
    c->host = host;
    c->xlate.start = bus;
    c->xlate.len = len;
    return dext_range_tree_insert(&cd->xlate, &c->xlate) ? kIOReturnSuccess
                                                    : kIOReturnInternalError;
}

static void region_unmap_free(CoreDevice *cd, DextSession *s, DmaRegion *r)
{
    uint32_t i;

    for (i = 0; i < r->nchunks; i++) {
        dext_range_tree_remove(&cd->xlate, &r->chunks[i].xlate);
    }
    dext_iova_free(&cd->iova, r->iova_base, r->iova_size);
    dext_range_tree_remove(&s->regions, &r->node);
    cd->dma_regions--;
    cd->dma_region_bytes -= r->size;
    free(r);
}

IOReturn dext_dma_register(DextSession *s, uint64_t iova, uint64_t va,
                           uint64_t size, uint64_t out[3])
{
    CoreDevice *cd = s->cd;
    uint64_t nchunks, done, page_off;
    uint8_t probe;
    DmaRegion *r;
    IOReturn ret;
    uint32_t i;

    /*
     * The iova range is a key in a range tree of [start, start + len):
     * one that wraps past 2^64 would break the tree's ordering and make
     * lookups miss or hit the wrong region.
     */
    if (size == 0 || va == 0 || va + size < va || iova + size < iova) {
        return kIOReturnBadArgument;
    }
    nchunks = (size + DEXT_DMA_CHUNK_MAX - 1) / DEXT_DMA_CHUNK_MAX;
    if (nchunks > DEXT_DMA_MAX_CHUNKS) {
        return kIOReturnNoSpace;
    }
    /*
     * The real dext wires the memory; we check that both ends are mapped
     * now, and a later unmapping becomes an IOMMU fault on device DMA.
     */
    if (dext_client_mem_read(&s->mem, va, &probe, 1) != kIOReturnSuccess ||
        dext_client_mem_read(&s->mem, va + size - 1, &probe,
                             1) != kIOReturnSuccess) {
        return kIOReturnVMError;
    }
    r = calloc(1, sizeof(*r) + nchunks * sizeof(r->chunks[0]));
    if (r == NULL) {
        return kIOReturnNoMemory;
    }
    r->node.start = iova;
    r->node.len = size;
    r->va = va;
    r->size = size;

    pthread_rwlock_wrlock(&cd->dma_lock);
    if (dext_range_tree_find(&s->regions, iova) != NULL) {
        ret = kIOReturnStillOpen;
        goto fail;
    }
    if (s->regions.count >= DEXT_MAX_DMA_REGIONS) {
        ret = kIOReturnNoSpace;
        goto fail;
    }
    /*
     * One bus range for the whole region, so its chunks lie back to back
     * and the first segment's address reaches every byte at a fixed
     * offset -- which is all the seed's API reports.  Like the DART, the
     * device sees the client VA's offset within its page.
     */
    page_off = va & (DEXT_DART_PAGE - 1);
    ret = dext_iova_alloc(&cd->iova, page_off + size, 0, &r->iova_base);
    if (ret != kIOReturnSuccess) {
        goto fail;
    }
    r->iova_size = page_off + size;
    for (i = 0, done = 0; i < nchunks; i++) {
        uint64_t len = size - done < DEXT_DMA_CHUNK_MAX ? size - done
                                                        : DEXT_DMA_CHUNK_MAX;

        ret = chunk_insert(cd, &r->chunks[i], s, va + done, NULL,
                           r->iova_base + page_off + done, len);
        if (ret != kIOReturnSuccess) {
            /* Roll the whole region back. */
            while (i-- > 0) {
                dext_range_tree_remove(&cd->xlate, &r->chunks[i].xlate);
            }
            dext_iova_free(&cd->iova, r->iova_base, r->iova_size);
            goto fail;
        }
        done += len;
    }
    r->nchunks = (uint32_t)nchunks;
    dext_range_tree_insert(&s->regions, &r->node);
    cd->dma_regions++;
    cd->dma_region_bytes += size;
    pthread_rwlock_unlock(&cd->dma_lock);

    out[0] = 1;
    out[1] = r->chunks[0].xlate.start;
    out[2] = r->chunks[0].xlate.len;
    return kIOReturnSuccess;

fail:
    pthread_rwlock_unlock(&cd->dma_lock);
    free(r);
    return ret;
}

IOReturn dext_dma_unregister(DextSession *s, uint64_t iova)
{
    CoreDevice *cd = s->cd;
    RangeNode *n;

    pthread_rwlock_wrlock(&cd->dma_lock);
    n = dext_range_tree_find(&s->regions, iova);
    if (n == NULL) {
        pthread_rwlock_unlock(&cd->dma_lock);
        return kIOReturnNotFound;
    }
    region_unmap_free(cd, s, RANGE_NODE_ENTRY(n, DmaRegion, node));
    pthread_rwlock_unlock(&cd->dma_lock);
    return kIOReturnSuccess;
}

IOReturn dext_dma_probe(DextSession *s, uint64_t iova, uint64_t offset,
                        uint64_t *out)
{
    CoreDevice *cd = s->cd;
    uint8_t bytes[8];
    RangeNode *n;
    DmaRegion *r;
    IOReturn ret;
    int i;

    pthread_rwlock_rdlock(&cd->dma_lock);
    n = dext_range_tree_find(&s->regions, iova);
    if (n == NULL) {
        pthread_rwlock_unlock(&cd->dma_lock);
        return kIOReturnNotFound;
    }
    r = RANGE_NODE_ENTRY(n, DmaRegion, node);
    if (r->size < 8 || offset > r->size - 8) {
        pthread_rwlock_unlock(&cd->dma_lock);
        return kIOReturnOverrun;
    }
    ret = dext_client_mem_read(&s->mem, r->va + offset, bytes, sizeof(bytes));
    pthread_rwlock_unlock(&cd->dma_lock);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    *out = 0;
    for (i = 7; i >= 0; i--) {
        *out = (*out << 8) | bytes[i];
    }
    return kIOReturnSuccess;
}

/* ------------------------------------------------------------------ */
/* DMA buffer                                                           */

static void buffer_destroy(CoreDevice *cd, DmaBuffer *b)
{
    dext_range_tree_remove(&cd->xlate, &b->chunk.xlate);
    dext_iova_free(&cd->iova, b->iova_base, b->size);
    cd->dma_buffers--;
    munmap(b->host, b->size);
    close(b->fd);
    free(b);
}

IOReturn dext_dma_buffer_allocate(DextSession *s, uint64_t size, uint64_t align,
                                  uint64_t out[6])
{
    CoreDevice *cd = s->cd;
    DmaBuffer *b, *old;
    IOReturn ret;

    if (size == 0 || size > DEXT_DMA_BUFFER_MAX) {
        return kIOReturnBadArgument;
    }
    if (align == 0) {
        align = 4096;
    }
    if ((align & (align - 1)) != 0 || align > DEXT_DMA_BUFFER_MAX) {
        return kIOReturnBadArgument;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return kIOReturnNoMemory;
    }
    b->size = size;
    /* Sealed: the client maps it, and device DMA lands in our mapping. */
    b->fd = dext_memfd_create("dext-dma-buffer", size);
    if (b->fd < 0) {
        ret = kIOReturnNoMemory;
        goto fail_fd;
    }
    b->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
    if (b->host == MAP_FAILED) {
        ret = kIOReturnNoMemory;
        goto fail_fd;
    }

    pthread_rwlock_wrlock(&cd->dma_lock);
    ret = dext_iova_alloc(&cd->iova, size, align > DEXT_DART_PAGE ? align : 0,
                          &b->iova_base);
    if (ret == kIOReturnSuccess) {
        ret = chunk_insert(cd, &b->chunk, s, 0, b->host, b->iova_base, size);
        if (ret != kIOReturnSuccess) {
            dext_iova_free(&cd->iova, b->iova_base, size);
        }
    }
    if (ret != kIOReturnSuccess) {
        pthread_rwlock_unlock(&cd->dma_lock);
        munmap(b->host, size);
        goto fail_fd;
    }
    cd->dma_buffers++;
    old = s->buffer;
    s->buffer = b;
    if (old) {
        buffer_destroy(cd, old);
    }
    pthread_rwlock_unlock(&cd->dma_lock);

    out[0] = size;
    out[1] = DEXT_DMA_FLAGS_INOUT;
    out[2] = 1;
    out[3] = b->chunk.xlate.start;
    out[4] = size;
    return kIOReturnSuccess;

fail_fd:
    if (b->fd >= 0) {
        close(b->fd);
    }
    free(b);
    return ret == kIOReturnNotAligned ? kIOReturnNoResources : ret;
}

void dext_dma_buffer_free(DextSession *s)
{
    CoreDevice *cd = s->cd;

    pthread_rwlock_wrlock(&cd->dma_lock);
    if (s->buffer) {
        buffer_destroy(cd, s->buffer);
        s->buffer = NULL;
    }
    pthread_rwlock_unlock(&cd->dma_lock);
}

IOReturn dext_dma_buffer_map(DextSession *s, DextMemory *out)
{
    CoreDevice *cd = s->cd;
    IOReturn ret = kIOReturnNotReady;

    pthread_rwlock_rdlock(&cd->dma_lock);
    if (s->buffer) {
        out->fd = fcntl(s->buffer->fd, F_DUPFD_CLOEXEC, 0);
        out->offset = 0;
        out->size = s->buffer->size;
        out->writable = true;
        ret = out->fd >= 0 ? kIOReturnSuccess : kIOReturnNoResources;
    }
    pthread_rwlock_unlock(&cd->dma_lock);
    return ret;
}

void dext_dma_session_release(DextSession *s)
{
    CoreDevice *cd = s->cd;
    RangeNode *n;

    pthread_rwlock_wrlock(&cd->dma_lock);
    while ((n = dext_range_tree_first(&s->regions)) != NULL) {
        region_unmap_free(cd, s, RANGE_NODE_ENTRY(n, DmaRegion, node));
    }
    if (s->buffer) {
        buffer_destroy(cd, s->buffer);
        s->buffer = NULL;
    }
    pthread_rwlock_unlock(&cd->dma_lock);
}

uint32_t dext_dma_session_regions(DextSession *s)
{
    uint32_t n;

    pthread_rwlock_rdlock(&s->cd->dma_lock);
    n = (uint32_t)s->regions.count;
    pthread_rwlock_unlock(&s->cd->dma_lock);
    return n;
}

void dext_dma_stats(CoreDevice *cd, DextCoreStats *st)
{
    pthread_rwlock_rdlock(&cd->dma_lock);
    st->dma_regions += cd->dma_regions;
    st->dma_region_bytes += cd->dma_region_bytes;
    st->dma_buffers += cd->dma_buffers;
    pthread_rwlock_unlock(&cd->dma_lock);
}

/* ------------------------------------------------------------------ */
/* Device DMA through the IOMMU                                         */

/*
 * Walk [addr, addr + len) over consecutive chunks.  Returns false, having
 * done nothing, if any byte is not mapped: the IOMMU faults the whole
 * transfer.  dma_lock is held for reading by the caller.
 */
static bool dma_translate_ok(CoreDevice *cd, uint64_t addr, size_t len)
{
    while (len > 0) {
        RangeNode *n = dext_range_tree_floor(&cd->xlate, addr);
        uint64_t avail;

        if (n == NULL || addr - n->start >= n->len) {
            return false;
        }
        avail = n->len - (addr - n->start);
        if (avail >= len) {
            return true;
        }
        addr += avail;
        len -= avail;
    }
    return true;
}

static IOReturn dma_access(CoreDevice *cd, uint64_t addr, void *buf,
                           size_t len, bool write)
{
    uint8_t *p = buf;
    IOReturn ret = kIOReturnSuccess;

    if (len == 0) {
        return kIOReturnSuccess;
    }
    pthread_rwlock_rdlock(&cd->dma_lock);
    if (addr + len < addr || !dma_translate_ok(cd, addr, len)) {
        pthread_rwlock_unlock(&cd->dma_lock);
        atomic_fetch_add(&cd->core->iommu_faults, 1);
        dext_core_logf(cd->core, DEXT_LOG_WARNING,
                       "%s: IOMMU fault: device %s of %zu bytes at bus address "
                       "0x%llx not mapped, dropped", cd->dev->name,
                       write ? "write" : "read", len, (unsigned long long)addr);
        return kIOReturnNotPermitted;
    }
    while (len > 0 && ret == kIOReturnSuccess) {
        RangeNode *n = dext_range_tree_floor(&cd->xlate, addr);
        DmaChunk *c = RANGE_NODE_ENTRY(n, DmaChunk, xlate);
        uint64_t off = addr - n->start;
        size_t step = n->len - off < len ? (size_t)(n->len - off) : len;

        if (c->host) {
            if (write) {
                memcpy(c->host + off, p, step);
            } else {
                memcpy(p, c->host + off, step);
            }
        } else if (write) {
            ret = dext_client_mem_write(&c->owner->mem, c->va + off, p, step);
        } else {
            ret = dext_client_mem_read(&c->owner->mem, c->va + off, p, step);
        }
        p += step;
        addr += step;
        len -= step;
    }
    pthread_rwlock_unlock(&cd->dma_lock);
    if (ret != kIOReturnSuccess) {
        atomic_fetch_add(&cd->core->iommu_faults, 1);
        dext_core_logf(cd->core, DEXT_LOG_WARNING,
                       "%s: IOMMU fault: client memory behind bus address 0x%llx "
                       "is gone", cd->dev->name, (unsigned long long)addr);
        return kIOReturnNotPermitted;
    }
    return kIOReturnSuccess;
}

IOReturn dext_dma_device_read(void *opaque, uint64_t addr, void *buf,
                              size_t len)
{
    IOReturn ret = dma_access(opaque, addr, buf, len, false);

    if (ret != kIOReturnSuccess) {
        memset(buf, 0, len);
    }
    return ret;
}

IOReturn dext_dma_device_write(void *opaque, uint64_t addr, const void *buf,
                               size_t len)
{
    return dma_access(opaque, addr, (void *)buf, len, true);
}
