/*
 * SPDX-License-Identifier: MIT
 *
 * DMA: apple_dext_register_dma(), _unregister_dma(), _probe_dma(), real
 * device DMA through the returned bus addresses (edu's DMA engine), the
 * IOMMU refusing unregistered addresses, and the dext-owned DMA buffer
 * (_allocate_dma_buffer(), _map_dma_buffer(), _unmap_dma_buffer(),
 * _free_dma_buffer()).
 */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "edu.h"

#define IOVA_A   0x10000
#define IOVA_B   0x20000
#define IOVA_C   0x30000
#define IOVA_D   0x40000
#define BUF_SIZE 16384

/*
 * Client memory for DMA: shared (a memfd), which every dext can reach --
 * through dextd a device behind a real IOMMU reaches only memory dextd
 * can map.  Private memory has its own section.
 */
static uint8_t *map_pages(size_t size)
{
    int fd = memfd_create("test-dma", MFD_CLOEXEC);
    void *p = MAP_FAILED;

    if (CHECK(fd >= 0) && CHECK(ftruncate(fd, (off_t)size) == 0)) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (!CHECK(p != MAP_FAILED)) {
        abort();
    }
    return p;
}

/*
 * The dext's count of IOMMU faults went up by @n since @before.  Only an
 * emulated device's DMA is translated by the dext core, which counts
 * faults; a real IOMMU reports them to the kernel alone (DMAR lines in
 * its log), so on real devices the blocked access is checked by its
 * effect on memory only.
 */
static void check_faults(uint64_t before, uint64_t n);

static uint64_t va(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static bool in_dma_mask(uint64_t bus, uint64_t len)
{
    return len > 0 && bus <= EDU_DMA_MASK && len - 1 <= EDU_DMA_MASK - bus;
}

static uint64_t faults(void)
{
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };

    return harness_status(&st) ? st.iommu_faults : 0;
}

/*
 * The emulation counts its IOMMU faults; a real IOMMU's go to the
 * kernel's log, and over iokit the dext keeps no counters at all.
 */
/*
 * Is @addr mapped to one of the dext's memfds ("dext-dma-buffer",
 * "dext-irq-page")?  mincore() says whether anything is mapped; the
 * mapping's name in /proc/self/maps whose it is.
 */
static bool dext_memory_at(uintptr_t addr, unsigned char *vec)
{
    char line[512];
    bool ours = false;
    FILE *f;

    if (mincore((void *)addr, 4096, vec) != 0) {
        return false;
    }
    f = fopen("/proc/self/maps", "re");
    if (f == NULL) {
        return true;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;

        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && addr >= lo &&
            addr < hi) {
            ours = strstr(line, "dext-") != NULL;
            break;
        }
    }
    fclose(f);
    return ours;
}

static void check_faults(uint64_t before, uint64_t n)
{
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };

    if (!harness_real_devices() && harness_status(&st)) {
        CHECK_EQ(st.iommu_faults, before + n);
    }
}

