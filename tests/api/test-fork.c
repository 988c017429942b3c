/*
 * SPDX-License-Identifier: MIT
 *
 * fork(): a connection belongs to the process that connected, as an
 * io_connect_t does under IOKit, whose Mach port rights a forked child
 * does not inherit.  In a forked child every call on a connection its
 * parent opened answers kIOReturnNotPermitted at once, without reaching
 * the dext, and says why in one log line; disconnecting it there leaves
 * the parent's connection working; the child may connect anew (not over
 * iokit, where libdispatch would crash it: there connecting and listing
 * are refused).
 *
 * And forks at bad moments, as an attacker (or an unlucky program) would
 * time them: while parent threads call on the connection, while one is
 * inside a call (dextd stopped under it), while others connect and
 * disconnect in a loop, and while one runs the log handler.  And the
 * notifications the child inherited, a callback one and an fd one:
 * destroying them there must not stop the parent's notification thread
 * nor silence the parent's fd (nor, over iokit, touch the parent's notification ports and dispatch
 * queues, which the model refuses in a child); and a notification
 * handler that forks, whose child returns into the library: that child
 * must end there, the parent's completions staying the parent's.  The
 * child
 * must never wait for anything of its parent's, and the parent's calls
 * must keep their own answers.  Each child runs under alarm(): one that
 * hangs dies of SIGALRM, which the parent reports as such.
 */

#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "edu.h"
#include "api-util.h"

/* Seconds a child may take before it counts as hung. */
#define CHILD_ALARM_S   10
/* edu's config dword 0: device and vendor ID. */
#define EDU_IDS         ((uint32_t)EDU_DEVICE_ID << 16 | EDU_VENDOR_ID)
#define CALLERS         2
#define FORKS           12

static char target[600];
/*
 * Whether children connect anew.  Not under TSan over inproc: there the
 * child's connect builds a core, whose devices start threads, and TSan
 * stops a child of a threaded process that starts one.
 */
static bool child_connects = true;
/*
 * Over iokit a child's connect is refused: each connection's
 * notification ports run on libdispatch queues, and libdispatch crashes
 * a forked child of a process where it has started threads.
 */
static bool child_connect_refused;
/* edu's config dword 8 (class code, revision), as the parent read it. */
static uint64_t class_rev;

/* In a child: say what went wrong and give the exit status for it. */
static int child_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int child_fail(int code, const char *fmt, ...)
{
    va_list ap;

    printf("# child %d: ", (int)getpid());
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return code;
}

/* ------------------------------------------------------------------ */
/* The child's side                                                     */

/*
 * What every child checks: @calls calls on the inherited connection
 * answer kIOReturnNotPermitted, quickly; disconnecting it works and
 * leaves a stale handle; unless @connect is false (dextd stopped), a
 * connection of the child's own answers right.
 */
static int child_checks(io_connect_t inherited, int calls, bool connect)
{
    io_connect_t own = IO_OBJECT_NULL;
    double t0 = harness_now_ms(), took;
    uint32_t listed = 0;
    kern_return_t kr;
    uint64_t v = 0;
    int i;

    for (i = 0; i < calls; i++) {
        kr = apple_dext_config_read(inherited, 8, 4, &v);
        if (kr != kIOReturnNotPermitted) {
            return child_fail(10, "call %d on the inherited connection: %s "
                              "(value 0x%llx)", i, apple_dext_strerror(kr),
                              (unsigned long long)v);
        }
    }
    took = harness_now_ms() - t0;
    if (took > 1000) {
        return child_fail(11, "%d refused calls took %.0f ms", calls, took);
    }
    t0 = harness_now_ms();
    apple_dext_disconnect(inherited);
    took = harness_now_ms() - t0;
    if (took > 1000) {
        return child_fail(12, "disconnecting took %.0f ms", took);
    }
    kr = apple_dext_config_read(inherited, 8, 4, &v);
    if (kr != kIOReturnBadArgument) {
        return child_fail(13, "a call after disconnect: %s",
                          apple_dext_strerror(kr));
    }
    if (!connect || !child_connects) {
        return 0;
    }
    kr = apple_dext_list_devices(target, NULL, 0, &listed);
    if (kr != (child_connect_refused ? kIOReturnNotPermitted
                                     : kIOReturnSuccess)) {
        return child_fail(17, "the child's own listing: %s",
                          apple_dext_strerror(kr));
    }
    kr = apple_dext_connect_target(target, EDU_BUS, EDU_DEV, EDU_FN, &own);
    if (child_connect_refused) {
        if (kr == kIOReturnSuccess) {
            apple_dext_disconnect(own);
        }
        return kr == kIOReturnNotPermitted ? 0 :
               child_fail(16, "the child's own connect: %s, not "
                          "kIOReturnNotPermitted", apple_dext_strerror(kr));
    }
    if (kr != kIOReturnSuccess) {
        return child_fail(14, "the child's own connect: %s",
                          apple_dext_strerror(kr));
    }
    for (i = 0; i < 20; i++) {
        kr = apple_dext_config_read(own, 8, 4, &v);
        if (kr != kIOReturnSuccess || v != class_rev) {
            apple_dext_disconnect(own);
            return child_fail(15, "the child's own call %d: %s, 0x%llx, "
                              "not 0x%llx", i, apple_dext_strerror(kr),
                              (unsigned long long)v,
                              (unsigned long long)class_rev);
        }
    }
    apple_dext_disconnect(own);
    return 0;
}

