/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <IOKit/IOKitLib.h> (compile check
 * only).  Prototypes of the IOKitLib functions the IOKit transport calls
 * (and a few neighbours whose confusion would be a likely typo), with the
 * parameter types and counts of the macOS SDK, so that a wrong argument
 * fails the build here as it would on a Mac.  Never linked or run.
 *
 * The SDK header pulls in CoreFoundation, IOKitKeys, IOTypes,
 * OSMessageNotification, dispatch and the Mach types; so does this one.
 */

#ifndef LIBDEXT_FAKE_IOKIT_IOKITLIB_H
#define LIBDEXT_FAKE_IOKIT_IOKITLIB_H

#include <stddef.h>
#include <stdint.h>

#include <mach/mach_init.h>
#include <mach/mach_types.h>
#include <mach/message.h>
#include <CoreFoundation/CFBase.h>
#include <CoreFoundation/CFDictionary.h>
#include <IOKit/IOKitKeys.h>
#include <IOKit/IOTypes.h>
#include <IOKit/OSMessageNotification.h>
#include <dispatch/dispatch.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct IONotificationPort *IONotificationPortRef;

/* Completion callout of an async method (refcon, result, args). */
typedef void (*IOAsyncCallback)(void *refcon, IOReturn result, void **args,
                                uint32_t numArgs);
typedef void (*IOAsyncCallback0)(void *refcon, IOReturn result);

/* Callout of an interest notification (refcon, service, message, arg). */
typedef void (*IOServiceInterestCallback)(void *refcon, io_service_t service,
                                          uint32_t messageType,
                                          void *messageArgument);

/* The default main port (macOS 12 on; kIOMasterPortDefault before). */
extern const mach_port_t kIOMainPortDefault;

/* Notification ports */
IONotificationPortRef IONotificationPortCreate(mach_port_t mainPort);
void IONotificationPortDestroy(IONotificationPortRef notify);
mach_port_t IONotificationPortGetMachPort(IONotificationPortRef notify);
void IONotificationPortSetDispatchQueue(IONotificationPortRef notify,
                                        dispatch_queue_t queue);

/* Interest notifications (kIOGeneralInterest: the IOMessage.h messages) */
kern_return_t IOServiceAddInterestNotification(IONotificationPortRef notifyPort,
                                               io_service_t service,
                                               const io_name_t interestType,
                                               IOServiceInterestCallback callback,
                                               void *refCon,
                                               io_object_t *notification);

/* Objects and iterators */
kern_return_t IOObjectRelease(io_object_t object);
kern_return_t IOObjectRetain(io_object_t object);
io_object_t IOIteratorNext(io_iterator_t iterator);

/* Matching */
CFMutableDictionaryRef IOServiceMatching(const char *name)
    CF_RETURNS_RETAINED;
CFMutableDictionaryRef IORegistryEntryIDMatching(uint64_t entryID)
    CF_RETURNS_RETAINED;
io_service_t IOServiceGetMatchingService(mach_port_t mainPort,
                                         CFDictionaryRef matching
                                         CF_RELEASES_ARGUMENT);
kern_return_t IOServiceGetMatchingServices(mach_port_t mainPort,
                                           CFDictionaryRef matching
                                           CF_RELEASES_ARGUMENT,
                                           io_iterator_t *existing);

/* Registry */
kern_return_t IORegistryEntryGetRegistryEntryID(io_registry_entry_t entry,
                                                uint64_t *entryID);
CFTypeRef IORegistryEntryCreateCFProperty(io_registry_entry_t entry,
                                          CFStringRef key,
                                          CFAllocatorRef allocator,
                                          IOOptionBits options);

/* User clients */
kern_return_t IOServiceOpen(io_service_t service, task_port_t owningTask,
                            uint32_t type, io_connect_t *connect);
kern_return_t IOServiceClose(io_connect_t connect);

kern_return_t IOConnectCallMethod(mach_port_t connection, uint32_t selector,
                                  const uint64_t *input, uint32_t inputCnt,
                                  const void *inputStruct,
                                  size_t inputStructCnt,
                                  uint64_t *output, uint32_t *outputCnt,
                                  void *outputStruct,
                                  size_t *outputStructCnt);
kern_return_t IOConnectCallAsyncMethod(mach_port_t connection,
                                       uint32_t selector,
                                       mach_port_t wake_port,
                                       uint64_t *reference,
                                       uint32_t referenceCnt,
                                       const uint64_t *input,
                                       uint32_t inputCnt,
                                       const void *inputStruct,
                                       size_t inputStructCnt,
                                       uint64_t *output,
                                       uint32_t *outputCnt,
                                       void *outputStruct,
                                       size_t *outputStructCnt);
kern_return_t IOConnectCallScalarMethod(mach_port_t connection,
                                        uint32_t selector,
                                        const uint64_t *input,
                                        uint32_t inputCnt,
                                        uint64_t *output,
                                        uint32_t *outputCnt);

kern_return_t IOConnectMapMemory64(io_connect_t connect, uint32_t memoryType,
                                   task_port_t intoTask,
                                   mach_vm_address_t *atAddress,
                                   mach_vm_size_t *ofSize,
                                   IOOptionBits options);
kern_return_t IOConnectUnmapMemory64(io_connect_t connect,
                                     uint32_t memoryType,
                                     task_port_t fromTask,
                                     mach_vm_address_t atAddress);

#ifdef __cplusplus
}
#endif

#endif /* LIBDEXT_FAKE_IOKIT_IOKITLIB_H */
