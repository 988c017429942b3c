/*
 * SPDX-License-Identifier: MIT
 *
 * Config space as the core shows and changes it: raw accesses through
 * the device's hooks, the client's view (BAR registers show their type
 * bits only, as the real dext hides DART-assigned addresses), block reads
 * and writes split into naturally aligned accesses, and the registers an
 * OS saves and restores around a function reset.
 *
 * Nothing here takes a core lock: callers that need accesses to stay
 * together (reset, claim, interrupt setup) hold CoreDevice.lock.
 */

#include <string.h>

#include "core/core-internal.h"
#include "support/width.h"

IOReturn dext_config_read_raw(DextDevice *dev, uint32_t off, uint32_t width,
                              uint32_t *val)
{
    return dev->ops->config_read(dev, off, width, val);
}

IOReturn dext_config_write_raw(DextDevice *dev, uint32_t off, uint32_t width,
                               uint32_t val)
{
    if (dev->ops->config_write == NULL) {
        return kIOReturnNotWritable;
    }
    return dev->ops->config_write(dev, off, width, val);
}

bool dext_config_access_ok(const DextDevice *dev, uint64_t off,
                           uint64_t width)
{
    return (width == 1 || width == 2 || width == 4) &&
           off < dev->config_size && off + width <= dev->config_size &&
           (off & (width - 1)) == 0;
}

static bool is_bar_dword(uint32_t off)
{
    return off >= DEXT_PCI_BAR0 && off <= DEXT_PCI_BAR5 && (off & 3) == 0;
}

/*
 * The value a client sees for the BAR register dword at @off: the real
 * dext hides DART-assigned addresses and reports the type bits only.
 */
static uint32_t bar_register_view(const DextDevice *dev, uint32_t off)
{
    const DextBar *b = &dev->bars[(off - DEXT_PCI_BAR0) / 4];

    if (b->size == 0) {
        return 0;
    }
    return b->type & ((b->type & DEXT_BAR_TYPE_IO) ? 0x3 : 0xf);
}

IOReturn dext_config_read(DextDevice *dev, uint32_t off, uint32_t width,
                          uint32_t *val)
{
    if (width == 4 && is_bar_dword(off)) {
        *val = bar_register_view(dev, off);
        return kIOReturnSuccess;
    }
    return dext_config_read_raw(dev, off, width, val);
}

IOReturn dext_config_read_block(DextDevice *dev, uint32_t off, uint8_t *buf,
                                uint32_t len, bool raw)
{
    while (len > 0) {
        uint32_t width = dext_access_width(off, len, 4), val = 0;
        IOReturn ret;

        ret = raw ? dext_config_read_raw(dev, off, width, &val)
                  : dext_config_read(dev, off, width, &val);
        if (ret != kIOReturnSuccess) {
            return ret;
        }
        for (uint32_t i = 0; i < width; i++) {
            buf[i] = (uint8_t)(val >> (8 * i));
        }
        buf += width;
        off += width;
        len -= width;
    }
    return kIOReturnSuccess;
}

IOReturn dext_config_write_block(DextDevice *dev, uint32_t off,
                                 const uint8_t *buf, uint32_t len)
{
    while (len > 0) {
        uint32_t width = dext_access_width(off, len, 4), val = 0;
        IOReturn ret;

        for (uint32_t i = 0; i < width; i++) {
            val |= (uint32_t)buf[i] << (8 * i);
        }
        ret = dext_config_write_raw(dev, off, width, val);
        if (ret != kIOReturnSuccess) {
            return ret;
        }
        buf += width;
        off += width;
        len -= width;
    }
    return kIOReturnSuccess;
}

void dext_config_save(DextDevice *dev, DextConfigSave *save)
{
    if (dext_config_read_block(dev, 0, save->bytes, sizeof(save->bytes),
                               true) != kIOReturnSuccess) {
        memset(save->bytes, 0, sizeof(save->bytes));
    }
}

void dext_config_restore(DextDevice *dev, const DextConfigSave *save)
{
    /* BARs, interrupt line, command: as pci_restore_state. */
    for (uint32_t off = DEXT_PCI_BAR0; off <= DEXT_PCI_BAR5; off += 4) {
        dext_config_write_block(dev, off, save->bytes + off, 4);
    }
    dext_config_write_block(dev, DEXT_PCI_INTERRUPT_LINE,
                            save->bytes + DEXT_PCI_INTERRUPT_LINE, 1);
    dext_config_write_block(dev, DEXT_PCI_COMMAND, save->bytes + DEXT_PCI_COMMAND, 2);
}
