/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl info: identity, BARs, capabilities and interrupt vectors.
 *
 * Capabilities are decoded from a copy of config space read through the
 * client view, which the real macOS dext offers too; only the BAR
 * registers differ in the raw view, and --raw reads that as well.
 */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dextctl.h"
#include "pcicfg.h"
#include "pciids.h"

#define INFO_MAX_CAPS 96

typedef struct InfoBar {
    bool used;
    uint8_t mem_idx;
    uint64_t size;
    uint8_t type;
    uint64_t address;           /* --raw only */
} InfoBar;

typedef struct Info {
    uint8_t cfg[DEXT_PCI_CFG_SPACE_EXP_SIZE];
    uint32_t len;
    uint8_t raw[DEXT_PCI_CFG_SPACE_EXP_SIZE];
    uint32_t raw_len;
    bool have_raw;
    InfoBar bars[6];
    bool have_state;
    AppleDextDeviceStatus st;
    PciCap caps[INFO_MAX_CAPS];
    unsigned ncaps;
} Info;

/* ------------------------------------------------------------------ */
/* Decoding                                                             */

static const char *pcie_type_name(unsigned type)
{
    static const char *const names[] = {
        [0] = "Endpoint",
        [1] = "Legacy Endpoint",
        [4] = "Root Port",
        [5] = "Upstream Port",
        [6] = "Downstream Port",
        [7] = "PCIe-to-PCI Bridge",
        [8] = "PCI-to-PCIe Bridge",
        [9] = "Root Complex Integrated Endpoint",
        [10] = "Root Complex Event Collector",
    };

    if (type < sizeof(names) / sizeof(names[0]) && names[type] != NULL) {
        return names[type];
    }
    return "reserved type";
}

static const char *link_speed(unsigned code)
{
    static const char *const speeds[] = {
        NULL, "2.5 GT/s", "5 GT/s", "8 GT/s", "16 GT/s", "32 GT/s",
        "64 GT/s",
    };

    if (code < sizeof(speeds) / sizeof(speeds[0]) && speeds[code] != NULL) {
        return speeds[code];
    }
    return "unknown speed";
}

static bool pcie_has_link(unsigned type)
{
    /* Root-complex-integrated functions have no link of their own. */
    return type != 9 && type != 10;
}

static const char *bar_kind(uint8_t type)
{
    return (type & 0x01) ? "io" : "memory";
}

/* A capability body that is not all in the bytes read cannot be shown. */
static bool cap_fits(const Info *in, const PciCap *c, uint32_t size)
{
    return (uint32_t)c->offset + size <= in->len;
}

static void cap_text(const Info *in, const PciCap *c)
{
    const uint8_t *cfg = in->cfg;
    uint32_t o = c->offset;

    if (c->extended) {
        printf("  0x%03x  %s (version %u)\n", o, pcicfg_ecap_name(c->id),
               c->version);
        return;
    }
    printf("  0x%02x   %s", o, pcicfg_cap_name(c->id));
    switch (c->id) {
    case DEXT_PCI_CAP_ID_PM:
        if (cap_fits(in, c, 6)) {
            uint32_t pmc = pcicfg_get(cfg, o + 2, 2);
            uint32_t csr = pcicfg_get(cfg, o + 4, 2);

            printf(": version %u, D1 %s, D2 %s, now D%u%s", pmc & 7,
                   (pmc & 0x200) ? "yes" : "no", (pmc & 0x400) ? "yes" : "no",
                   csr & 3, (csr & 3) == 3 ? "hot" : "");
        }
        break;
    case DEXT_PCI_CAP_ID_MSI:
        if (cap_fits(in, c, 4)) {
            uint32_t ctl = pcicfg_get(cfg, o + 2, 2);

            printf(": %u vector(s) capable, %s, per-vector masking %s, "
                   "enabled %s", 1u << ((ctl >> 1) & 7),
                   (ctl & 0x80) ? "64-bit" : "32-bit",
                   (ctl & 0x100) ? "yes" : "no", (ctl & 1) ? "yes" : "no");
        }
        break;
    case DEXT_PCI_CAP_ID_MSIX:
        if (cap_fits(in, c, 12)) {
            uint32_t ctl = pcicfg_get(cfg, o + 2, 2);
            uint32_t tbl = pcicfg_get(cfg, o + 4, 4);
            uint32_t pba = pcicfg_get(cfg, o + 8, 4);

            printf(": table size %u, table in BAR%u at 0x%x, PBA in BAR%u at "
                   "0x%x, enabled %s", (ctl & 0x7ff) + 1, tbl & 7, tbl & ~7u,
                   pba & 7, pba & ~7u, (ctl & 0x8000) ? "yes" : "no");
        }
        break;
    case DEXT_PCI_CAP_ID_EXP:
        if (cap_fits(in, c, 0x14)) {
            uint32_t flags = pcicfg_get(cfg, o + 2, 2);
            uint32_t devcap = pcicfg_get(cfg, o + 4, 4);
            unsigned type = (flags >> 4) & 0xf;

            printf(": version %u, %s, max payload %u bytes, FLR %s",
                   flags & 0xf, pcie_type_name(type), 128u << (devcap & 7),
                   (devcap & (1u << 28)) ? "yes" : "no");
            if (pcie_has_link(type)) {
                uint32_t lcap = pcicfg_get(cfg, o + 0x0c, 4);
                uint32_t lsta = pcicfg_get(cfg, o + 0x12, 2);

                printf(", link x%u at %s (capable: x%u at %s)",
                       (lsta >> 4) & 0x3f, link_speed(lsta & 0xf),
                       (lcap >> 4) & 0x3f, link_speed(lcap & 0xf));
            }
        }
        break;
    case DEXT_PCI_CAP_ID_VNDR:
        if (cap_fits(in, c, 3)) {
            printf(": %u bytes", cfg[o + 2]);
        }
        break;
    default:
        break;
    }
    putchar('\n');
}

