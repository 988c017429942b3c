/*
 * SPDX-License-Identifier: MIT
 *
 * Moving one wire message (and its fds) over a SOCK_SEQPACKET socket:
 * shared by the unix transport and dextd so both pass fds the same way.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/dext-wire.h"
#include "support/sock-io.h"

/* Room for the most fds either side accepts in one message. */
#define WIRE_IO_MAX_FDS 16

ssize_t dext_wire_sendmsg(int sock, const void *buf, size_t len, int pass_fd)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(int))];
    } cbuf;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *cm;
    ssize_t n;

    if (pass_fd < 0) {
        /*
         * Nearly every message carries no fd: send() skips copying and
         * checking a msghdr and iovec, a measurable part of a round trip
         * (see docs/performance.md).
         */
        return dext_sock_send(sock, buf, len, MSG_NOSIGNAL);
    }
    memset(&cbuf, 0, sizeof(cbuf));
    msg.msg_control = cbuf.buf;
    msg.msg_controllen = sizeof(cbuf.buf);
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
}

IOReturn dext_wire_send(int sock, const void *buf, int len, int pass_fd)
{
    ssize_t n;

    if (len < 0) {
        return kIOReturnInternalError;
    }
    n = dext_wire_sendmsg(sock, buf, (size_t)len, pass_fd);
    if (n < 0) {
        if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) {
            return kIOReturnNotResponding;
        }
        return kIOReturnIPCError;
    }
    /* SEQPACKET sends are atomic; anything else is a broken socket. */
    return n == len ? kIOReturnSuccess : kIOReturnIPCError;
}

ssize_t dext_wire_recvmsg(int sock, void *buf, size_t cap, int flags,
                          int *fds, int max_fds, int *nfds, bool *trunc)
{
    return dext_wire_recvmsg_cred(sock, buf, cap, flags, fds, max_fds, nfds,
                                  trunc, NULL);
}

ssize_t dext_wire_recvmsg_cred(int sock, void *buf, size_t cap, int flags,
                               int *fds, int max_fds, int *nfds, bool *trunc,
                               pid_t *sender)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(struct ucred)) +
                 CMSG_SPACE(sizeof(int) * WIRE_IO_MAX_FDS)];
    } cbuf;
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    struct msghdr msg;
    struct cmsghdr *cm;
    ssize_t n;

    *nfds = 0;
    *trunc = false;
    if (max_fds < 0) {
        max_fds = 0;
    } else if (max_fds > WIRE_IO_MAX_FDS) {
        max_fds = WIRE_IO_MAX_FDS;
    }
    do {
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.buf;
        /*
         * Room for the caller's fds only: the kernel installs no more
         * than fit and reports the rest as MSG_CTRUNC, so a peer cannot
         * make us hold (even for a moment) more fds than we take.
         */
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)max_fds) +
                             (sender ? CMSG_SPACE(sizeof(struct ucred)) : 0);
        n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -1;
    }
    if (sender != NULL) {
        *sender = -1;
    }
    /* Keep what the caller has room for; never leak the rest. */
    for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
        size_t cnt, i;

        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS &&
            sender != NULL && cm->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred uc;

            memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
            *sender = uc.pid;
            continue;
        }
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < cnt; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (*nfds < max_fds) {
                fds[(*nfds)++] = fd;
            } else {
                close(fd);
                *trunc = true;
            }
        }
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        *trunc = true;
    }
    return n;
}
