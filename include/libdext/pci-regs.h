/*
 * SPDX-License-Identifier: MIT
 *
 * PCI configuration space: the registers, bits and capability layouts
 * libdext touches, defined once for the core, the emulated devices, the
 * host backend and dextctl (after the PCI Local Bus and PCI Express
 * specifications; names follow Linux's pci_regs.h with a DEXT_ prefix,
 * so this header can sit beside libpci's or the kernel's).
 */

#ifndef LIBDEXT_PCI_REGS_H
#define LIBDEXT_PCI_REGS_H

/* Sizes. */
#define DEXT_PCI_STD_HEADER_SIZEOF  0x40    /* type 0 header; caps after */
#define DEXT_PCI_CFG_SPACE_SIZE     256
#define DEXT_PCI_CFG_SPACE_EXP_SIZE 4096

/* Type 0 header. */
#define DEXT_PCI_VENDOR_ID          0x00
#define DEXT_PCI_DEVICE_ID          0x02
#define DEXT_PCI_COMMAND            0x04
#define   DEXT_PCI_COMMAND_IO         0x0001
#define   DEXT_PCI_COMMAND_MEMORY     0x0002
#define   DEXT_PCI_COMMAND_MASTER     0x0004
#define   DEXT_PCI_COMMAND_SERR       0x0100
#define   DEXT_PCI_COMMAND_INTX_DISABLE 0x0400
#define DEXT_PCI_STATUS             0x06
#define   DEXT_PCI_STATUS_INTERRUPT   0x0008  /* INTx asserted (RO) */
#define   DEXT_PCI_STATUS_CAP_LIST    0x0010  /* capability list (RO) */
#define   DEXT_PCI_STATUS_ERRORS      0xf900  /* write-1-to-clear bits */
#define DEXT_PCI_REVISION_ID        0x08
#define DEXT_PCI_CLASS_PROG         0x09
#define DEXT_PCI_CACHE_LINE_SIZE    0x0c
#define DEXT_PCI_HEADER_TYPE        0x0e
#define DEXT_PCI_BAR0               0x10
#define DEXT_PCI_BAR5               0x24
#define DEXT_PCI_CB_CAPABILITY_LIST 0x14    /* CardBus bridge header */
#define DEXT_PCI_PRIMARY_BUS        0x18    /* bridges (type 1 and 2) */
#define DEXT_PCI_SECONDARY_BUS      0x19
#define DEXT_PCI_SUBORDINATE_BUS    0x1a
#define DEXT_PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define DEXT_PCI_SUBSYSTEM_ID       0x2e
#define DEXT_PCI_ROM_ADDRESS        0x30
#define DEXT_PCI_CAPABILITY_LIST    0x34
#define DEXT_PCI_INTERRUPT_LINE     0x3c
#define DEXT_PCI_INTERRUPT_PIN      0x3d

/* Base classes. */
#define DEXT_PCI_CLASS_MULTIMEDIA   0x04
#define DEXT_PCI_CLASS_BRIDGE       0x06

/* Capability IDs. */
#define DEXT_PCI_CAP_ID_PM          0x01
#define DEXT_PCI_CAP_ID_MSI         0x05
#define DEXT_PCI_CAP_ID_VNDR        0x09
#define DEXT_PCI_CAP_ID_EXP         0x10
#define DEXT_PCI_CAP_ID_MSIX        0x11

/* MSI capability. */
#define DEXT_PCI_MSI_FLAGS          0x02
#define   DEXT_PCI_MSI_FLAGS_ENABLE   0x0001
#define   DEXT_PCI_MSI_FLAGS_QMASK    0x000e  /* log2 vectors capable (RO) */
#define   DEXT_PCI_MSI_FLAGS_QSIZE    0x0070  /* log2 vectors enabled */
#define   DEXT_PCI_MSI_FLAGS_64BIT    0x0080
#define   DEXT_PCI_MSI_FLAGS_MASKBIT  0x0100  /* per-vector masking */
#define DEXT_PCI_MSI_ADDRESS_LO     0x04
#define DEXT_PCI_MSI_ADDRESS_HI     0x08    /* 64-bit capable only */

/* MSI-X capability. */
#define DEXT_PCI_MSIX_FLAGS         0x02
#define   DEXT_PCI_MSIX_FLAGS_QSIZE   0x07ff  /* table size - 1 (RO) */
#define   DEXT_PCI_MSIX_FLAGS_MASKALL 0x4000
#define   DEXT_PCI_MSIX_FLAGS_ENABLE  0x8000
#define DEXT_PCI_MSIX_TABLE         0x04    /* offset | BIR */
#define   DEXT_PCI_MSIX_TABLE_BIR     0x7
#define DEXT_PCI_MSIX_PBA           0x08    /* offset | BIR */
#define DEXT_PCI_MSIX_SIZEOF        0x0c
#define DEXT_PCI_MSIX_ENTRY_SIZE    16

#endif /* LIBDEXT_PCI_REGS_H */
