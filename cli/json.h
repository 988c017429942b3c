/*
 * SPDX-License-Identifier: MIT
 *
 * A tiny streaming JSON writer for dextctl's --json output.
 *
 * Values are written in document order; the writer inserts commas,
 * colons, indentation and newlines, and escapes strings (control
 * characters as \uXXXX, invalid UTF-8 replaced by U+FFFD) so that any
 * byte string, e.g. a name from the PCI ID database, gives valid JSON.
 * Misuse (a value where a key is due, unbalanced ends) is a programming
 * error and is caught by assert().
 */

#ifndef DEXTCTL_JSON_H
#define DEXTCTL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

typedef struct JsonWriter {
    FILE *f;
    bool pretty;                    /* indent, one member per line */
    int depth;
    bool in_object[JSON_MAX_DEPTH]; /* per level: object (true) or array */
    bool empty[JSON_MAX_DEPTH];     /* per level: nothing written yet */
    bool key_pending;               /* a key was written, value due */
} JsonWriter;

/**
 * json_init() - start writing JSON documents to a stream
 * @w: the writer
 * @f: where to write
 * @pretty: true for indented output, false for one line per document
 *          (as JSON Lines)
 */
void json_init(JsonWriter *w, FILE *f, bool pretty);

/** json_begin_object() - open an object, as a value or at top level. */
void json_begin_object(JsonWriter *w);

/** json_end_object() - close the innermost object. */
void json_end_object(JsonWriter *w);

/** json_begin_array() - open an array, as a value or at top level. */
void json_begin_array(JsonWriter *w);

/** json_end_array() - close the innermost array. */
void json_end_array(JsonWriter *w);

/**
 * json_key() - name the next member of the current object
 * @w: the writer (inside an object, no key pending)
 * @key: member name; escaped like any string
 */
void json_key(JsonWriter *w, const char *key);

/** json_string() - a string value; NULL writes null. */
void json_string(JsonWriter *w, const char *s);

/** json_stringf() - a string value from a printf format. */
void json_stringf(JsonWriter *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** json_uint() - an unsigned integer value. */
void json_uint(JsonWriter *w, uint64_t v);

/** json_int() - a signed integer value. */
void json_int(JsonWriter *w, int64_t v);

/**
 * json_double() - a number with a fractional part
 * @w: the writer
 * @v: the value; non-finite values are written as null
 * @decimals: digits after the decimal point
 */
void json_double(JsonWriter *w, double v, int decimals);

/** json_bool() - true or false. */
void json_bool(JsonWriter *w, bool v);

/** json_null() - null. */
void json_null(JsonWriter *w);

/* Shorthands for a key followed by its value. */
void json_kv_string(JsonWriter *w, const char *key, const char *s);
void json_kv_uint(JsonWriter *w, const char *key, uint64_t v);
void json_kv_bool(JsonWriter *w, const char *key, bool v);
void json_kv_hex(JsonWriter *w, const char *key, uint64_t v, int digits);

/**
 * json_write_escaped() - write @s as a quoted, escaped JSON string
 * @f: the stream
 * @s: bytes, NUL-terminated; need not be valid UTF-8
 */
void json_write_escaped(FILE *f, const char *s);

#endif /* DEXTCTL_JSON_H */
