/*
 * SPDX-License-Identifier: MIT
 *
 * Connections and targets: apple_dext_connect(), _connect_target(),
 * _disconnect(), _list_devices(), _get_identity(), _get_status(),
 * _get_device_status(), _strerror(), _default_target(),
 * _default_socket_path(), and that every call refuses a null or stale
 * handle with kIOReturnBadArgument.
 */

#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "edu.h"

/* Two edus, so listing has something to truncate. */
#define DEVICES "edu+edu,bdf=00:04.0"

static bool is_edu(const AppleDextDeviceInfo *d)
{
    return d->vendor_id == EDU_VENDOR_ID && d->device_id == EDU_DEVICE_ID &&
           d->class_code == EDU_CLASS_CODE;
}

static void test_connect_seed(void)
{
    AppleDextDeviceInfo id;
    io_connect_t c;

    harness_section("apple_dext_connect() through $DEXT_TARGET");
    c = apple_dext_connect(EDU_BUS, EDU_DEV, EDU_FN);
    if (CHECK(c != IO_OBJECT_NULL)) {
        CHECK_KR(apple_dext_get_identity(c, &id), kIOReturnSuccess);
        CHECK_EQ(id.bus, EDU_BUS);
        CHECK_EQ(id.device, EDU_DEV);
        CHECK_EQ(id.function, EDU_FN);
        apple_dext_disconnect(c);
    }
    /* The second device is reachable by its own address. */
    c = apple_dext_connect(0, 4, 0);
    if (CHECK(c != IO_OBJECT_NULL)) {
        CHECK_KR(apple_dext_get_identity(c, &id), kIOReturnSuccess);
        CHECK_EQ(id.device, 4);
        apple_dext_disconnect(c);
    }
    /* No device at these addresses. */
    CHECK_EQ(apple_dext_connect(0, 9, 0), IO_OBJECT_NULL);
    CHECK_EQ(apple_dext_connect(1, EDU_DEV, EDU_FN), IO_OBJECT_NULL);
    CHECK_EQ(apple_dext_connect(EDU_BUS, EDU_DEV, 1), IO_OBJECT_NULL);
}

static void test_connect_target(void)
{
    io_connect_t c = (io_connect_t)0x5a5a;
    AppleDextDeviceInfo id;
    char path[128];

    harness_section("apple_dext_connect_target()");
    CHECK_KR(apple_dext_connect_target(harness_target(), EDU_BUS, EDU_DEV,
                                       EDU_FN, &c), kIOReturnSuccess);
    if (CHECK(c != IO_OBJECT_NULL)) {
        CHECK_KR(apple_dext_get_identity(c, &id), kIOReturnSuccess);
        CHECK_EQ(id.device, EDU_DEV);
        apple_dext_disconnect(c);
    }

    /* NULL target: the default one, which the harness made ours. */
    c = IO_OBJECT_NULL;
    CHECK_KR(apple_dext_connect_target(NULL, EDU_BUS, EDU_DEV, EDU_FN, &c),
             kIOReturnSuccess);
    if (CHECK(c != IO_OBJECT_NULL)) {
        apple_dext_disconnect(c);
    }

    /* Malformed targets and a NULL out-pointer. */
    c = (io_connect_t)0x5a5a;
    CHECK_KR(apple_dext_connect_target("bogus:", EDU_BUS, EDU_DEV, EDU_FN, &c),
             kIOReturnBadArgument);
    CHECK_EQ(c, IO_OBJECT_NULL);
    CHECK_KR(apple_dext_connect_target("bogus", EDU_BUS, EDU_DEV, EDU_FN, &c),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_connect_target("", EDU_BUS, EDU_DEV, EDU_FN, &c),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_connect_target(":edu", EDU_BUS, EDU_DEV, EDU_FN, &c),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_connect_target(harness_target(), EDU_BUS, EDU_DEV,
                                       EDU_FN, NULL), kIOReturnBadArgument);

    /* A well-formed target without that device. */
    c = (io_connect_t)0x5a5a;
    CHECK_KR(apple_dext_connect_target(harness_target(), 0, 9, 0, &c),
             kIOReturnNotFound);
    CHECK_EQ(c, IO_OBJECT_NULL);
    CHECK_KR(apple_dext_connect_target(harness_target(), 0x12, EDU_DEV,
                                       EDU_FN, &c), kIOReturnNotFound);

    /* A daemon that is not there: unreachable, not "no such device". */
    snprintf(path, sizeof(path), "unix:/nonexistent-dir-%d/dextd.sock",
             (int)getpid());
    CHECK_KR(apple_dext_connect_target(path, EDU_BUS, EDU_DEV, EDU_FN, &c),
             kIOReturnNotResponding);
    CHECK_EQ(c, IO_OBJECT_NULL);
}

