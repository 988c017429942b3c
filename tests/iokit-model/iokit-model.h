/*
 * SPDX-License-Identifier: MIT
 *
 * A behavioural model of the parts of IOKitLib, CoreFoundation,
 * libdispatch and Mach that transport/iokit.c uses, on Linux, for tests
 * only (never installed).  The "kernel" behind it is the project's
 * in-process dext core: one dext service per device, each selector
 * dispatched to a core session as the real user client would.
 *
 * The machine's devices are read from $IOKIT_MODEL_DEVICES (device specs
 * joined with '+', as for "inproc:"; default "edu") when the registry is
 * first used.  Besides the dext services the registry holds one
 * IOUserService of another class, which the transport must not list.
 *
 * Misuse that would be a bug on macOS aborts at once with a line starting
 * "iokit-model: MISUSE:"; leaks are counted and reported when the process
 * exits (exit status 1 unless $IOKIT_MODEL_LEAKS_OK is set).  The
 * functions below let model tests change the machine behind the
 * transport's back; programs that reach the model only through libdext
 * can set $IOKIT_MODEL_KILL_SIGNAL to a signal number, on which every
 * dext crashes and its service is terminated.
 *
 * fork(): a child has none of its parent's notification ports, io
 * objects or dispatch queues, and no libdispatch at all once the parent's
 * had started threads: using any of them there is a misuse.  A child may
 * list services; leaks are its own objects' only.
 */

#ifndef LIBDEXT_TESTS_IOKIT_MODEL_H
#define LIBDEXT_TESTS_IOKIT_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <IOKit/IOKitLib.h>

/* How a dext goes away (see iokit_model_kill()). */
typedef enum IokitModelDeath {
    /*
     * The dext process crashed; its service is not terminated yet, and
     * no interest client has been told.
     */
    IOKIT_MODEL_CRASHED = 1,
    /*
     * The service was terminated (the dext exited, or was unloaded, or
     * the kernel cleaned up after a crash): kIOMessageServiceIsTerminated
     * goes to its kIOGeneralInterest notifications.
     */
    IOKIT_MODEL_TERMINATED,
} IokitModelDeath;

/**
 * iokit_model_kill() - make the dext serving registry entry @id go away
 * @id: a registry entry ID as IORegistryEntryGetRegistryEntryID gives
 * @how: crashed or terminated; a crashed dext's service may be
 *       terminated afterwards, as the kernel does
 *
 * Return: true if @id names a dext service.
 */
bool iokit_model_kill(uint64_t id, IokitModelDeath how);

/**
 * iokit_model_refuse_open() - make IOServiceOpen of @id answer @ret
 * @id: a registry entry ID
 * @ret: kIOReturnSuccess to stop refusing, else the refusal (e.g.
 *       kIOReturnNotPermitted, as for a missing entitlement)
 *
 * Return: true if @id names a dext service.
 */
bool iokit_model_refuse_open(uint64_t id, IOReturn ret);

/**
 * iokit_model_mapped() - is there a mapping at @addr in this task?
 *
 * Return: true if some connection's mapping covers @addr.
 */
bool iokit_model_mapped(mach_vm_address_t addr);

/**
 * iokit_model_cache_mode() - the cache mode a mapping was made with
 *
 * Return: the kIOMap*Cache bits recorded for the mapping at @addr, or
 * UINT32_MAX if there is none.
 */
uint32_t iokit_model_cache_mode(mach_vm_address_t addr);

/**
 * iokit_model_live_objects() - CF and io objects not yet released
 *
 * Return: their number (constant strings excluded).
 */
unsigned iokit_model_live_objects(void);

/**
 * iokit_model_completions() - async completions delivered so far
 *
 * Return: how many callouts the model has called.
 */
unsigned iokit_model_completions(void);

/**
 * iokit_model_messages() - interest messages delivered so far
 *
 * Return: how many interest callouts the model has called.
 */
unsigned iokit_model_messages(void);

/**
 * iokit_model_catch_misuse() - catch this thread's next misuse
 * @buf: receives the line the model would abort with
 * @len: its size
 *
 * For tests of the model's strictness: the misused call answers as the
 * kernel would instead of aborting the process.  Only the checks that
 * have a kernel answer can be caught (an output count too small).
 */
void iokit_model_catch_misuse(char *buf, size_t len);

#endif /* LIBDEXT_TESTS_IOKIT_MODEL_H */
