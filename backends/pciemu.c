/*
 * SPDX-License-Identifier: MIT
 *
 * Emulated PCI configuration space: a byte image plus per-byte write and
 * write-1-to-clear masks.  See pciemu.h.
 */

#include <ctype.h>
#include <string.h>

#include "backends/pciemu.h"

/* Largest 32-bit memory BAR: bit 31 must stay an address bit. */
#define PCIEMU_MEM32_MAX  (1ull << 31)
#define PCIEMU_IO_MIN     4
#define PCIEMU_IO_MAX     256
#define PCIEMU_MEM_MIN    16

/* Standard capabilities must lie in the first 256 bytes. */
#define PCIEMU_CAP_END    0x100

#define PCIEMU_MSI_MAX_VECTORS   32
#define PCIEMU_MSIX_MAX_ENTRIES  2048

static bool range_ok(const PCIEmu *pe, uint32_t off, uint32_t width)
{
    return (width == 1 || width == 2 || width == 4) &&
           off < pe->size && width <= pe->size - off;
}

static void put_bytes(uint8_t *p, uint32_t width, uint32_t val)
{
    uint32_t i;

    for (i = 0; i < width; i++) {
        p[i] = (uint8_t)(val >> (8 * i));
    }
}

static uint32_t get_bytes(const uint8_t *p, uint32_t width)
{
    uint32_t val = 0;
    uint32_t i;

    for (i = 0; i < width; i++) {
        val |= (uint32_t)p[i] << (8 * i);
    }
    return val;
}

uint32_t dext_pciemu_get(const PCIEmu *pe, uint32_t off, uint32_t width)
{
    if (!range_ok(pe, off, width)) {
        return 0;
    }
    return get_bytes(pe->config + off, width);
}

void dext_pciemu_set(PCIEmu *pe, uint32_t off, uint32_t width, uint32_t val)
{
    if (range_ok(pe, off, width)) {
        put_bytes(pe->config + off, width, val);
    }
}

void dext_pciemu_set_wmask(PCIEmu *pe, uint32_t off, uint32_t width,
                           uint32_t mask)
{
    if (range_ok(pe, off, width)) {
        put_bytes(pe->wmask + off, width, mask);
    }
}

void dext_pciemu_set_w1cmask(PCIEmu *pe, uint32_t off, uint32_t width,
                             uint32_t mask)
{
    if (range_ok(pe, off, width)) {
        put_bytes(pe->w1cmask + off, width, mask);
    }
}

IOReturn dext_pciemu_init(PCIEmu *pe, uint32_t config_size,
                          const PCIEmuIdent *id)
{
    if ((config_size != DEXT_CONFIG_SIZE &&
         config_size != DEXT_CONFIG_SIZE_EXT) ||
        id == NULL || id->interrupt_pin > 4 || id->class_code > 0xffffff) {
        return kIOReturnBadArgument;
    }
    memset(pe, 0, sizeof(*pe));
    pe->size = config_size;
    pe->cap_free = DEXT_PCI_STD_HEADER_SIZEOF;

    dext_pciemu_set(pe, DEXT_PCI_VENDOR_ID, 2, id->vendor_id);
    dext_pciemu_set(pe, DEXT_PCI_DEVICE_ID, 2, id->device_id);
    dext_pciemu_set(pe, DEXT_PCI_REVISION_ID, 4,
                    id->revision | (id->class_code << 8));
    dext_pciemu_set(pe, DEXT_PCI_HEADER_TYPE, 1, 0x00);
    dext_pciemu_set(pe, DEXT_PCI_SUBSYSTEM_VENDOR_ID, 2, id->subsystem_vendor_id);
    dext_pciemu_set(pe, DEXT_PCI_SUBSYSTEM_ID, 2, id->subsystem_id);
    dext_pciemu_set(pe, DEXT_PCI_INTERRUPT_PIN, 1, id->interrupt_pin);

    dext_pciemu_set_wmask(pe, DEXT_PCI_COMMAND, 2,
                          DEXT_PCI_COMMAND_IO | DEXT_PCI_COMMAND_MEMORY | DEXT_PCI_COMMAND_MASTER |
                          DEXT_PCI_COMMAND_SERR | DEXT_PCI_COMMAND_INTX_DISABLE);
    dext_pciemu_set_w1cmask(pe, DEXT_PCI_STATUS, 2, DEXT_PCI_STATUS_ERRORS);
    /* Firmware scratch registers on every real function. */
    dext_pciemu_set_wmask(pe, DEXT_PCI_CACHE_LINE_SIZE, 1, 0xff);
    dext_pciemu_set_wmask(pe, DEXT_PCI_INTERRUPT_LINE, 1, 0xff);
    return kIOReturnSuccess;
}

