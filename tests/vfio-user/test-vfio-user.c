/*
 * SPDX-License-Identifier: MIT
 *
 * dext-vfio-user against a vfio-user client written here from the
 * protocol specification (QEMU docs/interop/vfio-user.rst), with its own
 * message layouts: the server binary ($DEXT_VFIO_USER) serves edu of
 * an in-process dext core ("inproc:edu"), and every command is tried,
 * with its error paths and malformed input; a malformed message closes
 * the connection, and the server then serves the next client, also
 * after a client killed with DMA mapped and interrupts set up.  A
 * second server serves ivshmem, whose shared-memory BAR comes with a
 * sparse-mmap capability and its fd, and whose 256 MSI-X vectors serve
 * a VMM that races the server for its trigger eventfd's counter (it is
 * dropped), and one that reads its eventfds while the server's guard
 * against the race expires mid-batch (it is not).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* Commands and flags, from the specification. */
enum {
    C_VERSION = 1, C_DMA_MAP = 2, C_DMA_UNMAP = 3, C_GET_INFO = 4,
    C_REGION_INFO = 5, C_IRQ_INFO = 7, C_SET_IRQS = 8, C_READ = 9,
    C_WRITE = 10, C_RESET = 13, C_WRITE_MULTI = 15,
};
#define F_REPLY    0x1u
#define F_NO_REPLY 0x10u
#define F_ERROR    0x20u

#define EDU_ID      0x010000edu
#define EDU_BAR0    (1u << 20)
#define EDU_DMA_BUF 0x40000

/* ivshmem's BAR0: ring one vector; fire every vector N times. */
#define IVSHMEM_DOORBELL 0x0c
#define IVSHMEM_BURST    0x40

static char sock_path[108];
static pid_t server = -1;
static uint16_t next_id = 1;
/* The fd that came with the last reply, if any; the caller takes it. */
static int reply_fd = -1;

typedef struct Msg {
    uint8_t b[1 << 16];
    size_t len;
} Msg;

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int connect_server(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, i;

    strcpy(sa.sun_path, sock_path);
    for (i = 0; i < 500; i++) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            return fd;
        }
        close(fd);
        usleep(10000);
    }
    return -1;
}

/* Send a command with @n payload bytes and @nfds fds. */
static bool send_msg(int s, uint16_t cmd, uint32_t flags, const void *p,
                     size_t n, const int *fds, unsigned nfds, uint32_t size)
{
    uint8_t h[16];
    char ctl[CMSG_SPACE(16 * sizeof(int))];
    struct iovec iov[2] = { { h, 16 }, { (void *)p, n } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n ? 2 : 1 };

    put16(h, next_id++);
    put16(h + 2, cmd);
    put32(h + 4, size ? size : (uint32_t)(16 + n));
    put32(h + 8, flags);
    put32(h + 12, 0);
    if (nfds) {
        struct cmsghdr *c;

        memset(ctl, 0, sizeof(ctl));
        mh.msg_control = ctl;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    return sendmsg(s, &mh, MSG_NOSIGNAL) == (ssize_t)(16 + n);
}

static bool recv_full(int s, uint8_t *b, size_t n)
{
    size_t got = 0;
    struct pollfd pfd = { .fd = s, .events = POLLIN };

    while (got < n) {
        ssize_t r;

        if (poll(&pfd, 1, 5000) != 1) {
            return false;
        }
        {
            char ctl[CMSG_SPACE(4 * sizeof(int))];
            struct iovec iov = { b + got, n - got };
            struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                                 .msg_control = ctl,
                                 .msg_controllen = sizeof(ctl) };
            struct cmsghdr *c;

            r = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
            if (r <= 0) {
                return false;
            }
            for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                size_t k, nf = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                for (k = 0; c->cmsg_type == SCM_RIGHTS && k < nf; k++) {
                    int fd;

                    memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(fd));
                    if (reply_fd < 0) {
                        reply_fd = fd;
                    } else {
                        close(fd);
                    }
                }
            }
        }
        got += (size_t)r;
    }
    return true;
}

/* Receive a reply: the errno it carries (0 for success), -1 if none. */
static int recv_reply(int s, uint16_t cmd, Msg *m)
{
    uint32_t size, flags;

    if (!recv_full(s, m->b, 16)) {
        return -1;
    }
    size = get32(m->b + 4);
    flags = get32(m->b + 8);
    if (size < 16 || size > sizeof(m->b) || !recv_full(s, m->b + 16,
                                                       size - 16)) {
        return -1;
    }
    m->len = size - 16;
    CHECK_EQ(get32(m->b) >> 16, cmd);
    CHECK_EQ(get32(m->b) & 0xffff, (uint16_t)(next_id - 1));
    CHECK_EQ(flags & 0xf, F_REPLY);
    if (flags & F_ERROR) {
        CHECK(m->len == 0);
        return get32(m->b + 12) ? (int)get32(m->b + 12) : EIO;
    }
    return 0;
}

static int call(int s, uint16_t cmd, const void *p, size_t n, Msg *m)
{
    if (!send_msg(s, cmd, 0, p, n, NULL, 0, 0)) {
        return -1;
    }
    return recv_reply(s, cmd, m);
}

static int call_fds(int s, uint16_t cmd, const void *p, size_t n,
                    const int *fds, unsigned nfds, Msg *m)
{
    if (!send_msg(s, cmd, 0, p, n, fds, nfds, 0)) {
        return -1;
    }
    return recv_reply(s, cmd, m);
}

/*
 * The server closed the connection: reading gives end of file, or
 * ECONNRESET when it closed with our bytes still unread.
 */
