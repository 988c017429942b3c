/*
 * SPDX-License-Identifier: MIT
 *
 * The library's fast paths and their fallbacks.  The test's dext runs in
 * contract-only mode (as the real dext today: Unsupported for every
 * selector >= 64) and keeps its interrupt state page to itself
 * ("no-irq-page": the contract's dext shares it as memory type 7, but a
 * dext that cannot must still be drained), and a second, in-process dext
 * with the extensions serves as the reference.  Block config reads and
 * writes and the pending-interrupt drain must give the same results both
 * ways.
 */

#define _GNU_SOURCE
#include <string.h>

#include "harness.h"
#include "ivshmem.h"

#define REFERENCE_TARGET "inproc:ivshmem"

static io_connect_t connect_claimed(const char *target)
{
    io_connect_t c = IO_OBJECT_NULL;

    if (!CHECK_KR(apple_dext_connect_target(target, IVSHMEM_BUS, IVSHMEM_DEV,
                                            IVSHMEM_FN, &c),
                  kIOReturnSuccess)) {
        return IO_OBJECT_NULL;
    }
    CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
    return c;
}

static void test_extensions_refused(io_connect_t c)
{
    AppleDextDeviceStatus st;
    volatile uint64_t *page = NULL;
    uint8_t raw[16];

    harness_section("contract-only dext refuses the extensions");
    CHECK_KR(apple_dext_get_device_status(c, &st), kIOReturnUnsupported);
    /* Raw reads have no per-access equivalent (BARs are synthesized). */
    CHECK_KR(apple_dext_config_read_raw(c, 0x10, raw, sizeof(raw)),
             kIOReturnUnsupported);
    /* The page, shared or not, exists once SetupInterrupts has run. */
    CHECK_KR(apple_dext_map_irq_page(c, &page), kIOReturnNotReady);
}

static void test_block_config(io_connect_t c, io_connect_t ref)
{
    static uint8_t got[4096], want[4096];
    uint64_t v = 0;
    uint8_t line[3] = { 0x5a, 0xa5, 0x3c };
    uint32_t off;

    harness_section("block config access falls back to per-access calls");
    memset(got, 0xee, sizeof(got));
    memset(want, 0x11, sizeof(want));
    CHECK_KR(apple_dext_config_read_block(c, 0, got, sizeof(got)),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_config_read_block(ref, 0, want, sizeof(want)),
             kIOReturnSuccess);
    CHECK(memcmp(got, want, sizeof(got)) == 0);
    /* And the same as the seed's dword reads. */
    for (off = 0; off < sizeof(got); off += 4) {
        uint32_t w;

        if (!CHECK_KR(apple_dext_config_read(c, off, 4, &v),
                      kIOReturnSuccess)) {
            break;
        }
        memcpy(&w, got + off, 4);
        if (!CHECK_EQ(w, v)) {
            break;
        }
    }
    /* Unaligned offsets and lengths: byte, word and dword accesses. */
    CHECK_KR(apple_dext_config_read_block(c, 1, got, 13), kIOReturnSuccess);
    CHECK_KR(apple_dext_config_read_block(ref, 1, want, 13),
             kIOReturnSuccess);
    CHECK(memcmp(got, want, 13) == 0);

    /* Writes: interrupt line (RW) and pin (RO) in one block. */
    CHECK_KR(apple_dext_config_write_block(c, 0x3c, line, 2),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_config_write_block(ref, 0x3c, line, 2),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_config_read_block(c, 0x3c, got, 4), kIOReturnSuccess);
    CHECK_KR(apple_dext_config_read_block(ref, 0x3c, want, 4),
             kIOReturnSuccess);
    CHECK_EQ(got[0], 0x5a);
    CHECK(memcmp(got, want, 4) == 0);
    CHECK_KR(apple_dext_config_write_block(c, 0x3c, line + 2, 1),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_config_read(c, 0x3c, 1, &v), kIOReturnSuccess);
    CHECK_EQ(v, 0x3c);
}

static void fire(io_connect_t c, uint32_t v)
{
    CHECK_KR(apple_dext_mmio_write(c, IVSHMEM_MEM_REGS, IVSHMEM_DOORBELL, 4,
                                   v), kIOReturnSuccess);
}

static void test_drain(io_connect_t c, io_connect_t ref)
{
    static const uint32_t vecs[] = { 0, 1, 63, 64, 130, 200, 255 };
    uint64_t got[4], want[4];
    volatile uint64_t *page = NULL;
    uint32_t n = 0, i, round;

    harness_section("interrupt drain falls back to CheckInterrupt");
    CHECK_KR(apple_dext_setup_interrupts(c, &n), kIOReturnSuccess);
    CHECK_EQ(n, 256);
    CHECK_KR(apple_dext_setup_interrupts(ref, &n), kIOReturnSuccess);
    CHECK_KR(apple_dext_map_irq_page(c, &page), kIOReturnUnsupported);
    CHECK_KR(apple_dext_map_irq_page(ref, &page), kIOReturnSuccess);
    /* Asked once: the answer is cached, the result the same. */
    CHECK_KR(apple_dext_map_irq_page(c, &page), kIOReturnUnsupported);

    for (round = 0; round < 3; round++) {
        for (i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
            if ((i + round) % 2 == 0) {
                fire(c, vecs[i]);
                fire(ref, vecs[i]);
            }
        }
        memset(got, 0xff, sizeof(got));
        memset(want, 0, sizeof(want));
        CHECK_KR(apple_dext_drain_pending_irqs(c, got), kIOReturnSuccess);
        CHECK_KR(apple_dext_drain_pending_irqs(ref, want), kIOReturnSuccess);
        CHECK(memcmp(got, want, sizeof(got)) == 0);
        CHECK((want[0] | want[1] | want[2] | want[3]) != 0);
        /* Read-and-clear both ways. */
        CHECK_KR(apple_dext_drain_pending_irqs(c, got), kIOReturnSuccess);
        CHECK_EQ(got[0] | got[1] | got[2] | got[3], 0);
    }
}

int main(int argc, char **argv)
{
    io_connect_t c, ref;

    harness_init(argc, argv, "contract-only+no-irq-page+ivshmem");
    c = connect_claimed(harness_target());
    ref = connect_claimed(REFERENCE_TARGET);
    if (c == IO_OBJECT_NULL || ref == IO_OBJECT_NULL) {
        return harness_finish();
    }
    test_extensions_refused(c);
    test_block_config(c, ref);
    test_drain(c, ref);
    apple_dext_disconnect(ref);
    apple_dext_disconnect(c);
    return harness_finish();
}