/* ------------------------------------------------------------------ */
/* lspci -v/-vv decoding (info -v, -vv)                                 */

/* One flag as lspci prints it: NAME+ or NAME-. */
typedef struct Flag {
    const char *name;
    uint32_t bit;
} Flag;

#define NFLAGS(t) (sizeof(t) / sizeof((t)[0]))

/* The detail lines under a capability line are indented this far. */
#define DETAIL_INDENT "         "

static void print_flags(const Flag *f, size_t n, uint32_t v)
{
    for (size_t i = 0; i < n; i++) {
        printf(" %s%c", f[i].name, (v & f[i].bit) ? '+' : '-');
    }
}

static const Flag command_flags[] = {
    { "I/O", 0x1 }, { "Mem", 0x2 }, { "BusMaster", 0x4 },
    { "SpecCycle", 0x8 }, { "MemWINV", 0x10 }, { "VGASnoop", 0x20 },
    { "ParErr", 0x40 }, { "Stepping", 0x80 }, { "SERR", 0x100 },
    { "FastB2B", 0x200 }, { "DisINTx", 0x400 },
};

static const Flag status_flags_lo[] = {
    { "Cap", 0x10 }, { "66MHz", 0x20 }, { "UDF", 0x40 },
    { "FastB2B", 0x80 }, { "ParErr", 0x100 },
};

static const Flag status_flags_hi[] = {
    { ">TAbort", 0x800 }, { "<TAbort", 0x1000 }, { "<MAbort", 0x2000 },
    { ">SERR", 0x4000 }, { "<PERR", 0x8000 }, { "INTx", 0x8 },
};

/* Control and Status, as lspci -vv prints them. */
static void decode_header(const uint8_t *cfg)
{
    static const char *const devsel[] = { "fast", "medium", "slow", "??" };
    uint32_t cmd = pcicfg_get(cfg, DEXT_PCI_COMMAND, 2);
    uint32_t sta = pcicfg_get(cfg, DEXT_PCI_STATUS, 2);

    printf("  control      ");
    print_flags(command_flags, NFLAGS(command_flags), cmd);
    printf("\n  status       ");
    print_flags(status_flags_lo, NFLAGS(status_flags_lo), sta);
    printf(" DEVSEL=%s", devsel[(sta >> 9) & 3]);
    print_flags(status_flags_hi, NFLAGS(status_flags_hi), sta);
    putchar('\n');
}

static void decode_pm(const uint8_t *cfg, uint32_t o, unsigned detail)
{
    static const unsigned aux_ma[] = { 0, 55, 100, 160, 220, 270, 320, 375 };
    static const Flag pmc_flags[] = {
        { "PMEClk", 0x8 }, { "DSI", 0x20 }, { "D1", 0x200 }, { "D2", 0x400 },
    };
    uint32_t pmc = pcicfg_get(cfg, o + 2, 2);
    uint32_t csr = pcicfg_get(cfg, o + 4, 2);

    if (detail < 2) {
        return;
    }
    printf(DETAIL_INDENT "Flags:");
    print_flags(pmc_flags, NFLAGS(pmc_flags), pmc);
    printf(" AuxCurrent=%umA PME(D0%c,D1%c,D2%c,D3hot%c,D3cold%c)\n",
           aux_ma[(pmc >> 6) & 7], (pmc & 0x800) ? '+' : '-',
           (pmc & 0x1000) ? '+' : '-', (pmc & 0x2000) ? '+' : '-',
           (pmc & 0x4000) ? '+' : '-', (pmc & 0x8000) ? '+' : '-');
    printf(DETAIL_INDENT "Status: D%u NoSoftRst%c PME-Enable%c DSel=%u "
           "DScale=%u PME%c\n", csr & 3, (csr & 0x8) ? '+' : '-',
           (csr & 0x100) ? '+' : '-', (csr >> 9) & 0xf, (csr >> 13) & 3,
           (csr & 0x8000) ? '+' : '-');
}

