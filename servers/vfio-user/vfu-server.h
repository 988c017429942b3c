/*
 * SPDX-License-Identifier: MIT
 *
 * dext-vfio-user: one device of a libdext target served to one vfio-user
 * client at a time.  Built on the public libdext API only.
 *
 * A session is one client: it opens its own libdext connection (and so
 * its own claim, DMA regions and interrupts), and closing the session
 * gives all of them back.  Requests are handled one at a time on the
 * caller's thread: vfu_handle() takes a whole message and its fds and
 * produces the reply, so the socket loop, the tests and the fuzz target
 * share it.
 */

#ifndef DEXT_VFU_SERVER_H
#define DEXT_VFU_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <apple-dext-client.h>

#include "vfio-user-proto.h"

/* What the server accepts and advertises. */
#define VFU_MAX_MSG_FDS         8
#define VFU_MAX_DATA_XFER       (1u << 20)
#define VFU_MAX_DMA_MAPS        4096u
#define VFU_MAX_MSG_SIZE        (VFU_HDR_SIZE + VFU_MAX_DATA_XFER + 4096u)
#define VFU_MAX_VECTORS         256u
#define VFU_PGSIZES             4096u

typedef struct VfuDmaMapping {
    uint64_t iova, size;
    void *reserve;          /* our mapping: the reservation it sits in */
    size_t reserve_len;
} VfuDmaMapping;

typedef struct VfuBar {
    uint64_t size;          /* 0: unused (or the upper half of a 64-bit) */
    uint8_t type;           /* PCI BAR low bits */
    uint8_t mem_idx;
    uint64_t addr;          /* what the guest wrote, masked */
    bool mappable;          /* @fd maps it: offered with sparse mmap */
    int fd;                 /* apple_dext_map_bar_fd()'s, when mappable */
    uint64_t fd_offset;     /* the BAR's offset in @fd */
} VfuBar;

typedef struct VfuSession {
    const char *target;
    uint8_t bus, dev, fn;
    io_connect_t conn;
    bool versioned;         /* VERSION done */
    uint32_t config_size;
    VfuBar bars[6];
    /* Interrupts: the index the client set up, eventfds per vector. */
    uint32_t msi_count, msix_count;
    uint32_t irq_index;     /* VFU_PCI_MSI_IRQ / _MSIX_IRQ, or 0: none */
    bool irqs_setup;        /* apple_dext_setup_interrupts() done */
    int trigger[VFU_MAX_VECTORS];
    bool masked[VFU_MAX_VECTORS];
    bool pending[VFU_MAX_VECTORS];  /* raised while masked */
    AppleDextInterruptNotify *notify;
    /* Bounds trigger writes (vfu-irq.c), made with the interrupts. */
    timer_t guard;
    bool guard_made, guard_armed;
    bool guard_failed_said;     /* a failed arm was logged */
    bool trigger_blocked;   /* a trigger write blocked: drop the client */
    VfuDmaMapping *maps;
    uint32_t nmaps;
} VfuSession;

/* A reply under construction: the payload after the header, fds beside. */
typedef struct VfuReply {
    uint8_t *payload;       /* room for VFU_MAX_MSG_SIZE - VFU_HDR_SIZE */
    size_t len;
    int err;                /* errno for an error reply, 0 for success */
    int fds[VFU_MAX_MSG_FDS];
    unsigned nfds;          /* fds still owned by the session */
} VfuReply;

/**
 * vfu_session_open() - connect to the device and claim it
 * @s: zeroed session with @target and the BDF set
 *
 * Return: 0, or -1 with the reason logged.
 */
int vfu_session_open(VfuSession *s);

/**
 * vfu_session_close() - give everything back: DMA mappings, interrupts,
 * eventfds, the claim and the connection
 * @s: an opened session; it is then as before vfu_session_open()
 */
void vfu_session_close(VfuSession *s);

