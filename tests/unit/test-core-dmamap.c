/*
 * SPDX-License-Identifier: MIT
 *
 * The core against a device that reaches memory itself, through an IOMMU
 * of its own (DextDeviceOps.dma_map: VFIO), with a fake backend that
 * records every hook:
 *
 *  - in-process regions map the client's own pages, page aligned, at
 *    the bus address the client was given less its page offset;
 *  - another process's region maps the shared file it sent beside the
 *    call: no fd, a pipe, a file too short, an offset in another page
 *    position, a read-only fd, a file outside tmpfs and hugetlbfs (on
 *    disk; on an overlayfs, the way around a FUSE blocklist) are
 *    refused; a proper memfd is mapped and the host pointer dma_map
 *    gets really is the file, as for a hugetlbfs file with regions
 *    inside a huge page and across two (where huge pages are reserved);
 *  - mapped files are capped, each one a VMA of dextd's: 8,192 for one
 *    process, 32,768 for all together (a process with none of its own
 *    is refused once others hold them all);
 *  - unregistering unmaps exactly what was mapped, before the bus range
 *    can be handed out again;
 *  - a failing dma_map leaves nothing behind;
 *  - the DMA buffer: allocate, replace, free, each map with its unmap;
 *  - closing a session unmaps everything it held;
 *  - dma_map runs with no core lock held: other calls go on while it
 *    blocks, and unregistering the region being mapped answers Busy;
 *  - the device hooks open/close (first claim, last release),
 *    terminate, reset_bus (the fallback from reset_function) and
 *    irq_enable/irq_disable (instead of programming config space).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdext/pci-regs.h"
#include "harness.h"
#include "core/core-internal.h"
#include "protocol/dext-wire.h"
#include "core-clients.h"

#define FAKE_MSI_CAP  0x40
#define MAX_MAPS      64

typedef struct Mapping {
    uint64_t iova;
    void *host;
    uint64_t len;
    bool unmapped;
} Mapping;

typedef struct Fake Fake;

typedef struct Fake {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint8_t cfg[DEXT_CONFIG_SIZE];
    Mapping maps[MAX_MAPS];     /* every successful dma_map, in order */
    unsigned nmaps;
    unsigned unmaps;            /* dma_unmap calls */
    unsigned bad_unmaps;        /* ...that matched no live mapping */
    unsigned bad_args;          /* dma_map arguments not page multiples */
    unsigned map_locks;         /* core locks held in dma_map/dma_unmap */
    IOReturn fail;              /* dma_map answers this, if not Success */
    bool block;                 /* the next dma_map waits for !block */
    bool blocked;               /* a dma_map waited (or waits) */
    bool fail_command;          /* writes of the command register fail */
    /* Called from dma_unmap before it records, no fake lock held. */
    void (*in_unmap)(Fake *f, uint64_t iova, uint64_t len);
    void *opaque;
    unsigned opens, closes, terminates, resets_fn, resets_bus;
    unsigned irq_enables, irq_disables;
    unsigned hook_locks;        /* core locks at the last lifecycle hook */
} Fake;

static uint64_t page_size(void)
{
    return (uint64_t)sysconf(_SC_PAGESIZE);
}

static bool page_multiple(uint64_t v)
{
    return (v & (page_size() - 1)) == 0;
}

static IOReturn fake_config_read(DextDevice *dev, uint32_t off, uint32_t width,
                                 uint32_t *val)
{
    Fake *f = dev->priv;

    pthread_mutex_lock(&f->lock);
    *val = cfg_get(f->cfg, off, width);
    pthread_mutex_unlock(&f->lock);
    return kIOReturnSuccess;
}

static IOReturn fake_config_write(DextDevice *dev, uint32_t off,
                                  uint32_t width, uint32_t val)
{
    Fake *f = dev->priv;

    pthread_mutex_lock(&f->lock);
    if (f->fail_command && off == DEXT_PCI_COMMAND) {
        pthread_mutex_unlock(&f->lock);
        return kIOReturnNotResponding;
    }
    cfg_set(f->cfg, off, width, val);
    pthread_mutex_unlock(&f->lock);
    return kIOReturnSuccess;
}

static IOReturn fake_dma_map(DextDevice *dev, uint64_t iova, void *host,
                             uint64_t len)
{
    Fake *f = dev->priv;
    IOReturn ret;

    pthread_mutex_lock(&f->lock);
    f->map_locks += dext_core_locks_held;
    if (!page_multiple(iova) || !page_multiple((uintptr_t)host) ||
        !page_multiple(len) || len == 0) {
        f->bad_args++;
    }
    if (f->block && !f->blocked) {
        /* The first to come waits; later calls pass. */
        f->blocked = true;
        pthread_cond_broadcast(&f->cond);
        while (f->block) {
            pthread_cond_wait(&f->cond, &f->lock);
        }
    }
    ret = f->fail;
    if (ret == kIOReturnSuccess && f->nmaps < MAX_MAPS) {
        f->maps[f->nmaps++] = (Mapping){ iova, host, len, false };
    }
    pthread_mutex_unlock(&f->lock);
    return ret;
}

static void fake_dma_unmap(DextDevice *dev, uint64_t iova, uint64_t len)
{
    Fake *f = dev->priv;
    unsigned i;

    if (f->in_unmap) {
        f->in_unmap(f, iova, len);
    }
    pthread_mutex_lock(&f->lock);
    f->map_locks += dext_core_locks_held;
    f->unmaps++;
    for (i = 0; i < f->nmaps; i++) {
        if (!f->maps[i].unmapped && f->maps[i].iova == iova &&
            f->maps[i].len == len) {
            f->maps[i].unmapped = true;
            break;
        }
    }
    if (i == f->nmaps) {
        f->bad_unmaps++;
    }
    pthread_mutex_unlock(&f->lock);
}

