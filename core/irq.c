/*
 * SPDX-License-Identifier: MIT
 *
 * Interrupts: MSI/MSI-X discovery, the per-session interrupt state page,
 * delivery of device messages, and WaitInterrupt arming.
 *
 * Every session that sets up interrupts gets its own 16 KiB state page
 * (a memfd the client may map as memory type 7): pending[4] at 0x00,
 * enabled[4] at 0x20.  A device message for vector v is delivered to
 * every such session: if v is enabled there, its pending bit is set with
 * an atomic OR and an armed notification completes.  The ordering of
 * "set pending, then take armed" against "store armed, then test
 * pending" (both sequentially consistent) means an interrupt racing a
 * re-arm is never lost: one side always sees the other.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core-internal.h"

/* Any address in the MSI window: the core delivers by message data. */
#define MSIX_MSG_ADDRESS       0xfee00000u

/* A config register's value, 0 if it cannot be read. */
static uint32_t cfg_read(DextDevice *dev, uint32_t off, uint32_t width)
{
    uint32_t val = 0;

    if (dext_config_read_raw(dev, off, width, &val) != kIOReturnSuccess) {
        return 0;
    }
    return val;
}

void dext_irq_probe_caps(CoreDevice *cd)
{
    DextDevice *dev = cd->dev;
    uint32_t ptr;
    int guard;

    cd->msi_cap = cd->msix_cap = 0;
    cd->nvectors = 0;
    if (!(cfg_read(dev, DEXT_PCI_STATUS, 2) & DEXT_PCI_STATUS_CAP_LIST)) {
        return;
    }
    ptr = cfg_read(dev, DEXT_PCI_CAPABILITY_LIST, 1) & 0xfc;
    /* 48 capabilities fit in 192 bytes; more means a loop. */
    for (guard = 0; ptr >= 0x40 && ptr < DEXT_CONFIG_SIZE && guard < 48;
         guard++) {
        uint32_t id = cfg_read(dev, ptr, 1);

        if (id == DEXT_PCI_CAP_ID_MSI && cd->msi_cap == 0) {
            cd->msi_cap = (uint8_t)ptr;
        } else if (id == DEXT_PCI_CAP_ID_MSIX && cd->msix_cap == 0) {
            cd->msix_cap = (uint8_t)ptr;
        }
        ptr = cfg_read(dev, ptr + 1, 1) & 0xfc;
    }
    if (cd->msix_cap) {
        cd->nvectors = (cfg_read(dev, cd->msix_cap + DEXT_PCI_MSIX_FLAGS, 2) &
                        DEXT_PCI_MSIX_FLAGS_QSIZE) + 1;
    } else if (cd->msi_cap) {
        uint32_t mmc = (cfg_read(dev, cd->msi_cap + DEXT_PCI_MSI_FLAGS, 2) &
                        DEXT_PCI_MSI_FLAGS_QMASK) >> 1;
        cd->nvectors = 1u << (mmc > 5 ? 5 : mmc);
    }
    if (cd->nvectors > DEXT_MAX_VECTORS) {
        cd->nvectors = DEXT_MAX_VECTORS;
    }
}

static IOReturn msi_enable(CoreDevice *cd)
    DEXT_REQUIRES(cd->lock)
{
    uint32_t ctl = cfg_read(cd->dev, cd->msi_cap + DEXT_PCI_MSI_FLAGS, 2);
    uint32_t mmc = (ctl & DEXT_PCI_MSI_FLAGS_QMASK) >> 1;

    ctl &= ~DEXT_PCI_MSI_FLAGS_QSIZE;
    ctl |= DEXT_PCI_MSI_FLAGS_ENABLE | (mmc << 4);
    return dext_config_write_raw(cd->dev, cd->msi_cap + DEXT_PCI_MSI_FLAGS, 2, ctl);
}

/*
 * Program and unmask the first @nvec MSI-X table entries, as the OS does
 * when it allocates the vectors: entries come out of reset masked, and a
 * device would otherwise hold every message in its PBA.  The message data
 * is the vector number, which is what the device hands to raise_msi.
 */
