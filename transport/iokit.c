/*
 * SPDX-License-Identifier: MIT
 *
 * The "iokit" transport: the real VFIOUserPCIDriver dext on macOS,
 * reached through IOKitLib.  Every hook is one or two IOKit calls; the
 * mapping is tabulated in docs/transports.md.
 *
 * Status: this file has only ever been *compiled* -- on Linux, against
 * the declaration-only headers in tests/iokit-compile/include, by gcc
 * and clang with -Wall -Wextra -Werror.  It has not been linked against
 * the real IOKit.framework nor run against the real dext.
 *
 * Wakes: IOConnectCallAsyncMethod completes through a Mach port.  Each
 * wake owns an IONotificationPort whose messages are dispatched on a
 * private serial dispatch queue; the completion callback sends one
 * byte into a socket pair, and its other end is the DextWake fd.  So the
 * fd the client library polls (apple_dext_interrupt_notify_get_fd())
 * behaves as the eventfd of the Linux transports: non-blocking, readable
 * once per completion or coalesced.
 *
 * A dead dext: an armed WaitInterrupt then never completes (the kernel
 * aborts it), so each connection also holds a kIOGeneralInterest
 * notification on the service; kIOMessageServiceIsTerminated, or a call
 * that finds the dext gone, hangs up the socket pairs of the
 * connection's live wakes, and their fds poll readable with POLLHUP, as
 * the unix transport's do when dextd dies.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CoreFoundation/CoreFoundation.h>
#include <IOKit/IOKitLib.h>
#include <IOKit/IOMessage.h>
#include <dispatch/dispatch.h>
#include <mach/mach.h>

#include "protocol/dext-selectors.h"
#include "support/fork.h"
#include "support/locks.h"
#include "support/log.h"
#include "transport/transport.h"

/* What the dext registers as (see ../shared/dext-contract.md). */
#define IOKIT_SERVICE_CLASS "IOUserService"
#define IOKIT_USER_CLASS_KEY "IOUserClass"
#define IOKIT_DEXT_CLASS "VFIOUserPCIDriver"

/* The transport interface's map options are IOKit's own bits. */
_Static_assert(DEXT_MAP_WRITE_COMBINE == kIOMapWriteCombineCache,
               "DEXT_MAP_WRITE_COMBINE must be kIOMapWriteCombineCache");

typedef struct IokitMapping {
    struct IokitMapping *next;
    uint32_t type;
    mach_vm_address_t addr;
    mach_vm_size_t size;
    /*
     * Map calls that returned this mapping: IOKit returns an existing
     * mapping of a type again and keeps one kernel reference for all.
     */
    unsigned holders;
    /* The DMA buffer's generation it was made of (type 0). */
    uint64_t dma_gen;
} IokitMapping;

typedef struct IokitWake IokitWake;

/*
 * The live wakes of one connection, which a wake outlives (transport.h):
 * shared by both, freed by the last of them.
 */
typedef struct IokitWakes {
    int refs;                   /* the connection + each wake (atomic) */
    unsigned fork_gen;          /* dext_fork_generation() at open */
    DextMutex lock;
    bool hung_up DEXT_GUARDED_BY(lock);
    IokitWake *head DEXT_GUARDED_BY(lock);
} IokitWakes;

typedef struct IokitConn {
    DextTransport base;
    io_connect_t connect;
    uint64_t service_id;        /* registry entry ID of the dext service */
    /* kIOGeneralInterest on the service, delivered on @notify_queue. */
    io_object_t interest;
    IONotificationPortRef notify_port;
    dispatch_queue_t notify_queue;
    IokitWakes *wakes;
    /* Set once a call finds the user client's port dead (atomic). */
    bool dead;
    /*
     * What this connection's own calls have done, for the reason of a
     * refused map (iokit_map_refused()); atomic.
     */
    bool claimed;
    bool dma_buffer;
    bool irq_setup;
    /* Bumped each time the DMA buffer is replaced or freed (atomic). */
    uint64_t dma_gen;

    DextMutex map_lock;
    IokitMapping *maps DEXT_GUARDED_BY(map_lock);
} IokitConn;

struct IokitWake {
    DextWake base;              /* base.fd: the socket pair's read end */
    int wfd;                    /* write end, fed by the dispatch queue */
    IONotificationPortRef port;
    dispatch_queue_t queue;
    mach_port_t wake_port;      /* owned by @port */
    IokitWakes *set;            /* its fork_gen is the wake's too */
    IokitWake *next;            /* in set->head, under set->lock */
};

