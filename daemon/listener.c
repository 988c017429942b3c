/*
 * SPDX-License-Identifier: MIT
 *
 * The listening socket and the main thread's loop: accepting channels
 * within the per-peer caps, reaping finished ones, shutdown.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/dextd.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77                 /* Linux 6.5 */
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434              /* Linux 5.3 */
#endif

/* An ERROR outside any channel state: refusals at accept time. */
static void send_refusal(int fd, IOReturn status)
{
    uint8_t buf[DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_STATUS_ONLY_SIZE];
    int len = dext_wire_encode_status_only(buf, sizeof(buf),
                                           DEXT_WIRE_VERSION_HELLO, 0,
                                           DEXT_WIRE_ERROR, status);

    (void)dext_wire_send(fd, buf, len, -1);
}


/*
 * A pidfd of the process that connected on @fd, or -errno.  SO_PEERPIDFD
 * names the very process that called connect() and fails if it has gone,
 * so the session can never be bound to a process that reused its pid.
 * Kernels before 6.5 lack it: pidfd_open of the SO_PEERCRED pid is then
 * the best there is, and it is wrong if that process exited and its pid
 * was reused between connect() and here (docs/reliability.md).
 */
static int peer_pidfd(Daemon *d, int fd, pid_t pid)
{
    static bool warned;
    socklen_t len = sizeof(int);
    int pidfd = -1;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) {
        return pidfd;
    }
    if (errno != ENOPROTOOPT) {
        return errno == EINVAL ? -ESRCH : -errno;
    }
    if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED)) {
        dlog(d, DEXT_LOG_WARNING, "this kernel has no SO_PEERPIDFD: a "
             "client's pid is bound at accept, not at connect");
    }
    if (pid <= 0) {
        return -ESRCH;
    }
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    return pidfd >= 0 ? pidfd : -errno;
}

/*
 * Is the peer on @fd, connected as @cred, in --socket-group?  Its
 * effective gid, or one of its supplementary groups as the kernel
 * recorded them at connect() (SO_PEERGROUPS, Linux 4.13): like
 * SO_PEERCRED, what the process was when it connected, so nothing it
 * or a pid reuse does later changes the answer.
 */
static bool peer_in_group(Daemon *d, int fd, const struct ucred *cred)
{
    gid_t groups[256];
    socklen_t len = sizeof(groups);
    size_t i;

    if (!d->group_set) {
        return false;
    }
    if (cred->gid == d->sock_gid) {
        return true;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
        /* ERANGE: more than 256 groups; fail closed either way. */
        dlog_limited(d, &d->log_rl, DEXT_LOG_WARNING, "pid %d: cannot read "
                     "its groups: %s", (int)cred->pid, strerror(errno));
        return false;
    }
    for (i = 0; i < len / sizeof(gid_t); i++) {
        if (groups[i] == d->sock_gid) {
            return true;
        }
    }
    return false;
}

/* Refuse the connection @fd with an ERROR, then close it. */
static void refuse(Daemon *d, int fd, pid_t pid, IOReturn status,
                   const char *why)
{
    dlog_limited(d, &d->log_rl, DEXT_LOG_WARNING, "refused pid %d: %s",
                 (int)pid, why);
    send_refusal(fd, status);
    close(fd);
}

/*
 * accept() failed with @err.  Out of fds should not happen (the reserve
 * is for the accept path); if it does, a spare fd let go for a moment
 * answers the client instead of leaving it waiting.  Out of memory, or
 * still out of fds: stop accepting for a moment, without blocking the
 * loop that also handles signals and reaps channels.
 */
static void accept_failed(Daemon *d, int err)
{
    struct ucred cred = { .pid = 0 };
    socklen_t clen = sizeof(cred);
    int fd;

    if ((err == EMFILE || err == ENFILE) && d->spare_fd >= 0) {
        close(d->spare_fd);
        fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            err = errno;
        } else {
            (void)getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen);
            refuse(d, fd, cred.pid, kIOReturnNoResources, strerror(err));
        }
        d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            return;
        }
    }
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        dlog_limited(d, &d->log_rl, DEXT_LOG_WARNING, "accept: %s",
                     strerror(err));
        d->accept_paused = true;
        d->accept_resume = now_ms() + DEXTD_ACCEPT_PAUSE_MS;
    }
}

