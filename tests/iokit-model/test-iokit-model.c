/*
 * SPDX-License-Identifier: MIT
 *
 * transport/iokit.c's hooks driven directly against the model of
 * IOKitLib (iokit-model.h): what the API programs cannot reach, such as
 * a dext that crashes or whose service is terminated under an open
 * connection; and the model's own refusal of what a forked child may
 * not use.
 */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dispatch/dispatch.h>

#include "apple-dext-client.h"
#include "check.h"
#include "protocol/dext-selectors.h"
#include "tests/iokit-model/iokit-model.h"
#include "transport/transport.h"

static const DextTransportOps *ops = &dext_transport_iokit;

static uint64_t ids[16];
static uint32_t n_ids;

/* The registry ID of dext service @i, as first listed. */
static uint64_t service(uint32_t i)
{
    if (n_ids == 0) {
        CHECK_KR(ops->list_services("", ids, 16, &n_ids), kIOReturnSuccess);
    }
    return CHECK(n_ids > i) ? ids[i] : 0;
}

static IOReturn call0(DextTransport *t, uint32_t selector)
{
    DextCallArgs a = { 0 };

    return t->ops->call(t, selector, &a);
}

static IOReturn identity(DextTransport *t)
{
    uint64_t out[6];
    uint32_t n = 6;
    DextCallArgs a = { .scalar_out = out, .scalar_out_cnt = &n };

    return t->ops->call(t, kDextSelectorGetIdentity, &a);
}

/*
 * Each of the three ways a dext goes away must read as NotResponding
 * from then on (transport.h), whatever IOKit answers.
 */
static void test_dead(uint32_t svc, IokitModelDeath how, bool with_mapping)
{
    DextTransport *t = NULL;
    uint64_t id = service(svc);
    mach_vm_address_t addr;
    mach_vm_size_t size;
    uint64_t out[1];
    uint32_t n = 1;
    DextCallArgs setup = { .scalar_out = out, .scalar_out_cnt = &n };

    harness_section("dext %s, %s mapping held\n",
           how == IOKIT_MODEL_CRASHED ? "crashed" : "terminated",
           with_mapping ? "a" : "no");
    if (!CHECK_KR(ops->open("", id, 0, &t), kIOReturnSuccess)) {
        return;
    }
    if (with_mapping) {
        CHECK_KR(call0(t, kDextSelectorClaim), kIOReturnSuccess);
        CHECK_KR(t->ops->call(t, kDextSelectorSetupInterrupts, &setup),
                 kIOReturnSuccess);
        CHECK_KR(t->ops->map(t, 7, 0, &addr, &size), kIOReturnSuccess);
    }
    CHECK(iokit_model_kill(id, how));
    CHECK_KR(identity(t), kIOReturnNotResponding);
    CHECK_KR(identity(t), kIOReturnNotResponding);
    t->ops->close(t);
}

static IOReturn map(DextTransport *t, uint32_t type, mach_vm_address_t *addr)
{
    mach_vm_size_t size;

    return t->ops->map(t, type, 0, addr, &size);
}

/*
 * Bug 2: IOKit turns every refusal of the dext's into BadArgument on the
 * map path; the transport must hand the client the contract's reason
 * (NotReady, NotOpen, Unsupported, NoDevice) so that it can act on it.
 */
