/*
 * SPDX-License-Identifier: MIT
 *
 * Bounded waits: with dextd stopped (SIGSTOP), listing, connecting and a
 * call on an open connection each answer kIOReturnTimeout within the
 * bound a target option or the environment sets; after SIGCONT the
 * library works again on new channels.  Unix transport only.  Over a
 * polled ring (unix-poll), also a stream of calls that dextd stops in
 * the middle of: the call in flight ends in kIOReturnTimeout, and the
 * connection goes on through its socket once dextd runs again.
 */

#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define SHORT_MS 200

/* Whether @ret is kIOReturnTimeout, reached after @t0 within the bound. */
#define CHECK_TIMEOUT(expr) do { \
        double t0_ = harness_now_ms(); \
        CHECK_KR((expr), kIOReturnTimeout); \
        CHECK_MSG(harness_now_ms() - t0_ < 3.0 * SHORT_MS + 500, \
                  "took %.0f ms", harness_now_ms() - t0_); \
    } while (0)

typedef struct Streamer {
    io_connect_t c;
    IOReturn last;
    double took_ms;             /* the last call's */
    unsigned long calls;
} Streamer;

/* Calls back to back until one fails. */
static void *stream_calls(void *opaque)
{
    Streamer *s = opaque;
    uint64_t v;

    do {
        double t0 = harness_now_ms();

        s->last = apple_dext_config_read(s->c, 0, 4, &v);
        s->took_ms = harness_now_ms() - t0;
        s->calls++;
    } while (s->last == kIOReturnSuccess);
    return NULL;
}

/* dextd stops while polled calls stream; the one in flight times out. */
static void test_stop_mid_stream(const char *target)
{
    Streamer s = { .c = IO_OBJECT_NULL };
    pthread_t t;
    uint64_t v = 0;

    harness_section("a polled call in flight when dextd stops: "
                    "kIOReturnTimeout");
    if (!CHECK_KR(apple_dext_connect_target(target, EDU_BUS, EDU_DEV, EDU_FN,
                                            &s.c), kIOReturnSuccess)) {
        return;
    }
    if (!CHECK(pthread_create(&t, NULL, stream_calls, &s) == 0)) {
        apple_dext_disconnect(s.c);
        return;
    }
    usleep(50 * 1000);
    harness_pause_daemon();
    pthread_join(t, NULL);
    CHECK_KR(s.last, kIOReturnTimeout);
    CHECK_MSG(s.took_ms < 3.0 * SHORT_MS + 500, "took %.0f ms", s.took_ms);
    CHECK_MSG(s.calls > 1, "%lu calls before the stop", s.calls);
    harness_resume_daemon();
    /* The ring is dead; the socket carries the calls now. */
    CHECK_KR(apple_dext_config_read(s.c, 0, 4, &v), kIOReturnSuccess);
    CHECK_EQ(v & 0xffff, 0x1234);
    apple_dext_disconnect(s.c);
}

