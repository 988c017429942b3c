/*
 * SPDX-License-Identifier: MIT
 *
 * PCI bus/device/function addresses as people type them: shared by the
 * device backends' "bdf=" options and dextd's --host/--allow-writes.
 */

#ifndef LIBDEXT_SUPPORT_BDF_H
#define LIBDEXT_SUPPORT_BDF_H

#include <stdbool.h>
#include <stdint.h>

/**
 * dext_parse_bdf() - parse a bus/device/function address
 * @s: "BB:DD.F" in hex, optionally preceded by the domain "0000:"
 * @bus: receives the bus
 * @dev: receives the device (0..0x1f)
 * @fn: receives the function (0..7)
 *
 * Only domain 0 exists for the dext, so another domain is refused.
 *
 * Return: true if @s is exactly one well-formed address.
 */
bool dext_parse_bdf(const char *s, uint8_t *bus, uint8_t *dev, uint8_t *fn);

#endif /* LIBDEXT_SUPPORT_BDF_H */
