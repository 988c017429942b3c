/*
 * SPDX-License-Identifier: MIT
 *
 * apple_dext_terminate(): the device is handed back to the OS; it is no
 * longer listed or connectable, and every connection to it fails with
 * kIOReturnNoDevice, while the other devices of the same dext carry on.
 */

#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "edu.h"
#include "api-util.h"

/* A device of its own to terminate, next to the default edu. */
#define DEVICES  "edu+edu,bdf=00:07.0"
#define VICTIM   7

/* Every call on a connection to a terminated device. */
static void check_no_device(io_connect_t c, void *mem)
{
    uint64_t v = 0, p[4] = { 0 };
    AppleDextDeviceInfo id;
    uint8_t buf[16];

    CHECK_KR(apple_dext_get_identity(c, &id), kIOReturnNoDevice);
    CHECK_KR(apple_dext_claim(c), kIOReturnNoDevice);
    CHECK_KR(apple_dext_config_read(c, 0, 4, &v), kIOReturnNoDevice);
    CHECK_KR(apple_dext_config_write(c, 0x3c, 1, 1), kIOReturnNoDevice);
    CHECK_KR(apple_dext_config_read_block(c, 0, buf, sizeof(buf)),
             kIOReturnNoDevice);
    CHECK_KR(apple_dext_config_write_block(c, 0x3c, buf, 1),
             kIOReturnNoDevice);
    CHECK_KR(apple_dext_config_read_raw(c, 0, buf, sizeof(buf)),
             kIOReturnNoDevice);
    CHECK_KR(apple_dext_get_bar_info(c, 0, NULL, NULL, NULL),
             kIOReturnNoDevice);
    CHECK_KR(apple_dext_map_bar(c, 0, &(mach_vm_address_t){ 0 },
                                &(mach_vm_size_t){ 0 }, NULL),
             kIOReturnNoDevice);
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_REG_ID, 4, &v),
             kIOReturnNoDevice);
    CHECK_KR(apple_dext_mmio_write(c, EDU_MEM_IDX, EDU_REG_LIVENESS, 4, 0),
             kIOReturnNoDevice);
    CHECK_KR(apple_dext_register_dma(c, 0x90000, (uint64_t)(uintptr_t)mem,
                                     4096, NULL, NULL), kIOReturnNoDevice);
    CHECK_KR(apple_dext_unregister_dma(c, 0x10000), kIOReturnNoDevice);
    CHECK_KR(apple_dext_probe_dma(c, 0x10000, 0, &v), kIOReturnNoDevice);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 0, NULL),
             kIOReturnNoDevice);
    CHECK_KR(apple_dext_map_dma_buffer(c, &(mach_vm_address_t){ 0 },
                                       &(mach_vm_size_t){ 0 }),
             kIOReturnNoDevice);
    CHECK_KR(apple_dext_setup_interrupts(c, NULL), kIOReturnNoDevice);
    CHECK_KR(apple_dext_read_pending_irqs(c, p), kIOReturnNoDevice);
    CHECK_KR(apple_dext_set_irq_mask(c, p), kIOReturnNoDevice);
    CHECK_KR(apple_dext_reset_device(c), kIOReturnNoDevice);
    CHECK_KR(apple_dext_terminate(c), kIOReturnNoDevice);
}

