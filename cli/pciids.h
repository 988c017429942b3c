/*
 * SPDX-License-Identifier: MIT
 *
 * Names from the system's PCI ID database (pci.ids, udev's hwdb) through
 * libpci's pci_lookup_name(), formatted exactly as lspci formats them so
 * that dextctl's device lines can be diffed against lspci's.  Without
 * libpci at build time, or with --numeric, IDs are shown as numbers.
 */

#ifndef DEXTCTL_PCIIDS_H
#define DEXTCTL_PCIIDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCIIDS_NAME_MAX 256

/**
 * pciids_init() - prepare name lookups
 * @numeric: true to show numbers only (as lspci -n)
 *
 * $DEXTCTL_PCI_IDS names another ID file and turns the hwdb off, so
 * tests get the same names on every machine.
 */
void pciids_init(bool numeric);

/** pciids_fini() - release the database. */
void pciids_fini(void);

/**
 * pciids_source() - where names come from, for --version
 *
 * Return: e.g. "libpci 3.9.0", or a note that names are not available.
 */
const char *pciids_source(void);

/**
 * pciids_class() - a class as lspci's device line shows it
 * @class_code: 24-bit class code (base, subclass, programming interface)
 * @buf: receives the text, @len bytes
 * @len: size of @buf
 *
 * Return: @buf: the subclass name ("Host bridge"), a base class name with
 * the number ("Unassigned class [ffff]"), "Class 0600" when unknown, or
 * "0600" in numeric mode.
 */
const char *pciids_class(uint32_t class_code, char *buf, size_t len);

/**
 * pciids_device() - vendor and device as lspci's device line shows them
 * @vendor: vendor ID
 * @device: device ID
 * @buf: receives the text, @len bytes
 * @len: size of @buf
 *
 * Return: @buf: "Red Hat, Inc. Virtio 1.0 block device", "Intel
 * Corporation Device 0d57", "Device 1234:11e8", or "1af4:1042" in
 * numeric mode.
 */
const char *pciids_device(uint16_t vendor, uint16_t device, char *buf,
                          size_t len);

/**
 * pciids_lookup() - one name, or NULL if the database lacks it
 * @what: 'v' vendor (@a), 'd' device (@a, @b), 's' subsystem (@a, @b
 *        vendor/device of the function, @c, @d the subsystem IDs),
 *        'c' class (@a: base class << 8 | subclass)
 * @a: first ID
 * @b: second ID
 * @c: third ID
 * @d: fourth ID
 * @buf: receives the name, @len bytes
 * @len: size of @buf
 *
 * For JSON, which carries numbers separately: never a formatted number.
 *
 * Return: @buf, or NULL (also in numeric mode and without libpci).
 */
const char *pciids_lookup(char what, unsigned a, unsigned b, unsigned c,
                          unsigned d, char *buf, size_t len);

#endif /* DEXTCTL_PCIIDS_H */
