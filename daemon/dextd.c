/*
 * SPDX-License-Identifier: MIT
 *
 * dextd: serves the VFIOUserPCIDriver user-client contract over a UNIX
 * socket (protocol/dext-wire.h, docs/protocol.md), backed by the dext
 * core and its device backends.
 *
 * The main thread accepts channels and watches for SIGTERM/SIGINT; each
 * channel has a thread of its own doing blocking recvmsg -> core call ->
 * sendmsg, so a request costs exactly one receive and one send.  A
 * session (user client) lives while any channel bound to it is open.
 * Clients are never trusted: every field is checked, and a client that
 * misbehaves loses its channel and nothing else.  What clients can make
 * dextd hold is capped (channels per process and per user, a handshake
 * deadline, an fd budget sized from RLIMIT_NOFILE), and what they can
 * make it log is rate-limited.
 */

#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "libdext/version.h"
#include "core/dext-core.h"
#include "support/bdf.h"
#include "protocol/dext-wire.h"
#include "support/ratelimit.h"

#define DEXTD_MAX_CHANNELS  1024
#define DEXTD_PID_CHANNELS  256         /* per connecting process */
#define DEXTD_PID_PENDING   16          /* per process, not yet past HELLO */
#define DEXTD_HANDSHAKE_S   5           /* default --handshake-timeout */
#define DEXTD_BACKLOG       128
#define DEXTD_MAX_FDS       4           /* received per message, then closed */
#define DEXTD_THREAD_STACK  (1024 * 1024)
#define DEXTD_ACCEPT_PAUSE_MS 100       /* accept() out of fds or memory */

/*
 * The fd budget: every fd a client can make dextd hold is charged when
 * it is taken and given back when it is closed.  A channel is its socket,
 * its pidfd and room for what one request holds for a moment (the fds
 * received with it, a MAP reply, a DMA buffer or armed wake socket being
 * replaced); a session is dextd's pidfd and the core's: its pidfd, DMA
 * buffer, interrupt page and armed wake socket; a wake port is its
 * socket.  The reserve is never charged: the accept path (a socket and
 * its pidfd, or a refusal), the log and the core's own.  A device may
 * open more on first use (a host function: config twice, six BARs).
 */
#define DEXTD_CHANNEL_FDS   (2 + DEXTD_MAX_FDS)
#define DEXTD_SESSION_FDS   5
#define DEXTD_FD_RESERVE    32
#define DEXTD_DEVICE_FDS    8

/* Warnings a client can trigger: a burst of 10, then one a second. */

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77                 /* Linux 6.5 */
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434              /* Linux 5.3 */
#endif

typedef struct Daemon Daemon;

typedef struct WakePort {
    uint32_t id;                /* 0 = free slot */
    int fd;
} WakePort;


/* One user client, shared by the channels bound to it. */
typedef struct Session {
    struct Session *next;       /* Daemon.sessions, under Daemon.lock */
    DextSession *cs;
    pid_t pid;                  /* the opener; ATTACH must come from it */
    uid_t uid;
    int pidfd;                  /* the opener's, to tell it from a reuse */
    unsigned refs;              /* bound channels, under Daemon.lock */
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];
    pthread_mutex_t port_lock;
    uint32_t next_port;
    WakePort ports[DEXT_WIRE_MAX_PORTS];
    DextRateLimit log_rl;           /* warnings about its channels */
} Session;

typedef struct Channel {
    struct Channel *next;       /* Daemon.channels; only main unlinks */
    Daemon *d;
    int fd;                     /* -1 once closed, under Daemon.lock */
    pid_t pid;                  /* the connecting process ... */
    uid_t uid;
    int pidfd;                  /* ... bound by a pidfd taken at accept */
    pthread_t thread;
    bool done;                  /* thread finished, under Daemon.lock */
    bool greeted;               /* HELLO answered, under Daemon.lock */
    uint64_t hello_deadline;    /* CLOCK_MONOTONIC ms: HELLO by then */
    uint16_t version;           /* 0 until HELLO */
    pid_t sender;               /* of the message being handled, or -1 */
    Session *session;
    uint8_t rx[DEXT_WIRE_MAX_MSG];
    uint8_t tx[DEXT_WIRE_MAX_MSG];
    uint8_t sout[DEXT_MAX_STRUCT];
} Channel;

struct Daemon {
    DextCore *core;
    int log_level;
    const char *path;
    int exit_status;            /* for the shutdown watchdog */
    int listen_fd;
    int sig_fd;
    int reap_fd;                /* eventfd: some channel thread finished */
    uid_t euid;
    struct timespec start;
    dev_t sock_dev;
    ino_t sock_ino;

    unsigned handshake_ms;      /* --handshake-timeout */
    int spare_fd;               /* given up to answer when out of fds */
    bool accept_paused;         /* main thread only */
    uint64_t accept_resume;     /* CLOCK_MONOTONIC ms */
    DextRateLimit log_rl;           /* clients without a session; accept */
    DextRateLimit all_clients_rl;   /* every client-caused line, too */

    /* Set once at start from RLIMIT_NOFILE. */
    unsigned fd_budget;         /* fds clients may make us hold */
    unsigned max_channels;      /* min(DEXTD_MAX_CHANNELS, the budget) */
    unsigned uid_channels;      /* for one uid other than root */

    pthread_mutex_t lock;       /* channels, sessions and their counts */
    Channel *channels;
    unsigned nchannels;         /* not yet finished */
    unsigned fd_charged;        /* of fd_budget */
    Session *sessions;
};

/* ---------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------- */