static void accept_one(Daemon *d) DEXT_EXCLUDES(d->lock)
{
    pthread_attr_t attr;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    const char *why;
    Channel *ch;
    int pidfd;
    int fd;
    int rc;

    fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        accept_failed(d, errno);
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
        close(fd);
        return;
    }
    if (cred.uid != d->euid && cred.uid != 0 &&
        !peer_in_group(d, fd, &cred)) {
        dlog_limited(d, &d->log_rl, DEXT_LOG_WARNING, "refused pid %d: uid "
                     "%u is neither ours (%u) nor root%s", (int)cred.pid,
                     (unsigned)cred.uid, (unsigned)d->euid,
                     d->group_set ? ", nor in the socket's group" : "");
        send_refusal(fd, kIOReturnNotPermitted);
        close(fd);
        return;
    }
    dext_mutex_lock(&d->lock);
    why = channel_admit_locked(d, &cred);
    dext_mutex_unlock(&d->lock);
    if (why != NULL) {
        refuse(d, fd, cred.pid, kIOReturnNoResources, why);
        return;
    }
    pidfd = peer_pidfd(d, fd, cred.pid);
    if (pidfd < 0) {
        char why_buf[64];

        /* Fail closed: a session we cannot bind to its process is none. */
        snprintf(why_buf, sizeof(why_buf), "no pidfd: %s", strerror(-pidfd));
        refuse(d, fd, cred.pid, pidfd == -ESRCH ? kIOReturnNotAttached
                                                : kIOReturnNoResources,
               why_buf);
        channel_unadmit(d);
        return;
    }
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        close(pidfd);
        refuse(d, fd, cred.pid, kIOReturnNoMemory, "out of memory");
        channel_unadmit(d);
        return;
    }
    ch->d = d;
    ch->fd = fd;
    ch->pid = cred.pid;
    ch->uid = cred.uid;
    ch->pidfd = pidfd;
    ch->hello_deadline = now_ms() + d->handshake_ms;

    dext_mutex_lock(&d->lock);
    ch->next = d->channels;
    d->channels = ch;
    dext_mutex_unlock(&d->lock);

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, DEXTD_THREAD_STACK);
    rc = pthread_create(&ch->thread, &attr, channel_thread, ch);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        char why_buf[64];

        dext_mutex_lock(&d->lock);
        d->channels = ch->next;     /* only main adds, so still the head */
        dext_mutex_unlock(&d->lock);
        close(pidfd);
        free(ch);
        snprintf(why_buf, sizeof(why_buf), "no thread: %s", strerror(rc));
        refuse(d, fd, cred.pid, kIOReturnNoResources, why_buf);
        channel_unadmit(d);
        return;
    }
    dlog(d, DEXT_LOG_DEBUG, "pid %d uid %u: channel accepted", (int)cred.pid,
         (unsigned)cred.uid);
}

/* Join and free the channels whose threads have finished. */
static void reap_channels(Daemon *d) DEXT_EXCLUDES(d->lock)
{
    Channel *dead = NULL;
    Channel **pp;
    Channel *ch;
    eventfd_t v;

    (void)eventfd_read(d->reap_fd, &v);
    dext_mutex_lock(&d->lock);
    pp = &d->channels;
    while ((ch = *pp) != NULL) {
        if (ch->done) {
            *pp = ch->next;
            ch->next = dead;
            dead = ch;
        } else {
            pp = &ch->next;
        }
    }
    dext_mutex_unlock(&d->lock);
    while ((ch = dead) != NULL) {
        dead = ch->next;
        pthread_join(ch->thread, NULL);
        free(ch);
    }
}

