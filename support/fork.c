/*
 * SPDX-License-Identifier: MIT
 *
 * The fork generation count (support/fork.h).
 */

#include <pthread.h>

#include "support/fork.h"

unsigned dext_fork_count;

static void count_fork(void)
{
    __atomic_fetch_add(&dext_fork_count, 1, __ATOMIC_RELAXED);
}

/* As the library loads, before anything can be set up to compare with. */
__attribute__((constructor)) static void watch_forks(void)
{
    (void)pthread_atfork(NULL, NULL, count_fork);
}
