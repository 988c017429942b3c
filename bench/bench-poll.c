/*
 * SPDX-License-Identifier: MIT
 *
 * The polled call channel (target option ",poll"): ConfigRead of one
 * dword through a polled ring, the client on CPU 0 and every dextd
 * thread on CPU 1, against the physical limit of such a round trip: two
 * threads of this process, one on each of those CPUs, handing a cache
 * line back and forth (one ping and one pong).  Also, as information:
 * the socket path with the same placement (on a VM dominated by waking a
 * halted vCPU); the polled ring with dextd on the client's CPU (where
 * spinning must give way); and dextd's CPU use while the polled
 * connection sits idle for a second after its last call (it must fall
 * back to sleeping; /proc's utime and stime count 10 ms ticks, so the
 * figure is its threads' schedstat run time, in ns).
 *
 * Runs alternate between the ring and the ping-pong so that drift hits
 * both alike: the figure is the median over runs of the mean per call,
 * the ratio the median of the ratios of adjacent runs.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "harness.h"
#include "ivshmem.h"
#include "protocol/dext-ring.h"

#define RUNS        21
#define ITERS       20000
#define SOCK_ITERS  300
#define SAME_ITERS  2000

/* The two words of the ping-pong, each on a line of its own. */
typedef struct PingPong {
    _Alignas(DEXT_RING_LINE) uint32_t ping;
    _Alignas(DEXT_RING_LINE) uint32_t pong;
    _Alignas(DEXT_RING_LINE) uint32_t ready;
} PingPong;

static PingPong pp;

/* The pong side, on CPU 1: answer each ping with the same number. */
static void *pong_thread(void *opaque)
{
    uint32_t i, n = *(const uint32_t *)opaque;

    bench_pin(1);
    __atomic_store_n(&pp.ready, 1, __ATOMIC_RELEASE);
    for (i = 1; i <= n; i++) {
        while (__atomic_load_n(&pp.ping, __ATOMIC_ACQUIRE) != i) {
            dext_ring_relax();
        }
        __atomic_store_n(&pp.pong, i, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* Mean ns of one ping and its pong between CPU 0 (us) and CPU 1. */
static double run_pingpong(uint32_t n)
{
    pthread_t t;
    uint64_t t0;
    uint32_t i;

    pp.ping = pp.pong = pp.ready = 0;
    if (pthread_create(&t, NULL, pong_thread, &n) != 0) {
        abort();
    }
    while (!__atomic_load_n(&pp.ready, __ATOMIC_ACQUIRE)) {
        dext_ring_relax();
    }
    t0 = bench_now_ns();
    for (i = 1; i <= n; i++) {
        __atomic_store_n(&pp.ping, i, __ATOMIC_RELEASE);
        while (__atomic_load_n(&pp.pong, __ATOMIC_ACQUIRE) != i) {
            dext_ring_relax();
        }
    }
    t0 = bench_now_ns() - t0;
    pthread_join(t, NULL);
    return (double)t0 / n;
}

/* utime + stime of @pid, in clock ticks; -1 if unknown. */
static long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    /* After the name: state is field 3; utime and stime are 14 and 15. */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
                            "%*u %*u %llu %llu", &ut, &st) != 2) {
        return -1;
    }
    return (long long)(ut + st);
}

/*
 * ns that the threads of @pid have run, from their schedstat (finer than
 * the 10 ms ticks of utime and stime); -1 if unknown.
 */
static long long cpu_ns(pid_t pid)
{
    char path[320];
    unsigned long long ns, sum = 0;
    struct dirent *e;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    dir = opendir(path);
    if (dir == NULL) {
        return -1;
    }
    while ((e = readdir(dir)) != NULL) {
        FILE *f;

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat",
                 (int)pid, e->d_name);
        f = fopen(path, "r");
        if (f != NULL && fscanf(f, "%llu", &ns) == 1) {
            sum += ns;
        }
        if (f != NULL) {
            fclose(f);
        }
    }
    closedir(dir);
    return (long long)sum;
}

/*
 * dextd's share of one CPU (percent) over ~1 s after a last polled call:
 * utime + stime (in *ticks), and the run time its threads' schedstat
 * counts (the figure).
 */
