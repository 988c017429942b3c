/*
 * SPDX-License-Identifier: MIT
 *
 * Fuzz target: the dump backend's parser of lspci hex dumps
 * (backends/dump.c), which reads files a user was handed.  The input is
 * the file.  Each input is parsed twice, once taking the only device and
 * once picking 00:01.0.
 *
 * Invariants checked (abort() = a finding): a success gives at least the
 * 64-byte header and no more than 4096 bytes; a failure on a line names
 * a line that exists.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static DextDump dump;
    static const char *const picks[] = { NULL, "00:01.0" };
    size_t lines = 1;

    for (size_t i = 0; i < size; i++) {
        lines += data[i] == '\n';
    }
    for (size_t i = 0; i < sizeof(picks) / sizeof(picks[0]); i++) {
        uint32_t bad = 0;
        IOReturn ret = dext_dump_parse((const char *)data, size, picks[i],
                                       &dump, &bad);

        if (ret == kIOReturnSuccess &&
            (dump.len < 64 || dump.len > DEXT_CONFIG_SIZE_EXT)) {
            abort();
        }
        if (bad > lines) {
            abort();
        }
    }
    return 0;
}
