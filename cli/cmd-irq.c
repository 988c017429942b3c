/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl irq-watch: set a device's interrupts up and print each vector
 * as it fires.
 *
 * Waiting uses the pollable notification fd (no thread); SIGINT and
 * SIGTERM arrive through a signalfd in the same poll(), so Ctrl-C ends
 * the watch cleanly with a summary and exit status 0.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "dextctl.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct Watch {
    io_connect_t c;
    AppleDextInterruptNotify *notify;
    int sig_fd;
    uint64_t count;             /* stop after this many; 0 = never */
    double timeout;             /* seconds; 0 = never */
    uint64_t seen;
    double start;
    JsonWriter line;            /* --json: one object per line */
} Watch;

static void print_vector(Ctl *ctl, Watch *w, unsigned v, double t)
{
    if (ctl->json) {
        json_begin_object(&w->line);
        json_kv_string(&w->line, "event", "interrupt");
        json_kv_uint(&w->line, "vector", v);
        json_key(&w->line, "time");
        json_double(&w->line, t, 6);
        json_end_object(&w->line);
    } else {
        printf("[%12.6f] vector %u\n", t, v);
    }
    /* Someone is watching as it happens, maybe through a pipe. */
    fflush(stdout);
}

/* Drain the pending bits and print one line per vector, lowest first. */
static int drain(Ctl *ctl, Watch *w)
{
    uint64_t pending[4];
    kern_return_t kr;
    double t = now_s() - w->start;

    kr = apple_dext_drain_pending_irqs(w->c, pending);
    if (kr != kIOReturnSuccess) {
        return ctl_fail(ctl, kr, CTL_WHAT_IRQ, "reading pending interrupts");
    }
    for (unsigned word = 0; word < 4; word++) {
        for (unsigned bit = 0; bit < 64; bit++) {
            if (!(pending[word] & (1ull << bit))) {
                continue;
            }
            print_vector(ctl, w, word * 64 + bit, t);
            w->seen++;
            if (w->count != 0 && w->seen >= w->count) {
                return CTL_EXIT_OK;
            }
        }
    }
    return CTL_CONTINUE;
}

/*
 * The watch ran its time: "N interrupt(s)" is only true if the dext was
 * there all along.  The fd reports a dead dext; one that is stopped is
 * told by a call that times out (the library bounds every call).
 */
static int end_of_time(Ctl *ctl, Watch *w)
{
    uint64_t pending[4];
    kern_return_t kr = apple_dext_read_pending_irqs(w->c, pending);

    if (kr != kIOReturnSuccess) {
        return ctl_fail(ctl, kr, CTL_WHAT_IRQ, "waiting for interrupts");
    }
    return CTL_EXIT_OK;
}

static int watch_loop(Ctl *ctl, Watch *w)
{
    struct pollfd pfd[2];
    int rc;

    pfd[0] = (struct pollfd){ .fd = apple_dext_interrupt_notify_get_fd(
                                  w->notify), .events = POLLIN };
    pfd[1] = (struct pollfd){ .fd = w->sig_fd, .events = POLLIN };
    for (;;) {
        int wait_ms = -1;
        kern_return_t kr;
        int n;

        if (w->timeout > 0) {
            double left = w->timeout - (now_s() - w->start);

            if (left <= 0) {
                return end_of_time(ctl, w);
            }
            /* Rounded up, so the last poll does not wake early. */
            wait_ms = (int)(left * 1000) + 1;
        }
        n = poll(pfd, 2, wait_ms);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fprintf(stderr, "dextctl: poll: %s\n", strerror(errno));
            return CTL_EXIT_FAIL;
        }
        if (pfd[1].revents & POLLIN) {
            struct signalfd_siginfo si;

            /* Consumed, or it would strike once the mask is restored. */
            if (read(w->sig_fd, &si, sizeof(si)) < 0) {
                /* Nothing more to do: we are leaving either way. */
            }
            return CTL_EXIT_OK;         /* Ctrl-C: the normal way out */
        }
        if (pfd[0].revents & (POLLERR | POLLHUP)) {
            return ctl_fail(ctl, kIOReturnNotResponding, CTL_WHAT_IRQ,
                            "waiting for interrupts");
        }
        if (!(pfd[0].revents & POLLIN)) {
            continue;
        }
        /* Drain, then rearm: one that fires in between completes at once. */
        rc = drain(ctl, w);
        if (rc != CTL_CONTINUE) {
            return rc;
        }
        kr = apple_dext_interrupt_notify_rearm(w->notify);
        if (kr != kIOReturnSuccess) {
            return ctl_fail(ctl, kr, CTL_WHAT_IRQ, "waiting for interrupts");
        }
    }
}

