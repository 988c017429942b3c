/*
 * SPDX-License-Identifier: MIT
 *
 * Hostile suite, family "frames": what a client can put in a message.
 *
 * Garbage, oversized and truncated frames, headers that lie about their
 * length, replies sent to the daemon, requests before HELLO, every
 * message type with a payload of the wrong size or with values out of
 * range, a client that stops reading its replies, and a flood of refused
 * requests on one channel (the log must stay rate-limited, decision 10).
 *
 * What dextd must do (docs/protocol.md): a message that breaks the
 * protocol gets at most an ERROR, then the channel is closed; a well-
 * formed request with bad values gets its reply and the channel lives
 * on.  Never silence: a frame that is neither answered nor followed by a
 * hang-up within HOSTILE_ANSWER_MS fails.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edu.h"
#include "hostile.h"
#include "hostile-wire.h"
#include "protocol/dext-selectors.h"

/* Garbage frames per attack; enough to cover lengths and both states. */
#define GARBAGE_FRAMES  200
#define PREFIX_FRAMES   100
#define FLOOD_REQUESTS  1000

/* xorshift64: repeatable garbage, seeded per attack. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_random(uint8_t *p, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] = (uint8_t)rnd();
    }
}

/*
 * Send one message on a fresh channel (after HELLO if @hello) and
 * require dextd to drop the channel, with at most an ERROR first.
 */
static void expect_drop(const char *what, bool hello, const void *buf,
                        size_t len, const int *fds, int nfds)
{
    RawChan *c = hello ? raw_connect_hello() : raw_connect();
    unsigned answered;

    if (!HCHECK(c != NULL, "%s: no channel to dextd (%s)", what,
                strerror(errno))) {
        return;
    }
    if (raw_send(c, buf, len, fds, nfds) != (ssize_t)len) {
        /* The kernel refused it (too big): nothing reached dextd. */
        raw_close(c);
        return;
    }
    HCHECK(raw_dropped(c, HOSTILE_ANSWER_MS, NULL, &answered),
           "%s: dextd did not close the channel within %u ms", what,
           HOSTILE_ANSWER_MS);
    HCHECK(answered == 0, "%s: dextd answered it as a request", what);
    raw_close(c);
}

/* A header for @type with @len payload bytes, version 1, seq 7. */
static size_t header(uint8_t *buf, uint16_t type, uint32_t flags,
                     uint32_t len)
{
    dext_wire_put_u32(buf, DEXT_WIRE_MAGIC);
    dext_wire_put_u16(buf + 4, 1);
    dext_wire_put_u16(buf + 6, type);
    dext_wire_put_u32(buf + 8, flags);
    dext_wire_put_u32(buf + 12, len);
    dext_wire_put_u64(buf + 16, 7);
    return DEXT_WIRE_HEADER_SIZE;
}

/* Correct payload size of each request type; -1 for variable ones. */
static int request_size(uint16_t type)
{
    switch (type) {
    case DEXT_WIRE_HELLO:
        return DEXT_WIRE_HELLO_SIZE;
    case DEXT_WIRE_LIST:
    case DEXT_WIRE_STATUS:
    case DEXT_WIRE_WAKE_REGISTER:
        return 0;
    case DEXT_WIRE_OPEN:
        return DEXT_WIRE_OPEN_SIZE;
    case DEXT_WIRE_ATTACH:
        return DEXT_WIRE_ATTACH_SIZE;
    case DEXT_WIRE_WAKE_UNREGISTER:
        return DEXT_WIRE_PORT_SIZE;
    case DEXT_WIRE_MAP:
        return DEXT_WIRE_MAP_SIZE;
    case DEXT_WIRE_CALL:
        return DEXT_WIRE_CALL_FIXED;
    case DEXT_WIRE_CALL_ASYNC:
        return DEXT_WIRE_CALL_ASYNC_FIXED;
    default:
        return -1;
    }
}

