/*
 * SPDX-License-Identifier: MIT
 *
 * libdext: client API for the VFIOUserPCIDriver DriverKit extension.
 *
 * The first part of this header is the API of QEMU's Apple VFIO backend
 * client (apple-dext-client.h), kept identical in names, signatures and
 * IOReturn codes so existing callers build and link unchanged.  The second
 * part ("libdext extensions") adds what those callers lacked.
 *
 * Where the calls go is chosen per connection by a *target* string:
 *
 *   "iokit"            the real dext through IOKit (macOS only)
 *   "unix:PATH"        dextd listening on the UNIX socket PATH; options
 *                      may follow: "unix:PATH,timeout=MS,connect-timeout=MS"
 *                      and ",poll" or ",poll=US" (see below)
 *   "inproc:DEVICES"   a dext core running inside this process, serving
 *                      emulated devices, e.g. "inproc:edu" (not in a
 *                      libdext built with -Dinproc=disabled)
 *
 * The functions of QEMU's apple-dext-client API use the default target:
 * $DEXT_TARGET if set, else
 * "iokit" on macOS, else "unix:" + apple_dext_default_socket_path().
 *
 * Every function returning kern_return_t returns kIOReturnSuccess or an
 * IOReturn code; apple_dext_strerror() names it.  Common codes:
 *
 *   kIOReturnBadArgument   NULL/closed connection, NULL out-pointer,
 *                          bad width/offset/index/size
 *   kIOReturnNotOpen       the call needs a claim (apple_dext_claim())
 *   kIOReturnNotReady      interrupts not set up, or no DMA buffer
 *   kIOReturnNotResponding the dext/daemon went away; the connection is
 *                          dead and every later call fails the same way
 *   kIOReturnUnsupported   the dext does not implement the selector
 *   kIOReturnTimeout       (unix) dextd did not answer in time; see below
 *   kIOReturnIPCError      (unix) dextd's answer was not a reply to the
 *                          call (malformed, wrong type or sequence number,
 *                          more outputs than asked for, wrong fds): the
 *                          channel it came on is closed, as for a timeout
 *   kIOReturnNotPermitted  a forked child's call on a connection its
 *                          parent opened (see "fork()" below); also a
 *                          daemon that refuses this user
 *
 * Timeouts (unix transport): every wait for dextd is bounded.  Connecting
 * (connect, greeting, opening the user client, listing, status) waits at
 * most the connect timeout for each step, 5 s by default; each call on
 * an open connection at most the call timeout, 30 s by default.  The
 * target options ",timeout=MS" and ",connect-timeout=MS" set them per
 * target, else $DEXT_TIMEOUT_MS and $DEXT_CONNECT_TIMEOUT_MS; 0 means
 * wait forever.  A wait that times out answers kIOReturnTimeout, and
 * then the dext may still be executing the call (a write may yet land,
 * a reset may yet happen): the call's channel is closed, never reused,
 * so its late reply cannot be taken for another call's.  A connection
 * that loses its last channel so loses its session too (dextd releases
 * its claim, DMA and interrupts when it sees the hang-up), and its later
 * calls answer kIOReturnNotResponding: disconnect it and connect again.
 * The in-process and IOKit transports do not time out.
 *
 * Polled calls (unix transport): the target option ",poll" (a spin
 * budget of 200 us) or ",poll=US" (1 to 1000000), else $DEXT_POLL_US,
 * gives a connection a call ring in memory shared with dextd: a
 * synchronous call without an fd that names no memory goes through it
 * when no other thread of the connection is using it, each side polling
 * for up to the budget before it sleeps.  Lower latency, paid in CPU
 * time (both sides spin while a call is in flight and up to the budget
 * after); for one latency-critical caller.  Calls that do not take the
 * ring go through the socket as before.  A ring call that times out
 * answers kIOReturnTimeout as above; the ring is then dropped and later
 * calls take the socket.  An out-of-range budget: kIOReturnBadArgument.
 *
 * Access model: a connection that has not claimed the device may look but
 * not change it: identity, config reads, BAR info, MMIO reads (while the
 * device is claimed by someone), read-only BAR mappings, status, and its
 * own DMA regions, buffer and interrupt state.  Config writes, MMIO
 * writes, writable BAR mappings and Terminate need a claim.  That is the
 * rule of libdext's dexts (dextd, the in-process core); the macOS dext,
 * and dextd started with --unclaimed-writes, let any connection write
 * (docs/reliability.md, "Access model").
 *
 * Thread safety: every function may be called from any thread, and calls
 * on one connection from several threads run concurrently.
 *
 * fork(): a connection belongs to the process that connected, as an
 * io_connect_t does under IOKit, whose Mach port rights a child does not
 * inherit.  In a forked child every call on a connection its parent
 * opened, whatever the target, answers kIOReturnNotPermitted at once
 * without reaching the dext (the first such call of each connection
 * logs a warning saying so), and so does rearming a notification made
 * on one; apple_dext_disconnect() there releases only the child's copies
 * of its file descriptors and mappings, and the parent's connection goes
 * on, as apple_dext_interrupt_notify_destroy() there leaves the parent's
 * notification (and its thread) alone.  The child connects anew for a
 * connection of its own (to an "inproc:" target: a dext core of its
 * own), except over "iokit" once its parent had connected there: IOKit's
 * notifications run on libdispatch and its registry is reached through
 * CoreFoundation, neither of which a child may use before exec(), so
 * there connecting and listing answer kIOReturnNotPermitted.  A fork() waits for another thread's connect or disconnect
 * bookkeeping and for a running log handler, so the child never
 * inherits the library's locks held.
 */

