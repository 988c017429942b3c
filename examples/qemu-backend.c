/*
 * SPDX-License-Identifier: MIT
 *
 * qemu-backend: the life of a passed-through device as QEMU's Apple VFIO
 * backend drives it, reduced to a standalone program around one event
 * loop.  The client library was written for exactly this sequence:
 *
 *   realize   connect to the BDF, claim, read config space, size and map
 *             the BARs (falling back to trapped MMIO where a BAR cannot
 *             be mapped), set up MSI, create the pollable notification
 *   memory    register "guest RAM" for DMA as QEMU's memory listener does
 *             for each RAM section, and translate guest addresses to the
 *             bus addresses the dext hands out
 *   run       a poll() loop: notification fd readable -> drain the pending
 *             bits -> inject each vector -> rearm
 *   reset     system reset -> device reset; the guest finds it at power-on
 *             state with interrupts still wired
 *   unrealize unregister DMA, destroy the notification, unmap, disconnect
 *
 * The "guest" is a few lines of edu driver: identify the device, compute
 * a factorial with a completion interrupt, DMA a page out of guest RAM
 * and back with completion interrupts.
 *
 *   qemu-backend [BB:DD.F]      (default 00:03.0; target: $DEXT_TARGET)
 *
 * Exit status 0 when every step worked.
 */

#define _GNU_SOURCE
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "apple-dext-client.h"
#include "shared-memory.h"

/* edu registers and bits (QEMU docs/specs/edu.rst) */
#define EDU_ID              0x00
#define EDU_LIVENESS        0x04
#define EDU_FACTORIAL       0x08
#define EDU_STATUS          0x20
#define   EDU_STATUS_IRQFACT  0x80
#define EDU_IRQ_STATUS      0x24
#define   EDU_IRQ_FACT        0x001
#define   EDU_IRQ_DMA         0x100
#define EDU_IRQ_RAISE       0x60
#define EDU_IRQ_ACK         0x64
#define EDU_DMA_SRC         0x80
#define EDU_DMA_DST         0x88
#define EDU_DMA_COUNT       0x90
#define EDU_DMA_CMD         0x98
#define   EDU_DMA_RUN         0x1
#define   EDU_DMA_TO_RAM      0x2
#define   EDU_DMA_IRQ         0x4
#define EDU_DMA_BUFFER      0x40000

#define NUM_BARS            6
#define GUEST_RAM_GPA       UINT64_C(0x40000000)  /* where the guest sees it */
#define GUEST_RAM_SIZE      (2u << 20)
#define WAIT_MS             5000

/* One BAR as the backend exposes it to the guest. */
typedef struct BackendBar {
    bool present;
    uint8_t mem_idx;                /* for MMIO calls, not the BAR number */
    uint8_t type;
    uint64_t size;
    volatile uint8_t *map;          /* NULL: trapped, served by MMIO calls */
    mach_vm_size_t map_size;
} BackendBar;

typedef struct Backend {
    io_connect_t conn;
    uint8_t config[256];            /* QEMU's copy, for the emulated header */
    BackendBar bars[NUM_BARS];

    uint32_t nvectors;
    AppleDextInterruptNotify *notify;
    int irq_fd;
    uint64_t injected[4];           /* vectors delivered to the guest */
    unsigned injections;

    uint8_t *ram;                   /* the guest RAM mapping */
    int ram_fd;                     /* its memfd, open while mapped */
    uint64_t ram_bus;               /* what the device must be given */
    bool ram_registered;
} Backend;

static int failures;

static bool check_kr(kern_return_t kr, const char *what)
{
    if (kr != kIOReturnSuccess) {
        fprintf(stderr, "qemu-backend: %s: %s\n", what,
                apple_dext_strerror(kr));
        failures++;
        return false;
    }
    return true;
}

static bool check(bool cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "qemu-backend: failed: %s\n", what);
        failures++;
    }
    return cond;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void log_handler(void *opaque, int level, const char *msg)
{
    (void)opaque;
    fprintf(stderr, "libdext[%d]: %s\n", level, msg);
}

/* ------------------------------------------------------------------ */
/* BAR access: the MemoryRegion ops of a trapped BAR, or plain loads    */

