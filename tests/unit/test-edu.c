/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests of the edu device model and of the emulated configuration
 * space it is built on, driven through the backend hooks with a fake
 * host: a small window of bus memory behind a fake IOMMU (everything
 * else faults), an MSI counter and a log counter.  DMA hooks can be
 * held shut by a "gate" to catch the device mid-transfer.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "backends/pciemu.h"

#include "check.h"
#include "libdext/edu.h"

/* Fake bus memory: the only bus addresses the fake IOMMU maps. */
#define BUS_BASE 0x100000ull
#define BUS_SIZE 0x10000u

/* Short names for edu's registers (libdext/edu.h), to keep lines short. */
#define REG_ID        EDU_REG_ID
#define REG_LIVENESS  EDU_REG_LIVENESS
#define REG_FACT      EDU_REG_FACTORIAL
#define REG_STATUS    EDU_REG_STATUS
#define REG_IRQ       EDU_REG_IRQ_STATUS
#define REG_RAISE     EDU_REG_IRQ_RAISE
#define REG_ACK       EDU_REG_IRQ_ACK
#define REG_DMA_SRC   EDU_REG_DMA_SRC
#define REG_DMA_DST   EDU_REG_DMA_DST
#define REG_DMA_CNT   EDU_REG_DMA_COUNT
#define REG_DMA_CMD   EDU_REG_DMA_CMD
#define BUF_ADDR      ((uint64_t)EDU_DMA_BUF_ADDR)
#define BUF_SIZE      ((unsigned)EDU_DMA_BUF_SIZE)
/* Where the emulation puts edu's MSI capability. */
#define MSI_CAP       0x40

#define WAIT_NS       (5ull * 1000000000ull)

typedef struct FakeHost {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint8_t mem[BUS_SIZE];
    unsigned msi_count;
    uint32_t last_vector;
    unsigned dma_calls;
    unsigned faults;
    unsigned logs;
    char last_log[256];
    bool gate_closed;
} FakeHost;

static bool verbose;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
    struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)us * 1000 };

    nanosleep(&ts, NULL);
}

/* Fake host hooks. */

static bool fake_range(uint64_t addr, size_t len)
{
    return addr >= BUS_BASE && len <= BUS_SIZE &&
           addr - BUS_BASE <= BUS_SIZE - len;
}

/* Called with h->lock held: counts the call and honours the gate. */
static void fake_gate(FakeHost *h)
{
    h->dma_calls++;
    pthread_cond_broadcast(&h->cond);
    while (h->gate_closed) {
        pthread_cond_wait(&h->cond, &h->lock);
    }
}

static IOReturn fake_dma_read(void *opaque, uint64_t addr, void *buf,
                              size_t len)
{
    FakeHost *h = opaque;
    IOReturn ret = kIOReturnSuccess;

    pthread_mutex_lock(&h->lock);
    fake_gate(h);
    if (fake_range(addr, len)) {
        memcpy(buf, h->mem + (addr - BUS_BASE), len);
    } else {
        memset(buf, 0, len);
        h->faults++;
        ret = kIOReturnNotPermitted;
    }
    pthread_mutex_unlock(&h->lock);
    return ret;
}

static IOReturn fake_dma_write(void *opaque, uint64_t addr, const void *buf,
                               size_t len)
{
    FakeHost *h = opaque;
    IOReturn ret = kIOReturnSuccess;

    pthread_mutex_lock(&h->lock);
    fake_gate(h);
    if (fake_range(addr, len)) {
        memcpy(h->mem + (addr - BUS_BASE), buf, len);
    } else {
        h->faults++;
        ret = kIOReturnNotPermitted;
    }
    pthread_mutex_unlock(&h->lock);
    return ret;
}

static void fake_raise_msi(void *opaque, uint32_t vector)
{
    FakeHost *h = opaque;

    pthread_mutex_lock(&h->lock);
    h->msi_count++;
    h->last_vector = vector;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

static void fake_log(void *opaque, int level, const char *msg)
{
    FakeHost *h = opaque;

    pthread_mutex_lock(&h->lock);
    h->logs++;
    snprintf(h->last_log, sizeof(h->last_log), "%s", msg);
    pthread_mutex_unlock(&h->lock);
    if (verbose) {
        printf("# log(%d): %s\n", level, msg);
    }
}

static FakeHost *fake_new(void)
{
    FakeHost *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        abort();
    }
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    return h;
}

static void fake_free(FakeHost *h)
{
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static unsigned fake_get(FakeHost *h, const unsigned *field)
{
    unsigned v;

    pthread_mutex_lock(&h->lock);
    v = *field;
    pthread_mutex_unlock(&h->lock);
    return v;
}

#define FAKE_GET(h, field) fake_get((h), &(h)->field)

static void fake_set_gate(FakeHost *h, bool closed)
{
    pthread_mutex_lock(&h->lock);
    h->gate_closed = closed;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

static bool fake_wait_count(FakeHost *h, const unsigned *field,
                            unsigned want)
{
    uint64_t deadline = now_ns() + WAIT_NS;
    bool ok;

    pthread_mutex_lock(&h->lock);
    while (*field < want && now_ns() < deadline) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&h->cond, &h->lock, &ts);
    }
    ok = *field >= want;
    pthread_mutex_unlock(&h->lock);
    return ok;
}

static bool fake_last_log_has(FakeHost *h, const char *needle)
{
    bool found;

    pthread_mutex_lock(&h->lock);
    found = strstr(h->last_log, needle) != NULL;
    pthread_mutex_unlock(&h->lock);
    return found;
}

/* Device access helpers. */

static DextDevice *edu_new(const char *spec, FakeHost *h)
{
    DextDevice *dev = NULL;
    IOReturn ret = dext_device_create(spec, &dev);

    if (ret != kIOReturnSuccess || dev == NULL) {
        CHECK_MSG(false, "create \"%s\": 0x%x", spec, (unsigned)ret);
        exit(1);
    }
    if (h != NULL) {
        dev->host.dma_read = fake_dma_read;
        dev->host.dma_write = fake_dma_write;
        dev->host.raise_msi = fake_raise_msi;
        dev->host.log = fake_log;
        dev->host.opaque = h;
    }
    return dev;
}

static uint32_t cfg_rd(DextDevice *dev, uint32_t off, uint32_t width)
{
    uint32_t v = 0xdeadbeef;

    if (dev->ops->config_read(dev, off, width, &v) != kIOReturnSuccess) {
        CHECK_MSG(false, "config read 0x%x/%u", off, width);
    }
    return v;
}

static void cfg_wr(DextDevice *dev, uint32_t off, uint32_t width,
                   uint32_t v)
{
    if (dev->ops->config_write(dev, off, width, v) != kIOReturnSuccess) {
        CHECK_MSG(false, "config write 0x%x/%u", off, width);
    }
}

static uint64_t mm_rd(DextDevice *dev, uint64_t off, uint32_t width)
{
    uint64_t v = 0xdeadbeef;

    if (dev->ops->mmio_read(dev, 0, off, width, &v) != kIOReturnSuccess) {
        CHECK_MSG(false, "mmio read 0x%llx/%u", (unsigned long long)off, width);
    }
    return v;
}

static void mm_wr(DextDevice *dev, uint64_t off, uint32_t width, uint64_t v)
{
    if (dev->ops->mmio_write(dev, 0, off, width, v) != kIOReturnSuccess) {
        CHECK_MSG(false,
                  "mmio write 0x%llx/%u", (unsigned long long)off, width);
    }
}

/* Poll until (reg & bit) == 0, for at most WAIT_NS. */
static bool wait_clear(DextDevice *dev, uint64_t reg, uint32_t bit)
{
    uint64_t deadline = now_ns() + WAIT_NS;

    while (mm_rd(dev, reg, 4) & bit) {
        if (now_ns() > deadline) {
            return false;
        }
        sleep_us(50);
    }
    return true;
}

static void msi_enable(DextDevice *dev, bool on)
{
    cfg_wr(dev, MSI_CAP + 4, 4, 0xfee00000);
    cfg_wr(dev, MSI_CAP + 8, 4, 0);
    cfg_wr(dev, MSI_CAP + 0x0c, 2, 0x4021);
    cfg_wr(dev, MSI_CAP + 2, 2, on ? DEXT_PCI_MSI_FLAGS_ENABLE : 0);
}

