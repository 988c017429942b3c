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
 *
 * No lock is held across an access to client memory: a client's page can
 * stall for ever (userfaultfd), and only that client may wait for it.
 * Device DMA translates its whole transfer under dma_lock into segments,
 * each holding a reference on what it reaches (the client's ClientMem, or
 * the DMA buffer whose mapping it copies into), and copies after the lock
 * is dropped.  So nothing ever waits for a transfer: an unregistered
 * region's in-flight transfer still lands in its own client's memory, and
 * a freed buffer's mapping lives until its last transfer is done.
 *
 * An emulated device copies to and from another process's memory with
 * process_vm_readv/writev, unless the client gave the file behind it
 * (memfd, shm, a MAP_SHARED file): then the core maps the file once at
 * registration and copies with memcpy(), guarded against the client
 * truncating the file (guarded-copy.c).  The mapping is referenced by
 * the region and by each segment that reaches it, as the DMA buffer's.
 *
 * Bus space is shared by every client of a device; each client process
 * may hold at most DextCore.dma_share_pct percent of it (its share), so
 * one client cannot starve the others.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/magic.h>
#include <sys/vfs.h>
#endif

#include "core/core-internal.h"

IOReturn dext_dma_device_init(CoreDevice *cd)
{
    uint64_t limit = cd->dev->dma_mask;

    dext_range_tree_init(&cd->xlate);
    if (limit < DEXT_DART_BASE + DEXT_DART_PAGE - 1) {
        return kIOReturnBadArgument;
    }
    return dext_iova_space_init(&cd->iova, DEXT_DART_BASE, limit,
                                DEXT_BUS_PAGE);
}

void dext_dma_device_destroy(CoreDevice *cd)
{
    dext_iova_space_destroy(&cd->iova);
}

/*
 * The bus space is kept in host pages (DEXT_BUS_PAGE), so a caller that
 * chooses its bus addresses (RegisterDMARegionAt, for a VMM whose guest
 * maps 4 KiB IOMMU pages) gets that granularity; the addresses the dext
 * chooses are DART pages, aligned and rounded as on the Mac.
 */
static uint64_t round_up(uint64_t n, uint64_t page)
{
    return (n + page - 1) & ~(page - 1);
}

/*
 * The share record of @s's process, found or made on first use.  NULL
 * (no limit) for in-process clients.
 */
static DmaShare *share_get(CoreDevice *cd, DextSession *s)
    DEXT_REQUIRES(cd->dma_lock)
{
    DmaShare *sh;

    if (s->share != NULL || s->mem->self) {
        return s->share;
    }
    for (sh = cd->shares; sh != NULL; sh = sh->next) {
        if (sh->pid == s->mem->pid) {
            break;
        }
    }
    if (sh == NULL) {
        sh = calloc(1, sizeof(*sh));
        if (sh == NULL) {
            return NULL;
        }
        sh->pid = s->mem->pid;
        sh->next = cd->shares;
        cd->shares = sh;
    }
    sh->sessions++;
    s->share = sh;
    return sh;
}

/* Drop @s's hold on its share record. */
static void share_put(CoreDevice *cd, DextSession *s)
    DEXT_REQUIRES(cd->dma_lock)
{
    DmaShare **pp;
    DmaShare *sh = s->share;

    if (sh == NULL) {
        return;
    }
    s->share = NULL;
    if (--sh->sessions > 0) {
        return;
    }
    for (pp = &cd->shares; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == sh) {
            *pp = sh->next;
            break;
        }
    }
    free(sh);
}

/*
 * May @s's process take @bytes more bus space?  The refusal is logged,
 * rate-limited per device.
 */
static IOReturn share_charge(CoreDevice *cd, DextSession *s, uint64_t bytes)
    DEXT_REQUIRES(cd->dma_lock)
{
    DmaShare *sh = share_get(cd, s);
    uint64_t limit = cd->iova.total_bytes / 100 * s->core->dma_share_pct;

    if (s->mem->self) {
        return kIOReturnSuccess;
    }
    if (sh == NULL) {
        return kIOReturnNoMemory;
    }
    if (bytes > limit || sh->bytes > limit - bytes) {
        dext_core_ratelimited(s->core, &cd->log_limit, DEXT_LOG_WARNING,
                              "%s: pid %d: bus space share used up (%llu of "
                              "%llu bytes, %u%% of the device's; dextd "
                              "--dma-share)", cd->dev->name, (int)sh->pid,
                              (unsigned long long)sh->bytes,
                              (unsigned long long)limit,
                              s->core->dma_share_pct);
        return kIOReturnNoSpace;
    }
    sh->bytes += bytes;
    return kIOReturnSuccess;
}

