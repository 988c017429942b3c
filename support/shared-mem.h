/*
 * SPDX-License-Identifier: MIT
 *
 * Finding the file behind a range of this process's shared memory, so
 * that another process (dextd) can map the same pages: what the unix
 * transport sends beside RegisterDMARegion.  Linux only (/proc).
 */

#ifndef LIBDEXT_SUPPORT_SHARED_MEM_H
#define LIBDEXT_SUPPORT_SHARED_MEM_H

#include <stdbool.h>
#include <stdint.h>

/**
 * dext_shared_mem_fd() - an fd of the shared file mapped at a range
 * @va: first byte
 * @size: bytes, at least 1
 * @offset: receives where @va's byte lies in the file
 *
 * The range must lie in one MAP_SHARED mapping of a file (memfd_create(),
 * shm_open(), a regular file).  The fd comes from
 * /proc/self/map_files (needs CAP_CHECKPOINT_RESTORE), else from an fd
 * this process still holds open on the same file, else from the
 * mapping's path; it is opened or reopened read-write.
 *
 * Return: a new close-on-exec fd, or -1 with errno: ENOENT when the range
 * is not (wholly) shared file memory, EACCES when the file is found but
 * cannot be opened read-write, others from the system.
 */
int dext_shared_mem_fd(uint64_t va, uint64_t size, uint64_t *offset);

#endif /* LIBDEXT_SUPPORT_SHARED_MEM_H */
