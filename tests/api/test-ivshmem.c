/*
 * SPDX-License-Identifier: MIT
 *
 * The emulated ivshmem device through the public API: identity and BARs,
 * mapping the shared-memory BAR (claimer and non-claimer, per the
 * contract's BAR descriptor cache), the BAR handed over as an fd
 * (apple_dext_map_bar_fd()), client and device seeing the same
 * memory, the DMA engine, 256 MSI-X vectors through SetupInterrupts, the
 * doorbell, and MSI-X masking (per vector and function-wide, with the
 * PBA holding the message until unmasked).
 */

#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "ivshmem.h"

#define DMA_LEN 65536u

static io_connect_t connect_ivshmem(void)
{
    return harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
}

static uint64_t rd(io_connect_t c, uint8_t mem, uint64_t off, uint64_t w)
{
    uint64_t v = ~0ull;

    CHECK_KR(apple_dext_mmio_read(c, mem, off, w, &v), kIOReturnSuccess);
    return v;
}

static void wr(io_connect_t c, uint8_t mem, uint64_t off, uint64_t w,
               uint64_t v)
{
    CHECK_KR(apple_dext_mmio_write(c, mem, off, w, v), kIOReturnSuccess);
}

static void drain(io_connect_t c, uint64_t p[4])
{
    memset(p, 0xff, 4 * sizeof(uint64_t));
    CHECK_KR(apple_dext_drain_pending_irqs(c, p), kIOReturnSuccess);
}

static void test_identity(io_connect_t c)
{
    AppleDextDeviceInfo info;
    uint64_t size = 0;
    uint8_t idx = 0xff, type = 0xff;

    harness_section("identity and BARs");
    CHECK_KR(apple_dext_get_identity(c, &info), kIOReturnSuccess);
    CHECK_EQ(info.vendor_id, IVSHMEM_VENDOR_ID);
    CHECK_EQ(info.device_id, IVSHMEM_DEVICE_ID);
    CHECK_EQ(info.class_code, IVSHMEM_CLASS);
    CHECK_KR(apple_dext_get_bar_info(c, 0, &idx, &size, &type),
             kIOReturnSuccess);
    CHECK_EQ(idx, IVSHMEM_MEM_REGS);
    CHECK_EQ(size, 256);
    CHECK_EQ(type, 0);
    CHECK_KR(apple_dext_get_bar_info(c, 1, &idx, &size, &type),
             kIOReturnSuccess);
    CHECK_EQ(idx, IVSHMEM_MEM_MSIX);
    CHECK_EQ(size, 0x2000);
    CHECK_KR(apple_dext_get_bar_info(c, 2, &idx, &size, &type),
             kIOReturnSuccess);
    CHECK_EQ(idx, IVSHMEM_MEM_SHM);
    CHECK_EQ(size, IVSHMEM_DEFAULT_SIZE);
    CHECK_EQ(type, 0x0c);   /* 64-bit, prefetchable */
    CHECK(apple_dext_get_bar_info(c, 3, &idx, &size, &type) !=
          kIOReturnSuccess);
}

/*
 * Two mappings of BAR2 and the device see the same memory: a client
 * write at word @w, then a device write 0x100 words further on.
 */
static void check_shared(io_connect_t claimer, volatile uint32_t *pa,
                         volatile uint32_t *pb, unsigned w, uint32_t v,
                         uint64_t dv)
{
    pa[w] = v;
    CHECK_EQ(rd(claimer, IVSHMEM_MEM_SHM, w * 4u, 4), v);
    CHECK_EQ(pb[w], v);
    wr(claimer, IVSHMEM_MEM_SHM, (w + 0x100u) * 4u, 8, dv);
    CHECK_EQ(pa[w + 0x100], (uint32_t)dv);
    CHECK_EQ(pb[w + 0x101], (uint32_t)(dv >> 32));
}

