/*
 * SPDX-License-Identifier: MIT
 *
 * Emulated PCI configuration space for emulated device backends.
 *
 * A PCIEmu holds the bytes of a type-0 configuration header (256 or 4096
 * bytes) together with two per-byte masks: @wmask says which bits a
 * config write may change, @w1cmask which bits a write of 1 clears.  All
 * behaviour of plain registers (read-only identity, BAR sizing, the
 * writable bits of the command register, capability bodies) follows from
 * those masks, so the device code only builds the space and then hands
 * config accesses to dext_pciemu_config_read()/dext_pciemu_config_write().
 *
 * Builder rules: add BARs before an MSI-X capability that points into
 * them; every writable bit powers on as 0 (dext_pciemu_reset() relies on it).
 *
 * A PCIEmu has no lock of its own: the owning device serialises calls.
 */

#ifndef LIBDEXT_PCIEMU_H
#define LIBDEXT_PCIEMU_H

#include <stdbool.h>
#include <stdint.h>

#include "libdext/pci-regs.h"
#include "backends/backend.h"
#include "support/bdf.h"

/* Registers, bits and capability layouts: libdext/pci-regs.h. */

/**
 * struct PCIEmuIdent - the read-only identity of an emulated function.
 * @class_code: base class << 16 | subclass << 8 | programming interface
 * @interrupt_pin: 0 for none, 1..4 for INTA..INTD
 */
typedef struct PCIEmuIdent {
    uint16_t vendor_id;
    uint16_t device_id;
    uint8_t revision;
    uint32_t class_code;
    uint16_t subsystem_vendor_id;
    uint16_t subsystem_id;
    uint8_t interrupt_pin;
} PCIEmuIdent;

/**
 * struct PCIEmu - one function's configuration space.
 * @size: 256 or 4096
 * @config: current contents, little-endian as on the bus
 * @wmask: bits a config write may change
 * @w1cmask: bits a config write of 1 clears
 * @bar_size: BAR sizes (0 = unused or the upper half of a 64-bit BAR)
 * @bar_type: DEXT_BAR_TYPE_* bits of each BAR
 * @cap_last: offset of the last standard capability, 0 while none
 * @cap_free: where the next standard capability goes
 * @msi_cap: offset of the MSI capability, 0 if none
 * @msix_cap: offset of the MSI-X capability, 0 if none
 */
typedef struct PCIEmu {
    uint32_t size;
    uint8_t config[DEXT_CONFIG_SIZE_EXT];
    uint8_t wmask[DEXT_CONFIG_SIZE_EXT];
    uint8_t w1cmask[DEXT_CONFIG_SIZE_EXT];
    uint64_t bar_size[DEXT_NUM_BARS];
    uint8_t bar_type[DEXT_NUM_BARS];
    bool bar_used[DEXT_NUM_BARS];
    uint32_t cap_last;
    uint32_t cap_free;
    uint32_t msi_cap;
    uint32_t msix_cap;
} PCIEmu;

/**
 * dext_pciemu_init() - build an empty type-0 header
 * @pe: the space to initialise (any previous contents are discarded)
 * @config_size: DEXT_CONFIG_SIZE or DEXT_CONFIG_SIZE_EXT
 * @id: identity registers
 *
 * Makes the command register bits DEXT_PCI_COMMAND_* writable, the status
 * error bits write-1-to-clear, and cache line size and interrupt line
 * writable; everything else is read-only.
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a bad size or pin.
 */
IOReturn dext_pciemu_init(PCIEmu *pe, uint32_t config_size,
                          const PCIEmuIdent *id);

/**
 * dext_pciemu_add_bar() - declare a BAR
 * @pe: the space
 * @bar: BAR number 0..5; a 64-bit BAR also takes @bar + 1
 * @size: a power of two: 16 bytes..2 GiB for 32-bit memory, 16 bytes..
 *        2^63 for 64-bit memory, 4..256 bytes for I/O
 * @type: DEXT_BAR_TYPE_* bits (IO excludes MEM64 and PREFETCH)
 *
 * The address bits below @size are read-only zero, so writing all ones
 * and reading back yields the size mask with the type bits.
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a bad number, size
 * or type; kIOReturnExclusiveAccess if the register is taken.
 */
IOReturn dext_pciemu_add_bar(PCIEmu *pe, int bar, uint64_t size, uint8_t type);