static void share_uncharge(CoreDevice *cd, DextSession *s, uint64_t bytes)
    DEXT_REQUIRES(cd->dma_lock)
{
    if (s->share != NULL) {
        s->share->bytes -= bytes;
    }
}

static void dma_map_unref(DmaMap *m)
{
    if (m == NULL || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0) {
        return;
    }
    munmap(m->base, m->len);
    free(m);
}

/*
 * Enter [bus, bus + len) -> (@va or @host) in the translation tree.  The
 * bus range itself comes from the IovaSpace and belongs to the region or
 * buffer, not the chunk.
 */
static IOReturn chunk_insert(CoreDevice *cd, DmaChunk *c, DextSession *owner,
                             uint64_t va, uint8_t *host, uint64_t bus,
                             uint64_t len)
    DEXT_REQUIRES(cd->dma_lock)
{
    c->owner = owner;
    c->va = va;
    c->host = host;
    c->xlate.start = bus;
    c->xlate.len = len;
    return dext_range_tree_insert(&cd->xlate, &c->xlate) ? kIOReturnSuccess
                                                    : kIOReturnInternalError;
}

/* A device that reaches memory itself, through a real IOMMU (VFIO). */
static bool dma_direct(const CoreDevice *cd)
{
    return cd->dev->ops->dma_map != NULL;
}

static uint64_t host_page_size(void)
{
    static uint64_t page;
    uint64_t v = __atomic_load_n(&page, __ATOMIC_RELAXED);

    if (v == 0) {
        long n = sysconf(_SC_PAGESIZE);

        v = n > 0 ? (uint64_t)n : 4096;
        __atomic_store_n(&page, v, __ATOMIC_RELAXED);
    }
    return v;
}

/*
 * Take @r out of the session's table and the translation tree.  Its bus
 * range stays allocated until region_retire() has removed it from a real
 * IOMMU, so no other region can be given those addresses meanwhile.
 */
static void region_unlink(CoreDevice *cd, DextSession *s, DmaRegion *r)
    DEXT_REQUIRES(cd->dma_lock)
{
    uint32_t i;

    for (i = 0; i < r->nchunks; i++) {
        dext_range_tree_remove(&cd->xlate, &r->chunks[i].xlate);
    }
    share_uncharge(cd, s, r->iova_size);
    if (r->map != NULL && s->share != NULL) {
        s->share->maps--;
    }
    if (r->host_map != NULL && s->share != NULL) {
        s->share->host_maps--;
    }
    if (r->map != NULL || r->host_map != NULL) {
        __atomic_sub_fetch(&cd->core->dma_file_maps, 1, __ATOMIC_RELAXED);
    }
    dext_range_tree_remove(&s->regions, &r->node);
    cd->dma_regions--;
    cd->dma_region_bytes -= r->size;
}

/*
 * Free a list of unlinked regions: unmap them from the device's IOMMU
 * with no lock held (unpinning may take a while for big regions), then
 * give their bus ranges back.
 */
static void regions_retire(CoreDevice *cd, DmaRegion *list)
{
    DmaRegion *r, *next;

    for (r = list; r; r = r->retire_next) {
        /* Transfers in flight keep the mapping until they are done. */
        dma_map_unref(r->map);
        r->map = NULL;
        if (r->map_len) {
            cd->dev->ops->dma_unmap(cd->dev, r->map_iova, r->map_len);
        }
        if (r->host_map) {
            munmap(r->host_map, r->host_map_len);
        }
    }
    core_rwlock_wrlock(&cd->dma_lock);
    for (r = list; r; r = r->retire_next) {
        dext_iova_free(&cd->iova, r->iova_base, r->iova_size);
    }
    core_rwlock_unlock(&cd->dma_lock);
    for (r = list; r; r = next) {
        next = r->retire_next;
        free(r);
    }
}

/*
 * The file a client sent beside a registration: a regular file holding
 * [@fd_offset, @fd_offset + @r->size) with @r->va's byte at @fd_offset
 * (so both have the same offset in their host page).
 */
static bool client_file_fits(const DmaRegion *r, int fd, uint64_t fd_offset)
{
    uint64_t pg = host_page_size();
    struct stat st;

    return (fd_offset & (pg - 1)) == (r->va & (pg - 1)) &&
           fd_offset + r->size >= fd_offset && fstat(fd, &st) == 0 &&
           S_ISREG(st.st_mode) && st.st_size >= 0 &&
           (uint64_t)st.st_size >= fd_offset + r->size;
}

/*
 * What @fd's file can be mapped in: hugetlbfs maps only whole huge
 * pages, from offsets that are multiples of them (its block size);
 * everything else in host pages.
 */
