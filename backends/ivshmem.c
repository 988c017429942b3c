/*
 * SPDX-License-Identifier: MIT
 *
 * An emulated "ivshmem" inter-VM shared memory device, modelled on its
 * public specification (QEMU docs/specs/ivshmem-spec.rst, revision 1):
 *
 *   BAR0  256-byte register BAR: IntrMask, IntrStatus, IVPosition,
 *         Doorbell, then (our extension, in the spec's reserved range) a
 *         DMA engine and firing instrumentation, see docs/ivshmem.md
 *   BAR1  MSI-X table (up to 256 vectors) and PBA, a register BAR: table
 *         writes must be seen by the device, so it is reached through
 *         MMIO calls and never mapped
 *   BAR2  64-bit prefetchable shared memory backed by a memfd, mappable
 *         by clients and seen by the device itself
 *
 * There are no peers: the device is peer 0 and a doorbell naming peer 0
 * interrupts itself, which is what a driver test needs ("a register that
 * fires any vector").  MSI-X masking is honoured: a message for a masked
 * vector (or with the function masked) sets its PBA bit and is sent when
 * the mask is cleared.  The config space is 4 KiB, as on a PCI Express
 * function, so the whole extended space can be read.
 *
 * Locking: one mutex guards the registers, table and PBA.  Host hooks
 * (MSI, DMA, log) are called without it, so a host holding its own locks
 * while calling into the device cannot deadlock against a firing.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/pciemu.h"
#include "libdext/ivshmem.h"

#define IVSHMEM_DEFAULT_BUS     0
#define IVSHMEM_DEFAULT_DEV     4
#define IVSHMEM_DEFAULT_FN      0
#define IVSHMEM_DEFAULT_VECTORS 256
#define IVSHMEM_DEFAULT_SIZE    (4ull << 20)

#define MSIX_ENTRY_ADDR_LO      0x0
#define MSIX_ENTRY_ADDR_HI      0x4
#define MSIX_ENTRY_DATA         0x8
#define MSIX_ENTRY_CTRL         0xc
#define MSIX_CTRL_MASKED        0x1u

typedef struct IvshmemMsixEntry {
    uint32_t addr_lo;
    uint32_t addr_hi;
    uint32_t data;
    uint32_t ctrl;
} IvshmemMsixEntry;

typedef struct IvshmemState {
    DextDevice *dev;
    pthread_mutex_t lock;       /* everything below but the memory */

    PCIEmu pci;
    unsigned nvectors;
    uint32_t intr_mask;
    uint32_t intr_status;
    uint64_t dma_shm;
    uint64_t dma_bus;
    uint64_t dma_len;
    uint32_t dma_cmd;
    uint32_t dma_vector;
    uint64_t dma_epoch;         /* bumped by reset: see run_dma() */
    uint64_t fire_time;
    uint64_t fire_count;
    IvshmemMsixEntry table[IVSHMEM_MAX_VECTORS];
    uint64_t pba[IVSHMEM_MAX_VECTORS / 64];

    /* The shared memory; fixed for the device's life, no lock needed. */
    int shm_fd;
    uint8_t *shm;
    uint64_t shm_size;
} IvshmemState;

/* Vectors to send once the lock is dropped. */
typedef struct IvshmemFire {
    uint64_t bits[IVSHMEM_MAX_VECTORS / 64];
    bool any;
} IvshmemFire;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t width_ones(uint32_t width)
{
    return width >= 8 ? UINT64_MAX : (1ull << (8 * width)) - 1;
}

static bool vector_masked_locked(const IvshmemState *s, unsigned v)
{
    return dext_pciemu_msix_function_masked(&s->pci) ||
           (s->table[v].ctrl & MSIX_CTRL_MASKED) != 0;
}

/*
 * A message for vector @v: held in the PBA while masked, else queued in
 * @f to be sent without the lock.  Without MSI-X enabled there is no way
 * to signal (revision 1 has no INTx source), so the message is lost, as
 * the spec's "the write is ignored".
 */
static void fire_locked(IvshmemState *s, unsigned v, IvshmemFire *f)
{
    if (v >= s->nvectors || !dext_pciemu_msix_enabled(&s->pci)) {
        return;
    }
    if (vector_masked_locked(s, v)) {
        s->pba[v / 64] |= 1ull << (v % 64);
        return;
    }
    f->bits[v / 64] |= 1ull << (v % 64);
    f->any = true;
}

