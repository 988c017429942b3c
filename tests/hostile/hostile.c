/*
 * SPDX-License-Identifier: MIT
 *
 * The hostile suite's runner: a private dextd per attack, the bystander,
 * dextd's baseline and the result lines.  See hostile.h.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "edu.h"
#include "hostile.h"
#include "hostile-wire.h"
#include "protocol/dext-selectors.h"

#define MAX_SERVICES      16
#define MAX_ARGV          64
#define MAX_SAMPLES       65536
#define WARMUP_MS         200
#define WARMUP_CALLS      20

/*
 * dextd's RSS may stay above its baseline by this much: the allocator
 * and the thread-stack cache keep some of what a burst of clients
 * needed.  Under a sanitizer far more (ASan's quarantine and per-thread
 * state after a thousand channel threads: some 60 MiB).  A leak that
 * matters shows first in the fd and thread counts.
 */
#define RSS_SLACK_KB            (32 * 1024)
#define RSS_SLACK_SANITIZER_KB  (128 * 1024)
#define RSS_SLACK_PERCENT       25

/* ------------------------------------------------------------------ */
/* Per-attack state, shared with forked children                       */

typedef struct Shared {
    atomic_uint failures;
    atomic_bool skipped;
    atomic_uint note_len;
    char skip_why[256];
    char notes[2048];
} Shared;

static Shared *shared;
static pid_t owner_pid;

/* In a child of hostile_child_start(): its pipes to the parent. */
static int child_up = -1;
static int child_down = -1;

/* ------------------------------------------------------------------ */
/* The daemon of the running attack                                    */

static struct {
    pid_t pid;
    bool exited;                /* reaped; @status holds why */
    int status;
    bool args_dropped;          /* dextd refused the attack's options */
    char dir[64];
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char log[PATH_MAX];
    char target[PATH_MAX + 8];
    unsigned nservices;
    uint64_t ids[MAX_SERVICES];
    uint16_t bdfs[MAX_SERVICES];
    RawChan *monitor;           /* a channel for STATUS, after HELLO */
    bool sanitized;             /* runs with a sanitizer's runtime */
} dd = { .pid = -1 };

/* ------------------------------------------------------------------ */
/* Checks                                                               */

bool hostile_check(bool ok, const char *file, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    if (ok) {
        return true;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One write per failure so lines from threads and children stay whole. */
    if (getpid() != owner_pid) {
        printf("#   FAIL %s:%d: %s (in child %d)\n", file, line, msg,
               (int)getpid());
    } else {
        printf("#   FAIL %s:%d: %s\n", file, line, msg);
    }
    fflush(stdout);
    atomic_fetch_add(&shared->failures, 1);
    return false;
}

bool hostile_failed(void)
{
    return atomic_load(&shared->failures) > 0;
}

void hostile_skip(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(shared->skip_why, sizeof(shared->skip_why), fmt, ap);
    va_end(ap);
    atomic_store(&shared->skipped, true);
}

void hostile_note(const char *fmt, ...)
{
    char msg[512];
    unsigned at;
    size_t len;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    len = strlen(msg) + 2;
    /* Reserve room first: notes may come from several threads. */
    at = atomic_fetch_add(&shared->note_len, (unsigned)len);
    /* The buffer was zeroed: what fits stays terminated. */
    if (at + len < sizeof(shared->notes)) {
        memcpy(shared->notes + at, "; ", 2);
        memcpy(shared->notes + at + 2, msg, len - 2);
    }
}

/* ------------------------------------------------------------------ */
/* Small utilities                                                      */

double hostile_now_ms(void)
{
    return harness_now_ms();
}

void hostile_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    if (ms == 0) {
        ts.tv_nsec = 100000L;
    }
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        continue;
    }
}

const char *hostile_socket_path(void)
{
    return dd.sock;
}

const char *hostile_socket_dir(void)
{
    return dd.dir;
}

const char *hostile_target(void)
{
    return dd.target;
}

pid_t hostile_dextd_pid(void)
{
    return dd.pid;
}

bool hostile_dextd_alive(void)
{
    int status;

    if (dd.pid <= 0 || dd.exited) {
        return false;
    }
    if (getpid() != owner_pid) {
        return kill(dd.pid, 0) == 0;
    }
    if (waitpid(dd.pid, &status, WNOHANG) == dd.pid) {
        dd.exited = true;
        dd.status = status;
        return false;
    }
    return true;
}

uint64_t hostile_service(uint16_t bdf)
{
    unsigned i;

    for (i = 0; i < dd.nservices; i++) {
        if (dd.bdfs[i] == bdf) {
            return dd.ids[i];
        }
    }
    return 0;
}

