/*
 * SPDX-License-Identifier: MIT
 *
 * Call round trip: ConfigRead of one dword through libdext over dextd's
 * UNIX socket, against a bare request/reply of the same sizes between two
 * processes over a SOCK_SEQPACKET socketpair (the physical limit of the
 * transport: two context switches and two copies).  Also the in-process
 * transport against a direct function call.
 *
 * Runs alternate between the library and the baseline so that drift
 * (frequency scaling, other load) hits both alike: each figure is the
 * median over runs of the mean per call, and the ratio the median of the
 * ratios of adjacent runs, which other load on the machine disturbs
 * least.
 *
 * As information, the same ConfigRead sent by hand on a lean channel of
 * its own to the same dextd (encoded once, its seq changed a call): what
 * dextd costs over the bare echo, and what the library costs over that.
 *
 * Placement is fixed, and the same for dextd and for the baseline's echo
 * process: both on the client's CPU (the primary figure: a direct
 * hand-off, the fastest a cross-process round trip gets), then both on
 * the other CPU.  Left to the scheduler, a forked echo child stays beside
 * its parent while dextd's threads may sit on another vCPU, and on a VM
 * waking a halted vCPU costs tens of microseconds -- a 20x difference
 * that says nothing about libdext.
 */

#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "harness.h"
#include "ivshmem.h"
#include "protocol/dext-wire.h"
#include "protocol/dext-selectors.h"

#define RUNS        41
#define ITERS       3000
#define INPROC_ITERS 30000

/* The sizes dextd's wire protocol uses for ConfigRead and its reply. */
static void wire_sizes(int *req, int *rep)
{
    static uint8_t buf[DEXT_WIRE_MAX_MSG];
    DextWireCall m = {
        .selector = kDextSelectorConfigRead,
        .scalar_in_cnt = 2,
        .scalar_out_cap = 1,
    };
    DextWireCallReply r = { .scalar_out_cnt = 1 };

    *req = dext_wire_encode_call(buf, sizeof(buf), DEXT_WIRE_VERSION_MAX, 1,
                                 false, &m);
    *rep = dext_wire_encode_call_reply(buf, sizeof(buf), DEXT_WIRE_VERSION_MAX,
                                       1, false, &r);
}

static void echo_server(int fd, int rep_len)
{
    static uint8_t buf[DEXT_WIRE_MAX_MSG];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);

        if (n <= 0 || send(fd, buf, (size_t)rep_len, 0) != rep_len) {
            _exit(0);
        }
    }
}

static double run_bare(int fd, int req_len, int rep_len)
{
    static uint8_t buf[DEXT_WIRE_MAX_MSG];
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < ITERS; i++) {
        if (send(fd, buf, (size_t)req_len, 0) != req_len ||
            recv(fd, buf, sizeof(buf), 0) != rep_len) {
            abort();
        }
    }
    return (double)(bench_now_ns() - t0) / ITERS;
}

/*
 * One round trip on @fd of the @req_len-byte request in @buf, its seq
 * set to @seq; aborts unless a reply of @rep_len bytes comes back.
 */
static void raw_roundtrip(int fd, uint8_t *buf, int req_len, int rep_len,
                          uint64_t seq)
{
    static uint8_t in[DEXT_WIRE_MAX_MSG];

    dext_wire_put_u64(buf + 16, seq);
    if (send(fd, buf, (size_t)req_len, 0) != req_len ||
        recv(fd, in, sizeof(in), 0) != rep_len) {
        abort();
    }
}

/*
 * A lean channel of our own to the dextd at @path with a session on its
 * first service, and in @call a ConfigRead of one dword ready to send
 * (*@req_len bytes, its reply @rep_len).  The fd, or -1.
 */
