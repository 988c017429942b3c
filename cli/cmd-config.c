/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl config: config space as lspci dumps it, or registers read and
 * written in the spirit of setpci.
 *
 * Two views.  The client view is what the dext contract gives every
 * client: aligned 4-byte reads of the BAR registers return the type bits
 * only.  The raw view (--raw, a libdext extension) is the device's own
 * registers, and equals lspci byte for byte.
 */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dextctl.h"
#include "pcicfg.h"
#include "pciids.h"

typedef struct RegOp {
    const char *text;           /* as given, for messages and JSON */
    int cap_id;                 /* -1, or @off is relative to this cap */
    bool ecap;                  /* @cap_id is an extended capability's */
    uint32_t off;
    unsigned width;
    bool write;
    uint32_t value;
    uint32_t mask;              /* bits to change; all for a plain write */
    uint32_t result;            /* value read, or value written */
} RegOp;

static uint32_t width_mask(unsigned width)
{
    return width >= 4 ? UINT32_MAX : (1u << (8 * width)) - 1;
}

/* "REG[+ADD][.W][=VALUE[:MASK]]" -> @op; CTL_CONTINUE or a usage error. */
static int parse_reg(Ctl *ctl, const char *text, RegOp *op)
{
    char lhs[128], *dot, *plus;
    const char *eq = strchr(text, '=');
    size_t len = eq ? (size_t)(eq - text) : strlen(text);
    unsigned named_width = 0;
    uint64_t v;

    memset(op, 0, sizeof(*op));
    op->text = text;
    op->cap_id = -1;
    if (len == 0 || len >= sizeof(lhs)) {
        return ctl_usage(ctl, "'%s' is not a register", text);
    }
    memcpy(lhs, text, len);
    lhs[len] = '\0';

    dot = strrchr(lhs, '.');
    if (dot != NULL) {
        *dot++ = '\0';
        if (!ctl_parse_width(dot, 4, &op->width)) {
            return ctl_usage(ctl, "'%s': the width is .b, .w or .l", text);
        }
    }
    plus = strchr(lhs, '+');
    if (plus != NULL) {
        *plus++ = '\0';
    }
    if (pcicfg_register(lhs, &op->off, &named_width)) {
        /* A register name brings its width. */
    } else if ((op->cap_id = pcicfg_cap_by_name(lhs)) >= 0) {
        op->off = 0;
    } else if ((op->cap_id = pcicfg_ecap_by_name(lhs)) >= 0) {
        op->off = 0;
        op->ecap = true;
    } else if (ctl_parse_hex(lhs, &v) && v < DEXT_PCI_CFG_SPACE_EXP_SIZE) {
        op->off = (uint32_t)v;
    } else {
        return ctl_usage(ctl, "'%s' is neither a hex offset below 1000 nor "
                         "a register name (see --help)", lhs);
    }
    if (plus != NULL) {
        if (!ctl_parse_hex(plus, &v) || v >= DEXT_PCI_CFG_SPACE_EXP_SIZE) {
            return ctl_usage(ctl, "'%s': bad offset '+%s'", text, plus);
        }
        op->off += (uint32_t)v;
    }
    if (op->width == 0) {
        if (named_width == 0 || plus != NULL) {
            return ctl_usage(ctl, "'%s': give the width, e.g. %s.b, %s.w or "
                             "%s.l", text, text, text, text);
        }
        op->width = named_width;
    }
    if (op->cap_id < 0 && (op->off % op->width != 0 ||
                           op->off + op->width > DEXT_PCI_CFG_SPACE_EXP_SIZE)) {
        return ctl_usage(ctl, "'%s': offset 0x%x is not aligned to its "
                         "width of %u byte(s)", text, op->off, op->width);
    }
    if (eq == NULL) {
        return CTL_CONTINUE;
    }
    op->write = true;
    op->mask = width_mask(op->width);
    {
        char rhs[64], *colon;

        if (strlen(eq + 1) >= sizeof(rhs)) {
            return ctl_usage(ctl, "'%s': value too long", text);
        }
        strcpy(rhs, eq + 1);
        colon = strchr(rhs, ':');
        if (colon != NULL) {
            *colon++ = '\0';
            if (!ctl_parse_hex(colon, &v) || v > width_mask(op->width)) {
                return ctl_usage(ctl, "'%s': the mask must be hex and fit "
                                 "%u byte(s)", text, op->width);
            }
            op->mask = (uint32_t)v;
        }
        if (!ctl_parse_hex(rhs, &v) || v > width_mask(op->width)) {
            return ctl_usage(ctl, "'%s': the value must be hex and fit %u "
                             "byte(s)", text, op->width);
        }
        op->value = (uint32_t)v;
    }
    return CTL_CONTINUE;
}

