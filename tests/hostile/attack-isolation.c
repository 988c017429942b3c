/*
 * SPDX-License-Identifier: MIT
 *
 * Hostile suite, family "isolation": one client against another, and
 * dextd acting for a process that never asked.
 *
 *  - An unclaimed client against a claimer (finding 8, decision 8): its
 *    MMIO and config writes and Terminate answer kIOReturnNotOpen, it
 *    cannot program edu's DMA engine over the claimer's memory, its BAR
 *    mapping is read-only; a claimer's Terminate while others hold a
 *    claim answers kIOReturnBusy.
 *  - Another uid: refused by the socket's mode, and by dextd itself when
 *    an administrator opens the mode up.
 *  - A world-writable socket directory: the socket is still 0600.
 *  - Recycled pids (finding 4, decision 4): a channel whose process has
 *    exited and whose pid now names a victim must not reach the victim.
 *  - ATTACH with a stolen or guessed token.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edu.h"
#include "hostile.h"
#include "hostile-wire.h"
#include "ivshmem.h"
#include "protocol/dext-selectors.h"

#define NOBODY          65534
#define PAGE            4096
#define PID_TRIES       10      /* victims forked to hit a pid */
#define A_TRIES         3       /* connecting processes tried */
#define GUESSES         2000

/* ------------------------------------------------------------------ */
/* Finding 8: unclaimed against claimed                                 */

typedef struct UnclaimedReport {
    IOReturn open, id_read, cfg_read;
    IOReturn mmio_write, cfg_write, cfg_write_block;
    IOReturn dma_src, dma_dst, dma_count, dma_cmd;
    IOReturn map;
    bool map_writable;
    bool mmap_write_refused;
    IOReturn terminate;
} UnclaimedReport;

typedef struct UnclaimedArg {
    uint64_t victim_bus;        /* the claimer's region, found by "scanning" */
} UnclaimedArg;

static void unclaimed_child(void *opaque)
{
    UnclaimedArg *a = opaque;
    UnclaimedReport r;
    DextWireMapReply mr;
    DextWireCall call;
    RawChan *c = NULL, *iv = NULL;
    uint64_t v, in[3];
    uint8_t blk[4] = { 0xff, 0xff, 0xff, 0xff };
    int fd = -1;

    memset(&r, 0xff, sizeof(r));
    r.map_writable = false;
    r.mmap_write_refused = true;
    r.open = raw_session(&c, hostile_service(HOSTILE_EDU_BDF), false);
    if (r.open == kIOReturnSuccess) {
        /* What an unclaimed client may do... */
        r.id_read = raw_mmio_read(c, EDU_MEM_IDX, EDU_REG_ID, 4, &v);
        in[0] = 0;
        in[1] = 4;
        r.cfg_read = raw_call(c, kDextSelectorConfigRead, in, 2, &v, 1);
        /* ...and what it may not. */
        r.mmio_write = raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_LIVENESS, 4,
                                      0x12345678);
        r.cfg_write = raw_config_write(c, 0x3c, 1, 0x5a);
        memset(&call, 0, sizeof(call));
        call.selector = kDextSelectorConfigWriteBlock;
        call.scalar_in_cnt = 1;
        call.scalar_in[0] = 0x40;
        call.struct_in_len = sizeof(blk);
        call.struct_in = blk;
        r.cfg_write_block = raw_call_full(c, false, &call, NULL);
        /* The device buffer over the claimer's memory. */
        r.dma_src = raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_DMA_SRC, 8,
                                   EDU_DMA_BUF_ADDR);
        r.dma_dst = raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_DMA_DST, 8,
                                   a->victim_bus);
        r.dma_count = raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_DMA_COUNT, 8,
                                     PAGE);
        r.dma_cmd = raw_mmio_write(c, EDU_MEM_IDX, EDU_REG_DMA_CMD, 8,
                                   EDU_DMA_RUN | EDU_DMA_TO_RAM);
    }
    if (raw_session(&iv, hostile_service(HOSTILE_IVSHMEM_BDF), false) ==
        kIOReturnSuccess) {
        r.map = raw_map(iv, kDextMemoryTypeBAR0 + IVSHMEM_BAR_SHM, &mr, &fd);
        if (r.map == kIOReturnSuccess && fd >= 0) {
            void *p = mmap(NULL, (size_t)mr.size, PROT_READ | PROT_WRITE,
                           MAP_SHARED, fd, (off_t)mr.offset);

            r.map_writable = (mr.flags & DEXT_WIRE_MAP_WRITABLE) != 0;
            r.mmap_write_refused = p == MAP_FAILED;
            if (p != MAP_FAILED) {
                munmap(p, (size_t)mr.size);
            }
            close(fd);
        }
    }
    /* Last: on a dextd that allows it, this ends the device for all. */
    if (c != NULL) {
        r.terminate = raw_call(c, kDextSelectorTerminate, NULL, 0, NULL, 0);
    }
    hostile_child_send(&r, sizeof(r));
    raw_close(iv);
    raw_close(c);
}

