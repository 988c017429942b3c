/*
 * SPDX-License-Identifier: MIT
 *
 * Connection handles, targets, connect/disconnect and device listing.
 *
 * io_connect_t is a libdext handle: a slot index in the low bits and a
 * generation above it, so a stale handle (used after disconnect, or made
 * up) is recognised and refused with kIOReturnBadArgument.  Calls look
 * their handle up without a lock (see DextConnection): connections are
 * reused, never freed, so a stale slot never points at freed memory.
 */

#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"
#include "protocol/dext-wire.h"

#define SLOT_BITS   12
#define MAX_SLOTS   ((1u << SLOT_BITS) - 1)   /* slot 0 is never used */

/*
 * Written under @table_lock (connect, disconnect); read with an atomic
 * load and no lock by every call.
 */
static DextConnection *table[MAX_SLOTS + 1];
static DextMutex table_lock = DEXT_MUTEX_INITIALIZER;
static uint32_t generation DEXT_GUARDED_BY(table_lock) = 1;
/* Connections no one holds any more, for reuse (never freed). */
static DextConnection *free_list DEXT_GUARDED_BY(table_lock);
/*
 * A forked child's copies of connections its parent opened, once the
 * child has disconnected them: the parent's calls in flight at the fork
 * left references that no thread of the child will drop, so the count
 * may never reach the free list.  Kept here, reachable, as the copies
 * of the parent's cores are (transport/inproc.c); never walked.
 */
static DextConnection *inherited_list DEXT_GUARDED_BY(table_lock);

/*
 * A fork() while another thread holds @table_lock would leave the child
 * a lock that no thread of its own can release, and its connects and
 * disconnects would wait forever.  So fork() waits for the lock, and the
 * parent and the child each release their copy.  Installed as the
 * library loads; nothing holds the lock across a wait, so fork() is not
 * held up for long.
 */
static void table_fork_prepare(void) DEXT_ACQUIRE(&table_lock)
{
    dext_mutex_lock(&table_lock);
}

static void table_fork_release(void) DEXT_RELEASE(&table_lock)
{
    dext_mutex_unlock(&table_lock);
}

__attribute__((constructor)) static void table_watch_forks(void)
{
    (void)pthread_atfork(table_fork_prepare, table_fork_release,
                         table_fork_release);
}

/* ------------------------------------------------------------------ */
/* Logging: the library never prints on its own (support/log.h).       */

_Static_assert((int)APPLE_DEXT_LOG_ERROR == (int)DEXT_LOG_ERROR &&
               (int)APPLE_DEXT_LOG_WARNING == (int)DEXT_LOG_WARNING &&
               (int)APPLE_DEXT_LOG_INFO == (int)DEXT_LOG_INFO &&
               (int)APPLE_DEXT_LOG_DEBUG == (int)DEXT_LOG_DEBUG,
               "the public log levels are the internal ones");

void apple_dext_set_log_handler(void (*fn)(void *opaque, int level,
                                           const char *msg),
                                void *opaque)
{
    dext_log_set_handler(fn, opaque);
}

/* ------------------------------------------------------------------ */
/* Handles                                                              */

void dext_conn_ref(DextConnection *c)
{
    __atomic_fetch_add(&c->refs, 1, __ATOMIC_SEQ_CST);
}

/*
 * Close @c's transport, once.  In a forked child of the process that
 * opened it, the user client is still the parent's: only the child's
 * copies of what it holds are released (@close_inherited).
 */
static void conn_close_transport(DextConnection *c)
{
    DextTransport *t;

    if (!__atomic_exchange_n(&c->transport_closed, true, __ATOMIC_SEQ_CST)) {
        t = c->t;
        if (!dext_forked_since(c->fork_gen)) {
            t->ops->close(t);
        } else {
            t->ops->close_inherited(t);
        }
        c->t = NULL;
    }
}

void dext_conn_unref(DextConnection *c)
{
    if (__atomic_fetch_sub(&c->refs, 1, __ATOMIC_SEQ_CST) == 1) {
        conn_close_transport(c);
        dext_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->irq_page_cond);
        dext_mutex_lock(&table_lock);
        c->next_free = free_list;
        free_list = c;
        dext_mutex_unlock(&table_lock);
    }
}

/*
 * The connection @handle names, or NULL for a null, made-up or stale one.
 * Under the lock: nothing can change the slot meanwhile.
 */
