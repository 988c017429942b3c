/*
 * SPDX-License-Identifier: MIT
 *
 * A tiny timing kit shared by the benchmarks: a monotonic clock, medians
 * and percentiles, and the one-line summaries scripts read:
 *
 *   bench: NAME value=V unit=U baseline=B ratio=R target<=T PASS|MISS
 */

#ifndef LIBDEXT_BENCH_H
#define LIBDEXT_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdio.h>

#include "apple-dext-client.h"

/* The comparison a target makes with the ratio. */
typedef enum BenchTarget {
    BENCH_INFO,         /* no target: report only */
    BENCH_AT_MOST,      /* ratio <= target */
    BENCH_AT_LEAST,     /* ratio >= target */
} BenchTarget;

/**
 * bench_now_ns() - CLOCK_MONOTONIC in nanoseconds
 *
 * The clock every figure uses, so device timestamps taken in dextd and
 * handler timestamps taken in the client compare directly.
 */
uint64_t bench_now_ns(void);

/**
 * bench_median() - median of @n doubles (sorts @v in place)
 * @v: the values
 * @n: how many, at least 1
 */
double bench_median(double *v, size_t n);

/**
 * bench_percentile() - the @p-th percentile of @n samples (sorts @v)
 * @v: the samples
 * @n: how many, at least 1
 * @p: 0..100
 */
uint64_t bench_percentile(uint64_t *v, size_t n, double p);

/**
 * bench_report() - print one summary line
 * @name: figure name, e.g. "roundtrip_unix_ns"
 * @value: the measured figure
 * @unit: its unit ("ns", "MB/s", ...)
 * @baseline: the baseline measured in the same run
 * @ratio: how the two compare (defined per figure)
 * @kind: what @target means
 * @target: the target for @ratio
 *
 * Return: true unless a target was missed.
 */
bool bench_report(const char *name, double value, const char *unit,
                  double baseline, double ratio, BenchTarget kind,
                  double target);

/**
 * bench_data() - open $BENCH_DATA_DIR/@name for writing plot data
 * @name: file name
 *
 * Return: the stream, or NULL when BENCH_DATA_DIR is not set.
 */
FILE *bench_data(const char *name);

/**
 * bench_dump_cdf() - write samples as a cumulative distribution for plots
 * @name: file name in $BENCH_DATA_DIR (nothing is written without it)
 * @v: the samples in ns; sorted in place
 * @n: how many
 *
 * Each line is "microseconds fraction", ascending.
 *
 * Return: nothing.
 */
void bench_dump_cdf(const char *name, uint64_t *v, size_t n);

/**
 * bench_pin() - keep the calling thread on one CPU when there are several
 * @cpu: CPU number (taken modulo the CPUs available)
 *
 * Every benchmark calls bench_pin(0) before it starts dextd or forks a
 * baseline peer, which then inherit the same CPU: a figure and its
 * baseline must share one placement (see bench_pin_process()).
 */
void bench_pin(int cpu);

/**
 * bench_pin_process() - pin every thread of process @pid to @cpu
 * @pid: a process (dextd, a forked baseline peer)
 * @cpu: CPU number, taken modulo the number online
 *
 * Threads created later inherit the mask of the thread creating them.
 * Cross-process figures depend on placement -- on a VM, waking a halted
 * vCPU costs tens of microseconds -- so a benchmark and its baseline must
 * run with the same placement.
 *
 * Return: false if there is one CPU only (nothing to choose).
 */
bool bench_pin_process(pid_t pid, int cpu);

/**
 * bench_config_reads() - @iters ConfigReads of one dword, back to back
 * @c: a connection to a device
 * @iters: how many, at least 1
 *
 * Aborts if one fails: a figure of failed calls means nothing.
 *
 * Return: the mean ns per call.
 */
double bench_config_reads(io_connect_t c, int iters);

/**
 * bench_memcpy_ns() - @reps memcpy()s of @size bytes, back to back: the
 * baseline of the DMA figures
 * @dst: destination
 * @src: source
 * @size: bytes per copy
 * @reps: how many, at least 1
 *
 * Return: the mean ns per copy.
 */
double bench_memcpy_ns(void *dst, const void *src, size_t size, int reps);

#endif /* LIBDEXT_BENCH_H */
