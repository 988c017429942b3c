/*
 * SPDX-License-Identifier: MIT
 *
 * A tiny streaming JSON writer (see json.h).
 */

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void json_init(JsonWriter *w, FILE *f, bool pretty)
{
    memset(w, 0, sizeof(*w));
    w->f = f;
    w->pretty = pretty;
}

static void newline_indent(JsonWriter *w)
{
    if (!w->pretty) {
        return;
    }
    fputc('\n', w->f);
    for (int i = 0; i < w->depth; i++) {
        fputs("  ", w->f);
    }
}

/* Everything a value needs before it: a comma, a line, or nothing. */
static void before_value(JsonWriter *w)
{
    if (w->depth == 0) {
        return;
    }
    if (w->in_object[w->depth - 1]) {
        /* Inside an object a value only ever follows its key. */
        assert(w->key_pending);
        w->key_pending = false;
        return;
    }
    if (!w->empty[w->depth - 1]) {
        fputc(',', w->f);
    }
    w->empty[w->depth - 1] = false;
    newline_indent(w);
}

/* After a complete top-level document: end its line. */
static void after_value(JsonWriter *w)
{
    if (w->depth == 0) {
        fputc('\n', w->f);
    }
}

static void begin(JsonWriter *w, bool object)
{
    before_value(w);
    assert(w->depth < JSON_MAX_DEPTH);
    fputc(object ? '{' : '[', w->f);
    w->in_object[w->depth] = object;
    w->empty[w->depth] = true;
    w->depth++;
}

static void end(JsonWriter *w, bool object)
{
    bool was_empty;

    assert(w->depth > 0 && w->in_object[w->depth - 1] == object);
    assert(!w->key_pending);
    was_empty = w->empty[w->depth - 1];
    w->depth--;
    if (!was_empty) {
        newline_indent(w);
    }
    fputc(object ? '}' : ']', w->f);
    after_value(w);
}

void json_begin_object(JsonWriter *w)
{
    begin(w, true);
}

void json_end_object(JsonWriter *w)
{
    end(w, true);
}

void json_begin_array(JsonWriter *w)
{
    begin(w, false);
}

void json_end_array(JsonWriter *w)
{
    end(w, false);
}

/*
 * Length of the valid UTF-8 sequence at @s, or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included).
 */
static size_t utf8_valid_len(const unsigned char *s)
{
    uint32_t cp;
    size_t len, i;

    if (s[0] < 0x80) {
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (i = 1; i < len; i++) {
        /* A NUL terminator fails this test too, so we never read past it. */
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

void json_write_escaped(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    fputc('"', f);
    while (*s != '\0') {
        size_t n;

        switch (*s) {
        case '"':
            fputs("\\\"", f);
            s++;
            continue;
        case '\\':
            fputs("\\\\", f);
            s++;
            continue;
        case '\n':
            fputs("\\n", f);
            s++;
            continue;
        case '\r':
            fputs("\\r", f);
            s++;
            continue;
        case '\t':
            fputs("\\t", f);
            s++;
            continue;
        case '\b':
            fputs("\\b", f);
            s++;
            continue;
        case '\f':
            fputs("\\f", f);
            s++;
            continue;
        default:
            break;
        }
        if (*s < 0x20 || *s == 0x7f) {
            fprintf(f, "\\u%04x", *s);
            s++;
            continue;
        }
        n = utf8_valid_len(s);
        if (n == 0) {
            /* Not UTF-8 (a Latin-1 name, say): JSON must not carry it. */
            fputs("\\ufffd", f);
            s++;
            continue;
        }
        fwrite(s, 1, n, f);
        s += n;
    }
    fputc('"', f);
}

void json_key(JsonWriter *w, const char *key)
{
    assert(w->depth > 0 && w->in_object[w->depth - 1] && !w->key_pending);
    if (!w->empty[w->depth - 1]) {
        fputc(',', w->f);
    }
    w->empty[w->depth - 1] = false;
    newline_indent(w);
    json_write_escaped(w->f, key);
    fputs(w->pretty ? ": " : ":", w->f);
    w->key_pending = true;
}

void json_string(JsonWriter *w, const char *s)
{
    if (s == NULL) {
        json_null(w);
        return;
    }
    before_value(w);
    json_write_escaped(w->f, s);
    after_value(w);
}

void json_stringf(JsonWriter *w, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_string(w, buf);
}

void json_uint(JsonWriter *w, uint64_t v)
{
    before_value(w);
    fprintf(w->f, "%" PRIu64, v);
    after_value(w);
}

void json_int(JsonWriter *w, int64_t v)
{
    before_value(w);
    fprintf(w->f, "%" PRId64, v);
    after_value(w);
}

void json_double(JsonWriter *w, double v, int decimals)
{
    if (!isfinite(v)) {
        json_null(w);
        return;
    }
    before_value(w);
    fprintf(w->f, "%.*f", decimals, v);
    after_value(w);
}

void json_bool(JsonWriter *w, bool v)
{
    before_value(w);
    fputs(v ? "true" : "false", w->f);
    after_value(w);
}

void json_null(JsonWriter *w)
{
    before_value(w);
    fputs("null", w->f);
    after_value(w);
}

void json_kv_string(JsonWriter *w, const char *key, const char *s)
{
    json_key(w, key);
    json_string(w, s);
}

void json_kv_uint(JsonWriter *w, const char *key, uint64_t v)
{
    json_key(w, key);
    json_uint(w, v);
}

void json_kv_bool(JsonWriter *w, const char *key, bool v)
{
    json_key(w, key);
    json_bool(w, v);
}

void json_kv_hex(JsonWriter *w, const char *key, uint64_t v, int digits)
{
    json_key(w, key);
    json_stringf(w, "%0*" PRIx64, digits, v);
}