/* A lifecycle hook: counted, with the core locks its caller held. */
static void lifecycle(DextDevice *dev, unsigned *count)
{
    Fake *f = dev->priv;

    pthread_mutex_lock(&f->lock);
    (*count)++;
    f->hook_locks = dext_core_locks_held;
    pthread_mutex_unlock(&f->lock);
}

static IOReturn fake_open(DextDevice *dev)
{
    lifecycle(dev, &((Fake *)dev->priv)->opens);
    return kIOReturnSuccess;
}

static void fake_close(DextDevice *dev)
{
    lifecycle(dev, &((Fake *)dev->priv)->closes);
}

static void fake_terminate(DextDevice *dev)
{
    lifecycle(dev, &((Fake *)dev->priv)->terminates);
}

/* No function-level reset: the core must fall back to a hot reset. */
static IOReturn fake_reset_function(DextDevice *dev)
{
    lifecycle(dev, &((Fake *)dev->priv)->resets_fn);
    return kIOReturnUnsupported;
}

static IOReturn fake_reset_bus(DextDevice *dev)
{
    lifecycle(dev, &((Fake *)dev->priv)->resets_bus);
    return kIOReturnSuccess;
}

static IOReturn fake_irq_enable(DextDevice *dev, uint32_t *nvec)
{
    lifecycle(dev, &((Fake *)dev->priv)->irq_enables);
    *nvec = 1;
    return kIOReturnSuccess;
}

static void fake_irq_disable(DextDevice *dev)
{
    lifecycle(dev, &((Fake *)dev->priv)->irq_disables);
}

static void fake_destroy(DextDevice *dev)
{
    Fake *f = dev->priv;

    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    free(f);
}

static const DextDeviceOps fake_ops = {
    .name = "fake-dmamap",
    .config_read = fake_config_read,
    .config_write = fake_config_write,
    .reset_function = fake_reset_function,
    .reset_bus = fake_reset_bus,
    .open = fake_open,
    .close = fake_close,
    .terminate = fake_terminate,
    .irq_enable = fake_irq_enable,
    .irq_disable = fake_irq_disable,
    .dma_map = fake_dma_map,
    .dma_unmap = fake_dma_unmap,
    .destroy = fake_destroy,
};

static unsigned log_private;     /* "private memory" refusals logged */

static void count_log(void *opaque, int level, const char *msg)
{
    if (strstr(msg, "private memory") != NULL) {
        __atomic_add_fetch(&log_private, 1, __ATOMIC_RELAXED);
    }
}

/* A core serving one fake function at 00:06.0 with a one-vector MSI. */
static DextCore *fake_core(Fake **out, uint64_t *id)
{
    DextCore *core = dext_core_new(count_log, NULL);
    DextDevice *dev = calloc(1, sizeof(*dev));
    Fake *f = calloc(1, sizeof(*f));

    if (core == NULL || dev == NULL || f == NULL) {
        exit(1);
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    f->cfg[DEXT_PCI_STATUS] = DEXT_PCI_STATUS_CAP_LIST;
    f->cfg[DEXT_PCI_CAPABILITY_LIST] = FAKE_MSI_CAP;
    f->cfg[FAKE_MSI_CAP] = DEXT_PCI_CAP_ID_MSI;
    dev->ops = &fake_ops;
    dev->priv = f;
    strcpy(dev->name, "fake-dmamap");
    dev->dev = 6;
    dev->vendor_id = 0x1234;
    dev->device_id = 0x5678;
    dev->class_code = 0xff0000;
    dev->config_size = DEXT_CONFIG_SIZE;
    dev->dma_mask = 0xffffffffull;
    if (!CHECK_KR(dext_core_add_device(core, dev, id), kIOReturnSuccess)) {
        exit(1);
    }
    *out = f;
    return core;
}

/* RegisterDMARegion, with @fd beside it and its offset as a 4th scalar. */
static IOReturn reg_fd(DextSession *s, uint64_t iova, uint64_t va,
                       uint64_t size, int fd, uint64_t fd_offset,
                       uint32_t nin, uint64_t out[3])
{
    uint64_t in[4] = { iova, va, size, fd_offset };
    uint32_t cnt = 3;
    DextCallArgs a = {
        .scalar_in = in, .scalar_in_cnt = nin,
        .scalar_out = out, .scalar_out_cnt = &cnt,
        .in_fd = fd >= 0 ? &fd : NULL,
    };

    return dext_session_call(s, kDextSelectorRegisterDMARegion, &a);
}

static IOReturn reg(DextSession *s, uint64_t iova, uint64_t va, uint64_t size,
                    uint64_t out[3])
{
    return reg_fd(s, iova, va, size, -1, 0, 3, out);
}

static IOReturn unreg(DextSession *s, uint64_t iova)
{
    return call(s, kDextSelectorUnregisterDMARegion, &iova, 1, NULL, 0);
}

static unsigned live_maps(Fake *f)
{
    unsigned i, n = 0;

    pthread_mutex_lock(&f->lock);
    for (i = 0; i < f->nmaps; i++) {
        n += !f->maps[i].unmapped;
    }
    pthread_mutex_unlock(&f->lock);
    return n;
}

static Mapping last_map(Fake *f)
{
    Mapping m = { 0 };

    pthread_mutex_lock(&f->lock);
    if (f->nmaps > 0) {
        m = f->maps[f->nmaps - 1];
    }
    pthread_mutex_unlock(&f->lock);
    return m;
}

/* Every map undone exactly once, every hook without a core lock. */
static void check_all_unmapped(Fake *f)
{
    CHECK_EQ(live_maps(f), 0);
    CHECK_EQ(f->unmaps, f->nmaps);
    CHECK_EQ(f->bad_unmaps, 0);
    CHECK_EQ(f->bad_args, 0);
    CHECK_EQ(f->map_locks, 0);
}

static uint64_t free_bus_bytes(CoreDevice *cd)
{
    uint64_t n;

    core_rwlock_rdlock(&cd->dma_lock);
    n = dext_iova_free_bytes(&cd->iova);
    core_rwlock_unlock(&cd->dma_lock);
    return n;
}

/* How many of this process's mappings are of memfd @name. */
static unsigned mappings_of(const char *name)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned n = 0;

    if (fp == NULL) {
        return ~0u;
    }
    while (fgets(line, sizeof(line), fp)) {
        n += strstr(line, name) != NULL;
    }
    fclose(fp);
    return n;
}