/* A forked child: its pid, and the pipe a SIGKILLed one reports on. */
typedef struct Child {
    pid_t pid;
    int report;                 /* read end, or -1 */
} Child;

/*
 * Fork a child that runs @fn(@c) under alarm().  With @mid_alloc the
 * fork may land while another of our threads is between a malloc() and
 * storing its pointer (inside a connect): the child has that block with
 * nothing pointing at it, a leak no code of the child's can help, which
 * valgrind's leak check at the child's exit would fail it for.  Such a
 * child writes its status to a pipe and ends with SIGKILL, which no leak
 * check follows.
 */
static Child start_child(int (*fn)(io_connect_t), io_connect_t c,
                         bool mid_alloc)
{
    Child ch = { -1, -1 };
    int p[2] = { -1, -1 };

    if (mid_alloc && pipe(p) != 0) {
        return ch;
    }
    fflush(stdout);
    fflush(stderr);
    ch.pid = fork();
    if (ch.pid == 0) {
        unsigned char rc;

        alarm(CHILD_ALARM_S);
        rc = (unsigned char)fn(c);
        if (!mid_alloc) {
            _exit(rc);
        }
        fflush(stdout);
        fflush(stderr);
        if (write(p[1], &rc, 1) != 1) {
            _exit(rc);
        }
        kill(getpid(), SIGKILL);
    }
    if (mid_alloc) {
        close(p[1]);
        ch.report = p[0];
    }
    return ch;
}

/* Wait for child @ch; whether it exited 0, and if not, how it ended. */
static bool child_ok(Child ch, const char *what)
{
    unsigned char rc = 0xff;
    int status = 0;

    if (!CHECK_MSG(ch.pid > 0, "%s: fork failed", what) ||
        !CHECK(waitpid(ch.pid, &status, 0) == ch.pid)) {
        if (ch.report >= 0) {
            close(ch.report);
        }
        return false;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
        if (ch.report >= 0) {
            close(ch.report);
        }
        return CHECK_MSG(false, "%s: the child hung (SIGALRM after %d s)",
                         what, CHILD_ALARM_S);
    }
    if (ch.report >= 0) {
        bool reported = read(ch.report, &rc, 1) == 1;

        close(ch.report);
        if (reported && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
            return CHECK_MSG(rc == 0, "%s: the child failed (%u)", what, rc);
        }
    }
    return CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                     "%s: the child failed (status 0x%x)", what, status);
}

/* ------------------------------------------------------------------ */
/* The parent's side                                                    */

/*
 * The system call thread @tid of ours is in, from
 * /proc/self/task/TID/syscall, or -1.  Raw system calls, no FILE and
 * nothing allocated: it runs inside the log handler while another thread
 * is in fork(), where a sanitizer's fork interceptor holds the
 * allocator's locks.
 */
static long syscall_of(pid_t tid)
{
    char path[64], buf[32];
    long nr = -1;
    ssize_t len;
    int fd;

    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
    fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    len = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
    syscall(SYS_close, fd);
    if (len > 0 && buf[0] >= '0' && buf[0] <= '9') {
        buf[len] = '\0';
        nr = strtol(buf, NULL, 10);
    }
    return nr;
}

