/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests of the dextd wire codec: every message round-trips, and
 * every kind of malformed input is rejected without reading past the
 * buffer (decoders are fed exact-size heap copies, so ASan or valgrind
 * catch any over-read).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/dext-wire.h"

#include "check.h"

static uint8_t msg[DEXT_WIRE_MAX_MSG + 64];

/* An exact-size heap copy, so reading past @len is caught. */
static uint8_t *dup_bytes(const uint8_t *src, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);

    if (p == NULL) {
        abort();
    }
    if (len) {
        memcpy(p, src, len);
    }
    return p;
}

/* Decode the header of @len bytes in msg from an exact copy. */
static int header_of(size_t len, DextWireHeader *h)
{
    uint8_t *p = dup_bytes(msg, len);
    int rc = dext_wire_decode_header(p, len, h);

    free(p);
    return rc;
}

/*
 * Every proper prefix and one extra byte must fail the header check,
 * and the whole message must pass with the given type and flags.
 */
static void check_framing(int len, uint16_t type, bool reply,
                          DextWireHeader *h)
{
    DextWireHeader tmp;
    size_t i;

    CHECK(len >= DEXT_WIRE_HEADER_SIZE);
    CHECK(header_of((size_t)len, h) == 0);
    CHECK(h->magic == DEXT_WIRE_MAGIC);
    CHECK(h->type == type);
    CHECK(!!(h->flags & DEXT_WIRE_FLAG_REPLY) == reply);
    CHECK(h->length == (uint32_t)len - DEXT_WIRE_HEADER_SIZE);
    for (i = 0; i < (size_t)len; i++) {
        CHECK(header_of(i, &tmp) != 0);
    }
    msg[len] = 0;
    CHECK(header_of((size_t)len + 1, &tmp) == DEXT_WIRE_ELENGTH);
}

/* The payload decoder must refuse every truncation and any extra byte. */
typedef int PayloadDecoder(const uint8_t *buf, size_t len, void *out);

static void check_payload_strict(const uint8_t *payload, size_t plen,
                                 PayloadDecoder *dec, void *out)
{
    uint8_t *p;
    size_t i;

    for (i = 0; i < plen; i++) {
        p = dup_bytes(payload, i);
        CHECK(dec(p, i, out) != 0);
        free(p);
    }
    p = malloc(plen + 1);
    memcpy(p, payload, plen);
    p[plen] = 0;
    CHECK(dec(p, plen + 1, out) != 0);
    free(p);
}

/* Adapters so every payload decoder has one shape. */
static int dec_hello(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_hello(b, l, o);
}

static int dec_hello_reply(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_hello_reply(b, l, o);
}

static int dec_status_only(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_status_only(b, l, o);
}

static int dec_list_reply(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_list_reply(b, l, o);
}

static int dec_open(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_open(b, l, o);
}

static int dec_open_reply(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_open_reply(b, l, o);
}

static int dec_attach(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_attach(b, l, o);
}

static int dec_call(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_call(b, l, false, o);
}

static int dec_call_async(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_call(b, l, true, o);
}

static int dec_call_reply(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_call_reply(b, l, o);
}

static int dec_wake_reply(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_wake_reply(b, l, o);
}

static int dec_wake_unregister(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_wake_unregister(b, l, o);
}

static int dec_map(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_map(b, l, o);
}

static int dec_map_reply(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_map_reply(b, l, o);
}

static int dec_status_reply(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_status_reply(b, l, o);
}

static int dec_empty(const uint8_t *b, size_t l, void *o)
{
    return dext_wire_decode_empty(b, l);
}

static const uint8_t *payload(void)
{
    return msg + DEXT_WIRE_HEADER_SIZE;
}

/* ---------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------- */

static void test_bytes(void)
{
    uint8_t b[8];

    dext_wire_put_u16(b, 0x1234);
    CHECK(b[0] == 0x34 && b[1] == 0x12);
    CHECK(dext_wire_get_u16(b) == 0x1234);
    dext_wire_put_u32(b, 0xdeadbeef);
    CHECK(b[0] == 0xef && b[1] == 0xbe && b[2] == 0xad && b[3] == 0xde);
    CHECK(dext_wire_get_u32(b) == 0xdeadbeef);
    dext_wire_put_u64(b, 0x0102030405060708ull);
    CHECK(b[0] == 0x08 && b[7] == 0x01);
    CHECK(dext_wire_get_u64(b) == 0x0102030405060708ull);
    dext_wire_put_u64(b, UINT64_MAX);
    CHECK(dext_wire_get_u64(b) == UINT64_MAX);
}

static void test_header_layout(void)
{
    DextWireHello hello = { 1, 1, 0 };
    int len = dext_wire_encode_hello(msg, sizeof(msg), 0x1122334455667788ull,
                                     &hello);

    /* Byte-exact: docs/protocol.md promises this layout. */
    CHECK(len == DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_HELLO_SIZE);
    CHECK(memcmp(msg, "dext", 4) == 0);
    CHECK(msg[4] == 1 && msg[5] == 0);                  /* version */
    CHECK(msg[6] == DEXT_WIRE_HELLO && msg[7] == 0);    /* type */
    CHECK(dext_wire_get_u32(msg + 8) == 0);             /* flags */
    CHECK(dext_wire_get_u32(msg + 12) == DEXT_WIRE_HELLO_SIZE);
    CHECK(msg[16] == 0x88 && msg[23] == 0x11);          /* seq */
    CHECK(dext_wire_peek_seq(msg, len) == 0x1122334455667788ull);
    CHECK(dext_wire_peek_seq(msg, 23) == 0);
    CHECK(dext_wire_peek_seq(NULL, 100) == 0);
}