static void attack_garbage(void)
{
    static uint8_t buf[DEXT_WIRE_MAX_MSG];
    char what[96];
    unsigned i;

    rng = 0x6a09e667f3bcc908ull;
    for (i = 0; i < GARBAGE_FRAMES && !hostile_failed(); i++) {
        size_t len = 1 + rnd() % sizeof(buf);

        fill_random(buf, len);
        if (len >= 4 && dext_wire_get_u32(buf) == DEXT_WIRE_MAGIC) {
            buf[0] ^= 0xff;
        }
        snprintf(what, sizeof(what), "garbage #%u (%zu bytes)", i, len);
        expect_drop(what, i % 2, buf, len, NULL, 0);
    }
    /*
     * A valid magic and version, the rest random: now the header checks
     * and the payload decoders are what must hold.  Such a frame may by
     * chance be well formed; it must then be answered, never ignored.
     */
    for (i = 0; i < PREFIX_FRAMES && !hostile_failed(); i++) {
        size_t len = DEXT_WIRE_HEADER_SIZE + rnd() % 64;
        RawChan *c = raw_connect_hello();
        ssize_t n;

        if (!HCHECK(c != NULL, "no channel to dextd")) {
            break;
        }
        fill_random(buf, len);
        dext_wire_put_u32(buf, DEXT_WIRE_MAGIC);
        dext_wire_put_u16(buf + 4, 1);
        dext_wire_put_u16(buf + 6, (uint16_t)(2 + rnd() % 10));
        dext_wire_put_u32(buf + 8, 0);
        if (i % 2) {
            /* Half of them with a length that matches what was sent. */
            dext_wire_put_u32(buf + 12, (uint32_t)(len -
                                                   DEXT_WIRE_HEADER_SIZE));
        }
        raw_send(c, buf, len, NULL, 0);
        n = raw_recv(c, HOSTILE_ANSWER_MS, NULL);
        HCHECK(n >= 0, "header-prefixed frame #%u (type %u, %zu bytes): "
               "neither answered nor dropped within %u ms", i,
               dext_wire_get_u16(buf + 6), len, HOSTILE_ANSWER_MS);
        raw_close(c);
    }
    hostile_note("%u garbage frames, %u with a valid header prefix",
                 GARBAGE_FRAMES, PREFIX_FRAMES);
}

static void attack_oversized(void)
{
    static const size_t sizes[] = {
        DEXT_WIRE_MAX_MSG + 1, 8192, 65536, 200000,
    };
    static uint8_t buf[200000];
    char what[64];
    size_t i;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        memset(buf, 0x41, sizes[i]);
        /* A header that tells the truth about its size. */
        header(buf, DEXT_WIRE_CALL, 0,
               (uint32_t)(sizes[i] - DEXT_WIRE_HEADER_SIZE));
        snprintf(what, sizeof(what), "%zu-byte CALL", sizes[i]);
        expect_drop(what, true, buf, sizes[i], NULL, 0);
        snprintf(what, sizeof(what), "%zu-byte HELLO", sizes[i]);
        header(buf, DEXT_WIRE_HELLO, 0,
               (uint32_t)(sizes[i] - DEXT_WIRE_HEADER_SIZE));
        expect_drop(what, false, buf, sizes[i], NULL, 0);
    }
}

static void attack_truncated(void)
{
    static const size_t cuts[] = { 1, 4, 8, 12, 16, 23 };
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    DextWireOpen op = { .service_id = hostile_service(HOSTILE_EDU_BDF) };
    char what[64];
    size_t i;
    int n;

    for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        header(buf, DEXT_WIRE_STATUS, 0, 0);
        snprintf(what, sizeof(what), "header cut to %zu bytes", cuts[i]);
        expect_drop(what, true, buf, cuts[i], NULL, 0);
        expect_drop(what, false, buf, cuts[i], NULL, 0);
    }
    /* A whole OPEN, cut inside its payload. */
    n = dext_wire_encode_open(buf, sizeof(buf), 1, 7, &op);
    expect_drop("OPEN cut by one byte", true, buf, (size_t)n - 1, NULL, 0);
    expect_drop("OPEN header only", true, buf, DEXT_WIRE_HEADER_SIZE, NULL,
                0);
    /* An empty datagram reads as EOF on a SEQPACKET socket: dropped. */
    expect_drop("empty message", true, buf, 0, NULL, 0);
}

