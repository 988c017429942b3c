/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl selftest: a non-destructive conformance run against whatever
 * dext the target reaches (an in-process core, dextd, or the real dext
 * on macOS).  Each check names the rule of the user-client contract
 * (../shared/dext-contract.md; docs/dextctl.md lists them) it verifies,
 * so that a failure on a Mac says which promise the real dext broke.
 *
 * Nothing is written to the device: config space and BARs are only
 * read, and the one change, a reset, needs --reset.
 */

#define _GNU_SOURCE     /* memfd_create() */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dextctl.h"

/* The keys of the two regions registered; any value a client chooses. */
#define ST_IOVA_PRIVATE 0x5e1f000000ull
#define ST_IOVA_SHARED  0x5e2f000000ull

/* PCI command register bits the claim sets. */
#define ST_CMD_MEMORY 0x2
#define ST_CMD_MASTER 0x4

typedef enum StResult {
    ST_PASS,
    ST_FAIL,
    ST_SKIP,
} StResult;

typedef struct SelfTest {
    Ctl *ctl;
    unsigned counts[3];
} SelfTest;

static const char *const st_result_name[] = { "pass", "FAIL", "skip" };
static const char *const st_result_json[] = { "pass", "fail", "skip" };

/* Report one check: @rule is the contract's rule, @fmt what was seen. */
static void st_report(SelfTest *st, const char *name, StResult r,
                      const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void st_report(SelfTest *st, const char *name, StResult r,
                      const char *rule, const char *fmt, ...)
{
    char detail[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    st->counts[r]++;
    if (st->ctl->json) {
        JsonWriter *w = &st->ctl->jw;

        json_begin_object(w);
        json_kv_string(w, "check", name);
        json_kv_string(w, "result", st_result_json[r]);
        json_kv_string(w, "rule", rule);
        json_kv_string(w, "detail", detail);
        json_end_object(w);
    } else {
        printf("  %-4s  %-18s %s\n", st_result_name[r], name, detail);
        printf("        %-18s rule: %s\n", "", rule);
    }
}

/* A call's answer: @kr against the @want the contract gives. */
static StResult st_expect(kern_return_t kr, kern_return_t want)
{
    return kr == want ? ST_PASS : ST_FAIL;
}

static const char *st_kr(kern_return_t kr)
{
    return apple_dext_strerror(kr);
}

/* ------------------------------------------------------------------ */

static void st_identity(SelfTest *st, io_connect_t c, AppleDextDeviceInfo *id)
{
    const CtlBdf *b = &st->ctl->bdf;
    kern_return_t kr = apple_dext_get_identity(c, id);

    if (kr != kIOReturnSuccess) {
        st_report(st, "identity", ST_FAIL,
                  "GetIdentity (0): bus, device, function, vendor, device, "
                  "class of the connection's function", "%s", st_kr(kr));
        return;
    }
    st_report(st, "identity",
              id->bus == b->bus && id->device == b->dev &&
              id->function == b->fn && id->vendor_id != 0xffff ?
              ST_PASS : ST_FAIL,
              "GetIdentity (0): bus, device, function, vendor, device, "
              "class of the connection's function",
              "%02x:%02x.%x %04x:%04x class %06x", id->bus, id->device,
              id->function, id->vendor_id, id->device_id, id->class_code);
}

static bool st_cfg(io_connect_t c, uint32_t off, uint32_t width,
                   uint32_t *v)
{
    uint64_t x = 0;
    bool ok = apple_dext_config_read(c, off, width, &x) == kIOReturnSuccess;

    *v = (uint32_t)x;
    return ok;
}

/* Byte, word and dword reads of the header agree; BARs aside. */
static void st_config(SelfTest *st, io_connect_t c,
                      const AppleDextDeviceInfo *id)
{
    static const char rule[] =
        "ConfigRead (8): widths 1, 2, 4 read one config space; other "
        "widths BadArgument";
    uint32_t off, d, w = 0, b = 0, v;
    uint64_t x;
    kern_return_t kr;

    for (off = 0; off < 0x40; off += 4) {
        if (off >= 0x10 && off < 0x28) {
            continue;       /* BAR registers: only dwords are synthesized */
        }
        if (!st_cfg(c, off, 4, &d)) {
            st_report(st, "config-widths", ST_FAIL, rule,
                      "dword read at 0x%02x refused", off);
            return;
        }
        for (v = 0; v < 4; v += 2) {
            if (!st_cfg(c, off + v, 2, &w) || w != ((d >> (v * 8)) & 0xffff)) {
                st_report(st, "config-widths", ST_FAIL, rule,
                          "word at 0x%02x reads 0x%04x, dword 0x%08x",
                          off + v, w, d);
                return;
            }
        }
        for (v = 0; v < 4; v++) {
            if (!st_cfg(c, off + v, 1, &b) || b != ((d >> (v * 8)) & 0xff)) {
                st_report(st, "config-widths", ST_FAIL, rule,
                          "byte at 0x%02x reads 0x%02x, dword 0x%08x",
                          off + v, b, d);
                return;
            }
        }
    }
    kr = apple_dext_config_read(c, 0, 3, &x);
    if (kr != kIOReturnBadArgument) {
        st_report(st, "config-widths", ST_FAIL, rule,
                  "a 3-byte read answers %s", st_kr(kr));
        return;
    }
    if (!st_cfg(c, 0, 4, &d) || !st_cfg(c, 8, 4, &v) ||
        (d & 0xffff) != id->vendor_id || d >> 16 != id->device_id ||
        v >> 8 != id->class_code) {
        st_report(st, "config-widths", ST_FAIL, rule,
                  "IDs and class in config space differ from GetIdentity's");
        return;
    }
    st_report(st, "config-widths", ST_PASS, rule,
              "bytes, words and dwords of the header agree; IDs match");
}

/*
 * Each BAR: GetBARInfo and the synthesized BAR register agree: type bits
 * only, 0 (and an error) for an unused BAR or a 64-bit BAR's upper half.
 */
static void st_bars(SelfTest *st, io_connect_t c)
{
    static const char rule[] =
        "GetBARInfo (10) and ConfigRead (8) of 0x10-0x24: type bits only, "
        "an error and 0 for an unused BAR or a 64-bit BAR's upper half";
    bool upper = false;
    uint8_t bar, idx, type;
    uint64_t size;
    uint32_t reg;
    kern_return_t kr;
    char name[16];

    for (bar = 0; bar < 6; bar++) {
        snprintf(name, sizeof(name), "bar%u", bar);
        kr = apple_dext_get_bar_info(c, bar, &idx, &size, &type);
        if (!st_cfg(c, 0x10 + 4u * bar, 4, &reg)) {
            st_report(st, name, ST_FAIL, rule, "its register is unreadable");
        } else if (kr != kIOReturnSuccess) {
            st_report(st, name, reg == 0 ? ST_PASS : ST_FAIL, rule,
                      "%s (%s), register 0x%08x",
                      upper ? "upper half" : "unused", st_kr(kr), reg);
            upper = false;
        } else if (upper) {
            st_report(st, name, ST_FAIL, rule,
                      "the upper half of a 64-bit BAR answers memory "
                      "index %u", idx);
            upper = false;
        } else {
            bool io = type & 1;
            uint32_t bits = io ? 0x3 : 0xf;

            st_report(st, name,
                      (reg & ~bits) == 0 && (reg & bits) == type &&
                      size != 0 && (size & (size - 1)) == 0 ?
                      ST_PASS : ST_FAIL, rule,
                      "%s%s%s, %s, memory index %u, register 0x%08x",
                      io ? "I/O" : "memory",
                      !io && (type & 0x6) == 0x4 ? " 64-bit" : "",
                      !io && (type & 0x8) ? " prefetchable" : "",
                      ctl_size_str(size), idx, reg);
            upper = !io && (type & 0x6) == 0x4;
        }
    }
}

/* A connection without a claim may not register DMA or set up IRQs. */
static void st_unclaimed(SelfTest *st, io_connect_t c)
{
    uint64_t word = 0;
    uint32_t n;
    uint64_t pending[4];

    st_report(st, "unclaimed-dma",
              st_expect(apple_dext_register_dma(c, ST_IOVA_PRIVATE,
                                                (uint64_t)(uintptr_t)&word,
                                                sizeof(word), NULL, NULL),
                        kIOReturnNotOpen),
              "RegisterDMARegion (5): needs a claim (NotOpen)",
              "without a claim");
    st_report(st, "unclaimed-irq",
              st_expect(apple_dext_setup_interrupts(c, &n), kIOReturnNotOpen),
              "SetupInterrupts (13): needs a claim (NotOpen)",
              "without a claim");
    st_report(st, "irq-before-setup",
              st_expect(apple_dext_read_pending_irqs(c, pending),
                        kIOReturnNotReady),
              "CheckInterrupt (14): NotReady before SetupInterrupts",
              "before SetupInterrupts");
}

static void st_claim(SelfTest *st, io_connect_t c)
{
    static const char rule[] =
        "Claim (1): the opener sets Memory Space and Bus Master Enable "
        "(command bits 1, 2); a second claim is a no-op success";
    kern_return_t kr = apple_dext_claim(c);
    uint32_t cmd = 0;

    if (kr != kIOReturnSuccess) {
        st_report(st, "claim", ST_FAIL, rule, "%s", st_kr(kr));
        return;
    }
    kr = apple_dext_claim(c);
    if (kr != kIOReturnSuccess) {
        st_report(st, "claim", ST_FAIL, rule, "the second claim: %s",
                  st_kr(kr));
        return;
    }
    if (!st_cfg(c, 4, 2, &cmd)) {
        st_report(st, "claim", ST_FAIL, rule, "command register unreadable");
        return;
    }
    st_report(st, "claim",
              (cmd & (ST_CMD_MEMORY | ST_CMD_MASTER)) ==
              (ST_CMD_MEMORY | ST_CMD_MASTER) ? ST_PASS : ST_FAIL, rule,
              "command register 0x%04x", cmd);
}

/* The words written at @p's start and end; a region's own values. */
static void st_fill(volatile uint64_t *p, size_t len, uint64_t seed)
{
    p[0] = seed;
    p[len / 8 - 1] = ~seed;
}

/*
 * Register @len bytes at @p, then write new words (through @p and, for a
 * file, through @fd): ProbeDMARegion must read what was written *after*
 * registering, or the dext sees a copy-on-write snapshot.
 */
static void st_dma_region(SelfTest *st, io_connect_t c, const char *name,
                          uint64_t iova, void *p, size_t len, int fd)
{
    static const char rule[] =
        "RegisterDMARegion (5), ProbeDMARegion (7): the dext sees the "
        "client's pages, also after the client writes them; Overrun past "
        "the end; UnregisterDMARegion (6), then NotFound";
    volatile uint64_t *w = p;
    uint64_t got, later = 0x5e1f7e57c0ffee00ull ^ iova;
    kern_return_t kr;

    st_fill(w, len, 0x1111111111111111ull);
    kr = apple_dext_register_dma(c, iova, (uint64_t)(uintptr_t)p, len,
                                 NULL, NULL);
    if (kr == kIOReturnUnsupported && fd < 0) {
        st_report(st, name, ST_SKIP, rule, "private memory: %s (dextd "
                  "with a device behind a real IOMMU)", st_kr(kr));
        return;
    }
    if (kr != kIOReturnSuccess) {
        st_report(st, name, ST_FAIL, rule, "register: %s", st_kr(kr));
        return;
    }
    st_fill(w, len, later);
    kr = apple_dext_probe_dma(c, iova, 0, &got);
    if (kr != kIOReturnSuccess || got != later) {
        st_report(st, name, ST_FAIL, rule,
                  "written after registering: 0x%016" PRIx64 ", the dext "
                  "reads 0x%016" PRIx64 " (%s)", later, got, st_kr(kr));
        goto out;
    }
    kr = apple_dext_probe_dma(c, iova, len - 8, &got);
    if (kr != kIOReturnSuccess || got != ~later) {
        st_report(st, name, ST_FAIL, rule, "last word: 0x%016" PRIx64
                  ", the dext reads 0x%016" PRIx64 " (%s)", ~later, got,
                  st_kr(kr));
        goto out;
    }
    if (fd >= 0) {
        uint64_t v = later ^ 0xf11ef11ef11ef11eull;

        if (pwrite(fd, &v, sizeof(v), 8) != (ssize_t)sizeof(v)) {
            st_report(st, name, ST_FAIL, rule, "pwrite: %s",
                      strerror(errno));
            goto out;
        }
        kr = apple_dext_probe_dma(c, iova, 8, &got);
        if (kr != kIOReturnSuccess || got != v) {
            st_report(st, name, ST_FAIL, rule, "written to the file: 0x%016"
                      PRIx64 ", the dext reads 0x%016" PRIx64 " (%s)", v,
                      got, st_kr(kr));
            goto out;
        }
    }
    kr = apple_dext_probe_dma(c, iova, len - 4, &got);
    if (kr != kIOReturnOverrun) {
        st_report(st, name, ST_FAIL, rule, "a probe past the end: %s",
                  st_kr(kr));
        goto out;
    }
    kr = apple_dext_unregister_dma(c, iova);
    if (kr != kIOReturnSuccess) {
        st_report(st, name, ST_FAIL, rule, "unregister: %s", st_kr(kr));
        return;
    }
    kr = apple_dext_probe_dma(c, iova, 0, &got);
    st_report(st, name, st_expect(kr, kIOReturnNotFound), rule,
              "%s: probed after writes%s, unregistered; a probe "
              "after: %s", ctl_size_str(len),
              fd >= 0 ? " through the mapping and the file" : "",
              st_kr(kr));
    return;
out:
    apple_dext_unregister_dma(c, iova);
}

static void st_dma(SelfTest *st, io_connect_t c)
{
    size_t len = 2 * (size_t)sysconf(_SC_PAGESIZE);
    void *p;
    int fd;

    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1,
             0);
    if (p == MAP_FAILED) {
        st_report(st, "dma-private", ST_SKIP, "-", "mmap: %s",
                  strerror(errno));
    } else {
        st_dma_region(st, c, "dma-private", ST_IOVA_PRIVATE, p, len, -1);
        munmap(p, len);
    }

    /* A MAP_SHARED file mapping: the case PCIDriverKit may copy. */
#ifdef __linux__
    fd = memfd_create("dextctl-selftest", MFD_CLOEXEC);
#else
    {
        char path[] = "/tmp/dextctl-selftest.XXXXXX";

        fd = mkstemp(path);
        if (fd >= 0) {
            unlink(path);
        }
    }
#endif
    p = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)len) == 0) {
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    if (p == MAP_FAILED) {
        st_report(st, "dma-shared-file", ST_SKIP, "-",
                  "no shared file mapping: %s", strerror(errno));
    } else {
        st_dma_region(st, c, "dma-shared-file", ST_IOVA_SHARED, p, len, fd);
        munmap(p, len);
    }
    if (fd >= 0) {
        close(fd);
    }
}

