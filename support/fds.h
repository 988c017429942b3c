/*
 * SPDX-License-Identifier: MIT
 *
 * File descriptors received in bulk (SCM_RIGHTS): closing the ones
 * nobody takes, for the unix transport and dextd alike.
 */

#ifndef LIBDEXT_SUPPORT_FDS_H
#define LIBDEXT_SUPPORT_FDS_H

/**
 * dext_close_fds() - close every fd of a list
 * @fds: the fds; may be NULL when @n is 0
 * @n: how many; 0 or less closes nothing
 *
 * Errors of close() are ignored: the fds were never used.
 *
 * Return: nothing.
 */
void dext_close_fds(const int *fds, int n);

#endif /* LIBDEXT_SUPPORT_FDS_H */
