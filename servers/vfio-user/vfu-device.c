/*
 * SPDX-License-Identifier: MIT
 *
 * The device's regions: DEVICE_GET_INFO, DEVICE_GET_REGION_INFO,
 * REGION_READ/WRITE(_MULTI) and DEVICE_RESET.  Config space passes
 * through, but for what the server virtualises: the BAR registers (the
 * dext shows type bits only, so sizing and the addresses the guest
 * writes live here), the expansion ROM (none) and the interrupt pin (no
 * INTx is delivered).  BARs are reached through MMIO calls, and those
 * with a file of their own (apple_dext_map_bar_fd(): ivshmem's shared
 * memory) are offered to the client whole with a sparse-mmap capability
 * and the fd beside the reply, so it maps them itself.
 */

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vfu-server.h"

#define PCI_BAR0            0x10
#define PCI_ROM             0x30
#define PCI_INTERRUPT_PIN   0x3d
#define PCI_CAP_PTR         0x34
#define PCI_STATUS          0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_ID_MSI      0x05
#define PCI_CAP_ID_MSIX     0x11

static uint64_t cfg(VfuSession *s, uint64_t off, uint64_t width)
{
    uint64_t v = 0;

    if (apple_dext_config_read(s->conn, off, width, &v) != kIOReturnSuccess) {
        return 0;
    }
    return v;
}