static void test_map(io_connect_t claimer, io_connect_t other)
{
    mach_vm_address_t a = 0, b = 0;
    mach_vm_size_t sa = 0, sb = 0;
    volatile uint32_t *pa, *pb;
    uint8_t type = 0;

    harness_section("mapping BAR2");
    /* A non-claimer reaches a BAR only once the claimer has mapped it. */
    CHECK_KR(apple_dext_map_bar(other, 2, &b, &sb, NULL), kIOReturnNotOpen);
    CHECK_KR(apple_dext_map_bar(claimer, 2, &a, &sa, &type),
             kIOReturnSuccess);
    CHECK_EQ(sa, IVSHMEM_DEFAULT_SIZE);
    CHECK_EQ(type, 0x0c);
    CHECK_KR(apple_dext_map_bar(other, 2, &b, &sb, NULL), kIOReturnSuccess);
    CHECK_EQ(sb, IVSHMEM_DEFAULT_SIZE);
    /* Register BARs are never mapped: the device must see every access. */
    CHECK(apple_dext_map_bar(claimer, 1, &b, &sb, NULL) != kIOReturnSuccess);
    if (a == 0 || b == 0) {
        return;
    }
    pa = (volatile uint32_t *)(uintptr_t)a;
    pb = (volatile uint32_t *)(uintptr_t)b;

    /* Client writes are seen by the device and the other client, and
     * device writes by the clients. */
    check_shared(claimer, pa, pb, 0x100, 0xfeedf00du, 0x0123456789abcdefull);
    CHECK_KR(apple_dext_unmap_bar(other, 2, b), kIOReturnSuccess);
    CHECK_KR(apple_dext_unmap_bar(claimer, 2, a), kIOReturnSuccess);
}

/* Map what apple_dext_map_bar_fd() gives, as another process would. */
static volatile uint32_t *map_fd(int fd, uint64_t off, uint64_t size,
                                 bool writable)
{
    void *p = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0),
                   MAP_SHARED, fd, (off_t)off);

    return p == MAP_FAILED ? NULL : p;
}

static void test_map_fd(io_connect_t claimer, io_connect_t other)
{
    uint64_t off = 1, size = 0, ooff = 1, osize = 0;
    volatile uint32_t *pa = NULL, *pb = NULL;
    bool writable = false, owritable = true;
    int fd = -2, ofd = -2;

    harness_section("BAR2 handed over as an fd");
    CHECK_KR(apple_dext_map_bar_fd(claimer, 6, &fd, &off, &size, NULL),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_map_bar_fd(claimer, 2, NULL, &off, &size, NULL),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_map_bar_fd(claimer, 4, &fd, &off, &size, NULL),
             kIOReturnNotFound);
    CHECK_EQ(fd, -1);
    /* Register BARs have no file: the device must see every access. */
    CHECK_KR(apple_dext_map_bar_fd(claimer, 0, &fd, &off, &size, NULL),
             kIOReturnUnsupported);
    CHECK_KR(apple_dext_map_bar_fd(claimer, 1, &fd, &off, &size, NULL),
             kIOReturnUnsupported);
    CHECK_EQ(fd, -1);
    if (strcmp(harness_target(), "iokit") == 0) {
        /* The real dext maps memory into us; it hands out no files. */
        CHECK_KR(apple_dext_map_bar_fd(claimer, 2, &fd, &off, &size, NULL),
                 kIOReturnUnsupported);
        CHECK_EQ(fd, -1);
        return;
    }
    if (!CHECK_KR(apple_dext_map_bar_fd(claimer, 2, &fd, &off, &size,
                                        &writable), kIOReturnSuccess)) {
        return;
    }
    CHECK(fd >= 0);
    CHECK_EQ(size, IVSHMEM_DEFAULT_SIZE);
    CHECK_EQ(off % 4096, 0);
    CHECK(writable);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    /* The claimer mapped BAR2 in test_map(): a non-claimer may too. */
    CHECK_KR(apple_dext_map_bar_fd(other, 2, &ofd, &ooff, &osize,
                                   &owritable), kIOReturnSuccess);
    CHECK_EQ(osize, IVSHMEM_DEFAULT_SIZE);
    pa = map_fd(fd, off, size, writable);
    if (ofd >= 0) {
        pb = map_fd(ofd, ooff, osize, owritable);
        if (!owritable) {
            /* Read-only all the way: no writable mapping can be made. */
            CHECK(mmap(NULL, osize, PROT_READ | PROT_WRITE, MAP_SHARED, ofd,
                       (off_t)ooff) == MAP_FAILED);
        }
    }
    CHECK(pa != NULL && pb != NULL);
    if (pa != NULL && pb != NULL) {
        /* The same memory the device and the other client see. */
        check_shared(claimer, pa, pb, 0x300, 0x5eed1234u,
                     0xabad1dea600dcafeull);
    }
    /* The fds outlive the mappings, and the mappings the fds. */
    if (pa != NULL) {
        munmap((void *)pa, size);
    }
    if (pb != NULL) {
        munmap((void *)pb, osize);
    }
    close(fd);
    if (ofd >= 0) {
        close(ofd);
    }
}

