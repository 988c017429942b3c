/*
 * SPDX-License-Identifier: MIT
 *
 * dextctl: declarations shared by the command-line tool's files.
 *
 * dextctl is written against the public libdext API only
 * (apple-dext-client.h), so it works against any dext a libdext client
 * can reach: dextd, an in-process core, or the real dext on macOS.
 *
 * Every command is a function "int cmd_NAME(Ctl *ctl, int argc, char
 * **argv)" with argv[0] the command name; it returns the process exit
 * status.  Errors are printed through ctl_fail() (a failed device call:
 * the IOReturn code by name and a hint saying what to check) or
 * ctl_usage() (a bad command line).
 */

#ifndef DEXTCTL_H
#define DEXTCTL_H

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "apple-dext-client.h"
#include "json.h"

/* Exit statuses. */
#define CTL_EXIT_OK    0        /* done */
#define CTL_EXIT_FAIL  1        /* a device call or a check failed */
#define CTL_EXIT_USAGE 2        /* the command line is wrong */

/* ctl_option()'s "handled, keep parsing". */
#define CTL_CONTINUE   (-1)

/* What a failed call was doing: picks the hint a person needs. */
typedef enum CtlWhat {
    CTL_WHAT_REACH,             /* listing, status, connecting */
    CTL_WHAT_READ,              /* reading config space or BAR info */
    CTL_WHAT_RAW,               /* reading the raw config view */
    CTL_WHAT_WRITE,             /* writing config space */
    CTL_WHAT_CLAIM,             /* claiming the device */
    CTL_WHAT_MMIO,              /* mapping or accessing a BAR */
    CTL_WHAT_DMA,               /* DMA setup */
    CTL_WHAT_IRQ,               /* interrupt setup and delivery */
    CTL_WHAT_RESET,             /* reset */
} CtlWhat;

/** A PCI function address as the dext reports it (no domain). */
typedef struct CtlBdf {
    uint8_t bus;
    uint8_t dev;
    uint8_t fn;
} CtlBdf;

/** Options and state of one dextctl run. */
typedef struct Ctl {
    const char *target;         /* for libdext; NULL = its default */
    char target_buf[PATH_MAX + 16];
    bool json;                  /* --json */
    bool numeric;               /* -n: numbers instead of names */
    bool verbose;               /* --trace: say what is being done */
    bool verbose_old;           /* --verbose, --trace's deprecated name */
    unsigned detail;            /* -v count: lspci's decoding depth */
    bool detail_wanted;         /* the command decodes with @detail */
    const char *cmd;            /* the command, for messages */
    /* Prints a command's help (dextctl.c's, which knows the commands). */
    bool (*command_help)(const char *name, FILE *f);
    bool have_bdf;              /* @bdf names the command's device */
    CtlBdf bdf;
    JsonWriter jw;              /* --json output on stdout */
} Ctl;

/*
 * Options every command accepts, for getopt_long() tables; short ones
 * go after a command's own in the optstring.
 */
enum {
    CTL_OPT_JSON = 0x100,
    CTL_OPT_SOCKET,
    CTL_OPT_INPROC,
    CTL_OPT_TARGET,
    CTL_OPT_TRACE,
    CTL_OPT_VERBOSE,
};

#define CTL_COMMON_SHORTOPTS "nvh"
#define CTL_COMMON_LONGOPTS                                     \
    { "json", no_argument, NULL, CTL_OPT_JSON },                \
    { "numeric", no_argument, NULL, 'n' },                      \
    { "verbose", no_argument, NULL, CTL_OPT_VERBOSE },          \
    { "trace", no_argument, NULL, CTL_OPT_TRACE },              \
    { "help", no_argument, NULL, 'h' },                         \
    { "socket", required_argument, NULL, CTL_OPT_SOCKET },      \
    { "inproc", required_argument, NULL, CTL_OPT_INPROC },      \
    { "target", required_argument, NULL, CTL_OPT_TARGET }

/**
 * ctl_option() - handle an option every command shares
 * @ctl: the run
 * @opt: getopt_long()'s return value
 * @arg: optarg
 * @argv: the command's argv, for messages about unknown options
 *
 * Return: CTL_CONTINUE if handled; otherwise the exit status to return
 * at once (0 after --help, CTL_EXIT_USAGE for a bad option).
 */
int ctl_option(Ctl *ctl, int opt, const char *arg, char **argv);

/** ctl_getopt_reset() - prepare getopt_long() for a command's argv. */
void ctl_getopt_reset(void);

/**
 * ctl_ready() - finish setting up once a command has parsed its options
 * @ctl: the run (ctl->numeric final)
 */
void ctl_ready(Ctl *ctl);

/**
 * ctl_usage() - report a bad command line
 * @ctl: the run
 * @fmt: printf format of what is wrong, no newline
 *
 * Prints "dextctl: CMD: ..." and where to find help.
 *
 * Return: CTL_EXIT_USAGE.
 */
