/*
 * SPDX-License-Identifier: MIT
 *
 * The apple_dext_* method wrappers: argument checks, the call, output
 * decoding.  The same code serves every transport.
 */

#include <string.h>

#include "client/client-internal.h"
#include "support/width.h"

#define APPLE_DEXT_BAR_PREFETCHABLE_MASK 0x08
#define CONFIG_SPACE_MAX 4096u

/*
 * Run @expr with @c entered on @connection; bad handle -> BadArgument, a
 * parent's connection in a forked child -> NotPermitted.
 */
#define WITH_CONN(connection, c, expr)                     \
    do {                                                   \
        IOReturn ret_;                                     \
        DextConnection *c = dext_conn_enter(connection, &ret_); \
        if (c == NULL) {                                   \
            return ret_;                                   \
        }                                                  \
        ret_ = (expr);                                     \
        dext_conn_leave(c);                                     \
        return ret_;                                       \
    } while (0)

static IOReturn call_noargs(io_connect_t connection, uint32_t selector)
{
    WITH_CONN(connection, c, dext_conn_call(c, selector, NULL, 0, NULL, 0, 0));
}

kern_return_t apple_dext_claim(io_connect_t connection)
{
    return call_noargs(connection, kDextSelectorClaim);
}

kern_return_t apple_dext_terminate(io_connect_t connection)
{
    return call_noargs(connection, kDextSelectorTerminate);
}

kern_return_t apple_dext_reset_device(io_connect_t connection)
{
    return call_noargs(connection, kDextSelectorResetDevice);
}

kern_return_t apple_dext_free_dma_buffer(io_connect_t connection)
{
    return call_noargs(connection, kDextSelectorFreeDMABuffer);
}

/* ------------------------------------------------------------------ */
/* DMA                                                                  */

static IOReturn register_dma(DextConnection *c, uint64_t iova,
                             uint64_t client_va, uint64_t size,
                             uint64_t *out_bus_addr, uint64_t *out_bus_len)
{
    uint64_t in[3] = { iova, client_va, size };
    uint64_t out[3] = { 0 };
    IOReturn ret;

    ret = dext_conn_call(c, kDextSelectorRegisterDMARegion, in, 3, out, 3, 3);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (out_bus_addr) {
        *out_bus_addr = out[1];
    }
    if (out_bus_len) {
        *out_bus_len = out[2];
    }
    return kIOReturnSuccess;
}

kern_return_t apple_dext_register_dma(io_connect_t connection, uint64_t iova,
                                      uint64_t client_va, uint64_t size,
                                      uint64_t *out_bus_addr,
                                      uint64_t *out_bus_len)
{
    WITH_CONN(connection, c, register_dma(c, iova, client_va, size,
                                          out_bus_addr, out_bus_len));
}

static IOReturn register_dma_at(DextConnection *c, uint64_t iova,
                                uint64_t client_va, uint64_t size,
                                uint64_t bus_addr)
{
    uint64_t in[4] = { iova, client_va, size, bus_addr };
    uint64_t out[3] = { 0 };
    IOReturn ret;

    ret = dext_conn_call(c, kDextSelectorRegisterDMARegionAt, in, 4, out, 3,
                         3);
    if (ret == kIOReturnSuccess && out[1] != bus_addr) {
        /* A dext must not answer another address: give it back. */
        uint64_t key[1] = { iova };

        dext_conn_call(c, kDextSelectorUnregisterDMARegion, key, 1, NULL, 0,
                       0);
        return kIOReturnInternalError;
    }
    return ret;
}

kern_return_t apple_dext_register_dma_at(io_connect_t connection,
                                         uint64_t iova, uint64_t client_va,
                                         uint64_t size, uint64_t bus_addr)
{
    WITH_CONN(connection, c, register_dma_at(c, iova, client_va, size,
                                             bus_addr));
}

kern_return_t apple_dext_unregister_dma(io_connect_t connection, uint64_t iova)
{
    uint64_t in[1] = { iova };

    WITH_CONN(connection, c,
              dext_conn_call(c, kDextSelectorUnregisterDMARegion, in, 1, NULL,
                             0, 0));
}

