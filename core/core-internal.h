/*
 * SPDX-License-Identifier: MIT
 *
 * Dext core internals shared by core.c (services, sessions, the claim),
 * methods.c (the method table and memory mapping), config.c (config
 * space view, reset save/restore), dma.c (DMA region table, DMA buffer,
 * device DMA through the IOMMU), irq.c (interrupt state pages and
 * delivery), client-mem.c and log.c.  The lock order is below, with the
 * lock wrappers.
 */

#ifndef LIBDEXT_CORE_INTERNAL_H
#define LIBDEXT_CORE_INTERNAL_H

#include "libdext/pci-regs.h"
#include "core/dext-core.h"
#include "core/iova.h"
#include "core/rangetree.h"
#include "support/locks.h"
#include "support/ratelimit.h"

#define DEXT_MAX_DEVICES   64
#define DEXT_MAX_SESSIONS  4096

/* The DART model: 16 KiB pages; bus addresses start at 1 MiB so that a
 * zeroed or tiny address in a descriptor faults instead of hitting memory. */
#define DEXT_DART_PAGE     0x4000ull
/* The bus space's own granularity: a host (and IOMMU) page. */
#define DEXT_BUS_PAGE      0x1000ull
#define DEXT_DART_BASE     0x100000ull

/* dmaFlags reported by AllocateDMABuffer: kIOMemoryDirectionInOut. */
#define DEXT_DMA_FLAGS_INOUT 3

/* PCI registers and bits: libdext/pci-regs.h. */

/*
 * The core's locks, in the order they are taken (a thread holding one
 * takes only locks further down the list):
 *
 *  1. DextCore.lock: the device table and the session count.
 *  2. CoreDevice.lock: a device's claim state, session count, BAR
 *     mapping cache and each session's interrupt state pointer.  It
 *     serialises Claim, Terminate, ResetDevice, SetupInterrupts and
 *     interrupt teardown, BAR mapping and GetDeviceStatus on a device.
 *     These device hooks run under it: config_read/config_write for the
 *     first claim's command register, for reset's save and restore and
 *     for interrupt setup and teardown; mmio_write to program an MSI-X
 *     table (setup, reset); reset_function; map_bar.  Every other hook
 *     runs with no core lock held.
 *  3. Backend locks, taken inside hooks (backends/backend.h).
 *  4. CoreDevice.irq_lock or CoreDevice.dma_lock, never both.  Device
 *     upcalls (raise_msi, dma_read, dma_write) take them from device
 *     threads or from inside hooks, with backend locks held; so no hook
 *     is ever called with either held.  A device thread thus never waits
 *     for CoreDevice.lock, and cannot deadlock against a client's call.
 *  5. IrqState.wake_lock: a session's wake target, taken under irq_lock
 *     when an interrupt is delivered.
 *
 * The log sink may be called with any of them held.  None is held across
 * an access to client memory, which may stall for ever, nor across a
 * wait for a client.
 *
 * Every core lock is taken through these wrappers, which count the locks
 * the calling thread holds, so the client memory rule is checked, not
 * just stated: client-mem.c asserts the count is zero.  The clang
 * thread-safety annotations let `make tsa` check that every function
 * marked DEXT_REQUIRES() is called with its lock held.
 */
extern __thread unsigned dext_core_locks_held;

static inline void core_mutex_lock(DextMutex *m) DEXT_ACQUIRE(m)
{
    dext_mutex_lock(m);
    dext_core_locks_held++;
}

static inline void core_mutex_unlock(DextMutex *m) DEXT_RELEASE(m)
{
    dext_core_locks_held--;
    dext_mutex_unlock(m);
}

static inline void core_rwlock_rdlock(DextRwLock *l) DEXT_ACQUIRE_SHARED(l)
{
    dext_rwlock_rdlock(l);
    dext_core_locks_held++;
}

static inline void core_rwlock_wrlock(DextRwLock *l) DEXT_ACQUIRE(l)
{
    dext_rwlock_wrlock(l);
    dext_core_locks_held++;
}

static inline void core_rwlock_unlock(DextRwLock *l) DEXT_RELEASE_GENERIC(l)
{
    dext_core_locks_held--;
    dext_rwlock_unlock(l);
}