static void attack_lying_length(void)
{
    static const uint32_t lies[] = {
        1, 4, DEXT_WIRE_MAX_PAYLOAD, DEXT_WIRE_MAX_PAYLOAD + 1, 0x7fffffff,
        0xffffffff,
    };
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    DextWireOpen op = { .service_id = hostile_service(HOSTILE_EDU_BDF) };
    char what[80];
    size_t i;
    int n;

    for (i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        /* An empty STATUS whose header promises a payload. */
        header(buf, DEXT_WIRE_STATUS, 0, lies[i]);
        snprintf(what, sizeof(what), "STATUS claiming %u payload bytes",
                 lies[i]);
        expect_drop(what, true, buf, DEXT_WIRE_HEADER_SIZE, NULL, 0);
        /* An OPEN whose header says less or more than was sent. */
        n = dext_wire_encode_open(buf, sizeof(buf), 1, 7, &op);
        dext_wire_put_u32(buf + 12, lies[i]);
        snprintf(what, sizeof(what), "OPEN claiming %u payload bytes",
                 lies[i]);
        expect_drop(what, true, buf, (size_t)n, NULL, 0);
    }
    /* More bytes than the header admits. */
    n = dext_wire_encode_empty(buf, sizeof(buf), 1, 7, DEXT_WIRE_LIST);
    memset(buf + n, 0, 16);
    expect_drop("LIST with 16 bytes it does not admit", true, buf,
                (size_t)n + 16, NULL, 0);
}

static void attack_bad_header(void)
{
    uint8_t buf[64];
    char what[80];
    unsigned i;

    static const struct {
        const char *what;
        unsigned off, width;
        uint32_t value;
    } bad[] = {
        { "wrong magic", 0, 4, 0x74786565 },
        { "magic byte-swapped", 0, 4, 0x64657874 },
        { "version 0", 4, 2, 0 },
        { "version 2", 4, 2, 2 },
        { "version 0xffff", 4, 2, 0xffff },
        { "type 0", 6, 2, 0 },
        { "type past the last", 6, 2, DEXT_WIRE_TYPE_MAX + 1 },
        { "type 0xffff", 6, 2, 0xffff },
        { "unknown flag 0x2", 8, 4, 0x2 },
        { "unknown flag 0x80000000", 8, 4, 0x80000000u },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dext_wire_encode_empty(buf, sizeof(buf), 1, 7, DEXT_WIRE_STATUS);
        if (bad[i].width == 4) {
            dext_wire_put_u32(buf + bad[i].off, bad[i].value);
        } else {
            dext_wire_put_u16(buf + bad[i].off, (uint16_t)bad[i].value);
        }
        snprintf(what, sizeof(what), "STATUS with %s", bad[i].what);
        expect_drop(what, true, buf, DEXT_WIRE_HEADER_SIZE, NULL, 0);
        expect_drop(what, false, buf, DEXT_WIRE_HEADER_SIZE, NULL, 0);
    }
    /* ERROR is reply-only: as a request it is malformed. */
    i = (unsigned)dext_wire_encode_status_only(buf, sizeof(buf), 1, 7,
                                               DEXT_WIRE_ERROR, 0);
    dext_wire_put_u32(buf + 8, 0);
    expect_drop("ERROR without the reply flag", true, buf, i, NULL, 0);
}

/* Encode a well-formed reply of @type into @buf; its length. */
static int encode_reply(uint8_t *buf, size_t cap, uint16_t type)
{
    DextWireHelloReply hr = { .status = 0, .version = 1 };
    DextWireListReply lr = { 0 };
    DextWireOpenReply orp = { 0 };
    DextWireCallReply cr = { 0 };
    DextWireWakeReply wr = { .status = 0, .port = 1 };
    DextWireMapReply mr = { 0 };
    DextWireStatusReply sr = { 0 };

    switch (type) {
    case DEXT_WIRE_HELLO:
        return dext_wire_encode_hello_reply(buf, cap, 7, &hr);
    case DEXT_WIRE_LIST:
        return dext_wire_encode_list_reply(buf, cap, 1, 7, &lr);
    case DEXT_WIRE_OPEN:
        return dext_wire_encode_open_reply(buf, cap, 1, 7, &orp);
    case DEXT_WIRE_CALL:
    case DEXT_WIRE_CALL_ASYNC:
        return dext_wire_encode_call_reply(buf, cap, 1, 7,
                                           type == DEXT_WIRE_CALL_ASYNC,
                                           &cr);
    case DEXT_WIRE_WAKE_REGISTER:
        return dext_wire_encode_wake_reply(buf, cap, 1, 7, &wr);
    case DEXT_WIRE_MAP:
        return dext_wire_encode_map_reply(buf, cap, 1, 7, &mr);
    case DEXT_WIRE_STATUS:
        return dext_wire_encode_status_reply(buf, cap, 1, 7, &sr);
    default:
        /* ATTACH, WAKE_UNREGISTER and ERROR replies are a status only. */
        return dext_wire_encode_status_only(buf, cap, 1, 7, type, 0);
    }
}

