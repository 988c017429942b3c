/*
 * SPDX-License-Identifier: MIT
 *
 * The test harness: transport selection, a private dextd per test and
 * bounded waits (the checks are check.c's).  See harness.h.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "support/sanitizers.h"

#define DEFAULT_DEVICES "edu"
#define MAX_DEVICES     16
/* What harness_kill_daemon() raises over iokit ($IOKIT_MODEL_KILL_SIGNAL). */
#define IOKIT_KILL_SIGNAL SIGUSR2

static bool use_unix;
static const char *target_opts = "";   /* after the socket's path */
static char target[PATH_MAX + 64];
static pid_t owner_pid;         /* forked children must not clean up */

/* The private daemon (unix transport only). */
static pid_t daemon_pid = -1;
/*
 * harness_pause_daemon() stopped it and no one resumed it yet.  Only
 * then does taking dextd down send SIGCONT, and before SIGTERM: a
 * SIGCONT that lands while an ASan dextd's LeakSanitizer ptrace-attaches
 * at exit discards the attach's SIGSTOP, and the exit hangs for ever.
 */
static volatile sig_atomic_t daemon_paused;
static char sock_dir[PATH_MAX];
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* ------------------------------------------------------------------ */
/* Waiting                                                              */

double harness_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

HarnessDeadline harness_deadline(unsigned ms)
{
    HarnessDeadline d;

    clock_gettime(CLOCK_MONOTONIC, &d.end);
    d.end.tv_sec += ms / 1000;
    d.end.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (d.end.tv_nsec >= 1000000000L) {
        d.end.tv_sec++;
        d.end.tv_nsec -= 1000000000L;
    }
    return d;
}

bool harness_expired(const HarnessDeadline *d)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > d->end.tv_sec ||
           (now.tv_sec == d->end.tv_sec && now.tv_nsec >= d->end.tv_nsec);
}

void harness_backoff(unsigned *round)
{
    struct timespec ts = { 0, 0 };

    if (*round < 16) {
        sched_yield();
    } else {
        ts.tv_nsec = *round < 64 ? 50000L : 1000000L;
        nanosleep(&ts, NULL);
    }
    (*round)++;
}

/* ------------------------------------------------------------------ */
/* The daemon                                                           */

static bool socket_accepts(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, ret;

    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return ret == 0;
}

/*
 * How long dextd may take to start or stop: HARNESS_WAIT_MS, or six times
 * that when it runs under $DEXTD_WRAPPER (valgrind starts and exits slowly,
 * the more so on a loaded machine).
 */
static unsigned daemon_wait_ms(void)
{
    const char *wrapper = getenv("DEXTD_WRAPPER");

    return wrapper != NULL && wrapper[0] != '\0' ? 6 * HARNESS_WAIT_MS
                                                 : HARNESS_WAIT_MS;
}

/* Wait up to daemon_wait_ms() for @pid; true and *@status if it exited. */
static bool wait_child(pid_t pid, int *status)
{
    HarnessDeadline d = harness_deadline(daemon_wait_ms());
    unsigned round = 0;

    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);

        if (r == pid) {
            return true;
        }
        if (r < 0 && errno != EINTR) {
            return false;
        }
        if (harness_expired(&d)) {
            return false;
        }
        harness_backoff(&round);
    }
}

#define MAX_WRAPPER_WORDS 16
#define MAX_EXTRA_WORDS   16

/* $HARNESS_DEXTD_UID: run the daemon as this uid (and gid), or -1. */
static long daemon_uid(void)
{
    const char *env = getenv("HARNESS_DEXTD_UID");
    char *end;
    long v;

    if (env == NULL || env[0] == '\0') {
        return -1;
    }
    v = strtol(env, &end, 10);
    return *end == '\0' && v >= 0 ? v : -1;
}

/*
 * In the daemon's child, before exec: what $HARNESS_DEXTD_NOFILE,
 * $HARNESS_DEXTD_LOG and $HARNESS_DEXTD_UID ask for.  Exits on failure:
 * a daemon started otherwise would test something else.
 */
