/*
 * SPDX-License-Identifier: MIT
 *
 * Raw channels to dextd for the hostile suite: the wire protocol spoken
 * by hand (protocol/dext-wire.h), so attacks can send what the library
 * never would and see exactly what comes back.
 *
 * Every wait is bounded by the channel's timeout (HOSTILE_ANSWER_MS by
 * default): a dextd that does not answer shows as RAW_NO_ANSWER, never
 * as a hung test.  Replies are matched by sequence number, so a late
 * answer to an earlier request is skipped, not mistaken.  A channel is
 * used by one thread at a time.
 */

#ifndef LIBDEXT_TESTS_HOSTILE_WIRE_H
#define LIBDEXT_TESTS_HOSTILE_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol/dext-wire.h"

/* Outcomes that are not dextd's: no IOReturn uses these values. */
#define RAW_NO_ANSWER   ((IOReturn)0xfee10001)  /* nothing within the bound */
#define RAW_HUNG_UP     ((IOReturn)0xfee10002)  /* dextd closed the channel */
#define RAW_GARBLED     ((IOReturn)0xfee10003)  /* a reply we cannot decode */
#define RAW_SEND_FAILED ((IOReturn)0xfee10004)  /* sendmsg() failed */

/**
 * raw_is_answer() - did an outcome come from dextd?
 * @st: what a raw_* call returned
 *
 * Return: false for the RAW_* outcomes (no answer, hang-up, garbage,
 * failed send), true for any status dextd sent.
 */
bool raw_is_answer(IOReturn st);

/**
 * RawChan - one hand-driven channel
 * @fd: the socket
 * @version: negotiated by HELLO; 0 before
 * @seq: the last sequence number sent
 * @timeout_ms: bound on each wait for a reply
 * @hung_up: dextd closed the channel
 * @error: status of the last ERROR message dextd sent, 0 if none
 * @h: header of the last reply
 * @tx: message being sent
 * @rx: message received (with room to spot an oversized one)
 */
typedef struct RawChan {
    int fd;
    uint16_t version;
    uint64_t seq;
    unsigned timeout_ms;
    bool hung_up;
    IOReturn error;
    DextWireHeader h;
    uint8_t tx[DEXT_WIRE_MAX_MSG];
    uint8_t rx[DEXT_WIRE_MAX_MSG + 64];
} RawChan;

/**
 * raw_socket() - a socket connected to the attack's dextd
 *
 * connect() is bounded by HOSTILE_ANSWER_MS (a full backlog blocks it).
 *
 * Return: the fd, or -1 with errno set.
 */
int raw_socket(void);

/**
 * raw_wrap() - a channel around a connected socket
 * @fd: the socket, owned by the channel from now on
 *
 * Return: the channel (never NULL: allocation failure aborts).
 */
RawChan *raw_wrap(int fd);

/** raw_connect() - raw_wrap(raw_socket()), or NULL. */
RawChan *raw_connect(void);

/** raw_close() - close the socket and free the channel; NULL is fine. */
void raw_close(RawChan *c);

/**
 * raw_send() - send one message, with fds
 * @c: the channel
 * @buf: the bytes
 * @len: how many (one message)
 * @fds: fds to pass (SCM_RIGHTS), or NULL
 * @nfds: how many, at most 253
 *
 * Return: bytes sent, or -1 with errno set.
 */
ssize_t raw_send(RawChan *c, const void *buf, size_t len, const int *fds,
                 int nfds);

/**
 * raw_recv() - receive one message into @c->rx
 * @c: the channel
 * @ms: bound on the wait
 * @fd: receives an fd sent with it (-1 if none; others are closed), or
 *      NULL to close any
 *
 * Return: its length, 0 at EOF (then @c->hung_up is set), -1 if nothing
 * came within @ms, -2 on a receive error.
 */
ssize_t raw_recv(RawChan *c, unsigned ms, int *fd);

/**
 * raw_send_request() - send the request encoded in @c->tx
 * @c: the channel
 * @len: the encoder's result
 * @pass_fd: an fd to pass with it, or -1
 *
 * Return: kIOReturnSuccess or RAW_SEND_FAILED.
 */
IOReturn raw_send_request(RawChan *c, int len, int pass_fd);

/**
 * raw_wait_reply() - wait for the reply to request @seq
 * @c: the channel
 * @seq: its sequence number
 * @fd: receives an fd sent with the reply, or NULL
 *
 * Messages with other sequence numbers (late answers) are skipped.  On
 * success the reply's header is in @c->h and its payload at
 * @c->rx + DEXT_WIRE_HEADER_SIZE.
 *
 * Return: kIOReturnSuccess for a reply, the status of an ERROR message
 * (also kept in @c->error), or RAW_NO_ANSWER / RAW_HUNG_UP / RAW_GARBLED.
 */
