/*
 * SPDX-License-Identifier: MIT
 *
 * The "edu" educational PCI device, modelled on its public specification
 * (QEMU docs/specs/edu.rst): an identification register, a liveness
 * check, a factorial unit, an interrupt status register and a DMA engine
 * with a 4 KiB on-device buffer, all behind a 1 MiB register BAR.
 *
 * Factorials and DMA transfers run on two worker threads of the device,
 * one per engine, so a driver sees them complete asynchronously, as on
 * the reference model -- and a transfer stalled on a client's page (it
 * can stall for ever: userfaultfd) holds up only the DMA engine, never
 * the factorial unit or a reset.
 * Interrupts are delivered only as MSI; with MSI disabled the device
 * merely shows INTx as asserted in its config status register, and
 * enabling MSI deasserts it, as QEMU's PCI core does.
 *
 * Locking: one mutex guards all state.  Host hooks (DMA, MSI, log) are
 * called without it, so a host that holds its own locks while calling
 * into the device cannot deadlock against the worker.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/pciemu.h"
#include "libdext/edu.h"

#define EDU_DEFAULT_BUS      0
#define EDU_DEFAULT_DEV      3
#define EDU_DEFAULT_FN       0

/* One vector, 64-bit address, no per-vector masking: 14 bytes. */
#define EDU_MSI_CAP_SIZE     0x0e

typedef struct EduState {
    DextDevice *dev;
    pthread_t fact_worker;
    pthread_t dma_worker;

    /*
     * @lock guards all below; @fact_work and @dma_work wake the engines,
     * @idle tells a reset that the factorial unit has finished.
     */
    pthread_mutex_t lock;
    pthread_cond_t fact_work;
    pthread_cond_t dma_work;
    pthread_cond_t idle;
    bool stopping;
    bool fact_busy;             /* a factorial runs, effects included */
    unsigned resetting;         /* resets waiting: MMIO writes dropped */
    /*
     * Bumped by every reset.  A reset does not wait for a transfer in
     * flight (it may never end); the transfer, once back, sees the epoch
     * moved and drops its effects, as if the reset had aborted it.
     */
    uint64_t dma_epoch;

    PCIEmu pci;
    uint32_t liveness;          /* already inverted */
    uint32_t fact;
    uint32_t status;
    uint32_t irq_status;
    uint64_t dma_src;
    uint64_t dma_dst;
    uint64_t dma_count;
    uint64_t dma_cmd;
    uint8_t dma_buf[EDU_DMA_BUF_SIZE];

    /* DMA worker only: lets host DMA run without @lock. */
    uint8_t bounce[EDU_DMA_BUF_SIZE];
} EduState;

static uint64_t width_ones(uint32_t width)
{
    return width >= 8 ? UINT64_MAX : (1ull << (8 * width)) - 1;
}

/*
 * Whether the device model itself accepts an access: 4 bytes anywhere,
 * 8 bytes from EDU_WIDE_REGS on.  Narrower accesses never reach it (see
 * edu_width_valid()); an 8-byte access below EDU_WIDE_REGS does, and
 * reads as all ones.
 */
static bool edu_width_ok(uint64_t off, uint32_t width)
{
    if (off < EDU_WIDE_REGS) {
        return width == 4;
    }
    return width == 4 || width == 8;
}

/*
 * Whether the bus lets an access through to the device at all.  QEMU's
 * edu declares 4..8 bytes valid for its MMIO region, so QEMU's memory
 * core turns a 1- or 2-byte access away before the device sees it: the
 * read completes as 0, the write is dropped.  That is what a driver of
 * QEMU's edu observes, directly or through VFIO.
 */
static bool edu_width_valid(uint32_t width)
{
    return width >= 4;
}

/*
 * Add @bits to the interrupt status and signal if any is set.  Returns
 * true if an MSI must be sent once @lock is dropped.
 */
static bool edu_raise_locked(EduState *s, uint32_t bits)
{
    s->irq_status |= bits;
    if (s->irq_status == 0) {
        return false;
    }
    if (dext_pciemu_msi_enabled(&s->pci)) {
        return true;
    }
    dext_pciemu_set_intx(&s->pci, true);
    return false;
}

