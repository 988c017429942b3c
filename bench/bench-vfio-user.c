/*
 * SPDX-License-Identifier: MIT
 *
 * dext-vfio-user ($DEXT_VFIO_USER) from a client's side.
 *
 * REGION_READ round trip: a 4-byte read of edu's BAR0 ID register and a
 * 4-byte config read, each a 32-byte request and a 36-byte reply on the
 * server's SOCK_STREAM socket, against a bare request/reply of the same
 * sizes with an echo process over a SOCK_STREAM socketpair.  The client
 * side is the same code for both (one send, reads until the reply is
 * whole); only the peer differs.  The server's REGION_READ makes one
 * libdext call (apple_dext_mmio_read / apple_dext_config_read_block), so
 * that call is timed alone too, on a connection of our own to the same
 * target (claimed, for inproc: a core of our own; over dextd the server
 * holds the claim, which is what MMIO reads need): what is left is the
 * server's own cost.  The server runs
 * against an in-process core ("inproc:edu") and against a dextd, where
 * its libdext call is a round trip of its own.
 *
 * DMA: ivshmem's DMA engine copying 4 MiB between its BAR2 and a region
 * the client gave the server by DMA_MAP (a memfd), one REGION_WRITE of
 * the command register a transfer, against memcpy of the same size in
 * the client.  edu's engine moves at most its 4 KiB buffer and needs a
 * start write and status reads a transfer, so through the server it
 * measures round trips, not the DMA path; ivshmem's copies the whole
 * region in one command.
 *
 * Every process (the client, dextd, the servers, the echo peer) shares
 * CPU 0, one placement for a figure and its baseline (see bench.h).
 * Samples are per call, taken in alternating batches so drift hits a
 * figure and its baseline alike.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "harness.h"
#include "ivshmem.h"
#include "vfio-user-proto.h"

#define RUNS        21
#define BATCH       500
#define NSAMPLES    (RUNS * BATCH)
#define REQ_LEN     (VFU_HDR_SIZE + sizeof(VfuRegionAccess))
#define REP_LEN     (REQ_LEN + 4)
#define DMA_RUNS    7
#define DMA_REPS    20
#define DMA_SIZE    (4u << 20)
/* The server's read-ahead buffer: its VFU_MAX_MSG_SIZE. */
#define ECHO_BUF    (VFU_HDR_SIZE + (1u << 20) + 4096u)
#define DMA_IOVA    0x40000000ull

static char sock_dir[64];
static pid_t servers[4];
static unsigned nservers;

static bool read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = recv(fd, buf + got, len - got, 0);

        if (r <= 0) {
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

/* One request/reply with a whole message either way; the client side of
 * every round trip timed here. */
static bool round_trip(int fd, const uint8_t *req, size_t req_len,
                       uint8_t *rep, size_t rep_len)
{
    return send(fd, req, req_len, MSG_NOSIGNAL) == (ssize_t)req_len &&
           read_full(fd, rep, rep_len);
}

/*
 * The bare peer: take a request, send the reply.  @framed: the system
 * calls the server makes for one (recvmsg into its read-ahead buffer with
 * room for fds, send of header and payload; no poll while no interrupts
 * are set up), which tells its socket handling from the rest of its work.
 */
static void echo_peer(int fd, bool framed)
{
    static uint8_t buf[ECHO_BUF];
    char ctl[CMSG_SPACE(8 * sizeof(int))];

    prctl(PR_SET_NAME, framed ? "bench-framed" : "bench-echo");
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    for (;;) {
        struct iovec iov = { buf, sizeof(buf) };
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = ctl, .msg_controllen = sizeof(ctl),
        };
        size_t got = 0;

        if (!framed) {
            if (!read_full(fd, buf, REQ_LEN) ||
                send(fd, buf, REP_LEN, MSG_NOSIGNAL) != (ssize_t)REP_LEN) {
                break;
            }
            continue;
        }
        while (got < REQ_LEN) {
            ssize_t r;

            iov.iov_base = buf + got;
            iov.iov_len = sizeof(buf) - got;
            r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
            if (r <= 0) {
                _exit(0);
            }
            got += (size_t)r;
        }
        if (send(fd, buf, REP_LEN, MSG_NOSIGNAL) != (ssize_t)REP_LEN) {
            break;
        }
    }
    _exit(0);
}