static void iokit_wakes_unref(IokitWakes *set)
{
    if (__atomic_sub_fetch(&set->refs, 1, __ATOMIC_SEQ_CST) == 0) {
        /* In a forked child a parent thread may have held the lock. */
        if (!dext_forked_since(set->fork_gen)) {
            dext_mutex_destroy(&set->lock);
        }
        free(set);
    }
}

/*
 * No completion will come: hang up every live wake, now and for the ones
 * made later.  shutdown() leaves the fds open (a completion callback may
 * be sending on @wfd, and gets EPIPE) and makes the read end poll
 * readable with POLLHUP for good: Linux unix(7) sockets report POLLHUP
 * once both directions are shut down, macOS's poll(2) on EOF.
 */
static void iokit_wakes_hang_up(IokitWakes *set)
    DEXT_EXCLUDES(&set->lock)
{
    IokitWake *w;

    dext_mutex_lock(&set->lock);
    set->hung_up = true;
    for (w = set->head; w != NULL; w = w->next) {
        shutdown(w->wfd, SHUT_RDWR);
    }
    dext_mutex_unlock(&set->lock);
}

static void iokit_mark_dead(IokitConn *c)
{
    __atomic_store_n(&c->dead, true, __ATOMIC_SEQ_CST);
    iokit_wakes_hang_up(c->wakes);
}

/* Is the dext's service still in the registry? */
static bool iokit_service_alive(uint64_t id)
{
    CFMutableDictionaryRef matching = IORegistryEntryIDMatching(id);
    io_service_t service;

    if (matching == NULL) {
        return true;        /* cannot tell: do not declare it dead */
    }
    /* Consumes @matching. */
    service = IOServiceGetMatchingService(kIOMainPortDefault, matching);
    if (service == IO_OBJECT_NULL) {
        return false;
    }
    IOObjectRelease(service);
    return true;
}

/*
 * A dext that has gone answers in one of three ways (xnu IOUserServer.cpp
 * and IOUserClient.cpp; docs/transports.md): a crashed dext's RPCs fail
 * with kIOReturnOffline; once its service is terminated, a connection
 * holding a mapping fails every object check with kIOReturnBadArgument,
 * one holding none has a dead port (MACH_SEND_INVALID_DEST).  The
 * interface wants kIOReturnNotResponding from then on.  BadArgument is
 * also a plain refusal, so it counts only when the service has left the
 * registry.
 */
static IOReturn iokit_result(IokitConn *c, kern_return_t kr)
{
    if (kr == MACH_SEND_INVALID_DEST || kr == kIOReturnOffline ||
        (kr == kIOReturnBadArgument && !iokit_service_alive(c->service_id))) {
        iokit_mark_dead(c);
        return kIOReturnNotResponding;
    }
    return kr;
}

/* ------------------------------------------------------------------ */
/* Services                                                             */

static bool iokit_is_dext(io_service_t service)
{
    CFTypeRef prop;
    bool match = false;

    prop = IORegistryEntryCreateCFProperty(service, CFSTR(IOKIT_USER_CLASS_KEY),
                                           kCFAllocatorDefault, 0);
    if (prop == NULL) {
        return false;
    }
    if (CFGetTypeID(prop) == CFStringGetTypeID()) {
        match = CFStringCompare((CFStringRef)prop, CFSTR(IOKIT_DEXT_CLASS),
                                0) == kCFCompareEqualTo;
    }
    CFRelease(prop);
    return match;
}

static bool iokit_forked_after_dispatch(void);

