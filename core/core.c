/*
 * SPDX-License-Identifier: MIT
 *
 * The dext core: services, sessions (user clients), the shared claim,
 * config space and BAR access, reset, and selector dispatch.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core-internal.h"

/* ------------------------------------------------------------------ */
/* Core and services                                                    */

DextCore *dext_core_new(DextLogFn *log, void *log_opaque)
{
    DextCore *core = calloc(1, sizeof(*core));

    if (core == NULL) {
        return NULL;
    }
    core->log = log;
    core->log_opaque = log_opaque;
    core->next_id = 0x100000001ull;     /* registry-entry-ID-like, never 0 */
    core->dma_share_pct = DEXT_DMA_SHARE_DEFAULT;
    pthread_mutex_init(&core->lock, NULL);
    return core;
}

static void core_device_free(CoreDevice *cd)
{
    dext_device_free(cd->dev);
    dext_dma_device_destroy(cd);
    pthread_rwlock_destroy(&cd->irq_lock);
    pthread_rwlock_destroy(&cd->dma_lock);
    pthread_mutex_destroy(&cd->lock);
    free(cd);
}

void dext_core_set_contract_only(DextCore *core, bool on)
{
    if (core != NULL) {
        core->contract_only = on;
    }
}

IOReturn dext_core_set_dma_share(DextCore *core, uint32_t percent)
{
    if (core == NULL || percent < 1 || percent > 100) {
        return kIOReturnBadArgument;
    }
    core->dma_share_pct = percent;
    return kIOReturnSuccess;
}

void dext_core_set_policy(DextCore *core, unsigned flags)
{
    if (core != NULL) {
        core->policy = flags;
    }
}

void dext_core_free(DextCore *core)
{
    uint32_t i;

    if (core == NULL) {
        return;
    }
    /* Sessions belong to their transports, which close them first. */
    for (i = 0; i < core->ndevices; i++) {
        core_device_free(core->devices[i]);
    }
    pthread_mutex_destroy(&core->lock);
    free(core);
}

static void assign_memory_indexes(CoreDevice *cd)
{
    int bar;
    int idx = 0;

    for (bar = 0; bar < DEXT_NUM_BARS; bar++) {
        cd->mem_index_bar[bar] = -1;
        cd->bar_mem_index[bar] = -1;
    }
    /* PCIDriverKit numbers the present BARs in order; not the BAR index. */
    for (bar = 0; bar < DEXT_NUM_BARS; bar++) {
        if (cd->dev->bars[bar].size != 0) {
            cd->bar_mem_index[bar] = (int8_t)idx;
            cd->mem_index_bar[idx++] = (int8_t)bar;
        }
    }
}

IOReturn dext_core_add_device(DextCore *core, DextDevice *dev,
                              uint64_t *out_id)
{
    CoreDevice *cd;
    IOReturn ret;
    uint32_t i;

    if (core == NULL || dev == NULL) {
        return kIOReturnBadArgument;
    }
    if ((dev->class_code >> 16) == PCI_CLASS_MULTIMEDIA) {
        dext_core_logf(core, DEXT_LOG_INFO,
                       "%s: multimedia function, not served", dev->name);
        dext_device_free(dev);
        return kIOReturnUnsupported;
    }
    cd = calloc(1, sizeof(*cd));
    if (cd == NULL) {
        dext_device_free(dev);
        return kIOReturnNoMemory;
    }
    cd->core = core;
    cd->dev = dev;
    pthread_mutex_init(&cd->lock, NULL);
    pthread_rwlock_init(&cd->irq_lock, NULL);
    pthread_rwlock_init(&cd->dma_lock, NULL);
    assign_memory_indexes(cd);

    dev->host.dma_read = dext_dma_device_read;
    dev->host.dma_write = dext_dma_device_write;
    dev->host.raise_msi = dext_irq_device_raise;
    dev->host.log = dext_core_device_log;
    dev->host.opaque = cd;

    ret = dext_dma_device_init(cd);
    if (ret != kIOReturnSuccess) {
        core_device_free(cd);
        return ret;
    }
    dext_irq_probe_caps(cd);

    core_mutex_lock(&core->lock);
    for (i = 0; i < core->ndevices; i++) {
        DextDevice *other = core->devices[i]->dev;
        if (!core->devices[i]->terminated && other->bus == dev->bus &&
            other->dev == dev->dev && other->fn == dev->fn) {
            core_mutex_unlock(&core->lock);
            dext_core_logf(core, DEXT_LOG_ERROR,
                           "%s: %02x:%02x.%x is served already", dev->name,
                           dev->bus, dev->dev, dev->fn);
            core_device_free(cd);
            return kIOReturnExclusiveAccess;
        }
    }
    if (core->ndevices == DEXT_MAX_DEVICES) {
        core_mutex_unlock(&core->lock);
        core_device_free(cd);
        return kIOReturnNoResources;
    }
    cd->id = core->next_id++;
    core->devices[core->ndevices++] = cd;
    core_mutex_unlock(&core->lock);

    dext_core_logf(core, DEXT_LOG_INFO,
                   "serving %s at %02x:%02x.%x [%04x:%04x] class %06x, %u vector(s)",
                   dev->name, dev->bus, dev->dev, dev->fn, dev->vendor_id,
                   dev->device_id, dev->class_code, cd->nvectors);
    if (out_id) {
        *out_id = cd->id;
    }
    return kIOReturnSuccess;
}

