/*
 * SPDX-License-Identifier: MIT
 *
 * A client abusing the shared memory it registered for DMA: truncating
 * the memfd behind a live region, registering a write-sealed memfd,
 * registering memory and unmapping it at once.  Whatever the device and
 * transport -- our edu (the core copies with the client's permissions:
 * faults), QEMU's edu behind VFIO (pinned pages: the device still
 * reaches them) -- the dext must survive, keep serving, and give every
 * call a clear answer; nothing may stay pinned or registered.
 *
 * Regions of DEXT_DMA_MAP_MIN (64 KiB) and more go through dextd as
 * their file, which dextd maps and copies through (core/dma.c): there a
 * truncated file must fault only the transfer (a SIGBUS in dextd that it
 * survives), truncated and grown back again and again, and a write
 * after the client unmapped its view must still land in the file --
 * also a file on hugetlbfs with the region inside a huge page (where
 * huge pages are reserved), POSIX shared memory whose fd the client
 * closed (the library finds the file itself), and a memfd mapped from
 * an offset into it.
 */

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "harness.h"
#include "edu.h"

#define IOVA_T   0x10000
#define IOVA_S   0x20000
#define IOVA_U   0x30000
#define IOVA_B   0x40000
#define SIZE     16384
#define BIG      (1u << 20)        /* above DEXT_DMA_MAP_MIN */

/*
 * A memfd of @size bytes mapped shared; *@fd stays open.  With @seals,
 * sealed first (a write seal needs no writable mapping yet) and mapped
 * read-only.
 */
