/*
 * SPDX-License-Identifier: MIT
 *
 * Links and calls every public function of apple-dext-client.h, through
 * libdext.so and (a second build of this file) through libdext.a, so a
 * function missing from the export list or from either library fails to
 * link here.  check-exports.py makes sure this file names every function
 * the header declares.
 *
 * Each handle-taking function is called with IO_OBJECT_NULL (must be
 * refused as the header says); the rest run against $DEXT_TARGET
 * (inproc:edu when run by meson) far enough to prove the call arrives.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apple-dext-client.h"
#include "check.h"

/* A null handle is a bad argument, as the header says. */
#define BAD(expr) CHECK_KR((expr), kIOReturnBadArgument)

static void handler(void *opaque)
{
    (void)opaque;
}

static void log_fn(void *opaque, int level, const char *msg)
{
    (void)opaque;
    (void)level;
    (void)msg;
}

int main(void)
{
    const io_connect_t n = IO_OBJECT_NULL;
    AppleDextDeviceInfo info;
    AppleDextDMABuffer buf;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    AppleDextDeviceStatus dst;
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    volatile uint64_t *page = NULL;
    uint64_t v = 0, words[4] = { 0 };
    uint8_t b8 = 0, cfg[4];
    uint32_t u32 = 0;
    io_connect_t c = IO_OBJECT_NULL;
    const char *target = getenv("DEXT_TARGET");

    apple_dext_set_log_handler(log_fn, NULL);

    /* Handle-taking functions: a null handle is a bad argument. */
    BAD(apple_dext_claim(n));
    BAD(apple_dext_register_dma(n, 0, 0x1000, 0x1000, &v, &v));
    BAD(apple_dext_unregister_dma(n, 0));
    BAD(apple_dext_probe_dma(n, 0, 0, &v));
    BAD(apple_dext_config_read(n, 0, 4, &v));
    BAD(apple_dext_config_write(n, 0, 4, 0));
    BAD(apple_dext_config_read_block(n, 0, cfg, sizeof(cfg)));
    BAD(apple_dext_config_write_block(n, 0, cfg, sizeof(cfg)));
    BAD(apple_dext_config_read_raw(n, 0, cfg, sizeof(cfg)));
    BAD(apple_dext_get_bar_info(n, 0, &b8, &v, &b8));
    BAD(apple_dext_map_bar(n, 0, &addr, &size, &b8));
    BAD(apple_dext_unmap_bar(n, 0, 0x1000));
    BAD(apple_dext_mmio_read(n, 0, 0, 4, &v));
    BAD(apple_dext_mmio_write(n, 0, 0, 4, 0));
    BAD(apple_dext_setup_interrupts(n, &u32));
    BAD(apple_dext_reset_device(n));
    BAD(apple_dext_set_irq_mask(n, words));
    BAD(apple_dext_read_pending_irqs(n, words));
    BAD(apple_dext_drain_pending_irqs(n, words));
    BAD(apple_dext_map_irq_page(n, &page));
    BAD(apple_dext_get_identity(n, &info));
    BAD(apple_dext_allocate_dma_buffer(n, 4096, 0, &buf));
    BAD(apple_dext_free_dma_buffer(n));
    BAD(apple_dext_map_dma_buffer(n, &addr, &size));
    BAD(apple_dext_unmap_dma_buffer(n, 0x1000));
    BAD(apple_dext_terminate(n));
    BAD(apple_dext_get_device_status(n, &dst));
    {
        uint32_t pid, nclaim;

        BAD(apple_dext_get_claimers(n, &pid, 1, &nclaim));
        BAD(apple_dext_get_last_reset(n, &pid));
        BAD(apple_dext_register_dma_at(n, 0x100000, 0x1000, 4096, 0x100000));
        {
            int fd;
            uint64_t off, sz;

            BAD(apple_dext_map_bar_fd(n, 2, &fd, &off, &sz, NULL));
        }
        BAD(apple_dext_set_timeouts(-2, -1));
    }
    BAD(apple_dext_interrupt_notify_rearm(NULL));
    CHECK(apple_dext_interrupt_notify_create(n, handler, NULL) == NULL);
    CHECK(apple_dext_interrupt_notify_create_fd(n) == NULL);
    CHECK(apple_dext_interrupt_notify_get_fd(NULL) == -1);
    apple_dext_interrupt_notify_destroy(NULL);
    apple_dext_disconnect(n);

    /* Functions without a handle. */
    CHECK(strstr(apple_dext_strerror(kIOReturnNotOpen), "NotOpen") != NULL);
    CHECK(apple_dext_last_error_detail() != NULL);
    CHECK(apple_dext_default_socket_path()[0] != '\0');
    CHECK(apple_dext_default_target()[0] != '\0');
    if (target == NULL) {
        fprintf(stderr, "DEXT_TARGET is not set: skipping the live calls\n");
    } else {
        uint32_t count = 0;

        CHECK(apple_dext_list_devices(target, &info, 1, &count) ==
              kIOReturnSuccess && count >= 1);
        CHECK(apple_dext_get_status(target, &st) == kIOReturnSuccess ||
              apple_dext_get_status(target, &st) == kIOReturnUnsupported);
        CHECK(apple_dext_connect_target(target, info.bus, info.device,
                                        info.function, &c) ==
              kIOReturnSuccess);
        apple_dext_disconnect(c);
        c = apple_dext_connect(info.bus, info.device, info.function);
        CHECK(c != IO_OBJECT_NULL);
        apple_dext_disconnect(c);
    }
    apple_dext_set_log_handler(NULL, NULL);

    return harness_finish();
}