static void attack_unclaimed_vs_claimer(void)
{
    static uint8_t secret[PAGE] __attribute__((aligned(PAGE)));
    static uint8_t zeros[PAGE] __attribute__((aligned(PAGE)));
    UnclaimedArg arg = { 0 };
    UnclaimedReport r;
    HostileChild kid;
    DextWireMapReply mr;
    RawChan *claimer = NULL, *iv = NULL;
    uint64_t bus_zero = 0;
    IOReturn st;
    int fd = -1;
    size_t i;
    bool intact = true;

    st = raw_session(&claimer, hostile_service(HOSTILE_EDU_BDF), true);
    if (!HCHECK(st == kIOReturnSuccess, "claimer's session: 0x%x", st)) {
        return;
    }
    for (i = 0; i < PAGE; i++) {
        secret[i] = (uint8_t)(0xa5 ^ i);
    }
    raw_register(claimer, 0x1000, secret, PAGE, &arg.victim_bus);
    raw_register(claimer, 0x2000, zeros, PAGE, &bus_zero);
    /* Zeros in the device buffer: any DMA over the secret would show. */
    raw_edu_dma(claimer, bus_zero, EDU_DMA_BUF_ADDR, PAGE, false, true);
    /* A claimer maps BAR2 first, as a VM would. */
    st = raw_session(&iv, hostile_service(HOSTILE_IVSHMEM_BDF), true);
    if (st == kIOReturnSuccess &&
        raw_map(iv, kDextMemoryTypeBAR0 + IVSHMEM_BAR_SHM, &mr, &fd) ==
        kIOReturnSuccess) {
        close(fd);
    }

    if (HCHECK(hostile_child_start(&kid, unclaimed_child, &arg, NULL, 0),
               "fork: %s", strerror(errno)) &&
        HCHECK(hostile_child_read(&kid, &r, sizeof(r), 30000),
               "the unclaimed client did not report") &&
        HCHECK(r.open == kIOReturnSuccess, "unclaimed OPEN: 0x%x", r.open)) {
        HCHECK(r.id_read == kIOReturnSuccess, "unclaimed MMIO read refused: "
               "0x%x", r.id_read);
        HCHECK(r.cfg_read == kIOReturnSuccess, "unclaimed config read "
               "refused: 0x%x", r.cfg_read);
        HCHECK(r.mmio_write == kIOReturnNotOpen, "unclaimed MMIO write: "
               "0x%x", r.mmio_write);
        HCHECK(r.cfg_write == kIOReturnNotOpen, "unclaimed config write: "
               "0x%x", r.cfg_write);
        HCHECK(r.cfg_write_block == kIOReturnNotOpen, "unclaimed config "
               "block write: 0x%x", r.cfg_write_block);
        HCHECK(r.dma_src == kIOReturnNotOpen && r.dma_dst ==
               kIOReturnNotOpen && r.dma_count == kIOReturnNotOpen &&
               r.dma_cmd == kIOReturnNotOpen, "unclaimed programming of "
               "edu's DMA engine: 0x%x 0x%x 0x%x 0x%x", r.dma_src, r.dma_dst,
               r.dma_count, r.dma_cmd);
        HCHECK(r.map != kIOReturnSuccess ||
               (!r.map_writable && r.mmap_write_refused),
               "unclaimed MAP of BAR2: writable flag %d, PROT_WRITE "
               "MAP_SHARED mmap %s", r.map_writable,
               r.mmap_write_refused ? "refused" : "allowed");
        HCHECK(r.terminate == kIOReturnNotOpen, "unclaimed Terminate: 0x%x",
               r.terminate);
    }
    hostile_child_reap(&kid, HOSTILE_ANSWER_MS);

    /* Whatever the engine was told to do is done by now. */
    raw_edu_wait_idle(claimer);
    for (i = 0; i < PAGE; i++) {
        intact &= secret[i] == (uint8_t)(0xa5 ^ i);
    }
    HCHECK(intact, "an unclaimed client's DMA overwrote the claimer's "
           "memory");
    /* The claimer itself may not end the device under the bystander. */
    if (hostile_dextd_alive()) {
        st = raw_call(claimer, kDextSelectorTerminate, NULL, 0, NULL, 0);
        HCHECK(st == kIOReturnBusy, "Terminate by a claimer while another "
               "session holds a claim: want kIOReturnBusy, got 0x%x", st);
    }
    raw_close(iv);
    raw_close(claimer);
}

