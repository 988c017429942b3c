/*
 * SPDX-License-Identifier: MIT
 *
 * apple_dext_strerror(): IOReturn codes as names and Apple's descriptions.
 */

#include <stdio.h>

#include "client/client-internal.h"

typedef struct ErrorName {
    IOReturn code;
    const char *text;
} ErrorName;

#define E(name, desc) { name, #name " (" desc ")" }

static const ErrorName errors[] = {
    E(kIOReturnSuccess, "success"),
    E(kIOReturnError, "general error"),
    E(kIOReturnNoMemory, "cannot allocate memory"),
    E(kIOReturnNoResources, "resource shortage"),
    E(kIOReturnIPCError, "error during IPC"),
    E(kIOReturnNoDevice, "no such device"),
    E(kIOReturnNotPrivileged, "privilege violation"),
    E(kIOReturnBadArgument, "invalid argument"),
    E(kIOReturnLockedRead, "device read locked"),
    E(kIOReturnLockedWrite, "device write locked"),
    E(kIOReturnExclusiveAccess, "exclusive access and device already open"),
    E(kIOReturnBadMessageID, "sent and received messages had different IDs"),
    E(kIOReturnUnsupported, "unsupported function"),
    E(kIOReturnVMError, "virtual memory failure"),
    E(kIOReturnInternalError, "internal error"),
    E(kIOReturnIOError, "general I/O error"),
    E(kIOReturnCannotLock, "cannot acquire lock"),
    E(kIOReturnNotOpen, "device not open"),
    E(kIOReturnNotReadable, "read not supported"),
    E(kIOReturnNotWritable, "write not supported"),
    E(kIOReturnNotAligned, "alignment error"),
    E(kIOReturnBadMedia, "media error"),
    E(kIOReturnStillOpen, "device(s) still open"),
    E(kIOReturnRLDError, "rld failure"),
    E(kIOReturnDMAError, "DMA failure"),
    E(kIOReturnBusy, "device busy"),
    E(kIOReturnTimeout, "I/O timeout"),
    E(kIOReturnOffline, "device offline"),
    E(kIOReturnNotReady, "not ready"),
    E(kIOReturnNotAttached, "device not attached"),
    E(kIOReturnNoChannels, "no DMA channels left"),
    E(kIOReturnNoSpace, "no space for data"),
    E(kIOReturnPortExists, "port already exists"),
    E(kIOReturnCannotWire, "cannot wire down physical memory"),
    E(kIOReturnNoInterrupt, "no interrupt attached"),
    E(kIOReturnNoFrames, "no DMA frames enqueued"),
    E(kIOReturnMessageTooLarge, "oversized message received"),
    E(kIOReturnNotPermitted, "not permitted"),
    E(kIOReturnNoPower, "no power to device"),
    E(kIOReturnNoMedia, "media not present"),
    E(kIOReturnUnformattedMedia, "media not formatted"),
    E(kIOReturnUnsupportedMode, "no such mode"),
    E(kIOReturnUnderrun, "data underrun"),
    E(kIOReturnOverrun, "data overrun"),
    E(kIOReturnDeviceError, "the device is not working properly"),
    E(kIOReturnNoCompletion, "a completion routine is required"),
    E(kIOReturnAborted, "operation aborted"),
    E(kIOReturnNoBandwidth, "bus bandwidth would be exceeded"),
    E(kIOReturnNotResponding, "device not responding"),
    E(kIOReturnIsoTooOld, "isochronous I/O request for distant past"),
    E(kIOReturnIsoTooNew, "isochronous I/O request for distant future"),
    E(kIOReturnNotFound, "data was not found"),
    E(kIOReturnInvalid, "should never be seen"),
};

const char *apple_dext_strerror(kern_return_t kr)
{
    static __thread char unknown[48];
    size_t i;

    for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (errors[i].code == kr) {
            return errors[i].text;
        }
    }
    snprintf(unknown, sizeof(unknown), "unknown error 0x%08x", (unsigned)kr);
    return unknown;
}

const char *apple_dext_last_error_detail(void)
{
    return dext_log_detail();
}