#ifndef APPLE_DEXT_CLIENT_H
#define APPLE_DEXT_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "libdext/ioreturn.h"
#include "libdext/status-counters.h"
#include "libdext/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define APPLE_DEXT_EXPORT __attribute__((visibility("default")))
#else
#define APPLE_DEXT_EXPORT
#endif

/* ---------------------------------------------------------------------
 * Seed API
 * ------------------------------------------------------------------- */

/**
 * apple_dext_connect() - open a user client on the device at a PCI BDF
 * @bus: PCI bus number
 * @device: PCI device (slot) number
 * @function: PCI function number
 *
 * Walks every VFIOUserPCIDriver service of the default target, opens each
 * and keeps the one whose GetIdentity reports @bus:@device.@function.
 *
 * Return: a connection handle, or IO_OBJECT_NULL when no served device has
 * that address or the target cannot be reached.
 */
APPLE_DEXT_EXPORT io_connect_t apple_dext_connect(uint8_t bus, uint8_t device,
                                                  uint8_t function);

/**
 * apple_dext_disconnect() - close a connection
 * @connection: handle from apple_dext_connect(); IO_OBJECT_NULL is ignored
 *
 * Unmaps every mapping made through @connection and closes the user
 * client; the dext then releases, in order, its interrupt sources, DMA
 * regions, DMA buffer and share of the claim.  Notification objects made
 * on @connection stop receiving wake-ups but must still be destroyed.
 *
 * In a forked child, for a connection the parent opened: closes the
 * child's copies of its file descriptors and unmaps its copies of the
 * mappings, and nothing more: the user client, the claim and the rest
 * stay the parent's.  Never waits for the dext then.
 */
APPLE_DEXT_EXPORT void apple_dext_disconnect(io_connect_t connection);