static int start_echo(bool framed, pid_t *pid)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        return -1;
    }
    *pid = fork();
    if (*pid == 0) {
        close(sv[0]);
        echo_peer(sv[1], framed);
    }
    close(sv[1]);
    return sv[0];
}

static void build(uint8_t *msg, uint16_t cmd, const void *p, size_t n)
{
    VfuHeader h = {
        .msg_id = 1, .command = cmd, .size = (uint32_t)(VFU_HDR_SIZE + n),
    };

    memcpy(msg, &h, sizeof(h));
    memcpy(msg + VFU_HDR_SIZE, p, n);
}

/* A command with fds; 0 and the reply payload's length, or the errno. */
static int call(int fd, uint16_t cmd, const void *p, size_t n, int pass_fd,
                uint8_t *rep, size_t cap, size_t *rep_len)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    uint8_t msg[256];
    struct iovec iov = { msg, VFU_HDR_SIZE + n };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    VfuHeader h;

    build(msg, cmd, p, n);
    if (pass_fd >= 0) {
        struct cmsghdr *c;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)iov.iov_len ||
        !read_full(fd, rep, VFU_HDR_SIZE)) {
        return EPIPE;
    }
    memcpy(&h, rep, sizeof(h));
    if (h.size < VFU_HDR_SIZE || h.size > cap ||
        !read_full(fd, rep + VFU_HDR_SIZE, h.size - VFU_HDR_SIZE)) {
        return EPROTO;
    }
    if (rep_len != NULL) {
        *rep_len = h.size - VFU_HDR_SIZE;
    }
    return h.flags & VFU_FLAG_ERROR ? (int)(h.error ? h.error : EIO) : 0;
}

static int region_write(int fd, uint64_t off, uint64_t v, uint32_t width)
{
    uint8_t p[sizeof(VfuRegionAccess) + 8], rep[64];
    VfuRegionAccess ra = { .offset = off, .region = 0, .count = width };

    memcpy(p, &ra, sizeof(ra));
    memcpy(p + sizeof(ra), &v, width);
    return call(fd, VFU_CMD_REGION_WRITE, p, sizeof(ra) + width, -1, rep,
                sizeof(rep), NULL);
}

/* Start dext-vfio-user on @target's @bdf; a VERSIONed connection to it. */
static int start_server(const char *target, const char *bdf)
{
    static const char caps[] = "{\"capabilities\":{\"max_msg_fds\":8,"
                               "\"pgsizes\":4096}}";
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *bin = getenv("DEXT_VFIO_USER");
    uint8_t p[sizeof(VfuVersion) + sizeof(caps)], rep[4096];
    VfuVersion v = { VFU_VERSION_MAJOR, VFU_VERSION_MINOR };
    pid_t pid;
    int fd, i;

    if (bin == NULL) {
        fprintf(stderr, "DEXT_VFIO_USER is not set\n");
        return -1;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vfu%u", sock_dir,
             nservers);
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execl(bin, bin, "--socket", sa.sun_path, "--target", target, bdf,
              (char *)NULL);
        _exit(127);
    }
    servers[nservers++] = pid;
    for (i = 0; i < 500; i++) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            break;
        }
        close(fd);
        fd = -1;
        usleep(10000);
    }
    memcpy(p, &v, sizeof(v));
    memcpy(p + sizeof(v), caps, sizeof(caps));
    if (fd < 0 || call(fd, VFU_CMD_VERSION, p, sizeof(p), -1, rep,
                       sizeof(rep), NULL) != 0) {
        fprintf(stderr, "dext-vfio-user on %s %s: no VERSION\n", target, bdf);
        return -1;
    }
    return fd;
}

static void percentiles(uint64_t *v, uint64_t *p50, uint64_t *p99)
{
    *p50 = bench_percentile(v, NSAMPLES, 50);
    *p99 = bench_percentile(v, NSAMPLES, 99);
}