static void decode_msi(const Info *in, uint32_t o, unsigned detail)
{
    const uint8_t *cfg = in->cfg;
    uint32_t ctl = pcicfg_get(cfg, o + 2, 2);
    bool is64 = (ctl & 0x80) != 0;
    uint32_t data_off = o + (is64 ? 0x0c : 0x08);

    printf(DETAIL_INDENT "MSI: Enable%c Count=%u/%u Maskable%c 64bit%c\n",
           (ctl & 1) ? '+' : '-', 1u << ((ctl >> 4) & 7),
           1u << ((ctl >> 1) & 7), (ctl & 0x100) ? '+' : '-',
           is64 ? '+' : '-');
    if (detail < 2 || data_off + 2 > in->len) {
        return;
    }
    if (is64) {
        printf(DETAIL_INDENT "Address: %08x%08x  Data: %04x\n",
               pcicfg_get(cfg, o + 8, 4), pcicfg_get(cfg, o + 4, 4),
               pcicfg_get(cfg, data_off, 2));
    } else {
        printf(DETAIL_INDENT "Address: %08x  Data: %04x\n",
               pcicfg_get(cfg, o + 4, 4), pcicfg_get(cfg, data_off, 2));
    }
    if ((ctl & 0x100) && data_off + 12 <= in->len) {
        printf(DETAIL_INDENT "Masking: %08x  Pending: %08x\n",
               pcicfg_get(cfg, data_off + 4, 4),
               pcicfg_get(cfg, data_off + 8, 4));
    }
}

static void decode_msix(const uint8_t *cfg, uint32_t o, unsigned detail)
{
    uint32_t ctl = pcicfg_get(cfg, o + 2, 2);
    uint32_t tbl = pcicfg_get(cfg, o + 4, 4);
    uint32_t pba = pcicfg_get(cfg, o + 8, 4);

    printf(DETAIL_INDENT "MSI-X: Enable%c Count=%u Masked%c\n",
           (ctl & 0x8000) ? '+' : '-', (ctl & 0x7ff) + 1,
           (ctl & 0x4000) ? '+' : '-');
    if (detail >= 2) {
        printf(DETAIL_INDENT "Vector table: BAR=%u offset=%08x\n", tbl & 7,
               tbl & ~7u);
        printf(DETAIL_INDENT "PBA: BAR=%u offset=%08x\n", pba & 7,
               pba & ~7u);
    }
}