/* ------------------------------------------------------------------ */
/* In process                                                           */

static uint8_t own[4 * 16384] __attribute__((aligned(16384)));

typedef struct ReuseProbe {
    DextSession *other;
    uint64_t bus, len;          /* what the nested registration got */
    IOReturn ret;
} ReuseProbe;

/* From inside dma_unmap: the range being unmapped is not handed out. */
static void register_during_unmap(Fake *f, uint64_t iova, uint64_t len)
{
    ReuseProbe *p = f->opaque;
    uint64_t out[3] = { 0 };

    f->in_unmap = NULL;
    p->ret = reg(p->other, 0x900000, (uintptr_t)own + 2 * 16384, 16384, out);
    p->bus = out[1];
    p->len = out[2];
    CHECK_MSG(p->bus + p->len <= iova || p->bus >= iova + len,
              "bus 0x%llx handed out while 0x%llx+0x%llx is still mapped",
              (unsigned long long)p->bus, (unsigned long long)iova,
              (unsigned long long)len);
}

static void test_inproc(void)
{
    uint64_t id, out[3], bus;
    Fake *f;
    DextCore *core = fake_core(&f, &id);
    DextSession *s = open_claimed(core, id, getpid(), -1);
    DextSession *s2 = open_claimed(core, id, getpid(), -1);
    uint64_t va = (uintptr_t)own + 100, size = 10000, pg = page_size();
    ReuseProbe probe = { .other = s2 };
    Mapping m;

    harness_section("in process: the client's own pages are mapped");
    if (s == NULL || s2 == NULL) {
        exit(1);
    }
    CHECK_KR(reg(s, 0x10000, va, size, out), kIOReturnSuccess);
    bus = out[1];
    m = last_map(f);
    CHECK_EQ(f->nmaps, 1);
    CHECK_EQ(f->bad_args, 0);
    CHECK_EQ(f->map_locks, 0);
    CHECK_EQ((uintptr_t)m.host, va & ~(pg - 1));
    CHECK_MSG((uintptr_t)m.host + m.len >= va + size,
              "mapping of %llu bytes covers the region",
              (unsigned long long)m.len);
    CHECK(m.len < size + 2 * pg);
    /* The region's bus address is as far into the mapping as va is
     * into the host pages. */
    CHECK_EQ(bus - m.iova, va - (uintptr_t)m.host);
    CHECK_EQ(bus & (pg - 1), va & (pg - 1));

    harness_section("unregister: one unmap, then the bus range is free");
    f->opaque = &probe;
    f->in_unmap = register_during_unmap;
    CHECK_KR(unreg(s, 0x10000), kIOReturnSuccess);
    CHECK_KR(probe.ret, kIOReturnSuccess);
    CHECK_EQ(f->unmaps, 1);
    CHECK_EQ(live_maps(f), 1);          /* the nested registration's */
    CHECK_KR(unreg(s2, 0x900000), kIOReturnSuccess);
    CHECK_EQ(live_maps(f), 0);
    /* First fit: the same addresses are handed out again. */
    CHECK_KR(reg(s, 0x10000, va, size, out), kIOReturnSuccess);
    CHECK_EQ(out[1], bus);
    CHECK_KR(unreg(s, 0x10000), kIOReturnSuccess);
    check_all_unmapped(f);

    dext_session_close(s);
    dext_session_close(s2);
    dext_core_free(core);
}

/* ------------------------------------------------------------------ */
/* Another process: shared memory by fd                                 */

/* Written before the fork: the child holds its own copy. */
static uint8_t child_page[16384] __attribute__((aligned(16384)));

#define MEMFD_NAME "dmamap-test-file"

static int memfd_of(uint64_t size)
{
    int fd = memfd_create(MEMFD_NAME, MFD_CLOEXEC);

    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        exit(1);
    }
    return fd;
}

/* Whether @fd's file is on tmpfs or hugetlbfs, the kernel's own memory. */
static bool on_memory_fs(int fd)
{
    struct statfs sf;

    return fstatfs(fd, &sf) == 0 &&
           (sf.f_type == TMPFS_MAGIC || sf.f_type == HUGETLBFS_MAGIC);
}

