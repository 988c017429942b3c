/*
 * SPDX-License-Identifier: MIT
 *
 * The fd budget: the fds clients may make dextd hold, sized from
 * RLIMIT_NOFILE at start, charged when taken, given back when closed.
 */

#define _GNU_SOURCE

#include <dirent.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon/dextd.h"

bool fd_charge(Daemon *d, unsigned n)
{
    bool ok;

    dext_mutex_lock(&d->lock);
    ok = d->fd_budget - d->fd_charged >= n;
    if (ok) {
        d->fd_charged += n;
    }
    dext_mutex_unlock(&d->lock);
    return ok;
}

void fd_release(Daemon *d, unsigned n)
{
    dext_mutex_lock(&d->lock);
    d->fd_charged -= n;
    dext_mutex_unlock(&d->lock);
}

int count_open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (dir == NULL) {
        return -1;
    }
    while ((e = readdir(dir)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(dir);
    return n - 1;                       /* the directory's own */
}

/* What is open now and the reserve stay ours; the rest is the budget. */
int fd_budget_setup(Daemon *d, uint32_t devices)
{
    uint64_t need, limit = 1u << 30;
    struct rlimit rl;
    int open_now = count_open_fds();

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < limit) {
        limit = rl.rlim_cur;
    }
    /* Without /proc, guess generously: a smaller budget is still safe. */
    need = (uint64_t)(open_now >= 0 ? open_now : 64) + DEXTD_FD_RESERVE +
           (uint64_t)DEXTD_DEVICE_FDS * devices;
    if (limit < need + DEXTD_CHANNEL_FDS + DEXTD_SESSION_FDS) {
        dlog(d, DEXT_LOG_ERROR, "RLIMIT_NOFILE (%llu) is too low: serving "
             "one client needs %llu fds", (unsigned long long)limit,
             (unsigned long long)(need + DEXTD_CHANNEL_FDS +
                                  DEXTD_SESSION_FDS));
        return -1;
    }
    d->fd_budget = (unsigned)(limit - need);
    /* Room for every channel to open a session. */
    d->max_channels = d->fd_budget / (DEXTD_CHANNEL_FDS + DEXTD_SESSION_FDS);
    if (d->max_channels > DEXTD_MAX_CHANNELS) {
        d->max_channels = DEXTD_MAX_CHANNELS;
    }
    d->uid_channels = d->max_channels * 3 / 4;
    if (d->uid_channels == 0) {
        d->uid_channels = 1;
    }
    dlog(d, DEXT_LOG_DEBUG, "RLIMIT_NOFILE %llu: %u fds for clients, at most "
         "%u channels (%u for a user other than root)",
         (unsigned long long)limit, d->fd_budget, d->max_channels,
         d->uid_channels);
    return 0;
}

void close_fds(int *fds, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        close(fds[i]);
    }
}