static bool closed_by_server(int s)
{
    uint8_t b[16];
    struct pollfd pfd = { .fd = s, .events = POLLIN };
    ssize_t r;

    if (poll(&pfd, 1, 5000) != 1) {
        return false;
    }
    r = recv(s, b, sizeof(b), 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

static int version(int s)
{
    static const char caps[] = "{\"capabilities\":{\"max_msg_fds\":16,"
                               "\"pgsizes\":4096}}";
    uint8_t p[4 + sizeof(caps)];
    Msg *m = malloc(sizeof(*m));
    int err;

    put16(p, 0);
    put16(p + 2, 0);
    memcpy(p + 4, caps, sizeof(caps));
    err = call(s, C_VERSION, p, sizeof(p), m);
    if (err == 0) {
        CHECK(m->len > 4 && m->b[16 + m->len - 1] == '\0');
        CHECK(strstr((char *)m->b + 20, "\"max_msg_fds\"") != NULL);
        CHECK(strstr((char *)m->b + 20, "\"max_data_xfer_size\"") != NULL);
        CHECK(strstr((char *)m->b + 20, "\"pgsizes\"") != NULL);
        CHECK(strstr((char *)m->b + 20, "\"max_dma_maps\"") != NULL);
        CHECK(strstr((char *)m->b + 20, "migration") == NULL);
    }
    free(m);
    return err;
}

static int region_rw(int s, uint32_t region, uint64_t off, void *data,
                     uint32_t count, bool write)
{
    uint8_t p[16 + 64];
    Msg *m = malloc(sizeof(*m));
    int err;

    put64(p, off);
    put32(p + 8, region);
    put32(p + 12, count);
    if (write) {
        memcpy(p + 16, data, count);
    }
    err = call(s, write ? C_WRITE : C_READ, p, 16 + (write ? count : 0), m);
    if (err == 0) {
        CHECK_EQ(get64(m->b + 16), off);
        CHECK_EQ(get32(m->b + 28), count);
        if (!write && CHECK_EQ(m->len, 16 + count)) {
            memcpy(data, m->b + 32, count);
        } else if (write) {
            CHECK_EQ(m->len, 16);
        }
    }
    free(m);
    return err;
}

static uint32_t rd32(int s, uint32_t region, uint64_t off)
{
    uint32_t v = 0xdeadbeef;

    CHECK_EQ(region_rw(s, region, off, &v, 4, false), 0);
    return v;
}

static void wr32(int s, uint32_t region, uint64_t off, uint32_t v)
{
    CHECK_EQ(region_rw(s, region, off, &v, 4, true), 0);
}

static void wr64(int s, uint32_t region, uint64_t off, uint64_t v)
{
    CHECK_EQ(region_rw(s, region, off, &v, 8, true), 0);
}

static bool eventfd_fired(int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    uint64_t v;

    if (poll(&pfd, 1, ms) != 1) {
        return false;
    }
    return read(fd, &v, 8) == 8 && v > 0;
}

static int set_irqs(int s, uint32_t flags, uint32_t index, uint32_t start,
                    uint32_t count, const int *fds, unsigned nfds)
{
    uint8_t p[20];
    Msg *m = malloc(sizeof(*m));
    int err;

    put32(p, 20);
    put32(p + 4, flags);
    put32(p + 8, index);
    put32(p + 12, start);
    put32(p + 16, count);
    err = call_fds(s, C_SET_IRQS, p, 20, fds, nfds, m);
    free(m);
    return err;
}

static int dma_map(int s, int fd, uint64_t off, uint64_t iova, uint64_t size)
{
    uint8_t p[32];
    Msg *m = malloc(sizeof(*m));
    int err;

    put32(p, 32);
    put32(p + 4, 3);
    put64(p + 8, off);
    put64(p + 16, iova);
    put64(p + 24, size);
    err = call_fds(s, C_DMA_MAP, p, 32, &fd, fd >= 0 ? 1 : 0, m);
    free(m);
    return err;
}

static int dma_unmap(int s, uint64_t iova, uint64_t size)
{
    uint8_t p[24];
    Msg *m = malloc(sizeof(*m));
    int err;

    put32(p, 24);
    put32(p + 4, 0);
    put64(p + 8, iova);
    put64(p + 16, size);
    err = call(s, C_DMA_UNMAP, p, 24, m);
    if (err == 0) {
        CHECK(m->len == 24 && get64(m->b + 24) == iova);
    }
    free(m);
    return err;
}

static void test_info(int s)
{
    uint8_t p[32] = { 0 };
    Msg *m = malloc(sizeof(*m));

    harness_section("DEVICE_GET_INFO, GET_REGION_INFO, GET_IRQ_INFO");
    put32(p, 16);
    if (CHECK_EQ(call(s, C_GET_INFO, p, 16, m), 0) && CHECK_EQ(m->len, 16)) {
        CHECK_EQ(get32(m->b + 20), 3);      /* RESET | PCI */
        CHECK(get32(m->b + 24) >= 9);
        CHECK_EQ(get32(m->b + 28), 5);
    }
    put32(p, 8);
    CHECK_EQ(call(s, C_GET_INFO, p, 16, m), EINVAL);
    CHECK_EQ(call(s, C_GET_INFO, p, 4, m), EINVAL);

    put32(p, 32);
    put32(p + 8, 7);                        /* config */
    if (CHECK_EQ(call(s, C_REGION_INFO, p, 32, m), 0)) {
        CHECK(get64(m->b + 32) == 256 || get64(m->b + 32) == 4096);
        CHECK_EQ(get32(m->b + 20) & 3, 3);
    }
    put32(p + 8, 0);                        /* BAR0 */
    if (CHECK_EQ(call(s, C_REGION_INFO, p, 32, m), 0)) {
        CHECK_EQ(get64(m->b + 32), EDU_BAR0);
        CHECK_EQ(get32(m->b + 20) & 3, 3);
    }
    put32(p + 8, 1);                        /* unused */
    if (CHECK_EQ(call(s, C_REGION_INFO, p, 32, m), 0)) {
        CHECK_EQ(get64(m->b + 32), 0);
    }
    put32(p + 8, 9);
    CHECK_EQ(call(s, C_REGION_INFO, p, 32, m), EINVAL);
    put32(p + 8, 0xffffffffu);
    CHECK_EQ(call(s, C_REGION_INFO, p, 32, m), EINVAL);

    memset(p, 0, sizeof(p));
    put32(p, 16);
    put32(p + 8, 1);                        /* MSI */
    if (CHECK_EQ(call(s, C_IRQ_INFO, p, 16, m), 0)) {
        CHECK_EQ(get32(m->b + 28), 1);
        CHECK(get32(m->b + 20) & 1);
    }
    put32(p + 8, 0);                        /* INTx: not offered */
    if (CHECK_EQ(call(s, C_IRQ_INFO, p, 16, m), 0)) {
        CHECK_EQ(get32(m->b + 28), 0);
    }
    put32(p + 8, 5);
    CHECK_EQ(call(s, C_IRQ_INFO, p, 16, m), EINVAL);
    free(m);
}

static void test_config(int s)
{
    uint8_t pin = 0xff;

    harness_section("config space: identity, BAR sizing and addresses");
    CHECK_EQ(rd32(s, 7, 0), 0x11e81234);
    CHECK_EQ(rd32(s, 7, 0x10) & 0xf, 0);
    wr32(s, 7, 0x10, 0xffffffffu);
    CHECK_EQ(rd32(s, 7, 0x10), ~(EDU_BAR0 - 1));
    wr32(s, 7, 0x10, 0xfe812345u);
    CHECK_EQ(rd32(s, 7, 0x10), 0xfe800000u);
    CHECK_EQ(rd32(s, 7, 0x14), 0);
    wr32(s, 7, 0x30, 0xffffffffu);
    CHECK_EQ(rd32(s, 7, 0x30), 0);
    CHECK_EQ(region_rw(s, 7, 0x3d, &pin, 1, false), 0);
    CHECK_EQ(pin, 0);
    /* Errors: past the end, empty, misdirected. */
    CHECK_EQ(region_rw(s, 7, 4096, &pin, 1, false), EINVAL);
    CHECK_EQ(region_rw(s, 7, 0, &pin, 0, false), EINVAL);
    CHECK_EQ(region_rw(s, 6, 0, &pin, 1, false), EINVAL);
    CHECK_EQ(region_rw(s, 1, 0, &pin, 1, false), EINVAL);
    CHECK_EQ(region_rw(s, 1000, 0, &pin, 1, false), EINVAL);
}

static void test_bar(int s)
{
    uint32_t v = 0;
    int i;

    harness_section("BAR0 through REGION_READ/WRITE: id, liveness, factorial");
    CHECK_EQ(rd32(s, 0, 0), EDU_ID);
    wr32(s, 0, 4, 0x12345678);
    CHECK_EQ(rd32(s, 0, 4), ~0x12345678u);
    wr32(s, 0, 8, 5);
    for (i = 0; i < 500 && (rd32(s, 0, 0x20) & 1); i++) {
        usleep(1000);
    }
    CHECK_EQ(rd32(s, 0, 8), 120);
    CHECK_EQ(region_rw(s, 0, EDU_BAR0 - 2, &v, 4, false), EINVAL);
    CHECK_EQ(region_rw(s, 0, UINT64_MAX - 1, &v, 4, false), EINVAL);
}

/* A reply to request @id of command @cmd, no error: its payload length. */
static int framed_reply(int s, uint16_t id, uint16_t cmd, Msg *m)
{
    uint32_t size;

    if (!CHECK(recv_full(s, m->b, 16))) {
        return -1;
    }
    size = get32(m->b + 4);
    if (!CHECK(size >= 16 && size <= sizeof(m->b)) ||
        !CHECK(recv_full(s, m->b + 16, size - 16))) {
        return -1;
    }
    CHECK_EQ(get32(m->b) & 0xffff, id);
    CHECK_EQ(get32(m->b) >> 16, cmd);
    CHECK_EQ(get32(m->b + 8) & (0xf | F_ERROR), F_REPLY);
    return (int)(size - 16);
}

/* A REGION_READ of edu's ID register, framed, into @b (32 bytes). */
static uint16_t framed_read(uint8_t *b)
{
    uint16_t id = next_id++;

    put16(b, id);
    put16(b + 2, C_READ);
    put32(b + 4, 32);
    put32(b + 8, 0);
    put32(b + 12, 0);
    put64(b + 16, 0);
    put32(b + 24, 0);
    put32(b + 28, 4);
    return id;
}

/*
 * Messages as a client may frame them on the stream: the server reads
 * ahead, so requests back to back in one write, a request in pieces, and
 * a request with an fd right behind one without must each be handled as
 * sent, the fd going with its own message.
 */
static void test_framing(int s)
{
    uint8_t req[64], p[32] = { 0 };
    uint16_t id[2];
    Msg *m = malloc(sizeof(*m));
    int fd = memfd_create("framing", MFD_CLOEXEC);
    size_t k;

    harness_section("framing: back to back, in pieces, an fd behind");
    id[0] = framed_read(req);
    id[1] = framed_read(req + 32);
    CHECK(send(s, req, 64, MSG_NOSIGNAL) == 64);
    for (k = 0; k < 2; k++) {
        if (CHECK_EQ(framed_reply(s, id[k], C_READ, m), 20)) {
            CHECK_EQ(get32(m->b + 32), EDU_ID);
        }
    }
    /* One request in three pieces, the header split. */
    id[0] = framed_read(req);
    CHECK(send(s, req, 5, MSG_NOSIGNAL) == 5);
    usleep(20000);
    CHECK(send(s, req + 5, 20, MSG_NOSIGNAL) == 20);
    usleep(20000);
    CHECK(send(s, req + 25, 7, MSG_NOSIGNAL) == 7);
    if (CHECK_EQ(framed_reply(s, id[0], C_READ, m), 20)) {
        CHECK_EQ(get32(m->b + 32), EDU_ID);
    }
    /*
     * DEVICE_GET_INFO (no fd: one would fail it) and DMA_MAP with its
     * fd, sent back to back: the server may read both at once.
     */
    if (CHECK(fd >= 0 && ftruncate(fd, 4096) == 0)) {
        put32(p, 16);
        CHECK(send_msg(s, C_GET_INFO, 0, p, 16, NULL, 0, 0));
        id[0] = (uint16_t)(next_id - 1);
        put32(p, 32);
        put32(p + 4, 3);
        put64(p + 8, 0);
        put64(p + 16, 0x300000);
        put64(p + 24, 4096);
        CHECK(send_msg(s, C_DMA_MAP, 0, p, 32, &fd, 1, 0));
        id[1] = (uint16_t)(next_id - 1);
        CHECK_EQ(framed_reply(s, id[0], C_GET_INFO, m), 16);
        CHECK_EQ(framed_reply(s, id[1], C_DMA_MAP, m), 0);
        CHECK_EQ(dma_unmap(s, 0x300000, 4096), 0);
        close(fd);
    }
    free(m);
}

static void test_write_multi(int s)
{
    uint8_t p[8 + 2 * 24] = { 0 };
    Msg *m = malloc(sizeof(*m));

    harness_section("REGION_WRITE_MULTI");
    put64(p, 2);
    put64(p + 8, 4);                    /* liveness */
    put32(p + 16, 0);
    put32(p + 20, 4);
    put32(p + 24, 0x0f0f0f0f);
    put64(p + 32, 4);
    put32(p + 40, 0);
    put32(p + 44, 4);
    put32(p + 48, 0x01020304);
    if (CHECK_EQ(call(s, C_WRITE_MULTI, p, sizeof(p), m), 0)) {
        CHECK_EQ(get64(m->b + 16), 2);
        CHECK_EQ(rd32(s, 0, 4), ~0x01020304u);
    }
    put64(p, 3);
    CHECK_EQ(call(s, C_WRITE_MULTI, p, sizeof(p), m), EINVAL);
    put64(p, 1);
    put32(p + 20, 9);
    CHECK_EQ(call(s, C_WRITE_MULTI, p, 8 + 24, m), EINVAL);
    free(m);
}

static void test_irqs(int s)
{
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int two[2];

    harness_section("SET_IRQS: MSI eventfd, trigger, mask, unmask, disable");
    /* Bad: several data kinds, fd count mismatch, range past the end. */
    CHECK_EQ(set_irqs(s, 0x3 | 0x20, 1, 0, 1, NULL, 0), EINVAL);
    two[0] = efd;
    two[1] = efd;
    CHECK_EQ(set_irqs(s, 0x4 | 0x20, 1, 0, 1, two, 2), EINVAL);
    CHECK_EQ(set_irqs(s, 0x4 | 0x20, 1, 1, 1, &efd, 1), EINVAL);
    CHECK_EQ(set_irqs(s, 0x4 | 0x20, 9, 0, 1, &efd, 1), EINVAL);

    if (!CHECK_EQ(set_irqs(s, 0x4 | 0x20, 1, 0, 1, &efd, 1), 0)) {
        close(efd);
        return;
    }
    /* The device raises (edu's raise register): the eventfd fires. */
    wr32(s, 0, 0x60, 1);
    CHECK(eventfd_fired(efd, 5000));
    wr32(s, 0, 0x64, 1);
    /* The client triggers it itself. */
    CHECK_EQ(set_irqs(s, 0x1 | 0x20, 1, 0, 1, NULL, 0), 0);
    CHECK(eventfd_fired(efd, 5000));
    /* Masked: held pending; unmasked: delivered. */
    CHECK_EQ(set_irqs(s, 0x1 | 0x08, 1, 0, 1, NULL, 0), 0);
    wr32(s, 0, 0x60, 1);
    CHECK(!eventfd_fired(efd, 300));
    CHECK_EQ(set_irqs(s, 0x1 | 0x10, 1, 0, 1, NULL, 0), 0);
    CHECK(eventfd_fired(efd, 5000));
    wr32(s, 0, 0x64, 1);
    /* Disabling another index leaves this one alone. */
    CHECK_EQ(set_irqs(s, 0x4 | 0x20, 2, 0, 0, NULL, 0), 0);
    CHECK_EQ(set_irqs(s, 0x1 | 0x20, 1, 0, 1, NULL, 0), 0);
    CHECK(eventfd_fired(efd, 5000));
    /* Disabled: nothing more. */
    CHECK_EQ(set_irqs(s, 0x1 | 0x20, 1, 0, 0, NULL, 0), 0);
    wr32(s, 0, 0x60, 1);
    CHECK(!eventfd_fired(efd, 300));
    wr32(s, 0, 0x64, 1);
    close(efd);

    harness_section("SET_IRQS: a trigger that could block the server");
    /* Only eventfds: a pipe's write end would block once full. */
    if (CHECK(pipe2(two, O_CLOEXEC) == 0)) {
        CHECK_EQ(set_irqs(s, 0x4 | 0x20, 1, 0, 1, &two[1], 1), EINVAL);
        close(two[0]);
        close(two[1]);
    }
    /* An eventfd held at its maximum, blocking: the server skips it. */
    efd = eventfd(0, EFD_CLOEXEC);
    if (CHECK(efd >= 0)) {
        uint64_t most = UINT64_C(0xfffffffffffffffe);
        int i;

        CHECK(write(efd, &most, sizeof(most)) == sizeof(most));
        CHECK_EQ(set_irqs(s, 0x4 | 0x20, 1, 0, 1, &efd, 1), 0);
        /* The server made its copy non-blocking; the VMM undoes it. */
        fcntl(efd, F_SETFL, fcntl(efd, F_GETFL) & ~O_NONBLOCK);
        for (i = 0; i < 3; i++) {
            CHECK_EQ(set_irqs(s, 0x1 | 0x20, 1, 0, 1, NULL, 0), 0);
        }
        /* Still serving: a register read answers. */
        CHECK_EQ(rd32(s, 0, 0x00), 0x010000ed);
        CHECK_EQ(set_irqs(s, 0x1 | 0x20, 1, 0, 0, NULL, 0), 0);
        close(efd);
    }
}

/* edu copies @len bytes from bus address @src to @dst; waits for it. */
static void edu_copy(int s, uint64_t src, uint64_t dst, uint32_t len,
                     bool to_ram)
{
    int i;

    wr64(s, 0, 0x80, src);
    wr64(s, 0, 0x88, dst);
    wr64(s, 0, 0x90, len);
    wr64(s, 0, 0x98, to_ram ? 3 : 1);
    for (i = 0; i < 500 && (rd32(s, 0, 0x98) & 1); i++) {
        usleep(1000);
    }
}

static void test_dma(int s)
{
    size_t size = 1 << 16;
    int fd = memfd_create("guest-ram", MFD_CLOEXEC);
    uint8_t *ram;
    uint64_t iova = 0x200000;
    int i;

    harness_section("DMA_MAP at the guest's IOVA; the device reaches it there");
    if (!CHECK(fd >= 0 && ftruncate(fd, (off_t)size) == 0)) {
        return;
    }
    ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (!CHECK(ram != MAP_FAILED)) {
        return;
    }
    for (i = 0; i < 4096; i++) {
        ram[i] = (uint8_t)(i * 7 + 3);
    }
    memset(ram + 0x8000, 0, 4096);
    CHECK_EQ(dma_map(s, -1, 0, iova, size), ENOTSUP);
    if (CHECK_EQ(dma_map(s, fd, 0, iova, size), 0)) {
        /* RAM -> edu's buffer -> RAM at another offset. */
        edu_copy(s, iova, EDU_DMA_BUF, 1024, false);
        edu_copy(s, EDU_DMA_BUF, iova + 0x8000, 1024, true);
        CHECK(memcmp(ram, ram + 0x8000, 1024) == 0);
    }
    /* Overlap, outside the DMA mask, misaligned, bad file ranges. */
    CHECK_EQ(dma_map(s, fd, 0, iova + 0x4000, 0x4000), EEXIST);
    CHECK_EQ(dma_map(s, fd, 0, 1ull << 40, 0x4000), ENOSPC);
    CHECK_EQ(dma_map(s, fd, 0, iova + 0x100001, 0x1000), EINVAL);
    CHECK_EQ(dma_map(s, fd, size, 0x400000, 0x1000), EINVAL);
    CHECK_EQ(dma_map(s, fd, 0, UINT64_MAX & ~0xfffull, 0x2000), EINVAL);
    CHECK_EQ(dma_unmap(s, iova, size / 2), ENOENT);
    CHECK_EQ(dma_unmap(s, iova, size), 0);
    CHECK_EQ(dma_unmap(s, iova, size), ENOENT);
    /* Mapped again, left for teardown to release. */
    CHECK_EQ(dma_map(s, fd, 0, iova, size), 0);
    munmap(ram, size);
    close(fd);
}

/*
 * Guest RAM on hugetlbfs (memory-backend-memfd,hugetlb=on), mapped from
 * where the guest's memory map puts it -- 1 MiB into a huge page, as
 * the RAM above the legacy hole starts -- and across into the next: the
 * device reaches it there.  Not tried where no huge page is reserved
 * (vm.nr_hugepages).
 */
static void test_dma_hugetlb(int s)
{
    int fd = memfd_create("guest-ram-huge", MFD_CLOEXEC | MFD_HUGETLB);
    const uint64_t iova = 0x500000;
    struct statfs sf;
    uint64_t hp, off;
    uint8_t *ram = MAP_FAILED;
    int i;

    harness_section("DMA_MAP of hugetlbfs guest RAM from inside a huge "
                    "page");
    if (fd >= 0 && fstatfs(fd, &sf) == 0 && sf.f_type == HUGETLBFS_MAGIC) {
        hp = (uint64_t)sf.f_bsize;
        if (ftruncate(fd, (off_t)(2 * hp)) == 0) {
            ram = mmap(NULL, 2 * hp, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                       0);
        }
    }
    if (ram == MAP_FAILED) {
        printf("# no hugetlbfs, or no huge page reserved: not tried\n");
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    off = hp / 2;
    for (i = 0; i < 1024; i++) {
        ram[off + i] = (uint8_t)(i * 5 + 1);
    }
    if (CHECK_EQ(dma_map(s, fd, off, iova, hp), 0)) {
        /* From the first huge page to edu's buffer, then into the second. */
        edu_copy(s, iova, EDU_DMA_BUF, 1024, false);
        edu_copy(s, EDU_DMA_BUF, iova + hp - 4096, 1024, true);
        CHECK(memcmp(ram + off, ram + off + hp - 4096, 1024) == 0);
        CHECK_EQ(dma_unmap(s, iova, hp), 0);
    }
    munmap(ram, 2 * hp);
    close(fd);
}

static void test_reset(int s)
{
    Msg *m = malloc(sizeof(*m));

    harness_section("DEVICE_RESET");
    wr32(s, 0, 4, 0x1);
    CHECK_EQ(call(s, C_RESET, NULL, 0, m), 0);
    CHECK_EQ(rd32(s, 0, 0), EDU_ID);
    CHECK_EQ(rd32(s, 7, 0x10), 0);       /* the guest's address is gone */
    free(m);
}

static void test_malformed(void)
{
    uint8_t junk[64] = { 0 };
    Msg *m = malloc(sizeof(*m));
    int s;

    harness_section("malformed messages close the connection; next client");
    /* A command before VERSION. */
    s = connect_server();
    if (CHECK(s >= 0)) {
        CHECK(send_msg(s, C_GET_INFO, 0, junk, 16, NULL, 0, 0));
        CHECK(closed_by_server(s));
        close(s);
    }
    /* A size below the header, above the limit, a reply type. */
    s = connect_server();
    if (CHECK(s >= 0)) {
        CHECK_EQ(version(s), 0);
        CHECK(send_msg(s, C_GET_INFO, 0, junk, 16, NULL, 0, 8));
        CHECK(closed_by_server(s));
        close(s);
    }
    s = connect_server();
    if (CHECK(s >= 0)) {
        CHECK_EQ(version(s), 0);
        CHECK(send_msg(s, C_READ, 0, junk, 16, NULL, 0, 0x7fffffff));
        CHECK(closed_by_server(s));
        close(s);
    }
    s = connect_server();
    if (CHECK(s >= 0)) {
        CHECK_EQ(version(s), 0);
        CHECK(send_msg(s, C_GET_INFO, F_REPLY, junk, 16, NULL, 0, 0));
        CHECK(closed_by_server(s));
        close(s);
    }
    /* Fds where none belong: an error reply, the fd not kept. */
    s = connect_server();
    if (CHECK(s >= 0)) {
        int efd = eventfd(0, EFD_CLOEXEC);

        CHECK_EQ(version(s), 0);
        put32(junk, 16);
        CHECK_EQ(call_fds(s, C_GET_INFO, junk, 16, &efd, 1, m), EINVAL);
        /* An unknown command: ENOTSUP, the connection stays. */
        CHECK_EQ(call(s, 99, NULL, 0, m), ENOTSUP);
        /* NO_REPLY: nothing comes back, the next call is answered. */
        CHECK(send_msg(s, C_RESET, F_NO_REPLY, NULL, 0, NULL, 0, 0));
        CHECK_EQ(call(s, C_GET_INFO, junk, 16, m), 0);
        close(efd);
        close(s);
    }
    free(m);
}

/* ivshmem's BAR2: offered with a sparse-mmap area and its fd. */
static void test_mmap(int s)
{
    uint8_t p[32] = { 0 };
    Msg *m = malloc(sizeof(*m));
    volatile uint32_t *bar = MAP_FAILED;
    uint64_t size = 0, off = 0;
    uint32_t flags;

    harness_section("mappable BAR: sparse-mmap capability and fd");
    put32(p, 32);
    put32(p + 8, 0);                        /* registers: trapped */
    if (CHECK_EQ(call(s, C_REGION_INFO, p, 32, m), 0)) {
        CHECK_EQ(get32(m->b + 20) & 0xc, 0);
        CHECK_EQ(reply_fd, -1);
    }
    /* Too small for the capability: told the size, no fd. */
    put32(p + 8, 2);
    if (CHECK_EQ(call(s, C_REGION_INFO, p, 32, m), 0)) {
        CHECK_EQ(m->len, 32);
        CHECK_EQ(get32(m->b + 16), 64);
        CHECK_EQ(get32(m->b + 20), 0x7);    /* R | W | MMAP, no CAPS */
        CHECK_EQ(get32(m->b + 28), 0);
        CHECK_EQ(reply_fd, -1);
    }
    put32(p, 64);
    if (CHECK_EQ(call(s, C_REGION_INFO, p, 32, m), 0) &&
        CHECK_EQ(m->len, 64)) {
        flags = get32(m->b + 20);
        CHECK_EQ(flags, 0xf);
        CHECK_EQ(get32(m->b + 28), 32);     /* cap_offset */
        size = get64(m->b + 32);
        off = get64(m->b + 40);
        CHECK_EQ(get32(m->b + 48), 0x10001); /* SPARSE_MMAP, version 1 */
        CHECK_EQ(get32(m->b + 52), 0);      /* the last capability */
        CHECK_EQ(get32(m->b + 56), 1);      /* one area: all of it */
        CHECK_EQ(get64(m->b + 64), 0);
        CHECK_EQ(get64(m->b + 72), size);
        CHECK(size >= 4096);
        if (CHECK(reply_fd >= 0)) {
            bar = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
                       reply_fd, (off_t)off);
            close(reply_fd);
            reply_fd = -1;
        }
    }
    if (CHECK(bar != MAP_FAILED)) {
        /* Seen by both sides: our mapping and the server's MMIO. */
        bar[0x40] = 0xc0ffee11u;
        CHECK_EQ(rd32(s, 2, 0x100), 0xc0ffee11u);
        wr32(s, 2, 0x204, 0x600dcafeu);
        CHECK_EQ(bar[0x81], 0x600dcafeu);
        munmap((void *)bar, size);
    }
    free(m);
}

/*
 * The reply to request @id within @ms: 1, 0 if the server closed the
 * connection instead, -1 if nothing came.
 */
static int await_reply(int s, uint16_t id, uint16_t cmd, int ms)
{
    struct pollfd pfd = { .fd = s, .events = POLLIN };
    Msg *m;
    uint8_t b;
    ssize_t r;

    if (poll(&pfd, 1, ms) != 1) {
        return -1;
    }
    r = recv(s, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno == ECONNRESET)) {
        return 0;
    }
    m = malloc(sizeof(*m));
    r = framed_reply(s, id, cmd, m);
    free(m);
    return r >= 0 ? 1 : 0;
}

/*
 * Make ivshmem fire all its 256 vectors (its burst register: the device
 * raises them, the server drains them in one batch), or trigger them
 * with SET_IRQS (the server signals them while handling it): the id.
 */
static uint16_t fire_all(int s, bool by_device)
{
    uint8_t p[20];

    if (by_device) {
        put64(p, IVSHMEM_BURST);
        put32(p + 8, 0);
        put32(p + 12, 4);
        put32(p + 16, 1);
        CHECK(send_msg(s, C_WRITE, 0, p, 20, NULL, 0, 0));
    } else {
        put32(p, 20);
        put32(p + 4, 0x1 | 0x20);
        put32(p + 8, 2);
        put32(p + 12, 0);
        put32(p + 16, 256);
        CHECK(send_msg(s, C_SET_IRQS, 0, p, 20, NULL, 0, 0));
    }
    return (uint16_t)(next_id - 1);
}

/*
 * After the burst of request @id: 1 if the server still answers, 0 if
 * it closed the connection, -1 if nothing came (await_reply()).  The
 * device's signals come after the REGION_WRITE's reply: then a config
 * read asks again.
 */
static int await_after(int s, uint16_t id, bool by_device)
{
    uint8_t p[16];
    int got = await_reply(s, id, by_device ? C_WRITE : C_SET_IRQS, 2000);

    if (got == 1 && by_device) {
        put64(p, 0);
        put32(p + 8, 7);
        put32(p + 12, 4);
        got = send_msg(s, C_READ, 0, p, 16, NULL, 0, 0) ?
              await_reply(s, (uint16_t)(next_id - 1), C_READ, 2000) : 0;
    }
    return got;
}

/*
 * One try at the race of race_trigger(): a burst of signals, the server
 * stopped @delay_us into it, the counter of @efd (blocking) taken from
 * where the server left it to the maximum, the server let go.  Returns
 * 1 if the server then still answers, 0 if it closed the connection,
 * -1 if it is stuck, -2 if the try failed (a check says why).
 */
static int race_once(int s, int efd, bool by_device, unsigned delay_us)
{
    struct timespec delay = { 0, 1000L * delay_us };
    struct pollfd pfd = { .fd = efd, .events = POLLIN };
    uint64_t v, most = UINT64_C(0xfffffffffffffffe);
    uint16_t id = fire_all(s, by_device);
    int fl = fcntl(efd, F_GETFL), st, got;

    if (!CHECK_MSG(poll(&pfd, 1, 5000) == 1, "no interrupt")) {
        return -2;
    }
    nanosleep(&delay, NULL);
    kill(server, SIGSTOP);
    if (!CHECK(waitpid(server, &st, WUNTRACED) == server && WIFSTOPPED(st))) {
        kill(server, SIGCONT);      /* never leave it stopped */
        return -2;
    }
    /* Non-blocking for our own read and write only: nothing races us. */
    fcntl(efd, F_SETFL, fl | O_NONBLOCK);
    CHECK(read(efd, &v, sizeof(v)) == sizeof(v));
    CHECK(write(efd, &most, sizeof(most)) == sizeof(most));
    fcntl(efd, F_SETFL, fl);
    kill(server, SIGCONT);

    got = await_after(s, id, by_device);
    if (got == 1) {
        CHECK(read(efd, &v, sizeof(v)) == sizeof(v));   /* back to 0 */
    }
    return got;
}

/* The kernel's id of eventfd @fd of process @pid (its fdinfo), or -1. */
static long eventfd_id(pid_t pid, int fd)
{
    char path[64], line[128];
    long id = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "eventfd-id: %ld", &id) == 1) {
            break;
        }
    }
    fclose(f);
    return id;
}