static void test_register_errors(io_connect_t c, uint8_t *a)
{
    uint64_t bus = 0x5a5a, len = 0x5a5a;
    uint8_t *hole;

    harness_section("register_dma argument errors");
    CHECK_KR(apple_dext_register_dma(c, IOVA_C, va(a), 0, &bus, &len),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_register_dma(c, IOVA_C, 0, 4096, &bus, &len),
             kIOReturnBadArgument);
    /* The range wraps around the top of the address space. */
    CHECK_KR(apple_dext_register_dma(c, IOVA_C, UINT64_MAX - 4095, 8192,
                                     &bus, &len), kIOReturnBadArgument);
    CHECK_KR(apple_dext_register_dma(c, IOVA_C, va(a), UINT64_MAX, &bus,
                                     &len), kIOReturnBadArgument);
    /* Nothing was registered by the refusals. */
    CHECK_KR(apple_dext_unregister_dma(c, IOVA_C), kIOReturnNotFound);

    /* Memory that is not mapped, wholly or at its end. */
    hole = mmap(NULL, 3 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!CHECK(hole != MAP_FAILED)) {
        return;
    }
    CHECK_KR(apple_dext_register_dma(c, IOVA_C, va(hole), 4096, &bus, &len),
             kIOReturnVMError);
    CHECK(mprotect(hole, 4096, PROT_READ | PROT_WRITE) == 0);
    CHECK_KR(apple_dext_register_dma(c, IOVA_C, va(hole), 2 * 4096, &bus,
                                     &len), kIOReturnVMError);
    CHECK_KR(apple_dext_unregister_dma(c, IOVA_C), kIOReturnNotFound);
    /*
     * The accessible page alone is fine -- but it is private memory: a
     * device behind a real IOMMU served by dextd cannot reach it, and
     * says so rather than pretending.
     */
    if (harness_real_devices() && harness_is_unix()) {
        CHECK_KR(apple_dext_register_dma(c, IOVA_C, va(hole), 4096, NULL,
                                         NULL), kIOReturnUnsupported);
    } else {
        CHECK_KR(apple_dext_register_dma(c, IOVA_C, va(hole), 4096, NULL,
                                         NULL), kIOReturnSuccess);
        CHECK_KR(apple_dext_unregister_dma(c, IOVA_C), kIOReturnSuccess);
    }
    munmap(hole, 3 * 4096);
}

static void test_probe(io_connect_t c, uint8_t *a)
{
    uint64_t w = 0, want;

    harness_section("probe_dma: the dext sees the client's pages");
    want = 0x0123456789abcdefull;
    memcpy(a, &want, 8);
    CHECK_KR(apple_dext_probe_dma(c, IOVA_A, 0, &w), kIOReturnSuccess);
    CHECK_EQ(w, want);
    want = 0xfedcba9876543210ull;
    memcpy(a + BUF_SIZE - 8, &want, 8);
    CHECK_KR(apple_dext_probe_dma(c, IOVA_A, BUF_SIZE - 8, &w),
             kIOReturnSuccess);
    CHECK_EQ(w, want);
    /* Unaligned offsets and a later change: live pages, not a copy. */
    memcpy(a + 3, &want, 8);
    CHECK_KR(apple_dext_probe_dma(c, IOVA_A, 3, &w), kIOReturnSuccess);
    CHECK_EQ(w, want);
    a[3] ^= 0xff;
    CHECK_KR(apple_dext_probe_dma(c, IOVA_A, 3, &w), kIOReturnSuccess);
    CHECK_EQ(w, want ^ 0xff);

    CHECK_KR(apple_dext_probe_dma(c, IOVA_A, BUF_SIZE - 7, &w),
             kIOReturnOverrun);
    CHECK_KR(apple_dext_probe_dma(c, IOVA_A, BUF_SIZE, &w), kIOReturnOverrun);
    CHECK_KR(apple_dext_probe_dma(c, IOVA_A, UINT64_MAX - 3, &w),
             kIOReturnOverrun);
    CHECK_KR(apple_dext_probe_dma(c, 0x99000, 0, &w), kIOReturnNotFound);
    /* Keys are exact starts, not addresses inside a region. */
    CHECK_KR(apple_dext_probe_dma(c, IOVA_A + 8, 0, &w), kIOReturnNotFound);
    CHECK_KR(apple_dext_probe_dma(c, IOVA_A, 0, NULL), kIOReturnBadArgument);
}

/*
 * RAM -> device buffer -> RAM through edu's engine: @src and @dst are
 * client memory registered at bus addresses @src_bus and @dst_bus.
 */
static void round_trip(io_connect_t c, const uint8_t *src, uint64_t src_bus,
                       uint8_t *dst, uint64_t dst_bus, size_t len,
                       uint64_t dev_off)
{
    if (!edu_dma(c, src_bus, EDU_DMA_BUF_ADDR + dev_off, len, 0) ||
        !edu_dma(c, EDU_DMA_BUF_ADDR + dev_off, dst_bus, len,
                 EDU_DMA_TO_RAM)) {
        return;
    }
    CHECK_MSG(memcmp(src, dst, len) == 0,
              "DMA round trip of %zu bytes: destination differs", len);
}

