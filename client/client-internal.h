/*
 * SPDX-License-Identifier: MIT
 *
 * Client library internals: connection handles and the helpers every
 * public function is built from.  Nothing here depends on a transport.
 */

#ifndef LIBDEXT_CLIENT_INTERNAL_H
#define LIBDEXT_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "apple-dext-client.h"
#include "protocol/dext-selectors.h"
#include "support/fork.h"
#include "support/locks.h"
#include "support/log.h"
#include "transport/transport.h"

/*
 * One open user client.  @refs keeps it alive (the handle table, each
 * call in flight and each notification hold one).  @state counts calls
 * in flight in its low bits and holds CONN_CLOSED once disconnected: one
 * word, so that "disconnected and no call in flight" is seen by exactly
 * one thread -- disconnect itself, or the last call to leave -- which
 * closes the transport without waiting for anyone.  Both, @handle, and
 * the fields marked so, are atomics (__atomic builtins on plain fields).
 *
 * A connection's memory is never freed: at its last reference it goes
 * on a free list and a later connect reuses it.  So a call looks its
 * handle up without a lock (dext_conn_enter()): whatever the table slot
 * held, it takes a reference only while @refs is not zero, and then
 * checks that @handle is still the one it was given.
 */
#define CONN_CLOSED 0x40000000u

typedef struct DextConnection {
    io_connect_t handle;
    DextTransport *t;
    /* @t's ops, kept past its close: a refused call still names them */
    const DextTransportOps *ops;
    int refs;
    unsigned state;
    struct DextConnection *next_free;   /* on the free list only */
    /* On a forked child's list of its parent's connections it let go */
    struct DextConnection *next_inherited;
    bool inherited_kept;
    bool transport_closed;          /* atomic */
    /* dext_fork_generation() at connect: whose connection it is */
    unsigned fork_gen;
    /* The generation that last said it refuses a call (atomic). */
    unsigned fork_warned;

    /* -1 unknown, 0 the dext lacks block config access, 1 it has it */
    int block_config;               /* atomic */

    /*
     * The interrupt state page, mapped once and kept until the transport
     * closes.  One caller maps it, with no lock held across the round
     * trip (@irq_page_busy); others wait on @irq_page_cond meanwhile.
     */
    DextMutex lock;
    pthread_cond_t irq_page_cond;
    bool irq_page_busy DEXT_GUARDED_BY(lock);
    volatile uint64_t *irq_page;    /* set once; read without the lock */
    /* The dext answered Unsupported to mapping the page: do not ask again. */
    bool irq_page_unsupported;      /* atomic */
} DextConnection;

/*
 * dext_conn_enter() - look up @handle and start a call on it.
 * @err: receives why not, when NULL is returned
 *
 * In a forked child a connection its parent opened is the parent's, as an
 * io_connect_t is under IOKit (a child inherits no Mach port rights): no
 * call of the child's reaches its transport.
 *
 * Return: the connection (leave it with dext_conn_leave()), or NULL with
 * *@err kIOReturnBadArgument if the handle is null, unknown or
 * disconnected, kIOReturnNotPermitted if the connection is a parent's.
 */
DextConnection *dext_conn_enter(io_connect_t handle, IOReturn *err);
/*
 * dext_conn_enter_ref() - start a call on a connection a notification holds.
 * Return: kIOReturnSuccess, or as dext_conn_enter()'s *@err.
 */
IOReturn dext_conn_enter_ref(DextConnection *c);
void dext_conn_leave(DextConnection *c);
void dext_conn_ref(DextConnection *c);
void dext_conn_unref(DextConnection *c);

/* Scalar method call; fails with kIOReturnIPCError if the dext returned
 * fewer than @min_out outputs on success.  *@nout receives the count. */
IOReturn dext_conn_call(DextConnection *c, uint32_t selector,
                        const uint64_t *in,
                        uint32_t nin, uint64_t *out, uint32_t nout_room,
                        uint32_t min_out);
IOReturn dext_conn_call_struct(DextConnection *c, uint32_t selector,
                               const uint64_t *in, uint32_t nin,
                               const void *sin, size_t sin_size, void *sout,
                               size_t *sout_size);

#endif /* LIBDEXT_CLIENT_INTERNAL_H */
