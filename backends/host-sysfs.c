/*
 * SPDX-License-Identifier: MIT
 *
 * The "host" backend: a real PCI function of this Linux machine, reached
 * through sysfs (/sys/bus/pci/devices/0000:BB:DD.F).
 *
 * Read-only unless told otherwise.  Config space comes from the sysfs
 * "config" file with one pread() per access, so every read reaches the
 * device exactly as lspci's reads do; BAR sizes come from the "resource"
 * file and BAR types from the BAR registers themselves; the identity from
 * config space.  The device is DextDevice.hardware: unless the operator
 * allowed writes to it (writable=on, or dext_core_allow_writes(), which
 * dextd's --allow-writes names), the core refuses everything that could
 * disturb a live device (config writes, MMIO, mapping, DMA, interrupts,
 * reset) before any hook here runs; the hooks trust that policy.
 *
 * With writes allowed config writes go to "config", MMIO to an mmap()
 * of "resourceN" (memory BARs, volatile accesses of the requested width)
 * or pread/pwrite on it (I/O BARs), BAR mappings hand out a "resourceN"
 * fd and reset writes "1" to the "reset" file.  DMA and interrupts would
 * need the device bound to VFIO: the backend marks the device no_dma and
 * no_irq, and the core answers those calls with kIOReturnUnsupported.
 *
 * Options: "bdf=[0000:]BB:DD.F" (required; "all" only through
 * dext_host_create_each()), "writable=on|off" (default off) and
 * "sysfs=DIR" (default /sys/bus/pci/devices; tests use a fake tree).
 *
 * Only domain 0000 is served: the dext reports bus/device/function and
 * nothing else, so functions of two domains could not be told apart.
 *
 * Reading past byte 64 of config space needs CAP_SYS_ADMIN (the kernel
 * silently shortens the read).  Such reads are refused with
 * kIOReturnNotPrivileged rather than answered with made-up bytes.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libdext/pci-regs.h"
#include "backends/backend.h"
#include "backends/mmio-access.h"
#include "support/bdf.h"

#define HOST_SYSFS_DEFAULT   "/sys/bus/pci/devices"
#define HOST_MIN_CONFIG      64          /* the type-0/1 header */
#define HOST_DMA_BITS_DEF    32

/* Resource flags of the kernel's "resource" file (include/linux/ioport.h). */
#define HOST_IORESOURCE_IO   0x00000100ull
#define HOST_IORESOURCE_MEM  0x00000200ull

typedef struct HostBar {
    int fd;                         /* resourceN, -1 until first use */
    volatile uint8_t *map;          /* memory BARs: mmap of @fd */
    size_t map_len;
} HostBar;

typedef struct HostState {
    char dir[PATH_MAX];             /* the function's sysfs directory */
    int cfg_fd;                     /* "config", read-only */
    uint32_t readable;              /* config bytes this process may read */

    /* @lock guards the lazily opened fds and mappings below. */
    pthread_mutex_t lock;
    int cfg_wfd;                    /* "config" for writing, -1 until used */
    bool warned_privilege;
    HostBar bars[DEXT_NUM_BARS];
} HostState;

typedef struct HostOptions {
    char bdf[32];                   /* as given; "" when absent */
    bool writable;
    char sysfs[PATH_MAX];
} HostOptions;

