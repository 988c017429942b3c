/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl list: every device the dext serves.
 */

#include <stdlib.h>
#include <string.h>

#include "dextctl.h"
#include "pciids.h"

/* DEXT_MAX_SERVICES of the transports: a list holds no more. */
#define LIST_MAX 256

typedef struct ListRow {
    AppleDextDeviceInfo info;
    bool known;                 /* claim state could be read */
    uint32_t claims;
    uint32_t clients;           /* not counting our own look */
} ListRow;

/* Ask the device itself about claims; quietly unknown if it cannot say. */
static void list_claims(Ctl *ctl, ListRow *row)
{
    AppleDextDeviceStatus st;
    io_connect_t c;

    if (apple_dext_connect_target(ctl->target, row->info.bus,
                                  row->info.device, row->info.function,
                                  &c) != kIOReturnSuccess) {
        return;
    }
    if (apple_dext_get_device_status(c, &st) == kIOReturnSuccess) {
        row->known = true;
        row->claims = st.claims;
        row->clients = st.sessions > 0 ? st.sessions - 1 : 0;
    }
    apple_dext_disconnect(c);
}

static void list_json(Ctl *ctl, const ListRow *rows, uint32_t n)
{
    ctl_json_begin(ctl);
    json_kv_string(&ctl->jw, "target", ctl_target_name(ctl));
    json_key(&ctl->jw, "devices");
    json_begin_array(&ctl->jw);
    for (uint32_t i = 0; i < n; i++) {
        const AppleDextDeviceInfo *d = &rows[i].info;
        CtlBdf bdf = { d->bus, d->device, d->function };

        json_begin_object(&ctl->jw);
        json_kv_string(&ctl->jw, "bdf", ctl_bdf_str(&bdf));
        json_kv_hex(&ctl->jw, "vendor_id", d->vendor_id, 4);
        json_kv_hex(&ctl->jw, "device_id", d->device_id, 4);
        json_kv_hex(&ctl->jw, "class_code", d->class_code, 6);
        ctl_json_names(ctl, d->vendor_id, d->device_id, d->class_code);
        if (rows[i].known) {
            json_kv_bool(&ctl->jw, "claimed", rows[i].claims > 0);
            json_kv_uint(&ctl->jw, "claims", rows[i].claims);
            json_kv_uint(&ctl->jw, "clients", rows[i].clients);
        } else {
            json_key(&ctl->jw, "claimed");
            json_null(&ctl->jw);
        }
        json_end_object(&ctl->jw);
    }
    json_end_array(&ctl->jw);
    ctl_json_end(ctl);
}

static void list_text(Ctl *ctl, const ListRow *rows, uint32_t n)
{
    if (n == 0) {
        printf("No devices are served by '%s'.\n", ctl_target_name(ctl));
        return;
    }
    printf("BDF      ID         CLASS   CLAIMED%s\n",
           ctl->numeric ? "" : "  DEVICE");
    for (uint32_t i = 0; i < n; i++) {
        const AppleDextDeviceInfo *d = &rows[i].info;
        CtlBdf bdf = { d->bus, d->device, d->function };
        const char *claimed = !rows[i].known ? "?" :
                              rows[i].claims > 0 ? "yes" : "no";

        printf("%-7s  %04x:%04x  %06x  ", ctl_bdf_str(&bdf), d->vendor_id,
               d->device_id, d->class_code);
        if (!ctl->numeric) {
            char cls[PCIIDS_NAME_MAX], dev[PCIIDS_NAME_MAX];

            printf("%-7s  %s: %s", claimed,
                   pciids_class(d->class_code, cls, sizeof(cls)),
                   pciids_device(d->vendor_id, d->device_id, dev,
                                 sizeof(dev)));
        } else {
            fputs(claimed, stdout);
        }
        putchar('\n');
    }
}

int cmd_list(Ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        CTL_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    AppleDextDeviceInfo devs[LIST_MAX];
    ListRow *rows;
    uint32_t n = 0;
    kern_return_t kr;
    int opt, rc;

    ctl_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":" CTL_COMMON_SHORTOPTS, opts,
                              NULL)) != -1) {
        rc = ctl_option(ctl, opt, optarg, argv);
        if (rc != CTL_CONTINUE) {
            return rc;
        }
    }
    if (optind < argc) {
        return ctl_usage(ctl, "unexpected argument '%s'", argv[optind]);
    }
    ctl_ready(ctl);

    kr = apple_dext_list_devices(ctl->target, devs, LIST_MAX, &n);
    if (kr != kIOReturnSuccess) {
        return ctl_fail(ctl, kr, CTL_WHAT_REACH, "listing the devices of '%s'",
                        ctl_target_name(ctl));
    }
    if (n > LIST_MAX) {
        n = LIST_MAX;
    }
    rows = calloc(n ? n : 1, sizeof(*rows));
    if (rows == NULL) {
        return ctl_fail(ctl, kIOReturnNoMemory, CTL_WHAT_READ, "listing");
    }
    for (uint32_t i = 0; i < n; i++) {
        rows[i].info = devs[i];
    }
    qsort(rows, n, sizeof(*rows), ctl_info_cmp);
    for (uint32_t i = 0; i < n; i++) {
        list_claims(ctl, &rows[i]);
    }
    if (ctl->json) {
        list_json(ctl, rows, n);
    } else {
        list_text(ctl, rows, n);
    }
    free(rows);
    return CTL_EXIT_OK;
}