int main(int argc, char **argv)
{
    char target[512];
    AppleDextDeviceInfo list[4];
    io_connect_t c, late = IO_OBJECT_NULL, again = IO_OBJECT_NULL;
    uint32_t count = 0;
    uint64_t v = 0;

    harness_init(argc, argv, NULL);
    if (!harness_is_unix()) {
        harness_skip("an in-process dext cannot stop: unix transport only");
    }
    snprintf(target, sizeof(target), "%s,timeout=%d,connect-timeout=%d",
             harness_target(), SHORT_MS, SHORT_MS);

    harness_section("the target options are accepted");
    CHECK_KR(apple_dext_list_devices(target, list, 4, &count),
             kIOReturnSuccess);
    CHECK_EQ(count, 1);
    CHECK_KR(apple_dext_connect_target(target, EDU_BUS, EDU_DEV, EDU_FN, &c),
             kIOReturnSuccess);
    if (c == IO_OBJECT_NULL) {
        return harness_finish();
    }
    CHECK_KR(apple_dext_config_read(c, 0, 4, &v), kIOReturnSuccess);
    {
        char bad[600];

        static const char *const polls[] = { "poll=0", "poll=1000001",
                                             "poll=fast",
                                             "poll=-5" };
        unsigned i;

        snprintf(bad, sizeof(bad), "%s,timeout=soon", harness_target());
        CHECK_KR(apple_dext_list_devices(bad, list, 4, &count),
                 kIOReturnBadArgument);
        /* The polled ring's spin budget: 1 us to 1 s. */
        for (i = 0; i < sizeof(polls) / sizeof(polls[0]); i++) {
            snprintf(bad, sizeof(bad), "%s,%s", harness_target(), polls[i]);
            CHECK_KR(apple_dext_list_devices(bad, list, 4, &count),
                     kIOReturnBadArgument);
        }
        snprintf(bad, sizeof(bad), "%s,poll=1000000,timeout=%d",
                 harness_target(), SHORT_MS);
        CHECK_KR(apple_dext_list_devices(bad, list, 4, &count),
                 kIOReturnSuccess);
    }

    if (harness_is_polled()) {
        test_stop_mid_stream(target);
    }

    harness_section("a stopped dextd: each wait ends in kIOReturnTimeout");
    harness_pause_daemon();
    CHECK_TIMEOUT(apple_dext_config_read(c, 0, 4, &v));
    CHECK_TIMEOUT(apple_dext_list_devices(target, list, 4, &count));
    CHECK_TIMEOUT(apple_dext_connect_target(target, EDU_BUS, EDU_DEV, EDU_FN,
                                            &late));
    CHECK_EQ(late, IO_OBJECT_NULL);

    harness_section("the environment sets the bound too");
    setenv("DEXT_TIMEOUT_MS", "200", 1);
    setenv("DEXT_CONNECT_TIMEOUT_MS", "200", 1);
    CHECK_TIMEOUT(apple_dext_list_devices(harness_target(), list, 4,
                                          &count));

    harness_section("apple_dext_set_timeouts() wins over the environment");
    setenv("DEXT_TIMEOUT_MS", "0", 1);
    setenv("DEXT_CONNECT_TIMEOUT_MS", "0", 1);
    CHECK_KR(apple_dext_set_timeouts(-2, 0), kIOReturnBadArgument);
    CHECK_KR(apple_dext_set_timeouts(0, -2), kIOReturnBadArgument);
    CHECK_KR(apple_dext_set_timeouts(200, 200), kIOReturnSuccess);
    CHECK_TIMEOUT(apple_dext_list_devices(harness_target(), list, 4,
                                          &count));
    CHECK_KR(apple_dext_set_timeouts(-1, -1), kIOReturnSuccess);
    unsetenv("DEXT_TIMEOUT_MS");
    unsetenv("DEXT_CONNECT_TIMEOUT_MS");

    harness_section("after SIGCONT new channels work");
    harness_resume_daemon();
    CHECK_KR(apple_dext_list_devices(target, list, 4, &count),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_connect_target(target, EDU_BUS, EDU_DEV, EDU_FN,
                                       &again), kIOReturnSuccess);
    if (again != IO_OBJECT_NULL) {
        CHECK_KR(apple_dext_config_read(again, 0, 4, &v), kIOReturnSuccess);
        CHECK_EQ(v & 0xffff, 0x1234);
    }
    /*
     * The timed-out call's channel was dropped (its late reply must not
     * answer a later call).  Over the socket it was the connection's
     * only one, and the session went with it.  Over a polled ring
     * (unix-poll) it was the ring's: the ring is dead, and the pool's
     * channel still holds the session, so calls go on through it.
     */
    if (harness_is_polled()) {
        CHECK_KR(apple_dext_config_read(c, 0, 4, &v), kIOReturnSuccess);
        CHECK_EQ(v & 0xffff, 0x1234);
    } else {
        CHECK_KR(apple_dext_config_read(c, 0, 4, &v),
                 kIOReturnNotResponding);
    }

    apple_dext_disconnect(again);
    apple_dext_disconnect(c);
    return harness_finish();
}