kern_return_t apple_dext_probe_dma(io_connect_t connection, uint64_t iova,
                                   uint64_t offset, uint64_t *out_word)
{
    uint64_t in[2] = { iova, offset };

    if (out_word == NULL) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c,
              dext_conn_call(c, kDextSelectorProbeDMARegion, in, 2, out_word,
                             1, 1));
}

static IOReturn allocate_dma_buffer(DextConnection *c, uint64_t size,
                                    uint64_t alignment, AppleDextDMABuffer *out)
{
    uint64_t in[2] = { size, alignment };
    uint64_t o[6] = { 0 };
    IOReturn ret;

    ret = dext_conn_call(c, kDextSelectorAllocateDMABuffer, in, 2, o, 6, 6);
    if (ret == kIOReturnSuccess && out) {
        out->size = o[0];
        out->dma_flags = o[1];
        out->segment_count = o[2];
        out->bus_addr = o[3];
        out->bus_len = o[4];
        out->class_code = (uint32_t)o[5];
    }
    return ret;
}

kern_return_t apple_dext_allocate_dma_buffer(io_connect_t connection,
                                             uint64_t size, uint64_t alignment,
                                             AppleDextDMABuffer *out)
{
    WITH_CONN(connection, c, allocate_dma_buffer(c, size, alignment, out));
}

kern_return_t apple_dext_map_dma_buffer(io_connect_t connection,
                                        mach_vm_address_t *out_addr,
                                        mach_vm_size_t *out_size)
{
    if (out_addr == NULL || out_size == NULL) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c,
              c->t->ops->map(c->t, kDextMemoryTypeDMABuffer, 0, out_addr,
                             out_size));
}

kern_return_t apple_dext_unmap_dma_buffer(io_connect_t connection,
                                          mach_vm_address_t addr)
{
    if (addr == 0) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c,
              c->t->ops->unmap(c->t, kDextMemoryTypeDMABuffer, addr));
}

/* ------------------------------------------------------------------ */
/* Config space                                                         */

kern_return_t apple_dext_config_read(io_connect_t connection, uint64_t offset,
                                     uint64_t width, uint64_t *out_value)
{
    uint64_t in[2] = { offset, width };

    if (out_value == NULL) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c,
              dext_conn_call(c, kDextSelectorConfigRead, in, 2, out_value, 1,
                             1));
}

kern_return_t apple_dext_config_write(io_connect_t connection, uint64_t offset,
                                      uint64_t width, uint64_t value)
{
    uint64_t in[3] = { offset, width, value };

    WITH_CONN(connection, c,
              dext_conn_call(c, kDextSelectorConfigWrite, in, 3, NULL, 0, 0));
}

/* The seed's path for dexts without block access: one call per access. */
static IOReturn config_read_each(DextConnection *c, uint64_t off, uint8_t *dst,
                                 size_t len)
{
    while (len > 0) {
        uint32_t w = dext_access_width(off, len, 4);
        uint64_t in[2] = { off, w }, val = 0;
        IOReturn ret;

        ret = dext_conn_call(c, kDextSelectorConfigRead, in, 2, &val, 1, 1);
        if (ret != kIOReturnSuccess) {
            return ret;
        }
        for (uint32_t i = 0; i < w; i++) {
            dst[i] = (uint8_t)(val >> (8 * i));
        }
        dst += w;
        off += w;
        len -= w;
    }
    return kIOReturnSuccess;
}

static IOReturn config_write_each(DextConnection *c, uint64_t off,
                                  const uint8_t *src, size_t len)
{
    while (len > 0) {
        uint32_t w = dext_access_width(off, len, 4);
        uint64_t in[3] = { off, w, 0 };
        IOReturn ret;

        for (uint32_t i = 0; i < w; i++) {
            in[2] |= (uint64_t)src[i] << (8 * i);
        }
        ret = dext_conn_call(c, kDextSelectorConfigWrite, in, 3, NULL, 0, 0);
        if (ret != kIOReturnSuccess) {
            return ret;
        }
        src += w;
        off += w;
        len -= w;
    }
    return kIOReturnSuccess;
}