/**
 * apple_dext_claim() - take a share of the device claim
 * @connection: open connection
 *
 * The claim is shared and reference counted.  The first claimer opens the
 * device, which sets Memory Space Enable and Bus Master Enable.  Claiming
 * twice on one connection succeeds and changes nothing.  Claimers may
 * change the device (see "Access model" above) and trust each other: the
 * device's DMA reaches every claimer's registered memory.
 *
 * Return: kIOReturnSuccess, kIOReturnBadArgument, or the open's error.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_claim(io_connect_t connection);

/**
 * apple_dext_register_dma() - make client memory reachable by device DMA
 * @connection: open, claimed connection
 * @iova: caller-chosen key for the region (e.g. the guest IOVA); unique
 *        per connection
 * @client_va: address of the memory in this process; must stay mapped
 *             until the region is unregistered
 * @size: region size in bytes
 * @out_bus_addr: receives the bus address of the first segment (may be NULL)
 * @out_bus_len: receives the length of the first segment (may be NULL)
 *
 * The dext assigns bus addresses as the DART does: they are not @iova and
 * lie within the device's DMA mask.  The device must be programmed with
 * the returned bus address.  Regions over 1.5 GiB are split into chunks
 * mapped back to back; the first chunk's segment is reported.
 *
 * Through dextd, a device behind a real IOMMU (the vfio backend) reaches
 * only memory dextd can map and pin: register shared memory of tmpfs or
 * hugetlbfs (memfd_create(), shm_open(), a MAP_SHARED mapping of a file
 * there), whose file the library finds and passes along (keep its fd
 * open unless the process may read /proc/self/map_files).  The real
 * dext and emulated devices take any memory.
 *
 * Return: kIOReturnSuccess; kIOReturnNotOpen without a claim;
 * kIOReturnBadArgument for size 0, client_va 0 or a wrapping range;
 * kIOReturnStillOpen if @iova is registered already; kIOReturnNoSpace past
 * 65,536 regions or 128 chunks; kIOReturnNotAligned if a chunk cannot get
 * one contiguous bus segment (the bus space is fragmented);
 * kIOReturnNoResources if the device's bus address space is too small or
 * exhausted, or the pin limit (RLIMIT_MEMLOCK) is reached;
 * kIOReturnVMError if the memory is not mapped; kIOReturnUnsupported for
 * private memory through dextd on a device behind a real IOMMU, and
 * kIOReturnNotPermitted there for a file outside tmpfs and hugetlbfs (or
 * one opened read-only).
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_register_dma(io_connect_t connection,
                                                        uint64_t iova,
                                                        uint64_t client_va,
                                                        uint64_t size,
                                                        uint64_t *out_bus_addr,
                                                        uint64_t *out_bus_len);

/**
 * apple_dext_unregister_dma() - remove a DMA region
 * @connection: open connection
 * @iova: the key the region was registered with
 *
 * Return: kIOReturnSuccess, or kIOReturnNotFound if no region of this
 * connection starts at @iova.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_unregister_dma(io_connect_t connection,
                                                          uint64_t iova);

/**
 * apple_dext_probe_dma() - read a word through the dext's view of a region
 * @connection: open connection
 * @iova: the region's key
 * @offset: byte offset within the region
 * @out_word: receives the 64-bit little-endian word at @offset
 *
 * Proves the dext reaches the same pages as the client's mapping.
 *
 * Return: kIOReturnSuccess; kIOReturnNotFound for an unknown region;
 * kIOReturnOverrun if @offset + 8 exceeds the region.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_probe_dma(io_connect_t connection,
                                                     uint64_t iova,
                                                     uint64_t offset,
                                                     uint64_t *out_word);

/**
 * apple_dext_config_read() - read PCI configuration space
 * @connection: open connection
 * @offset: byte offset, naturally aligned for @width
 * @width: 1, 2 or 4
 * @out_value: receives the value
 *
 * Aligned 4-byte reads of the BAR registers (0x10-0x24) return only the
 * BAR's type bits, as the dext hides DART-assigned addresses; 0 for an
 * unused BAR or the upper half of a 64-bit BAR.
 *
 * Return: kIOReturnSuccess, or kIOReturnBadArgument for a bad width,
 * alignment or an offset past the end of config space.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_config_read(io_connect_t connection,
                                                       uint64_t offset,
                                                       uint64_t width,
                                                       uint64_t *out_value);

/**
 * apple_dext_config_write() - write PCI configuration space
 * @connection: open, claimed connection
 * @offset: byte offset, naturally aligned for @width
 * @width: 1, 2 or 4
 * @value: value to write (only the low @width bytes are used)
 *
 * Return: kIOReturnSuccess; kIOReturnNotOpen without a claim (checked
 * before the arguments; the macOS dext and dextd --unclaimed-writes do
 * not ask for one); kIOReturnBadArgument as for reads.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_config_write(io_connect_t connection,
                                                        uint64_t offset,
                                                        uint64_t width,
                                                        uint64_t value);

/**
 * apple_dext_config_read_block() - read a range of configuration space
 * @connection: open connection
 * @offset: starting byte offset
 * @buf: destination, @len bytes
 * @len: number of bytes
 *
 * Uses one round trip where the dext supports block reads, else the
 * sequence of dword reads and trailing byte reads QEMU's apple-dext-client
 * makes.  BAR registers
 * read as in apple_dext_config_read().
 *
 * Return: kIOReturnSuccess, or kIOReturnBadArgument if the range leaves
 * config space or @buf is NULL.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_config_read_block(io_connect_t connection,
                                                             uint64_t offset,
                                                             void *buf,
                                                             size_t len);

/**
 * apple_dext_get_bar_info() - describe a BAR
 * @connection: open connection
 * @bar: BAR index, 0-5
 * @out_mem_idx: receives the memory index for MMIO calls (may be NULL);
 *               this is not the BAR number
 * @out_size: receives the size in bytes (may be NULL)
 * @out_type: receives the PCI BAR low bits: bit 0 I/O, bits 2:1 = 10b for
 *            64-bit, bit 3 prefetchable (may be NULL)
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for @bar > 5;
 * kIOReturnNotFound for an unused BAR or the upper half of a 64-bit BAR.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_get_bar_info(io_connect_t connection,
                                                        uint8_t bar,
                                                        uint8_t *out_mem_idx,
                                                        uint64_t *out_size,
                                                        uint8_t *out_type);

/**
 * apple_dext_map_bar() - map a BAR into this process
 * @connection: open connection
 * @bar: BAR index, 0-5
 * @out_addr: receives the address of the mapping
 * @out_size: receives the size of the mapping
 * @out_type: receives the BAR type bits (may be NULL)
 *
 * Prefetchable BARs are mapped write-combined, others with the default
 * cache mode.  A connection that has not claimed may map a BAR only after
 * a claimer has mapped it, and then only read-only: the mapping is
 * PROT_READ (a store faults) and cannot be made writable (mprotect()
 * fails with EACCES), because the dext hands over a file opened read-only.
 * (The macOS dext and dextd --unclaimed-writes map it writable.)
 * Register BARs of emulated devices (edu BAR0) cannot be mapped, because
 * plain loads and stores could not reach the device model: they return
 * kIOReturnUnsupported and are reached through
 * apple_dext_mmio_read()/apple_dext_mmio_write().
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument; kIOReturnNotFound for an
 * unused BAR; kIOReturnNotOpen if no claimer has mapped it yet, or (rare)
 * if the dext cannot give this BAR to a connection without a claim
 * read-only; kIOReturnUnsupported for a BAR that cannot be mapped.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_map_bar(io_connect_t connection,
                                                   uint8_t bar,
                                                   mach_vm_address_t *out_addr,
                                                   mach_vm_size_t *out_size,
                                                   uint8_t *out_type);

/**
 * apple_dext_unmap_bar() - undo apple_dext_map_bar()
 * @connection: open connection
 * @bar: BAR index the mapping was made for
 * @addr: address returned by apple_dext_map_bar()
 *
 * Return: kIOReturnSuccess, or kIOReturnBadArgument if no mapping of that
 * BAR starts at @addr.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_unmap_bar(io_connect_t connection,
                                                     uint8_t bar,
                                                     mach_vm_address_t addr);

/**
 * apple_dext_mmio_read() - read a BAR register through the dext
 * @connection: open connection; it need not hold a claim itself
 * @mem_idx: memory index from apple_dext_get_bar_info()
 * @offset: byte offset within the BAR, naturally aligned
 * @width: 1, 2, 4 or 8
 * @out_value: receives the value
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a bad index, width,
 * alignment or range; kIOReturnNotOpen if nobody has claimed the device.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_mmio_read(io_connect_t connection,
                                                     uint8_t mem_idx,
                                                     uint64_t offset,
                                                     uint64_t width,
                                                     uint64_t *out_value);

/**
 * apple_dext_mmio_write() - write a BAR register through the dext
 * @connection: open, claimed connection
 * @mem_idx: memory index from apple_dext_get_bar_info()
 * @offset: byte offset within the BAR, naturally aligned
 * @width: 1, 2, 4 or 8
 * @value: value to write
 *
 * Return: kIOReturnSuccess; kIOReturnNotOpen without a claim (checked
 * before the arguments; the macOS dext and dextd --unclaimed-writes only
 * need the device claimed by someone); kIOReturnBadArgument as for
 * apple_dext_mmio_read().
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_mmio_write(io_connect_t connection,
                                                      uint8_t mem_idx,
                                                      uint64_t offset,
                                                      uint64_t width,
                                                      uint64_t value);

/**
 * apple_dext_setup_interrupts() - register the device's MSI/MSI-X vectors
 * @connection: open, claimed connection
 * @out_num_vectors: receives the number of vectors (may be NULL)
 *
 * The count comes from the MSI-X table size, else from MSI's multiple
 * message capability, capped at 256.  Each vector is one bit of the
 * pending bitmap (vector v is bit v % 64 of word v / 64).  All vectors
 * start enabled, none pending.
 *
 * Return: kIOReturnSuccess; kIOReturnNotOpen without a claim;
 * kIOReturnStillOpen on a second call; kIOReturnNotFound if the device
 * has no MSI or MSI-X capability.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_setup_interrupts(io_connect_t connection,
                                                            uint32_t *out_num_vectors);

/**
 * apple_dext_reset_device() - reset the device
 * @connection: open, claimed connection
 *
 * Function-level reset; if that fails, a hot (secondary bus) reset.  The
 * command register, BARs and MSI/MSI-X setup are restored afterwards;
 * DMA regions and interrupt state are kept.
 *
 * Return: kIOReturnSuccess; kIOReturnNotOpen without a claim; the
 * reset's error if both kinds fail.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_reset_device(io_connect_t connection);

/**
 * apple_dext_set_irq_mask() - choose which vectors may become pending
 * @connection: open connection with interrupts set up
 * @mask: 4 words, 256 bits; bit v set = vector v enabled
 *
 * A disabled vector that fires is dropped, not latched.
 *
 * Return: kIOReturnSuccess; kIOReturnNotReady before
 * apple_dext_setup_interrupts(); kIOReturnBadArgument for NULL @mask.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_set_irq_mask(io_connect_t connection,
                                                        const uint64_t mask[4]);

/**
 * apple_dext_read_pending_irqs() - read and clear the pending bitmap
 * @connection: open connection with interrupts set up
 * @pending: receives 4 words, one bit per vector (vector v is bit v % 64
 *           of word v / 64); every bit returned is cleared atomically
 *
 * One round trip to the dext (CheckInterrupt).  Vectors that fired several
 * times since the last read show as one bit.  See
 * apple_dext_drain_pending_irqs() for the variant without a round trip.
 *
 * Return: kIOReturnSuccess; kIOReturnNotReady before setup.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_read_pending_irqs(io_connect_t connection,
                                                             uint64_t pending[4]);

/** Opaque state for interrupt notification. */
typedef struct AppleDextInterruptNotify AppleDextInterruptNotify;

