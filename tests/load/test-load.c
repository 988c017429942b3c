/*
 * SPDX-License-Identifier: MIT
 *
 * Load: CLIENTS connections with THREADS threads each run a mixed
 * workload (config reads and blocks, MMIO id reads, DMA region
 * register/probe/unregister on iovas of their own, device status) for
 * $LOAD_SECONDS (default 3).  Every call must succeed and return what it
 * should.  Over dextd, the daemon's VmRSS and open fds are read after a
 * warm-up and at the end: fds must come back to the same count and RSS
 * may not grow by more than LOAD_RSS_SLACK_KB.  Also run under TSan.
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "edu.h"

#define CLIENTS             4
#define THREADS             3
/*
 * Growth of dextd's RSS allowed.  A plain build stays flat to the page;
 * under a sanitizer the allocator's quarantine and caches grow with the
 * number of calls, whatever is freed.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LOAD_RSS_SLACK_KB (64 * 1024)
#else
#define LOAD_RSS_SLACK_KB (4 * 1024)
#endif

static io_connect_t conns[CLIENTS];
static atomic_bool stop;
static atomic_ulong total_calls;

typedef struct Worker {
    pthread_t tid;
    io_connect_t c;
    unsigned id;
} Worker;

static void *worker_main(void *opaque)
{
    Worker *w = opaque;
    uint64_t iova = 0x1000000ull + (uint64_t)w->id * 0x100000;
    uint64_t *mem;
    unsigned long calls = 0;
    unsigned i = 0;

    mem = mmap(NULL, 16384, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!CHECK(mem != MAP_FAILED)) {
        return NULL;
    }
    while (!atomic_load(&stop) && harness_failures() == 0) {
        AppleDextDeviceStatus ds;
        uint8_t cfg[64];
        uint64_t v;

        mem[1] = ((uint64_t)w->id << 32) | i;
        switch (i++ % 5) {
        case 0:
            CHECK_KR(apple_dext_config_read(w->c, 0, 4, &v),
                     kIOReturnSuccess);
            CHECK_EQ(v, 0x11e81234);
            break;
        case 1:
            CHECK_KR(apple_dext_mmio_read(w->c, 0, EDU_REG_ID, 4, &v),
                     kIOReturnSuccess);
            CHECK_EQ(v, 0x010000ed);
            break;
        case 2:
            CHECK_KR(apple_dext_config_read_block(w->c, 0, cfg, sizeof(cfg)),
                     kIOReturnSuccess);
            CHECK_EQ(cfg[0], 0x34);
            break;
        case 3:
            if (CHECK_KR(apple_dext_register_dma(w->c, iova,
                                                 (uintptr_t)mem, 16384,
                                                 NULL, NULL),
                         kIOReturnSuccess)) {
                CHECK_KR(apple_dext_probe_dma(w->c, iova, 8, &v),
                         kIOReturnSuccess);
                CHECK_EQ(v, mem[1]);
                CHECK_KR(apple_dext_unregister_dma(w->c, iova),
                         kIOReturnSuccess);
            }
            calls += 2;
            break;
        default:
            CHECK_KR(apple_dext_get_device_status(w->c, &ds),
                     kIOReturnSuccess);
            CHECK(ds.claimed);
            break;
        }
        calls++;
    }
    atomic_fetch_add(&total_calls, calls);
    munmap(mem, 16384);
    return NULL;
}

static void run_for(unsigned ms)
{
    Worker w[CLIENTS * THREADS];
    HarnessDeadline d;
    unsigned i;

    atomic_store(&stop, false);
    for (i = 0; i < CLIENTS * THREADS; i++) {
        w[i].c = conns[i / THREADS];
        w[i].id = i;
        pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
    }
    d = harness_deadline(ms);
    while (!harness_expired(&d) && harness_failures() == 0) {
        usleep(10000);
    }
    atomic_store(&stop, true);
    for (i = 0; i < CLIENTS * THREADS; i++) {
        pthread_join(w[i].tid, NULL);
    }
}

int main(int argc, char **argv)
{
    const char *env = getenv("LOAD_SECONDS");
    unsigned secs = env ? (unsigned)atoi(env) : 3;
    long rss0 = 0, rss1 = 0;
    int fds0 = 0, fds1 = 0;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    pid_t pid;
    unsigned i;

    harness_init(argc, argv, NULL);
    pid = harness_server_pid();
    for (i = 0; i < CLIENTS; i++) {
        conns[i] = harness_connect_edu();
        if (!conns[i] || !CHECK_KR(apple_dext_claim(conns[i]),
                                   kIOReturnSuccess)) {
            return harness_finish();
        }
    }

    harness_section("warm-up: 500 ms");
    run_for(500);
    rss0 = harness_rss_kb(pid);
    fds0 = harness_count_fds(pid);
    atomic_store(&total_calls, 0);

    harness_section("%d clients x %d threads for %u s", CLIENTS, THREADS,
                    secs);
    run_for(secs * 1000);
    /* Channels of finished status queries close asynchronously. */
    {
        HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
        unsigned r = 0;

        while ((fds1 = harness_count_fds(pid)) > fds0 &&
               !harness_expired(&d)) {
            harness_backoff(&r);
        }
    }
    rss1 = harness_rss_kb(pid);
    printf("# %lu calls, %lu per second, 0 errors expected\n",
           atomic_load(&total_calls),
           atomic_load(&total_calls) / (secs ? secs : 1));
    printf("# %s pid %d: VmRSS %ld -> %ld kB, fds %d -> %d\n",
           harness_is_unix() ? "dextd" : "self", (int)pid, rss0, rss1, fds0,
           fds1);
    if (harness_is_unix()) {
        CHECK_MSG(fds1 <= fds0, "dextd fds grew from %d to %d", fds0,
                  fds1);
        /* Under a wrapper (valgrind) the RSS is the tool's. */
        CHECK_MSG(getenv("DEXTD_WRAPPER") != NULL ||
                  rss1 - rss0 < LOAD_RSS_SLACK_KB,
                  "dextd RSS grew by %ld kB under load", rss1 - rss0);
    }
    if (harness_status(&st)) {
        CHECK_EQ(st.dma_regions, 0);
        CHECK_EQ(st.claims, CLIENTS);
    }
    for (i = 0; i < CLIENTS; i++) {
        apple_dext_disconnect(conns[i]);
    }
    return harness_finish();
}