static uint8_t *memfd_map(size_t size, int *fd, int seals)
{
    void *p;

    *fd = memfd_create("dma-abuse", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (!CHECK(*fd >= 0) || !CHECK(ftruncate(*fd, (off_t)size) == 0) ||
        (seals && !CHECK(fcntl(*fd, F_ADD_SEALS, seals) == 0))) {
        return NULL;
    }
    p = mmap(NULL, size, seals ? PROT_READ : PROT_READ | PROT_WRITE,
             MAP_SHARED, *fd, 0);
    return CHECK(p != MAP_FAILED) ? p : NULL;
}

/* The dext still answers, and edu still computes. */
static void check_alive(io_connect_t c)
{
    uint64_t v = 0;

    CHECK_KR(apple_dext_mmio_write(c, 0, EDU_REG_LIVENESS, 4, 0x12345678),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_mmio_read(c, 0, EDU_REG_LIVENESS, 4, &v),
             kIOReturnSuccess);
    CHECK_EQ(v, 0xedcba987);
}

static void test_truncated(io_connect_t c)
{
    uint64_t bus = 0;
    uint8_t *p;
    int fd;

    harness_section("the memfd behind a live region truncated to 0");
    p = memfd_map(SIZE, &fd, 0);
    if (p == NULL) {
        return;
    }
    memset(p, 0x5c, SIZE);
    if (CHECK_KR(apple_dext_register_dma(c, IOVA_T, (uintptr_t)p, SIZE, &bus,
                                         NULL), kIOReturnSuccess)) {
        CHECK(ftruncate(fd, 0) == 0);
        /*
         * Device DMA both ways into memory that is gone for the client:
         * the emulation faults it, a real IOMMU still holds the pinned
         * pages.  Either way the transfer ends and nobody crashes.
         */
        CHECK(edu_dma(c, EDU_DMA_BUF_ADDR, bus, 4096, EDU_DMA_TO_RAM));
        CHECK(edu_dma(c, bus + 4096, EDU_DMA_BUF_ADDR, 4096, 0));
        check_alive(c);
        CHECK_KR(apple_dext_unregister_dma(c, IOVA_T), kIOReturnSuccess);
    }
    /* Registering what is now past the file's end: the memory is gone. */
    CHECK(apple_dext_register_dma(c, IOVA_T, (uintptr_t)p, SIZE, NULL,
                                  NULL) != kIOReturnSuccess);
    munmap(p, SIZE);
    close(fd);
}

static void test_sealed(io_connect_t c)
{
    uint64_t bus = 0;
    kern_return_t kr;
    uint8_t *p;
    int fd;

    harness_section("a write-sealed memfd, mapped read-only");
    p = memfd_map(SIZE, &fd, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
    if (p == NULL) {
        return;
    }
    kr = apple_dext_register_dma(c, IOVA_S, (uintptr_t)p, SIZE, &bus, NULL);
    if (harness_real_devices()) {
        /*
         * A real IOMMU mapping is read-write: dextd cannot map a sealed
         * file writable (NotPermitted), the in-process pin of read-only
         * pages for writing fails (VMError).
         */
        CHECK_MSG(kr == kIOReturnNotPermitted || kr == kIOReturnVMError,
                  "sealed memory registered: 0x%x", kr);
    } else if (CHECK_KR(kr, kIOReturnSuccess)) {
        /* The emulation writes with the client's permissions: faults. */
        edu_dma(c, EDU_DMA_BUF_ADDR, bus, 64, EDU_DMA_TO_RAM);
        CHECK_EQ(p[0], 0);
        CHECK_KR(apple_dext_unregister_dma(c, IOVA_S), kIOReturnSuccess);
    }
    check_alive(c);
    munmap(p, SIZE);
    close(fd);
}

static void test_unmapped(io_connect_t c)
{
    uint64_t bus = 0;
    uint8_t *p;
    int fd;

    harness_section("memory registered, then unmapped and its fd closed");
    p = memfd_map(SIZE, &fd, 0);
    if (p == NULL) {
        return;
    }
    if (CHECK_KR(apple_dext_register_dma(c, IOVA_U, (uintptr_t)p, SIZE, &bus,
                                         NULL), kIOReturnSuccess)) {
        munmap(p, SIZE);
        close(fd);
        CHECK(edu_dma(c, EDU_DMA_BUF_ADDR, bus, 4096, EDU_DMA_TO_RAM));
        check_alive(c);
        CHECK_KR(apple_dext_unregister_dma(c, IOVA_U), kIOReturnSuccess);
    } else {
        munmap(p, SIZE);
        close(fd);
    }
}

static void test_truncated_big(io_connect_t c)
{
    uint64_t bus = 0;
    uint8_t *p;
    int fd, i;

    harness_section("a mapped region's file truncated, again and again");
    p = memfd_map(BIG, &fd, 0);
    if (p == NULL) {
        return;
    }
    memset(p, 0x3c, BIG);
    if (CHECK_KR(apple_dext_register_dma(c, IOVA_B, (uintptr_t)p, BIG, &bus,
                                         NULL), kIOReturnSuccess)) {
        for (i = 0; i < 50 && harness_failures() == 0; i++) {
            CHECK(ftruncate(fd, i & 1 ? BIG / 2 : 0) == 0);
            /* Both ways, at the start, across the new end and past it. */
            CHECK(edu_dma(c, EDU_DMA_BUF_ADDR, bus, 4096, EDU_DMA_TO_RAM));
            CHECK(edu_dma(c, bus + BIG / 2 - 2048, EDU_DMA_BUF_ADDR, 4096,
                          0));
            CHECK(edu_dma(c, EDU_DMA_BUF_ADDR, bus + BIG - 4096, 4096,
                          EDU_DMA_TO_RAM));
            CHECK(ftruncate(fd, BIG) == 0);
            /* Grown back (zeroes): the region works again. */
            CHECK(edu_dma(c, EDU_DMA_BUF_ADDR, bus + BIG - 4096, 4096,
                          EDU_DMA_TO_RAM));
        }
        check_alive(c);
        CHECK_KR(apple_dext_unregister_dma(c, IOVA_B), kIOReturnSuccess);
    }
    munmap(p, BIG);
    close(fd);
}

/*
 * Two huge pages of a memfd on hugetlbfs, mapped shared, *@size set to
 * their length; *@fd stays open.  NULL, said, where no huge page is
 * reserved (vm.nr_hugepages) or there is no hugetlbfs.
 */
static uint8_t *huge_map(int *fd, uint64_t *size)
{
    struct statfs sf;
    void *p = MAP_FAILED;

    *fd = memfd_create("dma-abuse-huge", MFD_CLOEXEC | MFD_HUGETLB);
    if (*fd >= 0 && fstatfs(*fd, &sf) == 0 &&
        sf.f_type == HUGETLBFS_MAGIC) {
        *size = 2 * (uint64_t)sf.f_bsize;
        if (ftruncate(*fd, (off_t)*size) == 0) {
            p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd,
                     0);
        }
    }
    if (p == MAP_FAILED) {
        harness_section("not tried: no hugetlbfs, or no huge page reserved "
                        "(vm.nr_hugepages)");
        if (*fd >= 0) {
            close(*fd);
        }
        return NULL;
    }
    return p;
}

/* The name of test_mapped_after_munmap()'s POSIX shared memory. */
static char shm_name[64];

/*
 * POSIX shared memory of @size bytes mapped shared, with no fd of it
 * left open: the library must find the file by itself
 * (/proc/self/map_files, else its name under /dev/shm).  *@fd is -1;
 * the caller opens it again by @shm_name, and unlinks it.
 */
static uint8_t *shm_map(size_t size, int *fd)
{
    void *p = MAP_FAILED;
    int w;

    snprintf(shm_name, sizeof(shm_name), "/libdext-dma-abuse-%d",
             (int)getpid());
    w = shm_open(shm_name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    *fd = -1;
    if (CHECK(w >= 0) && CHECK(ftruncate(w, (off_t)size) == 0)) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, w, 0);
    }
    if (w >= 0) {
        close(w);
    }
    if (!CHECK(p != MAP_FAILED)) {
        shm_unlink(shm_name);
        return NULL;
    }
    return p;
}

/* The memory of test_mapped_after_munmap(). */
typedef enum MemKind { MEM_MEMFD, MEM_HUGETLB, MEM_SHM, MEM_AT } MemKind;