static int raw_channel(const char *path, uint8_t *call, int *req_len,
                       int rep_len)
{
    static uint8_t buf[DEXT_WIRE_MAX_MSG];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    DextWireHello hello = {
        .min_version = DEXT_WIRE_VERSION_MIN,
        .max_version = DEXT_WIRE_VERSION_MAX,
        .features = DEXT_WIRE_FEATURES_V1 | DEXT_WIRE_FEAT_LEAN,
    };
    DextWireCall m = {
        .selector = kDextSelectorConfigRead,
        .scalar_in_cnt = 2,
        .scalar_in = { 0, 4 },
        .scalar_out_cap = 1,
    };
    DextWireListReply list;
    DextWireOpen open = { .type = 0 };
    DextWireHeader h;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    const uint16_t v = DEXT_WIRE_VERSION_MAX;
    ssize_t n;
    int len;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        goto fail;
    }
    len = dext_wire_encode_hello(buf, sizeof(buf), 1, &hello);
    if (send(fd, buf, (size_t)len, 0) != len ||
        recv(fd, buf, sizeof(buf), 0) <= 0) {
        goto fail;
    }
    len = dext_wire_encode_empty(buf, sizeof(buf), v, 2, DEXT_WIRE_LIST);
    n = send(fd, buf, (size_t)len, 0) == len ?
        recv(fd, buf, sizeof(buf), 0) : -1;
    if (n < DEXT_WIRE_HEADER_SIZE ||
        dext_wire_decode_header(buf, (size_t)n, &h) != 0 ||
        dext_wire_decode_list_reply(buf + DEXT_WIRE_HEADER_SIZE, h.length,
                                    &list) != 0 || list.count == 0) {
        goto fail;
    }
    open.service_id = list.ids[0];
    len = dext_wire_encode_open(buf, sizeof(buf), v, 3, &open);
    if (send(fd, buf, (size_t)len, 0) != len ||
        recv(fd, buf, sizeof(buf), 0) <= 0) {
        goto fail;
    }
    *req_len = dext_wire_encode_call(call, DEXT_WIRE_MAX_MSG, v, 4, false,
                                     &m);
    raw_roundtrip(fd, call, *req_len, rep_len, 4);
    return fd;

fail:
    if (fd >= 0) {
        close(fd);
    }
    return -1;
}

/* The mean ns of @n raw ConfigReads on @fd. */
static double run_raw(int fd, uint8_t *call, int req_len, int rep_len)
{
    static uint64_t seq = 100;
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < ITERS; i++) {
        raw_roundtrip(fd, call, req_len, rep_len, ++seq);
    }
    return (double)(bench_now_ns() - t0) / ITERS;
}

/* The baseline of the in-process path: an opaque call doing the read. */
static uint32_t config_words[1024] = { 0x11101af4u };

__attribute__((noinline)) static int direct_read(uint32_t off, uint64_t *out)
{
    __asm__ volatile("" ::: "memory");
    *out = config_words[off / 4];
    return 0;
}

static double run_direct(int (*volatile fn)(uint32_t, uint64_t *))
{
    uint64_t v = 0;
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < INPROC_ITERS; i++) {
        fn(0, &v);
    }
    return (double)(bench_now_ns() - t0) / INPROC_ITERS;
}

/*
 * Single round trips, for the latency distribution (docs/performance.md's
 * plot): CDF_SAMPLES of each, the two taking turns in blocks, on CPU 0.
 */
#define CDF_SAMPLES 6000
#define CDF_BLOCK   500

static void sample_cdf(io_connect_t c, int fd, int req_len, int rep_len)
{
    static uint64_t lib_ns[CDF_SAMPLES], bare_ns[CDF_SAMPLES];
    static uint8_t buf[DEXT_WIRE_MAX_MSG];
    uint64_t v, t0;
    int i, j;

    for (i = 0; i < CDF_SAMPLES; i += CDF_BLOCK) {
        for (j = i; j < i + CDF_BLOCK; j++) {
            t0 = bench_now_ns();
            if (apple_dext_config_read(c, 0, 4, &v) != kIOReturnSuccess) {
                abort();
            }
            lib_ns[j] = bench_now_ns() - t0;
        }
        for (j = i; j < i + CDF_BLOCK; j++) {
            t0 = bench_now_ns();
            if (send(fd, buf, (size_t)req_len, 0) != req_len ||
                recv(fd, buf, sizeof(buf), 0) != rep_len) {
                abort();
            }
            bare_ns[j] = bench_now_ns() - t0;
        }
    }
    bench_report("roundtrip_unix_p99_ns",
                 bench_percentile(lib_ns, CDF_SAMPLES, 99), "ns",
                 bench_percentile(bare_ns, CDF_SAMPLES, 99),
                 (double)bench_percentile(lib_ns, CDF_SAMPLES, 99) /
                 bench_percentile(bare_ns, CDF_SAMPLES, 99), BENCH_INFO, 0);
    bench_dump_cdf("rt-unix.dat", lib_ns, CDF_SAMPLES);
    bench_dump_cdf("rt-bare.dat", bare_ns, CDF_SAMPLES);
}