static IOReturn iokit_list(const char *arg, uint64_t *ids, uint32_t max,
                           uint32_t *count)
{
    CFMutableDictionaryRef matching;
    io_iterator_t iter = IO_OBJECT_NULL;
    io_service_t service;
    uint32_t n = 0;
    kern_return_t kr;

    /* "iokit" names the one registry there is; it takes no argument. */
    if (arg[0] != '\0') {
        return kIOReturnBadArgument;
    }
    /*
     * Before any CoreFoundation call: CF, like libdispatch, is not for a
     * child that has not exec()ed.  Connects list first, so this is
     * their refusal too.
     */
    if (iokit_forked_after_dispatch()) {
        return kIOReturnNotPermitted;
    }
    matching = IOServiceMatching(IOKIT_SERVICE_CLASS);
    if (matching == NULL) {
        return kIOReturnNoMemory;
    }
    /* Consumes @matching whatever it returns. */
    kr = IOServiceGetMatchingServices(kIOMainPortDefault, matching, &iter);
    if (kr != KERN_SUCCESS) {
        return kr;
    }
    /* Success with no iterator means no service matched. */
    while (iter != IO_OBJECT_NULL &&
           (service = IOIteratorNext(iter)) != IO_OBJECT_NULL) {
        uint64_t id;

        if (iokit_is_dext(service) &&
            IORegistryEntryGetRegistryEntryID(service, &id) == KERN_SUCCESS) {
            if (n < max) {
                ids[n] = id;
            }
            n++;
        }
        IOObjectRelease(service);
    }
    if (iter != IO_OBJECT_NULL) {
        IOObjectRelease(iter);
    }
    *count = n;
    return kIOReturnSuccess;
}

/*
 * Every connection and every wake runs a notification port on a serial
 * dispatch queue of its own.  In a forked child of a process where
 * libdispatch has started threads -- as it has once this transport has
 * made a queue -- libdispatch poisons its queues, so that the first work
 * reaching one crashes the child (libdispatch init.c,
 * dispatch_atfork_child).  Such a child is refused a connection instead.
 *
 * @iokit_dispatch_gen: the fork generation at which this transport first
 * made a queue, plus one (0: never).  @iokit_fork_warned: the generation
 * plus one of the process that has said so once.
 */
static unsigned iokit_dispatch_gen;
static unsigned iokit_fork_warned;

