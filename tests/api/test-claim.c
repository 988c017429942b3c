/*
 * SPDX-License-Identifier: MIT
 *
 * The shared claim: apple_dext_claim(), what needs it (kIOReturnNotOpen
 * before), what it does to the command register, and its reference
 * counting across connections.
 */

#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "edu.h"
#include "api-util.h"
#include "libdext/pci-regs.h"

static uint64_t command_register(io_connect_t c)
{
    uint64_t v = 0;

    CHECK_KR(apple_dext_config_read(c, DEXT_PCI_COMMAND, 2, &v), kIOReturnSuccess);
    return v;
}

static void device_status(io_connect_t c, AppleDextDeviceStatus *ds)
{
    memset(ds, 0xa5, sizeof(*ds));
    CHECK_KR(apple_dext_get_device_status(c, ds), kIOReturnSuccess);
}

/* Everything documented to need a claim, on an unclaimed connection. */
static void check_needs_claim(io_connect_t c, void *mem, size_t size)
{
    AppleDextDMABuffer db;
    uint64_t bus = 0x1234, len = 0x1234;
    uint32_t nvec = 77;

    CHECK_KR(apple_dext_register_dma(c, 0x10000, (uint64_t)(uintptr_t)mem,
                                     size, &bus, &len), kIOReturnNotOpen);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 0, &db),
             kIOReturnNotOpen);
    CHECK_KR(apple_dext_setup_interrupts(c, &nvec), kIOReturnNotOpen);
    CHECK_KR(apple_dext_reset_device(c), kIOReturnNotOpen);
}