/*
 * waitpid() for the traced server's next stop, for @ms at most: a server
 * that blocks for good instead (no write to trace) is interrupted, so a
 * wait here never outlasts the test.  Whether it stopped in time.
 */
static bool traced_stop(int *st, unsigned ms)
{
    struct timespec tick = { 0, 1000000L };
    unsigned waited;
    pid_t r;

    for (waited = 0; waited < ms; waited++) {
        r = waitpid(server, st, __WALL | WNOHANG);
        if (r == server) {
            return WIFSTOPPED(*st);
        }
        if (r < 0) {
            return false;
        }
        nanosleep(&tick, NULL);
    }
    ptrace(PTRACE_INTERRUPT, server, 0, 0);
    waitpid(server, st, __WALL);
    return false;
}

/*
 * The server, seized with ptrace and stopped, is run one system call at
 * a time from request fire_all(@s, @by_device) (its id in *@id) until it
 * enters a write() to @efd -- its poll() has just said the write cannot
 * block, and its guard is armed -- and is left there, stopped and
 * traced: 0.  -3 if this machine allows no ptrace; -2 if it failed (a
 * check says why; the server is let go).
 */
static int trace_to_trigger_write(int s, int efd, bool by_device,
                                  uint16_t *id)
{
    struct __ptrace_syscall_info si;
    long want = eventfd_id(getpid(), efd);
    int st, sig = 0, steps = 0;
    bool hit = false;

    if (want < 0 || ptrace(PTRACE_SEIZE, server, 0,
                           PTRACE_O_TRACESYSGOOD) != 0) {
        return -3;
    }
    if (!CHECK(ptrace(PTRACE_INTERRUPT, server, 0, 0) == 0 &&
               waitpid(server, &st, __WALL) == server && WIFSTOPPED(st))) {
        ptrace(PTRACE_DETACH, server, 0, 0);
        return -2;
    }
    *id = fire_all(s, by_device);
    while (!hit && steps++ < 100000 &&
           ptrace(PTRACE_SYSCALL, server, 0, sig) == 0 &&
           traced_stop(&st, 5000)) {
        sig = 0;
        if (WSTOPSIG(st) != (SIGTRAP | 0x80)) {
            /* A signal for the server: pass it on; a group stop: none. */
            sig = (st >> 16) == 0 ? WSTOPSIG(st) : 0;
            continue;
        }
        hit = ptrace(PTRACE_GET_SYSCALL_INFO, server, sizeof(si), &si) > 0 &&
              si.op == PTRACE_SYSCALL_INFO_ENTRY && si.entry.nr == SYS_write &&
              si.entry.args[2] == sizeof(uint64_t) &&
              eventfd_id(server, (int)si.entry.args[0]) == want;
    }
    if (!CHECK_MSG(hit, "the server never wrote to the trigger")) {
        ptrace(PTRACE_DETACH, server, 0, sig);
        return -2;
    }
    return 0;
}

