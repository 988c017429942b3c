/*
 * SPDX-License-Identifier: MIT
 *
 * The "host" backend against a fake sysfs tree, through the public API.
 *
 * Real devices cannot be written to in a test (and this machine's kernel
 * may refuse it anyway), so the tree is made of regular files shaped as
 * sysfs's: "config", "resource", "resourceN" (mmap()able), "reset".
 * That reaches every path of the backend: identity, BARs from
 * "resource", both config views, the short read an unprivileged process
 * gets, extended config space, the refusals of a read-only device, and
 * for a writable one config writes, MMIO through a mapping and through
 * pread/pwrite (I/O BAR), BAR mapping, reset, and DMA and interrupts
 * answered with kIOReturnUnsupported.
 *
 *   test-host-sysfs --transport inproc|unix
 *   test-host-sysfs --make-tree DIR      only build the tree (for the
 *                                        golden tests of dextctl)
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* The fake functions. */
#define DEV_RO       "0000:00:05.0"     /* read-only, BARs and caps */
#define DEV_SHORT    "0000:00:06.0"     /* config readable to byte 64 */
#define DEV_GONE     "0000:00:07.0"     /* reads as all ones: skipped */
#define DEV_AUDIO    "0000:00:08.0"     /* multimedia: not served */
#define DEV_EXT      "0000:00:09.0"     /* 4 KiB config, an AER cap */
#define DEV_RW       "0000:00:0a.0"     /* as 00:05.0, writable */
#define DEV_DOMAIN   "0001:00:00.0"     /* another domain: skipped */

#define BAR0_SIZE    0x4000
#define BAR2_SIZE    0x20
#define BAR3_SIZE    0x1000

static char tree[256];

/* ------------------------------------------------------------------ */
/* Building the tree                                                    */

static void put16(uint8_t *c, unsigned off, unsigned v)
{
    c[off] = (uint8_t)v;
    c[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *c, unsigned off, uint32_t v)
{
    put16(c, off, v & 0xffff);
    put16(c, off + 2, v >> 16);
}

static void write_file(const char *dir, const char *name, const void *data,
                       size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) ||
        fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void zero_file(const char *dir, const char *name, size_t len)
{
    void *z = calloc(1, len ? len : 1);

    write_file(dir, name, z, len);
    free(z);
}

static void make_dir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", tree, name);
    if (mkdir(out, 0755) != 0) {
        fprintf(stderr, "cannot create %s: %s\n", out, strerror(errno));
        exit(1);
    }
}

/* An endpoint with three BARs and MSI-X, PCI Express and PM caps. */
static void make_endpoint(const char *name, uint16_t device)
{
    static const char resource[] =
        "0x00000000fe000000 0x00000000fe003fff 0x000000000014220c\n"
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
        "0x000000000000c000 0x000000000000c01f 0x0000000000040101\n"
        "0x00000000fd000000 0x00000000fd000fff 0x0000000000040200\n"
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
    uint8_t c[256] = { 0 };
    char dir[512];

    make_dir(dir, sizeof(dir), name);
    put16(c, 0x00, 0xabcd);
    put16(c, 0x02, device);
    put16(c, 0x04, 0x0400);             /* INTx disabled, decode off */
    put16(c, 0x06, 0x0010);             /* capability list */
    put32(c, 0x08, 0x02000002);         /* Ethernet, revision 2 */
    put32(c, 0x10, 0xfe00000c);         /* 64-bit prefetchable */
    put32(c, 0x14, 0x00000000);
    put32(c, 0x18, 0x0000c001);         /* I/O */
    put32(c, 0x1c, 0xfd000000);         /* 32-bit memory */
    put16(c, 0x2c, 0xabcd);
    put16(c, 0x2e, 0x0001);
    c[0x34] = 0x40;
    c[0x3c] = 0x0a;
    c[0x3d] = 0x01;
    /* MSI-X: 4 entries, table and PBA in BAR0. */
    c[0x40] = 0x11;
    c[0x41] = 0x50;
    put16(c, 0x42, 0x0003);
    put32(c, 0x44, 0x00002000);
    put32(c, 0x48, 0x00003000);
    /* PCI Express v2 endpoint, FLR, x1 at 2.5 GT/s. */
    c[0x50] = 0x10;
    c[0x51] = 0x90;
    put16(c, 0x52, 0x0002);
    put32(c, 0x54, 0x10000000);
    put32(c, 0x5c, 0x00000011);
    put16(c, 0x62, 0x0011);
    /* Power management v3, in D0. */
    c[0x90] = 0x01;
    c[0x91] = 0x00;
    put16(c, 0x92, 0x0003);
    write_file(dir, "config", c, sizeof(c));
    write_file(dir, "resource", resource, strlen(resource));
    zero_file(dir, "resource0", BAR0_SIZE);
    zero_file(dir, "resource2", BAR2_SIZE);
    zero_file(dir, "resource3", BAR3_SIZE);
    zero_file(dir, "reset", 0);
    write_file(dir, "dma_mask_bits", "64\n", 3);
}

