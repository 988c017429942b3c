/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl's JSON writer: layout, commas, and string escaping (quotes,
 * backslashes, control characters, valid UTF-8 kept, invalid replaced).
 */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"

/* Run @fn on a writer into memory and compare with @want. */
static void expect(const char *what, void (*fn)(JsonWriter *w), bool pretty,
                   const char *want)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    JsonWriter w;

    if (f == NULL) {
        perror("open_memstream");
        exit(1);
    }
    json_init(&w, f, pretty);
    fn(&w);
    fclose(f);
    CHECK_MSG(strcmp(buf, want) == 0, "%s:\n  got:  [%s]\n  want: [%s]",
              what, buf, want);
    free(buf);
}

static void doc_nested(JsonWriter *w)
{
    json_begin_object(w);
    json_kv_string(w, "a", "x");
    json_key(w, "b");
    json_begin_array(w);
    json_uint(w, 1);
    json_int(w, -2);
    json_bool(w, true);
    json_null(w);
    json_begin_object(w);
    json_end_object(w);
    json_begin_array(w);
    json_end_array(w);
    json_end_array(w);
    json_kv_hex(w, "c", 0x11e8, 4);
    json_key(w, "d");
    json_double(w, 0.5, 3);
    json_end_object(w);
}

static void doc_escapes(JsonWriter *w)
{
    json_string(w, "q\" b\\ n\n t\t r\r c\x01 d\x7f");
}

static void doc_utf8(JsonWriter *w)
{
    /* é (2 bytes), € (3), 😀 (4) stay; a lone \xe9, an overlong "/" and
     * a truncated sequence become U+FFFD each. */
    json_string(w, "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe9 "
                   "\xc0\xaf \xe2\x82");
}

static void doc_lines(JsonWriter *w)
{
    json_begin_object(w);
    json_kv_uint(w, "n", 1);
    json_end_object(w);
    json_begin_object(w);
    json_kv_string(w, "s", NULL);
    json_end_object(w);
}

static void doc_stringf(JsonWriter *w)
{
    json_stringf(w, "%02x:%02x.%x", 0, 3, 0);
}

int main(void)
{
    expect("nested, pretty", doc_nested, true,
           "{\n"
           "  \"a\": \"x\",\n"
           "  \"b\": [\n"
           "    1,\n"
           "    -2,\n"
           "    true,\n"
           "    null,\n"
           "    {},\n"
           "    []\n"
           "  ],\n"
           "  \"c\": \"11e8\",\n"
           "  \"d\": 0.500\n"
           "}\n");
    expect("nested, compact", doc_nested, false,
           "{\"a\":\"x\",\"b\":[1,-2,true,null,{},[]],\"c\":\"11e8\","
           "\"d\":0.500}\n");
    expect("escapes", doc_escapes, true,
           "\"q\\\" b\\\\ n\\n t\\t r\\r c\\u0001 d\\u007f\"\n");
    expect("utf-8", doc_utf8, true,
           "\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \\ufffd \\ufffd\\ufffd "
           "\\ufffd\\ufffd\"\n");
    expect("one document per line", doc_lines, false,
           "{\"n\":1}\n{\"s\":null}\n");
    expect("stringf", doc_stringf, false, "\"00:03.0\"\n");
    return harness_finish();
}
