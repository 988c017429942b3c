/*
 * SPDX-License-Identifier: MIT
 *
 * Fuzz target: the library's unix transport against a hostile daemon.
 * A fake dextd (a thread of this process) listens on a private socket;
 * for every request the library sends, on any of its channels, it
 * answers with the next chunk of the input, then hangs up once the
 * input is spent.  Meanwhile the library connects and makes a fixed
 * series of calls through the public API.  Whatever the replies, the
 * library must not crash, overrun its buffers, leak fds, or hang: once
 * the fake daemon hangs up, every call must return.
 *
 * Chunk: u16 length, then a flags byte and the reply bytes.  Flag 0x1
 * copies the request's type and sequence number into the reply header
 * (and marks it a reply), so mutations reach past the header checks;
 * flag 0x2 passes a memfd along, as MAP replies do; flag 0x4 ignores the
 * bytes and sends a well-formed success reply to whatever was asked, so
 * seeds can walk the library through a whole session and mutations can
 * replace any one reply of it.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "apple-dext-client.h"
#include "protocol/dext-wire.h"

#define MAX_CONNS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Fake {
    const uint8_t *p;
    size_t left;
    int listen_fd;
    int stop_fd[2];         /* the client is done: stop serving */
} Fake;

static char sock_path[108];
static char target[128];
static int listen_fd = -1;

static void quiet_log(void *opaque, int level, const char *msg)
{
}

static void setup_once(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char dir[] = "/tmp/fuzz-sock-XXXXXX";

    if (listen_fd >= 0) {
        return;
    }
    if (mkdtemp(dir) == NULL) {
        abort();
    }
    snprintf(sock_path, sizeof(sock_path), "%s/dextd.sock", dir);
    snprintf(target, sizeof(target), "unix:%s", sock_path);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       0);
    if (listen_fd < 0 ||
        bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(listen_fd, MAX_CONNS) != 0) {
        abort();
    }
    apple_dext_set_log_handler(quiet_log, NULL);
}

/* A well-formed success reply to @req in @rep; its length. */
static int auto_reply(const uint8_t *req, size_t n, uint8_t *rep, size_t cap,
                      int *pass_fd)
{
    DextWireHeader h;
    const uint8_t *pl = req + DEXT_WIRE_HEADER_SIZE;

    if (dext_wire_decode_header(req, n, &h) != 0) {
        return 0;
    }
    switch (h.type) {
    case DEXT_WIRE_HELLO: {
        DextWireHelloReply r = { .version = 1, .pid = 1,
                                 .features = DEXT_WIRE_FEATURES_V1 };
        return dext_wire_encode_hello_reply(rep, cap, h.seq, &r);
    }
    case DEXT_WIRE_LIST: {
        DextWireListReply r = { .total = 1, .count = 1,
                                .ids = { 0x100000001ull } };
        return dext_wire_encode_list_reply(rep, cap, 1, h.seq, &r);
    }
    case DEXT_WIRE_OPEN: {
        DextWireOpenReply r = { .token = { 1, 2, 3 } };
        return dext_wire_encode_open_reply(rep, cap, 1, h.seq, &r);
    }
    case DEXT_WIRE_ATTACH:
        return dext_wire_encode_status_only(rep, cap, 1, h.seq, h.type,
                                            kIOReturnSuccess);
    case DEXT_WIRE_CALL:
    case DEXT_WIRE_CALL_ASYNC: {
        static const uint64_t ident[6] = { 0, 3, 0, 0x1234, 0x11e8, 0xff00 };
        DextWireCall c;
        DextWireCallReply r = { 0 };

        if (dext_wire_decode_call(pl, h.length, h.type == DEXT_WIRE_CALL_ASYNC,
                                  &c) != 0) {
            return 0;
        }
        r.scalar_out_cnt = c.scalar_out_cap;
        if (c.selector == 0) {
            memcpy(r.scalar_out, ident, sizeof(ident));
        }
        return dext_wire_encode_call_reply(rep, cap, 1, h.seq,
                                           h.type == DEXT_WIRE_CALL_ASYNC, &r);
    }
    case DEXT_WIRE_WAKE_REGISTER: {
        DextWireWakeReply r = { .port = 1 };
        return dext_wire_encode_wake_reply(rep, cap, 1, h.seq, &r);
    }
    case DEXT_WIRE_MAP: {
        DextWireMapReply r = { .flags = DEXT_WIRE_MAP_WRITABLE,
                               .size = 16384 };
        *pass_fd = 1;
        return dext_wire_encode_map_reply(rep, cap, 1, h.seq, &r);
    }
    case DEXT_WIRE_STATUS: {
        DextWireStatusReply r = { .version = 1, .pid = 1, .devices = 1 };
        return dext_wire_encode_status_reply(rep, cap, 1, h.seq, &r);
    }
    default:
        return dext_wire_encode_status_only(rep, cap, 1, h.seq, h.type,
                                            kIOReturnSuccess);
    }
}

