/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl dma-test: a verified DMA round trip through a device's DMA
 * engine: edu's (4 KiB chunks through its buffer) or ivshmem's (chunks
 * as large as its shared-memory BAR2, libdext's extension, see
 * docs/ivshmem.md).
 *
 * Memory is made reachable by the device either by registering this
 * process's memory (RegisterDMARegion, the path QEMU takes) or through
 * the dext's own DMA buffer (AllocateDMABuffer).  Each chunk is filled
 * with a pattern, copied by the device from source memory into its own
 * memory and from there into destination memory, and compared byte for
 * byte.  Long runs show progress with an ETA, and a warning once the
 * measured rate says the run will take minutes.
 */

#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dextctl.h"
#include "libdext/edu.h"
#include "libdext/ivshmem.h"

#define DMA_DEFAULT_SIZE    (64 * 1024)
#define DMA_MAX_WINDOW      (16u << 20)     /* memory reused beyond this */
#define DMA_TIMEOUT_S       5.0
#define DMA_SRC_IOVA        0x10000000ull    /* region keys, any unique */
#define DMA_DST_IOVA        0x20000000ull
#define DMA_IVSHMEM_CHUNK   (1u << 20)      /* at most, within BAR2 */
#define DMA_WARN_S          60.0            /* a run this long is warned of */

typedef struct DmaTest {
    io_connect_t c;
    uint8_t mem_idx;
    uint8_t *src;
    uint8_t *dst;
    uint64_t src_bus;
    uint64_t dst_bus;
    uint64_t window;            /* bytes of each of src and dst */
    bool buffer_mode;
    void *alloc;                /* region mode: our allocation */
    size_t alloc_len;
    int alloc_fd;               /* its memfd, kept open; -1 if none */
    mach_vm_address_t buf_addr; /* buffer mode: the mapping */
    bool src_registered, dst_registered;
    bool ivshmem;               /* else edu */
    uint64_t chunk_max;         /* bytes one device copy moves */
} DmaTest;

/*
 * Shared memory (a memfd, kept open while registered): a device behind a
 * real IOMMU served by dextd reaches only memory dextd can map, which
 * the library finds through the open fd.  Elsewhere, anonymous memory.
 */
static bool dma_alloc_shared(DmaTest *t, size_t len)
{
    void *p;

    t->alloc_len = len;
#ifdef __linux__
    t->alloc_fd = memfd_create("dextctl-dma-test", MFD_CLOEXEC);
    if (t->alloc_fd < 0 || ftruncate(t->alloc_fd, (off_t)len) != 0) {
        return false;
    }
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, t->alloc_fd, 0);
#else
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1,
             0);
#endif
    if (p == MAP_FAILED) {
        return false;
    }
    t->alloc = p;
    return true;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes that differ with position and pass: a misplaced copy shows. */
static void fill_pattern(uint8_t *p, size_t len, uint64_t pos)
{
    uint64_t x = 0x9e3779b97f4a7c15ull ^ (pos * 0x2545f4914f6cdd1dull);

    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        p[i] = (uint8_t)(x >> (8 * (i % 8)));
    }
}

static kern_return_t edu_write(DmaTest *t, uint64_t reg, uint64_t v)
{
    return apple_dext_mmio_write(t->c, t->mem_idx, reg, 8, v);
}

