/*
 * SPDX-License-Identifier: MIT
 *
 * apple_dext_reset_device(): the device returns to its power-on register
 * state, while what the dext restores (command register, BARs,
 * interrupt line, MSI) and what it keeps (DMA regions, interrupt state)
 * survive.
 */

#define _GNU_SOURCE
#include <poll.h>
#include <string.h>
#include <sys/mman.h>

#include "libdext/pci-regs.h"
#include "harness.h"
#include "edu.h"
#include "api-util.h"

#define PCI_CMD_BITS    0x6         /* Memory Space + Bus Master Enable */
#define PCI_INT_LINE    0x3c
#define IOVA            0x10000
#define BUF_SIZE        16384

static uint64_t cfg_read(io_connect_t c, uint64_t off, uint64_t width)
{
    uint64_t v = 0xdeadbeef;

    CHECK_KR(apple_dext_config_read(c, off, width, &v), kIOReturnSuccess);
    return v;
}

static uint64_t find_msi_cap(io_connect_t c)
{
    uint64_t ptr = cfg_read(c, 0x34, 1) & 0xfc;
    int guard;

    for (guard = 0; ptr >= 0x40 && ptr < 256 && guard < 48; guard++) {
        if (cfg_read(c, ptr, 1) == 0x05) {
            return ptr;
        }
        ptr = cfg_read(c, ptr + 1, 1) & 0xfc;
    }
    return 0;
}

static uint64_t read_pending(io_connect_t c)
{
    uint64_t p[4] = { ~0ull };

    CHECK_KR(apple_dext_read_pending_irqs(c, p), kIOReturnSuccess);
    return p[0];
}

