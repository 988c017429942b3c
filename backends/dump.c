/*
 * SPDX-License-Identifier: MIT
 *
 * The dump backend: a PCI function's config space replayed from lspci's
 * hex dump format, as "lspci -xxxx" and "dextctl config BDF -xxxx" print
 * it and "lspci -F" reads it.  Record a device on one machine, serve its
 * config space anywhere.
 *
 * A dump is a device line ("[DDDD:]BB:DD.F text"), hex lines
 * ("OFF: xx xx ...", OFF a multiple of 16 below 4096, at most 16 bytes)
 * and, from "lspci -v", indented lines of which only "Region N: ...
 * [size=S]" is used (the BAR sizes).  A blank line ends a device.  The
 * file is never trusted: it is read up to DUMP_FILE_MAX bytes, lines are
 * bounded, hex lines take hex digits only and offsets in range, and any
 * line that is none of the above fails the parse.
 *
 * Options: "file=PATH" (required); "pick=BB:DD.F" chooses a device of a
 * dump holding several (needed then); "bdf=BB:DD.F" is the address served
 * (default: the dump's device line, else 00:00.0); "barN=SIZE" (N 0..5,
 * SIZE in bytes, K/M/G suffixes) overrides a BAR's size.
 *
 * The config space is read-only (a "hardware" device without the
 * operator's consent to writes: the core refuses every write), bytes the
 * dump lacks read as zero, and there is no DMA, no interrupt, no MMIO.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "libdext/pci-regs.h"
#include "support/bdf.h"

/* Longest dump file read: a 4K dump with -v text is well below this. */
#define DUMP_FILE_MAX (1u << 20)
/* Longest line accepted, terminator excluded. */
#define DUMP_LINE_MAX 512

typedef struct DumpState {
    uint8_t cfg[DEXT_CONFIG_SIZE_EXT];
} DumpState;

typedef struct DumpOptions {
    char file[4096];
    char pick[32];
    char bdf[32];
    uint64_t bar_size[DEXT_NUM_BARS];
    bool bar_given[DEXT_NUM_BARS];
} DumpOptions;

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/*
 * Parse up to @max hex digits at *@p (at least one) into *@val; *@p is
 * moved past them.  Returns false if there is no digit or more than @max.
 */
static bool take_hex(const char **p, int max, uint32_t *val)
{
    const char *s = *p;
    uint32_t v = 0;
    int n = 0;

    while (hex_digit(*s) >= 0) {
        if (++n > max) {
            return false;
        }
        v = v * 16 + (uint32_t)hex_digit(*s++);
    }
    if (n == 0) {
        return false;
    }
    *p = s;
    *val = v;
    return true;
}

/*
 * A device line's address, "[DDDD:]BB:DD.F" then white space or the end
 * (the domain, if any, is dropped: the dext knows domain 0 only).
 * Returns false if @line does not start with one.
 */
static bool parse_device_line(const char *line, uint8_t *bus, uint8_t *dev,
                              uint8_t *fn)
{
    const char *p = line;
    uint32_t b, d, f;

    if (!take_hex(&p, 8, &b) || *p++ != ':' || !take_hex(&p, 2, &d)) {
        return false;
    }
    if (*p == ':') {
        /* That was the domain and the bus: the device follows. */
        p++;
        b = d;
        if (!take_hex(&p, 2, &d)) {
            return false;
        }
    }
    if (b > 0xff || d > 0x1f || *p++ != '.' || !take_hex(&p, 1, &f) ||
        f > 7 || (*p != '\0' && *p != ' ' && *p != '\t')) {
        return false;
    }
    *bus = (uint8_t)b;
    *dev = (uint8_t)d;
    *fn = (uint8_t)f;
    return true;
}

