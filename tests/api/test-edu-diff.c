/*
 * SPDX-License-Identifier: MIT
 *
 * The edu differential: QEMU's edu device as a driver observes it, asserted
 * through the public API only, so that the same program passing against
 * libdext's emulated edu (--transport inproc|unix) and against QEMU's
 * real edu (--transport target, $DEXT_TARGET naming a dext that serves
 * it, e.g. through VFIO in a guest) shows that the two agree.
 *
 * Every expectation is QEMU's behaviour (hw/misc/edu.c, hw/pci/msi.c,
 * hw/pci/pci.c and the memory core; docs/edu-differential.md lists them
 * with references).  What cannot be observed the same way on both (how
 * long anything takes, whether a write raced a running transfer, what
 * QEMU copies from outside its DMA buffer) is not asserted.  Every wait
 * is a poll bounded by $EDU_DIFF_WAIT_MS (default 60 s: QEMU runs each
 * DMA off a 100 ms timer, and under TCG everything is slow).
 *
 * The edu device is found by listing the target (the first 1234:11e8),
 * or at $EDU_DIFF_BDF ("bus:dev.fn", hex).
 */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "apple-dext-client.h"
#include "libdext/edu.h"
#include "libdext/pci-regs.h"
#include "harness.h"

#define MEM_IDX         0           /* BAR0's memory index */
#define REGION_SIZE     (64 * 1024)
#define REGION_IOVA     0x7770000ull
#define MSI_CAP         0x40        /* QEMU's first free offset */
#define MSI_CAP_SIZE    0x0e        /* 64-bit, no per-vector masking */
#define ALL_ONES_32     0xffffffffull

static unsigned wait_ms = 60000;
static io_connect_t c = IO_OBJECT_NULL;
static uint8_t *mem;                /* the registered region */
static uint64_t bus;                /* its bus address */
static bool msi_set_up;

/* ------------------------------------------------------------------ */
/* Accesses, each checked                                               */

static uint64_t cfg_rd(uint64_t off, uint64_t width)
{
    uint64_t v = 0xdeadbeef;

    CHECK_KR(apple_dext_config_read(c, off, width, &v), kIOReturnSuccess);
    return v;
}

static void cfg_wr(uint64_t off, uint64_t width, uint64_t v)
{
    CHECK_KR(apple_dext_config_write(c, off, width, v), kIOReturnSuccess);
}

static uint64_t rd(uint64_t off, uint64_t width)
{
    uint64_t v = 0xdeadbeef;

    CHECK_KR(apple_dext_mmio_read(c, MEM_IDX, off, width, &v),
             kIOReturnSuccess);
    return v;
}

static void wr(uint64_t off, uint64_t width, uint64_t v)
{
    CHECK_KR(apple_dext_mmio_write(c, MEM_IDX, off, width, v),
             kIOReturnSuccess);
}

static uint64_t ones(uint64_t width)
{
    return width == 8 ? UINT64_MAX : (1ull << (8 * width)) - 1;
}

/* Poll until (BAR0 register & @mask) == 0; false (a failed check) if not. */
static bool wait_clear(uint64_t off, uint64_t width, uint64_t mask)
{
    HarnessDeadline d = harness_deadline(wait_ms);
    unsigned round = 0;
    uint64_t v;

    for (;;) {
        if (apple_dext_mmio_read(c, MEM_IDX, off, width, &v) !=
            kIOReturnSuccess) {
            return CHECK_MSG(false, "read of 0x%llx failed",
                             (unsigned long long)off);
        }
        if ((v & mask) == 0) {
            return true;
        }
        if (harness_expired(&d)) {
            return CHECK_MSG(false, "0x%llx & 0x%llx still set after %u ms",
                             (unsigned long long)off,
                             (unsigned long long)mask, wait_ms);
        }
        harness_backoff(&round);
    }
}

/* Poll the pending bitmap for vector 0 (read and cleared). */
static bool wait_msi(void)
{
    HarnessDeadline d = harness_deadline(wait_ms);
    unsigned round = 0;
    uint64_t p[4];

    for (;;) {
        if (!CHECK_KR(apple_dext_read_pending_irqs(c, p), kIOReturnSuccess)) {
            return false;
        }
        if (p[0] & 1) {
            return true;
        }
        if (harness_expired(&d)) {
            return CHECK_MSG(false, "no MSI within %u ms", wait_ms);
        }
        harness_backoff(&round);
    }
}

static void drain_msi(void)
{
    uint64_t p[4];

    if (msi_set_up) {
        apple_dext_read_pending_irqs(c, p);
    }
}

/* Start a transfer and wait for EDU_DMA_RUN to clear. */
static bool dma(uint64_t src, uint64_t dst, uint64_t count, uint64_t cmd)
{
    wr(EDU_REG_DMA_SRC, 8, src);
    wr(EDU_REG_DMA_DST, 8, dst);
    wr(EDU_REG_DMA_COUNT, 8, count);
    wr(EDU_REG_DMA_CMD, 8, cmd | EDU_DMA_RUN);
    return wait_clear(EDU_REG_DMA_CMD, 8, EDU_DMA_RUN);
}

static bool factorial(uint32_t n, uint32_t *out)
{
    wr(EDU_REG_FACTORIAL, 4, n);
    if (!wait_clear(EDU_REG_STATUS, 4, EDU_STATUS_COMPUTING)) {
        return false;
    }
    *out = (uint32_t)rd(EDU_REG_FACTORIAL, 4);
    return true;
}

