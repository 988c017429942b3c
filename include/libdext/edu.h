/*
 * SPDX-License-Identifier: MIT
 *
 * The QEMU "edu" educational device, as libdext emulates it (dextd's and
 * the in-process core's default device): its identity and BAR0 register
 * map, after QEMU's docs/specs/edu.rst.  For programs that drive it (the
 * device model itself, dextctl's dma-test, the tests); nothing else in
 * libdext needs it.
 */

#ifndef LIBDEXT_EDU_H
#define LIBDEXT_EDU_H

#define EDU_VENDOR_ID        0x1234
#define EDU_DEVICE_ID        0x11e8
#define EDU_REVISION         0x10
/*
 * Class 0x00, subclass 0xff, prog-if 0: QEMU sets PCI_CLASS_OTHERS (0x00ff)
 * as the class/subclass word, not 0xff as the base class.
 */
#define EDU_CLASS_CODE       0x00ff00u
#define EDU_SUBSYS_VENDOR_ID 0x1af4
#define EDU_SUBSYS_ID        0x1100
#define EDU_DMA_MASK         ((1ull << 28) - 1)  /* default; dma_mask= */

#define EDU_BAR0_SIZE        (1u << 20)
/*
 * Access widths, as on QEMU: 4 bytes anywhere, 8 bytes from EDU_WIDE_REGS
 * on (an 8-byte access below reads all ones, a write is ignored); a 1- or
 * 2-byte access never reaches the device: it reads 0, a write is dropped.
 * Undefined offsets and the write-only registers read all ones.
 */
#define EDU_WIDE_REGS        0x80       /* 8-byte accesses valid from here */

/* BAR0 registers; bits indented under their register. */
#define EDU_REG_ID           0x00
#define   EDU_ID_VALUE         0x010000edu  /* major 1, minor 0 */
#define EDU_REG_LIVENESS     0x04       /* reads back inverted */
#define EDU_REG_FACTORIAL    0x08
#define EDU_REG_STATUS       0x20
#define   EDU_STATUS_COMPUTING 0x00000001   /* RO */
#define   EDU_STATUS_IRQFACT   0x00000080   /* RW: interrupt when done */
#define EDU_REG_IRQ_STATUS   0x24
#define   EDU_IRQ_FACT         0x00000001
#define   EDU_IRQ_DMA          0x00000100
#define EDU_REG_IRQ_RAISE    0x60
#define EDU_REG_IRQ_ACK      0x64
#define EDU_REG_DMA_SRC      0x80
#define EDU_REG_DMA_DST      0x88
#define EDU_REG_DMA_COUNT    0x90
#define EDU_REG_DMA_CMD      0x98
#define   EDU_DMA_RUN          0x01
#define   EDU_DMA_TO_RAM       0x02         /* 0: RAM -> buffer */
#define   EDU_DMA_IRQ          0x04
/*
 * While EDU_DMA_RUN is set, writes to the four DMA registers are ignored;
 * a write to EDU_REG_DMA_CMD without EDU_DMA_RUN is ignored at any time.
 */

/* The DMA engine's buffer, at a fixed device-side address. */
#define EDU_DMA_BUF_ADDR     0x40000
#define EDU_DMA_BUF_SIZE     4096

#endif /* LIBDEXT_EDU_H */