static void test_round_trip(io_connect_t c, uint8_t *a, uint64_t bus_a,
                            uint8_t *b, uint64_t bus_b)
{
    uint64_t bus_c = 0, bus_d = 0, len_c = 0, len_d = 0;
    uint8_t *c_mem, *d_mem;
    const size_t odd = 3001;
    size_t i;

    harness_section("DMA round trip, 4096 random bytes");
    harness_fill_random(a, 4096);
    memset(b, 0, BUF_SIZE);
    round_trip(c, a, bus_a, b, bus_b, 4096, 0);
    /* Only the transferred bytes were written. */
    for (i = 4096; i < BUF_SIZE && b[i] == 0; i++) {
    }
    CHECK_EQ(i, BUF_SIZE);

    harness_section("DMA at an offset in both regions");
    harness_fill_random(a, BUF_SIZE);
    memset(b, 0, BUF_SIZE);
    round_trip(c, a + 0x1230, bus_a + 0x1230, b + 0x2345, bus_b + 0x2345,
               1000, 0x100);
    CHECK_EQ(b[0x2344], 0);
    CHECK_EQ(b[0x2345 + 1000], 0);

    harness_section("DMA with unaligned regions and an odd length");
    c_mem = map_pages(BUF_SIZE);
    d_mem = map_pages(BUF_SIZE);
    harness_fill_random(c_mem, BUF_SIZE);
    memset(d_mem, 0xee, BUF_SIZE);
    if (CHECK_KR(apple_dext_register_dma(c, IOVA_C, va(c_mem + 0x123), odd,
                                         &bus_c, &len_c), kIOReturnSuccess) &&
        CHECK_KR(apple_dext_register_dma(c, IOVA_D, va(d_mem + 0x777), odd,
                                         &bus_d, &len_d), kIOReturnSuccess)) {
        CHECK_EQ(len_c, odd);
        CHECK_EQ(len_d, odd);
        CHECK(in_dma_mask(bus_c, len_c));
        CHECK(in_dma_mask(bus_d, len_d));
        round_trip(c, c_mem + 0x123, bus_c, d_mem + 0x777, bus_d, odd, 0);
        /* Guard bytes on both sides stayed as they were. */
        CHECK_EQ(d_mem[0x776], 0xee);
        CHECK_EQ(d_mem[0x777 + odd], 0xee);
        /* The last byte of a region is reachable; one past it is not. */
        {
            uint64_t before = faults();

            d_mem[0x777 + odd - 1] = 0xee;
            if (edu_dma(c, EDU_DMA_BUF_ADDR, bus_d + odd - 1, 1,
                        EDU_DMA_TO_RAM)) {
                CHECK_EQ(d_mem[0x777 + odd - 1], c_mem[0x123]);
            }
            check_faults(before, 0);
            /* An IOMMU maps whole pages (4 KiB here, 16 KiB on the
             * DART): only the emulation stops at the region's last byte. */
            if (!harness_real_devices() &&
                edu_dma(c, EDU_DMA_BUF_ADDR, bus_d + odd - 1, 2,
                        EDU_DMA_TO_RAM)) {
                check_faults(before, 1);
                CHECK_EQ(d_mem[0x777 + odd], 0xee);
            }
        }
    }
    apple_dext_unregister_dma(c, IOVA_C);
    apple_dext_unregister_dma(c, IOVA_D);
    munmap(c_mem, BUF_SIZE);
    munmap(d_mem, BUF_SIZE);
}