/**
 * vfu_handle() - handle one message from the client
 * @s: the session
 * @msg: the whole message, header first
 * @len: its length in bytes
 * @fds: fds received with it; vfu_handle() owns them (keeps or closes)
 * @nfds: how many
 * @rep: receives the reply (send it unless the command said NO_REPLY)
 *
 * A session's messages are handled on one thread, the one its
 * interrupts are then delivered on (see vfu_irq_deliver()).  After a
 * SET_IRQS, @s->trigger_blocked set says to drop the client.
 *
 * Return: 0 to reply, 1 for no reply, -1 to close the connection
 * (a message the server cannot answer).
 */
int vfu_handle(VfuSession *s, const uint8_t *msg, size_t len, int *fds,
               unsigned nfds, VfuReply *rep);

/**
 * vfu_irq_poll_fd() - the fd to poll for device interrupts
 * @s: the session
 *
 * Return: an fd, or -1 while interrupts are not set up.
 */
int vfu_irq_poll_fd(VfuSession *s);

/**
 * vfu_irq_deliver() - drain pending vectors into the eventfds; rearm
 * @s: the session
 *
 * Like vfu_handle(), on the thread that set the interrupts up: a write
 * to a trigger eventfd that blocks is interrupted by a timer aimed at
 * that thread, and the session's @trigger_blocked then says to drop
 * the client.
 */
void vfu_irq_deliver(VfuSession *s);

/* The handlers, one per concern (vfu-*.c). */
int vfu_version(VfuSession *s, const uint8_t *p, size_t n, VfuReply *rep);
int vfu_dma_map(VfuSession *s, const uint8_t *p, size_t n, int *fds,
                unsigned nfds, VfuReply *rep);
int vfu_dma_unmap(VfuSession *s, const uint8_t *p, size_t n, VfuReply *rep);
void vfu_dma_unmap_all(VfuSession *s);
int vfu_device_info(VfuSession *s, const uint8_t *p, size_t n,
                    VfuReply *rep);
int vfu_region_info(VfuSession *s, const uint8_t *p, size_t n,
                    VfuReply *rep);
int vfu_region_read(VfuSession *s, const uint8_t *p, size_t n,
                    VfuReply *rep);
int vfu_region_write(VfuSession *s, const uint8_t *p, size_t n,
                     VfuReply *rep);
int vfu_region_write_multi(VfuSession *s, const uint8_t *p, size_t n,
                           VfuReply *rep);
int vfu_irq_info(VfuSession *s, const uint8_t *p, size_t n, VfuReply *rep);
int vfu_set_irqs(VfuSession *s, const uint8_t *p, size_t n, int *fds,
                 unsigned nfds, VfuReply *rep);
int vfu_device_reset(VfuSession *s, VfuReply *rep);
void vfu_irq_teardown(VfuSession *s);
int vfu_device_probe(VfuSession *s);

/**
 * vfu_close_fds() - close the fds a handler did not take
 * @fds: the fds; each closed one becomes -1, and -1 entries are skipped
 * @nfds: how many
 */
void vfu_close_fds(int *fds, unsigned nfds);

/* Logging to stderr, one line. */
void vfu_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * vfu_log_client() - log a line a client can cause, under a budget
 * @fmt: printf format of the line
 *
 * A client (a VMM) that repeats a refused request, or reconnects in a
 * loop, must not fill the disk the log goes to: the budget of
 * support/ratelimit.h (a burst of DEXT_RATELIMIT_BURST lines, then one
 * every DEXT_RATELIMIT_PERIOD_MS), and the next line let through says
 * how many were dropped.  Lines about the server itself
 * (its socket, the dext going away) use vfu_log().
 *
 * Return: nothing.
 */
void vfu_log_client(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Map an IOReturn to the errno a reply carries. */
int vfu_errno(kern_return_t kr);

#endif /* DEXT_VFU_SERVER_H */