static bool is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

IOReturn dext_pciemu_add_bar(PCIEmu *pe, int bar, uint64_t size, uint8_t type)
{
    uint32_t reg;
    uint64_t mask;

    if (bar < 0 || bar >= DEXT_NUM_BARS || !is_pow2(size) ||
        (type & ~(DEXT_BAR_TYPE_IO | DEXT_BAR_TYPE_MEM64 |
                  DEXT_BAR_TYPE_PREFETCH)) != 0) {
        return kIOReturnBadArgument;
    }
    reg = DEXT_PCI_BAR0 + 4 * (uint32_t)bar;
    mask = ~(size - 1);

    if (type & DEXT_BAR_TYPE_IO) {
        if (type != DEXT_BAR_TYPE_IO || size < PCIEMU_IO_MIN ||
            size > PCIEMU_IO_MAX) {
            return kIOReturnBadArgument;
        }
        if (pe->bar_used[bar]) {
            return kIOReturnExclusiveAccess;
        }
        dext_pciemu_set(pe, reg, 4, DEXT_BAR_TYPE_IO);
        dext_pciemu_set_wmask(pe, reg, 4, (uint32_t)mask & ~0x3u);
    } else if (type & DEXT_BAR_TYPE_MEM64) {
        if (bar == DEXT_NUM_BARS - 1 || size < PCIEMU_MEM_MIN ||
            size > (1ull << 63)) {
            return kIOReturnBadArgument;
        }
        if (pe->bar_used[bar] || pe->bar_used[bar + 1]) {
            return kIOReturnExclusiveAccess;
        }
        dext_pciemu_set(pe, reg, 4, type);
        dext_pciemu_set_wmask(pe, reg, 4, (uint32_t)mask & ~0xfu);
        dext_pciemu_set(pe, reg + 4, 4, 0);
        dext_pciemu_set_wmask(pe, reg + 4, 4, (uint32_t)(mask >> 32));
        pe->bar_used[bar + 1] = true;
        pe->bar_size[bar + 1] = 0;
        pe->bar_type[bar + 1] = 0;
    } else {
        if (size < PCIEMU_MEM_MIN || size > PCIEMU_MEM32_MAX) {
            return kIOReturnBadArgument;
        }
        if (pe->bar_used[bar]) {
            return kIOReturnExclusiveAccess;
        }
        dext_pciemu_set(pe, reg, 4, type);
        dext_pciemu_set_wmask(pe, reg, 4, (uint32_t)mask & ~0xfu);
    }
    pe->bar_used[bar] = true;
    pe->bar_size[bar] = size;
    pe->bar_type[bar] = type;
    return kIOReturnSuccess;
}

uint64_t dext_pciemu_bar_address(const PCIEmu *pe, int bar)
{
    uint32_t reg;
    uint64_t addr;

    if (bar < 0 || bar >= DEXT_NUM_BARS || pe->bar_size[bar] == 0) {
        return 0;
    }
    reg = DEXT_PCI_BAR0 + 4 * (uint32_t)bar;
    addr = dext_pciemu_get(pe, reg, 4);
    if (pe->bar_type[bar] & DEXT_BAR_TYPE_IO) {
        return addr & ~0x3ull;
    }
    if (pe->bar_type[bar] & DEXT_BAR_TYPE_MEM64) {
        addr |= (uint64_t)dext_pciemu_get(pe, reg + 4, 4) << 32;
    }
    return addr & ~0xfull;
}

void dext_pciemu_describe(const PCIEmu *pe, DextDevice *dev)
{
    int i;

    dev->vendor_id = (uint16_t)dext_pciemu_get(pe, DEXT_PCI_VENDOR_ID, 2);
    dev->device_id = (uint16_t)dext_pciemu_get(pe, DEXT_PCI_DEVICE_ID, 2);
    dev->revision = (uint8_t)dext_pciemu_get(pe, DEXT_PCI_REVISION_ID, 1);
    dev->class_code = dext_pciemu_get(pe, DEXT_PCI_REVISION_ID, 4) >> 8;
    dev->config_size = pe->size;
    for (i = 0; i < DEXT_NUM_BARS; i++) {
        dev->bars[i].size = pe->bar_size[i];
        dev->bars[i].type = pe->bar_type[i];
    }
}

