/*
 * SPDX-License-Identifier: MIT
 *
 * Fuzz target: the client's reply decoders as a hostile (or broken)
 * daemon feeds them.  The first byte picks the request the client is
 * waiting on, the rest is the reply message, header included.  Decoded
 * counts must stay inside the arrays the client copies them into, and
 * whatever decodes must encode back to the same bytes.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/dext-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[DEXT_WIRE_MAX_MSG];

static void same_or_die(const char *what, int n, const uint8_t *payload,
                        size_t len)
{
    if (n < DEXT_WIRE_HEADER_SIZE ||
        (size_t)n - DEXT_WIRE_HEADER_SIZE != len ||
        memcmp(out + DEXT_WIRE_HEADER_SIZE, payload, len) != 0) {
        fprintf(stderr, "%s: decoded reply does not re-encode to the "
                "same bytes (%d vs %zu)\n", what, n, len);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    DextWireHeader h;
    const uint8_t *pl;
    DextWireHelloReply hello;
    DextWireListReply list;
    DextWireOpenReply open;
    DextWireCallReply call;
    DextWireWakeReply wake;
    DextWireMapReply map;
    DextWireStatusReply st;
    IOReturn status;
    uint8_t want;
    int n;

    if (size < 1) {
        return 0;
    }
    want = data[0];
    data++;
    size--;
    if (dext_wire_decode_header(data, size, &h) != 0) {
        return 0;
    }
    pl = data + DEXT_WIRE_HEADER_SIZE;
    switch (want % 9) {
    case 0:
        if (dext_wire_decode_hello_reply(pl, h.length, &hello) == 0) {
            n = dext_wire_encode_hello_reply(out, sizeof(out), h.seq, &hello);
            same_or_die("HELLO reply", n, pl, h.length);
        }
        break;
    case 1:
        if (dext_wire_decode_list_reply(pl, h.length, &list) == 0) {
            if (list.count > DEXT_MAX_SERVICES || list.count > list.total) {
                abort();
            }
            n = dext_wire_encode_list_reply(out, sizeof(out), h.version,
                                            h.seq, &list);
            same_or_die("LIST reply", n, pl, h.length);
        }
        break;
    case 2:
        if (dext_wire_decode_open_reply(pl, h.length, &open) == 0) {
            n = dext_wire_encode_open_reply(out, sizeof(out), h.version,
                                            h.seq, &open);
            same_or_die("OPEN reply", n, pl, h.length);
        }
        break;
    case 3:
        if (dext_wire_decode_call_reply(pl, h.length, &call) == 0) {
            if (call.scalar_out_cnt > DEXT_MAX_SCALARS ||
                call.struct_out_len > DEXT_MAX_STRUCT ||
                (call.struct_out_len > 0 &&
                 (call.struct_out < pl ||
                  call.struct_out + call.struct_out_len > pl + h.length))) {
                abort();
            }
            n = dext_wire_encode_call_reply(out, sizeof(out), h.version,
                                            h.seq,
                                            h.type == DEXT_WIRE_CALL_ASYNC,
                                            &call);
            same_or_die("CALL reply", n, pl, h.length);
        }
        break;
    case 4:
        if (dext_wire_decode_wake_reply(pl, h.length, &wake) == 0) {
            n = dext_wire_encode_wake_reply(out, sizeof(out), h.version,
                                            h.seq, &wake);
            same_or_die("WAKE reply", n, pl, h.length);
        }
        break;
    case 5:
        if (dext_wire_decode_map_reply(pl, h.length, &map) == 0) {
            n = dext_wire_encode_map_reply(out, sizeof(out), h.version,
                                           h.seq, &map);
            same_or_die("MAP reply", n, pl, h.length);
        }
        break;
    case 6:
        if (dext_wire_decode_status_reply(pl, h.length, &st) == 0) {
            n = dext_wire_encode_status_reply(out, sizeof(out), h.version,
                                              h.seq, &st);
            same_or_die("STATUS reply", n, pl, h.length);
        }
        break;
    default:
        (void)dext_wire_decode_status_only(pl, h.length, &status);
        (void)dext_wire_decode_empty(pl, h.length);
        break;
    }
    return 0;
}