/* An unnamed file of @size on a disk filesystem, or -1 if none is here. */
static int disk_file_of(uint64_t size)
{
    static const char *const dirs[] = { ".", "/var/tmp", "/tmp" };
    size_t i;

    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char path[32];
        int fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

        if (fd < 0) {
            /* O_TMPFILE is refused by overlayfs before Linux 6.6. */
            snprintf(path, sizeof(path), "%s/dmamap-XXXXXX", dirs[i]);
            fd = mkstemp(path);
            if (fd >= 0) {
                unlink(path);
            }
        }

        if (fd >= 0 && !on_memory_fs(fd) &&
            ftruncate(fd, (off_t)size) == 0) {
            return fd;
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    return -1;
}

/* In a fresh user namespace: map our own uid and gid, as a user would. */
static bool map_own_ids(void)
{
    static const struct {
        const char *file;
        bool gid;
    } maps[] = { { "/proc/self/setgroups", false },
                 { "/proc/self/uid_map", false },
                 { "/proc/self/gid_map", true } };
    unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();
    size_t i;

    for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        char line[64];
        int f = open(maps[i].file, O_WRONLY | O_CLOEXEC);
        int n = i == 0 ? snprintf(line, sizeof(line), "deny") :
                snprintf(line, sizeof(line), "0 %u 1",
                         maps[i].gid ? gid : uid);
        bool ok = f >= 0 && write(f, line, (size_t)n) == n;

        if (f >= 0) {
            close(f);
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

/*
 * A file of @size on an overlayfs whose layers are on tmpfs, the shape
 * of the way around a FUSE blocklist (overlayfs over FUSE says
 * overlayfs, and an unprivileged user may mount one in a user
 * namespace).  Mounted by a child in a mount namespace of its own (in a
 * user namespace of its own too when it may not mount as it is, as such
 * a user would) and passed back; the open file keeps the mount alive.
 * -1 when neither is allowed here, -2 when the mount worked and a later
 * step failed.
 */
static int overlay_file_of(uint64_t size)
{
    char dir[] = "/dev/shm/dmamap-ovl-XXXXXX";
    char sub[4][sizeof(dir) + 16], opts[4 * sizeof(sub[0]) + 64];
    static const char *const names[4] = { "lower", "upper", "work", "m" };
    int sv[2] = { -1, -1 }, fd = -2, i, status;
    pid_t pid;

    if (mkdtemp(dir) == NULL) {
        return -2;
    }
    for (i = 0; i < 4; i++) {
        snprintf(sub[i], sizeof(sub[i]), "%s/%s", dir, names[i]);
        mkdir(sub[i], 0700);
    }
    snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s",
             sub[0], sub[1], sub[2]);
    pid = socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0 ?
          fork() : -1;
    if (sv[1] >= 0 && pid != 0) {
        close(sv[1]);
    }
    if (pid == 0) {
        char path[sizeof(sub[3]) + 8];
        int f;

        snprintf(path, sizeof(path), "%s/file", sub[3]);
        if (unshare(CLONE_NEWNS) != 0 &&
            (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0 ||
             !map_own_ids())) {
            _exit(77);
        }
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("overlay", sub[3], "overlay", 0, opts) != 0) {
            _exit(77);
        }
        f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        _exit(f >= 0 && ftruncate(f, (off_t)size) == 0 &&
              dext_wire_sendmsg(sv[1], "f", 1, f) == 1 ? 0 : 1);
    }
    if (pid > 0) {
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 77) {
            fd = -1;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            bool trunc = false;
            int nfds = 0;
            char b;

            if (dext_wire_recvmsg(sv[0], &b, 1, 0, &fd, 1, &nfds,
                                  &trunc) != 1 || nfds != 1) {
                fd = -2;
            }
        }
    }
    if (sv[0] >= 0) {
        close(sv[0]);
    }
    /*
     * The upper layer's copy of the file lives on while @fd is open.
     * The mount made work/work (and may have made work/index).
     */
    for (i = 3; i >= 0; i--) {
        char path[sizeof(sub[0]) + 16];

        snprintf(path, sizeof(path), "%s/file", sub[i]);
        unlink(path);
        snprintf(path, sizeof(path), "%s/work", sub[i]);
        rmdir(path);
        snprintf(path, sizeof(path), "%s/index", sub[i]);
        rmdir(path);
        rmdir(sub[i]);
    }
    CHECK_MSG(rmdir(dir) == 0, "%s left behind: %s", dir, strerror(errno));
    return fd;
}

/*
 * A file on hugetlbfs (memfd_create(MFD_HUGETLB)), with a region inside
 * a huge page and one across the end of one into the next: hugetlbfs
 * maps only whole huge pages, while a VMM's DMA_MAP of guest RAM starts
 * wherever the guest's memory map puts it.  Both accepted, and the host
 * pages dma_map gets are the file's.  Not tried where no huge page is
 * reserved (vm.nr_hugepages).
 */