static void test_list_devices(void)
{
    AppleDextDeviceInfo list[8];
    uint32_t count = 0xffff;
    bool seen3 = false, seen4 = false;
    uint32_t i;

    harness_section("apple_dext_list_devices()");
    memset(list, 0xa5, sizeof(list));
    CHECK_KR(apple_dext_list_devices(harness_target(), list, 8, &count),
             kIOReturnSuccess);
    CHECK_EQ(count, 2);
    for (i = 0; i < count && i < 8; i++) {
        CHECK(is_edu(&list[i]));
        CHECK_EQ(list[i].bus, 0);
        CHECK_EQ(list[i].function, 0);
        seen3 |= list[i].device == 3;
        seen4 |= list[i].device == 4;
    }
    CHECK(seen3 && seen4);

    /* NULL target = default target = ours. */
    count = 0;
    CHECK_KR(apple_dext_list_devices(NULL, list, 8, &count), kIOReturnSuccess);
    CHECK_EQ(count, 2);

    /* Truncation: the total is reported, only @max entries are written. */
    memset(list, 0xa5, sizeof(list));
    count = 0;
    CHECK_KR(apple_dext_list_devices(harness_target(), list, 1, &count),
             kIOReturnSuccess);
    CHECK_EQ(count, 2);
    CHECK(is_edu(&list[0]));
    CHECK_EQ(list[1].vendor_id, 0xa5a5);
    CHECK_EQ(list[1].class_code, 0xa5a5a5a5);

    /* Counting only. */
    count = 0;
    CHECK_KR(apple_dext_list_devices(harness_target(), NULL, 0, &count),
             kIOReturnSuccess);
    CHECK_EQ(count, 2);

    /* NULL out-pointers. */
    CHECK_KR(apple_dext_list_devices(harness_target(), list, 8, NULL),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_list_devices(harness_target(), NULL, 4, &count),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_list_devices("bogus:", list, 8, &count),
             kIOReturnBadArgument);
}

/* Each inproc target string is a dext of its own, kept for the process. */
static void test_inproc_cores(void)
{
    static const char other[] = "inproc:edu,bdf=00:05.0";
    AppleDextDeviceInfo list[4];
    AppleDextStatus st = { .size = sizeof(AppleDextStatus) };
    uint32_t count = 0;
    io_connect_t c;
    uint64_t v = 0;

    harness_section("inproc: one core per target string");
    CHECK_KR(apple_dext_list_devices(other, list, 4, &count),
             kIOReturnSuccess);
    CHECK_EQ(count, 1);
    CHECK_EQ(list[0].device, 5);
    CHECK_KR(apple_dext_connect_target(other, EDU_BUS, EDU_DEV, EDU_FN, &c),
             kIOReturnNotFound);
    /* Device state persists across connections to the same core. */
    CHECK_KR(apple_dext_connect_target(other, 0, 5, 0, &c), kIOReturnSuccess);
    CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
    CHECK_KR(apple_dext_mmio_write(c, EDU_MEM_IDX, EDU_REG_LIVENESS, 4, 0x77),
             kIOReturnSuccess);
    apple_dext_disconnect(c);
    CHECK_KR(apple_dext_connect_target(other, 0, 5, 0, &c), kIOReturnSuccess);
    CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_REG_LIVENESS, 4, &v),
             kIOReturnSuccess);
    CHECK_EQ(v, (uint32_t)~0x77u);
    /* Its sessions are not the test target's. */
    if (CHECK_KR(apple_dext_get_status(other, &st), kIOReturnSuccess)) {
        CHECK_EQ(st.sessions, 1);
        CHECK_EQ(st.claims, 1);
    }
    apple_dext_disconnect(c);
    /* Malformed device specs are refused. */
    CHECK(apple_dext_list_devices("inproc:nosuchdevice", list, 4, &count) !=
          kIOReturnSuccess);
    CHECK(apple_dext_list_devices("inproc:edu,bdf=zz", list, 4, &count) !=
          kIOReturnSuccess);
}

