/*
 * SPDX-License-Identifier: MIT
 *
 * Parsing PCI addresses (support/bdf.h).
 */

#include <ctype.h>
#include <string.h>

#include "support/bdf.h"

/* Parse 1..@max hex digits at *@p; advances *@p. */
static bool parse_hex_field(const char **p, unsigned max, unsigned *out)
{
    unsigned n = 0, v = 0;
    const char *s = *p;

    while (n < max && isxdigit((unsigned char)s[n])) {
        char c = (char)tolower((unsigned char)s[n]);

        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        n++;
    }
    if (n == 0 || isxdigit((unsigned char)s[n])) {
        return false;
    }
    *p = s + n;
    *out = v;
    return true;
}

bool dext_parse_bdf(const char *s, uint8_t *bus, uint8_t *dev, uint8_t *fn)
{
    unsigned b, d, f, domain;
    const char *p = s;

    if (s == NULL) {
        return false;
    }
    /* "DDDD:" only when there are two colons; the dext has no domain. */
    if (strchr(s, ':') != strrchr(s, ':')) {
        if (!parse_hex_field(&p, 4, &domain) || domain != 0 || *p++ != ':') {
            return false;
        }
    }
    if (!parse_hex_field(&p, 2, &b) || *p++ != ':' ||
        !parse_hex_field(&p, 2, &d) || *p++ != '.' ||
        !parse_hex_field(&p, 1, &f) || *p != '\0' ||
        d > 0x1f || f > 7) {
        return false;
    }
    *bus = (uint8_t)b;
    *dev = (uint8_t)d;
    *fn = (uint8_t)f;
    return true;
}
