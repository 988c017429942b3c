/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl helpers shared by the commands: option handling, number and
 * address parsing, connecting, reading config space, and error messages
 * that name the IOReturn code and say what to check.
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dextctl.h"
#include "pcicfg.h"
#include "pciids.h"

/* ------------------------------------------------------------------ */
/* Messages                                                             */

const char *ctl_target_name(const Ctl *ctl)
{
    return ctl->target ? ctl->target : apple_dext_default_target();
}

static bool target_is_inproc(const Ctl *ctl)
{
    return strncmp(ctl_target_name(ctl), "inproc:", 7) == 0;
}

void ctl_note(Ctl *ctl, const char *fmt, ...)
{
    va_list ap;

    fputs("dextctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int ctl_usage(Ctl *ctl, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "dextctl: %s%s", ctl->cmd ? ctl->cmd : "",
            ctl->cmd ? ": " : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (ctl->cmd != NULL) {
        fprintf(stderr, "Try 'dextctl %s --help'.\n", ctl->cmd);
    } else {
        fputs("Try 'dextctl --help'.\n", stderr);
    }
    return CTL_EXIT_USAGE;
}

/* When the in-process dext cannot be built from the --inproc devices. */
static const char inproc_hint[] =
    "dextctl: hint: --inproc takes device specs joined with '+', e.g. edu, "
    "ivshmem, edu,bdf=00:04.0, host,bdf=00:01.0, host (every PCI "
    "function); see dextd(8)\n";

/* The device in hints: its address, or a placeholder. */
static const char *hint_bdf(const Ctl *ctl)
{
    return ctl->have_bdf ? ctl_bdf_str(&ctl->bdf) : "BB:DD.F";
}

/*
 * What a person should check after @kr, or NULL.  The codes are those
 * the contract and libdext document; the text names the next step.
 */
static void print_hint(const Ctl *ctl, kern_return_t kr, CtlWhat what)
{
    const char *bdf = hint_bdf(ctl);
    const char *target = ctl_target_name(ctl);
    const char *detail = apple_dext_last_error_detail();

    /*
     * Reaching the dext: the library's own words first (errno of a
     * socket, a device served twice, a bad spec option, a macOS-only
     * target), which the IOReturn code cannot carry.  Where they say it
     * all, nothing generic follows.
     */
    if (what == CTL_WHAT_REACH && detail[0] != '\0') {
        fprintf(stderr, "dextctl: hint: %s\n", detail);
        if (kr == kIOReturnExclusiveAccess && target_is_inproc(ctl)) {
            fputs("dextctl: hint: two specs place a device at one address: "
                  "give one another with bdf=, e.g. edu,bdf=00:04.0\n",
                  stderr);
        }
        if (kr == kIOReturnNotPermitted || kr == kIOReturnExclusiveAccess ||
            kr == kIOReturnBadArgument || kr == kIOReturnTimeout) {
            return;
        }
    }

    switch (kr) {
    case kIOReturnNotResponding:
        if (target_is_inproc(ctl)) {
            fprintf(stderr, "dextctl: hint: the in-process dext '%s' could "
                    "not be started\n", target);
        } else {
            fprintf(stderr, "dextctl: hint: is dextd running and listening "
                    "on '%s'? Start it (e.g. 'dextd --device edu'), or pick "
                    "its socket with --socket PATH or $DEXT_SOCKET; "
                    "'--inproc edu' needs no daemon\n", target);
        }
        break;
    case kIOReturnNotPermitted:
        if (what == CTL_WHAT_REACH) {
            fputs("dextctl: hint: dextd refused this user: run dextctl as "
                  "the user that runs dextd, or as root\n", stderr);
        } else {
            fprintf(stderr, "dextctl: hint: %s is read-only: a host device "
                    "until dextd is started with '--allow-writes %s', a "
                    "replayed dump always (see dextd(8))\n", bdf, bdf);
        }
        break;
    case kIOReturnNotPrivileged:
        if (what == CTL_WHAT_READ || what == CTL_WHAT_RAW) {
            fputs("dextctl: hint: dextd may read only the 64-byte header of "
                  "this host device's config space: run dextd as root\n",
                  stderr);
        } else {
            fputs("dextctl: hint: the kernel refused dextd access to the "
                  "device: dextd must run as root (CAP_SYS_ADMIN), and a "
                  "kernel in lockdown or a hypervisor may forbid PCI writes "
                  "altogether (see dextd's log)\n", stderr);
        }
        break;
    case kIOReturnNotOpen:
        if (what == CTL_WHAT_MMIO) {
            fputs("dextctl: hint: nobody holds a claim on the device, or "
                  "no claimer has mapped the BAR yet\n", stderr);
        } else {
            fputs("dextctl: hint: the call needs a claim on the device "
                  "(apple_dext_claim)\n", stderr);
        }
        break;
    case kIOReturnNotFound:
        if (what == CTL_WHAT_REACH && !ctl->have_bdf) {
            fputs(inproc_hint, stderr);
        } else if (what == CTL_WHAT_REACH) {
            fprintf(stderr, "dextctl: hint: no device %s is served by '%s': "
                    "see 'dextctl list'\n", bdf, target);
        } else if (what == CTL_WHAT_MMIO) {
            fprintf(stderr, "dextctl: hint: that BAR is unused or the upper "
                    "half of a 64-bit BAR: see 'dextctl info %s'\n", bdf);
        } else if (what == CTL_WHAT_IRQ) {
            fprintf(stderr, "dextctl: hint: %s has no MSI or MSI-X "
                    "capability: see 'dextctl info %s'\n", bdf, bdf);
        }
        break;
    case kIOReturnUnsupported:
        switch (what) {
        case CTL_WHAT_RAW:
            fputs("dextctl: hint: the raw view is a libdext extension; the "
                  "macOS dext offers only the client view (drop --raw)\n",
                  stderr);
            break;
        case CTL_WHAT_DMA:
        case CTL_WHAT_IRQ:
            fprintf(stderr, "dextctl: hint: %s cannot do DMA or interrupts "
                    "through this dext: host devices would need VFIO\n", bdf);
            break;
        case CTL_WHAT_MMIO:
            fprintf(stderr, "dextctl: hint: the BAR cannot be reached (for a "
                    "host device: its kernel exposes no resourceN file; see "
                    "dextd's log)\n");
            break;
        case CTL_WHAT_RESET:
            fputs("dextctl: hint: the device has no reset method\n", stderr);
            break;
        case CTL_WHAT_REACH:
            fputs("dextctl: hint: this dext has no status call (the macOS "
                  "dext)\n", stderr);
            break;
        default:
            fputs("dextctl: hint: this dext does not implement the call\n",
                  stderr);
            break;
        }
        break;
    case kIOReturnBadArgument:
        if (what == CTL_WHAT_REACH) {
            fprintf(stderr, "dextctl: hint: check the target '%s' (unix:PATH, "
                    "inproc:DEVICES or iokit)\n", target);
        } else {
            fprintf(stderr, "dextctl: hint: an offset, width or index is out "
                    "of range: 'dextctl info %s' shows the config space and "
                    "BAR sizes\n", bdf);
        }
        break;
    case kIOReturnNoDevice:
        fputs("dextctl: hint: the device was terminated (handed back to the "
              "OS) and is no longer served; restart dextd to serve it "
              "again\n", stderr);
        break;
    case kIOReturnNotReady:
        fputs("dextctl: hint: interrupts are not set up, or there is no DMA "
              "buffer\n", stderr);
        break;
    case kIOReturnStillOpen:
        fputs("dextctl: hint: already set up on this connection\n", stderr);
        break;
    case kIOReturnNoResources:
    case kIOReturnNoSpace:
    case kIOReturnNoMemory:
        fputs("dextctl: hint: the dext ran out of resources: see 'dextctl "
              "status'\n", stderr);
        break;
    case kIOReturnIPCError:
        fputs("dextctl: hint: the dext's reply was malformed: are dextctl "
              "and dextd from the same libdext?\n", stderr);
        break;
    default:
        break;
    }
}

int ctl_fail(Ctl *ctl, kern_return_t kr, CtlWhat what, const char *fmt, ...)
{
    va_list ap;

    fputs("dextctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", apple_dext_strerror(kr));
    print_hint(ctl, kr, what);
    return CTL_EXIT_FAIL;
}

/* ------------------------------------------------------------------ */
/* Options                                                              */

void ctl_getopt_reset(void)
{
    /* glibc: 0 starts a fresh scan of a new argv (from index 1). */
    optind = 0;
    opterr = 0;
}

void ctl_ready(Ctl *ctl)
{
    /*
     * -v once meant --trace; where a command has no decoding depth it
     * still does, with a note, until the old spelling is dropped.
     */
    if (ctl->detail > 0 && !ctl->detail_wanted) {
        ctl->verbose = true;
        ctl_note(ctl, "-v as --trace is deprecated: say --trace (-v and "
                 "-vv are lspci's decoding depth, for info)");
    } else if (ctl->verbose_old) {
        ctl_note(ctl, "--verbose is deprecated: say --trace");
    }
    pciids_init(ctl->numeric);
}

static int set_target(Ctl *ctl, const char *prefix, const char *arg)
{
    if (ctl->target != NULL) {
        return ctl_usage(ctl, "give only one of --socket, --inproc and "
                         "--target");
    }
    if (arg[0] == '\0' ||
        strlen(prefix) + strlen(arg) >= sizeof(ctl->target_buf)) {
        return ctl_usage(ctl, "empty or too long target '%s'", arg);
    }
    strcpy(ctl->target_buf, prefix);
    strcat(ctl->target_buf, arg);
    ctl->target = ctl->target_buf;
    return CTL_CONTINUE;
}

int ctl_option(Ctl *ctl, int opt, const char *arg, char **argv)
{
    switch (opt) {
    case CTL_OPT_JSON:
        ctl->json = true;
        return CTL_CONTINUE;
    case 'n':
        ctl->numeric = true;
        return CTL_CONTINUE;
    case 'v':
        ctl->detail++;
        return CTL_CONTINUE;
    case CTL_OPT_TRACE:
        ctl->verbose = true;
        return CTL_CONTINUE;
    case CTL_OPT_VERBOSE:
        ctl->verbose = true;
        ctl->verbose_old = true;
        return CTL_CONTINUE;
    case 'h':
        ctl->command_help(ctl->cmd, stdout);
        return CTL_EXIT_OK;
    case CTL_OPT_SOCKET:
        return set_target(ctl, "unix:", arg);
    case CTL_OPT_INPROC:
        return set_target(ctl, "inproc:", arg);
    case CTL_OPT_TARGET:
        return set_target(ctl, "", arg);
    case ':':
        return ctl_usage(ctl, "option '%s' needs an argument",
                         argv[optind - 1]);
    default:
        if (optopt != 0) {
            return ctl_usage(ctl, "unknown option '-%c'", optopt);
        }
        return ctl_usage(ctl, "unknown option '%s'", argv[optind - 1]);
    }
}

/* ------------------------------------------------------------------ */
/* Parsing                                                              */

static bool hex_field(const char **p, int max_digits, unsigned *out)
{
    unsigned v = 0;
    int n = 0;

    while (n < max_digits && isxdigit((unsigned char)**p)) {
        char c = (char)tolower((unsigned char)**p);

        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        (*p)++;
        n++;
    }
    *out = v;
    return n > 0;
}

int ctl_parse_bdf(Ctl *ctl, const char *s)
{
    const char *p = s;
    unsigned dom = 0, b, d, f;

    /* A domain only when there are two colons. */
    if (strchr(s, ':') != NULL && strchr(s, ':') != strrchr(s, ':')) {
        if (!hex_field(&p, 4, &dom) || *p++ != ':') {
            goto bad;
        }
    }
    if (!hex_field(&p, 2, &b) || *p++ != ':' || !hex_field(&p, 2, &d) ||
        *p++ != '.' || !hex_field(&p, 1, &f) || *p != '\0' || d > 0x1f ||
        f > 7) {
        goto bad;
    }
    if (dom != 0) {
        return ctl_usage(ctl, "'%s': the dext reports no PCI domain; only "
                         "domain 0000 is served", s);
    }
    ctl->bdf = (CtlBdf){ (uint8_t)b, (uint8_t)d, (uint8_t)f };
    ctl->have_bdf = true;
    return CTL_CONTINUE;
bad:
    return ctl_usage(ctl, "'%s' is not a device address: expected BB:DD.F "
                     "(hex, e.g. 00:03.0)", s);
}

const char *ctl_bdf_str(const CtlBdf *bdf)
{
    static char buf[16];

    snprintf(buf, sizeof(buf), "%02x:%02x.%x", bdf->bus, bdf->dev, bdf->fn);
    return buf;
}

int ctl_only_device(Ctl *ctl, int argc, char **argv)
{
    int rc;

    if (optind >= argc) {
        return ctl_usage(ctl, "which device? Give its address, e.g. 00:03.0");
    }
    if (optind + 1 < argc) {
        return ctl_usage(ctl, "unexpected argument '%s'", argv[optind + 1]);
    }
    rc = ctl_parse_bdf(ctl, argv[optind]);
    if (rc == CTL_CONTINUE) {
        ctl_ready(ctl);
    }
    return rc;
}

bool ctl_parse_hex(const char *s, uint64_t *out)
{
    unsigned long long v;
    char *end;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
    }
    if (!isxdigit((unsigned char)s[0])) {
        return false;
    }
    errno = 0;
    v = strtoull(s, &end, 16);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

bool ctl_parse_uint(const char *s, uint64_t *out)
{
    unsigned long long v;
    char *end;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        return ctl_parse_hex(s, out);
    }
    if (!isdigit((unsigned char)s[0])) {
        return false;
    }
    errno = 0;
    /* Base 10 on purpose: a leading zero is not octal here. */
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

bool ctl_parse_size(const char *s, uint64_t *out)
{
    char buf[64];
    size_t len = strlen(s);
    unsigned shift = 0;
    uint64_t v;

    if (len == 0 || len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, len + 1);
    switch (buf[len - 1]) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        break;
    }
    if (shift != 0) {
        buf[len - 1] = '\0';
    }
    if (!ctl_parse_uint(buf, &v) || v > (UINT64_MAX >> shift)) {
        return false;
    }
    *out = v << shift;
    return true;
}