/*
 * The race of race_trigger() won for certain: the server held on its
 * way into its write() to @efd (trace_to_trigger_write()), the counter
 * goes to its maximum and the server is let go.  As race_once(), or -3
 * if this machine allows no ptrace (then race_once()'s timing has to
 * do).
 */
static int race_traced(int s, int efd, bool by_device)
{
    uint64_t v, most = UINT64_C(0xfffffffffffffffe);
    int fl, got;
    uint16_t id;

    got = trace_to_trigger_write(s, efd, by_device, &id);
    if (got != 0) {
        return got;
    }
    /* Stopped on its way into the write: fill the counter under it. */
    fl = fcntl(efd, F_GETFL);
    fcntl(efd, F_SETFL, fl | O_NONBLOCK);
    if (read(efd, &v, sizeof(v)) < 0) {
        v = 0;                  /* it was 0 already */
    }
    CHECK(write(efd, &most, sizeof(most)) == sizeof(most));
    fcntl(efd, F_SETFL, fl);
    CHECK(ptrace(PTRACE_DETACH, server, 0, 0) == 0);
    return await_after(s, id, by_device);
}

/* One non-blocking eventfd as the trigger of all 256 MSI-X vectors. */
static int all_vectors_to(int s)
{
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), fds[8], i;

    for (i = 0; i < 8; i++) {
        fds[i] = efd;
    }
    for (i = 0; i < 32; i++) {
        CHECK_EQ(set_irqs(s, 0x4 | 0x20, 2, 8 * i, 8, fds, 8), 0);
    }
    return efd;
}