static dispatch_queue_t iokit_queue_create(const char *label)
{
    unsigned none = 0;

    __atomic_compare_exchange_n(&iokit_dispatch_gen, &none,
                                dext_fork_generation() + 1, false,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return dispatch_queue_create(label, DISPATCH_QUEUE_SERIAL);
}

/*
 * Is this a forked child of a process that made a dispatch queue?  The
 * first time in each process, says why it cannot connect.
 */
static bool iokit_forked_after_dispatch(void)
{
    unsigned gen = __atomic_load_n(&iokit_dispatch_gen, __ATOMIC_SEQ_CST);
    unsigned now = dext_fork_generation();

    if (gen == 0 || !dext_forked_since(gen - 1)) {
        return false;
    }
    if (__atomic_exchange_n(&iokit_fork_warned, now + 1,
                            __ATOMIC_RELAXED) != now + 1) {
        dext_log(DEXT_LOG_WARNING, "iokit: no connection in a child "
                 "forked after an iokit connection: libdispatch, which "
                 "IOKit's notifications run on, crashes such a child; "
                 "exec() in it first (or use posix_spawn())");
    }
    return true;
}

/* An empty work item: dispatch_sync_f of it waits the queue out. */
static void iokit_nothing(void *opaque)
{
    (void)opaque;
}

/*
 * Interest callout, on @c->notify_queue.  kIOMessageServiceIsTerminated
 * comes in termination phase 2 (xnu IOService.cpp, actionDidTerminate:
 * messageClients), whether the dext exited or was unloaded, or crashed:
 * the kernel then terminates the dext's server (IOUserServer.cpp,
 * clientClose) and so its services; a crash itself sends nothing, and
 * until the termination only a call learns of it (kIOReturnOffline).
 * The service is the notifier's, not ours to release.
 */
static void iokit_service_message(void *refcon, io_service_t service,
                                  uint32_t type, void *arg)
{
    IokitConn *c = refcon;

    (void)service;
    (void)arg;
    if (type == kIOMessageServiceIsTerminated) {
        iokit_mark_dead(c);
    }
}

/*
 * Stop the interest notification: releasing it removes the kernel's
 * notifier, destroying the port cancels its dispatch source (a message
 * already queued is not delivered), and the serial queue is waited out
 * for a callout that is running.  None runs afterwards.
 */
static void iokit_interest_stop(IokitConn *c)
{
    if (c->interest != IO_OBJECT_NULL) {
        IOObjectRelease(c->interest);
        c->interest = IO_OBJECT_NULL;
    }
    if (c->notify_port != NULL) {
        IONotificationPortDestroy(c->notify_port);
        c->notify_port = NULL;
    }
    if (c->notify_queue != NULL) {
        dispatch_sync_f(c->notify_queue, NULL, iokit_nothing);
        __extension__ dispatch_release(c->notify_queue);
        c->notify_queue = NULL;
    }
}

static kern_return_t iokit_interest_start(IokitConn *c, io_service_t service)
{
    /* The parameter is an io_name_t, char[128]: pass one whole. */
    static const io_name_t general = kIOGeneralInterest;
    kern_return_t kr;

    c->notify_port = IONotificationPortCreate(kIOMainPortDefault);
    if (c->notify_port == NULL) {
        return kIOReturnNoResources;
    }
    c->notify_queue = iokit_queue_create("org.libdext.iokit.service");
    if (c->notify_queue == NULL) {
        return kIOReturnNoResources;
    }
    IONotificationPortSetDispatchQueue(c->notify_port, c->notify_queue);
    kr = IOServiceAddInterestNotification(c->notify_port, service,
                                          general, iokit_service_message, c,
                                          &c->interest);
    if (kr != KERN_SUCCESS) {
        c->interest = IO_OBJECT_NULL;
    }
    return kr;
}

static IOReturn iokit_open(const char *arg, uint64_t id, uint32_t type,
                           DextTransport **out)
{
    CFMutableDictionaryRef matching;
    io_service_t service;
    io_connect_t connect = IO_OBJECT_NULL;
    IokitConn *c;
    kern_return_t kr;

    if (arg[0] != '\0') {
        return kIOReturnBadArgument;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return kIOReturnNoMemory;
    }
    matching = IORegistryEntryIDMatching(id);
    if (matching == NULL) {
        free(c);
        return kIOReturnNoMemory;
    }
    service = IOServiceGetMatchingService(kIOMainPortDefault, matching);
    /*
     * IDs are not secret: check the class again so that an ID of some
     * other service cannot be opened through this library.
     */
    if (service == IO_OBJECT_NULL || !iokit_is_dext(service)) {
        if (service != IO_OBJECT_NULL) {
            IOObjectRelease(service);
        }
        free(c);
        return kIOReturnNotFound;
    }
    c->wakes = calloc(1, sizeof(*c->wakes));
    if (c->wakes == NULL) {
        IOObjectRelease(service);
        free(c);
        return kIOReturnNoMemory;
    }
    c->wakes->refs = 1;
    c->wakes->fork_gen = dext_fork_generation();
    dext_mutex_init(&c->wakes->lock);
    /*
     * Interest first: a termination after IOServiceOpen is then never
     * missed.  A service terminated since the lookup refuses one.
     */
    kr = iokit_interest_start(c, service);
    if (kr == KERN_SUCCESS) {
        kr = IOServiceOpen(service, mach_task_self(), type, &connect);
    } else if (!iokit_service_alive(id)) {
        kr = kIOReturnNotFound;
    }
    IOObjectRelease(service);
    if (kr != KERN_SUCCESS) {
        iokit_interest_stop(c);
        iokit_wakes_unref(c->wakes);
        free(c);
        return kr;
    }
    c->base.ops = &dext_transport_iokit;
    c->connect = connect;
    c->service_id = id;
    dext_mutex_init(&c->map_lock);
    c->maps = NULL;
    *out = &c->base;
    return kIOReturnSuccess;
}

/* ------------------------------------------------------------------ */
/* Method calls                                                         */

/*
 * Keep what the contract (../shared/dext-contract.md) makes a map of a
 * memory type depend on: the claim (BARs, for a connection that is not
 * the claimer), the DMA buffer (type 0) and SetupInterrupts (type 7).
 * Every call of this connection passes here, so the record is complete.
 */
static void iokit_note_call(IokitConn *c, uint32_t selector, kern_return_t kr)
{
    switch (selector) {
    case kDextSelectorClaim:
        if (kr == kIOReturnSuccess) {
            __atomic_store_n(&c->claimed, true, __ATOMIC_SEQ_CST);
        }
        break;
    case kDextSelectorAllocateDMABuffer:
        if (kr == kIOReturnSuccess) {
            __atomic_store_n(&c->dma_buffer, true, __ATOMIC_SEQ_CST);
            __atomic_add_fetch(&c->dma_gen, 1, __ATOMIC_SEQ_CST);
        }
        break;
    case kDextSelectorFreeDMABuffer:
        if (kr == kIOReturnSuccess) {
            __atomic_store_n(&c->dma_buffer, false, __ATOMIC_SEQ_CST);
            __atomic_add_fetch(&c->dma_gen, 1, __ATOMIC_SEQ_CST);
        }
        break;
    case kDextSelectorSetupInterrupts:
        /* StillOpen: set up by an earlier call. */
        if (kr == kIOReturnSuccess || kr == kIOReturnStillOpen) {
            __atomic_store_n(&c->irq_setup, true, __ATOMIC_SEQ_CST);
        }
        break;
    default:
        break;
    }
}

static IOReturn iokit_call(DextTransport *t, uint32_t selector,
                           const DextCallArgs *args)
{
    IokitConn *c = (IokitConn *)t;
    kern_return_t kr;

    if (__atomic_load_n(&c->dead, __ATOMIC_SEQ_CST)) {
        return kIOReturnNotResponding;
    }
    kr = IOConnectCallMethod(c->connect, selector,
                             args->scalar_in, args->scalar_in_cnt,
                             args->struct_in, args->struct_in_size,
                             args->scalar_out, args->scalar_out_cnt,
                             args->struct_out, args->struct_out_size);
    iokit_note_call(c, selector, kr);
    return iokit_result(c, kr);
}

/*
 * Completion callback, run on the wake's dispatch queue.  Only a
 * successful completion wakes: the in-process and socket dexts never
 * signal a wake for anything but an interrupt either.
 */
/*
 * A send to a socket whose peer is closed raises SIGPIPE unless told not
 * to: per call with MSG_NOSIGNAL (Linux send(2), the model's build), per
 * socket with SO_NOSIGPIPE (macOS setsockopt(2); xnu bsd/sys/socket.h),
 * set in iokit_wake_create().  A pipe has only Darwin's F_SETNOSIGPIPE,
 * which the Linux model could not run, hence the socket pair.
 */
#if defined(MSG_NOSIGNAL)
#define IOKIT_NOSIGNAL MSG_NOSIGNAL
#elif defined(SO_NOSIGPIPE)
#define IOKIT_NOSIGNAL 0
#else
#error "neither MSG_NOSIGNAL nor SO_NOSIGPIPE: a completion could raise SIGPIPE"
#endif

static void iokit_wake_fire(void *refcon, IOReturn result, void **args,
                            uint32_t num_args)
{
    IokitWake *w = refcon;
    ssize_t n;

    (void)args;
    (void)num_args;
    if (result != kIOReturnSuccess) {
        return;
    }
    /*
     * The read end is the caller's, who may have closed it: EPIPE, not
     * SIGPIPE (see iokit_wake_create()).
     */
    do {
        n = send(w->wfd, "", 1, IOKIT_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    /* EAGAIN: the buffer is full, so the fd is readable already. */
}

static IOReturn iokit_call_async(DextTransport *t, uint32_t selector,
                                 DextWake *wake, const DextCallArgs *args)
{
    IokitConn *c = (IokitConn *)t;
    IokitWake *w = (IokitWake *)wake;
    uint64_t ref[kOSAsyncRef64Count];
    kern_return_t kr;

    if (wake == NULL) {
        return kIOReturnBadArgument;
    }
    if (__atomic_load_n(&c->dead, __ATOMIC_SEQ_CST)) {
        return kIOReturnNotResponding;
    }
    memset(ref, 0, sizeof(ref));
    ref[kIOAsyncCalloutFuncIndex] = (uint64_t)(uintptr_t)iokit_wake_fire;
    ref[kIOAsyncCalloutRefconIndex] = (uint64_t)(uintptr_t)w;
    kr = IOConnectCallAsyncMethod(c->connect, selector, w->wake_port,
                                  ref, kIOAsyncCalloutCount,
                                  args->scalar_in, args->scalar_in_cnt,
                                  args->struct_in, args->struct_in_size,
                                  args->scalar_out, args->scalar_out_cnt,
                                  args->struct_out, args->struct_out_size);
    return iokit_result(c, kr);
}

/* ------------------------------------------------------------------ */
/* Wakes                                                                */

static bool iokit_fd_setup(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 &&
           fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

static uint64_t iokit_wake_consume(DextWake *wake)
{
    uint8_t buf[64];
    uint64_t total = 0;
    ssize_t n;

    for (;;) {
        n = read(wake->fd, buf, sizeof(buf));
        if (n > 0) {
            total += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        break;      /* EAGAIN: drained */
    }
    return total;
}

/* Take @w off its connection's list and stop its completions. */
static void iokit_wake_stop(IokitWake *w)
{
    IokitWake **pp;

    dext_mutex_lock(&w->set->lock);
    for (pp = &w->set->head; *pp != w; pp = &(*pp)->next) {
    }
    *pp = w->next;
    dext_mutex_unlock(&w->set->lock);

    /*
     * Destroying the port cancels its dispatch source, so no callback
     * starts after it; one may be running, and the queue is serial, so
     * an empty synchronous work item waits it out before the socket
     * closes under it.
     */
    IONotificationPortDestroy(w->port);
    dispatch_sync_f(w->queue, NULL, iokit_nothing);
    /* dispatch_object_t is a GNU transparent union in C. */
    __extension__ dispatch_release(w->queue);
}

static void iokit_wake_destroy(DextWake *wake)
{
    IokitWake *w = (IokitWake *)wake;

    /*
     * In a forked child of the process that made @w, only the socket
     * pair's fds and the memory are this process's: the port is not
     * (Mach port rights are not inherited), the queue's thread is not
     * here (and libdispatch, which poisons its queues in such a child,
     * is not to be called), and a parent thread may have held
     * @set->lock at the fork.  @w stays on the copied list, which
     * nothing reads in the child: no hook of the connection runs there.
     */
    if (!dext_forked_since(w->set->fork_gen)) {
        iokit_wake_stop(w);
    }
    close(w->base.fd);
    close(w->wfd);
    iokit_wakes_unref(w->set);
    free(w);
}

static const DextWakeOps iokit_wake_ops = {
    .consume = iokit_wake_consume,
    .destroy = iokit_wake_destroy,
};

static IOReturn iokit_wake_create(DextTransport *t, DextWake **out)
{
    IokitConn *c = (IokitConn *)t;
    IokitWakes *set = c->wakes;
    IokitWake *w = calloc(1, sizeof(*w));
    int p[2];

    if (w == NULL) {
        return kIOReturnNoMemory;
    }
    /* macOS has no SOCK_NONBLOCK or SOCK_CLOEXEC: flags after the fact. */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) < 0) {
        free(w);
        return kIOReturnNoResources;
    }
    if (!iokit_fd_setup(p[0]) || !iokit_fd_setup(p[1])) {
        goto fail_fds;
    }
#ifdef SO_NOSIGPIPE
    {
        int one = 1;

        if (setsockopt(p[1], SOL_SOCKET, SO_NOSIGPIPE, &one,
                       sizeof(one)) < 0) {
            goto fail_fds;
        }
    }
#endif
    w->base.ops = &iokit_wake_ops;
    w->base.fd = p[0];
    w->wfd = p[1];
    w->port = IONotificationPortCreate(kIOMainPortDefault);
    if (w->port == NULL) {
        goto fail_fds;
    }
    w->queue = iokit_queue_create("org.libdext.iokit.wake");
    if (w->queue == NULL) {
        IONotificationPortDestroy(w->port);
        goto fail_fds;
    }
    IONotificationPortSetDispatchQueue(w->port, w->queue);
    w->wake_port = IONotificationPortGetMachPort(w->port);
    __atomic_add_fetch(&set->refs, 1, __ATOMIC_SEQ_CST);
    w->set = set;
    dext_mutex_lock(&set->lock);
    if (set->hung_up) {
        shutdown(w->wfd, SHUT_RDWR);
    }
    w->next = set->head;
    set->head = w;
    dext_mutex_unlock(&set->lock);
    *out = &w->base;
    return kIOReturnSuccess;

fail_fds:
    close(p[0]);
    close(p[1]);
    free(w);
    return kIOReturnNoResources;
}

/* ------------------------------------------------------------------ */
/* Memory                                                               */

static IokitMapping **iokit_find_mapping(IokitConn *c, uint32_t type,
                                         mach_vm_address_t addr)
    DEXT_REQUIRES(&c->map_lock)
{
    IokitMapping **pp;

    for (pp = &c->maps; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->type == type && (*pp)->addr == addr) {
            return pp;
        }
    }
    return NULL;
}

/*
 * Record a map call's result.  A compatible mapping of the type that
 * exists already is returned again, and the user client, keeping its
 * mappings in a set, takes no new reference (IOMemoryDescriptor.cpp,
 * createMappingInTask and IOMemoryMap::copyCompatible; IOUserClient.cpp,
 * mapClientMemory64): then @m is freed and the one record counts one
 * more holder, so that only the last unmap reaches IOKit.
 */
static void iokit_add_mapping(IokitConn *c, IokitMapping *m)
    DEXT_EXCLUDES(&c->map_lock)
{
    IokitMapping **pp;

    dext_mutex_lock(&c->map_lock);
    pp = iokit_find_mapping(c, m->type, m->addr);
    if (pp != NULL && (*pp)->dma_gen == m->dma_gen) {
        (*pp)->holders++;
        free(m);
    } else {
        m->next = c->maps;
        c->maps = m;
    }
    dext_mutex_unlock(&c->map_lock);
}

/*
 * The reason the dext refused to map @type.  xnu's map path
 * (IOUserClient.cpp, is_io_connect_map_memory_into_task) answers
 * kIOReturnBadArgument whatever the dext's CopyClientMemoryForType
 * said, so the reason is asked again through the contract's own
 * selectors, which change nothing: GetIdentity for a device that has
 * gone (NoDevice after Terminate; NotResponding for a dead dext),
 * GetBARInfo for a BAR, and what this connection's calls did
 * (iokit_note_call()) for the rest.  The contract's answers
 * (../shared/dext-contract.md, "Memory types"): the DMA buffer and the
 * interrupt page are NotReady before AllocateDMABuffer and
 * SetupInterrupts; an unused BAR is GetBARInfo's error; a BAR reaches a
 * connection that is not the claimer only once the claimer has mapped
 * it (NotOpen); an I/O BAR, or memory the dext has but will not map,
 * is Unsupported, which the client caches.  An unknown type stays
 * BadArgument.
 */
static IOReturn iokit_map_refused(IokitConn *c, uint32_t type)
{
    uint64_t out[6];
    uint32_t n = 6;
    DextCallArgs a = { .scalar_out = out, .scalar_out_cnt = &n };
    uint64_t bar;
    IOReturn ret;

    ret = iokit_call(&c->base, kDextSelectorGetIdentity, &a);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    switch (type) {
    case kDextMemoryTypeDMABuffer:
        return __atomic_load_n(&c->dma_buffer, __ATOMIC_SEQ_CST) ?
               kIOReturnUnsupported : kIOReturnNotReady;
    case kDextMemoryTypeInterruptPage:
        return __atomic_load_n(&c->irq_setup, __ATOMIC_SEQ_CST) ?
               kIOReturnUnsupported : kIOReturnNotReady;
    default:
        break;
    }
    if (type < kDextMemoryTypeBAR0 || type >= kDextMemoryTypeInterruptPage) {
        return kIOReturnBadArgument;
    }
    bar = type - kDextMemoryTypeBAR0;
    n = 3;
    a = (DextCallArgs){ .scalar_in = &bar, .scalar_in_cnt = 1,
                        .scalar_out = out, .scalar_out_cnt = &n };
    ret = iokit_call(&c->base, kDextSelectorGetBARInfo, &a);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (!(out[2] & 1) && !__atomic_load_n(&c->claimed, __ATOMIC_SEQ_CST)) {
        return kIOReturnNotOpen;
    }
    return kIOReturnUnsupported;
}

static IOReturn iokit_map(DextTransport *t, uint32_t type, uint32_t options,
                          mach_vm_address_t *addr, mach_vm_size_t *size)
{
    IokitConn *c = (IokitConn *)t;
    IokitMapping *m;
    mach_vm_address_t a = 0;
    mach_vm_size_t s = 0;
    uint64_t gen;
    kern_return_t kr;

    if (__atomic_load_n(&c->dead, __ATOMIC_SEQ_CST)) {
        return kIOReturnNotResponding;
    }
    m = malloc(sizeof(*m));
    if (m == NULL) {
        return kIOReturnNoMemory;
    }
    /* Read first: a buffer replaced during the call makes it stale. */
    gen = type == kDextMemoryTypeDMABuffer ?
          __atomic_load_n(&c->dma_gen, __ATOMIC_SEQ_CST) : 0;
    kr = IOConnectMapMemory64(c->connect, type, mach_task_self(), &a, &s,
                              kIOMapAnywhere | options);
    if (kr != KERN_SUCCESS) {
        IOReturn ret = iokit_result(c, kr);

        free(m);
        return ret == kIOReturnBadArgument ? iokit_map_refused(c, type) : ret;
    }
    m->type = type;
    m->addr = a;
    m->size = s;
    m->holders = 1;
    m->dma_gen = gen;
    iokit_add_mapping(c, m);
    *addr = a;
    *size = s;
    return kIOReturnSuccess;
}

/*
 * IOConnectUnmapMemory64 ignores the address: it removes the task's
 * mapping of the type's *current* memory (IOUserClient.cpp,
 * is_io_connect_unmap_memory_from_task).  A DMA buffer mapping made
 * before AllocateDMABuffer replaced the buffer, or FreeDMABuffer freed
 * it, can therefore not be unmapped through IOKit: the call would take
 * the new buffer's mapping instead, or fail.  Such a mapping is only
 * forgotten; it stays in the task until IOServiceClose releases the
 * user client's mappings.
 */
static bool iokit_mapping_stale(IokitConn *c, const IokitMapping *m)
{
    return m->type == kDextMemoryTypeDMABuffer &&
           m->dma_gen != __atomic_load_n(&c->dma_gen, __ATOMIC_SEQ_CST);
}

static IOReturn iokit_unmap(DextTransport *t, uint32_t type,
                            mach_vm_address_t addr)
{
    IokitConn *c = (IokitConn *)t;
    IokitMapping **pp, *m = NULL;
    kern_return_t kr;
    IOReturn ret;

    /*
     * The last holder's record leaves the list before the call, so that
     * two unmaps of one mapping cannot both reach the kernel, and the
     * call (a message to the dext) is made with no lock held.
     */
    dext_mutex_lock(&c->map_lock);
    pp = iokit_find_mapping(c, type, addr);
    if (pp != NULL && (*pp)->holders > 1) {
        (*pp)->holders--;
        dext_mutex_unlock(&c->map_lock);
        return kIOReturnSuccess;
    }
    if (pp != NULL) {
        m = *pp;
        *pp = m->next;
    }
    dext_mutex_unlock(&c->map_lock);
    if (m == NULL) {
        return kIOReturnBadArgument;
    }
    if (iokit_mapping_stale(c, m)) {
        free(m);
        return kIOReturnSuccess;
    }
    kr = IOConnectUnmapMemory64(c->connect, type, mach_task_self(), addr);
    ret = iokit_result(c, kr);
    /* A dead user client takes its mappings with it on close. */
    if (kr == KERN_SUCCESS || ret == kIOReturnNotResponding) {
        free(m);
    } else {
        /* Still mapped: keep it for another unmap, or close. */
        dext_mutex_lock(&c->map_lock);
        m->next = c->maps;
        c->maps = m;
        dext_mutex_unlock(&c->map_lock);
    }
    return ret;
}

static void iokit_close(DextTransport *t)
{
    IokitConn *c = (IokitConn *)t;
    IokitMapping *m;

    /* IOServiceClose would take them all; unmapping first is tidier. */
    while ((m = c->maps) != NULL) {
        c->maps = m->next;
        if (!iokit_mapping_stale(c, m)) {
            IOConnectUnmapMemory64(c->connect, m->type, mach_task_self(),
                                   m->addr);
        }
        free(m);
    }
    /* Before the close: the user client's end is no news. */
    iokit_interest_stop(c);
    IOServiceClose(c->connect);
    iokit_wakes_unref(c->wakes);
    dext_mutex_destroy(&c->map_lock);
    free(c);
}

/*
 * In a forked child, of a connection its parent opened: the user client
 * and the interest notification's port and queue are the parent's, and
 * so are the mappings, of which the child has no copy to unmap (IOKit
 * maps memory into a task with VM_INHERIT_NONE: xnu
 * IOMemoryDescriptor.cpp, memoryReferenceMap).  Only memory is ours:
 * the mapping records and the connection, freed without @map_lock, which
 * a parent thread may have held at the fork.
 */
static void iokit_close_inherited(DextTransport *t)
{
    IokitConn *c = (IokitConn *)t;
    IokitMapping *m;

    while ((m = c->maps) != NULL) {
        c->maps = m->next;
        free(m);
    }
    iokit_wakes_unref(c->wakes);
    free(c);
}

const DextTransportOps dext_transport_iokit = {
    .name = "iokit",
    .child_needs_exec = true,
    .list_services = iokit_list,
    .status = NULL,             /* the real dext keeps no such counters */
    .open = iokit_open,
    .call = iokit_call,
    .call_async = iokit_call_async,
    .wake_create = iokit_wake_create,
    .map = iokit_map,
    .unmap = iokit_unmap,
    .close = iokit_close,
    .close_inherited = iokit_close_inherited,
};