static void test_map_reasons(uint32_t svc)
{
    DextTransport *t = NULL, *other = NULL;
    mach_vm_address_t addr;
    uint64_t out[6];
    uint32_t n = 1;
    DextCallArgs setup = { .scalar_out = out, .scalar_out_cnt = &n };

    harness_section("a refused map says why\n");
    if (!CHECK_KR(ops->open("", service(svc), 0, &t), kIOReturnSuccess) ||
        !CHECK_KR(ops->open("", service(svc), 0, &other),
                  kIOReturnSuccess)) {
        return;
    }
    CHECK_KR(map(t, kDextMemoryTypeDMABuffer, &addr), kIOReturnNotReady);
    CHECK_KR(map(t, kDextMemoryTypeInterruptPage, &addr), kIOReturnNotReady);
    /* edu's BAR0 is emulated MMIO, which the core will not map. */
    CHECK_KR(map(t, kDextMemoryTypeBAR0, &addr), kIOReturnNotOpen);
    CHECK_KR(map(t, kDextMemoryTypeBAR0 + 1, &addr), kIOReturnNotFound);
    CHECK_KR(call0(t, kDextSelectorClaim), kIOReturnSuccess);
    CHECK_KR(map(t, kDextMemoryTypeBAR0, &addr), kIOReturnUnsupported);
    CHECK_KR(t->ops->call(t, kDextSelectorSetupInterrupts, &setup),
             kIOReturnSuccess);
    if (CHECK_KR(map(t, kDextMemoryTypeInterruptPage, &addr),
                 kIOReturnSuccess)) {
        CHECK_KR(t->ops->unmap(t, kDextMemoryTypeInterruptPage, addr),
                 kIOReturnSuccess);
    }
    CHECK_KR(map(other, kDextMemoryTypeInterruptPage, &addr),
             kIOReturnNotReady);
    CHECK_KR(map(t, 8, &addr), kIOReturnBadArgument);
    CHECK_KR(call0(t, kDextSelectorTerminate), kIOReturnSuccess);
    CHECK_KR(map(t, kDextMemoryTypeDMABuffer, &addr), kIOReturnNoDevice);
    CHECK_KR(map(other, kDextMemoryTypeInterruptPage, &addr),
             kIOReturnNoDevice);
    other->ops->close(other);
    t->ops->close(t);
}

/*
 * Bug 3: a second map of one type returns the first mapping again and
 * adds no reference in the kernel, so one unmap would pull the memory
 * from under the other holder.
 */
static void test_map_twice(uint32_t svc)
{
    DextTransport *t = NULL;
    mach_vm_address_t a = 0, b = 0;
    uint64_t out[1];
    uint32_t n = 1;
    DextCallArgs setup = { .scalar_out = out, .scalar_out_cnt = &n };

    harness_section("one type mapped twice, unmapped once\n");
    if (!CHECK_KR(ops->open("", service(svc), 0, &t), kIOReturnSuccess)) {
        return;
    }
    CHECK_KR(call0(t, kDextSelectorClaim), kIOReturnSuccess);
    CHECK_KR(t->ops->call(t, kDextSelectorSetupInterrupts, &setup),
             kIOReturnSuccess);
    if (CHECK_KR(map(t, kDextMemoryTypeInterruptPage, &a), kIOReturnSuccess) &&
        CHECK_KR(map(t, kDextMemoryTypeInterruptPage, &b), kIOReturnSuccess) &&
        CHECK(a == b)) {
        CHECK_KR(t->ops->unmap(t, kDextMemoryTypeInterruptPage, a),
                 kIOReturnSuccess);
        CHECK(iokit_model_mapped(b));
        CHECK_KR(t->ops->unmap(t, kDextMemoryTypeInterruptPage, b),
                 kIOReturnSuccess);
        CHECK(!iokit_model_mapped(b));
        CHECK_KR(t->ops->unmap(t, kDextMemoryTypeInterruptPage, b),
                 kIOReturnBadArgument);
    }
    t->ops->close(t);
}

static IOReturn allocate_buffer(DextTransport *t, uint64_t size)
{
    uint64_t in[2] = { size, 0 };
    uint64_t out[6];
    uint32_t n = 6;
    DextCallArgs a = { .scalar_in = in, .scalar_in_cnt = 2,
                       .scalar_out = out, .scalar_out_cnt = &n };

    return t->ops->call(t, kDextSelectorAllocateDMABuffer, &a);
}

/*
 * Bug 4: IOKit unmaps a type's *current* memory, whatever the address;
 * unmapping the old DMA buffer's address after AllocateDMABuffer
 * replaced it must not take the new buffer's mapping away.
 */