static bool run_dma(DextDevice *dev, uint64_t src, uint64_t dst,
                    uint64_t cnt, uint64_t cmd)
{
    mm_wr(dev, REG_DMA_SRC, 8, src);
    mm_wr(dev, REG_DMA_DST, 8, dst);
    mm_wr(dev, REG_DMA_CNT, 8, cnt);
    mm_wr(dev, REG_DMA_CMD, 8, cmd);
    return wait_clear(dev, REG_DMA_CMD, 0x1);
}

/* Copy the whole device buffer out to bus memory at @bus_off. */
static bool dump_buffer(DextDevice *dev, FakeHost *h, uint32_t bus_off,
                        uint8_t *out)
{
    bool ok = run_dma(dev, BUF_ADDR, BUS_BASE + bus_off, BUF_SIZE, 0x3);

    pthread_mutex_lock(&h->lock);
    memcpy(out, h->mem + bus_off, BUF_SIZE);
    pthread_mutex_unlock(&h->lock);
    return ok;
}

static void fill_mem(FakeHost *h, uint32_t off, uint32_t len, unsigned seed)
{
    uint32_t i;

    pthread_mutex_lock(&h->lock);
    for (i = 0; i < len; i++) {
        h->mem[off + i] = (uint8_t)(i * 7 + seed);
    }
    pthread_mutex_unlock(&h->lock);
}

static uint32_t ref_factorial(uint32_t n)
{
    uint32_t r = 1, i;

    for (i = 2; i <= n; i++) {
        r *= i;
    }
    return r;
}

/* Tests. */

static void test_identity(void)
{
    FakeHost *h = fake_new();
    DextDevice *dev = edu_new("edu", h);
    uint32_t ptr, found = 0, steps = 0;

    harness_section("identity and config space");
    CHECK_MSG(strcmp(dev->ops->name, "edu") == 0, "ops name edu");
    CHECK_MSG(dev->vendor_id == 0x1234 && dev->device_id == 0x11e8,
              "DextDevice ids 1234:11e8");
    CHECK_MSG(dev->class_code == 0x00ff00 && dev->revision == 0x10,
              "DextDevice class 0x00ff00 revision 0x10");
    CHECK_MSG(dev->bus == 0 && dev->dev == 3 && dev->fn == 0,
              "default address 00:03.0");
    CHECK_MSG(dev->config_size == 256, "config size 256");
    CHECK_MSG(dev->dma_mask == (1ull << 28) - 1, "default dma_mask 2^28-1");
    CHECK_MSG(!dev->hardware, "emulated: not hardware, clients may change it");
    CHECK_MSG(dev->bars[0].size == (1u << 20) && dev->bars[0].type == 0 &&
              !dev->bars[0].mappable, "BAR0 1 MiB mem32 register BAR");
    CHECK_MSG(dev->bars[1].size == 0 && dev->bars[2].size == 0 &&
              dev->bars[3].size == 0 && dev->bars[4].size == 0 &&
              dev->bars[5].size == 0, "no other BARs");
    CHECK_MSG(dev->ops->reset_function != NULL && dev->ops->map_bar == NULL,
              "hook set");

    CHECK_MSG(cfg_rd(dev, 0x00, 4) == 0x11e81234, "config vendor/device");
    CHECK_MSG(cfg_rd(dev, 0x08, 4) == 0x00ff0010, "config class/revision");
    CHECK_MSG(cfg_rd(dev, 0x2c, 2) == 0x1af4 && cfg_rd(dev, 0x2e, 2) == 0x1100,
              "subsystem 1af4:1100");
    CHECK_MSG(cfg_rd(dev, 0x0e, 1) == 0x00, "header type 0");
    CHECK_MSG(cfg_rd(dev, 0x3d, 1) == 1, "interrupt pin INTA");

    /* Read-only registers ignore writes. */
    cfg_wr(dev, 0x00, 4, 0xffffffff);
    cfg_wr(dev, 0x08, 4, 0xffffffff);
    cfg_wr(dev, 0x2c, 4, 0);
    cfg_wr(dev, 0x3d, 1, 4);
    cfg_wr(dev, 0x34, 1, 0x80);
    CHECK_MSG(cfg_rd(dev, 0x00, 4) == 0x11e81234 &&
              cfg_rd(dev, 0x08, 4) == 0x00ff0010 &&
              cfg_rd(dev, 0x2c, 4) == 0x11001af4 &&
              cfg_rd(dev, 0x3d, 1) == 1 && cfg_rd(dev, 0x34, 1) == 0x40,
              "RO identity, pin, cap pointer unchanged by writes");
    cfg_wr(dev, 0x3c, 1, 0x0b);
    CHECK_MSG(cfg_rd(dev, 0x3c, 1) == 0x0b, "interrupt line writable");

    cfg_wr(dev, 0x04, 2, 0xffff);
    CHECK_MSG(cfg_rd(dev, 0x04, 2) == 0x0507,
              "command writable bits 0x0507 (io, mem, master, serr, intx-dis)");
    cfg_wr(dev, 0x06, 2, 0xffff);
    CHECK_MSG(cfg_rd(dev, 0x06, 2) == DEXT_PCI_STATUS_CAP_LIST,
              "status reads 0x0010 (cap list), w1c write changes nothing");
    cfg_wr(dev, 0x04, 2, 0);

    /* Walk the capability list as a driver would. */
    ptr = cfg_rd(dev, 0x34, 1) & 0xfc;
    while (ptr != 0 && steps++ < 48) {
        if (cfg_rd(dev, ptr, 1) == DEXT_PCI_CAP_ID_MSI) {
            found = ptr;
        }
        ptr = cfg_rd(dev, ptr + 1, 1) & 0xfc;
    }
    CHECK_MSG(found == MSI_CAP && steps == 1,
              "capability walk: MSI at 0x40 only");
    CHECK_MSG(cfg_rd(dev, MSI_CAP + 2, 2) == 0x0080,
              "MSI control: 64-bit, 1 vector, no masking, disabled");
    cfg_wr(dev, MSI_CAP + 2, 2, 0xffff);
    CHECK_MSG(cfg_rd(dev, MSI_CAP + 2, 2) == 0x0081,
              "MSI control: enable writable, enabled MME cut back to 1");
    cfg_wr(dev, MSI_CAP + 2, 2, DEXT_PCI_MSI_FLAGS_QSIZE);
    CHECK_MSG(cfg_rd(dev, MSI_CAP + 2, 2) == 0x00f0,
              "MSI control: MME writable while MSI is disabled");
    cfg_wr(dev, MSI_CAP + 4, 4, 0xffffffff);
    cfg_wr(dev, MSI_CAP + 8, 4, 0xffffffff);
    cfg_wr(dev, MSI_CAP + 0x0c, 4, 0xffffffff);
    CHECK_MSG(cfg_rd(dev, MSI_CAP + 4, 4) == 0xfffffffc &&
              cfg_rd(dev, MSI_CAP + 8, 4) == 0xffffffff &&
              cfg_rd(dev, MSI_CAP + 0x0c, 4) == 0xffffffff,
              "MSI address/upper/data writable widths, 0x4e.. read-write");
    cfg_wr(dev, MSI_CAP + 2, 2, 0);

    /* BAR sizing. */
    cfg_wr(dev, 0x10, 4, 0xffffffff);
    CHECK_MSG(cfg_rd(dev, 0x10, 4) == 0xfff00000,
              "BAR0 sizing reads 0xfff00000");
    cfg_wr(dev, 0x10, 4, 0xfebf1234);
    CHECK_MSG(cfg_rd(dev, 0x10, 4) == 0xfeb00000, "BAR0 address 1 MiB aligned");
    for (ptr = 0x14; ptr <= 0x30; ptr += 4) {
        if (ptr > 0x24 && ptr < 0x30) {
            continue;
        }
        cfg_wr(dev, ptr, 4, 0xffffffff);
    }
    CHECK_MSG(cfg_rd(dev, 0x14, 4) == 0 && cfg_rd(dev, 0x18, 4) == 0 &&
              cfg_rd(dev, 0x1c, 4) == 0 && cfg_rd(dev, 0x20, 4) == 0 &&
              cfg_rd(dev, 0x24, 4) == 0 && cfg_rd(dev, 0x30, 4) == 0,
              "BAR1-5 and ROM unimplemented (size 0)");

    {
        uint32_t v;

        CHECK_MSG(dev->ops->config_read(dev, 0x100, 4, &v) ==
                  kIOReturnBadArgument &&
                  dev->ops->config_read(dev, 0x02, 4, &v) ==
                  kIOReturnBadArgument &&
                  dev->ops->config_read(dev, 0x00, 3, &v) ==
                  kIOReturnBadArgument,
                  "config out of range / misaligned / bad width refused");
    }
    dext_device_free(dev);
    fake_free(h);
}