static DextConnection *table_find(io_connect_t handle)
    DEXT_REQUIRES(&table_lock)
{
    uint32_t slot = handle & MAX_SLOTS;
    DextConnection *c;

    if (handle == IO_OBJECT_NULL || slot == 0) {
        return NULL;
    }
    c = __atomic_load_n(&table[slot], __ATOMIC_ACQUIRE);
    return c != NULL &&
           __atomic_load_n(&c->handle, __ATOMIC_ACQUIRE) == handle ? c : NULL;
}

/* Count a call in flight on @c, held; false (undone) once disconnected. */
static bool conn_start_call(DextConnection *c)
{
    if (__atomic_fetch_add(&c->state, 1, __ATOMIC_SEQ_CST) & CONN_CLOSED) {
        dext_conn_leave(c);
        return false;
    }
    return true;
}

/*
 * A call in a forked child on @c, which the parent opened: refused at
 * once, without a look at the transport, whose channels, ring and wake
 * ports the parent goes on using.  The first refusal of each connection
 * in each process says why.
 */
static IOReturn conn_refuse_inherited(DextConnection *c)
{
    unsigned gen = dext_fork_generation();
    /*
     * @c->ops, not @c->t: a disconnect on another thread of the child
     * may free the transport under us.
     */
    bool after_exec = c->ops->child_needs_exec;

    if (__atomic_exchange_n(&c->fork_warned, gen, __ATOMIC_RELAXED) != gen) {
        dext_log(DEXT_LOG_WARNING, "connection 0x%x is the parent's, "
                 "opened before fork(): a child's calls on it answer "
                 "kIOReturnNotPermitted; %s", (unsigned)c->handle,
                 after_exec ? "connect after exec() in the child"
                            : "connect anew in the child");
    }
    return kIOReturnNotPermitted;
}

DextConnection *dext_conn_enter(io_connect_t handle, IOReturn *err)
{
    uint32_t slot = handle & MAX_SLOTS;
    DextConnection *c;
    int refs;

    *err = kIOReturnBadArgument;
    if (handle == IO_OBJECT_NULL || slot == 0) {
        return NULL;
    }
    c = __atomic_load_n(&table[slot], __ATOMIC_ACQUIRE);
    if (c == NULL) {
        return NULL;
    }
    /*
     * No lock: @c may be disconnected, released or even reused by now,
     * but its memory is a connection's for good.  A reference taken
     * while @refs is not zero keeps it from being reused, and then the
     * handle says whether it is still ours.
     */
    refs = __atomic_load_n(&c->refs, __ATOMIC_RELAXED);
    do {
        if (refs <= 0) {
            return NULL;
        }
    } while (!__atomic_compare_exchange_n(&c->refs, &refs, refs + 1, true,
                                          __ATOMIC_SEQ_CST,
                                          __ATOMIC_RELAXED));
    if (__atomic_load_n(&c->handle, __ATOMIC_ACQUIRE) != handle) {
        dext_conn_unref(c);
        return NULL;
    }
    /* One relaxed load: this is every call's path. */
    if (dext_forked_since(c->fork_gen)) {
        *err = conn_refuse_inherited(c);
        dext_conn_unref(c);
        return NULL;
    }
    return conn_start_call(c) ? c : NULL;
}

IOReturn dext_conn_enter_ref(DextConnection *c)
{
    if (dext_forked_since(c->fork_gen)) {
        return conn_refuse_inherited(c);
    }
    dext_conn_ref(c);
    return conn_start_call(c) ? kIOReturnSuccess : kIOReturnBadArgument;
}

void dext_conn_leave(DextConnection *c)
{
    /* The last call out of a disconnected connection closes it. */
    if (__atomic_fetch_sub(&c->state, 1, __ATOMIC_SEQ_CST) ==
        (CONN_CLOSED | 1)) {
        conn_close_transport(c);
    }
    dext_conn_unref(c);
}

