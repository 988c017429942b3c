/*
 * SPDX-License-Identifier: MIT
 *
 * Isolation between user clients of one device: a client cannot reach
 * another's DMA regions (unregister, probe), DMA buffer or interrupt
 * page, iovas are per client, and a client that has not claimed the
 * device cannot do what the contract reserves for a claimer.  Over
 * dextd, the socket is 0600.
 *
 * Device DMA is not attributed to clients: like the DART, every session
 * of a device shares the device's bus address space (see
 * docs/reliability.md).  What is pinned here is that a bus address is
 * live only while its region is: once unregistered, device DMA to it
 * faults and the memory behind it is never touched.
 */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "harness.h"
#include "edu.h"
#include "api-util.h"

#define IOVA 0x200000ull
#define SIZE 8192

int main(int argc, char **argv)
{
    io_connect_t a, b, c;
    uint8_t *ma, *mb;
    uint64_t bus_a = 0, bus_b = 0, len, w;
    mach_vm_address_t addr_a, addr_b;
    mach_vm_size_t size;
    volatile uint64_t *page_a, *page_b;
    AppleDextStatus before, after;
    uint64_t pend[4], mask[4] = { 1, 0, 0, 0 };
    bool counted;

    harness_init(argc, argv, NULL);
    a = harness_connect_edu();
    b = harness_connect_edu();
    c = harness_connect_edu();
    ma = api_dma_alloc(SIZE);
    mb = api_dma_alloc(SIZE);
    if (!a || !b || !c || !CHECK(ma != MAP_FAILED && mb != MAP_FAILED)) {
        return harness_finish();
    }
    memset(ma, 0xaa, SIZE);
    memset(mb, 0xbb, SIZE);

    if (harness_is_unix()) {
        struct stat st;

        harness_section("the socket is 0600");
        if (CHECK(stat(harness_socket_path(), &st) == 0)) {
            CHECK_EQ(st.st_mode & 0777, 0600);
        }
    }

    harness_section("DMA regions are per client");
    CHECK_KR(apple_dext_claim(a), kIOReturnSuccess);
    CHECK_KR(apple_dext_claim(b), kIOReturnSuccess);
    CHECK_KR(apple_dext_register_dma(a, IOVA, (uintptr_t)ma, SIZE, &bus_a,
                                     &len), kIOReturnSuccess);
    CHECK_KR(apple_dext_unregister_dma(b, IOVA), kIOReturnNotFound);
    CHECK_KR(apple_dext_probe_dma(b, IOVA, 0, &w), kIOReturnNotFound);
    CHECK_KR(apple_dext_unregister_dma(c, IOVA), kIOReturnNotFound);
    CHECK_KR(apple_dext_probe_dma(c, IOVA, 0, &w), kIOReturnNotFound);
    /* The same iova in another client is another region. */
    CHECK_KR(apple_dext_register_dma(b, IOVA, (uintptr_t)mb, SIZE, &bus_b,
                                     &len), kIOReturnSuccess);
    CHECK(bus_a != bus_b);
    CHECK(bus_b >= bus_a + SIZE || bus_a >= bus_b + SIZE);
    CHECK_KR(apple_dext_probe_dma(a, IOVA, 0, &w), kIOReturnSuccess);
    CHECK_EQ(w, 0xaaaaaaaaaaaaaaaaull);
    CHECK_KR(apple_dext_probe_dma(b, IOVA, 0, &w), kIOReturnSuccess);
    CHECK_EQ(w, 0xbbbbbbbbbbbbbbbbull);
    CHECK_KR(apple_dext_unregister_dma(b, IOVA), kIOReturnSuccess);
    CHECK_KR(apple_dext_probe_dma(a, IOVA, 0, &w), kIOReturnSuccess);

    harness_section("a dead bus address faults, memory untouched");
    /* Over iokit the dext keeps no counters: memory is checked alone. */
    counted = harness_status(&before);
    memset(mb, 0xbb, SIZE);
    edu_dma(a, EDU_DMA_BUF_ADDR, bus_b, 64, EDU_DMA_TO_RAM);
    edu_dma(a, bus_b, EDU_DMA_BUF_ADDR, 64, 0);
    harness_status(&after);
    /* A real IOMMU's faults go to the kernel's log, not to the dext. */
    if (counted && !harness_real_devices()) {
        CHECK_EQ(after.iommu_faults, before.iommu_faults + 2);
    }
    CHECK(mb[0] == 0xbb && mb[63] == 0xbb);

    harness_section("DMA buffers are per client");
    CHECK_KR(apple_dext_allocate_dma_buffer(a, 4096, 0, NULL),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_map_dma_buffer(b, &addr_b, &size), kIOReturnNotReady);
    CHECK_KR(apple_dext_map_dma_buffer(c, &addr_b, &size), kIOReturnNotReady);
    if (CHECK_KR(apple_dext_map_dma_buffer(a, &addr_a, &size),
                 kIOReturnSuccess)) {
        memset((void *)(uintptr_t)addr_a, 0x5a, 4096);
    }
    CHECK_KR(apple_dext_allocate_dma_buffer(b, 4096, 0, NULL),
             kIOReturnSuccess);
    if (CHECK_KR(apple_dext_map_dma_buffer(b, &addr_b, &size),
                 kIOReturnSuccess)) {
        CHECK(addr_b != addr_a);
        CHECK_EQ(((uint8_t *)(uintptr_t)addr_b)[0], 0);
        memset((void *)(uintptr_t)addr_b, 0x77, 4096);
        CHECK_EQ(((uint8_t *)(uintptr_t)addr_a)[100], 0x5a);
    }

    harness_section("interrupt pages are per client");
    CHECK_KR(apple_dext_setup_interrupts(a, NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_map_irq_page(b, &page_b), kIOReturnNotReady);
    CHECK_KR(apple_dext_read_pending_irqs(b, pend), kIOReturnNotReady);
    CHECK_KR(apple_dext_set_irq_mask(b, mask), kIOReturnNotReady);
    CHECK_KR(apple_dext_map_irq_page(c, &page_b), kIOReturnNotReady);
    CHECK_KR(apple_dext_setup_interrupts(b, NULL), kIOReturnSuccess);
    if (CHECK_KR(apple_dext_map_irq_page(a, &page_a), kIOReturnSuccess) &&
        CHECK_KR(apple_dext_map_irq_page(b, &page_b), kIOReturnSuccess)) {
        CHECK(page_a != page_b);
        /* A masks everything through its page; B still gets interrupts. */
        page_a[4] = 0;
        api_raise_msi(a, 1);
        CHECK_KR(apple_dext_read_pending_irqs(b, pend), kIOReturnSuccess);
        CHECK_EQ(pend[0], 1);
        CHECK_KR(apple_dext_read_pending_irqs(a, pend), kIOReturnSuccess);
        CHECK_EQ(pend[0], 0);
    }

    harness_section("what needs a claim, without one");
    CHECK_KR(apple_dext_register_dma(c, IOVA, (uintptr_t)mb, SIZE, NULL,
                                     NULL), kIOReturnNotOpen);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 0, NULL),
             kIOReturnNotOpen);
    CHECK_KR(apple_dext_setup_interrupts(c, NULL), kIOReturnNotOpen);
    CHECK_KR(apple_dext_reset_device(c), kIOReturnNotOpen);

    apple_dext_disconnect(a);
    apple_dext_disconnect(b);
    apple_dext_disconnect(c);
    if (harness_status(&after)) {
        CHECK_EQ(after.sessions, 0);
        CHECK_EQ(after.dma_buffers, 0);
        CHECK_EQ(after.irq_sessions, 0);
    }
    munmap(ma, SIZE);
    munmap(mb, SIZE);
    return harness_finish();
}