IOReturn dext_pciemu_config_read(const PCIEmu *pe, uint32_t off, uint32_t width,
                                 uint32_t *val)
{
    if (!range_ok(pe, off, width) || off % width != 0) {
        return kIOReturnBadArgument;
    }
    *val = get_bytes(pe->config + off, width);
    return kIOReturnSuccess;
}

IOReturn dext_pciemu_config_write(PCIEmu *pe, uint32_t off, uint32_t width,
                                  uint32_t val)
{
    uint32_t i;

    if (!range_ok(pe, off, width) || off % width != 0) {
        return kIOReturnBadArgument;
    }
    for (i = 0; i < width; i++) {
        uint8_t b = (uint8_t)(val >> (8 * i));
        uint8_t wm = pe->wmask[off + i];
        uint8_t w1c = pe->w1cmask[off + i];
        uint8_t cur = pe->config[off + i];

        cur = (uint8_t)((cur & ~wm) | (b & wm));
        cur = (uint8_t)(cur & ~(b & w1c));
        pe->config[off + i] = cur;
    }
    return kIOReturnSuccess;
}

/* Offset of the MSI message data register; the layout depends on 64BIT. */
static uint32_t msi_data_off(const PCIEmu *pe)
{
    uint32_t ctrl = dext_pciemu_get(pe, pe->msi_cap + DEXT_PCI_MSI_FLAGS, 2);

    return pe->msi_cap + ((ctrl & DEXT_PCI_MSI_FLAGS_64BIT) ? 0x0c : 0x08);
}

static uint32_t msi_capable_log2(const PCIEmu *pe)
{
    uint32_t ctrl = dext_pciemu_get(pe, pe->msi_cap + DEXT_PCI_MSI_FLAGS, 2);

    return (ctrl & DEXT_PCI_MSI_FLAGS_QMASK) >> 1;
}

static bool msi_has_pvm(const PCIEmu *pe)
{
    return pe->msi_cap != 0 &&
           (dext_pciemu_get(pe, pe->msi_cap + DEXT_PCI_MSI_FLAGS, 2) &
            DEXT_PCI_MSI_FLAGS_MASKBIT) != 0;
}

void dext_pciemu_reset(PCIEmu *pe)
{
    uint32_t i;

    for (i = 0; i < pe->size; i++) {
        pe->config[i] &= (uint8_t)~(pe->wmask[i] | pe->w1cmask[i]);
    }
    dext_pciemu_set_intx(pe, false);
    if (msi_has_pvm(pe)) {
        dext_pciemu_set(pe, msi_data_off(pe) + 8, 4, 0);
    }
}

void dext_pciemu_set_intx(PCIEmu *pe, bool level)
{
    uint32_t st = dext_pciemu_get(pe, DEXT_PCI_STATUS, 2);

    st = level ? (st | DEXT_PCI_STATUS_INTERRUPT) : (st & ~DEXT_PCI_STATUS_INTERRUPT);
    dext_pciemu_set(pe, DEXT_PCI_STATUS, 2, st);
}

IOReturn dext_pciemu_add_capability(PCIEmu *pe, uint8_t cap_id, uint32_t size,
                                    uint32_t *offset)
{
    uint32_t off = pe->cap_free;

    if (size < 2 || size > PCIEMU_CAP_END - DEXT_PCI_STD_HEADER_SIZEOF) {
        return kIOReturnBadArgument;
    }
    if (off + size > PCIEMU_CAP_END) {
        return kIOReturnNoSpace;
    }
    memset(pe->config + off, 0, size);
    memset(pe->wmask + off, 0, size);
    memset(pe->w1cmask + off, 0, size);
    pe->config[off] = cap_id;
    pe->config[off + 1] = 0;
    if (pe->cap_last == 0) {
        pe->config[DEXT_PCI_CAPABILITY_LIST] = (uint8_t)off;
    } else {
        pe->config[pe->cap_last + 1] = (uint8_t)off;
    }
    dext_pciemu_set(pe, DEXT_PCI_STATUS, 2,
                    dext_pciemu_get(pe, DEXT_PCI_STATUS, 2) | DEXT_PCI_STATUS_CAP_LIST);
    pe->cap_last = off;
    pe->cap_free = (off + size + 3) & ~3u;
    if (offset) {
        *offset = off;
    }
    return kIOReturnSuccess;
}