IOReturn raw_wait_reply(RawChan *c, uint64_t seq, int *fd);

/**
 * raw_roundtrip() - raw_send_request() then raw_wait_reply()
 * @c: the channel
 * @len: the encoder's result for the request in @c->tx
 * @pass_fd: an fd to pass, or -1
 * @fd: receives an fd sent with the reply, or NULL
 *
 * Return: as raw_wait_reply().
 */
IOReturn raw_roundtrip(RawChan *c, int len, int pass_fd, int *fd);

/**
 * raw_hello() - HELLO for version 1
 * @c: the channel
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_hello(RawChan *c);

/** raw_connect_hello() - raw_connect() and raw_hello(), or NULL. */
RawChan *raw_connect_hello(void);

/**
 * raw_open() - OPEN a service
 * @c: a channel after HELLO
 * @service: the service ID
 * @token: receives the session token, or NULL
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_open(RawChan *c, uint64_t service, uint8_t *token);

/**
 * raw_session() - connect, HELLO, OPEN and optionally Claim
 * @out: receives the channel, or NULL on failure
 * @service: the service ID
 * @claim: Claim too
 *
 * Return: kIOReturnSuccess or the first step's failure.
 */
IOReturn raw_session(RawChan **out, uint64_t service, bool claim);

/**
 * raw_call_full() - CALL or CALL_ASYNC with everything the wire allows
 * @c: the channel
 * @async: CALL_ASYNC (then @m->port is used)
 * @m: the request
 * @r: receives the reply (@r->struct_out points into @c->rx), or NULL
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_call_full(RawChan *c, bool async, const DextWireCall *m,
                       DextWireCallReply *r);

/**
 * raw_call() - a CALL with scalars only
 * @c: the channel
 * @sel: the selector
 * @in: inputs
 * @nin: how many
 * @out: receives outputs, or NULL
 * @nout: room in @out (also the request's scalar_out_cap)
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_call(RawChan *c, uint32_t sel, const uint64_t *in, uint32_t nin,
                  uint64_t *out, uint32_t nout);

/**
 * raw_call_fds() - raw_call() with @nfds fds beside the request
 * @fds: the fds (dextd gets its own copies), or NULL
 * @nfds: how many
 *
 * Return: as raw_call().
 */
IOReturn raw_call_fds(RawChan *c, uint32_t sel, const uint64_t *in,
                      uint32_t nin, uint64_t *out, uint32_t nout,
                      const int *fds, int nfds);

/**
 * raw_send_call() - send a scalar CALL without waiting for its reply
 * @c: the channel
 * @sel: the selector
 * @in: inputs
 * @nin: how many
 * @nout: the request's scalar_out_cap
 *
 * Return: its sequence number (for raw_wait_reply()), 0 if the send
 * failed.
 */
uint64_t raw_send_call(RawChan *c, uint32_t sel, const uint64_t *in,
                       uint32_t nin, uint32_t nout);

/**
 * raw_call_reply() - decode the CALL reply raw_wait_reply() received
 * @c: the channel
 * @out: receives outputs, or NULL
 * @nout: room in @out
 *
 * Return: the reply's status, or RAW_GARBLED.
 */
IOReturn raw_call_reply(RawChan *c, uint64_t *out, uint32_t nout);

/**
 * raw_map() - MAP a memory type
 * @c: the channel
 * @type: kDextMemoryType*
 * @r: receives the reply
 * @fd: receives the fd, or -1
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_map(RawChan *c, uint32_t type, DextWireMapReply *r, int *fd);

/**
 * raw_wake_register() - WAKE_REGISTER with @port_fd beside it
 * @c: the channel
 * @port_fd: the fd to pass, or -1 for none
 * @port: receives the port, or NULL
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_wake_register(RawChan *c, int port_fd, uint32_t *port);

/**
 * raw_add_port() - register a fresh wake port: a connected socket
 * @c: the channel
 * @peer: receives the port's peer end, which the caller keeps open for as
 *        long as the port must stay a connected socket (-1 on failure)
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_add_port(RawChan *c, int *peer);

/**
 * raw_wake_unregister() - WAKE_UNREGISTER
 * @c: the channel
 * @port: the port
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_wake_unregister(RawChan *c, uint32_t port);

/**
 * raw_attach() - ATTACH with a token
 * @c: a channel after HELLO
 * @token: DEXT_WIRE_TOKEN_SIZE bytes
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_attach(RawChan *c, const uint8_t *token);

/**
 * raw_ring() - RING: make @c a polled call ring
 * @c: a channel bound to a session
 * @spin_us: the spin budget asked for
 * @fd: receives the ring's memfd, or -1
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_ring(RawChan *c, uint32_t spin_us, int *fd);

/**
 * raw_status() - STATUS
 * @c: a channel after HELLO
 * @r: receives the reply
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_status(RawChan *c, DextWireStatusReply *r);

/**
 * raw_list() - LIST
 * @c: a channel after HELLO
 * @r: receives the reply
 *
 * Return: the reply's status, or a RAW_* / ERROR outcome.
 */
