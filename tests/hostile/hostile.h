/*
 * SPDX-License-Identifier: MIT
 *
 * The hostile suite's runner: attacks on a private dextd, one family of
 * attacks per program (docs: tests/README.md, plan: issue 9).
 *
 * Each attack runs against a dextd of its own, started from $DEXTD with
 * the devices and options the attack asks for, so one attack's damage
 * never spills into the next.  Around every attack the runner:
 *
 *  - keeps a well-behaved bystander busy on edu through the public API,
 *    on a thread of its own (MMIO reads and factorials), and records the
 *    round trip of each call before and during the attack;
 *  - takes dextd's baseline (open fds, threads, RSS and its STATUS
 *    counters) once the bystander is running;
 *  - afterwards requires dextd alive (the same pid, answering STATUS),
 *    the bystander answered within HOSTILE_ANSWER_MS every time, and the
 *    baseline back within HOSTILE_SETTLE_MS (RSS with a tolerance).
 *
 * Speed is printed, never asserted.  Every wait is bounded.  One line per
 * attack (PASS, FAIL or SKIP and the numbers), then "N passed, N failed".
 * Checks may run in forked children: failures are counted in memory
 * shared with them.
 */

#ifndef LIBDEXT_TESTS_HOSTILE_H
#define LIBDEXT_TESTS_HOSTILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Upper bound on any one answer of dextd, in ms. */
#define HOSTILE_ANSWER_MS 2000

/* Upper bound on dextd's return to its baseline after an attack, in ms. */
#define HOSTILE_SETTLE_MS 5000

/* The devices every attack gets unless it asks for others. */
#define HOSTILE_DEVICES "edu+ivshmem"

/* Where the default devices sit. */
#define HOSTILE_EDU_BDF     0x0018      /* 00:03.0 */
#define HOSTILE_IVSHMEM_BDF 0x0020      /* 00:04.0 */

/* HostileAttack.flags */
#define HOSTILE_DISTURBS_DEVICE 0x1u    /* resets edu: bystander factorials
                                           may come out wrong */
#define HOSTILE_OPEN_SOCKET_DIR 0x2u    /* the socket directory is 0777 */

/**
 * HostileAttack - one attack of a family
 * @name: "family/what", printed in the result line
 * @finding: "F3" etc. when it is the regression test of a finding of
 *           issue 9, else NULL
 * @run: the attack; uses HCHECK for what it asserts
 * @devices: dextd's devices joined with '+'; NULL for HOSTILE_DEVICES
 * @args: extra dextd arguments, NULL-terminated, or NULL.  A dextd that
 *        refuses them (an older one) is started without them, and the
 *        result line says so: the attack then finds the hole they close.
 * @nofile: dextd's RLIMIT_NOFILE (soft and hard), 0 to inherit ours
 * @flags: HOSTILE_* flags
 */
typedef struct HostileAttack {
    const char *name;
    const char *finding;
    void (*run)(void);
    const char *devices;
    const char *const *args;
    unsigned nofile;
    unsigned flags;
} HostileAttack;

/**
 * hostile_main() - run a family's attacks and print the summary
 * @argc: main()'s argc
 * @argv: main()'s argv; arguments, if any, select attacks whose name
 *        contains one of them
 * @attacks: the family
 * @n: how many
 *
 * Return: the exit status: 0 if no attack failed, 77 if every attack
 * was skipped, else 1.
 */
int hostile_main(int argc, char **argv, const HostileAttack *attacks,
                 size_t n);

/* ------------------------------------------------------------------ */
/* Inside an attack                                                     */

/**
 * hostile_check() - count a check of the running attack
 * @ok: its outcome
 * @file: source file
 * @line: source line
 * @fmt: what was expected (printf format)
 *
 * A failure is printed at once and fails the attack.  Safe on any
 * thread and in forked children.
 *
 * Return: @ok.
 */