/* "OFF: xx xx ...": up to 16 bytes at OFF into @cfg.  False if malformed. */
static bool parse_hex_line(const char *line, uint8_t *cfg, uint32_t *end)
{
    const char *p = line;
    uint32_t off, n = 0;

    if (!take_hex(&p, 3, &off) || *p++ != ':' || off % 16 != 0 ||
        off >= DEXT_CONFIG_SIZE_EXT) {
        return false;
    }
    while (*p != '\0') {
        int hi, lo;

        if (*p != ' ') {
            return false;
        }
        while (*p == ' ') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        hi = hex_digit(p[0]);
        lo = hi < 0 ? -1 : hex_digit(p[1]);
        if (lo < 0 || (p[2] != ' ' && p[2] != '\0') || n >= 16) {
            return false;
        }
        cfg[off + n++] = (uint8_t)(hi * 16 + lo);
        p += 2;
    }
    if (n == 0) {
        return false;
    }
    if (off + n > *end) {
        *end = off + n;
    }
    return true;
}

/* A size as lspci prints it or a user types it: N[K|M|G]. */
static bool parse_size(const char *s, const char *stop, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;

    while (p < stop && *p >= '0' && *p <= '9') {
        if (v > UINT64_MAX / 10 / 1024 / 1024 / 1024) {
            return false;
        }
        v = v * 10 + (uint64_t)(*p++ - '0');
    }
    if (p == s) {
        return false;
    }
    if (p < stop) {
        switch (*p++) {
        case 'K':
            v <<= 10;
            break;
        case 'M':
            v <<= 20;
            break;
        case 'G':
            v <<= 30;
            break;
        default:
            return false;
        }
    }
    if (p != stop || v == 0) {
        return false;
    }
    *out = v;
    return true;
}

/* "Region N: ... [size=S]" from "lspci -v": BAR N's size, if shown. */
static void parse_region_line(const char *line, DextDump *out)
{
    const char *p = line + strspn(line, " \t");
    const char *size, *close;
    uint64_t v;
    int bar;

    if (strncmp(p, "Region ", 7) != 0 || p[7] < '0' || p[7] > '5' ||
        p[8] != ':') {
        return;
    }
    bar = p[7] - '0';
    size = strstr(p, "[size=");
    if (size == NULL) {
        return;
    }
    size += 6;
    close = strchr(size, ']');
    if (close != NULL && parse_size(size, close, &v)) {
        out->bar_size[bar] = v;
    }
}