static void edu_send_msi(EduState *s)
{
    DextDeviceHost *h = &s->dev->host;

    if (h->raise_msi != NULL) {
        h->raise_msi(h->opaque, 0);
    }
}

static uint32_t edu_factorial(uint32_t n)
{
    uint32_t r = 1;

    /* Past 33 factors the product is 0 mod 2^32 and stays there. */
    for (; n > 1 && r != 0; n--) {
        r *= n;
    }
    return r;
}

/* Called and returns with @lock held; drops it while computing. */
static bool edu_run_factorial(EduState *s)
{
    uint32_t n = s->fact;
    uint32_t r;

    pthread_mutex_unlock(&s->lock);
    r = edu_factorial(n);
    pthread_mutex_lock(&s->lock);

    s->fact = r;
    s->status &= ~EDU_STATUS_COMPUTING;
    if (s->status & EDU_STATUS_IRQFACT) {
        return edu_raise_locked(s, EDU_IRQ_FACT);
    }
    return false;
}

static bool edu_buf_range_ok(uint64_t addr, uint64_t len)
{
    return addr >= EDU_DMA_BUF_ADDR && len <= EDU_DMA_BUF_SIZE &&
           addr - EDU_DMA_BUF_ADDR <= EDU_DMA_BUF_SIZE - len;
}

/*
 * Called and returns with @lock held; drops it for the host's DMA and
 * logging.  The DMA registers cannot change meanwhile: writes to them
 * are ignored while EDU_DMA_RUN is set.
 */
static bool edu_run_dma(EduState *s)
{
    DextDevice *dev = s->dev;
    uint64_t cmd = s->dma_cmd;
    uint64_t len = s->dma_count;
    bool to_ram = (cmd & EDU_DMA_TO_RAM) != 0;
    uint64_t buf_addr = to_ram ? s->dma_src : s->dma_dst;
    uint64_t bus_addr = to_ram ? s->dma_dst : s->dma_src;
    uint64_t bus = bus_addr & dev->dma_mask;
    bool in_range = edu_buf_range_ok(buf_addr, len);
    uint64_t epoch = s->dma_epoch;
    IOReturn ret = kIOReturnSuccess;

    if (in_range && to_ram) {
        memcpy(s->bounce, s->dma_buf + (buf_addr - EDU_DMA_BUF_ADDR), len);
    }
    pthread_mutex_unlock(&s->lock);

    if (!in_range) {
        dext_device_logf(dev, DEXT_LOG_WARNING,
                         "guest error: DMA buffer range 0x%llx+0x%llx "
                         "outside 0x%x..0x%x, transfer dropped",
                         (unsigned long long)buf_addr,
                         (unsigned long long)len, EDU_DMA_BUF_ADDR,
                         EDU_DMA_BUF_ADDR + EDU_DMA_BUF_SIZE - 1);
    } else {
        if (bus != bus_addr) {
            dext_device_logf(dev, DEXT_LOG_WARNING,
                             "guest error: DMA address 0x%llx masked "
                             "to 0x%llx by dma_mask 0x%llx",
                             (unsigned long long)bus_addr,
                             (unsigned long long)bus,
                             (unsigned long long)dev->dma_mask);
        }
        if (len == 0) {
            ret = kIOReturnSuccess;
        } else if (to_ram) {
            ret = dev->host.dma_write ?
                  dev->host.dma_write(dev->host.opaque, bus, s->bounce, len) :
                  kIOReturnNotPermitted;
        } else {
            ret = dev->host.dma_read ?
                  dev->host.dma_read(dev->host.opaque, bus, s->bounce, len) :
                  kIOReturnNotPermitted;
        }
        if (ret != kIOReturnSuccess) {
            dext_device_logf(dev, DEXT_LOG_WARNING,
                             "DMA %s bus address 0x%llx+0x%llx failed "
                             "(0x%x), transfer abandoned",
                             to_ram ? "to" : "from",
                             (unsigned long long)bus,
                             (unsigned long long)len, (unsigned)ret);
        }
    }

    pthread_mutex_lock(&s->lock);
    if (epoch != s->dma_epoch) {
        /* Reset while we were away: the device has forgotten us. */
        return false;
    }
    if (in_range && !to_ram && ret == kIOReturnSuccess) {
        memcpy(s->dma_buf + (buf_addr - EDU_DMA_BUF_ADDR), s->bounce, len);
    }
    s->dma_cmd &= ~(uint64_t)EDU_DMA_RUN;
    if (cmd & EDU_DMA_IRQ) {
        return edu_raise_locked(s, EDU_IRQ_DMA);
    }
    return false;
}

