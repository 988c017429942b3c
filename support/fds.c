/*
 * SPDX-License-Identifier: MIT
 *
 * dext_close_fds(): see support/fds.h.
 */

#include <unistd.h>

#include "support/fds.h"

void dext_close_fds(const int *fds, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        close(fds[i]);
    }
}
