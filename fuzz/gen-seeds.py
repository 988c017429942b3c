#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# Writes the seed corpora under fuzz/corpus/ (committed; rerun only to
# regenerate them).  Each seed is a well-formed message or script, so the
# fuzzers start from inputs that get past the header checks.
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = 0x74786564
REPLY = 1
T = dict(HELLO=1, LIST=2, OPEN=3, ATTACH=4, CALL=5, CALL_ASYNC=6,
         WAKE_REGISTER=7, WAKE_UNREGISTER=8, MAP=9, STATUS=10, ERROR=11,
         RING=12)


def msg(mtype, payload, flags=0, seq=1):
    return struct.pack('<IHHIIQ', MAGIC, 1, mtype, flags, len(payload),
                       seq) + payload


def call_payload(sel, scalars=(), out_cap=16, struct_in=b'', struct_cap=0,
                 port=None):
    p = b'' if port is None else struct.pack('<I', port)
    p += struct.pack('<5I', sel, len(scalars), out_cap, len(struct_in),
                     struct_cap)
    p += b''.join(struct.pack('<Q', s & (2**64 - 1)) for s in scalars)
    return p + struct_in


# One call per selector with plausible arguments (edu: BAR0 1 MiB).
CALLS = [
    (0, ()), (1, ()), (3, (8192, 0)), (4, ()),
    (5, (0x40000, 0x1000, 0x4000)), (6, (0x40000,)), (7, (0x40000, 8)),
    (8, (0, 4)), (9, (0x40, 4, 0x12345678)), (10, (0,)),
    (11, (0, 0, 4)), (12, (0, 4, 4, 0x55)), (12, (0, 0x80, 8, 0x40000)),
    (12, (0, 0x90, 4, 64)), (12, (0, 0x98, 4, 1)), (13, ()), (14, ()),
    (16, (1, 0, 0, 0)), (17, ()), (64, (0, 64, 0)), (66, ()), (2, ()),
]


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def requests():
    write('wire-request', 'hello', msg(T['HELLO'], struct.pack('<HHI', 1, 1, 7)))
    write('wire-request', 'list', msg(T['LIST'], b''))
    write('wire-request', 'status', msg(T['STATUS'], b''))
    write('wire-request', 'open',
          msg(T['OPEN'], struct.pack('<QII', 0x100000001, 0, 0)))
    write('wire-request', 'attach', msg(T['ATTACH'], bytes(range(16))))
    write('wire-request', 'wake-register', msg(T['WAKE_REGISTER'], b''))
    write('wire-request', 'wake-unregister',
          msg(T['WAKE_UNREGISTER'], struct.pack('<I', 1)))
    for t in (0, 1, 7):
        write('wire-request', 'map-%d' % t,
              msg(T['MAP'], struct.pack('<II', t, 0)))
    for i, (sel, sc) in enumerate(CALLS):
        write('wire-request', 'call-%02d-sel%d' % (i, sel),
              msg(T['CALL'], call_payload(sel, sc)))
    write('wire-request', 'call-async-wait',
          msg(T['CALL_ASYNC'], call_payload(15, port=1)))
    write('wire-request', 'call-write-block',
          msg(T['CALL'], call_payload(65, (0x40,), struct_in=b'\1\2\3\4')))


def replies():
    # First byte: which reply the client waits for (see fuzz-wire-reply.c).
    r = lambda want, mtype, payload: bytes([want]) + msg(mtype, payload, REPLY)
    write('wire-reply', 'hello', r(0, T['HELLO'],
                                   struct.pack('<IHHII', 0, 1, 0, 42, 7)))
    write('wire-reply', 'list', r(1, T['LIST'],
                                  struct.pack('<IIIQ', 0, 1, 1, 0x100000001)))
    write('wire-reply', 'open', r(2, T['OPEN'],
                                  struct.pack('<I', 0) + bytes(range(16))))
    write('wire-reply', 'call', r(3, T['CALL'],
                                  struct.pack('<III6Q', 0, 6, 0, 0, 3, 0,
                                              0x1234, 0x11e8, 0xff)))
    write('wire-reply', 'call-struct', r(3, T['CALL'],
                                         struct.pack('<III', 0, 0, 4) +
                                         b'\xed\x00\x34\x12'))
    write('wire-reply', 'wake', r(4, T['WAKE_REGISTER'],
                                  struct.pack('<II', 0, 1)))
    write('wire-reply', 'map', r(5, T['MAP'],
                                 struct.pack('<IIQQ', 0, 1, 0, 16384)))
    write('wire-reply', 'status', r(6, T['STATUS'],
                                    struct.pack('<IHHIIQIIIIQIIQQQ', 0, 1, 0,
                                                42, 1, 1000, 1, 1, 1, 0, 0,
                                                0, 0, 0, 0, 0)))
    write('wire-reply', 'error', r(7, T['ERROR'],
                                   struct.pack('<I', 0xe00002c2)))


