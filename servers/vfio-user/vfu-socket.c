/*
 * SPDX-License-Identifier: MIT
 *
 * Messages on the client's stream socket: a header with its fds, the
 * rest of the message after it; replies with their fds.  Every length
 * and fd count is bounded before anything is allocated or kept.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vfu-socket.h"

static int read_full(int sock, uint8_t *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = recv(sock, buf + got, len - got, 0);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int vfu_recv(int sock, uint8_t *buf, size_t *len, int *fds, unsigned *nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(VFU_MAX_MSG_FDS * sizeof(int))];
    } ctl;
    struct iovec iov = { buf, VFU_HDR_SIZE };
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
    };
    struct cmsghdr *c;
    VfuHeader h;
    ssize_t r;
    bool bad = false;

    *nfds = 0;
    do {
        r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
        return -1;
    }
    for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k, n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            for (k = 0; k < n; k++) {
                int fd;

                memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
                if (*nfds < VFU_MAX_MSG_FDS) {
                    fds[(*nfds)++] = fd;
                } else {
                    close(fd);
                    bad = true;
                }
            }
        }
    }
    if (bad || (mh.msg_flags & MSG_CTRUNC) ||
        ((size_t)r < VFU_HDR_SIZE &&
         read_full(sock, buf + r, VFU_HDR_SIZE - (size_t)r) != 0)) {
        goto fail;
    }
    memcpy(&h, buf, sizeof(h));
    if (h.size < VFU_HDR_SIZE || h.size > VFU_MAX_MSG_SIZE ||
        read_full(sock, buf + VFU_HDR_SIZE, h.size - VFU_HDR_SIZE) != 0) {
        goto fail;
    }
    *len = h.size;
    return 0;
fail:
    while (*nfds > 0) {
        close(fds[--*nfds]);
    }
    return -1;
}

int vfu_send(int sock, const VfuHeader *h, const uint8_t *payload,
             size_t len, const int *fds, unsigned nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(VFU_MAX_MSG_FDS * sizeof(int))];
    } ctl;
    struct iovec iov[2] = {
        { (void *)h, VFU_HDR_SIZE }, { (void *)payload, len },
    };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
    size_t total = VFU_HDR_SIZE + len, sent = 0;

    if (nfds > 0) {
        struct cmsghdr *c;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    while (sent < total) {
        ssize_t r = sendmsg(sock, &mh, MSG_NOSIGNAL);
        size_t adv;

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        sent += (size_t)r;
        /* Only the first sendmsg carries the fds; skip what went. */
        mh.msg_control = NULL;
        mh.msg_controllen = 0;
        adv = (size_t)r;
        while (adv > 0 && mh.msg_iovlen > 0) {
            if (adv >= mh.msg_iov[0].iov_len) {
                adv -= mh.msg_iov[0].iov_len;
                mh.msg_iov++;
                mh.msg_iovlen--;
            } else {
                mh.msg_iov[0].iov_base = (uint8_t *)mh.msg_iov[0].iov_base + adv;
                mh.msg_iov[0].iov_len -= adv;
                adv = 0;
            }
        }
    }
    return 0;
}

int vfu_serve_client(VfuSession *s, int sock)
{
    uint8_t *in = malloc(VFU_MAX_MSG_SIZE);
    uint8_t *out = malloc(VFU_MAX_MSG_SIZE);
    int fds[VFU_MAX_MSG_FDS];
    int ret = -1;

    if (in == NULL || out == NULL) {
        goto done;
    }
    for (;;) {
        struct pollfd pfd[2] = {
            { .fd = sock, .events = POLLIN },
            { .fd = vfu_irq_poll_fd(s), .events = POLLIN },
        };
        VfuReply rep = { .payload = out };
        VfuHeader h;
        unsigned nfds;
        size_t len;
        int r;

        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pfd[1].revents & POLLIN) {
            vfu_irq_deliver(s);
        }
        if (pfd[1].revents & (POLLHUP | POLLERR)) {
            vfu_log("the dext went away");
            break;
        }
        if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            continue;
        }
        if (vfu_recv(sock, in, &len, fds, &nfds) != 0) {
            ret = 0;        /* the client went away */
            break;
        }
        memcpy(&h, in, sizeof(h));
        r = vfu_handle(s, in, len, fds, nfds, &rep);
        if (r < 0) {
            vfu_log("malformed message (command %u, %zu bytes): closing",
                    h.command, len);
            break;
        }
        if (r == 0) {
            h.size = (uint32_t)(VFU_HDR_SIZE + rep.len);
            h.flags = VFU_FLAG_TYPE_REPLY | (rep.err ? VFU_FLAG_ERROR : 0);
            h.error = (uint32_t)rep.err;
            if (vfu_send(sock, &h, out, rep.len, rep.fds, rep.nfds) != 0) {
                break;
            }
        }
        while (rep.nfds > 0) {
            close(rep.fds[--rep.nfds]);
        }
    }
done:
    free(in);
    free(out);
    return ret;
}