/* Send the PBA's pending messages whose masks are now clear. */
static void release_pending_locked(IvshmemState *s, IvshmemFire *f)
{
    unsigned v;

    if (!dext_pciemu_msix_enabled(&s->pci) ||
        dext_pciemu_msix_function_masked(&s->pci)) {
        return;
    }
    for (v = 0; v < s->nvectors; v++) {
        uint64_t bit = 1ull << (v % 64);

        if ((s->pba[v / 64] & bit) && !(s->table[v].ctrl & MSIX_CTRL_MASKED)) {
            s->pba[v / 64] &= ~bit;
            f->bits[v / 64] |= bit;
            f->any = true;
        }
    }
}

static void send_fired(IvshmemState *s, const IvshmemFire *f)
{
    DextDeviceHost *h = &s->dev->host;
    unsigned w;

    if (!f->any || h->raise_msi == NULL) {
        return;
    }
    for (w = 0; w < IVSHMEM_MAX_VECTORS / 64; w++) {
        uint64_t m = f->bits[w];

        while (m != 0) {
            unsigned b = (unsigned)__builtin_ctzll(m);

            m &= m - 1;
            h->raise_msi(h->opaque, w * 64 + b);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Config space                                                         */

static IOReturn ivshmem_config_read(DextDevice *dev, uint32_t off,
                                    uint32_t width, uint32_t *val)
{
    IvshmemState *s = dev->priv;
    IOReturn ret;

    pthread_mutex_lock(&s->lock);
    ret = dext_pciemu_config_read(&s->pci, off, width, val);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static IOReturn ivshmem_config_write(DextDevice *dev, uint32_t off,
                                     uint32_t width, uint32_t val)
{
    IvshmemState *s = dev->priv;
    IvshmemFire f = { { 0 } };
    IOReturn ret;

    pthread_mutex_lock(&s->lock);
    ret = dext_pciemu_config_write(&s->pci, off, width, val);
    /* Enabling MSI-X or clearing the function mask releases the PBA. */
    release_pending_locked(s, &f);
    pthread_mutex_unlock(&s->lock);
    send_fired(s, &f);
    return ret;
}

/* ------------------------------------------------------------------ */
/* BAR0: registers                                                      */

static bool is_reg64(uint64_t off)
{
    switch (off & ~7ull) {
    case IVSHMEM_REG_DMA_SHM:
    case IVSHMEM_REG_DMA_BUS:
    case IVSHMEM_REG_DMA_LEN:
    case IVSHMEM_REG_FIRE_TIME:
    case IVSHMEM_REG_FIRE_COUNT:
        return true;
    }
    return false;
}

static uint64_t *reg64_ptr(IvshmemState *s, uint64_t base)
{
    switch (base) {
    case IVSHMEM_REG_DMA_SHM:
        return &s->dma_shm;
    case IVSHMEM_REG_DMA_BUS:
        return &s->dma_bus;
    case IVSHMEM_REG_DMA_LEN:
        return &s->dma_len;
    case IVSHMEM_REG_FIRE_TIME:
        return &s->fire_time;
    case IVSHMEM_REG_FIRE_COUNT:
        return &s->fire_count;
    }
    return NULL;
}

static uint64_t reg_read_locked(IvshmemState *s, uint64_t off, uint32_t width)
{
    if (is_reg64(off)) {
        uint64_t v = *reg64_ptr(s, off & ~7ull);

        return (v >> (8 * (off & 7))) & width_ones(width);
    }
    switch (off) {
    case IVSHMEM_REG_INTR_MASK:
        return s->intr_mask;
    case IVSHMEM_REG_INTR_STATUS:
        return s->intr_status;
    case IVSHMEM_REG_IVPOSITION:
        return 0;               /* we are peer 0 */
    case IVSHMEM_REG_DMA_CMD:
        return s->dma_cmd;
    case IVSHMEM_REG_DMA_VECTOR:
        return s->dma_vector;
    case IVSHMEM_REG_VECTORS:
        return s->nvectors;
    }
    /* Doorbell and burst are write-only; reserved reads as 0. */
    return 0;
}

/*
 * The DMA engine: copy between BAR2 and a bus address in one go, with
 * @lock dropped (the registers cannot change meanwhile: writes are
 * ignored while RUN is set).  Completes before the MMIO write that
 * started it returns.
 */
static void run_dma(IvshmemState *s, IvshmemFire *f)
{
    DextDevice *dev = s->dev;
    bool to_bus = (s->dma_cmd & IVSHMEM_DMA_TO_BUS) != 0;
    uint64_t shm = s->dma_shm, bus = s->dma_bus, len = s->dma_len;
    uint64_t epoch = s->dma_epoch;
    IOReturn ret = kIOReturnSuccess;

    if (shm > s->shm_size || len > s->shm_size - shm) {
        ret = kIOReturnBadArgument;
    }
    pthread_mutex_unlock(&s->lock);

    if (ret != kIOReturnSuccess) {
        dext_device_logf(dev, DEXT_LOG_WARNING,
                         "guest error: DMA range 0x%llx+0x%llx outside "
                         "the 0x%llx-byte shared memory",
                         (unsigned long long)shm, (unsigned long long)len,
                         (unsigned long long)s->shm_size);
    } else if (len > 0 && to_bus) {
        ret = dev->host.dma_write ?
              dev->host.dma_write(dev->host.opaque, bus & dev->dma_mask,
                                  s->shm + shm, len) :
              kIOReturnNotPermitted;
    } else if (len > 0) {
        ret = dev->host.dma_read ?
              dev->host.dma_read(dev->host.opaque, bus & dev->dma_mask,
                                 s->shm + shm, len) :
              kIOReturnNotPermitted;
    }

    pthread_mutex_lock(&s->lock);
    if (epoch != s->dma_epoch) {
        /*
         * A reset came while the client's memory kept us (it may stall
         * for ever, so a reset never waits): the transfer was aborted.
         */
        return;
    }
    s->dma_cmd &= ~IVSHMEM_DMA_RUN;
    if (ret != kIOReturnSuccess) {
        s->dma_cmd |= IVSHMEM_DMA_ERROR;
    }
    if (s->dma_cmd & IVSHMEM_DMA_IRQ) {
        fire_locked(s, s->dma_vector, f);
    }
}

static void reg_write_locked(IvshmemState *s, uint64_t off, uint32_t width,
                             uint64_t val, IvshmemFire *f)
{
    if (is_reg64(off)) {
        uint64_t base = off & ~7ull;
        unsigned shift = 8 * (unsigned)(off & 7);
        uint64_t mask = width_ones(width) << shift;
        uint64_t *reg = reg64_ptr(s, base);

        if (base == IVSHMEM_REG_FIRE_TIME || base == IVSHMEM_REG_FIRE_COUNT ||
            (s->dma_cmd & IVSHMEM_DMA_RUN)) {
            return;
        }
        *reg = (*reg & ~mask) | ((val << shift) & mask);
        return;
    }
    switch (off) {
    case IVSHMEM_REG_INTR_MASK:
        s->intr_mask = (uint32_t)val;
        break;
    case IVSHMEM_REG_INTR_STATUS:
        s->intr_status = (uint32_t)val;
        break;
    case IVSHMEM_REG_DOORBELL:
        /*
         * The firing's timestamp is taken here, when the device decodes
         * the write: the latency benchmark measures from it to the
         * client's handler.  Only peer 0 (ourselves) exists.
         */
        s->fire_time = now_ns();
        if ((val >> 16) == 0) {
            s->fire_count++;
            fire_locked(s, (unsigned)(val & 0xffff), f);
        }
        break;
    case IVSHMEM_REG_DMA_CMD:
        if ((val & IVSHMEM_DMA_RUN) && !(s->dma_cmd & IVSHMEM_DMA_RUN)) {
            s->dma_cmd = (uint32_t)val & (IVSHMEM_DMA_RUN |
                                          IVSHMEM_DMA_TO_BUS |
                                          IVSHMEM_DMA_IRQ);
            run_dma(s, f);
        }
        break;
    case IVSHMEM_REG_DMA_VECTOR:
        if (!(s->dma_cmd & IVSHMEM_DMA_RUN)) {
            s->dma_vector = (uint32_t)val;
        }
        break;
    }
}

/*
 * A burst fires every vector @rounds times.  Sent as it goes, without
 * the lock, so a draining client races real deliveries; masked vectors
 * still go to the PBA.
 */
static void run_burst(IvshmemState *s, uint32_t rounds)
{
    uint32_t r;
    unsigned v;

    for (r = 0; r < rounds; r++) {
        for (v = 0; v < s->nvectors; v++) {
            IvshmemFire f = { { 0 } };

            pthread_mutex_lock(&s->lock);
            s->fire_count++;
            fire_locked(s, v, &f);
            pthread_mutex_unlock(&s->lock);
            if (f.any && s->dev->host.raise_msi != NULL) {
                s->dev->host.raise_msi(s->dev->host.opaque, v);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* BAR1: MSI-X table and PBA                                            */

static uint64_t msix_read_locked(IvshmemState *s, uint64_t off,
                                 uint32_t width)
{
    uint64_t v = 0;
    uint32_t i;

    for (i = 0; i < width; i += 4) {
        uint64_t o = off + i;
        uint32_t d = 0;

        if (o < IVSHMEM_PBA_OFFSET) {
            unsigned e = (unsigned)(o / 16);

            if (e < s->nvectors) {
                d = ((const uint32_t *)&s->table[e])[(o % 16) / 4];
            }
        } else if (o - IVSHMEM_PBA_OFFSET < sizeof(s->pba)) {
            uint64_t q = s->pba[(o - IVSHMEM_PBA_OFFSET) / 8];

            d = (uint32_t)(q >> (8 * ((o - IVSHMEM_PBA_OFFSET) & 4)));
        }
        v |= (uint64_t)d << (8 * i);
    }
    return v;
}

static void msix_write_locked(IvshmemState *s, uint64_t off, uint32_t width,
                              uint64_t val, IvshmemFire *f)
{
    uint32_t i;

    for (i = 0; i < width; i += 4) {
        uint64_t o = off + i;
        unsigned e = (unsigned)(o / 16);

        /* The PBA is read-only; so is anything past the table. */
        if (o >= IVSHMEM_PBA_OFFSET || e >= s->nvectors) {
            continue;
        }
        ((uint32_t *)&s->table[e])[(o % 16) / 4] = (uint32_t)(val >> (8 * i));
        if ((o % 16) == MSIX_ENTRY_CTRL) {
            s->table[e].ctrl &= MSIX_CTRL_MASKED;
            release_pending_locked(s, f);
        }
    }
}

/* ------------------------------------------------------------------ */
/* MMIO                                                                 */

static IOReturn ivshmem_mmio_read(DextDevice *dev, int bar, uint64_t off,
                                  uint32_t width, uint64_t *val)
{
    IvshmemState *s = dev->priv;
    uint64_t v = 0;

    if (bar == IVSHMEM_SHM_BAR) {
        if (off >= s->shm_size || width > s->shm_size - off) {
            return kIOReturnBadArgument;
        }
        memcpy(&v, s->shm + off, width);
        *val = v;
        return kIOReturnSuccess;
    }
    if ((bar != IVSHMEM_REG_BAR && bar != IVSHMEM_MSIX_BAR) ||
        (width != 4 && width != 8) || (off & (width - 1)) != 0) {
        *val = width_ones(width);
        return bar == IVSHMEM_REG_BAR || bar == IVSHMEM_MSIX_BAR ?
               kIOReturnSuccess : kIOReturnBadArgument;
    }
    pthread_mutex_lock(&s->lock);
    if (bar == IVSHMEM_MSIX_BAR) {
        v = msix_read_locked(s, off, width);
    } else if (width == 8 && !is_reg64(off)) {
        v = reg_read_locked(s, off, 4) | reg_read_locked(s, off + 4, 4) << 32;
    } else {
        v = reg_read_locked(s, off, width);
    }
    pthread_mutex_unlock(&s->lock);
    *val = v;
    return kIOReturnSuccess;
}

static IOReturn ivshmem_mmio_write(DextDevice *dev, int bar, uint64_t off,
                                   uint32_t width, uint64_t val)
{
    IvshmemState *s = dev->priv;
    IvshmemFire f = { { 0 } };
    uint32_t burst = 0;

    if (bar == IVSHMEM_SHM_BAR) {
        if (off >= s->shm_size || width > s->shm_size - off) {
            return kIOReturnBadArgument;
        }
        memcpy(s->shm + off, &val, width);
        return kIOReturnSuccess;
    }
    if (bar != IVSHMEM_REG_BAR && bar != IVSHMEM_MSIX_BAR) {
        return kIOReturnBadArgument;
    }
    if ((width != 4 && width != 8) || (off & (width - 1)) != 0) {
        dext_device_logf(dev, DEXT_LOG_WARNING,
                         "guest error: %u-byte write at BAR%d+0x%llx ignored",
                         width, bar, (unsigned long long)off);
        return kIOReturnSuccess;
    }
    val &= width_ones(width);
    pthread_mutex_lock(&s->lock);
    if (bar == IVSHMEM_MSIX_BAR) {
        msix_write_locked(s, off, width, val, &f);
    } else if (off == IVSHMEM_REG_BURST) {
        burst = (uint32_t)val < IVSHMEM_BURST_MAX ? (uint32_t)val
                                                   : IVSHMEM_BURST_MAX;
    } else if (width == 8 && !is_reg64(off)) {
        reg_write_locked(s, off, 4, val & 0xffffffffu, &f);
        reg_write_locked(s, off + 4, 4, val >> 32, &f);
    } else {
        reg_write_locked(s, off, width, val, &f);
    }
    pthread_mutex_unlock(&s->lock);
    send_fired(s, &f);
    if (burst > 0) {
        run_burst(s, burst);
    }
    return kIOReturnSuccess;
}

static IOReturn ivshmem_map_bar(DextDevice *dev, int bar, DextMemory *out)
{
    IvshmemState *s = dev->priv;

    if (bar != IVSHMEM_SHM_BAR) {
        return kIOReturnUnsupported;
    }
    out->fd = fcntl(s->shm_fd, F_DUPFD_CLOEXEC, 0);
    if (out->fd < 0) {
        return kIOReturnNoResources;
    }
    out->offset = 0;
    out->size = s->shm_size;
    out->writable = true;
    return kIOReturnSuccess;
}

/* Power-on register state; the shared memory keeps its contents. */
static void reset_locked(IvshmemState *s)
{
    unsigned v;

    s->intr_mask = 0;
    s->intr_status = 0;
    s->dma_shm = s->dma_bus = s->dma_len = 0;
    s->dma_cmd = 0;
    s->dma_vector = 0;
    s->dma_epoch++;
    memset(s->table, 0, sizeof(s->table));
    memset(s->pba, 0, sizeof(s->pba));
    /* MSI-X entries come out of reset masked (PCI spec). */
    for (v = 0; v < s->nvectors; v++) {
        s->table[v].ctrl = MSIX_CTRL_MASKED;
    }
    dext_pciemu_reset(&s->pci);
}

static IOReturn ivshmem_reset_function(DextDevice *dev)
{
    IvshmemState *s = dev->priv;

    pthread_mutex_lock(&s->lock);
    reset_locked(s);
    pthread_mutex_unlock(&s->lock);
    return kIOReturnSuccess;
}

static void ivshmem_destroy(DextDevice *dev)
{
    IvshmemState *s = dev->priv;

    if (s == NULL) {
        return;
    }
    if (s->shm != NULL) {
        munmap(s->shm, s->shm_size);
    }
    if (s->shm_fd >= 0) {
        close(s->shm_fd);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
    dev->priv = NULL;
}

static const DextDeviceOps ivshmem_ops = {
    .name = "ivshmem",
    .config_read = ivshmem_config_read,
    .config_write = ivshmem_config_write,
    .mmio_read = ivshmem_mmio_read,
    .mmio_write = ivshmem_mmio_write,
    .map_bar = ivshmem_map_bar,
    .reset_function = ivshmem_reset_function,
    .destroy = ivshmem_destroy,
};

/* ------------------------------------------------------------------ */
/* Creation                                                             */

typedef struct IvshmemOptions {
    unsigned vectors;
    uint64_t size;
    uint8_t bus, dev, fn;
} IvshmemOptions;

/* A whole-string number with an optional K/M/G suffix (powers of 1024). */
static bool parse_size(const char *str, uint64_t *out)
{
    unsigned long long v;
    char *end;

    if (*str < '0' || *str > '9') {
        return false;
    }
    errno = 0;
    v = strtoull(str, &end, 0);
    if (errno != 0) {
        return false;
    }
    switch (*end) {
    case 'k': case 'K':
        v <<= 10, end++;
        break;
    case 'm': case 'M':
        v <<= 20, end++;
        break;
    case 'g': case 'G':
        v <<= 30, end++;
        break;
    }
    if (*end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

static IOReturn ivshmem_apply_option(void *opaque, const char *key,
                                     const char *value)
{
    IvshmemOptions *o = opaque;
    uint64_t n;

    if (strcmp(key, "vectors") == 0) {
        if (!parse_size(value, &n) || n == 0 || n > IVSHMEM_MAX_VECTORS) {
            return kIOReturnBadArgument;
        }
        o->vectors = (unsigned)n;
    } else if (strcmp(key, "size") == 0) {
        /* A BAR is a power of two. */
        if (!parse_size(value, &n) || n < IVSHMEM_MIN_SIZE ||
            n > IVSHMEM_MAX_SIZE || (n & (n - 1)) != 0) {
            return kIOReturnBadArgument;
        }
        o->size = n;
    } else if (strcmp(key, "bdf") == 0) {
        if (!dext_parse_bdf(value, &o->bus, &o->dev, &o->fn)) {
            return kIOReturnBadArgument;
        }
    } else {
        return kIOReturnBadArgument;
    }
    return kIOReturnSuccess;
}

static IOReturn init_config(PCIEmu *pci, const IvshmemOptions *o)
{
    static const PCIEmuIdent ident = {
        .vendor_id = IVSHMEM_VENDOR_ID,
        .device_id = IVSHMEM_DEVICE_ID,
        .revision = IVSHMEM_REVISION,
        .class_code = IVSHMEM_CLASS_CODE,
        .subsystem_vendor_id = IVSHMEM_SUBSYS_VENDOR,
        .subsystem_id = IVSHMEM_SUBSYS_ID,
        .interrupt_pin = 1,
    };
    IOReturn ret;

    ret = dext_pciemu_init(pci, DEXT_CONFIG_SIZE_EXT, &ident);
    if (ret == kIOReturnSuccess) {
        ret = dext_pciemu_add_bar(pci, IVSHMEM_REG_BAR, IVSHMEM_REG_SIZE, 0);
    }
    if (ret == kIOReturnSuccess) {
        ret = dext_pciemu_add_bar(pci, IVSHMEM_MSIX_BAR, IVSHMEM_MSIX_SIZE, 0);
    }
    if (ret == kIOReturnSuccess) {
        ret = dext_pciemu_add_bar(pci, IVSHMEM_SHM_BAR, o->size,
                                  DEXT_BAR_TYPE_MEM64 | DEXT_BAR_TYPE_PREFETCH);
    }
    if (ret == kIOReturnSuccess) {
        ret = dext_pciemu_add_msix(pci, o->vectors, IVSHMEM_MSIX_BAR, 0,
                                   IVSHMEM_MSIX_BAR, IVSHMEM_PBA_OFFSET, NULL);
    }
    return ret;
}

static IOReturn init_shm(IvshmemState *s, uint64_t size)
{
    /* Sealed: BAR2 is handed to clients, and the device reads it too. */
    s->shm_fd = dext_memfd_create("dext-ivshmem", size);
    if (s->shm_fd < 0) {
        return errno == EMFILE || errno == ENFILE ? kIOReturnNoResources
                                                  : kIOReturnNoMemory;
    }
    s->shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, s->shm_fd,
                  0);
    if (s->shm == MAP_FAILED) {
        s->shm = NULL;
        return kIOReturnNoMemory;
    }
    s->shm_size = size;
    return kIOReturnSuccess;
}

IOReturn dext_ivshmem_create(const char *options, DextDevice **out)
{
    IvshmemOptions o = {
        .vectors = IVSHMEM_DEFAULT_VECTORS,
        .size = IVSHMEM_DEFAULT_SIZE,
        .bus = IVSHMEM_DEFAULT_BUS,
        .dev = IVSHMEM_DEFAULT_DEV,
        .fn = IVSHMEM_DEFAULT_FN,
    };
    DextDevice *dev;
    IvshmemState *s;
    IOReturn ret;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    *out = NULL;
    ret = dext_device_for_each_option(options, ivshmem_apply_option, &o);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    dev = calloc(1, sizeof(*dev));
    s = calloc(1, sizeof(*s));
    if (dev == NULL || s == NULL) {
        free(dev);
        free(s);
        return kIOReturnNoMemory;
    }
    s->shm_fd = -1;
    s->dev = dev;
    s->nvectors = o.vectors;
    dev->priv = s;
    pthread_mutex_init(&s->lock, NULL);
    ret = init_config(&s->pci, &o);
    if (ret != kIOReturnSuccess) {
        ret = kIOReturnInternalError;
    } else {
        ret = init_shm(s, o.size);
    }
    if (ret != kIOReturnSuccess) {
        ivshmem_destroy(dev);
        free(dev);
        return ret;
    }
    reset_locked(s);

    dev->ops = &ivshmem_ops;
    snprintf(dev->name, sizeof(dev->name), "ivshmem");
    dev->bus = o.bus;
    dev->dev = o.dev;
    dev->fn = o.fn;
    dev->dma_mask = IVSHMEM_DMA_MASK;
    dext_pciemu_describe(&s->pci, dev);
    dev->bars[IVSHMEM_REG_BAR].mappable = false;
    dev->bars[IVSHMEM_MSIX_BAR].mappable = false;
    dev->bars[IVSHMEM_SHM_BAR].mappable = true;
    *out = dev;
    return kIOReturnSuccess;
}
