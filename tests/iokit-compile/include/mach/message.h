/*
 * SPDX-License-Identifier: MIT
 *
 * Declaration-only stand-in for Apple's <mach/message.h> (compile check
 * only): the message header type and the send errors libdext looks at.
 */

#ifndef LIBDEXT_FAKE_MACH_MESSAGE_H
#define LIBDEXT_FAKE_MACH_MESSAGE_H

#include <mach/mach_types.h>

typedef unsigned int mach_msg_bits_t;
typedef natural_t mach_msg_size_t;
typedef integer_t mach_msg_id_t;

typedef struct {
    mach_msg_bits_t msgh_bits;
    mach_msg_size_t msgh_size;
    mach_port_t msgh_remote_port;
    mach_port_t msgh_local_port;
    mach_port_name_t msgh_voucher_port;
    mach_msg_id_t msgh_id;
} mach_msg_header_t;

#define MACH_SEND_INVALID_DEST  0x10000003
#define MACH_SEND_INVALID_RIGHT 0x10000007

#endif /* LIBDEXT_FAKE_MACH_MESSAGE_H */
