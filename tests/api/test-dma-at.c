/*
 * SPDX-License-Identifier: MIT
 *
 * apple_dext_register_dma_at(): DMA regions at a bus address the caller
 * chooses.  The region is reached at exactly that address (edu's DMA
 * engine both ways), its bus pages are refused to every other region and
 * the DMA buffer, the address must lie in the device's window and share
 * the memory's offset within a 16 KiB bus page, and a contract-only dext
 * (as the real one) answers Unsupported.
 *
 * With --contract-only (before the harness's own arguments) the program
 * runs against a dext in contract-only mode.
 */

#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api-util.h"

#define BUS_PAGE  0x1000ull      /* chosen bus addresses: 4 KiB pages */
#define BUS_A     0x4000000ull      /* page bases, inside edu's 28 bits */
#define BUS_B     0x5000000ull
#define SIZE      16384

static uint64_t va(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

/* Memory every dext reaches (api-util.h). */
static uint8_t *map_pages(size_t size)
{
    void *p = api_dma_alloc(size);

    if (!CHECK(p != MAP_FAILED)) {
        abort();
    }
    return p;
}

/* The bus address in the bus page at @base matching @p's page offset. */
static uint64_t bus_for(uint64_t base, const void *p)
{
    return base + (va(p) & (BUS_PAGE - 1));
}

static void test_success_and_dma(io_connect_t c, uint8_t *a, uint8_t *b)
{
    uint64_t bus_a = bus_for(BUS_A, a), bus_b = bus_for(BUS_B, b);
    AppleDextDeviceStatus st;
    uint64_t word, w;

    harness_section("register at a bus address; the device reaches it there");
    harness_fill_random(a, SIZE);
    memset(b, 0, SIZE);
    if (!CHECK_KR(apple_dext_register_dma_at(c, bus_a, va(a), SIZE, bus_a),
                  kIOReturnSuccess) ||
        !CHECK_KR(apple_dext_register_dma_at(c, bus_b, va(b), SIZE, bus_b),
                  kIOReturnSuccess)) {
        return;
    }
    if (CHECK_KR(apple_dext_get_device_status(c, &st), kIOReturnSuccess)) {
        CHECK_EQ(st.dma_regions, 2);
    }
    memcpy(&w, a + 8, sizeof(w));
    if (CHECK_KR(apple_dext_probe_dma(c, bus_a, 8, &word), kIOReturnSuccess)) {
        CHECK_EQ(word, w);
    }
    /* A -> device buffer -> B, at the requested addresses and inside. */
    if (edu_dma(c, bus_a + 100, EDU_DMA_BUF_ADDR, 4096, 0) &&
        edu_dma(c, EDU_DMA_BUF_ADDR, bus_b + 200, 4096, EDU_DMA_TO_RAM)) {
        CHECK(memcmp(a + 100, b + 200, 4096) == 0);
        CHECK(b[199] == 0 && b[200 + 4096] == 0);
    }
    /* The last bytes of the region. */
    if (edu_dma(c, EDU_DMA_BUF_ADDR, bus_b + SIZE - 16, 16, EDU_DMA_TO_RAM)) {
        CHECK(memcmp(a + 100, b + SIZE - 16, 16) == 0);
    }
}

static void test_overlaps(io_connect_t c, uint8_t *a, uint8_t *m)
{
    uint64_t bus_a = bus_for(BUS_A, a);
    uint64_t bus_m = bus_for(BUS_A, m), bus, len;
    AppleDextDMABuffer buf;

    harness_section("bus pages in use are refused");
    /* The same bus page as A, from other memory with the same offset. */
    CHECK_KR(apple_dext_register_dma_at(c, 0x900000, va(m), 4096, bus_m),
             kIOReturnBusy);
    /* A range that ends inside A. */
    CHECK_KR(apple_dext_register_dma_at(c, 0x900000, va(m), 2 * SIZE,
                                        bus_m - BUS_PAGE),
             kIOReturnBusy);
    /* The key is taken already. */
    CHECK_KR(apple_dext_register_dma_at(c, bus_a, va(m), 4096,
                                        bus_for(0x6000000, m)),
             kIOReturnStillOpen);
    /* A region the dext placed, and the DMA buffer. */
    if (CHECK_KR(apple_dext_register_dma(c, 0xa00000, va(m), 4096, &bus, &len),
                 kIOReturnSuccess)) {
        CHECK_KR(apple_dext_register_dma_at(c, 0xb00000, va(m), 4096, bus),
                 kIOReturnBusy);
        CHECK_KR(apple_dext_unregister_dma(c, 0xa00000), kIOReturnSuccess);
    }
    if (CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 0, &buf),
                 kIOReturnSuccess)) {
        uint64_t at = (buf.bus_addr & ~(BUS_PAGE - 1)) +
                      (va(m) & (BUS_PAGE - 1));

        CHECK_KR(apple_dext_register_dma_at(c, 0xb00000, va(m), 4096, at),
                 kIOReturnBusy);
        CHECK_KR(apple_dext_free_dma_buffer(c), kIOReturnSuccess);
    }
}