int ctl_usage(Ctl *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * ctl_fail() - report a failed call with its IOReturn code and a hint
 * @ctl: the run
 * @kr: the code
 * @what: what was being done, to pick the hint
 * @fmt: printf format of the action, e.g. "reading config space"
 *
 * Prints "dextctl: ACTION: kIOReturnX (description)" and, for the codes
 * people meet, a line saying what to check.
 *
 * Return: CTL_EXIT_FAIL.
 */
int ctl_fail(Ctl *ctl, kern_return_t kr, CtlWhat what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * ctl_note() - a remark on stderr that is not an error ("dextctl: ...")
 */
void ctl_note(Ctl *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** ctl_target_name() - the target in use, for messages. */
const char *ctl_target_name(const Ctl *ctl);

/**
 * ctl_parse_bdf() - parse a device address and make it the run's device
 * @ctl: the run
 * @s: "BB:DD.F" or "0000:BB:DD.F", hexadecimal
 *
 * Return: CTL_CONTINUE on success, else CTL_EXIT_USAGE (reported).
 */
int ctl_parse_bdf(Ctl *ctl, const char *s);

/** ctl_bdf_str() - "BB:DD.F" of @bdf in a static buffer. */
const char *ctl_bdf_str(const CtlBdf *bdf);

/**
 * ctl_only_device() - take the one operand of a per-device command
 * @ctl: the invocation
 * @argc: argc of the command, options already parsed (optind past them)
 * @argv: argv of the command
 *
 * The operand must be the device's address and nothing may follow it;
 * then ctl_ready() is called.
 *
 * Return: CTL_CONTINUE, or the exit status of a usage error.
 */
int ctl_only_device(Ctl *ctl, int argc, char **argv);

/**
 * ctl_parse_hex() - a whole-string hexadecimal number, "0x" optional
 * Return: true on success.
 */
bool ctl_parse_hex(const char *s, uint64_t *out);

/**
 * ctl_parse_uint() - a whole-string number: decimal, or hex with "0x"
 * Return: true on success.
 */
bool ctl_parse_uint(const char *s, uint64_t *out);

/**
 * ctl_parse_size() - ctl_parse_uint() with an optional k, M or G suffix
 * (powers of 1024)
 * Return: true on success.
 */
bool ctl_parse_size(const char *s, uint64_t *out);

/**
 * ctl_parse_seconds() - a non-negative decimal number of seconds
 * Return: true on success.
 */
bool ctl_parse_seconds(const char *s, double *out);

/**
 * ctl_parse_width() - an access width: 1, 2, 4, 8 or b, w, l, q
 * @s: the text
 * @max: the widest allowed (4 for config space, 8 for BARs)
 * @out: receives bytes
 *
 * Return: true on success.
 */
bool ctl_parse_width(const char *s, unsigned max, unsigned *out);

/**
 * ctl_connect() - open the run's device
 * @ctl: the run (ctl->bdf set)
 * @claim: also take a share of the claim, which MMIO, DMA, interrupts
 *         and reset need
 * @out: receives the connection
 *
 * Return: CTL_CONTINUE on success, else CTL_EXIT_FAIL (reported).
 */
int ctl_connect(Ctl *ctl, bool claim, io_connect_t *out);

/**
 * ctl_read_config() - read config space, as much as the dext allows
 * @ctl: the run
 * @c: connection
 * @raw: the raw view (BAR registers as the device has them) rather than
 *       what the dext contract shows a client
 * @want: 64, 128, 256 or 4096 bytes
 * @buf: receives the bytes (room for @want)
 * @got: receives how many were read
 *
 * Falls back as lspci does: to 256 bytes when there is no extended
 * space, to the 64-byte header when dextd may read no more (a host
 * device of a dextd not running as root; a note says so).
 *
 * Return: CTL_CONTINUE on success, else CTL_EXIT_FAIL (reported).
 */
int ctl_read_config(Ctl *ctl, io_connect_t c, bool raw, uint32_t want,
                    uint8_t *buf, uint32_t *got);

/**
 * ctl_device_line() - lspci's first line for a device, without newline
 * @ctl: the run (for --numeric)
 * @bdf: the address
 * @domain: prefix the domain "0000:" (lspci -D)
 * @cfg: at least the 64-byte header
 * @buf: receives the line, @len bytes
 * @len: size of @buf
 *
 * Return: @buf.
 */
const char *ctl_device_line(const Ctl *ctl, const CtlBdf *bdf, bool domain,
                            const uint8_t *cfg, char *buf, size_t len);

/** ctl_json_begin() - start the --json document: an object. */
void ctl_json_begin(Ctl *ctl);

/** ctl_json_end() - close the --json document. */
void ctl_json_end(Ctl *ctl);

/**
 * ctl_json_names() - "vendor_name", "device_name" and "class_name" members
 * for the names the PCI ID database has (none with --numeric)
 */
void ctl_json_names(Ctl *ctl, uint16_t vendor, uint16_t device,
                    uint32_t class_code);

/**
 * ctl_info_cmp() - order of two addresses, for qsort() of
 * AppleDextDeviceInfo arrays
 */
int ctl_info_cmp(const void *a, const void *b);

/** ctl_size_str() - "1 MiB", "4 KiB", "100 bytes" in a static buffer. */
const char *ctl_size_str(uint64_t size);

/* The commands. */
int cmd_list(Ctl *ctl, int argc, char **argv);
int cmd_status(Ctl *ctl, int argc, char **argv);
int cmd_info(Ctl *ctl, int argc, char **argv);
int cmd_config(Ctl *ctl, int argc, char **argv);
int cmd_bar(Ctl *ctl, int argc, char **argv);
int cmd_dma_test(Ctl *ctl, int argc, char **argv);
int cmd_irq_watch(Ctl *ctl, int argc, char **argv);
int cmd_reset(Ctl *ctl, int argc, char **argv);
int cmd_selftest(Ctl *ctl, int argc, char **argv);

#endif /* DEXTCTL_H */