static IOReturn conn_register(DextTransport *t, io_connect_t *out)
{
    DextConnection *c;
    io_connect_t handle;
    uint32_t slot;

    dext_mutex_lock(&table_lock);
    for (slot = 1; slot <= MAX_SLOTS &&
         __atomic_load_n(&table[slot], __ATOMIC_RELAXED); slot++) {
    }
    if (slot > MAX_SLOTS) {
        dext_mutex_unlock(&table_lock);
        return kIOReturnNoResources;
    }
    c = free_list;
    if (c != NULL) {
        free_list = c->next_free;
    } else if ((c = calloc(1, sizeof(*c))) == NULL) {
        dext_mutex_unlock(&table_lock);
        return kIOReturnNoMemory;
    }
    /*
     * A reused connection's @refs is 0, so a late lookup still holding
     * it takes no reference while we set it up; @refs goes to 1 last.
     */
    c->t = t;
    c->ops = t->ops;
    c->next_free = NULL;
    c->fork_gen = dext_fork_generation();
    __atomic_store_n(&c->fork_warned, c->fork_gen, __ATOMIC_RELAXED);
    __atomic_store_n(&c->state, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->transport_closed, false, __ATOMIC_RELAXED);
    __atomic_store_n(&c->block_config, -1, __ATOMIC_RELAXED);
    __atomic_store_n(&c->irq_page_unsupported, false, __ATOMIC_RELAXED);
    __atomic_store_n(&c->irq_page, NULL, __ATOMIC_RELAXED);
    /* @irq_page_busy is false: only a call in flight sets it. */
    dext_mutex_init(&c->lock);
    pthread_cond_init(&c->irq_page_cond, NULL);
    if (++generation >= (1u << (32 - SLOT_BITS))) {
        generation = 1;
    }
    handle = (generation << SLOT_BITS) | slot;
    __atomic_store_n(&c->handle, handle, __ATOMIC_RELEASE);
    __atomic_store_n(&c->refs, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&table[slot], c, __ATOMIC_RELEASE);
    dext_mutex_unlock(&table_lock);
    *out = handle;
    return kIOReturnSuccess;
}

void apple_dext_disconnect(io_connect_t connection)
{
    DextConnection *c;
    unsigned prev;

    dext_mutex_lock(&table_lock);
    c = table_find(connection);
    if (c == NULL) {
        dext_mutex_unlock(&table_lock);
        return;
    }
    __atomic_store_n(&table[connection & MAX_SLOTS], NULL, __ATOMIC_RELEASE);
    prev = __atomic_fetch_or(&c->state, CONN_CLOSED, __ATOMIC_SEQ_CST);
    if (dext_forked_since(c->fork_gen) && !c->inherited_kept) {
        c->inherited_kept = true;
        c->next_inherited = inherited_list;
        inherited_list = c;
    }
    dext_mutex_unlock(&table_lock);
    /*
     * In a forked child no call is in flight on a connection the parent
     * opened, whatever the count copied from the parent says: the
     * child's calls never start, and the parent's threads are not here.
     */
    if (prev == 0 || dext_forked_since(c->fork_gen)) {
        conn_close_transport(c);
    }
    dext_conn_unref(c);
}

/* ------------------------------------------------------------------ */
/* Calls                                                                */

IOReturn dext_conn_call(DextConnection *c, uint32_t selector,
                        const uint64_t *in,
                        uint32_t nin, uint64_t *out, uint32_t nout_room,
                        uint32_t min_out)
{
    uint32_t nout = nout_room;
    DextCallArgs a = {
        .scalar_in = in, .scalar_in_cnt = nin,
        .scalar_out = out, .scalar_out_cnt = out ? &nout : NULL,
    };
    IOReturn ret;

    ret = c->t->ops->call(c->t, selector, &a);
    if (ret == kIOReturnSuccess && out && nout < min_out) {
        dext_log(DEXT_LOG_ERROR,
                 "selector %u returned %u outputs, expected %u",
                 selector, nout, min_out);
        return kIOReturnIPCError;
    }
    return ret;
}

IOReturn dext_conn_call_struct(DextConnection *c, uint32_t selector,
                               const uint64_t *in, uint32_t nin,
                               const void *sin, size_t sin_size, void *sout,
                               size_t *sout_size)
{
    DextCallArgs a = {
        .scalar_in = in, .scalar_in_cnt = nin,
        .struct_in = sin, .struct_in_size = sin_size,
        .struct_out = sout, .struct_out_size = sout_size,
    };

    return c->t->ops->call(c->t, selector, &a);
}

/* ------------------------------------------------------------------ */
/* Targets                                                              */

const char *apple_dext_default_socket_path(void)
{
    return dext_wire_default_socket_path();
}

const char *apple_dext_default_target(void)
{
    static __thread char buf[PATH_MAX + 8];
    const char *env = getenv("DEXT_TARGET");

    if (env != NULL && env[0] != '\0') {
        return env;
    }
#if defined(__APPLE__)
    return "iokit";
#else
    snprintf(buf, sizeof(buf), "unix:%s", apple_dext_default_socket_path());
    return buf;
#endif
}

