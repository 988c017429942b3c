/*
 * SPDX-License-Identifier: MIT
 *
 * The bad-input matrix: every public function called with every class
 * of bad argument it can be given.  Each case checks the documented
 * IOReturn code and, because a refused call must be a no-op, that
 * nothing the dext or the device holds changed: the status counters,
 * each connection's device status, both devices' config space and the
 * edu scratch register are compared before and after every case.
 *
 * Two devices: the default edu (00:03.0) and an edu whose BAR0 is a
 * 64-bit BAR (00:05.0), which gives the "upper half of a 64-bit BAR"
 * cases something to hit.  The second device stays unclaimed for the
 * "before claim" cases, then is claimed for the range cases.
 */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "edu.h"

#define DEVICES     "edu+edu,bdf=00:05.0,bar64=1"
#define B64_DEV     5
#define REGION_IOVA 0x40000ull
#define REGION_SIZE 0x4000ull

typedef struct Snapshot {
    AppleDextStatus st;
    AppleDextDeviceStatus ds[3];
    uint8_t cfg[2][256];
    uint64_t scratch;
} Snapshot;

static io_connect_t conns[3];       /* idle, claimed + all, bar64 device */
static unsigned ncases;
static const char *section;

static void take_snapshot(Snapshot *s)
{
    unsigned i;

    memset(s, 0, sizeof(*s));
    apple_dext_get_status(harness_target(), &s->st);
    /* Not part of the state a refused call may touch. */
    s->st.irqs_raised = s->st.irqs_dropped = 0;
    for (i = 0; i < 3; i++) {
        apple_dext_get_device_status(conns[i], &s->ds[i]);
    }
    apple_dext_config_read_raw(conns[1], 0, s->cfg[0], sizeof(s->cfg[0]));
    apple_dext_config_read_raw(conns[2], 0, s->cfg[1], sizeof(s->cfg[1]));
    if (apple_dext_mmio_read(conns[1], 0, EDU_REG_LIVENESS, 4, &s->scratch) !=
        kIOReturnSuccess) {
        s->scratch = ~0ull;
    }
}

/*
 * Field by field: the structs have padding, which the library need not
 * preserve.  Returns the name of the first field that differs, or NULL.
 */
static const char *snapshot_diff(const Snapshot *a, const Snapshot *b)
{
    unsigned i;

#define DIFF(f) if (a->f != b->f) return #f
    DIFF(st.devices);
    DIFF(st.sessions);
    DIFF(st.claims);
    DIFF(st.dma_regions);
    DIFF(st.dma_region_bytes);
    DIFF(st.dma_buffers);
    DIFF(st.irq_sessions);
    DIFF(st.iommu_faults);
    /*
     * Not st.channels: every snapshot's status query is a connection of
     * its own, which dextd reaps asynchronously after it closes.
     */
    for (i = 0; i < 3; i++) {
        DIFF(ds[i].claims);
        DIFF(ds[i].sessions);
        DIFF(ds[i].irq_vectors);
        DIFF(ds[i].claimed);
        DIFF(ds[i].dma_regions);
        DIFF(ds[i].terminated);
    }
    DIFF(scratch);
#undef DIFF
    if (memcmp(a->cfg, b->cfg, sizeof(a->cfg)) != 0) {
        return "config space";
    }
    return NULL;
}

static void check_case(const char *expr, kern_return_t got,
                       kern_return_t want, const Snapshot *before,
                       int line)
{
    Snapshot after;
    const char *diff;

    ncases++;
    harness_check_kr(got, want, __FILE__, line, expr);
    take_snapshot(&after);
    diff = snapshot_diff(before, &after);
    harness_check(diff == NULL, __FILE__, line,
                  "[%s] %s changed %s", section, expr, diff ? diff : "");
}

/* One case: evaluate @expr between two snapshots of the whole state. */
#define CASE(want, expr) do {                                           \
        Snapshot before_;                                               \
        take_snapshot(&before_);                                        \
        check_case(#expr, (expr), (want), &before_, __LINE__);          \
    } while (0)