static void decode_exp(const uint8_t *cfg, uint32_t o, unsigned detail)
{
    static const char *const l0s[] = {
        "<64ns", "<128ns", "<256ns", "<512ns", "<1us", "<2us", "<4us",
        "unlimited",
    };
    static const char *const l1[] = {
        "<1us", "<2us", "<4us", "<8us", "<16us", "<32us", "<64us",
        "unlimited",
    };
    static const char *const aspm_cap[] = {
        "not supported", "L0s", "L1", "L0s L1",
    };
    static const char *const aspm_ctl[] = {
        "Disabled", "L0s Enabled", "L1 Enabled", "L0s L1 Enabled",
    };
    static const Flag devcap_flags[] = {
        { "ExtTag", 1u << 5 }, { "AttnBtn", 1u << 12 },
        { "AttnInd", 1u << 13 }, { "PwrInd", 1u << 14 },
        { "RBE", 1u << 15 }, { "FLReset", 1u << 28 },
    };
    static const Flag devctl_errs[] = {
        { "CorrErr", 1 }, { "NonFatalErr", 2 }, { "FatalErr", 4 },
        { "UnsupReq", 8 },
    };
    static const Flag devctl_flags[] = {
        { "RlxdOrd", 1u << 4 }, { "ExtTag", 1u << 8 },
        { "PhantFunc", 1u << 9 }, { "AuxPwr", 1u << 10 },
        { "NoSnoop", 1u << 11 }, { "FLReset", 1u << 15 },
    };
    static const Flag devsta_flags[] = {
        { "CorrErr", 1 }, { "NonFatalErr", 2 }, { "FatalErr", 4 },
        { "UnsupReq", 8 }, { "AuxPwr", 0x10 }, { "TransPend", 0x20 },
    };
    static const Flag lnksta_flags[] = {
        { "TrErr", 1u << 10 }, { "Train", 1u << 11 },
        { "SlotClk", 1u << 12 }, { "DLActive", 1u << 13 },
        { "BWMgmt", 1u << 14 }, { "ABWMgmt", 1u << 15 },
    };
    uint32_t flags = pcicfg_get(cfg, o + 2, 2);
    uint32_t devcap = pcicfg_get(cfg, o + 4, 4);
    uint32_t devctl = pcicfg_get(cfg, o + 8, 2);
    uint32_t devsta = pcicfg_get(cfg, o + 0x0a, 2);
    unsigned type = (flags >> 4) & 0xf;

    printf(DETAIL_INDENT "DevCap: MaxPayload %u bytes, PhantFunc %u, "
           "Latency L0s %s, L1 %s\n", 128u << (devcap & 7),
           (devcap >> 3) & 3, l0s[(devcap >> 6) & 7], l1[(devcap >> 9) & 7]);
    if (detail >= 2) {
        printf(DETAIL_INDENT "       ");
        print_flags(devcap_flags, NFLAGS(devcap_flags), devcap);
        putchar('\n');
    }
    printf(DETAIL_INDENT "DevCtl:");
    print_flags(devctl_errs, NFLAGS(devctl_errs), devctl);
    putchar('\n');
    if (detail >= 2) {
        printf(DETAIL_INDENT "       ");
        print_flags(devctl_flags, NFLAGS(devctl_flags), devctl);
        putchar('\n');
    }
    printf(DETAIL_INDENT "        MaxPayload %u bytes, MaxReadReq %u bytes\n",
           128u << ((devctl >> 5) & 7), 128u << ((devctl >> 12) & 7));
    printf(DETAIL_INDENT "DevSta:");
    print_flags(devsta_flags, NFLAGS(devsta_flags), devsta);
    putchar('\n');
    if (pcie_has_link(type)) {
        uint32_t lcap = pcicfg_get(cfg, o + 0x0c, 4);
        uint32_t lctl = pcicfg_get(cfg, o + 0x10, 2);
        uint32_t lsta = pcicfg_get(cfg, o + 0x12, 2);

        printf(DETAIL_INDENT "LnkCap: Port #%u, Speed %s, Width x%u, "
               "ASPM %s\n", lcap >> 24, link_speed(lcap & 0xf),
               (lcap >> 4) & 0x3f, aspm_cap[(lcap >> 10) & 3]);
        if (detail >= 2) {
            printf(DETAIL_INDENT "LnkCtl: ASPM %s; Disabled%c CommClk%c\n",
                   aspm_ctl[lctl & 3], (lctl & 0x10) ? '+' : '-',
                   (lctl & 0x40) ? '+' : '-');
        }
        printf(DETAIL_INDENT "LnkSta: Speed %s, Width x%u",
               link_speed(lsta & 0xf), (lsta >> 4) & 0x3f);
        if (detail >= 2) {
            print_flags(lnksta_flags, NFLAGS(lnksta_flags), lsta);
        }
        putchar('\n');
    }
}

static const Flag aer_ue_flags[] = {
    { "DLP", 1u << 4 }, { "SDES", 1u << 5 }, { "TLP", 1u << 12 },
    { "FCP", 1u << 13 }, { "CmpltTO", 1u << 14 }, { "CmpltAbrt", 1u << 15 },
    { "UnxCmplt", 1u << 16 }, { "RxOF", 1u << 17 }, { "MalfTLP", 1u << 18 },
    { "ECRC", 1u << 19 }, { "UnsupReq", 1u << 20 }, { "ACSViol", 1u << 21 },
};

static const Flag aer_ce_flags[] = {
    { "RxErr", 1u << 0 }, { "BadTLP", 1u << 6 }, { "BadDLLP", 1u << 7 },
    { "Rollover", 1u << 8 }, { "Timeout", 1u << 12 },
    { "AdvNonFatalErr", 1u << 13 },
};

static void decode_aer(const uint8_t *cfg, uint32_t o, unsigned detail)
{
    static const struct {
        const char *name;
        uint32_t off;
        bool ue;
    } regs[] = {
        { "UESta", 0x04, true }, { "UEMsk", 0x08, true },
        { "UESvrt", 0x0c, true }, { "CESta", 0x10, false },
        { "CEMsk", 0x14, false },
    };
    uint32_t cap = pcicfg_get(cfg, o + 0x18, 4);

    for (size_t i = 0; i < NFLAGS(regs); i++) {
        uint32_t v = pcicfg_get(cfg, o + regs[i].off, 4);

        /* -v: the status registers; -vv: masks and severities too. */
        if (detail < 2 && regs[i].off != 0x04 && regs[i].off != 0x10) {
            continue;
        }
        printf(DETAIL_INDENT "%s:", regs[i].name);
        if (regs[i].ue) {
            print_flags(aer_ue_flags, NFLAGS(aer_ue_flags), v);
        } else {
            print_flags(aer_ce_flags, NFLAGS(aer_ce_flags), v);
        }
        putchar('\n');
    }
    if (detail >= 2) {
        printf(DETAIL_INDENT "AERCap: First Error Pointer: %02x, "
               "ECRCGenCap%c ECRCGenEn%c ECRCChkCap%c ECRCChkEn%c\n",
               cap & 0x1f, (cap & 0x20) ? '+' : '-',
               (cap & 0x40) ? '+' : '-', (cap & 0x80) ? '+' : '-',
               (cap & 0x100) ? '+' : '-');
    }
}

