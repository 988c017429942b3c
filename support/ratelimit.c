/*
 * SPDX-License-Identifier: MIT
 *
 * The log-line budget (support/ratelimit.h): a token bucket kept as the
 * time its next token is due.
 */

#include <time.h>

#include "support/ratelimit.h"

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * A line may go out while the next token's due time is less than a full
 * bucket ahead of now; each line pushes it one period further.
 */
bool dext_ratelimit_take(DextRateLimit *rl, unsigned *suppressed)
{
    const uint64_t span = (uint64_t)(DEXT_RATELIMIT_BURST - 1) *
                          DEXT_RATELIMIT_PERIOD_MS;
    uint64_t now = now_ms();
    uint64_t due = __atomic_load_n(&rl->due_ms, __ATOMIC_RELAXED);
    uint64_t from;

    do {
        from = due > now ? due : now;
        if (from - now > span) {
            __atomic_fetch_add(&rl->suppressed, 1, __ATOMIC_RELAXED);
            return false;
        }
    } while (!__atomic_compare_exchange_n(&rl->due_ms, &due,
                                          from + DEXT_RATELIMIT_PERIOD_MS,
                                          true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    *suppressed = __atomic_exchange_n(&rl->suppressed, 0, __ATOMIC_RELAXED);
    return true;
}
