/*
 * SPDX-License-Identifier: MIT
 *
 * Helpers of the API tests for what differs between our emulated edu and
 * QEMU's edu behind VFIO (harness_real_devices()): memory the dext can
 * reach for DMA, and an MSI that is waited for instead of assumed.
 */

#ifndef LIBDEXT_TESTS_API_UTIL_H
#define LIBDEXT_TESTS_API_UTIL_H

/* memfd_create(): the including file defines _GNU_SOURCE first. */
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "edu.h"

/**
 * api_dma_alloc() - @size bytes of zeroed memory to register for DMA
 *
 * Private anonymous memory, which the emulated devices reach through
 * either transport.  For a real device dextd maps a client's memory into
 * the device's IOMMU only through the file behind it (private memory is
 * refused with kIOReturnUnsupported), so there the memory is a memfd's.
 *
 * Return: the memory (free it with munmap()), or MAP_FAILED.
 */
static inline void *api_dma_alloc(size_t size)
{
    void *p;
    int fd;

    if (!harness_real_devices()) {
        return mmap(NULL, size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    fd = memfd_create("api-dma", MFD_CLOEXEC);
    if (fd < 0) {
        return MAP_FAILED;
    }
    if (ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        return MAP_FAILED;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    /* The transport finds the file again through /proc/self/map_files. */
    close(fd);
    return p;
}

/**
 * api_wait_irqs_raised() - the dext has counted @want raised messages
 *
 * Our edu raises its MSI inside the MMIO call, so the count must be
 * there at once: that is asserted.  A real edu's MSI reaches the dext
 * after the call returns (VFIO's eventfd, then the backend's thread), so
 * there it is waited for (bounded), as a driver of the real dext waits.
 *
 * Return: whether the count is @want.
 */
static inline bool api_wait_irqs_raised(uint64_t want)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    unsigned round = 0;

    while (harness_status(&st)) {
        if (st.irqs_raised >= want || !harness_real_devices() ||
            harness_expired(&d)) {
            return CHECK_EQ(st.irqs_raised, want);
        }
        harness_backoff(&round);
    }
    return false;
}

/**
 * api_raise_msi() - make edu send one MSI; return once the dext has it
 * @c: a claimed connection to edu, interrupts set up
 * @bits: the interrupt status bits to raise, then acknowledge
 *
 * Return: whether the dext counted exactly that message; true without
 * a check where the transport keeps no counters (iokit).
 */
static inline bool api_raise_msi(io_connect_t c, uint32_t bits)
{
    AppleDextStatus before = { .size = sizeof(AppleDextStatus) };
    bool counted = harness_status(&before);

    /*
     * Raised whether or not the count can be read: over the IOKit
     * transport there are no counters (the real dext keeps none), and
     * what the caller checks next (pending bits, the wake) is the
     * evidence.  Our edu raises inside the MMIO call, so that is there
     * at once.
     */
    edu_write32(c, EDU_REG_IRQ_RAISE, bits);
    edu_write32(c, EDU_REG_IRQ_ACK, bits);
    return counted ? api_wait_irqs_raised(before.irqs_raised + 1) : true;
}

#endif /* LIBDEXT_TESTS_API_UTIL_H */
