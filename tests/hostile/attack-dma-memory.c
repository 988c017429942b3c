/*
 * SPDX-License-Identifier: MIT
 *
 * Hostile suite, family "dma-memory": client memory behind DMA regions
 * that is not what it claims to be.
 *
 *  - Regions over unmapped memory, memory unmapped after registration,
 *    read-only and PROT_NONE memory: registration fails or device DMA
 *    faults (nothing is written where the client may not write), and
 *    dextd lives.
 *  - Huge and wrapping ranges, offsets and bus addresses.
 *  - A page that stalls for ever (finding 2, decision 2): a region whose
 *    middle page is registered with a userfaultfd in MISSING mode and
 *    never served, edu DMA from it and ProbeDMARegion on it.  While
 *    they hang, another client's factorial, RegisterDMARegion (edu and
 *    ivshmem) and ResetDevice, STATUS, LIST and OPEN of every device all
 *    answer within HOSTILE_ANSWER_MS.  Then the fault is resolved and
 *    everything must clean up.
 *  - Files sent beside RegisterDMARegion that lie (core/dma.c maps them
 *    for emulated DMA): a pipe, a file shorter than the region, an
 *    offset at another page offset than the memory -- refused; a file
 *    sent read-only or sealed against writes -- registered, copied with
 *    process_vm_* (the file is never written); a file that is not the
 *    memory at the address -- the device reaches the file, the client's
 *    own; and a file truncated and grown by another thread while edu DMA
 *    runs through it -- dextd takes the SIGBUSes and lives.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "edu.h"
#include "hostile.h"
#include "hostile-wire.h"
#include "ivshmem.h"
#include "protocol/dext-selectors.h"

#define PAGE 4096ull

static RawChan *claimed_session(uint16_t bdf)
{
    RawChan *c = NULL;
    IOReturn st = raw_session(&c, hostile_service(bdf), true);

    HCHECK(st == kIOReturnSuccess, "claimed session on %04x: 0x%x", bdf, st);
    return c;
}

/* dextd's count of IOMMU faults, or ~0 if STATUS fails. */
static uint64_t iommu_faults(void)
{
    DextWireStatusReply st;
    RawChan *c = raw_connect_hello();
    uint64_t n = ~0ull;

    if (c != NULL && raw_status(c, &st) == kIOReturnSuccess) {
        n = st.iommu_faults;
    }
    raw_close(c);
    return n;
}