/* Start one transfer and wait for the device to finish it. */
static int edu_transfer(Ctl *ctl, DmaTest *t, uint64_t src, uint64_t dst,
                        uint64_t len, bool to_ram)
{
    double deadline;
    unsigned spins = 0;
    kern_return_t kr;
    uint64_t cmd = 0;

    kr = edu_write(t, EDU_REG_DMA_SRC, src);
    if (kr == kIOReturnSuccess) {
        kr = edu_write(t, EDU_REG_DMA_DST, dst);
    }
    if (kr == kIOReturnSuccess) {
        kr = edu_write(t, EDU_REG_DMA_COUNT, len);
    }
    if (kr == kIOReturnSuccess) {
        kr = edu_write(t, EDU_REG_DMA_CMD,
                       EDU_DMA_RUN | (to_ram ? EDU_DMA_TO_RAM : 0));
    }
    if (kr != kIOReturnSuccess) {
        return ctl_fail(ctl, kr, CTL_WHAT_MMIO, "programming the DMA engine");
    }
    deadline = now_s() + DMA_TIMEOUT_S;
    for (;;) {
        kr = apple_dext_mmio_read(t->c, t->mem_idx, EDU_REG_DMA_CMD, 8, &cmd);
        if (kr != kIOReturnSuccess) {
            return ctl_fail(ctl, kr, CTL_WHAT_MMIO, "polling the DMA engine");
        }
        if (!(cmd & EDU_DMA_RUN)) {
            return CTL_CONTINUE;
        }
        if (now_s() > deadline) {
            return ctl_fail(ctl, kIOReturnTimeout, CTL_WHAT_DMA,
                            "the device did not finish a %" PRIu64 "-byte "
                            "DMA within %.0f s", len, DMA_TIMEOUT_S);
        }
        /* The engine runs on its own thread: give it the CPU. */
        if (++spins > 64) {
            usleep(50);
        }
    }
}

/*
 * ivshmem: one copy between BAR2 offset 0 and @bus, done when the
 * DMA_CMD write returns; ERROR says the range or the IOMMU refused it.
 */
static int ivshmem_transfer(Ctl *ctl, DmaTest *t, uint64_t bus, uint64_t len,
                            bool to_bus)
{
    uint64_t cmd = 0;
    kern_return_t kr;

    kr = apple_dext_mmio_write(t->c, t->mem_idx, IVSHMEM_REG_DMA_SHM, 8, 0);
    if (kr == kIOReturnSuccess) {
        kr = apple_dext_mmio_write(t->c, t->mem_idx, IVSHMEM_REG_DMA_BUS, 8,
                                   bus);
    }
    if (kr == kIOReturnSuccess) {
        kr = apple_dext_mmio_write(t->c, t->mem_idx, IVSHMEM_REG_DMA_LEN, 8,
                                   len);
    }
    if (kr == kIOReturnSuccess) {
        kr = apple_dext_mmio_write(t->c, t->mem_idx, IVSHMEM_REG_DMA_CMD, 4,
                                   IVSHMEM_DMA_RUN |
                                   (to_bus ? IVSHMEM_DMA_TO_BUS : 0));
    }
    if (kr == kIOReturnSuccess) {
        kr = apple_dext_mmio_read(t->c, t->mem_idx, IVSHMEM_REG_DMA_CMD, 4,
                                  &cmd);
    }
    if (kr != kIOReturnSuccess) {
        return ctl_fail(ctl, kr, CTL_WHAT_MMIO, "driving ivshmem's DMA "
                        "engine");
    }
    if (cmd & IVSHMEM_DMA_ERROR) {
        fprintf(stderr, "dextctl: dma-test: ivshmem's DMA engine reports an "
                "error for %" PRIu64 " bytes %s bus address 0x%" PRIx64 "\n",
                len, to_bus ? "to" : "from", bus);
        fputs("dextctl: hint: an IOMMU fault or a range outside BAR2: look "
              "at dextd's log (--log-level debug)\n", stderr);
        return CTL_EXIT_FAIL;
    }
    return CTL_CONTINUE;
}

/* Device memory <- @src, then @dst <- device memory: one chunk's trip. */
static int device_round_trip(Ctl *ctl, DmaTest *t, uint64_t src,
                             uint64_t dst, uint64_t len)
{
    int rc;

    if (t->ivshmem) {
        rc = ivshmem_transfer(ctl, t, src, len, false);
        return rc == CTL_CONTINUE ? ivshmem_transfer(ctl, t, dst, len, true)
                                  : rc;
    }
    rc = edu_transfer(ctl, t, src, EDU_DMA_BUF_ADDR, len, false);
    return rc == CTL_CONTINUE ? edu_transfer(ctl, t, EDU_DMA_BUF_ADDR, dst, len,
                                             true)
                              : rc;
}