def core_scripts():
    # Ops: byte op (low 3 bits), byte session, then a u16-prefixed blob
    # for calls (2-4 sync, 5 async).  See fuzz-core.c.
    def call(sess, sel, sc=(), async_=False, struct_in=b'', struct_cap=0):
        p = call_payload(sel, sc, struct_in=struct_in, struct_cap=struct_cap,
                         port=1 if async_ else None)
        return bytes([5 if async_ else 2, sess]) + struct.pack('<H', len(p)) + p

    opn = lambda sess: bytes([0, sess])
    close = lambda sess: bytes([1, sess])
    mp = lambda sess, t: bytes([6 | (t << 3), sess])

    everything = (opn(0) + call(0, 1) + call(0, 5, (0x40000, 0x1000, 0x4000)) +
                  call(0, 3, (8192, 0)) + mp(0, 0) + call(0, 13) + mp(0, 7) +
                  call(0, 15, async_=True) + call(0, 12, (0, 0x60, 4, 1)) +
                  call(0, 14) + bytes([7, 0]) + close(0))
    write('core', 'everything', everything)
    dma = (opn(0) + call(0, 1) + call(0, 5, (0x40000, 0x1000, 0x4000)) +
           call(0, 12, (0, 0x80, 8, 0x40000)) +
           call(0, 12, (0, 0x88, 8, 0x40000)) +
           call(0, 12, (0, 0x90, 4, 64)) + call(0, 12, (0, 0x98, 4, 1)) +
           call(0, 7, (0x40000, 8)) + call(0, 6, (0x40000,)))
    write('core', 'dma', dma)
    two = (opn(0) + opn(1) + call(0, 1) + call(1, 1) +
           call(0, 5, (0x40000, 0x1000, 0x4000)) + call(1, 6, (0x40000,)) +
           call(1, 7, (0x40000, 0)) + mp(1, 0) + mp(1, 7) + close(0) +
           call(1, 17) + close(1))
    write('core', 'two-sessions', two)
    cfg = (opn(2) + call(2, 8, (0, 4)) + call(2, 64, (0, 256, 1),
                                               struct_cap=256) +
           call(2, 65, (0x40,), struct_in=b'\1\2\3\4') + call(2, 10, (0,)) +
           call(2, 66) + call(2, 0) + call(2, 11, (0, 0, 4)))
    write('core', 'config', cfg)
    write('core', 'terminate', opn(0) + call(0, 1) + call(0, 2) + call(0, 0))


def sock_scripts():
    # Chunks answering the library's requests in order (see fuzz-sock.c):
    # u16 length, flags, bytes.  Flag 4: a well-formed auto reply.
    auto = struct.pack('<HB', 0, 4)
    write('sock', 'all-auto', auto * 64)
    # A whole session, with one reply replaced by an ERROR from the daemon.
    err = msg(T['ERROR'], struct.pack('<I', 0xe00002c2), REPLY)
    write('sock', 'error-midway',
          auto * 8 + struct.pack('<HB', len(err), 1) + err + auto * 40)
    # A call reply claiming more scalars than were asked for.
    big = msg(T['CALL'], struct.pack('<III16Q', 0, 16, 0, *range(16)), REPLY)
    write('sock', 'too-many-scalars',
          auto * 10 + struct.pack('<HB', len(big), 1) + big + auto * 40)
    # The daemon hangs up half way.
    write('sock', 'hangup', auto * 12)


