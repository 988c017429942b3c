/*
 * SPDX-License-Identifier: MIT
 *
 * Shared pieces of the race tests (suite "race"): how long to hammer,
 * per-thread tallies of wrong results that are reported once at the end
 * rather than once per call, and edu's single DMA engine shared by
 * several threads.
 *
 * A race test runs its threads for race_seconds() and asserts only what
 * must hold whatever the interleaving: the IOReturn of every call is one
 * the header allows for that interleaving, and every value returned is
 * one the device can really use.  It never asserts on speed or on how
 * often an interleaving happened.
 */

#ifndef LIBDEXT_TESTS_RACE_H
#define LIBDEXT_TESTS_RACE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* Bytes each pattern transfer moves (fits edu's 4 KiB device buffer). */
#define RACE_PATTERN_LEN 256

/* One thread's record: calls made and the first wrong result. */
typedef struct RaceTally {
    const char *name;
    unsigned long calls;
    unsigned errors;
    char first[256];
} RaceTally;

/*
 * edu's one DMA engine: every thread that programs it holds @lock from
 * programming the transfer until it has checked what it needed.  @src
 * is a page of client memory registered at @src_bus, the RAM side of the
 * first leg of race_dma_write().
 */
typedef struct RaceDma {
    io_connect_t c;
    pthread_mutex_t lock;
    uint8_t *src;
    uint64_t src_iova;
    uint64_t src_bus;
} RaceDma;

/**
 * race_seconds() - how long each hammer phase runs
 *
 * Return: $RACE_SECONDS if set to 1..60, else 3.
 */
unsigned race_seconds(void);

/**
 * race_note() - record a wrong result in @t
 * @t: the calling thread's tally
 * @fmt: what went wrong, printf-style
 *
 * Only the first message is kept; the count is reported by
 * race_report().  Also makes race_run_for() stop early.
 */
void race_note(RaceTally *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * race_report() - check that @t saw no wrong result, print its calls
 * @t: a tally no thread is writing any more
 *
 * Return: true if @t recorded no error.
 */
bool race_report(const RaceTally *t);

/**
 * race_run_for() - let the threads hammer, then tell them to stop
 * @ms: how long, in milliseconds
 * @stop: set once @ms have passed, or at once on a failed check or a
 *        race_note(), so a broken dext does not run the clock out
 */
void race_run_for(unsigned ms, atomic_bool *stop);

/**
 * race_hold_begin() - ask the other threads to hold back their next call
 *
 * For a thread about to check something through the device that the
 * others would otherwise almost always undo first (calls already in
 * flight still land).  Pair with race_hold_end().
 */
void race_hold_begin(void);

/** race_hold_end() - undo race_hold_begin() */
void race_hold_end(void);

/**
 * race_hold_wait() - wait while any thread holds the others back
 * @stop: the run's stop flag; returns at once when it is set
 */
void race_hold_wait(atomic_bool *stop);

/**
 * race_edu_bus_ok() - true if [@bus, @bus + @len) lies within edu's
 * 28-bit DMA mask and is not empty
 */
bool race_edu_bus_ok(uint64_t bus, uint64_t len);

/**
 * race_dma_init() - register the pattern source and set up the lock
 * @d: the engine to set up
 * @c: open, claimed connection that programs edu
 * @iova: key for the source region; kept registered until
 *        race_dma_destroy()
 *
 * Return: true on success (a failed check otherwise).
 */
bool race_dma_init(RaceDma *d, io_connect_t c, uint64_t iova);

/**
 * race_dma_destroy() - unregister the source region and free it
 * @d: from a successful race_dma_init()
 */
void race_dma_destroy(RaceDma *d);

/**
 * race_dma_write() - make the device write @pattern to bus address @bus
 * @d: the engine; the caller holds @d->lock
 * @bus: destination bus address (need not be mapped: then the IOMMU
 *       faults the write and nothing lands)
 * @pattern: RACE_PATTERN_LEN bytes
 *
 * Two edu transfers: the source region -> device buffer, then device
 * buffer -> @bus.  Each is waited for (bounded).
 *
 * Return: true if both transfers completed (a failed check otherwise).
 */
bool race_dma_write(RaceDma *d, uint64_t bus, const uint8_t *pattern);

/**
 * race_check_begin() - start checking a bus address through the device
 * @d: the engine
 * @t: the calling thread's tally
 * @bus: where the device writes
 * @pattern: receives RACE_PATTERN_LEN fresh random bytes, then written
 *
 * Takes @d->lock, holds the other threads back (race_hold_begin()) and
 * has the device write @pattern at @bus.  Whatever it returns, finish
 * with race_check_end().
 *
 * Return: true if the transfers completed, else false after race_note().
 */
bool race_check_begin(RaceDma *d, RaceTally *t, uint64_t bus,
                      uint8_t *pattern);

/** race_check_end() - undo race_check_begin()'s hold and lock */
void race_check_end(RaceDma *d);

/**
 * race_dma_read() - make the device read RACE_PATTERN_LEN bytes at @bus
 * @d: the engine; the caller holds @d->lock
 * @bus: source bus address (a fault is fine)
 *
 * The bytes land in the second half of edu's device buffer, which no
 * race_dma_write() uses.
 *
 * Return: true if the transfer completed (a failed check otherwise).
 */
bool race_dma_read(RaceDma *d, uint64_t bus);

#endif /* LIBDEXT_TESTS_RACE_H */