static void test_dma(io_connect_t c)
{
    mach_vm_address_t a = 0;
    mach_vm_size_t sa = 0;
    uint8_t *shm, *buf;
    uint64_t bus = 0, len = 0;

    harness_section("DMA engine: BAR2 <-> client memory");
    if (!CHECK_KR(apple_dext_map_bar(c, 2, &a, &sa, NULL), kIOReturnSuccess)) {
        return;
    }
    shm = (uint8_t *)(uintptr_t)a;
    buf = mmap(NULL, DMA_LEN, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!CHECK(buf != MAP_FAILED)) {
        apple_dext_unmap_bar(c, 2, a);
        return;
    }
    memset(buf, 0, DMA_LEN);
    CHECK_KR(apple_dext_register_dma(c, 0x10000000, (uintptr_t)buf, DMA_LEN,
                                     &bus, &len), kIOReturnSuccess);
    harness_fill_random(shm + 0x1000, DMA_LEN);

    /* BAR2 -> client. */
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_SHM, 8, 0x1000);
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_BUS, 8, bus);
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_LEN, 8, DMA_LEN);
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4,
       IVSHMEM_DMA_RUN | IVSHMEM_DMA_TO_BUS);
    CHECK_EQ(rd(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4), IVSHMEM_DMA_TO_BUS);
    CHECK(memcmp(buf, shm + 0x1000, DMA_LEN) == 0);

    /* client -> BAR2. */
    harness_fill_random(buf, DMA_LEN);
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_SHM, 8, 0x20000);
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4, IVSHMEM_DMA_RUN);
    CHECK_EQ(rd(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4), 0);
    CHECK(memcmp(buf, shm + 0x20000, DMA_LEN) == 0);

    /* An unmapped bus address faults: the error bit, nothing copied. */
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_BUS, 8, bus + (1ull << 32));
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4, IVSHMEM_DMA_RUN);
    CHECK_EQ(rd(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4), IVSHMEM_DMA_ERROR);

    CHECK_KR(apple_dext_unregister_dma(c, 0x10000000), kIOReturnSuccess);
    munmap(buf, DMA_LEN);
    CHECK_KR(apple_dext_unmap_bar(c, 2, a), kIOReturnSuccess);
}

static uint32_t msix_cap(io_connect_t c)
{
    uint64_t ptr = 0, id = 0;

    CHECK_KR(apple_dext_config_read(c, 0x34, 1, &ptr), kIOReturnSuccess);
    while (ptr >= 0x40 && ptr < 0x100) {
        CHECK_KR(apple_dext_config_read(c, ptr, 1, &id), kIOReturnSuccess);
        if (id == 0x11) {
            return (uint32_t)ptr;
        }
        CHECK_KR(apple_dext_config_read(c, ptr + 1, 1, &ptr),
                 kIOReturnSuccess);
    }
    return 0;
}