static void test_hello(void)
{
    DextWireHello m = { 1, 7, 0xabcd }, m2;
    DextWireHelloReply r = { kIOReturnSuccess, 1, 4242, 7 }, r2;
    DextWireHeader h;
    int len;

    len = dext_wire_encode_hello(msg, sizeof(msg), 5, &m);
    check_framing(len, DEXT_WIRE_HELLO, false, &h);
    CHECK(h.version == DEXT_WIRE_VERSION_HELLO && h.seq == 5);
    CHECK(dext_wire_decode_hello(payload(), h.length, &m2) == 0);
    CHECK(m2.min_version == 1 && m2.max_version == 7 &&
          m2.features == 0xabcd);
    check_payload_strict(payload(), h.length, dec_hello, &m2);
    CHECK(dext_wire_choose_version(&m2) == DEXT_WIRE_VERSION_MAX);

    /* min > max, and min 0, are nonsense. */
    dext_wire_put_u16(msg + DEXT_WIRE_HEADER_SIZE, 8);
    CHECK(dext_wire_decode_hello(payload(), h.length, &m2) ==
          DEXT_WIRE_EVALUE);
    dext_wire_put_u16(msg + DEXT_WIRE_HEADER_SIZE, 0);
    CHECK(dext_wire_decode_hello(payload(), h.length, &m2) ==
          DEXT_WIRE_EVALUE);

    /* No common version. */
    m2.min_version = DEXT_WIRE_VERSION_MAX + 1;
    m2.max_version = DEXT_WIRE_VERSION_MAX + 5;
    CHECK(dext_wire_choose_version(&m2) == 0);

    len = dext_wire_encode_hello_reply(msg, sizeof(msg), 5, &r);
    check_framing(len, DEXT_WIRE_HELLO, true, &h);
    CHECK(dext_wire_decode_hello_reply(payload(), h.length, &r2) == 0);
    CHECK(r2.status == kIOReturnSuccess && r2.version == 1 &&
          r2.pid == 4242 && r2.features == 7);
    check_payload_strict(payload(), h.length, dec_hello_reply, &r2);

    /* Reserved bytes must be zero. */
    msg[DEXT_WIRE_HEADER_SIZE + 6] = 1;
    CHECK(dext_wire_decode_hello_reply(payload(), h.length, &r2) ==
          DEXT_WIRE_EVALUE);

    /* Success without a version, and failure with one, are malformed. */
    r.version = 0;
    len = dext_wire_encode_hello_reply(msg, sizeof(msg), 5, &r);
    CHECK(dext_wire_decode_hello_reply(payload(), len - DEXT_WIRE_HEADER_SIZE,
                                       &r2) == DEXT_WIRE_EVALUE);
    r.status = kIOReturnUnsupported;
    len = dext_wire_encode_hello_reply(msg, sizeof(msg), 5, &r);
    CHECK(dext_wire_decode_hello_reply(payload(), len - DEXT_WIRE_HEADER_SIZE,
                                       &r2) == 0);
    CHECK(r2.status == kIOReturnUnsupported && r2.version == 0);
    r.version = 1;
    len = dext_wire_encode_hello_reply(msg, sizeof(msg), 5, &r);
    CHECK(dext_wire_decode_hello_reply(payload(), len - DEXT_WIRE_HEADER_SIZE,
                                       &r2) == DEXT_WIRE_EVALUE);
}

static void test_empty_and_status_only(void)
{
    static const uint16_t empties[] = {
        DEXT_WIRE_LIST, DEXT_WIRE_STATUS, DEXT_WIRE_WAKE_REGISTER,
    };
    static const uint16_t status_types[] = {
        DEXT_WIRE_ATTACH, DEXT_WIRE_WAKE_UNREGISTER, DEXT_WIRE_ERROR,
    };
    DextWireHeader h;
    IOReturn st;
    size_t i;
    int len;

    for (i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        len = dext_wire_encode_empty(msg, sizeof(msg), 1, 9, empties[i]);
        CHECK(len == DEXT_WIRE_HEADER_SIZE);
        check_framing(len, empties[i], false, &h);
        CHECK(dext_wire_decode_empty(payload(), h.length) == 0);
        CHECK(dext_wire_decode_empty(payload(), 1) == DEXT_WIRE_ELENGTH);
    }
    CHECK(dext_wire_encode_empty(msg, sizeof(msg), 1, 9, DEXT_WIRE_CALL) ==
          DEXT_WIRE_ETYPE);
    check_payload_strict(payload(), 0, dec_empty, NULL);

    for (i = 0; i < sizeof(status_types) / sizeof(status_types[0]); i++) {
        len = dext_wire_encode_status_only(msg, sizeof(msg), 1, 77,
                                           status_types[i],
                                           kIOReturnNotPermitted);
        check_framing(len, status_types[i], true, &h);
        CHECK(h.seq == 77);
        CHECK(dext_wire_decode_status_only(payload(), h.length, &st) == 0);
        CHECK(st == kIOReturnNotPermitted);
        check_payload_strict(payload(), h.length, dec_status_only, &st);
    }
    CHECK(dext_wire_encode_status_only(msg, sizeof(msg), 1, 0, DEXT_WIRE_OPEN,
                                       0) == DEXT_WIRE_ETYPE);
}