/**
 * apple_dext_interrupt_notify_create() - call a handler when interrupts arrive
 * @connection: open connection with interrupts set up
 * @handler_fn: called on a private thread after each notification
 * @opaque: passed to @handler_fn
 *
 * The notification is armed at once.  After @handler_fn runs, the caller
 * drains the pending bits and calls apple_dext_interrupt_notify_rearm();
 * an interrupt that fires between the drain and the rearm completes the
 * new arming at once, so none is lost.  @handler_fn may call rearm and
 * destroy itself.
 *
 * When the dext goes away (dextd dies, or the session ends under a live
 * connection, e.g. after a timed-out call dropped its last channel),
 * @handler_fn runs once more; its rearm then answers
 * kIOReturnNotResponding, and the caller should destroy the notification
 * and disconnect.  A merely stopped dextd (SIGSTOP) is not reported: only
 * a call that times out says so.  After
 * apple_dext_disconnect() the handler does not run.
 *
 * Return: the notification, or NULL on a bad argument or failure.
 */
APPLE_DEXT_EXPORT AppleDextInterruptNotify *
apple_dext_interrupt_notify_create(io_connect_t connection,
                                   void (*handler_fn)(void *opaque),
                                   void *opaque);

/**
 * apple_dext_interrupt_notify_rearm() - arm for the next notification
 * @notify: from apple_dext_interrupt_notify_create() or _create_fd()
 *
 * For fd-based notification this also clears the fd's readiness.
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for NULL; the arming
 * call's error otherwise (kIOReturnNotResponding if the dext went away).
 */
APPLE_DEXT_EXPORT kern_return_t
apple_dext_interrupt_notify_rearm(AppleDextInterruptNotify *notify);

/**
 * apple_dext_interrupt_notify_destroy() - stop and free a notification
 * @notify: the notification; NULL is ignored
 *
 * Waits for a running handler to return unless called from that handler.
 */
APPLE_DEXT_EXPORT void
apple_dext_interrupt_notify_destroy(AppleDextInterruptNotify *notify);

/* ---------------------------------------------------------------------
 * libdext extensions
 * ------------------------------------------------------------------- */