static void test_registers(void)
{
    FakeHost *h = fake_new();
    DextDevice *dev = edu_new("edu", h);
    unsigned logs;

    harness_section("registers and access sizes");
    CHECK_MSG(mm_rd(dev, REG_ID, 4) == 0x010000ed, "ID register 0x010000ed");
    logs = FAKE_GET(h, logs);
    mm_wr(dev, REG_ID, 4, 0);
    CHECK_MSG(mm_rd(dev, REG_ID, 4) == 0x010000ed && FAKE_GET(h, logs) > logs,
              "ID register read-only, write logged");

    CHECK_MSG(mm_rd(dev, REG_LIVENESS, 4) == 0, "liveness initially 0");
    mm_wr(dev, REG_LIVENESS, 4, 0x12345678);
    CHECK_MSG(mm_rd(dev, REG_LIVENESS, 4) == 0xedcba987,
              "liveness returns NOT of written value");
    mm_wr(dev, REG_LIVENESS, 4, 0);
    CHECK_MSG(mm_rd(dev, REG_LIVENESS, 4) == 0xffffffff, "liveness NOT 0");

    mm_wr(dev, REG_STATUS, 4, 0x01);
    CHECK_MSG(mm_rd(dev, REG_STATUS, 4) == 0, "status computing bit read-only");
    mm_wr(dev, REG_STATUS, 4, 0xffffffff);
    CHECK_MSG(mm_rd(dev, REG_STATUS, 4) == 0x80,
              "status irq-after-fact bit RW");
    mm_wr(dev, REG_STATUS, 4, 0);

    logs = FAKE_GET(h, logs);
    CHECK_MSG(mm_rd(dev, 0x10, 4) == 0xffffffff &&
              mm_rd(dev, REG_RAISE, 4) == 0xffffffff &&
              mm_rd(dev, 0xffffc, 4) == 0xffffffff,
              "unimplemented / write-only registers read all ones");
    CHECK_MSG(FAKE_GET(h, logs) == logs + 3, "... each logged");

    logs = FAKE_GET(h, logs);
    CHECK_MSG(mm_rd(dev, REG_ID, 1) == 0 &&
              mm_rd(dev, REG_ID, 2) == 0,
              "1/2-byte reads below 0x80 read 0 (QEMU's memory core)");
    CHECK_MSG(mm_rd(dev, REG_ID, 8) == UINT64_MAX,
              "8-byte reads below 0x80 return all ones");
    CHECK_MSG(mm_rd(dev, REG_DMA_SRC, 1) == 0 &&
              mm_rd(dev, REG_DMA_SRC, 2) == 0,
              "1/2-byte reads at 0x80+ read 0");
    mm_wr(dev, REG_LIVENESS, 2, 0x1234);
    mm_wr(dev, REG_LIVENESS, 1, 0x12);
    mm_wr(dev, REG_LIVENESS, 8, 0x12);
    mm_wr(dev, REG_DMA_SRC, 2, 0x1234);
    CHECK_MSG(mm_rd(dev, REG_LIVENESS, 4) == 0xffffffff &&
              mm_rd(dev, REG_DMA_SRC, 8) == 0,
              "invalid-size writes ignored");
    CHECK_MSG(FAKE_GET(h, logs) == logs + 9,
              "invalid-size accesses logged as guest errors");

    mm_wr(dev, REG_DMA_SRC, 8, 0x1122334455667788ull);
    CHECK_MSG(mm_rd(dev, REG_DMA_SRC, 8) == 0x1122334455667788ull,
              "DMA source 8-byte round trip");
    CHECK_MSG(mm_rd(dev, REG_DMA_SRC, 4) == 0x55667788,
              "DMA source 4-byte read gives low half");
    CHECK_MSG(mm_rd(dev, REG_DMA_SRC + 4, 4) == 0xffffffff,
              "DMA source +4 is not a register");
    mm_wr(dev, REG_DMA_SRC, 4, 0xaabbccdd);
    CHECK_MSG(mm_rd(dev, REG_DMA_SRC, 8) == 0xaabbccdd,
              "DMA source 4-byte write zero-extends");
    mm_wr(dev, REG_DMA_CMD, 4, 0x06);
    CHECK_MSG(mm_rd(dev, REG_DMA_CMD, 8) == 0,
              "DMA command write without start bit ignored");

    CHECK_MSG(FAKE_GET(h, dma_calls) == 0 && FAKE_GET(h, msi_count) == 0,
              "no DMA, no MSI so far");
    dext_device_free(dev);
    fake_free(h);
}

static void test_factorial(void)
{
    static const uint32_t inputs[] = { 0, 1, 5, 10, 12, 13, 20, 33, 34 };
    FakeHost *h = fake_new();
    DextDevice *dev = edu_new("edu", h);
    unsigned i;
    bool all = true;

    harness_section("factorial");
    for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        uint32_t got;

        mm_wr(dev, REG_FACT, 4, inputs[i]);
        if (!wait_clear(dev, REG_STATUS, 0x01)) {
            all = false;
            CHECK_MSG(false, "factorial(%u) timed out", inputs[i]);
            continue;
        }
        got = (uint32_t)mm_rd(dev, REG_FACT, 4);
        if (got != ref_factorial(inputs[i])) {
            all = false;
            CHECK_MSG(false, "factorial(%u) = %u, want %u", inputs[i], got,
                      ref_factorial(inputs[i]));
        }
    }
    CHECK_MSG(all, "factorial 0,1,5,10,12,13,20,33,34 (32-bit wrapping)");
    mm_wr(dev, REG_FACT, 4, 0xffffffff);
    CHECK_MSG(wait_clear(dev, REG_STATUS, 0x01) && mm_rd(dev, REG_FACT, 4) == 0,
              "factorial(0xffffffff) = 0, completes promptly");
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0 && FAKE_GET(h, msi_count) == 0,
              "no interrupt without status bit 0x80");

    /* Interrupt requested, MSI disabled: status only (and INTx). */
    mm_wr(dev, REG_STATUS, 4, 0x80);
    mm_wr(dev, REG_FACT, 4, 6);
    CHECK_MSG(wait_clear(dev, REG_STATUS, 0x01) &&
              mm_rd(dev, REG_FACT, 4) == 720, "factorial(6) with irq = 720");
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0x1, "interrupt status bit 0x1 raised");
    sleep_us(20000);
    CHECK_MSG(FAKE_GET(h, msi_count) == 0, "MSI disabled: no message");
    CHECK_MSG(cfg_rd(dev, 0x06, 2) & DEXT_PCI_STATUS_INTERRUPT,
              "MSI disabled: config status shows INTx asserted");
    mm_wr(dev, REG_ACK, 4, 0x1);
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0 &&
              !(cfg_rd(dev, 0x06, 2) & DEXT_PCI_STATUS_INTERRUPT),
              "ack clears status and INTx");

    /* MSI enabled: one message per completion. */
    msi_enable(dev, true);
    mm_wr(dev, REG_FACT, 4, 7);
    CHECK_MSG(fake_wait_count(h, &h->msi_count, 1) &&
              mm_rd(dev, REG_FACT, 4) == 5040 && mm_rd(dev, REG_IRQ, 4) == 0x1,
              "factorial(7) with MSI enabled: 5040, MSI sent");
    pthread_mutex_lock(&h->lock);
    CHECK_MSG(h->msi_count == 1 && h->last_vector == 0,
              "exactly one MSI, vector 0");
    pthread_mutex_unlock(&h->lock);
    CHECK_MSG(!(cfg_rd(dev, 0x06, 2) & DEXT_PCI_STATUS_INTERRUPT),
              "MSI enabled: INTx not asserted");
    mm_wr(dev, REG_ACK, 4, 0x1);
    dext_device_free(dev);
    fake_free(h);
}

