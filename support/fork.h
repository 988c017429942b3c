/*
 * SPDX-License-Identifier: MIT
 *
 * fork() generations: is this process a forked child of the one that
 * set something up?  A child inherits its parent's memory and file
 * descriptors, but what they stand for (a dextd session and its
 * channels, a polled ring, a user client, an in-process core and its
 * threads) stays its parent's, who goes on using it.
 *
 * A pthread_atfork() child handler, installed as the library loads,
 * counts the forks; a raw clone() or vfork() is not counted.
 */

#ifndef LIBDEXT_SUPPORT_FORK_H
#define LIBDEXT_SUPPORT_FORK_H

#include <stdbool.h>

/* The count itself: read it through the functions below. */
extern unsigned dext_fork_count;

/**
 * dext_fork_generation() - how many fork()s this process is from the one
 * that loaded the library
 *
 * Record it when setting something up, and ask dext_forked_since() when
 * using it.
 *
 * Return: the generation.
 */
static inline unsigned dext_fork_generation(void)
{
    return __atomic_load_n(&dext_fork_count, __ATOMIC_RELAXED);
}

/**
 * dext_forked_since() - is this a forked child of the process that
 * recorded @gen?
 * @gen: a dext_fork_generation() of the process that set something up
 *
 * One relaxed load and a compare, no system call: cheap enough for
 * every call's path.  Only the forking thread runs in a child, and the
 * count changes before it returns from fork(), so no thread of a
 * process ever sees the count change under it.
 *
 * Return: true in a forked child (or grandchild...) of that process.
 */
static inline bool dext_forked_since(unsigned gen)
{
    return dext_fork_generation() != gen;
}

#endif /* LIBDEXT_SUPPORT_FORK_H */
