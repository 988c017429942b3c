/*
 * SPDX-License-Identifier: MIT
 *
 * send() and recv() of one message on a call's path, as direct system
 * calls.  glibc makes send() and recv() cancellation points: in a
 * process with more than one thread (dextd always, a client often)
 * each call brackets the system call with two atomic updates of the
 * thread's cancellation state, a measurable part of a round trip
 * (docs/performance.md).  Neither libdext nor dextd wants those calls
 * to be cancellation points anyway: a thread cancelled between sending
 * a request and reading its reply would leave a channel out of step.
 */

#ifndef LIBDEXT_SUPPORT_SOCK_IO_H
#define LIBDEXT_SUPPORT_SOCK_IO_H

#include <errno.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/**
 * dext_sock_send() - send(2) that is no cancellation point
 * @fd: the socket
 * @buf: the message
 * @len: its length
 * @flags: send(2)'s flags
 *
 * Retried on EINTR.
 *
 * Return: as send(2).
 */
static inline ssize_t dext_sock_send(int fd, const void *buf, size_t len,
                                     int flags)
{
    ssize_t n;

    do {
#ifdef SYS_sendto
        n = syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
#else
        n = send(fd, buf, len, flags);
#endif
    } while (n < 0 && errno == EINTR);
    return n;
}

/**
 * dext_sock_recv() - recv(2) that is no cancellation point
 * @fd: the socket
 * @buf: where the message goes
 * @cap: room in @buf
 * @flags: recv(2)'s flags
 *
 * Retried on EINTR.
 *
 * Return: as recv(2).
 */
static inline ssize_t dext_sock_recv(int fd, void *buf, size_t cap,
                                     int flags)
{
    ssize_t n;

    do {
#ifdef SYS_recvfrom
        n = syscall(SYS_recvfrom, fd, buf, cap, flags, NULL, NULL);
#else
        n = recv(fd, buf, cap, flags);
#endif
    } while (n < 0 && errno == EINTR);
    return n;
}

#endif /* LIBDEXT_SUPPORT_SOCK_IO_H */