static void test_iommu_fault(io_connect_t c, uint8_t *b, uint64_t bus_b)
{
    uint64_t bus_c = 0, before;
    uint8_t *c_mem, *check;
    bool untouched = true;
    size_t i;

    harness_section("DMA to an unregistered bus address faults");
    c_mem = map_pages(BUF_SIZE);
    memset(c_mem, 0x3c, BUF_SIZE);
    if (!CHECK_KR(apple_dext_register_dma(c, IOVA_C, va(c_mem), BUF_SIZE,
                                          &bus_c, NULL), kIOReturnSuccess)) {
        munmap(c_mem, BUF_SIZE);
        return;
    }
    /* The device buffer holds known bytes from a region still mapped. */
    check = map_pages(BUF_SIZE);
    harness_fill_random(b, 4096);
    edu_dma(c, bus_b, EDU_DMA_BUF_ADDR, 4096, 0);
    memcpy(check, b, 4096);

    CHECK_KR(apple_dext_unregister_dma(c, IOVA_C), kIOReturnSuccess);
    before = faults();
    if (edu_dma(c, EDU_DMA_BUF_ADDR, bus_c, 4096, EDU_DMA_TO_RAM)) {
        for (i = 0; i < BUF_SIZE; i++) {
            untouched &= c_mem[i] == 0x3c;
        }
        CHECK_MSG(untouched, "device DMA reached memory after unregister");
        check_faults(before, 1);
    }
    /*
     * Reading from it faults too.  What the device then holds is the
     * device's business: our edu keeps its buffer, QEMU's takes what its
     * memory core returns for the faulted read.
     */
    if (edu_dma(c, bus_c, EDU_DMA_BUF_ADDR, 4096, 0)) {
        check_faults(before, 2);
    }
    /* An address no one ever registered, inside the DMA mask. */
    if (edu_dma(c, EDU_DMA_BUF_ADDR, 0x0ff00000, 64, EDU_DMA_TO_RAM)) {
        check_faults(before, 3);
    }
    memset(b, 0, 4096);
    if (!harness_real_devices() &&
        edu_dma(c, EDU_DMA_BUF_ADDR, bus_b, 4096, EDU_DMA_TO_RAM)) {
        CHECK(memcmp(b, check, 4096) == 0);
    }
    munmap(check, BUF_SIZE);
    munmap(c_mem, BUF_SIZE);
}

/*
 * A client breaking the rule that registered memory stays mapped: the
 * dext must survive, and device DMA must fault rather than land
 * anywhere.  PROT_NONE rather than munmap, so nothing else can be
 * mapped there meanwhile.
 */
static void test_memory_gone(io_connect_t c)
{
    uint64_t bus = 0, before, w = 0;
    uint8_t *pages;
    size_t i;
    bool untouched = true;

    harness_section("registered memory made inaccessible");
    /* Memory a real IOMMU maps is pinned: the device still reaches it
     * when the client takes the CPU's access away (so does the DART's).
     * Only the emulation, which copies with the client's permissions,
     * sees the change. */
    if (harness_real_devices()) {
        return;
    }
    pages = map_pages(3 * 4096);
    memset(pages, 0x6b, 3 * 4096);
    if (!CHECK_KR(apple_dext_register_dma(c, IOVA_C, va(pages + 4096), 4096,
                                          &bus, NULL), kIOReturnSuccess)) {
        munmap(pages, 3 * 4096);
        return;
    }
    CHECK(mprotect(pages + 4096, 4096, PROT_NONE) == 0);
    before = faults();
    if (edu_dma(c, EDU_DMA_BUF_ADDR, bus, 4096, EDU_DMA_TO_RAM)) {
        check_faults(before, 1);
    }
    CHECK(apple_dext_probe_dma(c, IOVA_C, 0, &w) != kIOReturnSuccess);
    CHECK(mprotect(pages + 4096, 4096, PROT_READ | PROT_WRITE) == 0);
    for (i = 0; i < 3 * 4096; i++) {
        untouched &= pages[i] == 0x6b;
    }
    CHECK(untouched);
    /* Accessible again: reached again. */
    CHECK_KR(apple_dext_probe_dma(c, IOVA_C, 0, &w), kIOReturnSuccess);
    CHECK_EQ(w, 0x6b6b6b6b6b6b6b6bull);
    CHECK_KR(apple_dext_unregister_dma(c, IOVA_C), kIOReturnSuccess);
    munmap(pages, 3 * 4096);
}