/*
 * A VMM that races the server for its trigger eventfd's counter: the
 * server writes to it only when poll() says a write cannot block, and
 * the VMM, sharing the open file description, clears the O_NONBLOCK
 * the server set and fills the counter between that poll() and the
 * write(), which then blocks.  The window is a few hundred nanoseconds
 * between two system calls of the server; a VMM on a busy host wins it
 * whenever the server is preempted there.  Here the test plays the
 * scheduler: with ptrace it stops the server exactly there
 * (race_traced()); where ptrace is not allowed, it stops the server a
 * varying few microseconds into a burst of 256 signals to the one
 * eventfd and moves the counter while the server is stopped, so the
 * race is won in a few tries, not one in thousands (race_once(), which
 * a loaded machine can make miss).  The server must then drop the client
 * within 2 s (not wait for ever on the write), by itself: no signal of
 * ours frees it.
 */
static void race_trigger(bool by_device)
{
    int s = connect_server(), efd, i, got = 1;

    if (!CHECK(s >= 0) || !CHECK_EQ(version(s), 0)) {
        goto out;
    }
    efd = all_vectors_to(s);
    fcntl(efd, F_SETFL, fcntl(efd, F_GETFL) & ~O_NONBLOCK);
    got = race_traced(s, efd, by_device);
    if (got == -3) {
        printf("no ptrace here: the race is run by timing\n");
        got = 1;
        for (i = 0; i < 200 && got == 1; i++) {
            got = race_once(s, efd, by_device, (unsigned)(i * 13) % 53);
        }
        printf("%d tries: %s\n", i, got == 0 ? "client dropped" :
               got == -1 ? "server stuck" : "race not won");
        CHECK_MSG(got != 1, "the race was not won in %d tries", i);
    } else {
        printf("traced: %s\n", got == 0 ? "client dropped" :
               got == -1 ? "server stuck" : "server answered");
        CHECK_MSG(got != 1, "the server answered with its write blocked");
    }
    if (!CHECK_MSG(got != -1, "the server is stuck on the trigger write")) {
        uint64_t v;

        /* Free it for the rest of the suite: read the counter. */
        fcntl(efd, F_SETFL, fcntl(efd, F_GETFL) | O_NONBLOCK);
        CHECK(read(efd, &v, sizeof(v)) == sizeof(v));
    }
    close(efd);
out:
    if (s >= 0) {
        close(s);
    }
}

