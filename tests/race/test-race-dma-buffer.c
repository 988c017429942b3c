/*
 * SPDX-License-Identifier: MIT
 *
 * One session's DMA buffer from several threads at once:
 * apple_dext_allocate_dma_buffer() (two threads, each with a size and an
 * alignment of its own), apple_dext_free_dma_buffer() and
 * apple_dext_map_dma_buffer()/_unmap_dma_buffer(), for race_seconds().
 *
 * Every allocation must report the size asked for, one segment and a
 * bus address inside edu's DMA mask aligned as asked.  Every few
 * allocations the allocating thread has the device write a fresh
 * pattern to the end of the buffer at the bus address it was given, then
 * maps the buffer: if the mapping has that thread's size, the buffer is
 * the one its allocation made and was never replaced or freed meanwhile
 * (no other thread makes buffers of that size), so the pattern must be
 * there.  A buffer freed or replaced in between is fine and not checked.
 * While a thread checks, the others hold back their next free or
 * allocation (a call already in flight still lands), or the buffer would
 * almost never survive long enough to be checked.
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "edu.h"
#include "race.h"

#define ALLOCATORS   2
#define SRC_IOVA     0x100000
/* The device checks one allocation in this many (each costs a DMA). */
#define VERIFY_EVERY 16

typedef struct Allocator {
    RaceTally t;
    unsigned id;
    uint64_t size;
    uint64_t align;
    unsigned long verified;
    unsigned long replaced;
} Allocator;

static io_connect_t conn;
static RaceDma dma;
static atomic_bool stop;

static uint64_t allocator_size(unsigned id)
{
    return (uint64_t)(id + 1) * 4096;
}

/*
 * Have the device write a pattern to the last RACE_PATTERN_LEN bytes of
 * the buffer at @bus, then look through a mapping (see the top).
 */
static void verify_buffer(Allocator *a, uint64_t bus)
{
    uint64_t off = a->size - RACE_PATTERN_LEN;
    uint8_t pattern[RACE_PATTERN_LEN];
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    kern_return_t kr;

    if (!race_check_begin(&dma, &a->t, bus + off, pattern)) {
        goto out;
    }
    kr = apple_dext_map_dma_buffer(conn, &addr, &size);
    a->t.calls++;
    if (kr == kIOReturnNotReady) {
        a->replaced++;          /* freed meanwhile */
        goto out;
    }
    if (kr != kIOReturnSuccess) {
        race_note(&a->t, "map_dma_buffer: %s", apple_dext_strerror(kr));
        goto out;
    }
    if (size != a->size) {
        a->replaced++;          /* another thread's buffer now */
    } else if (memcmp((const uint8_t *)(uintptr_t)addr + off, pattern,
                      sizeof(pattern)) != 0) {
        race_note(&a->t, "device DMA to bus 0x%llx, from an allocation of "
                  "%llu bytes still current, did not reach the buffer",
                  (unsigned long long)bus, (unsigned long long)a->size);
    } else {
        a->verified++;
    }
    kr = apple_dext_unmap_dma_buffer(conn, addr);
    a->t.calls++;
    if (kr != kIOReturnSuccess) {
        race_note(&a->t, "unmap_dma_buffer: %s", apple_dext_strerror(kr));
    }
out:
    race_check_end(&dma);
}

static void *allocator_main(void *opaque)
{
    Allocator *a = opaque;
    unsigned long i;

    for (i = 0; !atomic_load(&stop); i++) {
        AppleDextDMABuffer db;
        kern_return_t kr;

        race_hold_wait(&stop);
        memset(&db, 0xa5, sizeof(db));
        kr = apple_dext_allocate_dma_buffer(conn, a->size, a->align, &db);
        a->t.calls++;
        if (kr != kIOReturnSuccess) {
            race_note(&a->t, "allocate_dma_buffer(%llu, %llu): %s",
                      (unsigned long long)a->size,
                      (unsigned long long)a->align, apple_dext_strerror(kr));
            continue;
        }
        if (db.size != a->size || db.segment_count != 1 ||
            db.bus_len != a->size || db.bus_addr % a->align != 0 ||
            !race_edu_bus_ok(db.bus_addr, db.bus_len) ||
            db.class_code != EDU_CLASS_CODE) {
            race_note(&a->t, "allocate_dma_buffer(%llu, %llu) reported size "
                      "%llu, %llu segments, bus 0x%llx + %llu, class 0x%x",
                      (unsigned long long)a->size,
                      (unsigned long long)a->align,
                      (unsigned long long)db.size,
                      (unsigned long long)db.segment_count,
                      (unsigned long long)db.bus_addr,
                      (unsigned long long)db.bus_len, db.class_code);
            continue;
        }
        if (i % VERIFY_EVERY == 0) {
            verify_buffer(a, db.bus_addr);
        }
    }
    return NULL;
}

static void *freer_main(void *opaque)
{
    RaceTally *t = opaque;
    kern_return_t kr;

    while (!atomic_load(&stop)) {
        race_hold_wait(&stop);
        kr = apple_dext_free_dma_buffer(conn);
        t->calls++;
        if (kr != kIOReturnSuccess) {
            race_note(t, "free_dma_buffer: %s", apple_dext_strerror(kr));
        }
    }
    return NULL;
}

