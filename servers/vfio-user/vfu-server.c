/*
 * SPDX-License-Identifier: MIT
 *
 * dext-vfio-user: sessions and the request dispatch.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "support/ratelimit.h"
#include "vfu-server.h"

static void __attribute__((format(printf, 2, 0)))
vlog_line(unsigned dropped, const char *fmt, va_list ap)
{
    fputs("dext-vfio-user: ", stderr);
    vfprintf(stderr, fmt, ap);
    if (dropped > 0) {
        fprintf(stderr, " (%u client-caused line%s dropped before this "
                "one)", dropped, dropped == 1 ? "" : "s");
    }
    fputc('\n', stderr);
}

void vfu_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog_line(0, fmt, ap);
    va_end(ap);
}

/*
 * The budget of client-caused lines, the one dextd and the core use,
 * for the whole server: a client that reconnects in a loop is a new
 * session each time.
 */
static DextRateLimit client_budget;

void vfu_log_client(const char *fmt, ...)
{
    unsigned dropped;
    va_list ap;

    if (!dext_ratelimit_take(&client_budget, &dropped)) {
        return;
    }
    va_start(ap, fmt);
    vlog_line(dropped, fmt, ap);
    va_end(ap);
}

int vfu_errno(kern_return_t kr)
{
    switch (kr) {
    case kIOReturnSuccess:
        return 0;
    case kIOReturnBadArgument:
    case kIOReturnNotAligned:
        return EINVAL;
    case kIOReturnNotOpen:
    case kIOReturnNotPermitted:
        return EPERM;
    case kIOReturnBusy:
    case kIOReturnStillOpen:
        return EEXIST;
    case kIOReturnNoResources:
    case kIOReturnNoSpace:
        return ENOSPC;
    case kIOReturnNoMemory:
        return ENOMEM;
    case kIOReturnNotFound:
        return ENOENT;
    case kIOReturnUnsupported:
        return ENOTSUP;
    case kIOReturnNotReady:
        return EAGAIN;
    case kIOReturnTimeout:
        return ETIMEDOUT;
    case kIOReturnNoDevice:
    case kIOReturnNotResponding:
        return ENODEV;
    default:
        return EIO;
    }
}

int vfu_session_open(VfuSession *s)
{
    kern_return_t kr;
    unsigned i;

    for (i = 0; i < VFU_MAX_VECTORS; i++) {
        s->trigger[i] = -1;
    }
    kr = apple_dext_connect_target(s->target, s->bus, s->dev, s->fn,
                                   &s->conn);
    if (kr != kIOReturnSuccess) {
        vfu_log_client("%02x:%02x.%x: %s (%s)", s->bus, s->dev, s->fn,
                       apple_dext_strerror(kr),
                       apple_dext_last_error_detail());
        return -1;
    }
    kr = apple_dext_claim(s->conn);
    if (kr != kIOReturnSuccess) {
        vfu_log_client("claim: %s", apple_dext_strerror(kr));
        apple_dext_disconnect(s->conn);
        s->conn = IO_OBJECT_NULL;
        return -1;
    }
    if (vfu_device_probe(s) != 0) {
        vfu_session_close(s);
        return -1;
    }
    return 0;
}

void vfu_session_close(VfuSession *s)
{
    const char *target = s->target;
    uint8_t bus = s->bus, dev = s->dev, fn = s->fn;

    unsigned i;

    vfu_irq_teardown(s);
    vfu_dma_unmap_all(s);
    for (i = 0; i < 6; i++) {
        if (s->bars[i].mappable) {
            close(s->bars[i].fd);
        }
    }
    if (s->conn != IO_OBJECT_NULL) {
        /* Releases the claim, every region and the interrupts. */
        apple_dext_disconnect(s->conn);
    }
    memset(s, 0, sizeof(*s));
    s->target = target;
    s->bus = bus;
    s->dev = dev;
    s->fn = fn;
}

void vfu_close_fds(int *fds, unsigned nfds)
{
    unsigned i;

    for (i = 0; i < nfds; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
}

int vfu_handle(VfuSession *s, const uint8_t *msg, size_t len, int *fds,
               unsigned nfds, VfuReply *rep)
{
    VfuHeader h;
    const uint8_t *p = msg + VFU_HDR_SIZE;
    size_t n;
    int ret;

    rep->len = 0;
    rep->err = 0;
    rep->nfds = 0;
    if (len < VFU_HDR_SIZE || len > VFU_MAX_MSG_SIZE) {
        vfu_close_fds(fds, nfds);
        return -1;
    }
    memcpy(&h, msg, sizeof(h));
    if (h.size != len ||
        (h.flags & VFU_FLAG_TYPE_MASK) != VFU_FLAG_TYPE_COMMAND) {
        vfu_close_fds(fds, nfds);
        return -1;
    }
    n = len - VFU_HDR_SIZE;
    if (!s->versioned && h.command != VFU_CMD_VERSION) {
        /* Nothing before the version handshake. */
        vfu_close_fds(fds, nfds);
        return -1;
    }
    /* Only DMA_MAP and SET_IRQS carry fds; the handlers own them. */
    if (nfds > 0 && h.command != VFU_CMD_DMA_MAP &&
        h.command != VFU_CMD_DEVICE_SET_IRQS) {
        vfu_close_fds(fds, nfds);
        rep->err = EINVAL;
        goto out;
    }

    switch (h.command) {
    case VFU_CMD_VERSION: ret = vfu_version(s, p, n, rep); break;
    case VFU_CMD_DMA_MAP: ret = vfu_dma_map(s, p, n, fds, nfds, rep); break;
    case VFU_CMD_DMA_UNMAP: ret = vfu_dma_unmap(s, p, n, rep); break;
    case VFU_CMD_DEVICE_GET_INFO: ret = vfu_device_info(s, p, n, rep); break;
    case VFU_CMD_DEVICE_GET_REGION_INFO: ret = vfu_region_info(s, p, n, rep); break;
    case VFU_CMD_DEVICE_GET_IRQ_INFO: ret = vfu_irq_info(s, p, n, rep); break;
    case VFU_CMD_DEVICE_SET_IRQS: ret = vfu_set_irqs(s, p, n, fds, nfds, rep); break;
    case VFU_CMD_REGION_READ: ret = vfu_region_read(s, p, n, rep); break;
    case VFU_CMD_REGION_WRITE: ret = vfu_region_write(s, p, n, rep); break;
    case VFU_CMD_REGION_WRITE_MULTI: ret = vfu_region_write_multi(s, p, n, rep); break;
    case VFU_CMD_DEVICE_RESET: ret = vfu_device_reset(s, rep); break;
    default: rep->err = ENOTSUP; ret = 0; break;
    }
    if (ret < 0) {
        return -1;
    }
out:
    if (rep->err != 0) {
        /* An error reply is the header alone. */
        rep->len = 0;
        vfu_close_fds(rep->fds, rep->nfds);
        rep->nfds = 0;
    }
    return (h.flags & VFU_FLAG_NO_REPLY) ? 1 : 0;
}
