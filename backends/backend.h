/*
 * SPDX-License-Identifier: MIT
 *
 * Device backends: what the dext core drives when it touches "the PCI
 * device".  One backend per kind of device (emulated edu, emulated
 * ivshmem-like, read-only sysfs host device, Linux VFIO), each a table of
 * hooks in the manner of pciutils' struct pci_methods.
 *
 * The core owns the DextDevice; a backend's create function fills in the
 * description and @ops.  The device reaches back into the core (DMA
 * through the IOMMU, raising an MSI, logging) only through @host, so a
 * backend can be unit-tested with a fake host.
 */

#ifndef LIBDEXT_BACKEND_H
#define LIBDEXT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libdext/ioreturn.h"
#include "support/dext-call.h"
#include "support/log.h"

#define DEXT_NUM_BARS        6
#define DEXT_CONFIG_SIZE     256
#define DEXT_CONFIG_SIZE_EXT 4096

/* PCI BAR low-bit encoding, as GetBARInfo reports it. */
#define DEXT_BAR_TYPE_IO       0x01
#define DEXT_BAR_TYPE_MEM64    0x04
#define DEXT_BAR_TYPE_PREFETCH 0x08


typedef struct DextDevice DextDevice;

/**
 * struct DextBar - one BAR as the backend describes it.
 * @size: bytes; 0 = unused (also for the upper half of a 64-bit BAR)
 * @type: DEXT_BAR_TYPE_* bits
 * @mappable: plain loads/stores on a mapping reach the device (shared
 *            memory or a real BAR); false for trapping register BARs
 */
typedef struct DextBar {
    uint64_t size;
    uint8_t type;
    bool mappable;
} DextBar;

/**
 * struct DextDeviceHost - the core's services to a device.  Set by
 * whoever hosts the device before any hook runs.  All may be called from
 * any thread, including device threads, with backend locks held: they
 * never call back into the device's hooks.
 */
typedef struct DextDeviceHost {
    /**
     * @dma_read: device reads @len bytes at bus address @addr.  Returns
     * kIOReturnSuccess, or kIOReturnNotPermitted when any byte is not
     * mapped (an IOMMU fault, logged by the host; @buf is then zeroed).
     */
    IOReturn (*dma_read)(void *opaque, uint64_t addr, void *buf, size_t len);
    /** @dma_write: device writes; faults as @dma_read, nothing written. */
    IOReturn (*dma_write)(void *opaque, uint64_t addr, const void *buf,
                          size_t len);
    /** @raise_msi: the device sends MSI/MSI-X message @vector. */
    void (*raise_msi)(void *opaque, uint32_t vector);
    /** @log: one line from the device (a guest error, say). */
    void (*log)(void *opaque, int level, const char *msg);
    void *opaque;
} DextDeviceHost;

/**
 * struct DextDeviceOps - the hooks of one backend.
 *
 * Hooks may run concurrently from several client threads; the backend
 * serialises its own state.  Widths are 1, 2, 4 (config) or 1, 2, 4, 8
 * (MMIO); the core has already checked width, natural alignment and range
 * against @config_size and the BAR size, so hooks see only valid
 * accesses.  A NULL optional hook means "not supported".
 */
