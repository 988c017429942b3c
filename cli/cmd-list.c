/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl list: every device the dext serves, with lspci's habits: -s and
 * -d filters in lspci's syntax, -t the bus tree (from the bridges' bus
 * number registers, read through the dext), -k the kernel driver of a
 * host function (from this machine's sysfs).
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dextctl.h"
#include "libdext/pci-regs.h"
#include "pciids.h"

/* DEXT_MAX_SERVICES of the transports: a list holds no more. */
#define LIST_MAX 256

/* Where -k looks for drivers; DEXTCTL_SYSFS overrides it (tests). */
#define LIST_SYSFS_DEFAULT "/sys/bus/pci/devices"

typedef struct ListRow {
    AppleDextDeviceInfo info;
    bool known;                 /* claim state could be read */
    uint32_t claims;
    uint32_t clients;           /* not counting our own look */
    bool have_hdr;              /* @hdr could be read (-t) */
    uint8_t hdr[4];             /* header type, primary, secondary, subordinate */
    char driver[64];            /* -k: "" when none or unknown */
} ListRow;

/*
 * lspci's filters: -s [[[DOMAIN]:]BUS]:][SLOT][.[FUNC]] and
 * -d [VENDOR]:[DEVICE][:CLASS[:PROGIF]], each field hex, empty or "*"
 * for any (-1 here).
 */
typedef struct ListFilter {
    long domain, bus, slot, func;
    long vendor, device, cls, progif;
} ListFilter;

typedef struct ListOpts {
    ListFilter filter;
    bool filtered;
    bool tree;                  /* -t */
    bool kernel;                /* -k */
    const char *sysfs;          /* -k's sysfs device directory */
} ListOpts;

/* One field of a filter, [start, end): empty or "*" is any (-1). */
static bool filter_field(const char *start, const char *end, long max,
                         long *out)
{
    long v = 0;

    if (start == end || (end - start == 1 && *start == '*')) {
        *out = -1;
        return true;
    }
    for (const char *p = start; p < end; p++) {
        int d = *p >= '0' && *p <= '9' ? *p - '0'
              : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
              : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;

        if (d < 0 || v > max) {
            return false;
        }
        v = v * 16 + d;
    }
    if (v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* -s as lspci takes it. */
static bool filter_slot(const char *s, ListFilter *f)
{
    const char *c1 = strchr(s, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    const char *rest = s, *dot;

    f->domain = f->bus = -1;
    if (c2 != NULL) {
        if (strchr(c2 + 1, ':') != NULL ||
            !filter_field(s, c1, 0x7fffffff, &f->domain) ||
            !filter_field(c1 + 1, c2, 0xff, &f->bus)) {
            return false;
        }
        rest = c2 + 1;
    } else if (c1 != NULL) {
        if (!filter_field(s, c1, 0xff, &f->bus)) {
            return false;
        }
        rest = c1 + 1;
    }
    dot = strchr(rest, '.');
    if (dot == NULL) {
        f->func = -1;
        return filter_field(rest, rest + strlen(rest), 0x1f, &f->slot);
    }
    return filter_field(rest, dot, 0x1f, &f->slot) &&
           filter_field(dot + 1, dot + 1 + strlen(dot + 1), 7, &f->func);
}

/* -d as lspci takes it. */
static bool filter_id(const char *s, ListFilter *f)
{
    static const long max[] = { 0xffff, 0xffff, 0xffff, 0xff };
    long *field[] = { &f->vendor, &f->device, &f->cls, &f->progif };
    const char *p = s;
    int i;

    if (strchr(s, ':') == NULL) {
        return false;
    }
    for (i = 0; i < 4; i++) {
        const char *end = strchr(p, ':');

        if (end == NULL) {
            end = p + strlen(p);
        }
        if (!filter_field(p, end, max[i], field[i])) {
            return false;
        }
        if (*end == '\0') {
            break;
        }
        p = end + 1;
    }
    return i < 4;
}

static bool filter_match(const ListFilter *f, const AppleDextDeviceInfo *d)
{
    /* The dext knows domain 0 only. */
    return (f->domain < 0 || f->domain == 0) &&
           (f->bus < 0 || f->bus == d->bus) &&
           (f->slot < 0 || f->slot == d->device) &&
           (f->func < 0 || f->func == d->function) &&
           (f->vendor < 0 || f->vendor == d->vendor_id) &&
           (f->device < 0 || f->device == d->device_id) &&
           (f->cls < 0 || f->cls == (long)(d->class_code >> 8)) &&
           (f->progif < 0 || f->progif == (long)(d->class_code & 0xff));
}

/*
 * -k: the driver bound to the function at this address in this machine's
 * sysfs, if sysfs shows a function there with the same IDs (a dext
 * serving an emulated device or a recording at a host address must not
 * borrow the host's driver).
 */
static void list_driver(const ListOpts *o, ListRow *row)
{
    char path[PATH_MAX], target[PATH_MAX];
    unsigned vendor = 0, device = 0;
    const char *base;
    ssize_t n;
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "%s/0000:%02x:%02x.%x/vendor", o->sysfs,
             row->info.bus, row->info.device, row->info.function);
    f = fopen(path, "re");
    if (f == NULL) {
        return;
    }
    ok = fscanf(f, "%x", &vendor) == 1;
    fclose(f);
    snprintf(path, sizeof(path), "%s/0000:%02x:%02x.%x/device", o->sysfs,
             row->info.bus, row->info.device, row->info.function);
    f = fopen(path, "re");
    if (f == NULL) {
        return;
    }
    ok = ok && fscanf(f, "%x", &device) == 1;
    fclose(f);
    if (!ok || vendor != row->info.vendor_id ||
        device != row->info.device_id) {
        return;
    }
    snprintf(path, sizeof(path), "%s/0000:%02x:%02x.%x/driver", o->sysfs,
             row->info.bus, row->info.device, row->info.function);
    n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0) {
        return;
    }
    target[n] = '\0';
    base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (strlen(base) < sizeof(row->driver)) {
        memcpy(row->driver, base, strlen(base) + 1);
    }
}

/*
 * Ask the device itself about claims (and, for -t, its header type and
 * bus numbers); quietly unknown if it cannot say.
 */
static void list_claims(Ctl *ctl, ListRow *row, bool tree)
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
    if (tree) {
        uint8_t b[4];

        /* The header type at 0x0e; primary, secondary, subordinate bus. */
        if (apple_dext_config_read_block(c, DEXT_PCI_HEADER_TYPE, b, 1) ==
                kIOReturnSuccess &&
            apple_dext_config_read_block(c, DEXT_PCI_PRIMARY_BUS, b + 1, 3) ==
                kIOReturnSuccess) {
            memcpy(row->hdr, b, sizeof(row->hdr));
            row->have_hdr = true;
        }
    }
    apple_dext_disconnect(c);
}

/* ------------------------------------------------------------------ */
/* -t: the bus tree, drawn as lspci -t draws it                         */

/* Deepest nesting drawn; a bridge loop in bogus registers stops here. */
#define TREE_DEPTH_MAX 32
#define TREE_LINE_MAX  4096

/*
 * A bridge: the host (index 0, buses 00-ff, no function) or a function
 * with a type 1 or 2 header of the bridge class.  Its parent is the
 * bridge with the narrowest bus range holding the bus the function sits
 * on.
 */
typedef struct TreeBridge {
    int row;                    /* -1 for the host */
    uint8_t secondary, subordinate;
    int parent;
} TreeBridge;

/* A bus under a bridge, in the order the tree meets them. */
typedef struct TreeBus {
    uint8_t number;
    int bridge;
} TreeBus;

typedef struct Tree {
    const ListRow *rows;
    uint32_t nrows;
    TreeBridge *bridges;
    int nbridges;
    TreeBus *buses;
    int nbuses;
    int *row_bus;               /* the bus each row sits on */
    int *row_bridge;            /* the bridge a row is, or -1 */
    char line[TREE_LINE_MAX];
} Tree;

static int tree_find_bus(const Tree *t, int bridge, uint8_t number)
{
    for (int i = 0; i < t->nbuses; i++) {
        if (t->buses[i].bridge == bridge && t->buses[i].number == number) {
            return i;
        }
    }
    return -1;
}

static int tree_add_bus(Tree *t, int bridge, uint8_t number)
{
    t->buses[t->nbuses].number = number;
    t->buses[t->nbuses].bridge = bridge;
    return t->nbuses++;
}

/* The bus of @bridge, or of a bridge below it, that row @r sits on. */
static int tree_place(Tree *t, int bridge, uint32_t r, int depth)
{
    uint8_t bus = t->rows[r].info.bus;
    int b = tree_find_bus(t, bridge, bus);

    if (b >= 0) {
        return b;
    }
    for (int c = 1; depth < TREE_DEPTH_MAX && c < t->nbridges; c++) {
        if (t->bridges[c].parent == bridge &&
            t->bridges[c].secondary <= bus &&
            bus <= t->bridges[c].subordinate) {
            return tree_place(t, c, r, depth + 1);
        }
    }
    return tree_add_bus(t, bridge, bus);
}

/* Print the line up to @end, then keep only its vertical bars. */
static void tree_emit(Tree *t, char *end)
{
    fwrite(t->line, 1, (size_t)(end - t->line), stdout);
    putchar('\n');
    for (char *p = t->line; p < end; p++) {
        *p = *p == '+' || *p == '|' ? '|' : ' ';
    }
}

/* Room for one more level of drawing at @p. */
static bool tree_room(const Tree *t, const char *p)
{
    return p - t->line < TREE_LINE_MAX - 64;
}

static void tree_bridge(Tree *t, int bridge, char *p, int depth);

static void tree_dev(Tree *t, uint32_t r, char *p, int depth)
{
    const AppleDextDeviceInfo *d = &t->rows[r].info;
    int b = t->row_bridge[r];

    p += sprintf(p, "%02x.%x", d->device, d->function);
    if (b >= 0 && depth < TREE_DEPTH_MAX && tree_room(t, p)) {
        const TreeBridge *tb = &t->bridges[b];

        if (tb->secondary == tb->subordinate) {
            p += sprintf(p, "-[%02x]-", tb->secondary);
        } else {
            p += sprintf(p, "-[%02x-%02x]-", tb->secondary, tb->subordinate);
        }
        tree_bridge(t, b, p, depth + 1);
        return;
    }
    tree_emit(t, p);
}

static void tree_bus(Tree *t, int bus, char *p, int depth)
{
    uint32_t last = t->nrows, count = 0;

    for (uint32_t r = 0; r < t->nrows; r++) {
        if (t->row_bus[r] == bus) {
            last = r;
            count++;
        }
    }
    if (count == 0) {
        tree_emit(t, p);
        return;
    }
    if (count == 1) {
        p[0] = '-';
        p[1] = '-';
        tree_dev(t, last, p + 2, depth);
        return;
    }
    for (uint32_t r = 0; r < t->nrows; r++) {
        if (t->row_bus[r] == bus) {
            p[0] = r == last ? '\\' : '+';
            p[1] = '-';
            tree_dev(t, r, p + 2, depth);
        }
    }
}

static void tree_bridge(Tree *t, int bridge, char *p, int depth)
{
    int first = -1, count = 0;

    *p++ = '-';
    /* Buses in reverse order of meeting them: the secondary bus last. */
    for (int i = t->nbuses - 1; i >= 0; i--) {
        if (t->buses[i].bridge == bridge) {
            first = first < 0 ? i : first;
            count++;
        }
    }
    if (count == 1) {
        if (bridge == 0) {
            p += sprintf(p, "[0000:%02x]-", t->buses[first].number);
        }
        tree_bus(t, first, p, depth);
        return;
    }
    for (int i = t->nbuses - 1; i >= 0; i--) {
        if (t->buses[i].bridge == bridge) {
            char *k = p + sprintf(p, "%s-[0000:%02x]-",
                                  --count == 0 ? "\\" : "+",
                                  t->buses[i].number);

            tree_bus(t, i, k, depth);
        }
    }
}

static int list_tree(Ctl *ctl, const ListRow *rows, uint32_t n)
{
    Tree *t = calloc(1, sizeof(*t));
    int rc = CTL_EXIT_OK;

    if (t == NULL) {
        return ctl_fail(ctl, kIOReturnNoMemory, CTL_WHAT_READ, "the tree");
    }
    t->rows = rows;
    t->nrows = n;
    t->bridges = calloc(n + 1, sizeof(*t->bridges));
    t->buses = calloc(2 * (size_t)n + 1, sizeof(*t->buses));
    t->row_bus = calloc(n + 1, sizeof(*t->row_bus));
    t->row_bridge = calloc(n + 1, sizeof(*t->row_bridge));
    if (t->bridges == NULL || t->buses == NULL || t->row_bus == NULL ||
        t->row_bridge == NULL) {
        rc = ctl_fail(ctl, kIOReturnNoMemory, CTL_WHAT_READ, "the tree");
        goto out;
    }
    t->bridges[0] = (TreeBridge){ -1, 0x00, 0xff, -1 };
    t->nbridges = 1;
    for (uint32_t r = 0; r < n; r++) {
        uint8_t ht = rows[r].hdr[0] & 0x7f;

        t->row_bridge[r] = -1;
        if (rows[r].have_hdr &&
            rows[r].info.class_code >> 16 == DEXT_PCI_CLASS_BRIDGE &&
            (ht == 1 || ht == 2)) {
            t->row_bridge[r] = t->nbridges;
            t->bridges[t->nbridges++] = (TreeBridge){
                (int)r, rows[r].hdr[2], rows[r].hdr[3], 0 };
        }
    }
    for (int b = 1; b < t->nbridges; b++) {
        uint8_t bus = rows[t->bridges[b].row].info.bus;
        int best = 0;

        for (int c = 1; c < t->nbridges; c++) {
            const TreeBridge *tc = &t->bridges[c];

            if (c != b && tc->secondary <= bus && bus <= tc->subordinate &&
                tc->subordinate - tc->secondary <
                    t->bridges[best].subordinate - t->bridges[best].secondary) {
                best = c;
            }
        }
        t->bridges[b].parent = best;
    }
    /* Every bridge's secondary bus exists, devices or not. */
    for (int b = 0; b < t->nbridges; b++) {
        tree_add_bus(t, b, t->bridges[b].secondary);
    }
    for (uint32_t r = 0; r < n; r++) {
        t->row_bus[r] = tree_place(t, 0, r, 0);
    }
    tree_bridge(t, 0, t->line, 0);
out:
    free(t->bridges);
    free(t->buses);
    free(t->row_bus);
    free(t->row_bridge);
    free(t);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The table                                                            */

static void list_json(Ctl *ctl, const ListOpts *o, const ListRow *rows,
                      uint32_t n)
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
        if (o->kernel) {
            if (rows[i].driver[0] != '\0') {
                json_kv_string(&ctl->jw, "driver", rows[i].driver);
            } else {
                json_key(&ctl->jw, "driver");
                json_null(&ctl->jw);
            }
        }
        json_end_object(&ctl->jw);
    }
    json_end_array(&ctl->jw);
    ctl_json_end(ctl);
}

