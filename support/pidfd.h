/*
 * SPDX-License-Identifier: MIT
 *
 * pidfds: how the core and dextd tell a live process from one whose pid
 * the kernel may already have handed to someone else.
 */

#ifndef LIBDEXT_SUPPORT_PIDFD_H
#define LIBDEXT_SUPPORT_PIDFD_H

#include <stdbool.h>

/**
 * dext_pidfd_alive() - has the process behind @pidfd not exited yet?
 * @pidfd: a pidfd, or -1
 *
 * A pidfd polls readable once its process has exited; this never blocks.
 *
 * Return: true while the process lives; false once it has exited, for -1,
 * and for anything poll() refuses.
 */
bool dext_pidfd_alive(int pidfd);

#endif /* LIBDEXT_SUPPORT_PIDFD_H */