static void test_interrupts(io_connect_t c)
{
    uint64_t p[4], ctl = 0;
    uint32_t n = 0, v, cap;

    harness_section("256 MSI-X vectors, doorbell, masking");
    CHECK_KR(apple_dext_setup_interrupts(c, &n), kIOReturnSuccess);
    CHECK_EQ(n, 256);
    CHECK_EQ(rd(c, IVSHMEM_MEM_REGS, IVSHMEM_VECTORS, 4), 256);
    drain(c, p);

    /* Every vector, by the doorbell (peer 0 is the device itself). */
    for (v = 0; v < 256; v++) {
        wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DOORBELL, 4, v);
    }
    drain(c, p);
    CHECK_EQ(p[0] & p[1] & p[2] & p[3], ~0ull);
    /* A doorbell naming another peer is ignored. */
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DOORBELL, 4, (1u << 16) | 3);
    drain(c, p);
    CHECK_EQ(p[0] | p[1] | p[2] | p[3], 0);

    /* Per-vector mask: held in the PBA, delivered on unmask. */
    wr(c, IVSHMEM_MEM_MSIX, IVSHMEM_MSIX_ENTRY(200) + IVSHMEM_MSIX_CTRL, 4, 1);
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DOORBELL, 4, 200);
    drain(c, p);
    CHECK_EQ(p[3], 0);
    CHECK_EQ(rd(c, IVSHMEM_MEM_MSIX, IVSHMEM_PBA + 24, 8), 1ull << 8);
    wr(c, IVSHMEM_MEM_MSIX, IVSHMEM_MSIX_ENTRY(200) + IVSHMEM_MSIX_CTRL, 4, 0);
    drain(c, p);
    CHECK_EQ(p[3], 1ull << 8);
    CHECK_EQ(rd(c, IVSHMEM_MEM_MSIX, IVSHMEM_PBA + 24, 8), 0);

    /* Function mask in config space: the same, for every vector. */
    cap = msix_cap(c);
    if (!CHECK(cap != 0)) {
        return;
    }
    CHECK_KR(apple_dext_config_read(c, cap + 2, 2, &ctl), kIOReturnSuccess);
    CHECK(ctl & 0x8000);
    CHECK_KR(apple_dext_config_write(c, cap + 2, 2, ctl | 0x4000),
             kIOReturnSuccess);
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DOORBELL, 4, 7);
    drain(c, p);
    CHECK_EQ(p[0], 0);
    CHECK_EQ(rd(c, IVSHMEM_MEM_MSIX, IVSHMEM_PBA, 8), 1ull << 7);
    CHECK_KR(apple_dext_config_write(c, cap + 2, 2, ctl), kIOReturnSuccess);
    drain(c, p);
    CHECK_EQ(p[0], 1ull << 7);

    /* The client's enable mask still filters on top of the device's. */
    {
        const uint64_t only_low[4] = { ~0ull, 0, 0, 0 };
        const uint64_t all[4] = { ~0ull, ~0ull, ~0ull, ~0ull };

        CHECK_KR(apple_dext_set_irq_mask(c, only_low), kIOReturnSuccess);
        wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DOORBELL, 4, 100);
        wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DOORBELL, 4, 1);
        drain(c, p);
        CHECK_EQ(p[0], 2);
        CHECK_EQ(p[1], 0);
        CHECK_KR(apple_dext_set_irq_mask(c, all), kIOReturnSuccess);
    }

    /* A DMA completion fires its vector. */
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_LEN, 8, 0);
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_VECTOR, 4, 65);
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4,
       IVSHMEM_DMA_RUN | IVSHMEM_DMA_IRQ);
    drain(c, p);
    CHECK_EQ(p[1], 2);

    /* After a reset the table is programmed again: vectors still work. */
    CHECK_KR(apple_dext_reset_device(c), kIOReturnSuccess);
    wr(c, IVSHMEM_MEM_REGS, IVSHMEM_DOORBELL, 4, 255);
    drain(c, p);
    CHECK_EQ(p[3], 1ull << 63);
}

int main(int argc, char **argv)
{
    io_connect_t c, other;

    harness_init(argc, argv, "edu+ivshmem");
    c = connect_ivshmem();
    other = connect_ivshmem();
    if (c == IO_OBJECT_NULL || other == IO_OBJECT_NULL) {
        return harness_finish();
    }
    test_identity(c);
    if (!CHECK_KR(apple_dext_claim(c), kIOReturnSuccess)) {
        return harness_finish();
    }
    test_map(c, other);
    test_map_fd(c, other);
    test_dma(c);
    test_interrupts(c);
    apple_dext_disconnect(other);
    apple_dext_disconnect(c);
    return harness_finish();
}
