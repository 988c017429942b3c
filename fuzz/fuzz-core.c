/*
 * SPDX-License-Identifier: MIT
 *
 * Fuzz target: the dext core as a hostile client reaches it through
 * dextd.  The input is a script of operations on a core serving one
 * emulated edu device: open and close up to three sessions, send CALL
 * and CALL_ASYNC payloads (decoded by the wire codec first, exactly as
 * dextd does, so any selector, scalar count, scalar value and struct
 * bytes get through), and map any memory type.
 *
 * Invariants checked (abort() = a finding):
 *  - no reply claims more scalar outputs or struct bytes than asked for;
 *  - the counters agree with the sessions this script holds;
 *  - closing every session leaves nothing behind (claims, regions, DMA
 *    buffers, interrupt state).
 *
 * Client memory is this process.  A real hostile client can only point
 * the device at its own memory, so RegisterDMARegion addresses are
 * folded into a private arena: otherwise the device model would DMA into
 * the fuzzer itself, which no client of dextd can make it do.
 */

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/dext-core.h"
#include "protocol/dext-wire.h"
#include "fuzz/fuzz-script.h"

#define MAX_SESSIONS 3
#define ARENA_SIZE   (256 * 1024)
#define MAX_OPS      64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *arena;

static void do_call(DextSession *sess, const uint8_t *payload, size_t len,
                    bool async, int wake_fd)
{
    DextWireCall c;
    uint64_t out[DEXT_MAX_SCALARS];
    uint8_t sout[DEXT_MAX_STRUCT];
    uint32_t nout;
    size_t sout_len;
    DextCallArgs a;

    if (dext_wire_decode_call(payload, len, async, &c) != 0) {
        return;
    }
    fuzz_fold_into_arena(&c, arena, ARENA_SIZE);
    nout = c.scalar_out_cap;
    sout_len = c.struct_out_cap;
    a = (DextCallArgs) {
        .scalar_in = c.scalar_in,
        .scalar_in_cnt = c.scalar_in_cnt,
        .struct_in = c.struct_in,
        .struct_in_size = c.struct_in_len,
        .scalar_out = out,
        .scalar_out_cnt = &nout,
        .struct_out = sout,
        .struct_out_size = &sout_len,
    };
    if (async) {
        dext_session_call_async(sess, c.selector, wake_fd, &a);
    } else {
        dext_session_call(sess, c.selector, &a);
    }
    if (nout > c.scalar_out_cap || sout_len > c.struct_out_cap) {
        fprintf(stderr, "selector %u: reply overflows the caller's room\n",
                c.selector);
        abort();
    }
}

static void check_stats(DextCore *core, uint32_t sessions)
{
    DextCoreStats st;

    dext_core_stats(core, &st);
    if (st.sessions != sessions || st.claims > sessions ||
        st.irq_sessions > sessions || st.dma_buffers > sessions) {
        fprintf(stderr, "counters disagree: sessions %u/%u claims %u "
                "irq %u buffers %u\n", st.sessions, sessions, st.claims,
                st.irq_sessions, st.dma_buffers);
        abort();
    }
    if (sessions == 0 && (st.dma_regions != 0 || st.dma_region_bytes != 0)) {
        fprintf(stderr, "leaked %u DMA regions\n", st.dma_regions);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzScript s = { data, size };
    DextSession *sess[MAX_SESSIONS] = { NULL };
    DextCore *core;
    DextDevice *dev;
    uint64_t id;
    int wake[2];
    int op, i, nops = 0;
    uint32_t open_count = 0;

    if (arena == NULL) {
        arena = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (arena == MAP_FAILED) {
            abort();
        }
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   wake) < 0) {
        abort();
    }
    core = dext_core_new(NULL, NULL);
    if (core == NULL || dext_device_create("edu", &dev) != kIOReturnSuccess ||
        dext_core_add_device(core, dev, &id) != kIOReturnSuccess) {
        abort();
    }

    while ((op = fuzz_take_u8(&s)) >= 0 && nops++ < MAX_OPS) {
        int idx = fuzz_take_u8(&s);
        const uint8_t *blob;
        size_t len;
        DextMemory mem;

        if (idx < 0) {
            break;
        }
        idx %= MAX_SESSIONS;
        switch (op % 8) {
        case 0:     /* open; type 0 mostly, anything sometimes */
            if (sess[idx] == NULL) {
                uint32_t type = (op & 0x80) ? (uint32_t)op : 0;

                if (dext_core_open(core, (op & 0x40) ? id ^ op : id, type,
                                   getpid(), -1, &sess[idx]) !=
                    kIOReturnSuccess) {
                    sess[idx] = NULL;
                } else {
                    open_count++;
                }
            }
            break;
        case 1:     /* close */
            if (sess[idx] != NULL) {
                dext_session_close(sess[idx]);
                sess[idx] = NULL;
                open_count--;
            }
            break;
        case 2:
        case 3:
        case 4:     /* CALL */
            blob = fuzz_take_blob(&s, &len);
            if (blob != NULL && sess[idx] != NULL) {
                do_call(sess[idx], blob, len, false, -1);
            }
            break;
        case 5:     /* CALL_ASYNC with a wake port */
            blob = fuzz_take_blob(&s, &len);
            if (blob != NULL && sess[idx] != NULL) {
                do_call(sess[idx], blob, len, true, wake[0]);
            }
            break;
        case 6:     /* map any memory type */
            if (sess[idx] != NULL &&
                dext_session_map(sess[idx], (uint32_t)(op >> 3),
                                 &mem) == kIOReturnSuccess && mem.fd >= 0) {
                close(mem.fd);
            }
            break;
        default:    /* drain the wake port */
            {
                char buf[64];

                while (recv(wake[1], buf, sizeof(buf), MSG_DONTWAIT) > 0) {
                }
            }
            break;
        }
        check_stats(core, open_count);
    }

    for (i = 0; i < MAX_SESSIONS; i++) {
        if (sess[i] != NULL) {
            dext_session_close(sess[i]);
        }
    }
    check_stats(core, 0);
    {
        DextCoreStats st;

        dext_core_stats(core, &st);
        if (st.claims || st.dma_buffers || st.irq_sessions) {
            fprintf(stderr, "state left after every session closed\n");
            abort();
        }
    }
    dext_core_free(core);
    close(wake[0]);
    close(wake[1]);
    return 0;
}