/* Vectors of the MSI and MSI-X capabilities, from the capability list. */
static void probe_caps(VfuSession *s)
{
    uint64_t ptr;
    unsigned guard = 0;

    if (!(cfg(s, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST)) {
        return;
    }
    for (ptr = cfg(s, PCI_CAP_PTR, 1) & 0xfc; ptr >= 0x40 && guard < 48;
         ptr = cfg(s, ptr + 1, 1) & 0xfc, guard++) {
        uint64_t id = cfg(s, ptr, 1), ctrl = cfg(s, ptr + 2, 2);

        if (id == PCI_CAP_ID_MSI) {
            s->msi_count = 1u << ((ctrl >> 1) & 7);
        } else if (id == PCI_CAP_ID_MSIX) {
            s->msix_count = (uint32_t)(ctrl & 0x7ff) + 1;
        }
    }
    if (s->msi_count > VFU_MAX_VECTORS) {
        s->msi_count = VFU_MAX_VECTORS;
    }
    if (s->msix_count > VFU_MAX_VECTORS) {
        s->msix_count = VFU_MAX_VECTORS;
    }
}

/* Whether memory BAR @i has an fd the client may map, and keep it. */
static void probe_mappable(VfuSession *s, uint8_t i)
{
    VfuBar *b = &s->bars[i];
    long page = sysconf(_SC_PAGESIZE);
    uint64_t off = 0, size = 0;
    bool writable = false;
    int fd = -1;

    if (b->size == 0 || (b->type & 1) ||
        apple_dext_map_bar_fd(s->conn, i, &fd, &off, &size, &writable) !=
        kIOReturnSuccess) {
        return;         /* trapped: REGION_READ/WRITE only */
    }
    if (!writable || size != b->size || page <= 0 ||
        b->size % (uint64_t)page != 0 || off % (uint64_t)page != 0) {
        close(fd);
        return;
    }
    b->mappable = true;
    b->fd = fd;
    b->fd_offset = off;
}

int vfu_device_probe(VfuSession *s)
{
    uint64_t v;
    uint8_t i;

    /* Extended config space answers reads past 0xff. */
    s->config_size = apple_dext_config_read(s->conn, 0x100, 4, &v) ==
                     kIOReturnSuccess ? 4096 : 256;
    for (i = 0; i < 6; i++) {
        VfuBar *b = &s->bars[i];

        if (apple_dext_get_bar_info(s->conn, i, &b->mem_idx, &b->size,
                                    &b->type) != kIOReturnSuccess) {
            b->size = 0;
        }
        probe_mappable(s, i);
    }
    probe_caps(s);
    return 0;
}

int vfu_device_info(VfuSession *s, const uint8_t *p, size_t n,
                    VfuReply *rep)
{
    VfuDeviceInfo in, out = { 0 };

    if (n < sizeof(in)) {
        rep->err = EINVAL;
        return 0;
    }
    memcpy(&in, p, sizeof(in));
    out.argsz = sizeof(out);
    out.flags = VFU_DEVICE_FLAGS_PCI | VFU_DEVICE_FLAGS_RESET;
    out.num_regions = VFU_PCI_NUM_REGIONS;
    out.num_irqs = VFU_PCI_NUM_IRQS;
    if (in.argsz < sizeof(out)) {
        rep->err = EINVAL;
        return 0;
    }
    memcpy(rep->payload, &out, sizeof(out));
    rep->len = sizeof(out);
    return 0;
}

/*
 * A mappable BAR's reply: the info, then one sparse-mmap area covering
 * the whole BAR, the fd beside it.  A client whose argsz is too small
 * gets the size it needs in argsz, without the capability or the fd,
 * and asks again.  Unlike VFIO's ioctl, that reply does not say CAPS:
 * QEMU's vfio-user client refuses CAPS with a cap_offset outside the
 * reply.
 */
static int region_info_mmap(VfuBar *b, uint32_t argsz,
                            VfuRegionInfo *out, VfuReply *rep)
{
    VfuSparseMmap cap = { { VFU_CAP_SPARSE_MMAP, 1, 0 }, 1, 0 };
    VfuSparseArea area = { 0, b->size };
    uint32_t need = sizeof(*out) + sizeof(cap) + sizeof(area);
    int fd;

    out->flags |= VFU_REGION_FLAG_MMAP;
    if (argsz < need) {
        out->argsz = need;
        memcpy(rep->payload, out, sizeof(*out));
        rep->len = sizeof(*out);
        return 0;
    }
    fd = dup(b->fd);
    if (fd < 0) {
        rep->err = errno == EMFILE || errno == ENFILE ? EMFILE : EIO;
        return 0;
    }
    out->argsz = need;
    out->flags |= VFU_REGION_FLAG_CAPS;
    out->cap_offset = sizeof(*out);
    out->offset = b->fd_offset;
    memcpy(rep->payload, out, sizeof(*out));
    memcpy(rep->payload + sizeof(*out), &cap, sizeof(cap));
    memcpy(rep->payload + sizeof(*out) + sizeof(cap), &area, sizeof(area));
    rep->len = need;
    rep->fds[0] = fd;
    rep->nfds = 1;
    return 0;
}

int vfu_region_info(VfuSession *s, const uint8_t *p, size_t n,
                    VfuReply *rep)
{
    VfuRegionInfo in, out = { 0 };

    if (n < sizeof(in)) {
        rep->err = EINVAL;
        return 0;
    }
    memcpy(&in, p, sizeof(in));
    if (in.argsz < sizeof(out) || in.index >= VFU_PCI_NUM_REGIONS) {
        rep->err = EINVAL;
        return 0;
    }
    out.argsz = sizeof(out);
    out.index = in.index;
    if (in.index == VFU_PCI_CONFIG) {
        out.size = s->config_size;
        out.flags = VFU_REGION_FLAG_READ | VFU_REGION_FLAG_WRITE;
    } else if (in.index < 6 && s->bars[in.index].size != 0 &&
               !(s->bars[in.index].type & 1)) {
        out.size = s->bars[in.index].size;
        out.flags = VFU_REGION_FLAG_READ | VFU_REGION_FLAG_WRITE;
        if (s->bars[in.index].mappable) {
            return region_info_mmap(&s->bars[in.index], in.argsz, &out,
                                    rep);
        }
    }
    memcpy(rep->payload, &out, sizeof(out));
    rep->len = sizeof(out);
    return 0;
}

/* The virtual value of config dword @off (a BAR, the ROM). */
static bool virtual_dword(VfuSession *s, uint64_t off, uint32_t *val)
{
    unsigned i;

    if (off == PCI_ROM) {
        *val = 0;
        return true;
    }
    if (off < PCI_BAR0 || off >= PCI_BAR0 + 24) {
        return false;
    }
    i = (unsigned)(off - PCI_BAR0) / 4;
    if (s->bars[i].size != 0) {
        VfuBar *b = &s->bars[i];
        uint64_t mask = ~(b->size - 1);

        *val = (uint32_t)((b->addr & mask & ~0xfull) | b->type);
    } else if (i > 0 && s->bars[i - 1].size != 0 &&
               (s->bars[i - 1].type & 6) == 4) {
        VfuBar *b = &s->bars[i - 1];

        *val = (uint32_t)((b->addr & ~(b->size - 1)) >> 32);
    } else {
        *val = 0;
    }
    return true;
}

/* The guest wrote @val to virtual dword @off. */
static void virtual_write(VfuSession *s, uint64_t off, uint32_t val)
{
    unsigned i;

    if (off < PCI_BAR0 || off >= PCI_BAR0 + 24) {
        return;
    }
    i = (unsigned)(off - PCI_BAR0) / 4;
    if (s->bars[i].size != 0) {
        s->bars[i].addr = (s->bars[i].addr & ~0xffffffffull) | val;
    } else if (i > 0 && s->bars[i - 1].size != 0 &&
               (s->bars[i - 1].type & 6) == 4) {
        s->bars[i - 1].addr = (s->bars[i - 1].addr & 0xffffffffull) |
                              ((uint64_t)val << 32);
    }
}

static int config_read(VfuSession *s, uint64_t off, uint8_t *buf,
                       uint32_t count)
{
    kern_return_t kr;
    uint32_t i;

    kr = apple_dext_config_read_block(s->conn, off, buf, count);
    if (kr != kIOReturnSuccess) {
        return vfu_errno(kr);
    }
    for (i = 0; i < count; i++) {
        uint64_t a = off + i, dw = a & ~3ull;
        uint32_t v;

        if (a == PCI_INTERRUPT_PIN) {
            buf[i] = 0;
        } else if (virtual_dword(s, dw, &v)) {
            buf[i] = (uint8_t)(v >> (8 * (a - dw)));
        }
    }
    return 0;
}

/*
 * Write @len bytes at @off through to the device, each naturally aligned
 * piece at its own width: a guest's dword write reaches the device as
 * one dword write, as it would on real hardware, so a width-sensitive
 * register (a virtio pci_cfg window, say) sees what the guest wrote, and
 * it costs one call instead of four.  A piece the device refuses (a
 * read-only register) is dropped, as hardware drops such a write.
 */
static void config_pass(VfuSession *s, uint64_t off, const uint8_t *buf,
                        uint32_t len)
{
    while (len > 0) {
        uint32_t w = 4, v = 0, k;

        while (w > 1 && ((off & (w - 1)) || len < w)) {
            w /= 2;
        }
        for (k = 0; k < w; k++) {
            v |= (uint32_t)buf[k] << (8 * k);
        }
        (void)apple_dext_config_write(s->conn, off, w, v);
        off += w;
        buf += w;
        len -= w;
    }
}

static int config_write(VfuSession *s, uint64_t off, const uint8_t *buf,
                        uint32_t count)
{
    uint32_t i = 0, j;

    while (i < count) {
        uint64_t a = off + i, dw = a & ~3ull;
        uint32_t v;

        if (virtual_dword(s, dw, &v)) {
            /* Merge the bytes of this dword and store it here. */
            for (; i < count && ((off + i) & ~3ull) == dw; i++) {
                unsigned sh = 8 * (unsigned)((off + i) - dw);

                v = (v & ~(0xffu << sh)) | ((uint32_t)buf[i] << sh);
            }
            virtual_write(s, dw, v);
            continue;
        }
        if (a == PCI_INTERRUPT_PIN) {
            i++;
            continue;
        }
        /* The bytes up to the next virtual dword or the pin go through. */
        for (j = i + 1; j < count && off + j != PCI_INTERRUPT_PIN &&
             ((off + j) & 3 || !virtual_dword(s, off + j, &v)); j++) {
        }
        config_pass(s, a, buf + i, j - i);
        i = j;
    }
    return 0;
}

/* A BAR access: naturally aligned widths 1/2/4/8, piecewise. */
static int bar_access(VfuSession *s, VfuBar *b, uint64_t off, uint8_t *buf,
                      uint32_t count, bool write)
{
    uint32_t i = 0;

    while (i < count) {
        uint64_t a = off + i, w = 8, v = 0;
        kern_return_t kr;

        while (w > 1 && ((a & (w - 1)) || count - i < w)) {
            w /= 2;
        }
        if (write) {
            memcpy(&v, buf + i, w);
            kr = apple_dext_mmio_write(s->conn, b->mem_idx, a, w, v);
        } else {
            kr = apple_dext_mmio_read(s->conn, b->mem_idx, a, w, &v);
            memcpy(buf + i, &v, w);
        }
        if (kr != kIOReturnSuccess) {
            return vfu_errno(kr);
        }
        i += (uint32_t)w;
    }
    return 0;
}

/* Bounds of an access to region @region: 0 or an errno. */
static int access_check(VfuSession *s, const VfuRegionAccess *ra,
                        uint64_t *size)
{
    if (ra->count == 0 || ra->count > VFU_MAX_DATA_XFER) {
        return EINVAL;
    }
    if (ra->region == VFU_PCI_CONFIG) {
        *size = s->config_size;
    } else if (ra->region < 6 && s->bars[ra->region].size != 0 &&
               !(s->bars[ra->region].type & 1)) {
        *size = s->bars[ra->region].size;
    } else {
        return EINVAL;
    }
    if (ra->offset >= *size || ra->count > *size - ra->offset) {
        return EINVAL;
    }
    return 0;
}

static int region_rw(VfuSession *s, const VfuRegionAccess *ra, uint8_t *buf,
                     bool write)
{
    uint64_t size;
    int err = access_check(s, ra, &size);

    if (err != 0) {
        return err;
    }
    if (ra->region == VFU_PCI_CONFIG) {
        return write ? config_write(s, ra->offset, buf, ra->count)
                     : config_read(s, ra->offset, buf, ra->count);
    }
    return bar_access(s, &s->bars[ra->region], ra->offset, buf, ra->count,
                      write);
}

int vfu_region_read(VfuSession *s, const uint8_t *p, size_t n,
                    VfuReply *rep)
{
    VfuRegionAccess ra;

    if (n != sizeof(ra)) {
        rep->err = EINVAL;
        return 0;
    }
    memcpy(&ra, p, sizeof(ra));
    rep->err = region_rw(s, &ra, rep->payload + sizeof(ra), false);
    if (rep->err == 0) {
        memcpy(rep->payload, &ra, sizeof(ra));
        rep->len = sizeof(ra) + ra.count;
    }
    return 0;
}

int vfu_region_write(VfuSession *s, const uint8_t *p, size_t n,
                     VfuReply *rep)
{
    VfuRegionAccess ra;
    uint8_t *data = rep->payload + sizeof(ra);

    if (n < sizeof(ra)) {
        rep->err = EINVAL;
        return 0;
    }
    memcpy(&ra, p, sizeof(ra));
    if (ra.count != n - sizeof(ra)) {
        rep->err = EINVAL;
        return 0;
    }
    /* Copied: the message buffer is const, and checked first. */
    if (ra.count <= VFU_MAX_DATA_XFER) {
        memcpy(data, p + sizeof(ra), ra.count);
    }
    rep->err = region_rw(s, &ra, data, true);
    if (rep->err == 0) {
        memcpy(rep->payload, &ra, sizeof(ra));
        rep->len = sizeof(ra);
    }
    return 0;
}

int vfu_region_write_multi(VfuSession *s, const uint8_t *p, size_t n,
                           VfuReply *rep)
{
    uint64_t cnt, i;

    if (n < 8) {
        rep->err = EINVAL;
        return 0;
    }
    memcpy(&cnt, p, 8);
    if (cnt == 0 || cnt > (n - 8) / sizeof(VfuRegionWrite1) ||
        n - 8 != cnt * sizeof(VfuRegionWrite1)) {
        rep->err = EINVAL;
        return 0;
    }
    for (i = 0; i < cnt; i++) {
        VfuRegionWrite1 w;
        VfuRegionAccess ra;

        memcpy(&w, p + 8 + i * sizeof(w), sizeof(w));
        if (w.count > sizeof(w.data)) {
            rep->err = EINVAL;
            return 0;
        }
        ra.offset = w.offset;
        ra.region = w.region;
        ra.count = w.count;
        rep->err = region_rw(s, &ra, w.data, true);
        if (rep->err != 0) {
            return 0;
        }
    }
    memcpy(rep->payload, &cnt, 8);
    rep->len = 8;
    return 0;
}

int vfu_device_reset(VfuSession *s, VfuReply *rep)
{
    kern_return_t kr = apple_dext_reset_device(s->conn);

    rep->err = vfu_errno(kr);
    if (kr == kIOReturnSuccess) {
        unsigned i;

        for (i = 0; i < 6; i++) {
            s->bars[i].addr = 0;
        }
    }
    return 0;
}