/*
 * Answer one request on @fd from the input: 1 if answered (or nothing
 * to answer yet), 0 once the input is spent, -1 if the peer hung up --
 * the library waits for the daemon to close in turn when it disconnects.
 */
static int answer(Fake *f, int fd)
{
    uint8_t req[DEXT_WIRE_MAX_MSG], rep[DEXT_WIRE_MAX_MSG];
    ssize_t n = recv(fd, req, sizeof(req), MSG_DONTWAIT);
    size_t len;
    uint8_t flags;
    int memfd = -1, want_fd = 0;

    if (n == 0) {
        return -1;
    }
    if (n < 0) {
        return 1;
    }
    if (f->left < 3) {
        return 0;
    }
    len = (size_t)f->p[0] | (size_t)f->p[1] << 8;
    flags = f->p[2];
    f->p += 3;
    f->left -= 3;
    if (len > f->left) {
        len = f->left;
    }
    if (len > sizeof(rep)) {
        len = sizeof(rep);
    }
    memcpy(rep, f->p, len);
    f->p += len;
    f->left -= len;
    if (flags & 4) {
        int m = auto_reply(req, (size_t)n, rep, sizeof(rep), &want_fd);

        len = m > 0 ? (size_t)m : 0;
        flags &= ~1;
    }
    if ((flags & 1) && len >= DEXT_WIRE_HEADER_SIZE &&
        n >= DEXT_WIRE_HEADER_SIZE) {
        memcpy(rep + 6, req + 6, 2);            /* type */
        dext_wire_put_u32(rep + 8, DEXT_WIRE_FLAG_REPLY);
        memcpy(rep + 16, req + 16, 8);          /* seq */
    }
    if ((flags & 2) || want_fd) {
        memfd = memfd_create("fuzz-map", MFD_CLOEXEC);
        if (memfd >= 0 && ftruncate(memfd, 65536) != 0) {
            close(memfd);
            memfd = -1;
        }
    }
    dext_wire_sendmsg(fd, rep, len, memfd);
    if (memfd >= 0) {
        close(memfd);
    }
    return 1;
}