static uint64_t bar_read(Backend *b, int bar, uint64_t off, unsigned width)
{
    BackendBar *r = &b->bars[bar];
    uint64_t v = ~0ull;

    if (r->map != NULL) {
        /* A mapped BAR: the guest would touch it without exiting. */
        switch (width) {
        case 1:
            v = *(r->map + off);
            break;
        case 2:
            v = *(volatile uint16_t *)(r->map + off);
            break;
        case 4:
            v = *(volatile uint32_t *)(r->map + off);
            break;
        case 8:
            v = *(volatile uint64_t *)(r->map + off);
            break;
        }
        return v;
    }
    check_kr(apple_dext_mmio_read(b->conn, r->mem_idx, off, width, &v),
             "MMIO read");
    return v;
}

static void bar_write(Backend *b, int bar, uint64_t off, unsigned width,
                      uint64_t v)
{
    BackendBar *r = &b->bars[bar];

    if (r->map != NULL) {
        switch (width) {
        case 1:
            *(r->map + off) = (uint8_t)v;
            break;
        case 2:
            *(volatile uint16_t *)(r->map + off) = (uint16_t)v;
            break;
        case 4:
            *(volatile uint32_t *)(r->map + off) = (uint32_t)v;
            break;
        case 8:
            *(volatile uint64_t *)(r->map + off) = v;
            break;
        }
        return;
    }
    check_kr(apple_dext_mmio_write(b->conn, r->mem_idx, off, width, v),
             "MMIO write");
}

/* ------------------------------------------------------------------ */
/* Realize / unrealize                                                  */

static void bars_probe_and_map(Backend *b)
{
    for (int i = 0; i < NUM_BARS; i++) {
        BackendBar *r = &b->bars[i];
        mach_vm_address_t addr = 0;
        kern_return_t kr;

        kr = apple_dext_get_bar_info(b->conn, (uint8_t)i, &r->mem_idx,
                                     &r->size, &r->type);
        if (kr == kIOReturnNotFound) {
            continue;               /* unused, or the top of a 64-bit BAR */
        }
        if (!check_kr(kr, "BAR info")) {
            continue;
        }
        r->present = true;
        kr = apple_dext_map_bar(b->conn, (uint8_t)i, &addr, &r->map_size,
                                NULL);
        if (kr == kIOReturnSuccess) {
            r->map = (volatile uint8_t *)(uintptr_t)addr;
        } else if (kr != kIOReturnUnsupported) {
            check_kr(kr, "map BAR");
        }
        /*
         * Unsupported: a register BAR the dext will not let us map (edu's
         * BAR0).  QEMU then registers an I/O MemoryRegion whose accesses
         * exit to bar_read()/bar_write() instead of a RAM-backed one.
         */
        printf("  BAR%d: %" PRIu64 " KiB, type 0x%x, %s\n", i, r->size >> 10,
               r->type, r->map ? (r->type & 0x8 ? "mapped write-combined" :
                                  "mapped") : "trapped (MMIO calls)");
    }
}

static bool backend_realize(Backend *b, unsigned bus, unsigned dev,
                            unsigned fn)
{
    uint64_t cmd = 0;

    memset(b, 0, sizeof(*b));
    b->irq_fd = -1;
    b->ram_fd = -1;
    b->conn = apple_dext_connect((uint8_t)bus, (uint8_t)dev, (uint8_t)fn);
    if (!check(b->conn != IO_OBJECT_NULL, "connect")) {
        return false;
    }
    if (!check_kr(apple_dext_claim(b->conn), "claim")) {
        return false;
    }
    /* One round trip for the whole header QEMU emulates. */
    check_kr(apple_dext_config_read_block(b->conn, 0, b->config,
                                          sizeof(b->config)), "config");
    check_kr(apple_dext_config_read(b->conn, 0x04, 2, &cmd), "command");
    printf("  %04x:%04x, command 0x%04" PRIx64 " (claim turned on memory "
           "space and bus mastering)\n",
           b->config[0] | b->config[1] << 8, b->config[2] | b->config[3] << 8,
           cmd);
    check((cmd & 0x6) == 0x6, "memory space and bus master enabled");

    bars_probe_and_map(b);
    if (!check(b->bars[0].present, "BAR0 present")) {
        return false;
    }

    if (!check_kr(apple_dext_setup_interrupts(b->conn, &b->nvectors),
                  "setup interrupts")) {
        return false;
    }
    /* No thread of ours: the fd joins QEMU's main loop. */
    b->notify = apple_dext_interrupt_notify_create_fd(b->conn);
    if (!check(b->notify != NULL, "notification")) {
        return false;
    }
    b->irq_fd = apple_dext_interrupt_notify_get_fd(b->notify);
    printf("  %u MSI vector(s), notification fd %d\n", b->nvectors,
           b->irq_fd);
    return check(b->irq_fd >= 0, "notification fd");
}

