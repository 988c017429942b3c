/*
 * SPDX-License-Identifier: MIT
 *
 * The dextd wire protocol codec (see protocol/dext-wire.h and
 * docs/protocol.md).  No allocation, no I/O, no global state: encoders
 * fill a caller's buffer, decoders read a caller's buffer and never look
 * past the length they are given.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/dext-wire.h"

/* ---------------------------------------------------------------------
 * Byte helpers
 * ------------------------------------------------------------------- */

void dext_wire_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void dext_wire_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void dext_wire_put_u64(uint8_t *p, uint64_t v)
{
    dext_wire_put_u32(p, (uint32_t)v);
    dext_wire_put_u32(p + 4, (uint32_t)(v >> 32));
}

uint16_t dext_wire_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t dext_wire_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
           ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint64_t dext_wire_get_u64(const uint8_t *p)
{
    return (uint64_t)dext_wire_get_u32(p) |
           ((uint64_t)dext_wire_get_u32(p + 4) << 32);
}

/* IOReturn travels as its 32-bit two's complement pattern. */
static void put_status(uint8_t *p, IOReturn s)
{
    dext_wire_put_u32(p, (uint32_t)s);
}

static IOReturn get_status(const uint8_t *p)
{
    return (IOReturn)dext_wire_get_u32(p);
}

/* ---------------------------------------------------------------------
 * Header
 * ------------------------------------------------------------------- */

/* A fixed-size payload must be exactly its size: short or long is an error. */
static int exact_len(size_t len, size_t want)
{
    if (len == want) {
        return 0;
    }
    return len < want ? DEXT_WIRE_ETRUNC : DEXT_WIRE_ELENGTH;
}

static bool type_is_request(uint32_t type)
{
    return type >= DEXT_WIRE_HELLO && type <= DEXT_WIRE_TYPE_MAX &&
           type != DEXT_WIRE_ERROR;
}

/*
 * Start a message: check room for header + @plen and write the header.
 * Returns the payload pointer, or NULL if it does not fit.
 */
static uint8_t *begin(uint8_t *buf, size_t cap, uint16_t version,
                      uint16_t type, uint32_t flags, uint64_t seq,
                      size_t plen)
{
    if (plen > DEXT_WIRE_MAX_PAYLOAD || buf == NULL ||
        cap < DEXT_WIRE_HEADER_SIZE + plen) {
        return NULL;
    }
    dext_wire_put_u32(buf, DEXT_WIRE_MAGIC);
    dext_wire_put_u16(buf + 4, version);
    dext_wire_put_u16(buf + 6, type);
    dext_wire_put_u32(buf + 8, flags);
    dext_wire_put_u32(buf + 12, (uint32_t)plen);
    dext_wire_put_u64(buf + 16, seq);
    return buf + DEXT_WIRE_HEADER_SIZE;
}

int dext_wire_decode_header(const uint8_t *buf, size_t len,
                            DextWireHeader *out)
{
    DextWireHeader h;

    if (buf == NULL || len < DEXT_WIRE_HEADER_SIZE) {
        return DEXT_WIRE_ETRUNC;
    }
    h.magic = dext_wire_get_u32(buf);
    h.version = dext_wire_get_u16(buf + 4);
    h.type = dext_wire_get_u16(buf + 6);
    h.flags = dext_wire_get_u32(buf + 8);
    h.length = dext_wire_get_u32(buf + 12);
    h.seq = dext_wire_get_u64(buf + 16);

    if (h.magic != DEXT_WIRE_MAGIC) {
        return DEXT_WIRE_EMAGIC;
    }
    if (h.version < DEXT_WIRE_VERSION_MIN ||
        h.version > DEXT_WIRE_VERSION_MAX) {
        return DEXT_WIRE_EVERSION;
    }
    if (h.type < DEXT_WIRE_HELLO || h.type > DEXT_WIRE_TYPE_MAX) {
        return DEXT_WIRE_ETYPE;
    }
    if (h.flags & ~DEXT_WIRE_FLAGS_KNOWN) {
        return DEXT_WIRE_EFLAGS;
    }
    if (!type_is_request(h.type) && !(h.flags & DEXT_WIRE_FLAG_REPLY)) {
        return DEXT_WIRE_EFLAGS;
    }
    if (h.length > DEXT_WIRE_MAX_PAYLOAD) {
        return DEXT_WIRE_ELIMIT;
    }
    if (len - DEXT_WIRE_HEADER_SIZE < h.length) {
        return DEXT_WIRE_ETRUNC;
    }
    if (len - DEXT_WIRE_HEADER_SIZE != h.length) {
        return DEXT_WIRE_ELENGTH;
    }
    *out = h;
    return 0;
}

