/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl status: is the dext reachable, and what does it hold.
 */

#include <inttypes.h>
#include <stdlib.h>

#include "dextctl.h"

#define STATUS_MAX_DEVICES 256

#define STATUS_MAX_CLAIMERS 8

typedef struct DevState {
    AppleDextDeviceInfo info;
    bool known;
    AppleDextDeviceStatus st;
    uint32_t claimers[STATUS_MAX_CLAIMERS];  /* pids holding the claim */
    uint32_t nclaimers;                      /* ... of which are known */
} DevState;

/* Per-device claims and clients; ours is not counted. */
static uint32_t status_devices(Ctl *ctl, DevState **out)
{
    AppleDextDeviceInfo devs[STATUS_MAX_DEVICES];
    DevState *v;
    uint32_t n = 0;

    *out = NULL;
    if (apple_dext_list_devices(ctl->target, devs, STATUS_MAX_DEVICES,
                                &n) != kIOReturnSuccess) {
        return 0;
    }
    if (n > STATUS_MAX_DEVICES) {
        n = STATUS_MAX_DEVICES;
    }
    v = calloc(n ? n : 1, sizeof(*v));
    if (v == NULL) {
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        v[i].info = devs[i];
    }
    qsort(v, n, sizeof(*v), ctl_info_cmp);
    for (uint32_t i = 0; i < n; i++) {
        io_connect_t c;

        if (apple_dext_connect_target(ctl->target, v[i].info.bus,
                                      v[i].info.device, v[i].info.function,
                                      &c) != kIOReturnSuccess) {
            continue;
        }
        if (apple_dext_get_device_status(c, &v[i].st) == kIOReturnSuccess) {
            uint32_t count = 0;

            v[i].known = true;
            if (v[i].st.sessions > 0) {
                v[i].st.sessions--;
            }
            /* A dext without the extension just shows no pids. */
            if (v[i].st.claims > 0 &&
                apple_dext_get_claimers(c, v[i].claimers, STATUS_MAX_CLAIMERS,
                                        &count) == kIOReturnSuccess) {
                v[i].nclaimers = count < STATUS_MAX_CLAIMERS ?
                                 count : STATUS_MAX_CLAIMERS;
            }
        }
        apple_dext_disconnect(c);
    }
    *out = v;
    return n;
}

static void status_json(Ctl *ctl, const AppleDextStatus *s,
                        const DevState *devs, uint32_t n)
{
    JsonWriter *w = &ctl->jw;

    ctl_json_begin(ctl);
    json_kv_string(w, "target", ctl_target_name(ctl));
    json_kv_bool(w, "reachable", true);
    json_kv_bool(w, "in_process", s->protocol_version == 0);
    json_kv_uint(w, "server_pid", s->server_pid);
    json_kv_uint(w, "protocol_version", s->protocol_version);
    json_kv_uint(w, "devices", s->devices);
    json_kv_uint(w, "sessions", s->sessions);
    json_kv_uint(w, "claims", s->claims);
    json_kv_uint(w, "channels", s->channels);
    json_kv_uint(w, "dma_regions", s->dma_regions);
    json_kv_uint(w, "dma_region_bytes", s->dma_region_bytes);
    json_kv_uint(w, "dma_buffers", s->dma_buffers);
    json_kv_uint(w, "irq_sessions", s->irq_sessions);
    json_kv_uint(w, "irqs_raised", s->irqs_raised);
    json_kv_uint(w, "irqs_dropped", s->irqs_dropped);
    json_kv_uint(w, "iommu_faults", s->iommu_faults);
    json_key(w, "device_list");
    json_begin_array(w);
    for (uint32_t i = 0; i < n; i++) {
        CtlBdf bdf = { devs[i].info.bus, devs[i].info.device,
                       devs[i].info.function };

        json_begin_object(w);
        json_kv_string(w, "bdf", ctl_bdf_str(&bdf));
        json_kv_hex(w, "vendor_id", devs[i].info.vendor_id, 4);
        json_kv_hex(w, "device_id", devs[i].info.device_id, 4);
        if (devs[i].known) {
            json_kv_uint(w, "claims", devs[i].st.claims);
            json_kv_uint(w, "clients", devs[i].st.sessions);
        }
        if (devs[i].nclaimers > 0) {
            json_key(w, "claimed_by");
            json_begin_array(w);
            for (uint32_t j = 0; j < devs[i].nclaimers; j++) {
                json_uint(w, devs[i].claimers[j]);
            }
            json_end_array(w);
        }
        json_end_object(w);
    }
    json_end_array(w);
    ctl_json_end(ctl);
}

