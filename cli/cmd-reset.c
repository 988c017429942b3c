/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl reset: reset a device through the dext (function-level reset,
 * else a hot reset; the dext restores the command register, BARs and
 * MSI/MSI-X setup afterwards).
 */

#include "dextctl.h"

static const char *reset_method_name(uint32_t method)
{
    switch (method) {
    case APPLE_DEXT_RESET_FUNCTION:
        return "function-level";
    case APPLE_DEXT_RESET_HOT:
        return "hot";
    default:
        return "unreported";
    }
}

int cmd_reset(Ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        CTL_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    uint32_t method;
    io_connect_t c;
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
    rc = ctl_only_device(ctl, argc, argv);
    if (rc != CTL_CONTINUE) {
        return rc;
    }

    /* ResetDevice needs a claim. */
    rc = ctl_connect(ctl, true, &c);
    if (rc != CTL_CONTINUE) {
        return rc;
    }
    kr = apple_dext_reset_device(c);
    /*
     * ResetDevice answers a status only (a function-level reset, else a
     * hot one); a libdext dext also says which ran.  The real dext does
     * not: say so rather than guess.
     */
    if (kr != kIOReturnSuccess ||
        apple_dext_get_last_reset(c, &method) != kIOReturnSuccess) {
        method = UINT32_MAX;
    }
    apple_dext_disconnect(c);
    if (kr != kIOReturnSuccess) {
        return ctl_fail(ctl, kr, CTL_WHAT_RESET, "resetting %s",
                        ctl_bdf_str(&ctl->bdf));
    }
    if (ctl->json) {
        ctl_json_begin(ctl);
        json_kv_string(&ctl->jw, "bdf", ctl_bdf_str(&ctl->bdf));
        json_kv_bool(&ctl->jw, "reset", true);
        json_kv_string(&ctl->jw, "method", reset_method_name(method));
        ctl_json_end(ctl);
    } else if (method == UINT32_MAX) {
        printf("%s: reset (function-level, else hot; the dext does not "
               "report which)\n", ctl_bdf_str(&ctl->bdf));
    } else {
        printf("%s: reset (%s)\n", ctl_bdf_str(&ctl->bdf),
               reset_method_name(method));
    }
    return CTL_EXIT_OK;
}
