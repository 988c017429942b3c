/*
 * SPDX-License-Identifier: MIT
 *
 * The vfio-user wire protocol as dext-vfio-user speaks it: message
 * header, commands and the payloads of the commands it serves, written
 * from the protocol specification (QEMU docs/interop/vfio-user.rst).
 * All fields are in host byte order; payload offsets are from the end of
 * the 16-byte header.
 */

#ifndef DEXT_VFIO_USER_PROTO_H
#define DEXT_VFIO_USER_PROTO_H

#include <stdint.h>

#define VFU_HDR_SIZE            16u

/* Header flags. */
#define VFU_FLAG_TYPE_MASK      0xfu
#define VFU_FLAG_TYPE_COMMAND   0x0u
#define VFU_FLAG_TYPE_REPLY     0x1u
#define VFU_FLAG_NO_REPLY       (1u << 4)
#define VFU_FLAG_ERROR          (1u << 5)

enum VfuCommand {
    VFU_CMD_VERSION = 1,
    VFU_CMD_DMA_MAP = 2,
    VFU_CMD_DMA_UNMAP = 3,
    VFU_CMD_DEVICE_GET_INFO = 4,
    VFU_CMD_DEVICE_GET_REGION_INFO = 5,
    VFU_CMD_DEVICE_GET_REGION_IO_FDS = 6,
    VFU_CMD_DEVICE_GET_IRQ_INFO = 7,
    VFU_CMD_DEVICE_SET_IRQS = 8,
    VFU_CMD_REGION_READ = 9,
    VFU_CMD_REGION_WRITE = 10,
    VFU_CMD_DMA_READ = 11,
    VFU_CMD_DMA_WRITE = 12,
    VFU_CMD_DEVICE_RESET = 13,
    VFU_CMD_REGION_WRITE_MULTI = 15,
    VFU_CMD_DEVICE_FEATURE = 16,
};

typedef struct VfuHeader {
    uint16_t msg_id;
    uint16_t command;
    uint32_t size;          /* the whole message, header included */
    uint32_t flags;
    uint32_t error;         /* errno, in an error reply */
} VfuHeader;

/* VERSION: major, minor, then optional JSON (NUL terminated). */
typedef struct VfuVersion {
    uint16_t major;
    uint16_t minor;
} VfuVersion;
#define VFU_VERSION_MAJOR       0
#define VFU_VERSION_MINOR       0

/* DMA_MAP */
typedef struct VfuDmaMap {
    uint32_t argsz;
    uint32_t flags;         /* VFU_DMA_READ | VFU_DMA_WRITE */
    uint64_t offset;        /* in the fd */
    uint64_t address;       /* the IOVA */
    uint64_t size;
} VfuDmaMap;
#define VFU_DMA_READ            (1u << 0)
#define VFU_DMA_WRITE           (1u << 1)

/* DMA_UNMAP: request and reply. */
typedef struct VfuDmaUnmap {
    uint32_t argsz;
    uint32_t flags;
    uint64_t address;
    uint64_t size;
} VfuDmaUnmap;
#define VFU_DMA_UNMAP_ALL       (1u << 1)

/* DEVICE_GET_INFO */
typedef struct VfuDeviceInfo {
    uint32_t argsz;
    uint32_t flags;
    uint32_t num_regions;
    uint32_t num_irqs;
} VfuDeviceInfo;
#define VFU_DEVICE_FLAGS_RESET  (1u << 0)
#define VFU_DEVICE_FLAGS_PCI    (1u << 1)

/* DEVICE_GET_REGION_INFO */
typedef struct VfuRegionInfo {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t cap_offset;
    uint64_t size;
    uint64_t offset;
} VfuRegionInfo;
#define VFU_REGION_FLAG_READ    (1u << 0)
#define VFU_REGION_FLAG_WRITE   (1u << 1)
#define VFU_REGION_FLAG_MMAP    (1u << 2)
#define VFU_REGION_FLAG_CAPS    (1u << 3)

typedef struct VfuCapHeader {
    uint16_t id;
    uint16_t version;
    uint32_t next;
} VfuCapHeader;
#define VFU_CAP_SPARSE_MMAP     1

/* The sparse-mmap capability: header, area count, the areas. */
typedef struct VfuSparseMmap {
    VfuCapHeader header;
    uint32_t nr_areas;
    uint32_t reserved;
} VfuSparseMmap;

typedef struct VfuSparseArea {
    uint64_t offset;        /* from the start of the region */
    uint64_t size;
} VfuSparseArea;

/* PCI region and IRQ indexes (VFIO's). */
enum {
    VFU_PCI_BAR0 = 0,
    VFU_PCI_ROM = 6,
    VFU_PCI_CONFIG = 7,
    VFU_PCI_VGA = 8,
    VFU_PCI_NUM_REGIONS = 9,
};
enum {
    VFU_PCI_INTX_IRQ = 0,
    VFU_PCI_MSI_IRQ = 1,
    VFU_PCI_MSIX_IRQ = 2,
    VFU_PCI_ERR_IRQ = 3,
    VFU_PCI_REQ_IRQ = 4,
    VFU_PCI_NUM_IRQS = 5,
};

/* DEVICE_GET_IRQ_INFO */
typedef struct VfuIrqInfo {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t count;
} VfuIrqInfo;
#define VFU_IRQ_INFO_EVENTFD    (1u << 0)
#define VFU_IRQ_INFO_MASKABLE   (1u << 1)
#define VFU_IRQ_INFO_AUTOMASKED (1u << 2)
#define VFU_IRQ_INFO_NORESIZE   (1u << 3)

/* DEVICE_SET_IRQS, then data (bools) or fds beside it. */
typedef struct VfuIrqSet {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t start;
    uint32_t count;
} VfuIrqSet;
#define VFU_IRQ_SET_DATA_NONE       (1u << 0)
#define VFU_IRQ_SET_DATA_BOOL       (1u << 1)
#define VFU_IRQ_SET_DATA_EVENTFD    (1u << 2)
#define VFU_IRQ_SET_DATA_MASK       0x7u
#define VFU_IRQ_SET_ACTION_MASK     (1u << 3)
#define VFU_IRQ_SET_ACTION_UNMASK   (1u << 4)
#define VFU_IRQ_SET_ACTION_TRIGGER  (1u << 5)
#define VFU_IRQ_SET_ACTION_MASK_ALL 0x38u

/* REGION_READ / REGION_WRITE, then data. */
typedef struct VfuRegionAccess {
    uint64_t offset;
    uint32_t region;
    uint32_t count;
} VfuRegionAccess;

/* REGION_WRITE_MULTI: u64 count, then this many. */
typedef struct VfuRegionWrite1 {
    uint64_t offset;
    uint32_t region;
    uint32_t count;
    uint8_t data[8];
} VfuRegionWrite1;

_Static_assert(sizeof(VfuHeader) == VFU_HDR_SIZE, "header");
_Static_assert(sizeof(VfuDmaMap) == 32, "dma map");
_Static_assert(sizeof(VfuDmaUnmap) == 24, "dma unmap");
_Static_assert(sizeof(VfuRegionInfo) == 32, "region info");
_Static_assert(sizeof(VfuSparseMmap) == 16, "sparse mmap");
_Static_assert(sizeof(VfuSparseArea) == 16, "sparse area");
_Static_assert(sizeof(VfuIrqSet) == 20, "irq set");
_Static_assert(sizeof(VfuRegionAccess) == 16, "region access");
_Static_assert(sizeof(VfuRegionWrite1) == 24, "write multi");

#endif /* DEXT_VFIO_USER_PROTO_H */