static void test_irq(void)
{
    FakeHost *h = fake_new();
    DextDevice *dev = edu_new("edu", h);

    harness_section("interrupt raise / acknowledge");
    mm_wr(dev, REG_RAISE, 4, 0x4);
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0x4 && FAKE_GET(h, msi_count) == 0,
              "raise with MSI disabled: status only");
    mm_wr(dev, REG_ACK, 4, 0x4);
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0, "ack clears");

    msi_enable(dev, true);
    mm_wr(dev, REG_RAISE, 4, 0x10);
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0x10 && FAKE_GET(h, msi_count) == 1,
              "raise with MSI enabled sends one MSI");
    mm_wr(dev, REG_RAISE, 4, 0);
    CHECK_MSG(FAKE_GET(h, msi_count) == 2,
              "raise of 0 while status non-zero sends another");
    mm_wr(dev, REG_RAISE, 4, 0x20000);
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0x20010 && FAKE_GET(h, msi_count) == 3,
              "raise ORs bits in");
    mm_wr(dev, REG_ACK, 4, 0x10);
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0x20000, "ack clears only given bits");
    mm_wr(dev, REG_ACK, 4, 0xffffffff);
    mm_wr(dev, REG_RAISE, 4, 0);
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0 && FAKE_GET(h, msi_count) == 3,
              "raise of 0 with status 0 sends nothing");
    msi_enable(dev, false);
    mm_wr(dev, REG_RAISE, 4, 0x1);
    CHECK_MSG(FAKE_GET(h, msi_count) == 3, "MSI disabled again: nothing sent");
    mm_wr(dev, REG_ACK, 4, 0x1);
    dext_device_free(dev);
    fake_free(h);
}

static void test_dma(void)
{
    FakeHost *h = fake_new();
    DextDevice *dev = edu_new("edu", h);
    uint8_t buf[BUF_SIZE];
    uint8_t want[BUF_SIZE];
    bool ok;

    harness_section("DMA");
    fill_mem(h, 0x100, BUF_SIZE, 3);
    ok = run_dma(dev, BUS_BASE + 0x100, BUF_ADDR, BUF_SIZE, 0x1);
    CHECK_MSG(ok && mm_rd(dev, REG_DMA_CMD, 8) == 0,
              "RAM -> buffer 4096 bytes completes, start bit clears");
    ok = run_dma(dev, BUF_ADDR, BUS_BASE + 0x8000, BUF_SIZE, 0x3);
    pthread_mutex_lock(&h->lock);
    CHECK_MSG(ok && memcmp(h->mem + 0x8000, h->mem + 0x100, BUF_SIZE) == 0,
              "buffer -> RAM gives back the same 4096 bytes");
    memcpy(want, h->mem + 0x100, BUF_SIZE);
    pthread_mutex_unlock(&h->lock);
    CHECK_MSG(mm_rd(dev, REG_DMA_SRC, 8) == BUF_ADDR &&
              mm_rd(dev, REG_DMA_DST, 8) == BUS_BASE + 0x8000 &&
              mm_rd(dev, REG_DMA_CNT, 8) == BUF_SIZE &&
              mm_rd(dev, REG_DMA_CMD, 8) == 0x2,
              "DMA registers read back, command keeps direction bit");

    /* A partial transfer into the middle of the buffer. */
    fill_mem(h, 0x2000, 0x123, 99);
    ok = run_dma(dev, BUS_BASE + 0x2000, BUF_ADDR + 0x800, 0x123, 0x1);
    pthread_mutex_lock(&h->lock);
    memcpy(want + 0x800, h->mem + 0x2000, 0x123);
    pthread_mutex_unlock(&h->lock);
    ok = ok && dump_buffer(dev, h, 0xa000, buf);
    CHECK_MSG(ok && memcmp(buf, want, BUF_SIZE) == 0,
              "partial transfer at buffer offset 0x800, 0x123 bytes");

    /* 4-byte register writes work too; the last byte of the buffer. */
    fill_mem(h, 0x3000, 1, 0x5a);
    mm_wr(dev, REG_DMA_SRC, 4, (uint32_t)(BUS_BASE + 0x3000));
    mm_wr(dev, REG_DMA_DST, 4, BUF_ADDR + BUF_SIZE - 1);
    mm_wr(dev, REG_DMA_CNT, 4, 1);
    mm_wr(dev, REG_DMA_CMD, 4, 0x1);
    ok = wait_clear(dev, REG_DMA_CMD, 0x1) && dump_buffer(dev, h, 0xb000, buf);
    CHECK_MSG(ok && buf[BUF_SIZE - 1] == 0x5a,
              "1 byte at buffer end, 4-byte regs");

    /* Zero-length transfers complete without touching the bus. */
    pthread_mutex_lock(&h->lock);
    h->dma_calls = 0;
    pthread_mutex_unlock(&h->lock);
    ok = run_dma(dev, BUS_BASE, BUF_ADDR, 0, 0x1);
    CHECK_MSG(ok && FAKE_GET(h, dma_calls) == 0, "zero-length DMA completes");

    /* Completion interrupt. */
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0, "no DMA irq without bit 0x4");
    ok = run_dma(dev, BUS_BASE + 0x100, BUF_ADDR, 16, 0x5);
    CHECK_MSG(ok && mm_rd(dev, REG_IRQ, 4) == 0x100 &&
              FAKE_GET(h, msi_count) == 0,
              "DMA irq bit 0x100 raised (MSI disabled: no message)");
    mm_wr(dev, REG_ACK, 4, 0x100);
    msi_enable(dev, true);
    ok = run_dma(dev, BUF_ADDR, BUS_BASE + 0x4000, 16, 0x7);
    CHECK_MSG(ok && fake_wait_count(h, &h->msi_count, 1) &&
              mm_rd(dev, REG_IRQ, 4) == 0x100,
              "DMA irq with MSI enabled sends a message");
    dext_device_free(dev);
    fake_free(h);
}

static void test_dma_mask(void)
{
    FakeHost *h = fake_new();
    DextDevice *dev = edu_new("edu", h);
    uint64_t high = 0xf0000000ull | (BUS_BASE + 0x100);
    uint8_t buf[BUF_SIZE];
    unsigned logs;
    bool ok;

    harness_section("DMA address mask");
    fill_mem(h, 0x100, BUF_SIZE, 11);
    logs = FAKE_GET(h, logs);
    ok = run_dma(dev, high, BUF_ADDR, BUF_SIZE, 0x1);
    CHECK_MSG(ok && FAKE_GET(h, faults) == 0 && FAKE_GET(h, logs) == logs + 1 &&
              fake_last_log_has(h, "masked"),
              "address 0x%llx masked to 28 bits, logged",
              (unsigned long long)high);
    ok = dump_buffer(dev, h, 0x8000, buf);
    pthread_mutex_lock(&h->lock);
    CHECK_MSG(ok && memcmp(buf, h->mem + 0x100, BUF_SIZE) == 0,
              "masked transfer read the masked address");
    pthread_mutex_unlock(&h->lock);
    dext_device_free(dev);

    dev = edu_new("edu,dma_mask=0xffffffff", h);
    CHECK_MSG(dev->dma_mask == 0xffffffffull, "dma_mask option sets the mask");
    ok = run_dma(dev, high, BUF_ADDR, 16, 0x1);
    CHECK_MSG(ok && FAKE_GET(h, faults) == 1,
              "with a 32-bit mask the same address is not masked (faults)");
    dext_device_free(dev);

    dev = edu_new("edu,dma_mask=18446744073709551615", h);
    CHECK_MSG(dev->dma_mask == UINT64_MAX, "64-bit decimal dma_mask");
    ok = run_dma(dev, BUS_BASE, BUF_ADDR, 16, 0x1);
    CHECK_MSG(ok && FAKE_GET(h, faults) == 1,
              "64-bit mask: plain transfer works");
    dext_device_free(dev);
    fake_free(h);
}