static void *map_pages(size_t n, int prot)
{
    void *p = mmap(NULL, n * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

/* A registration that must be refused (with an answer). */
static void expect_refused(RawChan *c, uint64_t iova, uint64_t va,
                           uint64_t size, const char *what)
{
    uint64_t in[3] = { iova, va, size };
    IOReturn st = raw_call(c, kDextSelectorRegisterDMARegion, in, 3, NULL,
                           0);

    HCHECK(st != kIOReturnSuccess && raw_is_answer(st),
           "RegisterDMARegion of %s: want a refusal, got 0x%x", what, st);
}

static void attack_unmapped(void)
{
    RawChan *c = claimed_session(HOSTILE_EDU_BDF);
    uint8_t *p = map_pages(3, PROT_READ | PROT_WRITE);
    uint64_t bus = 0, faults, v;
    IOReturn st;

    if (c == NULL || !HCHECK(p != NULL, "mmap")) {
        raw_close(c);
        return;
    }
    /* A hole in the middle: both ends mapped, so registration works. */
    memset(p, 0x11, 3 * PAGE);
    munmap(p + PAGE, PAGE);
    expect_refused(c, 0x1000, (uint64_t)(uintptr_t)(p + PAGE), PAGE,
                   "an unmapped page");
    expect_refused(c, 0x2000, (uint64_t)(uintptr_t)p, 2 * PAGE,
                   "a range ending in a hole");
    expect_refused(c, 0x3000, (uint64_t)(uintptr_t)(p + PAGE), 2 * PAGE,
                   "a range starting in a hole");
    expect_refused(c, 0x4000, 0xffff800000000000ull, PAGE,
                   "a kernel address");
    expect_refused(c, 0x5000, 0x1000, PAGE, "page 1");
    st = raw_register(c, 0x6000, p, 3 * PAGE, &bus);
    if (st == kIOReturnSuccess) {
        faults = iommu_faults();
        /* Device DMA into the hole must fault and leave the ends alone. */
        st = raw_edu_dma(c, EDU_DMA_BUF_ADDR, bus + PAGE, PAGE, true, true);
        HCHECK(st == kIOReturnSuccess, "edu DMA into the hole: 0x%x", st);
        st = raw_edu_dma(c, bus + PAGE, EDU_DMA_BUF_ADDR, PAGE, false, true);
        HCHECK(st == kIOReturnSuccess, "edu DMA from the hole: 0x%x", st);
        HCHECK(iommu_faults() >= faults + 2, "DMA through a hole did not "
               "fault (%llu -> %llu)", (unsigned long long)faults,
               (unsigned long long)iommu_faults());
        st = raw_probe(c, 0x6000, PAGE, &v);
        HCHECK(st != kIOReturnSuccess && raw_is_answer(st),
               "ProbeDMARegion of the hole: 0x%x", st);
        HCHECK(p[0] == 0x11 && p[2 * PAGE] == 0x11,
               "memory around the hole changed");
    }
    munmap(p, PAGE);
    munmap(p + 2 * PAGE, PAGE);
    raw_close(c);
}

typedef struct UnmapReport {
    IOReturn reg, dma_to, dma_from, probe, unreg;
    uint64_t faults_before, faults_after;
} UnmapReport;

/*
 * In a child (one thread: nothing can map the freed range behind our
 * back): register, munmap, make the device read and write it.
 */
static void unmap_child(void *arg)
{
    UnmapReport r;
    RawChan *c = NULL;
    uint8_t *p = map_pages(2, PROT_READ | PROT_WRITE);
    uint64_t bus = 0, v;

    (void)arg;
    memset(&r, 0, sizeof(r));
    r.reg = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true);
    if (r.reg == kIOReturnSuccess && p != NULL) {
        memset(p, 0x22, 2 * PAGE);
        r.reg = raw_register(c, 0x1000, p, 2 * PAGE, &bus);
    }
    if (r.reg == kIOReturnSuccess) {
        munmap(p, 2 * PAGE);
        r.faults_before = iommu_faults();
        r.dma_to = raw_edu_dma(c, EDU_DMA_BUF_ADDR, bus, PAGE, true, true);
        r.dma_from = raw_edu_dma(c, bus + PAGE, EDU_DMA_BUF_ADDR, PAGE,
                                 false, true);
        r.faults_after = iommu_faults();
        r.probe = raw_probe(c, 0x1000, 0, &v);
        r.unreg = raw_unregister(c, 0x1000);
    }
    hostile_child_send(&r, sizeof(r));
    raw_close(c);
}

static void attack_munmapped(void)
{
    HostileChild kid;
    UnmapReport r;

    if (!HCHECK(hostile_child_start(&kid, unmap_child, NULL, NULL, 0),
                "fork: %s", strerror(errno))) {
        return;
    }
    if (HCHECK(hostile_child_read(&kid, &r, sizeof(r), 30000),
               "the child did not report") &&
        HCHECK(r.reg == kIOReturnSuccess, "register: 0x%x", r.reg)) {
        HCHECK(r.dma_to == kIOReturnSuccess && r.dma_from ==
               kIOReturnSuccess, "edu DMA to/from unmapped memory: engine "
               "0x%x/0x%x", r.dma_to, r.dma_from);
        HCHECK(r.faults_after >= r.faults_before + 2, "DMA to unmapped "
               "memory did not fault (%llu -> %llu)",
               (unsigned long long)r.faults_before,
               (unsigned long long)r.faults_after);
        HCHECK(r.probe != kIOReturnSuccess && raw_is_answer(r.probe),
               "ProbeDMARegion of unmapped memory: 0x%x", r.probe);
        HCHECK(r.unreg == kIOReturnSuccess, "UnregisterDMARegion: 0x%x",
               r.unreg);
    }
    hostile_child_reap(&kid, HOSTILE_ANSWER_MS);
}

static void attack_read_only(void)
{
    RawChan *c = claimed_session(HOSTILE_EDU_BDF);
    uint8_t *ro = map_pages(1, PROT_READ | PROT_WRITE);
    uint8_t *src = map_pages(1, PROT_READ | PROT_WRITE);
    uint8_t *fresh = map_pages(1, PROT_READ);
    uint64_t bus_ro = 0, bus_src = 0, bus_fresh = 0, faults;
    IOReturn st;
    size_t i;
    bool intact = true;

    if (c == NULL || !HCHECK(ro && src && fresh, "mmap")) {
        raw_close(c);
        return;
    }
    memset(ro, 0x33, PAGE);
    memset(src, 0x44, PAGE);
    st = raw_register(c, 0x1000, ro, PAGE, &bus_ro);
    HCHECK(st == kIOReturnSuccess, "register: 0x%x", st);
    st = raw_register(c, 0x2000, src, PAGE, &bus_src);
    HCHECK(st == kIOReturnSuccess, "register: 0x%x", st);
    /* A mapping that was never writable registers (reads work)... */
    st = raw_register(c, 0x3000, fresh, PAGE, &bus_fresh);
    HCHECK(st == kIOReturnSuccess, "register of a PROT_READ mapping: 0x%x",
           st);
    mprotect(ro, PAGE, PROT_READ);
    /* The device reads the read-only page: allowed. */
    st = raw_edu_dma(c, bus_ro, EDU_DMA_BUF_ADDR, PAGE, false, true);
    HCHECK(st == kIOReturnSuccess, "edu DMA from read-only memory: 0x%x",
           st);
    /* Load the device with 0x44, then write it over the read-only page. */
    st = raw_edu_dma(c, bus_src, EDU_DMA_BUF_ADDR, PAGE, false, true);
    faults = iommu_faults();
    st = raw_edu_dma(c, EDU_DMA_BUF_ADDR, bus_ro, PAGE, true, true);
    HCHECK(st == kIOReturnSuccess, "edu DMA engine: 0x%x", st);
    if (bus_fresh != 0) {
        raw_edu_dma(c, EDU_DMA_BUF_ADDR, bus_fresh, PAGE, true, true);
    }
    for (i = 0; i < PAGE; i++) {
        intact &= ro[i] == 0x33 && fresh[i] == 0;
    }
    HCHECK(intact, "device DMA wrote into read-only memory");
    HCHECK(iommu_faults() >= faults + 1 + (bus_fresh != 0), "device writes "
           "to read-only memory did not fault");
    munmap(ro, PAGE);
    munmap(src, PAGE);
    munmap(fresh, PAGE);
    raw_close(c);
}

static void attack_prot_none(void)
{
    RawChan *c = claimed_session(HOSTILE_EDU_BDF);
    uint8_t *none = map_pages(2, PROT_NONE);
    uint8_t *later = map_pages(2, PROT_READ | PROT_WRITE);
    uint64_t bus = 0, faults, v;
    IOReturn st;

    if (c == NULL || !HCHECK(none && later, "mmap")) {
        raw_close(c);
        return;
    }
    expect_refused(c, 0x1000, (uint64_t)(uintptr_t)none, 2 * PAGE,
                   "PROT_NONE memory");
    memset(later, 0x55, 2 * PAGE);
    st = raw_register(c, 0x2000, later, 2 * PAGE, &bus);
    if (HCHECK(st == kIOReturnSuccess, "register: 0x%x", st)) {
        mprotect(later, 2 * PAGE, PROT_NONE);
        faults = iommu_faults();
        raw_edu_dma(c, EDU_DMA_BUF_ADDR, bus, PAGE, true, true);
        raw_edu_dma(c, bus + PAGE, EDU_DMA_BUF_ADDR, PAGE, false, true);
        HCHECK(iommu_faults() >= faults + 2, "DMA to PROT_NONE memory did "
               "not fault");
        st = raw_probe(c, 0x2000, 0, &v);
        HCHECK(st != kIOReturnSuccess && raw_is_answer(st),
               "ProbeDMARegion of PROT_NONE memory: 0x%x", st);
        mprotect(later, 2 * PAGE, PROT_READ);
        HCHECK(later[0] == 0x55 && later[PAGE] == 0x55,
               "PROT_NONE memory changed");
    }
    munmap(none, 2 * PAGE);
    munmap(later, 2 * PAGE);
    raw_close(c);
}

static void attack_huge_wrapping(void)
{
    RawChan *c = claimed_session(HOSTILE_EDU_BDF);
    uint8_t *p = map_pages(2, PROT_READ | PROT_WRITE);
    uint64_t va, bus = 0, v, in[2];
    uint8_t *big;
    size_t big_len = 1ull << 30;
    IOReturn st;

    if (c == NULL || !HCHECK(p != NULL, "mmap")) {
        raw_close(c);
        return;
    }
    va = (uint64_t)(uintptr_t)p;
    memset(p, 0x66, 2 * PAGE);
    expect_refused(c, 0x1000, va, 0, "size 0");
    expect_refused(c, 0x1000, 0, PAGE, "address 0");
    expect_refused(c, 0x1000, ~0ull - 10, 100, "a range wrapping 2^64");
    expect_refused(c, ~0ull - 10, va, 100, "a key range wrapping 2^64");
    expect_refused(c, 0x1000, va, 1ull << 63, "2^63 bytes");
    expect_refused(c, 0x1000, va, ~0ull, "2^64-1 bytes");
    expect_refused(c, 0x1000, va, DEXT_DMA_CHUNK_MAX * DEXT_DMA_MAX_CHUNKS +
                   1, "more than 128 chunks");
    /* 1 GiB with its ends mapped: more than edu's 256 MiB of bus space. */
    big = mmap(NULL, big_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
               MAP_NORESERVE, -1, 0);
    if (HCHECK(big != MAP_FAILED, "mmap 1 GiB: %s", strerror(errno))) {
        mprotect(big, PAGE, PROT_READ | PROT_WRITE);
        mprotect(big + big_len - PAGE, PAGE, PROT_READ | PROT_WRITE);
        expect_refused(c, 0x1000, (uint64_t)(uintptr_t)big, big_len,
                       "1 GiB on a 28-bit device");
        munmap(big, big_len);
    }
    st = raw_register(c, 0x1000, p, 2 * PAGE, &bus);
    if (HCHECK(st == kIOReturnSuccess, "register: 0x%x", st)) {
        static const uint64_t offs[] = {
            2 * PAGE - 7, 2 * PAGE, ~0ull, ~0ull - 7, 1ull << 63,
        };
        size_t i;

        for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
            in[0] = 0x1000;
            in[1] = offs[i];
            st = raw_call(c, kDextSelectorProbeDMARegion, in, 2, &v, 1);
            HCHECK(st != kIOReturnSuccess && raw_is_answer(st),
                   "ProbeDMARegion at offset 0x%llx: 0x%x",
                   (unsigned long long)offs[i], st);
        }
        /* Bus addresses past the mask, at the top, across the end. */
        raw_edu_dma(c, EDU_DMA_BUF_ADDR, ~0ull - PAGE + 1, PAGE, true, true);
        raw_edu_dma(c, ~0ull - 15, EDU_DMA_BUF_ADDR, 32, false, true);
        raw_edu_dma(c, bus + PAGE, EDU_DMA_BUF_ADDR, 2 * PAGE, false, true);
        raw_edu_dma(c, EDU_DMA_BUF_ADDR + 1, bus, ~0ull, true, true);
        HCHECK(p[0] == 0x66 && p[2 * PAGE - 1] == 0x66,
               "the region changed under out-of-range DMA");
    }
    munmap(p, 2 * PAGE);
    raw_close(c);
}

