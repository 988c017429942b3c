/*
 * SPDX-License-Identifier: MIT
 *
 * The access model (docs/reliability.md, "Access model"): a connection
 * that has not claimed a device may look at it but not change it.
 *
 * By default, without a claim: identity, config reads, BAR info, device
 * status and MMIO reads (while someone holds a claim) work; config
 * writes, block config writes, MMIO writes and Terminate answer
 * kIOReturnNotOpen and change nothing; a BAR maps read-only, so that the
 * mapping cannot be made writable.  A claimer's Terminate answers
 * kIOReturnBusy while another connection holds a claim.
 *
 * Run over a dextd started with --unclaimed-writes
 * (HARNESS_DEXTD_ARGS), every one of those succeeds instead, as on the
 * macOS dext.  The in-process core always has the default policy.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.h"
#include "edu.h"
#include "ivshmem.h"

#define DEVICES       "edu+edu,bdf=00:07.0+edu,bdf=00:08.0+ivshmem"
#define TERM_DEV      7         /* terminate without a claim */
#define BUSY_DEV      8         /* terminate while another claims */
#define PCI_INT_LINE  0x3c

/* Whether the dext lets connections without a claim write. */
static bool open_policy;

/* The answer the access model gives: @refused by default. */
static kern_return_t want(kern_return_t refused)
{
    return open_policy ? kIOReturnSuccess : refused;
}

static uint64_t cfg8(io_connect_t c, uint64_t off)
{
    uint64_t v = ~0ull;

    CHECK_KR(apple_dext_config_read(c, off, 1, &v), kIOReturnSuccess);
    return v;
}

/* Looking needs no claim; MMIO reads need the device open by someone. */
static void test_reads(io_connect_t u, io_connect_t k)
{
    AppleDextDeviceInfo info;
    AppleDextDeviceStatus ds;
    uint8_t cfg[64], idx = 0xff;
    uint64_t v = 0, size = 0;

    harness_section("without a claim: identity, config, BAR info, status");
    CHECK_KR(apple_dext_get_identity(u, &info), kIOReturnSuccess);
    CHECK_EQ(info.device_id, EDU_DEVICE_ID);
    CHECK_KR(apple_dext_config_read(u, 0, 4, &v), kIOReturnSuccess);
    CHECK_EQ(v, (EDU_DEVICE_ID << 16) | EDU_VENDOR_ID);
    CHECK_KR(apple_dext_config_read_block(u, 0, cfg, sizeof(cfg)),
             kIOReturnSuccess);
    CHECK_EQ(cfg[2] | cfg[3] << 8, EDU_DEVICE_ID);
    CHECK_KR(apple_dext_get_bar_info(u, 0, &idx, &size, NULL),
             kIOReturnSuccess);
    CHECK_EQ(size, EDU_BAR0_SIZE);
    CHECK_KR(apple_dext_get_device_status(u, &ds), kIOReturnSuccess);
    CHECK(!ds.claimed);
    /* Its own per-session state is its own business. */
    CHECK_KR(apple_dext_free_dma_buffer(u), kIOReturnSuccess);

    harness_section("without a claim: MMIO reads once the device is open");
    CHECK_KR(apple_dext_mmio_read(u, EDU_MEM_IDX, EDU_REG_ID, 4, &v),
             kIOReturnNotOpen);
    CHECK_KR(apple_dext_claim(k), kIOReturnSuccess);
    CHECK_KR(apple_dext_mmio_read(u, EDU_MEM_IDX, EDU_REG_ID, 4, &v),
             kIOReturnSuccess);
    CHECK_EQ(v, EDU_ID_VALUE);
    edu_write32(k, EDU_REG_LIVENESS, 0x1234);
    CHECK_KR(apple_dext_mmio_read(u, EDU_MEM_IDX, EDU_REG_LIVENESS, 4, &v),
             kIOReturnSuccess);
    CHECK_EQ(v, (uint32_t)~0x1234u);
}

/* Writes without a claim, with the device open by @k. */
static void test_writes(io_connect_t u, io_connect_t k)
{
    uint64_t line = cfg8(k, PCI_INT_LINE);
    uint8_t byte = (uint8_t)(line ^ 0x5a);

    harness_section("without a claim: config writes");
    CHECK_KR(apple_dext_config_write(u, PCI_INT_LINE, 1, byte),
             want(kIOReturnNotOpen));
    CHECK_EQ(cfg8(k, PCI_INT_LINE), (open_policy ? byte : line));
    line = cfg8(k, PCI_INT_LINE);
    byte = (uint8_t)(line ^ 0xa5);
    CHECK_KR(apple_dext_config_write_block(u, PCI_INT_LINE, &byte, 1),
             want(kIOReturnNotOpen));
    CHECK_EQ(cfg8(k, PCI_INT_LINE), (open_policy ? byte : line));

    harness_section("without a claim: MMIO writes");
    edu_write32(k, EDU_REG_LIVENESS, 0x1234);
    CHECK_KR(apple_dext_mmio_write(u, EDU_MEM_IDX, EDU_REG_LIVENESS, 4,
                                   0x4321), want(kIOReturnNotOpen));
    CHECK_EQ(edu_read32(k, EDU_REG_LIVENESS),
             (open_policy ? ~0x4321u : ~0x1234u));
    CHECK_KR(apple_dext_mmio_write(u, EDU_MEM_IDX, EDU_REG_DMA_SRC, 8,
                                   0x100000), want(kIOReturnNotOpen));

    harness_section("without a claim: reset, under every policy");
    CHECK_KR(apple_dext_reset_device(u), kIOReturnNotOpen);
}

