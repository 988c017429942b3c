/*
 * SPDX-License-Identifier: MIT
 *
 * nvme-identify: a small user-space NVMe driver on the public libdext API
 * only.  It brings up the admin queue pair of an NVMe controller, sends
 * one Identify Controller command and prints what the controller says of
 * itself, then shuts the controller down and gives everything back.
 *
 *   nvme-identify [--target TARGET] [--poll] [--expect-serial S] [-v] [BDF]
 *
 * Without a BDF the first device of class 0x010802 (NVM Express I/O
 * controller) that the target lists is used.  The steps, each checked:
 *
 *   connect, check the class code, claim
 *   BAR0: map it, or reach it through MMIO calls where the dext will not
 *         map it (both paths share the register helpers below)
 *   CAP:  MQES, DSTRD, TO, NVM command set, MPSMIN <= 4 KiB
 *   disable (CC.EN = 0, wait CSTS.RDY = 0 within CAP.TO)
 *   DMA:  admin SQ, admin CQ and the 4 KiB identify buffer, one page each,
 *         in the dext's DMA buffer (or in registered shared memory)
 *   MSI/MSI-X: set up before the enable, since the admin CQ, created at
 *         CC.EN = 1, uses vector 0; a pollable notification fd
 *   AQA/ASQ/ACQ with the bus addresses the dext hands out, CC, enable,
 *         wait CSTS.RDY = 1 within CAP.TO, checking CSTS.CFS
 *   Identify Controller (opcode 06h, CNS 01h), SQ0 tail doorbell, wait
 *         for the interrupt (polling the CQ phase bit as a fallback),
 *         CQ0 head doorbell, completion status
 *   shutdown (CC.SHN = 01b, wait CSTS.SHST = 10b), disable, free, disconnect
 *
 * Register layout and bits: NVM Express Base Specification (revision 1.4
 * and 2.0 agree on everything used here), "Controller Registers" /
 * "Controller Properties"; the doorbells and MSI-X use are those of the
 * PCIe transport.
 *
 * Exit status: 0 success, 1 any failure (also a serial that differs from
 * --expect-serial), 2 usage.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "apple-dext-client.h"

/* PCI class code of an NVM Express I/O controller */
#define PCI_CLASS_NVME          0x010802u

/* PCI config space */
#define PCI_COMMAND             0x04
#define   PCI_COMMAND_MEMORY      0x2
#define   PCI_COMMAND_MASTER      0x4
#define PCI_STATUS              0x06
#define   PCI_STATUS_CAP_LIST     0x10
#define PCI_CAPABILITY_LIST     0x34
#define PCI_CAP_ID_MSI          0x05
#define PCI_CAP_ID_MSIX         0x11

/* NVMe controller registers (BAR0) */
#define NVME_REG_CAP            0x00    /* 64 bits */
#define NVME_REG_VS             0x08
#define NVME_REG_CC             0x14
#define NVME_REG_CSTS           0x1c
#define NVME_REG_AQA            0x24
#define NVME_REG_ASQ            0x28    /* 64 bits */
#define NVME_REG_ACQ            0x30    /* 64 bits */
#define NVME_REG_DBS            0x1000  /* SQ0TDBL; CQ0HDBL one stride on */

/* CAP fields */
#define CAP_MQES(cap)           ((uint32_t)((cap) & 0xffff))        /* 15:0 */
#define CAP_TO(cap)             ((uint32_t)(((cap) >> 24) & 0xff))  /* 31:24 */
#define CAP_DSTRD(cap)          ((uint32_t)(((cap) >> 32) & 0xf))   /* 35:32 */
#define CAP_CSS(cap)            ((uint32_t)(((cap) >> 37) & 0xff))  /* 44:37 */
#define   CAP_CSS_NVM             0x01
#define CAP_MPSMIN(cap)         ((uint32_t)(((cap) >> 48) & 0xf))   /* 51:48 */
#define CAP_MPSMAX(cap)         ((uint32_t)(((cap) >> 52) & 0xf))   /* 55:52 */

/* CC fields */
#define CC_EN                   (1u << 0)
#define CC_CSS_NVM              (0u << 4)       /* 6:4 */
#define CC_MPS(shift)           ((uint32_t)((shift) - 12) << 7)     /* 10:7 */
#define CC_AMS_RR               (0u << 11)      /* 13:11 */
#define CC_SHN_MASK             (3u << 14)      /* 15:14 */
#define CC_SHN_NORMAL           (1u << 14)
#define CC_IOSQES(log2)         ((uint32_t)(log2) << 16)            /* 19:16 */
#define CC_IOCQES(log2)         ((uint32_t)(log2) << 20)            /* 23:20 */

/* CSTS fields */
#define CSTS_RDY                (1u << 0)
#define CSTS_CFS                (1u << 1)
#define CSTS_SHST_MASK          (3u << 2)       /* 3:2 */
#define CSTS_SHST_COMPLETE      (2u << 2)

/* AQA: ACQS 27:16, ASQS 11:0, both 0's based */
#define AQA(sq, cq)             ((((uint32_t)(cq) - 1) << 16) | \
                                 ((uint32_t)(sq) - 1))

/* Queue entries: 64-byte submission (2^6), 16-byte completion (2^4) */
#define SQE_LOG2                6
#define CQE_LOG2                4
#define SQE_SIZE                (1u << SQE_LOG2)
#define CQE_SIZE                (1u << CQE_LOG2)

/* Admin command: Identify */
#define NVME_ADM_IDENTIFY       0x06
#define NVME_ID_CNS_CTRL        0x01
#define IDENTIFY_CID            0x0001

/* Identify Controller data structure */
#define ID_VID                  0       /* 1:0 */
#define ID_SSVID                2       /* 3:2 */
#define ID_SN                   4       /* 23:4 */
#define ID_SN_LEN               20
#define ID_MN                   24      /* 63:24 */
#define ID_MN_LEN               40
#define ID_FR                   64      /* 71:64 */
#define ID_FR_LEN               8
#define ID_RTD3E                88      /* 91:88, microseconds */