static void daemon_child_setup(void)
{
    const char *nofile = getenv("HARNESS_DEXTD_NOFILE");
    const char *log = getenv("HARNESS_DEXTD_LOG");
    long uid = daemon_uid();

    if (nofile != NULL && nofile[0] != '\0') {
        struct rlimit rl;

        rl.rlim_cur = rl.rlim_max = strtoul(nofile, NULL, 10);
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "harness: RLIMIT_NOFILE %s: %s\n", nofile,
                    strerror(errno));
            _exit(127);
        }
    }
    if (log != NULL && log[0] != '\0') {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
            fprintf(stderr, "harness: %s: %s\n", log, strerror(errno));
            _exit(127);
        }
        close(fd);
    }
    if (uid >= 0 && (setgroups(0, NULL) != 0 ||
                     setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) != 0 ||
                     setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0)) {
        fprintf(stderr, "harness: run as uid %ld: %s\n", uid,
                strerror(errno));
        _exit(127);
    }
}

/* For harness_restart_daemon(): the devices of the first start. */
static char daemon_devices[1024];

static void start_daemon(const char *devices)
{
    const char *dextd = getenv("DEXTD");
    const char *wrapper = getenv("DEXTD_WRAPPER");
    const char *extra = getenv("HARNESS_DEXTD_ARGS");
    static char wrapper_words[1024];
    static char extra_words[1024];
    char *argv[MAX_WRAPPER_WORDS + 4 + 2 * MAX_DEVICES + MAX_EXTRA_WORDS + 1];
    char specs[1024];
    char *spec, *save = NULL;
    HarnessDeadline d;
    unsigned round = 0;
    int argc = 0, status;

    if (dextd == NULL || dextd[0] == '\0') {
        harness_skip("DEXTD is not set: no daemon to test the unix "
                     "transport with");
    }
    if (access(dextd, X_OK) != 0) {
        fprintf(stderr, "harness: DEXTD=%s is not executable: %s\n", dextd,
                strerror(errno));
        exit(1);
    }
    snprintf(sock_dir, sizeof(sock_dir), "/tmp/libdext-test-XXXXXX");
    if (mkdtemp(sock_dir) == NULL) {
        fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
        exit(1);
    }
    if (daemon_uid() >= 0 &&
        chown(sock_dir, (uid_t)daemon_uid(), (gid_t)daemon_uid()) != 0) {
        fprintf(stderr, "harness: chown %s: %s\n", sock_dir, strerror(errno));
        rmdir(sock_dir);
        exit(1);
    }
    if ((size_t)snprintf(sock_path, sizeof(sock_path), "%s/dextd.sock",
                         sock_dir) >= sizeof(sock_path)) {
        fprintf(stderr, "harness: socket path too long\n");
        exit(1);
    }

    /*
     * $DEXTD_WRAPPER (e.g. "valgrind --error-exitcode=99 ...") runs the
     * daemon under a tool: its words go first, split at spaces.
     */
    if (wrapper != NULL && wrapper[0] != '\0') {
        char *w, *wsave = NULL;

        snprintf(wrapper_words, sizeof(wrapper_words), "%s", wrapper);
        for (w = strtok_r(wrapper_words, " ", &wsave);
             w != NULL && argc < MAX_WRAPPER_WORDS;
             w = strtok_r(NULL, " ", &wsave)) {
            argv[argc++] = w;
        }
    }
    /* One --device per spec: the same devices the inproc target serves. */
    snprintf(daemon_devices, sizeof(daemon_devices), "%s", devices);
    snprintf(specs, sizeof(specs), "%s", devices);
    argv[argc++] = (char *)dextd;
    argv[argc++] = (char *)"--socket";
    argv[argc++] = sock_path;
    for (spec = strtok_r(specs, "+", &save);
         spec && argc < MAX_WRAPPER_WORDS + 3 + 2 * MAX_DEVICES;
         spec = strtok_r(NULL, "+", &save)) {
        /* The inproc target's pseudo-devices are flags here. */
        if (strcmp(spec, "contract-only") == 0) {
            argv[argc++] = (char *)"--contract-only";
            continue;
        }
        if (strcmp(spec, "no-irq-page") == 0) {
            argv[argc++] = (char *)"--no-irq-page";
            continue;
        }
        argv[argc++] = (char *)"--device";
        argv[argc++] = spec;
    }
    /* $HARNESS_DEXTD_ARGS: more dextd options, split at spaces, last. */
    if (extra != NULL && extra[0] != '\0') {
        char *w, *esave = NULL;
        int first = argc;

        snprintf(extra_words, sizeof(extra_words), "%s", extra);
        for (w = strtok_r(extra_words, " ", &esave); w != NULL;
             w = strtok_r(NULL, " ", &esave)) {
            if (argc - first == MAX_EXTRA_WORDS) {
                fprintf(stderr, "harness: HARNESS_DEXTD_ARGS: more than %d "
                        "words\n", MAX_EXTRA_WORDS);
                exit(1);
            }
            argv[argc++] = w;
        }
    }
    argv[argc] = NULL;

    fflush(stdout);
    fflush(stderr);
    daemon_pid = fork();
    if (daemon_pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        exit(1);
    }
    if (daemon_pid == 0) {
        daemon_child_setup();
        /* Never outlive a test that crashed; SIGTERM lets the daemon
         * remove its socket on the way out.  (After any change of uid,
         * which clears it.) */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != owner_pid) {
            _exit(127);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }

    d = harness_deadline(daemon_wait_ms());
    while (!socket_accepts(sock_path)) {
        if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
            fprintf(stderr, "harness: dextd exited (status 0x%x) before "
                    "accepting on %s\n", status, sock_path);
            daemon_pid = -1;
            unlink(sock_path);
            rmdir(sock_dir);
            exit(1);
        }
        if (harness_expired(&d)) {
            fprintf(stderr, "harness: dextd did not accept on %s within "
                    "%u ms\n", sock_path, daemon_wait_ms());
            kill(daemon_pid, SIGKILL);
            waitpid(daemon_pid, &status, 0);
            daemon_pid = -1;
            unlink(sock_path);
            rmdir(sock_dir);
            exit(1);
        }
        harness_backoff(&round);
    }
    printf("# dextd pid %d on %s\n", (int)daemon_pid, sock_path);
}