static void test_identity(void)
{
    AppleDextDeviceInfo id;
    io_connect_t c = harness_connect_edu();

    harness_section("apple_dext_get_identity()");
    if (c == IO_OBJECT_NULL) {
        return;
    }
    memset(&id, 0xa5, sizeof(id));
    CHECK_KR(apple_dext_get_identity(c, &id), kIOReturnSuccess);
    CHECK_EQ(id.bus, EDU_BUS);
    CHECK_EQ(id.device, EDU_DEV);
    CHECK_EQ(id.function, EDU_FN);
    CHECK_EQ(id.vendor_id, EDU_VENDOR_ID);
    CHECK_EQ(id.device_id, EDU_DEVICE_ID);
    CHECK_EQ(id.class_code, EDU_CLASS_CODE);
    CHECK_KR(apple_dext_get_identity(c, NULL), kIOReturnBadArgument);
    apple_dext_disconnect(c);
}

/* A handler for notifications that must not be created. */
static void never_called(void *opaque)
{
    CHECK_MSG(false, "notification handler ran on a bad handle");
}

/*
 * Every function that takes a connection, called on @c, which is null,
 * stale or made up.  The other arguments are valid, so the handle is
 * the only thing to refuse.
 */
static void check_bad_handle(io_connect_t c, const char *what)
{
    uint64_t buf64[4] = { 1, 0, 0, 0 }, v = 0, bus = 0, len = 0;
    volatile uint64_t *page = NULL;
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    AppleDextDeviceStatus ds;
    AppleDextDeviceInfo id;
    AppleDextDMABuffer db;
    uint8_t cfg[16], idx = 0, type = 0;
    uint32_t nvec = 0;
    static uint8_t dma_mem[4096];

    harness_section("bad handle: %s", what);
    CHECK_KR(apple_dext_claim(c), kIOReturnBadArgument);
    CHECK_KR(apple_dext_get_identity(c, &id), kIOReturnBadArgument);
    CHECK_KR(apple_dext_register_dma(c, 0x10000, (uint64_t)(uintptr_t)dma_mem,
                                     sizeof(dma_mem), &bus, &len),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_unregister_dma(c, 0x10000), kIOReturnBadArgument);
    CHECK_KR(apple_dext_probe_dma(c, 0x10000, 0, &v), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read(c, 0, 4, &v), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_write(c, 0x3c, 1, 5), kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read_block(c, 0, cfg, sizeof(cfg)),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_write_block(c, 0x3c, cfg, 1),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_config_read_raw(c, 0, cfg, sizeof(cfg)),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_get_bar_info(c, 0, &idx, &v, &type),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_map_bar(c, 0, &addr, &size, &type),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_unmap_bar(c, 0, 0x10000), kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_read(c, EDU_MEM_IDX, EDU_REG_ID, 4, &v),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_mmio_write(c, EDU_MEM_IDX, EDU_REG_LIVENESS, 4, 1),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_setup_interrupts(c, &nvec), kIOReturnBadArgument);
    CHECK_KR(apple_dext_reset_device(c), kIOReturnBadArgument);
    CHECK_KR(apple_dext_set_irq_mask(c, buf64), kIOReturnBadArgument);
    CHECK_KR(apple_dext_read_pending_irqs(c, buf64), kIOReturnBadArgument);
    CHECK_KR(apple_dext_drain_pending_irqs(c, buf64), kIOReturnBadArgument);
    CHECK_KR(apple_dext_map_irq_page(c, &page), kIOReturnBadArgument);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 0, &db),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_free_dma_buffer(c), kIOReturnBadArgument);
    CHECK_KR(apple_dext_map_dma_buffer(c, &addr, &size), kIOReturnBadArgument);
    CHECK_KR(apple_dext_unmap_dma_buffer(c, 0x10000), kIOReturnBadArgument);
    CHECK_KR(apple_dext_get_device_status(c, &ds), kIOReturnBadArgument);
    CHECK(apple_dext_interrupt_notify_create_fd(c) == NULL);
    CHECK(apple_dext_interrupt_notify_create(c, never_called, NULL) == NULL);
    /* Last: a terminate that got through would take the device away. */
    CHECK_KR(apple_dext_terminate(c), kIOReturnBadArgument);
}