/* One placement: every dextd thread and the echo process on @cpu. */
static void measure(io_connect_t c, pid_t server, pid_t echo, int fd,
                    int req_len, int rep_len, int cpu, double *lib,
                    double *bare, double *ratio)
{
    bench_pin_process(server, cpu);
    bench_pin_process(echo, cpu);
    bench_config_reads(c, 200);
    run_bare(fd, req_len, rep_len);
    *lib = bench_config_reads(c, ITERS);
    *bare = run_bare(fd, req_len, rep_len);
    *ratio = *lib / *bare;
}

int main(int argc, char **argv)
{
    double lib[RUNS], bare[RUNS], inproc[RUNS], direct[RUNS];
    double xlib[RUNS], xbare[RUNS], xr[RUNS];
    double rl[RUNS], ri[RUNS], raw[RUNS], rawr[RUNS], libraw[RUNS];
    static uint8_t call[DEXT_WIRE_MAX_MSG];
    io_connect_t c, ci = IO_OBJECT_NULL;
    int req_len, rep_len, raw_len = 0, raw_fd, sv[2], r, status;
    bool split;
    pid_t child;

    /* The client (and all it forks) on CPU 0. */
    bench_pin(0);
    harness_init(argc, argv, "ivshmem");
    wire_sizes(&req_len, &rep_len);
    printf("# request %d bytes, reply %d bytes\n", req_len, rep_len);
    c = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    if (c == IO_OBJECT_NULL ||
        apple_dext_connect_target("inproc:ivshmem", IVSHMEM_BUS, IVSHMEM_DEV,
                                  IVSHMEM_FN, &ci) != kIOReturnSuccess) {
        return harness_finish();
    }
    if (!harness_is_unix()) {
        harness_skip("the round trip through dextd: unix transport only");
    }
    raw_fd = raw_channel(harness_socket_path(), call, &raw_len, rep_len);
    if (!CHECK_MSG(raw_fd >= 0 && raw_len == req_len,
                   "no hand-made channel to dextd") ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        return harness_finish();
    }
    child = fork();
    if (child == 0) {
        /* Its own name, so profiles tell it from the client. */
        prctl(PR_SET_NAME, "bench-echo");
        close(sv[0]);
        echo_server(sv[1], rep_len);
    }
    close(sv[1]);

    /* Warm up both paths (pool channel, page tables, caches). */
    bench_config_reads(c, 2000);
    run_bare(sv[0], req_len, rep_len);
    split = bench_pin_process(harness_server_pid(), 0);
    for (r = 0; r < RUNS; r++) {
        measure(c, harness_server_pid(), child, sv[0], req_len, rep_len, 0,
                &lib[r], &bare[r], &rl[r]);
        raw[r] = run_raw(raw_fd, call, req_len, rep_len);
        rawr[r] = raw[r] / bare[r];
        libraw[r] = lib[r] / raw[r];
        if (split) {
            measure(c, harness_server_pid(), child, sv[0], req_len, rep_len,
                    1, &xlib[r], &xbare[r], &xr[r]);
        }
        inproc[r] = bench_config_reads(ci, INPROC_ITERS);
        direct[r] = run_direct(direct_read);
        ri[r] = inproc[r] / direct[r];
    }
    bench_pin_process(harness_server_pid(), 0);
    bench_pin_process(child, 0);
    sample_cdf(c, sv[0], req_len, rep_len);
    close(sv[0]);
    close(raw_fd);
    waitpid(child, &status, 0);

    bench_report("roundtrip_unix_ns", bench_median(lib, RUNS), "ns",
                 bench_median(bare, RUNS), bench_median(rl, RUNS),
                 BENCH_AT_MOST, 1.05);
    bench_report("roundtrip_dextd_raw_ns", bench_median(raw, RUNS), "ns",
                 bench_median(bare, RUNS), bench_median(rawr, RUNS),
                 BENCH_INFO, 0);
    bench_report("roundtrip_unix_vs_raw_ns", bench_median(lib, RUNS), "ns",
                 bench_median(raw, RUNS), bench_median(libraw, RUNS),
                 BENCH_INFO, 0);
    if (split) {
        bench_report("roundtrip_unix_split_cpu_ns", bench_median(xlib, RUNS),
                     "ns", bench_median(xbare, RUNS), bench_median(xr, RUNS),
                     BENCH_INFO, 0);
    }
    bench_report("roundtrip_inproc_ns", bench_median(inproc, RUNS), "ns",
                 bench_median(direct, RUNS), bench_median(ri, RUNS),
                 BENCH_INFO, 0);
    apple_dext_disconnect(ci);
    apple_dext_disconnect(c);
    return harness_finish();
}
