/*
 * SPDX-License-Identifier: MIT
 *
 * PCI configuration space: apple_dext_config_read(), _config_write(),
 * _config_read_block(), _config_write_block(), _config_read_raw(), with
 * the BAR hiding of the contract and every argument error.
 */

#include <string.h>

#include "libdext/pci-regs.h"
#include "harness.h"
#include "edu.h"

#define CONFIG_SIZE      256       /* edu: conventional config space */
#define PCI_CAP_POINTER  0x34
#define PCI_INT_LINE     0x3c
#define PCI_INT_PIN      0x3d
#define PCI_CACHE_LINE   0x0c

static uint64_t cfg_read(io_connect_t c, uint64_t off, uint64_t width)
{
    uint64_t v = 0xdeadbeef;

    CHECK_KR(apple_dext_config_read(c, off, width, &v), kIOReturnSuccess);
    return v;
}

/*
 * What a block read must return: the seed's sequence of naturally
 * aligned reads, widest first, through apple_dext_config_read().  Its
 * own splitting loop on purpose: a reference shares no code with what
 * it checks.
 */
static bool reference_read(io_connect_t c, uint64_t off, uint8_t *dst,
                           size_t len)
{
    while (len > 0) {
        uint64_t w = 4, v = 0;

        while ((off & (w - 1)) != 0 || w > len) {
            w >>= 1;
        }
        if (!CHECK_KR(apple_dext_config_read(c, off, w, &v),
                      kIOReturnSuccess)) {
            return false;
        }
        for (uint64_t i = 0; i < w; i++) {
            dst[i] = (uint8_t)(v >> (8 * i));
        }
        dst += w;
        off += w;
        len -= w;
    }
    return true;
}

static void test_read_widths(io_connect_t c)
{
    harness_section("config reads of 1, 2 and 4 bytes");
    CHECK_EQ(cfg_read(c, 0x00, 4), (EDU_DEVICE_ID << 16) | EDU_VENDOR_ID);
    CHECK_EQ(cfg_read(c, 0x00, 2), EDU_VENDOR_ID);
    CHECK_EQ(cfg_read(c, 0x02, 2), EDU_DEVICE_ID);
    CHECK_EQ(cfg_read(c, 0x00, 1), EDU_VENDOR_ID & 0xff);
    CHECK_EQ(cfg_read(c, 0x01, 1), EDU_VENDOR_ID >> 8);
    CHECK_EQ(cfg_read(c, 0x02, 1), EDU_DEVICE_ID & 0xff);
    CHECK_EQ(cfg_read(c, 0x03, 1), EDU_DEVICE_ID >> 8);
    /* Revision ID and the 24-bit class code share a dword. */
    CHECK_EQ(cfg_read(c, 0x08, 4), (EDU_CLASS_CODE << 8) | EDU_REVISION);
    CHECK_EQ(cfg_read(c, 0x08, 1), EDU_REVISION);
    CHECK_EQ(cfg_read(c, 0x09, 1), EDU_CLASS_CODE & 0xff);
    CHECK_EQ(cfg_read(c, 0x0a, 2), EDU_CLASS_CODE >> 8);
    CHECK_EQ(cfg_read(c, 0x0b, 1), EDU_CLASS_CODE >> 16);
    /* Header type 0, interrupt pin INTA#. */
    CHECK_EQ(cfg_read(c, 0x0e, 1) & 0x7f, 0);
    CHECK_EQ(cfg_read(c, PCI_INT_PIN, 1), 1);
    /* The last dword of config space is readable. */
    cfg_read(c, CONFIG_SIZE - 4, 4);
    cfg_read(c, CONFIG_SIZE - 1, 1);
}

static void test_read_errors(io_connect_t c)
{
    uint64_t v = 0x5a5a;

    harness_section("config read argument errors");
    CHECK_KR(apple_dext_config_read(c, 0, 3, &v), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, 0, 8, &v), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, 0, 0, &v), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, 0, 16, &v), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, 1, 2, &v), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, 2, 4, &v), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, 3, 4, &v), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, CONFIG_SIZE, 1, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, CONFIG_SIZE, 4, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, 4096, 4, &v), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, 1ull << 40, 4, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, UINT64_MAX - 3, 4, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, 0, 4, NULL), kIOReturnBadArgument);
}

