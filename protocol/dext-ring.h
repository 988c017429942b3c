/*
 * SPDX-License-Identifier: MIT
 *
 * The polled call ring: one request slot and one reply slot in a shared
 * memfd that dextd creates for one channel (the RING message), so that a
 * synchronous CALL and its reply travel without a system call while both
 * sides are awake (one caller at a time).  Each side busy-polls for a
 * bounded time and then sleeps in poll() on the channel's socket; the
 * other side rings it awake with a one-byte message on that socket
 * ("doorbell") when it sees the sleeping flag.  Messages in the slots are whole wire messages
 * (protocol/dext-wire.h): a CALL request, its CALL reply or an ERROR.
 *
 * Neither side trusts the other's words: a length is read once, bounded,
 * and the message copied out before it is decoded.
 *
 * Linux only (memfd, sched_getcpu()): include it with _GNU_SOURCE.
 */

#ifndef LIBDEXT_PROTOCOL_DEXT_RING_H
#define LIBDEXT_PROTOCOL_DEXT_RING_H

#include <endian.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "protocol/dext-wire.h"
#include "support/sock-io.h"

#define DEXT_RING_LINE 64

/*
 * A slot holds one wire message as it travels on the socket.  Its
 * header's sequence number (bytes 16-23, little-endian) is the word the
 * other side polls: the writer stores the rest of the message first and
 * the sequence number last (release), so a reader that sees a new one
 * sees the message under it.  Seq and length share the message's first
 * cache line, so a small call (a ConfigRead request is 60 bytes, its
 * reply 44) crosses between CPUs as one line each way.
 */
typedef struct DextRingSlot {
    _Alignas(DEXT_RING_LINE) uint8_t head[16];  /* magic ... length */
    uint64_t seq;
    uint8_t rest[DEXT_WIRE_MAX_MSG - 24];
} DextRingSlot;

_Static_assert(DEXT_WIRE_HEADER_SIZE == 24 &&
               sizeof(DextRingSlot) >= DEXT_WIRE_MAX_MSG,
               "a slot is a wire message, its seq at bytes 16-23");

/*
 * The shared page(s).
 *
 * @req: the client's request, written by the client
 * @rep: dextd's reply, its seq the request's
 * @server_sleeping: dextd's: 1 while it sleeps in poll() (doorbell it)
 * @server_cpu: dextd's: 1 + the CPU it last polled on (0: unknown)
 * @client_sleeping: the client's: 1 while it sleeps in poll()
 * @client_cpu: the client's: 1 + the CPU it last polled on
 *
 * Each side's words are written by it and read by the other, on a line
 * of their own, away from the slots.  The CPUs are hints (a side that
 * finds the other on its own CPU yields at once instead of spinning) and
 * are rewritten only when they change.
 */
typedef struct DextRing {
    DextRingSlot req;
    DextRingSlot rep;
    _Alignas(DEXT_RING_LINE) uint32_t server_sleeping;
    uint32_t server_cpu;
    _Alignas(DEXT_RING_LINE) uint32_t client_sleeping;
    uint32_t client_cpu;
} DextRing;

/* The memfd's size: whole pages, the same on both sides. */
#define DEXT_RING_BYTES ((sizeof(DextRing) + 4095) & ~(size_t)4095)

/* Spin budgets in microseconds: "poll" alone, and the bounds. */
#define DEXT_RING_SPIN_DEFAULT_US 200
#define DEXT_RING_SPIN_MAX_US 1000000

/*
 * How long a waiter spins flat out before it starts yielding the CPU
 * between looks: long enough for a reply from another CPU, short enough
 * that a peer on the same CPU (the hint missed it) is not kept off it
 * for long.
 */
#define DEXT_RING_PURE_SPIN_NS 2000

/**
 * dext_ring_doorbell() - wake a side sleeping on the channel's socket
 * @fd: the channel's socket
 *
 * A one-byte message; a full socket wakes the sleeper just as well, so
 * a send that would block is dropped.
 *
 * Return: nothing.
 */