uint32_t dext_core_list(DextCore *core, uint64_t *ids, uint32_t max)
{
    uint32_t i, n = 0;

    if (core == NULL) {
        return 0;
    }
    core_mutex_lock(&core->lock);
    for (i = 0; i < core->ndevices; i++) {
        CoreDevice *cd = core->devices[i];
        bool gone;

        core_mutex_lock(&cd->lock);
        gone = cd->terminated;
        core_mutex_unlock(&cd->lock);
        if (gone) {
            continue;
        }
        if (ids != NULL && n < max) {
            ids[n] = cd->id;
        }
        n++;
    }
    core_mutex_unlock(&core->lock);
    return n;
}

void dext_core_stats(DextCore *core, DextCoreStats *st)
{
    uint32_t i;

    memset(st, 0, sizeof(*st));
    if (core == NULL) {
        return;
    }
    core_mutex_lock(&core->lock);
    st->sessions = core->sessions;
    for (i = 0; i < core->ndevices; i++) {
        CoreDevice *cd = core->devices[i];
        IrqState *irq;

        core_mutex_lock(&cd->lock);
        if (!cd->terminated) {
            st->devices++;
        }
        st->claims += cd->claims;
        core_mutex_unlock(&cd->lock);

        core_rwlock_rdlock(&cd->irq_lock);
        for (irq = cd->irq_subs; irq; irq = irq->next) {
            st->irq_sessions++;
        }
        core_rwlock_unlock(&cd->irq_lock);
        dext_dma_stats(cd, st);
    }
    core_mutex_unlock(&core->lock);
    st->iommu_faults = atomic_load(&core->iommu_faults);
    st->irqs_raised = atomic_load(&core->irqs_raised);
    st->irqs_dropped = atomic_load(&core->irqs_dropped);
}

/* ------------------------------------------------------------------ */
/* Sessions                                                             */

IOReturn dext_core_open(DextCore *core, uint64_t id, uint32_t type,
                        pid_t client_pid, int client_pidfd,
                        DextSession **out)
{
    CoreDevice *cd = NULL;
    DextSession *s;
    IOReturn ret;
    uint32_t i;

    if (core == NULL || out == NULL) {
        return kIOReturnBadArgument;
    }
    if (type != 0) {
        return kIOReturnUnsupported;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return kIOReturnNoMemory;
    }
    ret = dext_client_mem_new(client_pid, client_pidfd, &s->mem);
    if (ret != kIOReturnSuccess) {
        free(s);
        return ret;
    }

    core_mutex_lock(&core->lock);
    for (i = 0; i < core->ndevices; i++) {
        if (core->devices[i]->id == id) {
            cd = core->devices[i];
        }
    }
    if (cd == NULL || core->sessions >= DEXT_MAX_SESSIONS) {
        core_mutex_unlock(&core->lock);
        dext_client_mem_unref(s->mem);
        free(s);
        return cd == NULL ? kIOReturnNotFound : kIOReturnNoResources;
    }
    core_mutex_lock(&cd->lock);
    if (cd->terminated) {
        core_mutex_unlock(&cd->lock);
        core_mutex_unlock(&core->lock);
        dext_client_mem_unref(s->mem);
        free(s);
        return kIOReturnNotFound;
    }
    cd->sessions++;
    core_mutex_unlock(&cd->lock);
    core->sessions++;
    core_mutex_unlock(&core->lock);

    s->core = core;
    s->cd = cd;
    dext_range_tree_init(&s->regions);
    *out = s;
    dext_core_logf(core, DEXT_LOG_DEBUG, "%s: session %p opened by pid %d",
                   cd->dev->name, (void *)s, (int)client_pid);
    return kIOReturnSuccess;
}

