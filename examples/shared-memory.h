/*
 * SPDX-License-Identifier: MIT
 *
 * Memory for DMA that every dext can reach.  The real dext wires any
 * memory of the caller; dextd serving a device behind a real IOMMU
 * (VFIO) must map the pages itself, so on Linux the memory is a memfd,
 * kept open while registered: libdext finds the file behind the
 * mapping through the open fd and passes it to dextd with the
 * registration.  QEMU's guest RAM is the same thing
 * (memory-backend-memfd,share=on).
 */

#ifndef LIBDEXT_EXAMPLES_SHARED_MEMORY_H
#define LIBDEXT_EXAMPLES_SHARED_MEMORY_H

#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

/* @len bytes, page aligned and zeroed; *@fd keeps it findable (close it
 * after unmapping; -1 where there is none).  NULL on failure. */
static inline void *shared_memory_alloc(size_t len, int *fd)
{
    void *p;

    *fd = -1;
#ifdef __linux__
    *fd = memfd_create("libdext-example", MFD_CLOEXEC);
    if (*fd < 0 || ftruncate(*fd, (off_t)len) != 0) {
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
        return NULL;
    }
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
#else
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, -1, 0);
#endif
    if (p == MAP_FAILED) {
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
        return NULL;
    }
    return p;
}

/* Undo shared_memory_alloc(). */
static inline void shared_memory_free(void *p, size_t len, int fd)
{
    if (p != NULL) {
        munmap(p, len);
    }
    if (fd >= 0) {
        close(fd);
    }
}

#endif /* LIBDEXT_EXAMPLES_SHARED_MEMORY_H */
