/*
 * SPDX-License-Identifier: MIT
 *
 * The "vfio" backend: a real PCI function bound to Linux's vfio-pci,
 * driven through the VFIO group/container interface with the type1 IOMMU.
 *
 *   dextd --device vfio,host=0000:00:03.0[,bdf=00:04.0][,dma_mask=N]
 *
 * What each part of the dext contract becomes:
 *  - config space: the VFIO config region (the kernel virtualises BARs,
 *    MSI/MSI-X and a few more registers; the core's BAR synthesis stays
 *    on top);
 *  - BARs: sizes and flags from region info, MMIO calls as pread/pwrite
 *    on the BAR regions; a BAR is mappable where VFIO allows mmap() and
 *    the BAR holds no part of the MSI-X table or PBA, and only in this
 *    process (local_only): the one fd that maps it is the device fd,
 *    which also grants DMA mapping, reset and interrupt control, so it
 *    never goes to a client of dextd;
 *  - DMA: the core still assigns bus addresses as the DART does; each
 *    becomes real with VFIO_IOMMU_MAP_DMA (dma_map/dma_unmap);
 *  - interrupts: MSI-X, else MSI, one eventfd per vector through
 *    VFIO_DEVICE_SET_IRQS; a thread turns eventfd wake-ups into
 *    host.raise_msi();
 *  - reset: VFIO_DEVICE_RESET, else a hot reset through
 *    VFIO_DEVICE_PCI_HOT_RESET when every function it affects is in our
 *    group;
 *  - last claim released: bus mastering off; Terminate: every VFIO fd
 *    closed, which hands the device back to the kernel.
 *
 * Locking: @lock (a backend lock, order 3) is held shared by every hook
 * that uses the fds, and exclusively by terminate, which closes them:
 * no hook ever uses a closed or reused fd number.  It is never held
 * across pinning client memory (dma_map works on a dup of the container).  @irq_lock serialises
 * interrupt setup and teardown with the delivery thread's start and stop.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libdext/pci-regs.h"
#include "backends/backend.h"
#include "backends/mmio-access.h"
#include "support/bdf.h"

#define VFIO_SYSFS          "/sys/bus/pci/devices"
#define VFIO_MAX_VECTORS    256
#define VFIO_DMA_MASK_DEF   0xffffffffull

typedef struct VfioRegion {
    uint64_t offset;                /* in the device fd */
    uint64_t size;
    uint32_t flags;                 /* VFIO_REGION_INFO_FLAG_* */
} VfioRegion;

typedef struct VfioState {
    pthread_rwlock_t lock;          /* shared: fds in use; excl: closing */
    int container;                  /* -1 once terminated */
    int group;
    int device;
    char host[16];                  /* "0000:00:03.0" */
    int group_id;
    uint32_t dev_flags;             /* VFIO_DEVICE_FLAGS_* */
    VfioRegion config;
    VfioRegion bars[DEXT_NUM_BARS];
    /* Our own mappings of the mappable BARs, for MMIO calls. */
    volatile uint8_t *bar_map[DEXT_NUM_BARS];
    uint32_t irq_count[VFIO_PCI_NUM_IRQS];
    uint8_t msi_cap;                /* 0: none */

    pthread_mutex_t irq_lock;
    int irq_index;                  /* -1: delivery off */
    uint32_t nvec;
    int evfd[VFIO_MAX_VECTORS];
    int stop_fd;                    /* eventfd that ends the thread */
    int epfd;
    pthread_t thread;
} VfioState;

typedef struct VfioOptions {
    char host[32];
    char bdf[32];
    uint64_t dma_mask;
} VfioOptions;

static VfioState *state_of(DextDevice *dev)
{
    return dev->priv;
}

/* ------------------------------------------------------------------ */
/* Register access                                                      */

/* One access of @width bytes at @off of the device fd, little-endian. */
static IOReturn region_rw(VfioState *s, uint64_t off, uint32_t width,
                          uint64_t *val, bool write)
{
    uint8_t b[8];
    ssize_t n;
    uint32_t i;

    if (s->device < 0) {
        return kIOReturnNoDevice;
    }
    if (write) {
        for (i = 0; i < width; i++) {
            b[i] = (uint8_t)(*val >> (8 * i));
        }
    }
    do {
        n = write ? pwrite(s->device, b, width, (off_t)off)
                  : pread(s->device, b, width, (off_t)off);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)width) {
        return n < 0 ? dext_errno_ioreturn(errno) : kIOReturnIOError;
    }
    if (!write) {
        *val = 0;
        for (i = 0; i < width; i++) {
            *val |= (uint64_t)b[i] << (8 * i);
        }
    }
    return kIOReturnSuccess;
}

static IOReturn vfio_config_read(DextDevice *dev, uint32_t off, uint32_t width,
                                 uint32_t *val)
{
    VfioState *s = state_of(dev);
    uint64_t v = 0;
    IOReturn ret;

    pthread_rwlock_rdlock(&s->lock);
    ret = region_rw(s, s->config.offset + off, width, &v, false);
    pthread_rwlock_unlock(&s->lock);
    *val = (uint32_t)v;
    return ret;
}

static IOReturn vfio_config_write(DextDevice *dev, uint32_t off,
                                  uint32_t width, uint32_t val)
{
    VfioState *s = state_of(dev);
    uint64_t v = val;
    IOReturn ret;

    pthread_rwlock_rdlock(&s->lock);
    ret = region_rw(s, s->config.offset + off, width, &v, true);
    pthread_rwlock_unlock(&s->lock);
    return ret;
}

/*
 * MMIO.  Through our own mapping where the BAR may be mapped: one access
 * of exactly the width asked for.  Otherwise through the BAR region,
 * which vfio-pci serves with accesses of at most 4 bytes on kernels
 * before 6.13 (an 8-byte one becomes two, low dword first, as on a
 * 32-bit CPU), and I/O BARs always.
 */