static uint32_t fact_mod32(uint32_t n)
{
    uint32_t r = 1;

    while (n > 0) {
        r *= n--;
    }
    return r;
}

/* ------------------------------------------------------------------ */
/* Setup                                                                */

static void find_edu(uint8_t *b, uint8_t *d, uint8_t *f)
{
    AppleDextDeviceInfo list[64];
    const char *env = getenv("EDU_DIFF_BDF");
    uint32_t n = 0, i;
    unsigned x, y, z;

    if (env != NULL && sscanf(env, "%x:%x.%x", &x, &y, &z) == 3) {
        *b = (uint8_t)x;
        *d = (uint8_t)y;
        *f = (uint8_t)z;
        return;
    }
    CHECK_KR(apple_dext_list_devices(harness_target(), list, 64, &n),
             kIOReturnSuccess);
    for (i = 0; i < n && i < 64; i++) {
        if (list[i].vendor_id == EDU_VENDOR_ID &&
            list[i].device_id == EDU_DEVICE_ID) {
            *b = list[i].bus;
            *d = list[i].device;
            *f = list[i].function;
            return;
        }
    }
    harness_skip("no edu device (1234:11e8) at %s", harness_target());
}

static void *map_shared(size_t len)
{
    int fd = memfd_create("edu-diff", MFD_CLOEXEC);
    void *p;

    if (fd < 0 || ftruncate(fd, (off_t)len) != 0) {
        CHECK_MSG(false, "memfd_create/ftruncate failed");
        exit(1);
    }
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        CHECK_MSG(false, "mmap of the memfd failed");
        exit(1);
    }
    return p;
}

/* ------------------------------------------------------------------ */
/* Config space                                                         */