void shutdown_channels(Daemon *d)
{
    Channel *ch;

    /* Wake every channel thread out of its recvmsg (or a stuck send). */
    dext_mutex_lock(&d->lock);
    for (ch = d->channels; ch != NULL; ch = ch->next) {
        if (ch->fd >= 0) {
            shutdown(ch->fd, SHUT_RDWR);
        }
    }
    dext_mutex_unlock(&d->lock);
    /* Threads never unlink themselves, so the list is stable here. */
    while ((ch = d->channels) != NULL) {
        d->channels = ch->next;
        pthread_join(ch->thread, NULL);
        free(ch);
    }
}

/*
 * Shutdown joins every channel thread and then stops the devices' engines.
 * A thread blocked on a client's page that never arrives (userfaultfd)
 * would make that wait last for ever, so a watchdog ends the process
 * after DEXTD_SHUTDOWN_GRACE_S anyway, leaving what those threads hold to
 * the kernel.  The socket is gone by then: no client can notice.
 */
#define DEXTD_SHUTDOWN_GRACE_S 10

static void *shutdown_watchdog(void *opaque)
{
    Daemon *d = opaque;

    sleep(DEXTD_SHUTDOWN_GRACE_S);
    dlog(d, DEXT_LOG_WARNING, "shutdown still waits after %d s for threads "
         "held by a client's memory; exiting without them",
         DEXTD_SHUTDOWN_GRACE_S);
    _exit(d->exit_status);
}

void start_shutdown_watchdog(Daemon *d, int status)
{
    d->exit_status = status;
    d->watchdog_on = pthread_create(&d->watchdog, NULL, shutdown_watchdog,
                                    d) == 0;
    if (!d->watchdog_on) {
        dlog(d, DEXT_LOG_WARNING, "no shutdown watchdog: a stalled client "
             "could delay exit");
    }
}

void stop_shutdown_watchdog(Daemon *d)
{
    /* It sleeps, a cancellation point; joined, it leaves nothing behind. */
    if (d->watchdog_on) {
        pthread_cancel(d->watchdog);
        pthread_join(d->watchdog, NULL);
        d->watchdog_on = false;
    }
}

/* Is a daemon answering at @sa? */
bool socket_is_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool live;

    if (fd < 0) {
        return false;
    }
    live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    close(fd);
    return live;
}

static int bind_listen(Daemon *d, int fd, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    mode_t old;
    int rc;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    /* Never world-accessible, not even between bind() and chmod(). */
    old = umask(077);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0) {
        return -1;
    }
    /* The group first, then the mode that lets it in. */
    if ((d->group_set && chown(path, (uid_t)-1, d->sock_gid) < 0) ||
        chmod(path, d->sock_mode) < 0 || listen(fd, DEXTD_BACKLOG) < 0) {
        int saved = errno;

        unlink(path);
        errno = saved;
        return -1;
    }
    return 0;
}

/*
 * A directory others may write to, without the sticky bit, lets them
 * remove our socket and put their own in its place.  Clients refuse a
 * daemon that is neither root nor their own user, so the harm is denial
 * of service, not impersonation; say so, once, at start.
 */
static void warn_unsafe_dir(Daemon *d)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *slash = strrchr(d->path, '/');
    struct stat st;

    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == d->path) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - d->path), d->path);
    }
    if (stat(dir, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) &&
        !(st.st_mode & S_ISVTX)) {
        dlog(d, DEXT_LOG_WARNING, "%s is writable by other users and not "
             "sticky: they can remove or replace this socket", dir);
    }
}

