/*
 * SPDX-License-Identifier: MIT
 *
 * The dext core driven directly, with clients that are other processes:
 *
 *  - binding to a process: a session opened with a child's pidfd reaches
 *    the child's memory; once the child has exited, its memory is never
 *    touched again (ProbeDMARegion and device DMA fail), whatever process
 *    gets its pid next; no pidfd for another process is refused;
 *  - the bus-space share: one client process may hold at most the
 *    configured share of a device's bus space, over all its sessions;
 *    another client still gets regions and a DMA buffer; in-process
 *    clients are exempt;
 *  - rate-limited logging: a device driven to log on every access by a
 *    client logs a burst, then reports what it suppressed.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "core-clients.h"

/* A page the test writes before forking: its children hold a copy. */
static uint8_t child_page[16384] __attribute__((aligned(16384)));

static unsigned log_lines;
static unsigned log_suppressed;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void count_log(void *opaque, int level, const char *msg)
{
    unsigned n;

    pthread_mutex_lock(&log_lock);
    log_lines++;
    if (sscanf(msg, "%u messages suppressed", &n) == 1) {
        log_suppressed += n;
    }
    pthread_mutex_unlock(&log_lock);
}

static IOReturn reg(DextSession *s, uint64_t iova, uint64_t va, uint64_t size)
{
    uint64_t in[3] = { iova, va, size };
    uint64_t out[3];

    return call(s, kDextSelectorRegisterDMARegion, in, 3, out, 3);
}

static IOReturn probe(DextSession *s, uint64_t iova, uint64_t *val)
{
    uint64_t in[2] = { iova, 0 };

    return call(s, kDextSelectorProbeDMARegion, in, 2, val, 1);
}

static DextCore *core_with(const char *spec, uint64_t *id)
{
    DextCore *core = dext_core_new(count_log, NULL);
    DextDevice *dev = NULL;

    if (!CHECK(core != NULL) ||
        !CHECK_KR(dext_device_create(spec, &dev), kIOReturnSuccess) ||
        !CHECK_KR(dext_core_add_device(core, dev, id), kIOReturnSuccess)) {
        exit(1);
    }
    return core;
}