static void test_write_errors(io_connect_t c)
{
    uint8_t ref[4] = { 0 };

    harness_section("config write argument errors");
    CHECK_KR(apple_dext_config_write(c, PCI_INT_LINE, 3, 0),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_write(c, PCI_INT_LINE, 8, 0),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_write(c, PCI_INT_LINE + 1, 2, 0),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_write(c, PCI_INT_LINE + 2, 4, 0),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_write(c, CONFIG_SIZE, 1, 0),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_write(c, 1ull << 40, 1, 0),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_write_block(c, CONFIG_SIZE - 1, ref, 2),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_write_block(c, 4096, ref, 1),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_write_block(c, PCI_INT_LINE, NULL, 1),
             kIOReturnBadArgument);
}

static void test_bars(io_connect_t c)
{
    uint8_t raw[4];
    uint64_t saved = 0;
    int bar;

    harness_section("BAR registers: type bits only, raw shows the device's");
    /* edu BAR0: 32-bit, non-prefetchable memory: type bits 0. */
    CHECK_EQ(cfg_read(c, DEXT_PCI_BAR0, 4), 0);
    for (bar = 1; bar < 6; bar++) {
        CHECK_EQ(cfg_read(c, DEXT_PCI_BAR0 + 4 * bar, 4), 0);
    }
    if (!CHECK_KR(apple_dext_config_read_raw(c, DEXT_PCI_BAR0, raw, 4),
                  kIOReturnSuccess)) {
        return;
    }
    saved = raw[0] | raw[1] << 8 | raw[2] << 16 | (uint64_t)raw[3] << 24;

    /* Size the BAR the classic way: all ones, read back the mask. */
    CHECK_KR(apple_dext_config_write(c, DEXT_PCI_BAR0, 4, 0xffffffff),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_config_read_raw(c, DEXT_PCI_BAR0, raw, 4),
             kIOReturnSuccess);
    CHECK_EQ(raw[0] | raw[1] << 8 | raw[2] << 16 | (uint64_t)raw[3] << 24,
             (uint32_t)~(EDU_BAR0_SIZE - 1));
    /* ...while the dext keeps hiding it. */
    CHECK_EQ(cfg_read(c, DEXT_PCI_BAR0, 4), 0);

    /* An address: visible raw, hidden through the dword view. */
    CHECK_KR(apple_dext_config_write(c, DEXT_PCI_BAR0, 4, 0xfe900000),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_config_read_raw(c, DEXT_PCI_BAR0, raw, 4),
             kIOReturnSuccess);
    CHECK_EQ(raw[0] | raw[1] << 8 | raw[2] << 16 | (uint64_t)raw[3] << 24,
             0xfe900000);
    CHECK_EQ(cfg_read(c, DEXT_PCI_BAR0, 4), 0);
    {
        uint8_t blk[4] = { 0xa5, 0xa5, 0xa5, 0xa5 };

        CHECK_KR(apple_dext_config_read_block(c, DEXT_PCI_BAR0, blk, 4),
                 kIOReturnSuccess);
        CHECK_EQ(blk[0] | blk[1] << 8 | blk[2] << 16 | (uint64_t)blk[3] << 24,
                 0);
    }
    /* Raw reads of the unused BARs: nothing there either. */
    CHECK_KR(apple_dext_config_read_raw(c, DEXT_PCI_BAR0 + 4, raw, 4),
             kIOReturnSuccess);
    CHECK_EQ(raw[0] | raw[1] | raw[2] | raw[3], 0);

    CHECK_KR(apple_dext_config_write(c, DEXT_PCI_BAR0, 4, saved),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_config_read_raw(c, DEXT_PCI_BAR0, raw, 4),
             kIOReturnSuccess);
    CHECK_EQ(raw[0] | raw[1] << 8 | raw[2] << 16 | (uint64_t)raw[3] << 24,
             saved);
}