static IOReturn vfio_mmio(DextDevice *dev, int bar, uint64_t off,
                          uint32_t width, uint64_t *val, bool write)
{
    VfioState *s = state_of(dev);
    uint64_t base = s->bars[bar].offset + off;
    IOReturn ret = kIOReturnSuccess;

    pthread_rwlock_rdlock(&s->lock);
    if (s->device < 0) {
        ret = kIOReturnNoDevice;
    } else if (s->bar_map[bar] && write) {
        dext_mmio_store(s->bar_map[bar] + off, width, *val);
    } else if (s->bar_map[bar]) {
        *val = dext_mmio_load(s->bar_map[bar] + off, width);
    } else {
        ret = region_rw(s, base, width, val, write);
    }
    if (ret == kIOReturnBadArgument && width == 8) {
        uint64_t lo = *val & 0xffffffffu, hi = *val >> 32;

        ret = region_rw(s, base, 4, &lo, write);
        if (ret == kIOReturnSuccess) {
            ret = region_rw(s, base + 4, 4, &hi, write);
        }
        if (ret == kIOReturnSuccess && !write) {
            *val = lo | hi << 32;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return ret;
}

static IOReturn vfio_mmio_read(DextDevice *dev, int bar, uint64_t off,
                               uint32_t width, uint64_t *val)
{
    return vfio_mmio(dev, bar, off, width, val, false);
}

static IOReturn vfio_mmio_write(DextDevice *dev, int bar, uint64_t off,
                                uint32_t width, uint64_t val)
{
    return vfio_mmio(dev, bar, off, width, &val, true);
}

static IOReturn vfio_map_bar(DextDevice *dev, int bar, DextMemory *out)
{
    VfioState *s = state_of(dev);
    IOReturn ret = kIOReturnNoDevice;

    pthread_rwlock_rdlock(&s->lock);
    if (s->device >= 0) {
        out->fd = fcntl(s->device, F_DUPFD_CLOEXEC, 0);
        out->offset = s->bars[bar].offset;
        out->size = s->bars[bar].size;
        out->writable = (s->bars[bar].flags & VFIO_REGION_INFO_FLAG_WRITE) != 0;
        ret = out->fd >= 0 ? kIOReturnSuccess : kIOReturnNoResources;
    }
    pthread_rwlock_unlock(&s->lock);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Reset, open, close, terminate                                        */

/* VFIO_DEVICE_RESET: the kernel resets the function its own way. */
static IOReturn device_reset(DextDevice *dev)
{
    VfioState *s = state_of(dev);
    IOReturn ret = kIOReturnNoDevice;
    int err = 0;

    pthread_rwlock_rdlock(&s->lock);
    if (s->device >= 0) {
        ret = ioctl(s->device, VFIO_DEVICE_RESET) == 0 ? kIOReturnSuccess
                                                      : kIOReturnUnsupported;
        err = errno;
    }
    pthread_rwlock_unlock(&s->lock);
    if (ret == kIOReturnUnsupported) {
        dext_device_logf(dev, DEXT_LOG_WARNING, "VFIO_DEVICE_RESET failed: "
                         "%s", strerror(err));
    }
    return ret;
}

/*
 * Would the kernel's VFIO_DEVICE_RESET be a bus reset?  Its first method
 * in sysfs "reset_method" (Linux 5.15 on) is the one it uses: "bus" for a
 * function alone below a bridge that has no FLR or PM reset (edu).  Such
 * a reset is reported as hot, as the dext reports its fallback.
 */
static bool kernel_resets_bus(VfioState *s)
{
    char path[96], method[16] = "";
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/reset_method", VFIO_SYSFS, s->host);
    f = fopen(path, "re");
    if (f == NULL) {
        return false;
    }
    if (fscanf(f, "%15s", method) != 1) {
        method[0] = '\0';
    }
    fclose(f);
    return strcmp(method, "bus") == 0 || strcmp(method, "cxl_bus") == 0;
}

static IOReturn vfio_reset_function(DextDevice *dev)
{
    VfioState *s = state_of(dev);

    if (!(s->dev_flags & VFIO_DEVICE_FLAGS_RESET) || kernel_resets_bus(s)) {
        return kIOReturnUnsupported;    /* the core falls back to reset_bus */
    }
    return device_reset(dev);
}

/*
 * A hot reset resets every function below the bridge; VFIO allows it only
 * with an fd of each affected group, and we own just ours.
 */
static IOReturn vfio_reset_bus(DextDevice *dev)
{
    VfioState *s = state_of(dev);
    struct vfio_pci_hot_reset_info *info = NULL;
    struct vfio_pci_hot_reset *rst = NULL;
    IOReturn ret = kIOReturnUnsupported;
    uint32_t i;

    /* The kernel's own bus reset of a function alone on its bus. */
    if ((s->dev_flags & VFIO_DEVICE_FLAGS_RESET) && kernel_resets_bus(s) &&
        device_reset(dev) == kIOReturnSuccess) {
        return kIOReturnSuccess;
    }
    pthread_rwlock_rdlock(&s->lock);
    if (s->device < 0) {
        ret = kIOReturnNoDevice;
        goto out;
    }
    info = calloc(1, sizeof(*info));
    if (info == NULL) {
        ret = kIOReturnNoMemory;
        goto out;
    }
    info->argsz = sizeof(*info);
    if (ioctl(s->device, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info) != 0 &&
        errno != ENOSPC) {
        dext_device_logf(dev, DEXT_LOG_WARNING, "no hot reset: %s",
                         strerror(errno));
        goto out;
    }
    if (info->count > 256) {
        goto out;
    }
    {
        uint32_t count = info->count;
        size_t sz = sizeof(*info) + count * sizeof(info->devices[0]);

        free(info);
        info = calloc(1, sz);
        if (info == NULL) {
            ret = kIOReturnNoMemory;
            goto out;
        }
        info->argsz = (uint32_t)sz;
        if (ioctl(s->device, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info) != 0) {
            goto out;
        }
    }
    for (i = 0; i < info->count; i++) {
        if ((int)info->devices[i].group_id != s->group_id) {
            dext_device_logf(dev, DEXT_LOG_WARNING, "no hot reset: it would "
                             "also reset %04x:%02x:%02x.%x, of IOMMU group "
                             "%u, which dextd does not hold",
                             info->devices[i].segment, info->devices[i].bus,
                             info->devices[i].devfn >> 3,
                             info->devices[i].devfn & 7,
                             info->devices[i].group_id);
            goto out;
        }
    }
    rst = calloc(1, sizeof(*rst) + sizeof(rst->group_fds[0]));
    if (rst == NULL) {
        ret = kIOReturnNoMemory;
        goto out;
    }
    rst->argsz = sizeof(*rst) + sizeof(rst->group_fds[0]);
    rst->count = 1;
    rst->group_fds[0] = s->group;
    ret = ioctl(s->device, VFIO_DEVICE_PCI_HOT_RESET, rst) == 0
          ? kIOReturnSuccess : dext_errno_ioreturn(errno);
out:
    pthread_rwlock_unlock(&s->lock);
    free(info);
    free(rst);
    return ret;
}

static IOReturn vfio_open(DextDevice *dev)
{
    VfioState *s = state_of(dev);
    IOReturn ret;

    pthread_rwlock_rdlock(&s->lock);
    ret = s->device >= 0 ? kIOReturnSuccess : kIOReturnNoDevice;
    pthread_rwlock_unlock(&s->lock);
    return ret;
}

/*
 * Closed, as before the first claim: memory decoding and bus mastering
 * off, so nothing the device does reaches memory until the next claim's
 * open turns them on again (vfio-pci left decoding on when it enabled
 * the device).
 */
static void vfio_close(DextDevice *dev)
{
    uint32_t cmd = 0;

    if (vfio_config_read(dev, DEXT_PCI_COMMAND, 2, &cmd) == kIOReturnSuccess) {
        vfio_config_write(dev, DEXT_PCI_COMMAND, 2,
                          cmd & ~(uint32_t)(DEXT_PCI_COMMAND_MASTER |
                                            DEXT_PCI_COMMAND_MEMORY));
    }
}

static void irq_stop(DextDevice *dev);

static void close_fds(VfioState *s)
{
    int i;

    for (i = 0; i < DEXT_NUM_BARS; i++) {
        if (s->bar_map[i]) {
            munmap((void *)s->bar_map[i], s->bars[i].size);
            s->bar_map[i] = NULL;
        }
    }
    if (s->device >= 0) {
        close(s->device);
    }
    if (s->group >= 0) {
        close(s->group);
    }
    if (s->container >= 0) {
        close(s->container);
    }
    s->device = s->group = s->container = -1;
}

/*
 * Closing the device, group and container fds is what gives the device
 * back: the kernel drops every IOMMU mapping, frees the vectors, resets
 * the function and lets another user (or driver) have the group.
 */
static void vfio_terminate(DextDevice *dev)
{
    VfioState *s = state_of(dev);

    irq_stop(dev);
    pthread_rwlock_wrlock(&s->lock);
    close_fds(s);
    pthread_rwlock_unlock(&s->lock);
    dext_device_logf(dev, DEXT_LOG_INFO, "%s handed back to the kernel "
                     "(still bound to vfio-pci)", s->host);
}

/* ------------------------------------------------------------------ */
/* DMA                                                                  */

static IOReturn vfio_dma_map(DextDevice *dev, uint64_t iova, void *host,
                             uint64_t len)
{
    VfioState *s = state_of(dev);
    struct vfio_iommu_type1_dma_map map = {
        .argsz = sizeof(map),
        .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        .vaddr = (uintptr_t)host,
        .iova = iova,
        .size = len,
    };
    int container, err = 0;

    /*
     * Pinning faults the pages in.  Our lock is not held across it, so
     * Terminate (which takes @lock exclusively under CoreDevice.lock)
     * never waits here; a dup keeps the container alive across the ioctl,
     * and should Terminate close ours meanwhile, the mapping goes with the
     * container when the dup is closed.  The kernel holds the container's
     * own locks across the pinning, which closing the group and other
     * maps wait for: so the core hands us only tmpfs and hugetlbfs pages
     * (file_pages_pinnable() in core/dma.c).
     */
    pthread_rwlock_rdlock(&s->lock);
    container = s->container < 0 ? -1
                : fcntl(s->container, F_DUPFD_CLOEXEC, 0);
    err = s->container < 0 ? ENODEV : errno;
    pthread_rwlock_unlock(&s->lock);
    if (container < 0) {
        return err == ENODEV ? kIOReturnNoDevice : kIOReturnNoResources;
    }
    err = ioctl(container, VFIO_IOMMU_MAP_DMA, &map) == 0 ? 0 : errno;
    close(container);
    if (err == 0) {
        return kIOReturnSuccess;
    }
    if (err == ENOMEM) {
        struct rlimit rl = { 0 };

        getrlimit(RLIMIT_MEMLOCK, &rl);
        dext_device_logf(dev, DEXT_LOG_WARNING, "cannot pin %" PRIu64 " bytes "
                         "for DMA: the locked-memory limit (RLIMIT_MEMLOCK, "
                         "%llu bytes) is reached; raise it (ulimit -l, "
                         "systemd LimitMEMLOCK=)", len,
                         (unsigned long long)rl.rlim_cur);
        return kIOReturnNoResources;
    }
    dext_device_logf(dev, DEXT_LOG_WARNING, "VFIO_IOMMU_MAP_DMA of %" PRIu64
                     " bytes at bus 0x%" PRIx64 " failed: %s", len, iova,
                     strerror(err));
    return err == ENOSPC ? kIOReturnNoSpace :
           err == EFAULT ? kIOReturnVMError : dext_errno_ioreturn(err);
}

static void vfio_dma_unmap(DextDevice *dev, uint64_t iova, uint64_t len)
{
    VfioState *s = state_of(dev);
    struct vfio_iommu_type1_dma_unmap unmap = {
        .argsz = sizeof(unmap),
        .iova = iova,
        .size = len,
    };

    pthread_rwlock_rdlock(&s->lock);
    /* After terminate the container is gone, and its mappings with it. */
    if (s->container >= 0 &&
        ioctl(s->container, VFIO_IOMMU_UNMAP_DMA, &unmap) != 0) {
        dext_device_logf(dev, DEXT_LOG_ERROR, "VFIO_IOMMU_UNMAP_DMA at bus "
                         "0x%" PRIx64 " failed: %s", iova, strerror(errno));
    }
    pthread_rwlock_unlock(&s->lock);
}

/* ------------------------------------------------------------------ */
/* Interrupts                                                           */

static void *irq_thread(void *opaque)
{
    DextDevice *dev = opaque;
    VfioState *s = state_of(dev);

    for (;;) {
        struct epoll_event ev[16];
        int n = epoll_wait(s->epfd, ev, 16, -1);
        int i;

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return NULL;
        }
        for (i = 0; i < n; i++) {
            uint32_t v = ev[i].data.u32;
            uint64_t count;

            if (v == UINT32_MAX) {
                return NULL;    /* stop_fd */
            }
            /*
             * The counter holds every message since the last read: each
             * is one raise, as the dext counts them (bounded, so that a
             * storm cannot hold this thread in the loop).
             */
            if (read(s->evfd[v], &count, sizeof(count)) == sizeof(count)) {
                for (count = count < 65536 ? count : 65536; count > 0;
                     count--) {
                    dev->host.raise_msi(dev->host.opaque, v);
                }
            }
        }
    }
}

static IOReturn set_irqs(VfioState *s, int index, uint32_t count,
                         const int *fds)
{
    size_t sz = sizeof(struct vfio_irq_set) + count * sizeof(int);
    struct vfio_irq_set *set = calloc(1, sz);
    IOReturn ret;

    if (set == NULL) {
        return kIOReturnNoMemory;
    }
    set->argsz = (uint32_t)sz;
    set->flags = (count ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE) |
                 VFIO_IRQ_SET_ACTION_TRIGGER;
    set->index = (uint32_t)index;
    set->start = 0;
    set->count = count;
    if (count) {
        memcpy(set->data, fds, count * sizeof(int));
    }
    pthread_rwlock_rdlock(&s->lock);
    if (s->device < 0) {
        ret = kIOReturnNoDevice;
    } else {
        /* ENOSPC alone means the kernel is short of vectors. */
        ret = ioctl(s->device, VFIO_DEVICE_SET_IRQS, set) == 0 ?
              kIOReturnSuccess :
              errno == ENOSPC ? kIOReturnNoSpace : dext_errno_ioreturn(errno);
    }
    pthread_rwlock_unlock(&s->lock);
    free(set);
    return ret;
}

static void irq_close_fds(VfioState *s)
{
    uint32_t v;

    for (v = 0; v < VFIO_MAX_VECTORS; v++) {
        if (s->evfd[v] >= 0) {
            close(s->evfd[v]);
            s->evfd[v] = -1;
        }
    }
    if (s->stop_fd >= 0) {
        close(s->stop_fd);
        s->stop_fd = -1;
    }
    if (s->epfd >= 0) {
        close(s->epfd);
        s->epfd = -1;
    }
}

/* Eventfds for @nvec vectors, the stop fd and the epoll set. */
static IOReturn irq_make_fds(VfioState *s, uint32_t nvec)
{
    struct epoll_event ev = { .events = EPOLLIN };
    uint32_t v;

    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->epfd < 0 || s->stop_fd < 0) {
        return kIOReturnNoResources;
    }
    ev.data.u32 = UINT32_MAX;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->stop_fd, &ev) != 0) {
        return kIOReturnNoResources;
    }
    for (v = 0; v < nvec; v++) {
        s->evfd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ev.data.u32 = v;
        if (s->evfd[v] < 0 ||
            epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd[v], &ev) != 0) {
            return kIOReturnNoResources;
        }
    }
    return kIOReturnSuccess;
}