typedef struct DextDeviceOps {
    /** @name: backend name, e.g. "edu". */
    const char *name;

    /** @config_read: mandatory.  Raw config space, BARs unsynthesized. */
    IOReturn (*config_read)(DextDevice *dev, uint32_t off, uint32_t width,
                            uint32_t *val);
    /** @config_write: optional (kIOReturnNotWritable if NULL). */
    IOReturn (*config_write)(DextDevice *dev, uint32_t off, uint32_t width,
                             uint32_t val);

    /** @mmio_read: optional.  @bar is the BAR number, not memoryIndex. */
    IOReturn (*mmio_read)(DextDevice *dev, int bar, uint64_t off,
                          uint32_t width, uint64_t *val);
    /** @mmio_write: optional. */
    IOReturn (*mmio_write)(DextDevice *dev, int bar, uint64_t off,
                           uint32_t width, uint64_t val);

    /**
     * @map_bar: optional; only called for BARs marked mappable.  Fills
     * @out with a new fd the caller owns.
     */
    IOReturn (*map_bar)(DextDevice *dev, int bar, DextMemory *out);

    /** @open: optional; the first claim.  May fail the claim. */
    IOReturn (*open)(DextDevice *dev);
    /** @close: optional; the last claim released. */
    void (*close)(DextDevice *dev);

    /** @reset_function: optional; function-level reset. */
    IOReturn (*reset_function)(DextDevice *dev);
    /** @reset_bus: optional; hot (secondary bus) reset, the fallback. */
    IOReturn (*reset_bus)(DextDevice *dev);

    /** @destroy: mandatory; stop device threads and free @dev->priv. */
    void (*destroy)(DextDevice *dev);
} DextDeviceOps;

/**
 * struct DextDevice - one PCI function.
 * @ops: the backend
 * @priv: backend state
 * @host: set by the host before use
 * @name: short human name ("edu", "0000:00:03.0")
 * @bus, @dev, @fn: the address the dext reports
 * @vendor_id, @device_id, @class_code, @revision: identity
 * @config_size: 256 or 4096
 * @dma_mask: highest bus address the device can emit (e.g. 2^28 - 1)
 * @bars: BAR descriptions
 * @hardware: a real device, not an emulation: what clients do reaches
 *            hardware, so the core lets them change it (config writes,
 *            MMIO, BAR mappings, DMA, interrupts, reset) only where the
 *            operator allowed it (@allow_writes or
 *            dext_core_allow_writes()), and otherwise refuses those calls
 *            with kIOReturnNotPermitted before any hook runs.  Backends
 *            rely on that and do not check again.
 * @allow_writes: the operator's consent to writes, given with the device
 *            (the host backend's "writable=on"); only read with @hardware
 * @no_dma: the backend cannot let the device reach client memory (a host
 *          device without VFIO): DMA calls get kIOReturnUnsupported and a
 *          claim leaves Bus Master Enable alone
 * @no_irq: the backend cannot deliver the device's MSIs:
 *          SetupInterrupts gets kIOReturnUnsupported
 */
struct DextDevice {
    const DextDeviceOps *ops;
    void *priv;
    DextDeviceHost host;
    char name[32];
    uint8_t bus, dev, fn;
    uint16_t vendor_id, device_id;
    uint32_t class_code;
    uint8_t revision;
    uint32_t config_size;
    uint64_t dma_mask;
    DextBar bars[DEXT_NUM_BARS];
    bool hardware;
    bool allow_writes;
    bool no_dma;
    bool no_irq;
};

/* Helpers every backend uses, in backends/device.c. */

/**
 * dext_device_free() - destroy a device: calls ops->destroy, then free()s
 * @dev itself, so backends allocate DextDevice with malloc/calloc.
 * NULL is ignored.
 */
void dext_device_free(DextDevice *dev);

/**
 * dext_device_logf() - log one line through the device's host
 * @dev: the device; its host adds the device name as a prefix
 * @level: DEXT_LOG_*
 * @fmt: printf format, no trailing newline
 *
 * Guest errors (bad register access, DMA out of range) go here at
 * DEXT_LOG_WARNING; they are never fatal.
 */