static void test_read_block(io_connect_t c)
{
    static const struct { uint64_t off; size_t len; } spans[] = {
        { 0, 1 }, { 1, 1 }, { 1, 2 }, { 1, 7 }, { 3, 5 }, { 2, 2 },
        { 0x0d, 9 }, { 0x11, 3 }, { 0x0e, 0x1b }, { 0x3b, 3 },
        { 0x41, 0x3f }, { CONFIG_SIZE - 3, 3 }, { CONFIG_SIZE - 1, 1 },
    };
    uint8_t block[CONFIG_SIZE], ref[CONFIG_SIZE], raw[CONFIG_SIZE];
    size_t i;

    harness_section("config_read_block against per-access reads");
    memset(block, 0xa5, sizeof(block));
    if (!CHECK_KR(apple_dext_config_read_block(c, 0, block, sizeof(block)),
                  kIOReturnSuccess)) {
        return;
    }
    /* The whole space equals one config_read per dword. */
    for (i = 0; i < CONFIG_SIZE; i += 4) {
        uint64_t v = cfg_read(c, i, 4);

        if (!CHECK_EQ(block[i] | block[i + 1] << 8 | block[i + 2] << 16 |
                      (uint64_t)block[i + 3] << 24, v)) {
            break;
        }
    }
    CHECK(block[0] == (EDU_VENDOR_ID & 0xff) &&
          block[1] == (EDU_VENDOR_ID >> 8));

    /* Raw differs from the block view only in the BAR dwords. */
    CHECK_KR(apple_dext_config_read_raw(c, 0, raw, sizeof(raw)),
             kIOReturnSuccess);
    CHECK(memcmp(raw, block, DEXT_PCI_BAR0) == 0);
    CHECK(memcmp(raw + 0x28, block + 0x28, CONFIG_SIZE - 0x28) == 0);

    /* Odd offsets and lengths: the same bytes as the seed's sequence. */
    for (i = 0; i < sizeof(spans) / sizeof(spans[0]); i++) {
        uint8_t got[CONFIG_SIZE];

        memset(got, 0xa5, sizeof(got));
        memset(ref, 0x5a, sizeof(ref));
        if (!CHECK_KR(apple_dext_config_read_block(c, spans[i].off, got,
                                                   spans[i].len),
                      kIOReturnSuccess) ||
            !reference_read(c, spans[i].off, ref, spans[i].len)) {
            continue;
        }
        CHECK_MSG(memcmp(got, ref, spans[i].len) == 0,
                  "block read of %zu bytes at 0x%llx differs from the "
                  "per-access reads", spans[i].len,
                  (unsigned long long)spans[i].off);
        /* Nothing written past the end. */
        CHECK_EQ(got[spans[i].len], 0xa5);
        /* Outside the BARs, also the same bytes as the whole block. */
        if (spans[i].off >= 0x28 || spans[i].off + spans[i].len <= DEXT_PCI_BAR0) {
            CHECK(memcmp(got, block + spans[i].off, spans[i].len) == 0);
        }
    }

    /* Length 0 reads nothing and succeeds. */
    CHECK_KR(apple_dext_config_read_block(c, 0x10, ref, 0), kIOReturnSuccess);

    harness_section("config block argument errors");
    CHECK_KR(apple_dext_config_read_block(c, CONFIG_SIZE - 4, ref, 8),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read_block(c, CONFIG_SIZE, ref, 1),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read_block(c, 4096, ref, 1),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read_block(c, 0, ref, 4097),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read_block(c, UINT64_MAX, ref, 2),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read_block(c, 0, NULL, 4),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read_raw(c, CONFIG_SIZE - 2, ref, 4),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read_raw(c, 0, NULL, 4), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read_raw(c, 4095, ref, 2),
             kIOReturnBadArgument);
}

static uint64_t find_msi_cap(io_connect_t c)
{
    uint64_t ptr = cfg_read(c, PCI_CAP_POINTER, 1) & 0xfc;
    int guard;

    for (guard = 0; ptr >= 0x40 && ptr < CONFIG_SIZE && guard < 48; guard++) {
        if (cfg_read(c, ptr, 1) == DEXT_PCI_CAP_ID_MSI) {
            return ptr;
        }
        ptr = cfg_read(c, ptr + 1, 1) & 0xfc;
    }
    return 0;
}

