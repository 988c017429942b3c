/*
 * SPDX-License-Identifier: MIT
 *
 * The width of the config writes dext-vfio-user makes for a client's
 * REGION_WRITE: what the device sees is what the guest wrote.  None of
 * the emulated devices can tell a dword write from four byte writes, so
 * the server's handler (vfu_region_write(), linked in) runs against
 * inproc:edu with apple_dext_config_write() wrapped (-Wl,--wrap): the
 * wrapper records each call's offset, width and value, then makes it.
 *
 * Expected: each run of pass-through bytes goes as naturally aligned
 * pieces of at most 4 bytes; the BAR and ROM dwords (virtualised by the
 * server) and the interrupt pin (read-only, no INTx) are never written.
 */

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "vfu-server.h"

#define MAX_SEEN 32

typedef struct SeenWrite {
    uint64_t off, width, value;
} SeenWrite;

static SeenWrite seen[MAX_SEEN];
static unsigned nseen;

kern_return_t __real_apple_dext_config_write(io_connect_t connection,
                                             uint64_t offset, uint64_t width,
                                             uint64_t value);
kern_return_t __wrap_apple_dext_config_write(io_connect_t connection,
                                             uint64_t offset, uint64_t width,
                                             uint64_t value);

kern_return_t __wrap_apple_dext_config_write(io_connect_t connection,
                                             uint64_t offset, uint64_t width,
                                             uint64_t value)
{
    if (nseen < MAX_SEEN) {
        seen[nseen++] = (SeenWrite){ offset, width, value };
    }
    return __real_apple_dext_config_write(connection, offset, width, value);
}

/* A REGION_WRITE of @len bytes of @data at config offset @off: its errno. */
static int config_region_write(VfuSession *s, uint64_t off, const void *data,
                               uint32_t len)
{
    static uint8_t out[VFU_MAX_MSG_SIZE];
    uint8_t msg[sizeof(VfuRegionAccess) + 16];
    VfuRegionAccess ra = { .offset = off, .region = VFU_PCI_CONFIG,
                           .count = len };
    VfuReply rep = { .payload = out };

    memcpy(msg, &ra, sizeof(ra));
    memcpy(msg + sizeof(ra), data, len);
    nseen = 0;
    if (vfu_region_write(s, msg, sizeof(ra) + len, &rep) != 0) {
        return -1;
    }
    return rep.err;
}

/* Check that the last REGION_WRITE made exactly the @n writes @want. */
static void expect(const char *what, const SeenWrite *want, unsigned n)
{
    unsigned i;

    harness_section("%s", what);
    if (!CHECK_MSG(nseen == n, "%u config writes, want %u", nseen, n)) {
        for (i = 0; i < nseen; i++) {
            printf("#   made: offset 0x%llx width %llu value 0x%llx\n",
                   (unsigned long long)seen[i].off,
                   (unsigned long long)seen[i].width,
                   (unsigned long long)seen[i].value);
        }
        return;
    }
    for (i = 0; i < n; i++) {
        CHECK_EQ(seen[i].off, want[i].off);
        CHECK_EQ(seen[i].width, want[i].width);
        CHECK_EQ(seen[i].value, want[i].value);
    }
}

/* Config dword @off as the device has it. */
static uint32_t dev_dword(VfuSession *s, uint64_t off)
{
    uint64_t v = 0;

    CHECK_KR(apple_dext_config_read(s->conn, off, 4, &v), kIOReturnSuccess);
    return (uint32_t)v;
}

int main(void)
{
    VfuSession s = { .target = "inproc:edu", .bus = 0, .dev = 3, .fn = 0 };
    uint8_t b[16];
    uint32_t cmd, cap, line, subsys;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!CHECK_EQ(vfu_session_open(&s), 0)) {
        return harness_finish();
    }
    /* Values the device already holds: writing them back changes none. */
    cmd = dev_dword(&s, 0x04) & 0xffff;
    cap = dev_dword(&s, 0x40);
    line = dev_dword(&s, 0x3c);
    subsys = dev_dword(&s, 0x2c);

    memcpy(b, &cmd, 4);
    CHECK_EQ(config_region_write(&s, 0x04, b, 4), 0);
    expect("a dword write to command/status is one dword write",
           (SeenWrite[]){ { 0x04, 4, cmd } }, 1);

    CHECK_EQ(config_region_write(&s, 0x04, b, 2), 0);
    expect("a word write to command is one word write",
           (SeenWrite[]){ { 0x04, 2, cmd } }, 1);

    memcpy(b, &cap, 4);
    memcpy(b + 4, &cap, 4);
    CHECK_EQ(config_region_write(&s, 0x40, b, 8), 0);
    expect("8 bytes at 0x40: two dword writes",
           (SeenWrite[]){ { 0x40, 4, cap }, { 0x44, 4, cap } }, 2);

    CHECK_EQ(config_region_write(&s, 0x41, b, 3), 0);
    expect("3 bytes at 0x41: a byte, then an aligned word",
           (SeenWrite[]){ { 0x41, 1, b[0] },
                          { 0x42, 2, (uint32_t)b[1] | (uint32_t)b[2] << 8 } },
           2);

    memcpy(b, &line, 4);
    b[1] = 0x7f;                /* the pin: read-only, never written */
    CHECK_EQ(config_region_write(&s, 0x3c, b, 4), 0);
    expect("a dword write at 0x3c: the line byte and the word after the pin",
           (SeenWrite[]){ { 0x3c, 1, line & 0xff },
                          { 0x3e, 2, line >> 16 } }, 2);

    memset(b, 0xff, 8);
    CHECK_EQ(config_region_write(&s, 0x10, b, 4), 0);
    expect("BAR0 is the server's: no device write", NULL, 0);

    memcpy(b, &subsys, 4);
    memset(b + 4, 0, 4);
    CHECK_EQ(config_region_write(&s, 0x2c, b, 8), 0);
    expect("8 bytes at 0x2c: one dword, then the ROM's (the server's)",
           (SeenWrite[]){ { 0x2c, 4, subsys } }, 1);

    vfu_session_close(&s);
    return harness_finish();
}
