/*
 * SPDX-License-Identifier: MIT
 *
 * What clients may make dextd hold: the fd budget, sized from
 * RLIMIT_NOFILE at start, charged when taken, given back when closed;
 * and the channels, admitted under the caps.
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

const char *channel_admit_locked(Daemon *d, const struct ucred *cred)
{
    unsigned pid_all = 0, pid_pending = 0, uid_all = 0;
    Channel *ch;

    if (d->nchannels >= d->max_channels) {
        return "the channel cap is reached";
    }
    if (d->fd_budget - d->fd_charged < DEXTD_CHANNEL_FDS) {
        return "out of file descriptors";
    }
    for (ch = d->channels; ch != NULL; ch = ch->next) {
        if (ch->done) {
            continue;
        }
        if (ch->pid == cred->pid) {
            pid_all++;
            pid_pending += !ch->greeted;
        }
        uid_all += ch->uid == cred->uid;
    }
    if (pid_pending >= DEXTD_PID_PENDING) {
        return "too many of its channels have not said HELLO";
    }
    if (pid_all >= DEXTD_PID_CHANNELS) {
        return "too many channels from one process";
    }
    if (cred->uid != 0 && uid_all >= d->uid_channels) {
        return "its user holds 3/4 of the channels";
    }
    d->nchannels++;
    d->fd_charged += DEXTD_CHANNEL_FDS;
    return NULL;
}

void channel_unadmit(Daemon *d)
{
    dext_mutex_lock(&d->lock);
    d->nchannels--;
    d->fd_charged -= DEXTD_CHANNEL_FDS;
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