static void st_irq(SelfTest *st, io_connect_t c)
{
    static const char rule_setup[] =
        "SetupInterrupts (13): 1-256 vectors, all enabled; a second call "
        "StillOpen";
    uint64_t none[4] = { 0 }, all[4] = { ~0ull, ~0ull, ~0ull, ~0ull };
    uint64_t pending[4];
    uint32_t n = 0, m;
    kern_return_t kr;

    kr = apple_dext_setup_interrupts(c, &n);
    if (kr == kIOReturnNotFound) {
        st_report(st, "irq-setup", ST_SKIP, rule_setup,
                  "no MSI or MSI-X capability (%s)", st_kr(kr));
        return;
    }
    if (kr != kIOReturnSuccess || n == 0 || n > 256) {
        st_report(st, "irq-setup", ST_FAIL, rule_setup, "%s, %u vector(s)",
                  st_kr(kr), n);
        return;
    }
    kr = apple_dext_setup_interrupts(c, &m);
    st_report(st, "irq-setup", st_expect(kr, kIOReturnStillOpen), rule_setup,
              "%u vector(s); a second call: %s", n, st_kr(kr));

    kr = apple_dext_set_irq_mask(c, none);
    if (kr == kIOReturnSuccess) {
        kr = apple_dext_set_irq_mask(c, all);
    }
    st_report(st, "irq-mask", st_expect(kr, kIOReturnSuccess),
              "SetIRQMask (16): 4 mask words after SetupInterrupts",
              "all masked, then all enabled: %s", st_kr(kr));

    kr = apple_dext_read_pending_irqs(c, pending);
    st_report(st, "irq-check", st_expect(kr, kIOReturnSuccess),
              "CheckInterrupt (14): 4 pending words, read and cleared",
              "%s", st_kr(kr));
}

