/*
 * SPDX-License-Identifier: MIT
 *
 * Channel I/O of the unix transport (transport/sock-channel.h): connect,
 * the peer check and HELLO, one message each way, one round trip.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "support/fds.h"
#include "protocol/dext-ring.h"
#include "support/log.h"
#include "support/sock-io.h"
#include "transport/sock-channel.h"

/* A timeout in ms from @s (the whole of it); false if it is not one. */
static bool parse_ms(const char *s, size_t len, int *out)
{
    unsigned long v = 0;
    size_t i;

    if (len == 0 || len > 9) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    *out = (int)v;
    return true;
}

/* apple_dext_set_timeouts()'s, or -1 where unset (atomic). */
static int api_call_ms = -1;
static int api_connect_ms = -1;

void dext_unix_set_default_timeouts(int call_ms, int connect_ms)
{
    __atomic_store_n(&api_call_ms, call_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&api_connect_ms, connect_ms, __ATOMIC_RELAXED);
}

/* The API's setting @api, else $@name as a timeout, else @dflt. */
static int default_ms(const int *api, const char *name, int dflt)
{
    int set = __atomic_load_n(api, __ATOMIC_RELAXED);
    const char *v = getenv(name);
    int ms;

    if (set >= 0) {
        return set;
    }
    return v != NULL && parse_ms(v, strlen(v), &ms) ? ms : dflt;
}

/* A polled ring's spin budget in us from @s; false unless in bounds. */
static bool parse_poll_us(const char *s, size_t len, int *out)
{
    int us;

    if (!parse_ms(s, len, &us) || us < 1 || us > DEXT_RING_SPIN_MAX_US) {
        return false;
    }
    *out = us;
    return true;
}

IOReturn dext_unix_resolve_path(const char *arg, UnixTarget *t)
{
    static const char call_opt[] = ",timeout=";
    static const char conn_opt[] = ",connect-timeout=";
    static const char poll_opt[] = ",poll=";
    const char *path = arg != NULL ? arg : "";
    const char *env = getenv("DEXT_POLL_US");
    size_t len = strlen(path);
    const char *comma;

    t->call_ms = default_ms(&api_call_ms, "DEXT_TIMEOUT_MS",
                            UNIX_DEFAULT_CALL_TIMEOUT_MS);
    t->connect_ms = default_ms(&api_connect_ms, "DEXT_CONNECT_TIMEOUT_MS",
                               UNIX_DEFAULT_CONNECT_TIMEOUT_MS);
    if (env == NULL || !parse_poll_us(env, strlen(env), &t->poll_us)) {
        t->poll_us = 0;
    }
    /* Trailing options, last first; the first one given wins ties. */
    while ((comma = memrchr(path, ',', len)) != NULL) {
        size_t rest = len - (size_t)(comma - path);
        const char *opt = NULL;
        int *dst = NULL;

        if (rest == strlen(",poll") && memcmp(comma, ",poll", rest) == 0) {
            t->poll_us = DEXT_RING_SPIN_DEFAULT_US;
            len = (size_t)(comma - path);
            continue;
        }
        if (rest > strlen(poll_opt) &&
            memcmp(comma, poll_opt, strlen(poll_opt)) == 0) {
            if (!parse_poll_us(comma + strlen(poll_opt),
                               rest - strlen(poll_opt), &t->poll_us)) {
                return kIOReturnBadArgument;
            }
            len = (size_t)(comma - path);
            continue;
        }
        if (rest > strlen(call_opt) &&
            memcmp(comma, call_opt, strlen(call_opt)) == 0) {
            opt = call_opt;
            dst = &t->call_ms;
        } else if (rest > strlen(conn_opt) &&
                   memcmp(comma, conn_opt, strlen(conn_opt)) == 0) {
            opt = conn_opt;
            dst = &t->connect_ms;
        } else {
            break;
        }
        if (!parse_ms(comma + strlen(opt), rest - strlen(opt), dst)) {
            return kIOReturnBadArgument;
        }
        len = (size_t)(comma - path);
    }
    if (len == 0) {
        path = dext_wire_default_socket_path();
        len = strlen(path);
    }
    if (len == 0 || len >= sizeof(t->sa.sun_path)) {
        return kIOReturnBadArgument;
    }
    memset(&t->sa, 0, sizeof(t->sa));
    t->sa.sun_family = AF_UNIX;
    memcpy(t->sa.sun_path, path, len);
    t->sa.sun_path[len] = '\0';
    return kIOReturnSuccess;
}