static void decode_dsn(const uint8_t *cfg, uint32_t o)
{
    uint32_t lo = pcicfg_get(cfg, o + 4, 4);
    uint32_t hi = pcicfg_get(cfg, o + 8, 4);

    printf(DETAIL_INDENT "Serial number: %02x-%02x-%02x-%02x-%02x-%02x-%02x-"
           "%02x\n", hi >> 24, (hi >> 16) & 0xff, (hi >> 8) & 0xff,
           hi & 0xff, lo >> 24, (lo >> 16) & 0xff, (lo >> 8) & 0xff,
           lo & 0xff);
}

static void decode_sriov(const uint8_t *cfg, uint32_t o, unsigned detail)
{
    static const Flag ctl_flags[] = {
        { "Enable", 1 }, { "Migration", 2 }, { "Interrupt", 4 },
        { "MSE", 8 }, { "ARIHierarchy", 0x10 },
    };
    uint32_t ctl = pcicfg_get(cfg, o + 0x08, 2);

    printf(DETAIL_INDENT "IOVCtl:");
    print_flags(ctl_flags, NFLAGS(ctl_flags), ctl);
    printf("\n" DETAIL_INDENT "Initial VFs: %u, Total VFs: %u, Number of "
           "VFs: %u\n", pcicfg_get(cfg, o + 0x0c, 2),
           pcicfg_get(cfg, o + 0x0e, 2), pcicfg_get(cfg, o + 0x10, 2));
    if (detail >= 2) {
        printf(DETAIL_INDENT "VF offset: %u, stride: %u, Device ID: %04x\n",
               pcicfg_get(cfg, o + 0x14, 2), pcicfg_get(cfg, o + 0x16, 2),
               pcicfg_get(cfg, o + 0x1a, 2));
    }
}

/* The lines under a capability's line, as deep as -v or -vv asks. */
static void cap_detail(const Info *in, const PciCap *c, unsigned detail)
{
    const uint8_t *cfg = in->cfg;
    uint32_t o = c->offset;

    if (c->extended) {
        switch (c->id) {
        case 0x0001:
            if (cap_fits(in, c, 0x1c)) {
                decode_aer(cfg, o, detail);
            }
            break;
        case 0x0003:
            if (cap_fits(in, c, 0x0c)) {
                decode_dsn(cfg, o);
            }
            break;
        case 0x0010:
            if (cap_fits(in, c, 0x1c)) {
                decode_sriov(cfg, o, detail);
            }
            break;
        default:
            break;
        }
        return;
    }
    switch (c->id) {
    case DEXT_PCI_CAP_ID_PM:
        if (cap_fits(in, c, 6)) {
            decode_pm(cfg, o, detail);
        }
        break;
    case DEXT_PCI_CAP_ID_MSI:
        if (cap_fits(in, c, 4)) {
            decode_msi(in, o, detail);
        }
        break;
    case DEXT_PCI_CAP_ID_MSIX:
        if (cap_fits(in, c, 12)) {
            decode_msix(cfg, o, detail);
        }
        break;
    case DEXT_PCI_CAP_ID_EXP:
        if (cap_fits(in, c, 0x14)) {
            decode_exp(cfg, o, detail);
        }
        break;
    default:
        break;
    }
}