bool ctl_parse_seconds(const char *s, double *out)
{
    char *end;
    double v;

    if (!isdigit((unsigned char)s[0]) && s[0] != '.') {
        return false;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0) {
        return false;
    }
    *out = v;
    return true;
}

bool ctl_parse_width(const char *s, unsigned max, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned bytes;
    } widths[] = {
        { "1", 1 }, { "2", 2 }, { "4", 4 }, { "8", 8 },
        { "b", 1 }, { "w", 2 }, { "l", 4 }, { "q", 8 },
        { "B", 1 }, { "W", 2 }, { "L", 4 }, { "Q", 8 },
    };

    for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
        if (strcmp(s, widths[i].name) == 0 && widths[i].bytes <= max) {
            *out = widths[i].bytes;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* Devices                                                              */

int ctl_connect(Ctl *ctl, bool claim, io_connect_t *out)
{
    const char *bdf = ctl_bdf_str(&ctl->bdf);
    kern_return_t kr;
    uint32_t n = 0;

    if (ctl->verbose) {
        ctl_note(ctl, "connecting to %s through '%s'", bdf,
                 ctl_target_name(ctl));
    }
    kr = apple_dext_connect_target(ctl->target, ctl->bdf.bus, ctl->bdf.dev,
                                   ctl->bdf.fn, out);
    if (kr == kIOReturnNotFound &&
        apple_dext_list_devices(ctl->target, NULL, 0, &n) ==
        kIOReturnNotFound) {
        /* Not the device: the in-process dext itself did not come up. */
        fprintf(stderr, "dextctl: cannot start the in-process dext '%s': "
                "%s\n", ctl_target_name(ctl), apple_dext_strerror(kr));
        fputs(inproc_hint, stderr);
        return CTL_EXIT_FAIL;
    }
    if (kr != kIOReturnSuccess) {
        return ctl_fail(ctl, kr, CTL_WHAT_REACH, "connecting to %s", bdf);
    }
    if (claim) {
        kr = apple_dext_claim(*out);
        if (kr != kIOReturnSuccess) {
            apple_dext_disconnect(*out);
            *out = IO_OBJECT_NULL;
            return ctl_fail(ctl, kr, CTL_WHAT_CLAIM, "claiming %s", bdf);
        }
        if (ctl->verbose) {
            ctl_note(ctl, "claimed %s", bdf);
        }
    }
    return CTL_CONTINUE;
}

int ctl_read_config(Ctl *ctl, io_connect_t c, bool raw, uint32_t want,
                    uint8_t *buf, uint32_t *got)
{
    uint32_t len = want;

    for (;;) {
        kern_return_t kr = raw ? apple_dext_config_read_raw(c, 0, buf, len)
                               : apple_dext_config_read_block(c, 0, buf, len);

        if (kr == kIOReturnSuccess) {
            *got = len;
            return CTL_CONTINUE;
        }
        if (kr == kIOReturnBadArgument && len > DEXT_PCI_CFG_SPACE_SIZE) {
            /* No extended config space: lspci shows 256 bytes then. */
            len = DEXT_PCI_CFG_SPACE_SIZE;
            continue;
        }
        if (kr == kIOReturnNotPrivileged && len > DEXT_PCI_STD_HEADER_SIZEOF) {
            ctl_note(ctl, "the dext may read only the first %u bytes of "
                     "%s's config space (a host device served without root "
                     "privileges); showing those", DEXT_PCI_STD_HEADER_SIZEOF,
                     ctl_bdf_str(&ctl->bdf));
            len = DEXT_PCI_STD_HEADER_SIZEOF;
            continue;
        }
        return ctl_fail(ctl, kr, raw ? CTL_WHAT_RAW : CTL_WHAT_READ,
                        "reading %u bytes of %s config space of %s", len,
                        raw ? "raw" : "client-view", ctl_bdf_str(&ctl->bdf));
    }
}

const char *ctl_device_line(const Ctl *ctl, const CtlBdf *bdf, bool domain,
                            const uint8_t *cfg, char *buf, size_t len)
{
    char cls[PCIIDS_NAME_MAX], dev[PCIIDS_NAME_MAX];
    uint8_t rev = cfg[DEXT_PCI_REVISION_ID];
    int n;

    n = snprintf(buf, len, "%s%02x:%02x.%x %s: %s", domain ? "0000:" : "",
                 bdf->bus, bdf->dev, bdf->fn,
                 pciids_class(pcicfg_get(cfg, DEXT_PCI_CLASS_PROG, 3), cls,
                              sizeof(cls)),
                 pciids_device((uint16_t)pcicfg_get(cfg, DEXT_PCI_VENDOR_ID, 2),
                               (uint16_t)pcicfg_get(cfg, DEXT_PCI_DEVICE_ID, 2),
                               dev, sizeof(dev)));
    /* As lspci: a revision of zero is not shown. */
    if (rev != 0 && n >= 0 && (size_t)n < len) {
        snprintf(buf + n, len - (size_t)n, " (rev %02x)", rev);
    }
    return buf;
}

void ctl_json_begin(Ctl *ctl)
{
    json_init(&ctl->jw, stdout, true);
    json_begin_object(&ctl->jw);
}

void ctl_json_end(Ctl *ctl)
{
    json_end_object(&ctl->jw);
}

void ctl_json_names(Ctl *ctl, uint16_t vendor, uint16_t device,
                    uint32_t class_code)
{
    char buf[PCIIDS_NAME_MAX];

    if (pciids_lookup('v', vendor, 0, 0, 0, buf, sizeof(buf)) != NULL) {
        json_kv_string(&ctl->jw, "vendor_name", buf);
    }
    if (pciids_lookup('d', vendor, device, 0, 0, buf, sizeof(buf)) != NULL) {
        json_kv_string(&ctl->jw, "device_name", buf);
    }
    if (pciids_lookup('c', (class_code >> 8) & 0xffff, 0, 0, 0, buf,
                      sizeof(buf)) != NULL) {
        json_kv_string(&ctl->jw, "class_name", buf);
    }
}

int ctl_info_cmp(const void *a, const void *b)
{
    const AppleDextDeviceInfo *x = a, *y = b;
    unsigned kx = (unsigned)x->bus << 8 | (unsigned)x->device << 3 |
                  x->function;
    unsigned ky = (unsigned)y->bus << 8 | (unsigned)y->device << 3 |
                  y->function;

    return kx < ky ? -1 : kx > ky;
}

const char *ctl_size_str(uint64_t size)
{
    static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB",
                                         "PiB", "EiB" };
    static char buf[32];
    unsigned u = 0;

    /* Exact units only: BAR sizes are powers of two. */
    while (u + 1 < sizeof(units) / sizeof(units[0]) && size >= 1024 &&
           size % 1024 == 0) {
        size /= 1024;
        u++;
    }
    snprintf(buf, sizeof(buf), "%" PRIu64 " %s", size, units[u]);
    return buf;
}
