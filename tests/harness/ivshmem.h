/*
 * SPDX-License-Identifier: MIT
 *
 * The register interface of the emulated ivshmem device
 * (backends/ivshmem.c, docs/ivshmem.md), for tests and benchmarks that
 * drive it through the public API only.
 */

#ifndef LIBDEXT_TESTS_IVSHMEM_H
#define LIBDEXT_TESTS_IVSHMEM_H

/* Where the default "ivshmem" spec places the device. */
#define IVSHMEM_BUS 0
#define IVSHMEM_DEV 4
#define IVSHMEM_FN  0

#define IVSHMEM_VENDOR_ID      0x1af4
#define IVSHMEM_DEVICE_ID      0x1110
#define IVSHMEM_CLASS          0x050000
#define IVSHMEM_DEFAULT_SIZE   (4u << 20)

/* memoryIndex of each BAR (BAR3 is BAR2's upper half). */
#define IVSHMEM_MEM_REGS       0
#define IVSHMEM_MEM_MSIX       1
#define IVSHMEM_MEM_SHM        2
#define IVSHMEM_BAR_SHM        2

/* BAR0, per QEMU docs/specs/ivshmem-spec.rst ... */
#define IVSHMEM_INTR_MASK      0x00
#define IVSHMEM_INTR_STATUS    0x04
#define IVSHMEM_IVPOSITION     0x08
#define IVSHMEM_DOORBELL       0x0c
/* ... and our extension in its reserved range. */
#define IVSHMEM_DMA_SHM        0x10
#define IVSHMEM_DMA_BUS        0x18
#define IVSHMEM_DMA_LEN        0x20
#define IVSHMEM_DMA_CMD        0x28
#define   IVSHMEM_DMA_RUN        0x1u
#define   IVSHMEM_DMA_TO_BUS     0x2u
#define   IVSHMEM_DMA_IRQ        0x4u
#define   IVSHMEM_DMA_ERROR      0x80000000u
#define IVSHMEM_DMA_VECTOR     0x2c
#define IVSHMEM_FIRE_TIME      0x30
#define IVSHMEM_FIRE_COUNT     0x38
#define IVSHMEM_BURST          0x40
#define IVSHMEM_VECTORS        0x44

/* BAR1: MSI-X table entries, then the PBA. */
#define IVSHMEM_MSIX_ENTRY(v)  ((uint64_t)(v) * 16)
#define IVSHMEM_MSIX_CTRL      0xc
#define IVSHMEM_PBA            0x1000

#endif /* LIBDEXT_TESTS_IVSHMEM_H */