static void status_text(Ctl *ctl, const AppleDextStatus *s,
                        const DevState *devs, uint32_t n)
{
    printf("target      %s\n", ctl_target_name(ctl));
    printf("reachable   yes\n");
    if (s->protocol_version == 0) {
        printf("server      in-process dext core, pid %" PRIu32 "\n",
               s->server_pid);
    } else {
        printf("server      dextd, pid %" PRIu32 ", wire protocol %" PRIu32
               "\n", s->server_pid, s->protocol_version);
    }
    printf("devices     %" PRIu32 "\n", s->devices);
    printf("clients     %" PRIu32 " open, %" PRIu32 " holding a claim\n",
           s->sessions, s->claims);
    if (s->protocol_version != 0) {
        printf("channels    %" PRIu32 " (this query's included)\n",
               s->channels);
    }
    printf("dma         %" PRIu32 " region(s) of %" PRIu64 " bytes, %" PRIu32
           " DMA buffer(s)\n", s->dma_regions, s->dma_region_bytes,
           s->dma_buffers);
    printf("interrupts  %" PRIu32 " client(s) set up; %" PRIu64
           " raised, %" PRIu64 " dropped (no client had the vector "
           "enabled)\n", s->irq_sessions, s->irqs_raised, s->irqs_dropped);
    printf("iommu       %" PRIu64 " fault(s) (device DMA to unmapped bus "
           "addresses)\n", s->iommu_faults);
    if (n == 0) {
        return;
    }
    printf("\nBDF      ID         CLAIMS  CLIENTS\n");
    for (uint32_t i = 0; i < n; i++) {
        CtlBdf bdf = { devs[i].info.bus, devs[i].info.device,
                       devs[i].info.function };

        printf("%-7s  %04x:%04x  ", ctl_bdf_str(&bdf),
               devs[i].info.vendor_id, devs[i].info.device_id);
        if (devs[i].known) {
            printf("%-6" PRIu32 "  %" PRIu32, devs[i].st.claims,
                   devs[i].st.sessions);
            for (uint32_t j = 0; j < devs[i].nclaimers; j++) {
                printf("%s%" PRIu32, j ? "," : "  claimed by pid ",
                       devs[i].claimers[j]);
            }
            printf("\n");
        } else {
            printf("?       ?\n");
        }
    }
}

int cmd_status(Ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        CTL_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    AppleDextStatus s = { .size = sizeof(AppleDextStatus) };
    DevState *devs;
    kern_return_t kr;
    uint32_t n;
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

    kr = apple_dext_get_status(ctl->target, &s);
    if (kr != kIOReturnSuccess) {
        /* The report is the answer too: say "not reachable" on stdout. */
        if (ctl->json) {
            ctl_json_begin(ctl);
            json_kv_string(&ctl->jw, "target", ctl_target_name(ctl));
            json_kv_bool(&ctl->jw, "reachable", false);
            json_kv_string(&ctl->jw, "error", apple_dext_strerror(kr));
            ctl_json_end(ctl);
        } else {
            printf("target      %s\n", ctl_target_name(ctl));
            printf("reachable   no\n");
        }
        return ctl_fail(ctl, kr, CTL_WHAT_REACH, "asking '%s' for its status",
                        ctl_target_name(ctl));
    }
    n = status_devices(ctl, &devs);
    if (ctl->json) {
        status_json(ctl, &s, devs, n);
    } else {
        status_text(ctl, &s, devs, n);
    }
    free(devs);
    return CTL_EXIT_OK;
}