static uint64_t file_map_granule(int fd)
{
    uint64_t pg = host_page_size();
#if defined(__linux__)
    struct statfs sf;

    if (fstatfs(fd, &sf) == 0 && sf.f_type == HUGETLBFS_MAGIC &&
        sf.f_bsize > 0 && (uint64_t)sf.f_bsize > pg &&
        ((uint64_t)sf.f_bsize & ((uint64_t)sf.f_bsize - 1)) == 0) {
        return (uint64_t)sf.f_bsize;
    }
#else
    (void)fd;
#endif
    return pg;
}

/*
 * Map the client's file around @r, read-write and shared: whole granules
 * of the file (file_map_granule()) from the one holding @r->va's host
 * page to the one holding its last byte, so a region may start inside a
 * huge page -- a VMM's guest RAM map starts where the guest's memory map
 * says.  *@base and *@base_len receive the mapping (for munmap()).
 * Returns where @r->va's host page is in it, or MAP_FAILED with errno
 * set.
 */
static uint8_t *client_file_map(const DmaRegion *r, int fd,
                                uint64_t fd_offset, uint8_t **base,
                                uint64_t *base_len)
{
    uint64_t pg = host_page_size(), gran = file_map_granule(fd);
    uint64_t first = fd_offset - (r->va & (pg - 1));
    uint64_t start = first & ~(gran - 1);
    uint64_t end = (fd_offset + r->size + gran - 1) & ~(gran - 1);
    void *p;

    /* client_file_fits() bounded fd_offset + size by an off_t. */
    p = mmap(NULL, end - start, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
             (off_t)start);
    if (p == MAP_FAILED) {
        return MAP_FAILED;
    }
    *base = p;
    *base_len = end - start;
    return (uint8_t *)p + (first - start);
}

/*
 * Whether @fd's pages are the kernel's own memory: tmpfs (memfd_create(),
 * shm_open()) or hugetlbfs.  Pinning for a real IOMMU faults the pages
 * in inside VFIO_IOMMU_MAP_DMA, under the container's locks in the
 * kernel, which Terminate's close of the group and every other map or
 * unmap of the device then wait for.  A page another process serves
 * (FUSE), or a server across the network, may never come; and what
 * serves a file is not what its filesystem says it is (an overlayfs,
 * which an unprivileged user may mount in a user namespace, over FUSE
 * says overlayfs).  So only these two are taken: an allowlist, not a
 * blocklist.  Linux 6.5 and later refuses a long writable pin of most
 * other file memory anyway (disk files need their writeback).
 * (Emulated devices copy with no lock held, whatever the file: a stall
 * holds only that transfer.)
 */
static bool file_pages_pinnable(int fd)
{
#if defined(__linux__)
    struct statfs sf;

    return fstatfs(fd, &sf) == 0 &&
           (sf.f_type == TMPFS_MAGIC || sf.f_type == HUGETLBFS_MAGIC);
#else
    /* No backend with its own IOMMU exists here: fail closed all the same. */
    (void)fd;
    return false;
#endif
}

/*
 * Where a device with its own IOMMU finds the region's memory in this
 * process, page aligned: the client's own pages in-process, else our
 * shared mapping of the client's @fd.  Sets @r->host_map for the latter.
 */
static IOReturn region_host_pages(DextSession *s, DmaRegion *r, int fd,
                                  uint64_t fd_offset, uint8_t **host,
                                  uint64_t *len)
{
    CoreDevice *cd = s->cd;
    uint64_t pg = host_page_size();
    uint64_t start = r->va & ~(pg - 1);
    uint8_t *p;

    *len = ((r->va + r->size + pg - 1) & ~(pg - 1)) - start;
    if (s->mem->self) {
        *host = (uint8_t *)(uintptr_t)start;
        return kIOReturnSuccess;
    }
    if (fd == DEXT_DMA_FILE_LATER) {
        return kIOReturnUnsupported;
    }
    if (fd < 0) {
        dext_core_ratelimited(cd->core, &cd->log_limit, DEXT_LOG_WARNING,
                              "%s: pid %d registered private memory for DMA; "
                              "this device reaches only memory dextd can map: "
                              "use memory from memfd_create(), shm_open() or "
                              "hugetlbfs", cd->dev->name,
                              (int)s->mem->pid);
        return kIOReturnUnsupported;
    }
    if (!client_file_fits(r, fd, fd_offset)) {
        return kIOReturnBadArgument;
    }
    if (!file_pages_pinnable(fd)) {
        dext_core_ratelimited(cd->core, &cd->log_limit, DEXT_LOG_WARNING,
                              "%s: pid %d registered memory of a file "
                              "outside tmpfs and hugetlbfs for DMA: refused "
                              "(a page that does not come would stall the "
                              "device's IOMMU for everyone); use "
                              "memfd_create(), shm_open() or hugetlbfs",
                              cd->dev->name, (int)s->mem->pid);
        return kIOReturnNotPermitted;
    }
    p = client_file_map(r, fd, fd_offset, &r->host_map, &r->host_map_len);
    if (p == MAP_FAILED) {
        /* EACCES: not open read-write; ENODEV and the like: a file that
         * cannot be mapped at all (the caller's mistake).  ENOMEM: out of
         * address space, or of reserved huge pages. */
        return errno == EACCES || errno == EPERM ? kIOReturnNotPermitted :
               errno == ENOMEM ? kIOReturnNoMemory : kIOReturnBadArgument;
    }
    *host = p;
    return kIOReturnSuccess;
}