static void test_unmap_replaced(uint32_t svc)
{
    DextTransport *t = NULL;
    mach_vm_address_t old = 0, cur = 0;

    harness_section("unmap of a replaced DMA buffer\n");
    if (!CHECK_KR(ops->open("", service(svc), 0, &t), kIOReturnSuccess)) {
        return;
    }
    CHECK_KR(call0(t, kDextSelectorClaim), kIOReturnSuccess);
    CHECK_KR(allocate_buffer(t, 4096), kIOReturnSuccess);
    CHECK_KR(map(t, kDextMemoryTypeDMABuffer, &old), kIOReturnSuccess);
    CHECK_KR(allocate_buffer(t, 8192), kIOReturnSuccess);
    if (CHECK_KR(map(t, kDextMemoryTypeDMABuffer, &cur), kIOReturnSuccess) &&
        CHECK(cur != old)) {
        CHECK_KR(t->ops->unmap(t, kDextMemoryTypeDMABuffer, old),
                 kIOReturnSuccess);
        CHECK(iokit_model_mapped(cur));
        CHECK_KR(t->ops->unmap(t, kDextMemoryTypeDMABuffer, cur),
                 kIOReturnSuccess);
        CHECK(!iokit_model_mapped(cur));
    }
    /* Freed, then the stale mapping unmapped: no call reaches IOKit. */
    CHECK_KR(map(t, kDextMemoryTypeDMABuffer, &cur), kIOReturnSuccess);
    CHECK_KR(call0(t, kDextSelectorFreeDMABuffer), kIOReturnSuccess);
    CHECK_KR(t->ops->unmap(t, kDextMemoryTypeDMABuffer, cur),
             kIOReturnSuccess);
    t->ops->close(t);
}

/*
 * Bug 7: an IOServiceOpen refusal (a missing entitlement) must reach the
 * caller of apple_dext_connect_target() as itself, not as "no device".
 */
static void test_open_refused(void)
{
    uint64_t out[6];
    uint32_t i;
    io_connect_t c = IO_OBJECT_NULL;
    DextTransport *t = NULL;
    uint32_t n = 6;
    DextCallArgs a = { .scalar_out = out, .scalar_out_cnt = &n };

    harness_section("IOServiceOpen refused\n");
    if (!CHECK_KR(ops->open("", service(4), 0, &t), kIOReturnSuccess)) {
        return;
    }
    CHECK_KR(t->ops->call(t, kDextSelectorGetIdentity, &a), kIOReturnSuccess);
    t->ops->close(t);
    for (i = 0; i < n_ids; i++) {
        iokit_model_refuse_open(ids[i], kIOReturnNotPermitted);
    }
    CHECK_KR(apple_dext_connect_target("iokit", (uint8_t)out[0],
                                       (uint8_t)out[1], (uint8_t)out[2], &c),
             kIOReturnNotPermitted);
    for (i = 0; i < n_ids; i++) {
        iokit_model_refuse_open(ids[i], kIOReturnSuccess);
    }
    if (CHECK_KR(apple_dext_connect_target("iokit", (uint8_t)out[0],
                                           (uint8_t)out[1], (uint8_t)out[2],
                                           &c), kIOReturnSuccess)) {
        apple_dext_disconnect(c);
    }
}

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

/*
 * Bug 6: the wake's fd is the caller's (apple_dext_interrupt_notify_get_fd());
 * once the caller has closed it, a completion must not raise SIGPIPE in
 * a process that never asked for signals.  Counted here, not fatal, so
 * that the test says what went wrong.
 */