/* Map, touch both ends, unmap; now and then the dext's buffer count. */
static void *mapper_main(void *opaque)
{
    RaceTally *t = opaque;
    unsigned long i;

    for (i = 0; !atomic_load(&stop); i++) {
        mach_vm_address_t addr = 0;
        mach_vm_size_t size = 0;
        volatile uint8_t *m;
        AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
        kern_return_t kr;

        kr = apple_dext_map_dma_buffer(conn, &addr, &size);
        t->calls++;
        if (kr == kIOReturnSuccess) {
            if (size != allocator_size(0) && size != allocator_size(1)) {
                race_note(t, "map_dma_buffer: size %llu was never allocated",
                          (unsigned long long)size);
            }
            /* Mapped memory stays valid even if the buffer is freed now. */
            m = (volatile uint8_t *)(uintptr_t)addr;
            m[0] = m[size - 1];
            kr = apple_dext_unmap_dma_buffer(conn, addr);
            t->calls++;
            if (kr != kIOReturnSuccess) {
                race_note(t, "unmap_dma_buffer: %s", apple_dext_strerror(kr));
            }
        } else if (kr != kIOReturnNotReady) {
            race_note(t, "map_dma_buffer: %s", apple_dext_strerror(kr));
        }
        if (i % 16 == 0) {
            kr = apple_dext_get_status(harness_target(), &st);
            t->calls++;
            if (kr != kIOReturnSuccess || st.dma_buffers > 1) {
                race_note(t, "status: %s, %u DMA buffers",
                          apple_dext_strerror(kr), st.dma_buffers);
            }
        }
    }
    return NULL;
}

/* After the race: the session is sound and a new buffer reaches memory. */
static void check_after(void)
{
    uint8_t pattern[RACE_PATTERN_LEN];
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    AppleDextDMABuffer db;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };

    harness_section("after the race: free, allocate, device DMA");
    CHECK_KR(apple_dext_free_dma_buffer(conn), kIOReturnSuccess);
    CHECK_KR(apple_dext_map_dma_buffer(conn, &addr, &size),
             kIOReturnNotReady);
    if (harness_status(&st)) {
        CHECK_EQ(st.dma_buffers, 0);
        CHECK_EQ(st.dma_regions, 1);
    }
    memset(&db, 0, sizeof(db));
    if (!CHECK_KR(apple_dext_allocate_dma_buffer(conn, 8192, 0, &db),
                  kIOReturnSuccess)) {
        return;
    }
    CHECK_EQ(db.bus_len, 8192);
    CHECK_EQ(db.bus_addr % 4096, 0);
    CHECK(race_edu_bus_ok(db.bus_addr, db.bus_len));
    if (!CHECK_KR(apple_dext_map_dma_buffer(conn, &addr, &size),
                  kIOReturnSuccess)) {
        return;
    }
    CHECK_EQ(size, 8192);
    harness_fill_random(pattern, sizeof(pattern));
    pthread_mutex_lock(&dma.lock);
    if (race_dma_write(&dma, db.bus_addr + 4096, pattern)) {
        CHECK(memcmp((const uint8_t *)(uintptr_t)addr + 4096, pattern,
                     sizeof(pattern)) == 0);
    }
    pthread_mutex_unlock(&dma.lock);
    CHECK_KR(apple_dext_unmap_dma_buffer(conn, addr), kIOReturnSuccess);
    CHECK_KR(apple_dext_free_dma_buffer(conn), kIOReturnSuccess);
}

int main(int argc, char **argv)
{
    Allocator alloc[ALLOCATORS];
    RaceTally freer = { .name = "free" }, mapper = { .name = "map/unmap" };
    pthread_t threads[ALLOCATORS + 2];
    unsigned i, secs = race_seconds();
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };

    harness_init(argc, argv, NULL);
    conn = harness_connect_edu();
    if (conn == IO_OBJECT_NULL ||
        !CHECK_KR(apple_dext_claim(conn), kIOReturnSuccess) ||
        !race_dma_init(&dma, conn, SRC_IOVA)) {
        return harness_finish();
    }

    harness_section("%d allocators, a freer and a mapper on one session "
                    "for %u s", ALLOCATORS, secs);
    memset(alloc, 0, sizeof(alloc));
    for (i = 0; i < ALLOCATORS; i++) {
        alloc[i].t.name = i == 0 ? "allocate 4 KiB" : "allocate 8 KiB";
        alloc[i].id = i;
        alloc[i].size = allocator_size(i);
        /* The second asks for more than a page: alignment is honoured. */
        alloc[i].align = i == 0 ? 4096 : 65536;
        CHECK_EQ(pthread_create(&threads[i], NULL, allocator_main, &alloc[i]),
                 0);
    }
    CHECK_EQ(pthread_create(&threads[ALLOCATORS], NULL, freer_main, &freer),
             0);
    CHECK_EQ(pthread_create(&threads[ALLOCATORS + 1], NULL, mapper_main,
                            &mapper), 0);
    race_run_for(secs * 1000, &stop);
    for (i = 0; i < ALLOCATORS + 2; i++) {
        pthread_join(threads[i], NULL);
    }
    for (i = 0; i < ALLOCATORS; i++) {
        race_report(&alloc[i].t);
        printf("# %s: device DMA checked %lu times, %lu buffers gone "
               "before the check\n", alloc[i].t.name, alloc[i].verified,
               alloc[i].replaced);
    }
    race_report(&freer);
    race_report(&mapper);

    check_after();
    race_dma_destroy(&dma);
    apple_dext_disconnect(conn);
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, 0);
        CHECK_EQ(st.dma_buffers, 0);
        CHECK_EQ(st.dma_regions, 0);
    }
    return harness_finish();
}
