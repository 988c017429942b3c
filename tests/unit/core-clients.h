/*
 * SPDX-License-Identifier: MIT
 *
 * Helpers for unit tests that drive the dext core directly with client
 * processes: idle children to bind sessions to (by pidfd), calls
 * through dext_session_call() without a transport, and the config space
 * of fake backends.
 */

#ifndef TESTS_UNIT_CORE_CLIENTS_H
#define TESTS_UNIT_CORE_CLIENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/dext-core.h"

/**
 * spawn_idle() - fork a child that does nothing until killed
 * @pidfd: receives a pidfd of it, or -1
 *
 * The child holds a copy of this process's memory as it was at the fork.
 *
 * Return: its pid, or -1.
 */
pid_t spawn_idle(int *pidfd);

/** reap() - kill and wait for a child of spawn_idle(), close its pidfd */
void reap(pid_t pid, int pidfd);

/**
 * have_pidfds() - can sessions of other processes be opened here?
 *
 * pidfd_open(2) may be missing (valgrind 3.19); says so on stdout.
 *
 * Return: true if it works.
 */
bool have_pidfds(void);

/**
 * call() - dext_session_call() with scalars only
 * @s: the session
 * @sel: selector
 * @in: @nin scalar inputs
 * @out: room for @nout scalar outputs, or NULL
 *
 * Return: the call's IOReturn.
 */
IOReturn call(DextSession *s, uint32_t sel, const uint64_t *in, uint32_t nin,
              uint64_t *out, uint32_t nout);

/**
 * open_claimed() - open a session on service @id for @pid and claim
 * @pidfd: a pidfd of @pid, or -1 for this process
 *
 * Return: the session, or NULL (a failed check is counted).
 */
DextSession *open_claimed(DextCore *core, uint64_t id, pid_t pid, int pidfd);

/**
 * cfg_get() - a little-endian config register of a fake device
 * @cfg: its config space, the caller's lock held
 * @off: offset, checked by the core
 * @width: 1, 2 or 4
 *
 * Return: the value.
 */
uint32_t cfg_get(const uint8_t *cfg, uint32_t off, uint32_t width);

/** cfg_set() - store a config register as cfg_get() reads it */
void cfg_set(uint8_t *cfg, uint32_t off, uint32_t width, uint32_t val);

#endif /* TESTS_UNIT_CORE_CLIENTS_H */
