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
 * @local_only: mappable only by a client in the core's own process: the
 *              only fd behind it grants more than the BAR (a VFIO device
 *              fd also grants DMA mapping, reset and interrupt control),
 *              so it never leaves the process; other clients get
 *              kIOReturnUnsupported and use MMIO calls
 */
typedef struct DextBar {
    uint64_t size;
    uint8_t type;
    bool mappable;
    bool local_only;
} DextBar;

/**
 * struct DextDeviceHost - the core's services to a device (its upcalls).
 *
 * Set by whoever hosts the device before any hook runs.  Each may be
 * called from any thread, device threads included, from inside a hook
 * and with backend locks held: none calls back into the device's hooks,
 * and none takes a lock a hook may run under (they take only the core's
 * DMA or interrupt lock, which are below every backend lock in the lock
 * order, core/core-internal.h).  None blocks on a client: device DMA
 * reaches client memory with no lock held, and an interrupt completes
 * with a send that cannot block.
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
    /** @log: one line from the device (a guest error, say); rate-limited. */
    void (*log)(void *opaque, int level, const char *msg);
    void *opaque;
} DextDeviceHost;

/**
 * struct DextDeviceOps - the hooks of one backend.
 *
 * Every hook but @destroy may run concurrently with the others, from
 * several client threads; the backend serialises its own state.  Widths
 * are 1, 2, 4 (config) or 1, 2, 4, 8 (MMIO); the core has already checked
 * width, natural alignment and range against @config_size and the BAR
 * size, so hooks see only valid accesses.  The core also applies the
 * write policy (DextDevice.hardware) before any hook runs: a hook that
 * changes the device is never called for a device clients may not
 * change, and backends do not check again.
 *
 * "Core locks" below are those of core/core-internal.h.  A hook that
 * runs under CoreDevice.lock holds up every claim, interrupt setup,
 * reset, BAR mapping, Terminate and status call on that device, so it
 * must not wait for a client or for anything that waits for one; a
 * short wait for the hardware (a config cycle or a reset through sysfs)
 * is allowed.
 *
 * Most hooks are optional.  The emulated backends leave the "real
 * device" group (open, close, terminate, reset_bus, irq_enable,
 * irq_disable, dma_map, dma_unmap) NULL: the core then programs MSI/MSI-X
 * through config space and the MSI-X table, and device DMA goes through
 * the core's IOMMU model (DextDeviceHost.dma_read/dma_write).  A backend
 * over hardware behind a real IOMMU (VFIO) sets them.
 */