static void test_wake_reader_gone(uint32_t svc)
{
    struct sigaction sa = { .sa_handler = on_sigpipe }, old;
    struct timespec ms = { 0, 1000000 };
    DextTransport *t = NULL;
    DextWake *w = NULL;
    uint64_t out[6], bar[3], wr[4] = { 0, 0x60, 4, 1 };
    uint32_t n = 1, nbar = 3, i;
    unsigned before;
    DextCallArgs setup = { .scalar_out = out, .scalar_out_cnt = &n };
    DextCallArgs info = { .scalar_in = out, .scalar_in_cnt = 1,
                          .scalar_out = bar, .scalar_out_cnt = &nbar };
    DextCallArgs raise = { .scalar_in = wr, .scalar_in_cnt = 4 };
    DextCallArgs none = { 0 };

    harness_section("completion after the wake's reader closed its fd\n");
    sigaction(SIGPIPE, &sa, &old);
    if (!CHECK_KR(ops->open("", service(svc), 0, &t), kIOReturnSuccess)) {
        return;
    }
    CHECK_KR(call0(t, kDextSelectorClaim), kIOReturnSuccess);
    CHECK_KR(t->ops->call(t, kDextSelectorSetupInterrupts, &setup),
             kIOReturnSuccess);
    out[0] = 0;         /* edu's BAR0: the interrupt raise register */
    CHECK_KR(t->ops->call(t, kDextSelectorGetBARInfo, &info),
             kIOReturnSuccess);
    wr[0] = bar[0];
    if (!CHECK_KR(t->ops->wake_create(t, &w), kIOReturnSuccess)) {
        t->ops->close(t);
        return;
    }
    close(w->fd);
    before = iokit_model_completions();
    CHECK_KR(t->ops->call(t, kDextSelectorMMIOWrite, &raise),
             kIOReturnSuccess);
    CHECK_KR(t->ops->call_async(t, kDextSelectorWaitInterrupt, w, &none),
             kIOReturnSuccess);
    for (i = 0; i < 5000 && iokit_model_completions() == before; i++) {
        nanosleep(&ms, NULL);
    }
    CHECK(iokit_model_completions() > before);
    /* Give the destroy below an fd of its own to close. */
    w->fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->ops->destroy(w);
    t->ops->close(t);
    CHECK_EQ(sigpipes, 0);
    sigaction(SIGPIPE, &old, NULL);
}

/* poll() @w's fd for @ms; its revents, 0 on a timeout. */
static short poll_wake(DextWake *w, int ms)
{
    struct pollfd pfd = { .fd = w->fd, .events = POLLIN };

    return poll(&pfd, 1, ms) == 1 ? pfd.revents : 0;
}

/* How the client learns that a dext died (test_dead_wake()). */
typedef enum DeadWake {
    CRASH_THEN_CALL = 1,        /* crashed; a call meets kIOReturnOffline */
    CRASH_THEN_TERMINATE,       /* crashed; the kernel terminates it */
    TERMINATE_MAPPED,           /* terminated, a mapping held */
    TERMINATE_UNMAPPED,         /* terminated, no mapping held */
    TERMINATE_AFTER_CLOSE,      /* terminated after the transport closed */
} DeadWake;

/*
 * Bug 5: a WaitInterrupt armed when the dext dies never completes, so a
 * client polling the wake's fd must learn it otherwise: the fd polls
 * readable and hung up, a level, as unix's does when dextd dies
 * (apple_dext_interrupt_notify_create_fd()), and rearming answers
 * NotResponding.  A closed transport's wakes stay quiet.
 */