uint64_t dext_wire_peek_seq(const uint8_t *buf, size_t len)
{
    if (buf == NULL || len < DEXT_WIRE_HEADER_SIZE) {
        return 0;
    }
    return dext_wire_get_u64(buf + 16);
}

const char *dext_wire_type_name(uint32_t type)
{
    static const char *const names[] = {
        [DEXT_WIRE_HELLO] = "HELLO",
        [DEXT_WIRE_LIST] = "LIST",
        [DEXT_WIRE_OPEN] = "OPEN",
        [DEXT_WIRE_ATTACH] = "ATTACH",
        [DEXT_WIRE_CALL] = "CALL",
        [DEXT_WIRE_CALL_ASYNC] = "CALL_ASYNC",
        [DEXT_WIRE_WAKE_REGISTER] = "WAKE_REGISTER",
        [DEXT_WIRE_WAKE_UNREGISTER] = "WAKE_UNREGISTER",
        [DEXT_WIRE_MAP] = "MAP",
        [DEXT_WIRE_STATUS] = "STATUS",
        [DEXT_WIRE_ERROR] = "ERROR",
        [DEXT_WIRE_RING] = "RING",
    };

    if (type >= DEXT_WIRE_HELLO && type <= DEXT_WIRE_TYPE_MAX) {
        return names[type];
    }
    return "?";
}

const char *dext_wire_strerror(int err)
{
    switch (err) {
    case 0:
        return "no error";
    case DEXT_WIRE_ETRUNC:
        return "truncated message";
    case DEXT_WIRE_ELENGTH:
        return "length does not match the fields";
    case DEXT_WIRE_EMAGIC:
        return "bad magic";
    case DEXT_WIRE_EVERSION:
        return "unsupported protocol version";
    case DEXT_WIRE_ETYPE:
        return "unknown message type";
    case DEXT_WIRE_EFLAGS:
        return "bad flags";
    case DEXT_WIRE_ELIMIT:
        return "count or size over its limit";
    case DEXT_WIRE_EVALUE:
        return "bad field value";
    case DEXT_WIRE_ENOSPC:
        return "buffer too small";
    default:
        return "unknown codec error";
    }
}

/* ---------------------------------------------------------------------
 * HELLO
 * ------------------------------------------------------------------- */

int dext_wire_encode_hello(uint8_t *buf, size_t cap, uint64_t seq,
                           const DextWireHello *m)
{
    uint8_t *p = begin(buf, cap, DEXT_WIRE_VERSION_HELLO, DEXT_WIRE_HELLO, 0,
                       seq, DEXT_WIRE_HELLO_SIZE);

    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    dext_wire_put_u16(p, m->min_version);
    dext_wire_put_u16(p + 2, m->max_version);
    dext_wire_put_u32(p + 4, m->features);
    return DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_HELLO_SIZE;
}

int dext_wire_decode_hello(const uint8_t *buf, size_t len,
                           DextWireHello *out)
{
    int err = exact_len(len, DEXT_WIRE_HELLO_SIZE);

    if (err != 0) {
        return err;
    }
    out->min_version = dext_wire_get_u16(buf);
    out->max_version = dext_wire_get_u16(buf + 2);
    out->features = dext_wire_get_u32(buf + 4);
    if (out->min_version == 0 || out->min_version > out->max_version) {
        return DEXT_WIRE_EVALUE;
    }
    return 0;
}

