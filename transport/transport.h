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
 * is the same code for every transport.
 *
 * Hooks are documented in the style of libusb's struct usbi_os_backend:
 * for each, whether it is optional, whether it may block, which locks
 * are held when it runs and which it takes, and what it returns.  Rules
 * that hold for every hook, so each entry below says only what differs:
 *
 *  - Locks held: none.  The client library calls every hook with none
 *    of its own locks held (client/ holds no lock across a hook), and no
 *    hook calls back into the client library.
 *  - Locks taken: the transport's own (DextMutex, support/locks.h), each
 *    only for bookkeeping: none is held across a round trip, a sleep, a
 *    poll or any other call that may block.  The in-process transport
 *    also takes the core's locks, inside the core's calls.  The log
 *    handler's lock (support/log.h) is taken last of all: lines logged
 *    under a transport's or the core's locks reach the application's
 *    handler with those locks held.
 *  - Concurrency: the hooks on an open DextTransport (@call, @call_async,
 *    @wake_create, @map, @unmap) may run at once on any number of
 *    threads; @close runs alone (see there).  @list_services, @status and
 *    @open, which take a target argument, may run at any time.
 *  - Returns: an IOReturn.  A transport whose peer has gone returns
 *    kIOReturnNotResponding from every later hook that needs the peer.
 *    unix bounds every wait for dextd (docs/transports.md, "Timeouts")
 *    and answers kIOReturnTimeout when one passes; the request may still
 *    be executing then, and the channel it went on is closed.
 */

#ifndef LIBDEXT_TRANSPORT_H
#define LIBDEXT_TRANSPORT_H

#include <stdbool.h>
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
 * transport made it: a wake outlives its transport (see @destroy), so it
 * carries its own ops.
 */
struct DextWakeOps {
    /**
     * @consume: clear the wake's readiness.  Mandatory.  Never blocks;
     * takes no lock.  May run at the same time as an async completion
     * making the wake readable, never at the same time as @destroy.
     *
     * Returns the number of completions seen since the last call (0 if
     * none; a transport may coalesce several into one).
     */
    uint64_t (*consume)(DextWake *wake);

    /**
     * @destroy: release the wake target.  Mandatory.  Called once, with
     * a non-NULL @wake, possibly while @close of the transport that made
     * it runs, or after it.  May block: the unix transport unregisters
     * the wake with dextd (a best-effort round trip, skipped once the
     * transport is closing or its peer has gone); the iokit transport
     * waits for a completion callback that is running.
     *
     * In a forked child of the process that made the wake (a transport
     * records dext_fork_generation() at @wake_create: support/fork.h),
     * the wake is still the parent's, who goes on using it: release only
     * this process's copies (close its fds, free its memory), taking no
     * lock, since a parent thread may have held it at the fork, with no
     * word to the peer, and no call on the parent's port or dispatch
     * queue (iokit).  Never blocks there.
     *
     * Returns nothing.
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
 * struct DextTransportOps - the hooks of one transport (see the rules at
 * the top of this file).
 */
struct DextTransportOps {
    /** @name: the target scheme, e.g. "unix", "inproc", "iokit". */
    const char *name;

    /**
     * @child_needs_exec: a forked child can reach a dext over this
     * transport only after exec() (iokit: libdispatch), not by
     * connecting anew; what the client's refusal of an inherited
     * connection tells the child.
     */
    bool child_needs_exec;

    /**
     * @list_services: store the registry IDs of up to @max services
     * served at @arg (the target string after "scheme:") in @ids and
     * their total in *@count.  IDs are opaque and stable while the
     * service lives.
     *
     * Mandatory.  May block: unix connects to dextd and makes two round
     * trips; inproc builds the target's core on first use (creating its
     * devices) under its list-of-cores lock; iokit asks the registry.
     *
     * Returns kIOReturnSuccess; kIOReturnBadArgument for an @arg the
     * transport cannot use; kIOReturnNotResponding if nobody serves @arg;
     * kIOReturnNotPermitted if the server refuses us or is not trusted;
     * kIOReturnIPCError for a malformed answer; kIOReturnNoMemory.
     */
    IOReturn (*list_services)(const char *arg, uint64_t *ids, uint32_t max,
                              uint32_t *count);

    /**
     * @status: fill @out (AppleDextStatus from the public header, zeroed
     * by the caller) with the counters of the dext at @arg.
     *
     * Optional: NULL means the dext keeps no such counters, and the
     * client answers kIOReturnUnsupported.  May block as @list_services.
     *
     * Returns as @list_services.
     */
    IOReturn (*status)(const char *arg, struct AppleDextStatus *out);

    /**
     * @open: open a user client of @type on service @id of @arg (as
     * IOServiceOpen) and store it in *@out.
     *
     * Mandatory.  May block: unix connects and makes two round trips.
     *
     * Returns kIOReturnSuccess; kIOReturnNotFound for an unknown @id;
     * kIOReturnUnsupported for a @type other than 0; iokit:
     * kIOReturnNotPermitted in a forked child of a process that has
     * connected over it (libdispatch would crash it); else as
     * @list_services.
     */
    IOReturn (*open)(const char *arg, uint64_t id, uint32_t type,
                     DextTransport **out);