/*
 * Wait until our thread whose tid @tid will say (0 until it does) sits
 * in one of the @n system calls @nrs: the moment a section means to
 * reach is then certainly there, where a sleep only makes it likely (and
 * under load, not even that).  False if it is not there within
 * HARNESS_WAIT_MS.
 */
static bool await_in_syscall(atomic_int *tid, const long *nrs, int n)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;

    do {
        long nr = atomic_load(tid) ? syscall_of(atomic_load(tid)) : -1;
        int i;

        for (i = 0; i < n; i++) {
            if (nr == nrs[i]) {
                return true;
            }
        }
        harness_backoff(&round);
    } while (!harness_expired(&d));
    return false;
}

/* Where a thread waits for dextd's reply: the socket, or poll() on it. */
static const long reply_waits[] = {
    SYS_recvfrom, SYS_recvmsg, SYS_ppoll,
#ifdef SYS_poll
    SYS_poll,
#endif
};

/* @n calls on @c, each answering edu's IDs. */
static void parent_works(io_connect_t c, int n)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (!CHECK_KR(apple_dext_config_read(c, 0, 4, &v),
                      kIOReturnSuccess) ||
            !CHECK_EQ(v, EDU_IDS)) {
            return;
        }
    }
}

/* Parent threads calling on one connection until told to stop. */
typedef struct Callers {
    io_connect_t c;
    atomic_bool stop;
    atomic_ulong calls;
    atomic_ulong wrong;         /* success with another value */
    atomic_ulong failed;        /* anything but success */
    kern_return_t first_error;  /* set by the first failure */
    uint64_t first_wrong;
    pthread_t t[CALLERS];
    int n;
} Callers;

static void *call_loop(void *opaque)
{
    Callers *cs = opaque;
    uint64_t v;

    while (!atomic_load(&cs->stop)) {
        kern_return_t kr = apple_dext_config_read(cs->c, 0, 4, &v);

        atomic_fetch_add(&cs->calls, 1);
        if (kr != kIOReturnSuccess) {
            if (atomic_fetch_add(&cs->failed, 1) == 0) {
                cs->first_error = kr;
            }
        } else if (v != EDU_IDS) {
            if (atomic_fetch_add(&cs->wrong, 1) == 0) {
                cs->first_wrong = v;
            }
        }
    }
    return NULL;
}

static void callers_start(Callers *cs, io_connect_t c, int n)
{
    memset(cs, 0, sizeof(*cs));
    cs->c = c;
    for (cs->n = 0; cs->n < n; cs->n++) {
        if (!CHECK(pthread_create(&cs->t[cs->n], NULL, call_loop, cs) == 0)) {
            break;
        }
    }
}

/* Stop the callers; each of their calls must have had its own answer. */
static void callers_stop(Callers *cs)
{
    int i;

    atomic_store(&cs->stop, true);
    for (i = 0; i < cs->n; i++) {
        pthread_join(cs->t[i], NULL);
    }
    CHECK_MSG(atomic_load(&cs->calls) > 0, "the parent's threads made no "
              "call");
    CHECK_MSG(atomic_load(&cs->wrong) == 0, "%lu of the parent's %lu calls "
              "answered another value (first 0x%llx): crossed replies",
              atomic_load(&cs->wrong), atomic_load(&cs->calls),
              (unsigned long long)cs->first_wrong);
    CHECK_MSG(atomic_load(&cs->failed) == 0, "%lu of the parent's %lu calls "
              "failed (first %s)", atomic_load(&cs->failed),
              atomic_load(&cs->calls), apple_dext_strerror(cs->first_error));
}

/* ------------------------------------------------------------------ */
/* Cases                                                                */

static atomic_int fork_lines;

static void count_fork_lines(void *opaque, int level, const char *msg)
{
    if (strstr(msg, "fork()") != NULL) {
        atomic_fetch_add(&fork_lines, 1);
    }
}

/*
 * Every kind of call on the inherited connection is refused, one line
 * says why (once), and so does apple_dext_last_error_detail().
 */
