/*
 * SPDX-License-Identifier: MIT
 *
 * The in-process transport: a dext core inside the calling process.
 *
 * Target "inproc:SPEC[+SPEC...]" where each SPEC is a device spec for
 * dext_device_create_each() ("edu", "edu,dma_mask=0xffffffff,bdf=00:04.0",
 * "host,bdf=00:01.0", "host" for every PCI function in sysfs).
 * "inproc:" alone means "inproc:edu".  One core exists per distinct
 * target string and lives until the process exits, so device state
 * persists across connections as it would in a daemon; a forked child
 * builds cores of its own (see inproc_forked()).  The core keeps
 * the default access policy (dext_core_set_policy()): connections
 * without a claim may not write, as with dextd without
 * --unclaimed-writes; there is no pseudo-device to change that.  What
 * the core logs goes to the library's log handler
 * (apple_dext_set_log_handler()).
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apple-dext-client.h"
#include "core/dext-core.h"
#include "support/locks.h"
#include "support/log.h"
#include "transport/common.h"

#define INPROC_DEFAULT "edu"
#define INPROC_MAX_SPEC 512
#define INPROC_CONTRACT_ONLY "contract-only"
#define INPROC_NO_IRQ_PAGE "no-irq-page"

typedef struct InprocCore {
    struct InprocCore *next;
    char *arg;
    DextCore *core;
} InprocCore;

typedef struct InprocConn {
    DextTransport base;
    DextSession *s;
    DextMappingList maps;
    struct InprocConn *next_inherited;  /* on inherited_conns only */
} InprocConn;

static DextMutex cores_lock = DEXT_MUTEX_INITIALIZER;
static InprocCore *cores DEXT_GUARDED_BY(cores_lock);
/* The cores of the parent, as copied at a fork: kept, never used. */
static InprocCore *inherited_cores;
/* A forked child's connections of its parent's, closed: the same. */
static InprocConn *inherited_conns;

/*
 * A forked child does not use its parent's cores: the copies have none
 * of their devices' worker threads, their locks may have been held by a
 * parent thread at the fork, and a real device behind one is the
 * parent's.  So the child forgets them (keeping them reachable, for leak
 * checkers: freeing one needs its locks) and its first connect to a
 * target builds a core of its own.  Runs in the child, on its only
 * thread; the lock is made anew for the same reason.
 */
static void inproc_forked(void) DEXT_NO_THREAD_SAFETY_ANALYSIS
{
    InprocCore *ic = cores;

    if (ic != NULL) {
        while (ic->next != NULL) {
            ic = ic->next;
        }
        ic->next = inherited_cores;
        inherited_cores = cores;
    }
    cores = NULL;
    dext_mutex_init(&cores_lock);
}

__attribute__((constructor)) static void inproc_watch_forks(void)
{
    (void)pthread_atfork(NULL, NULL, inproc_forked);
}

static IOReturn core_add_one(void *opaque, DextDevice *dev)
{
    IOReturn ret = dext_core_add_device(opaque, dev, NULL);

    /* A multimedia function is not served, as by dextd: not an error. */
    return ret == kIOReturnUnsupported ? kIOReturnSuccess : ret;
}

/*
 * Say what is wrong with @spec, which failed with @ret, where the code
 * alone would not (a device served twice the core has said already).
 */
static void log_spec_error(const char *spec, IOReturn ret)
{
    const char *bad = dext_device_bad_option();
    int name_len = (int)strcspn(spec, ",@");

    if (ret == kIOReturnBadArgument && bad[0] != '\0') {
        dext_log(DEXT_LOG_ERROR, "device spec '%s': %.*s does not take the "
                 "option '%s' (unknown, or a bad value)", spec, name_len,
                 spec, bad);
    } else if (dext_device_error()[0] != '\0') {
        dext_log(DEXT_LOG_ERROR, "device spec '%s': %s", spec,
                 dext_device_error());
    } else if (ret == kIOReturnBadArgument) {
        dext_log(DEXT_LOG_ERROR, "device spec '%s' is malformed", spec);
    } else if (ret == kIOReturnNotFound && name_len > 0 &&
               strncmp(spec, "host", (size_t)name_len) != 0) {
        dext_log(DEXT_LOG_ERROR, "device spec '%s': no device kind '%.*s' "
                 "(edu, ivshmem, host, dump, vfio)", spec, name_len, spec);
    }
}