/* Where MEM_AT maps its memfd from: not the file's start. */
#define AT_OFFSET   (2u << 20)

/*
 * A memfd of AT_OFFSET + BIG bytes, mapped shared from AT_OFFSET on
 * (BIG bytes); *@fd stays open.
 */
static uint8_t *memfd_map_at(int *fd)
{
    void *p = MAP_FAILED;

    *fd = memfd_create("dma-abuse-at", MFD_CLOEXEC);
    if (CHECK(*fd >= 0) &&
        CHECK(ftruncate(*fd, (off_t)(AT_OFFSET + BIG)) == 0)) {
        p = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_SHARED, *fd,
                 AT_OFFSET);
    }
    return CHECK(p != MAP_FAILED) ? p : NULL;
}

/*
 * With MEM_HUGETLB the file is on hugetlbfs and the region starts inside
 * one huge page and ends in the next, as a VMM's guest RAM may:
 * hugetlbfs maps only whole huge pages, so dextd must map around the
 * region.  With MEM_SHM it comes from shm_open().  With MEM_AT the
 * memfd is mapped from AT_OFFSET on, so the file offset the library
 * sends is not the region's place in its mapping: the bytes must land
 * there.
 */
static void test_mapped_after_munmap(io_connect_t c, MemKind kind)
{
    static const char *const kinds[] = {
        "", " on hugetlbfs, from inside a huge page",
        " of shm_open(), its fd closed",
        " of a memfd mapped from 2 MiB into it",
    };
    uint64_t bus = 0, total = BIG, start = 0, file_off = 0;
    bool registered;
    uint8_t *p;
    int fd;

    harness_section("a mapped region's view unmapped: DMA reaches the "
                    "file%s", kinds[kind]);
    p = kind == MEM_HUGETLB ? huge_map(&fd, &total) :
        kind == MEM_SHM ? shm_map(BIG, &fd) :
        kind == MEM_AT ? memfd_map_at(&fd) : memfd_map(BIG, &fd, 0);
    if (p == NULL) {
        return;
    }
    if (kind == MEM_AT) {
        file_off = AT_OFFSET;
    }
    if (kind == MEM_HUGETLB) {
        start = total / 2 - BIG / 2;
    }
    memset(p + start, 0x11, 4096);
    registered = CHECK_KR(apple_dext_register_dma(c, IOVA_B,
                                                  (uintptr_t)p + start, BIG,
                                                  &bus, NULL),
                          kIOReturnSuccess);
    if (registered) {
        /* The first page into edu's buffer, then the client lets go. */
        CHECK(edu_dma(c, bus, EDU_DMA_BUF_ADDR, 4096, 0));
    }
    munmap(p, total);
    if (kind == MEM_SHM) {
        fd = shm_open(shm_name, O_RDONLY | O_CLOEXEC, 0);
        shm_unlink(shm_name);
    }
    if (!registered || !CHECK(fd >= 0)) {
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    CHECK(edu_dma(c, EDU_DMA_BUF_ADDR, bus + 8192, 4096, EDU_DMA_TO_RAM));
    check_alive(c);
    CHECK_KR(apple_dext_unregister_dma(c, IOVA_B), kIOReturnSuccess);
    p = mmap(NULL, file_off + total, PROT_READ, MAP_SHARED, fd, 0);
    if (CHECK(p != MAP_FAILED)) {
        p += file_off + start;
        /*
         * Over dextd our edu copies through dextd's mapping of the file,
         * and behind a real IOMMU the pages stay pinned either way: the
         * bytes land.  Our edu in process (and behind the IOKit model)
         * copies with our permissions, and a ThreadSanitizer dextd never
         * maps client files: the write faulted.
         */
        bool lands = harness_real_devices() ||
                     (harness_is_unix() && !harness_under_tsan());

        harness_section("the write %s", p[8192] == 0x11 ? "landed"
                                                        : "faulted");
        CHECK_EQ(p[8192], lands ? 0x11 : 0);
        CHECK_EQ(p[8192 + 4095], lands ? 0x11 : 0);
        munmap(p - start - file_off, file_off + total);
    }
    close(fd);
}

int main(int argc, char **argv)
{
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    io_connect_t c;

    harness_init(argc, argv, NULL);
    c = harness_connect_edu();
    if (c == IO_OBJECT_NULL ||
        !CHECK_KR(apple_dext_claim(c), kIOReturnSuccess)) {
        return harness_finish();
    }
    test_truncated(c);
    test_sealed(c);
    test_unmapped(c);
    test_truncated_big(c);
    test_mapped_after_munmap(c, MEM_MEMFD);
    test_mapped_after_munmap(c, MEM_HUGETLB);
    test_mapped_after_munmap(c, MEM_SHM);
    test_mapped_after_munmap(c, MEM_AT);
    apple_dext_disconnect(c);
    if (harness_status(&st)) {
        CHECK_EQ(st.dma_regions, 0);
        CHECK_EQ(st.sessions, 0);
    }
    return harness_finish();
}
