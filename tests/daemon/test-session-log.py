#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dextd logs at info who opens, claims and releases a device: the
client's pid and uid on each line (dextctl info opens, dextctl reset
claims)."""

import os
import subprocess
import sys
import tempfile

from dextdtest import DEXTCTL, Dextd, fail


def run(path, *args):
    env = dict(os.environ, DEXT_SOCKET=path)
    env.pop("DEXT_TARGET", None)
    p = subprocess.Popen([DEXTCTL] + list(args), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    out, _ = p.communicate(timeout=20)
    if p.returncode != 0:
        fail("dextctl %s: %s" % (" ".join(args), out))
    return p.pid


def main():
    uid = os.geteuid()
    with tempfile.TemporaryDirectory(prefix="dextd-session-log-") as tmp:
        d = Dextd(tmp, [])
        looker = run(d.path, "info", "00:03.0")
        claimer = run(d.path, "reset", "00:03.0")
        log = d.stop()
    print(log)
    want = [
        "pid %d uid %d opened service 0x" % (looker, uid),
        "pid %d uid %d closed service 0x" % (looker, uid),
        "pid %d uid %d opened service 0x" % (claimer, uid),
        "pid %d uid %d claimed service 0x" % (claimer, uid),
        "pid %d uid %d closed service 0x" % (claimer, uid),
    ]
    lines = log.splitlines()
    for w in want:
        hits = [ln for ln in lines if w in ln]
        if not hits:
            fail("no line with %r" % w)
        if " info: " not in hits[0]:
            fail("not at info: %r" % hits[0])
    for ln in lines:
        if "pid %d uid %d closed" % (looker, uid) in ln and "claim" in ln:
            fail("a release logged for a session without a claim: " + ln)
        if ("pid %d uid %d closed" % (claimer, uid) in ln and
                "releasing its claim" not in ln):
            fail("the claimer's close does not say it released: " + ln)
    return 0


if __name__ == "__main__":
    sys.exit(main())