static void test_binding(void)
{
    uint64_t id, val = 0;
    DextCore *core = core_with("edu", &id);
    DextSession *s, *refused = NULL;
    int pidfd;
    pid_t pid;

    harness_section("a session is bound to its process");
    memset(child_page, 0x5a, sizeof(child_page));
    pid = spawn_idle(&pidfd);
    if (!CHECK(pid > 0 && pidfd >= 0)) {
        dext_core_free(core);
        return;
    }
    CHECK_KR(dext_core_open(core, id, 0, pid, -1, &refused),
             kIOReturnNotPermitted);
    s = open_claimed(core, id, pid, pidfd);
    if (s == NULL) {
        reap(pid, pidfd);
        return;
    }
    CHECK_KR(reg(s, 0x10000, (uintptr_t)child_page, sizeof(child_page)),
             kIOReturnSuccess);
    CHECK_KR(probe(s, 0x10000, &val), kIOReturnSuccess);
    CHECK_EQ(val, 0x5a5a5a5a5a5a5a5aull);

    /* The child goes; the parent (this test) is a live process that
     * could have its pid: nothing of ours may be read in its name. */
    memset(child_page, 0xa5, sizeof(child_page));
    reap(pid, pidfd);
    CHECK_KR(probe(s, 0x10000, &val), kIOReturnNotAttached);
    CHECK_KR(reg(s, 0x40000, (uintptr_t)child_page, 4096), kIOReturnVMError);
    dext_session_close(s);

    /* A pidfd of a process that has exited cannot open a session. */
    pid = spawn_idle(&pidfd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK_KR(dext_core_open(core, id, 0, pid, pidfd, &refused),
             kIOReturnNotAttached);
    close(pidfd);
    dext_core_free(core);
}

/* Register 64-byte regions (a DART page each) until refused. */
static uint64_t fill_share(DextSession *s, uint64_t iova, IOReturn *why)
{
    uint64_t n = 0;

    while ((*why = reg(s, iova + n * 0x100, (uintptr_t)child_page + 64,
                       64)) == kIOReturnSuccess) {
        n++;
    }
    return n;
}

static void test_share(void)
{
    uint64_t id, n1, n2, out[6];
    uint64_t in[2] = { 4096, 0 };
    /* A 22-bit DMA mask: 3 MiB of 16 KiB pages above 1 MiB (small, so
     * that filling it stays quick under valgrind). */
    DextCore *core = core_with("edu,dma_mask=0x3fffff", &id);
    uint64_t pages = ((1ull << 22) - 0x100000) / 0x4000;
    DextSession *a1, *a2, *b, *self;
    int fa, fb;
    pid_t pa, pb;
    IOReturn why;

    harness_section("one client process holds at most its share");
    CHECK_KR(dext_core_set_dma_share(core, 0), kIOReturnBadArgument);
    CHECK_KR(dext_core_set_dma_share(core, 101), kIOReturnBadArgument);
    CHECK_KR(dext_core_set_dma_share(core, 25), kIOReturnSuccess);
    pa = spawn_idle(&fa);
    pb = spawn_idle(&fb);
    a1 = open_claimed(core, id, pa, fa);
    a2 = open_claimed(core, id, pa, fa);
    b = open_claimed(core, id, pb, fb);
    self = open_claimed(core, id, getpid(), -1);
    if (a1 == NULL || a2 == NULL || b == NULL || self == NULL) {
        exit(1);
    }
    /* Two sessions of one process draw on one share. */
    n1 = fill_share(a1, 0, &why);
    CHECK_KR(why, kIOReturnNoSpace);
    n2 = fill_share(a2, 0, &why);
    CHECK_KR(why, kIOReturnNoSpace);
    CHECK_MSG(n1 + n2 <= pages / 4 && n1 + n2 + 1 >= pages / 4,
              "process A holds %llu of %llu pages with a 25%% share",
              (unsigned long long)(n1 + n2), (unsigned long long)pages);
    CHECK_EQ(n2, 0);
    CHECK_MSG(log_lines > 0, "the refusal was logged");

    /* Another process is not starved. */
    CHECK_KR(reg(b, 0, (uintptr_t)child_page, 64), kIOReturnSuccess);
    CHECK_KR(call(b, kDextSelectorAllocateDMABuffer, in, 2, out, 6),
             kIOReturnSuccess);
    /* Released space returns to the share. */
    CHECK_KR(call(a1, kDextSelectorUnregisterDMARegion, (uint64_t[]){ 0 }, 1,
                  NULL, 0), kIOReturnSuccess);
    CHECK_KR(reg(a2, 0, (uintptr_t)child_page, 64), kIOReturnSuccess);
    /* The in-process client is not limited: it takes all that is left. */
    n1 = fill_share(self, 0, &why);
    CHECK_KR(why, kIOReturnNoResources);
    CHECK_MSG(n1 > pages / 2, "in-process client got %llu pages",
              (unsigned long long)n1);

    dext_session_close(a1);
    dext_session_close(a2);
    dext_session_close(b);
    dext_session_close(self);
    reap(pa, fa);
    reap(pb, fb);
    dext_core_free(core);
}

static void test_log_limit(void)
{
    uint64_t id;
    DextCore *core = core_with("edu", &id);
    DextSession *s = open_claimed(core, id, getpid(), -1);
    HarnessDeadline d;
    unsigned i, lines;

    harness_section("client-triggered device lines are rate-limited");
    if (s == NULL) {
        exit(1);
    }
    pthread_mutex_lock(&log_lock);
    log_lines = log_suppressed = 0;
    pthread_mutex_unlock(&log_lock);
    /* Each 2-byte access to edu's registers is a logged guest error. */
    for (i = 0; i < 500; i++) {
        call(s, kDextSelectorMMIOWrite, (uint64_t[]){ 0, 4, 2, 0 }, 4, NULL,
             0);
    }
    pthread_mutex_lock(&log_lock);
    lines = log_lines;
    pthread_mutex_unlock(&log_lock);
    CHECK_MSG(lines >= 1 && lines <= 10, "%u lines for 500 guest errors",
              lines);
    /* The budget refills: keep erring until a line reports the rest. */
    d = harness_deadline(5000);
    for (;;) {
        bool done;

        call(s, kDextSelectorMMIOWrite, (uint64_t[]){ 0, 4, 2, 0 }, 4, NULL,
             0);
        pthread_mutex_lock(&log_lock);
        done = log_suppressed > 0;
        pthread_mutex_unlock(&log_lock);
        if (done || harness_expired(&d)) {
            break;
        }
        usleep(20000);
    }
    CHECK_MSG(log_suppressed >= 490, "%u lines reported suppressed",
              log_suppressed);
    dext_session_close(s);
    dext_core_free(core);
}

int main(void)
{
    if (have_pidfds()) {
        test_binding();
        test_share();
    }
    test_log_limit();
    return harness_finish();
}