static void test_identity(void)
{
    AppleDextDeviceInfo id;
    uint64_t size = 0;
    uint8_t idx = 0xff, type = 0xff;
    int bar;

    harness_section("identity and read-only header");
    if (CHECK_KR(apple_dext_get_identity(c, &id), kIOReturnSuccess)) {
        CHECK_EQ(id.vendor_id, EDU_VENDOR_ID);
        CHECK_EQ(id.device_id, EDU_DEVICE_ID);
        CHECK_EQ(id.class_code, 0x00ff00);
    }
    CHECK_EQ(cfg_rd(DEXT_PCI_VENDOR_ID, 4), 0x11e81234);
    CHECK_EQ(cfg_rd(DEXT_PCI_REVISION_ID, 1), 0x10);
    CHECK_EQ(cfg_rd(DEXT_PCI_CLASS_PROG, 1), 0x00);
    CHECK_EQ(cfg_rd(0x0a, 1), 0xff);        /* subclass */
    CHECK_EQ(cfg_rd(0x0b, 1), 0x00);        /* base class */
    CHECK_EQ(cfg_rd(DEXT_PCI_REVISION_ID, 4), 0x00ff0010);
    CHECK_EQ(cfg_rd(DEXT_PCI_HEADER_TYPE, 1), 0x00);
    CHECK_EQ(cfg_rd(0x0f, 1), 0x00);        /* BIST */
    CHECK_EQ(cfg_rd(DEXT_PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
    CHECK_EQ(cfg_rd(DEXT_PCI_SUBSYSTEM_ID, 2), 0x1100);
    CHECK_EQ(cfg_rd(0x28, 4), 0);           /* CardBus CIS */
    CHECK_EQ(cfg_rd(DEXT_PCI_ROM_ADDRESS, 4), 0);
    /* dext-vfio-user serves no INTx (the dext contract has MSI only), so
     * the config it shows says pin 0 ($EDU_DIFF_NO_INTX, vm-vfio-user). */
    CHECK_EQ(cfg_rd(DEXT_PCI_INTERRUPT_PIN, 1),
             getenv("EDU_DIFF_NO_INTX") ? 0 : 1);
    CHECK_EQ(cfg_rd(0x3e, 2), 0);           /* min_gnt, max_lat */
    CHECK(cfg_rd(DEXT_PCI_STATUS, 2) & DEXT_PCI_STATUS_CAP_LIST);
    CHECK_EQ(cfg_rd(DEXT_PCI_CAPABILITY_LIST, 1), MSI_CAP);
    CHECK_EQ(cfg_rd(MSI_CAP, 1), DEXT_PCI_CAP_ID_MSI);
    CHECK_EQ(cfg_rd(MSI_CAP + 1, 1), 0);    /* the only capability */
    CHECK_EQ(cfg_rd(MSI_CAP + DEXT_PCI_MSI_FLAGS, 2) &
             ~(uint64_t)DEXT_PCI_MSI_FLAGS_ENABLE, DEXT_PCI_MSI_FLAGS_64BIT);

    /* BAR0: 1 MiB, 32-bit, not prefetchable; no other BAR. */
    CHECK_EQ(cfg_rd(DEXT_PCI_BAR0, 4), 0);
    if (CHECK_KR(apple_dext_get_bar_info(c, 0, &idx, &size, &type),
                 kIOReturnSuccess)) {
        CHECK_EQ(idx, MEM_IDX);
        CHECK_EQ(size, 1u << 20);
        CHECK_EQ(type, 0);
    }
    for (bar = 1; bar < 6; bar++) {
        CHECK_KR(apple_dext_get_bar_info(c, (uint8_t)bar, NULL, NULL, NULL),
                 kIOReturnNotFound);
    }
}

/* Write @val at @off, read it back, restore what was there. */
static uint64_t cfg_probe(uint64_t off, uint64_t width, uint64_t val)
{
    uint64_t old = cfg_rd(off, width);
    uint64_t got;

    cfg_wr(off, width, val);
    got = cfg_rd(off, width);
    cfg_wr(off, width, old);
    CHECK_MSG(cfg_rd(off, width) == old, "config 0x%llx restored",
              (unsigned long long)off);
    return got;
}

static void test_config_writes(void)
{
    static const struct {
        uint64_t off, width;
    } ro[] = {
        { 0x00, 4 }, { 0x08, 4 }, { 0x0e, 1 }, { 0x0f, 1 }, { 0x28, 4 },
        { 0x2c, 4 }, { 0x30, 4 }, { 0x34, 1 }, { 0x3d, 1 }, { 0x3e, 2 },
        { MSI_CAP, 2 },
    };
    uint64_t off;
    size_t i;

    harness_section("config writes: read-only and writable bits");
    for (i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
        uint64_t before = cfg_rd(ro[i].off, ro[i].width);

        cfg_wr(ro[i].off, ro[i].width, ones(ro[i].width));
        CHECK_MSG(cfg_rd(ro[i].off, ro[i].width) == before,
                  "config 0x%llx/%llu is read-only",
                  (unsigned long long)ro[i].off,
                  (unsigned long long)ro[i].width);
    }
    CHECK_EQ(cfg_probe(DEXT_PCI_CACHE_LINE_SIZE, 1, 0xff), 0xff);

    /*
     * MSI (msi_init(): enable and MME writable, address dword aligned,
     * data 16 bits).  All ones leaves MSI enabled, so msi_write_config()
     * cuts MME back to the one vector edu is capable of; with MSI
     * disabled the field keeps what was written.
     */
    if (harness_real_devices()) {
        /*
         * Through VFIO the MSI capability is vfio-pci's virtual one
         * (drivers/vfio/pci/vfio_pci_config.c), with its own writable
         * bits: flags and address are not QEMU's msi.c's to compare.
         */
        printf("# MSI capability bits: virtualised by vfio-pci, "
               "not compared\n");
    } else {
        CHECK_EQ(cfg_probe(MSI_CAP + DEXT_PCI_MSI_FLAGS, 2, 0xffff), 0x0081);
        CHECK_EQ(cfg_probe(MSI_CAP + DEXT_PCI_MSI_FLAGS, 2,
                           DEXT_PCI_MSI_FLAGS_QSIZE), 0x00f0);
        CHECK_EQ(cfg_probe(MSI_CAP + DEXT_PCI_MSI_ADDRESS_LO, 4,
                           ALL_ONES_32), 0xfffffffc);
    }
    CHECK_EQ(cfg_probe(MSI_CAP + DEXT_PCI_MSI_ADDRESS_HI, 4, ALL_ONES_32),
             ALL_ONES_32);
    CHECK_EQ(cfg_probe(MSI_CAP + 0x0c, 2, 0xffff), 0xffff);

    /* pci_init_wmask(): the rest of the device-specific area is storage. */
    CHECK_EQ(cfg_probe(MSI_CAP + MSI_CAP_SIZE, 2, 0xffff), 0xffff);
    for (off = 0x50; off < 0x100; off += 4) {
        uint64_t pat = 0xa5000000u | (off << 8) | off;

        if (!CHECK_EQ(cfg_probe(off, 4, pat), pat)) {
            break;
        }
    }
}

/* ------------------------------------------------------------------ */
/* BAR0                                                                 */

/* The registers a stray write must not change. */
typedef struct EduRegs {
    uint64_t liveness, fact, status, irq, src, dst, cnt, cmd;
} EduRegs;

static void snapshot(EduRegs *r)
{
    r->liveness = rd(EDU_REG_LIVENESS, 4);
    r->fact = rd(EDU_REG_FACTORIAL, 4);
    r->status = rd(EDU_REG_STATUS, 4);
    r->irq = rd(EDU_REG_IRQ_STATUS, 4);
    r->src = rd(EDU_REG_DMA_SRC, 8);
    r->dst = rd(EDU_REG_DMA_DST, 8);
    r->cnt = rd(EDU_REG_DMA_COUNT, 8);
    r->cmd = rd(EDU_REG_DMA_CMD, 8);
}

static void check_unchanged(const EduRegs *a, const char *what)
{
    EduRegs b;

    snapshot(&b);
    CHECK_MSG(memcmp(a, &b, sizeof(b)) == 0,
              "%s changed a register: liveness %llx/%llx fact %llx/%llx "
              "status %llx/%llx irq %llx/%llx src %llx/%llx dst %llx/%llx "
              "cnt %llx/%llx cmd %llx/%llx", what,
              (unsigned long long)a->liveness, (unsigned long long)b.liveness,
              (unsigned long long)a->fact, (unsigned long long)b.fact,
              (unsigned long long)a->status, (unsigned long long)b.status,
              (unsigned long long)a->irq, (unsigned long long)b.irq,
              (unsigned long long)a->src, (unsigned long long)b.src,
              (unsigned long long)a->dst, (unsigned long long)b.dst,
              (unsigned long long)a->cnt, (unsigned long long)b.cnt,
              (unsigned long long)a->cmd, (unsigned long long)b.cmd);
}

/* What QEMU's edu answers to a read of @width at @off (idle registers). */
static uint64_t expect_read(uint64_t off, uint64_t width, const EduRegs *r)
{
    uint64_t v;

    if (width < 4) {
        return 0;                   /* refused by the memory core */
    }
    if (off < EDU_WIDE_REGS && width != 4) {
        return ones(width);
    }
    switch (off) {
    case EDU_REG_ID:
        v = EDU_ID_VALUE;
        break;
    case EDU_REG_LIVENESS:
        v = r->liveness;
        break;
    case EDU_REG_FACTORIAL:
        v = r->fact;
        break;
    case EDU_REG_STATUS:
        v = r->status;
        break;
    case EDU_REG_IRQ_STATUS:
        v = r->irq;
        break;
    case EDU_REG_DMA_SRC:
        v = r->src;
        break;
    case EDU_REG_DMA_DST:
        v = r->dst;
        break;
    case EDU_REG_DMA_COUNT:
        v = r->cnt;
        break;
    case EDU_REG_DMA_CMD:
        v = r->cmd;
        break;
    default:
        v = UINT64_MAX;             /* undefined and write-only */
        break;
    }
    return v & ones(width);
}

static const uint64_t probe_offs[] = {
    0x00, 0x04, 0x08, 0x0c, 0x10, 0x18, 0x1c, 0x20, 0x24, 0x28, 0x30, 0x5c,
    0x60, 0x64, 0x68, 0x78, 0x7c, 0x80, 0x84, 0x88, 0x8c, 0x90, 0x94, 0x98,
    0x9c, 0xa0, 0xa8, 0x100, 0x1000, 0x40000, 0x80000, 0xffff0, 0xffff8,
    0xffffc,
};
#define N_PROBES (sizeof(probe_offs) / sizeof(probe_offs[0]))

static void test_bar0_widths(void)
{
    static const uint64_t widths[] = { 1, 2, 4, 8 };
    EduRegs r;
    size_t i, w;
    uint64_t b;

    harness_section("BAR0: every width at every probed offset");
    /* Distinct, recognisable values in every register. */
    wr(EDU_REG_LIVENESS, 4, 0x13572468);
    wr(EDU_REG_DMA_SRC, 8, 0x1122334455667788ull);
    wr(EDU_REG_DMA_DST, 8, 0x99aabbccddeeff00ull);
    wr(EDU_REG_DMA_COUNT, 8, 0x0123456789abcdefull);
    snapshot(&r);
    CHECK_EQ(r.liveness, (uint32_t)~0x13572468u);
    CHECK_EQ(r.src, 0x1122334455667788ull);

    for (i = 0; i < N_PROBES; i++) {
        for (w = 0; w < 4; w++) {
            for (b = 0; b < 8; b += widths[w]) {
                uint64_t off = probe_offs[i] + b;
                uint64_t v;

                if (off % widths[w] != 0 || off + widths[w] > (1u << 20)) {
                    continue;   /* the API wants alignment, within BAR0 */
                }
                v = rd(off, widths[w]);
                if (!CHECK_MSG(v == expect_read(off, widths[w], &r),
                               "read 0x%llx/%llu = 0x%llx, QEMU 0x%llx",
                               (unsigned long long)off,
                               (unsigned long long)widths[w],
                               (unsigned long long)v,
                               (unsigned long long)expect_read(off, widths[w],
                                                               &r))) {
                    return;
                }
            }
        }
    }

    harness_section("BAR0: narrow, too wide and undefined writes are ignored");
    for (i = 0; i < N_PROBES; i++) {
        uint64_t off = probe_offs[i];

        if (off == EDU_REG_DMA_CMD || off == EDU_REG_FACTORIAL ||
            off == EDU_REG_IRQ_RAISE) {
            /* Narrow writes only below: a wide one would act. */
            wr(off, 1, 0xff);
            wr(off + 1, 1, 0xff);
            wr(off, 2, 0xffff);
            wr(off + 2, 2, 0xffff);
            continue;
        }
        wr(off, 1, 0x5a);
        wr(off + 3, 1, 0x5a);
        wr(off, 2, 0x5a5a);
        wr(off + 2, 2, 0x5a5a);
        if (off % 8 == 0 && off < EDU_WIDE_REGS) {
            wr(off, 8, 0x5a5a5a5a5a5a5a5aull);
        }
    }
    check_unchanged(&r, "a 1/2-byte or sub-0x80 8-byte write");
    CHECK_EQ(rd(EDU_REG_STATUS, 4) & EDU_STATUS_COMPUTING, 0);

    /* 4- and 8-byte writes where nothing is: ignored. */
    for (i = 0; i < N_PROBES; i++) {
        uint64_t off = probe_offs[i];

        if (expect_read(off, 4, &r) != ALL_ONES_32 ||
            off == EDU_REG_IRQ_RAISE || off == EDU_REG_IRQ_ACK ||
            (off >= EDU_WIDE_REGS && off < 0xa0)) {
            continue;
        }
        wr(off, 4, 0x12345678);
        if (off % 8 == 0 && off >= EDU_WIDE_REGS) {
            wr(off, 8, 0x1234567812345678ull);
        }
        CHECK_MSG(rd(off, 4) == ALL_ONES_32, "0x%llx still reads all ones",
                  (unsigned long long)off);
    }
    /* The upper halves of the 8-byte registers are not registers. */
    wr(EDU_REG_DMA_SRC + 4, 4, 0);
    wr(EDU_REG_DMA_DST + 4, 4, 0);
    wr(EDU_REG_DMA_COUNT + 4, 4, 0);
    wr(EDU_REG_DMA_CMD + 4, 4, 0);
    wr(EDU_REG_ID, 4, 0);               /* read-only */
    wr(EDU_REG_IRQ_STATUS, 4, 0xffff);  /* read-only */
    check_unchanged(&r, "a write to an undefined or read-only offset");
    CHECK_EQ(rd(EDU_REG_ID, 4), EDU_ID_VALUE);

    harness_section("BAR0: 4-byte writes of the 8-byte registers");
    /* The value is zero-extended: the upper half is cleared. */
    wr(EDU_REG_DMA_SRC, 4, 0xcafef00d);
    CHECK_EQ(rd(EDU_REG_DMA_SRC, 8), 0xcafef00dull);
    CHECK_EQ(rd(EDU_REG_DMA_SRC, 4), 0xcafef00dull);
    CHECK_EQ(rd(EDU_REG_DMA_SRC + 4, 4), ALL_ONES_32);
    wr(EDU_REG_DMA_COUNT, 4, 0x1000);
    CHECK_EQ(rd(EDU_REG_DMA_COUNT, 8), 0x1000);
    /* A command write without EDU_DMA_RUN is ignored altogether. */
    wr(EDU_REG_DMA_CMD, 8, EDU_DMA_TO_RAM | EDU_DMA_IRQ);
    CHECK_EQ(rd(EDU_REG_DMA_CMD, 8), r.cmd);
}

static void test_id_liveness(void)
{
    static const uint32_t vals[] = {
        0, 1, 0x80000000u, 0xffffffffu, 0x12345678u, 0xdeadbeefu,
    };
    size_t i;

    harness_section("ident and liveness");
    CHECK_EQ(rd(EDU_REG_ID, 4), EDU_ID_VALUE);
    CHECK_EQ(rd(EDU_REG_ID, 8), UINT64_MAX);
    for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        wr(EDU_REG_LIVENESS, 4, vals[i]);
        CHECK_EQ(rd(EDU_REG_LIVENESS, 4), (uint32_t)~vals[i]);
    }
}

/* ------------------------------------------------------------------ */
/* Factorial and interrupts                                             */

static void test_factorial(void)
{
    static const uint32_t ns[] = { 0, 1, 2, 5, 10, 12, 13, 20, 33, 34, 100 };
    uint32_t got;
    size_t i;

    harness_section("factorial");
    CHECK_EQ(rd(EDU_REG_STATUS, 4) & EDU_STATUS_COMPUTING, 0);
    for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        if (factorial(ns[i], &got)) {
            CHECK_MSG(got == fact_mod32(ns[i]), "%u! = 0x%x, want 0x%x",
                      ns[i], got, fact_mod32(ns[i]));
        }
    }
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0);  /* no interrupt asked */

    /* Status: only EDU_STATUS_IRQFACT is writable. */
    wr(EDU_REG_STATUS, 4, ALL_ONES_32);
    CHECK_EQ(rd(EDU_REG_STATUS, 4), EDU_STATUS_IRQFACT);
    wr(EDU_REG_STATUS, 4, EDU_STATUS_COMPUTING);
    CHECK_EQ(rd(EDU_REG_STATUS, 4), 0);
    CHECK_EQ(rd(EDU_REG_FACTORIAL, 4), fact_mod32(100));  /* nothing started */

    harness_section("factorial: interrupt on completion");
    wr(EDU_REG_STATUS, 4, EDU_STATUS_IRQFACT);
    if (factorial(7, &got)) {
        CHECK_EQ(got, 5040);
        CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), EDU_IRQ_FACT);
        if (msi_set_up) {
            wait_msi();
        }
    }
    CHECK_EQ(rd(EDU_REG_STATUS, 4), EDU_STATUS_IRQFACT);
    wr(EDU_REG_IRQ_ACK, 4, EDU_IRQ_FACT);
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0);
    wr(EDU_REG_STATUS, 4, 0);
    drain_msi();
}

