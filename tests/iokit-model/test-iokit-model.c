/*
 * SPDX-License-Identifier: MIT
 *
 * transport/iokit.c's hooks driven directly against the model of
 * IOKitLib (iokit-model.h): what the API programs cannot reach, such as
 * a dext that crashes or whose service is terminated under an open
 * connection.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "protocol/dext-selectors.h"
#include "tests/iokit-model/iokit-model.h"
#include "transport/transport.h"

static const DextTransportOps *ops = &dext_transport_iokit;

static uint64_t ids[8];
static uint32_t n_ids;

/* The registry ID of dext service @i, as first listed. */
static uint64_t service(uint32_t i)
{
    if (n_ids == 0) {
        CHECK_KR(ops->list_services("", ids, 8, &n_ids), kIOReturnSuccess);
    }
    return CHECK(n_ids > i) ? ids[i] : 0;
}

static IOReturn call0(DextTransport *t, uint32_t selector)
{
    DextCallArgs a = { 0 };

    return t->ops->call(t, selector, &a);
}

static IOReturn identity(DextTransport *t)
{
    uint64_t out[6];
    uint32_t n = 6;
    DextCallArgs a = { .scalar_out = out, .scalar_out_cnt = &n };

    return t->ops->call(t, kDextSelectorGetIdentity, &a);
}

/*
 * Each of the three ways a dext goes away must read as NotResponding
 * from then on (transport.h), whatever IOKit answers.
 */
static void test_dead(uint32_t svc, IokitModelDeath how, bool with_mapping)
{
    DextTransport *t = NULL;
    uint64_t id = service(svc);
    mach_vm_address_t addr;
    mach_vm_size_t size;
    uint64_t out[1];
    uint32_t n = 1;
    DextCallArgs setup = { .scalar_out = out, .scalar_out_cnt = &n };

    harness_section("dext %s, %s mapping held\n",
           how == IOKIT_MODEL_CRASHED ? "crashed" : "terminated",
           with_mapping ? "a" : "no");
    if (!CHECK_KR(ops->open("", id, 0, &t), kIOReturnSuccess)) {
        return;
    }
    if (with_mapping) {
        CHECK_KR(call0(t, kDextSelectorClaim), kIOReturnSuccess);
        CHECK_KR(t->ops->call(t, kDextSelectorSetupInterrupts, &setup),
                 kIOReturnSuccess);
        CHECK_KR(t->ops->map(t, 7, 0, &addr, &size), kIOReturnSuccess);
    }
    CHECK(iokit_model_kill(id, how));
    CHECK_KR(identity(t), kIOReturnNotResponding);
    CHECK_KR(identity(t), kIOReturnNotResponding);
    t->ops->close(t);
}

int main(void)
{
    /* Three edus: each death case spends one. */
    setenv("IOKIT_MODEL_DEVICES",
           "edu+edu,bdf=00:04.0+edu,bdf=00:05.0", 1);
    test_dead(0, IOKIT_MODEL_CRASHED, false);
    test_dead(1, IOKIT_MODEL_TERMINATED, true);
    test_dead(2, IOKIT_MODEL_TERMINATED, false);
    return harness_finish();
}