/* Vectors of VFIO irq @index, as the contract counts them. */
static uint32_t index_vectors(VfioState *s, int index)
{
    uint32_t n = s->irq_count[index];

    return n > VFIO_MAX_VECTORS ? VFIO_MAX_VECTORS : n;
}

/*
 * VFIO_DEVICE_SET_IRQS enables MSI in the device but not in the config
 * space vfio-pci shows us, which it virtualises: write the enable bit and
 * the vector count there too, as a VMM does, so clients reading the MSI
 * capability see what the dext would show.  (MSI-X is shown as it is.)
 */
static void msi_show_enabled(DextDevice *dev, int index, uint32_t nvec)
{
    VfioState *s = state_of(dev);
    uint32_t ctl = 0, qsize = 0;

    if (index != VFIO_PCI_MSI_IRQ_INDEX || s->msi_cap == 0 ||
        vfio_config_read(dev, s->msi_cap + DEXT_PCI_MSI_FLAGS, 2, &ctl) !=
        kIOReturnSuccess) {
        return;
    }
    while ((1u << qsize) < nvec) {
        qsize++;
    }
    ctl = (ctl & ~(uint32_t)DEXT_PCI_MSI_FLAGS_QSIZE) | (qsize << 4) |
          DEXT_PCI_MSI_FLAGS_ENABLE;
    vfio_config_write(dev, s->msi_cap + DEXT_PCI_MSI_FLAGS, 2, ctl);
}