static double idle_cpu_percent(io_connect_t c, pid_t server, double *ticks)
{
    long long t0, t1, n0, n1;
    uint64_t s0, s1;
    double secs;

    bench_config_reads(c, 100);
    t0 = cpu_ticks(server);
    n0 = cpu_ns(server);
    s0 = bench_now_ns();
    usleep(1000 * 1000);
    t1 = cpu_ticks(server);
    n1 = cpu_ns(server);
    s1 = bench_now_ns();
    secs = (double)(s1 - s0) / 1e9;
    *ticks = t0 < 0 || t1 < 0 ? -1 :
             100.0 * (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / secs;
    if (n0 < 0 || n1 < 0) {
        return *ticks;
    }
    return 100.0 * (double)(n1 - n0) / 1e9 / secs;
}

int main(int argc, char **argv)
{
    double ring[RUNS], base[RUNS], ratio[RUNS], sock[RUNS], xs[RUNS];
    double same[RUNS], same_sock[RUNS], idle, idle_ticks;
    char target[600];
    io_connect_t cp = IO_OBJECT_NULL, cs;
    pid_t server;
    int r;

    /* The client (and all it forks) on CPU 0. */
    bench_pin(0);
    harness_init(argc, argv, "ivshmem");
    if (!harness_is_unix()) {
        harness_skip("the polled ring is the unix transport's");
    }
    server = harness_server_pid();
    if (!bench_pin_process(server, 1)) {
        harness_skip("one CPU only: nothing to measure across CPUs");
    }
    snprintf(target, sizeof(target), "%s%s", harness_target(),
             harness_is_polled() ? "" : ",poll");
    printf("# polled target %s\n", target);
    cs = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    if (cs == IO_OBJECT_NULL ||
        !CHECK_KR(apple_dext_connect_target(target, IVSHMEM_BUS, IVSHMEM_DEV,
                                            IVSHMEM_FN, &cp),
                  kIOReturnSuccess)) {
        return harness_finish();
    }
    /* Every dextd thread, the ring's too, on CPU 1. */
    bench_pin_process(server, 1);
    bench_config_reads(cp, 2000);
    bench_config_reads(cs, 200);
    run_pingpong(ITERS);

    for (r = 0; r < RUNS; r++) {
        ring[r] = bench_config_reads(cp, ITERS);
        /* Let dextd's spin run out: CPU 1 is the pong's now. */
        usleep(20 * 1000);
        base[r] = run_pingpong(ITERS);
        ratio[r] = ring[r] / base[r];
        sock[r] = bench_config_reads(cs, SOCK_ITERS);
        xs[r] = sock[r] / ring[r];
    }
    idle = idle_cpu_percent(cp, server, &idle_ticks);
    printf("# dextd idle after a polled call: %.3f %% of a CPU by its "
           "threads' schedstat, %.1f %% by utime+stime\n", idle,
           idle_ticks);

    /* Both on CPU 0: the spinning sides must give way to each other. */
    bench_pin_process(server, 0);
    bench_config_reads(cp, 200);
    for (r = 0; r < RUNS; r++) {
        same[r] = bench_config_reads(cp, SAME_ITERS);
        same_sock[r] = bench_config_reads(cs, SAME_ITERS);
    }

    bench_report("roundtrip_poll_cross_cpu_ns", bench_median(ring, RUNS),
                 "ns", bench_median(base, RUNS), bench_median(ratio, RUNS),
                 BENCH_AT_MOST, 2);
    bench_report("roundtrip_socket_cross_cpu_ns", bench_median(sock, RUNS),
                 "ns", bench_median(ring, RUNS), bench_median(xs, RUNS),
                 BENCH_INFO, 0);
    bench_report("poll_idle_dextd_cpu_percent", idle, "%", 0, 0,
                 BENCH_INFO, 0);
    bench_report("roundtrip_poll_same_cpu_ns", bench_median(same, RUNS),
                 "ns", bench_median(same_sock, RUNS),
                 bench_median(same, RUNS) / bench_median(same_sock, RUNS),
                 BENCH_INFO, 0);
    apple_dext_disconnect(cp);
    apple_dext_disconnect(cs);
    return harness_finish();
}
