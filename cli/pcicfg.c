/*
 * SPDX-License-Identifier: MIT
 *
 * PCI configuration space knowledge for dextctl (see pcicfg.h).  Names
 * are those of the PCI and PCI Express specifications.
 */

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "pcicfg.h"

/* A standard capability list cannot hold more; more means a loop. */
#define STD_CAP_GUARD  48
#define EXT_CAP_GUARD  ((DEXT_PCI_CFG_SPACE_EXP_SIZE - DEXT_PCI_CFG_SPACE_SIZE) / 4)
#define MAX_VECTORS    256

typedef struct IdName {
    uint16_t id;
    const char *name;
} IdName;

static const IdName cap_names[] = {
    { 0x01, "Power Management" },
    { 0x02, "AGP" },
    { 0x03, "Vital Product Data" },
    { 0x04, "Slot Identification" },
    { 0x05, "MSI" },
    { 0x06, "CompactPCI Hot Swap" },
    { 0x07, "PCI-X" },
    { 0x08, "HyperTransport" },
    { 0x09, "Vendor Specific" },
    { 0x0a, "Debug Port" },
    { 0x0b, "CompactPCI Central Resource Control" },
    { 0x0c, "PCI Hot-Plug" },
    { 0x0d, "Bridge Subsystem Vendor ID" },
    { 0x0e, "AGP 8x" },
    { 0x0f, "Secure Device" },
    { 0x10, "PCI Express" },
    { 0x11, "MSI-X" },
    { 0x12, "SATA Data/Index Configuration" },
    { 0x13, "Advanced Features" },
    { 0x14, "Enhanced Allocation" },
    { 0x15, "Flattening Portal Bridge" },
};

static const IdName ecap_names[] = {
    { 0x0001, "Advanced Error Reporting" },
    { 0x0002, "Virtual Channel" },
    { 0x0003, "Device Serial Number" },
    { 0x0004, "Power Budgeting" },
    { 0x0005, "Root Complex Link Declaration" },
    { 0x0006, "Root Complex Internal Link Control" },
    { 0x0007, "Root Complex Event Collector Endpoint Association" },
    { 0x0008, "Multi-Function Virtual Channel" },
    { 0x0009, "Virtual Channel (with MFVC)" },
    { 0x000a, "Root Complex Register Block Header" },
    { 0x000b, "Vendor-Specific Extended" },
    { 0x000c, "Configuration Access Correlation" },
    { 0x000d, "Access Control Services" },
    { 0x000e, "Alternative Routing-ID Interpretation" },
    { 0x000f, "Address Translation Services" },
    { 0x0010, "Single Root I/O Virtualization" },
    { 0x0011, "Multi-Root I/O Virtualization" },
    { 0x0012, "Multicast" },
    { 0x0013, "Page Request Interface" },
    { 0x0015, "Resizable BAR" },
    { 0x0016, "Dynamic Power Allocation" },
    { 0x0017, "TPH Requester" },
    { 0x0018, "Latency Tolerance Reporting" },
    { 0x0019, "Secondary PCI Express" },
    { 0x001a, "Protocol Multiplexing" },
    { 0x001b, "Process Address Space ID" },
    { 0x001d, "Downstream Port Containment" },
    { 0x001e, "L1 PM Substates" },
    { 0x001f, "Precision Time Measurement" },
    { 0x0023, "Designated Vendor-Specific" },
    { 0x0024, "VF Resizable BAR" },
    { 0x0025, "Data Link Feature" },
    { 0x0026, "Physical Layer 16.0 GT/s" },
    { 0x0027, "Lane Margining at the Receiver" },
    { 0x002a, "Physical Layer 32.0 GT/s" },
};

typedef struct RegName {
    const char *name;
    uint8_t off;
    uint8_t width;
} RegName;

static const RegName reg_names[] = {
    { "VENDOR_ID", 0x00, 2 },
    { "DEVICE_ID", 0x02, 2 },
    { "COMMAND", 0x04, 2 },
    { "STATUS", 0x06, 2 },
    { "REVISION", 0x08, 1 },
    { "CLASS_PROG", 0x09, 1 },
    { "CLASS_DEVICE", 0x0a, 2 },
    { "CACHE_LINE_SIZE", 0x0c, 1 },
    { "LATENCY_TIMER", 0x0d, 1 },
    { "HEADER_TYPE", 0x0e, 1 },
    { "BIST", 0x0f, 1 },
    { "BASE_ADDRESS_0", 0x10, 4 },
    { "BASE_ADDRESS_1", 0x14, 4 },
    { "BASE_ADDRESS_2", 0x18, 4 },
    { "BASE_ADDRESS_3", 0x1c, 4 },
    { "BASE_ADDRESS_4", 0x20, 4 },
    { "BASE_ADDRESS_5", 0x24, 4 },
    { "CARDBUS_CIS", 0x28, 4 },
    { "SUBSYSTEM_VENDOR_ID", 0x2c, 2 },
    { "SUBSYSTEM_ID", 0x2e, 2 },
    { "ROM_ADDRESS", 0x30, 4 },
    { "CAPABILITY_LIST", 0x34, 1 },
    { "INTERRUPT_LINE", 0x3c, 1 },
    { "INTERRUPT_PIN", 0x3d, 1 },
    { "MIN_GNT", 0x3e, 1 },
    { "MAX_LAT", 0x3f, 1 },
};

