/*
 * SPDX-License-Identifier: MIT
 *
 * Interrupt notification: arm WaitInterrupt with a wake target, and either
 * run a handler on a private thread when it completes (the seed's
 * dispatch-queue callback) or hand the wake fd to the caller's event loop.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "client/client-internal.h"

struct AppleDextInterruptNotify {
    DextConnection *conn;           /* a reference */
    DextWake *wake;                 /* may outlive the transport */
    void (*handler_fn)(void *opaque);
    void *opaque;

    /* Callback mode only. */
    bool threaded;
    pthread_t thread;
    int stop_pipe[2];
    bool self_destroy;      /* destroy() called from the handler (atomic) */
};

/* A close-on-exec pipe; macOS has no pipe2(), so set the flag after. */
static int pipe_cloexec(int fds[2])
{
#if defined(__linux__)
    return pipe2(fds, O_CLOEXEC);
#else
    if (pipe(fds) < 0) {
        return -1;
    }
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}

static void notify_free(AppleDextInterruptNotify *n)
{
    dext_wake_destroy(n->wake);
    if (n->stop_pipe[0] >= 0) {
        close(n->stop_pipe[0]);
        close(n->stop_pipe[1]);
    }
    dext_conn_unref(n->conn);
    free(n);
}

static IOReturn notify_arm(AppleDextInterruptNotify *n)
{
    DextCallArgs a = { 0 };
    IOReturn ret;

    ret = dext_conn_enter_ref(n->conn);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    /* Clear old readiness first: a completion after the arm stays set. */
    dext_wake_consume(n->wake);
    ret = n->conn->t->ops->call_async(n->conn->t,
                                      kDextSelectorWaitInterrupt, n->wake,
                                      &a);
    dext_conn_leave(n->conn);
    return ret;
}

/*
 * A transport that closes swaps a quiet fd into the wake's number first
 * (transport/sock.c), but a poll() already running may still see the
 * old one hang up: only a hang-up that poll() reports again is news.
 */
static bool still_hung_up(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    return poll(&pfd, 1, 0) == 1 &&
           (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/*
 * After the handler returned: in a forked child if the handler forked
 * and returned there.  This thread is then the child's only one, a copy
 * of ours with no program of the child's to return to, and the wake and
 * stop pipe it would go on reading are the parent's: reading them would
 * take the parent's completions.  So the child ends here, as a process
 * whose last thread returns does, but without exit handlers: they are
 * the parent's program's (@n may be gone too: a destroy in the child
 * frees it at once).
 */
static void leave_if_forked(unsigned gen)
{
    if (dext_forked_since(gen)) {
        _exit(0);
    }
}

static void *notify_thread(void *opaque)
{
    AppleDextInterruptNotify *n = opaque;
    /* Made only by the connection's own process: its generation. */
    const unsigned gen = n->conn->fork_gen;
    struct pollfd fds[2] = {
        { .fd = n->wake->fd, .events = POLLIN },
        { .fd = n->stop_pipe[0], .events = POLLIN },
    };

    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (fds[1].revents) {
            break;
        }
        if ((fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) &&
            still_hung_up(n->wake->fd)) {
            /*
             * The dext has gone (or ended the session): nothing will
             * complete any more.  Run the handler once, as documented,
             * so that its rearm learns kIOReturnNotResponding; then
             * stop watching and wait for destroy.
             */
            dext_wake_consume(n->wake);
            fds[0].fd = -1;
            n->handler_fn(n->opaque);
            leave_if_forked(gen);
            if (__atomic_load_n(&n->self_destroy, __ATOMIC_SEQ_CST)) {
                notify_free(n);
                return NULL;
            }
            continue;
        }
        if (fds[0].revents & POLLIN) {
            if (dext_wake_consume(n->wake) == 0) {
                continue;
            }
            n->handler_fn(n->opaque);
            leave_if_forked(gen);
            if (__atomic_load_n(&n->self_destroy, __ATOMIC_SEQ_CST)) {
                notify_free(n);
                return NULL;
            }
        }
    }
    return NULL;
}

static AppleDextInterruptNotify *notify_new(io_connect_t connection,
                                            void (*handler_fn)(void *opaque),
                                            void *opaque, bool threaded)
{
    AppleDextInterruptNotify *n;
    DextConnection *c;
    IOReturn ret;

    c = dext_conn_enter(connection, &ret);
    if (c == NULL) {
        return NULL;
    }
    n = calloc(1, sizeof(*n));
    if (n == NULL) {
        dext_conn_leave(c);
        return NULL;
    }
    dext_conn_ref(c);
    n->conn = c;
    n->handler_fn = handler_fn;
    n->opaque = opaque;
    n->stop_pipe[0] = n->stop_pipe[1] = -1;
    n->self_destroy = false;
    ret = c->t->ops->wake_create(c->t, &n->wake);
    dext_conn_leave(c);
    if (ret != kIOReturnSuccess) {
        n->wake = NULL;
        goto fail;
    }
    ret = notify_arm(n);
    if (ret != kIOReturnSuccess) {
        dext_log(DEXT_LOG_INFO, "cannot arm notification: %s",
                 apple_dext_strerror(ret));
        goto fail;
    }
    if (threaded) {
        if (pipe_cloexec(n->stop_pipe) < 0) {
            n->stop_pipe[0] = n->stop_pipe[1] = -1;
            goto fail;
        }
        if (pthread_create(&n->thread, NULL, notify_thread, n) != 0) {
            goto fail;
        }
        n->threaded = true;
    }
    return n;

fail:
    notify_free(n);
    return NULL;
}

AppleDextInterruptNotify *
apple_dext_interrupt_notify_create(io_connect_t connection,
                                   void (*handler_fn)(void *opaque),
                                   void *opaque)
{
    if (handler_fn == NULL) {
        return NULL;
    }
    return notify_new(connection, handler_fn, opaque, true);
}

AppleDextInterruptNotify *
apple_dext_interrupt_notify_create_fd(io_connect_t connection)
{
    return notify_new(connection, NULL, NULL, false);
}

int apple_dext_interrupt_notify_get_fd(AppleDextInterruptNotify *notify)
{
    if (notify == NULL || notify->threaded) {
        return -1;
    }
    return notify->wake->fd;
}

kern_return_t apple_dext_interrupt_notify_rearm(AppleDextInterruptNotify *notify)
{
    if (notify == NULL) {
        return kIOReturnBadArgument;
    }
    return notify_arm(notify);
}

void apple_dext_interrupt_notify_destroy(AppleDextInterruptNotify *notify)
{
    if (notify == NULL) {
        return;
    }
    if (notify->threaded) {
        if (dext_forked_since(notify->conn->fork_gen)) {
            /*
             * A forked child's copy: the thread is the parent's and not
             * in this process.  A byte in the stop pipe, which the parent
             * reads too, would stop the parent's thread, and a join would
             * wait forever.  Only this process's copies go.
             */
            notify_free(notify);
            return;
        }
        if (pthread_equal(pthread_self(), notify->thread)) {
            /* From the handler: the thread frees us when it returns. */
            pthread_detach(notify->thread);
            __atomic_store_n(&notify->self_destroy, true, __ATOMIC_SEQ_CST);
            return;
        }
        if (write(notify->stop_pipe[1], "x", 1) < 0) {
            /* cannot fail on a fresh pipe with room; join regardless */
        }
        pthread_join(notify->thread, NULL);
    }
    notify_free(notify);
}