static void test_list(void)
{
    static DextWireListReply r, r2;
    DextWireHeader h;
    uint32_t i;
    int len;

    r.status = kIOReturnSuccess;
    r.total = 3;
    r.count = 3;
    r.ids[0] = 0x100000001ull;
    r.ids[1] = 0x100000002ull;
    r.ids[2] = UINT64_MAX;
    len = dext_wire_encode_list_reply(msg, sizeof(msg), 1, 3, &r);
    check_framing(len, DEXT_WIRE_LIST, true, &h);
    CHECK(dext_wire_decode_list_reply(payload(), h.length, &r2) == 0);
    CHECK(r2.total == 3 && r2.count == 3);
    CHECK(r2.ids[0] == r.ids[0] && r2.ids[1] == r.ids[1] &&
          r2.ids[2] == r.ids[2]);
    check_payload_strict(payload(), h.length, dec_list_reply, &r2);

    /* A count beyond the total or the limit is refused both ways. */
    dext_wire_put_u32(msg + DEXT_WIRE_HEADER_SIZE + 4, 2);
    CHECK(dext_wire_decode_list_reply(payload(), h.length, &r2) ==
          DEXT_WIRE_ELIMIT);
    dext_wire_put_u32(msg + DEXT_WIRE_HEADER_SIZE + 4, 1000);
    dext_wire_put_u32(msg + DEXT_WIRE_HEADER_SIZE + 8,
                      DEXT_MAX_SERVICES + 1);
    CHECK(dext_wire_decode_list_reply(payload(), h.length, &r2) ==
          DEXT_WIRE_ELIMIT);
    dext_wire_put_u32(msg + DEXT_WIRE_HEADER_SIZE + 8, 0xffffffffu);
    CHECK(dext_wire_decode_list_reply(payload(), h.length, &r2) ==
          DEXT_WIRE_ELIMIT);
    r.count = 4;
    CHECK(dext_wire_encode_list_reply(msg, sizeof(msg), 1, 3, &r) ==
          DEXT_WIRE_ELIMIT);

    /* The full list fits in one message. */
    r.total = 1000;
    r.count = DEXT_MAX_SERVICES;
    for (i = 0; i < DEXT_MAX_SERVICES; i++) {
        r.ids[i] = i * 7919ull;
    }
    len = dext_wire_encode_list_reply(msg, sizeof(msg), 1, 3, &r);
    check_framing(len, DEXT_WIRE_LIST, true, &h);
    CHECK(dext_wire_decode_list_reply(payload(), h.length, &r2) == 0);
    CHECK(r2.total == 1000 && r2.count == DEXT_MAX_SERVICES);
    CHECK(r2.ids[DEXT_MAX_SERVICES - 1] == (DEXT_MAX_SERVICES - 1) * 7919ull);

    /* Empty list. */
    r.total = 0;
    r.count = 0;
    len = dext_wire_encode_list_reply(msg, sizeof(msg), 1, 3, &r);
    CHECK(len == DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_LIST_REPLY_FIXED);
    CHECK(dext_wire_decode_list_reply(payload(), DEXT_WIRE_LIST_REPLY_FIXED,
                                      &r2) == 0 && r2.count == 0);
}

static void test_open_attach(void)
{
    DextWireOpen m = { 0x100000001ull, 0 }, m2;
    DextWireOpenReply r, r2;
    DextWireAttach a, a2;
    DextWireHeader h;
    int len;
    int i;

    len = dext_wire_encode_open(msg, sizeof(msg), 1, 11, &m);
    check_framing(len, DEXT_WIRE_OPEN, false, &h);
    CHECK(dext_wire_decode_open(payload(), h.length, &m2) == 0);
    CHECK(m2.service_id == m.service_id && m2.type == 0);
    check_payload_strict(payload(), h.length, dec_open, &m2);
    msg[DEXT_WIRE_HEADER_SIZE + 15] = 1;
    CHECK(dext_wire_decode_open(payload(), h.length, &m2) ==
          DEXT_WIRE_EVALUE);

    r.status = kIOReturnSuccess;
    for (i = 0; i < DEXT_WIRE_TOKEN_SIZE; i++) {
        r.token[i] = (uint8_t)(0xa0 + i);
    }
    len = dext_wire_encode_open_reply(msg, sizeof(msg), 1, 11, &r);
    check_framing(len, DEXT_WIRE_OPEN, true, &h);
    CHECK(dext_wire_decode_open_reply(payload(), h.length, &r2) == 0);
    CHECK(r2.status == kIOReturnSuccess &&
          memcmp(r2.token, r.token, DEXT_WIRE_TOKEN_SIZE) == 0);
    check_payload_strict(payload(), h.length, dec_open_reply, &r2);

    memcpy(a.token, r.token, DEXT_WIRE_TOKEN_SIZE);
    len = dext_wire_encode_attach(msg, sizeof(msg), 1, 12, &a);
    check_framing(len, DEXT_WIRE_ATTACH, false, &h);
    CHECK(dext_wire_decode_attach(payload(), h.length, &a2) == 0);
    CHECK(memcmp(a2.token, a.token, DEXT_WIRE_TOKEN_SIZE) == 0);
    check_payload_strict(payload(), h.length, dec_attach, &a2);
}