static const char *level_name(int level)
{
    switch (level) {
    case DEXT_LOG_ERROR:
        return "error";
    case DEXT_LOG_WARNING:
        return "warning";
    case DEXT_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* The core's log sink; also used for the daemon's own lines. */
static void daemon_log(void *opaque, int level, const char *msg)
{
    Daemon *d = opaque;
    struct timespec ts;
    struct tm tm;
    char when[32];

    if (level > d->log_level) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    /* One fprintf per line: stdio's lock keeps threads' lines whole. */
    fprintf(stderr, "%s.%03ld dextd[%d]: %s: %s\n", when,
            ts.tv_nsec / 1000000, (int)getpid(), level_name(level), msg);
}

static void vdlog(Daemon *d, int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vdlog(Daemon *d, int level, const char *fmt, va_list ap)
{
    char msg[512];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    daemon_log(d, level, msg);
}

static void dlog(Daemon *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void dlog(Daemon *d, int level, const char *fmt, ...)
{
    va_list ap;

    if (level > d->log_level) {
        return;
    }
    va_start(ap, fmt);
    vdlog(d, level, fmt, ap);
    va_end(ap);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * dlog_limited() - log a line a client can trigger, through @rl
 *
 * A client must not be able to flood the log: past the burst, lines are
 * counted, and the next one that goes out says how many were dropped.
 */
static void dlog_limited(Daemon *d, DextRateLimit *rl, int level,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void dlog_limited(Daemon *d, DextRateLimit *rl, int level,
                         const char *fmt, ...)
{
    unsigned suppressed, also;
    va_list ap;

    if (level > d->log_level || !dext_ratelimit_take(rl, &suppressed)) {
        return;
    }
    /*
     * And the daemon-wide budget: a thousand processes get a thousand
     * budgets of their own, but the log must not take a thousand bursts.
     */
    if (!dext_ratelimit_take(&d->all_clients_rl, &also)) {
        __atomic_fetch_add(&rl->suppressed, suppressed + 1, __ATOMIC_RELAXED);
        return;
    }
    suppressed += also;
    if (suppressed > 0) {
        dlog(d, level, "%u messages suppressed", suppressed);
    }
    va_start(ap, fmt);
    vdlog(d, level, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------
 * The fd budget
 * ------------------------------------------------------------------- */

/* Charge @n fds to the budget; false (and nothing charged) if over it. */
static bool fd_charge(Daemon *d, unsigned n)
{
    bool ok;

    pthread_mutex_lock(&d->lock);
    ok = d->fd_budget - d->fd_charged >= n;
    if (ok) {
        d->fd_charged += n;
    }
    pthread_mutex_unlock(&d->lock);
    return ok;
}

/* Give back @n fds, once they are closed. */
static void fd_release(Daemon *d, unsigned n)
{
    pthread_mutex_lock(&d->lock);
    d->fd_charged -= n;
    pthread_mutex_unlock(&d->lock);
}

/* The fds this process has open, or -1 if /proc cannot say. */
static int count_open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (dir == NULL) {
        return -1;
    }
    while ((e = readdir(dir)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(dir);
    return n - 1;                       /* the directory's own */
}

/*
 * fd_budget_setup() - size the fd budget from RLIMIT_NOFILE
 * @d: the daemon, its devices served and its socket listening
 * @devices: how many devices are served
 *
 * What is open now stays open; the reserve is for the accept path and
 * internal use; the rest is what clients may make dextd hold.  Called
 * after raise_fd_limit().
 *
 * Return: 0, or -1 if the limit leaves no room for a single client.
 */
static int fd_budget_setup(Daemon *d, uint32_t devices)
{
    uint64_t need, limit = 1u << 30;
    struct rlimit rl;
    int open_now = count_open_fds();

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < limit) {
        limit = rl.rlim_cur;
    }
    /* Without /proc, guess generously: a smaller budget is still safe. */
    need = (uint64_t)(open_now >= 0 ? open_now : 64) + DEXTD_FD_RESERVE +
           (uint64_t)DEXTD_DEVICE_FDS * devices;
    if (limit < need + DEXTD_CHANNEL_FDS + DEXTD_SESSION_FDS) {
        dlog(d, DEXT_LOG_ERROR, "RLIMIT_NOFILE (%llu) is too low: serving "
             "one client needs %llu fds", (unsigned long long)limit,
             (unsigned long long)(need + DEXTD_CHANNEL_FDS +
                                  DEXTD_SESSION_FDS));
        return -1;
    }
    d->fd_budget = (unsigned)(limit - need);
    /* Room for every channel to open a session. */
    d->max_channels = d->fd_budget / (DEXTD_CHANNEL_FDS + DEXTD_SESSION_FDS);
    if (d->max_channels > DEXTD_MAX_CHANNELS) {
        d->max_channels = DEXTD_MAX_CHANNELS;
    }
    d->uid_channels = d->max_channels * 3 / 4;
    if (d->uid_channels == 0) {
        d->uid_channels = 1;
    }
    dlog(d, DEXT_LOG_DEBUG, "RLIMIT_NOFILE %llu: %u fds for clients, at most "
         "%u channels (%u for a user other than root)",
         (unsigned long long)limit, d->fd_budget, d->max_channels,
         d->uid_channels);
    return 0;
}

/* ---------------------------------------------------------------------
 * Sending and receiving
 * ------------------------------------------------------------------- */

static void close_fds(int *fds, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        close(fds[i]);
    }
}

/* Send @len bytes from @buf on @fd, with @pass_fd if >= 0. */
static bool send_msg(int fd, const uint8_t *buf, int len, int pass_fd)
{
    return len >= 0 && dext_wire_sendmsg(fd, buf, (size_t)len, pass_fd) == len;
}

/* An ERROR outside any channel state: refusals at accept time. */
static void send_refusal(int fd, IOReturn status)
{
    uint8_t buf[DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_STATUS_ONLY_SIZE];
    int len = dext_wire_encode_status_only(buf, sizeof(buf),
                                           DEXT_WIRE_VERSION_HELLO, 0,
                                           DEXT_WIRE_ERROR, status);

    (void)send_msg(fd, buf, len, -1);
}

/*
 * Receive one request into @ch->rx.  Returns its length, or 0 for EOF
 * and any failure.  Up to DEXTD_MAX_FDS fds that came with it are in
 * @fds; *@trunc is set if the message or its fds did not fit (any
 * surplus fds are closed here).
 */
static ssize_t recv_msg(Channel *ch, int *fds, int *nfds, bool *trunc)
{
    ssize_t n = dext_wire_recvmsg_cred(ch->fd, ch->rx, sizeof(ch->rx), 0,
                                       fds, DEXTD_MAX_FDS, nfds, trunc,
                                       &ch->sender);

    return n < 0 ? 0 : n;
}

/* ---------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------- */

static IOReturn session_new(Daemon *d, Channel *ch, DextSession *cs,
                            Session **out)
{
    Session *s = calloc(1, sizeof(*s));
    size_t got = 0;
    int i;

    if (s == NULL) {
        return kIOReturnNoMemory;
    }
    /* The token is the only thing ATTACH proves; make it unguessable. */
    while (got < sizeof(s->token)) {
        ssize_t n = getrandom(s->token + got, sizeof(s->token) - got, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            free(s);
            return kIOReturnInternalError;
        }
        got += (size_t)n;
    }
    s->cs = cs;
    s->pid = ch->pid;
    s->uid = ch->uid;
    s->pidfd = fcntl(ch->pidfd, F_DUPFD_CLOEXEC, 0);
    if (s->pidfd < 0) {
        free(s);
        return kIOReturnNoResources;
    }
    s->refs = 1;
    pthread_mutex_init(&s->port_lock, NULL);
    for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
        s->ports[i].fd = -1;
    }
    pthread_mutex_lock(&d->lock);
    s->next = d->sessions;
    d->sessions = s;
    pthread_mutex_unlock(&d->lock);
    *out = s;
    return kIOReturnSuccess;
}

/*
 * Drop one channel's hold; the last one closes the user client and gives
 * its fds back to the budget.
 */
static void session_unref(Daemon *d, Session *s)
{
    unsigned nports = 0;
    Session **pp;
    bool last;
    int i;

    pthread_mutex_lock(&d->lock);
    last = --s->refs == 0;
    if (last) {
        for (pp = &d->sessions; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == s) {
                *pp = s->next;
                break;
            }
        }
    }
    pthread_mutex_unlock(&d->lock);
    if (!last) {
        return;
    }
    dext_session_close(s->cs);
    for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
        if (s->ports[i].fd >= 0) {
            close(s->ports[i].fd);
            nports++;
        }
    }
    dlog(d, DEXT_LOG_DEBUG, "session of pid %d closed", (int)s->pid);
    close(s->pidfd);
    fd_release(d, DEXTD_SESSION_FDS + nports);
    pthread_mutex_destroy(&s->port_lock);
    memset(s->token, 0, sizeof(s->token));
    free(s);
}

/* A pidfd polls readable once its process has exited. */
static bool pidfd_alive(int pidfd)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };

    return pidfd >= 0 && poll(&p, 1, 0) == 0;
}

static bool token_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;
    int i;

    /* Constant time, so timing does not leak how much of it matched. */
    for (i = 0; i < DEXT_WIRE_TOKEN_SIZE; i++) {
        diff |= a[i] ^ b[i];
    }
    return diff == 0;
}

/* getsockopt() of an int at SOL_SOCKET level, or -1. */
static int sockopt_int(int fd, int opt)
{
    socklen_t len = sizeof(int);
    int v;

    return getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

/*
 * wake_port_refusal() - why @fd cannot be a wake port, or NULL
 *
 * The core completes a wait with a send(MSG_DONTWAIT) on it, which
 * nothing the client does to its end can turn into a blocking one: so a
 * message socket (an eventfd would share O_NONBLOCK with the client, who
 * could clear it and fill the counter to wedge a daemon thread), a local
 * one (not a datagram socket of some network), connected, not listening,
 * and not a way back into dextd: a client's own channel as its wake port
 * would keep that channel, and so its session, open for ever.
 */
static const char *wake_port_refusal(int fd)
{
    struct sockaddr_storage sa;
    struct ucred cred;
    socklen_t len;
    struct stat st;
    int type;

    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        return "not a socket";
    }
    if (sockopt_int(fd, SO_DOMAIN) != AF_UNIX) {
        return "not an AF_UNIX socket";
    }
    type = sockopt_int(fd, SO_TYPE);
    if (type != SOCK_SEQPACKET && type != SOCK_DGRAM) {
        return "not a SEQPACKET or DGRAM socket";
    }
    if (sockopt_int(fd, SO_ACCEPTCONN) != 0) {
        return "a listening socket";
    }
    len = sizeof(sa);
    if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0) {
        return "not connected";
    }
    len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        return "no peer credentials";
    }
    if (cred.pid == getpid()) {
        return "its peer is dextd itself";
    }
    return NULL;
}

/*
 * The fds in flight in @fd's receive queue (fdinfo's scm_fds, Linux 5.7),
 * or -1 if the kernel does not say.
 */
static int queued_fds(int fd)
{
    char path[64];
    char line[128];
    int n = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    f = fopen(path, "re");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "scm_fds: %d", &n) == 1) {
            break;
        }
    }
    fclose(f);
    return n;
}

