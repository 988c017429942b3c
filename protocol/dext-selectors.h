/*
 * SPDX-License-Identifier: MIT
 *
 * The VFIOUserPCIDriver user-client method selectors and memory types,
 * shared by the client library and the dext core.  Selectors 0-17 are the
 * real dext's; kDextSelectorExtensionBase (64) and up are libdext
 * extensions that the real dext answers with kIOReturnUnsupported (the
 * client then falls back).
 */

#ifndef LIBDEXT_DEXT_SELECTORS_H
#define LIBDEXT_DEXT_SELECTORS_H

#include <stdbool.h>
#include <stdint.h>

enum DextSelector {
    kDextSelectorGetIdentity = 0,
    kDextSelectorClaim = 1,
    kDextSelectorTerminate = 2,
    kDextSelectorAllocateDMABuffer = 3,
    kDextSelectorFreeDMABuffer = 4,
    kDextSelectorRegisterDMARegion = 5,
    kDextSelectorUnregisterDMARegion = 6,
    kDextSelectorProbeDMARegion = 7,
    kDextSelectorConfigRead = 8,
    kDextSelectorConfigWrite = 9,
    kDextSelectorGetBARInfo = 10,
    kDextSelectorMMIORead = 11,
    kDextSelectorMMIOWrite = 12,
    kDextSelectorSetupInterrupts = 13,
    kDextSelectorCheckInterrupt = 14,
    kDextSelectorWaitInterrupt = 15,
    kDextSelectorSetIRQMask = 16,
    kDextSelectorResetDevice = 17,
    kDextSelectorContractCount = 18,

    /*
     * Extensions, from kDextSelectorExtensionBase on: the real dext
     * answers every selector there kIOReturnUnsupported, which is what
     * tells a client to fall back to the contract's calls.
     *
     * ConfigReadBlock: scalars offset, length, flags
     * (bit 0 = raw, no BAR synthesis) -> struct out of length bytes.
     * ConfigWriteBlock: scalar offset, struct in -> nothing.
     * GetDeviceStatus: -> scalars claimCount, sessions, irqVectors
     * (0 = not set up on this session), sessionClaimed, dmaRegions of
     * this session, terminated.
     * GetClaimers: -> struct out: the count of sessions holding a claim,
     * then the pid of each (as many as fit), all 4 bytes little-endian.
     * GetLastReset: -> scalar: which reset the last successful
     * ResetDevice performed (DEXT_RESET_*).
     * RegisterDMARegionAt: scalars iova, client VA, size, bus address
     * (and the offset in the fd, when shared memory travels beside it, as
     * RegisterDMARegion's fourth) -> segment count, bus address, length,
     * as RegisterDMARegion, but at the bus address given.
     */
    kDextSelectorExtensionBase = 64,
    kDextSelectorConfigReadBlock = kDextSelectorExtensionBase + 0,
    kDextSelectorConfigWriteBlock = kDextSelectorExtensionBase + 1,
    kDextSelectorGetDeviceStatus = kDextSelectorExtensionBase + 2,
    kDextSelectorGetClaimers = kDextSelectorExtensionBase + 3,
    kDextSelectorGetLastReset = kDextSelectorExtensionBase + 4,
    kDextSelectorRegisterDMARegionAt = kDextSelectorExtensionBase + 5,
    kDextSelectorExtensionEnd,
};

#define DEXT_CONFIG_BLOCK_RAW 0x1u

/**
 * dext_selector_names_memory() - does @selector name the caller's memory
 * by address (a DMA region)?
 * @selector: the method
 *
 * dextd serves such calls only when the kernel vouches that their sender
 * is the session's opener, which a polled ring cannot.
 *
 * Return: true for RegisterDMARegion(At) and ProbeDMARegion.
 */
static inline bool dext_selector_names_memory(uint32_t selector)
{
    return selector == kDextSelectorRegisterDMARegion ||
           selector == kDextSelectorRegisterDMARegionAt ||
           selector == kDextSelectorProbeDMARegion;
}

/* GetLastReset's answer; the values of APPLE_DEXT_RESET_*. */
enum {
    DEXT_RESET_NONE = 0,        /* none since the device was served */
    DEXT_RESET_FUNCTION = 1,    /* function-level reset */
    DEXT_RESET_HOT = 2,         /* hot (secondary bus) reset */
};

enum DextMemoryType {
    kDextMemoryTypeDMABuffer = 0,
    kDextMemoryTypeBAR0 = 1,        /* BARn is 1 + n */
    kDextMemoryTypeInterruptPage = 7,
};

/* The interrupt state page. */
#define DEXT_IRQ_PAGE_SIZE        16384u
#define DEXT_IRQ_PENDING_OFFSET   0x00u
#define DEXT_IRQ_ENABLED_OFFSET   0x20u
#define DEXT_IRQ_WORDS            4
#define DEXT_MAX_VECTORS          256

/* Contract limits. */
#define DEXT_MAX_DMA_REGIONS      65536u
#define DEXT_DMA_CHUNK_MAX        (3ull << 29)     /* 1.5 GiB */
#define DEXT_DMA_MAX_CHUNKS       128u
#define DEXT_DMA_BUFFER_MAX       (3ull << 29)

#endif /* LIBDEXT_DEXT_SELECTORS_H */