/**
 * dext_pciemu_bar_address() - the address a driver programmed into a BAR
 * @pe: the space
 * @bar: BAR number (the lower register of a 64-bit BAR)
 *
 * Return: the base address with the type bits stripped; 0 if unused.
 */
uint64_t dext_pciemu_bar_address(const PCIEmu *pe, int bar);

/**
 * dext_pciemu_describe() - copy identity, config size and BARs to a device
 * @pe: the space
 * @dev: gets vendor_id, device_id, class_code, revision, config_size
 *       and each bars[].size and .type; bars[].mappable is left alone
 */
void dext_pciemu_describe(const PCIEmu *pe, DextDevice *dev);

/**
 * dext_pciemu_config_read() - a driver's config read
 * @pe: the space
 * @off: byte offset, naturally aligned for @width
 * @width: 1, 2 or 4
 * @val: receives the value (little-endian assembly of the bytes)
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a bad width,
 * alignment or range.
 */
IOReturn dext_pciemu_config_read(const PCIEmu *pe, uint32_t off, uint32_t width,
                                 uint32_t *val);

/**
 * dext_pciemu_config_write() - a driver's config write, through the masks
 * @pe: the space
 * @off: byte offset, naturally aligned for @width
 * @width: 1, 2 or 4
 * @val: the value; bits outside @wmask are ignored, bits in @w1cmask
 *       clear the corresponding set bits
 *
 * Return: as dext_pciemu_config_read().
 */
IOReturn dext_pciemu_config_write(PCIEmu *pe, uint32_t off, uint32_t width,
                                  uint32_t val);

/**
 * dext_pciemu_reset() - return the space to its power-on state
 * @pe: the space
 *
 * Clears every writable and write-1-to-clear bit (command, BAR
 * addresses, interrupt line, MSI/MSI-X control, message address/data,
 * mask bits), the INTx status bit and the MSI pending bits.
 */
void dext_pciemu_reset(PCIEmu *pe);

/**
 * dext_pciemu_get() - read raw bytes, bypassing the masks
 * @pe: the space
 * @off: byte offset; @off + @width must lie within @pe->size
 * @width: 1, 2 or 4
 *
 * Return: the little-endian value, or 0 if out of range.
 */
uint32_t dext_pciemu_get(const PCIEmu *pe, uint32_t off, uint32_t width);

/**
 * dext_pciemu_set() - store raw bytes, bypassing the masks
 * @pe: the space
 * @off: byte offset
 * @width: 1, 2 or 4
 * @val: value; out-of-range stores are dropped
 *
 * For device-owned read-only state and for building capability bodies.
 */
void dext_pciemu_set(PCIEmu *pe, uint32_t off, uint32_t width, uint32_t val);

/**
 * dext_pciemu_set_wmask() - set which bits of a register a write may change
 * @pe: the space
 * @off: byte offset
 * @width: 1, 2 or 4
 * @mask: writable bits
 */
void dext_pciemu_set_wmask(PCIEmu *pe, uint32_t off, uint32_t width,
                           uint32_t mask);

/**
 * dext_pciemu_set_w1cmask() - set which bits of a register are write-1-to-clear
 * @pe: the space
 * @off: byte offset
 * @width: 1, 2 or 4
 * @mask: write-1-to-clear bits (keep them out of the write mask)
 */
void dext_pciemu_set_w1cmask(PCIEmu *pe, uint32_t off, uint32_t width,
                             uint32_t mask);

/**
 * dext_pciemu_set_intx() - reflect the INTx line level in the status register
 * @pe: the space
 * @level: true while the function asserts its interrupt pin
 */
void dext_pciemu_set_intx(PCIEmu *pe, bool level);

/**
 * dext_pciemu_add_capability() - append a standard capability to the list
 * @pe: the space
 * @cap_id: capability ID
 * @size: bytes including the two-byte header (at least 2)
 * @offset: receives the capability's offset (dword aligned, >= 0x40)
 *
 * Sets the status "capabilities list" bit, links the new capability
 * from 0x34 or from the previous one, and zeroes its body.  The body is
 * read-only until the caller sets masks.
 *
 * Return: kIOReturnSuccess; kIOReturnNoSpace if it does not fit below
 * 0x100; kIOReturnBadArgument for a bad @size.
 */
