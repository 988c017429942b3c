/*
 * SPDX-License-Identifier: MIT
 *
 * A client killed with everything held: dextd must release its session,
 * claim, DMA regions, DMA buffer and interrupt state, exactly as a
 * disconnect would, while other clients carry on undisturbed.  Needs a
 * separate process to kill, so unix transport only.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "edu.h"

/* Enough rounds that a per-client leak in dextd shows in /proc. */
#define ROUNDS      100
#define WARMUP      4
/*
 * Growth of dextd's RSS allowed.  A plain build stays flat to the page;
 * under a sanitizer the allocator's quarantine and caches grow with the
 * number of calls, whatever is freed.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_SLACK_KB (64 * 1024)
#else
#define RSS_SLACK_KB (4 * 1024)
#endif
#define REGIONS     5
#define REGION_SIZE 16384

/* The child's notification handler: nothing raises its interrupts. */
static void idle_handler(void *opaque)
{
}

/*
 * The child: take everything a client can hold, report it through
 * @ready_fd, then wait to be killed.  Exit codes tell the parent which
 * step failed if it did not get that far.
 */
static void child_main(int ready_fd, bool callback)
{
    static char ok = 'R';
    AppleDextInterruptNotify *n;
    volatile uint64_t *page;
    mach_vm_address_t addr;
    mach_vm_size_t size;
    io_connect_t c = IO_OBJECT_NULL;
    uint8_t *mem;
    int i;

    /* Never outlive the parent, even if it dies before killing us. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(60);
    if (apple_dext_connect_target(harness_target(), EDU_BUS, EDU_DEV, EDU_FN,
                                  &c) != kIOReturnSuccess) {
        _exit(10);
    }
    if (apple_dext_claim(c) != kIOReturnSuccess) {
        _exit(11);
    }
    mem = mmap(NULL, REGIONS * REGION_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        _exit(12);
    }
    memset(mem, 0x11, REGIONS * REGION_SIZE);
    for (i = 0; i < REGIONS; i++) {
        if (apple_dext_register_dma(c, 0x100000 + (uint64_t)i * 0x10000,
                                    (uint64_t)(uintptr_t)(mem +
                                                          i * REGION_SIZE),
                                    REGION_SIZE, NULL, NULL) !=
            kIOReturnSuccess) {
            _exit(13);
        }
    }
    if (apple_dext_allocate_dma_buffer(c, 65536, 0, NULL) != kIOReturnSuccess ||
        apple_dext_map_dma_buffer(c, &addr, &size) != kIOReturnSuccess) {
        _exit(14);
    }
    if (apple_dext_setup_interrupts(c, NULL) != kIOReturnSuccess ||
        apple_dext_map_irq_page(c, &page) != kIOReturnSuccess) {
        _exit(15);
    }
    n = callback ? apple_dext_interrupt_notify_create(c, idle_handler, NULL)
                 : apple_dext_interrupt_notify_create_fd(c);
    if (n == NULL) {
        _exit(16);
    }
    if (write(ready_fd, &ok, 1) != 1) {
        _exit(17);
    }
    for (;;) {
        pause();
    }
}

/* Config and MMIO through the parent's own connection. */
static void parent_works(io_connect_t c, uint32_t tag)
{
    uint64_t v = 0;

    CHECK_KR(apple_dext_config_read(c, 0, 4, &v), kIOReturnSuccess);
    CHECK_EQ(v, (EDU_DEVICE_ID << 16) | EDU_VENDOR_ID);
    edu_write32(c, EDU_REG_LIVENESS, tag);
    CHECK_EQ(edu_read32(c, EDU_REG_LIVENESS), ~tag);
}

static bool at_baseline(const AppleDextStatus *st, const AppleDextStatus *base)
{
    return st->sessions == base->sessions && st->claims == base->claims &&
           st->dma_regions == base->dma_regions &&
           st->dma_region_bytes == base->dma_region_bytes &&
           st->dma_buffers == base->dma_buffers &&
           st->irq_sessions == base->irq_sessions;
}

static void one_round(io_connect_t parent, const AppleDextStatus *base,
                      int round)
{
    HarnessDeadline d;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    AppleDextDeviceStatus ds;
    struct pollfd pfd;
    unsigned backoff = 0;
    int pipefd[2], status = 0;
    char byte = 0;
    pid_t pid;

    harness_section("round %d: kill a client holding everything", round);
    if (!CHECK(pipe2(pipefd, O_CLOEXEC) == 0)) {
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (!CHECK(pid >= 0)) {
        return;
    }
    if (pid == 0) {
        close(pipefd[0]);
        child_main(pipefd[1], round % 2 == 1);
    }
    close(pipefd[1]);

    pfd.fd = pipefd[0];
    pfd.events = POLLIN;
    if (!CHECK_MSG(poll(&pfd, 1, HARNESS_WAIT_MS) == 1 &&
                   read(pipefd[0], &byte, 1) == 1 && byte == 'R',
                   "child did not get ready within %u ms", HARNESS_WAIT_MS)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        if (WIFEXITED(status)) {
            printf("# child exited with %d\n", WEXITSTATUS(status));
        }
        close(pipefd[0]);
        return;
    }
    close(pipefd[0]);

    /* The child really holds what it claims to. */
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, base->sessions + 1);
        CHECK_EQ(st.claims, base->claims + 1);
        CHECK_EQ(st.dma_regions, base->dma_regions + REGIONS);
        CHECK_EQ(st.dma_region_bytes,
                 base->dma_region_bytes + REGIONS * REGION_SIZE);
        CHECK_EQ(st.dma_buffers, base->dma_buffers + 1);
        CHECK_EQ(st.irq_sessions, base->irq_sessions + 1);
    }
    CHECK_KR(apple_dext_get_device_status(parent, &ds), kIOReturnSuccess);
    CHECK_EQ(ds.claims, 2);
    parent_works(parent, 0x1000u + (uint32_t)round);

    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* The daemon notices the dead client asynchronously: poll, bounded. */
    d = harness_deadline(HARNESS_WAIT_MS);
    for (;;) {
        if (!harness_status(&st)) {
            return;
        }
        if (at_baseline(&st, base) || harness_expired(&d)) {
            break;
        }
        parent_works(parent, 0x2000u + (uint32_t)round);
        harness_backoff(&backoff);
    }
    CHECK_EQ(st.sessions, base->sessions);
    CHECK_EQ(st.claims, base->claims);
    CHECK_EQ(st.dma_regions, base->dma_regions);
    CHECK_EQ(st.dma_region_bytes, base->dma_region_bytes);
    CHECK_EQ(st.dma_buffers, base->dma_buffers);
    CHECK_EQ(st.irq_sessions, base->irq_sessions);
    CHECK_KR(apple_dext_get_device_status(parent, &ds), kIOReturnSuccess);
    CHECK_EQ(ds.claims, 1);
    CHECK_EQ(ds.sessions, 1);
    CHECK(ds.claimed);
    parent_works(parent, 0x3000u + (uint32_t)round);
}