static void test_bad_handles(void)
{
    io_connect_t live, stale, reused;
    AppleDextDeviceInfo id;
    uint64_t v = 0;

    check_bad_handle(IO_OBJECT_NULL, "IO_OBJECT_NULL");
    check_bad_handle((io_connect_t)0xdeadbeef, "made-up handle");

    harness_section("disconnect of null and stale handles");
    apple_dext_disconnect(IO_OBJECT_NULL);
    stale = harness_connect_edu();
    if (stale == IO_OBJECT_NULL) {
        return;
    }
    apple_dext_disconnect(stale);
    check_bad_handle(stale, "disconnected handle");

    /* A new connection may reuse the slot: the stale handle must not
     * reach it, neither for calls nor for disconnect. */
    reused = harness_connect_edu();
    live = harness_connect_edu();
    if (reused == IO_OBJECT_NULL || live == IO_OBJECT_NULL) {
        return;
    }
    CHECK(reused != stale);
    CHECK(live != stale && live != reused);
    apple_dext_disconnect(stale);
    apple_dext_disconnect(stale);
    CHECK_KR(apple_dext_get_identity(reused, &id), kIOReturnSuccess);
    CHECK_KR(apple_dext_config_read(reused, 0, 2, &v), kIOReturnSuccess);
    CHECK_EQ(v, EDU_VENDOR_ID);
    CHECK_KR(apple_dext_get_identity(live, &id), kIOReturnSuccess);
    apple_dext_disconnect(reused);
    CHECK_KR(apple_dext_get_identity(reused, &id), kIOReturnBadArgument);
    CHECK_KR(apple_dext_get_identity(live, &id), kIOReturnSuccess);
    apple_dext_disconnect(live);
}

static void test_strerror(void)
{
    const char *s, *unknown;

    harness_section("apple_dext_strerror()");
    s = apple_dext_strerror(kIOReturnSuccess);
    CHECK(s != NULL && strstr(s, "kIOReturnSuccess") != NULL);
    s = apple_dext_strerror(kIOReturnBadArgument);
    CHECK(s != NULL && strstr(s, "kIOReturnBadArgument") != NULL);
    s = apple_dext_strerror(kIOReturnNotOpen);
    CHECK(s != NULL && strstr(s, "kIOReturnNotOpen") != NULL);
    s = apple_dext_strerror(kIOReturnNotResponding);
    CHECK(s != NULL && strstr(s, "kIOReturnNotResponding") != NULL);
    s = apple_dext_strerror(kIOReturnNoDevice);
    CHECK(s != NULL && strstr(s, "kIOReturnNoDevice") != NULL);
    s = apple_dext_strerror(kIOReturnNotFound);
    CHECK(s != NULL && strstr(s, "kIOReturnNotFound") != NULL);
    /* Distinct codes get distinct names. */
    CHECK(strcmp(apple_dext_strerror(kIOReturnNotReady),
                 apple_dext_strerror(kIOReturnNotOpen)) != 0);

    unknown = apple_dext_strerror((kern_return_t)0x12345);
    CHECK(unknown != NULL && unknown[0] != '\0');
    CHECK(unknown != NULL && strstr(unknown, "kIOReturnSuccess") == NULL);
    unknown = apple_dext_strerror((kern_return_t)-1);
    CHECK(unknown != NULL && unknown[0] != '\0');
}

typedef struct LogCapture {
    unsigned count;
    int level;
    char last[512];
} LogCapture;

static void capture_log(void *opaque, int level, const char *msg)
{
    LogCapture *lc = opaque;

    lc->count++;
    lc->level = level;
    snprintf(lc->last, sizeof(lc->last), "%s", msg);
}