/* Release the claim share of @s; the last one closes the device. */
static void claim_release(DextSession *s)
{
    CoreDevice *cd = s->cd;

    core_mutex_lock(&cd->lock);
    if (s->claimed) {
        __atomic_store_n(&s->claimed, false, __ATOMIC_RELEASE);
        if (__atomic_sub_fetch(&cd->claims, 1, __ATOMIC_ACQ_REL) == 0) {
            memset(cd->bar_cached, 0, sizeof(cd->bar_cached));
            if (cd->dev->ops->close) {
                cd->dev->ops->close(cd->dev);
            }
            dext_core_logf(s->core, DEXT_LOG_DEBUG, "%s: closed (last claim)",
                           cd->dev->name);
        }
    }
    core_mutex_unlock(&cd->lock);
}

void dext_session_close(DextSession *s)
{
    DextCore *core;
    CoreDevice *cd;

    if (s == NULL) {
        return;
    }
    core = s->core;
    cd = s->cd;
    /* The contract's order: interrupt sources, DMA regions, buffer, claim. */
    dext_irq_session_release(s);
    dext_dma_session_release(s);
    claim_release(s);

    core_mutex_lock(&core->lock);
    core_mutex_lock(&cd->lock);
    cd->sessions--;
    core_mutex_unlock(&cd->lock);
    core->sessions--;
    core_mutex_unlock(&core->lock);

    dext_client_mem_unref(s->mem);
    dext_core_logf(core, DEXT_LOG_DEBUG, "%s: session %p closed", cd->dev->name,
                   (void *)s);
    free(s);
}

/* ------------------------------------------------------------------ */
/* Methods                                                              */

/*
 * The claim and terminated flags change under CoreDevice.lock (so opening
 * and closing the device stays consistent with the count) but are stored
 * atomically, so the checks every call makes read them without the lock:
 * callers on several threads of one device are not serialised by it.
 */
static bool is_claimed(DextSession *s)
{
    return __atomic_load_n(&s->claimed, __ATOMIC_ACQUIRE);
}

/*
 * Whether @s may change the device: write config space or registers, map
 * a BAR writable, terminate.  The one test of the access model
 * (dext_core_set_policy()), used by dispatch and by BAR mapping.
 */
static bool session_may_write(DextSession *s)
{
    return is_claimed(s) || (s->core->policy & DEXT_POLICY_UNCLAIMED_WRITES);
}

static bool device_open(CoreDevice *cd)
{
    return __atomic_load_n(&cd->claims, __ATOMIC_ACQUIRE) > 0;
}

static IOReturn do_claim(DextSession *s)
{
    CoreDevice *cd = s->cd;
    IOReturn ret = kIOReturnSuccess;

    core_mutex_lock(&cd->lock);
    if (s->claimed) {
        goto out;
    }
    if (cd->claims == 0) {
        if (cd->dev->ops->open) {
            ret = cd->dev->ops->open(cd->dev);
            if (ret != kIOReturnSuccess) {
                goto out;
            }
        }
        if (cd->dev->writable) {
            uint32_t cmd = 0;

            /*
             * Opening the IOPCIDevice turns on memory decode and mastering;
             * mastering only where the device's DMA can be served at all.
             */
            ret = dext_config_read_raw(cd->dev, PCI_COMMAND, 2, &cmd);
            if (ret == kIOReturnSuccess) {
                cmd |= PCI_COMMAND_MEMORY |
                       (cd->dev->no_dma ? 0 : PCI_COMMAND_MASTER);
                ret = dext_config_write_raw(cd->dev, PCI_COMMAND, 2, cmd);
            }
            if (ret != kIOReturnSuccess) {
                if (cd->dev->ops->close) {
                    cd->dev->ops->close(cd->dev);
                }
                goto out;
            }
        }
        dext_core_logf(s->core, DEXT_LOG_DEBUG, "%s: opened (first claim)",
                       cd->dev->name);
    }
    __atomic_add_fetch(&cd->claims, 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&s->claimed, true, __ATOMIC_RELEASE);
out:
    core_mutex_unlock(&cd->lock);
    return ret;
}