/* A case whose result is not an IOReturn: @cond must hold afterwards. */
#define CASE_TRUE(cond) do {                                            \
        Snapshot before_;                                               \
        bool ok_;                                                       \
        take_snapshot(&before_);                                        \
        ok_ = (cond);                                                   \
        check_case(#cond, ok_ ? kIOReturnSuccess : kIOReturnError,      \
                   kIOReturnSuccess, &before_, __LINE__);               \
    } while (0)

static void dummy_handler(void *opaque)
{
}

/* Every function that takes a connection, with handle @c. */
static void bad_handle_cases(io_connect_t c, kern_return_t want)
{
    uint64_t v = 0, pend[4] = { 0 }, mask[4] = { ~0ull, ~0ull, ~0ull, ~0ull };
    uint8_t buf[16] = { 0 }, idx = 0, type = 0;
    uint32_t nvec = 0;
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    volatile uint64_t *page = NULL;
    AppleDextDeviceInfo info;
    AppleDextDeviceStatus ds;
    AppleDextDMABuffer db;

    CASE(want, apple_dext_claim(c));
    CASE(want, apple_dext_register_dma(c, 0x1000, 0x1000, 0x1000, &v, &v));
    CASE(want, apple_dext_unregister_dma(c, 0x1000));
    CASE(want, apple_dext_probe_dma(c, 0x1000, 0, &v));
    CASE(want, apple_dext_config_read(c, 0, 4, &v));
    CASE(want, apple_dext_config_write(c, 0x40, 4, 0));
    CASE(want, apple_dext_config_read_block(c, 0, buf, sizeof(buf)));
    CASE(want, apple_dext_config_write_block(c, 0x40, buf, 4));
    CASE(want, apple_dext_config_read_raw(c, 0, buf, sizeof(buf)));
    CASE(want, apple_dext_get_bar_info(c, 0, &idx, &v, &type));
    CASE(want, apple_dext_map_bar(c, 0, &addr, &size, &type));
    CASE(want, apple_dext_unmap_bar(c, 0, 0x10000));
    CASE(want, apple_dext_mmio_read(c, 0, 0, 4, &v));
    CASE(want, apple_dext_mmio_write(c, 0, EDU_REG_LIVENESS, 4, 1));
    CASE(want, apple_dext_setup_interrupts(c, &nvec));
    CASE(want, apple_dext_reset_device(c));
    CASE(want, apple_dext_set_irq_mask(c, mask));
    CASE(want, apple_dext_read_pending_irqs(c, pend));
    CASE(want, apple_dext_drain_pending_irqs(c, pend));
    CASE(want, apple_dext_map_irq_page(c, &page));
    CASE(want, apple_dext_get_identity(c, &info));
    CASE(want, apple_dext_get_device_status(c, &ds));
    CASE(want, apple_dext_allocate_dma_buffer(c, 4096, 0, &db));
    CASE(want, apple_dext_free_dma_buffer(c));
    CASE(want, apple_dext_map_dma_buffer(c, &addr, &size));
    CASE(want, apple_dext_unmap_dma_buffer(c, 0x10000));
    CASE(want, apple_dext_terminate(c));
    CASE_TRUE(apple_dext_interrupt_notify_create(c, dummy_handler, NULL) ==
              NULL);
    CASE_TRUE(apple_dext_interrupt_notify_create_fd(c) == NULL);
    CASE_TRUE((apple_dext_disconnect(c), true));
}

static void handle_matrix(void)
{
    io_connect_t stale;

    section = "null connection";
    bad_handle_cases(IO_OBJECT_NULL, kIOReturnBadArgument);
    section = "made-up connection";
    bad_handle_cases((io_connect_t)0x5a5a5a5a, kIOReturnBadArgument);

    section = "closed connection";
    stale = harness_connect_edu();
    apple_dext_disconnect(stale);
    bad_handle_cases(stale, kIOReturnBadArgument);
}

