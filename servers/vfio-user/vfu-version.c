/*
 * SPDX-License-Identifier: MIT
 *
 * VERSION: the handshake and its capabilities, in JSON through json-c.
 * The reply names what this server takes (fds per message, transfer
 * size, page sizes, DMA windows); migration and twin sockets are not
 * offered.
 */

#include <errno.h>
#include <string.h>

#include <json-c/json.h>

#include "vfu-server.h"

/* The client's capabilities: only their shape is checked. */
static bool client_caps_ok(const uint8_t *json, size_t n)
{
    json_tokener *tok;
    json_object *root, *caps;
    bool ok = false;

    if (n == 0) {
        return true;
    }
    /* NUL terminated, within the message, and nothing after it. */
    if (json[n - 1] != '\0' || memchr(json, '\0', n) != json + n - 1) {
        return false;
    }
    tok = json_tokener_new_ex(16);
    if (tok == NULL) {
        return false;
    }
    root = json_tokener_parse_ex(tok, (const char *)json, (int)(n - 1));
    if (root != NULL && json_tokener_get_error(tok) == json_tokener_success &&
        json_object_is_type(root, json_type_object)) {
        ok = !json_object_object_get_ex(root, "capabilities", &caps) ||
             json_object_is_type(caps, json_type_object);
    }
    json_object_put(root);
    json_tokener_free(tok);
    return ok;
}

int vfu_version(VfuSession *s, const uint8_t *p, size_t n, VfuReply *rep)
{
    VfuVersion v;
    json_object *root, *caps;
    const char *text;
    size_t tlen;

    if (s->versioned || n < sizeof(v) || n > 4096) {
        return -1;
    }
    memcpy(&v, p, sizeof(v));
    if (v.major != VFU_VERSION_MAJOR || !client_caps_ok(p + 4, n - 4)) {
        vfu_log_client("VERSION %u.%u refused", v.major, v.minor);
        return -1;
    }
    root = json_object_new_object();
    caps = json_object_new_object();
    json_object_object_add(caps, "max_msg_fds",
                           json_object_new_int(VFU_MAX_MSG_FDS));
    json_object_object_add(caps, "max_data_xfer_size",
                           json_object_new_int(VFU_MAX_DATA_XFER));
    json_object_object_add(caps, "pgsizes", json_object_new_int(VFU_PGSIZES));
    json_object_object_add(caps, "max_dma_maps",
                           json_object_new_int(VFU_MAX_DMA_MAPS));
    json_object_object_add(caps, "write_multiple",
                           json_object_new_boolean(1));
    json_object_object_add(root, "capabilities", caps);
    text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    tlen = strlen(text) + 1;
    v.major = VFU_VERSION_MAJOR;
    v.minor = VFU_VERSION_MINOR;
    memcpy(rep->payload, &v, sizeof(v));
    memcpy(rep->payload + sizeof(v), text, tlen);
    rep->len = sizeof(v) + tlen;
    json_object_put(root);
    s->versioned = true;
    return 0;
}