static IOReturn do_terminate(DextSession *s)
{
    CoreDevice *cd = s->cd;

    core_mutex_lock(&cd->lock);
    /* Dispatch let only a claimer through: others' claims stand in the way. */
    if (!(s->core->policy & DEXT_POLICY_UNCLAIMED_WRITES) && cd->claims > 1) {
        core_mutex_unlock(&cd->lock);
        return kIOReturnBusy;
    }
    if (!cd->terminated) {
        __atomic_store_n(&cd->terminated, true, __ATOMIC_RELEASE);
        dext_core_logf(s->core, DEXT_LOG_INFO, "%s: terminated by a client",
                       cd->dev->name);
    }
    core_mutex_unlock(&cd->lock);
    return kIOReturnSuccess;
}

static IOReturn bar_for_mem_index(CoreDevice *cd, uint64_t mem_idx, int *bar)
{
    if (mem_idx >= DEXT_NUM_BARS || cd->mem_index_bar[mem_idx] < 0) {
        return kIOReturnBadArgument;
    }
    *bar = cd->mem_index_bar[mem_idx];
    return kIOReturnSuccess;
}

static IOReturn mmio_check(CoreDevice *cd, uint64_t mem_idx, uint64_t off,
                           uint64_t width, int *bar)
{
    IOReturn ret;

    if (width != 1 && width != 2 && width != 4 && width != 8) {
        return kIOReturnBadArgument;
    }
    ret = bar_for_mem_index(cd, mem_idx, bar);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (off >= cd->dev->bars[*bar].size ||
        width > cd->dev->bars[*bar].size - off || (off & (width - 1)) != 0) {
        return kIOReturnBadArgument;
    }
    if (!cd->dev->writable) {
        return kIOReturnNotPermitted;
    }
    if (!device_open(cd)) {
        return kIOReturnNotOpen;
    }
    return kIOReturnSuccess;
}

static IOReturn do_reset(DextSession *s)
{
    CoreDevice *cd = s->cd;
    DextDevice *dev = cd->dev;
    DextConfigSave save;
    IOReturn ret = kIOReturnUnsupported;

    if (!dev->writable) {
        return kIOReturnNotPermitted;
    }
    core_mutex_lock(&cd->lock);
    dext_config_save(dev, &save);
    if (dev->ops->reset_function) {
        ret = dev->ops->reset_function(dev);
    }
    if (ret != kIOReturnSuccess && dev->ops->reset_bus) {
        dext_core_logf(s->core, DEXT_LOG_INFO,
                       "%s: function reset failed (0x%x), trying a hot reset",
                       dev->name, (unsigned)ret);
        ret = dev->ops->reset_bus(dev);
    }
    if (ret == kIOReturnSuccess) {
        dext_config_restore(dev, &save);
        dext_irq_restore_config(cd, &save);
    }
    core_mutex_unlock(&cd->lock);
    return ret;
}

static IOReturn do_status(DextSession *s, uint64_t *out)
{
    CoreDevice *cd = s->cd;

    core_mutex_lock(&cd->lock);
    out[0] = cd->claims;
    out[1] = cd->sessions;
    out[2] = s->irq ? s->irq->nvectors : 0;
    out[3] = s->claimed;
    out[5] = cd->terminated;
    core_mutex_unlock(&cd->lock);
    out[4] = dext_dma_session_regions(s);
    return kIOReturnSuccess;
}

static IOReturn get_bar_info(CoreDevice *cd, uint64_t bar, uint64_t *out)
{
    const DextBar *b;

    if (bar >= DEXT_NUM_BARS) {
        return kIOReturnBadArgument;
    }
    b = &cd->dev->bars[bar];
    if (b->size == 0) {
        return kIOReturnNotFound;
    }
    out[0] = (uint64_t)cd->bar_mem_index[bar];
    out[1] = b->size;
    out[2] = b->type;
    return kIOReturnSuccess;
}

