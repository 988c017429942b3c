/*
 * SPDX-License-Identifier: MIT
 *
 * Unit test for core/guarded-copy: a copy through a memfd mapping that
 * its owner truncates fails instead of killing the process, both ways
 * and from several threads at once; a SIGBUS that is not a guarded
 * copy's (another mapping, a sent signal) still kills as before, or
 * reaches the handler installed before ours.
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/core-internal.h"
#include "support/sanitizers.h"

#define PAGES 64
#define LEN   (PAGES * 4096)

static uint8_t *map_memfd(int *fd)
{
    void *p;

    *fd = memfd_create("guarded-copy", MFD_CLOEXEC);
    if (*fd < 0 || ftruncate(*fd, LEN) != 0) {
        return NULL;
    }
    p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

static uint8_t local[LEN];

static void test_truncated(void)
{
    uint8_t *m;
    int fd;

    harness_section("copies through a mapping truncated behind it");
    m = map_memfd(&fd);
    if (!CHECK(m != NULL)) {
        return;
    }
    memset(local, 0xa5, LEN);
    CHECK(dext_guarded_copy(m, local, LEN, m, LEN));
    CHECK_EQ(m[LEN - 1], 0xa5);
    CHECK(ftruncate(fd, LEN / 2) == 0);
    /* Into and out of the lost half, and across the new end. */
    CHECK(!dext_guarded_copy(m + LEN / 2, local, 4096, m, LEN));
    CHECK(!dext_guarded_copy(local, m + LEN / 2, 4096, m, LEN));
    CHECK(!dext_guarded_copy(m, local, LEN, m, LEN));
    CHECK(!dext_guarded_copy(local, m, LEN, m, LEN));
    /* The half that is left still copies, again and again. */
    CHECK(dext_guarded_copy(local, m, LEN / 2, m, LEN));
    CHECK(dext_guarded_copy(m, local, LEN / 2, m, LEN));
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(!dext_guarded_copy(local, m, 1, m, LEN));
    munmap(m, LEN);
    close(fd);
}

static uint8_t *shared_map;

static void *faulting_thread(void *arg)
{
    uint8_t buf[4096];
    uintptr_t fails = 0;
    int i;

    for (i = 0; i < 1000; i++) {
        fails += !dext_guarded_copy(buf, shared_map + LEN - 4096, 4096,
                                    shared_map, LEN);
    }
    return (void *)fails;
}

static void test_threads(void)
{
    pthread_t t[4];
    uint8_t *m;
    int fd, i;

    harness_section("four threads faulting at once");
    m = map_memfd(&fd);
    if (!CHECK(m != NULL)) {
        return;
    }
    CHECK(ftruncate(fd, 0) == 0);
    shared_map = m;
    for (i = 0; i < 4; i++) {
        pthread_create(&t[i], NULL, faulting_thread, NULL);
    }
    for (i = 0; i < 4; i++) {
        void *fails;

        pthread_join(t[i], &fails);
        CHECK_EQ((uintptr_t)fails, 1000);
    }
    munmap(m, LEN);
    close(fd);
}

/*
 * In a child: @fn must end it with SIGBUS -- or, where a sanitizer's
 * SIGBUS handler came before ours (it reports and exits), with a failure
 * status other than @fn's own setup failure (2).
 */
static void expect_sigbus_death(const char *what, void (*fn)(void))
{
    pid_t pid = fork();
    int st = 0;

    if (pid == 0) {
        fn();
        _exit(0);
    }
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK_MSG((WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS) ||
              (WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
               WEXITSTATUS(st) != 2),
              "%s: child status 0x%x, not killed by SIGBUS", what, st);
}

/* A truncated mapping touched outside a guarded copy. */
static void unguarded_fault(void)
{
    uint8_t *m;
    int fd;

    m = map_memfd(&fd);
    if (m == NULL || ftruncate(fd, 0) != 0) {
        _exit(2);
    }
    *(volatile uint8_t *)m = 1;
}

/* A guarded copy whose fault is in a mapping it was not told about. */
static void other_mapping_fault(void)
{
    uint8_t *m, *guarded;
    int fd, fd2;

    m = map_memfd(&fd);
    guarded = map_memfd(&fd2);
    if (m == NULL || guarded == NULL || ftruncate(fd, 0) != 0) {
        _exit(2);
    }
    dext_guarded_copy(guarded, m, 64, guarded, LEN);
}

static void sent_sigbus(void)
{
    raise(SIGBUS);
}

static volatile sig_atomic_t prev_handler_ran;

static void prev_handler(int sig)
{
    prev_handler_ran = 1;
}

static void test_not_ours(void)
{
    harness_section("a SIGBUS that is not a guarded copy's");
    expect_sigbus_death("fault outside a copy", unguarded_fault);
    expect_sigbus_death("fault in another mapping", other_mapping_fault);
    expect_sigbus_death("raise(SIGBUS)", sent_sigbus);
}

/* Before this process installs it: in a child, over a handler of its own. */
static void test_chained(void)
{
    pid_t pid;
    int st = 0;

    harness_section("a sent SIGBUS reaches the handler installed before");
    pid = fork();
    if (pid == 0) {
        signal(SIGBUS, prev_handler);
        if (!dext_guarded_copy_init()) {
            _exit(2);
        }
        raise(SIGBUS);
        _exit(prev_handler_ran ? 0 : 1);
    }
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
#if DEXT_UNDER_TSAN
    /* TSan keeps a fault's SIGBUS from handlers: nothing is guarded. */
    CHECK(!dext_guarded_copy_init());
    return harness_finish();
#endif
    test_chained();
    if (!CHECK(dext_guarded_copy_init()) || !CHECK(dext_guarded_copy_init())) {
        return harness_finish();
    }
    test_truncated();
    test_threads();
    test_not_ours();
    return harness_finish();
}