static void attack_replies(void)
{
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    char what[64];
    uint16_t t;

    for (t = DEXT_WIRE_HELLO; t <= DEXT_WIRE_TYPE_MAX; t++) {
        int n = encode_reply(buf, sizeof(buf), t);

        if (!HCHECK(n > 0, "cannot encode a %s reply",
                    dext_wire_type_name(t))) {
            continue;
        }
        snprintf(what, sizeof(what), "%s reply sent to dextd",
                 dext_wire_type_name(t));
        expect_drop(what, true, buf, (size_t)n, NULL, 0);
        expect_drop(what, false, buf, (size_t)n, NULL, 0);
    }
}

static void attack_before_hello(void)
{
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    int sp[2] = { -1, -1 };
    uint16_t t;

    if (!HCHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
                           sp) == 0, "socketpair: %s", strerror(errno))) {
        return;
    }
    for (t = DEXT_WIRE_LIST; t < DEXT_WIRE_ERROR; t++) {
        int n = raw_encode_any(buf, sizeof(buf), t, 7);
        RawChan *c = raw_connect();
        IOReturn err = 0;

        if (!HCHECK(c != NULL && n > 0, "no channel")) {
            break;
        }
        raw_send(c, buf, (size_t)n, &sp[0],
                 t == DEXT_WIRE_WAKE_REGISTER ? 1 : 0);
        HCHECK(raw_dropped(c, HOSTILE_ANSWER_MS, &err, NULL) &&
               err != kIOReturnSuccess && err != 0,
               "%s before HELLO: want an ERROR and a hang-up, got ERROR "
               "0x%x, %s", dext_wire_type_name(t), err,
               c->hung_up ? "hung up" : "channel still open");
        raw_close(c);
    }
    close(sp[0]);
    close(sp[1]);
}

/*
 * Every request type with a payload one byte short, one byte long,
 * empty and full: the header is right about the length, the payload
 * decoder is what is tested.
 */
static void attack_bad_payload_sizes(void)
{
    static uint8_t buf[DEXT_WIRE_MAX_MSG];
    size_t lens[4];
    char what[96];
    uint16_t t;
    int i;

    for (t = DEXT_WIRE_HELLO; t < DEXT_WIRE_ERROR; t++) {
        int good = request_size(t);

        lens[0] = good > 0 ? (size_t)good - 1 : 1;
        lens[1] = (size_t)good + 1;
        lens[2] = good > 0 ? 0 : 2;
        lens[3] = DEXT_WIRE_MAX_PAYLOAD;
        for (i = 0; i < 4; i++) {
            /* CALL payloads are variable: only the fixed part is short. */
            if ((t == DEXT_WIRE_CALL || t == DEXT_WIRE_CALL_ASYNC) &&
                i % 2 == 1) {
                continue;
            }
            memset(buf, 0, sizeof(buf));
            header(buf, t, 0, (uint32_t)lens[i]);
            memset(buf + DEXT_WIRE_HEADER_SIZE, 0xee, lens[i]);
            snprintf(what, sizeof(what), "%s with a %zu-byte payload",
                     dext_wire_type_name(t), lens[i]);
            expect_drop(what, t != DEXT_WIRE_HELLO, buf,
                        DEXT_WIRE_HEADER_SIZE + lens[i], NULL, 0);
        }
    }
}