/* Who may make a call: the access model (dext_core_set_policy()). */
typedef enum MethodAccess {
    ACCESS_ANY,             /* every session */
    ACCESS_CLAIM,           /* a claimer, under every policy */
    ACCESS_WRITE,           /* a claimer, or anyone under
                             * DEXT_POLICY_UNCLAIMED_WRITES */
} MethodAccess;

/*
 * The method table: the contract's argument counts, and who may call,
 * are checked here, once, for every selector.
 */
typedef struct MethodDesc {
    uint8_t in;             /* scalar inputs needed */
    uint8_t out;            /* scalar output room needed */
    MethodAccess access;
} MethodDesc;

static const MethodDesc methods[] = {
    [kDextSelectorGetIdentity] = { 0, 6, ACCESS_ANY },
    [kDextSelectorClaim] = { 0, 0, ACCESS_ANY },
    [kDextSelectorTerminate] = { 0, 0, ACCESS_WRITE },
    [kDextSelectorAllocateDMABuffer] = { 2, 6, ACCESS_CLAIM },
    [kDextSelectorFreeDMABuffer] = { 0, 0, ACCESS_ANY },
    [kDextSelectorRegisterDMARegion] = { 3, 3, ACCESS_CLAIM },
    [kDextSelectorUnregisterDMARegion] = { 1, 0, ACCESS_ANY },
    [kDextSelectorProbeDMARegion] = { 2, 1, ACCESS_ANY },
    [kDextSelectorConfigRead] = { 2, 1, ACCESS_ANY },
    [kDextSelectorConfigWrite] = { 3, 0, ACCESS_WRITE },
    [kDextSelectorGetBARInfo] = { 1, 3, ACCESS_ANY },
    [kDextSelectorMMIORead] = { 3, 1, ACCESS_ANY },
    [kDextSelectorMMIOWrite] = { 4, 0, ACCESS_WRITE },
    [kDextSelectorSetupInterrupts] = { 0, 1, ACCESS_CLAIM },
    [kDextSelectorCheckInterrupt] = { 0, 4, ACCESS_ANY },
    [kDextSelectorWaitInterrupt] = { 0, 0, ACCESS_ANY },
    [kDextSelectorSetIRQMask] = { 4, 0, ACCESS_ANY },
    [kDextSelectorResetDevice] = { 0, 0, ACCESS_CLAIM },
};

#define EXT(sel) ((sel) - kDextSelectorExtensionBase)

static const MethodDesc ext_methods[] = {
    [EXT(kDextSelectorConfigReadBlock)] = { 3, 0, ACCESS_ANY },
    [EXT(kDextSelectorConfigWriteBlock)] = { 1, 0, ACCESS_WRITE },
    [EXT(kDextSelectorGetDeviceStatus)] = { 0, 6, ACCESS_ANY },
};

static const MethodDesc *method_desc(uint32_t selector)
{
    if (selector < kDextSelectorContractCount) {
        return &methods[selector];
    }
    if (selector >= kDextSelectorExtensionBase &&
        EXT(selector) < sizeof(ext_methods) / sizeof(ext_methods[0])) {
        return &ext_methods[EXT(selector)];
    }
    return NULL;
}

static IOReturn check_args(uint32_t selector, const DextCallArgs *a,
                           uint32_t *nout)
{
    const MethodDesc *m = method_desc(selector);

    if (m == NULL) {
        return kIOReturnUnsupported;
    }
    *nout = a->scalar_out_cnt ? *a->scalar_out_cnt : 0;
    if (a->scalar_in_cnt < m->in || *nout < m->out ||
        a->scalar_in_cnt > DEXT_MAX_SCALARS ||
        (a->scalar_in_cnt > 0 && a->scalar_in == NULL) ||
        (*nout > 0 && a->scalar_out == NULL) ||
        (a->struct_in_size > 0 && a->struct_in == NULL) ||
        a->struct_in_size > DEXT_MAX_STRUCT) {
        return kIOReturnBadArgument;
    }
    return kIOReturnSuccess;
}