/* Whether a thread of the server has its guard's signal pending. */
static bool guard_signal_pending(void)
{
    char path[64], line[128];
    unsigned long long mask;
    bool pending = false;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)server);
    f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if ((sscanf(line, "SigPnd: %llx", &mask) == 1 ||
             sscanf(line, "ShdPnd: %llx", &mask) == 1) &&
            (mask & (1ull << (SIGRTMIN - 1))) != 0) {
            pending = true;
        }
    }
    fclose(f);
    return pending;
}

/*
 * The other side of the guard: a VMM that reads its eventfds is never
 * dropped, however long a batch of signals takes.  The server, traced,
 * is held on its way into the batch's first write() for 250 ms, so its
 * guard (100 ms, periodic) expires with the batch under way -- the
 * signal is seen pending -- and then let go: the write, which cannot
 * block, completes, the client is still served, and all 256 vectors'
 * signals arrive.
 */
static void test_guard_expiry(void)
{
    const struct timespec hold = { 0, 250 * 1000000L };
    struct timespec tick = { 0, 1000000L };
    int s = connect_server(), efd = -1, got, waited;
    uint64_t v, total = 0;
    uint16_t id;

    harness_section("a VMM that reads its eventfds, held across a guard "
                    "expiry mid-batch: still served");
    if (!CHECK(s >= 0) || !CHECK_EQ(version(s), 0)) {
        goto out;
    }
    efd = all_vectors_to(s);
    got = trace_to_trigger_write(s, efd, true, &id);
    if (got == -3) {
        printf("# no ptrace here: not tried\n");
        goto out;
    }
    if (got != 0) {
        goto out;
    }
    nanosleep(&hold, NULL);
    CHECK_MSG(guard_signal_pending(), "the guard did not expire while the "
              "server was held in its batch");
    CHECK(ptrace(PTRACE_DETACH, server, 0, 0) == 0);
    CHECK_MSG(await_after(s, id, true) == 1, "the client was dropped");
    for (waited = 0; total < 256 && waited < 5000; waited++) {
        if (read(efd, &v, sizeof(v)) == sizeof(v)) {
            total += v;
        } else {
            nanosleep(&tick, NULL);
        }
    }
    CHECK_EQ(total, 256);
out:
    if (efd >= 0) {
        close(efd);
    }
    if (s >= 0) {
        close(s);
    }
}