static int child_refused(io_connect_t c)
{
    AppleDextDeviceInfo info;
    AppleDextDeviceStatus ds;
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    uint64_t size64 = 0, v = 0;
    uint32_t count = 0;
    kern_return_t kr;

    atomic_store(&fork_lines, 0);
    apple_dext_set_log_handler(count_fork_lines, NULL);
#define REFUSED(expr, code) \
    do { \
        kr = (expr); \
        if (kr != kIOReturnNotPermitted) { \
            return child_fail((code), "%s: %s", #expr, \
                              apple_dext_strerror(kr)); \
        } \
    } while (0)
    REFUSED(apple_dext_config_read(c, 0, 4, &v), 20);
    REFUSED(apple_dext_get_identity(c, &info), 21);
    REFUSED(apple_dext_get_bar_info(c, 0, NULL, &size64, NULL), 22);
    REFUSED(apple_dext_mmio_read(c, 0, 0, 4, &v), 23);
    REFUSED(apple_dext_map_bar(c, 0, &addr, &size, NULL), 24);
    REFUSED(apple_dext_claim(c), 25);
    REFUSED(apple_dext_get_device_status(c, &ds), 26);
    REFUSED(apple_dext_get_claimers(c, NULL, 0, &count), 27);
#undef REFUSED
    if (apple_dext_interrupt_notify_create_fd(c) != NULL) {
        return child_fail(28, "a notification on the inherited connection");
    }
    if (atomic_load(&fork_lines) != 1) {
        return child_fail(29, "%d log lines about fork(), not 1",
                          atomic_load(&fork_lines));
    }
    if (strstr(apple_dext_last_error_detail(), "fork()") == NULL) {
        return child_fail(30, "the detail says '%s'",
                          apple_dext_last_error_detail());
    }
    return child_checks(c, 100, true);
}

static void test_refused(void)
{
    AppleDextStatus before = { .size = sizeof(before) };
    AppleDextStatus after = { .size = sizeof(after) };
    io_connect_t c = harness_connect_edu();
    bool counted;

    harness_section("a forked child's calls on its parent's connection: "
                    "kIOReturnNotPermitted; the parent's goes on");
    if (c == IO_OBJECT_NULL) {
        return;
    }
    parent_works(c, 1);
    counted = harness_status(&before);
    child_ok(start_child(child_refused, c, false), "refused");
    /* Long enough for dextd to have seen a hang-up, had there been one. */
    usleep(100 * 1000);
    parent_works(c, 100);
    if (counted && harness_status(&after)) {
        CHECK_EQ(after.sessions, before.sessions);
    }
    apple_dext_disconnect(c);
}

static int child_plain(io_connect_t c)
{
    return child_checks(c, 1000, true);
}

/* (a) Parent threads call all along: every answer is theirs. */
static void test_parent_calling(void)
{
    io_connect_t c = IO_OBJECT_NULL;
    Callers cs;
    int i;

    harness_section("children fork while %d parent threads call: no "
                    "crossed replies", CALLERS);
    if (!CHECK_KR(apple_dext_connect_target(target, EDU_BUS, EDU_DEV, EDU_FN,
                                            &c), kIOReturnSuccess)) {
        return;
    }
    callers_start(&cs, c, CALLERS);
    for (i = 0; i < 3; i++) {
        child_ok(start_child(child_plain, c, false), "parent calling");
    }
    callers_stop(&cs);
    parent_works(c, 10);
    apple_dext_disconnect(c);
}

static int child_quick(io_connect_t c)
{
    return child_checks(c, 50, true);
}

static int child_no_daemon(io_connect_t c)
{
    return child_checks(c, 50, false);
}

/* A parent thread's round trip to a stopped dextd, and who makes it. */
typedef struct InFlight {
    io_connect_t c;
    AppleDextInterruptNotify *n;
    atomic_int tid;
} InFlight;

static void *one_call(void *opaque)
{
    InFlight *f = opaque;
    uint64_t v = 0;
    kern_return_t kr;

    atomic_store(&f->tid, (int)gettid());
    kr = apple_dext_config_read(f->c, 0, 4, &v);
    return (void *)(uintptr_t)(kr == kIOReturnSuccess && v == EDU_IDS);
}

/* Destroying a notification unregisters its wake port: a round trip. */
static void *destroy_notification(void *opaque)
{
    InFlight *f = opaque;

    atomic_store(&f->tid, (int)gettid());
    apple_dext_interrupt_notify_destroy(f->n);
    return NULL;
}

/* @f's thread waits for dextd's reply now; false if it never does. */
static bool await_reply_wait(InFlight *f)
{
    return await_in_syscall(&f->tid, reply_waits,
                            (int)(sizeof(reply_waits) /
                                  sizeof(reply_waits[0])));
}

/*
 * Over dextd, stopped: one parent thread blocked in a call, another in
 * a notification's destroy (whose round trip a close waits out), when
 * the child forks.  Neither may hold the child up.
 */
