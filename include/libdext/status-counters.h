/*
 * SPDX-License-Identifier: MIT
 *
 * The dext's status counters, listed once.  Each X(type, name, doc, arg)
 * is one counter, in the order the wire protocol's STATUS reply carries
 * them; @arg is passed through.  AppleDextStatus (apple-dext-client.h),
 * the dext core, dextd and both transports are built from this list, so
 * a new counter is one line here.
 */

#ifndef LIBDEXT_STATUS_COUNTERS_H
#define LIBDEXT_STATUS_COUNTERS_H

#define APPLE_DEXT_STATUS_COUNTERS(X, ...) \
    X(uint32_t, devices, "devices served", __VA_ARGS__) \
    X(uint32_t, sessions, "open user clients, all devices", __VA_ARGS__) \
    X(uint32_t, claims, "user clients holding a claim", __VA_ARGS__) \
    X(uint32_t, dma_regions, "live DMA regions", __VA_ARGS__) \
    X(uint64_t, dma_region_bytes, "bytes in those regions", __VA_ARGS__) \
    X(uint32_t, dma_buffers, "live DMA buffers", __VA_ARGS__) \
    X(uint32_t, irq_sessions, "user clients with interrupts set up", __VA_ARGS__) \
    X(uint64_t, iommu_faults, "device DMA to unmapped bus addresses", __VA_ARGS__) \
    X(uint64_t, irqs_raised, "messages sent by devices", __VA_ARGS__) \
    X(uint64_t, irqs_dropped, "...that no user client had enabled", __VA_ARGS__)

/* A struct member per counter: APPLE_DEXT_STATUS_COUNTERS(this, _). */
#define APPLE_DEXT_STATUS_FIELD(type, name, doc, ...) type name;

/*
 * Every counter from *src to *dst, two structs that both carry them:
 * APPLE_DEXT_STATUS_COUNTERS(APPLE_DEXT_STATUS_COPY, dst, src).
 */
#define APPLE_DEXT_STATUS_COPY(type, name, doc, dst, src) \
    (dst)->name = (src)->name;

#endif /* LIBDEXT_STATUS_COUNTERS_H */