static void test_dead_wake(uint32_t svc, DeadWake how)
{
    static const char *const what[] = {
        [CRASH_THEN_CALL] = "crashed, then a call",
        [CRASH_THEN_TERMINATE] = "crashed, then terminated",
        [TERMINATE_MAPPED] = "terminated, a mapping held",
        [TERMINATE_UNMAPPED] = "terminated, no mapping held",
        [TERMINATE_AFTER_CLOSE] = "terminated after close",
    };
    DextTransport *t = NULL;
    DextWake *w = NULL;
    uint64_t id = service(svc);
    mach_vm_address_t addr;
    uint64_t out[1];
    uint32_t n = 1;
    DextCallArgs setup = { .scalar_out = out, .scalar_out_cnt = &n };
    DextCallArgs none = { 0 };
    unsigned before = iokit_model_messages();
    short rev;

    harness_section("armed fd wake, dext %s\n", what[how]);
    if (!CHECK_KR(ops->open("", id, 0, &t), kIOReturnSuccess)) {
        return;
    }
    CHECK_KR(call0(t, kDextSelectorClaim), kIOReturnSuccess);
    CHECK_KR(t->ops->call(t, kDextSelectorSetupInterrupts, &setup),
             kIOReturnSuccess);
    if (how == TERMINATE_MAPPED) {
        CHECK_KR(map(t, kDextMemoryTypeInterruptPage, &addr),
                 kIOReturnSuccess);
    }
    if (!CHECK_KR(t->ops->wake_create(t, &w), kIOReturnSuccess)) {
        t->ops->close(t);
        return;
    }
    CHECK_KR(t->ops->call_async(t, kDextSelectorWaitInterrupt, w, &none),
             kIOReturnSuccess);
    CHECK_EQ(poll_wake(w, 0), 0);
    if (how == TERMINATE_AFTER_CLOSE) {
        t->ops->close(t);
        t = NULL;
    }
    switch (how) {
    case CRASH_THEN_CALL:
        CHECK(iokit_model_kill(id, IOKIT_MODEL_CRASHED));
        /* A crash tells nobody: quiet until someone asks. */
        CHECK_EQ(poll_wake(w, 100), 0);
        CHECK_KR(identity(t), kIOReturnNotResponding);
        break;
    case CRASH_THEN_TERMINATE:
        CHECK(iokit_model_kill(id, IOKIT_MODEL_CRASHED));
        CHECK_EQ(poll_wake(w, 100), 0);
        CHECK(iokit_model_kill(id, IOKIT_MODEL_TERMINATED));
        break;
    default:
        CHECK(iokit_model_kill(id, IOKIT_MODEL_TERMINATED));
        break;
    }
    if (how == TERMINATE_AFTER_CLOSE) {
        CHECK_EQ(poll_wake(w, 200), 0);
        CHECK_EQ(iokit_model_messages(), before);
        w->ops->destroy(w);
        return;
    }
    rev = poll_wake(w, 5000);
    CHECK_MSG((rev & POLLIN) && (rev & POLLHUP), "revents 0x%x", rev);
    /* A level: it stays so, even once consumed. */
    w->ops->consume(w);
    CHECK(poll_wake(w, 0) & POLLHUP);
    CHECK_KR(t->ops->call_async(t, kDextSelectorWaitInterrupt, w, &none),
             kIOReturnNotResponding);
    CHECK_KR(identity(t), kIOReturnNotResponding);
    w->ops->destroy(w);
    t->ops->close(t);
}

/*
 * Strictness: room for fewer scalar outputs than the method returns is a
 * caller's bug the kernel answers with BadArgument; the model aborts on
 * it.  Caught here, so the test can see the model notice.
 */
static void test_short_output_room(uint32_t svc)
{
    char said[256] = "";
    DextTransport *t = NULL;
    uint64_t out[6];
    uint32_t room = 2;
    DextCallArgs a = { .scalar_out = out, .scalar_out_cnt = &room };

    harness_section("output room smaller than the method returns\n");
    if (!CHECK_KR(ops->open("", service(svc), 0, &t), kIOReturnSuccess)) {
        return;
    }
    iokit_model_catch_misuse(said, sizeof(said));
    CHECK_KR(t->ops->call(t, kDextSelectorGetIdentity, &a),
             kIOReturnBadArgument);
    iokit_model_catch_misuse(NULL, 0);
    CHECK_MSG(strcmp(said, "selector 0: room for 2 scalar outputs, the "
                     "method returns 6") == 0,
              "the model did not notice: '%s'", said);
    t->ops->close(t);
}

/* What the children of test_fork_misuse() use of their parent's. */
static DextTransport *parent_conn;
static IONotificationPortRef parent_port;

static void child_calls(void)
{
    identity(parent_conn);
}

static void child_uses_port(void)
{
    IONotificationPortGetMachPort(parent_port);
}

static void child_uses_dispatch(void)
{
    dispatch_queue_create("child", DISPATCH_QUEUE_SERIAL);
}

static void child_own_port(void)
{
    IONotificationPortRef own = IONotificationPortCreate(kIOMainPortDefault);

    if (own != NULL) {
        IONotificationPortGetMachPort(own);
        IONotificationPortDestroy(own);
    }
}

