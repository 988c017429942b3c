/*
 * SPDX-License-Identifier: MIT
 *
 * The user client's methods: one table describes every selector (its
 * scalar counts and its policy flags), dext_session_call() checks a call
 * against its row once, and only then runs the selector's handler, which
 * does the method's own work.  Memory mapping (IOConnectMapMemory64)
 * lives here too, under the same access model.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core-internal.h"
#include "protocol/dext-wire.h"

/*
 * Policy flags, checked by check_policy() in this order (after the
 * scalar counts, and with a terminated device answering
 * kIOReturnNoDevice after M_EXTENSION) before the handler runs; the
 * first that fails answers the call.  M_STRUCT_OUT is not a check.
 */
enum {
    /* kIOReturnUnsupported in contract-only mode: a libdext extension. */
    M_EXTENSION = 1 << 0,
    /* kIOReturnNotOpen without a claim, under every policy. */
    M_CLAIM = 1 << 1,
    /* kIOReturnNotOpen without a claim, unless the core's policy lets
     * sessions without one change the device (UNCLAIMED_WRITES). */
    M_WRITE = 1 << 2,
    /* kIOReturnNotPermitted on a device clients may not change (real
     * hardware the operator did not allow writes to).  MMIO reads count:
     * reading a register can have effects. */
    M_WRITABLE = 1 << 3,
    /* kIOReturnUnsupported when the backend cannot let the device reach
     * client memory. */
    M_DMA = 1 << 4,
    /* kIOReturnUnsupported when the backend cannot deliver interrupts. */
    M_IRQ = 1 << 5,
    /* The method answers with struct output too (else its size is 0). */
    M_STRUCT_OUT = 1 << 6,
};

/*
 * A method's work, once its row's checks passed: @in holds at least the
 * row's scalar inputs; on success the row's count of scalar outputs is
 * taken from @out (room for DEXT_MAX_SCALARS, the row's count of them
 * zeroed).
 */
typedef IOReturn MethodFn(DextSession *s, const uint64_t *in,
                          const DextCallArgs *a, uint64_t *out);

/* An async method's work: it completes through @wake_fd. */
typedef IOReturn AsyncMethodFn(DextSession *s, int wake_fd);

typedef struct MethodDesc {
    MethodFn *fn;           /* NULL for an async-only method */
    AsyncMethodFn *async;   /* dext_session_call_async() only */
    uint8_t in;             /* scalar inputs needed */
    uint8_t out;            /* scalar outputs, room needed for them */
    uint16_t flags;         /* M_* */
} MethodDesc;

/* ------------------------------------------------------------------ */
/* Handlers                                                             */

static IOReturn m_get_identity(DextSession *s, const uint64_t *in,
                               const DextCallArgs *a, uint64_t *out)
{
    DextDevice *dev = s->cd->dev;

    out[0] = dev->bus;
    out[1] = dev->dev;
    out[2] = dev->fn;
    out[3] = dev->vendor_id;
    out[4] = dev->device_id;
    out[5] = dev->class_code & 0xffffff;
    return kIOReturnSuccess;
}

static IOReturn m_claim(DextSession *s, const uint64_t *in,
                        const DextCallArgs *a, uint64_t *out)
{
    return dext_core_claim(s);
}

static IOReturn m_terminate(DextSession *s, const uint64_t *in,
                            const DextCallArgs *a, uint64_t *out)
{
    CoreDevice *cd = s->cd;

    core_mutex_lock(&cd->lock);
    /* Only a claimer got here: others' claims stand in the way. */
    if (!(s->core->policy & DEXT_POLICY_UNCLAIMED_WRITES) && cd->claims > 1) {
        core_mutex_unlock(&cd->lock);
        return kIOReturnBusy;
    }
    if (!cd->terminated) {
        __atomic_store_n(&cd->terminated, true, __ATOMIC_RELEASE);
        if (cd->dev->ops->terminate) {
            cd->dev->ops->terminate(cd->dev);
        }
        dext_core_logf(s->core, DEXT_LOG_INFO, "%s: terminated by a client",
                       cd->dev->name);
    }
    core_mutex_unlock(&cd->lock);
    return kIOReturnSuccess;
}

