/*
 * SPDX-License-Identifier: MIT
 *
 * The benchmarks' timing kit (bench.h).
 */

#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

uint64_t bench_percentile(uint64_t *v, size_t n, double p)
{
    size_t i;

    qsort(v, n, sizeof(*v), cmp_u64);
    i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

bool bench_report(const char *name, double value, const char *unit,
                  double baseline, double ratio, BenchTarget kind,
                  double target)
{
    bool ok = kind == BENCH_INFO ||
              (kind == BENCH_AT_MOST ? ratio <= target : ratio >= target);

    printf("bench: %s value=%.2f unit=%s baseline=%.2f ratio=%.3f", name,
           value, unit, baseline, ratio);
    if (kind == BENCH_INFO) {
        printf(" target=none INFO\n");
    } else {
        printf(" target%s%g %s\n", kind == BENCH_AT_MOST ? "<=" : ">=",
               target, ok ? "PASS" : "MISS");
    }
    fflush(stdout);
    return ok;
}

FILE *bench_data(const char *name)
{
    const char *dir = getenv("BENCH_DATA_DIR");
    char path[4096];

    if (dir == NULL || dir[0] == '\0') {
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return fopen(path, "w");
}

void bench_dump_cdf(const char *name, uint64_t *v, size_t n)
{
    FILE *f = bench_data(name);
    size_t i;

    if (f == NULL) {
        return;
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    for (i = 0; i < n; i++) {
        fprintf(f, "%.3f %.5f\n", v[i] / 1000.0, (i + 1.0) / n);
    }
    fclose(f);
}

void bench_pin(int cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;

    if (n < 2) {
        return;
    }
    CPU_ZERO(&set);
    CPU_SET(cpu % n, &set);
    sched_setaffinity(0, sizeof(set), &set);
}

bool bench_pin_process(pid_t pid, int cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    char path[64];
    struct dirent *e;
    cpu_set_t set;
    DIR *dir;

    if (n < 2) {
        return false;
    }
    CPU_ZERO(&set);
    CPU_SET(cpu % n, &set);
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    dir = opendir(path);
    if (dir == NULL) {
        return sched_setaffinity(pid, sizeof(set), &set) == 0;
    }
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] != '.') {
            sched_setaffinity((pid_t)atoi(e->d_name), sizeof(set), &set);
        }
    }
    closedir(dir);
    return true;
}

double bench_config_reads(io_connect_t c, int iters)
{
    uint64_t v = 0;
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < iters; i++) {
        if (apple_dext_config_read(c, 0, 4, &v) != kIOReturnSuccess) {
            abort();
        }
    }
    return (double)(bench_now_ns() - t0) / iters;
}

double bench_memcpy_ns(void *dst, const void *src, size_t size, int reps)
{
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < reps; i++) {
        memcpy(dst, src, size);
        /* Each copy happens: none is folded into the next. */
        __asm__ volatile("" ::: "memory");
    }
    return (double)(bench_now_ns() - t0) / reps;
}
