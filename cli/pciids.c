/*
 * SPDX-License-Identifier: MIT
 *
 * PCI names through libpci (see pciids.h).  libpci is used for its name
 * database only: no pci_init(), so no access method is probed and
 * nothing touches the hardware or needs privileges.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pciids.h"

#ifdef HAVE_LIBPCI
#include <pci/pci.h>
#endif

static bool numeric_only;

#ifdef HAVE_LIBPCI

static struct pci_access *pacc;

/*
 * libpci reports trouble through these.  Name lookups only warn (a
 * missing or damaged pci.ids gives numbers instead of names); the error
 * hook must not return and is reached only when libpci runs out of
 * memory.  Both say where the message comes from.
 */
static void pciids_error(char *msg, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
static void pciids_warning(char *msg, ...)
    __attribute__((format(printf, 1, 2)));

static void pciids_error(char *msg, ...)
{
    va_list ap;

    va_start(ap, msg);
    fputs("dextctl: libpci: ", stderr);
    vfprintf(stderr, msg, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void pciids_warning(char *msg, ...)
{
    va_list ap;

    va_start(ap, msg);
    fputs("dextctl: libpci: ", stderr);
    vfprintf(stderr, msg, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void pciids_debug(char *msg, ...)
{
    (void)msg;
}

/*
 * Whether udev's hardware database exists where libudev looks for it.
 * Without one, libpci 3.9 creates (and loses) a udev context for every
 * name its pci.ids lacks; asking it not to try changes no name.
 */
static bool hwdb_present(void)
{
    static const char *const paths[] = {
        "/etc/systemd/hwdb/hwdb.bin",
        "/etc/udev/hwdb.bin",
        "/usr/lib/systemd/hwdb/hwdb.bin",
        "/lib/systemd/hwdb/hwdb.bin",
        "/usr/lib/udev/hwdb.bin",
        "/lib/udev/hwdb.bin",
    };

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (access(paths[i], R_OK) == 0) {
            return true;
        }
    }
    return false;
}

void pciids_init(bool numeric)
{
    const char *ids = getenv("DEXTCTL_PCI_IDS");

    numeric_only = numeric;
    if (numeric || pacc != NULL) {
        return;
    }
    pacc = pci_alloc();
    if (pacc == NULL) {
        return;
    }
    pacc->error = pciids_error;
    pacc->warning = pciids_warning;
    pacc->debug = pciids_debug;
    if (ids != NULL && ids[0] != '\0') {
        /* libpci keeps the pointer; the environment outlives it. */
        pci_set_name_list_path(pacc, (char *)ids, 0);
        pacc->id_lookup_mode |= PCI_LOOKUP_NO_HWDB;
    } else if (!hwdb_present()) {
        pacc->id_lookup_mode |= PCI_LOOKUP_NO_HWDB;
    }
}

void pciids_fini(void)
{
    if (pacc != NULL) {
        pci_cleanup(pacc);
        pacc = NULL;
    }
}

const char *pciids_source(void)
{
    static char buf[64];

    snprintf(buf, sizeof(buf), "libpci %d.%d.%d",
             (PCI_LIB_VERSION >> 16) & 0xff, (PCI_LIB_VERSION >> 8) & 0xff,
             PCI_LIB_VERSION & 0xff);
    return buf;
}

const char *pciids_class(uint32_t class_code, char *buf, size_t len)
{
    unsigned cls = (class_code >> 8) & 0xffff;

    if (numeric_only || pacc == NULL) {
        snprintf(buf, len, numeric_only ? "%04x" : "Class %04x", cls);
        return buf;
    }
    /* The very call lspci makes for its device line, hence its text. */
    return pci_lookup_name(pacc, buf, (int)len, PCI_LOOKUP_CLASS, cls);
}

const char *pciids_device(uint16_t vendor, uint16_t device, char *buf,
                          size_t len)
{
    if (numeric_only || pacc == NULL) {
        snprintf(buf, len, numeric_only ? "%04x:%04x" : "Device %04x:%04x",
                 vendor, device);
        return buf;
    }
    return pci_lookup_name(pacc, buf, (int)len,
                           PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE,
                           (int)vendor, (int)device);
}

const char *pciids_lookup(char what, unsigned a, unsigned b, unsigned c,
                          unsigned d, char *buf, size_t len)
{
    int flags = PCI_LOOKUP_NO_NUMBERS;

    if (numeric_only || pacc == NULL) {
        return NULL;
    }
    switch (what) {
    case 'v':
        return pci_lookup_name(pacc, buf, (int)len, flags | PCI_LOOKUP_VENDOR,
                               (int)a);
    case 'd':
        return pci_lookup_name(pacc, buf, (int)len, flags | PCI_LOOKUP_DEVICE,
                               (int)a, (int)b);
    case 's':
        return pci_lookup_name(pacc, buf, (int)len,
                               flags | PCI_LOOKUP_SUBSYSTEM |
                               PCI_LOOKUP_DEVICE, (int)a, (int)b, (int)c,
                               (int)d);
    case 'c':
        return pci_lookup_name(pacc, buf, (int)len, flags | PCI_LOOKUP_CLASS,
                               (int)a);
    default:
        return NULL;
    }
}

#else /* !HAVE_LIBPCI */

void pciids_init(bool numeric)
{
    numeric_only = numeric;
}

void pciids_fini(void)
{
}

const char *pciids_source(void)
{
    return "none (built without libpci: IDs are shown as numbers)";
}

const char *pciids_class(uint32_t class_code, char *buf, size_t len)
{
    snprintf(buf, len, numeric_only ? "%04x" : "Class %04x",
             (class_code >> 8) & 0xffff);
    return buf;
}

const char *pciids_device(uint16_t vendor, uint16_t device, char *buf,
                          size_t len)
{
    snprintf(buf, len, numeric_only ? "%04x:%04x" : "Device %04x:%04x",
             vendor, device);
    return buf;
}

const char *pciids_lookup(char what, unsigned a, unsigned b, unsigned c,
                          unsigned d, char *buf, size_t len)
{
    return NULL;
}

#endif /* HAVE_LIBPCI */