/* Block read in one call; kIOReturnUnsupported if the dext lacks it. */
static IOReturn config_read_block_call(DextConnection *c, uint64_t off,
                                       uint8_t *dst, size_t len, uint64_t flags)
{
    uint64_t in[3] = { off, len, flags };
    size_t got = len;
    IOReturn ret;

    ret = dext_conn_call_struct(c, kDextSelectorConfigReadBlock, in, 3, NULL, 0,
                                dst, &got);
    if (ret == kIOReturnSuccess && got != len) {
        return kIOReturnIPCError;
    }
    return ret;
}

static IOReturn config_read_block(DextConnection *c, uint64_t off, void *buf,
                                  size_t len, bool raw)
{
    IOReturn ret = kIOReturnUnsupported;

    if (len == 0) {
        return kIOReturnSuccess;
    }
    if (__atomic_load_n(&c->block_config, __ATOMIC_SEQ_CST) != 0) {
        ret = config_read_block_call(c, off, buf, len,
                                     raw ? DEXT_CONFIG_BLOCK_RAW : 0);
        if (ret != kIOReturnUnsupported) {
            __atomic_store_n(&c->block_config, 1, __ATOMIC_SEQ_CST);
            return ret;
        }
        __atomic_store_n(&c->block_config, 0, __ATOMIC_SEQ_CST);
    }
    if (raw) {
        return kIOReturnUnsupported;
    }
    return config_read_each(c, off, buf, len);
}

static bool block_args_ok(uint64_t offset, const void *buf, size_t len)
{
    return buf != NULL && offset <= CONFIG_SPACE_MAX &&
           len <= CONFIG_SPACE_MAX - offset;
}

kern_return_t apple_dext_config_read_block(io_connect_t connection,
                                           uint64_t offset, void *buf,
                                           size_t len)
{
    if (!block_args_ok(offset, buf, len)) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c, config_read_block(c, offset, buf, len, false));
}

kern_return_t apple_dext_config_read_raw(io_connect_t connection,
                                         uint64_t offset, void *buf, size_t len)
{
    if (!block_args_ok(offset, buf, len)) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c, config_read_block(c, offset, buf, len, true));
}

static IOReturn config_write_block(DextConnection *c, uint64_t off,
                                   const void *buf, size_t len)
{
    uint64_t in[1] = { off };
    IOReturn ret;

    if (len == 0) {
        return kIOReturnSuccess;
    }
    if (__atomic_load_n(&c->block_config, __ATOMIC_SEQ_CST) != 0) {
        ret = dext_conn_call_struct(c, kDextSelectorConfigWriteBlock, in, 1,
                                    buf,
                                    len, NULL, NULL);
        if (ret != kIOReturnUnsupported) {
            __atomic_store_n(&c->block_config, 1, __ATOMIC_SEQ_CST);
            return ret;
        }
        __atomic_store_n(&c->block_config, 0, __ATOMIC_SEQ_CST);
    }
    return config_write_each(c, off, buf, len);
}

kern_return_t apple_dext_config_write_block(io_connect_t connection,
                                            uint64_t offset, const void *buf,
                                            size_t len)
{
    if (!block_args_ok(offset, buf, len)) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c, config_write_block(c, offset, buf, len));
}

/* ------------------------------------------------------------------ */
/* BARs and MMIO                                                        */

static IOReturn get_bar_info(DextConnection *c, uint8_t bar,
                             uint8_t *out_mem_idx, uint64_t *out_size,
                             uint8_t *out_type)
{
    uint64_t in[1] = { bar };
    uint64_t out[3] = { 0 };
    IOReturn ret;

    ret = dext_conn_call(c, kDextSelectorGetBARInfo, in, 1, out, 3, 3);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (out_mem_idx) {
        *out_mem_idx = (uint8_t)out[0];
    }
    if (out_size) {
        *out_size = out[1];
    }
    if (out_type) {
        *out_type = (uint8_t)out[2];
    }
    return kIOReturnSuccess;
}