static IOReturn irq_start(DextDevice *dev, int index, uint32_t nvec)
{
    VfioState *s = state_of(dev);
    IOReturn ret;

    ret = irq_make_fds(s, nvec);
    if (ret == kIOReturnSuccess) {
        ret = set_irqs(s, index, nvec, s->evfd);
    }
    if (ret == kIOReturnSuccess &&
        pthread_create(&s->thread, NULL, irq_thread, dev) != 0) {
        set_irqs(s, index, 0, NULL);
        ret = kIOReturnNoResources;
    }
    if (ret != kIOReturnSuccess) {
        irq_close_fds(s);
        return ret;
    }
    s->irq_index = index;
    s->nvec = nvec;
    msi_show_enabled(dev, index, nvec);
    return kIOReturnSuccess;
}

static IOReturn vfio_irq_enable(DextDevice *dev, uint32_t *nvec)
{
    VfioState *s = state_of(dev);
    IOReturn ret = kIOReturnNotFound;
    uint32_t n;

    pthread_mutex_lock(&s->irq_lock);
    if (s->irq_index >= 0) {
        *nvec = s->nvec;        /* another session enabled them */
        pthread_mutex_unlock(&s->irq_lock);
        return kIOReturnSuccess;
    }
    n = index_vectors(s, VFIO_PCI_MSIX_IRQ_INDEX);
    if (n > 0) {
        ret = irq_start(dev, VFIO_PCI_MSIX_IRQ_INDEX, n);
        /*
         * The kernel may not have vectors for the whole table (x86 has
         * about 200 per CPU: a 256-entry table on a one-CPU guest gets
         * ENOSPC).  As a driver's pci_alloc_irq_vectors(1, n) does, take
         * fewer; the caller is told how many.  Only then: out of fds or
         * threads, fewer vectors would only stick for every later session.
         */
        while (ret == kIOReturnNoSpace && n > 1) {
            n /= 2;
            ret = irq_start(dev, VFIO_PCI_MSIX_IRQ_INDEX, n);
        }
        if (ret == kIOReturnSuccess && n < index_vectors(s,
                                                 VFIO_PCI_MSIX_IRQ_INDEX)) {
            dext_device_logf(dev, DEXT_LOG_WARNING, "MSI-X: the kernel "
                             "granted %u of %u vectors", n,
                             index_vectors(s, VFIO_PCI_MSIX_IRQ_INDEX));
        }
        if (ret != kIOReturnSuccess && index_vectors(s, VFIO_PCI_MSI_IRQ_INDEX)) {
            /* As the dext does: MSI-X failed, one MSI vector instead. */
            dext_device_logf(dev, DEXT_LOG_WARNING, "MSI-X setup failed "
                             "(0x%x), falling back to one MSI vector", ret);
            ret = irq_start(dev, VFIO_PCI_MSI_IRQ_INDEX, 1);
        }
    } else if ((n = index_vectors(s, VFIO_PCI_MSI_IRQ_INDEX)) > 0) {
        ret = irq_start(dev, VFIO_PCI_MSI_IRQ_INDEX, n);
    }
    if (ret == kIOReturnSuccess) {
        *nvec = s->nvec;
    }
    pthread_mutex_unlock(&s->irq_lock);
    return ret;
}