static int dma_setup(Ctl *ctl, DmaTest *t)
{
    const char *bdf = ctl_bdf_str(&ctl->bdf);
    uint64_t len = 0;
    kern_return_t kr;

    if (t->buffer_mode) {
        AppleDextDMABuffer b;
        mach_vm_size_t msize = 0;

        kr = apple_dext_allocate_dma_buffer(t->c, 2 * t->window, 0, &b);
        if (kr != kIOReturnSuccess) {
            return ctl_fail(ctl, kr, CTL_WHAT_DMA, "allocating a %" PRIu64
                            "-byte DMA buffer on %s", 2 * t->window, bdf);
        }
        kr = apple_dext_map_dma_buffer(t->c, &t->buf_addr, &msize);
        if (kr != kIOReturnSuccess) {
            return ctl_fail(ctl, kr, CTL_WHAT_DMA, "mapping the DMA buffer");
        }
        t->src = (uint8_t *)(uintptr_t)t->buf_addr;
        t->dst = t->src + t->window;
        t->src_bus = b.bus_addr;
        t->dst_bus = b.bus_addr + t->window;
        return CTL_CONTINUE;
    }
    if (!dma_alloc_shared(t, 2 * t->window)) {
        return ctl_fail(ctl, kIOReturnNoMemory, CTL_WHAT_DMA, "allocating "
                        "%" PRIu64 " bytes", 2 * t->window);
    }
    t->src = t->alloc;
    t->dst = t->src + t->window;
    memset(t->alloc, 0, 2 * t->window);
    kr = apple_dext_register_dma(t->c, DMA_SRC_IOVA, (uintptr_t)t->src,
                                 t->window, &t->src_bus, &len);
    if (kr != kIOReturnSuccess) {
        return ctl_fail(ctl, kr, CTL_WHAT_DMA, "registering source memory "
                        "with %s", bdf);
    }
    t->src_registered = true;
    kr = apple_dext_register_dma(t->c, DMA_DST_IOVA, (uintptr_t)t->dst,
                                 t->window, &t->dst_bus, &len);
    if (kr != kIOReturnSuccess) {
        return ctl_fail(ctl, kr, CTL_WHAT_DMA, "registering destination "
                        "memory with %s", bdf);
    }
    t->dst_registered = true;
    return CTL_CONTINUE;
}

static void dma_teardown(DmaTest *t)
{
    if (t->src_registered) {
        apple_dext_unregister_dma(t->c, DMA_SRC_IOVA);
    }
    if (t->dst_registered) {
        apple_dext_unregister_dma(t->c, DMA_DST_IOVA);
    }
    if (t->buf_addr != 0) {
        apple_dext_unmap_dma_buffer(t->c, t->buf_addr);
        apple_dext_free_dma_buffer(t->c);
    }
    if (t->alloc != NULL) {
        munmap(t->alloc, t->alloc_len);
    }
    if (t->alloc_fd >= 0) {
        close(t->alloc_fd);
    }
}

/* "1 h 02 min", "3 min 05 s", "42 s": how long, for people. */
static void fmt_duration(double secs, char *buf, size_t size)
{
    unsigned long s = secs < 0 ? 0 : (unsigned long)(secs + 0.5);

    if (s >= 3600) {
        snprintf(buf, size, "%lu h %02lu min", s / 3600, s / 60 % 60);
    } else if (s >= 60) {
        snprintf(buf, size, "%lu min %02lu s", s / 60, s % 60);
    } else {
        snprintf(buf, size, "%lu s", s);
    }
}

/*
 * Progress on stderr, at most once a second, only for runs longer than
 * one: done, rate and the time left.  The first time the measured rate
 * says the whole run takes DMA_WARN_S or more, a warning says so.
 */