static void msix_program_table(CoreDevice *cd, uint32_t nvec)
    DEXT_REQUIRES(cd->lock)
{
    DextDevice *dev = cd->dev;
    uint32_t table = cfg_read(dev, cd->msix_cap + DEXT_PCI_MSIX_TABLE, 4);
    int bar = (int)(table & DEXT_PCI_MSIX_TABLE_BIR);
    uint64_t base = table & ~(uint64_t)DEXT_PCI_MSIX_TABLE_BIR;
    uint32_t v;

    /* BIR 6 and 7 are reserved: no BAR to program. */
    if (dev->ops->mmio_write == NULL || bar >= DEXT_NUM_BARS ||
        dev->bars[bar].size == 0) {
        return;
    }
    for (v = 0; v < nvec; v++) {
        uint64_t e = base + (uint64_t)v * DEXT_PCI_MSIX_ENTRY_SIZE;

        if (e + DEXT_PCI_MSIX_ENTRY_SIZE > dev->bars[bar].size) {
            break;
        }
        dev->ops->mmio_write(dev, bar, e + 0x0, 4, MSIX_MSG_ADDRESS);
        dev->ops->mmio_write(dev, bar, e + 0x4, 4, 0);
        dev->ops->mmio_write(dev, bar, e + 0x8, 4, v);
        dev->ops->mmio_write(dev, bar, e + 0xc, 4, 0);
    }
}

/* Turn message delivery on in the device. */
static IOReturn irq_enable_device(CoreDevice *cd, uint32_t *nvec)
    DEXT_REQUIRES(cd->lock)
{
    IOReturn ret;

    if (cd->dev->ops->irq_enable) {
        return cd->dev->ops->irq_enable(cd->dev, nvec);
    }
    if (cd->msix_cap) {
        uint32_t ctl = cfg_read(cd->dev, cd->msix_cap + DEXT_PCI_MSIX_FLAGS, 2);

        ctl = (ctl | DEXT_PCI_MSIX_FLAGS_ENABLE) & ~DEXT_PCI_MSIX_FLAGS_MASKALL;
        ret = dext_config_write_raw(cd->dev, cd->msix_cap + DEXT_PCI_MSIX_FLAGS, 2, ctl);
        if (ret == kIOReturnSuccess) {
            msix_program_table(cd, cd->nvectors);
            *nvec = cd->nvectors;
            return ret;
        }
        if (cd->msi_cap == 0) {
            return ret;
        }
        /* As the dext does: MSI-X failed, fall back to one MSI vector. */
        dext_core_logf(cd->core, DEXT_LOG_WARNING,
                       "%s: MSI-X setup failed, falling back to one MSI vector",
                       cd->dev->name);
        *nvec = 1;
        return msi_enable(cd);
    }
    *nvec = cd->nvectors;
    return msi_enable(cd);
}

static void irq_disable_device(CoreDevice *cd)
    DEXT_REQUIRES(cd->lock)
{
    if (cd->dev->ops->irq_disable) {
        cd->dev->ops->irq_disable(cd->dev);
        return;
    }
    if (cd->msix_cap) {
        uint32_t ctl = cfg_read(cd->dev, cd->msix_cap + DEXT_PCI_MSIX_FLAGS, 2);
        dext_config_write_raw(cd->dev, cd->msix_cap + DEXT_PCI_MSIX_FLAGS, 2,
                  ctl & ~DEXT_PCI_MSIX_FLAGS_ENABLE);
    }
    if (cd->msi_cap) {
        uint32_t ctl = cfg_read(cd->dev, cd->msi_cap + DEXT_PCI_MSI_FLAGS, 2);
        dext_config_write_raw(cd->dev, cd->msi_cap + DEXT_PCI_MSI_FLAGS, 2,
                  ctl & ~DEXT_PCI_MSI_FLAGS_ENABLE);
    }
}

void dext_irq_restore_config(CoreDevice *cd, const DextConfigSave *save)
    DEXT_REQUIRES(cd->lock)
{
    const uint8_t *saved = save->bytes;

    /* A backend that delivers interrupts itself keeps them over its
     * resets (VFIO: the kernel restores the vectors it allocated). */
    if (cd->dev->ops->irq_enable) {
        return;
    }
    if (cd->msi_cap) {
        uint32_t ctl = saved[cd->msi_cap + DEXT_PCI_MSI_FLAGS] |
                       saved[cd->msi_cap + DEXT_PCI_MSI_FLAGS + 1] << 8;
        uint32_t msg = cd->msi_cap + 4;
        /* address lo [, address hi], data [, mask bits] */
        uint32_t len = (ctl & DEXT_PCI_MSI_FLAGS_64BIT) ? 10 : 6;

        if (ctl & DEXT_PCI_MSI_FLAGS_MASKBIT) {
            len = (ctl & DEXT_PCI_MSI_FLAGS_64BIT) ? 16 : 12;
        }
        /* Message first, enable last, as an OS restores MSI state. */
        dext_config_write_block(cd->dev, msg, saved + msg, len);
        dext_config_write_block(cd->dev, cd->msi_cap + DEXT_PCI_MSI_FLAGS,
                                saved + cd->msi_cap + DEXT_PCI_MSI_FLAGS, 2);
    }
    if (cd->msix_cap) {
        uint32_t ctl = saved[cd->msix_cap + DEXT_PCI_MSIX_FLAGS] |
                       saved[cd->msix_cap + DEXT_PCI_MSIX_FLAGS + 1] << 8;

        /* The table is device memory a reset cleared: program it again. */
        if (ctl & DEXT_PCI_MSIX_FLAGS_ENABLE) {
            msix_program_table(cd, cd->nvectors);
        }
        dext_config_write_block(cd->dev, cd->msix_cap + DEXT_PCI_MSIX_FLAGS,
                                saved + cd->msix_cap + DEXT_PCI_MSIX_FLAGS, 2);
    }
}