static void test_dma_buffer(io_connect_t c, uint8_t *b, uint64_t bus_b)
{
    AppleDextDMABuffer db, db2;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    mach_vm_address_t addr = 0, addr2 = 0;
    mach_vm_size_t size = 0;
    uint8_t *m, *pattern;
    uint64_t before;

    harness_section("DMA buffer argument errors");
    CHECK_KR(apple_dext_map_dma_buffer(c, &addr, &size), kIOReturnNotReady);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, 0, 0, &db),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, (3ull << 29) + 1, 0, &db),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, UINT64_MAX, 0, &db),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 3, &db),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 3 * 4096, &db),
             kIOReturnBadArgument);
    /* Within the size limit but beyond edu's 256 MiB of bus space. */
    CHECK_KR(apple_dext_allocate_dma_buffer(c, 3ull << 29, 0, &db),
             kIOReturnNoResources);
    CHECK_KR(apple_dext_map_dma_buffer(c, &addr, &size), kIOReturnNotReady);
    CHECK_KR(apple_dext_map_dma_buffer(c, NULL, &size), kIOReturnBadArgument);
    /* Freeing when there is none is fine. */
    CHECK_KR(apple_dext_free_dma_buffer(c), kIOReturnSuccess);

    harness_section("allocate and map the DMA buffer");
    memset(&db, 0xa5, sizeof(db));
    if (!CHECK_KR(apple_dext_allocate_dma_buffer(c, 8192, 0, &db),
                  kIOReturnSuccess)) {
        return;
    }
    CHECK_EQ(db.size, 8192);
    CHECK_EQ(db.segment_count, 1);
    CHECK_EQ(db.bus_len, 8192);
    CHECK_EQ(db.bus_addr % 4096, 0);
    CHECK(in_dma_mask(db.bus_addr, db.bus_len));
    CHECK_EQ(db.class_code, EDU_CLASS_CODE);
    if (harness_status(&st)) {
        CHECK_EQ(st.dma_buffers, 1);
    }
    if (!CHECK_KR(apple_dext_map_dma_buffer(c, &addr, &size),
                  kIOReturnSuccess)) {
        return;
    }
    CHECK(addr != 0);
    CHECK_EQ(size, 8192);
    m = (uint8_t *)(uintptr_t)addr;

    harness_section("device DMA into the buffer shows in its mapping");
    pattern = map_pages(BUF_SIZE);
    harness_fill_random(b, 4096);
    memcpy(pattern, b, 4096);
    memset(m, 0, 8192);
    if (edu_dma(c, bus_b, EDU_DMA_BUF_ADDR, 4096, 0) &&
        edu_dma(c, EDU_DMA_BUF_ADDR, db.bus_addr + 4096, 4096,
                EDU_DMA_TO_RAM)) {
        CHECK(memcmp(m + 4096, pattern, 4096) == 0);
        CHECK_EQ(m[0], 0);
    }
    /* And the other way: what the client writes there, the device reads. */
    harness_fill_random(m, 4096);
    memset(b, 0, 4096);
    if (edu_dma(c, db.bus_addr, EDU_DMA_BUF_ADDR, 4096, 0) &&
        edu_dma(c, EDU_DMA_BUF_ADDR, bus_b, 4096, EDU_DMA_TO_RAM)) {
        CHECK(memcmp(b, m, 4096) == 0);
    }
    /* A second mapping shows the same memory. */
    if (CHECK_KR(apple_dext_map_dma_buffer(c, &addr2, &size),
                 kIOReturnSuccess)) {
        m[17] = 0x42;
        CHECK_EQ(((volatile uint8_t *)(uintptr_t)addr2)[17], 0x42);
        CHECK_KR(apple_dext_unmap_dma_buffer(c, addr2), kIOReturnSuccess);
    }

    harness_section("alignment and replacement");
    memset(&db2, 0, sizeof(db2));
    if (CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 1 << 20, &db2),
                 kIOReturnSuccess)) {
        CHECK_EQ(db2.bus_addr % (1 << 20), 0);
        CHECK(in_dma_mask(db2.bus_addr, db2.bus_len));
        if (harness_status(&st)) {
            CHECK_EQ(st.dma_buffers, 1);
        }
        /* The old buffer's bus address no longer reaches memory. */
        before = faults();
        m[0] = 0x77;
        if (edu_dma(c, EDU_DMA_BUF_ADDR, db.bus_addr, 16, EDU_DMA_TO_RAM)) {
            check_faults(before, 1);
            CHECK_EQ(m[0], 0x77);
        }
    }
    CHECK_KR(apple_dext_unmap_dma_buffer(c, addr), kIOReturnSuccess);
    CHECK_KR(apple_dext_unmap_dma_buffer(c, addr), kIOReturnBadArgument);
    CHECK_KR(apple_dext_unmap_dma_buffer(c, va(pattern)), kIOReturnBadArgument);
    CHECK_KR(apple_dext_unmap_dma_buffer(c, 0), kIOReturnBadArgument);

    harness_section("free the DMA buffer");
    if (CHECK_KR(apple_dext_map_dma_buffer(c, &addr, &size),
                 kIOReturnSuccess)) {
        CHECK_EQ(size, 4096);
        m = (uint8_t *)(uintptr_t)addr;
    } else {
        m = NULL;
    }
    CHECK_KR(apple_dext_free_dma_buffer(c), kIOReturnSuccess);
    if (harness_status(&st)) {
        CHECK_EQ(st.dma_buffers, 0);
    }
    CHECK_KR(apple_dext_map_dma_buffer(c, &addr2, &size), kIOReturnNotReady);
    if (m != NULL) {
        /* Still valid memory, no longer reached by the device. */
        m[0] = 0x99;
        before = faults();
        if (edu_dma(c, EDU_DMA_BUF_ADDR, db2.bus_addr, 16, EDU_DMA_TO_RAM)) {
            check_faults(before, 1);
            CHECK_EQ(m[0], 0x99);
        }
        CHECK_KR(apple_dext_unmap_dma_buffer(c, addr), kIOReturnSuccess);
    }
    CHECK_KR(apple_dext_free_dma_buffer(c), kIOReturnSuccess);
    munmap(pattern, BUF_SIZE);
}