unsigned hostile_log_lines(void)
{
    char buf[65536];
    unsigned n = 0;
    ssize_t r, i;
    int fd = open(dd.log, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return 0;
    }
    while ((r = read(fd, buf, sizeof(buf))) > 0) {
        for (i = 0; i < r; i++) {
            n += buf[i] == '\n';
        }
    }
    close(fd);
    return n;
}

bool hostile_log_has(const char *needle)
{
    char line[512];
    bool found = false;
    FILE *f = fopen(dd.log, "re");

    while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL) {
        found = strstr(line, needle) != NULL;
    }
    if (f != NULL) {
        fclose(f);
    }
    return found;
}

/* Print the last @max lines of dextd's log, after a failure. */
static void print_log_tail(unsigned max)
{
    unsigned total = hostile_log_lines(), n = 0;
    char line[512];
    FILE *f = fopen(dd.log, "re");

    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strchr(line, '\n') != NULL && ++n + max <= total) {
            continue;
        }
        printf("#   dextd: %s", line);
        if (strchr(line, '\n') == NULL) {
            printf("\n");
        }
    }
    fclose(f);
}

/* True if dextd's log has a sanitizer's report; prints its first line. */
static bool log_has_sanitizer_report(void)
{
    static const char *const marks[] = {
        "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
        "runtime error:", "WARNING: ThreadSanitizer",
    };
    char line[512];
    bool found = false;
    FILE *f = fopen(dd.log, "re");
    size_t i;

    if (f == NULL) {
        return false;
    }
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
            if (strstr(line, marks[i]) != NULL) {
                printf("#   dextd: %s", line);
                found = true;
                break;
            }
        }
    }
    fclose(f);
    return found;
}

/* ------------------------------------------------------------------ */
/* Starting and stopping dextd                                          */

static bool has_sanitizer(pid_t pid);