/* Our memory: one 4 KiB page each, the controller's page size (MPS 0) */
#define PAGE_4K                 4096u
#define DMA_SQ                  (0 * PAGE_4K)
#define DMA_CQ                  (1 * PAGE_4K)
#define DMA_ID                  (2 * PAGE_4K)
#define DMA_SIZE                (3 * PAGE_4K)
#define DMA_KEY                 UINT64_C(0x10000000)  /* our region's key */
#define QUEUE_DEPTH_MAX         16u     /* admin SQ and CQ entries */

#define IDENTIFY_TIMEOUT_MS     10000   /* TCG emulation is slow */
#define IRQ_POLL_SLICE_MS       100     /* how often to look at the CQ */
#define IRQ_GRACE_MS            1000    /* for an interrupt after its CQE */
#define SHUTDOWN_MIN_MS         5000
#define SHUTDOWN_MAX_MS         60000

static const char *prog = "nvme-identify";

typedef enum DmaKind {
    DMA_NONE,
    DMA_BUFFER,             /* the dext's DMA buffer, mapped */
    DMA_REGISTERED,         /* our shared memory, registered */
} DmaKind;

typedef struct Nvme {
    io_connect_t conn;
    bool verbose;

    /* BAR0: mapped, or reached through MMIO calls when bar is NULL */
    uint8_t mem_idx;
    uint64_t bar_size;
    volatile uint8_t *bar;
    mach_vm_size_t bar_map_size;

    /* from CAP */
    uint64_t cap;
    uint32_t to_ms;
    uint32_t db_stride;
    uint32_t qdepth;

    /* DMA memory: admin SQ, admin CQ, identify data */
    DmaKind dma_kind;
    uint8_t *dma;
    uint64_t dma_bus;
    uint64_t dma_map_size;

    /* interrupts; irq_fd < 0 means polling */
    bool irqs_set_up;
    uint32_t nvectors;
    AppleDextInterruptNotify *notify;
    int irq_fd;
    bool irq_seen;

    /* queue state */
    bool enabled;           /* CC.EN was set by us */
    bool ready;             /* ... and CSTS.RDY followed */
    bool dead;              /* CFS or a failed register access */
    uint32_t sq_tail;
    uint32_t cq_head;
    uint32_t cq_phase;
} Nvme;

/* ------------------------------------------------------------------ */
/* Messages                                                             */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static bool fail_kr(kern_return_t kr, const char *what)
{
    fail("%s: %s", what, apple_dext_strerror(kr));
    return false;
}

/* With -v: what the library says (its causes of failure we print anyway). */
static void log_handler(void *opaque, int level, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "libdext[%d]: %s\n", level, msg);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000,
                           .tv_nsec = (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* the rest of the interval is in ts */
    }
}

/* ------------------------------------------------------------------ */
/* Memory shared with the controller: little-endian, with barriers      */

static inline uint32_t cpu_to_le32(uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap32(v);
#else
    return v;
#endif
}
#define le32_to_cpu cpu_to_le32

static void st_le32(volatile uint8_t *p, uint32_t v)
{
    *(volatile uint32_t *)p = cpu_to_le32(v);
}

