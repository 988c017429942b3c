/*
 * SPDX-License-Identifier: MIT
 *
 * Where dextd listens by default: shared by dextd and the unix transport,
 * and the one piece of the protocol the library needs on every platform
 * (apple_dext_default_socket_path()), so it stands alone.
 */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "protocol/dext-wire.h"

const char *dext_wire_default_socket_path(void)
{
    /* Per thread, so concurrent callers never see each other's writes. */
    static __thread char path[256];
    const char *env = getenv("DEXT_SOCKET");

    if (env != NULL && env[0] != '\0') {
        return env;
    }
    if (geteuid() == 0) {
        return "/run/dextd.sock";
    }
    env = getenv("XDG_RUNTIME_DIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(path, sizeof(path), "%s/dextd.sock", env);
    } else {
        snprintf(path, sizeof(path), "/tmp/dextd-%u.sock",
                 (unsigned)geteuid());
    }
    return path;
}
