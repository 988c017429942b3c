/*
 * SPDX-License-Identifier: MIT
 *
 * Wake ports: the sockets a client hands dextd for the core to wake
 * it on; what may be one, and sealing it so dextd only sends on it.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/dextd.h"

/* getsockopt() of an int at SOL_SOCKET level, or -1. */
static int sockopt_int(int fd, int opt)
{
    socklen_t len = sizeof(int);
    int v;

    return getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

/* What the core's send(MSG_DONTWAIT) can rely on: see dextd.h. */
const char *wake_port_refusal(Daemon *d, int fd)
{
    struct sockaddr_storage sa;
    struct ucred cred;
    socklen_t len;
    struct stat st;
    int type;

    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        return "not a socket";
    }
    if (sockopt_int(fd, SO_DOMAIN) != AF_UNIX) {
        return "not an AF_UNIX socket";
    }
    type = sockopt_int(fd, SO_TYPE);
    if (type != SOCK_SEQPACKET && type != SOCK_DGRAM) {
        return "not a SEQPACKET or DGRAM socket";
    }
    if (sockopt_int(fd, SO_ACCEPTCONN) != 0) {
        return "a listening socket";
    }
    len = sizeof(sa);
    if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0) {
        return "not connected";
    }
    len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        return "no peer credentials";
    }
    if (cred.pid == d->pid) {
        return "its peer is dextd itself";
    }
    return NULL;
}

/*
 * The fds in flight in @fd's receive queue (fdinfo's scm_fds, Linux 5.7),
 * or -1 if the kernel does not say.
 */
static int queued_fds(int fd)
{
    char path[64];
    char line[128];
    int n = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    f = fopen(path, "re");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "scm_fds: %d", &n) == 1) {
            break;
        }
    }
    fclose(f);
    return n;
}

/*
 * Once shut for reading, the peer's sends fail with EPIPE (SEQPACKET and
 * DGRAM alike).  A SEQPACKET socket reads an empty message exactly as
 * its end of file, so the kernel's count of fds in flight says when
 * nothing that matters is left.
 */
bool wake_port_seal(int fd)
{
    unsigned errors = 0;

    if (shutdown(fd, SHUT_RD) < 0) {
        return false;
    }
    for (;;) {
        union {
            struct cmsghdr hdr;
            char buf[CMSG_SPACE(sizeof(int))];
        } cbuf;
        uint8_t byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
        };
        struct cmsghdr *cm;
        bool got_fds = false;
        ssize_t n;

        n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || ++errors > 8) {
                break;
            }
            continue;                   /* EINTR, or a pending error */
        }
        for (cm = CMSG_FIRSTHDR(&msg); cm != NULL;
             cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                size_t i, cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                for (i = 0; i < cnt; i++) {
                    int rfd;

                    memcpy(&rfd, CMSG_DATA(cm) + i * sizeof(int), sizeof(rfd));
                    close(rfd);
                    got_fds = true;
                }
            }
        }
        if (n == 0 && !got_fds && queued_fds(fd) <= 0) {
            break;              /* the end, or empty messages and no fds */
        }
    }
    return queued_fds(fd) <= 0;
}

void wake_ports_init(Session *s)
{
    int i;

    dext_mutex_init(&s->port_lock);
    for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
        s->ports[i].fd = -1;
    }
}

unsigned wake_ports_close(Session *s)
{
    unsigned n = 0;
    int i;

    for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
        if (s->ports[i].fd >= 0) {
            close(s->ports[i].fd);
            n++;
        }
    }
    dext_mutex_destroy(&s->port_lock);
    return n;
}

IOReturn wake_port_add(Session *s, int fd, uint32_t *id)
{
    IOReturn status = kIOReturnNoSpace;
    int i;

    dext_mutex_lock(&s->port_lock);
    for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
        if (s->ports[i].id == 0) {
            if (++s->next_port == 0) {
                s->next_port = 1;
            }
            s->ports[i].id = s->next_port;
            s->ports[i].fd = fd;
            *id = s->ports[i].id;
            status = kIOReturnSuccess;
            break;
        }
    }
    dext_mutex_unlock(&s->port_lock);
    return status;
}

int wake_port_remove(Session *s, uint32_t id)
{
    int fd = -1;
    int i;

    dext_mutex_lock(&s->port_lock);
    for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
        if (s->ports[i].id == id) {
            fd = s->ports[i].fd;
            s->ports[i].id = 0;
            s->ports[i].fd = -1;
            break;
        }
    }
    dext_mutex_unlock(&s->port_lock);
    return fd;
}

bool wake_port_call_async(Session *s, uint32_t id, uint32_t selector,
                          DextCallArgs *args, IOReturn *status)
{
    bool found = false;
    int i;

    dext_mutex_lock(&s->port_lock);
    for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
        if (s->ports[i].id != 0 && s->ports[i].id == id) {
            found = true;
            break;
        }
    }
    /*
     * Held across the call so an UNREGISTER cannot close the fd before
     * the core has taken its own copy.
     */
    if (found) {
        *status = dext_session_call_async(s->cs, selector, s->ports[i].fd,
                                          args);
    }
    dext_mutex_unlock(&s->port_lock);
    return found;
}
