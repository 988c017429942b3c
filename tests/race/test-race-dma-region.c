/*
 * SPDX-License-Identifier: MIT
 *
 * One iova of one session from several threads at once: three threads
 * apple_dext_register_dma() and _unregister_dma() the same iova, each
 * with memory of its own; one thread apple_dext_probe_dma()s it; one
 * keeps edu's DMA engine writing to and reading from the bus address
 * last handed out, for race_seconds().
 *
 * What must hold whatever the interleaving:
 *  - register answers kIOReturnSuccess or, while the iova is taken,
 *    kIOReturnStillOpen; unregister answers kIOReturnSuccess or
 *    kIOReturnNotFound; probe answers kIOReturnSuccess or
 *    kIOReturnNotFound.  Nothing else.
 *  - Exactly one register wins at a time: successful registers minus
 *    successful unregisters, over all threads, is 1 if the iova is still
 *    registered at the end and 0 if not.
 *  - Every bus address handed out lies within edu's DMA mask with the
 *    length asked for, and reaches the memory it was registered for:
 *    every few registrations the registering thread has the device write
 *    a fresh pattern there, then probes the iova; if the probe shows that
 *    thread's own marker, its region was registered throughout (only it
 *    registers that memory), so the pattern must have landed.  (While
 *    it checks, the other workers hold back their next call.)
 *  - A probe shows one of the threads' markers, never other bytes.
 *  - The device never writes outside the window the test aims at.
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "edu.h"
#include "race.h"

#define WORKERS      3
#define KEY_IOVA     0x7000000
#define SRC_IOVA     0x100000
#define REGION_SIZE  8192
/* Where in a region the device writes: clear of both markers. */
#define DMA_OFF      64
/* Alignment of the workers' memory: a multiple of any IOMMU page size. */
#define MEM_ALIGN    0x10000
/* The device checks one registration in this many. */
#define VERIFY_EVERY 8

typedef struct Worker {
    RaceTally t;
    unsigned id;
    unsigned long registered;
    unsigned long unregistered;
    unsigned long verified;
} Worker;

static io_connect_t conn;
static RaceDma dma;
static atomic_bool stop;
static uint8_t *mem[WORKERS];
static uint8_t *mem_map[WORKERS];
/* The bus address of the latest successful register; 0 before any. */
static atomic_ullong last_bus;

