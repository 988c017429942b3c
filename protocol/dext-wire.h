/*
 * SPDX-License-Identifier: MIT
 *
 * The dextd wire protocol: messages between the "unix" transport of the
 * client library and the dextd daemon, and their codec.
 *
 * Messages travel over an AF_UNIX SOCK_SEQPACKET socket, one message per
 * sendmsg()/recvmsg(), so a request and its reply are exactly one send
 * and one receive on each side.  Every message is a 24-byte header
 * followed by a type-specific payload; all integers are little-endian
 * and are encoded byte by byte, never by casting wire bytes to structs.
 * docs/protocol.md is the full specification; this header is its C
 * rendering.
 *
 * Decoders are pure (bytes in, struct out), bound every access by the
 * given length and reject anything that is not exactly a well-formed
 * message, so they are safe on hostile input and can be fuzzed.
 */

#ifndef LIBDEXT_DEXT_WIRE_H
#define LIBDEXT_DEXT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "libdext/ioreturn.h"
#include "libdext/status-counters.h"
#include "support/dext-call.h"

/* "dext" as it appears on the wire (bytes 64 65 78 74). */
#define DEXT_WIRE_MAGIC         0x74786564u

/* Protocol versions this build speaks. */
#define DEXT_WIRE_VERSION_MIN   1
#define DEXT_WIRE_VERSION_MAX   1
/* HELLO is always framed with this version so any peer can parse it. */
#define DEXT_WIRE_VERSION_HELLO 1

#define DEXT_WIRE_HEADER_SIZE   24

/* Header flags. */
#define DEXT_WIRE_FLAG_REPLY    0x1u
#define DEXT_WIRE_FLAGS_KNOWN   DEXT_WIRE_FLAG_REPLY

/* HELLO feature bits (advisory; unknown bits are ignored). */
#define DEXT_WIRE_FEAT_ATTACH      0x1u  /* ATTACH extra channels */
#define DEXT_WIRE_FEAT_WAKE_PORTS  0x2u  /* WAKE_REGISTER / CALL_ASYNC */
#define DEXT_WIRE_FEAT_STATUS      0x4u  /* STATUS */
#define DEXT_WIRE_FEATURES_V1      0x7u
/*
 * Not advisory: in a client's HELLO, a request that this channel be lean
 * -- it carries no fds and no kernel-vouched sender, so the daemon reads
 * it with a plain recv() (no control buffer, no SO_PASSCRED).  The
 * daemon's reply has the bit set when it granted that.  Fds sent on a
 * lean channel are discarded by the kernel, and calls that name client
 * memory are refused there: those go on a channel without the bit.
 */
#define DEXT_WIRE_FEAT_LEAN        0x8u

/* MAP reply flags. */
#define DEXT_WIRE_MAP_WRITABLE  0x1u

#define DEXT_WIRE_TOKEN_SIZE    16

/* Wake ports one session may hold at once. */
#define DEXT_WIRE_MAX_PORTS     64

/* The largest payload: a CALL_ASYNC request with every limit reached. */
#define DEXT_WIRE_MAX_PAYLOAD \
    (24 + DEXT_MAX_SCALARS * 8 + DEXT_MAX_STRUCT)
#define DEXT_WIRE_MAX_MSG       (DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_MAX_PAYLOAD)

/*
 * Message types.  A reply carries the type of its request and
 * DEXT_WIRE_FLAG_REPLY; ERROR is only ever a reply.
 */
typedef enum DextWireType {
    DEXT_WIRE_HELLO = 1,
    DEXT_WIRE_LIST = 2,
    DEXT_WIRE_OPEN = 3,
    DEXT_WIRE_ATTACH = 4,
    DEXT_WIRE_CALL = 5,
    DEXT_WIRE_CALL_ASYNC = 6,
    DEXT_WIRE_WAKE_REGISTER = 7,
    DEXT_WIRE_WAKE_UNREGISTER = 8,
    DEXT_WIRE_MAP = 9,
    DEXT_WIRE_STATUS = 10,
    DEXT_WIRE_ERROR = 11,
    DEXT_WIRE_RING = 12,        /* polled call ring: protocol/dext-ring.h */
    DEXT_WIRE_TYPE_MAX = DEXT_WIRE_RING,
} DextWireType;

