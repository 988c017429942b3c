/*
 * SPDX-License-Identifier: MIT
 *
 * Copying to or from a client's shared file mapped into the core's
 * process, surviving what the client may do to the file meanwhile.
 *
 * A client owns the file behind its registered memory: it may truncate
 * it, and an access past the new end then raises SIGBUS in whoever
 * touches the page -- here, a core thread copying for device DMA.  Seals
 * (F_SEAL_SHRINK) would forbid that, but they cannot be required of a
 * client's memfd after the fact, are absent from shm_open() and regular
 * files, and a full tmpfs or an I/O error raises SIGBUS just the same.
 * So the copy itself is guarded: a thread records the mapping it is
 * copying through and a sigsetjmp() point, and a process-wide SIGBUS
 * handler jumps back there -- failing that one copy -- only when the
 * fault is that thread's and its address lies inside that mapping.  Any
 * other SIGBUS goes to the handler that was installed before ours, or
 * kills the process as it would have without us.
 *
 * The handler is installed on first use, i.e. only in a process that
 * maps client files (dextd), never in a client that runs the core
 * in-process.  SA_NODEFER lets the jump leave the signal mask as it was,
 * so sigsetjmp() need not save it (no system call per copy).
 *
 * ThreadSanitizer does not hand a fault's SIGBUS to the program's handler
 * (seen with gcc 12: the process dies of it), so in a TSan build copies
 * cannot be guarded and dext_guarded_copy_init() says so: the callers
 * then never map client files.
 */

#define _GNU_SOURCE
#include <assert.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "core/core-internal.h"
#include "support/sanitizers.h"

typedef struct CopyGuard {
    sigjmp_buf env;
    uintptr_t lo;
    uintptr_t hi;
    volatile sig_atomic_t active;
} CopyGuard;

/* Touched by its thread before any fault can find it: no lazy TLS. */
static __thread CopyGuard copy_guard;

static struct sigaction prev_sigbus;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static bool installed;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    CopyGuard *g = &copy_guard;
    uintptr_t addr = (uintptr_t)si->si_addr;

    if (g->active && si->si_code > 0 && addr >= g->lo && addr < g->hi) {
        g->active = 0;
        siglongjmp(g->env, 1);
    }
    /* Not ours: whoever handled SIGBUS before us, else the default. */
    if ((prev_sigbus.sa_flags & SA_SIGINFO) &&
        prev_sigbus.sa_sigaction != NULL) {
        prev_sigbus.sa_sigaction(sig, si, uc);
        return;
    }
    if (!(prev_sigbus.sa_flags & SA_SIGINFO) &&
        prev_sigbus.sa_handler != SIG_DFL &&
        prev_sigbus.sa_handler != SIG_IGN) {
        prev_sigbus.sa_handler(sig);
        return;
    }
    /*
     * Die as without us: a fault re-executes the access with the
     * default action in place; a sent signal is sent again.
     */
    signal(SIGBUS, SIG_DFL);
    if (si->si_code <= 0) {
        raise(SIGBUS);
    }
}

static void install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    installed = sigaction(SIGBUS, &sa, &prev_sigbus) == 0;
}

bool dext_guarded_copy_init(void)
{
    if (DEXT_UNDER_TSAN) {
        return false;
    }
    pthread_once(&install_once, install);
    return installed;
}

bool dext_guarded_copy(void *dst, const void *src, size_t len,
                       const void *map, size_t map_len)
{
    CopyGuard *g = &copy_guard;

    /* Never across a core lock: the pages may be slow, as a client's. */
    assert(dext_core_locks_held == 0);
    assert(installed && !g->active);

    if (sigsetjmp(g->env, 0) != 0) {
        return false;
    }
    g->lo = (uintptr_t)map;
    g->hi = (uintptr_t)map + map_len;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    g->active = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    memcpy(dst, src, len);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    g->active = 0;
    return true;
}