int dext_wire_encode_hello_reply(uint8_t *buf, size_t cap, uint64_t seq,
                                 const DextWireHelloReply *m)
{
    uint8_t *p = begin(buf, cap, DEXT_WIRE_VERSION_HELLO, DEXT_WIRE_HELLO,
                       DEXT_WIRE_FLAG_REPLY, seq, DEXT_WIRE_HELLO_REPLY_SIZE);

    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    put_status(p, m->status);
    dext_wire_put_u16(p + 4, m->version);
    dext_wire_put_u16(p + 6, 0);
    dext_wire_put_u32(p + 8, m->pid);
    dext_wire_put_u32(p + 12, m->features);
    return DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_HELLO_REPLY_SIZE;
}

int dext_wire_decode_hello_reply(const uint8_t *buf, size_t len,
                                 DextWireHelloReply *out)
{
    int err = exact_len(len, DEXT_WIRE_HELLO_REPLY_SIZE);

    if (err != 0) {
        return err;
    }
    out->status = get_status(buf);
    out->version = dext_wire_get_u16(buf + 4);
    out->pid = dext_wire_get_u32(buf + 8);
    out->features = dext_wire_get_u32(buf + 12);
    if (dext_wire_get_u16(buf + 6) != 0) {
        return DEXT_WIRE_EVALUE;
    }
    /* A success must name a version; a failure must not. */
    if ((out->status == kIOReturnSuccess) != (out->version != 0)) {
        return DEXT_WIRE_EVALUE;
    }
    return 0;
}

uint16_t dext_wire_choose_version(const DextWireHello *hello)
{
    uint16_t lo = hello->min_version > DEXT_WIRE_VERSION_MIN ?
                  hello->min_version : DEXT_WIRE_VERSION_MIN;
    uint16_t hi = hello->max_version < DEXT_WIRE_VERSION_MAX ?
                  hello->max_version : DEXT_WIRE_VERSION_MAX;

    return lo <= hi ? hi : 0;
}

/* ---------------------------------------------------------------------
 * Empty requests and status-only replies
 * ------------------------------------------------------------------- */