static void test_dma_errors(void)
{
    static const struct {
        uint64_t buf, len;
    } bad[] = {
        { BUF_ADDR + 0xf00, 0x200 },
        { BUF_ADDR - 1, 1 },
        { BUF_ADDR + BUF_SIZE, 1 },
        { BUF_ADDR, BUF_SIZE + 1 },
        { UINT64_MAX, 2 },
        { BUF_ADDR + 0x10, UINT64_MAX },
        { 0, 16 },
    };
    FakeHost *h = fake_new();
    DextDevice *dev = edu_new("edu", h);
    uint8_t before[BUF_SIZE], after[BUF_SIZE];
    unsigned i, logs, calls;
    bool ok = true;

    harness_section("DMA errors");
    fill_mem(h, 0, BUS_SIZE, 5);
    ok = run_dma(dev, BUS_BASE, BUF_ADDR, BUF_SIZE, 0x1) &&
         dump_buffer(dev, h, 0x8000, before);
    CHECK_MSG(ok, "buffer preloaded");

    fill_mem(h, 0, 0x8000, 77);
    logs = FAKE_GET(h, logs);
    calls = FAKE_GET(h, dma_calls);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok = ok && run_dma(dev, BUS_BASE, bad[i].buf, bad[i].len, 0x5);
        ok = ok && run_dma(dev, bad[i].buf, BUS_BASE, bad[i].len, 0x7);
    }
    CHECK_MSG(ok, "out-of-buffer transfers still complete");
    CHECK_MSG(FAKE_GET(h, dma_calls) == calls, "... without touching the bus");
    CHECK_MSG(FAKE_GET(h, logs) == logs + 2 * i, "... each logged");
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0x100, "... and raise the DMA irq");
    mm_wr(dev, REG_ACK, 4, 0x100);
    ok = dump_buffer(dev, h, 0x8000, after);
    CHECK_MSG(ok && memcmp(before, after, BUF_SIZE) == 0, "buffer unchanged");

    /* IOMMU faults. */
    logs = FAKE_GET(h, logs);
    ok = run_dma(dev, 0x200, BUF_ADDR, BUF_SIZE, 0x5);
    CHECK_MSG(ok && FAKE_GET(h, faults) == 1 &&
              FAKE_GET(h, logs) == logs + 1 &&
              fake_last_log_has(h, "failed"),
              "RAM -> buffer from unmapped bus address: fault logged, "
              "completes");
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0x100, "faulted transfer raises irq");
    mm_wr(dev, REG_ACK, 4, 0x100);
    ok = dump_buffer(dev, h, 0x8000, after);
    CHECK_MSG(ok && memcmp(before, after, BUF_SIZE) == 0,
              "faulted read leaves the buffer unchanged");
    fill_mem(h, BUS_SIZE - 32, 32, 1);
    ok = run_dma(dev, BUF_ADDR, BUS_BASE + BUS_SIZE - 16, 32, 0x3);
    pthread_mutex_lock(&h->lock);
    for (i = 0; i < 32; i++) {
        ok = ok && h->mem[BUS_SIZE - 32 + i] == (uint8_t)(i * 7 + 1);
    }
    CHECK_MSG(ok && h->faults == 2,
              "buffer -> RAM straddling the window: fault, nothing written");
    pthread_mutex_unlock(&h->lock);

    /* No host DMA hooks at all behaves as a fault. */
    dev->host.dma_read = NULL;
    ok = run_dma(dev, BUS_BASE, BUF_ADDR, 16, 0x1);
    CHECK_MSG(ok && fake_last_log_has(h, "failed"), "no dma_read hook: fault");
    dev->host.dma_read = fake_dma_read;
    CHECK_MSG(mm_rd(dev, REG_ID, 4) == 0x010000ed, "device still alive");
    dext_device_free(dev);
    fake_free(h);
}

typedef struct ResetArg {
    DextDevice *dev;
    pthread_mutex_t lock;
    bool done;
    IOReturn ret;
} ResetArg;