int main(int argc, char **argv)
{
    io_connect_t keep, victim, other, fresh = IO_OBJECT_NULL;
    AppleDextInterruptNotify *n = NULL;
    AppleDextDeviceStatus ds;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    uint32_t count = 0;
    uint8_t *mem;

    harness_init(argc, argv, DEVICES);
    mem = api_dma_alloc(16384);
    if (!CHECK(mem != MAP_FAILED)) {
        return harness_finish();
    }
    keep = harness_connect_edu();
    victim = harness_connect(0, VICTIM, 0);
    other = harness_connect(0, VICTIM, 0);
    if (keep == IO_OBJECT_NULL || victim == IO_OBJECT_NULL ||
        other == IO_OBJECT_NULL) {
        return harness_finish();
    }

    harness_section("before terminate");
    CHECK(harness_listed(VICTIM, &count));
    CHECK_EQ(count, 2);
    CHECK_KR(apple_dext_claim(keep), kIOReturnSuccess);
    /*
     * The terminating connection holds the device's only claim (Terminate
     * needs one, and is refused while others hold claims: test-access.c),
     * a region and interrupts, all of which must go with the device; the
     * second connection to it has not claimed.
     */
    CHECK_KR(apple_dext_claim(victim), kIOReturnSuccess);
    CHECK_KR(apple_dext_register_dma(victim, 0x10000,
                                     (uint64_t)(uintptr_t)mem, 16384, NULL,
                                     NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_setup_interrupts(victim, NULL), kIOReturnSuccess);
    n = apple_dext_interrupt_notify_create_fd(victim);
    CHECK(n != NULL);
    CHECK_EQ(edu_read32(other, EDU_REG_ID), EDU_ID_VALUE);

    harness_section("terminate");
    CHECK_KR(apple_dext_terminate(victim), kIOReturnSuccess);
    CHECK(!harness_listed(VICTIM, &count));
    CHECK_EQ(count, 1);
    CHECK(harness_listed(EDU_DEV, &count));
    if (harness_status(&st)) {
        CHECK_EQ(st.devices, 1);
    }

    harness_section("the terminating connection gets kIOReturnNoDevice");
    check_no_device(victim, mem);
    CHECK_KR(apple_dext_get_device_status(victim, &ds), kIOReturnNoDevice);
    if (n != NULL) {
        CHECK_KR(apple_dext_interrupt_notify_rearm(n), kIOReturnNoDevice);
        apple_dext_interrupt_notify_destroy(n);
    }
    CHECK(apple_dext_interrupt_notify_create_fd(victim) == NULL);
    harness_section("another connection to it gets kIOReturnNoDevice");
    check_no_device(other, mem);
    CHECK_KR(apple_dext_get_device_status(other, &ds), kIOReturnNoDevice);
    CHECK(apple_dext_interrupt_notify_create_fd(other) == NULL);

    harness_section("it can no longer be connected to");
    CHECK_KR(apple_dext_connect_target(harness_target(), 0, VICTIM, 0,
                                       &fresh), kIOReturnNotFound);
    CHECK_EQ(fresh, IO_OBJECT_NULL);
    CHECK_EQ(apple_dext_connect(0, VICTIM, 0), IO_OBJECT_NULL);

    harness_section("the other device carries on");
    CHECK_EQ(edu_read32(keep, EDU_REG_ID), EDU_ID_VALUE);
    edu_write32(keep, EDU_REG_LIVENESS, 0x11111111);
    CHECK_EQ(edu_read32(keep, EDU_REG_LIVENESS), 0xeeeeeeee);
    CHECK_KR(apple_dext_register_dma(keep, 0x10000, (uint64_t)(uintptr_t)mem,
                                     16384, NULL, NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_get_device_status(keep, &ds), kIOReturnSuccess);
    CHECK(!ds.terminated);
    CHECK_EQ(ds.dma_regions, 1);

    harness_section("closing the dead connections releases everything");
    apple_dext_disconnect(victim);
    apple_dext_disconnect(other);
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, 1);
        CHECK_EQ(st.claims, 1);
        CHECK_EQ(st.dma_regions, 1);
        CHECK_EQ(st.irq_sessions, 0);
    }
    apple_dext_disconnect(keep);
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, 0);
        CHECK_EQ(st.claims, 0);
        CHECK_EQ(st.dma_regions, 0);
    }
    /* The surviving device is still connectable afterwards. */
    keep = harness_connect_edu();
    if (keep != IO_OBJECT_NULL) {
        CHECK_KR(apple_dext_claim(keep), kIOReturnSuccess);
        CHECK_EQ(edu_read32(keep, EDU_REG_ID), EDU_ID_VALUE);
        apple_dext_disconnect(keep);
    }
    munmap(mem, 16384);
    return harness_finish();
}