int main(int argc, char **argv)
{
    AppleDextDeviceStatus ds;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    AppleDextInterruptNotify *n = NULL;
    volatile uint64_t *page = NULL;
    uint8_t raw_before[256], raw_after[256];
    uint64_t bus = 0, w = 0, msi = 0;
    uint32_t result = 0;
    io_connect_t c, other;
    uint8_t *mem, *back;
    struct pollfd pfd = { .fd = -1, .events = POLLIN };

    harness_init(argc, argv, NULL);
    c = harness_connect_edu();
    other = harness_connect_edu();
    if (c == IO_OBJECT_NULL || other == IO_OBJECT_NULL) {
        return harness_finish();
    }
    CHECK_KR(apple_dext_reset_device(c), kIOReturnNotOpen);
    if (!CHECK_KR(apple_dext_claim(c), kIOReturnSuccess)) {
        return harness_finish();
    }
    /* Another connection's claim does not count for this one. */
    CHECK_KR(apple_dext_reset_device(other), kIOReturnNotOpen);
    {
        uint32_t method = 99;

        /* Nothing reset yet, refused resets included. */
        CHECK_KR(apple_dext_get_last_reset(other, &method), kIOReturnSuccess);
        CHECK_EQ(method, APPLE_DEXT_RESET_NONE);
        CHECK_KR(apple_dext_get_last_reset(other, NULL),
                 kIOReturnBadArgument);
    }

    harness_section("state before the reset");
    mem = api_dma_alloc(BUF_SIZE);
    back = api_dma_alloc(BUF_SIZE);
    if (!CHECK(mem != MAP_FAILED && back != MAP_FAILED)) {
        return harness_finish();
    }
    harness_fill_random(mem, BUF_SIZE);
    CHECK_KR(apple_dext_register_dma(c, IOVA, (uint64_t)(uintptr_t)mem,
                                     BUF_SIZE, &bus, NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_setup_interrupts(c, NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_map_irq_page(c, &page), kIOReturnSuccess);
    n = apple_dext_interrupt_notify_create_fd(c);
    CHECK(n != NULL);

    CHECK_KR(apple_dext_config_write(c, PCI_INT_LINE, 1, 0x0a),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_config_write(c, 0x10, 4, 0xfe800000),
             kIOReturnSuccess);
    /* The MSI message, as an OS programs it: part of the MSI setup the
     * header says a reset restores. */
    msi = find_msi_cap(c);
    if (CHECK(msi != 0)) {
        CHECK_KR(apple_dext_config_write(c, msi + 4, 4, 0xfee00000),
                 kIOReturnSuccess);
        CHECK_KR(apple_dext_config_write(c, msi + 8, 4, 0), kIOReturnSuccess);
        CHECK_KR(apple_dext_config_write(c, msi + 12, 2, 0x4041),
                 kIOReturnSuccess);
    }
    CHECK_KR(apple_dext_config_read_raw(c, 0, raw_before, sizeof(raw_before)),
             kIOReturnSuccess);
    CHECK_EQ(cfg_read(c, DEXT_PCI_COMMAND, 2) & PCI_CMD_BITS, PCI_CMD_BITS);

    edu_write32(c, EDU_REG_LIVENESS, 0x13572468);
    CHECK_EQ(edu_read32(c, EDU_REG_LIVENESS), (uint32_t)~0x13572468u);
    edu_write32(c, EDU_REG_STATUS, EDU_STATUS_IRQFACT);
    edu_dma(c, bus, EDU_DMA_BUF_ADDR, 4096, 0);
    edu_write64(c, EDU_REG_DMA_SRC, 0x1234);
    harness_status(&st);
    edu_write32(c, EDU_REG_IRQ_RAISE, 0x10);        /* left unacknowledged */
    api_wait_irqs_raised(st.irqs_raised + 1);
    CHECK_EQ(edu_read32(c, EDU_REG_IRQ_STATUS), 0x10);
    CHECK_EQ(read_pending(c), 1);
    if (n != NULL) {
        /*
         * The arming made at creation fired for that interrupt; its
         * completion may still be on its way (over IOKit, through a
         * dispatch queue).  Take it before arming again, so that no
         * stale one lands after a later rearm's look.
         */
        pfd.fd = apple_dext_interrupt_notify_get_fd(n);
        CHECK_EQ(poll(&pfd, 1, HARNESS_WAIT_MS), 1);
        CHECK_KR(apple_dext_interrupt_notify_rearm(n), kIOReturnSuccess);
    }
    /* A factorial in flight as the reset comes: let it race. */
    edu_write32(c, EDU_REG_FACTORIAL, 12);
    if (harness_real_devices()) {
        /*
         * QEMU's edu has no reset handler: a reset neither stops its
         * factorial nor waits for it.  Let it end and its message arrive
         * first, so that every interrupt after the reset is a new one.
         */
        edu_wait_clear(c, EDU_REG_STATUS, 4, EDU_STATUS_COMPUTING);
        api_wait_irqs_raised(st.irqs_raised + 2);
    }

    harness_section("reset_device");
    if (!CHECK_KR(apple_dext_reset_device(c), kIOReturnSuccess)) {
        return harness_finish();
    }
    {
        uint32_t method = 99;

        /*
         * Any connection may ask; our edu resets at function level.  QEMU's
         * has no FLR: alone behind a root port the kernel resets it by its
         * bus, which the dext reports as hot.
         */
        CHECK_KR(apple_dext_get_last_reset(other, &method), kIOReturnSuccess);
        if (harness_real_devices()) {
            CHECK_MSG(method == APPLE_DEXT_RESET_FUNCTION ||
                      method == APPLE_DEXT_RESET_HOT, "reset method %u",
                      method);
        } else {
            CHECK_EQ(method, APPLE_DEXT_RESET_FUNCTION);
        }
    }

    harness_section("edu registers are back at power-on values");
    CHECK_EQ(edu_read32(c, EDU_REG_ID), EDU_ID_VALUE);
    if (harness_real_devices()) {
        /*
         * QEMU's edu has no reset handler: its BAR0 registers survive
         * the reset.  Clear by hand what the rest of the test expects
         * of power-on: no factorial interrupt, nothing to acknowledge.
         */
        edu_write32(c, EDU_REG_STATUS, 0);
        edu_write32(c, EDU_REG_IRQ_ACK, 0xffffffff);
    } else {
        /* Power-on liveness is 0 (QEMU's edu), whatever was written. */
        CHECK_EQ(edu_read32(c, EDU_REG_LIVENESS), 0);
        CHECK_EQ(edu_read32(c, EDU_REG_STATUS), 0);
        CHECK_EQ(edu_read32(c, EDU_REG_IRQ_STATUS), 0);
        CHECK_EQ(edu_read32(c, EDU_REG_FACTORIAL), 0);
        CHECK_EQ(edu_read64(c, EDU_REG_DMA_SRC), 0);
        CHECK_EQ(edu_read64(c, EDU_REG_DMA_CMD), 0);
    }
    /* And they work again. */
    edu_write32(c, EDU_REG_LIVENESS, 1);
    CHECK_EQ(edu_read32(c, EDU_REG_LIVENESS), 0xfffffffe);
    if (edu_factorial(c, 7, &result)) {
        CHECK_EQ(result, 5040);
    }

    harness_section("config space the dext restores");
    CHECK_EQ(cfg_read(c, DEXT_PCI_COMMAND, 2) & PCI_CMD_BITS, PCI_CMD_BITS);
    CHECK_EQ(cfg_read(c, PCI_INT_LINE, 1), 0x0a);
    CHECK_KR(apple_dext_config_read_raw(c, 0, raw_after, sizeof(raw_after)),
             kIOReturnSuccess);
    /* Identity, command, BARs, MSI, all as before (status may differ). */
    CHECK(memcmp(raw_before, raw_after, 6) == 0);
    CHECK(memcmp(raw_before + 8, raw_after + 8, 0x40 - 8) == 0);
    if (msi != 0) {
        CHECK_EQ(cfg_read(c, msi + 2, 2), raw_before[msi + 2] |
                 raw_before[msi + 3] << 8);
        CHECK_EQ(cfg_read(c, msi + 4, 4), 0xfee00000);
        CHECK_EQ(cfg_read(c, msi + 12, 2), 0x4041);
    }
    CHECK(memcmp(raw_before + 0x40, raw_after + 0x40,
                 sizeof(raw_before) - 0x40) == 0);
    CHECK_EQ(cfg_read(c, 0x10, 4), 0);

    harness_section("DMA regions are kept");
    CHECK_KR(apple_dext_get_device_status(c, &ds), kIOReturnSuccess);
    CHECK_EQ(ds.dma_regions, 1);
    CHECK(ds.claimed);
    CHECK_EQ(ds.irq_vectors, 1);
    CHECK_KR(apple_dext_probe_dma(c, IOVA, 0, &w), kIOReturnSuccess);
    CHECK(memcmp(&w, mem, 8) == 0);
    /* The reset cleared the device buffer: read it back as zeros... */
    memset(back, 0xff, 4096);
    CHECK_KR(apple_dext_register_dma(c, IOVA + 0x10000,
                                     (uint64_t)(uintptr_t)back, BUF_SIZE,
                                     &w, NULL), kIOReturnSuccess);
    if (edu_dma(c, EDU_DMA_BUF_ADDR, w, 4096, EDU_DMA_TO_RAM) &&
        !harness_real_devices()) {
        /* Not QEMU's edu: without a reset handler it keeps its buffer. */
        uint8_t zero[4096] = { 0 };

        CHECK(memcmp(back, zero, 4096) == 0);
    }
    /* ...and the old bus address still reaches the region. */
    if (edu_dma(c, bus, EDU_DMA_BUF_ADDR, 4096, 0) &&
        edu_dma(c, EDU_DMA_BUF_ADDR, w, 4096, EDU_DMA_TO_RAM)) {
        CHECK(memcmp(back, mem, 4096) == 0);
    }

    harness_section("interrupts still work: MSI re-enabled, state kept");
    /*
     * The factorial that raced the reset had its interrupt enabled; the
     * reset waits for it, message included.  Clear that first, so what
     * follows comes from after the reset.
     */
    read_pending(c);
    if (n != NULL) {
        /* The factorial's completion too, first (see above). */
        pfd.fd = apple_dext_interrupt_notify_get_fd(n);
        pfd.events = POLLIN;
        CHECK_EQ(poll(&pfd, 1, HARNESS_WAIT_MS), 1);
        CHECK_KR(apple_dext_interrupt_notify_rearm(n), kIOReturnSuccess);
        CHECK_EQ(poll(&pfd, 1, 0), 0);
    }
    api_raise_msi(c, 1);
    CHECK_EQ(read_pending(c), 1);
    if (n != NULL) {
        CHECK_EQ(poll(&pfd, 1, HARNESS_WAIT_MS), 1);
    }
    /* A mask set before a reset still applies after it. */
    {
        const uint64_t off[4] = { 0 }, on[4] = { 1 };

        CHECK_KR(apple_dext_set_irq_mask(c, off), kIOReturnSuccess);
        /* And a notification armed before a reset fires after it. */
        read_pending(c);
        if (n != NULL) {
            CHECK_KR(apple_dext_interrupt_notify_rearm(n), kIOReturnSuccess);
        }
        CHECK_KR(apple_dext_reset_device(c), kIOReturnSuccess);
        CHECK_EQ(page[4], 0);
        api_raise_msi(c, 1);
        CHECK_EQ(read_pending(c), 0);
        CHECK_KR(apple_dext_set_irq_mask(c, on), kIOReturnSuccess);
        api_raise_msi(c, 1);
        CHECK_EQ(page[0], 1);
        CHECK_EQ(read_pending(c), 1);
        if (n != NULL) {
            CHECK_EQ(poll(&pfd, 1, HARNESS_WAIT_MS), 1);
        }
    }

    harness_section("a second reset in a row");
    CHECK_KR(apple_dext_reset_device(c), kIOReturnSuccess);
    CHECK_EQ(edu_read32(c, EDU_REG_ID), EDU_ID_VALUE);
    CHECK_EQ(cfg_read(c, DEXT_PCI_COMMAND, 2) & PCI_CMD_BITS, PCI_CMD_BITS);
    /* A claimer that is not the opener may reset too. */
    CHECK_KR(apple_dext_claim(other), kIOReturnSuccess);
    CHECK_KR(apple_dext_reset_device(other), kIOReturnSuccess);
    CHECK_EQ(edu_read32(other, EDU_REG_ID), EDU_ID_VALUE);

    apple_dext_interrupt_notify_destroy(n);
    apple_dext_disconnect(other);
    apple_dext_disconnect(c);
    munmap(mem, BUF_SIZE);
    munmap(back, BUF_SIZE);
    return harness_finish();
}