int main(int argc, char **argv)
{
    uint64_t bus_a = 0, len_a = 0, bus_b = 0, len_b = 0, bus = 0, len = 0;
    AppleDextDeviceStatus ds;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    io_connect_t c;
    uint8_t *a, *b;

    harness_init(argc, argv, NULL);
    c = harness_connect_edu();
    if (c == IO_OBJECT_NULL || !CHECK_KR(apple_dext_claim(c),
                                         kIOReturnSuccess)) {
        return harness_finish();
    }
    a = map_pages(BUF_SIZE);
    b = map_pages(BUF_SIZE);

    harness_section("register_dma");
    CHECK_KR(apple_dext_register_dma(c, IOVA_A, va(a), BUF_SIZE, &bus_a,
                                     &len_a), kIOReturnSuccess);
    CHECK(bus_a != IOVA_A);
    CHECK(in_dma_mask(bus_a, len_a));
    CHECK_EQ(len_a, BUF_SIZE);
    CHECK_KR(apple_dext_register_dma(c, IOVA_B, va(b), BUF_SIZE, &bus_b,
                                     &len_b), kIOReturnSuccess);
    CHECK(bus_b != IOVA_B);
    CHECK(in_dma_mask(bus_b, len_b));
    CHECK_EQ(len_b, BUF_SIZE);
    /* Two live regions never share bus addresses. */
    CHECK(bus_a + len_a <= bus_b || bus_b + len_b <= bus_a);

    /* The key is unique per connection, whatever the memory. */
    CHECK_KR(apple_dext_register_dma(c, IOVA_A, va(b), 4096, &bus, &len),
             kIOReturnStillOpen);
    CHECK_KR(apple_dext_register_dma(c, IOVA_A, va(a), BUF_SIZE, NULL, NULL),
             kIOReturnStillOpen);
    /* The same memory under another key is allowed. */
    CHECK_KR(apple_dext_register_dma(c, IOVA_D, va(a), 4096, &bus, NULL),
             kIOReturnSuccess);
    CHECK(bus != bus_a);
    CHECK_KR(apple_dext_unregister_dma(c, IOVA_D), kIOReturnSuccess);

    CHECK_KR(apple_dext_get_device_status(c, &ds), kIOReturnSuccess);
    CHECK_EQ(ds.dma_regions, 2);
    if (harness_status(&st)) {
        CHECK_EQ(st.dma_regions, 2);
        CHECK_EQ(st.dma_region_bytes, 2 * BUF_SIZE);
    }

    test_register_errors(c, a);
    test_probe(c, a);
    test_round_trip(c, a, bus_a, b, bus_b);
    test_iommu_fault(c, b, bus_b);
    test_memory_gone(c);
    test_dma_buffer(c, b, bus_b);

    harness_section("unregister_dma");
    CHECK_KR(apple_dext_unregister_dma(c, IOVA_A), kIOReturnSuccess);
    CHECK_KR(apple_dext_unregister_dma(c, IOVA_A), kIOReturnNotFound);
    CHECK_KR(apple_dext_probe_dma(c, IOVA_A, 0, &bus), kIOReturnNotFound);
    CHECK_KR(apple_dext_unregister_dma(c, 0x123456), kIOReturnNotFound);
    CHECK_KR(apple_dext_get_device_status(c, &ds), kIOReturnSuccess);
    CHECK_EQ(ds.dma_regions, 1);
    /* The key is free again. */
    CHECK_KR(apple_dext_register_dma(c, IOVA_A, va(a), 4096, NULL, NULL),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_unregister_dma(c, IOVA_A), kIOReturnSuccess);

    /* Disconnect releases what is left and unmaps every mapping. */
    {
        mach_vm_address_t addr = 0;
        mach_vm_size_t size = 0;
        volatile uint64_t *page = NULL;
        unsigned char vec[4];

        CHECK_KR(apple_dext_allocate_dma_buffer(c, 16384, 0, NULL),
                 kIOReturnSuccess);
        CHECK_KR(apple_dext_map_dma_buffer(c, &addr, &size),
                 kIOReturnSuccess);
        CHECK_KR(apple_dext_setup_interrupts(c, NULL), kIOReturnSuccess);
        CHECK_KR(apple_dext_map_irq_page(c, &page), kIOReturnSuccess);
        CHECK(addr != 0 && dext_memory_at((uintptr_t)addr, vec));
        CHECK(page != NULL && dext_memory_at((uintptr_t)page, vec));
        apple_dext_disconnect(c);
        /*
         * Gone: not mapped any more, or (another thread may have mapped
         * something there since, as a sanitizer's allocator does) mapped
         * to something that is not the dext's memory.
         */
        CHECK_MSG(addr != 0 && !dext_memory_at((uintptr_t)addr, vec),
                  "the DMA buffer is still mapped after disconnect");
        CHECK_MSG(page != NULL && !dext_memory_at((uintptr_t)page, vec),
                  "the interrupt page is still mapped after disconnect");
    }
    if (harness_status(&st)) {
        CHECK_EQ(st.dma_regions, 0);
        CHECK_EQ(st.dma_region_bytes, 0);
        CHECK_EQ(st.dma_buffers, 0);
        CHECK_EQ(st.sessions, 0);
    }
    munmap(a, BUF_SIZE);
    munmap(b, BUF_SIZE);
    return harness_finish();
}