/*
 * SIGTERM the daemon and require a clean exit: status 0 and its socket
 * removed.  @count: whether problems are test failures (not when
 * skipping or exiting abnormally).
 */
static void stop_daemon(bool count)
{
    struct stat st;
    int status = 0;
    pid_t pid = daemon_pid;

    if (pid <= 0 || getpid() != owner_pid) {
        return;
    }
    daemon_pid = -1;
    if (daemon_paused) {
        kill(pid, SIGCONT);
        daemon_paused = 0;
    }
    if (kill(pid, SIGTERM) != 0) {
        if (count) {
            CHECK_MSG(false, "kill(dextd, SIGTERM): %s", strerror(errno));
        }
    }
    if (!wait_child(pid, &status)) {
        if (count) {
            CHECK_MSG(false, "dextd did not exit within %u ms of SIGTERM",
                      daemon_wait_ms());
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    } else if (count) {
        if (WIFEXITED(status)) {
            harness_check_eq(WEXITSTATUS(status), 0, __FILE__, __LINE__,
                             "dextd exit status", "0");
        } else {
            CHECK_MSG(false, "dextd died of signal %d",
                      WIFSIGNALED(status) ? WTERMSIG(status) : -1);
        }
    }
    if (lstat(sock_path, &st) == 0) {
        if (count) {
            CHECK_MSG(false, "dextd left its socket %s", sock_path);
        }
        unlink(sock_path);
    } else if (count) {
        harness_check(errno == ENOENT, __FILE__, __LINE__,
                      "dextd removed its socket");
    }
    rmdir(sock_dir);
}

static void stop_daemon_at_exit(void)
{
    stop_daemon(false);
}

/* Run by harness_finish(): how the daemon exits is part of the result. */
static void stop_daemon_at_finish(void)
{
    stop_daemon(true);
}

/*
 * A test killed by meson's timeout or ^C: take the daemon down and
 * remove the directory, with async-signal-safe calls only, then die of
 * the same signal.
 */
static void stop_daemon_on_signal(int sig)
{
    struct timespec ts = { 0, 1000000L };
    int i;

    if (daemon_pid > 0 && getpid() == owner_pid) {
        if (daemon_paused) {
            kill(daemon_pid, SIGCONT);
        }
        kill(daemon_pid, SIGTERM);
        for (i = 0; i < HARNESS_WAIT_MS &&
                    waitpid(daemon_pid, NULL, WNOHANG) == 0; i++) {
            nanosleep(&ts, NULL);
        }
        unlink(sock_path);
        rmdir(sock_dir);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ------------------------------------------------------------------ */
/* Setup and summary                                                    */

static void log_handler(void *opaque, int level, const char *msg)
{
    static const char *const names[] = {
        [APPLE_DEXT_LOG_ERROR] = "error",
        [APPLE_DEXT_LOG_WARNING] = "warning",
        [APPLE_DEXT_LOG_INFO] = "info",
        [APPLE_DEXT_LOG_DEBUG] = "debug",
    };
    const char *name = level >= 0 && level <= APPLE_DEXT_LOG_DEBUG &&
                       names[level] ? names[level] : "?";

    fprintf(stderr, "libdext: %s: %s\n", name, msg);
}

void harness_restore_log_handler(void)
{
    apple_dext_set_log_handler(log_handler, NULL);
}

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s --transport "
            "inproc|unix|unix-poll|iokit|target\n", prog);
    exit(2);
}

static bool real_edus;

/*
 * $HARNESS_EDU_HOSTS ("0000:01:00.0 0000:02:00.0 ..."): real edus bound
 * to vfio-pci (the VM rig's).  Each "edu[,OPTIONS]" of @devices becomes
 * "vfio,host=NEXT[,OPTIONS]" at edu's default address, so the test runs
 * unchanged on QEMU's edu.  A spec only an emulation can serve (another
 * device, an edu option VFIO has no counterpart for) skips the test.
 */
static const char *real_devices(const char *devices, const char *hosts,
                                char *out, size_t cap)
{
    char *copy = strdup(devices), *spec, *save = NULL;
    const char *next = hosts;
    size_t used = 0;

    if (copy == NULL) {
        harness_skip("out of memory");
    }
    out[0] = '\0';
    for (spec = strtok_r(copy, "+", &save); spec;
         spec = strtok_r(NULL, "+", &save)) {
        const char *opts = spec + 3;
        size_t hlen;

        if (strncmp(spec, "edu", 3) != 0 || (*opts && *opts != ',')) {
            harness_skip("device '%s' has no real counterpart here", spec);
        }
        if (strstr(opts, ",bar64") || strstr(opts, ",vectors")) {
            harness_skip("edu option in '%s' has no VFIO counterpart", spec);
        }
        next += strspn(next, " ");
        hlen = strcspn(next, " ");
        if (hlen == 0) {
            harness_skip("'%s' needs more real edus than $HARNESS_EDU_HOSTS "
                         "names", devices);
        }
        /* edu's own defaults: its address here, and QEMU's edu clamps
         * bus addresses to 28 bits as ours does. */
        used += (size_t)snprintf(out + used, used < cap ? cap - used : 0,
                                 "%svfio,host=%.*s%s%s%s", used ? "+" : "",
                                 (int)hlen, next, opts,
                                 strstr(opts, "bdf=") ? "" : ",bdf=00:03.0",
                                 strstr(opts, "dma_mask=") ? ""
                                 : ",dma_mask=0xfffffff");
        next += hlen;
    }
    free(copy);
    if (used >= cap) {
        harness_skip("device list too long");
    }
    real_edus = true;
    return out;
}

bool harness_real_devices(void)
{
    return real_edus;
}

void harness_init(int argc, char **argv, const char *devices)
{
    static char real[1024];
    char sig[16];
    const char *hosts = getenv("HARNESS_EDU_HOSTS");
    const char *transport = "inproc";
    int i;

    owner_pid = getpid();
    harness_at_finish(stop_daemon_at_finish);
    /* Keep the log in order when stdout and stderr share a file. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--transport") == 0 && i + 1 < argc) {
            transport = argv[++i];
        } else if (strncmp(argv[i], "--transport=", 12) == 0) {
            transport = argv[i] + 12;
        } else {
            usage(argv[0]);
        }
    }
    if (devices == NULL) {
        devices = DEFAULT_DEVICES;
    }
    harness_restore_log_handler();
    if (hosts != NULL && hosts[0] != '\0') {
        devices = real_devices(devices, hosts, real, sizeof(real));
    }

    if (strcmp(transport, "inproc") == 0) {
        use_unix = false;
        snprintf(target, sizeof(target), "inproc:%s", devices);
    } else if (strcmp(transport, "unix") == 0 ||
               strcmp(transport, "unix-poll") == 0) {
        use_unix = true;
        /* Every connection with a polled call ring beside its pool. */
        target_opts = transport[4] == '-' ? ",poll" : "";
        atexit(stop_daemon_at_exit);
        signal(SIGTERM, stop_daemon_on_signal);
        signal(SIGINT, stop_daemon_on_signal);
        start_daemon(devices);
        snprintf(target, sizeof(target), "unix:%s%s", sock_path,
                 target_opts);
    } else if (strcmp(transport, "iokit") == 0) {
        /*
         * The IOKit transport over the model of IOKitLib
         * (tests/iokit-model): libdext must be that build's, which serves
         * the devices $IOKIT_MODEL_DEVICES names as dext services, and
         * whose dexts all die on $IOKIT_MODEL_KILL_SIGNAL.
         */
        use_unix = false;
        setenv("IOKIT_MODEL_DEVICES", devices, 1);
        snprintf(sig, sizeof(sig), "%d", IOKIT_KILL_SIGNAL);
        setenv("IOKIT_MODEL_KILL_SIGNAL", sig, 1);
        snprintf(target, sizeof(target), "iokit");
    } else if (strcmp(transport, "target") == 0) {
        /* Whatever dext $DEXT_TARGET names, as given: nothing started. */
        const char *given = getenv("DEXT_TARGET");

        if (given == NULL || given[0] == '\0') {
            fprintf(stderr, "%s: --transport target needs $DEXT_TARGET\n",
                    argv[0]);
            exit(2);
        }
        use_unix = false;
        snprintf(target, sizeof(target), "%s", given);
    } else {
        usage(argv[0]);
    }
    /* The seed functions use the default target: make it ours. */
    setenv("DEXT_TARGET", target, 1);
    printf("# %s: target %s\n", argv[0], target);
}