typedef struct DextDeviceOps {
    /** @name: backend name, e.g. "edu"; for logs only. */
    const char *name;

    /**
     * @config_read: mandatory.  Read raw config space, BARs as the
     * device has them.  Runs with no core lock held (config reads,
     * adding the device) or under CoreDevice.lock (a claim's command
     * register, reset's save, interrupt setup and teardown).  May sleep
     * briefly for the hardware.  Returns kIOReturnSuccess with *@val
     * set, or the error the client gets.
     */
    IOReturn (*config_read)(DextDevice *dev, uint32_t off, uint32_t width,
                            uint32_t *val);
    /**
     * @config_write: optional (NULL: the core answers
     * kIOReturnNotWritable).  Write config space.  Runs as @config_read
     * does; on a device clients may change only.  Returns
     * kIOReturnSuccess or the error the client gets.
     */
    IOReturn (*config_write)(DextDevice *dev, uint32_t off, uint32_t width,
                             uint32_t val);

    /**
     * @mmio_read: optional (NULL: kIOReturnUnsupported).  One read of
     * @width bytes at @off of BAR @bar (the BAR number, not the
     * memoryIndex), while some session holds a claim, on a device clients
     * may change.  Runs with no core lock held.  May sleep briefly.
     * Returns kIOReturnSuccess with *@val set, or the client's error.
     */
    IOReturn (*mmio_read)(DextDevice *dev, int bar, uint64_t off,
                          uint32_t width, uint64_t *val);
    /**
     * @mmio_write: optional (NULL: kIOReturnUnsupported).  One write, as
     * @mmio_read.  Runs with no core lock held (MMIOWrite), or under
     * CoreDevice.lock when the core programs an MSI-X table (interrupt
     * setup, reset).  Returns kIOReturnSuccess or the client's error.
     */
    IOReturn (*mmio_write)(DextDevice *dev, int bar, uint64_t off,
                           uint32_t width, uint64_t val);

    /**
     * @map_bar: optional (NULL: kIOReturnUnsupported).  Memory behind
     * BAR @bar, which is marked mappable, on a device clients may change.
     * Runs under CoreDevice.lock; must not block.  Returns
     * kIOReturnSuccess with @out filled in (a new fd the caller owns;
     * writable if a mapping may store to it), or the client's error.
     */
    IOReturn (*map_bar)(DextDevice *dev, int bar, DextMemory *out);

    /**
     * @reset_function: optional (NULL: ResetDevice answers
     * kIOReturnUnsupported).  Function-level reset, on a device clients
     * may change.  Runs under CoreDevice.lock, which keeps claims and
     * interrupt setup out while the core saves and restores config
     * space around it; may sleep for the reset itself, never for a
     * client (abort device DMA in flight rather than wait for it).
     * Returns kIOReturnSuccess or the client's error.
     */
    IOReturn (*reset_function)(DextDevice *dev);

    /**
     * @reset_bus: optional (NULL: no fallback).  A hot reset of the bus
     * the function sits on, which ResetDevice tries when @reset_function
     * is NULL or answers kIOReturnUnsupported (the contract's FLR -> hot
     * reset fallback).  Runs as @reset_function.  Returns
     * kIOReturnSuccess or the client's error.
     */
    IOReturn (*reset_bus)(DextDevice *dev);

    /**
     * @open: optional.  The first claim is being taken: make the device
     * ready for a driver.  Runs under CoreDevice.lock, before the core
     * turns on memory decode and bus mastering.  May sleep briefly for
     * the hardware.  Returns kIOReturnSuccess, or the error the claim
     * fails with.
     */
    IOReturn (*open)(DextDevice *dev);
    /**
     * @close: optional.  The last claim was released, after that
     * session's interrupts and DMA were torn down: quiesce the device so
     * that nothing it does reaches memory or raises interrupts until the
     * next @open.  Runs under CoreDevice.lock; may sleep briefly for the
     * hardware.  Returns nothing: the claim is gone whatever happens.
     */
    void (*close)(DextDevice *dev);
    /**
     * @terminate: optional.  A client terminated the device: give it
     * back to the host for good (VFIO: close the device, group and
     * container).  Runs under CoreDevice.lock, once; afterwards only
     * @dma_unmap, @irq_disable and @destroy are called, and must cope
     * with the device being gone.  Returns nothing.
     */
    void (*terminate)(DextDevice *dev);

    /**
     * @irq_enable: optional (NULL: the core enables MSI-X or MSI in
     * config space and programs the MSI-X table itself).  Turn on
     * message delivery for the device's MSI-X vectors, else its MSI
     * vectors, and from then on call host.raise_msi(v) for each message
     * of vector v.  Runs under CoreDevice.lock each time a session sets
     * up interrupts: the first call enables delivery, later ones (until
     * @irq_disable) find it enabled and report the same count.  May sleep
     * briefly.  Returns kIOReturnSuccess with *@nvec set to the vectors
     * enabled (at least 1), or the error.
     */
    IOReturn (*irq_enable)(DextDevice *dev, uint32_t *nvec);
    /**
     * @irq_disable: with @irq_enable.  Stop delivery; no raise_msi call
     * is made once it returns.  Runs under CoreDevice.lock when the last
     * session releases its interrupts.  Returns nothing.
     */
    void (*irq_disable)(DextDevice *dev);

    /**
     * @dma_map: optional (NULL: device DMA goes through the host's
     * dma_read/dma_write).  The device reaches memory itself through an
     * IOMMU: make bus range [@iova, @iova + @len) reach @len bytes at
     * @host in this process.  @iova, @host and @len are multiples of the
     * host page size.  Runs with no core lock held: pinning the memory
     * may fault it in, and it may belong to a client.  Returns
     * kIOReturnSuccess; kIOReturnNoResources when the pin limit
     * (RLIMIT_MEMLOCK) is reached; kIOReturnVMError for memory that
     * cannot be pinned; kIOReturnNoDevice once terminated.
     */
    IOReturn (*dma_map)(DextDevice *dev, uint64_t iova, void *host,
                        uint64_t len);
    /**
     * @dma_unmap: with @dma_map.  Undo one @dma_map exactly.  Runs with
     * no core lock held, before the core lets the bus range be reused.
     * Returns nothing.
     */
    void (*dma_unmap)(DextDevice *dev, uint64_t iova, uint64_t len);

    /**
     * @destroy: mandatory.  Stop device threads and free @dev->priv.
     * Runs with no core lock held, once, when no other hook is running
     * or can start (the device is being freed); may block until device
     * threads have stopped.  Upcalls made until it returns must still
     * work.
     */
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
 * dext_device_bad_option() - the option a walk of this thread failed on
 *
 * Set by dext_device_for_each_option() when it fails: the item as given
 * ("size=3M"; truncated past 127 bytes), for an error message that names
 * it.
 *
 * Return: that item, or "" if the thread's last walk succeeded or
 * failed otherwise (out of memory).
 */
const char *dext_device_bad_option(void);

/**
 * dext_errno_ioreturn() - the IOReturn a client gets for a system error
 * @err: an errno value from a real device's file (sysfs, VFIO)
 *
 * Return: NotPrivileged (EACCES, EPERM), Unsupported (ENOENT, ENOTTY,
 * EOPNOTSUPP), NoDevice (ENODEV, ENXIO), NoMemory, NoResources (ENOSPC),
 * BadArgument (EINVAL), Busy (EBUSY), else IOError.
 */
IOReturn dext_errno_ioreturn(int err);

/**
 * dext_device_set_error() - say why creating a device failed
 * @fmt: printf format: what is wrong and what the operator can do about
 *       it, possibly several lines
 *
 * For setup mistakes a return code cannot explain (a device bound to the
 * wrong driver, say).  Kept per thread until the next creation starts.
 */
void dext_device_set_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/**
 * dext_device_error() - why this thread's last dext_device_create() failed
 *
 * Return: the text set by the backend, or "" when it set none.
 */
const char *dext_device_error(void);

/**
 * dext_header_bars() - how many BAR registers a config header has
 * @header_type: the Header Type register (the multi-function bit ignored)
 *
 * Return: 6 (endpoint), 2 (PCI-to-PCI bridge), 1 (CardBus bridge), 0 for
 * an unknown layout.
 */
static inline int dext_header_bars(uint8_t header_type)
{
    switch (header_type & 0x7f) {
    case 0:
        return 6;
    case 1:                         /* PCI-to-PCI bridge */
        return 2;
    case 2:                         /* CardBus bridge */
        return 1;
    default:
        return 0;
    }
}

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
 * dext_vfio_create() - a real PCI function bound to vfio-pci (vfio.c)
 * @options: "host=[DDDD:]BB:DD.F" (required), "bdf=BB:DD.F" (the address
 *           clients see; default the host address), "dma_mask=N" (highest
 *           bus address the device may be given; default 0xffffffff, and
 *           never past the IOMMU's first usable range)
 * @out: receives the device
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a bad option;
 * kIOReturnNotFound without such a function; kIOReturnNotReady when it
 * is not bound to vfio-pci or its group is not viable;
 * kIOReturnUnsupported without an IOMMU; kIOReturnNotPrivileged when
 * /dev/vfio is not ours to open; kIOReturnBusy when another process holds
 * the group.  Each failure also sets dext_device_error().
 */
IOReturn dext_vfio_create(const char *options, DextDevice **out);

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

/**
 * struct DextDump - one function's config space from an lspci hex dump
 * @cfg: the bytes; those the dump lacks are zero
 * @len: one past the highest byte the dump gives
 * @bar_size: BAR sizes from "lspci -v" Region lines; 0 where not shown
 * @has_addr: the device line gave @bus, @dev, @fn (always so on success)
 * @bus, @dev, @fn: the address on the device line
 */
typedef struct DextDump {
    uint8_t cfg[DEXT_CONFIG_SIZE_EXT];
    uint32_t len;
    uint64_t bar_size[DEXT_NUM_BARS];
    bool has_addr;
    uint8_t bus, dev, fn;
} DextDump;

/**
 * dext_dump_parse() - parse lspci's hex dump format (backends/dump.c)
 * @text: the dump, not necessarily NUL-terminated, never trusted
 * @len: bytes at @text
 * @pick: "BB:DD.F" of the device to take from a dump of several; NULL or
 *        "" when the dump must hold exactly one
 * @out: receives the device
 * @bad_line: if not NULL, receives the 1-based number of the first
 *            malformed line (0 when the failure is not a line's)
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a malformed line,
 * a bad @pick or several devices without @pick; kIOReturnNotFound when
 * no device matches or it has less than the 64-byte header;
 * kIOReturnNoMemory.
 */
IOReturn dext_dump_parse(const char *text, size_t len, const char *pick,
                         DextDump *out, uint32_t *bad_line);

/**
 * dext_dump_create() - a recorded function, served read-only (dump.c)
 * @options: "file=PATH" (required: lspci -x/-xxx/-xxxx output, with or
 *           without -v), "pick=BB:DD.F" (which device of a dump holding
 *           several), "bdf=BB:DD.F" (the address served; default the
 *           dump's), "bar0=SIZE".."bar5=SIZE" (BAR sizes, K/M/G
 *           suffixes; default from the dump's "Region" lines, else unused)
 * @out: receives the device
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a bad option or a
 * malformed dump; kIOReturnNotFound for a missing file or device;
 * kIOReturnNotPrivileged, kIOReturnNotReadable if the file cannot be
 * read; kIOReturnNoDevice if the identity reads as all ones or zero.
 */
IOReturn dext_dump_create(const char *options, DextDevice **out);

#endif /* LIBDEXT_BACKEND_H */