/** Identity of one device served by the dext. */
typedef struct AppleDextDeviceInfo {
    uint8_t bus;
    uint8_t device;
    uint8_t function;
    uint16_t vendor_id;
    uint16_t device_id;
    uint32_t class_code;       /* 24 bits: base class, subclass, prog-if */
} AppleDextDeviceInfo;

/**
 * apple_dext_strerror() - describe an IOReturn code
 * @kr: any kern_return_t
 *
 * Return: a static string such as "kIOReturnBadArgument (invalid
 * argument)"; never NULL, also for unknown codes.
 */
APPLE_DEXT_EXPORT const char *apple_dext_strerror(kern_return_t kr);

/**
 * apple_dext_last_error_detail() - why the calling thread's last
 * apple_dext_connect_target(), apple_dext_connect(),
 * apple_dext_list_devices() or apple_dext_get_status() failed, in words
 *
 * The same line went to the log handler (apple_dext_set_log_handler())
 * at APPLE_DEXT_LOG_WARNING or APPLE_DEXT_LOG_ERROR: the cause an
 * IOReturn code cannot carry, e.g. "cannot connect to dextd's socket
 * /etc/passwd: Connection refused (ECONNREFUSED)", "edu: 00:03.0 is
 * served already", "edu: unknown option 'foo=1'" or "target 'iokit' is
 * macOS-only".  Each of those calls clears it first.
 *
 * Return: the line (valid until the thread's next such call), or "" if
 * the library said nothing more.
 */
APPLE_DEXT_EXPORT const char *apple_dext_last_error_detail(void);

/**
 * apple_dext_default_target() - the target the seed functions use
 *
 * Return: $DEXT_TARGET, else "iokit" on macOS, else "unix:" followed by
 * apple_dext_default_socket_path().  Valid until the environment changes.
 */
APPLE_DEXT_EXPORT const char *apple_dext_default_target(void);

/**
 * apple_dext_default_socket_path() - where dextd listens by default
 *
 * Return: $DEXT_SOCKET; else /run/dextd.sock for root; else
 * $XDG_RUNTIME_DIR/dextd.sock; else /tmp/dextd-UID.sock.
 */
APPLE_DEXT_EXPORT const char *apple_dext_default_socket_path(void);

/**
 * apple_dext_connect_target() - apple_dext_connect() on a chosen target
 * @target: target string (see the top of this header); NULL = default
 * @bus: PCI bus
 * @device: PCI device
 * @function: PCI function
 * @out_connection: receives the handle
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a malformed target
 * or NULL @out_connection; kIOReturnNotFound if no served device has that
 * address; kIOReturnNotResponding if the target cannot be reached (or
 * goes away while a device is identified); kIOReturnNotPermitted if the
 * daemon refused this user, or (iokit) in a forked child of a process
 * that had connected there (see fork() above); (unix) kIOReturnTimeout
 * if dextd does not answer in time, kIOReturnIPCError if its answers are
 * malformed.  An
 * error of a device that cannot be identified wins over NotFound: the
 * device asked for may be that one.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_connect_target(const char *target,
                                                          uint8_t bus,
                                                          uint8_t device,
                                                          uint8_t function,
                                                          io_connect_t *out_connection);

/**
 * apple_dext_list_devices() - enumerate the devices a target serves
 * @target: target string; NULL = default
 * @out: array of @max entries to fill (may be NULL when @max is 0)
 * @max: capacity of @out
 * @out_count: receives the number of devices served, which may exceed @max
 *             (only the first @max are stored)
 *
 * Return: kIOReturnSuccess, or the error of reaching the target;
 * kIOReturnNotPermitted over "iokit" in a forked child of a process that
 * had connected there (see fork() above).
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_list_devices(const char *target,
                                                        AppleDextDeviceInfo *out,
                                                        uint32_t max,
                                                        uint32_t *out_count);

/**
 * apple_dext_get_identity() - identity of the device behind a connection
 * @connection: open connection
 * @out: receives the identity
 *
 * Return: kIOReturnSuccess, or kIOReturnBadArgument.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_get_identity(io_connect_t connection,
                                                        AppleDextDeviceInfo *out);

/**
 * apple_dext_config_write_block() - write a range of configuration space
 * @connection: open, claimed connection
 * @offset: starting byte offset
 * @buf: source, @len bytes
 * @len: number of bytes
 *
 * One round trip where the dext supports block writes, else aligned
 * dword writes with narrower writes at unaligned edges.
 *
 * Return: kIOReturnSuccess; kIOReturnNotOpen without a claim, as
 * apple_dext_config_write(); kIOReturnBadArgument if the range leaves
 * config space or @buf is NULL.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_config_write_block(io_connect_t connection,
                                                              uint64_t offset,
                                                              const void *buf,
                                                              size_t len);

/**
 * apple_dext_config_read_raw() - read configuration space without BAR hiding
 * @connection: open connection
 * @offset: starting byte offset
 * @buf: destination, @len bytes
 * @len: number of bytes
 *
 * Like apple_dext_config_read_block() but BAR registers show the device's
 * real contents, as lspci shows them.  A libdext dext extension: the real
 * macOS dext answers kIOReturnUnsupported.
 *
 * Return: kIOReturnSuccess, kIOReturnBadArgument, kIOReturnUnsupported.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_config_read_raw(io_connect_t connection,
                                                           uint64_t offset,
                                                           void *buf,
                                                           size_t len);

/**
 * apple_dext_map_irq_page() - map the interrupt state page
 * @connection: open connection with interrupts set up
 * @out_page: receives the address of the 16 KiB page: bytes 0x00-0x1f
 *            hold pending[4] (dext sets, client clears), 0x20-0x3f
 *            enabled[4]
 *
 * The page stays mapped until disconnect; mapping again returns the same
 * address.
 *
 * Return: kIOReturnSuccess; kIOReturnNotReady before setup;
 * kIOReturnBadArgument.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_map_irq_page(io_connect_t connection,
                                                        volatile uint64_t **out_page);

/**
 * apple_dext_drain_pending_irqs() - read and clear pending bits, no round trip
 * @connection: open connection with interrupts set up
 * @pending: receives 4 words as apple_dext_read_pending_irqs()
 *
 * Exchanges each pending word with 0 in the shared interrupt state page.
 * Falls back to apple_dext_read_pending_irqs() if the page cannot be
 * mapped.
 *
 * Return: as apple_dext_read_pending_irqs().
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_drain_pending_irqs(io_connect_t connection,
                                                              uint64_t pending[4]);

/**
 * apple_dext_interrupt_notify_create_fd() - notification through a pollable fd
 * @connection: open connection with interrupts set up
 *
 * No thread is started.  The fd from apple_dext_interrupt_notify_get_fd()
 * becomes readable when a notification arrives; then drain the pending
 * bits and call apple_dext_interrupt_notify_rearm().  Armed at once.
 *
 * When the dext goes away (dextd dies, or the session ends under a live
 * connection, e.g. after a timed-out call dropped its last channel), the
 * fd polls readable with POLLHUP (unix transport), and stays so: a
 * level, not an edge.  rearm then answers kIOReturnNotResponding.  The
 * caller must stop polling the fd (it would wake at once, forever),
 * destroy the notification and disconnect; a new connection reaches a
 * restarted dextd.  A dextd that is merely stopped (SIGSTOP) leaves the
 * fd quiet: the fd cannot tell a sleeping dext from a slow interrupt;
 * only a call that times out says so.
 * After apple_dext_disconnect() the fd stays quiet.  The in-process
 * transport's dext cannot go away apart from the caller.
 *
 * Return: the notification, or NULL.
 */