static void fill_call(DextWireCall *m, uint32_t nin, uint32_t sin,
                      const uint8_t *data)
{
    uint32_t i;

    memset(m, 0, sizeof(*m));
    m->port = 3;
    m->selector = 5;
    m->scalar_in_cnt = nin;
    for (i = 0; i < nin && i < DEXT_MAX_SCALARS; i++) {
        m->scalar_in[i] = 0x1111111111111111ull * (i + 1);
    }
    m->scalar_out_cap = 3;
    m->struct_in_len = sin;
    m->struct_in = sin ? data : NULL;
    m->struct_out_cap = 128;
}

static void test_call(void)
{
    static uint8_t data[DEXT_MAX_STRUCT];
    DextWireCall m, m2;
    DextWireHeader h;
    size_t fixed;
    uint32_t i;
    int async;
    int len;

    for (i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 13);
    }
    for (async = 0; async <= 1; async++) {
        uint16_t type = async ? DEXT_WIRE_CALL_ASYNC : DEXT_WIRE_CALL;
        PayloadDecoder *dec = async ? dec_call_async : dec_call;

        fixed = async ? DEXT_WIRE_CALL_ASYNC_FIXED : DEXT_WIRE_CALL_FIXED;

        /* Small, empty and maximal calls. */
        fill_call(&m, 3, 5, data);
        len = dext_wire_encode_call(msg, sizeof(msg), 1, 100, async, &m);
        check_framing(len, type, false, &h);
        CHECK(dext_wire_decode_call(payload(), h.length, async, &m2) == 0);
        CHECK(m2.port == (async ? 3u : 0u) && m2.selector == 5);
        CHECK(m2.scalar_in_cnt == 3 && m2.scalar_in[2] == m.scalar_in[2]);
        CHECK(m2.scalar_out_cap == 3 && m2.struct_out_cap == 128);
        CHECK(m2.struct_in_len == 5 && memcmp(m2.struct_in, data, 5) == 0);
        check_payload_strict(payload(), h.length, dec, &m2);

        fill_call(&m, 0, 0, NULL);
        len = dext_wire_encode_call(msg, sizeof(msg), 1, 101, async, &m);
        CHECK(len == (int)(DEXT_WIRE_HEADER_SIZE + fixed));
        check_framing(len, type, false, &h);
        CHECK(dext_wire_decode_call(payload(), h.length, async, &m2) == 0);
        CHECK(m2.scalar_in_cnt == 0 && m2.struct_in == NULL);

        fill_call(&m, DEXT_MAX_SCALARS, DEXT_MAX_STRUCT, data);
        m.scalar_out_cap = DEXT_MAX_SCALARS;
        m.struct_out_cap = DEXT_MAX_STRUCT;
        len = dext_wire_encode_call(msg, sizeof(msg), 1, 102, async, &m);
        CHECK(len > 0 && len <= DEXT_WIRE_MAX_MSG);
        check_framing(len, type, false, &h);
        CHECK(dext_wire_decode_call(payload(), h.length, async, &m2) == 0);
        CHECK(m2.scalar_in[DEXT_MAX_SCALARS - 1] ==
              m.scalar_in[DEXT_MAX_SCALARS - 1]);
        CHECK(memcmp(m2.struct_in, data, DEXT_MAX_STRUCT) == 0);

        /* Over the limits: encoder refuses... */
        fill_call(&m, DEXT_MAX_SCALARS + 1, 0, NULL);
        CHECK(dext_wire_encode_call(msg, sizeof(msg), 1, 1, async, &m) ==
              DEXT_WIRE_ELIMIT);
        fill_call(&m, 0, DEXT_MAX_STRUCT + 1, data);
        CHECK(dext_wire_encode_call(msg, sizeof(msg), 1, 1, async, &m) ==
              DEXT_WIRE_ELIMIT);
        fill_call(&m, 0, 0, NULL);
        m.scalar_out_cap = DEXT_MAX_SCALARS + 1;
        CHECK(dext_wire_encode_call(msg, sizeof(msg), 1, 1, async, &m) ==
              DEXT_WIRE_ELIMIT);
        fill_call(&m, 0, 0, NULL);
        m.struct_out_cap = DEXT_MAX_STRUCT + 1;
        CHECK(dext_wire_encode_call(msg, sizeof(msg), 1, 1, async, &m) ==
              DEXT_WIRE_ELIMIT);
        fill_call(&m, 0, 4, NULL);
        CHECK(dext_wire_encode_call(msg, sizeof(msg), 1, 1, async, &m) ==
              DEXT_WIRE_ELIMIT);
        fill_call(&m, 0, 0, NULL);
        CHECK(dext_wire_encode_call(msg, DEXT_WIRE_HEADER_SIZE + fixed - 1, 1,
                                    1, async, &m) == DEXT_WIRE_ENOSPC);

        /* ...and so does the decoder, whatever the length says. */
        fill_call(&m, 2, 8, data);
        len = dext_wire_encode_call(msg, sizeof(msg), 1, 103, async, &m);
        h.length = (uint32_t)len - DEXT_WIRE_HEADER_SIZE;
        {
            uint8_t *f = msg + DEXT_WIRE_HEADER_SIZE + (async ? 4 : 0);
            uint8_t save[DEXT_WIRE_CALL_FIXED];

            memcpy(save, f, sizeof(save));
            dext_wire_put_u32(f + 4, DEXT_MAX_SCALARS + 1);
            CHECK(dext_wire_decode_call(payload(), h.length, async, &m2) ==
                  DEXT_WIRE_ELIMIT);
            dext_wire_put_u32(f + 4, 0xffffffffu);
            CHECK(dext_wire_decode_call(payload(), h.length, async, &m2) ==
                  DEXT_WIRE_ELIMIT);
            memcpy(f, save, sizeof(save));
            dext_wire_put_u32(f + 8, DEXT_MAX_SCALARS + 1);
            CHECK(dext_wire_decode_call(payload(), h.length, async, &m2) ==
                  DEXT_WIRE_ELIMIT);
            memcpy(f, save, sizeof(save));
            dext_wire_put_u32(f + 12, DEXT_MAX_STRUCT + 1);
            CHECK(dext_wire_decode_call(payload(), h.length, async, &m2) ==
                  DEXT_WIRE_ELIMIT);
            memcpy(f, save, sizeof(save));
            dext_wire_put_u32(f + 16, 0x80000000u);
            CHECK(dext_wire_decode_call(payload(), h.length, async, &m2) ==
                  DEXT_WIRE_ELIMIT);
            memcpy(f, save, sizeof(save));
            /* Counts within limits that disagree with the length. */
            dext_wire_put_u32(f + 4, 3);
            CHECK(dext_wire_decode_call(payload(), h.length, async, &m2) ==
                  DEXT_WIRE_ELENGTH);
            memcpy(f, save, sizeof(save));
            dext_wire_put_u32(f + 12, 7);
            CHECK(dext_wire_decode_call(payload(), h.length, async, &m2) ==
                  DEXT_WIRE_ELENGTH);
            memcpy(f, save, sizeof(save));
            CHECK(dext_wire_decode_call(payload(), h.length, async, &m2) == 0);
        }
    }
}