kern_return_t apple_dext_get_bar_info(io_connect_t connection, uint8_t bar,
                                      uint8_t *out_mem_idx, uint64_t *out_size,
                                      uint8_t *out_type)
{
    WITH_CONN(connection, c,
              get_bar_info(c, bar, out_mem_idx, out_size, out_type));
}

static IOReturn map_bar(DextConnection *c, uint8_t bar,
                        mach_vm_address_t *out_addr, mach_vm_size_t *out_size,
                        uint8_t *out_type)
{
    uint32_t opts = 0;
    uint8_t type = 0;
    IOReturn ret;

    ret = get_bar_info(c, bar, NULL, NULL, &type);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    /* Memory type is 1 + BAR index, not GetBARInfo's memoryIndex. */
    if (type & APPLE_DEXT_BAR_PREFETCHABLE_MASK) {
        opts |= DEXT_MAP_WRITE_COMBINE;
    }
    ret = c->t->ops->map(c->t, kDextMemoryTypeBAR0 + bar, opts, out_addr,
                         out_size);
    if (ret == kIOReturnSuccess && out_type) {
        *out_type = type;
    }
    return ret;
}

kern_return_t apple_dext_map_bar(io_connect_t connection, uint8_t bar,
                                 mach_vm_address_t *out_addr,
                                 mach_vm_size_t *out_size, uint8_t *out_type)
{
    if (out_addr == NULL || out_size == NULL) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c, map_bar(c, bar, out_addr, out_size, out_type));
}

static IOReturn map_bar_fd(DextConnection *c, uint8_t bar, int *out_fd,
                           uint64_t *out_offset, uint64_t *out_size,
                           bool *out_writable)
{
    DextMemory mem = { .fd = -1 };
    IOReturn ret;

    ret = get_bar_info(c, bar, NULL, NULL, NULL);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (c->t->ops->map_fd == NULL) {
        return kIOReturnUnsupported;
    }
    ret = c->t->ops->map_fd(c->t, kDextMemoryTypeBAR0 + bar, 0, &mem);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    *out_fd = mem.fd;
    *out_offset = mem.offset;
    *out_size = mem.size;
    if (out_writable) {
        *out_writable = mem.writable;
    }
    return kIOReturnSuccess;
}

kern_return_t apple_dext_map_bar_fd(io_connect_t connection, uint8_t bar,
                                    int *out_fd, uint64_t *out_offset,
                                    uint64_t *out_size, bool *out_writable)
{
    if (out_fd == NULL || out_offset == NULL || out_size == NULL) {
        return kIOReturnBadArgument;
    }
    *out_fd = -1;
    WITH_CONN(connection, c, map_bar_fd(c, bar, out_fd, out_offset, out_size,
                                        out_writable));
}

kern_return_t apple_dext_unmap_bar(io_connect_t connection, uint8_t bar,
                                   mach_vm_address_t addr)
{
    if (addr == 0 || bar > 5) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c,
              c->t->ops->unmap(c->t, kDextMemoryTypeBAR0 + bar, addr));
}

kern_return_t apple_dext_mmio_read(io_connect_t connection, uint8_t mem_idx,
                                   uint64_t offset, uint64_t width,
                                   uint64_t *out_value)
{
    uint64_t in[3] = { mem_idx, offset, width };

    if (out_value == NULL) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c,
              dext_conn_call(c, kDextSelectorMMIORead, in, 3, out_value, 1, 1));
}

kern_return_t apple_dext_mmio_write(io_connect_t connection, uint8_t mem_idx,
                                    uint64_t offset, uint64_t width,
                                    uint64_t value)
{
    uint64_t in[4] = { mem_idx, offset, width, value };

    WITH_CONN(connection, c,
              dext_conn_call(c, kDextSelectorMMIOWrite, in, 4, NULL, 0, 0));
}

/* ------------------------------------------------------------------ */
/* Interrupts                                                           */

