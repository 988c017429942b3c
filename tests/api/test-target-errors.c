/*
 * SPDX-License-Identifier: MIT
 *
 * Reaching a target that cannot be reached says why, through the log
 * handler and apple_dext_last_error_detail(): a socket's errno (a file
 * that is not a socket, a missing path, a directory this user may not
 * enter), a device served twice, a bad spec option, a macOS-only target
 * (reachable when the test runs over the model of IOKitLib).
 * The targets are the test's own; --transport picks nothing here.
 */

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char logged[512];

static void capture(void *opaque, int level, const char *msg)
{
    if (level <= APPLE_DEXT_LOG_WARNING) {
        snprintf(logged, sizeof(logged), "%s", msg);
    }
}

/* List @target: @want back, and the detail (also logged) holds each of
 * the NULL-terminated words. */
static void check_says(const char *target, kern_return_t want, ...)
{
    uint32_t count = 0;
    const char *word;
    va_list ap;

    logged[0] = '\0';
    CHECK_KR(apple_dext_list_devices(target, NULL, 0, &count), want);
    CHECK_MSG(strcmp(apple_dext_last_error_detail(), logged) == 0,
              "detail '%s' is not the logged line '%s'",
              apple_dext_last_error_detail(), logged);
    va_start(ap, want);
    while ((word = va_arg(ap, const char *)) != NULL) {
        CHECK_MSG(strstr(logged, word) != NULL, "%s: '%s' does not say '%s'",
                  target, logged, word);
    }
    va_end(ap);
}

/* As another user, reach a socket in a mode-0700 directory of root's. */
static void check_eacces(const char *dir)
{
    char target[256];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, status;
    pid_t pid;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/private", dir);
    if (!CHECK(mkdir(sa.sun_path, 0700) == 0)) {
        return;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/private/s", dir);
    fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(fd, 1) == 0);
    chmod(dir, 0755);
    snprintf(target, sizeof(target), "unix:%s", sa.sun_path);
    pid = fork();
    if (pid == 0) {
        uint32_t count;
        kern_return_t kr;

        if (setgid(65534) != 0 || setuid(65534) != 0) {
            _exit(2);
        }
        kr = apple_dext_list_devices(target, NULL, 0, &count);
        _exit(kr == kIOReturnNotPermitted &&
              strstr(apple_dext_last_error_detail(), "(EACCES)") != NULL &&
              strstr(apple_dext_last_error_detail(), "directory") != NULL ?
              0 : 1);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "another user's EACCES is not reported (status 0x%x)", status);
    close(fd);
    unlink(sa.sun_path);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/private", dir);
    rmdir(sa.sun_path);
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/libdext-target-errors-XXXXXX";
    char target[256];

    harness_init(argc, argv, NULL);
    apple_dext_set_log_handler(capture, NULL);
    if (!CHECK(mkdtemp(dir) != NULL)) {
        return harness_finish();
    }

#if !defined(__APPLE__)
    harness_section("a socket's errno is kept");
    check_says("unix:/etc/passwd", kIOReturnNotResponding, "/etc/passwd",
               "(ECONNREFUSED)", "not a socket", NULL);
    snprintf(target, sizeof(target), "unix:%s/missing", dir);
    check_says(target, kIOReturnNotResponding, "(ENOENT)", NULL);
    if (geteuid() == 0) {
        check_eacces(dir);
    }
    CHECK_EQ(apple_dext_connect_target("unix:/etc/passwd", 0, 3, 0,
                                       &(io_connect_t){ 0 }),
             kIOReturnNotResponding);
    CHECK(strstr(apple_dext_last_error_detail(), "(ECONNREFUSED)") != NULL);

    if (harness_is_iokit()) {
        /* This libdext carries the transport, over the model. */
        harness_section("iokit is reachable over the model");
        check_says("iokit", kIOReturnSuccess, NULL);
    } else {
        harness_section("iokit is macOS-only");
        check_says("iokit", kIOReturnBadArgument, "macOS-only", NULL);
    }
#endif
    check_says("nonsense:x", kIOReturnBadArgument, "unknown target", NULL);

    harness_section("a success clears the detail");
    CHECK_KR(apple_dext_list_devices(harness_target(), NULL, 0,
                                     &(uint32_t){ 0 }), kIOReturnSuccess);
    CHECK_EQ(apple_dext_last_error_detail()[0], '\0');

    /* A libdext built with -Dinproc=disabled has no such target. */
    if (apple_dext_list_devices("inproc:edu", NULL, 0, &(uint32_t){ 0 }) ==
        kIOReturnSuccess) {
        harness_section("bad device specs say what is wrong");
        check_says("inproc:edu+edu", kIOReturnExclusiveAccess,
                   "00:03.0 is served already", NULL);
        check_says("inproc:edu,foo=1", kIOReturnBadArgument,
                   "option 'foo=1'", NULL);
        check_says("inproc:ivshmem,size=3M", kIOReturnBadArgument,
                   "option 'size=3M'", NULL);
        check_says("inproc:edu,foo", kIOReturnBadArgument, "option 'foo'",
                   NULL);
        check_says("inproc:bogus", kIOReturnNotFound,
                   "no device kind 'bogus'", NULL);
    }

    rmdir(dir);
    harness_restore_log_handler();
    return harness_finish();
}