static void irq_state_free(IrqState *irq)
{
    if (irq->wake_fd >= 0) {
        close(irq->wake_fd);
    }
    if (irq->page) {
        munmap(irq->page, DEXT_IRQ_PAGE_SIZE);
    }
    if (irq->fd >= 0) {
        close(irq->fd);
    }
    dext_mutex_destroy(&irq->wake_lock);
    free(irq);
}

IOReturn dext_irq_setup(DextSession *s, uint64_t *out_nvec)
{
    CoreDevice *cd = s->cd;
    IrqState *irq;
    uint32_t nvec = 0, v;
    IOReturn ret;

    core_mutex_lock(&cd->lock);
    if (s->irq) {
        ret = kIOReturnStillOpen;
        goto out;
    }
    if (cd->nvectors == 0) {
        ret = kIOReturnNotFound;
        goto out;
    }
    irq = calloc(1, sizeof(*irq));
    if (irq == NULL) {
        ret = kIOReturnNoMemory;
        goto out;
    }
    irq->owner = s;
    irq->wake_fd = -1;
    dext_mutex_init(&irq->wake_lock);
    /* Sealed: the client maps it, and we write it from device threads. */
    irq->fd = dext_memfd_create("dext-irq-page", DEXT_IRQ_PAGE_SIZE);
    if (irq->fd < 0) {
        irq_state_free(irq);
        ret = kIOReturnNoMemory;
        goto out;
    }
    irq->page = mmap(NULL, DEXT_IRQ_PAGE_SIZE, PROT_READ | PROT_WRITE,
                     MAP_SHARED, irq->fd, 0);
    if (irq->page == MAP_FAILED) {
        irq->page = NULL;
        irq_state_free(irq);
        ret = kIOReturnNoMemory;
        goto out;
    }
    ret = irq_enable_device(cd, &nvec);
    if (ret != kIOReturnSuccess) {
        irq_state_free(irq);
        ret = kIOReturnNotFound;
        goto out;
    }
    irq->nvectors = nvec;
    /* All vectors start enabled, none pending. */
    for (v = 0; v < nvec; v++) {
        irq->page[DEXT_IRQ_ENABLED_OFFSET / 8 + v / 64] |= 1ull << (v % 64);
    }

    core_rwlock_wrlock(&cd->irq_lock);
    irq->next = cd->irq_subs;
    cd->irq_subs = irq;
    core_rwlock_unlock(&cd->irq_lock);
    __atomic_store_n(&s->irq, irq, __ATOMIC_RELEASE);
    *out_nvec = nvec;
out:
    core_mutex_unlock(&cd->lock);
    return ret;
}

/*
 * s->irq is published once, under CoreDevice.lock, with a release store,
 * and freed only when the session closes (no call can be running then),
 * so the interrupt calls find it with an acquire load and no lock.
 */
static IrqState *session_irq(DextSession *s)
{
    return __atomic_load_n(&s->irq, __ATOMIC_ACQUIRE);
}

IOReturn dext_irq_check(DextSession *s, uint64_t out[4])
{
    IrqState *irq = session_irq(s);
    int i;

    if (irq == NULL) {
        return kIOReturnNotReady;
    }
    for (i = 0; i < DEXT_IRQ_WORDS; i++) {
        out[i] = __atomic_exchange_n(&irq->page[DEXT_IRQ_PENDING_OFFSET / 8 + i],
                                     0, __ATOMIC_SEQ_CST);
    }
    return kIOReturnSuccess;
}

static void irq_complete(IrqState *irq)
{
    static const uint64_t one = 1;
    ssize_t n;

    if (!__atomic_exchange_n(&irq->armed, false, __ATOMIC_SEQ_CST)) {
        return;
    }
    core_mutex_lock(&irq->wake_lock);
    if (irq->wake_fd >= 0) {
        /*
         * A socket target takes a per-call MSG_DONTWAIT, so a client can
         * never make this block: it shares the file description and could
         * clear O_NONBLOCK on it.  Only trusted in-process callers use an
         * eventfd.  A full or closed target is the client's loss: one
         * completion per arming, already spent.
         */
        n = send(irq->wake_fd, &one, sizeof(one), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK) {
            n = write(irq->wake_fd, &one, sizeof(one));
        }
        (void)n;
    }
    core_mutex_unlock(&irq->wake_lock);
}

