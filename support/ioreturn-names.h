/*
 * SPDX-License-Identifier: MIT
 *
 * IOReturn codes as text, for whoever shows one to a person.
 */

#ifndef SUPPORT_IORETURN_NAMES_H
#define SUPPORT_IORETURN_NAMES_H

#include "libdext/ioreturn.h"

/**
 * dext_ioreturn_text() - an IOReturn code's name and Apple's description
 * @kr: the code
 *
 * Return: e.g. "kIOReturnBusy (device busy)", a static string; NULL for a
 * code not in the table.
 */
const char *dext_ioreturn_text(IOReturn kr);

#endif /* SUPPORT_IORETURN_NAMES_H */