typedef struct CapAlias {
    const char *name;
    uint8_t id;
} CapAlias;

static const CapAlias cap_aliases[] = {
    { "CAP_PM", DEXT_PCI_CAP_ID_PM },
    { "CAP_MSI", DEXT_PCI_CAP_ID_MSI },
    { "CAP_VNDR", DEXT_PCI_CAP_ID_VNDR },
    { "CAP_EXP", DEXT_PCI_CAP_ID_EXP },
    { "CAP_MSIX", DEXT_PCI_CAP_ID_MSIX },
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

uint32_t pcicfg_get(const uint8_t *cfg, uint32_t off, uint32_t width)
{
    uint32_t v = 0;

    for (uint32_t i = 0; i < width; i++) {
        v |= (uint32_t)cfg[off + i] << (8 * i);
    }
    return v;
}

static const char *id_name(const IdName *t, size_t n, uint16_t id)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].id == id) {
            return t[i].name;
        }
    }
    return "Unknown";
}

const char *pcicfg_cap_name(uint16_t id)
{
    return id_name(cap_names, ARRAY_SIZE(cap_names), id);
}

const char *pcicfg_ecap_name(uint16_t id)
{
    return id_name(ecap_names, ARRAY_SIZE(ecap_names), id);
}

unsigned pcicfg_caps(const uint8_t *cfg, uint32_t len, PciCap *out,
                     unsigned max)
{
    unsigned n = 0;
    uint32_t ptr;
    int guard;

    if (len < DEXT_PCI_STD_HEADER_SIZEOF) {
        return 0;
    }
    if (pcicfg_get(cfg, DEXT_PCI_STATUS, 2) & DEXT_PCI_STATUS_CAP_LIST) {
        /* CardBus bridges keep the list head elsewhere. */
        uint32_t head = (cfg[DEXT_PCI_HEADER_TYPE] & 0x7f) == 2 ?
                        DEXT_PCI_CB_CAPABILITY_LIST : DEXT_PCI_CAPABILITY_LIST;

        ptr = cfg[head] & 0xfc;
        for (guard = 0; guard < STD_CAP_GUARD && ptr >= DEXT_PCI_STD_HEADER_SIZEOF &&
             ptr + 2 <= len && ptr < DEXT_PCI_CFG_SPACE_SIZE; guard++) {
            if (n < max) {
                out[n++] = (PciCap){ .offset = (uint16_t)ptr,
                                     .id = cfg[ptr] };
            }
            ptr = cfg[ptr + 1] & 0xfc;
        }
    }
    if (len < DEXT_PCI_CFG_SPACE_EXP_SIZE) {
        return n;
    }
    ptr = DEXT_PCI_CFG_SPACE_SIZE;
    for (guard = 0; guard < EXT_CAP_GUARD; guard++) {
        uint32_t hdr = pcicfg_get(cfg, ptr, 4);

        /* No extended capabilities, or a function that is not there. */
        if (hdr == 0 || hdr == 0xffffffffu) {
            break;
        }
        if (n < max) {
            out[n++] = (PciCap){ .offset = (uint16_t)ptr,
                                 .id = (uint16_t)(hdr & 0xffff),
                                 .extended = true,
                                 .version = (uint8_t)((hdr >> 16) & 0xf) };
        }
        ptr = (hdr >> 20) & 0xffc;
        if (ptr < DEXT_PCI_CFG_SPACE_SIZE) {
            break;
        }
    }
    return n;
}

uint16_t pcicfg_find_cap(const uint8_t *cfg, uint32_t len, uint16_t id)
{
    PciCap caps[STD_CAP_GUARD];
    unsigned n = pcicfg_caps(cfg, len < DEXT_PCI_CFG_SPACE_SIZE ? len
                                                        : DEXT_PCI_CFG_SPACE_SIZE,
                             caps, STD_CAP_GUARD);

    for (unsigned i = 0; i < n; i++) {
        if (!caps[i].extended && caps[i].id == id) {
            return caps[i].offset;
        }
    }
    return 0;
}