int cmd_irq_watch(Ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "count", required_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        CTL_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    Watch w = { .sig_fd = -1 };
    const char *bdf;
    uint32_t nvec = 0;
    sigset_t mask, old;
    kern_return_t kr;
    int opt, rc;

    ctl_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":c:t:" CTL_COMMON_SHORTOPTS, opts,
                              NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (!ctl_parse_uint(optarg, &w.count) || w.count == 0) {
                return ctl_usage(ctl, "'%s' is not a count", optarg);
            }
            break;
        case 't':
            if (!ctl_parse_seconds(optarg, &w.timeout) || w.timeout == 0) {
                return ctl_usage(ctl, "'%s' is not a number of seconds",
                                 optarg);
            }
            break;
        default:
            rc = ctl_option(ctl, opt, optarg, argv);
            if (rc != CTL_CONTINUE) {
                return rc;
            }
            break;
        }
    }
    rc = ctl_only_device(ctl, argc, argv);
    if (rc != CTL_CONTINUE) {
        return rc;
    }
    bdf = ctl_bdf_str(&ctl->bdf);
    json_init(&w.line, stdout, false);

    /* Blocked before anything else, so a Ctrl-C is never lost. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, &old);
    w.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (w.sig_fd < 0) {
        fprintf(stderr, "dextctl: signalfd: %s\n", strerror(errno));
        rc = CTL_EXIT_FAIL;
        goto out_mask;
    }

    rc = ctl_connect(ctl, true, &w.c);
    if (rc != CTL_CONTINUE) {
        goto out_sig;
    }
    kr = apple_dext_setup_interrupts(w.c, &nvec);
    if (kr != kIOReturnSuccess) {
        rc = ctl_fail(ctl, kr, CTL_WHAT_IRQ, "setting up interrupts of %s",
                      bdf);
        goto out_conn;
    }
    w.notify = apple_dext_interrupt_notify_create_fd(w.c);
    if (w.notify == NULL) {
        rc = ctl_fail(ctl, kIOReturnNoResources, CTL_WHAT_IRQ,
                      "creating the interrupt notification");
        goto out_conn;
    }
    w.start = now_s();
    if (ctl->json) {
        json_begin_object(&w.line);
        json_kv_string(&w.line, "event", "setup");
        json_kv_string(&w.line, "bdf", bdf);
        json_kv_uint(&w.line, "vectors", nvec);
        json_end_object(&w.line);
    } else {
        printf("%s: %" PRIu32 " interrupt vector(s) set up; watching "
               "(Ctrl-C to stop)\n", bdf, nvec);
    }
    fflush(stdout);

    rc = watch_loop(ctl, &w);
    if (rc == CTL_EXIT_OK) {
        double secs = now_s() - w.start;

        if (ctl->json) {
            json_begin_object(&w.line);
            json_kv_string(&w.line, "event", "end");
            json_kv_uint(&w.line, "interrupts", w.seen);
            json_key(&w.line, "seconds");
            json_double(&w.line, secs, 6);
            json_end_object(&w.line);
        } else {
            printf("%s: %" PRIu64 " interrupt(s) in %.3f s\n", bdf, w.seen,
                   secs);
        }
    }
    apple_dext_interrupt_notify_destroy(w.notify);
out_conn:
    apple_dext_disconnect(w.c);
out_sig:
    close(w.sig_fd);
out_mask:
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}