int main(int argc, char **argv)
{
    AppleDextDeviceStatus ds;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    io_connect_t a, b, c;
    uint64_t v = 0;
    void *mem;

    harness_init(argc, argv, NULL);
    mem = api_dma_alloc(16384);
    if (!CHECK(mem != MAP_FAILED)) {
        return harness_finish();
    }
    memset(mem, 0x5a, 16384);

    harness_section("before any claim");
    a = harness_connect_edu();
    if (a == IO_OBJECT_NULL) {
        return harness_finish();
    }
    check_needs_claim(a, mem, 16384);
    /* Nothing was registered by the refused calls. */
    CHECK_KR(apple_dext_unregister_dma(a, 0x10000), kIOReturnNotFound);
    CHECK_KR(apple_dext_map_dma_buffer(a, &(mach_vm_address_t){ 0 },
                                       &(mach_vm_size_t){ 0 }),
             kIOReturnNotReady);
    device_status(a, &ds);
    CHECK_EQ(ds.claims, 0);
    CHECK_EQ(ds.sessions, 1);
    CHECK(!ds.claimed);
    /* A fresh device: the OS has not enabled decode or mastering. */
    v = command_register(a);
    CHECK_EQ(v & (DEXT_PCI_COMMAND_MEMORY | DEXT_PCI_COMMAND_MASTER), 0);

    harness_section("claim sets Memory Space and Bus Master Enable");
    CHECK_KR(apple_dext_claim(a), kIOReturnSuccess);
    v = command_register(a);
    CHECK_EQ(v & DEXT_PCI_COMMAND_MEMORY, DEXT_PCI_COMMAND_MEMORY);
    CHECK_EQ(v & DEXT_PCI_COMMAND_MASTER, DEXT_PCI_COMMAND_MASTER);
    device_status(a, &ds);
    CHECK_EQ(ds.claims, 1);
    CHECK(ds.claimed);

    harness_section("claiming twice changes nothing");
    CHECK_KR(apple_dext_claim(a), kIOReturnSuccess);
    device_status(a, &ds);
    CHECK_EQ(ds.claims, 1);
    if (harness_status(&st)) {
        CHECK_EQ(st.claims, 1);
    }
    /* Claimed: what needed it now works. */
    CHECK_EQ(edu_read32(a, EDU_REG_ID), EDU_ID_VALUE);
    CHECK_KR(apple_dext_register_dma(a, 0x10000, (uint64_t)(uintptr_t)mem,
                                     16384, NULL, NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_unregister_dma(a, 0x10000), kIOReturnSuccess);

    harness_section("a second connection shares the claim");
    b = harness_connect_edu();
    if (b == IO_OBJECT_NULL) {
        return harness_finish();
    }
    device_status(b, &ds);
    CHECK_EQ(ds.claims, 1);
    CHECK_EQ(ds.sessions, 2);
    CHECK(!ds.claimed);
    /* b has not claimed: its own claim-only calls are refused even
     * though the device is open... */
    check_needs_claim(b, mem, 16384);
    /* ...but MMIO only needs the device open, which a's claim did. */
    CHECK_EQ(edu_read32(b, EDU_REG_ID), EDU_ID_VALUE);

    CHECK_KR(apple_dext_claim(b), kIOReturnSuccess);
    device_status(b, &ds);
    CHECK_EQ(ds.claims, 2);
    CHECK(ds.claimed);
    if (harness_status(&st)) {
        CHECK_EQ(st.claims, 2);
        CHECK_EQ(st.sessions, 2);
    }

    harness_section("who holds the claim");
    {
        uint32_t pids[4] = { 0 }, count = 0;

        /* Both claims are this process's, as the dext sees it. */
        CHECK_KR(apple_dext_get_claimers(a, pids, 4, &count),
                 kIOReturnSuccess);
        CHECK_EQ(count, 2);
        CHECK_EQ(pids[0], (uint32_t)getpid());
        CHECK_EQ(pids[1], (uint32_t)getpid());
        pids[0] = 0;
        CHECK_KR(apple_dext_get_claimers(b, pids, 1, &count),
                 kIOReturnSuccess);
        CHECK_EQ(count, 2);
        CHECK_EQ(pids[0], (uint32_t)getpid());
        CHECK_KR(apple_dext_get_claimers(b, NULL, 0, &count),
                 kIOReturnSuccess);
        CHECK_EQ(count, 2);
        CHECK_KR(apple_dext_get_claimers(b, NULL, 1, &count),
                 kIOReturnBadArgument);
        CHECK_KR(apple_dext_get_claimers(b, pids, 1, NULL),
                 kIOReturnBadArgument);
        CHECK_KR(apple_dext_get_claimers(b, pids, 1024, &count),
                 kIOReturnBadArgument);
    }

    harness_section("the claim outlives one claimer");
    apple_dext_disconnect(a);
    device_status(b, &ds);
    CHECK_EQ(ds.claims, 1);
    CHECK_EQ(ds.sessions, 1);
    CHECK(ds.claimed);
    if (harness_status(&st)) {
        CHECK_EQ(st.claims, 1);
        CHECK_EQ(st.sessions, 1);
    }
    edu_write32(b, EDU_REG_LIVENESS, 0x12345678);
    CHECK_EQ(edu_read32(b, EDU_REG_LIVENESS), (uint32_t)~0x12345678u);
    v = command_register(b);
    CHECK_EQ(v & (DEXT_PCI_COMMAND_MEMORY | DEXT_PCI_COMMAND_MASTER),
             DEXT_PCI_COMMAND_MEMORY | DEXT_PCI_COMMAND_MASTER);
    CHECK_KR(apple_dext_register_dma(b, 0x10000, (uint64_t)(uintptr_t)mem,
                                     16384, NULL, NULL), kIOReturnSuccess);
    device_status(b, &ds);
    CHECK_EQ(ds.dma_regions, 1);

    harness_section("the last claimer leaving releases the device");
    c = harness_connect_edu();
    apple_dext_disconnect(b);
    if (c != IO_OBJECT_NULL) {
        device_status(c, &ds);
        CHECK_EQ(ds.claims, 0);
        CHECK_EQ(ds.sessions, 1);
        /* Nobody holds the device open any more. */
        CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_REG_ID, 4, &v),
                 kIOReturnNotOpen);
        /* b's region went with b. */
        if (harness_status(&st)) {
            CHECK_EQ(st.claims, 0);
            CHECK_EQ(st.dma_regions, 0);
        }
        /* And a new claim opens it again. */
        CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
        CHECK_EQ(edu_read32(c, EDU_REG_ID), EDU_ID_VALUE);
        /* The device kept its state while nobody had it open. */
        CHECK_EQ(edu_read32(c, EDU_REG_LIVENESS), (uint32_t)~0x12345678u);
        apple_dext_disconnect(c);
    }
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, 0);
        CHECK_EQ(st.claims, 0);
    }
    munmap(mem, 16384);
    return harness_finish();
}