static bool socket_accepts(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    int ret;

    if (fd < 0) {
        return false;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return ret == 0;
}

/* Fork and exec dextd for @a; its pid, or -1. */
static pid_t spawn_dextd(const HostileAttack *a, bool with_args)
{
    static char words[1024];
    static char specs[1024];
    const char *dextd = getenv("DEXTD");
    const char *wrapper = getenv("DEXTD_WRAPPER");
    char *argv[MAX_ARGV];
    char *w, *save = NULL;
    int argc = 0, logfd, i;
    pid_t pid;

    if (wrapper != NULL && wrapper[0] != '\0') {
        snprintf(words, sizeof(words), "%s", wrapper);
        for (w = strtok_r(words, " ", &save); w != NULL && argc < 16;
             w = strtok_r(NULL, " ", &save)) {
            argv[argc++] = w;
        }
    }
    argv[argc++] = (char *)dextd;
    argv[argc++] = (char *)"--socket";
    argv[argc++] = dd.sock;
    snprintf(specs, sizeof(specs), "%s",
             a->devices != NULL ? a->devices : HOSTILE_DEVICES);
    save = NULL;
    for (w = strtok_r(specs, "+", &save); w != NULL && argc < 40;
         w = strtok_r(NULL, "+", &save)) {
        argv[argc++] = (char *)"--device";
        argv[argc++] = w;
    }
    for (i = 0; with_args && a->args != NULL && a->args[i] != NULL &&
                argc < MAX_ARGV - 1; i++) {
        argv[argc++] = (char *)a->args[i];
    }
    argv[argc] = NULL;

    logfd = open(dd.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0) {
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != owner_pid) {
            _exit(127);
        }
        if (a->nofile != 0) {
            struct rlimit rl = { a->nofile, a->nofile };

            setrlimit(RLIMIT_NOFILE, &rl);
        }
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        /* dextd's fd count is measured: give it nothing of ours. */
        close_range(3, ~0u, 0);
        execvp(argv[0], argv);
        dprintf(STDERR_FILENO, "hostile: exec %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    close(logfd);
    return pid;
}

/* Start dextd for @a and wait until it accepts; false if it did not. */
static bool daemon_start(const HostileAttack *a)
{
    bool with_args = true;
    double end;
    int status;

    snprintf(dd.dir, sizeof(dd.dir), "/tmp/hostile-XXXXXX");
    if (mkdtemp(dd.dir) == NULL) {
        HCHECK(false, "mkdtemp: %s", strerror(errno));
        return false;
    }
    if (a->flags & HOSTILE_OPEN_SOCKET_DIR) {
        chmod(dd.dir, 0777);
    }
    snprintf(dd.sock, sizeof(dd.sock), "%s/dextd.sock", dd.dir);
    snprintf(dd.log, sizeof(dd.log), "%s/dextd.log", dd.dir);
    snprintf(dd.target, sizeof(dd.target), "unix:%s", dd.sock);
    dd.exited = false;
    dd.args_dropped = false;

    for (;;) {
        dd.pid = spawn_dextd(a, with_args);
        if (!HCHECK(dd.pid > 0, "cannot start dextd: %s", strerror(errno))) {
            return false;
        }
        end = hostile_now_ms() + HARNESS_WAIT_MS;
        while (!socket_accepts(dd.sock)) {
            if (waitpid(dd.pid, &status, WNOHANG) == dd.pid) {
                dd.pid = -1;
                break;
            }
            if (hostile_now_ms() > end) {
                kill(dd.pid, SIGKILL);
                waitpid(dd.pid, &status, 0);
                dd.pid = -1;
                HCHECK(false, "dextd did not accept within %u ms",
                       HARNESS_WAIT_MS);
                return false;
            }
            hostile_sleep_ms(2);
        }
        if (dd.pid > 0) {
            dd.sanitized = has_sanitizer(dd.pid);
            return true;
        }
        /* Exit status 2 is a usage error: an option it does not know. */
        if (with_args && a->args != NULL && WIFEXITED(status) &&
            WEXITSTATUS(status) == 2) {
            with_args = false;
            dd.args_dropped = true;
            continue;
        }
        print_log_tail(10);
        HCHECK(false, "dextd exited before accepting (status 0x%x)", status);
        return false;
    }
}

/*
 * SIGTERM dextd and require a clean exit within HARNESS_WAIT_MS.  Also
 * reports a dextd that had died already.
 */
static void daemon_stop(void)
{
    double end = hostile_now_ms() + HARNESS_WAIT_MS;
    int status = 0;

    raw_close(dd.monitor);
    dd.monitor = NULL;
    if (dd.pid > 0 && !dd.exited) {
        kill(dd.pid, SIGTERM);
        for (;;) {
            pid_t r = waitpid(dd.pid, &status, WNOHANG);

            if (r == dd.pid) {
                HCHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                       "dextd did not exit cleanly on SIGTERM "
                       "(status 0x%x)", status);
                break;
            }
            if (hostile_now_ms() > end) {
                HCHECK(false, "dextd still running %u ms after SIGTERM",
                       HARNESS_WAIT_MS);
                kill(dd.pid, SIGKILL);
                waitpid(dd.pid, &status, 0);
                break;
            }
            hostile_sleep_ms(2);
        }
    }
    dd.pid = -1;
    unlink(dd.sock);
}

static void daemon_cleanup_dir(void)
{
    unlink(dd.sock);
    unlink(dd.log);
    rmdir(dd.dir);
}

/* A test killed by meson's timeout or ^C: take dextd down first. */
static void on_fatal_signal(int sig)
{
    if (getpid() == owner_pid && dd.pid > 0) {
        kill(dd.pid, SIGKILL);
        unlink(dd.sock);
        unlink(dd.log);
        rmdir(dd.dir);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Learn which service is which device: LIST, then each one's identity. */
static bool map_services(void)
{
    DextWireListReply lr;
    unsigned i;

    dd.nservices = 0;
    dd.monitor = raw_connect_hello();
    if (!HCHECK(dd.monitor != NULL, "no HELLO from a fresh dextd") ||
        !HCHECK(raw_list(dd.monitor, &lr) == kIOReturnSuccess,
                "LIST failed")) {
        return false;
    }
    for (i = 0; i < lr.count && i < MAX_SERVICES; i++) {
        uint64_t id[6] = { 0 };
        RawChan *c = raw_connect_hello();

        if (c != NULL && raw_open(c, lr.ids[i], NULL) == kIOReturnSuccess &&
            raw_call(c, kDextSelectorGetIdentity, NULL, 0, id, 6) ==
            kIOReturnSuccess) {
            dd.ids[dd.nservices] = lr.ids[i];
            dd.bdfs[dd.nservices++] = (uint16_t)(id[0] << 8 | id[1] << 3 |
                                                 id[2]);
        }
        raw_close(c);
    }
    return HCHECK(dd.nservices == lr.count, "identified %u of %u services",
                  dd.nservices, lr.count);
}

/* ------------------------------------------------------------------ */
/* The bystander                                                        */

enum { PH_BEFORE, PH_DURING, PH_AFTER, PH_COUNT };

typedef struct Bystander {
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_int phase;
    atomic_llong busy_since_us;     /* 0 when not in a call */
    atomic_uint answers[PH_COUNT];
    atomic_uint errors[PH_COUNT];
    atomic_uint wrong[PH_COUNT];    /* factorials with a wrong result */
    atomic_uint late[PH_COUNT];     /* answers over HOSTILE_ANSWER_MS */
    float max_ms[PH_COUNT];
    float *samples[PH_COUNT];
    unsigned nsamples[PH_COUNT];
    atomic_bool connected;
    char first_error[200];
    atomic_bool have_error;
} Bystander;

static Bystander by;

static long long now_us(void)
{
    return (long long)(hostile_now_ms() * 1000.0);
}

static void by_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void by_error(const char *fmt, ...)
{
    va_list ap;

    if (atomic_exchange(&by.have_error, true)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(by.first_error, sizeof(by.first_error), fmt, ap);
    va_end(ap);
}

/* Account one call that started at @t0 and returned @kr. */
static void by_record(long long t0, kern_return_t kr, const char *what)
{
    int ph = atomic_load(&by.phase);
    float ms = (float)(now_us() - t0) / 1000.0f;

    atomic_store(&by.busy_since_us, 0);
    atomic_fetch_add(&by.answers[ph], 1);
    if (ms > by.max_ms[ph]) {
        by.max_ms[ph] = ms;
    }
    if (by.nsamples[ph] < MAX_SAMPLES) {
        by.samples[ph][by.nsamples[ph]++] = ms;
    }
    if (ms > HOSTILE_ANSWER_MS) {
        atomic_fetch_add(&by.late[ph], 1);
    }
    if (kr != kIOReturnSuccess) {
        atomic_fetch_add(&by.errors[ph], 1);
        by_error("%s: %s", what, apple_dext_strerror(kr));
    }
}

static kern_return_t by_read(io_connect_t c, uint64_t off, uint64_t *v)
{
    long long t0 = now_us();
    kern_return_t kr;

    atomic_store(&by.busy_since_us, t0);
    kr = apple_dext_mmio_read(c, EDU_MEM_IDX, off, 4, v);
    by_record(t0, kr, "MMIO read");
    return kr;
}

static kern_return_t by_write(io_connect_t c, uint64_t off, uint64_t v)
{
    long long t0 = now_us();
    kern_return_t kr;

    atomic_store(&by.busy_since_us, t0);
    kr = apple_dext_mmio_write(c, EDU_MEM_IDX, off, 4, v);
    by_record(t0, kr, "MMIO write");
    return kr;
}

static uint32_t factorial(uint32_t n)
{
    uint32_t r = 1;

    while (n > 1) {
        r *= n--;
    }
    return r;
}

/* One factorial on edu, each step a timed call; false after an error. */
static bool by_factorial(io_connect_t c, uint32_t n)
{
    double end;
    uint64_t v = 0;
    int ph;

    if (by_write(c, EDU_REG_FACTORIAL, n) != kIOReturnSuccess) {
        return false;
    }
    end = hostile_now_ms() + HOSTILE_ANSWER_MS;
    do {
        if (by_read(c, EDU_REG_STATUS, &v) != kIOReturnSuccess) {
            return false;
        }
        if (v & EDU_STATUS_COMPUTING) {
            hostile_sleep_ms(0);
        }
        if (hostile_now_ms() > end && (v & EDU_STATUS_COMPUTING)) {
            ph = atomic_load(&by.phase);
            atomic_fetch_add(&by.late[ph], 1);
            by_error("factorial of %u not done within %u ms", n,
                     HOSTILE_ANSWER_MS);
            return false;
        }
    } while (v & EDU_STATUS_COMPUTING);
    if (by_read(c, EDU_REG_FACTORIAL, &v) != kIOReturnSuccess) {
        return false;
    }
    if ((uint32_t)v != factorial(n)) {
        atomic_fetch_add(&by.wrong[atomic_load(&by.phase)], 1);
    }
    return true;
}

static void *bystander_main(void *opaque)
{
    io_connect_t c = IO_OBJECT_NULL;
    kern_return_t kr;
    uint64_t v = 0;
    uint32_t i;

    (void)opaque;
    kr = apple_dext_connect_target(hostile_target(), EDU_BUS, EDU_DEV,
                                   EDU_FN, &c);
    if (kr == kIOReturnSuccess) {
        kr = apple_dext_claim(c);
    }
    if (kr != kIOReturnSuccess) {
        by_error("connect and claim: %s", apple_dext_strerror(kr));
        atomic_fetch_add(&by.errors[PH_BEFORE], 1);
        apple_dext_disconnect(c);
        return NULL;
    }
    atomic_store(&by.connected, true);
    for (i = 0; !atomic_load(&by.stop); i++) {
        bool ok = by_read(c, EDU_REG_ID, &v) == kIOReturnSuccess;

        if (ok && (uint32_t)v != EDU_ID_VALUE) {
            atomic_fetch_add(&by.errors[atomic_load(&by.phase)], 1);
            by_error("edu ID register reads 0x%x", (unsigned)v);
        }
        ok = ok && by_factorial(c, 1 + i % 12);
        /* A well-behaved client paces itself; after an error, more so. */
        hostile_sleep_ms(ok ? 0 : 20);
    }
    apple_dext_disconnect(c);
    return NULL;
}

static bool bystander_start(void)
{
    double start;
    int i;

    for (i = 0; i < PH_COUNT; i++) {
        free(by.samples[i]);
    }
    memset(&by, 0, sizeof(by));
    for (i = 0; i < PH_COUNT; i++) {
        by.samples[i] = calloc(MAX_SAMPLES, sizeof(float));
        if (by.samples[i] == NULL) {
            abort();
        }
    }
    if (!HCHECK(pthread_create(&by.thread, NULL, bystander_main, NULL) == 0,
                "cannot start the bystander")) {
        return false;
    }
    by.started = true;
    /* Its "before" figures, and proof that it is served at all. */
    start = hostile_now_ms();
    while (atomic_load(&by.errors[PH_BEFORE]) == 0 &&
           hostile_now_ms() < start + HARNESS_WAIT_MS &&
           (atomic_load(&by.answers[PH_BEFORE]) < WARMUP_CALLS ||
            hostile_now_ms() < start + WARMUP_MS)) {
        hostile_sleep_ms(5);
    }
    return HCHECK(atomic_load(&by.connected) &&
                  atomic_load(&by.errors[PH_BEFORE]) == 0,
                  "bystander not served before the attack: %s",
                  by.first_error);
}

/* True while the bystander has been inside one call for over the bound. */
static bool bystander_stuck(void)
{
    long long since = atomic_load(&by.busy_since_us);

    return since != 0 && now_us() - since > HOSTILE_ANSWER_MS * 1000LL;
}

/* Wait until the bystander has @n answers in @ph, within @ms. */
static bool bystander_wait_answers(int ph, unsigned n, unsigned ms)
{
    double end = hostile_now_ms() + ms;

    while (atomic_load(&by.answers[ph]) < n) {
        if (hostile_now_ms() > end || !by.started) {
            return false;
        }
        hostile_sleep_ms(2);
    }
    return true;
}

/*
 * Stop the bystander.  One stuck in a call past the bound is a failure;
 * dextd is then killed so the call returns and the thread can be joined.
 */
static void bystander_stop(void)
{
    double end;

    if (!by.started) {
        return;
    }
    atomic_store(&by.stop, true);
    end = hostile_now_ms() + HOSTILE_ANSWER_MS + 500;
    while (pthread_tryjoin_np(by.thread, NULL) == EBUSY) {
        if (hostile_now_ms() > end) {
            HCHECK(false, "bystander stuck in a call for over %u ms",
                   HOSTILE_ANSWER_MS);
            if (dd.pid > 0 && !dd.exited) {
                kill(dd.pid, SIGKILL);
            }
            pthread_join(by.thread, NULL);
            break;
        }
        hostile_sleep_ms(2);
    }
    by.started = false;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;

    return x < y ? -1 : x > y;
}

/* p50 and p99 of a phase's round trips, in ms. */
static void percentiles(int ph, double *p50, double *p99)
{
    unsigned n = by.nsamples[ph];

    *p50 = *p99 = 0;
    if (n == 0) {
        return;
    }
    qsort(by.samples[ph], n, sizeof(float), cmp_float);
    *p50 = by.samples[ph][n / 2];
    *p99 = by.samples[ph][(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
}

/* ------------------------------------------------------------------ */
/* dextd's footprint                                                    */

typedef struct Snapshot {
    int fds;
    int threads;
    long rss_kb;
    bool status_ok;
    DextWireStatusReply st;
} Snapshot;

static void snapshot(Snapshot *s)
{
    memset(s, 0, sizeof(*s));
    s->fds = harness_count_fds(dd.pid);
    s->threads = harness_count_threads(dd.pid);
    s->rss_kb = harness_rss_kb(dd.pid);
    if (dd.monitor != NULL) {
        s->status_ok = raw_status(dd.monitor, &s->st) == kIOReturnSuccess;
    }
}

/* The STATUS counters that must come back; NULL if all do. */
static const char *status_differs(const Snapshot *base, const Snapshot *now)
{
    if (!now->status_ok) {
        return "STATUS unanswered";
    }
    if (now->st.channels != base->st.channels) {
        return "channels";
    }
    if (now->st.sessions != base->st.sessions) {
        return "sessions";
    }
    if (now->st.claims != base->st.claims) {
        return "claims";
    }
    if (now->st.dma_regions != base->st.dma_regions) {
        return "DMA regions";
    }
    if (now->st.dma_buffers != base->st.dma_buffers) {
        return "DMA buffers";
    }
    if (now->st.irq_sessions != base->st.irq_sessions) {
        return "interrupt sessions";
    }
    return NULL;
}

static long rss_limit(const Snapshot *base)
{
    long slack = base->rss_kb * RSS_SLACK_PERCENT / 100;
    long min = dd.sanitized ? RSS_SLACK_SANITIZER_KB : RSS_SLACK_KB;

    return base->rss_kb + (slack > min ? slack : min);
}

/* Does process @pid have a sanitizer's runtime mapped? */
static bool has_sanitizer(pid_t pid)
{
    char path[64], line[512];
    bool found = false;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    f = fopen(path, "re");
    if (f == NULL) {
        return false;
    }
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        found = strstr(line, "libasan") != NULL ||
                strstr(line, "libtsan") != NULL ||
                strstr(line, "libubsan") != NULL;
    }
    fclose(f);
    return found;
}

/* Wait for the channels of the setup to close: bystander + monitor left. */
static void settle_before(void)
{
    double end = hostile_now_ms() + HOSTILE_SETTLE_MS;
    DextWireStatusReply st;

    while (hostile_now_ms() < end) {
        if (raw_status(dd.monitor, &st) == kIOReturnSuccess &&
            st.channels <= 2 && st.sessions <= 1) {
            return;
        }
        hostile_sleep_ms(5);
    }
}

/* Wait for @base to come back; false (and why) after HOSTILE_SETTLE_MS. */
static bool settle_after(const Snapshot *base, Snapshot *now)
{
    double end = hostile_now_ms() + HOSTILE_SETTLE_MS;
    const char *what = NULL;

    for (;;) {
        snapshot(now);
        what = status_differs(base, now);
        if (now->fds <= base->fds && now->threads <= base->threads &&
            now->rss_kb <= rss_limit(base) && what == NULL) {
            return true;
        }
        if (hostile_now_ms() > end || !hostile_dextd_alive()) {
            break;
        }
        hostile_sleep_ms(10);
    }
    HCHECK(now->fds <= base->fds, "dextd fds %d, baseline %d, after %u ms",
           now->fds, base->fds, HOSTILE_SETTLE_MS);
    HCHECK(now->threads <= base->threads,
           "dextd threads %d, baseline %d, after %u ms", now->threads,
           base->threads, HOSTILE_SETTLE_MS);
    HCHECK(now->rss_kb <= rss_limit(base),
           "dextd RSS %ld kB, baseline %ld kB (limit %ld), after %u ms",
           now->rss_kb, base->rss_kb, rss_limit(base), HOSTILE_SETTLE_MS);
    HCHECK(what == NULL, "dextd STATUS: %s not back to baseline (channels "
           "%u/%u sessions %u/%u claims %u/%u regions %u/%u buffers %u/%u)",
           what, now->st.channels, base->st.channels, now->st.sessions,
           base->st.sessions, now->st.claims, base->st.claims,
           now->st.dma_regions, base->st.dma_regions, now->st.dma_buffers,
           base->st.dma_buffers);
    return false;
}

/* dextd lives, is the same process and answers STATUS. */
static bool check_alive(void)
{
    DextWireStatusReply st;
    RawChan *c;
    IOReturn ret;

    if (!hostile_dextd_alive()) {
        if (WIFSIGNALED(dd.status)) {
            HCHECK(false, "dextd died of signal %d (%s)",
                   WTERMSIG(dd.status), strsignal(WTERMSIG(dd.status)));
        } else {
            HCHECK(false, "dextd exited with status %d",
                   WEXITSTATUS(dd.status));
        }
        return false;
    }
    ret = raw_status(dd.monitor, &st);
    if (ret == RAW_HUNG_UP) {
        /* Perhaps it is dying as we ask: then say how. */
        double end = hostile_now_ms() + 500;

        while (hostile_dextd_alive() && hostile_now_ms() < end) {
            hostile_sleep_ms(5);
        }
        if (!hostile_dextd_alive()) {
            return check_alive();
        }
    }
    if (ret != kIOReturnSuccess) {
        /* The monitor may have been the victim; a new channel decides. */
        c = raw_connect_hello();
        ret = c != NULL ? raw_status(c, &st) : RAW_HUNG_UP;
        if (ret == kIOReturnSuccess) {
            raw_close(dd.monitor);
            dd.monitor = c;
        } else {
            raw_close(c);
        }
    }
    return HCHECK(ret == kIOReturnSuccess, "dextd does not answer STATUS "
                  "(0x%x)", ret) &&
           HCHECK(st.pid == (uint32_t)dd.pid, "STATUS from pid %u, "
                  "dextd is %d", st.pid, (int)dd.pid);
}

/* ------------------------------------------------------------------ */
/* Running attacks                                                      */

typedef enum { RES_PASS, RES_FAIL, RES_SKIP } Result;

static Result run_attack(const HostileAttack *a)
{
    Snapshot base, after;
    double p50b, p99b, p50d, p99d;
    unsigned log0 = 0, log1;
    double t0, t1;
    Result res;
    int ph;

    atomic_store(&shared->failures, 0);
    atomic_store(&shared->skipped, false);
    atomic_store(&shared->note_len, 0);
    memset(shared->notes, 0, sizeof(shared->notes));
    shared->skip_why[0] = '\0';
    memset(&base, 0, sizeof(base));
    memset(&after, 0, sizeof(after));
    printf("# %s%s%s%s\n", a->name, a->finding ? " [" : "",
           a->finding ? a->finding : "", a->finding ? "]" : "");

    if (daemon_start(a) && map_services() && bystander_start()) {
        settle_before();
        snapshot(&base);
        log0 = hostile_log_lines();
        atomic_store(&by.phase, PH_DURING);
        t0 = hostile_now_ms();
        a->run();
        t1 = hostile_now_ms();
        /* The bystander must have been answered while under attack. */
        HCHECK(bystander_wait_answers(PH_DURING, 1, HOSTILE_ANSWER_MS),
               "bystander got no answer during the attack");
        atomic_store(&by.phase, PH_AFTER);
        if (check_alive()) {
            settle_after(&base, &after);
            HCHECK(bystander_wait_answers(PH_AFTER, 1, HOSTILE_ANSWER_MS),
                   "bystander got no answer after the attack");
        }
        if (bystander_stuck()) {
            HCHECK(false, "bystander waiting for an answer for over %u ms",
                   HOSTILE_ANSWER_MS);
        }
        bystander_stop();
        for (ph = PH_BEFORE; ph < PH_COUNT; ph++) {
            static const char *const names[] = { "before", "during",
                                                 "after" };

            HCHECK(atomic_load(&by.late[ph]) == 0,
                   "bystander: %u answers or factorials over %u ms %s the "
                   "attack (slowest answer %.0f ms): %s",
                   atomic_load(&by.late[ph]),
                   HOSTILE_ANSWER_MS, names[ph], by.max_ms[ph],
                   by.first_error);
            HCHECK(atomic_load(&by.errors[ph]) == 0,
                   "bystander: %u failed calls %s the attack; first: %s",
                   atomic_load(&by.errors[ph]), names[ph], by.first_error);
            HCHECK((a->flags & HOSTILE_DISTURBS_DEVICE) ||
                   atomic_load(&by.wrong[ph]) == 0,
                   "bystander: %u wrong factorials %s the attack",
                   atomic_load(&by.wrong[ph]), names[ph]);
        }
        percentiles(PH_BEFORE, &p50b, &p99b);
        percentiles(PH_DURING, &p50d, &p99d);
        hostile_note("bystander p50/p99 before %.3f/%.3f ms, during "
                     "%.3f/%.3f ms (%u calls during, %.0f ms)", p50b, p99b,
                     p50d, p99d, by.nsamples[PH_DURING], t1 - t0);
        if (a->flags & HOSTILE_DISTURBS_DEVICE &&
            atomic_load(&by.wrong[PH_DURING]) > 0) {
            hostile_note("%u factorials spoiled by the attack's resets",
                         atomic_load(&by.wrong[PH_DURING]));
        }
        hostile_note("dextd fds %d->%d threads %d->%d rss %ld->%ld kB",
                     base.fds, after.fds, base.threads, after.threads,
                     base.rss_kb, after.rss_kb);
    } else {
        bystander_stop();
    }
    log1 = hostile_log_lines();
    if (dd.args_dropped) {
        hostile_note("dextd refused the attack's options, ran without");
    }
    daemon_stop();
    HCHECK(!log_has_sanitizer_report(), "sanitizer report in dextd's log");
    hostile_note("log +%u lines", log1 - log0);

    if (hostile_failed()) {
        print_log_tail(8);
        res = RES_FAIL;
    } else if (atomic_load(&shared->skipped)) {
        res = RES_SKIP;
    } else {
        res = RES_PASS;
    }
    daemon_cleanup_dir();
    printf("%s %s%s%s%s%s%s%s\n",
           res == RES_PASS ? "PASS" : res == RES_FAIL ? "FAIL" : "SKIP",
           a->name, a->finding ? " [" : "", a->finding ? a->finding : "",
           a->finding ? "]" : "", res == RES_SKIP ? ": " : "",
           res == RES_SKIP ? shared->skip_why : "", shared->notes);
    fflush(stdout);
    return res;
}

static bool selected(int argc, char **argv, const char *name)
{
    int i;

    if (argc < 2) {
        return true;
    }
    for (i = 1; i < argc; i++) {
        if (strstr(name, argv[i]) != NULL) {
            return true;
        }
    }
    return false;
}

int hostile_main(int argc, char **argv, const HostileAttack *attacks,
                 size_t n)
{
    unsigned passed = 0, failed = 0, skipped = 0;
    const char *dextd = getenv("DEXTD");
    struct rlimit rl;
    size_t i;

    owner_pid = getpid();
    setvbuf(stdout, NULL, _IOLBF, 0);
    shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    if (dextd == NULL || dextd[0] == '\0' || access(dextd, X_OK) != 0) {
        printf("SKIP: DEXTD is not set to an executable dextd\n");
        return HARNESS_EXIT_SKIP;
    }
    /* Attacks hold many sockets at once. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGINT, on_fatal_signal);
    harness_restore_log_handler();
    printf("# dextd: %s\n", dextd);

    for (i = 0; i < n; i++) {
        if (!selected(argc, argv, attacks[i].name)) {
            continue;
        }
        switch (run_attack(&attacks[i])) {
        case RES_PASS:
            passed++;
            break;
        case RES_FAIL:
            failed++;
            break;
        case RES_SKIP:
            skipped++;
            break;
        }
    }
    if (skipped > 0) {
        printf("%u passed, %u failed, %u skipped\n", passed, failed, skipped);
    } else {
        printf("%u passed, %u failed\n", passed, failed);
    }
    if (failed > 0) {
        return 1;
    }
    return passed == 0 ? HARNESS_EXIT_SKIP : 0;
}

/* ------------------------------------------------------------------ */
/* Child processes                                                      */

/* Close every fd above 2 but @keep and the child's pipes. */
static void close_inherited(const int *keep, int nkeep)
{
    int fds[4096];
    struct dirent *e;
    int n = 0, i, j;
    DIR *d = opendir("/proc/self/fd");

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL && n < 4096) {
        int fd = atoi(e->d_name);

        if (e->d_name[0] != '.' && fd > 2 && fd != dirfd(d)) {
            fds[n++] = fd;
        }
    }
    closedir(d);
    for (i = 0; i < n; i++) {
        bool kept = fds[i] == child_up || fds[i] == child_down;

        for (j = 0; j < nkeep && !kept; j++) {
            kept = fds[i] == keep[j];
        }
        if (!kept) {
            close(fds[i]);
        }
    }
}

bool hostile_child_start(HostileChild *c, void (*fn)(void *), void *arg,
                         const int *keep, int nkeep)
{
    pid_t parent = getpid();
    int up[2], down[2];

    c->pid = -1;
    c->to_child = c->from_child = -1;
    if (pipe2(up, O_CLOEXEC) != 0) {
        return false;
    }
    if (pipe2(down, O_CLOEXEC) != 0) {
        close(up[0]);
        close(up[1]);
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    c->pid = fork();
    if (c->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);
        }
        close(up[0]);
        close(down[1]);
        child_up = up[1];
        child_down = down[0];
        close_inherited(keep, nkeep);
        fn(arg);
        fflush(stdout);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    if (c->pid < 0) {
        close(up[0]);
        close(down[1]);
        return false;
    }
    c->from_child = up[0];
    c->to_child = down[1];
    return true;
}

void hostile_child_send(const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(child_up, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

void hostile_child_ready(void)
{
    uint8_t one = 1;

    hostile_child_send(&one, 1);
}

bool hostile_child_wait_release(unsigned ms)
{
    struct pollfd p = { .fd = child_down, .events = POLLIN };
    uint8_t b;

    if (poll(&p, 1, (int)ms) != 1) {
        return false;
    }
    return read(child_down, &b, 1) == 1;
}

bool hostile_child_read(HostileChild *c, void *buf, size_t len, unsigned ms)
{
    double end = hostile_now_ms() + ms;
    uint8_t *p = buf;

    while (len > 0) {
        struct pollfd pf = { .fd = c->from_child, .events = POLLIN };
        double left = end - hostile_now_ms();
        ssize_t n;

        if (left <= 0 || poll(&pf, 1, (int)left + 1) != 1) {
            return false;
        }
        n = read(c->from_child, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool hostile_child_wait_ready(HostileChild *c, unsigned ms)
{
    uint8_t b;

    return hostile_child_read(c, &b, 1, ms);
}

void hostile_child_release(HostileChild *c)
{
    uint8_t one = 1;

    if (c->to_child >= 0 && write(c->to_child, &one, 1) != 1) {
        /* A child that is gone needs no release. */
    }
}

int hostile_child_reap(HostileChild *c, unsigned ms)
{
    double end = hostile_now_ms() + ms;
    int status = -1;

    if (c->to_child >= 0) {
        close(c->to_child);
    }
    if (c->from_child >= 0) {
        close(c->from_child);
    }
    c->to_child = c->from_child = -1;
    if (c->pid <= 0) {
        return -1;
    }
    while (waitpid(c->pid, &status, WNOHANG) == 0) {
        if (hostile_now_ms() > end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            break;
        }
        hostile_sleep_ms(1);
    }
    c->pid = -1;
    return status;
}