static uint32_t le_get(const uint8_t *p, uint32_t width)
{
    uint32_t v = 0;

    for (uint32_t i = 0; i < width; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

/* pread() that retries interrupted and short reads; returns bytes read. */
static ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (uint8_t *)buf + done, len - done,
                          off + (off_t)done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return done > 0 ? (ssize_t)done : -1;
        }
        if (n == 0) {
            break;
        }
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static ssize_t pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
    ssize_t n;

    do {
        n = pwrite(fd, buf, len, off);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* ------------------------------------------------------------------ */
/* Config space                                                         */

static IOReturn host_config_read(DextDevice *dev, uint32_t off,
                                 uint32_t width, uint32_t *val)
{
    HostState *s = dev->priv;
    uint8_t b[4] = { 0 };
    ssize_t n;

    if (off + width > s->readable) {
        bool first;

        pthread_mutex_lock(&s->lock);
        first = !s->warned_privilege;
        s->warned_privilege = true;
        pthread_mutex_unlock(&s->lock);
        if (first) {
            dext_device_logf(dev, DEXT_LOG_WARNING,
                             "only the first %u bytes of config space are "
                             "readable without CAP_SYS_ADMIN: run dextd "
                             "as root", s->readable);
        }
        return kIOReturnNotPrivileged;
    }
    n = pread_full(s->cfg_fd, b, width, off);
    if (n != (ssize_t)width) {
        return n < 0 ? dext_errno_ioreturn(errno) : kIOReturnIOError;
    }
    *val = le_get(b, width);
    return kIOReturnSuccess;
}

static IOReturn host_config_write(DextDevice *dev, uint32_t off,
                                  uint32_t width, uint32_t val)
{
    HostState *s = dev->priv;
    uint8_t b[4];
    char path[PATH_MAX + 16];
    int fd;

    for (uint32_t i = 0; i < width; i++) {
        b[i] = (uint8_t)(val >> (8 * i));
    }
    pthread_mutex_lock(&s->lock);
    if (s->cfg_wfd < 0) {
        /* Opened on the first write, so a read-only device never holds it. */
        snprintf(path, sizeof(path), "%s/config", s->dir);
        s->cfg_wfd = open(path, O_WRONLY | O_CLOEXEC);
        if (s->cfg_wfd < 0) {
            int err = errno;

            pthread_mutex_unlock(&s->lock);
            dext_device_logf(dev, DEXT_LOG_WARNING, "%s: %s", path,
                             strerror(err));
            return dext_errno_ioreturn(err);
        }
    }
    fd = s->cfg_wfd;
    pthread_mutex_unlock(&s->lock);
    /* An aligned write of 2 or 4 bytes is one config cycle of that size. */
    if (pwrite_full(fd, b, width, off) != (ssize_t)width) {
        int err = errno;

        dext_device_logf(dev, DEXT_LOG_WARNING, "config write of %u byte(s) "
                         "at 0x%x: %s", width, off, strerror(err));
        return dext_errno_ioreturn(err);
    }
    return kIOReturnSuccess;
}

/* ------------------------------------------------------------------ */
/* BARs                                                                 */

/* Open resourceN (and map it, for memory BARs) on first use. */
static IOReturn host_bar_get(DextDevice *dev, int bar, HostBar **out)
{
    HostState *s = dev->priv;
    HostBar *hb = &s->bars[bar];
    char path[PATH_MAX + 16];
    IOReturn ret = kIOReturnSuccess;
    bool io = (dev->bars[bar].type & DEXT_BAR_TYPE_IO) != 0;

    pthread_mutex_lock(&s->lock);
    if (hb->fd < 0) {
        snprintf(path, sizeof(path), "%s/resource%d", s->dir, bar);
        hb->fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
        if (hb->fd < 0) {
            int err = errno;

            ret = dext_errno_ioreturn(err);
            pthread_mutex_unlock(&s->lock);
            dext_device_logf(dev, DEXT_LOG_WARNING, "BAR%d: %s: %s%s", bar,
                             path, strerror(err),
                             err == ENOENT ? " (the kernel does not expose "
                                             "this BAR to user space)" : "");
            return ret;
        }
    }
    if (!io && hb->map == NULL) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size_t len = (size_t)((dev->bars[bar].size + page - 1) & ~(page - 1));
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
                       hb->fd, 0);

        if (p == MAP_FAILED) {
            int err = errno;

            pthread_mutex_unlock(&s->lock);
            dext_device_logf(dev, DEXT_LOG_WARNING, "BAR%d: mmap: %s", bar,
                             strerror(err));
            return dext_errno_ioreturn(err);
        }
        hb->map = p;
        hb->map_len = len;
    }
    pthread_mutex_unlock(&s->lock);
    /* Mappings live until destroy, so using one outside the lock is safe. */
    *out = hb;
    return ret;
}

