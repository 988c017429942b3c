/*
 * SPDX-License-Identifier: MIT
 *
 * dext-vfio-user --socket PATH [--target TARGET] [--once] BDF
 *
 * Serves the device at BDF of a libdext target (default: the library's
 * default target) to vfio-user clients on the UNIX socket PATH, one
 * client at a time: each gets a connection, a claim, DMA regions and
 * interrupts of its own, all given back when it goes; the server then
 * waits for the next.  SIGINT/SIGTERM end it (the socket is removed).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "vfu-socket.h"

/* How long a reply may wait for a client that does not read. */
#define VFU_SEND_TIMEOUT_MS 10000
/* How long a new client may take to send VERSION. */
#define VFU_HANDSHAKE_TIMEOUT_MS 5000

static volatile sig_atomic_t stop;
/* The listening socket, or -1. */
static volatile sig_atomic_t listen_fd = -1;
/* The client being served, or -1. */
static volatile sig_atomic_t client_fd = -1;

/*
 * SIGINT/SIGTERM: stop, and end the session being served at once.  A
 * flag alone would be seen only by a wait the signal interrupts, and the
 * signal may come between two waits (or go to a library thread): shut
 * for reading, the client's socket reads as its end of file wherever the
 * serving loop is, and the loop ends as when a client leaves.  The same
 * for the listening socket, between the loop's look at @stop and
 * accept(): shut down, it fails the accept at once.
 */
static void on_signal(int sig)
{
    int saved = errno;
    int fd = client_fd;
    int lfd = listen_fd;

    (void)sig;
    stop = 1;
    if (fd >= 0) {
        shutdown(fd, SHUT_RD);
    }
    if (lfd >= 0) {
        shutdown(lfd, SHUT_RDWR);
    }
    errno = saved;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: dext-vfio-user --socket PATH [--target TARGET] "
               "[--once] [--send-timeout MS] [--handshake-timeout MS] "
               "BB:DD.F\n"
               "  serves the device at BB:DD.F of a libdext target to "
               "vfio-user clients\n"
               "  (QEMU: -device '{\"driver\":\"vfio-user-pci\",\"socket\":"
               "{\"type\":\"unix\",\"path\":\"PATH\"}}')\n"
               "  --once  serve one client, then exit\n"
               "  --send-timeout MS  drop a client that reads no reply for "
               "MS ms\n"
               "          (default %d; 0: never)\n"
               "  --handshake-timeout MS  drop a client that has not sent "
               "VERSION\n"
               "          within MS ms (default %d; 0: never)\n",
            VFU_SEND_TIMEOUT_MS, VFU_HANDSHAKE_TIMEOUT_MS);
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        vfu_log("socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fd, 1) != 0) {
        vfu_log("%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "target", required_argument, NULL, 't' },
        { "once", no_argument, NULL, 'o' },
        { "send-timeout", required_argument, NULL, 'T' },
        { "handshake-timeout", required_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct sigaction sa = { .sa_handler = on_signal };
    const char *path = NULL;
    VfuSession s = { 0 };
    unsigned b, d, f;
    bool once = false;
    long send_ms = VFU_SEND_TIMEOUT_MS, hs_ms = VFU_HANDSHAKE_TIMEOUT_MS;
    char *end;
    long ms;
    int opt, lfd, status = 0;
    char tail;

    while ((opt = getopt_long(argc, argv, "s:t:oT:H:h", opts, NULL)) != -1) {
        switch (opt) {
        case 's': path = optarg; break;
        case 't': s.target = optarg; break;
        case 'o': once = true; break;
        case 'T':
        case 'H':
            ms = strtol(optarg, &end, 10);
            if (*end != '\0' || end == optarg || ms < 0 ||
                ms > 3600 * 1000) {
                usage(stderr);
                return 2;
            }
            *(opt == 'T' ? &send_ms : &hs_ms) = ms;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (path == NULL || optind != argc - 1 ||
        sscanf(argv[optind], "%x:%x.%x%c", &b, &d, &f, &tail) != 3 ||
        b > 0xff || d > 0x1f || f > 7) {
        usage(stderr);
        return 2;
    }
    s.bus = (uint8_t)b;
    s.dev = (uint8_t)d;
    s.fn = (uint8_t)f;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    lfd = listen_on(path);
    if (lfd < 0) {
        return 1;
    }
    vfu_log("serving %02x:%02x.%x on %s", s.bus, s.dev, s.fn, path);
    listen_fd = lfd;
    while (!stop) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

        if (c < 0) {
            if (stop) {
                break;      /* the signal shut the socket down */
            }
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            vfu_log("accept: %s", strerror(errno));
            status = 1;
            break;
        }
        if (vfu_session_open(&s) != 0) {
            /*
             * The device is busy (claimed by another user client) or its
             * dext is away: this client is turned away, the next may be
             * served.
             */
            close(c);
            if (once) {
                status = 1;
                break;
            }
            continue;
        }
        /*
         * A client that stops reading its replies must not wedge the
         * server: a reply that cannot be sent within the bound drops it
         * (and with it everything it held).
         */
        if (send_ms > 0) {
            struct timeval tv = { .tv_sec = send_ms / 1000,
                                  .tv_usec = (send_ms % 1000) * 1000 };

            setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        vfu_log_client("client connected");
        client_fd = c;
        if (stop) {
            shutdown(c, SHUT_RD);   /* the signal came just before */
        }
        /*
         * One client at a time: a connection that never says VERSION
         * (or drips it) would hold the device from every VMM after it.
         */
        vfu_serve_client(&s, c, (unsigned)hs_ms);
        client_fd = -1;
        vfu_session_close(&s);
        close(c);
        vfu_log_client("client gone; everything released");
        if (once) {
            break;
        }
    }
    listen_fd = -1;
    close(lfd);
    unlink(path);
    return status;
}