/* Codec errors (negative returns); never IOReturn values. */
#define DEXT_WIRE_ETRUNC    (-1)   /* shorter than the message needs */
#define DEXT_WIRE_ELENGTH   (-2)   /* length disagrees with the fields */
#define DEXT_WIRE_EMAGIC    (-3)
#define DEXT_WIRE_EVERSION  (-4)
#define DEXT_WIRE_ETYPE     (-5)
#define DEXT_WIRE_EFLAGS    (-6)
#define DEXT_WIRE_ELIMIT    (-7)   /* a count or size over its limit */
#define DEXT_WIRE_EVALUE    (-8)   /* a reserved field not zero, etc. */
#define DEXT_WIRE_ENOSPC    (-9)   /* encode: buffer too small */

/** DextWireHeader - the fixed header of every message. */
typedef struct DextWireHeader {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t flags;
    uint32_t length;        /* payload bytes after the header */
    uint64_t seq;           /* chosen by the requester, echoed in the reply */
} DextWireHeader;

/** DextWireHello - HELLO request: the versions the client speaks. */
typedef struct DextWireHello {
    uint16_t min_version;
    uint16_t max_version;
    uint32_t features;
} DextWireHello;

/** DextWireHelloReply - the chosen version, or status Unsupported. */
typedef struct DextWireHelloReply {
    IOReturn status;
    uint16_t version;       /* 0 unless status is success */
    uint32_t pid;           /* informational; trust SO_PEERCRED instead */
    uint32_t features;
} DextWireHelloReply;

/** DextWireListReply - service IDs; @count <= DEXT_MAX_SERVICES. */
typedef struct DextWireListReply {
    IOReturn status;
    uint32_t total;         /* services served, may exceed @count */
    uint32_t count;         /* IDs in @ids, <= @total */
    uint64_t ids[DEXT_MAX_SERVICES];
} DextWireListReply;

/** DextWireOpen - OPEN request. */
typedef struct DextWireOpen {
    uint64_t service_id;
    uint32_t type;
} DextWireOpen;

/** DextWireOpenReply - the session token (all zero on failure). */
typedef struct DextWireOpenReply {
    IOReturn status;
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];
} DextWireOpenReply;

/** DextWireAttach - ATTACH request. */
typedef struct DextWireAttach {
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];
} DextWireAttach;

/**
 * DextWireCall - CALL and CALL_ASYNC requests.  @struct_in points into
 * the decoded buffer (no copy), so it lives as long as that buffer.
 */
typedef struct DextWireCall {
    uint32_t port;          /* CALL_ASYNC only: a registered wake port */
    uint32_t selector;
    uint32_t scalar_in_cnt;
    uint32_t scalar_out_cap;
    uint32_t struct_in_len;
    uint32_t struct_out_cap;
    uint64_t scalar_in[DEXT_MAX_SCALARS];
    const uint8_t *struct_in;
} DextWireCall;

/** DextWireCallReply - reply to CALL and CALL_ASYNC. */
typedef struct DextWireCallReply {
    IOReturn status;
    uint32_t scalar_out_cnt;
    uint32_t struct_out_len;
    uint64_t scalar_out[DEXT_MAX_SCALARS];
    const uint8_t *struct_out;
} DextWireCallReply;

/** DextWireWakeReply - WAKE_REGISTER reply. */
typedef struct DextWireWakeReply {
    IOReturn status;
    uint32_t port;          /* 0 on failure; never 0 on success */
} DextWireWakeReply;

/** DextWireMap - MAP request; @options are IOKit kIOMap* bits. */
typedef struct DextWireMap {
    uint32_t mem_type;
    uint32_t options;
} DextWireMap;

/** DextWireMapReply - the memory; the fd travels as SCM_RIGHTS. */
typedef struct DextWireMapReply {
    IOReturn status;
    uint32_t flags;         /* DEXT_WIRE_MAP_* */
    uint64_t offset;        /* into the fd, page aligned */
    uint64_t size;
} DextWireMapReply;

/** DextWireStatusReply - daemon status and the core's counters. */
typedef struct DextWireStatusReply {
    IOReturn status;
    uint16_t version;       /* protocol version of this channel */
    uint32_t pid;
    uint64_t uptime_ms;
    uint32_t channels;
    /* The core's, in wire order from offset 24 (libdext/status-counters.h). */
    APPLE_DEXT_STATUS_COUNTERS(APPLE_DEXT_STATUS_FIELD, _)
} DextWireStatusReply;