/*
 * wake_port_seal() - make @fd a port dextd only sends on
 *
 * Shut for reading, nothing more can be queued on it (the peer's sends
 * fail with EPIPE, SEQPACKET and DGRAM alike); then what was queued is
 * discarded, closing the fds in it, so no fd parked in a wake port (a
 * channel to dextd, say) can keep anything open.  A SEQPACKET socket
 * reads an empty message exactly as its end of file, so the kernel's
 * count of fds in flight says when nothing that matters is left.
 *
 * Return: false if @fd cannot be shut or emptied.
 */
static bool wake_port_seal(int fd)
{
    unsigned errors = 0;

    if (shutdown(fd, SHUT_RD) < 0) {
        return false;
    }
    for (;;) {
        union {
            struct cmsghdr hdr;
            char buf[CMSG_SPACE(sizeof(int))];
        } cbuf;
        uint8_t byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
        };
        struct cmsghdr *cm;
        bool got_fds = false;
        ssize_t n;

        n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || ++errors > 8) {
                break;
            }
            continue;                   /* EINTR, or a pending error */
        }
        for (cm = CMSG_FIRSTHDR(&msg); cm != NULL;
             cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                size_t i, cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                for (i = 0; i < cnt; i++) {
                    int rfd;

                    memcpy(&rfd, CMSG_DATA(cm) + i * sizeof(int), sizeof(rfd));
                    close(rfd);
                    got_fds = true;
                }
            }
        }
        if (n == 0 && !got_fds && queued_fds(fd) <= 0) {
            break;              /* the end, or empty messages and no fds */
        }
    }
    return queued_fds(fd) <= 0;
}

/* ---------------------------------------------------------------------
 * Request handlers.  Each returns false to drop the channel.
 * ------------------------------------------------------------------- */

static IOReturn codec_status(int err)
{
    switch (err) {
    case DEXT_WIRE_ETYPE:
        return kIOReturnBadMessageID;
    case DEXT_WIRE_EVERSION:
        return kIOReturnUnsupported;
    case DEXT_WIRE_ELIMIT:
        return kIOReturnMessageTooLarge;
    default:
        return kIOReturnIPCError;
    }
}

/*
 * Where a channel's warnings are counted: its session's bucket, or the
 * one all clients without a session share (a channel is cheap to make,
 * so a bucket of its own would limit nothing).
 */
static DextRateLimit *channel_log_rl(Channel *ch)
{
    return ch->session != NULL ? &ch->session->log_rl : &ch->d->log_rl;
}

/* Answer a request that breaks the protocol, and drop the channel. */
static bool channel_violation(Channel *ch, uint64_t seq, IOReturn status,
                              const char *why)
{
    int len;

    dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                 "pid %d: dropping channel: %s", (int)ch->pid, why);
    len = dext_wire_encode_status_only(ch->tx, sizeof(ch->tx),
                                       ch->version ? ch->version
                                                   : DEXT_WIRE_VERSION_HELLO,
                                       seq, DEXT_WIRE_ERROR, status);
    (void)send_msg(ch->fd, ch->tx, len, -1);
    return false;
}

static bool handle_hello(Channel *ch, const DextWireHeader *h,
                         const uint8_t *p)
{
    DextWireHello m;
    DextWireHelloReply r = { 0 };
    int err;

    if (ch->version != 0) {
        return channel_violation(ch, h->seq, kIOReturnBadMessageID,
                                 "second HELLO");
    }
    err = dext_wire_decode_hello(p, h->length, &m);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    r.version = dext_wire_choose_version(&m);
    r.status = r.version ? kIOReturnSuccess : kIOReturnUnsupported;
    r.pid = (uint32_t)getpid();
    r.features = DEXT_WIRE_FEATURES_V1;
    if (!send_msg(ch->fd, ch->tx,
                  dext_wire_encode_hello_reply(ch->tx, sizeof(ch->tx),
                                               h->seq, &r), -1)) {
        return false;
    }
    if (r.version == 0) {
        dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                     "pid %d speaks protocol %u-%u only, we speak %u-%u",
                     (int)ch->pid, m.min_version, m.max_version,
                     DEXT_WIRE_VERSION_MIN, DEXT_WIRE_VERSION_MAX);
        return false;
    }
    ch->version = r.version;
    pthread_mutex_lock(&ch->d->lock);
    ch->greeted = true;
    pthread_mutex_unlock(&ch->d->lock);
    return true;
}

static bool handle_list(Channel *ch, const DextWireHeader *h)
{
    DextWireListReply r;
    uint32_t total;

    total = dext_core_list(ch->d->core, r.ids, DEXT_MAX_SERVICES);
    r.status = kIOReturnSuccess;
    r.total = total;
    r.count = total < DEXT_MAX_SERVICES ? total : DEXT_MAX_SERVICES;
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_list_reply(ch->tx, sizeof(ch->tx),
                                                ch->version, h->seq, &r),
                    -1);
}

static bool handle_status(Channel *ch, const DextWireHeader *h)
{
    Daemon *d = ch->d;
    DextWireStatusReply r = { 0 };
    DextCoreStats st;
    struct timespec now;

    dext_core_stats(d->core, &st);
    clock_gettime(CLOCK_MONOTONIC, &now);
    r.status = kIOReturnSuccess;
    r.version = ch->version;
    r.pid = (uint32_t)getpid();
    r.uptime_ms = (uint64_t)(now.tv_sec - d->start.tv_sec) * 1000 +
                  (uint64_t)(now.tv_nsec / 1000000) -
                  (uint64_t)(d->start.tv_nsec / 1000000);
    pthread_mutex_lock(&d->lock);
    r.channels = d->nchannels;
    pthread_mutex_unlock(&d->lock);
    r.devices = st.devices;
    r.sessions = st.sessions;
    r.claims = st.claims;
    r.dma_regions = st.dma_regions;
    r.dma_region_bytes = st.dma_region_bytes;
    r.dma_buffers = st.dma_buffers;
    r.irq_sessions = st.irq_sessions;
    r.iommu_faults = st.iommu_faults;
    r.irqs_raised = st.irqs_raised;
    r.irqs_dropped = st.irqs_dropped;
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_status_reply(ch->tx, sizeof(ch->tx),
                                                  ch->version, h->seq, &r),
                    -1);
}

static bool handle_open(Channel *ch, const DextWireHeader *h,
                        const uint8_t *p)
{
    DextWireOpen m;
    DextWireOpenReply r = { 0 };
    DextSession *cs = NULL;
    Session *s = NULL;
    bool ok;
    int err;

    err = dext_wire_decode_open(p, h->length, &m);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    if (ch->session != NULL) {
        r.status = kIOReturnStillOpen;
    } else if (ch->pid <= 0) {
        /* A peer in a pid namespace we cannot see: no DMA possible. */
        r.status = kIOReturnNotPermitted;
    } else if (!fd_charge(ch->d, DEXTD_SESSION_FDS)) {
        r.status = kIOReturnNoResources;
        dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                     "pid %d: OPEN refused: out of file descriptors",
                     (int)ch->pid);
    } else {
        r.status = dext_core_open(ch->d->core, m.service_id, m.type, ch->pid,
                                  ch->pidfd, &cs);
        if (r.status == kIOReturnSuccess) {
            r.status = session_new(ch->d, ch, cs, &s);
            if (r.status != kIOReturnSuccess) {
                dext_session_close(cs);
            }
        }
        if (r.status == kIOReturnSuccess) {
            ch->session = s;
            memcpy(r.token, s->token, sizeof(r.token));
            dlog(ch->d, DEXT_LOG_DEBUG, "pid %d opened service 0x%llx",
                 (int)ch->pid, (unsigned long long)m.service_id);
        } else {
            fd_release(ch->d, DEXTD_SESSION_FDS);
        }
    }
    ok = send_msg(ch->fd, ch->tx,
                  dext_wire_encode_open_reply(ch->tx, sizeof(ch->tx),
                                              ch->version, h->seq, &r), -1);
    memset(&r, 0, sizeof(r));
    memset(ch->tx, 0, DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_OPEN_REPLY_SIZE);
    return ok;
}

