/*
 * SPDX-License-Identifier: MIT
 *
 * The limits of apple_dext_register_dma(): regions over 1.5 GiB split
 * into chunks mapped back to back (whatever the start's page offset),
 * kIOReturnNoSpace past 128 chunks and past 65,536 regions,
 * kIOReturnNotAligned when no contiguous bus segment is left, a full
 * rollback when a region does not fit, and regions being per
 * connection.  A second edu with a 40-bit DMA mask has the bus space for
 * the big cases.
 */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "edu.h"

#define DEVICES     "edu+edu,bdf=00:05.0,dma_mask=0xffffffffff"
#define WIDE_DEV    5
#define WIDE_MASK   0xffffffffffull
#define CHUNK_MAX   (3ull << 29)        /* 1.5 GiB */
#define MAX_REGIONS 65536

static uint64_t va(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

/*
 * @page_off: where the region starts within a 16 KiB DART page; the
 * chunks must be back to back in bus space whatever it is.
 */
static void test_chunks(io_connect_t c, uint64_t page_off)
{
    const uint64_t size = 2ull << 30;
    uint64_t bus = 0, len = 0, w = 0;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    uint8_t *map, *big, src[16], *edge;

    harness_section("a 2 GiB region at page offset 0x%llx: chunks mapped "
                    "back to back", (unsigned long long)page_off);
    /* Reserved, not committed: only the touched pages become memory. */
    map = mmap(NULL, size + 32768, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) {
        printf("# cannot reserve 2 GiB of address space: chunk test skipped\n");
        return;
    }
    big = (uint8_t *)(((uintptr_t)map + 16383) & ~(uintptr_t)16383) + page_off;
    if (!CHECK_KR(apple_dext_register_dma(c, 0x10000, va(big), size, &bus,
                                          &len), kIOReturnSuccess)) {
        munmap(map, size + 32768);
        return;
    }
    /* The first chunk's segment is reported. */
    CHECK_EQ(len, CHUNK_MAX);
    CHECK(bus + size - 1 <= WIDE_MASK);
    if (harness_status(&st)) {
        CHECK_EQ(st.dma_region_bytes, size);
    }

    /* The dext reaches both ends and the chunk boundary. */
    edge = big + CHUNK_MAX - 8;
    memcpy(edge, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e"
           "\x0f\x10", 16);
    CHECK_KR(apple_dext_probe_dma(c, 0x10000, CHUNK_MAX - 4, &w),
             kIOReturnSuccess);
    CHECK_EQ(w, 0x0c0b0a0908070605ull);
    big[size - 1] = 0x99;
    CHECK_KR(apple_dext_probe_dma(c, 0x10000, size - 8, &w),
             kIOReturnSuccess);
    CHECK_EQ(w >> 56, 0x99);
    CHECK_KR(apple_dext_probe_dma(c, 0x10000, size - 7, &w),
             kIOReturnOverrun);

    /* Device DMA across the chunk boundary, at contiguous bus addresses. */
    memcpy(src, edge, 16);
    if (edu_dma(c, bus + CHUNK_MAX - 8, EDU_DMA_BUF_ADDR, 16, 0)) {
        memset(edge, 0, 16);
        if (edu_dma(c, EDU_DMA_BUF_ADDR, bus + CHUNK_MAX - 8, 16,
                    EDU_DMA_TO_RAM)) {
            CHECK(memcmp(edge, src, 16) == 0);
        }
    }
    CHECK_KR(apple_dext_unregister_dma(c, 0x10000), kIOReturnSuccess);
    munmap(map, size + 32768);
}

static void test_no_space(io_connect_t c, io_connect_t narrow, uint8_t *mem)
{
    AppleDextDeviceStatus ds;
    AppleDextStatus before, after;
    uint64_t bus = 0, len = 0;
    uint32_t i, ok = 0;

    harness_section("more than 128 chunks: kIOReturnNoSpace");
    /* Refused on size alone, before any memory is looked at. */
    CHECK_KR(apple_dext_register_dma(c, 0x10000, 0x100000000ull,
                                     129 * CHUNK_MAX, &bus, &len),
             kIOReturnNoSpace);

    harness_section("a chunk larger than the whole bus space");
    {
        const uint64_t size = 512ull << 20;
        uint8_t *big = mmap(NULL, size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                            0);

        if (CHECK(big != MAP_FAILED) && harness_status(&before)) {
            kern_return_t kr;

            /*
             * edu's own 28-bit mask: 256 MiB of bus space in all.  The
             * header names kIOReturnNotAligned for a chunk that gets no
             * contiguous segment; the core answers kIOReturnNoResources
             * when the space is short in total.  Either refuses; the
             * rollback is what matters here.
             */
            kr = apple_dext_register_dma(narrow, 0x10000, va(big), size,
                                         &bus, &len);
            CHECK_MSG(kr == kIOReturnNotAligned || kr == kIOReturnNoResources,
                      "512 MiB region in 256 MiB of bus space: %s",
                      apple_dext_strerror(kr));
            if (harness_status(&after)) {
                CHECK_EQ(after.dma_regions, before.dma_regions);
                CHECK_EQ(after.dma_region_bytes, before.dma_region_bytes);
            }
            /* Rolled back completely: the key is free, space is left. */
            CHECK_KR(apple_dext_register_dma(narrow, 0x10000, va(big), 4096,
                                             NULL, NULL), kIOReturnSuccess);
            CHECK_KR(apple_dext_unregister_dma(narrow, 0x10000),
                     kIOReturnSuccess);
            munmap(big, size);
        }
    }

    harness_section("more than 65,536 regions: kIOReturnNoSpace");
    for (i = 0; i < MAX_REGIONS; i++) {
        kern_return_t kr = apple_dext_register_dma(c, 0x1000000ull +
                                                   (uint64_t)i * 0x1000,
                                                   va(mem), 4096, NULL, NULL);

        if (kr != kIOReturnSuccess) {
            CHECK_KR(kr, kIOReturnSuccess);
            break;
        }
        ok++;
    }
    CHECK_EQ(ok, MAX_REGIONS);
    CHECK_KR(apple_dext_register_dma(c, 0x100000000ull, va(mem), 4096, NULL,
                                     NULL), kIOReturnNoSpace);
    CHECK_KR(apple_dext_get_device_status(c, &ds), kIOReturnSuccess);
    CHECK_EQ(ds.dma_regions, ok);
    /* The limit is per connection: another one still registers. */
    CHECK_KR(apple_dext_register_dma(narrow, 0x1000000ull, va(mem), 4096, NULL,
                                     NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_unregister_dma(narrow, 0x1000000ull),
             kIOReturnSuccess);
    /* One freed, one more fits. */
    CHECK_KR(apple_dext_unregister_dma(c, 0x1000000ull), kIOReturnSuccess);
    CHECK_KR(apple_dext_register_dma(c, 0x100000000ull, va(mem), 4096, NULL,
                                     NULL), kIOReturnSuccess);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * Fragment edu's 256 MiB of bus space into 16 MiB holes, then ask for
 * 64 MiB: enough bytes are free, but no contiguous segment.
 */
static void test_fragmented(io_connect_t c)
{
    enum { N = 15 };
    const uint64_t piece = 16ull << 20, want = 64ull << 20;
    uint64_t bus[N], kept[N], gap, prev;
    AppleDextStatus before, after;
    unsigned i, nkept = 0;
    uint8_t *mem;

    harness_section("no contiguous bus segment: kIOReturnNotAligned");
    mem = mmap(NULL, want, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!CHECK(mem != MAP_FAILED)) {
        return;
    }
    for (i = 0; i < N; i++) {
        if (!CHECK_KR(apple_dext_register_dma(c, 0x1000000ull * (i + 1),
                                              va(mem), piece, &bus[i], NULL),
                      kIOReturnSuccess)) {
            goto out;
        }
    }
    for (i = 0; i < N; i += 2) {
        CHECK_KR(apple_dext_unregister_dma(c, 0x1000000ull * (i + 1)),
                 kIOReturnSuccess);
    }
    for (i = 1; i < N; i += 2) {
        kept[nkept++] = bus[i];
    }
    /* The largest hole the kept regions leave within the 28-bit mask. */
    qsort(kept, nkept, sizeof(kept[0]), cmp_u64);
    gap = 0;
    prev = 0;
    for (i = 0; i < nkept; i++) {
        gap = kept[i] - prev > gap ? kept[i] - prev : gap;
        prev = kept[i] + piece;
    }
    gap = EDU_DMA_MASK + 1 - prev > gap ? EDU_DMA_MASK + 1 - prev : gap;
    if (gap >= want) {
        printf("# bus layout leaves a %llu MiB hole: case not reachable\n",
               (unsigned long long)(gap >> 20));
        goto out;
    }
    if (harness_status(&before)) {
        CHECK_KR(apple_dext_register_dma(c, 0x80000000ull, va(mem), want,
                                         NULL, NULL), kIOReturnNotAligned);
        if (harness_status(&after)) {
            CHECK_EQ(after.dma_regions, before.dma_regions);
        }
        CHECK_KR(apple_dext_unregister_dma(c, 0x80000000ull),
                 kIOReturnNotFound);
        /* What fits a hole still registers. */
        CHECK_KR(apple_dext_register_dma(c, 0x80000000ull, va(mem), piece,
                                         NULL, NULL), kIOReturnSuccess);
        CHECK_KR(apple_dext_unregister_dma(c, 0x80000000ull),
                 kIOReturnSuccess);
    }
out:
    for (i = 0; i < N; i++) {
        apple_dext_unregister_dma(c, 0x1000000ull * (i + 1));
    }
    munmap(mem, want);
}

static void test_per_connection(io_connect_t a, io_connect_t b, uint8_t *mem)
{
    uint64_t bus_a = 0, bus_b = 0, w = 0;
    AppleDextDeviceStatus ds;

    harness_section("regions are per connection");
    memset(mem, 0x42, 4096);
    CHECK_KR(apple_dext_register_dma(a, 0x20000, va(mem), 4096, &bus_a, NULL),
             kIOReturnSuccess);
    /* The same key on another connection is another region. */
    CHECK_KR(apple_dext_register_dma(b, 0x20000, va(mem), 4096, &bus_b, NULL),
             kIOReturnSuccess);
    CHECK(bus_a != bus_b);
    CHECK_KR(apple_dext_get_device_status(b, &ds), kIOReturnSuccess);
    CHECK_EQ(ds.dma_regions, 1);
    CHECK_KR(apple_dext_unregister_dma(a, 0x20000), kIOReturnSuccess);
    CHECK_KR(apple_dext_probe_dma(b, 0x20000, 0, &w), kIOReturnSuccess);
    CHECK_EQ(w, 0x4242424242424242ull);
    CHECK_KR(apple_dext_probe_dma(a, 0x20000, 0, &w), kIOReturnNotFound);
    /* A connection cannot remove another's region. */
    CHECK_KR(apple_dext_unregister_dma(a, 0x20000), kIOReturnNotFound);
    CHECK_KR(apple_dext_unregister_dma(b, 0x20000), kIOReturnSuccess);
}

int main(int argc, char **argv)
{
    io_connect_t wide, wide2, narrow;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    uint8_t *mem;

    /* These fill a device's whole bus space from one client. */
    setenv("HARNESS_DEXTD_ARGS", "--dma-share 100", 0);
    harness_init(argc, argv, DEVICES);
    mem = mmap(NULL, 16384, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    wide = harness_connect(0, WIDE_DEV, 0);
    wide2 = harness_connect(0, WIDE_DEV, 0);
    narrow = harness_connect_edu();
    if (!CHECK(mem != MAP_FAILED) || wide == IO_OBJECT_NULL ||
        wide2 == IO_OBJECT_NULL || narrow == IO_OBJECT_NULL ||
        !CHECK_KR(apple_dext_claim(wide), kIOReturnSuccess) ||
        !CHECK_KR(apple_dext_claim(wide2), kIOReturnSuccess) ||
        !CHECK_KR(apple_dext_claim(narrow), kIOReturnSuccess)) {
        return harness_finish();
    }
    test_per_connection(wide, wide2, mem);
    test_chunks(wide, 0);
    test_chunks(wide, 0x1000);
    test_chunks(wide, 0x2a8);
    test_fragmented(narrow);
    test_no_space(wide, narrow, mem);

    harness_section("disconnect releases 65,536 regions");
    apple_dext_disconnect(wide);
    apple_dext_disconnect(wide2);
    apple_dext_disconnect(narrow);
    if (harness_status(&st)) {
        CHECK_EQ(st.dma_regions, 0);
        CHECK_EQ(st.dma_region_bytes, 0);
        CHECK_EQ(st.sessions, 0);
    }
    munmap(mem, 16384);
    return harness_finish();
}
