/*
 * SPDX-License-Identifier: MIT
 *
 * dext-vfio-user: messages on the client's socket.
 */

#ifndef DEXT_VFU_SOCKET_H
#define DEXT_VFU_SOCKET_H

#include <poll.h>

#include "vfu-server.h"

/**
 * vfu_serve_client() - serve one connected client until it goes
 * @s: an open session
 * @sock: the client's socket (the caller closes it)
 * @handshake_ms: drop the client if its VERSION has not arrived this
 *                long after the call (0: never); after VERSION it may
 *                stay idle for any time
 *
 * Return: 0 when the client closed the connection, -1 when the server
 * did (a malformed message, a failed socket or dext).
 */
int vfu_serve_client(VfuSession *s, int sock, unsigned handshake_ms);

#endif /* DEXT_VFU_SOCKET_H */