typedef struct CoreDevice CoreDevice;
typedef struct DmaShare DmaShare;
typedef struct DmaRegion DmaRegion;
typedef struct DmaBuffer DmaBuffer;
typedef struct DmaMap DmaMap;
typedef struct IrqState IrqState;

/*
 * How the core reaches a client's memory (process_vm_readv/writev).
 * process_vm_* name a process by number, which the kernel recycles once
 * the process is reaped, so every access is bracketed by a look at
 * @pidfd: if it still reports the process alive after the access, the
 * number meant that process throughout (client-mem.c).
 */
typedef struct ClientMem {
    uint32_t refs;          /* the session, and each transfer in flight */
    pid_t pid;
    int pidfd;              /* -1 only when @self */
    bool self;              /* the core's own process (in-process) */
} ClientMem;

/**
 * dext_client_mem_new() - bind to a client process
 * @pid: the process
 * @pidfd: a pidfd of it (a dup is kept), or -1 for this very process
 * @out: receives the binding, one reference
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a bad @pid or
 * @pidfd; kIOReturnNotPermitted for -1 with another process's pid;
 * kIOReturnNoMemory, kIOReturnNoResources; kIOReturnNotAttached if the
 * process has exited.
 */
IOReturn dext_client_mem_new(pid_t pid, int pidfd, ClientMem **out);

/**
 * dext_client_mem_ref() - one more reference (a transfer in flight)
 * @m: the binding
 *
 * Return: @m.
 */
ClientMem *dext_client_mem_ref(ClientMem *m);

/** dext_client_mem_unref() - drop a reference; NULL is ignored. */
void dext_client_mem_unref(ClientMem *m);

/**
 * dext_client_mem_alive() - has the process not exited yet?
 * @m: the binding
 *
 * Return: true while the process lives (always for this process).
 */
bool dext_client_mem_alive(ClientMem *m);

/**
 * dext_client_mem_read() - copy @len bytes at the client's @va into @buf
 * @m: the binding
 * @va: address in the client
 * @buf: receives the bytes
 * @len: bytes
 *
 * May stall for as long as the client's page does: no core lock may be
 * held (asserted).
 *
 * Return: kIOReturnSuccess; kIOReturnVMError for memory the client does
 * not have readable; kIOReturnNotAttached once the process has exited
 * (@buf is then cleared).
 */
IOReturn dext_client_mem_read(ClientMem *m, uint64_t va, void *buf, size_t len);

/**
 * dext_client_mem_write() - copy @len bytes of @buf to the client's @va
 * @m: the binding
 * @va: address in the client
 * @buf: the bytes
 * @len: bytes
 *
 * As dext_client_mem_read().
 *
 * Return: kIOReturnSuccess; kIOReturnVMError for memory the client does
 * not have writable; kIOReturnNotAttached once the process has exited.
 */
IOReturn dext_client_mem_write(ClientMem *m, uint64_t va, const void *buf,
                               size_t len);

/* guarded-copy.c: copying through a client's file mapped here. */

/**
 * dext_guarded_copy_init() - install the SIGBUS handler, once
 *
 * Called before a client's file is mapped for dext_guarded_copy().
 *
 * Return: true if copies can be guarded; false if the handler could not
 * be installed, or in a ThreadSanitizer build (then the file must not be
 * mapped).
 */
bool dext_guarded_copy_init(void);

/**
 * dext_guarded_copy() - memcpy() that survives the mapping going away
 * @dst: destination
 * @src: source
 * @len: bytes
 * @map: the client's file mapping that @dst or @src lies in
 * @map_len: its length
 *
 * A SIGBUS inside [@map, @map + @map_len) while copying -- the client
 * truncated its file, tmpfs ran out of space -- ends the copy instead of
 * the process; @dst may then hold part of the bytes.  Any other SIGBUS is
 * left to what handled it before.  No core lock may be held, and
 * dext_guarded_copy_init() must have returned true.
 *
 * Return: true if all @len bytes were copied.
 */
bool dext_guarded_copy(void *dst, const void *src, size_t len,
                       const void *map, size_t map_len);

/*
 * One contiguous bus segment: [bus, bus + len) reaches either client
 * memory at @va (a region chunk) or @host (the DMA buffer).
 */