static void backend_unrealize(Backend *b)
{
    if (b->ram_registered) {
        check_kr(apple_dext_unregister_dma(b->conn, GUEST_RAM_GPA),
                 "unregister DMA");
    }
    apple_dext_interrupt_notify_destroy(b->notify);
    for (int i = 0; i < NUM_BARS; i++) {
        if (b->bars[i].map != NULL) {
            check_kr(apple_dext_unmap_bar(b->conn, (uint8_t)i,
                                          (mach_vm_address_t)(uintptr_t)
                                          b->bars[i].map), "unmap BAR");
        }
    }
    apple_dext_disconnect(b->conn);
}

/* ------------------------------------------------------------------ */
/* Guest memory: the memory listener's region_add / region_del          */

static bool backend_dma_map_ram(Backend *b)
{
    uint64_t len = 0;

    /* QEMU's guest RAM is a memfd (memory-backend-memfd); so is this
     * stand-in. */
    b->ram = shared_memory_alloc(GUEST_RAM_SIZE, &b->ram_fd);
    if (!check(b->ram != NULL, "guest RAM")) {
        return false;
    }
    /* The guest physical address is the key; the dext picks the bus
     * address (DART-style), which is what the device must be given. */
    if (!check_kr(apple_dext_register_dma(b->conn, GUEST_RAM_GPA,
                                          (uint64_t)(uintptr_t)b->ram,
                                          GUEST_RAM_SIZE, &b->ram_bus, &len),
                  "register guest RAM")) {
        return false;
    }
    b->ram_registered = true;
    printf("  guest RAM gpa 0x%" PRIx64 " (+%u MiB) -> bus 0x%" PRIx64 "\n",
           GUEST_RAM_GPA, GUEST_RAM_SIZE >> 20, b->ram_bus);
    return check(len == GUEST_RAM_SIZE, "one bus segment");
}

/* Guest physical -> bus, for DMA addresses the guest programs. */
static uint64_t backend_dma_bus(Backend *b, uint64_t gpa)
{
    return b->ram_bus + (gpa - GUEST_RAM_GPA);
}

/* ------------------------------------------------------------------ */
/* The main loop: notification -> drain -> inject -> rearm              */

static void guest_isr(Backend *b, unsigned vector);

static void backend_irq_ready(Backend *b)
{
    uint64_t pending[4];

    /* Read-and-clear from the shared page: no round trip to the dext. */
    if (!check_kr(apple_dext_drain_pending_irqs(b->conn, pending), "drain")) {
        return;
    }
    for (unsigned w = 0; w < 4; w++) {
        while (pending[w] != 0) {
            unsigned bit = (unsigned)__builtin_ctzll(pending[w]);

            pending[w] &= pending[w] - 1;
            b->injected[w] |= 1ull << bit;
            b->injections++;
            guest_isr(b, w * 64 + bit);     /* msi_notify() in QEMU */
        }
    }
    /*
     * Rearm after the drain: an interrupt that lands in between completes
     * the new arming at once, so the fd is readable again and nothing is
     * lost.
     */
    check_kr(apple_dext_interrupt_notify_rearm(b->notify), "rearm");
}

