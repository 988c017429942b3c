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

/* Send @len bytes from @buf on @fd, with @pass_fd if >= 0. */
bool send_msg(int fd, const uint8_t *buf, int len, int pass_fd)
{
    return len >= 0 && dext_wire_sendmsg(fd, buf, (size_t)len, pass_fd) == len;
}

/*
 * Receive one request into @ch->rx.  Returns its length, or 0 for EOF
 * and any failure.  Up to DEXTD_MAX_FDS fds that came with it are in
 * @fds; *@trunc is set if the message or its fds did not fit (any
 * surplus fds are closed here).
 */
static ssize_t recv_msg(Channel *ch, int *fds, int *nfds, bool *trunc)
{
    ssize_t n = dext_wire_recvmsg_cred(ch->fd, ch->rx, sizeof(ch->rx), 0,
                                       fds, DEXTD_MAX_FDS, nfds, trunc,
                                       &ch->sender);

    return n < 0 ? 0 : n;
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
    int nfds;
    bool trunc;
    ssize_t n;

    for (;;) {
        if (ch->version == 0 && !await_hello(ch)) {
            dlog_limited(d, &d->log_rl, DEXT_LOG_WARNING,
                         "pid %d: no HELLO within %u ms, closing the channel",
                         (int)ch->pid, d->handshake_ms);
            break;
        }
        n = recv_msg(ch, fds, &nfds, &trunc);
        if (n <= 0) {
            close_fds(fds, nfds);
            break;
        }
        if (!channel_handle(ch, (size_t)n, fds, nfds, trunc)) {
            break;
        }
    }
    if (ch->session != NULL) {
        session_unref(d, ch->session);
        ch->session = NULL;
    }
    pthread_mutex_lock(&d->lock);
    close(ch->fd);
    ch->fd = -1;
    close(ch->pidfd);
    ch->pidfd = -1;
    ch->done = true;
    d->nchannels--;
    d->fd_charged -= DEXTD_CHANNEL_FDS;
    pthread_mutex_unlock(&d->lock);
    dlog(d, DEXT_LOG_DEBUG, "pid %d: channel closed", (int)ch->pid);
    (void)eventfd_write(d->reap_fd, 1);
    return NULL;
}