static bool irq_any_pending(IrqState *irq)
{
    int i;

    for (i = 0; i < DEXT_IRQ_WORDS; i++) {
        if (__atomic_load_n(&irq->page[DEXT_IRQ_PENDING_OFFSET / 8 + i],
                            __ATOMIC_SEQ_CST)) {
            return true;
        }
    }
    return false;
}

IOReturn dext_irq_wait(DextSession *s, int wake_fd)
{
    IrqState *irq = session_irq(s);
    int fd, old;

    if (irq == NULL) {
        return kIOReturnNotReady;
    }
    fd = fcntl(wake_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        return kIOReturnBadArgument;
    }
    core_mutex_lock(&irq->wake_lock);
    old = irq->wake_fd;
    irq->wake_fd = fd;
    core_mutex_unlock(&irq->wake_lock);
    if (old >= 0) {
        close(old);
    }
    /* Replaces any armed notification; completes at once if pending. */
    __atomic_store_n(&irq->armed, true, __ATOMIC_SEQ_CST);
    if (irq_any_pending(irq)) {
        irq_complete(irq);
    }
    return kIOReturnSuccess;
}

IOReturn dext_irq_set_mask(DextSession *s, const uint64_t mask[4])
{
    IrqState *irq = session_irq(s);
    int i;

    if (irq == NULL) {
        return kIOReturnNotReady;
    }
    for (i = 0; i < DEXT_IRQ_WORDS; i++) {
        __atomic_store_n(&irq->page[DEXT_IRQ_ENABLED_OFFSET / 8 + i], mask[i],
                         __ATOMIC_SEQ_CST);
    }
    return kIOReturnSuccess;
}

IOReturn dext_irq_map_page(DextSession *s, DextMemory *out)
{
    IrqState *irq = session_irq(s);

    if (irq == NULL) {
        return kIOReturnNotReady;
    }
    out->fd = fcntl(irq->fd, F_DUPFD_CLOEXEC, 0);
    if (out->fd < 0) {
        return kIOReturnNoResources;
    }
    out->offset = 0;
    out->size = DEXT_IRQ_PAGE_SIZE;
    out->writable = true;
    return kIOReturnSuccess;
}

void dext_irq_session_release(DextSession *s)
{
    CoreDevice *cd = s->cd;
    IrqState *irq, **pp;
    bool last;

    core_mutex_lock(&cd->lock);
    irq = s->irq;
    if (irq == NULL) {
        core_mutex_unlock(&cd->lock);
        return;
    }
    core_rwlock_wrlock(&cd->irq_lock);
    for (pp = &cd->irq_subs; *pp; pp = &(*pp)->next) {
        if (*pp == irq) {
            *pp = irq->next;
            break;
        }
    }
    last = cd->irq_subs == NULL;
    core_rwlock_unlock(&cd->irq_lock);
    if (last && (!cd->terminated || cd->dev->ops->irq_disable)) {
        irq_disable_device(cd);
    }
    __atomic_store_n(&s->irq, NULL, __ATOMIC_RELEASE);
    core_mutex_unlock(&cd->lock);
    irq_state_free(irq);
}

void dext_irq_device_raise(void *opaque, uint32_t vector)
{
    CoreDevice *cd = opaque;
    bool delivered = false;
    IrqState *irq;

    core_rwlock_rdlock(&cd->irq_lock);
    for (irq = cd->irq_subs; irq; irq = irq->next) {
        uint64_t bit = 1ull << (vector % 64);
        uint32_t word = vector / 64;

        if (vector >= irq->nvectors ||
            !(__atomic_load_n(&irq->page[DEXT_IRQ_ENABLED_OFFSET / 8 + word],
                              __ATOMIC_SEQ_CST) & bit)) {
            continue;
        }
        __atomic_fetch_or(&irq->page[DEXT_IRQ_PENDING_OFFSET / 8 + word], bit,
                          __ATOMIC_SEQ_CST);
        irq_complete(irq);
        delivered = true;
    }
    core_rwlock_unlock(&cd->irq_lock);
    if (!delivered) {
        __atomic_fetch_add(&cd->core->irqs_dropped, 1, __ATOMIC_RELAXED);
    }
    /*
     * Counted once delivered, with release: whoever sees the count (a
     * test waiting for a real device's MSI, which comes on another
     * thread) then sees the pending bits it set.
     */
    __atomic_fetch_add(&cd->core->irqs_raised, 1, __ATOMIC_RELEASE);
}