IOReturn raw_list(RawChan *c, DextWireListReply *r);

/**
 * raw_dropped() - does dextd close the channel?
 * @c: the channel
 * @ms: bound on the wait
 * @error: receives the status of an ERROR dextd sent first (0 if none),
 *         or NULL
 * @others: receives how many messages other than ERROR came first, or
 *          NULL
 *
 * Messages before the EOF are read and dropped.
 *
 * Return: true if dextd hung up within @ms.
 */
bool raw_dropped(RawChan *c, unsigned ms, IOReturn *error, unsigned *others);

/**
 * raw_encode_any() - a well-formed message of any type
 * @buf: destination
 * @cap: its size
 * @type: any value: requests get a harmless payload (GetIdentity for a
 *        CALL, port 1, a spin of 1 us for RING, MAP of type 0, the edu's service for OPEN), ERROR
 *        is encoded as dextd sends it, other types get an empty payload
 * @seq: sequence number
 *
 * Return: the message length.
 */
int raw_encode_any(uint8_t *buf, size_t cap, uint16_t type, uint64_t seq);

/**
 * raw_register_many() - register many regions over one memory, pipelined
 * @c: a claimed session
 * @iova0: the first region's key
 * @stride: the keys' step
 * @va: the memory
 * @size: each region's size
 * @max: at most this many
 * @fail: receives the status that stopped it (kIOReturnSuccess if @max
 *        were registered)
 *
 * Return: how many were registered.
 */
unsigned raw_register_many(RawChan *c, uint64_t iova0, uint64_t stride,
                           uint64_t va, uint64_t size, unsigned max,
                           IOReturn *fail);

/**
 * raw_pass_fd() - send @fd over the AF_UNIX socket @via (one byte with it)
 * @via: a connected socket
 * @fd: the fd to pass
 *
 * Return: true if it was sent.
 */
bool raw_pass_fd(int via, int fd);

/**
 * raw_take_fd() - receive an fd raw_pass_fd() sent
 * @via: the other end
 * @ms: bound on the wait
 *
 * Return: the fd, or -1.
 */
int raw_take_fd(int via, unsigned ms);

/* Register helpers: a CALL each, the reply's status returned. */
IOReturn raw_claim(RawChan *c);
IOReturn raw_register(RawChan *c, uint64_t iova, const void *va,
                      uint64_t size, uint64_t *bus);
IOReturn raw_unregister(RawChan *c, uint64_t iova);
IOReturn raw_probe(RawChan *c, uint64_t iova, uint64_t offset,
                   uint64_t *value);
IOReturn raw_alloc_buffer(RawChan *c, uint64_t size, uint64_t *bus);
IOReturn raw_mmio_read(RawChan *c, uint32_t mem_idx, uint64_t off,
                       uint32_t width, uint64_t *value);
IOReturn raw_mmio_write(RawChan *c, uint32_t mem_idx, uint64_t off,
                        uint32_t width, uint64_t value);
IOReturn raw_config_write(RawChan *c, uint32_t off, uint32_t width,
                          uint32_t value);
IOReturn raw_setup_interrupts(RawChan *c, uint64_t *nvec);

/**
 * raw_edu_dma() - program one edu transfer
 * @c: a session on edu (claimed, for the programming to be allowed)
 * @src: source address (bus, or the edu buffer)
 * @dst: destination address
 * @count: bytes
 * @to_ram: edu buffer -> RAM
 * @wait: poll until the engine is done, within the channel's timeout
 *
 * Return: the first failing call's status; with @wait, kIOReturnTimeout
 * if the engine stayed busy.
 */
IOReturn raw_edu_dma(RawChan *c, uint64_t src, uint64_t dst, uint64_t count,
                     bool to_ram, bool wait);

/**
 * raw_edu_wait_idle() - poll until edu's DMA engine is idle
 * @c: a session on edu
 *
 * Return: the first failing read's status, or kIOReturnTimeout if the
 * engine stayed busy for the channel's timeout.
 */
IOReturn raw_edu_wait_idle(RawChan *c);

/**
 * raw_edu_raise_irq() - make edu send one MSI
 * @c: a claimed session on edu
 *
 * Return: the MMIO write's status.
 */
IOReturn raw_edu_raise_irq(RawChan *c);

#endif /* LIBDEXT_TESTS_HOSTILE_WIRE_H */