static IOReturn host_mmio_read(DextDevice *dev, int bar, uint64_t off,
                               uint32_t width, uint64_t *val)
{
    HostBar *hb;
    IOReturn ret;

    ret = host_bar_get(dev, bar, &hb);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (hb->map == NULL) {
        /* An I/O BAR: the kernel does port accesses of 1, 2 or 4 bytes. */
        uint8_t b[4] = { 0 };

        if (width > 4) {
            return kIOReturnBadArgument;
        }
        if (pread_full(hb->fd, b, width, (off_t)off) != (ssize_t)width) {
            return dext_errno_ioreturn(errno);
        }
        *val = le_get(b, width);
        return kIOReturnSuccess;
    }
    *val = dext_mmio_load(hb->map + off, width);
    return kIOReturnSuccess;
}

static IOReturn host_mmio_write(DextDevice *dev, int bar, uint64_t off,
                                uint32_t width, uint64_t val)
{
    HostBar *hb;
    IOReturn ret;

    ret = host_bar_get(dev, bar, &hb);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (hb->map == NULL) {
        uint8_t b[4];

        if (width > 4) {
            return kIOReturnBadArgument;
        }
        for (uint32_t i = 0; i < width; i++) {
            b[i] = (uint8_t)(val >> (8 * i));
        }
        if (pwrite_full(hb->fd, b, width, (off_t)off) != (ssize_t)width) {
            return dext_errno_ioreturn(errno);
        }
        return kIOReturnSuccess;
    }
    dext_mmio_store(hb->map + off, width, val);
    return kIOReturnSuccess;
}

static IOReturn host_map_bar(DextDevice *dev, int bar, DextMemory *out)
{
    HostState *s = dev->priv;
    char path[PATH_MAX + 16];
    int fd;

    snprintf(path, sizeof(path), "%s/resource%d", s->dir, bar);
    fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
    if (fd < 0) {
        return dext_errno_ioreturn(errno);
    }
    out->fd = fd;
    out->offset = 0;
    out->size = dev->bars[bar].size;
    out->writable = true;
    return kIOReturnSuccess;
}

/* ------------------------------------------------------------------ */
/* Reset and teardown                                                   */

static IOReturn host_reset_function(DextDevice *dev)
{
    HostState *s = dev->priv;
    char path[PATH_MAX + 16];
    int fd;
    int err = 0;

    /* The kernel picks the method (FLR, PM, bus reset) and saves and
     * restores the device's state around it. */
    snprintf(path, sizeof(path), "%s/reset", s->dir);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
    } else {
        if (pwrite_full(fd, "1", 1, 0) != 1) {
            err = errno;
        }
        close(fd);
    }
    if (err != 0) {
        dext_device_logf(dev, DEXT_LOG_WARNING, "reset: %s: %s%s", path,
                         strerror(err),
                         err == ENOENT ? " (the kernel knows no reset "
                                         "method for this function)" : "");
        return dext_errno_ioreturn(err);
    }
    return kIOReturnSuccess;
}