/* ------------------------------------------------------------------ */
/* Other uids                                                           */

typedef struct UidReport {
    int connect_errno;          /* 0 if connect() worked */
    IOReturn hello;             /* HELLO's outcome then */
} UidReport;

static void as_nobody(void *arg)
{
    UidReport r = { 0, 0 };
    RawChan *c;

    (void)arg;
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 ||
        setuid(NOBODY) != 0) {
        r.connect_errno = -1;
        hostile_child_send(&r, sizeof(r));
        return;
    }
    c = raw_connect();
    if (c == NULL) {
        r.connect_errno = errno;
    } else {
        r.hello = raw_hello(c);
    }
    hostile_child_send(&r, sizeof(r));
    raw_close(c);
}

/* Connect as uid 65534; what came of it. */
static bool try_as_nobody(UidReport *r)
{
    HostileChild kid;
    bool ok;

    if (!HCHECK(hostile_child_start(&kid, as_nobody, NULL, NULL, 0),
                "fork: %s", strerror(errno))) {
        return false;
    }
    ok = HCHECK(hostile_child_read(&kid, r, sizeof(*r), 10000),
                "the uid-%d client did not report", NOBODY);
    hostile_child_reap(&kid, HOSTILE_ANSWER_MS);
    return ok && HCHECK(r->connect_errno != -1, "cannot become uid %d",
                        NOBODY);
}

static void attack_other_uid(void)
{
    UidReport r;

    /* The directory is traversable, the socket is dextd's 0600. */
    chmod(hostile_socket_dir(), 0711);
    if (try_as_nobody(&r)) {
        HCHECK(r.connect_errno != 0 || r.hello != kIOReturnSuccess,
               "uid %d got a HELLO through a 0600 socket", NOBODY);
        hostile_note("socket 0600: connect %s", r.connect_errno ?
                     strerror(r.connect_errno) : "worked");
    }
    /*
     * An administrator opens the socket to everyone: dextd itself must
     * still refuse a uid that is neither its own nor root's.
     */
    chmod(hostile_socket_path(), 0666);
    if (try_as_nobody(&r)) {
        HCHECK(r.connect_errno == 0, "connect through a 0666 socket: %s",
               strerror(r.connect_errno));
        HCHECK(r.hello != kIOReturnSuccess && raw_is_answer(r.hello),
               "uid %d through a 0666 socket: want a refusal, got 0x%x",
               NOBODY, r.hello);
        hostile_note("socket 0666: dextd answered 0x%x", r.hello);
    }
    chmod(hostile_socket_path(), 0600);
    chmod(hostile_socket_dir(), 0700);
}

static void attack_world_writable_dir(void)
{
    struct stat st, dst;
    UidReport r;

    if (!HCHECK(lstat(hostile_socket_path(), &st) == 0, "lstat: %s",
                strerror(errno))) {
        return;
    }
    HCHECK(S_ISSOCK(st.st_mode), "not a socket");
    HCHECK((st.st_mode & 07777) == 0600, "socket mode %04o in a 0777 "
           "directory, want 0600", (unsigned)(st.st_mode & 07777));
    HCHECK(st.st_uid == geteuid(), "socket owned by uid %u",
           (unsigned)st.st_uid);
    if (try_as_nobody(&r)) {
        HCHECK(r.connect_errno != 0 || r.hello != kIOReturnSuccess,
               "uid %d got a HELLO through the socket", NOBODY);
    }
    /*
     * In a directory others may write that has no sticky bit, any uid can
     * unlink the socket and bind its own in its place (the library's
     * peer-uid check is then the only defence): dextd must say so.
     */
    if (stat(hostile_socket_dir(), &dst) == 0 &&
        (dst.st_mode & S_IWOTH) && !(dst.st_mode & S_ISVTX)) {
        HCHECK(hostile_log_has("not sticky"), "dextd did not warn that "
               "other users can replace its socket in a %04o directory",
               (unsigned)(dst.st_mode & 07777));
        hostile_note("socket dir %04o: other uids can replace the socket",
                     (unsigned)(dst.st_mode & 07777));
    }
}