/* Run the loop until @want interrupts in all have been injected. */
static bool backend_run_until(Backend *b, unsigned want)
{
    uint64_t deadline = now_ms() + WAIT_MS;

    while (b->injections < want) {
        struct pollfd pfd = { .fd = b->irq_fd, .events = POLLIN };
        uint64_t now = now_ms();
        int n;

        if (now >= deadline) {
            return check(false, "interrupt within 5 s");
        }
        n = poll(&pfd, 1, (int)(deadline - now));
        if (n > 0 && (pfd.revents & POLLIN)) {
            backend_irq_ready(b);
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* The guest: a tiny edu driver                                         */

static uint32_t guest_last_irq_status;

static void guest_isr(Backend *b, unsigned vector)
{
    uint32_t st = (uint32_t)bar_read(b, 0, EDU_IRQ_STATUS, 4);

    printf("  vector %u injected, edu interrupt status 0x%x\n", vector, st);
    guest_last_irq_status |= st;
    bar_write(b, 0, EDU_IRQ_ACK, 4, st);
}

static void guest_factorial(Backend *b)
{
    uint64_t v;
    unsigned seen = b->injections;

    guest_last_irq_status = 0;
    bar_write(b, 0, EDU_STATUS, 4, EDU_STATUS_IRQFACT);
    bar_write(b, 0, EDU_FACTORIAL, 4, 10);
    if (backend_run_until(b, seen + 1)) {
        v = bar_read(b, 0, EDU_FACTORIAL, 4);
        printf("  guest: 10! = %" PRIu64 "\n", v);
        check(v == 3628800, "10! is 3628800");
        check(guest_last_irq_status & EDU_IRQ_FACT, "factorial interrupt");
    }
    bar_write(b, 0, EDU_STATUS, 4, 0);
}

static bool guest_dma(Backend *b, uint64_t src, uint64_t dst, uint64_t cmd)
{
    unsigned seen = b->injections;

    guest_last_irq_status = 0;
    bar_write(b, 0, EDU_DMA_SRC, 8, src);
    bar_write(b, 0, EDU_DMA_DST, 8, dst);
    bar_write(b, 0, EDU_DMA_COUNT, 8, 4096);
    bar_write(b, 0, EDU_DMA_CMD, 8, cmd | EDU_DMA_RUN | EDU_DMA_IRQ);
    return backend_run_until(b, seen + 1) &&
           check(guest_last_irq_status & EDU_IRQ_DMA, "DMA interrupt");
}

static void guest_dma_round_trip(Backend *b)
{
    uint8_t *out = b->ram + 0x1000, *in = b->ram + 0x3000;

    for (unsigned i = 0; i < 4096; i++) {
        out[i] = (uint8_t)(i * 31 + 7);
    }
    memset(in, 0, 4096);
    /* Guest RAM page at gpa +0x1000 -> edu's buffer -> gpa +0x3000. */
    if (guest_dma(b, backend_dma_bus(b, GUEST_RAM_GPA + 0x1000),
                  EDU_DMA_BUFFER, 0) &&
        guest_dma(b, EDU_DMA_BUFFER,
                  backend_dma_bus(b, GUEST_RAM_GPA + 0x3000),
                  EDU_DMA_TO_RAM)) {
        printf("  guest: DMA out of and back into guest RAM: %s\n",
               memcmp(in, out, 4096) == 0 ? "identical" : "DIFFERENT");
        check(memcmp(in, out, 4096) == 0, "DMA round trip");
    }
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    unsigned bus = 0, dev = 3, fn = 0;
    Backend b;
    uint64_t v;

    if (argc > 1 && sscanf(argv[1], "%x:%x.%x", &bus, &dev, &fn) != 3) {
        fprintf(stderr, "usage: %s [BB:DD.F]\n", argv[0]);
        return 2;
    }
    apple_dext_set_log_handler(log_handler, NULL);
    printf("qemu-backend: libdext %s, target %s, device %02x:%02x.%x\n",
           LIBDEXT_VERSION_STRING, apple_dext_default_target(), bus, dev, fn);

    printf("realize\n");
    if (!backend_realize(&b, bus, dev, fn)) {
        if (b.conn != IO_OBJECT_NULL) {
            backend_unrealize(&b);
        }
        return 1;
    }

    printf("guest RAM\n");
    backend_dma_map_ram(&b);

    printf("guest boots\n");
    v = bar_read(&b, 0, EDU_ID, 4);
    printf("  guest: edu id 0x%08" PRIx64 "\n", v);
    check(v == 0x010000ed, "edu id");
    guest_factorial(&b);
    if (b.ram_registered) {
        guest_dma_round_trip(&b);
    }

    printf("system reset\n");
    bar_write(&b, 0, EDU_LIVENESS, 4, 0x5a5a5a5a);
    check_kr(apple_dext_reset_device(b.conn), "reset");
    v = bar_read(&b, 0, EDU_LIVENESS, 4);
    /* Which registers a reset clears is the device's business: ours go
     * back to power-on values, QEMU's edu keeps them (it has no reset of
     * its own).  What the dext owes is its PCI state, checked below. */
    printf("  after reset: liveness 0x%08" PRIx64 " (%s)\n", v,
           v == 0 ? "power-on value" : "kept by this edu");
    /* The dext restored MSI: an interrupt still reaches the guest. */
    {
        unsigned seen = b.injections;

        bar_write(&b, 0, EDU_IRQ_RAISE, 4, 0x8);
        backend_run_until(&b, seen + 1);
    }
    printf("  %u interrupt(s) injected in all\n", b.injections);

    printf("unrealize\n");
    backend_unrealize(&b);
    if (b.ram != NULL) {
        shared_memory_free(b.ram, GUEST_RAM_SIZE, b.ram_fd);
    }

    printf("qemu-backend: %s (%d failure(s))\n", failures ? "FAILED" : "OK",
           failures);
    return failures ? 1 : 0;
}