/* Read one register in the chosen view. */
static kern_return_t reg_read(io_connect_t c, bool raw, uint32_t off,
                              unsigned width, uint32_t *val)
{
    kern_return_t kr;

    if (raw) {
        uint8_t b[4] = { 0 };

        kr = apple_dext_config_read_raw(c, off, b, width);
        *val = pcicfg_get(b, 0, width);
    } else {
        uint64_t v = 0;

        kr = apple_dext_config_read(c, off, width, &v);
        *val = (uint32_t)v;
    }
    return kr;
}

static int do_registers(Ctl *ctl, io_connect_t c, bool raw, RegOp *ops,
                        int nops)
{
    uint8_t cfg[DEXT_PCI_CFG_SPACE_EXP_SIZE];
    uint32_t cfg_len = 0;
    JsonWriter *w = &ctl->jw;
    int rc;

    for (int i = 0; i < nops; i++) {
        RegOp *op = &ops[i];
        kern_return_t kr;

        if (op->cap_id >= 0) {
            uint16_t base;

            /* Capabilities are found afresh: a write may have moved none. */
            rc = ctl_read_config(ctl, c, false,
                                 op->ecap ? DEXT_PCI_CFG_SPACE_EXP_SIZE
                                          : DEXT_PCI_CFG_SPACE_SIZE,
                                 cfg, &cfg_len);
            if (rc != CTL_CONTINUE) {
                return rc;
            }
            base = op->ecap ?
                   pcicfg_find_ecap(cfg, cfg_len, (uint16_t)op->cap_id) :
                   pcicfg_find_cap(cfg, cfg_len, (uint16_t)op->cap_id);
            if (base == 0) {
                fprintf(stderr, "dextctl: %s: %s has no %s %scapability%s\n",
                        op->text, ctl_bdf_str(&ctl->bdf),
                        op->ecap ? pcicfg_ecap_name((uint16_t)op->cap_id)
                                 : pcicfg_cap_name((uint16_t)op->cap_id),
                        op->ecap ? "extended " : "",
                        op->ecap && cfg_len < DEXT_PCI_CFG_SPACE_EXP_SIZE ?
                        " in the readable bytes (extended capabilities "
                        "lie past 0x100)" : "");
                return CTL_EXIT_FAIL;
            }
            op->off += base;
            op->cap_id = -1;
            if (op->off % op->width != 0) {
                return ctl_usage(ctl, "'%s': offset 0x%x is not aligned to "
                                 "its width", op->text, op->off);
            }
        }
        if (!op->write) {
            kr = reg_read(c, raw, op->off, op->width, &op->result);
            if (kr != kIOReturnSuccess) {
                return ctl_fail(ctl, kr, raw ? CTL_WHAT_RAW : CTL_WHAT_READ,
                                "reading %s (offset 0x%x, %u byte(s))",
                                op->text, op->off, op->width);
            }
            if (!ctl->json) {
                printf("%0*" PRIx32 "\n", (int)op->width * 2, op->result);
            }
            continue;
        }
        op->result = op->value;
        if (op->mask != width_mask(op->width)) {
            uint32_t old;

            /* Merge into what the device holds, never the BAR disguise. */
            kr = reg_read(c, true, op->off, op->width, &old);
            if (kr == kIOReturnUnsupported) {
                kr = reg_read(c, false, op->off, op->width, &old);
            }
            if (kr != kIOReturnSuccess) {
                return ctl_fail(ctl, kr, CTL_WHAT_READ, "reading %s before "
                                "changing it", op->text);
            }
            op->result = (old & ~op->mask) | (op->value & op->mask);
        }
        if (ctl->verbose) {
            ctl_note(ctl, "writing 0x%0*" PRIx32 " to 0x%x (%u byte(s))",
                     (int)op->width * 2, op->result, op->off, op->width);
        }
        kr = apple_dext_config_write(c, op->off, op->width, op->result);
        if (kr != kIOReturnSuccess) {
            return ctl_fail(ctl, kr, CTL_WHAT_WRITE, "writing %s (offset "
                            "0x%x, %u byte(s))", op->text, op->off, op->width);
        }
    }
    if (!ctl->json) {
        return CTL_EXIT_OK;
    }
    ctl_json_begin(ctl);
    json_kv_string(w, "bdf", ctl_bdf_str(&ctl->bdf));
    json_kv_string(w, "view", raw ? "raw" : "client");
    json_key(w, "registers");
    json_begin_array(w);
    for (int i = 0; i < nops; i++) {
        json_begin_object(w);
        json_kv_string(w, "register", ops[i].text);
        json_kv_uint(w, "offset", ops[i].off);
        json_kv_uint(w, "width", ops[i].width);
        json_kv_uint(w, ops[i].write ? "written" : "value", ops[i].result);
        json_end_object(w);
    }
    json_end_array(w);
    ctl_json_end(ctl);
    return CTL_EXIT_OK;
}