static void *fake_daemon(void *opaque)
{
    Fake *f = opaque;
    struct pollfd p[MAX_CONNS + 2];
    int conns[MAX_CONNS];
    int nconns = 0, i;
    bool spent = false;

    for (;;) {
        int np = 0, polled = nconns;

        p[np++] = (struct pollfd) { .fd = f->stop_fd[0], .events = POLLIN };
        p[np++] = (struct pollfd) { .fd = f->listen_fd, .events = POLLIN };
        for (i = 0; i < nconns; i++) {
            p[np++] = (struct pollfd) { .fd = conns[i], .events = POLLIN };
        }
        if (poll(p, np, 1000) < 0) {
            continue;
        }
        if (p[0].revents) {
            break;
        }
        if (p[1].revents & POLLIN) {
            int fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);

            if (fd >= 0 && (spent || nconns == MAX_CONNS)) {
                close(fd);
            } else if (fd >= 0) {
                conns[nconns++] = fd;
            }
        }
        /* Only the connections that were polled; new ones wait a round. */
        for (i = 0; i < polled; i++) {
            int r = p[i + 2].revents && !spent ? answer(f, conns[i]) : 1;

            if (r == 0) {
                spent = true;
            } else if (r < 0) {
                p[i + 2].revents |= POLLHUP;
            }
        }
        for (i = polled - 1; i >= 0; i--) {
            if (p[i + 2].revents & (POLLHUP | POLLERR)) {
                close(conns[i]);
                conns[i] = conns[--nconns];
            }
        }
        if (spent) {
            /* Hang up on everyone: every call in flight must return. */
            while (nconns > 0) {
                close(conns[--nconns]);
            }
        }
    }
    while (nconns > 0) {
        close(conns[--nconns]);
    }
    return NULL;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    while (d != NULL && (e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

static void client(void)
{
    static uint8_t mem[16384] __attribute__((aligned(4096)));
    AppleDextDeviceInfo info[4];
    AppleDextDeviceStatus ds;
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    AppleDextDMABuffer db;
    io_connect_t c;
    mach_vm_address_t addr;
    mach_vm_size_t size;
    volatile uint64_t *page;
    uint64_t v, pend[4];
    uint8_t buf[256], idx, type;
    kern_return_t kr;
    uint32_t n;

    apple_dext_get_status(target, &st);
    apple_dext_list_devices(target, info, 4, &n);
    kr = apple_dext_connect_target(target, 0, 3, 0, &c);
    if (getenv("FUZZ_SOCK_VERBOSE")) {
        /* To check that a seed gets as far as it should. */
        fprintf(stderr, "connect: %s\n", apple_dext_strerror(kr));
    }
    if (kr != kIOReturnSuccess) {
        return;
    }
    apple_dext_get_identity(c, info);
    apple_dext_claim(c);
    apple_dext_config_read(c, 0, 4, &v);
    apple_dext_config_read_block(c, 0, buf, sizeof(buf));
    apple_dext_get_bar_info(c, 0, &idx, &v, &type);
    apple_dext_mmio_read(c, 0, 0, 4, &v);
    apple_dext_register_dma(c, 0x10000, (uintptr_t)mem, sizeof(mem), &v, &v);
    apple_dext_probe_dma(c, 0x10000, 0, &v);
    apple_dext_allocate_dma_buffer(c, 4096, 0, &db);
    if (apple_dext_map_dma_buffer(c, &addr, &size) == kIOReturnSuccess) {
        ((volatile uint8_t *)(uintptr_t)addr)[0] = 1;
        ((volatile uint8_t *)(uintptr_t)addr)[size - 1] = 1;
        apple_dext_unmap_dma_buffer(c, addr);
    }
    apple_dext_setup_interrupts(c, &n);
    if (apple_dext_map_irq_page(c, &page) == kIOReturnSuccess) {
        (void)page[0];
    }
    apple_dext_read_pending_irqs(c, pend);
    apple_dext_drain_pending_irqs(c, pend);
    apple_dext_get_device_status(c, &ds);
    kr = apple_dext_unregister_dma(c, 0x10000);
    if (getenv("FUZZ_SOCK_VERBOSE")) {
        fprintf(stderr, "last call: %s\n", apple_dext_strerror(kr));
    }
    apple_dext_disconnect(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Fake f = { .p = data, .left = size };
    pthread_t tid;
    int fds_before;

    setup_once();
    f.listen_fd = listen_fd;
    fds_before = count_fds();
    if (pipe2(f.stop_fd, O_CLOEXEC) != 0) {
        abort();
    }
    pthread_create(&tid, NULL, fake_daemon, &f);
    client();
    if (write(f.stop_fd[1], "x", 1) != 1) {
        abort();
    }
    pthread_join(tid, NULL);
    close(f.stop_fd[0]);
    close(f.stop_fd[1]);
    /* Connections refused after the input ran out may still be queued. */
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            break;
        }
        close(fd);
    }
    if (count_fds() != fds_before) {
        fprintf(stderr, "fd leak: %d before, %d after\n", fds_before,
                count_fds());
        abort();
    }
    return 0;
}