static void cap_json(Ctl *ctl, const Info *in, const PciCap *c)
{
    JsonWriter *w = &ctl->jw;
    const uint8_t *cfg = in->cfg;
    uint32_t o = c->offset;

    json_begin_object(w);
    json_kv_uint(w, "offset", o);
    json_kv_uint(w, "id", c->id);
    if (c->extended) {
        json_kv_string(w, "name", pcicfg_ecap_name(c->id));
        json_kv_uint(w, "version", c->version);
        json_end_object(w);
        return;
    }
    json_kv_string(w, "name", pcicfg_cap_name(c->id));
    switch (c->id) {
    case DEXT_PCI_CAP_ID_PM:
        if (cap_fits(in, c, 6)) {
            uint32_t pmc = pcicfg_get(cfg, o + 2, 2);

            json_kv_uint(w, "version", pmc & 7);
            json_kv_bool(w, "d1", (pmc & 0x200) != 0);
            json_kv_bool(w, "d2", (pmc & 0x400) != 0);
            json_kv_uint(w, "power_state", pcicfg_get(cfg, o + 4, 2) & 3);
        }
        break;
    case DEXT_PCI_CAP_ID_MSI:
        if (cap_fits(in, c, 4)) {
            uint32_t ctl16 = pcicfg_get(cfg, o + 2, 2);

            json_kv_uint(w, "vectors", 1u << ((ctl16 >> 1) & 7));
            json_kv_bool(w, "64bit", (ctl16 & 0x80) != 0);
            json_kv_bool(w, "per_vector_masking", (ctl16 & 0x100) != 0);
            json_kv_bool(w, "enabled", (ctl16 & 1) != 0);
        }
        break;
    case DEXT_PCI_CAP_ID_MSIX:
        if (cap_fits(in, c, 12)) {
            uint32_t ctl16 = pcicfg_get(cfg, o + 2, 2);
            uint32_t tbl = pcicfg_get(cfg, o + 4, 4);
            uint32_t pba = pcicfg_get(cfg, o + 8, 4);

            json_kv_uint(w, "table_size", (ctl16 & 0x7ff) + 1);
            json_kv_uint(w, "table_bar", tbl & 7);
            json_kv_uint(w, "table_offset", tbl & ~7u);
            json_kv_uint(w, "pba_bar", pba & 7);
            json_kv_uint(w, "pba_offset", pba & ~7u);
            json_kv_bool(w, "enabled", (ctl16 & 0x8000) != 0);
        }
        break;
    case DEXT_PCI_CAP_ID_EXP:
        if (cap_fits(in, c, 0x14)) {
            uint32_t flags = pcicfg_get(cfg, o + 2, 2);
            uint32_t devcap = pcicfg_get(cfg, o + 4, 4);
            unsigned type = (flags >> 4) & 0xf;

            json_kv_uint(w, "version", flags & 0xf);
            json_kv_string(w, "port_type", pcie_type_name(type));
            json_kv_uint(w, "max_payload", 128u << (devcap & 7));
            json_kv_bool(w, "flr", (devcap & (1u << 28)) != 0);
            if (pcie_has_link(type)) {
                uint32_t lsta = pcicfg_get(cfg, o + 0x12, 2);

                json_kv_uint(w, "link_width", (lsta >> 4) & 0x3f);
                json_kv_string(w, "link_speed", link_speed(lsta & 0xf));
            }
        }
        break;
    case DEXT_PCI_CAP_ID_VNDR:
        if (cap_fits(in, c, 3)) {
            json_kv_uint(w, "length", cfg[o + 2]);
        }
        break;
    default:
        break;
    }
    json_end_object(w);
}

/* ------------------------------------------------------------------ */
/* Gathering                                                            */