static void test_call_reply(void)
{
    static uint8_t data[DEXT_MAX_STRUCT];
    DextWireCallReply r, r2;
    DextWireHeader h;
    uint32_t i;
    int async;
    int len;

    for (i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(255 - i);
    }
    for (async = 0; async <= 1; async++) {
        uint16_t type = async ? DEXT_WIRE_CALL_ASYNC : DEXT_WIRE_CALL;

        memset(&r, 0, sizeof(r));
        r.status = kIOReturnSuccess;
        r.scalar_out_cnt = 6;
        for (i = 0; i < 6; i++) {
            r.scalar_out[i] = i * 0x1000000001ull;
        }
        r.struct_out_len = 10;
        r.struct_out = data;
        len = dext_wire_encode_call_reply(msg, sizeof(msg), 1, 200, async, &r);
        check_framing(len, type, true, &h);
        CHECK(dext_wire_decode_call_reply(payload(), h.length, &r2) == 0);
        CHECK(r2.status == kIOReturnSuccess && r2.scalar_out_cnt == 6);
        CHECK(r2.scalar_out[5] == r.scalar_out[5]);
        CHECK(r2.struct_out_len == 10 &&
              memcmp(r2.struct_out, data, 10) == 0);
        check_payload_strict(payload(), h.length, dec_call_reply, &r2);

        /* Error with no outputs. */
        memset(&r, 0, sizeof(r));
        r.status = kIOReturnBadArgument;
        len = dext_wire_encode_call_reply(msg, sizeof(msg), 1, 201, async, &r);
        CHECK(len == DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_CALL_REPLY_FIXED);
        CHECK(dext_wire_decode_call_reply(payload(),
                                          DEXT_WIRE_CALL_REPLY_FIXED,
                                          &r2) == 0);
        CHECK(r2.status == kIOReturnBadArgument && r2.struct_out == NULL);

        /* Limits. */
        r.scalar_out_cnt = DEXT_MAX_SCALARS;
        r.struct_out_len = DEXT_MAX_STRUCT;
        r.struct_out = data;
        len = dext_wire_encode_call_reply(msg, sizeof(msg), 1, 202, async, &r);
        CHECK(len > 0);
        CHECK(dext_wire_decode_call_reply(payload(),
                                          len - DEXT_WIRE_HEADER_SIZE,
                                          &r2) == 0);
        r.scalar_out_cnt = DEXT_MAX_SCALARS + 1;
        CHECK(dext_wire_encode_call_reply(msg, sizeof(msg), 1, 1, async,
                                          &r) == DEXT_WIRE_ELIMIT);
        r.scalar_out_cnt = 0;
        r.struct_out_len = DEXT_MAX_STRUCT + 1;
        CHECK(dext_wire_encode_call_reply(msg, sizeof(msg), 1, 1, async,
                                          &r) == DEXT_WIRE_ELIMIT);
    }
    /* Decoder limits. */
    memset(&r, 0, sizeof(r));
    len = dext_wire_encode_call_reply(msg, sizeof(msg), 1, 203, false, &r);
    dext_wire_put_u32(msg + DEXT_WIRE_HEADER_SIZE + 4, DEXT_MAX_SCALARS + 1);
    CHECK(dext_wire_decode_call_reply(payload(), len - DEXT_WIRE_HEADER_SIZE,
                                      &r2) == DEXT_WIRE_ELIMIT);
    dext_wire_put_u32(msg + DEXT_WIRE_HEADER_SIZE + 4, 0);
    dext_wire_put_u32(msg + DEXT_WIRE_HEADER_SIZE + 8, 0xfffffff0u);
    CHECK(dext_wire_decode_call_reply(payload(), len - DEXT_WIRE_HEADER_SIZE,
                                      &r2) == DEXT_WIRE_ELIMIT);
    dext_wire_put_u32(msg + DEXT_WIRE_HEADER_SIZE + 8, 1);
    CHECK(dext_wire_decode_call_reply(payload(), len - DEXT_WIRE_HEADER_SIZE,
                                      &r2) == DEXT_WIRE_ELENGTH);
}