static IOReturn m_allocate_dma_buffer(DextSession *s, const uint64_t *in,
                                      const DextCallArgs *a, uint64_t *out)
{
    IOReturn ret = dext_dma_buffer_allocate(s, in[0], in[1], out);

    out[5] = s->cd->dev->class_code & 0xffffff;
    return ret;
}

static IOReturn m_free_dma_buffer(DextSession *s, const uint64_t *in,
                                  const DextCallArgs *a, uint64_t *out)
{
    dext_dma_buffer_free(s);
    return kIOReturnSuccess;
}

/*
 * Beside a registration, shared memory's fd, and scalar @nargs the
 * offset into it.  That scalar without an fd says "I have the file if
 * you need it": the caller asks again with it, so a refusal is not
 * logged.  Sets @fd; false for an fd without its offset.
 */
static bool dma_file(const DextCallArgs *a, uint32_t nargs, int *fd)
{
    *fd = a->in_fd ? *a->in_fd : -1;
    if (*fd >= 0 && a->scalar_in_cnt <= nargs) {
        return false;
    }
    if (*fd < 0 && a->scalar_in_cnt > nargs) {
        *fd = DEXT_DMA_FILE_LATER;
    }
    return true;
}

static IOReturn m_register_dma_region(DextSession *s, const uint64_t *in,
                                      const DextCallArgs *a, uint64_t *out)
{
    int fd;

    if (!dma_file(a, 3, &fd)) {
        return kIOReturnBadArgument;
    }
    return dext_dma_register(s, in[0], in[1], in[2], fd,
                             fd >= 0 ? in[3] : 0, out);
}

/* As RegisterDMARegion, the bus address in in[3], the fd offset in[4]. */
static IOReturn m_register_dma_region_at(DextSession *s, const uint64_t *in,
                                         const DextCallArgs *a, uint64_t *out)
{
    int fd;

    if (!dma_file(a, 4, &fd)) {
        return kIOReturnBadArgument;
    }
    return dext_dma_register_at(s, in[0], in[1], in[2], in[3], fd,
                                fd >= 0 ? in[4] : 0, out);
}

static IOReturn m_unregister_dma_region(DextSession *s, const uint64_t *in,
                                        const DextCallArgs *a, uint64_t *out)
{
    return dext_dma_unregister(s, in[0]);
}

static IOReturn m_probe_dma_region(DextSession *s, const uint64_t *in,
                                   const DextCallArgs *a, uint64_t *out)
{
    return dext_dma_probe(s, in[0], in[1], &out[0]);
}

static IOReturn m_config_read(DextSession *s, const uint64_t *in,
                              const DextCallArgs *a, uint64_t *out)
{
    DextDevice *dev = s->cd->dev;
    uint32_t val = 0;
    IOReturn ret;

    if (!dext_config_access_ok(dev, in[0], in[1])) {
        return kIOReturnBadArgument;
    }
    ret = dext_config_read(dev, (uint32_t)in[0], (uint32_t)in[1], &val);
    out[0] = val;
    return ret;
}

static IOReturn m_config_write(DextSession *s, const uint64_t *in,
                               const DextCallArgs *a, uint64_t *out)
{
    DextDevice *dev = s->cd->dev;
    uint32_t val = (uint32_t)in[2];

    if (!dext_config_access_ok(dev, in[0], in[1])) {
        return kIOReturnBadArgument;
    }
    if (in[1] < 4) {
        val &= (1u << (8 * in[1])) - 1;
    }
    return dext_config_write_raw(dev, (uint32_t)in[0], (uint32_t)in[1], val);
}

static IOReturn m_get_bar_info(DextSession *s, const uint64_t *in,
                               const DextCallArgs *a, uint64_t *out)
{
    CoreDevice *cd = s->cd;
    const DextBar *b;

    if (in[0] >= DEXT_NUM_BARS) {
        return kIOReturnBadArgument;
    }
    b = &cd->dev->bars[in[0]];
    if (b->size == 0) {
        return kIOReturnNotFound;
    }
    out[0] = (uint64_t)cd->bar_mem_index[in[0]];
    out[1] = b->size;
    out[2] = b->type;
    return kIOReturnSuccess;
}

