/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl bar: one register access in a BAR, through a mapping where the
 * BAR can be mapped (plain loads and stores, as a driver does), else
 * through the dext's MMIO call.
 */

#include <inttypes.h>
#include <string.h>

#include "dextctl.h"

/* One access of exactly @width bytes: device registers care. */
static uint64_t mapped_read(volatile void *p, unsigned width)
{
    switch (width) {
    case 1:
        return *(volatile uint8_t *)p;
    case 2:
        return *(volatile uint16_t *)p;
    case 4:
        return *(volatile uint32_t *)p;
    default:
        return *(volatile uint64_t *)p;
    }
}

static void mapped_write(volatile void *p, unsigned width, uint64_t v)
{
    switch (width) {
    case 1:
        *(volatile uint8_t *)p = (uint8_t)v;
        break;
    case 2:
        *(volatile uint16_t *)p = (uint16_t)v;
        break;
    case 4:
        *(volatile uint32_t *)p = (uint32_t)v;
        break;
    default:
        *(volatile uint64_t *)p = v;
        break;
    }
}

typedef struct BarAccess {
    uint8_t bar;
    bool write;
    uint64_t off;
    unsigned width;
    uint64_t value;
    bool mmio_only;
    const char *path;           /* "mapping" or "mmio" once done */
} BarAccess;

static int bar_do(Ctl *ctl, io_connect_t c, BarAccess *a)
{
    const char *bdf = ctl_bdf_str(&ctl->bdf);
    mach_vm_address_t addr = 0;
    mach_vm_size_t msize = 0;
    uint64_t size = 0;
    uint8_t mem_idx = 0, type = 0;
    kern_return_t kr;

    kr = apple_dext_get_bar_info(c, a->bar, &mem_idx, &size, &type);
    if (kr != kIOReturnSuccess) {
        return ctl_fail(ctl, kr, CTL_WHAT_MMIO, "BAR%u of %s", a->bar, bdf);
    }
    if (a->off >= size || a->width > size - a->off) {
        return ctl_usage(ctl, "offset 0x%" PRIx64 " + %u byte(s) is past the "
                         "end of BAR%u (%s)", a->off, a->width, a->bar,
                         ctl_size_str(size));
    }
    if (a->off % a->width != 0) {
        return ctl_usage(ctl, "offset 0x%" PRIx64 " is not aligned to %u "
                         "byte(s)", a->off, a->width);
    }
    if (!a->mmio_only) {
        kr = apple_dext_map_bar(c, a->bar, &addr, &msize, NULL);
        if (kr == kIOReturnSuccess) {
            volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)addr + a->off;

            if (a->write) {
                mapped_write(p, a->width, a->value);
            } else {
                a->value = mapped_read(p, a->width);
            }
            a->path = "mapping";
            apple_dext_unmap_bar(c, a->bar, addr);
            return CTL_CONTINUE;
        }
        if (kr != kIOReturnUnsupported) {
            return ctl_fail(ctl, kr, CTL_WHAT_MMIO, "mapping BAR%u of %s",
                            a->bar, bdf);
        }
        /* A trapping register BAR (emulated): only the call reaches it. */
        if (ctl->verbose) {
            ctl_note(ctl, "BAR%u cannot be mapped; using the MMIO call",
                     a->bar);
        }
    }
    if (a->write) {
        kr = apple_dext_mmio_write(c, mem_idx, a->off, a->width, a->value);
    } else {
        kr = apple_dext_mmio_read(c, mem_idx, a->off, a->width, &a->value);
    }
    if (kr != kIOReturnSuccess) {
        return ctl_fail(ctl, kr, CTL_WHAT_MMIO, "%s BAR%u of %s at 0x%" PRIx64,
                        a->write ? "writing" : "reading", a->bar, bdf, a->off);
    }
    a->path = "mmio";
    return CTL_CONTINUE;
}

int cmd_bar(Ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "mmio", no_argument, NULL, 'm' },
        CTL_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    BarAccess a = { .width = 4 };
    const char *value = NULL;
    io_connect_t c;
    uint64_t v;
    int nargs, opt, rc;

    ctl_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":" CTL_COMMON_SHORTOPTS, opts,
                              NULL)) != -1) {
        if (opt == 'm') {
            a.mmio_only = true;
            continue;
        }
        rc = ctl_option(ctl, opt, optarg, argv);
        if (rc != CTL_CONTINUE) {
            return rc;
        }
    }
    nargs = argc - optind;
    if (nargs < 4) {
        return ctl_usage(ctl, "expected BDF N read|write OFFSET [WIDTH] "
                         "[VALUE]");
    }
    rc = ctl_parse_bdf(ctl, argv[optind]);
    if (rc != CTL_CONTINUE) {
        return rc;
    }
    if (!ctl_parse_uint(argv[optind + 1], &v) || v > 5) {
        return ctl_usage(ctl, "'%s' is not a BAR number (0-5)",
                         argv[optind + 1]);
    }
    a.bar = (uint8_t)v;
    if (strcmp(argv[optind + 2], "read") == 0) {
        if (nargs > 5) {
            return ctl_usage(ctl, "a read takes OFFSET [WIDTH]");
        }
    } else if (strcmp(argv[optind + 2], "write") == 0) {
        a.write = true;
        if (nargs < 5 || nargs > 6) {
            return ctl_usage(ctl, "a write takes OFFSET [WIDTH] VALUE");
        }
        value = argv[argc - 1];
    } else {
        return ctl_usage(ctl, "'%s': expected read or write",
                         argv[optind + 2]);
    }
    if (!ctl_parse_hex(argv[optind + 3], &a.off)) {
        return ctl_usage(ctl, "'%s' is not a hex offset", argv[optind + 3]);
    }
    if ((a.write ? nargs == 6 : nargs == 5) &&
        !ctl_parse_width(argv[optind + 4], 8, &a.width)) {
        return ctl_usage(ctl, "'%s' is not a width (1, 2, 4 or 8)",
                         argv[optind + 4]);
    }
    if (value != NULL) {
        if (!ctl_parse_hex(value, &a.value) ||
            (a.width < 8 && a.value >> (8 * a.width) != 0)) {
            return ctl_usage(ctl, "'%s' is not a hex value that fits %u "
                             "byte(s)", value, a.width);
        }
    }
    ctl_ready(ctl);

    /* MMIO reaches the device only while someone holds a claim. */
    rc = ctl_connect(ctl, true, &c);
    if (rc != CTL_CONTINUE) {
        return rc;
    }
    rc = bar_do(ctl, c, &a);
    apple_dext_disconnect(c);
    if (rc != CTL_CONTINUE) {
        return rc;
    }
    if (ctl->json) {
        ctl_json_begin(ctl);
        json_kv_string(&ctl->jw, "bdf", ctl_bdf_str(&ctl->bdf));
        json_kv_uint(&ctl->jw, "bar", a.bar);
        json_kv_uint(&ctl->jw, "offset", a.off);
        json_kv_uint(&ctl->jw, "width", a.width);
        json_kv_uint(&ctl->jw, a.write ? "written" : "value", a.value);
        json_kv_string(&ctl->jw, "access", a.path);
        ctl_json_end(ctl);
    } else if (!a.write) {
        printf("%0*" PRIx64 "\n", (int)a.width * 2, a.value);
    }
    return CTL_EXIT_OK;
}
