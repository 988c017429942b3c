/*
 * SPDX-License-Identifier: MIT
 *
 * Shared pieces of the race tests.  See race.h.
 */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "race.h"
#include "edu.h"

/* Wrong results noted by any thread, so the clock can stop early. */
static atomic_uint noted_errors;
/* Threads between race_hold_begin() and race_hold_end(). */
static atomic_uint holding;

unsigned race_seconds(void)
{
    const char *env = getenv("RACE_SECONDS");
    long v = env ? strtol(env, NULL, 10) : 0;

    return v >= 1 && v <= 60 ? (unsigned)v : 3;
}

void race_note(RaceTally *t, const char *fmt, ...)
{
    va_list ap;

    if (t->errors++ == 0) {
        va_start(ap, fmt);
        vsnprintf(t->first, sizeof(t->first), fmt, ap);
        va_end(ap);
    }
    atomic_fetch_add(&noted_errors, 1);
}

bool race_report(const RaceTally *t)
{
    printf("# %s: %lu calls, %u wrong\n", t->name, t->calls, t->errors);
    return CHECK_MSG(t->errors == 0, "%s: %u wrong results, first: %s",
                     t->name, t->errors, t->first);
}

void race_run_for(unsigned ms, atomic_bool *stop)
{
    HarnessDeadline d = harness_deadline(ms);

    /* Polled, not waited on: the threads run unsynchronised meanwhile. */
    while (!harness_expired(&d) && harness_failures() == 0 &&
           atomic_load(&noted_errors) == 0) {
        usleep(10000);
    }
    atomic_store(stop, true);
}

void race_hold_begin(void)
{
    atomic_fetch_add(&holding, 1);
}

void race_hold_end(void)
{
    atomic_fetch_sub(&holding, 1);
}

void race_hold_wait(atomic_bool *stop)
{
    unsigned round = 0;

    while (atomic_load(&holding) > 0 && !atomic_load(stop)) {
        harness_backoff(&round);
    }
}

bool race_edu_bus_ok(uint64_t bus, uint64_t len)
{
    return len > 0 && bus <= EDU_DMA_MASK && len - 1 <= EDU_DMA_MASK - bus;
}

bool race_dma_init(RaceDma *d, io_connect_t c, uint64_t iova)
{
    uint64_t len = 0;
    void *p;

    memset(d, 0, sizeof(*d));
    d->c = c;
    d->src_iova = iova;
    pthread_mutex_init(&d->lock, NULL);
    p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (!CHECK(p != MAP_FAILED)) {
        return false;
    }
    d->src = p;
    if (!CHECK_KR(apple_dext_register_dma(c, iova, (uint64_t)(uintptr_t)p,
                                          4096, &d->src_bus, &len),
                  kIOReturnSuccess)) {
        munmap(p, 4096);
        d->src = NULL;
        return false;
    }
    return CHECK_EQ(len, 4096) && CHECK(race_edu_bus_ok(d->src_bus, len));
}

void race_dma_destroy(RaceDma *d)
{
    if (d->src != NULL) {
        CHECK_KR(apple_dext_unregister_dma(d->c, d->src_iova),
                 kIOReturnSuccess);
        munmap(d->src, 4096);
        d->src = NULL;
    }
    pthread_mutex_destroy(&d->lock);
}

bool race_dma_write(RaceDma *d, uint64_t bus, const uint8_t *pattern)
{
    memcpy(d->src, pattern, RACE_PATTERN_LEN);
    return edu_dma(d->c, d->src_bus, EDU_DMA_BUF_ADDR, RACE_PATTERN_LEN, 0) &&
           edu_dma(d->c, EDU_DMA_BUF_ADDR, bus, RACE_PATTERN_LEN,
                   EDU_DMA_TO_RAM);
}

bool race_check_begin(RaceDma *d, RaceTally *t, uint64_t bus,
                      uint8_t *pattern)
{
    harness_fill_random(pattern, RACE_PATTERN_LEN);
    pthread_mutex_lock(&d->lock);
    race_hold_begin();
    if (!race_dma_write(d, bus, pattern)) {
        race_note(t, "edu DMA to bus 0x%llx did not complete",
                  (unsigned long long)bus);
        return false;
    }
    return true;
}

void race_check_end(RaceDma *d)
{
    race_hold_end();
    pthread_mutex_unlock(&d->lock);
}

bool race_dma_read(RaceDma *d, uint64_t bus)
{
    return edu_dma(d->c, bus, EDU_DMA_BUF_ADDR + EDU_DMA_BUF_SIZE / 2,
                   RACE_PATTERN_LEN, 0);
}