int listen_setup(Daemon *d)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char tmp[sizeof(sa.sun_path)];
    struct stat st;
    int fd;

    if (strlen(d->path) == 0 || strlen(d->path) >= sizeof(sa.sun_path)) {
        dlog(d, DEXT_LOG_ERROR, "socket path '%s' is empty or too long",
             d->path);
        return -1;
    }
    memcpy(sa.sun_path, d->path, strlen(d->path) + 1);
    if (socket_is_live(&sa)) {
        dlog(d, DEXT_LOG_ERROR, "another dextd is serving %s", d->path);
        return -1;
    }
    if (lstat(d->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            dlog(d, DEXT_LOG_ERROR, "%s exists and is not a socket", d->path);
            return -1;
        }
        dlog(d, DEXT_LOG_INFO, "removing stale socket %s", d->path);
        unlink(d->path);
    }

    warn_unsafe_dir(d);

    /* Non-blocking: a connection gone before accept() must not hang it. */
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        dlog(d, DEXT_LOG_ERROR, "socket: %s", strerror(errno));
        return -1;
    }
    /*
     * Listen under a private name and link it into place, so the path
     * appears only once it accepts and never replaces a rival's socket.
     */
    if (snprintf(tmp, sizeof(tmp), "%s.%d", d->path, (int)getpid()) <
        (int)sizeof(tmp)) {
        unlink(tmp);
        if (bind_listen(d, fd, tmp) < 0) {
            dlog(d, DEXT_LOG_ERROR, "bind %s: %s", tmp, strerror(errno));
            close(fd);
            return -1;
        }
        if (link(tmp, d->path) < 0) {
            dlog(d, DEXT_LOG_ERROR, "%s: %s", d->path,
                 errno == EEXIST ? "another dextd started meanwhile"
                                 : strerror(errno));
            unlink(tmp);
            close(fd);
            return -1;
        }
        unlink(tmp);
    } else if (bind_listen(d, fd, d->path) < 0) {
        dlog(d, DEXT_LOG_ERROR, "bind %s: %s", d->path, strerror(errno));
        close(fd);
        return -1;
    }
    if (stat(d->path, &st) == 0) {
        d->sock_dev = st.st_dev;
        d->sock_ino = st.st_ino;
    }
    d->listen_fd = fd;
    return 0;
}

/* Remove our socket, unless someone has put another in its place. */
void listen_cleanup(Daemon *d)
{
    struct stat st;

    if (d->listen_fd < 0) {
        return;
    }
    /* An activated socket is systemd's to keep for the next start. */
    if (!d->activated && stat(d->path, &st) == 0 &&
        st.st_dev == d->sock_dev &&
        st.st_ino == d->sock_ino) {
        unlink(d->path);
    }
    close(d->listen_fd);
    d->listen_fd = -1;
}

int serve(Daemon *d)
{
    struct pollfd pfd[3];
    struct signalfd_siginfo si;

    for (;;) {
        int timeout = -1;
        nfds_t n = 3;

        /* While accepting is paused, the listening socket sits out. */
        if (d->accept_paused) {
            uint64_t now = now_ms();

            if (now < d->accept_resume) {
                timeout = (int)(d->accept_resume - now);
                n = 2;
            } else {
                d->accept_paused = false;
            }
        }
        pfd[0] = (struct pollfd){ .fd = d->sig_fd, .events = POLLIN };
        pfd[1] = (struct pollfd){ .fd = d->reap_fd, .events = POLLIN };
        pfd[2] = (struct pollfd){ .fd = d->listen_fd, .events = POLLIN };
        if (poll(pfd, n, timeout) < 0) {
            if (errno == EINTR) {
                continue;
            }
            dlog(d, DEXT_LOG_ERROR, "poll: %s", strerror(errno));
            return 1;
        }
        if (pfd[0].revents & POLLIN) {
            if (read(d->sig_fd, &si, sizeof(si)) != (ssize_t)sizeof(si)) {
                /* Nothing read: nothing to do. */
            } else if (si.ssi_signo == SIGHUP) {
                /*
                 * Nothing to reload: options come from the command line
                 * and the log is stderr, which a log rotator cannot swap.
                 * Not dying matters: a closing terminal sends it.
                 */
                dlog(d, DEXT_LOG_INFO, "SIGHUP: nothing to reload, "
                     "still serving");
            } else {
                dlog(d, DEXT_LOG_INFO, "%s, shutting down",
                     strsignal((int)si.ssi_signo));
                return 0;
            }
        }
        if (pfd[1].revents & POLLIN) {
            reap_channels(d);
            d->accept_paused = false;   /* a channel gave its fds back */
        }
        if (n == 3 && (pfd[2].revents & POLLIN)) {
            accept_one(d);
        }
    }
}
