/*
 * SPDX-License-Identifier: MIT
 *
 * BARs and MMIO: apple_dext_get_bar_info(), _map_bar(), _unmap_bar(),
 * _mmio_read(), _mmio_write() against edu's register BAR.
 */

#include <string.h>

#include "harness.h"
#include "edu.h"

static void test_bar_info(io_connect_t c)
{
    uint8_t idx = 0xa5, type = 0xa5;
    uint64_t size = 0;
    int bar;

    harness_section("apple_dext_get_bar_info()");
    CHECK_KR(apple_dext_get_bar_info(c, 0, &idx, &size, &type),
             kIOReturnSuccess);
    CHECK_EQ(idx, EDU_MEM_IDX);
    CHECK_EQ(size, EDU_BAR0_SIZE);
    CHECK_EQ(type, 0);
    /* Every output is optional. */
    CHECK_KR(apple_dext_get_bar_info(c, 0, NULL, NULL, NULL),
             kIOReturnSuccess);
    size = 0;
    CHECK_KR(apple_dext_get_bar_info(c, 0, NULL, &size, NULL),
             kIOReturnSuccess);
    CHECK_EQ(size, EDU_BAR0_SIZE);
    for (bar = 1; bar < 6; bar++) {
        CHECK_KR(apple_dext_get_bar_info(c, (uint8_t)bar, &idx, &size, &type),
                 kIOReturnNotFound);
    }
    CHECK_KR(apple_dext_get_bar_info(c, 6, &idx, &size, &type),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_get_bar_info(c, 255, &idx, &size, &type),
             kIOReturnBadArgument);
}

/*
 * Whether edu's BAR0 maps into this process.  Our emulated register BAR
 * never does (MMIO calls only).  A real edu's through VFIO does in
 * process; not through dextd, as the one fd that maps it is VFIO's device
 * fd, which also grants DMA, reset and interrupts and never goes to a
 * client.
 */
static bool bar0_mappable(void)
{
    return harness_real_devices() && !harness_is_unix();
}

/*
 * What a connection without a claim gets for mapping BAR0 before the
 * claimer has: a mappable BAR waits for the claimer (NotOpen), ours is
 * never mappable (Unsupported).  Over iokit the kernel hands every map
 * error back as BadArgument, so the transport cannot tell the two apart
 * without a claim; the contract has no memory BAR the dext will not map,
 * so it answers NotOpen.
 */
static IOReturn bar0_unclaimed_refusal(void)
{
    return bar0_mappable() || harness_is_iokit() ? kIOReturnNotOpen
                                                 : kIOReturnUnsupported;
}

/* Before any claim. */
static void test_map_bar(io_connect_t c)
{
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    uint8_t type = 0xa5;
    /* A mappable BAR waits for a claimer to map it first. */
    IOReturn bar0 = bar0_unclaimed_refusal();

    harness_section("apple_dext_map_bar(), _unmap_bar()");
    CHECK_KR(apple_dext_map_bar(c, 0, &addr, &size, &type), bar0);
    CHECK_KR(apple_dext_map_bar(c, 0, &addr, &size, NULL), bar0);
    CHECK_KR(apple_dext_map_bar(c, 1, &addr, &size, &type), kIOReturnNotFound);
    CHECK_KR(apple_dext_map_bar(c, 5, &addr, &size, &type), kIOReturnNotFound);
    CHECK_KR(apple_dext_map_bar(c, 6, &addr, &size, &type),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_map_bar(c, 0, NULL, &size, &type),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_map_bar(c, 0, &addr, NULL, &type),
             kIOReturnBadArgument);

    CHECK_KR(apple_dext_unmap_bar(c, 0, 0x7f0000001000ull),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_unmap_bar(c, 0, (mach_vm_address_t)(uintptr_t)&addr),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_unmap_bar(c, 0, 0), kIOReturnBadArgument);
    CHECK_KR(apple_dext_unmap_bar(c, 1, 0x7f0000001000ull),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_unmap_bar(c, 6, 0x7f0000001000ull),
             kIOReturnBadArgument);
}

/* Claimed: a mappable BAR0 reads and writes what the MMIO calls do. */
static void test_map_bar_claimed(io_connect_t c)
{
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    uint8_t type = 0xa5;
    volatile uint32_t *regs;

    harness_section("apple_dext_map_bar() of BAR0, claimed");
    if (!bar0_mappable()) {
        CHECK_KR(apple_dext_map_bar(c, 0, &addr, &size, &type),
                 kIOReturnUnsupported);
        return;
    }
    if (!CHECK_KR(apple_dext_map_bar(c, 0, &addr, &size, &type),
                  kIOReturnSuccess)) {
        return;
    }
    CHECK_EQ(size, EDU_BAR0_SIZE);
    CHECK_EQ(type, 0);
    regs = (volatile uint32_t *)(uintptr_t)addr;
    CHECK_EQ(regs[EDU_REG_ID / 4], edu_read32(c, EDU_REG_ID));
    edu_write32(c, EDU_REG_LIVENESS, 0x5aa5f00f);
    CHECK_EQ(regs[EDU_REG_LIVENESS / 4], (uint32_t)~0x5aa5f00fu);
    regs[EDU_REG_LIVENESS / 4] = 0x01234567;
    CHECK_EQ(edu_read32(c, EDU_REG_LIVENESS), (uint32_t)~0x01234567u);
    CHECK_EQ(regs[EDU_REG_LIVENESS / 4], edu_read32(c, EDU_REG_LIVENESS));
    CHECK_KR(apple_dext_unmap_bar(c, 0, addr), kIOReturnSuccess);
    CHECK_KR(apple_dext_unmap_bar(c, 0, addr), kIOReturnBadArgument);
}

