/*
 * SPDX-License-Identifier: MIT
 *
 * dextd's internals, shared by its parts.  dextd serves the
 * VFIOUserPCIDriver user-client contract over a UNIX socket
 * (protocol/dext-wire.h, docs/protocol.md), backed by the dext core and
 * its device backends.
 *
 *   main.c       options, usage, serving the devices, main()
 *   listener.c   the listening socket, accept (admission: fd-budget.c),
 *                reaping finished channels, shutdown and its watchdog
 *   channel.c    a channel's thread: receive, handle, send
 *   handlers.c   one handler per request type
 *   session.c    sessions (user clients) and their tokens
 *   wake-port.c  wake ports: what may be one, and sealing it
 *   poll-ring.c  polled call rings: a channel served from shared memory
 *   fd-budget.c  what clients may make dextd hold: the fd budget, and
 *                the caps a channel is admitted under
 *   log.c        the daemon's log, and the rate-limited client lines
 *   systemd.c    socket activation and readiness (libsystemd)
 *
 * The main thread accepts channels and watches for SIGTERM/SIGINT (and
 * SIGHUP, which it only logs); each
 * channel has a thread of its own doing blocking recvmsg -> core call ->
 * sendmsg, so a request costs exactly one receive and one send.  A
 * session (user client) lives while any channel bound to it is open.
 * Clients are never trusted: every field is checked, and a client that
 * misbehaves loses its channel and nothing else.  What clients can make
 * dextd hold is capped (channels per process and per user, a handshake
 * deadline, an fd budget sized from RLIMIT_NOFILE), and what they can
 * make it log is rate-limited.
 */

#ifndef DEXTD_DEXTD_H
#define DEXTD_DEXTD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>

#include "core/dext-core.h"
#include "protocol/dext-wire.h"
#include "support/fds.h"
#include "support/locks.h"
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
/* A polled ring's mapping, charged as one fd while it lives. */
#define DEXTD_RING_FDS      1

/* Polled rings one session may have (each is a channel of its own). */
#define DEXTD_SESSION_RINGS 4
/* The longest we busy-poll a ring for a request before sleeping, in us. */
#define DEXTD_RING_SPIN_MAX_US 10000

/*
 * Locks, outermost first:
 *
 *   Session.port_lock    a session's wake port table; held across
 *                        dext_session_call_async(), so the core's locks
 *                        nest inside it (that call only arms the wake
 *                        port: no client memory, nothing that blocks)
 *   Daemon.lock          channels, sessions and their counts; innermost:
 *                        no other lock is taken, no core call and nothing
 *                        that blocks is made while it is held
 *
 * The two are never held together.  Fields say which lock guards them
 * (DEXT_GUARDED_BY is documentation in C); functions that take a lock
 * are DEXT_EXCLUDES it, those that need it held DEXT_REQUIRES it, and
 * clang's -Wthread-safety (make tsa) checks both.  What is shared
 * without a lock (the log budgets, a warned-once flag) uses GCC's
 * __atomic builtins on plain fields, as the rest of the tree does.
 */

typedef struct Daemon Daemon;

typedef struct WakePort {
    uint32_t id;                /* 0 = free slot */
    int fd;
} WakePort;

/* One user client, shared by the channels bound to it. */
typedef struct Session {
    struct Session *next DEXT_GUARDED_BY(Daemon.lock);  /* .sessions */
    DextSession *cs;
    pid_t pid;                  /* the opener; ATTACH must come from it */
    uid_t uid;
    int pidfd;                  /* the opener's, to tell it from a reuse */
    uint64_t service_id;        /* the device, for the log */
    bool claimed;               /* a Claim succeeded (__atomic) */
    unsigned refs DEXT_GUARDED_BY(Daemon.lock);  /* bound channels */
    uint8_t token[DEXT_WIRE_TOKEN_SIZE];
    DextMutex port_lock;        /* before the core's locks */
    uint32_t next_port DEXT_GUARDED_BY(port_lock);
    WakePort ports[DEXT_WIRE_MAX_PORTS] DEXT_GUARDED_BY(port_lock);
    unsigned rings DEXT_GUARDED_BY(Daemon.lock);    /* polled rings */
    DextRateLimit log_rl;           /* warnings about its channels */
} Session;

typedef struct DextRing DextRing;