/*
 * REGION_READ of @region at 0 through the server on @vfu, the bare round
 * trip on @echo, and the server's libdext call alone on @c; @two_hops
 * when that call is a round trip to dextd of its own.
 */
static void measure_read(const char *tag, int vfu, int echo, int framed,
                         io_connect_t c, uint32_t region, bool two_hops)
{
    static uint64_t sv[NSAMPLES], sb[NSAMPLES], sc[NSAMPLES], sf[NSAMPLES];
    VfuRegionAccess ra = { .offset = 0, .region = region, .count = 4 };
    uint8_t req[REQ_LEN], rep[REP_LEN], cfg[4];
    uint64_t v50, v99, b50, b99, c50, c99, f50, f99, t, val = 0;
    char name[80];
    int r, i, k = 0;

    build(req, VFU_CMD_REGION_READ, &ra, sizeof(ra));
    /* Warm up; then the reply must be a success carrying the value. */
    for (i = 0; i < BATCH; i++) {
        if (!round_trip(vfu, req, REQ_LEN, rep, REP_LEN) ||
            !round_trip(echo, req, REQ_LEN, rep, REP_LEN) ||
            !round_trip(framed, req, REQ_LEN, rep, REP_LEN)) {
            abort();
        }
    }
    if (!round_trip(vfu, req, REQ_LEN, rep, REP_LEN) ||
        (rep[8] & VFU_FLAG_ERROR)) {
        abort();
    }
    memcpy(&val, rep + REQ_LEN, 4);
    printf("# %s: REGION_READ(%u, 0, 4) = 0x%08llx\n", tag, region,
           (unsigned long long)val);
    for (r = 0; r < RUNS; r++) {
        for (i = 0; i < BATCH; i++, k++) {
            t = bench_now_ns();
            if (!round_trip(vfu, req, REQ_LEN, rep, REP_LEN)) {
                abort();
            }
            sv[k] = bench_now_ns() - t;
        }
        k -= BATCH;
        for (i = 0; i < BATCH; i++, k++) {
            t = bench_now_ns();
            if (!round_trip(echo, req, REQ_LEN, rep, REP_LEN)) {
                abort();
            }
            sb[k] = bench_now_ns() - t;
        }
        k -= BATCH;
        for (i = 0; i < BATCH; i++, k++) {
            t = bench_now_ns();
            if (!round_trip(framed, req, REQ_LEN, rep, REP_LEN)) {
                abort();
            }
            sf[k] = bench_now_ns() - t;
        }
        k -= BATCH;
        for (i = 0; i < BATCH; i++, k++) {
            kern_return_t kr;

            t = bench_now_ns();
            if (region == VFU_PCI_CONFIG) {
                kr = apple_dext_config_read_block(c, 0, cfg, 4);
            } else {
                kr = apple_dext_mmio_read(c, 0, 0, 4, &val);
            }
            sc[k] = bench_now_ns() - t;
            if (kr != kIOReturnSuccess) {
                fprintf(stderr, "%s: libdext call: 0x%x\n", tag, kr);
                abort();
            }
        }
    }
    percentiles(sv, &v50, &v99);
    percentiles(sb, &b50, &b99);
    percentiles(sc, &c50, &c99);
    percentiles(sf, &f50, &f99);
    /*
     * Against a core in the server's process, a REGION_READ is one round
     * trip and the target is the bare one's.  Through a dextd it is two
     * (client -> server -> dextd): no target against one, but the ratio
     * to the bare round trip plus the libdext call alone says what the
     * server adds in between.
     */
    snprintf(name, sizeof(name), "vfu_read_%s_p50_ns", tag);
    bench_report(name, (double)v50, "ns", (double)b50,
                 (double)v50 / (double)b50,
                 two_hops ? BENCH_INFO : BENCH_AT_MOST, 1.05);
    if (two_hops) {
        snprintf(name, sizeof(name), "vfu_read_%s_vs_two_hops_p50_ns", tag);
        bench_report(name, (double)v50, "ns", (double)(b50 + c50),
                     (double)v50 / (double)(b50 + c50), BENCH_INFO, 0);
    }
    snprintf(name, sizeof(name), "vfu_read_%s_p99_ns", tag);
    bench_report(name, (double)v99, "ns", (double)b99,
                 (double)v99 / (double)b99, BENCH_INFO, 0);
    /*
     * The breakdown: the echo making the server's system calls, the
     * libdext call alone, and what is left of the server's time.
     */
    snprintf(name, sizeof(name), "vfu_read_%s_framed_echo_p50_ns", tag);
    bench_report(name, (double)f50, "ns", (double)b50,
                 (double)f50 / (double)b50, BENCH_INFO, 0);
    snprintf(name, sizeof(name), "vfu_read_%s_libdext_call_p50_ns", tag);
    bench_report(name, (double)c50, "ns", (double)b50,
                 (double)c50 / (double)b50, BENCH_INFO, 0);
    snprintf(name, sizeof(name), "vfu_read_%s_rest_p50_ns", tag);
    bench_report(name, (double)v50 - (double)c50 - (double)f50, "ns",
                 (double)b50,
                 ((double)v50 - (double)c50 - (double)f50) / (double)b50,
                 BENCH_INFO, 0);
}