/*
 * The BAR of memoryIndex @in[0] if [@in[1], + @in[2]) is a well-formed
 * access inside it, the device is open (some session holds a claim) and
 * the backend has the hook (@hook).
 */
static IOReturn mmio_check(CoreDevice *cd, const uint64_t *in, bool hook,
                           int *bar)
{
    uint64_t mem_idx = in[0], off = in[1], width = in[2];
    uint64_t size;

    if (width != 1 && width != 2 && width != 4 && width != 8) {
        return kIOReturnBadArgument;
    }
    if (mem_idx >= DEXT_NUM_BARS || cd->mem_index_bar[mem_idx] < 0) {
        return kIOReturnBadArgument;
    }
    *bar = cd->mem_index_bar[mem_idx];
    size = cd->dev->bars[*bar].size;
    if (off >= size || width > size - off || (off & (width - 1)) != 0) {
        return kIOReturnBadArgument;
    }
    if (__atomic_load_n(&cd->claims, __ATOMIC_ACQUIRE) == 0) {
        return kIOReturnNotOpen;
    }
    return hook ? kIOReturnSuccess : kIOReturnUnsupported;
}

static IOReturn m_mmio_read(DextSession *s, const uint64_t *in,
                            const DextCallArgs *a, uint64_t *out)
{
    DextDevice *dev = s->cd->dev;
    int bar;
    IOReturn ret = mmio_check(s->cd, in, dev->ops->mmio_read != NULL, &bar);

    if (ret != kIOReturnSuccess) {
        return ret;
    }
    return dev->ops->mmio_read(dev, bar, in[1], (uint32_t)in[2], &out[0]);
}

static IOReturn m_mmio_write(DextSession *s, const uint64_t *in,
                             const DextCallArgs *a, uint64_t *out)
{
    DextDevice *dev = s->cd->dev;
    int bar;
    IOReturn ret = mmio_check(s->cd, in, dev->ops->mmio_write != NULL, &bar);

    if (ret != kIOReturnSuccess) {
        return ret;
    }
    return dev->ops->mmio_write(dev, bar, in[1], (uint32_t)in[2], in[3]);
}

static IOReturn m_setup_interrupts(DextSession *s, const uint64_t *in,
                                   const DextCallArgs *a, uint64_t *out)
{
    return dext_irq_setup(s, &out[0]);
}

static IOReturn m_check_interrupt(DextSession *s, const uint64_t *in,
                                  const DextCallArgs *a, uint64_t *out)
{
    return dext_irq_check(s, out);
}

static IOReturn m_set_irq_mask(DextSession *s, const uint64_t *in,
                               const DextCallArgs *a, uint64_t *out)
{
    return dext_irq_set_mask(s, in);
}

static IOReturn m_reset_device(DextSession *s, const uint64_t *in,
                               const DextCallArgs *a, uint64_t *out)
{
    CoreDevice *cd = s->cd;
    DextDevice *dev = cd->dev;
    DextConfigSave save;
    IOReturn ret;

    uint32_t kind = DEXT_RESET_FUNCTION;

    if (dev->ops->reset_function == NULL && dev->ops->reset_bus == NULL) {
        return kIOReturnUnsupported;
    }
    /* Under the lock: a claim or interrupt setup must not interleave. */
    core_mutex_lock(&cd->lock);
    dext_config_save(dev, &save);
    ret = dev->ops->reset_function ? dev->ops->reset_function(dev)
                                   : kIOReturnUnsupported;
    /* The contract's fallback: no function-level reset, a hot reset. */
    if (ret == kIOReturnUnsupported && dev->ops->reset_bus) {
        kind = DEXT_RESET_HOT;
        ret = dev->ops->reset_bus(dev);
    }
    if (ret == kIOReturnSuccess) {
        dext_config_restore(dev, &save);
        dext_irq_restore_config(cd, &save);
        cd->last_reset = kind;
    }
    core_mutex_unlock(&cd->lock);
    return ret;
}

/* Which reset ran, as dextctl reset reports it. */
static IOReturn m_get_last_reset(DextSession *s, const uint64_t *in,
                                 const DextCallArgs *a, uint64_t *out)
{
    CoreDevice *cd = s->cd;

    core_mutex_lock(&cd->lock);
    out[0] = cd->last_reset;
    core_mutex_unlock(&cd->lock);
    return kIOReturnSuccess;
}