static bool handle_attach(Channel *ch, const DextWireHeader *h,
                          const uint8_t *p)
{
    Daemon *d = ch->d;
    DextWireAttach m;
    IOReturn status = kIOReturnNotPermitted;
    Session *s;
    int err;

    err = dext_wire_decode_attach(p, h->length, &m);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    if (ch->session != NULL) {
        status = kIOReturnStillOpen;
    } else {
        pthread_mutex_lock(&d->lock);
        for (s = d->sessions; s != NULL; s = s->next) {
            if (token_equal(s->token, m.token)) {
                break;
            }
        }
        /*
         * A token alone is not enough: only the opening process may add
         * channels, so a leaked token is useless elsewhere.  Equal pids
         * mean the same process only while both pidfds say it lives: a
         * process that reused the opener's pid is someone else.
         */
        if (s != NULL && s->pid == ch->pid && s->uid == ch->uid &&
            pidfd_alive(s->pidfd) && pidfd_alive(ch->pidfd)) {
            s->refs++;
            ch->session = s;
            status = kIOReturnSuccess;
        }
        pthread_mutex_unlock(&d->lock);
        if (status != kIOReturnSuccess) {
            dlog_limited(d, channel_log_rl(ch), DEXT_LOG_WARNING,
                         "pid %d: ATTACH refused", (int)ch->pid);
        }
    }
    memset(&m, 0, sizeof(m));
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_status_only(ch->tx, sizeof(ch->tx),
                                                 ch->version, h->seq,
                                                 DEXT_WIRE_ATTACH, status),
                    -1);
}

/*
 * A region's addresses are the opening process's: the core reads and
 * writes that process's memory.  A channel can outlive its opener's
 * hold on it -- a forked child inherits it, a process can pass it on --
 * and such a holder must not make dextd touch the opener's memory in its
 * name (a child that may not ptrace its parent could read it through
 * us).  So calls that name client memory must come from the opener
 * itself, as the kernel vouches for each message (SO_PASSCRED).
 */
static bool sender_may_name_memory(Channel *ch, uint32_t selector)
{
    Session *s = ch->session;

    if (selector != kDextSelectorRegisterDMARegion &&
        selector != kDextSelectorProbeDMARegion) {
        return true;
    }
    if (ch->sender > 0 && ch->sender == s->pid) {
        return true;
    }
    dlog_limited(ch->d, channel_log_rl(ch), DEXT_LOG_WARNING,
                 "pid %d: DMA call on the session of pid %d refused: "
                 "regions name the opener's memory", (int)ch->sender,
                 (int)s->pid);
    return false;
}

static bool handle_call(Channel *ch, const DextWireHeader *h,
                        const uint8_t *p, bool async)
{
    DextWireCall m;
    DextWireCallReply r = { 0 };
    uint32_t scalar_cnt;
    size_t struct_size;
    DextCallArgs args;
    Session *s = ch->session;
    int err;

    err = dext_wire_decode_call(p, h->length, async, &m);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    scalar_cnt = m.scalar_out_cap;
    struct_size = m.struct_out_cap;
    args.scalar_in = m.scalar_in;
    args.scalar_in_cnt = m.scalar_in_cnt;
    args.struct_in = m.struct_in;
    args.struct_in_size = m.struct_in_len;
    args.scalar_out = r.scalar_out;
    args.scalar_out_cnt = &scalar_cnt;
    args.struct_out = ch->sout;
    args.struct_out_size = &struct_size;

    if (s == NULL) {
        r.status = kIOReturnNotAttached;
        scalar_cnt = 0;
        struct_size = 0;
    } else if (!async && !sender_may_name_memory(ch, m.selector)) {
        r.status = kIOReturnNotPermitted;
        scalar_cnt = 0;
        struct_size = 0;
    } else if (!async) {
        r.status = dext_session_call(s->cs, m.selector, &args);
    } else {
        int i;

        r.status = kIOReturnBadArgument;
        pthread_mutex_lock(&s->port_lock);
        for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
            if (s->ports[i].id != 0 && s->ports[i].id == m.port) {
                break;
            }
        }
        /*
         * Held across the call so an UNREGISTER cannot close the fd
         * before the core has taken its own copy.
         */
        if (i < DEXT_WIRE_MAX_PORTS) {
            r.status = dext_session_call_async(s->cs, m.selector,
                                               s->ports[i].fd, &args);
        } else {
            scalar_cnt = 0;
            struct_size = 0;
        }
        pthread_mutex_unlock(&s->port_lock);
    }
    /* The core is trusted, but the wire limits are not negotiable. */
    r.scalar_out_cnt = scalar_cnt <= m.scalar_out_cap ? scalar_cnt : 0;
    r.struct_out_len = struct_size <= m.struct_out_cap ?
                       (uint32_t)struct_size : 0;
    r.struct_out = ch->sout;
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_call_reply(ch->tx, sizeof(ch->tx),
                                                ch->version, h->seq, async,
                                                &r), -1);
}

static bool handle_wake_register(Channel *ch, const DextWireHeader *h,
                                 const uint8_t *p, int fd)
{
    DextWireWakeReply r = { .status = kIOReturnBadArgument };
    Session *s = ch->session;
    Daemon *d = ch->d;
    bool charged = false;
    const char *why;
    int err;
    int i;

    err = dext_wire_decode_empty(p, h->length);
    if (err != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    if (s == NULL) {
        r.status = kIOReturnNotAttached;
    } else if (fd < 0) {
        /* None or several fds: BadArgument. */
    } else if ((why = wake_port_refusal(fd)) != NULL) {
        dlog_limited(d, &s->log_rl, DEXT_LOG_WARNING,
                     "pid %d: wake port refused: %s", (int)ch->pid, why);
    } else if (!(charged = fd_charge(d, 1))) {
        r.status = kIOReturnNoResources;
        dlog_limited(d, &s->log_rl, DEXT_LOG_WARNING,
                     "pid %d: wake port refused: out of file descriptors",
                     (int)ch->pid);
    } else if (!wake_port_seal(fd)) {
        dlog_limited(d, &s->log_rl, DEXT_LOG_WARNING,
                     "pid %d: wake port refused: cannot shut it for reading "
                     "and empty it", (int)ch->pid);
    } else {
        r.status = kIOReturnNoSpace;
        pthread_mutex_lock(&s->port_lock);
        for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
            if (s->ports[i].id == 0) {
                if (++s->next_port == 0) {
                    s->next_port = 1;
                }
                s->ports[i].id = s->next_port;
                s->ports[i].fd = fd;
                fd = -1;
                r.port = s->ports[i].id;
                r.status = kIOReturnSuccess;
                break;
            }
        }
        pthread_mutex_unlock(&s->port_lock);
    }
    if (fd >= 0) {
        close(fd);
        if (charged) {
            fd_release(d, 1);
        }
    }
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_wake_reply(ch->tx, sizeof(ch->tx),
                                                ch->version, h->seq, &r),
                    -1);
}

static bool handle_wake_unregister(Channel *ch, const DextWireHeader *h,
                                   const uint8_t *p)
{
    IOReturn status = kIOReturnNotFound;
    Session *s = ch->session;
    uint32_t port;
    int fd = -1;
    int err;
    int i;

    err = dext_wire_decode_wake_unregister(p, h->length, &port);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    if (s == NULL) {
        status = kIOReturnNotAttached;
    } else if (port != 0) {
        pthread_mutex_lock(&s->port_lock);
        for (i = 0; i < DEXT_WIRE_MAX_PORTS; i++) {
            if (s->ports[i].id == port) {
                fd = s->ports[i].fd;
                s->ports[i].id = 0;
                s->ports[i].fd = -1;
                status = kIOReturnSuccess;
                break;
            }
        }
        pthread_mutex_unlock(&s->port_lock);
    }
    if (fd >= 0) {
        close(fd);
        fd_release(ch->d, 1);
    }
    return send_msg(ch->fd, ch->tx,
                    dext_wire_encode_status_only(ch->tx, sizeof(ch->tx),
                                                 ch->version, h->seq,
                                                 DEXT_WIRE_WAKE_UNREGISTER,
                                                 status), -1);
}

