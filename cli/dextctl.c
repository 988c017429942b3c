/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl: see, inspect and exercise the PCI devices a dext serves.
 *
 * main() parses the options that come before the command, picks the
 * command and hands it the rest of the command line; each command (in
 * cmd-*.c) parses its own options, which include the shared ones, so
 * "dextctl --json info 00:03.0" and "dextctl info 00:03.0 --json" mean
 * the same.  Exit status: 0 done, 1 a device call or check failed, 2 a
 * bad command line.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "dextctl.h"
#include "pcicfg.h"
#include "pciids.h"

typedef struct CtlCommand {
    const char *name;
    int (*run)(Ctl *ctl, int argc, char **argv);
    const char *synopsis;       /* after "dextctl NAME " */
    const char *summary;        /* one line for the command list */
    const char *help;           /* the rest of "dextctl NAME --help" */
} CtlCommand;

static const CtlCommand commands[] = {
    {
        "list", cmd_list, "[-s SLOT] [-d ID] [-t] [-k]",
        "every device served: address, IDs, class, names, claimed or not",
        "One line per device the dext serves, in address order: BDF,\n"
        "vendor:device, class code, whether a client holds a claim, and the\n"
        "names lspci would print (from the PCI ID database; -n for numbers\n"
        "only).  Opening each device to ask about claims adds a client for\n"
        "a moment; it is not counted.\n"
        "\n"
        "  -s, --slot [[[DOMAIN]:]BUS]:][SLOT][.[FUNC]]\n"
        "                  only these functions (lspci -s; hex, a field\n"
        "                  empty or * for any)\n"
        "  -d, --id [VENDOR]:[DEVICE][:CLASS[:PROGIF]]\n"
        "                  only these IDs (lspci -d; same wildcards)\n"
        "  -t, --tree      the bus tree as lspci -t draws it, bridges from\n"
        "                  their bus number registers (read through the dext)\n"
        "  -k, --kernel    the kernel driver of each function, from this\n"
        "                  machine's sysfs where a function with the same\n"
        "                  address and IDs exists (host functions; '-' for\n"
        "                  the others; Linux only)\n",
    },
    {
        "status", cmd_status, "",
        "is the dext reachable; its protocol, devices and clients",
        "Whether the dext behind the target answers, its process and wire\n"
        "protocol version, and what it holds: devices, open clients (user\n"
        "clients), claims, DMA regions and buffers, interrupt users, IOMMU\n"
        "faults; then per device its claims and clients.  Exit status 1 if\n"
        "the dext cannot be reached.\n",
    },
    {
        "info", cmd_info, "BDF [--raw]",
        "identity, BARs, capabilities and interrupt vectors of a device",
        "Identity (IDs, class, revision, subsystem, header type, config\n"
        "space size), the BARs as GetBARInfo reports them (index, memory\n"
        "index, I/O or memory, size, prefetchable, 64-bit), the capabilities\n"
        "in config space (power management, MSI, MSI-X with its table size,\n"
        "PCI Express, and the rest by name), and how many interrupt vectors\n"
        "SetupInterrupts would register.\n"
        "\n"
        "  --raw       also show the BAR registers as the device has them\n"
        "              (a client of the dext sees type bits only)\n",
    },
    {
        "config", cmd_config,
        "BDF [-x|-xxx|-xxxx] [--raw] [-D]\n"
        "       dextctl config BDF REGISTER[.b|.w|.l][=VALUE[:MASK]]..."
        " [--raw]",
        "dump config space as lspci -x does, or read/write registers",
        "Without registers: a hex dump of config space in exactly lspci's\n"
        "format (a device line, lines of 16 bytes, a blank line), so that\n"
        "the output of 'dextctl config BDF -xxx --raw' and of\n"
        "'lspci -s BDF -xxx' can be compared with diff.\n"
        "\n"
        "  -x          the 64-byte header (128 bytes for a CardBus bridge)\n"
        "  -xxx        256 bytes (the default)\n"
        "  -xxxx       4096 bytes where the device has extended config space\n"
        "  --raw       the device's real registers, as lspci shows them\n"
        "  -D          print the PCI domain (0000:) as lspci -D does\n"
        "\n"
        "Two views: by default dextctl shows what a dext client sees, where\n"
        "4-byte reads of the BAR registers (0x10-0x24) return only the BAR's\n"
        "type bits (the macOS dext hides DART-assigned addresses).  --raw\n"
        "shows the registers themselves; that view equals lspci's.\n"
        "\n"
        "With registers, in the spirit of setpci: each REGISTER is read (its\n"
        "value printed in hex) or, with =VALUE, written; with :MASK only the\n"
        "bits set in MASK change.  REGISTER is a hex offset or a name, plus\n"
        "an optional +OFFSET; CAP_PM, CAP_MSI, CAP_MSIX, CAP_EXP and\n"
        "CAP_VNDR name the offset of that capability, ECAP_AER, ECAP_DSN,\n"
        "ECAP_SRIOV, ECAP_ACS, ECAP_ARI, ECAP_ATS, ECAP_LTR, ECAP_L1PM,\n"
        "ECAP_PTM, ECAP_DPC, ECAP_REBAR, ECAP_VNDR, ... (setpci's names) or\n"
        "ECAPxxxx (the ID in hex) that of an extended capability.  Offsets and values\n"
        "are hexadecimal; the width (.b 1, .w 2, .l 4 bytes) is needed\n"
        "unless a name implies it.  Registers are done in order.  Names:\n",
    },
    {
        "bar", cmd_bar, "BDF N read|write OFFSET [WIDTH] [VALUE] [--mmio]",
        "read or write a register in a BAR",
        "Claims the device and accesses BAR N (0-5) at OFFSET with WIDTH\n"
        "bytes (1, 2, 4 or 8; default 4): through a mapping of the BAR where\n"
        "it can be mapped, else through the dext's MMIO call (emulated\n"
        "register BARs such as edu's BAR0).  A read prints the value in hex;\n"
        "a write takes VALUE.  OFFSET and VALUE are hexadecimal.\n"
        "\n"
        "  --mmio      always use the MMIO call, never a mapping\n",
    },
    {
        "dma-test", cmd_dma_test, "BDF [--size SIZE] [--dma-buffer]",
        "DMA round trip through edu or ivshmem, verified byte for byte",
        "Drives an edu device (1234:11e8) or an ivshmem device (1af4:1110):\n"
        "fills memory with a pattern, has the device's DMA engine copy it\n"
        "into device memory (edu's 4 KiB buffer; ivshmem's BAR2, up to 1 MiB\n"
        "a chunk) and back into other memory, chunk by chunk, and compares\n"
        "every byte.  Runs longer than a second show progress with the rate\n"
        "and an ETA on stderr, and a warning once the rate says the run\n"
        "takes a minute or more.\n"
        "\n"
        "  --size SIZE     bytes to move (k, M, G suffixes; default 64k)\n"
        "  --dma-buffer    use the dext's DMA buffer (AllocateDMABuffer)\n"
        "                  instead of registering this process's memory\n",
    },
    {
        "irq-watch", cmd_irq_watch, "BDF [--count N] [--timeout SECONDS]",
        "set up interrupts and print each vector as it fires",
        "Claims the device, sets its MSI/MSI-X vectors up and prints a line\n"
        "with a timestamp and the vector number for every interrupt, until\n"
        "interrupted (Ctrl-C), N interrupts have arrived, or SECONDS have\n"
        "passed.  Interrupts that fire again before they are printed show\n"
        "once (the dext coalesces them).  With --json, one JSON object per\n"
        "line.\n"
        "\n"
        "  --count N           stop after N interrupts\n"
        "  --timeout SECONDS   stop after SECONDS (e.g. 2.5)\n",
    },
    {
        "reset", cmd_reset, "BDF",
        "reset the device (function-level reset, else a hot reset)",
        "Claims the device and resets it.  The command register, BARs and\n"
        "MSI/MSI-X setup are restored afterwards.\n",
    },
    {
        "selftest", cmd_selftest, "BDF [--reset]",
        "check the dext against its contract (the first run on a Mac)",
        "Runs the user-client contract's checks against the device's dext:\n"
        "identity, config reads of each width, the six BARs, the claim, a\n"
        "private and a shared file mapping registered for DMA (the dext must\n"
        "see what the client writes after registering), interrupt setup,\n"
        "mask and check.  Each line names the rule it verifies.  Writes\n"
        "nothing to the device; exits 1 if any check fails.\n"
        "\n"
        "  --reset             also reset the device (ResetDevice)\n",
    },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char common_help[] =
    "Options for every command:\n"
    "  --json            machine-readable output (JSON)\n"
    "  -n, --numeric     numeric IDs only, no names (as lspci -n)\n"
    "  -v, -vv           info: decode config space as lspci -v, -vv do\n"
    "  --trace           say what is being done, show libdext's messages\n"
    "                    (was -v, --verbose: deprecated, still accepted)\n"
    "  --socket PATH     talk to the dextd listening on PATH\n"
    "                    (default: $DEXT_SOCKET, else dextd's default)\n"
    "  --inproc DEVICES  no daemon: run a dext core in dextctl serving\n"
    "                    DEVICES, e.g. edu, edu+edu,bdf=00:04.0,\n"
    "                    host,bdf=00:01.0, host (every PCI function)\n"
    "  --target TARGET   any libdext target: unix:PATH, inproc:DEVICES,\n"
    "                    iokit (default: $DEXT_TARGET, else the socket)\n"
    "  -h, --help        this help\n";

static const CtlCommand *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static void main_help(FILE *f)
{
    fputs("Usage: dextctl [OPTION]... COMMAND [ARG]...\n"
          "See, inspect and exercise the PCI devices a VFIOUserPCIDriver "
          "dext serves\n"
          "(dextd, an in-process dext, or the real dext on macOS).\n\n"
          "Commands:\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fputs("  help CMD   the help of a command\n\n", f);
    fputs(common_help, f);
    fputs("\nBDF is a device address as lspci shows it, e.g. 00:03.0.\n"
          "Exit status: 0 done, 1 a device call or check failed, 2 a bad "
          "command line.\n"
          "See dextctl(1) and dextd(8).\n", f);
}

/* A command's help, or the main help for NULL or an unknown @name. */
static bool ctl_command_help(const char *name, FILE *f)
{
    const CtlCommand *c = name ? find_command(name) : NULL;

    if (c == NULL) {
        main_help(f);
        return name == NULL;
    }
    /* The summary, a list entry, begins a sentence here. */
    fprintf(f, "Usage: dextctl %s%s%s\n%c%s.\n\n%s", c->name,
            c->synopsis[0] ? " " : "", c->synopsis,
            toupper((unsigned char)c->summary[0]), c->summary + 1, c->help);
    if (strcmp(c->name, "config") == 0) {
        pcicfg_registers_help(f);
    }
    fprintf(f, "\n%s", common_help);
    return true;
}

/* libdext's own diagnostics, shown with --trace only: ours say it better. */
static void library_log(void *opaque, int level, const char *msg)
{
    const Ctl *ctl = opaque;

    if (ctl->verbose) {
        fprintf(stderr, "dextctl: libdext: %s\n", msg);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        CTL_COMMON_LONGOPTS,
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    Ctl ctl = { 0 };
    const CtlCommand *c;
    int opt, rc;

    /* "+": stop at the command; what follows is the command's. */
    ctl_getopt_reset();
    while ((opt = getopt_long(argc, argv, "+:" CTL_COMMON_SHORTOPTS "V",
                              opts, NULL)) != -1) {
        if (opt == 'h') {
            main_help(stdout);
            return CTL_EXIT_OK;
        }
        if (opt == 'V') {
            printf("dextctl (libdext) %s\nPCI names: %s\n",
                   LIBDEXT_VERSION_STRING, pciids_source());
            return CTL_EXIT_OK;
        }
        rc = ctl_option(&ctl, opt, optarg, argv);
        if (rc != CTL_CONTINUE) {
            return rc;
        }
    }
    if (optind >= argc) {
        fputs("Usage: dextctl [OPTION]... COMMAND [ARG]...\n"
              "Commands: list status info config bar dma-test irq-watch "
              "reset help\n"
              "Try 'dextctl --help'.\n", stderr);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(argv[optind], "help") == 0) {
        const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;

        if (name != NULL && find_command(name) == NULL) {
            return ctl_usage(&ctl, "no command '%s'", name);
        }
        ctl_command_help(name, stdout);
        return CTL_EXIT_OK;
    }
    c = find_command(argv[optind]);
    if (c == NULL) {
        return ctl_usage(&ctl, "no command '%s'", argv[optind]);
    }
    ctl.cmd = c->name;
    ctl.command_help = ctl_command_help;
    apple_dext_set_log_handler(library_log, &ctl);

    rc = c->run(&ctl, argc - optind, argv + optind);

    apple_dext_set_log_handler(NULL, NULL);
    pciids_fini();
    /* Output that did not get out is a failure too (a full disk, say). */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "dextctl: writing the output failed\n");
        return CTL_EXIT_FAIL;
    }
    return rc;
}
