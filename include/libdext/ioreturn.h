/*
 * SPDX-License-Identifier: MIT
 *
 * Mach/IOKit scalar types and IOReturn codes for hosts without IOKit.
 *
 * On Darwin the real <IOKit/IOKitLib.h> is used instead and this file
 * only adds nothing; so it is when LIBDEXT_HAVE_IOKIT is defined, which
 * libdext's own build does for its IOKit transport (and its compile check
 * on Linux, against stand-in headers).  Elsewhere it supplies the handful
 * of types that the apple_dext_* API is written in, with exactly Apple's
 * widths and values (IOKit/IOReturn.h: code = sys_iokit |
 * sub_iokit_common | n), so a caller's error handling behaves identically
 * on every platform.
 */

#ifndef LIBDEXT_IORETURN_H
#define LIBDEXT_IORETURN_H

#if defined(__APPLE__) || defined(LIBDEXT_HAVE_IOKIT)
#include <IOKit/IOKitLib.h>
#include <IOKit/IOReturn.h>
#else

#include <stdint.h>

typedef int kern_return_t;
typedef kern_return_t IOReturn;
typedef unsigned int mach_port_t;
typedef mach_port_t io_object_t;
typedef io_object_t io_connect_t;
typedef io_object_t io_service_t;
typedef uint64_t mach_vm_address_t;
typedef uint64_t mach_vm_size_t;

#define IO_OBJECT_NULL ((io_object_t)0)
#define KERN_SUCCESS 0

/* sys_iokit = err_system(0x38), sub_iokit_common = err_sub(0) */
#define LIBDEXT_IOKIT_COMMON_ERR(code) \
    ((IOReturn)(((0x38u & 0x3fu) << 26) | ((unsigned)(code) & 0x3fffu)))

#define kIOReturnSuccess          KERN_SUCCESS
#define kIOReturnError            LIBDEXT_IOKIT_COMMON_ERR(0x2bc)
#define kIOReturnNoMemory         LIBDEXT_IOKIT_COMMON_ERR(0x2bd)
#define kIOReturnNoResources      LIBDEXT_IOKIT_COMMON_ERR(0x2be)
#define kIOReturnIPCError         LIBDEXT_IOKIT_COMMON_ERR(0x2bf)
#define kIOReturnNoDevice         LIBDEXT_IOKIT_COMMON_ERR(0x2c0)
#define kIOReturnNotPrivileged    LIBDEXT_IOKIT_COMMON_ERR(0x2c1)
#define kIOReturnBadArgument      LIBDEXT_IOKIT_COMMON_ERR(0x2c2)
#define kIOReturnLockedRead       LIBDEXT_IOKIT_COMMON_ERR(0x2c3)
#define kIOReturnLockedWrite      LIBDEXT_IOKIT_COMMON_ERR(0x2c4)
#define kIOReturnExclusiveAccess  LIBDEXT_IOKIT_COMMON_ERR(0x2c5)
#define kIOReturnBadMessageID     LIBDEXT_IOKIT_COMMON_ERR(0x2c6)
#define kIOReturnUnsupported      LIBDEXT_IOKIT_COMMON_ERR(0x2c7)
#define kIOReturnVMError          LIBDEXT_IOKIT_COMMON_ERR(0x2c8)
#define kIOReturnInternalError    LIBDEXT_IOKIT_COMMON_ERR(0x2c9)
#define kIOReturnIOError          LIBDEXT_IOKIT_COMMON_ERR(0x2ca)
#define kIOReturnCannotLock       LIBDEXT_IOKIT_COMMON_ERR(0x2cc)
#define kIOReturnNotOpen          LIBDEXT_IOKIT_COMMON_ERR(0x2cd)
#define kIOReturnNotReadable      LIBDEXT_IOKIT_COMMON_ERR(0x2ce)
#define kIOReturnNotWritable      LIBDEXT_IOKIT_COMMON_ERR(0x2cf)
#define kIOReturnNotAligned       LIBDEXT_IOKIT_COMMON_ERR(0x2d0)
#define kIOReturnBadMedia         LIBDEXT_IOKIT_COMMON_ERR(0x2d1)
#define kIOReturnStillOpen        LIBDEXT_IOKIT_COMMON_ERR(0x2d2)
#define kIOReturnRLDError         LIBDEXT_IOKIT_COMMON_ERR(0x2d3)
#define kIOReturnDMAError         LIBDEXT_IOKIT_COMMON_ERR(0x2d4)
#define kIOReturnBusy             LIBDEXT_IOKIT_COMMON_ERR(0x2d5)
#define kIOReturnTimeout          LIBDEXT_IOKIT_COMMON_ERR(0x2d6)
#define kIOReturnOffline          LIBDEXT_IOKIT_COMMON_ERR(0x2d7)
#define kIOReturnNotReady         LIBDEXT_IOKIT_COMMON_ERR(0x2d8)
#define kIOReturnNotAttached      LIBDEXT_IOKIT_COMMON_ERR(0x2d9)
#define kIOReturnNoChannels       LIBDEXT_IOKIT_COMMON_ERR(0x2da)
#define kIOReturnNoSpace          LIBDEXT_IOKIT_COMMON_ERR(0x2db)
#define kIOReturnPortExists       LIBDEXT_IOKIT_COMMON_ERR(0x2dd)
#define kIOReturnCannotWire       LIBDEXT_IOKIT_COMMON_ERR(0x2de)
#define kIOReturnNoInterrupt      LIBDEXT_IOKIT_COMMON_ERR(0x2df)
#define kIOReturnNoFrames         LIBDEXT_IOKIT_COMMON_ERR(0x2e0)
#define kIOReturnMessageTooLarge  LIBDEXT_IOKIT_COMMON_ERR(0x2e1)
#define kIOReturnNotPermitted     LIBDEXT_IOKIT_COMMON_ERR(0x2e2)
#define kIOReturnNoPower          LIBDEXT_IOKIT_COMMON_ERR(0x2e3)
#define kIOReturnNoMedia          LIBDEXT_IOKIT_COMMON_ERR(0x2e4)
#define kIOReturnUnformattedMedia LIBDEXT_IOKIT_COMMON_ERR(0x2e5)
#define kIOReturnUnsupportedMode  LIBDEXT_IOKIT_COMMON_ERR(0x2e6)
#define kIOReturnUnderrun         LIBDEXT_IOKIT_COMMON_ERR(0x2e7)
#define kIOReturnOverrun          LIBDEXT_IOKIT_COMMON_ERR(0x2e8)
#define kIOReturnDeviceError      LIBDEXT_IOKIT_COMMON_ERR(0x2e9)
#define kIOReturnNoCompletion     LIBDEXT_IOKIT_COMMON_ERR(0x2ea)
#define kIOReturnAborted          LIBDEXT_IOKIT_COMMON_ERR(0x2eb)
#define kIOReturnNoBandwidth      LIBDEXT_IOKIT_COMMON_ERR(0x2ec)
#define kIOReturnNotResponding    LIBDEXT_IOKIT_COMMON_ERR(0x2ed)
#define kIOReturnIsoTooOld        LIBDEXT_IOKIT_COMMON_ERR(0x2ee)
#define kIOReturnIsoTooNew        LIBDEXT_IOKIT_COMMON_ERR(0x2ef)
#define kIOReturnNotFound         LIBDEXT_IOKIT_COMMON_ERR(0x2f0)
#define kIOReturnInvalid          LIBDEXT_IOKIT_COMMON_ERR(0x001)

#endif /* !__APPLE__ && !LIBDEXT_HAVE_IOKIT */

#endif /* LIBDEXT_IORETURN_H */