/* Bound every blocking send, receive and connect on @fd by @ms (0: none). */
static void set_timeouts(int fd, int ms)
{
    struct timeval tv = { .tv_sec = ms / 1000,
                          .tv_usec = (ms % 1000) * 1000 };

    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

void dext_unix_channel_use_call_timeout(UnixChannel *ch)
{
    set_timeouts(ch->fd, ch->call_ms);
}

/* Wait for an interrupted connect() to finish, as connect(2) advises. */
static int connect_finish(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    socklen_t len = sizeof(int);
    int err = 0;

    while (poll(&pfd, 1, -1) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        return -1;
    }
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* The symbolic name of the errnos a connect() to dextd meets. */
static const char *errno_name(int err)
{
    switch (err) {
    case ENOENT: return "ENOENT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOTSOCK: return "ENOTSOCK";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOTDIR: return "ENOTDIR";
    case EPROTOTYPE: return "EPROTOTYPE";
    case EAGAIN: return "EAGAIN";
    default: return "errno";
    }
}

static bool is_socket(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/*
 * Say why connect() to @path failed, keeping errno's cause: the IOReturn
 * code (NotResponding, NotPermitted, Timeout) cannot carry it.
 */
static void log_connect_error(const char *path, int err)
{
    const char *why = "";

    switch (err) {
    case ENOENT:
        why = ": no such socket (is dextd running, with this --socket?)";
        break;
    case ECONNREFUSED:
        why = is_socket(path) ?
              ": nobody listens there (a stale socket: dextd is gone)" :
              ": it is not a socket (not dextd's)";
        break;
    case ENOTSOCK:
    case EPROTOTYPE:
        why = ": not dextd's socket";
        break;
    case EACCES:
    case EPERM:
        why = ": this user may not reach it (the socket's mode, or a "
              "directory on its path)";
        break;
    case EAGAIN:
        why = ": dextd is not accepting connections (stopped or "
              "overloaded: the connect timeout passed)";
        break;
    }
    dext_log(DEXT_LOG_WARNING, "cannot connect to dextd's socket %s: %s "
             "(%s)%s", path, strerror(err), errno_name(err), why);
}

void dext_unix_channel_free(UnixChannel *ch)
{
    if (ch != NULL) {
        if (ch->fd >= 0) {
            close(ch->fd);
        }
        free(ch);
    }
}

/*
 * Finish a receive that returned @n: a reset peer may still have queued
 * a refusal behind the reset (see below).  @fds may be NULL when the
 * caller takes none; any that arrive then are closed.
 */
static ssize_t recv_result(UnixChannel *ch, ssize_t n, int flags, int *fds,
                           int *nfds, bool *trunc)
{
    int spare[UNIX_MAX_FDS];

    if (n < 0 && errno == ECONNRESET) {
        /*
         * dextd refuses a peer by sending ERROR and closing; if our HELLO
         * was still unread there, the kernel reports the reset first but
         * the ERROR is still queued behind it.  Read it, so a refusal is
         * reported as itself and not as a dead daemon.
         */
        n = dext_wire_recvmsg(ch->fd, ch->rx, sizeof(ch->rx),
                              flags | MSG_DONTWAIT, fds ? fds : spare,
                              UNIX_MAX_FDS, nfds, trunc);
        if (fds == NULL) {
            dext_close_fds(spare, *nfds);
            *nfds = 0;
        }
        return n > 0 ? n : 0;
    }
    if (n < 0) {
        return errno == ENOTCONN ? 0 : -1;
    }
    return n;
}

ssize_t dext_unix_channel_recv(UnixChannel *ch, int flags, int *fds,
                               int *nfds, bool *trunc)
{
    ssize_t n = dext_wire_recvmsg(ch->fd, ch->rx, sizeof(ch->rx), flags, fds,
                                  fds ? UNIX_MAX_FDS : 0, nfds, trunc);

    return recv_result(ch, n, flags, fds, nfds, trunc);
}

/*
 * dext_unix_channel_recv() for a reply that may not carry an fd (every
 * CALL): a plain recv() skips the msghdr and control-message work of
 * recvmsg(), a measurable part of a round trip.  An fd a faulty daemon
 * attaches anyway is never installed in our table: without a control
 * buffer the kernel drops it.  MSG_TRUNC makes recv() report the full
 * length, so truncation is still seen.
 */
static ssize_t recv_nofd(UnixChannel *ch, int *nfds, bool *trunc)
{
    ssize_t n = dext_sock_recv(ch->fd, ch->rx, sizeof(ch->rx), MSG_TRUNC);

    *nfds = 0;
    *trunc = n > (ssize_t)sizeof(ch->rx);
    if (*trunc) {
        n = sizeof(ch->rx);
    }
    return recv_result(ch, n, 0, NULL, nfds, trunc);
}

IOReturn dext_unix_reply_check(const uint8_t *buf, size_t n, uint64_t seq,
                               uint16_t type, uint16_t version,
                               DextWireHeader *h)
{
    IOReturn ret;

    if (dext_wire_decode_header(buf, n, h) != 0) {
        return kIOReturnIPCError;
    }
    if (h->type == DEXT_WIRE_ERROR) {
        if ((h->seq != seq && h->seq != 0) ||
            dext_wire_decode_status_only(buf + DEXT_WIRE_HEADER_SIZE,
                                         h->length, &ret) != 0 ||
            ret == kIOReturnSuccess) {
            return kIOReturnIPCError;
        }
        return ret;
    }
    if (h->type != type || h->seq != seq || h->version != version ||
        !(h->flags & DEXT_WIRE_FLAG_REPLY)) {
        return kIOReturnIPCError;
    }
    return kIOReturnSuccess;
}

IOReturn dext_unix_channel_roundtrip(UnixChannel *ch, int len, int send_fd,
                                     uint16_t type, DextWireHeader *h,
                                     int *recv_fd)
{
    uint16_t want_version = type == DEXT_WIRE_HELLO ?
                            DEXT_WIRE_VERSION_HELLO : ch->version;
    int fds[UNIX_MAX_FDS];
    int nfds = 0;
    uint64_t seq;
    bool trunc;
    ssize_t n;
    IOReturn ret;

    if (recv_fd != NULL) {
        *recv_fd = -1;
    }
    if (len < 0) {
        return kIOReturnInternalError;
    }
    seq = dext_wire_peek_seq(ch->tx, (size_t)len);
    ret = dext_wire_send(ch->fd, ch->tx, len, send_fd);
    if (ret == kIOReturnIPCError && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return kIOReturnTimeout;        /* SO_SNDTIMEO: dextd reads nothing */
    }
    if (ret == kIOReturnNotResponding) {
        /*
         * A daemon that refuses us sends an ERROR and closes at once;
         * pick that up rather than reporting a vanished daemon.
         */
        n = dext_unix_channel_recv(ch, MSG_DONTWAIT, fds, &nfds, &trunc);
        dext_close_fds(fds, nfds);
        if (n > 0 && !trunc && dext_wire_decode_header(ch->rx, n, h) == 0 &&
            h->type == DEXT_WIRE_ERROR &&
            dext_wire_decode_status_only(ch->rx + DEXT_WIRE_HEADER_SIZE,
                                         h->length, &ret) == 0 &&
            ret != kIOReturnSuccess) {
            return ret;
        }
        return kIOReturnNotResponding;
    }
    if (ret != kIOReturnSuccess) {
        return ret;
    }

    n = recv_fd != NULL ? dext_unix_channel_recv(ch, 0, fds, &nfds, &trunc)
                        : recv_nofd(ch, &nfds, &trunc);
    if (n == 0) {
        dext_close_fds(fds, nfds);
        return kIOReturnNotResponding;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return kIOReturnTimeout;        /* SO_RCVTIMEO */
    }
    ret = n < 0 || trunc ? kIOReturnIPCError :
          dext_unix_reply_check(ch->rx, (size_t)n, seq, type, want_version,
                                h);
    if (ret != kIOReturnSuccess || nfds > (recv_fd != NULL ? 1 : 0)) {
        dext_close_fds(fds, nfds);
        return ret != kIOReturnSuccess ? ret : kIOReturnIPCError;
    }
    if (nfds == 1) {
        *recv_fd = fds[0];
    }
    return kIOReturnSuccess;
}

IOReturn dext_unix_channel_status(const UnixChannel *ch, IOReturn ret,
                                  const DextWireHeader *h)
{
    IOReturn status;

    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (dext_wire_decode_status_only(dext_unix_channel_payload(ch), h->length,
                                     &status) != 0) {
        return kIOReturnIPCError;
    }
    return status;
}

IOReturn dext_unix_channel_open(const UnixTarget *t, bool lean,
                                UnixChannel **out)
{
    DextWireHello hello = {
        .min_version = DEXT_WIRE_VERSION_MIN,
        .max_version = DEXT_WIRE_VERSION_MAX,
        .features = DEXT_WIRE_FEATURES_V1 | (lean ? DEXT_WIRE_FEAT_LEAN : 0),
    };
    DextWireHelloReply reply;
    DextWireHeader h;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    UnixChannel *ch;
    IOReturn ret;
    int len;

    ch = malloc(sizeof(*ch));
    if (ch == NULL) {
        return kIOReturnNoMemory;
    }
    ch->slot = -1;
    ch->call_ms = t->call_ms;
    ch->seq = 0;
    ch->version = 0;
    ch->lean = false;
    ch->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (ch->fd < 0) {
        free(ch);
        return kIOReturnNoResources;
    }
    /* SO_SNDTIMEO bounds connect() too, on a full backlog. */
    set_timeouts(ch->fd, t->connect_ms);
    if (connect(ch->fd, (const struct sockaddr *)&t->sa, sizeof(t->sa)) < 0 &&
        (errno != EINTR || connect_finish(ch->fd) < 0)) {
        int err = errno;

        log_connect_error(t->sa.sun_path, err);
        ret = (err == EACCES || err == EPERM) ? kIOReturnNotPermitted :
              (err == EAGAIN || err == EWOULDBLOCK) ? kIOReturnTimeout :
              kIOReturnNotResponding;
        dext_unix_channel_free(ch);
        return ret;
    }

    /*
     * Anyone may bind a socket at a predictable path: talk only to a
     * daemon run by root or by ourselves.
     */
    if (getsockopt(ch->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
        dext_unix_channel_free(ch);
        return kIOReturnNotResponding;
    }
    if (cred.uid != 0 && cred.uid != geteuid()) {
        dext_log(DEXT_LOG_WARNING, "the daemon at %s runs as uid %u, "
                 "neither root nor this user (uid %u): not talked to",
                 t->sa.sun_path, (unsigned)cred.uid, (unsigned)geteuid());
        dext_unix_channel_free(ch);
        return kIOReturnNotPermitted;
    }
    ch->peer_pid = cred.pid;

    len = dext_wire_encode_hello(ch->tx, sizeof(ch->tx), ++ch->seq, &hello);
    ret = dext_unix_channel_roundtrip(ch, len, -1, DEXT_WIRE_HELLO, &h, NULL);
    if (ret == kIOReturnSuccess &&
        dext_wire_decode_hello_reply(dext_unix_channel_payload(ch), h.length,
                                     &reply) != 0) {
        ret = kIOReturnIPCError;
    }
    if (ret == kIOReturnSuccess) {
        ret = reply.status;
    }
    if (ret == kIOReturnTimeout) {
        dext_log(DEXT_LOG_WARNING, "dextd at %s did not answer within %d ms "
                 "(stopped or overloaded?)", t->sa.sun_path, t->connect_ms);
    }
    if (ret == kIOReturnSuccess &&
        (reply.version < DEXT_WIRE_VERSION_MIN ||
         reply.version > DEXT_WIRE_VERSION_MAX)) {
        ret = kIOReturnIPCError;
    }
    if (ret != kIOReturnSuccess) {
        dext_unix_channel_free(ch);
        return ret;
    }
    ch->version = reply.version;
    ch->lean = lean && (reply.features & DEXT_WIRE_FEAT_LEAN);
    *out = ch;
    return kIOReturnSuccess;
}

IOReturn dext_unix_channel_connect(const char *arg, UnixChannel **out)
{
    UnixTarget t;
    IOReturn ret = dext_unix_resolve_path(arg, &t);

    return ret == kIOReturnSuccess ? dext_unix_channel_open(&t, true, out)
                                   : ret;
}

IOReturn dext_unix_channel_attach(const UnixTarget *t,
                                  const uint8_t *token, bool lean,
                                  UnixChannel **out)
{
    DextWireAttach m;
    DextWireHeader h;
    UnixChannel *ch;
    IOReturn ret;
    int len;

    ret = dext_unix_channel_open(t, lean, &ch);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    memcpy(m.token, token, DEXT_WIRE_TOKEN_SIZE);
    len = dext_wire_encode_attach(ch->tx, sizeof(ch->tx), ch->version,
                                  ++ch->seq, &m);
    memset(&m, 0, sizeof(m));
    ret = dext_unix_channel_roundtrip(ch, len, -1, DEXT_WIRE_ATTACH, &h, NULL);
    /* The token must not linger in a buffer we keep. */
    memset(ch->tx, 0, DEXT_WIRE_HEADER_SIZE + DEXT_WIRE_ATTACH_SIZE);
    ret = dext_unix_channel_status(ch, ret, &h);
    if (ret != kIOReturnSuccess) {
        dext_unix_channel_free(ch);
        return ret;
    }
    dext_unix_channel_use_call_timeout(ch);
    *out = ch;
    return kIOReturnSuccess;
}