/* ------------------------------------------------------------------ */
/* Finding 2: a page that never comes                                   */

/* Time one check of the stall; fails it if over the bound. */
static void stalled_check(const char *what, IOReturn st, double t0)
{
    double ms = hostile_now_ms() - t0;

    HCHECK(st == kIOReturnSuccess && ms <= HOSTILE_ANSWER_MS,
           "%s while a client's page stalls: 0x%x after %.0f ms", what, st,
           ms);
}

/* A factorial on edu through @c, bounded. */
static IOReturn raw_factorial(RawChan *c, uint32_t n, uint32_t *out)
{
    double end = hostile_now_ms() + HOSTILE_ANSWER_MS;
    uint64_t v = EDU_STATUS_COMPUTING;
    IOReturn st;

    st = raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_FACTORIAL, 4, n);
    while (st == kIOReturnSuccess && (v & EDU_STATUS_COMPUTING)) {
        if (hostile_now_ms() > end) {
            return kIOReturnTimeout;
        }
        st = raw_mmio_read(c, EDU_MEM_IDX, EDU_REG_STATUS, 4, &v);
    }
    if (st == kIOReturnSuccess) {
        st = raw_mmio_read(c, EDU_MEM_IDX, EDU_REG_FACTORIAL, 4, &v);
        *out = (uint32_t)v;
    }
    return st;
}