APPLE_DEXT_EXPORT AppleDextInterruptNotify *
apple_dext_interrupt_notify_create_fd(io_connect_t connection);

/**
 * apple_dext_interrupt_notify_get_fd() - the fd of an fd-based notification
 * @notify: from apple_dext_interrupt_notify_create_fd()
 *
 * Return: a file descriptor to poll for POLLIN (owned by @notify), or -1
 * for NULL or a callback-based notification.
 */
APPLE_DEXT_EXPORT int
apple_dext_interrupt_notify_get_fd(AppleDextInterruptNotify *notify);

/** What AllocateDMABuffer reports. */
typedef struct AppleDextDMABuffer {
    uint64_t size;
    uint64_t dma_flags;
    uint64_t segment_count;
    uint64_t bus_addr;         /* first segment */
    uint64_t bus_len;
    uint32_t class_code;
} AppleDextDMABuffer;

/**
 * apple_dext_allocate_dma_buffer() - allocate the dext-owned DMA buffer
 * @connection: open, claimed connection
 * @size: bytes, 1 .. 1.5 GiB
 * @alignment: bus address alignment, power of two; 0 means 4096
 * @out: receives the description (may be NULL)
 *
 * Replaces any previous buffer.  Map it with apple_dext_map_dma_buffer().
 *
 * Return: kIOReturnSuccess; kIOReturnNotOpen without a claim;
 * kIOReturnBadArgument for a bad size or alignment; kIOReturnNoResources
 * if the bus address space is exhausted.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_allocate_dma_buffer(io_connect_t connection,
                                                               uint64_t size,
                                                               uint64_t alignment,
                                                               AppleDextDMABuffer *out);

/**
 * apple_dext_free_dma_buffer() - free the DMA buffer
 * @connection: open connection
 *
 * Existing mappings of the buffer stay valid memory but no longer reach
 * the device.
 *
 * Return: kIOReturnSuccess (also when there is none), kIOReturnBadArgument.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_free_dma_buffer(io_connect_t connection);

/**
 * apple_dext_map_dma_buffer() - map the DMA buffer (memory type 0)
 * @connection: open connection
 * @out_addr: receives the address
 * @out_size: receives the size
 *
 * Return: kIOReturnSuccess; kIOReturnNotReady if there is no buffer.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_map_dma_buffer(io_connect_t connection,
                                                          mach_vm_address_t *out_addr,
                                                          mach_vm_size_t *out_size);

/**
 * apple_dext_unmap_dma_buffer() - undo apple_dext_map_dma_buffer()
 * @connection: open connection
 * @addr: address returned by apple_dext_map_dma_buffer()
 *
 * Return: kIOReturnSuccess, or kIOReturnBadArgument for an unknown @addr.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_unmap_dma_buffer(io_connect_t connection,
                                                            mach_vm_address_t addr);

/**
 * apple_dext_terminate() - hand the device back to the operating system
 * @connection: open, claimed connection; no other connection may hold a
 *              claim
 *
 * The service stops; this and every other connection to it then fail
 * with kIOReturnNoDevice, and it is no longer listed.
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument; kIOReturnNotOpen
 * without a claim; kIOReturnBusy while another connection holds a claim.
 * (The macOS dext and dextd --unclaimed-writes let any connection
 * terminate, whoever holds claims.)
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_terminate(io_connect_t connection);

/**
 * AppleDextStatus - what a dext (daemon or in-process core) holds, for
 * status and leak checks.
 * @size: set it to sizeof(AppleDextStatus) before apple_dext_get_status():
 *        the call fills no more than that many bytes, so a program built
 *        against this header keeps working when later versions add
 *        counters.  0 means this version's size.
 * @protocol_version: 0 for in-process
 * @server_pid: dextd's pid; this process for in-process
 * @channels: open sockets (dextd only)
 *
 * The counters between (devices, sessions, claims, dma_regions,
 * dma_region_bytes, dma_buffers, irq_sessions, iommu_faults, irqs_raised,
 * irqs_dropped) are listed, with what each counts, in
 * libdext/status-counters.h.
 */