IOReturn dext_pciemu_add_msi(PCIEmu *pe, unsigned nr_vectors, bool addr64,
                             bool per_vector_mask, uint32_t *offset)
{
    uint32_t size, cap, data, ctrl, log2n = 0;
    IOReturn ret;

    if (!is_pow2(nr_vectors) || nr_vectors > PCIEMU_MSI_MAX_VECTORS) {
        return kIOReturnBadArgument;
    }
    if (pe->msi_cap != 0) {
        return kIOReturnExclusiveAccess;
    }
    while ((1u << log2n) < nr_vectors) {
        log2n++;
    }
    /* Header, control, address (+ high), data (+ mask, pending). */
    size = addr64 ? 0x0e : 0x0a;
    if (per_vector_mask) {
        size += 0x0a;
    }
    ret = dext_pciemu_add_capability(pe, DEXT_PCI_CAP_ID_MSI, size, &cap);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    pe->msi_cap = cap;

    ctrl = log2n << 1;
    if (addr64) {
        ctrl |= DEXT_PCI_MSI_FLAGS_64BIT;
    }
    if (per_vector_mask) {
        ctrl |= DEXT_PCI_MSI_FLAGS_MASKBIT;
    }
    dext_pciemu_set(pe, cap + DEXT_PCI_MSI_FLAGS, 2, ctrl);
    dext_pciemu_set_wmask(pe, cap + DEXT_PCI_MSI_FLAGS, 2,
                          DEXT_PCI_MSI_FLAGS_ENABLE |
                          (log2n ? DEXT_PCI_MSI_FLAGS_QSIZE : 0));
    /* The address is dword aligned: bits 1:0 are hardwired zero. */
    dext_pciemu_set_wmask(pe, cap + DEXT_PCI_MSI_ADDRESS_LO, 4, 0xfffffffc);
    if (addr64) {
        dext_pciemu_set_wmask(pe, cap + DEXT_PCI_MSI_ADDRESS_HI, 4, 0xffffffff);
    }
    data = msi_data_off(pe);
    dext_pciemu_set_wmask(pe, data, 2, 0xffff);
    if (per_vector_mask) {
        dext_pciemu_set_wmask(pe, data + 4, 4,
                              nr_vectors == 32 ? 0xffffffff
                                          : (1u << nr_vectors) - 1);
    }
    if (offset) {
        *offset = cap;
    }
    return kIOReturnSuccess;
}

bool dext_pciemu_msi_enabled(const PCIEmu *pe)
{
    return pe->msi_cap != 0 &&
           (dext_pciemu_get(pe, pe->msi_cap + DEXT_PCI_MSI_FLAGS, 2) &
            DEXT_PCI_MSI_FLAGS_ENABLE) != 0;
}

unsigned dext_pciemu_msi_vectors(const PCIEmu *pe)
{
    uint32_t ctrl, mme, mmc;

    if (pe->msi_cap == 0) {
        return 0;
    }
    ctrl = dext_pciemu_get(pe, pe->msi_cap + DEXT_PCI_MSI_FLAGS, 2);
    mme = (ctrl & DEXT_PCI_MSI_FLAGS_QSIZE) >> 4;
    mmc = msi_capable_log2(pe);
    /* A driver asking for more than offered gets what is offered. */
    return 1u << (mme < mmc ? mme : mmc);
}

bool dext_pciemu_msi_message(const PCIEmu *pe, unsigned vector, uint64_t *addr,
                             uint32_t *data)
{
    uint32_t ctrl, nvec;
    uint64_t a;

    if (pe->msi_cap == 0) {
        return false;
    }
    nvec = dext_pciemu_msi_vectors(pe);
    if (vector >= nvec) {
        return false;
    }
    ctrl = dext_pciemu_get(pe, pe->msi_cap + DEXT_PCI_MSI_FLAGS, 2);
    a = dext_pciemu_get(pe, pe->msi_cap + DEXT_PCI_MSI_ADDRESS_LO, 4);
    if (ctrl & DEXT_PCI_MSI_FLAGS_64BIT) {
        a |= (uint64_t)dext_pciemu_get(pe, pe->msi_cap + DEXT_PCI_MSI_ADDRESS_HI, 4)
             << 32;
    }
    *addr = a;
    *data = (dext_pciemu_get(pe, msi_data_off(pe), 2) & ~(nvec - 1)) | vector;
    return true;
}

