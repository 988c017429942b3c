/*
 * SPDX-License-Identifier: MIT
 *
 * A C++ program calling libdext: the header's extern "C" block must give
 * the functions C linkage, or this fails to link.
 */

#include <cstdio>
#include <cstring>

#include <apple-dext-client.h>

int main()
{
    io_connect_t c = IO_OBJECT_NULL;
    const char *s = apple_dext_strerror(kIOReturnBadArgument);

    if (std::strstr(s, "BadArgument") == nullptr ||
        apple_dext_claim(c) != kIOReturnBadArgument) {
        std::printf("0 passed, 1 failed\n");
        return 1;
    }
    std::printf("libdext %s from C++: 1 passed, 0 failed\n",
                LIBDEXT_VERSION_STRING);
    return 0;
}
