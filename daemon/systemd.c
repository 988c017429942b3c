/*
 * SPDX-License-Identifier: MIT
 *
 * dextd under systemd: the listening socket handed over by socket
 * activation, and readiness told through sd_notify(), both through
 * libsystemd.  Built without it (-Dsystemd=disabled), there is neither:
 * dextd binds its own socket and tells no one.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#ifdef DEXTD_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "daemon/dextd.h"

#ifdef DEXTD_SYSTEMD

int systemd_listen_fd(Daemon *d)
{
    static char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct sockaddr_un sa;
    socklen_t len = sizeof(sa);
    struct stat st;
    int n = sd_listen_fds(1);
    int fd = SD_LISTEN_FDS_START;
    int fl;

    if (n == 0) {
        return -1;
    }
    if (n < 0) {
        dlog(d, DEXT_LOG_ERROR, "socket activation: %s", strerror(-n));
        return -2;
    }
    if (n != 1 || sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
        dlog(d, DEXT_LOG_ERROR, "socket activation: expected one listening "
             "UNIX seqpacket socket (ListenSequentialPacket=), got %d "
             "fd(s)", n);
        return -2;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        dlog(d, DEXT_LOG_ERROR, "socket activation: %s", strerror(errno));
        return -2;
    }
    /* The path is systemd's: for the log, and never removed by us. */
    memset(&sa, 0, sizeof(sa));
    if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 &&
        len > offsetof(struct sockaddr_un, sun_path) && sa.sun_path[0]) {
        memcpy(path, sa.sun_path, sizeof(path) - 1);
        d->path = path;
    }
    if (stat(d->path, &st) == 0) {
        d->sock_dev = st.st_dev;
        d->sock_ino = st.st_ino;
    }
    d->activated = true;
    return fd;
}

void systemd_notify(const char *state)
{
    (void)sd_notify(0, state);
}

#else /* !DEXTD_SYSTEMD */

int systemd_listen_fd(Daemon *d)
{
    return -1;
}

void systemd_notify(const char *state)
{
}

#endif