static void test_log_handler(void)
{
    LogCapture lc = { 0 };
    io_connect_t c;

    harness_section("apple_dext_set_log_handler()");
    apple_dext_set_log_handler(capture_log, &lc);
    CHECK_KR(apple_dext_connect_target("bogus-scheme:x", 0, 3, 0, &c),
             kIOReturnBadArgument);
    CHECK(lc.count >= 1);
    CHECK(lc.level <= APPLE_DEXT_LOG_INFO);
    CHECK_MSG(strstr(lc.last, "bogus-scheme") != NULL,
              "log line does not name the target: '%s'", lc.last);
    CHECK(strchr(lc.last, '\n') == NULL);
    /* NULL stops logging. */
    apple_dext_set_log_handler(NULL, NULL);
    lc.count = 0;
    CHECK_KR(apple_dext_connect_target("bogus-scheme:x", 0, 3, 0, &c),
             kIOReturnBadArgument);
    CHECK_EQ(lc.count, 0);
    /* Back to the harness's handler (which prints "libdext: ..."). */
    harness_restore_log_handler();
}

static void test_default_target(void)
{
    char *saved_target = NULL, *saved_socket = NULL;
    char expect[256];
    const char *t;

    harness_section("apple_dext_default_target(), _default_socket_path()");
    if (getenv("DEXT_TARGET")) {
        saved_target = strdup(getenv("DEXT_TARGET"));
    }
    if (getenv("DEXT_SOCKET")) {
        saved_socket = strdup(getenv("DEXT_SOCKET"));
    }

    t = apple_dext_default_target();
    CHECK(t != NULL && strcmp(t, harness_target()) == 0);

    setenv("DEXT_TARGET", "inproc:edu,bdf=00:05.0", 1);
    t = apple_dext_default_target();
    CHECK(t != NULL && strcmp(t, "inproc:edu,bdf=00:05.0") == 0);

    /* Unset: unix: plus the default socket path, which $DEXT_SOCKET sets. */
    unsetenv("DEXT_TARGET");
    setenv("DEXT_SOCKET", "/tmp/libdext-test-nonexistent.sock", 1);
    t = apple_dext_default_socket_path();
    CHECK(t != NULL && strcmp(t, "/tmp/libdext-test-nonexistent.sock") == 0);
#if !defined(__APPLE__)
    snprintf(expect, sizeof(expect), "unix:%s",
             "/tmp/libdext-test-nonexistent.sock");
    t = apple_dext_default_target();
    CHECK(t != NULL && strcmp(t, expect) == 0);
    /* Nobody listens there: the seed connect fails cleanly. */
    CHECK_EQ(apple_dext_connect(EDU_BUS, EDU_DEV, EDU_FN), IO_OBJECT_NULL);
#endif
    unsetenv("DEXT_SOCKET");
    t = apple_dext_default_socket_path();
    CHECK(t != NULL && t[0] == '/');
    if (geteuid() == 0) {
        CHECK(t != NULL && strcmp(t, "/run/dextd.sock") == 0);
    }
    /* An empty $DEXT_TARGET counts as unset. */
    setenv("DEXT_TARGET", "", 1);
    t = apple_dext_default_target();
    CHECK(t != NULL && strncmp(t, "unix:", 5) == 0);

    if (saved_socket) {
        setenv("DEXT_SOCKET", saved_socket, 1);
    }
    setenv("DEXT_TARGET", saved_target ? saved_target : harness_target(), 1);
    free(saved_target);
    free(saved_socket);
    t = apple_dext_default_target();
    CHECK(t != NULL && strcmp(t, harness_target()) == 0);
}