/* Payload sizes of the fixed-size messages. */
#define DEXT_WIRE_HELLO_SIZE          8
#define DEXT_WIRE_HELLO_REPLY_SIZE    16
#define DEXT_WIRE_LIST_REPLY_FIXED    12
#define DEXT_WIRE_OPEN_SIZE           16
#define DEXT_WIRE_OPEN_REPLY_SIZE     (4 + DEXT_WIRE_TOKEN_SIZE)
#define DEXT_WIRE_ATTACH_SIZE         DEXT_WIRE_TOKEN_SIZE
#define DEXT_WIRE_CALL_FIXED          20
#define DEXT_WIRE_CALL_ASYNC_FIXED    24
#define DEXT_WIRE_CALL_REPLY_FIXED    12
#define DEXT_WIRE_STATUS_ONLY_SIZE    4
#define DEXT_WIRE_WAKE_REPLY_SIZE     8
#define DEXT_WIRE_PORT_SIZE           4
#define DEXT_WIRE_MAP_SIZE            8
#define DEXT_WIRE_MAP_REPLY_SIZE      24
#define DEXT_WIRE_STATUS_REPLY_SIZE   80

/* ---------------------------------------------------------------------
 * Byte helpers
 * ------------------------------------------------------------------- */

/**
 * dext_wire_put_u16() - store a little-endian 16-bit value
 * @p: destination, 2 bytes
 * @v: value
 */
void dext_wire_put_u16(uint8_t *p, uint16_t v);

/**
 * dext_wire_put_u32() - store a little-endian 32-bit value
 * @p: destination, 4 bytes
 * @v: value
 */
void dext_wire_put_u32(uint8_t *p, uint32_t v);

/**
 * dext_wire_put_u64() - store a little-endian 64-bit value
 * @p: destination, 8 bytes
 * @v: value
 */
void dext_wire_put_u64(uint8_t *p, uint64_t v);

/**
 * dext_wire_get_u16() - load a little-endian 16-bit value
 * @p: source, 2 bytes
 *
 * Return: the value.
 */
uint16_t dext_wire_get_u16(const uint8_t *p);

/**
 * dext_wire_get_u32() - load a little-endian 32-bit value
 * @p: source, 4 bytes
 *
 * Return: the value.
 */
uint32_t dext_wire_get_u32(const uint8_t *p);

/**
 * dext_wire_get_u64() - load a little-endian 64-bit value
 * @p: source, 8 bytes
 *
 * Return: the value.
 */
uint64_t dext_wire_get_u64(const uint8_t *p);

/* ---------------------------------------------------------------------
 * Header
 * ------------------------------------------------------------------- */

/**
 * dext_wire_decode_header() - parse and check a whole message's header
 * @buf: the received message
 * @len: its length in bytes
 * @out: receives the header
 *
 * Checks the magic, that the version is one this build speaks, that the
 * type is known, that no unknown flag is set, that a reply flag is only
 * absent from request types (ERROR must be a reply), that the payload
 * is within DEXT_WIRE_MAX_PAYLOAD and that @len is exactly the header
 * plus the announced payload.  The payload starts at
 * @buf + DEXT_WIRE_HEADER_SIZE.
 *
 * Return: 0, or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_header(const uint8_t *buf, size_t len,
                            DextWireHeader *out);

/**
 * dext_wire_peek_seq() - the sequence number of a message, if present
 * @buf: the received message
 * @len: its length
 *
 * For answering a malformed request with an ERROR that still names it.
 *
 * Return: the header's seq field, or 0 if @len is too short to hold it.
 */
uint64_t dext_wire_peek_seq(const uint8_t *buf, size_t len);

/**
 * dext_wire_type_name() - printable name of a message type
 * @type: DEXT_WIRE_* type
 *
 * Return: a static string; "?" for unknown types.
 */
const char *dext_wire_type_name(uint32_t type);

/**
 * dext_wire_strerror() - describe a codec error
 * @err: a negative DEXT_WIRE_E* code
 *
 * Return: a static string.
 */
const char *dext_wire_strerror(int err);

/* ---------------------------------------------------------------------
 * Encoders.  Each writes header + payload into @buf (@cap bytes) with
 * the given @version and @seq, and returns the message length, or
 * DEXT_WIRE_ENOSPC / DEXT_WIRE_ELIMIT if it does not fit or a field is
 * over its limit (a bug in the caller, never the peer).
 * ------------------------------------------------------------------- */