const char *harness_target(void)
{
    return target;
}

const char *harness_socket_path(void)
{
    return use_unix ? sock_path : NULL;
}

bool harness_is_polled(void)
{
    return target_opts[0] != '\0';
}

bool harness_is_unix(void)
{
    return use_unix;
}

bool harness_under_tsan(void)
{
    return DEXT_UNDER_TSAN;
}

bool harness_under_asan(void)
{
    return DEXT_UNDER_ASAN;
}

bool harness_is_iokit(void)
{
    return strcmp(target, "iokit") == 0;
}

pid_t harness_server_pid(void)
{
    return use_unix ? daemon_pid : getpid();
}

void harness_stop_daemon(void)
{
    stop_daemon(true);
}

void harness_pause_daemon(void)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;
    char path[64];

    if (!use_unix || daemon_pid <= 0) {
        return;
    }
    daemon_paused = 1;
    CHECK(kill(daemon_pid, SIGSTOP) == 0);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)daemon_pid);
    while (!harness_expired(&d)) {
        char buf[512], *paren;
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

        if (f) {
            fclose(f);
        }
        buf[n] = '\0';
        paren = strrchr(buf, ')');
        if (paren != NULL && paren[1] == ' ' && paren[2] == 'T') {
            return;
        }
        harness_backoff(&round);
    }
    CHECK_MSG(false, "dextd did not stop");
}