IOReturn dext_dump_parse(const char *text, size_t len, const char *pick,
                         DextDump *out, uint32_t *bad_line)
{
    uint8_t pbus = 0, pdev = 0, pfn = 0;
    bool want_pick = pick != NULL && *pick != '\0';
    bool chosen = false;
    DextDump *scratch, *dst = NULL;
    uint32_t lineno = 0;
    IOReturn ret = kIOReturnBadArgument;
    size_t pos = 0;

    if (bad_line != NULL) {
        *bad_line = 0;
    }
    if (text == NULL || out == NULL) {
        return kIOReturnBadArgument;
    }
    if (want_pick && !dext_parse_bdf(pick, &pbus, &pdev, &pfn)) {
        return kIOReturnBadArgument;
    }
    scratch = calloc(1, sizeof(*scratch));
    if (scratch == NULL) {
        return kIOReturnNoMemory;
    }
    memset(out, 0, sizeof(*out));
    while (pos < len) {
        char line[DUMP_LINE_MAX + 1];
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        uint8_t b, d, f;

        lineno++;
        if (n > DUMP_LINE_MAX || memchr(text + pos, '\0', n) != NULL) {
            goto out;
        }
        memcpy(line, text + pos, n);
        pos += n + (nl ? 1 : 0);
        if (n > 0 && line[n - 1] == '\r') {
            n--;
        }
        line[n] = '\0';

        if (strspn(line, " \t") == n) {
            dst = NULL;                     /* a blank line ends a device */
        } else if (line[0] == ' ' || line[0] == '\t') {
            /* lspci -v text: only the BAR sizes matter. */
            if (dst == NULL) {
                goto out;
            }
            parse_region_line(line, dst);
        } else if (dst != NULL && parse_hex_line(line, dst->cfg, &dst->len)) {
            continue;
        } else if (parse_device_line(line, &b, &d, &f)) {
            if (chosen && !want_pick) {
                goto out;           /* several devices, nothing says which */
            }
            if (!chosen && (!want_pick || (b == pbus && d == pdev &&
                                           f == pfn))) {
                dst = out;
                chosen = true;
            } else {
                /* Another device: still checked, into a scratch copy. */
                dst = scratch;
            }
            memset(dst, 0, sizeof(*dst));
            dst->has_addr = true;
            dst->bus = b;
            dst->dev = d;
            dst->fn = f;
        } else {
            goto out;
        }
    }
    lineno = 0;
    ret = chosen && out->len >= DEXT_PCI_STD_HEADER_SIZEOF ?
          kIOReturnSuccess : kIOReturnNotFound;
out:
    free(scratch);
    if (ret == kIOReturnBadArgument && bad_line != NULL) {
        *bad_line = lineno;
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* The device                                                           */

static IOReturn dump_config_read(DextDevice *dev, uint32_t off,
                                 uint32_t width, uint32_t *val)
{
    const DumpState *s = dev->priv;
    uint32_t v = 0;

    /* The core has checked width, alignment and range. */
    for (uint32_t i = 0; i < width; i++) {
        v |= (uint32_t)s->cfg[off + i] << (8 * i);
    }
    *val = v;
    return kIOReturnSuccess;
}

static void dump_destroy(DextDevice *dev)
{
    free(dev->priv);
    dev->priv = NULL;
}

static const DextDeviceOps dump_ops = {
    .name = "dump",
    .config_read = dump_config_read,
    .destroy = dump_destroy,
};

static IOReturn dump_apply_option(void *opaque, const char *key,
                                  const char *value)
{
    DumpOptions *o = opaque;

    if (strcmp(key, "file") == 0 && *value != '\0' &&
        strlen(value) < sizeof(o->file)) {
        strcpy(o->file, value);
    } else if (strcmp(key, "pick") == 0 && strlen(value) < sizeof(o->pick)) {
        strcpy(o->pick, value);
    } else if (strcmp(key, "bdf") == 0 && strlen(value) < sizeof(o->bdf)) {
        strcpy(o->bdf, value);
    } else if (strncmp(key, "bar", 3) == 0 && key[3] >= '0' &&
               key[3] <= '5' && key[4] == '\0' &&
               parse_size(value, value + strlen(value),
                          &o->bar_size[key[3] - '0'])) {
        o->bar_given[key[3] - '0'] = true;
    } else {
        return kIOReturnBadArgument;
    }
    return kIOReturnSuccess;
}

/* The whole file, at most DUMP_FILE_MAX bytes; malloc()ed. */
static IOReturn dump_read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;

    if (f == NULL) {
        return errno == ENOENT ? kIOReturnNotFound
             : errno == EACCES ? kIOReturnNotPrivileged
             : kIOReturnNotReadable;
    }
    buf = malloc(DUMP_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        return kIOReturnNoMemory;
    }
    n = fread(buf, 1, DUMP_FILE_MAX + 1, f);
    if (ferror(f) || n > DUMP_FILE_MAX) {
        fclose(f);
        free(buf);
        return n > DUMP_FILE_MAX ? kIOReturnBadArgument : kIOReturnNotReadable;
    }
    fclose(f);
    *text = buf;
    *len = n;
    return kIOReturnSuccess;
}

/* BAR types from the registers, sizes from the dump or the options. */
static void dump_describe_bars(DextDevice *dev, const DextDump *d,
                               const DumpOptions *o)
{
    int nbars;

    nbars = dext_header_bars(d->cfg[DEXT_PCI_HEADER_TYPE]);
    for (int i = 0; i < nbars; i++) {
        const uint8_t *r = d->cfg + DEXT_PCI_BAR0 + 4 * i;
        uint32_t reg = r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 |
                       (uint32_t)r[3] << 24;
        uint64_t size = o->bar_given[i] ? o->bar_size[i] : d->bar_size[i];
        DextBar *b = &dev->bars[i];

        if (size == 0) {
            continue;
        }
        b->size = size;
        b->type = (reg & DEXT_BAR_TYPE_IO) ? DEXT_BAR_TYPE_IO
                  : reg & (DEXT_BAR_TYPE_MEM64 | DEXT_BAR_TYPE_PREFETCH);
        if (b->type & DEXT_BAR_TYPE_MEM64) {
            i++;                    /* the upper half belongs to this BAR */
        }
    }
}

IOReturn dext_dump_create(const char *options, DextDevice **out)
{
    DumpOptions *o;
    DextDump *d = NULL;
    DextDevice *dev = NULL;
    DumpState *s = NULL;
    char *text = NULL;
    size_t len = 0;
    IOReturn ret;

    if (out == NULL) {
        return kIOReturnBadArgument;
    }
    *out = NULL;
    o = calloc(1, sizeof(*o));
    if (o == NULL) {
        return kIOReturnNoMemory;
    }
    ret = dext_device_for_each_option(options, dump_apply_option, o);
    if (ret == kIOReturnSuccess && o->file[0] == '\0') {
        ret = kIOReturnBadArgument;
    }
    if (ret == kIOReturnSuccess) {
        ret = dump_read_file(o->file, &text, &len);
    }
    if (ret == kIOReturnSuccess) {
        d = malloc(sizeof(*d));
        dev = calloc(1, sizeof(*dev));
        s = calloc(1, sizeof(*s));
        ret = d && dev && s ? kIOReturnSuccess : kIOReturnNoMemory;
    }
    if (ret == kIOReturnSuccess) {
        ret = dext_dump_parse(text, len, o->pick, d, NULL);
    }
    if (ret == kIOReturnSuccess) {
        if (o->bdf[0] != '\0') {
            if (!dext_parse_bdf(o->bdf, &dev->bus, &dev->dev, &dev->fn)) {
                ret = kIOReturnBadArgument;
            }
        } else {
            dev->bus = d->bus;
            dev->dev = d->dev;
            dev->fn = d->fn;
        }
    }
    if (ret == kIOReturnSuccess) {
        memcpy(s->cfg, d->cfg, sizeof(s->cfg));
        dev->ops = &dump_ops;
        dev->priv = s;
        s = NULL;
        snprintf(dev->name, sizeof(dev->name), "dump:%02x:%02x.%x",
                 dev->bus, dev->dev, dev->fn);
        dev->config_size = d->len > DEXT_CONFIG_SIZE ? DEXT_CONFIG_SIZE_EXT
                                                     : DEXT_CONFIG_SIZE;
        dev->vendor_id = (uint16_t)(d->cfg[0] | d->cfg[1] << 8);
        dev->device_id = (uint16_t)(d->cfg[2] | d->cfg[3] << 8);
        dev->revision = d->cfg[0x08];
        dev->class_code = d->cfg[0x09] | (uint32_t)d->cfg[0x0a] << 8 |
                          (uint32_t)d->cfg[0x0b] << 16;
        if (dev->vendor_id == 0xffff || dev->vendor_id == 0) {
            ret = kIOReturnNoDevice;
        }
    }
    if (ret == kIOReturnSuccess) {
        dump_describe_bars(dev, d, o);
        dev->dma_mask = UINT32_MAX;
        /*
         * A recording of real hardware: read-only (the core refuses
         * writes before any hook), no DMA, no interrupts.
         */
        dev->hardware = true;
        dev->allow_writes = false;
        dev->no_dma = true;
        dev->no_irq = true;
        *out = dev;
        dev = NULL;
    }
    dext_device_free(dev);
    free(s);
    free(d);
    free(text);
    free(o);
    return ret;
}