/* The library entry points that take no connection. */
static void global_cases(void)
{
    AppleDextDeviceInfo info[2];
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    io_connect_t c = 7;
    uint32_t n;

    section = "targets";
    CASE(kIOReturnBadArgument,
         apple_dext_connect_target(harness_target(), 0, 3, 0, NULL));
    CASE(kIOReturnNotFound,
         apple_dext_connect_target(harness_target(), 0, 4, 0, &c));
    CASE_TRUE(c == IO_OBJECT_NULL);
    CASE(kIOReturnBadArgument,
         apple_dext_connect_target("nosuchscheme:x", 0, 3, 0, &c));
    CASE_TRUE(apple_dext_connect(0xff, 0x1f, 7) == IO_OBJECT_NULL);
    CASE(kIOReturnBadArgument,
         apple_dext_list_devices(harness_target(), info, 2, NULL));
    CASE(kIOReturnBadArgument,
         apple_dext_list_devices(harness_target(), NULL, 2, &n));
    CASE(kIOReturnBadArgument, apple_dext_get_status(harness_target(), NULL));
    CASE(kIOReturnBadArgument, apple_dext_get_status("nosuchscheme:x", &st));
    CASE_TRUE(apple_dext_strerror((kern_return_t)0x12345678) != NULL);
    CASE(kIOReturnBadArgument, apple_dext_interrupt_notify_rearm(NULL));
    CASE_TRUE(apple_dext_interrupt_notify_get_fd(NULL) < 0);
    CASE_TRUE((apple_dext_interrupt_notify_destroy(NULL), true));
}

/*
 * Calls that need a claim or interrupt setup, on the bar64 device that
 * nobody has claimed yet (so the device is not open either).
 */
static void unclaimed_cases(uint8_t *mem)
{
    io_connect_t c = conns[2];
    uint64_t v, pend[4], mask[4] = { 1, 0, 0, 0 };
    mach_vm_address_t addr;
    mach_vm_size_t size;
    volatile uint64_t *page;
    AppleDextDMABuffer db;
    uint32_t nvec;

    section = "before claim";
    CASE(kIOReturnNotOpen,
         apple_dext_register_dma(c, REGION_IOVA, (uintptr_t)mem, REGION_SIZE,
                                 &v, &v));
    CASE(kIOReturnNotOpen, apple_dext_allocate_dma_buffer(c, 4096, 0, &db));
    CASE(kIOReturnNotOpen, apple_dext_setup_interrupts(c, &nvec));
    CASE(kIOReturnNotOpen, apple_dext_reset_device(c));
    CASE(kIOReturnNotOpen, apple_dext_mmio_read(c, 0, 0, 4, &v));
    CASE(kIOReturnNotOpen, apple_dext_mmio_write(c, 0, EDU_REG_LIVENESS, 4,
                                                 1));
    CASE(kIOReturnNotFound, apple_dext_unregister_dma(c, REGION_IOVA));
    CASE(kIOReturnNotFound, apple_dext_probe_dma(c, REGION_IOVA, 0, &v));
    CASE(kIOReturnNotReady, apple_dext_map_dma_buffer(c, &addr, &size));

    section = "before interrupt setup";
    CASE(kIOReturnNotReady, apple_dext_read_pending_irqs(c, pend));
    CASE(kIOReturnNotReady, apple_dext_drain_pending_irqs(c, pend));
    CASE(kIOReturnNotReady, apple_dext_set_irq_mask(c, mask));
    CASE(kIOReturnNotReady, apple_dext_map_irq_page(c, &page));
    CASE_TRUE(apple_dext_interrupt_notify_create(c, dummy_handler, NULL) ==
              NULL);
    CASE_TRUE(apple_dext_interrupt_notify_create_fd(c) == NULL);
}