static bool handle_map(Channel *ch, const DextWireHeader *h,
                       const uint8_t *p)
{
    DextWireMap m;
    DextWireMapReply r = { 0 };
    DextMemory mem = { .fd = -1 };
    bool ok;
    int err;

    err = dext_wire_decode_map(p, h->length, &m);
    if (err != 0) {
        return channel_violation(ch, h->seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    /* @m.options (cache mode) cannot be honoured by mmap; ignored. */
    if (ch->session == NULL) {
        r.status = kIOReturnNotAttached;
    } else {
        r.status = dext_session_map(ch->session->cs, m.mem_type, &mem);
    }
    if (r.status == kIOReturnSuccess && (mem.fd < 0 || mem.size == 0)) {
        dlog(ch->d, DEXT_LOG_ERROR, "core mapped type %u without memory",
             m.mem_type);
        r.status = kIOReturnInternalError;
    }
    if (r.status == kIOReturnSuccess) {
        r.flags = mem.writable ? DEXT_WIRE_MAP_WRITABLE : 0;
        r.offset = mem.offset;
        r.size = mem.size;
    }
    ok = send_msg(ch->fd, ch->tx,
                  dext_wire_encode_map_reply(ch->tx, sizeof(ch->tx),
                                             ch->version, h->seq, &r),
                  r.status == kIOReturnSuccess ? mem.fd : -1);
    if (mem.fd >= 0) {
        close(mem.fd);
    }
    return ok;
}

/* Handle the @n-byte message in @ch->rx; false drops the channel. */
static bool channel_handle(Channel *ch, size_t n, int *fds, int nfds,
                           bool trunc)
{
    uint64_t seq = dext_wire_peek_seq(ch->rx, n);
    const uint8_t *p = ch->rx + DEXT_WIRE_HEADER_SIZE;
    DextWireHeader h;
    int fd = -1;
    int err;

    if (trunc) {
        close_fds(fds, nfds);
        return channel_violation(ch, seq, kIOReturnMessageTooLarge,
                                 "message or fds truncated");
    }
    err = dext_wire_decode_header(ch->rx, n, &h);
    if (err != 0) {
        close_fds(fds, nfds);
        return channel_violation(ch, seq, codec_status(err),
                                 dext_wire_strerror(err));
    }
    if (h.type == DEXT_WIRE_WAKE_REGISTER) {
        if (nfds == 1) {
            fd = fds[0];
        } else {
            /* Zero or several fds: reply BadArgument, keep none. */
            close_fds(fds, nfds);
        }
    } else if (nfds > 0) {
        close_fds(fds, nfds);
        return channel_violation(ch, h.seq, kIOReturnBadArgument,
                                 "unexpected fds");
    }
    if (h.flags & DEXT_WIRE_FLAG_REPLY) {
        if (fd >= 0) {
            close(fd);
        }
        return channel_violation(ch, h.seq, kIOReturnIPCError,
                                 "reply sent to the daemon");
    }
    if (h.type == DEXT_WIRE_HELLO ? h.version != DEXT_WIRE_VERSION_HELLO
                                  : h.version != ch->version) {
        if (fd >= 0) {
            close(fd);
        }
        return channel_violation(ch, h.seq,
                                 ch->version ? kIOReturnUnsupported
                                             : kIOReturnNotReady,
                                 ch->version ? "wrong protocol version"
                                             : "request before HELLO");
    }

    switch (h.type) {
    case DEXT_WIRE_HELLO:
        return handle_hello(ch, &h, p);
    case DEXT_WIRE_LIST:
    case DEXT_WIRE_STATUS:
        err = dext_wire_decode_empty(p, h.length);
        if (err != 0) {
            return channel_violation(ch, h.seq, codec_status(err),
                                     dext_wire_strerror(err));
        }
        return h.type == DEXT_WIRE_LIST ? handle_list(ch, &h)
                                        : handle_status(ch, &h);
    case DEXT_WIRE_OPEN:
        return handle_open(ch, &h, p);
    case DEXT_WIRE_ATTACH:
        return handle_attach(ch, &h, p);
    case DEXT_WIRE_CALL:
        return handle_call(ch, &h, p, false);
    case DEXT_WIRE_CALL_ASYNC:
        return handle_call(ch, &h, p, true);
    case DEXT_WIRE_WAKE_REGISTER:
        return handle_wake_register(ch, &h, p, fd);
    case DEXT_WIRE_WAKE_UNREGISTER:
        return handle_wake_unregister(ch, &h, p);
    case DEXT_WIRE_MAP:
        return handle_map(ch, &h, p);
    default:
        /* ERROR is reply-only; the header check let it through as one. */
        return channel_violation(ch, h.seq, kIOReturnBadMessageID,
                                 "unexpected message type");
    }
}

/*
 * Wait for a new channel's first message until its handshake deadline,
 * so a connection that never says HELLO does not hold a channel (and a
 * thread) for ever.  False once the deadline has passed.
 */
static bool await_hello(Channel *ch)
{
    struct pollfd p = { .fd = ch->fd, .events = POLLIN };

    for (;;) {
        uint64_t now = now_ms();
        uint64_t left;
        int rc;

        if (now >= ch->hello_deadline) {
            return false;
        }
        left = ch->hello_deadline - now;
        rc = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (rc > 0 || (rc < 0 && errno != EINTR)) {
            return true;                /* the receive says what it was */
        }
    }
}

static void *channel_thread(void *opaque)
{
    Channel *ch = opaque;
    Daemon *d = ch->d;
    int fds[DEXTD_MAX_FDS];
    int nfds;
    bool trunc;
    ssize_t n;

    for (;;) {
        if (ch->version == 0 && !await_hello(ch)) {
            dlog_limited(d, &d->log_rl, DEXT_LOG_WARNING,
                         "pid %d: no HELLO within %u ms, closing the channel",
                         (int)ch->pid, d->handshake_ms);
            break;
        }
        n = recv_msg(ch, fds, &nfds, &trunc);
        if (n <= 0) {
            close_fds(fds, nfds);
            break;
        }
        if (!channel_handle(ch, (size_t)n, fds, nfds, trunc)) {
            break;
        }
    }
    if (ch->session != NULL) {
        session_unref(d, ch->session);
        ch->session = NULL;
    }
    pthread_mutex_lock(&d->lock);
    close(ch->fd);
    ch->fd = -1;
    close(ch->pidfd);
    ch->pidfd = -1;
    ch->done = true;
    d->nchannels--;
    d->fd_charged -= DEXTD_CHANNEL_FDS;
    pthread_mutex_unlock(&d->lock);
    dlog(d, DEXT_LOG_DEBUG, "pid %d: channel closed", (int)ch->pid);
    (void)eventfd_write(d->reap_fd, 1);
    return NULL;
}

/* ---------------------------------------------------------------------
 * Accepting and shutting down
 * ------------------------------------------------------------------- */

/*
 * A pidfd of the process that connected on @fd, or -errno.  SO_PEERPIDFD
 * names the very process that called connect() and fails if it has gone,
 * so the session can never be bound to a process that reused its pid.
 * Kernels before 6.5 lack it: pidfd_open of the SO_PEERCRED pid is then
 * the best there is, and it is wrong if that process exited and its pid
 * was reused between connect() and here (docs/reliability.md).
 */
static int peer_pidfd(Daemon *d, int fd, pid_t pid)
{
    static bool warned;
    socklen_t len = sizeof(int);
    int pidfd = -1;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) {
        return pidfd;
    }
    if (errno != ENOPROTOOPT) {
        return errno == EINVAL ? -ESRCH : -errno;
    }
    if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED)) {
        dlog(d, DEXT_LOG_WARNING, "this kernel has no SO_PEERPIDFD: a "
             "client's pid is bound at accept, not at connect");
    }
    if (pid <= 0) {
        return -ESRCH;
    }
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    return pidfd >= 0 ? pidfd : -errno;
}

/*
 * channel_admit_locked() - may a channel from @cred be accepted?
 *
 * Checks the caps: the global one, the fd budget, and per connecting
 * process (DEXTD_PID_PENDING before HELLO, DEXTD_PID_CHANNELS in all) and
 * per user other than root (3/4 of the global cap, so root always has
 * room).  Under Daemon.lock; only the main thread adds channels, so what
 * it counts cannot grow before the channel is added.
 *
 * Return: NULL, with the channel and its fds charged; else why not.
 */
static const char *channel_admit_locked(Daemon *d, const struct ucred *cred)
{
    unsigned pid_all = 0, pid_pending = 0, uid_all = 0;
    Channel *ch;

    if (d->nchannels >= d->max_channels) {
        return "the channel cap is reached";
    }
    if (d->fd_budget - d->fd_charged < DEXTD_CHANNEL_FDS) {
        return "out of file descriptors";
    }
    for (ch = d->channels; ch != NULL; ch = ch->next) {
        if (ch->done) {
            continue;
        }
        if (ch->pid == cred->pid) {
            pid_all++;
            pid_pending += !ch->greeted;
        }
        uid_all += ch->uid == cred->uid;
    }
    if (pid_pending >= DEXTD_PID_PENDING) {
        return "too many of its channels have not said HELLO";
    }
    if (pid_all >= DEXTD_PID_CHANNELS) {
        return "too many channels from one process";
    }
    if (cred->uid != 0 && uid_all >= d->uid_channels) {
        return "its user holds 3/4 of the channels";
    }
    d->nchannels++;
    d->fd_charged += DEXTD_CHANNEL_FDS;
    return NULL;
}