static void fork_while_blocked(io_connect_t c)
{
    InFlight call = { .c = c }, destroy = { .c = c };
    AppleDextInterruptNotify *n;
    pthread_t tc, tn;
    void *good = NULL;

    CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
    CHECK_KR(apple_dext_setup_interrupts(c, NULL), kIOReturnSuccess);
    n = apple_dext_interrupt_notify_create_fd(c);
    if (!CHECK(n != NULL)) {
        return;
    }
    destroy.n = n;
    harness_pause_daemon();
    if (!CHECK(pthread_create(&tc, NULL, one_call, &call) == 0)) {
        harness_resume_daemon();
        apple_dext_interrupt_notify_destroy(n);
        return;
    }
    if (!CHECK(pthread_create(&tn, NULL, destroy_notification,
                              &destroy) == 0)) {
        harness_resume_daemon();
        pthread_join(tc, NULL);
        apple_dext_interrupt_notify_destroy(n);
        return;
    }
    CHECK_MSG(await_reply_wait(&call), "the call never waited for dextd");
    CHECK_MSG(await_reply_wait(&destroy),
              "the notification's destroy never waited for dextd");
    child_ok(start_child(child_no_daemon, c, false), "dextd stopped");
    harness_resume_daemon();
    pthread_join(tc, &good);
    pthread_join(tn, NULL);
    CHECK_MSG(good != NULL, "the parent's call in flight failed");
}

/*
 * (b) A parent thread inside a call at the fork: over dextd, blocked
 * for sure (fork_while_blocked()); then forks while threads call in a
 * loop, over every transport.
 */
static void test_inside_call(void)
{
    io_connect_t c = IO_OBJECT_NULL;
    Callers cs;
    int i;

    harness_section("children fork while a parent thread is inside a "
                    "call: no hang");
    if (!CHECK_KR(apple_dext_connect_target(target, EDU_BUS, EDU_DEV, EDU_FN,
                                            &c), kIOReturnSuccess)) {
        return;
    }
    if (harness_is_unix()) {
        fork_while_blocked(c);
    }
    callers_start(&cs, c, CALLERS);
    for (i = 0; i < FORKS; i++) {
        child_ok(start_child(child_quick, c, false), "inside a call");
        usleep(1000 + 1000 * (i % 4));
    }
    callers_stop(&cs);
    parent_works(c, 10);
    apple_dext_disconnect(c);
}

typedef struct Churn {
    atomic_bool stop;
    atomic_ulong rounds;
    atomic_ulong failed;
} Churn;

/* Connect, call, disconnect, over and over. */
static void *connect_loop(void *opaque)
{
    Churn *ch = opaque;
    uint64_t v;

    while (!atomic_load(&ch->stop)) {
        io_connect_t c = IO_OBJECT_NULL;

        if (apple_dext_connect_target(target, EDU_BUS, EDU_DEV, EDU_FN,
                                      &c) != kIOReturnSuccess ||
            apple_dext_config_read(c, 0, 4, &v) != kIOReturnSuccess ||
            v != EDU_IDS) {
            atomic_fetch_add(&ch->failed, 1);
        }
        apple_dext_disconnect(c);
        atomic_fetch_add(&ch->rounds, 1);
    }
    return NULL;
}

/* Disconnect nothing, over and over: the handle table's lock, mostly. */
static void *disconnect_loop(void *opaque)
{
    Churn *ch = opaque;

    while (!atomic_load(&ch->stop)) {
        apple_dext_disconnect(IO_OBJECT_NULL);
    }
    return NULL;
}

/*
 * (c) Forks while parent threads connect and disconnect.  Under ASan
 * the connecting thread is left out: its allocator is not locked around
 * fork(), so a child forked while that thread is in malloc() waits for
 * ever in its own (seen in about one run in five over unix-poll).  The
 * disconnecting thread, which holds the table's lock most of the time
 * and allocates nothing, still runs.
 */
