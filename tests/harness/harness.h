/*
 * SPDX-License-Identifier: MIT
 *
 * A tiny harness for the libdext API tests.
 *
 * Every test program calls harness_init() first.  It reads
 * "--transport inproc|unix|iokit|target" from the command line and makes
 * the dext the test talks to: an in-process core ("inproc:DEVICES"), the
 * IOKit transport over the model of IOKitLib whose registry serves
 * DEVICES ("iokit", with libdext from tests/iokit-model), the
 * dext $DEXT_TARGET names as it is (target: nothing is started, DEVICES
 * is not used; for programs written to run against any dext), or a private
 * dextd ($DEXTD, with the space-separated words of $HARNESS_DEXTD_ARGS
 * appended to its command line) listening on a socket in a fresh
 * temporary directory ("unix:PATH"; "unix:PATH,poll" for unix-poll,
 * calls through a polled ring).  Either way $DEXT_TARGET is set, so
 * the seed functions that use the default target (apple_dext_connect())
 * reach the same dext as harness_target().
 *
 * The checks (CHECK(), CHECK_EQ(), CHECK_KR(), CHECK_MSG()) and
 * harness_section() are check.h's, included here.  harness_finish()
 * stops the daemon first (a daemon that does not exit cleanly is a
 * failure too), then prints "N passed, N failed" and returns the exit
 * status.
 *
 * How the daemon is started can be changed through the environment, read
 * at every start (so a test may set them before harness_restart_daemon()):
 *   DEXTD_WRAPPER         words to run the daemon under (valgrind ...)
 *   HARNESS_DEXTD_ARGS    more dextd options, split at spaces
 *   HARNESS_DEXTD_NOFILE  its RLIMIT_NOFILE, soft and hard
 *   HARNESS_DEXTD_LOG     a file its standard error is appended to
 *   HARNESS_DEXTD_UID     run it as this uid and gid (the test is root)
 */

#ifndef LIBDEXT_TESTS_HARNESS_H
#define LIBDEXT_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "apple-dext-client.h"
#include "check.h"

/* Exit status meson reads as "skipped". */
#define HARNESS_EXIT_SKIP 77

/* Upper bound of every wait for something asynchronous, in ms. */
#define HARNESS_WAIT_MS 5000

/* The device the default "edu" spec places. */
#define EDU_BUS 0
#define EDU_DEV 3
#define EDU_FN  0

/**
 * harness_init() - parse the command line and start the dext
 * @argc: main()'s argc
 * @argv: main()'s argv
 * @devices: device specs joined with '+' (e.g. "edu+edu,bdf=00:07.0"),
 *           served by both transports; NULL means "edu"
 *
 * Exits with status 77 if the unix transport is asked for and $DEXTD is
 * not set, and with 1 if the daemon cannot be started.
 */
void harness_init(int argc, char **argv, const char *devices);

/**
 * harness_real_devices() - are the test's edus real ones?
 *
 * True when $HARNESS_EDU_HOSTS made them QEMU's edus behind VFIO (the VM
 * rig): what only an emulation can show (IOMMU faults counted by the
 * dext, an interrupt raised synchronously inside the MMIO call, a
 * register BAR that cannot be mapped) is not asserted then.
 */
bool harness_real_devices(void);

/** harness_target() - the target string of the test's dext. */
const char *harness_target(void);

/** harness_is_unix() - true when the test runs over dextd. */
bool harness_is_unix(void);

/**
 * harness_socket_path() - the private dextd's socket
 *
 * Return: its path (harness_target() may add options after it), or NULL
 * when the test does not run over dextd.
 */
const char *harness_socket_path(void);

/**
 * harness_is_polled() - does the target ask for a polled call ring?
 *
 * Return: true for --transport unix-poll (the target ends in ",poll").
 */
bool harness_is_polled(void);

/**
 * harness_under_tsan() - true in a ThreadSanitizer build (make tsan)
 *
 * The API tests keep to the public API, so they ask here rather than
 * include support/sanitizers.h: under TSan dextd never maps a client's
 * file (core/guarded-copy.c), which some results depend on.
 *
 * Return: true when this build runs under ThreadSanitizer.
 */
bool harness_under_tsan(void);

/**
 * harness_under_asan() - true in an AddressSanitizer build (make check)
 *
 * Return: true when this build runs under AddressSanitizer.
 */
bool harness_under_asan(void);

/**
 * harness_is_iokit() - true when the test runs over the IOKit transport
 * (against the model of IOKitLib, whose dext stands in for the real one).
 */
bool harness_is_iokit(void);

/** harness_server_pid() - dextd's pid, or this process for inproc. */
pid_t harness_server_pid(void);

