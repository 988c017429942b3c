/*
 * SPDX-License-Identifier: MIT
 *
 * A channel's thread: receive a request, handle it, send the reply.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon/dextd.h"
#include "support/sock-io.h"

/*
 * A lean channel's receive: a plain recv() with no control buffer, a
 * measurable part of a round trip less than recvmsg() with room for fds
 * and credentials (docs/performance.md).  Fds sent anyway are discarded
 * by the kernel, never installed; MSG_TRUNC reports a message too long.
 */
static ssize_t recv_lean(Channel *ch, DextdRequest *req)
{
    ssize_t n = dext_sock_recv(ch->fd, ch->rx, sizeof(ch->rx), MSG_TRUNC);

    req->nfds = 0;
    req->sender = -1;
    req->trunc = n > (ssize_t)sizeof(ch->rx);
    return req->trunc ? (ssize_t)sizeof(ch->rx) : n;
}

/*
 * Receive one request into @ch->rx, described by @req, whose @fds has
 * room for DEXTD_MAX_FDS.  False at EOF and on any failure.
 */
static bool recv_request(Channel *ch, DextdRequest *req)
{
    ssize_t n = ch->lean ? recv_lean(ch, req) :
                dext_wire_recvmsg_cred(ch->fd, ch->rx, sizeof(ch->rx), 0,
                                       req->fds, DEXTD_MAX_FDS, &req->nfds,
                                       &req->trunc, &req->sender);

    req->buf = ch->rx;
    req->len = n > 0 ? (size_t)n : 0;
    return n > 0;
}

/* Send @rep, if there is one; false if it could not be. */
static bool send_reply(Channel *ch, DextdReply *rep)
{
    bool ok = rep->len == 0 ||
              dext_wire_send(ch->fd, rep->buf, rep->len, rep->fd) ==
              kIOReturnSuccess;

    reply_done(rep);
    return ok;
}

/*
 * Wait for a new channel's first message until its handshake deadline,
 * so a connection that never says HELLO does not hold a channel (and a
 * thread) for ever.  False once the deadline has passed.
 */
static bool await_hello(Channel *ch)
{
    struct pollfd p = { .fd = ch->fd, .events = POLLIN };

    for (;;) {
        uint64_t now = now_ms();
        uint64_t left;
        int rc;

        if (now >= ch->hello_deadline) {
            return false;
        }
        left = ch->hello_deadline - now;
        rc = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (rc > 0 || (rc < 0 && errno != EINTR)) {
            return true;                /* the receive says what it was */
        }
    }
}

void *channel_thread(void *opaque)
{
    Channel *ch = opaque;
    Daemon *d = ch->d;
    int fds[DEXTD_MAX_FDS];

    for (;;) {
        DextdRequest req = { .fds = fds };
        DextdReply rep = { .buf = ch->tx, .cap = sizeof(ch->tx), .fd = -1 };
        bool keep;

        if (ch->version == 0 && !await_hello(ch)) {
            dlog_limited(d, &d->log_rl, DEXT_LOG_WARNING,
                         "pid %d: no HELLO within %u ms, closing the channel",
                         (int)ch->pid, d->handshake_ms);
            break;
        }
        if (!recv_request(ch, &req)) {
            dext_close_fds(fds, req.nfds);
            break;
        }
        keep = handle_request(ch, &req, &rep);
        if (!send_reply(ch, &rep) || !keep) {
            break;
        }
        if (ch->ring != NULL) {
            ring_serve(ch);
            break;
        }
    }
    ring_release(ch);
    if (ch->session != NULL) {
        session_unref(d, ch->session);
        ch->session = NULL;
    }
    dext_mutex_lock(&d->lock);
    close(ch->fd);
    ch->fd = -1;
    close(ch->pidfd);
    ch->pidfd = -1;
    ch->done = true;
    d->nchannels--;
    d->fd_charged -= DEXTD_CHANNEL_FDS;
    dext_mutex_unlock(&d->lock);
    dlog(d, DEXT_LOG_DEBUG, "pid %d: channel closed", (int)ch->pid);
    (void)eventfd_write(d->reap_fd, 1);
    return NULL;
}