static void test_connect_churn(void)
{
    io_connect_t c = harness_connect_edu();
    bool connects = !harness_under_asan();
    pthread_t tc, td;
    Churn ch;
    int i;

    harness_section("children fork while parent threads connect and "
                    "disconnect: the child's connect does not wait");
    if (c == IO_OBJECT_NULL) {
        return;
    }
    if (!connects) {
        printf("# ASan: no connecting thread (its malloc() is not "
               "fork-safe)\n");
    }
    memset(&ch, 0, sizeof(ch));
    if (connects && !CHECK(pthread_create(&tc, NULL, connect_loop,
                                          &ch) == 0)) {
        apple_dext_disconnect(c);
        return;
    }
    if (!CHECK(pthread_create(&td, NULL, disconnect_loop, &ch) == 0)) {
        atomic_store(&ch.stop, true);
        if (connects) {
            pthread_join(tc, NULL);
        }
        apple_dext_disconnect(c);
        return;
    }
    for (i = 0; i < FORKS; i++) {
        child_ok(start_child(child_quick, c, true), "connect churn");
        usleep(1000 + 1000 * (i % 4));
    }
    atomic_store(&ch.stop, true);
    if (connects) {
        pthread_join(tc, NULL);
        CHECK_MSG(atomic_load(&ch.rounds) > 0, "no connect in the loop");
    }
    pthread_join(td, NULL);
    CHECK_MSG(atomic_load(&ch.failed) == 0, "%lu of %lu connect rounds "
              "failed", atomic_load(&ch.failed), atomic_load(&ch.rounds));
    parent_works(c, 10);
    apple_dext_disconnect(c);
}

static __thread bool slow_logger;
static atomic_bool in_slow_handler;
static atomic_int forking_tid;          /* the thread about to fork */
static atomic_bool fork_waited;         /* and it waited for the handler */

static atomic_bool fork_begun;          /* our prepare hook has run */

/* Registered after libdext's, so it runs before libdext's prepare hooks. */
static void note_fork_begun(void)
{
    atomic_store(&fork_begun, true);
}

/*
 * On the logging thread, its first line only: stay in the handler until
 * the forking thread is inside fork() (our prepare hook ran) and waits
 * there in a futex (the handler's lock, which libdext's hook takes), so
 * the fork certainly comes while the handler runs.
 */
static void slow_handler(void *opaque, int level, const char *msg)
{
    static const long futex[] = { SYS_futex };
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;

    if (!slow_logger || atomic_exchange(&in_slow_handler, true)) {
        return;
    }
    while (!atomic_load(&fork_begun) && !harness_expired(&d)) {
        harness_backoff(&round);
    }
    atomic_store(&fork_waited, atomic_load(&fork_begun) &&
                 await_in_syscall(&forking_tid, futex, 1));
}

static atomic_bool forked;

static void *log_something(void *opaque)
{
    unsigned round = 0;
    uint32_t count = 0;

    slow_logger = true;
    /* An unknown target is explained in a line. */
    apple_dext_list_devices("nosuch:", NULL, 0, &count);
    /* Alive until the fork: TSan reports a child's finished threads. */
    while (!atomic_load(&forked)) {
        harness_backoff(&round);
    }
    return NULL;
}

/*
 * A parent thread inside the log handler at the fork: the child's
 * refusal, which logs, must not wait for it.
 */
static int child_logs(io_connect_t c)
{
    uint64_t v = 0;
    kern_return_t kr = apple_dext_config_read(c, 0, 4, &v);

    if (kr != kIOReturnNotPermitted) {
        return child_fail(40, "the inherited connection: %s",
                          apple_dext_strerror(kr));
    }
    apple_dext_disconnect(c);
    return 0;
}

static void test_in_log_handler(void)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    io_connect_t c = harness_connect_edu();
    unsigned round = 0;
    pthread_t t;

    harness_section("a child forked while a parent thread is in the log "
                    "handler: its own line does not wait");
    if (c == IO_OBJECT_NULL) {
        return;
    }
    atomic_store(&in_slow_handler, false);
    atomic_store(&forking_tid, 0);
    atomic_store(&fork_begun, false);
    atomic_store(&fork_waited, false);
    atomic_store(&forked, false);
    apple_dext_set_log_handler(slow_handler, NULL);
    if (CHECK(pthread_create(&t, NULL, log_something, NULL) == 0)) {
        while (!atomic_load(&in_slow_handler) && !harness_expired(&d)) {
            harness_backoff(&round);
        }
        CHECK_MSG(atomic_load(&in_slow_handler), "nothing was logged");
        atomic_store(&forking_tid, (int)gettid());
        child_ok(start_child(child_logs, c, true), "log handler");
        CHECK_MSG(atomic_load(&fork_waited),
                  "the fork did not wait for the log handler");
        atomic_store(&forked, true);
        pthread_join(t, NULL);
    }
    harness_restore_log_handler();
    parent_works(c, 10);
    apple_dext_disconnect(c);
}

