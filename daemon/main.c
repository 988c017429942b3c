/*
 * SPDX-License-Identifier: MIT
 *
 * dextd: options, serving the devices, and main().  See dextd.h for
 * the parts.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "libdext/version.h"
#include "backends/backend.h"
#include "support/bdf.h"
#include "support/ioreturn-names.h"
#include "daemon/dextd.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: dextd [OPTION]...\n"
            "Serve the VFIOUserPCIDriver user-client contract on a UNIX "
            "socket.\n\n"
            "  -s, --socket PATH       listen on PATH (default: $DEXT_SOCKET,"
            " else\n"
            "                          /run/dextd.sock for root, else\n"
            "                          $XDG_RUNTIME_DIR/dextd.sock, else\n"
            "                          /tmp/dextd-UID.sock)\n"
            "      --socket-group GROUP  let members of GROUP (a name or"
            " gid) connect:\n"
            "                          the socket's group, and admitted by"
            " the peer check\n"
            "      --socket-mode MODE  the socket's mode, octal (default"
            " 0600, 0660 with\n"
            "                          --socket-group)\n"
            "  -d, --device SPEC       serve a device, e.g. edu,"
            " edu,dma_mask=0xffffffff,\n"
            "                          edu,bdf=00:04.0, ivshmem,"
            " dump,file=PATH\n"
            "                          (repeatable; default: edu)\n"
            "  -H, --host BDF|all      serve a real PCI function of this"
            " machine, read-only\n"
            "                          (repeatable; all = every function in"
            " sysfs)\n"
            "      --allow-writes BDF  let clients write to that host"
            " function: config\n"
            "                          writes, MMIO, BAR mapping, reset"
            " (repeatable)\n"
            "  -l, --log-level LEVEL   error, warning, info (default) or"
            " debug\n"
            "      --contract-only     answer as the real dext today:"
            " Unsupported for\n"
            "                          extension selectors (>= 64)\n"
            "      --no-irq-page       answer Unsupported for mapping the"
            " interrupt page\n"
            "      --dma-share PERCENT the most of a device's bus space one"
            " client process\n"
            "                          may hold with DMA regions and buffers"
            " (default 50)\n"
            "      --unclaimed-writes  the real dext's access model: clients"
            " without a\n"
            "                          claim may write config space and"
            " MMIO, map BARs\n"
            "                          writable and terminate (default: they"
            " may only read)\n"
            "      --handshake-timeout SECONDS\n"
            "                          close a connection that has not said"
            " HELLO by then\n"
            "                          (default: 5)\n"
            "  -h, --help              show this help\n"
            "  -V, --version           show the version\n");
}

/*
 * Every channel is an fd and every wake port another; the usual soft
 * limit of 1024 would run out before the channel cap does.
 */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* A device served, and the spec that named it. */
typedef struct Served {
    uint8_t bus, dev, fn;
    const char *spec;
} Served;

/* What serving the devices of one spec needs to know and count. */
typedef struct ServeState {
    Daemon *d;
    const char *spec;
    uint8_t (*allow)[3];        /* --allow-writes bus, device, function */
    int nallow;
    bool sink_failed;
    uint32_t served;
    Served *list;               /* the @served devices */
    uint32_t cap;
} ServeState;

/* An IOReturn for the log: its name, or its number if it has none. */
static const char *ioreturn_str(IOReturn ret)
{
    static char num[16];
    const char *text = dext_ioreturn_text(ret);

    if (text != NULL) {
        return text;
    }
    snprintf(num, sizeof(num), "0x%08x", (unsigned)ret);
    return num;
}

/* Does @spec name the host backend (real functions, not movable)? */
static bool spec_is_host(const char *spec)
{
    size_t n = strcspn(spec, ",@");

    return n == 4 && strncmp(spec, "host", 4) == 0;
}

/*
 * A bus-0 address no served device and no function of this machine has,
 * highest first (real functions tend to sit low): for the hint.
 */