/** harness_rss_kb() - VmRSS of process @pid in kB, or -1. */
long harness_rss_kb(pid_t pid);

/** harness_count_fds() - open file descriptors of process @pid, or -1. */
int harness_count_fds(pid_t pid);

/** harness_count_threads() - threads of process @pid, or -1. */
int harness_count_threads(pid_t pid);

/**
 * harness_raw_connect() - a new connection to dextd, nothing said on it
 *
 * For tests that speak the wire protocol by hand.
 *
 * Return: a SOCK_SEQPACKET socket, or -1 (also for inproc).
 */
int harness_raw_connect(void);

/**
 * harness_stop_daemon() - SIGTERM dextd now, with harness_finish()'s checks
 *
 * For tests of what clients see once the daemon has gone.  Does nothing
 * for the inproc transport or if the daemon was stopped already.
 */
void harness_stop_daemon(void);

/**
 * harness_pause_daemon() - SIGSTOP dextd and wait until it has stopped
 *
 * For tests of what clients see while the daemon does not answer: a
 * stopped dextd keeps its sockets, so its clients' waits run out.  The
 * signal takes a moment to land; this returns once /proc says the daemon
 * is stopped (a failed check if it does not within HARNESS_WAIT_MS).
 * Does nothing for the inproc transport.
 */
void harness_pause_daemon(void);

/** harness_resume_daemon() - SIGCONT dextd after harness_pause_daemon(). */
void harness_resume_daemon(void);

/**
 * harness_kill_daemon() - SIGKILL dextd now and remove its socket
 *
 * For tests of a daemon that dies without cleaning up.  Over iokit every
 * dext of the model crashes and its service is terminated (at once for
 * the caller's purposes: the model's poller does it, so wait for what it
 * causes).  Does nothing for the inproc transport or if the daemon was
 * stopped already.
 */
void harness_kill_daemon(void);

/**
 * harness_restart_daemon() - start a new dextd with the same devices
 *
 * After harness_stop_daemon() or harness_kill_daemon().  The new daemon
 * listens on a new socket: harness_target() and $DEXT_TARGET change.
 */
void harness_restart_daemon(void);

/** harness_skip() - stop the daemon and exit with status 77. */
void harness_skip(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

/** harness_restore_log_handler() - reinstall the "libdext:" log printer. */
void harness_restore_log_handler(void);

/* ------------------------------------------------------------------ */
/* Bounded waiting                                                      */

typedef struct HarnessDeadline {
    struct timespec end;
} HarnessDeadline;

/** harness_deadline() - a deadline @ms milliseconds from now. */
HarnessDeadline harness_deadline(unsigned ms);

/** harness_expired() - true once @d has passed. */
bool harness_expired(const HarnessDeadline *d);

/** harness_now_ms() - CLOCK_MONOTONIC in ms, to time what a test waits for. */
double harness_now_ms(void);

/**
 * harness_backoff() - pause between two polls of a condition
 * @round: the caller's poll counter, starting at 0
 *
 * Yields at first, then sleeps up to a millisecond: polls stay cheap
 * when the condition is met at once and do not spin when it is not.
 * Never used to wait for an event, only to space out polls.
 */
void harness_backoff(unsigned *round);

/* ------------------------------------------------------------------ */
/* Helpers shared by the tests                                          */

/**
 * harness_connect() - connect to @bus:@dev.@fn of harness_target()
 *
 * Return: the handle, or IO_OBJECT_NULL (a failed check) on error.
 */
io_connect_t harness_connect(uint8_t bus, uint8_t dev, uint8_t fn);

/** harness_connect_edu() - harness_connect() to the default edu. */
io_connect_t harness_connect_edu(void);

/**
 * harness_listed() - whether harness_target() lists device 00:@dev.0
 * @dev: PCI device number on bus 0, function 0
 * @count: receives the number of devices listed (may be NULL)
 *
 * The listing is checked; among the first 16 devices only.
 */
bool harness_listed(uint8_t dev, uint32_t *count);

/**
 * harness_status() - apple_dext_get_status(harness_target()), checked
 *
 * Return: whether @out was filled; over iokit never (the real dext keeps
 * no counters; the check is that the transport answers Unsupported).
 */
bool harness_status(AppleDextStatus *out);

/**
 * harness_fill_random() - fill @buf with pseudo-random bytes
 *
 * The generator is seeded once per process from $HARNESS_SEED, else from
 * the time and pid; the seed is printed so a failure can be replayed.
 */
void harness_fill_random(void *buf, size_t len);

#endif /* LIBDEXT_TESTS_HARNESS_H */