static IOReturn m_config_read_block(DextSession *s, const uint64_t *in,
                                    const DextCallArgs *a, uint64_t *out)
{
    DextDevice *dev = s->cd->dev;
    IOReturn ret;

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
}

static IOReturn m_config_write_block(DextSession *s, const uint64_t *in,
                                     const DextCallArgs *a, uint64_t *out)
{
    DextDevice *dev = s->cd->dev;

    if (in[0] > dev->config_size ||
        a->struct_in_size > dev->config_size - in[0]) {
        return kIOReturnBadArgument;
    }
    return dext_config_write_block(dev, (uint32_t)in[0], a->struct_in,
                                   (uint32_t)a->struct_in_size);
}

static IOReturn m_get_device_status(DextSession *s, const uint64_t *in,
                                    const DextCallArgs *a, uint64_t *out)
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

/* Who holds the claim: for an operator's status, not for policy. */
static IOReturn m_get_claimers(DextSession *s, const uint64_t *in,
                               const DextCallArgs *a, uint64_t *out)
{
    CoreDevice *cd = s->cd;
    uint8_t *dst = a->struct_out;
    size_t room = dst != NULL && a->struct_out_size != NULL ?
                  *a->struct_out_size / 4 : 0;
    size_t n = 1;
    DextSession *c;

    if (room == 0) {
        return kIOReturnBadArgument;
    }
    core_mutex_lock(&cd->lock);
    dext_wire_put_u32(dst, cd->claims);
    for (c = cd->claimers; c != NULL && n < room; c = c->next_claimer, n++) {
        dext_wire_put_u32(dst + 4 * n, (uint32_t)c->mem->pid);
    }
    core_mutex_unlock(&cd->lock);
    *a->struct_out_size = 4 * n;
    return kIOReturnSuccess;
}

/* ------------------------------------------------------------------ */
/* The method table                                                     */

/*
 * Columns: handler, async handler, scalars in, scalars out, policy
 * flags.  tests/unit/test-core-policy.c holds its own copy of the
 * contract to check these rows against.
 */
static const MethodDesc contract_methods[kDextSelectorContractCount] = {
    [kDextSelectorGetIdentity] = { m_get_identity, NULL, 0, 6, 0 },
    [kDextSelectorClaim] = { m_claim, NULL, 0, 0, 0 },
    [kDextSelectorTerminate] = { m_terminate, NULL, 0, 0, M_WRITE },
    [kDextSelectorAllocateDMABuffer] = {
        m_allocate_dma_buffer, NULL, 2, 6, M_CLAIM | M_WRITABLE | M_DMA },
    [kDextSelectorFreeDMABuffer] = { m_free_dma_buffer, NULL, 0, 0, 0 },
    [kDextSelectorRegisterDMARegion] = {
        m_register_dma_region, NULL, 3, 3, M_CLAIM | M_WRITABLE | M_DMA },
    [kDextSelectorUnregisterDMARegion] = {
        m_unregister_dma_region, NULL, 1, 0, 0 },
    [kDextSelectorProbeDMARegion] = { m_probe_dma_region, NULL, 2, 1, 0 },
    [kDextSelectorConfigRead] = { m_config_read, NULL, 2, 1, 0 },
    [kDextSelectorConfigWrite] = {
        m_config_write, NULL, 3, 0, M_WRITE | M_WRITABLE },
    [kDextSelectorGetBARInfo] = { m_get_bar_info, NULL, 1, 3, 0 },
    [kDextSelectorMMIORead] = { m_mmio_read, NULL, 3, 1, M_WRITABLE },
    [kDextSelectorMMIOWrite] = {
        m_mmio_write, NULL, 4, 0, M_WRITE | M_WRITABLE },
    [kDextSelectorSetupInterrupts] = {
        m_setup_interrupts, NULL, 0, 1, M_CLAIM | M_WRITABLE | M_IRQ },
    [kDextSelectorCheckInterrupt] = { m_check_interrupt, NULL, 0, 4, 0 },
    [kDextSelectorWaitInterrupt] = { NULL, dext_irq_wait, 0, 0, 0 },
    [kDextSelectorSetIRQMask] = { m_set_irq_mask, NULL, 4, 0, 0 },
    [kDextSelectorResetDevice] = {
        m_reset_device, NULL, 0, 0, M_CLAIM | M_WRITABLE },
};