/* The 64-bit BAR device, now claimed: BAR numbering and BAR ranges. */
static void bar64_cases(void)
{
    io_connect_t c = conns[2];
    uint8_t idx, type;
    uint64_t v, sz;
    mach_vm_address_t addr;
    mach_vm_size_t msize;

    section = "64-bit BAR";
    CASE(kIOReturnSuccess, apple_dext_get_bar_info(c, 0, &idx, &sz, &type));
    CASE_TRUE(type == 0x4 && idx == 0 && sz == 0x100000);
    CASE(kIOReturnNotFound, apple_dext_get_bar_info(c, 1, &idx, &sz, &type));
    CASE(kIOReturnNotFound, apple_dext_map_bar(c, 1, &addr, &msize, &type));
    /* The register view hides the upper half too. */
    CASE(kIOReturnSuccess, apple_dext_config_read(c, 0x14, 4, &v));
    CASE_TRUE(v == 0);
    CASE(kIOReturnBadArgument, apple_dext_mmio_read(c, 1, 0, 4, &v));
    CASE(kIOReturnBadArgument, apple_dext_mmio_write(c, 1, 0, 4, 0));

    section = "BAR index";
    CASE(kIOReturnBadArgument, apple_dext_get_bar_info(c, 6, &idx, &sz,
                                                       &type));
    CASE(kIOReturnBadArgument, apple_dext_get_bar_info(c, 255, &idx, &sz,
                                                       &type));
    CASE(kIOReturnBadArgument, apple_dext_map_bar(c, 6, &addr, &msize,
                                                  &type));
    CASE(kIOReturnBadArgument, apple_dext_map_bar(c, 0, NULL, &msize, &type));
    CASE(kIOReturnBadArgument, apple_dext_map_bar(c, 0, &addr, NULL, &type));
    CASE(kIOReturnBadArgument, apple_dext_unmap_bar(c, 6, 0x10000));
    CASE(kIOReturnBadArgument, apple_dext_unmap_bar(c, 0, 0x10000));
}

/*
 * @wbad: what a write with a bad argument answers on @c: BadArgument for
 * a claimer, NotOpen for a connection without a claim (the claim is
 * checked first; test-access.c).
 */
static void config_cases(io_connect_t c, kern_return_t wbad)
{
    static const uint64_t widths[] = { 0, 3, 5, 8, 16, ~0ull };
    static const uint64_t offsets[] = { 256, 4096, 0x10000, ~0ull - 1 };
    uint8_t buf[300];
    uint64_t v;
    unsigned i;

    section = "config widths";
    for (i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
        CASE(kIOReturnBadArgument, apple_dext_config_read(c, 0, widths[i],
                                                          &v));
        CASE(wbad, apple_dext_config_write(c, 0x40, widths[i], 0));
    }
    section = "config offsets";
    for (i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        CASE(kIOReturnBadArgument, apple_dext_config_read(c, offsets[i], 1,
                                                          &v));
        CASE(wbad, apple_dext_config_write(c, offsets[i], 1, 0));
        CASE(kIOReturnBadArgument,
             apple_dext_config_read_block(c, offsets[i], buf, 4));
        CASE(kIOReturnBadArgument,
             apple_dext_config_read_raw(c, offsets[i], buf, 4));
        /* Past 4 KiB the library refuses the range itself. */
        CASE(offsets[i] > 4096 - 4 ? kIOReturnBadArgument : wbad,
             apple_dext_config_write_block(c, offsets[i], buf, 4));
    }
    /* Straddling the end, and misaligned for the width. */
    CASE(kIOReturnBadArgument, apple_dext_config_read(c, 254, 4, &v));
    CASE(kIOReturnBadArgument, apple_dext_config_read(c, 1, 2, &v));
    CASE(kIOReturnBadArgument, apple_dext_config_read(c, 2, 4, &v));
    CASE(wbad, apple_dext_config_write(c, 0x41, 2, 0));
    CASE(kIOReturnBadArgument, apple_dext_config_read_block(c, 200, buf, 57));
    CASE(kIOReturnBadArgument, apple_dext_config_read_raw(c, 1, buf, 256));
    CASE(wbad, apple_dext_config_write_block(c, 250, buf, 7));
    CASE(kIOReturnBadArgument, apple_dext_config_read_block(c, 0, buf,
                                                            sizeof(buf)));
    section = "config null pointers";
    CASE(kIOReturnBadArgument, apple_dext_config_read(c, 0, 4, NULL));
    CASE(kIOReturnBadArgument, apple_dext_config_read_block(c, 0, NULL, 4));
    CASE(kIOReturnBadArgument, apple_dext_config_read_raw(c, 0, NULL, 4));
    CASE(kIOReturnBadArgument, apple_dext_config_write_block(c, 0x40, NULL,
                                                             4));
}