static void *reset_thread(void *opaque)
{
    ResetArg *a = opaque;
    IOReturn ret = a->dev->ops->reset_function(a->dev);

    pthread_mutex_lock(&a->lock);
    a->done = true;
    a->ret = ret;
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static void test_busy_and_reset(void)
{
    FakeHost *h = fake_new();
    DextDevice *dev = edu_new("edu", h);
    uint8_t buf[BUF_SIZE];
    ResetArg ra = { .dev = dev };
    unsigned msis;
    pthread_t t;
    bool ok;
    unsigned i;

    harness_section("busy device and reset");
    fill_mem(h, 0, BUS_SIZE, 9);
    ok = run_dma(dev, BUS_BASE, BUF_ADDR, BUF_SIZE, 0x1);
    CHECK_MSG(ok, "buffer loaded");

    /* Hold the next transfer inside the host's DMA hook. */
    fake_set_gate(h, true);
    mm_wr(dev, REG_DMA_SRC, 8, BUF_ADDR);
    mm_wr(dev, REG_DMA_DST, 8, BUS_BASE + 0xc000);
    mm_wr(dev, REG_DMA_CNT, 8, BUF_SIZE);
    mm_wr(dev, REG_DMA_CMD, 8, 0x7);
    CHECK_MSG(fake_wait_count(h, &h->dma_calls, 2), "transfer reached the bus");
    CHECK_MSG(mm_rd(dev, REG_DMA_CMD, 8) == 0x7,
              "start bit reads set while busy");
    mm_wr(dev, REG_DMA_SRC, 8, 1);
    mm_wr(dev, REG_DMA_DST, 8, 2);
    mm_wr(dev, REG_DMA_CNT, 8, 3);
    mm_wr(dev, REG_DMA_CMD, 8, 0x1);
    CHECK_MSG(mm_rd(dev, REG_DMA_SRC, 8) == BUF_ADDR &&
              mm_rd(dev, REG_DMA_DST, 8) == BUS_BASE + 0xc000 &&
              mm_rd(dev, REG_DMA_CNT, 8) == BUF_SIZE &&
              mm_rd(dev, REG_DMA_CMD, 8) == 0x7,
              "DMA register writes ignored while running");
    /* The factorial unit is an engine of its own: a stalled transfer
     * (a client page that never arrives) must not hold it up. */
    mm_wr(dev, REG_FACT, 4, 5);
    CHECK_MSG(wait_clear(dev, REG_STATUS, 0x1) &&
              mm_rd(dev, REG_FACT, 4) == 120,
              "factorial completes while a transfer is stalled");

    /* Set state that a reset must clear. */
    mm_wr(dev, REG_LIVENESS, 4, 0x1234);
    mm_wr(dev, REG_RAISE, 4, 0x8);
    mm_wr(dev, REG_STATUS, 4, 0x80);
    cfg_wr(dev, 0x04, 2, 0x0507);
    cfg_wr(dev, 0x10, 4, 0xfeb00000);
    cfg_wr(dev, 0x3c, 1, 0x0b);
    msi_enable(dev, true);

    /* Nor may it hold up a reset, which aborts the transfer instead. */
    pthread_mutex_init(&ra.lock, NULL);
    pthread_create(&t, NULL, reset_thread, &ra);
    pthread_join(t, NULL);
    CHECK_MSG(ra.done && ra.ret == kIOReturnSuccess,
              "reset_function returns while the transfer is stalled");
    pthread_mutex_destroy(&ra.lock);
    /* MSI on again, so an interrupt from the aborted transfer would show. */
    msi_enable(dev, true);
    pthread_mutex_lock(&h->lock);
    msis = h->msi_count;
    pthread_mutex_unlock(&h->lock);
    fake_set_gate(h, false);
    /* The aborted transfer returns now; a new one proves it has. */
    fill_mem(h, 0, BUS_SIZE, 9);
    ok = run_dma(dev, BUS_BASE, BUF_ADDR, 16, 0x1);
    CHECK_MSG(ok, "the DMA engine works again once the stall ends");
    pthread_mutex_lock(&h->lock);
    CHECK_MSG(h->msi_count == msis, "the aborted transfer raised no interrupt");
    pthread_mutex_unlock(&h->lock);
    CHECK_MSG(mm_rd(dev, REG_IRQ, 4) == 0 && mm_rd(dev, REG_DMA_CMD, 8) == 0x0,
              "nor changed any register");
    dev->ops->reset_function(dev);

    CHECK_MSG(mm_rd(dev, REG_LIVENESS, 4) == 0 &&
              mm_rd(dev, REG_FACT, 4) == 0 &&
              mm_rd(dev, REG_STATUS, 4) == 0 && mm_rd(dev, REG_IRQ, 4) == 0,
              "registers at power-on values");
    CHECK_MSG(mm_rd(dev, REG_DMA_SRC, 8) == 0 &&
              mm_rd(dev, REG_DMA_DST, 8) == 0 &&
              mm_rd(dev, REG_DMA_CNT, 8) == 0 &&
              mm_rd(dev, REG_DMA_CMD, 8) == 0,
              "DMA registers cleared");
    CHECK_MSG(cfg_rd(dev, 0x04, 2) == 0 && cfg_rd(dev, 0x10, 4) == 0 &&
              cfg_rd(dev, 0x3c, 1) == 0 &&
              cfg_rd(dev, MSI_CAP + 2, 2) == 0x0080 &&
              cfg_rd(dev, MSI_CAP + 4, 4) == 0 &&
              cfg_rd(dev, 0x06, 2) == DEXT_PCI_STATUS_CAP_LIST,
              "config command, BAR0, line, MSI control/address cleared");
    CHECK_MSG(cfg_rd(dev, 0x00, 4) == 0x11e81234 &&
              cfg_rd(dev, 0x34, 1) == 0x40 && cfg_rd(dev, 0x3d, 1) == 1,
              "identity and cap list kept");
    ok = dump_buffer(dev, h, 0x8000, buf);
    for (i = 0; i < BUF_SIZE; i++) {
        ok = ok && buf[i] == 0;
    }
    CHECK_MSG(ok, "buffer zeroed");
    CHECK_MSG(dev->ops->reset_function(dev) == kIOReturnSuccess,
              "reset of an idle device");
    dext_device_free(dev);
    fake_free(h);
}

typedef struct StressArg {
    DextDevice *dev;
    unsigned id;
    uint64_t deadline;
    unsigned ops;
    unsigned bad;
} StressArg;

static void *stress_thread(void *opaque)
{
    StressArg *a = opaque;
    DextDevice *dev = a->dev;
    uint32_t seed = 0x9e3779b9u * (a->id + 1);
    uint64_t v;
    uint32_t c;

    while (now_ns() < a->deadline) {
        seed = seed * 1103515245u + 12345u;
        switch ((seed >> 16) % 12) {
        case 0:
            dev->ops->mmio_write(dev, 0, REG_LIVENESS, 4, seed);
            dev->ops->mmio_read(dev, 0, REG_LIVENESS, 4, &v);
            break;
        case 1:
            dev->ops->mmio_write(dev, 0, REG_FACT, 4, (seed >> 8) & 0x3f);
            break;
        case 2:
            dev->ops->mmio_read(dev, 0, REG_FACT, 4, &v);
            dev->ops->mmio_read(dev, 0, REG_STATUS, 4, &v);
            break;
        case 3:
            dev->ops->mmio_write(dev, 0, REG_STATUS, 4, seed & 0x80);
            break;
        case 4:
            dev->ops->mmio_write(dev, 0, REG_RAISE, 4, 1u << (seed % 32));
            break;
        case 5:
            dev->ops->mmio_write(dev, 0, REG_ACK, 4, seed);
            dev->ops->mmio_read(dev, 0, REG_IRQ, 4, &v);
            break;
        case 6:
            dev->ops->mmio_write(dev, 0, REG_DMA_SRC, 8,
                                 (seed & 1) ? BUF_ADDR + (seed & 0x7ff)
                                            : BUS_BASE + (seed & 0xffff));
            dev->ops->mmio_write(dev, 0, REG_DMA_DST, 8,
                                 (seed & 2) ? BUF_ADDR + (seed & 0x7ff)
                                            : BUS_BASE + (seed & 0xffff));
            dev->ops->mmio_write(dev, 0, REG_DMA_CNT, 8, seed & 0x3ff);
            dev->ops->mmio_write(dev, 0, REG_DMA_CMD, 8,
                                 0x1 | (seed & 0x6));
            break;
        case 7:
            dev->ops->mmio_read(dev, 0, REG_DMA_CMD, 8, &v);
            dev->ops->mmio_read(dev, 0, REG_DMA_SRC, 4, &v);
            break;
        case 8:
            dev->ops->config_read(dev, 0x00, 4, &c);
            if (c != 0x11e81234) {
                a->bad++;
            }
            dev->ops->config_read(dev, 0x06, 2, &c);
            break;
        case 9:
            dev->ops->config_write(dev, MSI_CAP + 2, 2, seed & 1);
            dev->ops->config_write(dev, 0x04, 2, seed & 0x7);
            break;
        case 10:
            dev->ops->mmio_read(dev, 0, REG_ID, 4, &v);
            if (v != 0x010000ed) {
                a->bad++;
            }
            dev->ops->mmio_read(dev, 0, REG_ID, 2, &v);
            break;
        default:
            if (a->id == 0 && (seed & 0x3f00) == 0) {
                dev->ops->reset_function(dev);
            } else {
                dev->ops->mmio_read(dev, 0, 0x100, 4, &v);
            }
            break;
        }
        a->ops++;
    }
    return NULL;
}

static void test_concurrency(void)
{
    FakeHost *h = fake_new();
    DextDevice *dev = edu_new("edu", h);
    StressArg args[4];
    pthread_t t[4];
    unsigned i, ops = 0, bad = 0;
    uint64_t deadline = now_ns() + 1000000000ull;

    harness_section("concurrent MMIO from 4 threads for 1 s");
    fill_mem(h, 0, BUS_SIZE, 1);
    for (i = 0; i < 4; i++) {
        args[i] = (StressArg){ .dev = dev, .id = i, .deadline = deadline };
        pthread_create(&t[i], NULL, stress_thread, &args[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ops += args[i].ops;
        bad += args[i].bad;
    }
    CHECK_MSG(bad == 0, "identity stable under load (%u operations)", ops);
    CHECK_MSG(wait_clear(dev, REG_STATUS, 0x1) &&
              wait_clear(dev, REG_DMA_CMD, 0x1), "device goes idle");
    mm_wr(dev, REG_FACT, 4, 5);
    CHECK_MSG(wait_clear(dev, REG_STATUS, 0x1) &&
              mm_rd(dev, REG_FACT, 4) == 120,
              "device still computes correctly");
    CHECK_MSG(dev->ops->reset_function(dev) == kIOReturnSuccess &&
              mm_rd(dev, REG_IRQ, 4) == 0, "reset after load");
    dext_device_free(dev);
    fake_free(h);
}

static void test_lifecycle(void)
{
    FakeHost *h = fake_new();
    unsigned i;
    bool ok = true;

    harness_section("create / destroy");
    for (i = 0; i < 100; i++) {
        DextDevice *dev = edu_new("edu", (i & 1) ? h : NULL);

        /* Leave work in flight so destroy must stop a busy worker. */
        ok = ok && dev->ops->mmio_write(dev, 0, REG_FACT, 4, i) ==
                   kIOReturnSuccess;
        dev->ops->mmio_write(dev, 0, REG_DMA_SRC, 8, BUS_BASE);
        dev->ops->mmio_write(dev, 0, REG_DMA_DST, 8, BUF_ADDR);
        dev->ops->mmio_write(dev, 0, REG_DMA_CNT, 8, BUF_SIZE);
        dev->ops->mmio_write(dev, 0, REG_DMA_CMD, 8, 0x5);
        dext_device_free(dev);
    }
    CHECK_MSG(ok, "100 create/destroy cycles with work in flight");
    dext_device_free(NULL);
    CHECK_MSG(true, "dext_device_free(NULL) is a no-op");
    fake_free(h);
}

static void test_specs(void)
{
    static const struct {
        const char *spec;
        IOReturn want;
        uint8_t bus, dev, fn;
    } cases[] = {
        { "edu", kIOReturnSuccess, 0, 3, 0 },
        { "edu,", kIOReturnSuccess, 0, 3, 0 },
        { "edu@00:04.0", kIOReturnSuccess, 0, 4, 0 },
        { "edu,dma_mask=0xffffffff@01:1f.7", kIOReturnSuccess, 1, 0x1f, 7 },
        { "edu,bdf=02:03.1", kIOReturnSuccess, 2, 3, 1 },
        { "edu,bdf=0000:0a:00.0", kIOReturnSuccess, 0x0a, 0, 0 },
        { "edu,bdf=02:03.1@05:06.2", kIOReturnSuccess, 5, 6, 2 },
        { "edu,@00:05.0", kIOReturnSuccess, 0, 5, 0 },
        { "edu,dma_mask=0xfff,", kIOReturnSuccess, 0, 3, 0 },
        { "edu@00:20.0", kIOReturnBadArgument, 0, 0, 0 },
        { "edu@00:03.8", kIOReturnBadArgument, 0, 0, 0 },
        { "edu@0001:00:03.0", kIOReturnBadArgument, 0, 0, 0 },
        { "edu@", kIOReturnBadArgument, 0, 0, 0 },
        { "edu@00:03", kIOReturnBadArgument, 0, 0, 0 },
        { "edu@100:03.0", kIOReturnBadArgument, 0, 0, 0 },
        { "edu,bogus=1", kIOReturnBadArgument, 0, 0, 0 },
        { "edu,dma_mask", kIOReturnBadArgument, 0, 0, 0 },
        { "edu,dma_mask=", kIOReturnBadArgument, 0, 0, 0 },
        { "edu,dma_mask=xyz", kIOReturnBadArgument, 0, 0, 0 },
        { "edu,dma_mask=0x", kIOReturnBadArgument, 0, 0, 0 },
        { "edu,dma_mask=-1", kIOReturnBadArgument, 0, 0, 0 },
        { "edu,dma_mask=0", kIOReturnBadArgument, 0, 0, 0 },
        { "edu,dma_mask=0xf0f", kIOReturnBadArgument, 0, 0, 0 },
        { "edu,dma_mask=0x1ffffffffffffffff", kIOReturnBadArgument, 0, 0, 0 },
        { "nosuch", kIOReturnNotFound, 0, 0, 0 },
        { "EDU", kIOReturnNotFound, 0, 0, 0 },
        { "edux", kIOReturnNotFound, 0, 0, 0 },
        { "", kIOReturnBadArgument, 0, 0, 0 },
        { ",dma_mask=1", kIOReturnBadArgument, 0, 0, 0 },
    };
    static DextDevice sentinel;
    unsigned i;

    harness_section("device specs");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* Failure must reset *out, so start from a non-NULL value. */
        DextDevice *dev = &sentinel;
        IOReturn ret = dext_device_create(cases[i].spec, &dev);
        bool ok = ret == cases[i].want;

        if (ret == kIOReturnSuccess) {
            ok = ok && dev != NULL && dev->bus == cases[i].bus &&
                 dev->dev == cases[i].dev && dev->fn == cases[i].fn;
        } else {
            ok = ok && dev == NULL;
        }
        CHECK_MSG(ok, "spec \"%s\" -> 0x%x", cases[i].spec, (unsigned)ret);
        dext_device_free(ret == kIOReturnSuccess ? dev : NULL);
    }
    CHECK_MSG(dext_device_create(NULL, NULL) == kIOReturnBadArgument,
              "NULL spec refused");
    {
        DextDevice *dev = NULL;

        CHECK_MSG(dext_edu_create(NULL, &dev) == kIOReturnSuccess &&
                  dev->dma_mask == (1ull << 28) - 1,
                  "dext_edu_create(NULL) gives defaults");
        dext_device_logf(dev, DEXT_LOG_INFO, "no log hook: %d", 1);
        CHECK_MSG(true, "dext_device_logf without a log hook");
        dext_device_free(dev);
    }
    {
        FakeHost *h = fake_new();
        DextDevice *dev = edu_new("edu", h);

        dext_device_logf(dev, DEXT_LOG_INFO, "hello %s\n", "world");
        pthread_mutex_lock(&h->lock);
        CHECK_MSG(strcmp(h->last_log, "hello world") == 0,
                  "dext_device_logf formats and strips the newline");
        pthread_mutex_unlock(&h->lock);
        dext_device_free(dev);
        fake_free(h);
    }
}

static void test_pciemu(void)
{
    static const PCIEmuIdent id = {
        .vendor_id = 0x1af4, .device_id = 0x1110, .revision = 1,
        .class_code = 0x050000, .subsystem_vendor_id = 0x1af4,
        .subsystem_id = 0x1100, .interrupt_pin = 0,
    };
    static const struct {
        const char *s;
        bool ok;
    } bdfs[] = {
        { "00:03.0", true }, { "0000:01:1f.7", true }, { "1:2.3", true },
        { "ff:1F.7", true }, { "00:20.0", false }, { "00:03.8", false },
        { "0001:00:03.0", false }, { "00:03", false }, { "00:03.0x", false },
        { "", false }, { "000:00.0", false }, { "00:003.0", false },
        { " 00:03.0", false },
    };
    PCIEmu *pe = calloc(1, sizeof(*pe));
    DextDevice desc = { 0 };
    uint32_t v, msi, msix, off;
    uint64_t addr;
    uint32_t data;
    unsigned i, n;
    bool ok;

    harness_section("pciemu");
    CHECK_MSG(dext_pciemu_init(pe, 512, &id) == kIOReturnBadArgument,
              "config size must be 256 or 4096");
    CHECK_MSG(dext_pciemu_init(pe, DEXT_CONFIG_SIZE_EXT, &id) ==
              kIOReturnSuccess, "4096-byte space");
    CHECK_MSG(dext_pciemu_config_read(pe, 0xffc, 4, &v) == kIOReturnSuccess &&
              v == 0 &&
              dext_pciemu_config_read(pe, 0x1000, 1, &v) ==
              kIOReturnBadArgument,
              "extended space readable to 0xfff");
    CHECK_MSG(dext_pciemu_get(pe, 0x06, 2) == 0, "no cap list bit before caps");

    CHECK_MSG(dext_pciemu_add_bar(pe, 0, 32, DEXT_BAR_TYPE_IO) ==
              kIOReturnSuccess, "I/O BAR0 32 bytes");
    dext_pciemu_config_write(pe, 0x10, 4, 0xffffffff);
    CHECK_MSG(dext_pciemu_get(pe, 0x10, 4) == 0xffffffe1,
              "I/O BAR sizing 0xffffffe1");
    dext_pciemu_config_write(pe, 0x10, 4, 0xc047);
    CHECK_MSG(dext_pciemu_bar_address(pe, 0) == 0xc040, "I/O BAR address");
    CHECK_MSG(dext_pciemu_add_bar(pe, 2, 16ull << 30,
                                  DEXT_BAR_TYPE_MEM64 |
                                  DEXT_BAR_TYPE_PREFETCH) == kIOReturnSuccess,
              "64-bit prefetchable BAR2 16 GiB");
    dext_pciemu_config_write(pe, 0x18, 4, 0xffffffff);
    dext_pciemu_config_write(pe, 0x1c, 4, 0xffffffff);
    CHECK_MSG(dext_pciemu_get(pe, 0x18, 4) == 0x0000000c &&
              dext_pciemu_get(pe, 0x1c, 4) == 0xfffffffc,
              "64-bit BAR sizing: low 0x0000000c, high 0xfffffffc");
    dext_pciemu_config_write(pe, 0x18, 4, 0);
    dext_pciemu_config_write(pe, 0x1c, 4, 0x4);
    CHECK_MSG(dext_pciemu_bar_address(pe, 2) == 0x400000000ull,
              "64-bit BAR address");
    CHECK_MSG(dext_pciemu_add_bar(pe, 4, 4096, 0) == kIOReturnSuccess,
              "32-bit BAR4 4 KiB");
    dext_pciemu_config_write(pe, 0x20, 4, 0xffffffff);
    CHECK_MSG(dext_pciemu_get(pe, 0x20, 4) == 0xfffff000, "32-bit BAR sizing");
    CHECK_MSG(dext_pciemu_add_bar(pe, 3, 4096, 0) == kIOReturnExclusiveAccess &&
              dext_pciemu_add_bar(pe, 0, 4096, 0) == kIOReturnExclusiveAccess,
              "taken BAR registers refused");
    CHECK_MSG(dext_pciemu_add_bar(pe, 5, 4096, DEXT_BAR_TYPE_MEM64) ==
              kIOReturnBadArgument &&
              dext_pciemu_add_bar(pe, 5, 3000, 0) == kIOReturnBadArgument &&
              dext_pciemu_add_bar(pe, 5, 8, 0) == kIOReturnBadArgument &&
              dext_pciemu_add_bar(pe, 5, 1ull << 32, 0) ==
              kIOReturnBadArgument &&
              dext_pciemu_add_bar(pe, 5, 512, DEXT_BAR_TYPE_IO) ==
              kIOReturnBadArgument &&
              dext_pciemu_add_bar(pe, 5, 64,
                                  DEXT_BAR_TYPE_IO | DEXT_BAR_TYPE_MEM64) ==
              kIOReturnBadArgument &&
              dext_pciemu_add_bar(pe, 6, 4096, 0) == kIOReturnBadArgument,
              "bad BAR number, size, type refused");
    dext_pciemu_describe(pe, &desc);
    CHECK_MSG(desc.vendor_id == 0x1af4 && desc.class_code == 0x050000 &&
              desc.config_size == 4096 && desc.bars[0].size == 32 &&
              desc.bars[0].type == DEXT_BAR_TYPE_IO &&
              desc.bars[2].size == 16ull << 30 && desc.bars[2].type == 0x0c &&
              desc.bars[3].size == 0 && desc.bars[4].size == 4096 &&
              desc.bars[1].size == 0, "dext_pciemu_describe");

    /* MSI: 4 vectors, 32-bit, per-vector masking. */
    CHECK_MSG(dext_pciemu_add_msi(pe, 3, false, true, &msi) ==
              kIOReturnBadArgument, "MSI vector count must be a power of two");
    CHECK_MSG(dext_pciemu_add_msi(pe, 4, false, true, &msi) ==
              kIOReturnSuccess && msi == 0x40, "MSI at 0x40");
    CHECK_MSG(dext_pciemu_get(pe, 0x06, 2) & DEXT_PCI_STATUS_CAP_LIST,
              "cap list bit set");
    CHECK_MSG(dext_pciemu_get(pe, msi + 2, 2) == 0x0104,
              "MSI control: mmc 4 vectors, PVM, 32-bit");
    CHECK_MSG(!dext_pciemu_msi_enabled(pe) && dext_pciemu_msi_vectors(pe) == 1,
              "MSI disabled, 1 vector enabled");
    dext_pciemu_config_write(pe, msi + 2, 2, 0xffff);
    CHECK_MSG(dext_pciemu_get(pe, msi + 2,
                              2) == 0x0175 && dext_pciemu_msi_enabled(pe) &&
              dext_pciemu_msi_vectors(pe) == 4,
              "MSI enable + MME writable, vectors capped at 4");
    dext_pciemu_config_write(pe, msi + 2, 2, 0x0011);
    dext_pciemu_config_write(pe, msi + 4, 4, 0xfee00003);
    dext_pciemu_config_write(pe, msi + 8, 4, 0xffff4020);
    CHECK_MSG(dext_pciemu_msi_vectors(pe) == 2 &&
              dext_pciemu_msi_message(pe, 1, &addr, &data) &&
              addr == 0xfee00000 && data == 0x4021 &&
              !dext_pciemu_msi_message(pe, 2, &addr, &data),
              "MSI message for vector 1 of 2");
    dext_pciemu_config_write(pe, msi + 0x0c, 4, 0xffffffff);
    CHECK_MSG(dext_pciemu_get(pe, msi + 0x0c, 4) == 0xf &&
              dext_pciemu_msi_masked(pe, 3) && !dext_pciemu_msi_masked(pe, 4),
              "mask bits writable for 4 vectors");
    dext_pciemu_msi_set_pending(pe, 2, true);
    dext_pciemu_config_write(pe, msi + 0x10, 4, 0);
    CHECK_MSG(dext_pciemu_get(pe, msi + 0x10, 4) == 0x4,
              "pending bits read-only");
    CHECK_MSG(dext_pciemu_add_msi(pe, 1, true, false,
                                  NULL) == kIOReturnExclusiveAccess,
              "second MSI refused");

    /* MSI-X with table and PBA in BAR4. */
    CHECK_MSG(dext_pciemu_add_msix(pe, 8, 0, 0, 4, 0x800, NULL) ==
              kIOReturnBadArgument &&
              dext_pciemu_add_msix(pe, 8, 3, 0, 4, 0x800, NULL) ==
              kIOReturnBadArgument &&
              dext_pciemu_add_msix(pe, 8, 4, 0xf88, 4, 0x800, NULL) ==
              kIOReturnBadArgument &&
              dext_pciemu_add_msix(pe, 8, 4, 4, 4, 0x800, NULL) ==
              kIOReturnBadArgument &&
              dext_pciemu_add_msix(pe, 0, 4, 0, 4, 0x800, NULL) ==
              kIOReturnBadArgument,
              "MSI-X in I/O BAR, upper half, overflowing, misaligned refused");
    CHECK_MSG(dext_pciemu_add_msix(pe, 8, 4, 0, 4, 0x800, &msix) ==
              kIOReturnSuccess && msix == 0x54, "MSI-X at 0x54");
    CHECK_MSG(dext_pciemu_get(pe, msix + 2, 2) == 0x0007 &&
              dext_pciemu_get(pe, msix + 4, 4) == 0x00000004 &&
              dext_pciemu_get(pe, msix + 8, 4) == 0x00000804 &&
              dext_pciemu_msix_table_size(pe) == 8,
              "MSI-X control/table/PBA registers");
    dext_pciemu_config_write(pe, msix + 4, 4, 0);
    dext_pciemu_config_write(pe, msix + 2, 2, 0x4000);
    CHECK_MSG(dext_pciemu_get(pe, msix + 4, 4) == 4 &&
              !dext_pciemu_msix_enabled(pe) &&
              dext_pciemu_msix_function_masked(pe), "MSI-X function mask");
    dext_pciemu_config_write(pe, msix + 2, 2, 0xffff);
    CHECK_MSG(dext_pciemu_get(pe, msix + 2, 2) == 0xc007 &&
              dext_pciemu_msix_enabled(pe), "MSI-X enable");

    /* The chain as a driver walks it. */
    CHECK_MSG(dext_pciemu_get(pe, 0x34, 1) == 0x40 &&
              dext_pciemu_get(pe, 0x40, 1) == 0x05 &&
              dext_pciemu_get(pe, 0x41, 1) == 0x54 &&
              dext_pciemu_get(pe, 0x54, 1) == 0x11 &&
              dext_pciemu_get(pe, 0x55, 1) == 0,
              "chain 0x34 -> 0x40 -> 0x54 -> end");

    /* Write-1-to-clear. */
    dext_pciemu_set(pe, 0x06, 2, dext_pciemu_get(pe, 0x06, 2) | 0x2000);
    dext_pciemu_config_write(pe, 0x06, 2, 0x0010);
    v = dext_pciemu_get(pe, 0x06, 2);
    dext_pciemu_config_write(pe, 0x06, 2, 0x2000);
    CHECK_MSG(v == 0x2010 && dext_pciemu_get(pe, 0x06, 2) == 0x0010,
              "status error bit write-1-to-clear");
    dext_pciemu_set_intx(pe, true);
    CHECK_MSG(dext_pciemu_get(pe, 0x06, 2) == 0x0018, "INTx status bit");

    dext_pciemu_config_write(pe, 0x04, 2, 0xffff);
    dext_pciemu_reset(pe);
    CHECK_MSG(dext_pciemu_get(pe, 0x04, 2) == 0 &&
              dext_pciemu_get(pe, 0x06, 2) == 0x0010 &&
              dext_pciemu_get(pe, 0x10, 4) == 0x1 &&
              dext_pciemu_get(pe, 0x1c, 4) == 0 &&
              dext_pciemu_get(pe, msi + 2, 2) == 0x0104 &&
              dext_pciemu_get(pe, msi + 4, 4) == 0 &&
              dext_pciemu_get(pe, msi + 0x0c, 4) == 0 &&
              dext_pciemu_get(pe, msi + 0x10, 4) == 0 &&
              dext_pciemu_get(pe, msix + 2, 2) == 0x0007 &&
              dext_pciemu_get(pe, 0x00, 4) == 0x11101af4,
              "reset clears writable state, keeps the rest");

    /* Fill the capability area. */
    n = 0;
    while (dext_pciemu_add_capability(pe, 0x09, 16, &off) == kIOReturnSuccess) {
        n++;
    }
    CHECK_MSG(n == (0x100 - 0x60) / 16 && off == 0xf0,
              "capability area fills up to 0xff (%u vendor caps)", n);
    CHECK_MSG(dext_pciemu_add_capability(pe, 0x09, 1, &off) ==
              kIOReturnBadArgument,
              "capability smaller than its header refused");

    ok = true;
    for (i = 0; i < sizeof(bdfs) / sizeof(bdfs[0]); i++) {
        uint8_t b = 0, d = 0, f = 0;

        if (dext_parse_bdf(bdfs[i].s, &b, &d, &f) != bdfs[i].ok) {
            ok = false;
            CHECK_MSG(false, "parse_bdf(\"%s\")", bdfs[i].s);
        }
    }
    {
        uint8_t b = 0, d = 0, f = 0;

        ok = ok && dext_parse_bdf("ff:1F.7", &b, &d, &f) && b == 0xff &&
             d == 0x1f && f == 7;
    }
    CHECK_MSG(ok, "dext_parse_bdf accepts and refuses as documented");
    free(pe);
}

int main(void)
{
    verbose = getenv("EDU_TEST_VERBOSE") != NULL;

    test_pciemu();
    test_specs();
    test_identity();
    test_registers();
    test_factorial();
    test_irq();
    test_dma();
    test_dma_mask();
    test_dma_errors();
    test_busy_and_reset();
    test_concurrency();
    test_lifecycle();

    return harness_finish();
}