/* The store store_fails() makes, per thread, as core/guarded-copy.c. */
static __thread struct {
    sigjmp_buf env;
    volatile uintptr_t addr;            /* 0: not probing */
} probe;
static struct sigaction probe_old_segv, probe_old_bus;

/*
 * Only the probing thread's fault at the probed address jumps back.
 * Any other fault gets the handler that was there before (in process,
 * the core's SIGBUS guard): put back, it takes the fault when the
 * instruction runs again.
 */
static void on_probe_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (probe.addr != 0 && (uintptr_t)si->si_addr == probe.addr) {
        siglongjmp(probe.env, 1);
    }
    sigaction(sig, sig == SIGBUS ? &probe_old_bus : &probe_old_segv, NULL);
}

/*
 * A store through @p, here: true if the MMU refused it.  In this process
 * rather than a forked child, whose copy of the mapping would prove
 * nothing where a child has none (an IOKit mapping on macOS), and with
 * SIGBUS too, which macOS raises for a write to a read-only page.
 */
static bool store_fails(volatile uint32_t *p)
{
    struct sigaction sa = { .sa_sigaction = on_probe_fault,
                            .sa_flags = SA_SIGINFO };
    bool failed = true;

    sigemptyset(&sa.sa_mask);
    if (!CHECK(sigaction(SIGSEGV, &sa, &probe_old_segv) == 0)) {
        return false;
    }
    if (!CHECK(sigaction(SIGBUS, &sa, &probe_old_bus) == 0)) {
        sigaction(SIGSEGV, &probe_old_segv, NULL);
        return false;
    }
    if (sigsetjmp(probe.env, 1) == 0) {
        probe.addr = (uintptr_t)&p[2];
        p[2] = 0xbadc0de;
        probe.addr = 0;
        failed = false;
    }
    probe.addr = 0;
    sigaction(SIGSEGV, &probe_old_segv, NULL);
    sigaction(SIGBUS, &probe_old_bus, NULL);
    return failed;
}

/* ivshmem BAR2 (shared memory) mapped by a connection without a claim. */
static void test_map(io_connect_t ui, io_connect_t ki)
{
    mach_vm_address_t a = 0, b = 0;
    mach_vm_size_t sa = 0, sb = 0;
    volatile uint32_t *pa, *pb;
    uint64_t v = 0;
    int ret;

    harness_section("without a claim: BAR2 maps read-only");
    CHECK_KR(apple_dext_claim(ki), kIOReturnSuccess);
    if (!CHECK_KR(apple_dext_map_bar(ki, IVSHMEM_BAR_SHM, &a, &sa, NULL),
                  kIOReturnSuccess) ||
        !CHECK_KR(apple_dext_map_bar(ui, IVSHMEM_BAR_SHM, &b, &sb, NULL),
                  kIOReturnSuccess)) {
        return;
    }
    CHECK_EQ(sb, sa);
    pa = (volatile uint32_t *)(uintptr_t)a;
    pb = (volatile uint32_t *)(uintptr_t)b;
    /* The claimer's own mapping is writable, and shared with the reader. */
    pa[0] = 0x5eed1234;
    pa[2] = 0x0ddba11;
    CHECK_EQ(pb[0], 0x5eed1234);

    errno = 0;
    ret = mprotect((void *)(uintptr_t)b, (size_t)sb, PROT_READ | PROT_WRITE);
    if (open_policy) {
        CHECK_EQ(ret, 0);
        pb[1] = 0xfeedbeef;
        CHECK_EQ(pa[1], 0xfeedbeef);
        CHECK_KR(apple_dext_mmio_read(ki, IVSHMEM_MEM_SHM, 4, 4, &v),
                 kIOReturnSuccess);
        CHECK_EQ(v, 0xfeedbeef);
    } else {
        /* The fd behind it was opened read-only: no way to write. */
        CHECK_EQ(ret, -1);
        CHECK_EQ(errno, EACCES);
        /* The probe itself: the claimer's mapping takes the store. */
        CHECK(!store_fails(pa));
        pa[2] = 0x0ddba11;
        CHECK(store_fails(pb));
        CHECK_EQ(pa[2], 0x0ddba11);
    }
    CHECK_KR(apple_dext_unmap_bar(ui, IVSHMEM_BAR_SHM, b), kIOReturnSuccess);
    CHECK_KR(apple_dext_unmap_bar(ki, IVSHMEM_BAR_SHM, a), kIOReturnSuccess);
}

