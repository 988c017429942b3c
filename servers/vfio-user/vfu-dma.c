/*
 * SPDX-License-Identifier: MIT
 *
 * DMA_MAP / DMA_UNMAP: guest memory arrives as an fd, is mapped here and
 * registered with apple_dext_register_dma_at() at the guest's IOVA, so a
 * guest driver programs the device with the addresses it was given.  The
 * dext keeps chosen bus addresses in 4 KiB pages and wants the memory at
 * the IOVA's offset within one, so each mapping sits in a reservation
 * that puts it there (guest IOVAs are page aligned: usually a no-op).
 * Guest RAM on hugetlbfs can be mapped only in whole huge pages, from
 * offsets that are multiples of them, while a VMM maps its RAM from
 * where the guest's memory map says (1 MiB, say): such a file is mapped
 * in the huge pages around the range, huge-page aligned in the
 * reservation.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "vfu-server.h"

#define BUS_PAGE 0x1000ull

static void why(kern_return_t kr, const VfuDmaMap *m)
{
    switch (kr) {
    case kIOReturnUnsupported:
        vfu_log_client("DMA_MAP 0x%llx+0x%llx: the dext cannot put DMA at "
                       "a chosen bus address (the macOS dext's DART picks "
                       "them); the guest would need a driver that "
                       "translates its addresses, as upstream's apple-dma "
                       "companion does", (unsigned long long)m->address,
                       (unsigned long long)m->size);
        break;
    case kIOReturnNoResources:
        vfu_log_client("DMA_MAP 0x%llx+0x%llx: outside the device's bus "
                       "window (1 MiB up to its DMA mask)",
                       (unsigned long long)m->address,
                       (unsigned long long)m->size);
        break;
    case kIOReturnBusy:
        vfu_log_client("DMA_MAP 0x%llx+0x%llx: shares a 4 KiB bus page "
                       "with another mapping", (unsigned long long)m->address,
                       (unsigned long long)m->size);
        break;
    default:
        vfu_log_client("DMA_MAP 0x%llx+0x%llx: %s",
                       (unsigned long long)m->address,
                       (unsigned long long)m->size, apple_dext_strerror(kr));
    }
}

/* The granule @fd can be mapped in: a huge page on hugetlbfs. */
static uint64_t map_granule(int fd)
{
    struct statfs sf;

    if (fstatfs(fd, &sf) == 0 && sf.f_type == HUGETLBFS_MAGIC &&
        sf.f_bsize > (long)BUS_PAGE && (sf.f_bsize & (sf.f_bsize - 1)) == 0 &&
        (uint64_t)sf.f_bsize <= (1ull << 30)) {
        return (uint64_t)sf.f_bsize;
    }
    return BUS_PAGE;
}