static void st_le64(volatile uint8_t *p, uint64_t v)
{
    st_le32(p, (uint32_t)v);
    st_le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t ld_le32(const volatile uint8_t *p)
{
    return le32_to_cpu(*(const volatile uint32_t *)p);
}

static uint16_t ld_le16(const volatile uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Our stores to the queue reach memory before the doorbell write. */
static inline void barrier_before_doorbell(void)
{
#if defined(__aarch64__)
    __asm__ volatile("dsb st" ::: "memory");
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

/* The rest of a completion entry is read after its phase bit. */
static inline void barrier_after_phase(void)
{
#if defined(__aarch64__)
    __asm__ volatile("dmb oshld" ::: "memory");
#else
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
}

/* ------------------------------------------------------------------ */
/* Register access: plain loads and stores on a mapped BAR0, else the   */
/* dext's MMIO calls.  64-bit registers are two 32-bit accesses, low    */
/* half first, which the specification allows and every path supports. */

static const char *reg_name(uint64_t off, const Nvme *n)
{
    switch (off) {
    case NVME_REG_CC:
        return "CC";
    case NVME_REG_AQA:
        return "AQA";
    case NVME_REG_ASQ:
        return "ASQ";
    case NVME_REG_ASQ + 4:
        return "ASQ+4";
    case NVME_REG_ACQ:
        return "ACQ";
    case NVME_REG_ACQ + 4:
        return "ACQ+4";
    case NVME_REG_DBS:
        return "SQ0TDBL";
    }
    if (off == NVME_REG_DBS + n->db_stride) {
        return "CQ0HDBL";
    }
    return "?";
}

/* An MMIO call failed: the register path is gone for good. */
static bool mmio_failed(Nvme *n, const char *op, uint64_t off,
                        kern_return_t kr)
{
    fail("MMIO %s of BAR0 +0x%" PRIx64 ": %s", op, off,
         apple_dext_strerror(kr));
    n->dead = true;
    return false;
}

static bool reg_read32(Nvme *n, uint64_t off, uint32_t *out)
{
    uint64_t v = 0;
    kern_return_t kr;

    if (n->bar != NULL) {
        *out = le32_to_cpu(*(volatile uint32_t *)(n->bar + off));
        return true;
    }
    kr = apple_dext_mmio_read(n->conn, n->mem_idx, off, 4, &v);
    if (kr != kIOReturnSuccess) {
        return mmio_failed(n, "read", off, kr);
    }
    *out = (uint32_t)v;
    return true;
}

static bool reg_write32(Nvme *n, uint64_t off, uint32_t v)
{
    kern_return_t kr;

    if (n->verbose) {
        printf("  write %-7s [0x%04" PRIx64 "] <- 0x%08" PRIx32 "\n",
               reg_name(off, n), off, v);
    }
    if (n->bar != NULL) {
        *(volatile uint32_t *)(n->bar + off) = cpu_to_le32(v);
        return true;
    }
    kr = apple_dext_mmio_write(n->conn, n->mem_idx, off, 4, v);
    if (kr != kIOReturnSuccess) {
        return mmio_failed(n, "write", off, kr);
    }
    return true;
}

static bool reg_read64(Nvme *n, uint64_t off, uint64_t *out)
{
    uint32_t lo, hi;

    if (!reg_read32(n, off, &lo) || !reg_read32(n, off + 4, &hi)) {
        return false;
    }
    *out = (uint64_t)hi << 32 | lo;
    return true;
}

static bool reg_write64(Nvme *n, uint64_t off, uint64_t v)
{
    return reg_write32(n, off, (uint32_t)v) &&
           reg_write32(n, off + 4, (uint32_t)(v >> 32));
}

/*
 * Wait until (CSTS & @mask) == @want, at most @timeout_ms.  With
 * @check_cfs, a fatal status ends the wait at once.
 */
static bool wait_csts(Nvme *n, uint32_t mask, uint32_t want,
                      uint32_t timeout_ms, bool check_cfs, const char *what)
{
    uint64_t deadline = now_ms() + timeout_ms;
    uint32_t csts;

    for (;;) {
        if (!reg_read32(n, NVME_REG_CSTS, &csts)) {
            return false;
        }
        if (csts == 0xffffffffu) {
            fail("%s: CSTS reads 0xffffffff: the controller does not "
                 "respond (gone, or BAR0 not decoded)", what);
            n->dead = true;
            return false;
        }
        if (check_cfs && (csts & CSTS_CFS)) {
            fail("%s: controller fatal status (CSTS 0x%08" PRIx32 ")", what,
                 csts);
            n->dead = true;
            return false;
        }
        if ((csts & mask) == want) {
            return true;
        }
        if (now_ms() >= deadline) {
            fail("%s: timed out after %" PRIu32 " ms (CSTS 0x%08" PRIx32
                 ")", what, timeout_ms, csts);
            return false;
        }
        sleep_ms(1);
    }
}

/* ------------------------------------------------------------------ */
/* Finding and opening the device                                       */

/* "[0000:]BB:DD.F", hexadecimal. */
static bool parse_bdf(const char *s, unsigned *bus, unsigned *dev,
                      unsigned *fn)
{
    unsigned dom = 0, b, d, f;
    int len = 0;

    if (sscanf(s, "%x:%x:%x.%x%n", &dom, &b, &d, &f, &len) == 4 &&
        s[len] == '\0') {
        if (dom != 0) {
            fail("%s: only PCI domain 0 can be addressed (the API takes "
                 "bus:device.function)", s);
            return false;
        }
    } else if (!(sscanf(s, "%x:%x.%x%n", &b, &d, &f, &len) == 3 &&
                 s[len] == '\0')) {
        fail("%s: not a PCI address (BB:DD.F)", s);
        return false;
    }
    if (b > 0xff || d > 0x1f || f > 7) {
        fail("%s: bus, device or function out of range", s);
        return false;
    }
    *bus = b;
    *dev = d;
    *fn = f;
    return true;
}

/* The first NVMe controller the target serves. */
static bool find_nvme(const char *target, unsigned *bus, unsigned *dev,
                      unsigned *fn)
{
    AppleDextDeviceInfo *devs;
    uint32_t count = 0, max;
    kern_return_t kr;
    bool found = false;

    kr = apple_dext_list_devices(target, NULL, 0, &count);
    if (kr == kIOReturnSuccess && count > 0) {
        max = count;
        devs = calloc(max, sizeof(*devs));
        if (devs == NULL) {
            fail("out of memory");
            return false;
        }
        kr = apple_dext_list_devices(target, devs, max, &count);
        for (uint32_t i = 0; kr == kIOReturnSuccess && i < count && i < max;
             i++) {
            if (devs[i].class_code == PCI_CLASS_NVME) {
                *bus = devs[i].bus;
                *dev = devs[i].device;
                *fn = devs[i].function;
                found = true;
                break;
            }
        }
        free(devs);
    }
    if (kr != kIOReturnSuccess) {
        fail("cannot list the devices of target %s: %s%s%s",
             target ? target : apple_dext_default_target(),
             apple_dext_strerror(kr),
             *apple_dext_last_error_detail() ? ": " : "",
             apple_dext_last_error_detail());
        return false;
    }
    if (!found) {
        fail("target %s serves no NVMe controller (class 0x%06x) among "
             "its %" PRIu32 " device(s); name one: nvme-identify BB:DD.F",
             target ? target : apple_dext_default_target(), PCI_CLASS_NVME,
             count);
    }
    return found;
}

static bool nvme_open(Nvme *n, const char *target, unsigned bus,
                      unsigned dev, unsigned fn)
{
    AppleDextDeviceInfo id;
    uint64_t cmd = 0;
    kern_return_t kr;

    kr = apple_dext_connect_target(target, (uint8_t)bus, (uint8_t)dev,
                                   (uint8_t)fn, &n->conn);
    if (kr != kIOReturnSuccess) {
        n->conn = IO_OBJECT_NULL;
        fail("cannot connect to %02x:%02x.%x on target %s: %s%s%s", bus, dev,
             fn, target ? target : apple_dext_default_target(),
             apple_dext_strerror(kr), ": ",
             *apple_dext_last_error_detail() ? apple_dext_last_error_detail() :
             kr == kIOReturnNotFound ? "no device served at that address" :
             "no more detail");
        return false;
    }
    kr = apple_dext_get_identity(n->conn, &id);
    if (kr != kIOReturnSuccess) {
        return fail_kr(kr, "device identity");
    }
    printf("%02x:%02x.%x: %04x:%04x, class 0x%06" PRIx32 "\n", bus, dev, fn,
           id.vendor_id, id.device_id, id.class_code);
    /* Before the claim: a device that is not ours is left untouched. */
    if (id.class_code != PCI_CLASS_NVME) {
        fail("%02x:%02x.%x is not an NVMe controller (class code 0x%06" PRIx32
             ", want 0x%06x)", bus, dev, fn, id.class_code, PCI_CLASS_NVME);
        return false;
    }
    kr = apple_dext_claim(n->conn);
    if (kr != kIOReturnSuccess) {
        return fail_kr(kr, "claim");
    }
    /* The first claim turns on memory decoding and bus mastering. */
    kr = apple_dext_config_read(n->conn, PCI_COMMAND, 2, &cmd);
    if (kr != kIOReturnSuccess) {
        return fail_kr(kr, "config read of the command register");
    }
    if ((cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) !=
        (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) {
        fprintf(stderr, "%s: warning: command register 0x%04" PRIx64
                " after the claim: memory space or bus master is off\n",
                prog, cmd);
    }
    return true;
}

static bool bar0_open(Nvme *n)
{
    mach_vm_address_t addr = 0;
    uint8_t type = 0;
    kern_return_t kr;

    kr = apple_dext_get_bar_info(n->conn, 0, &n->mem_idx, &n->bar_size,
                                 &type);
    if (kr != kIOReturnSuccess) {
        return fail_kr(kr, "BAR0 info");
    }
    if (type & 0x1) {
        fail("BAR0 is an I/O BAR; an NVMe controller's is memory");
        return false;
    }
    if (n->bar_size < NVME_REG_DBS + 8) {
        fail("BAR0 is %" PRIu64 " bytes, too small for the registers and "
             "the admin doorbells", n->bar_size);
        return false;
    }
    /* A BAR the dext will not map is reached through MMIO calls. */
    kr = apple_dext_map_bar(n->conn, 0, &addr, &n->bar_map_size, NULL);
    if (kr == kIOReturnSuccess) {
        n->bar = (volatile uint8_t *)(uintptr_t)addr;
        printf("BAR0: %" PRIu64 " KiB, mapped\n", n->bar_size >> 10);
    } else {
        printf("BAR0: %" PRIu64 " KiB, through MMIO calls (not mapped: %s)\n",
               n->bar_size >> 10, apple_dext_strerror(kr));
    }
    return true;
}

static void bar0_close(Nvme *n)
{
    kern_return_t kr;

    if (n->bar == NULL) {
        return;
    }
    kr = apple_dext_unmap_bar(n->conn, 0,
                              (mach_vm_address_t)(uintptr_t)n->bar);
    if (kr != kIOReturnSuccess) {
        fail_kr(kr, "unmap BAR0");
    }
    n->bar = NULL;
}

/* ------------------------------------------------------------------ */
/* Controller bring-up                                                  */

static bool check_cap(Nvme *n)
{
    uint64_t need;
    uint32_t vs;

    if (!reg_read64(n, NVME_REG_CAP, &n->cap) ||
        !reg_read32(n, NVME_REG_VS, &vs)) {
        return false;
    }
    if (n->cap == UINT64_MAX) {
        fail("CAP reads all ones: the controller does not respond");
        return false;
    }
    n->to_ms = CAP_TO(n->cap) * 500u;
    if (n->to_ms < 500) {
        n->to_ms = 500;             /* TO 0 would mean no wait at all */
    }
    n->db_stride = 4u << CAP_DSTRD(n->cap);
    printf("CAP 0x%016" PRIx64 ": MQES %" PRIu32 ", DSTRD %" PRIu32
           " (%" PRIu32 "-byte doorbells), TO %" PRIu32 " ms, CSS 0x%02"
           PRIx32 ", MPS %u-%u KiB\n", n->cap, CAP_MQES(n->cap),
           CAP_DSTRD(n->cap), n->db_stride, n->to_ms, CAP_CSS(n->cap),
           4u << CAP_MPSMIN(n->cap), 4u << CAP_MPSMAX(n->cap));
    printf("VS 0x%08" PRIx32 ": NVMe %" PRIu32 ".%" PRIu32 ".%" PRIu32 "\n",
           vs, vs >> 16, (vs >> 8) & 0xff, vs & 0xff);

    /* MQES is 0's based; 0 (one entry) is not a valid queue size. */
    if (CAP_MQES(n->cap) < 1) {
        fail("CAP.MQES is 0: the controller reports no usable queue size");
        return false;
    }
    if (!(CAP_CSS(n->cap) & CAP_CSS_NVM)) {
        fail("CAP.CSS 0x%02" PRIx32 ": the NVM command set is not supported",
             CAP_CSS(n->cap));
        return false;
    }
    if (CAP_MPSMIN(n->cap) != 0) {
        fail("CAP.MPSMIN is %u KiB: this driver uses 4 KiB pages",
             4u << CAP_MPSMIN(n->cap));
        return false;
    }
    n->qdepth = CAP_MQES(n->cap) + 1;
    if (n->qdepth > QUEUE_DEPTH_MAX) {
        n->qdepth = QUEUE_DEPTH_MAX;
    }

    /* Registers and the admin queue pair's two doorbells. */
    need = NVME_REG_DBS + 2 * (uint64_t)n->db_stride;
    if (need > n->bar_size) {
        fail("BAR0 is %" PRIu64 " bytes; the admin doorbells need %" PRIu64,
             n->bar_size, need);
        return false;
    }
    if (n->bar != NULL && need > n->bar_map_size) {
        printf("BAR0: the mapping (%" PRIu64 " bytes) stops short of the "
               "doorbells; using MMIO calls\n", (uint64_t)n->bar_map_size);
        bar0_close(n);
    }
    return true;
}

/*
 * CC.EN = 0 and CSTS.RDY = 0: the controller is reset, queues forgotten.
 * @settle: first let an enable under way finish (one that is not ours).
 */
static bool nvme_disable(Nvme *n, bool settle)
{
    uint32_t cc, csts;

    if (!reg_read32(n, NVME_REG_CC, &cc) ||
        !reg_read32(n, NVME_REG_CSTS, &csts)) {
        return false;
    }
    if (n->verbose) {
        printf("  CC 0x%08" PRIx32 ", CSTS 0x%08" PRIx32 " before disable\n",
               cc, csts);
    }
    /*
     * Clearing EN while an enable is still under way (EN 1, RDY 0) is
     * undefined: let the enable finish first.  A controller in fatal
     * status never gets there; reset it anyway.
     */
    if (settle && (cc & CC_EN) && !(csts & CSTS_RDY) &&
        !(csts & CSTS_CFS)) {
        wait_csts(n, CSTS_RDY, CSTS_RDY, n->to_ms, true,
                  "waiting for a pending enable before disabling");
    }
    if (cc & CC_EN) {
        if (!reg_write32(n, NVME_REG_CC, cc & ~CC_EN)) {
            return false;
        }
    }
    if (!wait_csts(n, CSTS_RDY, 0, n->to_ms, false,
                   "disable: waiting for CSTS.RDY = 0")) {
        return false;
    }
    n->enabled = false;
    n->ready = false;
    return true;
}

static bool nvme_enable(Nvme *n)
{
    uint64_t asq = n->dma_bus + DMA_SQ, acq = n->dma_bus + DMA_CQ;
    uint32_t cc;

    n->sq_tail = 0;
    n->cq_head = 0;
    n->cq_phase = 1;
    cc = CC_CSS_NVM | CC_MPS(12) | CC_AMS_RR | CC_IOSQES(SQE_LOG2) |
         CC_IOCQES(CQE_LOG2);
    if (!reg_write32(n, NVME_REG_AQA, AQA(n->qdepth, n->qdepth)) ||
        !reg_write64(n, NVME_REG_ASQ, asq) ||
        !reg_write64(n, NVME_REG_ACQ, acq) ||
        !reg_write32(n, NVME_REG_CC, cc)) {
        return false;
    }
    /* Set from here on: cleanup disables again, whatever happens. */
    n->enabled = true;
    if (!reg_write32(n, NVME_REG_CC, cc | CC_EN)) {
        return false;
    }
    if (!wait_csts(n, CSTS_RDY, CSTS_RDY, n->to_ms, true,
                   "enable: waiting for CSTS.RDY = 1")) {
        return false;
    }
    n->ready = true;
    printf("enabled: admin queues of %" PRIu32 " entries, SQ at bus 0x%"
           PRIx64 ", CQ at bus 0x%" PRIx64 "\n", n->qdepth, asq, acq);
    return true;
}

/*
 * Normal shutdown: CC.SHN = 01b, wait for CSTS.SHST = 10b.  @rtd3e_us:
 * the controller's RTD3 entry latency, 0 if unknown.
 */
static bool nvme_shutdown(Nvme *n, uint32_t rtd3e_us)
{
    uint32_t cc, timeout_ms = rtd3e_us / 1000;

    if (timeout_ms < SHUTDOWN_MIN_MS) {
        timeout_ms = SHUTDOWN_MIN_MS;
    } else if (timeout_ms > SHUTDOWN_MAX_MS) {
        timeout_ms = SHUTDOWN_MAX_MS;
    }
    if (!reg_read32(n, NVME_REG_CC, &cc)) {
        return false;
    }
    if (!reg_write32(n, NVME_REG_CC, (cc & ~CC_SHN_MASK) | CC_SHN_NORMAL) ||
        !wait_csts(n, CSTS_SHST_MASK, CSTS_SHST_COMPLETE, timeout_ms, true,
                   "shutdown: waiting for CSTS.SHST = 10b")) {
        return false;
    }
    printf("shutdown complete\n");
    return true;
}

/* ------------------------------------------------------------------ */
/* DMA memory                                                           */

/* The dext's own DMA buffer: what the API offers for device memory. */
static bool dma_alloc_buffer(Nvme *n, kern_return_t *why)
{
    AppleDextDMABuffer info;
    mach_vm_address_t addr = 0;
    mach_vm_size_t size = 0;
    kern_return_t kr;

    kr = apple_dext_allocate_dma_buffer(n->conn, DMA_SIZE, PAGE_4K, &info);
    if (kr != kIOReturnSuccess) {
        *why = kr;
        return false;
    }
    n->dma_kind = DMA_BUFFER;
    kr = apple_dext_map_dma_buffer(n->conn, &addr, &size);
    if (kr != kIOReturnSuccess) {
        *why = kr;
        return false;
    }
    n->dma = (uint8_t *)(uintptr_t)addr;
    n->dma_map_size = size;
    n->dma_bus = info.bus_addr;
    if (size < DMA_SIZE || info.bus_len < DMA_SIZE) {
        /* Not one bus segment: the queues cannot be given by address. */
        *why = kIOReturnNotAligned;
        return false;
    }
    printf("DMA: dext buffer of %u KiB at bus 0x%" PRIx64 "\n",
           DMA_SIZE >> 10, n->dma_bus);
    return true;
}

/*
 * Our own memory, registered.  Shared, not private: a dext that reaches
 * it from another process (dextd over VFIO maps the same pages) needs a
 * mapping that survives outside this one.
 */
static bool dma_alloc_registered(Nvme *n)
{
    uint64_t len = 0;
    void *p;
    kern_return_t kr;
#ifdef __linux__
    int fd = memfd_create("nvme-identify-dma", MFD_CLOEXEC);

    if (fd < 0) {
        fail("memfd_create: %s", strerror(errno));
        return false;
    }
    if (ftruncate(fd, DMA_SIZE) != 0) {
        fail("ftruncate of the DMA memfd: %s", strerror(errno));
        close(fd);
        return false;
    }
    p = mmap(NULL, DMA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);                  /* the mapping keeps the memory */
#else
    p = mmap(NULL, DMA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON,
             -1, 0);
#endif
    if (p == MAP_FAILED) {
        fail("mmap of %u bytes for DMA: %s", DMA_SIZE, strerror(errno));
        return false;
    }
    n->dma = p;
    n->dma_map_size = DMA_SIZE;
    n->dma_kind = DMA_REGISTERED;
    kr = apple_dext_register_dma(n->conn, DMA_KEY, (uint64_t)(uintptr_t)p,
                                 DMA_SIZE, &n->dma_bus, &len);
    if (kr != kIOReturnSuccess) {
        munmap(p, DMA_SIZE);
        n->dma = NULL;
        n->dma_kind = DMA_NONE;
        return fail_kr(kr, "register DMA memory");
    }
    if (len < DMA_SIZE) {
        fail("registered DMA memory got %" PRIu64 " contiguous bus bytes, "
             "want %u", len, DMA_SIZE);
        return false;
    }
    printf("DMA: registered shared memory of %u KiB at bus 0x%" PRIx64 "\n",
           DMA_SIZE >> 10, n->dma_bus);
    return true;
}

static void dma_free(Nvme *n)
{
    kern_return_t kr;

    switch (n->dma_kind) {
    case DMA_BUFFER:
        if (n->dma != NULL) {
            kr = apple_dext_unmap_dma_buffer(n->conn,
                                             (mach_vm_address_t)(uintptr_t)
                                             n->dma);
            if (kr != kIOReturnSuccess) {
                fail_kr(kr, "unmap the DMA buffer");
            }
        }
        kr = apple_dext_free_dma_buffer(n->conn);
        if (kr != kIOReturnSuccess) {
            fail_kr(kr, "free the DMA buffer");
        }
        break;
    case DMA_REGISTERED:
        kr = apple_dext_unregister_dma(n->conn, DMA_KEY);
        if (kr != kIOReturnSuccess) {
            fail_kr(kr, "unregister DMA memory");
        }
        munmap(n->dma, DMA_SIZE);
        break;
    case DMA_NONE:
        break;
    }
    n->dma = NULL;
    n->dma_kind = DMA_NONE;
}

static bool dma_alloc(Nvme *n)
{
    kern_return_t why = kIOReturnSuccess;

    if (!dma_alloc_buffer(n, &why)) {
        /* Give back whatever part of the buffer we got, try our memory. */
        dma_free(n);
        printf("DMA: no usable dext buffer (%s); registering our own "
               "memory\n", apple_dext_strerror(why));
        if (!dma_alloc_registered(n)) {
            return false;
        }
    }
    if (n->dma_bus & (PAGE_4K - 1)) {
        fail("DMA memory's bus address 0x%" PRIx64 " is not 4 KiB aligned",
             n->dma_bus);
        return false;
    }
    /* Zero: CQ phase tags start at 0; no stale identify data. */
    memset(n->dma, 0, DMA_SIZE);
    return true;
}

/* ------------------------------------------------------------------ */
/* Interrupts                                                           */

static int find_cap(Nvme *n, uint8_t id)
{
    uint64_t status = 0, ptr = 0, hdr = 0;

    if (apple_dext_config_read(n->conn, PCI_STATUS, 2, &status) !=
            kIOReturnSuccess || !(status & PCI_STATUS_CAP_LIST) ||
        apple_dext_config_read(n->conn, PCI_CAPABILITY_LIST, 1, &ptr) !=
            kIOReturnSuccess) {
        return 0;
    }
    for (int i = 0; i < 48 && ptr >= 0x40; i++) {
        ptr &= 0xfc;
        if (apple_dext_config_read(n->conn, ptr, 2, &hdr) !=
            kIOReturnSuccess) {
            return 0;
        }
        if ((hdr & 0xff) == id) {
            return (int)ptr;
        }
        ptr = hdr >> 8;
    }
    return 0;
}

/* MSI-X (or MSI) with the admin CQ on vector 0; false: poll instead. */
static bool irq_setup(Nvme *n)
{
    const char *kind = find_cap(n, PCI_CAP_ID_MSIX) ? "MSI-X" :
                       find_cap(n, PCI_CAP_ID_MSI) ? "MSI" : "no MSI/MSI-X";
    uint64_t pending[4];
    kern_return_t kr;

    kr = apple_dext_setup_interrupts(n->conn, &n->nvectors);
    if (kr != kIOReturnSuccess) {
        printf("interrupts: cannot set up (%s, %s); polling the CQ\n",
               kind, apple_dext_strerror(kr));
        return false;
    }
    n->irqs_set_up = true;
    if (n->nvectors < 1) {
        printf("interrupts: %s with no vectors; polling the CQ\n", kind);
        return false;
    }
    n->notify = apple_dext_interrupt_notify_create_fd(n->conn);
    if (n->notify == NULL) {
        printf("interrupts: no notification fd; polling the CQ\n");
        return false;
    }
    n->irq_fd = apple_dext_interrupt_notify_get_fd(n->notify);
    if (n->irq_fd < 0) {
        printf("interrupts: notification has no fd; polling the CQ\n");
        return false;
    }
    /* Nothing of before counts as our completion. */
    kr = apple_dext_drain_pending_irqs(n->conn, pending);
    if (kr != kIOReturnSuccess) {
        n->irq_fd = -1;
        printf("interrupts: cannot read the pending bits (%s); polling the "
               "CQ\n", apple_dext_strerror(kr));
        return false;
    }
    printf("interrupts: %s, %" PRIu32 " vector(s); admin CQ on vector 0, "
           "notification fd %d\n", kind, n->nvectors, n->irq_fd);
    return true;
}

static void irq_teardown(Nvme *n)
{
    /*
     * The API has no call to undo apple_dext_setup_interrupts(): the
     * dext releases the vectors at disconnect.  The notification is ours.
     */
    apple_dext_interrupt_notify_destroy(n->notify);
    n->notify = NULL;
    n->irq_fd = -1;
}

/*
 * Wait for an interrupt on vector 0, at most @ms.  Returns false only
 * for an error that ends the wait for good (the dext went away).
 */
static bool irq_wait(Nvme *n, unsigned ms)
{
    struct pollfd pfd = { .fd = n->irq_fd, .events = POLLIN };
    uint64_t pending[4];
    kern_return_t kr;
    int rc;

    rc = poll(&pfd, 1, (int)ms);
    if (rc < 0) {
        if (errno == EINTR) {
            return true;
        }
        fail("poll on the notification fd: %s", strerror(errno));
        return false;
    }
    if (rc == 0) {
        return true;
    }
    if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) {
        fail("notification fd: the dext went away (revents 0x%x)",
             (unsigned)pfd.revents);
        n->dead = true;
        return false;
    }
    kr = apple_dext_drain_pending_irqs(n->conn, pending);
    if (kr != kIOReturnSuccess) {
        return fail_kr(kr, "drain pending interrupts");
    }
    if (pending[0] & 1) {
        n->irq_seen = true;
    }
    if (n->verbose) {
        printf("  interrupt: pending 0x%" PRIx64 "\n", pending[0]);
    }
    /* After the drain: one landing in between rearms at once. */
    kr = apple_dext_interrupt_notify_rearm(n->notify);
    if (kr != kIOReturnSuccess) {
        return fail_kr(kr, "rearm the notification");
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* The admin queue                                                      */

/* The completion entry at the CQ head, if its phase says it is new. */
static bool cq_peek(Nvme *n, uint32_t cqe[4])
{
    volatile uint8_t *e = n->dma + DMA_CQ + n->cq_head * CQE_SIZE;

    if (((ld_le32(e + 12) >> 16) & 1) != n->cq_phase) {
        return false;
    }
    barrier_after_phase();
    for (int i = 0; i < 4; i++) {
        cqe[i] = ld_le32(e + 4 * i);
    }
    return true;
}

static bool identify_controller(Nvme *n)
{
    volatile uint8_t *sqe = n->dma + DMA_SQ + n->sq_tail * SQE_SIZE;
    uint64_t start = now_ms(), deadline = start + IDENTIFY_TIMEOUT_MS, done = 0;
    uint32_t cqe[4], status, csts = 0;

    for (unsigned i = 0; i < SQE_SIZE; i += 4) {
        st_le32(sqe + i, 0);
    }
    /* CDW0: opcode 7:0, FUSE 9:8 = 0, PSDT 15:14 = 0 (PRPs), CID 31:16 */
    st_le32(sqe + 0, NVME_ADM_IDENTIFY | (uint32_t)IDENTIFY_CID << 16);
    st_le32(sqe + 4, 0);                            /* NSID */
    st_le64(sqe + 24, n->dma_bus + DMA_ID);         /* PRP1 */
    st_le64(sqe + 32, 0);                           /* PRP2: one page */
    st_le32(sqe + 40, NVME_ID_CNS_CTRL);            /* CDW10: CNS 7:0 */
    n->sq_tail = (n->sq_tail + 1) % n->qdepth;
    barrier_before_doorbell();
    if (!reg_write32(n, NVME_REG_DBS, n->sq_tail)) {
        return false;
    }

    for (;;) {
        uint64_t now;

        if (cq_peek(n, cqe)) {
            done = now_ms();
            break;
        }
        now = now_ms();
        if (now >= deadline) {
            reg_read32(n, NVME_REG_CSTS, &csts);
            fail("Identify: no completion within %u ms (CSTS 0x%08" PRIx32
                 ", %s)", IDENTIFY_TIMEOUT_MS, csts,
                 n->irq_fd < 0 ? "polling" :
                 n->irq_seen ? "an interrupt came" : "no interrupt came");
            return false;
        }
        if (n->irq_fd >= 0) {
            uint64_t left = deadline - now;

            if (!irq_wait(n, left < IRQ_POLL_SLICE_MS ? (unsigned)left :
                          IRQ_POLL_SLICE_MS)) {
                return false;
            }
        } else {
            sleep_ms(1);
        }
    }

    /*
     * The entry may be seen before its interrupt is: give the interrupt a
     * moment, so what is reported below says whether vector 0 works.
     */
    if (n->irq_fd >= 0 && !n->irq_seen) {
        uint64_t grace_end = now_ms() + IRQ_GRACE_MS;

        while (!n->irq_seen && now_ms() < grace_end) {
            if (!irq_wait(n, IRQ_POLL_SLICE_MS)) {
                return false;
            }
        }
    }

    /* Consume the entry and tell the controller. */
    if (++n->cq_head == n->qdepth) {
        n->cq_head = 0;
        n->cq_phase ^= 1;
    }
    if (!reg_write32(n, NVME_REG_DBS + n->db_stride, n->cq_head)) {
        return false;
    }
    printf("Identify: completed in %" PRIu64 " ms, %s\n", done - start,
           n->irq_fd < 0 ? "found by polling" :
           n->irq_seen ? "signalled by interrupt (vector 0)" :
           "found by polling the phase bit (no interrupt seen)");

    /* DW2: SQID 31:16, SQHD 15:0; DW3: status 31:17, P 16, CID 15:0 */
    if ((cqe[2] >> 16) != 0 || (cqe[3] & 0xffff) != IDENTIFY_CID) {
        fail("Identify: completion for SQ %" PRIu32 " command 0x%04" PRIx32
             ", want SQ 0 command 0x%04x", cqe[2] >> 16, cqe[3] & 0xffff,
             IDENTIFY_CID);
        return false;
    }
    status = cqe[3] >> 17;
    if (status != 0) {
        /* SC 7:0, SCT 10:8, CRD 12:11, M 13, DNR 14 of the status field */
        fail("Identify: failed with status type 0x%" PRIx32 ", code 0x%02"
             PRIx32 "%s", (status >> 8) & 0x7, status & 0xff,
             (status >> 14) & 1 ? " (do not retry)" : "");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Identify data                                                        */

/* An ASCII field, space padded: printable, without surrounding blanks. */
static void id_string(const volatile uint8_t *p, size_t len, char *out)
{
    size_t start = 0, end = len;

    while (start < end && (p[start] == ' ' || p[start] == '\0')) {
        start++;
    }
    while (end > start && (p[end - 1] == ' ' || p[end - 1] == '\0')) {
        end--;
    }
    for (size_t i = start; i < end; i++) {
        out[i - start] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    }
    out[end - start] = '\0';
}

/*
 * Undo everything nvme_open() and the bring-up did, in order: the
 * controller first (no DMA into memory about to be freed), then the
 * notification, the memory, the BAR, the connection (which drops the
 * claim and the interrupt vectors; the API has no separate call).
 */
static bool nvme_close(Nvme *n, uint32_t rtd3e_us)
{
    bool ok = true;

    if (n->enabled) {
        /* Shut down what ran; then disable, so it DMAs no more. */
        if (n->ready && !n->dead && !nvme_shutdown(n, rtd3e_us)) {
            ok = false;
        }
        if (!nvme_disable(n, false)) {
            fail("the controller may still be enabled; its DMA memory is "
                 "taken off the bus before it is freed");
            ok = false;
        }
    }
    irq_teardown(n);
    dma_free(n);
    bar0_close(n);
    if (n->conn != IO_OBJECT_NULL) {
        apple_dext_disconnect(n->conn);
        n->conn = IO_OBJECT_NULL;
    }
    return ok;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [--target TARGET] [--poll] [--expect-serial S] [-v] "
            "[BB:DD.F]\n"
            "Bring up an NVMe controller's admin queue through libdext, "
            "send Identify\nController, print its identity, shut it down.\n"
            "\n"
            "  BB:DD.F              the controller (default: the first "
            "device of class\n"
            "                       0x010802 the target lists)\n"
            "  --target TARGET      where the dext is (default: "
            "$DEXT_TARGET, else\n"
            "                       the platform's default; e.g. "
            "unix:/run/dextd.sock)\n"
            "  --poll               poll the completion queue, no "
            "interrupts\n"
            "  --expect-serial S    exit 1 unless the serial number is S\n"
            "  -v, --verbose        trace register writes and interrupts\n",
            prog);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "target", required_argument, NULL, 't' },
        { "poll", no_argument, NULL, 'p' },
        { "expect-serial", required_argument, NULL, 's' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *target = NULL, *expect_serial = NULL;
    bool poll_only = false, verbose = false, ok;
    unsigned bus, dev, fn;
    uint32_t rtd3e_us = 0;
    Nvme n;
    int c;

    while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            target = optarg;
            break;
        case 'p':
            poll_only = true;
            break;
        case 's':
            expect_serial = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "%s: one BDF at most\n", prog);
        usage(stderr);
        return 2;
    }
    /* Our lines and the library's interleave in order. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (verbose) {
        apple_dext_set_log_handler(log_handler, NULL);
    }
    printf("%s: libdext %s, target %s\n", prog, LIBDEXT_VERSION_STRING,
           target ? target : apple_dext_default_target());

    if (optind < argc) {
        if (!parse_bdf(argv[optind], &bus, &dev, &fn)) {
            return 2;
        }
    } else if (!find_nvme(target, &bus, &dev, &fn)) {
        return 1;
    }

    memset(&n, 0, sizeof(n));
    n.conn = IO_OBJECT_NULL;
    n.irq_fd = -1;
    n.verbose = verbose;

    /*
     * Interrupts before the enable: a controller may tie the admin CQ to
     * MSI-X vector 0 only if MSI-X is on when the queue is created at
     * CC.EN = 1 (QEMU's nvme does), as the Linux driver's order also has.
     */
    ok = nvme_open(&n, target, bus, dev, fn) && bar0_open(&n) &&
         check_cap(&n) && nvme_disable(&n, true) && dma_alloc(&n);
    if (ok && !poll_only) {
        irq_setup(&n);
    }
    ok = ok && nvme_enable(&n) && identify_controller(&n);
    if (ok) {
        const volatile uint8_t *id = n.dma + DMA_ID;
        char sn[ID_SN_LEN + 1], mn[ID_MN_LEN + 1], fr[ID_FR_LEN + 1];

        id_string(id + ID_SN, ID_SN_LEN, sn);
        id_string(id + ID_MN, ID_MN_LEN, mn);
        id_string(id + ID_FR, ID_FR_LEN, fr);
        rtd3e_us = ld_le32(id + ID_RTD3E);
        printf("model:    %s\n"
               "serial:   %s\n"
               "firmware: %s\n"
               "vid:      0x%04x\n"
               "ssvid:    0x%04x\n",
               mn, sn, fr, ld_le16(id + ID_VID), ld_le16(id + ID_SSVID));
        if (ld_le16(id + ID_VID) == 0 && mn[0] == '\0' && sn[0] == '\0') {
            fail("Identify completed but its data is empty: the "
                 "controller's write did not reach our memory");
            ok = false;
        } else if (expect_serial != NULL && strcmp(sn, expect_serial) != 0) {
            fail("serial number is \"%s\", expected \"%s\"", sn,
                 expect_serial);
            ok = false;
        }
    }
    if (!nvme_close(&n, rtd3e_us)) {
        ok = false;
    }
    return ok ? 0 : 1;
}