static bool free_bdf(const ServeState *ss, uint8_t *dev)
{
    char path[64];
    uint32_t i;
    int d;

    for (d = 0x1f; d > 0; d--) {
        bool used = false;

        snprintf(path, sizeof(path), "/sys/bus/pci/devices/0000:00:%02x.0",
                 d);
        for (i = 0; i < ss->served && !used; i++) {
            used = ss->list[i].bus == 0 && ss->list[i].dev == d;
        }
        if (!used && access(path, F_OK) != 0) {
            *dev = (uint8_t)d;
            return true;
        }
    }
    return false;
}

/*
 * Two specs want one address: say which, and how to move the emulated
 * one out of the way (a host function's address is the machine's).
 */
static void explain_conflict(ServeState *ss, const uint8_t bdf[3])
{
    const char *other = "an earlier device";
    const char *movable;
    char where[16];
    uint8_t dev;
    uint32_t i;

    for (i = 0; i < ss->served; i++) {
        if (ss->list[i].bus == bdf[0] && ss->list[i].dev == bdf[1] &&
            ss->list[i].fn == bdf[2]) {
            other = ss->list[i].spec;
        }
    }
    movable = !spec_is_host(ss->spec) ? ss->spec :
              !spec_is_host(other) ? other : NULL;
    if (movable == NULL || !free_bdf(ss, &dev)) {
        dlog(ss->d, DEXT_LOG_ERROR, "device '%s': %02x:%02x.%x is served "
             "already, by device '%s'", ss->spec, bdf[0], bdf[1], bdf[2],
             other);
        return;
    }
    snprintf(where, sizeof(where), "00:%02x.0", dev);
    if (strstr(movable, "bdf=") == NULL && strchr(movable, '@') == NULL) {
        dlog(ss->d, DEXT_LOG_ERROR, "device '%s': %02x:%02x.%x is served "
             "already, by device '%s': give the emulated one a free "
             "address, e.g. --device %s,bdf=%s", ss->spec, bdf[0], bdf[1],
             bdf[2], other, movable, where);
    } else {
        dlog(ss->d, DEXT_LOG_ERROR, "device '%s': %02x:%02x.%x is served "
             "already, by device '%s': give '%s' a free address, e.g. "
             "bdf=%s", ss->spec, bdf[0], bdf[1], bdf[2], other, movable,
             where);
    }
}

/* Remember a served device's address and spec, for explain_conflict(). */
static bool note_served(ServeState *ss, const uint8_t bdf[3])
{
    if (ss->served == ss->cap) {
        uint32_t cap = ss->cap ? ss->cap * 2 : 16;
        Served *list = realloc(ss->list, cap * sizeof(*list));

        if (list == NULL) {
            return false;
        }
        ss->list = list;
        ss->cap = cap;
    }
    ss->list[ss->served] = (Served){ bdf[0], bdf[1], bdf[2], ss->spec };
    return true;
}

/* dext_device_create_each()'s sink: serve one device. */
static IOReturn serve_device(void *opaque, DextDevice *dev)
{
    ServeState *ss = opaque;
    char name[sizeof(dev->name)];
    uint8_t bdf[3] = { dev->bus, dev->dev, dev->fn };
    uint64_t id;
    IOReturn ret;

    memcpy(name, dev->name, sizeof(name));
    ret = dext_core_add_device(ss->d->core, dev, &id);
    if (ret == kIOReturnUnsupported) {
        /* The dext refuses multimedia functions; so do we, quietly. */
        dlog(ss->d, DEXT_LOG_WARNING, "device '%s' (%s) not served", ss->spec,
             name);
        return kIOReturnSuccess;
    }
    if (ret == kIOReturnExclusiveAccess) {
        explain_conflict(ss, bdf);
        ss->sink_failed = true;
        return ret;
    }
    if (ret == kIOReturnSuccess && !note_served(ss, bdf)) {
        ret = kIOReturnNoMemory;    /* the device is served: stop anyway */
    }
    if (ret != kIOReturnSuccess) {
        dlog(ss->d, DEXT_LOG_ERROR, "device '%s' (%s): cannot serve: %s",
             ss->spec, name, ioreturn_str(ret));
        ss->sink_failed = true;
        return ret;
    }
    dlog(ss->d, DEXT_LOG_DEBUG, "device '%s' (%s) is service 0x%llx",
         ss->spec, name, (unsigned long long)id);
    ss->served++;
    return kIOReturnSuccess;
}