/*
 * In process only (the limit is this process's): the dext has no fd left
 * for the read-only copy of BAR2's fd.  The map fails cleanly, leaks no
 * fd and works again once fds are available.  Not over iokit: the real
 * dext runs in a process of its own, whose fds this one cannot use up
 * (the model's runs here, but the kernel would hand its NoResources back
 * as BadArgument, which the transport cannot tell from a missing claim).
 */
static void test_map_no_fd(io_connect_t ui)
{
    mach_vm_address_t b = 0;
    mach_vm_size_t sb = 0;
    struct rlimit was, low;
    int lowest, before;
    kern_return_t kr;

    if (harness_is_unix() || harness_is_iokit()) {
        return;
    }
    harness_section("without a claim: no fd left for the read-only copy");
    /* The backend's dup gets the lowest free fd; the reopen finds none. */
    lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!CHECK(lowest >= 0) || !CHECK(getrlimit(RLIMIT_NOFILE, &was) == 0)) {
        return;
    }
    close(lowest);
    before = harness_count_fds(getpid());
    low = was;
    low.rlim_cur = (rlim_t)lowest + 1;
    if (!CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0)) {
        return;
    }
    kr = apple_dext_map_bar(ui, IVSHMEM_BAR_SHM, &b, &sb, NULL);
    CHECK(setrlimit(RLIMIT_NOFILE, &was) == 0);
    CHECK_KR(kr, kIOReturnNoResources);
    CHECK_EQ(harness_count_fds(getpid()), before);
    if (CHECK_KR(apple_dext_map_bar(ui, IVSHMEM_BAR_SHM, &b, &sb, NULL),
                 kIOReturnSuccess)) {
        CHECK_KR(apple_dext_unmap_bar(ui, IVSHMEM_BAR_SHM, b),
                 kIOReturnSuccess);
    }
}

static void test_terminate(void)
{
    io_connect_t u, c, x, y;

    harness_section("Terminate without a claim");
    u = harness_connect(0, TERM_DEV, 0);
    c = harness_connect(0, TERM_DEV, 0);
    if (u == IO_OBJECT_NULL || c == IO_OBJECT_NULL) {
        return;
    }
    CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
    CHECK_KR(apple_dext_terminate(u), want(kIOReturnNotOpen));
    CHECK_EQ(harness_listed(TERM_DEV, NULL), (!open_policy));
    CHECK_KR(apple_dext_get_identity(c, &(AppleDextDeviceInfo){ 0 }),
             open_policy ? kIOReturnNoDevice : kIOReturnSuccess);
    apple_dext_disconnect(u);
    apple_dext_disconnect(c);

    harness_section("Terminate while another connection holds a claim");
    x = harness_connect(0, BUSY_DEV, 0);
    y = harness_connect(0, BUSY_DEV, 0);
    if (x == IO_OBJECT_NULL || y == IO_OBJECT_NULL) {
        return;
    }
    CHECK_KR(apple_dext_claim(x), kIOReturnSuccess);
    CHECK_KR(apple_dext_claim(y), kIOReturnSuccess);
    CHECK_KR(apple_dext_terminate(x), want(kIOReturnBusy));
    CHECK_EQ(harness_listed(BUSY_DEV, NULL), (!open_policy));
    if (!open_policy) {
        /* The other claimer still works; once it has gone, x may. */
        CHECK_EQ(edu_read32(y, EDU_REG_ID), EDU_ID_VALUE);
        apple_dext_disconnect(y);
        y = IO_OBJECT_NULL;
        CHECK_KR(apple_dext_terminate(x), kIOReturnSuccess);
        CHECK(!harness_listed(BUSY_DEV, NULL));
    }
    apple_dext_disconnect(x);
    apple_dext_disconnect(y);
}

int main(int argc, char **argv)
{
    const char *extra = getenv("HARNESS_DEXTD_ARGS");
    io_connect_t u, k, ui, ki;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };

    harness_init(argc, argv, DEVICES);
    open_policy = harness_is_unix() && extra != NULL &&
                  strstr(extra, "--unclaimed-writes") != NULL;
    printf("# policy: %s\n", open_policy ? "--unclaimed-writes" :
           "default (writes need a claim)");

    u = harness_connect_edu();
    k = harness_connect_edu();
    ui = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    ki = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    if (u == IO_OBJECT_NULL || k == IO_OBJECT_NULL ||
        ui == IO_OBJECT_NULL || ki == IO_OBJECT_NULL) {
        return harness_finish();
    }
    test_reads(u, k);
    test_writes(u, k);
    test_map(ui, ki);
    test_map_no_fd(ui);
    test_terminate();

    apple_dext_disconnect(u);
    apple_dext_disconnect(k);
    apple_dext_disconnect(ui);
    apple_dext_disconnect(ki);
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, 0);
        CHECK_EQ(st.claims, 0);
        CHECK_EQ(st.devices, (open_policy ? 2 : 3));
    }
    return harness_finish();
}