#define EXT(sel) ((sel) - kDextSelectorExtensionBase)

static const MethodDesc extension_methods[] = {
    [EXT(kDextSelectorConfigReadBlock)] = {
        m_config_read_block, NULL, 3, 0, M_EXTENSION | M_STRUCT_OUT },
    [EXT(kDextSelectorConfigWriteBlock)] = {
        m_config_write_block, NULL, 1, 0,
        M_EXTENSION | M_WRITE | M_WRITABLE },
    [EXT(kDextSelectorGetDeviceStatus)] = {
        m_get_device_status, NULL, 0, 6, M_EXTENSION },
    [EXT(kDextSelectorGetClaimers)] = {
        m_get_claimers, NULL, 0, 0, M_EXTENSION | M_STRUCT_OUT },
    [EXT(kDextSelectorGetLastReset)] = {
        m_get_last_reset, NULL, 0, 1, M_EXTENSION },
    [EXT(kDextSelectorRegisterDMARegionAt)] = {
        m_register_dma_region_at, NULL, 4, 3,
        M_EXTENSION | M_CLAIM | M_WRITABLE | M_DMA },
};

_Static_assert(sizeof(extension_methods) / sizeof(extension_methods[0]) ==
               EXT(kDextSelectorExtensionEnd),
               "every extension selector has a row");

static const MethodDesc *method_desc(uint32_t selector)
{
    if (selector < kDextSelectorContractCount) {
        return &contract_methods[selector];
    }
    if (selector >= kDextSelectorExtensionBase &&
        selector < kDextSelectorExtensionEnd) {
        return &extension_methods[EXT(selector)];
    }
    return NULL;
}

/*
 * The call's shape against the row of @selector: kIOReturnUnsupported
 * for an unknown selector, kIOReturnBadArgument for too few scalars, too
 * little room for the outputs, or counts and pointers that disagree.
 */
static IOReturn check_args(uint32_t selector, const DextCallArgs *a,
                           const MethodDesc **out)
{
    const MethodDesc *m = method_desc(selector);
    uint32_t room;

    if (m == NULL) {
        return kIOReturnUnsupported;
    }
    room = a->scalar_out_cnt ? *a->scalar_out_cnt : 0;
    if (a->scalar_in_cnt < m->in || room < m->out ||
        a->scalar_in_cnt > DEXT_MAX_SCALARS ||
        (a->scalar_in_cnt > 0 && a->scalar_in == NULL) ||
        (room > 0 && a->scalar_out == NULL) ||
        (a->struct_in_size > 0 && a->struct_in == NULL) ||
        a->struct_in_size > DEXT_MAX_STRUCT) {
        return kIOReturnBadArgument;
    }
    *out = m;
    return kIOReturnSuccess;
}

/* The row's policy flags, in order: the one place they are checked. */
static IOReturn check_policy(DextSession *s, const MethodDesc *m)
{
    CoreDevice *cd = s->cd;

    if ((m->flags & M_EXTENSION) && s->core->contract_only) {
        return kIOReturnUnsupported;
    }
    if (core_device_gone(cd)) {
        return kIOReturnNoDevice;
    }
    if ((m->flags & M_CLAIM) && !core_session_claimed(s)) {
        return kIOReturnNotOpen;
    }
    if ((m->flags & M_WRITE) && !core_session_may_write(s)) {
        return kIOReturnNotOpen;
    }
    if ((m->flags & M_WRITABLE) && !core_device_writable(cd)) {
        return kIOReturnNotPermitted;
    }
    if (((m->flags & M_DMA) && cd->dev->no_dma) ||
        ((m->flags & M_IRQ) && cd->dev->no_irq)) {
        return kIOReturnUnsupported;
    }
    return kIOReturnSuccess;
}