/* A request that must be answered with a failure; the channel lives on. */
static void expect_refusal(RawChan *c, const char *what, IOReturn got)
{
    DextWireStatusReply st;

    HCHECK(got != kIOReturnSuccess && got != RAW_NO_ANSWER &&
           got != RAW_HUNG_UP && got != RAW_GARBLED,
           "%s: want a refusal, got 0x%x", what, got);
    HCHECK(raw_status(c, &st) == kIOReturnSuccess,
           "%s: the channel did not survive a well-formed request", what);
}

static void attack_bad_values(void)
{
    uint8_t token[DEXT_WIRE_TOKEN_SIZE] = { 0 };
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    DextWireHello hello;
    DextWireCall call;
    DextWireMapReply mr;
    uint64_t in[DEXT_MAX_SCALARS] = { 0 };
    RawChan *c = raw_connect_hello();
    IOReturn st;
    int fd, n;

    if (!HCHECK(c != NULL, "no channel")) {
        return;
    }
    /* Without a session. */
    expect_refusal(c, "CALL without a session",
                   raw_call(c, kDextSelectorGetIdentity, NULL, 0, in, 6));
    expect_refusal(c, "MAP without a session",
                   raw_map(c, kDextMemoryTypeDMABuffer, &mr, &fd));
    expect_refusal(c, "WAKE_UNREGISTER without a session",
                   raw_wake_unregister(c, 1));
    expect_refusal(c, "ATTACH with a zero token", raw_attach(c, token));
    expect_refusal(c, "OPEN of service 0", raw_open(c, 0, NULL));
    expect_refusal(c, "OPEN of service ~0", raw_open(c, ~0ull, NULL));

    /* With one. */
    st = raw_open(c, hostile_service(HOSTILE_EDU_BDF), NULL);
    if (HCHECK(st == kIOReturnSuccess, "OPEN edu: 0x%x", st)) {
        static const uint32_t sels[] = {
            kDextSelectorContractCount, 63, 67, 0x7fffffff, 0xffffffff,
        };
        size_t i;

        expect_refusal(c, "second OPEN",
                       raw_open(c, hostile_service(HOSTILE_EDU_BDF), NULL));
        for (i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
            expect_refusal(c, "unknown selector",
                           raw_call(c, sels[i], in, 16, in, 16));
        }
        expect_refusal(c, "GetIdentity with no room for its outputs",
                       raw_call(c, kDextSelectorGetIdentity, NULL, 0, in,
                                0));
        expect_refusal(c, "MMIO read with too few inputs",
                       raw_call(c, kDextSelectorMMIORead, in, 1, in, 1));
        in[0] = 0;
        in[1] = ~0ull - 3;
        in[2] = 4;
        expect_refusal(c, "MMIO read at offset 2^64-4",
                       raw_call(c, kDextSelectorMMIORead, in, 3, in, 1));
        in[1] = 0;
        in[2] = 3;
        expect_refusal(c, "MMIO read of width 3",
                       raw_call(c, kDextSelectorMMIORead, in, 3, in, 1));
        in[0] = 99;
        in[2] = 4;
        expect_refusal(c, "MMIO read of memory index 99",
                       raw_call(c, kDextSelectorMMIORead, in, 3, in, 1));
        in[0] = 0x1000;
        in[1] = 4;
        expect_refusal(c, "config read past config space",
                       raw_call(c, kDextSelectorConfigRead, in, 2, in, 1));
        expect_refusal(c, "MAP type 0xffff", raw_map(c, 0xffff, &mr, &fd));
        expect_refusal(c, "MAP type 8", raw_map(c, 8, &mr, &fd));
        expect_refusal(c, "MAP of an interrupt page never set up",
                       raw_map(c, kDextMemoryTypeInterruptPage, &mr, &fd));
        expect_refusal(c, "MAP of a DMA buffer never allocated",
                       raw_map(c, kDextMemoryTypeDMABuffer, &mr, &fd));
        expect_refusal(c, "WAKE_UNREGISTER of port 0",
                       raw_wake_unregister(c, 0));
        expect_refusal(c, "WAKE_UNREGISTER of port 12345",
                       raw_wake_unregister(c, 12345));
        expect_refusal(c, "WAKE_REGISTER without an fd",
                       raw_wake_register(c, -1, NULL));
        memset(&call, 0, sizeof(call));
        call.selector = kDextSelectorWaitInterrupt;
        call.port = 12345;
        expect_refusal(c, "CALL_ASYNC to an unknown port",
                       raw_call_full(c, true, &call, NULL));
        call.port = 0;
        expect_refusal(c, "CALL_ASYNC to port 0",
                       raw_call_full(c, true, &call, NULL));
        call.selector = kDextSelectorWaitInterrupt;
        expect_refusal(c, "WaitInterrupt as a synchronous CALL",
                       raw_call_full(c, false, &call, NULL));
        expect_refusal(c, "ATTACH on a channel with a session",
                       raw_attach(c, token));
    }

    /* Limits the encoder would refuse, written by hand: dropped. */
    memset(&call, 0, sizeof(call));
    n = dext_wire_encode_call(buf, sizeof(buf), 1, 7, false, &call);
    dext_wire_put_u32(buf + DEXT_WIRE_HEADER_SIZE + 4, DEXT_MAX_SCALARS + 1);
    expect_drop("CALL with 17 scalar inputs announced", true, buf, (size_t)n,
                NULL, 0);
    n = dext_wire_encode_call(buf, sizeof(buf), 1, 7, false, &call);
    dext_wire_put_u32(buf + DEXT_WIRE_HEADER_SIZE + 12, 0xffffffff);
    expect_drop("CALL with struct_in_len 2^32-1", true, buf, (size_t)n, NULL,
                0);
    n = dext_wire_encode_call(buf, sizeof(buf), 1, 7, false, &call);
    dext_wire_put_u32(buf + DEXT_WIRE_HEADER_SIZE + 8, 0xffffffff);
    dext_wire_put_u32(buf + DEXT_WIRE_HEADER_SIZE + 16, 0xffffffff);
    expect_drop("CALL asking for 2^32-1 outputs", true, buf, (size_t)n,
                NULL, 0);

    /* HELLO games. */
    hello = (DextWireHello){ 2, 1, 0 };
    n = dext_wire_encode_hello(buf, sizeof(buf), 7, &hello);
    if (n < 0) {
        /* The encoder checks min <= max: write it by hand. */
        hello = (DextWireHello){ 1, 1, 0 };
        n = dext_wire_encode_hello(buf, sizeof(buf), 7, &hello);
        dext_wire_put_u16(buf + DEXT_WIRE_HEADER_SIZE, 2);
    }
    expect_drop("HELLO with min > max", false, buf, (size_t)n, NULL, 0);
    hello = (DextWireHello){ 1, 1, DEXT_WIRE_FEATURES_V1 };
    n = dext_wire_encode_hello(buf, sizeof(buf), 7, &hello);
    expect_drop("a second HELLO", true, buf, (size_t)n, NULL, 0);
    hello = (DextWireHello){ 9, 0xffff, 0xffffffff };
    n = dext_wire_encode_hello(buf, sizeof(buf), 7, &hello);
    {
        RawChan *h = raw_connect();
        DextWireHelloReply hr = { .status = kIOReturnSuccess };

        if (HCHECK(h != NULL, "no channel")) {
            raw_send(h, buf, (size_t)n, NULL, 0);
            if (raw_wait_reply(h, 7, NULL) == kIOReturnSuccess) {
                dext_wire_decode_hello_reply(h->rx + DEXT_WIRE_HEADER_SIZE,
                                             h->h.length, &hr);
            }
            HCHECK(hr.status != kIOReturnSuccess,
                   "HELLO for versions 9-65535 accepted");
            HCHECK(raw_dropped(h, HOSTILE_ANSWER_MS, NULL, NULL),
                   "no hang-up after a HELLO with no common version");
            raw_close(h);
        }
    }
    raw_close(c);
}

