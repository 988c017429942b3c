/*
 * SPDX-License-Identifier: MIT
 *
 * The attack the access model stops: a connection that never claimed the
 * device programs its DMA engine through MMIO writes to reach memory a
 * claimer registered (a bus address is easy to find: the DART model
 * hands them out from its base upwards).
 *
 * edu: the attacker copies the claimer's secret into the device's DMA
 * buffer, then copies the buffer out over another part of the claimer's
 * memory.  ivshmem: the attacker copies the secret into the shared-memory
 * BAR and reads it back with MMIO reads, which it may make.
 *
 * By default every one of the attacker's MMIO writes answers
 * kIOReturnNotOpen and the secret goes nowhere.  Over a dextd started
 * with --unclaimed-writes (HARNESS_DEXTD_ARGS), the macOS dext's model,
 * the attack works, and this test checks that it does.
 */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "edu.h"
#include "ivshmem.h"

#define DEVICES     "edu+ivshmem"
#define REGION_SIZE 16384
#define SECRET_LEN  64
#define TARGET_OFF  8192        /* what the attacker overwrites */
#define SCRATCH_OFF 12288       /* where the claimer looks at the buffer */
#define SHM_OFF     0x3000      /* where the attacker reads on ivshmem */

static bool open_policy;

/* An MMIO write by the attacker; every one is refused by default. */
static void attacker_write_at(io_connect_t a, uint8_t mem, uint64_t off,
                              uint64_t width, uint64_t v, int line)
{
    harness_check_kr(apple_dext_mmio_write(a, mem, off, width, v),
                     open_policy ? kIOReturnSuccess : kIOReturnNotOpen,
                     __FILE__, line, "attacker's MMIO write");
}

#define attacker_write(a, mem, off, width, v) \
    attacker_write_at((a), (mem), (off), (width), (v), __LINE__)

/* Wait, by MMIO reads (allowed), until @mask clears in @off of @mem. */
static void wait_idle(io_connect_t c, uint8_t mem, uint64_t off,
                      uint64_t width, uint64_t mask)
{
    HarnessDeadline d = harness_deadline(HARNESS_WAIT_MS);
    unsigned round = 0;
    uint64_t v = 0;

    for (;;) {
        if (!CHECK_KR(apple_dext_mmio_read(c, mem, off, width, &v),
                      kIOReturnSuccess)) {
            return;
        }
        if ((v & mask) == 0) {
            return;
        }
        if (!CHECK_MSG(!harness_expired(&d), "DMA still running after %u ms",
                       HARNESS_WAIT_MS)) {
            return;
        }
        harness_backoff(&round);
    }
}

/* A claimer's region of REGION_SIZE bytes with a secret at its start. */
static uint8_t *claimer_region(io_connect_t c, uint64_t iova, uint64_t *bus)
{
    uint8_t *mem = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (!CHECK(mem != MAP_FAILED)) {
        return NULL;
    }
    memset(mem, 0, REGION_SIZE);
    harness_fill_random(mem, SECRET_LEN);
    if (!CHECK_KR(apple_dext_claim(c), kIOReturnSuccess) ||
        !CHECK_KR(apple_dext_register_dma(c, iova, (uintptr_t)mem,
                                          REGION_SIZE, bus, NULL),
                  kIOReturnSuccess)) {
        munmap(mem, REGION_SIZE);
        return NULL;
    }
    return mem;
}

