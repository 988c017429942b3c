/*
 * SPDX-License-Identifier: MIT
 *
 * The dext core: the VFIOUserPCIDriver user-client contract in portable C.
 *
 * A DextCore serves a set of devices (one "service" each).  Clients open
 * sessions (user clients) on a service and make method calls by selector
 * exactly as through IOKit; the core checks every argument, as the daemon
 * never trusts a client.  The core is used in-process by the inproc
 * transport and out of process by dextd.
 *
 * Thread safety: every function may be called from any thread.  Calls on
 * one session may run concurrently.
 */

#ifndef LIBDEXT_DEXT_CORE_H
#define LIBDEXT_DEXT_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "libdext/ioreturn.h"
#include "libdext/status-counters.h"
#include "protocol/dext-selectors.h"
#include "support/dext-call.h"
#include "support/log.h"
#include "backends/backend.h"

typedef struct DextCore DextCore;
typedef struct DextSession DextSession;

/**
 * struct DextCoreStats - counters for status reports and leak checks.
 */
typedef struct DextCoreStats {
    APPLE_DEXT_STATUS_COUNTERS(APPLE_DEXT_STATUS_FIELD, _)
} DextCoreStats;

/**
 * dext_core_new() - create an empty core
 * @log: log sink (may be NULL: silent)
 * @log_opaque: passed to @log
 */
DextCore *dext_core_new(DextLogFn *log, void *log_opaque);

/**
 * dext_core_set_contract_only() - behave as a dext without our extensions
 * @core: the core, before any session is opened
 * @on: true to answer kIOReturnUnsupported for every extension selector
 *      (kDextSelectorExtensionBase and up)
 *
 * Lets tests and benchmarks prove that the library's fallbacks to the
 * seed's per-access calls give identical results.  The interrupt state
 * page (memory type 7) is the contract's and stays mappable.
 */
void dext_core_set_contract_only(DextCore *core, bool on);

/**
 * dext_core_set_no_irq_page() - keep the interrupt state page to itself
 * @core: the core, before any session is opened
 * @on: true to answer kIOReturnUnsupported for mapping memory type 7 once
 *      SetupInterrupts has made the page (NotReady before, as always)
 *
 * Lets tests prove that the library's pending-interrupt drain falls back
 * to CheckInterrupt with identical results, for a dext that cannot share
 * the page (the contract's does).
 */
void dext_core_set_no_irq_page(DextCore *core, bool on);

/* The default of dext_core_set_dma_share(). */
#define DEXT_DMA_SHARE_DEFAULT 50

/**
 * dext_core_set_dma_share() - how much bus space one client may hold
 * @core: the core, before any session is opened
 * @percent: 1..100: the most of each device's bus space that the DMA
 *           regions and buffers of one client process (all its sessions on
 *           that device) may take; DEXT_DMA_SHARE_DEFAULT until set
 *
 * Bus space is shared by every client of a device; without a share, one
 * client registering many small regions (each takes whole DART pages)
 * could leave none for the others.  In-process clients are not limited.
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a @percent out of
 * range.
 */
IOReturn dext_core_set_dma_share(DextCore *core, uint32_t percent);
/*
 * Policy flags for dext_core_set_policy().
 *
 * DEXT_POLICY_UNCLAIMED_WRITES: the real dext's access model.  Any
 * session may write config space (ConfigWrite, ConfigWriteBlock), write
 * MMIO, map BARs writable and Terminate, claimed or not, and Terminate is
 * not refused while other sessions hold claims.  Without it (the default)
 * those need a claim: see dext_core_set_policy().
 */
#define DEXT_POLICY_UNCLAIMED_WRITES 0x1u

/**
 * dext_core_set_policy() - choose what sessions without a claim may do
 * @core: the core, before any session is opened
 * @flags: DEXT_POLICY_* bits; 0 is the default policy
 *
 * By default a session that has not claimed may only look: GetIdentity,
 * config reads, GetBARInfo, MMIO reads (while some session holds a claim,
 * as for claimers), BAR mappings that are read-only (DextMemory.writable
 * false, and the fd is open O_RDONLY so that no MAP_SHARED PROT_WRITE
 * mapping of it can be made), device status and its own per-session
 * state.  ConfigWrite, ConfigWriteBlock, MMIOWrite and Terminate answer
 * kIOReturnNotOpen without a claim, and Terminate answers kIOReturnBusy
 * while another session holds a claim: a client that did not claim must
 * not be able to program the device (its DMA engine reaches every
 * claimer's registered memory) or pull it from under the claimers.
 * RegisterDMARegion, AllocateDMABuffer, SetupInterrupts and ResetDevice
 * need a claim under every policy, as in the contract.
 */
void dext_core_set_policy(DextCore *core, unsigned flags);

/** dext_core_free() - close every session and free every device. */
void dext_core_free(DextCore *core);