/*
 * Run @fn in a forked child whose stderr is a pipe.  With @what, it must
 * die of SIGABRT having said a misuse line containing @what; without,
 * it must return (the child then exits 0) and say no misuse.
 */
static void in_child(void (*fn)(void), const char *what)
{
    char buf[1024];
    size_t got = 0;
    int p[2], status = 0;
    ssize_t n;
    pid_t pid;

    if (!CHECK(pipe(p) == 0)) {
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        alarm(10);
        dup2(p[1], 2);
        fn();
        _exit(0);
    }
    close(p[1]);
    while (got < sizeof(buf) - 1 &&
           (n = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0) {
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(p[0]);
    if (!CHECK(pid > 0 && waitpid(pid, &status, 0) == pid)) {
        return;
    }
    if (what != NULL) {
        CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "%s: status 0x%x, not SIGABRT", what, status);
        CHECK_MSG(strstr(buf, "MISUSE") != NULL && strstr(buf, what) != NULL,
                  "%s: it said \"%s\"", what, buf);
    } else {
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "a child's own port: status 0x%x", status);
        CHECK_MSG(strstr(buf, "MISUSE") == NULL, "a child's own port: it "
                  "said \"%s\"", buf);
    }
}

/*
 * The model's own fork rules, which test-fork leans on over iokit: a
 * forked child has no right to its parent's io objects or notification
 * ports, and no libdispatch once the parent's had started threads, so
 * each use aborts the child at once with a line naming it; a port the
 * child makes is its own.
 */
static void test_fork_misuse(uint32_t svc)
{
    dispatch_queue_t q;

    harness_section("a forked child using its parent's objects aborts\n");
    if (!CHECK_KR(ops->open("", service(svc), 0, &parent_conn),
                  kIOReturnSuccess)) {
        return;
    }
    parent_port = IONotificationPortCreate(kIOMainPortDefault);
    q = dispatch_queue_create("parent", DISPATCH_QUEUE_SERIAL);
    if (CHECK(parent_port != NULL) && CHECK(q != NULL)) {
        CHECK_KR(identity(parent_conn), kIOReturnSuccess);
        in_child(child_calls, "the parent's io object, in a forked child");
        in_child(child_uses_port, "the parent's notification port, in a "
                 "forked child");
        in_child(child_uses_dispatch, "libdispatch used in a forked child");
        in_child(child_own_port, NULL);
        /* The parent's own go on. */
        CHECK_KR(identity(parent_conn), kIOReturnSuccess);
        CHECK(IONotificationPortGetMachPort(parent_port) != 0);
    }
    if (q != NULL) {
        dispatch_release(q);
    }
    if (parent_port != NULL) {
        IONotificationPortDestroy(parent_port);
    }
    parent_conn->ops->close(parent_conn);
}

int main(void)
{
    /* Edus: each death case and each Terminate spends one. */
    setenv("IOKIT_MODEL_DEVICES",
           "edu+edu,bdf=00:04.0+edu,bdf=00:05.0+edu,bdf=00:06.0+"
           "edu,bdf=00:07.0+edu,bdf=00:08.0+edu,bdf=00:09.0+"
           "edu,bdf=00:0a.0+edu,bdf=00:0b.0+edu,bdf=00:0c.0+"
           "edu,bdf=00:0d.0+edu,bdf=00:0e.0", 1);
    test_dead(0, IOKIT_MODEL_CRASHED, false);
    test_dead(1, IOKIT_MODEL_TERMINATED, true);
    test_dead(2, IOKIT_MODEL_TERMINATED, false);
    test_map_reasons(3);
    test_map_twice(4);
    test_unmap_replaced(4);
    test_open_refused();
    test_wake_reader_gone(5);
    test_dead_wake(6, CRASH_THEN_CALL);
    test_dead_wake(7, CRASH_THEN_TERMINATE);
    test_dead_wake(8, TERMINATE_MAPPED);
    test_dead_wake(9, TERMINATE_UNMAPPED);
    test_dead_wake(10, TERMINATE_AFTER_CLOSE);
    test_short_output_room(11);
    test_fork_misuse(11);
    return harness_finish();
}