typedef struct AppleDextStatus {
    uint32_t size;
    uint32_t protocol_version;
    uint32_t server_pid;
    APPLE_DEXT_STATUS_COUNTERS(APPLE_DEXT_STATUS_FIELD, _)
    uint32_t channels;
} AppleDextStatus;

/**
 * apple_dext_get_status() - counters of the dext behind a target
 * @target: target string; NULL = default
 * @out: receives the counters; set @out->size first (see AppleDextStatus:
 *       the call fills at most that many bytes, and sets @out->size to
 *       what it filled)
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument (also for a @size below
 * 4); kIOReturnUnsupported for the real macOS dext;
 * kIOReturnNotResponding if unreachable.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_get_status(const char *target,
                                                      AppleDextStatus *out);

/** One device's state as its dext sees it. */
typedef struct AppleDextDeviceStatus {
    uint32_t claims;            /* user clients holding a claim */
    uint32_t sessions;          /* user clients open on the device */
    uint32_t irq_vectors;       /* this connection's vectors, 0 = not set up */
    bool claimed;               /* this connection holds a claim */
    uint32_t dma_regions;       /* this connection's regions */
    bool terminated;
} AppleDextDeviceStatus;

/**
 * apple_dext_get_device_status() - the device's state (libdext dexts only)
 * @connection: open connection
 * @out: receives the state
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument; kIOReturnUnsupported
 * for the real macOS dext.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_get_device_status(io_connect_t connection,
                                                             AppleDextDeviceStatus *out);

/**
 * apple_dext_get_claimers() - which processes hold the device's claim
 * (libdext dexts only)
 * @connection: open connection
 * @pids: receives up to @max pids, one per connection holding a claim
 *        (a process with two claiming connections appears twice); in the
 *        dext's pid namespace, this process's own for in-process
 * @max: room in @pids, at most 1023
 * @count: receives how many connections hold a claim (may exceed @max)
 *
 * For operators (dextctl status): the claim is shared, so this says who
 * shares it; nothing in the contract depends on it.
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for NULL @count, NULL
 * @pids with @max > 0, or @max over 1023; kIOReturnUnsupported for the
 * real macOS dext.
 */
/**
 * apple_dext_set_timeouts() - bound the library's waits for dextd
 * @call_ms: the most a call waits for its answer; 0 = no bound, -1 = back
 *           to $DEXT_TIMEOUT_MS, else 30,000
 * @connect_ms: the most each step of connecting waits; 0 = no bound,
 *              -1 = back to $DEXT_CONNECT_TIMEOUT_MS, else 5,000
 *
 * For this process, for connections made afterwards; a target's own
 * ",timeout=MS" and ",connect-timeout=MS" options win over it, and it
 * wins over the environment.  A call that runs out answers
 * kIOReturnTimeout, and the dext may still be executing it: the channel
 * it went out on is discarded (docs/transports.md).
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a value below -1;
 * kIOReturnUnsupported on macOS (IOKit calls are the kernel's).
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_set_timeouts(int32_t call_ms,
                                                        int32_t connect_ms);

/* What apple_dext_get_last_reset() reports. */
enum {
    APPLE_DEXT_RESET_NONE = 0,      /* no reset since the device was served */
    APPLE_DEXT_RESET_FUNCTION = 1,  /* a function-level reset */
    APPLE_DEXT_RESET_HOT = 2,       /* a hot (secondary bus) reset */
};