void dext_device_logf(DextDevice *dev, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * dext_memfd_create() - shared memory that may be handed to a client
 * @name: shown in /proc/PID/maps
 * @size: bytes, fixed for the memory's life
 *
 * The memory is sealed against shrinking and growing (and against
 * further seals) before anyone else can hold it: a client given the fd
 * can never truncate it and make a mapping of ours fault with SIGBUS.
 *
 * Return: a close-on-exec fd, or -1 with errno set.
 */
int dext_memfd_create(const char *name, uint64_t size);

/**
 * dext_device_for_each_option() - walk "key=value,key=value" options
 * @options: the text after a device name's comma; NULL or "" is no options
 * @apply: called once per option, in order; returns kIOReturnSuccess or
 *         kIOReturnBadArgument for a key or value it does not accept
 * @opaque: passed to @apply
 *
 * Every backend spells its options the same way; this is the one parser.
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for an item without '='
 * or the first error from @apply; kIOReturnNoMemory.
 */
IOReturn dext_device_for_each_option(const char *options,
                                     IOReturn (*apply)(void *opaque,
                                                       const char *key,
                                                       const char *value),
                                     void *opaque);

/* Devices by spec, in backends/backend.c (above every backend). */

/**
 * dext_device_create() - create a backend device by spec
 * @spec: "NAME[,OPTION=VALUE...][@BB:DD.F]", e.g. "edu",
 *        "edu,dma_mask=0xffffffff", "edu,bdf=00:04.0"; "@BB:DD.F" is
 *        shorthand for a trailing ",bdf=BB:DD.F"
 * @out: receives a new device (free with dext_device_free())
 *
 * Return: kIOReturnSuccess; kIOReturnNotFound for an unknown device
 * name; kIOReturnBadArgument for a malformed option.
 */
IOReturn dext_device_create(const char *spec, DextDevice **out);

/**
 * typedef DextDeviceSink - takes each device dext_device_create_each() makes
 * @opaque: the caller's
 * @dev: a new device, owned by the sink from now on
 *
 * Return: kIOReturnSuccess to go on; any other code stops the walk.
 */
typedef IOReturn DextDeviceSink(void *opaque, DextDevice *dev);

/**
 * dext_device_create_each() - create every device a spec names
 * @spec: as dext_device_create(); besides, "host" without a bdf option or
 *        with "bdf=all" names every PCI function of domain 0000 in sysfs
 * @sink: receives each device in turn
 * @opaque: passed to @sink
 *
 * Return: kIOReturnSuccess; dext_device_create()'s errors;
 * kIOReturnNotFound when sysfs has no PCI bus; @sink's first error.
 */
IOReturn dext_device_create_each(const char *spec, DextDeviceSink *sink,
                                 void *opaque);

/* Backend constructors, each in its own file. */
IOReturn dext_edu_create(const char *options, DextDevice **out);

/**
 * dext_host_create() - a real PCI function, through sysfs (host-sysfs.c)
 * @options: "bdf=[0000:]BB:DD.F" (required), "writable=on|off" (default
 *           off: the device is read-only), "sysfs=DIR" (default
 *           /sys/bus/pci/devices)
 * @out: receives the device
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a bad option or a
 * domain other than 0000; kIOReturnNotFound if sysfs has no such
 * function; kIOReturnNoDevice if it reads as all ones;
 * kIOReturnNotPrivileged if its config file cannot be opened.
 */
IOReturn dext_host_create(const char *options, DextDevice **out);

/**
 * dext_host_create_each() - dext_host_create() for one or every function
 * @options: as dext_host_create(); no bdf or "bdf=all" walks every
 *           domain-0000 function in bus/device/function order, skipping
 *           functions that read as all ones (writable=on is then refused:
 *           writes must name their device)
 * @sink: receives each device
 * @opaque: passed to @sink
 *
 * Return: as dext_device_create_each().
 */
IOReturn dext_host_create_each(const char *options, DextDeviceSink *sink,
                               void *opaque);

/**
 * dext_ivshmem_create() - an emulated ivshmem device (backends/ivshmem.c)
 * @options: "vectors=N" (1..256, default 256), "size=BYTES" (power of
 *           two, 4K..1G, K/M/G suffixes, default 4M), "bdf=BB:DD.F"
 *           (default 00:04.0)
 * @out: receives the device
 *
 * Return: kIOReturnSuccess, kIOReturnBadArgument for a bad option.
 */
IOReturn dext_ivshmem_create(const char *options, DextDevice **out);

#endif /* LIBDEXT_BACKEND_H */
