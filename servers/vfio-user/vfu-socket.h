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
 * vfu_recv() - read one whole message and its fds
 * @sock: the stream socket
 * @buf: room for VFU_MAX_MSG_SIZE bytes
 * @len: receives the message's length
 * @fds: room for VFU_MAX_MSG_FDS fds; receives those sent with it
 * @nfds: receives their count
 *
 * Return: 0, or -1 on end of file, an error, a size out of bounds or too
 * many fds (none kept then).
 */
int vfu_recv(int sock, uint8_t *buf, size_t *len, int *fds, unsigned *nfds);

/**
 * vfu_send() - send a message
 * @sock: the stream socket
 * @h: its header, size set
 * @payload: what follows the header
 * @len: its length
 * @fds: fds to pass with it
 * @nfds: their count, at most VFU_MAX_MSG_FDS
 *
 * Return: 0, or -1 if the socket failed.
 */
int vfu_send(int sock, const VfuHeader *h, const uint8_t *payload,
             size_t len, const int *fds, unsigned nfds);

/**
 * vfu_serve_client() - serve one connected client until it goes
 * @s: an open session
 * @sock: the client's socket (the caller closes it)
 *
 * Return: 0 when the client closed the connection, -1 when the server
 * did (a malformed message, a failed socket or dext).
 */
int vfu_serve_client(VfuSession *s, int sock);

#endif /* DEXT_VFU_SOCKET_H */