int vfu_dma_map(VfuSession *s, const uint8_t *p, size_t n, int *fds,
                unsigned nfds, VfuReply *rep)
{
    VfuDmaMap m;
    VfuDmaMapping *mp;
    struct stat st;
    uint8_t *res, *va, *base;
    uint64_t gran, map_off, map_len;
    size_t res_len;
    kern_return_t kr;
    int prot = 0, fd = nfds == 1 ? fds[0] : -1;

    if (nfds == 1) {
        fds[0] = -1;
    } else {
        vfu_close_fds(fds, nfds);
    }
    rep->err = EINVAL;
    if (n != sizeof(m) || nfds > 1) {
        goto out;
    }
    memcpy(&m, p, sizeof(m));
    if (m.argsz != sizeof(m) || (m.flags & ~(VFU_DMA_READ | VFU_DMA_WRITE)) ||
        m.size == 0 || m.address + m.size < m.address ||
        (m.address | m.size | m.offset) & (VFU_PGSIZES - 1) ||
        m.size > SIZE_MAX - 2 * BUS_PAGE) {
        goto out;
    }
    if (fd < 0) {
        /* QEMU sends its BIOS area so at every boot: say both cases. */
        vfu_log_client("DMA_MAP 0x%llx+0x%llx without an fd: the device "
                       "cannot reach it (no harm if it is not guest RAM, a "
                       "BIOS area say); guest RAM must be shared memory: "
                       "-object memory-backend-memfd,id=mem,size=...,"
                       "share=on -machine memory-backend=mem",
                       (unsigned long long)m.address,
                       (unsigned long long)m.size);
        rep->err = ENOTSUP;
        goto out;
    }
    if (s->nmaps >= VFU_MAX_DMA_MAPS) {
        rep->err = ENOSPC;
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        m.offset > (uint64_t)st.st_size ||
        m.size > (uint64_t)st.st_size - m.offset) {
        goto out;
    }
    /* The dext maps regions for both directions. */
    prot = PROT_READ | PROT_WRITE;
    gran = map_granule(fd);
    map_off = m.offset & ~(gran - 1);
    map_len = ((m.offset + m.size + gran - 1) & ~(gran - 1)) - map_off;
    if (map_len > SIZE_MAX - gran) {
        goto out;
    }
    res_len = map_len + gran;
    res = mmap(NULL, res_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) {
        rep->err = ENOMEM;
        goto out;
    }
    /*
     * Host pages: va keeps the IOVA's offset in a bus page (the offset
     * in the file is page aligned, so it does).  Huge pages: the mapping
     * starts on one, and va is m.offset's place in it, page aligned.
     */
    base = gran == BUS_PAGE ?
           res + ((m.address - (uintptr_t)res) & (BUS_PAGE - 1)) :
           (uint8_t *)(((uintptr_t)res + gran - 1) & ~(uintptr_t)(gran - 1));
    if (mmap(base, map_len, prot, MAP_SHARED | MAP_FIXED, fd,
             (off_t)map_off) == MAP_FAILED) {
        munmap(res, res_len);
        rep->err = errno == EACCES ? EACCES : ENOMEM;
        goto out;
    }
    va = base + (m.offset - map_off);
    mp = realloc(s->maps, (s->nmaps + 1) * sizeof(*mp));
    if (mp == NULL) {
        munmap(res, res_len);
        rep->err = ENOMEM;
        goto out;
    }
    s->maps = mp;
    kr = apple_dext_register_dma_at(s->conn, m.address, (uintptr_t)va,
                                    m.size, m.address);
    if (kr != kIOReturnSuccess) {
        why(kr, &m);
        munmap(res, res_len);
        rep->err = kr == kIOReturnBusy || kr == kIOReturnStillOpen ?
                   EEXIST : vfu_errno(kr);
        goto out;
    }
    mp = &s->maps[s->nmaps++];
    mp->iova = m.address;
    mp->size = m.size;
    mp->reserve = res;
    mp->reserve_len = res_len;
    rep->err = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    return 0;
}

static void drop(VfuSession *s, uint32_t i)
{
    VfuDmaMapping *mp = &s->maps[i];

    apple_dext_unregister_dma(s->conn, mp->iova);
    munmap(mp->reserve, mp->reserve_len);
    s->maps[i] = s->maps[--s->nmaps];
}

int vfu_dma_unmap(VfuSession *s, const uint8_t *p, size_t n, VfuReply *rep)
{
    VfuDmaUnmap u;
    uint32_t i;

    if (n != sizeof(u)) {
        rep->err = EINVAL;
        return 0;
    }
    memcpy(&u, p, sizeof(u));
    if (u.argsz < sizeof(u) || (u.flags & ~VFU_DMA_UNMAP_ALL)) {
        rep->err = EINVAL;
        return 0;
    }
    if (u.flags & VFU_DMA_UNMAP_ALL) {
        if (u.address != 0 || u.size != 0) {
            rep->err = EINVAL;
            return 0;
        }
        vfu_dma_unmap_all(s);
    } else {
        for (i = 0; i < s->nmaps; i++) {
            if (s->maps[i].iova == u.address && s->maps[i].size == u.size) {
                break;
            }
        }
        if (i == s->nmaps) {
            rep->err = ENOENT;
            return 0;
        }
        drop(s, i);
    }
    memcpy(rep->payload, &u, sizeof(u));
    rep->len = sizeof(u);
    return 0;
}

void vfu_dma_unmap_all(VfuSession *s)
{
    while (s->nmaps > 0) {
        drop(s, s->nmaps - 1);
    }
    free(s->maps);
    s->maps = NULL;
}