/* @wbad: as for config_cases(). */
static void mmio_cases(io_connect_t c, kern_return_t wbad)
{
    static const uint64_t widths[] = { 0, 3, 5, 16, ~0ull };
    static const uint64_t offsets[] = { 0x100000, 0x100004, 0xfffffffcull,
                                        ~0ull - 3, ~0ull - 7 };
    uint64_t v;
    unsigned i;

    section = "MMIO widths";
    for (i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
        CASE(kIOReturnBadArgument, apple_dext_mmio_read(c, 0, 0, widths[i],
                                                        &v));
        CASE(wbad, apple_dext_mmio_write(c, 0, EDU_REG_LIVENESS, widths[i],
                                         0));
    }
    section = "MMIO offsets past the BAR";
    for (i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        CASE(kIOReturnBadArgument, apple_dext_mmio_read(c, 0, offsets[i], 4,
                                                        &v));
        CASE(wbad, apple_dext_mmio_write(c, 0, offsets[i], 4, 0));
    }
    CASE(kIOReturnBadArgument, apple_dext_mmio_read(c, 0, 0xffffc, 8, &v));
    CASE(kIOReturnBadArgument, apple_dext_mmio_read(c, 0, 2, 4, &v));
    CASE(wbad, apple_dext_mmio_write(c, 0, 6, 4, 0));
    section = "MMIO memory index";
    CASE(kIOReturnBadArgument, apple_dext_mmio_read(c, 1, 0, 4, &v));
    CASE(kIOReturnBadArgument, apple_dext_mmio_read(c, 6, 0, 4, &v));
    CASE(kIOReturnBadArgument, apple_dext_mmio_read(c, 255, 0, 4, &v));
    CASE(wbad, apple_dext_mmio_write(c, 255, 0, 4, 0));
    CASE(kIOReturnBadArgument, apple_dext_mmio_read(c, 0, 0, 4, NULL));
}

static void dma_cases(io_connect_t c, uint8_t *mem)
{
    uintptr_t va = (uintptr_t)mem;
    uint64_t v, bus, len;
    mach_vm_address_t addr;
    mach_vm_size_t size;
    AppleDextDMABuffer db;

    section = "DMA regions";
    CASE(kIOReturnBadArgument,
         apple_dext_register_dma(c, 0x100000, va, 0, &bus, &len));
    CASE(kIOReturnBadArgument,
         apple_dext_register_dma(c, 0x100000, 0, REGION_SIZE, &bus, &len));
    CASE(kIOReturnBadArgument,
         apple_dext_register_dma(c, ~0ull - 0xfff, va, REGION_SIZE, &bus,
                                 &len));
    CASE(kIOReturnBadArgument,
         apple_dext_register_dma(c, 0x100000, ~0ull - 0xfff, REGION_SIZE,
                                 &bus, &len));
    CASE(kIOReturnBadArgument,
         apple_dext_register_dma(c, 0x100000, va, ~0ull, &bus, &len));
    CASE(kIOReturnStillOpen,
         apple_dext_register_dma(c, REGION_IOVA, va, REGION_SIZE, &bus,
                                 &len));
    CASE(kIOReturnNotFound, apple_dext_unregister_dma(c, 0x900000));
    CASE(kIOReturnNotFound, apple_dext_unregister_dma(c, REGION_IOVA + 8));
    CASE(kIOReturnNotFound, apple_dext_unregister_dma(c, ~0ull));
    CASE(kIOReturnNotFound, apple_dext_probe_dma(c, 0x900000, 0, &v));
    CASE(kIOReturnNotFound, apple_dext_probe_dma(c, REGION_IOVA + 8, 0, &v));
    CASE(kIOReturnOverrun, apple_dext_probe_dma(c, REGION_IOVA,
                                                REGION_SIZE - 7, &v));
    CASE(kIOReturnOverrun, apple_dext_probe_dma(c, REGION_IOVA, REGION_SIZE,
                                                &v));
    CASE(kIOReturnOverrun, apple_dext_probe_dma(c, REGION_IOVA, ~0ull - 3,
                                                &v));
    CASE(kIOReturnBadArgument, apple_dext_probe_dma(c, REGION_IOVA, 0, NULL));

    section = "DMA buffer";
    CASE(kIOReturnBadArgument, apple_dext_allocate_dma_buffer(c, 0, 0, &db));
    CASE(kIOReturnBadArgument,
         apple_dext_allocate_dma_buffer(c, (3ull << 29) + 1, 0, &db));
    CASE(kIOReturnBadArgument,
         apple_dext_allocate_dma_buffer(c, ~0ull, 0, &db));
    CASE(kIOReturnBadArgument, apple_dext_map_dma_buffer(c, NULL, &size));
    CASE(kIOReturnBadArgument, apple_dext_map_dma_buffer(c, &addr, NULL));
    CASE(kIOReturnBadArgument, apple_dext_unmap_dma_buffer(c, 0x10000));
    CASE(kIOReturnBadArgument, apple_dext_unmap_dma_buffer(c, 0));
}