static void test_irq_regs(void)
{
    harness_section("interrupt status, raise, acknowledge");
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0);
    wr(EDU_REG_IRQ_RAISE, 4, 0x12340001);
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0x12340001);
    wr(EDU_REG_IRQ_RAISE, 4, 0x00000100);   /* bits accumulate */
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0x12340101);
    if (msi_set_up) {
        wait_msi();
        /* A raise of 0 with bits still set signals again. */
        wr(EDU_REG_IRQ_RAISE, 4, 0);
        wait_msi();
    } else {
        /* MSI disabled: INTx, seen in the status register. */
        CHECK(cfg_rd(DEXT_PCI_STATUS, 2) & DEXT_PCI_STATUS_INTERRUPT);
    }
    wr(EDU_REG_IRQ_ACK, 4, 0x00000001);
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0x12340100);
    if (!msi_set_up) {
        CHECK(cfg_rd(DEXT_PCI_STATUS, 2) & DEXT_PCI_STATUS_INTERRUPT);
    }
    wr(EDU_REG_IRQ_ACK, 4, ALL_ONES_32);
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0);
    CHECK_EQ(cfg_rd(DEXT_PCI_STATUS, 2) & DEXT_PCI_STATUS_INTERRUPT, 0);
    /*
     * A raise of 0 with nothing set changes nothing.  (That it signals
     * nothing is not asserted: an earlier MSI may still be on its way.)
     */
    wr(EDU_REG_IRQ_RAISE, 4, 0);
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0);
    CHECK_EQ(cfg_rd(DEXT_PCI_STATUS, 2) & DEXT_PCI_STATUS_INTERRUPT, 0);
    drain_msi();
}