bool dext_pciemu_msi_masked(const PCIEmu *pe, unsigned vector)
{
    if (!msi_has_pvm(pe) || vector >= PCIEMU_MSI_MAX_VECTORS) {
        return false;
    }
    return (dext_pciemu_get(pe, msi_data_off(pe) + 4, 4) >> vector) & 1;
}

void dext_pciemu_msi_set_pending(PCIEmu *pe, unsigned vector, bool pending)
{
    uint32_t off, bits;

    if (!msi_has_pvm(pe) || vector >= (1u << msi_capable_log2(pe))) {
        return;
    }
    off = msi_data_off(pe) + 8;
    bits = dext_pciemu_get(pe, off, 4);
    bits = pending ? (bits | (1u << vector)) : (bits & ~(1u << vector));
    dext_pciemu_set(pe, off, 4, bits);
}

/* Whether [off, off + len) lies in memory BAR @bar. */
static bool msix_fits(const PCIEmu *pe, int bar, uint32_t off, uint64_t len)
{
    if (bar < 0 || bar >= DEXT_NUM_BARS || pe->bar_size[bar] == 0 ||
        (pe->bar_type[bar] & DEXT_BAR_TYPE_IO) || (off & 0x7) != 0) {
        return false;
    }
    return off < pe->bar_size[bar] && len <= pe->bar_size[bar] - off;
}

IOReturn dext_pciemu_add_msix(PCIEmu *pe, unsigned table_size, int table_bar,
                              uint32_t table_offset, int pba_bar,
                              uint32_t pba_offset, uint32_t *offset)
{
    uint64_t pba_len = ((uint64_t)table_size + 63) / 64 * 8;
    uint32_t cap;
    IOReturn ret;

    if (table_size == 0 || table_size > PCIEMU_MSIX_MAX_ENTRIES ||
        !msix_fits(pe, table_bar, table_offset,
                   (uint64_t)table_size * DEXT_PCI_MSIX_ENTRY_SIZE) ||
        !msix_fits(pe, pba_bar, pba_offset, pba_len)) {
        return kIOReturnBadArgument;
    }
    if (pe->msix_cap != 0) {
        return kIOReturnExclusiveAccess;
    }
    ret = dext_pciemu_add_capability(pe, DEXT_PCI_CAP_ID_MSIX, DEXT_PCI_MSIX_SIZEOF,
                                     &cap);
    if (ret != kIOReturnSuccess) {
        return ret;
    }
    pe->msix_cap = cap;
    dext_pciemu_set(pe, cap + DEXT_PCI_MSIX_FLAGS, 2, table_size - 1);
    dext_pciemu_set_wmask(pe, cap + DEXT_PCI_MSIX_FLAGS, 2,
                          DEXT_PCI_MSIX_FLAGS_MASKALL | DEXT_PCI_MSIX_FLAGS_ENABLE);
    dext_pciemu_set(pe, cap + DEXT_PCI_MSIX_TABLE, 4,
                    table_offset | (uint32_t)table_bar);
    dext_pciemu_set(pe, cap + DEXT_PCI_MSIX_PBA, 4,
                    pba_offset | (uint32_t)pba_bar);
    if (offset) {
        *offset = cap;
    }
    return kIOReturnSuccess;
}

bool dext_pciemu_msix_enabled(const PCIEmu *pe)
{
    return pe->msix_cap != 0 &&
           (dext_pciemu_get(pe, pe->msix_cap + DEXT_PCI_MSIX_FLAGS, 2) &
            DEXT_PCI_MSIX_FLAGS_ENABLE) != 0;
}

bool dext_pciemu_msix_function_masked(const PCIEmu *pe)
{
    return pe->msix_cap != 0 &&
           (dext_pciemu_get(pe, pe->msix_cap + DEXT_PCI_MSIX_FLAGS, 2) &
            DEXT_PCI_MSIX_FLAGS_MASKALL) != 0;
}

unsigned dext_pciemu_msix_table_size(const PCIEmu *pe)
{
    if (pe->msix_cap == 0) {
        return 0;
    }
    return (dext_pciemu_get(pe, pe->msix_cap + DEXT_PCI_MSIX_FLAGS, 2) &
            DEXT_PCI_MSIX_FLAGS_QSIZE) + 1;
}