static void host_destroy(DextDevice *dev)
{
    HostState *s = dev->priv;

    if (s == NULL) {
        return;
    }
    for (int i = 0; i < DEXT_NUM_BARS; i++) {
        if (s->bars[i].map != NULL) {
            munmap((void *)s->bars[i].map, s->bars[i].map_len);
        }
        if (s->bars[i].fd >= 0) {
            close(s->bars[i].fd);
        }
    }
    if (s->cfg_wfd >= 0) {
        close(s->cfg_wfd);
    }
    if (s->cfg_fd >= 0) {
        close(s->cfg_fd);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
    dev->priv = NULL;
}

static const DextDeviceOps host_ops = {
    .name = "host",
    .config_read = host_config_read,
    .config_write = host_config_write,
    .mmio_read = host_mmio_read,
    .mmio_write = host_mmio_write,
    .map_bar = host_map_bar,
    .reset_function = host_reset_function,
    .destroy = host_destroy,
};

/* ------------------------------------------------------------------ */
/* Creation                                                             */

static IOReturn host_apply_option(void *opaque, const char *key,
                                  const char *value)
{
    HostOptions *o = opaque;

    if (strcmp(key, "bdf") == 0 && strlen(value) < sizeof(o->bdf)) {
        strcpy(o->bdf, value);
    } else if (strcmp(key, "writable") == 0 &&
               (strcmp(value, "on") == 0 || strcmp(value, "off") == 0)) {
        o->writable = strcmp(value, "on") == 0;
    } else if (strcmp(key, "sysfs") == 0 && *value != '\0' &&
               strlen(value) < sizeof(o->sysfs)) {
        strcpy(o->sysfs, value);
    } else {
        return kIOReturnBadArgument;
    }
    return kIOReturnSuccess;
}

static IOReturn host_parse_options(const char *options, HostOptions *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->sysfs, sizeof(o->sysfs), "%s", HOST_SYSFS_DEFAULT);
    return dext_device_for_each_option(options, host_apply_option, o);
}

/* Sizes of BARs from the "resource" file: "start end flags" per line. */
static void host_read_resources(const char *dir, uint64_t size[DEXT_NUM_BARS],
                                uint64_t flags[DEXT_NUM_BARS])
{
    char path[PATH_MAX + 16];
    char line[128];
    FILE *f;
    int i = 0;

    memset(size, 0, sizeof(uint64_t) * DEXT_NUM_BARS);
    memset(flags, 0, sizeof(uint64_t) * DEXT_NUM_BARS);
    snprintf(path, sizeof(path), "%s/resource", dir);
    f = fopen(path, "re");
    if (f == NULL) {
        return;
    }
    while (i < DEXT_NUM_BARS && fgets(line, sizeof(line), f) != NULL) {
        unsigned long long start, end, fl;

        if (sscanf(line, "%llx %llx %llx", &start, &end, &fl) == 3 &&
            (start != 0 || end != 0) && end >= start) {
            size[i] = end - start + 1;
            flags[i] = fl;
        }
        i++;
    }
    fclose(f);
}

static uint64_t host_dma_mask(const char *dir)
{
    char path[PATH_MAX + 24];
    unsigned bits = HOST_DMA_BITS_DEF;
    FILE *f;

    snprintf(path, sizeof(path), "%s/dma_mask_bits", dir);
    f = fopen(path, "re");
    if (f != NULL) {
        if (fscanf(f, "%u", &bits) != 1 || bits == 0 || bits > 64) {
            bits = HOST_DMA_BITS_DEF;
        }
        fclose(f);
    }
    return bits >= 64 ? UINT64_MAX : (1ull << bits) - 1;
}

/* Describe the BARs: types from the registers, sizes from the kernel. */
static void host_describe_bars(DextDevice *dev, HostState *s,
                               const uint8_t *cfg)
{
    uint64_t size[DEXT_NUM_BARS], flags[DEXT_NUM_BARS];
    char path[PATH_MAX + 16];
    int nbars;

    nbars = dext_header_bars(cfg[DEXT_PCI_HEADER_TYPE]);
    host_read_resources(s->dir, size, flags);
    for (int i = 0; i < nbars; i++) {
        uint32_t reg = le_get(cfg + DEXT_PCI_BAR0 + 4 * i, 4);
        DextBar *b = &dev->bars[i];

        if (size[i] == 0 ||
            !(flags[i] & (HOST_IORESOURCE_IO | HOST_IORESOURCE_MEM))) {
            continue;
        }
        b->size = size[i];
        if (reg & DEXT_BAR_TYPE_IO) {
            b->type = DEXT_BAR_TYPE_IO;
        } else {
            b->type = reg & (DEXT_BAR_TYPE_MEM64 | DEXT_BAR_TYPE_PREFETCH);
            snprintf(path, sizeof(path), "%s/resource%d", s->dir, i);
            /* Plain loads and stores reach a real memory BAR. */
            b->mappable = access(path, F_OK) == 0;
        }
        if (b->type & DEXT_BAR_TYPE_MEM64) {
            /* The upper half belongs to this BAR, whatever the kernel says. */
            i++;
        }
    }
}