/*
 * A client that keeps sending requests and never reads a reply: its
 * channel's thread blocks in sendmsg(), nobody else may notice.
 */
static void attack_never_read(void)
{
    uint64_t in[3] = { EDU_MEM_IDX, EDU_REG_ID, 4 };
    DextWireStatusReply st;
    unsigned sent = 0;
    RawChan *c, *other;
    DextWireCall call;
    uint8_t buf[DEXT_WIRE_MAX_MSG];
    IOReturn ret;
    int n;

    ret = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), false);
    if (!HCHECK(ret == kIOReturnSuccess, "session on edu: 0x%x", ret)) {
        return;
    }
    memset(&call, 0, sizeof(call));
    call.selector = kDextSelectorMMIORead;
    call.scalar_in_cnt = 3;
    call.scalar_out_cap = 1;
    memcpy(call.scalar_in, in, sizeof(in));
    n = dext_wire_encode_call(buf, sizeof(buf), 1, 1, false, &call);
    /* Until both socket buffers are full (or a generous cap). */
    while (sent < 200000 &&
           send(c->fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) == n) {
        sent++;
    }
    HCHECK(errno == EAGAIN || sent == 200000, "send: %s", strerror(errno));
    /* While it sits there, a newcomer is served. */
    hostile_sleep_ms(500);
    other = raw_connect_hello();
    HCHECK(other != NULL && raw_status(other, &st) == kIOReturnSuccess,
           "a new client not served while another never reads");
    raw_close(other);
    hostile_sleep_ms(500);
    hostile_note("%u requests queued unread", sent);
    raw_close(c);
}