bool hostile_check(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define HCHECK(cond, ...) \
    hostile_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/**
 * hostile_skip() - mark the running attack skipped
 * @fmt: why (printf format)
 *
 * The attack should return soon after; checks that failed before still
 * fail it.
 */
void hostile_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * hostile_note() - add numbers or facts to the attack's result line
 * @fmt: printf format
 */
void hostile_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** hostile_failed() - true once a check of the running attack failed. */
bool hostile_failed(void);

/** hostile_socket_path() - the socket of the running attack's dextd. */
const char *hostile_socket_path(void);

/** hostile_socket_dir() - the directory holding it. */
const char *hostile_socket_dir(void);

/** hostile_target() - "unix:PATH", for the public API. */
const char *hostile_target(void);

/** hostile_dextd_pid() - pid of the running attack's dextd. */
pid_t hostile_dextd_pid(void);

/**
 * hostile_dextd_alive() - dextd has not exited (it may still be wedged)
 *
 * Return: true while the process lives.
 */
bool hostile_dextd_alive(void);

/**
 * hostile_service() - the service ID of the device at a BDF
 * @bdf: bus << 8 | dev << 3 | fn, e.g. HOSTILE_EDU_BDF
 *
 * Return: the ID, or 0 if dextd serves no such device.
 */
uint64_t hostile_service(uint16_t bdf);

/**
 * hostile_log_lines() - lines dextd has logged since it started
 *
 * Return: the count (dextd's stderr goes to a file of the attack).
 */
unsigned hostile_log_lines(void);

/**
 * hostile_log_has() - has dextd logged a line containing @needle?
 * @needle: the text
 *
 * Return: true if a line of its log contains it.
 */
bool hostile_log_has(const char *needle);

/**
 * hostile_now_ms() - monotonic time in ms, for bounded waits and reports
 *
 * Return: milliseconds since an arbitrary point.
 */
double hostile_now_ms(void);

/** hostile_sleep_ms() - sleep @ms milliseconds (not to wait for events). */
void hostile_sleep_ms(unsigned ms);

/* ------------------------------------------------------------------ */
/* Child processes                                                      */

/**
 * HostileChild - a forked helper process and two pipes to it
 * @pid: its pid, or -1
 * @to_child: the parent's end for hostile_child_release()
 * @from_child: the parent's end for hostile_child_read()
 */
typedef struct HostileChild {
    pid_t pid;
    int to_child;
    int from_child;
} HostileChild;

/**
 * hostile_child_start() - fork a helper that runs @fn(@arg), then exits
 * @c: receives the child
 * @fn: the child's work; it may use HCHECK and the raw channel helpers
 * @arg: passed to @fn
 * @keep: fds the child keeps (every other fd above 2 is closed in it,
 *        so it holds no copy of the parent's channels), or NULL
 * @nkeep: how many
 *
 * The child dies with the test (PR_SET_PDEATHSIG).
 *
 * Return: true if the fork worked.
 */
bool hostile_child_start(HostileChild *c, void (*fn)(void *), void *arg,
                         const int *keep, int nkeep);

/**
 * hostile_child_send() - in a child: send @len bytes to the parent
 * @buf: the bytes
 * @len: how many
 */
void hostile_child_send(const void *buf, size_t len);

/** hostile_child_ready() - in a child: send one byte to the parent. */
void hostile_child_ready(void);

/**
 * hostile_child_wait_release() - in a child: wait for the parent's go
 * @ms: at most this long
 *
 * Return: true if the parent released us, false on timeout or its exit.
 */
bool hostile_child_wait_release(unsigned ms);

/**
 * hostile_child_read() - in the parent: read what a child sent
 * @c: the child
 * @buf: where to
 * @len: exactly this many bytes
 * @ms: at most this long
 *
 * Return: true if all @len bytes arrived in time.
 */
bool hostile_child_read(HostileChild *c, void *buf, size_t len, unsigned ms);

/**
 * hostile_child_wait_ready() - in the parent: hostile_child_read() of
 * the one byte of hostile_child_ready()
 * @c: the child
 * @ms: at most this long
 *
 * Return: true if it arrived in time.
 */
bool hostile_child_wait_ready(HostileChild *c, unsigned ms);

/** hostile_child_release() - in the parent: let a waiting child go on. */
void hostile_child_release(HostileChild *c);

/**
 * hostile_child_reap() - in the parent: wait for a child's exit
 * @c: the child; its pipes are closed
 * @ms: SIGKILL it if it has not exited after this long
 *
 * Return: its wait status, or -1.
 */
int hostile_child_reap(HostileChild *c, unsigned ms);

#endif /* LIBDEXT_TESTS_HOSTILE_H */