static atomic_uint handler_runs;

static void count_runs(void *opaque)
{
    atomic_fetch_add(&handler_runs, 1);
}

/* The parent's notifications, inherited: they are not the child's. */
static AppleDextInterruptNotify *inherited_notify;
static AppleDextInterruptNotify *inherited_fd_notify;

static int child_notification(io_connect_t c)
{
    double t0 = harness_now_ms(), took;
    kern_return_t kr;

    kr = apple_dext_interrupt_notify_rearm(inherited_notify);
    if (kr != kIOReturnNotPermitted) {
        return child_fail(50, "rearm: %s", apple_dext_strerror(kr));
    }
    kr = apple_dext_interrupt_notify_rearm(inherited_fd_notify);
    if (kr != kIOReturnNotPermitted) {
        return child_fail(52, "rearm of the fd one: %s",
                          apple_dext_strerror(kr));
    }
    apple_dext_interrupt_notify_destroy(inherited_notify);
    apple_dext_interrupt_notify_destroy(inherited_fd_notify);
    took = harness_now_ms() - t0;
    if (took > 1000) {
        return child_fail(51, "destroy took %.0f ms", took);
    }
    return child_checks(c, 10, true);
}

static void test_notification(void)
{
    HarnessDeadline d;
    io_connect_t c = harness_connect_edu();
    struct pollfd pfd = { .events = POLLIN };
    uint64_t pending[4];
    unsigned round = 0;

    harness_section("a child destroys the parent's notifications: the "
                    "parent's fd and thread go on");
    if (c == IO_OBJECT_NULL) {
        return;
    }
    CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
    CHECK_KR(apple_dext_setup_interrupts(c, NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_drain_pending_irqs(c, pending), kIOReturnSuccess);
    atomic_store(&handler_runs, 0);
    /* The fd one first: the callback one's arm replaces its arm. */
    inherited_fd_notify = apple_dext_interrupt_notify_create_fd(c);
    inherited_notify = apple_dext_interrupt_notify_create(c, count_runs,
                                                          NULL);
    if (!CHECK(inherited_fd_notify != NULL) ||
        !CHECK(inherited_notify != NULL)) {
        apple_dext_interrupt_notify_destroy(inherited_notify);
        apple_dext_interrupt_notify_destroy(inherited_fd_notify);
        apple_dext_disconnect(c);
        return;
    }
    child_ok(start_child(child_notification, c, false), "notification");
    parent_works(c, 10);
    /*
     * The fd one still signals: armed again (its arm replaces the
     * callback one's), an interrupt makes its fd readable, not hung up.
     */
    CHECK_KR(apple_dext_interrupt_notify_rearm(inherited_fd_notify),
             kIOReturnSuccess);
    api_raise_msi(c, 1);
    pfd.fd = apple_dext_interrupt_notify_get_fd(inherited_fd_notify);
    CHECK_MSG(poll(&pfd, 1, HARNESS_WAIT_MS) == 1 &&
              pfd.revents == POLLIN, "the parent's fd notification: "
              "revents 0x%x", (unsigned)pfd.revents);
    CHECK_KR(apple_dext_drain_pending_irqs(c, pending), kIOReturnSuccess);
    CHECK_EQ(pending[0], 1);
    /* The parent's own destroy of the fd one, after the child's. */
    apple_dext_interrupt_notify_destroy(inherited_fd_notify);
    CHECK_KR(apple_dext_interrupt_notify_rearm(inherited_notify),
             kIOReturnSuccess);
    api_raise_msi(c, 1);
    d = harness_deadline(HARNESS_WAIT_MS);
    while (atomic_load(&handler_runs) == 0 && !harness_expired(&d)) {
        harness_backoff(&round);
    }
    CHECK_MSG(atomic_load(&handler_runs) == 1, "the parent's handler ran "
              "%u times, not once", atomic_load(&handler_runs));
    apple_dext_interrupt_notify_destroy(inherited_notify);
    apple_dext_disconnect(c);
}

/* The handler of test_fork_in_handler() and what it saw. */
static AppleDextInterruptNotify *forking_notify;
static io_connect_t forking_conn;
static atomic_int forked_child;
static atomic_uint forking_runs;

/*
 * Its first run forks; the child returns at once, into the library's
 * notification thread (its copy), as a handler that forgets to exec()
 * or _exit() would.  Every run in the parent counts, takes the pending
 * bit and rearms.
 */
static void fork_then_return(void *opaque)
{
    uint64_t pending[4];

    if (atomic_load(&forked_child) == 0) {
        pid_t pid;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid == 0) {
            alarm(CHILD_ALARM_S);
            return;
        }
        atomic_store(&forked_child, pid > 0 ? (int)pid : -1);
    }
    apple_dext_drain_pending_irqs(forking_conn, pending);
    atomic_fetch_add(&forking_runs, 1);
    apple_dext_interrupt_notify_rearm(forking_notify);
}