/* The checks of finding 2, each on channels of its own. */
static void while_stalled(void)
{
    static uint8_t mine[4096] __attribute__((aligned(4096)));
    DextWireStatusReply sr;
    DextWireListReply lr;
    uint32_t fact = 0;
    RawChan *c;
    double t0;
    IOReturn st;

    t0 = hostile_now_ms();
    st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true);
    if (st == kIOReturnSuccess) {
        st = raw_factorial(c, 10, &fact);
    }
    /*
     * Only that it answered: the factorial unit is the device's, and the
     * bystander's factorials may overwrite ours (it checks its own).
     */
    stalled_check("another client's factorial on edu", st, t0);
    (void)fact;
    raw_close(c);

    t0 = hostile_now_ms();
    st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true);
    if (st == kIOReturnSuccess) {
        st = raw_register(c, 0x1000, mine, sizeof(mine), NULL);
    }
    stalled_check("another client's RegisterDMARegion on edu", st, t0);
    raw_close(c);

    t0 = hostile_now_ms();
    st = raw_session(&c, hostile_service(HOSTILE_IVSHMEM_BDF), true);
    if (st == kIOReturnSuccess) {
        st = raw_register(c, 0x1000, mine, sizeof(mine), NULL);
    }
    stalled_check("another client's RegisterDMARegion on ivshmem", st, t0);
    raw_close(c);

    t0 = hostile_now_ms();
    st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), true);
    if (st == kIOReturnSuccess) {
        st = raw_call(c, kDextSelectorResetDevice, NULL, 0, NULL, 0);
    }
    stalled_check("ResetDevice of edu by another claimer", st, t0);
    raw_close(c);

    t0 = hostile_now_ms();
    c = raw_connect_hello();
    st = c != NULL ? raw_status(c, &sr) : RAW_HUNG_UP;
    stalled_check("STATUS", st, t0);
    raw_close(c);

    t0 = hostile_now_ms();
    c = raw_connect_hello();
    st = c != NULL ? raw_list(c, &lr) : RAW_HUNG_UP;
    stalled_check("LIST", st, t0);
    raw_close(c);

    t0 = hostile_now_ms();
    st = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), false);
    stalled_check("OPEN of edu", st, t0);
    raw_close(c);

    t0 = hostile_now_ms();
    st = raw_session(&c, hostile_service(HOSTILE_IVSHMEM_BDF), false);
    stalled_check("OPEN of ivshmem", st, t0);
    raw_close(c);
}