static void irq_stop(DextDevice *dev)
{
    VfioState *s = state_of(dev);
    uint64_t one = 1;

    pthread_mutex_lock(&s->irq_lock);
    if (s->irq_index >= 0) {
        set_irqs(s, s->irq_index, 0, NULL);
        if (write(s->stop_fd, &one, sizeof(one)) == sizeof(one)) {
            pthread_join(s->thread, NULL);
        }
        irq_close_fds(s);
        s->irq_index = -1;
        s->nvec = 0;
    }
    pthread_mutex_unlock(&s->irq_lock);
}

static void vfio_irq_disable(DextDevice *dev)
{
    irq_stop(dev);
}

static void vfio_destroy(DextDevice *dev)
{
    VfioState *s = state_of(dev);

    if (s == NULL) {
        return;
    }
    irq_stop(dev);
    close_fds(s);
    pthread_rwlock_destroy(&s->lock);
    pthread_mutex_destroy(&s->irq_lock);
    free(s);
    dev->priv = NULL;
}

static const DextDeviceOps vfio_ops = {
    .name = "vfio",
    .config_read = vfio_config_read,
    .config_write = vfio_config_write,
    .mmio_read = vfio_mmio_read,
    .mmio_write = vfio_mmio_write,
    .map_bar = vfio_map_bar,
    .reset_function = vfio_reset_function,
    .reset_bus = vfio_reset_bus,
    .open = vfio_open,
    .close = vfio_close,
    .terminate = vfio_terminate,
    .irq_enable = vfio_irq_enable,
    .irq_disable = vfio_irq_disable,
    .dma_map = vfio_dma_map,
    .dma_unmap = vfio_dma_unmap,
    .destroy = vfio_destroy,
};

/* ------------------------------------------------------------------ */
/* Setup: every mistake named, with what to do                          */

static IOReturn vfio_apply_option(void *opaque, const char *key,
                                  const char *value)
{
    VfioOptions *o = opaque;
    char *end;

    if (strcmp(key, "host") == 0 && strlen(value) < sizeof(o->host)) {
        snprintf(o->host, sizeof(o->host), "%s", value);
    } else if (strcmp(key, "bdf") == 0 && strlen(value) < sizeof(o->bdf)) {
        snprintf(o->bdf, sizeof(o->bdf), "%s", value);
    } else if (strcmp(key, "dma_mask") == 0) {
        errno = 0;
        o->dma_mask = strtoull(value, &end, 0);
        if (errno || *end || end == value || o->dma_mask < 0xffffff) {
            return kIOReturnBadArgument;
        }
    } else {
        return kIOReturnBadArgument;
    }
    return kIOReturnSuccess;
}

/* The last path component of symlink @dir/@name, or "" if none. */
static void link_name(const char *dir, const char *name, char *out,
                      size_t cap)
{
    char path[PATH_MAX + 64], target[PATH_MAX];
    ssize_t n;
    const char *slash;

    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0) {
        return;
    }
    target[n] = '\0';
    slash = strrchr(target, '/');
    slash = slash ? slash + 1 : target;
    n = (ssize_t)strlen(slash);
    if ((size_t)n < cap) {
        memcpy(out, slash, (size_t)n + 1);
    }
}