static int info_gather(Ctl *ctl, io_connect_t c, bool raw, Info *in)
{
    int rc;

    rc = ctl_read_config(ctl, c, false, DEXT_PCI_CFG_SPACE_EXP_SIZE, in->cfg, &in->len);
    if (rc != CTL_CONTINUE) {
        return rc;
    }
    if (raw) {
        rc = ctl_read_config(ctl, c, true, in->len, in->raw, &in->raw_len);
        if (rc != CTL_CONTINUE) {
            return rc;
        }
        in->have_raw = true;
    }
    for (uint8_t i = 0; i < 6; i++) {
        InfoBar *b = &in->bars[i];
        kern_return_t kr = apple_dext_get_bar_info(c, i, &b->mem_idx,
                                                   &b->size, &b->type);

        if (kr == kIOReturnNotFound) {
            continue;
        }
        if (kr != kIOReturnSuccess) {
            return ctl_fail(ctl, kr, CTL_WHAT_READ, "reading BAR%u of %s", i,
                            ctl_bdf_str(&ctl->bdf));
        }
        b->used = true;
        if (in->have_raw) {
            uint32_t lo = pcicfg_get(in->raw, DEXT_PCI_BAR0 + 4 * i, 4);

            if (b->type & 0x01) {
                b->address = lo & ~0x3u;
            } else {
                b->address = lo & ~0xfu;
                if ((b->type & 0x04) && i < 5) {
                    b->address |= (uint64_t)pcicfg_get(in->raw,
                                                       DEXT_PCI_BAR0 + 4 * i + 4,
                                                       4) << 32;
                }
            }
        }
    }
    if (apple_dext_get_device_status(c, &in->st) == kIOReturnSuccess) {
        in->have_state = true;
        if (in->st.sessions > 0) {
            in->st.sessions--;          /* not counting ourselves */
        }
    }
    in->ncaps = pcicfg_caps(in->cfg, in->len, in->caps, INFO_MAX_CAPS);
    return CTL_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* Output                                                               */

static const char *header_kind(uint8_t hdr)
{
    switch (hdr & 0x7f) {
    case 0:
        return "endpoint";
    case 1:
        return "PCI-to-PCI bridge";
    case 2:
        return "CardBus bridge";
    default:
        return "unknown layout";
    }
}

static void info_text(Ctl *ctl, const Info *in, unsigned detail)
{
    const uint8_t *cfg = in->cfg;
    uint16_t vendor = (uint16_t)pcicfg_get(cfg, DEXT_PCI_VENDOR_ID, 2);
    uint16_t device = (uint16_t)pcicfg_get(cfg, DEXT_PCI_DEVICE_ID, 2);
    uint16_t svid = (uint16_t)pcicfg_get(cfg, DEXT_PCI_SUBSYSTEM_VENDOR_ID, 2);
    uint16_t sid = (uint16_t)pcicfg_get(cfg, DEXT_PCI_SUBSYSTEM_ID, 2);
    uint32_t cls = pcicfg_get(cfg, DEXT_PCI_CLASS_PROG, 3);
    uint8_t hdr = cfg[DEXT_PCI_HEADER_TYPE];
    char line[2 * PCIIDS_NAME_MAX + 64], name[PCIIDS_NAME_MAX];
    const char *kind;
    unsigned nvec;
    bool any = false;

    printf("%s\n", ctl_device_line(ctl, &ctl->bdf, false, cfg, line,
                                   sizeof(line)));
    printf("Identity:\n");
    printf("  vendor        %04x", vendor);
    if (pciids_lookup('v', vendor, 0, 0, 0, name, sizeof(name))) {
        printf("  %s", name);
    }
    printf("\n  device        %04x", device);
    if (pciids_lookup('d', vendor, device, 0, 0, name, sizeof(name))) {
        printf("  %s", name);
    }
    printf("\n  class         %06x", cls);
    if (!ctl->numeric) {
        printf("  %s", pciids_class(cls, name, sizeof(name)));
    }
    printf("\n  revision      %02x\n", cfg[DEXT_PCI_REVISION_ID]);
    if ((hdr & 0x7f) == 0) {
        printf("  subsystem     %04x:%04x", svid, sid);
        if (pciids_lookup('v', svid, 0, 0, 0, name, sizeof(name))) {
            printf("  %s", name);
            if (pciids_lookup('s', vendor, device, svid, sid, name,
                              sizeof(name))) {
                printf(" %s", name);
            }
        }
        putchar('\n');
    }
    printf("  header type   %02x  %s%s\n", hdr, header_kind(hdr),
           (hdr & 0x80) ? ", multi-function" : "");
    if (detail >= 2) {
        decode_header(cfg);
    }
    printf("  config space  %u bytes%s\n", in->len,
           in->len == DEXT_PCI_STD_HEADER_SIZEOF ? " readable" : "");
    if (in->have_state) {
        printf("  claimed       %s (%" PRIu32 " claim(s), %" PRIu32
               " other client(s))\n", in->st.claims ? "yes" : "no",
               in->st.claims, in->st.sessions);
    }

    printf("BARs (as GetBARInfo reports them%s):\n",
           in->have_raw ? "; ADDRESS from the raw registers" : "");
    for (int i = 0; i < 6; i++) {
        const InfoBar *b = &in->bars[i];

        if (!b->used) {
            continue;
        }
        if (!any) {
            printf("  BAR  MEMIDX  TYPE    SIZE                      "
                   "PREFETCH  64-BIT%s\n", in->have_raw ? "  ADDRESS" : "");
            any = true;
        }
        snprintf(name, sizeof(name), "0x%" PRIx64 " (%s)", b->size,
                 ctl_size_str(b->size));
        printf("  %-3d  %-6u  %-6s  %-24s  %-8s  ", i, b->mem_idx,
               bar_kind(b->type), name, (b->type & 0x08) ? "yes" : "no");
        if (in->have_raw) {
            printf("%-6s  0x%" PRIx64, (b->type & 0x04) ? "yes" : "no",
                   b->address);
        } else {
            fputs((b->type & 0x04) ? "yes" : "no", stdout);
        }
        putchar('\n');
    }
    if (!any) {
        printf("  none\n");
    }

    printf("Capabilities:\n");
    for (unsigned i = 0; i < in->ncaps; i++) {
        cap_text(in, &in->caps[i]);
        if (detail > 0) {
            cap_detail(in, &in->caps[i], detail);
        }
    }
    if (in->ncaps == 0) {
        printf("  none%s\n", in->len == DEXT_PCI_STD_HEADER_SIZEOF ?
               " found in the readable bytes" : "");
    }

    nvec = pcicfg_vectors(cfg, in->len, &kind);
    printf("Interrupts:\n");
    if (nvec == 0 && in->len <= DEXT_PCI_STD_HEADER_SIZEOF) {
        printf("  unknown (the capabilities lie past the readable bytes)\n");
    } else if (nvec == 0) {
        printf("  none (no MSI or MSI-X capability: SetupInterrupts would "
               "fail)\n");
    } else {
        printf("  %u vector(s) (%s)\n", nvec, kind);
    }
}

static void info_json(Ctl *ctl, const Info *in)
{
    JsonWriter *w = &ctl->jw;
    const uint8_t *cfg = in->cfg;
    uint16_t vendor = (uint16_t)pcicfg_get(cfg, DEXT_PCI_VENDOR_ID, 2);
    uint16_t device = (uint16_t)pcicfg_get(cfg, DEXT_PCI_DEVICE_ID, 2);
    uint32_t cls = pcicfg_get(cfg, DEXT_PCI_CLASS_PROG, 3);
    const char *kind;
    unsigned nvec;

    ctl_json_begin(ctl);
    json_kv_string(w, "bdf", ctl_bdf_str(&ctl->bdf));
    json_kv_hex(w, "vendor_id", vendor, 4);
    json_kv_hex(w, "device_id", device, 4);
    json_kv_hex(w, "class_code", cls, 6);
    json_kv_hex(w, "revision", cfg[DEXT_PCI_REVISION_ID], 2);
    json_kv_hex(w, "subsystem_vendor_id",
                pcicfg_get(cfg, DEXT_PCI_SUBSYSTEM_VENDOR_ID, 2), 4);
    json_kv_hex(w, "subsystem_id", pcicfg_get(cfg, DEXT_PCI_SUBSYSTEM_ID, 2), 4);
    ctl_json_names(ctl, vendor, device, cls);
    json_kv_uint(w, "header_type", cfg[DEXT_PCI_HEADER_TYPE]);
    json_kv_uint(w, "config_size", in->len);
    if (in->have_state) {
        json_kv_bool(w, "claimed", in->st.claims > 0);
        json_kv_uint(w, "claims", in->st.claims);
        json_kv_uint(w, "other_clients", in->st.sessions);
    }
    json_key(w, "bars");
    json_begin_array(w);
    for (int i = 0; i < 6; i++) {
        const InfoBar *b = &in->bars[i];

        if (!b->used) {
            continue;
        }
        json_begin_object(w);
        json_kv_uint(w, "index", (uint64_t)i);
        json_kv_uint(w, "memory_index", b->mem_idx);
        json_kv_string(w, "type", bar_kind(b->type));
        json_kv_uint(w, "size", b->size);
        json_kv_bool(w, "prefetchable", (b->type & 0x08) != 0);
        json_kv_bool(w, "64bit", (b->type & 0x04) != 0);
        if (in->have_raw) {
            json_kv_uint(w, "address", b->address);
        }
        json_end_object(w);
    }
    json_end_array(w);
    json_key(w, "capabilities");
    json_begin_array(w);
    for (unsigned i = 0; i < in->ncaps; i++) {
        cap_json(ctl, in, &in->caps[i]);
    }
    json_end_array(w);
    nvec = pcicfg_vectors(cfg, in->len, &kind);
    json_key(w, "interrupt_vectors");
    if (nvec == 0 && in->len <= DEXT_PCI_STD_HEADER_SIZEOF) {
        json_null(w);               /* not knowable from the header alone */
    } else {
        json_uint(w, nvec);
    }
    json_kv_string(w, "interrupt_type", kind);
    ctl_json_end(ctl);
}

int cmd_info(Ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        { "raw", no_argument, NULL, 'r' },
        CTL_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    bool raw = false;
    io_connect_t c;
    Info *in;
    int opt, rc;

    /* -v and -vv are lspci's: how deep config space is decoded. */
    ctl->detail_wanted = true;
    ctl_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":r" CTL_COMMON_SHORTOPTS, opts,
                              NULL)) != -1) {
        if (opt == 'r') {
            raw = true;
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

    rc = ctl_connect(ctl, false, &c);
    if (rc != CTL_CONTINUE) {
        return rc;
    }
    in = calloc(1, sizeof(*in));
    if (in == NULL) {
        apple_dext_disconnect(c);
        return ctl_fail(ctl, kIOReturnNoMemory, CTL_WHAT_READ, "info");
    }
    rc = info_gather(ctl, c, raw, in);
    apple_dext_disconnect(c);
    if (rc == CTL_CONTINUE) {
        if (ctl->json) {
            info_json(ctl, in);
        } else {
            info_text(ctl, in, ctl->detail);
        }
        rc = CTL_EXIT_OK;
    }
    free(in);
    return rc;
}