static void test_msi_setup(void)
{
    uint32_t n = 0;

    harness_section("MSI: vectors, and INTx dropped once MSI is enabled");
    /* INTx asserted while MSI is off ... */
    wr(EDU_REG_IRQ_RAISE, 4, 0x40);
    CHECK(cfg_rd(DEXT_PCI_STATUS, 2) & DEXT_PCI_STATUS_INTERRUPT);
    if (!CHECK_KR(apple_dext_setup_interrupts(c, &n), kIOReturnSuccess)) {
        return;
    }
    msi_set_up = true;
    CHECK_EQ(n, 1);
    CHECK(cfg_rd(MSI_CAP + DEXT_PCI_MSI_FLAGS, 2) & DEXT_PCI_MSI_FLAGS_ENABLE);
    /* ... is deasserted by enabling MSI (msi_write_config()). */
    CHECK_EQ(cfg_rd(DEXT_PCI_STATUS, 2) & DEXT_PCI_STATUS_INTERRUPT, 0);
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0x40);
    wr(EDU_REG_IRQ_ACK, 4, 0x40);
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0);
    drain_msi();
}

/* ------------------------------------------------------------------ */
/* DMA                                                                  */

#define BUF_END (EDU_DMA_BUF_ADDR + EDU_DMA_BUF_SIZE)

