#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# Seeds for fuzz-vfio-user (format in fuzz/fuzz-vfio-user.c): one file
# per command family, valid messages a VMM sends, so the fuzzer starts
# deep.  Run from the source root: fuzz/gen-vfio-user-seeds.py
import struct
import os

OUT = 'fuzz/corpus/vfio-user'


def msg(cmd, payload=b'', fds=0, mid=2):
    body = struct.pack('<HHII I', mid, cmd, 16 + len(payload), 0, 0) + payload
    return struct.pack('<BH', fds, len(body)) + body


def rw(cmd, region, off, count, data=b''):
    return msg(cmd, struct.pack('<QII', off, region, count) + data)


seeds = {
    'info': msg(4, struct.pack('<IIII', 16, 0, 0, 0)) +
            b''.join(msg(5, struct.pack('<IIIIQQ', 32, 0, i, 0, 0, 0))
                     for i in range(10)) +
            b''.join(msg(7, struct.pack('<IIII', 16, 0, i, 0))
                     for i in range(6)),
    'config': rw(9, 7, 0, 64) +
              rw(10, 7, 0x10, 4, b'\xff\xff\xff\xff') + rw(9, 7, 0x10, 8) +
              rw(10, 7, 0x12, 2, b'\x00\xfe') + rw(10, 7, 0x04, 2, b'\x06\x00'),
    'bar': rw(10, 0, 8, 4, struct.pack('<I', 5)) + rw(9, 0, 0, 4) +
           rw(9, 0, 0x80, 8) + rw(10, 0, 0x60, 4, struct.pack('<I', 1)),
    'irqs': msg(8, struct.pack('<IIIII', 20, 0x24, 1, 0, 1), fds=2) +
            msg(8, struct.pack('<IIIII', 20, 0x24, 1, 0, 2), fds=6) +
            rw(10, 0, 0x60, 4, struct.pack('<I', 1)) +
            msg(8, struct.pack('<IIIII', 20, 0x09, 1, 0, 1)) +
            msg(8, struct.pack('<IIIII', 20, 0x11, 1, 0, 1)) +
            msg(8, struct.pack('<IIIII', 21, 0x0a, 1, 0, 1) + b'\x01') +
            msg(8, struct.pack('<IIIII', 20, 0x21, 1, 0, 0)),
    'dma': msg(2, struct.pack('<IIQQQ', 32, 3, 0, 0x200000, 0x10000), fds=1) +
           rw(10, 0, 0x80, 8, struct.pack('<Q', 0x200000)) +
           rw(10, 0, 0x88, 8, struct.pack('<Q', 0x40000)) +
           rw(10, 0, 0x90, 8, struct.pack('<Q', 256)) +
           rw(10, 0, 0x98, 8, struct.pack('<Q', 1)) +
           msg(3, struct.pack('<IIQQ', 24, 0, 0x200000, 0x10000)) +
           msg(2, struct.pack('<IIQQQ', 32, 3, 0, 0x300000, 0x4000)) +
           msg(3, struct.pack('<IIQQ', 24, 2, 0, 0)),
    'reset': msg(13) + msg(15, struct.pack('<Q', 1) +
                            struct.pack('<QII', 4, 0, 4) + b'\x01\x02\x03\x04\0\0\0\0'),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(data)
