/*
 * SPDX-License-Identifier: MIT
 *
 * dext_session_call() against a fake backend: every selector's policy
 * row, checked from outside the core.
 *
 * The fake device records every hook call and the number of core locks
 * its caller held.  For each selector the test knows, independently of
 * the core's method table, its scalar counts and which of these refuse
 * it: no claim, no claim without the unclaimed-writes policy, real
 * hardware the operator did not allow writes to, a backend without DMA,
 * a backend without interrupts, contract-only mode.  Each selector is
 * called with valid arguments in a fresh fixture for each of those
 * conditions; a refused call must answer the refusal and reach no hook,
 * any other call must answer what it answers when everything is allowed.
 * Besides: too few scalars or too little room, unknown selectors, a
 * terminated device, the async path, the precedence of the refusals,
 * BAR mapping under the write policy, dext_core_allow_writes(), the
 * locks held when hooks run (backends/backend.h), and threads driving
 * one device while its hooks and a device thread make upcalls (for the
 * lock order, under ThreadSanitizer).
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libdext/pci-regs.h"
#include "harness.h"
#include "core/core-internal.h"
#include "core-clients.h"

enum {
    HOOK_CONFIG_READ,
    HOOK_CONFIG_WRITE,
    HOOK_MMIO_READ,
    HOOK_MMIO_WRITE,
    HOOK_MAP_BAR,
    HOOK_RESET,
    HOOK_COUNT,
};

/* The hooks that can change a device (mmio_read counts: side effects). */
#define WRITE_HOOKS ((1u << HOOK_CONFIG_WRITE) | (1u << HOOK_MMIO_READ) | \
                     (1u << HOOK_MMIO_WRITE) | (1u << HOOK_MAP_BAR) | \
                     (1u << HOOK_RESET))

#define FAKE_BAR_SIZE 4096
#define FAKE_MSI_CAP  0x40

typedef struct Fake {
    pthread_mutex_t lock;           /* a backend lock: cfg */
    uint8_t cfg[DEXT_CONFIG_SIZE];
    unsigned calls[HOOK_COUNT];     /* __atomic */
    unsigned locks_seen[HOOK_COUNT]; /* core locks held at the last call */
    bool raise_in_mmio_write;       /* upcall from inside the hook */
    pthread_t thread;               /* a device thread, if @threaded */
    bool threaded;
    bool thread_stop;               /* __atomic */
} Fake;

static void hook_enter(DextDevice *dev, int hook)
{
    Fake *f = dev->priv;

    __atomic_add_fetch(&f->calls[hook], 1, __ATOMIC_RELAXED);
    __atomic_store_n(&f->locks_seen[hook], dext_core_locks_held,
                     __ATOMIC_RELAXED);
}

static IOReturn fake_config_read(DextDevice *dev, uint32_t off, uint32_t width,
                                 uint32_t *val)
{
    Fake *f = dev->priv;

    hook_enter(dev, HOOK_CONFIG_READ);
    pthread_mutex_lock(&f->lock);
    *val = cfg_get(f->cfg, off, width);
    pthread_mutex_unlock(&f->lock);
    return kIOReturnSuccess;
}

static IOReturn fake_config_write(DextDevice *dev, uint32_t off,
                                  uint32_t width, uint32_t val)
{
    Fake *f = dev->priv;

    hook_enter(dev, HOOK_CONFIG_WRITE);
    pthread_mutex_lock(&f->lock);
    cfg_set(f->cfg, off, width, val);
    pthread_mutex_unlock(&f->lock);
    return kIOReturnSuccess;
}

static IOReturn fake_mmio_read(DextDevice *dev, int bar, uint64_t off,
                               uint32_t width, uint64_t *val)
{
    hook_enter(dev, HOOK_MMIO_READ);
    *val = off;
    return kIOReturnSuccess;
}

static IOReturn fake_mmio_write(DextDevice *dev, int bar, uint64_t off,
                                uint32_t width, uint64_t val)
{
    Fake *f = dev->priv;

    hook_enter(dev, HOOK_MMIO_WRITE);
    if (__atomic_load_n(&f->raise_in_mmio_write, __ATOMIC_RELAXED)) {
        /* A doorbell: the device answers at once, its lock held. */
        pthread_mutex_lock(&f->lock);
        dev->host.raise_msi(dev->host.opaque, 0);
        pthread_mutex_unlock(&f->lock);
    }
    return kIOReturnSuccess;
}