/* Why a device spec could not be turned into devices, for the log. */
static const char *create_error_reason(IOReturn ret)
{
    switch (ret) {
    case kIOReturnNotFound:
        return "no such device (unknown backend, or no such PCI function "
               "in sysfs)";
    case kIOReturnBadArgument:
        return "malformed spec or option";
    case kIOReturnNotPrivileged:
        return "permission denied";
    case kIOReturnNoDevice:
        return "the function reads as all ones (gone or powered off)";
    default:
        return "cannot create";
    }
}

/* A group name or a numeric gid. */
static bool parse_group(const char *s, gid_t *gid)
{
    struct group gr, *res = NULL;
    char buf[4096];
    char *end;
    unsigned long v;

    if (getgrnam_r(s, &gr, buf, sizeof(buf), &res) == 0 && res != NULL) {
        *gid = res->gr_gid;
        return true;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
        v >= (gid_t)-1) {
        return false;
    }
    *gid = (gid_t)v;
    return true;
}

static int parse_level(const char *s)
{
    if (strcmp(s, "error") == 0) {
        return DEXT_LOG_ERROR;
    }
    if (strcmp(s, "warning") == 0 || strcmp(s, "warn") == 0) {
        return DEXT_LOG_WARNING;
    }
    if (strcmp(s, "info") == 0) {
        return DEXT_LOG_INFO;
    }
    if (strcmp(s, "debug") == 0) {
        return DEXT_LOG_DEBUG;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "socket-group", required_argument, NULL, 'G' },
        { "socket-mode", required_argument, NULL, 'M' },
        { "device", required_argument, NULL, 'd' },
        { "host", required_argument, NULL, 'H' },
        { "allow-writes", required_argument, NULL, 'W' },
        { "log-level", required_argument, NULL, 'l' },
        { "contract-only", no_argument, NULL, 'C' },
        { "no-irq-page", no_argument, NULL, 'I' },
        { "dma-share", required_argument, NULL, 'S' },
        { "unclaimed-writes", no_argument, NULL, 'U' },
        { "handshake-timeout", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    Daemon d = {
        .log_level = DEXT_LOG_INFO,
        .listen_fd = -1,
        .sig_fd = -1,
        .reap_fd = -1,
        .spare_fd = -1,
        .handshake_ms = DEXTD_HANDSHAKE_S * 1000,
    };
    const char **specs;
    int nspecs = 0;
    char (*host_specs)[48];
    int nhost = 0;
    ServeState ss = { .d = &d };
    sigset_t mask;
    bool contract_only = false;
    bool no_irq_page = false;
    unsigned long dma_share = DEXT_DMA_SHARE_DEFAULT;
    unsigned policy = 0;
    int status = 1;
    long sock_mode = -1;
    int opt;
    int i;

    specs = calloc((size_t)argc + 1, sizeof(*specs));
    host_specs = calloc((size_t)argc + 1, sizeof(*host_specs));
    ss.allow = calloc((size_t)argc + 1, sizeof(*ss.allow));
    if (specs == NULL || host_specs == NULL || ss.allow == NULL) {
        return 1;
    }
    while ((opt = getopt_long(argc, argv, "s:d:H:l:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            d.path = optarg;
            break;
        case 'G':
            if (!parse_group(optarg, &d.sock_gid)) {
                fprintf(stderr, "dextd: --socket-group '%s': no such group\n",
                        optarg);
                goto usage_error;
            }
            d.group_set = true;
            break;
        case 'M': {
            char *end;
            unsigned long v;

            errno = 0;
            v = strtoul(optarg, &end, 8);
            if (errno != 0 || end == optarg || *end != '\0' || v > 0777 ||
                (v & 0600) != 0600) {
                fprintf(stderr, "dextd: --socket-mode '%s': expected an octal "
                        "mode from 0600 to 0777 (the owner keeps rw)\n",
                        optarg);
                goto usage_error;
            }
            sock_mode = (long)v;
            break;
        }
        case 'd':
            specs[nspecs++] = optarg;
            break;
        case 'H': {
            uint8_t b, dv, f;

            if (strcmp(optarg, "all") == 0) {
                snprintf(host_specs[nhost], sizeof(host_specs[0]), "host");
            } else if (dext_parse_bdf(optarg, &b, &dv, &f)) {
                snprintf(host_specs[nhost], sizeof(host_specs[0]),
                         "host,bdf=%02x:%02x.%x", b, dv, f);
            } else {
                fprintf(stderr, "dextd: --host '%s': expected BB:DD.F, "
                        "0000:BB:DD.F or all (only domain 0000 is served)\n",
                        optarg);
                goto usage_error;
            }
            specs[nspecs++] = host_specs[nhost++];
            break;
        }
        case 'W':
            if (!dext_parse_bdf(optarg, &ss.allow[ss.nallow][0],
                                       &ss.allow[ss.nallow][1],
                                       &ss.allow[ss.nallow][2])) {
                fprintf(stderr, "dextd: --allow-writes '%s': expected one "
                        "device, BB:DD.F or 0000:BB:DD.F\n", optarg);
                goto usage_error;
            }
            ss.nallow++;
            break;
        case 'l':
            d.log_level = parse_level(optarg);
            if (d.log_level < 0) {
                fprintf(stderr, "dextd: unknown log level '%s'\n", optarg);
                goto usage_error;
            }
            break;
        case 'C':
            contract_only = true;
            break;
        case 'I':
            no_irq_page = true;
            break;
        case 'S': {
            char *end;

            errno = 0;
            dma_share = strtoul(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' ||
                dma_share < 1 || dma_share > 100) {
                fprintf(stderr, "dextd: --dma-share '%s': expected a percent, "
                        "1 to 100\n", optarg);
                goto usage_error;
            }
            break;
        }
        case 'U':
            policy |= DEXT_POLICY_UNCLAIMED_WRITES;
            break;
        case 'T': {
            char *end;
            unsigned long v;

            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || v == 0 ||
                v > 3600 || optarg[0] == '-') {
                fprintf(stderr, "dextd: --handshake-timeout '%s': expected "
                        "1 to 3600 seconds\n", optarg);
                goto usage_error;
            }
            d.handshake_ms = (unsigned)v * 1000;
            break;
        }
        case 'h':
            usage(stdout);
            status = 0;
            goto early_exit;
        case 'V':
            printf("dextd (libdext) %s\n", LIBDEXT_VERSION_STRING);
            status = 0;
            goto early_exit;
        default:
            usage(stderr);
            goto usage_error;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dextd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        goto usage_error;
    }
    if (nhost > 0 && geteuid() != 0) {
        fprintf(stderr, "dextd: warning: not running as root: host devices "
                "show only the first 64 bytes of config space\n");
    }
    if (nspecs == 0) {
        specs[nspecs++] = "edu";
    }
    if (d.path == NULL) {
        /* Honours $DEXT_SOCKET first. */
        d.path = dext_wire_default_socket_path();
    }
    d.sock_mode = sock_mode >= 0 ? (mode_t)sock_mode
                                 : d.group_set ? 0660 : 0600;
    d.euid = geteuid();
    d.pid = getpid();
    log_setup(&d);
    clock_gettime(CLOCK_MONOTONIC, &d.start);
    raise_fd_limit();
    {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        d.ring_spinners_max = cpus > 2 ? (unsigned)cpus - 1 : 1;
    }
    dext_mutex_init(&d.lock);

    /*
     * Blocked before any thread exists, so every thread inherits the
     * mask and the signals arrive only through the signalfd.
     */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);           /* logged, nothing else (serve()) */
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    d.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    d.reap_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d.sig_fd < 0 || d.reap_fd < 0) {
        dlog(&d, DEXT_LOG_ERROR, "signalfd/eventfd: %s", strerror(errno));
        goto out;
    }

    d.listen_fd = systemd_listen_fd(&d);
    if (d.listen_fd == -2) {
        d.listen_fd = -1;
        goto out;
    }
    /* Checked again when binding; this just fails fast, before devices. */
    if (!d.activated) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (strlen(d.path) < sizeof(sa.sun_path)) {
            memcpy(sa.sun_path, d.path, strlen(d.path) + 1);
            if (socket_is_live(&sa)) {
                dlog(&d, DEXT_LOG_ERROR, "another dextd is serving %s",
                     d.path);
                goto out;
            }
        }
    }

    d.core = dext_core_new(daemon_log, &d);
    if (d.core == NULL) {
        dlog(&d, DEXT_LOG_ERROR, "cannot create the dext core");
        goto out;
    }
    dext_core_set_contract_only(d.core, contract_only);
    dext_core_set_no_irq_page(d.core, no_irq_page);
    dext_core_set_dma_share(d.core, (uint32_t)dma_share);
    dext_core_set_policy(d.core, policy);
    if (policy & DEXT_POLICY_UNCLAIMED_WRITES) {
        dlog(&d, DEXT_LOG_WARNING, "--unclaimed-writes: clients that have "
             "not claimed a device may write its config space and "
             "registers, map its BARs writable and terminate it; through "
             "the device's DMA they can read and overwrite the memory "
             "every claimer registered");
    }
    for (i = 0; i < nspecs; i++) {
        IOReturn ret;

        /* One spec may name several devices (--host all). */
        ss.spec = specs[i];
        ret = dext_device_create_each(specs[i], serve_device, &ss);
        if (ret != kIOReturnSuccess) {
            if (ss.sink_failed) {
                /* Said already. */
            } else if (ret == kIOReturnBadArgument &&
                       dext_device_bad_option()[0] != '\0') {
                dlog(&d, DEXT_LOG_ERROR, "device '%s': bad option '%s': not "
                     "one this device takes, or a value out of range (see "
                     "dextd(8), DEVICES): %s", specs[i],
                     dext_device_bad_option(), ioreturn_str(ret));
            } else if (dext_device_error()[0] != '\0') {
                dlog(&d, DEXT_LOG_ERROR, "device '%s': %s (%s)", specs[i],
                     dext_device_error(), ioreturn_str(ret));
            } else {
                dlog(&d, DEXT_LOG_ERROR, "device '%s': %s: %s", specs[i],
                     create_error_reason(ret), ioreturn_str(ret));
            }
            goto out;
        }
    }
    /* Only the operator, naming the device, lets writes reach hardware. */
    for (i = 0; i < ss.nallow; i++) {
        if (dext_core_allow_writes(d.core, ss.allow[i][0], ss.allow[i][1],
                                   ss.allow[i][2]) != kIOReturnSuccess) {
            dlog(&d, DEXT_LOG_ERROR, "--allow-writes %02x:%02x.%x: no host "
                 "device at that address is served (add --host %02x:%02x.%x)",
                 ss.allow[i][0], ss.allow[i][1], ss.allow[i][2],
                 ss.allow[i][0], ss.allow[i][1], ss.allow[i][2]);
            goto out;
        }
    }

    /* Kept to be let go of, to answer a client if fds ever run out. */
    d.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if ((!d.activated && listen_setup(&d) < 0) ||
        fd_budget_setup(&d, ss.served) < 0) {
        goto out;
    }
    if (d.log_level >= DEXT_LOG_INFO) {
        dlog_plain(&d, "dextd: serving %u device(s) on %s%s\n", ss.served,
                   d.path, d.activated ? " (socket activated)" : "");
    }
    {
        char state[160];

        snprintf(state, sizeof(state), "READY=1\nSTATUS=serving %u "
                 "device(s) on %s", ss.served, d.path);
        systemd_notify(state);
    }
    status = serve(&d);
    systemd_notify("STOPPING=1");

    /* Stop accepting first, so no channel appears behind our back. */
    listen_cleanup(&d);
    start_shutdown_watchdog(&d, status);
    shutdown_channels(&d);

out:
    listen_cleanup(&d);
    dext_core_free(d.core);
    stop_shutdown_watchdog(&d);
    if (d.sig_fd >= 0) {
        close(d.sig_fd);
    }
    if (d.reap_fd >= 0) {
        close(d.reap_fd);
    }
    if (d.spare_fd >= 0) {
        close(d.spare_fd);
    }
    dext_mutex_destroy(&d.lock);
    free(specs);
    free(host_specs);
    free(ss.allow);
    free(ss.list);
    return status;

usage_error:
    status = 2;
early_exit:
    free(specs);
    free(host_specs);
    free(ss.allow);
    return status;
}
