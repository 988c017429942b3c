/*
 * SPDX-License-Identifier: MIT
 *
 * The file behind shared memory: one line of /proc/self/maps names the
 * mapping (flags, file offset, device, inode, path); the fd is found the
 * cheapest way that works for an unprivileged process.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "support/shared-mem.h"

typedef struct MapLine {
    uint64_t start, end, pgoff, inode;
    unsigned major, minor;
    char perms[5];
    char path[4096];
} MapLine;

/* The maps line whose mapping holds @va, or false. */
static bool find_mapping(uint64_t va, MapLine *m)
{
    char line[4096 + 128];
    bool found = false;
    FILE *f = fopen("/proc/self/maps", "re");

    if (f == NULL) {
        return false;
    }
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        int path_at = 0;

        m->path[0] = '\0';
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %"
                   SCNu64 " %n", &m->start, &m->end, m->perms, &m->pgoff,
                   &m->major, &m->minor, &m->inode, &path_at) < 7) {
            continue;
        }
        if (va < m->start || va >= m->end) {
            continue;
        }
        found = true;
        if (path_at > 0) {
            snprintf(m->path, sizeof(m->path), "%s", line + path_at);
            m->path[strcspn(m->path, "\n")] = '\0';
        }
    }
    fclose(f);
    return found;
}

static bool same_file(int fd, const MapLine *m)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
           st.st_ino == m->inode &&
           st.st_dev == makedev(m->major, m->minor);
}

/*
 * Open @path read-write if it is the mapped file itself.  Non-blocking:
 * whatever now sits at a mapping's old path (a FIFO) must not hang us.
 */
static int open_checked(const char *path, const MapLine *m)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);

    if (fd >= 0 && !same_file(fd, m)) {
        close(fd);
        errno = ENOENT;
        return -1;
    }
    return fd;
}

/* An fd this process holds on the same file, reopened read-write. */
static int from_open_fds(const MapLine *m)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int fd = -1, err = ENOENT;

    if (d == NULL) {
        return -1;
    }
    while (fd < 0 && (e = readdir(d)) != NULL) {
        char path[64];
        int n = atoi(e->d_name);

        if (e->d_name[0] < '0' || e->d_name[0] > '9' || n == dirfd(d) ||
            !same_file(n, m)) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", n);
        fd = open_checked(path, m);
        if (fd < 0) {
            err = errno;
        }
    }
    closedir(d);
    if (fd < 0) {
        errno = err;
    }
    return fd;
}

int dext_shared_mem_fd(uint64_t va, uint64_t size, uint64_t *offset)
{
    char path[64];
    MapLine m;
    int fd;

    if (size == 0 || va + size < va || !find_mapping(va, &m) ||
        va + size > m.end || m.perms[3] != 's' || m.inode == 0) {
        errno = ENOENT;
        return -1;
    }
    *offset = m.pgoff + (va - m.start);
    snprintf(path, sizeof(path), "/proc/self/map_files/%" PRIx64 "-%" PRIx64,
             m.start, m.end);
    fd = open_checked(path, &m);
    if (fd < 0) {
        fd = from_open_fds(&m);
    }
    if (fd < 0 && m.path[0] == '/' && strstr(m.path, " (deleted)") == NULL) {
        fd = open_checked(m.path, &m);
    }
    return fd;
}