static void test_wake(void)
{
    DextWireWakeReply r = { kIOReturnSuccess, 42 }, r2;
    DextWireHeader h;
    uint32_t port;
    int len;

    len = dext_wire_encode_wake_reply(msg, sizeof(msg), 1, 300, &r);
    check_framing(len, DEXT_WIRE_WAKE_REGISTER, true, &h);
    CHECK(dext_wire_decode_wake_reply(payload(), h.length, &r2) == 0);
    CHECK(r2.status == kIOReturnSuccess && r2.port == 42);
    check_payload_strict(payload(), h.length, dec_wake_reply, &r2);
    r.port = 0;
    len = dext_wire_encode_wake_reply(msg, sizeof(msg), 1, 300, &r);
    CHECK(dext_wire_decode_wake_reply(payload(), len - DEXT_WIRE_HEADER_SIZE,
                                      &r2) == DEXT_WIRE_EVALUE);
    r.status = kIOReturnNoSpace;
    len = dext_wire_encode_wake_reply(msg, sizeof(msg), 1, 300, &r);
    CHECK(dext_wire_decode_wake_reply(payload(), len - DEXT_WIRE_HEADER_SIZE,
                                      &r2) == 0 &&
          r2.status == kIOReturnNoSpace);

    len = dext_wire_encode_wake_unregister(msg, sizeof(msg), 1, 301, 42);
    check_framing(len, DEXT_WIRE_WAKE_UNREGISTER, false, &h);
    CHECK(dext_wire_decode_wake_unregister(payload(), h.length, &port) == 0);
    CHECK(port == 42);
    check_payload_strict(payload(), h.length, dec_wake_unregister, &port);
}

static void test_map(void)
{
    DextWireMap m = { 7, DEXT_MAP_WRITE_COMBINE }, m2;
    DextWireMapReply r = { kIOReturnSuccess, DEXT_WIRE_MAP_WRITABLE, 0x4000,
                           16384 }, r2;
    DextWireHeader h;
    int len;

    len = dext_wire_encode_map(msg, sizeof(msg), 1, 400, &m);
    check_framing(len, DEXT_WIRE_MAP, false, &h);
    CHECK(dext_wire_decode_map(payload(), h.length, &m2) == 0);
    CHECK(m2.mem_type == 7 && m2.options == DEXT_MAP_WRITE_COMBINE);
    check_payload_strict(payload(), h.length, dec_map, &m2);

    len = dext_wire_encode_map_reply(msg, sizeof(msg), 1, 400, &r);
    check_framing(len, DEXT_WIRE_MAP, true, &h);
    CHECK(dext_wire_decode_map_reply(payload(), h.length, &r2) == 0);
    CHECK(r2.status == kIOReturnSuccess &&
          r2.flags == DEXT_WIRE_MAP_WRITABLE && r2.offset == 0x4000 &&
          r2.size == 16384);
    check_payload_strict(payload(), h.length, dec_map_reply, &r2);

    r.flags = 0x80;
    len = dext_wire_encode_map_reply(msg, sizeof(msg), 1, 400, &r);
    CHECK(dext_wire_decode_map_reply(payload(), len - DEXT_WIRE_HEADER_SIZE,
                                     &r2) == DEXT_WIRE_EVALUE);
    r.flags = 0;
    r.size = 0;
    len = dext_wire_encode_map_reply(msg, sizeof(msg), 1, 400, &r);
    CHECK(dext_wire_decode_map_reply(payload(), len - DEXT_WIRE_HEADER_SIZE,
                                     &r2) == DEXT_WIRE_EVALUE);
    r.status = kIOReturnNotReady;
    len = dext_wire_encode_map_reply(msg, sizeof(msg), 1, 400, &r);
    CHECK(dext_wire_decode_map_reply(payload(), len - DEXT_WIRE_HEADER_SIZE,
                                     &r2) == 0 &&
          r2.status == kIOReturnNotReady);
}