static IOReturn check_binding(const char *dir, const char *host)
{
    char driver[64], unbind[PATH_MAX + 64] = "";

    link_name(dir, "driver", driver, sizeof(driver));
    if (strcmp(driver, "vfio-pci") == 0) {
        return kIOReturnSuccess;
    }
    if (driver[0]) {
        snprintf(unbind, sizeof(unbind), "  echo %s > %s/driver/unbind\n",
                 host, dir);
    }
    dext_device_set_error("%s is bound to %s, not to vfio-pci; to hand it "
                          "to VFIO, as root:\n"
                          "  modprobe vfio-pci\n"
                          "%s"
                          "  echo vfio-pci > %s/driver_override\n"
                          "  echo %s > /sys/bus/pci/drivers_probe",
                          host, driver[0] ? driver : "no driver", unbind, dir,
                          host);
    return kIOReturnNotReady;
}

/* Name the functions of group @id that keep it from being viable. */
static void explain_group(int id)
{
    char dir[PATH_MAX], list[768] = "";
    struct dirent *e;
    size_t used = 0;
    DIR *d;

    snprintf(dir, sizeof(dir), "/sys/kernel/iommu_groups/%d/devices", id);
    d = opendir(dir);
    while (d && (e = readdir(d)) != NULL) {
        char drv[64], fn[PATH_MAX + 256];

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(fn, sizeof(fn), "%s/%s", dir, e->d_name);
        link_name(fn, "driver", drv, sizeof(drv));
        if (drv[0] && strcmp(drv, "vfio-pci") != 0 && used < sizeof(list)) {
            used += (size_t)snprintf(list + used, sizeof(list) - used,
                                     " %s (driver %s)", e->d_name, drv);
        }
    }
    if (d) {
        closedir(d);
    }
    dext_device_set_error("IOMMU group %d is not viable: every function in "
                          "it must be bound to vfio-pci or to no driver; "
                          "bound elsewhere:%s", id,
                          list[0] ? list : " (none found in sysfs)");
}

static IOReturn open_group(VfioState *s, const char *dir)
{
    struct vfio_group_status status = { .argsz = sizeof(status) };
    char name[32], path[64];
    int err;

    link_name(dir, "iommu_group", name, sizeof(name));
    if (name[0] == '\0') {
        dext_device_set_error("%s has no IOMMU group: the kernel runs "
                              "without an IOMMU (boot with intel_iommu=on or "
                              "amd_iommu=on, and enable VT-d/AMD-Vi in the "
                              "firmware).  No-IOMMU mode is refused: it lets "
                              "the device write anywhere in memory", s->host);
        return kIOReturnUnsupported;
    }
    s->group_id = atoi(name);
    snprintf(path, sizeof(path), "/dev/vfio/%d", s->group_id);
    s->group = open(path, O_RDWR | O_CLOEXEC);
    if (s->group < 0) {
        err = errno;
        if (access("/dev/vfio/noiommu-0", F_OK) == 0 || err == ENOENT) {
            snprintf(path + strlen("/dev/vfio/"), sizeof(path) - 10,
                     "noiommu-%d", s->group_id);
            if (access(path, F_OK) == 0) {
                dext_device_set_error("%s is in a no-IOMMU VFIO group "
                                      "(%s): refused, the device could write "
                                      "anywhere in memory", s->host, path);
                return kIOReturnUnsupported;
            }
        }
        if (err == EACCES || err == EPERM) {
            dext_device_set_error("permission denied on /dev/vfio/%d: run "
                                  "dextd as root, or give its user the group "
                                  "(chown USER /dev/vfio/%d, and raise its "
                                  "RLIMIT_MEMLOCK)", s->group_id, s->group_id);
            return kIOReturnNotPrivileged;
        }
        if (err == EBUSY) {
            dext_device_set_error("/dev/vfio/%d is held by another process "
                                  "(QEMU, another dextd?): only one may own "
                                  "an IOMMU group", s->group_id);
            return kIOReturnBusy;
        }
        dext_device_set_error("cannot open /dev/vfio/%d: %s", s->group_id,
                              strerror(err));
        return dext_errno_ioreturn(err);
    }
    if (ioctl(s->group, VFIO_GROUP_GET_STATUS, &status) != 0) {
        dext_device_set_error("VFIO_GROUP_GET_STATUS: %s", strerror(errno));
        return kIOReturnIOError;
    }
    if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        explain_group(s->group_id);
        return kIOReturnNotReady;
    }
    return kIOReturnSuccess;
}