static void test_writes(io_connect_t c)
{
    uint8_t buf[8], back[8];
    uint64_t msi, v;

    harness_section("config_write round trips");
    CHECK_KR(apple_dext_config_write(c, PCI_INT_LINE, 1, 0x0b),
             kIOReturnSuccess);
    CHECK_EQ(cfg_read(c, PCI_INT_LINE, 1), 0x0b);
    CHECK_KR(apple_dext_config_write(c, PCI_INT_LINE, 1, 0x1a5),
             kIOReturnSuccess);
    /* Only the low @width bytes are used. */
    CHECK_EQ(cfg_read(c, PCI_INT_LINE, 1), 0xa5);
    CHECK_EQ(cfg_read(c, PCI_INT_PIN, 1), 1);
    CHECK_KR(apple_dext_config_write(c, PCI_CACHE_LINE, 1, 0x10),
             kIOReturnSuccess);
    CHECK_EQ(cfg_read(c, PCI_CACHE_LINE, 1), 0x10);
    /* Read-only registers keep their value. */
    CHECK_KR(apple_dext_config_write(c, 0x00, 2, 0xbeef), kIOReturnSuccess);
    CHECK_EQ(cfg_read(c, 0x00, 2), EDU_VENDOR_ID);
    CHECK_KR(apple_dext_config_write(c, 0x08, 4, 0), kIOReturnSuccess);
    CHECK_EQ(cfg_read(c, 0x08, 4), (EDU_CLASS_CODE << 8) | EDU_REVISION);

    harness_section("config_write_block round trips");
    /* 0x3c..0x3f: line (writable), pin, min_gnt, max_lat (read-only). */
    buf[0] = 0x5a;
    buf[1] = buf[2] = buf[3] = 0xff;
    CHECK_KR(apple_dext_config_write_block(c, PCI_INT_LINE, buf, 4),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_config_read_block(c, PCI_INT_LINE, back, 4),
             kIOReturnSuccess);
    CHECK_EQ(back[0], 0x5a);
    CHECK_EQ(back[1], 1);
    CHECK_EQ(back[2], 0);
    CHECK_EQ(back[3], 0);
    /* A single unaligned byte. */
    buf[0] = 0x33;
    CHECK_KR(apple_dext_config_write_block(c, PCI_CACHE_LINE, buf, 1),
             kIOReturnSuccess);
    CHECK_EQ(cfg_read(c, PCI_CACHE_LINE, 1), 0x33);
    CHECK_KR(apple_dext_config_write_block(c, PCI_CACHE_LINE, buf, 0),
             kIOReturnSuccess);

    /* A wider writable register: the MSI message address (dword
     * aligned, bits 1:0 hardwired to zero) and the data after it. */
    msi = find_msi_cap(c);
    if (!CHECK(msi != 0)) {
        return;
    }
    v = cfg_read(c, msi + 2, 2);
    buf[0] = 0x07;      /* low bits dropped by the device */
    buf[1] = 0x10;
    buf[2] = 0xe0;
    buf[3] = 0xfe;
    CHECK_KR(apple_dext_config_write_block(c, msi + 4, buf, 4),
             kIOReturnSuccess);
    /* vfio-pci virtualises the MSI address and keeps all 32 bits. */
    CHECK_EQ(cfg_read(c, msi + 4, 4),
             harness_real_devices() ? 0xfee01007 : 0xfee01004);
    /* Across a dword boundary, unaligned at both ends. */
    memset(back, 0, sizeof(back));
    CHECK_KR(apple_dext_config_read_raw(c, msi + 5, back, 3),
             kIOReturnSuccess);
    CHECK_EQ(back[0], 0x10);
    CHECK_EQ(back[1], 0xe0);
    CHECK_EQ(back[2], 0xfe);
    CHECK_KR(apple_dext_config_write(c, msi + 4, 4, 0), kIOReturnSuccess);
    CHECK_EQ(cfg_read(c, msi + 4, 4), 0);
    /* The control word did not change under us. */
    CHECK_EQ(cfg_read(c, msi + 2, 2), v);
}

int main(int argc, char **argv)
{
    io_connect_t c;

    harness_init(argc, argv, NULL);
    c = harness_connect_edu();
    if (c != IO_OBJECT_NULL) {
        /* Config reads need no claim; writes do (test-access.c). */
        test_read_widths(c);
        test_read_errors(c);
        test_read_block(c);
        CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
        test_write_errors(c);
        test_bars(c);
        test_writes(c);
        apple_dext_disconnect(c);
    }
    return harness_finish();
}
