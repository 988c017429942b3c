/*
 * SPDX-License-Identifier: MIT
 *
 * Messages on the client's stream socket, read ahead into one buffer
 * (one recvmsg() a message when it arrives whole); replies with their
 * fds, in one send() when there are none.  Every length and fd count is
 * bounded before anything is read past a header or kept.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vfu-socket.h"

/*
 * The client's socket with a read-ahead buffer.  A read that starts at
 * a message boundary (nothing buffered) may take that message and those
 * after it in one recvmsg(); a read with part of a message buffered is
 * bounded by that message (the rest of its header, then of its body),
 * so data past a message is only ever read at a boundary.
 *
 * fds: a unix stream socket ends a read after the segment that carried
 * fds, so they belong to the message holding the read's last byte
 * (@fd_last).  That message takes them; the others get none.  A second
 * set for a message that still holds one, too many, a truncated control
 * message: the connection fails, every fd closed.
 */
typedef struct VfuConn {
    int sock;
    uint8_t *buf;               /* VFU_MAX_MSG_SIZE bytes */
    size_t start, end;          /* buffered, not yet handled */
    int fds[VFU_MAX_MSG_FDS];
    unsigned nfds;
    size_t fd_last;             /* offset in @buf of their message's byte */
} VfuConn;

static void conn_drop_fds(VfuConn *c)
{
    while (c->nfds > 0) {
        close(c->fds[--c->nfds]);
    }
}

/*
 * The next whole message, if buffered: 1 with it at buf + start (its
 * fds moved to @fds), 0 if more must be read, -1 if its size is out of
 * bounds.
 */
static int conn_next(VfuConn *c, size_t *len, int *fds, unsigned *nfds)
{
    size_t have = c->end - c->start;
    VfuHeader h;

    *nfds = 0;
    if (have < VFU_HDR_SIZE) {
        return 0;
    }
    memcpy(&h, c->buf + c->start, sizeof(h));
    if (h.size < VFU_HDR_SIZE || h.size > VFU_MAX_MSG_SIZE) {
        return -1;
    }
    if (have < h.size) {
        return 0;
    }
    if (c->nfds > 0 && c->fd_last < c->start + h.size) {
        memcpy(fds, c->fds, c->nfds * sizeof(int));
        *nfds = c->nfds;
        c->nfds = 0;
    }
    *len = h.size;
    return 1;
}

/* How much the next read may take: see VfuConn. */
static size_t conn_want(VfuConn *c)
{
    size_t have = c->end - c->start;
    VfuHeader h;

    if (have == 0) {
        return VFU_MAX_MSG_SIZE;
    }
    if (have < VFU_HDR_SIZE) {
        return VFU_HDR_SIZE - have;
    }
    memcpy(&h, c->buf + c->start, sizeof(h));
    return h.size - have;       /* conn_next() checked h.size */
}

/* One recvmsg() into the buffer: 0, or -1 (end of file, error, bad fds). */
static int conn_fill(VfuConn *c)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(VFU_MAX_MSG_FDS * sizeof(int))];
    } ctl;
    struct iovec iov;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
    };
    struct cmsghdr *cm;
    bool bad = false, got = false;
    ssize_t r;

    /* Move a partial message to the front: a whole one always fits. */
    if (c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->fd_last -= c->nfds > 0 ? c->start : 0;
        c->end -= c->start;
        c->start = 0;
    }
    iov.iov_base = c->buf + c->end;
    iov.iov_len = conn_want(c);
    do {
        r = recvmsg(c->sock, &mh, MSG_CMSG_CLOEXEC);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
        return -1;
    }
    for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            size_t k, n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            for (k = 0; k < n; k++) {
                int fd;

                memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
                if (!got && c->nfds > 0) {
                    bad = true;     /* a second set for that message */
                }
                got = true;
                if (!bad && c->nfds < VFU_MAX_MSG_FDS) {
                    c->fds[c->nfds++] = fd;
                } else {
                    close(fd);
                    bad = true;
                }
            }
        }
    }
    if (bad || (mh.msg_flags & MSG_CTRUNC)) {
        conn_drop_fds(c);
        return -1;
    }
    c->end += (size_t)r;
    if (got) {
        c->fd_last = c->end - 1;
    }
    return 0;
}

/*
 * Send a message whose header is at @msg, @len bytes in all: send(), or
 * sendmsg() when fds go with it (on its first part only).
 */
