/*
 * SPDX-License-Identifier: MIT
 *
 * Fuzz target: the wire decoder as dextd runs it on what a hostile
 * client sends.  The input is one whole message, header included; it is
 * decoded the way dextd dispatches it (header, then the payload by
 * type).  Whatever decodes must encode back to the same bytes: a decoder
 * that accepts two spellings of one request, or loses a field, is a
 * finding (abort()).
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
        fprintf(stderr, "%s: decoded request does not re-encode to the "
                "same bytes (%d vs %zu)\n", what, n, len);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    DextWireHeader h;
    const uint8_t *pl;
    DextWireHello hello;
    DextWireOpen open;
    DextWireAttach attach;
    DextWireCall call;
    DextWireMap map;
    uint32_t port;
    int n;

    /* Whatever else happens, peeking the sequence never reads past @size. */
    (void)dext_wire_peek_seq(data, size);
    if (dext_wire_decode_header(data, size, &h) != 0) {
        return 0;
    }
    (void)dext_wire_type_name(h.type);
    pl = data + DEXT_WIRE_HEADER_SIZE;
    switch (h.type) {
    case DEXT_WIRE_HELLO:
        if (dext_wire_decode_hello(pl, h.length, &hello) == 0) {
            uint16_t v = dext_wire_choose_version(&hello);

            if (v != 0 && (v < hello.min_version || v > hello.max_version)) {
                abort();
            }
            n = dext_wire_encode_hello(out, sizeof(out), h.seq, &hello);
            same_or_die("HELLO", n, pl, h.length);
        }
        break;
    case DEXT_WIRE_LIST:
    case DEXT_WIRE_STATUS:
        (void)dext_wire_decode_empty(pl, h.length);
        break;
    case DEXT_WIRE_OPEN:
        if (dext_wire_decode_open(pl, h.length, &open) == 0) {
            n = dext_wire_encode_open(out, sizeof(out), h.version, h.seq,
                                      &open);
            same_or_die("OPEN", n, pl, h.length);
        }
        break;
    case DEXT_WIRE_ATTACH:
        if (dext_wire_decode_attach(pl, h.length, &attach) == 0) {
            n = dext_wire_encode_attach(out, sizeof(out), h.version, h.seq,
                                        &attach);
            same_or_die("ATTACH", n, pl, h.length);
        }
        break;
    case DEXT_WIRE_CALL:
    case DEXT_WIRE_CALL_ASYNC:
        if (dext_wire_decode_call(pl, h.length,
                                  h.type == DEXT_WIRE_CALL_ASYNC,
                                  &call) == 0) {
            /* The struct must lie inside the message it came in. */
            if (call.struct_in_len > 0 &&
                (call.struct_in < pl ||
                 call.struct_in + call.struct_in_len > pl + h.length)) {
                abort();
            }
            n = dext_wire_encode_call(out, sizeof(out), h.version, h.seq,
                                      h.type == DEXT_WIRE_CALL_ASYNC, &call);
            same_or_die("CALL", n, pl, h.length);
        }
        break;
    case DEXT_WIRE_WAKE_REGISTER:
        (void)dext_wire_decode_empty(pl, h.length);
        break;
    case DEXT_WIRE_WAKE_UNREGISTER:
        if (dext_wire_decode_wake_unregister(pl, h.length, &port) == 0) {
            n = dext_wire_encode_wake_unregister(out, sizeof(out), h.version,
                                                 h.seq, port);
            same_or_die("WAKE_UNREGISTER", n, pl, h.length);
        }
        break;
    case DEXT_WIRE_MAP:
        if (dext_wire_decode_map(pl, h.length, &map) == 0) {
            n = dext_wire_encode_map(out, sizeof(out), h.version, h.seq,
                                     &map);
            same_or_die("MAP", n, pl, h.length);
        }
        break;
    default:
        break;
    }
    return 0;
}