int main(int argc, char **argv)
{
    AppleDextStatus base, st;
    io_connect_t parent;
    uint8_t *mem;
    uint64_t bus = 0;
    long rss0 = -1, rss1;
    int fds0 = -1, fds1;
    int round;

    harness_init(argc, argv, NULL);
    if (!harness_is_unix()) {
        harness_skip("killing a client needs a daemon: unix transport only");
    }
    parent = harness_connect_edu();
    if (parent == IO_OBJECT_NULL ||
        !CHECK_KR(apple_dext_claim(parent), kIOReturnSuccess)) {
        return harness_finish();
    }
    /* The parent holds state of its own, which must survive. */
    mem = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!CHECK(mem != MAP_FAILED)) {
        return harness_finish();
    }
    harness_fill_random(mem, REGION_SIZE);
    CHECK_KR(apple_dext_register_dma(parent, 0x10000,
                                     (uint64_t)(uintptr_t)mem, REGION_SIZE,
                                     &bus, NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_setup_interrupts(parent, NULL), kIOReturnSuccess);
    if (!harness_status(&base)) {
        return harness_finish();
    }
    CHECK_EQ(base.sessions, 1);
    CHECK_EQ(base.claims, 1);
    CHECK_EQ(base.dma_regions, 1);
    CHECK_EQ(base.irq_sessions, 1);

    for (round = 0; round < ROUNDS && harness_failures() == 0; round++) {
        one_round(parent, &base, round);
        if (round + 1 == WARMUP) {
            rss0 = harness_rss_kb(harness_server_pid());
            fds0 = harness_count_fds(harness_server_pid());
        }
    }
    /*
     * dextd closes a dead client's channel asynchronously, and so the
     * status queries' own connections: allow it time to settle back.
     */
    {
        HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
        unsigned r = 0;

        while ((fds1 = harness_count_fds(harness_server_pid())) > fds0 &&
               !harness_expired(&d)) {
            harness_backoff(&r);
        }
    }
    rss1 = harness_rss_kb(harness_server_pid());
    printf("# dextd after %d and %d killed clients: VmRSS %ld -> %ld kB, "
           "fds %d -> %d\n", WARMUP, round, rss0, rss1, fds0, fds1);
    CHECK_MSG(fds1 <= fds0, "dextd fds grew from %d to %d", fds0, fds1);
    /* Under a wrapper (valgrind) the RSS is the tool's, not dextd's. */
    if (getenv("DEXTD_WRAPPER") == NULL) {
        CHECK_MSG(rss1 - rss0 < RSS_SLACK_KB, "dextd RSS grew by %ld kB",
                  rss1 - rss0);
    }

    harness_section("the parent's own state survived");
    {
        uint64_t w = 0, p[4] = { 0 };

        CHECK_KR(apple_dext_probe_dma(parent, 0x10000, 0, &w),
                 kIOReturnSuccess);
        CHECK(memcmp(&w, mem, 8) == 0);
        edu_write32(parent, EDU_REG_IRQ_RAISE, 1);
        edu_write32(parent, EDU_REG_IRQ_ACK, 1);
        CHECK_KR(apple_dext_read_pending_irqs(parent, p), kIOReturnSuccess);
        CHECK_EQ(p[0], 1);
        /* Device DMA still reaches the parent's region. */
        if (edu_dma(parent, bus, EDU_DMA_BUF_ADDR, 256, 0)) {
            memset(mem + 4096, 0, 256);
            if (edu_dma(parent, EDU_DMA_BUF_ADDR, bus + 4096, 256,
                        EDU_DMA_TO_RAM)) {
                CHECK(memcmp(mem, mem + 4096, 256) == 0);
            }
        }
    }
    apple_dext_disconnect(parent);
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, 0);
        CHECK_EQ(st.claims, 0);
        CHECK_EQ(st.dma_regions, 0);
        CHECK_EQ(st.irq_sessions, 0);
    }
    munmap(mem, REGION_SIZE);
    return harness_finish();
}