/* Undo channel_admit_locked() for a channel that never started. */
static void channel_unadmit(Daemon *d)
{
    pthread_mutex_lock(&d->lock);
    d->nchannels--;
    d->fd_charged -= DEXTD_CHANNEL_FDS;
    pthread_mutex_unlock(&d->lock);
}

/* Refuse the connection @fd with an ERROR, then close it. */
static void refuse(Daemon *d, int fd, pid_t pid, IOReturn status,
                   const char *why)
{
    dlog_limited(d, &d->log_rl, DEXT_LOG_WARNING, "refused pid %d: %s",
                 (int)pid, why);
    send_refusal(fd, status);
    close(fd);
}

/*
 * accept() failed with @err.  Out of fds should not happen (the reserve
 * is for the accept path); if it does, a spare fd let go for a moment
 * answers the client instead of leaving it waiting.  Out of memory, or
 * still out of fds: stop accepting for a moment, without blocking the
 * loop that also handles signals and reaps channels.
 */
static void accept_failed(Daemon *d, int err)
{
    struct ucred cred = { .pid = 0 };
    socklen_t clen = sizeof(cred);
    int fd;

    if ((err == EMFILE || err == ENFILE) && d->spare_fd >= 0) {
        close(d->spare_fd);
        fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            err = errno;
        } else {
            (void)getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen);
            refuse(d, fd, cred.pid, kIOReturnNoResources, strerror(err));
        }
        d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            return;
        }
    }
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        dlog_limited(d, &d->log_rl, DEXT_LOG_WARNING, "accept: %s",
                     strerror(err));
        d->accept_paused = true;
        d->accept_resume = now_ms() + DEXTD_ACCEPT_PAUSE_MS;
    }
}

static void accept_one(Daemon *d)
{
    pthread_attr_t attr;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    const char *why;
    Channel *ch;
    int pidfd;
    int fd;
    int rc;

    fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        accept_failed(d, errno);
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
        close(fd);
        return;
    }
    if (cred.uid != d->euid && cred.uid != 0) {
        dlog_limited(d, &d->log_rl, DEXT_LOG_WARNING, "refused pid %d: uid "
                     "%u is neither ours (%u) nor root", (int)cred.pid,
                     (unsigned)cred.uid, (unsigned)d->euid);
        send_refusal(fd, kIOReturnNotPermitted);
        close(fd);
        return;
    }
    pthread_mutex_lock(&d->lock);
    why = channel_admit_locked(d, &cred);
    pthread_mutex_unlock(&d->lock);
    if (why != NULL) {
        refuse(d, fd, cred.pid, kIOReturnNoResources, why);
        return;
    }
    pidfd = peer_pidfd(d, fd, cred.pid);
    if (pidfd < 0) {
        char why_buf[64];

        /* Fail closed: a session we cannot bind to its process is none. */
        snprintf(why_buf, sizeof(why_buf), "no pidfd: %s", strerror(-pidfd));
        refuse(d, fd, cred.pid, pidfd == -ESRCH ? kIOReturnNotAttached
                                                : kIOReturnNoResources,
               why_buf);
        channel_unadmit(d);
        return;
    }
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        close(pidfd);
        refuse(d, fd, cred.pid, kIOReturnNoMemory, "out of memory");
        channel_unadmit(d);
        return;
    }
    ch->d = d;
    ch->fd = fd;
    ch->pid = cred.pid;
    ch->uid = cred.uid;
    ch->pidfd = pidfd;
    ch->sender = -1;
    /* Every message then says which process sent it (sender_may_name_memory). */
    {
        int on = 1;

        (void)setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
    }
    ch->hello_deadline = now_ms() + d->handshake_ms;

    pthread_mutex_lock(&d->lock);
    ch->next = d->channels;
    d->channels = ch;
    pthread_mutex_unlock(&d->lock);

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, DEXTD_THREAD_STACK);
    rc = pthread_create(&ch->thread, &attr, channel_thread, ch);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        char why_buf[64];

        pthread_mutex_lock(&d->lock);
        d->channels = ch->next;     /* only main adds, so still the head */
        pthread_mutex_unlock(&d->lock);
        close(pidfd);
        free(ch);
        snprintf(why_buf, sizeof(why_buf), "no thread: %s", strerror(rc));
        refuse(d, fd, cred.pid, kIOReturnNoResources, why_buf);
        channel_unadmit(d);
        return;
    }
    dlog(d, DEXT_LOG_DEBUG, "pid %d uid %u: channel accepted", (int)cred.pid,
         (unsigned)cred.uid);
}

/* Join and free the channels whose threads have finished. */
static void reap_channels(Daemon *d)
{
    Channel *dead = NULL;
    Channel **pp;
    Channel *ch;
    eventfd_t v;

    (void)eventfd_read(d->reap_fd, &v);
    pthread_mutex_lock(&d->lock);
    pp = &d->channels;
    while ((ch = *pp) != NULL) {
        if (ch->done) {
            *pp = ch->next;
            ch->next = dead;
            dead = ch;
        } else {
            pp = &ch->next;
        }
    }
    pthread_mutex_unlock(&d->lock);
    while ((ch = dead) != NULL) {
        dead = ch->next;
        pthread_join(ch->thread, NULL);
        free(ch);
    }
}

static void shutdown_channels(Daemon *d)
{
    Channel *ch;

    /* Wake every channel thread out of its recvmsg (or a stuck send). */
    pthread_mutex_lock(&d->lock);
    for (ch = d->channels; ch != NULL; ch = ch->next) {
        if (ch->fd >= 0) {
            shutdown(ch->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&d->lock);
    /* Threads never unlink themselves, so the list is stable here. */
    while ((ch = d->channels) != NULL) {
        d->channels = ch->next;
        pthread_join(ch->thread, NULL);
        free(ch);
    }
}

/*
 * Shutdown joins every channel thread and then stops the devices' engines.
 * A thread blocked on a client's page that never arrives (userfaultfd)
 * would make that wait last for ever, so a watchdog ends the process
 * after DEXTD_SHUTDOWN_GRACE_S anyway, leaving what those threads hold to
 * the kernel.  The socket is gone by then: no client can notice.
 */
#define DEXTD_SHUTDOWN_GRACE_S 10

static void *shutdown_watchdog(void *opaque)
{
    Daemon *d = opaque;

    sleep(DEXTD_SHUTDOWN_GRACE_S);
    dlog(d, DEXT_LOG_WARNING, "shutdown still waits after %d s for threads "
         "held by a client's memory; exiting without them",
         DEXTD_SHUTDOWN_GRACE_S);
    _exit(d->exit_status);
}

static void start_shutdown_watchdog(Daemon *d, int status)
{
    pthread_attr_t attr;
    pthread_t t;

    d->exit_status = status;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, shutdown_watchdog, d) != 0) {
        dlog(d, DEXT_LOG_WARNING, "no shutdown watchdog: a stalled client "
             "could delay exit");
    }
    pthread_attr_destroy(&attr);
}

/* Is a daemon answering at @sa? */
static bool socket_is_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool live;

    if (fd < 0) {
        return false;
    }
    live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    close(fd);
    return live;
}

static int bind_listen(int fd, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    mode_t old;
    int rc;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    /* Never world-accessible, not even between bind() and chmod(). */
    old = umask(077);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0) {
        return -1;
    }
    if (chmod(path, 0600) < 0 || listen(fd, DEXTD_BACKLOG) < 0) {
        int saved = errno;

        unlink(path);
        errno = saved;
        return -1;
    }
    return 0;
}

/*
 * A directory others may write to, without the sticky bit, lets them
 * remove our socket and put their own in its place.  Clients refuse a
 * daemon that is neither root nor their own user, so the harm is denial
 * of service, not impersonation; say so, once, at start.
 */
static void warn_unsafe_dir(Daemon *d)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const char *slash = strrchr(d->path, '/');
    struct stat st;

    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == d->path) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - d->path), d->path);
    }
    if (stat(dir, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) &&
        !(st.st_mode & S_ISVTX)) {
        dlog(d, DEXT_LOG_WARNING, "%s is writable by other users and not "
             "sticky: they can remove or replace this socket", dir);
    }
}