static bool session_gone(DextSession *s)
{
    return __atomic_load_n(&s->cd->terminated, __ATOMIC_ACQUIRE);
}

/* kIOReturnNotOpen when @s may not make a call of @selector. */
static IOReturn check_access(DextSession *s, uint32_t selector)
{
    const MethodDesc *m = method_desc(selector);

    switch (m->access) {
    case ACCESS_CLAIM:
        return is_claimed(s) ? kIOReturnSuccess : kIOReturnNotOpen;
    case ACCESS_WRITE:
        return session_may_write(s) ? kIOReturnSuccess : kIOReturnNotOpen;
    default:
        return kIOReturnSuccess;
    }
}

static IOReturn dispatch(DextSession *s, uint32_t sel, const DextCallArgs *a,
                         uint64_t *out, uint32_t *nout)
{
    CoreDevice *cd = s->cd;
    DextDevice *dev = cd->dev;
    const uint64_t *in = a->scalar_in;
    IOReturn ret;
    uint32_t val32;
    int bar;

    switch (sel) {
    case kDextSelectorGetIdentity:
        out[0] = dev->bus;
        out[1] = dev->dev;
        out[2] = dev->fn;
        out[3] = dev->vendor_id;
        out[4] = dev->device_id;
        out[5] = dev->class_code & 0xffffff;
        *nout = 6;
        return kIOReturnSuccess;

    case kDextSelectorClaim:
        return do_claim(s);

    case kDextSelectorTerminate:
        return do_terminate(s);

    case kDextSelectorAllocateDMABuffer:
        if (!dev->writable) {
            return kIOReturnNotPermitted;
        }
        if (dev->no_dma) {
            return kIOReturnUnsupported;
        }
        ret = dext_dma_buffer_allocate(s, in[0], in[1], out);
        if (ret == kIOReturnSuccess) {
            out[5] = dev->class_code & 0xffffff;
            *nout = 6;
        }
        return ret;

    case kDextSelectorFreeDMABuffer:
        dext_dma_buffer_free(s);
        return kIOReturnSuccess;

    case kDextSelectorRegisterDMARegion:
        if (!dev->writable) {
            return kIOReturnNotPermitted;
        }
        if (dev->no_dma) {
            return kIOReturnUnsupported;
        }
        ret = dext_dma_register(s, in[0], in[1], in[2], out);
        if (ret == kIOReturnSuccess) {
            *nout = 3;
        }
        return ret;

    case kDextSelectorUnregisterDMARegion:
        return dext_dma_unregister(s, in[0]);

    case kDextSelectorProbeDMARegion:
        ret = dext_dma_probe(s, in[0], in[1], &out[0]);
        if (ret == kIOReturnSuccess) {
            *nout = 1;
        }
        return ret;

    case kDextSelectorConfigRead:
        if (!dext_config_access_ok(dev, in[0], in[1])) {
            return kIOReturnBadArgument;
        }
        ret = dext_config_read(dev, (uint32_t)in[0], (uint32_t)in[1], &val32);
        if (ret != kIOReturnSuccess) {
            return ret;
        }
        out[0] = val32;
        *nout = 1;
        return kIOReturnSuccess;

    case kDextSelectorConfigWrite:
        if (!dext_config_access_ok(dev, in[0], in[1])) {
            return kIOReturnBadArgument;
        }
        if (!dev->writable) {
            return kIOReturnNotPermitted;
        }
        val32 = (uint32_t)in[2];
        if (in[1] < 4) {
            val32 &= (1u << (8 * in[1])) - 1;
        }
        return dext_config_write_raw(dev, (uint32_t)in[0], (uint32_t)in[1],
                                     val32);

    case kDextSelectorGetBARInfo:
        ret = get_bar_info(cd, in[0], out);
        if (ret == kIOReturnSuccess) {
            *nout = 3;
        }
        return ret;

    case kDextSelectorMMIORead:
        ret = mmio_check(cd, in[0], in[1], in[2], &bar);
        if (ret != kIOReturnSuccess) {
            return ret;
        }
        if (dev->ops->mmio_read == NULL) {
            return kIOReturnUnsupported;
        }
        out[0] = 0;
        ret = dev->ops->mmio_read(dev, bar, in[1], (uint32_t)in[2], &out[0]);
        if (ret == kIOReturnSuccess) {
            *nout = 1;
        }
        return ret;

    case kDextSelectorMMIOWrite:
        ret = mmio_check(cd, in[0], in[1], in[2], &bar);
        if (ret != kIOReturnSuccess) {
            return ret;
        }
        if (dev->ops->mmio_write == NULL) {
            return kIOReturnUnsupported;
        }
        return dev->ops->mmio_write(dev, bar, in[1], (uint32_t)in[2], in[3]);

    case kDextSelectorSetupInterrupts:
        if (!dev->writable) {
            return kIOReturnNotPermitted;
        }
        if (dev->no_irq) {
            return kIOReturnUnsupported;
        }
        ret = dext_irq_setup(s, &out[0]);
        if (ret == kIOReturnSuccess) {
            *nout = 1;
        }
        return ret;

    case kDextSelectorCheckInterrupt:
        ret = dext_irq_check(s, out);
        if (ret == kIOReturnSuccess) {
            *nout = 4;
        }
        return ret;

    case kDextSelectorWaitInterrupt:
        /* Only meaningful as an async call: there is nothing to wake. */
        return kIOReturnBadArgument;

    case kDextSelectorSetIRQMask:
        return dext_irq_set_mask(s, in);

    case kDextSelectorResetDevice:
        return do_reset(s);

    case kDextSelectorConfigReadBlock:
        if (in[0] > dev->config_size || in[1] > dev->config_size - in[0] ||
            (in[2] & ~(uint64_t)DEXT_CONFIG_BLOCK_RAW) != 0 ||
            a->struct_out == NULL || a->struct_out_size == NULL ||
            *a->struct_out_size < in[1]) {
            return kIOReturnBadArgument;
        }
        ret = dext_config_read_block(dev, (uint32_t)in[0], a->struct_out,
                                     (uint32_t)in[1],
                                     (in[2] & DEXT_CONFIG_BLOCK_RAW) != 0);
        if (ret == kIOReturnSuccess) {
            *a->struct_out_size = in[1];
        }
        return ret;

    case kDextSelectorConfigWriteBlock:
        if (in[0] > dev->config_size ||
            a->struct_in_size > dev->config_size - in[0]) {
            return kIOReturnBadArgument;
        }
        if (!dev->writable) {
            return kIOReturnNotPermitted;
        }
        return dext_config_write_block(dev, (uint32_t)in[0], a->struct_in,
                                       (uint32_t)a->struct_in_size);

    case kDextSelectorGetDeviceStatus:
        *nout = 6;
        return do_status(s, out);
    }
    return kIOReturnUnsupported;
}