/* The whole device buffer to mem[@off]. */
static bool buffer_out(size_t off)
{
    memset(mem + off, 0, EDU_DMA_BUF_SIZE);
    return dma(EDU_DMA_BUF_ADDR, bus + off, EDU_DMA_BUF_SIZE, EDU_DMA_TO_RAM);
}

static void test_dma(void)
{
    uint8_t *ref = malloc(REGION_SIZE);
    uint8_t *img = malloc(EDU_DMA_BUF_SIZE);   /* the device buffer */
    const size_t in = 0x1000, out = 0x4000, aux = 0x8000;

    if (!CHECK(ref != NULL && img != NULL)) {
        free(ref);
        free(img);
        return;
    }
    harness_section("DMA: RAM -> buffer -> RAM, 4096 bytes");
    harness_fill_random(mem, REGION_SIZE);
    memcpy(img, mem + in, EDU_DMA_BUF_SIZE);
    if (dma(bus + in, EDU_DMA_BUF_ADDR, EDU_DMA_BUF_SIZE, 0) &&
        buffer_out(out)) {
        CHECK_MSG(memcmp(mem + out, img, EDU_DMA_BUF_SIZE) == 0,
                  "round trip of 4096 bytes byte for byte");
    }
    /* The registers keep what was programmed; RUN alone is cleared. */
    CHECK_EQ(rd(EDU_REG_DMA_SRC, 8), EDU_DMA_BUF_ADDR);
    CHECK_EQ(rd(EDU_REG_DMA_DST, 8), bus + out);
    CHECK_EQ(rd(EDU_REG_DMA_COUNT, 8), EDU_DMA_BUF_SIZE);
    CHECK_EQ(rd(EDU_REG_DMA_CMD, 8), EDU_DMA_TO_RAM);
    CHECK_EQ(rd(EDU_REG_DMA_CMD, 4), EDU_DMA_TO_RAM);
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0);

    harness_section("DMA: partial transfers, at the buffer's end, odd lengths");
    memcpy(ref, mem, REGION_SIZE);
    /* 333 bytes into the middle of the buffer, 1 byte at its last byte,
     * 100 bytes ending exactly at its end. */
    if (dma(bus + aux, EDU_DMA_BUF_ADDR + 1001, 333, 0) &&
        dma(bus + aux + 500, BUF_END - 100, 100, 0) &&
        dma(bus + aux + 400, BUF_END - 1, 1, 0)) {
        memcpy(img + 1001, mem + aux, 333);
        memcpy(img + EDU_DMA_BUF_SIZE - 100, mem + aux + 500, 100);
        img[EDU_DMA_BUF_SIZE - 1] = mem[aux + 400];
        if (buffer_out(out)) {
            CHECK_MSG(memcmp(mem + out, img, EDU_DMA_BUF_SIZE) == 0,
                      "buffer after partial writes");
        }
        memcpy(ref + out, img, EDU_DMA_BUF_SIZE);
        /* Buffer -> RAM, 7 bytes from the end to an odd address. */
        if (dma(BUF_END - 7, bus + aux + 3, 7, EDU_DMA_TO_RAM)) {
            memcpy(ref + aux + 3, img + EDU_DMA_BUF_SIZE - 7, 7);
            CHECK_MSG(memcmp(mem, ref, REGION_SIZE) == 0,
                      "only the 7 bytes changed in RAM");
        }
    }

    harness_section("DMA: length 0");
    memcpy(ref, mem, REGION_SIZE);
    if (dma(EDU_DMA_BUF_ADDR, bus + aux, 0, EDU_DMA_TO_RAM | EDU_DMA_IRQ)) {
        CHECK_MSG(memcmp(mem, ref, REGION_SIZE) == 0, "RAM untouched");
        CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), EDU_IRQ_DMA);
        CHECK_EQ(rd(EDU_REG_DMA_CMD, 8), EDU_DMA_TO_RAM | EDU_DMA_IRQ);
        if (msi_set_up) {
            wait_msi();
        }
        wr(EDU_REG_IRQ_ACK, 4, EDU_IRQ_DMA);
    }
    if (dma(bus + aux, EDU_DMA_BUF_ADDR, 0, 0) && buffer_out(out)) {
        CHECK_MSG(memcmp(mem + out, img, EDU_DMA_BUF_SIZE) == 0,
                  "buffer untouched");
    }

    harness_section("DMA: completion interrupt, both directions");
    if (dma(bus + in, EDU_DMA_BUF_ADDR, 64, EDU_DMA_IRQ)) {
        CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), EDU_IRQ_DMA);
        if (msi_set_up) {
            wait_msi();
        }
        wr(EDU_REG_IRQ_ACK, 4, EDU_IRQ_DMA);
        memcpy(img, mem + in, 64);
    }
    if (dma(EDU_DMA_BUF_ADDR, bus + aux, 64, EDU_DMA_TO_RAM | EDU_DMA_IRQ)) {
        CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), EDU_IRQ_DMA);
        CHECK_MSG(memcmp(mem + aux, img, 64) == 0, "64 bytes back");
        wr(EDU_REG_IRQ_ACK, 4, EDU_IRQ_DMA);
    }
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0);
    drain_msi();

    harness_section("DMA: addresses above the DMA mask are clamped");
    /* edu_clamp_addr(): the address is ANDed with dma_mask (2^28 - 1). */
    memset(mem + aux, 0, 64);
    if (dma(EDU_DMA_BUF_ADDR, (1ull << 40) | (bus + aux), 64,
            EDU_DMA_TO_RAM)) {
        CHECK_MSG(memcmp(mem + aux, img, 64) == 0, "clamped address reached");
    }

    harness_section("DMA: outside the registered memory");
    /*
     * Unregistered bus addresses: the transfer ends (RUN clears) and no
     * registered byte changes.  What the device buffer holds after a
     * faulted read is not asserted (QEMU behind a vIOMMU reads zeros;
     * without one, whatever guest memory is there).
     */
    memcpy(ref, mem, REGION_SIZE);
    dma(EDU_DMA_BUF_ADDR, bus + REGION_SIZE + 0x100000, 256, EDU_DMA_TO_RAM);
    dma(EDU_DMA_BUF_ADDR, bus + REGION_SIZE - 128, 256, EDU_DMA_TO_RAM);
    CHECK_MSG(memcmp(mem, ref, REGION_SIZE - 128) == 0,
              "registered memory untouched by DMA outside it");
    dma(bus + REGION_SIZE + 0x100000, EDU_DMA_BUF_ADDR + 2048, 256, 0);
    CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0);

    harness_section("DMA: beyond the 4096-byte buffer window");
    /*
     * QEMU only logs a guest error and copies anyway, from past its
     * buffer: the 8 bytes after it are not asserted, nor anything of a
     * transfer into the device past the buffer (that would corrupt
     * QEMU, so it is not tried).  Asserted: the transfer ends and RAM
     * outside its 16 destination bytes stays as it was.
     */
    memcpy(ref, mem, REGION_SIZE);
    if (dma(BUF_END - 8, bus + aux, 16, EDU_DMA_TO_RAM | EDU_DMA_IRQ)) {
        CHECK_MSG(memcmp(mem, ref, aux) == 0 &&
                  memcmp(mem + aux + 16, ref + aux + 16,
                         REGION_SIZE - aux - 16) == 0,
                  "nothing written outside the 16 bytes");
        CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), EDU_IRQ_DMA);
        wr(EDU_REG_IRQ_ACK, 4, EDU_IRQ_DMA);
    }
    drain_msi();

    harness_section("DMA: register writes while a transfer runs");
    /*
     * dma_rw(): while EDU_DMA_RUN is set every DMA register write is
     * ignored, a second start included.  Whether a write meets the
     * transfer running is a race, so it is asserted only where the
     * device's answers prove it did: RUN read set after a write to
     * another register (RUN only clears by itself), or a second start
     * whose interrupt bit does not show.
     */
    harness_fill_random(mem + in, EDU_DMA_BUF_SIZE);
    memcpy(img, mem + in, EDU_DMA_BUF_SIZE);
    wr(EDU_REG_DMA_SRC, 8, bus + in);
    wr(EDU_REG_DMA_DST, 8, EDU_DMA_BUF_ADDR);
    wr(EDU_REG_DMA_COUNT, 8, EDU_DMA_BUF_SIZE);
    wr(EDU_REG_DMA_CMD, 8, EDU_DMA_RUN);
    wr(EDU_REG_DMA_SRC, 8, bus + aux);
    wr(EDU_REG_DMA_COUNT, 8, 1);
    if (rd(EDU_REG_DMA_CMD, 8) & EDU_DMA_RUN) {
        uint64_t cmd;

        printf("# (writes met the transfer running: asserted)\n");
        CHECK_EQ(rd(EDU_REG_DMA_SRC, 8), bus + in);
        CHECK_EQ(rd(EDU_REG_DMA_COUNT, 8), EDU_DMA_BUF_SIZE);
        /* If it lands, it repeats the same valid transfer, with IRQ. */
        wr(EDU_REG_DMA_CMD, 8, EDU_DMA_RUN | EDU_DMA_IRQ);
        cmd = rd(EDU_REG_DMA_CMD, 8);
        if (cmd == EDU_DMA_RUN) {
            printf("# (second start met it running too: asserted)\n");
            if (wait_clear(EDU_REG_DMA_CMD, 8, EDU_DMA_RUN)) {
                CHECK_EQ(rd(EDU_REG_DMA_CMD, 8), 0);
                CHECK_EQ(rd(EDU_REG_IRQ_STATUS, 4), 0);
            }
        }
        wait_clear(EDU_REG_DMA_CMD, 8, EDU_DMA_RUN);
        if (cmd == EDU_DMA_RUN && buffer_out(out)) {
            CHECK_MSG(memcmp(mem + out, img, EDU_DMA_BUF_SIZE) == 0,
                      "the first transfer's data, whole");
        }
    } else {
        printf("# (transfer done before the writes: not observable here)\n");
    }
    wait_clear(EDU_REG_DMA_CMD, 8, EDU_DMA_RUN);
    wr(EDU_REG_IRQ_ACK, 4, ALL_ONES_32);
    drain_msi();
    free(ref);
    free(img);
}