static void test_status(void)
{
    AppleDextStatus base, st;
    AppleDextDeviceStatus ds;
    io_connect_t a, b;

    harness_section("apple_dext_get_status(), _get_device_status()");
    if (!harness_status(&base)) {
        return;
    }
    CHECK_EQ(base.devices, 2);
    CHECK_EQ(base.server_pid, harness_server_pid());
    if (harness_is_unix()) {
        CHECK(base.protocol_version >= 1);
    } else {
        CHECK_EQ(base.protocol_version, 0);
        CHECK_EQ(base.channels, 0);
    }
    CHECK_KR(apple_dext_get_status(harness_target(), NULL),
             kIOReturnBadArgument);
    CHECK_KR(apple_dext_get_status("bogus:", &st), kIOReturnBadArgument);
    CHECK_KR(apple_dext_get_status("unix:/nonexistent-dir/dextd.sock", &st),
             kIOReturnNotResponding);
    CHECK_KR(apple_dext_get_status(NULL, &st), kIOReturnSuccess);
    CHECK_EQ(st.devices, 2);
    CHECK_EQ(st.size, sizeof(st));

    /* A caller built against a smaller AppleDextStatus gets only that. */
    memset(&st, 0xa5, sizeof(st));
    st.size = offsetof(AppleDextStatus, devices);
    CHECK_KR(apple_dext_get_status(NULL, &st), kIOReturnSuccess);
    CHECK_EQ(st.size, offsetof(AppleDextStatus, devices));
    CHECK_EQ(st.server_pid, harness_server_pid());
    CHECK_EQ(st.devices, 0xa5a5a5a5u);
    CHECK_EQ(st.channels, 0xa5a5a5a5u);
    /* 0 is this version's size; more than it is read as it. */
    st.size = 0;
    CHECK_KR(apple_dext_get_status(NULL, &st), kIOReturnSuccess);
    CHECK_EQ(st.size, sizeof(st));
    CHECK_EQ(st.devices, 2);
    st.size = 2;
    CHECK_KR(apple_dext_get_status(NULL, &st), kIOReturnBadArgument);
    st.size = sizeof(st);

    a = harness_connect_edu();
    b = harness_connect(0, 4, 0);
    if (a == IO_OBJECT_NULL || b == IO_OBJECT_NULL) {
        return;
    }
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, base.sessions + 2);
        CHECK_EQ(st.claims, base.claims);
    }
    CHECK_KR(apple_dext_claim(a), kIOReturnSuccess);
    if (harness_status(&st)) {
        CHECK_EQ(st.claims, base.claims + 1);
    }

    memset(&ds, 0xa5, sizeof(ds));
    CHECK_KR(apple_dext_get_device_status(a, &ds), kIOReturnSuccess);
    CHECK_EQ(ds.claims, 1);
    CHECK_EQ(ds.sessions, 1);
    CHECK(ds.claimed);
    CHECK_EQ(ds.irq_vectors, 0);
    CHECK_EQ(ds.dma_regions, 0);
    CHECK(!ds.terminated);
    /* The other device: its own counts. */
    CHECK_KR(apple_dext_get_device_status(b, &ds), kIOReturnSuccess);
    CHECK_EQ(ds.claims, 0);
    CHECK_EQ(ds.sessions, 1);
    CHECK(!ds.claimed);
    CHECK_KR(apple_dext_get_device_status(a, NULL), kIOReturnBadArgument);

    apple_dext_disconnect(a);
    apple_dext_disconnect(b);
    if (harness_status(&st)) {
        CHECK_EQ(st.sessions, base.sessions);
        CHECK_EQ(st.claims, base.claims);
    }
}

/*
 * In a child that has dropped to nobody: what connect_target() and
 * list_devices() answer.  Exit status 0 if both said NotPermitted.
 */
static int child_as_nobody(void)
{
    AppleDextDeviceInfo list[2];
    io_connect_t c = IO_OBJECT_NULL;
    uint32_t count = 0;
    kern_return_t kr1, kr2;

    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
        return 2;
    }
    kr1 = apple_dext_connect_target(harness_target(), EDU_BUS, EDU_DEV,
                                    EDU_FN, &c);
    kr2 = apple_dext_list_devices(harness_target(), list, 2, &count);
    if (kr1 != kIOReturnNotPermitted || kr2 != kIOReturnNotPermitted) {
        printf("# as uid 65534: connect %s, list %s\n",
               apple_dext_strerror(kr1), apple_dext_strerror(kr2));
        return 1;
    }
    return 0;
}

