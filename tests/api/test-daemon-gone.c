/*
 * SPDX-License-Identifier: MIT
 *
 * The daemon going away under connected clients: dextd must still shut
 * down cleanly on SIGTERM (exit 0, socket removed) while clients hold
 * claims, DMA and interrupts, and every later call must fail with
 * kIOReturnNotResponding rather than hang or crash.  Unix transport only.
 */

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "edu.h"

static atomic_uint handler_calls;

static void handler(void *opaque)
{
    atomic_fetch_add(&handler_calls, 1);
}

/* Every call that needs the daemon, on a connection it served. */
static void check_dead(io_connect_t c, void *mem)
{
    uint64_t v = 0, p[4] = { 1, 0, 0, 0 };
    AppleDextDeviceStatus ds;
    AppleDextDeviceInfo id;
    uint8_t buf[16];

    CHECK_KR(apple_dext_get_identity(c, &id), kIOReturnNotResponding);
    CHECK_KR(apple_dext_claim(c), kIOReturnNotResponding);
    CHECK_KR(apple_dext_config_read(c, 0, 4, &v), kIOReturnNotResponding);
    CHECK_KR(apple_dext_config_write(c, 0x3c, 1, 1), kIOReturnNotResponding);
    CHECK_KR(apple_dext_config_read_block(c, 0, buf, sizeof(buf)),
             kIOReturnNotResponding);
    CHECK_KR(apple_dext_config_write_block(c, 0x3c, buf, 1),
             kIOReturnNotResponding);
    CHECK_KR(apple_dext_config_read_raw(c, 0, buf, sizeof(buf)),
             kIOReturnNotResponding);
    CHECK_KR(apple_dext_get_bar_info(c, 0, NULL, NULL, NULL),
             kIOReturnNotResponding);
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_REG_ID, 4, &v),
             kIOReturnNotResponding);
    CHECK_KR(apple_dext_mmio_write(c, EDU_MEM_IDX, EDU_REG_LIVENESS, 4, 0),
             kIOReturnNotResponding);
    CHECK_KR(apple_dext_register_dma(c, 0x90000, (uint64_t)(uintptr_t)mem,
                                     4096, NULL, NULL),
             kIOReturnNotResponding);
    CHECK_KR(apple_dext_unregister_dma(c, 0x10000), kIOReturnNotResponding);
    CHECK_KR(apple_dext_probe_dma(c, 0x10000, 0, &v), kIOReturnNotResponding);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 0, NULL),
             kIOReturnNotResponding);
    CHECK_KR(apple_dext_free_dma_buffer(c), kIOReturnNotResponding);
    CHECK_KR(apple_dext_setup_interrupts(c, NULL), kIOReturnNotResponding);
    CHECK_KR(apple_dext_read_pending_irqs(c, p), kIOReturnNotResponding);
    CHECK_KR(apple_dext_set_irq_mask(c, p), kIOReturnNotResponding);
    CHECK_KR(apple_dext_reset_device(c), kIOReturnNotResponding);
    CHECK_KR(apple_dext_get_device_status(c, &ds), kIOReturnNotResponding);
    CHECK_KR(apple_dext_terminate(c), kIOReturnNotResponding);
    CHECK(apple_dext_interrupt_notify_create_fd(c) == NULL);
}

int main(int argc, char **argv)
{
    AppleDextInterruptNotify *fdn, *cbn;
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    AppleDextDeviceInfo list[4];
    io_connect_t a, b, fresh = IO_OBJECT_NULL;
    uint32_t count = 0;
    uint8_t *mem;

    harness_init(argc, argv, NULL);
    if (!harness_is_unix()) {
        harness_skip("an in-process dext cannot go away: unix transport only");
    }
    mem = mmap(NULL, 16384, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!CHECK(mem != MAP_FAILED)) {
        return harness_finish();
    }

    harness_section("clients holding everything");
    a = harness_connect_edu();
    b = harness_connect_edu();
    if (a == IO_OBJECT_NULL || b == IO_OBJECT_NULL) {
        return harness_finish();
    }
    CHECK_KR(apple_dext_claim(a), kIOReturnSuccess);
    CHECK_KR(apple_dext_register_dma(a, 0x10000, (uint64_t)(uintptr_t)mem,
                                     16384, NULL, NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_allocate_dma_buffer(a, 8192, 0, NULL),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_map_dma_buffer(a, &addr, &size), kIOReturnSuccess);
    CHECK_KR(apple_dext_setup_interrupts(a, NULL), kIOReturnSuccess);
    fdn = apple_dext_interrupt_notify_create_fd(a);
    cbn = apple_dext_interrupt_notify_create(a, handler, NULL);
    CHECK(fdn != NULL && cbn != NULL);
    CHECK_EQ(edu_read32(b, EDU_REG_ID), EDU_ID_VALUE);
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, 2);
    }

    harness_section("SIGTERM with clients connected");
    harness_stop_daemon();

    harness_section("every call now fails with kIOReturnNotResponding");
    check_dead(a, mem);
    check_dead(b, mem);
    if (fdn != NULL) {
        CHECK_KR(apple_dext_interrupt_notify_rearm(fdn),
                 kIOReturnNotResponding);
    }
    if (cbn != NULL) {
        CHECK_KR(apple_dext_interrupt_notify_rearm(cbn),
                 kIOReturnNotResponding);
    }
    /* The connection stays dead: the same answer again. */
    CHECK_KR(apple_dext_claim(a), kIOReturnNotResponding);

    harness_section("the target is unreachable");
    CHECK_KR(apple_dext_connect_target(harness_target(), EDU_BUS, EDU_DEV,
                                       EDU_FN, &fresh),
             kIOReturnNotResponding);
    CHECK_EQ(fresh, IO_OBJECT_NULL);
    CHECK_EQ(apple_dext_connect(EDU_BUS, EDU_DEV, EDU_FN), IO_OBJECT_NULL);
    CHECK_KR(apple_dext_list_devices(harness_target(), list, 4, &count),
             kIOReturnNotResponding);
    CHECK_KR(apple_dext_get_status(harness_target(), &st),
             kIOReturnNotResponding);

    harness_section("teardown still works");
    apple_dext_interrupt_notify_destroy(fdn);
    apple_dext_interrupt_notify_destroy(cbn);
    /* Whether a local unmap still succeeds is not specified; it must
     * merely not crash.  Disconnect unmaps what is left. */
    if (addr != 0) {
        apple_dext_unmap_dma_buffer(a, addr);
    }
    apple_dext_disconnect(a);
    apple_dext_disconnect(b);
    CHECK_KR(apple_dext_claim(a), kIOReturnBadArgument);
    /*
     * Whether the daemon's death is signalled to the handler is not
     * specified, but once is enough: more means the notification thread
     * spins on a dead wake fd.
     */
    CHECK_MSG(atomic_load(&handler_calls) <= 1, "notification handler ran "
              "%u times after the daemon went", atomic_load(&handler_calls));
    munmap(mem, 16384);
    return harness_finish();
}
