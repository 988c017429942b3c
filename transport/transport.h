/*
 * SPDX-License-Identifier: MIT
 *
 * The transport interface: how the client library reaches a dext.
 *
 * A transport offers the IOKit user-client primitives and nothing more
 * (list services, open a user client, scalar/struct method call, async
 * method call with a wake target, map/unmap memory by type, close).
 * Everything above them -- argument checks, output decoding, block
 * fallbacks, memory type numbers, notify/rearm -- lives in client/ and
 * is the same code for every transport.  Hooks are documented in the
 * style of libusb's usbi_os_backend: whether they are optional, what
 * locking they need, what they return.
 */

#ifndef LIBDEXT_TRANSPORT_H
#define LIBDEXT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "libdext/ioreturn.h"
#include "support/dext-call.h"

typedef struct DextTransport DextTransport;
typedef struct DextWake DextWake;
typedef struct DextWakeOps DextWakeOps;
struct AppleDextStatus;
typedef struct DextTransportOps DextTransportOps;

/**
 * struct DextTransport - one open user client.  Transports embed it as
 * the first member of their own state.
 */
struct DextTransport {
    const DextTransportOps *ops;
};

/**
 * struct DextWakeOps - what can be done with a wake target, whatever
 * transport made it (wakes outlive the transport: see @destroy).
 */
struct DextWakeOps {
    /**
     * @consume: clear the wake's readiness; returns the number of
     * completions seen (0 if none).  Never blocks.
     */
    uint64_t (*consume)(DextWake *wake);

    /**
     * @destroy: release the wake target.  May be called after @close of
     * the transport that made it.
     */
    void (*destroy)(DextWake *wake);
};

/**
 * struct DextWake - a wake target for async calls: completions make
 * @fd readable.  Created by a transport's @wake_create, which sets @ops;
 * transports embed it first.
 */
struct DextWake {
    const DextWakeOps *ops;
    int fd;
};

/**
 * dext_wake_consume() - clear @wake's readiness
 * @wake: a wake target
 *
 * Return: the number of completions seen (0 if none).
 */
static inline uint64_t dext_wake_consume(DextWake *wake)
{
    return wake->ops->consume(wake);
}

/**
 * dext_wake_destroy() - release @wake (NULL is ignored)
 * @wake: a wake target or NULL
 *
 * Return: nothing.
 */
static inline void dext_wake_destroy(DextWake *wake)
{
    if (wake != NULL) {
        wake->ops->destroy(wake);
    }
}

/**
 * struct DextTransportOps - the hooks of one transport.
 *
 * Unless said otherwise a hook is mandatory, may be called concurrently
 * from several threads on the same DextTransport (the transport does its
 * own locking, holding no lock across a blocking round trip longer than
 * it must) and returns an IOReturn code.  A transport whose peer has gone
 * returns kIOReturnNotResponding from every later call.
 */
struct DextTransportOps {
    /** @name: the target scheme, e.g. "unix", "inproc", "iokit". */
    const char *name;

    /**
     * @list_services: store the registry IDs of up to @max services
     * served at @arg (the target string after "scheme:") in @ids and
     * their total in *@count.  IDs are opaque and stable while the
     * service lives.
     */
    IOReturn (*list_services)(const char *arg, uint64_t *ids, uint32_t max,
                              uint32_t *count);

    /**
     * @status: optional (NULL: kIOReturnUnsupported); the counters of the
     * dext at @arg.  @out is AppleDextStatus from the public header.
     */
    IOReturn (*status)(const char *arg, struct AppleDextStatus *out);

    /**
     * @open: open a user client of @type on service @id (as
     * IOServiceOpen).  kIOReturnNotFound for an unknown @id,
     * kIOReturnUnsupported for a @type other than 0.
     */
    IOReturn (*open)(const char *arg, uint64_t id, uint32_t type,
                     DextTransport **out);

    /**
     * @call: synchronous method call (as IOConnectCallMethod).  The
     * returned code is the dext's answer, or a transport failure.
     */
    IOReturn (*call)(DextTransport *t, uint32_t selector,
                     const DextCallArgs *args);

    /**
     * @call_async: method call whose later completion makes @wake's fd
     * readable (as IOConnectCallAsyncMethod with a notification port).
     */
    IOReturn (*call_async)(DextTransport *t, uint32_t selector,
                           DextWake *wake, const DextCallArgs *args);

    /**
     * @wake_create: make a wake target usable with @t.  Its fd is
     * non-blocking and readable once per completion (or coalesced).
     */
    IOReturn (*wake_create)(DextTransport *t, DextWake **out);

    /**
     * @map: map memory @type into this process (as IOConnectMapMemory64
     * with kIOMapAnywhere | @options).  The transport remembers the
     * mapping until @unmap or @close.
     */
    IOReturn (*map)(DextTransport *t, uint32_t type, uint32_t options,
                    mach_vm_address_t *addr, mach_vm_size_t *size);

    /**
     * @unmap: undo one @map of @type at @addr; kIOReturnBadArgument if
     * there is no such mapping.
     */
    IOReturn (*unmap)(DextTransport *t, uint32_t type, mach_vm_address_t addr);

    /**
     * @close: unmap every mapping and close the user client.  Called
     * once, when no other hook of @t is running or can start.
     */
    void (*close)(DextTransport *t);
};

/**
 * dext_transport_lookup() - find the transport for a target string
 * @target: "scheme:arg" or "scheme"
 * @out_arg: receives the part after the colon ("" if none)
 *
 * Return: the ops, or NULL for an unknown scheme.
 */
const DextTransportOps *dext_transport_lookup(const char *target,
                                              const char **out_arg);

/*
 * Which transports a build has.  IOKit: on Darwin, and wherever the build
 * defines LIBDEXT_HAVE_IOKIT (also the compile check on Linux, against
 * stand-in headers).  unix and inproc rely on Linux interfaces (SOCK_SEQPACKET
 * with peer credentials, eventfd, process_vm_readv): everywhere but Darwin.
 */
#if defined(__APPLE__) && !defined(LIBDEXT_HAVE_IOKIT)
#define LIBDEXT_HAVE_IOKIT 1
#endif

#if !defined(__APPLE__)
extern const DextTransportOps dext_transport_unix;
extern const DextTransportOps dext_transport_inproc;
#endif
#if defined(LIBDEXT_HAVE_IOKIT)
extern const DextTransportOps dext_transport_iokit;
#endif

#endif /* LIBDEXT_TRANSPORT_H */