static void attack_uffd_stall(void)
{
    struct uffdio_api api = { .api = UFFD_API };
    struct uffdio_register reg = { 0 };
    RawChan *edu = NULL, *iv = NULL;
    uint64_t bus_edu = 0, in[2], seq, v = 0;
    uint8_t *mem;
    IOReturn st;
    int uffd;

    mem = map_pages(3, PROT_READ | PROT_WRITE);
    if (!HCHECK(mem != NULL, "mmap")) {
        return;
    }
    /* The ends are there; the middle page has never been touched. */
    mem[0] = 1;
    mem[2 * PAGE] = 1;
    uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0) {
        hostile_skip("userfaultfd(2): %s", strerror(errno));
        munmap(mem, 3 * PAGE);
        return;
    }
    reg.range.start = (uint64_t)(uintptr_t)(mem + PAGE);
    reg.range.len = PAGE;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (ioctl(uffd, UFFDIO_API, &api) != 0 ||
        ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
        hostile_skip("userfaultfd ioctls: %s", strerror(errno));
        close(uffd);
        munmap(mem, 3 * PAGE);
        return;
    }

    /* The staller: edu DMA from the page, and a probe of it on ivshmem. */
    edu = claimed_session(HOSTILE_EDU_BDF);
    iv = claimed_session(HOSTILE_IVSHMEM_BDF);
    if (edu != NULL && iv != NULL &&
        HCHECK(raw_register(edu, 0x1000, mem, 3 * PAGE, &bus_edu) ==
               kIOReturnSuccess, "register on edu") &&
        HCHECK(raw_register(iv, 0x1000, mem, 3 * PAGE, NULL) ==
               kIOReturnSuccess, "register on ivshmem")) {
        st = raw_edu_dma(edu, bus_edu + PAGE, EDU_DMA_BUF_ADDR, PAGE, false,
                         false);
        HCHECK(st == kIOReturnSuccess, "starting edu DMA: 0x%x", st);
        in[0] = 0x1000;
        in[1] = PAGE;
        seq = raw_send_call(iv, kDextSelectorProbeDMARegion, in, 2, 1);
        /* Let both reach the page. */
        hostile_sleep_ms(100);

        while_stalled();

        /* Serve the fault: the page appears, zero-filled. */
        close(uffd);
        uffd = -1;
        st = raw_wait_reply(iv, seq, NULL);
        if (st == kIOReturnSuccess) {
            st = raw_call_reply(iv, &v, 1);
        }
        HCHECK(st == kIOReturnSuccess && v == 0, "the stalled probe, once "
               "the page came: 0x%x, value 0x%llx", st,
               (unsigned long long)v);
        /* The engine must come to rest (a reset may have aborted it). */
        st = raw_edu_wait_idle(edu);
        HCHECK(st == kIOReturnSuccess, "edu DMA engine not idle after the "
               "page came: 0x%x", st);
    }
    if (uffd >= 0) {
        close(uffd);
    }
    raw_close(edu);
    raw_close(iv);
    munmap(mem, 3 * PAGE);
}