void harness_resume_daemon(void)
{
    if (use_unix && daemon_pid > 0) {
        CHECK(kill(daemon_pid, SIGCONT) == 0);
        daemon_paused = 0;
    }
}

void harness_kill_daemon(void)
{
    pid_t pid = daemon_pid;

    if (harness_is_iokit()) {
        struct sigaction sa;

        /* The model's dexts crash; their services are then terminated.
         * No handler yet: the model has not booted, no dext to kill. */
        if (sigaction(IOKIT_KILL_SIGNAL, NULL, &sa) == 0 &&
            sa.sa_handler != SIG_DFL) {
            raise(IOKIT_KILL_SIGNAL);
        }
        return;
    }
    if (pid <= 0 || getpid() != owner_pid) {
        return;
    }
    daemon_pid = -1;
    daemon_paused = 0;          /* SIGKILL ends a stopped process too */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* A killed daemon cannot remove its socket: that is the point. */
    unlink(sock_path);
    rmdir(sock_dir);
}

void harness_restart_daemon(void)
{
    if (!use_unix || daemon_pid > 0 || getpid() != owner_pid) {
        return;
    }
    start_daemon(daemon_devices);
    snprintf(target, sizeof(target), "unix:%s%s", sock_path, target_opts);
    setenv("DEXT_TARGET", target, 1);
}