typedef struct Channel {
    struct Channel *next;       /* Daemon.channels; only main unlinks */
    Daemon *d;
    int fd DEXT_GUARDED_BY(Daemon.lock);    /* -1 once closed */
    pid_t pid;                  /* the connecting process ... */
    uid_t uid;
    int pidfd;                  /* ... bound by a pidfd taken at accept */
    pthread_t thread;
    bool done DEXT_GUARDED_BY(Daemon.lock);     /* thread finished */
    bool greeted DEXT_GUARDED_BY(Daemon.lock);  /* HELLO answered */
    uint64_t hello_deadline;    /* CLOCK_MONOTONIC ms: HELLO by then */
    uint16_t version;           /* 0 until HELLO */
    bool lean;                  /* HELLO asked for DEXT_WIRE_FEAT_LEAN */
    Session *session;
    DextRing *ring;             /* after RING: served from here, not fd */
    uint64_t ring_spin_ns;      /* how long to poll it before sleeping */
    uint8_t rx[DEXT_WIRE_MAX_MSG];
    uint8_t tx[DEXT_WIRE_MAX_MSG];
    uint8_t sout[DEXT_MAX_STRUCT];
} Channel;

/**
 * struct DextdRequest - one request, as the channel received it
 * @buf: the message
 * @len: its length
 * @fds: the fds that came with it; handle_request() keeps or closes each
 * @nfds: how many
 * @trunc: the message or its fds did not fit (any surplus fds are gone)
 * @sender: the sending process as the kernel vouches for it, or -1
 */
typedef struct DextdRequest {
    const uint8_t *buf;
    size_t len;
    int *fds;
    int nfds;
    bool trunc;
    pid_t sender;
} DextdRequest;

/**
 * struct DextdReply - the reply to one request, for the channel to send
 * @buf: where the handler encodes it
 * @cap: room in @buf (DEXT_WIRE_MAX_MSG)
 * @len: its length; 0 for no reply, negative if encoding failed (the
 *       channel is then dropped)
 * @fd: an fd to pass with it, or -1; whoever sends the reply closes it
 * @secret: @buf holds a session token: wipe it once sent
 */
typedef struct DextdReply {
    uint8_t *buf;
    size_t cap;
    int len;
    int fd;
    bool secret;
} DextdReply;

struct Daemon {
    DextCore *core;
    int log_level;
    const char *path;
    int exit_status;            /* for the shutdown watchdog */
    pthread_t watchdog;
    bool watchdog_on;
    int listen_fd;
    int sig_fd;
    int reap_fd;                /* eventfd: some channel thread finished */
    uid_t euid;
    pid_t pid;                  /* ours: told to clients, and no wake port
                                   may lead back to it */
    struct timespec start;
    dev_t sock_dev;
    ino_t sock_ino;
    bool activated;             /* the socket is systemd's: never unlinked */
    mode_t sock_mode;           /* --socket-mode (default 0600, 0660 with
                                   a group) */
    bool group_set;             /* --socket-group: its members get in */
    gid_t sock_gid;
    bool journal;               /* stderr is the journal: no timestamps */

    unsigned handshake_ms;      /* --handshake-timeout */
    int spare_fd;               /* given up to answer when out of fds */
    bool accept_paused;         /* main thread only */
    uint64_t accept_resume;     /* CLOCK_MONOTONIC ms */
    DextRateLimit log_rl;           /* clients without a session; accept */
    DextRateLimit all_clients_rl;   /* every client-caused line, too */

    /*
     * Polled rings busy-polling at once (atomic), and the most that may:
     * the CPUs less one, at least one (set at start; 0 reads as 1).  A
     * ring that finds no room sleeps on its socket at once, so clients,
     * however many rings they open, cannot make dextd spin on more CPUs.
     */
    unsigned ring_spinners;
    unsigned ring_spinners_max;

    /* Set once at start from RLIMIT_NOFILE. */
    unsigned fd_budget;         /* fds clients may make us hold */
    unsigned max_channels;      /* min(DEXTD_MAX_CHANNELS, the budget) */
    unsigned uid_channels;      /* for one uid other than root */

    /* Innermost: see the lock order above. */
    DextMutex lock;
    Channel *channels DEXT_GUARDED_BY(lock);
    unsigned nchannels DEXT_GUARDED_BY(lock);   /* not yet finished */
    unsigned fd_charged DEXT_GUARDED_BY(lock);  /* of fd_budget */
    Session *sessions DEXT_GUARDED_BY(lock);
};

/**
 * now_ms() - the CLOCK_MONOTONIC time in milliseconds
 *
 * Return: milliseconds since an arbitrary start, never going back.
 */
static inline uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* log.c */

/**
 * daemon_log() - the core's log sink, and the daemon's own
 * @opaque: the Daemon
 * @level: DEXT_LOG_*; lines above the daemon's level are dropped
 * @msg: one line, without newline
 *
 * Writes a timestamped line to stderr.
 *
 * Return: nothing.
 */