/* ------------------------------------------------------------------ */
/* Finding 4: recycled pids                                             */

static uint8_t *pid_secret;     /* one page, at the same address in forks */

static void connect_and_pass(void *arg)
{
    int via = *(int *)arg;
    RawChan *c = raw_connect_hello();

    if (c != NULL) {
        raw_pass_fd(via, c->fd);
    }
    raw_close(c);
    /* And exit: the channel now lives only in the parent. */
}

static uint8_t victim_byte(size_t i)
{
    return (uint8_t)(0x3c ^ (i * 7));
}

static void victim(void *arg)
{
    uint8_t intact = 1;
    size_t i;

    (void)arg;
    for (i = 0; i < PAGE; i++) {
        pid_secret[i] = victim_byte(i);
    }
    hostile_child_ready();
    hostile_child_wait_release(60000);
    for (i = 0; i < PAGE; i++) {
        intact &= pid_secret[i] == victim_byte(i);
    }
    hostile_child_send(&intact, 1);
}

/* Fork the victim with pid @want; true if it got it. */
static bool fork_victim_as(pid_t want, HostileChild *vic)
{
    char num[32];
    int i, fd, len;

    for (i = 0; i < PID_TRIES; i++) {
        fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            return false;
        }
        len = snprintf(num, sizeof(num), "%d", (int)want - 1);
        if (write(fd, num, (size_t)len) != len) {
            close(fd);
            return false;
        }
        close(fd);
        if (!hostile_child_start(vic, victim, NULL, NULL, 0)) {
            return false;
        }
        if (vic->pid == want) {
            return true;
        }
        /* Someone else forked in between: try again. */
        hostile_child_reap(vic, 0);
    }
    return false;
}

static void attack_recycled_pid(void)
{
    HostileChild a, vic = { .pid = -1 };
    RawChan *h = NULL;
    uint64_t bus = 0, bus_zero = 0, v = 0;
    uint8_t intact = 0, *zeros;
    pid_t apid = -1;
    IOReturn st;
    int sp[2], fd = -1, t;

    pid_secret = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    zeros = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!HCHECK(pid_secret != MAP_FAILED && zeros != MAP_FAILED, "mmap")) {
        return;
    }
    /* Ours differs from the victim's, so a read tells whose it was. */
    memset(pid_secret, 0xee, PAGE);
    memset(zeros, 0, PAGE);
    for (t = 0; t < A_TRIES && vic.pid < 0; t++) {
        if (!HCHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0,
                               sp) == 0, "socketpair")) {
            break;
        }
        /* A connects and says HELLO, hands us its channel, exits. */
        if (HCHECK(hostile_child_start(&a, connect_and_pass, &sp[1], &sp[1],
                                       1), "fork: %s", strerror(errno))) {
            apid = a.pid;
            fd = raw_take_fd(sp[0], HARNESS_WAIT_MS);
            hostile_child_reap(&a, HARNESS_WAIT_MS);
        }
        close(sp[0]);
        close(sp[1]);
        if (!HCHECK(fd >= 0, "no channel from A")) {
            break;
        }
        if (!fork_victim_as(apid, &vic)) {
            vic.pid = -1;
            close(fd);
            fd = -1;
        }
    }
    if (vic.pid < 0) {
        if (!hostile_failed()) {
            hostile_skip("could not give a victim pid %d (ns_last_pid)",
                         (int)apid);
        }
        goto out;
    }
    HCHECK(hostile_child_wait_ready(&vic, HARNESS_WAIT_MS),
           "victim not ready");
    hostile_note("victim has A's pid %d", (int)apid);

    /* H now acts on A's channel. */
    h = raw_wrap(fd);
    h->version = 1;
    st = raw_open(h, hostile_service(HOSTILE_EDU_BDF), NULL);
    HCHECK(st != kIOReturnSuccess && raw_is_answer(st), "OPEN on the channel of "
           "exited pid %d, now the victim's: 0x%x", (int)apid, st);
    if (st == kIOReturnSuccess) {
        raw_claim(h);
        st = raw_register(h, 0x1000, pid_secret, PAGE, &bus);
        if (st == kIOReturnSuccess &&
            raw_probe(h, 0x1000, 0, &v) == kIOReturnSuccess) {
            HCHECK(v != 0xeeeeeeeeeeeeeeeeull, "ProbeDMARegion read "
                   "0x%llx: whose memory?", (unsigned long long)v);
            HCHECK((uint8_t)v != victim_byte(0), "ProbeDMARegion returned "
                   "the victim's memory (0x%016llx)",
                   (unsigned long long)v);
        }
        /* Zeros into the device, then over the victim's page. */
        if (st == kIOReturnSuccess &&
            raw_register(h, 0x2000, zeros, PAGE, &bus_zero) ==
            kIOReturnSuccess) {
            raw_edu_dma(h, bus_zero, EDU_DMA_BUF_ADDR, PAGE, false, true);
            raw_edu_dma(h, EDU_DMA_BUF_ADDR, bus, PAGE, true, true);
        }
    }
    hostile_child_release(&vic);
    HCHECK(hostile_child_read(&vic, &intact, 1, HARNESS_WAIT_MS) && intact,
           "the victim's memory was written by device DMA");
    hostile_child_reap(&vic, HOSTILE_ANSWER_MS);