static int conn_send(int sock, uint8_t *msg, size_t len, const int *fds,
                     unsigned nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(VFU_MAX_MSG_FDS * sizeof(int))];
    } ctl;
    size_t sent = 0;

    while (sent < len) {
        ssize_t r;

        if (nfds > 0) {
            struct iovec iov = { msg + sent, len - sent };
            struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                .msg_controllen = CMSG_SPACE(nfds * sizeof(int)),
            };
            struct cmsghdr *cm;

            memset(&ctl, 0, sizeof(ctl));
            cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
            memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
            r = sendmsg(sock, &mh, MSG_NOSIGNAL);
        } else {
            r = send(sock, msg + sent, len - sent, MSG_NOSIGNAL);
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            vfu_log_client("the client read no reply within the send "
                           "timeout: dropped");
        }
        if (r <= 0) {
            return -1;
        }
        sent += (size_t)r;
        nfds = 0;               /* they went with the first part */
    }
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Before VERSION: wait for the client's next bytes until @deadline
 * (CLOCK_MONOTONIC, ms).  One deadline for the whole handshake, not a
 * bound per read, or a client dripping a byte at a time would hold the
 * server for ever.  True once there is something to read (data, a
 * hang-up or an error, which the read then reports); false at the
 * deadline.
 */
static bool handshake_wait(int sock, uint64_t deadline)
{
    struct pollfd p = { .fd = sock, .events = POLLIN };

    for (;;) {
        uint64_t now = now_ms();
        int r;

        if (now >= deadline) {
            return false;
        }
        r = poll(&p, 1, (int)(deadline - now));
        if (r > 0 || (r < 0 && errno != EINTR)) {
            return true;
        }
    }
}

int vfu_serve_client(VfuSession *s, int sock, unsigned handshake_ms)
{
    VfuConn c = { .sock = sock, .buf = malloc(VFU_MAX_MSG_SIZE) };
    uint8_t *out = malloc(VFU_MAX_MSG_SIZE);
    uint64_t deadline = handshake_ms ? now_ms() + handshake_ms : 0;
    int fds[VFU_MAX_MSG_FDS];
    int ret = -1;

    if (c.buf == NULL || out == NULL) {
        goto done;
    }
    for (;;) {
        VfuReply rep = { .payload = out + VFU_HDR_SIZE };
        int irq_fd = vfu_irq_poll_fd(s);
        const uint8_t *msg;
        VfuHeader h;
        unsigned nfds;
        size_t len;
        int r;

        if (s->trigger_blocked) {
            break;          /* after vfu_irq_deliver(): dropped */
        }
        r = conn_next(&c, &len, fds, &nfds);
        if (r < 0) {
            ret = 0;        /* as a failed read: the client is dropped */
            break;
        }
        if (r == 0) {
            /*
             * Wait for the client and the device at once; with no
             * interrupts set up only the client can wake us, so its
             * socket is read straight away (nothing can set them up
             * meanwhile but a message from it).
             */
            if (irq_fd >= 0) {
                struct pollfd pfd[2] = {
                    { .fd = sock, .events = POLLIN },
                    { .fd = irq_fd, .events = POLLIN },
                };

                if (poll(pfd, 2, -1) < 0) {
                    if (errno == EINTR) {
                        continue;
                    }
                    break;
                }
                if (pfd[1].revents & POLLIN) {
                    vfu_irq_deliver(s);
                    if (s->trigger_blocked) {
                        break;  /* dropped: read nothing more from it */
                    }
                }
                if (pfd[1].revents & (POLLHUP | POLLERR)) {
                    vfu_log("the dext went away");
                    break;
                }
                if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                    continue;
                }
            }
            if (!s->versioned && deadline != 0 &&
                !handshake_wait(sock, deadline)) {
                vfu_log_client("no VERSION within the handshake timeout: "
                               "dropped");
                ret = 0;
                break;
            }
            if (conn_fill(&c) != 0) {
                ret = 0;    /* the client went away */
                break;
            }
            continue;
        }
        msg = c.buf + c.start;
        c.start += len;
        memcpy(&h, msg, sizeof(h));
        r = vfu_handle(s, msg, len, fds, nfds, &rep);
        if (s->trigger_blocked) {
            vfu_close_fds(rep.fds, rep.nfds);
            break;          /* no reply to a client being dropped */
        }
        if (r < 0) {
            vfu_log_client("malformed message (command %u, %zu bytes): "
                           "closing", h.command, len);
            break;
        }
        if (r == 0) {
            h.size = (uint32_t)(VFU_HDR_SIZE + rep.len);
            h.flags = VFU_FLAG_TYPE_REPLY | (rep.err ? VFU_FLAG_ERROR : 0);
            h.error = (uint32_t)rep.err;
            memcpy(out, &h, sizeof(h));
            if (conn_send(sock, out, h.size, rep.fds, rep.nfds) != 0) {
                break;
            }
        }
        while (rep.nfds > 0) {
            close(rep.fds[--rep.nfds]);
        }
    }
done:
    if (s->trigger_blocked) {
        vfu_log_client("a trigger eventfd blocked the server (the client "
                       "filled its counter and cleared O_NONBLOCK): "
                       "dropped");
    }
    conn_drop_fds(&c);
    free(c.buf);
    free(out);
    return ret;
}