/* ------------------------------------------------------------------ */
/* Reset                                                                */

static void test_reset(void)
{
    uint32_t got;
    kern_return_t kr;

    harness_section("reset");
    cfg_wr(DEXT_PCI_CACHE_LINE_SIZE, 1, 0x10);
    cfg_wr(0x60, 4, 0x600d600d);
    kr = apple_dext_reset_device(c);
    if (kr != kIOReturnSuccess) {
        /*
         * QEMU's conventional-PCI edu has no FLR and no PM capability;
         * on a root bus nothing can reset it through VFIO.
         */
        printf("# reset not available here (%s): not asserted\n",
               apple_dext_strerror(kr));
        return;
    }
    /* pci_do_device_reset(): header defaults; the device-specific area
     * is left alone.  The dext restores command, BARs, MSI. */
    CHECK_EQ(cfg_rd(DEXT_PCI_VENDOR_ID, 4), 0x11e81234);
    CHECK_EQ(cfg_rd(DEXT_PCI_REVISION_ID, 4), 0x00ff0010);
    /* Through VFIO the host kernel saves the header before the reset and
     * restores it after (pci_dev_save_and_disable, pci_dev_restore). */
    CHECK_EQ(cfg_rd(DEXT_PCI_CACHE_LINE_SIZE, 1),
             harness_real_devices() ? 0x10 : 0);
    CHECK_EQ(cfg_rd(0x60, 4), 0x600d600d);
    cfg_wr(0x60, 4, 0);
    CHECK_EQ(cfg_rd(DEXT_PCI_STATUS, 2) & DEXT_PCI_STATUS_INTERRUPT, 0);
    /*
     * QEMU's edu has no reset handler: its BAR0 registers survive a
     * reset (ours return to power-on values), so they are not asserted;
     * the device must work afterwards.
     */
    CHECK_EQ(rd(EDU_REG_ID, 4), EDU_ID_VALUE);
    wr(EDU_REG_LIVENESS, 4, 0x0f0f0f0f);
    CHECK_EQ(rd(EDU_REG_LIVENESS, 4), 0xf0f0f0f0);
    wr(EDU_REG_STATUS, 4, 0);
    if (factorial(6, &got)) {
        CHECK_EQ(got, 720);
    }
    wr(EDU_REG_IRQ_ACK, 4, ALL_ONES_32);
    harness_fill_random(mem, 256);
    if (dma(bus, EDU_DMA_BUF_ADDR, 256, 0)) {
        memset(mem + 512, 0, 256);
        if (dma(EDU_DMA_BUF_ADDR, bus + 512, 256, EDU_DMA_TO_RAM)) {
            CHECK_MSG(memcmp(mem, mem + 512, 256) == 0, "DMA after reset");
        }
    }
}

