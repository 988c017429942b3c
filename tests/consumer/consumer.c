/*
 * SPDX-License-Identifier: MIT
 *
 * A program of another project using libdext, built by the consumer
 * tests against an installed libdext (pkg-config) and against libdext as
 * a meson subproject.  Checks the headers' version against the one it
 * was told to expect, then talks to edu on $DEXT_TARGET.
 *
 *   consumer [EXPECTED_VERSION]
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <apple-dext-client.h>

int main(int argc, char **argv)
{
    io_connect_t c = IO_OBJECT_NULL;
    uint8_t mem_idx = 0;
    uint64_t id = 0;
    kern_return_t kr;

    if (argc > 1 && strcmp(argv[1], LIBDEXT_VERSION_STRING) != 0) {
        printf("consumer: headers say libdext %s, expected %s\n",
               LIBDEXT_VERSION_STRING, argv[1]);
        return 1;
    }
    kr = apple_dext_connect_target(NULL, 0x00, 0x03, 0x0, &c);
    if (kr == kIOReturnSuccess) {
        kr = apple_dext_claim(c);
    }
    if (kr == kIOReturnSuccess) {
        kr = apple_dext_get_bar_info(c, 0, &mem_idx, NULL, NULL);
    }
    if (kr == kIOReturnSuccess) {
        kr = apple_dext_mmio_read(c, mem_idx, 0x00, 4, &id);
    }
    apple_dext_disconnect(c);
    if (kr != kIOReturnSuccess || id != 0x010000ed) {
        printf("consumer: %s, id 0x%08" PRIx64 "\n", apple_dext_strerror(kr),
               id);
        return 1;
    }
    printf("consumer: libdext %s on %s: edu id 0x%08" PRIx64 "\n",
           LIBDEXT_VERSION_STRING, apple_dext_default_target(), id);
    return 0;
}