#define FILE_PAGES 16             /* 64 KiB: dextd maps the file */

static int memfd_of(size_t size, uint8_t fill)
{
    int fd = memfd_create("lying-file", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    uint8_t *p;

    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        return -1;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return -1;
    }
    memset(p, fill, size);
    munmap(p, size);
    return fd;
}

/* RegisterDMARegion of @p with @fd at @offset as the file behind it. */
static IOReturn register_with(RawChan *c, uint64_t iova, const void *p,
                              uint64_t size, int fd, uint64_t offset,
                              uint64_t *bus)
{
    uint64_t in[4] = { iova, (uint64_t)(uintptr_t)p, size, offset };
    uint64_t out[3] = { 0 };
    IOReturn st = raw_call_fds(c, kDextSelectorRegisterDMARegion, in, 4, out,
                               3, &fd, 1);

    *bus = out[1];
    return st;
}

/* The first byte of @fd's page @page. */
static int file_byte(int fd, size_t page)
{
    uint8_t b = 0;

    return pread(fd, &b, 1, (off_t)(page * PAGE)) == 1 ? b : -1;
}

static void attack_lying_files(void)
{
    RawChan *c = claimed_session(HOSTILE_EDU_BDF);
    uint8_t *p = map_pages(FILE_PAGES, PROT_READ | PROT_WRITE);
    uint64_t size = FILE_PAGES * PAGE, bus = 0;
    int pipefd[2] = { -1, -1 }, fd, ro;
    char path[64];
    IOReturn st;

    if (c == NULL || !HCHECK(p != NULL, "mmap") ||
        !HCHECK(pipe(pipefd) == 0, "pipe")) {
        raw_close(c);
        return;
    }
    memset(p, 0x11, size);
    st = register_with(c, 0x10000, p, size, pipefd[0], 0, &bus);
    HCHECK(st == kIOReturnBadArgument, "a pipe as the file: 0x%x", st);
    fd = memfd_of(PAGE, 0x22);
    st = register_with(c, 0x10000, p, size, fd, 0, &bus);
    HCHECK(st == kIOReturnBadArgument, "a file of one page: 0x%x", st);
    close(fd);
    fd = memfd_of(2 * size, 0x22);
    st = register_with(c, 0x10000, p, size, fd, 1, &bus);
    HCHECK(st == kIOReturnBadArgument, "offset 1 into the file: 0x%x", st);

    /* Read-only: registered, but the device's writes go to our memory. */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ro = open(path, O_RDONLY | O_CLOEXEC);
    st = register_with(c, 0x10000, p, size, ro, 0, &bus);
    if (HCHECK(st == kIOReturnSuccess, "a read-only file: 0x%x", st)) {
        st = raw_edu_dma(c, bus, EDU_DMA_BUF_ADDR, PAGE, false, true);
        st = st ? st : raw_edu_dma(c, EDU_DMA_BUF_ADDR, bus + PAGE, PAGE,
                                   true, true);
        HCHECK(st == kIOReturnSuccess, "edu DMA: 0x%x", st);
        HCHECK(file_byte(fd, 1) == 0x22 && p[PAGE] == 0x11,
               "DMA through a read-only file: file %d, memory 0x%x",
               file_byte(fd, 1), p[PAGE]);
        raw_unregister(c, 0x10000);
    }
    close(ro);
    close(fd);

    /* Sealed against writes: the same. */
    fd = memfd_of(size, 0x33);
    HCHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0, "F_SEAL_WRITE");
    st = register_with(c, 0x10000, p, size, fd, 0, &bus);
    if (HCHECK(st == kIOReturnSuccess, "a write-sealed file: 0x%x", st)) {
        st = raw_edu_dma(c, EDU_DMA_BUF_ADDR, bus + PAGE, PAGE, true, true);
        HCHECK(st == kIOReturnSuccess && file_byte(fd, 1) == 0x33,
               "DMA through a sealed file: 0x%x, file %d", st,
               file_byte(fd, 1));
        raw_unregister(c, 0x10000);
    }
    close(fd);

    /* Another file than the memory: the device reaches the file. */
    fd = memfd_of(size, 0x44);
    st = register_with(c, 0x10000, p, size, fd, 0, &bus);
    if (HCHECK(st == kIOReturnSuccess, "a file that is not the memory: "
               "0x%x", st)) {
        st = raw_edu_dma(c, bus, EDU_DMA_BUF_ADDR, PAGE, false, true);
        st = st ? st : raw_edu_dma(c, EDU_DMA_BUF_ADDR, bus + 2 * PAGE,
                                   PAGE, true, true);
        HCHECK(st == kIOReturnSuccess && file_byte(fd, 2) == 0x44 &&
               p[2 * PAGE] == 0x11, "DMA through another file: 0x%x, "
               "file %d, memory 0x%x", st, file_byte(fd, 2), p[2 * PAGE]);
        raw_unregister(c, 0x10000);
    }
    close(fd);
    close(pipefd[0]);
    close(pipefd[1]);
    munmap(p, size);
    raw_close(c);
}