out:
    raw_close(h);
    munmap(pid_secret, PAGE);
    munmap(zeros, PAGE);
}

/* ------------------------------------------------------------------ */
/* An inherited channel                                                  */

/*
 * A channel outlives its opener's sole hold on it: a forked child has it
 * too.  Such a holder must not make dextd read or write the opener's
 * memory in its name -- a child that may not ptrace its parent (Yama)
 * could otherwise read it through dextd.  Regions name the opener's
 * memory, so RegisterDMARegion and ProbeDMARegion must come from the
 * opener itself.
 */
static RawChan *inherited;
static uint8_t *inherited_page;     /* the same address in parent and child */

typedef struct InheritedReport {
    IOReturn reg;
    IOReturn probe;
    uint64_t value;
} InheritedReport;

static void inheriting_child(void *arg)
{
    InheritedReport r = { .reg = kIOReturnError, .probe = kIOReturnError };
    uint64_t bus;

    (void)arg;
    /* Our copy of the page now differs from the parent's. */
    memset(inherited_page, 0x11, PAGE);
    r.reg = raw_register(inherited, 0x3000, inherited_page, PAGE, &bus);
    r.probe = raw_probe(inherited, 0x1000, 0, &r.value);
    hostile_child_send(&r, sizeof(r));
}

static void attack_inherited_channel(void)
{
    InheritedReport r = { 0 };
    HostileChild child;
    uint64_t bus, v = 0;
    IOReturn st;

    inherited_page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    inherited = raw_connect_hello();
    if (!HCHECK(inherited_page != MAP_FAILED, "mmap") ||
        !HCHECK(inherited != NULL, "connect")) {
        goto out;
    }
    memset(inherited_page, 0xee, PAGE);
    st = raw_open(inherited, hostile_service(HOSTILE_EDU_BDF), NULL);
    if (!HCHECK(st == kIOReturnSuccess, "OPEN: 0x%x", st) ||
        !HCHECK(raw_claim(inherited) == kIOReturnSuccess, "claim") ||
        !HCHECK(raw_register(inherited, 0x1000, inherited_page, PAGE,
                             &bus) == kIOReturnSuccess, "register")) {
        goto out;
    }
    if (!HCHECK(hostile_child_start(&child, inheriting_child, NULL,
                                    &inherited->fd, 1), "fork")) {
        goto out;
    }
    HCHECK(hostile_child_read(&child, &r, sizeof(r), HARNESS_WAIT_MS),
           "no report from the child");
    hostile_child_reap(&child, HOSTILE_ANSWER_MS);
    HCHECK(r.reg == kIOReturnNotPermitted, "the child registered a region "
           "on its parent's session: 0x%x", r.reg);
    HCHECK(r.probe == kIOReturnNotPermitted, "the child probed its parent's "
           "region: 0x%x, read 0x%016llx", r.probe,
           (unsigned long long)r.value);
    /* The opener itself is still served. */
    HCHECK(raw_probe(inherited, 0x1000, 0, &v) == kIOReturnSuccess &&
           v == 0xeeeeeeeeeeeeeeeeull, "the opener's own probe: 0x%016llx",
           (unsigned long long)v);
out:
    raw_close(inherited);
    inherited = NULL;
    if (inherited_page != MAP_FAILED) {
        munmap(inherited_page, PAGE);
    }
}