static void attack_edu(void)
{
    static const uint8_t zero[SECRET_LEN];
    io_connect_t c = harness_connect_edu();
    io_connect_t a = harness_connect_edu();
    uint64_t bus = 0;
    uint8_t *mem;

    harness_section("edu: steal into the device buffer, write it back over "
                    "the claimer");
    if (c == IO_OBJECT_NULL || a == IO_OBJECT_NULL ||
        (mem = claimer_region(c, 0x100000, &bus)) == NULL) {
        return;
    }
    /* The claimer's memory -> the device's buffer. */
    wait_idle(a, EDU_MEM_IDX, EDU_REG_DMA_CMD, 8, EDU_DMA_RUN);
    attacker_write(a, EDU_MEM_IDX, EDU_REG_DMA_SRC, 8, bus);
    attacker_write(a, EDU_MEM_IDX, EDU_REG_DMA_DST, 8, EDU_DMA_BUF_ADDR);
    attacker_write(a, EDU_MEM_IDX, EDU_REG_DMA_COUNT, 8, SECRET_LEN);
    attacker_write(a, EDU_MEM_IDX, EDU_REG_DMA_CMD, 8, EDU_DMA_RUN);
    wait_idle(a, EDU_MEM_IDX, EDU_REG_DMA_CMD, 8, EDU_DMA_RUN);
    /* The device's buffer -> elsewhere in the claimer's memory. */
    attacker_write(a, EDU_MEM_IDX, EDU_REG_DMA_SRC, 8, EDU_DMA_BUF_ADDR);
    attacker_write(a, EDU_MEM_IDX, EDU_REG_DMA_DST, 8, bus + TARGET_OFF);
    attacker_write(a, EDU_MEM_IDX, EDU_REG_DMA_CMD, 8,
                   EDU_DMA_RUN | EDU_DMA_TO_RAM);
    wait_idle(a, EDU_MEM_IDX, EDU_REG_DMA_CMD, 8, EDU_DMA_RUN);

    /* What reached the buffer, as the claimer itself sees it. */
    edu_dma(c, EDU_DMA_BUF_ADDR, bus + SCRATCH_OFF, SECRET_LEN,
            EDU_DMA_TO_RAM);
    if (open_policy) {
        CHECK(memcmp(mem + SCRATCH_OFF, mem, SECRET_LEN) == 0);
        CHECK(memcmp(mem + TARGET_OFF, mem, SECRET_LEN) == 0);
    } else {
        CHECK_MSG(memcmp(mem + SCRATCH_OFF, mem, SECRET_LEN) != 0,
                  "the secret reached the device buffer");
        CHECK_MSG(memcmp(mem + TARGET_OFF, zero, SECRET_LEN) == 0,
                  "the claimer's memory was overwritten");
    }
    apple_dext_disconnect(a);
    apple_dext_disconnect(c);
    munmap(mem, REGION_SIZE);
}

static void attack_ivshmem(void)
{
    io_connect_t c = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    io_connect_t a = harness_connect(IVSHMEM_BUS, IVSHMEM_DEV, IVSHMEM_FN);
    uint8_t got[SECRET_LEN];
    uint64_t bus = 0, v;
    uint8_t *mem;
    unsigned i;

    harness_section("ivshmem: steal into the shared memory, read it back");
    if (c == IO_OBJECT_NULL || a == IO_OBJECT_NULL ||
        (mem = claimer_region(c, 0x100000, &bus)) == NULL) {
        return;
    }
    /* The claimer's memory -> BAR2 at SHM_OFF. */
    attacker_write(a, IVSHMEM_MEM_REGS, IVSHMEM_DMA_SHM, 8, SHM_OFF);
    attacker_write(a, IVSHMEM_MEM_REGS, IVSHMEM_DMA_BUS, 8, bus);
    attacker_write(a, IVSHMEM_MEM_REGS, IVSHMEM_DMA_LEN, 8, SECRET_LEN);
    attacker_write(a, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4, IVSHMEM_DMA_RUN);
    wait_idle(a, IVSHMEM_MEM_REGS, IVSHMEM_DMA_CMD, 4, IVSHMEM_DMA_RUN);
    /* Read back by MMIO reads, which need no claim. */
    memset(got, 0, sizeof(got));
    for (i = 0; i < SECRET_LEN; i += 8) {
        v = 0;
        CHECK_KR(apple_dext_mmio_read(a, IVSHMEM_MEM_SHM, SHM_OFF + i, 8, &v),
                 kIOReturnSuccess);
        memcpy(got + i, &v, 8);
    }
    if (open_policy) {
        CHECK(memcmp(got, mem, SECRET_LEN) == 0);
    } else {
        CHECK_MSG(memcmp(got, mem, SECRET_LEN) != 0,
                  "the attacker read the claimer's secret");
    }
    apple_dext_disconnect(a);
    apple_dext_disconnect(c);
    munmap(mem, REGION_SIZE);
}

int main(int argc, char **argv)
{
    const char *extra = getenv("HARNESS_DEXTD_ARGS");

    harness_init(argc, argv, DEVICES);
    open_policy = harness_is_unix() && extra != NULL &&
                  strstr(extra, "--unclaimed-writes") != NULL;
    printf("# policy: %s\n", open_policy ? "--unclaimed-writes" :
           "default (writes need a claim)");
    attack_edu();
    attack_ivshmem();
    return harness_finish();
}
