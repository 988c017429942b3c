/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests of the ivshmem device model through its backend hooks, with
 * a fake host: a window of bus memory behind a fake IOMMU (everything
 * else faults) and a record of the MSI-X messages sent.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/pciemu.h"

#include "check.h"

#define BUS_BASE 0x200000ull
#define BUS_SIZE 0x4000u
#define MSIX_CAP 0x40

typedef struct FakeHost {
    uint8_t mem[BUS_SIZE];
    unsigned msi_count;
    unsigned per_vector[256];
    unsigned faults;
} FakeHost;

static bool in_window(uint64_t addr, size_t len)
{
    return addr >= BUS_BASE && len <= BUS_SIZE &&
           addr - BUS_BASE <= BUS_SIZE - len;
}

static IOReturn fake_dma_read(void *opaque, uint64_t addr, void *buf,
                              size_t len)
{
    FakeHost *h = opaque;

    if (!in_window(addr, len)) {
        h->faults++;
        memset(buf, 0, len);
        return kIOReturnNotPermitted;
    }
    memcpy(buf, h->mem + (addr - BUS_BASE), len);
    return kIOReturnSuccess;
}

static IOReturn fake_dma_write(void *opaque, uint64_t addr, const void *buf,
                               size_t len)
{
    FakeHost *h = opaque;

    if (!in_window(addr, len)) {
        h->faults++;
        return kIOReturnNotPermitted;
    }
    memcpy(h->mem + (addr - BUS_BASE), buf, len);
    return kIOReturnSuccess;
}

static void fake_msi(void *opaque, uint32_t vector)
{
    FakeHost *h = opaque;

    h->msi_count++;
    if (vector < 256) {
        h->per_vector[vector]++;
    }
}

static void fake_log(void *opaque, int level, const char *msg)
{
    printf("# device log: %s\n", msg);
}

static DextDevice *make(const char *spec, FakeHost *h)
{
    DextDevice *dev = NULL;

    if (dext_device_create(spec, &dev) != kIOReturnSuccess) {
        return NULL;
    }
    dev->host.dma_read = fake_dma_read;
    dev->host.dma_write = fake_dma_write;
    dev->host.raise_msi = fake_msi;
    dev->host.log = fake_log;
    dev->host.opaque = h;
    return dev;
}

static uint64_t rd(DextDevice *dev, int bar, uint64_t off, uint32_t w)
{
    uint64_t v = ~0ull;

    dev->ops->mmio_read(dev, bar, off, w, &v);
    return v;
}

static void wr(DextDevice *dev, int bar, uint64_t off, uint32_t w, uint64_t v)
{
    dev->ops->mmio_write(dev, bar, off, w, v);
}

static uint32_t cfg(DextDevice *dev, uint32_t off, uint32_t w)
{
    uint32_t v = 0;

    dev->ops->config_read(dev, off, w, &v);
    return v;
}

static void test_options(void)
{
    static const char *bad[] = {
        "ivshmem,vectors=0", "ivshmem,vectors=257", "ivshmem,size=3000",
        "ivshmem,size=2G", "ivshmem,size=12K", "ivshmem,colour=red",
        "ivshmem,vectors",
    };
    DextDevice *dev = NULL;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_MSG(dext_device_create(bad[i], &dev) == kIOReturnBadArgument &&
                  dev == NULL, "'%s' is refused", bad[i]);
    }
    CHECK_MSG(dext_device_create("ivshmem,vectors=8,size=64K@00:07.0", &dev) ==
              kIOReturnSuccess, "vectors=8,size=64K@00:07.0 accepted");
    if (dev) {
        CHECK_MSG(dev->dev == 7 && dev->bars[2].size == 65536 &&
                  dev->bars[2].mappable && !dev->bars[1].mappable,
                  "placed at 00:07.0, 64 KiB BAR2, only BAR2 mappable");
        CHECK_MSG(dev->config_size == 4096, "4 KiB config space");
        CHECK_MSG((cfg(dev, MSIX_CAP + 2, 2) & 0x7ff) == 7, "table size 8");
        dext_device_free(dev);
    }
}

