/*
 * SPDX-License-Identifier: MIT
 *
 * A behavioural model of IOKitLib, CoreFoundation, libdispatch and Mach
 * for transport/iokit.c on Linux (see iokit-model.h).  Written from
 * Apple's documentation and open-source headers, which are cited per
 * behaviour and never copied:
 *
 *   [IOKitLib.h]   IOKitUser, IOKitLib.h (function contracts)
 *   [IOKitLib.c]   IOKitUser, IOKitLib.c (IODispatchCalloutFromMessage,
 *                  IOServiceClose, IOConnectCallAsyncMethod)
 *   [OSMsgNotif]   xnu, iokit/IOKit/OSMessageNotification.h
 *   [IOUserClient] xnu, iokit/Kernel/IOUserClient.cpp
 *                  (is_io_connect_method, is_io_connect_async_method,
 *                  is_io_connect_map_memory_into_task,
 *                  is_io_connect_unmap_memory_from_task,
 *                  IOUserClient::mapClientMemory64)
 *   [IOMemDesc]    xnu, iokit/Kernel/IOMemoryDescriptor.cpp
 *                  (createMappingInTask, IOMemoryMap::copyCompatible)
 *   [IOUserServer] xnu, iokit/Kernel/IOUserServer.cpp (crashed dext;
 *                  IOUserServer::clientClose terminates the server)
 *   [IOService]    xnu, iokit/Kernel/IOService.cpp (actionDidTerminate:
 *                  messageClients(kIOMessageServiceIsTerminated) in
 *                  termination phase 2; registerInterest)
 *   [IOKitLib.h]   also IOServiceAddInterestNotification, whose
 *                  notification object the caller releases to stop it
 *   [CF]           Apple developer documentation, "Memory Management
 *                  Programming Guide for Core Foundation" (Create and
 *                  Copy rules, CFRelease of a freed object)
 *   [dispatch]     libdispatch, dispatch/queue.h and dispatch/object.h
 *                  (serial queues, dispatch_sync deadlock, release)
 *   [dispatch-fork] libdispatch, src/init.c dispatch_atfork_child and
 *                  src/queue.c _dispatch_queue_atfork_child (in the child
 *                  of a process where it had gone multithreaded, its
 *                  queues are poisoned: work reaching them crashes)
 *   [ipc_tt]       xnu, osfmk/kern/ipc_tt.c ipc_task_init (a forked
 *                  child's task gets a new port space, in which only the
 *                  registered, exception and bootstrap ports carry over)
 *   [semantics]    ../shared/notes/iokit-semantics.md, which summarises
 *                  the above for this project
 *
 * Every object is kept (in a never-freed list) after its last release,
 * so that a use after release is caught instead of being undefined.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CoreFoundation/CoreFoundation.h>
#include <IOKit/IOKitLib.h>
#include <dispatch/dispatch.h>
#include <IOKit/IOMessage.h>
#include <mach/mach.h>

#include "backends/backend.h"
#include "core/dext-core.h"
#include "tests/iokit-model/iokit-model.h"

/* Callout signatures IOKitLib picks by argument count [IOKitLib.c]. */
typedef void (*ModelCallback1)(void *refcon, IOReturn result, void *arg0);
typedef void (*ModelCallback2)(void *refcon, IOReturn result, void *arg0,
                               void *arg1);

/* Options the caller may set (kIOMapUserOptionsMask) [IOUserClient]. */
#define MODEL_MAP_USER_OPTIONS 0xfffu
#define MODEL_MAP_CACHE_MASK   0x0f00u

#define MODEL_OTHER_CLASS "AppleSomeOtherDriver"

static pthread_mutex_t model_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned completions;

static void misuse(const char *fmt, ...) __attribute__((noreturn,
                                                        format(printf, 1, 2)));