/*
 * For an emulated device: map the file behind another process's region,
 * if it came, so that device DMA copies with memcpy().  Sets @r->map.
 * A file that cannot be mapped writable (sealed, opened read-only) is
 * not an error: the region stays on process_vm_*, which writes with the
 * client's own permissions.
 */
static IOReturn region_map_file(DextSession *s, DmaRegion *r, int fd,
                                uint64_t fd_offset)
{
    DmaMap *m;
    uint8_t *p;

    if (s->mem->self) {
        return kIOReturnSuccess;
    }
    if (fd == DEXT_DMA_FILE_LATER) {
        return r->size >= DEXT_DMA_MAP_MIN ? kIOReturnUnsupported
                                           : kIOReturnSuccess;
    }
    if (fd < 0) {
        return kIOReturnSuccess;
    }
    if (!client_file_fits(r, fd, fd_offset)) {
        return kIOReturnBadArgument;
    }
    if (!dext_guarded_copy_init()) {
        return kIOReturnSuccess;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return kIOReturnNoMemory;
    }
    p = client_file_map(r, fd, fd_offset, &m->base, &m->len);
    if (p == MAP_FAILED) {
        free(m);
        return kIOReturnSuccess;
    }
    m->refs = 1;
    m->page = p;
    r->map = m;
    return kIOReturnSuccess;
}

/*
 * RegisterDMARegion and RegisterDMARegionAt: @at says whether the bus
 * address is the caller's @bus_addr (whose page offset equals @va's) or
 * the allocator's choice.
 */