def dextd_scripts():
    # Two set-up bytes, then ops: byte (channel | kind << 2); a request
    # (kind 0) is a flags byte, a u16-prefixed message and a byte per fd.
    # See fuzz-dextd.c.
    setup = bytes([0x3f, 0])
    seq = [0]

    def req(ch, mtype, payload, flags=0, fds=()):
        seq[0] += 1
        m = msg(mtype, payload, seq=seq[0])
        return (bytes([ch, flags | len(fds)]) + struct.pack('<H', len(m)) +
                m + bytes(fds))

    hello = lambda ch: req(ch, T['HELLO'], struct.pack('<HHI', 1, 1, 7))
    opn = lambda ch: req(ch, T['OPEN'], struct.pack('<QII', 0x100000001, 0, 0))
    call = lambda ch, sel, sc=(), **kw: req(ch, T['CALL'],
                                            call_payload(sel, sc), **kw)
    hangup = lambda ch: bytes([ch | 5 << 2])
    dies = lambda ch: bytes([ch | 6 << 2])
    drain = bytes([7 << 2])
    region = (5, (0x40000, 0x1000, 0x4000))
    SEQPACKET, DGRAM, STREAM, EVENTFD, STUFFED, UNCONNECTED, LISTENING, \
        INET = range(8)

    write('dextd', 'hello-list-status',
          setup + hello(0) + req(0, T['LIST'], b'') +
          req(0, T['STATUS'], b''))
    write('dextd', 'session',
          setup + hello(0) + opn(0) + call(0, 1) + call(0, *region) +
          call(0, 12, (0, 0x80, 8, 0x40000)) + call(0, 12, (0, 0x88, 8, 0x40000)) +
          call(0, 12, (0, 0x90, 4, 64)) + call(0, 12, (0, 0x98, 4, 1)) +
          call(0, 7, (0x40000, 8)) + call(0, 8, (0, 4)) + call(0, 11, (0, 0, 4)) +
          call(0, 3, (8192, 0)) + req(0, T['MAP'], struct.pack('<II', 0, 0)) +
          req(0, T['MAP'], struct.pack('<II', 7, 0)) + call(0, 6, (0x40000,)) +
          call(0, 17) + hangup(0))
    write('dextd', 'attach',
          setup + hello(0) + opn(0) + call(0, 1) + hello(1) +
          req(1, T['ATTACH'], bytes(16), flags=0x20) + call(1, 0) +
          hangup(0) + call(1, 8, (0, 4)) + opn(1) + hangup(1))
    write('dextd', 'wake-ports',
          setup + hello(0) + opn(0) + call(0, 1) + call(0, 13) +
          req(0, T['WAKE_REGISTER'], b'', fds=[SEQPACKET]) +
          req(0, T['CALL_ASYNC'], call_payload(15, port=1)) +
          call(0, 12, (0, 0x60, 4, 1)) + drain +
          req(0, T['WAKE_UNREGISTER'], struct.pack('<I', 1)) +
          req(0, T['WAKE_REGISTER'], b'', fds=[DGRAM]) +
          req(0, T['WAKE_REGISTER'], b'', fds=[STUFFED]) +
          req(0, T['WAKE_REGISTER'], b'', fds=[STREAM]) +
          req(0, T['WAKE_REGISTER'], b'', fds=[EVENTFD]) +
          req(0, T['WAKE_REGISTER'], b'', fds=[UNCONNECTED]) +
          req(0, T['WAKE_REGISTER'], b'', fds=[LISTENING]) +
          req(0, T['WAKE_REGISTER'], b'', fds=[INET]) +
          req(0, T['WAKE_REGISTER'], b'', fds=[SEQPACKET, DGRAM]) +
          req(0, T['CALL_ASYNC'], call_payload(15, port=2)) + drain)
    write('dextd', 'violations',
          setup + req(0, T['LIST'], b'') + hello(1) +
          req(1, T['LIST'], b'', flags=0) + hello(1) +
          req(2, T['HELLO'], struct.pack('<HHI', 1, 1, 7), fds=[EVENTFD]) +
          hello(3) + req(3, T['STATUS'], b'', flags=0x80) +
          hello(0) + req(0, T['ERROR'], struct.pack('<I', 0)) +
          req(2, T['HELLO'], struct.pack('<HHI', 9, 9, 7)))
    write('dextd', 'other-processes',
          setup + hello(0) + opn(0) + call(0, 1) +
          call(0, *region, flags=0x08) + call(0, *region, flags=0x10) +
          dies(1) + hello(1) + req(1, T['ATTACH'], bytes(16), flags=0x20) +
          dies(2) + hello(2) + opn(2) + call(2, 1) + call(2, *region))
    write('dextd', 'fd-budget',
          bytes([0x07, 2]) + hello(0) + opn(0) + hello(1) + opn(1) +
          req(0, T['WAKE_REGISTER'], b'', fds=[SEQPACKET]) +
          req(0, T['WAKE_REGISTER'], b'', fds=[SEQPACKET]) +
          req(0, T['WAKE_REGISTER'], b'', fds=[SEQPACKET]) + hangup(0) +
          opn(1) + hello(2) + opn(2))
    # A polled ring on a session: set up, asked for again (StillOpen), one
    # before OPEN (NotAttached), calls after it, then the channels go.
    ring = req(0, T['RING'], struct.pack('<I', 100))
    write('dextd', 'ring',
          setup + hello(0) + ring + opn(0) + ring + ring + call(0, 1) +
          call(0, 8, (0, 4)) + hello(1) + req(1, T['RING'], b'') + hangup(0))


requests()
replies()
core_scripts()
sock_scripts()
dextd_scripts()