static void test_status(void)
{
    DextWireStatusReply r = {
        .status = kIOReturnSuccess, .version = 1, .pid = 99,
        .uptime_ms = 123456789012ull, .channels = 3, .devices = 2,
        .sessions = 4, .claims = 1, .dma_regions = 5,
        .dma_region_bytes = 1ull << 40, .dma_buffers = 1, .irq_sessions = 1,
        .iommu_faults = 6, .irqs_raised = 1ull << 33, .irqs_dropped = 8,
    }, r2;
    DextWireHeader h;
    int len;

    len = dext_wire_encode_status_reply(msg, sizeof(msg), 1, 500, &r);
    CHECK(len == DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_STATUS_REPLY_SIZE);
    check_framing(len, DEXT_WIRE_STATUS, true, &h);
    CHECK(dext_wire_decode_status_reply(payload(), h.length, &r2) == 0);
    CHECK((r2.status == r.status && r2.version == r.version &&
           r2.pid == r.pid && r2.uptime_ms == r.uptime_ms &&
           r2.channels == r.channels && r2.devices == r.devices &&
           r2.sessions == r.sessions && r2.claims == r.claims &&
           r2.dma_regions == r.dma_regions &&
           r2.dma_region_bytes == r.dma_region_bytes &&
           r2.dma_buffers == r.dma_buffers &&
           r2.irq_sessions == r.irq_sessions &&
           r2.iommu_faults == r.iommu_faults &&
           r2.irqs_raised == r.irqs_raised &&
           r2.irqs_dropped == r.irqs_dropped));
    CHECK(r2.irqs_raised == 1ull << 33 && r2.dma_region_bytes == 1ull << 40);
    check_payload_strict(payload(), h.length, dec_status_reply, &r2);
    msg[DEXT_WIRE_HEADER_SIZE + 7] = 1;
    CHECK(dext_wire_decode_status_reply(payload(), h.length, &r2) ==
          DEXT_WIRE_EVALUE);
}

static void test_bad_headers(void)
{
    DextWireHello hello = { 1, 1, 0 };
    DextWireHeader h;
    int len;

    len = dext_wire_encode_hello(msg, sizeof(msg), 1, &hello);
    CHECK(header_of(len, &h) == 0);

    msg[0] ^= 1;
    CHECK(header_of(len, &h) == DEXT_WIRE_EMAGIC);
    msg[0] ^= 1;

    dext_wire_put_u16(msg + 4, 0);
    CHECK(header_of(len, &h) == DEXT_WIRE_EVERSION);
    dext_wire_put_u16(msg + 4, DEXT_WIRE_VERSION_MAX + 1);
    CHECK(header_of(len, &h) == DEXT_WIRE_EVERSION);
    dext_wire_put_u16(msg + 4, 1);

    dext_wire_put_u16(msg + 6, 0);
    CHECK(header_of(len, &h) == DEXT_WIRE_ETYPE);
    dext_wire_put_u16(msg + 6, DEXT_WIRE_TYPE_MAX + 1);
    CHECK(header_of(len, &h) == DEXT_WIRE_ETYPE);
    dext_wire_put_u16(msg + 6, 0xffff);
    CHECK(header_of(len, &h) == DEXT_WIRE_ETYPE);
    dext_wire_put_u16(msg + 6, DEXT_WIRE_HELLO);

    dext_wire_put_u32(msg + 8, 0x2);
    CHECK(header_of(len, &h) == DEXT_WIRE_EFLAGS);
    dext_wire_put_u32(msg + 8, 0x80000001u);
    CHECK(header_of(len, &h) == DEXT_WIRE_EFLAGS);
    dext_wire_put_u32(msg + 8, 0);

    /* ERROR must be a reply. */
    dext_wire_put_u16(msg + 6, DEXT_WIRE_ERROR);
    CHECK(header_of(len, &h) == DEXT_WIRE_EFLAGS);
    dext_wire_put_u16(msg + 6, DEXT_WIRE_HELLO);

    /* Announced lengths: over the limit, short, long. */
    dext_wire_put_u32(msg + 12, DEXT_WIRE_MAX_PAYLOAD + 1);
    CHECK(header_of(len, &h) == DEXT_WIRE_ELIMIT);
    dext_wire_put_u32(msg + 12, 0xffffffffu);
    CHECK(header_of(len, &h) == DEXT_WIRE_ELIMIT);
    dext_wire_put_u32(msg + 12, DEXT_WIRE_HELLO_SIZE + 1);
    CHECK(header_of(len, &h) == DEXT_WIRE_ETRUNC);
    dext_wire_put_u32(msg + 12, DEXT_WIRE_HELLO_SIZE - 1);
    CHECK(header_of(len, &h) == DEXT_WIRE_ELENGTH);
    dext_wire_put_u32(msg + 12, DEXT_WIRE_HELLO_SIZE);
    CHECK(header_of(len, &h) == 0);

    CHECK(dext_wire_decode_header(NULL, 100, &h) == DEXT_WIRE_ETRUNC);

    /* Encoders refuse a buffer that is too small. */
    CHECK(dext_wire_encode_hello(msg, len - 1, 1, &hello) ==
          DEXT_WIRE_ENOSPC);
    CHECK(dext_wire_encode_hello(NULL, 1000, 1, &hello) == DEXT_WIRE_ENOSPC);

    CHECK(strcmp(dext_wire_type_name(DEXT_WIRE_CALL), "CALL") == 0);
    CHECK(strcmp(dext_wire_type_name(0), "?") == 0);
    CHECK(strcmp(dext_wire_type_name(1000), "?") == 0);
    CHECK(dext_wire_strerror(DEXT_WIRE_ELIMIT) != NULL);
    CHECK(dext_wire_strerror(-1000) != NULL);
}

