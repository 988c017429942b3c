/*
 * SPDX-License-Identifier: MIT
 *
 * The dext core: services (the devices served), sessions (user clients)
 * and the shared claim.  The methods a session calls are methods.c's.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    dext_mutex_init(&core->lock);
    return core;
}

static void core_device_free(CoreDevice *cd)
{
    dext_device_free(cd->dev);
    dext_dma_device_destroy(cd);
    dext_rwlock_destroy(&cd->irq_lock);
    dext_rwlock_destroy(&cd->dma_lock);
    dext_mutex_destroy(&cd->lock);
    free(cd);
}

void dext_core_set_contract_only(DextCore *core, bool on)
{
    if (core != NULL) {
        core->contract_only = on;
    }
}

void dext_core_set_no_irq_page(DextCore *core, bool on)
{
    if (core != NULL) {
        core->no_irq_page = on;
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
    dext_mutex_destroy(&core->lock);
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
    if ((dev->class_code >> 16) == DEXT_PCI_CLASS_MULTIMEDIA) {
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
    cd->writable = !dev->hardware || dev->allow_writes;
    dext_mutex_init(&cd->lock);
    dext_rwlock_init(&cd->irq_lock);
    dext_rwlock_init(&cd->dma_lock);
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

IOReturn dext_core_allow_writes(DextCore *core, uint8_t bus, uint8_t dev,
                                uint8_t fn)
{
    CoreDevice *found = NULL;
    uint32_t i;

    if (core == NULL) {
        return kIOReturnBadArgument;
    }
    core_mutex_lock(&core->lock);
    for (i = 0; i < core->ndevices && found == NULL; i++) {
        CoreDevice *cd = core->devices[i];

        if (cd->dev->hardware && !core_device_gone(cd) &&
            cd->dev->bus == bus && cd->dev->dev == dev &&
            cd->dev->fn == fn) {
            found = cd;
        }
    }
    if (found != NULL) {
        core_mutex_lock(&found->lock);
        __atomic_store_n(&found->writable, true, __ATOMIC_RELEASE);
        core_mutex_unlock(&found->lock);
    }
    core_mutex_unlock(&core->lock);
    if (found == NULL) {
        return kIOReturnNotFound;
    }
    dext_core_logf(core, DEXT_LOG_WARNING, "%s: writes allowed: clients may "
                   "change its config space and registers and reset it",
                   found->dev->name);
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
    st->iommu_faults = __atomic_load_n(&core->iommu_faults, __ATOMIC_RELAXED);
    st->irqs_raised = __atomic_load_n(&core->irqs_raised, __ATOMIC_ACQUIRE);
    st->irqs_dropped = __atomic_load_n(&core->irqs_dropped, __ATOMIC_RELAXED);
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

/* ------------------------------------------------------------------ */
/* The shared claim                                                     */

IOReturn dext_core_claim(DextSession *s)
{
    CoreDevice *cd = s->cd;
    IOReturn ret = kIOReturnSuccess;

    core_mutex_lock(&cd->lock);
    if (s->claimed) {
        goto out;
    }
    if (cd->claims == 0) {
        if (core_device_writable(cd)) {
            uint32_t cmd = 0;

            if (cd->dev->ops->open) {
                ret = cd->dev->ops->open(cd->dev);
                if (ret != kIOReturnSuccess) {
                    goto out;
                }
            }

            /*
             * Opening the IOPCIDevice turns on memory decode and mastering;
             * mastering only where the device's DMA can be served at all.
             */
            ret = dext_config_read_raw(cd->dev, DEXT_PCI_COMMAND, 2, &cmd);
            if (ret == kIOReturnSuccess) {
                cmd |= DEXT_PCI_COMMAND_MEMORY |
                       (cd->dev->no_dma ? 0 : DEXT_PCI_COMMAND_MASTER);
                ret = dext_config_write_raw(cd->dev, DEXT_PCI_COMMAND, 2, cmd);
            }
            if (ret != kIOReturnSuccess) {
                /* No claim after all: undo the open, or the next first
                 * claim opens an opened device. */
                if (cd->dev->ops->close) {
                    cd->dev->ops->close(cd->dev);
                }
                goto out;
            }
            /* Closed on the last release whatever the write policy is
             * by then: every open gets its close. */
            cd->opened = true;
        }
        dext_core_logf(s->core, DEXT_LOG_DEBUG, "%s: opened (first claim)",
                       cd->dev->name);
    }
    __atomic_add_fetch(&cd->claims, 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&s->claimed, true, __ATOMIC_RELEASE);
    s->next_claimer = cd->claimers;
    cd->claimers = s;
    dext_core_logf(s->core, DEXT_LOG_DEBUG, "%s: claimed by pid %d",
                   cd->dev->name, (int)s->mem->pid);
out:
    core_mutex_unlock(&cd->lock);
    return ret;
}

/* Release the claim share of @s; the last one closes the device. */
static void claim_release(DextSession *s)
{
    CoreDevice *cd = s->cd;

    core_mutex_lock(&cd->lock);
    if (s->claimed) {
        DextSession **pp;

        for (pp = &cd->claimers; *pp != NULL; pp = &(*pp)->next_claimer) {
            if (*pp == s) {
                *pp = s->next_claimer;
                break;
            }
        }
        __atomic_store_n(&s->claimed, false, __ATOMIC_RELEASE);
        if (__atomic_sub_fetch(&cd->claims, 1, __ATOMIC_ACQ_REL) == 0) {
            memset(cd->bar_cached, 0, sizeof(cd->bar_cached));
            if (cd->opened && cd->dev->ops->close && !cd->terminated) {
                cd->dev->ops->close(cd->dev);
            }
            cd->opened = false;
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