static int listen_setup(Daemon *d)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char tmp[sizeof(sa.sun_path)];
    struct stat st;
    int fd;

    if (strlen(d->path) == 0 || strlen(d->path) >= sizeof(sa.sun_path)) {
        dlog(d, DEXT_LOG_ERROR, "socket path '%s' is empty or too long",
             d->path);
        return -1;
    }
    memcpy(sa.sun_path, d->path, strlen(d->path) + 1);
    if (socket_is_live(&sa)) {
        dlog(d, DEXT_LOG_ERROR, "another dextd is serving %s", d->path);
        return -1;
    }
    if (lstat(d->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            dlog(d, DEXT_LOG_ERROR, "%s exists and is not a socket", d->path);
            return -1;
        }
        dlog(d, DEXT_LOG_INFO, "removing stale socket %s", d->path);
        unlink(d->path);
    }

    warn_unsafe_dir(d);

    /* Non-blocking: a connection gone before accept() must not hang it. */
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        dlog(d, DEXT_LOG_ERROR, "socket: %s", strerror(errno));
        return -1;
    }
    /*
     * Listen under a private name and link it into place, so the path
     * appears only once it accepts and never replaces a rival's socket.
     */
    if (snprintf(tmp, sizeof(tmp), "%s.%d", d->path, (int)getpid()) <
        (int)sizeof(tmp)) {
        unlink(tmp);
        if (bind_listen(fd, tmp) < 0) {
            dlog(d, DEXT_LOG_ERROR, "bind %s: %s", tmp, strerror(errno));
            close(fd);
            return -1;
        }
        if (link(tmp, d->path) < 0) {
            dlog(d, DEXT_LOG_ERROR, "%s: %s", d->path,
                 errno == EEXIST ? "another dextd started meanwhile"
                                 : strerror(errno));
            unlink(tmp);
            close(fd);
            return -1;
        }
        unlink(tmp);
    } else if (bind_listen(fd, d->path) < 0) {
        dlog(d, DEXT_LOG_ERROR, "bind %s: %s", d->path, strerror(errno));
        close(fd);
        return -1;
    }
    if (stat(d->path, &st) == 0) {
        d->sock_dev = st.st_dev;
        d->sock_ino = st.st_ino;
    }
    d->listen_fd = fd;
    return 0;
}

/* Remove our socket, unless someone has put another in its place. */
static void listen_cleanup(Daemon *d)
{
    struct stat st;

    if (d->listen_fd < 0) {
        return;
    }
    if (stat(d->path, &st) == 0 && st.st_dev == d->sock_dev &&
        st.st_ino == d->sock_ino) {
        unlink(d->path);
    }
    close(d->listen_fd);
    d->listen_fd = -1;
}

/* ---------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: dextd [OPTION]...\n"
            "Serve the VFIOUserPCIDriver user-client contract on a UNIX "
            "socket.\n\n"
            "  -s, --socket PATH       listen on PATH (default: $DEXT_SOCKET,"
            " else\n"
            "                          /run/dextd.sock for root, else\n"
            "                          $XDG_RUNTIME_DIR/dextd.sock, else\n"
            "                          /tmp/dextd-UID.sock)\n"
            "  -d, --device SPEC       serve a device, e.g. edu,"
            " edu,dma_mask=0xffffffff,\n"
            "                          edu,bdf=00:04.0 (repeatable;"
            " default: edu)\n"
            "  -H, --host BDF|all      serve a real PCI function of this"
            " machine, read-only\n"
            "                          (repeatable; all = every function in"
            " sysfs)\n"
            "      --allow-writes BDF  let clients write to that host"
            " function: config\n"
            "                          writes, MMIO, BAR mapping, reset"
            " (repeatable)\n"
            "  -l, --log-level LEVEL   error, warning, info (default) or"
            " debug\n"
            "      --contract-only     answer as the real dext today:"
            " Unsupported for\n"
            "                          extension selectors (>= 64) and the"
            " interrupt page\n"
            "      --dma-share PERCENT the most of a device's bus space one"
            " client process\n"
            "                          may hold with DMA regions and buffers"
            " (default 50)\n"
            "      --unclaimed-writes  the real dext's access model: clients"
            " without a\n"
            "                          claim may write config space and"
            " MMIO, map BARs\n"
            "                          writable and terminate (default: they"
            " may only read)\n"
            "      --handshake-timeout SECONDS\n"
            "                          close a connection that has not said"
            " HELLO by then\n"
            "                          (default: 5)\n"
            "  -h, --help              show this help\n"
            "  -V, --version           show the version\n");
}

/*
 * Every channel is an fd and every wake port another; the usual soft
 * limit of 1024 would run out before the channel cap does.
 */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* What serving the devices of one spec needs to know and count. */
typedef struct ServeState {
    Daemon *d;
    const char *spec;
    uint8_t (*allow)[3];        /* --allow-writes bus, device, function */
    bool *allow_used;
    int nallow;
    bool sink_failed;
    uint32_t served;
} ServeState;

/* dext_device_create_each()'s sink: serve one device. */
static IOReturn serve_device(void *opaque, DextDevice *dev)
{
    ServeState *ss = opaque;
    char name[sizeof(dev->name)];
    uint64_t id;
    IOReturn ret;
    int i;

    /* Only the operator, naming the device, lets writes reach hardware. */
    for (i = 0; i < ss->nallow; i++) {
        if (dev->hardware &&
            ss->allow[i][0] == dev->bus && ss->allow[i][1] == dev->dev &&
            ss->allow[i][2] == dev->fn) {
            dev->allow_writes = true;
            ss->allow_used[i] = true;
            dlog(ss->d, DEXT_LOG_WARNING, "%s: writes allowed: clients may "
                 "change its config space and registers and reset it",
                 dev->name);
        }
    }
    memcpy(name, dev->name, sizeof(name));
    ret = dext_core_add_device(ss->d->core, dev, &id);
    if (ret == kIOReturnUnsupported) {
        /* The dext refuses multimedia functions; so do we, quietly. */
        dlog(ss->d, DEXT_LOG_WARNING, "device '%s' (%s) not served", ss->spec,
             name);
        return kIOReturnSuccess;
    }
    if (ret != kIOReturnSuccess) {
        dlog(ss->d, DEXT_LOG_ERROR, "device '%s' (%s): cannot serve (0x%08x)",
             ss->spec, name, (unsigned)ret);
        ss->sink_failed = true;
        return ret;
    }
    dlog(ss->d, DEXT_LOG_DEBUG, "device '%s' (%s) is service 0x%llx",
         ss->spec, name, (unsigned long long)id);
    ss->served++;
    return kIOReturnSuccess;
}

/* Why a device spec could not be turned into devices, for the log. */
static const char *create_error_reason(IOReturn ret)
{
    switch (ret) {
    case kIOReturnNotFound:
        return "no such device (unknown backend, or no such PCI function "
               "in sysfs)";
    case kIOReturnBadArgument:
        return "malformed spec or option";
    case kIOReturnNotPrivileged:
        return "permission denied";
    case kIOReturnNoDevice:
        return "the function reads as all ones (gone or powered off)";
    default:
        return "cannot create";
    }
}

static int parse_level(const char *s)
{
    if (strcmp(s, "error") == 0) {
        return DEXT_LOG_ERROR;
    }
    if (strcmp(s, "warning") == 0 || strcmp(s, "warn") == 0) {
        return DEXT_LOG_WARNING;
    }
    if (strcmp(s, "info") == 0) {
        return DEXT_LOG_INFO;
    }
    if (strcmp(s, "debug") == 0) {
        return DEXT_LOG_DEBUG;
    }
    return -1;
}