void harness_skip(const char *fmt, ...)
{
    va_list ap;

    printf("SKIP: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    stop_daemon(false);
    exit(HARNESS_EXIT_SKIP);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

io_connect_t harness_connect(uint8_t bus, uint8_t dev, uint8_t fn)
{
    io_connect_t c = IO_OBJECT_NULL;

    if (!CHECK_KR(apple_dext_connect_target(harness_target(), bus, dev, fn,
                                            &c), kIOReturnSuccess)) {
        return IO_OBJECT_NULL;
    }
    CHECK(c != IO_OBJECT_NULL);
    return c;
}

io_connect_t harness_connect_edu(void)
{
    return harness_connect(EDU_BUS, EDU_DEV, EDU_FN);
}

bool harness_listed(uint8_t dev, uint32_t *count)
{
    AppleDextDeviceInfo list[16];
    uint32_t n = 0, i;
    bool found = false;

    CHECK_KR(apple_dext_list_devices(harness_target(), list, 16, &n),
             kIOReturnSuccess);
    for (i = 0; i < n && i < 16; i++) {
        found |= list[i].bus == 0 && list[i].device == dev &&
                 list[i].function == 0;
    }
    if (count != NULL) {
        *count = n;
    }
    return found;
}

bool harness_status(AppleDextStatus *out)
{
    memset(out, 0, sizeof(*out));
    /* The real dext keeps no counters: the IOKit transport says so. */
    if (harness_is_iokit()) {
        CHECK_KR(apple_dext_get_status(harness_target(), out),
                 kIOReturnUnsupported);
        return false;
    }
    return CHECK_KR(apple_dext_get_status(harness_target(), out),
                    kIOReturnSuccess);
}

/* xorshift64*: enough to make DMA payloads that no stale data matches. */
static uint64_t rng_state;
static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

void harness_fill_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t i;

    pthread_mutex_lock(&rng_lock);
    if (rng_state == 0) {
        const char *env = getenv("HARNESS_SEED");
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        rng_state = env ? strtoull(env, NULL, 0)
                        : ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                          ((uint64_t)getpid() << 40);
        if (rng_state == 0) {
            rng_state = 1;
        }
        printf("# random seed 0x%" PRIx64 " (set HARNESS_SEED to replay)\n",
               rng_state);
    }
    for (i = 0; i < len; i += 8) {
        uint64_t r = rng_next();

        memcpy(p + i, &r, len - i < 8 ? len - i : 8);
    }
    pthread_mutex_unlock(&rng_lock);
}

long harness_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

int harness_raw_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (!use_unix) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Entries of /proc/@pid/@what (fds, threads), or -1. */
static int count_proc_entries(pid_t pid, const char *what)
{
    char path[64];
    struct dirent *e;
    int n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
    d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

int harness_count_threads(pid_t pid)
{
    return count_proc_entries(pid, "task");
}

int harness_count_fds(pid_t pid)
{
    return count_proc_entries(pid, "fd");
}