/* Deterministic xorshift, so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/*
 * Random and mutated inputs through every decoder.  Correctness is not
 * checked here, only that nothing reads out of bounds or crashes, and
 * that whatever decodes respects the limits.
 */
static void test_fuzz(void)
{
    static PayloadDecoder *const decs[] = {
        dec_hello, dec_hello_reply, dec_status_only, dec_list_reply,
        dec_open, dec_open_reply, dec_attach, dec_call, dec_call_async,
        dec_call_reply, dec_wake_reply, dec_wake_unregister, dec_map,
        dec_map_reply, dec_status_reply, dec_empty,
    };
    static DextWireListReply list;
    union {
        DextWireHello a;
        DextWireHelloReply b;
        DextWireCall c;
        DextWireCallReply d;
        DextWireMapReply e;
        DextWireStatusReply f;
        DextWireOpenReply g;
        IOReturn h;
        uint32_t i;
    } out;
    DextWireCall call;
    DextWireHeader h;
    int iter;
    size_t d;

    for (iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(rng() % 200);
        uint8_t *p;
        size_t i;

        if (iter % 4 == 0) {
            /* Structured: a valid header with random payload. */
            len = (size_t)(rng() % 160);
            for (i = 0; i < len + DEXT_WIRE_HEADER_SIZE; i++) {
                msg[i] = (uint8_t)rng();
            }
            dext_wire_put_u32(msg, DEXT_WIRE_MAGIC);
            dext_wire_put_u16(msg + 4, 1);
            dext_wire_put_u16(msg + 6, (uint16_t)(1 + rng() % 11));
            dext_wire_put_u32(msg + 8, (uint32_t)(rng() & 1));
            dext_wire_put_u32(msg + 12, (uint32_t)len);
            len += DEXT_WIRE_HEADER_SIZE;
        } else {
            for (i = 0; i < len; i++) {
                msg[i] = (uint8_t)rng();
            }
        }
        p = dup_bytes(msg, len);
        if (dext_wire_decode_header(p, len, &h) == 0) {
            CHECK(h.length == len - DEXT_WIRE_HEADER_SIZE);
        }
        for (d = 0; d < sizeof(decs) / sizeof(decs[0]); d++) {
            (void)decs[d](p, len, &out);
        }
        if (dext_wire_decode_list_reply(p, len, &list) == 0) {
            CHECK(list.count <= DEXT_MAX_SERVICES);
        }
        if (dext_wire_decode_call(p, len, false, &call) == 0) {
            CHECK(call.scalar_in_cnt <= DEXT_MAX_SCALARS &&
                  call.struct_in_len <= DEXT_MAX_STRUCT);
        }
        free(p);
    }
    /* Calls with plausible counts and random lengths. */
    for (iter = 0; iter < 5000; iter++) {
        size_t len = DEXT_WIRE_CALL_FIXED + (size_t)(rng() % 300);
        uint8_t *p;
        size_t i;

        for (i = 0; i < len; i++) {
            msg[i] = (uint8_t)rng();
        }
        dext_wire_put_u32(msg + 4, (uint32_t)(rng() % 20));
        dext_wire_put_u32(msg + 12, (uint32_t)(rng() % 200));
        p = dup_bytes(msg, len);
        if (dext_wire_decode_call(p, len, false, &call) == 0) {
            CHECK(len == DEXT_WIRE_CALL_FIXED + call.scalar_in_cnt * 8u +
                         call.struct_in_len);
        }
        free(p);
    }
}

static void test_socket_path(void)
{
    char want[128];

    setenv("DEXT_SOCKET", "/some/where.sock", 1);
    CHECK(strcmp(dext_wire_default_socket_path(), "/some/where.sock") == 0);
    setenv("DEXT_SOCKET", "", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/4711", 1);
    if (geteuid() == 0) {
        CHECK(strcmp(dext_wire_default_socket_path(), "/run/dextd.sock") ==
              0);
    } else {
        CHECK(strcmp(dext_wire_default_socket_path(),
                     "/run/user/4711/dextd.sock") == 0);
        unsetenv("XDG_RUNTIME_DIR");
        snprintf(want, sizeof(want), "/tmp/dextd-%u.sock",
                 (unsigned)geteuid());
        CHECK(strcmp(dext_wire_default_socket_path(), want) == 0);
    }
    unsetenv("DEXT_SOCKET");
    CHECK(dext_wire_default_socket_path()[0] == '/');
}

int main(void)
{
    test_bytes();
    test_header_layout();
    test_hello();
    test_empty_and_status_only();
    test_list();
    test_open_attach();
    test_call();
    test_call_reply();
    test_wake();
    test_map();
    test_status();
    test_bad_headers();
    test_fuzz();
    test_socket_path();
    return harness_finish();
}