static IOReturn core_build(const char *arg, DextCore **out)
{
    char buf[INPROC_MAX_SPEC];
    char *spec, *save = NULL;
    DextCore *core;
    IOReturn ret = kIOReturnSuccess;

    if (strlen(arg) >= sizeof(buf)) {
        return kIOReturnBadArgument;
    }
    strcpy(buf, arg[0] ? arg : INPROC_DEFAULT);
    /* The core's lines (device errors, IOMMU faults) go where the
     * application's log handler is, as dextd's go to its log. */
    core = dext_core_new(dext_log_sink, NULL);
    if (core == NULL) {
        return kIOReturnNoMemory;
    }
    for (spec = strtok_r(buf, "+", &save); spec;
         spec = strtok_r(NULL, "+", &save)) {
        /* Not a device: the core answers as the real dext does today. */
        if (strcmp(spec, INPROC_CONTRACT_ONLY) == 0) {
            dext_core_set_contract_only(core, true);
            continue;
        }
        /* Nor this: a dext that will not share its interrupt page. */
        if (strcmp(spec, INPROC_NO_IRQ_PAGE) == 0) {
            dext_core_set_no_irq_page(core, true);
            continue;
        }
        /* One spec may name several devices ("host,bdf=all"). */
        ret = dext_device_create_each(spec, core_add_one, core);
        if (ret != kIOReturnSuccess) {
            log_spec_error(spec, ret);
            dext_core_free(core);
            return ret;
        }
    }
    *out = core;
    return kIOReturnSuccess;
}

/* The core made for target argument @arg, or NULL. */
static DextCore *core_find(const char *arg) DEXT_REQUIRES(&cores_lock)
{
    InprocCore *ic;

    for (ic = cores; ic; ic = ic->next) {
        if (strcmp(ic->arg, arg) == 0) {
            return ic->core;
        }
    }
    return NULL;
}

/*
 * The core for @arg, made on first use.  Made under the lock, so that
 * two first users get one core; building one creates its devices (for
 * "host", reads sysfs) but waits on nobody.
 */
static IOReturn core_get(const char *arg, DextCore **out)
{
    InprocCore *ic;
    IOReturn ret;

    dext_mutex_lock(&cores_lock);
    *out = core_find(arg);
    if (*out != NULL) {
        dext_mutex_unlock(&cores_lock);
        return kIOReturnSuccess;
    }
    ic = calloc(1, sizeof(*ic));
    if (ic == NULL || (ic->arg = strdup(arg)) == NULL) {
        free(ic);
        dext_mutex_unlock(&cores_lock);
        return kIOReturnNoMemory;
    }
    ret = core_build(arg, &ic->core);
    if (ret != kIOReturnSuccess) {
        free(ic->arg);
        free(ic);
        dext_mutex_unlock(&cores_lock);
        return ret;
    }
    ic->next = cores;
    cores = ic;
    *out = ic->core;
    dext_mutex_unlock(&cores_lock);
    return kIOReturnSuccess;
}

/* Free the cores at exit so leak checkers see a clean process. */
__attribute__((destructor)) static void inproc_cleanup(void)
{
    InprocCore *ic;

    dext_mutex_lock(&cores_lock);
    while ((ic = cores) != NULL) {
        DextCoreStats st;

        cores = ic->next;
        dext_core_stats(ic->core, &st);
        /* Sessions still open belong to leaked connections: keep their
         * core alive rather than pull it from under them. */
        if (st.sessions == 0) {
            dext_core_free(ic->core);
        }
        free(ic->arg);
        free(ic);
    }
    dext_mutex_unlock(&cores_lock);
}

static IOReturn inproc_list(const char *arg, uint64_t *ids, uint32_t max,
                            uint32_t *count)
{
    DextCore *core;
    IOReturn ret = core_get(arg, &core);

    if (ret == kIOReturnSuccess) {
        *count = dext_core_list(core, ids, max);
    }
    return ret;
}