static int do_dump(Ctl *ctl, io_connect_t c, bool raw, int level,
                   bool domain)
{
    uint8_t *cfg = calloc(1, DEXT_PCI_CFG_SPACE_EXP_SIZE);
    char line[2 * PCIIDS_NAME_MAX + 64];
    uint32_t want, got = 0;
    int rc;

    if (cfg == NULL) {
        return ctl_fail(ctl, kIOReturnNoMemory, CTL_WHAT_READ, "config");
    }
    /* The header first: it says how long a -x dump is. */
    rc = ctl_read_config(ctl, c, raw, DEXT_PCI_STD_HEADER_SIZEOF, cfg, &got);
    if (rc != CTL_CONTINUE) {
        goto out;
    }
    if (level >= 4) {
        want = DEXT_PCI_CFG_SPACE_EXP_SIZE;
    } else if (level == 3) {
        want = DEXT_PCI_CFG_SPACE_SIZE;
    } else if ((cfg[DEXT_PCI_HEADER_TYPE] & 0x7f) == 2) {
        want = PCICFG_CARDBUS_SIZE;
    } else {
        want = DEXT_PCI_STD_HEADER_SIZEOF;
    }
    if (want > got) {
        rc = ctl_read_config(ctl, c, raw, want, cfg, &got);
        if (rc != CTL_CONTINUE) {
            goto out;
        }
    }
    if (ctl->json) {
        ctl_json_begin(ctl);
        json_kv_string(&ctl->jw, "bdf", ctl_bdf_str(&ctl->bdf));
        json_kv_string(&ctl->jw, "view", raw ? "raw" : "client");
        json_kv_uint(&ctl->jw, "length", got);
        json_key(&ctl->jw, "data");
        {
            char *hex = malloc(2 * (size_t)got + 1);

            if (hex == NULL) {
                rc = ctl_fail(ctl, kIOReturnNoMemory, CTL_WHAT_READ, "config");
                goto out;
            }
            for (uint32_t i = 0; i < got; i++) {
                snprintf(hex + 2 * i, 3, "%02x", cfg[i]);
            }
            hex[2 * got] = '\0';
            json_string(&ctl->jw, hex);
            free(hex);
        }
        ctl_json_end(ctl);
    } else {
        /* lspci's layout: the device line, the bytes, a blank line. */
        printf("%s\n", ctl_device_line(ctl, &ctl->bdf, domain, cfg, line,
                                       sizeof(line)));
        pcicfg_dump(stdout, cfg, got);
        putchar('\n');
    }
    rc = CTL_EXIT_OK;
out:
    free(cfg);
    return rc;
}

int cmd_config(Ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "raw", no_argument, NULL, 'r' },
        CTL_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    bool raw = false, domain = false, writes = false;
    int level = 0;
    RegOp *ops = NULL;
    int nops = 0;
    io_connect_t c;
    int opt, rc;

    ctl_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":xDr" CTL_COMMON_SHORTOPTS, opts,
                              NULL)) != -1) {
        switch (opt) {
        case 'x':
            level++;
            break;
        case 'D':
            domain = true;
            break;
        case 'r':
            raw = true;
            break;
        default:
            rc = ctl_option(ctl, opt, optarg, argv);
            if (rc != CTL_CONTINUE) {
                return rc;
            }
            break;
        }
    }
    if (optind >= argc) {
        return ctl_usage(ctl, "which device? Give its address, e.g. 00:03.0");
    }
    rc = ctl_parse_bdf(ctl, argv[optind++]);
    if (rc != CTL_CONTINUE) {
        return rc;
    }
    if (optind < argc) {
        if (level > 0 || domain) {
            return ctl_usage(ctl, "-x and -D are for dumps, not for "
                             "registers");
        }
        ops = calloc((size_t)(argc - optind), sizeof(*ops));
        if (ops == NULL) {
            return ctl_fail(ctl, kIOReturnNoMemory, CTL_WHAT_READ, "config");
        }
        for (; optind < argc; optind++) {
            rc = parse_reg(ctl, argv[optind], &ops[nops++]);
            if (rc != CTL_CONTINUE) {
                free(ops);
                return rc;
            }
        }
    }
    ctl_ready(ctl);

    /* Reads need no claim; writes do (a dext's default access model). */
    for (int i = 0; i < nops; i++) {
        writes |= ops[i].write;
    }
    rc = ctl_connect(ctl, writes, &c);
    if (rc == CTL_CONTINUE) {
        rc = nops > 0 ? do_registers(ctl, c, raw, ops, nops)
                      : do_dump(ctl, c, raw, level ? level : 3, domain);
        apple_dext_disconnect(c);
    }
    free(ops);
    return rc;
}