static IOReturn dma_register(DextSession *s, uint64_t iova, uint64_t va,
                             uint64_t size, int fd, uint64_t fd_offset,
                             bool at, uint64_t bus_addr, uint64_t out[3])
{
    CoreDevice *cd = s->cd;
    uint64_t nchunks, done, page_off, granule, host_len = 0;
    uint8_t *host = NULL;
    DmaMap *unused_map = NULL;
    bool file_maps_full;
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
    granule = at ? DEXT_BUS_PAGE : DEXT_DART_PAGE;
    if (at && (bus_addr & (granule - 1)) != (va & (granule - 1))) {
        return kIOReturnNotAligned;
    }
    nchunks = (size + DEXT_DMA_CHUNK_MAX - 1) / DEXT_DMA_CHUNK_MAX;
    if (nchunks > DEXT_DMA_MAX_CHUNKS) {
        return kIOReturnNoSpace;
    }
    /*
     * The real dext wires the memory; we check that both ends are mapped
     * now, and a later unmapping becomes an IOMMU fault on device DMA.
     */
    if (dext_client_mem_read(s->mem, va, &probe, 1) != kIOReturnSuccess ||
        dext_client_mem_read(s->mem, va + size - 1, &probe,
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
    if (dma_direct(cd)) {
        ret = region_host_pages(s, r, fd, fd_offset, &host, &host_len);
        if (ret != kIOReturnSuccess) {
            free(r);
            return ret;
        }
        r->mapping = true;
    } else {
        ret = region_map_file(s, r, fd, fd_offset);
        if (ret != kIOReturnSuccess) {
            free(r);
            return ret;
        }
    }

    core_rwlock_wrlock(&cd->dma_lock);
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
    page_off = va & (granule - 1);
    r->iova_size = round_up(page_off + size, granule);
    if (at) {
        r->iova_base = bus_addr - page_off;
        ret = bus_addr + size < bus_addr ? kIOReturnNoResources :
              dext_iova_alloc_at(&cd->iova, r->iova_base, r->iova_size);
    } else {
        ret = dext_iova_alloc(&cd->iova, r->iova_size, DEXT_DART_PAGE,
                              &r->iova_base);
    }
    if (ret != kIOReturnSuccess) {
        goto fail;
    }
    /* Only space that exists counts against the share: a region too big
     * for the device at all keeps its own error. */
    ret = share_charge(cd, s, r->iova_size);
    if (ret != kIOReturnSuccess) {
        dext_iova_free(&cd->iova, r->iova_base, r->iova_size);
        goto fail;
    }
    file_maps_full = __atomic_load_n(&cd->core->dma_file_maps,
                                     __ATOMIC_RELAXED) >=
                     DEXT_DMA_FILE_MAPS_MAX;
    if (r->map != NULL &&
        (s->share->maps >= DEXT_DMA_MAPS_MAX || file_maps_full)) {
        /* Its mappings are used up: this one copies with process_vm_*. */
        unused_map = r->map;
        r->map = NULL;
    }
    if (r->host_map != NULL &&
        (s->share->host_maps >= DEXT_DMA_HOST_MAPS_MAX || file_maps_full)) {
        /* No fallback for a real IOMMU: refused, before any VMA runs out. */
        dext_iova_free(&cd->iova, r->iova_base, r->iova_size);
        share_uncharge(cd, s, r->iova_size);
        dext_core_ratelimited(cd->core, &cd->log_limit, DEXT_LOG_WARNING,
                              "%s: pid %d: no more files mapped for DMA "
                              "(%u for one process, %u in all)",
                              cd->dev->name, (int)s->mem->pid,
                              DEXT_DMA_HOST_MAPS_MAX, DEXT_DMA_FILE_MAPS_MAX);
        ret = kIOReturnNoResources;
        goto fail;
    }
    for (i = 0, done = 0; i < nchunks; i++) {
        uint64_t len = size - done < DEXT_DMA_CHUNK_MAX ? size - done
                                                        : DEXT_DMA_CHUNK_MAX;

        ret = chunk_insert(cd, &r->chunks[i], s, va + done,
                           r->map ? r->map->page + (va & (host_page_size() -
                                                          1)) + done : NULL,
                           r->iova_base + page_off + done, len);
        r->chunks[i].map = r->map;
        if (ret != kIOReturnSuccess) {
            /* Roll the whole region back. */
            while (i-- > 0) {
                dext_range_tree_remove(&cd->xlate, &r->chunks[i].xlate);
            }
            dext_iova_free(&cd->iova, r->iova_base, r->iova_size);
            share_uncharge(cd, s, r->iova_size);
            goto fail;
        }
        done += len;
    }
    r->nchunks = (uint32_t)nchunks;
    if (r->map != NULL) {
        s->share->maps++;
    }
    if (r->host_map != NULL) {
        s->share->host_maps++;
    }
    if (r->map != NULL || r->host_map != NULL) {
        __atomic_add_fetch(&cd->core->dma_file_maps, 1, __ATOMIC_RELAXED);
    }
    dext_range_tree_insert(&s->regions, &r->node);
    cd->dma_regions++;
    cd->dma_region_bytes += size;
    /* Under the lock: another channel may unregister it the moment we
     * let go. */
    out[0] = 1;
    out[1] = r->chunks[0].xlate.start;
    out[2] = r->chunks[0].xlate.len;
    core_rwlock_unlock(&cd->dma_lock);
    dma_map_unref(unused_map);
    if (!dma_direct(cd)) {
        return kIOReturnSuccess;
    }

    /*
     * Pin and map with no lock held: pinning faults the pages in, and a
     * client's page may stall.  Meanwhile r->mapping keeps the region
     * from being unregistered under us.  The host pages' bus address has
     * the same offset from the region's bus address as their address has
     * from va: the bus page offset equals the VA's (above).
     */
    r->map_iova = r->iova_base + (page_off & ~(host_page_size() - 1));
    ret = cd->dev->ops->dma_map(cd->dev, r->map_iova, host, host_len);
    core_rwlock_wrlock(&cd->dma_lock);
    r->mapping = false;
    if (ret == kIOReturnSuccess) {
        r->map_len = host_len;
        core_rwlock_unlock(&cd->dma_lock);
        return kIOReturnSuccess;
    }
    region_unlink(cd, s, r);
    core_rwlock_unlock(&cd->dma_lock);
    if (r->host_map) {
        munmap(r->host_map, r->host_map_len);
        r->host_map = NULL;
    }
    regions_retire(cd, r);
    return ret;

fail:
    core_rwlock_unlock(&cd->dma_lock);
    if (r->host_map) {
        munmap(r->host_map, r->host_map_len);
    }
    dma_map_unref(r->map);
    dma_map_unref(unused_map);
    free(r);
    return ret;
}

IOReturn dext_dma_register(DextSession *s, uint64_t iova, uint64_t va,
                           uint64_t size, int fd, uint64_t fd_offset,
                           uint64_t out[3])
{
    return dma_register(s, iova, va, size, fd, fd_offset, false, 0, out);
}

IOReturn dext_dma_register_at(DextSession *s, uint64_t iova, uint64_t va,
                              uint64_t size, uint64_t bus_addr, int fd,
                              uint64_t fd_offset, uint64_t out[3])
{
    return dma_register(s, iova, va, size, fd, fd_offset, true, bus_addr,
                        out);
}

IOReturn dext_dma_unregister(DextSession *s, uint64_t iova)
{
    CoreDevice *cd = s->cd;
    DmaRegion *r;
    RangeNode *n;

    core_rwlock_wrlock(&cd->dma_lock);
    n = dext_range_tree_find(&s->regions, iova);
    if (n == NULL) {
        core_rwlock_unlock(&cd->dma_lock);
        return kIOReturnNotFound;
    }
    r = RANGE_NODE_ENTRY(n, DmaRegion, node);
    if (r->mapping) {
        core_rwlock_unlock(&cd->dma_lock);
        return kIOReturnBusy;
    }
    region_unlink(cd, s, r);
    core_rwlock_unlock(&cd->dma_lock);
    regions_retire(cd, r);
    return kIOReturnSuccess;
}

IOReturn dext_dma_probe(DextSession *s, uint64_t iova, uint64_t offset,
                        uint64_t *out)
{
    CoreDevice *cd = s->cd;
    uint8_t bytes[8];
    RangeNode *n;
    DmaRegion *r;
    uint64_t va;
    IOReturn ret;
    int i;

    core_rwlock_rdlock(&cd->dma_lock);
    n = dext_range_tree_find(&s->regions, iova);
    if (n == NULL) {
        core_rwlock_unlock(&cd->dma_lock);
        return kIOReturnNotFound;
    }
    r = RANGE_NODE_ENTRY(n, DmaRegion, node);
    if (r->size < 8 || offset > r->size - 8) {
        core_rwlock_unlock(&cd->dma_lock);
        return kIOReturnOverrun;
    }
    va = r->va + offset;
    core_rwlock_unlock(&cd->dma_lock);

    /* The caller's own memory, read with no lock held: it may stall. */
    ret = dext_client_mem_read(s->mem, va, bytes, sizeof(bytes));
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

static void buffer_unref(DmaBuffer *b)
{
    if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0) {
        return;
    }
    munmap(b->host, b->size);
    close(b->fd);
    free(b);
}

/*
 * Take @b out of the translation tree.  Its bus range stays allocated
 * until buffer_retire(), after a real IOMMU has let go of it.
 */
static void buffer_unlink(CoreDevice *cd, DextSession *s, DmaBuffer *b)
    DEXT_REQUIRES(cd->dma_lock)
{
    dext_range_tree_remove(&cd->xlate, &b->chunk.xlate);
    share_uncharge(cd, s, b->iova_size);
    cd->dma_buffers--;
}

/* Drop an unlinked buffer: out of the IOMMU, bus range back, our ref. */
static void buffer_retire(CoreDevice *cd, DmaBuffer *b)
{
    uint64_t pg = host_page_size();

    if (b->mapped) {
        cd->dev->ops->dma_unmap(cd->dev, b->iova_base,
                                (b->size + pg - 1) & ~(pg - 1));
    }
    core_rwlock_wrlock(&cd->dma_lock);
    dext_iova_free(&cd->iova, b->iova_base, b->iova_size);
    core_rwlock_unlock(&cd->dma_lock);
    buffer_unref(b);
}

IOReturn dext_dma_buffer_allocate(DextSession *s, uint64_t size, uint64_t align,
                                  uint64_t out[6])
{
    CoreDevice *cd = s->cd;
    uint64_t pg = host_page_size();
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
    b->refs = 1;
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

    /* Reserve the bus range; it is reachable only once mapped below. */
    core_rwlock_wrlock(&cd->dma_lock);
    b->iova_size = round_up(size, DEXT_DART_PAGE);
    ret = dext_iova_alloc(&cd->iova, b->iova_size,
                          align > DEXT_DART_PAGE ? align : DEXT_DART_PAGE,
                          &b->iova_base);
    if (ret == kIOReturnSuccess) {
        ret = share_charge(cd, s, b->iova_size);
        if (ret != kIOReturnSuccess) {
            dext_iova_free(&cd->iova, b->iova_base, b->iova_size);
        }
    }
    core_rwlock_unlock(&cd->dma_lock);
    if (ret != kIOReturnSuccess) {
        munmap(b->host, size);
        goto fail_fd;
    }
    if (dma_direct(cd)) {
        /* No lock held: pinning faults the pages in. */
        ret = cd->dev->ops->dma_map(cd->dev, b->iova_base, b->host,
                                    (size + pg - 1) & ~(pg - 1));
        b->mapped = ret == kIOReturnSuccess;
    }

    core_rwlock_wrlock(&cd->dma_lock);
    if (ret == kIOReturnSuccess) {
        ret = chunk_insert(cd, &b->chunk, s, 0, b->host, b->iova_base, size);
    }
    if (ret != kIOReturnSuccess) {
        share_uncharge(cd, s, b->iova_size);
        core_rwlock_unlock(&cd->dma_lock);
        if (b->mapped) {
            cd->dev->ops->dma_unmap(cd->dev, b->iova_base,
                                    (size + pg - 1) & ~(pg - 1));
        }
        core_rwlock_wrlock(&cd->dma_lock);
        dext_iova_free(&cd->iova, b->iova_base, b->iova_size);
        core_rwlock_unlock(&cd->dma_lock);
        munmap(b->host, size);
        goto fail_fd;
    }
    cd->dma_buffers++;
    old = s->buffer;
    s->buffer = b;
    if (old) {
        buffer_unlink(cd, s, old);
    }
    /* Under the lock: another channel may free it the moment we let go. */
    out[0] = size;
    out[1] = DEXT_DMA_FLAGS_INOUT;
    out[2] = 1;
    out[3] = b->chunk.xlate.start;
    out[4] = size;
    core_rwlock_unlock(&cd->dma_lock);
    if (old) {
        buffer_retire(cd, old);
    }
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
    DmaBuffer *b;

    core_rwlock_wrlock(&cd->dma_lock);
    b = s->buffer;
    s->buffer = NULL;
    if (b) {
        buffer_unlink(cd, s, b);
    }
    core_rwlock_unlock(&cd->dma_lock);
    if (b) {
        buffer_retire(cd, b);
    }
}

IOReturn dext_dma_buffer_map(DextSession *s, DextMemory *out)
{
    CoreDevice *cd = s->cd;
    IOReturn ret = kIOReturnNotReady;

    core_rwlock_rdlock(&cd->dma_lock);
    if (s->buffer) {
        out->fd = fcntl(s->buffer->fd, F_DUPFD_CLOEXEC, 0);
        out->offset = 0;
        out->size = s->buffer->size;
        out->writable = true;
        ret = out->fd >= 0 ? kIOReturnSuccess : kIOReturnNoResources;
    }
    core_rwlock_unlock(&cd->dma_lock);
    return ret;
}

void dext_dma_session_release(DextSession *s)
{
    CoreDevice *cd = s->cd;
    RangeNode *n;
    DmaBuffer *b;

    DmaRegion *retired = NULL;

    core_rwlock_wrlock(&cd->dma_lock);
    while ((n = dext_range_tree_first(&s->regions)) != NULL) {
        DmaRegion *r = RANGE_NODE_ENTRY(n, DmaRegion, node);

        region_unlink(cd, s, r);
        r->retire_next = retired;
        retired = r;
    }
    b = s->buffer;
    s->buffer = NULL;
    if (b) {
        buffer_unlink(cd, s, b);
    }
    share_put(cd, s);
    core_rwlock_unlock(&cd->dma_lock);
    if (retired) {
        regions_retire(cd, retired);
    }
    if (b) {
        buffer_retire(cd, b);
    }
}

uint32_t dext_dma_session_regions(DextSession *s)
{
    uint32_t n;

    core_rwlock_rdlock(&s->cd->dma_lock);
    n = (uint32_t)s->regions.count;
    core_rwlock_unlock(&s->cd->dma_lock);
    return n;
}

void dext_dma_stats(CoreDevice *cd, DextCoreStats *st)
{
    core_rwlock_rdlock(&cd->dma_lock);
    st->dma_regions += cd->dma_regions;
    st->dma_region_bytes += cd->dma_region_bytes;
    st->dma_buffers += cd->dma_buffers;
    core_rwlock_unlock(&cd->dma_lock);
}

/* ------------------------------------------------------------------ */
/* Device DMA through the IOMMU                                         */

/*
 * One piece of a device transfer, translated under dma_lock and copied
 * after it is dropped.  Exactly one of @mem, @buf and @map is set, and
 * holds a reference until the copy is done.
 */
typedef struct DmaSeg {
    ClientMem *mem;         /* client memory at @va */
    DmaBuffer *buf;         /* the DMA buffer's mapping at offset @va */
    DmaMap *map;            /* a client's file mapped here, at @host */
    uint8_t *host;
    uint64_t va;
    size_t len;
} DmaSeg;

#define DMA_SEGS_INLINE 8

/* Drop the references of @n segments. */
static void dma_segs_release(DmaSeg *segs, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        if (segs[i].buf) {
            buffer_unref(segs[i].buf);
        } else if (segs[i].map) {
            dma_map_unref(segs[i].map);
        } else {
            dext_client_mem_unref(segs[i].mem);
        }
    }
}

/*
 * Translate [addr, addr + len) into segments, referencing each.  *@segs
 * starts as an array of DMA_SEGS_INLINE and is replaced by a heap array
 * if more are needed.  Returns the count, 0 if any byte is not mapped
 * (the IOMMU faults the whole transfer), or -1 if memory ran short; on 0
 * and -1 nothing stays referenced.
 */
static int dma_translate(CoreDevice *cd, uint64_t addr, size_t len,
                         DmaSeg **segs)
    DEXT_REQUIRES_SHARED(cd->dma_lock)
{
    int cap = DMA_SEGS_INLINE;
    int n = 0;

    while (len > 0) {
        RangeNode *node = dext_range_tree_floor(&cd->xlate, addr);
        DmaChunk *c;
        uint64_t off;
        size_t step;

        if (node == NULL || addr - node->start >= node->len) {
            dma_segs_release(*segs, n);
            return 0;
        }
        if (n == cap) {
            DmaSeg *bigger = malloc(sizeof(**segs) * (size_t)cap * 2);

            if (bigger == NULL) {
                dma_segs_release(*segs, n);
                return -1;
            }
            memcpy(bigger, *segs, sizeof(**segs) * (size_t)n);
            if (cap > DMA_SEGS_INLINE) {
                free(*segs);
            }
            *segs = bigger;
            cap *= 2;
        }
        c = RANGE_NODE_ENTRY(node, DmaChunk, xlate);
        off = addr - node->start;
        step = node->len - off < len ? (size_t)(node->len - off) : len;
        if (c->map) {
            __atomic_add_fetch(&c->map->refs, 1, __ATOMIC_RELAXED);
            (*segs)[n] = (DmaSeg){ .map = c->map, .host = c->host + off,
                                   .len = step };
        } else if (c->host) {
            DmaBuffer *b = (DmaBuffer *)((char *)c -
                                         offsetof(DmaBuffer, chunk));

            __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
            (*segs)[n] = (DmaSeg){ .buf = b, .va = off, .len = step };
        } else {
            (*segs)[n] = (DmaSeg){ .mem = dext_client_mem_ref(c->owner->mem),
                                   .va = c->va + off, .len = step };
        }
        n++;
        addr += step;
        len -= step;
    }
    return n;
}

static IOReturn dma_access(CoreDevice *cd, uint64_t addr, void *buf,
                           size_t len, bool write)
{
    DmaSeg inline_segs[DMA_SEGS_INLINE];
    DmaSeg *segs = inline_segs;
    IOReturn ret = kIOReturnSuccess;
    uint8_t *p = buf;
    int n = 0;
    int i;

    if (len == 0) {
        return kIOReturnSuccess;
    }
    core_rwlock_rdlock(&cd->dma_lock);
    if (addr + len >= addr) {
        n = dma_translate(cd, addr, len, &segs);
    }
    core_rwlock_unlock(&cd->dma_lock);
    if (n <= 0) {
        __atomic_fetch_add(&cd->core->iommu_faults, 1, __ATOMIC_RELAXED);
        dext_core_ratelimited(cd->core, &cd->log_limit, DEXT_LOG_WARNING,
                              "%s: IOMMU fault: device %s of %zu bytes at "
                              "bus address 0x%llx %s, dropped", cd->dev->name,
                              write ? "write" : "read", len,
                              (unsigned long long)addr,
                              n < 0 ? "(no memory to translate)"
                                    : "not mapped");
        return kIOReturnNotPermitted;
    }

    /* No lock held from here: client memory may stall (userfaultfd). */
    for (i = 0; i < n && ret == kIOReturnSuccess; i++) {
        DmaSeg *g = &segs[i];

        if (g->buf && write) {
            memcpy(g->buf->host + g->va, p, g->len);
        } else if (g->buf) {
            memcpy(p, g->buf->host + g->va, g->len);
        } else if (g->map) {
            bool ok = write ? dext_guarded_copy(g->host, p, g->len,
                                                g->map->base, g->map->len)
                            : dext_guarded_copy(p, g->host, g->len,
                                                g->map->base, g->map->len);

            ret = ok ? kIOReturnSuccess : kIOReturnVMError;
        } else if (write) {
            ret = dext_client_mem_write(g->mem, g->va, p, g->len);
        } else {
            ret = dext_client_mem_read(g->mem, g->va, p, g->len);
        }
        p += g->len;
    }
    dma_segs_release(segs, n);
    if (segs != inline_segs) {
        free(segs);
    }
    if (ret != kIOReturnSuccess) {
        __atomic_fetch_add(&cd->core->iommu_faults, 1, __ATOMIC_RELAXED);
        dext_core_ratelimited(cd->core, &cd->log_limit, DEXT_LOG_WARNING,
                              "%s: IOMMU fault: client memory behind bus "
                              "address 0x%llx is gone", cd->dev->name,
                              (unsigned long long)addr);
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