typedef struct DmaChunk {
    RangeNode xlate;        /* in CoreDevice.xlate: start = bus, len */
    DextSession *owner;
    uint64_t va;
    uint8_t *host;          /* the DMA buffer's, or @map's for @va */
    DmaMap *map;            /* the region's file mapped here, or NULL */
} DmaChunk;

/*
 * A client's shared file mapped into the core's process for a region of
 * an emulated device, so device DMA copies with memcpy() instead of
 * process_vm_*.  Referenced by the region and by each transfer in
 * flight: unmapped after the last one.
 */
struct DmaMap {
    uint32_t refs;
    uint8_t *base;          /* the mapping: whole pages of the file's */
    uint64_t len;
    uint8_t *page;          /* where the region's first host page is */
};

struct DmaRegion {
    RangeNode node;         /* in DextSession.regions: start = iova */
    uint64_t va;
    uint64_t size;
    uint64_t iova_base;     /* the IovaSpace range behind all chunks */
    uint64_t iova_size;
    /* A device with its own IOMMU (DextDeviceOps.dma_map): */
    uint64_t map_iova;      /* the host pages of the region, on the bus */
    uint64_t map_len;       /* 0 while not mapped */
    uint8_t *host_map;      /* our mapping of the client's fd, or NULL */
    uint64_t host_map_len;  /* ...its length: whole pages of the file's */
    /* An emulated device: */
    DmaMap *map;            /* the client's file mapped, or NULL */
    bool mapping;           /* dma_map running: not ready to unregister */
    DmaRegion *retire_next; /* unlinked, waiting for region_retire() */
    uint32_t nchunks;
    DmaChunk chunks[];
};

struct DmaBuffer {
    uint32_t refs;          /* the session, and each transfer in flight */
    int fd;
    uint8_t *host;
    uint64_t size;
    uint64_t iova_base;
    uint64_t iova_size;     /* the bus range reserved: whole DART pages */
    bool mapped;            /* dma_map made it reach the device */
    DmaChunk chunk;
};

/* The bus space one client process holds on a device (dma_lock). */
struct DmaShare {
    DmaShare *next;         /* CoreDevice.shares */
    pid_t pid;
    uint32_t sessions;      /* sessions of that process that hold it */
    uint64_t bytes;         /* bus bytes of their regions and buffers */
    uint32_t maps;          /* their regions' DmaMaps */
    uint32_t host_maps;     /* their regions' files pinned for a real IOMMU */
};

struct IrqState {
    IrqState *next;         /* CoreDevice.irq_subs */
    DextSession *owner;
    int fd;                 /* memfd of the page */
    uint64_t *page;         /* pending[4] then enabled[4] */
    uint32_t nvectors;
    bool armed;             /* __atomic, sequentially consistent */
    DextMutex wake_lock;    /* lock order 5 */
    int wake_fd DEXT_GUARDED_BY(wake_lock); /* the client's target, a dup;
                                             * -1 if none */
};

struct CoreDevice {
    DextCore *core;
    DextDevice *dev;
    uint64_t id;

    /*
     * Lock order 2.  Guards the fields up to irq_lock; terminated,
     * writable and claims are written under it with atomic stores and
     * may be read without it.
     */
    DextMutex lock;
    bool terminated DEXT_GUARDED_BY(lock);
    bool writable DEXT_GUARDED_BY(lock);    /* the write policy */
    uint32_t claims DEXT_GUARDED_BY(lock);
    bool opened DEXT_GUARDED_BY(lock);     /* the first claim opened it */
    DextSession *claimers DEXT_GUARDED_BY(lock);   /* claims of them */
    uint32_t last_reset DEXT_GUARDED_BY(lock);     /* DEXT_RESET_* */
    uint32_t sessions DEXT_GUARDED_BY(lock);
    bool bar_cached[DEXT_NUM_BARS] DEXT_GUARDED_BY(lock);
    int8_t mem_index_bar[DEXT_NUM_BARS];    /* memoryIndex -> BAR */
    int8_t bar_mem_index[DEXT_NUM_BARS];    /* BAR -> memoryIndex */

    /* Interrupt capability found at add time. */
    uint32_t nvectors;
    uint8_t msi_cap;
    uint8_t msix_cap;

    DextRwLock irq_lock;        /* lock order 4 */
    IrqState *irq_subs DEXT_GUARDED_BY(irq_lock);