/*
 * Refused requests on one channel, each worth a warning in dextd's log:
 * the log must stay rate-limited per channel (decision 10: a burst of
 * 10, then 1 line a second, plus "suppressed" lines).
 */
static void attack_log_flood(void)
{
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];
    unsigned before = hostile_log_lines(), lines, allowed, i;
    double t0 = hostile_now_ms(), secs;
    RawChan *c = raw_connect_hello();

    if (!HCHECK(c != NULL, "no channel")) {
        return;
    }
    for (i = 0; i < FLOOD_REQUESTS; i++) {
        IOReturn st;

        fill_random(token, sizeof(token));
        st = raw_attach(c, token);
        if (!HCHECK(st != kIOReturnSuccess && st != RAW_NO_ANSWER &&
                    st != RAW_HUNG_UP, "ATTACH with a random token #%u: "
                    "0x%x", i, st)) {
            break;
        }
    }
    /* A second later one more gets through, and says what was dropped. */
    hostile_sleep_ms(1100);
    fill_random(token, sizeof(token));
    raw_attach(c, token);
    raw_close(c);
    /* Let dextd write what it is going to write. */
    hostile_sleep_ms(200);
    secs = (hostile_now_ms() - t0) / 1000.0;
    lines = hostile_log_lines() - before;
    HCHECK(hostile_log_has("suppressed"), "no \"suppressed\" line after "
           "%u refusals", FLOOD_REQUESTS);
    /* Burst, one a second, and a "suppressed" line for each of those. */
    allowed = 10 + 2 * ((unsigned)secs + 2) + 2;
    HCHECK(lines <= allowed, "%u refused requests on one channel in %.1f s "
           "wrote %u log lines (rate limit allows about %u)", FLOOD_REQUESTS,
           secs, lines, allowed);
    hostile_note("%u refusals -> %u log lines", FLOOD_REQUESTS, lines);
}

static const HostileAttack attacks[] = {
    { .name = "frames/garbage", .run = attack_garbage },
    { .name = "frames/oversized", .run = attack_oversized },
    { .name = "frames/truncated", .run = attack_truncated },
    { .name = "frames/lying-length", .run = attack_lying_length },
    { .name = "frames/bad-header", .run = attack_bad_header },
    { .name = "frames/replies-to-dextd", .run = attack_replies },
    { .name = "frames/before-hello", .run = attack_before_hello },
    { .name = "frames/bad-payload-sizes", .run = attack_bad_payload_sizes },
    { .name = "frames/bad-values", .run = attack_bad_values },
    { .name = "frames/never-read", .run = attack_never_read },
    { .name = "frames/log-flood", .finding = "D10", .run = attack_log_flood },
};

int main(int argc, char **argv)
{
    return hostile_main(argc, argv, attacks,
                        sizeof(attacks) / sizeof(attacks[0]));
}