typedef struct Truncator {
    int fd;
    size_t size;
    volatile bool stop;
} Truncator;

static void *truncator(void *arg)
{
    Truncator *t = arg;
    unsigned i = 0;

    while (!t->stop) {
        if (ftruncate(t->fd, (off_t)(i++ & 1 ? t->size : t->size / 3)) != 0) {
            break;
        }
    }
    return NULL;
}

static void attack_truncate_racing(void)
{
    RawChan *c = claimed_session(HOSTILE_EDU_BDF);
    Truncator t = { .size = FILE_PAGES * PAGE };
    uint64_t bus = 0, faults;
    pthread_t th;
    uint8_t *p;
    IOReturn st = kIOReturnSuccess;
    int i;

    t.fd = memfd_of(t.size, 0x55);
    if (c == NULL || !HCHECK(t.fd >= 0, "memfd")) {
        raw_close(c);
        return;
    }
    p = mmap(NULL, t.size, PROT_READ | PROT_WRITE, MAP_SHARED, t.fd, 0);
    if (!HCHECK(p != MAP_FAILED, "mmap") ||
        !HCHECK(register_with(c, 0x20000, p, t.size, t.fd, 0, &bus) ==
                kIOReturnSuccess, "register the memfd")) {
        close(t.fd);
        raw_close(c);
        return;
    }
    faults = iommu_faults();
    pthread_create(&th, NULL, truncator, &t);
    for (i = 0; i < 300 && st == kIOReturnSuccess; i++) {
        uint64_t at = bus + (uint64_t)(i % FILE_PAGES) * PAGE;

        st = raw_edu_dma(c, EDU_DMA_BUF_ADDR, at, PAGE, true, true);
        st = st ? st : raw_edu_dma(c, at, EDU_DMA_BUF_ADDR, PAGE, false,
                                   true);
    }
    t.stop = true;
    pthread_join(th, NULL);
    HCHECK(st == kIOReturnSuccess, "edu DMA while the file is truncated: "
           "0x%x", st);
    HCHECK(iommu_faults() != ~0ull && iommu_faults() > faults,
           "no transfer faulted past the file's end (%llu -> %llu)",
           (unsigned long long)faults, (unsigned long long)iommu_faults());
    HCHECK(raw_unregister(c, 0x20000) == kIOReturnSuccess, "unregister");
    munmap(p, t.size);
    close(t.fd);
    raw_close(c);
}

static const HostileAttack attacks[] = {
    { .name = "dma-memory/lying-files", .run = attack_lying_files },
    { .name = "dma-memory/truncate-racing-dma",
      .run = attack_truncate_racing },
    { .name = "dma-memory/unmapped", .run = attack_unmapped },
    { .name = "dma-memory/munmapped-after-register", .run = attack_munmapped },
    { .name = "dma-memory/read-only", .run = attack_read_only },
    { .name = "dma-memory/prot-none", .run = attack_prot_none },
    { .name = "dma-memory/huge-wrapping", .run = attack_huge_wrapping },
    { .name = "dma-memory/uffd-stall", .finding = "F2",
      .run = attack_uffd_stall, .flags = HOSTILE_DISTURBS_DEVICE },
};

int main(int argc, char **argv)
{
    return hostile_main(argc, argv, attacks,
                        sizeof(attacks) / sizeof(attacks[0]));
}