IOReturn dext_session_call(DextSession *s, uint32_t selector,
                           const DextCallArgs *args)
{
    uint64_t out[DEXT_MAX_SCALARS] = { 0 };
    uint32_t room, nout = 0;
    IOReturn ret;

    if (s == NULL || args == NULL) {
        return kIOReturnBadArgument;
    }
    ret = check_args(selector, args, &room);
    if (ret == kIOReturnSuccess && selector >= kDextSelectorExtensionBase &&
        s->core->contract_only) {
        ret = kIOReturnUnsupported;
    }
    if (ret == kIOReturnSuccess && session_gone(s)) {
        ret = kIOReturnNoDevice;
    }
    if (ret == kIOReturnSuccess) {
        ret = check_access(s, selector);
    }
    if (ret == kIOReturnSuccess) {
        ret = dispatch(s, selector, args, out, &nout);
    }
    if (ret != kIOReturnSuccess || nout > room) {
        nout = 0;
        if (args->struct_out_size) {
            *args->struct_out_size = 0;
        }
    } else if (selector != kDextSelectorConfigReadBlock &&
               args->struct_out_size) {
        *args->struct_out_size = 0;
    }
    if (args->scalar_out_cnt) {
        memcpy(args->scalar_out, out, nout * sizeof(out[0]));
        *args->scalar_out_cnt = nout;
    }
    return ret;
}