IOReturn dext_session_call(DextSession *s, uint32_t selector,
                           const DextCallArgs *args)
{
    /*
     * Only the row's outputs are zeroed and copied: a call returns one
     * or a few, and clearing or copying the whole array (rep stos/movs)
     * cost a polled call ~15 ns of start-up.
     */
    uint64_t out[DEXT_MAX_SCALARS];
    const MethodDesc *m = NULL;
    uint32_t nout = 0;
    IOReturn ret;
    uint32_t i;

    if (s == NULL || args == NULL) {
        return kIOReturnBadArgument;
    }
    ret = check_args(selector, args, &m);
    if (ret == kIOReturnSuccess) {
        ret = check_policy(s, m);
    }
    if (ret == kIOReturnSuccess) {
        /* Fixed-size: a loop becomes the rep stos again. */
        memset(out, 0, 8 * sizeof(out[0]));
        if (m->out > 8) {
            memset(out + 8, 0, (m->out - 8u) * sizeof(out[0]));
        }
        /* An async-only method has nothing to wake when called so. */
        ret = m->fn ? m->fn(s, args->scalar_in, args, out)
                    : kIOReturnBadArgument;
    }
    if (ret == kIOReturnSuccess) {
        nout = m->out;
    }
    if (args->struct_out_size &&
        (ret != kIOReturnSuccess || !(m->flags & M_STRUCT_OUT))) {
        *args->struct_out_size = 0;
    }
    if (args->scalar_out_cnt) {
        for (i = 0; i < nout; i++) {
            args->scalar_out[i] = out[i];
        }
        *args->scalar_out_cnt = nout;
    }
    return ret;
}

IOReturn dext_session_call_async(DextSession *s, uint32_t selector,
                                 int wake_fd, const DextCallArgs *args)
{
    const MethodDesc *m;
    IOReturn ret;

    if (s == NULL || args == NULL || wake_fd < 0) {
        return kIOReturnBadArgument;
    }
    /* An async call answers through the wake port only. */
    if (args->scalar_out_cnt) {
        *args->scalar_out_cnt = 0;
    }
    if (args->struct_out_size) {
        *args->struct_out_size = 0;
    }
    ret = check_args(selector, args, &m);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (core_device_gone(s->cd)) {
        return kIOReturnNoDevice;
    }
    if (m->async == NULL) {
        return kIOReturnBadArgument;
    }
    ret = check_policy(s, m);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    return m->async(s, wake_fd);
}

/* ------------------------------------------------------------------ */
/* Memory mapping                                                       */

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

static IOReturn map_bar(DextSession *s, int bar, DextMemory *out)
{
    CoreDevice *cd = s->cd;
    DextDevice *dev = cd->dev;
    IOReturn ret;

    if (dev->bars[bar].size == 0) {
        return kIOReturnNotFound;
    }
    if (!dev->bars[bar].mappable || dev->ops->map_bar == NULL ||
        (dev->bars[bar].local_only && !s->mem->self)) {
        return kIOReturnUnsupported;
    }
    if (!core_device_writable(cd)) {
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
        out->local_only = dev->bars[bar].local_only;
    }
    core_mutex_unlock(&cd->lock);
    if (ret == kIOReturnSuccess && out->writable &&
        !core_session_may_write(s)) {
        ret = memory_make_read_only(cd, out);
    }
    return ret;
}

IOReturn dext_session_map(DextSession *s, uint32_t type, DextMemory *out)
{
    if (s == NULL || out == NULL) {
        return kIOReturnBadArgument;
    }
    if (core_device_gone(s->cd)) {
        return kIOReturnNoDevice;
    }
    out->fd = -1;
    out->local_only = false;
    if (type == kDextMemoryTypeDMABuffer) {
        return dext_dma_buffer_map(s, out);
    }
    if (type == kDextMemoryTypeInterruptPage) {
        IOReturn ret = dext_irq_map_page(s, out);

        /* NotReady before SetupInterrupts whether shared or not. */
        if (ret == kIOReturnSuccess && s->core->no_irq_page) {
            close(out->fd);
            out->fd = -1;
            return kIOReturnUnsupported;
        }
        return ret;
    }
    if (type < kDextMemoryTypeBAR0 ||
        type >= kDextMemoryTypeBAR0 + DEXT_NUM_BARS) {
        return kIOReturnBadArgument;
    }
    return map_bar(s, (int)(type - kDextMemoryTypeBAR0), out);
}