static void test_mmio_errors(io_connect_t c)
{
    uint64_t v = 0;

    harness_section("MMIO argument errors");
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_REG_ID, 3, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_REG_ID, 0, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_REG_ID, 16, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_write(c, EDU_MEM_IDX, EDU_REG_LIVENESS, 5, 0),
             kIOReturnBadArgument);
    /* Misaligned for the width. */
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, 0x02, 4, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, 0x84, 8, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_write(c, EDU_MEM_IDX, 0x05, 2, 0),
             kIOReturnBadArgument);
    /* Past the BAR. */
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_BAR0_SIZE, 4, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_BAR0_SIZE - 4, 8, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_write(c, EDU_MEM_IDX, 1ull << 40, 4, 0),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, UINT64_MAX - 7, 8, &v),
             kIOReturnBadArgument);
    /* Memory indexes other than BAR0's. */
    CHECK_KR(apple_dext_mmio_read(c, 1, EDU_REG_ID, 4, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_write(c, 5, EDU_REG_LIVENESS, 4, 0),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_read(c, 255, EDU_REG_ID, 4, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_REG_ID, 4, NULL),
             kIOReturnBadArgument);
}

static void test_registers(io_connect_t c)
{
    static const uint32_t patterns[] = {
        0, 1, 0x12345678, 0xffffffff, 0x80000000, 0xa5a5a5a5,
    };
    uint32_t result = 0;
    uint64_t v = 0;
    size_t i;

    harness_section("edu identification and liveness");
    CHECK_EQ(edu_read32(c, EDU_REG_ID), EDU_ID_VALUE);
    for (i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        edu_write32(c, EDU_REG_LIVENESS, patterns[i]);
        CHECK_EQ(edu_read32(c, EDU_REG_LIVENESS), (uint32_t)~patterns[i]);
    }
    /* The ID register is read-only. */
    edu_write32(c, EDU_REG_ID, 0);
    CHECK_EQ(edu_read32(c, EDU_REG_ID), EDU_ID_VALUE);

    /* Below 0x80 only 4-byte accesses are valid; others are ignored. */
    edu_write32(c, EDU_REG_LIVENESS, 0x0f0f0f0f);
    CHECK_KR(apple_dext_mmio_write(c, EDU_MEM_IDX, EDU_REG_LIVENESS, 2,
                                   0x1111), kIOReturnSuccess);
    CHECK_KR(apple_dext_mmio_write(c, EDU_MEM_IDX, EDU_REG_LIVENESS, 1, 0x22),
             kIOReturnSuccess);
    CHECK_EQ(edu_read32(c, EDU_REG_LIVENESS), 0xf0f0f0f0);

    harness_section("edu factorial, polled");
    if (edu_factorial(c, 10, &result)) {
        CHECK_EQ(result, 3628800);
    }
    if (edu_factorial(c, 12, &result)) {
        CHECK_EQ(result, 479001600);
    }
    if (edu_factorial(c, 0, &result)) {
        CHECK_EQ(result, 1);
    }
    if (edu_factorial(c, 5, &result)) {
        CHECK_EQ(result, 120);
    }

    harness_section("8-byte registers from 0x80");
    edu_write64(c, EDU_REG_DMA_SRC, 0x123456789abcdef0ull);
    CHECK_EQ(edu_read64(c, EDU_REG_DMA_SRC), 0x123456789abcdef0ull);
    /* A 4-byte read there returns the low half. */
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_REG_DMA_SRC, 4, &v),
             kIOReturnSuccess);
    CHECK_EQ(v, 0x9abcdef0);
    edu_write32(c, EDU_REG_DMA_COUNT, 0x40);
    CHECK_EQ(edu_read64(c, EDU_REG_DMA_COUNT), 0x40);
    /* An unimplemented register near the end of the BAR reads as ones. */
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_BAR0_SIZE - 8, 8, &v),
             kIOReturnSuccess);
    CHECK_EQ(v, UINT64_MAX);
    edu_write64(c, EDU_REG_DMA_SRC, 0);
    edu_write64(c, EDU_REG_DMA_COUNT, 0);
}

int main(int argc, char **argv)
{
    io_connect_t c, other;
    uint64_t v = 0;

    harness_init(argc, argv, NULL);
    c = harness_connect_edu();
    if (c == IO_OBJECT_NULL) {
        return harness_finish();
    }
    /* BAR info needs no claim. */
    test_bar_info(c);

    harness_section("MMIO before any claim");
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_REG_ID, 4, &v),
             kIOReturnNotOpen);
    CHECK_KR(apple_dext_mmio_write(c, EDU_MEM_IDX, EDU_REG_LIVENESS, 4, 1),
             kIOReturnNotOpen);
    test_map_bar(c);

    CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
    test_map_bar_claimed(c);
    test_mmio_errors(c);
    test_registers(c);

    harness_section("MMIO from a second, unclaimed connection");
    other = harness_connect_edu();
    if (other != IO_OBJECT_NULL) {
        edu_write32(c, EDU_REG_LIVENESS, 0x600d600d);
        CHECK_EQ(edu_read32(other, EDU_REG_LIVENESS), (uint32_t)~0x600d600du);
        /*
         * Our BAR0 cannot be mapped: still refused.  A real one the
         * claimer has mapped, but VFIO's device fd behind it cannot be
         * reopened read-only for a connection without a claim.  Over
         * iokit, NotOpen either way (see bar0_unclaimed_refusal()).
         */
        CHECK_KR(apple_dext_map_bar(other, 0, &(mach_vm_address_t){ 0 },
                                    &(mach_vm_size_t){ 0 }, NULL),
                 bar0_unclaimed_refusal());
        apple_dext_disconnect(other);
    }
    apple_dext_disconnect(c);
    return harness_finish();
}