static void progress(double start, double *last, bool *warned, uint64_t done,
                     uint64_t total, bool final)
{
    double t = now_s();
    double elapsed = t - start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    bool tty = isatty(STDERR_FILENO);
    char left[32];

    if (!final && (elapsed < 1.0 || t - *last < 1.0)) {
        return;
    }
    if (final && *last == 0) {
        return;                 /* nothing was shown: nothing to finish */
    }
    *last = t;
    if (!final && !*warned && rate > 0 &&
        (double)total / rate >= DMA_WARN_S) {
        fmt_duration((double)total / rate, left, sizeof(left));
        fprintf(stderr, "%sdextctl: dma-test: warning: %.1f MiB at %.1f "
                "MiB/s takes about %s; Ctrl-C stops it, a smaller --size "
                "is quicker\n", tty ? "\r" : "", (double)total / (1 << 20),
                rate / (1 << 20), left);
        *warned = true;
    }
    if (final) {
        fmt_duration(elapsed, left, sizeof(left));
    } else {
        fmt_duration(rate > 0 ? (double)(total - done) / rate : 0, left,
                     sizeof(left));
    }
    fprintf(stderr, "%sdextctl: dma-test: %.1f of %.1f MiB (%.0f%%), %.1f "
            "MiB/s, %s %s%s", tty ? "\r" : "", (double)done / (1 << 20),
            (double)total / (1 << 20),
            total ? 100.0 * (double)done / (double)total : 100.0,
            rate / (1 << 20), final ? "took" : "ETA", left,
            tty && !final ? "   " : "\n");
}

static int dma_run(Ctl *ctl, DmaTest *t, uint64_t total, uint64_t *chunks)
{
    double start = now_s(), last = 0;
    bool warned = false;
    uint64_t done = 0;
    int rc = CTL_CONTINUE;

    *chunks = 0;
    while (done < total && rc == CTL_CONTINUE) {
        uint64_t len = total - done < t->chunk_max ? total - done
                                                   : t->chunk_max;
        uint64_t pos = done % t->window;

        if (pos + len > t->window) {
            pos = 0;
        }
        fill_pattern(t->src + pos, len, done);
        /* Something that cannot pass for the pattern by accident. */
        for (uint64_t i = 0; i < len; i++) {
            t->dst[pos + i] = (uint8_t)~t->src[pos + i];
        }
        rc = device_round_trip(ctl, t, t->src_bus + pos, t->dst_bus + pos,
                               len);
        if (rc != CTL_CONTINUE) {
            break;
        }
        for (uint64_t i = 0; i < len; i++) {
            if (t->dst[pos + i] != t->src[pos + i]) {
                fprintf(stderr, "dextctl: dma-test: byte %" PRIu64 " differs: "
                        "sent 0x%02x, got back 0x%02x\n", done + i,
                        t->src[pos + i], t->dst[pos + i]);
                fputs("dextctl: hint: the device or the dext's IOMMU lost "
                      "data: look at dextd's log (--log-level debug)\n",
                      stderr);
                rc = CTL_EXIT_FAIL;
                break;
            }
        }
        done += len;
        (*chunks)++;
        progress(start, &last, &warned, done, total, false);
    }
    progress(start, &last, &warned, done, total, true);
    return rc;
}