static void test_racing_trigger(void)
{
    int s, efd;

    harness_section("a VMM racing its trigger's counter: the device fires");
    race_trigger(true);
    harness_section("a VMM racing its trigger's counter: SET_IRQS fires");
    race_trigger(false);

    harness_section("the next client gets its interrupts");
    s = connect_server();
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (CHECK(s >= 0) && CHECK_EQ(version(s), 0) &&
        CHECK_EQ(set_irqs(s, 0x4 | 0x20, 2, 5, 1, &efd, 1), 0)) {
        wr32(s, 0, IVSHMEM_DOORBELL, 5);
        CHECK(eventfd_fired(efd, 5000));
        CHECK_EQ(set_irqs(s, 0x1 | 0x20, 2, 5, 1, NULL, 0), 0);
        CHECK(eventfd_fired(efd, 5000));
    }
    close(efd);
    if (s >= 0) {
        close(s);
    }
}

/*
 * A client killed with DMA mapped and an interrupt set up: the next one
 * maps the same IOVA (the bus pages were released) and gets interrupts.
 */
static void test_killed_client(void)
{
    int ready[2], s, efd;
    pid_t child;
    char c = 0;

    harness_section("a client killed mid-session leaves the device clean");
    if (!CHECK(pipe(ready) == 0)) {
        return;
    }
    child = fork();
    if (child == 0) {
        int fd = memfd_create("guest-ram", MFD_CLOEXEC);

        efd = eventfd(0, EFD_CLOEXEC);
        s = connect_server();
        if (s < 0 || fd < 0 || ftruncate(fd, 1 << 16) != 0 ||
            version(s) != 0 || dma_map(s, fd, 0, 0x200000, 1 << 16) != 0 ||
            set_irqs(s, 0x4 | 0x20, 1, 0, 1, &efd, 1) != 0) {
            _exit(1);
        }
        wr32(s, 7, 0x10, 0xfebf0000u);      /* a BAR address, virtual */
        if (write(ready[1], "k", 1) != 1) {
            _exit(1);
        }
        pause();
        _exit(0);
    }
    close(ready[1]);
    CHECK(read(ready[0], &c, 1) == 1 && c == 'k');
    close(ready[0]);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);

    s = connect_server();
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (CHECK(s >= 0) && CHECK_EQ(version(s), 0)) {
        int fd = memfd_create("guest-ram", MFD_CLOEXEC);

        CHECK_EQ(rd32(s, 7, 0x10), 0);
        CHECK(fd >= 0 && ftruncate(fd, 1 << 16) == 0);
        CHECK_EQ(dma_map(s, fd, 0, 0x200000, 1 << 16), 0);
        CHECK_EQ(set_irqs(s, 0x4 | 0x20, 1, 0, 1, &efd, 1), 0);
        wr32(s, 0, 0x60, 1);
        CHECK(eventfd_fired(efd, 5000));
        wr32(s, 0, 0x64, 1);
        CHECK_EQ(dma_unmap(s, 0x200000, 1 << 16), 0);
        close(fd);
    }
    close(efd);
    if (s >= 0) {
        close(s);
    }
}

/* Start dext-vfio-user; its stderr to @log when not NULL. */
static void start_server(const char *bin, const char *dir,
                         const char *target, const char *bdf,
                         const char *log)
{
    snprintf(sock_path, sizeof(sock_path), "%s/vfu.sock", dir);
    server = fork();
    if (server == 0) {
        if (log != NULL) {
            int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                          0600);

            if (fd < 0 || dup2(fd, 2) < 0) {
                _exit(127);
            }
        }
        /* Short bounds, for test_stalled_reader(), test_handshake(). */
        execl(bin, bin, "--socket", sock_path, "--target", target,
              "--send-timeout", "300", "--handshake-timeout", "1000", bdf,
              (char *)NULL);
        _exit(127);
    }
}

/*
 * A client that sends requests and never reads the replies: once the
 * socket is full the server's reply cannot go, and after the send
 * timeout the client is dropped and the next one served -- the server
 * is not wedged by a VMM that stopped reading.
 */
static void test_stalled_reader(void)
{
    uint8_t p[16], b[4096];
    int s = connect_server(), t, i, flags;
    bool closed = false;
    ssize_t r;

    harness_section("a client that stops reading replies is dropped");
    if (!CHECK(s >= 0) || !CHECK_EQ(version(s), 0)) {
        if (s >= 0) {
            close(s);
        }
        return;
    }
    /* 1 MiB reads of BAR0, far more than the socket holds. */
    put64(p, 0);
    put32(p + 8, 0);
    put32(p + 12, 1u << 20);
    for (i = 0; i < 8; i++) {
        CHECK(send_msg(s, C_READ, 0, p, sizeof(p), NULL, 0, 0));
    }
    usleep(1500 * 1000);
    t = connect_server();
    if (CHECK(t >= 0)) {
        CHECK_EQ(version(t), 0);
        CHECK_EQ(rd32(t, 0, 0), 0x010000ed);
        close(t);
    }
    /* The stalled connection was closed: draining it ends. */
    flags = fcntl(s, F_GETFL);
    fcntl(s, F_SETFL, flags | O_NONBLOCK);
    for (i = 0; i < 100000 && !closed; i++) {
        r = recv(s, b, sizeof(b), 0);
        closed = r == 0 || (r < 0 && errno == ECONNRESET);
        if (r < 0 && errno == EAGAIN) {
            break;
        }
    }
    CHECK_MSG(closed, "the stalled client's connection is still open");
    close(s);
}