/* Wait for @runs handler runs in the parent; whether they came. */
static bool await_runs(unsigned runs)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;

    while (atomic_load(&forking_runs) < runs && !harness_expired(&d)) {
        harness_backoff(&round);
    }
    return CHECK_MSG(atomic_load(&forking_runs) == runs, "the parent's "
                     "handler ran %u times, not %u",
                     atomic_load(&forking_runs), runs);
}

/*
 * A handler that forks, the child returning from it: that child is a
 * copy of the notification thread and must not go on reading the
 * parent's completions; it ends at once (status 0) and every later
 * interrupt reaches the parent's handler.
 */
static void test_fork_in_handler(void)
{
    io_connect_t c = harness_connect_edu();
    uint64_t pending[4];
    int status = 0, i;
    pid_t pid;

    harness_section("a handler forks and the child returns: the child "
                    "ends, the parent's completions stay the parent's");
    if (c == IO_OBJECT_NULL) {
        return;
    }
    CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
    CHECK_KR(apple_dext_setup_interrupts(c, NULL), kIOReturnSuccess);
    CHECK_KR(apple_dext_drain_pending_irqs(c, pending), kIOReturnSuccess);
    atomic_store(&forked_child, 0);
    atomic_store(&forking_runs, 0);
    forking_conn = c;
    forking_notify = apple_dext_interrupt_notify_create(c, fork_then_return,
                                                        NULL);
    if (!CHECK(forking_notify != NULL)) {
        apple_dext_disconnect(c);
        return;
    }
    api_raise_msi(c, 1);
    await_runs(1);
    /* Reaped whatever the count said: a late fork still leaves a child. */
    if (CHECK(atomic_load(&forked_child) > 0)) {
        pid = (pid_t)atomic_load(&forked_child);
        if (CHECK(waitpid(pid, &status, 0) == pid)) {
            CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "the child that returned from the handler: status "
                      "0x%x (%s)", status,
                      WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ?
                      "it went on in the library until SIGALRM" : "?");
        }
        for (i = 2; i <= 4; i++) {
            api_raise_msi(c, 1);
            await_runs((unsigned)i);
        }
    }
    apple_dext_interrupt_notify_destroy(forking_notify);
    /* The destroy joined the handler's thread: a late fork is seen now. */
    pid = (pid_t)atomic_exchange(&forked_child, 0);
    if (pid > 0 && waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    apple_dext_disconnect(c);
}

int main(int argc, char **argv)
{
    io_connect_t c;

    harness_init(argc, argv, NULL);
    pthread_atfork(note_fork_begun, NULL, NULL);
    /* Over dextd, a call timeout: on a regression, a crossed reply
     * fails a call instead of hanging it. */
    snprintf(target, sizeof(target), "%s%s", harness_target(),
             harness_is_unix() ? ",timeout=3000" : "");
    if (harness_is_iokit()) {
        child_connect_refused = true;
        printf("# iokit: a child's connect must be refused (libdispatch "
               "would crash it)\n");
    } else if (harness_under_tsan() && !harness_is_unix()) {
        child_connects = false;
        printf("# TSan: children do not connect anew (an in-process core "
               "starts threads)\n");
    }
    c = harness_connect_edu();
    if (c == IO_OBJECT_NULL) {
        return harness_finish();
    }
    CHECK_KR(apple_dext_config_read(c, 8, 4, &class_rev), kIOReturnSuccess);
    CHECK(class_rev != EDU_IDS);
    apple_dext_disconnect(c);

    test_refused();
    test_parent_calling();
    test_inside_call();
    test_connect_churn();
    test_in_log_handler();
    test_notification();
    test_fork_in_handler();
    return harness_finish();
}