IOReturn dext_host_create(const char *options, DextDevice **out)
{
    uint8_t cfg[DEXT_CONFIG_SIZE_EXT];
    char path[PATH_MAX + 16];
    HostOptions o;
    DextDevice *dev;
    HostState *s;
    struct stat st;
    IOReturn ret;
    ssize_t n;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    *out = NULL;
    ret = host_parse_options(options, &o);
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
    /* A domain other than 0000 fails to parse, on purpose (see above). */
    if (!dext_parse_bdf(o.bdf, &dev->bus, &dev->dev, &dev->fn)) {
        free(dev);
        free(s);
        return kIOReturnBadArgument;
    }
    s->cfg_fd = -1;
    s->cfg_wfd = -1;
    for (int i = 0; i < DEXT_NUM_BARS; i++) {
        s->bars[i].fd = -1;
    }
    pthread_mutex_init(&s->lock, NULL);
    dev->ops = &host_ops;
    dev->priv = s;
    snprintf(dev->name, sizeof(dev->name), "0000:%02x:%02x.%x", dev->bus,
             dev->dev, dev->fn);
    if (snprintf(s->dir, sizeof(s->dir), "%s/%s", o.sysfs, dev->name) >=
        (int)sizeof(s->dir)) {
        ret = kIOReturnBadArgument;
        goto fail;
    }

    snprintf(path, sizeof(path), "%s/config", s->dir);
    s->cfg_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->cfg_fd < 0) {
        ret = errno == ENOENT ? kIOReturnNotFound : dext_errno_ioreturn(errno);
        goto fail;
    }
    if (fstat(s->cfg_fd, &st) < 0) {
        ret = dext_errno_ioreturn(errno);
        goto fail;
    }
    dev->config_size = st.st_size > DEXT_CONFIG_SIZE ? DEXT_CONFIG_SIZE_EXT
                                                     : DEXT_CONFIG_SIZE;
    /*
     * The kernel gives an unprivileged reader only the header; what one
     * read of the whole space returns is what every later read may use.
     */
    memset(cfg, 0, sizeof(cfg));
    n = pread_full(s->cfg_fd, cfg, dev->config_size, 0);
    if (n < HOST_MIN_CONFIG) {
        ret = n < 0 ? dext_errno_ioreturn(errno) : kIOReturnNotReadable;
        goto fail;
    }
    s->readable = (uint32_t)n;

    dev->vendor_id = (uint16_t)le_get(cfg + 0x00, 2);
    dev->device_id = (uint16_t)le_get(cfg + 0x02, 2);
    dev->revision = cfg[0x08];
    dev->class_code = le_get(cfg + 0x09, 3);
    if (dev->vendor_id == 0xffff) {
        /* All ones: the function is gone or powered off. */
        ret = kIOReturnNoDevice;
        goto fail;
    }
    host_describe_bars(dev, s, cfg);
    dev->dma_mask = host_dma_mask(s->dir);
    dev->hardware = true;
    dev->allow_writes = o.writable;
    /* Reaching memory or delivering MSIs needs VFIO, not sysfs. */
    dev->no_dma = true;
    dev->no_irq = true;
    *out = dev;
    return kIOReturnSuccess;

fail:
    host_destroy(dev);
    free(dev);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Many devices from one spec                                           */

typedef struct HostAddr {
    uint8_t bus, dev, fn;
} HostAddr;