int dext_wire_encode_empty(uint8_t *buf, size_t cap, uint16_t version,
                           uint64_t seq, uint16_t type)
{
    if (type != DEXT_WIRE_LIST && type != DEXT_WIRE_STATUS &&
        type != DEXT_WIRE_WAKE_REGISTER) {
        return DEXT_WIRE_ETYPE;
    }
    if (begin(buf, cap, version, type, 0, seq, 0) == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    return DEXT_WIRE_HEADER_SIZE;
}

int dext_wire_decode_empty(const uint8_t *buf, size_t len)
{
    return len == 0 ? 0 : DEXT_WIRE_ELENGTH;
}

int dext_wire_encode_status_only(uint8_t *buf, size_t cap, uint16_t version,
                                 uint64_t seq, uint16_t type,
                                 IOReturn status)
{
    uint8_t *p;

    if (type != DEXT_WIRE_ATTACH && type != DEXT_WIRE_WAKE_UNREGISTER &&
        type != DEXT_WIRE_ERROR && type != DEXT_WIRE_RING) {
        return DEXT_WIRE_ETYPE;
    }
    p = begin(buf, cap, version, type, DEXT_WIRE_FLAG_REPLY, seq,
              DEXT_WIRE_STATUS_ONLY_SIZE);
    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    put_status(p, status);
    return DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_STATUS_ONLY_SIZE;
}

int dext_wire_decode_status_only(const uint8_t *buf, size_t len,
                                 IOReturn *out)
{
    int err = exact_len(len, DEXT_WIRE_STATUS_ONLY_SIZE);

    if (err != 0) {
        return err;
    }
    *out = get_status(buf);
    return 0;
}

/* ---------------------------------------------------------------------
 * LIST
 * ------------------------------------------------------------------- */

int dext_wire_encode_list_reply(uint8_t *buf, size_t cap, uint16_t version,
                                uint64_t seq, const DextWireListReply *m)
{
    size_t plen;
    uint8_t *p;
    uint32_t i;

    if (m->count > DEXT_MAX_SERVICES || m->count > m->total) {
        return DEXT_WIRE_ELIMIT;
    }
    plen = DEXT_WIRE_LIST_REPLY_FIXED + (size_t)m->count * 8;
    p = begin(buf, cap, version, DEXT_WIRE_LIST, DEXT_WIRE_FLAG_REPLY, seq,
              plen);
    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    put_status(p, m->status);
    dext_wire_put_u32(p + 4, m->total);
    dext_wire_put_u32(p + 8, m->count);
    for (i = 0; i < m->count; i++) {
        dext_wire_put_u64(p + DEXT_WIRE_LIST_REPLY_FIXED + i * 8, m->ids[i]);
    }
    return (int)(DEXT_WIRE_HEADER_SIZE + plen);
}

int dext_wire_decode_list_reply(const uint8_t *buf, size_t len,
                                DextWireListReply *out)
{
    uint32_t i;

    if (len < DEXT_WIRE_LIST_REPLY_FIXED) {
        return DEXT_WIRE_ETRUNC;
    }
    out->status = get_status(buf);
    out->total = dext_wire_get_u32(buf + 4);
    out->count = dext_wire_get_u32(buf + 8);
    /* Check the count before using it to size anything. */
    if (out->count > DEXT_MAX_SERVICES || out->count > out->total) {
        return DEXT_WIRE_ELIMIT;
    }
    if (len != DEXT_WIRE_LIST_REPLY_FIXED + (size_t)out->count * 8) {
        return DEXT_WIRE_ELENGTH;
    }
    for (i = 0; i < out->count; i++) {
        out->ids[i] = dext_wire_get_u64(buf + DEXT_WIRE_LIST_REPLY_FIXED +
                                        i * 8);
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * OPEN and ATTACH
 * ------------------------------------------------------------------- */

int dext_wire_encode_open(uint8_t *buf, size_t cap, uint16_t version,
                          uint64_t seq, const DextWireOpen *m)
{
    uint8_t *p = begin(buf, cap, version, DEXT_WIRE_OPEN, 0, seq,
                       DEXT_WIRE_OPEN_SIZE);

    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    dext_wire_put_u64(p, m->service_id);
    dext_wire_put_u32(p + 8, m->type);
    dext_wire_put_u32(p + 12, 0);
    return DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_OPEN_SIZE;
}

int dext_wire_decode_open(const uint8_t *buf, size_t len, DextWireOpen *out)
{
    int err = exact_len(len, DEXT_WIRE_OPEN_SIZE);

    if (err != 0) {
        return err;
    }
    out->service_id = dext_wire_get_u64(buf);
    out->type = dext_wire_get_u32(buf + 8);
    if (dext_wire_get_u32(buf + 12) != 0) {
        return DEXT_WIRE_EVALUE;
    }
    return 0;
}

int dext_wire_encode_open_reply(uint8_t *buf, size_t cap, uint16_t version,
                                uint64_t seq, const DextWireOpenReply *m)
{
    uint8_t *p = begin(buf, cap, version, DEXT_WIRE_OPEN,
                       DEXT_WIRE_FLAG_REPLY, seq, DEXT_WIRE_OPEN_REPLY_SIZE);

    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    put_status(p, m->status);
    memcpy(p + 4, m->token, DEXT_WIRE_TOKEN_SIZE);
    return DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_OPEN_REPLY_SIZE;
}

int dext_wire_decode_open_reply(const uint8_t *buf, size_t len,
                                DextWireOpenReply *out)
{
    int err = exact_len(len, DEXT_WIRE_OPEN_REPLY_SIZE);

    if (err != 0) {
        return err;
    }
    out->status = get_status(buf);
    memcpy(out->token, buf + 4, DEXT_WIRE_TOKEN_SIZE);
    return 0;
}

int dext_wire_encode_attach(uint8_t *buf, size_t cap, uint16_t version,
                            uint64_t seq, const DextWireAttach *m)
{
    uint8_t *p = begin(buf, cap, version, DEXT_WIRE_ATTACH, 0, seq,
                       DEXT_WIRE_ATTACH_SIZE);

    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    memcpy(p, m->token, DEXT_WIRE_TOKEN_SIZE);
    return DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_ATTACH_SIZE;
}

int dext_wire_decode_attach(const uint8_t *buf, size_t len,
                            DextWireAttach *out)
{
    int err = exact_len(len, DEXT_WIRE_ATTACH_SIZE);

    if (err != 0) {
        return err;
    }
    memcpy(out->token, buf, DEXT_WIRE_TOKEN_SIZE);
    return 0;
}

/* ---------------------------------------------------------------------
 * CALL and CALL_ASYNC
 * ------------------------------------------------------------------- */

int dext_wire_encode_call(uint8_t *buf, size_t cap, uint16_t version,
                          uint64_t seq, bool async, const DextWireCall *m)
{
    size_t fixed = async ? DEXT_WIRE_CALL_ASYNC_FIXED : DEXT_WIRE_CALL_FIXED;
    size_t plen;
    uint8_t *p;
    uint32_t i;

    if (m->scalar_in_cnt > DEXT_MAX_SCALARS ||
        m->scalar_out_cap > DEXT_MAX_SCALARS ||
        m->struct_in_len > DEXT_MAX_STRUCT ||
        m->struct_out_cap > DEXT_MAX_STRUCT ||
        (m->struct_in_len > 0 && m->struct_in == NULL)) {
        return DEXT_WIRE_ELIMIT;
    }
    plen = fixed + (size_t)m->scalar_in_cnt * 8 + m->struct_in_len;
    p = begin(buf, cap, version, async ? DEXT_WIRE_CALL_ASYNC : DEXT_WIRE_CALL,
              0, seq, plen);
    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    if (async) {
        dext_wire_put_u32(p, m->port);
        p += 4;
    }
    dext_wire_put_u32(p, m->selector);
    dext_wire_put_u32(p + 4, m->scalar_in_cnt);
    dext_wire_put_u32(p + 8, m->scalar_out_cap);
    dext_wire_put_u32(p + 12, m->struct_in_len);
    dext_wire_put_u32(p + 16, m->struct_out_cap);
    p += DEXT_WIRE_CALL_FIXED;
    for (i = 0; i < m->scalar_in_cnt; i++) {
        dext_wire_put_u64(p, m->scalar_in[i]);
        p += 8;
    }
    if (m->struct_in_len > 0) {
        memcpy(p, m->struct_in, m->struct_in_len);
    }
    return (int)(DEXT_WIRE_HEADER_SIZE + plen);
}

int dext_wire_decode_call(const uint8_t *buf, size_t len, bool async,
                          DextWireCall *out)
{
    size_t fixed = async ? DEXT_WIRE_CALL_ASYNC_FIXED : DEXT_WIRE_CALL_FIXED;
    const uint8_t *p = buf;
    uint32_t i;

    if (len < fixed) {
        return DEXT_WIRE_ETRUNC;
    }
    out->port = 0;
    if (async) {
        out->port = dext_wire_get_u32(p);
        p += 4;
    }
    out->selector = dext_wire_get_u32(p);
    out->scalar_in_cnt = dext_wire_get_u32(p + 4);
    out->scalar_out_cap = dext_wire_get_u32(p + 8);
    out->struct_in_len = dext_wire_get_u32(p + 12);
    out->struct_out_cap = dext_wire_get_u32(p + 16);
    p += DEXT_WIRE_CALL_FIXED;
    if (out->scalar_in_cnt > DEXT_MAX_SCALARS ||
        out->scalar_out_cap > DEXT_MAX_SCALARS ||
        out->struct_in_len > DEXT_MAX_STRUCT ||
        out->struct_out_cap > DEXT_MAX_STRUCT) {
        return DEXT_WIRE_ELIMIT;
    }
    /* Sizes are bounded above, so this sum cannot overflow. */
    if (len != fixed + (size_t)out->scalar_in_cnt * 8 + out->struct_in_len) {
        return DEXT_WIRE_ELENGTH;
    }
    for (i = 0; i < out->scalar_in_cnt; i++) {
        out->scalar_in[i] = dext_wire_get_u64(p);
        p += 8;
    }
    out->struct_in = out->struct_in_len ? p : NULL;
    return 0;
}

int dext_wire_encode_call_reply(uint8_t *buf, size_t cap, uint16_t version,
                                uint64_t seq, bool async,
                                const DextWireCallReply *m)
{
    size_t plen;
    uint8_t *p;
    uint32_t i;

    if (m->scalar_out_cnt > DEXT_MAX_SCALARS ||
        m->struct_out_len > DEXT_MAX_STRUCT ||
        (m->struct_out_len > 0 && m->struct_out == NULL)) {
        return DEXT_WIRE_ELIMIT;
    }
    plen = DEXT_WIRE_CALL_REPLY_FIXED + (size_t)m->scalar_out_cnt * 8 +
           m->struct_out_len;
    p = begin(buf, cap, version, async ? DEXT_WIRE_CALL_ASYNC : DEXT_WIRE_CALL,
              DEXT_WIRE_FLAG_REPLY, seq, plen);
    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    put_status(p, m->status);
    dext_wire_put_u32(p + 4, m->scalar_out_cnt);
    dext_wire_put_u32(p + 8, m->struct_out_len);
    p += DEXT_WIRE_CALL_REPLY_FIXED;
    for (i = 0; i < m->scalar_out_cnt; i++) {
        dext_wire_put_u64(p, m->scalar_out[i]);
        p += 8;
    }
    if (m->struct_out_len > 0) {
        memcpy(p, m->struct_out, m->struct_out_len);
    }
    return (int)(DEXT_WIRE_HEADER_SIZE + plen);
}

int dext_wire_decode_call_reply(const uint8_t *buf, size_t len,
                                DextWireCallReply *out)
{
    const uint8_t *p;
    uint32_t i;

    if (len < DEXT_WIRE_CALL_REPLY_FIXED) {
        return DEXT_WIRE_ETRUNC;
    }
    out->status = get_status(buf);
    out->scalar_out_cnt = dext_wire_get_u32(buf + 4);
    out->struct_out_len = dext_wire_get_u32(buf + 8);
    if (out->scalar_out_cnt > DEXT_MAX_SCALARS ||
        out->struct_out_len > DEXT_MAX_STRUCT) {
        return DEXT_WIRE_ELIMIT;
    }
    if (len != DEXT_WIRE_CALL_REPLY_FIXED + (size_t)out->scalar_out_cnt * 8 +
               out->struct_out_len) {
        return DEXT_WIRE_ELENGTH;
    }
    p = buf + DEXT_WIRE_CALL_REPLY_FIXED;
    for (i = 0; i < out->scalar_out_cnt; i++) {
        out->scalar_out[i] = dext_wire_get_u64(p);
        p += 8;
    }
    out->struct_out = out->struct_out_len ? p : NULL;
    return 0;
}

/* ---------------------------------------------------------------------
 * Wake ports
 * ------------------------------------------------------------------- */

int dext_wire_encode_wake_reply(uint8_t *buf, size_t cap, uint16_t version,
                                uint64_t seq, const DextWireWakeReply *m)
{
    uint8_t *p = begin(buf, cap, version, DEXT_WIRE_WAKE_REGISTER,
                       DEXT_WIRE_FLAG_REPLY, seq, DEXT_WIRE_WAKE_REPLY_SIZE);

    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    put_status(p, m->status);
    dext_wire_put_u32(p + 4, m->port);
    return DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_WAKE_REPLY_SIZE;
}

int dext_wire_decode_wake_reply(const uint8_t *buf, size_t len,
                                DextWireWakeReply *out)
{
    int err = exact_len(len, DEXT_WIRE_WAKE_REPLY_SIZE);

    if (err != 0) {
        return err;
    }
    out->status = get_status(buf);
    out->port = dext_wire_get_u32(buf + 4);
    if (out->status == kIOReturnSuccess && out->port == 0) {
        return DEXT_WIRE_EVALUE;
    }
    return 0;
}

/* A request whose payload is one u32 (WAKE_UNREGISTER, RING). */
static int encode_u32_request(uint8_t *buf, size_t cap, uint16_t version,
                              uint64_t seq, uint16_t type, uint32_t v)
{
    uint8_t *p = begin(buf, cap, version, type, 0, seq, DEXT_WIRE_PORT_SIZE);

    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    dext_wire_put_u32(p, v);
    return DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_PORT_SIZE;
}

int dext_wire_encode_wake_unregister(uint8_t *buf, size_t cap,
                                     uint16_t version, uint64_t seq,
                                     uint32_t port)
{
    return encode_u32_request(buf, cap, version, seq,
                              DEXT_WIRE_WAKE_UNREGISTER, port);
}

int dext_wire_encode_ring(uint8_t *buf, size_t cap, uint16_t version,
                          uint64_t seq, uint32_t spin_us)
{
    return encode_u32_request(buf, cap, version, seq, DEXT_WIRE_RING,
                              spin_us);
}

int dext_wire_decode_wake_unregister(const uint8_t *buf, size_t len,
                                     uint32_t *out)
{
    int err = exact_len(len, DEXT_WIRE_PORT_SIZE);

    if (err != 0) {
        return err;
    }
    *out = dext_wire_get_u32(buf);
    return 0;
}

int dext_wire_decode_ring(const uint8_t *buf, size_t len, uint32_t *spin_us)
{
    return dext_wire_decode_wake_unregister(buf, len, spin_us);
}

/* ---------------------------------------------------------------------
 * MAP
 * ------------------------------------------------------------------- */

int dext_wire_encode_map(uint8_t *buf, size_t cap, uint16_t version,
                         uint64_t seq, const DextWireMap *m)
{
    uint8_t *p = begin(buf, cap, version, DEXT_WIRE_MAP, 0, seq,
                       DEXT_WIRE_MAP_SIZE);

    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    dext_wire_put_u32(p, m->mem_type);
    dext_wire_put_u32(p + 4, m->options);
    return DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_MAP_SIZE;
}

int dext_wire_decode_map(const uint8_t *buf, size_t len, DextWireMap *out)
{
    int err = exact_len(len, DEXT_WIRE_MAP_SIZE);

    if (err != 0) {
        return err;
    }
    out->mem_type = dext_wire_get_u32(buf);
    out->options = dext_wire_get_u32(buf + 4);
    return 0;
}

int dext_wire_encode_map_reply(uint8_t *buf, size_t cap, uint16_t version,
                               uint64_t seq, const DextWireMapReply *m)
{
    uint8_t *p = begin(buf, cap, version, DEXT_WIRE_MAP, DEXT_WIRE_FLAG_REPLY,
                       seq, DEXT_WIRE_MAP_REPLY_SIZE);

    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    put_status(p, m->status);
    dext_wire_put_u32(p + 4, m->flags);
    dext_wire_put_u64(p + 8, m->offset);
    dext_wire_put_u64(p + 16, m->size);
    return DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_MAP_REPLY_SIZE;
}

int dext_wire_decode_map_reply(const uint8_t *buf, size_t len,
                               DextWireMapReply *out)
{
    int err = exact_len(len, DEXT_WIRE_MAP_REPLY_SIZE);

    if (err != 0) {
        return err;
    }
    out->status = get_status(buf);
    out->flags = dext_wire_get_u32(buf + 4);
    out->offset = dext_wire_get_u64(buf + 8);
    out->size = dext_wire_get_u64(buf + 16);
    if (out->flags & ~DEXT_WIRE_MAP_WRITABLE) {
        return DEXT_WIRE_EVALUE;
    }
    if (out->status == kIOReturnSuccess && out->size == 0) {
        return DEXT_WIRE_EVALUE;
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * STATUS
 * ------------------------------------------------------------------- */

/*
 * The counters follow the fixed fields back to back, each at its own
 * width, in the order of libdext/status-counters.h.
 */
#define STATUS_COUNTERS_OFFSET 24

static size_t put_uint32_t(uint8_t *p, uint32_t v)
{
    dext_wire_put_u32(p, v);
    return 4;
}

static size_t put_uint64_t(uint8_t *p, uint64_t v)
{
    dext_wire_put_u64(p, v);
    return 8;
}

static size_t get_uint32_t(const uint8_t *p, uint32_t *v)
{
    *v = dext_wire_get_u32(p);
    return 4;
}

static size_t get_uint64_t(const uint8_t *p, uint64_t *v)
{
    *v = dext_wire_get_u64(p);
    return 8;
}

#define PUT_COUNTER(type, name, doc, ...) off += put_##type(p + off, m->name);
#define GET_COUNTER(type, name, doc, ...) \
    off += get_##type(buf + off, &out->name);
#define COUNTER_SIZE(type, name, doc, ...) + sizeof(type)

_Static_assert(STATUS_COUNTERS_OFFSET
               APPLE_DEXT_STATUS_COUNTERS(COUNTER_SIZE, _) ==
               DEXT_WIRE_STATUS_REPLY_SIZE,
               "the STATUS reply's size and its counters disagree");

int dext_wire_encode_status_reply(uint8_t *buf, size_t cap, uint16_t version,
                                  uint64_t seq, const DextWireStatusReply *m)
{
    size_t off;
    uint8_t *p = begin(buf, cap, version, DEXT_WIRE_STATUS,
                       DEXT_WIRE_FLAG_REPLY, seq,
                       DEXT_WIRE_STATUS_REPLY_SIZE);

    if (p == NULL) {
        return DEXT_WIRE_ENOSPC;
    }
    put_status(p, m->status);
    dext_wire_put_u16(p + 4, m->version);
    dext_wire_put_u16(p + 6, 0);
    dext_wire_put_u32(p + 8, m->pid);
    dext_wire_put_u32(p + 12, m->channels);
    dext_wire_put_u64(p + 16, m->uptime_ms);
    off = STATUS_COUNTERS_OFFSET;
    APPLE_DEXT_STATUS_COUNTERS(PUT_COUNTER, _)
    return DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_STATUS_REPLY_SIZE;
}

int dext_wire_decode_status_reply(const uint8_t *buf, size_t len,
                                  DextWireStatusReply *out)
{
    int err = exact_len(len, DEXT_WIRE_STATUS_REPLY_SIZE);
    size_t off;

    if (err != 0) {
        return err;
    }
    if (dext_wire_get_u16(buf + 6) != 0) {
        return DEXT_WIRE_EVALUE;
    }
    out->status = get_status(buf);
    out->version = dext_wire_get_u16(buf + 4);
    out->pid = dext_wire_get_u32(buf + 8);
    out->channels = dext_wire_get_u32(buf + 12);
    out->uptime_ms = dext_wire_get_u64(buf + 16);
    off = STATUS_COUNTERS_OFFSET;
    APPLE_DEXT_STATUS_COUNTERS(GET_COUNTER, _)
    return 0;
}