static void test_hugetlb(Fake *f, DextSession *s, uint64_t va)
{
    static const char name[] = "dmamap-huge";
    uint64_t out[3], offs[2], pg = page_size(), hp;
    uint8_t pattern[64];
    struct statfs sf;
    uint8_t *view;
    Mapping m;
    int fd, i;

    harness_section("another process: a file on hugetlbfs, at 4 KiB "
                    "offsets");
    fd = memfd_create(name, MFD_CLOEXEC | MFD_HUGETLB);
    if (fd < 0 || fstatfs(fd, &sf) != 0 || sf.f_type != HUGETLBFS_MAGIC) {
        printf("# no hugetlbfs here: not tried\n");
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    hp = (uint64_t)sf.f_bsize;
    view = ftruncate(fd, (off_t)(2 * hp)) == 0 ?
           mmap(NULL, 2 * hp, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) :
           MAP_FAILED;
    if (view == MAP_FAILED) {
        printf("# no huge page reserved (vm.nr_hugepages): not tried\n");
        close(fd);
        return;
    }
    offs[0] = hp + 3 * pg + (va & (pg - 1));
    offs[1] = hp - pg + (va & (pg - 1));
    for (i = 0; i < 2; i++) {
        if (!CHECK_KR(reg_fd(s, 0x10000, va, 2 * pg, fd, offs[i], 4, out),
                      kIOReturnSuccess)) {
            continue;
        }
        m = last_map(f);
        CHECK_EQ(m.len, 3 * pg);
        CHECK_EQ(out[1] - m.iova, va & (pg - 1));
        /* The region's second page: past the huge page's end for [1]. */
        harness_fill_random(pattern, sizeof(pattern));
        memcpy((uint8_t *)m.host + (va & (pg - 1)) + pg, pattern,
               sizeof(pattern));
        CHECK(memcmp(view + offs[i] + pg, pattern, sizeof(pattern)) == 0);
        CHECK_KR(unreg(s, 0x10000), kIOReturnSuccess);
    }
    check_all_unmapped(f);
    CHECK_EQ(mappings_of(name), 1);     /* our own view, no more */
    munmap(view, 2 * hp);
    close(fd);
}

static void test_other_process(void)
{
    uint64_t id, out[3], pg = page_size();
    uint64_t va = (uintptr_t)child_page + 64;
    Fake *f;
    DextCore *core = fake_core(&f, &id);
    DextCoreStats st;
    DextSession *s;
    int pipefd[2], fd, ro, bad, pidfd;
    char path[64];
    uint8_t got[64], pattern[64];
    Mapping m;
    pid_t pid;

    harness_section("another process: memory only by a shared file");
    memset(child_page, 0x11, sizeof(child_page));
    pid = spawn_idle(&pidfd);
    s = pid > 0 ? open_claimed(core, id, pid, pidfd) : NULL;
    if (s == NULL || pipe2(pipefd, O_CLOEXEC) != 0) {
        exit(1);
    }
    /* Private memory: refused, and the refusal logged. */
    CHECK_KR(reg(s, 0x10000, va, 4096, out), kIOReturnUnsupported);
    CHECK(__atomic_load_n(&log_private, __ATOMIC_RELAXED) > 0);
    /* Not a regular file. */
    CHECK_KR(reg_fd(s, 0x10000, va, 4096, pipefd[0], 64, 4, out),
             kIOReturnBadArgument);
    /* A file shorter than offset + size. */
    fd = memfd_of(4096);
    CHECK_KR(reg_fd(s, 0x10000, va, 8192, fd, 64, 4, out),
             kIOReturnBadArgument);
    close(fd);
    fd = memfd_of(4 * pg);
    /* An offset at another position in its page than va. */
    CHECK_KR(reg_fd(s, 0x10000, va, 4096, fd, 0, 4, out),
             kIOReturnBadArgument);
    CHECK_KR(reg_fd(s, 0x10000, va, 4096, fd, pg + 128, 4, out),
             kIOReturnBadArgument);
    /* An fd without its offset. */
    CHECK_KR(reg_fd(s, 0x10000, va, 4096, fd, pg + 64, 3, out),
             kIOReturnBadArgument);
    /* The same file opened read-only: the device could not write it. */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ro = open(path, O_RDONLY | O_CLOEXEC);
    if (CHECK(ro >= 0)) {
        CHECK_KR(reg_fd(s, 0x10000, va, 4096, ro, pg + 64, 4, out),
                 kIOReturnNotPermitted);
        close(ro);
    }
    /*
     * Files whose pages are not the kernel's own memory: one on a disk
     * filesystem, and one on an overlayfs (even over tmpfs: what is
     * under an overlayfs cannot be told from its fd).
     */
    bad = disk_file_of(4 * pg);
    if (bad >= 0) {
        CHECK_KR(reg_fd(s, 0x10000, va, 4096, bad, pg + 64, 4, out),
                 kIOReturnNotPermitted);
        close(bad);
    } else {
        printf("# no disk filesystem here: a disk file not tried\n");
    }
    bad = overlay_file_of(4 * pg);
    if (bad >= 0) {
        CHECK(!on_memory_fs(bad));
        CHECK_KR(reg_fd(s, 0x10000, va, 4096, bad, pg + 64, 4, out),
                 kIOReturnNotPermitted);
        close(bad);
    } else if (bad == -1) {
        printf("# no overlayfs may be mounted here (not even in a user "
               "namespace): an overlayfs file not tried\n");
    } else {
        CHECK_MSG(false, "an overlayfs file could not be made");
    }
    CHECK_EQ(f->nmaps, 0);
    CHECK_EQ(mappings_of(MEMFD_NAME), 0);
    dext_core_stats(core, &st);
    CHECK_EQ(st.dma_regions, 0);

    harness_section("another process: the file is what the device reaches");
    CHECK_KR(reg_fd(s, 0x10000, va, 4096, fd, pg + 64, 4, out),
             kIOReturnSuccess);
    m = last_map(f);
    CHECK_EQ(f->nmaps, 1);
    CHECK_EQ(f->bad_args, 0);
    CHECK_EQ(f->map_locks, 0);
    CHECK(m.len >= pg);
    CHECK_EQ(out[1] - m.iova, va & (pg - 1));
    CHECK_EQ(mappings_of(MEMFD_NAME), 1);
    /* The core keeps a mapping, not our fd. */
    CHECK(fcntl(fd, F_GETFD) >= 0);
    if (m.host != NULL) {
        harness_fill_random(pattern, sizeof(pattern));
        memcpy((uint8_t *)m.host + (va & (pg - 1)), pattern,
               sizeof(pattern));
        CHECK_EQ(pread(fd, got, sizeof(got), (off_t)(pg + 64)),
                 sizeof(got));
        CHECK(memcmp(got, pattern, sizeof(got)) == 0);
    }
    dext_core_stats(core, &st);
    CHECK_EQ(st.dma_regions, 1);
    CHECK_KR(unreg(s, 0x10000), kIOReturnSuccess);
    CHECK_EQ(f->unmaps, 1);
    CHECK_EQ(mappings_of(MEMFD_NAME), 0);
    check_all_unmapped(f);
    test_hugetlb(f, s, va);

    harness_section("another process: session close unmaps it all");
    CHECK_KR(reg_fd(s, 0x10000, va, 4096, fd, pg + 64, 4, out),
             kIOReturnSuccess);
    CHECK_KR(reg_fd(s, 0x20000, (uintptr_t)child_page, 8192, fd, 0, 4, out),
             kIOReturnSuccess);
    CHECK_KR(call(s, kDextSelectorAllocateDMABuffer, (uint64_t[]){ 8192, 0 },
                  2, (uint64_t[6]){ 0 }, 6), kIOReturnSuccess);
    CHECK_EQ(live_maps(f), 3);
    dext_session_close(s);
    check_all_unmapped(f);
    CHECK_EQ(mappings_of(MEMFD_NAME), 0);
    dext_core_stats(core, &st);
    CHECK_EQ(st.dma_regions + st.dma_buffers, 0);

    close(fd);
    close(pipefd[0]);
    close(pipefd[1]);
    reap(pid, pidfd);
    dext_core_free(core);
}

/*
 * A hostile client registering file after file: each is a mapping of
 * dextd's (a VMA), and vm.max_map_count is shared by every client, so
 * the core stops at DEXT_DMA_HOST_MAPS_MAX per process with NoResources,
 * and a freed one can be used again.
 */
static void test_host_map_limit(void)
{
    uint64_t id, out[3], pg = page_size();
    uint64_t va = (uintptr_t)child_page;
    Fake *f;
    DextCore *core = fake_core(&f, &id);
    DextSession *s;
    unsigned i, ok = 0;
    int fd, pidfd;
    pid_t pid;

    harness_section("another process: at most %u mapped files",
                    DEXT_DMA_HOST_MAPS_MAX);
    pid = spawn_idle(&pidfd);
    s = pid > 0 ? open_claimed(core, id, pid, pidfd) : NULL;
    if (s == NULL) {
        exit(1);
    }
    fd = memfd_of(pg);
    for (i = 0; i < DEXT_DMA_HOST_MAPS_MAX; i++) {
        ok += reg_fd(s, 0x100000 + (uint64_t)i * pg, va, 4096, fd, 0, 4,
                     out) == kIOReturnSuccess;
    }
    CHECK_EQ(ok, DEXT_DMA_HOST_MAPS_MAX);
    CHECK_KR(reg_fd(s, 0x10, va, 4096, fd, 0, 4, out), kIOReturnNoResources);
    CHECK_EQ(mappings_of(MEMFD_NAME), DEXT_DMA_HOST_MAPS_MAX);
    CHECK_KR(unreg(s, 0x100000), kIOReturnSuccess);
    CHECK_KR(reg_fd(s, 0x10, va, 4096, fd, 0, 4, out), kIOReturnSuccess);
    dext_session_close(s);
    CHECK_EQ(mappings_of(MEMFD_NAME), 0);
    close(fd);
    reap(pid, pidfd);
    dext_core_free(core);
}

/*
 * All clients together: vm.max_map_count is dextd's whole, so the core
 * maps at most DEXT_DMA_FILE_MAPS_MAX files for all processes at once.
 * Processes that each stay within their own cap fill it; then one with
 * no file of its own is refused (NoResources: a real IOMMU has no
 * fallback), and a file freed anywhere lets it in.
 */
static void test_core_map_limit(void)
{
    enum { PROCS = DEXT_DMA_FILE_MAPS_MAX / DEXT_DMA_HOST_MAPS_MAX };
    uint64_t id, out[3], pg = page_size();
    uint64_t va = (uintptr_t)child_page;
    DextSession *s[PROCS + 1];
    int pidfd[PROCS + 1], fd, p;
    pid_t pid[PROCS + 1];
    unsigned i, ok = 0;
    Fake *f;
    DextCore *core = fake_core(&f, &id);

    _Static_assert(DEXT_DMA_FILE_MAPS_MAX % DEXT_DMA_HOST_MAPS_MAX == 0,
                   "whole processes fill the core's cap");
    harness_section("all processes: at most %u mapped files",
                    DEXT_DMA_FILE_MAPS_MAX);
    for (p = 0; p <= PROCS; p++) {
        pid[p] = spawn_idle(&pidfd[p]);
        s[p] = pid[p] > 0 ? open_claimed(core, id, pid[p], pidfd[p]) : NULL;
        if (s[p] == NULL) {
            exit(1);
        }
    }
    fd = memfd_of(pg);
    for (p = 0; p < PROCS; p++) {
        for (i = 0; i < DEXT_DMA_HOST_MAPS_MAX; i++) {
            ok += reg_fd(s[p], 0x100000 + (uint64_t)i * pg, va, 4096, fd, 0,
                         4, out) == kIOReturnSuccess;
        }
    }
    CHECK_EQ(ok, DEXT_DMA_FILE_MAPS_MAX);
    CHECK_EQ(mappings_of(MEMFD_NAME), DEXT_DMA_FILE_MAPS_MAX);
    CHECK_KR(reg_fd(s[PROCS], 0x10, va, 4096, fd, 0, 4, out),
             kIOReturnNoResources);
    CHECK_EQ(mappings_of(MEMFD_NAME), DEXT_DMA_FILE_MAPS_MAX);
    CHECK_KR(unreg(s[0], 0x100000), kIOReturnSuccess);
    CHECK_KR(reg_fd(s[PROCS], 0x10, va, 4096, fd, 0, 4, out),
             kIOReturnSuccess);
    CHECK_KR(reg_fd(s[PROCS], 0x20, va, 4096, fd, 0, 4, out),
             kIOReturnNoResources);
    for (p = 0; p <= PROCS; p++) {
        dext_session_close(s[p]);
        reap(pid[p], pidfd[p]);
    }
    CHECK_EQ(mappings_of(MEMFD_NAME), 0);
    close(fd);
    dext_core_free(core);
}

/* ------------------------------------------------------------------ */
/* dma_map failing                                                      */

static void test_map_failure(void)
{
    uint64_t id, out[6], before, pg = page_size();
    Fake *f;
    DextCore *core = fake_core(&f, &id);
    DextSession *s = open_claimed(core, id, getpid(), -1);
    DextCoreStats st;
    CoreDevice *cd;

    harness_section("a failing dma_map is rolled back");
    if (s == NULL) {
        exit(1);
    }
    cd = s->cd;
    before = free_bus_bytes(cd);
    f->fail = kIOReturnNoResources;
    CHECK_KR(reg(s, 0x10000, (uintptr_t)own, 3 * pg, out),
             kIOReturnNoResources);
    CHECK_KR(call(s, kDextSelectorAllocateDMABuffer, (uint64_t[]){ 8192, 0 },
                  2, out, 6), kIOReturnNoResources);
    dext_core_stats(core, &st);
    CHECK_EQ(st.dma_regions, 0);
    CHECK_EQ(st.dma_region_bytes, 0);
    CHECK_EQ(st.dma_buffers, 0);
    CHECK_EQ(free_bus_bytes(cd), before);
    CHECK_EQ(dext_dma_session_regions(s), 0);
    CHECK_KR(unreg(s, 0x10000), kIOReturnNotFound);
    CHECK_EQ(f->unmaps, 0);
    CHECK_EQ(f->nmaps, 0);
    /* Nothing in the way afterwards. */
    f->fail = kIOReturnSuccess;
    CHECK_KR(reg(s, 0x10000, (uintptr_t)own, 3 * pg, out), kIOReturnSuccess);
    CHECK_EQ(live_maps(f), 1);
    dext_session_close(s);
    check_all_unmapped(f);
    CHECK_EQ(free_bus_bytes(cd), before);
    dext_core_free(core);
}

/* ------------------------------------------------------------------ */
/* The DMA buffer                                                       */

static void test_buffer(void)
{
    uint64_t id, out[6], bus1, pg = page_size();
    Fake *f;
    DextCore *core = fake_core(&f, &id);
    DextSession *s = open_claimed(core, id, getpid(), -1);
    DextMemory mem = { .fd = -1 };
    uint8_t *client;
    Mapping m;

    harness_section("the DMA buffer: allocate, replace, free");
    if (s == NULL) {
        exit(1);
    }
    CHECK_KR(call(s, kDextSelectorAllocateDMABuffer, (uint64_t[]){ 5000, 0 },
                  2, out, 6), kIOReturnSuccess);
    bus1 = out[3];
    m = last_map(f);
    CHECK_EQ(f->nmaps, 1);
    CHECK_EQ(m.iova, bus1);
    CHECK_EQ(m.len, (5000 + pg - 1) & ~(pg - 1));
    CHECK_EQ(f->bad_args, 0);
    CHECK_EQ(f->map_locks, 0);
    /* What the device reaches is what the client maps. */
    CHECK_KR(dext_session_map(s, kDextMemoryTypeDMABuffer, &mem),
             kIOReturnSuccess);
    client = mem.fd >= 0 ? mmap(NULL, 5000, PROT_READ, MAP_SHARED, mem.fd, 0)
                         : MAP_FAILED;
    if (CHECK(client != MAP_FAILED) && m.host != NULL) {
        memset(m.host, 0x5c, 5000);
        CHECK_EQ(client[0], 0x5c);
        CHECK_EQ(client[4999], 0x5c);
        munmap(client, 5000);
    }
    if (mem.fd >= 0) {
        close(mem.fd);
    }

    /* Replacing: the new one mapped, then the old one unmapped. */
    CHECK_KR(call(s, kDextSelectorAllocateDMABuffer,
                  (uint64_t[]){ 2 * pg, 0x10000 }, 2, out, 6),
             kIOReturnSuccess);
    CHECK_EQ(f->nmaps, 2);
    CHECK_EQ(f->unmaps, 1);
    CHECK(f->maps[0].unmapped);
    CHECK(!f->maps[1].unmapped);
    CHECK_EQ(f->maps[1].iova, out[3]);
    CHECK_EQ(f->maps[1].len, 2 * pg);
    CHECK_EQ(out[3] & 0xffff, 0);
    CHECK_KR(call(s, kDextSelectorFreeDMABuffer, NULL, 0, NULL, 0),
             kIOReturnSuccess);
    CHECK(f->maps[1].unmapped);
    check_all_unmapped(f);
    CHECK_KR(dext_session_map(s, kDextMemoryTypeDMABuffer, &mem),
             kIOReturnNotReady);

    /* One left for the session's close. */
    CHECK_KR(call(s, kDextSelectorAllocateDMABuffer, (uint64_t[]){ 4096, 0 },
                  2, out, 6), kIOReturnSuccess);
    CHECK_KR(reg(s, 0x10000, (uintptr_t)own + 16384, 16384, out),
             kIOReturnSuccess);
    CHECK_EQ(live_maps(f), 2);
    dext_session_close(s);
    check_all_unmapped(f);
    dext_core_free(core);
}

/* ------------------------------------------------------------------ */
/* dma_map blocking                                                     */

typedef struct Registrar {
    DextSession *s;
    IOReturn ret;
} Registrar;

static void *register_thread(void *opaque)
{
    Registrar *r = opaque;
    uint64_t out[3];

    r->ret = reg(r->s, 0x10000, (uintptr_t)own, 16384, out);
    return NULL;
}

static void test_blocking_map(void)
{
    uint64_t id, out[6], val;
    Fake *f;
    DextCore *core = fake_core(&f, &id);
    DextSession *s = open_claimed(core, id, getpid(), -1);
    DextSession *s2 = open_claimed(core, id, getpid(), -1);
    Registrar r = { .s = s };
    DextCoreStats st;
    pthread_t t;

    harness_section("dma_map runs with no core lock held");
    if (s == NULL || s2 == NULL) {
        exit(1);
    }
    f->block = true;
    if (pthread_create(&t, NULL, register_thread, &r) != 0) {
        exit(1);
    }
    pthread_mutex_lock(&f->lock);
    while (!f->blocked) {
        pthread_cond_wait(&f->cond, &f->lock);
    }
    pthread_mutex_unlock(&f->lock);
    CHECK_EQ(__atomic_load_n(&f->map_locks, __ATOMIC_RELAXED), 0);

    /* The region is not ready: it cannot go yet. */
    CHECK_KR(unreg(s, 0x10000), kIOReturnBusy);
    /* Every lock is free: the device's (claims, interrupts, config),
     * the DMA table's (another region, a buffer, statistics). */
    CHECK_KR(call(s2, kDextSelectorConfigRead, (uint64_t[]){ 0, 4 }, 2,
                  &val, 1), kIOReturnSuccess);
    CHECK_KR(call(s2, kDextSelectorSetupInterrupts, NULL, 0, out, 1),
             kIOReturnSuccess);
    CHECK_KR(reg(s2, 0x10000, (uintptr_t)own + 16384, 16384, out),
             kIOReturnSuccess);
    CHECK_KR(call(s2, kDextSelectorAllocateDMABuffer,
                  (uint64_t[]){ 4096, 0 }, 2, out, 6), kIOReturnSuccess);
    CHECK_KR(unreg(s2, 0x10000), kIOReturnSuccess);
    dext_core_stats(core, &st);
    CHECK_EQ(st.dma_regions, 1);        /* the one being mapped */

    pthread_mutex_lock(&f->lock);
    f->block = false;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    pthread_join(t, NULL);
    CHECK_KR(r.ret, kIOReturnSuccess);
    CHECK_KR(unreg(s, 0x10000), kIOReturnSuccess);
    dext_session_close(s);
    dext_session_close(s2);
    check_all_unmapped(f);
    dext_core_free(core);
}

/* ------------------------------------------------------------------ */
/* Device hooks                                                         */

static void test_lifecycle(void)
{
    uint64_t id, out[6];
    Fake *f;
    DextCore *core = fake_core(&f, &id);
    DextSession *s1, *s2, *s3;

    harness_section("open on the first claim, close after the last");
    s1 = open_claimed(core, id, getpid(), -1);
    CHECK_EQ(f->opens, 1);
    CHECK_EQ(f->hook_locks, 1);         /* CoreDevice.lock */
    s2 = open_claimed(core, id, getpid(), -1);
    if (s1 == NULL || s2 == NULL) {
        exit(1);
    }
    CHECK_EQ(f->opens, 1);

    harness_section("interrupts through irq_enable, not config space");
    CHECK_KR(call(s1, kDextSelectorSetupInterrupts, NULL, 0, out, 1),
             kIOReturnSuccess);
    CHECK_EQ(out[0], 1);
    CHECK_EQ(f->irq_enables, 1);
    CHECK_EQ(f->hook_locks, 1);
    CHECK_EQ(f->cfg[FAKE_MSI_CAP + DEXT_PCI_MSI_FLAGS] &
             DEXT_PCI_MSI_FLAGS_ENABLE, 0);

    harness_section("no function reset: a hot reset instead");
    CHECK_KR(call(s1, kDextSelectorResetDevice, NULL, 0, NULL, 0),
             kIOReturnSuccess);
    CHECK_EQ(f->resets_fn, 1);
    CHECK_EQ(f->resets_bus, 1);
    CHECK_EQ(f->hook_locks, 1);
    CHECK_KR(call(s1, kDextSelectorGetLastReset, NULL, 0, out, 1),
             kIOReturnSuccess);
    CHECK_EQ(out[0], APPLE_DEXT_RESET_HOT);
    /* Interrupts survive it: the backend keeps them. */
    CHECK_EQ(f->irq_disables, 0);
    CHECK_EQ(f->cfg[FAKE_MSI_CAP + DEXT_PCI_MSI_FLAGS] &
             DEXT_PCI_MSI_FLAGS_ENABLE, 0);

    dext_session_close(s2);
    CHECK_EQ(f->closes, 0);
    dext_session_close(s1);
    CHECK_EQ(f->irq_disables, 1);
    CHECK_EQ(f->closes, 1);
    CHECK_EQ(f->hook_locks, 1);

    harness_section("a claim that fails after open closes again");
    f->fail_command = true;
    s1 = NULL;
    CHECK_KR(dext_core_open(core, id, 0, getpid(), -1, &s1),
             kIOReturnSuccess);
    if (s1 != NULL) {
        CHECK_KR(call(s1, kDextSelectorClaim, NULL, 0, NULL, 0),
                 kIOReturnNotResponding);
        CHECK_EQ(f->opens, 2);
        CHECK_EQ(f->closes, 2);
        dext_session_close(s1);
        CHECK_EQ(f->closes, 2);
    }
    f->fail_command = false;

    harness_section("terminate: the hook once; teardown still unmaps");
    s3 = open_claimed(core, id, getpid(), -1);
    if (s3 == NULL) {
        exit(1);
    }
    CHECK_KR(reg(s3, 0x10000, (uintptr_t)own, 16384, out), kIOReturnSuccess);
    CHECK_KR(call(s3, kDextSelectorSetupInterrupts, NULL, 0, out, 1),
             kIOReturnSuccess);
    CHECK_KR(call(s3, kDextSelectorTerminate, NULL, 0, NULL, 0),
             kIOReturnSuccess);
    CHECK_EQ(f->terminates, 1);
    CHECK_EQ(f->hook_locks, 1);
    CHECK_KR(call(s3, kDextSelectorTerminate, NULL, 0, NULL, 0),
             kIOReturnNoDevice);
    CHECK_EQ(f->terminates, 1);
    dext_session_close(s3);
    check_all_unmapped(f);
    CHECK_EQ(f->irq_disables, 2);
    CHECK_EQ(f->closes, 2);             /* a terminated device: no close */
    dext_core_free(core);
}

int main(void)
{
    test_inproc();
    if (have_pidfds()) {
        test_other_process();
        test_host_map_limit();
        test_core_map_limit();
    }
    test_map_failure();
    test_buffer();
    test_blocking_map();
    test_lifecycle();
    return harness_finish();
}
