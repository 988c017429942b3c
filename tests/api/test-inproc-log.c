/*
 * SPDX-License-Identifier: MIT
 *
 * The in-process core logs through the public log handler: what dextd
 * would write to its log (device errors, IOMMU faults) reaches the
 * handler of apple_dext_set_log_handler() when the core runs in the
 * calling process.  The edu device is made to DMA from a bus address
 * nobody registered; the core's IOMMU fault line and the device's own
 * complaint must both arrive, once a handler is set, and nothing once it
 * is NULL.
 *
 * In-process only: over dextd those lines are the daemon's.
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "edu.h"

/* Unregistered, and inside edu's 28-bit DMA mask. */
#define BAD_BUS_ADDR 0x0badc000ull

typedef struct LogSeen {
    pthread_mutex_t lock;
    unsigned lines;
    unsigned faults;            /* lines with "IOMMU fault" */
    unsigned device_errors;     /* the device's "transfer abandoned" */
    int fault_level;
    char fault_line[512];
} LogSeen;

static LogSeen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Runs on whichever thread logs: the device's DMA worker here. */
static void capture(void *opaque, int level, const char *msg)
{
    LogSeen *s = opaque;

    pthread_mutex_lock(&s->lock);
    s->lines++;
    if (strstr(msg, "IOMMU fault") != NULL) {
        s->faults++;
        s->fault_level = level;
        size_t n = strnlen(msg, sizeof(s->fault_line) - 1);

        memcpy(s->fault_line, msg, n);
        s->fault_line[n] = '\0';
    }
    if (strstr(msg, "transfer abandoned") != NULL) {
        s->device_errors++;
    }
    pthread_mutex_unlock(&s->lock);
}

static void snapshot(LogSeen *out)
{
    pthread_mutex_lock(&seen.lock);
    out->lines = seen.lines;
    out->faults = seen.faults;
    out->device_errors = seen.device_errors;
    out->fault_level = seen.fault_level;
    memcpy(out->fault_line, seen.fault_line, sizeof(out->fault_line));
    pthread_mutex_unlock(&seen.lock);
}

static void reset_seen(void)
{
    pthread_mutex_lock(&seen.lock);
    seen.lines = seen.faults = seen.device_errors = 0;
    seen.fault_level = -1;
    seen.fault_line[0] = '\0';
    pthread_mutex_unlock(&seen.lock);
}

/*
 * With @fn installed as the handler, one device read of 64 bytes at
 * BAD_BUS_ADDR, waited for; checks that it counts as one IOMMU fault and
 * leaves in @s what the handler saw.  The lines are logged before the
 * transfer ends, so there is nothing more to wait for.
 */
static void provoke_fault(io_connect_t c, void (*fn)(void *, int,
                                                     const char *),
                          LogSeen *s)
{
    AppleDextStatus before, after;

    reset_seen();
    apple_dext_set_log_handler(fn, fn ? &seen : NULL);
    harness_status(&before);
    edu_dma(c, BAD_BUS_ADDR, EDU_DMA_BUF_ADDR, 64, 0);
    harness_status(&after);
    CHECK_EQ(after.iommu_faults, before.iommu_faults + 1);
    snapshot(s);
}

static void test_fault_reaches_handler(io_connect_t c)
{
    char want[64];
    LogSeen s;

    harness_section("an IOMMU fault reaches the public log handler");
    provoke_fault(c, capture, &s);
    CHECK_EQ(s.faults, 1);
    CHECK_EQ(s.fault_level, APPLE_DEXT_LOG_WARNING);
    snprintf(want, sizeof(want), "0x%llx", BAD_BUS_ADDR);
    CHECK_MSG(strstr(s.fault_line, want) != NULL,
              "the fault line does not name bus address %s: '%s'", want,
              s.fault_line);
    CHECK_MSG(strstr(s.fault_line, "edu") != NULL,
              "the fault line does not name the device: '%s'",
              s.fault_line);
    CHECK(strchr(s.fault_line, '\n') == NULL);
    /* The device's own complaint about the failed transfer, too. */
    CHECK_EQ(s.device_errors, 1);
}

static void test_null_handler(io_connect_t c)
{
    LogSeen s;

    harness_section("no handler: the fault is counted, nothing is called");
    provoke_fault(c, NULL, &s);
    CHECK_EQ(s.lines, 0);
}

int main(int argc, char **argv)
{
    io_connect_t c;

    harness_init(argc, argv, NULL);
    if (harness_is_unix()) {
        harness_skip("the in-process core's log: inproc transport only");
    }
    c = harness_connect_edu();
    if (c != IO_OBJECT_NULL &&
        CHECK_KR(apple_dext_claim(c), kIOReturnSuccess)) {
        test_fault_reaches_handler(c);
        test_null_handler(c);
    }
    harness_restore_log_handler();
    apple_dext_disconnect(c);
    return harness_finish();
}