static uint64_t va(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

/* The word at the start (@end false) or end of worker @id's memory. */
static uint64_t marker(unsigned id, bool end)
{
    return 0x5241434500000000ull | (end ? 0x100 : 0) | id;
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/* Device DMA to @bus, then probe: see the top of the file. */
static void verify_region(Worker *w, uint64_t bus)
{
    uint8_t pattern[RACE_PATTERN_LEN];
    uint64_t word = 0;
    kern_return_t kr;

    if (!race_check_begin(&dma, &w->t, bus + DMA_OFF, pattern)) {
        goto out;
    }
    kr = apple_dext_probe_dma(conn, KEY_IOVA, 0, &word);
    w->t.calls++;
    if (kr == kIOReturnSuccess && word == marker(w->id, false)) {
        if (memcmp(mem[w->id] + DMA_OFF, pattern, sizeof(pattern)) != 0) {
            race_note(&w->t, "device DMA to bus 0x%llx, from a register "
                      "still in place, did not reach its memory",
                      (unsigned long long)bus);
        } else {
            w->verified++;
        }
    } else if (kr != kIOReturnSuccess && kr != kIOReturnNotFound) {
        race_note(&w->t, "probe_dma: %s", apple_dext_strerror(kr));
    }
out:
    race_check_end(&dma);
}

static void unregister(Worker *w)
{
    kern_return_t kr;

    race_hold_wait(&stop);
    kr = apple_dext_unregister_dma(conn, KEY_IOVA);
    w->t.calls++;
    if (kr == kIOReturnSuccess) {
        w->unregistered++;
    } else if (kr != kIOReturnNotFound) {
        race_note(&w->t, "unregister_dma: %s", apple_dext_strerror(kr));
    }
}

static void *worker_main(void *opaque)
{
    Worker *w = opaque;
    unsigned long i;

    for (i = 0; !atomic_load(&stop); i++) {
        uint64_t bus = 0, len = 0;
        kern_return_t kr;

        race_hold_wait(&stop);
        kr = apple_dext_register_dma(conn, KEY_IOVA, va(mem[w->id]),
                                     REGION_SIZE, &bus, &len);
        w->t.calls++;
        if (kr == kIOReturnStillOpen) {
            /* Someone else's region: take it down, to keep things moving. */
            unregister(w);
            continue;
        }
        if (kr != kIOReturnSuccess) {
            race_note(&w->t, "register_dma: %s", apple_dext_strerror(kr));
            continue;
        }
        w->registered++;
        if (len != REGION_SIZE || !race_edu_bus_ok(bus, len)) {
            race_note(&w->t, "register_dma of %u bytes: bus 0x%llx + %llu",
                      REGION_SIZE, (unsigned long long)bus,
                      (unsigned long long)len);
        } else {
            atomic_store(&last_bus, bus);
            if (i % VERIFY_EVERY == 0) {
                verify_region(w, bus);
            }
        }
        unregister(w);
    }
    return NULL;
}

static void *prober_main(void *opaque)
{
    RaceTally *t = opaque;
    unsigned long i;

    for (i = 0; !atomic_load(&stop); i++) {
        bool end = i % 2 == 1;
        uint64_t word = 0;
        kern_return_t kr;
        unsigned id;

        kr = apple_dext_probe_dma(conn, KEY_IOVA, end ? REGION_SIZE - 8 : 0,
                                  &word);
        t->calls++;
        if (kr == kIOReturnSuccess) {
            for (id = 0; id < WORKERS && word != marker(id, end); id++) {
            }
            if (id == WORKERS) {
                race_note(t, "probe_dma at %s read 0x%llx, no region's "
                          "marker", end ? "the end" : "0",
                          (unsigned long long)word);
            }
        } else if (kr != kIOReturnNotFound) {
            race_note(t, "probe_dma: %s", apple_dext_strerror(kr));
        }
        /* One byte past the end: never a read. */
        if (i % 8 == 0) {
            kr = apple_dext_probe_dma(conn, KEY_IOVA, REGION_SIZE - 7, &word);
            t->calls++;
            if (kr != kIOReturnOverrun && kr != kIOReturnNotFound) {
                race_note(t, "probe_dma past the end: %s",
                          apple_dext_strerror(kr));
            }
        }
    }
    return NULL;
}

/* Device DMA into and out of whatever the latest bus address maps now. */
static void *dma_main(void *opaque)
{
    RaceTally *t = opaque;
    uint8_t pattern[RACE_PATTERN_LEN];
    unsigned round = 0;

    while (!atomic_load(&stop)) {
        uint64_t bus = atomic_load(&last_bus);
        bool ok;

        if (bus == 0) {
            harness_backoff(&round);
            continue;
        }
        harness_fill_random(pattern, sizeof(pattern));
        pthread_mutex_lock(&dma.lock);
        ok = race_dma_write(&dma, bus + DMA_OFF, pattern) &&
             race_dma_read(&dma, bus + DMA_OFF);
        pthread_mutex_unlock(&dma.lock);
        t->calls++;
        if (!ok) {
            race_note(t, "edu DMA at bus 0x%llx did not complete",
                      (unsigned long long)bus);
        }
    }
    return NULL;
}

/*
 * Each worker's memory: zeroes, a marker word at each end.  Aligned to
 * MEM_ALIGN, so that every region starts at the same offset in an IOMMU
 * page: the bus address of one region then reaches the same offset in
 * whichever region holds it now, and a stale one cannot land outside
 * the DMA window.
 */
static bool map_memory(void)
{
    unsigned i;

    for (i = 0; i < WORKERS; i++) {
        uint8_t *p = mmap(NULL, REGION_SIZE + MEM_ALIGN,
                          PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                          -1, 0);

        if (!CHECK(p != MAP_FAILED)) {
            return false;
        }
        mem_map[i] = p;
        mem[i] = p + (-(uintptr_t)p & (MEM_ALIGN - 1));
        *(uint64_t *)mem[i] = marker(i, false);
        *(uint64_t *)(mem[i] + REGION_SIZE - 8) = marker(i, true);
    }
    return true;
}

/* Nothing outside [DMA_OFF, DMA_OFF + RACE_PATTERN_LEN) was written. */
static void check_untouched(void)
{
    unsigned i;
    size_t off;

    for (i = 0; i < WORKERS; i++) {
        size_t stray = 0;

        CHECK_EQ(load64(mem[i]), marker(i, false));
        CHECK_EQ(load64(mem[i] + REGION_SIZE - 8), marker(i, true));
        for (off = 8; off < REGION_SIZE - 8; off++) {
            if ((off < DMA_OFF || off >= DMA_OFF + RACE_PATTERN_LEN) &&
                mem[i][off] != 0) {
                stray++;
            }
        }
        CHECK_MSG(stray == 0, "memory of worker %u: %zu bytes written "
                  "outside the DMA window", i, stray);
    }
}

/* After the race: the iova registers, reaches memory, unregisters. */
static void check_after(void)
{
    uint8_t pattern[RACE_PATTERN_LEN];
    uint64_t bus = 0, len = 0, word = 0;

    harness_section("after the race: register, device DMA, probe, "
                    "unregister");
    if (!CHECK_KR(apple_dext_register_dma(conn, KEY_IOVA, va(mem[0]),
                                          REGION_SIZE, &bus, &len),
                  kIOReturnSuccess)) {
        return;
    }
    CHECK_EQ(len, REGION_SIZE);
    CHECK(race_edu_bus_ok(bus, len));
    CHECK_KR(apple_dext_register_dma(conn, KEY_IOVA, va(mem[1]), REGION_SIZE,
                                     NULL, NULL), kIOReturnStillOpen);
    harness_fill_random(pattern, sizeof(pattern));
    pthread_mutex_lock(&dma.lock);
    if (race_dma_write(&dma, bus + DMA_OFF, pattern)) {
        CHECK(memcmp(mem[0] + DMA_OFF, pattern, sizeof(pattern)) == 0);
    }
    pthread_mutex_unlock(&dma.lock);
    CHECK_KR(apple_dext_probe_dma(conn, KEY_IOVA, 0, &word),
             kIOReturnSuccess);
    CHECK_EQ(word, marker(0, false));
    CHECK_KR(apple_dext_unregister_dma(conn, KEY_IOVA), kIOReturnSuccess);
    CHECK_KR(apple_dext_unregister_dma(conn, KEY_IOVA), kIOReturnNotFound);
    CHECK_KR(apple_dext_probe_dma(conn, KEY_IOVA, 0, &word),
             kIOReturnNotFound);
}

int main(int argc, char **argv)
{
    Worker workers[WORKERS];
    RaceTally prober = { .name = "probe" }, device = { .name = "edu DMA" };
    pthread_t threads[WORKERS + 2];
    unsigned long registered = 0, unregistered = 0;
    unsigned i, secs = race_seconds();
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    kern_return_t kr;

    harness_init(argc, argv, NULL);
    conn = harness_connect_edu();
    if (conn == IO_OBJECT_NULL ||
        !CHECK_KR(apple_dext_claim(conn), kIOReturnSuccess) ||
        !map_memory() || !race_dma_init(&dma, conn, SRC_IOVA)) {
        return harness_finish();
    }

    harness_section("%d threads register/unregister iova 0x%x, a prober and "
                    "edu DMA, one session, %u s", WORKERS, KEY_IOVA, secs);
    memset(workers, 0, sizeof(workers));
    for (i = 0; i < WORKERS; i++) {
        static const char *const names[WORKERS] = {
            "register/unregister 0", "register/unregister 1",
            "register/unregister 2",
        };

        workers[i].t.name = names[i];
        workers[i].id = i;
        CHECK_EQ(pthread_create(&threads[i], NULL, worker_main, &workers[i]),
                 0);
    }
    CHECK_EQ(pthread_create(&threads[WORKERS], NULL, prober_main, &prober),
             0);
    CHECK_EQ(pthread_create(&threads[WORKERS + 1], NULL, dma_main, &device),
             0);
    race_run_for(secs * 1000, &stop);
    for (i = 0; i < WORKERS + 2; i++) {
        pthread_join(threads[i], NULL);
    }
    for (i = 0; i < WORKERS; i++) {
        race_report(&workers[i].t);
        printf("# worker %u: %lu registered, %lu unregistered, device DMA "
               "checked %lu times\n", i, workers[i].registered,
               workers[i].unregistered, workers[i].verified);
        registered += workers[i].registered;
        unregistered += workers[i].unregistered;
    }
    race_report(&prober);
    race_report(&device);

    harness_section("one register at a time: %lu registered, %lu "
                    "unregistered", registered, unregistered);
    kr = apple_dext_unregister_dma(conn, KEY_IOVA);
    if (kr == kIOReturnSuccess) {
        unregistered++;
    } else {
        CHECK_KR(kr, kIOReturnNotFound);
    }
    CHECK_EQ(registered, unregistered);
    if (harness_status(&st)) {
        CHECK_EQ(st.dma_regions, 1);      /* the pattern source */
    }
    check_untouched();
    check_after();
    race_dma_destroy(&dma);
    apple_dext_disconnect(conn);
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, 0);
        CHECK_EQ(st.dma_regions, 0);
    }
    for (i = 0; i < WORKERS; i++) {
        munmap(mem_map[i], REGION_SIZE + MEM_ALIGN);
    }
    return harness_finish();
}
