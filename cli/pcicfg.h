/*
 * SPDX-License-Identifier: MIT
 *
 * What dextctl knows about PCI configuration space: register names,
 * capability lists, the interrupt vector count the dext would register,
 * and lspci's hex dump format.  Everything works on a byte copy of
 * config space that the caller read through libdext.
 */

#ifndef DEXTCTL_PCICFG_H
#define DEXTCTL_PCICFG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "libdext/pci-regs.h"

/* What lspci -x shows of a CardBus bridge (registers: libdext/pci-regs.h). */
#define PCICFG_CARDBUS_SIZE   128

/** One capability found in config space. */
typedef struct PciCap {
    uint16_t offset;
    uint16_t id;
    bool extended;          /* in extended config space (offset >= 0x100) */
    uint8_t version;        /* extended capabilities only */
} PciCap;

/** pcicfg_get() - the little-endian value of @width bytes at @off. */
uint32_t pcicfg_get(const uint8_t *cfg, uint32_t off, uint32_t width);

/**
 * pcicfg_caps() - walk the capability lists
 * @cfg: config space bytes
 * @len: how many are valid (64, 128, 256 or 4096)
 * @out: receives up to @max capabilities, standard ones first
 * @max: capacity of @out
 *
 * Loops and pointers out of range end a list rather than hang it.
 *
 * Return: the number stored.
 */
unsigned pcicfg_caps(const uint8_t *cfg, uint32_t len, PciCap *out,
                     unsigned max);

/**
 * pcicfg_find_cap() - offset of the first standard capability @id
 * Return: the offset, or 0 if there is none.
 */
uint16_t pcicfg_find_cap(const uint8_t *cfg, uint32_t len, uint16_t id);

/** pcicfg_cap_name() - e.g. "MSI-X"; "Unknown" for IDs it does not know. */
const char *pcicfg_cap_name(uint16_t id);

/** pcicfg_ecap_name() - e.g. "Advanced Error Reporting", or "Unknown". */
const char *pcicfg_ecap_name(uint16_t id);

/**
 * pcicfg_vectors() - vectors SetupInterrupts would register
 * @cfg: config space bytes
 * @len: how many are valid
 * @kind: receives "MSI-X", "MSI" or NULL
 *
 * The dext's rule: the MSI-X table size, else MSI's multiple message
 * capable count, capped at 256.
 *
 * Return: the count; 0 without MSI and MSI-X.
 */
unsigned pcicfg_vectors(const uint8_t *cfg, uint32_t len, const char **kind);

/**
 * pcicfg_register() - look a register name up
 * @name: e.g. "COMMAND" (case does not matter)
 * @off: receives its offset
 * @width: receives its width in bytes
 *
 * Return: true if @name is a type-0 header register name.
 */
bool pcicfg_register(const char *name, uint32_t *off, unsigned *width);

/**
 * pcicfg_cap_by_name() - a capability ID from a setpci-style name
 * @name: "CAP_PM", "CAP_MSI", "CAP_MSIX", "CAP_EXP" or "CAP_VNDR"
 *
 * Return: the ID, or -1.
 */
int pcicfg_cap_by_name(const char *name);

/**
 * pcicfg_ecap_by_name() - an extended capability ID from a setpci name
 * @name: "ECAP_AER", "ECAP_DSN", "ECAP_SRIOV", ... or "ECAPxxxx" (the ID
 *        in hex), case ignored
 *
 * Return: the ID, or -1.
 */
int pcicfg_ecap_by_name(const char *name);

/**
 * pcicfg_find_ecap() - offset of an extended capability
 * @cfg: config space bytes
 * @len: how many are valid (4096 to find any)
 * @id: the extended capability ID
 *
 * Return: its offset (0x100 or above), or 0 if absent.
 */
uint16_t pcicfg_find_ecap(const uint8_t *cfg, uint32_t len, uint16_t id);

/** pcicfg_registers_help() - print the register names, for --help. */
void pcicfg_registers_help(FILE *f);

/**
 * pcicfg_dump() - config space in lspci's hex dump format
 * @f: the stream
 * @cfg: bytes
 * @len: how many, a multiple of 16
 *
 * Lines of 16 bytes: the offset in at least two lowercase hex digits
 * and a colon, then each byte as a space and two hex digits.
 */
void pcicfg_dump(FILE *f, const uint8_t *cfg, uint32_t len);

#endif /* DEXTCTL_PCICFG_H */