static void list_text(Ctl *ctl, const ListOpts *o, const ListRow *rows,
                      uint32_t n)
{
    if (n == 0) {
        printf(o->filtered ? "No device served by '%s' matches.\n"
                           : "No devices are served by '%s'.\n",
               ctl_target_name(ctl));
        return;
    }
    /* Columns padded only where another follows. */
    printf("BDF      ID         CLASS   CLAIMED%s%s\n",
           !o->kernel ? "" : ctl->numeric ? "  DRIVER" : "  DRIVER      ",
           ctl->numeric ? "" : "  DEVICE");
    for (uint32_t i = 0; i < n; i++) {
        const AppleDextDeviceInfo *d = &rows[i].info;
        CtlBdf bdf = { d->bus, d->device, d->function };
        const char *claimed = !rows[i].known ? "?" :
                              rows[i].claims > 0 ? "yes" : "no";

        printf("%-7s  %04x:%04x  %06x  ", ctl_bdf_str(&bdf), d->vendor_id,
               d->device_id, d->class_code);
        printf(o->kernel || !ctl->numeric ? "%-7s  " : "%s", claimed);
        if (o->kernel) {
            printf(ctl->numeric ? "%s" : "%-12s  ",
                   rows[i].driver[0] ? rows[i].driver : "-");
        }
        if (!ctl->numeric) {
            char cls[PCIIDS_NAME_MAX], dev[PCIIDS_NAME_MAX];

            printf("%s: %s", pciids_class(d->class_code, cls, sizeof(cls)),
                   pciids_device(d->vendor_id, d->device_id, dev,
                                 sizeof(dev)));
        }
        putchar('\n');
    }
}