/**
 * dext_wire_encode_hello() - HELLO request
 * @buf: destination
 * @cap: its size
 * @seq: sequence number
 * @m: the request
 *
 * Always framed with DEXT_WIRE_VERSION_HELLO.
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_hello(uint8_t *buf, size_t cap, uint64_t seq,
                           const DextWireHello *m);

/**
 * dext_wire_encode_hello_reply() - HELLO reply
 * @buf: destination
 * @cap: its size
 * @seq: sequence number of the request
 * @m: the reply
 *
 * Always framed with DEXT_WIRE_VERSION_HELLO.
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_hello_reply(uint8_t *buf, size_t cap, uint64_t seq,
                                 const DextWireHelloReply *m);

/**
 * dext_wire_encode_empty() - a request without payload (LIST, STATUS,
 * WAKE_REGISTER, whose fd travels beside the message)
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number
 * @type: DEXT_WIRE_LIST, DEXT_WIRE_STATUS or DEXT_WIRE_WAKE_REGISTER
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_empty(uint8_t *buf, size_t cap, uint16_t version,
                           uint64_t seq, uint16_t type);

/**
 * dext_wire_encode_status_only() - a reply that is just an IOReturn
 * (ATTACH, WAKE_UNREGISTER, RING and ERROR replies)
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number of the request (0 if unknown)
 * @type: DEXT_WIRE_ATTACH, DEXT_WIRE_WAKE_UNREGISTER, DEXT_WIRE_RING or
 *        DEXT_WIRE_ERROR
 * @status: the IOReturn
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_status_only(uint8_t *buf, size_t cap, uint16_t version,
                                 uint64_t seq, uint16_t type,
                                 IOReturn status);

/**
 * dext_wire_encode_list_reply() - LIST reply
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number of the request
 * @m: the reply; @m->count <= DEXT_MAX_SERVICES and <= @m->total
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_list_reply(uint8_t *buf, size_t cap, uint16_t version,
                                uint64_t seq, const DextWireListReply *m);

/**
 * dext_wire_encode_open() - OPEN request
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number
 * @m: the request
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_open(uint8_t *buf, size_t cap, uint16_t version,
                          uint64_t seq, const DextWireOpen *m);

/**
 * dext_wire_encode_open_reply() - OPEN reply
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number of the request
 * @m: the reply
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_open_reply(uint8_t *buf, size_t cap, uint16_t version,
                                uint64_t seq, const DextWireOpenReply *m);

/**
 * dext_wire_encode_attach() - ATTACH request
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number
 * @m: the request
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_attach(uint8_t *buf, size_t cap, uint16_t version,
                            uint64_t seq, const DextWireAttach *m);

/**
 * dext_wire_encode_call() - CALL or CALL_ASYNC request
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number
 * @async: true for CALL_ASYNC (then @m->port is sent)
 * @m: the request; counts and sizes within DEXT_MAX_*
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_call(uint8_t *buf, size_t cap, uint16_t version,
                          uint64_t seq, bool async, const DextWireCall *m);

/**
 * dext_wire_encode_call_reply() - CALL or CALL_ASYNC reply
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number of the request
 * @async: true to answer a CALL_ASYNC
 * @m: the reply; counts and sizes within DEXT_MAX_*
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_call_reply(uint8_t *buf, size_t cap, uint16_t version,
                                uint64_t seq, bool async,
                                const DextWireCallReply *m);

/**
 * dext_wire_encode_wake_reply() - WAKE_REGISTER reply
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number of the request
 * @m: the reply
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_wake_reply(uint8_t *buf, size_t cap, uint16_t version,
                                uint64_t seq, const DextWireWakeReply *m);

/**
 * dext_wire_encode_wake_unregister() - WAKE_UNREGISTER request
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number
 * @port: the port to drop
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_wake_unregister(uint8_t *buf, size_t cap,
                                     uint16_t version, uint64_t seq,
                                     uint32_t port);

/**
 * dext_wire_encode_ring() - RING request: make this channel a polled
 * call ring (protocol/dext-ring.h); the reply carries the ring's memfd
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number
 * @spin_us: how long the caller asks dextd to poll for a request before
 *           sleeping, in microseconds (dextd bounds it)
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_ring(uint8_t *buf, size_t cap, uint16_t version,
                          uint64_t seq, uint32_t spin_us);

/**
 * dext_wire_encode_map() - MAP request
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number
 * @m: the request
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_map(uint8_t *buf, size_t cap, uint16_t version,
                         uint64_t seq, const DextWireMap *m);

/**
 * dext_wire_encode_map_reply() - MAP reply (the fd is sent beside it)
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number of the request
 * @m: the reply
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_map_reply(uint8_t *buf, size_t cap, uint16_t version,
                               uint64_t seq, const DextWireMapReply *m);

/**
 * dext_wire_encode_status_reply() - STATUS reply
 * @buf: destination
 * @cap: its size
 * @version: negotiated version
 * @seq: sequence number of the request
 * @m: the reply
 *
 * Return: message length or a negative DEXT_WIRE_E* code.
 */