static IOReturn read_identity(DextTransport *t, AppleDextDeviceInfo *info)
{
    uint64_t out[6] = { 0 };
    uint32_t nout = 6;
    DextCallArgs a = { .scalar_out = out, .scalar_out_cnt = &nout };
    IOReturn ret;

    ret = t->ops->call(t, kDextSelectorGetIdentity, &a);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (nout < 6) {
        return kIOReturnIPCError;
    }
    info->bus = (uint8_t)out[0];
    info->device = (uint8_t)out[1];
    info->function = (uint8_t)out[2];
    info->vendor_id = (uint16_t)out[3];
    info->device_id = (uint16_t)out[4];
    info->class_code = (uint32_t)out[5] & 0xffffff;
    return kIOReturnSuccess;
}

/*
 * The transport of @target for a call that reaches it (connect, list,
 * status): the thread's last error detail is cleared first, and an
 * unknown target is explained.
 */
static const DextTransportOps *lookup_target(const char *target,
                                             const char **arg)
{
    const DextTransportOps *ops;

    dext_log_clear_detail();
    ops = dext_transport_lookup(target, arg);
    if (ops != NULL) {
        return ops;
    }
    if (strncmp(target, "iokit", 5) == 0 &&
        (target[5] == '\0' || target[5] == ':')) {
        dext_log(DEXT_LOG_ERROR, "target '%s' is macOS-only (the real dext "
                 "through IOKit); here use unix:PATH (dextd) or "
                 "inproc:DEVICES", target);
    } else {
        dext_log(DEXT_LOG_ERROR, "unknown target '%s' (unix:PATH, "
                 "inproc:DEVICES or iokit)", target);
    }
    return NULL;
}

/* Does @ret of an open say only that the service has gone? */
static bool open_found_nothing(IOReturn ret)
{
    return ret == kIOReturnNotFound || ret == kIOReturnNotAttached ||
           ret == kIOReturnNoDevice || ret == kIOReturnNotResponding ||
           ret == kIOReturnOffline;
}

/* Does @ret of a call on a service just opened say only that it has gone? */
static bool identity_found_nothing(IOReturn ret)
{
    return ret == kIOReturnNotFound || ret == kIOReturnNoDevice ||
           ret == kIOReturnOffline;
}

/*
 * Visit every service of @target: open it, read its identity and let
 * @visit keep the transport (return true) or have it closed.  A service
 * that refuses to be opened (kIOReturnNotPermitted for a missing
 * entitlement, say), or whose identity cannot be read (a daemon that
 * dies, stalls or answers garbage meanwhile), cannot be identified; the
 * first such error is left in *@refused (kIOReturnSuccess if none).
 */
static IOReturn for_each_service(const char *target,
                                 bool (*visit)(void *opaque, DextTransport *t,
                                               const AppleDextDeviceInfo *info),
                                 void *opaque, IOReturn *refused)
{
    uint64_t ids[DEXT_MAX_SERVICES];
    const DextTransportOps *ops;
    const char *arg;
    uint32_t n = 0, i;
    IOReturn ret;

    if (target == NULL) {
        target = apple_dext_default_target();
    }
    *refused = kIOReturnSuccess;
    ops = lookup_target(target, &arg);
    if (ops == NULL) {
        return kIOReturnBadArgument;
    }
    ret = ops->list_services(arg, ids, DEXT_MAX_SERVICES, &n);
    if (ret != kIOReturnSuccess) {
        dext_log(DEXT_LOG_INFO, "cannot list services of %s: %s",
                 target, apple_dext_strerror(ret));
        return ret;
    }
    if (n > DEXT_MAX_SERVICES) {
        n = DEXT_MAX_SERVICES;
    }
    for (i = 0; i < n; i++) {
        AppleDextDeviceInfo info;
        DextTransport *t;

        /* A service may vanish between listing and opening: skip it. */
        ret = ops->open(arg, ids[i], 0, &t);
        if (ret != kIOReturnSuccess) {
            if (!open_found_nothing(ret) && *refused == kIOReturnSuccess) {
                dext_log(DEXT_LOG_INFO, "a service of %s refused to open: %s",
                         target, apple_dext_strerror(ret));
                *refused = ret;
            }
            continue;
        }
        ret = read_identity(t, &info);
        if (ret == kIOReturnSuccess && visit(opaque, t, &info)) {
            return kIOReturnSuccess;
        }
        if (ret != kIOReturnSuccess && !identity_found_nothing(ret) &&
            *refused == kIOReturnSuccess) {
            dext_log(DEXT_LOG_INFO, "a service of %s did not say its "
                     "identity: %s", target, apple_dext_strerror(ret));
            *refused = ret;
        }
        ops->close(t);
    }
    return kIOReturnSuccess;
}