    /**
     * @call: synchronous method call (as IOConnectCallMethod).
     *
     * Mandatory.  Blocks for one round trip to the dext (unix: on a
     * channel of its own, taken from the connection's pool without a
     * lock; inproc: the core's session call).
     *
     * Returns the dext's answer, or a transport failure:
     * kIOReturnBadArgument for @args the transport cannot carry,
     * kIOReturnNotResponding once the peer has gone, kIOReturnIPCError
     * for a malformed reply.
     */
    IOReturn (*call)(DextTransport *t, uint32_t selector,
                     const DextCallArgs *args);

    /**
     * @call_async: method call whose later completion makes @wake's fd
     * readable (as IOConnectCallAsyncMethod with a notification port).
     * @wake comes from @wake_create of the same @t.
     *
     * Mandatory.  Blocks as @call (for the call, not its completion).
     *
     * Returns as @call; kIOReturnBadArgument for a NULL @wake (or, unix,
     * one made by another transport).
     */
    IOReturn (*call_async)(DextTransport *t, uint32_t selector,
                           DextWake *wake, const DextCallArgs *args);

    /**
     * @wake_create: make a wake target usable with @t, its ops set.  Its
     * fd is non-blocking and readable once per completion (or
     * coalesced).
     *
     * Mandatory.  May block: unix registers the wake with dextd (one
     * round trip passing the fd).
     *
     * Returns kIOReturnSuccess, kIOReturnNoMemory, kIOReturnNoResources,
     * or as @call.
     */
    IOReturn (*wake_create)(DextTransport *t, DextWake **out);

    /**
     * @map: map memory @type into this process (as IOConnectMapMemory64
     * with kIOMapAnywhere | @options).  The transport remembers the
     * mapping until @unmap or @close.
     *
     * Mandatory.  Blocks for one round trip to the dext; the transport's
     * mapping-list lock is taken only to record the mapping.
     *
     * Returns kIOReturnSuccess; the dext's refusal; kIOReturnVMError if
     * the memory cannot be mapped here; or as @call.
     */
    IOReturn (*map)(DextTransport *t, uint32_t type, uint32_t options,
                    mach_vm_address_t *addr, mach_vm_size_t *size);

    /**
     * @map_fd: as @map, but hand the memory to the caller in @out (fd,
     * offset, size, writable) instead of mapping it; the caller owns
     * @out->fd.  The transport keeps no record of it.  An fd that grants
     * more than the memory (DextMemory.local_only: a VFIO device fd) is
     * never handed out.
     *
     * Optional: NULL where memory does not arrive as an fd (iokit), and
     * the client answers kIOReturnUnsupported.  Blocks as @map.
     *
     * Returns as @map; kIOReturnUnsupported for local-only memory.
     */
    IOReturn (*map_fd)(DextTransport *t, uint32_t type, uint32_t options,
                       DextMemory *out);

    /**
     * @unmap: undo one @map of @type at @addr.
     *
     * Mandatory.  unix and inproc unmap locally (munmap), without the
     * peer; iokit sends a message to the dext, with no lock held.  Two
     * unmaps of one mapping never both reach the system.
     *
     * Returns kIOReturnSuccess; kIOReturnBadArgument if there is no such
     * mapping; iokit: a failed unmap's code (the mapping is kept).
     */
    IOReturn (*unmap)(DextTransport *t, uint32_t type, mach_vm_address_t addr);

    /**
     * @close: unmap every mapping, close the user client and free @t.
     *
     * Mandatory.  Called once, when no other hook of @t is running or can
     * start; only the DextWakeOps of @t's wakes may still run, or come
     * later.
     * Blocks until the dext has let go of the user client, as
     * IOServiceClose: unix hangs up and waits, for at most 5 s and with
     * no lock held, until dextd has hung up every channel (so the
     * session is gone from dextd when close returns, or dextd is not
     * answering).
     *
     * Not called in a forked child for a @t its parent opened: that
     * takes @close_inherited instead.
     *
     * Returns nothing.
     */
    void (*close)(DextTransport *t);

    /**
     * @close_inherited: let go of @t in a forked child of the process
     * that opened it, in place of @close.  The user client is still the
     * parent's, who goes on using it: release only what is this
     * process's own copy (file descriptors, mappings) and free @t (or
     * keep it reachable where freeing would touch the parent's state),
     * without a word to the peer and without taking any lock, since a
     * parent thread may have held it at the fork.  No other hook of @t
     * runs in the child (client/ refuses its calls there); its wakes'
     * DextWakeOps may, before or after.
     *
     * Mandatory.  Never blocks.  iokit frees only
     * its memory: Mach port rights are not inherited, IOKit's mappings
     * are not either (VM_INHERIT_NONE), and libdispatch is not to be used
     * in the child of a process where it started threads.
     *
     * Returns nothing.
     */
    void (*close_inherited)(DextTransport *t);
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

/**
 * dext_transport_set_timeouts() - the process's default bounds on waits
 * @call_ms: for a call, 0 = none, -1 = the environment's or built-in
 * @connect_ms: for connecting, likewise
 *
 * Only the unix transport waits on a peer that can stall; targets it
 * resolves afterwards take these unless they carry their own options.
 *
 * Return: kIOReturnSuccess; kIOReturnUnsupported where no transport has
 * such waits (Darwin: IOKit).
 */
IOReturn dext_transport_set_timeouts(int call_ms, int connect_ms);

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
