/*
 * SPDX-License-Identifier: MIT
 *
 * The polled call ring: one request slot and one reply slot in a shared
 * memfd that dextd creates for one channel (the RING message), so that a
 * synchronous CALL and its reply travel without a system call while both
 * sides are awake.  Each side busy-polls for a bounded time and then
 * sleeps in poll() on the channel's socket; the other side rings it awake
 * with a one-byte message on that socket ("doorbell") when it sees the
 * sleeping flag.  Messages in the slots are whole wire messages
 * (protocol/dext-wire.h): a CALL request, its CALL reply or an ERROR.
 *
 * Neither side trusts the other's words: a length is read once, bounded,
 * and the message copied out before it is decoded.
 */

#ifndef LIBDEXT_PROTOCOL_DEXT_RING_H
#define LIBDEXT_PROTOCOL_DEXT_RING_H

#include <sched.h>
#include <stdint.h>
#include <time.h>

#include "protocol/dext-wire.h"

#define DEXT_RING_LINE 64

/*
 * The shared page(s).  Each word one side writes while the other polls
 * it lives on a cache line of its own, so polling one does not steal the
 * line the other is writing.
 *
 * @req_seq: the client's: bumped (release) once @req holds a request
 * @rep_seq: dextd's: set to the request's @req_seq (release) once @rep
 *           holds its reply
 * @server_sleeping: dextd's: 1 while it sleeps in poll() (doorbell it)
 * @client_sleeping: the client's: 1 while it sleeps in poll()
 * @req_len, @req: the request, written by the client
 * @rep_len, @rep: the reply, written by dextd
 */
typedef struct DextRing {
    _Alignas(DEXT_RING_LINE) uint32_t req_seq;
    _Alignas(DEXT_RING_LINE) uint32_t rep_seq;
    _Alignas(DEXT_RING_LINE) uint32_t server_sleeping;
    _Alignas(DEXT_RING_LINE) uint32_t client_sleeping;
    _Alignas(DEXT_RING_LINE) uint32_t req_len;
    uint8_t req[DEXT_WIRE_MAX_MSG];
    _Alignas(DEXT_RING_LINE) uint32_t rep_len;
    uint8_t rep[DEXT_WIRE_MAX_MSG];
} DextRing;

/* The memfd's size: whole pages, the same on both sides. */
#define DEXT_RING_BYTES ((sizeof(DextRing) + 4095) & ~(size_t)4095)

/* Spin budgets in microseconds: "poll" alone, and the bounds. */
#define DEXT_RING_SPIN_DEFAULT_US 200
#define DEXT_RING_SPIN_MAX_US 1000000

/*
 * How long a waiter spins flat out before it starts yielding the CPU
 * between looks: long enough for a reply from another CPU, short enough
 * that a peer on the same CPU is not kept off it for long.
 */
#define DEXT_RING_PURE_SPIN_NS 20000

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
 * dext_ring_spin() - poll *@word until it differs from @old, for at most
 * @budget_ns
 * @word: a word of the shared ring
 * @old: its value when nothing has happened
 * @budget_ns: how long to poll
 *
 * Spins flat out for DEXT_RING_PURE_SPIN_NS, then yields the CPU between
 * looks (a peer sharing our CPU gets to run).
 *
 * Return: the new value (acquire), or @old once the budget is spent.
 */
static inline uint32_t dext_ring_spin(const uint32_t *word, uint32_t old,
                                      uint64_t budget_ns)
{
    uint64_t start = 0, now;
    uint32_t v;
    unsigned i;

    for (i = 0;; i++) {
        v = __atomic_load_n(word, __ATOMIC_ACQUIRE);
        if (v != old || budget_ns == 0) {
            return v;
        }
        if ((i & 63) != 63) {
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