static int host_addr_cmp(const void *a, const void *b)
{
    const HostAddr *x = a, *y = b;
    unsigned kx = (unsigned)x->bus << 8 | (unsigned)x->dev << 3 | x->fn;
    unsigned ky = (unsigned)y->bus << 8 | (unsigned)y->dev << 3 | y->fn;

    return kx < ky ? -1 : kx > ky;
}

/* The domain-0000 functions under @root, sorted; NULL/0 if none. */
static IOReturn host_enumerate(const char *root, HostAddr **out,
                               size_t *count)
{
    HostAddr *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d;

    *out = NULL;
    *count = 0;
    d = opendir(root);
    if (d == NULL) {
        return errno == ENOENT ? kIOReturnNotFound : dext_errno_ioreturn(errno);
    }
    while ((de = readdir(d)) != NULL) {
        unsigned dom, bus, dv, fn;
        char tail;

        if (strlen(de->d_name) != 12 ||
            sscanf(de->d_name, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dv, &fn,
                   &tail) != 4 || dom != 0 || dv > 0x1f || fn > 7) {
            continue;
        }
        if (n == cap) {
            HostAddr *nv = realloc(v, (cap ? cap * 2 : 32) * sizeof(*v));

            if (nv == NULL) {
                free(v);
                closedir(d);
                return kIOReturnNoMemory;
            }
            v = nv;
            cap = cap ? cap * 2 : 32;
        }
        v[n].bus = (uint8_t)bus;
        v[n].dev = (uint8_t)dv;
        v[n].fn = (uint8_t)fn;
        n++;
    }
    closedir(d);
    if (n > 1) {
        qsort(v, n, sizeof(*v), host_addr_cmp);
    }
    *out = v;
    *count = n;
    return kIOReturnSuccess;
}

/* @options without its "bdf=..." items, for re-use per function. */
static char *host_options_without_bdf(const char *options)
{
    char *copy = strdup(options ? options : "");
    char *rest, *item, *save = NULL;
    size_t len = 0;

    if (copy == NULL) {
        return NULL;
    }
    rest = calloc(1, strlen(copy) + 1);
    if (rest == NULL) {
        free(copy);
        return NULL;
    }
    for (item = strtok_r(copy, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        if (strncmp(item, "bdf=", 4) == 0) {
            continue;
        }
        len += (size_t)sprintf(rest + len, "%s%s", len ? "," : "", item);
    }
    free(copy);
    return rest;
}

IOReturn dext_host_create_each(const char *options, DextDeviceSink *sink,
                               void *opaque)
{
    HostOptions o;
    HostAddr *addrs;
    size_t count, i;
    char *rest;
    IOReturn ret;

    ret = host_parse_options(options, &o);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (o.bdf[0] != '\0' && strcmp(o.bdf, "all") != 0) {
        DextDevice *dev;

        ret = dext_host_create(options, &dev);
        return ret == kIOReturnSuccess ? sink(opaque, dev) : ret;
    }
    /* Writes must name their device: never for "every function". */
    if (o.writable) {
        return kIOReturnBadArgument;
    }
    ret = host_enumerate(o.sysfs, &addrs, &count);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    rest = host_options_without_bdf(options);
    if (rest == NULL) {
        free(addrs);
        return kIOReturnNoMemory;
    }
    for (i = 0; i < count && ret == kIOReturnSuccess; i++) {
        char opts[PATH_MAX + 64];
        DextDevice *dev;

        snprintf(opts, sizeof(opts), "bdf=%02x:%02x.%x%s%s", addrs[i].bus,
                 addrs[i].dev, addrs[i].fn, rest[0] ? "," : "", rest);
        ret = dext_host_create(opts, &dev);
        if (ret == kIOReturnNoDevice) {
            /* Gone or powered off since the listing: nothing to serve. */
            ret = kIOReturnSuccess;
            continue;
        }
        if (ret == kIOReturnSuccess) {
            ret = sink(opaque, dev);
        }
    }
    free(rest);
    free(addrs);
    return ret;
}