void daemon_log(void *opaque, int level, const char *msg);

/**
 * dlog() - log a line of the daemon's own
 * @d: the daemon
 * @level: DEXT_LOG_*
 * @fmt: printf format of the line
 *
 * For lines no client can cause at will; those go through dlog_limited().
 *
 * Return: nothing.
 */
void dlog(Daemon *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * dlog_limited() - log a line a client can trigger, through @rl
 * @d: the daemon
 * @rl: the budget the line is charged to (a session's, or the daemon's
 *      for clients without one)
 * @level: DEXT_LOG_*
 * @fmt: printf format of the line
 *
 * A client must not be able to flood the log: past the burst, lines are
 * counted, and the next one that goes out says how many were dropped.
 * Every line is charged to the daemon-wide budget too.
 *
 * Return: nothing.
 */
void dlog_limited(Daemon *d, DextRateLimit *rl, int level,
                  const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * log_setup() - pick the log's format for where stderr goes
 * @d: the daemon
 *
 * When stderr is the journal ($JOURNAL_STREAM names it), lines carry a
 * syslog priority prefix ("<3>") and no timestamp of their own;
 * otherwise they are timestamped.
 *
 * Return: nothing.
 */
void log_setup(Daemon *d);

/**
 * dlog_plain() - print a line to stderr without timestamp or level
 * @d: the daemon
 * @fmt: printf format of the line
 *
 * For the one line that says dextd is serving: as is on a terminal,
 * with an info priority prefix for the journal.
 *
 * Return: nothing.
 */
void dlog_plain(Daemon *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* systemd.c */

/**
 * systemd_listen_fd() - the listening socket systemd handed over, if any
 * @d: the daemon; its path and socket identity are set from the socket,
 *     and it is marked activated (the socket is never unlinked)
 *
 * Return: the fd; -1 if dextd was not socket-activated (or was built
 * without libsystemd); -2 if what systemd passed is unusable (logged).
 */
int systemd_listen_fd(Daemon *d);

/**
 * systemd_notify() - tell the service manager about our state
 * @state: sd_notify() assignments, e.g. "READY=1"
 *
 * Nothing without $NOTIFY_SOCKET or libsystemd.
 *
 * Return: nothing.
 */
void systemd_notify(const char *state);

/* fd-budget.c */

/**
 * fd_charge() - charge @n fds to the budget
 * @d: the daemon
 * @n: how many fds are about to be held
 *
 * Return: true if charged; false (and nothing charged) if over budget.
 */
bool fd_charge(Daemon *d, unsigned n) DEXT_EXCLUDES(d->lock);

/**
 * fd_release() - give back @n fds, once they are closed
 * @d: the daemon
 * @n: how many fds were closed
 *
 * Return: nothing.
 */
void fd_release(Daemon *d, unsigned n) DEXT_EXCLUDES(d->lock);

/**
 * channel_admit_locked() - may a channel from @cred be accepted?
 * @d: the daemon
 * @cred: the connecting peer
 *
 * Checks the caps: the global one, the fd budget, and per connecting
 * process (DEXTD_PID_PENDING before HELLO, DEXTD_PID_CHANNELS in all) and
 * per user other than root (3/4 of the global cap, so root always has
 * room).  Under Daemon.lock; only the main thread adds channels, so what
 * it counts cannot grow before the channel is added.
 *
 * Return: NULL, with the channel and its fds charged; else why not.
 */
const char *channel_admit_locked(Daemon *d, const struct ucred *cred)
    DEXT_REQUIRES(d->lock);

/**
 * channel_unadmit() - undo channel_admit_locked() for a channel that
 * never started
 * @d: the daemon
 *
 * Return: nothing.
 */
void channel_unadmit(Daemon *d) DEXT_EXCLUDES(d->lock);

/**
 * fd_budget_setup() - size the fd budget from RLIMIT_NOFILE
 * @d: the daemon, its devices served and its socket listening
 * @devices: how many devices are served
 *
 * What is open now stays open; the reserve is for the accept path and
 * internal use; the rest is what clients may make dextd hold.  Called
 * after the soft limit has been raised to the hard one.
 *
 * Return: 0, or -1 if the limit leaves no room for a single client.
 */
int fd_budget_setup(Daemon *d, uint32_t devices);

/**
 * count_open_fds() - how many fds this process has open
 *
 * Return: the count, or -1 if /proc cannot say.
 */
int count_open_fds(void);

/* session.c */

/**
 * session_new() - a session for the user client @cs, opened on @ch
 * @d: the daemon
 * @ch: the channel that opened it; its process becomes the opener
 * @cs: the core's session, owned by the new session from here on
 * @service_id: the device it is a user client of, for the log
 * @out: receives the session, with one reference (@ch's)
 *
 * Every field is set before the session is published (where ATTACH can
 * find it): a channel attached to it reads them on another thread.
 *
 * Return: kIOReturnSuccess; else kIOReturnNoMemory, kIOReturnNoResources
 * (no fd for the pidfd) or kIOReturnInternalError (no random token), and
 * @cs is still the caller's.
 */
IOReturn session_new(Daemon *d, Channel *ch, DextSession *cs,
                     uint64_t service_id, Session **out)
    DEXT_EXCLUDES(d->lock);

/**
 * session_unref() - drop one channel's hold on @s
 * @d: the daemon
 * @s: the session
 *
 * The last one closes the user client and gives its fds back to the
 * budget.
 *
 * Return: nothing.
 */
void session_unref(Daemon *d, Session *s)
    DEXT_EXCLUDES(d->lock, s->port_lock);

/**
 * session_attach() - bind @ch to the session whose token is @token
 * @d: the daemon
 * @ch: a channel without a session
 * @token: DEXT_WIRE_TOKEN_SIZE bytes from an ATTACH
 *
 * Only the opener may attach: the channel's process must be the
 * session's, and both pidfds must say it still lives.
 *
 * Return: kIOReturnSuccess with a reference taken for @ch, else
 * kIOReturnNotPermitted.
 */
IOReturn session_attach(Daemon *d, Channel *ch, const uint8_t *token)
    DEXT_EXCLUDES(d->lock);

/* wake-port.c */

/**
 * wake_port_refusal() - why @fd cannot be a wake port
 * @d: the daemon
 * @fd: an fd a client sent with WAKE_REGISTER
 *
 * The core completes a wait with a send(MSG_DONTWAIT) on it, which
 * nothing the client does to its end can turn into a blocking one: so a
 * message socket (an eventfd would share O_NONBLOCK with the client, who
 * could clear it and fill the counter to wedge a daemon thread), a local
 * one (not a datagram socket of some network), connected, not listening,
 * and not a way back into dextd: a client's own channel as its wake port
 * would keep that channel, and so its session, open for ever.
 *
 * Return: NULL if it may be one, else the reason, for the log.
 */
const char *wake_port_refusal(Daemon *d, int fd);

/**
 * wake_port_seal() - make @fd a port dextd only sends on
 * @fd: a socket wake_port_refusal() accepted
 *
 * Shut for reading, nothing more can be queued on it; then what was
 * queued is discarded, closing the fds in it, so no fd parked in a wake
 * port (a channel to dextd, say) can keep anything open.
 *
 * Return: false if @fd cannot be shut or emptied.
 */
bool wake_port_seal(int fd);

/**
 * wake_ports_init() - a new session's empty wake port table
 * @s: the session
 *
 * Return: nothing.
 */
void wake_ports_init(Session *s);

/**
 * wake_ports_close() - close a finished session's wake ports
 * @s: the session, no longer reachable by any channel
 *
 * Return: how many were closed, to give back to the fd budget.
 */
unsigned wake_ports_close(Session *s) DEXT_EXCLUDES(s->port_lock);

/**
 * wake_port_add() - give a sealed wake port an id in @s
 * @s: the session
 * @fd: the port; the session's on success, still the caller's otherwise
 * @id: receives its id (never 0)
 *
 * Return: kIOReturnSuccess, or kIOReturnNoSpace if every slot is taken.
 */
IOReturn wake_port_add(Session *s, int fd, uint32_t *id)
    DEXT_EXCLUDES(s->port_lock);

/**
 * wake_port_remove() - take wake port @id out of @s
 * @s: the session
 * @id: the port's id, not 0
 *
 * Return: its fd, now the caller's to close and give back, or -1 if @s
 * has no such port.
 */
int wake_port_remove(Session *s, uint32_t id) DEXT_EXCLUDES(s->port_lock);

/**
 * wake_port_call_async() - an asynchronous call that wakes port @id
 * @s: the session
 * @id: the wake port's id
 * @selector: the call's selector
 * @args: its arguments, as for dext_session_call_async()
 * @status: receives the call's result if the port exists
 *
 * The port cannot be unregistered and closed while the core takes its
 * own copy.
 *
 * Return: false if @s has no port @id (nothing called).
 */
bool wake_port_call_async(Session *s, uint32_t id, uint32_t selector,
                          DextCallArgs *args, IOReturn *status)
    DEXT_EXCLUDES(s->port_lock);

/* poll-ring.c */

/**
 * ring_setup() - make @ch a polled ring channel (a RING request)
 * @ch: the channel, bound to a session
 * @spin_us: how long the client asks us to poll before sleeping
 *           (bounded by DEXTD_RING_SPIN_MAX_US)
 * @fd: receives the ring's memfd, size-sealed, for the reply (-1 on
 *      failure); the mapping stays with @ch until ring_release()
 *
 * Charges DEXTD_RING_FDS and one of the session's DEXTD_SESSION_RINGS.
 * The channel thread switches to ring_serve() once the reply is sent.
 *
 * Return: kIOReturnSuccess; kIOReturnStillOpen if @ch has a ring;
 * kIOReturnNoResources at a limit or out of memory or fds.
 */
IOReturn ring_setup(Channel *ch, uint32_t spin_us, int *fd)
    DEXT_EXCLUDES(ch->d->lock);

/**
 * ring_serve() - serve @ch's ring until the client goes or breaks it
 * @ch: a channel after a successful ring_setup() and its reply
 *
 * Return: nothing; the caller ends the channel.
 */
void ring_serve(Channel *ch) DEXT_EXCLUDES(ch->d->lock);

/**
 * ring_release() - unmap @ch's ring (if any) and give back its charges
 * @ch: the channel, still bound to its session
 *
 * Return: nothing.
 */
void ring_release(Channel *ch) DEXT_EXCLUDES(ch->d->lock);

/* handlers.c */

/**
 * handle_request() - handle one request of @ch, on buffers
 * @ch: the channel it came on (its protocol state and session)
 * @req: the request and its fds, which are kept or closed here
 * @rep: where the reply goes: @rep->buf and @rep->cap set, @rep->len 0,
 *       @rep->fd -1 and @rep->secret false on entry
 *
 * No socket I/O: the caller sends @rep (then closes @rep->fd and wipes
 * a secret) whatever is returned.
 *
 * Return: false if the channel must be dropped once the reply is sent.
 */
bool handle_request(Channel *ch, const DextdRequest *req, DextdReply *rep)
    DEXT_EXCLUDES(ch->d->lock);

/**
 * reply_done() - let go of what a sent (or unsent) reply holds
 * @rep: the reply: its fd is closed, a secret in its buffer wiped
 *
 * Return: nothing.
 */
void reply_done(DextdReply *rep);

/* channel.c */

/**
 * channel_thread() - a channel's life: requests until it ends
 * @opaque: the Channel, admitted and linked into Daemon.channels
 *
 * Ends at EOF, on a receive error, when the handshake deadline passes
 * without a HELLO, or when a handler drops the channel; then lets go of
 * the session, closes the channel's fds, marks it done and wakes the
 * main thread to reap it.
 *
 * Return: NULL.
 */
void *channel_thread(void *opaque);

/* listener.c */

/**
 * socket_is_live() - is a daemon answering at @sa?
 * @sa: a socket address
 *
 * Return: true if a connection to it succeeds.
 */
bool socket_is_live(const struct sockaddr_un *sa);

/**
 * listen_setup() - create, bind and listen on the socket at Daemon.path
 * @d: the daemon
 *
 * Refuses to replace a live daemon's socket or anything not a socket;
 * the path appears only once the socket accepts.
 *
 * Return: 0, or -1 (logged).
 */
int listen_setup(Daemon *d);

/**
 * listen_cleanup() - stop listening and remove the socket
 * @d: the daemon
 *
 * The path is left alone if someone has put another socket there.
 * Safe to call twice.
 *
 * Return: nothing.
 */
void listen_cleanup(Daemon *d);

/**
 * serve() - the main thread's loop: accept, reap, wait for a signal
 * @d: the daemon, listening
 *
 * SIGHUP is logged and changes nothing.
 *
 * Return: 0 after SIGTERM or SIGINT, 1 if poll() fails.
 */
int serve(Daemon *d) DEXT_EXCLUDES(d->lock);

/**
 * start_shutdown_watchdog() - end the process if shutdown stalls
 * @d: the daemon
 * @status: the exit status to end with
 *
 * Return: nothing.
 */
void start_shutdown_watchdog(Daemon *d, int status);

/**
 * stop_shutdown_watchdog() - shutdown finished in time: end the watchdog
 * @d: the daemon
 *
 * Return: nothing.
 */
void stop_shutdown_watchdog(Daemon *d);

/**
 * shutdown_channels() - wake every channel thread, join and free them
 * @d: the daemon, no longer accepting
 *
 * Return: nothing.
 */
void shutdown_channels(Daemon *d) DEXT_EXCLUDES(d->lock);

#endif /* DEXTD_DEXTD_H */