static void irq_cases(io_connect_t c)
{
    uint32_t nvec;

    section = "interrupts set up";
    CASE(kIOReturnStillOpen, apple_dext_setup_interrupts(c, &nvec));
    CASE(kIOReturnStillOpen, apple_dext_setup_interrupts(c, NULL));
    CASE(kIOReturnBadArgument, apple_dext_set_irq_mask(c, NULL));
    CASE(kIOReturnBadArgument, apple_dext_read_pending_irqs(c, NULL));
    CASE(kIOReturnBadArgument, apple_dext_drain_pending_irqs(c, NULL));
    CASE(kIOReturnBadArgument, apple_dext_map_irq_page(c, NULL));

    section = "identity and status";
    CASE(kIOReturnBadArgument, apple_dext_get_identity(c, NULL));
    CASE(kIOReturnBadArgument, apple_dext_get_device_status(c, NULL));
}

int main(int argc, char **argv)
{
    uint8_t *mem;
    uint64_t bus, len;
    AppleDextDMABuffer db;

    harness_init(argc, argv, DEVICES);

    mem = mmap(NULL, 2 * REGION_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!CHECK(mem != MAP_FAILED)) {
        return harness_finish();
    }
    memset(mem, 0xa5, 2 * REGION_SIZE);

    conns[0] = harness_connect_edu();
    conns[1] = harness_connect_edu();
    conns[2] = harness_connect(EDU_BUS, B64_DEV, EDU_FN);
    if (!conns[0] || !conns[1] || !conns[2]) {
        return harness_finish();
    }

    /* conns[1] holds one of everything, so "unchanged" means something. */
    CHECK_KR(apple_dext_claim(conns[1]), kIOReturnSuccess);
    CHECK_KR(apple_dext_register_dma(conns[1], REGION_IOVA, (uintptr_t)mem,
                                     REGION_SIZE, &bus, &len),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_allocate_dma_buffer(conns[1], 8192, 0, &db),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_setup_interrupts(conns[1], NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_mmio_write(conns[1], 0, EDU_REG_LIVENESS, 4,
                                   0x1234), kIOReturnSuccess);

    handle_matrix();
    global_cases();
    unclaimed_cases(mem + REGION_SIZE);
    CHECK_KR(apple_dext_claim(conns[2]), kIOReturnSuccess);
    bar64_cases();
    config_cases(conns[1], kIOReturnBadArgument);
    config_cases(conns[0], kIOReturnNotOpen);
    mmio_cases(conns[1], kIOReturnBadArgument);
    mmio_cases(conns[0], kIOReturnNotOpen);
    dma_cases(conns[1], mem);
    irq_cases(conns[1]);

    printf("# %u bad-input cases\n", ncases);
    apple_dext_disconnect(conns[0]);
    apple_dext_disconnect(conns[1]);
    apple_dext_disconnect(conns[2]);
    munmap(mem, 2 * REGION_SIZE);
    return harness_finish();
}