int cmd_list(Ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        CTL_COMMON_LONGOPTS,
        { "slot", required_argument, NULL, 's' },
        { "id", required_argument, NULL, 'd' },
        { "tree", no_argument, NULL, 't' },
        { "kernel", no_argument, NULL, 'k' },
        { NULL, 0, NULL, 0 },
    };
    AppleDextDeviceInfo devs[LIST_MAX];
    ListOpts o;
    ListRow *rows;
    uint32_t n = 0, kept = 0;
    kern_return_t kr;
    int opt, rc;

    memset(&o, 0, sizeof(o));
    memset(&o.filter, 0xff, sizeof(o.filter));      /* every field: any */
    o.sysfs = getenv("DEXTCTL_SYSFS");
    if (o.sysfs == NULL || *o.sysfs == '\0') {
        o.sysfs = LIST_SYSFS_DEFAULT;
    }
    ctl_getopt_reset();
    while ((opt = getopt_long(argc, argv, ":s:d:tk" CTL_COMMON_SHORTOPTS,
                              opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (!filter_slot(optarg, &o.filter)) {
                return ctl_usage(ctl, "-s '%s': not [[[DOMAIN]:]BUS]:]"
                                 "[SLOT][.[FUNC]] in hex", optarg);
            }
            o.filtered = true;
            break;
        case 'd':
            if (!filter_id(optarg, &o.filter)) {
                return ctl_usage(ctl, "-d '%s': not [VENDOR]:[DEVICE]"
                                 "[:CLASS[:PROGIF]] in hex", optarg);
            }
            o.filtered = true;
            break;
        case 't':
            o.tree = true;
            break;
        case 'k':
            o.kernel = true;
            break;
        default:
            rc = ctl_option(ctl, opt, optarg, argv);
            if (rc != CTL_CONTINUE) {
                return rc;
            }
        }
    }
    if (optind < argc) {
        return ctl_usage(ctl, "unexpected argument '%s'", argv[optind]);
    }
    if (o.tree && (ctl->json || o.kernel)) {
        return ctl_usage(ctl, "-t draws a tree: not with --json or -k");
    }
    ctl_ready(ctl);
    if (o.kernel && access(o.sysfs, F_OK) != 0) {
        ctl_note(ctl, "-k: no PCI sysfs here (%s): kernel drivers are "
                 "shown for host functions on Linux only", o.sysfs);
    }

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
        if (filter_match(&o.filter, &devs[i])) {
            rows[kept++].info = devs[i];
        }
    }
    n = kept;
    qsort(rows, n, sizeof(*rows), ctl_info_cmp);
    for (uint32_t i = 0; i < n; i++) {
        list_claims(ctl, &rows[i], o.tree);
        if (o.kernel) {
            list_driver(&o, &rows[i]);
        }
    }
    if (o.tree) {
        rc = list_tree(ctl, rows, n);
    } else if (ctl->json) {
        list_json(ctl, &o, rows, n);
        rc = CTL_EXIT_OK;
    } else {
        list_text(ctl, &o, rows, n);
        rc = CTL_EXIT_OK;
    }
    free(rows);
    return rc;
}