static void test_msix(void)
{
    FakeHost *h = calloc(1, sizeof(*h));
    DextDevice *dev = make("ivshmem", h);
    DextMemory m;
    unsigned v;

    CHECK_MSG(dev != NULL, "default device created");
    if (dev == NULL) {
        free(h);
        return;
    }
    CHECK_MSG(dev->vendor_id == 0x1af4 && dev->device_id == 0x1110 &&
              dev->class_code == 0x050000, "identity 1af4:1110 class 050000");
    CHECK_MSG(dev->bars[2].type == 0x0c, "BAR2 64-bit prefetchable");
    CHECK_MSG(cfg(dev, MSIX_CAP, 1) == 0x11 &&
              (cfg(dev, MSIX_CAP + 2, 2) & 0x7ff) == 255, "MSI-X with 256");
    CHECK_MSG(cfg(dev, MSIX_CAP + 4, 4) == 1 && cfg(dev, MSIX_CAP + 8, 4) ==
              0x1001, "table in BAR1 at 0, PBA in BAR1 at 0x1000");

    /* Disabled MSI-X: the doorbell is ignored. */
    wr(dev, 0, 0x0c, 4, 3);
    CHECK_MSG(h->msi_count == 0 && rd(dev, 1, 0x1000, 8) == 0,
              "no message, nothing pending while MSI-X is off");

    dev->ops->config_write(dev, MSIX_CAP + 2, 2, 0x8000);
    /* Entries come out of reset masked: the PBA holds the message. */
    wr(dev, 0, 0x0c, 4, 3);
    CHECK_MSG(h->msi_count == 0 && rd(dev, 1, 0x1000, 8) == 8,
              "masked entry: PBA bit 3 set, no message");
    wr(dev, 1, 3 * 16 + 12, 4, 0);
    CHECK_MSG(h->msi_count == 1 && h->per_vector[3] == 1 &&
              rd(dev, 1, 0x1000, 8) == 0, "unmask delivers it, PBA clear");
    for (v = 0; v < 256; v++) {
        wr(dev, 1, v * 16 + 12, 4, 0);
    }
    wr(dev, 0, 0x0c, 4, 255);
    wr(dev, 0, 0x0c, 4, (2u << 16) | 4);
    CHECK_MSG(h->per_vector[255] == 1 && h->per_vector[4] == 0,
              "doorbell fires 255; another peer is ignored");
    CHECK_MSG(rd(dev, 0, 0x38, 8) == 3, "fire count");
    CHECK_MSG(rd(dev, 0, 0x30, 8) != 0, "fire timestamp");

    /* Function mask. */
    dev->ops->config_write(dev, MSIX_CAP + 2, 2, 0xc000);
    wr(dev, 0, 0x0c, 4, 9);
    wr(dev, 0, 0x0c, 4, 9);
    CHECK_MSG(h->per_vector[9] == 0 && rd(dev, 1, 0x1000, 4) == 0x200,
              "function mask holds vector 9 in the PBA");
    dev->ops->config_write(dev, MSIX_CAP + 2, 2, 0x8000);
    CHECK_MSG(h->per_vector[9] == 1, "released once on function unmask");

    /* Burst: every vector N times. */
    h->msi_count = 0;
    wr(dev, 0, 0x40, 4, 3);
    CHECK_MSG(h->msi_count == 3 * 256 && h->per_vector[100] == 3,
              "burst of 3 rounds over 256 vectors");

    /* Reset masks the table again. */
    CHECK_MSG(dev->ops->reset_function(dev) == kIOReturnSuccess, "reset");
    CHECK_MSG(rd(dev, 1, 12, 4) == 1, "entry 0 masked after reset");

    CHECK_MSG(dev->ops->map_bar(dev, 2, &m) == kIOReturnSuccess && m.fd >= 0 &&
              m.size == 4u << 20, "BAR2 maps");
    if (m.fd >= 0) {
        close(m.fd);
    }
    CHECK_MSG(dev->ops->map_bar(dev, 0, &m) != kIOReturnSuccess,
              "BAR0 does not");
    dext_device_free(dev);
    free(h);
}

static void test_dma(void)
{
    FakeHost *h = calloc(1, sizeof(*h));
    DextDevice *dev = make("ivshmem,size=64K", h);
    unsigned i;

    if (dev == NULL) {
        CHECK_MSG(false, "device created");
        free(h);
        return;
    }
    for (i = 0; i < 1024; i++) {
        h->mem[i] = (uint8_t)(i * 7);
    }
    wr(dev, 0, 0x10, 8, 0x100);
    wr(dev, 0, 0x18, 8, BUS_BASE);
    wr(dev, 0, 0x20, 8, 1024);
    wr(dev, 0, 0x28, 4, 1);
    CHECK_MSG(rd(dev, 0, 0x28, 4) == 0 && rd(dev, 2, 0x100, 1) == 0 &&
              rd(dev, 2, 0x101, 1) == 7 &&
              rd(dev, 2, 0x4ff, 1) == (1023 * 7 & 0xff),
              "bus -> BAR2");
    wr(dev, 0, 0x18, 8, BUS_BASE + 0x2000);
    wr(dev, 0, 0x28, 4, 3);
    CHECK_MSG(memcmp(h->mem, h->mem + 0x2000, 1024) == 0, "BAR2 -> bus");
    wr(dev, 0, 0x18, 8, 0x10);
    wr(dev, 0, 0x28, 4, 3);
    CHECK_MSG(rd(dev, 0, 0x28, 4) == 0x80000002u && h->faults == 1,
              "a fault sets the error bit");
    wr(dev, 0, 0x10, 8, 0xfe00);
    wr(dev, 0, 0x18, 8, BUS_BASE);
    wr(dev, 0, 0x28, 4, 1);
    CHECK_MSG(rd(dev, 0, 0x28, 4) == 0x80000000u && h->faults == 1,
              "a range past BAR2 is refused without bus traffic");
    /* 32-bit halves of a 64-bit register. */
    wr(dev, 0, 0x14, 4, 0x12345678);
    CHECK_MSG(rd(dev, 0, 0x10, 8) == 0x123456780000fe00ull, "upper half write");
    dext_device_free(dev);
    free(h);
}

int main(void)
{
    test_options();
    test_msix();
    test_dma();
    return harness_finish();
}