IOReturn dext_pciemu_add_capability(PCIEmu *pe, uint8_t cap_id, uint32_t size,
                                    uint32_t *offset);

/**
 * dext_pciemu_add_msi() - append an MSI capability
 * @pe: the space (at most one MSI capability)
 * @nr_vectors: vectors requested, a power of two 1..32
 * @addr64: 64-bit message address capable
 * @per_vector_mask: per-vector masking capable (mask and pending bits)
 * @offset: receives the capability's offset (may be NULL)
 *
 * Return: as dext_pciemu_add_capability(); kIOReturnExclusiveAccess if the
 * space has an MSI capability already.
 */
IOReturn dext_pciemu_add_msi(PCIEmu *pe, unsigned nr_vectors, bool addr64,
                             bool per_vector_mask, uint32_t *offset);

/**
 * dext_pciemu_msi_enabled() - whether the driver enabled MSI
 * @pe: the space
 *
 * Return: the MSI enable bit; false without an MSI capability.
 */
bool dext_pciemu_msi_enabled(const PCIEmu *pe);

/**
 * dext_pciemu_msi_vectors() - how many vectors the driver enabled
 * @pe: the space
 *
 * Return: 2^(multiple message enable), capped at the capable count;
 * 0 without an MSI capability.
 */
unsigned dext_pciemu_msi_vectors(const PCIEmu *pe);

/**
 * dext_pciemu_msi_message() - the message a vector would send
 * @pe: the space
 * @vector: vector number
 * @addr: receives the message address
 * @data: receives the message data, low bits replaced by @vector as
 *        multiple-message MSI does
 *
 * Return: false without an MSI capability or if @vector is not enabled.
 */
bool dext_pciemu_msi_message(const PCIEmu *pe, unsigned vector, uint64_t *addr,
                             uint32_t *data);

/**
 * dext_pciemu_msi_masked() - whether a vector's mask bit is set
 * @pe: the space
 * @vector: vector number
 *
 * Return: the mask bit; false without per-vector masking.
 */
bool dext_pciemu_msi_masked(const PCIEmu *pe, unsigned vector);

/**
 * dext_pciemu_msi_set_pending() - set or clear a vector's pending bit
 * @pe: the space
 * @vector: vector number
 * @pending: new state
 *
 * The pending bits are read-only to drivers; a device sets one when it
 * wants to signal a masked vector.  Ignored without per-vector masking.
 */
void dext_pciemu_msi_set_pending(PCIEmu *pe, unsigned vector, bool pending);

/**
 * dext_pciemu_add_msix() - append an MSI-X capability
 * @pe: the space (at most one MSI-X capability)
 * @table_size: entries, 1..2048
 * @table_bar: BIR of the table, a memory BAR already added
 * @table_offset: offset of the table in that BAR, 8-byte aligned
 * @pba_bar: BIR of the pending bit array, a memory BAR already added
 * @pba_offset: offset of the PBA in that BAR, 8-byte aligned
 * @offset: receives the capability's offset (may be NULL)
 *
 * Only the capability is built; the table and PBA are the device's to
 * serve in its BAR.
 *
 * Return: as dext_pciemu_add_capability(); kIOReturnBadArgument if the table
 * or PBA does not fit its BAR; kIOReturnExclusiveAccess if the space has
 * an MSI-X capability already.
 */
IOReturn dext_pciemu_add_msix(PCIEmu *pe, unsigned table_size, int table_bar,
                              uint32_t table_offset, int pba_bar,
                              uint32_t pba_offset, uint32_t *offset);

/**
 * dext_pciemu_msix_enabled() - whether the driver enabled MSI-X
 * @pe: the space
 *
 * Return: the MSI-X enable bit; false without an MSI-X capability.
 */
bool dext_pciemu_msix_enabled(const PCIEmu *pe);

/**
 * dext_pciemu_msix_function_masked() - whether the driver masked all vectors
 * @pe: the space
 *
 * Return: the MSI-X function mask bit; false without MSI-X.
 */
bool dext_pciemu_msix_function_masked(const PCIEmu *pe);

/**
 * dext_pciemu_msix_table_size() - the number of MSI-X table entries
 * @pe: the space
 *
 * Return: the table size; 0 without an MSI-X capability.
 */
unsigned dext_pciemu_msix_table_size(const PCIEmu *pe);

#endif /* LIBDEXT_PCIEMU_H */