int dext_wire_encode_status_reply(uint8_t *buf, size_t cap, uint16_t version,
                                  uint64_t seq, const DextWireStatusReply *m);

/* ---------------------------------------------------------------------
 * Payload decoders.  Each takes the payload only (after the header, of
 * exactly the header's length), checks that @len is exactly what the
 * fields need and every count within its limit, and fills @out.  They
 * return 0 or a negative DEXT_WIRE_E* code; @out is unspecified then.
 * ------------------------------------------------------------------- */

/**
 * dext_wire_decode_hello() - HELLO request payload
 * @buf: payload
 * @len: payload length
 * @out: receives the request
 *
 * Return: 0 or a negative DEXT_WIRE_E* code (also for min > max).
 */
int dext_wire_decode_hello(const uint8_t *buf, size_t len,
                           DextWireHello *out);

/**
 * dext_wire_decode_hello_reply() - HELLO reply payload
 * @buf: payload
 * @len: payload length
 * @out: receives the reply
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_hello_reply(const uint8_t *buf, size_t len,
                                 DextWireHelloReply *out);

/**
 * dext_wire_decode_empty() - a payload that must be empty
 * @buf: payload
 * @len: payload length
 *
 * Return: 0 or DEXT_WIRE_ELENGTH.
 */
int dext_wire_decode_empty(const uint8_t *buf, size_t len);

/**
 * dext_wire_decode_status_only() - ATTACH/WAKE_UNREGISTER/ERROR reply
 * @buf: payload
 * @len: payload length
 * @out: receives the IOReturn
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_status_only(const uint8_t *buf, size_t len,
                                 IOReturn *out);

/**
 * dext_wire_decode_list_reply() - LIST reply payload
 * @buf: payload
 * @len: payload length
 * @out: receives the reply
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_list_reply(const uint8_t *buf, size_t len,
                                DextWireListReply *out);

/**
 * dext_wire_decode_open() - OPEN request payload
 * @buf: payload
 * @len: payload length
 * @out: receives the request
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_open(const uint8_t *buf, size_t len, DextWireOpen *out);

/**
 * dext_wire_decode_open_reply() - OPEN reply payload
 * @buf: payload
 * @len: payload length
 * @out: receives the reply
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_open_reply(const uint8_t *buf, size_t len,
                                DextWireOpenReply *out);

/**
 * dext_wire_decode_attach() - ATTACH request payload
 * @buf: payload
 * @len: payload length
 * @out: receives the request
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_attach(const uint8_t *buf, size_t len,
                            DextWireAttach *out);

/**
 * dext_wire_decode_call() - CALL or CALL_ASYNC request payload
 * @buf: payload
 * @len: payload length
 * @async: true for CALL_ASYNC
 * @out: receives the request; @out->struct_in points into @buf
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_call(const uint8_t *buf, size_t len, bool async,
                          DextWireCall *out);

/**
 * dext_wire_decode_call_reply() - CALL or CALL_ASYNC reply payload
 * @buf: payload
 * @len: payload length
 * @out: receives the reply; @out->struct_out points into @buf
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_call_reply(const uint8_t *buf, size_t len,
                                DextWireCallReply *out);

/**
 * dext_wire_decode_wake_reply() - WAKE_REGISTER reply payload
 * @buf: payload
 * @len: payload length
 * @out: receives the reply
 *
 * Return: 0 or a negative DEXT_WIRE_E* code (also for port 0 with
 * success).
 */
int dext_wire_decode_wake_reply(const uint8_t *buf, size_t len,
                                DextWireWakeReply *out);

/**
 * dext_wire_decode_wake_unregister() - WAKE_UNREGISTER request payload
 * @buf: payload
 * @len: payload length
 * @out: receives the port
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_wake_unregister(const uint8_t *buf, size_t len,
                                     uint32_t *out);

/**
 * dext_wire_decode_ring() - RING request payload
 * @buf: payload
 * @len: payload length
 * @spin_us: receives the spin budget asked for
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_ring(const uint8_t *buf, size_t len, uint32_t *spin_us);

/**
 * dext_wire_decode_map() - MAP request payload
 * @buf: payload
 * @len: payload length
 * @out: receives the request
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_map(const uint8_t *buf, size_t len, DextWireMap *out);

/**
 * dext_wire_decode_map_reply() - MAP reply payload
 * @buf: payload
 * @len: payload length
 * @out: receives the reply
 *
 * Return: 0 or a negative DEXT_WIRE_E* code (also for unknown flags).
 */