static double time_dma(int vfu, uint32_t cmd)
{
    uint64_t t0 = bench_now_ns();
    int i;

    for (i = 0; i < DMA_REPS; i++) {
        if (region_write(vfu, IVSHMEM_DMA_CMD, cmd, 4) != 0) {
            abort();
        }
    }
    return (double)(bench_now_ns() - t0) / DMA_REPS;
}

/* ivshmem's engine through the server into/out of a DMA_MAP'd memfd. */
static void measure_dma(const char *tag, int vfu, uint8_t *src)
{
    double to[DMA_RUNS], from[DMA_RUNS], mc[DMA_RUNS], t, f, m;
    VfuDmaMap map = {
        .argsz = sizeof(map), .flags = VFU_DMA_READ | VFU_DMA_WRITE,
        .offset = 0, .address = DMA_IOVA, .size = DMA_SIZE,
    };
    VfuDmaUnmap unmap = {
        .argsz = sizeof(unmap), .address = DMA_IOVA, .size = DMA_SIZE,
    };
    uint8_t rep[256];
    uint8_t *buf;
    char name[80];
    int mfd, r, err;

    mfd = memfd_create("bench-vfu-dma", MFD_CLOEXEC);
    if (mfd < 0 || ftruncate(mfd, DMA_SIZE) != 0) {
        abort();
    }
    buf = mmap(NULL, DMA_SIZE, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_POPULATE, mfd, 0);
    if (buf == MAP_FAILED) {
        abort();
    }
    err = call(vfu, VFU_CMD_DMA_MAP, &map, sizeof(map), mfd, rep,
               sizeof(rep), NULL);
    close(mfd);
    if (err != 0) {
        fprintf(stderr, "%s: DMA_MAP: %s\n", tag, strerror(err));
        abort();
    }
    if (region_write(vfu, IVSHMEM_DMA_SHM, 0, 8) != 0 ||
        region_write(vfu, IVSHMEM_DMA_BUS, DMA_IOVA, 8) != 0 ||
        region_write(vfu, IVSHMEM_DMA_LEN, DMA_SIZE, 8) != 0) {
        abort();
    }
    /* Byte for byte once: client memory -> BAR2 -> client memory. */
    memcpy(buf, src, DMA_SIZE);
    time_dma(vfu, IVSHMEM_DMA_RUN);
    memset(buf, 0, DMA_SIZE);
    time_dma(vfu, IVSHMEM_DMA_RUN | IVSHMEM_DMA_TO_BUS);
    if (memcmp(buf, src, DMA_SIZE) != 0) {
        fprintf(stderr, "%s: DMA did not carry the bytes\n", tag);
        abort();
    }
    for (r = 0; r < DMA_RUNS; r++) {
        to[r] = time_dma(vfu, IVSHMEM_DMA_RUN | IVSHMEM_DMA_TO_BUS);
        from[r] = time_dma(vfu, IVSHMEM_DMA_RUN);
        mc[r] = bench_memcpy_ns(buf, src, DMA_SIZE, DMA_REPS);
    }
    t = DMA_SIZE / bench_median(to, DMA_RUNS) * 1e9 / 1e6;
    f = DMA_SIZE / bench_median(from, DMA_RUNS) * 1e9 / 1e6;
    m = DMA_SIZE / bench_median(mc, DMA_RUNS) * 1e9 / 1e6;
    snprintf(name, sizeof(name), "vfu_dma_to_client_4MiB_%s_MBps", tag);
    bench_report(name, t, "MB/s", m, t / m, BENCH_INFO, 0);
    snprintf(name, sizeof(name), "vfu_dma_from_client_4MiB_%s_MBps", tag);
    bench_report(name, f, "MB/s", m, f / m, BENCH_INFO, 0);
    if (call(vfu, VFU_CMD_DMA_UNMAP, &unmap, sizeof(unmap), -1, rep,
             sizeof(rep), NULL) != 0) {
        abort();
    }
    munmap(buf, DMA_SIZE);
}