static void test_window_and_alignment(io_connect_t c, uint8_t *m)
{
    uint64_t off = va(m) & (BUS_PAGE - 1);

    harness_section("outside the device's window, misaligned");
    /* Past edu's 28-bit mask, across its top, below 1 MiB, wrapping. */
    CHECK_KR(apple_dext_register_dma_at(c, 0xc00000, va(m), 4096,
                                        (1ull << 40) + off),
             kIOReturnNoResources);
    CHECK_KR(apple_dext_register_dma_at(c, 0xc00000, va(m), 2 * SIZE,
                                        EDU_DMA_MASK + 1 - BUS_PAGE + off),
             kIOReturnNoResources);
    CHECK_KR(apple_dext_register_dma_at(c, 0xc00000, va(m), 4096,
                                        BUS_PAGE + off),
             kIOReturnNoResources);
    CHECK_KR(apple_dext_register_dma_at(c, 0xc00000, va(m), 2 * SIZE,
                                        ~(BUS_PAGE - 1) + off),
             kIOReturnNoResources);
    /* Another offset within the bus page than the memory's. */
    CHECK_KR(apple_dext_register_dma_at(c, 0xc00000, va(m), 4096,
                                        0x7000000 + ((off + 0x10) &
                                                     (BUS_PAGE - 1))),
             kIOReturnNotAligned);
    /* Argument errors as apple_dext_register_dma(). */
    CHECK_KR(apple_dext_register_dma_at(c, 0xc00000, va(m), 0,
                                        0x7000000 + off),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_register_dma_at(c, 0xc00000, 0, 4096, 0x7000000),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_register_dma_at(IO_OBJECT_NULL, 0xc00000, va(m),
                                        4096, 0x7000000 + off),
             kIOReturnBadArgument);
}

static void test_claim_and_reuse(io_connect_t c, uint8_t *a)
{
    uint64_t bus_a = bus_for(BUS_A, a);
    io_connect_t other = harness_connect_edu();

    harness_section("a claim is needed; unregistered bus pages are free again");
    if (CHECK(other != IO_OBJECT_NULL)) {
        CHECK_KR(apple_dext_register_dma_at(other, 0xd00000, va(a), 4096,
                                            bus_for(0x8000000, a)),
                 kIOReturnNotOpen);
        apple_dext_claim(other);
        /* Bus space is the device's: another connection meets A. */
        CHECK_KR(apple_dext_register_dma_at(other, 0xd00000, va(a), 4096,
                                            bus_a),
                 kIOReturnBusy);
        apple_dext_disconnect(other);
    }
    CHECK_KR(apple_dext_unregister_dma(c, bus_a), kIOReturnSuccess);
    CHECK_KR(apple_dext_register_dma_at(c, 0xe00000, va(a), SIZE, bus_a),
             kIOReturnSuccess);
    edu_dma(c, bus_a, EDU_DMA_BUF_ADDR, 64, 0);
    CHECK_KR(apple_dext_unregister_dma(c, 0xe00000), kIOReturnSuccess);
}

static void test_contract_only(void)
{
    io_connect_t c = harness_connect_edu();
    uint8_t *m = map_pages(SIZE);

    harness_section("a contract-only dext (as the macOS one) refuses");
    if (CHECK(c != IO_OBJECT_NULL) &&
        CHECK_KR(apple_dext_claim(c), kIOReturnSuccess)) {
        CHECK_KR(apple_dext_register_dma_at(c, 0x100000, va(m), SIZE,
                                            bus_for(BUS_A, m)),
                 kIOReturnUnsupported);
    }
    apple_dext_disconnect(c);
    munmap(m, SIZE);
}

int main(int argc, char **argv)
{
    bool contract_only = argc > 1 && strcmp(argv[1], "--contract-only") == 0;
    uint8_t *a, *b, *m;
    io_connect_t c;

    if (contract_only) {
        argv[1] = argv[0];
        harness_init(argc - 1, argv + 1, "contract-only+edu");
        test_contract_only();
        return harness_finish();
    }
    harness_init(argc, argv, NULL);
    c = harness_connect_edu();
    if (!CHECK(c != IO_OBJECT_NULL) ||
        !CHECK_KR(apple_dext_claim(c), kIOReturnSuccess)) {
        return harness_finish();
    }
    a = map_pages(SIZE + 4096);
    b = map_pages(SIZE);
    /* Memory at A's offset in a bus page, for the overlaps. */
    m = map_pages(2 * SIZE + BUS_PAGE);
    m += ((va(a) - va(m)) & (BUS_PAGE - 1));
    test_success_and_dma(c, a, b);
    test_overlaps(c, a, m);
    test_window_and_alignment(c, m);
    test_claim_and_reuse(c, a);
    apple_dext_disconnect(c);
    return harness_finish();
}