typedef struct MatchBDF {
    uint8_t bus, device, function;
    DextTransport *found;
} MatchBDF;

static bool match_bdf(void *opaque, DextTransport *t,
                      const AppleDextDeviceInfo *info)
{
    MatchBDF *m = opaque;

    if (info->bus == m->bus && info->device == m->device &&
        info->function == m->function) {
        m->found = t;
        return true;
    }
    return false;
}

kern_return_t apple_dext_connect_target(const char *target, uint8_t bus,
                                        uint8_t device, uint8_t function,
                                        io_connect_t *out_connection)
{
    MatchBDF m = { bus, device, function, NULL };
    IOReturn ret, refused;

    if (out_connection == NULL) {
        return kIOReturnBadArgument;
    }
    *out_connection = IO_OBJECT_NULL;
    ret = for_each_service(target, match_bdf, &m, &refused);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    /* The device may be behind the error: that is the better answer. */
    if (m.found == NULL && refused != kIOReturnSuccess) {
        return refused;
    }
    if (m.found == NULL) {
        dext_log(DEXT_LOG_INFO,
                 "no device %02x:%02x.%x is served", bus, device,
                 function);
        return kIOReturnNotFound;
    }
    ret = conn_register(m.found, out_connection);
    if (ret != kIOReturnSuccess) {
        m.found->ops->close(m.found);
    }
    return ret;
}

io_connect_t apple_dext_connect(uint8_t bus, uint8_t device, uint8_t function)
{
    io_connect_t c = IO_OBJECT_NULL;

    apple_dext_connect_target(NULL, bus, device, function, &c);
    return c;
}

typedef struct ListState {
    AppleDextDeviceInfo *out;
    uint32_t max;
    uint32_t count;
} ListState;

static bool list_one(void *opaque, DextTransport *t,
                     const AppleDextDeviceInfo *info)
{
    ListState *ls = opaque;

    if (ls->out != NULL && ls->count < ls->max) {
        ls->out[ls->count] = *info;
    }
    ls->count++;
    return false;
}

kern_return_t apple_dext_list_devices(const char *target,
                                      AppleDextDeviceInfo *out, uint32_t max,
                                      uint32_t *out_count)
{
    ListState ls = { out, max, 0 };
    IOReturn ret, refused;

    if (out_count == NULL || (out == NULL && max > 0)) {
        return kIOReturnBadArgument;
    }
    /* What can be opened is listed; a refusal was logged. */
    ret = for_each_service(target, list_one, &ls, &refused);
    if (ret == kIOReturnSuccess) {
        *out_count = ls.count;
    }
    return ret;
}

kern_return_t apple_dext_get_identity(io_connect_t connection,
                                      AppleDextDeviceInfo *out)
{
    DextConnection *c;
    IOReturn ret;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    c = dext_conn_enter(connection, &ret);
    if (c == NULL) {
        return ret;
    }
    ret = read_identity(c->t, out);
    dext_conn_leave(c);
    return ret;
}

kern_return_t apple_dext_get_status(const char *target, AppleDextStatus *out)
{
    const DextTransportOps *ops;
    AppleDextStatus full;
    const char *arg;
    kern_return_t ret;
    size_t size;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    if (target == NULL) {
        target = apple_dext_default_target();
    }
    ops = lookup_target(target, &arg);
    if (ops == NULL) {
        return kIOReturnBadArgument;
    }
    if (ops->status == NULL) {
        return kIOReturnUnsupported;
    }
    /*
     * Fill a whole one, then give the caller no more than it has room
     * for: a caller built against an older, smaller AppleDextStatus.
     */
    size = out->size == 0 || out->size > sizeof(full) ? sizeof(full)
                                                      : out->size;
    if (size < offsetof(AppleDextStatus, protocol_version)) {
        return kIOReturnBadArgument;
    }
    memset(&full, 0, sizeof(full));
    ret = ops->status(arg, &full);
    if (ret == kIOReturnSuccess) {
        full.size = (uint32_t)size;
        memcpy(out, &full, size);
    }
    return ret;
}

kern_return_t apple_dext_set_timeouts(int32_t call_ms, int32_t connect_ms)
{
    if (call_ms < -1 || connect_ms < -1) {
        return kIOReturnBadArgument;
    }
    return dext_transport_set_timeouts(call_ms, connect_ms);
}