unsigned pcicfg_vectors(const uint8_t *cfg, uint32_t len, const char **kind)
{
    uint16_t msix = pcicfg_find_cap(cfg, len, DEXT_PCI_CAP_ID_MSIX);
    uint16_t msi = pcicfg_find_cap(cfg, len, DEXT_PCI_CAP_ID_MSI);
    unsigned n = 0;

    *kind = NULL;
    if (msix != 0 && msix + 4u <= len) {
        n = (pcicfg_get(cfg, msix + 2, 2) & 0x7ff) + 1;
        *kind = "MSI-X";
    } else if (msi != 0 && msi + 4u <= len) {
        unsigned mmc = (pcicfg_get(cfg, msi + 2, 2) >> 1) & 0x7;

        /* Encodings past 32 vectors are reserved. */
        n = 1u << (mmc > 5 ? 5 : mmc);
        *kind = "MSI";
    }
    return n > MAX_VECTORS ? MAX_VECTORS : n;
}

bool pcicfg_register(const char *name, uint32_t *off, unsigned *width)
{
    for (size_t i = 0; i < ARRAY_SIZE(reg_names); i++) {
        if (strcasecmp(reg_names[i].name, name) == 0) {
            *off = reg_names[i].off;
            *width = reg_names[i].width;
            return true;
        }
    }
    return false;
}

int pcicfg_cap_by_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(cap_aliases); i++) {
        if (strcasecmp(cap_aliases[i].name, name) == 0) {
            return cap_aliases[i].id;
        }
    }
    return -1;
}

/* setpci's names of extended capabilities. */
static const IdName ecap_aliases[] = {
    { 0x0001, "ECAP_AER" },
    { 0x0002, "ECAP_VC" },
    { 0x0003, "ECAP_DSN" },
    { 0x0004, "ECAP_PB" },
    { 0x0005, "ECAP_RCLINK" },
    { 0x0006, "ECAP_RCILINK" },
    { 0x0007, "ECAP_RCEC" },
    { 0x0008, "ECAP_MFVC" },
    { 0x0009, "ECAP_VC2" },
    { 0x000a, "ECAP_RBCB" },
    { 0x000b, "ECAP_VNDR" },
    { 0x000d, "ECAP_ACS" },
    { 0x000e, "ECAP_ARI" },
    { 0x000f, "ECAP_ATS" },
    { 0x0010, "ECAP_SRIOV" },
    { 0x0011, "ECAP_MRIOV" },
    { 0x0012, "ECAP_MCAST" },
    { 0x0013, "ECAP_PRI" },
    { 0x0015, "ECAP_REBAR" },
    { 0x0016, "ECAP_DPA" },
    { 0x0017, "ECAP_TPH" },
    { 0x0018, "ECAP_LTR" },
    { 0x0019, "ECAP_SECPCI" },
    { 0x001a, "ECAP_PMUX" },
    { 0x001b, "ECAP_PASID" },
    { 0x001c, "ECAP_LNR" },
    { 0x001d, "ECAP_DPC" },
    { 0x001e, "ECAP_L1PM" },
    { 0x001f, "ECAP_PTM" },
};

int pcicfg_ecap_by_name(const char *name)
{
    uint64_t v = 0;
    const char *p;

    for (size_t i = 0; i < ARRAY_SIZE(ecap_aliases); i++) {
        if (strcasecmp(ecap_aliases[i].name, name) == 0) {
            return ecap_aliases[i].id;
        }
    }
    /* setpci's ECAPxxxx: an ID in hex. */
    if (strncasecmp(name, "ECAP", 4) != 0 || name[4] == '\0' ||
        strlen(name + 4) > 4) {
        return -1;
    }
    for (p = name + 4; *p != '\0'; p++) {
        int d = *p >= '0' && *p <= '9' ? *p - '0'
              : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
              : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;

        if (d < 0) {
            return -1;
        }
        v = v * 16 + (uint64_t)d;
    }
    return (int)v;
}

uint16_t pcicfg_find_ecap(const uint8_t *cfg, uint32_t len, uint16_t id)
{
    PciCap caps[STD_CAP_GUARD + EXT_CAP_GUARD];
    unsigned n = pcicfg_caps(cfg, len, caps, ARRAY_SIZE(caps));

    for (unsigned i = 0; i < n; i++) {
        if (caps[i].extended && caps[i].id == id) {
            return caps[i].offset;
        }
    }
    return 0;
}

void pcicfg_registers_help(FILE *f)
{
    size_t col = 0;

    for (size_t i = 0; i < ARRAY_SIZE(reg_names); i++) {
        size_t w = strlen(reg_names[i].name) + 1;

        if (col == 0) {
            fputs("   ", f);
            col = 3;
        }
        fprintf(f, " %s", reg_names[i].name);
        col += w;
        if (col > 60 || i + 1 == ARRAY_SIZE(reg_names)) {
            fputc('\n', f);
            col = 0;
        }
    }
}

void pcicfg_dump(FILE *f, const uint8_t *cfg, uint32_t len)
{
    for (uint32_t row = 0; row < len; row += 16) {
        fprintf(f, "%02x:", row);
        for (uint32_t i = 0; i < 16 && row + i < len; i++) {
            fprintf(f, " %02x", cfg[row + i]);
        }
        fputc('\n', f);
    }
}