/* Lines of @path that contain @what; -1 if it cannot be read. */
static int count_lines(const char *path, const char *what, char *last,
                       size_t last_size)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    int n = 0;

    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, what) != NULL) {
            n++;
            snprintf(last, last_size, "%s", line);
        }
    }
    fclose(f);
    return n;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * A VMM that repeats a refused request (DMA_MAP without an fd, which the
 * server explains in a long line) gets every one refused, but the log
 * gets a burst of lines and then one a second: the disk the log goes to
 * is not the client's to fill.  The next line let through says how many
 * were dropped.  (Burst: DEXT_RATELIMIT_BURST, 10, shared with "client
 * connected".)
 */
static void test_log_budget(const char *log)
{
    const char *what = "without an fd";
    char last[1024] = "";
    int s = connect_server(), i, n, refused = 0, served = 0;
    double t0, secs;

    harness_section("a client repeating a refused request cannot flood "
                    "the log");
    if (!CHECK(s >= 0) || !CHECK_EQ(version(s), 0)) {
        if (s >= 0) {
            close(s);
        }
        return;
    }
    t0 = now_s();
    for (i = 0; i < 2000; i++) {
        refused += dma_map(s, -1, 0, 0x200000, 0x1000) == ENOTSUP;
    }
    secs = now_s() - t0;
    CHECK_EQ(refused, 2000);
    n = count_lines(log, what, last, sizeof(last));
    printf("# %d of 2000 refusals logged in %.2f s\n", n, secs);
    CHECK_MSG(n >= 1, "the first refusal is logged");
    CHECK_MSG(n <= 10 + (int)secs + 1, "%d lines in %.2f s", n, secs);
    /* A second later one more goes out, with the count dropped. */
    usleep(1100 * 1000);
    CHECK_EQ(dma_map(s, -1, 0, 0x200000, 0x1000), ENOTSUP);
    CHECK_EQ(count_lines(log, what, last, sizeof(last)), n + 1);
    CHECK_MSG(strstr(last, "lines dropped before this one") != NULL,
              "the line after the drops counts them: %s", last);
    /* Served all along. */
    CHECK_EQ(rd32(s, 0, 0), EDU_ID);
    close(s);

    /* Nor can one that reconnects in a loop (the budget is the one the
     * lines above left, none at all past the burst). */
    t0 = now_s();
    for (i = 0; i < 300; i++) {
        s = connect_server();
        served += s >= 0 && version(s) == 0;
        if (s >= 0) {
            close(s);
        }
    }
    secs = now_s() - t0;
    CHECK_EQ(served, 300);
    n = count_lines(log, "client connected", last, sizeof(last));
    printf("# %d of 301 connections logged in %.2f s\n", n, secs);
    CHECK_MSG(n >= 1 && n <= 10 + (int)secs + 1, "%d lines in %.2f s", n,
              secs);
}

/*
 * Send one zero byte every 600 ms, 15 in all (a header's 16 would be a
 * malformed message, which closes at once): a VERSION that never ends.
 * In a child, so that the test can meanwhile queue the next client.
 */
static pid_t drip(int s)
{
    static const uint8_t zero;
    pid_t pid = fork();
    int i;

    if (pid == 0) {
        for (i = 0; i < 15; i++) {
            if (send(s, &zero, 1, MSG_NOSIGNAL) != 1) {
                break;
            }
            usleep(600 * 1000);
        }
        _exit(0);
    }
    return pid;
}

/*
 * One client at a time: a connection that never sends VERSION, sends
 * half its header, or drips it a byte at a time (each wait shorter than
 * the bound, the whole far longer) is dropped after --handshake-timeout
 * (1 s here) and the client queued behind it is served.  After VERSION
 * the bound is gone: a client idle for longer than it is still served.
 */
static void test_handshake(void)
{
    static const uint8_t half[8];
    int pass, silent, t;
    pid_t dripper = -1;
    double t0, waited;

    harness_section("a client that never says VERSION is dropped");
    for (pass = 0; pass < 3; pass++) {
        silent = connect_server();
        if (!CHECK(silent >= 0)) {
            return;
        }
        if (pass == 1) {
            CHECK(send(silent, half, sizeof(half), MSG_NOSIGNAL) == 8);
        }
        if (pass == 2) {
            dripper = drip(silent);
            CHECK(dripper > 0);
        }
        t0 = now_s();
        t = connect_server();
        if (CHECK(t >= 0)) {
            CHECK_EQ(version(t), 0);
            waited = now_s() - t0;
            CHECK_MSG(waited >= 0.8, "served after %.2f s: the silent "
                      "client was not waited for", waited);
        }
        CHECK_MSG(closed_by_server(silent), "a client %s is still "
                  "connected", pass == 0 ? "silent" :
                  pass == 1 ? "with half a header" : "dripping");
        close(silent);
        if (dripper > 0) {
            kill(dripper, SIGKILL);
            waitpid(dripper, NULL, 0);
            dripper = -1;
        }
        if (t >= 0 && pass == 0) {
            usleep(1500 * 1000);
            CHECK_EQ(rd32(t, 0, 0), EDU_ID);
        }
        if (t >= 0) {
            close(t);
        }
    }
}

static void stop_server(void)
{
    int status = -1, i;

    if (server <= 0) {
        return;
    }
    kill(server, SIGTERM);
    for (i = 0; i < 500; i++) {
        if (waitpid(server, &status, WNOHANG) == server) {
            break;
        }
        usleep(10000);
    }
    CHECK_MSG(i < 500 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "dext-vfio-user exits 0 on SIGTERM");
    CHECK(access(sock_path, F_OK) != 0);
    server = -1;
}

int main(void)
{
    const char *bin = getenv("DEXT_VFIO_USER");
    char dir[] = "/tmp/vfu-test-XXXXXX", log[64];
    int s;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (bin == NULL) {
        printf("SKIP: $DEXT_VFIO_USER not set\n");
        return 77;
    }
    if (mkdtemp(dir) == NULL) {
        return 1;
    }
    start_server(bin, dir, "inproc:edu", "00:03.0", NULL);
    s = connect_server();
    if (CHECK(s >= 0)) {
        harness_section("VERSION");
        CHECK_EQ(version(s), 0);
        test_info(s);
        test_config(s);
        test_bar(s);
        test_framing(s);
        test_write_multi(s);
        test_irqs(s);
        test_dma(s);
        test_dma_hugetlb(s);
        test_reset(s);
        close(s);
    }
    /* The next client finds a clean device: the mapping left is gone. */
    s = connect_server();
    if (CHECK(s >= 0)) {
        harness_section("teardown: the next client starts clean");
        CHECK_EQ(version(s), 0);
        CHECK_EQ(rd32(s, 7, 0x10), 0);
        test_dma(s);
        close(s);
    }
    test_killed_client();
    test_malformed();
    test_stalled_reader();
    test_handshake();
    stop_server();

    snprintf(log, sizeof(log), "%s/server.log", dir);
    start_server(bin, dir, "inproc:edu", "00:03.0", log);
    test_log_budget(log);
    stop_server();
    unlink(log);

    start_server(bin, dir, "inproc:ivshmem", "00:04.0", NULL);
    test_racing_trigger();
    test_guard_expiry();
    s = connect_server();
    if (CHECK(s >= 0)) {
        CHECK_EQ(version(s), 0);
        test_mmap(s);
    }
    /* SIGTERM ends the server with a client still connected. */
    harness_section("SIGTERM while a client is connected");
    stop_server();
    if (s >= 0) {
        close(s);
    }
    rmdir(dir);
    return harness_finish();
}