static IOReturn inproc_status(const char *arg, AppleDextStatus *out)
{
    DextCoreStats st;
    DextCore *core;
    IOReturn ret = core_get(arg, &core);

    if (ret != kIOReturnSuccess) {
        return ret;
    }
    dext_core_stats(core, &st);
    out->server_pid = (uint32_t)getpid();
    APPLE_DEXT_STATUS_COUNTERS(APPLE_DEXT_STATUS_COPY, out, &st)
    return kIOReturnSuccess;
}

static IOReturn inproc_open(const char *arg, uint64_t id, uint32_t type,
                            DextTransport **out)
{
    InprocConn *ic;
    DextCore *core;
    IOReturn ret = core_get(arg, &core);

    if (ret != kIOReturnSuccess) {
        return ret;
    }
    ic = calloc(1, sizeof(*ic));
    if (ic == NULL) {
        return kIOReturnNoMemory;
    }
    ret = dext_core_open(core, id, type, getpid(), -1, &ic->s);
    if (ret != kIOReturnSuccess) {
        free(ic);
        return ret;
    }
    ic->base.ops = &dext_transport_inproc;
    dext_mappings_init(&ic->maps);
    *out = &ic->base;
    return kIOReturnSuccess;
}

static IOReturn inproc_call(DextTransport *t, uint32_t selector,
                            const DextCallArgs *args)
{
    return dext_session_call(((InprocConn *)t)->s, selector, args);
}

static IOReturn inproc_call_async(DextTransport *t, uint32_t selector,
                                  DextWake *wake, const DextCallArgs *args)
{
    if (wake == NULL) {
        return kIOReturnBadArgument;
    }
    return dext_session_call_async(((InprocConn *)t)->s, selector, wake->fd,
                                   args);
}

static IOReturn inproc_wake_create(DextTransport *t, DextWake **out)
{
    return dext_eventfd_wake_create(out);
}

static IOReturn inproc_map(DextTransport *t, uint32_t type, uint32_t options,
                           mach_vm_address_t *addr, mach_vm_size_t *size)
{
    InprocConn *ic = (InprocConn *)t;
    DextMemory mem;
    IOReturn ret;

    ret = dext_session_map(ic->s, type, &mem);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    return dext_mappings_map(&ic->maps, type, &mem, addr, size);
}

static IOReturn inproc_map_fd(DextTransport *t, uint32_t type,
                              uint32_t options, DextMemory *out)
{
    IOReturn ret = dext_session_map(((InprocConn *)t)->s, type, out);

    if (ret == kIOReturnSuccess && out->local_only) {
        /* A VFIO device fd: mapped here at most, never handed on. */
        close(out->fd);
        out->fd = -1;
        return kIOReturnUnsupported;
    }
    return ret;
}

static IOReturn inproc_unmap(DextTransport *t, uint32_t type,
                             mach_vm_address_t addr)
{
    return dext_mappings_unmap(&((InprocConn *)t)->maps, type, addr);
}

static void inproc_close(DextTransport *t)
{
    InprocConn *ic = (InprocConn *)t;

    dext_mappings_destroy(&ic->maps);
    dext_session_close(ic->s);
    free(ic);
}

/*
 * In a forked child, of a connection its parent opened: unmap our copies
 * of its mappings.  The session is the parent core's, a copy the child
 * has set aside (inproc_forked()) and never touches; closing it would
 * take that copy's locks.  So it is kept with the connection, reachable
 * (for leak checkers) on a list no one walks.
 */
static void inproc_close_inherited(DextTransport *t)
{
    InprocConn *ic = (InprocConn *)t;

    dext_mappings_release(&ic->maps);
    ic->next_inherited = __atomic_load_n(&inherited_conns, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&inherited_conns, &ic->next_inherited,
                                        ic, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED)) {
    }
}

const DextTransportOps dext_transport_inproc = {
    .name = "inproc",
    .list_services = inproc_list,
    .status = inproc_status,
    .open = inproc_open,
    .call = inproc_call,
    .call_async = inproc_call_async,
    .wake_create = inproc_wake_create,
    .map = inproc_map,
    .map_fd = inproc_map_fd,
    .unmap = inproc_unmap,
    .close = inproc_close,
    .close_inherited = inproc_close_inherited,
};