/**
 * dext_core_add_device() - serve a device; the core takes ownership
 * @core: the core
 * @dev: device from a backend
 * @out_id: receives its service ID (may be NULL)
 *
 * The device's write policy is decided here: clients may change an
 * emulated device, and a real one (DextDevice.hardware) only with
 * DextDevice.allow_writes set or after dext_core_allow_writes().
 *
 * Return: kIOReturnSuccess; kIOReturnExclusiveAccess if a device with
 * the same BDF is served already; kIOReturnUnsupported for a multimedia
 * function (class 0x04), which the dext refuses to attach to (@dev is
 * then freed).
 */
IOReturn dext_core_add_device(DextCore *core, DextDevice *dev,
                              uint64_t *out_id);

/**
 * dext_core_allow_writes() - let clients change a real device
 * @core: the core
 * @bus: the device's bus number
 * @dev: its device number
 * @fn: its function number
 *
 * The write policy.  A device whose backend declares it real hardware
 * (DextDevice.hardware) is read-only to clients unless the operator says
 * otherwise: its spec (DextDevice.allow_writes) or this call.  Until
 * then the core answers everything that could disturb it (config writes,
 * MMIO, BAR mappings, DMA, interrupts, reset) kIOReturnNotPermitted, and
 * no backend hook sees such a call.  Emulated devices are always
 * writable.  Call it after dext_core_add_device() and before serving
 * clients: sessions opened earlier see the change too, but may have been
 * refused before it.  The change is logged as a warning.
 *
 * Return: kIOReturnSuccess; kIOReturnNotFound when no real device at
 * that address is served; kIOReturnBadArgument for a NULL @core.
 */
IOReturn dext_core_allow_writes(DextCore *core, uint8_t bus, uint8_t dev,
                                uint8_t fn);

/**
 * dext_core_list() - service IDs of the devices served (not terminated)
 * Return: the total number; up to @max IDs are stored in @ids.
 */
uint32_t dext_core_list(DextCore *core, uint64_t *ids, uint32_t max);

/** dext_core_stats() - a consistent snapshot of the counters. */
void dext_core_stats(DextCore *core, DextCoreStats *out);

/**
 * dext_core_open() - open a user client
 * @core: the core
 * @id: service ID from dext_core_list()
 * @type: user client type; only 0 exists
 * @client_pid: the process whose memory DMA regions name; getpid() for
 *              in-process clients
 * @client_pidfd: a pidfd of that very process, taken while it was
 *                provably the peer (dextd: SO_PEERPIDFD at accept); the
 *                core keeps its own dup.  -1 is allowed only when
 *                @client_pid is the calling process itself.
 * @out: receives the session
 *
 * The session is bound to that process for good: once it has exited, no
 * call touches memory by its (possibly recycled) pid again.
 *
 * Return: kIOReturnSuccess; kIOReturnNotFound; kIOReturnUnsupported for
 * another @type; kIOReturnNoResources past the session limit or when the
 * pidfd cannot be duplicated; kIOReturnNotPermitted for @client_pidfd -1
 * with another process's pid; kIOReturnNotAttached if the process has
 * exited already.
 */
IOReturn dext_core_open(DextCore *core, uint64_t id, uint32_t type,
                        pid_t client_pid, int client_pidfd,
                        DextSession **out);

/**
 * dext_session_call() - a method call (IOConnectCallMethod's dext side)
 *
 * Return: the method's IOReturn; kIOReturnUnsupported for an unknown
 * selector; kIOReturnBadArgument for too few scalar inputs or too little
 * room for outputs.
 */
IOReturn dext_session_call(DextSession *s, uint32_t selector,
                           const DextCallArgs *args);

/**
 * dext_session_call_async() - an async method call (WaitInterrupt)
 * @wake_fd: the completion target; the core keeps its own dup() and
 *           completes by sending one 8-byte message (a socket, sent with
 *           MSG_DONTWAIT so an untrusted client can never block the core)
 *           or by writing an 8-byte 1 (an eventfd, for trusted in-process
 *           callers only)
 *
 * It answers through @wake_fd only: the scalar and struct output counts
 * are set to 0 whatever happens.
 */
IOReturn dext_session_call_async(DextSession *s, uint32_t selector,
                                 int wake_fd, const DextCallArgs *args);

/**
 * dext_session_map() - memory for IOConnectMapMemory64 of @type
 * @out: receives a new fd (caller owns), offset, size and writability
 *
 * A BAR mapped by a session that may not write (no claim, default
 * policy: dext_core_set_policy()) comes back with @out->writable false
 * and an fd reopened O_RDONLY, so the receiver cannot map it writable.
 *
 * Return: kIOReturnSuccess; kIOReturnNotReady (no DMA buffer, no
 * interrupts); kIOReturnBadArgument for an unknown type; the BAR errors
 * of apple_dext_map_bar(); for a read-only BAR mapping,
 * kIOReturnNoResources when no fd is left and kIOReturnNotOpen when the
 * backend's fd cannot be reopened read-only (only a claimer may map it).
 */
IOReturn dext_session_map(DextSession *s, uint32_t type, DextMemory *out);

/**
 * dext_session_close() - release everything the session holds, in the
 * contract's order: interrupt sources, DMA regions, DMA buffer, claim.
 * No other call on @s may be running or start.
 */
void dext_session_close(DextSession *s);

#endif /* LIBDEXT_DEXT_CORE_H */