static IOReturn open_container(VfioState *s)
{
    int type;

    s->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (s->container < 0) {
        dext_device_set_error("cannot open /dev/vfio/vfio: %s (is the vfio "
                              "module loaded?)", strerror(errno));
        return errno == EACCES ? kIOReturnNotPrivileged : kIOReturnUnsupported;
    }
    if (ioctl(s->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
        dext_device_set_error("/dev/vfio/vfio speaks another VFIO API version");
        return kIOReturnUnsupported;
    }
    type = ioctl(s->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0
           ? VFIO_TYPE1v2_IOMMU : VFIO_TYPE1_IOMMU;
    if (ioctl(s->container, VFIO_CHECK_EXTENSION, type) <= 0) {
        dext_device_set_error("the kernel has no type1 VFIO IOMMU "
                              "(modprobe vfio_iommu_type1)");
        return kIOReturnUnsupported;
    }
    if (ioctl(s->group, VFIO_GROUP_SET_CONTAINER, &s->container) != 0) {
        dext_device_set_error("VFIO_GROUP_SET_CONTAINER: %s", strerror(errno));
        return dext_errno_ioreturn(errno);
    }
    if (ioctl(s->container, VFIO_SET_IOMMU, type) != 0) {
        dext_device_set_error("VFIO_SET_IOMMU: %s%s", strerror(errno),
                              errno == EPERM ? " (no interrupt remapping: "
                              "the IOMMU cannot isolate MSIs; refusing "
                              "allow_unsafe_interrupts)" : "");
        return dext_errno_ioreturn(errno);
    }
    return kIOReturnSuccess;
}

/*
 * The bus addresses the IOMMU accepts, from the type1 IOVA-range
 * capability: @mask is lowered to the end of the range holding the
 * DART's base, so the core never hands out an address in a reserved
 * window (x86's MSI window at 0xfee00000).
 */
static void clamp_dma_mask(VfioState *s, uint64_t *mask)
{
    struct vfio_iommu_type1_info *info;
    struct vfio_info_cap_header *h;
    uint32_t sz = 4096, off;

    info = calloc(1, sz);
    if (info == NULL) {
        return;
    }
    info->argsz = sz;
    if (ioctl(s->container, VFIO_IOMMU_GET_INFO, info) != 0 ||
        !(info->flags & VFIO_IOMMU_INFO_CAPS) || info->argsz > sz) {
        free(info);
        return;
    }
    for (off = info->cap_offset; off && off + sizeof(*h) <= sz;
         off = h->next) {
        h = (struct vfio_info_cap_header *)((uint8_t *)info + off);
        if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
            struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;
            uint32_t i;

            for (i = 0; i < r->nr_iovas &&
                 off + sizeof(*r) + (i + 1) * sizeof(r->iova_ranges[0]) <= sz;
                 i++) {
                if (r->iova_ranges[i].start <= 0x100000 &&
                    r->iova_ranges[i].end >= 0x100000 &&
                    r->iova_ranges[i].end < *mask) {
                    *mask = r->iova_ranges[i].end;
                }
            }
        }
        if (h->next <= off) {
            break;
        }
    }
    free(info);
}

static IOReturn read_regions(VfioState *s)
{
    struct vfio_device_info info = { .argsz = sizeof(info) };
    uint32_t i;

    if (ioctl(s->device, VFIO_DEVICE_GET_INFO, &info) != 0) {
        dext_device_set_error("VFIO_DEVICE_GET_INFO: %s", strerror(errno));
        return kIOReturnIOError;
    }
    if (!(info.flags & VFIO_DEVICE_FLAGS_PCI) ||
        info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
        dext_device_set_error("%s is not a PCI device to VFIO", s->host);
        return kIOReturnUnsupported;
    }
    s->dev_flags = info.flags;
    for (i = 0; i <= VFIO_PCI_CONFIG_REGION_INDEX; i++) {
        struct vfio_region_info r = { .argsz = sizeof(r), .index = i };
        VfioRegion *dst = i == VFIO_PCI_CONFIG_REGION_INDEX ? &s->config
                                                           : &s->bars[i];

        if (i > VFIO_PCI_BAR5_REGION_INDEX && i != VFIO_PCI_CONFIG_REGION_INDEX) {
            continue;
        }
        if (ioctl(s->device, VFIO_DEVICE_GET_REGION_INFO, &r) != 0) {
            continue;
        }
        dst->offset = r.offset;
        dst->size = r.size;
        dst->flags = r.flags;
        /* A sparse-mmap capability means only parts may be mapped. */
        if ((r.flags & VFIO_REGION_INFO_FLAG_CAPS) &&
            r.argsz > sizeof(r) && i != VFIO_PCI_CONFIG_REGION_INDEX) {
            dst->flags &= ~(uint32_t)VFIO_REGION_INFO_FLAG_MMAP;
        }
    }
    for (i = 0; i < VFIO_PCI_NUM_IRQS && i < info.num_irqs; i++) {
        struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = i };

        if (ioctl(s->device, VFIO_DEVICE_GET_IRQ_INFO, &irq) == 0 &&
            (irq.flags & VFIO_IRQ_INFO_EVENTFD)) {
            s->irq_count[i] = irq.count;
        }
    }
    return kIOReturnSuccess;
}

/*
 * BARs that hold the MSI-X table or PBA: never mappable (bit per BAR).
 * Also notes where the MSI capability is.
 */
static unsigned msix_bars(DextDevice *dev)
{
    uint32_t status = 0, ptr = 0, id = 0, v = 0;
    unsigned bars = 0;
    int guard;

    if (vfio_config_read(dev, DEXT_PCI_STATUS, 2, &status) != kIOReturnSuccess ||
        !(status & DEXT_PCI_STATUS_CAP_LIST)) {
        return 0;
    }
    vfio_config_read(dev, DEXT_PCI_CAPABILITY_LIST, 1, &ptr);
    for (guard = 0; (ptr &= 0xfc) >= 0x40 && guard < 48; guard++) {
        vfio_config_read(dev, ptr, 1, &id);
        if (id == DEXT_PCI_CAP_ID_MSI && state_of(dev)->msi_cap == 0) {
            state_of(dev)->msi_cap = (uint8_t)ptr;
        }
        if (id == DEXT_PCI_CAP_ID_MSIX) {
            vfio_config_read(dev, ptr + DEXT_PCI_MSIX_TABLE, 4, &v);
            bars |= 1u << (v & DEXT_PCI_MSIX_TABLE_BIR);
            vfio_config_read(dev, ptr + DEXT_PCI_MSIX_PBA, 4, &v);
            bars |= 1u << (v & DEXT_PCI_MSIX_TABLE_BIR);
        }
        if (vfio_config_read(dev, ptr + 1, 1, &ptr) != kIOReturnSuccess) {
            break;
        }
    }
    return bars;
}