static void make_tree(void)
{
    static const char no_bars[] =
        "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
    uint8_t c[4096];
    char dir[512];

    if (mkdir(tree, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", tree, strerror(errno));
        exit(1);
    }
    make_endpoint(DEV_RO, 0x0001);
    make_endpoint(DEV_RW, 0x0002);

    /* What an unprivileged reader gets: the 64-byte header. */
    memset(c, 0, sizeof(c));
    put16(c, 0x00, 0xabcd);
    put16(c, 0x02, 0x0003);
    put32(c, 0x08, 0xff000000);
    make_dir(dir, sizeof(dir), DEV_SHORT);
    write_file(dir, "config", c, 64);
    write_file(dir, "resource", no_bars, strlen(no_bars));

    memset(c, 0xff, 256);
    make_dir(dir, sizeof(dir), DEV_GONE);
    write_file(dir, "config", c, 256);

    memset(c, 0, sizeof(c));
    put16(c, 0x00, 0xabcd);
    put16(c, 0x02, 0x0004);
    put32(c, 0x08, 0x04030001);         /* HD audio */
    make_dir(dir, sizeof(dir), DEV_AUDIO);
    write_file(dir, "config", c, 256);

    memset(c, 0, sizeof(c));
    put16(c, 0x00, 0xabcd);
    put16(c, 0x02, 0x0005);
    put32(c, 0x08, 0x06040001);         /* PCI bridge */
    c[0x0e] = 0x01;
    put32(c, 0x100, 0x00010001);        /* AER v1, end of list */
    make_dir(dir, sizeof(dir), DEV_EXT);
    write_file(dir, "config", c, 4096);
    write_file(dir, "resource", no_bars, strlen(no_bars));

    memset(c, 0, sizeof(c));
    put16(c, 0x00, 0xabcd);
    put16(c, 0x02, 0x0006);
    make_dir(dir, sizeof(dir), DEV_DOMAIN);
    write_file(dir, "config", c, 256);

    make_dir(dir, sizeof(dir), "not-a-device");
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    return remove(path);
}

static void remove_tree(void)
{
    if (tree[0] != '\0') {
        nftw(tree, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

/* ------------------------------------------------------------------ */
/* Reading the tree back                                                */

static void read_file(const char *dev, const char *name, void *buf,
                      size_t len, off_t off)
{
    char path[512];
    int fd;

    memset(buf, 0, len);
    snprintf(path, sizeof(path), "%s/%s/%s", tree, dev, name);
    fd = open(path, O_RDONLY);
    if (fd >= 0) {
        CHECK(pread(fd, buf, len, off) >= 0);
        close(fd);
    }
}

static uint32_t file_value(const char *dev, const char *name, off_t off,
                           unsigned width)
{
    uint8_t b[8];
    uint32_t v = 0;

    read_file(dev, name, b, width, off);
    for (unsigned i = 0; i < width; i++) {
        v |= (uint32_t)b[i] << (8 * i);
    }
    return v;
}

static io_connect_t connect_to(uint8_t dev)
{
    return harness_connect(0, dev, 0);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void test_enumeration(void)
{
    char target[512];
    AppleDextDeviceInfo d[8];
    uint32_t n = 0;

    harness_section("every function of the tree: sorted, gone ones, "
                    "multimedia and other domains left out");
    snprintf(target, sizeof(target), "inproc:host,sysfs=%s", tree);
    CHECK_KR(apple_dext_list_devices(target, d, 8, &n), kIOReturnSuccess);
    if (CHECK_EQ(n, 4)) {
        CHECK_EQ(d[0].device, 0x05);
        CHECK_EQ(d[1].device, 0x06);
        CHECK_EQ(d[2].device, 0x09);
        CHECK_EQ(d[3].device, 0x0a);
        CHECK_EQ(d[0].vendor_id, 0xabcd);
        CHECK_EQ(d[0].device_id, 0x0001);
        CHECK_EQ(d[0].class_code, 0x020000);
    }

    harness_section("specs that must fail");
    snprintf(target, sizeof(target), "inproc:host,sysfs=%s,bdf=all,"
             "writable=on", tree);
    CHECK_KR(apple_dext_list_devices(target, d, 8, &n), kIOReturnBadArgument);
    snprintf(target, sizeof(target), "inproc:host,sysfs=%s,bdf=0001:00:00.0",
             tree);
    CHECK_KR(apple_dext_list_devices(target, d, 8, &n), kIOReturnBadArgument);
    snprintf(target, sizeof(target), "inproc:host,sysfs=%s,bdf=00:1f.0",
             tree);
    CHECK_KR(apple_dext_list_devices(target, d, 8, &n), kIOReturnNotFound);
    snprintf(target, sizeof(target), "inproc:host,sysfs=%s,bdf=00:07.0",
             tree);
    CHECK_KR(apple_dext_list_devices(target, d, 8, &n), kIOReturnNoDevice);
    snprintf(target, sizeof(target), "inproc:host,sysfs=%s,bdf=00:05.0,"
             "frob=1", tree);
    CHECK_KR(apple_dext_list_devices(target, d, 8, &n), kIOReturnBadArgument);
    snprintf(target, sizeof(target), "inproc:host,sysfs=%s/nowhere", tree);
    CHECK_KR(apple_dext_list_devices(target, d, 8, &n), kIOReturnNotFound);
}

static void test_read_only(void)
{
    uint8_t file[256], raw[256], view[256], after[256];
    uint64_t size = 0, v = 0, bus = 0;
    uint8_t idx = 0xff, type = 0xff;
    mach_vm_address_t addr = 0;
    mach_vm_size_t msize = 0;
    AppleDextDMABuffer dbuf;
    uint32_t nvec = 0;
    char reset[4];
    io_connect_t c;

    harness_section("read-only device: config views");
    c = connect_to(0x05);
    if (c == IO_OBJECT_NULL) {
        return;
    }
    read_file(DEV_RO, "config", file, sizeof(file), 0);
    CHECK_KR(apple_dext_config_read_raw(c, 0, raw, sizeof(raw)),
             kIOReturnSuccess);
    CHECK(memcmp(raw, file, sizeof(raw)) == 0);
    CHECK_KR(apple_dext_config_read_block(c, 0, view, sizeof(view)),
             kIOReturnSuccess);
    /* The client view: type bits only in BAR registers, rest as is. */
    CHECK_EQ(view[0x10], 0x0c);
    CHECK_EQ(view[0x13], 0x00);
    CHECK_EQ(view[0x14], 0x00);
    CHECK_EQ(view[0x18], 0x01);
    CHECK_EQ(view[0x19], 0x00);
    CHECK_EQ(view[0x1f], 0x00);
    CHECK(memcmp(view, file, 0x10) == 0);
    CHECK(memcmp(view + 0x28, file + 0x28, 256 - 0x28) == 0);
    CHECK_KR(apple_dext_config_read(c, 0x1c, 4, &v), kIOReturnSuccess);
    CHECK_EQ(v, 0);
    CHECK_KR(apple_dext_config_read(c, 0x1c, 2, &v), kIOReturnSuccess);
    CHECK_EQ(v, 0);                     /* narrow reads are not hidden */
    CHECK_KR(apple_dext_config_read(c, 0x1e, 2, &v), kIOReturnSuccess);
    CHECK_EQ(v, 0xfd00);
    CHECK_KR(apple_dext_config_read(c, 0x100, 4, &v), kIOReturnBadArgument);

    harness_section("read-only device: BARs from the resource file");
    CHECK_KR(apple_dext_get_bar_info(c, 0, &idx, &size, &type),
             kIOReturnSuccess);
    CHECK_EQ(idx, 0);
    CHECK_EQ(size, BAR0_SIZE);
    CHECK_EQ(type, 0x0c);
    CHECK_KR(apple_dext_get_bar_info(c, 1, &idx, &size, &type),
             kIOReturnNotFound);
    CHECK_KR(apple_dext_get_bar_info(c, 2, &idx, &size, &type),
             kIOReturnSuccess);
    CHECK_EQ(idx, 1);
    CHECK_EQ(size, BAR2_SIZE);
    CHECK_EQ(type, 0x01);
    CHECK_KR(apple_dext_get_bar_info(c, 3, &idx, &size, &type),
             kIOReturnSuccess);
    CHECK_EQ(idx, 2);
    CHECK_EQ(size, BAR3_SIZE);
    CHECK_EQ(type, 0x00);
    CHECK_KR(apple_dext_get_bar_info(c, 4, &idx, &size, &type),
             kIOReturnNotFound);

    harness_section("read-only device: everything that writes is refused");
    /* A claim writes nothing to a read-only device, so it is allowed. */
    CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
    CHECK_KR(apple_dext_config_write(c, 0x3c, 1, 0x55), kIOReturnNotPermitted);
    CHECK_KR(apple_dext_config_write_block(c, 0x3c, "\x55", 1),
             kIOReturnNotPermitted);
    CHECK_KR(apple_dext_mmio_read(c, 0, 0, 4, &v), kIOReturnNotPermitted);
    CHECK_KR(apple_dext_mmio_write(c, 0, 0, 4, 1), kIOReturnNotPermitted);
    CHECK_KR(apple_dext_map_bar(c, 0, &addr, &msize, NULL),
             kIOReturnNotPermitted);
    CHECK_KR(apple_dext_map_bar(c, 2, &addr, &msize, NULL),
             kIOReturnUnsupported);         /* I/O BARs are never mapped */
    CHECK_KR(apple_dext_setup_interrupts(c, &nvec), kIOReturnNotPermitted);
    CHECK_KR(apple_dext_register_dma(c, 0x1000, (uintptr_t)file, 4096,
                                     &bus, NULL), kIOReturnNotPermitted);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 0, &dbuf),
             kIOReturnNotPermitted);
    CHECK_KR(apple_dext_reset_device(c), kIOReturnNotPermitted);
    read_file(DEV_RO, "config", after, sizeof(after), 0);
    CHECK(memcmp(after, file, sizeof(file)) == 0);
    read_file(DEV_RO, "reset", reset, sizeof(reset), 0);
    CHECK_EQ(reset[0], 0);
    apple_dext_disconnect(c);
}

static void test_short_and_ext(void)
{
    uint8_t buf[4096], file[4096];
    uint64_t v = 0;
    io_connect_t c;

    harness_section("config readable to byte 64 only: NotPrivileged past it");
    c = connect_to(0x06);
    if (c != IO_OBJECT_NULL) {
        CHECK_KR(apple_dext_config_read_raw(c, 0, buf, 64), kIOReturnSuccess);
        CHECK_EQ(buf[0], 0xcd);
        CHECK_KR(apple_dext_config_read_raw(c, 0, buf, 256),
                 kIOReturnNotPrivileged);
        CHECK_KR(apple_dext_config_read(c, 0x40, 4, &v),
                 kIOReturnNotPrivileged);
        CHECK_KR(apple_dext_config_read(c, 0x3c, 4, &v), kIOReturnSuccess);
        apple_dext_disconnect(c);
    }

    harness_section("extended config space: 4096 bytes");
    c = connect_to(0x09);
    if (c != IO_OBJECT_NULL) {
        read_file(DEV_EXT, "config", file, sizeof(file), 0);
        CHECK_KR(apple_dext_config_read_raw(c, 0, buf, sizeof(buf)),
                 kIOReturnSuccess);
        CHECK(memcmp(buf, file, sizeof(buf)) == 0);
        CHECK_KR(apple_dext_config_read(c, 0x100, 4, &v), kIOReturnSuccess);
        CHECK_EQ(v, 0x00010001);
        apple_dext_disconnect(c);
    }
}

/*
 * A client without a claim maps the writable device's BAR3 (a plain file,
 * reopened read-only by the dext, not a memfd): it sees the claimer's
 * stores, and its mapping cannot be made writable.
 */
static void test_unclaimed_map(mach_vm_address_t claimer_addr)
{
    volatile uint32_t *mine = (volatile uint32_t *)(uintptr_t)claimer_addr;
    mach_vm_address_t addr = 0;
    mach_vm_size_t msize = 0;
    io_connect_t other;

    harness_section("writable device: a BAR mapping without a claim is "
                    "read-only");
    other = connect_to(0x0a);
    if (other == IO_OBJECT_NULL) {
        return;
    }
    if (CHECK_KR(apple_dext_map_bar(other, 3, &addr, &msize, NULL),
                 kIOReturnSuccess)) {
        volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)addr;

        CHECK_EQ(msize, BAR3_SIZE);
        mine[5] = 0x600df00d;
        CHECK_EQ(p[5], 0x600df00d);
        errno = 0;
        CHECK(mprotect((void *)(uintptr_t)addr, (size_t)msize,
                       PROT_READ | PROT_WRITE) != 0);
        CHECK_EQ(errno, EACCES);
        CHECK_KR(apple_dext_unmap_bar(other, 3, addr), kIOReturnSuccess);
    }
    apple_dext_disconnect(other);
}

static void test_writable(void)
{
    uint64_t v = 0, bus = 0;
    mach_vm_address_t addr = 0;
    mach_vm_size_t msize = 0;
    AppleDextDMABuffer dbuf;
    uint32_t nvec = 0;
    uint8_t mem[64];
    char reset[4];
    io_connect_t c;

    harness_section("writable device: claim sets memory decode, not mastering");
    c = connect_to(0x0a);
    if (c == IO_OBJECT_NULL) {
        return;
    }
    CHECK_KR(apple_dext_claim(c), kIOReturnSuccess);
    CHECK_EQ(file_value(DEV_RW, "config", 0x04, 2), 0x0402);

    harness_section("writable device: config writes reach the file");
    CHECK_KR(apple_dext_config_write(c, 0x3c, 1, 0x0b), kIOReturnSuccess);
    CHECK_EQ(file_value(DEV_RW, "config", 0x3c, 1), 0x0b);
    CHECK_KR(apple_dext_config_write(c, 0x10, 4, 0xfe100000),
             kIOReturnSuccess);
    CHECK_EQ(file_value(DEV_RW, "config", 0x10, 4), 0xfe100000);
    CHECK_KR(apple_dext_config_write(c, 0x10, 4, 0xfe00000c),
             kIOReturnSuccess);

    harness_section("writable device: MMIO through the mapped resource0");
    CHECK_KR(apple_dext_mmio_write(c, 0, 0x100, 4, 0x12345678),
             kIOReturnSuccess);
    CHECK_EQ(file_value(DEV_RW, "resource0", 0x100, 4), 0x12345678);
    CHECK_KR(apple_dext_mmio_write(c, 0, 0x108, 8, 0x1122334455667788ull),
             kIOReturnSuccess);
    CHECK_KR(apple_dext_mmio_read(c, 0, 0x108, 8, &v), kIOReturnSuccess);
    CHECK_EQ(v, 0x1122334455667788ull);
    CHECK_KR(apple_dext_mmio_read(c, 0, 0x10a, 2, &v), kIOReturnSuccess);
    CHECK_EQ(v, 0x5566);
    CHECK_KR(apple_dext_mmio_write(c, 0, 0x3fff, 1, 0xa5), kIOReturnSuccess);
    CHECK_EQ(file_value(DEV_RW, "resource0", 0x3fff, 1), 0xa5);
    CHECK_KR(apple_dext_mmio_read(c, 0, 0x4000, 1, &v), kIOReturnBadArgument);

    harness_section("writable device: I/O BAR through pread/pwrite");
    CHECK_KR(apple_dext_mmio_write(c, 1, 0x10, 4, 0xcafef00d),
             kIOReturnSuccess);
    CHECK_EQ(file_value(DEV_RW, "resource2", 0x10, 4), 0xcafef00d);
    CHECK_KR(apple_dext_mmio_read(c, 1, 0x10, 2, &v), kIOReturnSuccess);
    CHECK_EQ(v, 0xf00d);
    CHECK_KR(apple_dext_mmio_read(c, 1, 0x10, 8, &v), kIOReturnBadArgument);

    harness_section("writable device: BAR mapping shares resource3");
    if (CHECK_KR(apple_dext_map_bar(c, 3, &addr, &msize, NULL),
                 kIOReturnSuccess)) {
        volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)addr;

        CHECK_EQ(msize, BAR3_SIZE);
        p[4] = 0xdeadbeef;
        CHECK_EQ(file_value(DEV_RW, "resource3", 0x10, 4), 0xdeadbeef);
        CHECK_KR(apple_dext_mmio_read(c, 2, 0x10, 4, &v), kIOReturnSuccess);
        CHECK_EQ(v, 0xdeadbeef);
        test_unclaimed_map(addr);
        CHECK_KR(apple_dext_unmap_bar(c, 3, addr), kIOReturnSuccess);
    }

    harness_section("writable device: DMA and interrupts need VFIO");
    CHECK_KR(apple_dext_setup_interrupts(c, &nvec), kIOReturnUnsupported);
    CHECK_KR(apple_dext_register_dma(c, 0x1000, (uintptr_t)mem, sizeof(mem),
                                     &bus, NULL), kIOReturnUnsupported);
    CHECK_KR(apple_dext_allocate_dma_buffer(c, 4096, 0, &dbuf),
             kIOReturnUnsupported);

    harness_section("writable device: reset through the reset file");
    CHECK_KR(apple_dext_reset_device(c), kIOReturnSuccess);
    read_file(DEV_RW, "reset", reset, sizeof(reset), 0);
    CHECK_EQ(reset[0], '1');
    /* The BARs and command register are written back afterwards. */
    CHECK_EQ(file_value(DEV_RW, "config", 0x10, 4), 0xfe00000c);
    CHECK_EQ(file_value(DEV_RW, "config", 0x04, 2), 0x0402);
    apple_dext_disconnect(c);
}

int main(int argc, char **argv)
{
    char devices[2048];

    if (argc == 3 && strcmp(argv[1], "--make-tree") == 0) {
        snprintf(tree, sizeof(tree), "%s", argv[2]);
        make_tree();
        return 0;
    }
    snprintf(tree, sizeof(tree), "/tmp/libdext-host-XXXXXX");
    if (mkdtemp(tree) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    make_tree();
    atexit(remove_tree);
    snprintf(devices, sizeof(devices),
             "host,sysfs=%s,bdf=00:05.0+host,sysfs=%s,bdf=00:06.0+"
             "host,sysfs=%s,bdf=00:09.0+host,sysfs=%s,bdf=00:0a.0,writable=on",
             tree, tree, tree, tree);
    harness_init(argc, argv, devices);

    test_enumeration();
    test_read_only();
    test_short_and_ext();
    test_writable();
    return harness_finish();
}