static IOReturn setup_interrupts(DextConnection *c, uint32_t *out_num_vectors)
{
    uint64_t out[1] = { 0 };
    IOReturn ret;

    ret = dext_conn_call(c, kDextSelectorSetupInterrupts, NULL, 0, out, 1, 1);
    if (ret == kIOReturnSuccess && out_num_vectors) {
        *out_num_vectors = (uint32_t)out[0];
    }
    return ret;
}

kern_return_t apple_dext_setup_interrupts(io_connect_t connection,
                                          uint32_t *out_num_vectors)
{
    WITH_CONN(connection, c, setup_interrupts(c, out_num_vectors));
}

kern_return_t apple_dext_set_irq_mask(io_connect_t connection,
                                      const uint64_t mask[4])
{
    if (mask == NULL) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c,
              dext_conn_call(c, kDextSelectorSetIRQMask, mask, 4, NULL, 0, 0));
}

static IOReturn read_pending(DextConnection *c, uint64_t pending[4])
{
    uint64_t out[4] = { 0 };
    IOReturn ret;

    ret = dext_conn_call(c, kDextSelectorCheckInterrupt, NULL, 0, out, 4, 0);
    if (ret == kIOReturnSuccess) {
        memcpy(pending, out, sizeof(out));
    }
    return ret;
}

kern_return_t apple_dext_read_pending_irqs(io_connect_t connection,
                                           uint64_t pending[4])
{
    if (pending == NULL) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c, read_pending(c, pending));
}

/* Map the interrupt state page once per connection. */
static IOReturn irq_page(DextConnection *c, volatile uint64_t **out)
{
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    volatile uint64_t *page;
    IOReturn ret;

    /*
     * The drain's fast path: once mapped the page stays until the
     * transport closes, so no lock is needed to find it, and a dext that
     * cannot share it is asked once, not on every drain.
     */
    page = __atomic_load_n(&c->irq_page, __ATOMIC_ACQUIRE);
    if (page != NULL) {
        *out = page;
        return kIOReturnSuccess;
    }
    if (__atomic_load_n(&c->irq_page_unsupported, __ATOMIC_SEQ_CST)) {
        *out = NULL;
        return kIOReturnUnsupported;
    }

    /* Wait for another caller's attempt, or make our own. */
    dext_mutex_lock(&c->lock);
    while (c->irq_page_busy) {
        dext_cond_wait(&c->irq_page_cond, &c->lock);
    }
    page = __atomic_load_n(&c->irq_page, __ATOMIC_ACQUIRE);
    if (page != NULL ||
        __atomic_load_n(&c->irq_page_unsupported, __ATOMIC_SEQ_CST)) {
        dext_mutex_unlock(&c->lock);
        *out = page;
        return page != NULL ? kIOReturnSuccess : kIOReturnUnsupported;
    }
    c->irq_page_busy = true;
    dext_mutex_unlock(&c->lock);

    /* A round trip: no lock held. */
    ret = c->t->ops->map(c->t, kDextMemoryTypeInterruptPage, 0, &addr, &size);
    if (ret == kIOReturnSuccess && size < DEXT_IRQ_ENABLED_OFFSET +
                                          DEXT_IRQ_WORDS * 8) {
        c->t->ops->unmap(c->t, kDextMemoryTypeInterruptPage, addr);
        ret = kIOReturnIPCError;
    }

    page = NULL;
    dext_mutex_lock(&c->lock);
    if (ret == kIOReturnSuccess) {
        page = (volatile uint64_t *)(uintptr_t)addr;
        __atomic_store_n(&c->irq_page, page, __ATOMIC_RELEASE);
    } else if (ret == kIOReturnUnsupported) {
        __atomic_store_n(&c->irq_page_unsupported, true, __ATOMIC_SEQ_CST);
    }
    c->irq_page_busy = false;
    pthread_cond_broadcast(&c->irq_page_cond);
    dext_mutex_unlock(&c->lock);
    *out = page;
    return ret;
}

kern_return_t apple_dext_map_irq_page(io_connect_t connection,
                                      volatile uint64_t **out_page)
{
    if (out_page == NULL) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c, irq_page(c, out_page));
}