int cmd_dma_test(Ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "size", required_argument, NULL, 's' },
        { "dma-buffer", no_argument, NULL, 'b' },
        CTL_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    AppleDextDeviceInfo id;
    DmaTest t = { .alloc_fd = -1 };
    uint64_t size = DMA_DEFAULT_SIZE, chunks = 0;
    double start, secs;
    kern_return_t kr;
    int opt, rc;

    ctl_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":s:" CTL_COMMON_SHORTOPTS, opts,
                              NULL)) != -1) {
        switch (opt) {
        case 's':
            if (!ctl_parse_size(optarg, &size) || size == 0 ||
                size > (1ull << 40)) {
                return ctl_usage(ctl, "'%s' is not a size (e.g. 4096, 64k, "
                                 "1M)", optarg);
            }
            break;
        case 'b':
            t.buffer_mode = true;
            break;
        default:
            rc = ctl_option(ctl, opt, optarg, argv);
            if (rc != CTL_CONTINUE) {
                return rc;
            }
            break;
        }
    }
    rc = ctl_only_device(ctl, argc, argv);
    if (rc != CTL_CONTINUE) {
        return rc;
    }

    /* DMA regions, the DMA buffer and MMIO all need a claim. */
    rc = ctl_connect(ctl, true, &t.c);
    if (rc != CTL_CONTINUE) {
        return rc;
    }
    kr = apple_dext_get_identity(t.c, &id);
    if (kr != kIOReturnSuccess) {
        rc = ctl_fail(ctl, kr, CTL_WHAT_READ, "identifying %s",
                      ctl_bdf_str(&ctl->bdf));
        goto out;
    }
    if (id.vendor_id == IVSHMEM_VENDOR_ID &&
        id.device_id == IVSHMEM_DEVICE_ID) {
        uint64_t shm_size = 0;
        uint8_t shm_idx;

        t.ivshmem = true;
        kr = apple_dext_get_bar_info(t.c, IVSHMEM_SHM_BAR, &shm_idx,
                                     &shm_size, NULL);
        if (kr != kIOReturnSuccess || shm_size == 0) {
            rc = ctl_fail(ctl, kr != kIOReturnSuccess ? kr
                                                      : kIOReturnNoResources,
                          CTL_WHAT_MMIO, "BAR2 (shared memory) of %s",
                          ctl_bdf_str(&ctl->bdf));
            goto out;
        }
        t.chunk_max = shm_size < DMA_IVSHMEM_CHUNK ? shm_size
                                                   : DMA_IVSHMEM_CHUNK;
    } else if (id.vendor_id == EDU_VENDOR_ID &&
               id.device_id == EDU_DEVICE_ID) {
        t.chunk_max = EDU_DMA_BUF_SIZE;
    } else {
        fprintf(stderr, "dextctl: dma-test: %s is %04x:%04x; dma-test knows "
                "how to drive the edu (%04x:%04x) and ivshmem (%04x:%04x) "
                "devices only\n", ctl_bdf_str(&ctl->bdf), id.vendor_id,
                id.device_id, EDU_VENDOR_ID, EDU_DEVICE_ID,
                IVSHMEM_VENDOR_ID, IVSHMEM_DEVICE_ID);
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    kr = apple_dext_get_bar_info(t.c, 0, &t.mem_idx, NULL, NULL);
    if (kr != kIOReturnSuccess) {
        rc = ctl_fail(ctl, kr, CTL_WHAT_MMIO, "BAR0 of %s",
                      ctl_bdf_str(&ctl->bdf));
        goto out;
    }
    /* Whole chunks of the window, so a chunk never wraps inside it. */
    t.window = size < DMA_MAX_WINDOW ? size : DMA_MAX_WINDOW;
    t.window = (t.window + t.chunk_max - 1) / t.chunk_max * t.chunk_max;
    rc = dma_setup(ctl, &t);
    if (rc != CTL_CONTINUE) {
        goto out;
    }
    start = now_s();
    rc = dma_run(ctl, &t, size, &chunks);
    secs = now_s() - start;
    if (rc != CTL_CONTINUE) {
        goto out;
    }
    if (ctl->json) {
        JsonWriter *w = &ctl->jw;

        ctl_json_begin(ctl);
        json_kv_string(w, "bdf", ctl_bdf_str(&ctl->bdf));
        json_kv_string(w, "memory", t.buffer_mode ? "dma-buffer" : "region");
        json_kv_uint(w, "bytes", size);
        json_kv_uint(w, "chunks", chunks);
        json_kv_uint(w, "source_bus_address", t.src_bus);
        json_kv_uint(w, "destination_bus_address", t.dst_bus);
        json_kv_bool(w, "verified", true);
        json_key(w, "seconds");
        json_double(w, secs, 6);
        ctl_json_end(ctl);
    } else {
        printf("%s: DMA round trip of %" PRIu64 " bytes in %" PRIu64
               " chunk(s) of at most %" PRIu64 " bytes%s\n",
               ctl_bdf_str(&ctl->bdf), size, chunks, t.chunk_max,
               t.ivshmem ? " (ivshmem's DMA engine, through BAR2)" : "");
        printf("  memory        %s\n", t.buffer_mode ?
               "the dext's DMA buffer (AllocateDMABuffer)" :
               "this process's, registered (RegisterDMARegion)");
        printf("  bus addresses source 0x%" PRIx64 ", destination 0x%" PRIx64
               "\n", t.src_bus, t.dst_bus);
        printf("  verified      %" PRIu64 " bytes, all equal\n", size);
        printf("  time          %.3f s (%.1f MiB/s)\n", secs,
               secs > 0 ? (double)size / secs / (1 << 20) : 0.0);
    }
    rc = CTL_EXIT_OK;
out:
    dma_teardown(&t);
    apple_dext_disconnect(t.c);
    return rc;
}