static inline void dext_ring_doorbell(int fd)
{
    static const char b = 0;

    (void)dext_sock_send(fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/**
 * dext_ring_drain() - empty the doorbells queued on the channel's socket
 * @fd: the channel's socket
 * @max: at most this many (a peer ringing without pause cannot keep us
 *       here; poll() says if more wait)
 *
 * Return: 0 at EOF (the peer is gone), -1 on an error other than an
 * empty socket, 1 otherwise.
 */
static inline int dext_ring_drain(int fd, unsigned max)
{
    char b;

    while (max-- > 0) {
        ssize_t n = dext_sock_recv(fd, &b, 1, MSG_DONTWAIT | MSG_TRUNC);

        if (n == 0) {
            return 0;
        }
        if (n < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
        }
    }
    return 1;
}

/**
 * dext_ring_relax() - one step of a busy wait: tell the CPU we spin
 *
 * Return: nothing.
 */
static inline void dext_ring_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/**
 * dext_ring_now_ns() - CLOCK_MONOTONIC in ns, for spin budgets
 *
 * Return: the time.
 */
static inline uint64_t dext_ring_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/**
 * dext_ring_seq() - the sequence number a slot holds now (acquire)
 * @slot: a slot of the shared ring
 *
 * Return: the number.
 */
static inline uint64_t dext_ring_seq(const DextRingSlot *slot)
{
    return le64toh(__atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE));
}

/*
 * Copy bytes [DEXT_RING_LINE, @len) of a message, @len > DEXT_RING_LINE:
 * whole lines, then 16-byte pieces, so up to 15 bytes past @len (both
 * buffers hold DEXT_WIRE_MAX_MSG bytes, a multiple of 16, so that stays
 * inside them).  Never a byte below DEXT_RING_LINE, where the seq is.
 * A variable-length memcpy here compiles to rep movs, whose start-up
 * costs a message just over a line (an MMIO request is 68 bytes) more
 * than the copy itself.
 */
static inline void dext_ring_copy_tail(uint8_t *dst, const uint8_t *src,
                                       size_t len)
{
    size_t off = DEXT_RING_LINE;

    for (; off + DEXT_RING_LINE <= len; off += DEXT_RING_LINE) {
        memcpy(dst + off, src + off, DEXT_RING_LINE);
    }
    for (; off < len; off += 16) {
        memcpy(dst + off, src + off, 16);
    }
}

_Static_assert(DEXT_WIRE_MAX_MSG % 16 == 0,
               "dext_ring_copy_tail() stays inside a message buffer");

/**
 * dext_ring_publish() - put a wire message in a slot, its seq last
 * @slot: the slot
 * @msg: the message, in a buffer of DEXT_WIRE_MAX_MSG bytes
 * @len: its length, at least DEXT_WIRE_HEADER_SIZE
 *
 * The seq is stored with release and then a full fence, so the writer's
 * next look at the other side's sleeping flag cannot pass it (a sleeper
 * fences the same way: dext_ring_announce_sleep()).  Not a sequentially
 * consistent store: on x86 that is a locked xchg on the very line the
 * other side polls, which cost a round trip ~8 ns more than mov and
 * mfence.  The slot's first line is copied whole whatever @len
 * (fixed-size copies are a few moves; a variable one has a start-up
 * cost a small call notices).
 *
 * Return: nothing.
 */
static inline void dext_ring_publish(DextRingSlot *slot, const uint8_t *msg,
                                     size_t len)
{
    const size_t first = DEXT_RING_LINE - 24;
    uint64_t seq;

    memcpy(slot->head, msg, sizeof(slot->head));
    memcpy(slot->rest, msg + 24, first);
    if (len > DEXT_RING_LINE) {
        dext_ring_copy_tail((uint8_t *)slot, msg, len);
    }
    memcpy(&seq, msg + 16, sizeof(seq));
    __atomic_store_n(&slot->seq, seq, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/**
 * dext_ring_announce_sleep() - raise our sleeping flag before a last
 * look at the slot we wait on
 * @flag: our flag (@server_sleeping or @client_sleeping)
 *
 * The store and a full fence: with the fence dext_ring_publish() makes
 * after its seq, either the publisher sees the flag (and rings the
 * doorbell) or our next look sees the seq.
 *
 * Return: nothing.
 */
static inline void dext_ring_announce_sleep(uint32_t *flag)
{
    __atomic_store_n(flag, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/**
 * dext_ring_copy_out() - copy the message in a slot the other side
 * writes, its length read once and bounded
 * @slot: the slot
 * @dst: where to, DEXT_WIRE_MAX_MSG bytes (its first line is written
 *       whole)
 *
 * The copy is what gets decoded: the writer may change the slot at any
 * time, and a header decoded from the copy agrees with the copy's size.
 *
 * Return: the message's length, or 0 if the length read is past a
 * message's bounds.
 */
static inline size_t dext_ring_copy_out(const DextRingSlot *slot,
                                        uint8_t *dst)
{
    uint32_t plen;
    size_t len;

    /* The first line once; the length is the copy's, as the header. */
    memcpy(dst, slot, DEXT_RING_LINE);
    memcpy(&plen, dst + 12, sizeof(plen));
    plen = le32toh(plen);
    if (plen > DEXT_WIRE_MAX_PAYLOAD) {
        return 0;
    }
    len = DEXT_WIRE_HEADER_SIZE + plen;
    if (len > DEXT_RING_LINE) {
        dext_ring_copy_tail(dst, (const uint8_t *)slot, len);
    }
    return len;
}

/**
 * dext_ring_same_cpu() - note our CPU, and see if the other side polls
 * on it too
 * @mine: our CPU word (@server_cpu or @client_cpu)
 * @peer: the other side's
 *
 * Return: true if the other side last polled on the CPU we run on.
 */
static inline bool dext_ring_same_cpu(uint32_t *mine, const uint32_t *peer)
{
    int cpu = sched_getcpu();

    if (cpu < 0) {
        return false;
    }
    /* Written only when it changes: the line stays shared otherwise. */
    if (__atomic_load_n(mine, __ATOMIC_RELAXED) != (uint32_t)cpu + 1) {
        __atomic_store_n(mine, (uint32_t)cpu + 1, __ATOMIC_RELAXED);
    }
    return __atomic_load_n(peer, __ATOMIC_RELAXED) == (uint32_t)cpu + 1;
}

/**
 * dext_ring_spin() - poll a slot until its seq differs from @old, for at
 * most @budget_ns
 * @slot: a slot of the shared ring
 * @old: its seq when nothing has happened
 * @budget_ns: how long to poll
 * @shared_cpu: the other side runs on our CPU: yield between all looks
 *
 * Otherwise spins flat out for DEXT_RING_PURE_SPIN_NS, then yields the
 * CPU between looks.
 *
 * Return: the new seq (acquire), or @old once the budget is spent.
 */
static inline uint64_t dext_ring_spin(const DextRingSlot *slot, uint64_t old,
                                      uint64_t budget_ns, bool shared_cpu)
{
    uint64_t start = 0, now, v;
    unsigned i;

    for (i = 0;; i++) {
        v = dext_ring_seq(slot);
        if (v != old || budget_ns == 0) {
            return v;
        }
        if (shared_cpu) {
            sched_yield();
        } else if ((i & 63) != 63) {
            dext_ring_relax();
            continue;
        }
        now = dext_ring_now_ns();
        if (start == 0) {
            start = now;
        } else if (now - start >= budget_ns) {
            return old;
        } else if (now - start >= DEXT_RING_PURE_SPIN_NS) {
            sched_yield();
        }
    }
}

#endif /* LIBDEXT_PROTOCOL_DEXT_RING_H */