int dext_wire_decode_map_reply(const uint8_t *buf, size_t len,
                               DextWireMapReply *out);

/**
 * dext_wire_decode_status_reply() - STATUS reply payload
 * @buf: payload
 * @len: payload length
 * @out: receives the reply
 *
 * Return: 0 or a negative DEXT_WIRE_E* code.
 */
int dext_wire_decode_status_reply(const uint8_t *buf, size_t len,
                                  DextWireStatusReply *out);

/* ---------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------- */

/**
 * dext_wire_choose_version() - the version a daemon answers HELLO with
 * @hello: the client's range
 *
 * Return: the highest version both sides speak, or 0 if none.
 */
uint16_t dext_wire_choose_version(const DextWireHello *hello);

/**
 * dext_wire_default_socket_path() - where dextd listens by default
 *
 * $DEXT_SOCKET if set and non-empty; else /run/dextd.sock when running
 * as root; else $XDG_RUNTIME_DIR/dextd.sock if that is set; else
 * /tmp/dextd-UID.sock.  Computed on each call.
 *
 * Return: the path, valid until the environment changes or the next call
 * in the same thread (it may live in thread-local storage).
 */
const char *dext_wire_default_socket_path(void);

/**
 * dext_wire_sendmsg() - send one message, with an fd
 * @sock: a SOCK_SEQPACKET socket
 * @buf: the encoded message
 * @len: its length
 * @pass_fd: an fd to pass with SCM_RIGHTS, or -1
 *
 * EINTR is retried; SIGPIPE is never raised (MSG_NOSIGNAL).
 *
 * Return: bytes sent, or -1 with errno set.
 */
ssize_t dext_wire_sendmsg(int sock, const void *buf, size_t len, int pass_fd);

/**
 * dext_wire_send() - send one whole encoded message, with an fd
 * @sock: a SOCK_SEQPACKET socket
 * @buf: the encoded message
 * @len: its length as the encoder returned it; negative (the encoder
 *       failed) sends nothing
 * @pass_fd: an fd to pass with SCM_RIGHTS, or -1
 *
 * dext_wire_sendmsg() for the two ends of the protocol, which both want
 * to know only whether the message went and, if not, whose fault it was.
 *
 * Return: kIOReturnSuccess; kIOReturnInternalError for a negative @len;
 * kIOReturnNotResponding if the peer has gone (EPIPE, ECONNRESET,
 * ENOTCONN); kIOReturnIPCError for any other failure or a short send.
 */
IOReturn dext_wire_send(int sock, const void *buf, int len, int pass_fd);

/**
 * dext_wire_recvmsg() - receive one message and the fds sent with it
 * @sock: a SOCK_SEQPACKET socket
 * @buf: where the message goes
 * @cap: room in @buf
 * @flags: extra recvmsg() flags (MSG_DONTWAIT, say)
 * @fds: receives up to @max_fds fds (close-on-exec)
 * @max_fds: room in @fds, at most 16
 * @nfds: receives how many fds were stored
 * @trunc: set if the message or its fds did not fit; surplus fds are
 *         not even installed (the kernel drops them), never leaked
 *
 * Return: the message length, 0 at EOF, or -1 with errno set.
 */
ssize_t dext_wire_recvmsg(int sock, void *buf, size_t cap, int flags,
                          int *fds, int max_fds, int *nfds, bool *trunc);

/**
 * dext_wire_recvmsg_cred() - dext_wire_recvmsg(), and who sent it
 * @sender: receives the sending process's pid as the kernel vouches for
 *          it (SCM_CREDENTIALS; @sock must have SO_PASSCRED set), or -1
 *          if the message carried none
 *
 * The pid is the sender's at the time it sent, not the connecting
 * process's: a socket can be inherited or passed on.
 *
 * Return: as dext_wire_recvmsg().
 */
ssize_t dext_wire_recvmsg_cred(int sock, void *buf, size_t cap, int flags,
                               int *fds, int max_fds, int *nfds, bool *trunc,
                               pid_t *sender);

#endif /* LIBDEXT_DEXT_WIRE_H */