static IOReturn describe(DextDevice *dev, VfioState *s)
{
    uint32_t id = 0, cls = 0, hdr = 0;
    unsigned no_map;
    int i, nbars;

    if (vfio_config_read(dev, DEXT_PCI_VENDOR_ID, 4, &id) != kIOReturnSuccess ||
        vfio_config_read(dev, DEXT_PCI_REVISION_ID, 4, &cls) !=
        kIOReturnSuccess) {
        dext_device_set_error("cannot read %s's config space through VFIO",
                              s->host);
        return kIOReturnIOError;
    }
    if ((id & 0xffff) == 0xffff) {
        dext_device_set_error("%s reads as all ones: gone or powered off",
                              s->host);
        return kIOReturnNoDevice;
    }
    dev->vendor_id = (uint16_t)id;
    dev->device_id = (uint16_t)(id >> 16);
    dev->revision = (uint8_t)cls;
    dev->class_code = cls >> 8;
    dev->config_size = s->config.size >= DEXT_CONFIG_SIZE_EXT
                       ? DEXT_CONFIG_SIZE_EXT : DEXT_CONFIG_SIZE;
    vfio_config_read(dev, DEXT_PCI_HEADER_TYPE, 1, &hdr);
    nbars = dext_header_bars((uint8_t)hdr);
    no_map = msix_bars(dev);
    for (i = 0; i < nbars; i++) {
        uint32_t reg = 0;
        DextBar *b = &dev->bars[i];

        if (s->bars[i].size == 0) {
            continue;
        }
        vfio_config_read(dev, DEXT_PCI_BAR0 + 4 * i, 4, &reg);
        b->size = s->bars[i].size;
        if (reg & DEXT_BAR_TYPE_IO) {
            b->type = DEXT_BAR_TYPE_IO;
        } else {
            b->type = reg & (DEXT_BAR_TYPE_MEM64 | DEXT_BAR_TYPE_PREFETCH);
        }
        b->mappable = (s->bars[i].flags & VFIO_REGION_INFO_FLAG_MMAP) &&
                      !(no_map & (1u << i)) && !(reg & DEXT_BAR_TYPE_IO);
        b->local_only = true;
        if (b->mappable) {
            void *p = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED,
                           s->device, (off_t)s->bars[i].offset);

            s->bar_map[i] = p == MAP_FAILED ? NULL : p;
        }
        if (b->type & DEXT_BAR_TYPE_MEM64) {
            i++;                /* the upper half stays size 0 */
        }
    }
    return kIOReturnSuccess;
}

IOReturn dext_vfio_create(const char *options, DextDevice **out)
{
    VfioOptions o = { .dma_mask = VFIO_DMA_MASK_DEF };
    unsigned dom = 0, bus, slot, fn;
    char dir[PATH_MAX];
    DextDevice *dev;
    VfioState *s;
    IOReturn ret;
    uint32_t v;
    int n = 0;

    ret = dext_device_for_each_option(options, vfio_apply_option, &o);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (sscanf(o.host, "%x:%x:%x.%x%n", &dom, &bus, &slot, &fn, &n) != 4 ||
        o.host[n] != '\0') {
        n = 0;
        if (sscanf(o.host, "%x:%x.%x%n", &bus, &slot, &fn, &n) != 3 ||
            o.host[n] != '\0') {
            dext_device_set_error("vfio needs host=[DDDD:]BB:DD.F (the "
                                  "function bound to vfio-pci)");
            return kIOReturnBadArgument;
        }
    }
    if (dom > 0xffff || bus > 0xff || slot > 0x1f || fn > 7) {
        return kIOReturnBadArgument;
    }
    dev = calloc(1, sizeof(*dev));
    s = calloc(1, sizeof(*s));
    if (dev == NULL || s == NULL) {
        free(dev);
        free(s);
        return kIOReturnNoMemory;
    }
    pthread_rwlock_init(&s->lock, NULL);
    pthread_mutex_init(&s->irq_lock, NULL);
    s->container = s->group = s->device = -1;
    s->stop_fd = s->epfd = -1;
    s->irq_index = -1;
    for (v = 0; v < VFIO_MAX_VECTORS; v++) {
        s->evfd[v] = -1;
    }
    snprintf(s->host, sizeof(s->host), "%04x:%02x:%02x.%x", dom, bus, slot,
             fn);
    dev->ops = &vfio_ops;
    dev->priv = s;
    dev->hardware = true;
    dev->allow_writes = true;   /* binding it to vfio-pci was the consent */
    dev->bus = (uint8_t)bus;
    dev->dev = (uint8_t)slot;
    dev->fn = (uint8_t)fn;
    if (o.bdf[0]) {
        uint8_t b, d, f;

        if (!dext_parse_bdf(o.bdf, &b, &d, &f)) {
            ret = kIOReturnBadArgument;
            goto fail;
        }
        dev->bus = b;
        dev->dev = d;
        dev->fn = f;
    }
    snprintf(dev->name, sizeof(dev->name), "vfio %s", s->host);

    snprintf(dir, sizeof(dir), "%s/%s", VFIO_SYSFS, s->host);
    if (access(dir, F_OK) != 0) {
        dext_device_set_error("no PCI function %s (%s is missing)", s->host,
                              dir);
        ret = kIOReturnNotFound;
        goto fail;
    }
    ret = check_binding(dir, s->host);
    if (ret == kIOReturnSuccess) {
        ret = open_group(s, dir);
    }
    if (ret == kIOReturnSuccess) {
        ret = open_container(s);
    }
    if (ret != kIOReturnSuccess) {
        goto fail;
    }
    s->device = ioctl(s->group, VFIO_GROUP_GET_DEVICE_FD, s->host);
    if (s->device < 0) {
        dext_device_set_error("VFIO_GROUP_GET_DEVICE_FD %s: %s", s->host,
                              strerror(errno));
        ret = dext_errno_ioreturn(errno);
        goto fail;
    }
    ret = read_regions(s);
    if (ret == kIOReturnSuccess) {
        ret = describe(dev, s);
    }
    if (ret != kIOReturnSuccess) {
        goto fail;
    }
    clamp_dma_mask(s, &o.dma_mask);
    dev->dma_mask = o.dma_mask;
    vfio_close(dev);
    *out = dev;
    return kIOReturnSuccess;

fail:
    dext_device_free(dev);
    return ret;
}