static int serve(Daemon *d)
{
    struct pollfd pfd[3];
    struct signalfd_siginfo si;

    for (;;) {
        int timeout = -1;
        nfds_t n = 3;

        /* While accepting is paused, the listening socket sits out. */
        if (d->accept_paused) {
            uint64_t now = now_ms();

            if (now < d->accept_resume) {
                timeout = (int)(d->accept_resume - now);
                n = 2;
            } else {
                d->accept_paused = false;
            }
        }
        pfd[0] = (struct pollfd){ .fd = d->sig_fd, .events = POLLIN };
        pfd[1] = (struct pollfd){ .fd = d->reap_fd, .events = POLLIN };
        pfd[2] = (struct pollfd){ .fd = d->listen_fd, .events = POLLIN };
        if (poll(pfd, n, timeout) < 0) {
            if (errno == EINTR) {
                continue;
            }
            dlog(d, DEXT_LOG_ERROR, "poll: %s", strerror(errno));
            return 1;
        }
        if (pfd[0].revents & POLLIN) {
            if (read(d->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                dlog(d, DEXT_LOG_INFO, "%s, shutting down",
                     strsignal((int)si.ssi_signo));
                return 0;
            }
        }
        if (pfd[1].revents & POLLIN) {
            reap_channels(d);
            d->accept_paused = false;   /* a channel gave its fds back */
        }
        if (n == 3 && (pfd[2].revents & POLLIN)) {
            accept_one(d);
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "device", required_argument, NULL, 'd' },
        { "host", required_argument, NULL, 'H' },
        { "allow-writes", required_argument, NULL, 'W' },
        { "log-level", required_argument, NULL, 'l' },
        { "contract-only", no_argument, NULL, 'C' },
        { "dma-share", required_argument, NULL, 'S' },
        { "unclaimed-writes", no_argument, NULL, 'U' },
        { "handshake-timeout", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    Daemon d = {
        .log_level = DEXT_LOG_INFO,
        .listen_fd = -1,
        .sig_fd = -1,
        .reap_fd = -1,
        .spare_fd = -1,
        .handshake_ms = DEXTD_HANDSHAKE_S * 1000,
    };
    const char **specs;
    int nspecs = 0;
    char (*host_specs)[48];
    int nhost = 0;
    ServeState ss = { .d = &d };
    sigset_t mask;
    bool contract_only = false;
    unsigned long dma_share = DEXT_DMA_SHARE_DEFAULT;
    unsigned policy = 0;
    int status = 1;
    int opt;
    int i;

    specs = calloc((size_t)argc + 1, sizeof(*specs));
    host_specs = calloc((size_t)argc + 1, sizeof(*host_specs));
    ss.allow = calloc((size_t)argc + 1, sizeof(*ss.allow));
    ss.allow_used = calloc((size_t)argc + 1, sizeof(*ss.allow_used));
    if (specs == NULL || host_specs == NULL || ss.allow == NULL ||
        ss.allow_used == NULL) {
        return 1;
    }
    while ((opt = getopt_long(argc, argv, "s:d:H:l:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            d.path = optarg;
            break;
        case 'd':
            specs[nspecs++] = optarg;
            break;
        case 'H': {
            uint8_t b, dv, f;

            if (strcmp(optarg, "all") == 0) {
                snprintf(host_specs[nhost], sizeof(host_specs[0]), "host");
            } else if (dext_parse_bdf(optarg, &b, &dv, &f)) {
                snprintf(host_specs[nhost], sizeof(host_specs[0]),
                         "host,bdf=%02x:%02x.%x", b, dv, f);
            } else {
                fprintf(stderr, "dextd: --host '%s': expected BB:DD.F, "
                        "0000:BB:DD.F or all (only domain 0000 is served)\n",
                        optarg);
                goto usage_error;
            }
            specs[nspecs++] = host_specs[nhost++];
            break;
        }
        case 'W':
            if (!dext_parse_bdf(optarg, &ss.allow[ss.nallow][0],
                                       &ss.allow[ss.nallow][1],
                                       &ss.allow[ss.nallow][2])) {
                fprintf(stderr, "dextd: --allow-writes '%s': expected one "
                        "device, BB:DD.F or 0000:BB:DD.F\n", optarg);
                goto usage_error;
            }
            ss.nallow++;
            break;
        case 'l':
            d.log_level = parse_level(optarg);
            if (d.log_level < 0) {
                fprintf(stderr, "dextd: unknown log level '%s'\n", optarg);
                goto usage_error;
            }
            break;
        case 'C':
            contract_only = true;
            break;
        case 'S': {
            char *end;

            errno = 0;
            dma_share = strtoul(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' ||
                dma_share < 1 || dma_share > 100) {
                fprintf(stderr, "dextd: --dma-share '%s': expected a percent, "
                        "1 to 100\n", optarg);
                goto usage_error;
            }
            break;
        }
        case 'U':
            policy |= DEXT_POLICY_UNCLAIMED_WRITES;
            break;
        case 'T': {
            char *end;
            unsigned long v;

            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || v == 0 ||
                v > 3600 || optarg[0] == '-') {
                fprintf(stderr, "dextd: --handshake-timeout '%s': expected "
                        "1 to 3600 seconds\n", optarg);
                goto usage_error;
            }
            d.handshake_ms = (unsigned)v * 1000;
            break;
        }
        case 'h':
            usage(stdout);
            status = 0;
            goto early_exit;
        case 'V':
            printf("dextd (libdext) %s\n", LIBDEXT_VERSION_STRING);
            status = 0;
            goto early_exit;
        default:
            usage(stderr);
            goto usage_error;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dextd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        goto usage_error;
    }
    if (nhost > 0 && geteuid() != 0) {
        fprintf(stderr, "dextd: warning: not running as root: host devices "
                "show only the first 64 bytes of config space\n");
    }
    if (nspecs == 0) {
        specs[nspecs++] = "edu";
    }
    if (d.path == NULL) {
        /* Honours $DEXT_SOCKET first. */
        d.path = dext_wire_default_socket_path();
    }
    d.euid = geteuid();
    clock_gettime(CLOCK_MONOTONIC, &d.start);
    raise_fd_limit();
    pthread_mutex_init(&d.lock, NULL);

    /*
     * Blocked before any thread exists, so every thread inherits the
     * mask and the signals arrive only through the signalfd.
     */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    d.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    d.reap_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d.sig_fd < 0 || d.reap_fd < 0) {
        dlog(&d, DEXT_LOG_ERROR, "signalfd/eventfd: %s", strerror(errno));
        goto out;
    }

    /* Checked again when binding; this just fails fast, before devices. */
    {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (strlen(d.path) < sizeof(sa.sun_path)) {
            memcpy(sa.sun_path, d.path, strlen(d.path) + 1);
            if (socket_is_live(&sa)) {
                dlog(&d, DEXT_LOG_ERROR, "another dextd is serving %s",
                     d.path);
                goto out;
            }
        }
    }

    d.core = dext_core_new(daemon_log, &d);
    if (d.core == NULL) {
        dlog(&d, DEXT_LOG_ERROR, "cannot create the dext core");
        goto out;
    }
    dext_core_set_contract_only(d.core, contract_only);
    dext_core_set_dma_share(d.core, (uint32_t)dma_share);
    dext_core_set_policy(d.core, policy);
    if (policy & DEXT_POLICY_UNCLAIMED_WRITES) {
        dlog(&d, DEXT_LOG_WARNING, "--unclaimed-writes: clients that have "
             "not claimed a device may write its config space and "
             "registers, map its BARs writable and terminate it; through "
             "the device's DMA they can read and overwrite the memory "
             "every claimer registered");
    }
    for (i = 0; i < nspecs; i++) {
        IOReturn ret;

        /* One spec may name several devices (--host all). */
        ss.spec = specs[i];
        ret = dext_device_create_each(specs[i], serve_device, &ss);
        if (ret != kIOReturnSuccess) {
            if (!ss.sink_failed) {
                dlog(&d, DEXT_LOG_ERROR, "device '%s': %s (0x%08x)", specs[i],
                     create_error_reason(ret), (unsigned)ret);
            }
            goto out;
        }
    }
    for (i = 0; i < ss.nallow; i++) {
        if (!ss.allow_used[i]) {
            dlog(&d, DEXT_LOG_ERROR, "--allow-writes %02x:%02x.%x: no host "
                 "device at that address is served (add --host %02x:%02x.%x)",
                 ss.allow[i][0], ss.allow[i][1], ss.allow[i][2],
                 ss.allow[i][0], ss.allow[i][1], ss.allow[i][2]);
            goto out;
        }
    }

    /* Kept to be let go of, to answer a client if fds ever run out. */
    d.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (listen_setup(&d) < 0 || fd_budget_setup(&d, ss.served) < 0) {
        goto out;
    }
    if (d.log_level >= DEXT_LOG_INFO) {
        fprintf(stderr, "dextd: serving %u device(s) on %s\n", ss.served,
                d.path);
        fflush(stderr);
    }
    status = serve(&d);

    /* Stop accepting first, so no channel appears behind our back. */
    listen_cleanup(&d);
    start_shutdown_watchdog(&d, status);
    shutdown_channels(&d);

out:
    listen_cleanup(&d);
    dext_core_free(d.core);
    if (d.sig_fd >= 0) {
        close(d.sig_fd);
    }
    if (d.reap_fd >= 0) {
        close(d.reap_fd);
    }
    if (d.spare_fd >= 0) {
        close(d.spare_fd);
    }
    pthread_mutex_destroy(&d.lock);
    free(specs);
    free(host_specs);
    free(ss.allow);
    free(ss.allow_used);
    return status;

usage_error:
    status = 2;
early_exit:
    free(specs);
    free(host_specs);
    free(ss.allow);
    free(ss.allow_used);
    return status;
}