static IOReturn fake_map_bar(DextDevice *dev, int bar, DextMemory *out)
{
    hook_enter(dev, HOOK_MAP_BAR);
    out->fd = dext_memfd_create("fake-bar", FAKE_BAR_SIZE);
    if (out->fd < 0) {
        return kIOReturnNoMemory;
    }
    out->offset = 0;
    out->size = FAKE_BAR_SIZE;
    out->writable = true;
    return kIOReturnSuccess;
}

static IOReturn fake_reset(DextDevice *dev)
{
    hook_enter(dev, HOOK_RESET);
    return kIOReturnSuccess;
}

static void fake_destroy(DextDevice *dev)
{
    Fake *f = dev->priv;

    if (f->threaded) {
        __atomic_store_n(&f->thread_stop, true, __ATOMIC_RELAXED);
        pthread_join(f->thread, NULL);
    }
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static const DextDeviceOps fake_ops = {
    .name = "fake",
    .config_read = fake_config_read,
    .config_write = fake_config_write,
    .mmio_read = fake_mmio_read,
    .mmio_write = fake_mmio_write,
    .map_bar = fake_map_bar,
    .reset_function = fake_reset,
    .destroy = fake_destroy,
};

/* What the fixture's device is. */
enum {
    DEV_HARDWARE = 1 << 0,      /* real hardware, read-only */
    DEV_ALLOW = 1 << 1,         /* ...with writes allowed in its spec */
    DEV_NO_DMA = 1 << 2,
    DEV_NO_IRQ = 1 << 3,
};

/* A function at 00:05.0 with one 4 KiB BAR and a one-vector MSI. */
static DextDevice *fake_new(unsigned what, Fake **out)
{
    DextDevice *dev = calloc(1, sizeof(*dev));
    Fake *f = calloc(1, sizeof(*f));

    if (dev == NULL || f == NULL) {
        exit(1);
    }
    pthread_mutex_init(&f->lock, NULL);
    f->cfg[0x00] = 0xf4;                /* vendor 1af4, device 1110 */
    f->cfg[0x01] = 0x1a;
    f->cfg[0x02] = 0x10;
    f->cfg[0x03] = 0x11;
    f->cfg[DEXT_PCI_STATUS] = DEXT_PCI_STATUS_CAP_LIST;
    f->cfg[0x0b] = 0xff;                /* class ff0000 */
    f->cfg[DEXT_PCI_CAPABILITY_LIST] = FAKE_MSI_CAP;
    f->cfg[FAKE_MSI_CAP] = DEXT_PCI_CAP_ID_MSI;
    dev->ops = &fake_ops;
    dev->priv = f;
    strcpy(dev->name, "fake");
    dev->bus = 0;
    dev->dev = 5;
    dev->fn = 0;
    dev->vendor_id = 0x1af4;
    dev->device_id = 0x1110;
    dev->class_code = 0xff0000;
    dev->config_size = DEXT_CONFIG_SIZE;
    dev->dma_mask = 0xffffffffull;
    dev->bars[0].size = FAKE_BAR_SIZE;
    dev->bars[0].mappable = true;
    dev->hardware = (what & DEV_HARDWARE) != 0;
    dev->allow_writes = (what & DEV_ALLOW) != 0;
    dev->no_dma = (what & DEV_NO_DMA) != 0;
    dev->no_irq = (what & DEV_NO_IRQ) != 0;
    *out = f;
    return dev;
}

static unsigned hook_calls(Fake *f, unsigned mask)
{
    unsigned n = 0;

    for (int h = 0; h < HOOK_COUNT; h++) {
        if (mask & (1u << h)) {
            n += __atomic_load_n(&f->calls[h], __ATOMIC_RELAXED);
        }
    }
    return n;
}

static void hooks_reset(Fake *f)
{
    for (int h = 0; h < HOOK_COUNT; h++) {
        __atomic_store_n(&f->calls[h], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&f->locks_seen[h], ~0u, __ATOMIC_RELAXED);
    }
}

/* ------------------------------------------------------------------ */
/* The policy rows, as the contract and docs describe them              */

enum {
    P_CLAIM = 1 << 0,       /* NotOpen without a claim */
    P_WRITE = 1 << 1,       /* NotOpen without a claim, unless the policy */
    P_WRITABLE = 1 << 2,    /* NotPermitted on read-only hardware */
    P_DMA = 1 << 3,         /* Unsupported without DMA */
    P_IRQ = 1 << 4,         /* Unsupported without interrupts */
    P_EXT = 1 << 5,         /* Unsupported in contract-only mode */
};

static uint8_t region[16384] __attribute__((aligned(16384)));

typedef struct Row {
    uint32_t sel;
    const char *name;
    uint32_t in, out;       /* scalars the contract needs */
    unsigned policy;        /* P_* */
    uint64_t args[4];       /* valid inputs */
    size_t struct_in;       /* bytes of struct input (zeros) */
    size_t struct_out;      /* room for struct output */
    IOReturn expect;        /* claimed, everything allowed */
} Row;

static Row rows[] = {
    { kDextSelectorGetIdentity, "GetIdentity", 0, 6, 0,
      { 0 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorClaim, "Claim", 0, 0, 0, { 0 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorTerminate, "Terminate", 0, 0, P_WRITE,
      { 0 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorAllocateDMABuffer, "AllocateDMABuffer", 2, 6,
      P_CLAIM | P_WRITABLE | P_DMA, { 4096, 0 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorFreeDMABuffer, "FreeDMABuffer", 0, 0, 0,
      { 0 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorRegisterDMARegion, "RegisterDMARegion", 3, 3,
      P_CLAIM | P_WRITABLE | P_DMA, { 0x10000, 0, sizeof(region) }, 0, 0,
      kIOReturnSuccess },
    { kDextSelectorUnregisterDMARegion, "UnregisterDMARegion", 1, 0, 0,
      { 0x10000 }, 0, 0, kIOReturnNotFound },
    { kDextSelectorProbeDMARegion, "ProbeDMARegion", 2, 1, 0,
      { 0x10000, 0 }, 0, 0, kIOReturnNotFound },
    { kDextSelectorConfigRead, "ConfigRead", 2, 1, 0,
      { 0, 4 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorConfigWrite, "ConfigWrite", 3, 0, P_WRITE | P_WRITABLE,
      { DEXT_PCI_INTERRUPT_LINE, 1, 5 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorGetBARInfo, "GetBARInfo", 1, 3, 0,
      { 0 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorMMIORead, "MMIORead", 3, 1, P_WRITABLE,
      { 0, 8, 4 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorMMIOWrite, "MMIOWrite", 4, 0, P_WRITE | P_WRITABLE,
      { 0, 8, 4, 1 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorSetupInterrupts, "SetupInterrupts", 0, 1,
      P_CLAIM | P_WRITABLE | P_IRQ, { 0 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorCheckInterrupt, "CheckInterrupt", 0, 4, 0,
      { 0 }, 0, 0, kIOReturnNotReady },
    /* Only an async call has something to wake. */
    { kDextSelectorWaitInterrupt, "WaitInterrupt", 0, 0, 0,
      { 0 }, 0, 0, kIOReturnBadArgument },
    { kDextSelectorSetIRQMask, "SetIRQMask", 4, 0, 0,
      { 0 }, 0, 0, kIOReturnNotReady },
    { kDextSelectorResetDevice, "ResetDevice", 0, 0, P_CLAIM | P_WRITABLE,
      { 0 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorConfigReadBlock, "ConfigReadBlock", 3, 0, P_EXT,
      { 0, 64, 0 }, 0, 64, kIOReturnSuccess },
    { kDextSelectorConfigWriteBlock, "ConfigWriteBlock", 1, 0,
      P_EXT | P_WRITE | P_WRITABLE, { DEXT_PCI_INTERRUPT_LINE }, 1, 0,
      kIOReturnSuccess },
    { kDextSelectorGetDeviceStatus, "GetDeviceStatus", 0, 6, P_EXT,
      { 0 }, 0, 0, kIOReturnSuccess },
    { kDextSelectorRegisterDMARegionAt, "RegisterDMARegionAt", 4, 3,
      P_EXT | P_CLAIM | P_WRITABLE | P_DMA,
      { 0x20000, 0, sizeof(region), 0x200000 }, 0, 0, kIOReturnSuccess },
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static Row *row(uint32_t sel)
{
    for (size_t i = 0; i < NROWS; i++) {
        if (rows[i].sel == sel) {
            return &rows[i];
        }
    }
    abort();
}

/* Call @r's selector with @nin scalars and room for @room outputs. */
static IOReturn call_row(DextSession *s, const Row *r, uint32_t nin,
                         uint32_t room)
{
    uint64_t in[DEXT_MAX_SCALARS] = { 0 };
    uint64_t out[DEXT_MAX_SCALARS];
    uint8_t sin[DEXT_CONFIG_SIZE] = { 0 };
    uint8_t sout[DEXT_CONFIG_SIZE];
    size_t sout_size = r->struct_out;
    uint32_t cnt = room;
    DextCallArgs a = {
        .scalar_in = in, .scalar_in_cnt = nin,
        .struct_in = r->struct_in ? sin : NULL,
        .struct_in_size = r->struct_in,
        .scalar_out = out, .scalar_out_cnt = &cnt,
        .struct_out = sout, .struct_out_size = &sout_size,
    };

    memcpy(in, r->args, sizeof(r->args));
    return dext_session_call(s, r->sel, &a);
}

/* ------------------------------------------------------------------ */
/* Fixtures                                                             */

typedef struct Fixture {
    DextCore *core;
    Fake *fake;
    uint64_t id;
    DextSession *claimer;   /* holds a claim, so the device is open */
    DextSession *caller;    /* the claimer, or a session without a claim */
} Fixture;

enum {
    FIX_UNCLAIMED = 1 << 0,         /* the caller holds no claim */
    FIX_UNCLAIMED_WRITES = 1 << 1,  /* DEXT_POLICY_UNCLAIMED_WRITES */
    FIX_CONTRACT_ONLY = 1 << 2,
    FIX_NO_IRQ_PAGE = 1 << 3,       /* dext_core_set_no_irq_page() */
};

static void fixture_open(Fixture *fx, unsigned dev_what, unsigned how)
{
    DextDevice *dev = fake_new(dev_what, &fx->fake);

    memset(region, 0x11, sizeof(region));
    row(kDextSelectorRegisterDMARegion)->args[1] = (uintptr_t)region;
    row(kDextSelectorRegisterDMARegionAt)->args[1] = (uintptr_t)region;
    fx->core = dext_core_new(NULL, NULL);
    if (fx->core == NULL) {
        exit(1);
    }
    dext_core_set_policy(fx->core, (how & FIX_UNCLAIMED_WRITES) ?
                                   DEXT_POLICY_UNCLAIMED_WRITES : 0);
    dext_core_set_contract_only(fx->core, (how & FIX_CONTRACT_ONLY) != 0);
    dext_core_set_no_irq_page(fx->core, (how & FIX_NO_IRQ_PAGE) != 0);
    if (dext_core_add_device(fx->core, dev, &fx->id) != kIOReturnSuccess ||
        dext_core_open(fx->core, fx->id, 0, getpid(), -1,
                       &fx->claimer) != kIOReturnSuccess ||
        dext_session_call(fx->claimer, kDextSelectorClaim,
                          &(DextCallArgs){ 0 }) != kIOReturnSuccess) {
        exit(1);
    }
    fx->caller = fx->claimer;
    if ((how & FIX_UNCLAIMED) &&
        dext_core_open(fx->core, fx->id, 0, getpid(), -1,
                       &fx->caller) != kIOReturnSuccess) {
        exit(1);
    }
    hooks_reset(fx->fake);
}

static void fixture_close(Fixture *fx)
{
    if (fx->caller != fx->claimer) {
        dext_session_close(fx->caller);
    }
    dext_session_close(fx->claimer);
    dext_core_free(fx->core);
}

/*
 * Every selector under one condition: rows with a flag in @refused_by
 * answer @refusal and reach no hook; the others answer as usual.
 */
static void check_condition(const char *what, unsigned dev_what, unsigned how,
                            unsigned refused_by, IOReturn refusal)
{
    harness_section("%s", what);
    for (size_t i = 0; i < NROWS; i++) {
        const Row *r = &rows[i];
        bool refused = (r->policy & refused_by) != 0;
        Fixture fx;
        IOReturn ret;

        fixture_open(&fx, dev_what, how);
        ret = call_row(fx.caller, r, r->in, r->out);
        CHECK_MSG(ret == (refused ? refusal : r->expect),
                  "%s: %s answers 0x%x, want 0x%x", what, r->name,
                  (unsigned)ret, (unsigned)(refused ? refusal : r->expect));
        if (refused) {
            CHECK_MSG(hook_calls(fx.fake, ~0u) == 0,
                      "%s: refused %s reached %u hook(s)", what, r->name,
                      hook_calls(fx.fake, ~0u));
        }
        fixture_close(&fx);
    }
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void test_rows(void)
{
    check_condition("claimed, everything allowed: each method's answer", 0,
                    0, 0, 0);
    check_condition("no claim: claim-only and write methods are refused",
                    0, FIX_UNCLAIMED, P_CLAIM | P_WRITE, kIOReturnNotOpen);
    check_condition("no claim, unclaimed-writes policy: only claim-only "
                    "methods are refused", 0,
                    FIX_UNCLAIMED | FIX_UNCLAIMED_WRITES, P_CLAIM,
                    kIOReturnNotOpen);
    check_condition("read-only hardware: changing methods are refused",
                    DEV_HARDWARE, 0, P_WRITABLE, kIOReturnNotPermitted);
    check_condition("hardware with writes allowed in its spec",
                    DEV_HARDWARE | DEV_ALLOW, 0, 0, 0);
    check_condition("a backend without DMA", DEV_NO_DMA, 0, P_DMA,
                    kIOReturnUnsupported);
    check_condition("a backend without interrupts", DEV_NO_IRQ, 0, P_IRQ,
                    kIOReturnUnsupported);
    check_condition("contract-only: extensions are refused", 0,
                    FIX_CONTRACT_ONLY, P_EXT, kIOReturnUnsupported);
}

static void test_counts(void)
{
    static const uint32_t unknown[] = {
        kDextSelectorContractCount, kDextSelectorExtensionBase - 1,
        kDextSelectorExtensionEnd, 0xffffffffu,
    };
    Fixture fx;

    harness_section("scalar counts and unknown selectors");
    fixture_open(&fx, 0, 0);
    for (size_t i = 0; i < NROWS; i++) {
        const Row *r = &rows[i];

        if (r->in > 0) {
            CHECK_MSG(call_row(fx.caller, r, r->in - 1, r->out) ==
                      kIOReturnBadArgument, "%s with %u scalar(s)", r->name,
                      r->in - 1);
        }
        if (r->out > 0) {
            CHECK_MSG(call_row(fx.caller, r, r->in, r->out - 1) ==
                      kIOReturnBadArgument, "%s with room for %u", r->name,
                      r->out - 1);
        }
        CHECK_MSG(call_row(fx.caller, r, DEXT_MAX_SCALARS + 1, r->out) ==
                  kIOReturnBadArgument, "%s with %u scalars", r->name,
                  DEXT_MAX_SCALARS + 1);
    }
    CHECK_EQ(hook_calls(fx.fake, ~0u), 0);
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        DextCallArgs a = { 0 };

        CHECK_MSG(dext_session_call(fx.caller, unknown[i], &a) ==
                  kIOReturnUnsupported, "selector %u is unknown",
                  unknown[i]);
    }
    fixture_close(&fx);
}

static void test_terminated(void)
{
    Fixture fx;

    harness_section("a terminated device answers NoDevice, hooks untouched");
    fixture_open(&fx, 0, 0);
    CHECK_KR(call_row(fx.caller, row(kDextSelectorTerminate), 0, 0),
             kIOReturnSuccess);
    hooks_reset(fx.fake);
    for (size_t i = 0; i < NROWS; i++) {
        CHECK_MSG(call_row(fx.caller, &rows[i], rows[i].in, rows[i].out) ==
                  kIOReturnNoDevice, "%s after Terminate", rows[i].name);
    }
    CHECK_EQ(hook_calls(fx.fake, ~0u), 0);
    fixture_close(&fx);
}

static void test_precedence(void)
{
    const Row *alloc = row(kDextSelectorAllocateDMABuffer);
    Fixture fx;

    harness_section("refusals in order: claim, writable, DMA");
    fixture_open(&fx, DEV_HARDWARE | DEV_NO_DMA, FIX_UNCLAIMED);
    CHECK_KR(call_row(fx.caller, alloc, 2, 6), kIOReturnNotOpen);
    CHECK_KR(call_row(fx.claimer, alloc, 2, 6), kIOReturnNotPermitted);
    fixture_close(&fx);
    fixture_open(&fx, DEV_HARDWARE | DEV_ALLOW | DEV_NO_DMA, 0);
    CHECK_KR(call_row(fx.caller, alloc, 2, 6), kIOReturnUnsupported);
    fixture_close(&fx);
    /* Contract-only is checked before a terminated device. */
    fixture_open(&fx, 0, FIX_CONTRACT_ONLY);
    CHECK_KR(call_row(fx.caller, row(kDextSelectorTerminate), 0, 0),
             kIOReturnSuccess);
    CHECK_KR(call_row(fx.caller, row(kDextSelectorGetDeviceStatus), 0, 6),
             kIOReturnUnsupported);
    CHECK_KR(call_row(fx.caller, row(kDextSelectorGetIdentity), 0, 6),
             kIOReturnNoDevice);
    fixture_close(&fx);
}

/*
 * Memory type 7 is the contract's: a contract-only dext maps it once
 * SetupInterrupts has made it; one that keeps it to itself answers
 * Unsupported then.  Both NotReady before.
 */
static void check_irq_page(unsigned how, IOReturn after)
{
    DextMemory mem;
    uint64_t nvec[1];
    uint32_t cnt = 1;
    Fixture fx;

    fixture_open(&fx, 0, how);
    CHECK_KR(dext_session_map(fx.caller, kDextMemoryTypeInterruptPage, &mem),
             kIOReturnNotReady);
    CHECK_KR(dext_session_call(fx.caller, kDextSelectorSetupInterrupts,
                               &(DextCallArgs){ .scalar_out = nvec,
                                                .scalar_out_cnt = &cnt }),
             kIOReturnSuccess);
    mem.fd = -1;
    CHECK_KR(dext_session_map(fx.caller, kDextMemoryTypeInterruptPage, &mem),
             after);
    CHECK(after == kIOReturnSuccess ? mem.fd >= 0 : mem.fd == -1);
    if (mem.fd >= 0) {
        close(mem.fd);
    }
    fixture_close(&fx);
}

static void test_irq_page(void)
{
    harness_section("the interrupt page: contract-only maps it, "
                    "no-irq-page refuses it");
    check_irq_page(FIX_CONTRACT_ONLY, kIOReturnSuccess);
    check_irq_page(FIX_CONTRACT_ONLY | FIX_NO_IRQ_PAGE, kIOReturnUnsupported);
    check_irq_page(FIX_NO_IRQ_PAGE, kIOReturnUnsupported);
}

static void test_read_only_hardware(void)
{
    Fixture fx;
    DextMemory mem;

    harness_section("read-only hardware: no hook that changes it ever runs");
    fixture_open(&fx, DEV_HARDWARE, 0);
    for (size_t i = 0; i < NROWS; i++) {
        if (rows[i].sel != kDextSelectorTerminate) {
            call_row(fx.caller, &rows[i], rows[i].in, rows[i].out);
        }
    }
    CHECK_KR(dext_session_map(fx.caller, kDextMemoryTypeBAR0, &mem),
             kIOReturnNotPermitted);
    CHECK_MSG(hook_calls(fx.fake, WRITE_HOOKS) == 0,
              "%u calls of hooks that change the device",
              hook_calls(fx.fake, WRITE_HOOKS));
    CHECK(hook_calls(fx.fake, 1u << HOOK_CONFIG_READ) > 0);

    /* The operator allows writes: the same session may now change it. */
    CHECK_KR(dext_core_allow_writes(fx.core, 0, 5, 0), kIOReturnSuccess);
    CHECK_KR(call_row(fx.caller, row(kDextSelectorConfigWrite), 3, 0),
             kIOReturnSuccess);
    CHECK_EQ(hook_calls(fx.fake, 1u << HOOK_CONFIG_WRITE), 1);
    CHECK_KR(dext_session_map(fx.caller, kDextMemoryTypeBAR0, &mem),
             kIOReturnSuccess);
    close(mem.fd);
    fixture_close(&fx);

    harness_section("dext_core_allow_writes() names a served real device");
    fixture_open(&fx, 0, 0);
    CHECK_KR(dext_core_allow_writes(fx.core, 0, 5, 0), kIOReturnNotFound);
    CHECK_KR(dext_core_allow_writes(fx.core, 0, 6, 0), kIOReturnNotFound);
    CHECK_KR(dext_core_allow_writes(NULL, 0, 5, 0), kIOReturnBadArgument);
    fixture_close(&fx);
}

static void test_async(void)
{
    uint64_t nvec[1];
    uint32_t cnt;
    Fixture fx;
    int fds[2];

    harness_section("async calls: WaitInterrupt only");
    fixture_open(&fx, 0, 0);
    if (!CHECK(pipe(fds) == 0)) {
        fixture_close(&fx);
        return;
    }
    for (size_t i = 0; i < NROWS; i++) {
        uint64_t in[DEXT_MAX_SCALARS] = { 0 };
        uint64_t out[DEXT_MAX_SCALARS];
        DextCallArgs a = {
            .scalar_in = in, .scalar_in_cnt = rows[i].in,
            .scalar_out = out, .scalar_out_cnt = &cnt,
        };

        if (rows[i].sel == kDextSelectorWaitInterrupt) {
            continue;
        }
        cnt = rows[i].out;
        CHECK_MSG(dext_session_call_async(fx.caller, rows[i].sel, fds[1],
                                          &a) == kIOReturnBadArgument,
                  "async %s", rows[i].name);
    }
    CHECK_EQ(hook_calls(fx.fake, ~0u), 0);
    CHECK_KR(dext_session_call_async(fx.caller, kDextSelectorWaitInterrupt,
                                     fds[1], &(DextCallArgs){ 0 }),
             kIOReturnNotReady);
    cnt = 1;
    CHECK_KR(dext_session_call(fx.caller, kDextSelectorSetupInterrupts,
                               &(DextCallArgs){ .scalar_out = nvec,
                                                .scalar_out_cnt = &cnt }),
             kIOReturnSuccess);
    CHECK_KR(dext_session_call_async(fx.caller, kDextSelectorWaitInterrupt,
                                     fds[1], &(DextCallArgs){ 0 }),
             kIOReturnSuccess);
    close(fds[0]);
    close(fds[1]);
    fixture_close(&fx);
}

/* The locks each hook runs under, as backends/backend.h documents. */
static void test_hook_locks(void)
{
    Fake *f;
    Fixture fx;
    DextMemory mem;
    uint32_t cnt = 1;
    uint64_t nvec[1];

    harness_section("hooks run under the documented core locks");
    fixture_open(&fx, 0, FIX_UNCLAIMED);
    f = fx.fake;
    call_row(fx.caller, row(kDextSelectorConfigRead), 2, 1);
    CHECK_EQ(f->locks_seen[HOOK_CONFIG_READ], 0);
    call_row(fx.claimer, row(kDextSelectorConfigWrite), 3, 0);
    CHECK_EQ(f->locks_seen[HOOK_CONFIG_WRITE], 0);
    call_row(fx.caller, row(kDextSelectorMMIORead), 3, 1);
    CHECK_EQ(f->locks_seen[HOOK_MMIO_READ], 0);
    call_row(fx.claimer, row(kDextSelectorMMIOWrite), 4, 0);
    CHECK_EQ(f->locks_seen[HOOK_MMIO_WRITE], 0);

    /* CoreDevice.lock, and only it. */
    hooks_reset(f);
    if (CHECK_KR(dext_session_map(fx.claimer, kDextMemoryTypeBAR0, &mem),
                 kIOReturnSuccess)) {
        close(mem.fd);
    }
    CHECK_EQ(f->locks_seen[HOOK_MAP_BAR], 1);
    call_row(fx.claimer, row(kDextSelectorResetDevice), 0, 0);
    CHECK_EQ(f->locks_seen[HOOK_RESET], 1);
    CHECK_EQ(f->locks_seen[HOOK_CONFIG_WRITE], 1); /* the restore */
    hooks_reset(f);
    dext_session_call(fx.claimer, kDextSelectorSetupInterrupts,
                      &(DextCallArgs){ .scalar_out = nvec,
                                       .scalar_out_cnt = &cnt });
    CHECK_EQ(f->locks_seen[HOOK_CONFIG_WRITE], 1); /* MSI enable */
    hooks_reset(f);
    dext_session_call(fx.caller, kDextSelectorClaim, &(DextCallArgs){ 0 });
    CHECK_EQ(hook_calls(f, ~0u), 0);               /* the device is open */
    fixture_close(&fx);

    fixture_open(&fx, 0, FIX_UNCLAIMED);
    hooks_reset(fx.fake);
    dext_session_close(fx.claimer);                /* the last claim */
    fx.claimer = fx.caller;
    dext_session_call(fx.caller, kDextSelectorClaim, &(DextCallArgs){ 0 });
    CHECK_EQ(fx.fake->locks_seen[HOOK_CONFIG_READ], 1); /* command reg */
    CHECK_EQ(fx.fake->locks_seen[HOOK_CONFIG_WRITE], 1);
    fixture_close(&fx);
}

/* ------------------------------------------------------------------ */
/* Threads on one device, upcalls from hooks and a device thread        */

#define WORKERS 4
#define ROUNDS  200

static void *device_thread(void *opaque)
{
    DextDevice *dev = opaque;
    Fake *f = dev->priv;
    uint8_t buf[64];
    unsigned n = 0;

    while (!__atomic_load_n(&f->thread_stop, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(&f->lock);
        dev->host.raise_msi(dev->host.opaque, 0);
        /* Unmapped: an IOMMU fault, counted and dropped. */
        dev->host.dma_read(dev->host.opaque, 0x1000, buf, sizeof(buf));
        pthread_mutex_unlock(&f->lock);
        if (++n % 64 == 0) {
            usleep(100);
        }
    }
    return NULL;
}

static void *worker(void *opaque)
{
    Fixture *fx = opaque;
    uint64_t in[4] = { 0, 8, 4, 1 };
    uint64_t out[DEXT_MAX_SCALARS];
    bool ok = true;

    for (int i = 0; i < ROUNDS && ok; i++) {
        DextSession *s;
        DextMemory mem;
        uint32_t cnt = 6;
        IOReturn ret;

        ok = dext_core_open(fx->core, fx->id, 0, getpid(), -1,
                            &s) == kIOReturnSuccess;
        if (!ok) {
            break;
        }
        ok = dext_session_call(s, kDextSelectorClaim,
                               &(DextCallArgs){ 0 }) == kIOReturnSuccess;
        cnt = 1;
        ret = dext_session_call(s, kDextSelectorSetupInterrupts,
                                &(DextCallArgs){ .scalar_out = out,
                                                 .scalar_out_cnt = &cnt });
        ok = ok && ret == kIOReturnSuccess;
        cnt = 0;
        ret = dext_session_call(s, kDextSelectorMMIOWrite,
                                &(DextCallArgs){ .scalar_in = in,
                                                 .scalar_in_cnt = 4,
                                                 .scalar_out_cnt = &cnt });
        ok = ok && ret == kIOReturnSuccess;
        if (dext_session_map(s, kDextMemoryTypeBAR0, &mem) ==
            kIOReturnSuccess) {
            close(mem.fd);
        } else {
            ok = false;
        }
        if (i % 16 == 0) {
            ok = ok && dext_session_call(s, kDextSelectorResetDevice,
                                         &(DextCallArgs){ 0 }) ==
                       kIOReturnSuccess;
        }
        cnt = 6;
        ok = ok && dext_session_call(s, kDextSelectorGetDeviceStatus,
                                     &(DextCallArgs){ .scalar_out = out,
                                                      .scalar_out_cnt = &cnt })
                   == kIOReturnSuccess;
        dext_session_close(s);
    }
    CHECK_MSG(ok, "every call of a worker succeeded");
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[WORKERS];
    DextCoreStats st;
    DextDevice *dev;
    Fixture fx = { 0 };

    harness_section("threads on one device; upcalls from hooks and a "
                    "device thread");
    dev = fake_new(0, &fx.fake);
    fx.fake->raise_in_mmio_write = true;
    fx.core = dext_core_new(NULL, NULL);
    if (fx.core == NULL ||
        dext_core_add_device(fx.core, dev, &fx.id) != kIOReturnSuccess) {
        exit(1);
    }
    if (pthread_create(&fx.fake->thread, NULL, device_thread, dev) != 0) {
        exit(1);
    }
    fx.fake->threaded = true;
    for (int i = 0; i < WORKERS; i++) {
        pthread_create(&t[i], NULL, worker, &fx);
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(t[i], NULL);
    }
    dext_core_stats(fx.core, &st);
    CHECK_EQ(st.sessions, 0);
    CHECK_EQ(st.claims, 0);
    CHECK_EQ(st.irq_sessions, 0);
    CHECK(st.irqs_raised > 0);
    CHECK(st.iommu_faults > 0);
    dext_core_free(fx.core);
}

int main(void)
{
    test_rows();
    test_counts();
    test_terminated();
    test_precedence();
    test_irq_page();
    test_read_only_hardware();
    test_async();
    test_hook_locks();
    test_threads();
    return harness_finish();
}