IOReturn dext_session_call_async(DextSession *s, uint32_t selector,
                                 int wake_fd, const DextCallArgs *args)
{
    uint32_t room;
    IOReturn ret;

    if (s == NULL || args == NULL || wake_fd < 0) {
        return kIOReturnBadArgument;
    }
    ret = check_args(selector, args, &room);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (args->scalar_out_cnt) {
        *args->scalar_out_cnt = 0;
    }
    if (session_gone(s)) {
        return kIOReturnNoDevice;
    }
    if (selector != kDextSelectorWaitInterrupt) {
        return kIOReturnBadArgument;
    }
    return dext_irq_wait(s, wake_fd);
}

/*
 * Make @mem a read-only view of the same memory: a new open file
 * description of the same file, opened O_RDONLY through /proc/self/fd.
 * Whoever receives the fd can then map it MAP_SHARED with PROT_READ only
 * (mmap and mprotect refuse PROT_WRITE on a shared mapping of a file not
 * open for writing); the writable flag alone would bind only a client
 * that chose to obey it.  Only regular files are reopened (memfds, sysfs
 * resource files): opening anything else could block or have side
 * effects, and a socket or an anonymous inode cannot be reopened at all.
 * Fails closed: on any error @mem->fd is closed and set to -1.
 */
static IOReturn memory_make_read_only(CoreDevice *cd, DextMemory *mem)
{
    char path[64];
    struct stat was, now;
    const char *why = NULL;
    int fd = -1, err = 0;

    if (fstat(mem->fd, &was) != 0) {
        err = errno;
    } else if (!S_ISREG(was.st_mode)) {
        why = "not a regular file";
    } else {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", mem->fd);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            err = errno;
        } else if (fstat(fd, &now) != 0 || now.st_dev != was.st_dev ||
                   now.st_ino != was.st_ino) {
            /* Not the same file (a /proc of another namespace?): refuse. */
            why = "/proc/self/fd reopened another file";
            close(fd);
            fd = -1;
        }
    }
    close(mem->fd);
    mem->fd = fd;
    mem->writable = false;
    if (fd >= 0) {
        return kIOReturnSuccess;
    }
    /* Debug only: a client could repeat the call as often as it likes. */
    dext_core_logf(cd->core, DEXT_LOG_DEBUG,
                   "%s: cannot map a BAR read-only for a client without a "
                   "claim: %s", cd->dev->name, why ? why : strerror(err));
    return err == EMFILE || err == ENFILE || err == ENOMEM ?
           kIOReturnNoResources : kIOReturnNotOpen;
}

IOReturn dext_session_map(DextSession *s, uint32_t type, DextMemory *out)
{
    CoreDevice *cd;
    DextDevice *dev;
    int bar;
    IOReturn ret;

    if (s == NULL || out == NULL) {
        return kIOReturnBadArgument;
    }
    if (session_gone(s)) {
        return kIOReturnNoDevice;
    }
    cd = s->cd;
    dev = cd->dev;
    out->fd = -1;
    if (type == kDextMemoryTypeDMABuffer) {
        return dext_dma_buffer_map(s, out);
    }
    if (type == kDextMemoryTypeInterruptPage) {
        if (s->core->contract_only) {
            return kIOReturnUnsupported;
        }
        return dext_irq_map_page(s, out);
    }
    if (type < kDextMemoryTypeBAR0 || type >= kDextMemoryTypeBAR0 + DEXT_NUM_BARS) {
        return kIOReturnBadArgument;
    }
    bar = (int)(type - kDextMemoryTypeBAR0);
    if (dev->bars[bar].size == 0) {
        return kIOReturnNotFound;
    }
    if (!dev->bars[bar].mappable || dev->ops->map_bar == NULL) {
        return kIOReturnUnsupported;
    }
    if (!dev->writable) {
        return kIOReturnNotPermitted;
    }
    core_mutex_lock(&cd->lock);
    /* Non-claimers reach a BAR only through the claimer's cached mapping. */
    if (!s->claimed && !cd->bar_cached[bar]) {
        core_mutex_unlock(&cd->lock);
        return kIOReturnNotOpen;
    }
    ret = dev->ops->map_bar(dev, bar, out);
    if (ret == kIOReturnSuccess) {
        cd->bar_cached[bar] = true;
    }
    core_mutex_unlock(&cd->lock);
    if (ret == kIOReturnSuccess && out->writable && !session_may_write(s)) {
        ret = memory_make_read_only(cd, out);
    }
    return ret;
}