    /* Lock order 4: also guards the sessions' regions, buffer, share. */
    DextRwLock dma_lock;
    IovaSpace iova DEXT_GUARDED_BY(dma_lock);
    RangeTree xlate DEXT_GUARDED_BY(dma_lock);
    /* Counters for DextCoreStats. */
    uint32_t dma_regions DEXT_GUARDED_BY(dma_lock);
    uint64_t dma_region_bytes DEXT_GUARDED_BY(dma_lock);
    uint32_t dma_buffers DEXT_GUARDED_BY(dma_lock);
    DmaShare *shares DEXT_GUARDED_BY(dma_lock);    /* per client process */

    DextRateLimit log_limit;    /* client-triggered lines (IOMMU faults) */
};

struct DextSession {
    DextCore *core;
    CoreDevice *cd;
    ClientMem *mem;         /* referenced by transfers in flight too */
    bool claimed;           /* as CoreDevice.claims */
    DextSession *next_claimer;  /* CoreDevice.claimers, under its lock */
    IrqState *irq;          /* published once under CoreDevice.lock */
    RangeTree regions;      /* CoreDevice.dma_lock */
    DmaBuffer *buffer;      /* CoreDevice.dma_lock */
    DmaShare *share;        /* CoreDevice.dma_lock; NULL until used */
};

struct DextCore {
    DextLogFn *log;
    void *log_opaque;
    DextMutex lock;         /* lock order 1 */
    CoreDevice *devices[DEXT_MAX_DEVICES] DEXT_GUARDED_BY(lock);
    uint32_t ndevices DEXT_GUARDED_BY(lock);
    uint64_t next_id DEXT_GUARDED_BY(lock);
    uint32_t sessions DEXT_GUARDED_BY(lock);

    /* Answer like the real dext today: no extension selector. */
    bool contract_only;
    /* Memory type 7 refused (Unsupported) once it exists. */
    bool no_irq_page;
    /* Percent of a device's bus space one client process may hold. */
    uint32_t dma_share_pct;
    /* DEXT_POLICY_* bits: what sessions without a claim may do. */
    unsigned policy;

    /* Statistics: __atomic, relaxed (counts, ordered with nothing). */
    uint64_t iommu_faults;
    uint64_t irqs_raised;
    uint64_t irqs_dropped;
    /* Client files mapped for DMA, every device and process (atomic). */
    uint32_t dma_file_maps;
};

/*
 * The claim and terminated flags change under CoreDevice.lock (so opening
 * and closing the device stays consistent with the count), and so does
 * CoreDevice.writable, but all are stored atomically, so the checks every
 * call makes read them without the lock: callers on several threads of
 * one device are not serialised by it.
 */

/**
 * core_session_claimed() - does @s hold a claim?
 * @s: the session
 *
 * Return: true while it does.
 */
static inline bool core_session_claimed(DextSession *s)
{
    return __atomic_load_n(&s->claimed, __ATOMIC_ACQUIRE);
}

/**
 * core_session_may_write() - may @s change the device?
 * @s: the session
 *
 * Write config space or registers, map a BAR writable, terminate: the
 * one test of the access model (dext_core_set_policy()).
 *
 * Return: true for a claimer, or anyone under the unclaimed-writes
 * policy.
 */
static inline bool core_session_may_write(DextSession *s)
{
    return core_session_claimed(s) ||
           (s->core->policy & DEXT_POLICY_UNCLAIMED_WRITES);
}

/**
 * core_device_writable() - may clients change @cd at all?
 * @cd: the device
 *
 * The write policy, decided when the device is added (emulated, or
 * hardware with the operator's consent in its spec) or later by
 * dext_core_allow_writes().
 *
 * Return: true if they may.
 */
static inline bool core_device_writable(CoreDevice *cd)
{
    return __atomic_load_n(&cd->writable, __ATOMIC_ACQUIRE);
}

/**
 * core_device_gone() - has a client terminated @cd?
 * @cd: the device
 *
 * Return: true once it has: every call but close answers
 * kIOReturnNoDevice.
 */
static inline bool core_device_gone(CoreDevice *cd)
{
    return __atomic_load_n(&cd->terminated, __ATOMIC_ACQUIRE);
}

/* core.c */