/* ------------------------------------------------------------------ */
/* ATTACH tokens                                                         */

static uint8_t stolen[DEXT_WIRE_TOKEN_SIZE];

static void thief(void *arg)
{
    RawChan *c = raw_connect_hello();
    IOReturn st = c != NULL ? raw_attach(c, stolen) : RAW_HUNG_UP;

    (void)arg;
    hostile_child_send(&st, sizeof(st));
    raw_close(c);
}

static void attack_attach_token(void)
{
    uint8_t guess[DEXT_WIRE_TOKEN_SIZE];
    RawChan *owner, *mine, *c;
    HostileChild kid;
    IOReturn st = kIOReturnSuccess;
    unsigned i, j, accepted = 0;

    mine = raw_connect_hello();
    owner = raw_connect_hello();
    st = owner != NULL ? raw_open(owner, hostile_service(HOSTILE_EDU_BDF),
                                  stolen) : RAW_HUNG_UP;
    if (!HCHECK(mine != NULL && st == kIOReturnSuccess, "OPEN: 0x%x", st)) {
        raw_close(owner);
        raw_close(mine);
        return;
    }
    /* The owner process may add channels: the control. */
    HCHECK(raw_attach(mine, stolen) == kIOReturnSuccess,
           "the owner's own ATTACH refused");
    /* Another process holding the token may not. */
    if (HCHECK(hostile_child_start(&kid, thief, NULL, NULL, 0), "fork")) {
        HCHECK(hostile_child_read(&kid, &st, sizeof(st), 10000) &&
               st != kIOReturnSuccess && raw_is_answer(st),
               "ATTACH with a stolen token from another process: 0x%x", st);
        hostile_child_reap(&kid, HOSTILE_ANSWER_MS);
    }
    /* Guessing: every guess answered, none right. */
    c = raw_connect_hello();
    for (i = 0; c != NULL && i < GUESSES; i++) {
        for (j = 0; j < sizeof(guess); j++) {
            guess[j] = (uint8_t)(i * 131 + j * 7 + (i >> 3));
        }
        st = raw_attach(c, guess);
        accepted += st == kIOReturnSuccess;
        if (!HCHECK(raw_is_answer(st), "guess %u unanswered: 0x%x", i, st)) {
            break;
        }
        if (st == kIOReturnSuccess) {
            raw_close(c);
            c = raw_connect_hello();
        }
    }
    HCHECK(accepted == 0, "%u guessed tokens accepted", accepted);
    raw_close(c);
    /* Once the session is gone, so is its token. */
    raw_close(mine);
    raw_close(owner);
    hostile_sleep_ms(100);
    c = raw_connect_hello();
    st = c != NULL ? raw_attach(c, stolen) : RAW_HUNG_UP;
    HCHECK(st != kIOReturnSuccess && raw_is_answer(st), "ATTACH to a closed "
           "session: 0x%x", st);
    raw_close(c);
    hostile_note("%u guesses refused", GUESSES);
}

static const HostileAttack attacks[] = {
    { .name = "isolation/unclaimed-vs-claimer", .finding = "F8",
      .run = attack_unclaimed_vs_claimer },
    { .name = "isolation/other-uid", .run = attack_other_uid },
    { .name = "isolation/world-writable-dir", .run = attack_world_writable_dir,
      .flags = HOSTILE_OPEN_SOCKET_DIR },
    { .name = "isolation/recycled-pid", .finding = "F4",
      .run = attack_recycled_pid },
    { .name = "isolation/attach-token-theft", .run = attack_attach_token },
    { .name = "isolation/inherited-channel", .run = attack_inherited_channel },
};

int main(int argc, char **argv)
{
    return hostile_main(argc, argv, attacks,
                        sizeof(attacks) / sizeof(attacks[0]));
}