int main(int argc, char **argv)
{
    const char *env = getenv("EDU_DIFF_WAIT_MS");
    uint8_t b = EDU_BUS, d = EDU_DEV, f = EDU_FN;
    uint64_t len = 0;

    harness_init(argc, argv, NULL);
    if (env != NULL && atoi(env) > 0) {
        wait_ms = (unsigned)atoi(env);
    }
    find_edu(&b, &d, &f);
    printf("# edu at %02x:%02x.%x, waits up to %u ms\n", b, d, f, wait_ms);
    if (!CHECK_KR(apple_dext_connect_target(harness_target(), b, d, f, &c),
                  kIOReturnSuccess) ||
        !CHECK_KR(apple_dext_claim(c), kIOReturnSuccess)) {
        return harness_finish();
    }
    mem = map_shared(REGION_SIZE);
    if (!CHECK_KR(apple_dext_register_dma(c, REGION_IOVA, (uintptr_t)mem,
                                          REGION_SIZE, &bus, &len),
                  kIOReturnSuccess) ||
        !CHECK(len >= REGION_SIZE && bus + REGION_SIZE <= EDU_DMA_MASK + 1)) {
        apple_dext_disconnect(c);
        return harness_finish();
    }
    /* Start from the idle device a driver expects. */
    wait_clear(EDU_REG_STATUS, 4, EDU_STATUS_COMPUTING);
    wait_clear(EDU_REG_DMA_CMD, 8, EDU_DMA_RUN);
    wr(EDU_REG_STATUS, 4, 0);
    wr(EDU_REG_IRQ_ACK, 4, ALL_ONES_32);

    test_identity();
    test_config_writes();
    test_bar0_widths();
    test_id_liveness();
    test_irq_regs();            /* MSI off: INTx */
    test_factorial();
    test_msi_setup();
    test_irq_regs();            /* MSI on */
    test_factorial();
    test_dma();
    test_reset();

    CHECK_KR(apple_dext_unregister_dma(c, REGION_IOVA), kIOReturnSuccess);
    apple_dext_disconnect(c);
    munmap(mem, REGION_SIZE);
    return harness_finish();
}