static void st_reset(SelfTest *st, io_connect_t c,
                     const AppleDextDeviceInfo *id)
{
    static const char rule[] =
        "ResetDevice (17): with a claim, function-level else hot reset";
    AppleDextDeviceInfo after;
    kern_return_t kr = apple_dext_reset_device(c);
    uint32_t d = 0;
    bool ok;

    if (kr != kIOReturnSuccess) {
        st_report(st, "reset", ST_FAIL, rule, "%s", st_kr(kr));
        return;
    }
    kr = apple_dext_get_identity(c, &after);
    ok = kr == kIOReturnSuccess && st_cfg(c, 0, 4, &d) &&
         (d & 0xffff) == id->vendor_id && d >> 16 == id->device_id;
    st_report(st, "reset", ok ? ST_PASS : ST_FAIL, rule,
              "reset; the device then reads %04x:%04x", d & 0xffff, d >> 16);
}

int cmd_selftest(Ctl *ctl, int argc, char **argv)
{
    enum { OPT_RESET = 0x200 };
    static const struct option opts[] = {
        CTL_COMMON_LONGOPTS,
        { "reset", no_argument, NULL, OPT_RESET },
        { NULL, 0, NULL, 0 },
    };
    SelfTest st = { .ctl = ctl };
    AppleDextDeviceInfo id = { 0 };
    bool reset = false;
    io_connect_t c, plain;
    int opt, rc;

    ctl_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":" CTL_COMMON_SHORTOPTS, opts,
                              NULL)) != -1) {
        if (opt == OPT_RESET) {
            reset = true;
            continue;
        }
        rc = ctl_option(ctl, opt, optarg, argv);
        if (rc != CTL_CONTINUE) {
            return rc;
        }
    }
    rc = ctl_only_device(ctl, argc, argv);
    if (rc != CTL_CONTINUE) {
        return rc;
    }
    /* Two user clients: one never claims, one does. */
    rc = ctl_connect(ctl, false, &plain);
    if (rc != CTL_CONTINUE) {
        return rc;
    }
    rc = ctl_connect(ctl, false, &c);
    if (rc != CTL_CONTINUE) {
        apple_dext_disconnect(plain);
        return rc;
    }

    if (ctl->json) {
        ctl_json_begin(ctl);
        json_kv_string(&ctl->jw, "bdf", ctl_bdf_str(&ctl->bdf));
        json_kv_string(&ctl->jw, "target", ctl_target_name(ctl));
        json_key(&ctl->jw, "checks");
        json_begin_array(&ctl->jw);
    } else {
        printf("selftest of %s through '%s'\n", ctl_bdf_str(&ctl->bdf),
               ctl_target_name(ctl));
    }
    st_identity(&st, c, &id);
    st_config(&st, c, &id);
    st_bars(&st, c);
    st_unclaimed(&st, plain);
    apple_dext_disconnect(plain);
    st_claim(&st, c);
    st_dma(&st, c);
    st_irq(&st, c);
    if (reset) {
        st_reset(&st, c, &id);
    } else {
        st_report(&st, "reset", ST_SKIP,
                  "ResetDevice (17): with a claim, function-level else hot "
                  "reset", "not asked for (--reset)");
    }
    apple_dext_disconnect(c);

    if (ctl->json) {
        json_end_array(&ctl->jw);
        json_kv_uint(&ctl->jw, "passed", st.counts[ST_PASS]);
        json_kv_uint(&ctl->jw, "failed", st.counts[ST_FAIL]);
        json_kv_uint(&ctl->jw, "skipped", st.counts[ST_SKIP]);
        ctl_json_end(ctl);
    } else {
        printf("%u passed, %u failed, %u skipped\n", st.counts[ST_PASS],
               st.counts[ST_FAIL], st.counts[ST_SKIP]);
    }
    return st.counts[ST_FAIL] ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}