/**
 * dext_core_claim() - the Claim method: take a share of the device
 * @s: the session; a second claim is a no-op
 *
 * The first claim opens the device: on a device clients may change,
 * memory decode and (where DMA can be served) bus mastering are turned
 * on, as opening the IOPCIDevice does.  Takes CoreDevice.lock.
 *
 * Return: kIOReturnSuccess, or the error of the first claim's config
 * accesses.
 */
IOReturn dext_core_claim(DextSession *s);

/* log.c */

/**
 * dext_core_logf() - one line to the core's log sink
 * @core: the core; NULL or a core without a sink drops the line
 * @level: DEXT_LOG_*
 * @fmt: printf format, no trailing newline
 *
 * May be called with any core lock held: the sink must not call into the
 * core.
 */
void dext_core_logf(DextCore *core, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * dext_core_ratelimited() - dext_core_logf() under the budget @rl
 * @core: the core
 * @rl: the budget; lines it drops are counted and reported with the next
 *      line it lets through
 * @level: DEXT_LOG_*
 * @fmt: printf format
 *
 * For every line a client can cause (guest errors, IOMMU faults, refused
 * shares), so that no client can flood the log.
 */
void dext_core_ratelimited(DextCore *core, DextRateLimit *rl, int level,
                           const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * dext_core_device_log() - DextDeviceHost.log of every device
 * @opaque: the CoreDevice
 * @level: DEXT_LOG_*
 * @msg: one line
 *
 * Devices log what clients make them do (guest errors): the line is
 * prefixed with the device's name and rate-limited per device.
 */
void dext_core_device_log(void *opaque, int level, const char *msg);

/* config.c */

/**
 * dext_config_read_raw() - read config space as the device has it
 * @dev: the device
 * @off: offset, checked by the caller
 * @width: 1, 2 or 4, naturally aligned
 * @val: receives the value
 *
 * Return: the config_read hook's IOReturn.
 */
IOReturn dext_config_read_raw(DextDevice *dev, uint32_t off, uint32_t width,
                              uint32_t *val);

/**
 * dext_config_write_raw() - write config space
 * @dev: the device
 * @off: offset, checked by the caller
 * @width: 1, 2 or 4, naturally aligned
 * @val: the value
 *
 * Return: the config_write hook's IOReturn; kIOReturnNotWritable for a
 * device without one.
 */
IOReturn dext_config_write_raw(DextDevice *dev, uint32_t off, uint32_t width,
                               uint32_t val);

/**
 * dext_config_access_ok() - is a client's config access well formed?
 * @dev: the device
 * @off: offset
 * @width: bytes
 *
 * Return: true for a width of 1, 2 or 4, naturally aligned, inside the
 * device's config space.
 */
bool dext_config_access_ok(const DextDevice *dev, uint64_t off,
                           uint64_t width);

/**
 * dext_config_read() - read config space as a client sees it
 * @dev: the device
 * @off: offset, checked with dext_config_access_ok()
 * @width: 1, 2 or 4
 * @val: receives the value
 *
 * A BAR register dword shows the BAR's type bits only, as the real dext
 * hides the addresses it assigned.
 *
 * Return: kIOReturnSuccess or the config_read hook's error.
 */
IOReturn dext_config_read(DextDevice *dev, uint32_t off, uint32_t width,
                          uint32_t *val);

/**
 * dext_config_read_block() - read [@off, @off + @len) of config space
 * @dev: the device
 * @off: first byte, the range checked by the caller
 * @buf: receives @len bytes
 * @len: bytes
 * @raw: true for the device's own BAR registers, false for the client's
 *       view (dext_config_read())
 *
 * Reads with the widest naturally aligned accesses that fit.
 *
 * Return: kIOReturnSuccess or the first access's error.
 */
IOReturn dext_config_read_block(DextDevice *dev, uint32_t off, uint8_t *buf,
                                uint32_t len, bool raw);

/**
 * dext_config_write_block() - write [@off, @off + @len) of config space
 * @dev: the device
 * @off: first byte, the range checked by the caller
 * @buf: @len bytes
 * @len: bytes
 *
 * Writes with the widest naturally aligned accesses that fit.
 *
 * Return: kIOReturnSuccess or the first access's error (the accesses
 * before it have been made).
 */
IOReturn dext_config_write_block(DextDevice *dev, uint32_t off,
                                 const uint8_t *buf, uint32_t len);

/* Config space as saved around a function reset. */
typedef struct DextConfigSave {
    uint8_t bytes[DEXT_CONFIG_SIZE];
} DextConfigSave;

/**
 * dext_config_save() - save the standard config space before a reset
 * @dev: the device
 * @save: receives its 256 bytes (all zero if they cannot be read)
 */
void dext_config_save(DextDevice *dev, DextConfigSave *save);

/**
 * dext_config_restore() - restore what an OS restores after a reset
 * @dev: the device, just reset
 * @save: from dext_config_save()
 *
 * Writes back the BARs, the interrupt line and the command register, in
 * that order, as pci_restore_state does; the interrupt capabilities are
 * dext_irq_restore_config()'s.  Errors are ignored: a register that does
 * not take its old value is the device's business.
 */
void dext_config_restore(DextDevice *dev, const DextConfigSave *save);

/* dma.c: the handlers of the DMA methods take CoreDevice.dma_lock. */

/**
 * dext_dma_device_init() - the bus space of a new device
 * @cd: the device, its DextDevice.dma_mask set
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a DMA mask that
 * reaches no whole page above DEXT_DART_BASE; kIOReturnNoMemory.
 */
IOReturn dext_dma_device_init(CoreDevice *cd);

/** dext_dma_device_destroy() - free the bus space; no session is left. */
void dext_dma_device_destroy(CoreDevice *cd);

/**
 * dext_dma_register() - RegisterDMARegion
 * @s: the session
 * @iova: the client's key for the region
 * @va: the client's address of @size bytes, both ends mapped now
 * @size: bytes
 * @fd: for a device with its own IOMMU served to another process: a
 *      shared file (memfd, shm, MAP_SHARED file) holding the same memory,
 *      which the core maps to pin it; -1 for none; DEXT_DMA_FILE_LATER
 *      for none yet (the caller asks again with one if it gets
 *      kIOReturnUnsupported, so the refusal is not logged).  The caller
 *      keeps it.
 * @fd_offset: where @va's byte lies in @fd
 * @out: receives the segment count (1), bus address and length
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for an empty, NULL or
 * wrapping range, or an @fd that is not a regular file holding
 * [@fd_offset, @fd_offset + @size) at @va's page offset;
 * kIOReturnVMError if either end is not mapped or the memory cannot be
 * pinned; kIOReturnStillOpen for an @iova in use; kIOReturnNoSpace past
 * the region limit, the chunk limit or the process's share;
 * kIOReturnNoMemory; dext_iova_alloc()'s errors when the bus space is
 * full; kIOReturnUnsupported for private memory of another process on a
 * device with its own IOMMU (logged with what to use instead);
 * kIOReturnNotPermitted for an @fd that cannot be mapped writable;
 * kIOReturnNoResources when the pin limit (RLIMIT_MEMLOCK) is reached.
 * For an emulated device, another process's region of
 * DEXT_DMA_MAP_MIN bytes or more answers DEXT_DMA_FILE_LATER with a quiet
 * kIOReturnUnsupported; an @fd it is given (any size) is mapped if it
 * can be, and device DMA then copies through that mapping; one that
 * cannot be mapped writable leaves the region on process_vm_*.
 */
#define DEXT_DMA_FILE_LATER (-2)

/*
 * An emulated device's regions of another process: from this size on,
 * the core asks for the file behind the memory (kIOReturnUnsupported to
 * DEXT_DMA_FILE_LATER) and copies through its mapping.  Below it the
 * client's look-up of the file (a walk of /proc/self/maps, ~75 us) costs
 * more than process_vm_* would over many transfers; a file that comes
 * anyway is used whatever the size.
 */
#define DEXT_DMA_MAP_MIN (64u << 10)

/*
 * The mappings one client process may have the core hold (each is a VMA
 * of dextd's, and vm.max_map_count is shared by all clients); beyond it
 * its regions fall back to process_vm_*.
 */
#define DEXT_DMA_MAPS_MAX 256u

/*
 * The files one client process may have the core map and pin for a
 * device behind a real IOMMU (DmaRegion.host_map): a VMA each, with no
 * fallback, so beyond it a registration answers kIOReturnNoResources.
 * A vfio-user guest maps 4 KiB pages one region each, hence generous;
 * still far below vm.max_map_count (65,530), which all clients share.
 */
#define DEXT_DMA_HOST_MAPS_MAX 8192u

/*
 * The client files the core maps for DMA at once, all devices and client
 * processes together (DmaRegion.map and .host_map): the caps above are
 * per process, and vm.max_map_count (65,530 by default) is dextd's
 * whole.  Half of it leaves room for everything else dextd maps.  Past
 * it, emulated devices fall back to process_vm_*, a real IOMMU answers
 * kIOReturnNoResources.  A soft bound: registrations on two devices at
 * once may each pass it by one.
 */
#define DEXT_DMA_FILE_MAPS_MAX 32768u

IOReturn dext_dma_register(DextSession *s, uint64_t iova, uint64_t va,
                           uint64_t size, int fd, uint64_t fd_offset,
                           uint64_t out[3]);

/**
 * dext_dma_register_at() - RegisterDMARegionAt
 * @s: the session
 * @iova: the client's key for the region
 * @va: the client's address of @size bytes, both ends mapped now
 * @size: bytes
 * @bus_addr: the bus address the device reaches @va's first byte at; its
 *            offset within a DEXT_DART_PAGE equals @va's
 * @fd: as for dext_dma_register()
 * @fd_offset: as for dext_dma_register()
 * @out: receives the segment count (1), bus address (@bus_addr) and length
 *
 * The region takes the whole DART pages its bus range touches, which must
 * be free and lie in the device's window [DEXT_DART_BASE, DMA mask].
 *
 * Return: as dext_dma_register(), and kIOReturnNotAligned if @bus_addr's
 * page offset differs from @va's; kIOReturnNoResources if the bus range
 * leaves the window; kIOReturnBusy if one of its pages belongs to another
 * region or a DMA buffer.
 */
IOReturn dext_dma_register_at(DextSession *s, uint64_t iova, uint64_t va,
                              uint64_t size, uint64_t bus_addr, int fd,
                              uint64_t fd_offset, uint64_t out[3]);

/**
 * dext_dma_unregister() - UnregisterDMARegion
 * @s: the session
 * @iova: the region's key
 *
 * Return: kIOReturnSuccess; kIOReturnNotFound; kIOReturnBusy while
 * another channel's registration of it is still pinning the memory.
 */
IOReturn dext_dma_unregister(DextSession *s, uint64_t iova);

/**
 * dext_dma_probe() - ProbeDMARegion: 8 bytes at @offset of a region
 * @s: the session
 * @iova: the region's key
 * @offset: byte offset into the region
 * @out: receives the bytes, little-endian
 *
 * Return: kIOReturnSuccess; kIOReturnNotFound; kIOReturnOverrun past the
 * region's end; dext_client_mem_read()'s errors.
 */
IOReturn dext_dma_probe(DextSession *s, uint64_t iova, uint64_t offset,
                        uint64_t *out);

/**
 * dext_dma_buffer_allocate() - AllocateDMABuffer (replaces the old one)
 * @s: the session
 * @size: bytes
 * @align: bus address alignment, a power of two; 0 is 4096
 * @out: receives size, dmaFlags, segment count (1), bus address, length
 *       in out[0..4]; out[5] is the caller's
 *
 * Return: kIOReturnSuccess; kIOReturnBadArgument for a bad @size or
 * @align; kIOReturnNoMemory; kIOReturnNoResources when the bus space
 * holds no such range; kIOReturnNoSpace past the process's share.
 */
IOReturn dext_dma_buffer_allocate(DextSession *s, uint64_t size, uint64_t align,
                                  uint64_t out[6]);

/** dext_dma_buffer_free() - FreeDMABuffer; no buffer is no error. */
void dext_dma_buffer_free(DextSession *s);

/**
 * dext_dma_buffer_map() - memory type 0: the DMA buffer
 * @s: the session
 * @out: receives a new fd of the buffer, writable
 *
 * Return: kIOReturnSuccess; kIOReturnNotReady without a buffer;
 * kIOReturnNoResources when no fd is left.
 */
IOReturn dext_dma_buffer_map(DextSession *s, DextMemory *out);

/** dext_dma_session_release() - drop every region and the buffer of @s. */
void dext_dma_session_release(DextSession *s);

/**
 * dext_dma_session_regions() - regions @s holds
 * @s: the session
 *
 * Return: their number.
 */
uint32_t dext_dma_session_regions(DextSession *s);

/** dext_dma_stats() - add @cd's DMA counters to @st. */
void dext_dma_stats(CoreDevice *cd, DextCoreStats *st);

/**
 * dext_dma_device_read() - DextDeviceHost.dma_read of every device
 * @opaque: the CoreDevice
 * @addr: bus address
 * @buf: receives @len bytes
 * @len: bytes
 *
 * Translates under dma_lock, copies with no lock held.
 *
 * Return: kIOReturnSuccess; kIOReturnNotPermitted for an IOMMU fault
 * (counted, logged, @buf cleared).
 */
IOReturn dext_dma_device_read(void *opaque, uint64_t addr, void *buf,
                              size_t len);

/**
 * dext_dma_device_write() - DextDeviceHost.dma_write of every device
 * @opaque: the CoreDevice
 * @addr: bus address
 * @buf: @len bytes
 * @len: bytes
 *
 * Return: kIOReturnSuccess; kIOReturnNotPermitted for an IOMMU fault
 * (counted, logged; nothing written).
 */
IOReturn dext_dma_device_write(void *opaque, uint64_t addr, const void *buf,
                               size_t len);

/* irq.c */

/** dext_irq_probe_caps() - find MSI/MSI-X and the vector count at add. */
void dext_irq_probe_caps(CoreDevice *cd);

/**
 * dext_irq_setup() - SetupInterrupts: this session's state page
 * @s: the session
 * @out_nvec: receives the vectors enabled
 *
 * Takes CoreDevice.lock; turns delivery on in the device.
 *
 * Return: kIOReturnSuccess; kIOReturnStillOpen if @s has them already;
 * kIOReturnNotFound for a device without MSI/MSI-X or one that refuses
 * them; kIOReturnNoMemory.
 */
IOReturn dext_irq_setup(DextSession *s, uint64_t *out_nvec);

/**
 * dext_irq_check() - CheckInterrupt: take the pending bits
 * @s: the session
 * @out: receives pending[4], which are cleared
 *
 * Return: kIOReturnSuccess; kIOReturnNotReady without interrupts.
 */
IOReturn dext_irq_check(DextSession *s, uint64_t out[4]);

/**
 * dext_irq_wait() - WaitInterrupt (async): arm a completion
 * @s: the session
 * @wake_fd: the target; a dup is kept, replacing the last one
 *
 * Completes at once if something is pending.
 *
 * Return: kIOReturnSuccess; kIOReturnNotReady without interrupts;
 * kIOReturnBadArgument if @wake_fd cannot be duplicated.
 */
IOReturn dext_irq_wait(DextSession *s, int wake_fd);

/**
 * dext_irq_set_mask() - SetIRQMask: the enabled vectors
 * @s: the session
 * @mask: enabled[4]
 *
 * Return: kIOReturnSuccess; kIOReturnNotReady without interrupts.
 */
IOReturn dext_irq_set_mask(DextSession *s, const uint64_t mask[4]);

/**
 * dext_irq_map_page() - memory type 7: the interrupt state page
 * @s: the session
 * @out: receives a new fd of the page, writable
 *
 * Return: kIOReturnSuccess; kIOReturnNotReady without interrupts;
 * kIOReturnNoResources when no fd is left.
 */
IOReturn dext_irq_map_page(DextSession *s, DextMemory *out);

/**
 * dext_irq_session_release() - drop @s's interrupts; the last session's
 * teardown turns delivery off in the device.  Takes CoreDevice.lock.
 */
void dext_irq_session_release(DextSession *s);

/**
 * dext_irq_device_raise() - DextDeviceHost.raise_msi of every device
 * @opaque: the CoreDevice
 * @vector: the message
 *
 * Sets @vector pending in every session that has it enabled and
 * completes their armed waits; counted as dropped if none has.
 */
void dext_irq_device_raise(void *opaque, uint32_t vector);

/**
 * dext_irq_restore_config() - the interrupt half of a reset's restore
 * @cd: the device, just reset
 * @save: config space saved before the reset
 *
 * MSI message then control, as an OS restores them; an enabled MSI-X
 * table is programmed again (a reset clears it).
 */
void dext_irq_restore_config(CoreDevice *cd, const DextConfigSave *save)
    DEXT_REQUIRES(cd->lock);

#endif /* LIBDEXT_CORE_INTERNAL_H */
