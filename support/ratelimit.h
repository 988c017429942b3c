/*
 * SPDX-License-Identifier: MIT
 *
 * A budget for log lines that a client can cause: a burst of
 * DEXT_RATELIMIT_BURST lines, then one every DEXT_RATELIMIT_PERIOD_MS;
 * what is dropped is counted and reported with the next line let through.
 * Used by the core (device lines, IOMMU faults) and by dextd (protocol
 * violations, refusals), so a hostile client cannot flood the log.
 */

#ifndef LIBDEXT_SUPPORT_RATELIMIT_H
#define LIBDEXT_SUPPORT_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define DEXT_RATELIMIT_BURST     10
#define DEXT_RATELIMIT_PERIOD_MS 1000

/**
 * struct DextRateLimit - one budget; all zero is a full one.
 * @due_ms: CLOCK_MONOTONIC time the next token is due (atomic)
 * @suppressed: lines dropped since the last one let through (atomic)
 *
 * Kept as a theoretical arrival time rather than a token count, so that
 * taking a token is one compare-and-swap: no lock, safe from any thread.
 */
typedef struct DextRateLimit {
    uint64_t due_ms;
    unsigned suppressed;
} DextRateLimit;

/**
 * dext_ratelimit_take() - may one more line go out?
 * @rl: the budget
 * @suppressed: set, when a line may go out, to the lines dropped since the
 *              last one that did (report them with it)
 *
 * Return: true if the line may go out; false if it is dropped (and
 * counted).
 */
bool dext_ratelimit_take(DextRateLimit *rl, unsigned *suppressed);

#endif /* LIBDEXT_SUPPORT_RATELIMIT_H */
