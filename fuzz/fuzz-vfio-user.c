/*
 * SPDX-License-Identifier: MIT
 *
 * Fuzz target: dext-vfio-user's message handling (vfu_handle()), which
 * reads whatever a VMM sends.  A session on edu of an in-process dext
 * ("inproc:edu") is opened per input and handshaken with a valid
 * VERSION; the input is then a sequence of messages, each
 *
 *   u8 fds      bit 0: a memfd (64 KiB) beside it, bits 1 and 2: an
 *               eventfd each
 *   u16 length  of what follows, at most the rest of the input
 *   bytes       the message, header first (its size field is the
 *               fuzzer's: vfu_handle() must check it)
 *
 * A message the server would close the connection for ends the input.
 * Invariants (abort() = a finding): a reply never exceeds the largest
 * message; an error reply has no payload and keeps no fds; closing the
 * session leaves no fd open (the count is compared with the input's
 * start, allowing libFuzzer's threads a moment with a file open).
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vfu-server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    if (d == NULL) {
        return -1;
    }
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

static void version(VfuSession *s, VfuReply *rep)
{
    static const char caps[] = "{\"capabilities\":{\"max_msg_fds\":8}}";
    uint8_t msg[VFU_HDR_SIZE + 4 + sizeof(caps)] = { 0 };
    VfuHeader h = { .msg_id = 1, .command = VFU_CMD_VERSION,
                    .size = sizeof(msg) };

    memcpy(msg, &h, sizeof(h));
    memcpy(msg + VFU_HDR_SIZE + 4, caps, sizeof(caps));
    if (vfu_handle(s, msg, sizeof(msg), NULL, 0, rep) != 0 || rep->err) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *payload, *msg;
    static bool warm;
    int baseline;
    VfuSession s = { .target = "inproc:edu", .bus = 0, .dev = 3, .fn = 0 };
    VfuReply rep;
    size_t pos = 0;

    if (payload == NULL) {
        payload = malloc(VFU_MAX_MSG_SIZE);
        msg = malloc(1 << 16);
        if (payload == NULL || msg == NULL) {
            abort();
        }
    }
    rep.payload = payload;
    if (!warm) {
        /* The first session makes what stays (the in-process core). */
        if (vfu_session_open(&s) != 0) {
            abort();
        }
        vfu_session_close(&s);
        warm = true;
    }
    /* Counted per input: libFuzzer opens files between inputs. */
    baseline = count_fds();
    if (vfu_session_open(&s) != 0) {
        abort();
    }
    version(&s, &rep);
    while (size - pos >= 3) {
        uint8_t how = data[pos];
        size_t len = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;
        int fds[3];
        unsigned nfds = 0;
        int r;

        pos += 3;
        if (len > size - pos) {
            len = size - pos;
        }
        memcpy(msg, data + pos, len);
        pos += len;
        if (how & 1) {
            int fd = memfd_create("fuzz-ram", MFD_CLOEXEC);

            if (fd >= 0 && ftruncate(fd, 1 << 16) == 0) {
                fds[nfds++] = fd;
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (unsigned bit = 2; bit <= 4; bit <<= 1) {
            if (how & bit) {
                int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

                if (fd >= 0) {
                    fds[nfds++] = fd;
                }
            }
        }
        r = vfu_handle(&s, msg, len, fds, nfds, &rep);
        if (r < 0) {
            break;
        }
        if (rep.len > VFU_MAX_MSG_SIZE - VFU_HDR_SIZE ||
            (rep.err != 0 && (rep.len != 0 || rep.nfds != 0))) {
            abort();
        }
        while (rep.nfds > 0) {
            close(rep.fds[--rep.nfds]);
        }
        if (s.notify != NULL) {
            vfu_irq_deliver(&s);
        }
    }
    vfu_session_close(&s);
    /* libFuzzer's own threads open files for a moment: look again. */
    for (int i = 0; count_fds() != baseline; i++) {
        if (i == 1000) {
            abort();
        }
        usleep(1000);
    }
    return 0;
}