/**
 * apple_dext_get_last_reset() - which reset the last
 * apple_dext_reset_device() of the device performed (libdext dexts only)
 * @connection: open connection
 * @method: receives APPLE_DEXT_RESET_*
 *
 * apple_dext_reset_device() answers a status only; the dext tries a
 * function-level reset first and falls back to a hot reset.  This says
 * which one ran, by whichever connection.
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a NULL @method;
 * kIOReturnUnsupported for the real macOS dext.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_get_last_reset(io_connect_t connection,
                                                          uint32_t *method);

APPLE_DEXT_EXPORT kern_return_t apple_dext_get_claimers(io_connect_t connection,
                                                        uint32_t *pids,
                                                        uint32_t max,
                                                        uint32_t *count);

/**
 * apple_dext_register_dma_at() - register DMA memory at a chosen bus
 * address (libdext dexts only)
 * @connection: open, claimed connection
 * @iova: caller-chosen key for the region, unique per connection (as
 *        apple_dext_register_dma()); @bus_addr itself is a good choice
 * @client_va: address of the memory in this process; must stay mapped
 *             until the region is unregistered
 * @size: region size in bytes
 * @bus_addr: the bus address at which the device reaches @client_va
 *
 * As apple_dext_register_dma(), but the device reaches the region at
 * exactly @bus_addr .. @bus_addr + @size - 1, so a VMM can give a
 * device the guest's own IOVAs (a vfio-user server's DMA_MAP).  Chosen
 * addresses are kept in 4 KiB bus pages, an IOMMU's (addresses the dext
 * chooses are 16 KiB DART pages): @bus_addr must have the same offset
 * within a 4 KiB page as @client_va, and the region takes every bus page
 * it touches,
 * which must lie in the device's bus window (from 1 MiB up to its DMA
 * mask) and belong to no other region or DMA buffer of the device, of
 * any connection.  Unregister with apple_dext_unregister_dma(@iova).
 * The real macOS dext cannot do this (its DART chooses the addresses).
 *
 * Return: kIOReturnSuccess; kIOReturnNotOpen without a claim;
 * kIOReturnBadArgument for size 0, client_va 0 or a wrapping range;
 * kIOReturnNotAligned if @bus_addr's offset within a 4 KiB page is not
 * @client_va's; kIOReturnNoResources if the bus range leaves the
 * device's window (below 1 MiB, above its DMA mask, wrapping) or the pin
 * limit is reached; kIOReturnBusy if a bus page of the range belongs to
 * another region or the DMA buffer; kIOReturnStillOpen if @iova is
 * registered already; kIOReturnNoSpace past 65,536 regions, 128 chunks
 * or the process's share of the bus space; kIOReturnVMError if the
 * memory is not mapped; kIOReturnUnsupported for the real macOS dext, a
 * device without DMA, or private memory through dextd on a device behind
 * a real IOMMU (as apple_dext_register_dma()); kIOReturnNotPermitted
 * there for a file outside tmpfs and hugetlbfs or one opened read-only
 * (as apple_dext_register_dma()); kIOReturnInternalError if the dext
 * answered another bus address (the region is unregistered).
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_register_dma_at(io_connect_t connection,
                                                           uint64_t iova,
                                                           uint64_t client_va,
                                                           uint64_t size,
                                                           uint64_t bus_addr);

/**
 * apple_dext_map_bar_fd() - the file behind a mappable BAR, for another
 * process to map (libdext transports with fds only)
 * @connection: open connection
 * @bar: BAR index, 0-5
 * @out_fd: receives a new file descriptor (close-on-exec) the caller
 *          owns and closes; -1 on failure
 * @out_offset: receives the BAR's offset in the file (page aligned)
 * @out_size: receives the BAR's size in bytes
 * @out_writable: receives whether the fd may be mapped writable
 *                (may be NULL)
 *
 * What apple_dext_map_bar() maps, handed over instead of mapped: a
 * vfio-user server passes it to its client, which maps the BAR itself.
 * The same rules apply (a connection without a claim gets a read-only
 * fd, and only after a claimer has mapped the BAR).  Only a BAR backed
 * by memory of its own has such a file: ivshmem's shared memory BAR, a
 * dextd device's.  A BAR whose only file grants more than the BAR (a
 * VFIO device fd, which also controls DMA, reset and interrupts) is
 * never handed out, in process either.  The IOKit transport (the real
 * macOS dext) has no fds to give.
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for @bar > 5 or a NULL
 * @out_fd, @out_offset or @out_size; kIOReturnNotFound for an unused BAR
 * or the upper half of a 64-bit BAR; kIOReturnNotOpen if no claimer has
 * mapped it yet; kIOReturnNotPermitted if clients may not change the
 * device (a real device without --allow-writes); kIOReturnUnsupported
 * for a register BAR of an emulated device, a VFIO device's BAR, or a
 * transport without fds (IOKit); kIOReturnNoResources when no fd is
 * left; kIOReturnNotResponding once dextd has gone.
 */
APPLE_DEXT_EXPORT kern_return_t apple_dext_map_bar_fd(io_connect_t connection,
                                                      uint8_t bar, int *out_fd,
                                                      uint64_t *out_offset,
                                                      uint64_t *out_size,
                                                      bool *out_writable);

/** Log levels passed to the log handler. */
enum {
    APPLE_DEXT_LOG_ERROR = 3,
    APPLE_DEXT_LOG_WARNING = 4,
    APPLE_DEXT_LOG_INFO = 6,
    APPLE_DEXT_LOG_DEBUG = 7,
};

/**
 * apple_dext_set_log_handler() - receive the library's diagnostics
 * @fn: called with a level and one line of text (no newline); NULL stops
 *      logging
 * @opaque: passed to @fn
 *
 * The library never prints on its own; messages at or below
 * APPLE_DEXT_LOG_INFO go to @fn (DEBUG too when $DEXT_DEBUG is set).
 * With an in-process target ("inproc:") the dext core's own lines
 * (device errors, IOMMU faults) come here too, on whichever thread
 * logs them (a device's worker thread, say); @fn must not call back
 * into the library.  A fork() on another thread waits for a running @fn
 * to return, so that the child can log.
 */
APPLE_DEXT_EXPORT void apple_dext_set_log_handler(void (*fn)(void *opaque, int level,
                                                             const char *msg),
                                                  void *opaque);

#ifdef __cplusplus
}
#endif

#endif /* APPLE_DEXT_CLIENT_H */