static IOReturn drain_pending(DextConnection *c, uint64_t pending[4])
{
    volatile uint64_t *page;
    IOReturn ret;
    int i;

    ret = irq_page(c, &page);
    if (ret == kIOReturnNotReady) {
        return ret;
    }
    if (ret != kIOReturnSuccess) {
        /* A dext that cannot share the page: one round trip instead. */
        return read_pending(c, pending);
    }
    for (i = 0; i < DEXT_IRQ_WORDS; i++) {
        pending[i] = __atomic_exchange_n((uint64_t *)&page[i], 0,
                                         __ATOMIC_SEQ_CST);
    }
    return kIOReturnSuccess;
}

kern_return_t apple_dext_drain_pending_irqs(io_connect_t connection,
                                            uint64_t pending[4])
{
    if (pending == NULL) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c, drain_pending(c, pending));
}

/* ------------------------------------------------------------------ */
/* Status                                                               */

/* What fits in one struct out of DEXT_MAX_STRUCT bytes, with the count. */
#define APPLE_DEXT_MAX_CLAIMERS (DEXT_MAX_STRUCT / 4 - 1)

static IOReturn device_status(DextConnection *c, AppleDextDeviceStatus *out)
{
    uint64_t o[6] = { 0 };
    IOReturn ret;

    ret = dext_conn_call(c, kDextSelectorGetDeviceStatus, NULL, 0, o, 6, 6);
    if (ret == kIOReturnSuccess) {
        out->claims = (uint32_t)o[0];
        out->sessions = (uint32_t)o[1];
        out->irq_vectors = (uint32_t)o[2];
        out->claimed = o[3] != 0;
        out->dma_regions = (uint32_t)o[4];
        out->terminated = o[5] != 0;
    }
    return ret;
}

kern_return_t apple_dext_get_device_status(io_connect_t connection,
                                           AppleDextDeviceStatus *out)
{
    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c, device_status(c, out));
}

/*
 * The claim count, then pids: 4 bytes little-endian each (selectors.h).
 * Not dext_wire_get_u32(): the Darwin library links no wire codec.
 */
static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static IOReturn claimers(DextConnection *c, uint32_t *pids, uint32_t max,
                         uint32_t *count)
{
    uint8_t buf[4 * (1 + APPLE_DEXT_MAX_CLAIMERS)];
    size_t size = 4 * (1 + (size_t)max);
    IOReturn ret;
    uint32_t i;

    ret = dext_conn_call_struct(c, kDextSelectorGetClaimers, NULL, 0, NULL, 0,
                                buf, &size);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    if (size < 4 || size % 4 != 0 || size > 4 * (1 + (size_t)max)) {
        return kIOReturnIPCError;
    }
    *count = get_le32(buf);
    for (i = 0; i < size / 4 - 1; i++) {
        pids[i] = get_le32(buf + 4 + 4 * i);
    }
    return kIOReturnSuccess;
}

_Static_assert((int)APPLE_DEXT_RESET_NONE == (int)DEXT_RESET_NONE &&
               (int)APPLE_DEXT_RESET_FUNCTION == (int)DEXT_RESET_FUNCTION &&
               (int)APPLE_DEXT_RESET_HOT == (int)DEXT_RESET_HOT,
               "the public reset kinds are the wire's");

static IOReturn last_reset(DextConnection *c, uint32_t *method)
{
    uint64_t o[1] = { 0 };
    IOReturn ret;

    ret = dext_conn_call(c, kDextSelectorGetLastReset, NULL, 0, o, 1, 1);
    if (ret == kIOReturnSuccess) {
        *method = (uint32_t)o[0];
    }
    return ret;
}

kern_return_t apple_dext_get_last_reset(io_connect_t connection,
                                        uint32_t *method)
{
    if (method == NULL) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c, last_reset(c, method));
}

kern_return_t apple_dext_get_claimers(io_connect_t connection, uint32_t *pids,
                                      uint32_t max, uint32_t *count)
{
    if (count == NULL || (pids == NULL && max > 0) ||
        max > APPLE_DEXT_MAX_CLAIMERS) {
        return kIOReturnBadArgument;
    }
    WITH_CONN(connection, c, claimers(c, pids, max, count));
}
