/*
 * SPDX-License-Identifier: MIT
 *
 * The ivshmem device as libdext emulates it ("dextd --device ivshmem"):
 * its identity, BARs and BAR0 register map, the specification's
 * registers and libdext's extension (a DMA engine between BAR2 and bus
 * addresses, interrupt timing and bursts).  See docs/ivshmem.md.  For
 * programs that drive it (the device model itself, dextctl's dma-test,
 * the tests and benchmarks); nothing else in libdext needs it.
 */

#ifndef LIBDEXT_IVSHMEM_H
#define LIBDEXT_IVSHMEM_H

#define IVSHMEM_VENDOR_ID       0x1af4
#define IVSHMEM_DEVICE_ID       0x1110
#define IVSHMEM_REVISION        1
#define IVSHMEM_CLASS_CODE      0x050000    /* memory controller: RAM */
#define IVSHMEM_SUBSYS_VENDOR   0x1af4
#define IVSHMEM_SUBSYS_ID       0x1100
#define IVSHMEM_MAX_VECTORS     256
#define IVSHMEM_MIN_SIZE        4096ull
#define IVSHMEM_MAX_SIZE        (1ull << 30)
#define IVSHMEM_DMA_MASK        ((1ull << 48) - 1)

#define IVSHMEM_REG_BAR         0
#define IVSHMEM_MSIX_BAR        1
#define IVSHMEM_SHM_BAR         2
#define IVSHMEM_REG_SIZE        256u
#define IVSHMEM_MSIX_SIZE       0x2000u     /* table 4 KiB, then the PBA */
#define IVSHMEM_PBA_OFFSET      0x1000u

/* BAR0 registers of the specification. */
#define IVSHMEM_REG_INTR_MASK   0x00
#define IVSHMEM_REG_INTR_STATUS 0x04
#define IVSHMEM_REG_IVPOSITION  0x08
#define IVSHMEM_REG_DOORBELL    0x0c

/* Our extension, in the reserved range; 64-bit registers take 4 or 8. */
#define IVSHMEM_REG_DMA_SHM     0x10        /* offset in BAR2 */
#define IVSHMEM_REG_DMA_BUS     0x18        /* bus address */
#define IVSHMEM_REG_DMA_LEN     0x20
#define IVSHMEM_REG_DMA_CMD     0x28        /* 32-bit */
#define   IVSHMEM_DMA_RUN         0x1u
#define   IVSHMEM_DMA_TO_BUS      0x2u      /* 0: bus -> BAR2 */
#define   IVSHMEM_DMA_IRQ         0x4u
#define   IVSHMEM_DMA_ERROR       0x80000000u
#define IVSHMEM_REG_DMA_VECTOR  0x2c        /* 32-bit */
#define IVSHMEM_REG_FIRE_TIME   0x30        /* RO: CLOCK_MONOTONIC ns */
#define IVSHMEM_REG_FIRE_COUNT  0x38        /* RO: messages sent */
#define IVSHMEM_REG_BURST       0x40        /* WO: fire every vector N times */
#define IVSHMEM_REG_VECTORS     0x44        /* RO: table size */
#define IVSHMEM_BURST_MAX       65536u

#endif /* LIBDEXT_IVSHMEM_H */