int main(int argc, char **argv)
{
    io_connect_t cd, ci = IO_OBJECT_NULL;
    int echo, framed, vi, vd, wi, wd, status;
    char dextd_target[256];
    uint8_t *src;
    unsigned i;
    pid_t echo_pid, framed_pid;

    /* One placement for every process: see bench.h. */
    bench_pin(0);
    harness_init(argc, argv, "edu+ivshmem");
    snprintf(sock_dir, sizeof(sock_dir), "/tmp/bench-vfu-XXXXXX");
    if (mkdtemp(sock_dir) == NULL) {
        return 1;
    }
    snprintf(dextd_target, sizeof(dextd_target), "%s", harness_target());
    cd = harness_connect(EDU_BUS, EDU_DEV, EDU_FN);
    if (cd == IO_OBJECT_NULL ||
        apple_dext_connect_target("inproc:edu", EDU_BUS, EDU_DEV, EDU_FN,
                                  &ci) != kIOReturnSuccess ||
        apple_dext_claim(ci) != kIOReturnSuccess) {
        return harness_finish();
    }
    vi = start_server("inproc:edu", "00:03.0");
    vd = start_server(dextd_target, "00:03.0");
    wi = start_server("inproc:ivshmem", "00:04.0");
    wd = start_server(dextd_target, "00:04.0");
    echo = start_echo(false, &echo_pid);
    framed = start_echo(true, &framed_pid);
    if (vi < 0 || vd < 0 || wi < 0 || wd < 0 || echo < 0 || framed < 0) {
        return 1;
    }
    printf("# request %zu bytes, reply %zu bytes\n", (size_t)REQ_LEN,
           (size_t)REP_LEN);

    measure_read("bar0_inproc", vi, echo, framed, ci, VFU_PCI_BAR0, false);
    measure_read("config_inproc", vi, echo, framed, ci, VFU_PCI_CONFIG,
                 false);
    measure_read("bar0_dextd", vd, echo, framed, cd, VFU_PCI_BAR0, true);
    measure_read("config_dextd", vd, echo, framed, cd, VFU_PCI_CONFIG, true);

    src = malloc(DMA_SIZE);
    memset(src, 0x5a, DMA_SIZE);
    measure_dma("inproc", wi, src);
    measure_dma("dextd", wd, src);
    free(src);

    close(echo);
    close(framed);
    waitpid(echo_pid, &status, 0);
    waitpid(framed_pid, &status, 0);
    close(vi);
    close(vd);
    close(wi);
    close(wd);
    for (i = 0; i < nservers; i++) {
        kill(servers[i], SIGTERM);
        waitpid(servers[i], &status, 0);
    }
    rmdir(sock_dir);
    apple_dext_disconnect(ci);
    apple_dext_disconnect(cd);
    return harness_finish();
}