static bool run_as_nobody(void)
{
    int status = 0;
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        _exit(child_as_nobody());
    }
    if (!CHECK(pid > 0) || !CHECK(waitpid(pid, &status, 0) == pid)) {
        return false;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The daemon serves only its own user and root. */
static void test_other_user(void)
{
    char dir[PATH_MAX];
    const char *path = harness_socket_path();
    char *slash;

    harness_section("a user other than the daemon's: kIOReturnNotPermitted");
    if (geteuid() != 0) {
        printf("# not root: cannot become another user, skipped\n");
        return;
    }
    /* As created: the socket's directory and the socket keep others out. */
    CHECK_MSG(run_as_nobody(), "refused by file permissions");
    /* Opened up: the daemon itself must refuse by peer credentials. */
    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (!CHECK(slash != NULL)) {
        return;
    }
    *slash = '\0';
    if (CHECK(chmod(dir, 0755) == 0) && CHECK(chmod(path, 0666) == 0)) {
        CHECK_MSG(run_as_nobody(), "refused by the daemon");
    }
    chmod(path, 0600);
    chmod(dir, 0700);
    /* And we are still served. */
    {
        io_connect_t c = harness_connect_edu();

        apple_dext_disconnect(c);
    }
}

static unsigned open_fds(void)
{
    unsigned n = 0;
    int fd;

    for (fd = 0; fd < 4096; fd++) {
        if (fcntl(fd, F_GETFD) >= 0) {
            n++;
        }
    }
    return n;
}

/* Connections leave nothing behind: no fds here, no sessions there. */
static void test_no_leaks(void)
{
    AppleDextStatus base, st;
    volatile uint64_t *page;
    mach_vm_address_t addr;
    mach_vm_size_t size;
    unsigned fds, i;

    harness_section("connect/disconnect cycles leak nothing");
    /*
     * A daemon closes the channels of earlier status queries and scans
     * on its own time: start from the quiet state, where the only
     * channel left is the status query's own (none in-process).
     */
    {
        HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
        unsigned round = 0;

        while (harness_status(&base) &&
               base.channels > (harness_is_unix() ? 1u : 0u) &&
               !harness_expired(&d)) {
            harness_backoff(&round);
        }
        if (!CHECK_EQ(base.channels, harness_is_unix() ? 1 : 0)) {
            return;
        }
    }
    fds = open_fds();
    for (i = 0; i < 100; i++) {
        AppleDextInterruptNotify *n;
        io_connect_t c = IO_OBJECT_NULL;

        if (!CHECK_KR(apple_dext_connect_target(harness_target(), EDU_BUS,
                                                EDU_DEV, EDU_FN, &c),
                      kIOReturnSuccess)) {
            break;
        }
        if (i % 2 == 0) {
            CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
            CHECK_KR(apple_dext_setup_interrupts(c, NULL), kIOReturnSuccess);
            CHECK_KR(apple_dext_map_irq_page(c, &page), kIOReturnSuccess);
            CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 0, NULL),
                     kIOReturnSuccess);
            CHECK_KR(apple_dext_map_dma_buffer(c, &addr, &size),
                     kIOReturnSuccess);
            n = apple_dext_interrupt_notify_create_fd(c);
            CHECK(n != NULL);
            apple_dext_interrupt_notify_destroy(n);
        }
        apple_dext_disconnect(c);
        if (harness_failures() > 0) {
            break;
        }
    }
    CHECK_EQ(open_fds(), fds);
    {
        /* The daemon may close sessions after we return: poll, bounded. */
        HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
        unsigned round = 0;

        while (harness_status(&st) &&
               (st.sessions != base.sessions ||
                st.channels != base.channels) && !harness_expired(&d)) {
            harness_backoff(&round);
        }
        CHECK_EQ(st.sessions, base.sessions);
        CHECK_EQ(st.claims, base.claims);
        CHECK_EQ(st.dma_buffers, base.dma_buffers);
        CHECK_EQ(st.irq_sessions, base.irq_sessions);
        CHECK_EQ(st.channels, base.channels);
    }
}

int main(int argc, char **argv)
{
    harness_init(argc, argv, DEVICES);
    test_connect_seed();
    test_connect_target();
    test_list_devices();
    if (!harness_is_unix()) {
        test_inproc_cores();
    }
    test_identity();
    test_bad_handles();
    test_strerror();
    test_log_handler();
    test_default_target();
    test_status();
    test_no_leaks();
    if (harness_is_unix()) {
        test_other_user();
    }
    return harness_finish();
}