/*
 * One engine's thread: wait for @has_work, run @run with @lock held (it
 * drops the lock itself while it works), send the MSI it asks for.
 */
static void edu_engine(EduState *s, pthread_cond_t *work, bool *busy,
                       bool (*has_work)(const EduState *s),
                       bool (*run)(EduState *s))
{
    pthread_mutex_lock(&s->lock);
    for (;;) {
        bool msi;

        while (!s->stopping && !has_work(s)) {
            pthread_cond_wait(work, &s->lock);
        }
        if (s->stopping) {
            break;
        }
        if (busy) {
            *busy = true;
        }
        msi = run(s);
        if (msi) {
            pthread_mutex_unlock(&s->lock);
            edu_send_msi(s);
            pthread_mutex_lock(&s->lock);
        }
        if (busy) {
            *busy = false;
            pthread_cond_broadcast(&s->idle);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static bool edu_fact_pending(const EduState *s)
{
    return (s->status & EDU_STATUS_COMPUTING) != 0;
}

static bool edu_dma_pending(const EduState *s)
{
    return (s->dma_cmd & EDU_DMA_RUN) != 0;
}

static void *edu_fact_worker(void *opaque)
{
    EduState *s = opaque;

    edu_engine(s, &s->fact_work, &s->fact_busy, edu_fact_pending,
               edu_run_factorial);
    return NULL;
}

/* Nobody waits for this engine: see @dma_epoch. */
static void *edu_dma_worker(void *opaque)
{
    EduState *s = opaque;

    edu_engine(s, &s->dma_work, NULL, edu_dma_pending, edu_run_dma);
    return NULL;
}

/*
 * What QEMU's PCI core does after a config write that touches the MSI
 * capability while MSI is enabled: the function stops asserting INTx
 * (MSI and INTx are mutually exclusive), and a multiple message enable
 * above what the function is capable of is cut back to that.  Called
 * with @lock held, after the write went through the masks.
 */
static void edu_msi_write_config(PCIEmu *pci, uint32_t off, uint32_t width)
{
    uint32_t cap = pci->msi_cap;
    uint32_t flags, mme, mmc;

    if (cap == 0 || off + width <= cap || off >= cap + EDU_MSI_CAP_SIZE ||
        !dext_pciemu_msi_enabled(pci)) {
        return;
    }
    dext_pciemu_set_intx(pci, false);
    flags = dext_pciemu_get(pci, cap + DEXT_PCI_MSI_FLAGS, 2);
    mme = (flags & DEXT_PCI_MSI_FLAGS_QSIZE) >> 4;
    mmc = (flags & DEXT_PCI_MSI_FLAGS_QMASK) >> 1;
    if (mme > mmc) {
        flags = (flags & ~DEXT_PCI_MSI_FLAGS_QSIZE) | (mmc << 4);
        dext_pciemu_set(pci, cap + DEXT_PCI_MSI_FLAGS, 2, flags);
    }
}

static IOReturn edu_config_read(DextDevice *dev, uint32_t off, uint32_t width,
                                uint32_t *val)
{
    EduState *s = dev->priv;
    IOReturn ret;

    pthread_mutex_lock(&s->lock);
    ret = dext_pciemu_config_read(&s->pci, off, width, val);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static IOReturn edu_config_write(DextDevice *dev, uint32_t off,
                                 uint32_t width, uint32_t val)
{
    EduState *s = dev->priv;
    IOReturn ret;

    pthread_mutex_lock(&s->lock);
    ret = dext_pciemu_config_write(&s->pci, off, width, val);
    if (ret == kIOReturnSuccess) {
        edu_msi_write_config(&s->pci, off, width);
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static IOReturn edu_mmio_read(DextDevice *dev, int bar, uint64_t off,
                              uint32_t width, uint64_t *val)
{
    EduState *s = dev->priv;
    const char *bad = NULL;
    uint64_t v = UINT64_MAX;

    if (bar != 0 || off >= EDU_BAR0_SIZE) {
        return kIOReturnBadArgument;
    }
    if (!edu_width_valid(width)) {
        dext_device_logf(dev, DEXT_LOG_WARNING,
                         "guest error: %u-byte read at 0x%llx reads 0",
                         width, (unsigned long long)off);
        *val = 0;
        return kIOReturnSuccess;
    }
    if (!edu_width_ok(off, width)) {
        dext_device_logf(dev, DEXT_LOG_WARNING,
                         "guest error: %u-byte read at 0x%llx",
                         width, (unsigned long long)off);
        *val = width_ones(width);
        return kIOReturnSuccess;
    }

    pthread_mutex_lock(&s->lock);
    switch (off) {
    case EDU_REG_ID:
        v = EDU_ID_VALUE;
        break;
    case EDU_REG_LIVENESS:
        v = s->liveness;
        break;
    case EDU_REG_FACTORIAL:
        v = s->fact;
        break;
    case EDU_REG_STATUS:
        v = s->status;
        break;
    case EDU_REG_IRQ_STATUS:
        v = s->irq_status;
        break;
    case EDU_REG_DMA_SRC:
        v = s->dma_src;
        break;
    case EDU_REG_DMA_DST:
        v = s->dma_dst;
        break;
    case EDU_REG_DMA_COUNT:
        v = s->dma_count;
        break;
    case EDU_REG_DMA_CMD:
        v = s->dma_cmd;
        break;
    case EDU_REG_IRQ_RAISE:
    case EDU_REG_IRQ_ACK:
        bad = "write-only register";
        break;
    default:
        bad = "unimplemented register";
        break;
    }
    pthread_mutex_unlock(&s->lock);

    if (bad != NULL) {
        dext_device_logf(dev, DEXT_LOG_WARNING,
                         "guest error: read of %s 0x%llx",
                         bad, (unsigned long long)off);
    }
    *val = v & width_ones(width);
    return kIOReturnSuccess;
}

/* Store a DMA register unless a transfer is running. */
static void edu_dma_reg_write(EduState *s, uint64_t *reg, uint64_t val)
{
    if (!(s->dma_cmd & EDU_DMA_RUN)) {
        *reg = val;
    }
}

static IOReturn edu_mmio_write(DextDevice *dev, int bar, uint64_t off,
                               uint32_t width, uint64_t val)
{
    EduState *s = dev->priv;
    const char *bad = NULL;
    bool msi = false;

    if (bar != 0 || off >= EDU_BAR0_SIZE) {
        return kIOReturnBadArgument;
    }
    if (!edu_width_valid(width) || !edu_width_ok(off, width)) {
        dext_device_logf(dev, DEXT_LOG_WARNING,
                         "guest error: %u-byte write at 0x%llx ignored",
                         width, (unsigned long long)off);
        return kIOReturnSuccess;
    }
    val &= width_ones(width);

    pthread_mutex_lock(&s->lock);
    if (s->resetting) {
        /* A function in reset accepts no requests. */
        pthread_mutex_unlock(&s->lock);
        return kIOReturnSuccess;
    }
    switch (off) {
    case EDU_REG_LIVENESS:
        s->liveness = ~(uint32_t)val;
        break;
    case EDU_REG_FACTORIAL:
        if (!(s->status & EDU_STATUS_COMPUTING)) {
            s->fact = (uint32_t)val;
            s->status |= EDU_STATUS_COMPUTING;
            pthread_cond_signal(&s->fact_work);
        }
        break;
    case EDU_REG_STATUS:
        s->status = (s->status & ~EDU_STATUS_IRQFACT) |
                    ((uint32_t)val & EDU_STATUS_IRQFACT);
        break;
    case EDU_REG_IRQ_RAISE:
        msi = edu_raise_locked(s, (uint32_t)val);
        break;
    case EDU_REG_IRQ_ACK:
        s->irq_status &= ~(uint32_t)val;
        if (s->irq_status == 0) {
            dext_pciemu_set_intx(&s->pci, false);
        }
        break;
    case EDU_REG_DMA_SRC:
        edu_dma_reg_write(s, &s->dma_src, val);
        break;
    case EDU_REG_DMA_DST:
        edu_dma_reg_write(s, &s->dma_dst, val);
        break;
    case EDU_REG_DMA_COUNT:
        edu_dma_reg_write(s, &s->dma_count, val);
        break;
    case EDU_REG_DMA_CMD:
        /* Only a write that starts a transfer does anything. */
        if ((val & EDU_DMA_RUN) && !(s->dma_cmd & EDU_DMA_RUN)) {
            s->dma_cmd = val;
            pthread_cond_signal(&s->dma_work);
        }
        break;
    case EDU_REG_ID:
    case EDU_REG_IRQ_STATUS:
        bad = "read-only register";
        break;
    default:
        bad = "unimplemented register";
        break;
    }
    pthread_mutex_unlock(&s->lock);

    if (bad != NULL) {
        dext_device_logf(dev, DEXT_LOG_WARNING,
                         "guest error: write 0x%llx to %s 0x%llx",
                         (unsigned long long)val, bad,
                         (unsigned long long)off);
    }
    if (msi) {
        edu_send_msi(s);
    }
    return kIOReturnSuccess;
}

/*
 * Power-on register state; the caller holds @lock and the device idles.
 * The device-specific config bytes after the MSI capability keep their
 * contents, as QEMU's pci_do_device_reset() leaves them alone.
 */
static void edu_reset_locked(EduState *s)
{
    uint32_t keep = s->pci.msi_cap + EDU_MSI_CAP_SIZE;
    uint8_t saved[DEXT_CONFIG_SIZE];

    memcpy(saved, s->pci.config + keep, DEXT_CONFIG_SIZE - keep);
    s->liveness = 0;
    s->fact = 0;
    s->status = 0;
    s->irq_status = 0;
    s->dma_src = 0;
    s->dma_dst = 0;
    s->dma_count = 0;
    s->dma_cmd = 0;
    memset(s->dma_buf, 0, sizeof(s->dma_buf));
    dext_pciemu_reset(&s->pci);
    memcpy(s->pci.config + keep, saved, DEXT_CONFIG_SIZE - keep);
}

static IOReturn edu_reset_function(DextDevice *dev)
{
    EduState *s = dev->priv;

    pthread_mutex_lock(&s->lock);
    s->resetting++;
    /*
     * Let a factorial finish, effects included: it takes microseconds.
     * A transfer is not waited for -- its client's memory may never
     * answer -- but aborted: the new epoch drops whatever it would do.
     */
    while (s->fact_busy || edu_fact_pending(s)) {
        pthread_cond_wait(&s->idle, &s->lock);
    }
    s->dma_epoch++;
    edu_reset_locked(s);
    s->resetting--;
    pthread_mutex_unlock(&s->lock);
    return kIOReturnSuccess;
}

static void edu_destroy(DextDevice *dev)
{
    EduState *s = dev->priv;

    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->fact_work);
    pthread_cond_broadcast(&s->dma_work);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->fact_worker, NULL);
    pthread_join(s->dma_worker, NULL);

    pthread_cond_destroy(&s->idle);
    pthread_cond_destroy(&s->dma_work);
    pthread_cond_destroy(&s->fact_work);
    pthread_mutex_destroy(&s->lock);
    free(s);
    dev->priv = NULL;
}

static const DextDeviceOps edu_ops = {
    .name = "edu",
    .config_read = edu_config_read,
    .config_write = edu_config_write,
    .mmio_read = edu_mmio_read,
    .mmio_write = edu_mmio_write,
    .reset_function = edu_reset_function,
    .destroy = edu_destroy,
};

/* A whole-string unsigned number, decimal, octal or 0x-hex. */
static bool edu_parse_u64(const char *str, uint64_t *out)
{
    unsigned long long v;
    char *end;

    if (*str < '0' || *str > '9') {
        return false;
    }
    errno = 0;
    v = strtoull(str, &end, 0);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

typedef struct EduOptions {
    uint64_t dma_mask;
    uint8_t bus, dev, fn;
    bool bar64;             /* BAR0 as a 64-bit BAR (BAR1 its upper half) */
} EduOptions;

/* "key=value[,key=value...]"; empty items are skipped. */
static IOReturn edu_apply_option(void *opaque, const char *key,
                                 const char *value)
{
    EduOptions *o = opaque;

    if (strcmp(key, "dma_mask") == 0) {
        uint64_t m;

        /* A mask names the highest address: it must be 2^n - 1. */
        if (!edu_parse_u64(value, &m) || m == 0 || (m & (m + 1)) != 0) {
            return kIOReturnBadArgument;
        }
        o->dma_mask = m;
    } else if (strcmp(key, "bar64") == 0) {
        /* Lets tests reach the "upper half of a 64-bit BAR" cases. */
        if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0) {
            return kIOReturnBadArgument;
        }
        o->bar64 = value[0] == '1';
    } else if (strcmp(key, "bdf") == 0) {
        if (!dext_parse_bdf(value, &o->bus, &o->dev, &o->fn)) {
            return kIOReturnBadArgument;
        }
    } else {
        return kIOReturnBadArgument;
    }
    return kIOReturnSuccess;
}

static IOReturn edu_init_config(PCIEmu *pci, bool bar64)
{
    static const PCIEmuIdent ident = {
        .vendor_id = EDU_VENDOR_ID,
        .device_id = EDU_DEVICE_ID,
        .revision = EDU_REVISION,
        .class_code = EDU_CLASS_CODE,
        .subsystem_vendor_id = EDU_SUBSYS_VENDOR_ID,
        .subsystem_id = EDU_SUBSYS_ID,
        .interrupt_pin = 1,
    };
    uint32_t msi, off;
    IOReturn ret;

    ret = dext_pciemu_init(pci, DEXT_CONFIG_SIZE, &ident);
    if (ret == kIOReturnSuccess) {
        ret = dext_pciemu_add_bar(pci, 0, EDU_BAR0_SIZE,
                                  bar64 ? DEXT_BAR_TYPE_MEM64 : 0);
    }
    if (ret == kIOReturnSuccess) {
        ret = dext_pciemu_add_msi(pci, 1, true, false, &msi);
    }
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    /*
     * As QEMU's PCI core: the multiple message enable field is writable
     * even with one vector (cut back once MSI is enabled, see
     * edu_msi_write_config()), and every byte of the device-specific
     * area outside a capability is plain read-write storage.
     */
    dext_pciemu_set_wmask(pci, msi + DEXT_PCI_MSI_FLAGS, 2,
                          DEXT_PCI_MSI_FLAGS_ENABLE | DEXT_PCI_MSI_FLAGS_QSIZE);
    for (off = msi + EDU_MSI_CAP_SIZE; off < DEXT_CONFIG_SIZE; off++) {
        dext_pciemu_set_wmask(pci, off, 1, 0xff);
    }
    return kIOReturnSuccess;
}

IOReturn dext_edu_create(const char *options, DextDevice **out)
{
    EduOptions o = {
        .dma_mask = EDU_DMA_MASK,
        .bus = EDU_DEFAULT_BUS,
        .dev = EDU_DEFAULT_DEV,
        .fn = EDU_DEFAULT_FN,
    };
    DextDevice *dev;
    EduState *s;
    IOReturn ret;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    *out = NULL;
    ret = dext_device_for_each_option(options, edu_apply_option, &o);
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
    ret = edu_init_config(&s->pci, o.bar64);
    if (ret != kIOReturnSuccess) {
        free(dev);
        free(s);
        return kIOReturnInternalError;
    }
    s->dev = dev;

    dev->ops = &edu_ops;
    dev->priv = s;
    snprintf(dev->name, sizeof(dev->name), "edu");
    dev->bus = o.bus;
    dev->dev = o.dev;
    dev->fn = o.fn;
    dev->dma_mask = o.dma_mask;
    dext_pciemu_describe(&s->pci, dev);
    dev->bars[0].mappable = false;

    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->fact_work, NULL);
    pthread_cond_init(&s->dma_work, NULL);
    pthread_cond_init(&s->idle, NULL);
    if (pthread_create(&s->fact_worker, NULL, edu_fact_worker, s) != 0) {
        goto fail_threads;
    }
    if (pthread_create(&s->dma_worker, NULL, edu_dma_worker, s) != 0) {
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_broadcast(&s->fact_work);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->fact_worker, NULL);
        goto fail_threads;
    }
    *out = dev;
    return kIOReturnSuccess;

fail_threads:
    pthread_cond_destroy(&s->idle);
    pthread_cond_destroy(&s->dma_work);
    pthread_cond_destroy(&s->fact_work);
    pthread_mutex_destroy(&s->lock);
    free(s);
    free(dev);
    return kIOReturnNoResources;
}