static void misuse(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "iokit-model: MISUSE: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

/* Where a test catches the next misuse instead of aborting (this thread). */
static __thread char *misuse_buf;
static __thread size_t misuse_buf_len;

void iokit_model_catch_misuse(char *buf, size_t len)
{
    misuse_buf = buf;
    misuse_buf_len = len;
}

/*
 * A misuse a test asked to catch: the line goes to its buffer and the
 * caller answers as the kernel would.  False if nobody catches it.
 */
static bool misuse_caught(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static bool misuse_caught(const char *fmt, ...)
{
    va_list ap;

    if (misuse_buf == NULL) {
        return false;
    }
    va_start(ap, fmt);
    vsnprintf(misuse_buf, misuse_buf_len, fmt, ap);
    va_end(ap);
    misuse_buf = NULL;
    return true;
}

/* ------------------------------------------------------------------ */
/* fork()                                                               */

/*
 * fork()s since the model was first used, counted by a pthread_atfork()
 * child handler.  Notification ports, io objects and dispatch queues
 * record the count they were made at, and a forked child that uses one
 * of its parent's is stopped as a misuse: its task starts with a port
 * space of its own, where none of the parent's ports is [ipc_tt], and
 * libdispatch, once it has started threads, poisons its queues in a
 * child so that the first work reaching them crashes it [dispatch-fork].
 *
 * fork() takes model_lock, so that a child finds it free and the
 * registry whole: a child may still list services and make objects of
 * its own, as on macOS.  The handlers are installed at first use, after
 * libdext's: fork() then takes model_lock before the log handler's lock,
 * which a thread booting the machine can take under model_lock.
 */
static unsigned model_forks;
static pthread_once_t model_forks_once = PTHREAD_ONCE_INIT;

static void model_fork_prepare(void)
{
    pthread_mutex_lock(&model_lock);
}

static void model_fork_parent(void)
{
    pthread_mutex_unlock(&model_lock);
}

static void model_fork_child(void)
{
    __atomic_add_fetch(&model_forks, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&model_lock);
}

static void model_watch_forks(void)
{
    if (pthread_atfork(model_fork_prepare, model_fork_parent,
                       model_fork_child) != 0) {
        misuse("pthread_atfork: cannot watch forks");
    }
}

/* The fork count now: record it in what is made. */
static unsigned model_generation(void)
{
    pthread_once(&model_forks_once, model_watch_forks);
    return __atomic_load_n(&model_forks, __ATOMIC_RELAXED);
}

/* Was what recorded @gen made by this process's parent (or earlier)? */
static bool model_inherited(unsigned gen)
{
    return model_generation() != gen;
}

/* ------------------------------------------------------------------ */
/* Mach                                                                 */

/* The task's own port name; any non-null value will do. */
mach_port_t mach_task_self_ = 0x103;

/*
 * kIOMainPortDefault is documented as MACH_PORT_NULL, which IOKitLib
 * replaces with the main port [IOKitLib.h, semantics "Method calls"].
 */
const mach_port_t kIOMainPortDefault = MACH_PORT_NULL;

static void check_main_port(mach_port_t p, const char *fn)
{
    if (p != MACH_PORT_NULL) {
        misuse("%s: main port %#x is not kIOMainPortDefault", fn, p);
    }
}

/* ------------------------------------------------------------------ */
/* CoreFoundation                                                       */

typedef enum CfKind {
    CF_STRING = 1,
    CF_DICT_CLASS,      /* IOServiceMatching */
    CF_DICT_ENTRY_ID,   /* IORegistryEntryIDMatching */
} CfKind;

#define CF_MAGIC 0x43464f42u

struct __CFString {
    uint32_t magic;
    CfKind kind;
    int refs;           /* 0: released; -1: constant, immortal */
    char *str;
    uint64_t id;
    unsigned gen;       /* model_generation() when made */
    struct __CFString *next_all;
};

/* CFDictionary objects share the representation. */
struct __CFDictionary {
    struct __CFString cf;
};

static struct __CFString *cf_all;
static unsigned cf_live;

const CFAllocatorRef kCFAllocatorDefault = NULL;

static struct __CFString *cf_new(CfKind kind, const char *str, uint64_t id,
                                 int refs)
{
    struct __CFString *o = calloc(1, sizeof(*o));

    if (o == NULL || (str != NULL && (o->str = strdup(str)) == NULL)) {
        misuse("out of memory");
    }
    o->magic = CF_MAGIC;
    o->kind = kind;
    o->refs = refs;
    o->id = id;
    o->gen = model_generation();
    pthread_mutex_lock(&model_lock);
    o->next_all = cf_all;
    cf_all = o;
    if (refs > 0) {
        cf_live++;
    }
    pthread_mutex_unlock(&model_lock);
    return o;
}

static struct __CFString *cf_check(CFTypeRef cf, const char *fn)
{
    struct __CFString *o = (struct __CFString *)cf;

    if (o == NULL) {
        misuse("%s(NULL)", fn);
    }
    if (o->magic != CF_MAGIC) {
        misuse("%s(%p): not a CF object", fn, cf);
    }
    if (o->refs == 0) {
        /* A released object's memory is gone on macOS [CF]. */
        misuse("%s(%p): CF object used after its last release", fn, cf);
    }
    return o;
}

/*
 * CFSTR() constants live as long as the program and ignore retain and
 * release [CF]; one object per distinct string.
 */
CFStringRef __CFStringMakeConstantString(const char *cStr)
{
    struct __CFString *o;

    pthread_mutex_lock(&model_lock);
    for (o = cf_all; o != NULL; o = o->next_all) {
        if (o->refs == -1 && strcmp(o->str, cStr) == 0) {
            pthread_mutex_unlock(&model_lock);
            return o;
        }
    }
    pthread_mutex_unlock(&model_lock);
    return cf_new(CF_STRING, cStr, 0, -1);
}

CFTypeID CFStringGetTypeID(void)
{
    return CF_STRING;
}

CFTypeID CFGetTypeID(CFTypeRef cf)
{
    struct __CFString *o = cf_check(cf, "CFGetTypeID");

    /* Both dictionary kinds are CFDictionary. */
    return o->kind == CF_STRING ? (CFTypeID)CF_STRING : (CFTypeID)CF_DICT_CLASS;
}

CFTypeRef CFRetain(CFTypeRef cf)
{
    struct __CFString *o = cf_check(cf, "CFRetain");

    pthread_mutex_lock(&model_lock);
    if (o->refs > 0) {
        o->refs++;
    }
    pthread_mutex_unlock(&model_lock);
    return cf;
}

/* Release one reference; the last one frees the object [CF]. */
void CFRelease(CFTypeRef cf)
{
    struct __CFString *o = cf_check(cf, "CFRelease");

    pthread_mutex_lock(&model_lock);
    if (o->refs > 0 && --o->refs == 0) {
        cf_live--;
    }
    pthread_mutex_unlock(&model_lock);
}

CFStringRef CFStringCreateWithCString(CFAllocatorRef alloc, const char *cStr,
                                      CFStringEncoding encoding)
{
    return cf_new(CF_STRING, cStr, 0, 1);
}

CFComparisonResult CFStringCompare(CFStringRef theString1,
                                   CFStringRef theString2,
                                   CFStringCompareFlags compareOptions)
{
    struct __CFString *a = cf_check(theString1, "CFStringCompare");
    struct __CFString *b = cf_check(theString2, "CFStringCompare");
    int r;

    if (a->kind != CF_STRING || b->kind != CF_STRING) {
        misuse("CFStringCompare of a non-string");
    }
    r = (compareOptions & kCFCompareCaseInsensitive) ?
        strcasecmp(a->str, b->str) : strcmp(a->str, b->str);
    return r < 0 ? kCFCompareLessThan :
           r > 0 ? kCFCompareGreaterThan : kCFCompareEqualTo;
}

Boolean CFStringGetCString(CFStringRef theString, char *buffer,
                           CFIndex bufferSize, CFStringEncoding encoding)
{
    struct __CFString *o = cf_check(theString, "CFStringGetCString");

    if (bufferSize <= 0 || strlen(o->str) >= (size_t)bufferSize) {
        return 0;
    }
    strcpy(buffer, o->str);
    return 1;
}

/* ------------------------------------------------------------------ */
/* libdispatch: serial queues on one thread each                        */

#define DQ_MAGIC 0x44517565u

typedef struct DqItem {
    struct DqItem *next;
    dispatch_function_t fn;
    void *ctx;
    bool *done;         /* dispatch_sync_f: set when run */
} DqItem;

struct dispatch_queue_s {
    uint32_t magic;
    int refs;           /* 0: released (kept for the use-after check) */
    unsigned gen;       /* model_generation() when made */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    DqItem *head, **tail;
    bool stop;
    struct dispatch_queue_s *next_all;
};

static struct dispatch_queue_s *dq_all;
static __thread struct dispatch_queue_s *dq_current;
/* Whether a queue thread was ever started, and at which generation. */
static bool dq_threaded;
static unsigned dq_threaded_gen;

/*
 * Any call in a forked child of a process in which libdispatch had
 * started threads: the real one crashes the child, sooner or later
 * (when work reaches a poisoned queue), or waits for ever on a queue
 * whose thread was busy at the fork [dispatch-fork].  The model stops it
 * at once, whatever the call.
 */
static void dq_check_fork(const char *fn)
{
    bool threaded;
    unsigned gen;

    pthread_mutex_lock(&model_lock);
    threaded = dq_threaded;
    gen = dq_threaded_gen;
    pthread_mutex_unlock(&model_lock);
    if (threaded && model_inherited(gen)) {
        misuse("%s: libdispatch used in a forked child of a process in "
               "which it had started threads (macOS: the child crashes, "
               "or waits for a thread it does not have)", fn);
    }
}

static struct dispatch_queue_s *dq_check(struct dispatch_queue_s *q,
                                         const char *fn)
{
    if (q == NULL || q->magic != DQ_MAGIC) {
        misuse("%s(%p): not a dispatch queue", fn, (void *)q);
    }
    dq_check_fork(fn);
    if (__atomic_load_n(&q->refs, __ATOMIC_SEQ_CST) <= 0) {
        /* "It is undefined to use an object after its last release"
         * [dispatch, object.h dispatch_release]. */
        misuse("%s(%p): dispatch queue used after its last release", fn,
               (void *)q);
    }
    return q;
}

/* A serial queue runs one item at a time, in FIFO order [dispatch]. */
static void *dq_thread(void *opaque)
{
    struct dispatch_queue_s *q = opaque;

    dq_current = q;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        DqItem *it = q->head;

        if (it == NULL) {
            if (q->stop) {
                break;
            }
            pthread_cond_wait(&q->cond, &q->lock);
            continue;
        }
        q->head = it->next;
        if (q->head == NULL) {
            q->tail = &q->head;
        }
        pthread_mutex_unlock(&q->lock);
        it->fn(it->ctx);
        pthread_mutex_lock(&q->lock);
        if (it->done != NULL) {
            *it->done = true;
            pthread_cond_broadcast(&q->cond);
        }
        free(it);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

dispatch_queue_t dispatch_queue_create(const char *label,
                                       dispatch_queue_attr_t attr)
{
    struct dispatch_queue_s *q = calloc(1, sizeof(*q));

    if (q == NULL) {
        return NULL;
    }
    if (attr != DISPATCH_QUEUE_SERIAL) {
        misuse("dispatch_queue_create: only serial queues are modelled");
    }
    dq_check_fork("dispatch_queue_create");
    q->magic = DQ_MAGIC;
    q->refs = 1;
    q->gen = model_generation();
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    q->tail = &q->head;
    if (pthread_create(&q->thread, NULL, dq_thread, q) != 0) {
        free(q);
        return NULL;
    }
    pthread_detach(q->thread);
    pthread_mutex_lock(&model_lock);
    if (!dq_threaded) {
        dq_threaded = true;
        dq_threaded_gen = q->gen;
    }
    q->next_all = dq_all;
    dq_all = q;
    pthread_mutex_unlock(&model_lock);
    return q;
}

static void dq_push(struct dispatch_queue_s *q, dispatch_function_t fn,
                    void *ctx, bool *done)
{
    DqItem *it = calloc(1, sizeof(*it));

    if (it == NULL) {
        misuse("out of memory");
    }
    it->fn = fn;
    it->ctx = ctx;
    it->done = done;
    pthread_mutex_lock(&q->lock);
    *q->tail = it;
    q->tail = &it->next;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

void dispatch_async_f(dispatch_queue_t queue, void *context,
                      dispatch_function_t work)
{
    dq_push(dq_check(queue, "dispatch_async_f"), work, context, NULL);
}

/*
 * Runs @work on @queue and waits for it.  "Calling this function and
 * targeting the current queue results in deadlock" [dispatch, queue.h
 * dispatch_sync]: the model refuses instead of hanging.
 */
void dispatch_sync_f(dispatch_queue_t queue, void *context,
                     dispatch_function_t work)
{
    struct dispatch_queue_s *q = dq_check(queue, "dispatch_sync_f");
    bool done = false;

    if (dq_current == q) {
        misuse("dispatch_sync_f onto the queue it runs on: deadlock");
    }
    dq_push(q, work, context, &done);
    pthread_mutex_lock(&q->lock);
    while (!done) {
        pthread_cond_wait(&q->cond, &q->lock);
    }
    pthread_mutex_unlock(&q->lock);
}

void dispatch_retain(dispatch_object_t object)
{
    struct dispatch_queue_s *q = dq_check(object._dq, "dispatch_retain");

    __atomic_add_fetch(&q->refs, 1, __ATOMIC_SEQ_CST);
}

/*
 * The last release frees the queue once the work submitted to it has
 * run [dispatch, object.h]: the thread finishes its items and exits.
 */
void dispatch_release(dispatch_object_t object)
{
    struct dispatch_queue_s *q = dq_check(object._dq, "dispatch_release");

    if (__atomic_sub_fetch(&q->refs, 1, __ATOMIC_SEQ_CST) == 0) {
        pthread_mutex_lock(&q->lock);
        q->stop = true;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
    }
}

/* ------------------------------------------------------------------ */
/* The registry: one service per device of a dext core                  */

typedef enum IoKind {
    IO_SERVICE = 1,
    IO_ITERATOR,
    IO_CONNECT,
    IO_INTEREST,        /* IOServiceAddInterestNotification's */
} IoKind;

typedef struct ModelService {
    uint64_t entry_id;      /* registry entry ID */
    uint64_t core_id;       /* 0: the non-dext service */
    const char *user_class;
    IokitModelDeath death;  /* 0: alive */
    IOReturn refuse_open;
} ModelService;

typedef struct ModelMapping {
    struct ModelMapping *next;
    dev_t dev;              /* the memory's identity: file and offset */
    ino_t ino;
    uint64_t offset;
    void *addr;
    size_t size;
    uint32_t cache;
} ModelMapping;

/* (type, address) pairs a map call returned on a connection. */
typedef struct ModelMapSeen {
    struct ModelMapSeen *next;
    uint32_t type;
    mach_vm_address_t addr;
} ModelMapSeen;

typedef struct IoObject {
    IoKind kind;
    int refs;               /* 0: released */
    unsigned gen;           /* model_generation() when made */
    bool closed;            /* IO_CONNECT: IOServiceClose was called */
    ModelService *service;  /* IO_SERVICE, IO_CONNECT */
    /* IO_ITERATOR: the services left to return */
    ModelService **items;
    unsigned n_items, next_item;
    /* IO_CONNECT */
    DextSession *session;
    ModelMapping *maps;     /* the user client's set of mappings */
    ModelMapSeen *seen;
    /* IO_INTEREST */
    struct IONotificationPort *port;
    IOServiceInterestCallback callout;
    void *refcon;
    io_service_t held;      /* the notifier's own reference */
} IoObject;

#define MODEL_MAX_SERVICES (DEXT_MAX_SERVICES + 1)
#define MODEL_MAX_OBJECTS 65536
#define MODEL_NAME_BASE 0x1003u

static DextCore *core;
static ModelService services[MODEL_MAX_SERVICES];
static unsigned n_services;
static IoObject *objects[MODEL_MAX_OBJECTS];
static unsigned n_objects;      /* names are never reused */
static unsigned io_live;

static IOReturn model_add_device(void *opaque, DextDevice *dev)
{
    IOReturn ret = dext_core_add_device(core, dev, NULL);

    return ret == kIOReturnUnsupported ? kIOReturnSuccess : ret;
}

/*
 * "stale-dma" in IOKIT_MODEL_DEVICES: a dext that breaks the contract's
 * ProbeDMARegion rule the way ../shared/notes/upstream.md fears
 * PCIDriverKit might, by reading a registered region through a copy
 * taken when it was registered (copy-on-write), so that later writes of
 * the client never reach it.  Only for tests that must see a dext fail
 * (dextctl selftest); the copies are kept per connection and key.
 */
typedef struct StaleRegion {
    struct StaleRegion *next;
    const void *conn;
    uint64_t iova;
    uint64_t size;
    uint8_t *copy;
} StaleRegion;

static bool stale_dma;
static pthread_mutex_t stale_lock = PTHREAD_MUTEX_INITIALIZER;
static StaleRegion *stale_regions;

static void poller_start(void);

/* Build the machine on first use; model_lock held. */
static void model_boot(void)
{
    const char *env = getenv("IOKIT_MODEL_DEVICES");
    char buf[512];
    char *spec, *save = NULL;
    uint64_t ids[DEXT_MAX_SERVICES];
    uint32_t n, i;

    if (core != NULL) {
        return;
    }
    snprintf(buf, sizeof(buf), "%s", env != NULL && env[0] ? env : "edu");
    poller_start();
    core = dext_core_new(NULL, NULL);
    if (core == NULL) {
        misuse("cannot create the dext core");
    }
    for (spec = strtok_r(buf, "+", &save); spec != NULL;
         spec = strtok_r(NULL, "+", &save)) {
        if (strcmp(spec, "contract-only") == 0) {
            dext_core_set_contract_only(core, true);
        } else if (strcmp(spec, "no-irq-page") == 0) {
            dext_core_set_no_irq_page(core, true);
        } else if (strcmp(spec, "stale-dma") == 0) {
            stale_dma = true;
        } else if (dext_device_create_each(spec, model_add_device, NULL) !=
                   kIOReturnSuccess) {
            misuse("IOKIT_MODEL_DEVICES: bad device spec '%s'", spec);
        }
    }
    /* Another driver's service first: the transport must skip it. */
    services[0].entry_id = 0x100000500ull;
    services[0].user_class = MODEL_OTHER_CLASS;
    n_services = 1;
    n = dext_core_list(core, ids, DEXT_MAX_SERVICES);
    for (i = 0; i < n && i < DEXT_MAX_SERVICES; i++) {
        /* Registry IDs are large and opaque, unlike the core's. */
        services[n_services].entry_id = 0x100000800ull + ids[i] * 0x10;
        services[n_services].core_id = ids[i];
        services[n_services].user_class = "VFIOUserPCIDriver";
        n_services++;
    }
}

static ModelService *service_by_entry(uint64_t id)
{
    unsigned i;

    pthread_mutex_lock(&model_lock);
    model_boot();
    pthread_mutex_unlock(&model_lock);
    for (i = 0; i < n_services; i++) {
        if (services[i].entry_id == id) {
            return &services[i];
        }
    }
    return NULL;
}

static io_object_t io_new(IoKind kind, ModelService *svc)
{
    IoObject *o = calloc(1, sizeof(*o));
    io_object_t name;

    if (o == NULL) {
        misuse("out of memory");
    }
    o->kind = kind;
    o->refs = 1;
    o->gen = model_generation();
    o->service = svc;
    pthread_mutex_lock(&model_lock);
    if (n_objects == MODEL_MAX_OBJECTS) {
        misuse("more than %u io objects made", MODEL_MAX_OBJECTS);
    }
    name = MODEL_NAME_BASE + n_objects * 4;
    objects[n_objects++] = o;
    io_live++;
    pthread_mutex_unlock(&model_lock);
    return name;
}

/* The live object named @name, of @kind (0: any). */
static IoObject *io_get(io_object_t name, IoKind kind, const char *fn)
{
    unsigned i = (name - MODEL_NAME_BASE) / 4;
    IoObject *o;

    if (name < MODEL_NAME_BASE || (name - MODEL_NAME_BASE) % 4 != 0 ||
        i >= __atomic_load_n(&n_objects, __ATOMIC_SEQ_CST)) {
        misuse("%s(%#x): not an io object name", fn, name);
    }
    o = objects[i];
    if (__atomic_load_n(&o->refs, __ATOMIC_SEQ_CST) <= 0) {
        misuse("%s(%#x): io object used after its last release%s", fn, name,
               o->kind == IO_CONNECT ? " (a closed connection)" : "");
    }
    if (kind != 0 && o->kind != kind) {
        misuse("%s(%#x): wrong kind of io object", fn, name);
    }
    if (model_inherited(o->gen)) {
        misuse("%s(%#x): the parent's io object, in a forked child, which "
               "has no right to it [ipc_tt]", fn, name);
    }
    return o;
}

static void io_unref(IoObject *o)
{
    io_service_t held = IO_OBJECT_NULL;

    pthread_mutex_lock(&model_lock);
    if (--o->refs == 0) {
        io_live--;
        held = o->held;
    }
    pthread_mutex_unlock(&model_lock);
    if (held != IO_OBJECT_NULL) {
        /* A removed notifier lets go of its service. */
        io_unref(io_get(held, IO_SERVICE, "IOObjectRelease"));
    }
}

/* Releases one reference to a name; a released name is a bug. */
kern_return_t IOObjectRelease(io_object_t object)
{
    IoObject *o = io_get(object, 0, "IOObjectRelease");

    if (o->kind == IO_CONNECT) {
        /* Only IOServiceClose gives up a connection [IOKitLib.c]. */
        misuse("IOObjectRelease(%#x) of a connection: use IOServiceClose",
               object);
    }
    io_unref(o);
    return KERN_SUCCESS;
}

kern_return_t IOObjectRetain(io_object_t object)
{
    IoObject *o = io_get(object, 0, "IOObjectRetain");

    pthread_mutex_lock(&model_lock);
    o->refs++;
    pthread_mutex_unlock(&model_lock);
    return KERN_SUCCESS;
}

/* "Returns a dictionary with a reference the caller must release"
 * [IOKitLib.h IOServiceMatching, IORegistryEntryIDMatching]. */
CFMutableDictionaryRef IOServiceMatching(const char *name)
{
    return (CFMutableDictionaryRef)cf_new(CF_DICT_CLASS, name, 0, 1);
}

CFMutableDictionaryRef IORegistryEntryIDMatching(uint64_t entryID)
{
    return (CFMutableDictionaryRef)cf_new(CF_DICT_ENTRY_ID, NULL, entryID, 1);
}

static bool service_matches(ModelService *s, struct __CFString *d)
{
    /* A terminated service has left the registry. */
    if (s->death == IOKIT_MODEL_TERMINATED) {
        return false;
    }
    if (d->kind == CF_DICT_CLASS) {
        /* Every dext's service is an IOUserService [semantics]. */
        return strcmp(d->str, "IOUserService") == 0;
    }
    return d->kind == CF_DICT_ENTRY_ID && d->id == s->entry_id;
}

/*
 * "One reference to matching is consumed by this function"
 * [IOKitLib.h IOServiceGetMatchingServices]; the iterator is the
 * caller's to release.
 */
kern_return_t IOServiceGetMatchingServices(mach_port_t mainPort,
                                           CFDictionaryRef matching,
                                           io_iterator_t *existing)
{
    struct __CFString *d = cf_check(matching, "IOServiceGetMatchingServices");
    io_iterator_t it;
    IoObject *o;
    unsigned i;

    check_main_port(mainPort, "IOServiceGetMatchingServices");
    if (d->kind == CF_STRING) {
        misuse("IOServiceGetMatchingServices: not a matching dictionary");
    }
    service_by_entry(0);
    it = io_new(IO_ITERATOR, NULL);
    o = io_get(it, IO_ITERATOR, "IOServiceGetMatchingServices");
    o->items = calloc(n_services + 1, sizeof(*o->items));
    for (i = 0; i < n_services; i++) {
        if (service_matches(&services[i], d)) {
            o->items[o->n_items++] = &services[i];
        }
    }
    CFRelease(matching);
    *existing = it;
    return KERN_SUCCESS;
}

/* Consumes @matching as well [IOKitLib.h IOServiceGetMatchingService]. */
io_service_t IOServiceGetMatchingService(mach_port_t mainPort,
                                         CFDictionaryRef matching)
{
    struct __CFString *d = cf_check(matching, "IOServiceGetMatchingService");
    io_service_t found = IO_OBJECT_NULL;
    unsigned i;

    check_main_port(mainPort, "IOServiceGetMatchingService");
    service_by_entry(0);
    for (i = 0; i < n_services && found == IO_OBJECT_NULL; i++) {
        if (service_matches(&services[i], d)) {
            found = io_new(IO_SERVICE, &services[i]);
        }
    }
    CFRelease(matching);
    return found;
}

/* Each returned object is a new reference [IOKitLib.h IOIteratorNext]. */
io_object_t IOIteratorNext(io_iterator_t iterator)
{
    IoObject *o = io_get(iterator, IO_ITERATOR, "IOIteratorNext");

    if (o->next_item >= o->n_items) {
        return IO_OBJECT_NULL;
    }
    return io_new(IO_SERVICE, o->items[o->next_item++]);
}

kern_return_t IORegistryEntryGetRegistryEntryID(io_registry_entry_t entry,
                                                uint64_t *entryID)
{
    IoObject *o = io_get(entry, IO_SERVICE,
                         "IORegistryEntryGetRegistryEntryID");

    *entryID = o->service->entry_id;
    return KERN_SUCCESS;
}

/*
 * A Create function: the property comes back with a reference the
 * caller releases [CF, IOKitLib.h IORegistryEntryCreateCFProperty];
 * IOUserClass is a CFString naming the dext's class.
 */
CFTypeRef IORegistryEntryCreateCFProperty(io_registry_entry_t entry,
                                          CFStringRef key,
                                          CFAllocatorRef allocator,
                                          IOOptionBits options)
{
    IoObject *o = io_get(entry, IO_SERVICE, "IORegistryEntryCreateCFProperty");
    struct __CFString *k = cf_check(key, "IORegistryEntryCreateCFProperty");

    if (k->kind != CF_STRING || strcmp(k->str, "IOUserClass") != 0) {
        return NULL;
    }
    return cf_new(CF_STRING, o->service->user_class, 0, 1);
}

/* ------------------------------------------------------------------ */
/* Notification ports and async completions                             */

#define PORT_MAGIC 0x504f5254u

struct IONotificationPort {
    uint32_t magic;
    unsigned gen;       /* model_generation() when made */
    bool destroyed;
    mach_port_t name;
    struct dispatch_queue_s *queue;
};

/* One armed async call: the core completes it by writing to @efd. */
typedef struct AsyncCall {
    struct AsyncCall *next;
    int efd;
    struct IONotificationPort *port;
    IoObject *conn;
    uint64_t ref[kOSAsyncRef64Count];
} AsyncCall;

typedef struct Delivery {
    struct IONotificationPort *port;
    uint64_t ref[kOSAsyncRef64Count];
} Delivery;

/*
 * Names are never reused (a use after destroy is caught): room for a
 * program that connects and disconnects in a loop (test-fork's churn).
 */
static struct IONotificationPort *ports[8192];
static unsigned n_ports;
static AsyncCall *armed;            /* under model_lock */
static int poller_ctl = -1;
/* Set by the $IOKIT_MODEL_KILL_SIGNAL handler, acted on by the poller. */
/* Set by the signal handler (any thread), taken by the poller: atomic, as
 * sig_atomic_t is only safe against a handler on the same thread. */
static int kill_requested;
static void kill_every_dext(void);
static pthread_t poller;

static struct IONotificationPort *port_check(IONotificationPortRef p,
                                             const char *fn)
{
    if (p == NULL || p->magic != PORT_MAGIC) {
        misuse("%s(%p): not a notification port", fn, (void *)p);
    }
    if (p->destroyed) {
        misuse("%s(%p): notification port used after destroy", fn, (void *)p);
    }
    if (model_inherited(p->gen)) {
        misuse("%s(%p): the parent's notification port, in a forked child, "
               "which has no right to it [ipc_tt]", fn, (void *)p);
    }
    return p;
}

/*
 * Runs on the port's queue: the callout through the signature chosen by
 * argument count [IOKitLib.c IODispatchCalloutFromMessage].  WaitInterrupt
 * completes with no arguments, so IOAsyncCallback0.
 */
static void deliver(void *opaque)
{
    Delivery *d = opaque;
    struct IONotificationPort *p = d->port;
    IOAsyncCallback0 fn;
    bool cancelled;

    pthread_mutex_lock(&model_lock);
    cancelled = p->destroyed;
    pthread_mutex_unlock(&model_lock);
    /* A cancelled source starts no handler [semantics]. */
    if (!cancelled) {
        if (dq_current != p->queue) {
            misuse("completion callout off its port's dispatch queue");
        }
        fn = (IOAsyncCallback0)(uintptr_t)d->ref[kIOAsyncCalloutFuncIndex];
        __atomic_add_fetch(&completions, 1, __ATOMIC_SEQ_CST);
        fn((void *)(uintptr_t)d->ref[kIOAsyncCalloutRefconIndex],
           kIOReturnSuccess);
    }
    free(d);
}

/* The kernel's side of message delivery: completions to their ports. */
static void *poller_thread(void *opaque)
{
    for (;;) {
        struct pollfd pfd[257];
        AsyncCall *a, **pp;
        unsigned n = 1;
        uint64_t v;

        pfd[0].fd = poller_ctl;
        pfd[0].events = POLLIN;
        pthread_mutex_lock(&model_lock);
        for (a = armed; a != NULL && n < 257; a = a->next) {
            pfd[n].fd = a->efd;
            pfd[n].events = POLLIN;
            n++;
        }
        pthread_mutex_unlock(&model_lock);
        if (poll(pfd, n, -1) < 0) {
            continue;
        }
        if (pfd[0].revents & POLLIN) {
            if (read(poller_ctl, &v, sizeof(v)) < 0) {
                v = 0;
            }
        }
        if (__atomic_exchange_n(&kill_requested, 0, __ATOMIC_ACQ_REL)) {
            kill_every_dext();
        }
        pthread_mutex_lock(&model_lock);
        for (pp = &armed; (a = *pp) != NULL;) {
            if (read(a->efd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
                pp = &a->next;
                continue;
            }
            *pp = a->next;
            if (a->port->queue == NULL) {
                misuse("completion for a notification port with no "
                       "dispatch queue set");
            }
            {
                Delivery *d = calloc(1, sizeof(*d));

                if (d == NULL) {
                    misuse("out of memory");
                }
                d->port = a->port;
                memcpy(d->ref, a->ref, sizeof(d->ref));
                dq_push(a->port->queue, deliver, d, NULL);
            }
            close(a->efd);
            free(a);
        }
        pthread_mutex_unlock(&model_lock);
    }
    return NULL;
}

static void poller_kick(void)
{
    uint64_t one = 1;

    if (poller_ctl < 0) {
        return;     /* no port made yet: nothing is armed */
    }
    if (write(poller_ctl, &one, sizeof(one)) < 0) {
        misuse("poller kick: %s", strerror(errno));
    }
}

/* Drop the armed calls of @conn or @port: no completion [semantics]. */
static void disarm(IoObject *conn, struct IONotificationPort *port)
{
    AsyncCall *a, **pp;

    pthread_mutex_lock(&model_lock);
    for (pp = &armed; (a = *pp) != NULL;) {
        if ((conn != NULL && a->conn == conn) ||
            (port != NULL && a->port == port)) {
            *pp = a->next;
            close(a->efd);
            free(a);
        } else {
            pp = &a->next;
        }
    }
    pthread_mutex_unlock(&model_lock);
    poller_kick();
}

/* Async-signal-safe: the poller does the killing. */
static void kill_signal(int sig)
{
    uint64_t one = 1;
    int saved = errno;

    __atomic_store_n(&kill_requested, 1, __ATOMIC_RELEASE);
    if (write(poller_ctl, &one, sizeof(one)) < 0) {
        /* The eventfd is already readable. */
    }
    errno = saved;
}

/*
 * The kernel's side, started with the machine (model_boot()): its fd is
 * the model's, not the task's, so it is there before a test counts fds.
 * With $IOKIT_MODEL_KILL_SIGNAL set to a signal number, that signal
 * kills every dext (see kill_every_dext()): for API programs, which
 * reach the model only through libdext (harness_kill_daemon()).
 */
static void poller_start(void)
{
    const char *sig = getenv("IOKIT_MODEL_KILL_SIGNAL");

    if (poller_ctl >= 0) {
        return;
    }
    poller_ctl = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (poller_ctl < 0 ||
        pthread_create(&poller, NULL, poller_thread, NULL) != 0) {
        misuse("cannot start the completion poller");
    }
    pthread_detach(poller);
    if (sig != NULL && sig[0] != '\0') {
        struct sigaction sa = { .sa_handler = kill_signal };

        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(atoi(sig), &sa, NULL) != 0) {
            misuse("IOKIT_MODEL_KILL_SIGNAL=%s: %s", sig, strerror(errno));
        }
    }
}

IONotificationPortRef IONotificationPortCreate(mach_port_t mainPort)
{
    struct IONotificationPort *p = calloc(1, sizeof(*p));

    check_main_port(mainPort, "IONotificationPortCreate");
    if (p == NULL) {
        return NULL;
    }
    p->magic = PORT_MAGIC;
    p->gen = model_generation();
    pthread_mutex_lock(&model_lock);
    model_boot();
    if (n_ports == sizeof(ports) / sizeof(ports[0])) {
        misuse("too many notification ports");
    }
    p->name = 0x70000003u + n_ports * 4;
    ports[n_ports++] = p;
    pthread_mutex_unlock(&model_lock);
    return p;
}

mach_port_t IONotificationPortGetMachPort(IONotificationPortRef notify)
{
    return port_check(notify, "IONotificationPortGetMachPort")->name;
}

/*
 * The port's messages are handled on @queue, one at a time; the port's
 * dispatch source keeps a reference to the queue [IOKitLib.h
 * IONotificationPortSetDispatchQueue, dispatch].
 */
void IONotificationPortSetDispatchQueue(IONotificationPortRef notify,
                                        dispatch_queue_t queue)
{
    struct IONotificationPort *p =
        port_check(notify, "IONotificationPortSetDispatchQueue");

    dispatch_retain(queue);
    p->queue = queue;
}

/* The cancel handler: on the queue, after any running callout. */
static void port_cancelled(void *opaque)
{
    struct IONotificationPort *p = opaque;

    dispatch_release(p->queue);
}

/*
 * Cancels the dispatch source: a callout running finishes, none starts
 * afterwards; the cancel handler runs on the queue [semantics].
 */
void IONotificationPortDestroy(IONotificationPortRef notify)
{
    struct IONotificationPort *p =
        port_check(notify, "IONotificationPortDestroy");

    pthread_mutex_lock(&model_lock);
    p->destroyed = true;
    pthread_mutex_unlock(&model_lock);
    disarm(NULL, p);
    if (p->queue != NULL) {
        dq_push(p->queue, port_cancelled, p, NULL);
    }
}

static struct IONotificationPort *port_by_name(mach_port_t name)
{
    unsigned i;

    pthread_mutex_lock(&model_lock);
    for (i = 0; i < n_ports; i++) {
        if (ports[i]->name == name && !ports[i]->destroyed) {
            pthread_mutex_unlock(&model_lock);
            return ports[i];
        }
    }
    pthread_mutex_unlock(&model_lock);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Interest notifications                                               */

static unsigned messages;

typedef struct Message {
    struct IONotificationPort *port;
    IOServiceInterestCallback callout;
    void *refcon;
    io_service_t service;
    uint32_t type;
} Message;

/*
 * Runs on the port's queue, as a completion does (deliver()): a message
 * already queued when the notification object was released is still
 * delivered (it is in the port), one queued when the port was destroyed
 * is not (the source is cancelled) [IOKitLib.c, semantics].  The
 * service is the notifier's, not the callout's to release.
 */
static void deliver_message(void *opaque)
{
    Message *m = opaque;
    bool cancelled;

    pthread_mutex_lock(&model_lock);
    cancelled = m->port->destroyed;
    pthread_mutex_unlock(&model_lock);
    if (!cancelled) {
        if (dq_current != m->port->queue) {
            misuse("interest callout off its port's dispatch queue");
        }
        __atomic_add_fetch(&messages, 1, __ATOMIC_SEQ_CST);
        m->callout(m->refcon, m->service, m->type, NULL);
    }
    free(m);
}

/*
 * [IOKitLib.h IOServiceAddInterestNotification; IOService
 * registerInterest]: kIOGeneralInterest delivers the service's
 * IOMessage.h messages (messageClients) to @notifyPort, through
 * @callback with @refCon, until the notification object, the caller's,
 * is released.  The model knows kIOGeneralInterest only, and refuses an
 * already terminated service (kIOReturnNotReady: its termination message
 * was sent before).
 */
kern_return_t IOServiceAddInterestNotification(IONotificationPortRef notifyPort,
                                               io_service_t service,
                                               const io_name_t interestType,
                                               IOServiceInterestCallback callback,
                                               void *refCon,
                                               io_object_t *notification)
{
    struct IONotificationPort *p =
        port_check(notifyPort, "IOServiceAddInterestNotification");
    IoObject *svc = io_get(service, IO_SERVICE,
                           "IOServiceAddInterestNotification");
    io_object_t name;
    IoObject *o;

    if (strcmp(interestType, "IOGeneralInterest") != 0) {
        misuse("IOServiceAddInterestNotification: interest '%s' is not "
               "modelled", interestType);
    }
    if (callback == NULL) {
        misuse("IOServiceAddInterestNotification: no callback");
    }
    if (svc->service->death == IOKIT_MODEL_TERMINATED) {
        return kIOReturnNotReady;
    }
    name = io_new(IO_INTEREST, svc->service);
    o = io_get(name, IO_INTEREST, "IOServiceAddInterestNotification");
    o->port = p;
    o->callout = callback;
    o->refcon = refCon;
    o->held = io_new(IO_SERVICE, svc->service);
    *notification = name;
    return KERN_SUCCESS;
}

/*
 * [IOService actionDidTerminate]: termination phase 2 sends
 * kIOMessageServiceIsTerminated to every interest client of the
 * service; the service left matching in phase 1, before.  Queued to each
 * live notification's port; model_lock held.
 */
static void message_interests(ModelService *s, uint32_t type)
{
    unsigned i;

    for (i = 0; i < n_objects; i++) {
        IoObject *o = objects[i];
        Message *m;

        if (o->kind != IO_INTEREST || o->refs <= 0 || o->service != s ||
            o->port->destroyed) {
            continue;
        }
        if (o->port->queue == NULL) {
            misuse("interest message for a notification port with no "
                   "dispatch queue set");
        }
        m = calloc(1, sizeof(*m));
        if (m == NULL) {
            misuse("out of memory");
        }
        m->port = o->port;
        m->callout = o->callout;
        m->refcon = o->refcon;
        m->service = o->held;
        m->type = type;
        dq_push(o->port->queue, deliver_message, m, NULL);
    }
}

/* ------------------------------------------------------------------ */
/* User clients                                                         */

kern_return_t IOServiceOpen(io_service_t service, task_port_t owningTask,
                            uint32_t type, io_connect_t *connect)
{
    IoObject *svc = io_get(service, IO_SERVICE, "IOServiceOpen");
    io_connect_t name;
    IoObject *c;
    DextSession *s;
    IOReturn ret;

    if (owningTask != mach_task_self()) {
        misuse("IOServiceOpen: owning task is not mach_task_self()");
    }
    if (svc->service->core_id == 0) {
        /* Another driver's: the model has no user client for it. */
        return kIOReturnUnsupported;
    }
    if (svc->service->death == IOKIT_MODEL_TERMINATED) {
        return kIOReturnNotAttached;
    }
    if (svc->service->death == IOKIT_MODEL_CRASHED) {
        return kIOReturnOffline;
    }
    if (svc->service->refuse_open != kIOReturnSuccess) {
        return svc->service->refuse_open;
    }
    /* The dext's NewUserClient checks @type (the core: only 0). */
    ret = dext_core_open(core, svc->service->core_id, type, getpid(), -1, &s);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    name = io_new(IO_CONNECT, svc->service);
    c = io_get(name, IO_CONNECT, "IOServiceOpen");
    c->session = s;
    *connect = name;
    return KERN_SUCCESS;
}

/*
 * What a call on @c meets once the dext has gone [semantics, "A dext
 * that dies or goes away"; IOUserServer; IOUserClient CHECK()]:
 * crashed: the RPC fails, kIOReturnOffline; terminated with a mapping
 * held: the port names the set of mappings, so the object check fails,
 * kIOReturnBadArgument; terminated with none: the port is dead,
 * MACH_SEND_INVALID_DEST.  0 while the dext lives.
 */
static kern_return_t conn_gone(IoObject *c)
{
    switch (c->service->death) {
    case IOKIT_MODEL_CRASHED:
        return kIOReturnOffline;
    case IOKIT_MODEL_TERMINATED:
        return c->maps != NULL ? kIOReturnBadArgument : MACH_SEND_INVALID_DEST;
    default:
        return KERN_SUCCESS;
    }
}

static IoObject *conn_get(io_connect_t connection, const char *fn)
{
    IoObject *c = io_get(connection, IO_CONNECT, fn);

    if (c->closed) {
        misuse("%s(%#x): call on a closed connection", fn, connection);
    }
    return c;
}

/* A successful call of a "stale-dma" dext: see StaleRegion. */
static void stale_dma_call(IoObject *c, uint32_t selector,
                           const uint64_t *in, uint64_t *out)
{
    StaleRegion *r, **pp;

    pthread_mutex_lock(&stale_lock);
    for (pp = &stale_regions; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->conn == c && (*pp)->iova == in[0]) {
            break;
        }
    }
    r = *pp;
    if (selector == kDextSelectorRegisterDMARegion && r == NULL &&
        in[2] <= (1u << 20)) {
        r = calloc(1, sizeof(*r));
        if (r != NULL && (r->copy = malloc(in[2])) != NULL) {
            memcpy(r->copy, (const void *)(uintptr_t)in[1], in[2]);
            r->conn = c;
            r->iova = in[0];
            r->size = in[2];
            r->next = stale_regions;
            stale_regions = r;
        } else {
            free(r);
        }
    } else if (selector == kDextSelectorProbeDMARegion && r != NULL &&
               in[1] + 8 <= r->size) {
        memcpy(&out[0], r->copy + in[1], 8);
    } else if (selector == kDextSelectorUnregisterDMARegion && r != NULL) {
        *pp = r->next;
        free(r->copy);
        free(r);
    }
    pthread_mutex_unlock(&stale_lock);
}

/*
 * Scalar outputs each method returns (dext-contract.md's table; the
 * extensions' in core/methods.c).  A caller that leaves less room gets
 * BadArgument from the dext [IOUserClient checks the counts against the
 * method's], which on macOS would be a bug of the caller: fail loudly.
 */
static uint32_t method_scalar_outputs(uint32_t selector)
{
    switch (selector) {
    case kDextSelectorGetIdentity:
    case kDextSelectorAllocateDMABuffer:
    case kDextSelectorGetDeviceStatus:
        return 6;
    case kDextSelectorCheckInterrupt:
        return 4;
    case kDextSelectorRegisterDMARegion:
    case kDextSelectorGetBARInfo:
    case kDextSelectorRegisterDMARegionAt:
        return 3;
    case kDextSelectorProbeDMARegion:
    case kDextSelectorConfigRead:
    case kDextSelectorMMIORead:
    case kDextSelectorSetupInterrupts:
    case kDextSelectorGetLastReset:
        return 1;
    default:
        return 0;
    }
}

/*
 * Counts as the kernel passes them [IOUserClient is_io_connect_method]:
 * at most 16 scalars each way, output counts in/out.  The dext sees the
 * caller's room exactly.
 */
static kern_return_t model_call(IoObject *c, uint32_t selector,
                                const uint64_t *input, uint32_t inputCnt,
                                const void *inputStruct,
                                size_t inputStructCnt, uint64_t *output,
                                uint32_t *outputCnt, void *outputStruct,
                                size_t *outputStructCnt, int wake_fd)
{
    DextCallArgs a = {
        .scalar_in = input, .scalar_in_cnt = inputCnt,
        .struct_in = inputStruct, .struct_in_size = inputStructCnt,
        .scalar_out = output, .scalar_out_cnt = outputCnt,
        .struct_out = outputStruct, .struct_out_size = outputStructCnt,
    };
    kern_return_t ret;

    if (inputCnt > DEXT_MAX_SCALARS ||
        (outputCnt != NULL && *outputCnt > DEXT_MAX_SCALARS)) {
        return kIOReturnBadArgument;
    }
    if (outputStructCnt != NULL && *outputStructCnt == (size_t)-3) {
        misuse("variable-size struct output (size_t)-3 is not modelled");
    }
    if (inputStructCnt > 0 && inputStruct == NULL) {
        misuse("selector %u: struct input size %zu with no buffer",
               selector, inputStructCnt);
    }
    if ((outputCnt ? *outputCnt : 0) < method_scalar_outputs(selector)) {
        if (misuse_caught("selector %u: room for %u scalar outputs, the "
                          "method returns %u", selector,
                          outputCnt ? *outputCnt : 0,
                          method_scalar_outputs(selector))) {
            return kIOReturnBadArgument;
        }
        misuse("selector %u: room for %u scalar outputs, the method "
               "returns %u", selector, outputCnt ? *outputCnt : 0,
               method_scalar_outputs(selector));
    }
    if (wake_fd >= 0) {
        return dext_session_call_async(c->session, selector, wake_fd, &a);
    }
    ret = dext_session_call(c->session, selector, &a);
    if (stale_dma && ret == kIOReturnSuccess) {
        stale_dma_call(c, selector, input, output);
    }
    return ret;
}

kern_return_t IOConnectCallMethod(mach_port_t connection, uint32_t selector,
                                  const uint64_t *input, uint32_t inputCnt,
                                  const void *inputStruct,
                                  size_t inputStructCnt, uint64_t *output,
                                  uint32_t *outputCnt, void *outputStruct,
                                  size_t *outputStructCnt)
{
    IoObject *c = conn_get(connection, "IOConnectCallMethod");
    kern_return_t gone = conn_gone(c);

    if (gone != KERN_SUCCESS) {
        return gone;
    }
    return model_call(c, selector, input, inputCnt, inputStruct,
                      inputStructCnt, output, outputCnt, outputStruct,
                      outputStructCnt, -1);
}

kern_return_t IOConnectCallScalarMethod(mach_port_t connection,
                                        uint32_t selector,
                                        const uint64_t *input,
                                        uint32_t inputCnt, uint64_t *output,
                                        uint32_t *outputCnt)
{
    return IOConnectCallMethod(connection, selector, input, inputCnt, NULL, 0,
                               output, outputCnt, NULL, NULL);
}

/*
 * The reference holds the reserved slot (the kernel puts the wake port
 * there), the callout and its refcon [OSMsgNotif kIOAsyncReservedIndex,
 * kIOAsyncCalloutFuncIndex, kIOAsyncCalloutRefconIndex]; at most
 * kOSAsyncRef64Count words are passed [IOUserClient
 * is_io_connect_async_method].  The completion goes to @wake_port's
 * notification port; an armed call whose connection or dext goes away
 * never completes [semantics].
 */
kern_return_t IOConnectCallAsyncMethod(mach_port_t connection,
                                       uint32_t selector,
                                       mach_port_t wake_port,
                                       uint64_t *reference,
                                       uint32_t referenceCnt,
                                       const uint64_t *input,
                                       uint32_t inputCnt,
                                       const void *inputStruct,
                                       size_t inputStructCnt,
                                       uint64_t *output, uint32_t *outputCnt,
                                       void *outputStruct,
                                       size_t *outputStructCnt)
{
    IoObject *c = conn_get(connection, "IOConnectCallAsyncMethod");
    struct IONotificationPort *p = port_by_name(wake_port);
    kern_return_t gone = conn_gone(c);
    AsyncCall *a;
    kern_return_t kr;

    if (p == NULL) {
        misuse("IOConnectCallAsyncMethod: wake port %#x is no live "
               "notification port's", wake_port);
    }
    if (referenceCnt < kIOAsyncCalloutCount ||
        referenceCnt > kOSAsyncRef64Count) {
        misuse("IOConnectCallAsyncMethod: %u reference words; the callout "
               "and refcon slots need %d, at most %d pass", referenceCnt,
               kIOAsyncCalloutCount, kOSAsyncRef64Count);
    }
    if (reference[kIOAsyncCalloutFuncIndex] == 0) {
        misuse("IOConnectCallAsyncMethod: no callout in slot %d",
               kIOAsyncCalloutFuncIndex);
    }
    if (gone != KERN_SUCCESS) {
        return gone;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return kIOReturnNoMemory;
    }
    a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->efd < 0) {
        free(a);
        return kIOReturnNoResources;
    }
    a->port = p;
    a->conn = c;
    memcpy(a->ref, reference, referenceCnt * sizeof(reference[0]));
    a->ref[kIOAsyncReservedIndex] = wake_port;
    kr = model_call(c, selector, input, inputCnt, inputStruct,
                    inputStructCnt, output, outputCnt, outputStruct,
                    outputStructCnt, a->efd);
    if (kr != kIOReturnSuccess) {
        close(a->efd);
        free(a);
        return kr;
    }
    pthread_mutex_lock(&model_lock);
    a->next = armed;
    armed = a;
    pthread_mutex_unlock(&model_lock);
    poller_kick();
    return kr;
}

/* ------------------------------------------------------------------ */
/* Memory                                                               */

/* The dext's current memory for @type: its identity and a dup'd fd. */
static IOReturn current_memory(IoObject *c, uint32_t type, DextMemory *mem,
                               struct stat *st)
{
    IOReturn ret = dext_session_map(c->session, type, mem);

    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (fstat(mem->fd, st) < 0) {
        close(mem->fd);
        return kIOReturnVMError;
    }
    return kIOReturnSuccess;
}

static ModelMapping *find_mapping(IoObject *c, const struct stat *st,
                                  uint64_t offset)
{
    ModelMapping *m;

    for (m = c->maps; m != NULL; m = m->next) {
        if (m->dev == st->st_dev && m->ino == st->st_ino &&
            m->offset == offset) {
            return m;
        }
    }
    return NULL;
}

/*
 * [IOUserClient is_io_connect_map_memory_into_task, mapClientMemory64;
 * IOMemDesc createMappingInTask]: the dext's memory for @memoryType,
 * mapped with the caller's option bits (kIOMapUserOptionsMask) in place
 * of the driver's; with kIOMapAnywhere an existing compatible mapping of
 * the same memory is returned again (a default cache request matches
 * any mode) and, the user client keeping its mappings in a set, adds no
 * reference.  Any failure of the dext to provide the memory reaches the
 * caller as kIOReturnBadArgument [semantics "Mappings"].
 */
kern_return_t IOConnectMapMemory64(io_connect_t connect, uint32_t memoryType,
                                   task_port_t intoTask,
                                   mach_vm_address_t *atAddress,
                                   mach_vm_size_t *ofSize,
                                   IOOptionBits options)
{
    IoObject *c = conn_get(connect, "IOConnectMapMemory64");
    kern_return_t gone = conn_gone(c);
    uint32_t cache = options & MODEL_MAP_CACHE_MASK;
    ModelMapSeen *seen;
    ModelMapping *m;
    DextMemory mem;
    struct stat st;
    int prot;

    if (intoTask != mach_task_self()) {
        misuse("IOConnectMapMemory64: task is not mach_task_self()");
    }
    if (!(options & kIOMapAnywhere)) {
        misuse("IOConnectMapMemory64: only kIOMapAnywhere is modelled");
    }
    if (gone == kIOReturnOffline) {
        return kIOReturnBadArgument;
    }
    if (gone != KERN_SUCCESS) {
        return gone;
    }
    if (current_memory(c, memoryType, &mem, &st) != kIOReturnSuccess) {
        return kIOReturnBadArgument;
    }
    pthread_mutex_lock(&model_lock);
    m = find_mapping(c, &st, mem.offset);
    if (m != NULL && cache != kIOMapDefaultCache && cache != m->cache) {
        m = NULL;
    }
    pthread_mutex_unlock(&model_lock);
    if (m == NULL) {
        m = calloc(1, sizeof(*m));
        prot = PROT_READ |
               (mem.writable && !(options & kIOMapReadOnly) ? PROT_WRITE : 0);
        if (m == NULL) {
            close(mem.fd);
            return kIOReturnNoMemory;
        }
        m->addr = mmap(NULL, mem.size, prot, MAP_SHARED, mem.fd,
                       (off_t)mem.offset);
        if (m->addr == MAP_FAILED) {
            close(mem.fd);
            free(m);
            return kIOReturnVMError;
        }
        m->dev = st.st_dev;
        m->ino = st.st_ino;
        m->offset = mem.offset;
        m->size = mem.size;
        m->cache = cache;
        pthread_mutex_lock(&model_lock);
        m->next = c->maps;
        c->maps = m;
        pthread_mutex_unlock(&model_lock);
    }
    close(mem.fd);
    seen = calloc(1, sizeof(*seen));
    if (seen == NULL) {
        misuse("out of memory");
    }
    seen->type = memoryType;
    seen->addr = (mach_vm_address_t)(uintptr_t)m->addr;
    pthread_mutex_lock(&model_lock);
    seen->next = c->seen;
    c->seen = seen;
    pthread_mutex_unlock(&model_lock);
    *atAddress = (mach_vm_address_t)(uintptr_t)m->addr;
    *ofSize = m->size;
    return KERN_SUCCESS;
}

/*
 * [IOUserClient is_io_connect_unmap_memory_from_task]: @atAddress is
 * not used to find the mapping: the dext is asked for @memoryType's
 * *current* memory and the task's mapping of that is removed
 * (kIOReturnBadArgument if there is none).  An unmap of a type and
 * address no map call on this connection returned is a caller bug.
 */
kern_return_t IOConnectUnmapMemory64(io_connect_t connect,
                                     uint32_t memoryType,
                                     task_port_t fromTask,
                                     mach_vm_address_t atAddress)
{
    IoObject *c = conn_get(connect, "IOConnectUnmapMemory64");
    kern_return_t gone = conn_gone(c);
    ModelMapSeen *seen;
    ModelMapping *m, **pp;
    DextMemory mem;
    struct stat st;
    IOReturn ret;

    if (fromTask != mach_task_self()) {
        misuse("IOConnectUnmapMemory64: task is not mach_task_self()");
    }
    pthread_mutex_lock(&model_lock);
    for (seen = c->seen; seen != NULL; seen = seen->next) {
        if (seen->type == memoryType && seen->addr == atAddress) {
            break;
        }
    }
    pthread_mutex_unlock(&model_lock);
    if (seen == NULL) {
        misuse("IOConnectUnmapMemory64(type %u, %#llx): no map call on this "
               "connection returned that mapping", memoryType,
               (unsigned long long)atAddress);
    }
    if (gone != KERN_SUCCESS) {
        return gone;
    }
    ret = current_memory(c, memoryType, &mem, &st);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    close(mem.fd);
    pthread_mutex_lock(&model_lock);
    m = find_mapping(c, &st, mem.offset);
    if (m != NULL) {
        for (pp = &c->maps; *pp != m; pp = &(*pp)->next) {
        }
        *pp = m->next;
    }
    pthread_mutex_unlock(&model_lock);
    if (m == NULL) {
        return kIOReturnBadArgument;
    }
    munmap(m->addr, m->size);
    free(m);
    return KERN_SUCCESS;
}

/*
 * Closes the user client (its mappings go with it, armed calls never
 * complete) and releases the connection's name [IOKitLib.c
 * IOServiceClose: io_service_close, then IOObjectRelease].  A dead port
 * answers MACH_SEND_INVALID_DEST, the name is released all the same.
 */
kern_return_t IOServiceClose(io_connect_t connect)
{
    IoObject *c = conn_get(connect, "IOServiceClose");
    kern_return_t ret = conn_gone(c);
    ModelMapping *m;
    ModelMapSeen *seen;

    disarm(c, NULL);
    pthread_mutex_lock(&model_lock);
    c->closed = true;
    pthread_mutex_unlock(&model_lock);
    while ((m = c->maps) != NULL) {
        c->maps = m->next;
        munmap(m->addr, m->size);
        free(m);
    }
    while ((seen = c->seen) != NULL) {
        c->seen = seen->next;
        free(seen);
    }
    dext_session_close(c->session);
    io_unref(c);
    return ret == MACH_SEND_INVALID_DEST ? ret : KERN_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Control and the exit check                                           */

/*
 * Crashed: the dext's RPCs fail from now on; the crash itself messages
 * nobody.  The kernel then terminates the server (its connection dies:
 * IOUserClient clientDied, IOUserServer::clientClose, terminate()) and
 * with it the dext's services, which is the TERMINATED case: a test
 * models that step with a second call.  Terminated (either mapping
 * case): kIOMessageServiceIsTerminated to the service's interest
 * clients.  Either way the dext's armed actions are aborted, never
 * completed [semantics].
 */
bool iokit_model_kill(uint64_t id, IokitModelDeath how)
{
    ModelService *s = service_by_entry(id);
    AsyncCall *a, **pp;

    if (s == NULL || s->core_id == 0) {
        return false;
    }
    pthread_mutex_lock(&model_lock);
    for (pp = &armed; (a = *pp) != NULL;) {
        if (a->conn->service == s) {
            *pp = a->next;
            close(a->efd);
            free(a);
        } else {
            pp = &a->next;
        }
    }
    if (how == IOKIT_MODEL_TERMINATED && s->death != IOKIT_MODEL_TERMINATED) {
        s->death = how;
        message_interests(s, kIOMessageServiceIsTerminated);
    } else if (s->death == 0) {
        s->death = how;
    }
    pthread_mutex_unlock(&model_lock);
    poller_kick();
    return true;
}

/*
 * Every dext process crashes, and the kernel then terminates its
 * services, as for a dext killed with SIGKILL.
 */
static void kill_every_dext(void)
{
    unsigned i;

    for (i = 0; i < n_services; i++) {
        if (services[i].core_id != 0) {
            iokit_model_kill(services[i].entry_id, IOKIT_MODEL_CRASHED);
            iokit_model_kill(services[i].entry_id, IOKIT_MODEL_TERMINATED);
        }
    }
}

bool iokit_model_refuse_open(uint64_t id, IOReturn ret)
{
    ModelService *s = service_by_entry(id);

    if (s == NULL || s->core_id == 0) {
        return false;
    }
    s->refuse_open = ret;
    return true;
}

bool iokit_model_mapped(mach_vm_address_t addr)
{
    return iokit_model_cache_mode(addr) != UINT32_MAX;
}

uint32_t iokit_model_cache_mode(mach_vm_address_t addr)
{
    uint32_t found = UINT32_MAX;
    ModelMapping *m;
    unsigned i;

    pthread_mutex_lock(&model_lock);
    for (i = 0; i < n_objects; i++) {
        IoObject *o = objects[i];

        if (o->kind != IO_CONNECT || o->closed) {
            continue;
        }
        for (m = o->maps; m != NULL; m = m->next) {
            uintptr_t a = (uintptr_t)m->addr;

            if (addr >= a && addr < a + m->size) {
                found = m->cache;
            }
        }
    }
    pthread_mutex_unlock(&model_lock);
    return found;
}

unsigned iokit_model_live_objects(void)
{
    unsigned n;

    pthread_mutex_lock(&model_lock);
    n = cf_live + io_live;
    pthread_mutex_unlock(&model_lock);
    return n;
}

unsigned iokit_model_completions(void)
{
    return __atomic_load_n(&completions, __ATOMIC_SEQ_CST);
}

unsigned iokit_model_messages(void)
{
    return __atomic_load_n(&messages, __ATOMIC_SEQ_CST);
}

/*
 * At exit: every CF and io object made must have been released, every
 * notification port destroyed and every queue released -- by the process
 * that made it: a forked child answers only for its own.
 */
__attribute__((destructor)) static void model_exit_check(void)
{
    unsigned leaks = 0, queues = 0, i;
    unsigned gen = model_generation();
    struct __CFString *o;
    struct dispatch_queue_s *q;

    pthread_mutex_lock(&model_lock);
    for (o = cf_all; o != NULL; o = o->next_all) {
        if (o->refs > 0 && o->gen == gen) {
            fprintf(stderr, "iokit-model: LEAK: CF %s '%s' (%d refs)\n",
                    o->kind == CF_STRING ? "string" : "dictionary",
                    o->str ? o->str : "", o->refs);
            leaks++;
        }
    }
    for (i = 0; i < n_objects; i++) {
        if (objects[i]->refs > 0 && objects[i]->gen == gen) {
            fprintf(stderr, "iokit-model: LEAK: io object %#x (kind %d)\n",
                    MODEL_NAME_BASE + i * 4, objects[i]->kind);
            leaks++;
        }
    }
    for (i = 0; i < n_ports; i++) {
        if (!ports[i]->destroyed && ports[i]->gen == gen) {
            fprintf(stderr, "iokit-model: LEAK: notification port %#x\n",
                    ports[i]->name);
            leaks++;
        }
    }
    for (q = dq_all; q != NULL; q = q->next_all) {
        if (__atomic_load_n(&q->refs, __ATOMIC_SEQ_CST) > 0 &&
            q->gen == gen) {
            queues++;
        }
    }
    if (queues > 0) {
        fprintf(stderr, "iokit-model: LEAK: %u dispatch queues\n", queues);
        leaks += queues;
    }
    pthread_mutex_unlock(&model_lock);
    if (leaks > 0 && getenv("IOKIT_MODEL_LEAKS_OK") == NULL) {
        fprintf(stderr, "iokit-model: %u leaked objects\n", leaks);
        _exit(1);
    }
}
